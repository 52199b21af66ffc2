#!/usr/bin/env bats
# ingest --redis-wait: a 202 only once the replicas hold the events, one
# WAIT shared by the requests that came meanwhile, 503 when they fall
# behind. A real primary and a real replica of its own, on free ports.

setup_file() {
	load helper/common
	local d=$BATS_FILE_TMPDIR p q
	p=$(free_port)
	q=$(free_port)
	[ "$p" != "$q" ]
	mkdir -p "$d/primary" "$d/replica"
	redis-server --port "$p" --bind 127.0.0.1 --dir "$d/primary" --save "" \
		--appendonly no --daemonize yes --pidfile "$d/primary.pid" \
		--logfile "$d/primary.log" >/dev/null 3>&-
	wait_for redis-cli -p "$p" ping
	track "$(cat "$d/primary.pid")"
	redis-server --port "$q" --bind 127.0.0.1 --dir "$d/replica" --save "" \
		--appendonly no --replicaof 127.0.0.1 "$p" --daemonize yes \
		--pidfile "$d/replica.pid" --logfile "$d/replica.log" >/dev/null 3>&-
	wait_for redis-cli -p "$q" ping
	track "$(cat "$d/replica.pid")"
	wait_until '[[ "$(redis-cli -p "$q" info replication)" == *master_link_status:up* ]]'
	wait_until '[[ "$(redis-cli -p "$p" info replication)" == *connected_slaves:1* ]]'
	wait_until 'replicas_acked "$p" 1'
	echo "$p" >"$d/primary.port"
	echo "$q" >"$d/replica.port"
}

teardown_file() {
	load helper/common
	resume_all
	stop_tracked
}

setup() {
	load helper/common
	P=$(cat "$BATS_FILE_TMPDIR/primary.port")
	Q=$(cat "$BATS_FILE_TMPDIR/replica.port")
	REDIS=redis://127.0.0.1:$P/0
}

# A stopped Redis is resumed whatever the outcome, before anything else.
resume_all() {
	local f
	for f in "$BATS_FILE_TMPDIR"/primary.pid "$BATS_FILE_TMPDIR"/replica.pid; do
		[ -f "$f" ] && kill -CONT "$(cat "$f")" 2>/dev/null
	done
	return 0
}

teardown() {
	resume_all
	stop_tracked
}

replica_pid() {
	cat "$BATS_FILE_TMPDIR/replica.pid"
}

# ingest_wait NAME ARGS...: an ingest on the primary, healthy; the
# per-address bounds off, for the tests' many POSTs from one address.
ingest_wait() {
	local name=$1 url; shift
	start_ingest "$name" --redis "$REDIS" --rate-per-addr 0 \
		--max-conns-per-addr 0 "$@"
	url=${name}_URL
	wait_for curl -fs -m 5 -o /dev/null "${!url}/healthz"
}

# st NAME FILTER: a field of NAME's stats.
st() {
	local sock=${1}_STATS
	stats "${!sock}" | jq -c "$2"
}

# has PORT ID: the stream on the Redis at PORT holds the event ID.
has() {
	local out
	out=$(redis-cli -p "$1" --raw XRANGE labpulse:events - +)
	[[ "$out" == *"\"eventId\":\"$2\""* ]]
}

# post_bg N URL ID: a POST in the background, its status into code.N and
# its body into body.N; its pid tracked and added to $bg.
post_bg() {
	curl -s --max-time 60 -o "$BATS_TEST_TMPDIR/body.$1" -w '%{http_code}' -X POST \
		-H 'Content-Type: application/json' --data-binary "$(ext_event "$3")" \
		"$2/api/v1/events" >"$BATS_TEST_TMPDIR/code.$1" 3>&- &
	bg="$bg $!"
	track "$!"
}

# posts_bg N NAME: N POSTs in the background to the ingest NAME, the
# events NAME-1 to NAME-N, each as post_bg; $bg is set anew.
posts_bg() {
	local url=${2}_URL i
	bg=
	for i in $(seq "$1"); do
		post_bg "$i" "${!url}" "$2-$i"
	done
}

# codes_are N CODE: the POSTs 1 to N of posts_bg were all answered CODE.
codes_are() {
	local i
	for i in $(seq "$1"); do
		assert_equal "$(cat "$BATS_TEST_TMPDIR/code.$i")" "$2"
	done
}

@test "--redis-wait 1: 202 once the replica holds the event" {
	ingest_wait w1 --redis-wait 1
	post "$w1_URL/api/v1/events" "$(ext_event w1-a)"
	assert_equal "$status_code" 202
	assert_equal "$body" '{"accepted":1,"ids":["w1-a"]}'
	# the promise: no polling, the replica has it when the 202 comes
	has "$Q" w1-a
	# a batch is one transaction, covered the same way
	b1=$(ext_event w1-b)
	b2=$(ext_event w1-c)
	post "$w1_URL/api/v1/events" "[${b1:1:-1},${b2:1:-1}]"
	assert_equal "$status_code" 202
	has "$Q" w1-b
	has "$Q" w1-c
	assert_equal "$(st w1 '[.wait_sent >= 2, .wait_short, .posts_accepted]')" '[true,0,2]'
}

@test "a stopped replica: 503 not replicated, counted; 202 again once it is back" {
	ingest_wait w2 --redis-wait 1 --redis-wait-timeout 300ms
	post "$w2_URL/api/v1/events" "$(ext_event w2-a)"
	assert_equal "$status_code" 202
	kill -STOP "$(replica_pid)"
	post "$w2_URL/api/v1/events" "$(ext_event w2-b)"
	assert_equal "$status_code" 503
	assert_equal "$body" '{"error":"not replicated","replicas":0,"wanted":1}'
	grep -qx 'Retry-After: 1' <<<"$headers"
	# Redis took the events: the primary holds them, a retry is harmless
	has "$P" w2-b
	post "$w2_URL/api/v1/events" "$(ext_event w2-c)"
	assert_equal "$status_code" 503
	assert_equal "$(st w2 '[.wait_short, .rejected.not_replicated, .posts_accepted, .redis.timeouts]')" '[2,2,1,0]'
	grep -q 'warning: writes not replicated replicas=0 wanted=1; answering 503' "$w2_LOG"
	kill -CONT "$(replica_pid)"
	wait_until 'post "$w2_URL/api/v1/events" "$(ext_event w2-d)"; [ "$status_code" = 202 ]'
	has "$Q" w2-d
	grep -q 'info: writes replicated again replicas=1 wanted=1' "$w2_LOG"
}

@test "--redis-wait 2 with one replica: 503 naming the one" {
	ingest_wait w3 --redis-wait 2 --redis-wait-timeout 100ms
	post "$w3_URL/api/v1/events" "$(ext_event w3-a)"
	assert_equal "$status_code" 503
	assert_equal "$body" '{"error":"not replicated","replicas":1,"wanted":2}'
	assert_equal "$(st w3 '[.wait_sent, .wait_short, .rejected.not_replicated]')" '[1,1,1]'
}

@test "one WAIT covers every request that came while it was out" {
	# the replica holds the first WAIT until the other 49 POSTs are in
	# hand, queued in Redis behind it; the next WAIT answers for all 49
	ingest_wait w4 --redis-wait 1 --redis-wait-timeout 50s --redis-timeout 1m
	kill -STOP "$(replica_pid)"
	posts_bg 50 w4
	wait_until '[ "$(st w4 .cl_waiting)" = 50 ]'
	assert_equal "$(st w4 .wait_sent)" 1
	kill -CONT "$(replica_pid)"
	# shellcheck disable=SC2086
	wait $bg
	for i in $(seq 50); do
		assert_equal "$(cat "$BATS_TEST_TMPDIR/code.$i")" 202
		assert_equal "$(cat "$BATS_TEST_TMPDIR/body.$i")" "{\"accepted\":1,\"ids\":[\"w4-$i\"]}"
	done
	assert_equal "$(st w4 '[.posts_accepted, .wait_sent, .wait_short]')" '[50,2,0]'
	has "$Q" w4-1
	has "$Q" w4-50
}

@test "200 concurrent POSTs: all 202, all in the replica" {
	ingest_wait w5 --redis-wait 1
	posts_bg 200 w5
	# shellcheck disable=SC2086
	wait $bg
	codes_are 200 202
	# at most one WAIT a transaction, however they arrive
	run -0 jq -e '.posts_accepted == 200 and .wait_sent <= 200 and .wait_short == 0' \
		<<<"$(stats "$w5_STATS")"
	n=0
	for i in $(seq 200); do
		has "$Q" "w5-$i" && n=$((n + 1))
	done
	assert_equal "$n" 200
}

@test "WAITs that run out their time are not a silent Redis: no reconnect" {
	# a POST behind a WAIT waits for it and for its own: longer than
	# --redis-timeout in all, though Redis never went quiet that long
	ingest_wait w6 --redis-wait 1 --redis-wait-timeout 600ms --redis-timeout 1s
	kill -STOP "$(replica_pid)"
	posts_bg 10 w6
	# shellcheck disable=SC2086
	wait $bg
	codes_are 10 503
	for i in $(seq 10); do
		assert_equal "$(cat "$BATS_TEST_TMPDIR/body.$i")" '{"error":"not replicated","replicas":0,"wanted":1}'
	done
	assert_equal "$(st w6 '[.redis.timeouts, .redis.losses, .rejected.not_replicated]')" '[0,0,10]'
}

@test "a silent primary under --redis-wait: 503 after --redis-timeout" {
	ingest_wait w7 --redis-wait 1 --redis-wait-timeout 200ms --redis-timeout 1s
	kill -STOP "$(cat "$BATS_FILE_TMPDIR/primary.pid")"
	post "$w7_URL/api/v1/events" "$(ext_event w7-a)"
	assert_equal "$status_code" 503
	assert_equal "$body" '{"error":"events not queued: Redis: Redis did not answer in time"}'
	grep -q 'Redis did not answer in 1000 ms' "$w7_LOG"
	kill -CONT "$(cat "$BATS_FILE_TMPDIR/primary.pid")"
	wait_until 'post "$w7_URL/api/v1/events" "$(ext_event w7-b)"; [ "$status_code" = 202 ]'
	has "$Q" w7-b
}

@test "bad --redis-wait and --redis-wait-timeout: usage errors" {
	run -64 --separate-stderr ingest --stats none --redis-wait 17
	assert_equal "${stderr_lines[0]}" "labpulse-ingest: error: --redis-wait: number '17' out of range (0 to 16)"
	run -64 --separate-stderr ingest --stats none --redis-wait -1
	assert_equal "${stderr_lines[0]}" "labpulse-ingest: error: --redis-wait: number '-1' out of range (0 to 16)"
	run -64 --separate-stderr ingest --stats none --redis-wait one
	assert_equal "${stderr_lines[0]}" "labpulse-ingest: error: --redis-wait: invalid number 'one'"
	run -64 --separate-stderr ingest --stats none --redis-wait-timeout 0
	assert_equal "${stderr_lines[0]}" "labpulse-ingest: error: --redis-wait-timeout: duration '0' out of range (1 to 60000)"
	run -64 --separate-stderr ingest --stats none --redis-wait-timeout 2m
	assert_equal "${stderr_lines[0]}" "labpulse-ingest: error: --redis-wait-timeout: duration '2m' out of range (1 to 60000)"
	# a WAIT as long as --redis-timeout would pass for a silent Redis
	run -64 --separate-stderr ingest --stats none --redis "$REDIS" --redis-wait 1 --redis-wait-timeout 5s
	assert_equal "${stderr_lines[0]}" "labpulse-ingest: error: --redis-wait-timeout: 5000ms is not shorter than --redis-timeout 5000ms"
	run -64 --separate-stderr ingest --stats none --redis "$REDIS" --redis-wait 1 --redis-wait-timeout 1m --redis-timeout 30s
	assert_equal "${stderr_lines[0]}" "labpulse-ingest: error: --redis-wait-timeout: 60000ms is not shorter than --redis-timeout 30000ms"
	run -64 --separate-stderr ingest --stats none --redis-wait 1 --to -
	assert_equal "${stderr_lines[0]}" "labpulse-ingest: error: --redis-wait: replicas hold a stream, not --to -"
	# without --redis-wait the timeout is not used, so not checked
	ingest_wait w8 --redis-wait-timeout 10s --redis-timeout 1s
	post "$w8_URL/api/v1/events" "$(ext_event w8-a)"
	assert_equal "$status_code" 202
	assert_equal "$(st w8 .wait_sent)" 0
}
