#!/usr/bin/env bats
# The chaos test: a class of 200 students at 20 times the pace of a lesson,
# with 10 dashboards, through the stack of `labpulse up`, while each part of
# it in turn is killed and brought back by `labpulse up`: ingest,
# batch-commit, route and notify with SIGKILL, Redis shut down, PostgreSQL
# stopped with -m immediate. It passes when PostgreSQL holds every event
# acknowledged, once; when no student gave an event up after its retries
# (0.5, 1 and 2 s, as the extension does); and when every dashboard, which
# comes back with its last id, got every message of its class.
# The run lasts about a minute: a load of CHAOS_SECONDS (default 45) and
# its drain.

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
	[ -x "$TOP/bin/loadgen" ] || { echo "bin/loadgen is not built: make bin/loadgen"; return 1; }
}

# Whatever the outcome: loadgen is stopped.
teardown() {
	stop_tracked
}

rcli() { redis-cli -s "${LABPULSE_REDIS#unix:}" "$@"; }

# events acknowledged by ingest so far: the stream keeps them all here
# (LABPULSE_TRIM_INTERVAL=0); nothing while Redis is away
acked_in_stream() { rcli XLEN labpulse:events 2>/dev/null || echo 0; }
routed_in_stream() { rcli XLEN labpulse:routed 2>/dev/null || echo 0; }
committed() {
	psql -tAXc "select count(*) from events where class_id like 'loadgen-%'" 2>/dev/null || echo 0
}

# grows FUNCTION N: until FUNCTION's count is N more than now, which is how
# a part shows it works again.
grows() {
	local from
	from=$($1)
	wait_until "[ \"\$($1)\" -ge $((from + $2)) ]" ||
		{ echo "$1 did not grow by $2 from $from: $($1)" >&2; return 1; }
}

# dashboards_live N: notify serves N dashboards.
dashboards_live() {
	[ "$(stats "$LABPULSE_RUNDIR/notify.sock" 2>/dev/null | jq '.clients.ws + .clients.sse')" = "$1" ]
}

# kill_daemon NAME: SIGKILL, then until its supervisor recorded the death.
kill_daemon() {
	local pid
	pid=$(cat "$LABPULSE_RUNDIR/$1.pid")
	kill -KILL "$pid"
	wait_until "grep -qs . '$LABPULSE_RUNDIR/$1.exit'" ||
		{ echo "$1 (pid $pid) did not die" >&2; return 1; }
	echo "# killed $1 (pid $pid)" >&3
}

# back: labpulse up, which returns once every part answers, and at the
# same addresses as before.
back() {
	local out t0
	t0=$(date +%s%N)
	out=$(labpulse up) || { echo "labpulse up failed" >&2; return 1; }
	[ "$out" = "$(cat "$BATS_TEST_TMPDIR/env")" ] ||
		{ echo "labpulse up moved the stack: $out" >&2; return 1; }
	echo "#   back in $(( ($(date +%s%N) - t0) / 1000000 )) ms" >&3
}

@test "a class through a stack whose every part is killed in turn: nothing lost, missing, doubled or undelivered" {
	labpulse env >"$BATS_TEST_TMPDIR/env"
	json=$BATS_TEST_TMPDIR/chaos.json
	loadgen --students 200 --dashboards 10 --think 0.05 \
		--duration "${CHAOS_SECONDS:-45}s" --timeout 20s \
		--setup --verify-db --seed 12 \
		--slo 'lost=0,missing=0,duplicated=0,delivery>=100%' \
		--quiet --json "$json" \
		</dev/null >"$BATS_TEST_TMPDIR/loadgen.out" 2>"$BATS_TEST_TMPDIR/loadgen.err" 3>&- &
	lg=$!
	track "$lg"
	# the load runs: dashboards live, events acknowledged
	wait_until 'dashboards_live 10'
	grows acked_in_stream 300

	kill_daemon ingest
	back
	grows acked_in_stream 300

	kill_daemon batch-commit
	back
	grows committed 300

	kill_daemon route
	back
	grows routed_in_stream 300

	kill_daemon notify
	back
	# every dashboard comes back, with its last id, and messages flow
	wait_until 'dashboards_live 10'
	grows routed_in_stream 300

	rcli shutdown >/dev/null 2>&1 || true
	wait_until '! rcli ping >/dev/null 2>&1'
	echo "# shut Redis down" >&3
	back
	grows acked_in_stream 300
	grows routed_in_stream 300

	pg_stack -m immediate -w stop >/dev/null
	echo "# stopped PostgreSQL -m immediate" >&3
	back
	grows committed 300

	# every part was killed while the class was running
	kill -0 "$lg" || { cat "$BATS_TEST_TMPDIR/loadgen.err"; false; }
	# the load, its drain and the check of the database: at most the load,
	# then twice the timeout and some
	for _ in $(seq $(( (${CHAOS_SECONDS:-45} + 60) * 10 ))); do
		kill -0 "$lg" 2>/dev/null || break
		sleep 0.1
	done
	rc=0
	wait "$lg" || rc=$?
	cat "$BATS_TEST_TMPDIR/loadgen.err" >&2
	[ -s "$json" ]
	run -0 jq -r '"acked=\(.total.events.acked) lost=\(.total.events.lost) rows=\(.verify_db.rows) missing=\(.verify_db.missing) duplicated=\(.verify_db.duplicated) delivery=\(.delivery_pct)"' "$json"
	echo "# $output" >&3
	# the kills were felt: tries failed, and were retried
	run -0 jq -r '.total.errors | "failed tries: connect=\(.connect) reset=\(.reset) timeout=\(.timeout) 5xx=\(."5xx") total=\(.total)"' "$json"
	echo "# $output" >&3
	[[ $output =~ total=([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -gt 0 ]
	run -0 jq -r '"acked=\(.total.events.acked) lost=\(.total.events.lost) rows=\(.verify_db.rows) missing=\(.verify_db.missing) duplicated=\(.verify_db.duplicated) delivery=\(.delivery_pct)"' "$json"
	[[ $output =~ ^acked=([0-9]+)\ lost=0\ rows=([0-9]+)\ missing=0\ duplicated=0\ delivery=100$ ]]
	[ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ]
	[ "${BASH_REMATCH[1]}" -gt 3000 ]
	# every dashboard lost its notify once at least, and came back
	run -0 jq -r '[.dashboards[] | select(.connected and .reconnects >= 1 and .delivery_pct == 100)] | length' "$json"
	assert_output 10
	assert_equal "$rc" 0
}
