#!/bin/sh
# commit.sh: how fast batch-commit moves events from the stream into
# PostgreSQL on this machine, beside the ceiling of psql's \copy of the same
# rows; how soon it commits at low load; and the whole path from POST to row.
# Run by `make bench`, which builds what it needs, or alone:
#   sh tests/bench/commit.sh
# COMMIT_BENCH_EVENTS sets the events of the bulk run (default 1000000);
# COMMIT_BENCH_CONSUMERS the batch-commit processes sharing it (default 2,
# the one-machine deployment of the design; 1 measures a single consumer);
# COMMIT_BENCH_CURL=1 posts the end-to-end load with curl even when
# tests/bench/httpbench is built.
# A benchmark reports: a missed target still exits 0; only a step that cannot
# run exits non-zero (64 bad settings, 69 a tool or build is missing, 70 a
# run failed).
prog="bench-commit"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# batch-commit would prefer it to the stack's PG* variables
unset DATABASE_URL
gen=$top/tests/bench/genevents.awk
bench=$top/tests/bench/httpbench
n=${COMMIT_BENCH_EVENTS:-1000000}
# batch-commit processes in the group for the bulk run (the one-machine
# deployment of DESIGN.md runs several)
consumers=${COMMIT_BENCH_CONSUMERS:-2}
bulk_limit_s=600	# the bulk run gives up after this long
lat_rate=20		# events/s of the low-load phase ...
lat_s=10		# ... for this long
probes=5		# events timed from POST to visible row
e2e_s=10		# end-to-end load: seconds ...
e2e_conns=200		# ... over this many connections, one event a POST
# targets
t_ratio=0.60		# batch-commit at least 60% of \copy
t_close_ms=50		# batches close within 50 ms at low load (--max-wait)

cols="class_id, student_id, event_id, event_type, event_time, received_at, session_id, notebook_path, cell_id, cell_index, cell_type, execution_count, has_error, execution_duration_ms, payload"

# printf, not echo: a shell's echo may take the backslash of \copy as an escape
say() { printf '%s\n' "$*"; }

case $n in ''|*[!0-9]*|0*) die 64 "COMMIT_BENCH_EVENTS must be a positive integer, not '$n'" ;; esac
case $consumers in [1-8]) ;; *) die 64 "COMMIT_BENCH_CONSUMERS must be 1 to 8, not '$consumers'" ;; esac
need_target=all
need_files "$top/bin/labpulse" "$top/bin/stack" "$top/bin/ingest" \
	"$top/bin/batch-commit" "$top/bin/migrate-indexes"
[ -r "$gen" ] || die 69 "$gen is missing"
need_tools redis-cli psql createdb dropdb socat jq curl awk xargs timeout

bc_pids=
# the batch-commits of the benchmark, stopped (killed after 10 s) before
# the stack
# shellcheck disable=SC2317 # called by the EXIT trap
bench_stop() {
	for p in $bc_pids; do kill -TERM "$p" 2>/dev/null; done
	for p in $bc_pids; do
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
	done
}
bench_home lpbench

# ---- helpers ----
now() { date +%s.%N; }
mib() { calc 'k / 1024' k="${1:-0}" fmt=%.1f; }
redis() { redis-cli -s "$rsock" "$@"; }
sql() { psql -XqtA -v ON_ERROR_STOP=1 "$@"; }
# stats_of SOCKET: batch-commit's stats object, or nothing
stats_of() {
	s=$(timeout 5 socat -T 3 - "UNIX-CONNECT:$1" </dev/null 2>/dev/null)
	# jq -e is content with no input at all: test for an object
	[ -n "$s" ] && printf '%s' "$s" | jq -e 'type == "object"' >/dev/null 2>&1 &&
		printf '%s\n' "$s"
}
# group_field FIELD: a field of the consumer group commit in XINFO GROUPS
group_field() {
	redis XINFO GROUPS labpulse:events | awk -v f="$1" '
		NR % 2 == 1 { k = $0; next }
		k == "name" { g = $0 }
		g == "commit" && k == f { print; exit }'
}
stream_last() {
	redis XINFO STREAM labpulse:events | awk '$0 == "last-generated-id" { getline; print; exit }'
}
# drained: nothing pending and everything delivered to the group commit
drained() {
	[ "$(group_field pending)" = 0 ] &&
		[ "$(group_field last-delivered-id)" = "$(stream_last)" ]
}
# wait_drained SECONDS: poll every 0.5 s; 0 when drained in time
wait_drained() {
	i=0
	while [ "$i" -lt $(($1 * 2)) ]; do
		drained && return 0
		sleep 0.5
		i=$((i + 1))
	done
	drained
}
# start_bc NAME: a batch-commit with default flags and the stack's
# environment, its stats on $home/NAME.sock; sets bc_pid
start_bc() {
	"$top/bin/batch-commit" --stats "$home/$1.sock" \
		</dev/null >>"$LABPULSE_HOME/log/bench-$1.log" 2>&1 &
	bc_pid=$!
	bc_pids="$bc_pids $bc_pid"
}
bc_alive() {
	kill -0 "$1" 2>/dev/null && return 0
	tail -n 5 "$LABPULSE_HOME/log/bench-$2.log" >&2
	die 70 "batch-commit ($2) exited during the benchmark"
}
# stop_bc PID NAME: SIGTERM, wait up to 20 s; its exit status in stop_rc
stop_bc() {
	kill -TERM "$1" 2>/dev/null
	for _ in $(seq 200); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$1" 2>/dev/null; then
		info "batch-commit ($2) did not stop in 20 s after SIGTERM; killing it"
		kill -KILL "$1" 2>/dev/null
	fi
	wait "$1"
	stop_rc=$?
}
# CPU: ticks of a process (user + system), and of the machine (busy, all)
clk=$(getconf CLK_TCK 2>/dev/null || echo 100)
machine() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
# pct T0 T1 SECONDS: ticks as % of one core
pct() { calc '(b - a) / hz / s * 100' a="${1:-0}" b="${2:-0}" hz="$clk" s="$3" fmt=%.0f; }
# mpct "BUSY0 ALL0" "BUSY1 ALL1": the machine's busy % of all its cores
mpct() {
	set -- $1 $2
	calc '(c - a) / (d - b) * 100' a="$1" b="$2" c="$3" d="$4" fmt=%.0f
}
jnum() { v=$(printf '%s' "$1" | jq -r "$2 // empty" 2>/dev/null); echo "${v:-0}"; }

# ---- the stack ----
info "starting a private stack"
# the stream fills on purpose here: no backlog bound in ingest
bench_up LABPULSE_INGEST_FLAGS="--max-backlog 0 --max-backlog-bytes 0"
rsock=${LABPULSE_REDIS#unix:}
url=$LABPULSE_INGEST_URL/api/v1/events
cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
run=$(date +%H%M%S)-$$

# a. the stack's own batch-commit consumers (one per core) stop, so the
# stream fills first
for f in "$LABPULSE_RUNDIR"/batch-commit.pid "$LABPULSE_RUNDIR"/batch-commit-[0-9]*.pid; do
	[ -f "$f" ] || continue
	sbc=$(cat "$f") || die 70 "cannot read $f"
	kill -TERM "$sbc" 2>/dev/null || die 70 "the stack's batch-commit ($sbc) is not running"
	for _ in $(seq 150); do kill -0 "$sbc" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$sbc" 2>/dev/null && die 70 "the stack's batch-commit ($sbc) did not stop in 15 s"
done
[ "$(redis EXISTS labpulse:events)" = 1 ] || redis XGROUP CREATE labpulse:events commit 0 MKSTREAM >/dev/null
x0=$(redis XLEN labpulse:events)

# b. N events into the stream, and the same rows as COPY text
info "b. generating $n events and loading them with redis-cli --pipe"
copyf=$home/events.copy
t0=$(now)
{ awk -v n="$n" -v seed=1 -v copy="$copyf" -f "$gen"; echo $? >"$home/gen.rc"; } |
	timeout 900 redis-cli -s "$rsock" --pipe >"$home/pipe.out" 2>&1
t1=$(now)
[ "$(cat "$home/gen.rc")" = 0 ] || die 70 "genevents.awk failed"
grep -q "errors: 0, replies: $n\$" "$home/pipe.out" || { cat "$home/pipe.out" >&2; die 70 "redis-cli --pipe did not load $n events"; }
x1=$(redis XLEN labpulse:events)
[ $((x1 - x0)) -eq "$n" ] || die 70 "the stream holds $((x1 - x0)) new entries, not $n"
load_s=$(calc 'b - a' a="$t0" b="$t1")
ev_bytes=$(redis XRANGE labpulse:events - + COUNT 1000 | awk 'NR % 3 == 0 { s += length($0); k++ } END { printf "%.0f", k ? s / k : 0 }')
redis_mib=$(redis INFO memory | awk -F: '$1 == "used_memory" { printf "%.0f", $2 / 1048576 }')
info "   loaded in ${load_s} s (generating included); $ev_bytes bytes an event; Redis uses $redis_mib MiB"
# an AOF rewrite after the load would compete with the run: let it finish
for _ in $(seq 240); do
	redis INFO persistence | grep -q '^aof_rewrite_in_progress:0' &&
		redis INFO persistence | grep -q '^aof_rewrite_scheduled:0' && break
	sleep 0.5
done
sql -c CHECKPOINT || die 70 "PostgreSQL does not answer"

# c. batch-commit, default flags, from the full stream
info "c. batch-commit: $n events from the stream with $consumers consumer(s) (done when rows_committed + dead + duplicates = $n)"
start_bc bulk
bc1=$bc_pid
k=2
while [ "$k" -le "$consumers" ]; do
	start_bc "bulk$k"
	k=$((k + 1))
done
tc0=$(now)
m0=$(machine)
b0=$(ticks "$bc1")
rpid=$(cat "$LABPULSE_RUNDIR/redis.pid" 2>/dev/null)
r0=$(ticks "$rpid")
pgb=
i=0
done_c=0
rss_max=0
while [ "$i" -lt $((bulk_limit_s * 2)) ]; do
	sleep 0.5
	i=$((i + 1))
	bc_alive "$bc1" bulk
	r=$(kib_of "$bc1" VmRSS)
	[ "${r:-0}" -gt "$rss_max" ] && rss_max=$r
	st=$(stats_of "$home/bulk.sock") || continue
	if [ -z "$pgb" ]; then
		# batch-commit's server process, for its CPU time
		pgb=$(sql -c "select pid from pg_stat_activity where application_name = 'labpulse-batch-commit' limit 1")
		g0=$(ticks "$pgb")
	fi
	handled=$(printf '%s' "$st" | jq '.rows_committed + .dead_rows + .duplicates_skipped')
	k=2
	while [ "$k" -le "$consumers" ]; do
		stk=$(stats_of "$home/bulk$k.sock") || { k=$((k + 1)); continue; }
		handled=$((handled + $(printf '%s' "$stk" | jq '.rows_committed + .dead_rows + .duplicates_skipped')))
		k=$((k + 1))
	done
	if [ "$handled" -ge "$n" ]; then
		done_c=1
		break
	fi
	[ $((i % 20)) -eq 0 ] && info "   $(printf '%s' "$st" | jq -r '"\(.rows_committed) rows, \(.batches) batches"') after $((i / 2)) s"
done
tc1=$(now)
bulk_s=$(calc 'b - a' a="$tc0" b="$tc1")
cpu_c="batch-commit $(pct "$b0" "$(ticks "$bc1")" "$bulk_s")%, its PostgreSQL backend $(pct "${g0:-0}" "$(ticks "${pgb:-0}")" "$bulk_s")%, Redis $(pct "$r0" "$(ticks "$rpid")" "$bulk_s")% of a core; machine $(mpct "$m0" "$(machine)")% of $cores cores"
st_bulk=$(stats_of "$home/bulk.sock")
st_bulk=${st_bulk:-null}
hwm_bulk=$(kib_of "$bc1" VmHWM)
rss_bulk=$(kib_of "$bc1" VmRSS)
count_c=$(sql -c 'select count(*) from events') || die 70 "cannot count events"
dead_c=$(sql -c 'select count(*) from dead_events')
prog_c=$(sql -c 'select coalesce(sum(events), 0) from student_progress')
errs_c=$(sql -c 'select count(*) filter (where has_error) from events')
perr_c=$(sql -c 'select coalesce(sum(errors), 0) from student_progress')
[ "$done_c" = 1 ] || info "   gave up after $bulk_limit_s s with $count_c rows"
bc_rate=$(calc 'c / s' c="$count_c" s="$bulk_s" fmt=%.0f)
info "   $count_c rows in $bulk_s s: $bc_rate rows/s; VmHWM $(mib "$hwm_bulk") MiB"
stop_bc "$bc1" bulk
rc_bulk=$stop_rc
# what autovacuum would do after a million inserts, done now and untimed,
# so that it does not run into the next phases
tv0=$(now)
sql -c 'VACUUM (ANALYZE) events' >/dev/null 2>&1
info "   VACUUM (ANALYZE) events, untimed: $(calc 'b - a' a="$tv0" b="$(now)" fmt=%.1f) s"

# d. the reference: psql's \copy of the same rows into a database of its own
info "d. reference: \\copy of the same $n rows into labpulse_ref"
createdb labpulse_ref || die 70 "createdb labpulse_ref failed"
"$top/bin/migrate-indexes" --db dbname=labpulse_ref --dir "$top/etc/migrations" up \
	>"$home/log/migrate-ref.log" 2>&1 || { cat "$home/log/migrate-ref.log" >&2; die 70 "migrations on labpulse_ref failed"; }
sql -c CHECKPOINT
td0=$(now)
m0=$(machine)
PGTZ=UTC timeout 900 psql -Xq -v ON_ERROR_STOP=1 -d labpulse_ref \
	-c "\\copy events ($cols) from '$copyf'" >"$home/copy.out" 2>&1 ||
	{ cat "$home/copy.out" >&2; die 70 "\\copy into labpulse_ref failed"; }
td1=$(now)
cpu_d="psql and its backend: machine $(mpct "$m0" "$(machine)")% of $cores cores"
copy_s=$(calc 'b - a' a="$td0" b="$td1")
count_d=$(sql -d labpulse_ref -c 'select count(*) from events')
copy_rate=$(calc 'c / s' c="$count_d" s="$copy_s" fmt=%.0f)
ratio_c=$(calc 'b / c' b="$bc_rate" c="$copy_rate")
info "   $count_d rows in $copy_s s: $copy_rate rows/s; batch-commit/\\copy = $ratio_c"
# the reference is done with: nothing of it may disturb what follows
dropdb labpulse_ref
rm -f "$copyf"

# e. low load: single events at $lat_rate/s through ingest
info "e. low load: $((lat_rate * lat_s)) single-event POSTs at $lat_rate/s through ingest"
start_bc live
bc2=$bc_pid
st=
for _ in $(seq 300); do
	bc_alive "$bc2" live
	st=$(stats_of "$home/live.sock") && break
	sleep 0.1
done
[ -n "$st" ] || { tail -n 5 "$home/log/bench-live.log" >&2; die 70 "batch-commit (live) did not answer on its stats socket in 30 s"; }
wait_drained 30 || die 70 "the stream is not drained before the low-load phase"
mkdir -p "$home/lat"
awk -v n=$((lat_rate * lat_s)) -v mode=client -v seed=2 -v idprefix="lat-$run-" -f "$gen" |
	awk -v dir="$home/lat" -v url="$url" '{
		f = dir "/" NR ".json"; print > f; close(f)
		if (NR > 1) print "next"
		printf "url = \"%s\"\nheader = \"Content-Type: application/json\"\n", url
		printf "data-binary = \"@%s\"\noutput = \"/dev/null\"\nmax-time = 5\n", f
		printf "write-out = \"%%{http_code}\\n\"\n"
	}' >"$home/lat.cfg"
te0=$(now)
timeout $((lat_s * 3 + 30)) curl -sS --rate "$lat_rate/s" -K "$home/lat.cfg" >"$home/lat.codes" 2>"$home/lat.err"
te1=$(now)
lat_posts=$(grep -c '^2' "$home/lat.codes")
lat_took=$(calc 'b - a' a="$te0" b="$te1" fmt=%.1f)
wait_drained 10 || info "   the stream is not drained 10 s after the low-load posts"
sleep 0.2
st_live=$(stats_of "$home/live.sock")
st_live=${st_live:-null}
lat_sql=$(sql -F ' ' -c "select count(*),
	coalesce(round((percentile_cont(0.5) within group (order by extract(epoch from committed_at - received_at)) * 1000)::numeric, 1), 0),
	coalesce(round((percentile_cont(0.99) within group (order by extract(epoch from committed_at - received_at)) * 1000)::numeric, 1), 0),
	coalesce(round((max(extract(epoch from committed_at - received_at)) * 1000)::numeric, 1), 0)
	from events where event_id like 'lat-$run-%'")
set -- $lat_sql
lat_rows=$1 rc_p50=$2 rc_p99=$3 rc_max=$4
cu_p50=$(calc 'v / 1000' v="$(jnum "$st_live" .commit_us.p50)" fmt=%.1f)
cu_p99=$(calc 'v / 1000' v="$(jnum "$st_live" .commit_us.p99)" fmt=%.1f)
br_p50=$(jnum "$st_live" .batch_rows.p50)
br_max=$(jnum "$st_live" .batch_rows.max)
lat_batches=$(jnum "$st_live" .batches)
info "   $lat_posts of $((lat_rate * lat_s)) posts accepted in $lat_took s; $lat_rows rows; receivedAt to committed_at p50 $rc_p50 ms, max $rc_max ms"

# post to visible row: a session polls every millisecond (a fresh snapshot
# each statement) from before the POST
info "   $probes events timed from POST to visible row"
awk -v n="$probes" -v mode=client -v seed=3 -v idprefix="vis-$run-" -f "$gen" >"$home/probes.ndjson"
vis_list=
k=0
while [ "$k" -lt "$probes" ]; do
	k=$((k + 1))
	line=$(sed -n "${k}p" "$home/probes.ndjson")
	sid=$(printf '%s' "$line" | jq -r .emailAddress)
	eid=$(printf '%s' "$line" | jq -r .eventId)
	psql -Xqt -c "DO \$\$ BEGIN
		FOR i IN 1..5000 LOOP
			PERFORM 1 FROM events WHERE student_id = '$sid' AND event_id = '$eid';
			IF FOUND THEN
				RAISE NOTICE 'visible %', extract(epoch from clock_timestamp());
				RETURN;
			END IF;
			PERFORM pg_sleep(0.001);
		END LOOP;
	END \$\$" >/dev/null 2>"$home/probe.$k" &
	ppid=$!
	sleep 0.3
	tp=$(now)
	printf '%s' "$line" | curl -sS -o /dev/null --max-time 5 -H 'Content-Type: application/json' --data-binary @- "$url"
	wait "$ppid"
	tv=$(sed -n 's/.*visible \([0-9.]*\).*/\1/p' "$home/probe.$k")
	[ -n "$tv" ] && vis_list="$vis_list $(calc '(v - p) * 1000' v="$tv" p="$tp" fmt=%.1f)"
	sleep 0.2
done
vis_n=$(echo $vis_list | wc -w)
vis_p50=$(median $vis_list)
vis_max=$(printf '%s\n' $vis_list | sort -g | tail -n 1)
vis_max=${vis_max:-0}
info "   POST to visible (ms):$vis_list"

# f. end to end: many connections through ingest, until the last is committed
wait_drained 10 || info "   the stream is not drained before the end-to-end phase"
xf0=$(redis XLEN labpulse:events)
if [ -x "$bench" ] && [ "${COMMIT_BENCH_CURL:-0}" != 1 ]; then
	e2e_mode="httpbench, $e2e_conns connections, 1 event a POST, ${e2e_s} s"
	prefix=bench-
	info "f. end to end: $e2e_mode"
	tf0=$(now)
	m0=$(machine)
	b0=$(ticks "$bc2")
	timeout $((e2e_s + 60)) "$bench" --url "$url" --conns "$e2e_conns" \
		--duration "$e2e_s" --warmup 0 --batch 1 --json >"$home/e2e.json" 2>"$home/e2e.err"
	hb_rc=$?
	tf1=$(now)
	[ "$hb_rc" -le 1 ] && jq -e .requests "$home/e2e.json" >/dev/null 2>&1 ||
		{ cat "$home/e2e.err" >&2; die 70 "httpbench failed with status $hb_rc"; }
	ingest_rate=$(jq .events_per_s "$home/e2e.json")
	e2e_client=$(jq -c '{requests, events, status, errors, latency_ms, cpu}' "$home/e2e.json")
else
	why="httpbench is not built"
	[ -x "$bench" ] && why="COMMIT_BENCH_CURL=1"
	e2e_mode="curl ($why): xargs -P 50, 1 event a POST, ${e2e_s} s"
	prefix=e2e-$run-
	info "f. end to end: $e2e_mode"
	tmpl=$(awk -v n=1 -v mode=client -v seed=4 -f "$gen" | jq -c 'del(.eventId, .emailAddress)')
	tf0=$(now)
	m0=$(machine)
	b0=$(ticks "$bc2")
	# each line an index: the eventId, and the student (200 in turn)
	seq 1 200000 | timeout "$e2e_s" xargs -P 50 -I '{}' sh -c '
		body="{\"eventId\":\"$3$1\",\"emailAddress\":\"s$(printf %03d $(($1 % 200)))@example.edu\",${2#?}"
		curl -s -o /dev/null --max-time 5 -w "%{http_code}\n" \
			-H "Content-Type: application/json" --data-binary "$body" "$4"
	' sh '{}' "$tmpl" "$prefix" "$url" >"$home/e2e.codes" 2>/dev/null
	tf1=$(now)
	ingest_rate=$(calc 'c / s' c="$(grep -c '^2' "$home/e2e.codes")" s="$(calc 'b - a' a="$tf0" b="$tf1")" fmt=%.1f)
	e2e_client=$(jq -Rn --arg mode curl '[inputs] | group_by(.) | map({(.[0]): length}) | add // {} | {mode: $mode, status: .}' <"$home/e2e.codes")
fi
xf1=$(redis XLEN labpulse:events)
cpu_f="while posting: batch-commit $(pct "$b0" "$(ticks "$bc2")" "$(calc 'b - a' a="$tf0" b="$(now)")")% of a core; machine $(mpct "$m0" "$(machine)")% of $cores cores"
e2e_in=$((xf1 - xf0))
post_s=$(calc 'b - a' a="$tf0" b="$tf1" fmt=%.2f)
info "   $e2e_in events into the stream in $post_s s; waiting until all are committed"
wait_drained 120 || info "   not drained 120 s after the last POST"
e2e_sql=$(sql -F ' ' -c "select count(*), coalesce(extract(epoch from max(committed_at)), 0)
	from events where event_id like '$prefix%'")
set -- $e2e_sql
e2e_rows=$1 e2e_last=$2
e2e_s_total=$(calc 'l - a' l="$e2e_last" a="$tf0")
e2e_rate=$(calc 'r / s' r="$e2e_rows" s="$e2e_s_total" fmt=%.0f)
e2e_lag=$(calc 'l - b' l="$e2e_last" b="$tf1" fmt=%.2f)
ratio_f=$(calc 'a / b' a="$e2e_rate" b="$ingest_rate")
st_end=$(stats_of "$home/live.sock")
st_end=${st_end:-null}
hwm_live=$(kib_of "$bc2" VmHWM)
rss_live=$(kib_of "$bc2" VmRSS)
ipid=$(cat "$LABPULSE_RUNDIR/ingest.pid")
hwm_ingest=$(kib_of "$ipid" VmHWM)
info "   $e2e_rows rows committed, the last $e2e_lag s after the last POST: $e2e_rate events/s end to end"
stop_bc "$bc2" live
rc_live=$stop_rc
dead_end=$(sql -c 'select count(*) from dead_events')
warn_bulk=$(grep -c ': \(warning\|error\): ' "$home/log/bench-bulk.log")
warn_live=$(grep -c ': \(warning\|error\): ' "$home/log/bench-live.log")
warn_lines=$(grep -h ': \(warning\|error\): ' "$home/log/bench-bulk.log" "$home/log/bench-live.log" | sort | uniq -c | sort -rn | head -n 5)

# ---- the report ----
meets() { calc "(v $2 t) ? 1 : 0" v="$1" t="$3" fmt=%d | sed 's/1/met/; s/0/missed/'; }
rows=$home/rows.tsv
: >"$rows"
# row FIGURE VALUE UNIT REFERENCE RATIO TARGET RESULT ("-" where none)
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$rows"; }
row "c. batch-commit, $n events from the stream" "$bc_rate" "rows/s" "$copy_rate" "$ratio_c" ">= 60% of \\copy" "$(meets "$ratio_c" '>=' "$t_ratio")"
row "d. reference: psql \\copy of the same rows" "$copy_rate" "rows/s" "-" "-" "-" "-"
row "c. bulk: commit_us p50" "$(calc 'v / 1000' v="$(jnum "$st_bulk" .commit_us.p50)" fmt=%.1f)" "ms" "-" "-" "-" "-"
row "c. bulk: commit_us p99" "$(calc 'v / 1000' v="$(jnum "$st_bulk" .commit_us.p99)" fmt=%.1f)" "ms" "-" "-" "-" "-"
row "c. bulk: batch_rows p50" "$(jnum "$st_bulk" .batch_rows.p50)" "rows" "-" "-" "-" "-"
row "c. batch-commit VmHWM after the bulk run" "$(mib "$hwm_bulk")" "MiB" "-" "-" "-" "-"
row "e. receivedAt to committed_at p50, $lat_rate/s" "$rc_p50" "ms" "$t_close_ms" "$(calc 'a / b' a="$rc_p50" b="$t_close_ms")" "<= $t_close_ms ms" "$(meets "$rc_p50" '<=' "$t_close_ms")"
row "e. receivedAt to committed_at max, $lat_rate/s" "$rc_max" "ms" "$t_close_ms" "$(calc 'a / b' a="$rc_max" b="$t_close_ms")" "<= $t_close_ms ms" "$(meets "$rc_max" '<=' "$t_close_ms")"
row "e. commit_us p50 at low load" "$cu_p50" "ms" "-" "-" "-" "-"
row "e. commit_us p99 at low load" "$cu_p99" "ms" "-" "-" "-" "-"
row "e. batch_rows p50 at low load" "$br_p50" "rows" "-" "-" "-" "-"
row "e. batch_rows max at low load" "$br_max" "rows" "-" "-" "-" "-"
row "e. POST to visible row p50 ($vis_n events)" "$vis_p50" "ms" "-" "-" "-" "-"
row "e. POST to visible row max" "$vis_max" "ms" "-" "-" "-" "-"
row "f. end to end, first POST to last commit" "$e2e_rate" "events/s" "$ingest_rate" "$ratio_f" "-" "-"
row "f. last commit after the last POST" "$e2e_lag" "s" "-" "-" "-" "-"
row "batch-commit VmHWM at the end (live)" "$(mib "$hwm_live")" "MiB" "-" "-" "-" "-"
row "rows in dead_events" "$dead_end" "rows" "0" "-" "0" "$(meets "$dead_end" '==' 0)"

say
say "batch-commit benchmark: $n events of about $ev_bytes bytes, default flags (batch 500, max-wait 40 ms)"
say "PostgreSQL, Redis, ingest, batch-commit and the clients share this machine's $cores cores"
say
awk -F '\t' '
	function show(v, u) { return v == "-" ? "-" : v " " u }
	BEGIN { printf "%-46s %16s %16s %7s %-17s %s\n", "figure", "value", "reference", "ratio", "target", "result" }
	{ printf "%-46s %16s %16s %7s %-17s %s\n", $1, show($2, $3), show($4, $3), $5, $6, $7 }' "$rows"
say
say "c. bulk: $(printf '%s' "$st_bulk" | jq -r '"\(.batches) batches, \(.rows_committed) rows, duplicates \(.duplicates_skipped), dead \(.dead_rows), acked \(.acked), pending \(.pending)"') in $bulk_s s;" \
	"count(*) $count_c, dead_events $dead_c; student_progress events $prog_c, errors $perr_c (has_error rows $errs_c);" \
	"exit status after SIGTERM $rc_bulk; VmRSS peak seen $(mib "$rss_max") MiB, at the end $(mib "$rss_bulk") MiB"
say "   CPU during c: $cpu_c"
say "b. load: $n events through redis-cli --pipe in $load_s s (generating included); Redis used $redis_mib MiB"
say "d. \\copy: $count_d rows in $copy_s s (one transaction, no student_progress, same indexes); CPU: $cpu_d"
say "e. $lat_posts of $((lat_rate * lat_s)) posts accepted in $lat_took s, $lat_rows rows, $lat_batches batches; receivedAt to committed_at p99 $rc_p99 ms;" \
	"committed_at is the batch transaction's start (now()), the row is visible one commit later"
say "f. $e2e_mode: $e2e_in events in the stream, $e2e_rows rows committed, posting $post_s s, ingest took $ingest_rate events/s;" \
	"$cpu_f; batch-commit exit status after SIGTERM $rc_live; VmHWM $(mib "$hwm_live") MiB, ingest VmHWM $(mib "$hwm_ingest") MiB"
say "warning and error lines in batch-commit's logs: bulk $warn_bulk, live $warn_live"
[ -n "$warn_lines" ] && printf '%s\n' "$warn_lines"

jq -Rn \
	--argjson n "$n" --argjson cores "$cores" --argjson ev_bytes "$ev_bytes" \
	--argjson load_s "$load_s" --argjson redis_mib "$redis_mib" \
	--argjson bulk_s "$bulk_s" --argjson copy_s "$copy_s" \
	--argjson count_c "$count_c" --argjson count_d "$count_d" \
	--argjson prog_c "$prog_c" --argjson errs_c "$errs_c" --argjson perr_c "$perr_c" \
	--argjson done_c "$done_c" --argjson rc_bulk "${rc_bulk:-null}" --argjson rc_live "${rc_live:-null}" \
	--argjson rss_max "$(mib "$rss_max")" --argjson rss_bulk "$(mib "$rss_bulk")" \
	--argjson hwm_bulk "$(mib "$hwm_bulk")" --argjson hwm_live "$(mib "$hwm_live")" \
	--argjson rss_live "$(mib "$rss_live")" --argjson hwm_ingest "$(mib "$hwm_ingest")" \
	--argjson st_bulk "$st_bulk" --argjson st_live "$st_live" --argjson st_end "$st_end" \
	--argjson lat_posts "$lat_posts" --argjson lat_rows "$lat_rows" --argjson rc_p99 "$rc_p99" \
	--argjson vis "[$(echo $vis_list | tr ' ' ',')]" \
	--arg e2e_mode "$e2e_mode" --argjson e2e_in "$e2e_in" --argjson e2e_rows "$e2e_rows" \
	--argjson post_s "$post_s" --argjson e2e_client "$e2e_client" \
	--argjson warn_bulk "$warn_bulk" --argjson warn_live "$warn_live" \
	--argjson dead "$dead_end" --rawfile rows "$rows" \
	--arg cpu_c "$cpu_c" --arg cpu_d "$cpu_d" --arg cpu_f "$cpu_f" \
	'def num: if . == "-" then null else (tonumber? // .) end;
	{
	  benchmark: "batch-commit",
	  note: "PostgreSQL, Redis, ingest, batch-commit and the clients share the machine'"'"'s \($cores) cores",
	  settings: {events: $n, cores: $cores, event_bytes: $ev_bytes,
	    batch_commit_flags: "default (batch 500, max-wait 40 ms)"},
	  figures: [$rows | split("\n")[] | select(length > 0) | split("\t") |
	    {figure: .[0], value: (.[1] | num), unit: .[2], reference: (.[3] | num),
	     ratio: (.[4] | num), target: (.[5] | if . == "-" then null else . end),
	     result: (.[6] | if . == "-" then null else . end)}],
	  load: {seconds: $load_s, redis_used_mib: $redis_mib},
	  bulk: {seconds: $bulk_s, finished: ($done_c == 1), count: $count_c,
	    student_progress_events: $prog_c, has_error_rows: $errs_c,
	    student_progress_errors: $perr_c, exit_status: $rc_bulk,
	    vm_rss_peak_seen_mib: $rss_max, vm_rss_end_mib: $rss_bulk,
	    vm_hwm_mib: $hwm_bulk, stats: $st_bulk, log_warnings_errors: $warn_bulk,
	    cpu: $cpu_c},
	  reference: {how: "psql \\copy, one transaction, into a second database with the same migrations",
	    seconds: $copy_s, count: $count_d, cpu: $cpu_d},
	  low_load: {posts_accepted: $lat_posts, rows: $lat_rows,
	    received_to_committed_p99_ms: $rc_p99, post_to_visible_ms: $vis,
	    stats: $st_live},
	  end_to_end: {mode: $e2e_mode, stream_entries: $e2e_in, rows: $e2e_rows,
	    posting_seconds: $post_s, client: $e2e_client, stats_at_end: $st_end,
	    exit_status: $rc_live, vm_hwm_mib: $hwm_live, vm_rss_mib: $rss_live,
	    ingest_vm_hwm_mib: $hwm_ingest, log_warnings_errors: $warn_live,
	    cpu: $cpu_f},
	  dead_events: $dead
	}' >"$out/commit.json" || die 70 "cannot write $out/commit.json"
say "written: tests/bench/out/commit.json"
exit 0
