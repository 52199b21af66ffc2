/* collect.c: one sample of every daemon's stats socket, PostgreSQL and
 * Redis as a tick (the JSON object of labpulse-poolstat(1)), with rates
 * from the tick before. Whatever does not answer is down, never fatal. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "pgconn.h"
#include "poolstat.h"
#include "stats.h"

/* A daemon's answer is a few kilobytes; this much is a runaway. */
#define ANSWER_MAX (16L << 20)

static const char *const kinds[] = { "ingest", "batch-commit", "route",
	"notify" };
#define NKINDS (int)(sizeof kinds / sizeof kinds[0])

int
jlen(jv a)
{
	return jv_get_kind(a) == JV_KIND_ARRAY ? jv_array_length(jv_copy(a)) :
	    0;
}

jv
jget(jv o, const char *key)
{
	jv v;

	if (jv_get_kind(o) != JV_KIND_OBJECT)
		return jv_null();
	v = jv_object_get(jv_copy(o), jv_string(key));
	if (!jv_is_valid(v)) {
		jv_free(v);
		return jv_null();
	}
	return v;
}

double
jnum(jv o, const char *key)
{
	jv v = jget(o, key);
	double x = jv_get_kind(v) == JV_KIND_NUMBER ? jv_number_value(v) : NAN;

	jv_free(v);
	return x;
}

int
jtrue(jv o, const char *key)
{
	jv v = jget(o, key);
	int t = jv_get_kind(v) == JV_KIND_TRUE;

	jv_free(v);
	return t;
}

const char *
jstr(jv o, const char *key, char *buf, size_t len)
{
	jv v = jget(o, key);

	if (jv_get_kind(v) == JV_KIND_STRING)
		snprintf(buf, len, "%s", jv_string_value(v));
	else
		buf[0] = '\0';
	jv_free(v);
	return buf;
}

jv
num_or_null(double x)
{
	return isfinite(x) ? jv_number(x) : jv_null();
}

double
round_to(double x, int decimals)
{
	double m = pow(10, decimals);

	return isfinite(x) ? round(x * m) / m : x;
}

static int
kind_of_file(const char *name)
{
	size_t n = strlen(name), kl;
	const char *p, *end, *q;
	int i;

	if (n <= 5 || strcmp(name + n - 5, ".sock") != 0)
		return -1;
	end = name + n - 5;
	for (i = 0; i < NKINDS; i++) {
		kl = strlen(kinds[i]);
		if (strncmp(name, kinds[i], kl) != 0)
			continue;
		p = name + kl;
		if (p == end)
			return i;
		if (*p != '-' || p + 1 == end)
			continue;
		for (q = p + 1; q < end; q++)
			if (!strchr("abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@-", *q))
				break;
		if (q == end)
			return i;
	}
	return -1;
}

void
each_pool(jv d, pool_fn fn, void *arg)
{
	jv ps = jget(d, "pools"), k, p;
	char name[256], pool[256];
	int i;

	daemon_label(d, name, sizeof name);
	if (jv_get_kind(ps) == JV_KIND_OBJECT)
		for (i = jv_object_iter(ps); jv_object_iter_valid(ps, i);
		    i = jv_object_iter_next(ps, i)) {
			k = jv_object_iter_key(ps, i);
			p = jv_object_iter_value(ps, i);
			snprintf(pool, sizeof pool, "%s", jv_string_value(k));
			fn(arg, name, pool, p);
			jv_free(k);
			jv_free(p);
		}
	jv_free(ps);
}

void
each_group(jv rd, group_fn fn, void *arg)
{
	jv ss = jget(rd, "streams"), s, gs, g;
	char sname[256], gname[256];
	int i, j, n, m;

	n = jlen(ss);
	for (i = 0; i < n; i++) {
		s = jv_array_get(jv_copy(ss), i);
		jstr(s, "stream", sname, sizeof sname);
		fn(arg, s, sname, jv_null(), NULL);
		gs = jget(s, "groups");
		m = jlen(gs);
		for (j = 0; j < m; j++) {
			g = jv_array_get(jv_copy(gs), j);
			fn(arg, s, sname, g, jstr(g, "group", gname,
			    sizeof gname));
			jv_free(g);
		}
		jv_free(gs);
		jv_free(s);
	}
	jv_free(ss);
}

const char *
daemon_label(jv d, char *buf, size_t len)
{
	char name[256], host[256];

	jstr(d, "name", name, sizeof name);
	jstr(d, "host", host, sizeof host);
	/* one that never answered is named by its port: HOST:PORT */
	if (host[0] && strcmp(host, "local") != 0)
		snprintf(buf, len, name[0] == ':' ? "%2$s%1$s" : "%s@%s", name,
		    host);
	else
		snprintf(buf, len, "%s", name);
	return buf;
}

const char *
daemon_kind(jv d, char *buf, size_t len)
{
	jv st = jget(d, "stats");
	char name[256];
	int i;

	jstr(st, "name", buf, len);
	jv_free(st);
	for (i = 0; i < NKINDS; i++)
		if (strcmp(buf, kinds[i]) == 0)
			return buf;
	/* a daemon down says nothing: its socket's name tells */
	jstr(d, "name", name, sizeof name);
	if (strlen(name) + 6 < sizeof name)
		strcat(name, ".sock");
	i = kind_of_file(name);
	snprintf(buf, len, "%s", i >= 0 ? kinds[i] : "");
	return buf;
}

/* ---- the daemons' stats sockets ---- */

enum { DS_RETRY, DS_READING, DS_DONE, DS_FAILED };

struct dsock {
	char path[PATH_MAX], name[256];
	char host[64];		/* of tcp:HOST:PORT, else "" */
	int port;
	int kind, fd, state;
	struct sbuf in;
	char err[300];
};

static int
dsock_cmp(const void *a, const void *b)
{
	const struct dsock *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind - y->kind;
	return strcmp(x->name, y->name);
}

static void
dsock_name(struct dsock *d)
{
	const char *base = strrchr(d->path, '/');
	size_t n;

	snprintf(d->name, sizeof d->name, "%.255s", base ? base + 1 :
	    d->path);
	n = strlen(d->name);
	if (n > 5 && strcmp(d->name + n - 5, ".sock") == 0)
		d->name[n - 5] = '\0';
}

static const char *
fmt_ms(long ms, char *buf, size_t len)
{
	if (ms % 1000 == 0)
		snprintf(buf, len, "%lds", ms / 1000);
	else
		snprintf(buf, len, "%ldms", ms);
	return buf;
}

/* A daemon on another host: a nonblocking connect, whose failure shows
 * as an error on the first read. */
static void
dsock_connect_tcp(struct dsock *d)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t sl;

	memset(&ss, 0, sizeof ss);
	if (inet_pton(AF_INET, d->host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(d->port);
		sl = sizeof *sin;
	} else if (inet_pton(AF_INET6, d->host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(d->port);
		sl = sizeof *sin6;
	} else {
		snprintf(d->err, sizeof d->err, "bad address %s", d->host);
		d->state = DS_FAILED;
		return;
	}
	d->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (d->fd < 0) {
		snprintf(d->err, sizeof d->err, "cannot make a socket: %s",
		    strerror(errno));
		d->state = DS_FAILED;
		return;
	}
	if (connect(d->fd, (struct sockaddr *)&ss, sl) == 0 ||
	    errno == EINPROGRESS) {
		d->state = DS_READING;
		return;
	}
	snprintf(d->err, sizeof d->err, "cannot connect: %s", strerror(errno));
	close(d->fd);
	d->fd = -1;
	d->state = DS_FAILED;
}

static void
dsock_connect(struct dsock *d)
{
	struct sockaddr_un sun;

	if (d->host[0]) {
		dsock_connect_tcp(d);
		return;
	}
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(d->path) >= sizeof sun.sun_path) {
		snprintf(d->err, sizeof d->err, "socket path too long");
		d->state = DS_FAILED;
		return;
	}
	strcpy(sun.sun_path, d->path);
	d->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (d->fd < 0) {
		snprintf(d->err, sizeof d->err, "cannot make a socket: %s",
		    strerror(errno));
		d->state = DS_FAILED;
		return;
	}
	if (connect(d->fd, (struct sockaddr *)&sun, sizeof sun) == 0 ||
	    errno == EINPROGRESS) {
		d->state = DS_READING;
		return;
	}
	/* a Unix socket whose backlog is full: try again shortly */
	if (errno == EAGAIN) {
		close(d->fd);
		d->fd = -1;
		d->state = DS_RETRY;
		return;
	}
	snprintf(d->err, sizeof d->err, "cannot connect: %s", strerror(errno));
	close(d->fd);
	d->fd = -1;
	d->state = DS_FAILED;
}

static void
dsock_read(struct dsock *d)
{
	char chunk[16384];
	ssize_t n;

	for (;;) {
		n = read(d->fd, chunk, sizeof chunk);
		if (n > 0) {
			if ((long)(d->in.len + n) > ANSWER_MAX) {
				snprintf(d->err, sizeof d->err,
				    "answer larger than %ld bytes", ANSWER_MAX);
				d->state = DS_FAILED;
				return;
			}
			sb_printf(&d->in, "%.*s", (int)n, chunk);
			continue;
		}
		if (n == 0) {
			d->state = DS_DONE;
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return;
		/* a TCP connect that failed says so here */
		snprintf(d->err, sizeof d->err, "cannot %s: %s",
		    d->host[0] && d->in.len == 0 && (errno == ECONNREFUSED ||
		    errno == ETIMEDOUT || errno == EHOSTUNREACH ||
		    errno == ENETUNREACH) ? "connect" : "read",
		    strerror(errno));
		d->state = DS_FAILED;
		return;
	}
}

/* Connect to all at once and read them all, within timeout_ms in all. */
static void
dsock_read_all(struct dsock *ds, int n, long timeout_ms,
    volatile sig_atomic_t *stop)
{
	int64_t deadline = stats_mono_us() + (int64_t)timeout_ms * 1000, now;
	struct pollfd *pf = calloc(n ? n : 1, sizeof *pf);
	int i, np, retry, wait_ms;
	char t[32];

	if (pf == NULL)
		return;
	for (i = 0; i < n; i++)
		dsock_connect(&ds[i]);
	for (;;) {
		np = 0;
		retry = 0;
		for (i = 0; i < n; i++) {
			if (ds[i].state == DS_READING) {
				pf[np].fd = ds[i].fd;
				pf[np].events = POLLIN;
				pf[np].revents = 0;
				np++;
			} else if (ds[i].state == DS_RETRY)
				retry = 1;
		}
		if (np == 0 && !retry)
			break;
		now = stats_mono_us();
		if (now >= deadline || (stop && *stop)) {
			for (i = 0; i < n; i++)
				if (ds[i].state == DS_READING ||
				    ds[i].state == DS_RETRY) {
					snprintf(ds[i].err, sizeof ds[i].err,
					    stop && *stop ? "interrupted" :
					    "timed out after %s",
					    fmt_ms(timeout_ms, t, sizeof t));
					ds[i].state = DS_FAILED;
				}
			break;
		}
		wait_ms = (int)((deadline - now + 999) / 1000);
		if (retry && wait_ms > 10)
			wait_ms = 10;
		if (poll(pf, np, wait_ms) < 0 && errno != EINTR)
			break;
		for (i = 0; i < n; i++)
			if (ds[i].state == DS_READING)
				dsock_read(&ds[i]);
			else if (ds[i].state == DS_RETRY)
				dsock_connect(&ds[i]);
	}
	for (i = 0; i < n; i++)
		if (ds[i].fd >= 0) {
			close(ds[i].fd);
			ds[i].fd = -1;
		}
	free(pf);
}

/* The pools as the daemon reports them, each with util_pct added: of a
 * pool, the share of its connections in use; of a multiplexed link, its
 * requests in flight against their bound, since one request in flight
 * does not make it full. busy_pct comes with the rates. */
static jv
pools_of(jv stats)
{
	jv p = jget(stats, "pools"), out, k, v, w;
	double act, max, util;
	int i;

	if (jv_get_kind(p) != JV_KIND_OBJECT) {
		jv_free(p);
		return jv_null();
	}
	out = jv_object();
	for (i = jv_object_iter(p); jv_object_iter_valid(p, i);
	    i = jv_object_iter_next(p, i)) {
		k = jv_object_iter_key(p, i);
		v = jv_object_iter_value(p, i);
		if (jv_get_kind(v) != JV_KIND_OBJECT) {
			jv_free(k);
			jv_free(v);
			continue;
		}
		act = jnum(v, "sv_active");
		max = jnum(v, "sv_max");
		if (jtrue(v, "multiplexed")) {
			act = jnum(v, "inflight");
			max = jnum(v, "inflight_max");
		}
		/* notify's pool reports these too, though it is no link */
		if (!isnan(jnum(v, "busy_us"))) {
			w = jget(v, "wait_us");
			v = jv_object_set(v, jv_string("wait_p99_us"),
			    num_or_null(jnum(w, "p99")));
			jv_free(w);
			v = jv_object_set(v, jv_string("busy_pct"), jv_null());
		}
		util = isnan(act) || isnan(max) ? NAN :
		    max > 0 ? round_to(act * 100 / max, 2) : 0;
		v = jv_object_set(v, jv_string("util_pct"), num_or_null(util));
		out = jv_object_set(out, k, v);
	}
	jv_free(p);
	return out;
}

static jv
delivery_of(jv stats)
{
	jv dl = jget(stats, "delivery"), o;
	double in, out, dropped, share = NAN;

	if (jv_get_kind(dl) != JV_KIND_OBJECT) {
		jv_free(dl);
		return jv_null();
	}
	in = jnum(dl, "in");
	out = jnum(dl, "out");
	dropped = jnum(dl, "dropped");
	jv_free(dl);
	if (!isnan(out) && !isnan(dropped))
		share = out + dropped > 0 ?
		    round_to(out * 100 / (out + dropped), 2) : 100;
	o = jv_object();
	o = jv_object_set(o, jv_string("in"), num_or_null(in));
	o = jv_object_set(o, jv_string("out"), num_or_null(out));
	o = jv_object_set(o, jv_string("dropped"), num_or_null(dropped));
	o = jv_object_set(o, jv_string("share_pct"), num_or_null(share));
	o = jv_object_set(o, jv_string("in_per_s"), jv_null());
	o = jv_object_set(o, jv_string("out_per_s"), jv_null());
	return o;
}

/* stats[key] when it is of kind k, else null. */
static jv
jget_kind(jv stats, const char *key, jv_kind k)
{
	jv v = jget(stats, key);

	if (jv_get_kind(v) == k)
		return v;
	jv_free(v);
	return jv_null();
}

/* stats is consumed: the daemon's object, or null when it is down. */
static jv
daemon_entry(const struct dsock *d, jv stats, const char *err)
{
	jv o = jv_object(), nm = jget_kind(stats, "name", JV_KIND_STRING);

	/* a daemon reached over TCP is named by its answer */
	if (d->host[0] && jv_get_kind(nm) == JV_KIND_STRING)
		o = jv_object_set(o, jv_string("name"), nm);
	else {
		jv_free(nm);
		o = jv_object_set(o, jv_string("name"), jv_string(d->name));
	}
	o = jv_object_set(o, jv_string("host"), jv_string(d->host[0] ?
	    d->host : "local"));
	o = jv_object_set(o, jv_string("socket"), jv_string(d->path));
	o = jv_object_set(o, jv_string("up"), jv_bool(err == NULL));
	o = jv_object_set(o, jv_string("error"), err ? jv_string(err) :
	    jv_null());
	o = jv_object_set(o, jv_string("pid"), jget_kind(stats, "pid",
	    JV_KIND_NUMBER));
	o = jv_object_set(o, jv_string("version"), jget_kind(stats, "version",
	    JV_KIND_STRING));
	o = jv_object_set(o, jv_string("started_at"), jget_kind(stats,
	    "started_at", JV_KIND_STRING));
	o = jv_object_set(o, jv_string("uptime_s"), jget_kind(stats,
	    "uptime_s", JV_KIND_NUMBER));
	o = jv_object_set(o, jv_string("pools"), pools_of(stats));
	o = jv_object_set(o, jv_string("queue"), jget_kind(stats, "queue",
	    JV_KIND_OBJECT));
	o = jv_object_set(o, jv_string("delivery"), delivery_of(stats));
	o = jv_object_set(o, jv_string("stats"), stats);
	return o;
}

char *
one_line(char *s)
{
	char *cut = strstr(s, " (while parsing"), *r, *w;

	if (cut)
		*cut = '\0';
	for (r = w = s; *r; r++) {
		if ((unsigned char)*r < 32 || *r == 127)
			*r = ' ';
		if (*r == ' ' && (w == s || w[-1] == ' '))
			continue;
		*w++ = *r;
	}
	while (w > s && w[-1] == ' ')
		w--;
	*w = '\0';
	return s;
}

/* A short form of jq's parse error. */
static void
parse_error(jv v, char *err, size_t errlen)
{
	jv m = jv_invalid_get_msg(v);

	snprintf(err, errlen, "not JSON: %s", jv_get_kind(m) ==
	    JV_KIND_STRING ? jv_string_value(m) : "?");
	jv_free(m);
	one_line(err);
}

static int
list_rundir(struct collector *co, struct dsock **out)
{
	const struct ps_cfg *c = co->cfg;
	const char *dir = c->rundir;
	struct dsock *ds = NULL, *nds;
	struct dirent *e;
	DIR *dp;
	int n = 0, cap = 0, k;

	if (dir == NULL || *dir == '\0')
		dir = getenv("LABPULSE_RUNDIR");
	if (dir == NULL || *dir == '\0')
		dir = "/run/labpulse";
	dp = opendir(dir);
	if (dp == NULL) {
		snprintf(co->note, sizeof co->note, "cannot read %s: %s", dir,
		    strerror(errno));
		*out = NULL;
		return 0;
	}
	while ((e = readdir(dp)) != NULL) {
		k = kind_of_file(e->d_name);
		if (k < 0)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 8;
			nds = realloc(ds, cap * sizeof *ds);
			if (nds == NULL)
				break;
			ds = nds;
		}
		memset(&ds[n], 0, sizeof ds[n]);
		snprintf(ds[n].path, sizeof ds[n].path, "%s/%s", dir,
		    e->d_name);
		ds[n].kind = k;
		ds[n].fd = -1;
		dsock_name(&ds[n]);
		n++;
	}
	closedir(dp);
	if (n == 0)
		snprintf(co->note, sizeof co->note, "no daemon socket in %s",
		    dir);
	qsort(ds, n, sizeof *ds, dsock_cmp);
	*out = ds;
	return n;
}

static jv
read_daemons(struct collector *co)
{
	const struct ps_cfg *c = co->cfg;
	struct dsock *ds = NULL;
	jv arr = jv_array(), v;
	char err[300];
	int n, i;

	co->note[0] = '\0';
	if (c->nsockets > 0) {
		n = c->nsockets;
		ds = calloc(n, sizeof *ds);
		if (ds == NULL)
			return arr;
		for (i = 0; i < n; i++) {
			snprintf(ds[i].path, sizeof ds[i].path, "%s",
			    c->sockets[i]);
			ds[i].fd = -1;
			/* checked when parsed */
			/* named by its port until it answers with its name */
			if (stats_tcp_parse(c->sockets[i], ds[i].host,
			    sizeof ds[i].host, &ds[i].port, err,
			    sizeof err) == 1)
				snprintf(ds[i].name, sizeof ds[i].name, ":%d",
				    ds[i].port);
			else
				dsock_name(&ds[i]);
		}
	} else
		n = list_rundir(co, &ds);
	dsock_read_all(ds, n, c->timeout_ms, co->stop);
	for (i = 0; i < n; i++) {
		if (ds[i].state != DS_DONE) {
			arr = jv_array_append(arr, daemon_entry(&ds[i],
			    jv_null(), ds[i].err));
		} else if (ds[i].in.len == 0) {
			arr = jv_array_append(arr, daemon_entry(&ds[i],
			    jv_null(), "closed without an answer"));
		} else {
			v = jv_parse_sized(ds[i].in.s, (int)ds[i].in.len);
			if (!jv_is_valid(v)) {
				parse_error(v, err, sizeof err);
				arr = jv_array_append(arr, daemon_entry(&ds[i],
				    jv_null(), err));
			} else if (jv_get_kind(v) != JV_KIND_OBJECT) {
				jv_free(v);
				arr = jv_array_append(arr, daemon_entry(&ds[i],
				    jv_null(), "not a JSON object"));
			} else
				arr = jv_array_append(arr, daemon_entry(&ds[i],
				    v, NULL));
		}
		sb_free(&ds[i].in);
	}
	free(ds);
	return arr;
}

/* ---- PostgreSQL ---- */

static const char pg_sql[] =
"select application_name, state, wait_event_type, count(*)"
" from pg_stat_activity where backend_type = 'client backend'"
" and pid <> pg_backend_pid() group by 1, 2, 3;"
"select current_setting('max_connections')::int,"
" current_setting('superuser_reserved_connections')::int;"
"select extract(epoch from now() - min(xact_start)) from pg_stat_activity"
" where xact_start is not null and pid <> pg_backend_pid();"
"select xact_commit, xact_rollback, blks_hit, blks_read"
" from pg_stat_database where datname = current_database()";
#define PG_RESULTS 4

jv
source_down(const char *err)
{
	jv o = jv_object();
	char e[1024];

	snprintf(e, sizeof e, "%s", err);
	o = jv_object_set(o, jv_string("up"), jv_false());
	o = jv_object_set(o, jv_string("error"), jv_string(one_line(e)));
	return o;
}

/* Send sql and take its results, all within the timeout; -1 with err. */
static int
pg_run(struct collector *co, const char *sql, PGresult **res, int nres,
    char *err, size_t errlen)
{
	return pg_query(co, co->pg, sql, res, nres, err, errlen);
}

int
pg_query(struct collector *co, PGconn *pg, const char *sql, PGresult **res,
    int nres, char *err, size_t errlen)
{
	int64_t deadline = stats_mono_us() + co->cfg->timeout_ms * 1000, now;
	struct pollfd pf;
	PGresult *r;
	ExecStatusType st;
	int got = 0, failed = 0;
	char t[32];

	if (!PQsendQuery(pg, sql)) {
		pgconn_error(pg, NULL, err, errlen);
		return -1;
	}
	for (;;) {
		while (!PQisBusy(pg)) {
			r = PQgetResult(pg);
			if (r == NULL) {
				if (!failed && got < nres) {
					snprintf(err, errlen, "no result");
					failed = 1;
				}
				return failed ? -1 : 0;
			}
			st = PQresultStatus(r);
			if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
				if (!failed)
					pgconn_error(pg, r, err, errlen);
				failed = 1;
				PQclear(r);
			} else if (!failed && got < nres)
				res[got++] = r;
			else
				PQclear(r);
		}
		now = stats_mono_us();
		if (now >= deadline || (co->stop && *co->stop)) {
			snprintf(err, errlen, co->stop && *co->stop ?
			    "interrupted" : "no answer within %s",
			    fmt_ms(co->cfg->timeout_ms, t, sizeof t));
			return -1;
		}
		pf.fd = PQsocket(pg);
		pf.events = POLLIN;
		if (poll(&pf, 1, (int)((deadline - now + 999) / 1000)) < 0 &&
		    errno != EINTR) {
			snprintf(err, errlen, "poll: %s", strerror(errno));
			return -1;
		}
		if (!PQconsumeInput(pg)) {
			pgconn_error(pg, NULL, err, errlen);
			return -1;
		}
	}
}

void
pg_clear(PGresult **res, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		PQclear(res[i]);
		res[i] = NULL;
	}
}

double
pg_num(const PGresult *r, int row, int col)
{
	if (r == NULL || row >= PQntuples(r) || col >= PQnfields(r) ||
	    PQgetisnull(r, row, col))
		return NAN;
	return strtod(PQgetvalue(r, row, col), NULL);
}

static jv
pg_by_app(const PGresult *r, double *connections)
{
	static const char *const cats[] = { "active", "idle",
		"idle_in_transaction", "waiting" };
	jv by = jv_object(), a, n;
	const char *app, *state, *wet, *cat;
	double cnt;
	int i, j;

	*connections = 0;
	for (i = 0; i < PQntuples(r); i++) {
		app = PQgetvalue(r, i, 0);
		state = PQgetvalue(r, i, 1);
		wet = PQgetvalue(r, i, 2);
		cnt = pg_num(r, i, 3);
		if (isnan(cnt))
			continue;
		*connections += cnt;
		if (strcmp(wet, "Lock") == 0)
			cat = "waiting";
		else if (strcmp(state, "active") == 0 ||
		    strcmp(state, "fastpath function call") == 0)
			cat = "active";
		else if (strcmp(state, "idle") == 0)
			cat = "idle";
		else if (strncmp(state, "idle in transaction", 19) == 0)
			cat = "idle_in_transaction";
		else
			cat = NULL;
		a = jv_object_get(jv_copy(by), jv_string(app));
		if (!jv_is_valid(a)) {
			jv_free(a);
			a = jv_object();
			for (j = 0; j < 4; j++)
				a = jv_object_set(a, jv_string(cats[j]),
				    jv_number(0));
		}
		if (cat) {
			n = jv_object_get(jv_copy(a), jv_string(cat));
			a = jv_object_set(a, jv_string(cat),
			    jv_number(jv_number_value(n) + cnt));
			jv_free(n);
		}
		by = jv_object_set(by, jv_string(app), a);
	}
	return by;
}

static jv
read_postgres(struct collector *co)
{
	const struct ps_cfg *c = co->cfg;
	PGresult *res[PG_RESULTS] = { NULL, NULL, NULL, NULL };
	char err[1024], sql[64];
	double conns, max, hit, rd;
	jv o, by;

	if (c->no_postgres)
		return source_down("left out (--no-postgres)");
	if (co->pg == NULL) {
		/* a hung server holds a check no longer than --timeout */
		co->pg = pgconn_open_timeout(c->db, "labpulse-poolstat",
		    (c->timeout_ms + 999) / 1000, err, sizeof err);
		if (co->pg == NULL)
			return source_down(err);
		/* the server gives up too, should the answer be lost */
		snprintf(sql, sizeof sql, "set statement_timeout = %ld",
		    c->timeout_ms);
		if (pg_run(co, sql, res, 0, err, sizeof err) < 0)
			goto fail;
	}
	if (pg_run(co, pg_sql, res, PG_RESULTS, err, sizeof err) < 0)
		goto fail;
	co->raw.pg = 1;
	co->raw.xact_commit = pg_num(res[3], 0, 0);
	co->raw.xact_rollback = pg_num(res[3], 0, 1);
	co->raw.blks_hit = pg_num(res[3], 0, 2);
	co->raw.blks_read = pg_num(res[3], 0, 3);
	o = jv_object();
	o = jv_object_set(o, jv_string("up"), jv_true());
	o = jv_object_set(o, jv_string("error"), jv_null());
	max = pg_num(res[1], 0, 0);
	o = jv_object_set(o, jv_string("max_connections"), num_or_null(max));
	o = jv_object_set(o, jv_string("reserved"),
	    num_or_null(pg_num(res[1], 0, 1)));
	by = pg_by_app(res[0], &conns);
	o = jv_object_set(o, jv_string("connections"), jv_number(conns));
	o = jv_object_set(o, jv_string("util_pct"), num_or_null(max > 0 ?
	    round_to(conns * 100 / max, 2) : NAN));
	o = jv_object_set(o, jv_string("by_app"), by);
	o = jv_object_set(o, jv_string("oldest_xact_s"),
	    num_or_null(round_to(pg_num(res[2], 0, 0), 3)));
	o = jv_object_set(o, jv_string("commits_per_s"), jv_null());
	o = jv_object_set(o, jv_string("rollbacks_per_s"), jv_null());
	hit = co->raw.blks_hit;
	rd = co->raw.blks_read;
	o = jv_object_set(o, jv_string("cache_hit_pct"),
	    num_or_null(hit + rd > 0 ? round_to(hit * 100 / (hit + rd), 2) :
	    NAN));
	pg_clear(res, PG_RESULTS);
	return o;
fail:
	pg_clear(res, PG_RESULTS);
	PQfinish(co->pg);
	co->pg = NULL;
	return source_down(err);
}

/* ---- Redis ---- */

static redisReply *
rcmd(struct collector *co, const char *fmt, ...)
{
	redisReply *r;
	va_list ap;

	va_start(ap, fmt);
	r = redisvCommand(co->redis, fmt, ap);
	va_end(ap);
	co->redis_sent++;
	return r;
}

/* The value of field name in a reply of name/value pairs. */
static const redisReply *
rfield(const redisReply *r, const char *name)
{
	size_t i;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY)
		return NULL;
	for (i = 0; i + 1 < r->elements; i += 2)
		if (r->element[i]->type == REDIS_REPLY_STRING ||
		    r->element[i]->type == REDIS_REPLY_STATUS) {
			if (strcmp(r->element[i]->str, name) == 0)
				return r->element[i + 1];
		}
	return NULL;
}

static double
rnum(const redisReply *v)
{
	if (v == NULL)
		return NAN;
	if (v->type == REDIS_REPLY_INTEGER)
		return (double)v->integer;
	if (v->type == REDIS_REPLY_STRING || v->type == REDIS_REPLY_STATUS)
		return strtod(v->str, NULL);
	return NAN;
}

static jv
rstr(const redisReply *v)
{
	if (v && (v->type == REDIS_REPLY_STRING ||
	    v->type == REDIS_REPLY_STATUS))
		return jv_string_sized(v->str, (int)v->len);
	return jv_null();
}

const char *
field_str(const char *text, const char *key, int kv, const char *ends,
    char *buf, size_t len)
{
	size_t kl = strlen(key);
	const char *p = text;

	buf[0] = '\0';
	while (p && *p) {
		if (strncmp(p, key, kl) == 0 && p[kl] == kv) {
			p += kl + 1;
			snprintf(buf, len, "%.*s", (int)strcspn(p, ends), p);
			break;
		}
		if ((p = strpbrk(p, ends)) != NULL)
			p += strspn(p, ends);
	}
	return buf;
}

double
info_num(const char *info, const char *key)
{
	char v[64];

	return *field_str(info, key, ':', "\r\n", v, sizeof v) ?
	    strtod(v, NULL) : NAN;
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct keys {
	char **k;
	size_t n, cap;
};

static void
keys_free(struct keys *ks)
{
	size_t i;

	for (i = 0; i < ks->n; i++)
		free(ks->k[i]);
	free(ks->k);
}

static void
keys_add(struct keys *ks, const char *s, size_t len)
{
	char **nk;

	if (ks->n == ks->cap) {
		ks->cap = ks->cap ? 2 * ks->cap : 16;
		nk = realloc(ks->k, ks->cap * sizeof *nk);
		if (nk == NULL)
			return;
		ks->k = nk;
	}
	ks->k[ks->n] = strndup(s, len);
	if (ks->k[ks->n])
		ks->n++;
}

/* The keys labpulse:* of type stream, sorted. -1 when the connection
 * failed. */
static int
scan_streams(struct collector *co, struct keys *ks)
{
	char cursor[64] = "0";
	redisReply *r, *t, *arr;
	int typed = 1;
	size_t i, j, w;

	do {
		r = typed ? rcmd(co, "SCAN %s MATCH labpulse:* TYPE stream "
		    "COUNT 1000", cursor) :
		    rcmd(co, "SCAN %s MATCH labpulse:* COUNT 1000", cursor);
		if (r == NULL)
			return -1;
		/* before Redis 6, SCAN has no TYPE: ask each key */
		if (r->type == REDIS_REPLY_ERROR && typed) {
			freeReplyObject(r);
			typed = 0;
			snprintf(cursor, sizeof cursor, "0");
			continue;
		}
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			break;
		}
		snprintf(cursor, sizeof cursor, "%s", r->element[0]->str ?
		    r->element[0]->str : "0");
		arr = r->element[1];
		for (i = 0; i < arr->elements; i++) {
			if (arr->element[i]->type != REDIS_REPLY_STRING)
				continue;
			if (!typed) {
				t = rcmd(co, "TYPE %b", arr->element[i]->str,
				    arr->element[i]->len);
				if (t == NULL) {
					freeReplyObject(r);
					return -1;
				}
				j = t->type == REDIS_REPLY_STATUS &&
				    strcmp(t->str, "stream") == 0;
				freeReplyObject(t);
				if (!j)
					continue;
			}
			keys_add(ks, arr->element[i]->str,
			    arr->element[i]->len);
		}
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
	if (ks->n > 1)
		qsort(ks->k, ks->n, sizeof *ks->k, str_cmp);
	/* SCAN may return a key twice */
	for (i = 1, w = ks->n ? 1 : 0; i < ks->n; i++) {
		if (strcmp(ks->k[i], ks->k[w - 1]) == 0)
			free(ks->k[i]);
		else
			ks->k[w++] = ks->k[i];
	}
	ks->n = w;
	return 0;
}

/* One group of XINFO GROUPS, with its idlest consumer; NULL reply from a
 * lost connection makes it -1. */
static int
stream_group(struct collector *co, const char *key, const redisReply *g,
    jv *out)
{
	const redisReply *name = rfield(g, "name"), *c, *idle;
	redisReply *cs;
	jv o = jv_object(), idlest = jv_null();
	double best = NAN, x;
	size_t i;

	o = jv_object_set(o, jv_string("group"), rstr(name));
	o = jv_object_set(o, jv_string("consumers"),
	    num_or_null(rnum(rfield(g, "consumers"))));
	o = jv_object_set(o, jv_string("pending"),
	    num_or_null(rnum(rfield(g, "pending"))));
	o = jv_object_set(o, jv_string("lag"),
	    num_or_null(rnum(rfield(g, "lag"))));
	o = jv_object_set(o, jv_string("last_delivered_id"),
	    rstr(rfield(g, "last-delivered-id")));
	if (name && name->type == REDIS_REPLY_STRING) {
		cs = rcmd(co, "XINFO CONSUMERS %s %b", key, name->str,
		    name->len);
		if (cs == NULL) {
			jv_free(o);
			return -1;
		}
		if (cs->type == REDIS_REPLY_ARRAY)
			for (i = 0; i < cs->elements; i++) {
				c = cs->element[i];
				idle = rfield(c, "idle");
				x = rnum(idle);
				if (!isnan(x) && (isnan(best) || x > best)) {
					best = x;
					jv_free(idlest);
					idlest = rstr(rfield(c, "name"));
				}
			}
		freeReplyObject(cs);
	}
	o = jv_object_set(o, jv_string("idlest_consumer"), idlest);
	o = jv_object_set(o, jv_string("idlest_ms"), num_or_null(best));
	*out = o;
	return 0;
}

static int
read_stream(struct collector *co, const char *key, jv *out)
{
	redisReply *len, *gs;
	jv o, groups = jv_array(), g;
	size_t i;

	*out = jv_invalid();
	len = rcmd(co, "XLEN %s", key);
	if (len == NULL)
		return -1;
	gs = rcmd(co, "XINFO GROUPS %s", key);
	if (gs == NULL) {
		freeReplyObject(len);
		return -1;
	}
	if (len->type != REDIS_REPLY_INTEGER) {	/* gone in between */
		freeReplyObject(len);
		freeReplyObject(gs);
		jv_free(groups);
		return 0;
	}
	if (gs->type == REDIS_REPLY_ARRAY)
		for (i = 0; i < gs->elements; i++) {
			if (stream_group(co, key, gs->element[i], &g) < 0) {
				freeReplyObject(len);
				freeReplyObject(gs);
				jv_free(groups);
				return -1;
			}
			groups = jv_array_append(groups, g);
		}
	o = jv_object();
	o = jv_object_set(o, jv_string("stream"), jv_string(key));
	o = jv_object_set(o, jv_string("length"),
	    jv_number((double)len->integer));
	o = jv_object_set(o, jv_string("groups"), groups);
	freeReplyObject(len);
	freeReplyObject(gs);
	*out = o;
	return 0;
}

/* The dead letters of notify's hooks waiting for an operator (0 when the
 * stream is not there), and the hooks group's pending entries (null when
 * there is no such group): read by name, as they matter whatever SCAN
 * finds. -1 when the connection failed. */
static int
read_hooks(struct collector *co, jv *o)
{
	redisReply *r;

	r = rcmd(co, "XLEN labpulse:hooks-dead");
	if (r == NULL)
		return -1;
	*o = jv_object_set(*o, jv_string("hooks_dead"),
	    r->type == REDIS_REPLY_INTEGER ? jv_number((double)r->integer) :
	    jv_null());
	freeReplyObject(r);
	/* NOGROUP, when the stream or its group is not there */
	r = rcmd(co, "XPENDING labpulse:hooks hooks");
	if (r == NULL)
		return -1;
	*o = jv_object_set(*o, jv_string("hooks_pending"),
	    r->type == REDIS_REPLY_ARRAY && r->elements >= 1 ?
	    num_or_null(rnum(r->element[0])) : jv_null());
	freeReplyObject(r);
	return 0;
}

static jv
read_redis(struct collector *co)
{
	const struct ps_cfg *c = co->cfg;
	struct keys ks = { NULL, 0, 0 };
	redisReply *info;
	char err[1024];
	jv o, streams, s;
	size_t i;

	if (c->no_redis)
		return source_down("left out (--no-redis)");
	if (co->redis == NULL) {
		co->redis = redis_connect_sync(&co->rt, c->timeout_ms, err,
		    sizeof err);
		if (co->redis == NULL)
			return source_down(err);
		co->redis_sent += (co->rt.password[0] != 0) + (co->rt.db != 0);
	}
	co->raw.sent_at_info = co->redis_sent;
	info = rcmd(co, "INFO");
	if (info == NULL)
		goto lost;
	if (info->type != REDIS_REPLY_STRING) {
		snprintf(err, sizeof err, "Redis INFO failed: %s",
		    info->type == REDIS_REPLY_ERROR ? info->str : "no text");
		freeReplyObject(info);
		redisFree(co->redis);
		co->redis = NULL;
		return source_down(err);
	}
	o = jv_object();
	o = jv_object_set(o, jv_string("up"), jv_true());
	o = jv_object_set(o, jv_string("error"), jv_null());
	o = jv_object_set(o, jv_string("connected_clients"),
	    num_or_null(info_num(info->str, "connected_clients")));
	o = jv_object_set(o, jv_string("blocked_clients"),
	    num_or_null(info_num(info->str, "blocked_clients")));
	o = jv_object_set(o, jv_string("used_memory"),
	    num_or_null(info_num(info->str, "used_memory")));
	co->raw.commands = info_num(info->str, "total_commands_processed");
	co->raw.ops_now = info_num(info->str, "instantaneous_ops_per_sec");
	o = jv_object_set(o, jv_string("ops_per_s"),
	    jv_number(isnan(co->raw.ops_now) ? 0 : co->raw.ops_now));
	o = redis_replication(co, info->str, o);
	freeReplyObject(info);
	if (read_hooks(co, &o) < 0) {
		jv_free(o);
		goto lost;
	}
	if (scan_streams(co, &ks) < 0) {
		jv_free(o);
		keys_free(&ks);
		goto lost;
	}
	streams = jv_array();
	for (i = 0; i < ks.n; i++) {
		if (read_stream(co, ks.k[i], &s) < 0) {
			jv_free(o);
			jv_free(streams);
			keys_free(&ks);
			goto lost;
		}
		if (jv_is_valid(s))
			streams = jv_array_append(streams, s);
		else
			jv_free(s);
	}
	keys_free(&ks);
	o = jv_object_set(o, jv_string("streams"), streams);
	co->raw.redis = !isnan(co->raw.commands);
	return o;
lost:
	snprintf(err, sizeof err, "lost Redis at %s: %s", co->rt.url,
	    co->redis->errstr[0] ? co->redis->errstr : "no answer");
	redisFree(co->redis);
	co->redis = NULL;
	co->raw.redis = 0;
	return source_down(err);
}

/* ---- the tick ---- */

static double
rate(double now, double before, double seconds)
{
	if (isnan(now) || isnan(before) || now < before)
		return NAN;
	return round_to((now - before) / seconds, 3);
}

static int
same_num(double a, double b)
{
	return (isnan(a) && isnan(b)) || a == b;
}

/* The daemon of prev that is d before: the same socket and process. */
static jv
prev_daemon(jv prev, jv d)
{
	jv pds = jget(prev, "daemons"), pd;
	char s[PATH_MAX], ps[PATH_MAX];
	int i, n;

	if (jv_get_kind(pds) != JV_KIND_ARRAY) {
		jv_free(pds);
		return jv_null();
	}
	jstr(d, "socket", s, sizeof s);
	n = jv_array_length(jv_copy(pds));
	for (i = 0; i < n; i++) {
		pd = jv_array_get(jv_copy(pds), i);
		if (jtrue(pd, "up") && strcmp(jstr(pd, "socket", ps,
		    sizeof ps), s) == 0 &&
		    same_num(jnum(pd, "pid"), jnum(d, "pid"))) {
			jv_free(pds);
			return pd;
		}
		jv_free(pd);
	}
	jv_free(pds);
	return jv_null();
}

/* busy_pct of each pool of d (consumed) that reports busy_us: the share
 * of the interval it had a request in flight, from busy_us of both
 * ticks. */
static jv
busy_rates(jv d, jv pd, double iv)
{
	jv ps = jget(d, "pools"), pps = jget(pd, "pools"), k, p, pp;
	double x;
	int i;

	if (jv_get_kind(ps) != JV_KIND_OBJECT) {
		jv_free(ps);
		jv_free(pps);
		return d;
	}
	for (i = jv_object_iter(ps); jv_object_iter_valid(ps, i);
	    i = jv_object_iter_next(ps, i)) {
		k = jv_object_iter_key(ps, i);
		p = jv_object_iter_value(ps, i);
		pp = jget(pps, jv_string_value(k));
		x = rate(jnum(p, "busy_us"), jnum(pp, "busy_us"), iv) / 1e4;
		jv_free(pp);
		if (isnan(x)) {
			jv_free(k);
			jv_free(p);
			continue;
		}
		/* the two samples are not taken at the interval's ends */
		x = x > 100 ? 100 : x;
		p = jv_object_set(p, jv_string("busy_pct"),
		    jv_number(round_to(x, 2)));
		ps = jv_object_set(ps, k, p);
	}
	jv_free(pps);
	return jv_object_set(d, jv_string("pools"), ps);
}

static jv
add_rates(struct collector *co, jv tick)
{
	const struct raw *r = &co->raw, *p = &co->prev_raw;
	double iv = round_to((double)(r->mono_us - p->mono_us) / 1e6, 3), x;
	jv ds, d, pd, dl, pdl, o;
	int i, n;

	if (!(iv > 0))
		return tick;
	tick = jv_object_set(tick, jv_string("interval_s"), jv_number(iv));
	ds = jget(tick, "daemons");
	n = jlen(ds);
	for (i = 0; i < n; i++) {
		d = jv_array_get(jv_copy(ds), i);
		dl = jget(d, "delivery");
		if (!jtrue(d, "up") || jv_get_kind(dl) != JV_KIND_OBJECT) {
			jv_free(d);
			jv_free(dl);
			continue;
		}
		pd = prev_daemon(co->prev, d);
		d = busy_rates(d, pd, iv);
		pdl = jget(pd, "delivery");
		dl = jv_object_set(dl, jv_string("in_per_s"), num_or_null(
		    rate(jnum(dl, "in"), jnum(pdl, "in"), iv)));
		dl = jv_object_set(dl, jv_string("out_per_s"), num_or_null(
		    rate(jnum(dl, "out"), jnum(pdl, "out"), iv)));
		d = jv_object_set(d, jv_string("delivery"), dl);
		ds = jv_array_set(ds, i, d);
		jv_free(pd);
		jv_free(pdl);
	}
	tick = jv_object_set(tick, jv_string("daemons"), ds);
	if (r->pg && p->pg) {
		o = jget(tick, "postgres");
		/* our own transaction of each sample is left out */
		x = rate(r->xact_commit, p->xact_commit + 1, iv);
		if (isnan(x) && r->xact_commit >= p->xact_commit)
			x = 0;
		o = jv_object_set(o, jv_string("commits_per_s"),
		    num_or_null(x));
		o = jv_object_set(o, jv_string("rollbacks_per_s"), num_or_null(
		    rate(r->xact_rollback, p->xact_rollback, iv)));
		tick = jv_object_set(tick, jv_string("postgres"), o);
	}
	if (r->redis && p->redis) {
		/* ... and our own Redis commands */
		x = rate(r->commands, p->commands + (double)(r->sent_at_info -
		    p->sent_at_info), iv);
		if (isnan(x) && r->commands >= p->commands)
			x = 0;
		if (!isnan(x)) {
			o = jget(tick, "redis");
			o = jv_object_set(o, jv_string("ops_per_s"),
			    jv_number(round_to(x, 2)));
			tick = jv_object_set(tick, jv_string("redis"), o);
		}
	}
	return tick;
}

int
collector_init(struct collector *co, const struct ps_cfg *c,
    volatile sig_atomic_t *stop, char *err, size_t errlen)
{
	memset(co, 0, sizeof *co);
	co->cfg = c;
	co->stop = stop;
	co->prev = jv_null();
	if (!c->no_redis &&
	    redis_target_parse(&co->rt, c->redis_url, err, errlen) < 0)
		return -1;
	nodes_init(co);
	return 0;
}

jv
collector_tick(struct collector *co)
{
	struct figures f;
	struct timespec ts;
	struct tm tm;
	char when[64];
	jv tick, src;

	memset(&co->raw, 0, sizeof co->raw);
	co->raw.mono_us = stats_mono_us();
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + strlen(when), sizeof when - strlen(when), ".%03ldZ",
	    ts.tv_nsec / 1000000);
	tick = jv_object();
	tick = jv_object_set(tick, jv_string("time"), jv_string(when));
	tick = jv_object_set(tick, jv_string("interval_s"), jv_null());
	tick = jv_object_set(tick, jv_string("daemons"), read_daemons(co));
	src = read_postgres(co);
	if (!co->cfg->no_postgres)
		src = jv_object_set(src, jv_string("nodes"), read_pg_nodes(co));
	tick = jv_object_set(tick, jv_string("postgres"), src);
	tick = jv_object_set(tick, jv_string("pgbouncers"),
	    read_pgbouncers(co));
	src = read_redis(co);
	/* what the sentinels say matters most when the primary is lost */
	if (!co->cfg->no_redis && co->rt.nsentinels > 0)
		src = jv_object_set(src, jv_string("sentinels"),
		    read_sentinels(co));
	tick = jv_object_set(tick, jv_string("redis"), src);
	if (jv_get_kind(co->prev) == JV_KIND_OBJECT)
		tick = add_rates(co, tick);
	figures_of(tick, co->cfg, &f);
	tick = jv_object_set(tick, jv_string("summary"), figures_json(&f));
	jv_free(co->prev);
	co->prev = jv_copy(tick);
	co->prev_raw = co->raw;
	return tick;
}

void
collector_free(struct collector *co)
{
	if (co->pg)
		PQfinish(co->pg);
	if (co->redis)
		redisFree(co->redis);
	co->pg = NULL;
	co->redis = NULL;
	cluster_free(co);
	jv_free(co->prev);
	co->prev = jv_null();
}
