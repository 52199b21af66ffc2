/* poolstat: every pool, queue and delivery figure of labpulse in one view:
 * the daemons' stats sockets, PostgreSQL and Redis, as a table redrawn like
 * top, lines like vmstat, JSON or Prometheus text; or one monitoring-plugin
 * line and its exit status. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "parse.h"
#include "poolstat.h"
#include "stats.h"

static const char usage_text[] =
"usage: labpulse poolstat [--db CONNINFO] [--redis URL] [--rundir DIR]\n"
"           [--socket PATH]... [--json | --prometheus | --lines]\n"
"           [--watch [SECONDS]] [--count N] [--sample DURATION]\n"
"           [--record FILE] [--replay FILE] [--check] [--warn EXPR]...\n"
"           [--crit EXPR]... [--timeout DURATION] [--no-postgres]\n"
"           [--no-redis]\n"
"       labpulse poolstat --help | --version\n";

static const char help_text[] =
"\n"
"Show the connection pools, queues and delivery of every labpulse daemon,\n"
"of PostgreSQL and of Redis in one view; or check them, and exit with the\n"
"status of a monitoring plugin.\n"
"\n"
"  --check                  print one line, POOLSTAT STATE - REASONS | PERFDATA,\n"
"                           and exit 0 OK, 1 WARNING, 2 CRITICAL or 3 UNKNOWN\n"
"  --count N                with --watch or --replay, stop after N ticks\n"
"  --crit EXPR              critical thresholds (default: pool_util>=80%,\n"
"                           queue_util>=90%,stream_lag>=10000,delivery<99.5%,\n"
"                           daemons_down>=1)\n"
"  --db CONNINFO            PostgreSQL, a conninfo string or URI\n"
"                           (default: $DATABASE_URL, else the PG* variables)\n"
"  --json                   each tick as a JSON object on one line\n"
"  --lines                  each tick as one line, like vmstat, even on a\n"
"                           terminal\n"
"  --no-postgres            leave PostgreSQL out\n"
"  --no-redis               leave Redis out\n"
"  --prometheus             each tick in the Prometheus text format 0.0.4\n"
"  --record FILE            also append each tick, as JSON, to FILE\n"
"  --redis URL              redis://HOST[:PORT][/DB] or unix:PATH\n"
"                           (default: $LABPULSE_REDIS, else redis://127.0.0.1:6379/0)\n"
"  --replay FILE            show the ticks --record wrote, connecting to nothing;\n"
"                           with --watch, one every SECONDS\n"
"  --rundir DIR             the folder of the daemons' stats sockets\n"
"                           (default: $LABPULSE_RUNDIR, else /run/labpulse)\n"
"  --sample DURATION        without --watch, take two samples this far apart for\n"
"                           the rates; 0 takes one, no rates (default: 500ms)\n"
"  --socket PATH            read this stats socket rather than the rundir's; may\n"
"                           be given more than once\n"
"  --timeout DURATION       for each socket, PostgreSQL and Redis (default: 2s)\n"
"  --warn EXPR              warning thresholds\n"
"                           (default: pool_util>=70%,queue_util>=70%,\n"
"                           stream_lag>=1000)\n"
"  --watch [SECONDS]        a tick every SECONDS, 0.1 to 86400 (default: 2): on a\n"
"                           terminal the table redrawn in place, else one line\n"
"                           a tick\n"
"  -h, --help               show this help\n"
"  -V, --version            show the version\n"
"\n"
"EXPR is METRIC OP NUMBER[UNIT],... with OP one of > >= < <= and METRIC one of\n"
"pool_util (%), queue_util (%), cl_waiting, maxwait (us, ms or s), stream_lag,\n"
"pending, delivery (%) and daemons_down; each replaces the default of its metric.\n";

enum {
	OPT_CHECK = 256, OPT_COUNT, OPT_CRIT, OPT_DB, OPT_JSON, OPT_LINES,
	OPT_NO_POSTGRES, OPT_NO_REDIS, OPT_PROMETHEUS, OPT_RECORD, OPT_REDIS,
	OPT_REPLAY, OPT_RUNDIR, OPT_SAMPLE, OPT_SOCKET, OPT_TIMEOUT, OPT_WARN,
	OPT_WATCH
};

static const struct option longopts[] = {
	{ "check",	 no_argument,	    NULL, OPT_CHECK },
	{ "count",	 required_argument, NULL, OPT_COUNT },
	{ "crit",	 required_argument, NULL, OPT_CRIT },
	{ "db",		 required_argument, NULL, OPT_DB },
	{ "help",	 no_argument,	    NULL, 'h' },
	{ "json",	 no_argument,	    NULL, OPT_JSON },
	{ "lines",	 no_argument,	    NULL, OPT_LINES },
	{ "no-postgres", no_argument,	    NULL, OPT_NO_POSTGRES },
	{ "no-redis",	 no_argument,	    NULL, OPT_NO_REDIS },
	{ "prometheus",	 no_argument,	    NULL, OPT_PROMETHEUS },
	{ "record",	 required_argument, NULL, OPT_RECORD },
	{ "redis",	 required_argument, NULL, OPT_REDIS },
	{ "replay",	 required_argument, NULL, OPT_REPLAY },
	{ "rundir",	 required_argument, NULL, OPT_RUNDIR },
	{ "sample",	 required_argument, NULL, OPT_SAMPLE },
	{ "socket",	 required_argument, NULL, OPT_SOCKET },
	{ "timeout",	 required_argument, NULL, OPT_TIMEOUT },
	{ "version",	 no_argument,	    NULL, 'V' },
	{ "warn",	 required_argument, NULL, OPT_WARN },
	{ "watch",	 optional_argument, NULL, OPT_WATCH },
	{ NULL, 0, NULL, 0 }
};

/* Under --check, every failure is an UNKNOWN line on stdout and status 3:
 * a monitoring system reads those, not stderr. */
static int check_mode;

static volatile sig_atomic_t stop, winch;
static int term_on;		/* in the alternate screen */

static const char term_enter_seq[] = "\033[?1049h\033[?25l";
static const char term_leave_seq[] = "\033[?25h\033[?1049l";

static void
unknown(const char *msg)
{
	printf("POOLSTAT UNKNOWN - %s\n", msg);
	fflush(stdout);
}

static void __attribute__((noreturn))
usage(int code)
{
	fputs(usage_text, code ? stderr : stdout);
	if (code == 0)
		fputs(help_text, stdout);
	exit(code);
}

/* A usage error: its reason and the usage on stderr, 64; under --check
 * the reason on an UNKNOWN line too, and 3. */
static void __attribute__((noreturn, format(printf, 1, 2)))
bad_usage(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_error("%s", msg);
	fputs(usage_text, stderr);
	if (check_mode) {
		unknown(msg);
		exit(ST_UNKNOWN);
	}
	exit(64);
}

static void __attribute__((noreturn, format(printf, 2, 3)))
die(int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (term_on)
		(void)!write(STDOUT_FILENO, term_leave_seq,
		    sizeof term_leave_seq - 1);
	log_error("%s", msg);
	if (check_mode) {
		unknown(msg);
		exit(ST_UNKNOWN);
	}
	exit(code);
}

static void
opt_range(const char *name, int (*fn)(const char *, long, long, long *,
    char *, size_t), const char *s, long min, long max, long *out)
{
	char err[200];

	if (fn(s, min, max, out, err, sizeof err) < 0)
		bad_usage("--%s: %s", name, err);
}

/* SECONDS: a decimal number, fractions allowed, 0.1 to 86400. */
static long
parse_seconds(const char *opt, const char *s)
{
	size_t digits = strspn(s, "0123456789"), frac = 0;
	double x;

	if (s[digits] == '.')
		frac = strspn(s + digits + 1, "0123456789");
	if (digits == 0 || s[digits + (s[digits] == '.' ? frac + 1 : 0)] ||
	    (s[digits] == '.' && frac == 0))
		bad_usage("--%s: invalid number of seconds '%s'", opt, s);
	x = strtod(s, NULL);
	if (!(x >= 0.1 && x <= 86400))
		bad_usage("--%s: '%s' out of range (0.1 to 86400 seconds)", opt,
		    s);
	return lround(x * 1000);
}

/* Is --check among the arguments, before any is parsed? */
static int
wants_check(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		/* getopt_long takes any unambiguous prefix */
		if (strlen(argv[i]) >= 4 && strncmp(argv[i], "--check",
		    strlen(argv[i])) == 0)
			return 1;
	}
	return 0;
}

static void
parse_args(int argc, char **argv, struct ps_cfg *c)
{
	char err[600];
	int ch;

	c->sample_ms = 500;
	c->timeout_ms = 2000;
	c->sockets = calloc(argc, sizeof *c->sockets);
	if (c->sockets == NULL)
		die(71, "out of memory");
	check_defaults(c);
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":hV", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_CHECK:
			c->check = 1;
			break;
		case OPT_COUNT:
			opt_range("count", parse_long, optarg, 1, 1000000000L,
			    &c->count);
			break;
		case OPT_CRIT:
		case OPT_WARN:
			if (check_parse(c, ch == OPT_CRIT ? L_CRIT : L_WARN,
			    ch == OPT_CRIT ? "--crit" : "--warn", optarg, err,
			    sizeof err) < 0)
				bad_usage("%s", err);
			break;
		case OPT_DB:
			c->db = optarg;
			break;
		case 'h':
			usage(0);
		case OPT_JSON:
			c->format = FMT_JSON;
			c->formats++;
			break;
		case OPT_LINES:
			c->format = FMT_LINES;
			c->formats++;
			break;
		case OPT_NO_POSTGRES:
			c->no_postgres = 1;
			break;
		case OPT_NO_REDIS:
			c->no_redis = 1;
			break;
		case OPT_PROMETHEUS:
			c->format = FMT_PROM;
			c->formats++;
			break;
		case OPT_RECORD:
			c->record = optarg;
			break;
		case OPT_REDIS:
			c->redis_url = optarg;
			break;
		case OPT_REPLAY:
			c->replay = optarg;
			break;
		case OPT_RUNDIR:
			c->rundir = optarg;
			break;
		case OPT_SAMPLE:
			opt_range("sample", parse_duration_ms, optarg, 0, 60000,
			    &c->sample_ms);
			break;
		case OPT_SOCKET:
			c->sockets[c->nsockets++] = optarg;
			break;
		case OPT_TIMEOUT:
			opt_range("timeout", parse_duration_ms, optarg, 1,
			    60000, &c->timeout_ms);
			break;
		case 'V':
			printf("labpulse poolstat %s\n", LABPULSE_VERSION);
			exit(0);
		case OPT_WATCH:
			/* --watch=N, --watch N, or alone the interval of top */
			if (optarg == NULL && optind < argc &&
			    argv[optind][0] != '\0' &&
			    strchr("0123456789.", argv[optind][0]))
				optarg = argv[optind++];
			c->watch_ms = optarg ? parse_seconds("watch", optarg) :
			    2000;
			break;
		default:
			parse_option_error(ch, optind, argv, err, sizeof err);
			bad_usage("%s", err);
		}
	}
	if (optind < argc)
		bad_usage("unexpected argument '%s'", argv[optind]);
	if (c->formats > 1)
		bad_usage("--json, --prometheus and --lines: choose one");
	if (c->check && (c->watch_ms || c->count || c->formats))
		bad_usage("--check prints one line: it goes with no --watch, "
		    "--count, --json, --prometheus or --lines");
	if (c->count && !c->watch_ms && !c->replay)
		bad_usage("--count goes with --watch or --replay");
	if (c->record && c->replay)
		bad_usage("--record and --replay go apart: a replay reads "
		    "what a record wrote");
	if (c->nsockets && c->rundir)
		bad_usage("--socket names the sockets: it goes with no "
		    "--rundir");
}

/* ---- output ---- */

struct out {
	const struct ps_cfg *cfg;
	enum ps_format format;
	int term;		/* the table redrawn in place */
	int record_fd;
	long shown;
	jv last;		/* the tick on screen, to redraw it */
	const char *last_note;
	struct sbuf buf;
};

static void
out_write(const char *s, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(STDOUT_FILENO, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			/* a reader that went away, as head(1) does */
			if (errno == EPIPE) {
				if (term_on)
					(void)!write(STDOUT_FILENO,
					    term_leave_seq,
					    sizeof term_leave_seq - 1);
				exit(74);
			}
			die(74, "cannot write to standard output: %s",
			    strerror(errno));
		}
		s += w;
		n -= w;
	}
}

static void
on_signal(int sig)
{
	if (sig == SIGWINCH)
		winch = 1;
	else
		stop = 1;
}

static void
catch(int sig, void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fn;	/* no SA_RESTART: a wait ends at once */
	sigaction(sig, &sa, NULL);
}

/* Ctrl-Z: leave the terminal as it was while stopped, and take it again
 * when continued. */
static void
on_tstp(int sig)
{
	int saved = errno;
	sigset_t set;

	if (term_on)
		(void)!write(STDOUT_FILENO, term_leave_seq,
		    sizeof term_leave_seq - 1);
	signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
	catch(sig, on_tstp);
	if (term_on)
		(void)!write(STDOUT_FILENO, term_enter_seq,
		    sizeof term_enter_seq - 1);
	winch = 1;
	errno = saved;
}

static void
term_enter(void)
{
	catch(SIGWINCH, on_signal);
	catch(SIGTSTP, on_tstp);
	term_on = 1;
	out_write(term_enter_seq, sizeof term_enter_seq - 1);
}

static void
term_leave(void)
{
	if (!term_on)
		return;
	out_write(term_leave_seq, sizeof term_leave_seq - 1);
	term_on = 0;
}

/* Clear, home, and the table cut to the screen: no line wraps and nothing
 * scrolls. */
static void
term_draw(const struct sbuf *tbl)
{
	struct sbuf f = { NULL, 0, 0 };
	struct winsize ws;
	int rows = 24, cols = 80, r = 0, c;
	const char *p = tbl->s ? tbl->s : "", *nl;
	size_t i, n;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 &&
	    ws.ws_col > 0) {
		rows = ws.ws_row;
		cols = ws.ws_col;
	}
	sb_printf(&f, "\033[H\033[2J");
	while (*p && r < rows) {
		nl = strchr(p, '\n');
		n = nl ? (size_t)(nl - p) : strlen(p);
		for (i = 0, c = 0; i < n; i++)
			if (((unsigned char)p[i] & 0xC0) != 0x80 && ++c > cols)
				break;
		sb_printf(&f, "%s%.*s", r ? "\n" : "", (int)i, p);
		r++;
		p += n + (nl != NULL);
	}
	out_write(f.s, f.len);
	sb_free(&f);
}

static void
record(struct out *o, jv tick)
{
	jv s;
	const char *t;
	struct sbuf line = { NULL, 0, 0 };
	ssize_t w;

	if (o->record_fd < 0)
		return;
	s = jv_dump_string(jv_copy(tick), 0);
	t = jv_string_value(s);
	sb_printf(&line, "%s\n", t);
	jv_free(s);
	/* one write a line, so that a reader never sees half of one */
	w = write(o->record_fd, line.s, line.len);
	if (w != (ssize_t)line.len)
		die(74, "--record %s: cannot write: %s", o->cfg->record,
		    w < 0 ? strerror(errno) : "short write");
	sb_free(&line);
}

static void
emit(struct out *o, jv tick, const struct raw *raw, const char *note)
{
	struct sbuf *b = &o->buf;
	jv s;

	sb_reset(b);
	switch (o->format) {
	case FMT_TABLE:
		if (o->shown && !o->term)
			sb_printf(b, "\n");
		show_table(b, o->cfg, tick, note);
		if (o->term) {
			term_draw(b);
			jv_free(o->last);
			o->last = jv_copy(tick);
			o->last_note = note;
			o->shown++;
			return;
		}
		break;
	case FMT_LINES:
		if (o->shown % 20 == 0)
			show_line_header(b);
		show_line(b, o->cfg, tick);
		break;
	case FMT_JSON:
		s = jv_dump_string(jv_copy(tick), 0);
		sb_printf(b, "%s\n", jv_string_value(s));
		jv_free(s);
		break;
	case FMT_PROM:
		if (o->shown)
			sb_printf(b, "\n");
		show_prometheus(b, o->cfg, tick, raw);
		break;
	}
	out_write(b->s ? b->s : "", b->len);
	o->shown++;
}

static void
out_open(struct out *o, const struct ps_cfg *c)
{
	memset(o, 0, sizeof *o);
	o->cfg = c;
	o->format = c->format;
	o->record_fd = -1;
	o->last = jv_null();
	/* a watch not on a terminal is a log: one line a tick */
	if (c->watch_ms && c->format == FMT_TABLE) {
		if (isatty(STDOUT_FILENO))
			o->term = 1;
		else
			o->format = FMT_LINES;
	}
	if (c->record) {
		o->record_fd = open(c->record, O_WRONLY | O_APPEND | O_CREAT |
		    O_CLOEXEC, 0644);
		if (o->record_fd < 0)
			die(74, "--record %s: %s", c->record, strerror(errno));
	}
	if (c->watch_ms) {
		catch(SIGINT, on_signal);
		catch(SIGTERM, on_signal);
	}
	if (o->term)
		term_enter();
}

static void
out_close(struct out *o)
{
	term_leave();
	if (o->record_fd >= 0)
		close(o->record_fd);
	jv_free(o->last);
	sb_free(&o->buf);
}

/* Sleep until the monotonic time until_us, or a signal to stop; redraw
 * when the terminal changed size or came back. */
static void
wait_until(struct out *o, int64_t until_us)
{
	struct timespec ts;
	struct sbuf b = { NULL, 0, 0 };
	int64_t left;

	while (!stop && (left = until_us - stats_mono_us()) > 0) {
		if (winch) {
			winch = 0;
			if (o && o->term &&
			    jv_get_kind(o->last) == JV_KIND_OBJECT) {
				show_table(&b, o->cfg, o->last, o->last_note);
				term_draw(&b);
				sb_free(&b);
			}
		}
		ts.tv_sec = left / 1000000;
		ts.tv_nsec = (left % 1000000) * 1000;
		nanosleep(&ts, NULL);
	}
}

/* ---- the runs ---- */

static jv
one_shot(struct collector *co, const struct ps_cfg *c)
{
	int64_t start = stats_mono_us();
	jv tick = collector_tick(co);

	if (c->sample_ms > 0) {
		jv_free(tick);
		wait_until(NULL, start + c->sample_ms * 1000);
		tick = collector_tick(co);
	}
	return tick;
}

static int
run_live(const struct ps_cfg *c)
{
	struct collector co;
	struct out o;
	struct sbuf line = { NULL, 0, 0 };
	char err[600];
	int64_t next;
	int state;
	jv tick;

	if (collector_init(&co, c, &stop, err, sizeof err) < 0) {
		if (c->redis_url)
			bad_usage("--redis: %s", err);
		die(78, "LABPULSE_REDIS: %s", err);
	}
	out_open(&o, c);
	if (c->check) {
		tick = one_shot(&co, c);
		record(&o, tick);
		state = check_judge(c, tick, co.note, &line);
		printf("%s\n", line.s);
		sb_free(&line);
		jv_free(tick);
		collector_free(&co);
		out_close(&o);
		return state;
	}
	if (!c->watch_ms) {
		tick = one_shot(&co, c);
		record(&o, tick);
		emit(&o, tick, &co.raw, co.note);
		jv_free(tick);
		collector_free(&co);
		out_close(&o);
		return 0;
	}
	next = stats_mono_us();
	while (!stop) {
		tick = collector_tick(&co);
		if (stop) {	/* cut short: not a tick to show */
			jv_free(tick);
			break;
		}
		record(&o, tick);
		emit(&o, tick, &co.raw, co.note);
		jv_free(tick);
		if (c->count && o.shown >= c->count)
			break;
		next += (int64_t)c->watch_ms * 1000;
		if (next < stats_mono_us())
			next = stats_mono_us();
		wait_until(&o, next);
	}
	collector_free(&co);
	out_close(&o);
	return 0;
}

static int
run_replay(const struct ps_cfg *c)
{
	struct out o;
	struct sbuf line = { NULL, 0, 0 };
	char *buf = NULL, msg[300];
	size_t cap = 0;
	ssize_t n;
	long lineno = 0;
	int64_t next = 0;
	int state;
	jv tick, last = jv_null(), m;
	FILE *f;

	f = fopen(c->replay, "r");
	if (f == NULL)
		die(66, "--replay %s: %s", c->replay, strerror(errno));
	out_open(&o, c);
	while (!stop && (n = getline(&buf, &cap, f)) >= 0) {
		lineno++;
		if (strspn(buf, " \t\r\n") == (size_t)n)
			continue;
		tick = jv_parse_sized(buf, (int)n);
		if (!jv_is_valid(tick) || jv_get_kind(tick) != JV_KIND_OBJECT) {
			m = jv_is_valid(tick) ? jv_string("not a JSON object") :
			    jv_invalid_get_msg(jv_copy(tick));
			snprintf(msg, sizeof msg, "%s", jv_get_kind(m) ==
			    JV_KIND_STRING ? jv_string_value(m) : "not JSON");
			one_line(msg);
			jv_free(m);
			jv_free(tick);
			free(buf);
			fclose(f);
			jv_free(last);
			out_close(&o);
			die(65, "--replay %s:%ld: not a tick: %s", c->replay,
			    lineno, msg);
		}
		if (c->check) {
			jv_free(last);
			last = tick;
			continue;
		}
		if (o.shown > 0 && c->watch_ms)
			wait_until(&o, next);
		if (stop) {
			jv_free(tick);
			break;
		}
		next = stats_mono_us() + (int64_t)c->watch_ms * 1000;
		emit(&o, tick, NULL, NULL);
		jv_free(tick);
		if (c->count && o.shown >= c->count)
			break;
	}
	if (ferror(f)) {
		free(buf);
		fclose(f);
		jv_free(last);
		out_close(&o);
		die(66, "--replay %s: %s", c->replay, strerror(errno));
	}
	free(buf);
	fclose(f);
	out_close(&o);
	if (!c->check)
		return 0;
	if (jv_get_kind(last) != JV_KIND_OBJECT) {
		jv_free(last);
		die(ST_UNKNOWN, "--replay %s: no tick in it", c->replay);
	}
	state = check_judge(c, last, NULL, &line);
	printf("%s\n", line.s);
	sb_free(&line);
	jv_free(last);
	return state;
}

int
main(int argc, char **argv)
{
	struct ps_cfg cfg;
	int code;

	memset(&cfg, 0, sizeof cfg);
	log_init("labpulse-poolstat");
	check_mode = wants_check(argc, argv);
	parse_args(argc, argv, &cfg);
	signal(SIGPIPE, SIG_IGN);
	code = cfg.replay ? run_replay(&cfg) : run_live(&cfg);
	free(cfg.sockets);
	if (fflush(stdout) != 0 && !check_mode)
		die(74, "cannot write to standard output: %s", strerror(errno));
	return code;
}
