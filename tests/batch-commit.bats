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

# The progress table against what the events table says, row for row:
# counts and first and last activity; with strict, last_event_type too (for
# events whose times differ). The rows that differ are counted.
progress_mismatches() {
	local t='' tw=''
	if [ "${2:-}" = strict ]; then
		t=", (array_agg(event_type order by event_time desc))[1] as t"
		tw=" or g.t is distinct from p.last_event_type"
	fi
	psql -tAXc "
	select count(*) from (
	  select class_id, student_id, coalesce(notebook_path, '') as nb,
	         count(*) as ev,
	         count(*) filter (where event_type = 'cell_executed') as ex,
	         count(*) filter (where has_error) as er,
	         min(event_time) as f, max(event_time) as l$t
	  from events where class_id = '$1' group by 1, 2, 3) g
	full join (select * from student_progress where class_id = '$1') p
	  on (p.class_id, p.student_id, p.notebook_path) = (g.class_id, g.student_id, g.nb)
	where g.ev is distinct from p.events or g.ex is distinct from p.executions
	   or g.er is distinct from p.errors or g.f is distinct from p.first_activity
	   or g.l is distinct from p.last_activity$tw"
}

# A field summed over the stack's consumers (one per core, see stack.sh).
stack_sum() {
	local f s=0 v
	for f in "$LABPULSE_RUNDIR"/batch-commit*.sock; do
		v=$(stats "$f" | jq "$1") && s=$((s + v))
	done
	echo "$s"
}

# gen CLASS FROM TO [PREFIX]: events FROM to TO-1 as NDJSON, 20 students,
# each a time of its own (one second apart) in one of the forms ingest
# accepts, or none (then receivedAt counts); a type, error and notebook
# that vary.
gen() {
	awk -v c="$1" -v from="$2" -v to="$3" -v p="${4:-$1}" '
	function t(i, h, m, s) {
		h = 8 + int(i / 3600); m = int(i % 3600 / 60); s = i % 60
		if (i % 4 == 0) return sprintf("2026-12-06T%02d:%02d:%02dZ", h, m, s)
		if (i % 4 == 1) return sprintf("2026-12-06T%02d:%02d:%02d+02:00", h + 2, m, s)
		if (i % 4 == 2) return sprintf("2026-12-06 %02d:%02d:%02d.5", h, m, s)
		return sprintf("2026-12-06T%02d:%02d:%02d.123456789-0100", h - 1, m, s)
	}
	BEGIN {
		split("cell_executed notebook_saved help", types, " ")
		for (i = from; i < to; i++) {
			e = sprintf("{\"eventId\":\"%s-%d\",\"eventType\":\"%s\",\"classId\":\"%s\",\"emailAddress\":\"s%d@x.edu\"",
			    p, i, types[i % 3 + 1], c, i % 20)
			if (i % 11 == 0)
				e = e sprintf(",\"receivedAt\":\"%s\"", t(i))
			else
				e = e sprintf(",\"eventTime\":\"%s\"", t(i))
			if (i % 7 == 0) e = e ",\"hasError\":true"
			if (i % 7 == 1) e = e ",\"hasError\":false"
			if (i % 5 != 0) e = e sprintf(",\"notebookPath\":\"nb%d.ipynb\"", i % 2)
			print e "}"
		}
	}'
}

# xadd STREAM: each NDJSON line of stdin an entry of labpulse:STREAM.
xadd() {
	local key=labpulse:$1 l
	while IFS= read -r l; do
		LC_ALL=C printf '*5\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$5\r\nevent\r\n$%d\r\n%s\r\n' \
			"${#key}" "$key" "$(LC_ALL=C; echo ${#l})" "$l"
	done | redis-cli -s "${LABPULSE_REDIS#unix:}" --pipe >/dev/null
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
	wait_until '[ "$(stack_sum .duplicates_skipped)" -ge 200 ]'
	run -0 rows twice
	assert_output 202
	run -0 psql -tAXc "select string_agg(student_id, ',' order by student_id) from events where event_id = 'test-event-1'"
	assert_output "ann@x.edu,bob@x.edu"
	run -0 progress_mismatches twice
	assert_output 0
	[ "$(stack_sum .duplicates_skipped)" -ge 200 ]
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
	cat "$LABPULSE_HOME"/log/batch-commit*.log | grep -q 'batch not committed; will retry'
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
	assert_equal "$(jq -c '[.pending, .postgres.connected, .postgres.sv_idle + .postgres.sv_active, .redis.group, .batches == .batches_fast + .batches_fallback]' "$BATS_TEST_TMPDIR/s")" '[0,true,1,"commit",true]'
	# the work, over the stack's consumers
	[ "$(stack_sum .batches)" -gt 0 ]
	[ "$(stack_sum .rows_committed)" -gt 0 ]
	[ "$(stack_sum .dead_rows)" -ge 3 ]
	[ "$(stack_sum '.commit_us.p99 > 0 | if . then 1 else 0 end')" -gt 0 ]
}

@test "the fast path commits a batch of new events: COPY straight in, stats say fast" {
	gen fast1 0 300 | xadd fast1
	start_bc f1 --from stream:fast1@commit --consumer fast-a --batch-size 1000 --max-wait 500ms
	wait_rows fast1 300
	wait_until '[ "$(pending fast1 commit)" = 0 ]'
	stats "$f1_STATS" >"$BATS_TEST_TMPDIR/s"
	assert_equal "$(jq -c '[.batches, .batches_fast, .batches_fallback, .rows_committed, .duplicates_skipped]' "$BATS_TEST_TMPDIR/s")" '[1,1,0,300,0]'
	run -0 progress_mismatches fast1 strict
	assert_output 0
	run -0 psql -tAXc "select sum(events), sum(executions), sum(errors) from student_progress where class_id = 'fast1'"
	assert_output "300|100|43"
	kill -TERM "$f1_PID"
}

@test "a batch with a duplicate of a committed event falls back: each event once, progress counted once" {
	gen dup1 0 10 | xadd dup1
	start_bc d1 --from stream:dup1@commit --consumer dup-a --batch-size 1000 --max-wait 500ms
	wait_rows dup1 10
	# the same ten again, and ten new ones, in one batch
	gen dup1 0 20 | xadd dup1
	wait_rows dup1 20
	wait_until '[ "$(pending dup1 commit)" = 0 ]'
	stats "$d1_STATS" >"$BATS_TEST_TMPDIR/s"
	assert_equal "$(jq -c '[.batches_fast, .batches_fallback, .rows_committed, .duplicates_skipped]' "$BATS_TEST_TMPDIR/s")" '[1,1,20,10]'
	run -0 psql -tAXc "select (select count(*) from events where class_id = 'dup1'), (select sum(events) from student_progress where class_id = 'dup1')"
	assert_output "20|20"
	run -0 progress_mismatches dup1 strict
	assert_output 0
	kill -TERM "$d1_PID"
}

@test "student_progress after a mixed run equals a recount from events" {
	start_bc m1 --from stream:mix1@commit --consumer mix-a --batch-size 1000 --max-wait 300ms
	# new events (fast), then half of them again with as many new ones
	gen mix1 0 300 | xadd mix1
	wait_rows mix1 300
	gen mix1 250 350 | xadd mix1
	wait_rows mix1 350
	# poison among new ones: split, set aside, the rest committed
	{ gen mix1 350 370
	  echo '{"eventId":"p-1","eventType":"help","classId":"mix1","emailAddress":"s1@x.edu","cellIndex":10000000000}'
	  echo '{"eventId":"p-2","eventType":"help","classId":"mix1","emailAddress":"s2@x.edu","eventTime":"0000-01-01T00:00:00"}'
	  echo 'not json'
	} | xadd mix1
	wait_rows mix1 370
	# a time in a form only PostgreSQL reads: its batch takes the staging path
	{ gen mix1 370 380
	  echo '{"eventId":"odd-1","eventType":"cell_executed","classId":"mix1","emailAddress":"s3@x.edu","eventTime":"December 6, 2026 23:00:00"}'
	} | xadd mix1
	wait_rows mix1 381
	# and new events again
	gen mix1 400 500 | xadd mix1
	wait_rows mix1 481
	wait_until '[ "$(pending mix1 commit)" = 0 ]'
	run -0 progress_mismatches mix1 strict
	assert_output 0
	run -0 psql -tAXc "select sum(events) from student_progress where class_id = 'mix1'"
	assert_output 481
	run -0 psql -tAXc "select last_event_type, last_activity from student_progress where class_id = 'mix1' and student_id = 's3@x.edu' and notebook_path = ''"
	assert_output "cell_executed|2026-12-06 23:00:00+00"
	stats "$m1_STATS" >"$BATS_TEST_TMPDIR/s"
	jq -e '.batches_fast >= 2 and .batches_fallback >= 3 and .duplicates_skipped == 50 and .dead_rows == 3' "$BATS_TEST_TMPDIR/s" ||
		{ cat "$BATS_TEST_TMPDIR/s"; false; }
	kill -TERM "$m1_PID"
}

@test "two consumers on one stream: everything committed once, progress counted once" {
	gen two2 0 3000 | xadd two2
	start_bc ta --from stream:two2@commit --consumer tw-a --batch-size 50
	start_bc tb --from stream:two2@commit --consumer tw-b --batch-size 50
	wait_rows two2 3000
	wait_until '[ "$(pending two2 commit)" = 0 ]'
	run -0 psql -tAXc "select count(distinct (student_id, event_id)) from events where class_id = 'two2'"
	assert_output 3000
	run -0 progress_mismatches two2 strict
	assert_output 0
	a=$(stats "$ta_STATS" | jq .rows_committed)
	b=$(stats "$tb_STATS" | jq .rows_committed)
	[ "$a" -gt 0 ] && [ "$b" -gt 0 ] && [ $((a + b)) = 3000 ]
	kill -TERM "$ta_PID" "$tb_PID"
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

@test "labpulse up with LABPULSE_COMMITTERS=2: two consumers, both in status, both stopped by down" {
	LABPULSE_COMMITTERS=2 labpulse up >/dev/null
	run -0 labpulse status
	assert_line --regexp '^batch-commit +running +pid [0-9]+ +since '
	assert_line --regexp '^batch-commit-2 +running +pid [0-9]+ +since '
	p1=$(cat "$LABPULSE_RUNDIR/batch-commit.pid")
	p2=$(cat "$LABPULSE_RUNDIR/batch-commit-2.pid")
	[ "$p1" != "$p2" ]
	# each its own consumer name and stats socket
	assert_equal "$(stats "$LABPULSE_RUNDIR/batch-commit-2.sock" | jq -r .redis.consumer)" "stack-$(hostname)-2"
	assert_equal "$(stats "$LABPULSE_RUNDIR/batch-commit.sock" | jq -r .redis.consumer)" "stack-$(hostname)"
	# both commit: events of many students spread over both
	gen cm2 0 2000 | xadd events
	wait_rows cm2 2000
	[ "$(stats "$LABPULSE_RUNDIR/batch-commit.sock" | jq .rows_committed)" -gt 0 ]
	[ "$(stats "$LABPULSE_RUNDIR/batch-commit-2.sock" | jq .rows_committed)" -gt 0 ]
	# a later up without the variable keeps them: same processes
	labpulse up >/dev/null
	assert_equal "$(cat "$LABPULSE_RUNDIR/batch-commit-2.pid")" "$p2"
	# one that died is brought back by up
	kill -9 "$p2"
	wait_until "grep -qs . '$LABPULSE_RUNDIR/batch-commit-2.exit'"
	run -3 labpulse status
	assert_line --regexp "^batch-commit-2 +died +pid $p2 +at "
	labpulse up >/dev/null
	run -0 labpulse status
	assert_line --regexp '^batch-commit-2 +running '
	run -0 labpulse down
	run -3 labpulse status
	assert_line --regexp '^batch-commit +stopped$'
	assert_line --regexp '^batch-commit-2 +stopped$'
	run -1 kill -0 "$p1"
	run -1 kill -0 "$p2"
	# fewer: the extra one is stopped, and no longer listed
	LABPULSE_COMMITTERS=1 labpulse up >/dev/null
	run -0 labpulse status
	refute_line --regexp '^batch-commit-2 '
	[ ! -e "$LABPULSE_RUNDIR/batch-commit-2.pid" ]
	run -78 --separate-stderr env LABPULSE_COMMITTERS=0 labpulse up
	assert_equal "$stderr" "labpulse: error: LABPULSE_COMMITTERS must be a number from 1 to 16, not '0'"
}
