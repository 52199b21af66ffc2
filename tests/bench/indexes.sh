#!/bin/sh
# indexes.sh: what each index on events and student_progress costs a write
# on this machine. The same rows, like those batch-commit writes (about 520
# bytes of payload, 200 students in 10 classes), are copied into events
# with the default indexes (the migrations of etc/migrations applied), then
# without each of those in turn, then with each optional or former index
# added in turn; an index costs the difference, in µs a row of the backend's
# CPU, of wall time, and in bytes of WAL a row, the median of the runs. The
# same rows are then folded into student_progress in batches
# of 500 with batch-commit's upsert, with and without the former
# student_progress_class_activity_idx. labpulse(7), INDEXES, quotes it.
# Run by `make bench`, which builds what it needs, or alone:
#   sh tests/bench/indexes.sh
# INDEX_BENCH_ROWS sets the rows (default 200000); INDEX_BENCH_RUNS the runs
# of each (default 3, odd).
# A benchmark reports: only a step that cannot run exits non-zero (64 bad
# settings, 69 a tool or build is missing, 70 a run failed).
prog="bench-indexes"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
unset DATABASE_URL
n=${INDEX_BENCH_ROWS:-200000}
runs=${INDEX_BENCH_RUNS:-3}
db=lp_indexes
students=200
batch=500

case $n in ''|*[!0-9]*|0*) die 64 "INDEX_BENCH_ROWS must be a positive integer, not '$n'" ;; esac
case $runs in 1|3|5|7|9) ;; *) die 64 "INDEX_BENCH_RUNS must be odd, 1 to 9, not '$runs'" ;; esac
need_target=all
need_files "$top/bin/labpulse" "$top/bin/stack" "$top/bin/migrate-indexes"
need_tools psql jq awk
bench_home lpidx

sql() { PGOPTIONS="-c client_min_messages=warning" psql -XqtA -v ON_ERROR_STOP=1 -d "$db" "$@"; }
say() { printf '%s\n' "$*"; }

cols="class_id, student_id, event_id, event_type, event_time, received_at, session_id, notebook_path, cell_id, cell_index, cell_type, execution_count, has_error, execution_duration_ms, payload"

# The indexes measured: NAME and its definition; those of the defaults are
# dropped in turn, the others added in turn.
defaults="events_pkey events_student_event_key"
extra="events_class_student_time_idx|CREATE INDEX events_class_student_time_idx ON events (class_id, student_id, event_time DESC)
events_class_time_idx|CREATE INDEX events_class_time_idx ON events (class_id, event_time DESC)
events_class_errors_idx|CREATE INDEX events_class_errors_idx ON events (class_id, event_time DESC) WHERE has_error
events_payload_gin_idx|CREATE INDEX events_payload_gin_idx ON events USING gin (payload jsonb_path_ops)"
defs_of() { printf '%s\n' "$extra" | awk -F'|' -v k="$1" '$1 == k { print $2 }'; }

# ---- the stack: its PostgreSQL alone ----
info "starting a private stack"
bench_up
bench_only 70 # every daemon stopped: PostgreSQL alone does the work
cores=$(nproc 2>/dev/null || echo 1)
psql -XqtA -v ON_ERROR_STOP=1 -d postgres -c "drop database if exists $db" \
	-c "create database $db" >/dev/null 2>&1 || die 70 "cannot create database $db"
"$top/bin/migrate-indexes" --db "dbname=$db" --dir "$top/etc/migrations" up \
	>/dev/null 2>"$home/migrate.err" || { cat "$home/migrate.err" >&2; die 70 "cannot migrate $db"; }

# ---- the rows, once, in COPY format ----
rowsf=$home/events.copy
info "generating $n rows"
sql -v n="$n" -v st="$students" >/dev/null <<EOF || die 70 "cannot generate the rows"
CREATE UNLOGGED TABLE gen AS
SELECT c AS class_id, s AS student_id, e AS event_id, t AS event_type,
  et AS event_time, et + interval '40 ms' AS received_at,
  'sess-' || sn AS session_id, nb AS notebook_path, cell AS cell_id,
  ci AS cell_index, 'code' AS cell_type, i / :st + 1 AS execution_count,
  err AS has_error, (i::bigint * 7919 % 5000) / 10.0 AS execution_duration_ms,
  jsonb_build_object('eventId', e, 'eventType', t, 'eventTime', et,
    'classId', c, 'studentId', s, 'sessionId', 'sess-' || sn,
    'notebookPath', nb, 'cellId', cell, 'cellIndex', ci, 'cellType', 'code',
    'executionCount', i / :st + 1, 'hasError', err,
    'executionDurationMs', (i::bigint * 7919 % 5000) / 10.0,
    'source', repeat(md5(i::text), 3 + i % 3), 'user', 'jovyan') AS payload
FROM (SELECT i, i % :st AS sn,
        'class-' || lpad((i % :st % 10)::text, 2, '0') AS c,
        'student-' || lpad((i % :st)::text, 4, '0') AS s,
        'ev-' || lpad(i::text, 12, '0') AS e,
        CASE WHEN i % 20 = 0 THEN 'notebook_opened'
             WHEN i % 20 = 1 THEN 'notebook_saved'
             ELSE 'cell_executed' END AS t,
        timestamptz '2026-11-02 08:00:00+00' + i * interval '50 ms' AS et,
        'week' || (i / :st % 6) || '/lab.ipynb' AS nb,
        substr(md5((i % 40)::text), 1, 16) AS cell, i % 40 AS ci,
        i % 14 = 3 AS err
      FROM generate_series(1, :n) i) g;
\copy (SELECT $cols FROM gen) TO '$rowsf'
DROP TABLE gen;
EOF
payload_bytes=$(awk -F'\t' '{ s += length($15) } END { printf "%d", NR ? s / NR : 0 }' "$rowsf")

# indexes_now: the indexes of events, by name
indexes_now() {
	sql -c "select string_agg(indexrelid::regclass::text, ' ' order by 1)
	  from pg_index where indrelid = 'events'::regclass"
}
base_set=$(indexes_now)
for i in $defaults; do
	case " $base_set " in *" $i "*) ;; *) die 70 "the migrations left no $i" ;; esac
done

# drop_index NAME: the index, or the constraint it enforces
drop_index() {
	case $1 in
	events_pkey|events_student_event_key) sql -c "alter table events drop constraint $1" ;;
	*) sql -c "drop index $1" ;;
	esac
}
add_index() {
	case $1 in
	events_pkey) sql -c "alter table events add primary key (id)" ;;
	events_student_event_key) sql -c "alter table events add constraint events_student_event_key unique (student_id, event_id)" ;;
	*) sql -c "$(defs_of "$1")" ;;
	esac
}

# timed: run the SQL of stdin in one session; print its seconds, the CPU
# seconds of its PostgreSQL backend (from /proc: the stack's PostgreSQL is
# local), which other load on the machine disturbs far less, and the bytes
# of WAL written meanwhile (PostgreSQL serves nobody else)
clk=$(getconf CLK_TCK 2>/dev/null || echo 100)
timed() {
	tf=$home/timed
	mark="\\! { date +%s.%N; awk '{ print \$14 + \$15 }' /proc/\$LP_PID/stat; } >>$tf"
	: >"$tf"
	{
		printf '%s\n' 'SELECT pg_backend_pid() AS pid \gset' '\setenv LP_PID :pid' \
			'SELECT pg_current_wal_insert_lsn() AS lsn0 \gset' "$mark"
		cat
		printf '%s\n' "$mark" \
			"SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'lsn0') AS wal \\gset" \
			'\setenv LP_WAL :wal' "\\! echo \$LP_WAL >>$tf"
	} | PGTZ=UTC sql >/dev/null || return 1
	awk -v hz="$clk" '{ v[NR] = $1 } END {
		if (NR != 5) exit 1
		printf "%.3f %.3f %d\n", v[3] - v[1], (v[4] - v[2]) / hz, v[5] }' "$tf"
}

# copy_run: empty events, copy the rows in; prints seconds and CPU seconds
copy_run() {
	sql -c "truncate events" -c checkpoint || die 70 "cannot empty events"
	printf '%s\n' "\\copy events ($cols) from '$rowsf'" | timed ||
		die 70 "the copy into events failed"
}

# The configurations: defaults, defaults without each, defaults with each.
configs="defaults"
for i in $defaults; do configs="$configs -$i"; done
for i in $(printf '%s\n' "$extra" | cut -d'|' -f1); do configs="$configs +$i"; done

# set_config CONFIG: the defaults, then one dropped or added
set_config() {
	for i in $(indexes_now); do
		case " $base_set " in *" $i "*) ;; *) sql -c "drop index $i" ;; esac
	done
	for i in $base_set; do
		case " $(indexes_now) " in *" $i "*) ;; *) add_index "$i" ;; esac
	done
	case $1 in
	-*) drop_index "${1#-}" ;;
	+*) add_index "${1#+}" ;;
	esac
}

sizes=$home/sizes
: >"$sizes"
for r in $(seq "$runs"); do
	for c in $configs; do
		set_config "$c" || die 70 "cannot set up $c"
		s=$(copy_run) || exit
		# shellcheck disable=SC2086 # three numbers
		set -- $s
		info "run $r, $c: $1 s, $2 s of CPU, $3 bytes of WAL"
		printf '%s\t%s\t%s\t%s\n' "$c" "$1" "$2" "$3" >>"$home/times"
		if [ "$r" = 1 ]; then
			sql -c "select '$c', c.relname, pg_relation_size(c.oid)
			  from pg_class c where c.oid = 'events'::regclass
			  or c.oid in (select indexrelid from pg_index where indrelid = 'events'::regclass)" |
				tr '|' '\t' >>"$sizes"
		fi
	done
done
set_config defaults

# the medians below take their numbers as words
# shellcheck disable=SC2046
# med CONFIG [FIELD]: the median seconds (3: CPU seconds, 4: WAL) of its runs
med() { median $(awk -F'\t' -v c="$1" -v f="${2:-2}" '$1 == c { print $f }' "$home/times"); }
base_s=$(med defaults)
base_cpu=$(med defaults 3)
base_wal=$(med defaults 4)
rows=$home/rows
: >"$rows"
for c in $configs; do
	[ "$c" = defaults ] && continue
	i=${c#[-+]}
	s=$(med "$c")
	cpu=$(med "$c" 3)
	wal=$(med "$c" 4)
	case $c in
	-*) sign=-1 kind=default ;;
	+*) sign=1 kind=added ;;
	esac
	us=$(calc 'g * (a - b) / n * 1e6 + 0' g="$sign" a="$s" b="$base_s" n="$n" fmt=%.2f)
	cus=$(calc 'g * (a - b) / n * 1e6 + 0' g="$sign" a="$cpu" b="$base_cpu" n="$n" fmt=%.2f)
	wb=$(calc 'g * (a - b) / n' g="$sign" a="$wal" b="$base_wal" n="$n" fmt=%.0f)
	bytes=$(awk -F'\t' -v c="$c" -v i="$i" '$2 == i { print $3; exit }' "$sizes")
	[ "$c" = "-$i" ] && bytes=$(awk -F'\t' -v i="$i" '$1 == "defaults" && $2 == i { print $3; exit }' "$sizes")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$i" "$kind" "$cus" "$us" "${bytes:-0}" "$s" "$cpu" "$wb" >>"$rows"
done
table_bytes=$(awk -F'\t' '$1 == "defaults" && $2 == "events" { print $3; exit }' "$sizes")

# ---- student_progress: batch-commit's upsert, with and without ----
fold() {
	sql -c "truncate student_progress" -c checkpoint -c "select pg_stat_reset()" >/dev/null
	t=$(awk -v n="$n" -v b="$batch" 'BEGIN {
		for (k = 1; k <= n; k += b)
			printf "INSERT INTO student_progress AS p (class_id, student_id, notebook_path, events, executions, errors, first_activity, last_activity, last_event_type) SELECT class_id, student_id, coalesce(notebook_path, %s), count(*), count(*) FILTER (WHERE event_type = %s), count(*) FILTER (WHERE has_error), min(event_time), max(event_time), (array_agg(event_type ORDER BY event_time DESC))[1] FROM events WHERE id >= (SELECT min(id) FROM events) + %d AND id < (SELECT min(id) FROM events) + %d GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 ON CONFLICT (class_id, student_id, notebook_path) DO UPDATE SET events = p.events + EXCLUDED.events, executions = p.executions + EXCLUDED.executions, errors = p.errors + EXCLUDED.errors, first_activity = least(p.first_activity, EXCLUDED.first_activity), last_event_type = CASE WHEN EXCLUDED.last_activity >= p.last_activity THEN EXCLUDED.last_event_type ELSE p.last_event_type END, last_activity = greatest(p.last_activity, EXCLUDED.last_activity);\n", "\047\047", "\047cell_executed\047", k - 1, k - 1 + b
	}' | timed) || die 70 "the upserts into student_progress failed"
	sleep 1 # the statistics of the session that ended
	hot=$(sql -c "select n_tup_hot_upd || ' ' || n_tup_upd from pg_stat_user_tables where relname = 'student_progress'")
	printf '%s %s\n' "$t" "$hot"
}
copy_run >/dev/null
sql -c "vacuum analyze events"
: >"$home/fold"
for r in $(seq "$runs"); do
	sql -c "drop index if exists student_progress_class_activity_idx"
	printf 'without %s\n' "$(fold)" >>"$home/fold"
	sql -c "create index student_progress_class_activity_idx on student_progress (class_id, last_activity desc)"
	printf 'with %s\n' "$(fold)" >>"$home/fold"
done
sql -c "drop index if exists student_progress_class_activity_idx"
# shellcheck disable=SC2046
fold_without=$(median $(awk '$1 == "without" { print $2 }' "$home/fold"))
# shellcheck disable=SC2046
fold_with=$(median $(awk '$1 == "with" { print $2 }' "$home/fold"))
# shellcheck disable=SC2046
fcpu_without=$(median $(awk '$1 == "without" { print $3 }' "$home/fold"))
# shellcheck disable=SC2046
fcpu_with=$(median $(awk '$1 == "with" { print $3 }' "$home/fold"))
hot_without=$(awk '$1 == "without" { h = $5; u = $6 } END { printf "%.0f", u ? h / u * 100 : 0 }' "$home/fold")
hot_with=$(awk '$1 == "with" { h = $5; u = $6 } END { printf "%.0f", u ? h / u * 100 : 0 }' "$home/fold")
# shellcheck disable=SC2046
fwal_without=$(median $(awk '$1 == "without" { print $4 }' "$home/fold"))
# shellcheck disable=SC2046
fwal_with=$(median $(awk '$1 == "with" { print $4 }' "$home/fold"))
sp_wal=$(calc '(a - b) / n' a="$fwal_with" b="$fwal_without" n="$n" fmt=%.0f)
sp_us=$(calc '(a - b) / n * 1e6' a="$fcpu_with" b="$fcpu_without" n="$n" fmt=%.2f)
sp_wall_us=$(calc '(a - b) / n * 1e6' a="$fold_with" b="$fold_without" n="$n" fmt=%.2f)
fold_us=$(calc 'a / n * 1e6' a="$fcpu_without" n="$n" fmt=%.2f)
sp_bytes=$(sql -c "select pg_relation_size('student_progress_pkey')")
sp_rows=$(sql -c "select count(*) from student_progress")

# ---- the report ----
base_us=$(calc 'a / n * 1e6' a="$base_cpu" n="$n" fmt=%.2f)
base_wall_us=$(calc 'a / n * 1e6' a="$base_s" n="$n" fmt=%.2f)
say "events: $n rows copied, $payload_bytes bytes of payload a row on average, $cores cores; median of $runs runs"
say "copy with the defaults ($base_set): $base_s s, $base_cpu s of the backend's CPU: $base_us µs of CPU a row ($base_wall_us µs of wall time); table $(calc 'b / 1048576' b="$table_bytes" fmt=%.1f) MiB"
say "WAL: $(calc 'w / n' w="$base_wal" n="$n" fmt=%.0f) bytes a row with the defaults"
say "what each index costs a row, beside the defaults: the backend's CPU, wall time, WAL"
printf '%-36s %-9s %8s %8s %6s %7s\n' INDEX KIND "CPU µs" "WALL µs" "WAL B" MIB
while IFS="$(printf '\t')" read -r i kind cus us bytes _ _ wb; do
	printf '%-36s %-9s %8s %8s %6s %7s\n' "$i" "$kind" "$cus" "$us" "$wb" "$(calc 'b / 1048576' b="$bytes" fmt=%.1f)"
done <"$rows"
say "student_progress: $n events folded in batches of $batch into $sp_rows rows: without student_progress_class_activity_idx $fold_without s ($fcpu_without s of CPU, $fold_us µs an event; $hot_without% of updates HOT), with it $fold_with s ($fcpu_with s of CPU; $hot_with% HOT): it costs $sp_us µs of CPU an event ($sp_wall_us µs of wall time) and $sp_wal bytes of WAL"

jq -n --argjson n "$n" --argjson runs "$runs" --argjson cores "$cores" \
	--argjson payload_bytes "$payload_bytes" --argjson students "$students" \
	--arg base_set "$base_set" --argjson base_s "$base_s" --argjson base_cpu "$base_cpu" \
	--argjson base_us "$base_us" --argjson base_wall_us "$base_wall_us" \
	--argjson base_wal "$base_wal" \
	--argjson table_bytes "${table_bytes:-0}" --rawfile rows "$rows" \
	--argjson batch "$batch" --argjson sp_rows "$sp_rows" \
	--argjson fold_without "$fold_without" --argjson fold_with "$fold_with" \
	--argjson fcpu_without "$fcpu_without" --argjson fcpu_with "$fcpu_with" \
	--argjson hot_without "$hot_without" --argjson hot_with "$hot_with" \
	--argjson sp_us "$sp_us" --argjson sp_wall_us "$sp_wall_us" \
	--argjson fold_us "$fold_us" --argjson sp_bytes "$sp_bytes" --argjson sp_wal "$sp_wal" \
	'{
	  benchmark: "indexes",
	  note: "psql \\copy of the same rows into events, emptied and checkpointed before each copy; an index costs the difference from the defaults, in CPU of the PostgreSQL backend (less disturbed by other load) and in wall time; PostgreSQL alone of the stack on the machine'"'"'s \($cores) cores",
	  settings: {rows: $n, runs: $runs, cores: $cores, students: $students,
	    classes: 10, payload_bytes: $payload_bytes},
	  defaults: {indexes: ($base_set | split(" ")), copy_seconds: $base_s,
	    cpu_seconds: $base_cpu, cpu_us_per_row: $base_us,
	    wall_us_per_row: $base_wall_us, wal_bytes: $base_wal,
	    table_bytes: $table_bytes},
	  indexes: [$rows | split("\n")[] | select(length > 0) | split("\t") |
	    {index: .[0], kind: .[1], cpu_us_per_row: (.[2] | tonumber),
	     wall_us_per_row: (.[3] | tonumber), bytes: (.[4] | tonumber),
	     copy_seconds: (.[5] | tonumber), cpu_seconds: (.[6] | tonumber),
	     wal_bytes_per_row: (.[7] | tonumber)}],
	  student_progress: {events: $n, batch: $batch, rows: $sp_rows,
	    pkey_bytes: $sp_bytes, cpu_us_per_event: $fold_us,
	    class_activity_idx: {seconds_without: $fold_without,
	      seconds_with: $fold_with, cpu_seconds_without: $fcpu_without,
	      cpu_seconds_with: $fcpu_with, cpu_us_per_event: $sp_us,
	      wall_us_per_event: $sp_wall_us, wal_bytes_per_event: $sp_wal,
	      hot_updates_pct_without: $hot_without, hot_updates_pct_with: $hot_with}}
	}' >"$out/indexes.json" || die 70 "cannot write $out/indexes.json"
say "written: tests/bench/out/indexes.json"
exit 0
