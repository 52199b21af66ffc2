#!/usr/bin/env bats
# route: events in, messages out by the jq rules, acknowledged only with
# their messages; against the real Redis of a private stack. Each test runs
# route processes of its own, on streams and groups of its own.

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
	RULES=$TOP/etc/labpulse/route.jq
}

# A test's route processes are gone before the next test starts its own.
teardown() {
	stop_tracked
}

rcli() {
	redis-cli -s "${LABPULSE_REDIS#unix:}" --raw "$@"
}

# stop_route PID: SIGTERM, and its exit status must be 0.
stop_route() {
	local rc=0
	kill -TERM "$1"
	wait "$1" || rc=$?
	assert_equal "$rc" 0
}

# add STREAM JSON...: each JSON an entry of labpulse:STREAM; prints the ids.
add() {
	local s=$1; shift
	for ev in "$@"; do rcli XADD "labpulse:$s" '*' event "$ev"; done
}

# field STREAM NAME: the values of the field NAME of every entry, in order.
field() {
	redis-cli -s "${LABPULSE_REDIS#unix:}" --json XRANGE "labpulse:$1" - + |
		jq -r --arg f "$2" '.[][1] as $e | range(0; $e | length; 2) | select($e[.] == $f) | $e[. + 1]'
}

# dead_of ID: the entries of labpulse:route-dead set aside from the stream
# entry ID, each as one object of its fields.
dead_of() {
	redis-cli -s "${LABPULSE_REDIS#unix:}" --json XRANGE labpulse:route-dead - + |
		jq -c --arg id "$1" '.[][1] | [range(0; length; 2) as $i | {(.[$i]): .[$i + 1]}] | add | select(.source == $id)'
}

@test "events posted to ingest come out routed by class, in order, with an alert for a failed cell and nothing for noise; all acknowledged" {
	post "$LABPULSE_INGEST_URL/api/v1/events" '[
	  {"eventId":"a1","eventType":"cell_executed","classId":"rt1","emailAddress":"ada@x.edu","userName":"Ada","notebookPath":"lab1.ipynb","cellIndex":3,"executionCount":7,"code":"print(1)","hasError":false,"errorMessage":null,"eventTime":"2026-11-25T10:15:30.123"},
	  {"eventId":"a2","eventType":"cell_executed","classId":"rt1","emailAddress":"bob@x.edu","cellIndex":4,"code":"1/0","hasError":true,"errorMessage":"ZeroDivisionError: division by zero"},
	  {"eventId":"a3","eventType":"cell_executed","classId":"rt1","emailAddress":"ada@x.edu","code":"  \n\t"},
	  {"eventId":"a4","eventType":"notebook_saved","classId":"rt1","emailAddress":"ada@x.edu","metadata":{"noise":true}},
	  {"eventId":"a5","eventType":"help","classId":"rt1","emailAddress":"cy@x.edu","notebookPath":"lab2.ipynb"}]'
	assert_equal "$status_code" 202
	sock=$BATS_TEST_TMPDIR/notify.sock
	socat -u "UNIX-RECV:$sock" "OPEN:$BATS_TEST_TMPDIR/notified,creat,append" 3>&- &
	spid=$!
	track "$spid"
	wait_for test -S "$sock"
	NOTIFY_SOCKET=$sock start_route r1 --from stream:events@routetest1 \
		--to stream:routed-rt1 --consumer t1 --rules "$RULES"
	wait_for grep -q READY=1 "$BATS_TEST_TMPDIR/notified"
	grep -q ": info: ready from=stream:events@routetest1 to=stream:routed-rt1 rules=$RULES " "$r1_LOG"
	wait_for eval '[ "$(xlen routed-rt1)" = 4 ]'
	# written and acknowledged in one transaction: nothing left pending
	assert_equal "$(pending events routetest1)" 0
	run -0 field routed-rt1 topic
	assert_output "$(printf 'class:rt1\n%.0s' 1 2 3 4)"
	field routed-rt1 msg >"$BATS_TEST_TMPDIR/msgs"
	run -0 jq -c 'del(.receivedAt)' "$BATS_TEST_TMPDIR/msgs"
	assert_output '{"topic":"class:rt1","kind":"activity","eventId":"a1","eventType":"cell_executed","eventTime":"2026-11-25T10:15:30.123","studentId":"ada@x.edu","userName":"Ada","notebookPath":"lab1.ipynb","cellIndex":3,"executionCount":7,"hasError":false,"errorMessage":null}
{"topic":"class:rt1","kind":"activity","eventId":"a2","eventType":"cell_executed","eventTime":null,"studentId":"bob@x.edu","userName":null,"notebookPath":null,"cellIndex":4,"executionCount":null,"hasError":true,"errorMessage":"ZeroDivisionError: division by zero"}
{"topic":"class:rt1","kind":"alert","eventId":"a2","eventTime":null,"studentId":"bob@x.edu","userName":null,"notebookPath":null,"cellIndex":4,"errorMessage":"ZeroDivisionError: division by zero"}
{"topic":"class:rt1","kind":"activity","eventId":"a5","eventType":"help","eventTime":null,"studentId":"cy@x.edu","userName":null,"notebookPath":"lab2.ipynb","cellIndex":null,"executionCount":null,"hasError":null,"errorMessage":null}'
	# receivedAt is ingest's, kept as it was
	run -0 jq -r .receivedAt "$BATS_TEST_TMPDIR/msgs"
	[ "${#lines[@]}" -eq 4 ]
	for l in "${lines[@]}"; do
		[[ $l =~ ^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{6}Z$ ]]
	done
	stats "$r1_STATS" >"$BATS_TEST_TMPDIR/s"
	run -0 jq -c '[.name, .from, .to, .rules == $r, .events_in, .messages_out, .messages_by_topic, .dropped, .rule_errors, .dead, .latency_us.count, .pending, .redis.group, .redis.consumer, .redis.connected]' --arg r "$RULES" "$BATS_TEST_TMPDIR/s"
	assert_output '["route","stream:events@routetest1","stream:routed-rt1",true,5,4,{"class":4},2,0,0,5,0,"routetest1","t1",true]'
	stop_route "$r1_PID"
	grep -q ': info: stopped events=5 messages=4 dropped=2 rule_errors=0 dead=0$' "$r1_LOG"
	wait_for grep -q STOPPING=1 "$BATS_TEST_TMPDIR/notified"
	kill "$spid"
}

@test "rules with a syntax error: exit 78 naming FILE:LINE:COL, and the stream is not touched" {
	f=$BATS_TEST_TMPDIR/syntax.jq
	printf '%s\n' 'select(.classId != null)' '| {topic: "class:\(.classId)", kind: }' '| .' >"$f"
	run -78 --separate-stderr route --from stream:events@routebad --rules "$f" --stats "$BATS_TEST_TMPDIR/s.sock"
	assert_equal "$stderr" "labpulse-route: error: $f:2:38: syntax error, unexpected '}'"
	assert_output ''
	run -0 rcli XINFO GROUPS labpulse:events
	refute_output --partial routebad
	[ ! -e "$BATS_TEST_TMPDIR/s.sock" ]
}

@test "--check: FILE: ok for good rules, each error placed for bad ones" {
	run -0 --separate-stderr route --check "$RULES"
	assert_output "$RULES: ok"
	assert_equal "$stderr" ''
	f=$BATS_TEST_TMPDIR/undef.jq
	# two errors, in the order of the file; columns count characters, not bytes
	printf '%s\n' '# two errors' '{topic: "class:\(.classId)", n: nosuch(1)}' \
		'| ("é" | nope)' >"$f"
	run -78 --separate-stderr route --check "$f"
	assert_output ''
	assert_equal "$stderr" "labpulse-route: error: $f:2:33: nosuch/1 is not defined
labpulse-route: error: $f:3:10: nope/0 is not defined"
	printf '%s\n' '.' '| é_not_ascii' >"$f"
	run -78 --separate-stderr route --check "$f"
	assert_equal "$stderr" "labpulse-route: error: $f:2:3: syntax error, unexpected INVALID_CHARACTER"
	run -78 --separate-stderr route --check "$BATS_TEST_TMPDIR/missing.jq"
	assert_equal "$stderr" "labpulse-route: error: $BATS_TEST_TMPDIR/missing.jq: cannot read the rules: Could not open $BATS_TEST_TMPDIR/missing.jq: No such file or directory"
	# a variable is known to --check when it is given
	echo '{topic: $t}' >"$f"
	run -78 --separate-stderr route --check "$f"
	assert_equal "$stderr" "labpulse-route: error: $f:1:9: \$t is not defined"
	run -0 route --check "$f" --arg t x
	assert_output "$f: ok"
}

@test "--test prints what the shipped rules make of NDJSON events, touching no Redis" {
	printf '%s\n' \
		'{"eventId":"t1","eventType":"cell_executed","classId":"CS101","studentId":"ada","receivedAt":"2026-11-25T20:31:39.123456Z","code":"x = 1","hasError":false,"cellIndex":0}' \
		'' \
		'{"eventId":"t2","eventType":"cell_executed","classId":"CS101","studentId":"bob","code":"1/0","hasError":true,"errorMessage":"ZeroDivisionError"}' \
		'{"eventId":"t3","eventType":"cell_executed","classId":"CS101","code":" "}' \
		'{"eventId":"t4","eventType":"notebook_opened","classId":"CS102","studentId":"cy","notebookPath":"a.ipynb"}' \
		>"$BATS_TEST_TMPDIR/in.ndjson"
	LABPULSE_REDIS=unix:/nonexistent/redis.sock run -0 --separate-stderr \
		route --test --rules "$RULES" <"$BATS_TEST_TMPDIR/in.ndjson"
	assert_equal "$stderr" ''
	assert_output '{"topic":"class:CS101","kind":"activity","eventId":"t1","eventType":"cell_executed","eventTime":null,"receivedAt":"2026-11-25T20:31:39.123456Z","studentId":"ada","userName":null,"notebookPath":null,"cellIndex":0,"executionCount":null,"hasError":false,"errorMessage":null}
{"topic":"class:CS101","kind":"activity","eventId":"t2","eventType":"cell_executed","eventTime":null,"receivedAt":null,"studentId":"bob","userName":null,"notebookPath":null,"cellIndex":null,"executionCount":null,"hasError":true,"errorMessage":"ZeroDivisionError"}
{"topic":"class:CS101","kind":"alert","eventId":"t2","eventTime":null,"receivedAt":null,"studentId":"bob","userName":null,"notebookPath":null,"cellIndex":null,"errorMessage":"ZeroDivisionError"}
{"topic":"class:CS102","kind":"activity","eventId":"t4","eventType":"notebook_opened","eventTime":null,"receivedAt":null,"studentId":"cy","userName":null,"notebookPath":"a.ipynb","cellIndex":null,"executionCount":null,"hasError":null,"errorMessage":null}'
	# a rule error and a line that is not JSON: the rest printed, exit 65
	f=$BATS_TEST_TMPDIR/boom.jq
	echo 'if .eventId == "bad" then error("boom") else {topic: "class:\(.classId)"} end' >"$f"
	printf '%s\n' '{"eventId":"ok1","classId":"c"}' '{"eventId":"bad","classId":"c"}' 'not json' '{"eventId":"ok2","classId":"d"}' \
		>"$BATS_TEST_TMPDIR/in2.ndjson"
	run -65 --separate-stderr route --test --rules "$f" <"$BATS_TEST_TMPDIR/in2.ndjson"
	assert_output '{"topic":"class:c"}
{"topic":"class:d"}'
	assert_equal "$stderr" 'labpulse-route: warning: rule error line=2 eventId=bad error="boom"
labpulse-route: warning: entry set aside line=3 eventId=- error="not JSON: Invalid numeric literal at line 1, column 4 (while parsing '"'not json'"')"'
	# an output without a topic fails its event too
	echo '{topic: .t}' >"$f"
	run -65 --separate-stderr route --test --rules "$f" <<<'{"eventId":"x","t":1}'
	assert_output ''
	assert_equal "$stderr" 'labpulse-route: warning: rule error line=1 eventId=x error="output 1 is not an object with a string \"topic\": {\"topic\":1}"'
}

@test "--arg, --argjson, \$ARGS and \$ENV reach the rules" {
	f=$BATS_TEST_TMPDIR/vars.jq
	echo '{topic: "class:\(.classId)", room: $room, n: $n, home: $ENV.ROUTE_TEST_VAR, named: $ARGS.named}' >"$f"
	ROUTE_TEST_VAR=from-env run -0 --separate-stderr route --test --rules "$f" \
		--arg room CS101-tutors --argjson n '{"a":[1,2]}' <<<'{"classId":"CS101"}'
	assert_output '{"topic":"class:CS101","room":"CS101-tutors","n":{"a":[1,2]},"home":"from-env","named":{"room":"CS101-tutors","n":{"a":[1,2]}}}'
	assert_equal "$stderr" ''
	# $LABPULSE_RULES names the rules when --rules does not
	echo '{topic: "x:\(.a)"}' >"$f"
	LABPULSE_RULES=$f run -0 route --test <<<'{"a":1}'
	assert_output '{"topic":"x:1"}'
}

@test "a rule that fails on one event: the others flow, the failed one is set aside with the error" {
	f=$BATS_TEST_TMPDIR/boom.jq
	echo 'if .eventId == "bad" then error("boom") else {topic: "class:\(.classId)", id: .eventId} end' >"$f"
	ids=$(add rterr '{"eventId":"g1","classId":"c1"}' '{"eventId":"bad","classId":"c1"}' \
		'{"eventId":"g2","classId":"c1"}')
	bad_id=$(sed -n 2p <<<"$ids")
	start_route re --from stream:rterr@route --to stream:rterr-out --rules "$f"
	wait_for eval '[ "$(xlen rterr-out)" = 2 ]'
	run -0 field rterr-out msg
	assert_output '{"topic":"class:c1","id":"g1"}
{"topic":"class:c1","id":"g2"}'
	# set aside in the default dead-letter stream, which others may share
	wait_for eval '[ -n "$(dead_of "$bad_id")" ]'
	run -0 dead_of "$bad_id"
	assert_output '{"event":"{\"eventId\":\"bad\",\"classId\":\"c1\"}","error":"boom","source":"'"$bad_id"'"}'
	grep -qxF "labpulse-route: warning: rule error stream_id=$bad_id eventId=bad error=\"boom\"" "$re_LOG"
	stats "$re_STATS" >"$BATS_TEST_TMPDIR/s"
	run -0 jq -c '[.events_in, .messages_out, .rule_errors, .dead, .dropped, .pending]' "$BATS_TEST_TMPDIR/s"
	assert_output '[3,2,1,1,0,0]'
	stop_route "$re_PID"
}

@test "SIGHUP: bad new rules are refused and the old ones keep running; good ones apply to the next events" {
	f=$BATS_TEST_TMPDIR/hup.jq
	echo '{topic: "class:\(.classId)", v: 1}' >"$f"
	start_route rh --from stream:rthup@route --to stream:rthup-out --rules "$f"
	add rthup '{"eventId":"h1","classId":"c"}' >/dev/null
	wait_for eval '[ "$(xlen rthup-out)" = 1 ]'
	printf '%s\n' '# version 2, broken' '{topic: "class:\(.classId)", v: 2' >"$f"
	kill -HUP "$rh_PID"
	wait_for grep -q 'reload failed' "$rh_LOG"
	grep -qxF "labpulse-route: error: reload failed, keeping the old rules: $f:2:34: syntax error, unexpected \$end, expecting '}'" "$rh_LOG"
	add rthup '{"eventId":"h2","classId":"c"}' >/dev/null
	wait_for eval '[ "$(xlen rthup-out)" = 2 ]'
	printf '%s\n' '# version 2' '{topic: "class:\(.classId)", v: 2}' >"$f"
	kill -HUP "$rh_PID"
	wait_for grep -qxF "labpulse-route: info: rules reloaded file=$f" "$rh_LOG"
	add rthup '{"eventId":"h3","classId":"c"}' >/dev/null
	wait_for eval '[ "$(xlen rthup-out)" = 3 ]'
	run -0 field rthup-out msg
	assert_output '{"topic":"class:c","v":1}
{"topic":"class:c","v":1}
{"topic":"class:c","v":2}'
	stats "$rh_STATS" >"$BATS_TEST_TMPDIR/s"
	run -0 jq -c '[.reloads, .reload_errors, .events_in]' "$BATS_TEST_TMPDIR/s"
	assert_output '[1,1,3]'
	stop_route "$rh_PID"
}

@test "hook: topics go to the hooks stream, the rest to --to; entries other consumers left pending are claimed" {
	f=$BATS_TEST_TMPDIR/hooks.jq
	echo '{topic: "class:\(.classId)", id: .eventId}, (select(.eventType == "help") | {topic: "hook:chat", id: .eventId})' >"$f"
	add rthook '{"eventId":"k1","classId":"c","eventType":"help"}' \
		'{"eventId":"k2","classId":"c","eventType":"cell_executed"}' >/dev/null
	# a consumer that read both and died
	rcli XGROUP CREATE labpulse:rthook route 0 >/dev/null
	rcli XREADGROUP GROUP route ghost COUNT 10 STREAMS labpulse:rthook '>' >/dev/null
	assert_equal "$(pending rthook route)" 2
	start_route rk --from stream:rthook@route --to stream:rthook-out \
		--hooks stream:rthook-hooks --claim-idle 100ms --rules "$f"
	wait_for eval '[ "$(xlen rthook-out)" = 2 ]'
	wait_for eval '[ "$(xlen rthook-hooks)" = 1 ]'
	assert_equal "$(pending rthook route)" 0
	run -0 field rthook-out msg
	assert_output '{"topic":"class:c","id":"k1"}
{"topic":"class:c","id":"k2"}'
	run -0 field rthook-hooks topic
	assert_output 'hook:chat'
	grep -q 'claimed entries left pending by another consumer count=2' "$rk_LOG"
	stats "$rk_STATS" >"$BATS_TEST_TMPDIR/s"
	run -0 jq -c '[.messages_by_topic, .claimed, .hooks]' "$BATS_TEST_TMPDIR/s"
	assert_output '[{"class":2,"hook":1},2,"stream:rthook-hooks"]'
	stop_route "$rk_PID"
}

@test "pipe mode: --from - --to - routes NDJSON with no Redis, hook messages in line" {
	f=$BATS_TEST_TMPDIR/pipe.jq
	echo '{topic: "class:\(.classId)", id: .eventId}, (select(.eventType == "help") | {topic: "hook:chat", id: .eventId})' >"$f"
	printf '%s\n' '{"eventId":"p1","classId":"c","eventType":"help"}' '{"eventId":"p2","classId":"d"}' \
		>"$BATS_TEST_TMPDIR/in.ndjson"
	LABPULSE_REDIS=unix:/nonexistent/redis.sock run -0 --separate-stderr \
		route --from - --to - --rules "$f" --stats none <"$BATS_TEST_TMPDIR/in.ndjson"
	assert_output '{"topic":"class:c","id":"p1"}
{"topic":"hook:chat","id":"p1"}
{"topic":"class:d","id":"p2"}'
	[[ ${stderr} == *": info: ready from=- to=- rules=$f hooks=- dead=none"$'\n'* ]]
	[[ ${stderr} == *": info: stopped events=2 messages=3 dropped=0 rule_errors=0 dead=0" ]]
	# to a file, hooks apart, from a file
	run -0 route --from "file:$BATS_TEST_TMPDIR/in.ndjson" --to "file:$BATS_TEST_TMPDIR/out" \
		--hooks "file:$BATS_TEST_TMPDIR/hooks" --rules "$f" --stats none
	run -0 cat "$BATS_TEST_TMPDIR/out" "$BATS_TEST_TMPDIR/hooks"
	assert_output '{"topic":"class:c","id":"p1"}
{"topic":"class:d","id":"p2"}
{"topic":"hook:chat","id":"p1"}'
	# through a pipe from ingest: when ingest stops, route reads the end
	mkfifo "$BATS_TEST_TMPDIR/pipe"
	route --from - --to - --rules "$RULES" --stats none <"$BATS_TEST_TMPDIR/pipe" \
		>"$BATS_TEST_TMPDIR/piped" 2>"$BATS_TEST_TMPDIR/r.log" 3>&- &
	rpid=$!
	track "$rpid"
	ingest --listen 127.0.0.1:0 --stats none --to - >"$BATS_TEST_TMPDIR/pipe" \
		2>"$BATS_TEST_TMPDIR/i.log" </dev/null 3>&- &
	ipid=$!
	track "$ipid"
	wait_for grep -q 'ready listen=' "$BATS_TEST_TMPDIR/i.log"
	addr=$(sed -n 's/.*ready listen=\([^ ]*\).*/\1/p' "$BATS_TEST_TMPDIR/i.log")
	post "http://$addr/api/v1/events" "$(ext_event pipe-1)"
	assert_equal "$status_code" 202
	wait_for grep -q '"eventId":"pipe-1"' "$BATS_TEST_TMPDIR/piped"
	kill -TERM "$ipid"
	rc=0
	wait "$rpid" || rc=$?
	assert_equal "$rc" 0
	grep -q 'stopped events=1 messages=1' "$BATS_TEST_TMPDIR/r.log"
	run -0 jq -r '[.topic, .kind, .eventId, .studentId] | join(" ")' "$BATS_TEST_TMPDIR/piped"
	assert_output 'class:default activity pipe-1 ada@example.edu'
}

@test "pipe mode: a line past 64 MiB ends the input as a read error, 74, and is not routed" {
	f=$BATS_TEST_TMPDIR/id.jq
	echo '{topic: "class:c", id: .eventId}' >"$f"
	{
		printf '%s\n' '{"eventId":"before"}'
		head -c 70000000 /dev/zero | tr '\0' x
	} >"$BATS_TEST_TMPDIR/long.ndjson"
	run -74 --separate-stderr route --from - --to - --rules "$f" --stats none \
		<"$BATS_TEST_TMPDIR/long.ndjson"
	assert_output '{"topic":"class:c","id":"before"}'
	[[ $stderr == *"labpulse-route: error: cannot read -: a line longer than 64 MiB"* ]] || { echo "$stderr"; false; }
	[[ $stderr != *"set aside"* ]] || { echo "$stderr"; false; }
}

@test "bad flags and inputs: usage and 64; an input that cannot be opened: 66; a bad Redis URL: 78" {
	run -64 --separate-stderr route --no-such-flag
	assert_output ''
	[[ $stderr == *"unknown option '--no-such-flag'"*"usage: labpulse route"* ]]
	run -64 --separate-stderr route --arg name
	[[ $stderr == *"option '--arg' needs a NAME and a VALUE"* ]]
	run -64 --separate-stderr route --arg
	[[ $stderr == *"option '--arg' needs a value"* ]]
	run -64 --separate-stderr route --argjson n '{"a":'
	[[ $stderr == *"--argjson n: invalid JSON: "* ]]
	run -64 --separate-stderr route --arg 1x v
	[[ $stderr == *"--arg: '1x' is not a jq variable name"* ]]
	run -64 --separate-stderr route --batch-size 0
	[[ $stderr == *"--batch-size: number '0' out of range (1 to 100000)"* ]]
	run -64 --separate-stderr route --claim-idle soon
	[[ $stderr == *"--claim-idle: invalid duration 'soon'"* ]]
	run -64 --separate-stderr route --from stream:events
	[[ $stderr == *"a stream is read as a consumer group: stream:events@GROUP"* ]]
	run -64 --separate-stderr route --to stream:routed@g
	[[ $stderr == *"--to: a stream is written without a group: stream:routed"* ]]
	run -64 --separate-stderr route --check "$RULES" --test
	[[ $stderr == *"--check FILE names the rules to check"* ]]
	run -64 --separate-stderr route --test --to stream:x
	[[ $stderr == *"--test reads standard input and writes standard output"* ]]
	run -66 --separate-stderr route --from file:/nonexistent/x.ndjson --to - --stats none
	[[ $stderr == *"cannot open /nonexistent/x.ndjson: No such file or directory"* ]]
	run -78 --separate-stderr route --redis bogus://x --stats none
	[[ $stderr == *"--redis: bad Redis URL 'bogus://x'"* ]]
}

@test "Redis restarted under a running route: it reconnects and routes what comes after" {
	start_route rr --from stream:rtredis@route --to stream:rtredis-out \
		--rules "$RULES"
	add rtredis '{"eventId":"r1","classId":"c","eventType":"help"}' >/dev/null
	wait_for eval '[ "$(xlen rtredis-out)" = 1 ]'
	rcli shutdown >/dev/null 2>&1 || true
	wait_for grep -q 'lost Redis; retrying' "$rr_LOG"
	labpulse up >/dev/null
	add rtredis '{"eventId":"r2","classId":"c","eventType":"help"}' >/dev/null
	wait_for eval '[ "$(xlen rtredis-out)" = 2 ]'
	grep -q 'connected to Redis' "$rr_LOG"
	assert_equal "$(pending rtredis route)" 0
	stop_route "$rr_PID"
}

@test "--max-len keeps about the last N entries of the streams route writes" {
	for i in $(seq 1000); do
		printf "XADD labpulse:events-ml * event '{\"eventId\":\"ml-%d\",\"classId\":\"C1\",\"eventType\":\"cell_executed\",\"code\":\"x\"}'\n" "$i"
	done | redis-cli -s "${LABPULSE_REDIS#unix:}" >/dev/null
	start_route ml --from stream:events-ml@ml --to stream:routed-ml --max-len 50
	wait_until '[ "$(rcli XLEN labpulse:routed-ml)" -gt 0 ] && [ "$(pending events-ml ml)" = 0 ] && [ "$(stats "$ml_STATS" | jq .events_in)" = 1000 ]'
	n=$(rcli XLEN labpulse:routed-ml)
	# whole nodes go (100 entries each by default): at least 50 stay, far from 1000
	[ "$n" -ge 50 ] && [ "$n" -le 250 ] || { echo "XLEN $n"; false; }
	# the newest is there
	assert_equal "$(rcli XREVRANGE labpulse:routed-ml + - COUNT 1 | sed -n 5p | jq -r .eventId)" ml-1000
	stop_route "$ml_PID"
}

# The help event of the hooks tests, as ingest queues it.
HELP_EVENT='{"eventId":"hp1","eventType":"help","eventTime":"2026-11-25T10:15:30.123","classId":"CS101","studentId":"ada@x.edu","userName":"Ada","notebookPath":"lab2.ipynb","receivedAt":"2026-11-25T20:31:39.123456Z"}'
HELP_ACTIVITY='{"topic":"class:CS101","kind":"activity","eventId":"hp1","eventType":"help","eventTime":"2026-11-25T10:15:30.123","receivedAt":"2026-11-25T20:31:39.123456Z","studentId":"ada@x.edu","userName":"Ada","notebookPath":"lab2.ipynb","cellIndex":null,"executionCount":null,"hasError":null,"errorMessage":null}'
HELP_HOOK='{"topic":"hook:chat","kind":"help","eventId":"hp1","eventTime":"2026-11-25T10:15:30.123","receivedAt":"2026-11-25T20:31:39.123456Z","classId":"CS101","studentId":"ada@x.edu","userName":"Ada","notebookPath":"lab2.ipynb","text":"Ada asks for help with lab2.ipynb in CS101"}'

@test "--hook-names: the shipped rules send a help request to hook:chat when the hooks file names chat" {
	h=$BATS_TEST_TMPDIR/hooks
	printf '%s\n' '# NAME  DESTINATION' 'desk  https://h.example.edu/x  rate=5/s' \
		'chat  telegram:-1001234567  # the class chat' >"$h"
	LABPULSE_HOOKS= run -0 --separate-stderr route --test --rules "$RULES" \
		--hook-names "$h" <<<"$HELP_EVENT"
	assert_equal "$stderr" ''
	assert_output "$HELP_ACTIVITY
$HELP_HOOK"
	# $LABPULSE_HOOKS names it when --hook-names does not
	LABPULSE_HOOKS=$h run -0 --separate-stderr route --test --rules "$RULES" <<<"$HELP_EVENT"
	assert_output "$HELP_ACTIVITY
$HELP_HOOK"
	# the text says what the event lacks
	LABPULSE_HOOKS=$h run -0 --separate-stderr route --test --rules "$RULES" \
		<<<'{"eventId":"hp2","eventType":"help","studentId":"bob@x.edu","userName":""}'
	assert_line --index 1 --partial '"text":"bob@x.edu asks for help with a notebook in a class"}'
	# no key or token file is read: one that is not there is no error
	printf 'chat telegram:1 token-file=/nonexistent/token\n' >"$h"
	run -0 --separate-stderr route --test --rules "$RULES" --hook-names "$h" <<<"$HELP_EVENT"
	assert_line --index 1 "$HELP_HOOK"
	run -0 route --check "$RULES" --hook-names "$h"
	assert_output "$RULES: ok"
}

@test "\$hooks is the names of the hooks file, [] without one; no file, or one without chat: no help request" {
	f=$BATS_TEST_TMPDIR/names.jq
	echo '{topic: "x", hooks: $hooks, named: $ARGS.named}' >"$f"
	LABPULSE_HOOKS= run -0 --separate-stderr route --test --rules "$f" <<<'{}'
	assert_output '{"topic":"x","hooks":[],"named":{}}'
	h=$BATS_TEST_TMPDIR/hooks
	printf 'b https://h\na telegram:@chat_room\nc.d-e_1 http://h\n' >"$h"
	LABPULSE_HOOKS= run -0 --separate-stderr route --test --rules "$f" --hook-names "$h" <<<'{}'
	assert_output '{"topic":"x","hooks":["b","a","c.d-e_1"],"named":{}}'
	# the shipped rules: the activity message only
	LABPULSE_HOOKS= run -0 --separate-stderr route --test --rules "$RULES" <<<"$HELP_EVENT"
	assert_output "$HELP_ACTIVITY"
	LABPULSE_HOOKS= run -0 --separate-stderr route --test --rules "$RULES" --hook-names "$h" <<<"$HELP_EVENT"
	assert_output "$HELP_ACTIVITY"
	printf '# nothing yet\n' >"$h"
	LABPULSE_HOOKS=$h run -0 --separate-stderr route --test --rules "$RULES" <<<"$HELP_EVENT"
	assert_output "$HELP_ACTIVITY"
	# $hooks is route's: --arg and --argjson cannot set it
	run -64 --separate-stderr route --test --rules "$f" --arg hooks x
	assert_equal "${stderr_lines[0]}" 'labpulse-route: error: $hooks is the names of the hooks file (--hook-names): it is not given by --arg or --argjson'
}

@test "a bad hooks file stops route at start with its message (78); one that cannot be read, 66" {
	h=$BATS_TEST_TMPDIR/hooks
	printf 'desk https://h\nchat\n' >"$h"
	run -78 --separate-stderr route --test --rules "$RULES" --hook-names "$h" </dev/null
	assert_output ''
	assert_equal "$stderr" "labpulse-route: error: $h:2: no destination after the name chat"
	printf 'chat telegram:1\n\nchat https://h\n' >"$h"
	run -78 --separate-stderr route --check "$RULES" --hook-names "$h"
	assert_equal "$stderr" "labpulse-route: error: $h:3: destination chat named twice (first on line 1)"
	printf 'chat telegram:abc\n' >"$h"
	LABPULSE_HOOKS=$h run -78 --separate-stderr route --from stream:rtbadhooks@route \
		--to stream:rtbadhooks-out --stats none
	assert_equal "$stderr" "labpulse-route: error: $h:1: telegram:abc: a chat id (digits, - first for a group) or @username"
	# it touched no stream
	assert_equal "$(xlen rtbadhooks)" 0
	run -66 --separate-stderr route --test --rules "$RULES" --hook-names /nonexistent/hooks </dev/null
	assert_equal "$stderr" 'labpulse-route: error: /nonexistent/hooks: No such file or directory'
}

@test "SIGHUP reads the hooks file with the rules; a bad one keeps the old names, with a warning" {
	h=$BATS_TEST_TMPDIR/hooks
	printf 'chat telegram:-1\n' >"$h"
	start_route rn --from stream:rtnames@route --to stream:rtnames-out \
		--hooks stream:rtnames-hooks --rules "$RULES" --hook-names "$h"
	add rtnames "${HELP_EVENT/hp1/n1}" >/dev/null
	wait_for eval '[ "$(xlen rtnames-hooks)" = 1 ]'
	printf 'chat telegram:-1 rate=0/s\n' >"$h"
	kill -HUP "$rn_PID"
	wait_for grep -qxF "labpulse-route: info: rules reloaded file=$RULES" "$rn_LOG"
	grep -qxF "labpulse-route: warning: reload: keeping the old hook names: $h:1: rate=0/s: a rate from 1/h to 1000/s, as N/s, N/min or N/h" "$rn_LOG"
	add rtnames "${HELP_EVENT/hp1/n2}" >/dev/null
	wait_for eval '[ "$(xlen rtnames-hooks)" = 2 ]'
	# a good file without chat: the next help request is not sent
	printf 'desk https://h\n' >"$h"
	kill -HUP "$rn_PID"
	wait_for eval '[ "$(grep -c "rules reloaded" "$rn_LOG")" = 2 ]'
	add rtnames "${HELP_EVENT/hp1/n3}" >/dev/null
	wait_for eval '[ "$(xlen rtnames-out)" = 3 ]'
	assert_equal "$(pending rtnames route)" 0
	run -0 field rtnames-hooks msg
	assert_output "${HELP_HOOK/hp1/n1}
${HELP_HOOK/hp1/n2}"
	stop_route "$rn_PID"
}
