/* redis.c: hiredis's async API glued to libevent, with a reconnect loop kept
 * apart from what the programs send, and the primary found through Redis
 * Sentinel for sentinel:// URLs. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#include "redis.h"

#define REDIS_FORMS	"redis://HOST[:PORT][/DB]"
#define SENTINEL_FORM	"sentinel://HOST:PORT[,HOST:PORT...]/MASTER[/DB]"

void (*redis_notice_hook)(const char *msg);

struct rconn {
	struct event_base *base;
	redisAsyncContext *ac;		/* the data connection */
	redisAsyncContext *sc;		/* a sentinel asked for the primary */
	redisAsyncContext *sub;		/* a sentinel's +switch-master */
	struct event *retry, *timer, *check, *subtimer;
	int up, freeing;
	long backoff_ms, sub_backoff_ms;
	/* Sentinel: the one to ask first (the last that served), how many
	 * were asked in this round, the one subscribed to */
	int sidx, asked, asking, subidx, role_pending;
	int setup_failed;
	char addr[300];			/* HOST:PORT or unix:PATH */
	char via[300];			/* the sentinel that named addr */
	struct redis_target t;
	char lasterr[1024];
	unsigned long connects, losses;
	rconn_state_fn state_fn;
	void *state_arg;
};

static void rconn_connect(struct rconn *rc);
static void sub_connect(struct rconn *rc);

/* The URL as it may be shown: SCHEME, "***" and the rest from its last
 * '@' when it holds one (a password may hold '@' and '/', HOST and MASTER
 * never). */
static void
masked(char *out, size_t len, const char *url, size_t schemelen)
{
	const char *at = strrchr(url, '@');

	if (at)
		snprintf(out, len, "%.*s***%s", (int)schemelen, url, at);
	else
		snprintf(out, len, "%s", url);
}

/* A port of 1 to 65535, the whole of [p, end): its value, else 0. */
static int
port_of(const char *p, const char *end)
{
	long v = 0;

	if (p == end || end - p > 5)
		return 0;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		v = v * 10 + (*p - '0');
	}
	return v >= 1 && v <= 65535 ? (int)v : 0;
}

static int
master_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER[/DB]: 0, or -1
 * with err, which shows the URL masked. */
static int
parse_sentinel(struct redis_target *t, const char *url, char *err,
    size_t errlen)
{
	char shown[600];
	const char *p = url + 11, *at, *slash, *end, *item, *comma, *colon;
	char *e;
	size_t n;
	long v;

	masked(shown, sizeof shown, url, 11);
	if ((at = strrchr(p, '@')) != NULL) {
		const char *pw = memchr(p, ':', at - p);

		pw = pw ? pw + 1 : p;
		if ((size_t)(at - pw) >= sizeof t->password) {
			snprintf(err, errlen, "bad Redis URL '%s': password too "
			    "long", shown);
			return -1;
		}
		memcpy(t->password, pw, at - pw);
		t->password[at - pw] = '\0';
		p = at + 1;
	}
	if ((slash = strchr(p, '/')) == NULL || slash == p) {
		snprintf(err, errlen, "bad Redis URL '%s' (expected "
		    SENTINEL_FORM ")", shown);
		return -1;
	}
	for (item = p; item < slash; item = comma + 1) {
		struct redis_sentinel *s;

		if ((comma = memchr(item, ',', slash - item)) == NULL)
			comma = slash;
		if (t->nsentinels == REDIS_SENTINELS_MAX) {
			snprintf(err, errlen, "bad Redis URL '%s': more than %d "
			    "sentinels", shown, REDIS_SENTINELS_MAX);
			return -1;
		}
		s = &t->sentinel[t->nsentinels++];
		colon = NULL;
		for (end = item; end < comma; end++)
			if (*end == ':')
				colon = end;
		if (colon == NULL || colon == item ||
		    (size_t)(colon - item) >= sizeof s->host ||
		    (s->port = port_of(colon + 1, comma)) == 0) {
			snprintf(err, errlen, "bad Redis URL '%s': bad sentinel "
			    "'%.*s' (expected HOST:PORT, PORT from 1 to 65535)",
			    shown, (int)(comma - item), item);
			return -1;
		}
		memcpy(s->host, item, colon - item);
		s->host[colon - item] = '\0';
	}
	p = slash + 1;
	if ((slash = strchr(p, '/')) == NULL)
		slash = p + strlen(p);
	n = slash - p;
	for (end = p; end < slash && master_char((unsigned char)*end); end++)
		;
	if (n == 0 || n > REDIS_MASTER_MAX || end != slash) {
		snprintf(err, errlen, "bad Redis URL '%s': bad master name "
		    "'%.*s' (1 to %d of A-Z a-z 0-9 . _ -)", shown, (int)n, p,
		    REDIS_MASTER_MAX);
		return -1;
	}
	memcpy(t->master, p, n);
	t->master[n] = '\0';
	if (*slash && slash[1]) {
		errno = 0;
		v = strtol(slash + 1, &e, 10);
		if (*e || v < 0 || v > 10000 || slash[1] < '0' ||
		    slash[1] > '9') {
			snprintf(err, errlen, "bad Redis URL '%s': bad database "
			    "'%s' (from 0 to 10000)", shown, slash + 1);
			return -1;
		}
		t->db = (int)v;
	}
	if (strlen(shown) >= sizeof t->url) {
		snprintf(err, errlen, "Redis URL too long");
		return -1;
	}
	memcpy(t->url, shown, strlen(shown) + 1);
	t->port = 0;
	return 0;
}

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
	if (strncmp(url, "sentinel://", 11) == 0) {
		if (parse_sentinel(rc, url, err, errlen) == 0)
			return 0;
		memset(rc, 0, sizeof *rc);
		return -1;
	}
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
		    REDIS_FORMS " or unix:PATH)", at);
	else if (strncmp(url, "redis://", 8) == 0 ||
	    strncmp(url, "unix:", 5) == 0)
		snprintf(err, errlen, "bad Redis URL '%s' (expected "
		    REDIS_FORMS " or unix:PATH)", url);
	else if (at)
		snprintf(err, errlen, "bad Redis URL (expected " REDIS_FORMS
		    ", " SENTINEL_FORM " or unix:PATH)");
	else
		snprintf(err, errlen, "bad Redis URL '%s' (expected "
		    REDIS_FORMS ", " SENTINEL_FORM " or unix:PATH)", url);
	memset(rc, 0, sizeof *rc);	/* no password left behind either */
	return -1;
}

/* The primary named, logged once per change in the process: several
 * connections follow the same primary. */
static void
notice_primary(const char *addr, const char *via)
{
	static char last[300];
	char msg[700];

	if (strcmp(last, addr) == 0)
		return;
	snprintf(last, sizeof last, "%s", addr);
	snprintf(msg, sizeof msg, "Redis primary is %s (via sentinel %s)",
	    addr, via);
	if (redis_notice_hook)
		redis_notice_hook(msg);
}

/* A reply to SENTINEL get-master-addr-by-name: 0 with the address, or -1
 * with why. */
static int
master_addr(const redisReply *r, const char *sentinel, const char *master,
    char *host, size_t hostlen, int *port, char *err, size_t errlen)
{
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "sentinel %s: %s", sentinel, r->str);
		return -1;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_STRING ||
	    r->element[0]->len >= hostlen ||
	    (*port = port_of(r->element[1]->str, r->element[1]->str +
	    r->element[1]->len)) == 0) {
		snprintf(err, errlen, "sentinel %s does not know master '%s'",
		    sentinel, master);
		return -1;
	}
	snprintf(host, hostlen, "%s", r->element[0]->str);
	return 0;
}

/* ROLE's reply: 1 for master, 0 for another role (named in role), -1 for
 * an error (its text in role). */
static int
role_master(const redisReply *r, char *role, size_t len)
{
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(role, len, "%s", r->str);
		return -1;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->element[0]->type != REDIS_REPLY_STRING) {
		snprintf(role, len, "unknown");
		return 0;
	}
	snprintf(role, len, "%s", r->element[0]->str);
	return strcmp(r->element[0]->str, "master") == 0;
}

/* ---- the asynchronous connection ---------------------------------------- */

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
	rc->sub_backoff_ms = 50;
	strcpy(rc->lasterr, "not connected yet");
	if (rc->t.path[0])
		snprintf(rc->addr, sizeof rc->addr, "unix:%s", rc->t.path);
	else if (rc->t.nsentinels == 0)
		snprintf(rc->addr, sizeof rc->addr, "%s:%d", rc->t.host,
		    rc->t.port);
	return rc;
}

void
rconn_on_state(struct rconn *rc, rconn_state_fn fn, void *arg)
{
	rc->state_fn = fn;
	rc->state_arg = arg;
}

static void
arm(struct event *ev, long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(ev, &tv);
}

static void
schedule_retry(struct rconn *rc)
{
	if (rc->freeing)
		return;
	evtimer_del(rc->timer);
	arm(rc->retry, rc->backoff_ms);
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
	if (up && rc->t.nsentinels)
		arm(rc->check, 1000);
	else if (!up)
		evtimer_del(rc->check);
	if (rc->state_fn)
		rc->state_fn(rc, up, rc->state_arg);
}

/* Forget the data connection that was not up yet and try again. */
static void
drop_pending(struct rconn *rc)
{
	redisAsyncContext *ac = rc->ac;

	rc->ac = NULL;	/* its callbacks, NULL replies, then see another */
	if (ac)
		redisAsyncFree(ac);
	schedule_retry(rc);
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
	struct rconn *rc = ac->data;

	if (ac != rc->ac)
		return;
	if (status != REDIS_OK) {
		if (rc->t.nsentinels)
			snprintf(rc->lasterr, sizeof rc->lasterr, "%s (named by "
			    "sentinel %s): %s", rc->addr, rc->via, ac->errstr);
		else
			snprintf(rc->lasterr, sizeof rc->lasterr, "%s",
			    ac->errstr);
		rc->ac = NULL;	/* hiredis frees it after this callback */
		rc->sidx++;	/* that sentinel may be behind */
		schedule_retry(rc);
		return;
	}
	if (rc->t.nsentinels)
		return;		/* up once ROLE says master */
	rc->connects++;
	rc->backoff_ms = 50;
	set_state(rc, 1);
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
	struct rconn *rc = ac->data;

	if (rc->freeing || ac != rc->ac)
		return;
	rc->ac = NULL;
	if (status != REDIS_OK)
		snprintf(rc->lasterr, sizeof rc->lasterr, "%s",
		    ac->errstr[0] ? ac->errstr : "connection lost");
	if (rc->up)
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
	if (ac != rc->ac)
		return;
	if (reply && reply->type == REDIS_REPLY_ERROR) {
		snprintf(rc->lasterr, sizeof rc->lasterr, "%s", reply->str);
		rc->setup_failed = 1;
	}
}

/* The first ROLE on a connection to the primary the sentinels named. */
static void
on_role(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct rconn *rc = ac->data;
	char role[128];
	int m;

	(void)priv;
	if (ac != rc->ac || reply == NULL)
		return;
	evtimer_del(rc->timer);
	if ((m = role_master(reply, role, sizeof role)) == 1 &&
	    !rc->setup_failed) {
		notice_primary(rc->addr, rc->via);
		rc->connects++;
		rc->backoff_ms = 50;
		set_state(rc, 1);
		return;
	}
	if (m == 0) {
		snprintf(rc->lasterr, sizeof rc->lasterr, "%s (named by sentinel "
		    "%s) is a %s, not the primary", rc->addr, rc->via, role);
		rc->sidx++;	/* ask another sentinel first */
	} else if (!rc->setup_failed)
		snprintf(rc->lasterr, sizeof rc->lasterr, "ROLE on %s: %s",
		    rc->addr, role);
	drop_pending(rc);
}

/* ROLE asked again, every second, on a connection that is up. */
static void
on_role_check(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct rconn *rc = ac->data;
	char role[128], why[1024];

	(void)priv;
	if (ac != rc->ac)
		return;
	rc->role_pending = 0;
	if (reply == NULL || role_master(reply, role, sizeof role) == 1)
		return;
	snprintf(why, sizeof why, "%s is no longer the primary (ROLE: %s)",
	    rc->addr, role);
	rc->sidx++;
	rconn_reset(rc, why);
}

static void
check_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rconn *rc = arg;

	(void)fd;
	(void)what;
	if (!rc->up || rc->ac == NULL)
		return;
	arm(rc->check, 1000);
	if (rc->role_pending)
		return;		/* a slow server: the program's own timeouts */
	if (redisAsyncCommand(rc->ac, on_role_check, NULL, "ROLE") == REDIS_OK)
		rc->role_pending = 1;
}

/* Connect to rc->addr (host, port), or to the URL's server. */
static void
connect_data(struct rconn *rc, const char *host, int port)
{
	redisAsyncContext *ac;

	ac = rc->t.path[0] ? redisAsyncConnectUnix(rc->t.path)
	    : redisAsyncConnect(host, port);
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
	rc->setup_failed = 0;
	rc->role_pending = 0;
	/* Sent ahead of anything else on this connection: hiredis keeps order. */
	if (rc->t.password[0])
		redisAsyncCommand(ac, on_setup_reply, NULL, "AUTH %s",
		    rc->t.password);
	if (rc->t.db)
		redisAsyncCommand(ac, on_setup_reply, NULL, "SELECT %d", rc->t.db);
	if (rc->t.nsentinels) {
		redisAsyncCommand(ac, on_role, NULL, "ROLE");
		arm(rc->timer, RCONN_SENTINEL_MS);
	}
}

static void ask_sentinel(struct rconn *rc);

/* The sentinel being asked is done with: forget it. */
static void
drop_sentinel(struct rconn *rc)
{
	redisAsyncContext *sc = rc->sc;

	rc->sc = NULL;
	if (sc)
		redisAsyncFree(sc);
}

static void
on_master_addr(redisAsyncContext *ac, void *r, void *priv)
{
	struct rconn *rc = ac->data;
	const struct redis_sentinel *s = &rc->t.sentinel[(size_t)priv];
	char host[256], name[300];
	int port;

	if (ac != rc->sc || r == NULL)
		return;
	evtimer_del(rc->timer);
	snprintf(name, sizeof name, "%s:%d", s->host, s->port);
	if (master_addr(r, name, rc->t.master, host, sizeof host, &port,
	    rc->lasterr, sizeof rc->lasterr) < 0) {
		drop_sentinel(rc);
		ask_sentinel(rc);
		return;
	}
	drop_sentinel(rc);
	rc->sidx = (int)(size_t)priv;	/* the next round starts with it */
	snprintf(rc->via, sizeof rc->via, "%s", name);
	snprintf(rc->addr, sizeof rc->addr, "%s:%d", host, port);
	connect_data(rc, host, port);
}

static void
on_sentinel_connect(const redisAsyncContext *ac, int status)
{
	struct rconn *rc = ac->data;

	if (ac != rc->sc || status == REDIS_OK)
		return;
	evtimer_del(rc->timer);
	snprintf(rc->lasterr, sizeof rc->lasterr, "sentinel %s:%d: %s",
	    ac->c.tcp.host, ac->c.tcp.port, ac->errstr);
	rc->sc = NULL;	/* hiredis frees it after this callback */
	ask_sentinel(rc);
}

static void
on_sentinel_disconnect(const redisAsyncContext *ac, int status)
{
	struct rconn *rc = ac->data;

	(void)status;
	if (rc->freeing || ac != rc->sc)
		return;
	evtimer_del(rc->timer);
	snprintf(rc->lasterr, sizeof rc->lasterr, "sentinel %s:%d: %s",
	    ac->c.tcp.host, ac->c.tcp.port,
	    ac->errstr[0] ? ac->errstr : "connection lost");
	rc->sc = NULL;
	ask_sentinel(rc);
}

/* Ask the next sentinel of this round where the primary is; when each
 * was asked, wait and start over. */
static void
ask_sentinel(struct rconn *rc)
{
	const struct redis_sentinel *s;
	redisAsyncContext *sc;
	size_t i;

	if (rc->freeing)
		return;
	if (rc->asked >= rc->t.nsentinels) {
		schedule_retry(rc);
		return;
	}
	i = (size_t)((rc->sidx + rc->asked++) % rc->t.nsentinels);
	rc->asking = (int)i;
	s = &rc->t.sentinel[i];
	sc = redisAsyncConnect(s->host, s->port);
	if (sc == NULL || sc->err) {
		snprintf(rc->lasterr, sizeof rc->lasterr, "sentinel %s:%d: %s",
		    s->host, s->port, sc ? sc->errstr : "out of memory");
		if (sc)
			redisAsyncFree(sc);
		ask_sentinel(rc);
		return;
	}
	sc->data = rc;
	redisLibeventAttach(sc, rc->base);
	redisAsyncSetConnectCallback(sc, on_sentinel_connect);
	redisAsyncSetDisconnectCallback(sc, on_sentinel_disconnect);
	rc->sc = sc;
	redisAsyncCommand(sc, on_master_addr, (void *)i,
	    "SENTINEL get-master-addr-by-name %s", rc->t.master);
	arm(rc->timer, RCONN_SENTINEL_MS);
}

/* The bound of a step (a sentinel's answer, the first ROLE) passed. */
static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rconn *rc = arg;

	(void)fd;
	(void)what;
	if (rc->sc) {
		const struct redis_sentinel *s = &rc->t.sentinel[rc->asking];

		snprintf(rc->lasterr, sizeof rc->lasterr, "sentinel %s:%d did "
		    "not answer within %d ms", s->host, s->port,
		    RCONN_SENTINEL_MS);
		drop_sentinel(rc);
		ask_sentinel(rc);
	} else if (rc->ac && !rc->up) {
		snprintf(rc->lasterr, sizeof rc->lasterr, "%s (named by sentinel "
		    "%s) did not answer ROLE within %d ms", rc->addr, rc->via,
		    RCONN_SENTINEL_MS);
		rc->sidx++;
		drop_pending(rc);
	}
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
	if (rc->t.nsentinels == 0) {
		connect_data(rc, rc->t.host, rc->t.port);
		return;
	}
	rc->asked = 0;
	ask_sentinel(rc);
}

/* ---- following the master: +switch-master on one sentinel ------------- */

static void
sub_lost(struct rconn *rc)
{
	redisAsyncContext *sub = rc->sub;

	rc->sub = NULL;
	if (sub)
		redisAsyncFree(sub);
	if (rc->freeing)
		return;
	rc->subidx = (rc->subidx + 1) % rc->t.nsentinels;	/* the next */
	arm(rc->subtimer, rc->sub_backoff_ms);
	rc->sub_backoff_ms *= 2;
	if (rc->sub_backoff_ms > 2000)
		rc->sub_backoff_ms = 2000;
}

static void
on_switch(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r, *msg;
	struct rconn *rc = ac->data;
	char why[400], host[256];
	size_t n = strlen(rc->t.master);
	int port;

	(void)priv;
	if (ac != rc->sub || reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements != 3 || reply->element[0]->type !=
	    REDIS_REPLY_STRING)
		return;
	msg = reply->element[2];
	if (strcmp(reply->element[0]->str, "subscribe") == 0) {
		rc->sub_backoff_ms = 50;
		evtimer_del(rc->subtimer);
		return;
	}
	/* "MASTER OLDIP OLDPORT NEWIP NEWPORT" */
	if (strcmp(reply->element[0]->str, "message") != 0 ||
	    msg->type != REDIS_REPLY_STRING || strncmp(msg->str,
	    rc->t.master, n) != 0 || msg->str[n] != ' ')
		return;
	if (sscanf(msg->str + n, " %*s %*s %255s %d", host, &port) == 2)
		snprintf(why, sizeof why, "Sentinel switched the primary to "
		    "%s:%d", host, port);
	else
		snprintf(why, sizeof why, "Sentinel switched the primary");
	/* the next round asks this sentinel first: it knows */
	rc->sidx = rc->subidx % rc->t.nsentinels;
	if (rc->ac)
		rconn_reset(rc, why);
}

static void
on_sub_connect(const redisAsyncContext *ac, int status)
{
	struct rconn *rc = ac->data;

	if (ac != rc->sub || status == REDIS_OK)
		return;
	rc->sub = NULL;		/* hiredis frees it after this callback */
	sub_lost(rc);
}

static void
on_sub_disconnect(const redisAsyncContext *ac, int status)
{
	struct rconn *rc = ac->data;

	(void)status;
	if (rc->freeing || ac != rc->sub)
		return;
	rc->sub = NULL;
	sub_lost(rc);
}

static void
sub_connect(struct rconn *rc)
{
	const struct redis_sentinel *s;
	redisAsyncContext *sub;

	s = &rc->t.sentinel[rc->subidx % rc->t.nsentinels];
	sub = redisAsyncConnect(s->host, s->port);
	if (sub == NULL || sub->err) {
		if (sub)
			redisAsyncFree(sub);
		sub_lost(rc);
		return;
	}
	sub->data = rc;
	redisLibeventAttach(sub, rc->base);
	redisAsyncSetConnectCallback(sub, on_sub_connect);
	redisAsyncSetDisconnectCallback(sub, on_sub_disconnect);
	redisEnableKeepAlive(&sub->c);
	rc->sub = sub;
	redisAsyncCommand(sub, on_switch, NULL, "SUBSCRIBE %s",
	    "+switch-master");
	arm(rc->subtimer, RCONN_SENTINEL_MS);
}

/* Connect, or a subscription that did not come within the bound. */
static void
subtimer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rconn *rc = arg;

	(void)fd;
	(void)what;
	if (rc->sub)
		sub_lost(rc);	/* not subscribed in time: the next */
	else
		sub_connect(rc);
}

void
rconn_start(struct rconn *rc)
{
	if (rc->retry == NULL) {
		rc->retry = evtimer_new(rc->base, retry_cb, rc);
		rc->timer = evtimer_new(rc->base, timer_cb, rc);
		rc->check = evtimer_new(rc->base, check_cb, rc);
		rc->subtimer = evtimer_new(rc->base, subtimer_cb, rc);
	}
	if (rc->t.nsentinels && rc->sub == NULL)
		sub_connect(rc);
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
	char buf[sizeof rc->lasterr];

	if (ac == NULL)
		return;
	snprintf(buf, sizeof buf, "%s", why);	/* why may be in a reply */
	snprintf(rc->lasterr, sizeof rc->lasterr, "%s", buf);
	/* on_disconnect runs from inside redisAsyncFree when it was up (the
	 * loss counted, the state told, the retry set); one that was not
	 * up yet is retried from here. */
	if (!rc->up) {
		drop_pending(rc);
		return;
	}
	redisAsyncFree(ac);
}

void
rconn_free(struct rconn *rc)
{
	if (rc == NULL)
		return;
	rc->freeing = 1;	/* the callbacks then only forget contexts */
	if (rc->ac)
		redisAsyncFree(rc->ac);
	if (rc->sc)
		redisAsyncFree(rc->sc);
	if (rc->sub)
		redisAsyncFree(rc->sub);
	if (rc->retry) {
		event_free(rc->retry);
		event_free(rc->timer);
		event_free(rc->check);
		event_free(rc->subtimer);
	}
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

/* ---- the blocking connection -------------------------------------------- */

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

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static struct timeval
tv_ms(long ms)
{
	struct timeval tv;

	if (ms < 1)
		ms = 1;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return tv;
}

/* Ask sentinel s where the primary is: 0 with host and port, or -1 with
 * why in err. */
static int
ask_sync(const struct redis_sentinel *s, const char *master, long ms,
    char *host, size_t hostlen, int *port, char *err, size_t errlen)
{
	char name[300];
	redisContext *c;
	redisReply *r;
	int rv;

	snprintf(name, sizeof name, "%s:%d", s->host, s->port);
	c = redisConnectWithTimeout(s->host, s->port, tv_ms(ms));
	if (c == NULL || c->err) {
		snprintf(err, errlen, "sentinel %s: %s", name,
		    c ? c->errstr : "out of memory");
		redisFree(c);
		return -1;
	}
	redisSetTimeout(c, tv_ms(ms));
	r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", master);
	if (r == NULL) {
		snprintf(err, errlen, "sentinel %s: %s", name, c->errstr);
		rv = -1;
	} else
		rv = master_addr(r, name, master, host, hostlen, port, err,
		    errlen);
	freeReplyObject(r);
	redisFree(c);
	return rv;
}

/* The primary through the sentinels of t: its connection, authenticated
 * and on its database, or NULL with err. */
static redisContext *
connect_sentinel_sync(const struct redis_target *t, long timeout_ms,
    char *err, size_t errlen)
{
	static int first;	/* the sentinel that served last */
	long deadline = now_ms() + timeout_ms, share, left;
	char host[256], why[1024] = "", role[128], via[300], addr[300];
	redisContext *c;
	redisReply *r;
	int i, k, port, m;

	share = timeout_ms / t->nsentinels;
	if (share < 100)
		share = 100;
	for (k = 0; k < t->nsentinels; k++) {
		const struct redis_sentinel *s;

		i = (first + k) % t->nsentinels;
		s = &t->sentinel[i];
		if ((left = deadline - now_ms()) <= 0)
			break;
		if (ask_sync(s, t->master, left < share ? left : share, host,
		    sizeof host, &port, why, sizeof why) < 0)
			continue;
		snprintf(via, sizeof via, "%s:%d", s->host, s->port);
		snprintf(addr, sizeof addr, "%s:%d", host, port);
		left = deadline - now_ms();
		c = redisConnectWithTimeout(host, port, tv_ms(left));
		if (c == NULL || c->err) {
			snprintf(why, sizeof why, "%s (named by sentinel %s): "
			    "%s", addr, via, c ? c->errstr : "out of memory");
			redisFree(c);
			continue;
		}
		redisSetTimeout(c, tv_ms(left));
		if ((t->password[0] && setup_command(c, "AUTH", err, errlen,
		    "AUTH %s", t->password) < 0) || (t->db && setup_command(c,
		    "SELECT", err, errlen, "SELECT %d", t->db) < 0)) {
			redisFree(c);
			return NULL;
		}
		if ((r = redisCommand(c, "ROLE")) == NULL) {
			snprintf(why, sizeof why, "ROLE on %s: %s", addr,
			    c->errstr);
			redisFree(c);
			continue;
		}
		m = role_master(r, role, sizeof role);
		freeReplyObject(r);
		if (m != 1) {
			if (m == 0)
				snprintf(why, sizeof why, "%s (named by sentinel "
				    "%s) is a %s, not the primary", addr, via,
				    role);
			else
				snprintf(why, sizeof why, "ROLE on %s: %s", addr,
				    role);
			redisFree(c);
			continue;
		}
		first = i;
		notice_primary(addr, via);
		redisSetTimeout(c, tv_ms(timeout_ms));
		return c;
	}
	snprintf(err, errlen, "cannot reach Redis at %s: %s", t->url,
	    why[0] ? why : "timed out");
	return NULL;
}

redisContext *
redis_connect_sync(const struct redis_target *t, long timeout_ms, char *err,
    size_t errlen)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	redisContext *c;

	if (t->nsentinels)
		return connect_sentinel_sync(t, timeout_ms, err, errlen);
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
