/* apply.c: migrate-indexes up and down: each migration's statements in one
 * transaction, or one by one when one has CONCURRENTLY, a lock timeout
 * retried after a pause, the outcome recorded in the history; and the lock
 * that keeps one run at a time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "log.h"
#include "prog.h"
#include "migrate.h"
#include "ops.h"
#include "pgconn.h"
#include "plan.h"

/* Any fixed number: every run of any version takes the same lock. */
#define MIGRATE_LOCK_KEY 7270001

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
	int tx, attempt = 0, locked = 0;
	size_t i;
	PGresult *r;

	if (split_sql(sql, &s, err, sizeof err) < 0)
		die(EX_DATAERR, "%s: %s", path, err);
	tx = stmts_in_tx(&s);
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
			die(EX_UNAVAILABLE, "lost the database while applying "
			    "%s: %s", m->name, err);
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

/* Plan every pending migration, optional ones or the others, before any
 * runs; refuse them all when one has a hazard up does not guard against.
 * Returns 1 when it refused. */
static int
refuse_hazards(struct migration *m, size_t n, int optional)
{
	struct plan_ctx c;
	struct plan_item *items;
	size_t i, k, h, ni;
	char err[1024];
	int bad = 0, rc;

	plan_init(&c, db);
	for (i = 0; i < n; i++) {
		if (strcmp(m[i].state, "applied") == 0 ||
		    m[i].optional != optional)
			continue;
		rc = plan_file(&c, m[i].sql, &items, &ni, err, sizeof err);
		if (rc < 0)
			die(EX_DATAERR, "%s: %s", m[i].path, err);
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

/* The status of a run that failed: a lock that stayed taken may pass. */
static int
run_failed(int rc)
{
	return rc == RUN_LOCKED ? EX_TEMPFAIL : EX_DATAERR;
}

int
cmd_up(struct job *j)
{
	struct migration *m = j->m;
	size_t i, n = j->n, done = 0, applied = 0;
	int rc;

	if (!cfg.allow_hazard && refuse_hazards(m, n, 0))
		return EX_CHECK;
	for (i = 0; i < n; i++) {
		if (m[i].optional)
			continue;
		applied++;
		if (strcmp(m[i].state, "applied") == 0) {
			if (strcmp(m[i].checksum, m[i].applied_checksum) != 0)
				log_warn("applied migration changed since: %s "
				    "(see: migrate-indexes status)", m[i].name);
			continue;
		}
		rc = run_migration(&m[i], m[i].path, m[i].sql, "applied",
		    "applied");
		if (rc < 0)
			return run_failed(rc);
		done++;
	}
	if (done == 0)
		printf("nothing to apply: %zu migrations applied\n", applied);
	return EX_OK;
}

/* Roll back the last N applied migrations, newest first; every one
 * needs its .down.sql, checked before any runs. */
int
cmd_down(struct job *jb)
{
	struct migration *m = jb->m;
	size_t i, todo[64];
	long k = 0, j, count = jb->down_n;
	int rc;

	for (i = jb->n; i-- > 0 && k < count;)
		if (!m[i].optional && strcmp(m[i].state, "applied") == 0)
			todo[k++] = i;
	if (k == 0) {
		printf("nothing to roll back: no migration is applied\n");
		return EX_OK;
	}
	if (k < count)
		log_warn("down %ld, but only %ld applied: rolling back %s",
		    count, k, k == 1 ? "that" : "those");
	for (j = 0; j < k; j++)
		if (m[todo[j]].down_sql == NULL)
			die(EX_DATAERR, "cannot roll back %s: no %s",
			    m[todo[j]].name, m[todo[j]].down_path);
	for (j = 0; j < k; j++) {
		rc = run_migration(&m[todo[j]], m[todo[j]].down_path,
		    m[todo[j]].down_sql, "rolled_back", "rolled back");
		if (rc < 0)
			return run_failed(rc);
	}
	return EX_OK;
}

/* The optional migration called name, with or without its number. */
static struct migration *
find_optional(struct job *j, const char *name)
{
	size_t i;
	const char *u;

	for (i = 0; i < j->n; i++) {
		u = strchr(j->m[i].name, '_');
		if (j->m[i].optional && (strcmp(j->m[i].name, name) == 0 ||
		    (u && strcmp(u + 1, name) == 0)))
			return &j->m[i];
	}
	die(EX_USAGE, "no optional migration %s in %s/optional", name, cfg.dir);
}

/* add NAME: apply the optional migration NAME, as up applies one. */
int
cmd_add(struct job *j)
{
	struct migration *m = find_optional(j, j->args[0]);
	int rc;

	if (strcmp(m->state, "applied") == 0) {
		if (strcmp(m->checksum, m->applied_checksum) != 0)
			log_warn("applied migration changed since: %s (see: "
			    "migrate-indexes status)", m->name);
		printf("nothing to add: %s is applied\n", m->name);
		return EX_OK;
	}
	if (!cfg.allow_hazard && refuse_hazards(m, 1, 1))
		return EX_CHECK;
	rc = run_migration(m, m->path, m->sql, "applied", "applied");
	return rc < 0 ? run_failed(rc) : EX_OK;
}

/* drop NAME: roll the optional migration NAME back, as down does. */
int
cmd_drop(struct job *j)
{
	struct migration *m = find_optional(j, j->args[0]);
	int rc;

	if (strcmp(m->state, "applied") != 0) {
		printf("nothing to drop: %s is not applied\n", m->name);
		return EX_OK;
	}
	if (m->down_sql == NULL)
		die(EX_DATAERR, "cannot drop %s: no %s", m->name, m->down_path);
	rc = run_migration(m, m->down_path, m->down_sql, "rolled_back",
	    "rolled back");
	return rc < 0 ? run_failed(rc) : EX_OK;
}

void
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

