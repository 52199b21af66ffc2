/* pace.c: the arithmetic that paces hook deliveries (pace.h). The caller
 * passes the time in; nothing here reads a clock. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pace.h"

/* Rates and bursts kept where the arithmetic stays finite and exact. */
#define RATE_MIN	(1.0 / 86400)
#define RATE_MAX	1e5	/* a tenth of a token a microsecond at most */
#define BURST_MAX	1e9
/* A wait no bucket gets past (about 31 years). */
#define WAIT_MAX_US	((int64_t)1e15)
/*
 * Tokens are a sum of products of doubles, so a token due at an exact
 * microsecond can come out a few ulps short of 1. Counting those as a token
 * is what keeps rate 20/min at exactly 3 s; 1e-12 is far above rounding and
 * far below a microsecond's worth at the least rate (1.2e-11).
 */
#define TOKEN_EPS	1e-12

static double
clamp_rate(double rate)
{
	if (!(rate >= RATE_MIN))	/* NaN too */
		return RATE_MIN;
	return rate > RATE_MAX ? RATE_MAX : rate;
}

static double
clamp_burst(double burst)
{
	if (!(burst >= 1))
		return 1;
	return burst > BURST_MAX ? BURST_MAX : burst;
}

/*
 * Tokens after elapsed_us more microseconds: one expression for every
 * caller, so that bucket_wait_us() and bucket_take() agree to the bit.
 * A bucket that filled up within the last microsecond keeps what accrued
 * past burst in that part of a microsecond: a caller at full speed sends
 * at the microsecond after a token was due, and capping there would lose
 * it (a bucket of burst 1 at 3/s would lose 2 us a send, 6.7 ms in 10,000
 * sends). A bucket full for longer holds burst, exactly.
 */
static double
accrue(const struct bucket *b, double tokens, double elapsed_us)
{
	double t = tokens + elapsed_us * b->rate / 1e6;

	return t > b->burst + b->rate / 1e6 ? b->burst : t;
}

/* The tokens in hand at now_us; a time before at_us adds none. */
static double
tokens_at(const struct bucket *b, int64_t now_us)
{
	if (now_us <= b->at_us)
		return b->tokens;
	return accrue(b, b->tokens, (double)now_us - (double)b->at_us);
}

/* to - from when positive, else 0; capped at WAIT_MAX_US, and without
 * overflow whatever times a caller passes. */
static int64_t
span_us(int64_t from, int64_t to)
{
	uint64_t d;

	if (to <= from)
		return 0;
	d = (uint64_t)to - (uint64_t)from;
	return d > (uint64_t)WAIT_MAX_US ? WAIT_MAX_US : (int64_t)d;
}

static int
has_token(double t)
{
	return t >= 1.0 - TOKEN_EPS;
}

void
bucket_init(struct bucket *b, double rate, double burst, int64_t now_us)
{
	b->rate = clamp_rate(rate);
	b->burst = clamp_burst(burst);
	b->tokens = b->burst;
	b->at_us = now_us;
	b->hold_until_us = now_us;
}

int64_t
bucket_wait_us(const struct bucket *b, int64_t now_us)
{
	int64_t d = 0, wait = 0, hold;
	double need;

	if (!has_token(b->tokens)) {
		/* The least d after at_us with a token, by the same sums as
		 * bucket_take() will make: ceil() gives it to a microsecond,
		 * and the two loops settle the rounding. */
		need = (1.0 - b->tokens) / b->rate * 1e6;
		d = need >= (double)WAIT_MAX_US ? WAIT_MAX_US :
		    (int64_t)ceil(need);
		while (d > 0 && has_token(accrue(b, b->tokens, (double)(d - 1))))
			d--;
		while (d < WAIT_MAX_US && !has_token(accrue(b, b->tokens,
		    (double)d)))
			d++;
	}
	/* The token comes at at_us + d, after a clock that went back too. */
	if (now_us <= b->at_us)
		wait = span_us(now_us, b->at_us) + d;
	else if (d > span_us(b->at_us, now_us))
		wait = d - span_us(b->at_us, now_us);
	hold = span_us(now_us, b->hold_until_us);
	if (hold > wait)
		wait = hold;
	return wait > WAIT_MAX_US ? WAIT_MAX_US : wait;
}

void
bucket_take(struct bucket *b, int64_t now_us)
{
	/* No floor at 0: a token taken early is owed, and the rate holds. */
	b->tokens = tokens_at(b, now_us) - 1;
	if (now_us > b->at_us)
		b->at_us = now_us;
}

void
bucket_hold(struct bucket *b, int64_t until_us)
{
	if (until_us > b->hold_until_us)
		b->hold_until_us = until_us;
	/* What would have accrued during the hold is forfeit: the
	 * destination asked for nothing until then, not for a burst after. */
	if (b->hold_until_us > b->at_us)
		b->at_us = b->hold_until_us;
	b->tokens = 1;
}

void
bucket_set(struct bucket *b, double rate, double burst, int64_t now_us)
{
	double t = tokens_at(b, now_us);

	if (now_us > b->at_us)
		b->at_us = now_us;
	b->rate = clamp_rate(rate);
	b->burst = clamp_burst(burst);
	b->tokens = t > b->burst ? b->burst : t;
}

int64_t
backoff_us(int64_t base_us, int64_t cap_us, int failures, uint32_t rnd)
{
	int64_t v, lo;
	int i;

	if (base_us <= 0 || cap_us <= 0)
		return 0;
	v = base_us < cap_us ? base_us : cap_us;
	/* At most 63 doublings reach any cap; the test before the doubling
	 * keeps v * 2 from overflowing. */
	for (i = 1; i < failures && v < cap_us; i++)
		v = v > cap_us / 2 ? cap_us : v * 2;
	lo = v / 2;
	return lo + (int64_t)(rnd % ((uint64_t)(v - lo) + 1));
}

static int
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Two or four digits at p, or -1. */
static int
digits(const char *p, int n)
{
	int i, v = 0;

	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

/* Days since 1970-01-01 of a date of the proleptic Gregorian calendar
 * (H. Hinnant's days_from_civil), without the C library's time zone. */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* An IMF-fixdate of exactly len bytes, as seconds since the epoch; 0 when
 * it is one, -1 when not. Names are case-sensitive, as RFC 9110 has them;
 * the weekday must be one but need not match the date. */
static int
parse_fixdate(const char *p, size_t len, int64_t *secs)
{
	static const char wdays[] = "MonTueWedThuFriSatSun";
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };
	int i, day, mon = -1, year, h, mi, s, leap;

	/* "Sun, 06 Nov 1994 08:49:37 GMT" */
	if (len != 29 || p[3] != ',' || p[4] != ' ' || p[7] != ' ' ||
	    p[11] != ' ' || p[16] != ' ' || p[19] != ':' || p[22] != ':' ||
	    p[25] != ' ' || memcmp(p + 26, "GMT", 3) != 0)
		return -1;
	for (i = 0; i < 7 && memcmp(p, wdays + 3 * i, 3) != 0; i++)
		;
	if (i == 7)
		return -1;
	for (i = 0; i < 12; i++)
		if (memcmp(p + 8, months + 3 * i, 3) == 0)
			mon = i;
	day = digits(p + 5, 2);
	year = digits(p + 12, 4);
	h = digits(p + 17, 2);
	mi = digits(p + 20, 2);
	s = digits(p + 23, 2);
	if (mon < 0 || day < 1 || year < 0 || h < 0 || h > 23 || mi < 0 ||
	    mi > 59 || s < 0 || s > 60 || day > mdays[mon])
		return -1;
	leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	if (mon == 1 && day == 29 && !leap)
		return -1;
	/* A leap second (:60) counts as the next second's start. */
	*secs = days_from_civil(year, mon + 1, day) * 86400 + h * 3600 +
	    mi * 60 + s;
	return 0;
}

int64_t
retry_after_us(const char *value, int64_t now_wall_us)
{
	const char *p = value, *end;
	int64_t secs = 0, date_us;
	size_t len;

	if (value == NULL)
		return -1;
	while (is_ws(*p))
		p++;
	end = p + strlen(p);
	while (end > p && is_ws(end[-1]))
		end--;
	len = (size_t)(end - p);
	if (len == 0)
		return -1;
	if (strspn(p, "0123456789") >= len) {
		/* delay-seconds: any number of digits, saturating at the cap
		 * long before it could overflow. */
		for (; p < end; p++)
			if (secs <= PACE_RETRY_MAX_US / 1000000)
				secs = secs * 10 + (*p - '0');
		if (secs > PACE_RETRY_MAX_US / 1000000)
			return PACE_RETRY_MAX_US;
		return secs * 1000000;
	}
	if (parse_fixdate(p, len, &secs) != 0)
		return -1;
	/* From year 0 to 9999 date_us is within +-3e17: the comparisons
	 * come first so that no subtraction can overflow. */
	date_us = secs * 1000000;
	if (now_wall_us >= date_us)
		return 0;
	if (now_wall_us < date_us - PACE_RETRY_MAX_US)
		return PACE_RETRY_MAX_US;
	return date_us - now_wall_us;
}

void
ring_add(struct ring *r, uint64_t value)
{
	if (r->next >= PACE_RING)
		r->next = 0;
	r->v[r->next++] = value > UINT32_MAX ? UINT32_MAX : (uint32_t)value;
	if (r->next == PACE_RING)
		r->next = 0;
	if (r->n < PACE_RING)
		r->n++;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

uint64_t
ring_percentile(const struct ring *r, double pct)
{
	uint32_t sorted[PACE_RING];
	unsigned n = r->n > PACE_RING ? PACE_RING : r->n;
	double rank;
	unsigned k;

	if (n == 0)
		return 0;
	memcpy(sorted, r->v, n * sizeof sorted[0]);
	qsort(sorted, n, sizeof sorted[0], cmp_u32);
	/* Nearest rank: the least value with at least pct % of the values
	 * at or below it; the slack keeps 50 % of 4 at rank 2, not 3. */
	rank = ceil(pct / 100 * n - 1e-9);
	if (!(rank >= 1))	/* NaN too */
		k = 1;
	else if (rank >= n)
		k = n;
	else
		k = (unsigned)rank;
	return sorted[k - 1];
}
