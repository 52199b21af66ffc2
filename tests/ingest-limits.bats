#!/usr/bin/env bats
# ingest under abuse: bare connects, trickled requests, one address holding
# many connections or posting too fast, a stream nobody reads; each bound
# answers what the clients retry, and /healthz keeps answering meanwhile.
# Only Redis is needed: a private one per file.

setup_file() {
	load helper/common
	export LABPULSE_REDIS="unix:$BATS_FILE_TMPDIR/r.sock"
	redis-server --port 0 --unixsocket "$BATS_FILE_TMPDIR/r.sock" --dir "$BATS_FILE_TMPDIR" \
		--daemonize yes --pidfile "$BATS_FILE_TMPDIR/redis.pid" --save "" >/dev/null 3>&-
	wait_for redis-cli -s "$BATS_FILE_TMPDIR/r.sock" ping
	track "$(cat "$BATS_FILE_TMPDIR/redis.pid")"
}

teardown_file() {
	load helper/common
	stop_tracked
}

setup() {
	load helper/common
}

# Whatever the outcome: every process the test started is stopped.
teardown() {
	stop_tracked
	exec 5>&- 6>&- 7>&- 8>&- 9>&-
}

# ingest_up NAME ARGS...: start_ingest (which tracks it), and healthy.
ingest_up() {
	local name=$1
	start_ingest "$@"
	wait_for curl -fs -m 5 "$(eval echo \$${name}_URL)/healthz"
}

# st NAME FILTER: a field of NAME's stats.
st() {
	local sock=${1}_STATS
	stats "${!sock}" | jq -c "$2"
}

healthy() {
	get "$1/healthz" --max-time 10 "${@:2}"
	assert_equal "$status_code" 200
}

@test "3000 bare connect/close pairs: a real POST is answered at once and no slot is kept" {
	ingest_up bare --max-conns 64 --timeout 30s
	hp=${bare_URL#http://}
	base=$(st bare .cl_active)
	# bounded: once a server stops accepting, connect() waits in the backlog
	timeout 60 bash -c 'for _ in $(seq 3000); do
		exec 5<>"/dev/tcp/$1/$2" || exit 1; exec 5>&-; done' _ "${hp%:*}" "${hp#*:}" 3>&- &
	flood=$!
	track "$flood"
	healthy "$bare_URL"
	rc=0
	wait "$flood" || rc=$?
	assert_equal "$rc" 0
	post "$bare_URL/api/v1/events" "$(ext_event bare-1)" --max-time 20
	assert_equal "$status_code" 202
	assert_equal "$body" '{"accepted":1,"ids":["bare-1"]}'
	wait_until '[ "$(st bare .cl_active)" = "$base" ]'
	healthy "$bare_URL"
	[ "$(st bare .cl_total)" -ge 3000 ]
}

@test "a trickled request is cut at --request-timeout with 503; others are served meanwhile" {
	ingest_up tr --request-timeout 1s --timeout 30s
	hp=${tr_URL#http://}
	exec 7<>"/dev/tcp/${hp%:*}/${hp#*:}"
	req=$'POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n[{"eventType":"x","emailAddress":"y"}]'
	# one byte every 0.2 s: each read would restart an idle timeout
	( for ((i = 0; i < ${#req}; i++)); do printf '%s' "${req:i:1}" >&7 || exit 0; sleep 0.2; done ) 2>/dev/null 3>&- &
	track "$!"
	t0=$(date +%s%N)
	post "$tr_URL/api/v1/events" "$(ext_event tr-1)" --max-time 10
	assert_equal "$status_code" 202
	healthy "$tr_URL"
	run -0 timeout 10 cat <&7
	t1=$(date +%s%N)
	exec 7>&-
	assert_line --index 0 $'HTTP/1.1 503 Service Unavailable\r'
	assert_line $'Retry-After: 1\r'
	assert_line $'Connection: close\r'
	assert_line --partial '{"error":"request not received in time"}'
	# cut near 1 s after the accept, not after the whole trickle (~20 s)
	[ $(( (t1 - t0) / 1000000 )) -lt 5000 ]
	assert_equal "$(st tr .rejected.request_timeout)" 1
}

@test "a connection that never sends a byte is closed at --request-timeout, and counted" {
	ingest_up nb --request-timeout 1s --timeout 30s
	hp=${nb_URL#http://}
	exec 7<>"/dev/tcp/${hp%:*}/${hp#*:}"
	wait_until '[ "$(st nb .cl_active)" = 1 ]'
	run -0 timeout 10 cat <&7
	assert_output ''
	exec 7>&-
	wait_until '[ "$(st nb .cl_active)" = 0 ]'
	assert_equal "$(st nb .rejected.request_timeout)" 1
}

@test "--max-conns-per-addr: one address at its cap is answered 503, another is served" {
	ingest_up pa --max-conns-per-addr 3
	hp=${pa_URL#http://}
	exec 5<>"/dev/tcp/${hp%:*}/${hp#*:}" 6<>"/dev/tcp/${hp%:*}/${hp#*:}" 7<>"/dev/tcp/${hp%:*}/${hp#*:}"
	wait_until '[ "$(st pa .cl_active)" = 3 ]'
	exec 8<>"/dev/tcp/${hp%:*}/${hp#*:}"
	run -0 timeout 10 cat <&8
	exec 8>&-
	assert_line --index 0 $'HTTP/1.1 503 Service Unavailable\r'
	assert_line $'Retry-After: 1\r'
	assert_line '{"error":"too many connections from your address"}'
	# 127.0.0.2 is another address on the same loopback
	post "$pa_URL/api/v1/events" "$(ext_event pa-1)" --interface 127.0.0.2 --max-time 10
	assert_equal "$status_code" 202
	healthy "$pa_URL" --interface 127.0.0.2
	assert_equal "$(st pa '[.rejected.conns_per_addr, .cl_max_per_addr]')" '[1,3]'
	# the slot is free again as soon as one closes
	exec 5>&-
	wait_until '[ "$(st pa .cl_active)" = 2 ]'
	post "$pa_URL/api/v1/events" "$(ext_event pa-2)" --max-time 10
	assert_equal "$status_code" 202
}

@test "/healthz holds a place in the pipeline: at --max-inflight it is 503 at once, never one more PING" {
	redis-server --port 0 --unixsocket "$BATS_TEST_TMPDIR/r.sock" --dir "$BATS_TEST_TMPDIR" \
		--daemonize yes --pidfile "$BATS_TEST_TMPDIR/r.pid" --save "" >/dev/null 3>&-
	wait_for redis-cli -s "$BATS_TEST_TMPDIR/r.sock" ping >/dev/null
	rpid=$(cat "$BATS_TEST_TMPDIR/r.pid")
	track "$rpid"
	ingest_up hz --redis "unix:$BATS_TEST_TMPDIR/r.sock" --redis-timeout 60s --max-inflight 2
	kill -STOP "$rpid"
	for i in 1 2 3; do
		curl -s -o /dev/null -m 30 "$hz_URL/healthz" 3>&- &
		track "$!"
	done
	wait_until '[ "$(st hz .cl_waiting)" = 2 ]'
	# the third probe was answered at once, and so is this one
	get "$hz_URL/healthz" --max-time 5
	assert_equal "$status_code" 503
	assert_equal "$body" '{"status":"overloaded","redis":"up"}'
	[[ $headers == *"Retry-After: 1"* ]]
	assert_equal "$(st hz .cl_waiting)" 2
	kill -CONT "$rpid"
	healthy "$hz_URL"
}

@test "--rate-per-addr: past the burst, 503 with Retry-After; another address is not slowed" {
	ingest_up ra --rate-per-addr 1/2
	for i in 1 2; do
		post "$ra_URL/api/v1/events" "$(ext_event ra-$i)"
		assert_equal "$status_code" 202
	done
	post "$ra_URL/api/v1/events" "$(ext_event ra-3)"
	assert_equal "$status_code" 503
	assert_equal "$body" '{"error":"too many requests from your address"}'
	[[ $headers =~ $'\n'Retry-After:\ ([0-9]+)$'\n' ]]
	[ "${BASH_REMATCH[1]}" -ge 1 ]
	post "$ra_URL/api/v1/events" "$(ext_event ra-4)" --interface 127.0.0.2
	assert_equal "$status_code" 202
	healthy "$ra_URL"
	assert_equal "$(st ra .rejected.rate_limited_addr)" 1
	# the bucket refills at its rate
	wait_until '[ "$(curl -s -o /dev/null -w %{http_code} -H Content-Type:application/json --data-binary "$(ext_event ra-5)" $ra_URL/api/v1/events)" = 202 ]'
}

@test "--rate-per-token: one token past its burst gets 503 with Retry-After, another token does not" {
	printf 'tok-a CS1\ntok-b CS2\n' >"$BATS_TEST_TMPDIR/tokens"
	ingest_up rt --token-file "$BATS_TEST_TMPDIR/tokens" --rate-per-token 1/1 --rate-per-addr 0
	post "$rt_URL/api/v1/events" "$(ext_event rt-1)" -H 'Authorization: Bearer tok-a'
	assert_equal "$status_code" 202
	post "$rt_URL/api/v1/events" "$(ext_event rt-2)" -H 'Authorization: Bearer tok-a'
	assert_equal "$status_code" 503
	assert_equal "$body" '{"error":"too many requests for this token"}'
	run -0 grep -c '^Retry-After: 1$' <<<"$headers"
	post "$rt_URL/api/v1/events" "$(ext_event rt-3)" -H 'Authorization: Bearer tok-b'
	assert_equal "$status_code" 202
	# a wrong token is refused for itself (401), not counted on a bucket
	post "$rt_URL/api/v1/events" "$(ext_event rt-4)" -H 'Authorization: Bearer nope'
	assert_equal "$status_code" 401
	healthy "$rt_URL"
	assert_equal "$(st rt '[.rejected.rate_limited_token, .rejected.unauthorized]')" '[1,1]'
}

@test "--max-backlog: a stream nobody reads fills to the bound, then 503 with Retry-After" {
	ingest_up bl --to stream:bl --max-backlog 3
	post "$bl_URL/api/v1/events" '[{"eventType":"a","emailAddress":"x"},{"eventType":"a","emailAddress":"y"},{"eventType":"a","emailAddress":"z"}]'
	assert_equal "$status_code" 202
	wait_until '[ "$(st bl .backlog.entries)" = 3 ]'
	post "$bl_URL/api/v1/events" "$(ext_event bl-1)"
	assert_equal "$status_code" 503
	assert_equal "$body" '{"error":"event queue full: too many events wait to be committed"}'
	run -0 grep -c '^Retry-After: 5$' <<<"$headers"
	run -0 redis-cli -s "$BATS_FILE_TMPDIR/r.sock" XLEN labpulse:bl
	assert_output 3
	healthy "$bl_URL"
	assert_equal "$(st bl '[.rejected.backlog_full, .backlog.full]')" '[1,true]'
	# consumers catch up: accepted again
	redis-cli -s "$BATS_FILE_TMPDIR/r.sock" DEL labpulse:bl >/dev/null
	wait_until '[ "$(st bl .backlog.full)" = false ]'
	post "$bl_URL/api/v1/events" "$(ext_event bl-2)"
	assert_equal "$status_code" 202
}

@test "--max-backlog-bytes bounds the stream's memory the same way" {
	ingest_up bb --to stream:bb --max-backlog 0 --max-backlog-bytes 1
	post "$bb_URL/api/v1/events" "$(ext_event bb-1)"
	assert_equal "$status_code" 202
	wait_until '[ "$(st bb .backlog.full)" = true ]'
	post "$bb_URL/api/v1/events" "$(ext_event bb-2)"
	assert_equal "$status_code" 503
	assert_equal "$(st bb .rejected.backlog_full)" 1
}

@test "keep-alive and pipelining: two requests in one write are answered in order" {
	ingest_up pl
	hp=${pl_URL#http://}
	b1=$(ext_event pl-1) b2=$(ext_event pl-2)
	exec 5<>"/dev/tcp/${hp%:*}/${hp#*:}"
	printf 'POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%sPOST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
		"${#b1}" "$b1" "${#b2}" "$b2" >&5
	run -0 timeout 10 cat <&5
	exec 5>&-
	assert_equal "$(grep -c '^HTTP/1.1 202 Accepted' <<<"$output")" 2
	assert_equal "$(grep '^{' <<<"$output" | tr '\n' ' ')" '{"accepted":1,"ids":["pl-1"]} {"accepted":1,"ids":["pl-2"]} '
	# HTTP/1.0 closes unless asked; HEAD has no body
	exec 5<>"/dev/tcp/${hp%:*}/${hp#*:}"
	printf 'HEAD /healthz HTTP/1.0\r\n\r\n' >&5
	run -0 timeout 10 cat <&5
	exec 5>&-
	assert_line --index 0 $'HTTP/1.1 200 OK\r'
	assert_line $'Content-Length: 29\r'
	refute_output --partial '"status"'
	assert_equal "$(st pl '[.cl_total > 0, .rejected.request_timeout]')" '[true,0]'
}

@test "a request the server cannot read is answered 400 or 413 and closed" {
	ingest_up br --max-body 100
	hp=${br_URL#http://}
	exec 5<>"/dev/tcp/${hp%:*}/${hp#*:}"
	printf 'POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n' >&5
	run -0 timeout 10 cat <&5
	exec 5>&-
	assert_line --index 0 $'HTTP/1.1 413 Content Too Large\r'
	assert_line '{"error":"request body too large"}'
	exec 5<>"/dev/tcp/${hp%:*}/${hp#*:}"
	printf 'POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab' >&5
	run -0 timeout 10 cat <&5
	exec 5>&-
	assert_line --index 0 $'HTTP/1.1 400 Bad Request\r'
	assert_equal "$(st br '[.rejected.body_too_large, .rejected.bad_request]')" '[1,1]'
	healthy "$br_URL"
}

@test "bad values of the new flags: the reason and the usage, exit 64" {
	run -64 --separate-stderr ingest --max-conns-per-addr -1
	assert_equal "${stderr_lines[0]}" "labpulse-ingest: error: --max-conns-per-addr: number '-1' out of range (0 to 1000000)"
	[[ $stderr == *"usage: labpulse ingest"* ]]
	run -64 --separate-stderr ingest --request-timeout 0
	assert_equal "${stderr_lines[0]}" "labpulse-ingest: error: --request-timeout: duration '0' out of range (100 to 3600000)"
	run -64 --separate-stderr ingest --request-timeout soon
	[[ ${stderr_lines[0]} == "labpulse-ingest: error: --request-timeout: "* ]]
	run -64 --separate-stderr ingest --rate-per-addr fast
	assert_equal "${stderr_lines[0]}" "labpulse-ingest: error: --rate-per-addr: invalid number 'fast'"
	run -64 --separate-stderr ingest --rate-per-addr 10/0
	assert_equal "${stderr_lines[0]}" "labpulse-ingest: error: --rate-per-addr: number '0' out of range (1 to 10000000)"
	run -64 --separate-stderr ingest --rate-per-token 2000000
	assert_equal "${stderr_lines[0]}" "labpulse-ingest: error: --rate-per-token: number '2000000' out of range (0 to 1000000)"
	run -64 --separate-stderr ingest --max-backlog many
	assert_equal "${stderr_lines[0]}" "labpulse-ingest: error: --max-backlog: invalid number 'many'"
	run -64 --separate-stderr ingest --max-backlog-bytes 3parsecs
	assert_equal "${stderr_lines[0]}" "labpulse-ingest: error: --max-backlog-bytes: invalid size '3parsecs': unknown unit 'parsecs'"
	run -64 --separate-stderr ingest --max-conns 0
	assert_equal "${stderr_lines[0]}" "labpulse-ingest: error: --max-conns: number '0' out of range (1 to 1000000)"
}
