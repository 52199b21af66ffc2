#!/usr/bin/env bats
# PostgreSQL as a primary and a streaming standby, reached by a multi-host
# conninfo that lists the standby first and asks for a read-write session:
# migrate-indexes and batch-commit find the primary; when the primary
# stops and the standby is promoted while events keep arriving,
# batch-commit follows and every event is committed once. Real servers
# (tests/helper/pg-ha.bash), a private Redis for the stream.

setup_file() {
	load helper/common
	load helper/pg-ha
	export LABPULSE_REDIS="unix:$BATS_FILE_TMPDIR/r.sock"
	redis-server --port 0 --unixsocket "$BATS_FILE_TMPDIR/r.sock" --dir "$BATS_FILE_TMPDIR" \
		--daemonize yes --pidfile "$BATS_FILE_TMPDIR/redis.pid" --save "" >/dev/null 3>&-
	wait_for redis-cli -s "$BATS_FILE_TMPDIR/r.sock" ping
	track "$(cat "$BATS_FILE_TMPDIR/redis.pid")"
	pgha_primary PRI
	pgha_standby STB PRI
	export MULTI="host=127.0.0.1,127.0.0.1 port=$STB_PORT,$PRI_PORT user=labpulse dbname=labpulse target_session_attrs=read-write"
	unset DATABASE_URL PGHOST PGPORT PGDATABASE PGUSER
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

# bouncer_pair N: a migrated primary PN and its standby SN, with a
# PgBouncer in front of each, BNP and BNS (transaction mode, pool of 2).
bouncer_pair() {
	pgha_primary "P$1"
	pgha_standby "S$1" "P$1"
	local db=P$1_DB
	migrate-indexes --db "${!db}" --dir "$TOP/etc/migrations" up 2>"$BATS_TEST_TMPDIR/migrate.log" ||
		{ cat "$BATS_TEST_TMPDIR/migrate.log" >&2; return 1; }
	pgb_start "B$1P" "P$1" 2
	pgb_start "B$1S" "S$1" 2
	wait_until "[ \"\$(on S$1 'select count(*) from labpulse_migrations' 2>/dev/null)\" = 3 ]"
}

# feed STREAM CLASS FROM TO: those events into labpulse:STREAM.
feed() {
	pgha_gen "$2" "$3" "$4" | pgha_xadd "$1"
}

# on NODE SQL: SQL's answer from NODE's database labpulse.
on() {
	local db=${1}_DB
	psql -XtAq -v ON_ERROR_STOP=1 -d "${!db}" -c "$2"
}

# count NODE CLASS: events of CLASS on NODE.
count() {
	on "$1" "select count(*) from events where class_id = '$2'"
}

# wait_count NODE CLASS N: until NODE has N events of CLASS (120 s at most).
wait_count() {
	local n
	for _ in $(seq 1200); do
		n=$(count "$1" "$2" 2>/dev/null)
		[ "$n" = "$3" ] && return 0
		sleep 0.1
	done
	echo "wait_count: $1 has ${n:-?} events of $2, expected $3" >&2
	return 1
}

@test "migrate-indexes status and up through the multi-host conninfo work on the primary" {
	run -0 --separate-stderr migrate-indexes --db "$MULTI" --dir "$TOP/etc/migrations" status
	assert_output --partial "pending"
	run -0 --separate-stderr migrate-indexes --db "$MULTI" --dir "$TOP/etc/migrations" up
	run -0 --separate-stderr migrate-indexes --db "$MULTI" --dir "$TOP/etc/migrations" status
	refute_output --partial "pending"
	run -0 on PRI "select count(*) from labpulse_migrations"
	assert_output 3
	# what the primary did reached the standby
	wait_until '[ "$(on STB "select count(*) from labpulse_migrations" 2>/dev/null)" = 3 ]'
	run -0 on STB "select to_regclass('events') is not null"
	assert_output t
}

@test "batch-commit with the standby listed first commits to the primary" {
	start_bc one --from stream:one@commit --consumer one --db "$MULTI" --trim-interval 0
	feed one first 0 300
	wait_count PRI first 300
	run -0 on PRI "select count(*) from pg_stat_activity where application_name = 'labpulse-batch-commit'"
	assert_output 1
	run -0 on STB "select count(*) from pg_stat_activity where application_name = 'labpulse-batch-commit'"
	assert_output 0
	wait_until '[ "$(pending one commit)" = 0 ]'
}

@test "the primary stopped and the standby promoted while events arrive: batch-commit resumes, every event once" {
	start_bc fo --from stream:fo@commit --consumer fo --db "$MULTI" --trim-interval 0 \
		--batch-size 20 --max-wait 10ms
	# before: committed on the primary; then more, the primary stopped
	# (fast: what it committed reached the standby) as they come in
	feed fo fo 0 1000
	wait_until '[ "$(count PRI fo 2>/dev/null)" -gt 0 ]'
	feed fo fo 1000 2000
	pgha_stop PRI fast
	# while no server takes writes
	feed fo fo 2000 2500
	pgha_promote STB
	# after: the standby is the primary now
	feed fo fo 2500 3000
	wait_count STB fo 3000
	wait_until '[ "$(pending fo commit)" = 0 ]'
	run -0 on STB "select count(distinct (student_id, event_id)) from events where class_id = 'fo'"
	assert_output 3000
	# every event counted once in the progress too
	run -0 on STB "select sum(events) from student_progress where class_id = 'fo'"
	assert_output 3000
	# batch-commit saw the loss and came back on the promoted node
	grep -q ': warning: lost PostgreSQL; retrying' "$fo_LOG"
	run -0 grep -c ': info: connected to PostgreSQL' "$fo_LOG"
	[ "$output" -ge 2 ]
	sock=$fo_STATS
	[ "$(stats "$sock" | jq .postgres.reconnects)" -ge 1 ]
	run -0 on STB "select count(*) from pg_stat_activity where application_name = 'labpulse-batch-commit'"
	assert_output 1
}

@test "through a PgBouncer in front of each node (transaction mode): the same failover, every event once" {
	bouncer_pair 2
	start_bc pb --from stream:pb@commit --consumer pb --trim-interval 0 --batch-size 20 --max-wait 10ms \
		--db "host=127.0.0.1,127.0.0.1 port=$B2S_PORT,$B2P_PORT user=labpulse password=labpulse dbname=labpulse target_session_attrs=read-write"
	feed pb pb 0 1000
	wait_until '[ "$(count P2 pb 2>/dev/null)" -gt 0 ]'
	feed pb pb 1000 2000
	pgha_stop P2 fast
	feed pb pb 2000 2500
	pgha_promote S2
	# PgBouncer 1.18 keeps telling new clients the in_hot_standby=on of its
	# first server login, so libpq alone would refuse the promoted node;
	# batch-commit asks the server itself (lib/pgconn.c)
	feed pb pb 2500 3000
	wait_count S2 pb 3000
	wait_until '[ "$(pending pb commit)" = 0 ]'
	run -0 on S2 "select count(distinct (student_id, event_id)) from events where class_id = 'pb'"
	assert_output 3000
	run -0 on S2 "select sum(events) from student_progress where class_id = 'pb'"
	assert_output 3000
	grep -q ': warning: lost PostgreSQL; retrying' "$pb_LOG"
}

@test "the PgBouncer of the dead primary listed first: batch-commit goes on to the next host" {
	# a PgBouncer whose server is gone still accepts logins and fails the
	# first query ("server login has been failing"), so libpq takes it for
	# a primary: batch-commit asks the server and tries the next host
	bouncer_pair 3
	start_bc pf --from stream:pf@commit --consumer pf --trim-interval 0 --batch-size 20 --max-wait 10ms \
		--db "host=127.0.0.1,127.0.0.1 port=$B3P_PORT,$B3S_PORT user=labpulse password=labpulse dbname=labpulse target_session_attrs=read-write"
	feed pf pf 0 500
	wait_count P3 pf 500
	pgha_stop P3 fast
	pgha_promote S3
	# the dead primary's PgBouncer refuses logins for itself now
	run psql -XtAq -d "host=127.0.0.1 port=$B3P_PORT user=labpulse password=labpulse dbname=labpulse" -c 'select 1'
	assert_failure
	feed pf pf 500 1000
	wait_count S3 pf 1000
	wait_until '[ "$(pending pf commit)" = 0 ]'
	run -0 on S3 "select count(distinct (student_id, event_id)) from events where class_id = 'pf'"
	assert_output 1000
}

@test "the old primary back as a standby behind the same PgBouncer: batch-commit leaves it for the new primary" {
	# batch-commit's connection to PgBouncer outlives the server behind it:
	# once that server is a standby every write fails with "cannot execute
	# COPY during recovery" on a connection that is otherwise fine
	bouncer_pair 4
	start_bc pd --from stream:pd@commit --consumer pd --trim-interval 0 --batch-size 20 --max-wait 10ms \
		--db "host=127.0.0.1,127.0.0.1 port=$B4P_PORT,$B4S_PORT user=labpulse password=labpulse dbname=labpulse target_session_attrs=read-write"
	feed pd pd 0 500
	wait_count P4 pd 500
	pgha_stop P4 fast
	pgha_promote S4
	# a new standby of S4 where P4 was, behind the same PgBouncer
	local dir
	dir=$(pgha_dir P4b)
	as_pgha "$(pgha_bin)/pg_basebackup" -h 127.0.0.1 -p "$S4_PORT" -U labpulse \
		-D "$dir/data" -R -X stream -c fast >"$dir/basebackup.log" 2>&1 ||
		{ cat "$dir/basebackup.log" >&2; false; }
	pgha_start P4b "$dir" "$P4_PORT"
	pgha_wait_streaming P4b
	feed pd pd 500 1000
	wait_count S4 pd 1000
	wait_until '[ "$(pending pd commit)" = 0 ]'
	run -0 on S4 "select count(distinct (student_id, event_id)) from events where class_id = 'pd'"
	assert_output 1000
	run -0 on S4 "select sum(events) from student_progress where class_id = 'pd'"
	assert_output 1000
	grep -q 'reason="the server is a standby now"' "$pd_LOG"
}
