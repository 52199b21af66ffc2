/* sink.c: make accepted events durable: XADD to the Redis stream (a batch as
 * one MULTI/EXEC, one round trip), or NDJSON written and flushed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <hiredis/hiredis.h>

#include "fdout.h"
#include "hist.h"
#include "ingest.h"
#include "log.h"
#include "redis.h"
#include "stats.h"

static void
on_redis_state(struct rconn *rc, int up, void *arg)
{
	(void)arg;
	if (up)
		log_info("connected to Redis url=%s", rconn_url(rc));
	else
		log_warn("lost Redis url=%s reason=\"%s\"", rconn_url(rc),
		    rconn_last_error(rc));
}

int
sink_setup(struct ingest *ing, char *err, size_t errlen)
{
	ing->out_fd = -1;
	if (addr_parse(ing->cfg.to, &ing->to, err, errlen) < 0)
		return -1;
	if (ing->to.kind == ADDR_STREAM) {
		if (ing->to.group[0]) {
			snprintf(err, errlen, "--to takes a stream without a "
			    "consumer group: %s", ing->cfg.to);
			return -1;
		}
		snprintf(ing->stream_key, sizeof ing->stream_key, "labpulse:%s",
		    ing->to.stream);
		ing->redis = rconn_new(ing->base, ing->cfg.redis_url, err, errlen);
		if (ing->redis == NULL)
			return -1;
		rconn_on_state(ing->redis, on_redis_state, ing);
		rconn_start(ing->redis);
		return 0;
	}
	ing->out_fd = fdout_open(&ing->to, err, errlen);
	return ing->out_fd < 0 ? -1 : 0;
}

int
sink_available(struct ingest *ing)
{
	return ing->redis == NULL || rconn_is_up(ing->redis);
}

static struct pending *
pending_new(struct ingest *ing, struct evhttp_request *req, jv ids, int n)
{
	struct pending *p = calloc(1, sizeof *p);

	if (p == NULL)
		return NULL;
	p->ing = ing;
	p->req = req;
	p->ids = ids;
	p->nevents = n;
	p->t0 = stats_mono_us();
	p->conn = conn_of(ing, req);
	if (p->conn)
		p->conn->pending = p;
	p->prev = ing->pend_tail;
	if (ing->pend_tail)
		ing->pend_tail->next = p;
	else
		ing->pend_head = p;
	ing->pend_tail = p;
	ing->inflight++;
	return p;
}

void
pending_done(struct pending *p)
{
	struct ingest *ing = p->ing;

	if (p->conn)
		p->conn->pending = NULL;
	if (p->prev)
		p->prev->next = p->next;
	else
		ing->pend_head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		ing->pend_tail = p->prev;
	ing->inflight--;
	jv_free(p->ids);
	free(p);
	ingest_maybe_exit(ing);
}

static jv
accepted_body(jv ids, int n)
{
	jv o = jv_object_set(jv_object(), jv_string("accepted"), jv_number(n));

	return jv_object_set(o, jv_string("ids"), ids);
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
		if (p->req)
			reply_error(ing, p->req, 503, REJ_UNAVAILABLE, msg);
	} else if (p->req) {
		ing->events_accepted += p->nevents;
		ing->posts_accepted++;
		reply_json(ing, p->req, 202, accepted_body(jv_copy(p->ids),
		    p->nevents));
	}
	pending_done(p);
}

static void
put_redis(struct ingest *ing, struct evhttp_request *req,
    const struct events_text *t, jv ids)
{
	redisAsyncContext *ac = rconn_ctx(ing->redis);
	struct pending *p;
	const char *argv[5];
	size_t argl[5], i;
	int n = (int)t->n;

	p = pending_new(ing, req, ids, n);
	if (p == NULL) {
		jv_free(ids);
		reply_error(ing, req, 503, REJ_OVERLOADED, "out of memory");
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
}

static void
put_fd(struct ingest *ing, struct evhttp_request *req,
    const struct events_text *t, jv ids)
{
	struct evbuffer *out = evbuffer_new();
	size_t len, i;
	int rc;

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
		jv_free(ids);
		reply_error(ing, req, 503, REJ_UNAVAILABLE, msg);
		/* With its output gone, ingest can make nothing durable. */
		ing->exit_code = 74;
		event_base_loopexit(ing->base, NULL);
		return;
	}
	ing->events_accepted += t->n;
	ing->posts_accepted++;
	reply_json(ing, req, 202, accepted_body(ids, (int)t->n));
}

void
sink_put(struct ingest *ing, struct evhttp_request *req,
    const struct events_text *t)
{
	jv ids = jv_array();
	size_t i;

	for (i = 0; i < t->n; i++)
		ids = jv_array_append(ids, jv_string(t->items[i].id));
	if (ing->redis)
		put_redis(ing, req, t, ids);
	else
		put_fd(ing, req, t, ids);
}

static void
on_ping_reply(redisAsyncContext *ac, void *r, void *arg)
{
	redisReply *reply = r;
	struct pending *p = arg;
	struct ingest *ing = p->ing;
	jv o = jv_object();

	(void)ac;
	if (p->req) {
		if (reply && reply->type == REDIS_REPLY_STATUS) {
			o = jv_object_set(o, jv_string("status"), jv_string("ok"));
			o = jv_object_set(o, jv_string("redis"), jv_string("up"));
			reply_json(ing, p->req, 200, o);
		} else {
			o = jv_object_set(o, jv_string("status"),
			    jv_string("unavailable"));
			o = jv_object_set(o, jv_string("redis"), jv_string("down"));
			evhttp_add_header(evhttp_request_get_output_headers(p->req),
			    "Retry-After", "1");
			reply_json(ing, p->req, 503, o);
		}
	} else {
		jv_free(o);
	}
	pending_done(p);
}

void
sink_health(struct ingest *ing, struct evhttp_request *req)
{
	jv o = jv_object();
	struct pending *p;

	if (ing->redis == NULL) {
		o = jv_object_set(o, jv_string("status"), jv_string("ok"));
		o = jv_object_set(o, jv_string("to"), jv_string(ing->cfg.to));
		reply_json(ing, req, 200, o);
		return;
	}
	if (!rconn_is_up(ing->redis)) {
		o = jv_object_set(o, jv_string("status"), jv_string("unavailable"));
		o = jv_object_set(o, jv_string("redis"), jv_string("down"));
		o = jv_object_set(o, jv_string("error"),
		    jv_string(rconn_last_error(ing->redis)));
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Retry-After", "1");
		reply_json(ing, req, 503, o);
		return;
	}
	jv_free(o);
	p = pending_new(ing, req, jv_null(), 0);
	if (p == NULL) {
		reply_error(ing, req, 503, REJ_OVERLOADED, "out of memory");
		return;
	}
	redisAsyncCommand(rconn_ctx(ing->redis), on_ping_reply, p, "PING");
}

/* Replies come in order, so the oldest waiting request is at the head. A
 * Redis that stops answering (stopped, partitioned) is dropped; every waiting
 * request is then answered 503 and the connection is made again. */
void
sink_check_timeouts(struct ingest *ing)
{
	int64_t age;

	if (ing->redis == NULL || ing->pend_head == NULL)
		return;
	age = stats_mono_us() - ing->pend_head->t0;
	if (age / 1000 < ing->cfg.redis_timeout_ms)
		return;
	ing->redis_timeouts++;
	log_warn("Redis did not answer in %ld ms; reconnecting waiting=%ld",
	    ing->cfg.redis_timeout_ms, ing->inflight);
	rconn_reset(ing->redis, "Redis did not answer in time");
}
