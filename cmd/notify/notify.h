/* notify.h: what the files of notify share.
 *
 * Calls go one way, down this list; a part reports back up only through
 * the callbacks it was given:
 *   main.c     options, set-up, signals, the loop; gives feed.c and
 *              listen.c client.c's entry points as their callbacks
 *   client.c   a dashboard's connection: request, token, snapshots,
 *              replay, live messages
 *   server.c   the HTTP side of one connection: the request, its answer
 *   auth.c     who holds a token (pgpool.c, and listen.c before trusting
 *              its cache)
 *   feed.c     the routed stream; messages and replays go to callbacks
 *   listen.c   revocations; they go to callbacks
 *   hooks.c    hook messages to webhooks and Telegram, on its own
 *              connections; nothing above calls into it but main.c
 *   pgpool.c, request.c, ws.c, web.c, curlev.c, pace.c, input.c   below
 *              all of these */
#ifndef LABPULSE_NOTIFY_H
#define LABPULSE_NOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <event2/event.h>
#include <jv.h>
#include <libpq-fe.h>
#include <wslay/wslay.h>

#include "addr.h"
#include "prog.h"
#include "sid.h"
#include "tokens.h"

#define NOTIFY_MAX_LISTEN	8
#define NOTIFY_MAX_CLASSES	32	/* classes one client may watch */
#define NOTIFY_ID_LEN		SID_LEN
#define NOTIFY_DIGEST_HEX	TOKENS_HEX_SIZE	/* tokens_sha256_hex() */
#define NOTIFY_KEEPALIVE_MAX	500	/* requests on one connection */

struct bufferevent;
struct evconnlistener;
struct rconn;
struct hist;
struct notify;
struct snapreq;

struct httpreq;
struct peers;

struct notify_cfg {
	const char *listen[NOTIFY_MAX_LISTEN];
	int nlisten;
	const char *from;
	const char *redis_url;
	const char *db;
	const char *db_read;	/* NULL: snapshots from --db */
	long read_pool_size, read_max_lag_ms;
	const char *stats_path;
	const char *web_root;
	long max_clients, max_queue, heartbeat_ms, pool_size;
	long request_timeout_ms;	/* accept to the whole request head */
	long max_conns_per_addr;	/* 0: no cap */
	long token_ttl_ms;	/* how long a token's answer is kept; 0: not */
	int slow_close;		/* --on-slow close: no resync */
	/* hooks */
	const char *hooks_file, *hooks_from, *hooks_dead, *telegram_api;
	const char *consumer;
	long hook_max_attempts, hook_max_age_ms, hook_backoff_ms;
	long hook_timeout_ms, hook_queue, claim_idle_ms;
};

/* PostgreSQL or Redis lost (up 0, with the reason) or back (up 1). */
typedef void (*link_state_fn)(struct notify *n, int up, const char *url,
    const char *reason);

/* ---- pgpool.c: a few PostgreSQL connections shared by every client ---- */

/* res is NULL when the query could not run (err says why); the callee
 * must not PQclear it. */
typedef void (*pg_done_fn)(PGresult *res, const char *err, void *arg);

struct pgpool;
/* state, when not NULL, hears of each connect and loss (url NULL); app
 * (a static string) names the connections in pg_stat_activity. */
struct pgpool *pgpool_new(struct event_base *base, const char *conninfo,
    int size, const char *app, link_state_fn state, struct notify *n);
/* Queue a query with text parameters; done is always called, later. */
void pgpool_query(struct pgpool *p, const char *sql, int nparams,
    const char *const *params, pg_done_fn done, void *arg);
/* The same, ahead of every query already waiting. */
void pgpool_query_first(struct pgpool *p, const char *sql, int nparams,
    const char *const *params, pg_done_fn done, void *arg);
jv pgpool_stats(struct pgpool *p);
/* A connection of its own, as the pool's are made (listen.c's): opened
 * within 2 seconds, sql run on it when not NULL, then non-blocking and
 * watched by *ev, calling readable(fd, what, arg). NULL with err. */
PGconn *pg_open(struct event_base *base, const char *conninfo,
    const char *app, const char *sql, event_callback_fn readable, void *arg,
    struct event **ev, char *err, size_t errlen);
/* Close a connection and free its event, each when there is one. */
void pg_close(PGconn **conn, struct event **ev);
/* The pool in the form every daemon reports (stats_pool). */
jv pgpool_pool(struct pgpool *p);
void pgpool_free(struct pgpool *p);

/* ---- auth.c: who holds a token, cached by its digest, asked in batches ---- */

#define AUTH_MAX_ENTRIES	10000	/* tokens whose answer is kept */

/* status 0: the token is instructor's, who may watch classes (a jv array,
 * borrowed); 401: no active instructor holds it; 503: PostgreSQL could not
 * say (err). */
typedef void (*auth_done_fn)(void *arg, int status, const char *instructor,
    jv classes, const char *err);
struct authcache;
struct authcache *auth_new(struct notify *n, long ttl_ms);
/* Who holds the token whose digest is hex: done(arg, ...) is called once,
 * at once from the cache, else once the batch that asks for it is
 * answered (the caller keeps arg alive until then). */
void auth_check(struct notify *n, const char *hex, auth_done_fn done,
    void *arg);
/* A revocation: the answer for hex is dropped (auth_forget) or all are
 * (auth_flush), and a batch in flight that asks for it (auth_forget) or
 * any (auth_flush) is asked again. */
void auth_forget(struct notify *n, const char *hex);
void auth_flush(struct notify *n);
jv auth_stats(struct notify *n);
/* Exit: auth_close before the pool is freed, auth_free after. */
void auth_close(struct authcache *a);
void auth_free(struct authcache *a);

/* ---- listen.c: revocations from PostgreSQL (LISTEN labpulse_revoke), on
 * a connection of its own ---- */

#define NOTIFY_REVOKE_CHANNEL	"labpulse_revoke"

/* What a revocation does: close the clients of the token whose digest is
 * hex (the number closed), or re-check every client's token. */
struct revoke_ops {
	int (*revoke)(struct notify *n, const char *hex);
	void (*recheck_all)(struct notify *n);
};
struct listener;
/* NULL when memory ran out; a PostgreSQL that is away is tried again
 * every second. */
struct listener *listen_start(struct notify *n, const struct revoke_ops *ops);
/* Take the notifications that have arrived, now: before a cached answer is
 * trusted, a revocation already on the wire is heard. */
void listen_poll(struct listener *l);
jv listen_stats(struct listener *l);
void listen_free(struct listener *l);

/* ---- web.c: the dashboard's files, read once (and at SIGHUP), with their
 * validators and gzip forms ---- */

struct webfile {
	char *name;
	const char *ctype;
	char *body, *gz;	/* gz: NULL when gzip would not be smaller */
	size_t len, gzlen;
	char etag[24], gzetag[28];	/* quoted, as sent */
	char version[17];	/* ?v= of a versioned reference to it */
};
struct web;
/* Read every file of dir; NULL with err when dir cannot be read. */
struct web *web_load(const char *dir, char *err, size_t errlen);
void web_free(struct web *w);
/* The file for a request path ("/" is index.html), or NULL. */
const struct webfile *web_find(const struct web *w, const char *path);
unsigned long web_count(const struct web *w);

/* ---- feed.c: the routed stream (or NDJSON), read by every instance ---- */

/* Where the feed's messages go, given by main. */
struct feed_ops {
	/* a message of the stream for class klass */
	void (*dispatch)(struct notify *n, const char *id, const char *klass,
	    const char *frame, size_t len, int64_t received_us);
	/* the stream lost what was not read yet: everyone resyncs */
	void (*resync_all)(struct notify *n);
	link_state_fn redis_state;
};
struct feed;
/* -ERR_KIND with err: ERR_CONFIG for a bad Redis URL, ERR_NOINPUT for an
 * input that cannot be opened, ERR_OS when memory ran out. */
int feed_open(struct notify *n, const struct feed_ops *ops, char *err,
    size_t errlen);
/* The id of the last message dispatched ("0-0" before any). */
const char *feed_position(struct notify *n);
int feed_is_stream(struct notify *n);
int feed_is_up(struct notify *n);
jv feed_stats(struct notify *n);
/* The two Redis connections as a pool (stats_pool). */
jv feed_pool(struct notify *n);
void feed_close(struct notify *n);

/* Who a replay is for: wants(arg, klass), whether it takes the messages of
 * klass (klass NULL: whether it takes any more at all); deliver(arg, ...)
 * one, 0 to go on or -1 to stop; done(arg, result) once, always: 0 caught
 * up (or stopped), 1 a gap (since is older than the stream holds, or
 * unknown), -1 Redis failed. */
struct replay_reader {
	void *arg;
	int (*wants)(void *arg, const char *klass);
	int (*deliver)(void *arg, const char *id, const char *frame,
	    size_t len);
	void (*done)(void *arg, int result);
};
/* Replay the messages after since, up to the feed's position. */
void feed_replay(struct notify *n, const char *since,
    const struct replay_reader *rd);

/* ---- request.c: what a request asks for, decided from httpreq's parse
 * alone (no I/O, no state), so that tests/fuzz/notify_request.c drives the
 * very code server.c runs ---- */

#define NOTIFY_MAX_CLASS	120	/* bytes of a class name */
#define NOTIFY_MAX_TOKEN	255	/* bytes of a token */

enum nreq_kind {
	NREQ_ERROR,	/* answer status, msg and extra; close */
	NREQ_HEALTH,	/* /healthz */
	NREQ_STATIC,	/* a file of the web root: path */
	NREQ_WS,	/* a WebSocket handshake; accept is the answer's key */
	NREQ_SSE	/* an event stream */
};

struct nreq {
	enum nreq_kind kind;
	/* NREQ_ERROR: the HTTP status; NREQ_WS and NREQ_SSE: 0, or the
	 * status to refuse the subscription with (after a WebSocket's
	 * handshake, as close 4000 + status) */
	int status;
	char msg[200];
	const char *extra;	/* NREQ_ERROR: header lines, or NULL */
	const char *body;	/* NREQ_ERROR: a JSON body of its own, or NULL */
	const char *path;	/* NREQ_STATIC: the decoded path (the request's) */
	int head;		/* HEAD: the answer's head alone */
	/* NREQ_WS and NREQ_SSE */
	char token[NOTIFY_MAX_TOKEN + 1];
	char since[NOTIFY_ID_LEN];	/* "" or a valid stream id */
	char *classes[NOTIFY_MAX_CLASSES];	/* distinct, NUL-free */
	int nclasses;
	char accept[32];	/* NREQ_WS: Sec-WebSocket-Accept */
};

/* Decide what the whole request r asks for into q: 0, or -1 when memory ran
 * out (q then holds nothing to free). Every class of a subscription is 1 to
 * NOTIFY_MAX_CLASS bytes of UTF-8 text without control characters, named
 * once (a class named twice is a 400 that names it); since, when set, is a
 * stream id; a token that no instructor can hold is 401. */
int nreq_parse(const struct httpreq *r, struct nreq *q);
/* Free the classes q still holds. */
void nreq_free(struct nreq *q);

/* ---- ws.c: notify's side of a WebSocket over wslay, and the bound on
 * what a client can make notify hold for it, control frames included ---- */

#define NOTIFY_WS_MAX_MSG	65536	/* a message from a client, in bytes */
#define NOTIFY_WS_OVER_CODE	1008	/* close code past the bound */

struct ws_peer {
	wslay_event_context_ptr ctx;
	void *arg;			/* the connection, for recv and send */
	size_t (*held)(void *arg);	/* bytes it holds, wslay's aside */
	size_t bound;			/* past it, the peer is closed */
	int over;			/* it went past: closing */
};

/* Make w's server context with notify's settings; recv and send get w as
 * their user data (w->arg is arg), held says what the connection holds
 * besides wslay's queue. 0, or -1 when memory ran out. */
int ws_open(struct ws_peer *w, wslay_event_recv_callback recv,
    wslay_event_send_callback send, size_t (*held)(void *), void *arg,
    size_t bound);
void ws_free(struct ws_peer *w);
/* Bytes held for the peer: the connection's and wslay's queue. */
size_t ws_queued(const struct ws_peer *w);
/* Of them, wslay's queue (each message with a frame header's worth). */
size_t ws_pending(const struct ws_peer *w);

enum ws_state {
	WS_OPEN,	/* carry on */
	WS_OVER,	/* past the bound: close NOTIFY_WS_OVER_CODE queued */
	WS_DONE		/* closed, or the protocol failed: close it */
};
/* Take what the peer sent and send what is queued. A peer whose pings
 * would make notify hold more than bound is read no further. */
enum ws_state ws_service(struct ws_peer *w);

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
	char token_hash[NOTIFY_DIGEST_HEX];
	char instructor[128];
	char addr[64];		/* counted in n->peers, when addr_counted */
	int addr_counted;
	struct httpreq *req;	/* while reading the request */
	struct event *deadline;	/* the whole request head by then */
	/* delivery */
	struct ws_peer wsp;
	wslay_event_context_ptr ws;	/* wsp.ctx */
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
	int head_only;		/* a HEAD request: no body in the answer */
	int served;		/* files served on this connection */
	TAILQ_ENTRY(client) link;
};
TAILQ_HEAD(client_list, client);

/* A connection from peer (HOST:PORT, for logs), counted against addr
 * (peers_addr_text) for --max-conns-per-addr. */
void client_accept(struct notify *n, int fd, const char *peer,
    const char *addr);
/* A message of the stream for class klass, to every live client of it. */
void client_dispatch(struct notify *n, const char *id, const char *klass,
    const char *frame, size_t len, int64_t received_us);
/* Heartbeats, dead and slow clients: called every --heartbeat. */
void client_tick(struct notify *n);
/* Close every client (shutdown): WebSocket 1001. */
void client_close_all(struct notify *n);
/* SIGHUP, or revocations that may have been missed: empty the token cache,
 * check every client's token and classes again; close those that lost
 * them (4401, 4403). */
void client_recheck_all(struct notify *n);
/* A revocation of the token whose digest is hex: its clients are closed
 * 4401 at once; the number closed. */
int client_revoke(struct notify *n, const char *hex);
/* The stream lost what the live reader had not read: every live client
 * gets a resync and a fresh snapshot. */
void client_resync_all(struct notify *n);
/* Bytes waiting in every client's output. */
size_t client_queued_total(struct notify *n);
/* Free every client at once (exit). */
void client_drop_all(struct notify *n);
/* Clients by class and kind, for stats. */
jv client_stats(struct notify *n);

/* ---- server.c: the HTTP part: requests, static files, upgrades ---- */

/* Read what the client sent so far: 0 for more; 1 when the request asks
 * for a stream, described in q (a WebSocket's or SSE's, for the caller to
 * start, and to free with nreq_free); 2 answered, and the connection may
 * carry another; -1 answered: close. */
int server_request(struct client *c, struct nreq *q);
/* The WebSocket handshake's answer, with its Sec-WebSocket-Accept. */
void server_upgrade(struct client *c, const char *accept);
void server_reply(struct client *c, int status, const char *ctype,
    const char *extra_headers, const char *body, size_t len);
void server_error(struct client *c, int status, const char *msg);
/* The same with header lines of its own (each ending in CRLF). */
void server_error_extra(struct client *c, int status, const char *extra,
    const char *msg);

/* ---- curlev.c: libcurl's multi interface on the event loop ---- */

typedef void (*curlev_done_fn)(void *easy, int curlcode, void *arg);
struct curlev;
struct curlev *curlev_new(struct event_base *base);
/* Start the transfer easy, set up by the caller; done(easy, CURLcode,
 * arg) is called once, later, when it ended, unless curlev_remove came
 * first. -1 when memory ran out. */
int curlev_add(struct curlev *c, void *easy, curlev_done_fn done, void *arg);
/* Stop a transfer that has not ended: done is not called. */
void curlev_remove(struct curlev *c, void *easy);
void curlev_free(struct curlev *c);

/* ---- input.c: NDJSON read on the loop, a pipe, socket or file ---- */

#define NINPUT_LINE_MAX	(1 << 20)	/* bytes of one line */

struct evbuffer;
struct ninput_ops {
	/* bytes have come: take the whole lines of in that you want */
	void (*lines)(struct evbuffer *in, void *arg);
	/* the input ended (error 0: after a last line without its newline
	 * was given to lines), or failed: errno's value, EMSGSIZE for a line
	 * longer than NINPUT_LINE_MAX */
	void (*end)(int error, void *arg);
};
struct ninput;
/* Read fd, which it owns from now on: NULL when memory ran out. */
struct ninput *ninput_open(struct event_base *base, int fd,
    const struct ninput_ops *ops, void *arg);
/* Stop reading (a reader with no room) or go on. What was read and not
 * taken stays in the buffer lines was given. */
void ninput_reading(struct ninput *in, int on);
int ninput_ended(const struct ninput *in);
void ninput_free(struct ninput *in);

/* ---- hooks.c: hook messages to webhooks and Telegram ---- */

struct hooks;
/* With --hooks (or $LABPULSE_HOOKS): read the hooks file and start
 * reading the hooks stream or input; without, nothing. -ERR_KIND with err:
 * ERR_CONFIG for a bad file, secret or address, ERR_NOINPUT for a file or
 * input that cannot be read, ERR_OS when memory ran out. */
int hooks_open(struct notify *n, char *err, size_t errlen);
/* SIGHUP: the file read anew; a bad one is kept as it was. */
void hooks_reload(struct notify *n);
/* Stopping: nothing more read or sent. */
void hooks_stop(struct notify *n);
/* Requests not answered yet. */
long hooks_in_flight(struct notify *n);
/* The "hooks" object of the stats, or an invalid jv without hooks. */
jv hooks_stats(struct notify *n);
void hooks_close(struct notify *n);

/* ---- main.c ---- */

struct notify {
	struct notify_cfg cfg;
	struct daemon d;	/* d.stop: stopping, closing every client */
	struct event_base *base;	/* d.base */
	struct evconnlistener *listeners[NOTIFY_MAX_LISTEN + 64];
	int nlisteners;
	struct addr from;
	struct addr hooks_from, hooks_dead;	/* checked with the options */
	const char *hooks_dead_spec;
	struct pgpool *pool;
	struct pgpool *read_pool;	/* --db-read's, or NULL */
	TAILQ_HEAD(, snapreq) snapwait;	/* waiting for --db-read to replay */
	long read_waiting;		/* in snapwait */
	int read_up;			/* --db-read as last logged: -1 none */
	char read_why[256];
	struct authcache *auth;
	struct listener *listener;	/* revocations */
	struct web *web;		/* the dashboard's files */
	struct feed *feed;
	struct hooks *hooks;	/* NULL without --hooks */
	struct peers *peers;	/* connections per address */
	struct client_list clients;
	long nclients, nws, nsse;
	struct event *tick;	/* every --heartbeat; 50 ms once stopping */
	int64_t started_us;
	char web_root[512];
	/* counters */
	unsigned long accepted, refused_cap, messages_in, messages_sent;
	unsigned long snapshots, resync_gap, resync_slow, dropped_slow;
	unsigned long dead_closed, auth_401, auth_403, bad_requests;
	unsigned long replays, replayed, proto_errors, revoked_closed;
	unsigned long closed_unavailable, recheck_errors;
	/* snapshots of --db-read: served by it, waits for its replay, and
	 * those asked of --db instead: it stayed behind, or failed */
	unsigned long read_snapshots, read_waits, read_lagging;
	unsigned long read_unavailable;
	unsigned long refused_addr;	/* past --max-conns-per-addr */
	unsigned long request_timeouts;	/* head not whole in time: 408 */
	unsigned long malformed;	/* requests refused before routing */
	unsigned long ws_over;		/* WebSocket past its queue bound */
	unsigned long oom_closed;	/* closed: memory ran out */
	unsigned long oom_dropped;	/* messages not framed: no memory */
	unsigned long skipped;	/* messages a slow client did not get */
	struct hist *delivery_us;	/* receivedAt → written to the client */
};

#endif
