#!/bin/sh
# ingest.sh: how fast ingest takes events on this machine, beside the ceiling
# of the Redis it writes to. Run by `make bench`, which builds what it needs.
# A benchmark reports: a missed target still exits 0; only a step that cannot
# run exits non-zero (69 a tool or build is missing, 70 a run failed).
# Lists of run figures are kept as words and split on purpose.
# shellcheck disable=SC2086,SC2046
prog="bench-ingest"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
bench=$top/tests/bench/httpbench
conns=200
runs=3
run_s=${BENCH_RUN_S:-5}		# measured seconds of each run
warm_s=${BENCH_WARMUP_S:-1}	# warm-up seconds before each
rate=1000			# events/s offered in the latency runs
# targets
t_posts=20000
t_batch=150000
t_p99=10
t_rss=30

need_files "$top/bin/labpulse" "$top/bin/ingest" "$top/bin/stack" "$bench"
need_tools redis-benchmark redis-cli jq awk

bench_home lpbench
mkdir -p "$home/runs" || die 69 "cannot make $home/runs"

info "starting a private stack"
# the stream fills on purpose here: no backlog bound in ingest
bench_up LABPULSE_INGEST_FLAGS="--max-backlog 0 --max-backlog-bytes 0"
# The stack's other daemons (consumers of the stream, PostgreSQL's writers)
# would compete for the cores: stop them, so that the figures are ingest's.
bench_only 69 ingest redis
[ -n "$stopped" ] && info "stopped for the benchmark:$stopped"
rsock=${LABPULSE_REDIS#unix:}
url=$LABPULSE_INGEST_URL/api/v1/events
ipid=$(cat "$LABPULSE_RUNDIR/ingest.pid")
cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# meets VALUE OP TARGET: "met" or "missed"
meets() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == ">=") ? (v >= t) : (v < t); print (ok ? "met" : "missed") }'; }
redis() { redis-cli -s "$rsock" "$@"; }
alive() { kill -0 "$ipid" 2>/dev/null || { tail -n 5 "$LABPULSE_HOME/log/ingest.log" >&2; die 70 "ingest exited during the benchmark"; }; }

rpid=$(cat "$LABPULSE_RUNDIR/redis.pid")
clk=$(getconf CLK_TCK 2>/dev/null || echo 100)

# Where the CPU went during a run, in % of one core: ingest, Redis, the
# client, and everything else on the machine (other work disturbs figures).
# busy and interrupt ticks of the machine; loopback traffic is mostly softirq
busy() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
irqs() { awk '$1 == "cpu" { print $7 + $8; exit }' /proc/stat; }
cpu_begin() { c0_i=$(ticks "$ipid"); c0_r=$(ticks "$rpid"); c0_m=$(busy); c0_q=$(irqs); c0_t=$(date +%s%N); }
# cpu_end CLIENT_CPU_SECONDS: one JSON object
cpu_end() {
	awk -v i0="$c0_i" -v i1="$(ticks "$ipid")" -v r0="$c0_r" -v r1="$(ticks "$rpid")" \
	    -v m0="$c0_m" -v m1="$(busy)" -v q0="$c0_q" -v q1="$(irqs)" \
	    -v t0="$c0_t" -v t1="$(date +%s%N)" \
	    -v hz="$clk" -v cl="$1" 'BEGIN {
		w = (t1 - t0) / 1e9; if (w <= 0) w = 1
		i = (i1 - i0) / hz / w * 100; r = (r1 - r0) / hz / w * 100
		m = (m1 - m0) / hz / w * 100; q = (q1 - q0) / hz / w * 100
		c = cl / w * 100
		o = m - i - r - c - q; if (o < 0) o = 0
		printf "{\"wall_s\":%.2f,\"ingest\":%.1f,\"redis\":%.1f,\"client\":%.1f,\"irq\":%.1f,\"machine\":%.1f,\"others\":%.1f}\n", w, i, r, c, q, m, o
	}'
}

rss_idle=$(kib_of "$ipid" VmRSS)
hwm_idle=$(kib_of "$ipid" VmHWM)

# ---- a. the reference: one XADD per request straight to Redis ----
# A 400-byte event-like payload, as one argument.
payload='{"eventId":"benchref","eventType":"cell_executed","eventTime":"2026-11-25T10:15:30.123","emailAddress":"student1@example.edu","userName":"Student 1","cellType":"code","code":"'
tail_='"}'
pad=$((400 - ${#payload} - ${#tail_}))
payload=$payload$(printf "%${pad}s" '' | tr ' ' x)$tail_
[ ${#payload} -eq 400 ] || die 70 "reference payload is ${#payload} bytes, not 400"

# xadd_bench N: redis-benchmark's CSV line for N requests over $conns clients.
xadd_bench() {
	redis-benchmark -s "$rsock" -c "$conns" -n "$1" -P 1 --csv \
		XADD labpulse:benchref '*' event "$payload" 2>/dev/null | tail -n 1
	redis DEL labpulse:benchref >/dev/null
}
# the fields counted from the end: the command itself holds commas
csv_field() { printf '%s\n' "$1" | awk -F, -v i="$2" '{ f = $(NF - i); gsub(/"/, "", f); print f }'; }

info "reference: redis-benchmark, $conns clients, XADD of 400 bytes"
line=$(xadd_bench 20000)
cal=$(csv_field "$line" 6)
case $cal in ''|*[!0-9.]*) die 70 "redis-benchmark gave no figure: $line" ;; esac
n=$(awk -v r="$cal" -v s="$run_s" 'BEGIN { n = int(r * s); if (n < 20000) n = 20000; if (n > 5000000) n = 5000000; print n }')
ref_runs=
ref_p99s=
ref_redis=
for i in $(seq "$runs"); do
	cpu_begin
	line=$(xadd_bench "$n")
	ref_redis="$ref_redis $(cpu_end 0 | jq .redis)"
	v=$(csv_field "$line" 6)
	case $v in ''|*[!0-9.]*) die 70 "redis-benchmark gave no figure: $line" ;; esac
	ref_runs="$ref_runs $v"
	ref_p99s="$ref_p99s $(csv_field "$line" 1)"
	info "  run $i: $v XADD/s"
done
ref=$(median $ref_runs)
ref_p99=$(median $ref_p99s)

# ---- ingest: httpbench runs ----
# http_runs NAME ARGS...: $runs runs, each saved as $home/runs/NAME.I.json.
http_runs() {
	name=$1
	shift
	for i in $(seq "$runs"); do
		f=$home/runs/$name.$i.json
		cpu_begin
		"$bench" --url "$url" --conns "$conns" --duration "$run_s" \
			--warmup "$warm_s" --json "$@" >"$f" 2>"$f.err"
		rc=$?
		cpu_end "$(jq '.cpu.user_s + .cpu.sys_s' "$f" 2>/dev/null || echo 0)" >"$f.cpu"
		if [ "$rc" -gt 1 ] || ! jq -e .requests "$f" >/dev/null 2>&1; then
			cat "$f.err" >&2
			die 70 "httpbench $* failed with status $rc"
		fi
		alive
		# a 202 promises the events are in the stream: count them there
		redis XLEN labpulse:events >"$f.xlen"
		info "  run $i: $(jq -r '"\(.requests_per_s) requests/s, \(.events_per_s) events/s, p99 \(.latency_ms.p99) ms, status \(.status|tostring), errors \(.errors|tostring)"' "$f"); CPU % of a core $(cat "$f.cpu")"
		# keep Redis small: the stream is only the benchmark's
		redis DEL labpulse:events >/dev/null
	done
}
# values FILTER NAME [EXT]: the filter's value in each run of NAME
values() { for i in $(seq "$runs"); do jq -r "$1" "$home/runs/$2.$i.json${3:-}"; done | tr '\n' ' '; }
med() { median $(values "$1" "$2"); }

info "b. ingest: single-event POSTs, $conns connections, closed loop"
http_runs single --batch 1
posts=$(med .requests_per_s single)
hwm_b=$(kib_of "$ipid" VmHWM)

info "c. ingest: POSTs of 50 events, $conns connections, closed loop"
http_runs batch50 --batch 50
batch=$(med .events_per_s batch50)
hwm_c=$(kib_of "$ipid" VmHWM)

info "d. ingest: open loop, $rate events/s offered as single-event POSTs"
http_runs open --batch 1 --rate "$rate"
p50=$(med .latency_ms.p50 open)
p99=$(med .latency_ms.p99 open)
p999=$(med .latency_ms.p999 open)
u50=$(med .latency_uncorrected_ms.p50 open)
u99=$(med .latency_uncorrected_ms.p99 open)
u999=$(med .latency_uncorrected_ms.p999 open)
orate=$(med .requests_per_s open)

alive
hwm=$(kib_of "$ipid" VmHWM)
rss_end=$(kib_of "$ipid" VmRSS)
stats=null
if command -v socat >/dev/null 2>&1; then
	stats=$(socat -T 2 - "UNIX-CONNECT:$LABPULSE_RUNDIR/ingest.sock" </dev/null 2>/dev/null)
	printf '%s' "$stats" | jq -e . >/dev/null 2>&1 || stats=null
fi
warnings=$(grep -c ': warning: ' "$LABPULSE_HOME/log/ingest.log" 2>/dev/null)
errs=$(cat "$home"/runs/*.json | jq -s 'map(.errors.connect + .errors.reset + .errors.timeout + .errors.protocol + .errors.unanswered) | add')
non2xx=$(cat "$home"/runs/*.json | jq -s 'map(.requests.answered - .requests.ok) | add')
backlog=$(values .backlog open)
cpu_row() { echo "  $1: ingest $(values .ingest "$2" .cpu)| Redis $(values .redis "$2" .cpu)| client $(values .client "$2" .cpu)| irq $(values .irq "$2" .cpu)| others $(values .others "$2" .cpu)"; }
# runs whose stream holds fewer entries than events answered 202
short=0
for f in "$home"/runs/*.json; do
	[ "$(cat "$f.xlen")" -ge "$(jq .events.accepted "$f")" ] || short=$((short + 1))
done

# ---- the report ----
st_posts=$(meets "$posts" ">=" "$t_posts")
st_batch=$(meets "$batch" ">=" "$t_batch")
st_p99=$(meets "$p99" "<" "$t_p99")
st_rss=$(meets "$(mib "$hwm")" "<" "$t_rss")
r_posts=$(ratio "$posts" "$ref")
r_batch=$(ratio "$batch" "$ref")

row() { printf '%-44s %13s  %-14s %-7s %s\n' "$@"; }
int() { awk -v v="$1" 'BEGIN { printf "%.0f", v }'; }
echo
echo "ingest benchmark: median of $runs runs of ${run_s} s (after ${warm_s} s warm-up), $conns connections"
echo "client, ingest and Redis share this machine's $cores cores; see the CPU use below"
[ -n "$stopped" ] && echo "the stack's other daemons were stopped during the runs:$stopped"
echo
row "figure" "measured" "target" "status" "vs reference"
row "a. Redis XADD, 400 B, $conns clients (ceiling)" "$(int "$ref")/s" "reference" "" "1"
row "b. single-event POSTs, closed loop" "$(int "$posts")/s" ">= $t_posts/s" "$st_posts" "$r_posts"
row "c. events in POSTs of 50, closed loop" "$(int "$batch")/s" ">= $t_batch/s" "$st_batch" "$r_batch"
row "d. p50 at $rate events/s (from due time)" "$p50 ms" "" "" ""
row "   p99 at $rate events/s (from due time)" "$p99 ms" "< $t_p99 ms" "$st_p99" ""
row "   p99.9 at $rate events/s (from due time)" "$p999 ms" "" "" ""
row "   p50 / p99 / p99.9 uncorrected (ms)" "$u50 / $u99 / $u999" "" "" ""
row "e. ingest peak RSS (VmHWM) after all runs" "$(mib "$hwm") MiB" "< $t_rss MiB" "$st_rss" ""
row "   ingest RSS at idle, right after start" "$(mib "$rss_idle") MiB" "" "" ""
echo
echo "runs:  a$ref_runs XADD/s (p99 $ref_p99 ms) | b $(values .requests_per_s single)POSTs/s | c $(values .events_per_s batch50)events/s"
echo "       d p99 $(values .latency_ms.p99 open)ms, achieved $orate requests/s, due but unsent $backlog"
echo "CPU in % of one core, per run (irq: interrupts, mostly loopback traffic; others: the rest"
echo "of the machine, work that competes for the cores and disturbs the figures):"
echo "  a: Redis$ref_redis"
cpu_row b single
cpu_row c batch50
cpu_row d open
echo "client errors over all runs: $errs | non-2xx answers: $non2xx"
echo "ingest: VmHWM after b / c / d $(mib "$hwm_b") / $(mib "$hwm_c") / $(mib "$hwm") MiB, VmRSS after all $(mib "$rss_end") MiB;" \
	"warnings in its log: ${warnings:-0}; runs whose stream held fewer entries than events accepted: $short"

runs_json() { for i in $(seq "$runs"); do jq --argjson cpu "$(cat "$home/runs/$1.$i.json.cpu")" '. + {machine_cpu_pct: $cpu}' "$home/runs/$1.$i.json"; done | jq -s .; }
jq -n \
	--argjson cores "$cores" --argjson conns "$conns" --argjson runs "$runs" \
	--argjson run_s "$run_s" --argjson warm_s "$warm_s" --argjson rate "$rate" \
	--argjson ref "$ref" --argjson ref_p99 "$ref_p99" \
	--argjson ref_runs "[$(echo $ref_runs | tr ' ' ',')]" \
	--argjson ref_redis "[$(echo $ref_redis | tr ' ' ',')]" \
	--argjson posts "$posts" --argjson batch "$batch" \
	--argjson p50 "$p50" --argjson p99 "$p99" --argjson p999 "$p999" \
	--argjson u50 "$u50" --argjson u99 "$u99" --argjson u999 "$u999" \
	--argjson hwm "$(mib "$hwm")" --argjson rss_idle "$(mib "$rss_idle")" \
	--argjson hwm_idle "$(mib "$hwm_idle")" --argjson rss_end "$(mib "$rss_end")" \
	--argjson r_posts "$r_posts" --argjson r_batch "$r_batch" \
	--argjson t_posts "$t_posts" --argjson t_batch "$t_batch" \
	--argjson t_p99 "$t_p99" --argjson t_rss "$t_rss" \
	--arg st_posts "$st_posts" --arg st_batch "$st_batch" \
	--arg st_p99 "$st_p99" --arg st_rss "$st_rss" \
	--argjson single "$(runs_json single)" --argjson batch50 "$(runs_json batch50)" \
	--argjson open "$(runs_json open)" --argjson stats "$stats" \
	--argjson warnings "${warnings:-0}" --argjson short "$short" \
	--arg stopped "$stopped" \
	--argjson hwm_b "$(mib "$hwm_b")" --argjson hwm_c "$(mib "$hwm_c")" \
	'{
	  note: "client, ingest and Redis share the machine'"'"'s \($cores) cores",
	  settings: {cores: $cores, conns: $conns, runs: $runs, run_s: $run_s,
	    warmup_s: $warm_s, statistic: "median",
	    daemons_stopped: ($stopped | split(" ") | map(select(. != "")))},
	  reference: {name: "redis-benchmark XADD, 400-byte payload, no pipelining",
	    xadd_per_s: $ref, p99_ms: $ref_p99, runs: $ref_runs,
	    redis_cpu_pct: $ref_redis},
	  figures: {
	    single_event_posts_per_s: {value: $posts, target: ">= \($t_posts)",
	      status: $st_posts, ratio_to_reference: $r_posts},
	    batch50_events_per_s: {value: $batch, target: ">= \($t_batch)",
	      status: $st_batch, ratio_to_reference: $r_batch},
	    open_loop_latency_ms: {offered_events_per_s: $rate,
	      p50: $p50, p99: $p99, p999: $p999,
	      uncorrected: {p50: $u50, p99: $u99, p999: $u999},
	      target: "p99 < \($t_p99)", status: $st_p99},
	    ingest_rss_mib: {peak: $hwm, target: "< \($t_rss)", status: $st_rss,
	      idle: $rss_idle, idle_peak: $hwm_idle, after_runs: $rss_end,
	      peak_after_b: $hwm_b, peak_after_c: $hwm_c}
	  },
	  ingest: {stats: $stats, log_warnings: $warnings,
	    runs_with_fewer_stream_entries_than_accepted: $short},
	  runs: {single: $single, batch50: $batch50, open: $open}
	}' >"$out/ingest.json" || die 70 "cannot write $out/ingest.json"
echo "written: tests/bench/out/ingest.json"
exit 0
