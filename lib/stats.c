/* stats.c: serve the daemon's figures on a Unix socket or a TCP port, one
 * object per connection, on the daemon's own event loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "addr.h"
#include "hist.h"
#include "stats.h"

#define STATS_REPLY_S		1	/* to take a whole answer */
#define STATS_MAX_REPLIES	32	/* answers being written at once */

struct reply;

struct stats_server {
	struct evconnlistener *lev;
	stats_fill_fn fn;
	void *arg;
	char path[256];		/* to unlink at the end; "" for TCP */
	struct reply *replies;	/* being written */
	int nreplies;
};

void
stats_default_path(const char *name, char *buf, size_t len)
{
	const char *dir = getenv("LABPULSE_RUNDIR");

	if (dir == NULL || *dir == '\0')
		dir = "/run/labpulse";
	snprintf(buf, len, "%s/%s.sock", dir, name);
}

/* One answer being written: the loop never waits on a reader. */
struct reply {
	struct stats_server *s;
	struct bufferevent *bev;
	struct reply *next;
};

static void
reply_free(struct reply *r)
{
	struct reply **pp;

	for (pp = &r->s->replies; *pp != r; pp = &(*pp)->next)
		;
	*pp = r->next;
	r->s->nreplies--;
	bufferevent_free(r->bev);
	free(r);
}

static void
reply_written(struct bufferevent *bev, void *arg)
{
	(void)bev;
	reply_free(arg);
}

static void
reply_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;	/* an error, EOF or the deadline: the reader is gone */
	reply_free(arg);
}

/* The figures, sent without blocking: a reader that does not read (a
 * TCP stats port is reachable from other hosts) is dropped after
 * STATS_REPLY_S, and past STATS_MAX_REPLIES answers in flight a new
 * connection is closed at once, so neither a trickle nor a flood of
 * readers holds the daemon's loop or its memory. */
static void
accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int socklen, void *arg)
{
	struct stats_server *s = arg;
	struct timeval tv = { STATS_REPLY_S, 0 };
	struct reply *r;
	jv obj;

	(void)sa;
	(void)socklen;
	if (s->nreplies >= STATS_MAX_REPLIES ||
	    (r = calloc(1, sizeof *r)) == NULL) {
		close(fd);
		return;
	}
	r->bev = bufferevent_socket_new(evconnlistener_get_base(lev), fd,
	    BEV_OPT_CLOSE_ON_FREE);
	if (r->bev == NULL) {
		close(fd);
		free(r);
		return;
	}
	r->s = s;
	r->next = s->replies;
	s->replies = r;
	s->nreplies++;
	obj = jv_dump_string(s->fn(s->arg), 0);
	bufferevent_write(r->bev, jv_string_value(obj),
	    (size_t)jv_string_length_bytes(jv_copy(obj)));
	bufferevent_write(r->bev, "\n", 1);
	jv_free(obj);
	bufferevent_setcb(r->bev, NULL, reply_written, reply_event, r);
	bufferevent_set_timeouts(r->bev, NULL, &tv);
	bufferevent_enable(r->bev, EV_WRITE);
}

int
stats_tcp_parse(const char *spec, char *host, size_t hostlen, int *port,
    char *err, size_t errlen)
{
	const char *h, *colon, *p;
	unsigned char buf[sizeof(struct in6_addr)];
	char *end;
	size_t hl;
	long n;
	int v6;

	if (strncmp(spec, "tcp:", 4) != 0)
		return 0;
	h = spec + 4;
	v6 = h[0] == '[';
	if (v6) {
		colon = strstr(h, "]:");
		if (colon == NULL)
			goto bad;
		h++;
		hl = colon - h;
		p = colon + 2;
	} else {
		colon = strrchr(h, ':');
		if (colon == NULL)
			goto bad;
		hl = colon - h;
		p = colon + 1;
	}
	if (hl == 0 || hl >= hostlen)
		goto bad;
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (inet_pton(v6 ? AF_INET6 : AF_INET, host, buf) != 1)
		goto bad;
	errno = 0;
	n = strtol(p, &end, 10);
	if (*p < '0' || *p > '9' || *end != '\0' || errno || n < 1 ||
	    n > 65535)
		goto bad;
	*port = (int)n;
	return 1;
bad:
	snprintf(err, errlen, "bad stats address '%s' (expected PATH, "
	    "tcp:ADDRESS:PORT or tcp:[IPV6]:PORT, the port 1 to 65535)", spec);
	return -1;
}

struct stats_server *
stats_listen(struct event_base *base, const char *spec, stats_fill_fn fn,
    void *arg, char *err, size_t errlen)
{
	struct stats_server *s;
	char lspec[300], host[64];
	int fd, port, tcp;

	tcp = stats_tcp_parse(spec, host, sizeof host, &port, err, errlen);
	if (tcp < 0)
		return NULL;
	if (tcp)
		snprintf(lspec, sizeof lspec, strchr(host, ':') ? "[%s]:%d" :
		    "%s:%d", host, port);
	else
		snprintf(lspec, sizeof lspec, "unix:%s", spec);
	fd = addr_listen(lspec, 16, err, errlen);
	if (fd < 0)
		return NULL;
	s = calloc(1, sizeof *s);
	if (s == NULL) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->fn = fn;
	s->arg = arg;
	if (!tcp)
		snprintf(s->path, sizeof s->path, "%s", spec);
	s->lev = evconnlistener_new(base, accept_cb, s,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (s->lev == NULL) {
		close(fd);
		free(s);
		snprintf(err, errlen, "cannot watch stats socket %s", spec);
		return NULL;
	}
	return s;
}

void
stats_close(struct stats_server *s)
{
	if (s == NULL)
		return;
	evconnlistener_free(s->lev);
	while (s->replies)
		reply_free(s->replies);
	if (s->path[0])
		unlink(s->path);
	free(s);
}

int64_t
stats_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
stats_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

jv
stats_counters(jv o, const void *base, const struct stats_counter *t)
{
	for (; t->name; t++)
		o = jv_object_set(o, jv_string(t->name), jv_number(
		    *(const unsigned long *)(const void *)((const char *)base +
		    t->off)));
	return o;
}

jv
stats_header(const char *name, int64_t started_us)
{
	jv o = jv_object();
	char when[64];
	time_t t = (time_t)(started_us / 1000000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	o = jv_object_set(o, jv_string("name"), jv_string(name));
	o = jv_object_set(o, jv_string("pid"), jv_number(getpid()));
	o = jv_object_set(o, jv_string("version"), jv_string(LABPULSE_VERSION));
	o = jv_object_set(o, jv_string("started_at"), jv_string(when));
	o = jv_object_set(o, jv_string("uptime_s"),
	    jv_number((double)(stats_now_us() - started_us) / 1e6));
	return o;
}

jv
stats_pool(const struct stats_pool *p)
{
	jv o = jv_object();

	o = jv_object_set(o, jv_string("kind"), jv_string(p->kind));
	o = jv_object_set(o, jv_string("connected"), jv_bool(p->connected));
	o = jv_object_set(o, jv_string("sv_max"), jv_number(p->sv_max));
	o = jv_object_set(o, jv_string("sv_active"), jv_number(p->sv_active));
	o = jv_object_set(o, jv_string("sv_idle"), jv_number(p->sv_idle));
	o = jv_object_set(o, jv_string("sv_used"), jv_number(0));
	o = jv_object_set(o, jv_string("cl_active"), jv_number(p->sv_active));
	o = jv_object_set(o, jv_string("cl_waiting"), jv_number(p->cl_waiting));
	o = jv_object_set(o, jv_string("maxwait"),
	    jv_number((double)(p->maxwait_us / 1000000)));
	o = jv_object_set(o, jv_string("maxwait_us"),
	    jv_number((double)p->maxwait_us));
	return o;
}

jv
stats_queue(double depth, double max, const char *what)
{
	jv o = jv_object();

	o = jv_object_set(o, jv_string("depth"), jv_number(depth));
	o = jv_object_set(o, jv_string("max"), max < 0 ? jv_null() :
	    jv_number(max));
	o = jv_object_set(o, jv_string("what"), jv_string(what));
	return o;
}

jv
stats_delivery(double in, double out, double dropped)
{
	jv o = jv_object();

	o = jv_object_set(o, jv_string("in"), jv_number(in));
	o = jv_object_set(o, jv_string("out"), jv_number(out));
	o = jv_object_set(o, jv_string("dropped"), jv_number(dropped));
	return o;
}

jv
stats_hist(const struct hist *h)
{
	jv o = jv_object();

	o = jv_object_set(o, jv_string("count"), jv_number((double)h->count));
	o = jv_object_set(o, jv_string("p50"), jv_number((double)hist_percentile(h, 50)));
	o = jv_object_set(o, jv_string("p90"), jv_number((double)hist_percentile(h, 90)));
	o = jv_object_set(o, jv_string("p99"), jv_number((double)hist_percentile(h, 99)));
	o = jv_object_set(o, jv_string("p999"), jv_number((double)hist_percentile(h, 99.9)));
	o = jv_object_set(o, jv_string("max"), jv_number(h->count ? (double)h->max : 0));
	o = jv_object_set(o, jv_string("mean"), jv_number(hist_mean(h)));
	return o;
}

int
stats_link_init(struct stats_link *l, long inflight_max)
{
	memset(l, 0, sizeof *l);
	l->inflight_max = inflight_max;
	l->wait_us = hist_new();
	return l->wait_us ? 0 : -1;
}

void
stats_link_free(struct stats_link *l)
{
	hist_free(l->wait_us);
	l->wait_us = NULL;
}

void
stats_link_sent(struct stats_link *l)
{
	if (l->inflight++ == 0)
		l->busy_since_us = stats_mono_us();
}

void
stats_link_done(struct stats_link *l, int64_t sent_us)
{
	int64_t now = stats_mono_us();

	if (l->inflight <= 0)
		return;
	/* replies come back in order: this one could not leave before the
	 * one ahead of it did */
	if (l->wait_us)
		hist_record(l->wait_us, (uint64_t)(l->last_done_us > sent_us ?
		    l->last_done_us - sent_us : 0));
	l->last_done_us = now;
	if (--l->inflight == 0)
		l->busy_us += now - l->busy_since_us;
}

jv
stats_link_add(jv pool, const struct stats_link *l)
{
	int64_t busy = l->busy_us;

	if (l->inflight > 0)
		busy += stats_mono_us() - l->busy_since_us;
	pool = jv_object_set(pool, jv_string("multiplexed"), jv_true());
	pool = jv_object_set(pool, jv_string("inflight"),
	    jv_number(l->inflight));
	pool = jv_object_set(pool, jv_string("inflight_max"),
	    jv_number(l->inflight_max));
	pool = jv_object_set(pool, jv_string("busy_us"), jv_number((double)busy));
	pool = jv_object_set(pool, jv_string("wait_us"), l->wait_us ?
	    stats_hist(l->wait_us) : jv_null());
	return pool;
}
