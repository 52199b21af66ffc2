/* prog.c: the command-line helpers every program's main shares. */
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>
#include <event2/util.h>

#include "addr.h"
#include "log.h"
#include "parse.h"
#include "prog.h"
#include "sd.h"

void
usage(int code)
{
	fputs(usage_text, code ? stderr : stdout);
	if (code == 0)
		fputs(help_text, stdout);
	exit(code);
}

void
usage_error(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_error("%s", msg);
	usage(64);
}

void
die(int code, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_error("%s", msg);
	exit(code);
}

void
opt_range(const char *name, int (*fn)(const char *, long, long, long *,
    char *, size_t), const char *s, long min, long max, long *out)
{
	char err[200];

	if (fn(s, min, max, out, err, sizeof err) < 0)
		usage_error("--%s: %s", name, err);
}

void
bad_option(int ch, char *const argv[])
{
	char why[300];

	parse_option_error(ch, optind, argv, why, sizeof why);
	usage_error("%s", why);
}

void
no_operands(int argc, char *const argv[])
{
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);
}

void
prog_serve(struct event_base *base)
{
	if (base)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

void
prog_idle(struct event_base *base, long ms, volatile sig_atomic_t *stop)
{
	struct timespec ts = { 0, 20 * 1000000L };
	int64_t until = stats_mono_us() + ms * 1000;

	while (!*stop && stats_mono_us() < until) {
		prog_serve(base);
		nanosleep(&ts, NULL);
	}
}

struct stats_server *
prog_stats(struct event_base *base, const char *name, const char *opt,
    stats_fill_fn fn, void *arg)
{
	struct stats_server *s;
	char path[300], err[512];

	if (opt && strcmp(opt, "none") == 0)
		return NULL;
	if (opt)
		snprintf(path, sizeof path, "%s", opt);
	else
		stats_default_path(name, path, sizeof path);
	s = stats_listen(base, path, fn, arg, err, sizeof err);
	if (s == NULL && opt)
		die(71, "--stats: %s", err);
	if (s == NULL)
		log_warn("no stats socket: %s", err);
	return s;
}

void
prog_group_state(struct group *g, int up, void *arg)
{
	(void)arg;
	if (up)
		log_info("connected to Redis url=%s", g->rt.url);
	else
		log_warn("lost Redis; retrying url=%s reason=\"%s\"", g->rt.url,
		    g->error);
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
		die(78, "too many sockets passed by systemd (%d, at most %d)",
		    nsd, max);
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
			die(strstr(err, "bad listen") ? 64 : 71, "%s", err);
		n++;
	}
	return n;
}

void
prog_describe(const int *fds, int n, char *buf, size_t len)
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
