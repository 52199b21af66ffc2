/* hist.c: each power of two above 2^(SUB_BITS+1) is split into 2^SUB_BITS
 * linear sub-buckets, so every recorded value is kept within 0.1%. */
#include <stdlib.h>
#include <string.h>

#include "hist.h"

#define SUB	(1u << HIST_SUB_BITS)

static unsigned
bucket_of(uint64_t v)
{
	unsigned shift;

	if (v < 2 * SUB)
		return (unsigned)v;
	shift = 63 - __builtin_clzll(v) - HIST_SUB_BITS;
	return 2 * SUB + (shift - 1) * SUB + (unsigned)((v >> shift) - SUB);
}

/* The highest value that falls in bucket i. */
static uint64_t
bucket_high(unsigned i)
{
	unsigned shift;
	uint64_t lo;

	if (i < 2 * SUB)
		return i;
	shift = (i - 2 * SUB) / SUB + 1;
	lo = ((uint64_t)((i - 2 * SUB) % SUB) + SUB) << shift;
	return lo + ((UINT64_C(1) << shift) - 1);
}

struct hist *
hist_new(void)
{
	struct hist *h = calloc(1, sizeof *h);

	if (h != NULL)
		hist_reset(h);
	return h;
}

void
hist_free(struct hist *h)
{
	free(h);
}

void
hist_reset(struct hist *h)
{
	memset(h, 0, sizeof *h);
	h->min = UINT64_MAX;
}

void
hist_record(struct hist *h, uint64_t v)
{
	if (v > HIST_MAX_VALUE)
		v = HIST_MAX_VALUE;
	h->counts[bucket_of(v)]++;
	h->count++;
	h->sum += (double)v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

void
hist_merge(struct hist *dst, const struct hist *src)
{
	unsigned i;

	for (i = 0; i < HIST_BUCKETS; i++)
		dst->counts[i] += src->counts[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t
hist_percentile(const struct hist *h, double pct)
{
	uint64_t want, seen = 0, v;
	unsigned i;

	if (h->count == 0)
		return 0;
	if (pct >= 100.0)
		return h->max;
	want = (uint64_t)((pct / 100.0) * (double)h->count + 0.5);
	if (want == 0)
		want = 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= want) {
			v = bucket_high(i);
			return v > h->max ? h->max : v;
		}
	}
	return h->max;
}

double
hist_mean(const struct hist *h)
{
	return h->count ? h->sum / (double)h->count : 0.0;
}
