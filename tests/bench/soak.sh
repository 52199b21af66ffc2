#!/bin/sh
# soak.sh: does any part of the stack grow while a class runs for an hour?
# The class of the design (loadgen: 200 students at the pace of a lesson,
# 10 dashboards, --setup --verify-db) runs for LABPULSE_SOAK_SECONDS
# (default 3600) on a private stack of `labpulse up`; every
# LABPULSE_SOAK_SAMPLE seconds (default 60) the memory of each part is
# sampled: the resident set (RSS) of ingest, batch-commit, route, notify
# and Redis, and PostgreSQL's processes summed. The first minutes fill
# caches, pools and buffers, so growth is measured from the sample at the
# end of the warm-up (two samples in) to the last; a part grew when that
# is more than 1 MiB plus 10% of its figure after the warm-up.
# Two parts grow by design, and are judged on what is not their data:
# Redis keeps the routed stream for dashboards to resume from (route's
# --max-len, some hours of a class), so its RSS is shown beside what it
# holds (used_memory, the reference measured in the same run) and judged
# on the difference; PostgreSQL's shared buffers fill with the growing
# tables, and its processes share them, each one's RSS counting them
# again, so their RSS and PSS sums are shown and the sum of their private
# memory (Pss_Anon: caches, sorts, prepared plans) is judged.
# Run by `make bench`, which builds what it needs, or alone:
#   LABPULSE_SOAK_SECONDS=300 sh tests/bench/soak.sh
# A benchmark reports: growth, or a failed SLO of the class, still exits 0;
# only a step that cannot run exits non-zero (64 bad settings, 69 a tool or
# build is missing, 70 a run failed). When a step fails, or a part grew or
# died, the logs are kept in /tmp.
prog="bench-soak"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
secs=${LABPULSE_SOAK_SECONDS:-3600}
every=${LABPULSE_SOAK_SAMPLE:-60}
warm=2				# samples of warm-up after the first
bound_kb=1024			# a part grew: more than this ...
bound_pct=10			# ... plus this % of its figure after warm-up
parts="ingest batch-commit route notify redis_over pg_anon"

case $secs in ''|*[!0-9]*|0) die 64 "LABPULSE_SOAK_SECONDS must be a whole number of seconds above 0" ;; esac
case $every in ''|*[!0-9]*|0) die 64 "LABPULSE_SOAK_SAMPLE must be a whole number of seconds above 0" ;; esac
[ "$secs" -ge $((every * (warm + 1))) ] ||
	die 64 "LABPULSE_SOAK_SECONDS must be at least $((every * (warm + 1))): the warm-up and a sample after it"
need_files "$top/bin/labpulse" "$top/bin/stack" "$top/bin/loadgen" "$top/bin/ingest" "$top/bin/notify"
need_tools jq awk timeout psql redis-cli

lg_pid=
# shellcheck disable=SC2317 # called by the EXIT trap
bench_stop() { [ -n "$lg_pid" ] && kill -TERM "$lg_pid" 2>/dev/null; }
keep_dirs=soak
bench_home lpsoak
work=$home/soak
mkdir -p "$work" || die 69 "cannot make $work"

# kB of a /proc/PID/status or smaps_rollup field, empty for a process gone
field() { awk -v k="$2:" '$1 == k { print $2; exit }' "/proc/$1/$3" 2>/dev/null; }
rss() { field "$1" VmRSS status; }
# PostgreSQL: the postmaster and every process it started
pg_pids() {
	pm=$(head -n 1 "$pgdata/postmaster.pid" 2>/dev/null) || return 0
	echo "$pm"
	pgrep -P "$pm" 2>/dev/null
}
pg_sum() {	# field file
	n=0
	for p in $(pg_pids); do
		v=$(field "$p" "$1" "$2")
		n=$((n + ${v:-0}))
	done
	echo "$n"
}

# sample T: one line "T PART=KB ... redis_used=KB pg_rss=KB events=N";
# a part that is not running is "-"
sample() {
	line="$1"
	for d in ingest batch-commit route notify; do
		v=$(rss "$(cat "$LABPULSE_RUNDIR/$d.pid" 2>/dev/null)")
		line="$line $d=${v:--}"
	done
	v=$(rss "$(cat "$LABPULSE_RUNDIR/redis.pid" 2>/dev/null)")
	line="$line redis=${v:--}"
	used=$(redis-cli -s "${LABPULSE_REDIS#unix:}" info memory 2>/dev/null |
		awk -F: '$1 == "used_memory" { printf "%d", $2 / 1024 }')
	line="$line redis_used=${used:--}"
	case $v$used in *-*|'') line="$line redis_over=-" ;;
	*) line="$line redis_over=$((v - used))" ;; esac
	v=$(pg_sum Pss_Anon smaps_rollup)
	[ "$v" -gt 0 ] || v=-
	line="$line pg_anon=$v"
	v=$(pg_sum Pss smaps_rollup)
	[ "$v" -gt 0 ] || v=-
	line="$line pg_pss=$v"
	v=$(pg_sum VmRSS status)
	[ "$v" -gt 0 ] || v=-
	line="$line pg_rss=$v"
	n=$(redis-cli -s "${LABPULSE_REDIS#unix:}" xlen labpulse:events 2>/dev/null)
	line="$line events=${n:--}"
	echo "$line" >>"$work/samples"
	info "  t=${1}s $(echo "$line" | cut -d' ' -f2-)"
}

info "the class: 200 students, 10 dashboards, real pace, ${secs} s; memory sampled every ${every} s"
bench_up
pgdata=$home/pg
[ -f "$home/pg-place" ] && pgdata=$(cat "$home/pg-place")/pg

timeout $((secs + 300)) "$top/bin/loadgen" --students 200 --dashboards 10 \
	--duration "${secs}s" --setup --verify-db --json "$work/class.json" \
	</dev/null >"$work/class.out" 2>"$work/class.err" &
lg_pid=$!
start=$(date +%s)
: >"$work/samples"
i=0
while [ $((i * every)) -le "$secs" ]; do
	now=$(date +%s)
	due=$((start + i * every))
	# in the background, so that a TERM ends the run now, not after it
	if [ "$now" -lt "$due" ]; then sleep $((due - now)) & wait $!; fi
	# the last sample may come as loadgen drains; the others, under load
	[ $((i * every)) -ge "$secs" ] || kill -0 "$lg_pid" 2>/dev/null ||
		{ cat "$work/class.err" >&2; die 70 "loadgen ended before the soak did"; }
	sample $((i * every))
	i=$((i + 1))
done
wait "$lg_pid"
class_rc=$?
lg_pid=
if [ "$class_rc" -gt 1 ] || ! jq -e .total "$work/class.json" >/dev/null 2>&1; then
	cat "$work/class.out" "$work/class.err" >&2
	die 70 "loadgen (the class) failed with status $class_rc"
fi
[ "$class_rc" -eq 0 ] || keep=1
class_verdict=$(jq -r 'if .pass then "PASS" else "FAIL" end' "$work/class.json")

# ---- the figures: first, after warm-up, last ----
nsamples=$(wc -l <"$work/samples")
at() { awk -v n="$1" -v k="$2" 'NR == n { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' "$work/samples"; }
t_of() { awk -v n="$1" 'NR == n { print $1 }' "$work/samples"; }
mib() { case $1 in -|'') echo "-" ;; *) awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }' ;; esac; }
base=$((warm + 1))
t_base=$(t_of "$base")
t_end=$(t_of "$nsamples")
grew=
died=
rows=
for p in $parts; do
	a=$(at 1 "$p") b=$(at "$base" "$p") e=$(at "$nsamples" "$p")
	if [ "$a" = - ] || [ "$b" = - ] || [ "$e" = - ] ||
	    awk -v p="$p" '{ for (i = 2; i <= NF; i++) if ($i == p "=-") f = 1 } END { exit !f }' "$work/samples"; then
		died="$died $p"
		verdict=died
		growth=null pct=null bound=null
	else
		growth=$((e - b))
		bound=$(awk -v b="$b" -v k="$bound_kb" -v p="$bound_pct" 'BEGIN { printf "%d", k + b * p / 100 }')
		pct=$(awk -v g="$growth" -v b="$b" 'BEGIN { printf "%.1f", (b > 0 ? g * 100 / b : 0) }')
		if [ "$growth" -gt "$bound" ]; then verdict=grew; grew="$grew $p"; else verdict=ok; fi
	fi
	rows="$rows$p $a $b $e $growth $pct $bound $verdict
"
done
[ -n "$grew$died" ] && keep=1
if [ -z "$grew$died" ]; then
	summary="no growth"
else
	summary=
	[ -n "$grew" ] && summary="grew:$grew"
	[ -n "$died" ] && summary="${summary:+$summary; }died:$died"
fi

# ---- the report ----
row() { printf '%-13s %11s %14s %11s %16s %11s  %s\n' "$@"; }
echo
echo "soak: the class (200 students at the pace of a lesson, 10 dashboards) for $secs s"
echo "on a private stack; memory sampled every $every s ($nsamples samples); growth from the"
echo "end of the warm-up (t=${t_base}s) to the last sample (t=${t_end}s); a part grew when that is"
echo "more than $bound_kb KiB + $bound_pct% of its figure after warm-up"
echo
row "part" "start" "after warm-up" "end" "growth" "bound" "verdict"
printf '%s' "$rows" | while read -r p a b e g pct bd v; do
	if [ "$g" = null ]; then gs=- bs=-; else gs="$(awk -v g="$g" 'BEGIN { printf "%+d KiB", g }') ($pct%)"; bs="$bd KiB"; fi
	case $p in
	redis_over) what="redis - data" ;;
	pg_anon) what="postgres anon" ;;
	*) what=$p ;;
	esac
	row "$what" "$(mib "$a")" "$(mib "$b")" "$(mib "$e")" "$gs" "$bs" "$v"
done
echo
ref() { row "$1" "$(mib "$(at 1 "$2")")" "$(mib "$(at "$base" "$2")")" "$(mib "$(at "$nsamples" "$2")")" "" "" "$3"; }
echo "what grows by design, and the reference, measured in the same run:"
ref "redis RSS" redis "its RSS; redis - data above is this less used_memory"
ref "redis data" redis_used "used_memory: the streams (routed keeps some hours)"
ref "postgres PSS" pg_pss "every process's PSS, shared buffers shared out"
ref "postgres RSS" pg_rss "every process's RSS, shared buffers counted in each"
echo "the events stream: $(at 1 events), $(at "$base" events), $(at "$nsamples" events) entries (trimmed every 5 s)"
echo
echo "verdict: $summary"
echo
cat "$work/class.out"
echo
echo "class verdict: $class_verdict (loadgen exit status $class_rc)"

samples_json=$(awk '{
	printf "%s{\"t_s\":%s", (NR > 1 ? "," : "["), $1
	for (i = 2; i <= NF; i++) {
		split($i, kv, "=")
		printf ",\"%s\":%s", kv[1], (kv[2] == "-" ? "null" : kv[2])
	}
	printf "}"
} END { print (NR ? "]" : "[]") }' "$work/samples")
parts_json=$(printf '%s' "$rows" | awk '
	function n(v) { return v == "-" ? "null" : v }
	{ printf "%s\"%s\":{\"start_kb\":%s,\"after_warmup_kb\":%s,\"end_kb\":%s,\"growth_kb\":%s,\"growth_pct\":%s,\"bound_kb\":%s,\"verdict\":\"%s\"}",
		(NR > 1 ? "," : "{"), $1, n($2), n($3), n($4), $5, $6, $7, $8 }
	END { print (NR ? "}" : "{}") }')
jq -n \
	--argjson secs "$secs" --argjson every "$every" --argjson warm "$warm" \
	--argjson t_base "$t_base" --argjson t_end "$t_end" \
	--argjson bound_kb "$bound_kb" --argjson bound_pct "$bound_pct" \
	--argjson samples "$samples_json" --argjson parts "$parts_json" \
	--arg summary "$summary" --argjson class_rc "$class_rc" \
	--slurpfile classes "$work/class.json" \
	--rawfile class_summary "$work/class.out" \
	'$classes[0] as $class | {
	  benchmark: "soak",
	  settings: {seconds: $secs, sample_every_s: $every, warmup_samples: $warm,
	    students: 200, dashboards: 10, pace: "a lesson (--think 1)"},
	  what: "resident memory (kB) of each part of the stack while the class runs; redis_over is Redis RSS less used_memory, pg_anon the Pss_Anon of PostgreSQL processes summed",
	  growth_from_t_s: $t_base, growth_to_t_s: $t_end,
	  bound: "more than \($bound_kb) KiB + \($bound_pct)% of the figure after warm-up",
	  parts: $parts,
	  reference: {what: "Redis used_memory (the data it holds: the routed stream keeps some hours), beside Redis RSS; PostgreSQL PSS and RSS summed (shared buffers, which fill with the tables)",
	    redis_rss_kb: [$samples[] | .redis], redis_used_kb: [$samples[] | .redis_used],
	    pg_pss_kb: [$samples[] | .pg_pss], pg_rss_kb: [$samples[] | .pg_rss],
	    events_stream_length: [$samples[] | .events]},
	  verdict: $summary,
	  samples: $samples,
	  class: {verdict: (if $class.pass then "PASS" else "FAIL" end), exit_status: $class_rc,
	    events_acked: $class.total.events.acked, lost: $class.total.events.lost,
	    delivery_pct: $class.delivery_pct, verify_db: $class.verify_db,
	    summary: $class_summary}
	}' >"$out/soak.json" || die 70 "cannot write $out/soak.json"
echo "written: tests/bench/out/soak.json"
exit 0
