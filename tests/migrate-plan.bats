#!/usr/bin/env bats
# migrate-indexes plan: what a migration will lock, rewrite and risk, told
# before it runs; against the stack's real PostgreSQL.

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

# sql NAME TEXT: the migration file NAME.up.sql holding TEXT; sets $F.
sql() {
	F=$BATS_TEST_TMPDIR/$1.up.sql
	printf '%s\n' "$2" >"$F"
}

# hazard RULE BAD GOOD LINE: BAD alone is a migration with one hazard,
# RULE, whose message line is LINE; GOOD alone has none. Against the
# stack's database, where events exists.
hazard() {
	local rule=$1 bad=$2 good=$3 line=$4
	sql bad "$bad"
	run -1 --separate-stderr migrate-indexes plan "$F"
	assert_line --regexp "^bad: [0-9]+ statements?, .*, 1 hazard$"
	assert_line "    hazard $rule: $line"
	[ -z "$stderr" ]
	sql good "$good"
	run -0 --separate-stderr migrate-indexes plan "$F"
	assert_line --regexp "^good: [0-9]+ statements?, .*, 0 hazards$"
	refute_output --partial "    hazard "
	[ -z "$stderr" ]
}

@test "plan of the pending migrations on a fresh database: the shipped ones, clean, nothing applied" {
	fresh_db plan_fresh
	run -0 --separate-stderr migrate-indexes --db dbname=plan_fresh --dir "$MIG" plan
	assert_line --index 0 "0001_tables: 5 statements, in a transaction, 0 hazards"
	assert_line --index 1 "  line 4: CREATE TABLE on events: lock ACCESS EXCLUSIVE (new table)"
	assert_line "  line 63: CREATE TABLE on instructor_classes: lock ACCESS EXCLUSIVE (new table)"
	assert_line "0002_indexes: 7 statements, outside a transaction, one by one, 0 hazards"
	assert_line "  line 7: CREATE INDEX events_class_student_time_idx on events: lock SHARE UPDATE EXCLUSIVE (new table)"
	assert_line "  line 23: CREATE INDEX dead_events_failed_at_idx on dead_events: lock SHARE UPDATE EXCLUSIVE (new table)"
	assert_line "0003_earned_indexes: 5 statements, outside a transaction, one by one, 0 hazards"
	assert_line "  line 11: DROP INDEX events_payload_gin_idx on events: lock SHARE UPDATE EXCLUSIVE (new table)"
	assert_line "  line 15: DROP INDEX student_progress_class_activity_idx on student_progress: lock SHARE UPDATE EXCLUSIVE (new table)"
	# the optional ones are planned only as files
	refute_output --partial 1001_payload_gin
	[ "${#lines[@]}" -eq 20 ]
	refute_output --partial "    hazard "
	run -0 psql -d plan_fresh -tAXc "select to_regclass('events') is null"
	assert_output t
}

@test "plan of each shipped migration as a FILE, on a fresh database and on the stack's: clean" {
	fresh_db plan_each
	for f in "$MIG"/*.up.sql "$MIG"/optional/*.up.sql; do
		run -0 --separate-stderr migrate-indexes --db dbname=plan_each plan "$f"
		refute_output --partial "    hazard "
		[ -z "$stderr" ]
		# the stack's database has those of DIR applied: planned again, clean
		run -0 --separate-stderr migrate-indexes plan "$f"
		refute_output --partial "    hazard "
	done
}

@test "plan of the pending migrations only: an applied one is left out, a table made by an earlier pending one is new" {
	fresh_db plan_pending
	mkdir "$BATS_TEST_TMPDIR/mig"
	cp "$MIG"/0001_tables.* "$BATS_TEST_TMPDIR/mig/"
	run -0 migrate-indexes --db dbname=plan_pending --dir "$BATS_TEST_TMPDIR/mig" up
	cp "$MIG"/0002_indexes.* "$BATS_TEST_TMPDIR/mig/"
	printf 'CREATE TABLE notes (id bigint, body text);\n' >"$BATS_TEST_TMPDIR/mig/0003_notes.up.sql"
	printf -- '-- a plain build is fine on a table nobody uses yet\nCREATE INDEX notes_id_idx ON notes (id);\n' \
		>"$BATS_TEST_TMPDIR/mig/0004_notes_idx.up.sql"
	run -0 --separate-stderr migrate-indexes --db dbname=plan_pending --dir "$BATS_TEST_TMPDIR/mig" plan
	refute_output --partial 0001_tables
	assert_line --index 0 "0002_indexes: 7 statements, outside a transaction, one by one, 0 hazards"
	assert_line --index 1 "  line 7: CREATE INDEX events_class_student_time_idx on events: lock SHARE UPDATE EXCLUSIVE"
	assert_line "0003_notes: 1 statement, in a transaction, 0 hazards"
	assert_line "  line 1: CREATE TABLE on notes: lock ACCESS EXCLUSIVE (new table)"
	assert_line "0004_notes_idx: 1 statement, in a transaction, 0 hazards"
	assert_line "  line 2: CREATE INDEX notes_id_idx on notes: lock SHARE (new table)"
	# on its own, the same index is a hazard once notes exists
	psql -d plan_pending -qtAXc "create table notes (id bigint, body text)"
	run -1 --separate-stderr migrate-indexes --db dbname=plan_pending plan "$BATS_TEST_TMPDIR/mig/0004_notes_idx.up.sql"
	assert_line "    hazard index-not-concurrent: CREATE INDEX without CONCURRENTLY blocks writes to notes for the whole build; use CREATE INDEX CONCURRENTLY"
}

@test "a table with rows: its row estimate, its size and an estimated build time" {
	fresh_db plan_size
	psql -d plan_size -qtAXc "create table t (a int, b text)" \
		-c "insert into t select i, md5(i::text) from generate_series(1, 20000) i" -c "analyze t"
	size=$(psql -d plan_size -tAXc "select pg_size_pretty(pg_total_relation_size('t'))")
	bytes=$(psql -d plan_size -tAXc "select pg_total_relation_size('t')")
	sql 0005_t_a "CREATE INDEX CONCURRENTLY t_a_idx ON t (a);"
	run -0 --separate-stderr migrate-indexes --db dbname=plan_size plan "$F"
	assert_output - <<-EOF
	0005_t_a: 1 statement, outside a transaction, one by one, 0 hazards
	  line 1: CREATE INDEX t_a_idx on t: lock SHARE UPDATE EXCLUSIVE
	    t: about 20000 rows, $size; build under 0.1 s (estimate: heap at 50 MB/s)
	EOF
	run -0 --separate-stderr migrate-indexes --db dbname=plan_size --json plan "$F"
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/plan.json"
	run -0 jq -c '[.migration, .transaction, .hazards, .statements[0].lock, .statements[0].rows_estimate,
	    .statements[0].bytes, .statements[0].build_seconds_estimate]' "$BATS_TEST_TMPDIR/plan.json"
	assert_output "[\"0005_t_a\",false,0,\"SHARE UPDATE EXCLUSIVE\",20000,$bytes,0]"
}

@test "--json: the hazards as objects, one JSON object a migration" {
	sql 0006_two "CREATE INDEX events_type_idx ON events (event_type);
ALTER TABLE events ALTER COLUMN cell_index TYPE bigint;"
	run -1 --separate-stderr migrate-indexes --json plan "$F" "$MIG/0002_indexes.up.sql"
	[ "${#lines[@]}" -eq 2 ]
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/plan.json"
	run -0 jq -r '.statements[] | .line as $l | .hazards[] | "\($l): \(.rule)"' "$BATS_TEST_TMPDIR/plan.json"
	assert_output $'1: index-not-concurrent\n2: column-type-change'
	run -0 jq -c '[.migration, .hazards, (.statements | length), .statements[1].rewrite]' "$BATS_TEST_TMPDIR/plan.json"
	assert_output $'["0006_two",2,2,true]\n["0002_indexes",0,7,false]'
}

@test "index-not-concurrent: CREATE INDEX on a table that exists, and with CONCURRENTLY" {
	hazard index-not-concurrent \
		"CREATE INDEX events_type_idx ON events (event_type);" \
		"CREATE INDEX CONCURRENTLY events_type_idx ON events (event_type);" \
		"CREATE INDEX without CONCURRENTLY blocks writes to events for the whole build; use CREATE INDEX CONCURRENTLY"
	sql bad "CREATE INDEX events_type_idx ON events (event_type);"
	run -1 migrate-indexes plan "$F"
	assert_line "  line 1: CREATE INDEX events_type_idx on events: lock SHARE"
}

@test "drop-index-not-concurrent: DROP INDEX, and with CONCURRENTLY" {
	hazard drop-index-not-concurrent \
		"DROP INDEX events_student_event_key;" \
		"DROP INDEX CONCURRENTLY events_student_event_key;" \
		"DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on events, blocking reads and writes; use DROP INDEX CONCURRENTLY"
}

@test "reindex-not-concurrent: REINDEX, and with CONCURRENTLY" {
	hazard reindex-not-concurrent \
		"REINDEX INDEX events_student_event_key;" \
		"REINDEX INDEX CONCURRENTLY events_student_event_key;" \
		"REINDEX without CONCURRENTLY blocks writes to events (and reads using the index); use REINDEX ... CONCURRENTLY"
}

@test "concurrently-in-transaction: CONCURRENTLY after BEGIN, and without it" {
	hazard concurrently-in-transaction \
		$'BEGIN;\nCREATE INDEX CONCURRENTLY events_type_idx ON events (event_type);\nCOMMIT;' \
		$'CREATE INDEX CONCURRENTLY events_type_idx ON events (event_type);\nANALYZE events;' \
		"CREATE INDEX CONCURRENTLY cannot run inside a transaction block; keep it out of BEGIN ... COMMIT"
	sql bad $'BEGIN;\nCREATE INDEX CONCURRENTLY events_type_idx ON events (event_type);\nCOMMIT;'
	run -1 migrate-indexes plan "$F"
	assert_line "  line 2: CREATE INDEX events_type_idx on events: lock SHARE UPDATE EXCLUSIVE"
}

@test "concurrently-if-not-exists: IF NOT EXISTS naming an INVALID leftover, and naming none" {
	fresh_db plan_invalid
	psql -d plan_invalid -qtAXc "create table dup (a int)" -c "insert into dup values (1), (1)"
	# a unique build over duplicates fails and leaves its index INVALID
	run psql -d plan_invalid -qtAXc "create unique index concurrently dup_a_key on dup (a)"
	[ "$status" -ne 0 ]
	sql bad "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS dup_a_key ON dup (a);"
	run -1 --separate-stderr migrate-indexes --db dbname=plan_invalid plan "$F"
	assert_line "    hazard concurrently-if-not-exists: dup_a_key exists and is INVALID: IF NOT EXISTS skips it; DROP INDEX CONCURRENTLY dup_a_key first (or run repair)"
	sql good "CREATE INDEX CONCURRENTLY IF NOT EXISTS dup_a_idx ON dup (a);"
	run -0 --separate-stderr migrate-indexes --db dbname=plan_invalid plan "$F"
	refute_output --partial "    hazard "
}

@test "without the database a leftover cannot be ruled out: IF NOT EXISTS is a hazard, a warning says why" {
	run -1 --separate-stderr env PGHOST="$BATS_TEST_TMPDIR/nowhere" \
		migrate-indexes plan "$MIG/0002_indexes.up.sql"
	assert_line --index 0 "0002_indexes: 7 statements, outside a transaction, one by one, 7 hazards"
	assert_line "    hazard concurrently-if-not-exists: IF NOT EXISTS skips an INVALID events_class_time_idx left by a failed build; check (status, repair) before a rerun"
	refute_output --partial "rows"
	[[ $stderr == "labpulse-migrate-indexes: warning: cannot connect to PostgreSQL, planning without the catalog:"* ]]
	run -0 --separate-stderr env PGHOST="$BATS_TEST_TMPDIR/nowhere" \
		migrate-indexes plan "$MIG/0001_tables.up.sql"
	assert_line --index 0 "0001_tables: 5 statements, in a transaction, 0 hazards"
}

@test "volatile-default: ADD COLUMN with a volatile DEFAULT, and with a constant or stable one" {
	hazard volatile-default \
		"ALTER TABLE events ADD COLUMN token uuid DEFAULT gen_random_uuid();" \
		"ALTER TABLE events ADD COLUMN seen_at timestamptz NOT NULL DEFAULT now(), ADD COLUMN n int DEFAULT 0;" \
		"DEFAULT gen_random_uuid() is volatile: rewrites events under ACCESS EXCLUSIVE; add the column without it, SET DEFAULT, backfill in batches"
	sql bad "ALTER TABLE events ADD COLUMN token uuid DEFAULT gen_random_uuid();"
	run -1 migrate-indexes plan "$F"
	assert_line "  line 1: ALTER TABLE ADD COLUMN on events: lock ACCESS EXCLUSIVE, rewrites the table"
}

@test "volatile-default: a function of one's own is judged by the catalog" {
	fresh_db plan_volatile
	psql -d plan_volatile -qtAXc "create table t (a int)" \
		-c "create function fixed() returns int immutable language sql as 'select 1'" \
		-c "create function moving() returns int volatile language sql as 'select 1'"
	sql good "ALTER TABLE t ADD COLUMN b int DEFAULT fixed();"
	run -0 migrate-indexes --db dbname=plan_volatile plan "$F"
	sql bad "ALTER TABLE t ADD COLUMN b int DEFAULT moving();"
	run -1 migrate-indexes --db dbname=plan_volatile plan "$F"
	assert_line "    hazard volatile-default: DEFAULT moving() is volatile: rewrites t under ACCESS EXCLUSIVE; add the column without it, SET DEFAULT, backfill in batches"
}

@test "column-type-change: ALTER COLUMN TYPE, and SET DEFAULT" {
	hazard column-type-change \
		"ALTER TABLE events ALTER COLUMN cell_index TYPE bigint;" \
		"ALTER TABLE events ALTER COLUMN cell_index SET DEFAULT 0;" \
		"changing the type of cell_index rewrites events and its indexes under ACCESS EXCLUSIVE; add a new column, backfill, switch"
}

@test "constraint-not-valid: CHECK and FOREIGN KEY without NOT VALID, and with it" {
	hazard constraint-not-valid \
		"ALTER TABLE events ADD CONSTRAINT events_cell_index_check CHECK (cell_index >= 0);" \
		$'ALTER TABLE events ADD CONSTRAINT events_cell_index_check CHECK (cell_index >= 0) NOT VALID;\nALTER TABLE events VALIDATE CONSTRAINT events_cell_index_check;' \
		"CHECK scans events under ACCESS EXCLUSIVE; add it NOT VALID, then VALIDATE CONSTRAINT"
	hazard constraint-not-valid \
		"ALTER TABLE instructor_classes ADD CONSTRAINT ic_fk FOREIGN KEY (instructor_id) REFERENCES instructors (id);" \
		"ALTER TABLE instructor_classes ADD CONSTRAINT ic_fk FOREIGN KEY (instructor_id) REFERENCES instructors (id) NOT VALID;" \
		"FOREIGN KEY scans instructor_classes and blocks its writes; add it NOT VALID, then VALIDATE CONSTRAINT"
}

@test "unique-constraint: ADD UNIQUE building its index, and USING INDEX" {
	hazard unique-constraint \
		"ALTER TABLE events ADD CONSTRAINT events_cell_key UNIQUE (cell_id);" \
		"ALTER TABLE events ADD CONSTRAINT events_cell_key UNIQUE USING INDEX events_cell_key;" \
		"UNIQUE builds its index under ACCESS EXCLUSIVE on events; CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX"
}

@test "set-not-null: SET NOT NULL, and after a validated CHECK (col IS NOT NULL), in the file or in the catalog" {
	hazard set-not-null \
		"ALTER TABLE events ALTER COLUMN session_id SET NOT NULL;" \
		$'ALTER TABLE events ADD CONSTRAINT events_session_nn CHECK (session_id IS NOT NULL) NOT VALID;\nALTER TABLE events VALIDATE CONSTRAINT events_session_nn;\nALTER TABLE events ALTER COLUMN session_id SET NOT NULL;' \
		"SET NOT NULL scans events under ACCESS EXCLUSIVE; first ADD CHECK (session_id IS NOT NULL) NOT VALID and VALIDATE it"
	fresh_db plan_notnull
	psql -d plan_notnull -qtAXc "create table t (a int, b int)" \
		-c "alter table t add constraint t_a_nn check (a is not null)"
	sql good "ALTER TABLE t ALTER COLUMN a SET NOT NULL;"
	run -0 migrate-indexes --db dbname=plan_notnull plan "$F"
	sql bad "ALTER TABLE t ALTER COLUMN b SET NOT NULL;"
	run -1 migrate-indexes --db dbname=plan_notnull plan "$F"
	assert_line "    hazard set-not-null: SET NOT NULL scans t under ACCESS EXCLUSIVE; first ADD CHECK (b IS NOT NULL) NOT VALID and VALIDATE it"
}

@test "timeout-zero: lock_timeout or statement_timeout set to 0, and to a finite value" {
	hazard timeout-zero \
		"SET lock_timeout = 0;" \
		"SET lock_timeout = '5s';" \
		"lock_timeout = 0: a statement waits for its lock without bound, and every query queued behind it stalls; leave it to up (--lock-timeout)"
	hazard timeout-zero \
		"SET statement_timeout TO '0';" \
		"SET statement_timeout TO '10min';" \
		"statement_timeout = 0: a statement may hold its locks without bound; leave it to up (--statement-timeout)"
}

@test "comments, strings and quoted identifiers do not fool the classifier" {
	sql 0007_quiet $'-- CREATE INDEX events_type_idx ON events (event_type);\n/* DROP INDEX events_class_time_idx; */\nSELECT \'ALTER TABLE events ALTER cell_index TYPE bigint; SET lock_timeout = 0\';\nSELECT $x$ REINDEX TABLE events $x$;'
	run -0 --separate-stderr migrate-indexes plan "$F"
	assert_output - <<-'EOF'
	0007_quiet: 2 statements, in a transaction, 0 hazards
	  line 3: SELECT: lock ACCESS SHARE
	  line 4: SELECT: lock ACCESS SHARE
	EOF
	sql 0008_loud $'CREATE /* CONCURRENTLY */ INDEX "concurrently" ON "events" (event_type);'
	run -1 --separate-stderr migrate-indexes plan "$F"
	assert_line "    hazard index-not-concurrent: CREATE INDEX without CONCURRENTLY blocks writes to events for the whole build; use CREATE INDEX CONCURRENTLY"
}

@test "a FILE that cannot be parsed: exit 65 naming it" {
	sql 0009_broken "SELECT 'never closed;"
	run -65 --separate-stderr migrate-indexes plan "$F"
	[[ $stderr == *"$F: unterminated quote or comment"* ]]
}
