/* daemon.c: what every daemon does around its own work: the event loop,
 * the signals, the stats socket, readiness, the file limit, the state of
 * Redis and PostgreSQL in the log, the listening sockets. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <event2/event.h>
#include <event2/util.h>

#include "addr.h"
#include "log.h"
#include "prog.h"
#include "sd.h"

/* The daemon of this process, for the handlers of synchronous loops. */
static struct daemon *self;

static void
on_flag(int sig)
{
	if (sig == SIGHUP)
		self->reload = 1;
	else
		self->stop = 1;
}

static void
on_event(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	(void)what;
	if (sig == SIGHUP) {
		if (d->on_reload)
			d->on_reload(d->arg);
		else
			log_info("reload: nothing to reload");
		return;
	}
	if (d->stop)
		return;
	d->stop = 1;
	d->on_stop(d->arg, sig == SIGTERM ? "TERM" : "INT");
}

static void
catch_signals(struct daemon *d)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
	struct sigaction sa;
	size_t i;

	signal(SIGPIPE, SIG_IGN);
	if (d->on_stop == NULL) {
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_flag;	/* no SA_RESTART: waits end early */
		for (i = 0; i < 3; i++)
			sigaction(sigs[i], &sa, NULL);
		return;
	}
	for (i = 0; i < 3; i++) {
		d->ev[i] = evsignal_new(d->base, sigs[i], on_event, d);
		if (d->ev[i] == NULL || evsignal_add(d->ev[i], NULL) < 0)
			die_nomem();
	}
}

/* lib/redis.c's line when Sentinel names another primary. */
static void
redis_notice(const char *msg)
{
	log_info("%s", msg);
}

void
daemon_start(struct daemon *d, const char *name, const char *stats,
    stats_fill_fn fill, void *arg)
{
	char path[300], err[512], host[64];
	int port;

	self = d;
	redis_notice_hook = redis_notice;
	d->name = name;
	d->arg = arg;
	d->redis_up = d->pg_up = -1;
	if (stats && stats_tcp_parse(stats, host, sizeof host, &port, err,
	    sizeof err) < 0)
		usage_error("--stats: %s", err);
	d->base = event_base_new();
	if (d->base == NULL)
		die(EX_OSERR, "cannot create the event loop");
	catch_signals(d);
	if (stats && strcmp(stats, "none") == 0)
		return;
	if (stats)
		snprintf(path, sizeof path, "%s", stats);
	else
		stats_default_path(name, path, sizeof path);
	d->stats = stats_listen(d->base, path, fill, arg, err, sizeof err);
	if (d->stats == NULL && stats)
		die(EX_OSERR, "--stats: %s", err);
	if (d->stats == NULL)
		log_warn("no stats socket: %s", err);
}

void
daemon_nofile(long want, const char *why)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= (rlim_t)want)
		return;
	rl.rlim_cur = rl.rlim_max < (rlim_t)want ? rl.rlim_max : (rlim_t)want;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < (rlim_t)want)
		log_warn("open-file limit %lu is below what %s needs (%ld)",
		    (unsigned long)rl.rlim_cur, why, want);
}

static void
ready(struct daemon *d, const char *status, const char *text)
{
	char state[1200];

	log_info("ready %s", text);
	snprintf(state, sizeof state, "READY=1%s%s", status ? "\nSTATUS=" : "",
	    status ? status : "");
	sd_notify_state(state);
	d->ready = 1;
}

void
daemon_ready(struct daemon *d, const char *status, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	ready(d, status, text);
}

/* The addresses of the listening sockets, blank-separated. */
static void
describe(const int *fds, int n, char *buf, size_t len)
{
	char desc[300];
	size_t off = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < n && off < len - 1; i++) {
		addr_describe(fds[i], desc, sizeof desc);
		off += (size_t)snprintf(buf + off, len - off, "%s%s",
		    i ? " " : "", desc);
	}
}

void
daemon_ready_listening(struct daemon *d, const int *fds, int n,
    const char *fmt, ...)
{
	char addrs[1024], status[1100], rest[1024], text[2100];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rest, sizeof rest, fmt, ap);
	va_end(ap);
	describe(fds, n, addrs, sizeof addrs);
	snprintf(status, sizeof status, "listening on %s", addrs);
	snprintf(text, sizeof text, "listen=%s %s", addrs, rest);
	ready(d, status, text);
}

void
daemon_stopping(struct daemon *d)
{
	if (d->ready == 1)
		sd_notify_state("STOPPING=1");
	d->ready = 2;
}

void
daemon_serve(struct daemon *d)
{
	if (d->base)
		event_base_loop(d->base, EVLOOP_NONBLOCK);
}

void
daemon_idle(struct daemon *d, long ms)
{
	struct timespec ts = { 0, 20 * 1000000L };
	int64_t until = stats_mono_us() + ms * 1000;

	while (!d->stop && stats_mono_us() < until) {
		daemon_serve(d);
		nanosleep(&ts, NULL);
	}
}

/* One line when what is lost is lost anew, or for a new reason; one when
 * it is back. */
static void
state_line(const char *what, const char *url, int *last, char *why,
    size_t whylen, int up, const char *reason)
{
	char at[300] = "";

	if (url)
		snprintf(at, sizeof at, " url=%s", url);
	if (reason == NULL)
		reason = "";
	if (up && *last != 1)
		log_info("connected to %s%s", what, at);
	else if (!up && (*last != 0 || strcmp(why, reason) != 0))
		log_warn("lost %s; retrying%s reason=\"%s\"", what, at, reason);
	snprintf(why, whylen, "%s", up ? "" : reason);
	*last = up;
}

void
daemon_redis_state(struct daemon *d, const char *url, int up,
    const char *reason)
{
	state_line("Redis", url, &d->redis_up, d->redis_why,
	    sizeof d->redis_why, up, reason);
}

void
daemon_pg_state(struct daemon *d, int up, const char *reason)
{
	state_line("PostgreSQL", NULL, &d->pg_up, d->pg_why, sizeof d->pg_why,
	    up, reason);
}

void
daemon_group_state(struct group *g, int up, void *arg)
{
	daemon_redis_state(arg, g->rt.url, up, g->error);
}

void
daemon_end(struct daemon *d)
{
	int i;

	daemon_stopping(d);
	stats_close(d->stats);
	d->stats = NULL;
	for (i = 0; i < 3; i++)
		if (d->ev[i]) {
			event_free(d->ev[i]);
			d->ev[i] = NULL;
		}
	if (d->base)
		event_base_free(d->base);
	d->base = NULL;
}

int
prog_listen(const char *const *listen, int nlisten, const char *dflt,
    int *fds, int max)
{
	int nsd = sd_listen_fds_adopt(), n = 0, i;
	char err[512];

	if (nsd > 0 && nlisten > 0)
		usage_error("--listen conflicts with sockets passed by systemd "
		    "(LISTEN_FDS)");
	if (nsd > max)
		die(EX_CONFIG, "too many sockets passed by systemd (%d, at most "
		    "%d)", nsd, max);
	if (nsd > 0) {
		for (i = 0; i < nsd; i++) {
			fds[n++] = SD_LISTEN_FDS_START + i;
			evutil_make_socket_nonblocking(SD_LISTEN_FDS_START + i);
		}
		return n;
	}
	if (nlisten == 0) {
		listen = &dflt;
		nlisten = 1;
	}
	for (i = 0; i < nlisten && n < max; i++) {
		fds[n] = addr_listen(listen[i], 1024, err, sizeof err);
		if (fds[n] < 0)
			die_kind(fds[n], "%s", err);
		n++;
	}
	return n;
}
