/* ingest.h: what the files of ingest share. */
#ifndef LABPULSE_INGEST_H
#define LABPULSE_INGEST_H

#include <stdint.h>
#include <jv.h>

#include "addr.h"
#include "events.h"

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
	long timeout_ms, redis_timeout_ms, drain_timeout_ms;
};

struct token {
	char *token;
	char *class_id;
};

/* Rejections by reason, for the stats socket. */
enum reject {
	REJ_MALFORMED, REJ_INVALID, REJ_FIELD_TOO_LARGE, REJ_BATCH_TOO_LARGE,
	REJ_CONTENT_TYPE, REJ_UNAUTHORIZED, REJ_NOT_FOUND, REJ_METHOD,
	REJ_OVERLOADED, REJ_UNAVAILABLE, REJ_DRAINING, REJ__COUNT
};

struct pending;

/* A client connection that has sent at least one request. */
struct conn {
	struct conn *hnext;
	struct ingest *ing;
	struct evhttp_connection *evcon;
	struct pending *pending;	/* its request waiting on Redis */
};
#define CONN_BUCKETS 4096
#define UNCONF_MAX 65536

struct ingest {
	struct ingest_cfg cfg;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound[INGEST_MAX_LISTEN];
	int nbound;
	struct rconn *redis;		/* NULL when --to is not a stream */
	struct addr to;
	char stream_key[160];
	int out_fd;			/* NDJSON out when --to is not a stream */
	struct token *tokens;
	size_t ntokens;
	struct events_limits limits;
	struct pending *pend_head, *pend_tail;	/* FIFO, in Redis reply order */
	long inflight;
	long writing;			/* answers being written while draining */
	long conns, nconfirmed;
	struct conn *conn_table[CONN_BUCKETS];
	int64_t unconf[UNCONF_MAX];	/* accept times, FIFO */
	size_t unconf_head, unconf_len;
	int listening_paused;
	int draining;
	int exit_code;
	int64_t started_us;
	struct hist *redis_rtt;		/* microseconds */
	/* counters since start */
	unsigned long requests, events_accepted, posts_accepted;
	unsigned long rejects[REJ__COUNT];
	unsigned long conns_total, conns_paused, redis_timeouts;
	unsigned long resp_2xx, resp_4xx, resp_5xx;
};

/* http.c */
int http_setup(struct ingest *ing, const int *fds, int nfds);
void http_drain(struct ingest *ing);
void http_age_conns(struct ingest *ing);
void ingest_maybe_exit(struct ingest *ing);
struct conn *conn_of(struct ingest *ing, struct evhttp_request *req);
const char *reject_name(enum reject r);

/* sink.c: where accepted events go. */
struct pending {
	struct pending *prev, *next;
	struct ingest *ing;
	struct evhttp_request *req;	/* NULL when the client went away */
	struct conn *conn;
	jv ids;				/* answer on success; jv_null() for a PING */
	int64_t t0;			/* monotonic microseconds */
	int nevents;
};
int sink_setup(struct ingest *ing, char *err, size_t errlen);
/* Queue the stamped events; answers req when they are durable or have
 * failed. */
void sink_put(struct ingest *ing, struct evhttp_request *req,
    const struct events_text *t);
/* Health: answers req with 200 or 503. */
void sink_health(struct ingest *ing, struct evhttp_request *req);
int sink_available(struct ingest *ing);
void sink_check_timeouts(struct ingest *ing);
void pending_done(struct pending *p);

/* Answers, in http.c */
void reply_json(struct ingest *ing, struct evhttp_request *req, int code,
    jv body);
void reply_error(struct ingest *ing, struct evhttp_request *req, int code,
    enum reject why, const char *msg);

/* main.c */
int tokens_load(const char *path, struct token **out, size_t *n,
    char *err, size_t errlen);
void tokens_free(struct token *t, size_t n);

#endif
