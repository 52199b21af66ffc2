/* http.c: the HTTP face of ingest on evhttp: routes, checks in the order a
 * client can act on them, and the connection cap. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "ingest.h"
#include "log.h"
#include "stats.h"

static const char *const reject_names[REJ__COUNT] = {
	[REJ_MALFORMED] = "malformed_json",
	[REJ_INVALID] = "invalid_field",
	[REJ_FIELD_TOO_LARGE] = "field_too_large",
	[REJ_BATCH_TOO_LARGE] = "batch_too_large",
	[REJ_CONTENT_TYPE] = "content_type",
	[REJ_UNAUTHORIZED] = "unauthorized",
	[REJ_NOT_FOUND] = "not_found",
	[REJ_METHOD] = "method_not_allowed",
	[REJ_OVERLOADED] = "overloaded",
	[REJ_UNAVAILABLE] = "unavailable",
	[REJ_DRAINING] = "draining",
};

const char *
reject_name(enum reject r)
{
	return reject_names[r];
}

/* While draining, the loop ends once every answer has been written. */
static void
on_reply_written(struct evhttp_request *req, void *arg)
{
	struct ingest *ing = arg;

	(void)req;
	ing->writing--;
	ingest_maybe_exit(ing);
}

void
ingest_maybe_exit(struct ingest *ing)
{
	if (ing->draining && ing->inflight == 0 && ing->writing == 0)
		event_base_loopexit(ing->base, NULL);
}

void
reply_json(struct ingest *ing, struct evhttp_request *req, int code, jv body)
{
	struct evbuffer *buf = evbuffer_new();
	jv txt = jv_dump_string(body, 0);

	evbuffer_add(buf, jv_string_value(txt),
	    (size_t)jv_string_length_bytes(jv_copy(txt)));
	evbuffer_add(buf, "\n", 1);
	jv_free(txt);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "application/json");
	if (ing->draining) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Connection", "close");
		ing->writing++;
		evhttp_request_set_on_complete_cb(req, on_reply_written, ing);
	}
	if (code < 300)
		ing->resp_2xx++;
	else if (code < 500)
		ing->resp_4xx++;
	else
		ing->resp_5xx++;
	evhttp_send_reply(req, code, NULL, buf);
	evbuffer_free(buf);
}

void
reply_error(struct ingest *ing, struct evhttp_request *req, int code,
    enum reject why, const char *msg)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	ing->rejects[why]++;
	if (code == 503)
		evhttp_add_header(h, "Retry-After", "1");
	reply_json(ing, req, code, jv_object_set(jv_object(),
	    jv_string("error"), jv_string(msg)));
}

static int
is_json_type(const char *ct)
{
	size_t n = strlen("application/json");

	if (ct == NULL)
		return 0;
	while (*ct == ' ')
		ct++;
	if (strncasecmp(ct, "application/json", n) != 0)
		return 0;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

/* The class bound to the request's bearer token; "" when tokens are not in
 * use; NULL when a token is required and missing or wrong. */
static const char *
token_class(struct ingest *ing, struct evhttp_request *req)
{
	const char *h;
	size_t i, tl, j;
	unsigned char diff;

	if (ing->cfg.token_file == NULL)
		return "";
	h = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Authorization");
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	tl = strlen(h);
	for (i = 0; i < ing->ntokens; i++) {
		const char *t = ing->tokens[i].token;

		if (strlen(t) != tl)
			continue;
		/* compare in constant time: tokens are secrets */
		for (diff = 0, j = 0; j < tl; j++)
			diff |= (unsigned char)t[j] ^ (unsigned char)h[j];
		if (diff == 0)
			return ing->tokens[i].class_id;
	}
	return NULL;
}

static void
handle_events(struct ingest *ing, struct evhttp_request *req)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	struct evbuffer *in;
	struct events_ctx ctx;
	struct events_error e;
	const char *cls;
	size_t len;
	struct events_text events;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		evhttp_add_header(out, "Allow", "POST");
		reply_error(ing, req, 405, REJ_METHOD,
		    "method not allowed: use POST");
		return;
	}
	cls = token_class(ing, req);
	if (cls == NULL) {
		evhttp_add_header(out, "WWW-Authenticate",
		    "Bearer realm=\"labpulse\"");
		reply_error(ing, req, 401, REJ_UNAUTHORIZED,
		    "a valid bearer token is required");
		return;
	}
	if (!is_json_type(evhttp_find_header(
	    evhttp_request_get_input_headers(req), "Content-Type"))) {
		reply_error(ing, req, 415, REJ_CONTENT_TYPE,
		    "Content-Type must be application/json");
		return;
	}
	if (ing->draining) {
		reply_error(ing, req, 503, REJ_DRAINING, "shutting down");
		return;
	}
	if (!sink_available(ing)) {
		reply_error(ing, req, 503, REJ_UNAVAILABLE,
		    "event queue unavailable: Redis is not connected");
		return;
	}
	if (ing->inflight >= ing->cfg.max_inflight) {
		reply_error(ing, req, 503, REJ_OVERLOADED,
		    "too many requests waiting for the event queue");
		return;
	}
	in = evhttp_request_get_input_buffer(req);
	len = evbuffer_get_length(in);
	ctx.token_class = *cls ? cls : NULL;
	ctx.default_class = ing->cfg.default_class;
	ctx.received_us = stats_now_us();
	if (events_prepare_text((const char *)evbuffer_pullup(in, -1), len,
	    &ing->limits, &ctx, &events, &e) < 0) {
		enum reject why = e.offset >= 0 ? REJ_MALFORMED
		    : e.status == 413 && e.field[0] ? REJ_FIELD_TOO_LARGE
		    : e.status == 413 ? REJ_BATCH_TOO_LARGE : REJ_INVALID;

		ing->rejects[why]++;
		reply_json(ing, req, e.status, events_error_json(&e));
		return;
	}
	sink_put(ing, req, &events);
	events_text_free(&events);
}

static void
handle_request(struct evhttp_request *req, void *arg)
{
	struct ingest *ing = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

	ing->requests++;
	conn_of(ing, req);
	if (path == NULL)
		path = "";
	if (strcmp(path, "/api/v1/events") == 0) {
		handle_events(ing, req);
	} else if (strcmp(path, "/healthz") == 0) {
		if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
			evhttp_add_header(evhttp_request_get_output_headers(req),
			    "Allow", "GET, HEAD");
			reply_error(ing, req, 405, REJ_METHOD,
			    "method not allowed: use GET");
			return;
		}
		sink_health(ing, req);
	} else {
		reply_error(ing, req, 404, REJ_NOT_FOUND, "not found: events "
		    "are posted to /api/v1/events");
	}
}

/* evhttp 2.1 has no cap on connections and no hook when it frees one. A
 * connection is counted from its accept (evhttp_set_bevcb) as "unconfirmed";
 * its first request moves it to a table keyed by its evhttp_connection, whose
 * close callback removes it. A connection that never sends a request is
 * closed by evhttp's timeout, and its unconfirmed entry ages out with it. At
 * the cap the listeners pause, and further clients wait in the backlog. */
static void
set_listening(struct ingest *ing, int on)
{
	int i;

	if (ing->listening_paused == !on || ing->draining)
		return;
	for (i = 0; i < ing->nbound; i++) {
		struct evconnlistener *l =
		    evhttp_bound_socket_get_listener(ing->bound[i]);

		if (on)
			evconnlistener_enable(l);
		else
			evconnlistener_disable(l);
	}
	ing->listening_paused = !on;
	if (!on) {
		ing->conns_paused++;
		log_warn("connection cap reached; not accepting conns=%ld",
		    ing->conns);
	}
}

static void
recount(struct ingest *ing)
{
	ing->conns = ing->nconfirmed + (long)ing->unconf_len;
	set_listening(ing, ing->conns < ing->cfg.max_conns);
}

static unsigned
conn_hash(const struct evhttp_connection *evcon)
{
	uintptr_t v = (uintptr_t)evcon;

	return (unsigned)((v >> 4) ^ (v >> 16)) % CONN_BUCKETS;
}

static void
conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct conn *c = arg, **pp;
	struct ingest *ing = c->ing;

	for (pp = &ing->conn_table[conn_hash(evcon)]; *pp; pp = &(*pp)->hnext)
		if (*pp == c) {
			*pp = c->hnext;
			break;
		}
	if (c->pending) {	/* the client went away before its answer */
		c->pending->req = NULL;
		c->pending->conn = NULL;
	}
	free(c);
	ing->nconfirmed--;
	recount(ing);
}

struct conn *
conn_of(struct ingest *ing, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct conn *c;
	unsigned h;

	if (evcon == NULL)
		return NULL;
	h = conn_hash(evcon);
	for (c = ing->conn_table[h]; c; c = c->hnext)
		if (c->evcon == evcon)
			return c;
	c = calloc(1, sizeof *c);
	if (c == NULL)
		return NULL;
	c->ing = ing;
	c->evcon = evcon;
	c->hnext = ing->conn_table[h];
	ing->conn_table[h] = c;
	evhttp_connection_set_closecb(evcon, conn_closed, c);
	ing->nconfirmed++;
	if (ing->unconf_len > 0) {
		ing->unconf_head = (ing->unconf_head + 1) % UNCONF_MAX;
		ing->unconf_len--;
	}
	recount(ing);
	return c;
}

/* Entries older than the read timeout belong to connections evhttp has
 * closed for saying nothing. */
void
http_age_conns(struct ingest *ing)
{
	int64_t old = stats_mono_us() - (ing->cfg.timeout_ms + 1000) * 1000;

	while (ing->unconf_len > 0 && ing->unconf[ing->unconf_head] < old) {
		ing->unconf_head = (ing->unconf_head + 1) % UNCONF_MAX;
		ing->unconf_len--;
	}
	recount(ing);
}

static struct bufferevent *
make_bev(struct event_base *base, void *arg)
{
	struct ingest *ing = arg;

	if (ing->unconf_len == UNCONF_MAX) {	/* keep the newest */
		ing->unconf_head = (ing->unconf_head + 1) % UNCONF_MAX;
		ing->unconf_len--;
	}
	ing->unconf[(ing->unconf_head + ing->unconf_len) % UNCONF_MAX] =
	    stats_mono_us();
	ing->unconf_len++;
	ing->conns_total++;
	recount(ing);
	return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
}

int
http_setup(struct ingest *ing, const int *fds, int nfds)
{
	struct timeval tv;
	int i;

	ing->http = evhttp_new(ing->base);
	if (ing->http == NULL)
		return -1;
	evhttp_set_allowed_methods(ing->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
	    EVHTTP_REQ_PATCH);
	evhttp_set_max_body_size(ing->http, ing->cfg.max_body);
	evhttp_set_max_headers_size(ing->http, 16384);
	tv.tv_sec = ing->cfg.timeout_ms / 1000;
	tv.tv_usec = (ing->cfg.timeout_ms % 1000) * 1000;
	evhttp_set_timeout_tv(ing->http, &tv);
	evhttp_set_bevcb(ing->http, make_bev, ing);
	evhttp_set_gencb(ing->http, handle_request, ing);
	for (i = 0; i < nfds; i++) {
		ing->bound[i] = evhttp_accept_socket_with_handle(ing->http, fds[i]);
		if (ing->bound[i] == NULL)
			return -1;
		ing->nbound++;
	}
	return 0;
}

/* Stop accepting; requests in hand are finished by the loop. */
void
http_drain(struct ingest *ing)
{
	int i;

	for (i = 0; i < ing->nbound; i++)
		evhttp_del_accept_socket(ing->http, ing->bound[i]);
	ing->nbound = 0;
	ing->draining = 1;
}
