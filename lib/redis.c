/* redis.c: hiredis's async API glued to libevent, with a reconnect loop kept
 * apart from what the programs send. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#include "redis.h"

struct rconn {
	struct event_base *base;
	redisAsyncContext *ac;
	struct event *retry;
	int up, freeing;
	long backoff_ms;
	struct redis_target t;
	char lasterr[256];
	unsigned long connects, losses;
	rconn_state_fn state_fn;
	void *state_arg;
};

static void rconn_connect(struct rconn *rc);

int
redis_target_parse(struct redis_target *rc, const char *url, char *err,
    size_t errlen)
{
	const char *p, *q, *slash, *at, *colon;
	char *end;
	long v;

	memset(rc, 0, sizeof *rc);
	if (url == NULL)
		url = getenv("LABPULSE_REDIS");
	if (url == NULL || *url == '\0')
		url = "redis://127.0.0.1:6379/0";
	if (strlen(url) >= sizeof rc->url) {
		snprintf(err, errlen, "Redis URL too long");
		return -1;
	}
	strcpy(rc->url, url);
	rc->port = 6379;
	rc->db = 0;
	if (strncmp(url, "unix:", 5) == 0) {
		p = url + 5;
		while (p[0] == '/' && p[1] == '/')	/* unix:///path */
			p++;
		q = strstr(p, "?db=");
		if ((q ? (size_t)(q - p) : strlen(p)) >= sizeof rc->path || *p != '/')
			goto bad;
		memcpy(rc->path, p, q ? (size_t)(q - p) : strlen(p) + 1);
		rc->path[q ? q - p : (long)strlen(p)] = '\0';
		if (q) {
			v = strtol(q + 4, &end, 10);
			if (*end || end == q + 4 || v < 0 || v > 10000)
				goto bad;
			rc->db = (int)v;
		}
		return 0;
	}
	if (strncmp(url, "redis://", 8) != 0)
		goto bad;
	p = url + 8;
	/* the last '@': a password may hold '@' and '/' (HOST and DB never) */
	at = strrchr(p, '@');
	if (at) {
		const char *pw = memchr(p, ':', at - p);
		pw = pw ? pw + 1 : p;
		if ((size_t)(at - pw) >= sizeof rc->password)
			goto bad;
		memcpy(rc->password, pw, at - pw);
		rc->password[at - pw] = '\0';
		p = at + 1;
	}
	slash = strchr(p, '/');
	q = slash ? slash : p + strlen(p);
	colon = memchr(p, ':', q - p);
	if (colon) {
		v = strtol(colon + 1, &end, 10);
		if (end != q || v <= 0 || v > 65535)
			goto bad;
		rc->port = (int)v;
	} else {
		colon = q;
	}
	if (colon == p) {
		strcpy(rc->host, "127.0.0.1");
	} else {
		if ((size_t)(colon - p) >= sizeof rc->host)
			goto bad;
		memcpy(rc->host, p, colon - p);
		rc->host[colon - p] = '\0';
	}
	if (slash && slash[1]) {
		v = strtol(slash + 1, &end, 10);
		if (*end || v < 0 || v > 10000)
			goto bad;
		rc->db = (int)v;
	}
	if (rc->password[0]) {	/* never show the password in logs or stats */
		char *at2 = strrchr(rc->url + 8, '@');

		snprintf(rc->url, sizeof rc->url, "redis://***%s", at2);
	}
	return 0;
bad:
	/* a URL refused may hold a password anywhere before its last '@',
	 * even one the parse above did not take as such (a '/' in it) */
	at = strrchr(url, '@');
	if (at && strncmp(url, "redis://", 8) == 0)
		snprintf(err, errlen, "bad Redis URL 'redis://***%s' (expected "
		    "redis://HOST[:PORT][/DB] or unix:PATH)", at);
	else if (at)
		snprintf(err, errlen, "bad Redis URL (expected "
		    "redis://HOST[:PORT][/DB] or unix:PATH)");
	else
		snprintf(err, errlen, "bad Redis URL '%s' (expected "
		    "redis://HOST[:PORT][/DB] or unix:PATH)", url);
	memset(rc, 0, sizeof *rc);	/* no password left behind either */
	return -1;
}

struct rconn *
rconn_new(struct event_base *base, const char *url, char *err, size_t errlen)
{
	struct rconn *rc;

	rc = calloc(1, sizeof *rc);
	if (rc == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (redis_target_parse(&rc->t, url, err, errlen) < 0) {
		free(rc);
		return NULL;
	}
	rc->base = base;
	rc->backoff_ms = 50;
	strcpy(rc->lasterr, "not connected yet");
	return rc;
}

void
rconn_on_state(struct rconn *rc, rconn_state_fn fn, void *arg)
{
	rc->state_fn = fn;
	rc->state_arg = arg;
}

static void
schedule_retry(struct rconn *rc)
{
	struct timeval tv;

	if (rc->freeing)
		return;
	tv.tv_sec = rc->backoff_ms / 1000;
	tv.tv_usec = (rc->backoff_ms % 1000) * 1000;
	evtimer_add(rc->retry, &tv);
	rc->backoff_ms *= 2;
	if (rc->backoff_ms > 2000)
		rc->backoff_ms = 2000;
}

static void
set_state(struct rconn *rc, int up)
{
	if (rc->up == up)
		return;
	rc->up = up;
	if (rc->state_fn)
		rc->state_fn(rc, up, rc->state_arg);
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
	struct rconn *rc = ac->data;

	if (status != REDIS_OK) {
		snprintf(rc->lasterr, sizeof rc->lasterr, "%s", ac->errstr);
		rc->ac = NULL;	/* hiredis frees it after this callback */
		schedule_retry(rc);
		return;
	}
	rc->connects++;
	rc->backoff_ms = 50;
	set_state(rc, 1);
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
	struct rconn *rc = ac->data;

	rc->ac = NULL;
	if (rc->freeing)
		return;
	if (status != REDIS_OK)
		snprintf(rc->lasterr, sizeof rc->lasterr, "%s",
		    ac->errstr[0] ? ac->errstr : "connection lost");
	rc->ac = NULL;
	rc->losses++;
	set_state(rc, 0);
	schedule_retry(rc);
}

static void
on_setup_reply(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct rconn *rc = ac->data;

	(void)priv;
	if (reply && reply->type == REDIS_REPLY_ERROR)
		snprintf(rc->lasterr, sizeof rc->lasterr, "%s", reply->str);
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	rconn_connect(arg);
}

static void
rconn_connect(struct rconn *rc)
{
	redisAsyncContext *ac;

	ac = rc->t.path[0] ? redisAsyncConnectUnix(rc->t.path)
	    : redisAsyncConnect(rc->t.host, rc->t.port);
	if (ac == NULL) {
		snprintf(rc->lasterr, sizeof rc->lasterr, "out of memory");
		schedule_retry(rc);
		return;
	}
	if (ac->err) {
		snprintf(rc->lasterr, sizeof rc->lasterr, "%s", ac->errstr);
		redisAsyncFree(ac);
		schedule_retry(rc);
		return;
	}
	ac->data = rc;
	redisLibeventAttach(ac, rc->base);
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	rc->ac = ac;
	/* Sent ahead of anything else on this connection: hiredis keeps order. */
	if (rc->t.password[0])
		redisAsyncCommand(ac, on_setup_reply, NULL, "AUTH %s",
		    rc->t.password);
	if (rc->t.db)
		redisAsyncCommand(ac, on_setup_reply, NULL, "SELECT %d", rc->t.db);
}

void
rconn_start(struct rconn *rc)
{
	if (rc->retry == NULL)
		rc->retry = evtimer_new(rc->base, retry_cb, rc);
	rconn_connect(rc);
}

redisAsyncContext *
rconn_ctx(struct rconn *rc)
{
	return rc->up ? rc->ac : NULL;
}

int
rconn_is_up(const struct rconn *rc)
{
	return rc->up;
}

const char *
rconn_url(const struct rconn *rc)
{
	return rc->t.url;
}

const char *
rconn_last_error(const struct rconn *rc)
{
	return rc->lasterr;
}

void
rconn_reset(struct rconn *rc, const char *why)
{
	redisAsyncContext *ac = rc->ac;

	if (ac == NULL)
		return;
	snprintf(rc->lasterr, sizeof rc->lasterr, "%s", why);
	/* on_disconnect runs from inside redisAsyncFree when it was connected;
	 * a context still connecting has to be retried from here. */
	if (!rc->up) {
		rc->ac = NULL;
		redisAsyncFree(ac);	/* never connected: no disconnect callback */
		schedule_retry(rc);
		return;
	}
	redisAsyncFree(ac);
}

void
rconn_free(struct rconn *rc)
{
	if (rc == NULL)
		return;
	rc->freeing = 1;	/* on_disconnect then only forgets the context */
	if (rc->ac)
		redisAsyncFree(rc->ac);
	if (rc->retry)
		event_free(rc->retry);
	free(rc);
}

unsigned long
rconn_connects(const struct rconn *rc)
{
	return rc->connects;
}

unsigned long
rconn_losses(const struct rconn *rc)
{
	return rc->losses;
}

/* A command that sets a new connection up (AUTH, SELECT): 0, or -1 with
 * "Redis WHAT failed: why" in err. */
static int
setup_command(redisContext *c, const char *what, char *err, size_t errlen,
    const char *fmt, ...)
{
	redisReply *r;
	va_list ap;
	int rc = 0;

	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "Redis %s failed: %s", what,
		    r ? r->str : c->errstr);
		rc = -1;
	}
	freeReplyObject(r);
	return rc;
}

redisContext *
redis_connect_sync(const struct redis_target *t, long timeout_ms, char *err,
    size_t errlen)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	redisContext *c;

	c = t->path[0] ? redisConnectUnixWithTimeout(t->path, tv)
	    : redisConnectWithTimeout(t->host, t->port, tv);
	if (c == NULL || c->err) {
		snprintf(err, errlen, "cannot reach Redis at %s: %s", t->url,
		    c ? c->errstr : "out of memory");
		redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, tv);
	if ((t->password[0] && setup_command(c, "AUTH", err, errlen, "AUTH %s",
	    t->password) < 0) || (t->db && setup_command(c, "SELECT", err,
	    errlen, "SELECT %d", t->db) < 0)) {
		redisFree(c);
		return NULL;
	}
	return c;
}
