/* client.c: one dashboard connection. After the request (server.c) it is a
 * WebSocket (frames through wslay) or a Server-Sent-Events stream; both go
 * through the same steps: the token checked against the instructors, then
 * a snapshot per class (or a replay from the id the client last saw), then
 * live messages in stream order. A client's send queue is what sits in its
 * output buffer: past --max-queue it gets nothing more until it has drained,
 * then a resync and a fresh snapshot; one that does not drain is closed.
 * It calls server.c for the request and its answers, auth.c and feed.c for
 * the token and the replay, whose answers come back by callback; feed.c's
 * live messages and listen.c's revocations come in through main.c. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "hist.h"
#include "httpreq.h"
#include "log.h"
#include "notify.h"
#include "peers.h"
#include "stats.h"

#define CLOSE_TIMEOUT_S		5	/* to write the last bytes */
/* What is read ahead of what notify has taken: a whole request head and
 * body (server.c's bounds) and some. Without a bound, a client that
 * pipelines requests and reads no answer makes notify read, and hold, all
 * it sends while the first answer waits in the output. */
#define CLIENT_READ_AHEAD	16384

/* A class as student_progress has it: a row per student and notebook,
 * newest first. jsonb's text has no newlines, which SSE needs. */
#define SNAPSHOT_ROWS \
	"SELECT coalesce(jsonb_agg(jsonb_build_object(" \
	"'studentId', student_id, 'notebookPath', notebook_path," \
	" 'events', events, 'executions', executions, 'errors', errors," \
	" 'lastActivity', to_char(last_activity AT TIME ZONE 'UTC'," \
	" 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')," \
	" 'lastEventType', last_event_type)" \
	" ORDER BY last_activity DESC, student_id, notebook_path), '[]')::text"
static const char sql_snapshot[] =
	SNAPSHOT_ROWS " FROM student_progress WHERE class_id = $1";
/* Whether a --db-read server holds all that --db held when the snapshot
 * was asked ($1, --db's WAL position then): a standby that has replayed
 * up to there, or a server that is no standby. A statement takes its
 * snapshot of the data when it starts, before anything of it is
 * evaluated; so this is asked in a statement of its own, and only a
 * statement started after its yes reads the rows: replay only goes
 * forward. */
#define READ_CAUGHT_UP(n) \
	"NOT pg_is_in_recovery() OR pg_last_wal_replay_lsn() >= $" #n "::pg_lsn"
static const char sql_read_ready[] = "SELECT " READ_CAUGHT_UP(1);
/* The rows from --db-read, and the same question again: the pool's
 * connection may be to another server of a --db-read that names
 * several, and one behind is caught here (late, by the scan's length,
 * which only the question asked first rules out). */
static const char sql_snapshot_read[] =
	SNAPSHOT_ROWS ", " READ_CAUGHT_UP(2)
	" FROM student_progress WHERE class_id = $1";
/* --db's WAL position: everything committed there so far is at or before
 * it (a --db that is itself a standby: what it has replayed). */
static const char sql_position[] =
	"SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()"
	" ELSE pg_current_wal_lsn() END)::text";
#define READ_RETRY_US	20000	/* --db-read behind: asked again this soon */

static void client_free(struct client *c);
static void start_snapshots(struct client *c);

/* Async work that will call back holds the client: freed only once
 * every hold is released. */
static void
client_hold(struct client *c)
{
	c->refs++;
}

static void
client_release(struct client *c)
{
	if (--c->refs == 0 && c->dead)
		free(c);
}

/* For ws.c's bound: what the output holds, snapshots aside (they may be
 * larger than the queue, and do not count against it until drained). */
static size_t
ws_held(void *arg)
{
	struct client *c = arg;
	size_t n = c->bev ? evbuffer_get_length(bufferevent_get_output(c->bev))
	    : 0;

	return n > (size_t)c->snapshot_bytes ? n - (size_t)c->snapshot_bytes : 0;
}

/* What the client's output buffer and wslay's queue hold for it. */
static int
queued(const struct client *c)
{
	size_t n = c->bev ? evbuffer_get_length(bufferevent_get_output(c->bev))
	    : 0;

	n += ws_pending(&c->wsp);
	return n > INT_MAX ? INT_MAX : (int)n;
}

/* ---- writing ---- */

static ssize_t
ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
    int flags, void *user)
{
	struct client *c = ((struct ws_peer *)user)->arg;

	(void)flags;
	if (c->bev == NULL ||
	    evbuffer_add(bufferevent_get_output(c->bev), data, len) < 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

static ssize_t
ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
    void *user)
{
	struct client *c = ((struct ws_peer *)user)->arg;
	int n;

	(void)flags;
	n = c->bev ? evbuffer_remove(bufferevent_get_input(c->bev), buf, len) : 0;
	if (n <= 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	c->last_seen_us = stats_mono_us();
	return n;
}

static void
ws_flush(struct client *c)
{
	if (c->ws && wslay_event_want_write(c->ws))
		wslay_event_send(c->ws);
}

/* Close the connection once what is queued is written. */
static void
client_closing(struct client *c)
{
	struct timeval tv = { CLOSE_TIMEOUT_S, 0 };

	if (c->state == CS_CLOSING)
		return;
	c->state = CS_CLOSING;
	if (c->bev) {
		bufferevent_disable(c->bev, EV_READ);
		if (queued(c) == 0) {
			client_free(c);
			return;
		}
		/* a peer that reads nothing more is not waited for long */
		bufferevent_set_timeouts(c->bev, NULL, &tv);
	}
}

/* Tell a WebSocket client why it is closed (code and reason), or end an
 * SSE stream. */
static void
client_close_code(struct client *c, int code, const char *reason)
{
	if (c->state == CS_CLOSING || c->dead)
		return;
	if (c->kind == CK_WS && c->ws) {
		wslay_event_queue_close(c->ws, (uint16_t)code,
		    (const uint8_t *)reason, strlen(reason));
		ws_flush(c);
	}
	client_closing(c);
}

/* A server message: a WebSocket text frame, or an SSE event with its id. */
static void
send_frame(struct client *c, const char *type, const char *id,
    const char *frame, size_t len)
{
	if (c->bev == NULL || c->state == CS_CLOSING)
		return;
	if (c->kind == CK_WS) {
		struct wslay_event_msg m = { WSLAY_TEXT_FRAME,
		    (const uint8_t *)frame, len };

		wslay_event_queue_msg(c->ws, &m);
		ws_flush(c);
	} else {
		struct evbuffer *out = bufferevent_get_output(c->bev);

		if (id)
			evbuffer_add_printf(out, "id: %s\n", id);
		evbuffer_add_printf(out, "event: %s\ndata: ", type);
		evbuffer_add(out, frame, len);
		evbuffer_add(out, "\n\n", 2);
	}
}

static void
send_json(struct client *c, const char *type, const char *id, jv o)
{
	jv s = jv_dump_string(o, 0);

	send_frame(c, type, id, jv_string_value(s),
	    (size_t)jv_string_length_bytes(jv_copy(s)));
	jv_free(s);
}

/* Fell behind: nothing more until the queue drains, then a resync. */
static void
go_slow(struct client *c)
{
	struct notify *n = c->n;

	if (n->cfg.slow_close) {
		n->dropped_slow++;
		log_info("client too slow; closed peer=%s queued=%d", c->peer,
		    queued(c));
		client_close_code(c, 1013, "too slow");
		return;
	}
	n->resync_slow++;
	c->state = CS_SLOW;
	c->slow_since_us = stats_mono_us();
	jv_free(c->held);
	c->held = jv_array();
	c->held_bytes = 0;
	log_info("client too slow; resync when drained peer=%s queued=%d",
	    c->peer, queued(c));
}

/* One message frame to one client; received_us 0 when unknown. */
static void
client_deliver(struct client *c, const char *id, const char *frame,
    size_t len, int64_t received_us)
{
	struct notify *n = c->n;

	send_frame(c, "message", id, frame, len);
	snprintf(c->last_id, sizeof c->last_id, "%s", id);
	c->sent++;
	n->messages_sent++;
	if (received_us > 0) {
		int64_t d = stats_now_us() - received_us;

		hist_record(n->delivery_us, d > 0 ? (uint64_t)d : 0);
	}
	if (queued(c) - c->snapshot_bytes > n->cfg.max_queue)
		go_slow(c);
}

static int
watches(const struct client *c, const char *klass)
{
	for (int i = 0; i < c->nclasses; i++)
		if (strcmp(c->classes[i], klass) == 0)
			return 1;
	return 0;
}

void
client_dispatch(struct notify *n, const char *id, const char *klass,
    const char *frame, size_t len, int64_t received_us)
{
	struct client *c, *next;

	for (c = TAILQ_FIRST(&n->clients); c; c = next) {
		next = TAILQ_NEXT(c, link);
		if (!watches(c, klass))
			continue;
		if (c->state == CS_LIVE) {
			client_deliver(c, id, frame, len, received_us);
		} else if (c->state == CS_SLOW) {
			n->skipped++;	/* its resync's snapshot stands for it */
		} else if (c->state == CS_SNAPSHOT) {
			/* after the snapshots, in order */
			c->held = jv_array_append(c->held, jv_array_append(
			    jv_array_append(jv_array(), jv_string(id)),
			    jv_string_sized(frame, (int)len)));
			c->held_bytes += len;
			if (c->held_bytes > (size_t)n->cfg.max_queue) {
				n->skipped += (unsigned long)jv_array_length(
				    jv_copy(c->held));
				jv_free(c->held);
				c->held = jv_array();
				c->held_bytes = 0;
				c->resync_after = 1;
			}
		}
	}
}

/* ---- the steps after the request ---- */

static void
hello(struct client *c)
{
	jv o = jv_object(), cl = jv_array();

	for (int i = 0; i < c->nclasses; i++)
		cl = jv_array_append(cl, jv_string(c->classes[i]));
	o = jv_object_set(o, jv_string("type"), jv_string("hello"));
	o = jv_object_set(o, jv_string("instructor"), jv_string(c->instructor));
	o = jv_object_set(o, jv_string("classes"), cl);
	o = jv_object_set(o, jv_string("id"), jv_string(feed_position(c->n)));
	send_json(c, "hello", NULL, o);
}

static void
go_live(struct client *c)
{
	c->state = CS_LIVE;
	if (queued(c) - c->snapshot_bytes > c->n->cfg.max_queue)
		go_slow(c);
}

static void
resync(struct client *c, const char *reason)
{
	jv o = jv_object();

	o = jv_object_set(o, jv_string("type"), jv_string("resync"));
	o = jv_object_set(o, jv_string("reason"), jv_string(reason));
	o = jv_object_set(o, jv_string("id"), jv_string(feed_position(c->n)));
	send_json(c, "resync", NULL, o);
	start_snapshots(c);
}

struct snapreq {
	struct client *c;
	char klass[128];
	char id[NOTIFY_ID_LEN];
	/* --db-read: --db's position when asked, and until when a standby
	 * behind it is asked again before --db is */
	char lsn[40];
	int64_t deadline_us;
	struct event *retry;	/* waiting to ask --db-read again */
	TAILQ_ENTRY(snapreq) link;	/* in n->snapwait while it waits */
};

static void
snapreq_free(struct snapreq *sr)
{
	if (sr->retry)
		event_free(sr->retry);
	free(sr);
}

static void
snapshots_over(struct client *c)
{
	jv held = c->held;
	int i, len;

	c->held = jv_array();
	c->held_bytes = 0;
	if (c->resync_after) {
		c->resync_after = 0;
		jv_free(held);
		c->n->resync_slow++;
		resync(c, "slow");
		return;
	}
	c->state = CS_LIVE;
	len = jv_array_length(jv_copy(held));
	for (i = 0; i < len && c->state == CS_LIVE; i++) {
		jv e = jv_array_get(jv_copy(held), i);
		jv id = jv_array_get(jv_copy(e), 0), fr = jv_array_get(e, 1);

		client_deliver(c, jv_string_value(id), jv_string_value(fr),
		    (size_t)jv_string_length_bytes(jv_copy(fr)), 0);
		jv_free(id);
		jv_free(fr);
	}
	jv_free(held);
	if (c->state == CS_LIVE)
		go_live(c);
}

static void
on_snapshot(PGresult *res, const char *err, void *arg)
{
	struct snapreq *sr = arg;
	struct client *c = sr->c;

	if (c->dead || c->state != CS_SNAPSHOT) {
		goto out;
	}
	if (res == NULL || PQntuples(res) != 1) {
		log_warn("no snapshot; closing peer=%s class=%s error=\"%s\"",
		    c->peer, sr->klass, err ? err : "no row");
		c->n->closed_unavailable++;
		client_close_code(c, 1011, "database unavailable");
		goto out;
	}
	{
		const char *students = PQgetvalue(res, 0, 0);
		jv k = jv_dump_string(jv_string(sr->klass), 0);
		size_t cap = strlen(students) + 200 +
		    (size_t)jv_string_length_bytes(jv_copy(k));
		char *frame = malloc(cap);

		if (frame == NULL) {
			jv_free(k);
			c->n->oom_closed++;
			log_warn("out of memory for a snapshot; closing peer=%s",
			    c->peer);
			client_close_code(c, 1011, "out of memory");
			goto out;
		}
		{
			int fl = snprintf(frame, cap, "{\"type\":\"snapshot\","
			    "\"class\":%s,\"id\":\"%s\",\"students\":%s}",
			    jv_string_value(k), sr->id, students);

			send_frame(c, "snapshot", sr->id, frame, (size_t)fl);
			free(frame);
			/* a snapshot may be larger than the queue: it does
			 * not count against it until it has drained */
			c->snapshot_bytes = queued(c);
		}
		jv_free(k);
		c->n->snapshots++;
		snprintf(c->last_id, sizeof c->last_id, "%s", sr->id);
	}
	if (--c->snapshots_waiting == 0)
		snapshots_over(c);
out:
	client_release(c);
	snapreq_free(sr);
}

/* ---- snapshots from --db-read ---- */

static void ask_read(struct snapreq *sr);

/* --db-read could not give it, or not in time: --db does. */
static void
ask_db(struct snapreq *sr)
{
	const char *p[1] = { sr->klass };

	pgpool_query(sr->c->n->pool, sql_snapshot, 1, p, on_snapshot, sr);
}

static void
on_read_retry(evutil_socket_t fd, short what, void *arg)
{
	struct snapreq *sr = arg;

	(void)fd;
	(void)what;
	TAILQ_REMOVE(&sr->c->n->snapwait, sr, link);
	sr->c->n->read_waiting--;
	ask_read(sr);
}

/* --db-read's server is behind --db's position: asked again in a while,
 * or of --db once that is past --db-read-max-lag. */
static void
read_behind(struct snapreq *sr)
{
	struct client *c = sr->c;
	struct notify *n = c->n;
	struct timeval tv = { 0, READ_RETRY_US };

	/* the snapshot would miss messages older than its id, that no live
	 * message brings back */
	if (stats_mono_us() >= sr->deadline_us) {
		n->read_lagging++;
		log_info("--db-read is behind --db; asking --db peer=%s "
		    "class=%s position=%s", c->peer, sr->klass, sr->lsn);
		ask_db(sr);
		return;
	}
	n->read_waits++;
	if (sr->retry == NULL &&
	    (sr->retry = evtimer_new(n->base, on_read_retry, sr)) == NULL) {
		ask_db(sr);
		return;
	}
	TAILQ_INSERT_TAIL(&n->snapwait, sr, link);
	n->read_waiting++;
	evtimer_add(sr->retry, &tv);
}

/* An answer of --db-read with nfields columns, the last whether it has
 * caught up: 1 yes, 0 no, -1 when the request is over (the client gone,
 * or --db asked instead). */
static int
read_answer(struct snapreq *sr, PGresult *res, const char *err, int nfields)
{
	struct client *c = sr->c;

	if (c->dead || c->state != CS_SNAPSHOT) {
		client_release(c);
		snapreq_free(sr);
		return -1;
	}
	if (res == NULL || PQntuples(res) != 1 || PQnfields(res) != nfields) {
		c->n->read_unavailable++;
		log_warn("snapshot from --db-read failed; asking --db peer=%s "
		    "class=%s error=\"%s\"", c->peer, sr->klass,
		    err ? err : "no row");
		ask_db(sr);
		return -1;
	}
	if (strcmp(PQgetvalue(res, 0, nfields - 1), "t") == 0)
		return 1;
	read_behind(sr);
	return 0;
}

static void
on_read_snapshot(PGresult *res, const char *err, void *arg)
{
	struct snapreq *sr = arg;

	if (read_answer(sr, res, err, 2) == 1) {
		sr->c->n->read_snapshots++;
		on_snapshot(res, NULL, sr);
	}
}

static void
on_read_ready(PGresult *res, const char *err, void *arg)
{
	struct snapreq *sr = arg;
	const char *p[2] = { sr->klass, sr->lsn };

	if (read_answer(sr, res, err, 1) == 1)
		pgpool_query(sr->c->n->read_pool, sql_snapshot_read, 2, p,
		    on_read_snapshot, sr);
}

static void
ask_read(struct snapreq *sr)
{
	const char *p[1] = { sr->lsn };

	pgpool_query(sr->c->n->read_pool, sql_read_ready, 1, p, on_read_ready,
	    sr);
}

/* What the client's snapshots ask --db-read for: --db's position now. */
struct snappos {
	struct client *c;
	char id[NOTIFY_ID_LEN];
};

static void
on_position(PGresult *res, const char *err, void *arg)
{
	struct snappos *sp = arg;
	struct client *c = sp->c;
	struct notify *n = c->n;
	int i;

	if (c->dead || c->state != CS_SNAPSHOT)
		goto out;
	if (res == NULL || PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
		/* --db is what token checks and LISTEN need too: a
		 * dashboard waits for it, as without --db-read */
		log_warn("no snapshot; closing peer=%s error=\"%s\"", c->peer,
		    err ? err : "no WAL position");
		n->closed_unavailable++;
		client_close_code(c, 1011, "database unavailable");
		goto out;
	}
	for (i = 0; i < c->nclasses && !c->dead && c->state == CS_SNAPSHOT;
	    i++) {
		struct snapreq *sr = calloc(1, sizeof *sr);

		if (sr == NULL) {
			client_close_code(c, 1011, "out of memory");
			break;
		}
		sr->c = c;
		snprintf(sr->klass, sizeof sr->klass, "%s", c->classes[i]);
		snprintf(sr->id, sizeof sr->id, "%s", sp->id);
		snprintf(sr->lsn, sizeof sr->lsn, "%s", PQgetvalue(res, 0, 0));
		sr->deadline_us = stats_mono_us() +
		    n->cfg.read_max_lag_ms * 1000;
		client_hold(c);
		ask_read(sr);
	}
out:
	client_release(c);
	free(sp);
}

static void
start_snapshots(struct client *c)
{
	int i;

	c->state = CS_SNAPSHOT;
	c->snapshots_waiting = c->nclasses;
	if (c->n->read_pool) {
		struct snappos *sp = calloc(1, sizeof *sp);

		if (sp == NULL) {
			client_close_code(c, 1011, "out of memory");
			return;
		}
		sp->c = c;
		/* what the snapshots stand for: the messages up to here */
		snprintf(sp->id, sizeof sp->id, "%s", feed_position(c->n));
		client_hold(c);
		pgpool_query_first(c->n->pool, sql_position, 0, NULL,
		    on_position, sp);
		return;
	}
	client_hold(c);		/* a query may fail at once and close it */
	for (i = 0; i < c->nclasses && !c->dead && c->state == CS_SNAPSHOT;
	    i++) {
		struct snapreq *sr = calloc(1, sizeof *sr);
		const char *p[1] = { c->classes[i] };

		if (sr == NULL) {
			client_close_code(c, 1011, "out of memory");
			break;
		}
		sr->c = c;
		snprintf(sr->klass, sizeof sr->klass, "%s", c->classes[i]);
		/* what the snapshot stands for: the messages up to here */
		snprintf(sr->id, sizeof sr->id, "%s", feed_position(c->n));
		client_hold(c);
		pgpool_query(c->n->pool, sql_snapshot, 1, p, on_snapshot, sr);
	}
	client_release(c);
}

/* The replay's reader (feed.c): the client's classes, while it is there
 * and keeps up. */
static int
replay_wants(void *arg, const char *klass)
{
	struct client *c = arg;

	return !c->dead && (klass == NULL || watches(c, klass));
}

static int
replay_deliver(void *arg, const char *id, const char *frame, size_t len)
{
	struct client *c = arg;

	client_deliver(c, id, frame, len, 0);
	return c->dead || c->state == CS_SLOW ? -1 : 0;
}

static void
on_replayed(void *arg, int result)
{
	struct client *c = arg;

	if (c->dead || c->state != CS_REPLAY)
		goto out;
	if (result == 0)
		go_live(c);
	else if (result > 0) {
		c->n->resync_gap++;
		log_info("resync: since is older than the stream holds peer=%s "
		    "since=%s", c->peer, c->since);
		resync(c, "gap");
	} else {
		c->n->closed_unavailable++;
		client_close_code(c, 1011, "stream unavailable");
	}
out:
	client_release(c);
}

/* Refuse a client: an HTTP status for SSE (nothing was sent yet), a close
 * code for WebSocket (4000 + the status). */
static void
refuse(struct client *c, int status, const char *msg)
{
	if (status == 401)
		c->n->auth_401++;
	else if (status == 403)
		c->n->auth_403++;
	else if (status == 400)
		c->n->bad_requests++;
	else
		c->n->closed_unavailable++;
	log_info("refused peer=%s status=%d reason=\"%s\"", c->peer, status, msg);
	if (c->kind == CK_WS) {
		client_close_code(c, status < 500 ? 4000 + status : 1011, msg);
	} else {
		server_error(c, status, msg);
		client_closing(c);
	}
}

static void
begin_stream(struct client *c)
{
	if (c->kind == CK_SSE) {
		static const char head[] = "HTTP/1.1 200 OK\r\n"
		    "Content-Type: text/event-stream; charset=utf-8\r\n"
		    "Cache-Control: no-cache\r\n"
		    "X-Accel-Buffering: no\r\n"
		    "Connection: close\r\n\r\n"
		    "retry: 2000\n\n";

		evbuffer_add(bufferevent_get_output(c->bev), head,
		    sizeof head - 1);
	}
	hello(c);
	if (c->since[0]) {
		struct replay_reader rd = { c, replay_wants, replay_deliver,
		    on_replayed };

		c->state = CS_REPLAY;
		client_hold(c);
		feed_replay(c->n, c->since, &rd);
	} else {
		start_snapshots(c);
	}
}

/* The first of the client's classes that allowed (a jv array) does not
 * hold, or -1. */
static int
not_allowed(const struct client *c, jv allowed)
{
	int i, j, n = jv_get_kind(allowed) == JV_KIND_ARRAY ?
	    jv_array_length(jv_copy(allowed)) : 0, ok;

	for (i = 0; i < c->nclasses; i++) {
		ok = 0;
		for (j = 0; j < n && !ok; j++) {
			jv a = jv_array_get(jv_copy(allowed), j);

			ok = jv_get_kind(a) == JV_KIND_STRING &&
			    strcmp(jv_string_value(a), c->classes[i]) == 0;
			jv_free(a);
		}
		if (!ok)
			return i;
	}
	return -1;
}

/* The first check of the client's token. */
static void
authorize(struct client *c, int status, const char *instructor, jv allowed,
    const char *err)
{
	int bad;

	if (status == 503) {
		log_warn("cannot check a token peer=%s error=\"%s\"", c->peer, err);
		refuse(c, 503, "database unavailable");
		return;
	}
	if (status != 0) {
		refuse(c, 401, "unknown token");
		return;
	}
	snprintf(c->instructor, sizeof c->instructor, "%s", instructor);
	if ((bad = not_allowed(c, allowed)) >= 0) {
		char msg[200];

		snprintf(msg, sizeof msg, "class %.120s is not yours",
		    c->classes[bad]);
		refuse(c, 403, msg);
		return;
	}
	log_info("subscribed peer=%s kind=%s instructor=%s classes=%d%s%s",
	    c->peer, c->kind == CK_WS ? "ws" : "sse", c->instructor,
	    c->nclasses, c->since[0] ? " since=" : "", c->since);
	begin_stream(c);
}

/* A re-check (SIGHUP, a missed revocation): is the token still good for
 * every class the client watches? */
static void
recheck(struct client *c, int status, jv allowed, const char *err)
{
	if (status == 503) {
		log_warn("cannot re-check a token; kept peer=%s error=\"%s\"",
		    c->peer, err);
		c->n->recheck_errors++;
		return;
	}
	if (status != 0) {
		log_info("token revoked; closed peer=%s instructor=%s", c->peer,
		    c->instructor);
		c->n->revoked_closed++;
		client_close_code(c, 4401, "token revoked");
		return;
	}
	if (not_allowed(c, allowed) >= 0) {
		log_info("class no longer allowed; closed peer=%s instructor=%s",
		    c->peer, c->instructor);
		c->n->revoked_closed++;
		client_close_code(c, 4403, "class no longer yours");
	}
}

/* auth.c's answer for the client's token: its first check (CS_AUTH) or a
 * re-check (a client past it), unless it is gone or going. */
static void
on_token(void *arg, int status, const char *instructor, jv allowed,
    const char *err)
{
	struct client *c = arg;

	if (!c->dead && c->state == CS_AUTH)
		authorize(c, status, instructor, allowed, err);
	else if (!c->dead && c->state != CS_CLOSING)
		recheck(c, status, allowed, err);
	client_release(c);
}

static void
check_token(struct client *c)
{
	client_hold(c);
	auth_check(c->n, c->token_hash, on_token, c);
}

void
client_recheck_all(struct notify *n)
{
	struct client *c, *next;
	int count = 0;

	/* what the cache says may be what changed */
	auth_flush(n);
	for (c = TAILQ_FIRST(&n->clients); c; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->kind == CK_HTTP || c->state < CS_SNAPSHOT ||
		    c->state == CS_CLOSING)
			continue;
		count++;
		check_token(c);
	}
	log_info("re-checking the tokens of %d clients", count);
}

int
client_revoke(struct notify *n, const char *hex)
{
	struct client *c, *next;
	int count = 0;

	auth_forget(n, hex);
	for (c = TAILQ_FIRST(&n->clients); c; c = next) {
		next = TAILQ_NEXT(c, link);
		/* one still waiting for its token is asked again: refused */
		if (c->kind == CK_HTTP || c->state < CS_SNAPSHOT ||
		    c->state == CS_CLOSING || strcmp(c->token_hash, hex) != 0)
			continue;
		log_info("token revoked; closed peer=%s instructor=%s", c->peer,
		    c->instructor);
		n->revoked_closed++;
		count++;
		client_close_code(c, 4401, "token revoked");
	}
	return count;
}

/* The request is read and the client is a WebSocket or SSE one: check its
 * token (q->status is 0, or the HTTP status of what was wrong with it).
 * q's classes are the client's now. */
static void
subscribe(struct client *c, struct nreq *q)
{
	int i;

	if (c->kind == CK_WS)
		c->n->nws++;	/* both counted down when freed */
	else
		c->n->nsse++;
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	snprintf(c->token, sizeof c->token, "%s", q->token);
	snprintf(c->since, sizeof c->since, "%s", q->since);
	for (i = 0; i < q->nclasses; i++)
		c->classes[i] = q->classes[i];
	c->nclasses = q->nclasses;
	q->nclasses = 0;	/* the client's now */
	if (q->status) {
		refuse(c, q->status, q->msg);
		return;
	}
	if (c->token[0] == '\0') {
		refuse(c, 401, "no token");
		return;
	}
	tokens_sha256_hex(c->token, strlen(c->token), c->token_hash);
	c->state = CS_AUTH;
	check_token(c);
}

/* ---- WebSocket ---- */

static int
ws_start(struct client *c)
{
	if (ws_open(&c->wsp, ws_recv_cb, ws_send_cb, ws_held, c,
	    (size_t)c->n->cfg.max_queue) < 0)
		return -1;
	c->ws = c->wsp.ctx;
	c->kind = CK_WS;
	c->last_seen_us = stats_mono_us();
	return 0;
}

static void
ws_read(struct client *c)
{
	enum ws_state st = ws_service(&c->wsp);

	if (st == WS_OVER && c->state != CS_CLOSING) {
		c->n->ws_over++;
		log_info("client sent more than it read; closed peer=%s "
		    "queued=%d code=%d", c->peer, queued(c), NOTIFY_WS_OVER_CODE);
	}
	if (wslay_event_get_status_code_sent(c->ws) == WSLAY_CODE_PROTOCOL_ERROR &&
	    c->state != CS_CLOSING) {
		c->n->proto_errors++;
		log_info("malformed frame; closed peer=%s", c->peer);
	}
	if (st != WS_OPEN)
		client_closing(c);
}

/* ---- the connection ---- */

/* The request asks for a stream: a WebSocket's (its handshake answered)
 * or an SSE one. -1 when memory ran out (answered: close). */
static int
start_stream(struct client *c, struct nreq *q)
{
	if (q->kind == NREQ_WS && ws_start(c) < 0) {
		c->n->oom_closed++;
		server_error(c, 503, "out of memory");
		nreq_free(q);
		return -1;
	}
	if (q->kind == NREQ_WS)
		server_upgrade(c, q->accept);
	else
		c->kind = CK_SSE;
	subscribe(c, q);
	nreq_free(q);
	return 0;
}

/* Requests on a connection that is still plain HTTP, one at a time: the
 * next is read once the answer to the last is written, so that a client
 * that pipelines without reading makes notify hold one answer, not many. */
static void
http_turn(struct client *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct timeval dl;
	struct nreq q;
	int r;

	client_hold(c);
	while (!c->dead && c->kind == CK_HTTP && c->state == CS_REQUEST &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 &&
	    evbuffer_get_length(in) > 0) {
		r = server_request(c, &q);
		if (r == 0)
			break;
		if (c->deadline)
			evtimer_del(c->deadline);
		if (r == 1 && start_stream(c, &q) < 0)
			r = -1;
		if (r < 0) {
			client_closing(c);
			break;
		}
		if (r == 2) {
			/* the next request, or a quiet close, within the
			 * same bound as the first */
			dl.tv_sec = c->n->cfg.request_timeout_ms / 1000;
			dl.tv_usec = (c->n->cfg.request_timeout_ms % 1000) * 1000;
			evtimer_add(c->deadline, &dl);
			continue;
		}
		if (c->kind == CK_WS && !c->dead &&
		    evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
			ws_read(c);	/* frames sent right after the request */
		break;
	}
	client_release(c);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;

	(void)bev;
	switch (c->kind) {
	case CK_HTTP:
		http_turn(c);
		break;
	case CK_WS:
		ws_read(c);
		break;
	case CK_SSE:	/* nothing is expected from it */
		evbuffer_drain(bufferevent_get_input(c->bev),
		    evbuffer_get_length(bufferevent_get_input(c->bev)));
		break;
	}
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct client *c = arg;

	(void)bev;
	if (c->state == CS_CLOSING) {
		client_free(c);
		return;
	}
	if (c->kind == CK_HTTP) {
		http_turn(c);	/* a pipelined request waited for this */
		return;
	}
	c->snapshot_bytes = 0;	/* all written */
	if (c->state == CS_SLOW && queued(c) == 0)
		resync(c, "slow");
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct client *c = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		client_free(c);
}

/* Past --request-timeout from accept, the request head is still not whole:
 * trickled bytes do not push this back, as a read timeout's reset would. */
static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;

	(void)fd;
	(void)what;
	if (c->dead || c->kind != CK_HTTP || c->state != CS_REQUEST)
		return;
	if (c->served > 0 && (c->req == NULL || httpreq_started(c->req) == 0)) {
		/* kept alive and idle: no request was cut short */
		client_closing(c);
		return;
	}
	c->n->request_timeouts++;
	log_info("request not whole in time; closed peer=%s bytes=%zu",
	    c->peer, c->req ? httpreq_started(c->req) : (size_t)0);
	server_error(c, 408, "request not complete in time");
	client_closing(c);
}

/* Refuse a connection at once, with a 503 that says why. */
static void
refuse_fd(int fd, const char *why)
{
	char buf[256];
	int len;
	ssize_t w;

	len = snprintf(buf, sizeof buf, "HTTP/1.1 503 Service Unavailable\r\n"
	    "Content-Type: application/json\r\nRetry-After: 5\r\n"
	    "Connection: close\r\nContent-Length: %zu\r\n\r\n"
	    "{\"error\":\"%s\"}", strlen(why) + 12, why);
	w = write(fd, buf, (size_t)len);
	(void)w;
	close(fd);
}

void
client_accept(struct notify *n, int fd, const char *peer, const char *addr)
{
	struct client *c;
	struct timeval wtv = { CLOSE_TIMEOUT_S, 0 }, dl;

	if (n->nclients >= n->cfg.max_clients || n->d.stop) {
		n->refused_cap++;
		refuse_fd(fd, "too many clients; try again");
		return;
	}
	if (peers_add(n->peers, addr) < 0) {
		n->refused_addr++;
		refuse_fd(fd, "too many connections from your address; try again");
		return;
	}
	c = calloc(1, sizeof *c);
	if (c == NULL) {
		peers_del(n->peers, addr);
		n->oom_closed++;
		close(fd);
		return;
	}
	snprintf(c->addr, sizeof c->addr, "%s", addr);
	c->addr_counted = 1;
	/* The kernel's buffer for the client is part of its queue: bounded
	 * too, so that a client that stops reading is seen, and soon. */
	{
		int sndbuf = (int)n->cfg.max_queue, one = 1;

		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
		/* a message goes out when written: without this, the write
		 * after a client's pong waits for its delayed ACK (Nagle) */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	c->n = n;
	c->held = jv_array();
	c->opened_us = stats_mono_us();
	snprintf(c->peer, sizeof c->peer, "%s", peer);
	c->bev = bufferevent_socket_new(n->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->deadline = evtimer_new(n->base, on_deadline, c);
	dl.tv_sec = n->cfg.request_timeout_ms / 1000;
	dl.tv_usec = (n->cfg.request_timeout_ms % 1000) * 1000;
	if (c->bev == NULL || c->deadline == NULL ||
	    evtimer_add(c->deadline, &dl) < 0) {
		if (c->bev)
			bufferevent_free(c->bev);
		else
			close(fd);
		if (c->deadline)
			event_free(c->deadline);
		peers_del(n->peers, addr);
		n->oom_closed++;
		jv_free(c->held);
		free(c);
		return;
	}
	c->refs = 1;	/* the connection's own */
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	/* no read timeout: the deadline bounds the request, and a stream's
	 * client sends nothing for long */
	bufferevent_set_timeouts(c->bev, NULL, &wtv);
	bufferevent_setwatermark(c->bev, EV_READ, 0, CLIENT_READ_AHEAD);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	TAILQ_INSERT_TAIL(&n->clients, c, link);
	n->nclients++;
	n->accepted++;
}

static void
client_free(struct client *c)
{
	struct notify *n = c->n;
	int i;

	if (c->dead)
		return;
	c->dead = 1;
	TAILQ_REMOVE(&n->clients, c, link);
	n->nclients--;
	if (c->kind == CK_WS)
		n->nws--;
	else if (c->kind == CK_SSE)
		n->nsse--;
	if (c->bev) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	if (c->addr_counted)
		peers_del(n->peers, c->addr);
	c->addr_counted = 0;
	if (c->deadline)
		event_free(c->deadline);
	c->deadline = NULL;
	if (c->req) {
		httpreq_free(c->req);
		free(c->req);
		c->req = NULL;
	}
	ws_free(&c->wsp);
	c->ws = NULL;
	for (i = 0; i < c->nclasses; i++)
		free(c->classes[i]);
	c->nclasses = 0;
	jv_free(c->held);
	c->held = jv_invalid();
	client_release(c);
}

void
client_tick(struct notify *n)
{
	struct client *c, *next;
	int64_t now = stats_mono_us(), hb = n->cfg.heartbeat_ms * 1000;

	for (c = TAILQ_FIRST(&n->clients); c; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->state == CS_SLOW && now - c->slow_since_us > 2 * hb) {
			/* what is queued does not drain: no close frame would
			 * get through either */
			n->dropped_slow++;
			log_info("client did not drain; closed peer=%s queued=%d",
			    c->peer, queued(c));
			client_free(c);
			continue;
		}
		if (c->state < CS_REPLAY || c->state > CS_LIVE)
			continue;
		if (c->kind == CK_WS) {
			struct wslay_event_msg ping = { WSLAY_PING, NULL, 0 };

			if (now - c->last_seen_us > 2 * hb) {
				n->dead_closed++;
				log_info("no answer to pings; closed peer=%s",
				    c->peer);
				client_free(c);
				continue;
			}
			wslay_event_queue_msg(c->ws, &ping);
			ws_flush(c);
		} else if (c->kind == CK_SSE) {
			evbuffer_add(bufferevent_get_output(c->bev),
			    ": ping\n\n", 8);
		}
	}
}

void
client_close_all(struct notify *n)
{
	struct client *c, *next;

	for (c = TAILQ_FIRST(&n->clients); c; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->kind == CK_WS && c->state != CS_CLOSING)
			client_close_code(c, 1001, "going away");
		else
			client_closing(c);
	}
}

jv
client_stats(struct notify *n)
{
	jv by = jv_object();
	struct client *c;
	int i;

	TAILQ_FOREACH(c, &n->clients, link) {
		const char *k = c->kind == CK_WS ? "ws" : "sse";

		if (c->kind == CK_HTTP || c->state < CS_SNAPSHOT ||
		    c->state == CS_CLOSING)
			continue;
		for (i = 0; i < c->nclasses; i++) {
			jv o = jv_object_get(jv_copy(by), jv_string(c->classes[i]));
			jv v;

			if (jv_get_kind(o) != JV_KIND_OBJECT) {
				jv_free(o);
				o = jv_object();
				o = jv_object_set(o, jv_string("ws"), jv_number(0));
				o = jv_object_set(o, jv_string("sse"), jv_number(0));
			}
			v = jv_object_get(jv_copy(o), jv_string(k));
			o = jv_object_set(o, jv_string(k),
			    jv_number(jv_number_value(v) + 1));
			jv_free(v);
			by = jv_object_set(by, jv_string(c->classes[i]), o);
		}
	}
	return by;
}

void
client_resync_all(struct notify *n)
{
	struct client *c, *next;

	for (c = TAILQ_FIRST(&n->clients); c; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->state != CS_LIVE)
			continue;
		n->resync_gap++;
		resync(c, "gap");
	}
}

size_t
client_queued_total(struct notify *n)
{
	struct client *c;
	size_t sum = 0;

	TAILQ_FOREACH(c, &n->clients, link)
		sum += (size_t)queued(c);
	return sum;
}

void
client_drop_all(struct notify *n)
{
	struct snapreq *sr;

	while ((sr = TAILQ_FIRST(&n->snapwait)) != NULL) {
		TAILQ_REMOVE(&n->snapwait, sr, link);
		n->read_waiting--;
		client_release(sr->c);
		snapreq_free(sr);
	}
	while (!TAILQ_EMPTY(&n->clients))
		client_free(TAILQ_FIRST(&n->clients));
}
