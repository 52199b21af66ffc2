/* hist.h: fixed-memory log-linear histogram (HdrHistogram-style, three
 * significant digits) for latencies; never a list of samples. */
#ifndef LABPULSE_HIST_H
#define LABPULSE_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS	10
#define HIST_MAX_VALUE	((UINT64_C(1) << 40) - 1)
#define HIST_BUCKETS	((2 << HIST_SUB_BITS) + (40 - HIST_SUB_BITS - 1) * (1 << HIST_SUB_BITS))

struct hist {
	uint64_t count, min, max;
	double sum;
	uint64_t counts[HIST_BUCKETS];
};

struct hist *hist_new(void);
void hist_free(struct hist *h);
void hist_reset(struct hist *h);
/* Values above HIST_MAX_VALUE are recorded as HIST_MAX_VALUE. */
void hist_record(struct hist *h, uint64_t value);
void hist_merge(struct hist *dst, const struct hist *src);
/* The value at or below which pct percent of the values lie (0 < pct <= 100),
 * within the resolution of the histogram; 0 when empty. */
uint64_t hist_percentile(const struct hist *h, double pct);
double hist_mean(const struct hist *h);

#endif
