/* test_stats.c: the figures of a multiplexed link: the requests in flight
 * against the bound, the time it was busy (only while one was in flight),
 * and each request's wait behind the one ahead of it. */
#include <stdint.h>
#include <time.h>

#include <jv.h>

#include "hist.h"
#include "stats.h"
#include "tap.h"

static void
nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static double
num(jv o, const char *key)
{
	jv v = jv_object_get(jv_copy(o), jv_string(key));
	double x = jv_get_kind(v) == JV_KIND_NUMBER ? jv_number_value(v) : -1;

	jv_free(v);
	return x;
}

int
main(void)
{
	struct stats_link l;
	int64_t t1, t2, t3, t0;
	jv o;

	if (stats_link_init(&l, 8) < 0)
		bail_out("stats_link_init: out of memory");
	is_int(l.inflight_max, 8, "the bound is kept");
	/* idle: nothing busy, even as time passes */
	nap_ms(20);
	o = stats_link_add(jv_object(), &l);
	ok(num(o, "busy_us") == 0, "idle: busy_us 0");
	ok(jv_get_kind(jv_object_get(jv_copy(o), jv_string("multiplexed"))) ==
	    JV_KIND_TRUE, "multiplexed: true");
	is_int(num(o, "inflight_max"), 8, "inflight_max 8");
	jv_free(o);

	/* three pipelined: the second and third wait for the first, which
	 * waited for nothing */
	t0 = stats_mono_us();
	t1 = stats_mono_us();
	stats_link_sent(&l);
	t2 = stats_mono_us();
	stats_link_sent(&l);
	t3 = stats_mono_us();
	stats_link_sent(&l);
	is_int(l.inflight, 3, "three in flight");
	o = stats_link_add(jv_object(), &l);
	is_int(num(o, "inflight"), 3, "inflight 3 in the object");
	jv_free(o);
	nap_ms(30);
	stats_link_done(&l, t1);
	nap_ms(10);
	stats_link_done(&l, t2);
	stats_link_done(&l, t3);
	is_int(l.inflight, 0, "none in flight");
	is_int(l.wait_us->count, 3, "three waits recorded");
	ok(hist_percentile(l.wait_us, 100) >= 40000,
	    "the last waited for the one ahead of it, 40ms and more (%llu)",
	    (unsigned long long)hist_percentile(l.wait_us, 100));
	ok(l.wait_us->min == 0, "the first waited for nothing");
	ok(l.busy_us >= 40000 && l.busy_us <= stats_mono_us() - t0,
	    "busy while in flight: 40ms and more, no more than elapsed (%lld)",
	    (long long)l.busy_us);

	/* idle again: busy does not grow */
	t1 = l.busy_us;
	nap_ms(20);
	o = stats_link_add(jv_object(), &l);
	ok(num(o, "busy_us") == (double)t1, "idle again: busy_us still");
	jv_free(o);

	/* a request sent after the link went idle waits for nothing */
	t1 = stats_mono_us();
	stats_link_sent(&l);
	nap_ms(5);
	o = stats_link_add(jv_object(), &l);
	ok(num(o, "busy_us") > (double)l.busy_us,
	    "in flight: busy_us counts the open period");
	jv_free(o);
	stats_link_done(&l, t1);
	is_int(l.wait_us->count, 4, "four waits recorded");
	is_int(hist_percentile(l.wait_us, 25), 0, "the fourth waited for nothing");

	/* more done than sent is ignored */
	stats_link_done(&l, t1);
	is_int(l.inflight, 0, "never below 0");
	is_int(l.wait_us->count, 4, "nor recorded");
	stats_link_free(&l);
	return done_testing();
}
