#!/usr/bin/env bats
# ingest: accepting, checking and durably queueing events, against a real
# Redis (and the stack's PostgreSQL) started by the test harness.

setup_file() {
	load helper/common
	stack_up
}

teardown_file() {
	load helper/common
	stop_tracked
	stack_down
}

setup() {
	load helper/common
	URL=$LABPULSE_INGEST_URL/api/v1/events
	RSOCK=${LABPULSE_REDIS#unix:}
}

# Whatever the outcome, a test's daemons and clients are gone before the
# next test.
teardown() {
	stop_tracked
}

# redis_up [ARGS...]: a Redis of the test's own on $BATS_TEST_TMPDIR/r.sock,
# tracked; sets rpid.
redis_up() {
	redis-server --port 0 --unixsocket "$BATS_TEST_TMPDIR/r.sock" --dir "$BATS_TEST_TMPDIR" \
		--daemonize yes --pidfile "$BATS_TEST_TMPDIR/r.pid" --save "" "$@" >/dev/null 3>&-
	wait_for redis-cli -s "$BATS_TEST_TMPDIR/r.sock" ping >/dev/null
	rpid=$(cat "$BATS_TEST_TMPDIR/r.pid")
	track "$rpid"
}

stop_pid() {
	kill -TERM "$1" 2>/dev/null || true
	wait_for eval "! kill -0 $1 2>/dev/null"
}

@test "an extension's one-element array is queued with the server's stamps" {
	before=$(xlen)
	post "$URL" "$(ext_event ext-1)"
	assert_equal "$status_code" 202
	assert_equal "$body" '{"accepted":1,"ids":["ext-1"]}'
	assert_equal "$(xlen)" $((before + 1))
	redis-cli -s "$RSOCK" --raw XREVRANGE labpulse:events + - COUNT 1 >"$BATS_TEST_TMPDIR/x"
	ev=$(sed -n 3p "$BATS_TEST_TMPDIR/x")
	assert_equal "$(jq -r .eventId <<<"$ev")" ext-1
	assert_equal "$(jq -r .classId <<<"$ev")" default
	assert_equal "$(jq -r .studentId <<<"$ev")" ada@example.edu
	assert_equal "$(jq -r .executionDurationMs <<<"$ev")" 12.5
	assert_equal "$(jq -r .metadata.kernel <<<"$ev")" python3
	assert_equal "$(jq -r .eventTime <<<"$ev")" 2026-11-25T10:15:30.123
	[[ $(jq -r .receivedAt <<<"$ev") =~ ^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{6}Z$ ]]
}

@test "a single object, an older client's userId, a zone, an unknown field" {
	post "$URL" '{"eventType":"notebook_opened","userId":"u-42","eventTime":"2026-11-25T10:00:00+01:00","classId":"CS101","extraThing":{"a":1}}'
	assert_equal "$status_code" 202
	id=$(jq -r '.ids[0]' <<<"$body")
	# derived from the event's bytes: a UUID of version 8
	[[ $id =~ ^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]]
	ev=$(redis-cli -s "$RSOCK" --raw XREVRANGE labpulse:events + - COUNT 1 | sed -n 3p)
	assert_equal "$(jq -r '.studentId, .classId, .extraThing.a, .eventId' <<<"$ev" | tr '\n' ' ')" "u-42 CS101 1 $id "
}

@test "a batch of 50 is queued whole, in order, with every id answered" {
	before=$(xlen)
	batch=$(jq -cn '[range(50) | {eventId: "b-\(.)", eventType: "cell_executed", emailAddress: "s\(. % 7)@x.edu"}]')
	post "$URL" "$batch"
	assert_equal "$status_code" 202
	assert_equal "$(jq -c '.accepted, (.ids | length), .ids[0], .ids[49]' <<<"$body" | tr '\n' ' ')" '50 50 "b-0" "b-49" '
	assert_equal "$(xlen)" $((before + 50))
	redis-cli -s "$RSOCK" --raw XREVRANGE labpulse:events + - COUNT 50 >"$BATS_TEST_TMPDIR/x"
	assert_equal "$(sed -n 3p "$BATS_TEST_TMPDIR/x" | jq -r .eventId)" b-49
	assert_equal "$(sed -n 150p "$BATS_TEST_TMPDIR/x" | jq -r .eventId)" b-0
}

@test "malformed JSON: 400 with the byte offset, nothing queued" {
	before=$(xlen)
	post "$URL" '[{"eventType":"x",,}]'
	assert_equal "$status_code" 400
	assert_equal "$(jq -r .offset <<<"$body")" 18
	assert_equal "$(jq -r .error <<<"$body")" "malformed JSON at byte 18: Expected value before ',' at line 1, column 19"
	post "$URL" '[{"eventType":"x","emailAddress":"a"}] trailing'
	assert_equal "$status_code" 400
	assert_equal "$(jq -r .offset <<<"$body")" 39
	post "$URL" ''
	assert_equal "$status_code" 400
	assert_equal "$(jq -r .error <<<"$body")" "empty body: expected a JSON array of events or one event object"
	assert_equal "$(xlen)" "$before"
}

@test "a missing field is named with its index, and no event of the batch is queued" {
	before=$(xlen)
	post "$URL" '[{"eventType":"a","emailAddress":"x"},{"eventType":"a","emailAddress":"x"},{"emailAddress":"x"}]'
	assert_equal "$status_code" 400
	assert_equal "$body" '{"error":"missing required field eventType at index 2","field":"eventType","index":2}'
	post "$URL" '[{"eventType":"a"}]'
	assert_equal "$status_code" 400
	assert_equal "$body" '{"error":"missing required field emailAddress (or userId) at index 0","field":"emailAddress","index":0}'
	assert_equal "$(xlen)" "$before"
}

@test "an ill-typed field is named with its index" {
	post "$URL" '[{"eventType":"a","emailAddress":"x"},{"eventType":"a","emailAddress":"x","cellIndex":"three"}]'
	assert_equal "$status_code" 400
	assert_equal "$body" '{"error":"field cellIndex at index 1 must be an integer","field":"cellIndex","index":1}'
	post "$URL" '[{"eventType":"a","emailAddress":"x","eventTime":"yesterday"}]'
	assert_equal "$status_code" 400
	assert_equal "$(jq -r .field <<<"$body")" eventTime
	post "$URL" '[{"eventType":"a","emailAddress":"x","hasError":"no"}]'
	assert_equal "$(jq -c '[.field, .index]' <<<"$body")" '["hasError",0]'
	post "$URL" '[1]'
	assert_equal "$body" '{"error":"event at index 0 is not a JSON object","index":0}'
}

@test "wrong Content-Type 415, unknown path 404, wrong method 405 with Allow" {
	CT=text/plain post "$URL" "$(ext_event)"
	assert_equal "$status_code" 415
	assert_equal "$body" '{"error":"Content-Type must be application/json"}'
	post "$LABPULSE_INGEST_URL/api/v1/nope" "$(ext_event)"
	assert_equal "$status_code" 404
	get "$URL"
	assert_equal "$status_code" 405
	run -0 grep -c '^Allow: POST$' <<<"$headers"
	get "$LABPULSE_INGEST_URL/healthz" -X DELETE
	assert_equal "$status_code" 405
	run -0 grep -c '^Allow: GET, HEAD$' <<<"$headers"
}

@test "limits: body, batch length and field size answer 413" {
	start_ingest small --max-body 300 --max-batch 3 --max-field 10
	post "$small_URL/api/v1/events" "$(jq -cn '[range(20) | {eventType: "a", emailAddress: "x"}]')"
	assert_equal "$status_code" 413
	post "$small_URL/api/v1/events" "$(jq -cn '[range(4) | {eventType: "a", emailAddress: "x"}]')"
	assert_equal "$status_code" 413
	assert_equal "$body" '{"error":"batch of 4 events is larger than the limit of 3"}'
	post "$small_URL/api/v1/events" '[{"eventType":"a","emailAddress":"x","code":"01234567890"}]'
	assert_equal "$status_code" 413
	assert_equal "$body" '{"error":"field code at index 0 is longer than 10 bytes","field":"code","index":0}'
	post "$small_URL/api/v1/events" '[{"eventType":"a","emailAddress":"x","code":"0123456789"}]'
	assert_equal "$status_code" 202
	stats "$small_STATS" >"$BATS_TEST_TMPDIR/s"
	assert_equal "$(jq -c '.rejected | [.batch_too_large, .field_too_large]' "$BATS_TEST_TMPDIR/s")" '[1,1]'
	stop_pid "$small_PID"
}

@test "bearer tokens: 401 without a valid one, the token's class otherwise; SIGHUP reloads" {
	printf '# token class\nsecret-a CS101\nsecret-b  MATH2\nsite-wide *\n' >"$BATS_TEST_TMPDIR/tokens"
	start_ingest tok --token-file "$BATS_TEST_TMPDIR/tokens"
	u=$tok_URL/api/v1/events
	post "$u" "$(ext_event t-1)"
	assert_equal "$status_code" 401
	run -0 grep -c '^WWW-Authenticate: Bearer' <<<"$headers"
	post "$u" "$(ext_event t-1)" -H 'Authorization: Bearer wrong'
	assert_equal "$status_code" 401
	post "$u" "$(ext_event t-2)" -H 'Authorization: Bearer secret-b'
	assert_equal "$status_code" 202
	ev=$(redis-cli -s "$RSOCK" --raw XREVRANGE labpulse:events + - COUNT 1 | sed -n 3p)
	assert_equal "$(jq -r .classId <<<"$ev")" MATH2
	# a token bound to a class is authoritative: another classId is 403
	post "$u" '{"eventType":"a","emailAddress":"x","classId":"OWN1"}' -H 'Authorization: Bearer secret-a'
	assert_equal "$status_code" 403
	assert_equal "$(jq -c '[.field, .index]' <<<"$body")" '["classId",0]'
	# a token bound to "*" lets the client's classId stand
	post "$u" '{"eventType":"a","emailAddress":"x","classId":"OWN1"}' -H 'Authorization: Bearer site-wide'
	assert_equal "$status_code" 202
	ev=$(redis-cli -s "$RSOCK" --raw XREVRANGE labpulse:events + - COUNT 1 | sed -n 3p)
	assert_equal "$(jq -r .classId <<<"$ev")" OWN1
	assert_equal "$(stats "$tok_STATS" | jq .rejected.forbidden_class)" 1
	# reload: a new token works, the removed one does not
	printf 'secret-c PHYS1\n' >"$BATS_TEST_TMPDIR/tokens"
	kill -HUP "$tok_PID"
	wait_for grep -q 'reloaded tokens=1' "$tok_LOG"
	post "$u" "$(ext_event t-3)" -H 'Authorization: Bearer secret-c'
	assert_equal "$status_code" 202
	post "$u" "$(ext_event t-4)" -H 'Authorization: Bearer secret-a'
	assert_equal "$status_code" 401
	# a bad file on reload keeps the tokens in force
	printf 'only-a-token\n' >"$BATS_TEST_TMPDIR/tokens"
	kill -HUP "$tok_PID"
	wait_for grep -q 'reload failed, keeping the old tokens: .*tokens:1: expected TOKEN CLASS' "$tok_LOG"
	post "$u" "$(ext_event t-5)" -H 'Authorization: Bearer secret-c'
	assert_equal "$status_code" 202
	stop_pid "$tok_PID"
}

@test "a bad token file stops ingest with the line, exit 78" {
	printf 'good CS1\n\nbad\n' >"$BATS_TEST_TMPDIR/tokens"
	run -78 --separate-stderr ingest --listen 127.0.0.1:0 --stats none --token-file "$BATS_TEST_TMPDIR/tokens"
	assert_equal "$stderr" "labpulse-ingest: error: $BATS_TEST_TMPDIR/tokens:3: expected TOKEN CLASS"
}

@test "healthz, and Redis stopped then restarted under a running ingest" {
	redis_up --appendonly yes
	start_ingest rr --redis "unix:$BATS_TEST_TMPDIR/r.sock"
	wait_for curl -fs "$rr_URL/healthz"
	get "$rr_URL/healthz"
	assert_equal "$body" '{"status":"ok","redis":"up"}'
	post "$rr_URL/api/v1/events" "$(ext_event r-1)"
	assert_equal "$status_code" 202
	redis-cli -s "$BATS_TEST_TMPDIR/r.sock" shutdown
	wait_for eval '[ "$(curl -s -o /dev/null -w %{http_code} $rr_URL/healthz)" = 503 ]'
	post "$rr_URL/api/v1/events" "$(ext_event r-2)"
	assert_equal "$status_code" 503
	run -0 grep -c '^Retry-After: 1$' <<<"$headers"
	assert_equal "$body" '{"error":"event queue unavailable: Redis is not connected"}'
	redis_up --appendonly yes
	wait_for curl -fs "$rr_URL/healthz"
	post "$rr_URL/api/v1/events" "$(ext_event r-2)"
	assert_equal "$status_code" 202
	# the append-only file kept the event accepted before the restart
	run -0 redis-cli -s "$BATS_TEST_TMPDIR/r.sock" XLEN labpulse:events
	assert_output 2
	grep -q 'lost Redis' "$rr_LOG"
	stop_pid "$rr_PID"
	redis-cli -s "$BATS_TEST_TMPDIR/r.sock" shutdown nosave
}

@test "a silent Redis: 503 after --redis-timeout, more than --max-inflight waiting: 503 at once" {
	redis_up
	start_ingest st --redis "unix:$BATS_TEST_TMPDIR/r.sock" --redis-timeout 1500ms --max-inflight 2
	wait_for curl -fs "$st_URL/healthz"
	kill -STOP "$rpid"
	cpids=
	for i in 1 2; do
		curl -s -o "$BATS_TEST_TMPDIR/w$i" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
			--data-binary "$(ext_event w-$i)" "$st_URL/api/v1/events" >"$BATS_TEST_TMPDIR/c$i" 3>&- &
		cpids="$cpids $!"
		track "$!"
	done
	wait_for eval '[ "$(stats "$st_STATS" | jq .cl_waiting)" = 2 ]'
	post "$st_URL/api/v1/events" "$(ext_event w-3)"
	assert_equal "$status_code" 503
	assert_equal "$body" '{"error":"too many requests waiting for the event queue"}'
	wait $cpids
	assert_equal "$(cat "$BATS_TEST_TMPDIR/c1") $(cat "$BATS_TEST_TMPDIR/c2")" "503 503"
	grep -q 'Redis did not answer in 1500 ms' "$st_LOG"
	kill -CONT "$rpid"
	wait_for curl -fs "$st_URL/healthz"
	post "$st_URL/api/v1/events" "$(ext_event w-4)"
	assert_equal "$status_code" 202
	stats "$st_STATS" >"$BATS_TEST_TMPDIR/s"
	assert_equal "$(jq -c '[.rejected.overloaded, .redis.timeouts >= 1]' "$BATS_TEST_TMPDIR/s")" '[1,true]'
	stop_pid "$st_PID"
	redis-cli -s "$BATS_TEST_TMPDIR/r.sock" shutdown nosave
}

@test "SIGTERM drains: the request in hand is answered, then exit 0" {
	redis_up
	start_ingest dr --redis "unix:$BATS_TEST_TMPDIR/r.sock"
	wait_for curl -fs "$dr_URL/healthz"
	kill -STOP "$rpid"
	curl -s -o "$BATS_TEST_TMPDIR/w" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
		--data-binary "$(ext_event d-1)" "$dr_URL/api/v1/events" >"$BATS_TEST_TMPDIR/c" 3>&- &
	cpid=$!
	track "$cpid"
	wait_for eval '[ "$(stats "$dr_STATS" | jq .cl_waiting)" = 1 ]'
	kill -TERM "$dr_PID"
	wait_for grep -q 'draining signal=TERM waiting=1' "$dr_LOG"
	# no longer accepting
	run curl -s -m 2 "$dr_URL/healthz"
	assert_failure
	kill -CONT "$rpid"
	wait "$cpid"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/c")" 202
	assert_equal "$(cat "$BATS_TEST_TMPDIR/w")" '{"accepted":1,"ids":["d-1"]}'
	rc=0
	wait "$dr_PID" || rc=$?
	assert_equal "$rc" 0
	grep -q 'stopped requests=2 events=1' "$dr_LOG"
	redis-cli -s "$BATS_TEST_TMPDIR/r.sock" shutdown nosave
}

@test "--to - writes NDJSON and flushes it before the answer; --to file: too" {
	out=$BATS_TEST_TMPDIR/out.ndjson
	: >"$BATS_TEST_TMPDIR/err"
	ingest --listen 127.0.0.1:0 --stats none --to - >"$out" 2>"$BATS_TEST_TMPDIR/err" 3>&- &
	pid=$!
	track "$pid"
	wait_for grep -q 'ready listen=' "$BATS_TEST_TMPDIR/err"
	addr=$(sed -n 's/.*ready listen=\([^ ]*\).*/\1/p' "$BATS_TEST_TMPDIR/err")
	post "http://$addr/api/v1/events" '[{"eventId":"p-1","eventType":"a","emailAddress":"x"},{"eventId":"p-2","eventType":"a","emailAddress":"y"}]'
	assert_equal "$status_code" 202
	# read at once: the lines were written before the 202
	assert_equal "$(jq -r .eventId "$out" | tr '\n' ' ')" "p-1 p-2 "
	get "http://$addr/healthz"
	assert_equal "$status_code" 200
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	assert_equal "$rc" 0
	start_ingest fo --to "file:$BATS_TEST_TMPDIR/f.ndjson"
	post "$fo_URL/api/v1/events" "$(ext_event f-1)"
	assert_equal "$status_code" 202
	assert_equal "$(jq -r .eventId "$BATS_TEST_TMPDIR/f.ndjson")" f-1
	stop_pid "$fo_PID"
}

@test "idle clients time out; connections are capped, and the cap lifts when one closes" {
	start_ingest cap --max-conns 2 --timeout 1s
	hp=${cap_URL#http://}
	exec 5<>"/dev/tcp/${hp%:*}/${hp#*:}" 6<>"/dev/tcp/${hp%:*}/${hp#*:}"
	printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' >&5
	printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' >&6
	wait_for eval '[ "$(stats "$cap_STATS" | jq .cl_active)" = 2 ]'
	run curl -s -m 0.5 "$cap_URL/healthz"
	assert_equal "$status" 28
	exec 5>&- 6>&-
	wait_for curl -fs -m 1 "$cap_URL/healthz"
	stats "$cap_STATS" >"$BATS_TEST_TMPDIR/s"
	[ "$(jq .cl_cap_reached "$BATS_TEST_TMPDIR/s")" -ge 1 ]
	# an idle connection is closed by the server after --timeout
	exec 7<>"/dev/tcp/${hp%:*}/${hp#*:}"
	run timeout 5 cat <&7
	assert_success
	exec 7>&-
	# so is a slow one that stops in the middle of its request
	exec 7<>"/dev/tcp/${hp%:*}/${hp#*:}"
	printf 'POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n[{"ev' >&7
	run timeout 5 cat <&7
	assert_success
	exec 7>&-
	stop_pid "$cap_PID"
}

@test "several --listen addresses, a Unix socket among them, with keep-alive" {
	sock=$BATS_FILE_TMPDIR/ingest-http.sock
	start_ingest two --listen "unix:$sock"
	grep -q "ready listen=127.0.0.1:[0-9]* unix:$sock to=stream:events" "$two_LOG"
	wait_for curl -fs --unix-socket "$sock" http://localhost/healthz
	post http://localhost/api/v1/events "$(ext_event ux-1)" --unix-socket "$sock"
	assert_equal "$status_code" 202
	before=$(stats "$two_STATS" | jq .cl_total)
	# three requests on one keep-alive connection
	run -0 curl -s -o /dev/null -o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\n' \
		"$two_URL/healthz" "$two_URL/healthz" "$two_URL/healthz"
	assert_output $'200 1\n200 0\n200 0'
	assert_equal "$(stats "$two_STATS" | jq .cl_total)" $((before + 1))
	stop_pid "$two_PID"
}

@test "socket activation: ingest adopts the socket systemd passes" {
	port=$(free_port)
	systemd-socket-activate -l "127.0.0.1:$port" "$TOP/bin/ingest" --stats none --redis "$LABPULSE_REDIS" \
		2>"$BATS_TEST_TMPDIR/sa.log" 3>&- &
	pid=$!
	track "$pid"
	wait_for grep -q "Listening on 127.0.0.1:$port" "$BATS_TEST_TMPDIR/sa.log"
	# the first connection starts ingest; it answers 503 until Redis is there
	wait_for curl -fs "http://127.0.0.1:$port/healthz"
	post "http://127.0.0.1:$port/api/v1/events" "$(ext_event sa-1)"
	assert_equal "$status_code" 202
	grep -q "ready listen=127.0.0.1:$port to=stream:events" "$BATS_TEST_TMPDIR/sa.log"
	kill -TERM "$pid"
	wait "$pid" || true
	# --listen beside passed sockets is a conflict
	run -64 --separate-stderr sh -c 'LISTEN_PID=$$ LISTEN_FDS=1 exec ingest --stats none --listen 127.0.0.1:0 3>/dev/null'
	[[ $stderr == *"--listen conflicts with sockets passed by systemd (LISTEN_FDS)"* ]]
}

@test "READY=1 reaches the NOTIFY_SOCKET the test owns, with the address" {
	sock=$BATS_TEST_TMPDIR/notify.sock
	socat -u "UNIX-RECV:$sock" "OPEN:$BATS_TEST_TMPDIR/notified,creat,append" 3>&- &
	spid=$!
	track "$spid"
	wait_for test -S "$sock"
	NOTIFY_SOCKET=$sock ingest --listen 127.0.0.1:0 --stats none 2>"$BATS_TEST_TMPDIR/n.log" 3>&- &
	pid=$!
	track "$pid"
	wait_for grep -q READY=1 "$BATS_TEST_TMPDIR/notified"
	addr=$(sed -n 's/.*ready listen=\([^ ]*\).*/\1/p' "$BATS_TEST_TMPDIR/n.log")
	grep -qx "STATUS=listening on $addr" "$BATS_TEST_TMPDIR/notified"
	kill -TERM "$pid"
	wait_for grep -q STOPPING=1 "$BATS_TEST_TMPDIR/notified"
	wait "$pid"
	kill "$spid"
}

@test "the stats socket counts requests, events and rejections" {
	stats "$LABPULSE_RUNDIR/ingest.sock" >"$BATS_TEST_TMPDIR/a"
	post "$URL" "$(ext_event s-1)"
	post "$URL" '[{'
	stats "$LABPULSE_RUNDIR/ingest.sock" >"$BATS_TEST_TMPDIR/b"
	assert_equal "$(jq -r .name "$BATS_TEST_TMPDIR/b")" ingest
	assert_equal "$(( $(jq .events_accepted "$BATS_TEST_TMPDIR/b") - $(jq .events_accepted "$BATS_TEST_TMPDIR/a") ))" 1
	assert_equal "$(( $(jq .rejected.malformed_json "$BATS_TEST_TMPDIR/b") - $(jq .rejected.malformed_json "$BATS_TEST_TMPDIR/a") ))" 1
	assert_equal "$(jq -c '[.redis.connected, (.redis.rtt_us.count > 0), .cl_waiting]' "$BATS_TEST_TMPDIR/b")" '[true,true,0]'
}

@test "a stats socket another process answers on is not taken over" {
	run -71 --separate-stderr ingest --listen 127.0.0.1:0 --stats "$LABPULSE_RUNDIR/ingest.sock"
	assert_equal "$stderr" "labpulse-ingest: error: --stats: $LABPULSE_RUNDIR/ingest.sock is in use by another process"
	run -0 stats "$LABPULSE_RUNDIR/ingest.sock"
	assert_output --partial '"name":"ingest"'
}

@test "bad flags and values: usage on stderr, exit 64" {
	run -64 --separate-stderr ingest --bogus
	assert_equal "${stderr_lines[0]}" "labpulse-ingest: error: unknown option '--bogus'"
	run -64 --separate-stderr ingest --max-body
	assert_equal "${stderr_lines[0]}" "labpulse-ingest: error: option '--max-body' needs a value"
	[[ $stderr == *"usage: labpulse ingest"* ]]
	run -64 --separate-stderr ingest --max-body 12parsecs
	[[ $stderr == *"labpulse-ingest: error: --max-body: invalid size '12parsecs': unknown unit 'parsecs'"* ]]
	run -64 --separate-stderr ingest --max-batch 0
	[[ $stderr == *"--max-batch: number '0' out of range (1 to 100000)"* ]]
	run -64 --separate-stderr ingest --listen nowhere
	[[ $stderr == *"bad listen address 'nowhere'"* ]]
	run -64 --separate-stderr ingest --to smoke:signals
	[[ $stderr == *"--to: unknown address 'smoke:signals'"* ]]
	run -78 --separate-stderr ingest --listen 127.0.0.1:0 --stats none --to stream:events@grp
	[[ $stderr == *"--to takes a stream without a consumer group"* ]]
	run -64 --separate-stderr ingest extra-arg
	[[ $stderr == *"unexpected argument 'extra-arg'"* ]]
}
