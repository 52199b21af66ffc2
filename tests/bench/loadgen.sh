#!/bin/sh
# loadgen.sh: loadgen's own ceiling, beside wrk's measured in the same run,
# then the class of the design (200 students, 10 dashboards) on a private
# stack, with the default SLOs: the figure the README quotes.
#  1. the ceiling: single-event POSTs per second against a trivial server
#     that answers 202 at once (tests/tools/stallserver, pinned to core 1),
#     from loadgen with think time 0 (closed loop, one request in flight per
#     connection) and from wrk with the same connections (closed loop too),
#     each pinned to core 0: one core each. 3 runs each, interleaved,
#     medians. Target: loadgen at least half of wrk's rate.
#  2. the class: `loadgen --students 200 --dashboards 10 --setup --verify-db`
#     for 60 s, its summary and its verdict.
# Run by `make bench`, which builds what it needs, or alone:
#   sh tests/bench/loadgen.sh
# BENCH_RUN_S sets the seconds of each ceiling run (default 10),
# BENCH_CLASS_S those of the class (default 60), BENCH_CONNS the connections
# of the ceiling runs (default 64); STALLSERVER another build of the trivial
# server.
# A benchmark reports: a missed target or a failed SLO still exits 0; only a
# step that cannot run exits non-zero (64 bad settings, 69 a tool or build is
# missing, 70 a run failed). When a step fails, the logs are kept in /tmp.
# Lists of run figures are kept as words and split on purpose.
# shellcheck disable=SC2086,SC2046
prog="bench-loadgen"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
loadgen=$top/bin/loadgen
server=${STALLSERVER:-$top/tests/tools/stallserver}
runs=3
run_s=${BENCH_RUN_S:-10}	# seconds of each ceiling run
class_s=${BENCH_CLASS_S:-60}	# seconds of the class run
conns=${BENCH_CONNS:-64}	# connections of the ceiling runs, both clients
client_cpu=0			# the core of the client (loadgen or wrk)
server_cpu=1			# the core of the trivial server
# targets
t_ratio=0.5			# loadgen's POSTs/s over wrk's

case $run_s in ''|*[!0-9]*|0) die 64 "BENCH_RUN_S must be a whole number of seconds above 0" ;; esac
case $class_s in ''|*[!0-9]*|0) die 64 "BENCH_CLASS_S must be a whole number of seconds above 0" ;; esac
case $conns in ''|*[!0-9]*|0) die 64 "BENCH_CONNS must be a whole number above 0" ;; esac
need_files "$top/bin/labpulse" "$top/bin/stack" "$top/bin/ingest" "$top/bin/notify" "$loadgen" "$server"
need_tools wrk taskset jq awk timeout psql
cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
if [ "$cores" -lt 2 ]; then
	server_cpu=0
	info "one core only: the client and the server share it, and the ceiling is lower for both"
fi

srv_pid=
# shellcheck disable=SC2317 # called by the EXIT trap
bench_stop() { [ -n "$srv_pid" ] && kill -TERM "$srv_pid" 2>/dev/null; }
keep_dirs=runs
bench_home lpbench
runs_dir=$home/runs
mkdir -p "$runs_dir" || die 69 "cannot make $runs_dir"

meets() { awk -v v="$1" -v t="$2" 'BEGIN { print (v >= t ? "met" : "missed") }'; }
int() { awk -v v="$1" 'BEGIN { printf "%.0f", v }'; }
words_json() { echo "[$(echo $1 | tr ' ' ',')]"; }

# Busy ticks of one core (user, nice, system, irq, softirq, steal), and
# the machine's clock: the share of each core during a run, whatever runs
# on it, for the client pinned to one and the server to the other.
clk=$(getconf CLK_TCK 2>/dev/null || echo 100)
core_ticks() { awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
cpu_begin() { c0_c=$(core_ticks "$client_cpu"); c0_s=$(core_ticks "$server_cpu"); c0_t=$(date +%s%N); }
# cpu_end: "CLIENT_PCT SERVER_PCT", each in % of its core
cpu_end() {
	awk -v c0="$c0_c" -v c1="$(core_ticks "$client_cpu")" -v s0="$c0_s" -v s1="$(core_ticks "$server_cpu")" \
	    -v t0="$c0_t" -v t1="$(date +%s%N)" -v hz="$clk" 'BEGIN {
		w = (t1 - t0) / 1e9; if (w <= 0) w = 1
		printf "%.1f %.1f\n", (c1 - c0) / hz / w * 100, (s1 - s0) / hz / w * 100
	}'
}

# ---- 1. the ceiling ----
# One event, as the JupyterLab extension posts it, about the size of
# loadgen's; wrk sends the same bytes every time.
event='[{"eventId":"wrk-bench-1","eventType":"cell_executed","eventTime":"2026-11-25T10:15:30.123Z","classId":"loadgen-0","emailAddress":"student1@loadgen.test","userName":"Student 1","sessionId":"s-1","notebookPath":"lab1.ipynb","cellId":"c-9","cellIndex":3,"cellType":"code","code":"import numpy as np\\nx = np.arange(10)\\nprint(x.mean())","executionCount":7,"hasError":false,"errorMessage":null,"executionDurationMs":12.5}]'
lua=$runs_dir/post.lua
cat >"$lua" <<EOF
wrk.method = "POST"
wrk.path = "/api/v1/events"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$event'
EOF

info "starting the trivial server on core $server_cpu"
taskset -c "$server_cpu" "$server" --listen 127.0.0.1:0 >"$runs_dir/server.out" 2>"$runs_dir/server.err" &
srv_pid=$!
addr=
for _ in $(seq 100); do
	addr=$(sed -n 's/^listening on //p' "$runs_dir/server.out")
	[ -n "$addr" ] && break
	kill -0 "$srv_pid" 2>/dev/null || break
	sleep 0.05
done
[ -n "$addr" ] || { cat "$runs_dir/server.err" >&2; die 70 "the trivial server did not start"; }
srv_alive() { kill -0 "$srv_pid" 2>/dev/null || { cat "$runs_dir/server.err" >&2; die 70 "the trivial server exited"; }; }

# wrk_run I: one wrk run; its requests/s in $runs_dir/wrk.I.rps
wrk_run() {
	f=$runs_dir/wrk.$1
	cpu_begin
	timeout $((run_s + 30)) taskset -c "$client_cpu" wrk -t1 -c"$conns" -d"${run_s}s" \
		-s "$lua" "http://$addr/" >"$f.out" 2>"$f.err"
	rc=$?
	cpu_end >"$f.cpu"
	rps=$(awk '$1 == "Requests/sec:" { print $2 }' "$f.out")
	if [ "$rc" -ne 0 ] || [ -z "$rps" ]; then
		cat "$f.out" "$f.err" >&2
		die 70 "wrk failed with status $rc"
	fi
	echo "$rps" >"$f.rps"
	# wrk counts anything but 2xx and 3xx, and socket errors, apart
	bad=$(awk '/Non-2xx or 3xx responses:/ { n += $NF } /Socket errors:/ { for (i = 3; i <= NF; i++) { v = $i; gsub(/,/, "", v); if (v ~ /^[0-9]+$/) n += v } } END { print n + 0 }' "$f.out")
	echo "$bad" >"$f.bad"
	srv_alive
	info "  wrk run $1: $rps POSTs/s, non-2xx and socket errors $bad; CPU % of client core, server core: $(cat "$f.cpu")"
}

# lg_run I: one loadgen run, closed loop with no think time, a student a
# connection: what wrk does. Any exit but 0 or 1 (an SLO) is a failure.
lg_run() {
	f=$runs_dir/lg.$1
	cpu_begin
	timeout $((run_s + 60)) taskset -c "$client_cpu" "$loadgen" --url "http://$addr" \
		--dashboards 0 --students "$conns" --conns "$conns" --think 0 --batch 1 \
		--duration "${run_s}s" --slo 'lost=0' --quiet --json "$f.json" \
		>"$f.out" 2>"$f.err"
	rc=$?
	cpu_end >"$f.cpu"
	if [ "$rc" -gt 1 ] || ! jq -e .total.requests "$f.json" >/dev/null 2>&1; then
		cat "$f.out" "$f.err" >&2
		die 70 "loadgen failed with status $rc"
	fi
	jq .total.requests.per_s_achieved "$f.json" >"$f.rps"
	jq '.total.requests.sent - .total.requests.ok' "$f.json" >"$f.bad"
	srv_alive
	info "  loadgen run $1: $(cat "$f.rps") POSTs/s answered 202, other answers and errors $(cat "$f.bad"); its own CPU $(jq .cpu.pct_of_core "$f.json")% of a core; CPU % of client core, server core: $(cat "$f.cpu")"
}

info "1. the ceiling: single-event POSTs, $conns connections, ${run_s} s a run, $runs runs each, interleaved"
for i in $(seq "$runs"); do
	wrk_run "$i"
	lg_run "$i"
done
values() { for i in $(seq "$runs"); do cat "$runs_dir/$1.$i.$2"; done | tr '\n' ' '; }
col() { for i in $(seq "$runs"); do awk -v k="$2" '{ print $k }' "$runs_dir/$1.$i.cpu"; done | tr '\n' ' '; }
wrk_runs=$(values wrk rps)
lg_runs=$(values lg rps)
wrk_med=$(median $wrk_runs)
lg_med=$(median $lg_runs)
r=$(ratio "$lg_med" "$wrk_med")
st_ratio=$(meets "$r" "$t_ratio")
lg_self=$(for i in $(seq "$runs"); do jq .cpu.pct_of_core "$runs_dir/lg.$i.json"; done | tr '\n' ' ')
lg_sat=$(for i in $(seq "$runs"); do jq .cpu.saturated "$runs_dir/lg.$i.json"; done | tr '\n' ' ')
srv_wrk=$(col wrk 2)
srv_lg=$(col lg 2)
kill -TERM "$srv_pid" 2>/dev/null
wait "$srv_pid" 2>/dev/null
srv_pid=
served=$(sed -n 's/.*stopped requests=\([0-9]*\).*/\1/p' "$runs_dir/server.err")

# ---- 2. the class ----
info "2. the class: 200 students, 10 dashboards, ${class_s} s, default SLOs, on a private stack"
bench_up
class_json=$runs_dir/class.json
timeout $((class_s + 120)) "$loadgen" --students 200 --dashboards 10 --duration "${class_s}s" \
	--setup --verify-db --json "$class_json" >"$runs_dir/class.out" 2>"$runs_dir/class.err"
class_rc=$?
if [ "$class_rc" -gt 1 ] || ! jq -e .total "$class_json" >/dev/null 2>&1; then
	cat "$runs_dir/class.out" "$runs_dir/class.err" >&2
	die 70 "loadgen (the class) failed with status $class_rc"
fi
[ "$class_rc" -eq 0 ] || keep=1
class_verdict=$(jq -r 'if .pass then "PASS" else "FAIL" end' "$class_json")

# ---- the report ----
row() { printf '%-50s %16s  %-10s %-7s %s\n' "$@"; }
echo
echo "loadgen benchmark: this machine's $cores cores"
echo
echo "1. loadgen's ceiling: single-event POSTs to a trivial server answering 202 (stallserver, core $server_cpu),"
echo "   $conns connections, closed loop, client on core $client_cpu; median of $runs runs of ${run_s} s each"
echo
row "figure" "measured" "target" "status" "vs wrk"
row "wrk -t1 -c$conns (reference)" "$(int "$wrk_med")/s" "reference" "" "1"
row "loadgen --think 0 --students $conns --conns $conns" "$(int "$lg_med")/s" ">= $t_ratio x wrk" "$st_ratio" "$r"
echo
echo "runs:   wrk $wrk_runs POSTs/s | loadgen $lg_runs POSTs/s"
echo "        non-2xx and errors: wrk $(values wrk bad)| loadgen $(values lg bad)"
echo "CPU:    loadgen's own report $lg_self% of a core (saturated: $lg_sat)"
echo "        client core during the wrk runs $(col wrk 1)%, the loadgen runs $(col lg 1)%"
echo "        server core during the wrk runs $srv_wrk%, the loadgen runs $srv_lg%"
echo "        (a server core near 100% means the server, not the client, set the ceiling)"
echo "server: $served requests answered in all"
echo
echo "2. the class: 200 students, 10 dashboards (5 WebSocket, 5 SSE), ${class_s} s, default SLOs,"
echo "   on a private stack whose daemons, PostgreSQL and Redis share the $cores cores with loadgen"
echo
cat "$runs_dir/class.out"
echo
echo "class verdict: $class_verdict (loadgen exit status $class_rc)"

jq -n \
	--argjson cores "$cores" --argjson conns "$conns" --argjson runs "$runs" \
	--argjson run_s "$run_s" --argjson class_s "$class_s" \
	--argjson client_cpu "$client_cpu" --argjson server_cpu "$server_cpu" \
	--argjson wrk_runs "$(words_json "$wrk_runs")" --argjson lg_runs "$(words_json "$lg_runs")" \
	--argjson wrk_med "$wrk_med" --argjson lg_med "$lg_med" --argjson ratio "$r" \
	--argjson t_ratio "$t_ratio" --arg st_ratio "$st_ratio" \
	--argjson wrk_bad "$(words_json "$(values wrk bad)")" --argjson lg_bad "$(words_json "$(values lg bad)")" \
	--argjson lg_self "$(words_json "$lg_self")" --argjson lg_sat "$(words_json "$lg_sat")" \
	--argjson cl_wrk "$(words_json "$(col wrk 1)")" --argjson cl_lg "$(words_json "$(col lg 1)")" \
	--argjson srv_wrk "$(words_json "$srv_wrk")" --argjson srv_lg "$(words_json "$srv_lg")" \
	--argjson served "${served:-null}" \
	--rawfile body "$lua" \
	--slurpfile classes "$class_json" --argjson class_rc "$class_rc" \
	--rawfile class_summary "$runs_dir/class.out" \
	'$classes[0] as $class | {
	  benchmark: "loadgen",
	  settings: {cores: $cores, conns: $conns, runs: $runs, run_s: $run_s,
	    class_s: $class_s, statistic: "median",
	    client_core: $client_cpu, server_core: $server_cpu},
	  ceiling: {
	    what: "single-event POSTs per second to tests/tools/stallserver (202 at once), closed loop, one core for the client",
	    reference: {name: "wrk -t1 -c\($conns), the same POST by a Lua script", median_per_s: $wrk_med,
	      runs: $wrk_runs, non_2xx_and_errors: $wrk_bad, client_core_pct: $cl_wrk,
	      server_core_pct: $srv_wrk, script: $body},
	    loadgen: {args: "--think 0 --students \($conns) --conns \($conns) --dashboards 0 --batch 1",
	      median_per_s: $lg_med, runs: $lg_runs, non_2xx_and_errors: $lg_bad,
	      own_cpu_pct_of_core: $lg_self, saturated: $lg_sat,
	      client_core_pct: $cl_lg, server_core_pct: $srv_lg},
	    ratio_to_wrk: $ratio, target: ">= \($t_ratio)", status: $st_ratio,
	    server_requests: $served},
	  class: {
	    what: "200 students, 10 dashboards, default SLOs, --setup --verify-db, on a private stack",
	    verdict: (if $class.pass then "PASS" else "FAIL" end), exit_status: $class_rc,
	    figures: {requests_per_s: $class.total.requests.per_s_achieved,
	      events_per_s: $class.total.events.per_s_achieved,
	      ack_p50_us: $class.total.ack_us.p50, ack_p99_us: $class.total.ack_us.p99,
	      e2e_p50_us: $class.total.e2e_us.p50, e2e_p99_us: $class.total.e2e_us.p99,
	      delivery_pct: $class.delivery_pct, lost: $class.total.events.lost,
	      verify_db: $class.verify_db, loadgen_cpu_pct_of_core: $class.cpu.pct_of_core},
	    slo: $class.slo,
	    summary: $class_summary,
	    report: $class}
	}' >"$out/loadgen.json" || die 70 "cannot write $out/loadgen.json"
echo "written: tests/bench/out/loadgen.json"
exit 0
