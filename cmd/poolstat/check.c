/* check.c: the figures of a tick that thresholds judge, the expressions of
 * --warn and --crit, and the one line of a monitoring plugin. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "poolstat.h"

static const struct metric_info {
	const char *name;
	const char *key;	/* in a tick's summary */
	enum unit unit;		/* what a bare number is */
	int pct;		/* takes % */
	int time;		/* takes us, ms, s */
	int secs;		/* in seconds: takes s, ms */
} metrics[M_COUNT] = {
	[M_POOL_UTIL]	 = { "pool_util", "pool_util_pct", U_PCT, 1, 0 },
	[M_QUEUE_UTIL]	 = { "queue_util", "queue_util_pct", U_PCT, 1, 0 },
	[M_CL_WAITING]	 = { "cl_waiting", "cl_waiting", U_NONE, 0, 0 },
	[M_MAXWAIT]	 = { "maxwait", "maxwait_us", U_US, 0, 1 },
	[M_STREAM_LAG]	 = { "stream_lag", "stream_lag", U_NONE, 0, 0 },
	[M_PENDING]	 = { "pending", "pending", U_NONE, 0, 0 },
	[M_DELIVERY]	 = { "delivery", "delivery_pct", U_PCT, 1, 0 },
	[M_DAEMONS_DOWN] = { "daemons_down", "daemons_down", U_NONE, 0, 0 },
	[M_HOOKS_DEAD]	 = { "hooks_dead", "hooks_dead", U_NONE, 0, 0 },
	[M_REPLICA_LAG]	 = { "replica_lag", "replica_lag_s", U_S, 0, 0, 1 },
	[M_REDIS_REPLICAS] = { "redis_replicas", "redis_replicas", U_NONE, 0, 0 },
};

static const char *const ops[] = { ">", ">=", "<", "<=" };

static void
take_max(struct figures *f, enum metric m, double x, const char *where)
{
	if (isnan(x) || !(isnan(f->v[m]) || x > f->v[m]))
		return;
	f->v[m] = x;
	snprintf(f->where[m], sizeof f->where[m], "%.*s",
	    (int)sizeof f->where[m] - 1, where);
}

static double
add(double sum, double x)
{
	if (isnan(x))
		return sum;
	return isnan(sum) ? x : sum + x;
}

/* x of max as a percentage; NAN when either is missing or there is no
 * bound. */
static double
pct_of(double x, double max)
{
	return isnan(x) || isnan(max) || !(max > 0) ? NAN :
	    round_to(x * 100 / max, 2);
}

/* The fullness of ingest's queues, past which it answers 503: its
 * requests waiting for Redis against --max-inflight, the stream's backlog
 * against --max-backlog and --max-backlog-bytes (full, by ingest's own
 * poll, is 100%). Other daemons' queues are no bound they refuse work at:
 * batch-commit's batch is meant to fill. */
static void
ingest_queues(jv d, const char *name, struct figures *f)
{
	jv q = jget(d, "queue"), st = jget(d, "stats"), bl = jget(st, "backlog");
	char where[600];
	double x, y;

	snprintf(where, sizeof where, "%s queue", name);
	take_max(f, M_QUEUE_UTIL, pct_of(jnum(q, "depth"), jnum(q, "max")),
	    where);
	snprintf(where, sizeof where, "%s backlog", name);
	x = pct_of(jnum(bl, "entries"), jnum(bl, "max"));
	y = pct_of(jnum(bl, "bytes"), jnum(bl, "max_bytes"));
	if (!isnan(y) && (isnan(x) || y > x))
		x = y;
	if (jtrue(bl, "full") && !(x >= 100))
		x = 100;
	take_max(f, M_QUEUE_UTIL, x, where);
	jv_free(q);
	jv_free(bl);
	jv_free(st);
}

static void
pool_figures(void *arg, const char *name, const char *pool, jv p)
{
	struct figures *f = arg;
	char where[600];
	double x;

	snprintf(where, sizeof where, "%s %s", name, pool);
	take_max(f, M_POOL_UTIL, jnum(p, "util_pct"), where);
	take_max(f, M_MAXWAIT, jnum(p, "maxwait_us"), where);
	x = jnum(p, "cl_waiting");
	if (!isnan(x))
		f->v[M_CL_WAITING] += x;
}

static void
daemon_figures(jv d, struct figures *f)
{
	jv dl = jget(d, "delivery"), st, hk;
	char name[256], kind[32];
	double x;

	daemon_label(d, name, sizeof name);
	daemon_kind(d, kind, sizeof kind);
	each_pool(d, pool_figures, f);
	if (strcmp(kind, "notify") == 0) {
		st = jget(d, "stats");
		hk = jget(st, "hooks");
		if (jv_get_kind(hk) == JV_KIND_OBJECT)
			f->hooks_held = add(add(f->hooks_held,
			    jnum(hk, "queued")), jnum(hk, "in_flight"));
		jv_free(hk);
		jv_free(st);
	}
	if (strcmp(kind, "ingest") == 0)
		ingest_queues(d, name, f);
	if (jv_get_kind(dl) == JV_KIND_OBJECT) {
		if (strcmp(kind, "notify") == 0) {
			x = jnum(dl, "share_pct");
			if (!isnan(x) && (isnan(f->v[M_DELIVERY]) ||
			    x < f->v[M_DELIVERY])) {
				f->v[M_DELIVERY] = x;
				snprintf(f->where[M_DELIVERY],
				    sizeof f->where[M_DELIVERY], "%s", name);
			}
			f->msgs_s = add(f->msgs_s, jnum(dl, "out_per_s"));
		} else if (strcmp(kind, "ingest") == 0)
			f->in_s = add(f->in_s, jnum(dl, "in_per_s"));
		else if (strcmp(kind, "batch-commit") == 0)
			f->rows_s = add(f->rows_s, jnum(dl, "out_per_s"));
	}
	jv_free(dl);
}

static void
group_figures(void *arg, jv s, const char *stream, jv g, const char *group)
{
	struct figures *f = arg;
	char where[600];
	double x;

	(void)s;
	if (group == NULL)
		return;
	snprintf(where, sizeof where, "%s %s", stream, group);
	take_max(f, M_STREAM_LAG, jnum(g, "lag"), where);
	x = jnum(g, "pending");
	take_max(f, M_PENDING, x, where);
	f->pending_total = add(f->pending_total, x);
}

/* PgBouncer's pools count as labpulse's own: a client waiting there
 * waits as one waiting in a daemon. */
static void
bouncer_figures(jv tick, struct figures *f)
{
	jv bs = jget(tick, "pgbouncers"), b, ps, p;
	char name[300], db[256], user[256], where[900];
	double x;
	int i, j, n, m;

	n = jlen(bs);
	for (i = 0; i < n; i++) {
		b = jv_array_get(jv_copy(bs), i);
		ps = jget(b, "pools");
		m = jtrue(b, "up") ? jlen(ps) : 0;
		jstr(b, "name", name, sizeof name);
		for (j = 0; j < m; j++) {
			p = jv_array_get(jv_copy(ps), j);
			snprintf(where, sizeof where, "pgbouncer %s %s/%s", name,
			    jstr(p, "database", db, sizeof db),
			    jstr(p, "user", user, sizeof user));
			take_max(f, M_POOL_UTIL, jnum(p, "util_pct"), where);
			take_max(f, M_MAXWAIT, jnum(p, "maxwait_us"), where);
			x = jnum(p, "cl_waiting");
			if (!isnan(x))
				f->v[M_CL_WAITING] += x;
			jv_free(p);
		}
		jv_free(ps);
		jv_free(b);
	}
	jv_free(bs);
}

/* The node Redis's figures come from, as its nodes name it. */
static const char *
redis_self(jv rd, char *buf, size_t len)
{
	jv ns = jget(rd, "nodes"), nd = jv_array_get(jv_copy(ns), 0);

	if (jv_is_valid(nd) && jv_get_kind(nd) == JV_KIND_OBJECT)
		jstr(nd, "node", buf, len);
	else
		snprintf(buf, len, "server");
	jv_free(nd);
	jv_free(ns);
	return buf;
}

/* The largest lag in seconds of the nodes of src (postgres or redis)
 * whose role is role. */
static void
lag_figures(jv src, const char *what, const char *role, struct figures *f)
{
	jv ns = jget(src, "nodes"), nd;
	char r[32], name[300], where[400];
	int i, n;

	n = jlen(ns);
	for (i = 0; i < n; i++) {
		nd = jv_array_get(jv_copy(ns), i);
		if (!jtrue(src, "up") && strcmp(what, "redis") == 0)
			;
		else if (strcmp(jstr(nd, "role", r, sizeof r), role) == 0) {
			snprintf(where, sizeof where, "%s %s %s", what, role,
			    jstr(nd, "node", name, sizeof name));
			take_max(f, M_REPLICA_LAG, jnum(nd, "lag_s"), where);
		}
		jv_free(nd);
	}
	jv_free(ns);
}

void
figures_of(jv tick, const struct ps_cfg *c, struct figures *f)
{
	jv ds = jget(tick, "daemons"), d, src;
	char name[300];
	int i, n, k;

	memset(f, 0, sizeof *f);
	for (k = 0; k < M_COUNT; k++)
		f->v[k] = NAN;
	f->v[M_CL_WAITING] = 0;
	f->v[M_MAXWAIT] = 0;
	f->pending_total = f->in_s = f->rows_s = f->msgs_s = NAN;
	f->pg_conns = f->pg_util = f->hooks_held = NAN;
	n = jlen(ds);
	for (i = 0; i < n; i++) {
		d = jv_array_get(jv_copy(ds), i);
		f->daemons++;
		if (jtrue(d, "up"))
			daemon_figures(d, f);
		else
			f->down++;
		jv_free(d);
	}
	jv_free(ds);
	f->v[M_DAEMONS_DOWN] = f->down;
	src = jget(tick, "postgres");
	if (!c->no_postgres && jtrue(src, "up")) {
		f->pg_conns = jnum(src, "connections");
		f->pg_util = jnum(src, "util_pct");
		take_max(f, M_POOL_UTIL, f->pg_util, "postgres");
	}
	/* the nodes answer even when the main connection does not */
	if (!c->no_postgres)
		lag_figures(src, "postgres", "standby", f);
	jv_free(src);
	bouncer_figures(tick, f);
	src = jget(tick, "redis");
	if (!c->no_redis && jtrue(src, "up")) {
		each_group(src, group_figures, f);
		f->v[M_HOOKS_DEAD] = jnum(src, "hooks_dead");
		/* a tick recorded before hooks were counted says nothing */
		if (!isnan(f->v[M_HOOKS_DEAD]))
			snprintf(f->where[M_HOOKS_DEAD],
			    sizeof f->where[M_HOOKS_DEAD], "%s",
			    "labpulse:hooks-dead");
		lag_figures(src, "redis", "replica", f);
		f->v[M_REDIS_REPLICAS] = jnum(src, "connected_replicas");
		if (!isnan(f->v[M_REDIS_REPLICAS]))
			snprintf(f->where[M_REDIS_REPLICAS],
			    sizeof f->where[M_REDIS_REPLICAS], "redis %s",
			    redis_self(src, name, sizeof name));
	}
	jv_free(src);
}

jv
figures_json(const struct figures *f)
{
	jv o = jv_object();
	int m;

	o = jv_object_set(o, jv_string("daemons"), jv_number(f->daemons));
	o = jv_object_set(o, jv_string("daemons_down"), jv_number(f->down));
	for (m = 0; m < M_COUNT; m++)
		if (m != M_DAEMONS_DOWN)
			o = jv_object_set(o, jv_string(metrics[m].key),
			    num_or_null(f->v[m]));
	return o;
}

/* ---- expressions ---- */

static void
set_th(struct threshold *t, int op, double v, enum unit u)
{
	t->set = 1;
	t->op = op;
	t->value = v;
	t->unit = u;
}

/* One condition, METRIC OP NUMBER[UNIT], of len bytes at s. */
static int
parse_cond(struct threshold *th, const char *s, size_t len, const char *expr,
    char *err, size_t errlen)
{
	const struct metric_info *mi;
	char cond[256], num[64], *p, *end;
	size_t n;
	int m, op;
	double v;
	enum unit u;

	if (len == 0) {
		snprintf(err, errlen, "empty condition in '%s'", expr);
		return -1;
	}
	if (len >= sizeof cond) {
		snprintf(err, errlen, "condition too long in '%s'", expr);
		return -1;
	}
	memcpy(cond, s, len);
	cond[len] = '\0';
	n = strspn(cond, "abcdefghijklmnopqrstuvwxyz_");
	if (n == 0) {
		snprintf(err, errlen, "no metric in '%s' of '%s'", cond, expr);
		return -1;
	}
	for (m = 0; m < M_COUNT; m++)
		if (strlen(metrics[m].name) == n &&
		    strncmp(cond, metrics[m].name, n) == 0)
			break;
	if (m == M_COUNT) {
		snprintf(err, errlen, "unknown metric '%.*s' in '%s'", (int)n,
		    cond, expr);
		return -1;
	}
	mi = &metrics[m];
	p = cond + n;
	if (p[0] == '>' || p[0] == '<') {
		op = p[0] == '>' ? OP_GT : OP_LT;
		if (p[1] == '=') {
			op++;
			p++;
		}
		p++;
	} else {
		snprintf(err, errlen, "no operator (>, >=, < or <=) after '%s' "
		    "in '%s'", mi->name, expr);
		return -1;
	}
	n = strspn(p, "0123456789.");
	if (n == 0 || n >= sizeof num) {
		snprintf(err, errlen, "no number after '%s%s' in '%s'",
		    mi->name, ops[op], expr);
		return -1;
	}
	memcpy(num, p, n);
	num[n] = '\0';
	v = strtod(num, &end);
	if (*end != '\0' || num[0] == '.' || num[n - 1] == '.' ||
	    strchr(num, '.') != strrchr(num, '.')) {
		snprintf(err, errlen, "bad number '%s' in '%s'", num, expr);
		return -1;
	}
	p += n;
	u = mi->unit;
	if (*p == '\0')
		;
	else if (mi->secs && strcmp(p, "s") == 0)
		u = U_S;
	else if (mi->secs && strcmp(p, "ms") == 0) {
		u = U_MS;
		v /= 1000;
	} else if (strcmp(p, "%") == 0 && mi->pct)
		u = U_PCT;
	else if (strcmp(p, "us") == 0 && mi->time)
		u = U_US;
	else if (strcmp(p, "ms") == 0 && mi->time) {
		u = U_MS;
		v *= 1000;
	} else if (strcmp(p, "s") == 0 && mi->time) {
		u = U_S;
		v *= 1000000;
	} else {
		snprintf(err, errlen, "%s takes %s, not '%s', in '%s'",
		    mi->name, mi->pct ? "a number or a %" : mi->time ?
		    "a number of us, ms or s" : mi->secs ?
		    "a number of seconds, or of s or ms" : "a bare number", p,
		    expr);
		return -1;
	}
	set_th(&th[m], op, v, u);
	return 0;
}

int
check_parse(struct threshold *th, const char *expr, char *err, size_t errlen)
{
	const char *s = expr, *comma;

	for (;;) {
		comma = strchr(s, ',');
		if (parse_cond(th, s, comma ? (size_t)(comma - s) : strlen(s),
		    expr, err, errlen) < 0)
			return -1;
		if (comma == NULL)
			return 0;
		s = comma + 1;
	}
}

/* ---- judging ---- */

const char *
check_state_word(int state)
{
	static const char *const words[] = { "OK", "WARNING", "CRITICAL",
		"UNKNOWN" };

	return words[state >= 0 && state <= ST_UNKNOWN ? state : ST_UNKNOWN];
}

static int
holds(const struct threshold *t, double x)
{
	if (!t->set || isnan(x))
		return 0;
	switch (t->op) {
	case OP_GT: return x > t->value;
	case OP_GE: return x >= t->value;
	case OP_LT: return x < t->value;
	default:    return x <= t->value;
	}
}

/* x, in the metric's own unit, said in unit u. */
static const char *
say(double x, enum unit u, char *buf, size_t len)
{
	char n[64];

	switch (u) {
	case U_PCT:
		snprintf(buf, len, "%s%%", fmt_num(x, n, sizeof n));
		break;
	case U_US:
		snprintf(buf, len, "%sus", fmt_num(x, n, sizeof n));
		break;
	case U_MS:
		snprintf(buf, len, "%sms", fmt_num(x / 1000, n, sizeof n));
		break;
	case U_S:
		snprintf(buf, len, "%ss", fmt_num(x / 1000000, n, sizeof n));
		break;
	default:
		snprintf(buf, len, "%s", fmt_num(x, n, sizeof n));
	}
	return buf;
}

/* x of metric m, said in unit u: a metric in seconds, in seconds. */
static const char *
say_metric(int m, double x, enum unit u, char *buf, size_t len)
{
	char n[64];

	if (!metrics[m].secs)
		return say(x, u, buf, len);
	snprintf(buf, len, "%ss", fmt_num(x, n, sizeof n));
	return buf;
}

static void __attribute__((format(printf, 2, 3)))
reason(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;

	if (b->len)
		sb_printf(b, "; ");
	va_start(ap, fmt);
	sb_vprintf(b, fmt, ap);
	va_end(ap);
}

static void
down_reasons(jv tick, struct sbuf *b)
{
	jv ds = jget(tick, "daemons"), d;
	char name[256];
	int i, n;

	n = jlen(ds);
	for (i = 0; i < n; i++) {
		d = jv_array_get(jv_copy(ds), i);
		if (!jtrue(d, "up"))
			reason(b, "daemon %s down", daemon_label(d, name,
			    sizeof name));
		jv_free(d);
	}
	jv_free(ds);
}

static void
source_reason(jv tick, const char *key, const char *what, struct sbuf *b)
{
	jv src = jget(tick, key);
	char err[1024];

	if (!jtrue(src, "up"))
		reason(b, "%s unreachable: %s", what, jstr(src, "error", err,
		    sizeof err)[0] ? err : "no figures");
	jv_free(src);
}

/* The reasons of each state, warn and crit; returns the worst state. */
static int
judge(const struct ps_cfg *c, jv tick, const char *note,
    const struct figures *f, struct sbuf *r)
{
	const struct threshold *t;
	char val[64], thr[64];
	int m, level;
	enum unit u;

	if (f->daemons == 0)
		reason(&r[L_CRIT], "no daemon found%s%s", note && *note ?
		    ": " : "", note ? note : "");
	if (holds(&c->th[L_CRIT][M_DAEMONS_DOWN], f->v[M_DAEMONS_DOWN]))
		down_reasons(tick, &r[L_CRIT]);
	else if (holds(&c->th[L_WARN][M_DAEMONS_DOWN], f->v[M_DAEMONS_DOWN]))
		down_reasons(tick, &r[L_WARN]);
	if (!c->no_postgres)
		source_reason(tick, "postgres", "postgres", &r[L_CRIT]);
	if (!c->no_redis)
		source_reason(tick, "redis", "redis", &r[L_CRIT]);
	for (m = 0; m < M_COUNT; m++) {
		if (m == M_DAEMONS_DOWN)
			continue;
		level = holds(&c->th[L_CRIT][m], f->v[m]) ? L_CRIT :
		    holds(&c->th[L_WARN][m], f->v[m]) ? L_WARN : -1;
		if (level < 0)
			continue;
		t = &c->th[level][m];
		u = metrics[m].unit == U_PCT ? U_PCT : t->unit;
		reason(&r[level], "%s %s %s %s%s%s%s", metrics[m].name,
		    say_metric(m, f->v[m], u, val, sizeof val), ops[t->op],
		    say_metric(m, t->value, u, thr, sizeof thr),
		    f->where[m][0] ? " (" : "", f->where[m],
		    f->where[m][0] ? ")" : "");
	}
	return r[L_CRIT].len ? ST_CRITICAL : r[L_WARN].len ? ST_WARNING :
	    ST_OK;
}

static void
all_well(const struct figures *f, struct sbuf *b)
{
	if (f->down == 0)
		sb_printf(b, "all %d daemons up, pools and queues within "
		    "limits", f->daemons);
	else
		sb_printf(b, "%d of %d daemons up, pools and queues within "
		    "limits", f->daemons - f->down, f->daemons);
}

int
check_state(const struct ps_cfg *c, jv tick, const char *note,
    struct sbuf *reasons)
{
	struct sbuf r[2] = { { NULL, 0, 0 }, { NULL, 0, 0 } };
	struct figures f;
	int state;

	figures_of(tick, c, &f);
	state = judge(c, tick, note, &f, r);
	if (state == ST_OK)
		all_well(&f, reasons);
	else
		sb_printf(reasons, "%s", r[state == ST_CRITICAL ? L_CRIT :
		    L_WARN].s);
	sb_free(&r[0]);
	sb_free(&r[1]);
	return state;
}

/* LABEL=VALUE[UOM];WARN;CRIT, in the UOM of the guidelines: %, a count,
 * or ms for maxwait. */
static void
perfdata(const struct ps_cfg *c, const struct figures *f, struct sbuf *b)
{
	const char *uom;
	double scale;
	char n[64];
	int m, level;

	for (m = 0; m < M_COUNT; m++) {
		uom = metrics[m].pct ? "%" : metrics[m].time ? "ms" :
		    metrics[m].secs ? "s" : "";
		scale = metrics[m].time ? 1000 : 1;
		sb_printf(b, " %s=", metrics[m].name);
		if (isnan(f->v[m]))
			sb_printf(b, "U");
		else
			sb_printf(b, "%s%s", fmt_num(f->v[m] / scale, n,
			    sizeof n), uom);
		for (level = L_WARN; level <= L_CRIT; level++)
			sb_printf(b, ";%s", !c->th[level][m].set ? "" :
			    fmt_num(c->th[level][m].value / scale, n, sizeof n));
	}
}

int
check_judge(const struct ps_cfg *c, jv tick, const char *note,
    struct sbuf *line)
{
	struct sbuf reasons = { NULL, 0, 0 };
	struct figures f;
	int state;

	state = check_state(c, tick, note, &reasons);
	figures_of(tick, c, &f);
	sb_printf(line, "POOLSTAT %s - %s |", check_state_word(state),
	    reasons.s);
	perfdata(c, &f, line);
	sb_free(&reasons);
	return state;
}
