/* ingest_http.c: fuzz ingest's HTTP handling of whole requests, bytes in to
 * answer out, without sockets or Redis: lib/httpreq reads the requests of a
 * connection as lib/httpd does (pipelined, one at a time), cmd/ingest/http.c
 * routes and checks each, and a fake sink accepts. The first byte chooses
 * the server's state (tokens, tight rate buckets, a full backlog, Redis
 * down, draining). Every request must get exactly one answer, with a known
 * status, the headers its status promises, and a JSON object for a body. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest.h"
#include "peers.h"
#include "stats.h"
#include "tokens.h"

#define check(c) do { if (!(c)) abort(); } while (0)

/* What lib/httpd would be given: one answer per request. */
struct httpd_conn {
	int answers;
	int status;
	int head;
};

static int64_t fake_clock;

int64_t
stats_mono_us(void)
{
	return fake_clock;
}

int64_t
stats_now_us(void)
{
	return 1796000000000000LL + fake_clock;
}

const char *
httpd_conn_peer(const struct httpd_conn *c)
{
	(void)c;
	return "192.0.2.7";
}

void
httpd_close_after(struct httpd_conn *c)
{
	(void)c;
}

void
httpd_get_stats(const struct httpd *h, struct httpd_stats *s)
{
	(void)h;
	memset(s, 0, sizeof *s);
}

static int
has_line(const char *headers, const char *prefix)
{
	const char *p;

	for (p = headers; (p = strstr(p, prefix)) != NULL; p++)
		if (p == headers || p[-1] == '\n')
			return 1;
	return 0;
}

void
httpd_reply(struct httpd_conn *c, int status, const char *headers,
    const char *body, size_t len)
{
	const char *p;
	jv v;

	c->answers++;
	c->status = status;
	check(status == 200 || status == 202 || status == 400 ||
	    status == 401 || status == 403 || status == 404 || status == 405 ||
	    status == 413 || status == 415 || status == 503);
	/* header lines: "Name: value\r\n" each, no stray CR or LF */
	check(headers != NULL);
	for (p = headers; *p; p++) {
		if (*p == '\r')
			check(p[1] == '\n');
		if (*p == '\n')
			check(p > headers && p[-1] == '\r');
	}
	check(has_line(headers, "Content-Type: application/json\r\n"));
	if (status == 503)
		check(has_line(headers, "Retry-After: "));
	if (status == 405)
		check(has_line(headers, "Allow: "));
	if (status == 401)
		check(has_line(headers, "WWW-Authenticate: Bearer"));
	check(body != NULL && len > 0 && body[len - 1] == '\n');
	check(memchr(body, '\0', len) == NULL);
	v = jv_parse_sized(body, (int)len);
	check(jv_get_kind(v) == JV_KIND_OBJECT);
	if (status >= 400) {
		jv e = jv_object_get(jv_copy(v), jv_string("error"));

		check(jv_get_kind(e) == JV_KIND_STRING);
		jv_free(e);
	}
	jv_free(v);
}

/* The fake sink: accepts everything, unless the mode took it down (an
 * out_fd of -2 stands for Redis not connected). */
int
sink_available(struct ingest *ing)
{
	return ing->out_fd != -2;
}

void
sink_put(struct ingest *ing, struct httpd_conn *c, const struct events_text *t)
{
	size_t i;

	check(t->n >= 1 && (long)t->n <= ing->cfg.max_batch);
	for (i = 0; i < t->n; i++) {
		check(t->items[i].id != NULL && t->items[i].id[0] != '\0');
		check(t->items[i].off + t->items[i].len <= t->len);
		check(t->buf[t->items[i].off] == '{');
	}
	ing->events_accepted += t->n;
	reply_text(ing, c, 202, "", "{\"accepted\":1}\n", 15);
}

void
sink_health(struct ingest *ing, struct httpd_conn *c)
{
	reply_json(ing, c, 200, NULL, jv_object_set(jv_object(),
	    jv_string("status"), jv_string("ok")));
}

static const char token_text[] = "tok-a CS101\ntok-any *\n";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct httpreq_limits lim = { 4096, 2048, 32 };
	struct ingest ing;
	struct httpreq r;
	struct httpd_conn c;
	char err[200];
	const char *p;
	size_t n, used;
	unsigned mode;
	int requests = 0;

	if (size < 1)
		return 0;
	mode = data[0];
	p = (const char *)data + 1;
	n = size - 1;
	fake_clock = 1000000;
	memset(&ing, 0, sizeof ing);
	ing.out_fd = (mode & 8) ? -2 : -1;	/* -2: the sink is down */
	ing.cfg.default_class = "default";
	ing.cfg.max_body = (long)lim.max_body;
	ing.cfg.max_batch = (mode & 64) ? 2 : 100;
	ing.cfg.max_field = (mode & 64) ? 16 : 4096;
	ing.cfg.max_inflight = 10;
	ing.cfg.max_backlog = 5;
	ing.backlog_len = (mode & 4) ? 5 : 0;
	ing.backlog_bytes = -1;
	ing.draining = (mode & 16) != 0;
	ing.limits.max_batch = ing.cfg.max_batch;
	ing.limits.max_field = ing.cfg.max_field;
	if (mode & 1) {
		ing.cfg.token_file = "tokens";
		ing.tokens = tokens_parse(token_text, sizeof token_text - 1,
		    "tokens", err, sizeof err);
		check(ing.tokens != NULL);
	}
	if (mode & 2) {
		ing.rate_addr = buckets_new(1, 2, 16);
		ing.rate_token = ing.tokens ? buckets_new(1, 1, 16) : NULL;
		if (ing.rate_addr == NULL)
			goto out;
	}
	if (httpreq_init(&r, &lim) < 0)
		goto out;
	/* the connection's requests, one at a time, as lib/httpd reads them */
	while (n > 0 && requests++ < 64) {
		enum httpreq_state st = httpreq_feed(&r, p, n, &used);

		if (st != HTTPREQ_DONE)
			break;	/* MORE: not whole; ERROR: httpd answers it */
		memset(&c, 0, sizeof c);
		fake_clock += 300000;
		http_handle(&c, &r, &ing);
		check(c.answers == 1);
		httpreq_reset(&r);
		p += used;
		n -= used;
	}
	httpreq_free(&r);
out:
	if (ing.tokens)
		tokens_free(ing.tokens);
	if (ing.rate_addr)
		buckets_free(ing.rate_addr);
	if (ing.rate_token)
		buckets_free(ing.rate_token);
	return 0;
}
