/* report.c: what a run tells: the summary on stdout, and --json, --csv and
 * --html (one page, no network: inline CSS and SVG). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "loadgen.h"

static const double pcts[] = { 0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99,
    99.9, 99.99, 99.999, 100 };

void
fmt_us(char *buf, size_t len, double us)
{
	if (us < 1000)
		snprintf(buf, len, "%.0fus", us);
	else if (us < 10000)
		snprintf(buf, len, "%.2fms", us / 1e3);
	else if (us < 100000)
		snprintf(buf, len, "%.1fms", us / 1e3);
	else if (us < 1e6)
		snprintf(buf, len, "%.0fms", us / 1e3);
	else
		snprintf(buf, len, "%.2fs", us / 1e6);
}

static uint64_t
pct_of(const struct hist *h, double p)
{
	if (h == NULL || h->count == 0)
		return 0;
	if (p <= 0)
		return h->min;
	return p >= 100 ? h->max : hist_percentile(h, p);
}

static double
round3(double x)
{
	return round(x * 1000) / 1000;
}

static double
per_s(uint64_t n, double s)
{
	return s > 0 ? (double)n / s : 0;
}

static const char *
unit_name(enum lg_unit u)
{
	switch (u) {
	case U_US:
	case U_MS:
	case U_S:
		return "us";
	case U_PCT:
		return "%";
	default:
		return "count";
	}
}

/* ---- the summary ---- */

static void
lat_row(FILE *f, const char *name, const struct hist *h)
{
	static const double p[] = { 50, 90, 99, 99.9, 99.99, 100 };
	char v[32];
	size_t i;

	fprintf(f, "  %-22s", name);
	for (i = 0; i < sizeof p / sizeof p[0]; i++) {
		fmt_us(v, sizeof v, (double)pct_of(h, p[i]));
		fprintf(f, " %9s", h && h->count ? v : "-");
	}
	fprintf(f, " %9llu\n", (unsigned long long)(h ? h->count : 0));
}

static void
stage_name(const struct lg *lg, int s, char *buf, size_t len)
{
	if (s < 0)
		snprintf(buf, len, "total");
	else if (lg->model == MODEL_CLOSED)
		snprintf(buf, len, "stage %d (%g students)", s, lg->st[s].value);
	else
		snprintf(buf, len, "stage %d (%g/s)", s, lg->st[s].value);
}

static void
throughput_row(FILE *f, const struct lg *lg, int s)
{
	const struct lg_metrics *m = s < 0 ? &lg->total : &lg->st[s];
	double d = m->duration_s;
	char name[16];

	if (s < 0)
		snprintf(name, sizeof name, "total");
	else
		snprintf(name, sizeof name, "%d", s);
	fprintf(f, "  %-6s %8g %7.1f %9.1f %9.1f %9.1f %9.1f %8llu %8llu "
	    "%7llu\n", name, m->value, d, per_s(lg->model == MODEL_OPEN ?
	    m->due : m->sent, d), per_s(m->ok, m->busy_s), per_s(m->ev_sent, d),
	    per_s(m->ev_acked, m->busy_s), (unsigned long long)m->sent,
	    (unsigned long long)m->ev_acked, (unsigned long long)m->ev_lost);
}

static void
status_row(FILE *f, const struct lg *lg, int s)
{
	const struct lg_metrics *m = s < 0 ? &lg->total : &lg->st[s];
	char name[16];

	if (s < 0)
		snprintf(name, sizeof name, "total");
	else
		snprintf(name, sizeof name, "%d", s);
	fprintf(f, "  %-6s %8llu %6llu %6llu %6llu %8llu %8llu %8llu",
	    name, (unsigned long long)m->st_2xx,
	    (unsigned long long)m->st_4xx, (unsigned long long)m->st_5xx,
	    (unsigned long long)m->st_other,
	    (unsigned long long)m->err_connect,
	    (unsigned long long)m->err_timeout,
	    (unsigned long long)m->err_reset);
	if (lg->model == MODEL_OPEN)
		fprintf(f, " %8llu", (unsigned long long)m->unsent);
	fputc('\n', f);
}

static void
slo_line(FILE *f, const struct lg_slo *s, const struct lg_slo_result *r)
{
	char v[48];

	if (!r->measured) {
		fprintf(f, "SLO failed: %s (not measured: %s)\n", s->expr, r->why);
		return;
	}
	slo_format_value(v, sizeof v, s, r->value);
	fprintf(f, "SLO %s: %s (measured %s)\n", r->ok ? "ok" : "failed",
	    s->expr, v);
}

void
report_text(struct lg *lg, FILE *f)
{
	const struct lg_cfg *c = &lg->cfg;
	char v1[32], v2[32], name[64];
	int s, j, k;

	fprintf(f, "labpulse loadgen: run %s, seed %ld, %s model\n",
	    lg->run_id, c->seed, lg->model == MODEL_OPEN ? "open" : "closed");
	if (lg->model == MODEL_CLOSED)
		fprintf(f, "  %ld students in %ld classes, think %g, batch %ld, "
		    "%ld connections\n", c->students, c->classes, c->think,
		    c->batch, c->conns);
	else
		fprintf(f, "  %g requests/s at most, %ld students in %ld "
		    "classes, batch %ld, %ld connections\n", c->rate,
		    c->students, c->classes, c->batch, c->conns);
	fprintf(f, "  ingest %s", c->url);
	if (lg->ndash > 0)
		fprintf(f, ", notify %s, %d dashboards (%s)", c->notify,
		    lg->ndash, c->dproto == DPROTO_WS ? "ws" :
		    c->dproto == DPROTO_SSE ? "sse" : "mixed");
	fprintf(f, "\n");
	if (lg->interrupted)
		fprintf(f, "  interrupted after %.1f s of the %.1f s planned\n",
		    lg->total.duration_s, (double)lg->plan_end[lg->nstages - 1] /
		    1e6);
	fputc('\n', f);

	fprintf(f, "%-31s%-20s%s\n", "throughput", "requests/s", "events/s");
	fprintf(f, "  %-6s %8s %7s %9s %9s %9s %9s %8s %8s %7s\n", "stage",
	    lg->model == MODEL_CLOSED ? "students" : "rate", "secs",
	    "offered", "achieved", "offered", "achieved", "requests",
	    "acked", "lost");
	if (lg->stages_run > 1)
		for (s = 0; s < lg->stages_run; s++)
			throughput_row(f, lg, s);
	throughput_row(f, lg, -1);
	fprintf(f, "\nstatus and errors\n  %-6s %8s %6s %6s %6s %8s %8s %8s%s\n",
	    "stage", "2xx", "4xx", "5xx", "other", "connect", "timeout",
	    "reset", lg->model == MODEL_OPEN ? "   unsent" : "");
	if (lg->stages_run > 1)
		for (s = 0; s < lg->stages_run; s++)
			status_row(f, lg, s);
	status_row(f, lg, -1);

	fprintf(f, "\nlatency %16s %9s %9s %9s %9s %9s %9s %9s\n", "", "p50",
	    "p90", "p99", "p99.9", "p99.99", "max", "count");
	for (k = lg->stages_run > 1 ? 0 : lg->stages_run; k <= lg->stages_run;
	    k++) {
		const struct lg_metrics *m;

		s = k == lg->stages_run ? -1 : k;
		m = s < 0 ? &lg->total : &lg->st[s];
		if (s < 0)
			snprintf(v1, sizeof v1, "total");
		else
			snprintf(v1, sizeof v1, "stage %d", s);
		snprintf(name, sizeof name, "ack %s", v1);
		lat_row(f, name, m->ack);
		if (lg->model == MODEL_OPEN)
			lat_row(f, "  uncorrected", m->ack_unc);
		if (lg->ndash > 0) {
			snprintf(name, sizeof name, "e2e %s", v1);
			lat_row(f, name, m->e2e);
		}
	}
	if (lg->model == MODEL_OPEN)
		fprintf(f, "  (ack counted from each request's due time; "
		    "uncorrected: from when it was sent)\n");

	if (lg->ndash > 0) {
		fprintf(f, "\ndashboards\n  %-4s %-12s %-5s %9s %9s %6s %7s "
		    "%9s %9s %9s  %s\n", "#", "class", "proto", "expected",
		    "received", "dup", "alerts", "delivery", "e2e p50",
		    "e2e p99", "state");
		for (j = 0; j < lg->ndash; j++) {
			const struct lg_dash *d = &lg->dash[j];
			char state[200];

			fmt_us(v1, sizeof v1, (double)pct_of(d->e2e, 50));
			fmt_us(v2, sizeof v2, (double)pct_of(d->e2e, 99));
			if (d->state == D_REFUSED)
				snprintf(state, sizeof state, "refused %d %s",
				    d->refused_code, d->refused_reason);
			else if (!d->connected)
				snprintf(state, sizeof state, "never connected%s%s",
				    d->last_error[0] ? ": " : "", d->last_error);
			else if (d->reconnects || d->resyncs)
				snprintf(state, sizeof state, "%lu reconnects, "
				    "%lu resyncs", d->reconnects, d->resyncs);
			else
				snprintf(state, sizeof state, "ok");
			fprintf(f, "  %-4d %-12s %-5s %9llu %9lu %6lu %7lu "
			    "%8.2f%% %9s %9s  %s\n", j, d->klass_name,
			    d->proto == PROTO_WS ? "ws" : "sse",
			    (unsigned long long)lg->class_acked[d->klass],
			    d->received, d->duplicates, d->alerts,
			    dash_delivery(lg, d, -1), d->e2e->count ? v1 : "-",
			    d->e2e->count ? v2 : "-", state);
		}
		fprintf(f, "  lowest delivery %.2f%%\n", lg->total.delivery_pct);
		for (j = 0, k = 0; j < lg->ndash; j++)
			k += (int)lg->dash[j].other;
		if (lg->foreign > 0 || k > 0)
			fprintf(f, "  messages not matched: %lu of other runs, %d of "
			    "this run with an unknown or odd eventId\n",
			    lg->foreign, k);
	}

	if (lg->verify.done) {
		const struct lg_verify *v = &lg->verify;

		fprintf(f, "\nverify-db: %llu acknowledged, %llu rows, %llu "
		    "missing, %llu duplicated (waited %.1f s)\n",
		    (unsigned long long)v->acked, (unsigned long long)v->rows,
		    (unsigned long long)v->missing,
		    (unsigned long long)v->duplicated, v->waited_s);
		for (k = 0; k < 2; k++) {
			jv ids = k ? v->duplicated_ids : v->missing_ids;
			int i, n = jv_array_length(jv_copy(ids));

			if (n == 0)
				continue;
			fprintf(f, "  %s:", k ? "duplicated" : "missing");
			for (i = 0; i < n; i++) {
				jv id = jv_array_get(jv_copy(ids), i);

				fprintf(f, " %s", jv_string_value(id));
				jv_free(id);
			}
			fprintf(f, "%s\n", (uint64_t)n < (k ? v->duplicated :
			    v->missing) ? " ..." : "");
		}
	} else if (c->verify_db) {
		fprintf(f, "\nverify-db: not done (the database check failed)\n");
	}

	fprintf(f, "\nloadgen cpu: %.1f%% of a core (user %.2f s, sys %.2f s "
	    "over %.1f s)\n", lg->cpu_pct, lg->cpu_user, lg->cpu_sys,
	    (double)(lg->cpu_t1 - lg->cpu_t0) / 1e6);
	if (lg->cpu_pct >= 90)
		fprintf(f, "warning: loadgen used %.0f%% of a core: it may have "
		    "been the bottleneck\n", lg->cpu_pct);
	fputc('\n', f);
	for (k = 0; k < lg->nslo; k++)
		if (!lg->slo[k].dropped)
			slo_line(f, &lg->slo[k], &lg->slo_total[k]);
	if (lg->first_failed_stage >= 0 && lg->stages_run > 1) {
		s = lg->first_failed_stage;
		stage_name(lg, s, name, sizeof name);
		fprintf(f, "first failed stage: %s:", name);
		for (k = 0; k < lg->nslo; k++)
			if (!lg->slo[k].dropped &&
			    !lg->slo_stage[s * lg->nslo + k].ok)
				fprintf(f, " %s", lg->slo[k].expr);
		fputc('\n', f);
	}
	fprintf(f, "%s\n", lg->pass ? "PASS" : "FAIL");
}

/* ---- JSON ---- */

jv
report_hist(const struct hist *h)
{
	jv o = jv_object(), list = jv_array();
	size_t i;

	o = jv_object_set(o, jv_string("count"),
	    jv_number(h ? (double)h->count : 0));
	o = jv_object_set(o, jv_string("min"), jv_number((double)pct_of(h, 0)));
	o = jv_object_set(o, jv_string("max"),
	    jv_number((double)pct_of(h, 100)));
	o = jv_object_set(o, jv_string("mean"), jv_number(h && h->count ?
	    round3(hist_mean(h)) : 0));
	o = jv_object_set(o, jv_string("p50"), jv_number((double)pct_of(h, 50)));
	o = jv_object_set(o, jv_string("p90"), jv_number((double)pct_of(h, 90)));
	o = jv_object_set(o, jv_string("p99"), jv_number((double)pct_of(h, 99)));
	o = jv_object_set(o, jv_string("p999"),
	    jv_number((double)pct_of(h, 99.9)));
	o = jv_object_set(o, jv_string("p9999"),
	    jv_number((double)pct_of(h, 99.99)));
	for (i = 0; i < sizeof pcts / sizeof pcts[0]; i++)
		list = jv_array_append(list, jv_array_append(jv_array_append(
		    jv_array(), jv_number(pcts[i])),
		    jv_number((double)pct_of(h, pcts[i]))));
	return jv_object_set(o, jv_string("percentiles"), list);
}

static jv
num(uint64_t n)
{
	return jv_number((double)n);
}

static jv
slo_json(const struct lg *lg, const struct lg_slo_result *res, int full)
{
	jv a = jv_array();
	int k;

	for (k = 0; k < lg->nslo; k++) {
		const struct lg_slo *s = &lg->slo[k];
		const struct lg_slo_result *r = &res[k];
		jv o;

		if (s->dropped)
			continue;
		o = jv_object_set(jv_object(), jv_string("expr"),
		    jv_string(s->expr));
		o = jv_object_set(o, jv_string("ok"), jv_bool(r->ok));
		o = jv_object_set(o, jv_string("measured"), r->measured ?
		    jv_number(round3(r->value)) : jv_null());
		if (full)
			o = jv_object_set(o, jv_string("unit"),
			    jv_string(unit_name(s->unit)));
		if (!r->measured)
			o = jv_object_set(o, jv_string("reason"),
			    jv_string(r->why));
		a = jv_array_append(a, o);
	}
	return a;
}

#define NITEMS(a)	(sizeof (a) / sizeof (a)[0])

/* A JSON object of named figures, in their order. */
struct figure {
	const char *name;
	double value;
};

static jv
figures_json(const struct figure *f, size_t n)
{
	jv o = jv_object();
	size_t i;

	for (i = 0; i < n; i++)
		o = jv_object_set(o, jv_string(f[i].name),
		    jv_number(f[i].value));
	return o;
}

static jv
metrics_json(const struct lg *lg, int s)
{
	const struct lg_metrics *m = s < 0 ? &lg->total : &lg->st[s];
	double d = m->duration_s;
	int open_model = lg->model == MODEL_OPEN;
	const struct figure req[] = {
		{ "sent", (double)m->sent },
		{ "ok", (double)m->ok },
		{ "per_s_offered", round3(per_s(open_model ? m->due : m->sent,
		    d)) },
		{ "per_s_achieved", round3(per_s(m->ok, m->busy_s)) },
		{ "due", (double)m->due },	/* the open model's only */
		{ "unsent", (double)m->unsent },
	}, ev[] = {
		{ "sent", (double)m->ev_sent },
		{ "acked", (double)m->ev_acked },
		{ "lost", (double)m->ev_lost },
		{ "per_s_offered", round3(per_s(m->ev_sent, d)) },
		{ "per_s_achieved", round3(per_s(m->ev_acked, m->busy_s)) },
	}, status[] = {
		{ "2xx", (double)m->st_2xx },
		{ "4xx", (double)m->st_4xx },
		{ "5xx", (double)m->st_5xx },
		{ "other", (double)m->st_other },
	}, errors[] = {
		{ "connect", (double)m->err_connect },
		{ "timeout", (double)m->err_timeout },
		{ "reset", (double)m->err_reset },
		{ "4xx", (double)m->st_4xx },
		{ "5xx", (double)m->st_5xx },
		{ "total", (double)slo_errors(m) },
	};
	jv o = jv_object();

	if (s >= 0)
		o = jv_object_set(o, jv_string("index"), jv_number(s));
	o = jv_object_set(o, jv_string("students"), lg->model == MODEL_CLOSED ?
	    jv_number(m->value) : jv_null());
	o = jv_object_set(o, jv_string("rate"), lg->model == MODEL_OPEN ?
	    jv_number(m->value) : jv_null());
	o = jv_object_set(o, jv_string("duration_s"), jv_number(round3(d)));
	o = jv_object_set(o, jv_string("requests"), figures_json(req,
	    NITEMS(req) - (open_model ? 0 : 2)));
	o = jv_object_set(o, jv_string("events"), figures_json(ev,
	    NITEMS(ev)));
	o = jv_object_set(o, jv_string("status"), figures_json(status,
	    NITEMS(status)));
	o = jv_object_set(o, jv_string("errors"), figures_json(errors,
	    NITEMS(errors)));
	o = jv_object_set(o, jv_string("ack_us"), report_hist(m->ack));
	o = jv_object_set(o, jv_string("ack_uncorrected_us"),
	    lg->model == MODEL_OPEN ? report_hist(m->ack_unc) : jv_null());
	o = jv_object_set(o, jv_string("e2e_us"), report_hist(m->e2e));
	o = jv_object_set(o, jv_string("delivery_pct"),
	    jv_number(round3(m->delivery_pct)));
	o = jv_object_set(o, jv_string("missing"), lg->verify.done ?
	    num(m->missing) : jv_null());
	o = jv_object_set(o, jv_string("duplicated"), lg->verify.done ?
	    num(m->duplicated) : jv_null());
	o = jv_object_set(o, jv_string("slo"), slo_json(lg, s < 0 ?
	    lg->slo_total : &lg->slo_stage[s * lg->nslo], 0));
	return o;
}

static jv
config_json(const struct lg *lg)
{
	const struct lg_cfg *c = &lg->cfg;
	jv o = jv_object(), st = jv_array();
	int s;

	o = jv_object_set(o, jv_string("students"), jv_number(c->students));
	o = jv_object_set(o, jv_string("classes"), jv_number(c->classes));
	o = jv_object_set(o, jv_string("dashboards"), jv_number(c->dashboards));
	o = jv_object_set(o, jv_string("dashboard_proto"), jv_string(
	    c->dproto == DPROTO_WS ? "ws" : c->dproto == DPROTO_SSE ? "sse" :
	    "mixed"));
	o = jv_object_set(o, jv_string("think"), lg->model == MODEL_CLOSED ?
	    jv_number(c->think) : jv_null());
	o = jv_object_set(o, jv_string("batch"), jv_number(c->batch));
	o = jv_object_set(o, jv_string("conns"), jv_number(c->conns));
	o = jv_object_set(o, jv_string("rate"), lg->model == MODEL_OPEN ?
	    jv_number(c->rate) : jv_null());
	for (s = 0; s < c->nstages; s++) {
		jv x = jv_object();

		x = jv_object_set(x, jv_string(lg->model == MODEL_OPEN ?
		    "rate" : "students"), jv_number(c->stages[s].value));
		x = jv_object_set(x, jv_string("duration_s"),
		    jv_number((double)c->stages[s].ms / 1000.0));
		st = jv_array_append(st, x);
	}
	o = jv_object_set(o, jv_string("stages"), st);
	o = jv_object_set(o, jv_string("url"), jv_string(c->url));
	o = jv_object_set(o, jv_string("notify"), lg->ndash > 0 && c->notify ?
	    jv_string(c->notify) : jv_null());
	o = jv_object_set(o, jv_string("timeout_s"),
	    jv_number((double)c->timeout_ms / 1000.0));
	o = jv_object_set(o, jv_string("setup"), jv_bool(c->setup));
	o = jv_object_set(o, jv_string("verify_db"), jv_bool(c->verify_db));
	return o;
}

static jv
dash_json(const struct lg *lg, const struct lg_dash *d)
{
	jv o = jv_object();

	o = jv_object_set(o, jv_string("index"), jv_number(d->index));
	o = jv_object_set(o, jv_string("class"), jv_string(d->klass_name));
	o = jv_object_set(o, jv_string("proto"),
	    jv_string(d->proto == PROTO_WS ? "ws" : "sse"));
	o = jv_object_set(o, jv_string("connected"), jv_bool(d->connected));
	if (d->state == D_REFUSED) {
		jv r = jv_object();

		r = jv_object_set(r, jv_string("code"),
		    jv_number(d->refused_code));
		r = jv_object_set(r, jv_string("reason"),
		    jv_string(d->refused_reason));
		o = jv_object_set(o, jv_string("refused"), r);
	} else {
		o = jv_object_set(o, jv_string("refused"), jv_null());
	}
	o = jv_object_set(o, jv_string("expected"),
	    num(lg->class_acked[d->klass]));
	o = jv_object_set(o, jv_string("received"), num(d->received));
	o = jv_object_set(o, jv_string("received_acked"), num(d->recv_acked));
	o = jv_object_set(o, jv_string("duplicates"), num(d->duplicates));
	o = jv_object_set(o, jv_string("alerts"), num(d->alerts));
	o = jv_object_set(o, jv_string("delivery_pct"),
	    jv_number(round3(dash_delivery(lg, d, -1))));
	o = jv_object_set(o, jv_string("reconnects"), num(d->reconnects));
	o = jv_object_set(o, jv_string("resyncs"), num(d->resyncs));
	o = jv_object_set(o, jv_string("last_error"), d->last_error[0] ?
	    jv_string(d->last_error) : jv_null());
	o = jv_object_set(o, jv_string("e2e_us"), report_hist(d->e2e));
	return o;
}

int
report_json(struct lg *lg, FILE *f)
{
	jv o = jv_object(), a, x;
	jv s;
	size_t i;
	int k;

	o = jv_object_set(o, jv_string("version"), jv_number(1));
	o = jv_object_set(o, jv_string("run_id"), jv_string(lg->run_id));
	o = jv_object_set(o, jv_string("seed"), jv_number((double)lg->cfg.seed));
	o = jv_object_set(o, jv_string("started_at"),
	    jv_string(lg->started_at));
	o = jv_object_set(o, jv_string("duration_s"),
	    jv_number(round3(lg->total.duration_s)));
	o = jv_object_set(o, jv_string("model"),
	    jv_string(lg->model == MODEL_OPEN ? "open" : "closed"));
	o = jv_object_set(o, jv_string("interrupted"),
	    jv_bool(lg->interrupted));
	o = jv_object_set(o, jv_string("config"), config_json(lg));
	a = jv_array();
	for (k = 0; k < lg->stages_run; k++)
		a = jv_array_append(a, metrics_json(lg, k));
	o = jv_object_set(o, jv_string("stages"), a);
	o = jv_object_set(o, jv_string("total"), metrics_json(lg, -1));
	a = jv_array();
	for (k = 0; k < lg->ndash; k++)
		a = jv_array_append(a, dash_json(lg, &lg->dash[k]));
	o = jv_object_set(o, jv_string("dashboards"), a);
	o = jv_object_set(o, jv_string("delivery_pct"),
	    jv_number(round3(lg->total.delivery_pct)));
	if (lg->verify.done) {
		x = jv_object();
		x = jv_object_set(x, jv_string("acked"), num(lg->verify.acked));
		x = jv_object_set(x, jv_string("rows"), num(lg->verify.rows));
		x = jv_object_set(x, jv_string("missing"),
		    num(lg->verify.missing));
		x = jv_object_set(x, jv_string("duplicated"),
		    num(lg->verify.duplicated));
		x = jv_object_set(x, jv_string("missing_ids"),
		    jv_copy(lg->verify.missing_ids));
		x = jv_object_set(x, jv_string("duplicated_ids"),
		    jv_copy(lg->verify.duplicated_ids));
		x = jv_object_set(x, jv_string("waited_s"),
		    jv_number(round3(lg->verify.waited_s)));
		o = jv_object_set(o, jv_string("verify_db"), x);
	} else {
		o = jv_object_set(o, jv_string("verify_db"), jv_null());
	}
	x = jv_object();
	x = jv_object_set(x, jv_string("user_s"), jv_number(round3(lg->cpu_user)));
	x = jv_object_set(x, jv_string("sys_s"), jv_number(round3(lg->cpu_sys)));
	x = jv_object_set(x, jv_string("pct_of_core"),
	    jv_number(round(lg->cpu_pct * 10) / 10));
	x = jv_object_set(x, jv_string("saturated"), jv_bool(lg->cpu_pct >= 90));
	o = jv_object_set(o, jv_string("cpu"), x);
	a = jv_array();
	for (i = 0; i < lg->ntl; i++) {
		const struct lg_tick *t = &lg->tl[i];

		x = jv_object();
		x = jv_object_set(x, jv_string("t_s"), jv_number(round3(t->t_s)));
		x = jv_object_set(x, jv_string("stage"), jv_number(t->stage));
		x = jv_object_set(x, jv_string("requests_per_s"),
		    jv_number(round(t->rps * 10) / 10));
		x = jv_object_set(x, jv_string("events_per_s"),
		    jv_number(round(t->eps * 10) / 10));
		x = jv_object_set(x, jv_string("ack_p99_us"),
		    jv_number((double)t->p99_us));
		x = jv_object_set(x, jv_string("e2e_p99_us"),
		    jv_number((double)t->e2e_p99_us));
		x = jv_object_set(x, jv_string("errors"), jv_number(t->errors));
		x = jv_object_set(x, jv_string("lost"), jv_number(t->lost));
		a = jv_array_append(a, x);
	}
	o = jv_object_set(o, jv_string("timeline"), a);
	o = jv_object_set(o, jv_string("timeline_t0_ms"),
	    jv_number((double)(lg->run_t0_wall / 1000)));
	o = jv_object_set(o, jv_string("slo"), slo_json(lg, lg->slo_total, 1));
	o = jv_object_set(o, jv_string("first_failed_stage"),
	    lg->first_failed_stage >= 0 ? jv_number(lg->first_failed_stage) :
	    jv_null());
	o = jv_object_set(o, jv_string("pass"), jv_bool(lg->pass));
	s = jv_dump_string(o, JV_PRINT_PRETTY | JV_PRINT_INDENT_FLAGS(2));
	fputs(jv_string_value(s), f);
	fputc('\n', f);
	jv_free(s);
	return 0;
}

/* ---- CSV ---- */

static void
csv_row(FILE *f, const struct lg *lg, int s)
{
	const struct lg_metrics *m = s < 0 ? &lg->total : &lg->st[s];
	static const double p[] = { 50, 90, 99, 99.9, 99.99, 100 };
	size_t i;

	if (s < 0)
		fprintf(f, "total,");
	else
		fprintf(f, "%d,", s);
	if (lg->model == MODEL_CLOSED)
		fprintf(f, "%g,,", m->value);
	else
		fprintf(f, ",%g,", m->value);
	fprintf(f, "%.3f,%llu,%.3f,%llu,%.3f,%llu,%llu,%llu,%llu,%llu,%llu,"
	    "%llu", m->duration_s, (unsigned long long)m->sent,
	    per_s(m->ok, m->busy_s), (unsigned long long)m->ev_sent,
	    per_s(m->ev_acked, m->busy_s), (unsigned long long)m->st_2xx,
	    (unsigned long long)m->st_4xx, (unsigned long long)m->st_5xx,
	    (unsigned long long)m->err_connect,
	    (unsigned long long)m->err_timeout,
	    (unsigned long long)m->err_reset, (unsigned long long)m->ev_lost);
	for (i = 0; i < 6; i++)
		fprintf(f, ",%llu", (unsigned long long)pct_of(m->ack, p[i]));
	for (i = 0; i < 6; i++)
		fprintf(f, ",%llu", (unsigned long long)pct_of(m->e2e, p[i]));
	fprintf(f, ",%.3f\n", m->delivery_pct);
}

int
report_csv(struct lg *lg, FILE *f)
{
	int s;

	fputs("stage,students,rate,duration_s,requests,req_per_s,events,"
	    "events_per_s,ok_2xx,err_4xx,err_5xx,connect,timeout,reset,lost,"
	    "ack_p50_us,ack_p90_us,ack_p99_us,ack_p999_us,ack_p9999_us,"
	    "ack_max_us,e2e_p50_us,e2e_p90_us,e2e_p99_us,e2e_p999_us,"
	    "e2e_p9999_us,e2e_max_us,delivery_pct\n", f);
	for (s = 0; s < lg->stages_run; s++)
		csv_row(f, lg, s);
	csv_row(f, lg, -1);
	return 0;
}

/* ---- HTML ---- */

static void
esc(FILE *f, const char *s)
{
	static const char special[] = "<>&\"";
	static const char *const entity[] = { "&lt;", "&gt;", "&amp;",
	    "&quot;" };
	const char *p;

	for (; *s; s++)
		if ((p = strchr(special, *s)) != NULL)
			fputs(entity[p - special], f);
		else
			fputc(*s, f);
}

static const char *const colors[] = { "#1f77b4", "#ff7f0e", "#2ca02c",
    "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
    "#17becf" };

/* A round step for about n ticks up to max. */
static double
nice_step(double max, int n)
{
	double raw = max / n, mag = pow(10, floor(log10(raw))), r = raw / mag;

	if (r <= 1)
		return mag;
	if (r <= 2)
		return 2 * mag;
	if (r <= 5)
		return 5 * mag;
	return 10 * mag;
}

#define CW	860
#define CH	380
#define ML	70
#define MR	70
#define MT	20
#define MB	50

/* x: the percentile on a log scale, 1/(1-p), 0 to 99.999 */
static double
px_of(double p)
{
	double x = p >= 99.999 ? 5 : -log10(1 - p / 100);

	return ML + x / 5 * (CW - ML - MR);
}

static void
curve(FILE *f, const struct hist *h, double ymax, const char *color,
    const char *dash, double width)
{
	int i;

	if (h == NULL || h->count == 0)
		return;
	fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\""
	    "%s%s%s points=\"", color, width, dash ? " stroke-dasharray=\"" :
	    "", dash ? dash : "", dash ? "\"" : "");
	for (i = 0; i <= 250; i++) {
		double x = 5.0 * i / 250, p = 100 * (1 - pow(10, -x));
		double v = (double)pct_of(h, i == 250 ? 99.999 : p) / 1000;

		fprintf(f, "%.1f,%.1f ", px_of(p),
		    MT + (CH - MT - MB) * (1 - (v > ymax ? ymax : v) / ymax));
	}
	fputs("\"/>\n", f);
}

/* A chart's frame, and the grid of its left axis from 0 to ymax, its
 * numbers in fill (NULL: the text's colour). */
static void
chart_begin(FILE *f, double ymax, double step, const char *fill)
{
	double y, py;

	fprintf(f, "<svg viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
	    "xmlns=\"http://www.w3.org/2000/svg\" font-size=\"12\" "
	    "font-family=\"sans-serif\">\n", CW, CH, CW, CH);
	for (y = 0; y <= ymax + step / 2; y += step) {
		py = MT + (CH - MT - MB) * (1 - y / ymax);
		fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" "
		    "stroke=\"#ddd\"/><text x=\"%d\" y=\"%.1f\" "
		    "text-anchor=\"end\"%s%s%s>%g</text>\n", ML, CW - MR, py,
		    py, ML - 6, py + 4, fill ? " fill=\"" : "", fill ? fill : "",
		    fill ? "\"" : "", y);
	}
}

static void
latency_chart(FILE *f, const struct lg *lg)
{
	static const double ticks[] = { 0, 90, 99, 99.9, 99.99, 99.999 };
	static const char *const tick_names[] = { "0%", "90%", "99%", "99.9%",
	    "99.99%", "99.999%" };
	double ymax = 0, step;
	int s, i, li = 0;
	size_t t;

	for (s = -1; s < lg->stages_run; s++) {
		const struct lg_metrics *m = s < 0 ? &lg->total : &lg->st[s];

		if ((double)pct_of(m->ack, 99.999) / 1000 > ymax)
			ymax = (double)pct_of(m->ack, 99.999) / 1000;
		if ((double)pct_of(m->e2e, 99.999) / 1000 > ymax)
			ymax = (double)pct_of(m->e2e, 99.999) / 1000;
	}
	if (ymax <= 0)
		ymax = 1;
	step = nice_step(ymax, 6);
	ymax = ceil(ymax / step) * step;
	chart_begin(f, ymax, step, NULL);
	for (t = 0; t < sizeof ticks / sizeof ticks[0]; t++)
		fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" "
		    "stroke=\"#ddd\"/><text x=\"%.1f\" y=\"%d\" "
		    "text-anchor=\"middle\">%s</text>\n", px_of(ticks[t]),
		    px_of(ticks[t]), MT, CH - MB, px_of(ticks[t]), CH - MB + 16,
		    tick_names[t]);
	fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">percentile"
	    "</text><text x=\"16\" y=\"%d\" transform=\"rotate(-90 16 %d)\" "
	    "text-anchor=\"middle\">latency (ms)</text>\n", (CW + ML - MR) / 2,
	    CH - 10, (CH - MB + MT) / 2, (CH - MB + MT) / 2);
	if (lg->stages_run > 1)
		for (s = 0; s < lg->stages_run; s++) {
			curve(f, lg->st[s].ack, ymax, colors[(2 + s) % 10],
			    NULL, 1);
			curve(f, lg->st[s].e2e, ymax, colors[(2 + s) % 10],
			    "4 3", 1);
		}
	curve(f, lg->total.ack, ymax, colors[0], NULL, 2.5);
	curve(f, lg->total.e2e, ymax, colors[1], NULL, 2.5);
	/* the legend */
	for (s = -1; s < lg->stages_run && (s < 0 || lg->stages_run > 1); s++) {
		char name[64];

		for (i = 0; i < 2; i++) {
			const struct lg_metrics *m = s < 0 ? &lg->total :
			    &lg->st[s];
			const char *color = s < 0 ? colors[i] :
			    colors[(2 + s) % 10];

			if ((i ? m->e2e : m->ack)->count == 0)
				continue;
			stage_name(lg, s, name, sizeof name);
			fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" "
			    "stroke=\"%s\" stroke-width=\"2\"%s/><text x=\"%d\" "
			    "y=\"%d\">%s %s</text>\n", ML + 10, ML + 34,
			    MT + 12 + 16 * li, MT + 12 + 16 * li, color,
			    i && s >= 0 ? " stroke-dasharray=\"4 3\"" : "",
			    ML + 40, MT + 16 + 16 * li, i ? "e2e" : "ack", name);
			li++;
		}
	}
	fputs("</svg>\n", f);
}

static void
timeline_chart(FILE *f, const struct lg *lg)
{
	double tmax = 1, rmax = 1, pmax = 1, step, pstep, y;
	size_t i;
	int s;

	for (i = 0; i < lg->ntl; i++) {
		if (lg->tl[i].t_s > tmax)
			tmax = lg->tl[i].t_s;
		if (lg->tl[i].rps > rmax)
			rmax = lg->tl[i].rps;
		if ((double)lg->tl[i].p99_us / 1000 > pmax)
			pmax = (double)lg->tl[i].p99_us / 1000;
	}
	step = nice_step(rmax, 6);
	rmax = ceil(rmax / step) * step;
	pstep = nice_step(pmax, 6);
	pmax = ceil(pmax / pstep) * pstep;
	chart_begin(f, rmax, step, colors[0]);
	for (y = 0; y <= pmax + pstep / 2; y += pstep)
		fprintf(f, "<text x=\"%d\" y=\"%.1f\" fill=\"%s\">%g</text>\n",
		    CW - MR + 6, MT + (CH - MT - MB) * (1 - y / pmax) + 4,
		    colors[3], y);
	step = nice_step(tmax, 8);
	for (y = 0; y <= tmax + 1e-9; y += step) {
		double px = ML + (CW - ML - MR) * y / tmax;

		fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">"
		    "%g</text>\n", px, CH - MB + 16, y);
	}
	fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">seconds"
	    "</text><text x=\"16\" y=\"%d\" transform=\"rotate(-90 16 %d)\" "
	    "text-anchor=\"middle\" fill=\"%s\">requests/s (2xx)</text>"
	    "<text x=\"%d\" y=\"%d\" transform=\"rotate(90 %d %d)\" "
	    "text-anchor=\"middle\" fill=\"%s\">ack p99 (ms)</text>\n",
	    (CW + ML - MR) / 2, CH - 10, (CH - MB + MT) / 2, (CH - MB + MT) / 2,
	    colors[0], CW - 14, (CH - MB + MT) / 2, CW - 14, (CH - MB + MT) / 2,
	    colors[3]);
	for (s = 1; s <= lg->stages_run; s++) {
		double t = s < lg->stages_run ? (double)(lg->st[s].t0 -
		    lg->run_t0) / 1e6 : (double)(lg->run_t1 - lg->run_t0) / 1e6;
		double px = ML + (CW - ML - MR) * t / tmax;
		char name[64];

		stage_name(lg, s - 1, name, sizeof name);
		fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" "
		    "stroke=\"#888\" stroke-dasharray=\"5 4\"/>"
		    "<text x=\"%.1f\" y=\"%d\" text-anchor=\"end\" "
		    "fill=\"#555\">%s%s</text>\n", px, px, MT, CH - MB, px - 4,
		    MT + 12, s < lg->stages_run ? "" : "end of ", name);
	}
	if (lg->ntl > 0) {
		fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" "
		    "stroke-width=\"2\" points=\"", colors[0]);
		for (i = 0; i < lg->ntl; i++)
			fprintf(f, "%.1f,%.1f ", ML + (CW - ML - MR) *
			    lg->tl[i].t_s / tmax, MT + (CH - MT - MB) *
			    (1 - lg->tl[i].rps / rmax));
		fprintf(f, "\"/>\n<polyline fill=\"none\" stroke=\"%s\" "
		    "stroke-width=\"1.5\" points=\"", colors[3]);
		for (i = 0; i < lg->ntl; i++)
			fprintf(f, "%.1f,%.1f ", ML + (CW - ML - MR) *
			    lg->tl[i].t_s / tmax, MT + (CH - MT - MB) *
			    (1 - (double)lg->tl[i].p99_us / 1000 / pmax));
		fputs("\"/>\n", f);
	}
	fputs("</svg>\n", f);
}

static void
html_lat_row(FILE *f, const char *name, const struct hist *h)
{
	static const double p[] = { 50, 90, 99, 99.9, 99.99, 100 };
	char v[32];
	size_t i;

	fprintf(f, "<tr><th class=\"l\">");
	esc(f, name);
	fprintf(f, "</th>");
	for (i = 0; i < 6; i++) {
		fmt_us(v, sizeof v, (double)pct_of(h, p[i]));
		fprintf(f, "<td>%s</td>", h && h->count ? v : "-");
	}
	fprintf(f, "<td>%llu</td></tr>\n",
	    (unsigned long long)(h ? h->count : 0));
}

static void
html_stage_row(FILE *f, const struct lg *lg, int s)
{
	const struct lg_metrics *m = s < 0 ? &lg->total : &lg->st[s];
	double d = m->duration_s;

	fprintf(f, "<tr><th>%s", s < 0 ? "total" : "");
	if (s >= 0)
		fprintf(f, "%d", s);
	fprintf(f, "</th><td>%g</td><td>%.1f</td><td>%.1f</td><td>%.1f</td>"
	    "<td>%.1f</td><td>%.1f</td><td>%llu</td><td>%llu</td><td>%llu</td>"
	    "<td>%llu</td><td>%llu</td><td>%llu</td><td>%llu</td><td>%llu</td>"
	    "<td>%.2f%%</td></tr>\n", m->value, d, per_s(lg->model ==
	    MODEL_OPEN ? m->due : m->sent, d), per_s(m->ok, m->busy_s),
	    per_s(m->ev_sent, d), per_s(m->ev_acked, m->busy_s),
	    (unsigned long long)m->st_2xx, (unsigned long long)m->st_4xx,
	    (unsigned long long)m->st_5xx, (unsigned long long)m->err_connect,
	    (unsigned long long)m->err_timeout,
	    (unsigned long long)m->err_reset, (unsigned long long)m->ev_lost,
	    (unsigned long long)m->unsent, m->delivery_pct);
}

int
report_html(struct lg *lg, FILE *f)
{
	const struct lg_cfg *c = &lg->cfg;
	char v1[32], v2[32], name[64], label[96];
	int s, j, k;

	fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
	    "charset=\"utf-8\"><title>labpulse loadgen %s: %s</title>\n"
	    "<style>\nbody{font-family:system-ui,sans-serif;margin:2em;"
	    "color:#222;max-width:1100px}\nh1{font-size:1.5em}h2{font-size:1.15em;"
	    "margin-top:1.6em;border-bottom:1px solid #ccc}\n"
	    ".verdict{display:inline-block;padding:.2em .7em;border-radius:4px;"
	    "color:#fff;font-weight:bold}\n.pass{background:#2a7d2a}"
	    ".fail{background:#b22}\ntable{border-collapse:collapse;"
	    "font-size:.9em;margin:.5em 0}\nth,td{border:1px solid #ccc;"
	    "padding:.25em .6em;text-align:right}\nth{background:#f4f4f4}"
	    "td.l,th.l{text-align:left}\nli.ok{color:#2a7d2a}li.failed"
	    "{color:#b22}\n.note{color:#666;font-size:.9em}\n</style></head>"
	    "<body>\n", lg->run_id, lg->pass ? "PASS" : "FAIL");
	fprintf(f, "<h1>labpulse loadgen <span class=\"verdict %s\">%s</span>"
	    "</h1>\n<p>run <code>%s</code>, seed %ld, started %s, %s model, "
	    "%.1f s</p>\n", lg->pass ? "pass" : "fail",
	    lg->pass ? "PASS" : "FAIL", lg->run_id, c->seed, lg->started_at,
	    lg->model == MODEL_OPEN ? "open" : "closed", lg->total.duration_s);

	fputs("<h2>Verdict</h2>\n<ul>\n", f);
	for (k = 0; k < lg->nslo; k++) {
		const struct lg_slo_result *r = &lg->slo_total[k];

		if (lg->slo[k].dropped)
			continue;
		fprintf(f, "<li class=\"%s\">%s: ", r->ok ? "ok" : "failed",
		    r->ok ? "ok" : "failed");
		esc(f, lg->slo[k].expr);
		if (r->measured) {
			slo_format_value(v1, sizeof v1, &lg->slo[k], r->value);
			fprintf(f, " (measured %s)", v1);
		} else {
			fprintf(f, " (not measured: %s)", r->why);
		}
		fputs("</li>\n", f);
	}
	fputs("</ul>\n", f);
	if (lg->first_failed_stage >= 0 && lg->stages_run > 1) {
		stage_name(lg, lg->first_failed_stage, name, sizeof name);
		fprintf(f, "<p>First stage where an SLO failed: %s.</p>\n", name);
	}

	fputs("<h2>Configuration</h2>\n<table>\n", f);
	fputs("<tr><th class=\"l\">ingest</th><td class=\"l\">", f);
	esc(f, c->url);
	fputs("</td></tr>\n<tr><th class=\"l\">notify</th><td class=\"l\">", f);
	esc(f, lg->ndash > 0 && c->notify ? c->notify : "-");
	fprintf(f, "</td></tr>\n<tr><th class=\"l\">students</th>"
	    "<td class=\"l\">%ld in %ld classes</td></tr>\n", c->students,
	    c->classes);
	fprintf(f, "<tr><th class=\"l\">dashboards</th><td class=\"l\">%d "
	    "(%s)</td></tr>\n", lg->ndash, c->dproto == DPROTO_WS ? "ws" :
	    c->dproto == DPROTO_SSE ? "sse" : "mixed");
	if (lg->model == MODEL_CLOSED)
		fprintf(f, "<tr><th class=\"l\">think</th><td class=\"l\">%g"
		    "</td></tr>\n", c->think);
	else
		fprintf(f, "<tr><th class=\"l\">rate</th><td class=\"l\">%g "
		    "requests/s at most</td></tr>\n", c->rate);
	fprintf(f, "<tr><th class=\"l\">batch, connections, timeout</th>"
	    "<td class=\"l\">%ld, %ld, %.1f s</td></tr>\n<tr><th class=\"l\">"
	    "stages</th><td class=\"l\">", c->batch, c->conns,
	    (double)c->timeout_ms / 1000);
	for (s = 0; s < c->nstages; s++)
		fprintf(f, "%s%g%s for %g s", s ? ", " : "", c->stages[s].value,
		    lg->model == MODEL_OPEN ? "/s" : " students",
		    (double)c->stages[s].ms / 1000);
	fputs("</td></tr>\n</table>\n", f);

	fputs("<h2>Latency by percentile</h2>\n", f);
	latency_chart(f, lg);
	fprintf(f, "<p class=\"note\">ack: POST to its 2xx%s; e2e: POST "
	    "written to a dashboard's receipt. Solid thick lines: the whole "
	    "run.</p>\n", lg->model == MODEL_OPEN ?
	    ", counted from the moment each request fell due" : "");
	fputs("<h2>Throughput over time</h2>\n", f);
	timeline_chart(f, lg);

	fputs("<h2>Stages</h2>\n<table>\n<tr><th>stage</th>", f);
	fprintf(f, "<th>%s</th><th>secs</th><th>req/s offered</th>"
	    "<th>req/s achieved</th><th>events/s offered</th>"
	    "<th>events/s achieved</th><th>2xx</th><th>4xx</th><th>5xx</th>"
	    "<th>connect</th><th>timeout</th><th>reset</th><th>lost</th>"
	    "<th>unsent</th><th>delivery</th></tr>\n",
	    lg->model == MODEL_OPEN ? "rate" : "students");
	if (lg->stages_run > 1)
		for (s = 0; s < lg->stages_run; s++)
			html_stage_row(f, lg, s);
	html_stage_row(f, lg, -1);
	fputs("</table>\n", f);

	fputs("<h2>Latency</h2>\n<table>\n<tr><th></th><th>p50</th><th>p90</th>"
	    "<th>p99</th><th>p99.9</th><th>p99.99</th><th>max</th>"
	    "<th>count</th></tr>\n", f);
	for (s = lg->stages_run > 1 ? 0 : lg->stages_run; s <= lg->stages_run;
	    s++) {
		int t = s == lg->stages_run ? -1 : s;
		const struct lg_metrics *m = t < 0 ? &lg->total : &lg->st[t];

		stage_name(lg, t, name, sizeof name);
		snprintf(label, sizeof label, "ack, %s", name);
		html_lat_row(f, label, m->ack);
		if (lg->model == MODEL_OPEN) {
			snprintf(label, sizeof label, "ack uncorrected, %s", name);
			html_lat_row(f, label, m->ack_unc);
		}
		if (lg->ndash > 0) {
			snprintf(label, sizeof label, "e2e, %s", name);
			html_lat_row(f, label, m->e2e);
		}
	}
	fputs("</table>\n", f);

	if (lg->ndash > 0) {
		fputs("<h2>Dashboards</h2>\n<table>\n<tr><th>#</th>"
		    "<th class=\"l\">class</th><th>proto</th><th>expected</th>"
		    "<th>received</th><th>dup</th><th>alerts</th>"
		    "<th>delivery</th><th>e2e p50</th><th>e2e p99</th>"
		    "<th class=\"l\">state</th></tr>\n", f);
		for (j = 0; j < lg->ndash; j++) {
			const struct lg_dash *d = &lg->dash[j];

			fmt_us(v1, sizeof v1, (double)pct_of(d->e2e, 50));
			fmt_us(v2, sizeof v2, (double)pct_of(d->e2e, 99));
			fprintf(f, "<tr><td>%d</td><td class=\"l\">%s</td>"
			    "<td>%s</td><td>%llu</td><td>%lu</td><td>%lu</td>"
			    "<td>%lu</td><td>%.2f%%</td><td>%s</td><td>%s</td>"
			    "<td class=\"l\">", j, d->klass_name,
			    d->proto == PROTO_WS ? "ws" : "sse",
			    (unsigned long long)lg->class_acked[d->klass],
			    d->received, d->duplicates, d->alerts,
			    dash_delivery(lg, d, -1), d->e2e->count ? v1 : "-",
			    d->e2e->count ? v2 : "-");
			if (d->state == D_REFUSED) {
				fprintf(f, "refused %d ", d->refused_code);
				esc(f, d->refused_reason);
			} else if (!d->connected) {
				fputs("never connected ", f);
				esc(f, d->last_error);
			} else {
				fprintf(f, "%lu reconnects, %lu resyncs",
				    d->reconnects, d->resyncs);
			}
			fputs("</td></tr>\n", f);
		}
		fputs("</table>\n", f);
	}

	if (lg->verify.done) {
		fprintf(f, "<h2>Database</h2>\n<p>%llu acknowledged, %llu rows, "
		    "%llu missing, %llu duplicated (waited %.1f s for "
		    "batch-commit).</p>\n",
		    (unsigned long long)lg->verify.acked,
		    (unsigned long long)lg->verify.rows,
		    (unsigned long long)lg->verify.missing,
		    (unsigned long long)lg->verify.duplicated,
		    lg->verify.waited_s);
	}
	fprintf(f, "<h2>loadgen itself</h2>\n<p>%.0f%% of a core (user %.2f s, "
	    "sys %.2f s)%s</p>\n", lg->cpu_pct, lg->cpu_user, lg->cpu_sys,
	    lg->cpu_pct >= 90 ? ": <strong>it may have been the bottleneck"
	    "</strong>" : "");
	fputs("</body></html>\n", f);
	return 0;
}
