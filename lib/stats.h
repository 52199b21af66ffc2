/* stats.h: the stats socket every daemon answers on: connect, read one JSON
 * object of counters and gauges, and the daemon closes. */
#ifndef LABPULSE_STATS_H
#define LABPULSE_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <jv.h>

struct event_base;
struct stats_server;
struct hist;

/* Fill and return the daemon's own figures (an object). */
typedef jv (*stats_fill_fn)(void *arg);

/* The default path: $LABPULSE_RUNDIR/NAME.sock, else /run/labpulse/NAME.sock. */
void stats_default_path(const char *name, char *buf, size_t len);
struct stats_server *stats_listen(struct event_base *base, const char *path,
    stats_fill_fn fn, void *arg, char *err, size_t errlen);
void stats_close(struct stats_server *s);

/* The fields every daemon reports: name, pid, version, start time, uptime. */
jv stats_header(const char *name, int64_t started_us);
/* {"count":…, "p50":…, "p99":…, "p999":…, "max":…, "mean":…} of h. */
jv stats_hist(const struct hist *h);

/* Wall-clock and monotonic time in microseconds. */
int64_t stats_now_us(void);
int64_t stats_mono_us(void);

#endif
