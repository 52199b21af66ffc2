/* ingest.h: what the files of ingest share. Calls go one way, down:
 * main.c sets up; lib/httpd reads a whole request and hands it to http.c,
 * which checks it and gives the events to sink.c; both answer through
 * reply.c (httpd_reply), http.c at once, sink.c when the events are
 * durable or have failed. reply.c calls neither. */
#ifndef LABPULSE_INGEST_H
#define LABPULSE_INGEST_H

#include <stdint.h>
#include <sys/queue.h>
#include <jv.h>

#include "addr.h"
#include "events.h"
#include "httpd.h"
#include "httpreq.h"
#include "prog.h"
#include "stats.h"

#define INGEST_MAX_LISTEN 16

struct ingest_cfg {
	const char *listen[INGEST_MAX_LISTEN];
	int nlisten;
	const char *to;
	const char *redis_url;
	const char *token_file;
	const char *default_class;
	const char *stats_path;		/* NULL: default; "none": no socket */
	long max_body, max_batch, max_field, max_inflight, max_conns;
	long max_conns_per_addr, max_backlog, max_backlog_bytes;
	struct ingest_rate {
		double rate, burst;	/* POSTs a second, at once; 0: off */
	} rate_addr, rate_token;
	long timeout_ms, request_timeout_ms, redis_timeout_ms, drain_timeout_ms;
	long redis_wait, redis_wait_timeout_ms;	/* WAIT N TIMEOUT; 0: none */
};

/* Rejections by reason, for the stats socket. */
enum reject {
	REJ_MALFORMED, REJ_INVALID, REJ_FIELD_TOO_LARGE, REJ_BATCH_TOO_LARGE,
	REJ_CONTENT_TYPE, REJ_UNAUTHORIZED, REJ_FORBIDDEN_CLASS, REJ_NOT_FOUND,
	REJ_METHOD, REJ_OVERLOADED, REJ_UNAVAILABLE, REJ_DRAINING,
	REJ_RATE_ADDR, REJ_RATE_TOKEN, REJ_BACKLOG, REJ_NOT_REPLICATED,
	REJ__COUNT
};

struct pending;
struct tokens;
struct buckets;

struct ingest {
	struct ingest_cfg cfg;
	struct daemon d;
	struct event_base *base;	/* d's */
	struct event *tick;
	struct httpd *httpd;
	struct rconn *redis;		/* NULL when --to is not a stream */
	struct addr to;
	char stream_key[160];
	int out_fd;			/* NDJSON out when --to is not a stream */
	struct tokens *tokens;		/* NULL: no token file */
	struct buckets *rate_addr, *rate_token;	/* NULL: off */
	struct events_limits limits;
	TAILQ_HEAD(, pending) pending;	/* FIFO, in Redis reply order */
	/* --redis-wait: requests whose transaction Redis took, waiting for a
	 * WAIT to say the replicas have it too; in the order sent */
	TAILQ_HEAD(, pending) unsynced;
	long inflight;			/* requests in either list */
	/* transactions sent, and the last of them the WAIT in flight (or the
	 * last one sent) covers: one WAIT answers for all before it */
	unsigned long long tx_sent, wait_covers;
	int wait_inflight;		/* at most one WAIT out at a time */
	int wait_lagging;		/* the last WAIT came back short */
	int64_t wait_t0;		/* when the WAIT in flight was sent */
	int64_t wait_done_us;		/* when the last WAIT was answered */
	/* the stream's backlog as last polled (-1: not known yet) */
	long long backlog_len, backlog_bytes;
	int backlog_polling;
	int draining;
	int exit_code;
	int64_t started_us;
	struct hist *redis_rtt;		/* microseconds */
	struct stats_link link;		/* the pipelined Redis connection */
	/* counters since start */
	unsigned long requests, events_accepted, posts_accepted;
	unsigned long rejects[REJ__COUNT];
	unsigned long redis_timeouts;
	unsigned long wait_sent, wait_short;	/* WAITs, and those short of N */
	unsigned long resp_2xx, resp_4xx, resp_5xx;
};

/* http.c: what ingest answers to one whole request. */
void http_handle(struct httpd_conn *c, const struct httpreq *r, void *arg);
/* 1 when the backlog poll says the stream is past --max-backlog or
 * --max-backlog-bytes. */
int backlog_full(const struct ingest *ing);

/* sink.c: where accepted events go. */
struct pending {
	TAILQ_ENTRY(pending) link;
	struct ingest *ing;
	struct httpd_conn *conn;	/* answered when done */
	int64_t t0;			/* monotonic microseconds */
	unsigned long long seq;		/* its transaction's number, from 1 */
	int unsynced;			/* in ing->unsynced, not ing->pending */
	int nevents;
	size_t blen;
	char body[];			/* the 202 answer; empty for a PING */
};
int sink_setup(struct ingest *ing, char *err, size_t errlen);
/* Queue the stamped events; answers c when they are durable or have
 * failed. */
void sink_put(struct ingest *ing, struct httpd_conn *c,
    const struct events_text *t);
/* Health: answers c with 200 or 503. */
void sink_health(struct ingest *ing, struct httpd_conn *c);
int sink_available(struct ingest *ing);
/* The request waiting longest on Redis, in either list, or NULL. */
const struct pending *sink_oldest(const struct ingest *ing);
void sink_check_timeouts(struct ingest *ing);
/* Ask Redis for the stream's length (and size) when no ask is under way. */
void sink_poll_backlog(struct ingest *ing);
void pending_done(struct pending *p);

/* reply.c: answers. headers: extra lines, each ending "\r\n", or "". */
void reply_text(struct ingest *ing, struct httpd_conn *c, int code,
    const char *headers, const char *body, size_t len);
void reply_json(struct ingest *ing, struct httpd_conn *c, int code,
    const char *headers, jv body);
void reply_error(struct ingest *ing, struct httpd_conn *c, int code,
    enum reject why, const char *headers, const char *msg);
/* The same with an error object of more fields than "error". */
void reply_reject(struct ingest *ing, struct httpd_conn *c, int code,
    enum reject why, const char *headers, jv body);
const char *reject_name(enum reject r);
/* While draining, leave the loop once nothing is in hand. */
void ingest_maybe_exit(struct ingest *ing);

#endif
