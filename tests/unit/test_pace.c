/* test_pace.c: notify's pacing arithmetic (cmd/notify/pace.c): token
 * buckets kept to their rate without drift, holds, reloads and clocks that
 * go back; backoff's bounds; Retry-After's two forms; ring percentiles. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "notify/pace.h"
#include "tap.h"

#define SEC	((int64_t)1000000)
#define T0	((int64_t)1000 * SEC)	/* any monotonic time */

/*
 * Use a bucket at full speed, n sends, each as soon as bucket_wait_us()
 * allows: the k-th send after the burst must come at start + k / rate,
 * rounded up to the microsecond, or at most slack microseconds later, and
 * that never grows (no drift). Rates whose tokens are sums of doubles with
 * no rounding (1/s, 2/s, 1000/s) are exact; others gather a rounding error
 * of about 1e-16 token a send, which can make a send 1 us late but is
 * taken back at the next (what accrued in that microsecond is kept).
 */
static void
full_speed(double rate, double burst, int n, int64_t slack, const char *what)
{
	struct bucket b;
	int64_t now = T0, w, want, worst = 0;
	int k, early = 0, zero_in_burst = 1;

	bucket_init(&b, rate, burst, now);
	for (k = 0; k < (int)burst; k++) {
		if (bucket_wait_us(&b, now) != 0)
			zero_in_burst = 0;
		bucket_take(&b, now);
	}
	ok(zero_in_burst, "%s: the burst of %g goes at once", what, burst);
	for (k = 1; k <= n; k++) {
		w = bucket_wait_us(&b, now);
		now += w;
		if (bucket_wait_us(&b, now) != 0)
			early++;
		bucket_take(&b, now);
		want = T0 + (int64_t)ceil(k * 1e6 / rate - 1e-6);
		if (llabs((long long)(now - want)) > worst)
			worst = llabs((long long)(now - want));
	}
	is_int(early, 0, "%s: a wait of w means a token at w", what);
	if (!ok(worst <= slack, "%s: %d sends at k/rate within %lld us, "
	    "no drift", what, n, (long long)slack))
		diag("off by up to %lld us", (long long)worst);
}

static void
test_bucket_rate(void)
{
	struct bucket b;
	int i;

	full_speed(1, 1, 10000, 0, "1/s burst 1");
	full_speed(2, 5, 10000, 0, "2/s burst 5");
	full_speed(20.0 / 60, 1, 1000, 0, "20/min");
	full_speed(1.0 / 3600, 1, 100, 0, "1/h");
	full_speed(1000, 1000, 10000, 0, "1000/s burst 1000");
	full_speed(3, 1, 10000, 1, "3/s");
	full_speed(30, 1, 10000, 1, "30/s");
	full_speed(7, 3, 1000000, 1, "7/s burst 3");
	full_speed(0.7, 1, 1000, 1, "0.7/s");
	full_speed(13.0 / 60, 2, 1000, 1, "13/min burst 2");
	full_speed(999, 10, 1000000, 1, "999/s burst 10");
	full_speed(5.0 / 3600, 1, 1000, 1, "5/h");

	/* 1/s burst 1: a send now, the next in exactly 1 s. */
	bucket_init(&b, 1, 1, T0);
	is_int(bucket_wait_us(&b, T0), 0, "full at start");
	bucket_take(&b, T0);
	is_int(bucket_wait_us(&b, T0), SEC, "1/s: next in 1 s");
	is_int(bucket_wait_us(&b, T0 + SEC / 4), 3 * SEC / 4,
	    "1/s: 0.75 s left after 0.25 s");
	is_int(bucket_wait_us(&b, T0 + SEC - 1), 1, "1/s: 1 us left");
	is_int(bucket_wait_us(&b, T0 + SEC), 0, "1/s: a token at 1 s");
	is_int(bucket_wait_us(&b, T0 + 100 * SEC), 0, "1/s: and later");

	/* burst 5 at 2/s: five at once, then one per 0.5 s; idle, it fills
	 * up to 5 and no more. */
	bucket_init(&b, 2, 5, T0);
	for (i = 0; i < 5; i++)
		bucket_take(&b, T0);
	is_int(bucket_wait_us(&b, T0), SEC / 2, "burst 5: the sixth waits 1/rate");
	bucket_take(&b, T0 + SEC / 2);
	is_int(bucket_wait_us(&b, T0 + SEC / 2), SEC / 2,
	    "burst 5: then one per 1/rate");
	for (i = 0; i < 5; i++) {
		if (bucket_wait_us(&b, T0 + 3600 * SEC) != 0)
			break;
		bucket_take(&b, T0 + 3600 * SEC);
	}
	is_int(bucket_wait_us(&b, T0 + 3600 * SEC), SEC / 2,
	    "burst 5: an hour idle fills it to 5, not more");

	/* 20/min: 3 s apart; 1/h: an hour apart. */
	bucket_init(&b, 20.0 / 60, 1, T0);
	bucket_take(&b, T0);
	is_int(bucket_wait_us(&b, T0), 3 * SEC, "20/min: 3 s");
	bucket_init(&b, 1.0 / 3600, 1, T0);
	bucket_take(&b, T0);
	is_int(bucket_wait_us(&b, T0), 3600 * SEC, "1/h: 1 h");
	is_int(bucket_wait_us(&b, T0 + 3599 * SEC), SEC, "1/h: 1 s left");

	/* Rates and bursts out of range are kept finite. */
	bucket_init(&b, 0, 0, T0);
	bucket_take(&b, T0);
	is_int(bucket_wait_us(&b, T0), 86400 * SEC,
	    "rate 0 counts as 1/day, burst 0 as 1");
	bucket_init(&b, NAN, NAN, T0);
	bucket_take(&b, T0);
	is_int(bucket_wait_us(&b, T0), 86400 * SEC, "NaN likewise");
	bucket_init(&b, -5, 1, T0);
	bucket_take(&b, T0);
	is_int(bucket_wait_us(&b, T0), 86400 * SEC, "a negative rate likewise");
}

static void
test_bucket_hold(void)
{
	struct bucket b;
	int n;

	/* 1/s burst 5, full: a 429 with Retry-After: 3 at T0. */
	bucket_init(&b, 1, 5, T0);
	bucket_hold(&b, T0 + 3 * SEC);
	is_int(b.hold_until_us, T0 + 3 * SEC, "hold_until_us is the hold");
	is_int(bucket_wait_us(&b, T0), 3 * SEC, "a hold: wait is the hold");
	is_int(bucket_wait_us(&b, T0 + SEC), 2 * SEC, "a hold: 2 s left");
	is_int(bucket_wait_us(&b, T0 + 3 * SEC - 1), 1, "a hold: 1 us left");
	is_int(bucket_wait_us(&b, T0 + 3 * SEC), 0,
	    "a hold: the retry goes at exactly its end");
	bucket_take(&b, T0 + 3 * SEC);
	is_int(bucket_wait_us(&b, T0 + 3 * SEC), SEC,
	    "a hold: emptied the burst; refills from its end");
	/* What accrued during the hold is gone: 1 s after, one token. */
	n = 0;
	while (n < 10 && bucket_wait_us(&b, T0 + 4 * SEC) == 0) {
		bucket_take(&b, T0 + 4 * SEC);
		n++;
	}
	is_int(n, 1, "a hold: one token a second after it, no burst");

	/* A hold never shortens one already set. */
	bucket_init(&b, 10, 10, T0);
	bucket_hold(&b, T0 + 60 * SEC);
	bucket_hold(&b, T0 + 5 * SEC);
	is_int(bucket_wait_us(&b, T0 + SEC), 59 * SEC,
	    "a shorter hold keeps the longer");
	bucket_hold(&b, T0 + 90 * SEC);
	is_int(bucket_wait_us(&b, T0 + SEC), 89 * SEC, "a longer hold extends");

	/* Retry-After: 0, or a date just past: retry now, one token. */
	bucket_init(&b, 1, 1, T0);
	bucket_take(&b, T0);
	bucket_hold(&b, T0);
	is_int(bucket_wait_us(&b, T0), 0, "a hold until now: the retry goes now");
	bucket_take(&b, T0);
	is_int(bucket_wait_us(&b, T0), SEC, "and the next waits 1/rate");

	/* A hold on a bucket that owed tokens: the retry still goes at its
	 * end (the 429 was the answer to the token taken). */
	bucket_init(&b, 1, 1, T0);
	bucket_take(&b, T0);
	bucket_take(&b, T0);
	is_int(bucket_wait_us(&b, T0), 2 * SEC, "a token taken early is owed");
	bucket_hold(&b, T0 + SEC / 2);
	is_int(bucket_wait_us(&b, T0), SEC / 2, "a hold clears what was owed");

	/* A hold at 1/h: the retry is at the hold's end, not an hour later. */
	bucket_init(&b, 1.0 / 3600, 1, T0);
	bucket_take(&b, T0);
	bucket_hold(&b, T0 + 3 * SEC);
	is_int(bucket_wait_us(&b, T0), 3 * SEC, "1/h: a 3 s hold is 3 s");
	bucket_take(&b, T0 + 3 * SEC);
	is_int(bucket_wait_us(&b, T0 + 3 * SEC), 3600 * SEC,
	    "1/h: then an hour");
}

static void
test_bucket_set(void)
{
	struct bucket b;
	int n;

	/* Tokens in hand are kept across a reload. */
	bucket_init(&b, 1, 5, T0);
	bucket_take(&b, T0);
	bucket_take(&b, T0);
	bucket_take(&b, T0);
	bucket_set(&b, 1, 10, T0);
	for (n = 0; n < 20 && bucket_wait_us(&b, T0) == 0; n++)
		bucket_take(&b, T0);
	is_int(n, 2, "set: the 2 tokens in hand are kept, burst 10 or not");
	is_int(bucket_wait_us(&b, T0), SEC, "set: then 1/rate");

	/* Capped at the new burst. */
	bucket_init(&b, 1, 5, T0);
	bucket_set(&b, 1, 2, T0);
	for (n = 0; n < 20 && bucket_wait_us(&b, T0) == 0; n++)
		bucket_take(&b, T0);
	is_int(n, 2, "set: 5 in hand are capped at the new burst 2");

	/* What accrued before the reload counts at the old rate. */
	bucket_init(&b, 1, 1, T0);
	bucket_take(&b, T0);
	bucket_set(&b, 0.1, 1, T0 + SEC / 2);
	is_int(bucket_wait_us(&b, T0 + SEC / 2), 5 * SEC,
	    "set: half a token at 1/s, the other half at 0.1/s");

	/* A reload keeps a hold. */
	bucket_init(&b, 1, 1, T0);
	bucket_hold(&b, T0 + 7 * SEC);
	bucket_set(&b, 100, 100, T0 + SEC);
	is_int(bucket_wait_us(&b, T0 + SEC), 6 * SEC, "set: a hold is kept");
}

static void
test_bucket_backwards(void)
{
	struct bucket b;
	int64_t w;
	int n;

	/* A clock that goes back adds no token, and the token still comes
	 * when it was due. */
	bucket_init(&b, 1, 1, T0);
	bucket_take(&b, T0);
	is_int(bucket_wait_us(&b, T0 - 5 * SEC), 6 * SEC,
	    "back 5 s: the token is still due at T0 + 1 s");
	bucket_set(&b, 1, 1, T0 - 5 * SEC);
	is_int(b.at_us, T0, "back 5 s: at_us does not go back");
	is_int(bucket_wait_us(&b, T0), SEC, "back and forth: no token added");
	for (n = 0; n < 10 && bucket_wait_us(&b, T0 + SEC) == 0; n++)
		bucket_take(&b, T0 + SEC);
	is_int(n, 1, "back and forth: one token at T0 + 1 s, not more");

	/* Extreme times neither overflow nor crash. */
	bucket_init(&b, 1, 1, INT64_MAX - 10);
	bucket_take(&b, INT64_MAX - 10);
	w = bucket_wait_us(&b, INT64_MIN);
	ok(w > 0, "INT64_MIN after INT64_MAX: a wait, bounded (%lld)",
	    (long long)w);
	bucket_take(&b, INT64_MIN);
	w = bucket_wait_us(&b, INT64_MAX);
	ok(w >= 0, "INT64_MAX: no overflow (%lld)", (long long)w);
	bucket_init(&b, 1, 1, INT64_MIN);
	bucket_take(&b, INT64_MIN);
	is_int(bucket_wait_us(&b, INT64_MAX), 0, "from INT64_MIN to INT64_MAX");
	bucket_hold(&b, INT64_MAX);
	w = bucket_wait_us(&b, INT64_MIN);
	ok(w > 0, "a hold until INT64_MAX seen from INT64_MIN (%lld)",
	    (long long)w);
}

/* backoff_us() must be in [lo, hi] for every rnd, and reach both ends. */
static void
backoff_bounds(int64_t base, int64_t cap, int failures, int64_t lo, int64_t hi)
{
	static const uint32_t rnds[] = { 0, 1, 2, 12345, 0x7fffffff,
	    0x80000000u, 0xfffffffeu, 0xffffffffu };
	int64_t got, mn = INT64_MAX, mx = INT64_MIN;
	uint64_t range = (uint64_t)(hi - lo) + 1;
	size_t i;

	for (i = 0; i < sizeof rnds / sizeof rnds[0]; i++) {
		got = backoff_us(base, cap, failures, rnds[i]);
		if (got < mn)
			mn = got;
		if (got > mx)
			mx = got;
	}
	ok(mn >= lo && mx <= hi, "backoff(%lld, %lld, %d) in [%lld, %lld]",
	    (long long)base, (long long)cap, failures, (long long)lo,
	    (long long)hi);
	is_int(backoff_us(base, cap, failures, 0), lo,
	    "backoff(%lld, %lld, %d): rnd 0 is the least", (long long)base,
	    (long long)cap, failures);
	if (range - 1 <= UINT32_MAX)
		is_int(backoff_us(base, cap, failures, (uint32_t)(range - 1)),
		    hi, "backoff(%lld, %lld, %d): rnd range-1 is the most",
		    (long long)base, (long long)cap, failures);
	else
		skip(1, "range past 32 bits");
}

static void
test_backoff(void)
{
	int64_t cap = 300 * SEC, v;
	int f, bad;

	backoff_bounds(SEC, cap, 1, SEC / 2, SEC);
	backoff_bounds(SEC, cap, 2, SEC, 2 * SEC);
	backoff_bounds(SEC, cap, 3, 2 * SEC, 4 * SEC);
	backoff_bounds(SEC, cap, 4, 4 * SEC, 8 * SEC);
	backoff_bounds(SEC, cap, 9, 128 * SEC, 256 * SEC);
	backoff_bounds(SEC, cap, 10, 150 * SEC, 300 * SEC);
	backoff_bounds(SEC, cap, 11, 150 * SEC, 300 * SEC);
	backoff_bounds(SEC, cap, 64, 150 * SEC, 300 * SEC);
	backoff_bounds(SEC, cap, 1000, 150 * SEC, 300 * SEC);
	backoff_bounds(SEC, cap, INT_MAX, 150 * SEC, 300 * SEC);
	backoff_bounds(1000, cap, 1, 500, 1000);	/* --hook-backoff 1ms */
	backoff_bounds(1000, cap, 20, 150 * SEC, 300 * SEC);
	backoff_bounds(3, cap, 1, 1, 3);		/* odd: half rounded down */
	backoff_bounds(1, cap, 1, 0, 1);
	/* --hook-backoff past 5 min: the cap is the base (hooks.c passes
	 * the larger), and a cap below the base caps it. */
	backoff_bounds(3600 * SEC, 3600 * SEC, 1, 1800 * SEC, 3600 * SEC);
	backoff_bounds(3600 * SEC, 3600 * SEC, 50, 1800 * SEC, 3600 * SEC);
	backoff_bounds(3600 * SEC, cap, 1, 150 * SEC, 300 * SEC);
	/* failures below 1 count as 1. */
	backoff_bounds(SEC, cap, 0, SEC / 2, SEC);
	backoff_bounds(SEC, cap, INT_MIN, SEC / 2, SEC);
	/* Whatever the cap, no overflow. */
	v = backoff_us(SEC, INT64_MAX, 1000, 0);
	is_int(v, INT64_MAX / 2, "cap INT64_MAX, 1000 failures: half of it");
	v = backoff_us(SEC, INT64_MAX, 1000, UINT32_MAX);
	is_int(v, INT64_MAX / 2 + UINT32_MAX, "and rnd adds to it");
	v = backoff_us(INT64_MAX, INT64_MAX, INT_MAX, UINT32_MAX);
	ok(v >= INT64_MAX / 2 && v <= INT64_MAX, "base INT64_MAX: in range");
	is_int(backoff_us(0, cap, 1, 7), 0, "base 0: 0");
	is_int(backoff_us(-SEC, cap, 1, 7), 0, "negative base: 0");
	is_int(backoff_us(SEC, 0, 1, 7), 0, "cap 0: 0");

	/* Each failure's bounds against a reference doubling in floating
	 * point, for failures 1 to 100. */
	bad = 0;
	for (f = 1; f <= 100; f++) {
		double ref = fmin(1e3 * pow(2, f - 1), (double)cap);
		int64_t hi = (int64_t)ref, lo = hi / 2;

		if (backoff_us(1000, cap, f, 0) != lo ||
		    backoff_us(1000, cap, f, (uint32_t)(hi - lo)) != hi ||
		    backoff_us(1000, cap, f, (uint32_t)(hi - lo + 1)) != lo)
			bad++;
	}
	is_int(bad, 0, "failures 1 to 100: bounds as doubling says");
}

static void
retry(const char *value, int64_t now, int64_t want)
{
	is_int(retry_after_us(value, now), want, "Retry-After '%s'", value);
}

static void
test_retry_after(void)
{
	/* 2025-12-05 20:51:35 UTC, and a half second. */
	int64_t now = (int64_t)1764967895 * SEC + SEC / 2;
	int64_t day = 86400 * SEC;
	char date[64];
	struct tm tm;
	time_t t;
	int64_t step;
	int bad;

	retry("0", now, 0);
	retry("3", now, 3 * SEC);
	retry("120", now, 120 * SEC);
	retry("0003", now, 3 * SEC);
	retry("86400", now, day);
	retry("86401", now, day);
	retry("99999999999999999999", now, day);
	retry("999999999999999999999999999999999999999999", now, day);
	/* White space around the value is not part of it: accepted. */
	retry(" 3", now, 3 * SEC);
	retry("3 ", now, 3 * SEC);
	retry("\t3\r\n", now, 3 * SEC);
	/* Neither form. */
	retry("abc", now, -1);
	retry("", now, -1);
	retry("   ", now, -1);
	retry("-1", now, -1);
	retry("+3", now, -1);
	retry("3.5", now, -1);
	retry("3s", now, -1);
	retry("3 4", now, -1);
	retry("0x10", now, -1);
	is_int(retry_after_us(NULL, now), -1, "Retry-After NULL");

	/* HTTP-date. */
	retry("Sun, 06 Nov 1994 08:49:37 GMT", now, 0);
	retry("Sun, 06 Nov 1994 08:49:37 GMT", (int64_t)784111777 * SEC, 0);
	retry("Sun, 06 Nov 1994 08:49:37 GMT", (int64_t)784111767 * SEC,
	    10 * SEC);
	retry("Sun, 06 Nov 1994 08:49:37 GMT", (int64_t)784111777 * SEC - 1, 1);
	retry("Fri, 05 Dec 2025 20:51:45 GMT", now, 10 * SEC - SEC / 2);
	retry("Fri, 05 Dec 2025 20:51:45 GMT", now - SEC / 2, 10 * SEC);
	retry(" Fri, 05 Dec 2025 20:51:45 GMT\r\n", now - SEC / 2, 10 * SEC);
	retry("Sat, 06 Dec 2025 20:51:35 GMT", now - SEC / 2, day);
	retry("Sat, 06 Dec 2025 20:51:36 GMT", now - SEC / 2, day);
	retry("Fri, 31 Dec 9999 23:59:59 GMT", now, day);
	retry("Thu, 01 Jan 1970 00:00:00 GMT", now, 0);
	retry("Thu, 01 Jan 1970 00:00:10 GMT", 0, 10 * SEC);
	retry("Sat, 01 Jan 0000 00:00:00 GMT", now, 0);
	retry("Thu, 29 Feb 2024 00:00:00 GMT", (int64_t)1709164800 * SEC, 0);
	retry("Tue, 29 Feb 2000 00:00:01 GMT", (int64_t)951782400 * SEC, SEC);
	retry("Tue, 31 Dec 2024 23:59:60 GMT", (int64_t)1735689600 * SEC - SEC,
	    SEC);
	/* The weekday is not checked against the date. */
	retry("Mon, 06 Nov 1994 08:49:37 GMT", (int64_t)784111767 * SEC,
	    10 * SEC);
	/* Not IMF-fixdate (the obsolete RFC 850 and asctime forms too). */
	retry("Sunday, 06-Nov-94 08:49:37 GMT", now, -1);
	retry("Sun Nov  6 08:49:37 1994", now, -1);
	retry("Sun, 06 Nov 1994 08:49:37 UTC", now, -1);
	retry("Sun, 06 Nov 1994 08:49:37 gmt", now, -1);
	retry("sun, 06 Nov 1994 08:49:37 GMT", now, -1);
	retry("Sun, 06 nov 1994 08:49:37 GMT", now, -1);
	retry("Sun, 6 Nov 1994 08:49:37 GMT", now, -1);
	retry("Sun,  06 Nov 1994 08:49:37 GMT", now, -1);
	retry("Sun, 06 Nov 1994 08:49:37 GMT x", now, -1);
	retry("Sun, 06 Nov 1994 08:49:37", now, -1);
	retry("Xyz, 06 Nov 1994 08:49:37 GMT", now, -1);
	retry("Sun, 06 Nox 1994 08:49:37 GMT", now, -1);
	retry("Sun, 00 Nov 1994 08:49:37 GMT", now, -1);
	retry("Sun, 31 Nov 1994 08:49:37 GMT", now, -1);
	retry("Sun, 29 Feb 2023 08:49:37 GMT", now, -1);
	retry("Sun, 29 Feb 1900 08:49:37 GMT", now, -1);
	retry("Sun, 06 Nov 1994 24:00:00 GMT", now, -1);
	retry("Sun, 06 Nov 1994 08:60:00 GMT", now, -1);
	retry("Sun, 06 Nov 1994 08:49:61 GMT", now, -1);
	retry("Sun, 06 Nov 19x4 08:49:37 GMT", now, -1);
	retry("Sun, 06 Nov 1994 08-49-37 GMT", now, -1);

	/* Against the C library's calendar: every date that gmtime and
	 * strftime (C locale) write, 5 s after now, is 5 s away. */
	bad = 0;
	step = 253402300799LL / 20011;
	for (t = 0; t <= (time_t)253402300799LL; t += (time_t)step) {
		if (gmtime_r(&t, &tm) == NULL ||
		    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT",
		    &tm) == 0)
			bail_out("gmtime/strftime failed at %lld", (long long)t);
		if (retry_after_us(date, (int64_t)t * SEC - 5 * SEC) != 5 * SEC) {
			if (bad++ == 0)
				diag("%s: %lld", date, (long long)retry_after_us(
				    date, (int64_t)t * SEC - 5 * SEC));
		}
	}
	is_int(bad, 0, "20011 dates from 1970 to 9999 as gmtime has them");
}

static void
test_ring(void)
{
	static struct ring r;
	int i;

	is_int(ring_percentile(&r, 99), 0, "ring: empty is 0");
	is_int(ring_percentile(&r, 0), 0, "ring: empty is 0 at 0 too");
	ring_add(&r, 42);
	is_int(ring_percentile(&r, 0), 42, "ring: one value, p0");
	is_int(ring_percentile(&r, 50), 42, "ring: one value, p50");
	is_int(ring_percentile(&r, 99), 42, "ring: one value, p99");
	is_int(ring_percentile(&r, 100), 42, "ring: one value, p100");

	/* 1 to 100, added in a shuffled order (37 is prime to 100). */
	memset(&r, 0, sizeof r);
	for (i = 0; i < 100; i++)
		ring_add(&r, (uint64_t)(i * 37 % 100 + 1));
	is_int(r.n, 100, "ring: 100 held");
	is_int(ring_percentile(&r, 0), 1, "ring 1..100: p0 is the least");
	is_int(ring_percentile(&r, 1), 1, "ring 1..100: p1");
	is_int(ring_percentile(&r, 50), 50, "ring 1..100: p50");
	is_int(ring_percentile(&r, 50.5), 51, "ring 1..100: p50.5");
	is_int(ring_percentile(&r, 99), 99, "ring 1..100: p99");
	is_int(ring_percentile(&r, 99.9), 100, "ring 1..100: p99.9");
	is_int(ring_percentile(&r, 100), 100, "ring 1..100: p100");
	is_int(ring_percentile(&r, 250), 100, "ring 1..100: past 100 is the most");
	is_int(ring_percentile(&r, -5), 1, "ring 1..100: below 0 is the least");
	is_int(ring_percentile(&r, NAN), 1, "ring 1..100: NaN is the least");

	/* Nearest rank on 4 values: p50 is the 2nd, p51 the 3rd. */
	memset(&r, 0, sizeof r);
	ring_add(&r, 40);
	ring_add(&r, 10);
	ring_add(&r, 30);
	ring_add(&r, 20);
	is_int(ring_percentile(&r, 25), 10, "ring of 4: p25");
	is_int(ring_percentile(&r, 50), 20, "ring of 4: p50");
	is_int(ring_percentile(&r, 51), 30, "ring of 4: p51");
	is_int(ring_percentile(&r, 75), 30, "ring of 4: p75");
	is_int(ring_percentile(&r, 76), 40, "ring of 4: p76");

	/* More than PACE_RING: only the last 512 count. */
	memset(&r, 0, sizeof r);
	for (i = 1; i <= 1000; i++)
		ring_add(&r, (uint64_t)i);
	is_int(r.n, PACE_RING, "ring: 1000 added, 512 held");
	is_int(ring_percentile(&r, 0), 489, "ring of the last 512: p0");
	is_int(ring_percentile(&r, 50), 744, "ring of the last 512: p50");
	is_int(ring_percentile(&r, 99), 995, "ring of the last 512: p99");
	is_int(ring_percentile(&r, 100), 1000, "ring of the last 512: p100");
	/* Exactly PACE_RING, then one more pushes the oldest out. */
	memset(&r, 0, sizeof r);
	for (i = 1; i <= PACE_RING; i++)
		ring_add(&r, 1000000 + (uint64_t)i);
	is_int(ring_percentile(&r, 0), 1000001, "ring of exactly 512: p0");
	ring_add(&r, 5);
	is_int(ring_percentile(&r, 0), 5, "ring: the 513th is held");
	is_int(ring_percentile(&r, 0.1), 5, "ring: p0.1 is rank 1 (0.512)");
	is_int(ring_percentile(&r, 0.3), 1000002,
	    "ring: p0.3 is rank 2 (1.536): 1000001 is gone");

	/* Values past 32 bits are UINT32_MAX. */
	memset(&r, 0, sizeof r);
	ring_add(&r, (uint64_t)1 << 40);
	ring_add(&r, UINT64_MAX);
	ring_add(&r, UINT32_MAX);
	ring_add(&r, 0);
	is_int(ring_percentile(&r, 100), UINT32_MAX, "ring: 2^40 is UINT32_MAX");
	is_int(ring_percentile(&r, 50), UINT32_MAX, "ring: UINT64_MAX too");
	is_int(ring_percentile(&r, 0), 0, "ring: 0 is 0");
}

int
main(void)
{
	test_bucket_rate();
	test_bucket_hold();
	test_bucket_set();
	test_bucket_backwards();
	test_backoff();
	test_retry_after();
	test_ring();
	return done_testing();
}
