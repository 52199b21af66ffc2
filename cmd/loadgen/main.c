/* loadgen: prove a 200-student class works before the semester does.
 * Simulated students post their cell events to ingest while simulated
 * instructors' dashboards follow their classes through notify; the run
 * measures throughput, acknowledgement and end-to-end latency and delivery,
 * optionally checks what reached PostgreSQL, and passes or fails its SLOs. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
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

const char usage_text[] =
"usage: labpulse loadgen [--url URL] [--notify URL] [--students N] [--classes N]\n"
"           [--dashboards M] [--dashboard-proto ws|sse|mixed] [--token TOKEN]\n"
"           [--setup] [--db CONNINFO] [--duration DURATION] [--stages LIST]\n"
"           [--rate R] [--think FACTOR] [--batch N] [--conns N] [--seed N]\n"
"           [--slo LIST] [--verify-db] [--json FILE] [--csv FILE]\n"
"           [--html FILE] [--quiet] [--timeout DURATION]\n"
"       labpulse loadgen --help | --version\n";

const char help_text[] =
"Simulate a class on a labpulse stack: students post their cell events to\n"
"ingest while instructors' dashboards follow their classes through notify;\n"
"measure throughput, latency and delivery, then pass or fail the targets.\n"
"\n"
"  --batch N                events in one POST: a student sends once it has\n"
"                           N (default: 1)\n"
"  --classes N              classes loadgen-0 to loadgen-<N-1>; student i is\n"
"                           in class i % N (default: 10)\n"
"  --conns N                keep-alive connections the students share\n"
"                           (default: the students, at most 256)\n"
"  --csv FILE               one row per stage, then a total row\n"
"  --dashboard-proto ws|sse|mixed\n"
"                           the dashboards' protocol; mixed: even ones\n"
"                           WebSocket, odd ones SSE (default: mixed)\n"
"  --dashboards M           dashboards, dashboard j watching class j % N\n"
"                           (default: 10; at most 256, and 64 a class)\n"
"  --db CONNINFO            PostgreSQL for --setup and --verify-db\n"
"                           (default: $DATABASE_URL, else PG* variables)\n"
"  --duration DURATION      the run as one stage this long (default: 60s)\n"
"  --html FILE              a self-contained page: verdict, tables, charts\n"
"  --json FILE              every figure, with whole latency distributions\n"
"  --notify URL             notify's base URL (default: $LABPULSE_NOTIFY_URL;\n"
"                           without one, --dashboards must be 0)\n"
"  --quiet                  no progress line, no summary\n"
"  --rate R                 open model: R requests/s in all, sent on schedule\n"
"                           whatever the server does, latency counted from\n"
"                           each one's due time; refused when R exceeds\n"
"                           conns x 1000 (a connection carries a request a\n"
"                           millisecond); with --stages, the highest rate a\n"
"                           stage may have\n"
"  --seed N                 random seed; the run id and event ids derive from\n"
"                           it (default: from the clock)\n"
"  --setup                  add an instructor loadgen-RUNID allowed every\n"
"                           class with a fresh token; revoke it at the end\n"
"  --slo LIST               targets, METRIC OP VALUE separated by commas\n"
"                           (default: ack_p99<100ms,e2e_p99<100ms,\n"
"                           delivery>=99.5%,lost=0, and with --verify-db\n"
"                           missing=0,duplicated=0)\n"
"  --stages LIST            N:DURATION,...: students per stage, or with\n"
"                           --rate requests/s per stage\n"
"  --students N             simulated students (default: 200, or the most of\n"
"                           a stage)\n"
"  --think FACTOR           scale the pauses of a student's lesson; 0 posts\n"
"                           back to back (default: 1; not with --rate)\n"
"  --timeout DURATION       a request unanswered this long is an error; also\n"
"                           the wait for the dashboards before and after the\n"
"                           run, and for PostgreSQL at each visit, through\n"
"                           a restart (default: 10s)\n"
"  --token TOKEN            the dashboards' instructor token, allowed every\n"
"                           class\n"
"  --url URL                ingest's base URL (default: $LABPULSE_INGEST_URL,\n"
"                           else http://127.0.0.1:8000)\n"
"  --verify-db              after the run, check that every acknowledged\n"
"                           event is in the events table once\n"
"  -h, --help               show this help\n"
"  -V, --version            show the version\n"
"\n"
"SLO metrics: ack_p50 ack_p90 ack_p99 ack_p999 ack_p9999 ack_max and the same\n"
"with e2e_ (us, ms or s), delivery (%, the lowest dashboard's share), lost,\n"
"errors, missing and duplicated (these two need --verify-db); operators\n"
"< <= > >= =. Each holds on the whole run, or the run fails.\n"
"\n"
"Exit status: 0 every SLO holds, 1 an SLO failed, 64 usage, 69 ingest cannot\n"
"be reached, or PostgreSQL within --timeout, 70 internal error, 74 an output\n"
"file cannot be written.\n";

static const char default_slo[] =
	"ack_p99<100ms,e2e_p99<100ms,delivery>=99.5%,lost=0";
/* what --verify-db adds to the default: every event stored, once */
static const char default_slo_db[] =
	"ack_p99<100ms,e2e_p99<100ms,delivery>=99.5%,lost=0,missing=0,"
	"duplicated=0";

enum {
	OPT_BATCH = 256, OPT_CLASSES, OPT_CONNS, OPT_CSV, OPT_DASHBOARD_PROTO,
	OPT_DASHBOARDS, OPT_DB, OPT_DURATION, OPT_HTML, OPT_JSON, OPT_NOTIFY,
	OPT_QUIET, OPT_RATE, OPT_SEED, OPT_SETUP, OPT_SLO, OPT_STAGES,
	OPT_STUDENTS, OPT_THINK, OPT_TIMEOUT, OPT_TOKEN, OPT_URL, OPT_VERIFY_DB
};

static const struct option longopts[] = {
	{ "batch",		required_argument, NULL, OPT_BATCH },
	{ "classes",		required_argument, NULL, OPT_CLASSES },
	{ "conns",		required_argument, NULL, OPT_CONNS },
	{ "csv",		required_argument, NULL, OPT_CSV },
	{ "dashboard-proto",	required_argument, NULL, OPT_DASHBOARD_PROTO },
	{ "dashboards",		required_argument, NULL, OPT_DASHBOARDS },
	{ "db",			required_argument, NULL, OPT_DB },
	{ "duration",		required_argument, NULL, OPT_DURATION },
	{ "help",		no_argument,	   NULL, 'h' },
	{ "html",		required_argument, NULL, OPT_HTML },
	{ "json",		required_argument, NULL, OPT_JSON },
	{ "notify",		required_argument, NULL, OPT_NOTIFY },
	{ "quiet",		no_argument,	   NULL, OPT_QUIET },
	{ "rate",		required_argument, NULL, OPT_RATE },
	{ "seed",		required_argument, NULL, OPT_SEED },
	{ "setup",		no_argument,	   NULL, OPT_SETUP },
	{ "slo",		required_argument, NULL, OPT_SLO },
	{ "stages",		required_argument, NULL, OPT_STAGES },
	{ "students",		required_argument, NULL, OPT_STUDENTS },
	{ "think",		required_argument, NULL, OPT_THINK },
	{ "timeout",		required_argument, NULL, OPT_TIMEOUT },
	{ "token",		required_argument, NULL, OPT_TOKEN },
	{ "url",		required_argument, NULL, OPT_URL },
	{ "verify-db",		no_argument,	   NULL, OPT_VERIFY_DB },
	{ "version",		no_argument,	   NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

#define MAX_STUDENTS	100000L
#define MAX_SEED	((1LL << 53) - 1)	/* exact as a JSON number */

static volatile sig_atomic_t interrupted;

/* ---- shared helpers ---- */

int64_t
lg_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
lg_wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
lg_die(int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_error("%s", msg);
	exit(code);
}

void
lg_oom(void)
{
	lg_die(70, "out of memory");
}

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

static double
opt_real(const char *name, const char *s, double min, double max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end != '\0' || errno != 0 || !isfinite(v) ||
	    *s == '+' || *s == '-' || v < min || v > max)
		usage_error("--%s: invalid number '%s' (%g to %g)", name, s,
		    min, max);
	return v;
}

static int
has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* ---- options ---- */

/* N:DURATION,...; values are checked against the model later. */
static void
parse_stages(struct lg_cfg *c, const char *list)
{
	char *copy = strdup(list), *item, *p, *colon, *end, err[200];
	double v;

	if (copy == NULL)
		lg_oom();
	c->nstages = 0;
	for (item = copy; item != NULL; item = p) {
		p = strchr(item, ',');
		if (p)
			*p++ = '\0';
		if (c->nstages == LG_MAX_STAGES)
			usage_error("--stages: more than %d stages",
			    LG_MAX_STAGES);
		colon = strchr(item, ':');
		if (colon == NULL)
			usage_error("--stages: '%s' is not N:DURATION", item);
		*colon = '\0';
		errno = 0;
		v = strtod(item, &end);
		if (end == item || *end != '\0' || errno != 0 ||
		    !isfinite(v) || v < 0 || v > 10e6 || *item == '+')
			usage_error("--stages: invalid number '%s'", item);
		if (parse_duration_ms(colon + 1, 100, 7 * 86400000L,
		    &c->stages[c->nstages].ms, err, sizeof err) < 0)
			usage_error("--stages: %s", err);
		c->stages[c->nstages].value = v;
		c->nstages++;
	}
	free(copy);
}

static void
parse_args(int argc, char **argv, struct lg_cfg *c)
{
	long v;
	int ch;

	c->students = 200;
	c->classes = 10;
	c->dashboards = 10;
	c->batch = 1;
	c->duration_ms = 60000;
	c->timeout_ms = 10000;
	c->think = 1;
	c->dproto = DPROTO_MIXED;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":hV", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_BATCH:
			opt_range("batch", parse_long, optarg, 1, 1000,
			    &c->batch);
			break;
		case OPT_CLASSES:
			opt_range("classes", parse_long, optarg, 1, 10000,
			    &c->classes);
			break;
		case OPT_CONNS:
			opt_range("conns", parse_long, optarg, 1, 20000,
			    &c->conns);
			c->conns_set = 1;
			break;
		case OPT_CSV:
			c->csv = optarg;
			break;
		case OPT_DASHBOARD_PROTO:
			if (strcmp(optarg, "ws") == 0)
				c->dproto = DPROTO_WS;
			else if (strcmp(optarg, "sse") == 0)
				c->dproto = DPROTO_SSE;
			else if (strcmp(optarg, "mixed") == 0)
				c->dproto = DPROTO_MIXED;
			else
				usage_error("--dashboard-proto: '%s' is not "
				    "ws, sse or mixed", optarg);
			break;
		case OPT_DASHBOARDS:
			opt_range("dashboards", parse_long, optarg, 0,
			    LG_MAX_DASH, &c->dashboards);
			break;
		case OPT_DB:
			c->db = optarg;
			break;
		case OPT_DURATION:
			opt_range("duration", parse_duration_ms, optarg, 100,
			    7 * 86400000L, &c->duration_ms);
			c->duration_set = 1;
			break;
		case 'h':
			usage(0);
		case OPT_HTML:
			c->html = optarg;
			break;
		case OPT_JSON:
			c->json = optarg;
			break;
		case OPT_NOTIFY:
			c->notify = optarg;
			break;
		case OPT_QUIET:
			c->quiet = 1;
			break;
		case OPT_RATE:
			c->rate = opt_real("rate", optarg, 0.001, 10e6);
			break;
		case OPT_SEED:
			opt_range("seed", parse_long, optarg, 0, MAX_SEED, &v);
			c->seed = v;
			c->seed_set = 1;
			break;
		case OPT_SETUP:
			c->setup = 1;
			break;
		case OPT_SLO:
			c->slo = optarg;
			c->slo_set = 1;
			break;
		case OPT_STAGES:
			parse_stages(c, optarg);
			c->stages_set = 1;
			break;
		case OPT_STUDENTS:
			opt_range("students", parse_long, optarg, 1,
			    MAX_STUDENTS, &c->students);
			c->students_set = 1;
			break;
		case OPT_THINK:
			c->think = opt_real("think", optarg, 0, 100);
			c->think_set = 1;
			break;
		case OPT_TIMEOUT:
			opt_range("timeout", parse_duration_ms, optarg, 100,
			    3600000L, &c->timeout_ms);
			break;
		case OPT_TOKEN:
			c->token = optarg;
			break;
		case OPT_URL:
			c->url = optarg;
			break;
		case OPT_VERIFY_DB:
			c->verify_db = 1;
			break;
		case 'V':
			printf("labpulse loadgen %s\n", LABPULSE_VERSION);
			exit(0);
		default:
			bad_option(ch, argv);
		}
	}
	no_operands(argc, argv);
}

/* Conflicts and what follows from the options, right after parsing. */
static void
check_cfg(struct lg *lg)
{
	struct lg_cfg *c = &lg->cfg;
	const char *env;
	double most = 0;
	char err[300];
	int s, rc;

	lg->model = c->rate > 0 ? MODEL_OPEN : MODEL_CLOSED;
	if (c->stages_set && c->duration_set)
		usage_error("--duration and --stages both set the length of "
		    "the run: give one");
	if (c->think_set && lg->model == MODEL_OPEN)
		usage_error("--think shapes the closed model's lessons: not "
		    "with --rate");
	if (c->token && c->setup)
		usage_error("--token and --setup both give the dashboards a "
		    "token: give one");
	if (c->db && !c->setup && !c->verify_db)
		usage_error("--db is the database of --setup and --verify-db: "
		    "give one of them");
	if (c->token && (*c->token == '\0' || has_ctl(c->token) ||
	    strlen(c->token) >= sizeof lg->token))
		usage_error("--token: empty, too long or with control "
		    "characters");
	if (!c->stages_set) {
		c->nstages = 1;
		c->stages[0].ms = c->duration_ms;
		c->stages[0].value = lg->model == MODEL_OPEN ? c->rate :
		    (double)c->students;
	}
	for (s = 0; s < c->nstages; s++) {
		double v = c->stages[s].value;

		if (lg->model == MODEL_CLOSED && v != floor(v))
			usage_error("--stages: %g is not a number of students",
			    v);
		if (lg->model == MODEL_CLOSED && c->students_set &&
		    v > (double)c->students)
			usage_error("--stages: a stage of %g students in a "
			    "class of --students %ld", v, c->students);
		if (lg->model == MODEL_CLOSED && v > MAX_STUDENTS)
			usage_error("--stages: at most %ld students",
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
	if (lg->model == MODEL_CLOSED && !c->students_set)
		c->students = (long)most;
	if (!c->conns_set)
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
	rc = url_parse(c->url, &lg->ingest, err, sizeof err);
	if (rc == -1)
		usage_error("--url: %s", err);
	if (rc == -2)
		lg_die(69, "cannot reach ingest at %s: %s", c->url, err);
	if (c->dashboards > 0) {
		rc = url_parse(c->notify, &lg->notify, err, sizeof err);
		if (rc == -1)
			usage_error("--notify: %s", err);
		if (rc == -2)
			lg_die(69, "cannot reach notify at %s: %s", c->notify,
			    err);
	}
	if (c->slo == NULL)
		c->slo = c->verify_db ? default_slo_db : default_slo;
	if (slo_parse(c->slo, lg->slo, &lg->nslo, err, sizeof err) < 0)
		usage_error("--slo: %s", err);
	/* the default targets apply what a run can measure */
	if (!c->slo_set && c->dashboards == 0)
		for (s = 0; s < lg->nslo; s++)
			lg->slo[s].dropped = strncmp(lg->slo[s].metric, "e2e_",
			    4) == 0;
	if (c->token)
		snprintf(lg->token, sizeof lg->token, "%s", c->token);
}

static FILE *
open_output(const char *opt, const char *path)
{
	FILE *f;

	if (path == NULL)
		return NULL;
	f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
	if (f == NULL)
		lg_die(74, "--%s %s: %s", opt, path, strerror(errno));
	return f;
}

static void
close_output(const char *opt, const char *path, FILE *f, int wrote,
    int *code)
{
	if (f == NULL)
		return;
	if (fflush(f) != 0 || ferror(f) || wrote < 0) {
		log_error("--%s %s: cannot write: %s", opt, path,
		    strerror(errno ? errno : EIO));
		*code = 74;
	}
	if (f != stdout && fclose(f) != 0 && *code != 74) {
		log_error("--%s %s: cannot write: %s", opt, path,
		    strerror(errno));
		*code = 74;
	}
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

static uint64_t
errors_of(const struct lg_metrics *m)
{
	return m->err_connect + m->err_timeout + m->err_reset + m->st_4xx +
	    m->st_5xx + m->st_other;
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
		lg_oom();
	hist_reset(lg->so_far);
	for (n = 0; n <= lg->stage; n++)
		hist_merge(lg->so_far, lg->st[n].ack);
	fmt_us(p99, sizeof p99, (double)hist_percentile(lg->so_far, 99));
	if (lg->model == MODEL_CLOSED)
		n = snprintf(line, sizeof line, "%5.0fs  stage %d of %d  %g "
		    "students", t ? t->t_s : 0, lg->stage, lg->nstages,
		    lg->st[lg->stage].value);
	else
		n = snprintf(line, sizeof line, "%5.0fs  stage %d of %d  rate %g/s",
		    t ? t->t_s : 0, lg->stage, lg->nstages,
		    lg->st[lg->stage].value);
	snprintf(line + n, sizeof line - (size_t)n, "  %.0f req/s  ack p99 "
	    "%s  errors %llu%s", t ? t->rps : 0, p99,
	    (unsigned long long)errors_of(&lg->total),
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
	uint64_t err = errors_of(&lg->total);

	(void)fd;
	(void)what;
	if (dt <= 0)
		return;
	if (lg->ntl == lg->captl) {
		size_t cap = lg->captl ? lg->captl * 2 : 128;
		struct lg_tick *p = realloc(lg->tl, cap * sizeof *p);

		if (p == NULL)
			lg_oom();
		lg->tl = p;
		lg->captl = cap;
	}
	t = &lg->tl[lg->ntl++];
	t->t_s = (double)(now - lg->run_t0) / 1e6;
	t->rps = (double)(lg->total.ok - lg->last_ok) / dt;
	t->eps = (double)(lg->total.ev_acked - lg->last_acked) / dt;
	t->p99_us = hist_percentile(lg->sec_hist, 99);
	t->errors = (unsigned long)(err - lg->last_err);
	t->stage = lg->stage;
	lg->last_ok = lg->total.ok;
	lg->last_acked = lg->total.ev_acked;
	lg->last_err = err;
	lg->last_tick = now;
	hist_reset(lg->sec_hist);
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

static void
start_stage(struct lg *lg, int s)
{
	struct timeval tv;
	int64_t end;

	lg->stage = s;
	lg->stages_run = s + 1;
	lg->st[s].t0 = lg_now_us();
	/* stages end on the plan, so that the open schedule matches them */
	end = lg->run_t0 + lg->plan_end[s];
	end -= lg_now_us();
	if (end < 0)
		end = 0;
	tv.tv_sec = (time_t)(end / 1000000);
	tv.tv_usec = (suseconds_t)(end % 1000000);
	evtimer_add(lg->stage_ev, &tv);
	students_stage(lg, s);
}

static void
end_stages(struct lg *lg)
{
	struct timeval tv;

	evtimer_del(lg->stage_ev);
	lg->st[lg->stage].t1 = lg_now_us();
	lg->run_t1 = lg->st[lg->stage].t1;
	lg->phase = PH_DRAIN;
	tv.tv_sec = lg->cfg.timeout_ms / 1000;
	tv.tv_usec = (lg->cfg.timeout_ms % 1000) * 1000;
	evtimer_add(lg->drain_ev, &tv);
	students_stop(lg);
	lg_maybe_drained(lg);
}

static void
on_stage(evutil_socket_t fd, short what, void *arg)
{
	struct lg *lg = arg;

	(void)fd;
	(void)what;
	if (lg->phase != PH_RUN)
		return;
	if (lg->stage + 1 < lg->nstages) {
		lg->st[lg->stage].t1 = lg_now_us();
		start_stage(lg, lg->stage + 1);
	} else {
		end_stages(lg);
	}
}

static void
on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct lg *lg = arg;

	(void)fd;
	(void)what;
	if (lg->phase == PH_DASH)
		event_base_loopbreak(lg->base);
	else if (lg->phase == PH_DRAIN)
		finish(lg);
}

/* Every 50 ms while waiting: the dashboards at the start, the drain. */
static void
on_check(evutil_socket_t fd, short what, void *arg)
{
	struct lg *lg = arg;

	(void)fd;
	(void)what;
	if (lg->phase == PH_DASH && dash_all_settled(lg))
		event_base_loopbreak(lg->base);
	else if (lg->phase == PH_DRAIN)
		lg_maybe_drained(lg);
}

static void
on_sigevent(evutil_socket_t fd, short what, void *arg)
{
	struct lg *lg = arg;

	(void)fd;
	(void)what;
	interrupted++;
	switch (lg->phase) {
	case PH_DASH:
		event_base_loopbreak(lg->base);
		break;
	case PH_RUN:
		log_info("interrupted: ending the run; once more to skip the "
		    "drain");
		lg->interrupted = 1;
		end_stages(lg);
		break;
	case PH_DRAIN:
		finish(lg);
		break;
	default:
		break;
	}
}

static void
run(struct lg *lg)
{
	struct timeval tick = { 1, 0 }, check = { 0, 50000 }, tv;
	struct event *check_ev;
	int s;

	lg->stage_ev = evtimer_new(lg->base, on_stage, lg);
	lg->tick_ev = event_new(lg->base, -1, EV_PERSIST, on_tick, lg);
	lg->drain_ev = evtimer_new(lg->base, on_drain, lg);
	check_ev = event_new(lg->base, -1, EV_PERSIST, on_check, lg);
	lg->sig_ev[0] = evsignal_new(lg->base, SIGINT, on_sigevent, lg);
	lg->sig_ev[1] = evsignal_new(lg->base, SIGTERM, on_sigevent, lg);
	if (lg->stage_ev == NULL || lg->tick_ev == NULL ||
	    lg->drain_ev == NULL || check_ev == NULL ||
	    lg->sig_ev[0] == NULL || lg->sig_ev[1] == NULL)
		lg_oom();
	evsignal_add(lg->sig_ev[0], NULL);
	evsignal_add(lg->sig_ev[1], NULL);
	evtimer_add(check_ev, &check);

	/* the dashboards first: they must see the run from its first event */
	if (lg->ndash > 0 && !interrupted) {
		lg->phase = PH_DASH;
		dash_connect_all(lg);
		tv.tv_sec = lg->cfg.timeout_ms / 1000;
		tv.tv_usec = (lg->cfg.timeout_ms % 1000) * 1000;
		evtimer_add(lg->drain_ev, &tv);
		event_base_dispatch(lg->base);
		evtimer_del(lg->drain_ev);
		for (s = 0; s < lg->ndash; s++)
			if (!lg->dash[s].live && lg->dash[s].state != D_REFUSED)
				log_warn("dashboard %d (%s) is not live after "
				    "%ld ms%s%s; the run starts without it",
				    s, lg->dash[s].klass_name,
				    lg->cfg.timeout_ms,
				    lg->dash[s].last_error[0] ? ": " : "",
				    lg->dash[s].last_error);
	}
	getrusage(RUSAGE_SELF, &lg->ru0);
	lg->cpu_t0 = lg_now_us();
	lg->run_t0 = lg_now_us();
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
	dash_close_all(lg);

	event_free(lg->stage_ev);
	event_free(lg->tick_ev);
	event_free(lg->drain_ev);
	event_free(check_ev);
	event_free(lg->sig_ev[0]);
	event_free(lg->sig_ev[1]);
	lg->stage_ev = lg->tick_ev = lg->drain_ev = NULL;
}

/* Totals and shares, once the run is over. */
static void
conclude(struct lg *lg)
{
	struct lg_metrics *t = &lg->total;
	int s, j, k;

	t->ack = hist_new();
	t->e2e = hist_new();
	if (lg->model == MODEL_OPEN)
		t->ack_unc = hist_new();
	if (t->ack == NULL || t->e2e == NULL ||
	    (lg->model == MODEL_OPEN && t->ack_unc == NULL))
		lg_oom();
	t->t0 = lg->run_t0;
	t->t1 = lg->run_t1;
	t->duration_s = (double)(t->t1 - t->t0) / 1e6;
	t->value = 0;
	t->t_last = 0;
	for (s = 0; s < lg->stages_run; s++) {
		struct lg_metrics *m = &lg->st[s];

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
		double low = 100;

		for (j = 0; j < lg->ndash; j++) {
			double p = dash_delivery(lg, &lg->dash[j], s);

			if (p < low)
				low = p;
		}
		(s < 0 ? t : &lg->st[s])->delivery_pct = low;
	}
	lg->slo_stage = calloc((size_t)(lg->stages_run ? lg->stages_run : 1) *
	    (size_t)(lg->nslo ? lg->nslo : 1), sizeof *lg->slo_stage);
	if (lg->slo_stage == NULL)
		lg_oom();
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
			struct lg_slo_result *r =
			    &lg->slo_stage[s * lg->nslo + k];

			if (lg->slo[k].dropped)
				continue;
			*r = slo_eval(lg, &lg->slo[k], s);
			if (!r->ok && lg->first_failed_stage < 0)
				lg->first_failed_stage = s;
		}
}

static void
free_all(struct lg *lg)
{
	int s;

	students_free(lg);
	dash_free(lg);
	http_free(lg);
	for (s = 0; s < LG_MAX_STAGES; s++) {
		hist_free(lg->st[s].ack);
		hist_free(lg->st[s].ack_unc);
		hist_free(lg->st[s].e2e);
	}
	hist_free(lg->total.ack);
	hist_free(lg->total.ack_unc);
	hist_free(lg->total.e2e);
	hist_free(lg->sec_hist);
	hist_free(lg->so_far);
	free(lg->tl);
	free(lg->slo_stage);
	if (lg->verify.done) {
		jv_free(lg->verify.missing_ids);
		jv_free(lg->verify.duplicated_ids);
	}
	db_close(lg);
	if (lg->base)
		event_base_free(lg->base);
	lg->base = NULL;
	libevent_global_shutdown();
}

static void
raise_nofile(const struct lg *lg)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)(lg->cfg.conns + lg->cfg.dashboards + 64);

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
		usage_error("--conns %ld and --dashboards %ld need %lu open "
		    "files; the limit is %lu (ulimit -n)", lg->cfg.conns,
		    lg->cfg.dashboards, (unsigned long)want,
		    (unsigned long)rl.rlim_max);
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		lg_die(70, "cannot raise the open files limit to %lu: %s",
		    (unsigned long)want, strerror(errno));
}

int
main(int argc, char **argv)
{
	static struct lg lgs;
	struct lg *lg = &lgs;
	struct lg_cfg *c = &lg->cfg;
	struct event_config *ecfg;
	struct sigaction sa;
	uint64_t x;
	char err[512];
	int s, code = 0, db_failed = 0;

	log_init("labpulse-loadgen");
	parse_args(argc, argv, c);
	check_cfg(lg);
	raise_nofile(lg);

	if (!c->seed_set)
		c->seed = (long long)(((uint64_t)lg_wall_us() * 2654435761u ^
		    (uint64_t)getpid() << 20) & (uint64_t)MAX_SEED);
	x = (uint64_t)c->seed;
	snprintf(lg->run_id, sizeof lg->run_id, "%08x",
	    (unsigned)(lg_rand(&x) >> 32));
	snprintf(lg->prefix, sizeof lg->prefix, "lg-%.16s-", lg->run_id);
	lg->prefix_len = strlen(lg->prefix);
	{
		time_t now = time(NULL);
		struct tm tm;

		gmtime_r(&now, &tm);
		strftime(lg->started_at, sizeof lg->started_at,
		    "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	lg->json_f = open_output("json", c->json);
	lg->csv_f = open_output("csv", c->csv);
	lg->html_f = open_output("html", c->html);

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal_flag;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	ecfg = event_config_new();
	if (ecfg == NULL)
		lg_oom();
	/* see http.c: evhttp's interest changes, folded per loop turn */
	event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	event_config_set_flag(ecfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	lg->base = event_base_new_with_config(ecfg);
	event_config_free(ecfg);
	if (lg->base == NULL)
		lg_die(70, "cannot set up the event loop");

	lg->phase = PH_HEALTH;
	http_health(lg);
	if (lg->health_status < 200 || lg->health_status > 299)
		lg_die(69, "cannot reach ingest at %s: %s", c->url,
		    lg->health_error[0] ? lg->health_error : "no answer");

	if (c->setup || c->verify_db) {
		if (db_open(lg, err, sizeof err) < 0)
			lg_die(69, "%s", err);
		if (c->setup && db_setup(lg, err, sizeof err) < 0)
			lg_die(69, "--setup: cannot add instructor %s: %s",
			    lg->instructor, err);
	}

	lg->nstages = c->nstages;
	for (s = 0; s < lg->nstages; s++) {
		struct lg_metrics *m = &lg->st[s];

		m->value = c->stages[s].value;
		m->ack = hist_new();
		m->e2e = hist_new();
		if (lg->model == MODEL_OPEN)
			m->ack_unc = hist_new();
		if (m->ack == NULL || m->e2e == NULL ||
		    (lg->model == MODEL_OPEN && m->ack_unc == NULL))
			lg_oom();
		lg->plan_end[s] = (s ? lg->plan_end[s - 1] : 0) +
		    c->stages[s].ms * 1000;
	}
	lg->sec_hist = hist_new();
	if (lg->sec_hist == NULL)
		lg_oom();
	if (http_init(lg, err, sizeof err) < 0)
		lg_die(70, "%s", err);
	students_init(lg);
	dash_init(lg);

	run(lg);

	http_free(lg);
	/* an instructor left active is a token left valid: the run fails */
	if (c->setup && db_revoke(lg) < 0)
		db_failed = 1;
	if (c->verify_db && lg_interrupted() < 2) {
		if (db_verify(lg, err, sizeof err) < 0) {
			log_error("--verify-db: %s", err);
			db_failed = 1;
		}
	}
	conclude(lg);
	if (lg->cpu_pct >= 90)
		log_warn("loadgen used %.0f%% of a core: it may have been the "
		    "bottleneck", lg->cpu_pct);
	if (!c->quiet)
		report_text(lg, stdout);
	if (lg->json_f)
		close_output("json", c->json, lg->json_f,
		    report_json(lg, lg->json_f), &code);
	if (lg->csv_f)
		close_output("csv", c->csv, lg->csv_f,
		    report_csv(lg, lg->csv_f), &code);
	if (lg->html_f)
		close_output("html", c->html, lg->html_f,
		    report_html(lg, lg->html_f), &code);
	if (fflush(stdout) != 0 && code == 0)
		code = 74;
	if (code == 0)
		code = db_failed ? 69 : lg->pass ? 0 : 1;
	free_all(lg);
	return code;
}
