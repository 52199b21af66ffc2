/* check.c: what migrate-indexes finds wrong after the fact: applied files
 * that drifted, indexes of migrations missing or invalid (verify), and
 * invalid indexes dropped and rebuilt (repair). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"
#include "prog.h"
#include "migrate.h"
#include "ops.h"
#include "pgconn.h"
#include "plan.h"

int
stmt_item(const char *stmt, struct plan_item *it)
{
	struct plan_ctx c;
	int rc;

	plan_init(&c, NULL);
	rc = plan_stmt(&c, stmt, it);
	plan_ctx_free(&c);
	if (rc < 0)
		die_nomem();
	return rc;
}

static int
creates_index(const struct plan_item *it)
{
	return strncmp(it->kind, "CREATE", 6) == 0 && it->index_build &&
	    it->index[0] != '\0';
}

/* An index a migration defines: its name, its statement, the migration. */
struct defined {
	char name[128];		/* as plan prints it: quoted when it must be */
	const char *stmt;	/* one of defs' stmts */
	const struct migration *m;
	char oid[16];		/* in the catalog now, "" when missing */
};

struct defs {
	struct defined *v;
	size_t n;
	struct stmts stmts;	/* the statements of v */
	char (*tables)[128];	/* made or indexed by a migration */
	size_t ntables;
};

static void
defs_free(struct defs *d)
{
	stmts_free(&d->stmts);
	free(d->v);
	free(d->tables);
	memset(d, 0, sizeof *d);
}

/* The index defined under the name key, or with by_oid, of the oid key. */
static struct defined *
defs_find(struct defs *d, int by_oid, const char *key)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (strcmp(by_oid ? d->v[i].oid : d->v[i].name, key) == 0)
			return &d->v[i];
	return NULL;
}

static void
defs_add_table(struct defs *d, const char *t)
{
	void *grown;
	size_t i;

	for (i = 0; i < d->ntables; i++)
		if (strcmp(d->tables[i], t) == 0)
			return;
	if ((grown = realloc(d->tables, (d->ntables + 1) *
	    sizeof *d->tables)) == NULL)
		die_nomem();
	d->tables = grown;
	snprintf(d->tables[d->ntables++], sizeof *d->tables, "%s", t);
}

/* The indexes migrations define, in order: with applied_only, those of the
 * applied migrations that no later applied migration drops (what should
 * exist); else those of every file, the latest definition of a name kept. */
static void
defs_load(struct defs *d, const struct migration *m, size_t n,
    int applied_only)
{
	struct stmts s;
	struct defined *f;
	struct plan_ctx c;
	struct plan_item it;
	char err[512];
	void *grown;
	size_t i, k;

	memset(d, 0, sizeof *d);
	defs_add_table(d, "labpulse_migrations");
	plan_init(&c, NULL);
	for (i = 0; i < n; i++) {
		if (applied_only && strcmp(m[i].state, "applied") != 0)
			continue;
		if (split_sql(m[i].sql, &s, err, sizeof err) < 0)
			die(EX_DATAERR, "%s: %s", m[i].path, err);
		for (k = 0; k < s.n; k++) {
			if (plan_stmt(&c, s.v[k], &it) < 0)
				die_nomem();
			if (strcmp(it.kind, "CREATE TABLE") == 0 && it.table[0])
				defs_add_table(d, it.table);
			if (strcmp(it.kind, "DROP INDEX") == 0 &&
			    (f = defs_find(d, 0, it.index)) != NULL)
				*f = d->v[--d->n];
			if (!creates_index(&it))
				continue;
			if (it.table[0])
				defs_add_table(d, it.table);
			if ((f = defs_find(d, 0, it.index)) == NULL) {
				if ((grown = realloc(d->v, (d->n + 1) *
				    sizeof *d->v)) == NULL)
					die_nomem();
				d->v = grown;
				f = &d->v[d->n++];
			}
			snprintf(f->name, sizeof f->name, "%s", it.index);
			/* a statement of split_sql is never blank: pushed */
			if (stmts_push(&d->stmts, s.v[k], strlen(s.v[k])) < 0)
				die_nomem();
			f->stmt = d->stmts.v[d->stmts.n - 1];
			f->m = &m[i];
		}
		stmts_free(&s);
	}
	plan_ctx_free(&c);
	for (i = 0; i < d->n; i++) {
		const char *p[1] = { d->v[i].name };
		PGresult *r = q(1, "SELECT to_regclass($1)::oid", 1, p);

		snprintf(d->v[i].oid, sizeof d->v[i].oid, "%s",
		    PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 0) :
		    "");
		PQclear(r);
	}
}

/* "t" valid, "f" invalid, "" missing: the index name (as a migration
 * writes it, found on the search_path as PostgreSQL would). */
static void
index_state(const char *name, char *out, size_t len)
{
	const char *p[1] = { name };
	PGresult *r = q(0, "SELECT i.indisvalid FROM pg_index i"
	    " WHERE i.indexrelid = to_regclass($1)", 1, p);

	snprintf(out, len, "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
}

int
cmd_verify(struct job *j)
{
	struct migration *m = j->m;
	struct defs d;
	PGresult *r;
	char st[4];
	size_t i, n = j->n, applied = 0;
	int bad = 0, k;

	for (i = 0; i < n; i++) {
		if (strcmp(m[i].state, "applied") != 0)
			continue;
		applied++;
		if (strcmp(m[i].checksum, m[i].applied_checksum) != 0) {
			log_error("%s: changed since it was applied "
			    "(checksum differs)", m[i].path);
			bad = 1;
		}
	}
	r = history_orphans(m, n, 1);
	for (k = 0; k < PQntuples(r); k++) {
		log_error("%s/%s.up.sql: applied, but the file is missing",
		    cfg.dir, PQgetvalue(r, k, 1));
		bad = 1;
	}
	PQclear(r);
	defs_load(&d, m, n, 1);
	for (i = 0; i < d.n; i++) {
		index_state(d.v[i].name, st, sizeof st);
		if (st[0] == '\0') {
			log_error("index %s of %s is missing", d.v[i].name,
			    d.v[i].m->name);
			bad = 1;
		} else if (strcmp(st, "t") != 0) {
			log_error("index %s of %s is invalid (see: "
			    "migrate-indexes repair)", d.v[i].name,
			    d.v[i].m->name);
			bad = 1;
		}
	}
	if (!bad)
		printf("verified: %zu applied migrations unchanged, "
		    "%zu indexes valid\n", applied, d.n);
	defs_free(&d);
	return bad ? EX_DATAERR : EX_OK;
}

static PGresult *
invalid_indexes(void)
{
	return q(0, "SELECT c.relname, t.relname,"
	    " quote_ident(n.nspname) || '.' || quote_ident(c.relname),"
	    " i.indexrelid, i.indrelid"
	    " FROM pg_index i"
	    " JOIN pg_class c ON c.oid = i.indexrelid"
	    " JOIN pg_class t ON t.oid = i.indrelid"
	    " JOIN pg_namespace n ON n.oid = c.relnamespace"
	    " WHERE NOT i.indisvalid AND n.nspname = current_schema()"
	    " ORDER BY 1", 0, NULL);
}

int
print_invalid_indexes(void)
{
	PGresult *r = invalid_indexes();
	int i, n = PQntuples(r);

	for (i = 0; i < n; i++)
		printf("invalid index %s on %s: a failed build left it; it slows "
		    "writes and serves no query (see: migrate-indexes repair)\n",
		    PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
	PQclear(r);
	return n;
}

/* Whether the table of oid is one a migration makes or indexes. */
static int
ours(const struct defs *d, const char *oid)
{
	const char *p[2];
	PGresult *r;
	size_t i;
	int yes = 0;

	p[1] = oid;
	for (i = 0; i < d->ntables && !yes; i++) {
		p[0] = d->tables[i];
		r = q(1, "SELECT to_regclass($1)::oid = $2::oid", 2, p);
		yes = PQresultStatus(r) == PGRES_TUPLES_OK &&
		    strcmp(PQgetvalue(r, 0, 0), "t") == 0;
		PQclear(r);
	}
	return yes;
}

/* Run sql with no statement_timeout when it is CONCURRENTLY; 0 or -1 with
 * err filled. */
static int
run_ddl(const char *sql, char *err, size_t errlen)
{
	int conc = stmt_needs_autocommit(sql), rc = 0;
	PGresult *r;

	if (conc)
		set_statement_timeout(0);
	r = run_stmt(sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		pgconn_error(db, r, err, errlen);
		rc = -1;
	}
	PQclear(r);
	if (PQstatus(db) != CONNECTION_OK)
		die(EX_UNAVAILABLE, "lost the database: %s", err);
	if (conc)
		set_statement_timeout(cfg.statement_timeout_ms);
	return rc;
}

static int
drop_index(const char *qname, char *err, size_t errlen)
{
	char sql[400];

	snprintf(sql, sizeof sql, "DROP INDEX CONCURRENTLY IF EXISTS %s", qname);
	return run_ddl(sql, err, errlen);
}

int
cmd_repair(struct job *j)
{
	struct defs d;
	struct defined *f;
	PGresult *r;
	char err[1024], st[4];
	int i, rc = EX_OK, did = 0;

	defs_load(&d, j->m, j->n, 0);
	r = invalid_indexes();
	for (i = 0; i < PQntuples(r); i++) {
		const char *name = PQgetvalue(r, i, 0);
		const char *table = PQgetvalue(r, i, 1);
		const char *qname = PQgetvalue(r, i, 2);

		f = defs_find(&d, 1, PQgetvalue(r, i, 3));
		if (f == NULL && !ours(&d, PQgetvalue(r, i, 4))) {
			log_warn("leaving invalid index %s on %s: neither it nor "
			    "its table is labpulse's", name, table);
			continue;
		}
		did = 1;
		if (drop_index(qname, err, sizeof err) < 0) {
			log_error("cannot drop invalid index %s: %s", name, err);
			rc = EX_DATAERR;
			continue;
		}
		printf("dropped invalid index %s on %s\n", name, table);
		fflush(stdout);
		if (f == NULL)
			continue;
		if (run_ddl(f->stmt, err, sizeof err) == 0) {
			index_state(f->name, st, sizeof st);
			if (strcmp(st, "t") == 0) {
				printf("rebuilt %s as %s defines it\n", name,
				    f->m->name);
				fflush(stdout);
				continue;
			}
			snprintf(err, sizeof err, "it is %s after the build",
			    st[0] ? "invalid" : "missing");
		}
		log_error("cannot rebuild %s as %s defines it: %s", name,
		    f->m->name, err);
		rc = EX_DATAERR;
		/* not leave what the failed build left */
		index_state(f->name, st, sizeof st);
		if (strcmp(st, "f") == 0 &&
		    drop_index(qname, err, sizeof err) == 0)
			printf("dropped invalid index %s on %s\n", name, table);
	}
	PQclear(r);
	if (!did)
		printf("no invalid indexes to repair\n");
	defs_free(&d);
	return rc;
}
