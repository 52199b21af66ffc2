#!/usr/bin/env bats
# notify after a restart: every dashboard comes back at once, and all of them
# are subscribed and resumed, their tokens asked of PostgreSQL a few at a
# time rather than one query each behind the pool. lpstorm (tests/tools)
# holds the dashboards; tests/bench/storm.sh times a thousand.

setup_file() {
	load helper/common
	stack_up
	TOKENS=()
	for i in 0 1 2 3 4 5 6 7 8 9; do
		TOKENS+=("$(labpulse instructor add "storm$i" STORM 2>/dev/null | tail -n 1)")
	done
	printf '%s\n' "${TOKENS[@]}" >"$BATS_FILE_TMPDIR/tokens"
}

teardown_file() {
	load helper/common
	stop_tracked
	stack_down
}

setup() {
	load helper/common
	LPSTORM=$TOP/tests/tools/lpstorm
	mapfile -t TOKENS <"$BATS_FILE_TMPDIR/tokens"
}

teardown() {
	stop_tracked
}

# run_notify PORT LOG: a notify of the test's own on a port it keeps across
# restarts, with room for the storm; sets NPID.
run_notify() {
	notify --listen "127.0.0.1:$1" --stats "$BATS_TEST_TMPDIR/n.sock" \
		--max-clients 2000 --max-conns-per-addr 0 2>>"$2" 3>&- &
	NPID=$!
	track "$NPID"
	wait_for curl -fs -o /dev/null "http://127.0.0.1:$1/healthz"
}

routed_add() {
	redis-cli -s "${LABPULSE_REDIS#unix:}" XADD labpulse:routed '*' \
		topic class:STORM msg "{\"kind\":\"activity\",\"eventId\":\"$1\"}"
}

@test "a storm of 300 dashboards after kill -9 and a restart: all subscribed and resumed, nothing twice, tokens asked once each" {
	port=$(free_port)
	log=$BATS_TEST_TMPDIR/notify.log
	run_notify "$port" "$log"
	args=()
	for t in "${TOKENS[@]}"; do args+=(--token "$t"); done
	"$LPSTORM" --count 300 --rounds 2 --timeout 90 --target-file "$BATS_TEST_TMPDIR/target" \
		"${args[@]}" "http://127.0.0.1:$port/ws?class=STORM" \
		>"$BATS_TEST_TMPDIR/storm" 2>"$BATS_TEST_TMPDIR/storm.err" 3>&- &
	spid=$!
	track "$spid"
	for _ in $(seq 600); do
		grep -q '"event": "resumed", "round": 0' "$BATS_TEST_TMPDIR/storm" && break
		kill -0 "$spid" 2>/dev/null || break
		sleep 0.1
	done
	grep -q '"event": "resumed", "round": 0' "$BATS_TEST_TMPDIR/storm" || {
		cat "$BATS_TEST_TMPDIR/storm" "$BATS_TEST_TMPDIR/storm.err" >&2; false; }
	routed_add before-1 >/dev/null
	kill -KILL "$NPID"
	# what the dashboards must get when they come back: sent while notify
	# was away
	for i in 1 2 3 4 5; do last=$(routed_add "away-$i"); done
	echo "$last" >"$BATS_TEST_TMPDIR/target"
	run_notify "$port" "$log"
	wait "$spid" || { cat "$BATS_TEST_TMPDIR/storm" "$BATS_TEST_TMPDIR/storm.err" >&2; false; }
	run -0 jq -c 'select(.event == "resumed") | [.round, .n, .target]' "$BATS_TEST_TMPDIR/storm"
	assert_equal "${lines[1]}" "[1,300,\"$last\"]"
	run -0 jq -c 'select(.event == "summary") | [.messages, .duplicates, .refused]' "$BATS_TEST_TMPDIR/storm"
	# before-1 once, live; away-1..5 once each, replayed
	assert_output "[1800,0,0]"
	stats "$BATS_TEST_TMPDIR/n.sock" >"$BATS_TEST_TMPDIR/st"
	# ten tokens, each asked once by the restarted notify; every dashboard
	# resumed from the stream, none closed for want of the database
	assert_equal "$(jq -c '[.token_cache.asked, .token_cache.misses + .token_cache.hits, .replays, .closed_unavailable, .snapshots]' "$BATS_TEST_TMPDIR/st")" '[10,300,300,0,0]'
	[ "$(jq .token_cache.batches "$BATS_TEST_TMPDIR/st")" -le 10 ]
	kill -TERM "$NPID"
	wait "$NPID"
}
