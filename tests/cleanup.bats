#!/usr/bin/env bats
# A failing test leaves no labpulse process running: a test file that fails
# on purpose with a stack and daemons of its own (tests/fixtures/) is run by
# bats, and afterwards none of the processes it started is left.

setup() {
	load helper/common
	CLEANUP_OUT=$BATS_TEST_TMPDIR/out
	mkdir "$CLEANUP_OUT"
	export CLEANUP_OUT
}

# Should the fixture leave anything, this test stops it, and its stack.
teardown() {
	local p home
	for p in $(cat "$CLEANUP_OUT/pids" 2>/dev/null); do track "$p"; done
	stop_tracked
	home=$(cat "$CLEANUP_OUT/home" 2>/dev/null) || home=
	if [ -n "$home" ] && [ -d "$home" ]; then
		LABPULSE_HOME=$home labpulse down >/dev/null 2>&1 || true
		rm -rf "$home"
	fi
	[ ! -f "$CLEANUP_OUT/tmp" ] || rm -rf "$(cat "$CLEANUP_OUT/tmp")"
}

# alive PID: a process, not a zombie.
alive() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	[ "${s%% *}" != Z ]
}

@test "a bats file whose test fails with daemons running leaves none of them, nor its stack" {
	run -1 bats "$TOP/tests/fixtures/fails-with-daemons.bats" 3>&-
	# it failed where it was meant to, with everything started
	assert_line 'not ok 1 a failing test with daemons of its own, a raw one among them'
	assert_line --partial "  \`assert_equal \"daemons running\" \"a test that failed\"' failed"
	# 4 daemons of the test's own, the raw ingest, a client and its child;
	# the stack's PostgreSQL, Redis and 4 daemons; PostgreSQL's own processes
	[ "$(wc -l <"$CLEANUP_OUT/pids")" -ge 14 ]
	for p in $(cat "$CLEANUP_OUT/pids"); do
		! alive "$p" || { ps -o pid,stat,args -p "$p"; false; }
	done
	# the stack's home went with the stack, and no process names it (a
	# supervisor, a PostgreSQL server process)
	home=$(cat "$CLEANUP_OUT/home")
	[ -n "$home" ] && [ ! -e "$home" ]
	run -1 pgrep -a -f -- "$home/"
}

@test "a stack that fails to come up half-way is taken down at once, not left to a teardown" {
	# a folder PostgreSQL's unprivileged user can reach, as stack_up's own
	CLEANUP_TMP=$(mktemp -d "${TMPDIR:-/tmp}/labpulse-cleanup.XXXXXX")
	chmod 755 "$CLEANUP_TMP"
	echo "$CLEANUP_TMP" >"$CLEANUP_OUT/tmp"
	# PostgreSQL and Redis start, then ingest refuses its flags
	TMPDIR=$CLEANUP_TMP LABPULSE_INGEST_FLAGS=--no-such-flag run -1 --separate-stderr stack_up
	[[ $stderr == *"labpulse: error: ingest did not become ready; see "*$'\nlabpulse up failed' ]]
	home=$(echo "$CLEANUP_TMP"/labpulse-test.*)
	[ -d "$home" ]
	echo "$home" >"$CLEANUP_OUT/home"
	[ -d "$home/log" ] && [ -s "$home/log/ingest.log" ]
	run -3 env LABPULSE_HOME="$home" labpulse status
	assert_line --regexp '^postgres +stopped'
	assert_line --regexp '^redis +stopped'
	refute_output --partial running
	run -1 pgrep -a -f -- "$home/"
}
