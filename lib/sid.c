/* sid.c: Redis stream ids, parsed strictly: an id comes from clients
 * (?since=, Last-Event-ID) as often as from Redis. */
#include <inttypes.h>
#include <stdio.h>

#include "sid.h"

/* Decimal digits at *p into *v, advancing *p: 0, or -1 when there is no
 * digit or the number passes UINT64_MAX. strtoull is not used: it takes
 * blanks and a sign. */
static int
digits(const char **p, uint64_t *v)
{
	const char *s = *p;
	uint64_t n = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (n > (UINT64_MAX - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	*p = s;
	*v = n;
	return 0;
}

int
sid_parse(const char *s, struct sid *out)
{
	uint64_t ms, seq = 0;

	if (s == NULL || digits(&s, &ms) < 0)
		return -1;
	if (*s == '-') {
		s++;
		if (digits(&s, &seq) < 0)
			return -1;
	}
	if (*s != '\0')
		return -1;
	out->ms = ms;
	out->seq = seq;
	return 0;
}

int
sid_cmp(struct sid a, struct sid b)
{
	if (a.ms != b.ms)
		return a.ms < b.ms ? -1 : 1;
	if (a.seq != b.seq)
		return a.seq < b.seq ? -1 : 1;
	return 0;
}

void
sid_format(struct sid id, char buf[SID_LEN])
{
	snprintf(buf, SID_LEN, "%" PRIu64 "-%" PRIu64, id.ms, id.seq);
}

struct sid
sid_next(struct sid *last, uint64_t now_ms)
{
	struct sid next = { now_ms, 0 };

	if (next.ms <= last->ms) {
		next.ms = last->ms;
		next.seq = last->seq + 1;
	}
	*last = next;
	return next;
}
