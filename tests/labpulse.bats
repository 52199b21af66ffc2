#!/usr/bin/env bats
# The labpulse front and the local stack it manages.

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

@test "labpulse --help lists the programs and the stack commands" {
	run -0 labpulse --help
	assert_line --index 0 "usage: labpulse COMMAND [ARGS ...]"
	assert_line --regexp '^  ingest +accept events over HTTP and queue them durably$'
	for c in up down status env; do assert_line --regexp "^  $c +"; done
}

@test "an unknown command or no command: the list on stderr, exit 64" {
	run -64 --separate-stderr labpulse frobnicate
	[ -z "$output" ]
	[[ ${stderr_lines[0]} == "labpulse: error: unknown command 'frobnicate'" ]]
	[[ $stderr == *"  ingest "* ]]
	run -64 --separate-stderr labpulse
	[[ $stderr == *"usage: labpulse"* ]]
}

@test "labpulse NAME runs the program, with its arguments" {
	run -0 labpulse ingest --version
	assert_output "labpulse ingest 0.1.0"
	run -0 env LABPULSE_EXEC_PATH="$TOP/bin" labpulse ingest --version
	run -69 --separate-stderr env LABPULSE_EXEC_PATH=/nonexistent labpulse ingest --version
	[[ $stderr == "labpulse: error: cannot run /nonexistent/ingest: No such file or directory" ]]
}

@test "the stack runs PostgreSQL, Redis and ingest, and env points at them" {
	run -0 labpulse status
	since=' +since [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z'
	assert_line --regexp "^postgres +running +pid [0-9]+$since +unix:.*/run/pg/\\.s\\.PGSQL\\.5432\$"
	assert_line --regexp "^redis +running +pid [0-9]+$since +unix:.*/run/redis\\.sock\$"
	assert_line --regexp "^ingest +running +pid [0-9]+$since +${LABPULSE_INGEST_URL}\$"
	run -0 psql -tAXc "select current_user || ' ' || current_database()"
	assert_output "labpulse labpulse"
	run -0 redis-cli -s "${LABPULSE_REDIS#unix:}" config get appendonly
	assert_line --index 1 yes
	run -0 curl -fsS "$LABPULSE_INGEST_URL/healthz"
	assert_output '{"status":"ok","redis":"up"}'
	# PostgreSQL listens on no TCP port
	run -0 psql -tAXc 'show listen_addresses'
	assert_output ""
}

@test "labpulse up twice is harmless: same processes, same assignments" {
	labpulse status >"$BATS_TEST_TMPDIR/before"
	labpulse env >"$BATS_TEST_TMPDIR/env"
	run -0 labpulse up
	assert_output "$(cat "$BATS_TEST_TMPDIR/env")"
	labpulse status >"$BATS_TEST_TMPDIR/after"
	run -0 diff "$BATS_TEST_TMPDIR/before" "$BATS_TEST_TMPDIR/after"
	for v in PGHOST PGPORT PGDATABASE PGUSER LABPULSE_REDIS LABPULSE_INGEST_URL LABPULSE_RUNDIR; do
		grep -q "^export $v='" "$BATS_TEST_TMPDIR/env" || { echo "missing $v"; false; }
	done
}

@test "down stops everything cleanly; up again keeps the data" {
	post "$LABPULSE_INGEST_URL/api/v1/events" "$(ext_event keep-1)"
	assert_equal "$status_code" 202
	# posted to the stream now, not yet read by anyone
	redis-cli -s "${LABPULSE_REDIS#unix:}" XADD labpulse:kept '*' event keep-2 >/dev/null
	ipid=$(cat "$LABPULSE_RUNDIR/ingest.pid")
	run -0 labpulse down
	run -3 labpulse status
	assert_line --regexp '^postgres +stopped'
	assert_line --regexp '^ingest +stopped'
	run -69 --separate-stderr labpulse env
	[[ $stderr == "labpulse: error: the stack in $LABPULSE_HOME is not up; start it with: labpulse up" ]]
	! kill -0 "$ipid" 2>/dev/null
	grep -q 'ingest: info: stopped' "$LABPULSE_HOME/log/ingest.log"
	out=$(labpulse up)
	eval "$out"
	# what was in Redis is still there (an events stream read by every
	# group is trimmed: keep-1 is in PostgreSQL)
	run -0 redis-cli -s "${LABPULSE_REDIS#unix:}" --raw XRANGE labpulse:kept - +
	assert_line --index 2 keep-2
	keep1() { psql -tAXc "select count(*) from events where event_id = 'keep-1'"; }
	wait_until '[ "$(keep1)" = 1 ]'
}

@test "instructor add stores each class byte for byte: a backslash, a quote, a tab, UTF-8" {
	tab=$'\t'
	run -0 --separate-stderr labpulse instructor add "o'hara" 'CS\101' "it's 1" "a${tab}b" 'Café 数学' 'CS\101'
	[[ $output =~ ^[A-Za-z0-9_-]{43}$ ]]
	run -0 psql -tAXc "select c.class_id from instructor_classes c join instructors i on i.id = c.instructor_id where i.name = 'o''hara' order by convert_to(c.class_id, 'UTF8')"
	assert_output "CS\\101
Caf$(printf '\303\251') $(printf '\346\225\260\345\255\246')
a${tab}b
it's 1"
	# and listed back as stored (psql's table shows a tab as spaces)
	run -0 labpulse instructor list
	assert_line --regexp "^ o'hara +\\| CS\\\\101 Café 数学 a +b it's 1 +\\| "
	# the other control characters stay refused
	run -64 --separate-stderr labpulse instructor add mallory $'CS\e[31m'
	assert_equal "$stderr" "labpulse: error: CLASS must not hold control characters"
	run -64 --separate-stderr labpulse instructor add $'mal\tlory' CS1
	assert_equal "$stderr" "labpulse: error: NAME must not hold control characters"
}

@test "LABPULSE_REDIS_FSYNC chooses when Redis syncs its append-only file, on a running stack too" {
	eval "$(labpulse env)"	# an earlier test restarted the stack
	rcli() { redis-cli -s "${LABPULSE_REDIS#unix:}" "$@"; }
	run -0 rcli config get appendfsync
	assert_output "appendfsync
everysec"
	LABPULSE_REDIS_FSYNC=always labpulse up >/dev/null
	run -0 rcli config get appendfsync
	assert_output "appendfsync
always"
	# events still flow
	post "$LABPULSE_INGEST_URL/api/v1/events" "$(ext_event fsync-1)"
	assert_equal "$status_code" 202
	LABPULSE_REDIS_FSYNC=everysec labpulse up >/dev/null
	run -0 rcli config get appendfsync
	assert_line --index 1 everysec
	run -78 --separate-stderr env LABPULSE_REDIS_FSYNC=no labpulse up
	assert_output ''
	assert_equal "$stderr" "labpulse: error: LABPULSE_REDIS_FSYNC must be always or everysec, not 'no'"
	run -0 rcli config get appendfsync
	assert_line --index 1 everysec
}

# status: a daemon's start, or its death, as a time of the stack's
stamp() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
# between TIME0 and now: a time status printed
within() {	# time0 stamp
	local t
	t=$(date -u -d "$2" +%s) || return 1
	[ "$t" -ge "$1" ] && [ "$t" -le "$(date +%s)" ]
}

@test "a daemon killed with -9: status says it died, when and how; up brings it back at the same URL" {
	eval "$(labpulse up)"
	url=$LABPULSE_INGEST_URL
	pid=$(cat "$LABPULSE_RUNDIR/ingest.pid")
	grep -q "^[0-9]* (ingest) " "/proc/$pid/stat"	# the pid file names the daemon
	t0=$(date +%s)
	kill -9 "$pid"
	wait_until "grep -qs . '$LABPULSE_RUNDIR/ingest.exit'"
	run -3 labpulse status
	assert_line --regexp "^ingest +died +pid $pid +at +([0-9TZ:-]+) +killed by signal 9 \\(KILL\\)\$"
	when=$(printf '%s\n' "$output" | sed -n 's/^ingest .* at *\([^ ]*\) .*/\1/p')
	within "$t0" "$when"
	assert_line --regexp '^notify +running +pid [0-9]+ +since '
	grep -q "^labpulse: warning: ingest died pid=$pid signal=KILL\$" "$LABPULSE_HOME/log/ingest.log"
	# another way to die: drained by a SIGTERM that was not down's
	rpid=$(cat "$LABPULSE_RUNDIR/route.pid")
	kill -TERM "$rpid"
	wait_until "grep -qs . '$LABPULSE_RUNDIR/route.exit'"
	run -3 labpulse status
	assert_line --regexp "^route +died +pid $rpid +at +[0-9TZ:-]+ +exited 0\$"
	t1=$(date +%s)
	run -0 --separate-stderr labpulse up
	assert_line "export LABPULSE_INGEST_URL='$url'"
	[[ ${stderr_lines[0]} =~ ^labpulse:\ info:\ ingest\ died\ at\ [0-9TZ:-]+,\ killed\ by\ signal\ 9\ \(KILL\)\;\ starting\ it\ again$ ]]
	[[ ${stderr_lines[1]} =~ ^labpulse:\ info:\ route\ died\ at\ [0-9TZ:-]+,\ exited\ 0\;\ starting\ it\ again$ ]]
	[ "${#stderr_lines[@]}" = 2 ]
	run -0 labpulse status
	assert_line --regexp "^ingest +running +pid [0-9]+ +since ([0-9TZ:-]+) +$url\$"
	refute_line --regexp "^ingest +running +pid $pid "
	when=$(printf '%s\n' "$output" | sed -n 's/^ingest .* since *\([^ ]*\) .*/\1/p')
	within "$t1" "$when"
	assert_line --regexp '^route +running +pid [0-9]+ +since '
	run -0 curl -fsS "$url/healthz"
	post_one stable-1 stable-1
}

@test "ingest and notify keep their URLs across down and up, and after notify dies" {
	eval "$(labpulse up)"
	labpulse env >"$BATS_TEST_TMPDIR/before"
	grep -q "^export LABPULSE_NOTIFY_URL='http://127.0.0.1:[0-9]*'\$" "$BATS_TEST_TMPDIR/before"
	kill -9 "$(cat "$LABPULSE_RUNDIR/notify.pid")"
	wait_until "grep -qs . '$LABPULSE_RUNDIR/notify.exit'"
	labpulse up >"$BATS_TEST_TMPDIR/after-death"
	run -0 diff "$BATS_TEST_TMPDIR/before" "$BATS_TEST_TMPDIR/after-death"
	run -0 curl -fsS "$LABPULSE_NOTIFY_URL/healthz"
	run -0 labpulse down
	run -3 labpulse status
	assert_line --regexp '^notify +stopped$'
	assert_line --regexp '^ingest +stopped$'
	labpulse up >"$BATS_TEST_TMPDIR/after-down"
	run -0 diff "$BATS_TEST_TMPDIR/before" "$BATS_TEST_TMPDIR/after-down"
	run -0 labpulse env
	assert_output "$(cat "$BATS_TEST_TMPDIR/before")"
	run -0 curl -fsS "$LABPULSE_INGEST_URL/healthz"
	run -0 curl -fsS "$LABPULSE_NOTIFY_URL/healthz"
}

@test "a remembered port that another process took: up says which and exits 69, and does not move" {
	eval "$(labpulse up)"
	url=$LABPULSE_NOTIFY_URL port=${LABPULSE_NOTIFY_URL##*:}
	kill -9 "$(cat "$LABPULSE_RUNDIR/notify.pid")"
	wait_until "grep -qs . '$LABPULSE_RUNDIR/notify.exit'"
	socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" /dev/null </dev/null 3>&- &
	squat=$!
	track "$squat"
	wait_until "[ -n \"\$(ss -Hltn 'sport = :$port')\" ]"
	run -69 --separate-stderr labpulse up
	assert_output ''
	assert_equal "$stderr" "labpulse: error: notify's address 127.0.0.1:$port, kept in $LABPULSE_HOME/notify.listen, is taken by another process (socat, pid $squat); stop it, or remove that file to let up choose a new port"
	run -3 labpulse status
	assert_line --regexp '^notify +died '
	kill "$squat"
	wait_until "! kill -0 $squat 2>/dev/null"
	run -0 labpulse up
	assert_line "export LABPULSE_NOTIFY_URL='$url'"
	run -0 curl -fsS "$url/healthz"
}
