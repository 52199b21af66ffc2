/* tap.c: TAP version 12 output: a plan, one "ok"/"not ok" line per test, and
 * "# got/expected" diagnostics on stderr when a comparison fails. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "tap.h"

static int planned = -1;	/* -1 until plan() or done_testing() */
static int run;
static int failed;

void
plan(int n)
{
	planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

/* The name is printed after "ok N - "; a '#' in it would start a directive. */
static int
result(int pass, const char *fmt, va_list ap)
{
	char name[512];
	const char *p;

	vsnprintf(name, sizeof name, fmt, ap);
	run++;
	if (!pass)
		failed++;
	printf("%sok %d - ", pass ? "" : "not ", run);
	for (p = name; *p != '\0'; p++) {
		if (*p == '#')
			putchar('\\');
		putchar(*p == '\n' ? ' ' : *p);
	}
	putchar('\n');
	fflush(stdout);
	if (!pass)
		diag("  Failed test %d: '%s'", run, name);
	return pass;
}

int
ok(int cond, const char *fmt, ...)
{
	va_list ap;
	int pass;

	va_start(ap, fmt);
	pass = result(cond != 0, fmt, ap);
	va_end(ap);
	return pass;
}

int
tap_is_int(long long got, long long want, const char *fmt, ...)
{
	va_list ap;
	int pass;

	va_start(ap, fmt);
	pass = result(got == want, fmt, ap);
	va_end(ap);
	if (!pass) {
		diag("         got: %lld", got);
		diag("    expected: %lld", want);
	}
	return pass;
}

int
tap_is_str(const char *got, const char *want, const char *fmt, ...)
{
	va_list ap;
	int pass;

	if (got == NULL || want == NULL)
		pass = got == want;
	else {
		const char *a = got, *b = want;

		while (*a != '\0' && *a == *b)
			a++, b++;
		pass = *a == *b;
	}
	va_start(ap, fmt);
	pass = result(pass, fmt, ap);
	va_end(ap);
	if (!pass) {
		if (got != NULL)
			diag("         got: '%s'", got);
		else
			diag("         got: NULL");
		if (want != NULL)
			diag("    expected: '%s'", want);
		else
			diag("    expected: NULL");
	}
	return pass;
}

void
skip(int n, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	while (n-- > 0) {
		printf("ok %d # SKIP %s\n", ++run, why);
		fflush(stdout);
	}
}

void
diag(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("# ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void
bail_out(const char *fmt, ...)
{
	va_list ap;

	printf("Bail out! ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	exit(255);
}

int
done_testing(void)
{
	if (planned < 0) {
		planned = run;
		printf("1..%d\n", run);
		fflush(stdout);
	} else if (run != planned) {
		diag("Looks like you planned %d tests but ran %d.", planned, run);
	}
	if (failed > 0)
		diag("Looks like you failed %d test%s of %d.", failed,
		    failed == 1 ? "" : "s", run);
	if (failed > 0)
		return failed > 254 ? 254 : failed;
	return run == planned ? 0 : 255;
}
