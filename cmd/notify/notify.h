/* notify.h: what the files of notify share. */
#ifndef LABPULSE_NOTIFY_H
#define LABPULSE_NOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <jv.h>
#include <libpq-fe.h>
#include <wslay/wslay.h>

#include "addr.h"

#define NOTIFY_MAX_LISTEN	8
#define NOTIFY_MAX_CLASSES	32	/* classes one client may watch */
#define NOTIFY_ID_LEN		48

struct event_base;
struct event;
struct bufferevent;
struct evconnlistener;
struct rconn;
struct hist;
struct notify;

struct notify_cfg {
	const char *listen[NOTIFY_MAX_LISTEN];
	int nlisten;
	const char *from;
	const char *redis_url;
	const char *db;
	const char *stats_path;
	const char *web_root;
	long max_clients, max_queue, heartbeat_ms, pool_size;
	int slow_close;		/* --on-slow close: no resync */
};

/* ---- pgpool.c: a few PostgreSQL connections shared by every client ---- */

/* res is NULL when the query could not run (err says why); the callee
 * must not PQclear it. */
typedef void (*pg_done_fn)(PGresult *res, const char *err, void *arg);

struct pgpool;
struct pgpool *pgpool_new(struct event_base *base, const char *conninfo,
    int size);
/* Queue a query with text parameters; done is always called, later. */
void pgpool_query(struct pgpool *p, const char *sql, int nparams,
    const char *const *params, pg_done_fn done, void *arg);
jv pgpool_stats(struct pgpool *p);
/* The pool in the form every daemon reports (stats_pool). */
jv pgpool_pool(struct pgpool *p);
void pgpool_free(struct pgpool *p);

/* ---- feed.c: the routed stream (or NDJSON), read by every instance ---- */

/* Stream ids: ms and seq; "0-0" is before everything. */
struct sid {
	uint64_t ms, seq;
};
int sid_parse(const char *s, struct sid *out);
int sid_cmp(struct sid a, struct sid b);
void sid_format(struct sid id, char buf[NOTIFY_ID_LEN]);

struct feed;
int feed_open(struct notify *n, char *err, size_t errlen);
/* The id of the last message dispatched ("0-0" before any). */
const char *feed_position(struct notify *n);
int feed_is_stream(struct notify *n);
int feed_is_up(struct notify *n);
jv feed_stats(struct notify *n);
/* The two Redis connections as a pool (stats_pool). */
jv feed_pool(struct notify *n);
void feed_close(struct notify *n);

/* Replay: messages of the client's classes after since, up to the feed's
 * position; done(c, result): 0 caught up, 1 a gap (since is older than the
 * stream holds, or unknown), -1 Redis failed. */
struct client;
typedef void (*replay_done_fn)(struct client *c, int result);
void feed_replay(struct notify *n, struct client *c, const char *since,
    replay_done_fn done);

/* ---- client.c: one dashboard connection, WebSocket or SSE ---- */

enum client_kind { CK_HTTP, CK_WS, CK_SSE };
enum client_state {
	CS_REQUEST,	/* reading the request */
	CS_AUTH,	/* waiting for the token check */
	CS_SNAPSHOT,	/* waiting for snapshots; live messages held */
	CS_REPLAY,	/* sending what it missed from the stream */
	CS_LIVE,
	CS_SLOW,	/* fell behind: nothing more until its queue drains */
	CS_CLOSING	/* flushing the last bytes */
};

struct client {
	struct notify *n;
	struct bufferevent *bev;
	enum client_kind kind;
	enum client_state state;
	int refs;		/* async work that will call back */
	int dead;		/* freed once refs drop to 0 */
	char peer[64];
	/* the request */
	char token[256];
	char since[NOTIFY_ID_LEN];
	char *classes[NOTIFY_MAX_CLASSES];
	int nclasses;
	char instructor[128];
	/* delivery */
	wslay_event_context_ptr ws;
	char last_id[NOTIFY_ID_LEN];	/* last message id it was sent */
	int snapshots_waiting;
	jv held;		/* live messages held during snapshots */
	size_t held_bytes;
	int resync_after;	/* held overflowed: snapshot again */
	int snapshot_bytes;	/* queued bytes that are snapshots */
	int64_t last_seen_us;	/* WebSocket: last frame from the client */
	int64_t slow_since_us;
	int64_t opened_us;
	unsigned long sent;
	TAILQ_ENTRY(client) link;
};
TAILQ_HEAD(client_list, client);

void client_accept(struct notify *n, int fd, const char *peer);
/* A message of the stream for class klass, to every live client of it. */
void client_dispatch(struct notify *n, const char *id, const char *klass,
    const char *frame, size_t len, int64_t received_us);
/* One message frame to one client (replays); received_us 0 when unknown. */
void client_deliver(struct client *c, const char *id, const char *frame,
    size_t len, int64_t received_us);
/* Heartbeats, dead and slow clients: called every --heartbeat. */
void client_tick(struct notify *n);
/* Close every client (shutdown): WebSocket 1001. */
void client_close_all(struct notify *n);
/* SIGHUP: check every client's token and classes again; close those that
 * lost them (4401, 4403). */
void client_recheck_all(struct notify *n);
/* The stream lost what the live reader had not read: every live client
 * gets a resync and a fresh snapshot. */
void client_resync_all(struct notify *n);
/* Bytes waiting in every client's output. */
size_t client_queued_total(struct notify *n);
/* Free every client at once (exit). */
void client_drop_all(struct notify *n);
void client_hold(struct client *c);
/* After the request: c->kind is CK_WS (client_ws_start done) or CK_SSE;
 * status 0 to check its token, else the HTTP status of what was wrong. */
void client_subscribe(struct client *c, int status, const char *msg);
int client_ws_start(struct client *c);
/* Clients by class and kind, for stats. */
jv client_stats(struct notify *n);
void client_release(struct client *c);

/* ---- server.c: the HTTP part: requests, static files, upgrades ---- */

/* Parse what the client sent so far; 1 when the request is complete and
 * handled (the client changed kind or is closing), 0 for more, -1 bad. */
int server_request(struct client *c);
void server_reply(struct client *c, int status, const char *ctype,
    const char *extra_headers, const char *body, size_t len);
void server_error(struct client *c, int status, const char *msg);

/* ---- main.c ---- */

struct class_count {
	char *name;
	unsigned long ws, sse;
};

struct notify {
	struct notify_cfg cfg;
	struct event_base *base;
	struct evconnlistener *listeners[NOTIFY_MAX_LISTEN + 64];
	int nlisteners;
	struct addr from;
	struct pgpool *pool;
	struct feed *feed;
	struct client_list clients;
	long nclients, nws, nsse;
	int stopping;
	int64_t started_us;
	char web_root[512];
	/* counters */
	unsigned long accepted, refused_cap, messages_in, messages_sent;
	unsigned long snapshots, resync_gap, resync_slow, dropped_slow;
	unsigned long dead_closed, auth_401, auth_403, bad_requests;
	unsigned long replays, replayed, proto_errors, revoked_closed;
	unsigned long closed_unavailable, recheck_errors;
	unsigned long skipped;	/* messages a slow client did not get */
	struct hist *delivery_us;	/* receivedAt → written to the client */
};

#endif
