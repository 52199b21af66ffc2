#!/usr/bin/env bats
# The attacker's tour of a stack from `labpulse up`: every hostile input of
# the project's history, one after another, with nothing but a socket, then
# a legitimate event. Each gets its exact answer, both daemons keep running
# as the same processes, and a class's dashboard sees its own class only.

setup_file() {
	load helper/common
	stack_up
	TOKEN=$(labpulse instructor add ada CS101 2>/dev/null | tail -n 1)
	export TOKEN
	INGEST_PID=$(cat "$LABPULSE_RUNDIR/ingest.pid")
	NOTIFY_PID=$(cat "$LABPULSE_RUNDIR/notify.pid")
	export INGEST_PID NOTIFY_PID
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
	URL=$LABPULSE_INGEST_URL/api/v1/events
}

# Whatever the outcome: what the test started is gone before the next.
teardown() {
	stop_tracked
}

# refused FILE STATUS BODY: POST FILE's bytes to the stack's ingest.
refused() {
	post "$URL" "@$1"
	assert_equal "$status_code" "$2"
	assert_equal "$body" "$3"
}

both_alive() {
	get "$LABPULSE_INGEST_URL/healthz" --max-time 10
	assert_equal "$status_code" 200
	get "$LABPULSE_NOTIFY_URL/healthz" --max-time 10
	assert_equal "$status_code" 200
	assert_equal "$(cat "$LABPULSE_RUNDIR/ingest.pid")" "$INGEST_PID"
	assert_equal "$(cat "$LABPULSE_RUNDIR/notify.pid")" "$NOTIFY_PID"
	kill -0 "$INGEST_PID"
	kill -0 "$NOTIFY_PID"
}

@test "the tour: every attack answered exactly, both daemons live, a dashboard sees its class only" {
	local d=$BATS_TEST_TMPDIR hp before t
	"$LPWATCH" --timeout 120 --token "$TOKEN" "$LABPULSE_NOTIFY_URL/ws?class=CS101" \
		>"$d/dash" 2>"$d/dash.err" 3>&- &
	track "$!"
	wait_for grep -q '"type":"hello"' "$d/dash"
	before=$(xlen)

	# ingest: the byte order mark before an event holding an object
	printf '\357\273\277[{"eventType":"cell_executed","metadata":{"a":1},"eventId":"attack-bom","emailAddress":"m@x.edu","classId":"CS101"}]' >"$d/bom"
	refused "$d/bom" 400 '{"error":"malformed JSON at byte 0: byte order mark (U+FEFF) is not allowed at line 1, column 1","offset":0}'
	# what a lenient parser took and jsonb refuses
	printf '[{"eventType":"a","emailAddress":"m@x.edu","eventId":"attack-nan","classId":"CS101","v":nan}]' >"$d/nan"
	refused "$d/nan" 400 '{"error":"malformed JSON at byte 88: invalid literal at line 1, column 89","offset":88}'
	printf '[{"eventType":"a","emailAddress":"m@x.edu","eventId":"attack-007","classId":"CS101","v":007}]' >"$d/octal"
	refused "$d/octal" 400 '{"error":"malformed JSON at byte 88: number with a leading zero at line 1, column 89","offset":88}'
	printf '[{"eventType":"a","emailAddress":"m@x.edu","eventId":"attack-dot","classId":"CS101","v":.5}]' >"$d/dot"
	refused "$d/dot" 400 '{"error":"malformed JSON at byte 88: unexpected '"'.'"' at line 1, column 89","offset":88}'
	printf '[{"eventType":"a","emailAddress":"m@x.edu","eventId":"attack-nul","classId":"CS101","code":"a\000b"}]' >"$d/nul"
	refused "$d/nul" 400 '{"error":"malformed JSON at byte 93: control character U+0000 in a string at line 1, column 94","offset":93}'
	assert_equal "$(xlen)" "$before"

	# a token bound to CS102 naming CS101, on an ingest with a token file
	printf 'cs102-secret CS102\n' >"$BATS_FILE_TMPDIR/tokens"
	start_ingest tok --token-file "$BATS_FILE_TMPDIR/tokens"
	post "$tok_URL/api/v1/events" '[{"eventType":"cell_executed","emailAddress":"m@x.edu","eventId":"attack-class","classId":"CS101","hasError":true}]' \
		-H 'Authorization: Bearer cs102-secret'
	assert_equal "$status_code" 403
	assert_equal "$body" '{"error":"field classId at index 0 is not the class of the token","field":"classId","index":0}'
	assert_equal "$(xlen)" "$before"

	# notify: a NUL in the request line, before any authentication
	hp=${LABPULSE_NOTIFY_URL#http://}
	printf 'GET /\000 HTTP/1.1\r\nHost: x\r\n\r\n' >"$d/nulreq"
	python3 "$HOSTILE" raw "${hp%:*}" "${hp##*:}" "$d/nulans" <"$d/nulreq"
	assert_equal "$(head -n 1 "$d/nulans" | tr -d '\r' | cut -d' ' -f1-2)" "HTTP/1.1 400"

	# 3,000 bare connects to ingest, then a real POST, answered at once
	hp=${LABPULSE_INGEST_URL#http://}
	for _ in $(seq 3000); do
		exec 7<>"/dev/tcp/${hp%:*}/${hp##*:}" && exec 7>&-
	done
	t=$(curl -sS -o "$d/legit.body" -w '%{http_code} %{time_total}' --max-time 10 \
		-H 'Content-Type: application/json' \
		--data-binary '[{"eventType":"cell_executed","emailAddress":"ada@x.edu","eventId":"legit-final","classId":"CS101"}]' "$URL")
	assert_equal "${t%% *}" 202
	awk -v s="${t#* }" 'BEGIN { exit !(s < 1.0) }' || fail "the POST after the flood took ${t#* } s"

	# the dashboard of CS101 got the legitimate event, and no attack's
	wait_for grep -q legit-final "$d/dash"
	run grep -c attack- "$d/dash"
	assert_output 0
	both_alive
}
