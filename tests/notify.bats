#!/usr/bin/env bats
# notify: dashboards over WebSocket and SSE, against the stack's ingest,
# route, PostgreSQL and Redis. lpwatch (tests/tools) is the dashboard client.

setup_file() {
	load helper/common
	stack_up
	TOKEN=$(labpulse instructor add ann CS101 CS102 2>/dev/null | tail -n 1)
	OTHER=$(labpulse instructor add bob CS200 2>/dev/null | tail -n 1)
	export TOKEN OTHER
}

teardown_file() {
	load helper/common
	stop_tracked
	stack_down
}

setup() {
	load helper/common
	LPWATCH=$TOP/tests/tools/lpwatch
	[ -x "$LPWATCH" ] || { echo "tests/tools/lpwatch is not built: make unit"; return 1; }
	URL=$LABPULSE_NOTIFY_URL
}

# Whatever the outcome: the test's dashboards, posters and daemons stop.
teardown() {
	stop_tracked
}

# watch NAME ARGS...: an lpwatch in the background, its output in
# $BATS_TEST_TMPDIR/NAME; waits until it got its hello (or an answer).
watch() {
	local name=$1; shift
	"$LPWATCH" "$@" >"$BATS_TEST_TMPDIR/$name" 2>"$BATS_TEST_TMPDIR/$name.err" 3>&- &
	track "$!"
	printf -v "${name}_PID" '%s' "$!"
	wait_for grep -qE '"type":"(snapshot|hello)"|^(close|http) ' "$BATS_TEST_TMPDIR/$name"
}

@test "WebSocket and SSE clients get their class's messages in order, never another class's" {
	watch ws1 --timeout 20 --token "$TOKEN" "$URL/ws?class=CS101"
	watch sse1 --timeout 20 "$URL/sse?class=CS101&token=$TOKEN"
	watch ws2 --timeout 20 --token "$TOKEN" "$URL/ws?class=CS102"
	watch bob --timeout 20 --token "$OTHER" "$URL/sse?class=CS200"
	wait_for grep -q '"type":"snapshot"' "$BATS_TEST_TMPDIR/sse1"
	for i in 1 2 3 4 5 6; do
		post_one CS101 "order-a$i" "s$i@example.edu" "$([ "$i" = 3 ] && echo true || echo false)"
		post_one CS102 "order-b$i"
	done
	post_one CS200 order-c1
	# 6 activities and one alert for CS101
	wait_until 'test "$(got "$BATS_TEST_TMPDIR/ws1" | wc -l)" -ge 7'
	wait_until 'test "$(got "$BATS_TEST_TMPDIR/sse1" | wc -l)" -ge 7'
	wait_until 'test "$(got "$BATS_TEST_TMPDIR/ws2" | wc -l)" -ge 6'
	wait_until 'test "$(got "$BATS_TEST_TMPDIR/bob" | wc -l)" -ge 1'
	routed CS101 | grep ' order-a' >"$BATS_TEST_TMPDIR/want1"
	assert_equal "$(cut -d' ' -f2,3 "$BATS_TEST_TMPDIR/want1" | tr '\n' ' ')" \
		"order-a1 activity order-a2 activity order-a3 activity order-a3 alert order-a4 activity order-a5 activity order-a6 activity "
	got "$BATS_TEST_TMPDIR/ws1" >"$BATS_TEST_TMPDIR/got-ws1"
	got "$BATS_TEST_TMPDIR/sse1" >"$BATS_TEST_TMPDIR/got-sse1"
	diff "$BATS_TEST_TMPDIR/want1" "$BATS_TEST_TMPDIR/got-ws1"
	diff "$BATS_TEST_TMPDIR/want1" "$BATS_TEST_TMPDIR/got-sse1"
	assert_equal "$(got "$BATS_TEST_TMPDIR/ws2" | cut -d' ' -f2 | tr '\n' ' ')" \
		"order-b1 order-b2 order-b3 order-b4 order-b5 order-b6 "
	assert_equal "$(got "$BATS_TEST_TMPDIR/bob" | cut -d' ' -f2 | tr '\n' ' ')" "order-c1 "
	# nothing of another class reached anyone
	! grep -q 'order-[bc]' "$BATS_TEST_TMPDIR/ws1"
	! grep -q 'order-[bc]' "$BATS_TEST_TMPDIR/sse1"
	! grep -q 'order-[ac]' "$BATS_TEST_TMPDIR/ws2"
	! grep -q 'order-[ab]' "$BATS_TEST_TMPDIR/bob"
	# the hello names the instructor and the classes
	assert_equal "$(grep '"type":"hello"' "$BATS_TEST_TMPDIR/ws1" | jq -c '[.instructor, .classes]')" '["ann",["CS101"]]'
	stats "$LABPULSE_RUNDIR/notify.sock" >"$BATS_TEST_TMPDIR/st"
	assert_equal "$(jq -c '.clients.by_class.CS101' "$BATS_TEST_TMPDIR/st")" '{"ws":1,"sse":1}'
	assert_equal "$(jq -c '.clients.by_class.CS200' "$BATS_TEST_TMPDIR/st")" '{"ws":0,"sse":1}'
}

@test "a subscription first gets a snapshot of the class from student_progress" {
	post_one CS102 snap-1 snapper@example.edu true
	wait_until 'test "$(psql -tAXc "select errors from student_progress where class_id = '\''CS102'\'' and student_id = '\''snapper@example.edu'\''")" = 1' || {
		psql -tAXc "select * from student_progress"; psql -tAXc "select * from dead_events"; false; }
	watch s1 --timeout 5 "$URL/sse?class=CS102&token=$TOKEN"
	wait_for grep -q '"type":"snapshot"' "$BATS_TEST_TMPDIR/s1"
	run jq -c 'select(.type == "snapshot") | [.class, (.students[] | select(.studentId == "snapper@example.edu") | [.notebookPath, .executions, .errors])]' "$BATS_TEST_TMPDIR/s1"
	assert_output '["CS102",["lab1.ipynb",1,1]]'
	# one query per class through the pool, never a connection per client
	stats "$LABPULSE_RUNDIR/notify.sock" >"$BATS_TEST_TMPDIR/st"
	assert_equal "$(jq -c '.postgres | [.sv_max, (.sv_active + .sv_idle <= .sv_max), .cl_waiting]' "$BATS_TEST_TMPDIR/st")" '[2,true,0]'
	assert_equal "$(psql -tAXc "select count(*) <= 2 from pg_stat_activity where application_name = 'labpulse-notify'")" t
}

@test "tokens: none or a wrong one is 401 or close 4401; another's class is 403 or close 4403" {
	get "$URL/sse?class=CS101"
	assert_equal "$status_code" 401
	assert_equal "$body" '{"error":"no token"}'
	get "$URL/sse?class=CS101&token=wrong"
	assert_equal "$status_code" 401
	assert_equal "$body" '{"error":"unknown token"}'
	get "$URL/sse?class=CS101" -H "Authorization: Bearer $OTHER"
	assert_equal "$status_code" 403
	assert_equal "$body" '{"error":"class CS101 is not yours"}'
	get "$URL/sse?class=CS101&class=CS200" -H "Authorization: Bearer $TOKEN"
	assert_equal "$status_code" 403
	assert_equal "$body" '{"error":"class CS200 is not yours"}'
	get "$URL/sse?token=$TOKEN"
	assert_equal "$status_code" 400
	assert_equal "$body" '{"error":"class: name at least one class (?class=NAME)"}'
	get "$URL/sse?class=CS101&token=$TOKEN&since=yesterday"
	assert_equal "$status_code" 400
	assert_equal "$body" '{"error":"since: not a stream id (MS-SEQ): yesterday"}'
	run -0 "$LPWATCH" --timeout 5 "$URL/ws?class=CS101"
	assert_output 'close 4401 no token'
	run -0 "$LPWATCH" --timeout 5 --token wrong "$URL/ws?class=CS101"
	assert_output 'close 4401 unknown token'
	run -0 "$LPWATCH" --timeout 5 --token "$OTHER" "$URL/ws?class=CS101"
	assert_output 'close 4403 class CS101 is not yours'
	run -0 "$LPWATCH" --timeout 5 --token "$TOKEN" "$URL/ws?class=CS101&since=x"
	assert_output 'close 4400 since: not a stream id (MS-SEQ): x'
	# a revoked token is refused at its next connection, and SIGHUP closes
	# the dashboards it has open
	tok=$(labpulse instructor add carl CS300 2>/dev/null | tail -n 1)
	watch carl --timeout 20 --token "$tok" "$URL/ws?class=CS300"
	[[ $(head -n 1 "$BATS_TEST_TMPDIR/carl") == '{"type":"hello","instructor":"carl"'* ]]
	labpulse instructor revoke carl 2>/dev/null
	get "$URL/sse?class=CS300&token=$tok"
	assert_equal "$status_code" 401
	kill -HUP "$(cat "$LABPULSE_RUNDIR/notify.pid")"
	wait_for grep -qx 'close 4401 token revoked' "$BATS_TEST_TMPDIR/carl"
	[ "$(stats "$LABPULSE_RUNDIR/notify.sock" | jq .revoked_closed)" -ge 1 ]
	stats "$LABPULSE_RUNDIR/notify.sock" >"$BATS_TEST_TMPDIR/st"
	[ "$(jq '.refused."401"' "$BATS_TEST_TMPDIR/st")" -ge 5 ]
	[ "$(jq '.refused."403"' "$BATS_TEST_TMPDIR/st")" -ge 3 ]
}

@test "a client that reconnects with its last id gets every message once, in order, while 1,000 flow" {
	watch full --timeout 60 --token "$TOKEN" "$URL/ws?class=CS101"
	start=$(redis-cli -s "${LABPULSE_REDIS#unix:}" --raw XREVRANGE labpulse:routed + - COUNT 1 | head -n 1)
	"$LPWATCH" --timeout 60 --drop-after 150 --token "$TOKEN" "$URL/ws?class=CS101&since=$start" \
		>"$BATS_TEST_TMPDIR/part1" 2>&1 3>&- &
	p1=$!
	track "$p1"
	# 1,000 events of CS101 (with their alerts) and some of CS102, by 25
	post_many CS101 0 1000 25 >/dev/null 3>&- &
	poster=$!
	track "$poster"
	post_many CS102 0 200 25 >/dev/null
	wait "$p1"
	last=$(sed -n 's/^last-id //p' "$BATS_TEST_TMPDIR/part1")
	[ -n "$last" ]
	# reconnect over SSE this time, with Last-Event-ID, while events still flow
	wait "$poster"
	wait_until 'test "$(routed CS101 | grep -c '\'' CS101-'\'')" -ge 1000'
	want=$(routed CS101 | awk -v s="$start" '{ split($1, a, "-"); split(s, b, "-");
		if (a[1] > b[1] || (a[1] == b[1] && a[2] > b[2])) print }')
	lastwant=$(tail -n 1 <<<"$want" | cut -d' ' -f1)
	run -0 "$LPWATCH" --timeout 30 --since "$last" --until-id "$lastwant" --token "$TOKEN" "$URL/sse?class=CS101"
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/part2"
	{ got "$BATS_TEST_TMPDIR/part1"; got "$BATS_TEST_TMPDIR/part2"; } >"$BATS_TEST_TMPDIR/both"
	printf '%s\n' "$want" >"$BATS_TEST_TMPDIR/want"
	assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/want")" "$(( 1000 + $(seq 0 999 | awk '$1 % 7 == 0 && $1 % 5 != 0' | wc -l) ))"
	diff "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/both"
	# no snapshot and no resync on the way back
	! grep -q '"type":"\(snapshot\|resync\)"' "$BATS_TEST_TMPDIR/part2"
	# and the client that stayed got the same, live
	wait_until 'test "$(got "$BATS_TEST_TMPDIR/full" | grep -c '\'' CS101-'\'')" -ge "$(wc -l <"$BATS_TEST_TMPDIR/want")"'
	got "$BATS_TEST_TMPDIR/full" | grep ' CS101-' | diff "$BATS_TEST_TMPDIR/want" -
}

@test "an id older than the stream holds gets a resync and a fresh snapshot, never a silent gap" {
	post_one CS101 gap-1
	post_one CS101 gap-2
	post_one CS101 gap-3
	wait_until 'test "$(routed CS101 | grep -c '\'' gap-'\'')" -ge 3'
	old=$(routed CS101 | grep ' gap-1 ' | cut -d' ' -f1)
	# gap-2 goes: what follows gap-1 is no longer whole
	redis-cli -s "${LABPULSE_REDIS#unix:}" XTRIM labpulse:routed MAXLEN 1 >/dev/null
	run -0 "$LPWATCH" --timeout 3 --token "$TOKEN" "$URL/ws?class=CS101&since=$old"
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/o"
	assert_equal "$(grep '^{' "$BATS_TEST_TMPDIR/o" | jq -r .type | tr '\n' ' ')" "hello resync snapshot "
	assert_equal "$(grep '"type":"resync"' "$BATS_TEST_TMPDIR/o" | jq -r .reason)" gap
	# an id from beyond the stream is no place in it either
	run -0 "$LPWATCH" --timeout 3 --token "$TOKEN" "$URL/sse?class=CS101&since=99999999999999-0"
	assert_equal "$(grep '^{' <<<"$output" | jq -r .type | tr '\n' ' ')" "hello resync snapshot "
	stats "$LABPULSE_RUNDIR/notify.sock" >"$BATS_TEST_TMPDIR/st"
	[ "$(jq .resyncs.gap "$BATS_TEST_TMPDIR/st")" -ge 2 ]
}

@test "a client that never reads is resynced or closed while the others keep receiving" {
	start_notify slow --max-queue 256k --heartbeat 500ms
	watch reader --timeout 60 --token "$TOKEN" "$slow_URL/ws?class=CS102"
	"$LPWATCH" --no-read --timeout 30 --token "$TOKEN" "$slow_URL/sse?class=CS102" \
		>/dev/null 2>&1 3>&- &
	track "$!"
	"$LPWATCH" --no-read --timeout 30 --token "$TOKEN" "$slow_URL/ws?class=CS102" \
		>/dev/null 2>&1 3>&- &
	track "$!"
	# (the WebSocket one may already be closed for not answering pings)
	wait_until 'test "$(stats "$slow_STATS" | jq .snapshots)" = 3'
	before=$(routed CS102 | wc -l)
	post_many CS102 1000 4000 100 >/dev/null
	wait_until 'test "$(routed CS102 | wc -l)" -ge $((before + 3000))'
	# both non-readers were dropped, the reader got everything
	wait_until 'test "$(stats "$slow_STATS" | jq '\''.dropped_slow + .dead_closed'\'')" -ge 2'
	routed CS102 | tail -n +$((before + 1)) >"$BATS_TEST_TMPDIR/want"
	wait_until 'test "$(got "$BATS_TEST_TMPDIR/reader" | wc -l)" -ge "$(wc -l <"$BATS_TEST_TMPDIR/want")"'
	got "$BATS_TEST_TMPDIR/reader" | tail -n "$(wc -l <"$BATS_TEST_TMPDIR/want")" | diff "$BATS_TEST_TMPDIR/want" -
	stats "$slow_STATS" >"$BATS_TEST_TMPDIR/st"
	assert_equal "$(jq .clients.cl_active "$BATS_TEST_TMPDIR/st")" 1
	[ "$(jq .resyncs.slow "$BATS_TEST_TMPDIR/st")" -ge 1 ]
	# what the slow one did not get is counted, and the delivery share shows it
	[ "$(jq .delivery.dropped "$BATS_TEST_TMPDIR/st")" -ge 1 ]
	grep -q 'client did not drain; closed' "$slow_LOG"
	kill -TERM "$slow_PID"
	wait "$slow_PID"
}

@test "--on-slow close closes a client past its queue with 1013 at once" {
	start_notify slowc --max-queue 4k --on-slow close
	watch fast --timeout 30 --token "$TOKEN" "$slowc_URL/ws?class=CS102"
	"$LPWATCH" --no-read --timeout 30 --token "$TOKEN" "$slowc_URL/sse?class=CS102" \
		>/dev/null 2>&1 3>&- &
	track "$!"
	wait_until 'test "$(stats "$slowc_STATS" | jq .clients.cl_active)" = 2'
	post_many CS102 5000 7000 100 >/dev/null
	wait_until 'test "$(stats "$slowc_STATS" | jq .dropped_slow)" -ge 1'
	grep -q 'client too slow; closed' "$slowc_LOG"
	stats "$slowc_STATS" >"$BATS_TEST_TMPDIR/st"
	assert_equal "$(jq '.resyncs.slow' "$BATS_TEST_TMPDIR/st")" 0
	kill -TERM "$slowc_PID"
	wait "$slowc_PID"
}

@test "a malformed WebSocket frame is answered with close 1002" {
	port=${URL##*:}
	exec 5<>"/dev/tcp/127.0.0.1/$port"
	printf 'GET /ws?class=CS101&token=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n' "$TOKEN" >&5
	# a text frame without the mask every client frame must have
	printf '\x81\x02hi' >&5
	timeout 3 cat <&5 >"$BATS_TEST_TMPDIR/raw" || true
	exec 5>&-
	grep -q 'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=' "$BATS_TEST_TMPDIR/raw"
	od -An -tx1 -v "$BATS_TEST_TMPDIR/raw" | tr -d '\n' | grep -q '88 02 03 ea'
	[ "$(stats "$LABPULSE_RUNDIR/notify.sock" | jq .protocol_errors)" -ge 1 ]
}

@test "connections past --max-clients are answered 503" {
	start_notify cap --max-clients 2
	watch c1 --timeout 20 --token "$TOKEN" "$cap_URL/ws?class=CS101"
	watch c2 --timeout 20 --token "$TOKEN" "$cap_URL/sse?class=CS101"
	get "$cap_URL/healthz"
	assert_equal "$status_code" 503
	assert_equal "$body" '{"error":"too many clients; try again"}'
	[[ $headers == *"Retry-After: 5"* ]]
	stats "$cap_STATS" >"$BATS_TEST_TMPDIR/st"
	assert_equal "$(jq -c '[.clients.max_clients, .clients.connections, .refused_cap]' "$BATS_TEST_TMPDIR/st")" '[2,2,1]'
	kill -TERM "$cap_PID"
	wait "$cap_PID"
}

@test "the dashboard page and /healthz are served; nothing outside the web root is" {
	get "$URL/"
	assert_equal "$status_code" 200
	[[ $headers == *"Content-Type: text/html; charset=utf-8"* ]]
	[[ $body == *"<script src=\"app.js\""* ]] || [[ $body == *"app.js"* ]]
	get "$URL/app.js"
	assert_equal "$status_code" 200
	[[ $headers == *"Content-Type: text/javascript; charset=utf-8"* ]]
	get "$URL/..%2f..%2fetc%2fpasswd"
	assert_equal "$status_code" 404
	get "$URL/.hidden"
	assert_equal "$status_code" 404
	get "$URL/healthz"
	assert_equal "$status_code" 200
	assert_equal "$body" ok
	post "$URL/sse" '{}'
	assert_equal "$status_code" 405
	assert_equal "$body" '{"error":"only GET"}'
	get "$URL/ws?class=CS101"
	assert_equal "$status_code" 426
}

@test "SIGTERM closes WebSocket clients with 1001 and exits 0" {
	start_notify term
	watch t1 --timeout 20 --token "$TOKEN" "$term_URL/ws?class=CS101"
	wait_for grep -q '"type":"snapshot"' "$BATS_TEST_TMPDIR/t1"
	kill -TERM "$term_PID"
	wait "$term_PID"
	wait_for grep -q '^close 1001 going away' "$BATS_TEST_TMPDIR/t1"
	grep -q 'info: stopped ' "$term_LOG"
}

@test "in a pipe, notify serves NDJSON messages from stdin" {
	mkfifo "$BATS_TEST_TMPDIR/in"
	exec 6<>"$BATS_TEST_TMPDIR/in"
	log=$BATS_TEST_TMPDIR/pipe.log
	notify --from - --listen 127.0.0.1:0 --stats none <&6 2>"$log" 3>&- &
	pid=$!
	track "$pid"
	wait_for grep -q 'ready listen=' "$log"
	purl=http://$(sed -n 's/.*ready listen=\([^ ]*\).*/\1/p' "$log")
	watch p1 --timeout 10 --count 2 --token "$TOKEN" "$purl/sse?class=CS101"
	wait_for grep -q '"type":"snapshot"' "$BATS_TEST_TMPDIR/p1"
	printf '%s\n' '{"topic":"class:CS101","kind":"activity","eventId":"pipe-1"}' \
		'{"topic":"class:CS999","eventId":"pipe-x"}' 'not json' \
		'{"topic":"class:CS101","kind":"alert","eventId":"pipe-2"}' >&6
	wait "$p1_PID"
	assert_equal "$(grep '^{' "$BATS_TEST_TMPDIR/p1" | jq -r 'select(.type == "message") | .message.eventId' | tr '\n' ' ')" "pipe-1 pipe-2 "
	grep -q 'input line is not a message with a topic; skipped' "$log"
	exec 6>&-
}

@test "notify reads --from file:PATH, a regular file, to its end, a last line without its newline too" {
	f=$BATS_TEST_TMPDIR/routed.ndjson log=$BATS_TEST_TMPDIR/file.log
	printf '%s\n%s' '{"topic":"class:CS101","kind":"activity","eventId":"file-1"}' \
		'{"topic":"class:CS101","kind":"activity","eventId":"file-2"}' >"$f"
	notify --from "file:$f" --listen 127.0.0.1:0 --stats "$BATS_TEST_TMPDIR/file.sock" \
		</dev/null 2>"$log" 3>&- &
	track $!
	wait_for grep -q 'input ended; dashboards stay connected' "$log"
	stats "$BATS_TEST_TMPDIR/file.sock" >"$BATS_TEST_TMPDIR/st"
	run -0 jq -c '[.messages_in, .feed.input_ended]' "$BATS_TEST_TMPDIR/st"
	assert_output '[2,true]'
}

@test "an NDJSON line longer than 1 MiB ends notify's input with an error, rather than growing without bound" {
	f=$BATS_TEST_TMPDIR/long.ndjson log=$BATS_TEST_TMPDIR/long.log
	head -c 1100000 /dev/zero | tr '\0' x >"$f"
	notify --from "file:$f" --listen 127.0.0.1:0 --stats none </dev/null 2>"$log" 3>&- &
	track $!
	wait_for grep -qF "error: cannot read file:$f: a line longer than 1048576 bytes" "$log"
	ended=$(grep -c 'input ended' "$log" || true)
	assert_equal "$ended" 0
}

@test "socket activation and READY=1 as ingest does" {
	port=$(free_port)
	sock=$BATS_TEST_TMPDIR/notify.sock
	socat -u "UNIX-RECV:$sock" "OPEN:$BATS_TEST_TMPDIR/notified,creat,append" 3>&- &
	track "$!"
	wait_for test -S "$sock"
	NOTIFY_SOCKET=$sock systemd-socket-activate -l "127.0.0.1:$port" -E NOTIFY_SOCKET \
		"$TOP/bin/notify" --stats none --redis "$LABPULSE_REDIS" 2>"$BATS_TEST_TMPDIR/sa.log" 3>&- &
	pid=$!
	track "$pid"
	wait_for grep -q "Listening on 127.0.0.1:$port" "$BATS_TEST_TMPDIR/sa.log"
	wait_for curl -fs "http://127.0.0.1:$port/healthz"
	wait_for grep -q READY=1 "$BATS_TEST_TMPDIR/notified"
	grep -qx "STATUS=listening on 127.0.0.1:$port" "$BATS_TEST_TMPDIR/notified"
	kill -TERM "$pid"
	wait "$pid" || true
}

@test "bad flags and addresses are refused with the reason" {
	run -64 --separate-stderr notify --on-slow never
	assert_equal "${stderr_lines[0]}" "labpulse-notify: error: --on-slow: resync or close, not 'never'"
	run -64 --separate-stderr notify --from stream:routed@g
	assert_equal "${stderr_lines[0]}" "labpulse-notify: error: --from: every notify reads all of the stream: stream:routed, without @GROUP"
	run -64 --separate-stderr notify --max-queue 1
	[[ ${stderr_lines[0]} == "labpulse-notify: error: --max-queue: "* ]]
	run -64 --separate-stderr notify --heartbeat soon
	[[ ${stderr_lines[0]} == "labpulse-notify: error: --heartbeat: "* ]]
	run -66 --separate-stderr notify --from file:/nonexistent --stats none --listen 127.0.0.1:0
	assert_equal "$stderr" "labpulse-notify: error: --from file:/nonexistent: cannot open /nonexistent: No such file or directory"
	run -78 --separate-stderr notify --web-root /nonexistent --stats none
	assert_equal "$stderr" "labpulse-notify: error: --web-root /nonexistent: not a folder"
}

@test "entries trimmed while Redis was away from notify: every live client is resynced" {
	start_notify gapr
	watch g1 --timeout 20 --token "$TOKEN" "$gapr_URL/sse?class=CS101"
	wait_for grep -q '"type":"snapshot"' "$BATS_TEST_TMPDIR/g1"
	# in one transaction: notify's connections (and everyone's) dropped, a
	# message added and the stream trimmed of it before notify is back
	printf '%s\n' MULTI 'CLIENT KILL TYPE normal' \
		"XADD labpulse:routed * topic class:CS101 msg '{\"kind\":\"activity\",\"eventId\":\"lost-1\"}'" \
		'XTRIM labpulse:routed MAXLEN 0' EXEC |
		redis-cli -s "${LABPULSE_REDIS#unix:}" >/dev/null
	wait_for grep -q '"type":"resync","reason":"gap"' "$BATS_TEST_TMPDIR/g1"
	assert_equal "$(grep '^{' "$BATS_TEST_TMPDIR/g1" | jq -r .type | tr '\n' ' ')" "hello snapshot resync snapshot "
	grep -q 'the stream lost entries after id=' "$gapr_LOG"
	assert_equal "$(stats "$gapr_STATS" | jq .feed.gaps)" 1
	kill -TERM "$gapr_PID"
	wait "$gapr_PID"
}

@test "labpulse instructor: add prints a token once and stores its hash; list and revoke; every misuse answered" {
	run -0 --separate-stderr labpulse instructor add dora CS401 CS402 CS401
	[[ $output =~ ^[A-Za-z0-9_-]{43}$ ]]
	tok=$output
	assert_equal "$stderr" "labpulse: info: instructor dora may watch: CS401 CS402 CS401; the token below is shown only now"
	assert_equal "$(psql -tAXc "select token_hash = encode(sha256(convert_to('$tok', 'UTF8')), 'hex') from instructors where name = 'dora'")" t
	assert_equal "$(psql -tAXc "select count(*) from instructors where token_hash like '%$tok%' or name like '%$tok%'")" 0
	assert_equal "$(psql -tAXc "select string_agg(class_id, ' ' order by class_id) from instructor_classes c join instructors i on i.id = c.instructor_id where i.name = 'dora'")" "CS401 CS402"
	run -65 --separate-stderr labpulse instructor add dora CS401
	assert_equal "$stderr" "labpulse: error: instructor dora exists; revoke it first or choose another name"
	run -0 labpulse instructor list
	assert_line --regexp '^ dora +\| CS401 CS402 +\| [0-9-]+ [0-9:]+ +\| active$'
	run -0 --separate-stderr labpulse instructor revoke dora
	run -65 --separate-stderr labpulse instructor revoke dora
	assert_equal "$stderr" "labpulse: error: no active instructor named dora"
	run -0 labpulse instructor list
	assert_line --regexp '^ dora +\| CS401 CS402 +\| .* \| revoked '
	run -64 --separate-stderr labpulse instructor add eve
	assert_equal "${stderr_lines[0]}" "labpulse: error: add needs a NAME and at least one CLASS"
	run -64 --separate-stderr labpulse instructor add "" CS1
	assert_equal "$stderr" "labpulse: error: NAME must not be empty"
	run -64 --separate-stderr labpulse instructor frobnicate
	assert_equal "${stderr_lines[0]}" "labpulse: error: unknown instructor command 'frobnicate'"
}

@test "every daemon's stats carry pools, queue and delivery, alike" {
	for d in ingest batch-commit route notify; do
		stats "$LABPULSE_RUNDIR/$d.sock" >"$BATS_TEST_TMPDIR/$d.json"
		run -0 jq -e '
			(.pools | type == "object" and length > 0) and
			(.pools | to_entries | all(.value |
				(.kind == "postgres" or .kind == "redis") and (.connected | type == "boolean") and
				([.sv_max, .sv_active, .sv_idle, .sv_used, .cl_active, .cl_waiting, .maxwait, .maxwait_us] | all(type == "number")) and
				.sv_active + .sv_idle <= .sv_max)) and
			([.queue.depth] | all(type == "number")) and (.queue.max == null or (.queue.max | type == "number")) and
			(.queue.what | type == "string") and
			([.delivery.in, .delivery.out, .delivery.dropped] | all(type == "number")) and
			.delivery.out + .delivery.dropped <= .delivery.in' "$BATS_TEST_TMPDIR/$d.json"
	done
	assert_equal "$(jq -c '.pools | keys' "$BATS_TEST_TMPDIR/batch-commit.json")" '["postgres","redis"]'
	assert_equal "$(jq -c '.pools | keys' "$BATS_TEST_TMPDIR/notify.json")" '["postgres","redis"]'
	assert_equal "$(jq -c '[.pools.postgres.sv_max, .pools.redis.sv_max]' "$BATS_TEST_TMPDIR/notify.json")" '[2,2]'
	assert_equal "$(jq -c '.pools | keys' "$BATS_TEST_TMPDIR/ingest.json")" '["redis"]'
	# ingest counts its POSTs
	before=$(jq .delivery.out "$BATS_TEST_TMPDIR/ingest.json")
	post_one CS101 deliv-1
	assert_equal "$(stats "$LABPULSE_RUNDIR/ingest.sock" | jq .delivery.out)" $((before + 1))
}

@test "a revocation reaches notify at once by NOTIFY: open dashboards close 4401 without SIGHUP, the cached token is refused next" {
	tok=$(labpulse instructor add rita CS500 2>/dev/null | tail -n 1)
	watch r1 --timeout 30 --token "$tok" "$URL/ws?class=CS500"
	[[ $(head -n 1 "$BATS_TEST_TMPDIR/r1") == '{"type":"hello","instructor":"rita"'* ]]
	# a second dashboard of the token is answered from the cache
	before=$(stats "$LABPULSE_RUNDIR/notify.sock" | jq .token_cache.hits)
	watch r2 --timeout 30 "$URL/sse?class=CS500&token=$tok"
	stats "$LABPULSE_RUNDIR/notify.sock" >"$BATS_TEST_TMPDIR/st"
	assert_equal "$(jq .token_cache.hits "$BATS_TEST_TMPDIR/st")" $((before + 1))
	assert_equal "$(jq -c '.revocations | [.channel, .listening]' "$BATS_TEST_TMPDIR/st")" '["labpulse_revoke",true]'
	notes=$(jq .revocations.notifications "$BATS_TEST_TMPDIR/st")
	closed=$(jq .revocations.closed "$BATS_TEST_TMPDIR/st")
	run -0 --separate-stderr labpulse instructor revoke rita
	assert_equal "$stderr" "labpulse: info: instructor rita revoked; every notify closes the dashboards it has open"
	wait_for grep -qx 'close 4401 token revoked' "$BATS_TEST_TMPDIR/r1"
	wait_for grep -qx 'eof' "$BATS_TEST_TMPDIR/r2"
	get "$URL/sse?class=CS500&token=$tok"
	assert_equal "$status_code" 401
	assert_equal "$body" '{"error":"unknown token"}'
	run -0 "$LPWATCH" --timeout 5 --token "$tok" "$URL/ws?class=CS500"
	assert_output 'close 4401 unknown token'
	stats "$LABPULSE_RUNDIR/notify.sock" >"$BATS_TEST_TMPDIR/st"
	assert_equal "$(jq .revocations.notifications "$BATS_TEST_TMPDIR/st")" $((notes + 1))
	assert_equal "$(jq .revocations.closed "$BATS_TEST_TMPDIR/st")" $((closed + 2))
}

@test "a revocation notify did not hear (its LISTEN connection lost) closes the dashboard once it listens again" {
	tok=$(labpulse instructor add sam CS501 2>/dev/null | tail -n 1)
	watch s1 --timeout 30 --token "$tok" "$URL/ws?class=CS501"
	# revoked behind notify's back: no NOTIFY, and the token is cached
	psql -qtAXc "update instructors set disabled_at = now() where name = 'sam'"
	run -0 "$LPWATCH" --timeout 1 --token "$tok" "$URL/ws?class=CS501"
	assert_line --index 0 --partial '"type":"hello","instructor":"sam"'
	! grep -q '^close' "$BATS_TEST_TMPDIR/s1"
	# the LISTEN connection goes; notify connects again and checks everyone
	assert_equal "$(psql -tAXc "select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name = 'labpulse-notify-listen'")" 1
	wait_for grep -qx 'close 4401 token revoked' "$BATS_TEST_TMPDIR/s1"
	stats "$LABPULSE_RUNDIR/notify.sock" >"$BATS_TEST_TMPDIR/st"
	assert_equal "$(jq -c '.revocations | [.listening, .losses >= 1]' "$BATS_TEST_TMPDIR/st")" '[true,true]'
}

@test "SIGHUP still checks every open dashboard again: a class taken away by hand closes it 4403" {
	tok=$(labpulse instructor add tess CS502 CS503 2>/dev/null | tail -n 1)
	watch t1 --timeout 30 --token "$tok" "$URL/ws?class=CS503"
	watch t2 --timeout 30 --token "$tok" "$URL/ws?class=CS502"
	# no notification tells of this one
	psql -qtAXc "delete from instructor_classes where class_id = 'CS503' and instructor_id = (select id from instructors where name = 'tess')"
	kill -HUP "$(cat "$LABPULSE_RUNDIR/notify.pid")"
	wait_for grep -qx 'close 4403 class no longer yours' "$BATS_TEST_TMPDIR/t1"
	# the other dashboard still has its class, and the cache was emptied
	run -0 "$LPWATCH" --timeout 5 --token "$tok" "$URL/ws?class=CS503"
	assert_output 'close 4403 class CS503 is not yours'
	! grep -q '^close' "$BATS_TEST_TMPDIR/t2"
}

@test "a burst of notifications of unknown scope costs one re-check, and a dashboard whose token holds stays open" {
	tok=$(labpulse instructor add uma CS504 2>/dev/null | tail -n 1)
	start_notify un
	watch u1 --timeout 30 --token "$tok" "$un_URL/ws?class=CS504"
	wait_for grep -q '"type":"snapshot"' "$BATS_TEST_TMPDIR/u1"
	# one transaction: the 200 arrive together
	psql -qtAXc "select count(pg_notify('labpulse_revoke', 'not-a-digest-' || g)) from generate_series(1, 200) g" >/dev/null
	wait_until 'test "$(stats "$un_STATS" | jq .revocations.notifications)" = 200'
	lines=$(grep -c 'revocation of unknown scope' "$un_LOG")
	[ "$lines" -le 3 ] || { echo "$lines re-checks for one burst" >&2; false; }
	wait_until 'test "$(stats "$un_STATS" | jq .token_cache.queued)" = 0'
	! grep -q '^close' "$BATS_TEST_TMPDIR/u1"
}

@test "a revocation of another token does not make a token check in flight be asked again" {
	tok=$(labpulse instructor add vera CS505 2>/dev/null | tail -n 1)
	start_notify ag
	b0=$(stats "$ag_STATS" | jq .token_cache.batches)
	# the check is held in PostgreSQL while another token is revoked
	psql -qtAXc "begin; lock table instructors in access exclusive mode; select pg_sleep(3); commit" >/dev/null 3>&- &
	track "$!"
	wait_until 'test "$(psql -tAXc "select count(*) from pg_locks where relation = '"'"'instructors'"'"'::regclass and mode = '"'"'AccessExclusiveLock'"'"' and granted")" = 1'
	"$LPWATCH" --timeout 30 --token "$tok" "$ag_URL/ws?class=CS505" >"$BATS_TEST_TMPDIR/v1" 2>&1 3>&- &
	track "$!"
	wait_until 'test "$(stats "$ag_STATS" | jq .token_cache.batches)" = $((b0 + 1))'
	psql -qtAXc "notify labpulse_revoke, '$(printf '0%.0s' $(seq 64))'"
	wait_until 'test "$(stats "$ag_STATS" | jq .revocations.notifications)" = 1'
	wait_for grep -q '"type":"snapshot"' "$BATS_TEST_TMPDIR/v1"
	assert_equal "$(stats "$ag_STATS" | jq .token_cache.batches)" $((b0 + 1))
}

# head_of FILE NAME: the value of header NAME in a curl -D dump.
head_of() {
	tr -d '\r' <"$1" | sed -n "s/^$2: //Ip" | tail -n 1
}

@test "the dashboard's files: validators and 304, a year's caching for versioned assets, HEAD, gzip, keep-alive" {
	d=$BATS_TEST_TMPDIR
	appv=$(sha256sum share/web/app.js | cut -c1-12)
	cssv=$(sha256sum share/web/style.css | cut -c1-12)
	# the page names its assets by version, and is itself revalidated
	run -0 curl -sS -o "$d/page" -D "$d/page.h" -w '%{http_code}' "$URL/"
	assert_output 200
	grep -qF "<script src=\"app.js?v=$appv\" defer>" "$d/page"
	grep -qF "<link rel=\"stylesheet\" href=\"style.css?v=$cssv\">" "$d/page"
	assert_equal "$(head_of "$d/page.h" Cache-Control)" no-cache
	assert_equal "$(head_of "$d/page.h" Connection)" keep-alive
	assert_equal "$(head_of "$d/page.h" Content-Length)" "$(wc -c <"$d/page")"
	assert_equal "$(head_of "$d/page.h" ETag)" "\"$(sha256sum "$d/page" | cut -c1-16)\""
	etag=$(head_of "$d/page.h" ETag)
	run -0 curl -sS -o "$d/p304" -D "$d/p304.h" -w '%{http_code}' -H "If-None-Match: $etag" "$URL/"
	assert_output 304
	[ ! -s "$d/p304" ]
	assert_equal "$(head_of "$d/p304.h" ETag)" "$etag"
	assert_equal "$(head_of "$d/p304.h" Cache-Control)" no-cache
	run -0 curl -sS -o /dev/null -w '%{http_code}' -H 'If-None-Match: "other", W/'"$etag" "$URL/"
	assert_output 304
	run -0 curl -sS -o /dev/null -w '%{http_code}' -H 'If-None-Match: "other"' "$URL/"
	assert_output 200
	# a versioned asset is kept for a year; the same name without it is not
	run -0 curl -sS -o "$d/app" -D "$d/app.h" -w '%{http_code}' "$URL/app.js?v=$appv"
	assert_output 200
	cmp "$d/app" share/web/app.js
	assert_equal "$(head_of "$d/app.h" Cache-Control)" "public, max-age=31536000, immutable"
	assert_equal "$(head_of "$d/app.h" Content-Type)" "text/javascript; charset=utf-8"
	assert_equal "$(head_of "$d/app.h" ETag)" "\"$(sha256sum share/web/app.js | cut -c1-16)\""
	assert_equal "$(head_of "$d/app.h" Vary)" Accept-Encoding
	run -0 curl -sS -o /dev/null -D "$d/old.h" "$URL/app.js?v=000000000000"
	assert_equal "$(head_of "$d/old.h" Cache-Control)" no-cache
	run -0 curl -sS -o /dev/null -D "$d/bare.h" "$URL/style.css"
	assert_equal "$(head_of "$d/bare.h" Cache-Control)" no-cache
	# HEAD: the same head, no body
	run -0 curl -sS -I -o /dev/null -D "$d/head.h" -w '%{http_code} %{size_download}' "$URL/app.js?v=$appv"
	assert_output "200 0"
	assert_equal "$(head_of "$d/head.h" Content-Length)" "$(wc -c <share/web/app.js)"
	assert_equal "$(head_of "$d/head.h" ETag)" "$(head_of "$d/app.h" ETag)"
	# gzip when asked, and not when refused
	run -0 curl -sS -o "$d/app.gz" -D "$d/gz.h" -H 'Accept-Encoding: gzip, br' "$URL/app.js?v=$appv"
	assert_equal "$(head_of "$d/gz.h" Content-Encoding)" gzip
	assert_equal "$(head_of "$d/gz.h" Content-Length)" "$(wc -c <"$d/app.gz")"
	[ "$(wc -c <"$d/app.gz")" -lt "$(wc -c <share/web/app.js)" ]
	gzip -dc "$d/app.gz" >"$d/app.gunzip"
	cmp "$d/app.gunzip" share/web/app.js
	gzetag=$(head_of "$d/gz.h" ETag)
	[ "$gzetag" != "$(head_of "$d/app.h" ETag)" ]
	run -0 curl -sS -o /dev/null -w '%{http_code}' -H 'Accept-Encoding: gzip' -H "If-None-Match: $gzetag" "$URL/app.js?v=$appv"
	assert_output 304
	run -0 curl -sS -o /dev/null -D "$d/nogz.h" -H 'Accept-Encoding: gzip;q=0, identity' "$URL/app.js"
	assert_equal "$(head_of "$d/nogz.h" Content-Encoding)" ""
	# keep-alive: three requests, one connection
	run -0 curl -sS -o /dev/null -o /dev/null -o /dev/null -w '%{num_connects} ' "$URL/" "$URL/app.js?v=$appv" "$URL/style.css?v=$cssv"
	assert_output "1 0 0 "
	# pipelined: answered in order on one connection, closed when asked
	host=${URL#http://}
	printf 'HEAD /style.css HTTP/1.1\r\nHost: x\r\n\r\nHEAD /app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >"$d/two"
	run -0 timeout 10 socat -t 5 - "TCP:$host" <"$d/two"
	assert_equal "$(printf '%s\n' "$output" | tr -d '\r' | grep -E '^(HTTP|Content-Type|Connection)' | tr '\n' '|')" \
		"HTTP/1.1 200 OK|Content-Type: text/css; charset=utf-8|Connection: keep-alive|HTTP/1.1 200 OK|Content-Type: text/javascript; charset=utf-8|Connection: close|"
	# methods: GET and HEAD for files, GET alone for streams
	post "$URL/" '{}'
	assert_equal "$status_code" 405
	assert_equal "$body" '{"error":"only GET or HEAD"}'
	[[ $headers == *"Allow: GET, HEAD"* ]]
	run -0 curl -sS -I -o /dev/null -D "$d/hws.h" -w '%{http_code}' "$URL/sse?class=CS101"
	assert_output 405
	assert_equal "$(head_of "$d/hws.h" Allow)" GET
	run -0 curl -sS -I -o /dev/null -w '%{http_code}' "$URL/nothing.js"
	assert_output 404
}
