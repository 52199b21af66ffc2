/* history.c: migrate-indexes' side of the database: statements that end the
 * run when they fail, and the table labpulse_migrations that records each
 * migration with its checksum, its state and what failed where. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "prog.h"
#include "ops.h"
#include "pgconn.h"

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
		die(PQstatus(db) == CONNECTION_OK ? EX_SOFTWARE :
		    EX_UNAVAILABLE, "%s", err);
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

void
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

int
have_history(void)
{
	PGresult *r = q(0, "SELECT to_regclass('labpulse_migrations') IS NOT NULL",
	    0, NULL);
	int yes = strcmp(PQgetvalue(r, 0, 0), "t") == 0;

	PQclear(r);
	return yes;
}

void
load_history(struct migration *m, size_t n)
{
	PGresult *r;
	int i;
	size_t j;

	for (j = 0; j < n; j++) {
		const char *p[1] = { m[j].sql };

		r = q(0, "SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex')",
		    1, p);
		snprintf(m[j].checksum, sizeof m[j].checksum, "%s",
		    PQgetvalue(r, 0, 0));
		PQclear(r);
	}
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

PGresult *
history_orphans(const struct migration *m, size_t n, int applied_only)
{
	const char *p[2] = { NULL, applied_only ? "true" : "false" };
	/* "{1,2}": at most six digits and a comma each */
	size_t i, o = 1, len = n * 8 + 3;
	char *versions;
	PGresult *r;

	if (!have_history())
		return PQmakeEmptyPGresult(db, PGRES_TUPLES_OK);
	if ((versions = malloc(len)) == NULL)
		die_nomem();
	versions[0] = '{';
	for (i = 0; i < n; i++)
		o += snprintf(versions + o, len - o, "%s%d", i ? "," : "",
		    m[i].version);
	snprintf(versions + o, len - o, "}");
	p[0] = versions;
	r = q(0, "SELECT version, name, state FROM labpulse_migrations"
	    " WHERE version <> ALL ($1::integer[])"
	    " AND (state = 'applied' OR NOT $2::boolean) ORDER BY version",
	    2, p);
	free(versions);
	return r;
}

void
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
