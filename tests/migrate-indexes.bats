#!/usr/bin/env bats
# migrate-indexes: each migration once, recorded with its checksum, safe on a
# live database; against the stack's real PostgreSQL.

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
	MIG=$TOP/etc/migrations
}

# Whatever the outcome: what the test started is gone before the next.
teardown() {
	stop_tracked
}

@test "labpulse up applied every migration: tables, then indexes built outside a transaction" {
	run -0 migrate-indexes status
	assert_line --regexp '^0001 +0001_tables +applied +[0-9-]+ [0-9:]+ *$'
	assert_line --regexp '^0002 +0002_indexes +applied +[0-9-]+ [0-9:]+ *$'
	run -0 psql -tAXc "select version, state, transactional from labpulse_migrations order by 1"
	assert_output $'1|applied|t\n2|applied|f'
	run -0 psql -tAXc "select count(*) from pg_index i join pg_class c on c.oid = i.indexrelid
	  where c.relname in ('events_class_student_time_idx', 'events_class_time_idx', 'events_class_errors_idx',
	    'events_payload_gin_idx', 'student_progress_class_activity_idx', 'instructor_classes_class_idx',
	    'dead_events_failed_at_idx') and i.indisvalid"
	assert_output 7
	run -0 psql -tAXc "select string_agg(tablename, ',' order by tablename) from pg_tables where schemaname = 'public'"
	assert_output "dead_events,events,instructor_classes,instructors,labpulse_migrations,student_progress"
}

@test "up twice: the second run is a no-op" {
	run -0 migrate-indexes --dir "$MIG" up
	assert_output "nothing to apply: 2 migrations applied"
	run -0 psql -tAXc "select count(*) from labpulse_migrations"
	assert_output 2
}

@test "an applied file that changed is reported by status (exit 1) and warned about by up" {
	cp -r "$MIG" "$BATS_TEST_TMPDIR/mig"
	echo "-- edited after it was applied" >>"$BATS_TEST_TMPDIR/mig/0001_tables.up.sql"
	run -1 migrate-indexes --dir "$BATS_TEST_TMPDIR/mig" status
	assert_line --regexp '^0001 +0001_tables +applied .*CHANGED since applied \(checksum differs\)$'
	run -0 --separate-stderr migrate-indexes --dir "$BATS_TEST_TMPDIR/mig" up
	[[ $stderr == "labpulse-migrate-indexes: warning: applied migration changed since: 0001_tables (see: migrate-indexes status)" ]]
}

@test "two concurrent up runs on a fresh database: one applies, the other finds nothing to do" {
	fresh_db mig_race
	migrate-indexes --db dbname=mig_race --dir "$MIG" up >"$BATS_TEST_TMPDIR/a" 2>&1 3>&- &
	a=$!
	track "$a"
	migrate-indexes --db dbname=mig_race --dir "$MIG" up >"$BATS_TEST_TMPDIR/b" 2>&1 3>&- &
	b=$!
	track "$b"
	wait "$a"
	wait "$b"
	cat "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/b" >"$BATS_TEST_TMPDIR/both"
	run -0 grep -c '^applied 0001_tables' "$BATS_TEST_TMPDIR/both"
	assert_output 1
	run -0 grep -c '^nothing to apply: 2 migrations applied$' "$BATS_TEST_TMPDIR/both"
	assert_output 1
	run -0 grep -c 'info: waiting for another migrate-indexes run' "$BATS_TEST_TMPDIR/both"
	assert_output 1
	run -0 psql -d mig_race -tAXc "select count(*) from labpulse_migrations where state = 'applied'"
	assert_output 2
}

@test "a failed migration stops with the statement and PostgreSQL's message; the history tells the truth" {
	fresh_db mig_fail
	cp -r "$MIG" "$BATS_TEST_TMPDIR/mig"
	printf '%s\n' 'CREATE TABLE half_done (a int);' '-- a comment; with a semicolon' \
		"SELECT 'a;b', 1/0;" >"$BATS_TEST_TMPDIR/mig/0003_broken.up.sql"
	run -65 --separate-stderr migrate-indexes --db dbname=mig_fail --dir "$BATS_TEST_TMPDIR/mig" up
	[[ ${lines[0]} == "applied 0001_tables ("* && ${lines[1]} == "applied 0002_indexes ("* ]]
	[[ ${stderr_lines[0]} == "labpulse-migrate-indexes: error: migration 0003_broken failed at statement 2: division by zero" ]]
	[[ ${stderr_lines[1]} == "labpulse-migrate-indexes: error: the statement: SELECT 'a;b', 1/0" ]]
	run -0 psql -d mig_fail -tAXc "select state, transactional, failed_statement, error from labpulse_migrations where version = 3"
	assert_output "failed|t|SELECT 'a;b', 1/0|division by zero"
	# in a transaction: the first statement did not stay
	run -0 psql -d mig_fail -tAXc "select count(*) from pg_tables where tablename = 'half_done'"
	assert_output 0
	run -1 migrate-indexes --db dbname=mig_fail --dir "$BATS_TEST_TMPDIR/mig" status
	assert_line --regexp '^0003 +0003_broken +failed +- +division by zero$'
	# fixed, up applies it
	printf 'CREATE TABLE half_done (a int);\n' >"$BATS_TEST_TMPDIR/mig/0003_broken.up.sql"
	run -0 migrate-indexes --db dbname=mig_fail --dir "$BATS_TEST_TMPDIR/mig" up
	assert_output --regexp '^applied 0003_broken \([0-9]+ ms\)$'
}

@test "a failed CONCURRENTLY migration is recorded outside a transaction" {
	fresh_db mig_conc
	cp -r "$MIG" "$BATS_TEST_TMPDIR/mig"
	printf 'CREATE INDEX CONCURRENTLY IF NOT EXISTS nope_idx ON no_such_table (a);\n' \
		>"$BATS_TEST_TMPDIR/mig/0003_conc.up.sql"
	run -65 --separate-stderr migrate-indexes --db dbname=mig_conc --dir "$BATS_TEST_TMPDIR/mig" up
	[[ $stderr == *'relation "no_such_table" does not exist'* ]]
	run -0 psql -d mig_conc -tAXc "select state, transactional from labpulse_migrations where version = 3"
	assert_output "failed|f"
}

@test "a CONCURRENTLY build that left an invalid index is not recorded as applied on a rerun" {
	fresh_db mig_inval
	cp -r "$MIG" "$BATS_TEST_TMPDIR/mig"
	printf 'CREATE TABLE t3 (a int);\nINSERT INTO t3 VALUES (1), (1);\n' >"$BATS_TEST_TMPDIR/mig/0003_t3.up.sql"
	printf 'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t3_a_key ON t3 (a);\n' >"$BATS_TEST_TMPDIR/mig/0004_t3_key.up.sql"
	run -65 --separate-stderr migrate-indexes --db dbname=mig_inval --dir "$BATS_TEST_TMPDIR/mig" up
	[[ $stderr == *"could not create unique index"* ]]
	run -65 --separate-stderr migrate-indexes --db dbname=mig_inval --dir "$BATS_TEST_TMPDIR/mig" up
	[[ $stderr == "labpulse-migrate-indexes: error: migration 0004_t3_key failed: index t3_a_key is invalid (a CONCURRENTLY build failed); drop it with DROP INDEX CONCURRENTLY t3_a_key and run up again" ]]
	run -0 psql -d mig_inval -tAXc "select state from labpulse_migrations where version = 4"
	assert_output failed
	psql -d mig_inval -qAXc "DROP INDEX CONCURRENTLY t3_a_key" -c "DELETE FROM t3 WHERE ctid = (SELECT max(ctid) FROM t3)"
	run -0 migrate-indexes --db dbname=mig_inval --dir "$BATS_TEST_TMPDIR/mig" up
	assert_output --regexp '^applied 0004_t3_key '
}

@test "a recorded migration whose file is gone is flagged" {
	mkdir "$BATS_TEST_TMPDIR/only1"
	cp "$MIG/0001_tables.up.sql" "$BATS_TEST_TMPDIR/only1/"
	run -1 migrate-indexes --dir "$BATS_TEST_TMPDIR/only1" status
	assert_line --regexp '^0002 +0002_indexes +applied +- +FILE MISSING$'
}

@test "bad invocations: 64 with usage; a folder that cannot be read: 66; no database: 69" {
	run -64 --separate-stderr migrate-indexes
	[[ $stderr == *"a command is needed: plan, up, down, status, verify, repair or advise"*"usage: labpulse migrate-indexes"* ]]
	run -64 --separate-stderr migrate-indexes sideways
	[[ $stderr == *"unknown command 'sideways'"* ]]
	run -64 --separate-stderr migrate-indexes up status
	run -66 --separate-stderr migrate-indexes --dir /nonexistent up
	[[ $stderr == "labpulse-migrate-indexes: error: cannot read migrations folder /nonexistent: No such file or directory" ]]
	mkdir "$BATS_TEST_TMPDIR/badname"
	touch "$BATS_TEST_TMPDIR/badname/first.up.sql"
	run -65 --separate-stderr migrate-indexes --dir "$BATS_TEST_TMPDIR/badname" status
	[[ $stderr == *"first.up.sql: expected NNNN_name.up.sql" ]]
	run -69 --separate-stderr migrate-indexes --db "host=$BATS_TEST_TMPDIR port=1" --dir "$MIG" status
	[[ $stderr == "labpulse-migrate-indexes: error: cannot connect to PostgreSQL: "* ]]
}
