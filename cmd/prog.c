/* prog.c: the command-line helpers every program's main shares. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
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
