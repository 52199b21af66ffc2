/* http.c: what ingest answers to a whole request: routes, then the checks
 * in the order a client can act on them (cheap refusals before the body is
 * parsed), then the sink. lib/httpd hands requests in; nothing here knows
 * sockets, so tests/fuzz/ingest_http.c drives it with bytes alone. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "ingest.h"
#include "peers.h"
#include "stats.h"
#include "tokens.h"

int
backlog_full(const struct ingest *ing)
{
	return (ing->cfg.max_backlog > 0 &&
	    ing->backlog_len >= ing->cfg.max_backlog) ||
	    (ing->cfg.max_backlog_bytes > 0 &&
	    ing->backlog_bytes >= ing->cfg.max_backlog_bytes);
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

/* The bearer token of r, or NULL; *len its length. */
static const char *
bearer(const struct httpreq *r, size_t *len)
{
	const char *h = httpreq_header(r, "Authorization");
	size_t n;

	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	n = strlen(h);
	while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
		n--;
	*len = n;
	return n ? h : NULL;
}

/* Refused by a token bucket: 503 with the wait in whole seconds. */
static int
rate_limited(struct ingest *ing, struct httpd_conn *c, struct buckets *b,
    const char *key, enum reject why, const char *msg)
{
	int64_t wait;
	char h[64];

	if (b == NULL)
		return 0;
	wait = buckets_take(b, key, stats_mono_us());
	if (wait <= 0)
		return 0;
	snprintf(h, sizeof h, "Retry-After: %lld\r\n",
	    (long long)((wait + 999999) / 1000000));
	reply_error(ing, c, 503, why, h, msg);
	return 1;
}

static void
handle_events(struct ingest *ing, struct httpd_conn *c,
    const struct httpreq *r)
{
	struct events_ctx ctx;
	struct events_error e;
	struct events_text events;
	const char *cls = "", *tok = NULL;
	size_t toklen = 0;

	if (strcmp(r->method, "POST") != 0) {
		reply_error(ing, c, 405, REJ_METHOD, "Allow: POST\r\n",
		    "method not allowed: use POST");
		return;
	}
	if (rate_limited(ing, c, ing->rate_addr, httpd_conn_peer(c),
	    REJ_RATE_ADDR, "too many requests from your address"))
		return;
	if (ing->tokens) {
		tok = bearer(r, &toklen);
		cls = tok ? tokens_class(ing->tokens, tok, toklen) : NULL;
		if (cls == NULL) {
			reply_error(ing, c, 401, REJ_UNAUTHORIZED,
			    "WWW-Authenticate: Bearer realm=\"labpulse\"\r\n",
			    "a valid bearer token is required");
			return;
		}
		if (ing->rate_token) {
			char key[256];

			/* a bucket per token; a long one by its head and
			 * length, which a valid token is not to share */
			snprintf(key, sizeof key, "%zu:%.*s", toklen,
			    (int)(toklen < 200 ? toklen : 200), tok);
			if (rate_limited(ing, c, ing->rate_token, key,
			    REJ_RATE_TOKEN, "too many requests for this token"))
				return;
		}
	}
	if (!is_json_type(httpreq_header(r, "Content-Type"))) {
		reply_error(ing, c, 415, REJ_CONTENT_TYPE, NULL,
		    "Content-Type must be application/json");
		return;
	}
	if (ing->draining) {
		reply_error(ing, c, 503, REJ_DRAINING, NULL, "shutting down");
		return;
	}
	if (!sink_available(ing)) {
		reply_error(ing, c, 503, REJ_UNAVAILABLE, NULL,
		    "event queue unavailable: Redis is not connected");
		return;
	}
	if (backlog_full(ing)) {
		reply_error(ing, c, 503, REJ_BACKLOG, "Retry-After: 5\r\n",
		    "event queue full: too many events wait to be committed");
		return;
	}
	if (ing->inflight >= ing->cfg.max_inflight) {
		reply_error(ing, c, 503, REJ_OVERLOADED, NULL,
		    "too many requests waiting for the event queue");
		return;
	}
	/* a class of "*" lets the client's classId stand */
	ctx.token_class = *cls && strcmp(cls, "*") != 0 ? cls : NULL;
	ctx.default_class = ing->cfg.default_class;
	ctx.received_us = stats_now_us();
	if (events_prepare_text(r->body ? r->body : "", r->body_len,
	    &ing->limits, &ctx, &events, &e) < 0) {
		enum reject why;

		if (e.status == 503) {	/* out of memory: not the body's fault */
			reply_error(ing, c, 503, REJ_OVERLOADED, NULL, e.msg);
			return;
		}
		why = e.offset >= 0 ? REJ_MALFORMED
		    : e.status == 403 ? REJ_FORBIDDEN_CLASS
		    : e.status == 413 && e.field[0] ? REJ_FIELD_TOO_LARGE
		    : e.status == 413 ? REJ_BATCH_TOO_LARGE : REJ_INVALID;

		ing->rejects[why]++;
		reply_json(ing, c, e.status, NULL, events_error_json(&e));
		return;
	}
	sink_put(ing, c, &events);
	events_text_free(&events);
}

void
http_handle(struct httpd_conn *c, const struct httpreq *r, void *arg)
{
	struct ingest *ing = arg;
	const char *path = r->path ? r->path : "";

	ing->requests++;
	if (strcmp(path, "/api/v1/events") == 0) {
		handle_events(ing, c, r);
	} else if (strcmp(path, "/healthz") == 0) {
		if (strcmp(r->method, "GET") != 0 &&
		    strcmp(r->method, "HEAD") != 0) {
			reply_error(ing, c, 405, REJ_METHOD,
			    "Allow: GET, HEAD\r\n",
			    "method not allowed: use GET");
			return;
		}
		sink_health(ing, c);
	} else {
		reply_error(ing, c, 404, REJ_NOT_FOUND, NULL, "not found: "
		    "events are posted to /api/v1/events");
	}
}
