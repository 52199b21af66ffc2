/* legacy.c: the helpers of mains without an option table; going once every
 * program has its table. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "log.h"
#include "parse.h"
#include "prog.h"

void
usage(int code)
{
	fputs(usage_text, code ? stderr : stdout);
	if (code == 0)
		fputs(help_text, stdout);
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
