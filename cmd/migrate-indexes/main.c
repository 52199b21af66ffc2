/* migrate-indexes: apply the schema and index migrations of etc/migrations
 * to a live database, each once, recorded with its checksum; tell what is
 * applied, pending, failed or changed. */
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
#include "pgconn.h"

/* Any fixed number: every run of any version takes the same lock. */
#define MIGRATE_LOCK_KEY 7270001

const char usage_text[] =
"usage: labpulse migrate-indexes [--db CONNINFO] [--dir DIR] up\n"
"       labpulse migrate-indexes [--db CONNINFO] [--dir DIR] status\n"
"       labpulse migrate-indexes --help | --version\n";

const char help_text[] =
"Apply the migrations in DIR (NNNN_name.up.sql) that are pending, each once,\n"
"recorded with its checksum in the table labpulse_migrations; or list them.\n"
"\n"
"  --db CONNINFO   the database (default: $DATABASE_URL, else libpq's PG* variables)\n"
"  --dir DIR       the migrations (default: $LABPULSE_MIGRATIONS, else the ones\n"
"                  shipped with labpulse)\n"
"  -h, --help      show this help\n"
"  -V, --version   show the version\n"
"\n"
"  up              apply what is pending (and retry what failed)\n"
"  status          list applied, pending, failed and changed migrations;\n"
"                  exit 1 when one failed or an applied file changed\n";

static const struct option longopts[] = {
	{ "db",		required_argument, NULL, 'd' },
	{ "dir",	required_argument, NULL, 'D' },
	{ "help",	no_argument,	   NULL, 'h' },
	{ "version",	no_argument,	   NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

struct migration {
	int version;
	char name[200];
	char path[PATH_MAX];
	char *sql;
	char checksum[65];
	/* from the history */
	char state[16];		/* "" pending, applying, applied, failed */
	char applied_checksum[65];
	char applied_at[40];
	char error[512];
};

static PGconn *db;

/* Run sql with text parameters; die on error unless ok_fail. */
static PGresult *
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

static void
q0(const char *sql)
{
	PQclear(q(0, sql, 0, NULL));
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
	buf = malloc(n + 1);
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
	struct migration *m = NULL;
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
		m = realloc(m, (n + 1) * sizeof *m);
		memset(&m[n], 0, sizeof *m);
		m[n].version = (int)v;
		snprintf(m[n].name, sizeof m[n].name, "%.*s", (int)(nl - 7),
		    de->d_name);
		if (snprintf(m[n].path, sizeof m[n].path, "%s/%s", dir,
		    de->d_name) >= (int)sizeof m[n].path)
			die(65, "path too long: %s/%s", dir, de->d_name);
		m[n].sql = read_file(m[n].path);
		if (m[n].sql == NULL)
			die(66, "cannot read %s: %s", m[n].path, strerror(errno));
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

/* The history table, made for rollbacks and repairs to come: one row per
 * migration, its state, and what failed where. */
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

/* Apply one migration. A file with CONCURRENTLY cannot run in a transaction:
 * its statements run one by one, and the history says "applying" meanwhile,
 * so that a crash leaves it telling the truth. Returns 0 or -1. */
static int
apply(struct migration *m)
{
	struct stmts s;
	struct timespec t0;
	char err[1024];
	int tx = 1;
	size_t i;
	PGresult *r;

	if (split_sql(m->sql, &s, err, sizeof err) < 0)
		die(65, "%s: %s", m->path, err);
	for (i = 0; i < s.n; i++)
		if (stmt_needs_autocommit(s.v[i]))
			tx = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (tx)
		q0("BEGIN");
	else
		record(m, "applying", 0, -1, NULL, NULL);
	for (i = 0; i < s.n; i++) {
		r = q(1, s.v[i], 0, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK &&
		    PQresultStatus(r) != PGRES_TUPLES_OK) {
			pgconn_error(db, r, err, sizeof err);
			PQclear(r);
			if (PQstatus(db) != CONNECTION_OK)
				die(69, "lost the database while applying %s: %s",
				    m->name, err);
			if (tx)
				q0("ROLLBACK");
			record(m, "failed", tx, ms_since(&t0), s.v[i], err);
			log_error("migration %s failed at statement %zu: %s",
			    m->name, i + 1, err);
			log_error("the statement: %s", s.v[i]);
			stmts_free(&s);
			return -1;
		}
		PQclear(r);
	}
	if (!tx && invalid_index(m, err, sizeof err)) {
		record(m, "failed", 0, ms_since(&t0), NULL, err);
		log_error("migration %s failed: %s", m->name, err);
		stmts_free(&s);
		return -1;
	}
	record(m, "applied", tx, ms_since(&t0), NULL, NULL);
	if (tx)
		q0("COMMIT");
	printf("applied %s (%ld ms%s)\n", m->name, ms_since(&t0),
	    tx ? "" : ", outside a transaction");
	stmts_free(&s);
	return 0;
}

static int
cmd_up(struct migration *m, size_t n)
{
	size_t i, done = 0;

	for (i = 0; i < n; i++) {
		if (strcmp(m[i].state, "applied") == 0) {
			if (strcmp(m[i].checksum, m[i].applied_checksum) != 0)
				log_warn("applied migration changed since: %s "
				    "(see: migrate-indexes status)", m[i].name);
			continue;
		}
		if (apply(&m[i]) < 0)
			return 65;
		done++;
	}
	if (done == 0)
		printf("nothing to apply: %zu migrations applied\n", n);
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
	return bad;
}

int
main(int argc, char **argv)
{
	const char *conninfo = NULL, *dir = NULL, *cmd;
	char dirbuf[PATH_MAX], err[1024];
	struct migration *m;
	size_t n, i;
	int ch, rc;

	log_init("labpulse-migrate-indexes");
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			conninfo = optarg;
			break;
		case 'D':
			dir = optarg;
			break;
		case 'h':
			usage(0);
		case 'V':
			printf("labpulse migrate-indexes %s\n", LABPULSE_VERSION);
			return 0;
		default:
			bad_option(ch, argv);
		}
	}
	if (optind != argc - 1) {
		log_error(optind == argc ? "a command is needed: up or status"
		    : "one command only");
		usage(64);
	}
	cmd = argv[optind];
	if (strcmp(cmd, "up") != 0 && strcmp(cmd, "status") != 0) {
		log_error("unknown command '%s'", cmd);
		usage(64);
	}
	if (dir == NULL)
		dir = default_dir(dirbuf, sizeof dirbuf);
	m = load_dir(dir, &n);
	db = pgconn_open(conninfo, "labpulse-migrate-indexes", err, sizeof err);
	if (db == NULL)
		die(69, "cannot connect to PostgreSQL: %s", err);
	q0("SET client_min_messages = warning");
	/* One run at a time: a second waits here, then finds nothing to do.
	 * It waits by trying, not inside pg_advisory_lock(): a waiting
	 * statement holds a snapshot, which CREATE INDEX CONCURRENTLY in the
	 * run that holds the lock would wait for: a deadlock. */
	{
		char key[16];
		const char *p[1] = { key };
		struct timespec ts = { 0, 200 * 1000000L };
		int said = 0;
		PGresult *r;

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
			nanosleep(&ts, NULL);
		}
	}
	ensure_history();
	checksums(m, n);
	load_history(m, n);
	rc = strcmp(cmd, "up") == 0 ? cmd_up(m, n) : cmd_status(m, n);
	PQfinish(db);
	for (i = 0; i < n; i++)
		free(m[i].sql);
	free(m);
	return rc;
}
