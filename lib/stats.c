/* stats.c: serve the daemon's figures on a Unix socket, one object per
 * connection, on the daemon's own event loop. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "addr.h"
#include "hist.h"
#include "stats.h"

struct stats_server {
	struct evconnlistener *lev;
	stats_fill_fn fn;
	void *arg;
	char path[256];
};

void
stats_default_path(const char *name, char *buf, size_t len)
{
	const char *dir = getenv("LABPULSE_RUNDIR");

	if (dir == NULL || *dir == '\0')
		dir = "/run/labpulse";
	snprintf(buf, len, "%s/%s.sock", dir, name);
}

static void
accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int socklen, void *arg)
{
	struct stats_server *s = arg;
	struct timeval tv = { 1, 0 };
	jv obj;
	const char *txt;
	size_t len, off = 0;
	ssize_t n;

	(void)lev;
	(void)sa;
	(void)socklen;
	obj = jv_dump_string(s->fn(s->arg), 0);
	txt = jv_string_value(obj);
	len = strlen(txt);
	/* The answer is a few kilobytes: a blocking write with a short
	 * deadline keeps this simple without holding the loop for long. */
	{
		int fl = fcntl(fd, F_GETFL);
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	while (off < len) {
		n = send(fd, txt + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += n;
	}
	if (off == len)
		(void)!send(fd, "\n", 1, MSG_NOSIGNAL);
	jv_free(obj);
	close(fd);
}

struct stats_server *
stats_listen(struct event_base *base, const char *path, stats_fill_fn fn,
    void *arg, char *err, size_t errlen)
{
	struct stats_server *s;
	char spec[300];
	int fd;

	snprintf(spec, sizeof spec, "unix:%s", path);
	fd = addr_listen(spec, 16, err, errlen);
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
	snprintf(s->path, sizeof s->path, "%s", path);
	s->lev = evconnlistener_new(base, accept_cb, s,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (s->lev == NULL) {
		close(fd);
		free(s);
		snprintf(err, errlen, "cannot watch stats socket %s", path);
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
