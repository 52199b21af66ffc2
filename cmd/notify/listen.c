/* listen.c: revocations as they happen. `labpulse instructor revoke` sends
 * NOTIFY labpulse_revoke with the token's digest in the transaction that
 * revokes it; every notify LISTENs on a connection of its own (not one of
 * the pool's, which queries would hold), drops that answer from its cache
 * and closes the token's dashboards with 4401. While the connection is
 * away notifications are lost, so coming back re-checks every open
 * dashboard, as SIGHUP does. What a revocation does is main's to say
 * (revoke_ops). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "notify.h"
#include "pgconn.h"

#define LISTEN_RETRY_S	1	/* between tries while PostgreSQL is away */

struct listener {
	struct notify *n;
	struct revoke_ops ops;
	PGconn *conn;
	struct event *ev, *retry;
	int was_up;		/* listened before: a loss may hide revocations */
	unsigned long notifications, revoked, connects, losses;
	char last_error[256];
};

static void try_connect(struct listener *l);

static void
drop(struct listener *l, const char *why)
{
	struct timeval tv = { LISTEN_RETRY_S, 0 };

	if (l->conn) {
		pg_close(&l->conn, &l->ev);
		l->losses++;
		log_warn("lost PostgreSQL; revocations wait until it is back "
		    "reason=\"%s\"", why);
	}
	else if (strcmp(why, l->last_error) != 0)
		log_warn("cannot listen for revocations; trying every %ds "
		    "reason=\"%s\"", LISTEN_RETRY_S, why);
	snprintf(l->last_error, sizeof l->last_error, "%s", why);
	if (!l->n->d.stop)
		evtimer_add(l->retry, &tv);
}

/* 1 when nf is not one token's: the caller re-checks everyone, once for
 * all such notifications that came together. */
static int
on_notify(struct listener *l, const PGnotify *nf)
{
	const char *hex = nf->extra;
	size_t len = strlen(hex);
	int closed;

	l->notifications++;
	if (len != NOTIFY_DIGEST_HEX - 1 ||
	    strspn(hex, "0123456789abcdef") != len)
		return 1;
	closed = l->ops.revoke(l->n, hex);
	l->revoked += (unsigned long)closed;
	log_info("revocation token=%.8s... closed=%d", hex, closed);
	return 0;
}

void
listen_poll(struct listener *l)
{
	PGnotify *nf;
	char err[256];
	unsigned long unscoped = 0;

	if (l == NULL || l->conn == NULL)
		return;
	if (!PQconsumeInput(l->conn)) {
		pgconn_error(l->conn, NULL, err, sizeof err);
		drop(l, err);
		return;
	}
	while ((nf = PQnotifies(l->conn)) != NULL) {
		if (strcmp(nf->relname, NOTIFY_REVOKE_CHANNEL) == 0)
			unscoped += (unsigned long)on_notify(l, nf);
		PQfreemem(nf);
	}
	/* each re-check asks for every client's token again, and a client
	 * waits for each it is in: a burst of them (a hostile or careless
	 * NOTIFY loop) costs one */
	if (unscoped > 0) {
		log_info("revocation of unknown scope; re-checking every client "
		    "notifications=%lu", unscoped);
		l->ops.recheck_all(l->n);
	}
}

static void
on_readable(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	listen_poll(arg);
}

static void
try_connect(struct listener *l)
{
	char err[256];

	/* as the pool's connections are made, the loop waiting for it */
	l->conn = pg_open(l->n->base, l->n->cfg.db, "labpulse-notify-listen",
	    "LISTEN " NOTIFY_REVOKE_CHANNEL, on_readable, l, &l->ev, err,
	    sizeof err);
	if (l->conn == NULL) {
		drop(l, err);
		return;
	}
	l->connects++;
	l->last_error[0] = '\0';
	if (l->was_up || l->losses > 0 || l->n->nclients > 0) {
		log_info("listening for revocations again; re-checking every "
		    "client");
		l->ops.recheck_all(l->n);
	}
	l->was_up = 1;
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	try_connect(arg);
}

struct listener *
listen_start(struct notify *n, const struct revoke_ops *ops)
{
	struct listener *l = calloc(1, sizeof *l);

	if (l == NULL)
		return NULL;
	l->n = n;
	l->ops = *ops;
	l->retry = evtimer_new(n->base, on_retry, l);
	if (l->retry == NULL) {
		free(l);
		return NULL;
	}
	try_connect(l);
	return l;
}

static const struct stats_counter counters[] = {
	STATS_COUNTER("notifications", struct listener, notifications),
	STATS_COUNTER("closed", struct listener, revoked),
	STATS_COUNTER("connects", struct listener, connects),
	STATS_COUNTER("losses", struct listener, losses),
	{ NULL, 0 }
};

jv
listen_stats(struct listener *l)
{
	jv o = jv_object();

	o = jv_object_set(o, jv_string("channel"),
	    jv_string(NOTIFY_REVOKE_CHANNEL));
	o = jv_object_set(o, jv_string("listening"), jv_bool(l->conn != NULL));
	o = stats_counters(o, l, counters);
	if (l->last_error[0])
		o = jv_object_set(o, jv_string("last_error"),
		    jv_string(l->last_error));
	return o;
}

void
listen_free(struct listener *l)
{
	if (l == NULL)
		return;
	pg_close(&l->conn, &l->ev);
	event_free(l->retry);
	free(l);
}
