/* slo.c: --slo 'METRIC OP VALUE,...': the targets a run passes or fails,
 * on the whole run and on each stage. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "loadgen.h"
#include "prog.h"

enum kind { M_LAT, M_PCT, M_COUNT };

static const struct metric {
	const char *name;
	enum kind kind;
	int e2e;		/* of the e2e histogram, else of ack */
	double pct;		/* percentile; 100 for the max */
} metrics[] = {
	{ "ack_max",	M_LAT, 0, 100 },
	{ "ack_p50",	M_LAT, 0, 50 },
	{ "ack_p90",	M_LAT, 0, 90 },
	{ "ack_p99",	M_LAT, 0, 99 },
	{ "ack_p999",	M_LAT, 0, 99.9 },
	{ "ack_p9999",	M_LAT, 0, 99.99 },
	{ "delivery",	M_PCT, 0, 0 },
	{ "duplicated",	M_COUNT, 0, 0 },
	{ "e2e_max",	M_LAT, 1, 100 },
	{ "e2e_p50",	M_LAT, 1, 50 },
	{ "e2e_p90",	M_LAT, 1, 90 },
	{ "e2e_p99",	M_LAT, 1, 99 },
	{ "e2e_p999",	M_LAT, 1, 99.9 },
	{ "e2e_p9999",	M_LAT, 1, 99.99 },
	{ "errors",	M_COUNT, 0, 0 },
	{ "lost",	M_COUNT, 0, 0 },
	{ "missing",	M_COUNT, 0, 0 },
};

static const struct metric *
metric_of(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof metrics / sizeof metrics[0]; i++)
		if (strcmp(metrics[i].name, name) == 0)
			return &metrics[i];
	return NULL;
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int
parse_term(char *term, struct lg_slo *s, char *err, size_t errlen)
{
	char *t = trim(term), *op, *val, *end;
	const struct metric *m;
	size_t ol;
	double v;

	if (*t == '\0') {
		snprintf(err, errlen, "an empty term");
		return -1;
	}
	snprintf(s->expr, sizeof s->expr, "%s", t);
	op = strpbrk(t, "<>=");
	if (op == NULL) {
		snprintf(err, errlen, "no operator (< <= > >= =) in '%s'",
		    s->expr);
		return -1;
	}
	ol = (op[0] != '=' && op[1] == '=') ? 2 : 1;
	memcpy(s->op, op, ol);
	s->op[ol] = '\0';
	val = trim(op + ol);
	*op = '\0';
	t = trim(t);
	m = metric_of(t);
	if (m == NULL) {
		snprintf(err, errlen, "unknown metric '%s' in '%s'", t, s->expr);
		return -1;
	}
	snprintf(s->metric, sizeof s->metric, "%s", t);
	errno = 0;
	v = strtod(val, &end);
	if (end == val || errno != 0 || !isfinite(v) || v < 0 ||
	    *val == '+' || *val == '-') {
		snprintf(err, errlen, "bad value '%s' in '%s'", val, s->expr);
		return -1;
	}
	end = trim(end);
	switch (m->kind) {
	case M_LAT:
		if (strcmp(end, "us") == 0) {
			s->unit = U_US;
		} else if (strcmp(end, "ms") == 0) {
			s->unit = U_MS;
			v *= 1e3;
		} else if (strcmp(end, "s") == 0) {
			s->unit = U_S;
			v *= 1e6;
		} else {
			snprintf(err, errlen, "'%s' needs a unit: us, ms or s",
			    s->expr);
			return -1;
		}
		break;
	case M_PCT:
		if (*end != '\0' && strcmp(end, "%") != 0) {
			snprintf(err, errlen, "'%s': delivery is a percentage",
			    s->expr);
			return -1;
		}
		if (v > 100) {
			snprintf(err, errlen, "'%s': at most 100%%", s->expr);
			return -1;
		}
		s->unit = U_PCT;
		break;
	case M_COUNT:
		if (*end != '\0' || v != floor(v)) {
			snprintf(err, errlen, "'%s': %s is a count", s->expr,
			    s->metric);
			return -1;
		}
		s->unit = U_COUNT;
		break;
	}
	s->value = v;
	return 0;
}

int
slo_parse(const char *list, struct lg_slo *out, int *n, char *err,
    size_t errlen)
{
	char *copy = strdup(list), *term, *p;
	int count = 0;

	if (copy == NULL)
		die_nomem();
	if (*trim(copy) == '\0') {
		snprintf(err, errlen, "no terms");
		free(copy);
		return -1;
	}
	/* strtok_r would pass over an empty term between two commas */
	for (term = copy; term != NULL; term = p) {
		p = strchr(term, ',');
		if (p)
			*p++ = '\0';
		if (count == LG_MAX_SLO) {
			snprintf(err, errlen, "more than %d terms", LG_MAX_SLO);
			free(copy);
			return -1;
		}
		memset(&out[count], 0, sizeof out[count]);
		if (parse_term(term, &out[count], err, errlen) < 0) {
			free(copy);
			return -1;
		}
		count++;
	}
	free(copy);
	*n = count;
	return 0;
}

static int
holds(double v, const char *op, double want)
{
	if (strcmp(op, "<") == 0)
		return v < want;
	if (strcmp(op, "<=") == 0)
		return v <= want;
	if (strcmp(op, ">") == 0)
		return v > want;
	if (strcmp(op, ">=") == 0)
		return v >= want;
	return v == want;
}

struct lg_slo_result
slo_eval(const struct lg *lg, const struct lg_slo *s, int stage)
{
	const struct lg_metrics *m = stage < 0 ? &lg->total : &lg->st[stage];
	const struct metric *mt = metric_of(s->metric);
	struct lg_slo_result r = { 0, 0, 0, NULL };
	const struct hist *h;

	switch (mt->kind) {
	case M_LAT:
		h = mt->e2e ? m->e2e : m->ack;
		if (h == NULL || h->count == 0) {
			r.why = mt->e2e ? (lg->ndash == 0 ? "no dashboards" :
			    "no dashboard received an event") :
			    "no request was acknowledged";
			return r;
		}
		r.value = (double)(mt->pct >= 100 ? h->max :
		    hist_percentile(h, mt->pct));
		break;
	case M_PCT:
		r.value = m->delivery_pct;
		break;
	case M_COUNT:
		if (strcmp(s->metric, "lost") == 0) {
			r.value = (double)m->ev_lost;
		} else if (strcmp(s->metric, "errors") == 0) {
			r.value = (double)slo_errors(m);
		} else {
			if (!lg->verify.done) {
				r.why = lg->cfg.verify_db ?
				    "the database check failed" :
				    "needs --verify-db";
				return r;
			}
			r.value = (double)(strcmp(s->metric, "missing") == 0 ?
			    m->missing : m->duplicated);
		}
		break;
	}
	r.measured = 1;
	r.ok = holds(r.value, s->op, s->value);
	return r;
}

void
slo_format_value(char *buf, size_t len, const struct lg_slo *s, double v)
{
	switch (s->unit) {
	case U_US:
		snprintf(buf, len, "%.0fus", v);
		break;
	case U_MS:
		v /= 1e3;
		snprintf(buf, len, v >= 100 ? "%.0fms" : v >= 10 ? "%.1fms" :
		    "%.2fms", v);
		break;
	case U_S:
		v /= 1e6;
		snprintf(buf, len, v >= 100 ? "%.0fs" : v >= 10 ? "%.1fs" :
		    "%.3fs", v);
		break;
	case U_PCT:
		snprintf(buf, len, "%.2f%%", v);
		break;
	case U_COUNT:
		snprintf(buf, len, "%.0f", v);
		break;
	}
}

uint64_t
slo_errors(const struct lg_metrics *m)
{
	return m->err_connect + m->err_timeout + m->err_reset + m->st_4xx +
	    m->st_5xx + m->st_other;
}
