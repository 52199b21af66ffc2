#!/bin/sh
# hooks.sh: notify delivering hook messages to webhooks, against a Redis of
# its own and tests/tools/fakehook as 20 destinations (/d1 to /d20 of one
# fake), PostgreSQL unneeded (notify only warns it cannot reach it):
#   1. throughput: a backlog of hook messages (about 220 bytes of JSON with
#      a "text", as route writes them) delivered with pacing out of the way
#      (rate=1000/s burst=1000): messages/s from notify's start to the last
#      delivery, and notify's CPU a message; beside wrk sending the same
#      POSTs to the same fake over 20 connections (the ceiling of the fake),
#      measured in the same run; the median of the runs;
#   2. pacing: the same backlog at rate=25/s burst=1 a destination: the rate
#      each destination achieved from the fake's arrival times against
#      25/s, and the smallest gap between two arrivals of one destination
#      against 1/25 s;
#   3. memory: notify's VmHWM with the backlog queued (rate=1/h burst=1, so
#      nothing moves after the first send of each destination); target
#      under 50 MiB.
# Run by `make bench`, or alone:
#   sh tests/bench/hooks.sh
# HOOKS_BENCH_MESSAGES sets the backlog (default 10000), HOOKS_BENCH_RUNS the
# throughput runs whose median is reported (default 3), HOOKS_BENCH_FAKE
# another fake webhook server with fakehook's options.
# Exit 1 when notify's memory is over its target (after the report), 69 when
# a tool or build is missing, 70 when a run fails.
# Lists of run figures are kept as words and split on purpose.
# shellcheck disable=SC2086,SC2046
prog="bench-hooks"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
n=${HOOKS_BENCH_MESSAGES:-10000}
runs=${HOOKS_BENCH_RUNS:-3}
fake=${HOOKS_BENCH_FAKE:-$top/tests/tools/fakehook}
notify=$top/bin/notify
dests=20
pace=25		# messages/s a destination in the pacing run
t_rss=50	# MiB, notify's VmHWM with the backlog queued

case $n in ''|*[!0-9]*|0*) die 64 "HOOKS_BENCH_MESSAGES must be a positive integer, not '$n'" ;; esac
[ "$n" -ge "$dests" ] || die 64 "HOOKS_BENCH_MESSAGES must be at least $dests"
case $runs in [1-9]) ;; *) die 64 "HOOKS_BENCH_RUNS must be 1 to 9, not '$runs'" ;; esac
need_target=bin/notify
need_files "$notify" "$fake"
need_tools redis-server redis-cli wrk socat jq awk

redis_pid=
notify_pid=
fake_pid=
wrk_pid=
# stop PID...: TERM, then KILL after 10 s
stop() {
	for p; do
		kill -TERM "$p" 2>/dev/null || continue
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
	done
}
# shellcheck disable=SC2317 # called by the EXIT trap
bench_stop() { stop $wrk_pid $notify_pid $fake_pid $redis_pid; }
keep_dirs=run
bench_home lpbench-hooks
run=$home/run
mkdir -p "$run" "$home/log" || die 69 "cannot make $run"
sock=$home/redis.sock
nsock=$home/notify.sock
redis() { redis-cli -s "$sock" "$@"; }
# the hooks are the only thing of the environment notify is to read
unset LABPULSE_HOOKS LABPULSE_TELEGRAM_TOKEN

redis-server --unixsocket "$sock" --port 0 --save '' --appendonly no \
	--dir "$home" --daemonize no >"$home/log/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 100); do redis PING >/dev/null 2>&1 && break; sleep 0.1; done
redis PING >/dev/null 2>&1 || die 69 "redis-server did not start"

hz=$(getconf CLK_TCK)
cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
now() { date +%s.%N; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
maxof() { printf '%s\n' "$@" | sort -g | tail -n 1; }

# fill: a fresh labpulse:hooks of $n messages, destinations d1..d20 in
# turn, as route writes them (fields topic and msg)
fill() {
	redis FLUSHALL >/dev/null
	awk -v n="$n" -v dests="$dests" '
		function bulk(s) { return "$" length(s) "\r\n" s "\r\n" }
		BEGIN {
			for (i = 0; i < n; i++) {
				d = "d" (i % dests + 1)
				s = sprintf("s-%04d", i % 200)
				c = sprintf("bench-%d", i % 10)
				nb = sprintf("week%d/lab-%02d.ipynb", i % 12 + 1, i % 40)
				m = sprintf("{\"topic\":\"hook:%s\",\"eventId\":\"e-%08d\",\"eventTime\":\"2026-03-02T10:%02d:%02d.%03dZ\",\"classId\":\"%s\",\"studentId\":\"%s\",\"notebookPath\":\"%s\",\"text\":\"%s asks for help with %s in %s\"}",
				    d, i, int(i / 60) % 60, i % 60, i % 1000, c, s, nb, s, nb, c)
				printf "*7\r\n%s%s%s%s%s%s%s", bulk("XADD"), bulk("labpulse:hooks"),
				    bulk("*"), bulk("topic"), bulk("hook:" d), bulk("msg"), bulk(m)
			}
		}' | redis --pipe >/dev/null || die 70 "cannot fill the stream"
	[ "$(redis XLEN labpulse:hooks)" = "$n" ] || die 70 "the stream does not hold $n messages"
}

# start_fake NAME ARGS...: a fake on a free port; sets fake_pid and port
start_fake() {
	name=$1
	shift
	pf=$run/$name.port
	"$fake" --port-file "$pf" "$@" </dev/null 2>"$home/log/$name.log" &
	fake_pid=$!
	for _ in $(seq 100); do [ -s "$pf" ] && break; sleep 0.1; done
	[ -s "$pf" ] || die 70 "$fake did not start; see $home/log/$name.log"
	port=$(cat "$pf")
}

# hooks_file FILE OPTIONS: the 20 destinations, /d1 to /d20 of the fake
hooks_file() {
	i=1
	while [ "$i" -le "$dests" ]; do
		printf 'd%s\thttp://127.0.0.1:%s/d%s\t%s\n' "$i" "$port" "$i" "$2"
		i=$((i + 1))
	done >"$1"
}

stats() { socat -T 2 - "UNIX-CONNECT:$nsock" </dev/null 2>/dev/null; }
# hooks_stat FIELD: one counter of notify's hooks object, empty if none
hooks_stat() { stats | jq -r ".hooks.$1 // empty" 2>/dev/null; }

# start_notify NAME HOOKS: notify reading labpulse:hooks; sets notify_pid
# and ticks0 (its CPU once its stats answer)
start_notify() {
	rm -f "$nsock"
	"$notify" --hooks "$2" --listen 127.0.0.1:0 --stats "$nsock" \
		--db host=/nonexistent --redis "unix:$sock" --consumer bench \
		</dev/null 2>"$home/log/$1.log" &
	notify_pid=$!
	for _ in $(seq 500); do
		[ -n "$(hooks_stat read)" ] && break
		alive "$1"
		sleep 0.01
	done
	[ -n "$(hooks_stat read)" ] || die 70 "notify's stats did not answer in 5 s"
	ticks0=$(ticks "$notify_pid")
}
alive() {
	kill -0 "$notify_pid" 2>/dev/null || {
		tail -n 5 "$home/log/$1.log" >&2
		die 70 "notify exited during $1"
	}
}
# wait_for NAME FIELD COUNT SECONDS: until the hooks counter FIELD reaches
# COUNT, polling every 20 ms; sets t1 and got
wait_for() {
	end=$(($(date +%s) + $4))
	while :; do
		got=$(hooks_stat "$2")
		got=${got:-0}
		[ "$got" -ge "$3" ] && break
		alive "$1"
		[ "$(date +%s)" -lt "$end" ] ||
			die 70 "$1: notify's hooks.$2 is $got of $3 after $4 s"
		sleep 0.02
	done
	t1=$(now)
}
# end_notify NAME: TERM, and its exit status must be 0
end_notify() {
	kill -TERM "$notify_pid"
	wait "$notify_pid" || die 70 "$1: notify did not exit 0; see $home/log/$1.log"
	notify_pid=
}

# ---- 1. throughput, beside wrk's POSTs to the same fake ----
# The wrk script sends line k of the bodies file ("PATH BODY") with
# notify's headers, and at the Nth answer writes the time and the count
# of answers other than 200 to the stamp file and stops.
lua=$run/post.lua
cat >"$lua" <<'EOF'
local reqs, k, answered, bad, limit, stamp = {}, 0, 0, 0, 0, ""
function init(args)
	for l in io.lines(args[1]) do
		local path, body = l:match("^(%S+) (.*)$")
		reqs[#reqs + 1] = { path, body }
	end
	limit = tonumber(args[2])
	stamp = args[3]
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "labpulse-notify/bench"
function request()
	k = k + 1
	local r = reqs[(k - 1) % #reqs + 1]
	return wrk.format(nil, r[1], { ["Idempotency-Key"] = "1-" .. k }, r[2])
end
function response(status)
	answered = answered + 1
	if status ~= 200 then bad = bad + 1 end
	if answered == limit then
		os.execute("echo $(date +%s.%N) " .. bad .. " >" .. stamp ..
		    ".tmp && mv " .. stamp .. ".tmp " .. stamp)
		wrk.thread:stop()
	end
end
EOF

info "throughput: $n messages to $dests destinations at rate=1000/s burst=1000, $runs runs"
start_fake fake-rate
hooks_file "$run/hooks.rate" "rate=1000/s burst=1000"
fill
redis --raw XRANGE labpulse:hooks - + |
	awk 'NR % 5 == 3 { p = "/" substr($0, 6) } NR % 5 == 0 { print p, $0 }' >"$run/bodies"
[ "$(wc -l <"$run/bodies")" -eq "$n" ] || die 70 "cannot list the bodies"
rates=
refs=
ratios=
cpus=
i=0
while [ "$i" -lt "$runs" ]; do
	i=$((i + 1))
	[ "$i" -gt 1 ] && fill
	t0=$(now)
	start_notify rate "$run/hooks.rate"
	wait_for rate delivered "$n" 120
	ticks1=$(ticks "$notify_pid")
	dead=$(hooks_stat dead)
	[ "${dead:-0}" = 0 ] || die 70 "throughput: $dead dead letters"
	end_notify rate
	rate=$(calc 'n / (b - a)' n="$n" a="$t0" b="$t1" fmt=%.0f)
	cpu=$(calc '(b - a) / hz / n * 1000000' a="$ticks0" b="$ticks1" hz="$hz" n="$n" fmt=%.1f)

	# the reference: wrk, one thread, a connection a destination
	st=$run/wrk.stamp
	rm -f "$st"
	w0=$(now)
	wrk -t 1 -c "$dests" -d 300s --timeout 10s -s "$lua" "http://127.0.0.1:$port/" \
		-- "$run/bodies" "$n" "$st" >"$home/log/wrk.log" 2>&1 &
	wrk_pid=$!
	for _ in $(seq 6000); do
		[ -s "$st" ] && break
		kill -0 "$wrk_pid" 2>/dev/null || break
		sleep 0.05
	done
	stop "$wrk_pid"
	wrk_pid=
	[ -s "$st" ] || { tail -n 5 "$home/log/wrk.log" >&2; die 70 "wrk did not answer $n requests"; }
	read -r w1 wbad <"$st"
	[ "$wbad" = 0 ] || die 70 "the fake answered wrk $wbad times other than 200"
	ref=$(calc 'n / (b - a)' n="$n" a="$w0" b="$w1" fmt=%.0f)
	r=$(ratio "$rate" "$ref")
	info "run $i: notify $rate messages/s, $cpu us CPU a message; wrk $ref requests/s; ratio $r"
	rates="$rates $rate"
	refs="$refs $ref"
	ratios="$ratios $r"
	cpus="$cpus $cpu"
done
stop "$fake_pid"
fake_pid=
med_rate=$(median $rates)
med_ref=$(median $refs)
med_ratio=$(median $ratios)
med_cpu=$(median $cpus)

# ---- 2. pacing ----
secs=$(calc 'n / d / p' n="$n" d="$dests" p="$pace" fmt=%.0f)
info "pacing: $n messages to $dests destinations at rate=$pace/s burst=1 (about $secs s)"
flog=$run/pace.ndjson
start_fake fake-pace --log "$flog"
hooks_file "$run/hooks.pace" "rate=$pace/s burst=1"
fill
start_notify pace "$run/hooks.pace"
wait_for pace delivered "$n" $((secs * 2 + 30))
end_notify pace
stop "$fake_pid"
fake_pid=
# per destination: arrivals, achieved rate, its error against the rate
# asked, and the smallest gap between two arrivals
# (and every gap, in ms, to $run/gaps)
jq -r '[.path, .t, .status] | @tsv' "$flog" | sort -k1,1 -k2,2g | awk -v p="$pace" -v gaps="$run/gaps" '
	$3 != 200 { bad++ }
	$1 != d { if (d != "") out(); d = $1; c = 0; first = $2; gap = -1 }
	c > 0 { printf "%.3f\n", ($2 - last) * 1000 >gaps }
	{ if (c > 0 && (gap < 0 || $2 - last < gap)) gap = $2 - last; c++; last = $2 }
	function out(r) {
		r = c > 1 && last > first ? (c - 1) / (last - first) : 0
		printf "%s %d %.4f %.3f %.3f\n", d, c, r, (r / p - 1) * 100, gap * 1000
	}
	END { if (d != "") out(); if (bad) printf "bad %d\n", bad }' >"$run/pace.tsv"
grep -q '^bad ' "$run/pace.tsv" && die 70 "pacing: the fake answered other than 200"
arrivals=$(awk '{ s += $2 } END { print s + 0 }' "$run/pace.tsv")
[ "$arrivals" -eq "$n" ] || die 70 "pacing: the fake saw $arrivals arrivals, not $n"
med_err=$(median $(awk '{ print $4 }' "$run/pace.tsv"))
worst_err=$(maxof $(awk '{ print ($4 < 0 ? -$4 : $4) }' "$run/pace.tsv"))
min_gap=$(awk 'NR == 1 || $5 < m { m = $5 } END { print m }' "$run/pace.tsv")
# the arrival times are the fake's, which a busy fake delays: the 1st
# percentile and the share of gaps under 90% of the interval tell a lone
# late arrival from sends too close together
p1_gap=$(sort -g "$run/gaps" | awk '{ v[NR] = $1 } END { print v[int(NR / 100) + 1] }')
short_gaps=$(awk -v w="$(calc '900 / p' p="$pace")" '$1 < w { s++ } END { printf "%.2f", NR ? s / NR * 100 : 0 }' "$run/gaps")
want_gap=$(calc '1000 / p' p="$pace")

# ---- 3. memory with the backlog queued ----
info "memory: $n messages queued (rate=1/h burst=1)"
start_fake fake-mem
hooks_file "$run/hooks.mem" "rate=1/h burst=1"
fill
start_notify mem "$run/hooks.mem"
wait_for mem read "$n" 60
wait_for mem delivered "$dests" 30
sleep 0.5	# whatever reading the backlog leaves to settle
queued=$(hooks_stat queued)
hwm=$(kib_of "$notify_pid" VmHWM)
rss=$(kib_of "$notify_pid" VmRSS)
end_notify mem
stop "$fake_pid"
fake_pid=
st_rss=$(calc "(v < t) ? 1 : 0" v="$(mib "$hwm")" t="$t_rss" fmt=%d | sed 's/1/met/; s/0/missed/')

# ---- the report ----
table=$run/table.tsv
: >"$table"
# row FIGURE VALUE UNIT REFERENCE RATIO TARGET RESULT ("-" where none)
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$table"; }
row "delivered, median of $runs runs" "$med_rate" "msg/s" "$med_ref" "$med_ratio" "-" "-"
row "notify CPU a message, median of $runs runs" "$med_cpu" "us" "-" "-" "-" "-"
row "pacing: rate error, median of $dests destinations" "$med_err" "%" "-" "-" "-" "-"
row "pacing: |rate error|, worst destination" "$worst_err" "%" "-" "-" "-" "-"
row "pacing: smallest gap of one destination" "$min_gap" "ms" "$want_gap" "$(ratio "$min_gap" "$want_gap")" "-" "-"
row "pacing: gap of one destination, 1st percentile" "$p1_gap" "ms" "$want_gap" "$(ratio "$p1_gap" "$want_gap")" "-" "-"
row "pacing: gaps under 90% of the interval" "$short_gaps" "%" "-" "-" "-" "-"
row "notify VmHWM, $n queued" "$(mib "$hwm")" "MiB" "-" "-" "< $t_rss MiB" "$st_rss"

echo
echo "hooks benchmark: $n hook messages to $dests webhook destinations of one fake (tests/tools/fakehook),"
echo "notify, Redis, the fake and wrk sharing this machine's $cores cores"
echo
awk -F '\t' '
	function show(v, u) { return v == "-" ? "-" : v " " u }
	BEGIN { printf "%-50s %14s %14s %6s %-10s %s\n", "figure", "value", "reference", "ratio", "target", "result" }
	{ printf "%-50s %14s %14s %6s %-10s %s\n", $1, show($2, $3), show($4, $3), $5, $6, $7 }' "$table"
echo
echo "reference: wrk sending the same $n POSTs to the same fake over $dests connections (ratio: the median of the runs' ratios)"
echo "runs: notify$rates msg/s; wrk$refs requests/s; CPU$cpus us a message"
echo "pacing: rate=$pace/s burst=1 a destination; achieved $(awk '{ printf "%s%.2f", (NR > 1 ? " " : ""), $3 }' "$run/pace.tsv") messages/s"
echo "memory: VmHWM $(mib "$hwm") MiB, VmRSS $(mib "$rss") MiB with $queued queued"
# A fake that writes an answer's head and body apart without TCP_NODELAY
# waits for the client's delayed ACK (40 ms on Linux) on every request:
# then every figure but memory is the fake's, not notify's.
ref_ms=$(calc 'r > 0 ? d / r * 1000 : 0' d="$dests" r="$med_ref" fmt=%.1f)
if [ "$(calc "(v >= 35) ? 1 : 0" v="$ref_ms" fmt=%d)" = 1 ]; then
	echo "warning: the fake took $ref_ms ms a request under wrk: the throughput and pacing figures measure the fake (Nagle's algorithm against delayed ACKs?), not notify"
fi

per_dest=$(awk '{ printf "{\"destination\":\"%s\",\"arrivals\":%d,\"rate\":%s,\"error_pct\":%s,\"min_gap_ms\":%s}\n", $1, $2, $3, $4, $5 }' "$run/pace.tsv" | jq -s .)
jq -n \
	--argjson n "$n" --argjson runs "$runs" --argjson dests "$dests" --argjson cores "$cores" \
	--rawfile table "$table" \
	--argjson rates "[$(echo $rates | tr ' ' ,)]" --argjson refs "[$(echo $refs | tr ' ' ,)]" \
	--argjson ratios "[$(echo $ratios | tr ' ' ,)]" --argjson cpus "[$(echo $cpus | tr ' ' ,)]" \
	--argjson med_rate "$med_rate" --argjson med_ref "$med_ref" \
	--argjson med_ratio "$med_ratio" --argjson med_cpu "$med_cpu" \
	--argjson pace "$pace" --argjson med_err "$med_err" --argjson worst_err "$worst_err" \
	--argjson min_gap "$min_gap" --argjson want_gap "$want_gap" \
	--argjson p1_gap "$p1_gap" --argjson short_gaps "$short_gaps" --argjson per_dest "$per_dest" \
	--argjson hwm "$(mib "$hwm")" --argjson rss "$(mib "$rss")" --argjson queued "${queued:-0}" \
	--argjson t_rss "$t_rss" --arg st_rss "$st_rss" \
	'def num: if . == "-" then null else (tonumber? // .) end;
	{
	  benchmark: "hooks",
	  note: "notify, Redis, the fake and wrk share the machine'"'"'s \($cores) cores",
	  settings: {messages: $n, destinations: $dests, runs: $runs},
	  figures: [$table | split("\n")[] | select(length > 0) | split("\t") |
	    {figure: .[0], value: (.[1] | num), unit: .[2], reference: (.[3] | num),
	     ratio: (.[4] | num), target: (.[5] | if . == "-" then null else . end),
	     result: (.[6] | if . == "-" then null else . end)}],
	  throughput: {options: "rate=1000/s burst=1000",
	    messages_per_s: $med_rate, cpu_us_per_message: $med_cpu,
	    reference: {what: "wrk, 1 thread, \($dests) connections, the same POSTs to the same fake",
	      requests_per_s: $med_ref},
	    ratio: $med_ratio,
	    runs: {messages_per_s: $rates, reference_per_s: $refs, ratios: $ratios,
	      cpu_us_per_message: $cpus}},
	  pacing: {options: "rate=\($pace)/s burst=1",
	    rate_error_pct: {median: $med_err, worst_absolute: $worst_err},
	    min_gap_ms: $min_gap, p1_gap_ms: $p1_gap, gaps_under_90pct_of_interval_pct: $short_gaps,
	    interval_ms: $want_gap, destinations: $per_dest},
	  memory: {options: "rate=1/h burst=1", queued: $queued, vmhwm_mib: $hwm, vmrss_mib: $rss,
	    target: "< \($t_rss) MiB", status: $st_rss}
	}' >"$out/hooks.json" || die 70 "cannot write $out/hooks.json"
echo "written: tests/bench/out/hooks.json"
[ "$st_rss" = met ] || exit 1
exit 0
