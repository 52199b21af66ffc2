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
/* Whether spec is a TCP address, tcp:HOST:PORT, HOST an IPv4 address or
 * [IPV6] and PORT 1 to 65535: 1 with host (without brackets) and port
 * set, 0 when spec is no tcp: at all (a Unix socket's path), -1 with the
 * reason in err when it is a tcp: that is no such address. */
int stats_tcp_parse(const char *spec, char *host, size_t hostlen, int *port,
    char *err, size_t errlen);
/* Serve on spec: a Unix socket's path, or tcp:HOST:PORT (the same JSON).
 * NULL with err. */
struct stats_server *stats_listen(struct event_base *base, const char *spec,
    stats_fill_fn fn, void *arg, char *err, size_t errlen);
void stats_close(struct stats_server *s);

/* The fields every daemon reports: name, pid, version, start time, uptime. */
jv stats_header(const char *name, int64_t started_us);
/* Counters as a table: each an unsigned long at off in a struct, put in
 * the object o under its name. The table ends at name NULL. */
struct stats_counter {
	const char *name;
	size_t off;
};
/* A field that is no unsigned long fails to compile (an array of size -1):
 * the table reads it as one. */
#define STATS_COUNTER(name, type, field) \
	{ (name), offsetof(type, field) + 0 * sizeof(char[ \
	  sizeof(((type *)0)->field) == sizeof(unsigned long) && \
	  _Generic(((type *)0)->field, unsigned long: 1, default: 0) ? 1 : -1]) }
jv stats_counters(jv o, const void *base, const struct stats_counter *t);
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
/* A multiplexed link: one connection that carries many requests at once
 * (ingest's pipelined Redis connection), or one that serves them one after
 * another (route's). Its saturation is not whether a request is in flight,
 * but how many are against the bound past which the daemon refuses more,
 * how much of the time one was, and how long each waited behind those
 * ahead of it. */
struct stats_link {
	long inflight, inflight_max;	/* requests on the link now; bound */
	int64_t busy_us;		/* closed periods with one in flight */
	int64_t busy_since_us;		/* start of the open one */
	int64_t last_done_us;		/* when the last request left */
	struct hist *wait_us;		/* NULL: out of memory, not recorded */
};
/* 0, or -1 when out of memory. */
int stats_link_init(struct stats_link *l, long inflight_max);
void stats_link_free(struct stats_link *l);
/* A request put on the link, and one that left it (answered or failed),
 * sent at sent_us (monotonic): in a FIFO link it waited from then until
 * the one ahead of it left. */
void stats_link_sent(struct stats_link *l);
void stats_link_done(struct stats_link *l, int64_t sent_us);
/* pool (consumed) with the link's figures: multiplexed, inflight,
 * inflight_max, busy_us (a counter since start) and wait_us (a histogram). */
jv stats_link_add(jv pool, const struct stats_link *l);
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
