/* test_httpreq.c: requests read by lib/httpreq whole, byte by byte and in
 * odd pieces, which must all come out the same; pipelining; every bound and
 * refusal with its status and reason; smuggling attempts; upgrades. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpreq.h"
#include "tap.h"

static const struct httpreq_limits deflim = { 1024, 100, 10 };

/* What one request came to, as text, so that feeds can be compared. */
struct outcome {
	enum httpreq_state st;
	size_t used;
	char text[4096];
};

static void
describe(const struct httpreq *r, enum httpreq_state st, size_t used,
    struct outcome *o)
{
	size_t n = 0;
	int i;

	o->st = st;
	o->used = used;
	if (st == HTTPREQ_ERROR) {
		snprintf(o->text, sizeof o->text, "ERROR %d %s", r->status,
		    r->error);
		return;
	}
	if (st == HTTPREQ_MORE) {
		snprintf(o->text, sizeof o->text, "MORE");
		return;
	}
	n += snprintf(o->text + n, sizeof o->text - n,
	    "DONE used=%zu %s %s path=%s query=%s minor=%d ka=%d up=%d",
	    used, r->method, r->target, r->path,
	    r->query ? r->query : "(none)", r->http_minor, r->keep_alive,
	    r->upgrade);
	for (i = 0; i < r->nheaders && n < sizeof o->text; i++)
		n += snprintf(o->text + n, sizeof o->text - n, " [%s: %s]",
		    r->headers[i].name, r->headers[i].value);
	if (n < sizeof o->text)
		snprintf(o->text + n, sizeof o->text - n, " body=%zu:%.*s",
		    r->body_len, (int)r->body_len, r->body ? r->body : "");
}

/* Feed in in pieces of step bytes (0: whole) until the request is DONE or
 * ERROR or the input is gone; r is left as the request came out. */
static void
feed(struct httpreq *r, const char *in, size_t len, size_t step,
    struct outcome *o)
{
	enum httpreq_state st = HTTPREQ_MORE;
	size_t off = 0, k, used;

	while (off < len) {
		k = step == 0 || len - off < step ? len - off : step;
		st = httpreq_feed(r, in + off, k, &used);
		if (st != HTTPREQ_MORE) {
			off += used;
			break;
		}
		if (!ok(used == k, "MORE takes all %zu bytes", k))
			break;
		off += used;
	}
	describe(r, st, off, o);
}

/* Read the first request of in with lim whole into r, then byte by byte
 * and 7 bytes at a time: all three must come out the same. */
static void
read1(struct httpreq *r, const struct httpreq_limits *lim, const char *in,
    size_t len, const char *name, struct outcome *o)
{
	static const size_t steps[] = { 1, 7 };
	struct httpreq r2;
	struct outcome other;
	size_t i;

	if (httpreq_init(r, lim) < 0)
		bail_out("httpreq_init: out of memory");
	feed(r, in, len, 0, o);
	for (i = 0; i < sizeof steps / sizeof *steps; i++) {
		if (httpreq_init(&r2, lim) < 0)
			bail_out("httpreq_init: out of memory");
		feed(&r2, in, len, steps[i], &other);
		httpreq_free(&r2);
		is_str(other.text, o->text,
		    "%s: %zu-byte pieces read as the whole", name, steps[i]);
	}
}

#define S(lit) lit, sizeof lit - 1

static void
refused(const struct httpreq_limits *lim, const char *in, size_t len,
    int status, const char *why, const char *name)
{
	struct httpreq r;
	struct outcome o;
	char want[200];

	read1(&r, lim, in, len, name, &o);
	snprintf(want, sizeof want, "ERROR %d %s", status, why);
	is_str(o.text, want, "%s: refused", name);
	httpreq_free(&r);
}

static void
accepted(const struct httpreq_limits *lim, const char *in, size_t len,
    const char *want, const char *name)
{
	struct httpreq r;
	struct outcome o;

	read1(&r, lim, in, len, name, &o);
	is_str(o.text, want, "%s: read", name);
	httpreq_free(&r);
}

static void
test_curl_get(void)
{
	static const char in[] = "GET /api/v1/stats?class=c1&x=%41 HTTP/1.1\r\n"
	    "Host: 127.0.0.1:8000\r\nUser-Agent: curl/8.5.0\r\n"
	    "Accept: */*\r\n\r\n";
	struct httpreq r;
	struct outcome o;

	read1(&r, &deflim, S(in), "curl GET", &o);
	is_int(o.st, HTTPREQ_DONE, "curl GET: done");
	is_int(o.used, sizeof in - 1, "curl GET: all bytes used");
	is_str(r.method, "GET", "curl GET: method");
	is_str(r.target, "/api/v1/stats?class=c1&x=%41", "curl GET: target");
	is_str(r.path, "/api/v1/stats", "curl GET: path");
	is_str(r.query, "class=c1&x=%41", "curl GET: query as sent");
	is_int(r.nheaders, 3, "curl GET: 3 header fields");
	is_str(httpreq_header(&r, "host"), "127.0.0.1:8000",
	    "curl GET: header names in any case");
	is_str(httpreq_header(&r, "USER-AGENT"), "curl/8.5.0",
	    "curl GET: User-Agent");
	ok(httpreq_header(&r, "Content-Type") == NULL,
	    "curl GET: a missing header is NULL");
	ok(r.body == NULL && r.body_len == 0, "curl GET: no body");
	is_int(r.keep_alive, 1, "curl GET: HTTP/1.1 keeps alive");
	is_int(r.upgrade, 0, "curl GET: no upgrade");
	is_int(r.http_minor, 1, "curl GET: HTTP/1.1");
	httpreq_free(&r);
}

static void
test_browser_post(void)
{
	static const char in[] = "POST /api/v1/events HTTP/1.1\r\n"
	    "Host: lab.example.org\r\nConnection: keep-alive\r\n"
	    "Content-Length: 27\r\n"
	    "sec-ch-ua-platform: \"Linux\"\r\n"
	    "Authorization: Bearer tok-1\r\n"
	    "User-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n"
	    "Content-Type: application/json\r\nAccept: */*\r\n"
	    "Origin: https://hub.example.org\r\n"
	    "Accept-Encoding: gzip, deflate, br\r\n"
	    "\r\n"
	    "[{\"eventType\":\"help\",\"x\":1}";
	struct httpreq r;
	struct outcome o;
	struct httpreq_limits lim = { 4096, 100, 20 };

	read1(&r, &lim, S(in), "fetch POST", &o);
	is_int(o.st, HTTPREQ_DONE, "fetch POST: done");
	is_int(o.used, sizeof in - 1, "fetch POST: all bytes used");
	is_str(r.method, "POST", "fetch POST: method");
	is_str(r.path, "/api/v1/events", "fetch POST: path");
	ok(r.query == NULL, "fetch POST: no query");
	is_int(r.body_len, 27, "fetch POST: body length");
	is_str(r.body, "[{\"eventType\":\"help\",\"x\":1}",
	    "fetch POST: body, NUL-terminated");
	is_str(httpreq_header(&r, "authorization"), "Bearer tok-1",
	    "fetch POST: Authorization");
	is_int(r.nheaders, 10, "fetch POST: 10 header fields");
	httpreq_free(&r);
}

static void
test_forms(void)
{
	accepted(&deflim, S("GET /a%20b/%2Fc?q=%00 HTTP/1.1\r\n\r\n"),
	    "DONE used=34 GET /a%20b/%2Fc?q=%00 path=/a b//c query=q=%00 "
	    "minor=1 ka=1 up=0 body=0:", "percent-decoded path, query as sent");
	accepted(&deflim, S("GET http://h.example:80/x/y?z HTTP/1.1\r\n\r\n"),
	    "DONE used=42 GET http://h.example:80/x/y?z path=/x/y query=z "
	    "minor=1 ka=1 up=0 body=0:", "absolute-form target");
	accepted(&deflim, S("GET http://h.example HTTP/1.1\r\n\r\n"),
	    "DONE used=33 GET http://h.example path=/ query=(none) "
	    "minor=1 ka=1 up=0 body=0:", "absolute-form with no path");
	accepted(&deflim, S("OPTIONS * HTTP/1.1\r\n\r\n"),
	    "DONE used=22 OPTIONS * path=* query=(none) minor=1 ka=1 up=0 "
	    "body=0:", "asterisk-form");
	accepted(&deflim, S("GET /?#f HTTP/1.1\r\n\r\n"),
	    "DONE used=21 GET /?#f path=/ query= minor=1 ka=1 up=0 body=0:",
	    "empty query, fragment left out");
	accepted(&deflim, S("GET / HTTP/1.0\r\n\r\n"),
	    "DONE used=18 GET / path=/ query=(none) minor=0 ka=0 up=0 body=0:",
	    "HTTP/1.0 closes");
	accepted(&deflim, S("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
	    "DONE used=42 GET / path=/ query=(none) minor=0 ka=1 up=0 "
	    "[Connection: keep-alive] body=0:", "HTTP/1.0 keep-alive");
	accepted(&deflim, S("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"),
	    "DONE used=37 GET / path=/ query=(none) minor=1 ka=0 up=0 "
	    "[Connection: close] body=0:", "HTTP/1.1 Connection: close");
	accepted(&deflim, S("GET / HTTP/1.1\r\nX-A:   a b \t \r\nX-B:\r\n"
	    "x-c:c\r\n\r\n"),
	    "DONE used=46 GET / path=/ query=(none) minor=1 ka=1 up=0 "
	    "[X-A: a b] [X-B: ] [x-c: c] body=0:",
	    "white space around values dropped, empty value kept");
	accepted(&deflim, S("\r\n\r\nGET / HTTP/1.1\r\n\r\n"),
	    "DONE used=22 GET / path=/ query=(none) minor=1 ka=1 up=0 body=0:",
	    "empty lines before a request");
	accepted(&deflim, S("GET / HTTP/1.1\nHost: x\n\n"),
	    "DONE used=24 GET / path=/ query=(none) minor=1 ka=1 up=0 "
	    "[Host: x] body=0:", "bare LF line ends");
	accepted(&deflim, S("DELETE /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
	    "DONE used=41 DELETE /x path=/x query=(none) minor=1 ka=1 up=0 "
	    "[Content-Length: 0] body=0:", "Content-Length: 0 is no body");
}

static void
test_chunked(void)
{
	static const char in[] = "POST /e HTTP/1.1\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n"
	    "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
	struct httpreq r;
	struct outcome o;

	read1(&r, &deflim, S(in), "chunked", &o);
	is_int(o.st, HTTPREQ_DONE, "chunked: done");
	is_int(o.used, sizeof in - 1, "chunked: all bytes used");
	is_str(r.body, "hello world", "chunked: body joined");
	is_int(r.body_len, 11, "chunked: body length");
	is_int(r.nheaders, 1, "chunked: trailers are not kept");
	ok(httpreq_header(&r, "X-Trailer") == NULL, "chunked: no trailer");
	httpreq_free(&r);

	accepted(&deflim, S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	    "\r\n0\r\n\r\n"), "DONE used=52 POST / path=/ query=(none) minor=1 "
	    "ka=1 up=0 [Transfer-Encoding: chunked] body=0:",
	    "an empty chunked body");
}

static void
test_trailers(void)
{
	/* a trailer named like a framing field frames nothing */
	accepted(&deflim, S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	    "\r\n1\r\nx\r\n0\r\nTransfer-Encoding: identity\r\n"
	    "Content-Length: 9\r\n\r\n"), "DONE used=106 POST / path=/ "
	    "query=(none) minor=1 ka=1 up=0 [Transfer-Encoding: chunked] "
	    "body=1:x", "framing fields as trailers are ignored");
	refused(&deflim, S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	    "\r\n0\r\nTransfer-Encoding: a\0b\r\n\r\n"), 400,
	    "malformed chunked body", "NUL in a trailer after Transfer-Encoding");
}

static void
test_head_read(void)
{
	static const char in[] = "POST /e HTTP/1.1\r\nExpect: 100-continue\r\n"
	    "Content-Length: 4\r\n\r\nbody";
	struct httpreq r;
	size_t used, head = sizeof in - 1 - 4;

	if (httpreq_init(&r, &deflim) < 0)
		bail_out("httpreq_init: out of memory");
	is_int(httpreq_head_read(&r), 0, "head read: not before any byte");
	is_int(httpreq_feed(&r, in, head - 1, &used), HTTPREQ_MORE,
	    "head read: all but the last LF");
	is_int(httpreq_head_read(&r), 0, "head read: not yet");
	is_int(httpreq_feed(&r, in + head - 1, 1, &used), HTTPREQ_MORE,
	    "head read: the head, no body yet");
	is_int(httpreq_head_read(&r), 1, "head read: now");
	is_str(httpreq_header(&r, "expect"), "100-continue",
	    "head read: fields readable before the body");
	is_str(r.path, "/e", "head read: path too");
	is_int(httpreq_feed(&r, in + head, 4, &used), HTTPREQ_DONE,
	    "head read: the body");
	is_str(r.body, "body", "head read: body");
	httpreq_reset(&r);
	is_int(httpreq_head_read(&r), 0, "head read: 0 after reset");
	is_int(httpreq_feed(&r, S("POST / HTTP/1.1\r\nContent-Length: 999\r\n"
	    "\r\n"), &used), HTTPREQ_ERROR, "head read: a refused head");
	is_int(httpreq_head_read(&r), 0, "head read: 0 when refused");
	httpreq_free(&r);
}

static void
test_body_bytes(void)
{
	static const char in[] = "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"
	    "a\0b\nc";
	struct httpreq r;
	struct outcome o;

	read1(&r, &deflim, S(in), "binary body", &o);
	is_int(o.st, HTTPREQ_DONE, "binary body: done");
	is_int(r.body_len, 5, "binary body: NUL and LF kept");
	ok(r.body != NULL && memcmp(r.body, "a\0b\nc", 6) == 0,
	    "binary body: bytes and a NUL after them");
	httpreq_free(&r);
}

static void
test_pipelined(void)
{
	static const char in[] = "POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\n"
	    "abcGET /b?x HTTP/1.1\r\n\r\n"
	    "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "2\r\nhi\r\n0\r\n\r\nGET /d HTTP/1.1\r\n\r\n";
	static const char *paths[] = { "/a", "/b", "/c", "/d" };
	static const char *bodies[] = { "abc", NULL, "hi", NULL };
	struct httpreq r;
	enum httpreq_state st;
	size_t off = 0, used, step, k;
	int n, fed;

	for (step = 0; step <= 5; step += 5) {
		if (httpreq_init(&r, &deflim) < 0)
			bail_out("httpreq_init: out of memory");
		n = 0;
		off = 0;
		while (off < sizeof in - 1 && n < 4) {
			k = step == 0 || sizeof in - 1 - off < step ?
			    sizeof in - 1 - off : step;
			st = httpreq_feed(&r, in + off, k, &used);
			off += used;
			if (st == HTTPREQ_ERROR)
				break;
			if (st == HTTPREQ_MORE)
				continue;
			is_str(r.path, paths[n], "pipelined (step %zu): "
			    "request %d path", step, n + 1);
			if (bodies[n])
				is_str(r.body, bodies[n], "pipelined (step %zu): "
				    "request %d body", step, n + 1);
			else
				ok(r.body == NULL, "pipelined (step %zu): "
				    "request %d has no body", step, n + 1);
			/* once DONE, more bytes wait for a reset */
			fed = off < sizeof in - 1;
			if (fed) {
				is_int(httpreq_feed(&r, in + off, 1, &used),
				    HTTPREQ_DONE, "pipelined (step %zu): DONE "
				    "until reset", step);
				is_int(used, 0, "pipelined (step %zu): "
				    "nothing taken before reset", step);
			}
			httpreq_reset(&r);
			is_int(httpreq_started(&r), 0,
			    "pipelined (step %zu): reset starts afresh", step);
			n++;
		}
		is_int(n, 4, "pipelined (step %zu): 4 requests", step);
		is_int(off, sizeof in - 1, "pipelined (step %zu): every byte "
		    "used", step);
		httpreq_free(&r);
	}
}

static void
test_started(void)
{
	static const char in[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET";
	struct httpreq r;
	size_t used;

	if (httpreq_init(&r, &deflim) < 0)
		bail_out("httpreq_init: out of memory");
	is_int(httpreq_started(&r), 0, "started: 0 on a new connection");
	is_int(httpreq_feed(&r, in, 10, &used), HTTPREQ_MORE,
	    "started: part of a request");
	is_int(httpreq_started(&r), 10, "started: 10 bytes in");
	is_int(httpreq_feed(&r, in + 10, sizeof in - 11, &used), HTTPREQ_DONE,
	    "started: the rest");
	is_int(used, 17, "started: the request ends before the next");
	is_int(httpreq_started(&r), 27, "started: the whole request");
	httpreq_reset(&r);
	is_int(httpreq_started(&r), 0, "started: 0 after reset");
	is_int(httpreq_feed(&r, in + 27, 3, &used), HTTPREQ_MORE,
	    "started: the next request begins");
	is_int(httpreq_started(&r), 3, "started: 3 bytes of the next");
	is_int(httpreq_feed(&r, in, 0, &used), HTTPREQ_MORE,
	    "started: feeding nothing is harmless");
	is_int(used, 0, "started: and takes nothing");
	httpreq_free(&r);
	httpreq_free(&r);
	ok(1, "httpreq_free twice is harmless");
}

static void
test_upgrade(void)
{
	static const char in[] = "GET /ws?class=c1 HTTP/1.1\r\n"
	    "Host: localhost:8080\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n\r\n"
	    "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
	static const char head_end[] = "Sec-WebSocket-Version: 13\r\n\r\n";
	size_t head = (size_t)(strstr(in, head_end) - in) + sizeof head_end - 1;
	struct httpreq r;
	struct outcome o;

	read1(&r, &deflim, S(in), "websocket upgrade", &o);
	is_int(o.st, HTTPREQ_DONE, "upgrade: done");
	is_int(o.used, head, "upgrade: used ends at the head");
	is_int(r.upgrade, 1, "upgrade: flagged");
	is_str(httpreq_header(&r, "upgrade"), "websocket", "upgrade: field");
	is_str(r.path, "/ws", "upgrade: path");
	httpreq_free(&r);
}

static void
test_limits(void)
{
	struct httpreq_limits lim = { 64, 10, 3 };
	struct httpreq_limits nobody = { 1024, 0, 10 };
	struct httpreq r;
	char in[200];
	size_t used;

	/* 64 bytes exactly: the head fits */
	snprintf(in, sizeof in, "GET /%s HTTP/1.1\r\n\r\n",
	    "0123456789012345678901234567890123456789012345");
	is_int(strlen(in), 64, "limits: a 64-byte head");
	accepted(&lim, in, strlen(in), "DONE used=64 GET "
	    "/0123456789012345678901234567890123456789012345 "
	    "path=/0123456789012345678901234567890123456789012345 "
	    "query=(none) minor=1 ka=1 up=0 body=0:", "head of max_head");
	snprintf(in, sizeof in, "GET /%s HTTP/1.1\r\n\r\n",
	    "01234567890123456789012345678901234567890123456");
	refused(&lim, in, strlen(in), 431, "request head too large",
	    "head of max_head + 1");
	refused(&lim, S("GET / HTTP/1.1\r\nX-Long: 0123456789012345678901234"
	    "56789012345678901234567890123456789\r\n\r\n"), 431,
	    "request head too large", "a long header");
	refused(&lim, S("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"
	    "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"
	    "\r\n\r\n\r\n\r\n"), 431, "request head too large",
	    "endless empty lines");
	accepted(&lim, S("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"),
	    "DONE used=36 GET / path=/ query=(none) minor=1 ka=1 up=0 "
	    "[A: 1] [B: 2] [C: 3] body=0:", "max_headers fields");
	refused(&lim, S("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD\r\n"), 431,
	    "too many header fields", "max_headers + 1 fields");

	accepted(&lim, S("PUT / HTTP/1.1\r\nContent-Length: 10\r\n\r\n"
	    "0123456789"), "DONE used=48 PUT / path=/ query=(none) minor=1 "
	    "ka=1 up=0 [Content-Length: 10] body=10:0123456789",
	    "body of max_body");
	/* refused on the head alone, before any body byte */
	refused(&lim, S("PUT / HTTP/1.1\r\nContent-Length: 11\r\n\r\n"), 413,
	    "request body too large", "Content-Length of max_body + 1");
	refused(&lim, S("PUT / HTTP/1.1\r\nContent-Length: "
	    "99999999999999999999999\r\n\r\n"), 400, "invalid Content-Length",
	    "Content-Length past 64 bits");
	refused(&lim, S("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5\r\n01234\r\n6\r\n"), 413, "request body too large",
	    "chunks past max_body, refused at the chunk size");
	accepted(&lim, S("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n"),
	    "DONE used=71 PUT / path=/ query=(none) minor=1 ka=1 up=0 "
	    "[Transfer-Encoding: chunked] body=10:0123456789",
	    "chunks up to max_body");
	refused(&lim, S("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "1;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaa\r\n"), 413, "request body too large",
	    "endless chunk extension");
	refused(&nobody, S("POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx"),
	    413, "request body not allowed", "a body when max_body is 0");
	refused(&nobody, S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	    "\r\n0\r\n\r\n"), 413, "request body not allowed",
	    "chunked when max_body is 0");
	accepted(&nobody, S("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
	    "DONE used=38 POST / path=/ query=(none) minor=1 ka=1 up=0 "
	    "[Content-Length: 0] body=0:", "no body when max_body is 0");

	lim.max_head = 0;
	is_int(httpreq_init(&r, &lim), -1, "limits: max_head 0 refused");
	lim.max_head = 10;
	lim.max_headers = 0;
	is_int(httpreq_init(&r, &lim), -1, "limits: max_headers 0 refused");

	/* a refused head is refused however it goes on */
	if (httpreq_init(&r, &deflim) < 0)
		bail_out("httpreq_init: out of memory");
	is_int(httpreq_feed(&r, S("GET /\x01"), &used), HTTPREQ_ERROR,
	    "limits: ERROR");
	is_int(httpreq_feed(&r, S("GET / HTTP/1.1\r\n\r\n"), &used),
	    HTTPREQ_ERROR, "limits: ERROR until reset");
	httpreq_reset(&r);
	is_int(httpreq_feed(&r, S("GET / HTTP/1.1\r\n\r\n"), &used),
	    HTTPREQ_DONE, "limits: a reset connection reads again");
	httpreq_free(&r);
}

static void
test_hostile(void)
{
	refused(&deflim, S("GET /\0 HTTP/1.1\r\n\r\n"), 400,
	    "NUL byte in request head", "NUL in the request line");
	refused(&deflim, S("GET\0/ HTTP/1.1\r\n\r\n"), 400,
	    "NUL byte in request head", "NUL in the method");
	refused(&deflim, S("GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n"), 400,
	    "NUL byte in request head", "NUL in a header value");
	refused(&deflim, S("GET / HTTP/1.1\r\nX\0A: ab\r\n\r\n"), 400,
	    "NUL byte in request head", "NUL in a header name");
	refused(&deflim, S("GET / HTTP/1.1\r\nX-A: a\x01" "b\r\n\r\n"), 400,
	    "control character in request head", "control byte in a value");
	refused(&deflim, S("GET / HTTP/1.1\r\nX-A: a\x7f\r\n\r\n"), 400,
	    "control character in request head", "DEL in a value");
	refused(&deflim, S("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), 400,
	    "control character in request head", "a TLS ClientHello");
	refused(&deflim, S("GET /%00 HTTP/1.1\r\n\r\n"), 400,
	    "NUL byte in path", "%00 in the path");
	refused(&deflim, S("GET /a%0 HTTP/1.1\r\n\r\n"), 400,
	    "malformed percent-encoding in path", "% and one digit");
	refused(&deflim, S("GET /a%zz HTTP/1.1\r\n\r\n"), 400,
	    "malformed percent-encoding in path", "% and no hex digits");
	refused(&deflim, S("GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n"), 400,
	    "obsolete line folding", "obs-fold");
	refused(&deflim, S("GET / HTTP/1.1\r\n Host: x\r\n\r\n"), 400,
	    "white space before the first header field",
	    "white space before the first field");
	refused(&deflim, S("GET / HTTP/1.1\r\nHost : x\r\n\r\n"), 400,
	    "invalid header field", "white space before the colon");
	refused(&deflim, S("GET / HTTP/1.1\r\nHo(st: x\r\n\r\n"), 400,
	    "invalid header field", "not a token");
	refused(&deflim, S("GET / HTTP/1.1\r\nHost: x\r\r\n\r\n"), 400,
	    "CR without LF in request head", "CR without LF");
	refused(&deflim, S("GET /a b HTTP/1.1\r\n\r\n"), 400,
	    "malformed request line", "space in the target");
	refused(&deflim, S("GET x HTTP/1.1\r\n\r\n"), 400,
	    "malformed request target", "a target that is not a path");
	refused(&deflim, S("GET / HTTX/1.1\r\n\r\n"), 400,
	    "malformed request line", "not HTTP");
	refused(&deflim, S("get / HTTP/1.1\r\n\r\n"), 400,
	    "malformed request line", "lower-case method");
	refused(&deflim, S("{\"eventType\":1}"), 400,
	    "malformed request line", "a JSON body where a request should be");
}

static void
test_versions_methods(void)
{
	refused(&deflim, S("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 505,
	    "HTTP/2 not supported", "the HTTP/2 preface");
	refused(&deflim, S("GET / HTTP/2.0\r\n\r\n"), 505,
	    "HTTP version not supported", "HTTP/2.0 in a request line");
	refused(&deflim, S("GET / HTTP/0.9\r\n\r\n"), 505,
	    "HTTP version not supported", "HTTP/0.9 version");
	refused(&deflim, S("GET /\r\n\r\n"), 505,
	    "HTTP version not supported", "an HTTP/0.9 request");
	refused(&deflim, S("FOO / HTTP/1.1\r\n\r\n"), 501,
	    "method not implemented", "an unknown method");
	refused(&deflim, S("GETX / HTTP/1.1\r\n\r\n"), 501,
	    "method not implemented", "a longer method");
	refused(&deflim, S("CONNECT h.example:443 HTTP/1.1\r\n\r\n"), 501,
	    "method not implemented", "CONNECT");
	refused(&deflim, S("TRACE / HTTP/1.1\r\n\r\n"), 501,
	    "method not implemented", "TRACE");
	refused(&deflim, S("PROPFIND / HTTP/1.1\r\n\r\n"), 501,
	    "method not implemented", "WebDAV");
	accepted(&deflim, S("HEAD / HTTP/1.1\r\n\r\n"),
	    "DONE used=19 HEAD / path=/ query=(none) minor=1 ka=1 up=0 body=0:",
	    "HEAD");
	accepted(&deflim, S("PATCH /p HTTP/1.1\r\n\r\n"),
	    "DONE used=21 PATCH /p path=/p query=(none) minor=1 ka=1 up=0 "
	    "body=0:", "PATCH");
}

static void
test_smuggling(void)
{
	refused(&deflim, S("POST / HTTP/1.1\r\nContent-Length: 1\r\n"
	    "Content-Length: 1\r\n\r\nx"), 400, "duplicate Content-Length",
	    "Content-Length twice");
	refused(&deflim, S("POST / HTTP/1.1\r\nContent-Length: 1\r\n"
	    "content-length: 2\r\n\r\nxy"), 400, "duplicate Content-Length",
	    "Content-Length twice, different");
	refused(&deflim, S("POST / HTTP/1.1\r\nContent-Length: 1\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400,
	    "Content-Length with Transfer-Encoding", "CL then TE");
	refused(&deflim, S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	    "Content-Length: 1\r\n\r\n0\r\n\r\n"), 400,
	    "Content-Length with Transfer-Encoding", "TE then CL");
	refused(&deflim, S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400,
	    "duplicate Transfer-Encoding", "TE twice");
	refused(&deflim, S("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n"
	    "\r\n"), 400, "unsupported Transfer-Encoding", "TE not chunked");
	refused(&deflim, S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, "
	    "identity\r\n\r\n0\r\n\r\n"), 400, "unsupported Transfer-Encoding",
	    "TE ending in identity");
	refused(&deflim, S("POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\nx"),
	    400, "invalid Content-Length", "signed Content-Length");
	refused(&deflim, S("POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\nx"),
	    400, "invalid Content-Length", "Content-Length list");
	refused(&deflim, S("POST / HTTP/1.1\r\nContent-Length: 1 1\r\n\r\nx"),
	    400, "invalid Content-Length", "Content-Length with a space");
	refused(&deflim, S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	    "\r\n1x\r\nx\r\n0\r\n\r\n"), 400, "invalid chunk size",
	    "a bad chunk size");
	refused(&deflim, S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	    "\r\n1\r\nxy\r\n0\r\n\r\n"), 400, "malformed chunked body",
	    "a chunk longer than its size");
	refused(&deflim, S("POST / HTTP/1.1\r\nContent-Length: 1\r\n"
	    "X: a\r\n\tContent-Length: 5\r\n\r\nx"), 400,
	    "obsolete line folding", "a field hidden in a fold");
	/* what an unstrict http_parser would let through */
	refused(&deflim, S("POST / HTTP/1.1\r\nX: a\rContent-Length: 1\r\n"
	    "\r\nx"), 400, "CR without LF in request head",
	    "a field after a lone CR");
	refused(&deflim, S("GET / HXXP/1.1\r\n\r\n"), 400,
	    "malformed request line", "HXXP");
	refused(&deflim, S("GET / HTTP/1.1 \r\n\r\n"), 400,
	    "malformed request line", "a space after the version");
	refused(&deflim, S("GET  / HTTP/1.1\r\n\r\n"), 400,
	    "malformed request line", "two spaces before the target");
	refused(&deflim, S("GET /  HTTP/1.1\r\n\r\n"), 400,
	    "malformed request line", "two spaces after the target");
	refused(&deflim, S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	    "\r\n5\r\nhelloXY0\r\n\r\n"), 400, "malformed chunked body",
	    "junk for a chunk's CRLF");
	refused(&deflim, S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	    "\r\n5\nhello\r\n0\r\n\r\n"), 400, "invalid chunk size",
	    "a bare LF after a chunk size");
	refused(&deflim, S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	    "\r\n5 \r\nhello\r\n0\r\n\r\n"), 400, "invalid chunk size",
	    "a space after a chunk size");
	refused(&deflim, S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	    "\r\n0\r\nX Y: z\r\n\r\n"), 400, "malformed chunked body",
	    "a space in a trailer name");
	refused(&deflim, S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	    "\r\n1;a=\x01\r\nx\r\n0\r\n\r\n"), 400,
	    "malformed chunked body", "a control byte in a chunk extension");
	refused(&deflim, S("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	    "\r\n10000000000000000\r\n"), 400, "invalid chunk size",
	    "a chunk size past 64 bits");
	refused(&deflim, S("GET / HTTP/1.1\r\n: x\r\n\r\n"), 400,
	    "invalid header field", "an empty field name");
}

int
main(void)
{
	test_curl_get();
	test_browser_post();
	test_forms();
	test_chunked();
	test_trailers();
	test_head_read();
	test_body_bytes();
	test_pipelined();
	test_started();
	test_upgrade();
	test_limits();
	test_hostile();
	test_versions_methods();
	test_smuggling();
	return done_testing();
}
