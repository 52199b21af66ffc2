#!/usr/bin/env bats
# batch-commit: every accepted event in PostgreSQL exactly once, whatever
# crashes; against the real PostgreSQL and Redis of a private stack.

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

# A test's consumers must be gone before the next test reads the streams.
teardown() {
	stop_tracked
}

# The progress table against what the events table says, row for row.
progress_mismatches() {
	psql -tAXc "
	select count(*) from (
	  select class_id, student_id, coalesce(notebook_path, '') as nb,
	         count(*) as ev,
	         count(*) filter (where event_type = 'cell_executed') as ex,
	         count(*) filter (where has_error) as er,
	         min(event_time) as f, max(event_time) as l
	  from events where class_id = '$1' group by 1, 2, 3) g
	full join (select * from student_progress where class_id = '$1') p
	  on (p.class_id, p.student_id, p.notebook_path) = (g.class_id, g.student_id, g.nb)
	where g.ev is distinct from p.events or g.ex is distinct from p.executions
	   or g.er is distinct from p.errors or g.f is distinct from p.first_activity
	   or g.l is distinct from p.last_activity"
}

@test "10,000 events through ingest: one row each, and student_progress agrees with events" {
	acc=$(post_many tenk 0 10000 100)
	assert_equal "$acc" 10000
	wait_rows tenk 10000 120
	run -0 psql -tAXc "select count(distinct (student_id, event_id)) from events where class_id = 'tenk'"
	assert_output 10000
	run -0 progress_mismatches tenk
	assert_output 0
	run -0 psql -tAXc "select sum(events), sum(errors) from student_progress where class_id = 'tenk'"
	assert_output "10000|$(( (10000 + 6) / 7 ))"
}

@test "the same events posted twice are stored once; one eventId from two students is two rows" {
	post_many twice 0 200 20 >/dev/null
	post_many twice 0 200 20 >/dev/null
	post "$LABPULSE_INGEST_URL/api/v1/events" '[{"eventId":"test-event-1","eventType":"cell_executed","classId":"twice","emailAddress":"ann@x.edu"},{"eventId":"test-event-1","eventType":"cell_executed","classId":"twice","emailAddress":"bob@x.edu"}]'
	assert_equal "$status_code" 202
	wait_rows twice 202
	# every copy read and skipped, not merely the first of each committed
	wait_until '[ "$(jq .duplicates_skipped <<<"$(stats "$LABPULSE_RUNDIR/batch-commit.sock")")" -ge 200 ]'
	run -0 rows twice
	assert_output 202
	run -0 psql -tAXc "select string_agg(student_id, ',' order by student_id) from events where event_id = 'test-event-1'"
	assert_output "ann@x.edu,bob@x.edu"
	run -0 progress_mismatches twice
	assert_output 0
	stats "$LABPULSE_RUNDIR/batch-commit.sock" >"$BATS_TEST_TMPDIR/s"
	[ "$(jq .duplicates_skipped "$BATS_TEST_TMPDIR/s")" -ge 200 ]
}

@test "poison rows among good ones: the good commit, each poison row is set aside with PostgreSQL's reason" {
	# Straight into the stream, as an older ingest or another writer would
	# queue them: ingest itself now refuses such events at the door, and
	# batch-commit must still never drop nor be blocked by one.
	for ev in \
	  '{"eventId":"ok-1","eventType":"cell_executed","classId":"poison","emailAddress":"a@x"}' \
	  '{"eventId":"bad-range","eventType":"cell_executed","classId":"poison","emailAddress":"b@x","cellIndex":10000000000}' \
	  '{"eventId":"ok-2","eventType":"cell_executed","classId":"poison","emailAddress":"c@x"}' \
	  '{"eventId":"bad-time","eventType":"cell_executed","classId":"poison","emailAddress":"d@x","eventTime":"0000-01-01T00:00:00"}' \
	  '{"eventId":"bad-nul","eventType":"cell_executed","classId":"poison","emailAddress":"e@x","code":"a\u0000b"}' \
	  '{"eventId":"ok-3","eventType":"cell_executed","classId":"poison","emailAddress":"f@x"}'; do
		redis-cli -s "${LABPULSE_REDIS#unix:}" XADD labpulse:events '*' event "$ev" >/dev/null
	done
	wait_rows poison 3
	run -0 psql -tAXc "select string_agg(event_id, ',' order by event_id) from events where class_id = 'poison'"
	assert_output "ok-1,ok-2,ok-3"
	wait_for eval '[ "$(psql -tAXc "select count(*) from dead_events where convert_from(raw, '"'"'UTF8'"'"') like '"'"'%\"classId\":\"poison\"%'"'"'")" = 3 ]'
	psql -tAXF '|' -c "select substring(convert_from(raw, 'UTF8') from '\"eventId\":\"([^\"]*)\"'), sqlstate, reason from dead_events
	  where convert_from(raw, 'UTF8') like '%\"classId\":\"poison\"%' order by 1" >"$BATS_TEST_TMPDIR/dead"
	run -0 cut -d'|' -f1,2 "$BATS_TEST_TMPDIR/dead"
	assert_output $'bad-nul|22P05\nbad-range|22003\nbad-time|22008'
	grep -q '^bad-range|22003|value "10000000000" is out of range for type integer' "$BATS_TEST_TMPDIR/dead"
	grep -q '^bad-time|22008|date/time field value out of range: "0000-01-01T00:00:00"' "$BATS_TEST_TMPDIR/dead"
	grep -q '^bad-nul|22P05|unsupported Unicode escape sequence' "$BATS_TEST_TMPDIR/dead"
	# an entry that is not an event at all is set aside whole, twice if sent twice
	redis-cli -s "${LABPULSE_REDIS#unix:}" XADD labpulse:events '*' other thing >/dev/null
	redis-cli -s "${LABPULSE_REDIS#unix:}" XADD labpulse:events '*' other thing >/dev/null
	wait_for eval '[ "$(psql -tAXc "select count(*) from dead_events where convert_from(raw, '"'"'UTF8'"'"') = '"'"'{\"notAnEvent\":{\"other\":\"thing\"}}'"'"'")" = 2 ]'
	# set aside means acknowledged: nothing of it is left pending
	wait_for eval '[ "$(pending events commit)" = 0 ]'
}

@test "kill -9 in the middle of a stream, then a restart: every accepted event present once" {
	start_ingest ki --to stream:crash1
	start_bc bc1 --from stream:crash1@commit --consumer crash-a --batch-size 50
	post_many crash1 0 3000 10 "$ki_URL" >"$BATS_TEST_TMPDIR/acc" 3>&- &
	poster=$!
	track "$poster"
	wait_for eval '[ "$(rows crash1)" -gt 300 ]'
	kill -9 "$bc1_PID"
	wait "$poster"
	acc=$(cat "$BATS_TEST_TMPDIR/acc")
	assert_equal "$acc" 3000
	[ "$(rows crash1)" -lt 3000 ]
	# the same consumer comes back and first takes back its own pending entries
	start_bc bc2 --from stream:crash1@commit --consumer crash-a --batch-size 50
	wait_rows crash1 3000
	wait_for eval '[ "$(pending crash1 commit)" = 0 ]'
	run -0 psql -tAXc "select count(distinct event_id) from events where class_id = 'crash1'"
	assert_output 3000
	kill -TERM "$bc2_PID" "$ki_PID"
}

@test "two consumers in one group share the work; one killed, the other claims what it left" {
	start_ingest k2 --to stream:crash2
	# a consumer that read 300 entries and died before committing them
	post_many crash2 0 300 10 "$k2_URL" >/dev/null
	redis-cli -s "${LABPULSE_REDIS#unix:}" XGROUP CREATE labpulse:crash2 commit 0 MKSTREAM >/dev/null
	redis-cli -s "${LABPULSE_REDIS#unix:}" XREADGROUP GROUP commit ghost COUNT 300 STREAMS labpulse:crash2 '>' >/dev/null
	assert_equal "$(pending crash2 commit)" 300
	start_bc ca --from stream:crash2@commit --consumer two-a --batch-size 20 --claim-idle 1s
	start_bc cb --from stream:crash2@commit --consumer two-b --batch-size 20 --claim-idle 1s
	post_many crash2 300 3000 10 "$k2_URL" >"$BATS_TEST_TMPDIR/acc" 3>&- &
	poster=$!
	track "$poster"
	wait_for eval '[ "$(rows crash2)" -gt 600 ]'
	kill -9 "$ca_PID"
	wait "$poster"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/acc")" 2700
	wait_rows crash2 3000
	wait_for eval '[ "$(pending crash2 commit)" = 0 ]'
	run -0 psql -tAXc "select count(distinct event_id) from events where class_id = 'crash2'"
	assert_output 3000
	# both did part of the work, and the dead one's entries were claimed
	run -0 redis-cli -s "${LABPULSE_REDIS#unix:}" XINFO CONSUMERS labpulse:crash2 commit
	assert_output --partial two-a
	assert_output --partial two-b
	cat "$ca_LOG" "$cb_LOG" >"$BATS_TEST_TMPDIR/logs"
	grep -q 'claimed entries left pending by another consumer' "$BATS_TEST_TMPDIR/logs"
	[ "$(jq .rows_committed <<<"$(stats "$cb_STATS")")" -gt 0 ]
	kill -TERM "$cb_PID" "$k2_PID"
}

@test "PostgreSQL stopped for a few seconds under load, then started: no loss, no duplicate" {
	post_many pgdown 0 1000 10 >/dev/null
	wait_rows pgdown 1000
	pg_stack -m fast -w stop >/dev/null
	post_many pgdown 1000 2000 10 >"$BATS_TEST_TMPDIR/acc"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/acc")" 1000
	# batch-commit holds what it read, unacknowledged
	wait_until '[ "$(pending events commit)" -gt 0 ]'
	labpulse up >/dev/null
	wait_rows pgdown 2000
	run -0 psql -tAXc "select count(distinct event_id) from events where class_id = 'pgdown'"
	assert_output 2000
	run -0 progress_mismatches pgdown
	assert_output 0
	grep -q 'batch not committed; will retry' "$LABPULSE_HOME/log/batch-commit.log"
}

@test "Redis restarted under load (append-only on): no loss, no duplicate" {
	post_many rdown 0 1000 10 >/dev/null
	u0=$(stats "$LABPULSE_RUNDIR/ingest.sock" | jq .rejected.unavailable)
	redis-cli -s "${LABPULSE_REDIS#unix:}" shutdown
	post_many rdown 1000 2000 10 >"$BATS_TEST_TMPDIR/acc" 3>&- &
	poster=$!
	track "$poster"
	# the poster meets the outage (503s, which it retries) before Redis is back
	wait_until '[ "$(stats "$LABPULSE_RUNDIR/ingest.sock" | jq .rejected.unavailable)" -gt "$u0" ]'
	labpulse up >/dev/null
	wait "$poster"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/acc")" 1000
	wait_rows rdown 2000
	run -0 psql -tAXc "select count(distinct event_id) from events where class_id = 'rdown'"
	assert_output 2000
	grep -q 'lost Redis' "$LABPULSE_HOME/log/batch-commit.log"
}

@test "pipe mode: ingest --to - | batch-commit --from - stores what was posted" {
	# through a named pipe, so that each end has a pid of its own
	mkfifo "$BATS_TEST_TMPDIR/pipe"
	batch-commit --from - --stats none <"$BATS_TEST_TMPDIR/pipe" \
		2>"$BATS_TEST_TMPDIR/b.log" 3>&- &
	track "$!"
	ingest --listen 127.0.0.1:0 --stats none --to - >"$BATS_TEST_TMPDIR/pipe" \
		</dev/null 2>"$BATS_TEST_TMPDIR/i.log" 3>&- &
	ipid=$!
	track "$ipid"
	wait_for grep -q 'ready listen=' "$BATS_TEST_TMPDIR/i.log"
	addr=$(sed -n 's/.*ready listen=\([^ ]*\).*/\1/p' "$BATS_TEST_TMPDIR/i.log")
	acc=$(post_many pipe 0 500 25 "http://$addr")
	assert_equal "$acc" 500
	wait_rows pipe 500
	kill -TERM "$ipid"
	wait_for grep -q 'stopped batches=' "$BATS_TEST_TMPDIR/b.log"
	run -0 progress_mismatches pipe
	assert_output 0
}

@test "NDJSON from a file: a line that is not JSON is set aside, the rest committed, exit 0" {
	printf '%s\n' '{"eventId":"f-1","eventType":"x","classId":"file1","studentId":"a"}' \
		'not json at all' '{"eventId":"f-2","eventType":"x","classId":"file1","studentId":"b"}' \
		>"$BATS_TEST_TMPDIR/in.ndjson"
	run -0 --separate-stderr batch-commit --from "file:$BATS_TEST_TMPDIR/in.ndjson" --stats none
	run -0 rows file1
	assert_output 2
	run -0 psql -tAXc "select reason from dead_events where convert_from(raw, 'UTF8') = 'not json at all'"
	assert_output --partial "malformed event:"
}

@test "SIGTERM commits the batch in hand, acknowledges it, and exits 0; READY=1 on NOTIFY_SOCKET" {
	start_ingest st --to stream:term1
	sock=$BATS_TEST_TMPDIR/notify.sock
	socat -u "UNIX-RECV:$sock" "OPEN:$BATS_TEST_TMPDIR/notified,creat,append" 3>&- &
	spid=$!
	track "$spid"
	wait_for test -S "$sock"
	NOTIFY_SOCKET=$sock start_bc bt --from stream:term1@commit --batch-size 1000 --max-wait 30s
	wait_for grep -q READY=1 "$BATS_TEST_TMPDIR/notified"
	post_many term1 0 10 10 "$st_URL" >/dev/null
	# the batch waits for more (30 s): nothing committed yet, all pending
	wait_for eval '[ "$(pending term1 commit)" = 10 ]'
	assert_equal "$(rows term1)" 0
	kill -TERM "$bt_PID"
	rc=0
	wait "$bt_PID" || rc=$?
	assert_equal "$rc" 0
	assert_equal "$(rows term1)" 10
	assert_equal "$(pending term1 commit)" 0
	wait_for grep -q STOPPING=1 "$BATS_TEST_TMPDIR/notified"
	grep -q 'stopped batches=1 rows=10 duplicates=0 dead=0' "$bt_LOG"
	kill "$spid" "$st_PID"
}

@test "SIGTERM while PostgreSQL is away: the batch is abandoned unacknowledged, exit 0" {
	start_ingest sa --to stream:term2
	# The batch closes when all 20 are in hand, however the POSTs and the
	# reads split them: a batch of the default 40 ms could close on the
	# first 10 alone. Then its commit fails and is retried until SIGTERM.
	start_bc ba --from stream:term2@commit --batch-size 20 --max-wait 60s
	pg_stack -m fast -w stop >/dev/null
	post_many term2 0 20 10 "$sa_URL" >/dev/null
	# all 20 in hand, and their commit failed at least once
	wait_until '[ "$(pending term2 commit)" = 20 ]'
	wait_for grep -qE 'batch not committed; will retry rows=20 |lost PostgreSQL; retrying' "$ba_LOG"
	kill -TERM "$ba_PID"
	rc=0
	wait "$ba_PID" || rc=$?
	assert_equal "$rc" 0
	grep -q 'stopping: batch abandoned unacknowledged rows=20$' "$ba_LOG"
	assert_equal "$(pending term2 commit)" 20
	labpulse up >/dev/null
	# the next consumer of that name takes them back and commits each once
	start_bc ba2 --from stream:term2@commit --consumer "$(sed -n 's/.*consumer=\([^ ]*\).*/\1/p' "$ba_LOG")"
	wait_rows term2 20
	wait_until '[ "$(pending term2 commit)" = 0 ]'
	run -0 psql -tAXc "select count(distinct event_id) from events where class_id = 'term2'"
	assert_output 20
}

@test "the stats socket: batches, rows, duplicates, dead rows, latency, pending, the connection" {
	stats "$LABPULSE_RUNDIR/batch-commit.sock" >"$BATS_TEST_TMPDIR/s"
	assert_equal "$(jq -r .name "$BATS_TEST_TMPDIR/s")" batch-commit
	assert_equal "$(jq -c '[(.batches > 0), (.rows_committed > 0), (.dead_rows >= 3), (.commit_us.p99 > 0), .pending, .postgres.connected, .postgres.sv_idle + .postgres.sv_active, .redis.group]' "$BATS_TEST_TMPDIR/s")" '[true,true,true,true,0,true,1,"commit"]'
}

@test "bad flags: usage and 64; an input that cannot be opened: 66" {
	run -64 --separate-stderr batch-commit --from stream:events
	[[ $stderr == *"a stream is read as a consumer group: stream:events@GROUP"* ]]
	run -64 --separate-stderr batch-commit --batch-size 0
	[[ $stderr == *"--batch-size: number '0' out of range (1 to 100000)"* ]]
	run -64 --separate-stderr batch-commit --max-wait soon
	[[ $stderr == *"--max-wait: invalid duration 'soon'"* ]]
	run -66 --separate-stderr batch-commit --from file:/nonexistent/x.ndjson --stats none
	[[ $stderr == *"cannot open /nonexistent/x.ndjson: No such file or directory"* ]]
	# a Redis URL refused does not show its password
	run -78 --separate-stderr batch-commit --redis 'redis://:s3cr/et@127.0.0.1:6379x/0' --stats none
	assert_output ''
	assert_equal "${stderr_lines[0]}" "labpulse-batch-commit: error: --from stream:events@commit: bad Redis URL 'redis://***@127.0.0.1:6379x/0' (expected redis://HOST[:PORT][/DB] or unix:PATH)"
	[[ $stderr != *s3cr* ]]
}
