#!/usr/bin/env bats
# migrate-indexes down, verify, repair, advise, lock timeouts and progress:
# against the stack's real PostgreSQL, each test in a scratch database.

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

# Whatever the outcome: the background psql sessions and tmux servers a
# test started are stopped.
teardown() {
	stop_tracked
	if [ -n "${TMUX_SOCK:-}" ]; then
		tmux -L "$TMUX_SOCK" kill-server 2>/dev/null || true
	fi
}

# The catalog of the public schema but the history: tables, columns,
# indexes, constraints.
catalog() {
	psql -d "$1" -tAXc "
	  select c.relname, c.relkind::text, coalesce(pg_get_indexdef(c.oid), ''),
	    (select string_agg(attname || ':' || format_type(atttypid, atttypmod), ',' order by attnum)
	       from pg_attribute where attrelid = c.oid and attnum > 0 and not attisdropped)
	  from pg_class c
	  where c.relnamespace = 'public'::regnamespace and c.relname !~ '^labpulse_migrations'
	  union all
	  select conrelid::regclass::text, 'constraint ' || conname, pg_get_constraintdef(oid), ''
	  from pg_constraint where connamespace = 'public'::regnamespace
	    and conrelid <> 'labpulse_migrations'::regclass
	  order by 1, 2, 3"
}

@test "bad values of the new flags and commands: 64 with the usage" {
	for args in "--lock-timeout 0 up" "--lock-timeout soon up" "--lock-timeout 11m up" \
		"--lock-retries -1 up" "--lock-retries 101 up" "--lock-retries many up" \
		"--statement-timeout 0 up" "--statement-timeout 2d up" \
		"down 0" "down x" "down 65" "down 1 2" "--json up" "--json status" "verify now"; do
		# shellcheck disable=SC2086
		run -64 --separate-stderr migrate-indexes --dir "$MIG" $args
		[[ $stderr == *"usage: labpulse migrate-indexes"* ]] || { echo "$args: $stderr"; false; }
		[ -z "$output" ]
	done
	run -64 --separate-stderr migrate-indexes --lock-timeout 0 up
	[[ ${stderr_lines[0]} == "labpulse-migrate-indexes: error: --lock-timeout: "* ]]
	run -64 --separate-stderr migrate-indexes down 0
	[[ ${stderr_lines[0]} == "labpulse-migrate-indexes: error: down N: "* ]]
}

@test "down then up returns to the same catalog; the history says rolled_back between" {
	fresh_db mig_down
	run -0 migrate-indexes --db dbname=mig_down --dir "$MIG" up
	catalog mig_down >"$BATS_TEST_TMPDIR/before"
	[ "$(grep -c . "$BATS_TEST_TMPDIR/before")" -gt 20 ]
	run -0 migrate-indexes --db dbname=mig_down --dir "$MIG" down
	assert_output --regexp '^rolled back 0003_earned_indexes \([0-9]+ ms, outside a transaction\)$'
	# 0003's .down.sql builds again what it dropped
	run -0 psql -d mig_down -tAXc "select count(*) from pg_indexes where indexname in ('events_class_time_idx',
	  'events_class_student_time_idx', 'events_class_errors_idx', 'events_payload_gin_idx',
	  'student_progress_class_activity_idx')"
	assert_output 5
	run -0 migrate-indexes --db dbname=mig_down --dir "$MIG" down
	assert_output --regexp '^rolled back 0002_indexes \([0-9]+ ms, outside a transaction\)$'
	run -0 psql -d mig_down -tAXc "select count(*) from pg_indexes where indexname = 'events_class_time_idx'"
	assert_output 0
	run -0 --separate-stderr migrate-indexes --db dbname=mig_down --dir "$MIG" down 5
	assert_output --regexp '^rolled back 0001_tables \([0-9]+ ms\)$'
	[ "$stderr" = "labpulse-migrate-indexes: warning: down 5, but only 1 applied: rolling back that" ]
	run -0 psql -d mig_down -tAXc "select version, state, applied_at is null from labpulse_migrations order by 1"
	assert_output $'1|rolled_back|t\n2|rolled_back|t\n3|rolled_back|t'
	run -0 psql -d mig_down -tAXc "select count(*) from pg_tables where schemaname = 'public'"
	assert_output 1
	run -0 migrate-indexes --db dbname=mig_down --dir "$MIG" status
	assert_line --regexp '^0001 +0001_tables +rolled_back +- *$'
	run -0 migrate-indexes --db dbname=mig_down --dir "$MIG" down
	assert_output "nothing to roll back: no migration is applied"
	run -0 migrate-indexes --db dbname=mig_down --dir "$MIG" up
	assert_line --index 0 --regexp '^applied 0001_tables '
	assert_line --index 1 --regexp '^applied 0002_indexes '
	assert_line --index 2 --regexp '^applied 0003_earned_indexes '
	catalog mig_down >"$BATS_TEST_TMPDIR/after"
	run -0 diff "$BATS_TEST_TMPDIR/before" "$BATS_TEST_TMPDIR/after"
}

@test "down without a .down.sql refuses before rolling anything back: 65" {
	fresh_db mig_nodown
	base_mig
	printf 'CREATE TABLE t3 (a int);\n' >"$BATS_TEST_TMPDIR/mig/0003_t3.up.sql"
	run -0 migrate-indexes --db dbname=mig_nodown --dir "$BATS_TEST_TMPDIR/mig" up
	run -65 --separate-stderr migrate-indexes --db dbname=mig_nodown --dir "$BATS_TEST_TMPDIR/mig" down 2
	[[ $stderr == "labpulse-migrate-indexes: error: cannot roll back 0003_t3: no $BATS_TEST_TMPDIR/mig/0003_t3.down.sql" ]]
	run -0 psql -d mig_nodown -tAXc "select string_agg(state, ',' order by version) from labpulse_migrations"
	assert_output "applied,applied,applied"
}

@test "verify: clean, then an edited applied file, a missing and an invalid index: 65 naming each" {
	fresh_db mig_verify
	base_mig
	run -0 migrate-indexes --db dbname=mig_verify --dir "$BATS_TEST_TMPDIR/mig" verify
	assert_output "verified: 0 applied migrations unchanged, 0 indexes valid"
	run -0 migrate-indexes --db dbname=mig_verify --dir "$BATS_TEST_TMPDIR/mig" up
	run -0 migrate-indexes --db dbname=mig_verify --dir "$BATS_TEST_TMPDIR/mig" verify
	assert_output "verified: 2 applied migrations unchanged, 7 indexes valid"
	echo "-- edited after it was applied" >>"$BATS_TEST_TMPDIR/mig/0001_tables.up.sql"
	run -65 --separate-stderr migrate-indexes --db dbname=mig_verify --dir "$BATS_TEST_TMPDIR/mig" verify
	[ "$stderr" = "labpulse-migrate-indexes: error: $BATS_TEST_TMPDIR/mig/0001_tables.up.sql: changed since it was applied (checksum differs)" ]
	[ -z "$output" ]
	cp "$MIG/0001_tables.up.sql" "$BATS_TEST_TMPDIR/mig/"
	psql -d mig_verify -qAXc "drop index events_class_time_idx"
	# an index left invalid, as a failed CONCURRENTLY build leaves it
	psql -d mig_verify -qAXc "update pg_index set indisvalid = false where indexrelid = 'dead_events_failed_at_idx'::regclass"
	run -65 --separate-stderr migrate-indexes --db dbname=mig_verify --dir "$BATS_TEST_TMPDIR/mig" verify
	[ "${stderr_lines[*]}" = "labpulse-migrate-indexes: error: index events_class_time_idx of 0002_indexes is missing labpulse-migrate-indexes: error: index dead_events_failed_at_idx of 0002_indexes is invalid (see: migrate-indexes repair)" ]
	# an index a later migration drops is not expected any more
	psql -d mig_verify -qAXc "update pg_index set indisvalid = true where indexrelid = 'dead_events_failed_at_idx'::regclass"
	printf 'DROP INDEX CONCURRENTLY IF EXISTS events_class_time_idx;\n' >"$BATS_TEST_TMPDIR/mig/0003_drop.up.sql"
	run -0 migrate-indexes --db dbname=mig_verify --dir "$BATS_TEST_TMPDIR/mig" up
	run -0 migrate-indexes --db dbname=mig_verify --dir "$BATS_TEST_TMPDIR/mig" verify
	assert_output "verified: 3 applied migrations unchanged, 6 indexes valid"
}

@test "a failed unique CONCURRENTLY build: status names the invalid index, repair drops it and rebuilds it once the duplicates are gone" {
	fresh_db mig_repair
	base_mig
	printf 'CREATE TABLE t3 (a int);\nINSERT INTO t3 VALUES (1), (1), (2);\n' >"$BATS_TEST_TMPDIR/mig/0003_t3.up.sql"
	printf 'CREATE UNIQUE INDEX CONCURRENTLY t3_a_key ON t3 (a);\n' >"$BATS_TEST_TMPDIR/mig/0004_t3_key.up.sql"
	run -65 --separate-stderr migrate-indexes --db dbname=mig_repair --dir "$BATS_TEST_TMPDIR/mig" up
	[[ $stderr == *"could not create unique index \"t3_a_key\""* ]]
	run -1 migrate-indexes --db dbname=mig_repair --dir "$BATS_TEST_TMPDIR/mig" status
	assert_line "invalid index t3_a_key on t3: a failed build left it; it slows writes and serves no query (see: migrate-indexes repair)"
	# the duplicates are still there: dropped, the rebuild fails, and what
	# it left is dropped too
	run -65 --separate-stderr migrate-indexes --db dbname=mig_repair --dir "$BATS_TEST_TMPDIR/mig" repair
	assert_output $'dropped invalid index t3_a_key on t3\ndropped invalid index t3_a_key on t3'
	[[ $stderr == "labpulse-migrate-indexes: error: cannot rebuild t3_a_key as 0004_t3_key defines it: could not create unique index \"t3_a_key\""* ]]
	run -0 psql -d mig_repair -tAXc "select count(*) from pg_class where relname = 't3_a_key'"
	assert_output 0
	# the migration again: invalid again
	run -65 migrate-indexes --db dbname=mig_repair --dir "$BATS_TEST_TMPDIR/mig" up
	run -0 psql -d mig_repair -tAXc "select indisvalid from pg_index where indexrelid = 't3_a_key'::regclass"
	assert_output f
	psql -d mig_repair -qAXc "delete from t3 where ctid = (select max(ctid) from t3 where a = 1)"
	run -0 migrate-indexes --db dbname=mig_repair --dir "$BATS_TEST_TMPDIR/mig" repair
	assert_output $'dropped invalid index t3_a_key on t3\nrebuilt t3_a_key as 0004_t3_key defines it'
	run -0 psql -d mig_repair -tAXc "select indisvalid, indisunique from pg_index where indexrelid = 't3_a_key'::regclass"
	assert_output "t|t"
	run -0 migrate-indexes --db dbname=mig_repair --dir "$BATS_TEST_TMPDIR/mig" repair
	assert_output "no invalid indexes to repair"
	# not labpulse's: left alone, and said so
	psql -d mig_repair -qAXc "create table other (a int)" -c "create index other_a_idx on other (a)" \
		-c "update pg_index set indisvalid = false where indexrelid = 'other_a_idx'::regclass"
	run -0 --separate-stderr migrate-indexes --db dbname=mig_repair --dir "$BATS_TEST_TMPDIR/mig" repair
	assert_output "no invalid indexes to repair"
	[ "$stderr" = "labpulse-migrate-indexes: warning: leaving invalid index other_a_idx on other: neither it nor its table is labpulse's" ]
}

@test "advise names a duplicate, a prefix, an unused index and a foreign key without one, as a table and as JSON" {
	fresh_db mig_advise
	psql -d mig_advise -qAXc "
	  create table parent (id int primary key);
	  create table child (id int primary key, parent_id int references parent (id), a int, b int);
	  insert into child select g, null, g % 10, g from generate_series(1, 1000) g;
	  create index child_a_idx on child (a);
	  create index child_a_copy_idx on child (a);
	  create index child_a_b_idx on child (a, b);"
	run -0 migrate-indexes --db dbname=mig_advise advise
	assert_line --index 0 --regexp '^KIND +TABLE +INDEX +SIZE +NOTE$'
	assert_line --regexp '^duplicate +child +child_a_copy_idx +[0-9]+ (bytes|kB) +same columns as child_a_idx$'
	assert_line --regexp '^prefix +child +child_a_idx +[0-9]+ (bytes|kB) +its columns lead child_a_b_idx$'
	assert_line --regexp '^unused +child +child_a_b_idx +[0-9]+ (bytes|kB) +no scans since '
	assert_line --regexp '^foreign-key +child +- +[0-9]+ (bytes|kB) +foreign key child_parent_id_fkey \(parent_id\) has no index: each delete or key update of parent scans child$'
	refute_line --regexp '^duplicate +child +child_a_idx '
	refute_line --regexp '^unused +[a-z]+ +(parent|child)_pkey '
	run -0 migrate-indexes --db dbname=mig_advise --json advise
	echo "$output" >"$BATS_TEST_TMPDIR/advise.json"
	run -0 jq -r '.advice[] | select(.kind == "duplicate") | "\(.table) \(.index) \(.other) \(.bytes > 0)"' "$BATS_TEST_TMPDIR/advise.json"
	assert_output "child child_a_copy_idx child_a_idx true"
	run -0 jq -r '.advice[] | select(.kind == "foreign-key") | "\(.table) \(.index)"' "$BATS_TEST_TMPDIR/advise.json"
	assert_output "child null"
	run -0 jq -r 'has("stats_reset")' "$BATS_TEST_TMPDIR/advise.json"
	assert_output true
	# an index in use, needed by no constraint, is not unused
	psql -d mig_advise -qAXc "set enable_seqscan = off; select count(*) from child where a = 3 and b = 3"
	psql -d mig_advise -qAXc "drop index child_a_idx; drop index child_a_copy_idx; create index child_parent_idx on child (parent_id)"
	wait_until '[ "$(psql -d mig_advise -tAXc "select idx_scan from pg_stat_user_indexes where indexrelname = '\''child_a_b_idx'\''")" -gt 0 ]'
	run -0 migrate-indexes --db dbname=mig_advise advise
	assert_output --regexp '^KIND +TABLE +INDEX +SIZE +NOTE
unused +child +child_parent_idx .*$'
}

@test "a lock timeout is retried with backoff while another session holds ACCESS EXCLUSIVE; up succeeds once it lets go" {
	fresh_db mig_lock
	base_mig
	printf 'CREATE TABLE lockme (a int);\n' >"$BATS_TEST_TMPDIR/mig/0003_lockme.up.sql"
	run -0 migrate-indexes --db dbname=mig_lock --dir "$BATS_TEST_TMPDIR/mig" up
	printf 'CREATE INDEX CONCURRENTLY lockme_a_idx ON lockme (a);\n' >"$BATS_TEST_TMPDIR/mig/0004_lockme_a.up.sql"
	PGAPPNAME=locker psql -d mig_lock -qAX -c "begin" -c "lock table lockme in access exclusive mode" \
		-c "select pg_sleep(120)" >/dev/null 2>&1 3>&- &
	track "$!"
	wait_until '[ "$(psql -d mig_lock -tAXc "select count(*) from pg_locks where relation = '\''lockme'\''::regclass and mode = '\''AccessExclusiveLock'\'' and granted")" = 1 ]'
	# out of retries: 75, try again later; nothing left behind
	run -75 --separate-stderr migrate-indexes --db dbname=mig_lock --dir "$BATS_TEST_TMPDIR/mig" \
		--lock-timeout 100ms --lock-retries 1 up
	[[ ${stderr_lines[0]} == "labpulse-migrate-indexes: warning: lock timeout in 0004_lockme_a at statement 1; retry 1 of 1 in 200 ms: canceling statement due to lock timeout"* ]]
	[ "${stderr_lines[-1]}" = "labpulse-migrate-indexes: error: gave up after 2 lock timeouts" ]
	run -0 psql -d mig_lock -tAXc "select state from labpulse_migrations where version = 4"
	assert_output failed
	run -0 psql -d mig_lock -tAXc "select count(*) from pg_class where relname = 'lockme_a_idx'"
	assert_output 0
	# with retries enough: it waits, retrying, until the lock is let go
	migrate-indexes --db dbname=mig_lock --dir "$BATS_TEST_TMPDIR/mig" --lock-timeout 100ms \
		--lock-retries 30 up >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" 3>&- &
	mig=$!
	track "$mig"
	wait_until '[ "$(grep -c "warning: lock timeout in 0004_lockme_a" "$BATS_TEST_TMPDIR/err")" -ge 2 ]'
	psql -d mig_lock -qtAXc "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'locker'" >/dev/null
	st=0
	wait "$mig" || st=$?
	[ "$st" -eq 0 ] || { cat "$BATS_TEST_TMPDIR/err"; false; }
	run -0 cat "$BATS_TEST_TMPDIR/out"
	assert_output --regexp '^applied 0004_lockme_a \([0-9]+ ms, outside a transaction\)$'
	run -0 grep -c 'retry [0-9]* of 30 in [0-9]* ms: canceling statement due to lock timeout' "$BATS_TEST_TMPDIR/err"
	[ "$output" -ge 2 ]
	run -0 psql -d mig_lock -tAXc "select indisvalid from pg_index where indexrelid = 'lockme_a_idx'::regclass"
	assert_output t
}

@test "a lock timeout in a transactional migration retries the whole transaction" {
	fresh_db mig_locktx
	base_mig
	printf 'CREATE TABLE lockme (a int);\n' >"$BATS_TEST_TMPDIR/mig/0003_lockme.up.sql"
	run -0 migrate-indexes --db dbname=mig_locktx --dir "$BATS_TEST_TMPDIR/mig" up
	printf 'CREATE TABLE side (a int);\nALTER TABLE lockme ADD COLUMN b int;\n' >"$BATS_TEST_TMPDIR/mig/0004_lockme_b.up.sql"
	PGAPPNAME=locker psql -d mig_locktx -qAX -c "begin" -c "lock table lockme in access exclusive mode" \
		-c "select pg_sleep(120)" >/dev/null 2>&1 3>&- &
	track "$!"
	wait_until '[ "$(psql -d mig_locktx -tAXc "select count(*) from pg_locks where relation = '\''lockme'\''::regclass and granted")" = 1 ]'
	migrate-indexes --db dbname=mig_locktx --dir "$BATS_TEST_TMPDIR/mig" --lock-timeout 100ms \
		--lock-retries 30 up >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" 3>&- &
	mig=$!
	track "$mig"
	wait_until 'grep -q "warning: lock timeout in 0004_lockme_b at statement 2; retry 1 of 30" "$BATS_TEST_TMPDIR/err"'
	psql -d mig_locktx -qtAXc "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'locker'" >/dev/null
	st=0
	wait "$mig" || st=$?
	[ "$st" -eq 0 ] || { cat "$BATS_TEST_TMPDIR/err"; false; }
	run -0 cat "$BATS_TEST_TMPDIR/out"
	assert_output --regexp '^applied 0004_lockme_b \([0-9]+ ms\)$'
	run -0 psql -d mig_locktx -tAXc "select count(*) from pg_attribute where attrelid = 'lockme'::regclass and attname = 'b'"
	assert_output 1
}

@test "every statement runs as application_name=labpulse-migrate-indexes with finite timeouts" {
	fresh_db mig_app
	base_mig
	printf '%s\n' "CREATE TABLE seen AS SELECT current_setting('application_name') AS app," \
		"current_setting('lock_timeout') AS lt, current_setting('statement_timeout') AS st;" \
		>"$BATS_TEST_TMPDIR/mig/0003_seen.up.sql"
	run -0 migrate-indexes --db dbname=mig_app --dir "$BATS_TEST_TMPDIR/mig" --lock-timeout 3s up
	run -0 psql -d mig_app -tAXc "select * from seen"
	assert_output "labpulse-migrate-indexes|3s|15min"
}

@test "a progress line for an index build shows in a terminal (tmux)" {
	fresh_db mig_prog
	base_mig
	# A build of a few seconds from a small table: each row's key costs a
	# millisecond, so the phases and counts are there to be seen.
	psql -d mig_prog -qAXc "
	  create function slow(int) returns int language plpgsql immutable as
	    \$\$ begin perform pg_sleep(0.001); return \$1; end \$\$;
	  create table big as select g as a from generate_series(1, 3000) g"
	printf 'CREATE INDEX CONCURRENTLY big_slow_idx ON big (slow(a));\n' >"$BATS_TEST_TMPDIR/mig/0003_big.up.sql"
	TMUX_SOCK=lp-mig-$$
	tmux -L "$TMUX_SOCK" -f /dev/null new-session -d -s mig -x 160 -y 10 \
		"migrate-indexes --db dbname=mig_prog --dir '$BATS_TEST_TMPDIR/mig' up; echo exit=\$?; sleep 600"
	# the server, should kill-server fail
	track "$(tmux -L "$TMUX_SOCK" display-message -p '#{pid}')"
	wait_until 'tmux -L "$TMUX_SOCK" capture-pane -p -t mig >"$BATS_TEST_TMPDIR/screen"; grep -Eq "^labpulse-migrate-indexes: building big_slow_idx on big: building index: scanning table, blocks [0-9]+/[1-9][0-9]*, tuples [0-9]+/[0-9]+$" "$BATS_TEST_TMPDIR/screen"'
	# the build itself may take longer than wait_for's bound on a busy machine
	for _ in $(seq 1200); do
		tmux -L "$TMUX_SOCK" capture-pane -p -t mig >"$BATS_TEST_TMPDIR/screen"
		grep -q "^exit=" "$BATS_TEST_TMPDIR/screen" && break
		sleep 0.05
	done
	run -0 grep -E '^(applied 0003|exit=)' "$BATS_TEST_TMPDIR/screen"
	assert_line --index 0 --regexp '^applied 0003_big \([0-9]+ ms, outside a transaction\)$'
	assert_line --index 1 'exit=0'
	# not on a terminal: no progress line
	printf 'CREATE INDEX CONCURRENTLY big_slow2_idx ON big (slow(a + 1));\n' >"$BATS_TEST_TMPDIR/mig/0004_big.up.sql"
	run -0 --separate-stderr migrate-indexes --db dbname=mig_prog --dir "$BATS_TEST_TMPDIR/mig" up
	assert_output --regexp '^applied 0004_big '
	[ -z "$stderr" ]
}

@test "up refuses a migration plan flags, applying nothing, unless --allow-hazard" {
	fresh_db mig_hazard
	base_mig
	printf 'CREATE TABLE t3 (a int);\n' >"$BATS_TEST_TMPDIR/mig/0003_t3.up.sql"
	run -0 migrate-indexes --db dbname=mig_hazard --dir "$BATS_TEST_TMPDIR/mig" up
	# a table made in the same run is new: indexing it locks nobody out
	printf 'CREATE TABLE t4 (a int);\nCREATE INDEX t4_a_idx ON t4 (a);\n' >"$BATS_TEST_TMPDIR/mig/0004_t4.up.sql"
	printf 'CREATE INDEX t3_a_idx ON t3 (a);\n' >"$BATS_TEST_TMPDIR/mig/0005_t3_a.up.sql"
	run -1 --separate-stderr migrate-indexes --db dbname=mig_hazard --dir "$BATS_TEST_TMPDIR/mig" up
	[ -z "$output" ]
	[[ ${stderr_lines[0]} == "labpulse-migrate-indexes: error: 0005_t3_a, statement 1: index-not-concurrent: "* ]]
	[ "${stderr_lines[-1]}" = "labpulse-migrate-indexes: error: applying nothing: 0005_t3_a has hazards (see: migrate-indexes plan; --allow-hazard applies it anyway)" ]
	[ "${#stderr_lines[@]}" -eq 2 ]
	# nothing was applied: not 0004 either, though it was clean
	run -0 psql -d mig_hazard -tAXc "select count(*) from labpulse_migrations where version > 3"
	assert_output 0
	run -0 migrate-indexes --db dbname=mig_hazard --dir "$BATS_TEST_TMPDIR/mig" --allow-hazard up
	assert_line --index 0 --regexp '^applied 0004_t4 \([0-9]+ ms\)$'
	assert_line --index 1 --regexp '^applied 0005_t3_a \([0-9]+ ms\)$'
}

@test "a CONCURRENTLY build that timed out waiting for an old snapshot leaves no invalid index behind its retry" {
	fresh_db mig_snap
	base_mig
	printf 'CREATE TABLE lockme (a int);\n' >"$BATS_TEST_TMPDIR/mig/0003_lockme.up.sql"
	run -0 migrate-indexes --db dbname=mig_snap --dir "$BATS_TEST_TMPDIR/mig" up
	printf 'CREATE INDEX CONCURRENTLY IF NOT EXISTS lockme_a_idx ON lockme (a);\n' >"$BATS_TEST_TMPDIR/mig/0004_lockme_a.up.sql"
	# a transaction with a snapshot: the build waits for it once its index exists
	PGAPPNAME=snapshot psql -d mig_snap -qAX -c "begin isolation level repeatable read" \
		-c "select count(*) from pg_class" -c "select pg_sleep(120)" >/dev/null 2>&1 3>&- &
	track "$!"
	wait_until '[ "$(psql -d mig_snap -tAXc "select count(*) from pg_stat_activity where application_name = '\''snapshot'\'' and backend_xmin is not null")" = 1 ]'
	migrate-indexes --db dbname=mig_snap --dir "$BATS_TEST_TMPDIR/mig" --lock-timeout 100ms \
		--lock-retries 30 up >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" 3>&- &
	mig=$!
	track "$mig"
	wait_until 'grep -q "info: dropping the invalid index lockme_a_idx the lock timeout left" "$BATS_TEST_TMPDIR/err"'
	psql -d mig_snap -qtAXc "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'snapshot'" >/dev/null
	st=0
	wait "$mig" || st=$?
	[ "$st" -eq 0 ] || { cat "$BATS_TEST_TMPDIR/err"; false; }
	run -0 cat "$BATS_TEST_TMPDIR/out"
	assert_output --regexp '^applied 0004_lockme_a '
	run -0 psql -d mig_snap -tAXc "select indisvalid from pg_index where indexrelid = 'lockme_a_idx'::regclass"
	assert_output t
}
