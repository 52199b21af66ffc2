/* show.c: a tick as the table (at most 100 columns), as one line like
 * vmstat, or as Prometheus text exposition format 0.0.4. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "poolstat.h"

#define COLS 100

void
sb_vprintf(struct sbuf *b, const char *fmt, va_list ap)
{
	va_list aq;
	size_t cap;
	char *ns;
	int n;

	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0)
		return;
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 256;
		while (b->len + n + 1 > cap)
			cap *= 2;
		ns = realloc(b->s, cap);
		if (ns == NULL)
			return;
		b->s = ns;
		b->cap = cap;
	}
	vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	b->len += n;
}

void
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sb_vprintf(b, fmt, ap);
	va_end(ap);
}

void
sb_putc(struct sbuf *b, char c)
{
	sb_printf(b, "%c", c);
}

void
sb_reset(struct sbuf *b)
{
	b->len = 0;
	if (b->s)
		b->s[0] = '\0';
}

void
sb_free(struct sbuf *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
}

const char *
fmt_num(double x, char *buf, size_t len)
{
	char *p;

	if (isnan(x)) {
		snprintf(buf, len, "-");
		return buf;
	}
	snprintf(buf, len, "%.2f", x);
	p = buf + strlen(buf) - 1;
	while (*p == '0')
		*p-- = '\0';
	if (*p == '.')
		*p = '\0';
	if (strcmp(buf, "-0") == 0)
		snprintf(buf, len, "0");
	return buf;
}

/* x with a printf format, or "-" when there is none. */
static const char *
fmt_or_dash(const char *fmt, double x, char *buf, size_t len)
{
	if (isnan(x))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, fmt, x);
	return buf;
}

static const char *
fmt_dur(double s, char *buf, size_t len)
{
	long t;

	if (isnan(s) || s < 0)
		snprintf(buf, len, "-");
	else if (s < 1)
		snprintf(buf, len, "%.0fms", s * 1000);
	else if (s < 10)
		snprintf(buf, len, "%.1fs", s);
	else if (s < 60)
		snprintf(buf, len, "%.0fs", s);
	else if ((t = (long)s) < 3600)
		snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
	else if (t < 86400)
		snprintf(buf, len, "%ldh%02ldm", t / 3600, t / 60 % 60);
	else
		snprintf(buf, len, "%ldd%02ldh", t / 86400, t / 3600 % 24);
	return buf;
}

static const char *
fmt_bytes(double x, char *buf, size_t len)
{
	if (isnan(x))
		snprintf(buf, len, "-");
	else if (x < 1024)
		snprintf(buf, len, "%.0fB", x);
	else if (x < 1024.0 * 1024)
		snprintf(buf, len, "%.1fK", x / 1024);
	else if (x < 1024.0 * 1024 * 1024)
		snprintf(buf, len, "%.1fM", x / 1024 / 1024);
	else
		snprintf(buf, len, "%.1fG", x / 1024 / 1024 / 1024);
	return buf;
}

/* The tick's time (UTC, ISO 8601) in local time, as fmt says. */
static const char *
fmt_time(jv tick, const char *fmt, char *buf, size_t len)
{
	struct tm tm;
	time_t t;
	char iso[64];

	jstr(tick, "time", iso, sizeof iso);
	memset(&tm, 0, sizeof tm);
	if (sscanf(iso, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon,
	    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6) {
		snprintf(buf, len, "%s", iso[0] ? iso : "-");
		return buf;
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm);
	localtime_r(&t, &tm);
	strftime(buf, len, fmt, &tm);
	return buf;
}

/* One line of the table, cut at COLS columns, without trailing blanks. */
static void __attribute__((format(printf, 2, 0)))
vrow(struct sbuf *b, const char *fmt, va_list ap)
{
	size_t start = b->len, n, cols, i;
	char *line;

	sb_vprintf(b, fmt, ap);
	if (b->s == NULL)
		return;
	line = b->s + start;
	for (i = 0; line[i]; i++)
		if ((unsigned char)line[i] < 32)
			line[i] = ' ';
	/* count columns as UTF-8 characters, and cut between two */
	for (i = 0, cols = 0; line[i]; i++)
		if (((unsigned char)line[i] & 0xC0) != 0x80 && ++cols > COLS)
			break;
	n = i;
	while (n > 0 && line[n - 1] == ' ')
		n--;
	line[n] = '\0';
	b->len = start + n;
	sb_putc(b, '\n');
}

static void __attribute__((format(printf, 2, 3)))
row(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vrow(b, fmt, ap);
	va_end(ap);
}

/* A section's title line, and in parentheses what stands for its n rows
 * when there are none. */
static void __attribute__((format(printf, 4, 5)))
title(struct sbuf *b, int n, const char *none, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vrow(b, fmt, ap);
	va_end(ap);
	if (n == 0)
		row(b, "(%s)", none);
}

static int
width(int w, const char *s, int max)
{
	int n = (int)strlen(s);

	if (n > w)
		w = n;
	return w > max ? max : w;
}

/* The width of the first column: w, or the longest name up to 28; with
 * each daemon's host after an @ when label is set. */
static int
name_width(jv ds, int n, int w, int label)
{
	char name[300];
	jv d;
	int i;

	for (i = 0; i < n; i++) {
		d = jv_array_get(jv_copy(ds), i);
		w = width(w, label ? daemon_label(d, name, sizeof name) :
		    jstr(d, "name", name, sizeof name), 28);
		jv_free(d);
	}
	return w;
}

/* The width of the HOST column: 0 when every daemon is local. */
static int
host_width(jv ds, int n)
{
	char host[256];
	jv d;
	int i, w = 0;

	for (i = 0; i < n; i++) {
		d = jv_array_get(jv_copy(ds), i);
		jstr(d, "host", host, sizeof host);
		if (host[0] && strcmp(host, "local") != 0)
			w = 4;
		jv_free(d);
	}
	for (i = 0; w && i < n; i++) {
		d = jv_array_get(jv_copy(ds), i);
		w = width(w, jstr(d, "host", host, sizeof host), 39);
		jv_free(d);
	}
	return w;
}

static void
table_daemons(struct sbuf *b, jv ds, const char *note)
{
	char name[256], ver[64], err[400], up[32], pid[32], q[64], x[32], y[32],
	    host[256], hcol[300];
	jv d, qu;
	int i, n, w = 7, hw;

	n = jlen(ds);
	w = name_width(ds, n, w, 0);
	/* a HOST column once a daemon is on another host */
	hw = host_width(ds, n);
	if (hw)
		snprintf(hcol, sizeof hcol, " %-*s", hw, "HOST");
	else
		hcol[0] = '\0';
	title(b, n, note && *note ? note : "no daemon",
	    "%-*s%s %-5s %8s %-9s %-9s %s", w, "DAEMONS", hcol, "STATE", "PID",
	    "UPTIME", "VERSION", "QUEUE");
	for (i = 0; i < n; i++) {
		d = jv_array_get(jv_copy(ds), i);
		jstr(d, "name", name, sizeof name);
		if (hw)
			snprintf(hcol, sizeof hcol, " %-*.*s", hw, hw,
			    jstr(d, "host", host, sizeof host));
		if (!jtrue(d, "up")) {
			row(b, "%-*.*s%s %-5s %8s %s", w, w, name, hcol, "down",
			    "-", jstr(d, "error", err, sizeof err));
			jv_free(d);
			continue;
		}
		qu = jget(d, "queue");
		if (jv_get_kind(qu) == JV_KIND_OBJECT)
			snprintf(q, sizeof q, "%s/%s", fmt_or_dash("%.0f",
			    jnum(qu, "depth"), x, sizeof x), fmt_or_dash("%.0f",
			    jnum(qu, "max"), y, sizeof y));
		else
			snprintf(q, sizeof q, "-");
		jv_free(qu);
		jstr(d, "version", ver, sizeof ver);
		row(b, "%-*.*s%s %-5s %8s %-9s %-9.9s %s", w, w, name, hcol, "up",
		    fmt_or_dash("%.0f", jnum(d, "pid"), pid, sizeof pid),
		    fmt_dur(jnum(d, "uptime_s"), up, sizeof up),
		    ver[0] ? ver : "-", q);
		jv_free(d);
	}
}

#define POOL_FMT "%-*.*s %-*.*s %6s %9s %7s %10s %10s %6s %6s %s"

static void
pool_row(struct sbuf *b, int w1, int w2, const char *name, const char *pool,
    jv p)
{
	char a[32], c[32], e[32], f[32], g[32], h[32], k[32];

	row(b, POOL_FMT, w1, w1, name, w2, w2, pool,
	    fmt_or_dash("%.0f", jnum(p, "sv_max"), a, sizeof a),
	    fmt_or_dash("%.0f", jnum(p, "sv_active"), c, sizeof c),
	    fmt_or_dash("%.0f", jnum(p, "sv_idle"), e, sizeof e),
	    fmt_or_dash("%.0f", jnum(p, "cl_waiting"), f, sizeof f),
	    fmt_or_dash("%.1f", jnum(p, "maxwait_us") / 1000, g, sizeof g),
	    fmt_or_dash("%.1f", jnum(p, "util_pct"), h, sizeof h),
	    fmt_or_dash("%.1f", jnum(p, "busy_pct"), k, sizeof k),
	    jtrue(p, "connected") ? "yes" : "no");
}

struct pool_rows {
	struct sbuf *b;		/* NULL: measure only */
	int w1, w2, rows;
};

static void
pool_rows_one(void *arg, const char *name, const char *pool, jv p)
{
	struct pool_rows *pr = arg;

	if (pr->b)
		pool_row(pr->b, pr->w1, pr->w2, name, pool, p);
	/* NAME@HOST: the row may then lose its last column, not its name */
	pr->w1 = width(pr->w1, name, 24);
	pr->w2 = width(pr->w2, pool, 12);
	pr->rows++;
}

/* The pools of the daemons up: measured (b NULL) or shown; how many. */
static int
pool_rows(struct sbuf *b, jv ds, int *w1, int *w2)
{
	struct pool_rows pr = { b, *w1, *w2, 0 };
	jv d;
	int i, n;

	n = jlen(ds);
	for (i = 0; i < n; i++) {
		d = jv_array_get(jv_copy(ds), i);
		if (jtrue(d, "up"))
			each_pool(d, pool_rows_one, &pr);
		jv_free(d);
	}
	*w1 = pr.w1;
	*w2 = pr.w2;
	return pr.rows;
}

#define BNC_FMT "%-*.*s %-*.*s %4s %9s %7s %10s %10s %6s"

/* PgBouncer's pools, as its SHOW POOLS has them, below labpulse's own:
 * the figures of both in PgBouncer's words. Nothing when there is no
 * --pgbouncer. */
static void
table_bouncers(struct sbuf *b, jv bs)
{
	char name[300], pool[520], db[256], user[256], err[1024], a[32], c[32],
	    e[32], f[32], g[32], h[32];
	jv bo, ps, p;
	int i, j, n, m, w1 = 9, w2 = 4, pass;

	n = jlen(bs);
	if (n == 0)
		return;
	row(b, "%s", "");
	for (pass = 0; pass < 2; pass++) {
		if (pass == 1)
			row(b, BNC_FMT, w1, w1, "PGBOUNCER", w2, w2, "POOL",
			    "SIZE", "SV_ACTIVE", "SV_IDLE", "CL_WAITING",
			    "MAXWAIT_MS", "UTIL%");
		for (i = 0; i < n; i++) {
			bo = jv_array_get(jv_copy(bs), i);
			jstr(bo, "name", name, sizeof name);
			if (pass == 0)
				w1 = width(w1, name, 21);
			if (!jtrue(bo, "up")) {
				if (pass == 1)
					row(b, "%-*.*s down: %s", w1, w1, name,
					    jstr(bo, "error", err, sizeof err));
				jv_free(bo);
				continue;
			}
			ps = jget(bo, "pools");
			m = jlen(ps);
			if (m == 0 && pass == 1)
				row(b, "%-*.*s (no pool yet)", w1, w1, name);
			for (j = 0; j < m; j++) {
				p = jv_array_get(jv_copy(ps), j);
				snprintf(pool, sizeof pool, "%s/%s",
				    jstr(p, "database", db, sizeof db),
				    jstr(p, "user", user, sizeof user));
				if (pass == 0)
					w2 = width(w2, pool, 24);
				else
					row(b, BNC_FMT, w1, w1, name, w2, w2, pool,
					    fmt_or_dash("%.0f", jnum(p,
					    "pool_size"), a, sizeof a),
					    fmt_or_dash("%.0f", jnum(p,
					    "sv_active"), c, sizeof c),
					    fmt_or_dash("%.0f", jnum(p, "sv_idle"),
					    e, sizeof e),
					    fmt_or_dash("%.0f", jnum(p,
					    "cl_waiting"), f, sizeof f),
					    fmt_or_dash("%.1f", jnum(p,
					    "maxwait_us") / 1000, g, sizeof g),
					    fmt_or_dash("%.1f", jnum(p, "util_pct"),
					    h, sizeof h));
				jv_free(p);
			}
			jv_free(ps);
			jv_free(bo);
		}
	}
}

static void
table_pools(struct sbuf *b, jv ds, jv pg, jv bs)
{
	char a[32], c[32], h[32];
	int rows, w1 = 8, w2 = 6;

	pool_rows(NULL, ds, &w1, &w2);
	row(b, POOL_FMT, w1, w1, "POOLS", w2, w2, "POOL", "SV_MAX",
	    "SV_ACTIVE", "SV_IDLE", "CL_WAITING", "MAXWAIT_MS", "UTIL%",
	    "BUSY%", "CONN");
	rows = pool_rows(b, ds, &w1, &w2);
	if (jtrue(pg, "up")) {
		row(b, POOL_FMT, w1, w1, "postgres", w2, w2, "server",
		    fmt_or_dash("%.0f", jnum(pg, "max_connections"), a,
		    sizeof a),
		    fmt_or_dash("%.0f", jnum(pg, "connections"), c, sizeof c),
		    "-", "-", "-",
		    fmt_or_dash("%.1f", jnum(pg, "util_pct"), h, sizeof h), "-",
		    "");
		rows++;
	}
	if (rows == 0)
		row(b, "(no pool reported)");
	table_bouncers(b, bs);
}

static void
source_line(struct sbuf *b, jv src)
{
	char err[1024];

	jstr(src, "error", err, sizeof err);
	if (strncmp(err, "left out", 8) == 0)
		row(b, "%s", err);
	else
		row(b, "unreachable: %s", err[0] ? err : "no figures");
}

static void
table_queues(struct sbuf *b, jv rd)
{
	char sname[256], gname[256], who[256], a[32], c[32], e[32], f[32],
	    g[32], idle[300];
	jv ss, s, gs, gr;
	int i, j, n, m, w1 = 6, w2 = 5, pass;

	if (!jtrue(rd, "up")) {
		row(b, "QUEUES");
		source_line(b, rd);
		return;
	}
	ss = jget(rd, "streams");
	n = jlen(ss);
	for (pass = 0; pass < 2; pass++) {
		if (pass == 1)
			title(b, n, "no labpulse stream",
			    "%-*s %8s  %-*s %9s %8s %8s  %s", w1, "QUEUES",
			    "LENGTH", w2, "GROUP", "CONSUMERS", "PENDING", "LAG",
			    "IDLEST CONSUMER");
		for (i = 0; i < n; i++) {
			s = jv_array_get(jv_copy(ss), i);
			gs = jget(s, "groups");
			jstr(s, "stream", sname, sizeof sname);
			fmt_or_dash("%.0f", jnum(s, "length"), a, sizeof a);
			m = jlen(gs);
			if (pass == 0)
				w1 = width(w1, sname, 26);
			else if (m == 0)
				row(b, "%-*.*s %8s  %-*s", w1, w1, sname, a, w2,
				    "-");
			for (j = 0; j < m; j++) {
				gr = jv_array_get(jv_copy(gs), j);
				jstr(gr, "group", gname, sizeof gname);
				if (pass == 0) {
					w2 = width(w2, gname, 16);
					jv_free(gr);
					continue;
				}
				if (jstr(gr, "idlest_consumer", who,
				    sizeof who)[0])
					snprintf(idle, sizeof idle, "%s (%s)",
					    who, fmt_dur(jnum(gr, "idlest_ms") /
					    1000, f, sizeof f));
				else
					snprintf(idle, sizeof idle, "-");
				row(b, "%-*.*s %8s  %-*.*s %9s %8s %8s  %s", w1, w1,
				    sname, a, w2, w2, gname,
				    fmt_or_dash("%.0f", jnum(gr, "consumers"), c,
				    sizeof c),
				    fmt_or_dash("%.0f", jnum(gr, "pending"), e,
				    sizeof e),
				    fmt_or_dash("%.0f", jnum(gr, "lag"), g,
				    sizeof g), idle);
				jv_free(gr);
			}
			jv_free(gs);
			jv_free(s);
		}
	}
	jv_free(ss);
}

static void
table_delivery(struct sbuf *b, jv ds)
{
	char name[256], a[32], c[32], e[32], f[32];
	jv d, dl;
	int i, n, w = 8;

	n = jlen(ds);
	w = name_width(ds, n, w, 1);
	title(b, n, "no daemon", "%-*s %10s %10s %10s %8s", w, "DELIVERY",
	    "IN/S", "OUT/S", "DROPPED", "SHARE%");
	for (i = 0; i < n; i++) {
		d = jv_array_get(jv_copy(ds), i);
		dl = jget(d, "delivery");
		daemon_label(d, name, sizeof name);
		if (!jtrue(d, "up"))
			row(b, "%-*.*s %10s %10s %10s %8s", w, w, name, "-", "-",
			    "-", "down");
		else
			row(b, "%-*.*s %10s %10s %10s %8s", w, w, name,
			    fmt_or_dash("%.1f", jnum(dl, "in_per_s"), a,
			    sizeof a),
			    fmt_or_dash("%.1f", jnum(dl, "out_per_s"), c,
			    sizeof c),
			    fmt_or_dash("%.0f", jnum(dl, "dropped"), e,
			    sizeof e),
			    fmt_num(jnum(dl, "share_pct"), f, sizeof f));
		jv_free(dl);
		jv_free(d);
	}
}

/* The hooks object of a notify daemon's stats, or null. */
static jv
hooks_of(jv d)
{
	jv st, hk;
	char kind[32];

	if (!jtrue(d, "up") || strcmp(daemon_kind(d, kind, sizeof kind),
	    "notify") != 0)
		return jv_null();
	st = jget(d, "stats");
	hk = jget(st, "hooks");
	jv_free(st);
	if (jv_get_kind(hk) == JV_KIND_OBJECT)
		return hk;
	jv_free(hk);
	return jv_null();
}

/* A count, "-" when there is none. */
static const char *
cnt(jv o, const char *key, char *buf, size_t len)
{
	return fmt_or_dash("%.0f", jnum(o, key), buf, len);
}

#define HOOK_FMT "%-*.*s %-8.8s %6s %8s %8s %7s %5s %6s %9s %9s %4s"

static void
hook_row(struct sbuf *b, int w, const char *name, const char *kind, jv o,
    const char *sent)
{
	char a[32], c[32], e[32], f[32], g[32], h[32], k[32], l[32], m[32];
	double st = jnum(o, "last_status");

	row(b, HOOK_FMT, w, w, name, kind, cnt(o, "queued", a, sizeof a),
	    cnt(o, "in_flight", c, sizeof c), cnt(o, sent, e, sizeof e),
	    cnt(o, "retried", f, sizeof f), cnt(o, "rate_limited", g, sizeof g),
	    cnt(o, "dead", h, sizeof h),
	    fmt_or_dash("%.1f", jnum(o, "bucket_wait_us_p99") / 1000, k,
	    sizeof k),
	    fmt_or_dash("%.1f", jnum(o, "latency_us_p99") / 1000, l, sizeof l),
	    fmt_or_dash("%.0f", st > 0 ? st : NAN, m, sizeof m));
}

/* For each notify daemon that delivers hooks: its totals, then a row per
 * destination, in the order of their names. Nothing at all when none
 * does. */
static void
table_hooks(struct sbuf *b, jv ds, jv rd)
{
	char name[256], dname[300], file[1024], from[300], dead[300],
	    a[32], c[32], e[32], f[32];
	jv d, hk, dests, keys, key, o;
	int i, j, n, m, nd = 0, w = 5;

	n = jlen(ds);
	for (i = 0; i < n; i++) {
		d = jv_array_get(jv_copy(ds), i);
		hk = hooks_of(d);
		if (jv_get_kind(hk) == JV_KIND_OBJECT) {
			nd++;
			w = width(w, daemon_label(d, name, sizeof name), 20);
			dests = jget(hk, "destinations");
			keys = jv_get_kind(dests) == JV_KIND_OBJECT ?
			    jv_keys(jv_copy(dests)) : jv_array();
			m = jlen(keys);
			for (j = 0; j < m; j++) {
				key = jv_array_get(jv_copy(keys), j);
				/* shown indented by two */
				snprintf(dname, sizeof dname, "  %s",
				    jv_string_value(key));
				w = width(w, dname, 20);
				jv_free(key);
			}
			jv_free(keys);
			jv_free(dests);
		}
		jv_free(hk);
		jv_free(d);
	}
	if (nd == 0)
		return;
	row(b, "%s", "");
	row(b, HOOK_FMT, w, w, "HOOKS", "KIND", "QUEUED", "INFLIGHT", "SENT",
	    "RETRIED", "429S", "DEAD", "WAIT99_MS", "LAT99_MS", "LAST");
	for (i = 0; i < n; i++) {
		d = jv_array_get(jv_copy(ds), i);
		hk = hooks_of(d);
		if (jv_get_kind(hk) != JV_KIND_OBJECT) {
			jv_free(hk);
			jv_free(d);
			continue;
		}
		daemon_label(d, name, sizeof name);
		hook_row(b, w, name, "all", hk, "delivered");
		dests = jget(hk, "destinations");
		keys = jv_get_kind(dests) == JV_KIND_OBJECT ?
		    jv_keys(jv_copy(dests)) : jv_array();
		m = jlen(keys);
		for (j = 0; j < m; j++) {
			key = jv_array_get(jv_copy(keys), j);
			o = jv_object_get(jv_copy(dests), jv_copy(key));
			snprintf(dname, sizeof dname, "  %s",
			    jv_string_value(key));
			hook_row(b, w, dname, jstr(o, "kind", a, sizeof a), o,
			    "sent");
			jv_free(o);
			jv_free(key);
		}
		if (m == 0)
			row(b, "  (no destination)");
		jv_free(keys);
		jv_free(dests);
		row(b, "  %s: read %s, held %s of %s, from %s, dead letters to "
		    "%s", name, cnt(hk, "read", c, sizeof c),
		    fmt_or_dash("%.0f", jnum(hk, "queued") + jnum(hk,
		    "in_flight"), e, sizeof e), cnt(hk, "max_queue", f,
		    sizeof f),
		    jstr(hk, "from", from, sizeof from)[0] ? from : "-",
		    jstr(hk, "dead_to", dead, sizeof dead)[0] ? dead : "-");
		row(b, "  %s: hooks file %s", name, jstr(hk, "file", file,
		    sizeof file)[0] ? file : "-");
		jv_free(hk);
		jv_free(d);
	}
	if (jtrue(rd, "up") && !isnan(jnum(rd, "hooks_dead")))
		row(b, "dead letters waiting in labpulse:hooks-dead: %s; "
		    "pending in group hooks: %s",
		    cnt(rd, "hooks_dead", a, sizeof a),
		    cnt(rd, "hooks_pending", c, sizeof c));
}

/* Whether the nodes of src say more than its one server: several, or
 * replicas, or a standby. */
static int
nodes_worth(jv src)
{
	jv ns = jget(src, "nodes"), nd, reps;
	char role[32];
	int n = jlen(ns), worth = n > 1;

	if (n == 1) {
		nd = jv_array_get(jv_copy(ns), 0);
		reps = jget(nd, "replicas");
		worth = jlen(reps) > 0 || strcmp(jstr(nd, "role", role,
		    sizeof role), "primary") != 0;
		jv_free(reps);
		jv_free(nd);
	}
	jv_free(ns);
	return worth;
}

#define NODE_FMT "%-*.*s %-8s %12s %10s %8s  %s"

/* The nodes of a source: role, position, lag in bytes and seconds, and
 * what else each says. */
static void
table_nodes(struct sbuf *b, jv src, const char *pos)
{
	char name[300], role[32], err[1024], more[700], a[32], c[32], e[32],
	    x[300], y[300];
	jv ns = jget(src, "nodes"), nd, reps, r;
	int i, j, n, m, w = 5;

	n = jlen(ns);
	for (i = 0; i < n; i++) {
		nd = jv_array_get(jv_copy(ns), i);
		w = width(w, jstr(nd, "node", name, sizeof name), 28);
		jv_free(nd);
	}
	row(b, NODE_FMT, w, w, "NODES", "ROLE", pos, "LAG", "LAG_S", "");
	for (i = 0; i < n; i++) {
		nd = jv_array_get(jv_copy(ns), i);
		jstr(nd, "node", name, sizeof name);
		if (jv_get_kind(jget(nd, "up")) == JV_KIND_FALSE) {
			row(b, "%-*.*s %-8s %s", w, w, name, "down",
			    jstr(nd, "error", err, sizeof err));
			jv_free(nd);
			continue;
		}
		jstr(nd, "role", role, sizeof role);
		more[0] = '\0';
		if (jv_get_kind(jget(nd, "streaming")) != JV_KIND_NULL)
			snprintf(more, sizeof more, "%s", jtrue(nd, "streaming") ?
			    "streaming" : "not streaming");
		if (jstr(nd, "link", x, sizeof x)[0])
			snprintf(more, sizeof more, "link %s to %s", x,
			    jstr(nd, "primary", y, sizeof y));
		if (jstr(nd, "state", x, sizeof x)[0])
			snprintf(more, sizeof more, "%s", x);
		reps = jget(nd, "replicas");
		m = jlen(reps);
		for (j = 0; j < m; j++) {
			r = jv_array_get(jv_copy(reps), j);
			snprintf(more + strlen(more), sizeof more - strlen(more),
			    "%s%s (%s) %s %s", j ? ", " : "sends to ",
			    jstr(r, "name", x, sizeof x), jstr(r, "client", y,
			    sizeof y), jstr(r, "state", err, sizeof err),
			    fmt_bytes(jnum(r, "lag_bytes"), a, sizeof a));
			jv_free(r);
		}
		jv_free(reps);
		row(b, NODE_FMT, w, w, name, role,
		    fmt_or_dash("%.0f", jnum(nd, strcmp(pos, "LSN") == 0 ?
		    "lsn" : "offset"), c, sizeof c),
		    fmt_bytes(jnum(nd, "lag_bytes"), a, sizeof a),
		    fmt_dur(jnum(nd, "lag_s"), e, sizeof e), more);
		jv_free(nd);
	}
	jv_free(ns);
}

static void
table_postgres(struct sbuf *b, jv pg)
{
	char a[32], c[32], e[32], f[32], g[32], h[32], k2[32];
	jv by, keys, key, st;
	const char *app;
	int i, n, w = 8;

	if (!jtrue(pg, "up")) {
		row(b, "POSTGRES");
		source_line(b, pg);
		if (nodes_worth(pg))
			table_nodes(b, pg, "LSN");
		return;
	}
	by = jget(pg, "by_app");
	if (jv_get_kind(by) != JV_KIND_OBJECT) {
		jv_free(by);
		by = jv_object();
	}
	keys = jv_keys(jv_copy(by));
	n = jv_array_length(jv_copy(keys));
	for (i = 0; i < n; i++) {
		key = jv_array_get(jv_copy(keys), i);
		w = width(w, jv_string_value(key), 40);
		jv_free(key);
	}
	row(b, "%-*s %7s %7s %13s %8s", w, "POSTGRES", "ACTIVE", "IDLE",
	    "IDLE IN XACT", "WAITING");
	for (i = 0; i < n; i++) {
		key = jv_array_get(jv_copy(keys), i);
		app = jv_string_value(key);
		st = jv_object_get(jv_copy(by), jv_copy(key));
		row(b, "%-*.*s %7s %7s %13s %8s", w, w, *app ? app : "(none)",
		    fmt_or_dash("%.0f", jnum(st, "active"), a, sizeof a),
		    fmt_or_dash("%.0f", jnum(st, "idle"), c, sizeof c),
		    fmt_or_dash("%.0f", jnum(st, "idle_in_transaction"), e,
		    sizeof e),
		    fmt_or_dash("%.0f", jnum(st, "waiting"), f, sizeof f));
		jv_free(st);
		jv_free(key);
	}
	jv_free(keys);
	jv_free(by);
	row(b, "connections %s/%s (%s reserved), oldest xact %s, commits/s %s, "
	    "rollbacks/s %s, cache hit %s%%",
	    fmt_or_dash("%.0f", jnum(pg, "connections"), a, sizeof a),
	    fmt_or_dash("%.0f", jnum(pg, "max_connections"), c, sizeof c),
	    fmt_or_dash("%.0f", jnum(pg, "reserved"), e, sizeof e),
	    fmt_dur(jnum(pg, "oldest_xact_s"), f, sizeof f),
	    fmt_or_dash("%.1f", jnum(pg, "commits_per_s"), g, sizeof g),
	    fmt_or_dash("%.1f", jnum(pg, "rollbacks_per_s"), h, sizeof h),
	    fmt_or_dash("%.1f", jnum(pg, "cache_hit_pct"), k2, sizeof k2));
	if (nodes_worth(pg))
		table_nodes(b, pg, "LSN");
}

/* Each sentinel's idea of the primary. */
static void
table_sentinels(struct sbuf *b, jv rd)
{
	char name[300], prim[300], flags[256], err[1024], a[32], c[32], e[32];
	jv ss = jget(rd, "sentinels"), s;
	int i, n, w = 8;

	n = jlen(ss);
	if (n == 0) {
		jv_free(ss);
		return;
	}
	for (i = 0; i < n; i++) {
		s = jv_array_get(jv_copy(ss), i);
		w = width(w, jstr(s, "sentinel", name, sizeof name), 28);
		jv_free(s);
	}
	row(b, "%-*s %-21s %6s %8s %9s  %s", w, "SENTINEL", "PRIMARY", "QUORUM",
	    "REPLICAS", "SENTINELS", "FLAGS");
	for (i = 0; i < n; i++) {
		s = jv_array_get(jv_copy(ss), i);
		jstr(s, "sentinel", name, sizeof name);
		if (!jtrue(s, "up"))
			row(b, "%-*.*s down: %s", w, w, name, jstr(s, "error", err,
			    sizeof err));
		else
			row(b, "%-*.*s %-21s %6s %8s %9s  %s", w, w, name,
			    jstr(s, "primary", prim, sizeof prim),
			    fmt_or_dash("%.0f", jnum(s, "quorum"), a, sizeof a),
			    fmt_or_dash("%.0f", jnum(s, "replicas_known"), c,
			    sizeof c),
			    fmt_or_dash("%.0f", jnum(s, "other_sentinels") + 1, e,
			    sizeof e), jstr(s, "flags", flags, sizeof flags));
		jv_free(s);
	}
	jv_free(ss);
}

static void
table_redis(struct sbuf *b, jv rd)
{
	char a[32], c[32], e[32], f[32];

	if (!jtrue(rd, "up")) {
		row(b, "REDIS");
		source_line(b, rd);
		table_sentinels(b, rd);
		return;
	}
	row(b, "%-8s %8s %8s %9s %9s", "REDIS", "CLIENTS", "BLOCKED", "MEMORY",
	    "OPS/S");
	row(b, "%-8s %8s %8s %9s %9s", "server",
	    fmt_or_dash("%.0f", jnum(rd, "connected_clients"), a, sizeof a),
	    fmt_or_dash("%.0f", jnum(rd, "blocked_clients"), c, sizeof c),
	    fmt_bytes(jnum(rd, "used_memory"), e, sizeof e),
	    fmt_or_dash("%.1f", jnum(rd, "ops_per_s"), f, sizeof f));
	if (nodes_worth(rd))
		table_nodes(b, rd, "OFFSET");
	table_sentinels(b, rd);
}

void
show_table(struct sbuf *b, const struct ps_cfg *c, jv tick, const char *note)
{
	struct sbuf reasons = { NULL, 0, 0 };
	jv ds = jget(tick, "daemons"), pg = jget(tick, "postgres"),
	    rd = jget(tick, "redis"), bs = jget(tick, "pgbouncers");
	char when[64], iv[32], title[COLS + 1024];
	double x = jnum(tick, "interval_s");
	int state;

	state = check_state(c, tick, note, &reasons);
	if (isnan(x))
		snprintf(iv, sizeof iv, "no rates");
	else
		snprintf(iv, sizeof iv, "rates over %.2fs", x);
	snprintf(title, sizeof title, "labpulse poolstat  %s  %s  %s%s%s",
	    fmt_time(tick, "%Y-%m-%d %H:%M:%S", when, sizeof when), iv,
	    check_state_word(state), state == ST_OK ? "" : " - ",
	    state == ST_OK ? "" : reasons.s);
	sb_free(&reasons);
	/* the reasons are all in --check; here, what fits */
	if (strlen(title) > COLS)
		snprintf(title + COLS - 3, 4, "...");
	row(b, "%s", title);
	row(b, "%s", "");
	table_daemons(b, ds, note);
	row(b, "%s", "");
	table_pools(b, ds, pg, bs);
	row(b, "%s", "");
	table_queues(b, rd);
	row(b, "%s", "");
	table_delivery(b, ds);
	table_hooks(b, ds, rd);
	row(b, "%s", "");
	table_postgres(b, pg);
	row(b, "%s", "");
	table_redis(b, rd);
	jv_free(ds);
	jv_free(pg);
	jv_free(rd);
	jv_free(bs);
}

/* ---- one line a tick ---- */

#define LINE_FMT \
	"%8s %5s %6s %6s %8s %7s %7s %8s %8s %8s %6s %6s %6s %6s %6s %3s\n"

void
show_line_header(struct sbuf *b)
{
	sb_printf(b, LINE_FMT, "time", "up", "pool%", "clwait", "wait_ms", "lag",
	    "pending", "posts/s", "rows/s", "msgs/s", "deliv%", "pgconn",
	    "pg%", "hooks", "dead", "lag");
}

void
show_line(struct sbuf *b, const struct ps_cfg *c, jv tick)
{
	struct figures f;
	char t[32], up[32], v[14][32];

	figures_of(tick, c, &f);
	snprintf(up, sizeof up, "%d/%d", f.daemons - f.down, f.daemons);
	sb_printf(b, LINE_FMT, fmt_time(tick, "%H:%M:%S", t, sizeof t), up,
	    fmt_or_dash("%.1f", f.v[M_POOL_UTIL], v[0], sizeof v[0]),
	    fmt_or_dash("%.0f", f.v[M_CL_WAITING], v[1], sizeof v[1]),
	    fmt_or_dash("%.1f", f.v[M_MAXWAIT] / 1000, v[2], sizeof v[2]),
	    fmt_or_dash("%.0f", f.v[M_STREAM_LAG], v[3], sizeof v[3]),
	    fmt_or_dash("%.0f", f.pending_total, v[4], sizeof v[4]),
	    fmt_or_dash("%.1f", f.in_s, v[5], sizeof v[5]),
	    fmt_or_dash("%.1f", f.rows_s, v[6], sizeof v[6]),
	    fmt_or_dash("%.1f", f.msgs_s, v[7], sizeof v[7]),
	    fmt_num(f.v[M_DELIVERY], v[8], sizeof v[8]),
	    fmt_or_dash("%.0f", f.pg_conns, v[9], sizeof v[9]),
	    fmt_or_dash("%.1f", f.pg_util, v[10], sizeof v[10]),
	    fmt_or_dash("%.0f", f.hooks_held, v[11], sizeof v[11]),
	    fmt_or_dash("%.0f", f.v[M_HOOKS_DEAD], v[12], sizeof v[12]),
	    fmt_or_dash("%.0f", f.v[M_REPLICA_LAG], v[13], sizeof v[13]));
}

/* ---- Prometheus ---- */

enum fam {
	F_DAEMON_UP, F_UPTIME, F_POOL_CONN, F_POOL_MAX, F_POOL_WAITING,
	F_POOL_MAXWAIT, F_POOL_INFLIGHT, F_POOL_INFLIGHT_MAX, F_POOL_BUSY,
	F_POOL_WAIT, F_QUEUE_DEPTH, F_QUEUE_MAX, F_DEL_IN, F_DEL_OUT,
	F_DEL_DROPPED, F_PG_UP, F_PG_CONN, F_PG_MAX, F_PG_RESERVED, F_PG_OLDEST,
	F_PG_COMMIT, F_PG_ROLLBACK, F_PG_HIT, F_PG_READ, F_REDIS_UP,
	F_REDIS_CLIENTS, F_REDIS_BLOCKED, F_REDIS_MEMORY, F_REDIS_COMMANDS,
	F_STREAM_LEN, F_GROUP_CONSUMERS, F_GROUP_PENDING, F_GROUP_LAG,
	F_GROUP_IDLE, F_HOOKS_DEAD_LETTERS, F_HOOKS_READ, F_HOOKS_DELIVERED,
	F_HOOKS_DEAD, F_HOOKS_RETRIED, F_HOOKS_LIMITED, F_HOOKS_QUEUED,
	F_HOOKS_INFLIGHT, F_HOOKS_MAX_QUEUE, F_HOOK_QUEUED, F_HOOK_INFLIGHT,
	F_HOOK_SENT, F_HOOK_RETRIED, F_HOOK_LIMITED, F_HOOK_DEAD,
	F_HOOK_LAST_STATUS, F_HOOK_BUCKET_WAIT, F_HOOK_LATENCY,
	F_PG_NODE_UP, F_PG_NODE_PRIMARY, F_PG_NODE_LAG_BYTES, F_PG_NODE_LAG_S,
	F_BNC_UP, F_BNC_CLIENTS, F_BNC_SERVERS, F_BNC_POOL_SIZE, F_BNC_MAXWAIT,
	F_REDIS_NODE_PRIMARY, F_REDIS_NODE_OFFSET, F_REDIS_NODE_LAG_BYTES,
	F_REDIS_NODE_LAG_S, F_REDIS_REPLICAS, F_SENTINEL_UP, F_SENTINEL_PRIMARY,
	F_SENTINEL_QUORUM, F_SENTINEL_SENTINELS, F_COUNT
};

static const struct {
	const char *name, *type, *help;
} fams[F_COUNT] = {
	{ "labpulse_daemon_up", "gauge",
	  "1 when the daemon answered on its stats socket, else 0." },
	{ "labpulse_daemon_uptime_seconds", "gauge",
	  "Seconds since the daemon started." },
	{ "labpulse_pool_connections", "gauge",
	  "Server connections of the pool, by state (sv_active, sv_idle)." },
	{ "labpulse_pool_max_connections", "gauge",
	  "The most server connections the pool may hold (sv_max)." },
	{ "labpulse_pool_waiting_clients", "gauge",
	  "Clients waiting for a connection of the pool (cl_waiting)." },
	{ "labpulse_pool_maxwait_seconds", "gauge",
	  "The longest current wait for a connection of the pool." },
	{ "labpulse_pool_inflight", "gauge",
	  "Requests on a multiplexed connection now." },
	{ "labpulse_pool_inflight_max", "gauge",
	  "The bound of a multiplexed connection's requests in flight." },
	{ "labpulse_pool_busy_seconds_total", "counter",
	  "Seconds the pool or link had a request in flight." },
	{ "labpulse_pool_wait_seconds", "summary",
	  "How long requests waited for the pool or link, since the daemon "
	  "started." },
	{ "labpulse_queue_depth", "gauge",
	  "What waits in the daemon's queue." },
	{ "labpulse_queue_max", "gauge",
	  "The bound of the daemon's queue." },
	{ "labpulse_delivery_in_total", "counter",
	  "What the daemon took in since it started." },
	{ "labpulse_delivery_out_total", "counter",
	  "What the daemon passed on since it started." },
	{ "labpulse_delivery_dropped_total", "counter",
	  "What the daemon gave up since it started." },
	{ "labpulse_postgres_up", "gauge",
	  "1 when PostgreSQL answered, else 0." },
	{ "labpulse_postgres_connections", "gauge",
	  "Client backends by application and state." },
	{ "labpulse_postgres_max_connections", "gauge",
	  "The setting max_connections." },
	{ "labpulse_postgres_reserved_connections", "gauge",
	  "The setting superuser_reserved_connections." },
	{ "labpulse_postgres_oldest_xact_seconds", "gauge",
	  "The age of the oldest open transaction, 0 when there is none." },
	{ "labpulse_postgres_xact_commit_total", "counter",
	  "Transactions committed in the database." },
	{ "labpulse_postgres_xact_rollback_total", "counter",
	  "Transactions rolled back in the database." },
	{ "labpulse_postgres_blks_hit_total", "counter",
	  "Blocks found in PostgreSQL's cache." },
	{ "labpulse_postgres_blks_read_total", "counter",
	  "Blocks read from outside PostgreSQL's cache." },
	{ "labpulse_redis_up", "gauge",
	  "1 when Redis answered, else 0." },
	{ "labpulse_redis_connected_clients", "gauge",
	  "Clients connected to Redis." },
	{ "labpulse_redis_blocked_clients", "gauge",
	  "Clients in a blocking command." },
	{ "labpulse_redis_used_memory_bytes", "gauge",
	  "Memory used by Redis." },
	{ "labpulse_redis_commands_processed_total", "counter",
	  "Commands Redis processed." },
	{ "labpulse_stream_length", "gauge",
	  "Entries in the stream." },
	{ "labpulse_stream_group_consumers", "gauge",
	  "Consumers of the group." },
	{ "labpulse_stream_group_pending", "gauge",
	  "Entries given to a consumer of the group and not acknowledged." },
	{ "labpulse_stream_group_lag", "gauge",
	  "Entries not given to the group yet; NaN when Redis cannot tell." },
	{ "labpulse_stream_group_idle_seconds", "gauge",
	  "How long the group's idlest consumer has done nothing." },
	{ "labpulse_hooks_dead_letters", "gauge",
	  "Dead letters of hooks waiting in labpulse:hooks-dead." },
	{ "labpulse_hooks_read_total", "counter",
	  "Hook messages the notify daemon read." },
	{ "labpulse_hooks_delivered_total", "counter",
	  "Hook messages delivered with a 2xx answer." },
	{ "labpulse_hooks_dead_total", "counter",
	  "Hook messages the notify daemon made dead letters." },
	{ "labpulse_hooks_retried_total", "counter",
	  "Failed attempts of hook messages that were tried again." },
	{ "labpulse_hooks_rate_limited_total", "counter",
	  "Answers 429 to hook messages." },
	{ "labpulse_hooks_queued", "gauge",
	  "Hook messages queued, not in flight." },
	{ "labpulse_hooks_in_flight", "gauge",
	  "Hook messages being sent now." },
	{ "labpulse_hooks_max_queue", "gauge",
	  "The most hook messages held at once (--hook-queue)." },
	{ "labpulse_hook_queued", "gauge",
	  "Messages queued for the destination." },
	{ "labpulse_hook_in_flight", "gauge",
	  "Messages being sent to the destination now, 0 or 1." },
	{ "labpulse_hook_sent_total", "counter",
	  "Messages the destination answered with a 2xx." },
	{ "labpulse_hook_retried_total", "counter",
	  "Failed attempts at the destination that were tried again." },
	{ "labpulse_hook_rate_limited_total", "counter",
	  "Answers 429 of the destination." },
	{ "labpulse_hook_dead_total", "counter",
	  "Messages for the destination made dead letters." },
	{ "labpulse_hook_last_status", "gauge",
	  "The HTTP status of the destination's last answer, 0 for none." },
	{ "labpulse_hook_bucket_wait_seconds", "summary",
	  "How long the destination's sends waited for its token bucket: "
	  "the 99th percentile of its last 512 sends alone." },
	{ "labpulse_hook_latency_seconds", "summary",
	  "How long the destination took to answer: the 99th percentile of "
	  "its last 512 sends alone." },
	{ "labpulse_postgres_node_up", "gauge",
	  "1 when the PostgreSQL node answered, else 0." },
	{ "labpulse_postgres_node_primary", "gauge",
	  "1 when the node is the primary, 0 when it is a standby." },
	{ "labpulse_postgres_node_lag_bytes", "gauge",
	  "How far the standby's replay is behind the primary's WAL." },
	{ "labpulse_postgres_node_lag_seconds", "gauge",
	  "How long ago the standby replayed a transaction it lags behind "
	  "with; 0 when it has replayed all it received." },
	{ "labpulse_pgbouncer_up", "gauge",
	  "1 when the PgBouncer's admin console answered, else 0." },
	{ "labpulse_pgbouncer_clients", "gauge",
	  "Client connections of the pool, by state (cl_active, cl_waiting)." },
	{ "labpulse_pgbouncer_server_connections", "gauge",
	  "Server connections of the pool, by state (sv_active, sv_idle, "
	  "sv_used, sv_tested, sv_login)." },
	{ "labpulse_pgbouncer_pool_size", "gauge",
	  "The pool_size of the pool's database." },
	{ "labpulse_pgbouncer_maxwait_seconds", "gauge",
	  "The longest current wait of a client of the pool." },
	{ "labpulse_redis_node_primary", "gauge",
	  "1 when the Redis node is the primary, 0 when it is a replica." },
	{ "labpulse_redis_node_offset_bytes", "gauge",
	  "The node's replication offset." },
	{ "labpulse_redis_node_lag_bytes", "gauge",
	  "How far the replica's offset is behind the primary's." },
	{ "labpulse_redis_node_lag_seconds", "gauge",
	  "Seconds since the replica last acknowledged the primary." },
	{ "labpulse_redis_connected_replicas", "gauge",
	  "Replicas connected to the Redis primary." },
	{ "labpulse_sentinel_up", "gauge",
	  "1 when the sentinel answered about the master, else 0." },
	{ "labpulse_sentinel_primary", "gauge",
	  "1 for the node the sentinel takes for the primary." },
	{ "labpulse_sentinel_quorum", "gauge",
	  "The quorum the sentinel has for the master." },
	{ "labpulse_sentinel_sentinels", "gauge",
	  "The sentinels the sentinel knows of for the master, itself too." },
};

struct expo {
	struct sbuf s[F_COUNT];
	/* of the daemon whose samples these are: its name, and its host
	 * (a label of its samples) when it is not local, else NULL */
	const char *name, *host;
};

static void
esc(struct sbuf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			sb_printf(b, "\\%c", *s);
		else if (*s == '\n')
			sb_printf(b, "\\n");
		else
			sb_putc(b, *s);
	}
}

/* A sample of family f; labels are name/value pairs ending in NULL. A
 * missing value (NAN) is left out unless nan_ok. */
static void
sample(struct expo *e, enum fam f, double v, int nan_ok, ...)
{
	struct sbuf *b = &e->s[f];
	const char *k, *val;
	va_list ap;
	int first = 1;

	if (isnan(v) && !nan_ok)
		return;
	sb_printf(b, "%s", fams[f].name);
	va_start(ap, nan_ok);
	while ((k = va_arg(ap, const char *)) != NULL) {
		val = va_arg(ap, const char *);
		sb_printf(b, "%s%s=\"", first ? "{" : ",", k);
		esc(b, val);
		sb_putc(b, '"');
		first = 0;
	}
	va_end(ap);
	if (e->host) {
		sb_printf(b, "%shost=\"", first ? "{" : ",");
		esc(b, e->host);
		sb_putc(b, '"');
		first = 0;
	}
	if (!first)
		sb_putc(b, '}');
	if (isnan(v))
		sb_printf(b, " NaN\n");
	else
		sb_printf(b, " %.15g\n", v);
}

/* ,host="HOST" inside a sample's labels, for a daemon not local. */
static void
host_label(const struct expo *e, struct sbuf *b)
{
	if (e->host == NULL)
		return;
	sb_printf(b, "\",host=\"");
	esc(b, e->host);
}

/* The wait_us latency object of a pool, as a Prometheus summary. */
static void
wait_summary(struct expo *e, const char *name, const char *pool, jv p)
{
	static const struct {
		const char *key, *q;
	} qs[] = { { "p50", "0.5" }, { "p90", "0.9" }, { "p99", "0.99" },
		{ "p999", "0.999" } };
	struct sbuf *b = &e->s[F_POOL_WAIT];
	jv w = jget(p, "wait_us");
	double n = jnum(w, "count"), mean = jnum(w, "mean");
	size_t i;

	if (!isnan(n) && !isnan(mean)) {
		for (i = 0; i < sizeof qs / sizeof qs[0]; i++)
			sample(e, F_POOL_WAIT, jnum(w, qs[i].key) / 1e6, 0,
			    "daemon", name, "pool", pool, "quantile", qs[i].q,
			    NULL);
		sb_printf(b, "%s_sum{daemon=\"", fams[F_POOL_WAIT].name);
		esc(b, name);
		sb_printf(b, "\",pool=\"");
		esc(b, pool);
		host_label(e, b);
		sb_printf(b, "\"} %.15g\n", mean * n / 1e6);
		sb_printf(b, "%s_count{daemon=\"", fams[F_POOL_WAIT].name);
		esc(b, name);
		sb_printf(b, "\",pool=\"");
		esc(b, pool);
		host_label(e, b);
		sb_printf(b, "\"} %.15g\n", n);
	}
	jv_free(w);
}

static void
prom_pool(void *arg, const char *label, const char *pool, jv p)
{
	struct expo *e = arg;
	const char *name = e->name;	/* the host is a label of its own */

	(void)label;
	sample(e, F_POOL_CONN, jnum(p, "sv_active"), 0, "daemon",
	    name, "pool", pool, "state", "active", NULL);
	sample(e, F_POOL_CONN, jnum(p, "sv_idle"), 0, "daemon",
	    name, "pool", pool, "state", "idle", NULL);
	sample(e, F_POOL_MAX, jnum(p, "sv_max"), 0, "daemon",
	    name, "pool", pool, NULL);
	sample(e, F_POOL_WAITING, jnum(p, "cl_waiting"), 0,
	    "daemon", name, "pool", pool, NULL);
	sample(e, F_POOL_MAXWAIT, jnum(p, "maxwait_us") / 1e6, 0,
	    "daemon", name, "pool", pool, NULL);
	sample(e, F_POOL_INFLIGHT, jnum(p, "inflight"), 0,
	    "daemon", name, "pool", pool, NULL);
	sample(e, F_POOL_INFLIGHT_MAX, jnum(p, "inflight_max"),
	    0, "daemon", name, "pool", pool, NULL);
	sample(e, F_POOL_BUSY, jnum(p, "busy_us") / 1e6, 0,
	    "daemon", name, "pool", pool, NULL);
	wait_summary(e, name, pool, p);
}

/* The hooks of a notify daemon: its totals, and each destination's. */
static void
prom_hooks(struct expo *e, const char *name, jv hk)
{
	jv dests = jget(hk, "destinations"), keys, key, o;
	const char *dn;
	int i, n;

	sample(e, F_HOOKS_READ, jnum(hk, "read"), 0, "daemon", name, NULL);
	sample(e, F_HOOKS_DELIVERED, jnum(hk, "delivered"), 0, "daemon", name,
	    NULL);
	sample(e, F_HOOKS_DEAD, jnum(hk, "dead"), 0, "daemon", name, NULL);
	sample(e, F_HOOKS_RETRIED, jnum(hk, "retried"), 0, "daemon", name,
	    NULL);
	sample(e, F_HOOKS_LIMITED, jnum(hk, "rate_limited"), 0, "daemon",
	    name, NULL);
	sample(e, F_HOOKS_QUEUED, jnum(hk, "queued"), 0, "daemon", name, NULL);
	sample(e, F_HOOKS_INFLIGHT, jnum(hk, "in_flight"), 0, "daemon", name,
	    NULL);
	sample(e, F_HOOKS_MAX_QUEUE, jnum(hk, "max_queue"), 0, "daemon", name,
	    NULL);
	if (jv_get_kind(dests) != JV_KIND_OBJECT) {
		jv_free(dests);
		return;
	}
	keys = jv_keys(jv_copy(dests));
	n = jlen(keys);
	for (i = 0; i < n; i++) {
		key = jv_array_get(jv_copy(keys), i);
		o = jv_object_get(jv_copy(dests), jv_copy(key));
		dn = jv_string_value(key);
#define HOOK_SAMPLE(f, v) sample(e, (f), (v), 0, "daemon", name, \
	"destination", dn, NULL)
		HOOK_SAMPLE(F_HOOK_QUEUED, jnum(o, "queued"));
		HOOK_SAMPLE(F_HOOK_INFLIGHT, jnum(o, "in_flight"));
		HOOK_SAMPLE(F_HOOK_SENT, jnum(o, "sent"));
		HOOK_SAMPLE(F_HOOK_RETRIED, jnum(o, "retried"));
		HOOK_SAMPLE(F_HOOK_LIMITED, jnum(o, "rate_limited"));
		HOOK_SAMPLE(F_HOOK_DEAD, jnum(o, "dead"));
		HOOK_SAMPLE(F_HOOK_LAST_STATUS, jnum(o, "last_status"));
#undef HOOK_SAMPLE
		/* the daemon keeps no sum or count of them */
		sample(e, F_HOOK_BUCKET_WAIT,
		    jnum(o, "bucket_wait_us_p99") / 1e6, 0, "daemon", name,
		    "destination", dn, "quantile", "0.99", NULL);
		sample(e, F_HOOK_LATENCY, jnum(o, "latency_us_p99") / 1e6, 0,
		    "daemon", name, "destination", dn, "quantile", "0.99",
		    NULL);
		jv_free(o);
		jv_free(key);
	}
	jv_free(keys);
	jv_free(dests);
}

static void
prom_daemon_samples(struct expo *e, jv d, const char *name)
{
	jv q, dl;

	sample(e, F_DAEMON_UP, jtrue(d, "up"), 0, "daemon", name, NULL);
	if (!jtrue(d, "up"))
		return;
	sample(e, F_UPTIME, jnum(d, "uptime_s"), 0, "daemon", name, NULL);
	each_pool(d, prom_pool, e);
	q = jget(d, "queue");
	sample(e, F_QUEUE_DEPTH, jnum(q, "depth"), 0, "daemon", name, NULL);
	sample(e, F_QUEUE_MAX, jnum(q, "max"), 0, "daemon", name, NULL);
	jv_free(q);
	dl = jget(d, "delivery");
	sample(e, F_DEL_IN, jnum(dl, "in"), 0, "daemon", name, NULL);
	sample(e, F_DEL_OUT, jnum(dl, "out"), 0, "daemon", name, NULL);
	sample(e, F_DEL_DROPPED, jnum(dl, "dropped"), 0, "daemon", name, NULL);
	jv_free(dl);
	q = hooks_of(d);
	if (jv_get_kind(q) == JV_KIND_OBJECT)
		prom_hooks(e, name, q);
	jv_free(q);
}

static void
prom_daemon(struct expo *e, jv d)
{
	char name[256], host[256];

	jstr(d, "name", name, sizeof name);
	jstr(d, "host", host, sizeof host);
	e->name = name;
	e->host = host[0] && strcmp(host, "local") != 0 ? host : NULL;
	prom_daemon_samples(e, d, name);
	e->name = e->host = NULL;
}

static void
prom_postgres(struct expo *e, jv pg, const struct raw *raw)
{
	static const char *const states[] = { "active", "idle",
		"idle_in_transaction", "waiting" };
	jv by, keys, key, st;
	double x;
	int i, j, n;

	sample(e, F_PG_UP, jtrue(pg, "up"), 0, NULL);
	if (!jtrue(pg, "up"))
		return;
	by = jget(pg, "by_app");
	if (jv_get_kind(by) == JV_KIND_OBJECT) {
		keys = jv_keys(jv_copy(by));
		n = jv_array_length(jv_copy(keys));
		for (i = 0; i < n; i++) {
			key = jv_array_get(jv_copy(keys), i);
			st = jv_object_get(jv_copy(by), jv_copy(key));
			for (j = 0; j < 4; j++)
				sample(e, F_PG_CONN, jnum(st, states[j]), 0,
				    "app", jv_string_value(key), "state",
				    states[j], NULL);
			jv_free(st);
			jv_free(key);
		}
		jv_free(keys);
	}
	jv_free(by);
	sample(e, F_PG_MAX, jnum(pg, "max_connections"), 0, NULL);
	sample(e, F_PG_RESERVED, jnum(pg, "reserved"), 0, NULL);
	x = jnum(pg, "oldest_xact_s");
	sample(e, F_PG_OLDEST, isnan(x) ? 0 : x, 0, NULL);
	if (raw && raw->pg) {
		sample(e, F_PG_COMMIT, raw->xact_commit, 0, NULL);
		sample(e, F_PG_ROLLBACK, raw->xact_rollback, 0, NULL);
		sample(e, F_PG_HIT, raw->blks_hit, 0, NULL);
		sample(e, F_PG_READ, raw->blks_read, 0, NULL);
	}
}

static void
prom_group(void *arg, jv s, const char *stream, jv g, const char *group)
{
	struct expo *e = arg;

	if (group == NULL) {
		sample(e, F_STREAM_LEN, jnum(s, "length"), 0, "stream", stream,
		    NULL);
		return;
	}
	sample(e, F_GROUP_CONSUMERS, jnum(g, "consumers"), 0, "stream",
	    stream, "group", group, NULL);
	sample(e, F_GROUP_PENDING, jnum(g, "pending"), 0, "stream", stream,
	    "group", group, NULL);
	sample(e, F_GROUP_LAG, jnum(g, "lag"), 1, "stream", stream, "group",
	    group, NULL);
	sample(e, F_GROUP_IDLE, jnum(g, "idlest_ms") / 1000, 0, "stream",
	    stream, "group", group, NULL);
}

static void
prom_redis(struct expo *e, jv rd, const struct raw *raw)
{
	sample(e, F_REDIS_UP, jtrue(rd, "up"), 0, NULL);
	if (!jtrue(rd, "up"))
		return;
	sample(e, F_REDIS_CLIENTS, jnum(rd, "connected_clients"), 0, NULL);
	sample(e, F_REDIS_BLOCKED, jnum(rd, "blocked_clients"), 0, NULL);
	sample(e, F_REDIS_MEMORY, jnum(rd, "used_memory"), 0, NULL);
	if (raw && raw->redis)
		sample(e, F_REDIS_COMMANDS, raw->commands, 0, NULL);
	each_group(rd, prom_group, e);
	sample(e, F_HOOKS_DEAD_LETTERS, jnum(rd, "hooks_dead"), 0, NULL);
}

static void
prom_nodes(struct expo *e, jv src, enum fam up, enum fam primary,
    enum fam offset, enum fam lag_bytes, enum fam lag_s)
{
	jv ns = jget(src, "nodes"), nd;
	char name[300], role[32];
	int i, n = jlen(ns);

	for (i = 0; i < n; i++) {
		nd = jv_array_get(jv_copy(ns), i);
		jstr(nd, "node", name, sizeof name);
		if (up != F_COUNT)
			sample(e, up, jtrue(nd, "up"), 0, "node", name, NULL);
		if (jv_get_kind(jget(nd, "up")) != JV_KIND_FALSE) {
			jstr(nd, "role", role, sizeof role);
			sample(e, primary, strcmp(role, "primary") == 0, 0,
			    "node", name, NULL);
			if (offset != F_COUNT)
				sample(e, offset, jnum(nd, "offset"), 0, "node",
				    name, NULL);
			sample(e, lag_bytes, jnum(nd, "lag_bytes"), 0, "node",
			    name, NULL);
			sample(e, lag_s, jnum(nd, "lag_s"), 0, "node", name,
			    NULL);
		}
		jv_free(nd);
	}
	jv_free(ns);
}

static void
prom_bouncers(struct expo *e, jv bs)
{
	static const char *const sv[] = { "active", "idle", "used", "tested",
		"login" };
	char name[300], db[256], user[256], key[32];
	jv bo, ps, p;
	int i, j, k, n = jlen(bs), m;

	for (i = 0; i < n; i++) {
		bo = jv_array_get(jv_copy(bs), i);
		jstr(bo, "name", name, sizeof name);
		sample(e, F_BNC_UP, jtrue(bo, "up"), 0, "pgbouncer", name, NULL);
		ps = jget(bo, "pools");
		m = jlen(ps);
		for (j = 0; j < m; j++) {
			p = jv_array_get(jv_copy(ps), j);
			jstr(p, "database", db, sizeof db);
			jstr(p, "user", user, sizeof user);
#define BNC(f, v, ...) sample(e, (f), (v), 0, "pgbouncer", name, "database", \
	db, "user", user, __VA_ARGS__)
			BNC(F_BNC_CLIENTS, jnum(p, "cl_active"), "state",
			    "active", NULL);
			BNC(F_BNC_CLIENTS, jnum(p, "cl_waiting"), "state",
			    "waiting", NULL);
			for (k = 0; k < 5; k++) {
				snprintf(key, sizeof key, "sv_%s", sv[k]);
				BNC(F_BNC_SERVERS, jnum(p, key), "state", sv[k],
				    NULL);
			}
			BNC(F_BNC_POOL_SIZE, jnum(p, "pool_size"), NULL);
			BNC(F_BNC_MAXWAIT, jnum(p, "maxwait_us") / 1e6, NULL);
#undef BNC
			jv_free(p);
		}
		jv_free(ps);
		jv_free(bo);
	}
}

static void
prom_sentinels(struct expo *e, jv rd)
{
	jv ss = jget(rd, "sentinels"), s;
	char name[300], prim[300];
	int i, n = jlen(ss);

	for (i = 0; i < n; i++) {
		s = jv_array_get(jv_copy(ss), i);
		jstr(s, "sentinel", name, sizeof name);
		sample(e, F_SENTINEL_UP, jtrue(s, "up"), 0, "sentinel", name,
		    NULL);
		if (jtrue(s, "up")) {
			sample(e, F_SENTINEL_PRIMARY, 1, 0, "sentinel", name,
			    "node", jstr(s, "primary", prim, sizeof prim), NULL);
			sample(e, F_SENTINEL_QUORUM, jnum(s, "quorum"), 0,
			    "sentinel", name, NULL);
			sample(e, F_SENTINEL_SENTINELS,
			    jnum(s, "other_sentinels") + 1, 0, "sentinel", name,
			    NULL);
		}
		jv_free(s);
	}
	jv_free(ss);
}

void
show_prometheus(struct sbuf *b, const struct ps_cfg *c, jv tick,
    const struct raw *raw)
{
	struct expo e;
	jv ds, d, src;
	int i, n;

	memset(&e, 0, sizeof e);
	ds = jget(tick, "daemons");
	n = jlen(ds);
	for (i = 0; i < n; i++) {
		d = jv_array_get(jv_copy(ds), i);
		prom_daemon(&e, d);
		jv_free(d);
	}
	jv_free(ds);
	src = jget(tick, "postgres");
	if (!c->no_postgres && jv_get_kind(src) == JV_KIND_OBJECT) {
		prom_postgres(&e, src, raw);
		prom_nodes(&e, src, F_PG_NODE_UP, F_PG_NODE_PRIMARY, F_COUNT,
		    F_PG_NODE_LAG_BYTES, F_PG_NODE_LAG_S);
	}
	jv_free(src);
	src = jget(tick, "pgbouncers");
	prom_bouncers(&e, src);
	jv_free(src);
	src = jget(tick, "redis");
	if (!c->no_redis && jv_get_kind(src) == JV_KIND_OBJECT) {
		prom_redis(&e, src, raw);
		if (jtrue(src, "up")) {
			prom_nodes(&e, src, F_COUNT, F_REDIS_NODE_PRIMARY,
			    F_REDIS_NODE_OFFSET, F_REDIS_NODE_LAG_BYTES,
			    F_REDIS_NODE_LAG_S);
			sample(&e, F_REDIS_REPLICAS, jnum(src,
			    "connected_replicas"), 0, NULL);
		}
		prom_sentinels(&e, src);
	}
	jv_free(src);
	for (i = 0; i < F_COUNT; i++) {
		if (e.s[i].len == 0)
			continue;
		sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s", fams[i].name,
		    fams[i].help, fams[i].name, fams[i].type, e.s[i].s);
		sb_free(&e.s[i]);
	}
}
