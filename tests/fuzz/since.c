/* since.c: fuzz sid_parse, the stream id parser for ?since= and
 * Last-Event-ID. It must accept exactly DIGITS or DIGITS-DIGITS whose
 * numbers fit in 64 bits, and what it accepts must come back from
 * sid_format as the same id, in canonical form. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sid.h"

/* The digits d[0..n) as a number that fits in 64 bits? */
static int
fits(const char *d, size_t n)
{
	static const char max[] = "18446744073709551615";

	while (n > 1 && *d == '0') {
		d++;
		n--;
	}
	return n < sizeof max - 1 ||
	    (n == sizeof max - 1 && memcmp(d, max, n) <= 0);
}

/* The grammar, checked apart from sid_parse's own loop. */
static int
valid(const char *s)
{
	size_t a = strspn(s, "0123456789"), b;

	if (a == 0 || !fits(s, a))
		return 0;
	if (s[a] == '\0')
		return 1;
	if (s[a] != '-')
		return 0;
	b = strspn(s + a + 1, "0123456789");
	return b > 0 && s[a + 1 + b] == '\0' && fits(s + a + 1, b);
}

/* The canonical text of the numbers in s: no leading zeros, "-0" added. */
static void
canonical(const char *s, char *out, size_t outlen)
{
	size_t o = 0;
	int part = 0;

	while (*s && o + 3 < outlen) {
		while (*s == '0' && s[1] >= '0' && s[1] <= '9')
			s++;
		while (*s >= '0' && *s <= '9' && o + 3 < outlen)
			out[o++] = *s++;
		if (*s == '-') {
			out[o++] = *s++;
			part = 1;
		}
	}
	if (!part) {
		out[o++] = '-';
		out[o++] = '0';
	}
	out[o] = '\0';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), buf[SID_LEN], want[128];
	struct sid a = { 7, 7 }, b;
	int ok;

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';		/* a NUL inside ends it, as in C strings */
	ok = sid_parse(s, &a) == 0;
	if (ok != valid(s))
		abort();
	if (!ok) {
		if (a.ms != 7 || a.seq != 7)	/* nothing written */
			abort();
		free(s);
		return 0;
	}
	sid_format(a, buf);
	if (sid_parse(buf, &b) != 0 || sid_cmp(a, b) != 0 ||
	    sid_cmp(b, a) != 0)
		abort();
	if (strlen(s) < 100) {
		canonical(s, want, sizeof want);
		if (strcmp(buf, want) != 0)
			abort();
	}
	/* the order is the numbers' order */
	if (a.seq < UINT64_MAX) {
		b.seq = a.seq + 1;
		if (sid_cmp(a, b) != -1 || sid_cmp(b, a) != 1)
			abort();
	}
	free(s);
	return 0;
}
