#!/usr/bin/env bats
# Trimming the events stream (and route's hooks stream) to the oldest entry
# some consumer group still needs: batch-commit and route both trim, never
# past a lagging group's position or a pending entry, never a stream with no
# group. Against the real Redis of a private stack; each test uses streams
# of its own and runs its own batch-commit and route, stopped whatever the
# outcome.

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
}

# Every process a test starts (start_bc, start_route) is stopped before
# the next test.
teardown() {
	stop_tracked
}

rcli() {
	redis-cli -s "${LABPULSE_REDIS#unix:}" --raw "$@"
}

# start_commit NAME STREAM [ARGS...]: a batch-commit of the group commit
# of labpulse:STREAM, trimming every 100ms; sets ${NAME}_PID and _STATS.
start_commit() {
	local name=$1 s=$2; shift 2
	start_bc "$name" --from "stream:$s@commit" --consumer "bc-$s" \
		--trim-interval 100ms "$@"
}

# start_rt NAME STREAM [ARGS...]: a route of the group route of
# labpulse:STREAM, writing STREAM-out and STREAM-hooks, trimming every
# 100ms; sets ${NAME}_PID, _LOG and _STATS.
start_rt() {
	local name=$1 s=$2; shift 2
	start_route "$name" --from "stream:$s@route" --to "stream:$s-out" \
		--hooks "stream:$s-hooks" --consumer "rt-$s" --trim-interval 100ms \
		--rules "$TOP/etc/labpulse/route.jq" "$@"
}

# stop PID: SIGTERM, and it exits 0.
stop() {
	local rc=0
	kill -TERM "$1"
	wait "$1" || rc=$?
	assert_equal "$rc" 0
}

# add STREAM FROM TO: the events FROM..TO-1 of class STREAM as ingest queues
# them; prints their ids.
add() {
	local s=$1 i
	for ((i = $2; i < $3; i++)); do
		rcli XADD "labpulse:$s" '*' event "{\"eventId\":\"$s-$i\",\"eventType\":\"cell_executed\",\"eventTime\":\"2026-11-25T10:15:30.123Z\",\"receivedAt\":\"2026-11-25T10:15:30.200000Z\",\"classId\":\"$s\",\"studentId\":\"s$i@example.edu\",\"notebookPath\":\"lab1.ipynb\",\"cellIndex\":$i,\"hasError\":false}"
	done
}

# sget SOCK FIELD: a number of a stats object, 0 when absent.
sget() {
	stats "$1" | jq -r ".$2 // 0"
}

# trims_after SOCK N: until the process has run N more trims than now.
trims_after() {
	local t0
	t0=$(sget "$1" trims)
	wait_until "[ \"\$(sget '$1' trims)\" -ge $((t0 + $2)) ]"
}

@test "both groups done: the stream shrinks to nothing, and the entries removed are counted" {
	start_commit bc1 trim1
	start_rt rt1 trim1
	add trim1 0 40 >/dev/null
	wait_rows trim1 40
	wait_until '[ "$(xlen trim1)" = 0 ]'
	wait_until '[ "$(xlen trim1-out)" = 40 ]'
	# each entry removed once, by one trimmer or the other
	trimmed=$(( $(sget "$bc1_STATS" trimmed) + $(sget "$rt1_STATS" trimmed) ))
	assert_equal "$trimmed" 40
	# the groups stay, at the end of the stream
	run -0 rcli XINFO STREAM labpulse:trim1
	assert_line --index 1 0
	stop "$bc1_PID"
	stop "$rt1_PID"
}

@test "route stopped, its group lagging: nothing after its position is trimmed; back, the rest goes" {
	start_commit bc2 trim2
	start_rt rt2 trim2
	add trim2 0 10 >/dev/null
	wait_until '[ "$(xlen trim2)" = 0 ]'
	stop "$rt2_PID"
	add trim2 10 30 >"$BATS_TEST_TMPDIR/ids"
	wait_rows trim2 30
	wait_until '[ "$(pending trim2 commit)" = 0 ]'
	# two whole trims after batch-commit is done with every entry
	trims_after "$bc2_STATS" 2
	assert_equal "$(xlen trim2)" 20
	run -0 rcli XRANGE labpulse:trim2 - + COUNT 1
	assert_line --index 0 "$(head -n 1 "$BATS_TEST_TMPDIR/ids")"
	# route back under the same name: it reads the 20, and they go
	start_rt rt2b trim2
	wait_until '[ "$(xlen trim2-out)" = 30 ]'
	wait_until '[ "$(xlen trim2)" = 0 ]'
	stop "$bc2_PID"
	stop "$rt2b_PID"
}

@test "entries delivered and not acknowledged survive, and so does all after a lagging group's position" {
	# a third group, as another application reading the stream would be
	rcli XGROUP CREATE labpulse:trim3 audit 0 MKSTREAM >/dev/null
	mapfile -t ids < <(add trim3 0 10)
	start_commit bc3 trim3
	start_rt rt3 trim3
	# audit reads 3, acknowledges the first only
	rcli XREADGROUP GROUP audit a1 COUNT 3 STREAMS labpulse:trim3 '>' >/dev/null
	rcli XACK labpulse:trim3 audit "${ids[0]}" >/dev/null
	wait_rows trim3 10
	wait_until '[ "$(pending trim3 commit)" = 0 ] && [ "$(pending trim3 route)" = 0 ]'
	trims_after "$bc3_STATS" 2
	trims_after "$rt3_STATS" 2
	# the two pending (ids 1 and 2) and the 7 after audit's position stay
	assert_equal "$(xlen trim3)" 9
	run -0 rcli XRANGE labpulse:trim3 "${ids[1]}" "${ids[2]}"
	assert_line --index 0 "${ids[1]}"
	assert_line --index 3 "${ids[2]}"
	# acknowledged, they go; what audit has not read stays
	rcli XACK labpulse:trim3 audit "${ids[1]}" "${ids[2]}" >/dev/null
	wait_until '[ "$(xlen trim3)" = 7 ]'
	run -0 rcli XRANGE labpulse:trim3 - + COUNT 1
	assert_line --index 0 "${ids[3]}"
	# read and acknowledged all: nothing left
	rcli XREADGROUP GROUP audit a1 COUNT 100 STREAMS labpulse:trim3 '>' >/dev/null
	rcli XACK labpulse:trim3 audit "${ids[@]:3}" >/dev/null
	wait_until '[ "$(xlen trim3)" = 0 ]'
	stop "$bc3_PID"
	stop "$rt3_PID"
}

@test "the hooks stream: left whole while no group reads it, then trimmed to what its group needs" {
	f=$BATS_TEST_TMPDIR/hooks.jq
	echo '{topic: "class:\(.classId)", id: .eventId}, {topic: "hook:chat", id: .eventId}' >"$f"
	start_rt rt4 trim4 --rules "$f"
	add trim4 0 6 >/dev/null
	wait_until '[ "$(xlen trim4-hooks)" = 6 ]'
	wait_until '[ "$(xlen trim4)" = 0 ]'
	trims_after "$rt4_STATS" 2
	assert_equal "$(xlen trim4-hooks)" 6
	# notify's group made from the start, 2 read and not acknowledged
	rcli XGROUP CREATE labpulse:trim4-hooks hooks 0 >/dev/null
	mapfile -t hk < <(rcli XRANGE labpulse:trim4-hooks - + | awk 'NR % 5 == 1')
	rcli XREADGROUP GROUP hooks n1 COUNT 2 STREAMS labpulse:trim4-hooks '>' >/dev/null
	trims_after "$rt4_STATS" 2
	assert_equal "$(xlen trim4-hooks)" 6
	rcli XACK labpulse:trim4-hooks hooks "${hk[0]}" >/dev/null
	wait_until '[ "$(xlen trim4-hooks)" = 5 ]'
	assert_equal "$(sget "$rt4_STATS" trimmed_hooks)" 1
	# the routed stream (--to) has no group: untouched
	assert_equal "$(xlen trim4-out)" 6
	stop "$rt4_PID"
}

@test "--trim-interval 0 never trims" {
	start_bc bc5 --from stream:trim5@commit --consumer bc-trim5 --trim-interval 0
	add trim5 0 5 >/dev/null
	wait_rows trim5 5
	wait_until '[ "$(pending trim5 commit)" = 0 ]'
	# a second batch-commit on another stream, trimming, shows time passed
	start_commit bc5b trim5b
	trims_after "$bc5b_STATS" 3
	assert_equal "$(xlen trim5)" 5
	assert_equal "$(sget "$bc5_STATS" trims)" 0
	stop "$bc5_PID"
	stop "$bc5b_PID"
}

@test "bad --trim-interval: usage and 64" {
	run -64 --separate-stderr batch-commit --trim-interval 25h
	assert_output ''
	[[ $stderr == *"--trim-interval: duration '25h' out of range (0 to 86400000)"*"usage: labpulse batch-commit"* ]]
	run -64 --separate-stderr batch-commit --trim-interval soon
	[[ $stderr == *"--trim-interval: invalid duration 'soon'"* ]]
	run -64 --separate-stderr route --trim-interval -1s
	[[ $stderr == *"--trim-interval: invalid duration '-1s'"*"usage: labpulse route"* ]]
}
