#!/bin/sh
# notify.sh: the live path of a class on this machine (issue 4): 200 students
# posting 5 events/s each and 10 dashboards (5 WebSocket, 5 SSE, one class
# each); the latency from each POST to each dashboard's receipt, the share
# delivered, and notify's memory, beside ingest's own acknowledgement latency
# at the same load, measured in the same run (the floor of the whole path).
# Run by `make bench`, which builds what it needs, or alone:
#   sh tests/bench/notify.sh
# BENCH_RUN_S sets the measured seconds (default 30), BENCH_WARMUP_S the
# warm-up before them (default 5).
# A benchmark reports: a missed target still exits 0; only a step that cannot
# run exits non-zero (69 a tool or build is missing, 70 a run failed). When a
# step fails or a dashboard misses messages, the logs are kept in /tmp.
# Lists of run figures are kept as words and split on purpose.
# shellcheck disable=SC2086,SC2046
prog="bench-notify"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
bench=$top/tests/bench/httpbench
watch=$top/tests/tools/lpwatch
students=200
per_student=5			# events/s of each student
rate=$((students * per_student))	# one event a POST
conns=$students			# one keep-alive connection a student
classes=10			# one dashboard each, even ones WebSocket, odd SSE
run_s=${BENCH_RUN_S:-30}	# measured seconds
warm_s=${BENCH_WARMUP_S:-5}	# warm-up seconds before them
# targets
t_p99=50	# ms, POST to dashboard, every dashboard
t_share=100	# % delivered, every dashboard
t_rss=50	# MiB, notify's VmHWM

case $run_s in ''|*[!0-9]*|0) die 64 "BENCH_RUN_S must be a whole number of seconds above 0" ;; esac
case $warm_s in ''|*[!0-9]*) die 64 "BENCH_WARMUP_S must be a whole number of seconds" ;; esac
need_files "$top/bin/labpulse" "$top/bin/notify" "$top/bin/stack" "$bench" "$watch"
need_tools redis-cli psql jq awk socat

dash_pids=
# shellcheck disable=SC2317 # called by the EXIT trap
bench_stop() { for p in $dash_pids; do kill -TERM "$p" 2>/dev/null; done; }
keep_dirs=runs
bench_home lpbench
runs=$home/runs
mkdir -p "$runs" || die 69 "cannot make $runs"

info "starting a private stack"
bench_up
url=$LABPULSE_INGEST_URL/api/v1/events
cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
clk=$(getconf CLK_TCK 2>/dev/null || echo 100)
pid_of() { cat "$LABPULSE_RUNDIR/$1.pid" 2>/dev/null; }
npid=$(pid_of notify)
ipid=$(pid_of ingest)
rpid=$(pid_of route)
bpid=$(pid_of batch-commit)
kpid=$(pid_of redis)
ppid_pg=$(head -n 1 "$LABPULSE_HOME/pg/postmaster.pid" 2>/dev/null)
for p in "$npid" "$ipid" "$rpid" "$bpid" "$kpid" "$ppid_pg"; do
	{ [ -n "$p" ] && kill -0 "$p" 2>/dev/null; } || die 69 "the stack is not whole; see $home/log"
done
nlog=$LABPULSE_HOME/log/notify.log

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
maxof() { printf '%s\n' "$@" | sort -g | tail -n 1; }
minof() { printf '%s\n' "$@" | sort -g | head -n 1; }
meets() { calc "(v $2 t) ? 1 : 0" v="$1" t="$3" fmt=%d | sed 's/1/met/; s/0/missed/'; }
sql() { psql -X -q -tA -v ON_ERROR_STOP=1 "$@"; }
stats_of() { socat -T 2 - "UNIX-CONNECT:$LABPULSE_RUNDIR/$1.sock" </dev/null 2>/dev/null; }
alive() {
	for d in notify route ingest batch-commit; do
		p=$(pid_of "$d")
		kill -0 "$p" 2>/dev/null ||
			{ tail -n 5 "$LABPULSE_HOME/log/$d.log" >&2; die 70 "$d exited during the benchmark"; }
	done
}

# Where the CPU went during the measured run, in % of one core.
# PostgreSQL: the postmaster and its children (backends, writers)
pg_ticks() {
	t=$(ticks "$ppid_pg")
	for c in $(ps -o pid= --ppid "$ppid_pg" 2>/dev/null); do
		t=$((t + $(ticks "$c")))
	done
	echo "$t"
}
busy() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
irqs() { awk '$1 == "cpu" { print $7 + $8; exit }' /proc/stat; }
dash_ticks() { t=0; for p in $dash_pids; do t=$((t + $(ticks "$p"))); done; echo "$t"; }
cpu_snap() {
	echo "$(ticks "$npid") $(ticks "$rpid") $(ticks "$ipid") $(ticks "$bpid") $(ticks "$kpid") $(pg_ticks) $(dash_ticks) $(busy) $(irqs) $(date +%s%N)"
}
# cpu_json SNAP0 SNAP1 HTTPBENCH_CPU_SECONDS: one JSON object
cpu_json() {
	echo "$1 $2" | awk -v hz="$clk" -v hb="$3" '{
		w = ($20 - $10) / 1e9; if (w <= 0) w = 1
		for (i = 1; i <= 9; i++) d[i] = ($(i + 10) - $i) / hz / w * 100
		hbp = hb / w * 100
		o = d[8] - d[1] - d[2] - d[3] - d[4] - d[5] - d[6] - d[7] - d[9] - hbp
		if (o < 0) o = 0
		printf "{\"wall_s\":%.2f,\"notify\":%.1f,\"route\":%.1f,\"ingest\":%.1f,\"batch_commit\":%.1f,\"redis\":%.1f,\"postgres\":%.1f,\"dashboards\":%.1f,\"httpbench\":%.1f,\"irq\":%.1f,\"machine\":%.1f,\"others\":%.1f}\n",
			w, d[1], d[2], d[3], d[4], d[5], d[6], d[7], hbp, d[9], d[8], o
	}'
}

rss_idle=$(kib_of "$npid" VmRSS)

# ---- the instructors, one a class, and their dashboards ----
info "$classes instructors and dashboards, classes bench-0 to bench-$((classes - 1))"
k=0
while [ "$k" -lt "$classes" ]; do
	"$top/bin/labpulse" instructor add "bench-$k" "bench-$k" >"$runs/token.$k" 2>"$runs/token.$k.err" ||
		{ cat "$runs/token.$k.err" >&2; die 69 "cannot add the instructor bench-$k"; }
	k=$((k + 1))
done
# every dashboard watches until the run is over and delivered; this is only
# the backstop should the script not stop it
w_timeout=$((warm_s + run_s + 90))
n0=$(grep -c ': info: subscribed ' "$nlog")
k=0
while [ "$k" -lt "$classes" ]; do
	if [ $((k % 2)) -eq 0 ]; then kind=ws; else kind=sse; fi
	echo "$kind" >"$runs/dash.$k.kind"
	"$watch" --latency --quiet --timeout "$w_timeout" \
		--token "$(tail -n 1 "$runs/token.$k")" \
		"$LABPULSE_NOTIFY_URL/$kind?class=bench-$k" \
		>"$runs/dash.$k.out" 2>"$runs/dash.$k.err" &
	dash_pids="$dash_pids $!"
	k=$((k + 1))
done
subscribed=0
for _ in $(seq 100); do
	subscribed=$(($(grep -c ': info: subscribed ' "$nlog") - n0))
	[ "$subscribed" -ge "$classes" ] && break
	sleep 0.1
done
if [ "$subscribed" -lt "$classes" ]; then
	cat "$runs"/dash.*.err >&2
	die 70 "$subscribed of $classes dashboards subscribed in 10 s"
fi
for p in $dash_pids; do
	kill -0 "$p" 2>/dev/null || { cat "$runs"/dash.*.err >&2; die 70 "a dashboard exited before the load"; }
done
rss_conn=$(kib_of "$npid" VmRSS)

# ---- the load ----
# hb NAME ARGS...: one httpbench run at the class's load, as $runs/NAME.json
hb() {
	name=$1
	shift
	timeout $((warm_s + run_s + 60)) "$bench" --url "$url" --conns "$conns" \
		--batch 1 --rate "$rate" --classes "$classes" --warmup 0 --json "$@" \
		>"$runs/$name.json" 2>"$runs/$name.err"
	rc=$?
	if [ "$rc" -gt 1 ] || ! jq -e .requests "$runs/$name.json" >/dev/null 2>&1; then
		cat "$runs/$name.err" >&2
		die 70 "httpbench ($name) failed with status $rc"
	fi
	alive
	info "  $(jq -r '"\(.requests_per_s) requests/s, \(.events.accepted) events accepted, ack p99 \(.latency_uncorrected_ms.p99) ms from send, \(.latency_ms.p99) ms from due, status \(.status|tostring), errors \(.errors|tostring), due but unsent \(.backlog)"' "$runs/$name.json")"
}
# The warm-up's eventIds carry no send time: the dashboards count its
# messages but time only the measured run's.
if [ "$warm_s" -gt 0 ]; then
	info "warm-up: $rate events/s for $warm_s s, $conns connections, open loop"
	hb warm --duration "${warm_s}s"
fi
info "measured: $rate events/s for $run_s s, $conns connections, open loop, send times in the eventIds"
c0=$(cpu_snap)
hb run --duration "${run_s}s" --stamp
c1=$(cpu_snap)
cpu=$(cpu_json "$c0" "$c1" "$(jq '.cpu.user_s + .cpu.sys_s' "$runs/run.json")")
info "  CPU in % of one core: $cpu"
accepted=$(cat "$runs"/warm.json "$runs"/run.json 2>/dev/null | jq -s 'map(.events.accepted) | add')

# ---- what each dashboard should have: its class's events, once committed ----
info "waiting for batch-commit to commit the $accepted accepted events"
committed=0
t0=$(date +%s)
while :; do
	committed=$(sql -c "select count(*) from events where class_id like 'bench-%'") || die 70 "cannot count the events"
	[ "$committed" -ge "$accepted" ] && break
	[ $(($(date +%s) - t0)) -ge 60 ] && { info "  only $committed of $accepted committed after 60 s"; break; }
	sleep 0.5
done
sql -F ' ' -c "select class_id, count(*), count(*) filter (where event_id like 'b-%')
	from events where class_id like 'bench-%' group by 1 order by 1" >"$runs/expected" ||
	die 70 "cannot count the events by class"
routed=$(redis-cli -s "${LABPULSE_REDIS#unix:}" XLEN labpulse:routed)

# Then notify: until it has sent every message, and every byte of it has
# reached the dashboards' reads (nothing queued in either socket).
info "waiting for notify to deliver the $committed messages"
nport=${LABPULSE_NOTIFY_URL##*:}
queued() {
	ss -Htn state established "( sport = :$nport or dport = :$nport )" 2>/dev/null |
		awk '{ q += $1 + $2 } END { print q + 0 }'
}
sent=0
last=-1
still=0
for _ in $(seq 300); do
	sent=$(stats_of notify | jq -r '.messages_sent // 0' 2>/dev/null)
	sent=${sent:-0}
	if [ "$sent" -ge "$committed" ] && [ "$(queued)" -eq 0 ]; then
		break
	fi
	if [ "$sent" = "$last" ]; then still=$((still + 1)); else still=0; fi
	[ "$still" -ge 30 ] && break	# 3 s with nothing new
	last=$sent
	sleep 0.1
done
sleep 0.5
alive
nstats=$(stats_of notify)
printf '%s' "$nstats" | jq -e . >/dev/null 2>&1 || nstats=null
hwm=$(kib_of "$npid" VmHWM)
rss_end=$(kib_of "$npid" VmRSS)
rstats=$(stats_of route)
printf '%s' "$rstats" | jq -e . >/dev/null 2>&1 || rstats=null

# ---- the dashboards' figures ----
for p in $dash_pids; do kill -TERM "$p" 2>/dev/null; done
k=0
for p in $dash_pids; do
	wait "$p"
	echo $? >"$runs/dash.$k.rc"
	k=$((k + 1))
done
dash_pids=
rows=$runs/dash.tsv
: >"$rows"
k=0
while [ "$k" -lt "$classes" ]; do
	f=$runs/dash.$k.out
	line=$(grep '^{' "$f" | tail -n 1)
	printf '%s' "$line" | jq -e .messages >/dev/null 2>&1 ||
		line='{"received":0,"messages":0,"p50_us":0,"p90_us":0,"p99_us":0,"p999_us":0,"max_us":0,"snapshots":0,"resyncs":0,"closed":null}'
	exp=$(awk -v c="bench-$k" '$1 == c { print $2 }' "$runs/expected")
	exp_b=$(awk -v c="bench-$k" '$1 == c { print $3 }' "$runs/expected")
	end=$(grep -v '^{' "$f" | tr '\n' ' ' | sed 's/ $//')
	printf '%s\n' "$line" | jq -c --arg class "bench-$k" --arg kind "$(cat "$runs/dash.$k.kind")" \
		--argjson expected "${exp:-0}" --argjson expected_timed "${exp_b:-0}" \
		--argjson rc "$(cat "$runs/dash.$k.rc")" --arg ending "$end" \
		'{class: $class, kind: $kind, expected: $expected,
		  expected_timed: $expected_timed, messages, received,
		  share_pct: (if $expected > 0 then (.messages / $expected * 100 * 1000 | round) / 1000 else 0 end),
		  p50_ms: (.p50_us / 1000), p90_ms: (.p90_us / 1000),
		  p99_ms: (.p99_us / 1000), p999_ms: (.p999_us / 1000),
		  max_ms: (.max_us / 1000), snapshots, resyncs, closed,
		  exit_status: $rc, ending: $ending}' >>"$rows"
	k=$((k + 1))
done
dashes=$(jq -s . "$rows")
col() { jq -r "$1" "$rows" | tr '\n' ' '; }
p50s=$(col .p50_ms)
p99s=$(col .p99_ms)
p999s=$(col .p999_ms)
maxs=$(col .max_ms)
shares=$(col .share_pct)
med_p50=$(median $p50s)
med_p99=$(median $p99s)
med_p999=$(median $p999s)
worst_p99=$(maxof $p99s)
worst_p999=$(maxof $p999s)
worst_max=$(maxof $maxs)
min_share=$(minof $shares)
got=$(jq -s 'map(.messages) | add' "$rows")
want=$(jq -s 'map(.expected) | add' "$rows")
share=$(calc 'w > 0 ? g / w * 100 : 0' g="$got" w="$want" fmt=%.2f)
short=$(jq -s 'map(select(.messages < .expected)) | length' "$rows")
extra=$(jq -s 'map(select(.messages > .expected)) | length' "$rows")
[ "$short" -gt 0 ] && keep=1

# the floor: ingest's answer to the same POSTs, from the moment each was
# written (as the dashboards measure) and from its due time
a50=$(jq .latency_uncorrected_ms.p50 "$runs/run.json")
a99=$(jq .latency_uncorrected_ms.p99 "$runs/run.json")
a999=$(jq .latency_uncorrected_ms.p999 "$runs/run.json")
d50=$(jq .latency_ms.p50 "$runs/run.json")
d99=$(jq .latency_ms.p99 "$runs/run.json")
d999=$(jq .latency_ms.p999 "$runs/run.json")
over=$(calc 'e - a' e="$med_p99" a="$a99")
times=$(calc 'a > 0 ? e / a : 0' e="$med_p99" a="$a99" fmt=%.1f)
# notify's own view, all dashboards merged: receivedAt to the write
jn() { printf '%s' "$nstats" | jq -r "$1 // 0" 2>/dev/null || echo 0; }
nd50=$(calc 'v / 1000' v="$(jn .delivery_us.p50)")
nd99=$(calc 'v / 1000' v="$(jn .delivery_us.p99)")
nd999=$(calc 'v / 1000' v="$(jn .delivery_us.p999)")
ndmax=$(calc 'v / 1000' v="$(jn .delivery_us.max)")
warnings=$(grep -c ': \(warning\|error\): ' "$nlog")
slow=$(jn '(.resyncs.slow + .resyncs.gap + .dropped_slow)')
hb_errs=$(jq -s 'map(.errors.connect + .errors.reset + .errors.timeout + .errors.protocol + .errors.unanswered) | add' "$runs"/*.json)
non2xx=$(jq -s 'map(.requests.answered - .requests.ok) | add' "$runs"/*.json)
backlog=$(jq .backlog "$runs/run.json")
orate=$(jq .requests_per_s "$runs/run.json")

# ---- the report ----
st_p99=$(meets "$worst_p99" '<' "$t_p99")
st_share=missed
[ "$short" -eq 0 ] && [ "$extra" -eq 0 ] && [ "$want" -gt 0 ] && st_share=met
st_rss=$(meets "$(mib "$hwm")" '<' "$t_rss")
table=$runs/table.tsv
: >"$table"
# row FIGURE VALUE UNIT REFERENCE RATIO TARGET RESULT ("-" where none)
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$table"; }
row "POST to dashboard p50, median of $classes" "$med_p50" "ms" "$a50" "$(calc 'a > 0 ? e / a : 0' e="$med_p50" a="$a50" fmt=%.1f)" "-" "-"
row "POST to dashboard p99, median of $classes" "$med_p99" "ms" "$a99" "$times" "-" "-"
row "POST to dashboard p99, worst dashboard" "$worst_p99" "ms" "$a99" "$(calc 'a > 0 ? e / a : 0' e="$worst_p99" a="$a99" fmt=%.1f)" "< $t_p99 ms" "$st_p99"
row "POST to dashboard p99.9, median of $classes" "$med_p999" "ms" "$a999" "$(calc 'a > 0 ? e / a : 0' e="$med_p999" a="$a999" fmt=%.1f)" "-" "-"
row "POST to dashboard p99.9, worst dashboard" "$worst_p999" "ms" "$a999" "-" "-" "-"
row "POST to dashboard p99.9, worst WebSocket / SSE" "$(jq -s '[.[] | select(.kind == "ws") | .p999_ms] | max' "$rows") / $(jq -s '[.[] | select(.kind == "sse") | .p999_ms] | max' "$rows")" "ms" "-" "-" "-" "-"
row "POST to dashboard max, worst dashboard" "$worst_max" "ms" "-" "-" "-" "-"
row "delivered, all dashboards" "$share" "%" "-" "-" "$t_share %" "$st_share"
row "delivered, least dashboard" "$min_share" "%" "-" "-" "$t_share %" "$st_share"
row "notify VmHWM at the end" "$(mib "$hwm")" "MiB" "-" "-" "< $t_rss MiB" "$st_rss"
row "reference: ingest ack p50 / p99 / p99.9 (from send)" "$a50 / $a99 / $a999" "ms" "-" "-" "-" "-"
row "e2e p99 over ack p99 (medians of dashboards)" "$over" "ms" "-" "-" "-" "-"
row "notify receivedAt to write p50/p99/p99.9/max, all" "$nd50 / $nd99 / $nd999 / $ndmax" "ms" "-" "-" "-" "-"

echo
echo "notify benchmark: $students students x $per_student events/s = $rate single-event POSTs/s over $conns connections (open loop),"
echo "$classes dashboards (WebSocket for even classes, SSE for odd), $run_s s measured after $warm_s s of warm-up"
echo "PostgreSQL, Redis, the four daemons, httpbench and the dashboards share this machine's $cores cores"
echo
awk -F '\t' '
	function show(v, u) { return v == "-" ? "-" : v " " u }
	BEGIN { printf "%-52s %20s %11s %6s %-12s %s\n", "figure", "value", "reference", "ratio", "target", "result" }
	{ printf "%-52s %20s %11s %6s %-12s %s\n", $1, show($2, $3), show($4, $3), $5, $6, $7 }' "$table"
echo
printf '%-8s %-4s %8s %8s %8s %8s %8s %8s %8s %5s %s\n' class kind expected messages share% p50_ms p99_ms p999_ms max_ms exit ending
jq -r '[.class, .kind, .expected, .messages, .share_pct, .p50_ms, .p99_ms, .p999_ms, .max_ms, .exit_status, .ending] | @tsv' "$rows" |
	awk -F '\t' '{ printf "%-8s %-4s %8s %8s %8s %8s %8s %8s %8s %5s %s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 }'
echo
echo "load: achieved $orate POSTs/s, due but unsent $backlog; ack from due time p50 / p99 / p99.9 $d50 / $d99 / $d999 ms;" \
	"client errors $hb_errs, non-2xx $non2xx"
echo "events: $accepted accepted, $committed committed, $routed in the routed stream; notify sent $sent messages" \
	"($(jn .messages_in) read from the stream), resyncs and slow drops $slow, warnings in its log $warnings"
echo "notify: VmRSS idle $(mib "$rss_idle") MiB, with the dashboards $(mib "$rss_conn") MiB, at the end $(mib "$rss_end") MiB; VmHWM $(mib "$hwm") MiB"
echo "CPU in % of one core during the measured run (irq: interrupts, mostly loopback; others: the rest of the machine):"
echo "  $(printf '%s' "$cpu" | jq -r 'to_entries | map("\(.key) \(.value)") | join(" | ")')"
[ "$short" -gt 0 ] && echo "dashboards short of messages: $short (logs kept)"
[ "$extra" -gt 0 ] && echo "dashboards with more messages than events of their class: $extra"

jq -n \
	--argjson students "$students" --argjson per_student "$per_student" \
	--argjson rate "$rate" --argjson conns "$conns" --argjson classes "$classes" \
	--argjson run_s "$run_s" --argjson warm_s "$warm_s" --argjson cores "$cores" \
	--argjson dashes "$dashes" --rawfile table "$table" \
	--argjson warm "$(cat "$runs/warm.json" 2>/dev/null || echo null)" \
	--argjson run "$(cat "$runs/run.json")" \
	--argjson med_p50 "$med_p50" --argjson med_p99 "$med_p99" --argjson med_p999 "$med_p999" \
	--argjson worst_p99 "$worst_p99" --argjson worst_p999 "$worst_p999" --argjson worst_max "$worst_max" \
	--argjson share "$share" --argjson min_share "$min_share" \
	--argjson got "$got" --argjson want "$want" --argjson short "$short" --argjson extra "$extra" \
	--argjson a50 "$a50" --argjson a99 "$a99" --argjson a999 "$a999" \
	--argjson d50 "$d50" --argjson d99 "$d99" --argjson d999 "$d999" \
	--argjson over "$over" --argjson times "$times" \
	--argjson hwm "$(mib "$hwm")" --argjson rss_idle "$(mib "$rss_idle")" \
	--argjson rss_conn "$(mib "$rss_conn")" --argjson rss_end "$(mib "$rss_end")" \
	--argjson t_p99 "$t_p99" --argjson t_share "$t_share" --argjson t_rss "$t_rss" \
	--arg st_p99 "$st_p99" --arg st_share "$st_share" --arg st_rss "$st_rss" \
	--argjson accepted "$accepted" --argjson committed "$committed" --argjson routed "${routed:-null}" \
	--argjson sent "$sent" --argjson nstats "$nstats" --argjson rstats "$rstats" \
	--argjson warnings "$warnings" --argjson cpu "$cpu" \
	'def num: if . == "-" then null else (tonumber? // .) end;
	{
	  benchmark: "notify",
	  note: "PostgreSQL, Redis, the daemons, httpbench and the dashboards share the machine'"'"'s \($cores) cores",
	  settings: {students: $students, events_per_student_per_s: $per_student,
	    offered_posts_per_s: $rate, events_per_post: 1, conns: $conns,
	    classes: $classes, dashboards: {ws: ([$dashes[] | select(.kind == "ws")] | length),
	      sse: ([$dashes[] | select(.kind == "sse")] | length)},
	    run_s: $run_s, warmup_s: $warm_s, cores: $cores,
	    latency: "lpwatch: its receipt minus the send time httpbench wrote in the eventId (measured run only)",
	    delivery: "messages received over the events of the class committed to PostgreSQL (warm-up and measured run)"},
	  figures: [$table | split("\n")[] | select(length > 0) | split("\t") |
	    {figure: .[0], value: (.[1] | num), unit: .[2], reference: (.[3] | num),
	     ratio: (.[4] | num), target: (.[5] | if . == "-" then null else . end),
	     result: (.[6] | if . == "-" then null else . end)}],
	  end_to_end_ms: {p50_median: $med_p50, p99_median: $med_p99, p999_median: $med_p999,
	    p99_worst: $worst_p99, p999_worst: $worst_p999, max_worst: $worst_max,
	    target: "p99 < \($t_p99) on every dashboard", status: $st_p99},
	  delivery: {messages: $got, expected: $want, share_pct: $share,
	    least_share_pct: $min_share, dashboards_short: $short,
	    dashboards_over: $extra, target: "\($t_share) % on every dashboard",
	    status: $st_share},
	  notify_rss_mib: {peak: $hwm, target: "< \($t_rss)", status: $st_rss,
	    idle: $rss_idle, with_dashboards: $rss_conn, at_end: $rss_end},
	  reference: {what: "ingest POST to 202 at the same load (httpbench, measured run)",
	    from_send_ms: {p50: $a50, p99: $a99, p999: $a999},
	    from_due_ms: {p50: $d50, p99: $d99, p999: $d999},
	    e2e_p99_minus_ack_p99_ms: $over, e2e_p99_over_ack_p99: $times},
	  dashboards: $dashes,
	  events: {accepted: $accepted, committed: $committed, routed_stream_length: $routed,
	    notify_messages_sent: $sent},
	  cpu_pct_of_one_core: $cpu,
	  notify: {stats: $nstats, log_warnings_errors: $warnings},
	  route: {stats: $rstats},
	  httpbench: {warmup: $warm, run: $run}
	}' >"$out/notify.json" || die 70 "cannot write $out/notify.json"
echo "written: tests/bench/out/notify.json"
exit 0
