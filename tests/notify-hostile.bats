#!/usr/bin/env bats
# notify-hostile: notify under attack. Each attacker is a client of
# tests/tools/hostile.py (raw bytes, a trickled request, idle connections,
# a ping flood that never reads); each test checks the attacker's exact
# answer, its counter, and that /healthz is answered meanwhile by the same
# process.

setup_file() {
	load helper/common
	stack_up
	TOKEN=$(labpulse instructor add hana CS101 CS102 2>/dev/null | tail -n 1)
	export TOKEN
}

teardown_file() {
	load helper/common
	stop_tracked
	stack_down
}

setup() {
	load helper/common
	HOSTILE=$TOP/tests/tools/hostile.py
	LPWATCH=$TOP/tests/tools/lpwatch
	[ -x "$LPWATCH" ] || { echo "tests/tools/lpwatch is not built: make unit"; return 1; }
}

# Whatever the outcome: the test's notify and clients are stopped.
teardown() {
	stop_tracked
}

# bg CMD...: a client in the background, stopped by teardown; sets BG_PID.
bg() {
	"$@" 3>&- &
	BG_PID=$!
	track "$BG_PID"
}

# raw URL BYTES: send BYTES (printf %b) to URL's host and port; the answer
# goes to $BATS_TEST_TMPDIR/raw, its status line in $status_line, its
# body in $raw_body.
raw() {
	local hp=${1#http://}
	printf '%b' "$2" >"$BATS_TEST_TMPDIR/raw.in"
	python3 "$HOSTILE" raw "${hp%:*}" "${hp##*:}" "$BATS_TEST_TMPDIR/raw" \
		<"$BATS_TEST_TMPDIR/raw.in"
	status_line=$(head -n 1 "$BATS_TEST_TMPDIR/raw" | tr -d '\r')
	raw_body=$(sed '1,/^\r$/d' "$BATS_TEST_TMPDIR/raw")
}

# healthy URL PID: /healthz answers 200 and PID is still the process.
healthy() {
	get "$1/healthz" --max-time 5
	assert_equal "$status_code" 200
	assert_equal "$body" ok
	kill -0 "$2"
}

@test "a NUL byte in the request line is 400 and notify keeps serving" {
	start_notify nul
	raw "$nul_URL" 'GET /\0 HTTP/1.1\r\nHost: x\r\n\r\n'
	assert_equal "$status_line" "HTTP/1.1 400 Bad Request"
	assert_equal "$raw_body" '{"error":"NUL byte in request head"}'
	healthy "$nul_URL" "$nul_PID"
	raw "$nul_URL" 'GET /sse?class=CS101\0 HTTP/1.1\r\n\r\n'
	assert_equal "$status_line" "HTTP/1.1 400 Bad Request"
	healthy "$nul_URL" "$nul_PID"
	[ "$(stats "$nul_STATS" | jq .bad_requests)" -eq 2 ]
}

@test "every malformed request gets its exact status and reason, and is closed" {
	start_notify bad
	raw "$bad_URL" 'BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n'
	assert_equal "$status_line" "HTTP/1.1 501 Not Implemented"
	assert_equal "$raw_body" '{"error":"method not implemented"}'
	raw "$bad_URL" 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'
	assert_equal "$status_line" "HTTP/1.1 505 HTTP Version Not Supported"
	assert_equal "$raw_body" '{"error":"HTTP/2 not supported"}'
	raw "$bad_URL" "GET /healthz HTTP/1.1\\r\\nX-Big: $(printf 'a%.0s' $(seq 9000))\\r\\n\\r\\n"
	assert_equal "$status_line" "HTTP/1.1 431 Request Header Fields Too Large"
	assert_equal "$raw_body" '{"error":"request head too large"}'
	raw "$bad_URL" 'POST /sse HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n'
	assert_equal "$status_line" "HTTP/1.1 413 Content Too Large"
	assert_equal "$raw_body" '{"error":"request body too large"}'
	raw "$bad_URL" 'GET /a%00b HTTP/1.1\r\nHost: x\r\n\r\n'
	assert_equal "$status_line" "HTTP/1.1 400 Bad Request"
	assert_equal "$raw_body" '{"error":"NUL byte in path"}'
	raw "$bad_URL" 'GET /healthz HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n'
	assert_equal "$status_line" "HTTP/1.1 400 Bad Request"
	assert_equal "$raw_body" '{"error":"obsolete line folding"}'
	# notify's own checks of the query: a NUL decoded from it, a class
	# that is not text, an id long enough to be cut short
	get "$bad_URL/sse?class=CS%00101&token=$TOKEN" --max-time 5
	assert_equal "$status_code" 400
	assert_equal "$body" '{"error":"malformed query string"}'
	get "$bad_URL/sse?class=CS%1B101&token=$TOKEN" --max-time 5
	assert_equal "$status_code" 400
	assert_equal "$body" '{"error":"class: must be UTF-8 text without control characters"}'
	get "$bad_URL/sse?class=CS101&token=$TOKEN&since=1-00000000000000000000000000000000000000000000001junk" --max-time 5
	assert_equal "$status_code" 400
	assert_equal "$body" '{"error":"since: not a stream id (MS-SEQ): 1-00000000000000000000000000000000000000000000001junk"}'
	get "$bad_URL/sse?class=CS101&token=$TOKEN&since=18446744073709551616-0" --max-time 5
	assert_equal "$status_code" 400
	get "$bad_URL/sse?class=CS101&token=%C3%A9t%C3%A9" --max-time 5
	assert_equal "$status_code" 401
	assert_equal "$body" '{"error":"unknown token"}'
	q=$(for i in $(seq 33); do printf 'class=C%d&' "$i"; done)
	get "$bad_URL/sse?${q}token=$TOKEN" --max-time 5
	assert_equal "$status_code" 400
	assert_equal "$body" '{"error":"class: at most 32 classes"}'
	healthy "$bad_URL" "$bad_PID"
	[ "$(stats "$bad_STATS" | jq '.bad_requests')" -eq 6 ]
}

@test "a trickled request is cut at --request-timeout while others are served" {
	start_notify tr --request-timeout 1s
	hp=${tr_URL#http://}
	start=$(date +%s%N)
	bg python3 "$HOSTILE" trickle "${hp%:*}" "${hp##*:}" "$BATS_TEST_TMPDIR/trickle"
	# trickling goes on for 800 s unless cut
	healthy "$tr_URL" "$tr_PID"
	wait_for grep -q '^HTTP/1.1 408 Request Timeout' "$BATS_TEST_TMPDIR/trickle"
	elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
	[ "$elapsed_ms" -lt 8000 ]
	assert_equal "$(sed '1,/^\r$/d' "$BATS_TEST_TMPDIR/trickle")" '{"error":"request not complete in time"}'
	healthy "$tr_URL" "$tr_PID"
	assert_equal "$(stats "$tr_STATS" | jq .request_timeouts)" 1
	grep -q 'request not whole in time; closed' "$tr_LOG"
}

@test "connections past --max-conns-per-addr are 503 for that address only" {
	start_notify pa --max-conns-per-addr 3 --request-timeout 60s
	hp=${pa_URL#http://}
	bg python3 "$HOSTILE" hold "${hp%:*}" "${hp##*:}" 3 "$BATS_TEST_TMPDIR/held"
	wait_for test -e "$BATS_TEST_TMPDIR/held"
	wait_until 'test "$(stats "$pa_STATS" | jq .clients.connections)" = 3'
	get "$pa_URL/healthz" --max-time 5
	assert_equal "$status_code" 503
	assert_equal "$body" '{"error":"too many connections from your address; try again"}'
	[[ $headers == *"Retry-After: 5"* ]]
	# another address is served
	get "$pa_URL/healthz" --max-time 5 --interface 127.0.0.2
	assert_equal "$status_code" 200
	stats "$pa_STATS" >"$BATS_TEST_TMPDIR/st"
	assert_equal "$(jq -c '[.refused_per_addr, .clients.max_conns_per_addr, .refused_cap]' "$BATS_TEST_TMPDIR/st")" '[1,3,0]'
	# counted until closed: once the idle ones go, the address is served
	kill "$BG_PID"
	wait_until 'test "$(stats "$pa_STATS" | jq .clients.connections)" = 0'
	healthy "$pa_URL" "$pa_PID"
}

@test "--max-conns-per-addr counts WebSocket and SSE clients too" {
	start_notify pb --max-conns-per-addr 2
	"$LPWATCH" --timeout 30 --token "$TOKEN" "$pb_URL/ws?class=CS101" >"$BATS_TEST_TMPDIR/w1" 2>&1 3>&- &
	track "$!"
	"$LPWATCH" --timeout 30 --token "$TOKEN" "$pb_URL/sse?class=CS102" >"$BATS_TEST_TMPDIR/w2" 2>&1 3>&- &
	track "$!"
	wait_until 'test "$(stats "$pb_STATS" | jq .clients.cl_active)" = 2'
	run -0 "$LPWATCH" --timeout 5 --token "$TOKEN" "$pb_URL/sse?class=CS101"
	assert_output --partial 'http 503'
	get "$pb_URL/healthz" --max-time 5 --interface 127.0.0.2
	assert_equal "$status_code" 200
}

@test "a WebSocket client that pings and never reads is closed at --max-queue and counted" {
	start_notify fl --max-queue 64k
	hp=${fl_URL#http://}
	bg python3 "$HOSTILE" pingflood "${hp%:*}" "${hp##*:}" \
		"/ws?class=CS101&token=$TOKEN" "$BATS_TEST_TMPDIR/flood"
	healthy "$fl_URL" "$fl_PID"
	wait_until 'test "$(stats "$fl_STATS" | jq .ws_queue_closed)" = 1'
	grep -q 'client sent more than it read; closed .* code=1008' "$fl_LOG"
	healthy "$fl_URL" "$fl_PID"
	# the flood's connection is gone: what it made notify hold went too
	wait_until 'test "$(stats "$fl_STATS" | jq .clients.connections)" = 0'
	assert_equal "$(stats "$fl_STATS" | jq .queue.depth)" 0
}

@test "a class named twice is refused, over SSE and WebSocket" {
	get "$LABPULSE_NOTIFY_URL/sse?class=CS101&class=CS102&class=CS101&token=$TOKEN" --max-time 5
	assert_equal "$status_code" 400
	assert_equal "$body" '{"error":"class: CS101 is named twice"}'
	run -0 "$LPWATCH" --timeout 5 --token "$TOKEN" "$LABPULSE_NOTIFY_URL/ws?class=CS101&class=CS101"
	assert_output 'close 4400 class: CS101 is named twice'
	healthy "$LABPULSE_NOTIFY_URL" "$(cat "$LABPULSE_RUNDIR/notify.pid")"
}

@test "the new flags' bad values are usage errors" {
	run -64 --separate-stderr notify --request-timeout 0
	[[ ${stderr_lines[0]} == "labpulse-notify: error: --request-timeout: "* ]]
	run -64 --separate-stderr notify --request-timeout 2h
	[[ ${stderr_lines[0]} == "labpulse-notify: error: --request-timeout: "* ]]
	run -64 --separate-stderr notify --request-timeout soon
	[[ ${stderr_lines[0]} == "labpulse-notify: error: --request-timeout: "* ]]
	run -64 --separate-stderr notify --max-conns-per-addr -1
	[[ ${stderr_lines[0]} == "labpulse-notify: error: --max-conns-per-addr: "* ]]
	run -64 --separate-stderr notify --max-conns-per-addr many
	[[ ${stderr_lines[0]} == "labpulse-notify: error: --max-conns-per-addr: "* ]]
	run -64 --separate-stderr notify --max-conns-per-addr 100001
	[[ ${stderr_lines[0]} == "labpulse-notify: error: --max-conns-per-addr: "* ]]
}

@test "pipelined requests from a client that reads no answer are not read ahead without bound" {
	start_notify pl
	hp=${pl_URL#http://}
	rss0=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pl_PID/status")
	# 40 MB of requests for an 18 kB file, none of whose answers is read:
	# notify stops reading once the first answers wait, so the sender
	# stalls with what the kernels' buffers hold
	cat >"$BATS_TEST_TMPDIR/flood.py" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect((sys.argv[1], int(sys.argv[2])))
s.setblocking(False)
chunk = b"GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n" * 2000
sent, stalled = 0, time.monotonic()
while sent < 40 << 20 and time.monotonic() - stalled < 2:
    try:
        sent += s.send(chunk)
        stalled = time.monotonic()
    except BlockingIOError:
        time.sleep(0.01)
print(sent)
PY
	run -0 timeout 60 python3 "$BATS_TEST_TMPDIR/flood.py" "${hp%:*}" "${hp##*:}"
	sent=$output
	rss1=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pl_PID/status")
	[ "$sent" -lt $((20 << 20)) ] || { echo "sent $sent bytes, all taken" >&2; false; }
	[ $((rss1 - rss0)) -lt $((16 << 10)) ] || { echo "RSS grew ${rss0}k -> ${rss1}k" >&2; false; }
	healthy "$pl_URL" "$pl_PID"
}

@test "after a HEAD on a kept-alive connection, the next answer has its body" {
	start_notify hd
	raw "$hd_URL" 'HEAD /style.css HTTP/1.1\r\nHost: x\r\n\r\nBREW /pot HTTP/1.1\r\nHost: x\r\n\r\n'
	assert_equal "$status_line" "HTTP/1.1 200 OK"
	grep -q '^HTTP/1.1 501 Not Implemented' "$BATS_TEST_TMPDIR/raw"
	assert_equal "$(tail -c 34 "$BATS_TEST_TMPDIR/raw")" '{"error":"method not implemented"}'
	healthy "$hd_URL" "$hd_PID"
}
