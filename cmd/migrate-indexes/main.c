/* migrate-indexes: apply the schema and index migrations of etc/migrations
 * to a live database, each once, recorded with its checksum, and those of
 * etc/migrations/optional when asked (add, drop); plan them before, roll
 * them back, and tell what is applied, pending, failed, changed or
 * invalid. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "log.h"
#include "prog.h"
#include "parse.h"
#include "ops.h"
#include "pgconn.h"
#include "plan.h"

#define OPT_CFG struct migrate_cfg
static const struct opt options[] = {
	O_FLAG("allow-hazard", allow_hazard,
	    "up, add: apply a migration that plan finds hazardous"),
	O_TEXT("db", "CONNINFO", conninfo,
	    "$DATABASE_URL, else libpq's PG* variables", "the database"),
	O_TEXT("dir", "DIR", dir,
	    "$LABPULSE_MIGRATIONS, else the ones shipped with labpulse",
	    "the migrations"),
	O_FLAG("json", json, "plan, advise: JSON instead of a table"),
	O_LONG("lock-retries", lock_retries, "0", "100", "5",
	    "times a statement is tried again after a lock timeout"),
	O_DURATION("lock-timeout", lock_timeout_ms, "10ms", "10m", "2s",
	    "how long a statement may wait for a lock"),
	O_DURATION("statement-timeout", statement_timeout_ms, "1s", "24h",
	    "15m", "how long a statement may run; CONCURRENTLY statements have none"),
	O_END
};

static const struct prog_opts prog_opts = {
	"migrate-indexes",
	"Apply the migrations in DIR (NNNN_name.up.sql) that are pending, each "
	"once, recorded with its checksum in the table labpulse_migrations, and "
	"those of DIR/optional on request; plan, roll back, verify and repair "
	"them; advise on indexes.",
	options, "COMMAND",
	"usage: labpulse migrate-indexes [--db CONNINFO] [--dir DIR] [--json] plan [file ...]\n"
	"       labpulse migrate-indexes [--db CONNINFO] [--dir DIR] [--allow-hazard]\n"
	"           [--lock-retries N] [--lock-timeout DURATION]\n"
	"           [--statement-timeout DURATION] up\n"
	"       labpulse migrate-indexes [--db CONNINFO] [--dir DIR] [--lock-retries N]\n"
	"           [--lock-timeout DURATION] [--statement-timeout DURATION] down [N]\n"
	"       labpulse migrate-indexes [--db CONNINFO] [--dir DIR] [--allow-hazard]\n"
	"           [--lock-retries N] [--lock-timeout DURATION]\n"
	"           [--statement-timeout DURATION] add | drop NAME\n"
	"       labpulse migrate-indexes [--db CONNINFO] [--dir DIR] status | verify | repair\n"
	"       labpulse migrate-indexes [--db CONNINFO] [--json] advise\n"
	"       labpulse migrate-indexes --help | --version\n",
	"Commands:\n"
	"  plan [file ...]     the locks, rewrites and hazards of the pending migrations\n"
	"                      or of files; exit 1 when there is a hazard\n"
	"  up                  apply what is pending (and retry what failed)\n"
	"  down [N]            roll back the last N applied migrations (default 1)\n"
	"  add NAME            apply the optional migration NAME of DIR/optional\n"
	"  drop NAME           roll back the optional migration NAME\n"
	"  status              list applied, pending, failed and changed migrations and\n"
	"                      invalid indexes; exit 1 when one needs a person\n"
	"  verify              check applied files and their indexes; exit 65 on drift\n"
	"  repair              drop invalid indexes, rebuild those a migration defines\n"
	"  advise              unused, duplicate and redundant indexes, foreign keys\n"
	"                      without one\n"
};

enum {
	C_JSON = 1,	/* takes --json */
	C_LOCK = 2,	/* one run at a time, with a history table */
	C_FILES = 4,	/* operands: files planned instead of the folder's */
	C_CATALOG = 8,	/* the catalog only: no migrations */
	C_NAME = 16,	/* one operand: the name of an optional migration */
};

/* The commands: what each runs, its operands at most, what it needs. */
static const struct command {
	const char *name;
	int (*run)(struct job *);
	int max;
	int flags;
} commands[] = {
	{ "plan",	cmd_plan,	INT_MAX, C_JSON | C_FILES },
	{ "up",		cmd_up,		0,	C_LOCK },
	{ "down",	cmd_down,	1,	C_LOCK },
	{ "add",	cmd_add,	1,	C_LOCK | C_NAME },
	{ "drop",	cmd_drop,	1,	C_LOCK | C_NAME },
	{ "status",	cmd_status,	0,	C_LOCK },
	{ "verify",	cmd_verify,	0,	0 },
	{ "repair",	cmd_repair,	0,	C_LOCK },
	{ "advise",	cmd_advise,	0,	C_JSON | C_CATALOG },
	{ NULL,		NULL,		0,	0 }
};

struct migrate_cfg cfg;

/* The folder of the running program, from /proc/self/exe; -1 when it
 * cannot be told. */
static int
self_dir(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	char *slash;

	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if ((slash = strrchr(buf, '/')) != NULL)
		*slash = '\0';
	return 0;
}

/* $LABPULSE_MIGRATIONS, else the source tree's beside bin/, else the
 * install's beside libexec/, else the configured data folder's. */
static const char *
default_dir(char *buf, size_t len)
{
	const char *env = getenv("LABPULSE_MIGRATIONS");
	const char *rel[] = { "../etc/migrations", "../../share/labpulse/migrations",
	    NULL };
	char self[PATH_MAX];
	struct stat st;
	int i;

	if (env && *env)
		return env;
	if (self_dir(self, sizeof self) == 0)
		for (i = 0; rel[i]; i++)
			if (snprintf(buf, len, "%s/%s", self, rel[i]) <
			    (int)len && stat(buf, &st) == 0 &&
			    S_ISDIR(st.st_mode))
				return buf;
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

/* Add the migrations of dir (NNNN_name.up.sql, each with its .down.sql
 * if there is one) to m[0..*n), marked optional or not; a missing folder
 * is an error unless it is optional's. */
static struct migration *
load_dir(const char *dir, int optional, struct migration *m, size_t *count)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct migration *grown;
	size_t n = *count, nl;
	char *end;
	long v;

	if (d == NULL && optional && errno == ENOENT)
		return m;
	if (d == NULL)
		die(EX_NOINPUT, "cannot read migrations folder %s: %s", dir,
		    strerror(errno));
	while ((de = readdir(d)) != NULL) {
		nl = strlen(de->d_name);
		if (nl < 8 || strcmp(de->d_name + nl - 7, ".up.sql") != 0)
			continue;
		v = strtol(de->d_name, &end, 10);
		if (end == de->d_name || *end != '_' || v <= 0 || v > 999999)
			die(EX_DATAERR, "%s/%s: expected NNNN_name.up.sql", dir,
			    de->d_name);
		if ((grown = realloc(m, (n + 1) * sizeof *m)) == NULL)
			die_nomem();
		m = grown;
		memset(&m[n], 0, sizeof *m);
		m[n].version = (int)v;
		m[n].optional = optional;
		snprintf(m[n].name, sizeof m[n].name, "%.*s", (int)(nl - 7),
		    de->d_name);
		if (snprintf(m[n].path, sizeof m[n].path, "%s/%s", dir,
		    de->d_name) >= (int)sizeof m[n].path ||
		    snprintf(m[n].down_path, sizeof m[n].down_path,
		    "%s/%s.down.sql", dir, m[n].name) >=
		    (int)sizeof m[n].down_path)
			die(EX_DATAERR, "path too long: %s/%s", dir,
			    de->d_name);
		m[n].sql = read_file(m[n].path);
		if (m[n].sql == NULL)
			die(EX_NOINPUT, "cannot read %s: %s", m[n].path,
			    strerror(errno));
		errno = 0;
		m[n].down_sql = read_file(m[n].down_path);
		if (m[n].down_sql == NULL && errno != ENOENT)
			die(EX_NOINPUT, "cannot read %s: %s", m[n].down_path,
			    strerror(errno));
		n++;
	}
	closedir(d);
	*count = n;
	return m;
}

/* The migrations of dir, then the optional ones of dir/optional, in one
 * order of versions: they share the history, so no two share a number. */
static struct migration *
load_all(const char *dir, size_t *count)
{
	struct migration *m = NULL;
	char opt[PATH_MAX];
	size_t i, n = 0;

	m = load_dir(dir, 0, m, &n);
	if (snprintf(opt, sizeof opt, "%s/optional", dir) >= (int)sizeof opt)
		die(EX_DATAERR, "path too long: %s/optional", dir);
	m = load_dir(opt, 1, m, &n);
	qsort(m, n, sizeof *m, by_version);
	for (i = 1; i < n; i++)
		if (m[i].version == m[i - 1].version)
			die(EX_DATAERR, "two migrations numbered %d: %s and %s",
			    m[i].version, m[i - 1].name, m[i].name);
	*count = n;
	return m;
}

int
cmd_status(struct job *j)
{
	struct migration *m = j->m;
	PGresult *r;
	size_t i, n = j->n;
	int bad = 0, k;

	printf("%-7s %-28s %-9s %-19s %s\n", "VERSION", "NAME", "STATE",
	    "APPLIED", "NOTE");
	for (i = 0; i < n; i++) {
		const char *state = m[i].state[0] ? m[i].state :
		    m[i].optional ? "optional" : "pending";
		const char *note = "";

		if (strcmp(state, "applied") == 0 &&
		    strcmp(m[i].checksum, m[i].applied_checksum) != 0) {
			note = "CHANGED since applied (checksum differs)";
			bad = 1;
		} else if (strcmp(state, "failed") == 0) {
			note = m[i].error;
			bad = 1;
		} else if (strcmp(state, "applying") == 0) {
			note = m[i].optional ? "interrupted: run add again" :
			    "interrupted: run up again";
			bad = 1;
		} else if (m[i].optional && strcmp(state, "applied") != 0)
			note = "not applied: see migrate-indexes add";
		printf("%04d    %-28s %-9s %-19s %s\n", m[i].version, m[i].name,
		    state, m[i].applied_at[0] ? m[i].applied_at : "-", note);
	}
	/* history rows whose file is gone */
	r = history_orphans(m, n, 0);
	for (k = 0; k < PQntuples(r); k++) {
		printf("%04d    %-28s %-9s %-19s %s\n",
		    atoi(PQgetvalue(r, k, 0)), PQgetvalue(r, k, 1),
		    PQgetvalue(r, k, 2), "-", "FILE MISSING");
		bad = 1;
	}
	PQclear(r);
	if (print_invalid_indexes() > 0)
		bad = 1;
	return bad ? EX_CHECK : EX_OK;
}

/* plan: the pending migrations, or the files named, in order, with one
 * context so that a table made by one is new in those after it. */
int
cmd_plan(struct job *j)
{
	struct migration *m = j->m;
	struct plan_ctx c;
	char err[1024], name[256], *sql, **files = j->args;
	const char *base;
	size_t i;
	int k, rc, haz = 0;

	plan_init(&c, db);
	if (j->nargs == 0)
		for (i = 0; i < j->n; i++) {
			if (strcmp(m[i].state, "applied") == 0 ||
			    m[i].optional)
				continue;
			rc = plan_migration(stdout, &c, m[i].name, m[i].sql,
			    cfg.json, err, sizeof err);
			if (rc < 0)
				die(EX_DATAERR, "%s: %s", m[i].path, err);
			haz += rc;
		}
	for (k = 0; k < j->nargs; k++) {
		if ((sql = read_file(files[k])) == NULL)
			die(EX_NOINPUT, "cannot read %s: %s", files[k],
			    strerror(errno));
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
			die(EX_DATAERR, "%s: %s", files[k], err);
		haz += rc;
	}
	plan_ctx_free(&c);
	return haz > 0 ? EX_CHECK : EX_OK;
}

/* The command, and what the options and operands ask of it that they
 * cannot say alone. */
static const struct command *
check_options(int argc, char **argv, struct job *j)
{
	const struct command *c;
	char err[200];

	if (argc == 0)
		usage_error("a command is needed: plan, up, down, add, drop, "
		    "status, verify, repair or advise");
	for (c = commands; c->name && strcmp(c->name, argv[0]) != 0; c++)
		;
	if (c->name == NULL)
		usage_error("unknown command '%s'", argv[0]);
	memset(j, 0, sizeof *j);
	j->args = argv + 1;
	j->nargs = argc - 1;
	j->down_n = 1;
	if (j->nargs > c->max)
		usage_error("one command only");
	if ((c->flags & C_NAME) && j->nargs == 0)
		usage_error("%s NAME: the name of an optional migration is "
		    "needed", c->name);
	if (c->run == cmd_down && j->nargs == 1 && parse_long(j->args[0], 1,
	    64, &j->down_n, err, sizeof err) < 0)
		usage_error("down N: %s", err);
	if (cfg.json && !(c->flags & C_JSON))
		usage_error("--json is for plan and advise");
	return c;
}

/* The migrations, the database with up's timeouts, the lock and the
 * history, as far as the command needs them. Plan of files needs no
 * database: without one it shows no sizes. */
static void
acquire(const struct command *c, struct job *j)
{
	static char dirbuf[PATH_MAX];
	char err[1024], lt[32];
	const char *p[1] = { lt };
	int files = (c->flags & C_FILES) && j->nargs > 0;

	cfg.tty = isatty(STDERR_FILENO);
	if (cfg.dir == NULL)
		cfg.dir = default_dir(dirbuf, sizeof dirbuf);
	if (!(c->flags & C_CATALOG) && !files)
		j->m = load_all(cfg.dir, &j->n);
	db = pgconn_open(cfg.conninfo, "labpulse-migrate-indexes", err,
	    sizeof err);
	if (db == NULL && files) {
		log_warn("cannot connect to PostgreSQL, planning without the "
		    "catalog: %s", err);
		return;
	}
	if (db == NULL)
		die(EX_UNAVAILABLE, "cannot connect to PostgreSQL: %s", err);
	q0("SET client_min_messages = warning");
	snprintf(lt, sizeof lt, "%ldms", cfg.lock_timeout_ms);
	PQclear(q(0, "SELECT set_config('lock_timeout', $1, false)", 1, p));
	set_statement_timeout(cfg.statement_timeout_ms);
	if (c->flags & C_CATALOG)
		return;
	if (c->flags & C_LOCK) {
		take_lock();
		ensure_history();
	}
	load_history(j->m, j->n);
}

static void
release(struct job *j)
{
	size_t i;

	progress_close();
	PQfinish(db);
	for (i = 0; i < j->n; i++) {
		free(j->m[i].sql);
		free(j->m[i].down_sql);
	}
	free(j->m);
}

int
main(int argc, char **argv)
{
	const struct command *c;
	struct job j;
	int i, rc;

	log_init("labpulse-migrate-indexes");
	i = opt_parse(&prog_opts, argc, argv, &cfg);
	c = check_options(argc - i, argv + i, &j);
	acquire(c, &j);
	rc = c->run(&j);
	release(&j);
	return rc;
}
