/* prog.h: what every program's main does alike. Only cmd/ exits; lib/
 * returns an error kind (err.h) beside its message, and this maps it.
 *
 * The contract of a program
 * -------------------------
 * A program NAME is the folder cmd/NAME/: main.c and the parts it is made
 * of (the Makefile builds every C file of cmd/NAME/ into bin/NAME, with
 * those of cmd/ itself, lib/ and the libraries). Adding one touches six
 * places, and the tests check each:
 *   1. cmd/NAME/, whose main reads: options -> acquire -> ready -> loop,
 *      and fits on a screen (tests/conventions.bats: under 80 lines);
 *   2. PROGS in the Makefile;
 *   3. man/man1/labpulse-NAME.1, stating each option's range and default
 *      as the option table does ("from MIN to MAX.", "The default is D.");
 *   4. the front's table in cmd/labpulse/main.c;
 *   5. a unit etc/systemd/labpulse-NAME.service, if it is a daemon;
 *   6. tests/NAME.bats, starting what it needs itself (tests/helper).
 *
 * The tests' conventions: a test starts the real PostgreSQL and Redis it
 * needs (tests/helper/common.bash), tracks every process it starts so
 * that it is stopped whatever the outcome (track PID), waits on a
 * condition, never on a sleep (wait_for, wait_until), and asserts what
 * matters: exact error texts, exit statuses, row counts, message order.
 * Unit tests are tests/unit/test_NAME.c in TAP, found by name.
 *
 * Options are declared once, in a table of struct opt: name, argument,
 * type, range, default and help. The table makes getopt's long options,
 * --help, the range checks and the defaults; the man page is tested
 * against --help. Exit statuses are named (<sysexits.h>), from one table
 * here that labpulse(7) is tested against.
 *
 * A daemon is a struct daemon: its event loop, its signals (SIGTERM and
 * SIGINT stop it, SIGHUP reloads), its stats socket, its READY=1, its
 * file limit, and one log line each time Redis or PostgreSQL is lost or
 * back. Its main: parse options, acquire what it needs (dying with a
 * named status when it cannot), daemon_ready(), loop, release.
 *
 * Calls inside a program go one way: main calls its parts, a part calls
 * the ones below it, and a lower part reports back through a callback it
 * was given, never by calling up. */
#ifndef LABPULSE_PROG_H
#define LABPULSE_PROG_H

#include <signal.h>
#include <stddef.h>
#include <sysexits.h>

#include "err.h"
#include "group.h"
#include "stats.h"

/* 1: a check failed (a service level objective, a threshold); 2 and 3
 * are the monitoring-plugin CRITICAL and UNKNOWN of poolstat --check. */
#define EX_CHECK	1

/* The status a kind of failure exits with (EX_OSERR for an unknown one). */
int exit_status(int kind);
/* Each status a program may exit with, named, with what it means; ends
 * at name NULL. labpulse(7) is tested against it (tests/unit/test_prog
 * --exit-table prints it). */
struct exit_row {
	int code;
	const char *name;
	const char *meaning;
};
extern const struct exit_row exit_table[];

/* Set by a program that ends differently: poolstat under --check turns
 * every fatal error into an UNKNOWN line and status 3. Called with the
 * message and the status about to be used; returns the one to use. */
extern int (*prog_fatal_hook)(const char *msg, int code);

/* Log the reason and exit with code (EX_* or EX_CHECK). */
void die(int code, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 2, 3)));
/* The same with the status of an error kind (err.h). */
void die_kind(int kind, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 2, 3)));
/* Out of memory: EX_OSERR, the same in every program. */
void die_nomem(void) __attribute__((noreturn));
/* Log the reason, print the usage on stderr, exit EX_USAGE. */
void usage_error(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));

/* ---- options ---------------------------------------------------------- */

enum opt_type {
	OT_FLAG,	/* no argument: the int at off becomes 1 */
	OT_STR,	/* any text: the const char * at off */
	OT_NAME,	/* text of 1 to max bytes (a number): const char * */
	OT_LONG,	/* an integer from min to max: long */
	OT_SIZE,	/* bytes, "512KiB", "1MiB": long */
	OT_DURATION,	/* "30s", "500ms", "2m": milliseconds in a long */
	OT_REAL,	/* a decimal from min to max, fractions allowed: double */
	OT_LIST,	/* repeatable text: const char *[max], count at aux */
	OT_FN,		/* the option's own parser, fn */
};

struct opt;
/* An OT_FN parser: store what arg means in cfg, or return -1 with the
 * reason (without the option's name) in err. A program declares its own
 * before its table: static opt_parser opt_rate; */
typedef int opt_parser(const struct opt *o, const char *arg, void *cfg,
    char *err, size_t errlen);
typedef opt_parser *opt_fn;

struct opt {
	const char *name;	/* the long name, without the dashes */
	int key;		/* a short letter as well, or 0 */
	enum opt_type type;
	const char *arg;	/* the argument's name in --help: N, URL */
	size_t off;		/* where its value goes in the config */
	const char *min, *max;	/* the range, in the argument's own units */
	const char *dflt;	/* set as if given before the command line */
	const char *help;	/* what it does; --help adds range, default */
	const char *dflt_text;	/* a default that is no value ("$DATABASE_URL,
				 * else PG* variables"), shown as it is */
	opt_fn fn;		/* OT_FN's parser */
	size_t aux;		/* OT_LIST: offset of its int count */
};

/* Table rows, for a config type named by OPT_CFG (#define it first).
 * Numbers' bounds and defaults are text in the option's own units ("1h",
 * "1MiB"), parsed as the command line is, so --help shows them as written.
 * O_TEXT and O_LIST take the default as --help shows it, with no value
 * set: where the program computes it (an environment variable, a host
 * name, systemd's sockets). */
#define OPT_ROW(n, k, t, a, f) (n), (k), (t), (a), offsetof(OPT_CFG, f)
/* The same, refusing to compile when the field is not of the type opt.c
 * stores in it (an array of size -1). */
#define OPT_TYPED(n, t, a, f, ...) (n), 0, (t), (a), offsetof(OPT_CFG, f) + \
	0 * sizeof(char[_Generic(((OPT_CFG *)0)->f, __VA_ARGS__: 1, \
	default: -1)])
#define OPT_STR_ROW(n, t, a, f) \
	OPT_TYPED(n, t, a, f, const char *: 1, char *)
#define O_FLAG(n, f, h) \
	{ OPT_TYPED(n, OT_FLAG, NULL, f, int), NULL, NULL, NULL, (h), NULL, \
	  NULL, 0 }
#define O_STR(n, a, f, d, h) \
	{ OPT_STR_ROW(n, OT_STR, a, f), NULL, NULL, (d), (h), NULL, NULL, 0 }
#define O_TEXT(n, a, f, shown, h) \
	{ OPT_STR_ROW(n, OT_STR, a, f), NULL, NULL, NULL, (h), (shown), NULL, 0 }
#define O_NAME(n, a, f, max, d, h) \
	{ OPT_STR_ROW(n, OT_NAME, a, f), "1", (max), (d), (h), NULL, NULL, 0 }
#define O_NAME_TEXT(n, a, f, max, shown, h) \
	{ OPT_STR_ROW(n, OT_NAME, a, f), "1", (max), NULL, (h), (shown), NULL, \
	  0 }
#define O_LONG(n, f, min, max, d, h) \
	{ OPT_TYPED(n, OT_LONG, "N", f, long), (min), (max), (d), (h), NULL, \
	  NULL, 0 }
#define O_LONG_TEXT(n, f, min, max, shown, h) \
	{ OPT_TYPED(n, OT_LONG, "N", f, long), (min), (max), NULL, (h), \
	  (shown), NULL, 0 }
#define O_REAL(n, a, f, min, max, d, h) \
	{ OPT_TYPED(n, OT_REAL, a, f, double), (min), (max), (d), (h), NULL, \
	  NULL, 0 }
#define O_SIZE(n, f, min, max, d, h) \
	{ OPT_TYPED(n, OT_SIZE, "SIZE", f, long), (min), (max), (d), (h), \
	  NULL, NULL, 0 }
#define O_DURATION(n, f, min, max, d, h) \
	{ OPT_TYPED(n, OT_DURATION, "DURATION", f, long), (min), (max), (d), \
	  (h), NULL, NULL, 0 }
#define O_LIST(n, a, f, cnt, max, shown, h) \
	{ OPT_TYPED(n, OT_LIST, a, f, const char **), NULL, (max), NULL, (h), \
	  (shown), NULL, offsetof(OPT_CFG, cnt) + 0 * sizeof(char[_Generic( \
	  ((OPT_CFG *)0)->cnt, int: 1, default: -1)]) }
#define O_FN(n, a, f, fn, d, h) \
	{ OPT_ROW(n, 0, OT_FN, a, f), NULL, NULL, (d), (h), NULL, (fn), 0 }
#define O_END { NULL, 0, 0, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0 }

/* A program's command line. */
struct prog_opts {
	const char *name;	/* "ingest": "labpulse ingest" in usage */
	const char *summary;	/* --help's first paragraph */
	const struct opt *opts;	/* sorted by name; ends at name NULL */
	const char *operands;	/* after the options in usage ("FILE..."),
				 * NULL when it takes none */
	const char *usage;	/* whole usage lines, when they are not one
				 * line of options (modes, commands) */
	const char *more;	/* --help's last part: environment, examples */
};

/* Set each option's default in cfg, then parse argv into it: --help and
 * --version answer and exit 0, a bad option or value is a usage error,
 * operands where none are taken too. Returns the index of the first
 * operand. An option given twice: the last wins (a list: each adds). */
int opt_parse(const struct prog_opts *p, int argc, char **argv, void *cfg);
/* For an OT_FN parser of an option that takes two words (route's --arg
 * NAME VALUE, as jq's): the next word of the command line, taken, or NULL
 * when there is none. */
const char *opt_next_word(void);
/* Whether --name was on the command line (not only its default). */
int opt_given(const char *name);
/* The usage on stderr, as a usage error prints it. */
void opt_usage(void);
/* --help, on stdout. */
void opt_help(void);

/* ---- daemons ---------------------------------------------------------- */

struct daemon {
	const char *name;	/* "ingest": log lines, stats, STATUS= */
	struct event_base *base;
	struct stats_server *stats;
	/* Event-loop daemons set on_stop, called once on SIGTERM or SIGINT
	 * with its name; synchronous loops leave it NULL and watch stop. */
	void (*on_stop)(void *arg, const char *sig);
	/* SIGHUP; NULL logs "reload: nothing to reload". */
	void (*on_reload)(void *arg);
	void *arg;			/* daemon_start's */
	volatile sig_atomic_t stop;	/* a stop signal came */
	volatile sig_atomic_t reload;	/* synchronous loops: SIGHUP came */
	int ready;
	struct event *ev[3];
	int redis_up, pg_up;		/* the last state logged: -1 none */
	char redis_why[256], pg_why[256];	/* and why it was lost */
};

/* The event loop, the signals and the stats socket (--stats opt; "none"
 * for none). Set on_stop, on_reload and arg before. SIGPIPE is ignored. */
void daemon_start(struct daemon *d, const char *name, const char *stats,
    stats_fill_fn fill, void *arg);
/* Raise the open-file limit towards want; a warning naming why when the
 * hard limit is lower. */
void daemon_nofile(long want, const char *why);
/* Ready: the log line "ready " + the text, and READY=1 (with status as
 * systemd's STATUS=, unless NULL). */
void daemon_ready(struct daemon *d, const char *status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The same for an HTTP daemon: "ready listen=ADDRS " + the text, and
 * STATUS=listening on ADDRS, the addresses of its listening sockets. */
void daemon_ready_listening(struct daemon *d, const int *fds, int n,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Stopping: STOPPING=1 to systemd (once, and only after ready). */
void daemon_stopping(struct daemon *d);
/* Synchronous loops: serve the stats socket without waiting; wait up to
 * ms while serving it, returning early once a stop signal came. */
void daemon_serve(struct daemon *d);
void daemon_idle(struct daemon *d, long ms);
/* One log line when Redis or PostgreSQL is lost for the first time (or
 * for a new reason), one when it is back; nothing when nothing changed. */
void daemon_redis_state(struct daemon *d, const char *url, int up,
    const char *reason);
void daemon_pg_state(struct daemon *d, int up, const char *reason);
/* A consumer group's on_state, with the daemon as its arg. */
void daemon_group_state(struct group *g, int up, void *arg);
/* Release the loop, the signals and the stats socket. */
void daemon_end(struct daemon *d);

/* The listening sockets of an HTTP daemon: those systemd passed (socket
 * activation), else one per address of listen, or dflt when there is none.
 * A usage error when both are given or an address is bad; EX_OSERR when a
 * socket cannot be made, EX_CONFIG when systemd passed more than max.
 * Returns how many descriptors it put in fds. */
int prog_listen(const char *const *listen, int nlisten, const char *dflt,
    int *fds, int max);

#endif
