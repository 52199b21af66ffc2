/* prog.c: how a program ends: the exit statuses by name, the fatal error,
 * the usage error. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "prog.h"

/* Every status a program exits with. labpulse(7)'s EXIT STATUS lists the
 * same (tests/conventions.bats compares them). */
const struct exit_row exit_table[] = {
	{ EX_OK,		"EX_OK",
	  "Success, including a stop after SIGTERM." },
	{ EX_CHECK,		"EX_CHECK",
	  "A check failed, such as a service level objective or a threshold." },
	{ 2,			"CRITICAL",
	  "poolstat --check: a threshold's critical level is passed." },
	{ 3,			"UNKNOWN",
	  "poolstat --check: the state could not be read." },
	{ EX_USAGE,		"EX_USAGE",
	  "Usage: an unknown option, a bad option value, or options in conflict." },
	{ EX_DATAERR,		"EX_DATAERR",	"Bad input data." },
	{ EX_NOINPUT,		"EX_NOINPUT",
	  "An input that cannot be opened, such as a file or socket to read from." },
	{ EX_UNAVAILABLE,	"EX_UNAVAILABLE",
	  "A service is unavailable, such as PostgreSQL or a port in use." },
	{ EX_SOFTWARE,		"EX_SOFTWARE",	"An internal error." },
	{ EX_OSERR,		"EX_OSERR",
	  "An operating system error, such as a socket that cannot be bound, or "
	  "no memory." },
	{ EX_IOERR,		"EX_IOERR",	"An input or output error." },
	{ EX_TEMPFAIL,		"EX_TEMPFAIL",
	  "A temporary failure; trying again later may succeed." },
	{ EX_CONFIG,		"EX_CONFIG",
	  "A configuration error, such as a token file that is not valid." },
	{ 0, NULL, NULL }
};

/* err.h's kinds, in their order. */
static const int kind_status[ERR__COUNT] = {
	[ERR_USAGE] = EX_USAGE,
	[ERR_DATA] = EX_DATAERR,
	[ERR_NOINPUT] = EX_NOINPUT,
	[ERR_UNAVAILABLE] = EX_UNAVAILABLE,
	[ERR_SOFTWARE] = EX_SOFTWARE,
	[ERR_OS] = EX_OSERR,
	[ERR_IO] = EX_IOERR,
	[ERR_TEMP] = EX_TEMPFAIL,
	[ERR_CONFIG] = EX_CONFIG,
};

int (*prog_fatal_hook)(const char *msg, int code);

int
exit_status(int kind)
{
	if (kind < 0)
		kind = -kind;
	if (kind <= 0 || kind >= ERR__COUNT)
		return EX_OSERR;
	return kind_status[kind];
}

static void __attribute__((noreturn))
vdie(int code, int with_usage, const char *fmt, va_list ap)
{
	char msg[2048];

	vsnprintf(msg, sizeof msg, fmt, ap);
	/* first, so that a program can leave a terminal's alternate screen
	 * before the message is written */
	if (prog_fatal_hook)
		code = prog_fatal_hook(msg, code);
	log_error("%s", msg);
	if (with_usage)
		opt_usage();
	exit(code);
}

void
die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdie(code, 0, fmt, ap);
}

void
die_kind(int kind, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdie(exit_status(kind), kind == ERR_USAGE || kind == -ERR_USAGE, fmt,
	    ap);
}

void
die_nomem(void)
{
	die(EX_OSERR, "out of memory");
}

void
usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdie(EX_USAGE, 1, fmt, ap);
}
