/* progress.c: run a migration's statement, and while it builds an index
 * show on the terminal how far it got, from pg_stat_progress_create_index
 * read on a second connection (the first is busy building). */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"
#include "ops.h"
#include "pgconn.h"

static PGconn *mon;
static int mon_failed;

void
progress_close(void)
{
	if (mon)
		PQfinish(mon);
	mon = NULL;
}

/* One line, rewritten in place: the phase, blocks and tuples done. */
static int
show(int pid)
{
	char spid[16];
	const char *p[1] = { spid };
	PGresult *r;
	int shown = 0;

	snprintf(spid, sizeof spid, "%d", pid);
	r = PQexecParams(mon, "SELECT coalesce(nullif(i.relname, ''),"
	    " '?'), coalesce(t.relname, '?'), s.phase,"
	    " s.blocks_done, s.blocks_total, s.tuples_done, s.tuples_total"
	    " FROM pg_stat_progress_create_index s"
	    " LEFT JOIN pg_class i ON i.oid = s.index_relid"
	    " LEFT JOIN pg_class t ON t.oid = s.relid"
	    " WHERE s.pid = $1", 1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		fprintf(stderr, "\r\033[K%s: building %s on %s: %s, blocks %s/%s,"
		    " tuples %s/%s", log_progname(), PQgetvalue(r, 0, 0),
		    PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2),
		    PQgetvalue(r, 0, 3), PQgetvalue(r, 0, 4),
		    PQgetvalue(r, 0, 5), PQgetvalue(r, 0, 6));
		fflush(stderr);
		shown = 1;
	}
	PQclear(r);
	return shown;
}

/* The result of what was sent on db: the first error if any, else the
 * last result. */
static PGresult *
collect(void)
{
	PGresult *r, *keep = NULL;

	while ((r = PQgetResult(db)) != NULL) {
		if (keep && (PQresultStatus(keep) == PGRES_FATAL_ERROR ||
		    PQresultStatus(r) == PGRES_EMPTY_QUERY)) {
			PQclear(r);
			continue;
		}
		PQclear(keep);
		keep = r;
	}
	return keep ? keep : PQmakeEmptyPGresult(db, PGRES_FATAL_ERROR);
}

PGresult *
run_stmt(const char *stmt)
{
	struct pollfd pfd;
	struct plan_item it;
	char err[512];
	int shown = 0;

	if (!cfg.tty)
		return q(1, stmt, 0, NULL);
	stmt_item(stmt, &it);
	if (!it.index_build)
		return q(1, stmt, 0, NULL);
	if (mon == NULL && !mon_failed) {
		mon = pgconn_open(cfg.conninfo, "labpulse-migrate-indexes", err,
		    sizeof err);
		if (mon == NULL) {
			mon_failed = 1;
			log_warn("no progress shown: cannot open a second "
			    "connection: %s", err);
		}
	}
	if (!PQsendQueryParams(db, stmt, 0, NULL, NULL, NULL, NULL, 0))
		return collect();
	pfd.fd = PQsocket(db);
	pfd.events = POLLIN;
	for (;;) {
		if (!PQconsumeInput(db) || !PQisBusy(db))
			break;
		if (poll(&pfd, 1, 250) > 0)
			continue;
		if (mon && PQstatus(mon) == CONNECTION_OK && show(PQbackendPID(db)))
			shown = 1;
	}
	if (shown) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	return collect();
}
