#!/usr/bin/env bats
# tests/bench/lib.sh, the preamble of every benchmark, against a stand-in
# `labpulse` that only writes down how it was called: a benchmark that ends,
# fails or is killed leaves no temp folder and no stack, and keeps its logs
# when a step failed.

setup() {
	load helper/common
	T=$BATS_TEST_TMPDIR
	mkdir -p "$T/top/bin" "$T/top/tests/bench" "$T/tmp"
	cp "$TOP/tests/bench/lib.sh" "$T/top/tests/bench/"
	cat >"$T/top/bin/labpulse" <<-'EOF'
	#!/bin/sh
	echo "$* fsync=${LABPULSE_REDIS_FSYNC:-}" >>"$LABPULSE_HOME/../calls"
	[ "$1" = up ] && [ -n "${FAIL_UP:-}" ] && exit 69
	[ "$1" = up ] && echo "LABPULSE_RUNDIR=$LABPULSE_HOME/run; export LABPULSE_RUNDIR"
	exit 0
	EOF
	chmod +x "$T/top/bin/labpulse"
	# $1: how it ends; $2: whether it starts a stack
	cat >"$T/top/tests/bench/x.sh" <<-'EOF'
	prog="bench-x"
	. "$(dirname "$0")/lib.sh"
	bench_stop() { echo stopped >>"$home/../calls"; }
	keep_dirs=runs
	bench_home lpx
	echo "$home" >"$home/../home"
	mkdir -p "$home/runs" "$home/log"
	echo r >"$home/runs/r"
	echo l >"$home/log/l"
	[ "$2" = up ] && bench_up LABPULSE_REDIS_FSYNC=always
	echo "rundir=${LABPULSE_RUNDIR:-}" >>"$home/../calls"
	case $1 in
	die) die 70 "a step failed" ;;
	hup) kill -HUP $$; sleep 5 ;;
	esac
	info done
	EOF
}

@test "bench lib: a run that ends well leaves nothing, and takes its stack down" {
	run -0 --separate-stderr env TMPDIR="$T/tmp" sh "$T/top/tests/bench/x.sh" ok up
	assert_equal "$stderr" "bench-x: info: done"
	run -0 cat "$T/tmp/calls"
	assert_output "up fsync=always
rundir=$(cat "$T/tmp/home")/run
stopped
down fsync="
	[ ! -e "$(cat "$T/tmp/home")" ]
	run -0 find "$T/tmp" -name 'bench-x-logs.*'
	assert_output ""
}

@test "bench lib: a failed step exits with its status and keeps the logs" {
	run -70 --separate-stderr env TMPDIR="$T/tmp" sh "$T/top/tests/bench/x.sh" die none
	[[ ${stderr_lines[0]} == "bench-x: error: a step failed" ]]
	[ ! -e "$(cat "$T/tmp/home")" ]
	# no stack was started: none is taken down
	run -0 cat "$T/tmp/calls"
	assert_output "rundir=
stopped"
	saved=$(find "$T/tmp" -maxdepth 1 -name 'bench-x-logs.*')
	[ -f "$saved/runs/r" ]
	[ -f "$saved/log/l" ]
	[[ $stderr == *"bench-x: info: logs kept in $saved"* ]]
}

@test "bench lib: a stack that fails to come up is still taken down" {
	run -69 --separate-stderr env TMPDIR="$T/tmp" FAIL_UP=1 sh "$T/top/tests/bench/x.sh" ok up
	[[ ${stderr_lines[0]} == "bench-x: error: labpulse up failed"* ]]
	run -0 grep -c '^down' "$T/tmp/calls"
	assert_output 1
}

@test "bench lib: a hang-up still runs the clean-up" {
	run -129 --separate-stderr env TMPDIR="$T/tmp" sh "$T/top/tests/bench/x.sh" hup up
	run -0 grep -c '^down' "$T/tmp/calls"
	assert_output 1
	[ ! -e "$(cat "$T/tmp/home")" ]
}
