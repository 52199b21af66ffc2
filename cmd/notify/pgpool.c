/* pgpool.c: a few PostgreSQL connections that every dashboard client's
 * queries share, never a connection per client. Queries wait in one queue
 * (cl_waiting) for a free connection; each runs asynchronously on the loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "hist.h"
#include "log.h"
#include "notify.h"
#include "pgconn.h"
#include "stats.h"

#define PG_MAX_PARAMS	4
#define PG_RETRY_US	1000000	/* a failed connect is not tried again sooner */

struct pgreq {
	char *sql;
	char *params[PG_MAX_PARAMS];
	int nparams;
	pg_done_fn done;
	void *arg;
	int64_t queued_us;
	TAILQ_ENTRY(pgreq) link;
};
TAILQ_HEAD(pgreq_list, pgreq);

struct pgslot {
	struct pgpool *pool;
	PGconn *conn;
	struct event *ev;
	struct pgreq *req;	/* running, or NULL when idle */
	PGresult *res;
	int64_t next_try_us;
};

struct pgpool {
	struct event_base *base;
	link_state_fn state;
	struct notify *n;
	char *conninfo;
	const char *app;	/* application_name in pg_stat_activity */
	struct pgslot *slots;
	int size;
	struct pgreq_list queue;
	long waiting;
	unsigned long queries, errors, connects;
	int64_t maxwait_seen_us;
	/* for poolstat: how long queries waited for a connection, and how
	 * long one ran at least (a storm shows in both) */
	struct hist *wait_us;
	long running;
	int64_t busy_us, busy_since_us;
	char last_error[512];
};

static void pool_run(struct pgpool *p);

PGconn *
pg_open(struct event_base *base, const char *conninfo, const char *app,
    const char *sql, event_callback_fn readable, void *arg,
    struct event **ev, char *err, size_t errlen)
{
	PGconn *conn;
	PGresult *res;

	/* the loop waits while it connects: not long, and a server that is
	 * away refuses at once */
	conn = pgconn_open_timeout(conninfo, app, 2, err, errlen);
	if (conn == NULL)
		return NULL;
	if (sql) {
		res = PQexec(conn, sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			pgconn_error(conn, res, err, errlen);
			PQclear(res);
			PQfinish(conn);
			return NULL;
		}
		PQclear(res);
	}
	PQsetnonblocking(conn, 1);
	/* always watched: a server that goes away is seen at once */
	*ev = event_new(base, PQsocket(conn), EV_READ | EV_PERSIST, readable,
	    arg);
	if (*ev == NULL || event_add(*ev, NULL) < 0) {
		snprintf(err, errlen, "out of memory");
		pg_close(&conn, ev);
		return NULL;
	}
	return conn;
}

void
pg_close(PGconn **conn, struct event **ev)
{
	if (*ev) {
		event_free(*ev);
		*ev = NULL;
	}
	if (*conn) {
		PQfinish(*conn);
		*conn = NULL;
	}
}

struct pgpool *
pgpool_new(struct event_base *base, const char *conninfo, int size,
    const char *app, link_state_fn state, struct notify *n)
{
	struct pgpool *p = calloc(1, sizeof *p);

	if (p == NULL)
		return NULL;
	p->base = base;
	p->app = app;
	p->state = state;
	p->n = n;
	p->conninfo = conninfo ? strdup(conninfo) : NULL;
	p->size = size;
	p->slots = calloc(size, sizeof *p->slots);
	p->wait_us = hist_new();	/* NULL: figures not kept, no more */
	TAILQ_INIT(&p->queue);
	if (p->slots == NULL || (conninfo && p->conninfo == NULL)) {
		free(p->slots);
		free(p->conninfo);
		hist_free(p->wait_us);
		free(p);
		return NULL;
	}
	for (int i = 0; i < size; i++)
		p->slots[i].pool = p;
	return p;
}

static void
req_free(struct pgreq *r)
{
	for (int i = 0; i < r->nparams; i++)
		free(r->params[i]);
	free(r->sql);
	free(r);
}

/* PostgreSQL as the pool last saw it: told to the state callback (which
 * logs a change), kept for stats. */
static void
pool_state(struct pgpool *p, int up, const char *why)
{
	if (p->state)
		p->state(p->n, up, NULL, why);
	snprintf(p->last_error, sizeof p->last_error, "%s", up ? "" : why);
}

static void
slot_drop(struct pgslot *s, const char *why)
{
	pg_close(&s->conn, &s->ev);
	pool_state(s->pool, 0, why);
}

static void
finish(struct pgslot *s, PGresult *res, const char *err)
{
	struct pgreq *r = s->req;

	s->req = NULL;
	if (--s->pool->running == 0)
		s->pool->busy_us += stats_mono_us() - s->pool->busy_since_us;
	if (res == NULL || err)
		s->pool->errors++;
	r->done(res, err, r->arg);
	req_free(r);
}

/* The query's results are all in: hand the first to the caller. */
static void
query_over(struct pgslot *s)
{
	PGresult *res = s->res;
	char err[512];

	s->res = NULL;
	if (res && PQresultStatus(res) != PGRES_TUPLES_OK &&
	    PQresultStatus(res) != PGRES_COMMAND_OK) {
		pgconn_error(s->conn, res, err, sizeof err);
		log_warn("query failed error=\"%s\"", err);
		finish(s, NULL, err);
	} else {
		finish(s, res, res ? NULL : "no result");
	}
	PQclear(res);
}

static void
on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct pgslot *s = arg;
	PGresult *r;
	char err[512];

	(void)fd;
	(void)what;
	if (s->req == NULL) {	/* nothing asked: a notice, or the end */
		if (!PQconsumeInput(s->conn)) {
			pgconn_error(s->conn, NULL, err, sizeof err);
			slot_drop(s, err);
		}
		return;
	}
	if (!PQconsumeInput(s->conn)) {
		pgconn_error(s->conn, NULL, err, sizeof err);
		PQclear(s->res);
		s->res = NULL;
		slot_drop(s, err);
		finish(s, NULL, err);
		pool_run(s->pool);
		return;
	}
	while (!PQisBusy(s->conn)) {
		r = PQgetResult(s->conn);
		if (r == NULL) {
			query_over(s);
			pool_run(s->pool);
			return;
		}
		if (s->res == NULL)
			s->res = r;	/* keep the first result */
		else
			PQclear(r);
	}
}

static int
slot_connect(struct pgslot *s)
{
	struct pgpool *p = s->pool;
	char err[512];
	int64_t now = stats_mono_us();

	if (now < s->next_try_us)
		return -1;
	/* the loop waits while it connects: not long */
	s->conn = pg_open(p->base, p->conninfo, p->app, NULL,
	    on_readable, s, &s->ev, err, sizeof err);
	if (s->conn == NULL) {
		s->next_try_us = now + PG_RETRY_US;
		pool_state(p, 0, err);
		return -1;
	}
	p->connects++;
	pool_state(p, 1, NULL);
	return 0;
}

static void
pool_run(struct pgpool *p)
{
	struct pgreq *r;
	struct pgslot *s;
	char err[512];
	int i;

	while ((r = TAILQ_FIRST(&p->queue)) != NULL) {
		s = NULL;
		for (i = 0; i < p->size; i++)
			if (p->slots[i].req == NULL && p->slots[i].conn) {
				s = &p->slots[i];
				break;
			}
		if (s == NULL)
			for (i = 0; i < p->size; i++)
				if (p->slots[i].req == NULL &&
				    slot_connect(&p->slots[i]) == 0) {
					s = &p->slots[i];
					break;
				}
		if (s == NULL) {
			int any = 0;

			for (i = 0; i < p->size; i++)
				any |= p->slots[i].conn != NULL;
			if (any)
				return;	/* all busy: wait for one */
			/* PostgreSQL is away: say so at once, don't queue */
			TAILQ_REMOVE(&p->queue, r, link);
			p->waiting--;
			p->errors++;
			r->done(NULL, p->last_error[0] ? p->last_error :
			    "PostgreSQL is unavailable", r->arg);
			req_free(r);
			continue;
		}
		TAILQ_REMOVE(&p->queue, r, link);
		p->waiting--;
		{
			int64_t w = stats_mono_us() - r->queued_us;

			if (w > p->maxwait_seen_us)
				p->maxwait_seen_us = w;
			if (p->wait_us)
				hist_record(p->wait_us, (uint64_t)w);
		}
		if (p->running++ == 0)
			p->busy_since_us = stats_mono_us();
		s->req = r;
		p->queries++;
		if (!PQsendQueryParams(s->conn, r->sql, r->nparams, NULL,
		    (const char *const *)r->params, NULL, NULL, 0)) {
			pgconn_error(s->conn, NULL, err, sizeof err);
			slot_drop(s, err);
			finish(s, NULL, err);
			continue;
		}
		PQflush(s->conn);
	}
}

static void
enqueue(struct pgpool *p, const char *sql, int nparams,
    const char *const *params, pg_done_fn done, void *arg, int first)
{
	struct pgreq *r = calloc(1, sizeof *r);
	int i;

	if (r == NULL || nparams > PG_MAX_PARAMS) {
		free(r);
		done(NULL, "out of memory", arg);
		return;
	}
	r->sql = strdup(sql);
	r->nparams = nparams;
	for (i = 0; i < nparams; i++)
		r->params[i] = strdup(params[i]);
	for (i = 0; i < nparams && r->sql; i++)
		if (r->params[i] == NULL)
			break;
	if (r->sql == NULL || i < nparams) {
		req_free(r);
		done(NULL, "out of memory", arg);
		return;
	}
	r->done = done;
	r->arg = arg;
	r->queued_us = stats_mono_us();
	if (first)
		TAILQ_INSERT_HEAD(&p->queue, r, link);
	else
		TAILQ_INSERT_TAIL(&p->queue, r, link);
	p->waiting++;
	pool_run(p);
}

void
pgpool_query(struct pgpool *p, const char *sql, int nparams,
    const char *const *params, pg_done_fn done, void *arg)
{
	enqueue(p, sql, nparams, params, done, arg, 0);
}

void
pgpool_query_first(struct pgpool *p, const char *sql, int nparams,
    const char *const *params, pg_done_fn done, void *arg)
{
	enqueue(p, sql, nparams, params, done, arg, 1);
}

static const struct stats_counter counters[] = {
	STATS_COUNTER("queries", struct pgpool, queries),
	STATS_COUNTER("errors", struct pgpool, errors),
	STATS_COUNTER("connects", struct pgpool, connects),
	{ NULL, 0 }
};

jv
pgpool_stats(struct pgpool *p)
{
	jv o = jv_object();
	long active = 0, idle = 0;
	int64_t maxwait = 0;
	struct pgreq *r;
	int i;

	for (i = 0; i < p->size; i++) {
		if (p->slots[i].req)
			active++;
		else if (p->slots[i].conn)
			idle++;
	}
	r = TAILQ_FIRST(&p->queue);
	if (r)
		maxwait = stats_mono_us() - r->queued_us;
	o = jv_object_set(o, jv_string("sv_active"), jv_number(active));
	o = jv_object_set(o, jv_string("sv_idle"), jv_number(idle));
	o = jv_object_set(o, jv_string("sv_max"), jv_number(p->size));
	o = jv_object_set(o, jv_string("cl_waiting"), jv_number(p->waiting));
	o = jv_object_set(o, jv_string("maxwait_us"), jv_number((double)maxwait));
	o = jv_object_set(o, jv_string("maxwait_seen_us"),
	    jv_number((double)p->maxwait_seen_us));
	o = stats_counters(o, p, counters);
	if (p->last_error[0])
		o = jv_object_set(o, jv_string("last_error"),
		    jv_string(p->last_error));
	return o;
}

jv
pgpool_pool(struct pgpool *p)
{
	struct stats_pool sp = { "postgres", 0, p->size, 0, 0, p->waiting, 0 };
	struct pgreq *r = TAILQ_FIRST(&p->queue);
	jv o;
	int i;

	for (i = 0; i < p->size; i++) {
		if (p->slots[i].conn)
			sp.connected = 1;
		if (p->slots[i].req)
			sp.sv_active++;
		else if (p->slots[i].conn)
			sp.sv_idle++;
	}
	if (r)
		sp.maxwait_us = stats_mono_us() - r->queued_us;
	o = stats_pool(&sp);
	o = jv_object_set(o, jv_string("busy_us"), jv_number((double)(
	    p->busy_us + (p->running > 0 ? stats_mono_us() -
	    p->busy_since_us : 0))));
	return jv_object_set(o, jv_string("wait_us"), p->wait_us ?
	    stats_hist(p->wait_us) : jv_null());
}

void
pgpool_free(struct pgpool *p)
{
	struct pgreq *r;
	int i;

	if (p == NULL)
		return;
	while ((r = TAILQ_FIRST(&p->queue)) != NULL) {
		TAILQ_REMOVE(&p->queue, r, link);
		r->done(NULL, "shutting down", r->arg);
		req_free(r);
	}
	for (i = 0; i < p->size; i++) {
		struct pgslot *s = &p->slots[i];

		if (s->req)
			finish(s, NULL, "shutting down");
		PQclear(s->res);
		pg_close(&s->conn, &s->ev);
	}
	free(p->slots);
	free(p->conninfo);
	hist_free(p->wait_us);
	free(p);
}
