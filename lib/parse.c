/* parse.c: strict parsing of option values; every number is range-checked. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parse.h"

static int
parse_scaled(const char *s, long min, long max, long *out, char *err,
    size_t errlen, const char *const *units, const long *scales,
    long bare_scale, const char *what)
{
	char *end;
	long long v;
	long scale = bare_scale;
	size_t i;

	if (s == NULL || *s == '\0' || isspace((unsigned char)*s)) {
		snprintf(err, errlen, "empty %s", what);
		return -1;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || errno == ERANGE || v < 0) {
		snprintf(err, errlen, "invalid %s '%s'", what, s);
		return -1;
	}
	if (*end != '\0') {
		for (i = 0; units[i] != NULL; i++)
			if (strcasecmp(end, units[i]) == 0)
				break;
		if (units[i] == NULL) {
			snprintf(err, errlen, "invalid %s '%s': unknown unit '%s'",
			    what, s, end);
			return -1;
		}
		scale = scales[i];
	}
	if (v > LLONG_MAX / scale || v * scale < min || v * scale > max) {
		snprintf(err, errlen, "%s '%s' out of range (%ld to %ld)",
		    what, s, min, max);
		return -1;
	}
	*out = (long)(v * scale);
	return 0;
}

int
parse_long(const char *s, long min, long max, long *out, char *err,
    size_t errlen)
{
	static const char *const units[] = { NULL };
	static const long scales[] = { 1 };

	if (s != NULL && *s == '-') {
		char *end;
		long long v;

		errno = 0;
		v = strtoll(s, &end, 10);
		if (end == s || *end != '\0' || errno == ERANGE) {
			snprintf(err, errlen, "invalid number '%s'", s);
			return -1;
		}
		if (v < min || v > max) {
			snprintf(err, errlen,
			    "number '%s' out of range (%ld to %ld)", s, min, max);
			return -1;
		}
		*out = (long)v;
		return 0;
	}
	return parse_scaled(s, min, max, out, err, errlen, units, scales, 1,
	    "number");
}

int
parse_size(const char *s, long min, long max, long *out, char *err,
    size_t errlen)
{
	static const char *const units[] = { "b", "k", "kb", "kib", "m", "mb",
	    "mib", "g", "gb", "gib", NULL };
	static const long scales[] = { 1, 1024, 1024, 1024, 1L << 20, 1L << 20,
	    1L << 20, 1L << 30, 1L << 30, 1L << 30 };

	return parse_scaled(s, min, max, out, err, errlen, units, scales, 1,
	    "size");
}

int
parse_duration_ms(const char *s, long min, long max, long *out, char *err,
    size_t errlen)
{
	static const char *const units[] = { "ms", "s", "m", "min", "h", NULL };
	static const long scales[] = { 1, 1000, 60000, 60000, 3600000 };

	return parse_scaled(s, min, max, out, err, errlen, units, scales, 1000,
	    "duration");
}

void
parse_option_error(int ch, int optind, char *const argv[], char *err,
    size_t errlen)
{
	const char *opt = optind > 0 ? argv[optind - 1] : "?";
	size_t n = strcspn(opt, "=");

	if (ch == ':')
		snprintf(err, errlen, "option '%.*s' needs a value", (int)n, opt);
	else
		snprintf(err, errlen, "unknown option '%.*s'", (int)n, opt);
}

int
parse_real(const char *s, double min, double max, double *out, char *err,
    size_t errlen)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	if (end == s || *end != '\0' || errno != 0 || !isfinite(*out) ||
	    *s == '+' || *s == '-' || *out < min || *out > max) {
		snprintf(err, errlen, "invalid number '%s'", s);
		return -1;
	}
	return 0;
}

int
parse_hexdigit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
