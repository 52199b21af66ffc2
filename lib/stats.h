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
/* The fields every daemon has for poolstat(1), in PgBouncer's words. One
 * pool of connections: kind is "postgres" or "redis". */
struct stats_pool {
	const char *kind;
	int connected;
	long sv_max, sv_active, sv_idle;	/* server connections */
	long cl_waiting;			/* requests waiting for one */
	int64_t maxwait_us;			/* the oldest of them, now */
};
/* Also in the object: cl_active (requests using a connection, here
 * sv_active), sv_used (0: connections are never parked for a check) and
 * maxwait (whole seconds of maxwait_us), as PgBouncer's SHOW POOLS has. */
jv stats_pool(const struct stats_pool *p);
/* What waits in the daemon: depth, max (< 0: no limit) and what it is. */
jv stats_queue(double depth, double max, const char *what);
/* Counters since start: taken in, passed on, dropped (the daemon's or its
 * readers' fault; a client's bad input is not dropped). */
jv stats_delivery(double in, double out, double dropped);

/* {"count":…, "p50":…, "p99":…, "p999":…, "max":…, "mean":…} of h. */
jv stats_hist(const struct hist *h);

/* Wall-clock and monotonic time in microseconds. */
int64_t stats_now_us(void);
int64_t stats_mono_us(void);

#endif
