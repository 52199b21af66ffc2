#!/usr/bin/env bats
# batch-commit through PgBouncer in transaction pooling mode: several
# consumers share a pool smaller than their number, each transaction may
# land on any server connection, and every event is still committed once,
# by the fast path and by the staging path alike. A real PgBouncer in front
# of a PostgreSQL of the file's own (tests/helper/pg-ha.bash), a private
# Redis for the stream.

setup_file() {
	load helper/common
	load helper/pg-ha
	export LABPULSE_REDIS="unix:$BATS_FILE_TMPDIR/r.sock"
	redis-server --port 0 --unixsocket "$BATS_FILE_TMPDIR/r.sock" --dir "$BATS_FILE_TMPDIR" \
		--daemonize yes --pidfile "$BATS_FILE_TMPDIR/redis.pid" --save "" >/dev/null 3>&-
	wait_for redis-cli -s "$BATS_FILE_TMPDIR/r.sock" ping
	track "$(cat "$BATS_FILE_TMPDIR/redis.pid")"
	pgha_primary PG
	migrate-indexes --db "$PG_DB" --dir "$TOP/etc/migrations" up 2>"$BATS_FILE_TMPDIR/migrate.log" ||
		{ cat "$BATS_FILE_TMPDIR/migrate.log" >&2; return 1; }
	# two server connections for three consumers: transactions must share
	pgb_start PGB PG 2
	# what psql and the helpers of common.bash read: the node itself
	export PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=labpulse PGDATABASE=labpulse
	unset DATABASE_URL
}

teardown_file() {
	load helper/common
	load helper/pg-ha
	stop_tracked
	pgha_down
}

setup() {
	load helper/common
	load helper/pg-ha
}

teardown() {
	stop_tracked
}

# The progress rows of CLASS that disagree with a recount from events.
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

# A stats field summed over the consumers named.
bc_sum() {
	local f=$1 n s=0 v sock
	shift
	for n in "$@"; do
		sock=${n}_STATS
		v=$(stats "${!sock}" | jq "$f") && s=$((s + v))
	done
	echo "$s"
}

@test "three batch-commits through one PgBouncer (transaction mode, pool of 2) commit every event once" {
	pgha_gen pool 0 3000 >"$BATS_TEST_TMPDIR/a.ndjson"
	pgha_xadd pool <"$BATS_TEST_TMPDIR/a.ndjson"
	for c in pa pb pc; do
		start_bc "$c" --from stream:pool@commit --consumer "$c" --db "$PGB_DB" \
			--batch-size 40 --max-wait 20ms --trim-interval 0
	done
	wait_rows pool 3000 120
	wait_for eval '[ "$(pending pool commit)" = 0 ]'
	run -0 psql -tAXc "select count(distinct (student_id, event_id)) from events where class_id = 'pool'"
	assert_output 3000
	run -0 progress_mismatches pool
	assert_output 0
	# all by the fast path, none retried (which consumer took how many
	# batches is the scheduler's: one may take them all)
	[ "$(bc_sum .batches pa pb pc)" -gt 0 ]
	run -0 bc_sum .batches_fallback pa pb pc
	assert_output 0
	run -1 grep -h 'will retry\|error' "$pa_LOG" "$pb_LOG" "$pc_LOG"
	# and PgBouncer's pool served them, in transaction mode, with no more
	# than its two server connections
	psql -XtAF '|' -d "$PGB_ADMIN" -c "show pools" >"$BATS_TEST_TMPDIR/pools"
	run -0 awk -F'|' '$1 == "labpulse" { print $2, $NF, ($6 + $7 + $8 <= 2) }' "$BATS_TEST_TMPDIR/pools"
	assert_output "labpulse transaction 1"
	run -0 psql -tAXc "select count(*) from pg_stat_activity where backend_type = 'client backend' and datname = 'labpulse' and pid <> pg_backend_pid()"
	[ "$output" -le 2 ]
}

@test "through PgBouncer, batches that take the staging path: duplicates skipped once, refused rows in dead_events" {
	pgha_gen stage 0 600 >"$BATS_TEST_TMPDIR/new.ndjson"
	# the first 200 again, so that later batches meet events already there
	pgha_gen stage 0 200 >"$BATS_TEST_TMPDIR/dup.ndjson"
	cat >"$BATS_TEST_TMPDIR/bad.ndjson" <<-'EOF'
	{"eventId":"bad-range","eventType":"cell_executed","classId":"stage","emailAddress":"b@x","cellIndex":10000000000}
	{"eventId":"bad-time","eventType":"cell_executed","classId":"stage","emailAddress":"d@x","eventTime":"0000-01-01T00:00:00"}
	EOF
	pgha_xadd stage <"$BATS_TEST_TMPDIR/new.ndjson"
	for c in sa sb sc; do
		start_bc "$c" --from stream:stage@commit --consumer "$c" --db "$PGB_DB" \
			--batch-size 25 --max-wait 20ms --trim-interval 0
	done
	wait_rows stage 600 120
	pgha_xadd stage <"$BATS_TEST_TMPDIR/dup.ndjson"
	pgha_xadd stage <"$BATS_TEST_TMPDIR/bad.ndjson"
	pgha_gen stage 600 1000 >"$BATS_TEST_TMPDIR/more.ndjson"
	pgha_xadd stage <"$BATS_TEST_TMPDIR/more.ndjson"
	wait_rows stage 1000 120
	wait_for eval '[ "$(pending stage commit)" = 0 ]'
	run -0 psql -tAXc "select count(distinct (student_id, event_id)) from events where class_id = 'stage'"
	assert_output 1000
	run -0 progress_mismatches stage
	assert_output 0
	run -0 bc_sum .duplicates_skipped sa sb sc
	assert_output 200
	run -0 bc_sum .dead_rows sa sb sc
	assert_output 2
	[ "$(bc_sum .batches_fallback sa sb sc)" -gt 0 ]
	[ "$(bc_sum .batches_fast sa sb sc)" -gt 0 ]
	psql -tAXF '|' -c "select substring(convert_from(raw, 'UTF8') from '\"eventId\":\"([^\"]*)\"'), sqlstate from dead_events
	  where convert_from(raw, 'UTF8') like '%\"classId\":\"stage\"%' order by 1" >"$BATS_TEST_TMPDIR/dead"
	run -0 cat "$BATS_TEST_TMPDIR/dead"
	assert_output $'bad-range|22003\nbad-time|22008'
	# a transient failure would have been logged; the pool never was one
	run -1 grep -h 'will retry\|cannot' "$sa_LOG" "$sb_LOG" "$sc_LOG"
}
