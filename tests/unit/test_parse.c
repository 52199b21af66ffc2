/* test_parse.c: parse_long, parse_size and parse_duration_ms: values, exact
 * range boundaries, units, and the error text a user reads. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "parse.h"
#include "tap.h"

typedef int parse_fn(const char *, long, long, long *, char *, size_t);

struct good {
	const char *s;
	long min, max, want;
};

struct bad {
	const char *s;
	long min, max;
	const char *msg;	/* exact error text, or NULL for any */
};

static void
check_good(const char *what, parse_fn *fn, const struct good *t, size_t n)
{
	char err[256];
	long v;
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		v = -12345;
		err[0] = '\0';
		rc = fn(t[i].s, t[i].min, t[i].max, &v, err, sizeof err);
		if (!is_int(rc, 0, "%s '%s' in [%ld, %ld] accepted", what,
		    t[i].s, t[i].min, t[i].max))
			diag("    error: %s", err);
		is_int(v, t[i].want, "%s '%s' is %ld", what, t[i].s, t[i].want);
	}
}

static void
check_bad(const char *what, parse_fn *fn, const struct bad *t, size_t n)
{
	char err[256];
	long v;
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		v = -12345;
		strcpy(err, "(unset)");
		rc = fn(t[i].s, t[i].min, t[i].max, &v, err, sizeof err);
		if (!is_int(rc, -1, "%s '%s' in [%ld, %ld] refused", what,
		    t[i].s, t[i].min, t[i].max))
			diag("    value: %ld", v);
		if (t[i].msg != NULL)
			is_str(err, t[i].msg, "%s '%s': error text", what, t[i].s);
		else
			ok(err[0] != '\0' && strcmp(err, "(unset)") != 0,
			    "%s '%s': an error text (%s)", what, t[i].s, err);
	}
}

static void
test_long(void)
{
	static const struct good good[] = {
		{ "0", 0, 10, 0 },
		{ "7", 0, 10, 7 },
		{ "10", 0, 10, 10 },		/* max exactly */
		{ "1", 1, 65535, 1 },		/* min exactly */
		{ "65535", 1, 65535, 65535 },
		{ "007", 0, 10, 7 },
		{ "-5", -10, 10, -5 },
		{ "-10", -10, 10, -10 },	/* negative min exactly */
		{ "-0", 0, 10, 0 },
		{ "9223372036854775807", 0, LONG_MAX, LONG_MAX },
		{ "-9223372036854775808", LONG_MIN, 0, LONG_MIN },
	};
	static const struct bad bad[] = {
		{ "", 0, 10, "empty number" },
		{ "abc", 0, 10, "invalid number 'abc'" },
		{ "11", 0, 10, "number '11' out of range (0 to 10)" },
		{ "0", 1, 65535, "number '0' out of range (1 to 65535)" },
		{ "65536", 1, 65535, "number '65536' out of range (1 to 65535)" },
		{ "-1", 0, 10, "number '-1' out of range (0 to 10)" },
		{ "-11", -10, 10, "number '-11' out of range (-10 to 10)" },
		{ "-", 0, 10, "invalid number '-'" },
		{ "-x", -10, 10, "invalid number '-x'" },
		{ "-5x", -10, 10, "invalid number '-5x'" },
		{ "12abc", 0, 100, NULL },
		{ "1k", 0, 100000, NULL },	/* no units for a plain number */
		{ "1.5", 0, 10, NULL },
		{ " 5", 0, 10, NULL },
		{ "5 ", 0, 10, NULL },
		{ "0x10", 0, 100, NULL },
		{ "9223372036854775808", 0, LONG_MAX,
		    "invalid number '9223372036854775808'" },
		{ "99999999999999999999999", 0, LONG_MAX, NULL },
		{ "-9223372036854775809", LONG_MIN, 0,
		    "invalid number '-9223372036854775809'" },
	};

	check_good("number", parse_long, good, sizeof good / sizeof good[0]);
	check_bad("number", parse_long, bad, sizeof bad / sizeof bad[0]);
}

static void
test_size(void)
{
	static const struct good good[] = {
		{ "1048576", 0, LONG_MAX, 1048576 },
		{ "0", 0, 10, 0 },
		{ "10b", 0, 100, 10 },
		{ "1k", 0, LONG_MAX, 1024 },
		{ "512k", 0, LONG_MAX, 524288 },
		{ "512K", 0, LONG_MAX, 524288 },
		{ "3kb", 0, LONG_MAX, 3072 },
		{ "1KiB", 0, LONG_MAX, 1024 },
		{ "1kib", 0, LONG_MAX, 1024 },
		{ "2M", 0, LONG_MAX, 2097152 },
		{ "1MiB", 0, LONG_MAX, 1048576 },
		{ "1mb", 0, LONG_MAX, 1048576 },
		{ "1G", 0, LONG_MAX, 1073741824 },
		{ "2GiB", 0, LONG_MAX, 2147483648L },
		{ "1k", 1024, 1048576, 1024 },		/* min exactly */
		{ "1M", 1024, 1048576, 1048576 },	/* max exactly */
		{ "1024k", 1024, 1048576, 1048576 },
		/* the largest multiple of 1 GiB that fits in a long */
		{ "8589934591G", 0, LONG_MAX, 8589934591L << 30 },
	};
	static const struct bad bad[] = {
		{ "", 0, LONG_MAX, "empty size" },
		{ "k", 0, LONG_MAX, "invalid size 'k'" },
		{ "-1", 0, LONG_MAX, "invalid size '-1'" },
		{ "-1k", 0, LONG_MAX, "invalid size '-1k'" },
		{ "1T", 0, LONG_MAX, "invalid size '1T': unknown unit 'T'" },
		{ "1.5M", 0, LONG_MAX, "invalid size '1.5M': unknown unit '.5M'" },
		{ "1 k", 0, LONG_MAX, NULL },
		{ "1kk", 0, LONG_MAX, NULL },
		{ "1Mi", 0, LONG_MAX, NULL },
		{ "lots", 0, LONG_MAX, NULL },
		{ "1023", 1024, 1048576, "size '1023' out of range (1024 to 1048576)" },
		{ "1048577", 1024, 1048576, NULL },
		{ "1025k", 1024, 1048576, NULL },
		{ "2M", 1024, 1048576, "size '2M' out of range (1024 to 1048576)" },
		{ "8589934592G", 0, LONG_MAX,
		    "size '8589934592G' out of range (0 to 9223372036854775807)" },
		{ "9223372036854775807k", 0, LONG_MAX, NULL },
		{ "99999999999999999999", 0, LONG_MAX,
		    "invalid size '99999999999999999999'" },
	};

	check_good("size", parse_size, good, sizeof good / sizeof good[0]);
	check_bad("size", parse_size, bad, sizeof bad / sizeof bad[0]);
}

static void
test_duration(void)
{
	static const struct good good[] = {
		{ "500ms", 0, LONG_MAX, 500 },
		{ "30s", 0, LONG_MAX, 30000 },
		{ "2m", 0, LONG_MAX, 120000 },
		{ "2min", 0, LONG_MAX, 120000 },
		{ "1h", 0, LONG_MAX, 3600000 },
		{ "1H", 0, LONG_MAX, 3600000 },
		{ "5", 0, LONG_MAX, 5000 },		/* bare seconds */
		{ "0", 0, LONG_MAX, 0 },
		{ "0ms", 0, LONG_MAX, 0 },
		{ "100ms", 100, 10000, 100 },		/* min exactly */
		{ "10s", 100, 10000, 10000 },		/* max exactly */
		{ "10", 100, 10000, 10000 },
		{ "10000ms", 100, 10000, 10000 },
		{ "9223372036854775s", 0, LONG_MAX, 9223372036854775000L },
	};
	static const struct bad bad[] = {
		{ "", 0, LONG_MAX, "empty duration" },
		{ "-1s", 0, LONG_MAX, "invalid duration '-1s'" },
		{ "-1", 0, LONG_MAX, "invalid duration '-1'" },
		{ "s", 0, LONG_MAX, "invalid duration 's'" },
		{ "1d", 0, LONG_MAX, "invalid duration '1d': unknown unit 'd'" },
		{ "1.5s", 0, LONG_MAX, NULL },
		{ "1sec", 0, LONG_MAX, NULL },
		{ "1 s", 0, LONG_MAX, NULL },
		{ "forever", 0, LONG_MAX, NULL },
		{ "99ms", 100, 10000,
		    "duration '99ms' out of range (100 to 10000)" },
		{ "10001ms", 100, 10000, NULL },
		{ "11", 100, 10000, "duration '11' out of range (100 to 10000)" },
		{ "0", 100, 10000, NULL },
		{ "9223372036854776s", 0, LONG_MAX, NULL },
		{ "9223372036854775807h", 0, LONG_MAX, NULL },
		{ "9223372036854775807", 0, LONG_MAX, NULL },	/* bare: x1000 */
		{ "99999999999999999999ms", 0, LONG_MAX, NULL },
	};

	check_good("duration", parse_duration_ms, good,
	    sizeof good / sizeof good[0]);
	check_bad("duration", parse_duration_ms, bad,
	    sizeof bad / sizeof bad[0]);
}

/* A short error buffer is cut, never overrun. */
static void
test_short_buffer(void)
{
	char err[8];
	long v;

	memset(err, 'x', sizeof err);
	is_int(parse_size("1T", 0, LONG_MAX, &v, err, sizeof err), -1,
	    "short error buffer: still refused");
	is_str(err, "invalid", "short error buffer: text cut to fit");
}

int
main(void)
{
	test_long();
	test_size();
	test_duration();
	test_short_buffer();
	return done_testing();
}
