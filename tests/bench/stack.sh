#!/bin/sh
# stack.sh: the whole stack as users run it, from `labpulse up` with its
# defaults (ingest, batch-commit, route, notify, Redis, PostgreSQL), under an
# HTTP load from tests/bench/httpbench: ~520-byte events of 200 students over
# 10 classes (bench-0 to bench-9), 200 connections.
#  a. flat out, POSTs of 10, for BENCH_RUN_S seconds: accepted/s (202s),
#     durable/s = rows / (the last row's committed_at - load start), the
#     backlog of the group commit over time, CPU µs per event of every
#     process of the stack;
#  r. the reference, in the same run: psql's \copy of the same rows (out of
#     the events table of a.) into a second database with the same
#     migrations, median of 3 (truncated between);
#  b. flat out, single-event POSTs, the same figures;
#  c. the open model: offered rates ascending (BENCH_RATES, events/s in
#     POSTs of 10), each held BENCH_RATE_S seconds; the sustainable rate is
#     the highest at which the commit backlog stayed under 1 s of load (and
#     every POST was answered 202 at the offered rate) for the whole hold;
#     the sweep stops at the first rate that fails;
#  d. the class of 200 (loadgen: 200 students at 20 times a lesson's pace,
#     10 dashboards, in class loadgen-0) during another hold of the
#     sustainable rate (else the lowest), on the classes bench-*: its ack
#     and POST-to-dashboard p99.
# Between phases the stack drains (both groups of the events stream) and the
# tables events, dead_events and student_progress are truncated: one stack
# for the whole run, each phase on empty tables. Every phase checks that the
# rows of its classes equal the events answered 202, and that no eventId is
# there twice.
# With the defaults `make bench` spends up to about 15 minutes here (6
# holds of 60 s, each with its drain); BENCH_RUN_S (default 10) sets the
# flat-out seconds, BENCH_RATE_S (default 60) the seconds of each hold,
# BENCH_RATES (default "5000 10000 15000 20000 25000 30000") the rates,
# BENCH_LOADGEN=0 skips d. For a quick look:
#   BENCH_RUN_S=3 BENCH_RATE_S=5 BENCH_RATES="5000 10000" sh tests/bench/stack.sh
# A benchmark reports: a missed target still exits 0; only a step that
# cannot run exits non-zero (64 bad settings, 69 a tool or build is missing,
# 70 a run failed).
# Lists of figures are kept as words and split on purpose.
# shellcheck disable=SC2086,SC2046
prog="bench-stack"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# batch-commit and psql would prefer it to the stack's PG* variables
unset DATABASE_URL
bench=$top/tests/bench/httpbench
loadgen=$top/bin/loadgen
run_s=${BENCH_RUN_S:-10}
rate_s=${BENCH_RATE_S:-60}
rates=${BENCH_RATES:-5000 10000 15000 20000 25000 30000}
lg_on=${BENCH_LOADGEN:-1}
conns=200
classes=10
hold_batch=10		# events in a POST of the open model
copy_runs=3
stall_s=30		# a drain that makes no progress this long gives up ...
drain_limit_s=900	# ... and any after this long
# targets
t_durable10=25000	# durable events/s in POSTs of 10 ...
t_copy=0.60		# ... and at least this share of \copy's rows/s
t_durable1=13000	# durable events/s in single-event POSTs
t_sustain=20000		# sustainable rate, backlog under 1 s
t_cpu=40		# µs of CPU a event, whole stack, POSTs of 10
t_lg_ms=10		# loadgen's ack p99 and e2e p99
# the Python design of the issue: quoted, not measured
q_single=4300
q_batch10=12800
q_cpu=120

cols="class_id, student_id, event_id, event_type, event_time, received_at, session_id, notebook_path, cell_id, cell_index, cell_type, execution_count, has_error, execution_duration_ms, payload"

case $run_s in ''|*[!0-9]*|0) die 64 "BENCH_RUN_S must be a whole number of seconds above 0" ;; esac
case $rate_s in ''|*[!0-9]*|0) die 64 "BENCH_RATE_S must be a whole number of seconds above 0" ;; esac
case $lg_on in 0|1) ;; *) die 64 "BENCH_LOADGEN must be 0 or 1" ;; esac
set -- $rates
[ $# -gt 0 ] || die 64 "BENCH_RATES is empty"
lowest=$1
prev=0
for r in $rates; do
	case $r in ''|*[!0-9]*|0*) die 64 "BENCH_RATES: '$r' is not a rate in events/s" ;; esac
	[ $((r % hold_batch)) -eq 0 ] || die 64 "BENCH_RATES: $r is not a multiple of $hold_batch (events in a POST)"
	[ "$r" -gt "$prev" ] || die 64 "BENCH_RATES must ascend"
	prev=$r
done
need_target=all
need_files "$top/bin/labpulse" "$top/bin/stack" "$top/bin/ingest" \
	"$top/bin/batch-commit" "$top/bin/route" "$top/bin/notify" \
	"$top/bin/migrate-indexes" "$bench"
[ "$lg_on" = 1 ] && need_files "$loadgen"
need_tools redis-cli psql createdb dropdb jq awk pgrep timeout

# say: printf, not echo (a shell's echo may take the \ of \copy as an escape)
say() { printf '%s\n' "$*"; }
now() { date +%s.%N; }

sampler_pid=
lg_pid=
# the sampler and loadgen, if running, before the stack
# shellcheck disable=SC2317 # called by the EXIT trap
bench_stop() {
	for p in $sampler_pid $lg_pid; do kill -TERM "$p" 2>/dev/null; done
	for p in $lg_pid; do
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
	done
	return 0
}
keep_dirs=runs
bench_home lpbench
runs=$home/runs
mkdir -p "$runs" || die 69 "cannot make $runs"

# ---- the stack ----
info "starting a private stack (labpulse up, default flags)"
bench_up
rsock=${LABPULSE_REDIS#unix:}
url=$LABPULSE_INGEST_URL/api/v1/events
cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
clk=$(getconf CLK_TCK 2>/dev/null || echo 100)

redis() { redis-cli -s "$rsock" "$@"; }
sql() { psql -XqtA -v ON_ERROR_STOP=1 "$@"; }

# backlogs: "COMMIT ROUTE", entries each group has yet to acknowledge (lag,
# not yet delivered, plus pending, delivered and not acknowledged); NA
# where Redis cannot tell the lag
backlogs() {
	redis XINFO GROUPS labpulse:events 2>/dev/null | awk '
		NR % 2 == 1 { k = $0; next }
		k == "name" { g = $0 }
		k == "pending" { p[g] = $0 }
		k == "lag" { l[g] = $0 }
		END {
			for (i = 1; i <= 2; i++) {
				g = (i == 1) ? "commit" : "route"
				v = (g in l && l[g] ~ /^[0-9]+$/) ? l[g] + p[g] : "NA"
				printf "%s%s", v, (i == 1 ? " " : "\n")
			}
		}'
}
# drain_wait GROUP: wait until GROUP (1 commit, 2 route) has nothing left;
# gives up after $stall_s s without progress or $drain_limit_s in all.
# 0 when drained.
drain_wait() {
	best=
	since=0
	i=0
	while [ "$i" -lt $((drain_limit_s * 2)) ]; do
		b=$(backlogs | awk -v k="$1" '{ print $k }')
		[ "$b" = 0 ] && return 0
		case $b in
		''|NA) ;;
		*)
			if [ -z "$best" ] || [ "$b" -lt "$best" ]; then best=$b since=0; fi
			;;
		esac
		since=$((since + 1))
		[ "$since" -ge $((stall_s * 2)) ] && return 1
		sleep 0.5
		i=$((i + 1))
	done
	return 1
}

# The processes of the stack, for their CPU: each daemon's pid file (there
# may be more than one batch-commit), Redis's, and PostgreSQL's postmaster
# with its children. A process's ticks count those of its children it
# reaped (cutime, cstime): a backend that ended, Redis's rewrite of its AOF.
ppid_of() { awk '{ sub(/^.*\) /, ""); print $2 }' "/proc/$1/stat" 2>/dev/null; }
ckp=$(sql -c "select pid from pg_stat_activity where backend_type = 'checkpointer'") ||
	die 70 "PostgreSQL does not answer"
pgpm=$(ppid_of "$ckp")
case $pgpm in ''|*[!0-9]*|0|1) die 70 "cannot find PostgreSQL's postmaster" ;; esac
group_of() {
	case $1 in
	batch-commit*) echo batch-commit ;;
	ingest*) echo ingest ;;
	route*) echo route ;;
	notify*) echo notify ;;
	redis*) echo redis ;;
	*) echo "$1" ;;
	esac
}
# cpu_snap FILE: "GROUP PID TICKS" a line, and "machine - BUSY" (the
# machine's busy ticks, all cores)
cpu_snap() {
	{
		for pidf in "$LABPULSE_RUNDIR"/*.pid; do
			[ -f "$pidf" ] || continue
			pid=$(cat "$pidf" 2>/dev/null) || continue
			[ -e "/proc/$pid/stat" ] || continue
			t=$(ticks "$pid" all)
			[ -n "$t" ] && echo "$(group_of "$(basename "$pidf" .pid)") $pid $t"
		done
		t=$(ticks "$pgpm" all)
		for c in $(pgrep -P "$pgpm"); do
			t=$((${t:-0} + $(ticks "$c" all)))
		done
		echo "postgresql $pgpm ${t:-0}"
		awk '$1 == "cpu" { print "machine -", $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
	} >"$1"
}
# cpu_json BEFORE AFTER EVENTS CLIENT_S WALL_S: µs of CPU an event for each
# group and the stack, % of one core, and the rest of the machine
cpu_json() {
	awk -v n="$3" -v hz="$clk" -v cl="$4" -v w="$5" -v cores="$cores" '
		NR == FNR { b[$1 " " $2] = $3; next }
		{
			d = $3 - ((($1 " " $2) in b) ? b[$1 " " $2] : 0)
			if (d < 0) d = 0
			if ($1 == "machine") { m = d; next }
			g[$1] += d
			if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 }
			tot += d
		}
		END {
			if (n <= 0) n = 1
			if (w <= 0) w = 1
			printf "{\"us_per_event\":{"
			for (i = 1; i <= k; i++)
				printf "\"%s\":%.2f,", order[i], g[order[i]] / hz * 1e6 / n
			printf "\"stack\":%.2f,\"client\":%.2f},", tot / hz * 1e6 / n, cl * 1e6 / n
			printf "\"pct_of_core\":{"
			for (i = 1; i <= k; i++)
				printf "\"%s\":%.1f,", order[i], g[order[i]] / hz / w * 100
			o = (m - tot) / hz / w * 100 - cl / w * 100
			if (o < 0) o = 0
			printf "\"stack\":%.1f,\"client\":%.1f},", tot / hz / w * 100, cl / w * 100
			printf "\"machine_busy_pct\":%.1f,\"others_pct_of_core\":%.1f,\"seconds\":%.2f}\n", m / hz / w / cores * 100, o, w
		}' "$1" "$2"
}

# phase NAME BATCH RATE SECONDS [loadgen]: one load of httpbench, RATE
# events/s offered (0: flat out), from empty tables on a drained stack, to
# its last committed row. Writes $runs/NAME.json.
phase() {
	name=$1 batch=$2 rate=$3 secs=$4 with_lg=${5:-}
	drain_wait 1 || info "   the commit group is not drained before $name"
	drain_wait 2 || info "   the route group is not drained before $name"
	sql -c "SET lock_timeout = '30s'; TRUNCATE events, dead_events, student_progress" ||
		die 70 "cannot truncate the tables before $name"
	sql -c CHECKPOINT || die 70 "PostgreSQL does not answer"
	f=$runs/$name
	: >"$f.samples"
	rm -f "$f.stop"
	cpu_snap "$f.cpu0"
	set -- --url "$url" --conns "$conns" --duration "$secs" --warmup 0 \
		--batch "$batch" --classes "$classes" --json
	[ "$rate" -gt 0 ] && set -- "$@" --rate $((rate / batch))
	t0=$(now)
	# the backlog of both groups every 0.5 s, until the phase is drained
	(
		while [ ! -e "$f.stop" ]; do
			printf '%s %s\n' "$(now)" "$(backlogs)"
			sleep 0.5
		done
	) >"$f.samples" 2>/dev/null &
	sampler_pid=$!
	timeout $((secs + 60)) "$bench" "$@" >"$f.hb" 2>"$f.err" &
	hb_pid=$!
	if [ -n "$with_lg" ]; then
		# the class runs inside the hold, on its own class loadgen-0
		lg_s=$((secs > 10 ? secs - 5 : secs))
		timeout $((lg_s + 120)) "$loadgen" --students 200 --classes 1 \
			--dashboards 10 --think 0.05 --duration "${lg_s}s" \
			--setup --verify-db --seed 7 \
			--slo "ack_p99<${t_lg_ms}ms,e2e_p99<${t_lg_ms}ms,lost=0,missing=0,duplicated=0" \
			--quiet --json "$runs/loadgen.json" \
			</dev/null >"$runs/loadgen.out" 2>"$runs/loadgen.err" &
		lg_pid=$!
	fi
	wait "$hb_pid"
	hb_rc=$?
	t1=$(now)
	if [ -n "$with_lg" ]; then
		wait "$lg_pid"
		lg_rc=$?
		lg_pid=
	fi
	if [ "$hb_rc" -gt 1 ] || ! jq -e .requests "$f.hb" >/dev/null 2>&1; then
		cat "$f.err" >&2
		die 70 "httpbench failed with status $hb_rc in $name"
	fi
	drained=1
	drain_wait 1 || drained=0
	drain_wait 2 || info "   the route group is not drained after $name"
	sleep 0.5
	cpu_snap "$f.cpu1"
	touch "$f.stop"
	wait "$sampler_pid"
	sampler_pid=
	[ "$drained" = 1 ] || info "   the commit group did not drain after $name: $(backlogs | awk '{ print $1 }') entries left"
	res=$(sql -F ' ' -c "select count(*), count(distinct event_id),
		coalesce(extract(epoch from max(committed_at)), 0),
		coalesce(extract(epoch from min(received_at)), 0)
		from events where class_id like 'bench-%'") || die 70 "cannot count the rows of $name"
	dead=$(sql -c 'select count(*) from dead_events')
	set -- $res
	rows=$1 distinct=$2 last=$3 first=$4
	client_s=$(jq '.cpu.user_s + .cpu.sys_s' "$f.hb")
	span=$(calc 'l > t ? l - t : 0' l="$last" t="$t0")
	durable=$(calc 's > 0 ? r / s : 0' r="$rows" s="$span" fmt=%.0f)
	offered=$rate
	[ "$rate" -gt 0 ] || offered=$(jq .events_per_s "$f.hb")
	# the backlog while loaded, in entries and in seconds of load
	awk -v t0="$t0" -v t1="$t1" -v r="$offered" '
		{ t = $1 - t0; if ($1 <= t1 + 0.25) { n++; if ($2 ~ /^[0-9]+$/) { if ($2 > m) m = $2 } else na++; if ($3 ~ /^[0-9]+$/ && $3 > mr) mr = $3 } }
		END { printf "%d %.3f %d %d %d\n", m, (r > 0 ? m / r : 0), mr, n, na }' "$f.samples" >"$f.blmax"
	set -- $(cat "$f.blmax")
	bl_max=$1 bl_max_s=$2 bl_route=$3 bl_na=$5
	cpu=$(cpu_json "$f.cpu0" "$f.cpu1" "$rows" "$client_s" "$(calc 'b - a' a="$t0" b="$(now)")")
	# an open-model hold passes when the backlog stayed under 1 s of load,
	# and every POST fell due, was sent and answered 202 at the offered rate
	pass=null
	why=
	if [ "$rate" -gt 0 ]; then
		why=$(jq -r --argjson r "$rate" --argjson bs "$bl_max_s" --argjson na "$bl_na" '
			[ (if $bs >= 1 then "backlog \($bs) s of load" else empty end),
			  (if $na > 0 then "\($na) samples without a lag" else empty end),
			  (if .requests.ok < .requests.sent then "\(.requests.sent - .requests.ok) POSTs not answered 2xx" else empty end),
			  (if .backlog > 0 then "\(.backlog) POSTs due and never sent" else empty end),
			  (if .events_per_s < 0.95 * $r then "accepted \(.events_per_s)/s of \($r)/s" else empty end)
			] | join("; ")' "$f.hb")
		if [ -z "$why" ]; then pass=true; else pass=false; fi
	fi
	jq -n --arg name "$name" --argjson batch "$batch" --argjson rate "$rate" \
		--argjson secs "$secs" --slurpfile hb "$f.hb" \
		--argjson rows "$rows" --argjson distinct "$distinct" --argjson dead "$dead" \
		--argjson span "$span" --argjson durable "$durable" \
		--argjson drained "$drained" --argjson offered "$offered" \
		--argjson bl_max "$bl_max" --argjson bl_max_s "$bl_max_s" \
		--argjson bl_route "$bl_route" --argjson bl_na "$bl_na" \
		--argjson cpu "$cpu" --argjson pass "$pass" --arg why "$why" \
		--argjson load_s "$(calc 'b - a' a="$t0" b="$t1")" \
		--argjson first_s "$(calc 'f > 0 ? f - t : 0' f="$first" t="$t0")" \
		--rawfile samples "$f.samples" --argjson t0 "$t0" \
		'$hb[0] as $h | {
		  name: $name, events_per_post: $batch,
		  offered_events_per_s: (if $rate > 0 then $rate else null end),
		  load_seconds: $load_s,
		  accepted: $h.events.accepted, accepted_per_s: $h.events_per_s,
		  requests: $h.requests, status: $h.status, errors: $h.errors,
		  due_never_sent: $h.backlog, latency_ms: $h.latency_ms,
		  rows: $rows, durable_per_s: $durable,
		  last_commit_after_start_s: $span, first_received_after_start_s: $first_s,
		  drained: ($drained == 1),
		  lost: ([$h.events.accepted - $rows, 0] | max),
		  extra_rows: ([$rows - $h.events.accepted, 0] | max),
		  doubled: ($rows - $distinct), dead_events: $dead,
		  backlog: {max_entries: $bl_max, max_seconds_of_load: $bl_max_s,
		    route_max_entries: $bl_route, samples_without_lag: $bl_na,
		    samples: [$samples | split("\n")[] | select(length > 0) | split(" ") |
		      [((.[0] | tonumber) - $t0 | . * 100 | round / 100),
		       (.[1] | tonumber? // null), (.[2] | tonumber? // null)]]},
		  cpu: $cpu,
		  pass: $pass, why: (if $why == "" then null else $why end)
		}' >"$f.json" || die 70 "cannot write the figures of $name"
	info "   $(jq -r '"accepted \(.accepted) (\(.accepted_per_s)/s), rows \(.rows), durable \(.durable_per_s)/s, last row \(.last_commit_after_start_s) s after the start; backlog max \(.backlog.max_entries) (\(.backlog.max_seconds_of_load) s of load); stack CPU \(.cpu.us_per_event.stack) µs/event; lost \(.lost), doubled \(.doubled)"' "$f.json")"
}

# ---- a. flat out, POSTs of 10 ----
info "a. flat out: POSTs of 10, $conns connections, ${run_s} s"
phase flat10 10 0 "$run_s"

# ---- r. the reference: \copy of the same rows ----
info "r. reference: \\copy of the same rows into labpulse_ref, $copy_runs runs"
copyf=$home/events.copy
PGTZ=UTC sql -c "\\copy (select $cols from events where class_id like 'bench-%' order by id) to '$copyf'" ||
	die 70 "\\copy of the events out failed"
copy_n=$(wc -l <"$copyf")
dropdb --if-exists labpulse_ref >/dev/null 2>&1
createdb labpulse_ref || die 70 "createdb labpulse_ref failed"
"$top/bin/migrate-indexes" --db dbname=labpulse_ref --dir "$top/etc/migrations" up \
	>"$runs/migrate-ref.log" 2>&1 || { cat "$runs/migrate-ref.log" >&2; die 70 "migrations on labpulse_ref failed"; }
copy_rates=
for i in $(seq "$copy_runs"); do
	sql -d labpulse_ref -c 'TRUNCATE events' -c CHECKPOINT || die 70 "cannot truncate labpulse_ref"
	tc0=$(now)
	PGTZ=UTC timeout 900 psql -Xq -v ON_ERROR_STOP=1 -d labpulse_ref \
		-c "\\copy events ($cols) from '$copyf'" >"$runs/copy.out" 2>&1 ||
		{ cat "$runs/copy.out" >&2; die 70 "\\copy into labpulse_ref failed"; }
	tc1=$(now)
	cn=$(sql -d labpulse_ref -c 'select count(*) from events')
	[ "$cn" -eq "$copy_n" ] || die 70 "\\copy loaded $cn rows, not $copy_n"
	v=$(calc 'n / (b - a)' n="$cn" a="$tc0" b="$tc1" fmt=%.0f)
	copy_rates="$copy_rates $v"
	info "   run $i: $cn rows in $(calc 'b - a' a="$tc0" b="$tc1") s: $v rows/s"
done
copy_rate=$(median $copy_rates)
dropdb labpulse_ref
rm -f "$copyf"

# ---- b. flat out, single-event POSTs ----
info "b. flat out: single-event POSTs, $conns connections, ${run_s} s"
phase flat1 1 0 "$run_s"

# ---- c. the open model ----
info "c. open model: POSTs of $hold_batch at$(printf ' %s' $rates) events/s, ${rate_s} s each"
sustain=0
held=
first_fail=
for r in $rates; do
	info "   offered $r events/s ($((r / hold_batch)) POSTs/s)"
	phase "hold$r" "$hold_batch" "$r" "$rate_s"
	held="$held $r"
	if [ "$(jq .pass "$runs/hold$r.json")" = true ]; then
		sustain=$r
	else
		first_fail=$r
		info "   $r events/s not sustained: $(jq -r .why "$runs/hold$r.json")"
		break
	fi
done

# ---- d. the class of 200 beside the load ----
lg_rate=
lg_rc=
lg_ok=0
if [ "$lg_on" = 1 ]; then
	lg_rate=$sustain
	[ "$lg_rate" -gt 0 ] || lg_rate=$lowest
	info "d. the class of 200 (loadgen, class loadgen-0) during a hold of $lg_rate events/s on bench-*"
	phase "lg$lg_rate" "$hold_batch" "$lg_rate" "$rate_s" loadgen
	if [ "$lg_rc" -le 1 ] && jq -e .total "$runs/loadgen.json" >/dev/null 2>&1; then
		lg_ok=1
		info "   loadgen: $(jq -r '"ack p99 \(.total.ack_us.p99) us, e2e p99 \(.total.e2e_us.p99) us, \(if .pass then "PASS" else "FAIL" end)"' "$runs/loadgen.json")"
	else
		cat "$runs/loadgen.out" "$runs/loadgen.err" >&2
		info "   loadgen failed with status $lg_rc"
		keep=1
	fi
fi

# ---- the report ----
J() { jq -r "$2" "$runs/$1.json"; }
meets() { calc "(v $2 t) ? 1 : 0" v="$1" t="$3" fmt=%d | sed 's/1/met/; s/0/missed/'; }
d10=$(J flat10 .durable_per_s)
d1=$(J flat1 .durable_per_s)
cpu10=$(J flat10 .cpu.us_per_event.stack)
r_copy=$(ratio "$d10" "$copy_rate")
st_d10=missed
[ "$(meets "$d10" '>=' "$t_durable10")" = met ] && [ "$(meets "$r_copy" '>=' "$t_copy")" = met ] && st_d10=met
st_d1=$(meets "$d1" '>=' "$t_durable1")
st_sus=$(meets "$sustain" '>=' "$t_sustain")
st_cpu=$(meets "$cpu10" '<=' "$t_cpu")
phases="flat10 flat1"
for r in $held; do phases="$phases hold$r"; done
[ -n "$lg_rate" ] && phases="$phases lg$lg_rate"
lost=0 doubled=0 extra=0
for p in $phases; do
	lost=$((lost + $(J "$p" .lost)))
	doubled=$((doubled + $(J "$p" .doubled)))
	extra=$((extra + $(J "$p" .extra_rows)))
done
st_lost=$(meets "$((lost + doubled + extra))" '==' 0)
if [ "$lg_ok" = 1 ]; then
	lg_ack=$(calc 'v / 1000' v="$(jq .total.ack_us.p99 "$runs/loadgen.json")" fmt=%.2f)
	lg_e2e=$(calc 'v / 1000' v="$(jq .total.e2e_us.p99 "$runs/loadgen.json")" fmt=%.2f)
	st_lg_ack=$(meets "$lg_ack" '<' "$t_lg_ms")
	st_lg_e2e=$(meets "$lg_e2e" '<' "$t_lg_ms")
else
	lg_ack=- lg_e2e=- st_lg_ack=not-measured st_lg_e2e=not-measured
	[ "$lg_on" = 1 ] || st_lg_ack=skipped st_lg_e2e=skipped
fi
sus_shown=$sustain
[ -z "$first_fail" ] && sus_shown=">= $sustain"
[ "$sustain" = 0 ] && sus_shown="< $lowest"

int() { calc v v="$1" fmt=%.0f; }
row() { printf '%-46s %14s %20s %7s  %-26s %s\n' "$@"; }
say
say "stack benchmark: the whole stack from labpulse up (ingest, batch-commit, route, notify, Redis, PostgreSQL)"
say "and httpbench share this machine's $cores cores; $conns connections, ~$(jq .events.bytes "$runs/flat10.hb") B events of 200 students in $classes classes"
say "phases on one stack, tables truncated between them; durable = rows / (last row's committed_at - load start)"
say
row "figure" "measured" "reference" "ratio" "target" "result"
row "a. durable events/s, POSTs of 10, flat out" "$(int "$d10")/s" "\\copy $(int "$copy_rate")/s" "$r_copy" ">= $t_durable10/s, >= $t_copy x \\copy" "$st_d10"
row "   Python design, POSTs of 10 (quoted)" "" "$q_batch10/s" "$(ratio "$d10" "$q_batch10")" "" ""
row "b. durable events/s, single-event POSTs" "$(int "$d1")/s" "quoted $q_single/s" "$(ratio "$d1" "$q_single")" ">= $t_durable1/s" "$st_d1"
row "c. sustainable rate, backlog < 1 s" "$sus_shown/s" "" "" ">= $t_sustain/s" "$st_sus"
row "a. CPU of the stack, µs an event, POSTs of 10" "$cpu10 µs" "quoted ~$q_cpu µs" "$(ratio "$cpu10" "$q_cpu")" "<= $t_cpu µs" "$st_cpu"
row "lost + doubled + extra rows, all phases" "$lost + $doubled + $extra" "" "" "0" "$st_lost"
row "d. loadgen class of 200: ack p99" "$lg_ack ms" "" "" "< $t_lg_ms ms" "$st_lg_ack"
row "d. loadgen class of 200: POST-to-dashboard p99" "$lg_e2e ms" "" "" "< $t_lg_ms ms" "$st_lg_e2e"
say
say "quoted, not measured: the Python design of the issue, $q_single durable/s single-event, $q_batch10 in POSTs of 10, ~$q_cpu µs CPU an event"
say "reference runs (\\copy of $copy_n rows, rows/s):$copy_rates"
say
prow() { printf '%-11s %9s %11s %10s %10s %8s %11s %9s %6s %7s\n' "$@"; }
prow "phase" "offered/s" "accepted/s" "accepted" "durable/s" "last (s)" "backlog max" "(s load)" "lost" "doubled"
for p in $phases; do
	prow "$p" "$(J "$p" '.offered_events_per_s // "flat out"')" "$(int "$(J "$p" .accepted_per_s)")" \
		"$(J "$p" .accepted)" "$(J "$p" .durable_per_s)" "$(J "$p" .last_commit_after_start_s | xargs printf '%.2f')" \
		"$(J "$p" .backlog.max_entries)" "$(J "$p" .backlog.max_seconds_of_load)" "$(J "$p" .lost)" "$(J "$p" .doubled)"
done
say
say "the commit group's backlog (entries) every 2 s while loaded; then the route group's max:"
for p in $phases; do
	say "  $p: $(jq -r '.load_seconds as $l |
		[.backlog.samples[] | select(.[0] <= ($l + 0.25))] | [foreach .[] as $s ({n: 0, out: null};
		if $s[0] >= .n * 2 then {n: (.n + 1), out: $s} else {n: .n, out: null} end; .out) | select(. != null) |
		(if .[1] == null then "NA" elif .[1] >= 1000 then "\(.[1] / 1000 | . * 10 | round / 10)k" else "\(.[1])" end)] | join(" ")' "$runs/$p.json")" \
		"| route max $(J "$p" .backlog.route_max_entries)$(J "$p" 'if .pass == false then " | not sustained: " + .why else "" end')"
done
say
say "CPU µs an event, from the load's start until both groups drained, for each process, the stack's sum and the client; % of one core:"
crow() { printf '%-11s %8s %8s %8s %8s %8s %8s %8s %8s | %s\n' "$@"; }
crow "phase" "ingest" "b-commit" "route" "notify" "redis" "postgres" "stack" "client" "% of a core: stack, client, others; machine % of $cores cores"
for p in $phases; do
	crow "$p" $(J "$p" '.cpu.us_per_event | [.ingest, .["batch-commit"], .route, .notify, .redis, .postgresql, .stack, .client] | map(. // "-" | tostring) | join(" ")') \
		"$(J "$p" '"\(.cpu.pct_of_core.stack), \(.cpu.pct_of_core.client), \(.cpu.others_pct_of_core); \(.cpu.machine_busy_pct)"')"
done
say "(others: work on the machine outside the stack and the client, which disturbs the figures)"
others_max=$(jq -s 'map(.cpu.others_pct_of_core) | max' $(for p in $phases; do echo "$runs/$p.json"; done))
[ "$(meets "$others_max" '>' 25)" = met ] &&
	say "warning: other work took up to $others_max% of a core during the phases: the figures are this stack's share of a busy machine, not its capacity"
if [ "$lg_ok" = 1 ]; then
	say
	say "d. loadgen during the hold of $lg_rate events/s ($(J "lg$lg_rate" 'if .pass then "held, backlog under 1 s" else "not held: " + .why end')): $(jq -r '"\(.total.requests.per_s_achieved) POSTs/s, ack p50 \(.total.ack_us.p50) us p99 \(.total.ack_us.p99) us, e2e p50 \(.total.e2e_us.p50) us p99 \(.total.e2e_us.p99) us, delivery \(.delivery_pct)%, lost \(.total.events.lost); \(if .pass then "PASS" else "FAIL" end)"' "$runs/loadgen.json")"
fi

lgjson=null
[ "$lg_ok" = 1 ] && lgjson=$(jq -c '{pass, exit_status: $rc, requests_per_s: .total.requests.per_s_achieved,
	ack_us: .total.ack_us, e2e_us: .total.e2e_us, delivery_pct, lost: .total.events.lost,
	verify_db, slo}' --argjson rc "$lg_rc" "$runs/loadgen.json")
for p in $phases; do cat "$runs/$p.json"; done | jq -s . >"$runs/phases.json" ||
	die 70 "cannot gather the phases"
jq -n \
	--argjson cores "$cores" --argjson conns "$conns" --argjson classes "$classes" \
	--argjson run_s "$run_s" --argjson rate_s "$rate_s" --arg rates "$rates" \
	--argjson copy_rate "$copy_rate" --argjson copy_n "$copy_n" \
	--argjson copy_runs "[$(echo $copy_rates | tr ' ' ',')]" \
	--argjson sustain "$sustain" --arg first_fail "$first_fail" \
	--argjson d10 "$d10" --argjson d1 "$d1" --argjson cpu10 "$cpu10" --argjson r_copy "$r_copy" \
	--argjson lost "$lost" --argjson doubled "$doubled" --argjson extra "$extra" \
	--arg st_d10 "$st_d10" --arg st_d1 "$st_d1" --arg st_sus "$st_sus" --arg st_cpu "$st_cpu" \
	--arg st_lost "$st_lost" --arg st_lg_ack "$st_lg_ack" --arg st_lg_e2e "$st_lg_e2e" \
	--arg lg_ack "$lg_ack" --arg lg_e2e "$lg_e2e" --arg lg_rate "${lg_rate:-}" --argjson lg "$lgjson" \
	--argjson t_d10 "$t_durable10" --argjson t_copy "$t_copy" --argjson t_d1 "$t_durable1" \
	--argjson t_sus "$t_sustain" --argjson t_cpu "$t_cpu" --argjson t_lg "$t_lg_ms" \
	--argjson q_single "$q_single" --argjson q_batch10 "$q_batch10" --argjson q_cpu "$q_cpu" \
	--slurpfile phases "$runs/phases.json" \
	--argjson others_max "$others_max" \
	'def num: tonumber? // null;
	{
	  benchmark: "stack",
	  note: "the whole stack from labpulse up and the client share the machine'"'"'s \($cores) cores; tables truncated between phases",
	  settings: {cores: $cores, conns: $conns, classes: $classes, flat_out_s: $run_s,
	    hold_s: $rate_s, others_pct_of_core_max: $others_max, rates: ($rates | split(" ") | map(select(. != "") | tonumber)),
	    durable: "rows / (max(committed_at) - load start); committed_at is the batch transaction'"'"'s start"},
	  figures: {
	    durable_per_s_posts_of_10: {value: $d10, reference_copy_rows_per_s: $copy_rate,
	      ratio_to_copy: $r_copy, target: ">= \($t_d10) and >= \($t_copy) x \\copy", status: $st_d10},
	    durable_per_s_single: {value: $d1, target: ">= \($t_d1)", status: $st_d1},
	    sustainable_events_per_s: {value: $sustain, all_rates_held: ($first_fail == ""),
	      first_failed: ($first_fail | num), target: ">= \($t_sus)", status: $st_sus},
	    stack_cpu_us_per_event_posts_of_10: {value: $cpu10, target: "<= \($t_cpu)", status: $st_cpu},
	    lost_doubled_extra: {lost: $lost, doubled: $doubled, extra_rows: $extra, target: 0, status: $st_lost},
	    loadgen_ack_p99_ms: {value: ($lg_ack | num), target: "< \($t_lg)", status: $st_lg_ack},
	    loadgen_e2e_p99_ms: {value: ($lg_e2e | num), target: "< \($t_lg)", status: $st_lg_e2e}
	  },
	  reference: {how: "psql \\copy of the rows of phase flat10 into a second database with the same migrations, median",
	    rows: $copy_n, rows_per_s: $copy_rate, runs: $copy_runs},
	  quoted_not_measured: {what: "the Python design of the issue",
	    durable_per_s_single: $q_single, durable_per_s_posts_of_10: $q_batch10, cpu_us_per_event: $q_cpu},
	  loadgen: {during_hold_of: ($lg_rate | num), class: "loadgen-0, 200 students, --think 0.05, 10 dashboards", report: $lg},
	  phases: $phases[0]
	}' >"$out/stack.json" || die 70 "cannot write $out/stack.json"
say "written: tests/bench/out/stack.json"
[ "$lg_on" = 1 ] && [ "$lg_ok" = 0 ] && die 70 "loadgen failed with status $lg_rc (figures above and in stack.json)"
exit 0
