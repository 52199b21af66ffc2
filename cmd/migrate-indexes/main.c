/* migrate-indexes: apply the schema and index migrations of etc/migrations
 * to a live database, each once, recorded with its checksum; plan them
 * before, roll them back, and tell what is applied, pending, failed,
 * changed or invalid. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "log.h"
#include "prog.h"
#include "parse.h"
#include "migrate.h"
#include "ops.h"
#include "pgconn.h"
#include "plan.h"

/* Any fixed number: every run of any version takes the same lock. */
#define MIGRATE_LOCK_KEY 7270001

const char usage_text[] =
"usage: labpulse migrate-indexes [--db CONNINFO] [--dir DIR] [--json] plan [file ...]\n"
"       labpulse migrate-indexes [--db CONNINFO] [--dir DIR] [--allow-hazard]\n"
"           [--lock-retries N] [--lock-timeout DURATION]\n"
"           [--statement-timeout DURATION] up\n"
"       labpulse migrate-indexes [--db CONNINFO] [--dir DIR] [--lock-retries N]\n"
"           [--lock-timeout DURATION] [--statement-timeout DURATION] down [N]\n"
"       labpulse migrate-indexes [--db CONNINFO] [--dir DIR] status | verify | repair\n"
"       labpulse migrate-indexes [--db CONNINFO] [--json] advise\n"
"       labpulse migrate-indexes --help | --version\n";

const char help_text[] =
"Apply the migrations in DIR (NNNN_name.up.sql) that are pending, each once,\n"
"recorded with its checksum in the table labpulse_migrations; plan, roll back,\n"
"verify and repair them; advise on indexes.\n"
"\n"
"  --allow-hazard      up: apply a migration that plan finds hazardous\n"
"  --db CONNINFO       the database (default: $DATABASE_URL, else libpq's PG* variables)\n"
"  --dir DIR           the migrations (default: $LABPULSE_MIGRATIONS, else the ones\n"
"                      shipped with labpulse)\n"
"  --json              plan, advise: JSON instead of a table\n"
"  --lock-retries N    times a statement is tried again after a lock timeout,\n"
"                      0 to 100 (default 5)\n"
"  --lock-timeout DURATION\n"
"                      how long a statement may wait for a lock, 10ms to 10m\n"
"                      (default 2s)\n"
"  --statement-timeout DURATION\n"
"                      how long a statement may run, 1s to 24h (default 15m);\n"
"                      CONCURRENTLY statements have none\n"
"  -h, --help          show this help\n"
"  -V, --version       show the version\n"
"\n"
"  plan [file ...]     the locks, rewrites and hazards of the pending migrations\n"
"                      or of files; exit 1 when there is a hazard\n"
"  up                  apply what is pending (and retry what failed)\n"
"  down [N]            roll back the last N applied migrations (default 1)\n"
"  status              list applied, pending, failed and changed migrations and\n"
"                      invalid indexes; exit 1 when one needs a person\n"
"  verify              check applied files and their indexes; exit 65 on drift\n"
"  repair              drop invalid indexes, rebuild those a migration defines\n"
"  advise              unused, duplicate and redundant indexes, foreign keys\n"
"                      without one\n";

static const struct option longopts[] = {
	{ "allow-hazard",	no_argument,	   NULL, 'A' },
	{ "db",			required_argument, NULL, 'd' },
	{ "dir",		required_argument, NULL, 'D' },
	{ "help",		no_argument,	   NULL, 'h' },
	{ "json",		no_argument,	   NULL, 'j' },
	{ "lock-retries",	required_argument, NULL, 'r' },
	{ "lock-timeout",	required_argument, NULL, 't' },
	{ "statement-timeout",	required_argument, NULL, 'T' },
	{ "version",		no_argument,	   NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

struct migrate_cfg cfg = {
	.lock_timeout_ms = 2000,
	.lock_retries = 5,
	.statement_timeout_ms = 15 * 60 * 1000,
};
PGconn *db;

PGresult *
q(int ok_fail, const char *sql, int n, const char *const *params)
{
	PGresult *r = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	char err[1024];

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && !ok_fail) {
		pgconn_error(db, r, err, sizeof err);
		PQclear(r);
		die(PQstatus(db) == CONNECTION_OK ? 70 : 69, "%s", err);
	}
	return r;
}

void
q0(const char *sql)
{
	PQclear(q(0, sql, 0, NULL));
}

void
set_statement_timeout(long ms)
{
	char v[32];
	const char *p[1] = { v };

	snprintf(v, sizeof v, "%ldms", ms);
	PQclear(q(0, "SELECT set_config('statement_timeout', $1, false)", 1, p));
}

static const char *
default_dir(char *buf, size_t len)
{
	const char *env = getenv("LABPULSE_MIGRATIONS");
	const char *rel[] = { "../etc/migrations", "../../share/labpulse/migrations",
	    NULL };
	char self[PATH_MAX], *slash;
	struct stat st;
	ssize_t n;
	int i;

	if (env && *env)
		return env;
	n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL)
			*slash = '\0';
		for (i = 0; rel[i]; i++) {
			if (snprintf(buf, len, "%s/%s", self, rel[i]) >= (int)len)
				continue;
			if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
				return buf;
		}
	}
	return LABPULSE_DATADIR "/migrations";
}

static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = n < 0 ? NULL : malloc(n + 1);
	if (buf && fread(buf, 1, n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	if (buf)
		buf[n] = '\0';
	fclose(f);
	return buf;
}

static int
by_version(const void *a, const void *b)
{
	return ((const struct migration *)a)->version -
	    ((const struct migration *)b)->version;
}

static struct migration *
load_dir(const char *dir, size_t *count)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct migration *m = NULL, *grown;
	size_t n = 0, i, nl;
	char *end;
	long v;

	if (d == NULL)
		die(66, "cannot read migrations folder %s: %s", dir,
		    strerror(errno));
	while ((de = readdir(d)) != NULL) {
		nl = strlen(de->d_name);
		if (nl < 8 || strcmp(de->d_name + nl - 7, ".up.sql") != 0)
			continue;
		v = strtol(de->d_name, &end, 10);
		if (end == de->d_name || *end != '_' || v <= 0 || v > 999999)
			die(65, "%s/%s: expected NNNN_name.up.sql", dir, de->d_name);
		if ((grown = realloc(m, (n + 1) * sizeof *m)) == NULL)
			die(71, "out of memory");
		m = grown;
		memset(&m[n], 0, sizeof *m);
		m[n].version = (int)v;
		snprintf(m[n].name, sizeof m[n].name, "%.*s", (int)(nl - 7),
		    de->d_name);
		if (snprintf(m[n].path, sizeof m[n].path, "%s/%s", dir,
		    de->d_name) >= (int)sizeof m[n].path ||
		    snprintf(m[n].down_path, sizeof m[n].down_path,
		    "%s/%s.down.sql", dir, m[n].name) >=
		    (int)sizeof m[n].down_path)
			die(65, "path too long: %s/%s", dir, de->d_name);
		m[n].sql = read_file(m[n].path);
		if (m[n].sql == NULL)
			die(66, "cannot read %s: %s", m[n].path, strerror(errno));
		errno = 0;
		m[n].down_sql = read_file(m[n].down_path);
		if (m[n].down_sql == NULL && errno != ENOENT)
			die(66, "cannot read %s: %s", m[n].down_path,
			    strerror(errno));
		n++;
	}
	closedir(d);
	qsort(m, n, sizeof *m, by_version);
	for (i = 1; i < n; i++)
		if (m[i].version == m[i - 1].version)
			die(65, "two migrations numbered %d: %s and %s",
			    m[i].version, m[i - 1].name, m[i].name);
	*count = n;
	return m;
}

/* The history table: one row per migration, its state, and what failed
 * where. */
static void
ensure_history(void)
{
	q0("CREATE TABLE IF NOT EXISTS labpulse_migrations ("
	    " version integer PRIMARY KEY,"
	    " name text NOT NULL,"
	    " checksum text NOT NULL,"
	    " state text NOT NULL CHECK (state IN"
	    "  ('applying', 'applied', 'failed', 'rolled_back')),"
	    " transactional boolean NOT NULL,"
	    " started_at timestamptz NOT NULL DEFAULT now(),"
	    " applied_at timestamptz,"
	    " duration_ms integer,"
	    " failed_statement text,"
	    " error text,"
	    " applied_by text NOT NULL DEFAULT current_user)");
}

static int
have_history(void)
{
	PGresult *r = q(0, "SELECT to_regclass('labpulse_migrations') IS NOT NULL",
	    0, NULL);
	int yes = strcmp(PQgetvalue(r, 0, 0), "t") == 0;

	PQclear(r);
	return yes;
}

static void
checksums(struct migration *m, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const char *p[1] = { m[i].sql };
		PGresult *r = q(0, "SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex')",
		    1, p);

		snprintf(m[i].checksum, sizeof m[i].checksum, "%s",
		    PQgetvalue(r, 0, 0));
		PQclear(r);
	}
}

static void
load_history(struct migration *m, size_t n)
{
	PGresult *r;
	int i;
	size_t j;

	if (!have_history())
		return;
	r = q(0, "SELECT version, state, checksum,"
	    " coalesce(to_char(applied_at, 'YYYY-MM-DD HH24:MI:SS'), ''),"
	    " coalesce(error, '') FROM labpulse_migrations", 0, NULL);
	for (i = 0; i < PQntuples(r); i++)
		for (j = 0; j < n; j++)
			if (m[j].version == atoi(PQgetvalue(r, i, 0))) {
				snprintf(m[j].state, sizeof m[j].state, "%s",
				    PQgetvalue(r, i, 1));
				snprintf(m[j].applied_checksum,
				    sizeof m[j].applied_checksum, "%s",
				    PQgetvalue(r, i, 2));
				snprintf(m[j].applied_at, sizeof m[j].applied_at,
				    "%s", PQgetvalue(r, i, 3));
				snprintf(m[j].error, sizeof m[j].error, "%s",
				    PQgetvalue(r, i, 4));
			}
	PQclear(r);
}

static void
record(const struct migration *m, const char *state, int tx, long ms,
    const char *stmt, const char *error)
{
	char v[16], t[8], d[24];
	const char *p[8];

	snprintf(v, sizeof v, "%d", m->version);
	snprintf(t, sizeof t, "%s", tx ? "true" : "false");
	snprintf(d, sizeof d, "%ld", ms);
	p[0] = v;
	p[1] = m->name;
	p[2] = m->checksum;
	p[3] = state;
	p[4] = t;
	p[5] = ms >= 0 ? d : NULL;
	p[6] = stmt;
	p[7] = error;
	PQclear(q(0, "INSERT INTO labpulse_migrations AS h (version, name, checksum,"
	    " state, transactional, applied_at, duration_ms, failed_statement, error)"
	    " VALUES ($1, $2, $3, $4, $5, CASE WHEN $4 = 'applied' THEN now() END,"
	    " $6, $7, $8)"
	    " ON CONFLICT (version) DO UPDATE SET name = $2, checksum = $3,"
	    " state = $4, transactional = $5,"
	    " started_at = CASE WHEN $4 = 'applying' THEN now() ELSE h.started_at END,"
	    " applied_at = CASE WHEN $4 = 'applied' THEN now() END,"
	    " duration_ms = $6, failed_statement = $7, error = $8, applied_by = current_user",
	    8, p));
}

static long
ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* A CREATE INDEX CONCURRENTLY that failed leaves an invalid index, which
 * IF NOT EXISTS then skips on a rerun: a migration naming an invalid index
 * is not applied, whatever its statements said. */
static int
invalid_index(const struct migration *m, char *err, size_t errlen)
{
	PGresult *r = q(0, "SELECT c.relname FROM pg_index i"
	    " JOIN pg_class c ON c.oid = i.indexrelid"
	    " JOIN pg_namespace n ON n.oid = c.relnamespace"
	    " WHERE NOT i.indisvalid AND n.nspname = current_schema()", 0, NULL);
	int i, found = 0;

	for (i = 0; i < PQntuples(r) && !found; i++)
		if (strstr(m->sql, PQgetvalue(r, i, 0)) != NULL) {
			snprintf(err, errlen, "index %s is invalid (a CONCURRENTLY "
			    "build failed); drop it with DROP INDEX CONCURRENTLY "
			    "%s and run up again", PQgetvalue(r, i, 0),
			    PQgetvalue(r, i, 0));
			found = 1;
		}
	PQclear(r);
	return found;
}

/* A CONCURRENTLY build that gave up waiting for a lock may have left its
 * index behind, invalid: drop it, or IF NOT EXISTS would skip it on the
 * retry. */
static void
drop_invalid_leftover(const char *stmt)
{
	struct plan_item it;
	char sql[400], err[512];
	const char *p[1] = { it.index };
	PGresult *r, *d;

	stmt_item(stmt, &it);
	if (strncmp(it.kind, "CREATE", 6) != 0 || it.index[0] == '\0')
		return;
	r = q(0, "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)"
	    " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
	    " JOIN pg_namespace n ON n.oid = c.relnamespace"
	    " WHERE NOT i.indisvalid AND i.indexrelid = to_regclass($1)", 1, p);
	if (PQntuples(r) == 1) {
		snprintf(sql, sizeof sql, "DROP INDEX CONCURRENTLY IF EXISTS %s",
		    PQgetvalue(r, 0, 0));
		log_info("dropping the invalid index %s the lock timeout left",
		    it.index);
		set_statement_timeout(0);
		d = run_stmt(sql);
		if (PQresultStatus(d) != PGRES_COMMAND_OK) {
			pgconn_error(db, d, err, sizeof err);
			log_warn("cannot drop the invalid index %s: %s",
			    it.index, err);
		}
		PQclear(d);
		set_statement_timeout(cfg.statement_timeout_ms);
	}
	PQclear(r);
}

static int
lock_timed_out(const PGresult *r)
{
	const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);

	/* 55P03 lock_not_available: lock_timeout expired */
	return st != NULL && strcmp(st, "55P03") == 0;
}

/* Exponential from 200 ms, at most 10 s: others waiting behind our queued
 * lock get through between tries. */
static long
backoff_ms(int attempt)
{
	long ms = 200L << (attempt < 6 ? attempt : 6);

	return ms > 10000 ? 10000 : ms;
}

enum { RUN_OK = 0, RUN_FAILED = -1, RUN_LOCKED = -2 };

/* Run the statements sql of migration m, in one transaction unless one has
 * CONCURRENTLY, recording it as done (applied or rolled_back) when they all
 * ran. A statement that times out on a lock is tried again after a backoff,
 * up to cfg.lock_retries times: the whole transaction, or the one
 * statement. Returns RUN_OK, RUN_FAILED or RUN_LOCKED (out of retries),
 * recorded as failed. */
static int
run_migration(struct migration *m, const char *path, const char *sql,
    const char *done, const char *verb)
{
	struct stmts s;
	struct timespec t0;
	char err[1024];
	int tx = 1, attempt = 0, locked = 0;
	size_t i;
	PGresult *r;

	if (split_sql(sql, &s, err, sizeof err) < 0)
		die(65, "%s: %s", path, err);
	for (i = 0; i < s.n; i++)
		if (stmt_needs_autocommit(s.v[i]))
			tx = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!tx)
		record(m, "applying", 0, -1, NULL, NULL);
again:
	if (tx)
		q0("BEGIN");
	for (i = 0; i < s.n; i++) {
		int conc = stmt_needs_autocommit(s.v[i]);

		if (conc)
			set_statement_timeout(0);
		r = run_stmt(s.v[i]);
		if (conc)
			set_statement_timeout(cfg.statement_timeout_ms);
		if (PQresultStatus(r) == PGRES_COMMAND_OK ||
		    PQresultStatus(r) == PGRES_TUPLES_OK) {
			PQclear(r);
			continue;
		}
		pgconn_error(db, r, err, sizeof err);
		locked = lock_timed_out(r);
		PQclear(r);
		if (PQstatus(db) != CONNECTION_OK)
			die(69, "lost the database while applying %s: %s",
			    m->name, err);
		if (tx)
			q0("ROLLBACK");
		if (locked && attempt < cfg.lock_retries) {
			long ms = backoff_ms(attempt);

			attempt++;
			log_warn("lock timeout in %s at statement %zu; retry %d of "
			    "%ld in %ld ms: %s", m->name, i + 1, attempt,
			    cfg.lock_retries, ms, err);
			sleep_ms(ms);
			if (tx)
				goto again;
			if (conc)
				drop_invalid_leftover(s.v[i]);
			i--;
			continue;
		}
		record(m, "failed", tx, ms_since(&t0), s.v[i], err);
		log_error("migration %s failed at statement %zu: %s",
		    m->name, i + 1, err);
		log_error("the statement: %s", s.v[i]);
		if (locked)
			log_error("gave up after %d lock timeouts", attempt + 1);
		stmts_free(&s);
		return locked ? RUN_LOCKED : RUN_FAILED;
	}
	if (!tx && strcmp(done, "applied") == 0 &&
	    invalid_index(m, err, sizeof err)) {
		record(m, "failed", 0, ms_since(&t0), NULL, err);
		log_error("migration %s failed: %s", m->name, err);
		stmts_free(&s);
		return RUN_FAILED;
	}
	record(m, done, tx, ms_since(&t0), NULL, NULL);
	if (tx)
		q0("COMMIT");
	printf("%s %s (%ld ms%s)\n", verb, m->name, ms_since(&t0),
	    tx ? "" : ", outside a transaction");
	fflush(stdout);
	stmts_free(&s);
	return RUN_OK;
}

/* Hazards up guards against itself: after a CONCURRENTLY build it checks
 * that no index the migration names is left invalid, so IF NOT EXISTS
 * skipping one is caught there. */
static int
up_mitigates(const char *rule)
{
	return strstr(rule, "if-not-exists") != NULL;
}

/* Plan every pending migration before any runs; refuse them all when one
 * has a hazard up does not guard against. Returns 0 or 1 (refused). */
static int
refuse_hazards(struct migration *m, size_t n)
{
	struct plan_ctx c;
	struct plan_item *items;
	size_t i, k, h, ni;
	char err[1024];
	int bad = 0, rc;

	plan_init(&c, db);
	for (i = 0; i < n; i++) {
		if (strcmp(m[i].state, "applied") == 0)
			continue;
		rc = plan_file(&c, m[i].sql, &items, &ni, err, sizeof err);
		if (rc < 0)
			die(65, "%s: %s", m[i].path, err);
		for (k = 0; k < ni; k++)
			for (h = 0; h < items[k].nhaz; h++) {
				if (up_mitigates(items[k].haz[h].rule))
					continue;
				log_error("%s, statement %d: %s: %s", m[i].name,
				    items[k].stmt, items[k].haz[h].rule,
				    items[k].haz[h].msg);
				bad = 1;
			}
		free(items);
		if (bad) {
			log_error("applying nothing: %s has hazards (see: "
			    "migrate-indexes plan; --allow-hazard applies it "
			    "anyway)", m[i].name);
			break;
		}
	}
	plan_ctx_free(&c);
	return bad;
}

static int
cmd_up(struct migration *m, size_t n)
{
	size_t i, done = 0;
	int rc;

	if (!cfg.allow_hazard && refuse_hazards(m, n))
		return 1;
	for (i = 0; i < n; i++) {
		if (strcmp(m[i].state, "applied") == 0) {
			if (strcmp(m[i].checksum, m[i].applied_checksum) != 0)
				log_warn("applied migration changed since: %s "
				    "(see: migrate-indexes status)", m[i].name);
			continue;
		}
		rc = run_migration(&m[i], m[i].path, m[i].sql, "applied",
		    "applied");
		if (rc == RUN_LOCKED)
			return 75;
		if (rc < 0)
			return 65;
		done++;
	}
	if (done == 0)
		printf("nothing to apply: %zu migrations applied\n", n);
	return 0;
}

/* Roll back the last count applied migrations, newest first; every one
 * needs its .down.sql, checked before any runs. */
static int
cmd_down(struct migration *m, size_t n, long count)
{
	size_t i, todo[64];
	long k = 0, j;
	int rc;

	for (i = n; i-- > 0 && k < count;)
		if (strcmp(m[i].state, "applied") == 0)
			todo[k++] = i;
	if (k == 0) {
		printf("nothing to roll back: no migration is applied\n");
		return 0;
	}
	if (k < count)
		log_warn("down %ld, but only %ld applied: rolling back %s",
		    count, k, k == 1 ? "that" : "those");
	for (j = 0; j < k; j++)
		if (m[todo[j]].down_sql == NULL)
			die(65, "cannot roll back %s: no %s", m[todo[j]].name,
			    m[todo[j]].down_path);
	for (j = 0; j < k; j++) {
		rc = run_migration(&m[todo[j]], m[todo[j]].down_path,
		    m[todo[j]].down_sql, "rolled_back", "rolled back");
		if (rc == RUN_LOCKED)
			return 75;
		if (rc < 0)
			return 65;
	}
	return 0;
}

static int
cmd_status(struct migration *m, size_t n)
{
	PGresult *r;
	size_t i, j;
	int bad = 0, found;

	printf("%-7s %-28s %-9s %-19s %s\n", "VERSION", "NAME", "STATE",
	    "APPLIED", "NOTE");
	for (i = 0; i < n; i++) {
		const char *state = m[i].state[0] ? m[i].state : "pending";
		const char *note = "";

		if (strcmp(state, "applied") == 0 &&
		    strcmp(m[i].checksum, m[i].applied_checksum) != 0) {
			note = "CHANGED since applied (checksum differs)";
			bad = 1;
		} else if (strcmp(state, "failed") == 0) {
			note = m[i].error;
			bad = 1;
		} else if (strcmp(state, "applying") == 0) {
			note = "interrupted: run up again";
			bad = 1;
		}
		printf("%04d    %-28s %-9s %-19s %s\n", m[i].version, m[i].name,
		    state, m[i].applied_at[0] ? m[i].applied_at : "-", note);
	}
	/* history rows whose file is gone */
	r = q(0, "SELECT version, name, state FROM labpulse_migrations"
	    " ORDER BY version", 0, NULL);
	for (j = 0; j < (size_t)PQntuples(r); j++) {
		for (found = 0, i = 0; i < n; i++)
			if (m[i].version == atoi(PQgetvalue(r, j, 0)))
				found = 1;
		if (!found) {
			printf("%04d    %-28s %-9s %-19s %s\n",
			    atoi(PQgetvalue(r, j, 0)), PQgetvalue(r, j, 1),
			    PQgetvalue(r, j, 2), "-", "FILE MISSING");
			bad = 1;
		}
	}
	PQclear(r);
	if (print_invalid_indexes() > 0)
		bad = 1;
	return bad;
}

/* plan: the pending migrations, or the files named, in order, with one
 * context so that a table made by one is new in those after it. */
static int
cmd_plan(struct migration *m, size_t n, char **files, int nfiles)
{
	struct plan_ctx c;
	char err[1024], name[256], *sql;
	const char *base;
	size_t i;
	int k, rc, haz = 0;

	plan_init(&c, db);
	if (nfiles == 0)
		for (i = 0; i < n; i++) {
			if (strcmp(m[i].state, "applied") == 0)
				continue;
			rc = plan_migration(stdout, &c, m[i].name, m[i].sql,
			    cfg.json, err, sizeof err);
			if (rc < 0)
				die(65, "%s: %s", m[i].path, err);
			haz += rc;
		}
	for (k = 0; k < nfiles; k++) {
		if ((sql = read_file(files[k])) == NULL)
			die(66, "cannot read %s: %s", files[k], strerror(errno));
		base = strrchr(files[k], '/');
		base = base ? base + 1 : files[k];
		snprintf(name, sizeof name, "%s", base);
		if (strlen(name) > 7 &&
		    strcmp(name + strlen(name) - 7, ".up.sql") == 0)
			name[strlen(name) - 7] = '\0';
		rc = plan_migration(stdout, &c, name, sql, cfg.json, err,
		    sizeof err);
		free(sql);
		if (rc < 0)
			die(65, "%s: %s", files[k], err);
		haz += rc;
	}
	plan_ctx_free(&c);
	return haz > 0 ? 1 : 0;
}

static void
take_lock(void)
{
	char key[16];
	const char *p[1] = { key };
	int said = 0;
	PGresult *r;

	/* One run at a time: a second waits here, then finds nothing to do.
	 * It waits by trying, not inside pg_advisory_lock(): a waiting
	 * statement holds a snapshot, which CREATE INDEX CONCURRENTLY in the
	 * run that holds the lock would wait for: a deadlock. */
	snprintf(key, sizeof key, "%d", MIGRATE_LOCK_KEY);
	for (;;) {
		r = q(0, "SELECT pg_try_advisory_lock($1)", 1, p);
		if (strcmp(PQgetvalue(r, 0, 0), "t") == 0) {
			PQclear(r);
			break;
		}
		PQclear(r);
		if (!said++)
			log_info("waiting for another migrate-indexes run");
		sleep_ms(200);
	}
}

static const char *const commands[] = {
	"plan", "up", "down", "status", "verify", "repair", "advise", NULL
};

int
main(int argc, char **argv)
{
	const char *cmd;
	char dirbuf[PATH_MAX], err[1024], lt[32];
	const char *p[1] = { lt };
	struct migration *m = NULL;
	size_t n = 0, i;
	long down_n = 1;
	int ch, rc, k, nops;

	log_init("labpulse-migrate-indexes");
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'A':
			cfg.allow_hazard = 1;
			break;
		case 'd':
			cfg.conninfo = optarg;
			break;
		case 'D':
			cfg.dir = optarg;
			break;
		case 'h':
			usage(0);
		case 'j':
			cfg.json = 1;
			break;
		case 'r':
			opt_range("lock-retries", parse_long, optarg, 0, 100,
			    &cfg.lock_retries);
			break;
		case 't':
			opt_range("lock-timeout", parse_duration_ms, optarg, 10,
			    600000, &cfg.lock_timeout_ms);
			break;
		case 'T':
			opt_range("statement-timeout", parse_duration_ms, optarg,
			    1000, 86400000, &cfg.statement_timeout_ms);
			break;
		case 'V':
			printf("labpulse migrate-indexes %s\n", LABPULSE_VERSION);
			return 0;
		default:
			bad_option(ch, argv);
		}
	}
	if (optind == argc) {
		log_error("a command is needed: plan, up, down, status, verify, "
		    "repair or advise");
		usage(64);
	}
	cmd = argv[optind];
	nops = argc - optind - 1;
	for (k = 0; commands[k] && strcmp(commands[k], cmd) != 0; k++)
		;
	if (commands[k] == NULL) {
		log_error("unknown command '%s'", cmd);
		usage(64);
	}
	if (strcmp(cmd, "down") == 0 && nops == 1) {
		if (parse_long(argv[optind + 1], 1, 64, &down_n, err,
		    sizeof err) < 0)
			usage_error("down N: %s", err);
	} else if (nops > 0 && strcmp(cmd, "plan") != 0) {
		log_error("one command only");
		usage(64);
	}
	if (cfg.json && strcmp(cmd, "plan") != 0 && strcmp(cmd, "advise") != 0)
		usage_error("--json is for plan and advise");
	cfg.tty = isatty(STDERR_FILENO);
	if (cfg.dir == NULL)
		cfg.dir = default_dir(dirbuf, sizeof dirbuf);
	if (strcmp(cmd, "advise") != 0 &&
	    !(strcmp(cmd, "plan") == 0 && nops > 0))
		m = load_dir(cfg.dir, &n);
	db = pgconn_open(cfg.conninfo, "labpulse-migrate-indexes", err,
	    sizeof err);
	if (db == NULL) {
		/* plan of named files needs no database: without one it shows
		 * no sizes */
		if (strcmp(cmd, "plan") == 0 && nops > 0) {
			log_warn("cannot connect to PostgreSQL, planning without "
			    "the catalog: %s", err);
			return cmd_plan(m, n, argv + optind + 1, nops);
		}
		die(69, "cannot connect to PostgreSQL: %s", err);
	}
	q0("SET client_min_messages = warning");
	snprintf(lt, sizeof lt, "%ldms", cfg.lock_timeout_ms);
	PQclear(q(0, "SELECT set_config('lock_timeout', $1, false)", 1, p));
	set_statement_timeout(cfg.statement_timeout_ms);
	if (strcmp(cmd, "advise") == 0) {
		rc = cmd_advise();
		PQfinish(db);
		return rc;
	}
	if (strcmp(cmd, "plan") != 0 && strcmp(cmd, "verify") != 0) {
		take_lock();
		ensure_history();
	}
	checksums(m, n);
	load_history(m, n);
	if (strcmp(cmd, "plan") == 0)
		rc = cmd_plan(m, n, argv + optind + 1, nops);
	else if (strcmp(cmd, "up") == 0)
		rc = cmd_up(m, n);
	else if (strcmp(cmd, "down") == 0)
		rc = cmd_down(m, n, down_n);
	else if (strcmp(cmd, "verify") == 0)
		rc = cmd_verify(m, n);
	else if (strcmp(cmd, "repair") == 0)
		rc = cmd_repair(m, n);
	else
		rc = cmd_status(m, n);
	progress_close();
	PQfinish(db);
	for (i = 0; i < n; i++) {
		free(m[i].sql);
		free(m[i].down_sql);
	}
	free(m);
	return rc;
}
