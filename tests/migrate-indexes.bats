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

# base_mig: the first two shipped migrations alone in $BATS_TEST_TMPDIR/mig,
# for a test that numbers its own from 0003
base_mig() {
	mkdir -p "$BATS_TEST_TMPDIR/mig"
	cp "$MIG"/0001_tables.* "$MIG"/0002_indexes.* "$BATS_TEST_TMPDIR/mig/"
}

# Whatever the outcome: what the test started is gone before the next.
teardown() {
	stop_tracked
}

@test "labpulse up applied every migration: tables, then indexes built outside a transaction" {
	run -0 migrate-indexes status
	assert_line --regexp '^0001 +0001_tables +applied +[0-9-]+ [0-9:]+ *$'
	assert_line --regexp '^0002 +0002_indexes +applied +[0-9-]+ [0-9:]+ *$'
	assert_line --regexp '^0003 +0003_earned_indexes +applied +[0-9-]+ [0-9:]+ *$'
	assert_line --regexp '^1001 +1001_payload_gin +optional +- +not applied: see migrate-indexes add$'
	run -0 psql -tAXc "select version, state, transactional from labpulse_migrations order by 1"
	assert_output $'1|applied|t\n2|applied|f\n3|applied|f'
	# what the queries need, and no more (labpulse(7), INDEXES)
	run -0 psql -tAXc "select string_agg(c.relname, ',' order by c.relname) from pg_index i
	  join pg_class c on c.oid = i.indexrelid
	  where i.indrelid in ('events'::regclass, 'student_progress'::regclass) and i.indisvalid"
	assert_output "events_pkey,events_student_event_key,student_progress_pkey"
	run -0 psql -tAXc "select count(*) from pg_index i join pg_class c on c.oid = i.indexrelid
	  where c.relname in ('instructor_classes_class_idx', 'dead_events_failed_at_idx') and i.indisvalid"
	assert_output 2
	run -0 psql -tAXc "select string_agg(tablename, ',' order by tablename) from pg_tables where schemaname = 'public'"
	assert_output "dead_events,events,instructor_classes,instructors,labpulse_migrations,student_progress"
}

@test "up twice: the second run is a no-op" {
	run -0 migrate-indexes --dir "$MIG" up
	assert_output "nothing to apply: 3 migrations applied"
	run -0 psql -tAXc "select count(*) from labpulse_migrations"
	assert_output 3
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
	run -0 grep -c '^nothing to apply: 3 migrations applied$' "$BATS_TEST_TMPDIR/both"
	assert_output 1
	run -0 grep -c 'info: waiting for another migrate-indexes run' "$BATS_TEST_TMPDIR/both"
	assert_output 1
	run -0 psql -d mig_race -tAXc "select count(*) from labpulse_migrations where state = 'applied'"
	assert_output 3
}

@test "a failed migration stops with the statement and PostgreSQL's message; the history tells the truth" {
	fresh_db mig_fail
	base_mig
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
	base_mig
	printf 'CREATE INDEX CONCURRENTLY IF NOT EXISTS nope_idx ON no_such_table (a);\n' \
		>"$BATS_TEST_TMPDIR/mig/0003_conc.up.sql"
	run -65 --separate-stderr migrate-indexes --db dbname=mig_conc --dir "$BATS_TEST_TMPDIR/mig" up
	[[ $stderr == *'relation "no_such_table" does not exist'* ]]
	run -0 psql -d mig_conc -tAXc "select state, transactional from labpulse_migrations where version = 3"
	assert_output "failed|f"
}

@test "a CONCURRENTLY build that left an invalid index is not recorded as applied on a rerun" {
	fresh_db mig_inval
	base_mig
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
	[[ $stderr == *"a command is needed: plan, up, down, add, drop, status, verify, repair or advise"*"usage: labpulse migrate-indexes"* ]]
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

@test "optional migrations: add and drop apply and roll back one, recorded; up, down and plan leave them alone" {
	fresh_db mig_opt
	run -0 migrate-indexes --db dbname=mig_opt --dir "$MIG" up
	assert_line --index 2 --regexp '^applied 0003_earned_indexes '
	[ "${#lines[@]}" -eq 3 ]
	run -0 --separate-stderr migrate-indexes --db dbname=mig_opt --dir "$MIG" plan
	[ -z "$output" ]
	run -0 migrate-indexes --db dbname=mig_opt --dir "$MIG" add payload_gin
	assert_output --regexp '^applied 1001_payload_gin \([0-9]+ ms, outside a transaction\)$'
	run -0 migrate-indexes --db dbname=mig_opt --dir "$MIG" add 1001_payload_gin
	assert_output "nothing to add: 1001_payload_gin is applied"
	run -0 psql -d mig_opt -tAXc "select indisvalid from pg_index where indexrelid = 'events_payload_gin_idx'::regclass"
	assert_output t
	# the question it is for: the planner takes it (no rows: seq scans off)
	run -0 psql -d mig_opt -tAXc "set enable_seqscan = off" -c "explain (costs off)
	  select count(*) from events where payload @> '{\"cellId\": \"c1\"}'"
	assert_output --partial "Bitmap Index Scan on events_payload_gin_idx"
	run -0 migrate-indexes --db dbname=mig_opt --dir "$MIG" status
	assert_line --regexp '^1001 +1001_payload_gin +applied +[0-9-]+ [0-9:]+ *$'
	assert_line --regexp '^1002 +1002_class_timeline +optional +- +not applied: see migrate-indexes add$'
	run -0 migrate-indexes --db dbname=mig_opt --dir "$MIG" verify
	assert_output "verified: 4 applied migrations unchanged, 3 indexes valid"
	# down rolls back the last of DIR's, never an optional one
	run -0 migrate-indexes --db dbname=mig_opt --dir "$MIG" down
	assert_output --regexp '^rolled back 0003_earned_indexes '
	run -0 migrate-indexes --db dbname=mig_opt --dir "$MIG" up
	assert_output --regexp '^applied 0003_earned_indexes '
	run -0 migrate-indexes --db dbname=mig_opt --dir "$MIG" drop payload_gin
	assert_output --regexp '^rolled back 1001_payload_gin \([0-9]+ ms, outside a transaction\)$'
	run -0 psql -d mig_opt -tAXc "select to_regclass('events_payload_gin_idx') is null"
	assert_output t
	run -0 migrate-indexes --db dbname=mig_opt --dir "$MIG" drop payload_gin
	assert_output "nothing to drop: 1001_payload_gin is not applied"
	run -0 migrate-indexes --db dbname=mig_opt --dir "$MIG" status
	assert_line --regexp '^1001 +1001_payload_gin +rolled_back +- +not applied: see migrate-indexes add$'
	run -0 migrate-indexes --db dbname=mig_opt --dir "$MIG" verify
	assert_output "verified: 3 applied migrations unchanged, 2 indexes valid"
	# the instructors' reports of labpulse(7), INDEXES
	run -0 migrate-indexes --db dbname=mig_opt --dir "$MIG" add class_timeline
	run -0 migrate-indexes --db dbname=mig_opt --dir "$MIG" add class_errors
	run -0 psql -d mig_opt -tAXc "set enable_seqscan = off" -c "explain (costs off)
	  select event_time, student_id, event_type from events where class_id = 'c'
	  order by event_time desc limit 100"
	assert_output --partial "Index Scan using events_class_time_idx on events"
	run -0 psql -d mig_opt -tAXc "set enable_seqscan = off" -c "explain (costs off)
	  select student_id, count(*) from events where class_id = 'c' and has_error
	  and event_time > now() - interval '15 minutes' group by 1"
	assert_output --partial "events_class_errors_idx"
	run -0 psql -d mig_opt -tAXc "select version, state from labpulse_migrations order by 1"
	assert_output $'1|applied\n2|applied\n3|applied\n1001|rolled_back\n1002|applied\n1003|applied'
}

@test "add and drop: a NAME is needed, one, and an optional migration's: 64" {
	run -64 --separate-stderr migrate-indexes --dir "$MIG" add
	[[ $stderr == "labpulse-migrate-indexes: error: add NAME: the name of an optional migration is needed"*"usage: labpulse migrate-indexes"* ]]
	run -64 --separate-stderr migrate-indexes --dir "$MIG" drop a b
	[[ $stderr == *"one command only"* ]]
	run -64 --separate-stderr migrate-indexes --dir "$MIG" add nope
	[ "$stderr" = "labpulse-migrate-indexes: error: no optional migration nope in $MIG/optional" ]
	# the name of one of DIR is no optional migration's
	run -64 --separate-stderr migrate-indexes --dir "$MIG" drop 0002_indexes
	[ -z "$output" ]
}

@test "an optional migration numbered as one of DIR: 65; a hazardous one is refused by add unless --allow-hazard" {
	fresh_db mig_opt2
	base_mig
	mkdir "$BATS_TEST_TMPDIR/mig/optional"
	cp "$MIG/0002_indexes.up.sql" "$BATS_TEST_TMPDIR/mig/optional/0002_again.up.sql"
	run -65 --separate-stderr migrate-indexes --db dbname=mig_opt2 --dir "$BATS_TEST_TMPDIR/mig" status
	[[ $stderr == "labpulse-migrate-indexes: error: two migrations numbered 2: "* ]]
	rm "$BATS_TEST_TMPDIR/mig/optional/0002_again.up.sql"
	printf 'CREATE INDEX events_type_idx ON events (event_type);\n' >"$BATS_TEST_TMPDIR/mig/optional/1001_type.up.sql"
	run -0 migrate-indexes --db dbname=mig_opt2 --dir "$BATS_TEST_TMPDIR/mig" up
	run -1 --separate-stderr migrate-indexes --db dbname=mig_opt2 --dir "$BATS_TEST_TMPDIR/mig" add type
	[[ ${stderr_lines[0]} == "labpulse-migrate-indexes: error: 1001_type, statement 1: index-not-concurrent: "* ]]
	[ "${stderr_lines[-1]}" = "labpulse-migrate-indexes: error: applying nothing: 1001_type has hazards (see: migrate-indexes plan; --allow-hazard applies it anyway)" ]
	run -0 psql -d mig_opt2 -tAXc "select count(*) from labpulse_migrations where version = 1001"
	assert_output 0
	run -0 migrate-indexes --db dbname=mig_opt2 --dir "$BATS_TEST_TMPDIR/mig" --allow-hazard add type
	assert_output --regexp '^applied 1001_type \([0-9]+ ms\)$'
	# no .down.sql: drop refuses
	run -65 --separate-stderr migrate-indexes --db dbname=mig_opt2 --dir "$BATS_TEST_TMPDIR/mig" drop type
	[ "$stderr" = "labpulse-migrate-indexes: error: cannot drop 1001_type: no $BATS_TEST_TMPDIR/mig/optional/1001_type.down.sql" ]
}

@test "make install puts the optional migrations beside the others, and migrate-indexes of the install finds them" {
	root=$BATS_TEST_TMPDIR/root
	run -0 make -C "$TOP" --no-print-directory install DESTDIR="$root" PREFIX=/usr/local ENVFILE=/etc/default/labpulse
	for f in "$MIG"/*.sql "$MIG"/optional/*.sql; do
		rel=${f#"$MIG"/}
		cmp "$f" "$root/usr/local/share/labpulse/migrations/$rel"
	done
	[ -e "$root/usr/local/share/labpulse/migrations/optional/1001_payload_gin.up.sql" ]
	run -64 --separate-stderr migrate-indexes --dir "$root/usr/local/share/labpulse/migrations" add nope
	[[ $stderr == *"no optional migration nope in $root/usr/local/share/labpulse/migrations/optional" ]]
}
