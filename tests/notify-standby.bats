#!/usr/bin/env bats
# notify --db-read: dashboards' snapshots from a streaming standby, token
# checks and LISTEN on the primary; a standby behind the primary is waited
# for, then the primary answers; a standby away sends snapshots to the
# primary. A real primary and standby (helper/pg-ha), the stack's Redis.

setup_file() {
	load helper/common
	load helper/pg-ha
	stack_up
	pgha_primary p1
	migrate-indexes --db "$p1_DB" --dir "$TOP/etc/migrations" up >"$BATS_FILE_TMPDIR/migrate.log" 2>&1 ||
		{ cat "$BATS_FILE_TMPDIR/migrate.log" >&2; return 1; }
	pgha_standby s1 p1
	TOKEN=$(PGHOST=127.0.0.1 PGPORT=$p1_PORT PGUSER=labpulse PGDATABASE=labpulse \
		labpulse instructor add ann RD1 RD2 RD3 RD4 2>/dev/null | tail -n 1)
	export TOKEN
}

teardown_file() {
	load helper/common
	load helper/pg-ha
	stop_tracked
	pgha_down
	stack_down
}

setup() {
	load helper/common
	load helper/pg-ha
	LPWATCH=$TOP/tests/tools/lpwatch
	[ -x "$LPWATCH" ] || { echo "tests/tools/lpwatch is not built: make unit"; return 1; }
}

teardown() {
	stop_tracked
	# a test that paused the standby's replay leaves it replaying
	pgha_sql s1 "select pg_wal_replay_resume()" >/dev/null 2>&1 || true
}

# progress CLASS STUDENT EXECUTIONS: the student's row of CLASS, written
# on the primary.
progress() {
	psql -d "$p1_DB" -XtAq -v ON_ERROR_STOP=1 -c "insert into student_progress
		(class_id, student_id, notebook_path, events, executions, errors,
		 first_activity, last_activity, last_event_type)
		values ('$1', '$2', 'lab1.ipynb', $3, $3, 0, now(), now(), 'cell_executed')
		on conflict (class_id, student_id, notebook_path)
		do update set executions = excluded.executions, events = excluded.events"
}

# replayed: the standby has replayed all the primary has written so far.
replayed() {
	local lsn
	lsn=$(pgha_sql p1 "select pg_current_wal_lsn()")
	pgha_until 60 "[ \"\$(pgha_sql s1 \"select pg_last_wal_replay_lsn() >= '$lsn'\")\" = t ]"
}

# snapshot NAME CLASS: a dashboard of CLASS on notify NAME, until its
# snapshot came; prints the snapshot's students as STUDENT:EXECUTIONS.
snapshot() {
	local url out=$BATS_TEST_TMPDIR/$2.out
	url=${1}_URL
	"$LPWATCH" --timeout 30 --token "$TOKEN" "${!url}/sse?class=$2" >"$out" 2>"$out.err" 3>&- &
	track "$!"
	wait_for grep -qE '"type":"snapshot"|^(close|http) ' "$out" || { cat "$out" "$out.err" >&2; return 1; }
	grep '"type":"snapshot"' "$out" | jq -r '.students[] | "\(.studentId):\(.executions)"' | sort | tr '\n' ' '
}

# stat NAME JQ: a figure of notify NAME's stats.
stat() {
	local sock=${1}_STATS
	stats "${!sock}" | jq -c "$2"
}

@test "snapshots come from the standby; the primary runs none" {
	progress RD1 amy 3
	progress RD1 bob 4
	replayed
	start_notify nr --db "$p1_DB" --db-read "$s1_DB" --from stream:routed
	assert_equal "$(snapshot nr RD1)" "amy:3 bob:4 "
	# the standby ran it, on the read pool's connection ...
	run -0 pgha_sql s1 "select count(*) from pg_stat_activity where application_name = 'labpulse-notify-read' and query like 'SELECT coalesce(jsonb_agg%student_progress%'"
	assert_output 1
	# ... and the primary never saw a snapshot, nor a read pool
	run -0 pgha_sql p1 "select count(*) from pg_stat_activity where application_name = 'labpulse-notify-read' or query like 'SELECT coalesce(jsonb_agg%'"
	assert_output 0
	assert_equal "$(stat nr '.db_read | [.snapshots, .to_db_lagging, .to_db_unavailable]')" '[1,0,0]'
	assert_equal "$(stat nr '.pools["postgres-read"] | [.kind, .sv_max]')" '["postgres",2]'
	assert_equal "$(stat nr '.pools.postgres.kind')" '"postgres"'
}

@test "a snapshot waits for the standby to replay what the primary had, and misses nothing" {
	progress RD2 amy 1
	replayed
	start_notify nw --db "$p1_DB" --db-read "$s1_DB" --db-read-max-lag 1m --from stream:routed
	pgha_sql s1 "select pg_wal_replay_pause()" >/dev/null
	progress RD2 amy 5
	# the standby still says 1: a snapshot read there would miss 4
	assert_equal "$(psql -d "$s1_DB" -XtAqc "select executions from student_progress where class_id = 'RD2'")" 1
	"$LPWATCH" --timeout 30 --token "$TOKEN" "$nw_URL/sse?class=RD2" >"$BATS_TEST_TMPDIR/w" 2>&1 3>&- &
	track "$!"
	wait_until '[ "$(stat nw .db_read.waits)" -ge 1 ]'
	! grep -q '"type":"snapshot"' "$BATS_TEST_TMPDIR/w"
	pgha_sql s1 "select pg_wal_replay_resume()" >/dev/null
	wait_for grep -q '"type":"snapshot"' "$BATS_TEST_TMPDIR/w"
	assert_equal "$(grep '"type":"snapshot"' "$BATS_TEST_TMPDIR/w" | jq -c '[.students[] | .executions]')" '[5]'
	assert_equal "$(stat nw '.db_read | [.snapshots, .to_db_lagging, .to_db_unavailable, .waiting]')" '[1,0,0,0]'
}

@test "a standby behind past --db-read-max-lag: the primary answers the snapshot" {
	progress RD3 amy 1
	replayed
	start_notify nl --db "$p1_DB" --db-read "$s1_DB" --db-read-max-lag 200ms --from stream:routed
	pgha_sql s1 "select pg_wal_replay_pause()" >/dev/null
	progress RD3 amy 7
	assert_equal "$(snapshot nl RD3)" "amy:7 "
	assert_equal "$(stat nl '.db_read | [.snapshots, .to_db_lagging, .to_db_unavailable]')" '[0,1,0]'
	grep -q ': info: --db-read is behind --db; asking --db .* class=RD3 ' "$nl_LOG"
}

@test "a bad --db-read, or its settings without it, is a usage error" {
	run -64 --separate-stderr notify --stats none --db-read 'host=127.0.0.1 bogus=1'
	assert_equal "${stderr_lines[0]}" 'labpulse-notify: error: --db-read: invalid connection option "bogus"'
	run -64 --separate-stderr notify --stats none --db-read 'bogus'
	assert_equal "${stderr_lines[0]}" 'labpulse-notify: error: --db-read: missing "=" after "bogus" in connection info string'
	run -64 --separate-stderr notify --stats none --db-read 'postgresql://127.0.0.1/labpulse?bogus=1'
	assert_equal "${stderr_lines[0]}" 'labpulse-notify: error: --db-read: invalid URI query parameter: "bogus"'
	run -64 --separate-stderr notify --stats none --db-read-max-lag 1s
	assert_equal "${stderr_lines[0]}" 'labpulse-notify: error: --db-read-max-lag: only with --db-read'
	run -64 --separate-stderr notify --stats none --db-read-pool 4
	assert_equal "${stderr_lines[0]}" 'labpulse-notify: error: --db-read-pool: only with --db-read'
	run -64 --separate-stderr notify --stats none --db-read "$s1_DB" --db-read-max-lag 2m
	assert_equal "${stderr_lines[0]}" "labpulse-notify: error: --db-read-max-lag: duration '2m' out of range (0 to 60000)"
}

# last: the standby stays stopped
@test "a standby that went away: snapshots come from the primary, logged once" {
	progress RD4 amy 2
	replayed
	start_notify ng --db "$p1_DB" --db-read "$s1_DB" --from stream:routed
	assert_equal "$(snapshot ng RD4)" "amy:2 "
	pgha_stop s1
	progress RD4 amy 9
	rm -f "$BATS_TEST_TMPDIR/RD4.out"
	assert_equal "$(snapshot ng RD4)" "amy:9 "
	rm -f "$BATS_TEST_TMPDIR/RD4.out"
	assert_equal "$(snapshot ng RD4)" "amy:9 "
	assert_equal "$(stat ng '.db_read | [.snapshots, .to_db_lagging, .to_db_unavailable]')" '[1,0,2]'
	assert_equal "$(stat ng '.pools["postgres-read"].connected')" false
	# once for the connection it had, once for the refused connect:
	# not once for each snapshot
	assert_equal "$(grep -c 'warning: lost PostgreSQL for snapshots (--db-read); asking --db reason="connection to server at .* Connection refused' "$ng_LOG")" 1
	# --db is fine: nothing says PostgreSQL itself was lost
	! grep -q 'lost PostgreSQL;' "$ng_LOG"
}
