/* loadgen: prove a 200-student class works before the semester does.
 * Simulated students post their cell events to ingest while simulated
 * instructors' dashboards follow their classes through notify; the run
 * measures throughput, acknowledgement and end-to-end latency and delivery,
 * optionally checks what reached PostgreSQL, and passes or fails its SLOs. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "hist.h"
#include "loadgen.h"
#include "log.h"
#include "prog.h"
#include "parse.h"

#define MAX_STUDENTS	100000
#define MAX_SEED	((1L << 53) - 1)	/* exact as a JSON number */
#define TEXT(x)		#x
#define NUMBER(x)	TEXT(x)

static opt_parser opt_proto, opt_stages;

#define OPT_CFG struct lg_cfg
static const struct opt options[] = {
	O_LONG("batch", batch, "1", "1000", "1",
	    "events in one POST: a student sends once it has N"),
	O_LONG("classes", classes, "1", "10000", "10",
	    "classes loadgen-0 to loadgen-<N-1>; student i is in class i % N"),
	O_LONG_TEXT("conns", conns, "1", "20000", "the students, at most 256",
	    "keep-alive connections the students share"),
	O_STR("csv", "FILE", csv, NULL, "one row per stage, then a total row"),
	O_FN("dashboard-proto", "ws|sse|mixed", dproto, opt_proto, "mixed",
	    "the dashboards' protocol; mixed: even ones WebSocket, odd ones "
	    "SSE"),
	O_LONG("dashboards", dashboards, "0", NUMBER(LG_MAX_DASH), "10",
	    "instructors' dashboards; dashboard j watches class j mod "
	    "--classes, at most " NUMBER(LG_DASH_PER_CLASS) " a class"),
	O_TEXT("db", "CONNINFO", db, "$DATABASE_URL, else PG* variables",
	    "PostgreSQL for --setup and --verify-db"),
	O_DURATION("duration", duration_ms, "100ms", "168h", "60s",
	    "the run as one stage this long"),
	O_STR("html", "FILE", html, NULL,
	    "a self-contained page: verdict, tables, charts"),
	O_STR("json", "FILE", json, NULL,
	    "every figure, with whole latency distributions"),
	O_TEXT("notify", "URL", notify, "$LABPULSE_NOTIFY_URL",
	    "notify's base URL; without one, --dashboards must be 0"),
	O_FLAG("quiet", quiet, "no progress line, no summary"),
	O_REAL("rate", "R", rate, "0.001", "10000000", NULL,
	    "open model: R requests/s in all, sent on schedule whatever the "
	    "server does, latency counted from each one's due time; refused "
	    "when R exceeds conns x 1000 (a connection carries a request a "
	    "millisecond); with --stages, the highest rate a stage may have"),
	O_LONG_TEXT("seed", seed, "0", "9007199254740991", "from the clock",
	    "random seed; the run id and event ids derive from it"),
	O_FLAG("setup", setup,
	    "add an instructor loadgen-RUNID allowed every class with a fresh "
	    "token; revoke it at the end"),
	O_TEXT("slo", "LIST", slo, "ack_p99<100ms,e2e_p99<100ms,"
	    "delivery>=99.5%,lost=0, and with --verify-db missing=0,"
	    "duplicated=0", "targets, METRIC OP VALUE separated by commas"),
	O_FN("stages", "LIST", stages, opt_stages, NULL,
	    "N:DURATION,...: students per stage, or with --rate requests/s "
	    "per stage"),
	O_LONG("students", students, "1", NUMBER(MAX_STUDENTS), "200",
	    "simulated students; when not given, with --stages and no --rate, "
	    "the most of a stage"),
	O_REAL("think", "FACTOR", think, "0", "100", "1",
	    "scale the pauses of a student's lesson; 0 posts back to back; "
	    "not with --rate"),
	O_DURATION("timeout", timeout_ms, "100ms", "1h", "10s",
	    "a request unanswered this long is an error; also the wait for "
	    "the dashboards before and after the run, and for PostgreSQL at "
	    "each visit, through a restart"),
	O_STR("token", "TOKEN", token, NULL,
	    "the dashboards' instructor token, allowed every class"),
	O_TEXT("url", "URL", url,
	    "$LABPULSE_INGEST_URL, else http://127.0.0.1:8000",
	    "ingest's base URL"),
	O_FLAG("verify-db", verify_db,
	    "after the run, check that every acknowledged event is in the "
	    "events table once"),
	O_END
};

static const struct prog_opts prog_opts = {
	"loadgen",
	"Simulate a class on a labpulse stack: students post their cell "
	"events to ingest while instructors' dashboards follow their classes "
	"through notify; measure throughput, latency and delivery, then pass "
	"or fail the targets.",
	options, NULL, NULL,
	"SLO metrics: ack_p50 ack_p90 ack_p99 ack_p999 ack_p9999 ack_max and "
	"the same\nwith e2e_ (us, ms or s), delivery (%, the lowest "
	"dashboard's share), lost,\nerrors, missing and duplicated (these two "
	"need --verify-db); operators\n< <= > >= =. Each holds on the whole "
	"run, or the run fails.\n\n"
	"Exit status: 0 every SLO holds, 1 an SLO failed, 64 usage, 69 ingest "
	"cannot\nbe reached, or PostgreSQL within --timeout, 70 internal "
	"error, 71 a system\nerror such as memory running out, 74 an output "
	"file cannot be written.\n"
};

static const char default_slo[] =
	"ack_p99<100ms,e2e_p99<100ms,delivery>=99.5%,lost=0";
/* what --verify-db adds to the default: every event stored, once */
static const char default_slo_db[] =
	"ack_p99<100ms,e2e_p99<100ms,delivery>=99.5%,lost=0,missing=0,"
	"duplicated=0";

static volatile sig_atomic_t interrupted;

/* ---- shared helpers ---- */

int
lg_interrupted(void)
{
	return (int)interrupted;
}

/* splitmix64: small, fast, and good enough to shape a lesson. */
uint64_t
lg_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

double
lg_uniform(uint64_t *s, double lo, double hi)
{
	return lo + (hi - lo) * ((double)(lg_rand(s) >> 11) * 0x1.0p-53);
}

/* ---- options ---- */

static int
opt_proto(const struct opt *o, const char *s, void *cfg, char *err,
    size_t errlen)
{
	static const char *const names[] = { "ws", "sse", "mixed" };
	enum lg_dproto *p = (void *)((char *)cfg + o->off);
	int i;

	for (i = 0; i < 3; i++)
		if (strcmp(s, names[i]) == 0) {
			*p = (enum lg_dproto)i;
			return 0;
		}
	snprintf(err, errlen, "'%s' is not ws, sse or mixed", s);
	return -1;
}

/* One stage, N:DURATION, added to c's. */
static int
stage_parse(struct lg_cfg *c, char *item, char *err, size_t errlen)
{
	struct lg_stage_cfg *st = &c->stages[c->nstages];
	char *colon;

	if (c->nstages == LG_MAX_STAGES) {
		snprintf(err, errlen, "more than %d stages", LG_MAX_STAGES);
		return -1;
	}
	if ((colon = strchr(item, ':')) == NULL) {
		snprintf(err, errlen, "'%s' is not N:DURATION", item);
		return -1;
	}
	*colon = '\0';
	if (parse_real(item, 0, 10e6, &st->value, err, errlen) < 0)
		return -1;
	if (parse_duration_ms(colon + 1, 100, 7 * 86400000L, &st->ms, err,
	    errlen) < 0)
		return -1;
	c->nstages++;
	return 0;
}

/* N:DURATION,...; the numbers are checked against the model later. It
 * fills the stages and their count, so it takes the whole config. */
static int
opt_stages(const struct opt *o, const char *list, void *cfg, char *err,
    size_t errlen)
{
	struct lg_cfg *c = cfg;
	char *copy = strdup(list), *item, *p;
	int rc = 0;

	(void)o;
	if (copy == NULL)
		die_nomem();
	c->nstages = 0;
	for (item = copy; item != NULL && rc == 0; item = p) {
		if ((p = strchr(item, ',')) != NULL)
			*p++ = '\0';
		rc = stage_parse(c, item, err, errlen);
	}
	free(copy);
	return rc;
}

/* The stages against the model: students (whole, within --students) or
 * rates (within --rate). Returns the most of a stage. */
static double
check_stages(struct lg *lg)
{
	struct lg_cfg *c = &lg->cfg;
	double most = 0, v;
	int s;

	if (!opt_given("stages")) {
		c->nstages = 1;
		c->stages[0].ms = c->duration_ms;
		c->stages[0].value = lg->model == MODEL_OPEN ? c->rate :
		    (double)c->students;
	}
	for (s = 0; s < c->nstages; s++) {
		v = c->stages[s].value;
		if (lg->model == MODEL_CLOSED && v != floor(v))
			usage_error("--stages: %g is not a number of students",
			    v);
		if (lg->model == MODEL_CLOSED && opt_given("students") &&
		    v > (double)c->students)
			usage_error("--stages: a stage of %g students in a "
			    "class of --students %ld", v, c->students);
		if (lg->model == MODEL_CLOSED && v > MAX_STUDENTS)
			usage_error("--stages: at most %d students",
			    MAX_STUDENTS);
		if (lg->model == MODEL_OPEN && v > c->rate)
			usage_error("--stages: a stage of %g requests/s above "
			    "--rate %g, the highest a stage may have", v,
			    c->rate);
		if (v > most)
			most = v;
	}
	if (most == 0)
		usage_error("--stages: every stage is empty");
	return most;
}

/* A base URL, resolved once: a bad one is a usage error, one whose host
 * does not resolve cannot be reached. */
static void
check_url(const char *opt, const char *name, const char *url,
    struct url *u)
{
	char err[512];
	int rc;

	/* a base URL: no query, no fragment, no trailing slash */
	if (url_split(url, URL_BASE, u, err, sizeof err) < 0)
		usage_error("--%s: %s", opt, err);
	if ((rc = url_resolve(u, err, sizeof err)) < 0)
		die_kind(rc, "cannot reach %s at %s: %s", name, url, err);
}

/* The targets: the default ones apply what a run can measure. */
static void
check_slo(struct lg *lg)
{
	struct lg_cfg *c = &lg->cfg;
	char err[300];
	int s;

	if (c->slo == NULL)
		c->slo = c->verify_db ? default_slo_db : default_slo;
	if (slo_parse(c->slo, lg->slo, &lg->nslo, err, sizeof err) < 0)
		usage_error("--slo: %s", err);
	if (!opt_given("slo") && c->dashboards == 0)
		for (s = 0; s < lg->nslo; s++)
			lg->slo[s].dropped = strncmp(lg->slo[s].metric, "e2e_",
			    4) == 0;
}

/* Conflicts and what follows from the options, right after parsing. */
static void
check_options(struct lg *lg)
{
	struct lg_cfg *c = &lg->cfg;
	const char *env;
	double most;

	lg->model = c->rate > 0 ? MODEL_OPEN : MODEL_CLOSED;
	if (opt_given("stages") && opt_given("duration"))
		usage_error("--duration and --stages both set the length of "
		    "the run: give one");
	if (opt_given("think") && lg->model == MODEL_OPEN)
		usage_error("--think shapes the closed model's lessons: not "
		    "with --rate");
	if (c->token && c->setup)
		usage_error("--token and --setup both give the dashboards a "
		    "token: give one");
	if (c->db && !c->setup && !c->verify_db)
		usage_error("--db is the database of --setup and --verify-db: "
		    "give one of them");
	if (c->token && (*c->token == '\0' || wsc_has_ctl(c->token) ||
	    strlen(c->token) >= sizeof lg->token))
		usage_error("--token: empty, too long or with control "
		    "characters");
	most = check_stages(lg);
	if (lg->model == MODEL_CLOSED && !opt_given("students"))
		c->students = (long)most;
	if (!opt_given("conns"))
		c->conns = c->students < 256 ? c->students : 256;
	if (lg->model == MODEL_OPEN &&
	    most > (double)c->conns * LG_CONN_PER_MS)
		usage_error("--rate %g needs more than --conns %ld "
		    "connections: without pipelining a connection carries at "
		    "most %d requests/s (one a millisecond), so the rate must "
		    "be at most conns x %d", most, c->conns, LG_CONN_PER_MS,
		    LG_CONN_PER_MS);
	if (c->dashboards > LG_DASH_PER_CLASS * c->classes)
		usage_error("--dashboards %ld: at most %d a class with "
		    "--classes %ld", c->dashboards, LG_DASH_PER_CLASS,
		    c->classes);
	if (c->notify == NULL && (env = getenv("LABPULSE_NOTIFY_URL")) &&
	    *env)
		c->notify = env;
	if (c->dashboards > 0 && c->notify == NULL)
		usage_error("--dashboards %ld needs notify's URL: --notify URL "
		    "or LABPULSE_NOTIFY_URL (or --dashboards 0)",
		    c->dashboards);
	if (c->dashboards > 0 && !c->token && !c->setup)
		usage_error("the dashboards need a token: --token TOKEN or "
		    "--setup (or --dashboards 0)");
	if (c->url == NULL) {
		env = getenv("LABPULSE_INGEST_URL");
		c->url = env && *env ? env : "http://127.0.0.1:8000";
	}
	check_url("url", "ingest", c->url, &lg->ingest);
	if (c->dashboards > 0)
		check_url("notify", "notify", c->notify, &lg->notify);
	check_slo(lg);
	if (c->token)
		snprintf(lg->token, sizeof lg->token, "%s", c->token);
}

/* ---- the run ---- */

static void
on_signal_flag(int sig)
{
	(void)sig;
	interrupted++;
}

static void
cpu_mark(struct lg *lg)
{
	getrusage(RUSAGE_SELF, &lg->ru1);
	lg->cpu_t1 = lg_now_us();
	lg->cpu_user = (double)(lg->ru1.ru_utime.tv_sec -
	    lg->ru0.ru_utime.tv_sec) + (double)(lg->ru1.ru_utime.tv_usec -
	    lg->ru0.ru_utime.tv_usec) / 1e6;
	lg->cpu_sys = (double)(lg->ru1.ru_stime.tv_sec -
	    lg->ru0.ru_stime.tv_sec) + (double)(lg->ru1.ru_stime.tv_usec -
	    lg->ru0.ru_stime.tv_usec) / 1e6;
	lg->cpu_pct = lg->cpu_t1 > lg->cpu_t0 ? 100.0 * (lg->cpu_user +
	    lg->cpu_sys) / ((double)(lg->cpu_t1 - lg->cpu_t0) / 1e6) : 0;
}

static void
progress(struct lg *lg, int final)
{
	char p99[32], line[256];
	const struct lg_tick *t = lg->ntl ? &lg->tl[lg->ntl - 1] : NULL;
	int n;

	/* on a terminal only: quiet when the output goes to a file or a pipe */
	if (lg->cfg.quiet || !isatty(STDOUT_FILENO) || !isatty(STDERR_FILENO))
		return;
	if (final) {
		fputs("\r\033[K", stderr);
		return;
	}
	/* the run so far: its stages merged */
	if (lg->so_far == NULL && (lg->so_far = hist_new()) == NULL)
		die_nomem();
	hist_reset(lg->so_far);
	for (n = 0; n <= lg->stage; n++)
		hist_merge(lg->so_far, lg->st[n].ack);
	fmt_us(p99, sizeof p99, (double)hist_percentile(lg->so_far, 99));
	n = snprintf(line, sizeof line, "%5.0fs  stage %d of %d  %s%g%s",
	    t ? t->t_s : 0, lg->stage, lg->nstages,
	    lg->model == MODEL_CLOSED ? "" : "rate ", lg->st[lg->stage].value,
	    lg->model == MODEL_CLOSED ? " students" : "/s");
	snprintf(line + n, sizeof line - (size_t)n, "  %.0f req/s  ack p99 "
	    "%s  errors %llu%s", t ? t->rps : 0, p99,
	    (unsigned long long)slo_errors(&lg->total),
	    lg->phase == PH_DRAIN ? "  draining" : "");
	fprintf(stderr, "\r%s\033[K", line);
	fflush(stderr);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct lg *lg = arg;
	int64_t now = lg_now_us();
	double dt = (double)(now - lg->last_tick) / 1e6;
	struct lg_tick *t;
	uint64_t err = slo_errors(&lg->total);

	(void)fd;
	(void)what;
	if (dt <= 0)
		return;
	if (lg->ntl == lg->captl) {
		size_t cap = lg->captl ? lg->captl * 2 : 128;
		struct lg_tick *p = realloc(lg->tl, cap * sizeof *p);

		if (p == NULL)
			die_nomem();
		lg->tl = p;
		lg->captl = cap;
	}
	t = &lg->tl[lg->ntl++];
	t->t_s = (double)(now - lg->run_t0) / 1e6;
	t->rps = (double)(lg->total.ok - lg->last_ok) / dt;
	t->eps = (double)(lg->total.ev_acked - lg->last_acked) / dt;
	t->p99_us = hist_percentile(lg->sec_hist, 99);
	t->e2e_p99_us = hist_percentile(lg->sec_e2e, 99);
	t->errors = (unsigned long)(err - lg->last_err);
	t->lost = (unsigned long)(lg->total.ev_lost - lg->last_lost);
	t->stage = lg->stage;
	lg->last_ok = lg->total.ok;
	lg->last_acked = lg->total.ev_acked;
	lg->last_err = err;
	lg->last_lost = lg->total.ev_lost;
	lg->last_tick = now;
	hist_reset(lg->sec_hist);
	hist_reset(lg->sec_e2e);
	progress(lg, 0);
}

static void
finish(struct lg *lg)
{
	if (lg->phase == PH_DONE)
		return;
	lg->phase = PH_DONE;
	event_base_loopbreak(lg->base);
}

void
lg_maybe_drained(struct lg *lg)
{
	if (lg->phase != PH_DRAIN || students_busy(lg))
		return;
	if (dash_all_received(lg))
		finish(lg);
}

/* One-shot timer ev, us from now (at once when past). */
static void
timer_in(struct event *ev, int64_t us)
{
	struct timeval tv;

	if (us < 0)
		us = 0;
	tv.tv_sec = (time_t)(us / 1000000);
	tv.tv_usec = (suseconds_t)(us % 1000000);
	event_add(ev, &tv);
}

static void
start_stage(struct lg *lg, int s)
{
	lg->stage = s;
	lg->stages_run = s + 1;
	lg->st[s].t0 = lg_now_us();
	/* stages end on the plan, so that the open schedule matches them */
	timer_in(lg->stage_ev, lg->run_t0 + lg->plan_end[s] - lg_now_us());
	students_stage(lg, s);
}

static void
end_stages(struct lg *lg)
{
	evtimer_del(lg->stage_ev);
	lg->st[lg->stage].t1 = lg_now_us();
	lg->run_t1 = lg->st[lg->stage].t1;
	lg->phase = PH_DRAIN;
	timer_in(lg->drain_ev, lg->cfg.timeout_ms * 1000);
	students_stop(lg);
	lg_maybe_drained(lg);
}

/* What moves the run on: a stage's end, the end of a wait (--timeout),
 * the check every 50 ms, a stop signal. */
enum wake { W_STAGE, W_TIMEOUT, W_CHECK, W_SIGNAL, W__COUNT };

static void
wake(struct lg *lg, enum wake why)
{
	switch (lg->phase) {
	case PH_DASH:
		/* the wait for the dashboards */
		if (why == W_TIMEOUT || why == W_SIGNAL ||
		    (why == W_CHECK && dash_all_settled(lg)))
			event_base_loopbreak(lg->base);
		break;
	case PH_RUN:
		if (why == W_SIGNAL) {
			log_info("interrupted: ending the run; once more to "
			    "skip the drain");
			lg->interrupted = 1;
			end_stages(lg);
		} else if (why == W_STAGE && lg->stage + 1 < lg->nstages) {
			lg->st[lg->stage].t1 = lg_now_us();
			start_stage(lg, lg->stage + 1);
		} else if (why == W_STAGE)
			end_stages(lg);
		break;
	case PH_DRAIN:
		if (why == W_CHECK)
			lg_maybe_drained(lg);
		else if (why == W_TIMEOUT || why == W_SIGNAL)
			finish(lg);
		break;
	default:
		break;
	}
}

/* The events' argument: the run and what their firing means. */
static struct waker {
	struct lg *lg;
	enum wake why;
} wakers[W__COUNT];

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
	const struct waker *w = arg;

	(void)fd;
	(void)what;
	if (w->why == W_SIGNAL)
		interrupted++;
	wake(w->lg, w->why);
}

static struct event *
new_event(struct lg *lg, evutil_socket_t fd, short what, enum wake why)
{
	struct event *ev;

	wakers[why] = (struct waker){ lg, why };
	ev = event_new(lg->base, fd, what, on_wake, &wakers[why]);
	if (ev == NULL)
		die_nomem();
	return ev;
}

/* The dashboards first: they must see the run from its first event. */
static void
await_dashboards(struct lg *lg)
{
	int s;

	if (lg->ndash == 0 || interrupted)
		return;
	lg->phase = PH_DASH;
	dash_connect_all(lg);
	timer_in(lg->drain_ev, lg->cfg.timeout_ms * 1000);
	event_base_dispatch(lg->base);
	evtimer_del(lg->drain_ev);
	for (s = 0; s < lg->ndash; s++)
		if (!lg->dash[s].live && lg->dash[s].state != D_REFUSED)
			log_warn("dashboard %d (%s) is not live after %ld ms"
			    "%s%s; the run starts without it", s,
			    lg->dash[s].klass_name, lg->cfg.timeout_ms,
			    lg->dash[s].last_error[0] ? ": " : "",
			    lg->dash[s].last_error);
}

static void
run(struct lg *lg)
{
	struct timeval tick = { 1, 0 }, check = { 0, 50000 };
	struct event *check_ev;
	int i;

	lg->stage_ev = new_event(lg, -1, 0, W_STAGE);
	lg->drain_ev = new_event(lg, -1, 0, W_TIMEOUT);
	check_ev = new_event(lg, -1, EV_PERSIST, W_CHECK);
	lg->sig_ev[0] = new_event(lg, SIGINT, EV_SIGNAL | EV_PERSIST,
	    W_SIGNAL);
	lg->sig_ev[1] = new_event(lg, SIGTERM, EV_SIGNAL | EV_PERSIST,
	    W_SIGNAL);
	lg->tick_ev = event_new(lg->base, -1, EV_PERSIST, on_tick, lg);
	if (lg->tick_ev == NULL)
		die_nomem();
	evsignal_add(lg->sig_ev[0], NULL);
	evsignal_add(lg->sig_ev[1], NULL);
	evtimer_add(check_ev, &check);
	await_dashboards(lg);

	getrusage(RUSAGE_SELF, &lg->ru0);
	lg->cpu_t0 = lg_now_us();
	lg->run_t0 = lg_now_us();
	lg->run_t0_wall = lg_wall_us();
	lg->last_tick = lg->run_t0;
	lg->phase = PH_RUN;
	students_start(lg);
	evtimer_add(lg->tick_ev, &tick);
	start_stage(lg, 0);
	if (interrupted) {
		lg->interrupted = 1;
		end_stages(lg);
	}
	if (lg->phase != PH_DONE)
		event_base_dispatch(lg->base);
	lg->drain_t1 = lg_now_us();
	if (lg->drain_t1 - lg->last_tick > 200000)
		on_tick(-1, 0, lg);
	cpu_mark(lg);
	lg->phase = PH_DONE;
	progress(lg, 1);
	students_abandon(lg);
	/* what the end gave up on counts in the last second, so the
	 * timeline adds up to the total */
	if (lg->ntl > 0) {
		lg->tl[lg->ntl - 1].lost += (unsigned long)(lg->total.ev_lost -
		    lg->last_lost);
		lg->last_lost = lg->total.ev_lost;
	}
	dash_close_all(lg);

	event_free(lg->stage_ev);
	event_free(lg->tick_ev);
	event_free(lg->drain_ev);
	event_free(check_ev);
	for (i = 0; i < 2; i++)
		event_free(lg->sig_ev[i]);
	lg->stage_ev = lg->tick_ev = lg->drain_ev = NULL;
}

/* A stage's histograms, or the whole run's: the uncorrected one in the
 * open model only. */
static void
metrics_init(const struct lg *lg, struct lg_metrics *m)
{
	m->ack = hist_new();
	m->e2e = hist_new();
	if (lg->model == MODEL_OPEN)
		m->ack_unc = hist_new();
	if (m->ack == NULL || m->e2e == NULL ||
	    (lg->model == MODEL_OPEN && m->ack_unc == NULL))
		die_nomem();
}

static void
metrics_free(struct lg_metrics *m)
{
	hist_free(m->ack);
	hist_free(m->ack_unc);
	hist_free(m->e2e);
}

/* Each SLO on the whole run, which decides, and on each stage, to name
 * the first that failed. */
static void
judge(struct lg *lg)
{
	struct lg_slo_result *r;
	int s, k;

	lg->slo_stage = calloc((size_t)(lg->stages_run ? lg->stages_run : 1) *
	    (size_t)(lg->nslo ? lg->nslo : 1), sizeof *lg->slo_stage);
	if (lg->slo_stage == NULL)
		die_nomem();
	lg->pass = 1;
	lg->first_failed_stage = -1;
	for (k = 0; k < lg->nslo; k++) {
		if (lg->slo[k].dropped)
			continue;
		lg->slo_total[k] = slo_eval(lg, &lg->slo[k], -1);
		if (!lg->slo_total[k].ok)
			lg->pass = 0;
	}
	for (s = 0; s < lg->stages_run; s++)
		for (k = 0; k < lg->nslo; k++) {
			r = &lg->slo_stage[s * lg->nslo + k];
			if (lg->slo[k].dropped)
				continue;
			*r = slo_eval(lg, &lg->slo[k], s);
			if (!r->ok && lg->first_failed_stage < 0)
				lg->first_failed_stage = s;
		}
}

/* Totals and shares, once the run is over. */
static void
conclude(struct lg *lg)
{
	struct lg_metrics *t = &lg->total, *m;
	double low;
	int s, j;

	metrics_init(lg, t);
	t->t0 = lg->run_t0;
	t->t1 = lg->run_t1;
	t->duration_s = (double)(t->t1 - t->t0) / 1e6;
	t->value = 0;
	t->t_last = 0;
	for (s = 0; s < lg->stages_run; s++) {
		m = &lg->st[s];
		if (m->t1 == 0)
			m->t1 = lg->run_t1;
		m->duration_s = (double)(m->t1 - m->t0) / 1e6;
		m->busy_s = (double)((m->t_last > m->t1 ? m->t_last : m->t1) -
		    m->t0) / 1e6;
		if (m->t_last > t->t_last)
			t->t_last = m->t_last;
		hist_merge(t->ack, m->ack);
		hist_merge(t->e2e, m->e2e);
		if (m->ack_unc)
			hist_merge(t->ack_unc, m->ack_unc);
		if (m->value > t->value)
			t->value = m->value;
	}
	t->busy_s = (double)((t->t_last > t->t1 ? t->t_last : t->t1) - t->t0) /
	    1e6;
	for (s = -1; s < lg->stages_run; s++) {
		for (low = 100, j = 0; j < lg->ndash; j++)
			low = fmin(low, dash_delivery(lg, &lg->dash[j], s));
		(s < 0 ? t : &lg->st[s])->delivery_pct = low;
	}
	judge(lg);
}

static FILE *
open_output(const char *opt, const char *path)
{
	FILE *f;

	if (path == NULL)
		return NULL;
	f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
	if (f == NULL)
		die(EX_IOERR, "--%s %s: %s", opt, path, strerror(errno));
	return f;
}

/* Write a report and close its file; EX_IOERR in code when it failed. */
static void
write_output(struct lg *lg, const char *opt, const char *path, FILE *f,
    int (*report)(struct lg *, FILE *), int *code)
{
	int wrote;

	if (f == NULL)
		return;
	wrote = report(lg, f);
	if (fflush(f) != 0 || ferror(f) || wrote < 0) {
		log_error("--%s %s: cannot write: %s", opt, path,
		    strerror(errno ? errno : EIO));
		*code = EX_IOERR;
	}
	if (f != stdout && fclose(f) != 0 && *code != EX_IOERR) {
		log_error("--%s %s: cannot write: %s", opt, path,
		    strerror(errno));
		*code = EX_IOERR;
	}
}

/* The run's name: its seed (from the clock unless given), the id every
 * event id and name of the run derives from, and its start. */
static void
name_run(struct lg *lg)
{
	struct lg_cfg *c = &lg->cfg;
	time_t now = time(NULL);
	struct tm tm;
	uint64_t x;

	if (!opt_given("seed"))
		c->seed = (long)(((uint64_t)lg_wall_us() * 2654435761u ^
		    (uint64_t)getpid() << 20) & (uint64_t)MAX_SEED);
	x = (uint64_t)c->seed;
	snprintf(lg->run_id, sizeof lg->run_id, "%08x",
	    (unsigned)(lg_rand(&x) >> 32));
	snprintf(lg->prefix, sizeof lg->prefix, "lg-%.16s-", lg->run_id);
	lg->prefix_len = strlen(lg->prefix);
	gmtime_r(&now, &tm);
	strftime(lg->started_at, sizeof lg->started_at, "%Y-%m-%dT%H:%M:%SZ",
	    &tm);
}

/* The open files the connections and dashboards need: too few is a usage
 * error, as the flags ask for more than the system gives. */
static void
need_files(const struct lg_cfg *c)
{
	long want = c->conns + c->dashboards + 64;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t)want)
		usage_error("--conns %ld and --dashboards %ld need %ld open "
		    "files; the limit is %lu (ulimit -n)", c->conns,
		    c->dashboards, want, (unsigned long)rl.rlim_max);
	daemon_nofile(want, "--conns and --dashboards");
}

/* The loop; signals before it only count (a second one cuts the waits
 * for PostgreSQL short), the loop's own events take over within it. */
static struct event_base *
new_base(void)
{
	struct event_config *ecfg;
	struct event_base *base;
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal_flag;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((ecfg = event_config_new()) == NULL)
		die_nomem();
	/* see http.c: evhttp's interest changes, folded per loop turn */
	event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	event_config_set_flag(ecfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	base = event_base_new_with_config(ecfg);
	event_config_free(ecfg);
	if (base == NULL)
		die(EX_OSERR, "cannot set up the event loop");
	return base;
}

/* What the run needs before it starts: files, the loop, ingest answering,
 * PostgreSQL for --setup and --verify-db, the students and dashboards. */
static void
acquire(struct lg *lg)
{
	struct lg_cfg *c = &lg->cfg;
	char err[512];
	int s;

	need_files(c);
	name_run(lg);
	lg->json_f = open_output("json", c->json);
	lg->csv_f = open_output("csv", c->csv);
	lg->html_f = open_output("html", c->html);
	lg->base = new_base();
	lg->phase = PH_HEALTH;
	http_health(lg);
	if (lg->health_status < 200 || lg->health_status > 299)
		die(EX_UNAVAILABLE, "cannot reach ingest at %s: %s", c->url,
		    lg->health_error[0] ? lg->health_error : "no answer");
	if ((c->setup || c->verify_db) && db_open(lg, err, sizeof err) < 0)
		die(EX_UNAVAILABLE, "%s", err);
	if (c->setup && db_setup(lg, err, sizeof err) < 0)
		die(EX_UNAVAILABLE, "--setup: cannot add instructor %s: %s",
		    lg->instructor, err);
	lg->nstages = c->nstages;
	for (s = 0; s < lg->nstages; s++) {
		metrics_init(lg, &lg->st[s]);
		lg->st[s].value = c->stages[s].value;
		lg->plan_end[s] = (s ? lg->plan_end[s - 1] : 0) +
		    c->stages[s].ms * 1000;
	}
	if ((lg->sec_hist = hist_new()) == NULL ||
	    (lg->sec_e2e = hist_new()) == NULL)
		die_nomem();
	if (http_init(lg, err, sizeof err) < 0)
		die(EX_OSERR, "%s", err);
	students_init(lg);
	dash_init(lg);
}

/* After the run: the instructor revoked (one left active is a token left
 * valid: the run fails), the events checked, the verdict and the reports.
 * Returns the exit status. */
static int
release(struct lg *lg)
{
	struct lg_cfg *c = &lg->cfg;
	char err[512];
	int code = EX_OK, db_failed = 0, s;

	http_free(lg);
	if (c->setup && db_revoke(lg) < 0)
		db_failed = 1;
	if (c->verify_db && lg_interrupted() < 2 &&
	    db_verify(lg, err, sizeof err) < 0) {
		log_error("--verify-db: %s", err);
		db_failed = 1;
	}
	conclude(lg);
	if (lg->cpu_pct >= 90)
		log_warn("loadgen used %.0f%% of a core: it may have been the "
		    "bottleneck", lg->cpu_pct);
	if (!c->quiet)
		report_text(lg, stdout);
	write_output(lg, "json", c->json, lg->json_f, report_json, &code);
	write_output(lg, "csv", c->csv, lg->csv_f, report_csv, &code);
	write_output(lg, "html", c->html, lg->html_f, report_html, &code);
	if (fflush(stdout) != 0 && code == EX_OK)
		code = EX_IOERR;
	if (code == EX_OK)
		code = db_failed ? EX_UNAVAILABLE : lg->pass ? EX_OK : EX_CHECK;

	students_free(lg);
	dash_free(lg);
	for (s = 0; s < LG_MAX_STAGES; s++)
		metrics_free(&lg->st[s]);
	metrics_free(&lg->total);
	hist_free(lg->sec_hist);
	hist_free(lg->sec_e2e);
	hist_free(lg->so_far);
	free(lg->tl);
	free(lg->slo_stage);
	if (lg->verify.done) {
		jv_free(lg->verify.missing_ids);
		jv_free(lg->verify.duplicated_ids);
	}
	db_close(lg);
	event_base_free(lg->base);
	libevent_global_shutdown();
	return code;
}

int
main(int argc, char **argv)
{
	static struct lg lgs;
	struct lg *lg = &lgs;

	log_init("labpulse-loadgen");
	opt_parse(&prog_opts, argc, argv, &lg->cfg);
	check_options(lg);
	acquire(lg);
	run(lg);
	return release(lg);
}
