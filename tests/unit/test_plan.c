/* test_plan.c: what migrate-indexes plan says of a statement, without a
 * database: each hazard rule with a statement that triggers it and one
 * that does not, locks, rewrites, and what comments and quotes hide. */
#include <stdlib.h>
#include <string.h>

#include "../../cmd/migrate-indexes/migrate.h"
#include "../../cmd/migrate-indexes/plan.h"
#include "tap.h"

/* The rules the last statement of sql (a file) triggers, blank-separated. */
static const char *
rules(const char *sql, struct plan_item *last)
{
	static char buf[512];
	struct plan_ctx c;
	struct plan_item *items;
	size_t n, h, o = 0;
	char err[100];

	buf[0] = '\0';
	plan_init(&c, NULL);
	if (plan_file(&c, sql, &items, &n, err, sizeof err) < 0) {
		plan_ctx_free(&c);
		snprintf(buf, sizeof buf, "error: %s", err);
		return buf;
	}
	if (n > 0) {
		for (h = 0; h < items[n - 1].nhaz; h++)
			o += snprintf(buf + o, sizeof buf - o, "%s%s", o ? " " : "",
			    items[n - 1].haz[h].rule);
		if (last)
			*last = items[n - 1];
	}
	free(items);
	plan_ctx_free(&c);
	return buf;
}

static void
trig(const char *rule, const char *sql)
{
	is_str(rules(sql, NULL), rule, "triggers %s: %s", rule, sql);
}

static void
clean(const char *sql)
{
	is_str(rules(sql, NULL), "", "clean: %s", sql);
}

static void
lock(const char *sql, const char *kind, const char *table, const char *lk,
    int rewrite)
{
	struct plan_item it;

	memset(&it, 0, sizeof it);
	rules(sql, &it);
	is_str(it.kind, kind, "kind of: %s", sql);
	is_str(it.table, table, "table of: %s", sql);
	is_str(it.lock, lk, "lock of: %s", sql);
	is_int(it.rewrite, rewrite, "rewrite of: %s", sql);
}

int
main(void)
{
	struct plan_ctx c;
	struct plan_item *items;
	size_t n;
	char err[100];
	int h;

	/* index-not-concurrent */
	trig("index-not-concurrent", "CREATE INDEX e_idx ON events (class_id);");
	trig("index-not-concurrent", "create unique index on public.events(a)");
	clean("CREATE INDEX CONCURRENTLY e_idx ON events (class_id);");
	clean("CREATE TABLE t (a int); CREATE INDEX t_a ON t (a);");
	clean("CREATE TABLE \"T\" (a int); CREATE INDEX t_a ON \"T\" (a);");
	trig("index-not-concurrent",
	    "CREATE TABLE \"T\" (a int); CREATE INDEX t_a ON t (a);");
	/* drop-index-not-concurrent */
	trig("drop-index-not-concurrent", "DROP INDEX e_idx;");
	clean("DROP INDEX CONCURRENTLY IF EXISTS e_idx;");
	clean("CREATE TABLE t (a int); CREATE INDEX t_a ON t (a);"
	    " DROP INDEX t_a;");
	/* reindex-not-concurrent */
	trig("reindex-not-concurrent", "REINDEX INDEX e_idx;");
	trig("reindex-not-concurrent", "REINDEX (VERBOSE) TABLE events;");
	clean("REINDEX INDEX CONCURRENTLY e_idx;");
	clean("REINDEX (VERBOSE) TABLE CONCURRENTLY events;");
	/* concurrently-in-transaction */
	trig("concurrently-in-transaction",
	    "BEGIN; CREATE INDEX CONCURRENTLY e_idx ON events (a); COMMIT;"
	    " -- keep the last statement\n"
	    "BEGIN; CREATE INDEX CONCURRENTLY f_idx ON events (b)");
	clean("BEGIN; SELECT 1; COMMIT; CREATE INDEX CONCURRENTLY e_idx ON"
	    " events (a);");
	trig("concurrently-in-transaction",
	    "START TRANSACTION; DROP INDEX CONCURRENTLY e_idx;");
	/* concurrently-if-not-exists: without the catalog a leftover cannot
	 * be ruled out */
	trig("concurrently-if-not-exists",
	    "CREATE INDEX CONCURRENTLY IF NOT EXISTS e_idx ON events (a);");
	clean("CREATE INDEX CONCURRENTLY e_idx ON events (a);");
	/* volatile-default */
	trig("volatile-default", "ALTER TABLE events ADD COLUMN u uuid"
	    " DEFAULT gen_random_uuid();");
	trig("volatile-default", "ALTER TABLE events ADD COLUMN t timestamptz"
	    " NOT NULL DEFAULT clock_timestamp();");
	trig("volatile-default", "ALTER TABLE events ADD r float8 DEFAULT"
	    " random() * 10;");
	trig("volatile-default", "ALTER TABLE events ADD n bigint DEFAULT"
	    " nextval('s');");
	trig("volatile-default", "ALTER TABLE events ADD COLUMN n bigserial;");
	trig("volatile-default", "ALTER TABLE events ADD COLUMN x int DEFAULT"
	    " my_own_function();");
	clean("ALTER TABLE events ADD COLUMN flag boolean NOT NULL DEFAULT"
	    " false;");
	clean("ALTER TABLE events ADD COLUMN at timestamptz DEFAULT now();");
	clean("ALTER TABLE events ADD COLUMN note text DEFAULT 'random()';");
	clean("CREATE TABLE t (a int); ALTER TABLE t ADD u uuid DEFAULT"
	    " gen_random_uuid();");
	/* column-type-change */
	trig("column-type-change", "ALTER TABLE events ALTER COLUMN cell_index"
	    " TYPE bigint;");
	trig("column-type-change", "ALTER TABLE events ALTER cell_index SET"
	    " DATA TYPE bigint;");
	clean("ALTER TABLE events ALTER COLUMN cell_index SET DEFAULT 0;");
	/* constraint-not-valid */
	trig("constraint-not-valid", "ALTER TABLE events ADD CONSTRAINT c"
	    " CHECK (cell_index >= 0);");
	trig("constraint-not-valid", "ALTER TABLE events ADD CONSTRAINT fk"
	    " FOREIGN KEY (class_id) REFERENCES classes (id);");
	clean("ALTER TABLE events ADD CONSTRAINT c CHECK (cell_index >= 0)"
	    " NOT VALID;");
	clean("ALTER TABLE events ADD CONSTRAINT fk FOREIGN KEY (class_id)"
	    " REFERENCES classes (id) NOT VALID;");
	clean("ALTER TABLE events VALIDATE CONSTRAINT fk;");
	trig("constraint-not-valid", "ALTER TABLE events ADD CONSTRAINT c"
	    " CHECK (valid AND NOT invalid);");
	trig("volatile-default", "ALTER TABLE events ADD COLUMN d int"
	    " GENERATED ALWAYS AS (cell_index * 2) STORED;");
	clean("ALTER TABLE events ADD COLUMN serial text;");
	/* unique-constraint */
	trig("unique-constraint", "ALTER TABLE events ADD CONSTRAINT u"
	    " UNIQUE (event_id);");
	trig("unique-constraint", "ALTER TABLE events ADD PRIMARY KEY (id);");
	clean("ALTER TABLE events ADD CONSTRAINT u UNIQUE USING INDEX u_idx;");
	clean("ALTER TABLE events ADD CONSTRAINT p PRIMARY KEY USING INDEX p_idx;");
	trig("unique-constraint", "ALTER TABLE events ADD CONSTRAINT u UNIQUE"
	    " (a) USING INDEX TABLESPACE fast;");
	/* set-not-null */
	trig("set-not-null", "ALTER TABLE events ALTER COLUMN session_id SET"
	    " NOT NULL;");
	trig("set-not-null", "ALTER TABLE events ADD CONSTRAINT s CHECK"
	    " (session_id IS NOT NULL) NOT VALID;"
	    " ALTER TABLE events ALTER session_id SET NOT NULL;");
	clean("ALTER TABLE events ADD CONSTRAINT s CHECK (session_id IS NOT"
	    " NULL) NOT VALID; ALTER TABLE events VALIDATE CONSTRAINT s;"
	    " ALTER TABLE events ALTER COLUMN session_id SET NOT NULL;");
	clean("ALTER TABLE events ALTER COLUMN session_id DROP NOT NULL;");
	/* timeout-zero */
	trig("timeout-zero", "SET lock_timeout = 0;");
	trig("timeout-zero", "SET statement_timeout TO '0';");
	trig("timeout-zero", "set session lock_timeout = '0s';");
	trig("timeout-zero", "SET LOCAL statement_timeout = DEFAULT;");
	trig("timeout-zero", "RESET lock_timeout;");
	clean("SET lock_timeout = '5s';");
	clean("SET statement_timeout = 1000;");
	clean("SET work_mem = 0;");

	/* comments, strings, dollar quotes and quoted identifiers */
	clean("-- CREATE INDEX e_idx ON events (a);\nSELECT 1;");
	clean("/* DROP INDEX e_idx; */ SELECT 'DROP INDEX e_idx';");
	clean("SELECT $q$ CREATE INDEX e ON events (a) $q$;");
	clean("CREATE INDEX /* CONCURRENTLY? no: */ CONCURRENTLY e ON events (a);");
	trig("index-not-concurrent", "CREATE /* CONCURRENTLY */ INDEX e ON"
	    " events (a);");
	trig("index-not-concurrent", "CREATE INDEX \"concurrently\" ON"
	    " events (a);");

	/* kinds, tables, locks, rewrites */
	lock("CREATE INDEX e ON events (a)", "CREATE INDEX", "events", "SHARE", 0);
	lock("CREATE INDEX CONCURRENTLY e ON public.events (a)", "CREATE INDEX",
	    "events", "SHARE UPDATE EXCLUSIVE", 0);
	lock("DROP INDEX e", "DROP INDEX", "", "ACCESS EXCLUSIVE", 0);
	lock("ALTER TABLE \"Events\" ADD COLUMN a int", "ALTER TABLE ADD COLUMN",
	    "\"Events\"", "ACCESS EXCLUSIVE", 0);
	lock("ALTER TABLE events ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES b"
	    " NOT VALID", "ALTER TABLE ADD FOREIGN KEY", "events",
	    "SHARE ROW EXCLUSIVE", 0);
	lock("ALTER TABLE events VALIDATE CONSTRAINT f",
	    "ALTER TABLE VALIDATE CONSTRAINT", "events", "SHARE UPDATE EXCLUSIVE",
	    0);
	lock("ALTER TABLE events ALTER a TYPE bigint",
	    "ALTER TABLE ALTER COLUMN TYPE", "events", "ACCESS EXCLUSIVE", 1);
	lock("ALTER TABLE events ALTER a SET STATISTICS 500, ALTER b TYPE text",
	    "ALTER TABLE SET STATISTICS (and more)", "events", "ACCESS EXCLUSIVE",
	    1);
	lock("INSERT INTO events SELECT 1", "INSERT", "events", "ROW EXCLUSIVE", 0);
	lock("VACUUM FULL events", "VACUUM", "events", "ACCESS EXCLUSIVE", 1);
	lock("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE", "LOCK", "events",
	    "SHARE ROW EXCLUSIVE", 0);
	lock("CREATE TABLE IF NOT EXISTS s.t (a int)", "CREATE TABLE", "s.t",
	    "ACCESS EXCLUSIVE", 0);
	lock("CREATE EXTENSION pg_trgm", "CREATE EXTENSION", "", "", 0);
	lock("ALTER INDEX i SET (fillfactor = 70)", "ALTER INDEX", "", "", 0);

	/* a whole file: lines, statements, transaction, and one context over
	 * two files: the table made by the first is new in the second */
	plan_init(&c, NULL);
	h = plan_file(&c, "-- a table\nCREATE TABLE t (a int);\n\n"
	    "/* two\n lines */ INSERT INTO t\n VALUES (1);\n", &items, &n, err,
	    sizeof err);
	is_int(h, 0, "file 1: no hazard");
	is_int(n, 2, "file 1: 2 statements");
	if (n == 2) {
		is_int(items[0].line, 2, "file 1: statement 1 on line 2");
		is_int(items[1].line, 5, "file 1: statement 2 on line 5");
		is_int(items[1].in_tx, 1, "file 1: in a transaction");
	}
	free(items);
	h = plan_file(&c, "CREATE INDEX t_a ON t (a);\n"
	    "CREATE INDEX CONCURRENTLY e_a ON events ('x;y');\n", &items, &n,
	    err, sizeof err);
	is_int(h, 0, "file 2: t is new, events indexed concurrently");
	is_int(n, 2, "file 2: 2 statements");
	if (n == 2) {
		is_int(items[0].new_table, 1, "file 2: t is new");
		is_int(items[0].in_tx, 0, "file 2: outside a transaction");
		is_int(items[1].line, 2, "file 2: statement 2 on line 2");
	}
	free(items);
	plan_ctx_free(&c);
	is_int(plan_file_tx("CREATE TABLE a (b int); SELECT 1;", err, sizeof err),
	    1, "plan_file_tx: a transaction");
	is_int(plan_file_tx("CREATE INDEX CONCURRENTLY x ON a (b);", err,
	    sizeof err), 0, "plan_file_tx: one by one");
	is_int(plan_file_tx("SELECT 'unterminated", err, sizeof err), -1,
	    "plan_file_tx: cannot split");
	plan_init(&c, NULL);
	is_int(plan_file(&c, "SELECT $$ never closed", &items, &n, err,
	    sizeof err), -1, "plan_file: cannot split");
	plan_ctx_free(&c);
	/* every prefix of every kind of statement, as a file cut short or a
	 * typo would give: no crash, no read past the end */
	{
		static const char *const v[] = {
			"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON ONLY"
			    " s.\"T\" USING btree (a, (lower(b))) WHERE c",
			"ALTER TABLE IF EXISTS ONLY t ADD COLUMN IF NOT EXISTS c"
			    " int DEFAULT f(1) NOT NULL, ALTER c TYPE bigint,"
			    " ADD CONSTRAINT k CHECK ((c IS NOT NULL)) NOT VALID,"
			    " VALIDATE CONSTRAINT k, ALTER c SET NOT NULL",
			"DROP INDEX CONCURRENTLY IF EXISTS i CASCADE",
			"REINDEX (VERBOSE) INDEX CONCURRENTLY i",
			"SET SESSION lock_timeout TO '0'", "RESET statement_timeout",
			"LOCK TABLE t IN ACCESS EXCLUSIVE MODE",
			"VACUUM (FULL, ANALYZE) t", "SELECT $a$ x $a$, E'\\'' ",
			"CREATE TABLE IF NOT EXISTS t (a int)",
		};
		struct plan_item it;
		char buf[512];
		size_t i, len, runs = 0;

		plan_init(&c, NULL);
		for (i = 0; i < sizeof v / sizeof v[0]; i++)
			for (len = 0; len <= strlen(v[i]); len++, runs++) {
				memcpy(buf, v[i], len);
				buf[len] = '\0';
				plan_stmt(&c, buf, &it);
			}
		plan_ctx_free(&c);
		ok(runs > 400, "%zu prefixes planned", runs);
	}
	return done_testing();
}
