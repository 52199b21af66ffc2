/* prog.h: what every program's main does alike with its command line:
 * the usage, a usage error, a fatal error, a number in range. Only cmd/
 * exits; these live here, linked into each program, not in lib/. */
#ifndef LABPULSE_PROG_H
#define LABPULSE_PROG_H

#include <signal.h>
#include <stddef.h>

#include "group.h"
#include "stats.h"

/* Each program defines its usage lines and the rest of its --help. */
extern const char usage_text[];
extern const char help_text[];

/* The usage on stdout with the help and exit 0, or on stderr and exit code. */
void usage(int code) __attribute__((noreturn));
/* Log the reason, print the usage on stderr, exit 64. */
void usage_error(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));
/* Log the reason and exit code. */
void die(int code, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 2, 3)));
/* Parse the argument of --name with fn (parse_long, parse_size,
 * parse_duration_ms) within [min, max], or a usage error naming it. */
void opt_range(const char *name, int (*fn)(const char *, long, long, long *,
    char *, size_t), const char *s, long min, long max, long *out);

/* getopt_long (opterr 0, optstring ":...") refused an option: its reason
 * and the usage, exit 64. */
void bad_option(int ch, char *const argv[]) __attribute__((noreturn));
/* No operands are taken: a usage error naming the first, if any. */
void no_operands(int argc, char *const argv[]);

/* The synchronous loops (batch-commit, route): serve the stats socket on
 * base (NULL: nothing to serve) without waiting; wait up to ms while
 * serving it, returning early once *stop is set. */
void prog_serve(struct event_base *base);
void prog_idle(struct event_base *base, long ms, volatile sig_atomic_t *stop);

/* The stats socket of the daemon name: --stats opt, none for none, else the
 * default path. One that cannot be made is fatal (71) when opt named it,
 * a warning otherwise. NULL when there is none. */
struct stats_server *prog_stats(struct event_base *base, const char *name,
    const char *opt, stats_fill_fn fn, void *arg);

/* A consumer group's on_state: one log line when Redis is lost for a new
 * reason, one when it is back. */
void prog_group_state(struct group *g, int up, void *arg);

/* The listening sockets of an HTTP daemon: those systemd passed (socket
 * activation), else one per address of listen, or dflt when there is none.
 * Exits 64 when both are given or an address is bad, 71 when a socket
 * cannot be made, 78 when systemd passed more than max. Returns how many
 * descriptors it put in fds. */
int prog_listen(const char *const *listen, int nlisten, const char *dflt,
    int *fds, int max);
/* The addresses of the listening sockets, blank-separated, for the ready
 * log line and systemd's STATUS=. */
void prog_describe(const int *fds, int n, char *buf, size_t len);

#endif
