/* test_wsclient.c: the client side of notify's streams: the request, the
 * answer's head, body framing, Server-Sent Events, the WebSocket
 * handshake, and close frames through wslay on an in-memory connection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "tap.h"
#include "wsclient.h"

/* ---- the request ---- */

static void
test_request(void)
{
	struct wsc_req r = { .target = "/ws?class=A", .host = "h:1",
	    .agent = "t", .ws_key = "dGhlIHNhbXBsZSBub25jZQ==" };
	char *q;

	q = wsc_request(&r);
	is_str(q, "GET /ws?class=A HTTP/1.1\r\nHost: h:1\r\nUser-Agent: t\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n\r\n", "WebSocket request");
	free(q);
	r.ws_key = NULL;
	r.target = "/sse";
	r.last_id = "1-2";
	r.token = "tok";
	q = wsc_request(&r);
	is_str(q, "GET /sse HTTP/1.1\r\nHost: h:1\r\nUser-Agent: t\r\n"
	    "Accept: text/event-stream\r\nCache-Control: no-cache\r\n"
	    "Last-Event-ID: 1-2\r\nAuthorization: Bearer tok\r\n\r\n",
	    "SSE request with Last-Event-ID and a token");
	free(q);
}

/* ---- the head ---- */

static void
test_head(void)
{
	static const char ws[] = "HTTP/1.1 101 Switching Protocols\r\n"
	    "upgrade:  WebSocket \r\nConnection: keep-alive, Upgrade\r\n"
	    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\nrest";
	static const char sse[] = "HTTP/1.0 200 OK\nContent-Type: "
	    "text/event-stream\nTransfer-Encoding: gzip, Chunked\n\n";
	struct httpc_head h;
	char err[200];

	is_int(httpc_head_end(ws, 0, sizeof ws - 1), sizeof ws - 5,
	    "the head ends before its body");
	is_int(httpc_head_end(ws, 0, 40), 0, "not yet");
	is_int(httpc_head_end(sse, 0, sizeof sse - 1), sizeof sse - 1,
	    "bare LF heads end too");
	is_int(httpc_head_parse(ws, sizeof ws - 5, &h, err, sizeof err), 0,
	    "101 parsed");
	is_int(h.status, 101, "its status");
	ok(h.upgrade_ws && h.conn_upgrade && !h.conn_close && h.conn_keep_alive,
	    "Upgrade and Connection, case and blanks aside");
	ok(wsc_handshake_check(&h, "dGhlIHNhbXBsZSBub25jZQ==") == NULL,
	    "RFC 6455's example key and accept agree");
	is_str(wsc_handshake_check(&h, "AAAAAAAAAAAAAAAAAAAAAA=="),
	    "wrong Sec-WebSocket-Accept", "another key does not");
	h.conn_upgrade = 0;
	is_str(wsc_handshake_check(&h, "dGhlIHNhbXBsZSBub25jZQ=="),
	    "no Connection: Upgrade", "Connection checked");
	h.upgrade_ws = 0;
	is_str(wsc_handshake_check(&h, "dGhlIHNhbXBsZSBub25jZQ=="),
	    "no Upgrade: websocket", "Upgrade checked");

	is_int(httpc_head_parse(sse, sizeof sse - 1, &h, err, sizeof err), 0,
	    "SSE head parsed");
	ok(h.http10 && h.chunked && h.te && !h.has_length, "HTTP/1.0, chunked");
	is_str(h.ctype, "text/event-stream", "Content-Type");
	is_int(httpc_head_parse("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n",
	    38, &h, err, sizeof err), 0, "Content-Length parsed");
	ok(h.has_length && h.length == 12, "its length");
	httpc_head_parse("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 38, &h,
	    err, sizeof err);
	ok(!h.has_length, "a negative length is none");
	is_int(httpc_head_parse("SSH-2.0-OpenSSH\r\n\r\n", 19, &h, err,
	    sizeof err), -ERR_DATA, "not HTTP");
	is_str(err, "not an HTTP answer: SSH-2.0-OpenSSH", "said so");
	is_int(httpc_head_parse("HTTP/1.1 20 OK\r\n\r\n", 18, &h, err,
	    sizeof err), -ERR_DATA, "a two-digit status");
}

/* ---- bodies and SSE ---- */

struct got {
	char text[4][128];
	char event[4][32], id[4][32];
	int n, stop_at;
};

static int
on_event(void *arg, const char *data, size_t len, const char *event,
    const char *id)
{
	struct got *g = arg;

	if (g->n < 4) {
		snprintf(g->text[g->n], sizeof g->text[0], "%.*s", (int)len,
		    data);
		snprintf(g->event[g->n], sizeof g->event[0], "%s",
		    event ? event : "-");
		snprintf(g->id[g->n], sizeof g->id[0], "%s", id ? id : "-");
	}
	g->n++;
	return g->n == g->stop_at ? 7 : 0;
}

/* Feed body one byte at a time and all at once: the same events. */
static void
feed_both(const char *head, const char *body, size_t len, int want_rc,
    struct got *g, const char *name)
{
	struct httpc_head h;
	struct httpc_body b;
	struct wsc_sse s = { 0 };
	char err[200] = "";
	size_t i;
	int rc = 0, pass;

	for (pass = 0; pass < 2; pass++) {
		memset(g, 0, sizeof *g);
		g->stop_at = -1;
		httpc_head_parse(head, strlen(head), &h, err, sizeof err);
		httpc_body_start(&b, &h);
		wsc_sse_init(&s, on_event, g, 64);
		if (pass == 0) {
			rc = httpc_body_feed(&b, body, len, wsc_sse_feed, &s,
			    err, sizeof err);
		} else {
			for (i = 0, rc = 0; i < len && rc == 0; i++)
				rc = httpc_body_feed(&b, body + i, 1,
				    wsc_sse_feed, &s, err, sizeof err);
		}
		if (!is_int(rc, want_rc, "%s: %s", name,
		    pass ? "byte by byte" : "at once"))
			diag("    %s", err);
	}
	wsc_sse_free(&s);
}

static void
test_sse(void)
{
	static const char chunked[] = "HTTP/1.1 200 OK\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n";
	static const char toend[] = "HTTP/1.1 200 OK\r\n\r\n";
	static const char body[] =
	    "18;ext=1\r\n\xEF\xBB\xBF: hi\r\ndata: {\"a\":1}\n\n\r\n"
	    "2b\r\nid: 5-0\revent: message\r\ndata:x\r\ndata: y\r\n\r\n\r\n"
	    "0\r\nTrailer: t\r\n\r\n";
	struct got g;
	struct httpc_head h;
	struct httpc_body b;
	struct wsc_sse s = { 0 };
	char err[200] = "", big[100];

	feed_both(chunked, body, sizeof body - 1, 1, &g, "chunked stream");
	is_int(g.n, 2, "two events");
	is_str(g.text[0], "{\"a\":1}", "the first, after a BOM and a comment");
	is_str(g.event[0], "-", "no event type");
	is_str(g.text[1], "x\ny", "data lines joined");
	is_str(g.event[1], "message", "its event type");
	is_str(g.id[1], "5-0", "its id, lines ended by CR");

	feed_both(toend, "data: 1\n\ndata: 2\n\n", 18, 0, &g, "to the end");
	is_int(g.n, 2, "both events");
	is_str(g.id[1], "-", "no id");

	feed_both(chunked, "5\r\ndata:\r\nX", 11, -ERR_DATA, &g,
	    "no CRLF after a chunk");
	feed_both(chunked, "zz\r\n", 4, -ERR_DATA, &g, "a bad chunk size");

	httpc_head_parse(toend, strlen(toend), &h, err, sizeof err);
	httpc_body_start(&b, &h);
	wsc_sse_init(&s, on_event, &g, 64);
	memset(&g, 0, sizeof g);
	memset(big, 'a', sizeof big);
	is_int(httpc_body_feed(&b, big, sizeof big, wsc_sse_feed, &s, err,
	    sizeof err), -ERR_DATA, "a line past max");
	is_str(err, "an SSE line of more than 64 bytes", "said so");
	ok(httpc_body_can_end(&b), "a stream to the end may end anywhere");

	wsc_sse_init(&s, on_event, &g, 64);
	memset(&g, 0, sizeof g);
	g.stop_at = 1;
	is_int(wsc_sse_feed(&s, "data: 1\n\ndata: 2\n\n", 18, err,
	    sizeof err), 7, "the callback stops the feed");
	is_int(g.n, 1, "after one event");
	wsc_sse_free(&s);

	httpc_head_parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", 37, &h,
	    err, sizeof err);
	httpc_body_start(&b, &h);
	ok(b.mode == HTTPC_LENGTH && !httpc_body_can_end(&b), "a length to read");
	httpc_head_parse("HTTP/1.1 204 No Content\r\n\r\n", 27, &h, err,
	    sizeof err);
	httpc_body_start(&b, &h);
	ok(b.mode == HTTPC_DONE, "204 has no body");
}

/* ---- WebSocket, on an in-memory connection ---- */

struct pipe {
	uint8_t in[512];
	size_t in_len, in_off;
	uint8_t out[512];
	size_t out_len;
	char text[64];
};

static ssize_t
mem_recv(void *arg, uint8_t *buf, size_t len)
{
	struct pipe *p = arg;
	size_t n = p->in_len - p->in_off;

	if (n > len)
		n = len;
	memcpy(buf, p->in + p->in_off, n);
	p->in_off += n;
	return (ssize_t)n;
}

static ssize_t
mem_send(void *arg, const uint8_t *data, size_t len, int more)
{
	struct pipe *p = arg;

	(void)more;
	if (len > sizeof p->out - p->out_len)
		len = sizeof p->out - p->out_len;
	memcpy(p->out + p->out_len, data, len);
	p->out_len += len;
	return (ssize_t)len;
}

static void
mem_text(void *arg, const char *msg, size_t len)
{
	struct pipe *p = arg;

	snprintf(p->text, sizeof p->text, "%.*s", (int)len, msg);
}

static const struct wsc_cb mem_cb = { mem_recv, mem_send, mem_text, NULL };

/* The server's frames in, the client's answer out, unmasked. */
static void
ws_run(struct pipe *p, struct wsc *w, const void *frames, size_t len)
{
	memset(p, 0, sizeof *p);
	memcpy(p->in, frames, len);
	p->in_len = len;
	if (wsc_open(w, &mem_cb, p, 1024) < 0)
		bail_out("wsc_open");
	wslay_event_recv(w->ctx);
	wslay_event_send(w->ctx);
}

/* The close code of the client's (masked) close frame, or -1. */
static int
sent_close(const struct pipe *p)
{
	if (p->out_len < 8 || p->out[0] != 0x88 || (p->out[1] & 0x80) == 0)
		return p->out_len >= 6 && p->out[0] == 0x88 ? 0 : -1;
	return (p->out[6] ^ p->out[2]) << 8 | (p->out[7] ^ p->out[3]);
}

static void
test_ws(void)
{
	static const uint8_t text_close[] = { 0x81, 2, 'h', 'i',
	    0x88, 7, 0x03, 0xf5, 's', 'l', 'o', '\n', 'w' };
	static const uint8_t refused[] = { 0x88, 2, 0x11, 0x31 };
	static const uint8_t bare[] = { 0x88, 0 };
	struct pipe p;
	struct wsc w;
	char key[WSC_KEY_SIZE], err[100];

	is_int(wsc_key(key, err, sizeof err), 0, "a key");
	is_int(strlen(key), 24, "of 16 bytes in base64");

	ws_run(&p, &w, text_close, sizeof text_close);
	is_str(p.text, "hi", "a text message");
	ok(w.close_seen, "the close frame seen");
	is_int(w.close_code, 1013, "1013, which wslay itself refuses");
	is_str(w.close_reason, "slo w", "its reason, control characters "
	    "blanked");
	is_int(sent_close(&p), 1013, "the code echoed, masked");
	wsc_free(&w);

	ws_run(&p, &w, refused, sizeof refused);
	is_int(w.close_code, 4401, "4401");
	is_int(sent_close(&p), 4401, "echoed");
	wsc_free(&w);

	ws_run(&p, &w, bare, sizeof bare);
	is_int(w.close_code, 1005, "no code: 1005");
	is_int(sent_close(&p), 0, "a close without a code answers it");
	wsc_free(&w);
	ok(w.ctx == NULL, "freed");
	wsc_free(&w);
}

int
main(void)
{
	test_request();
	test_head();
	test_sse();
	test_ws();
	return done_testing();
}
