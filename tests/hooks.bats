#!/usr/bin/env bats
# notify's hooks: messages of labpulse:hooks (as route writes them) delivered
# to webhooks and the Telegram Bot API, paced, retried, dead-lettered, never
# lost; against the real Redis of a private stack and tests/tools/fakehook as
# every destination. Each test runs its notify on streams of its own.

setup_file() {
	load helper/common
	# the stack's own notify delivers no hooks: the tests' notify do
	unset LABPULSE_HOOKS LABPULSE_TELEGRAM_TOKEN
	stack_up
}

teardown_file() {
	load helper/common
	stop_tracked
	stack_down
}

setup() {
	load helper/common
	unset LABPULSE_HOOKS LABPULSE_TELEGRAM_TOKEN
	FAKEHOOK=$TOP/tests/tools/fakehook
}

# A test's notify and fakes are gone before the next test starts its own.
teardown() {
	stop_tracked
}

rcli() {
	redis-cli -s "${LABPULSE_REDIS#unix:}" --raw "$@"
}

# start_fake NAME ARGS...: a fakehook of the test's own on a free port; sets
# ${NAME}_URL (http://127.0.0.1:PORT), ${NAME}_LOG (its NDJSON record) and
# ${NAME}_PID.
start_fake() {
	local name=$1; shift
	local pf=$BATS_TEST_TMPDIR/$name.port log=$BATS_TEST_TMPDIR/$name.ndjson
	: >"$log"
	"$FAKEHOOK" --port-file "$pf" --log "$log" "$@" </dev/null \
		2>"$BATS_TEST_TMPDIR/$name.err" 3>&- &
	local pid=$!
	track "$pid"
	wait_for test -s "$pf" || { cat "$BATS_TEST_TMPDIR/$name.err" >&2; return 1; }
	printf -v "${name}_URL" 'http://127.0.0.1:%s' "$(cat "$pf")"
	printf -v "${name}_LOG" '%s' "$log"
	printf -v "${name}_PID" '%s' "$pid"
}

# start_hooks NAME STREAM FILE [ARGS...]: a notify delivering the hooks of
# FILE from labpulse:STREAM (group hooks), dead letters to
# labpulse:STREAM-dead, with short back-offs.
start_hooks() {
	local name=$1 s=$2 f=$3; shift 3
	start_notify "$name" --hooks "$f" --hooks-from "stream:$s@hooks" \
		--hooks-dead "stream:$s-dead" --hook-backoff 10ms "$@"
}

# hook STREAM NAME TEXT: a message for the destination NAME, as route writes
# it; prints its id.
hook() {
	rcli XADD "labpulse:$1" '*' topic "hook:$2" msg "{\"topic\":\"hook:$2\",\"text\":\"$3\"}"
}

# dead STREAM: the entries of labpulse:STREAM, each as one object of its
# fields (sorted), in stream order.
dead() {
	redis-cli -s "${LABPULSE_REDIS#unix:}" --json XRANGE "labpulse:$1" - + |
		jq -cS '.[][1] | [range(0; length; 2) as $i | {(.[$i]): .[$i + 1]}] | add'
}

# count LOG JQ-FILTER: how many arrivals in the fake's LOG pass the filter.
count() {
	jq -s "[.[] | select($2)] | length" "$1"
}

# oks LOG: how many arrivals in the fake's LOG were answered 200.
oks() {
	count "$1" '.status == 200'
}

# hooks_stats SOCK FILE: the stats object of the notify at SOCK into FILE.
hooks_stats() {
	stats "$1" >"$2"
	jq -e .hooks "$2" >/dev/null
}

@test "a webhook gets the message byte for byte, as JSON, signed, keyed by its stream id; a wrong secret is a dead letter with 401" {
	key=$BATS_TEST_TMPDIR/ta.key bad=$BATS_TEST_TMPDIR/bad.key
	printf 's3cret key\n' >"$key"
	printf 'not the key\n' >"$bad"
	start_fake fk --secret-file "$key"
	f=$BATS_TEST_TMPDIR/hooks
	printf '# NAME DESTINATION OPTIONS\nta\t%s/ta  secret-file=%s\nwrong %s/wrong secret-file=%s # same receiver\n' \
		"$fk_URL" "$key" "$fk_URL" "$bad" >"$f"
	start_hooks n1 hk1 "$f"
	# spacing, escapes and UTF-8 as route wrote them: posted unchanged
	msg=$(printf '{"topic":"hook:ta",  "text":"caf\\u00e9 \xc3\xa9 \\"q\\"\\n", "n":[1, 2.50]}')
	id=$(rcli XADD labpulse:hk1 '*' topic hook:ta msg "$msg")
	wid=$(rcli XADD labpulse:hk1 '*' topic hook:wrong msg '{"topic":"hook:wrong","text":"w"}')
	wait_until '[ "$(count "$fk_LOG" '\''.path == "/ta"'\'')" = 1 ]'
	wait_until '[ "$(xlen hk1-dead)" = 1 ]'
	wait_until '[ "$(pending hk1 hooks)" = 0 ]'
	run -0 jq -r 'select(.path == "/ta") | .body' "$fk_LOG"
	assert_output "$msg"
	run -0 jq -c 'select(.path == "/ta") | [.method, .status, .sig_ok, .headers["content-type"], .headers["idempotency-key"]]' "$fk_LOG"
	assert_output "[\"POST\",200,true,\"application/json\",\"$id\"]"
	run -0 jq -r 'select(.path == "/ta") | .headers["user-agent"]' "$fk_LOG"
	assert_output --regexp '^labpulse-notify/[0-9]'
	# the signature the fake checked is the one a receiver computes
	run -0 jq -r 'select(.path == "/ta") | .headers["x-labpulse-signature"]' "$fk_LOG"
	assert_output "sha256=$(printf '%s' "$msg" | openssl dgst -sha256 -hmac 's3cret key' -r | cut -d' ' -f1)"
	# a wrong key: 401, final at once
	run -0 jq -c 'select(.path == "/wrong") | [.status, .sig_ok]' "$fk_LOG"
	assert_output '[401,false]'
	run -0 dead hk1-dead
	assert_output --regexp '^\{"attempts":"1","body":"\{\\"ok\\":false,\\"error\\":\\"Unauthorized: bad signature\\"\}","destination":"wrong","msg":"\{\\"topic\\":\\"hook:wrong\\",\\"text\\":\\"w\\"\}","reason":"HTTP 401: final, not retried","source":"'"$wid"'","status":"401","topic":"hook:wrong"\}$'
}

@test "503, then 429 with Retry-After, then 200: delivered once, the 429 waited out, counted as retried and rate limited" {
	start_fake fk --script /r=503,429:1,200
	f=$BATS_TEST_TMPDIR/hooks
	echo "r $fk_URL/r" >"$f"
	start_hooks n2 hk2 "$f"
	id=$(hook hk2 r one)
	wait_until '[ "$(oks "$fk_LOG")" = 1 ]'
	wait_until '[ "$(pending hk2 hooks)" = 0 ]'
	run -0 jq -c '[.status, .retry_after, .headers["idempotency-key"]]' "$fk_LOG"
	assert_output "[503,null,\"$id\"]
[429,1,\"$id\"]
[200,null,\"$id\"]"
	# no sooner than Retry-After after the 429 (no upper bound: the
	# machine may be slow)
	run -0 jq -s '.[2].t - .[1].t >= 1' "$fk_LOG"
	assert_output true
	hooks_stats "$n2_STATS" "$BATS_TEST_TMPDIR/st"
	run -0 jq -c '.hooks | [.read, .delivered, .dead, .retried, .rate_limited, .queued, .in_flight]' "$BATS_TEST_TMPDIR/st"
	assert_output '[1,1,0,1,1,0,0]'
	run -0 jq -c '.hooks.destinations.r | [.kind, .sent, .retried, .rate_limited, .dead, .last_status]' "$BATS_TEST_TMPDIR/st"
	assert_output '["webhook",1,1,1,0,200]'
	assert_equal "$(xlen hk2-dead)" 0
}

@test "Telegram: chat_id and text to sendMessage, the token from LABPULSE_TELEGRAM_TOKEN or token-file=, never shown" {
	start_fake tg
	tok='123456:AAE-env-token_x' ftok='654321:AAF-file-token_y'
	printf '%s\n' "$ftok" >"$BATS_TEST_TMPDIR/tok"
	f=$BATS_TEST_TMPDIR/hooks
	printf '%s\n' 'grp telegram:-1001234567' 'chan telegram:@labpulse_ta' \
		"dm telegram:42 token-file=$BATS_TEST_TMPDIR/tok" >"$f"
	LABPULSE_TELEGRAM_TOKEN=$tok start_hooks n3 hk3 "$f" --telegram-api "$tg_URL"
	hook hk3 grp 'help in room \"B\"\nnow' >/dev/null
	hook hk3 chan 'caf\u00e9' >/dev/null
	hook hk3 dm private >/dev/null
	# no string text: nothing to send
	nid=$(rcli XADD labpulse:hk3 '*' topic hook:dm msg '{"topic":"hook:dm","text":7}')
	wait_until '[ "$(oks "$tg_LOG")" = 3 ]'
	wait_until '[ "$(xlen hk3-dead)" = 1 ]'
	wait_until '[ "$(pending hk3 hooks)" = 0 ]'
	run -0 jq -c '[.path, .headers["content-type"], (.body | fromjson)]' "$tg_LOG"
	assert_line "[\"/bot$tok/sendMessage\",\"application/json\",{\"chat_id\":-1001234567,\"text\":\"help in room \\\"B\\\"\\nnow\"}]"
	assert_line "[\"/bot$tok/sendMessage\",\"application/json\",{\"chat_id\":\"@labpulse_ta\",\"text\":\"$(printf 'caf\xc3\xa9')\"}]"
	assert_line "[\"/bot$ftok/sendMessage\",\"application/json\",{\"chat_id\":42,\"text\":\"private\"}]"
	assert_equal "${#lines[@]}" 3
	run -0 dead hk3-dead
	assert_output --regexp '^\{"attempts":"0","body":"","destination":"dm","msg":"\{\\"topic\\":\\"hook:dm\\",\\"text\\":7\}","reason":"no text for Telegram: msg has no string field text","source":"'"$nid"'","status":"0","topic":"hook:dm"\}$'
	hooks_stats "$n3_STATS" "$BATS_TEST_TMPDIR/st"
	run -0 jq -c '.hooks.destinations | [.grp.kind, .grp.rate, .grp.burst, .dm.sent]' "$BATS_TEST_TMPDIR/st"
	assert_output '["telegram",1,1,1]'
	! grep -qF -e "$tok" -e "$ftok" -e "AAE-env" -e "AAF-file" "$n3_LOG" "$BATS_TEST_TMPDIR/st"
	dead hk3-dead >"$BATS_TEST_TMPDIR/dead"
	! grep -qF -e "$tok" -e "$ftok" "$BATS_TEST_TMPDIR/dead"
}

@test "Telegram: a wrong token is 401, a dead letter at once, and the token appears nowhere" {
	start_fake tg --token '123456:right'
	f=$BATS_TEST_TMPDIR/hooks
	echo 'grp telegram:-100777' >"$f"
	LABPULSE_TELEGRAM_TOKEN='999999:WRONG-token' start_hooks n4 hk4 "$f" --telegram-api "$tg_URL"
	id=$(hook hk4 grp hello)
	wait_until '[ "$(xlen hk4-dead)" = 1 ]'
	assert_equal "$(pending hk4 hooks)" 0
	run -0 jq -c '[.status, .chat_id]' "$tg_LOG"
	assert_output '[401,-100777]'
	run -0 dead hk4-dead
	assert_output --regexp '^\{"attempts":"1","body":"\{\\"ok\\":false,\\"error_code\\":401,\\"description\\":\\"Unauthorized\\"\}","destination":"grp","msg":"\{\\"topic\\":\\"hook:grp\\",\\"text\\":\\"hello\\"\}","reason":"HTTP 401: final, not retried","source":"'"$id"'","status":"401","topic":"hook:grp"\}$'
	stats "$n4_STATS" >"$BATS_TEST_TMPDIR/st"
	! grep -qF 'WRONG-token' "$n4_LOG" "$BATS_TEST_TMPDIR/st"
}

@test "Telegram pacing: the default 1/s to a chat meets its limit with no 429; at rate=10/s the 429s are waited out, in order" {
	start_fake tg --chat-interval 1
	f=$BATS_TEST_TMPDIR/hooks
	printf '%s\n' 'dm telegram:42' 'fast telegram:43 rate=10/s' >"$f"
	LABPULSE_TELEGRAM_TOKEN=1:t start_hooks n5 hk5 "$f" --telegram-api "$tg_URL"
	for i in 1 2 3 4; do hook hk5 dm "d$i" >/dev/null; done
	for i in 1 2 3; do hook hk5 fast "f$i" >/dev/null; done
	wait_until '[ "$(oks "$tg_LOG")" = 7 ]'
	wait_until '[ "$(pending hk5 hooks)" = 0 ]'
	# paced: four arrivals, all accepted, each at least 0.9 s after the last
	run -0 jq -sc '[.[] | select(.chat_id == 42)] | [map(.status), map(.body | fromjson | .text),
		([range(1; length) as $i | .[$i].t - .[$i - 1].t >= 0.9] | all)]' "$tg_LOG"
	assert_output '[[200,200,200,200],["d1","d2","d3","d4"],true]'
	# too fast: refused with retry_after, each waited out before the next try
	run -0 jq -sc '[.[] | select(.chat_id == 43)] | [(map(select(.status == 200) | .body | fromjson | .text)),
		(map(select(.status == 429)) | length > 0),
		([range(1; length) as $i | select(.[$i - 1].status == 429) | .[$i].t - .[$i - 1].t >= .[$i - 1].retry_after] | all)]' "$tg_LOG"
	assert_output '[["f1","f2","f3"],true,true]'
	hooks_stats "$n5_STATS" "$BATS_TEST_TMPDIR/st"
	run -0 jq -c '.hooks.destinations | [.dm.sent, .dm.rate_limited, .fast.sent, .fast.rate_limited > 0, .fast.rate, .fast.dead]' "$BATS_TEST_TMPDIR/st"
	assert_output '[4,0,3,true,10,0]'
	assert_equal "$(jq '.hooks.rate_limited' "$BATS_TEST_TMPDIR/st")" "$(count "$tg_LOG" '.status == 429')"
}

@test "Telegram group chats: at most 20 a minute, paced by notify without a 429" {
	start_fake tg --chat-interval 1 --group-per-minute 20
	f=$BATS_TEST_TMPDIR/hooks
	echo 'grp telegram:-100555 rate=10/s burst=5' >"$f"
	LABPULSE_TELEGRAM_TOKEN=1:t start_hooks n15 hk15 "$f" --telegram-api "$tg_URL"
	hook hk15 grp g1 >/dev/null
	hook hk15 grp g2 >/dev/null
	wait_until '[ "$(oks "$tg_LOG")" = 2 ]'
	wait_until '[ "$(pending hk15 hooks)" = 0 ]'
	# the destination's own rate would allow both at once: the group
	# bucket (20/min, burst 1) spaces them 3 s
	run -0 jq -sc '[map(.status), map(.body | fromjson | .text), .[1].t - .[0].t >= 2.9]' "$tg_LOG"
	assert_output '[[200,200],["g1","g2"],true]'
}

@test "--hook-timeout: an answer that does not come in time is a failed attempt, retried" {
	start_fake fk --script /t=hang:3,200
	f=$BATS_TEST_TMPDIR/hooks
	echo "t $fk_URL/t" >"$f"
	start_hooks n16 hk16 "$f" --hook-timeout 200ms
	id=$(hook hk16 t slowpoke)
	wait_until '[ "$(pending hk16 hooks)" = 0 ]'
	assert_equal "$(xlen hk16-dead)" 0
	# the first try was given up and the retry, the last to arrive, answered
	# (the fake logs the first only when its hang is over)
	run -0 jq -sc 'sort_by(.t) | last | [.status, .headers["idempotency-key"], (.body | fromjson | .text)]' "$fk_LOG"
	assert_output "[200,\"$id\",\"slowpoke\"]"
	hooks_stats "$n16_STATS" "$BATS_TEST_TMPDIR/st"
	run -0 jq -c '.hooks | [.delivered, .retried, .destinations.t.retried, .destinations.t.last_status]' "$BATS_TEST_TMPDIR/st"
	assert_output '[1,1,1,200]'
	grep -q "hooks: retry destination=t id=$id attempt=1 " "$n16_LOG"
}

@test "order per destination holds through a retry: the next message waits until the one before is delivered" {
	start_fake fk --script /o=200,200,503,200
	f=$BATS_TEST_TMPDIR/hooks
	echo "o $fk_URL/o" >"$f"
	start_hooks n6 hk6 "$f"
	for i in 1 2 3 4 5; do hook hk6 o "m$i" >/dev/null; done
	wait_until '[ "$(oks "$fk_LOG")" = 5 ]'
	wait_until '[ "$(pending hk6 hooks)" = 0 ]'
	run -0 jq -r '"\(.body | fromjson | .text) \(.status)"' "$fk_LOG"
	assert_output 'm1 200
m2 200
m3 503
m3 200
m4 200
m5 200'
}

@test "another 4xx is final: a dead letter at once with every field, the entry acknowledged" {
	start_fake fk --script /gone=400
	f=$BATS_TEST_TMPDIR/hooks
	echo "gone $fk_URL/gone" >"$f"
	start_hooks n7 hk7 "$f" --hook-max-attempts 5
	id=$(hook hk7 gone bye)
	wait_until '[ "$(xlen hk7-dead)" = 1 ]'
	assert_equal "$(pending hk7 hooks)" 0
	assert_equal "$(count "$fk_LOG" true)" 1
	run -0 dead hk7-dead
	assert_output --regexp '^\{"attempts":"1","body":"\{\\"ok\\":false,\\"error\\":\\"Bad Request\\"\}","destination":"gone","msg":"\{\\"topic\\":\\"hook:gone\\",\\"text\\":\\"bye\\"\}","reason":"HTTP 400: final, not retried","source":"'"$id"'","status":"400","topic":"hook:gone"\}$'
}

@test "out of attempts: a destination down or failing gets --hook-max-attempts tries, then dead letters; nothing pending" {
	port=$(free_port)
	start_fake fk --script /fail=503
	f=$BATS_TEST_TMPDIR/hooks
	printf 'down http://127.0.0.1:%s/x\nfail %s/fail\n' "$port" "$fk_URL" >"$f"
	start_hooks n8 hk8 "$f" --hook-max-attempts 3 --hook-timeout 2s
	d1=$(hook hk8 down a)
	d2=$(hook hk8 down b)
	f1=$(hook hk8 fail c)
	wait_until '[ "$(xlen hk8-dead)" = 3 ]'
	assert_equal "$(pending hk8 hooks)" 0
	assert_equal "$(count "$fk_LOG" true)" 3
	dead hk8-dead >"$BATS_TEST_TMPDIR/dead"
	run -0 jq -c '[.source, .destination, .attempts, .status, .body]' "$BATS_TEST_TMPDIR/dead"
	assert_line "[\"$d1\",\"down\",\"3\",\"0\",\"\"]"
	assert_line "[\"$d2\",\"down\",\"3\",\"0\",\"\"]"
	assert_line "[\"$f1\",\"fail\",\"3\",\"503\",\"{\\\"ok\\\":false,\\\"error\\\":\\\"Service Unavailable\\\"}\"]"
	run -0 jq -r 'select(.destination == "down") | .reason' "$BATS_TEST_TMPDIR/dead"
	assert_line --index 0 --regexp "^no success in 3 attempts; the last: .*127\.0\.0\.1.*$port"
	run -0 jq -r 'select(.destination == "fail") | .reason' "$BATS_TEST_TMPDIR/dead"
	assert_output 'no success in 3 attempts; the last: HTTP 503'
	hooks_stats "$n8_STATS" "$BATS_TEST_TMPDIR/st"
	run -0 jq -c '.hooks | [.dead, .retried, .delivered, .destinations.down.dead, .destinations.down.retried, .destinations.fail.retried, .destinations.fail.last_status]' "$BATS_TEST_TMPDIR/st"
	assert_output '[3,6,0,2,4,2,503]'
}

@test "--hook-max-age: a message older than that is a dead letter, sent or not" {
	start_fake fk --script /slow=503
	f=$BATS_TEST_TMPDIR/hooks
	printf 'ok %s/ok\nslow %s/slow\n' "$fk_URL" "$fk_URL" >"$f"
	start_hooks n9 hk9 "$f" --hook-max-age 1s --hook-max-attempts 100 --hook-backoff 100ms
	# written by route in 2001: too old to send at all
	rcli XADD labpulse:hk9 1000000000000-0 topic hook:ok msg '{"topic":"hook:ok","text":"old"}' >/dev/null
	t0=$(date +%s.%N)
	id=$(hook hk9 slow late)
	wait_until '[ "$(xlen hk9-dead)" = 2 ]'
	t1=$(date +%s.%N)
	assert_equal "$(pending hk9 hooks)" 0
	assert_equal "$(count "$fk_LOG" '.path == "/ok"')" 0
	dead hk9-dead >"$BATS_TEST_TMPDIR/dead"
	run -0 jq -c '[.source, .destination, .status, .reason]' "$BATS_TEST_TMPDIR/dead"
	assert_output "[\"1000000000000-0\",\"ok\",\"0\",\"older than --hook-max-age\"]
[\"$id\",\"slow\",\"503\",\"older than --hook-max-age\"]"
	# retried until its age ran out, not before
	assert [ "$(count "$fk_LOG" '.path == "/slow"')" -ge 2 ]
	assert_equal "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print (b - a >= 1) }')" 1
}

@test "an unknown destination, a topic not hook:NAME, no msg, a msg not a JSON object: dead letters with their reasons" {
	start_fake fk
	f=$BATS_TEST_TMPDIR/hooks
	echo "ok $fk_URL/ok" >"$f"
	start_hooks n10 hk10 "$f"
	u=$(hook hk10 nosuch x)
	t=$(rcli XADD labpulse:hk10 '*' topic chat msg '{"topic":"chat","text":"x"}')
	m=$(rcli XADD labpulse:hk10 '*' topic hook:ok text x)
	j=$(rcli XADD labpulse:hk10 '*' topic hook:ok msg 'not json')
	a=$(rcli XADD labpulse:hk10 '*' topic hook:ok msg '[1,2]')
	g=$(hook hk10 ok fine)
	wait_until '[ "$(xlen hk10-dead)" = 5 ]'
	wait_until '[ "$(oks "$fk_LOG")" = 1 ]'
	wait_until '[ "$(pending hk10 hooks)" = 0 ]'
	dead hk10-dead >"$BATS_TEST_TMPDIR/dead"
	run -0 jq -r '"\(.source) \(.topic) \(.attempts) \(.status) \(.reason)"' "$BATS_TEST_TMPDIR/dead"
	assert_output "$u hook:nosuch 0 0 no destination nosuch in the hooks file
$t chat 0 0 topic chat is not hook:NAME
$m hook:ok 0 0 no msg field
$j hook:ok 0 0 msg is not a JSON object
$a hook:ok 0 0 msg is not a JSON object"
	run -0 jq -r '.destination' "$BATS_TEST_TMPDIR/dead"
	assert_output 'nosuch

ok
ok
ok'
	run -0 jq -r 'select(.source == "'"$j"'") | .msg' "$BATS_TEST_TMPDIR/dead"
	assert_output 'not json'
	run -0 jq -r '.headers["idempotency-key"]' "$fk_LOG"
	assert_output "$g"
}

@test "kill -9 with messages in flight: a second notify takes them over after --claim-idle, each delivered at least once under the same Idempotency-Key" {
	start_fake fk --script /k=hang:3,200
	f=$BATS_TEST_TMPDIR/hooks
	echo "k $fk_URL/k" >"$f"
	start_hooks n11 hk11 "$f" --consumer first
	ids=()
	for i in 1 2 3; do ids+=("$(hook hk11 k "k$i")"); done
	wait_until '[ "$(pending hk11 hooks)" = 3 ]'
	wait_until 'stats "$n11_STATS" | jq -e ".hooks.in_flight == 1" >/dev/null'
	kill -KILL "$n11_PID"
	wait "$n11_PID" || true
	assert_equal "$(pending hk11 hooks)" 3
	start_hooks n12 hk11 "$f" --consumer second --claim-idle 500ms
	wait_until '[ "$(pending hk11 hooks)" = 0 ]'
	# each id delivered, with its own body, whoever sent it
	for i in 0 1 2; do
		assert [ "$(count "$fk_LOG" ".status == 200 and .headers[\"idempotency-key\"] == \"${ids[$i]}\"")" -ge 1 ]
	done
	run -0 jq -sc 'group_by(.headers["idempotency-key"]) | map([.[].body] | unique | length) | unique' "$fk_LOG"
	assert_output '[1]'
	run -0 jq -sc 'map(.headers["idempotency-key"]) | unique | length' "$fk_LOG"
	assert_output 3
	# the order held: k1 before k2 before k3 among the second's sends
	run -0 jq -sr 'sort_by(.t)[] | select(.status == 200) | .body | fromjson | .text' "$fk_LOG"
	assert_output --regexp 'k1
k2
k3$'
	assert_equal "$(xlen hk11-dead)" 0
}

@test "bad hooks files exit 78 naming FILE:LINE; a missing one 66; bad hook options 64" {
	f=$BATS_TEST_TMPDIR/hooks
	bad() {
		printf "$1" >"$f"
		run -78 --separate-stderr notify --hooks "$f" --stats none --listen 127.0.0.1:0
		assert_output ''
		assert_equal "$stderr" "labpulse-notify: error: $f:$2"
	}
	bad 'chat\n' '1: no destination after the name chat'
	bad 'a http://x/a\n# c\na https://x/b\n' '3: destination a named twice (first on line 1)'
	bad 'chat telegram:abc\n' '1: telegram:abc: a chat id (digits, - first for a group) or @username'
	bad 'chat telegram:-1 rate=0/s\n' '1: rate=0/s: a rate from 1/h to 1000/s, as N/s, N/min or N/h'
	bad 'w http://x/ color=red\n' '1: unknown option color=red (rate=, burst=, secret-file= or token-file=)'
	bad 'w http://x/ burst=2 burst=3\n' '1: burst= given twice'
	bad 'chat telegram:5 secret-file=/k\n' '1: secret-file= is for webhooks'
	run -66 --separate-stderr notify --hooks "$BATS_TEST_TMPDIR/none" --stats none --listen 127.0.0.1:0
	assert_equal "$stderr" "labpulse-notify: error: $BATS_TEST_TMPDIR/none: No such file or directory"
	# a Telegram destination needs a token
	printf '# chat\n\nchat telegram:-100 rate=20/min\n' >"$f"
	run -78 --separate-stderr notify --hooks "$f" --stats none --listen 127.0.0.1:0
	assert_equal "$stderr" "labpulse-notify: error: $f:3: destination chat has no bot token: set LABPULSE_TELEGRAM_TOKEN or token-file="
	LABPULSE_TELEGRAM_TOKEN='1:a/b' run -78 --separate-stderr notify --hooks "$f" --stats none --listen 127.0.0.1:0
	assert_equal "$stderr" "labpulse-notify: error: $f:3: destination chat: the bot token has a character no token has"
	# LABPULSE_HOOKS is --hooks' default
	printf 'x\n' >"$f"
	LABPULSE_HOOKS=$f run -78 --separate-stderr notify --stats none --listen 127.0.0.1:0
	assert_equal "$stderr" "labpulse-notify: error: $f:1: no destination after the name x"
	run -64 --separate-stderr notify --hook-max-attempts 0
	assert_equal "${stderr_lines[0]}" "labpulse-notify: error: --hook-max-attempts: number '0' out of range (1 to 100)"
	run -64 --separate-stderr notify --hook-max-attempts 101
	assert_equal "${stderr_lines[0]}" "labpulse-notify: error: --hook-max-attempts: number '101' out of range (1 to 100)"
	run -64 --separate-stderr notify --hook-queue 9
	assert_equal "${stderr_lines[0]}" "labpulse-notify: error: --hook-queue: number '9' out of range (10 to 1000000)"
	run -64 --separate-stderr notify --hook-max-age 500ms
	assert_equal "${stderr_lines[0]}" "labpulse-notify: error: --hook-max-age: duration '500ms' out of range (1000 to 604800000)"
	run -64 --separate-stderr notify --hook-backoff 0
	assert_equal "${stderr_lines[0]}" "labpulse-notify: error: --hook-backoff: duration '0' out of range (1 to 3600000)"
	run -64 --separate-stderr notify --hook-timeout 99ms
	assert_equal "${stderr_lines[0]}" "labpulse-notify: error: --hook-timeout: duration '99ms' out of range (100 to 600000)"
	run -64 --separate-stderr notify --claim-idle 50ms
	assert_equal "${stderr_lines[0]}" "labpulse-notify: error: --claim-idle: duration '50ms' out of range (100 to 86400000)"
	echo 'w http://127.0.0.1:9/w' >"$f"
	run -64 --separate-stderr notify --hooks "$f" --hooks-from stream:hooks --stats none --listen 127.0.0.1:0
	assert_equal "${stderr_lines[0]}" "labpulse-notify: error: --hooks-from: a stream is read as a consumer group: stream:hooks@GROUP"
	assert_equal "${stderr_lines[1]}" "usage: labpulse notify [--claim-idle DURATION] [--consumer NAME] [--db CONNINFO]"
	run -64 --separate-stderr notify --hooks "$f" --from - --hooks-from - --stats none --listen 127.0.0.1:0
	assert_equal "${stderr_lines[0]}" "labpulse-notify: error: --hooks-from -: standard input is --from's"
	run -64 --separate-stderr notify --hooks "$f" --hooks-dead stream:hooks-dead@g --stats none --listen 127.0.0.1:0
	assert_equal "${stderr_lines[0]}" "labpulse-notify: error: --hooks-dead: stream:NAME or -, not stream:hooks-dead@g"
	run -64 --separate-stderr notify --hooks "$f" --hooks-dead file:/x --stats none --listen 127.0.0.1:0
	assert_equal "${stderr_lines[0]}" "labpulse-notify: error: --hooks-dead: stream:NAME or -, not file:/x"
	run -64 --separate-stderr notify --hooks "$f" --telegram-api ftp://api.example --stats none --listen 127.0.0.1:0
	assert_equal "${stderr_lines[0]}" "labpulse-notify: error: --telegram-api: an http:// or https:// URL of at most 512 bytes, with no query, not 'ftp://api.example'"
	run -64 --separate-stderr notify --hooks "$f" --telegram-api 'https://api.example/?x=1' --stats none --listen 127.0.0.1:0
	assert_equal "${stderr_lines[0]}" "labpulse-notify: error: --telegram-api: an http:// or https:// URL of at most 512 bytes, with no query, not 'https://api.example/?x=1'"
}

@test "SIGHUP re-reads the hooks file; a bad one is kept as it was, with a warning" {
	start_fake fk
	f=$BATS_TEST_TMPDIR/hooks
	echo "x $fk_URL/one" >"$f"
	start_hooks n13 hk13 "$f"
	hook hk13 x m1 >/dev/null
	wait_until '[ "$(oks "$fk_LOG")" = 1 ]'
	printf 'x %s/two\ny %s/y\n' "$fk_URL" "$fk_URL" >"$f"
	kill -HUP "$n13_PID"
	wait_until 'stats "$n13_STATS" | jq -e ".hooks.destinations | has(\"y\")" >/dev/null'
	hook hk13 x m2 >/dev/null
	hook hk13 y m3 >/dev/null
	wait_until '[ "$(oks "$fk_LOG")" = 3 ]'
	printf 'x %s/three\nbroken\n' "$fk_URL" >"$f"
	kill -HUP "$n13_PID"
	wait_until 'grep -qF "$f:2: no destination after the name broken" "$n13_LOG"'
	grep -q ': warning: .*'"$f"':2: no destination after the name broken' "$n13_LOG"
	hook hk13 x m4 >/dev/null
	wait_until '[ "$(oks "$fk_LOG")" = 4 ]'
	run -0 jq -r '"\(.path) \(.body | fromjson | .text)"' "$fk_LOG"
	assert_output '/one m1
/two m2
/y m3
/two m4'
	kill -0 "$n13_PID"
}

@test "NDJSON input: --hooks-from - delivers each line, dead letters go to standard output" {
	start_fake fk
	f=$BATS_TEST_TMPDIR/hooks
	echo "w $fk_URL/w" >"$f"
	mkfifo "$BATS_TEST_TMPDIR/in"
	exec 6<>"$BATS_TEST_TMPDIR/in"
	log=$BATS_TEST_TMPDIR/pipe.log out=$BATS_TEST_TMPDIR/pipe.out
	notify --hooks "$f" --hooks-from - --hook-backoff 10ms --listen 127.0.0.1:0 \
		--stats "$BATS_TEST_TMPDIR/pipe.sock" <&6 >"$out" 2>"$log" 3>&- &
	pid=$!
	track "$pid"
	wait_for grep -q 'ready listen=' "$log"
	printf '%s\n' '{"topic":"hook:w","text":"p1"}' '{"topic":"hook:nosuch","text":"p2"}' \
		'{"topic":"hook:w","text":"p3"}' >&6
	wait_until '[ "$(oks "$fk_LOG")" = 2 ]'
	wait_until '[ "$(wc -l <"$out")" = 1 ]'
	exec 6>&-
	run -0 jq -r '"\(.body) \(.headers["idempotency-key"] != null)"' "$fk_LOG"
	assert_output '{"topic":"hook:w","text":"p1"} true
{"topic":"hook:w","text":"p3"} true'
	run -0 jq -s -r 'map(.headers["idempotency-key"]) | unique | length' "$fk_LOG"
	assert_output 2
	run -0 jq -c '[.destination, .topic, .msg, (.attempts | tostring), (.status | tostring), (.reason | length > 0), (.source | length > 0)]' "$out"
	assert_output '["nosuch","hook:nosuch","{\"topic\":\"hook:nosuch\",\"text\":\"p2\"}","0","0",true,true]'
	stats "$BATS_TEST_TMPDIR/pipe.sock" >"$BATS_TEST_TMPDIR/st"
	run -0 jq -c '.hooks | [.from, .dead_to, .read, .delivered, .dead]' "$BATS_TEST_TMPDIR/st"
	assert_output '["-","-",3,2,1]'
}

@test "NDJSON from a regular file: --hooks-from file:PATH reads it all, a last line without its newline too" {
	start_fake fk
	f=$BATS_TEST_TMPDIR/hooks in=$BATS_TEST_TMPDIR/in.ndjson
	echo "w $fk_URL/w" >"$f"
	printf '%s\n%s' '{"topic":"hook:w","text":"f1"}' '{"topic":"hook:w","text":"f2"}' >"$in"
	log=$BATS_TEST_TMPDIR/file.log
	notify --hooks "$f" --hooks-from "file:$in" --listen 127.0.0.1:0 --stats none \
		</dev/null >"$BATS_TEST_TMPDIR/file.out" 2>"$log" 3>&- &
	track $!
	wait_for grep -q 'input ended and every message is settled delivered=2 dead=0' "$log"
	run -0 jq -r '.body | fromjson | .text' "$fk_LOG"
	assert_output 'f1
f2'
	[ ! -s "$BATS_TEST_TMPDIR/file.out" ]
}

@test "defaults: labpulse:hooks read by group hooks, dead letters to labpulse:hooks-dead; the stats' hooks object after a run" {
	start_fake fk --script /gone=404
	start_fake tg
	f=$BATS_TEST_TMPDIR/hooks
	printf 'w %s/w\ngone %s/gone burst=3 rate=2/min\nchat telegram:-1001 rate=30/min\n' "$fk_URL" "$fk_URL" >"$f"
	# a notify without hooks reports none
	stats "$LABPULSE_RUNDIR/notify.sock" >"$BATS_TEST_TMPDIR/st0"
	assert_equal "$(jq 'has("hooks")' "$BATS_TEST_TMPDIR/st0")" false
	rcli DEL labpulse:hooks labpulse:hooks-dead >/dev/null
	LABPULSE_HOOKS=$f LABPULSE_TELEGRAM_TOKEN=1:t start_notify n14 --hook-queue 100 --telegram-api "$tg_URL"
	hook hooks w a >/dev/null
	hook hooks w b >/dev/null
	hook hooks gone c >/dev/null
	hook hooks chat d >/dev/null
	wait_until '[ "$(oks "$fk_LOG")" = 2 ]'
	wait_until '[ "$(oks "$tg_LOG")" = 1 ]'
	wait_until '[ "$(xlen hooks-dead)" = 1 ]'
	wait_until '[ "$(pending hooks hooks)" = 0 ]'
	hooks_stats "$n14_STATS" "$BATS_TEST_TMPDIR/st"
	run -0 jq -c '.hooks | [.file, .from, .dead_to, .read, .delivered, .dead, .retried, .rate_limited, .queued, .in_flight, .max_queue]' "$BATS_TEST_TMPDIR/st"
	assert_output "[\"$f\",\"stream:hooks@hooks\",\"stream:hooks-dead\",4,3,1,0,0,0,0,100]"
	run -0 jq -c '.hooks.destinations | keys' "$BATS_TEST_TMPDIR/st"
	assert_output '["chat","gone","w"]'
	run -0 jq -c '.hooks.destinations[] | keys' "$BATS_TEST_TMPDIR/st"
	assert_output '["bucket_wait_us_p99","burst","dead","in_flight","kind","last_status","latency_us_p99","queued","rate","rate_limited","retried","sent"]
["bucket_wait_us_p99","burst","dead","in_flight","kind","last_status","latency_us_p99","queued","rate","rate_limited","retried","sent"]
["bucket_wait_us_p99","burst","dead","in_flight","kind","last_status","latency_us_p99","queued","rate","rate_limited","retried","sent"]'
	run -0 jq -c '.hooks.destinations | [.w.kind, .w.rate, .w.burst, .w.sent, .w.dead, .w.last_status, .w.latency_us_p99 > 0]' "$BATS_TEST_TMPDIR/st"
	assert_output '["webhook",10,10,2,0,200,true]'
	run -0 jq -c '.hooks.destinations | [(.gone.rate * 60 | round), .gone.burst, .gone.sent, .gone.dead, .gone.last_status]' "$BATS_TEST_TMPDIR/st"
	assert_output '[2,3,0,1,404]'
	run -0 jq -c '.hooks.destinations | [.chat.kind, (.chat.rate * 60 | round), .chat.burst, .chat.sent, .chat.last_status]' "$BATS_TEST_TMPDIR/st"
	assert_output '["telegram",30,1,1,200]'
	dead hooks-dead >"$BATS_TEST_TMPDIR/dead"
	run -0 jq -r '.destination' "$BATS_TEST_TMPDIR/dead"
	assert_output gone
	rcli XINFO GROUPS labpulse:hooks >"$BATS_TEST_TMPDIR/groups"
	grep -qx hooks "$BATS_TEST_TMPDIR/groups"
}
