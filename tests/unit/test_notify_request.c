/* test_notify_request.c: notify's stream ids (lib/sid.c) and its reading
 * of a request (cmd/notify/request.c) over httpreq: routes, handshake,
 * classes, tokens and since, each refusal with its status and message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpreq.h"
#include "notify/notify.h"
#include "tap.h"

static const char tok[] = "Zq3xW8mN1pL5vB7cD9fG2hJ4kR6tY0uI_sAeOwQ-Ezx";

static void
sid_ok(const char *s, const char *canon)
{
	struct sid id;
	char buf[SID_LEN] = "";

	if (is_int(sid_parse(s, &id), 0, "sid '%s' accepted", s)) {
		sid_format(id, buf);
		is_str(buf, canon, "sid '%s' is %s", s, canon);
	}
}

static void
test_sid(void)
{
	static const char *bad[] = { "", "-", "-1", "+1", " 1", "1 ", "1-",
	    "1--2", "1-2-3", "a", "1x", "0x10", "18446744073709551616",
	    "1-18446744073709551616", "99999999999999999999999", NULL };
	struct sid id = { 5, 5 }, a = { 1, 2 }, b = { 1, 3 }, c = { 2, 0 };
	int i;

	sid_ok("1764967895123-4", "1764967895123-4");
	sid_ok("0-0", "0-0");
	sid_ok("12", "12-0");
	sid_ok("007-08", "7-8");
	sid_ok("18446744073709551615-18446744073709551615",
	    "18446744073709551615-18446744073709551615");
	for (i = 0; bad[i]; i++)
		is_int(sid_parse(bad[i], &id), -1, "sid '%s' refused", bad[i]);
	ok(id.ms == 5 && id.seq == 5, "a refused id writes nothing");
	ok(sid_cmp(a, b) < 0 && sid_cmp(b, c) < 0 && sid_cmp(c, a) > 0 &&
	    sid_cmp(a, a) == 0, "ids order by ms, then seq");
	a.ms = 10, a.seq = 3;
	b = sid_next(&a, 12);
	ok(b.ms == 12 && b.seq == 0 && a.ms == 12, "sid_next: a later ms, seq 0");
	b = sid_next(&a, 12);
	ok(b.ms == 12 && b.seq == 1, "sid_next: the same ms, the next seq");
	b = sid_next(&a, 7);
	ok(b.ms == 12 && b.seq == 2 && sid_cmp(a, b) == 0,
	    "sid_next: a clock gone back still gives a later id");
}

/* Read the request text through httpreq and nreq_parse into q: 0, or -1
 * when httpreq refused it (status in *hstatus). */
static int
req_n(const char *text, size_t len, struct nreq *q, int *hstatus)
{
	static const struct httpreq_limits lim = { 8192, 4096, 64 };
	struct httpreq r;
	size_t used;
	int ret = -1;

	*hstatus = 0;
	if (httpreq_init(&r, &lim) < 0)
		bail_out("httpreq_init");
	switch (httpreq_feed(&r, text, len, &used)) {
	case HTTPREQ_DONE:
		if (nreq_parse(&r, q) < 0)
			bail_out("nreq_parse: out of memory");
		/* the path points into r: keep what the tests read */
		q->path = q->kind == NREQ_STATIC ? "(static)" : NULL;
		ret = 0;
		break;
	case HTTPREQ_ERROR:
		*hstatus = r.status;
		break;
	case HTTPREQ_MORE:
		*hstatus = -1;
		break;
	}
	httpreq_free(&r);
	return ret;
}

static int
req(const char *text, struct nreq *q, int *hstatus)
{
	return req_n(text, strlen(text), q, hstatus);
}

/* GET target with extra header lines: q's kind, status and message. */
static void
expect(const char *target, const char *headers, enum nreq_kind kind,
    int status, const char *msg)
{
	char text[4096];
	struct nreq q;
	int hs;

	snprintf(text, sizeof text, "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n",
	    target, headers);
	if (!is_int(req(text, &q, &hs), 0, "%.60s: read", target)) {
		diag("    httpreq status %d", hs);
		return;
	}
	is_int(q.kind, kind, "%.60s: kind", target);
	is_int(q.status, status, "%.60s: status", target);
	is_str(q.msg, msg, "%.60s: message", target);
	nreq_free(&q);
}

static void
test_routes(void)
{
	char t[512], h[512];
	struct nreq q;
	int hs;

	expect("/healthz", "", NREQ_HEALTH, 0, "");
	expect("/app.js", "", NREQ_STATIC, 0, "");
	expect("/ws?class=A", "", NREQ_ERROR, 426,
	    "/ws is a WebSocket: send Upgrade: websocket");
	expect("/ws?class=A", "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", NREQ_ERROR, 426,
	    "Sec-WebSocket-Version must be 13");
	expect("/ws?class=A", "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Key: not-base64-but-24-chars!\r\n"
	    "Sec-WebSocket-Version: 13\r\n", NREQ_ERROR, 400,
	    "Sec-WebSocket-Key: missing or malformed");
	snprintf(t, sizeof t, "/ws?class=CS101&since=17-2");
	snprintf(h, sizeof h, "Upgrade: websocket\r\nConnection: keep-alive, "
	    "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n", tok);
	{
		char text[2048];

		snprintf(text, sizeof text, "GET %s HTTP/1.1\r\n%s\r\n", t, h);
		if (is_int(req(text, &q, &hs), 0, "a dashboard's handshake")) {
			is_int(q.kind, NREQ_WS, "is a WebSocket");
			is_int(q.status, 0, "that may subscribe");
			is_str(q.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
			    "with RFC 6455's accept key");
			is_str(q.token, tok, "with the token of Authorization");
			is_str(q.since, "17-2", "since");
			ok(q.nclasses == 1 && strcmp(q.classes[0], "CS101") == 0,
			    "and its class");
			nreq_free(&q);
		}
	}
	if (is_int(req("POST /sse HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", &q,
	    &hs), 0, "a POST with a small body is read")) {
		is_int(q.status, 405, "and is 405");
		is_str(q.extra, "Allow: GET\r\n", "with Allow: GET");
	}
	if (is_int(req("POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", &q,
	    &hs), 0, "a POST for a file is read")) {
		is_int(q.status, 405, "and is 405");
		is_str(q.extra, "Allow: GET, HEAD\r\n", "with Allow: GET, HEAD");
		is_str(q.msg, "only GET or HEAD", "saying so");
	}
	if (is_int(req("HEAD /app.js?v=1 HTTP/1.1\r\n\r\n", &q, &hs), 0,
	    "HEAD for a file is read")) {
		is_int(q.kind, NREQ_STATIC, "as the file");
		is_int(q.head, 1, "without its body");
		is_str(q.path, "(static)", "a file");
	}
	if (is_int(req("HEAD /healthz HTTP/1.1\r\n\r\n", &q, &hs), 0,
	    "HEAD /healthz is read")) {
		is_int(q.kind, NREQ_HEALTH, "as the health check");
		is_int(q.head, 1, "without its body");
	}
	if (is_int(req("HEAD /ws HTTP/1.1\r\n\r\n", &q, &hs), 0,
	    "HEAD /ws is read")) {
		is_int(q.status, 405, "and is 405: a stream is GET only");
		is_str(q.extra, "Allow: GET\r\n", "with Allow: GET");
	}
	if (is_int(req("GET * HTTP/1.1\r\n\r\n", &q, &hs), 0,
	    "GET * is read")) {
		is_int(q.kind, NREQ_ERROR, "GET * is refused");
		is_int(q.status, 400, "with 400");
		is_str(q.msg, "malformed request target", "as a bad target");
	}
	is_int(req_n("GET /\0 HTTP/1.1\r\n\r\n", 20, &q, &hs), -1,
	    "a NUL in the request line is refused by httpreq");
	is_int(hs, 400, "with 400");
}

static void
test_query(void)
{
	char t[1024];
	int i;

	snprintf(t, sizeof t, "/sse?class=CS101&class=CS%%20102&token=%s", tok);
	expect(t, "", NREQ_SSE, 0, "");
	snprintf(t, sizeof t, "/sse?class=A&class=B&class=A&token=%s", tok);
	expect(t, "", NREQ_SSE, 400, "class: A is named twice");
	expect("/sse?class=A%00B&token=t", "", NREQ_SSE, 400,
	    "malformed query string");
	expect("/sse?class=A%1BB&token=t", "", NREQ_SSE, 400,
	    "class: must be UTF-8 text without control characters");
	expect("/sse?class=%FF&token=t", "", NREQ_SSE, 400,
	    "class: must be UTF-8 text without control characters");
	expect("/sse?class=caf%C3%A9&token=t", "", NREQ_SSE, 0, "");
	expect("/sse?class=&token=t", "", NREQ_SSE, 400,
	    "class: must be 1 to 120 bytes");
	expect("/sse?class&token=t", "", NREQ_SSE, 400, "malformed query string");
	expect("/sse?token=t", "", NREQ_SSE, 400,
	    "class: name at least one class (?class=NAME)");
	expect("/sse?class=A", "", NREQ_SSE, 401, "no token");
	expect("/sse?class=A&token=%C3%A9", "", NREQ_SSE, 401, "unknown token");
	expect("/sse?class=A", "Authorization: Bearer a b\r\n", NREQ_SSE, 401,
	    "unknown token");
	expect("/sse?class=A&token=t&since=yesterday", "", NREQ_SSE, 400,
	    "since: not a stream id (MS-SEQ): yesterday");
	expect("/sse?class=A&token=t&since=1%0A2", "", NREQ_SSE, 400,
	    "since: not a stream id (MS-SEQ): 1?2");
	/* cut short to 47 bytes, it would have been a good id */
	expect("/sse?class=A&token=t&since=1-"
	    "000000000000000000000000000000000000000000000001x", "", NREQ_SSE,
	    400, "since: not a stream id (MS-SEQ): 1-"
	    "000000000000000000000000000000000000000000000001x");
	expect("/sse?class=A&token=t&since=1-1", "Last-Event-ID: junk\r\n",
	    NREQ_SSE, 400, "since: not a stream id (MS-SEQ): junk");
	expect("/sse?&&class=A&&token=t&proto=ws&", "", NREQ_SSE, 0, "");
	t[0] = '\0';
	snprintf(t, sizeof t, "/sse?token=t");
	for (i = 0; i < 33; i++)
		snprintf(t + strlen(t), sizeof t - strlen(t), "&class=C%d", i);
	expect(t, "", NREQ_SSE, 400, "class: at most 32 classes");
	snprintf(t, sizeof t, "/sse?token=t");
	for (i = 0; i < 32; i++)
		snprintf(t + strlen(t), sizeof t - strlen(t), "&class=A");
	expect(t, "", NREQ_SSE, 400, "class: A is named twice");
}

int
main(void)
{
	test_sid();
	test_routes();
	test_query();
	return done_testing();
}
