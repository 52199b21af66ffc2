/* pace.h: the arithmetic that paces hook deliveries: token buckets, retry
 * backoff, Retry-After, and a ring of recent values for percentiles. Pure
 * functions on the caller's structs: no clock, no I/O, no allocation, so
 * hooks.c passes the time in and the unit test can pass any time. */
#ifndef LABPULSE_NOTIFY_PACE_H
#define LABPULSE_NOTIFY_PACE_H

#include <stdint.h>

/*
 * A token bucket: rate tokens a second up to burst, full at start.
 * Tokens accrue by elapsed time as a double and at_us moves to the time of
 * each call that changes the bucket, so a bucket used at full speed keeps
 * its rate exactly, without drift. A time earlier than at_us (a clock that
 * went back) adds nothing. A rate below one a day counts as one a day and a
 * burst below 1 as 1, so the waits stay finite.
 */
struct bucket {
	double	rate;		/* tokens a second */
	double	burst;		/* tokens at most */
	double	tokens;		/* in hand at at_us */
	int64_t	at_us;		/* when tokens was counted */
	int64_t	hold_until_us;	/* nothing before (a 429's Retry-After) */
};

void	bucket_init(struct bucket *b, double rate, double burst,
	    int64_t now_us);
/* Microseconds until a token is there (0: now), counting a hold; at most
 * 1e15 (some 31 years), whatever the times. */
int64_t	bucket_wait_us(const struct bucket *b, int64_t now_us);
/* Take one token now (the caller has seen bucket_wait_us() == 0). */
void	bucket_take(struct bucket *b, int64_t now_us);
/*
 * Nothing before until_us (a 429's Retry-After): the bucket is empty until
 * then; at until_us exactly one token is there (for the retry, so it goes
 * out after exactly Retry-After), and the bucket refills from that time.
 * A hold never shortens one already set.
 */
void	bucket_hold(struct bucket *b, int64_t until_us);
/* Change rate and burst (a reloaded hooks file), keeping the tokens in hand
 * (capped at the new burst) and any hold. */
void	bucket_set(struct bucket *b, double rate, double burst,
	    int64_t now_us);

/*
 * The wait after the failures-th consecutive failure (failures >= 1; less
 * counts as 1): base_us doubled failures-1 times, capped at cap_us, with
 * "equal jitter": from half of that (rounded down) to all of it, both
 * included, by rnd (any 32-bit value: rnd % range). Never overflows,
 * whatever failures. 0 when base_us or cap_us is not positive.
 */
int64_t	backoff_us(int64_t base_us, int64_t cap_us, int failures,
	    uint32_t rnd);

/* Retry-After's upper bound, and retry_after_us()'s for anything later. */
#define PACE_RETRY_MAX_US	(86400 * (int64_t)1000000)

/*
 * Retry-After's value: delay-seconds (digits) or an HTTP-date (IMF-fixdate,
 * RFC 9110: "Sun, 06 Nov 1994 08:49:37 GMT"), as microseconds from
 * now_wall_us (wall clock, microseconds since the epoch); a date in the
 * past is 0. -1 when the value is neither. White space (spaces, tabs, CR,
 * LF) around the value is ignored. Bounded: values past 1 day are 1 day.
 */
int64_t	retry_after_us(const char *value, int64_t now_wall_us);

/* The last PACE_RING values (e.g. latencies), and their percentile. A
 * zeroed struct ring is empty. */
#define PACE_RING 512
struct ring {
	uint32_t	v[PACE_RING];
	unsigned	n, next;
};

/* Values past UINT32_MAX are UINT32_MAX. */
void	ring_add(struct ring *r, uint64_t value);
/* The nearest-rank percentile, pct from 0 (the least) to 100 (the most),
 * of the values held; 0 when empty. */
uint64_t ring_percentile(const struct ring *r, double pct);

#endif
