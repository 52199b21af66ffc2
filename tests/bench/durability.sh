#!/bin/sh
# durability.sh: what Redis's appendfsync always costs beside everysec, the
# default. The private stack runs twice, once with each setting: ingest
# takes single-event POSTs from wrk for a fixed time, and redis-benchmark's
# XADD rate under the same setting, in the same run, is the reference.
# labpulse(7) says what each setting keeps after which failure. Run by `make
# bench`. A benchmark reports: only a step that cannot run exits non-zero
# (69 a tool or build is missing, 70 a run failed).
# shellcheck disable=SC2086
prog="bench-durability"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
run_s=${BENCH_RUN_S:-10}	# seconds of wrk for each setting
conns=${BENCH_CONNS:-50}	# connections of wrk, clients of redis-benchmark
threads=2

need_files "$top/bin/labpulse" "$top/bin/ingest" "$top/bin/stack"
need_tools wrk redis-benchmark redis-cli jq awk

# The stack's data goes where its Redis would in production: on a disk. On
# tmpfs a sync costs nothing and the comparison says nothing; say so.
bench_home lpdurable "${BENCH_HOME:-}"
fs=$(findmnt -n -o FSTYPE -T "$home" 2>/dev/null || stat -f -c %T "$home" 2>/dev/null)
[ -n "$fs" ] || fs=unknown

# One single-event POST as the extension sends it, a new eventId each time.
lua=$home/post.lua
cat >"$lua" <<'EOF'
local n = 0
local head = '[{"eventId":"dur-'
local rest = '","eventType":"cell_executed","eventTime":"2026-11-25T10:15:30.123",' ..
  '"emailAddress":"student1@example.edu","userName":"Student 1","classId":"bench",' ..
  '"notebookPath":"lab1.ipynb","cellIndex":3,"cellType":"code",' ..
  '"code":"print(sum(range(10)))","executionCount":7,"hasError":false,' ..
  '"result":"45","executionDurationMs":12.5,"metadata":{"kernel":"python3"}}]'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, head .. n .. "-" .. math.random(1e9) .. rest)
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
EOF
# the reference's payload: about the size of the event as ingest stamps it
payload=$(awk 'BEGIN { s = "{\"eventId\":\"ref\",\"code\":\""; for (i = 0; i < 480; i++) s = s "x"; print s "\"}" }')

# up MODE: the stack with appendfsync MODE, with only ingest and Redis
# running, so that the figures are theirs and not the consumers'.
up() {
	[ "$stack" = 1 ] && "$top/bin/labpulse" down >/dev/null 2>&1
	bench_up LABPULSE_REDIS_FSYNC="$1" LABPULSE_INGEST_FLAGS="--max-backlog 0 --max-backlog-bytes 0"
	bench_only 70 ingest redis
	rsock=${LABPULSE_REDIS#unix:}
	got=$(redis-cli -s "$rsock" config get appendfsync | tail -n 1)
	[ "$got" = "$1" ] || die 70 "Redis runs with appendfsync $got, not $1"
}

# xadd_rate: redis-benchmark's XADD/s over $conns clients, for about run_s.
xadd_rate() {
	n=$1
	line=$(redis-benchmark -s "$rsock" -c "$conns" -n "$n" -P 1 --csv \
		XADD labpulse:durref '*' event "$payload" 2>/dev/null | tail -n 1)
	redis-cli -s "$rsock" DEL labpulse:durref >/dev/null
	# the fields counted from the end: the command itself holds commas
	v=$(printf '%s\n' "$line" | awk -F, '{ f = $(NF - 6); gsub(/"/, "", f); print f }')
	case $v in ''|*[!0-9.]*) die 70 "redis-benchmark gave no figure: $line" ;; esac
	echo "$v"
}

# measure MODE: sets ref_MODE, posts_MODE and the rest.
measure() {
	mode=$1
	info "$mode: starting the stack (appendfsync $mode)"
	up "$mode"
	# enough requests for about run_s at the rate of a short first try
	quick=$(xadd_rate 5000)
	n=$(awk -v r="$quick" -v s="$run_s" 'BEGIN { n = int(r * s); if (n < 5000) n = 5000; if (n > 2000000) n = 2000000; print n }')
	ref=$(xadd_rate "$n")
	info "$mode: redis-benchmark XADD $ref/s ($n requests, $conns clients)"
	before=$(redis-cli -s "$rsock" XLEN labpulse:events)
	wrk -t "$threads" -c "$conns" -d "${run_s}s" -s "$lua" \
		"$LABPULSE_INGEST_URL/api/v1/events" >"$home/wrk.$mode" 2>&1 ||
		{ cat "$home/wrk.$mode" >&2; die 70 "wrk failed"; }
	after=$(redis-cli -s "$rsock" XLEN labpulse:events)
	res=$(grep '^RESULT ' "$home/wrk.$mode") || { cat "$home/wrk.$mode" >&2; die 70 "wrk gave no result"; }
	get() { printf '%s\n' "$res" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
	req=$(get requests)
	dur=$(get duration_us)
	non2xx=$(get non2xx)
	errs=$(($(get connect) + $(get read) + $(get write) + $(get timeout)))
	ok=$((req - non2xx))
	posts=$(awk -v n="$ok" -v d="$dur" 'BEGIN { printf "%.0f", n / (d / 1e6) }')
	p50=$(awk -v v="$(get p50_us)" 'BEGIN { printf "%.2f", v / 1000 }')
	p99=$(awk -v v="$(get p99_us)" 'BEGIN { printf "%.2f", v / 1000 }')
	queued=$((after - before))
	info "$mode: $posts POSTs/s answered 2xx ($ok of $req; non-2xx $non2xx, socket errors $errs; queued $queued), p50 $p50 ms, p99 $p99 ms"
	redis-cli -s "$rsock" DEL labpulse:events >/dev/null
	eval "ref_$mode=\$ref posts_$mode=\$posts p50_$mode=\$p50 p99_$mode=\$p99"
	eval "ok_$mode=\$ok req_$mode=\$req non2xx_$mode=\$non2xx errs_$mode=\$errs queued_$mode=\$queued"
}

measure everysec
measure always

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
r_posts=$(ratio "$posts_always" "$posts_everysec")
r_ref=$(ratio "$ref_always" "$ref_everysec")
cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)

echo
echo "durability benchmark: ${run_s} s of single-event POSTs for each setting, $conns connections"
echo "(wrk, $threads threads); ingest, Redis and the clients share this machine's $cores cores;"
echo "the stack's data on $fs$( [ "$fs" = tmpfs ] && echo ' (a sync costs nothing there: the figures mean little)')"
echo
printf '%-30s %14s %14s %12s\n' "figure" "everysec" "always" "always/everysec"
printf '%-30s %14s %14s %12s\n' "ingest POSTs/s (2xx)" "$posts_everysec" "$posts_always" "$r_posts"
printf '%-30s %14s %14s %12s\n' "redis-benchmark XADD/s" "$ref_everysec" "$ref_always" "$r_ref"
printf '%-30s %14s %14s\n' "POST latency p50 / p99 (ms)" "$p50_everysec / $p99_everysec" "$p50_always / $p99_always"
echo
echo "answered 2xx / sent: everysec $ok_everysec / $req_everysec, always $ok_always / $req_always;" \
	"socket errors: $errs_everysec, $errs_always; entries queued: $queued_everysec, $queued_always"

jq -n --argjson run_s "$run_s" --argjson conns "$conns" --argjson cores "$cores" \
	--arg fs "$fs" \
	--argjson pe "$posts_everysec" --argjson pa "$posts_always" \
	--argjson re "$ref_everysec" --argjson ra "$ref_always" \
	--argjson rp "$r_posts" --argjson rr "$r_ref" \
	--argjson l50e "$p50_everysec" --argjson l99e "$p99_everysec" \
	--argjson l50a "$p50_always" --argjson l99a "$p99_always" \
	--argjson oke "$ok_everysec" --argjson oka "$ok_always" \
	--argjson qe "$queued_everysec" --argjson qa "$queued_always" \
	'{settings: {run_s: $run_s, conns: $conns, cores: $cores, filesystem: $fs},
	  everysec: {posts_per_s: $pe, xadd_per_s: $re, p50_ms: $l50e, p99_ms: $l99e,
	    answered_2xx: $oke, queued: $qe},
	  always: {posts_per_s: $pa, xadd_per_s: $ra, p50_ms: $l50a, p99_ms: $l99a,
	    answered_2xx: $oka, queued: $qa},
	  ratio_always_to_everysec: {posts: $rp, xadd: $rr}}' \
	>"$out/durability.json" || die 70 "cannot write $out/durability.json"
echo "written: tests/bench/out/durability.json"
exit 0
