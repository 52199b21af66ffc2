/* sink.c: make accepted events durable: XADD to the Redis stream (a batch as
 * one MULTI/EXEC, one round trip), then with --redis-wait a WAIT for the
 * replicas shared by every transaction sent before it; or NDJSON written
 * and flushed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "fdout.h"
#include "hist.h"
#include "ingest.h"
#include "json.h"
#include "log.h"
#include "redis.h"
#include "stats.h"

static void
on_redis_state(struct rconn *rc, int up, void *arg)
{
	struct ingest *ing = arg;

	daemon_redis_state(&ing->d, rconn_url(rc), up, rconn_last_error(rc));
}

/* -ERR_CONFIG for a stream Redis cannot be asked for, -ERR_IO for a file
 * or socket that cannot be written. */
int
sink_setup(struct ingest *ing, char *err, size_t errlen)
{
	ing->out_fd = -1;
	if (ing->to.kind == ADDR_STREAM) {
		if (ing->to.group[0]) {
			snprintf(err, errlen, "--to takes a stream without a "
			    "consumer group: %s", ing->cfg.to);
			return -ERR_CONFIG;
		}
		snprintf(ing->stream_key, sizeof ing->stream_key, "labpulse:%s",
		    ing->to.stream);
		ing->redis = rconn_new(ing->base, ing->cfg.redis_url, err, errlen);
		if (ing->redis == NULL)
			return -ERR_CONFIG;
		rconn_on_state(ing->redis, on_redis_state, ing);
		rconn_start(ing->redis);
		return 0;
	}
	ing->out_fd = fdout_open(&ing->to, err, errlen);
	return ing->out_fd < 0 ? -ERR_IO : 0;
}

int
sink_available(struct ingest *ing)
{
	return ing->redis == NULL || rconn_is_up(ing->redis);
}

/* The 202 answer, {"accepted":N,"ids":[...]}, written into out (NULL: only
 * measured); its length. */
static size_t
accepted_body(const struct events_text *t, char *out)
{
	char num[32];
	size_t n, i, len;
	int k;

	k = snprintf(num, sizeof num, "{\"accepted\":%zu,\"ids\":[", t->n);
	n = (size_t)k;
	if (out)
		memcpy(out, num, n);
	for (i = 0; i < t->n; i++) {
		const char *id = t->items[i].id;

		if (i && out)
			out[n] = ',';
		n += i > 0;
		len = strlen(id);
		n += out ? json_encode(id, len, out + n) :
		    json_encoded_len(id, len);
	}
	if (out)
		memcpy(out + n, "]}\n", 3);
	return n + 3;
}

/* One allocation a request: the pending entry holds its own answer. */
static struct pending *
pending_new(struct ingest *ing, struct httpd_conn *c,
    const struct events_text *t)
{
	size_t blen = t ? accepted_body(t, NULL) : 0;
	struct pending *p = malloc(sizeof *p + blen + 1);

	if (p == NULL)
		return NULL;
	memset(p, 0, sizeof *p);
	p->ing = ing;
	p->conn = c;
	p->blen = blen;
	if (t) {
		accepted_body(t, p->body);
		p->nevents = (int)t->n;
	}
	p->body[blen] = '\0';
	p->t0 = stats_mono_us();
	TAILQ_INSERT_TAIL(&ing->pending, p, link);
	ing->inflight++;
	stats_link_sent(&ing->link);
	return p;
}

void
pending_done(struct pending *p)
{
	struct ingest *ing = p->ing;

	if (p->unsynced)
		TAILQ_REMOVE(&ing->unsynced, p, link);
	else
		TAILQ_REMOVE(&ing->pending, p, link);
	ing->inflight--;
	stats_link_done(&ing->link, p->t0);
	free(p);
	ingest_maybe_exit(ing);
}

/* The events of p are where they were to be: 202. */
static void
accepted(struct pending *p)
{
	struct ingest *ing = p->ing;

	ing->events_accepted += p->nevents;
	ing->posts_accepted++;
	reply_text(ing, p->conn, 202, "", p->body, p->blen);
	pending_done(p);
}

static void on_wait_reply(redisAsyncContext *, void *, void *);

/* One WAIT answers for every transaction sent before it on the
 * connection, so a single one in flight serves all the requests that
 * came meanwhile: sent after a transaction when none is out, and again
 * when it is answered if more transactions went out since. Redis holds
 * the connection's later commands until WAIT returns, so one per round
 * is all that it could take. */
static void
wait_send(struct ingest *ing)
{
	redisAsyncContext *ac;

	if (ing->wait_inflight || ing->tx_sent == ing->wait_covers)
		return;
	ac = rconn_ctx(ing->redis);
	/* refused only while the connection goes, whose end answers all */
	if (ac == NULL || redisAsyncCommand(ac, on_wait_reply, ing,
	    "WAIT %ld %ld", ing->cfg.redis_wait,
	    ing->cfg.redis_wait_timeout_ms) != REDIS_OK)
		return;
	ing->wait_inflight = 1;
	ing->wait_t0 = stats_mono_us();
	ing->wait_covers = ing->tx_sent;
	ing->wait_sent++;
}

/* A WAIT that came back short of --redis-wait: logged when it starts and
 * when it ends, not once a WAIT. */
static void
wait_lag(struct ingest *ing, long long k)
{
	int lag = k < ing->cfg.redis_wait;

	if (lag)
		ing->wait_short++;
	if (lag && !ing->wait_lagging)
		log_warn("writes not replicated replicas=%lld wanted=%ld; "
		    "answering 503", k, ing->cfg.redis_wait);
	else if (!lag && ing->wait_lagging)
		log_info("writes replicated again replicas=%lld wanted=%ld",
		    k, ing->cfg.redis_wait);
	ing->wait_lagging = lag;
}

/* Every request the WAIT covers is answered: 202 when at least N replicas
 * have its events, else 503 (the events are in the primary, and a retry
 * is made harmless by the eventId). */
static void
on_wait_reply(redisAsyncContext *ac, void *r, void *arg)
{
	redisReply *reply = r;
	struct ingest *ing = arg;
	struct pending *p;
	/* an answer may bring a kept-alive client's next request, and a new
	 * WAIT, before the loop is done: this one covers what it covered */
	unsigned long long covers = ing->wait_covers;
	char msg[300];
	long long k = -1;

	(void)ac;
	ing->wait_inflight = 0;
	ing->wait_done_us = stats_mono_us();
	if (reply && reply->type == REDIS_REPLY_INTEGER)
		wait_lag(ing, k = reply->integer);
	else {
		snprintf(msg, sizeof msg, "not replicated: Redis: %s",
		    reply == NULL ? rconn_last_error(ing->redis) :
		    reply->type == REDIS_REPLY_ERROR ? reply->str :
		    "unexpected answer to WAIT");
		/* a lost connection is logged as such already */
		if (reply != NULL && !ing->wait_lagging)
			log_warn("%s", msg);
		if (reply != NULL)
			ing->wait_lagging = 1;
	}
	while ((p = TAILQ_FIRST(&ing->unsynced)) != NULL &&
	    p->seq <= covers) {
		jv o;

		if (k >= ing->cfg.redis_wait) {
			accepted(p);
			continue;
		}
		if (k < 0)
			o = jv_object_set(jv_object(), jv_string("error"),
			    jv_string(msg));
		else {
			o = jv_object_set(jv_object(), jv_string("error"),
			    jv_string("not replicated"));
			o = jv_object_set(o, jv_string("replicas"),
			    jv_number((double)k));
			o = jv_object_set(o, jv_string("wanted"),
			    jv_number((double)ing->cfg.redis_wait));
		}
		reply_reject(ing, p->conn, 503, REJ_NOT_REPLICATED, NULL, o);
		pending_done(p);
	}
	/* a NULL reply: the connection is going, and answers the rest */
	if (reply != NULL)
		wait_send(ing);
}

/* With --redis-wait, p's transaction is in: it waits for the WAIT that
 * covers it. */
static void
to_unsynced(struct pending *p)
{
	struct ingest *ing = p->ing;

	TAILQ_REMOVE(&ing->pending, p, link);
	TAILQ_INSERT_TAIL(&ing->unsynced, p, link);
	p->unsynced = 1;
	wait_send(ing);
	if (!ing->wait_inflight) {
		/* no WAIT can go out: nothing will say the replicas have it */
		reply_error(ing, p->conn, 503, REJ_NOT_REPLICATED, NULL,
		    "not replicated: Redis: cannot send WAIT");
		pending_done(p);
	}
}

static void
on_exec_reply(redisAsyncContext *ac, void *r, void *arg)
{
	redisReply *reply = r;
	struct pending *p = arg;
	struct ingest *ing = p->ing;
	int ok;

	(void)ac;
	hist_record(ing->redis_rtt, (uint64_t)(stats_mono_us() - p->t0));
	ok = reply != NULL && reply->type != REDIS_REPLY_ERROR &&
	    reply->type != REDIS_REPLY_NIL;
	if (ok && reply->type == REDIS_REPLY_ARRAY) {
		size_t i;

		for (i = 0; i < reply->elements; i++)
			if (reply->element[i]->type == REDIS_REPLY_ERROR)
				ok = 0;
	}
	if (!ok) {
		const char *why = reply == NULL ? rconn_last_error(ing->redis)
		    : reply->type == REDIS_REPLY_ERROR ? reply->str
		    : "transaction aborted";
		char msg[300];

		log_warn("events not queued n=%d reason=\"%s\"", p->nevents, why);
		snprintf(msg, sizeof msg, "events not queued: Redis: %s", why);
		reply_error(ing, p->conn, 503, REJ_UNAVAILABLE, NULL, msg);
		pending_done(p);
		return;
	}
	if (ing->backlog_len >= 0)
		ing->backlog_len += p->nevents;
	if (ing->cfg.redis_wait > 0)
		to_unsynced(p);
	else
		accepted(p);
}

static void
put_redis(struct ingest *ing, struct httpd_conn *c,
    const struct events_text *t)
{
	redisAsyncContext *ac = rconn_ctx(ing->redis);
	struct pending *p;
	const char *argv[5];
	size_t argl[5], i;
	int n = (int)t->n;

	p = pending_new(ing, c, t);
	if (p == NULL) {
		reply_error(ing, c, 503, REJ_OVERLOADED, NULL, "out of memory");
		return;
	}
	argv[0] = "XADD";
	argv[1] = ing->stream_key;
	argv[2] = "*";
	argv[3] = "event";
	for (i = 0; i < 4; i++)
		argl[i] = strlen(argv[i]);
	/* a batch is one transaction: all of it is queued, or none */
	if (n > 1)
		redisAsyncCommand(ac, NULL, NULL, "MULTI");
	for (i = 0; i < t->n; i++) {
		argv[4] = t->buf + t->items[i].off;
		argl[4] = t->items[i].len;
		redisAsyncCommandArgv(ac, n > 1 ? NULL : on_exec_reply,
		    n > 1 ? NULL : p, 5, argv, argl);
	}
	if (n > 1)
		redisAsyncCommand(ac, on_exec_reply, p, "EXEC");
	p->seq = ++ing->tx_sent;
	/* in the same write as the transaction when no WAIT is out */
	if (ing->cfg.redis_wait > 0)
		wait_send(ing);
}

static void
put_fd(struct ingest *ing, struct httpd_conn *c, const struct events_text *t)
{
	struct evbuffer *out = evbuffer_new();
	size_t len, i, blen;
	char *body;
	int rc = -1;

	if (out == NULL) {
		reply_error(ing, c, 503, REJ_OVERLOADED, NULL, "out of memory");
		return;
	}
	for (i = 0; i < t->n; i++) {
		evbuffer_add(out, t->buf + t->items[i].off, t->items[i].len);
		evbuffer_add(out, "\n", 1);
	}
	len = evbuffer_get_length(out);
	rc = fdout_write_all(ing->out_fd, (const char *)evbuffer_pullup(out, -1),
	    len);
	if (rc == 0 && ing->to.kind == ADDR_FILE)
		rc = fdatasync(ing->out_fd);
	evbuffer_free(out);
	if (rc < 0) {
		char msg[300];

		snprintf(msg, sizeof msg, "cannot write to %s: %s", ing->cfg.to,
		    strerror(errno));
		log_error("%s", msg);
		reply_error(ing, c, 503, REJ_UNAVAILABLE, NULL, msg);
		/* With its output gone, ingest can make nothing durable. */
		ing->exit_code = 74;
		event_base_loopexit(ing->base, NULL);
		return;
	}
	ing->events_accepted += t->n;
	ing->posts_accepted++;
	blen = accepted_body(t, NULL);
	body = malloc(blen);
	if (body == NULL) {	/* the events are out; only the ids are lost */
		reply_text(ing, c, 202, "", "{}\n", 3);
		return;
	}
	accepted_body(t, body);
	reply_text(ing, c, 202, "", body, blen);
	free(body);
}

void
sink_put(struct ingest *ing, struct httpd_conn *c, const struct events_text *t)
{
	if (ing->redis)
		put_redis(ing, c, t);
	else
		put_fd(ing, c, t);
}

static void
on_ping_reply(redisAsyncContext *ac, void *r, void *arg)
{
	redisReply *reply = r;
	struct pending *p = arg;
	struct ingest *ing = p->ing;
	jv o = jv_object();

	(void)ac;
	if (reply && reply->type == REDIS_REPLY_STATUS) {
		o = jv_object_set(o, jv_string("status"), jv_string("ok"));
		o = jv_object_set(o, jv_string("redis"), jv_string("up"));
		reply_json(ing, p->conn, 200, NULL, o);
	} else {
		o = jv_object_set(o, jv_string("status"),
		    jv_string("unavailable"));
		o = jv_object_set(o, jv_string("redis"), jv_string("down"));
		reply_json(ing, p->conn, 503, "Retry-After: 1\r\n", o);
	}
	pending_done(p);
}

void
sink_health(struct ingest *ing, struct httpd_conn *c)
{
	jv o = jv_object();
	struct pending *p;

	if (ing->redis == NULL) {
		o = jv_object_set(o, jv_string("status"), jv_string("ok"));
		o = jv_object_set(o, jv_string("to"), jv_string(ing->cfg.to));
		reply_json(ing, c, 200, NULL, o);
		return;
	}
	if (!rconn_is_up(ing->redis)) {
		o = jv_object_set(o, jv_string("status"), jv_string("unavailable"));
		o = jv_object_set(o, jv_string("redis"), jv_string("down"));
		o = jv_object_set(o, jv_string("error"),
		    jv_string(rconn_last_error(ing->redis)));
		reply_json(ing, c, 503, "Retry-After: 1\r\n", o);
		return;
	}
	/* A PING takes a place in the pipeline like a POST: unbounded, a
	 * flood of probes on a slow Redis would hold memory without end and
	 * push the POSTs past --max-inflight. At the bound POSTs are refused,
	 * so the instance is not healthy either. */
	if (ing->inflight >= ing->cfg.max_inflight) {
		o = jv_object_set(o, jv_string("status"), jv_string("overloaded"));
		o = jv_object_set(o, jv_string("redis"), jv_string("up"));
		reply_json(ing, c, 503, "Retry-After: 1\r\n", o);
		return;
	}
	jv_free(o);
	p = pending_new(ing, c, NULL);
	if (p == NULL) {
		reply_error(ing, c, 503, REJ_OVERLOADED, NULL, "out of memory");
		return;
	}
	redisAsyncCommand(rconn_ctx(ing->redis), on_ping_reply, p, "PING");
}

const struct pending *
sink_oldest(const struct ingest *ing)
{
	/* replies come in order: whatever is unsynced was sent first */
	const struct pending *p = TAILQ_FIRST(&ing->unsynced);

	return p ? p : TAILQ_FIRST(&ing->pending);
}

/* Replies come in order, so the command Redis has left unanswered longest
 * is the oldest waiting request's or the WAIT in flight. A command sent
 * while a WAIT held the connection counts from that WAIT's answer: it
 * could not be run before. A Redis that stops answering (stopped,
 * partitioned) is dropped; every waiting request is then answered 503 and
 * the connection is made again. */
void
sink_check_timeouts(struct ingest *ing)
{
	const struct pending *p = TAILQ_FIRST(&ing->pending);
	int64_t since = -1;

	if (ing->redis == NULL)
		return;
	if (p)
		since = p->t0 > ing->wait_done_us ? p->t0 : ing->wait_done_us;
	if (ing->wait_inflight && (since < 0 || ing->wait_t0 < since))
		since = ing->wait_t0;
	if (since < 0 ||
	    (stats_mono_us() - since) / 1000 < ing->cfg.redis_timeout_ms)
		return;
	ing->redis_timeouts++;
	log_warn("Redis did not answer in %ld ms; reconnecting waiting=%ld",
	    ing->cfg.redis_timeout_ms, ing->inflight);
	rconn_reset(ing->redis, "Redis did not answer in time");
}

/* XLEN's or MEMORY USAGE's answer, into *to; MEMORY USAGE answers nil
 * while there is no stream yet. */
static void
backlog_reply(struct ingest *ing, const redisReply *reply, long long *to)
{
	ing->backlog_polling--;
	if (reply && reply->type == REDIS_REPLY_INTEGER)
		*to = reply->integer;
	else if (reply && reply->type == REDIS_REPLY_NIL)
		*to = 0;
}

static void
on_xlen(redisAsyncContext *ac, void *r, void *arg)
{
	struct ingest *ing = arg;

	(void)ac;
	backlog_reply(ing, r, &ing->backlog_len);
}

static void
on_memory(redisAsyncContext *ac, void *r, void *arg)
{
	struct ingest *ing = arg;

	(void)ac;
	backlog_reply(ing, r, &ing->backlog_bytes);
}

/* On the tick, through the connection the events go on: XLEN is O(1);
 * MEMORY USAGE with a few samples estimates a stream's bytes from a few of
 * its nodes, cheaply. A poll still out is not repeated, so a silent Redis
 * gets no pile of them. */
void
sink_poll_backlog(struct ingest *ing)
{
	redisAsyncContext *ac;

	if (ing->redis == NULL || ing->backlog_polling > 0 ||
	    (ing->cfg.max_backlog == 0 && ing->cfg.max_backlog_bytes == 0))
		return;
	ac = rconn_ctx(ing->redis);
	if (ac == NULL || !rconn_is_up(ing->redis))
		return;
	if (redisAsyncCommand(ac, on_xlen, ing, "XLEN %s",
	    ing->stream_key) == REDIS_OK)
		ing->backlog_polling++;
	if (ing->cfg.max_backlog_bytes > 0 && redisAsyncCommand(ac, on_memory,
	    ing, "MEMORY USAGE %s SAMPLES 5", ing->stream_key) == REDIS_OK)
		ing->backlog_polling++;
}
