/* poolstat: every pool, queue and delivery figure of labpulse in one view:
 * the daemons' stats sockets, PostgreSQL and Redis, as a table redrawn like
 * top, lines like vmstat, JSON or Prometheus text; or one monitoring-plugin
 * line and its exit status. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "parse.h"
#include "poolstat.h"
#include "prog.h"
#include "stats.h"

#define TEXT(x)		TEXT_(x)
#define TEXT_(x)	#x

static opt_parser opt_seconds, opt_threshold;

#define OPT_CFG struct ps_cfg
static const struct opt options[] = {
	O_FLAG("check", check, "print one line, POOLSTAT STATE - REASONS | "
	    "PERFDATA, and exit 0 OK, 1 WARNING, 2 CRITICAL or 3 UNKNOWN"),
	O_LONG("count", count, "1", "1000000000", NULL,
	    "with --watch or --replay, stop after N ticks"),
	O_FN("crit", "EXPR", th[L_CRIT], opt_threshold, "pool_util>=80%,"
	    "queue_util>=90%,stream_lag>=10000,delivery<99.5%,daemons_down>=1,"
	    "hooks_dead>=100,replica_lag>=30,redis_replicas<0",
	    "critical thresholds"),
	O_TEXT("db", "CONNINFO", db, "$DATABASE_URL, else the PG* variables",
	    "PostgreSQL, a conninfo string or URI"),
	O_FLAG("json", json, "each tick as a JSON object on one line"),
	O_FLAG("lines", lines,
	    "each tick as one line, like vmstat, even on a terminal"),
	O_FLAG("no-postgres", no_postgres, "leave PostgreSQL out"),
	O_FLAG("no-redis", no_redis, "leave Redis out"),
	O_LIST("pgbouncer", "CONNINFO", pgbouncers, npgbouncers,
	    TEXT(PGBOUNCERS_MAX), NULL, "a PgBouncer's admin console "
	    "(dbname=pgbouncer): its SHOW POOLS beside labpulse's pools; "
	    "repeatable, up to " TEXT(PGBOUNCERS_MAX) " times"),
	O_FLAG("prometheus", prometheus,
	    "each tick in the Prometheus text format 0.0.4"),
	O_STR("record", "FILE", record, NULL,
	    "also append each tick, as JSON, to FILE"),
	O_TEXT("redis", "URL", redis_url,
	    "$LABPULSE_REDIS, else redis://127.0.0.1:6379/0",
	    "redis://HOST[:PORT][/DB], "
	    "sentinel://HOST:PORT[,HOST:PORT...]/MASTER[/DB] or unix:PATH"),
	O_STR("replay", "FILE", replay, NULL, "show the ticks --record wrote, "
	    "connecting to nothing; with --watch, one every SECONDS"),
	O_TEXT("rundir", "DIR", rundir, "$LABPULSE_RUNDIR, else /run/labpulse",
	    "the folder of the daemons' stats sockets"),
	O_DURATION("sample", sample_ms, "0", "1m", "500ms", "without --watch, "
	    "take two samples this far apart for the rates; 0 takes one, no "
	    "rates"),
	O_LIST("socket", "ADDR", sockets, nsockets, TEXT(SOCKETS_MAX), NULL,
	    "read this stats socket (a path, or tcp:ADDRESS:PORT or "
	    "tcp:[IPV6]:PORT of a daemon on another host) rather than the "
	    "rundir's; repeatable, up to " TEXT(SOCKETS_MAX) " times"),
	O_DURATION("timeout", timeout_ms, "1ms", "1m", "2s",
	    "for each socket, PostgreSQL and Redis"),
	O_FN("warn", "EXPR", th[L_WARN], opt_threshold,
	    "pool_util>=70%,queue_util>=70%,stream_lag>=1000,hooks_dead>=1,"
	    "replica_lag>=5",
	    "warning thresholds"),
	/* O_FN with a range its parser reads, in seconds with fractions; its
	 * argument is optional (see prescan) */
	{ OPT_ROW("watch", 0, OT_FN, "[SECONDS]", watch_ms), "0.1", "86400",
	  NULL, "a tick every SECONDS, or every 2 alone: on a terminal the "
	  "table redrawn in place, else one line a tick", NULL, opt_seconds,
	  0 },
	O_END
};

static const struct prog_opts prog_opts = {
	"poolstat",
	"Show the connection pools, queues and delivery of every labpulse "
	"daemon, of PostgreSQL and of Redis in one view; or check them, and "
	"exit with the status of a monitoring plugin.",
	options, NULL, NULL,
	"EXPR is METRIC OP NUMBER[UNIT],... with OP one of > >= < <= and METRIC "
	"one of\npool_util (%), queue_util (%), cl_waiting, maxwait (us, ms or "
	"s), stream_lag,\npending, delivery (%), daemons_down, hooks_dead, "
	"replica_lag (s or ms; a bare\nnumber is seconds) and redis_replicas; "
	"each replaces the default of its metric.\n"
};

/* Under --check, every failure is an UNKNOWN line on stdout and status 3:
 * a monitoring system reads those, not stderr. */
static int check_mode;

static volatile sig_atomic_t stop, winch;
static int term_on;		/* in the alternate screen */

static const char term_enter_seq[] = "\033[?1049h\033[?25l";
static const char term_leave_seq[] = "\033[?25h\033[?1049l";

/* A terminal sequence as it is: from a signal handler too. */
static void
term_put(const char *seq)
{
	(void)!write(STDOUT_FILENO, seq, strlen(seq));
}

/* Leave the alternate screen before a message, or it goes with it. */
static void
term_off(void)
{
	if (term_on)
		term_put(term_leave_seq);
	term_on = 0;
}

/* prog_fatal_hook: the terminal as it was, and under --check the reason
 * on an UNKNOWN line and status 3. */
static int
on_fatal(const char *msg, int code)
{
	term_off();
	if (!check_mode)
		return code;
	printf("POOLSTAT UNKNOWN - %s\n", msg);
	fflush(stdout);
	return ST_UNKNOWN;
}

/* SECONDS: a decimal number, fractions allowed, in the row's range. */
static int
opt_seconds(const struct opt *o, const char *s, void *cfg, char *err,
    size_t errlen)
{
	double x;

	if (parse_real(s, 0, HUGE_VAL, &x, err, errlen) < 0) {
		snprintf(err, errlen, "invalid number of seconds '%s'", s);
		return -1;
	}
	if (!(x >= strtod(o->min, NULL) && x <= strtod(o->max, NULL))) {
		snprintf(err, errlen, "'%s' out of range (%s to %s seconds)", s,
		    o->min, o->max);
		return -1;
	}
	*(long *)(void *)((char *)cfg + o->off) = lround(x * 1000);
	return 0;
}

/* EXPR: each condition replaces its metric's threshold of the level. */
static int
opt_threshold(const struct opt *o, const char *expr, void *cfg, char *err,
    size_t errlen)
{
	return check_parse((struct threshold *)(void *)((char *)cfg + o->off),
	    expr, err, errlen);
}

/* Before the options are parsed: whether --check is among them, as every
 * usage error is then an UNKNOWN line; and --watch with no number after
 * it made --watch=2, the interval of top, as getopt has no optional
 * argument but one joined by '='. */
static void
prescan(int argc, char **argv)
{
	static char watch_alone[] = "--watch=2";
	size_t n;
	int i;

	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		n = strlen(argv[i]);
		/* getopt_long takes any unambiguous prefix */
		if (n >= 4 && strncmp(argv[i], "--check", n) == 0)
			check_mode = 1;
		if (n >= 5 && strncmp(argv[i], "--watch", n) == 0 &&
		    (i + 1 == argc || argv[i + 1][0] == '\0' ||
		    strchr("0123456789.", argv[i + 1][0]) == NULL))
			argv[i] = watch_alone;
	}
}

/* The options in conflict; the format of the one format option given. */
static void
check_options(struct ps_cfg *c)
{
	char host[64], err[300], *perr = NULL;
	PQconninfoOption *ci;
	int i, port;

	if (c->json + c->prometheus + c->lines > 1)
		usage_error("--json, --prometheus and --lines: choose one");
	c->format = c->json ? FMT_JSON : c->prometheus ? FMT_PROM :
	    c->lines ? FMT_LINES : FMT_TABLE;
	if (c->check && (c->watch_ms || c->count || c->format != FMT_TABLE))
		usage_error("--check prints one line: it goes with no --watch, "
		    "--count, --json, --prometheus or --lines");
	if (c->count && !c->watch_ms && !c->replay)
		usage_error("--count goes with --watch or --replay");
	if (c->record && c->replay)
		usage_error("--record and --replay go apart: a replay reads "
		    "what a record wrote");
	if (c->nsockets && c->rundir)
		usage_error("--socket names the sockets: it goes with no "
		    "--rundir");
	for (i = 0; i < c->nsockets; i++)
		if (stats_tcp_parse(c->sockets[i], host, sizeof host, &port,
		    err, sizeof err) < 0)
			usage_error("--socket: %s", err);
	for (i = 0; i < c->npgbouncers; i++) {
		ci = PQconninfoParse(c->pgbouncers[i], &perr);
		if (ci == NULL) {
			snprintf(err, sizeof err, "%s", perr ? perr :
			    "out of memory");
			PQfreemem(perr);
			usage_error("--pgbouncer: %s", one_line(err));
		}
		PQconninfoFree(ci);
	}
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
	int e;

	while (n > 0) {
		w = write(STDOUT_FILENO, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			e = errno;
			term_off();
			/* a reader that went away, as head(1) does */
			if (e == EPIPE)
				exit(EX_IOERR);
			die(EX_IOERR, "cannot write to standard output: %s",
			    strerror(e));
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
		term_put(term_leave_seq);
	signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
	catch(sig, on_tstp);
	if (term_on)
		term_put(term_enter_seq);
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
	if (w != (ssize_t)line.len) {
		die(EX_IOERR, "--record %s: cannot write: %s", o->cfg->record,
		    w < 0 ? strerror(errno) : "short write");
	}
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
			die(EX_IOERR, "--record %s: %s", c->record, strerror(errno));
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

/* ---- the run ---- */

struct run {
	const struct ps_cfg *cfg;
	struct collector co;	/* live */
	FILE *replay;		/* or the file of --replay */
	char *line;
	size_t cap;
	long lineno, ticks;
	int64_t next;		/* when the tick after is due */
	struct out out;
};

static void
acquire(struct run *r, const struct ps_cfg *c)
{
	char err[600];

	memset(r, 0, sizeof *r);
	r->cfg = c;
	if (c->replay) {
		r->replay = fopen(c->replay, "r");
		if (r->replay == NULL)
			die(EX_NOINPUT, "--replay %s: %s", c->replay,
			    strerror(errno));
	} else if (collector_init(&r->co, c, &stop, err, sizeof err) < 0) {
		/* a Redis URL that is not one: the user's words, or the
		 * environment's */
		if (c->redis_url)
			usage_error("--redis: %s", err);
		die(EX_CONFIG, "LABPULSE_REDIS: %s", err);
	}
	out_open(&r->out, c);
}

static void
release(struct run *r)
{
	if (r->replay)
		fclose(r->replay);
	else
		collector_free(&r->co);
	free(r->line);
	out_close(&r->out);
}

/* With --watch, wait for the next tick: one every SECONDS from the first,
 * or from now when late. */
static void
pace(struct run *r)
{
	int64_t now = stats_mono_us();

	if (r->ticks == 0 || !r->cfg->watch_ms) {
		r->next = now;
		return;
	}
	r->next += (int64_t)r->cfg->watch_ms * 1000;
	if (r->next < now)
		r->next = now;
	wait_until(&r->out, r->next);
}

/* The next tick of the file of --replay; 0 at its end. */
static int
replay_tick(struct run *r, jv *tick)
{
	char msg[300];
	ssize_t n;
	jv m;

	while ((n = getline(&r->line, &r->cap, r->replay)) >= 0) {
		r->lineno++;
		if (strspn(r->line, " \t\r\n") == (size_t)n)
			continue;
		*tick = jv_parse_sized(r->line, (int)n);
		if (jv_is_valid(*tick) && jv_get_kind(*tick) == JV_KIND_OBJECT)
			return 1;
		m = jv_is_valid(*tick) ? jv_string("not a JSON object") :
		    jv_invalid_get_msg(jv_copy(*tick));
		snprintf(msg, sizeof msg, "%s", jv_get_kind(m) ==
		    JV_KIND_STRING ? jv_string_value(m) : "not JSON");
		one_line(msg);
		jv_free(m);
		jv_free(*tick);
		die(EX_DATAERR, "--replay %s:%ld: not a tick: %s",
		    r->cfg->replay, r->lineno, msg);
	}
	if (ferror(r->replay)) {
		die(EX_NOINPUT, "--replay %s: %s", r->cfg->replay,
		    strerror(errno));
	}
	return 0;
}

/* The next tick: of the file of --replay, shown when due; a sample each
 * --watch; else one, of two samples --sample apart for the rates. 0 when
 * there is no more. */
static int
next_tick(struct run *r, jv *tick)
{
	const struct ps_cfg *c = r->cfg;
	int64_t start = stats_mono_us();

	if (r->replay) {
		if (!replay_tick(r, tick))
			return 0;
		pace(r);
	} else if (c->watch_ms) {
		pace(r);
		if (stop)
			return 0;
		*tick = collector_tick(&r->co);
	} else {
		if (r->ticks > 0)
			return 0;
		*tick = collector_tick(&r->co);
		if (c->sample_ms > 0) {
			jv_free(*tick);
			wait_until(NULL, start + c->sample_ms * 1000);
			*tick = collector_tick(&r->co);
		}
	}
	r->ticks++;
	return 1;
}

/* --check: the line of the last tick, and its state. */
static int
judge(struct run *r, jv last)
{
	struct sbuf line = { NULL, 0, 0 };
	int state;

	if (jv_get_kind(last) != JV_KIND_OBJECT) {
		jv_free(last);
		die(ST_UNKNOWN, "--replay %s: no tick in it", r->cfg->replay);
	}
	state = check_judge(r->cfg, last, r->replay ? NULL : r->co.note,
	    &line);
	printf("%s\n", line.s);
	sb_free(&line);
	jv_free(last);
	return state;
}

/* Each tick recorded, and shown or, under --check, the last judged;
 * returns the exit status. */
static int
loop(struct run *r)
{
	const struct ps_cfg *c = r->cfg;
	int live = r->replay == NULL;
	jv tick, last = jv_null();

	while (!stop && next_tick(r, &tick)) {
		if (stop) {	/* cut short: not a tick to show */
			jv_free(tick);
			break;
		}
		record(&r->out, tick);
		if (c->check) {
			jv_free(last);
			last = tick;
			continue;
		}
		emit(&r->out, tick, live ? &r->co.raw : NULL,
		    live ? r->co.note : NULL);
		jv_free(tick);
		if (c->count && r->out.shown >= c->count)
			break;
	}
	if (!c->check) {
		jv_free(last);
		return 0;
	}
	return judge(r, last);
}

int
main(int argc, char **argv)
{
	struct ps_cfg cfg;
	struct run run;
	int code;

	log_init("labpulse-poolstat");
	prescan(argc, argv);
	prog_fatal_hook = on_fatal;
	memset(&cfg, 0, sizeof cfg);
	opt_parse(&prog_opts, argc, argv, &cfg);
	check_options(&cfg);
	signal(SIGPIPE, SIG_IGN);

	acquire(&run, &cfg);
	code = loop(&run);
	release(&run);
	if (fflush(stdout) != 0 && !check_mode)
		die(EX_IOERR, "cannot write to standard output: %s",
		    strerror(errno));
	return code;
}
