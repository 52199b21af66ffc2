/* test_hist.c: the latency histogram: exact below 2048, within 0.1% above,
 * clamping, merge and reset, and the percentiles of known distributions, as
 * loadgen reports them. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "hist.h"
#include "tap.h"

/* |got - want| <= want / 1000, and got is never below want: a percentile is
 * the top of its bucket, so it errs on the high side. */
static int
within(uint64_t got, uint64_t want)
{
	return got >= want && got - want <= want / 1000;
}

static void
test_empty(void)
{
	struct hist *h = hist_new();

	if (h == NULL)
		bail_out("hist_new: out of memory");
	is_int(h->count, 0, "empty: count 0");
	is_int(hist_percentile(h, 50), 0, "empty: p50 is 0");
	is_int(hist_percentile(h, 100), 0, "empty: p100 is 0");
	is_int(hist_percentile(h, 0.001), 0, "empty: p0.001 is 0");
	ok(hist_mean(h) == 0.0, "empty: mean is 0");
	hist_free(h);
	hist_free(NULL);
	ok(1, "hist_free(NULL) is harmless");
}

static void
test_small_exact(void)
{
	struct hist *h = hist_new();
	uint64_t v;
	int wrong = 0;

	/* Alone or among others, every value below 2048 has its own bucket. */
	for (v = 0; v < 2048; v++) {
		hist_reset(h);
		hist_record(h, v);
		hist_record(h, 4000);
		if (hist_percentile(h, 50) != v && wrong++ < 5)
			diag("    %llu came back as %llu", (unsigned long long)v,
			    (unsigned long long)hist_percentile(h, 50));
	}
	is_int(wrong, 0, "every value below 2048 is recorded exactly");

	hist_reset(h);
	hist_record(h, 7);
	hist_record(h, 1000);
	hist_record(h, 3);
	hist_record(h, 2047);
	hist_record(h, 7);
	is_int(h->count, 5, "five values: count");
	is_int(hist_percentile(h, 20), 3, "3 7 7 1000 2047: p20 is 3");
	is_int(hist_percentile(h, 40), 7, "3 7 7 1000 2047: p40 is 7");
	is_int(hist_percentile(h, 60), 7, "3 7 7 1000 2047: p60 is 7");
	is_int(hist_percentile(h, 80), 1000, "3 7 7 1000 2047: p80 is 1000");
	is_int(hist_percentile(h, 100), 2047, "3 7 7 1000 2047: p100 is 2047");
	is_int(hist_percentile(h, 0.01), 3, "3 7 7 1000 2047: p0.01 is 3");
	is_int(hist_percentile(h, 150), 2047, "p150 is the max");
	is_int(h->min, 3, "3 7 7 1000 2047: min");
	is_int(h->max, 2047, "3 7 7 1000 2047: max");
	ok(hist_mean(h) == 3064.0 / 5, "3 7 7 1000 2047: mean %g",
	    hist_mean(h));

	hist_reset(h);
	hist_record(h, 0);
	is_int(hist_percentile(h, 50), 0, "a single 0: p50 is 0");
	is_int(h->min, 0, "a single 0: min 0");
	hist_free(h);
}

static void
test_large_within(void)
{
	struct hist *h = hist_new();
	uint64_t v, got;
	int wrong = 0, n = 0;

	/* One value low, one at the top: p50 is the low value's bucket. */
	for (v = 2048; v < HIST_MAX_VALUE; v += v / 7 + 1, n++) {
		hist_reset(h);
		hist_record(h, v);
		hist_record(h, HIST_MAX_VALUE);
		got = hist_percentile(h, 50);
		if (!within(got, v) && wrong++ < 5)
			diag("    %llu came back as %llu", (unsigned long long)v,
			    (unsigned long long)got);
	}
	is_int(wrong, 0, "%d values from 2048 to 2^40: within 0.1%%", n);

	hist_reset(h);
	hist_record(h, 123456789);
	is_int(hist_percentile(h, 50), 123456789,
	    "a single large value: p50 is the value (capped at max)");
	hist_free(h);
}

static void
test_uniform(void)
{
	static const double pcts[] = { 0.1, 1, 10, 25, 50, 75, 90, 95, 99, 99.9,
	    99.99 };
	struct hist *h = hist_new();
	uint64_t v, want, got;
	size_t i;

	for (v = 100000; v >= 1; v--)		/* order does not matter */
		hist_record(h, v);
	is_int(h->count, 100000, "1..100000: count");
	is_int(h->min, 1, "1..100000: min");
	is_int(h->max, 100000, "1..100000: max");
	ok(hist_mean(h) == 50000.5, "1..100000: mean 50000.5 (%f)",
	    hist_mean(h));
	for (i = 0; i < sizeof pcts / sizeof pcts[0]; i++) {
		want = (uint64_t)(pcts[i] * 1000 + 0.5);
		got = hist_percentile(h, pcts[i]);
		if (!ok(within(got, want), "1..100000: p%g within 0.1%% of %llu",
		    pcts[i], (unsigned long long)want))
			diag("    got %llu", (unsigned long long)got);
	}
	is_int(hist_percentile(h, 100), 100000, "1..100000: p100 is the max");
	hist_free(h);
}

/* 1..1000 once each: the percentile p is the value of rank p * 10, exactly,
 * since every value below 2048 has a bucket of its own. */
static void
test_uniform_exact(void)
{
	static const struct { double pct; uint64_t want; } t[] = {
		{ 0, 1 }, { 0.1, 1 }, { 10, 100 }, { 20, 200 }, { 50, 500 },
		{ 90, 900 }, { 95, 950 }, { 99, 990 }, { 99.9, 999 },
		{ 99.99, 1000 }, { 99.999, 1000 }, { 100, 1000 },
	};
	struct hist *h = hist_new();
	uint64_t v;
	size_t i;

	for (v = 1; v <= 1000; v++)
		hist_record(h, v);
	ok(hist_mean(h) == 500.5, "1..1000: mean 500.5 (%g)", hist_mean(h));
	for (i = 0; i < sizeof t / sizeof t[0]; i++)
		is_int(hist_percentile(h, t[i].pct), t[i].want,
		    "1..1000: p%g is %llu", t[i].pct,
		    (unsigned long long)t[i].want);
	hist_free(h);
}

/* The same ranks in microseconds, 1 ms to 1 s: above 2048 a percentile is
 * the top of its bucket, within 0.1% above the exact value and never
 * past the max. */
static void
test_uniform_ms(void)
{
	static const struct { double pct; uint64_t want; } t[] = {
		{ 0, 1000 }, { 10, 100000 }, { 50, 500000 }, { 90, 900000 },
		{ 99, 990000 }, { 99.9, 999000 },
	};
	struct hist *h = hist_new();
	uint64_t k, got;
	size_t i;

	for (k = 1; k <= 1000; k++)
		hist_record(h, k * 1000);
	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		got = hist_percentile(h, t[i].pct);
		if (!ok(within(got, t[i].want),
		    "1..1000 ms: p%g within 0.1%% of %llu us", t[i].pct,
		    (unsigned long long)t[i].want))
			diag("    got %llu", (unsigned long long)got);
	}
	is_int(hist_percentile(h, 99.99), 1000000,
	    "1..1000 ms: p99.99 is the max, 1000000 us");
	is_int(hist_percentile(h, 100), 1000000, "1..1000 ms: p100 is the max");
	is_int(h->min, 1000, "1..1000 ms: min");
	ok(hist_mean(h) == 500500.0, "1..1000 ms: mean 500500 (%f)",
	    hist_mean(h));
	hist_free(h);
}

/* Two modes, as acknowledgements that mostly come at once and sometimes
 * wait for a stall: 9,500 at 300 us, 500 at 40 ms. The percentiles switch
 * from one mode to the other exactly at rank 9,500. */
static void
test_bimodal(void)
{
	struct hist *h = hist_new();
	uint64_t got;
	int i;

	for (i = 0; i < 10000; i++)
		hist_record(h, i % 20 == 7 ? 40000 : 300);
	is_int(h->count, 10000, "bimodal: count");
	is_int(hist_percentile(h, 50), 300, "bimodal: p50 is 300");
	is_int(hist_percentile(h, 90), 300, "bimodal: p90 is 300");
	is_int(hist_percentile(h, 95), 300,
	    "bimodal: p95 (rank 9500) is 300, the last of the fast mode");
	is_int(hist_percentile(h, 95.01), 40000,
	    "bimodal: p95.01 (rank 9501) is 40000, the first of the slow one");
	got = hist_percentile(h, 99);
	ok(got == 40000, "bimodal: p99 is 40000 (%llu)",
	    (unsigned long long)got);
	is_int(hist_percentile(h, 99.9), 40000, "bimodal: p99.9 is 40000");
	is_int(h->min, 300, "bimodal: min");
	is_int(h->max, 40000, "bimodal: max");
	ok(hist_mean(h) == (9500.0 * 300 + 500.0 * 40000) / 10000,
	    "bimodal: mean %g", hist_mean(h));

	/* with an outlier above, the slow mode's percentile is the top of
	 * its bucket: 40000 is in [40000, 40031] (32 values a bucket there) */
	hist_record(h, 5000000);
	got = hist_percentile(h, 99);
	ok(within(got, 40000) && got == 40031,
	    "bimodal and an outlier: p99 is the top of 40000's bucket, 40031 "
	    "(%llu)", (unsigned long long)got);
	is_int(hist_percentile(h, 100), 5000000,
	    "bimodal and an outlier: p100 is the outlier");
	hist_free(h);
}

/* All equal: every percentile is the value, exactly, small or large (a
 * bucket's top is capped at the max). */
static void
test_all_equal(void)
{
	static const double pcts[] = { 0, 10, 50, 90, 99, 99.9, 99.99, 99.999,
	    100 };
	static const uint64_t vals[] = { 0, 7, 2047, 2048, 12345, 987654321 };
	struct hist *h = hist_new();
	size_t i, j;
	int k, wrong;

	for (j = 0; j < sizeof vals / sizeof vals[0]; j++) {
		hist_reset(h);
		for (k = 0; k < 5000; k++)
			hist_record(h, vals[j]);
		wrong = 0;
		for (i = 0; i < sizeof pcts / sizeof pcts[0]; i++)
			if (hist_percentile(h, pcts[i]) != vals[j] &&
			    wrong++ < 3)
				diag("    p%g of %llu came back as %llu", pcts[i],
				    (unsigned long long)vals[j],
				    (unsigned long long)hist_percentile(h,
				    pcts[i]));
		is_int(wrong, 0, "5000 x %llu: every percentile is %llu",
		    (unsigned long long)vals[j], (unsigned long long)vals[j]);
		ok(h->min == vals[j] && h->max == vals[j] &&
		    hist_mean(h) == (double)vals[j],
		    "5000 x %llu: min, max and mean", (unsigned long long)vals[j]);
	}
	hist_free(h);
}

/* Powers of two over 40 octaves, once each: rank k is 2^(k-1); each is
 * found within 0.1%, so no octave of the range is coarser than another. */
static void
test_octaves(void)
{
	struct hist *h = hist_new();
	uint64_t got, want;
	int k, wrong = 0;

	for (k = 0; k < 40; k++)
		hist_record(h, UINT64_C(1) << k);
	for (k = 1; k <= 40; k++) {
		want = UINT64_C(1) << (k - 1);
		got = hist_percentile(h, k * 100.0 / 40);
		if (!within(got, want) && wrong++ < 5)
			diag("    p%g: %llu, not within 0.1%% of %llu",
			    k * 100.0 / 40, (unsigned long long)got,
			    (unsigned long long)want);
	}
	is_int(wrong, 0, "2^0..2^39: the percentile of each rank within 0.1%%");
	hist_free(h);
}

static void
test_clamp(void)
{
	struct hist *h = hist_new();

	hist_record(h, HIST_MAX_VALUE);
	hist_record(h, HIST_MAX_VALUE + 1);
	hist_record(h, UINT64_MAX);
	is_int(h->count, 3, "clamped values are counted");
	ok(h->max == HIST_MAX_VALUE, "max is HIST_MAX_VALUE, not the value sent");
	ok(h->min == HIST_MAX_VALUE, "min is HIST_MAX_VALUE too");
	ok(hist_percentile(h, 50) == HIST_MAX_VALUE, "p50 is HIST_MAX_VALUE");
	ok(hist_percentile(h, 100) == HIST_MAX_VALUE, "p100 is HIST_MAX_VALUE");
	ok(hist_mean(h) == (double)HIST_MAX_VALUE, "mean is HIST_MAX_VALUE");
	hist_free(h);
}

static void
test_merge(void)
{
	struct hist *a = hist_new(), *b = hist_new(), *all = hist_new();
	struct hist *empty = hist_new();
	static const double pcts[] = { 1, 50, 90, 99, 99.9, 100 };
	uint64_t v;
	size_t i;
	int same = 1;

	for (v = 1; v <= 50000; v++) {
		uint64_t x = v * v % 1000003;	/* spread over many buckets */

		hist_record(v % 3 ? a : b, x);
		hist_record(all, x);
	}
	hist_record(b, UINT64_MAX);
	hist_record(all, UINT64_MAX);
	hist_merge(a, b);
	is_int(a->count, all->count, "merge: count");
	is_int(a->min, all->min, "merge: min");
	is_int(a->max, all->max, "merge: max");
	ok(hist_mean(a) == hist_mean(all), "merge: mean");
	ok(memcmp(a->counts, all->counts, sizeof a->counts) == 0,
	    "merge: every bucket as if recorded into one");
	for (i = 0; i < sizeof pcts / sizeof pcts[0]; i++)
		if (hist_percentile(a, pcts[i]) != hist_percentile(all, pcts[i]))
			same = 0;
	ok(same, "merge: the same percentiles");

	hist_merge(a, empty);
	is_int(a->count, all->count, "merging an empty one: count unchanged");
	is_int(a->min, all->min, "merging an empty one: min unchanged");
	hist_merge(empty, all);
	is_int(empty->min, all->min, "merging into an empty one: min");
	is_int(hist_percentile(empty, 50), hist_percentile(all, 50),
	    "merging into an empty one: p50");
	hist_free(a);
	hist_free(b);
	hist_free(all);
	hist_free(empty);
}

static void
test_reset(void)
{
	struct hist *h = hist_new();
	struct hist *fresh = hist_new();

	hist_record(h, 10);
	hist_record(h, 5000000);
	hist_reset(h);
	is_int(h->count, 0, "reset: count 0");
	is_int(hist_percentile(h, 50), 0, "reset: p50 0");
	ok(hist_mean(h) == 0.0, "reset: mean 0");
	ok(memcmp(h, fresh, sizeof *h) == 0, "reset: same as a new histogram");
	hist_record(h, 42);
	is_int(h->min, 42, "reset then 42: min");
	is_int(h->max, 42, "reset then 42: max");
	is_int(hist_percentile(h, 99), 42, "reset then 42: p99");
	hist_free(h);
	hist_free(fresh);
}

int
main(void)
{
	test_empty();
	test_small_exact();
	test_large_within();
	test_uniform();
	test_uniform_exact();
	test_uniform_ms();
	test_bimodal();
	test_all_equal();
	test_octaves();
	test_clamp();
	test_merge();
	test_reset();
	return done_testing();
}
