/* wsclient.c: the client side of notify's streams (wsclient.h): loadgen's
 * dashboards and the test tools speak them through this one copy. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <nettle/base64.h>
#include <nettle/sha1.h>

#include "err.h"
#include "wsclient.h"

#define WS_GUID		"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ---- the request ---- */

int
wsc_has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

char *
wsc_request(const struct wsc_req *r)
{
	const char *k = r->ws_key, *id = r->last_id, *t = r->token;
	char *req;

	if (asprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n"
	    "%s%s%s%s%s%s%s%s%s\r\n", r->target, r->host, r->agent,
	    k ? "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Key: " : "Accept: text/event-stream\r\n"
	    "Cache-Control: no-cache", k ? k : "",
	    k ? "\r\nSec-WebSocket-Version: 13\r\n" : "\r\n",
	    id ? "Last-Event-ID: " : "", id ? id : "", id ? "\r\n" : "",
	    t ? "Authorization: Bearer " : "", t ? t : "", t ? "\r\n" : "") < 0)
		return NULL;
	return req;
}

/* ---- Server-Sent Events ---- */

int
wsc_buf_add(struct wsc_buf *b, const void *p, size_t n, size_t max)
{
	size_t cap;
	char *np;

	if (n > max || b->len > max - n)
		return -ERR_DATA;
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((np = realloc(b->p, cap)) == NULL)
			return -ERR_OS;
		b->p = np;
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static int
sse_too_long(int rc, const char *what, size_t max, char *err, size_t errlen)
{
	if (rc == -ERR_OS)
		snprintf(err, errlen, "out of memory");
	else
		snprintf(err, errlen, "an SSE %s of more than %zu bytes", what,
		    max);
	return rc;
}

void
wsc_sse_init(struct wsc_sse *s, wsc_sse_fn fn, void *arg, size_t max)
{
	s->on_event = fn;
	s->arg = arg;
	s->max = max;
	s->line.len = s->data.len = 0;
	s->event[0] = s->id[0] = '\0';
	s->after_cr = 0;
	s->started = 0;
}

static int
sse_dispatch(struct wsc_sse *s)
{
	int rc = 0;

	if (s->data.len > 0) {
		/* the data lines were each followed by '\n': drop the last */
		s->data.p[--s->data.len] = '\0';
		rc = s->on_event(s->arg, s->data.p, s->data.len,
		    *s->event ? s->event : NULL, *s->id ? s->id : NULL);
	}
	s->data.len = 0;
	s->event[0] = '\0';
	return rc;
}

static int
sse_line(struct wsc_sse *s, const char *line, size_t len, char *err,
    size_t errlen)
{
	const char *value, *colon;
	size_t nlen, vlen;
	int rc;

	if (!s->started) {
		s->started = 1;
		if (len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
			line += 3;
			len -= 3;
		}
	}
	if (len == 0)
		return sse_dispatch(s);
	if (line[0] == ':')
		return 0;		/* a comment: the heartbeat */
	colon = memchr(line, ':', len);
	nlen = colon ? (size_t)(colon - line) : len;
	value = colon ? colon + 1 : "";
	vlen = colon ? len - nlen - 1 : 0;
	if (vlen > 0 && *value == ' ') {
		value++;
		vlen--;
	}
	if (nlen == 4 && memcmp(line, "data", 4) == 0) {
		if ((rc = wsc_buf_add(&s->data, value, vlen, s->max)) < 0 ||
		    (rc = wsc_buf_add(&s->data, "\n", 1, s->max)) < 0)
			return sse_too_long(rc, "event", s->max, err, errlen);
	} else if (nlen == 5 && memcmp(line, "event", 5) == 0) {
		snprintf(s->event, sizeof s->event, "%.*s", (int)vlen, value);
	} else if (nlen == 2 && memcmp(line, "id", 2) == 0 &&
	    memchr(value, '\0', vlen) == NULL) {
		snprintf(s->id, sizeof s->id, "%.*s", (int)vlen, value);
	}
	/* "retry" does not concern a client that reconnects on its own */
	return 0;
}

int
wsc_sse_feed(void *sse, const char *p, size_t n, char *err, size_t errlen)
{
	struct wsc_sse *s = sse;
	size_t k;
	int rc;

	while (n > 0) {
		if (s->after_cr) {
			s->after_cr = 0;
			if (*p == '\n') {
				p++;
				n--;
				continue;
			}
		}
		for (k = 0; k < n && p[k] != '\n' && p[k] != '\r'; k++)
			;
		if ((rc = wsc_buf_add(&s->line, p, k, s->max)) < 0)
			return sse_too_long(rc, "line", s->max, err, errlen);
		if (k == n)
			break;
		s->after_cr = p[k] == '\r';
		p += k + 1;
		n -= k + 1;
		rc = sse_line(s, s->line.p, s->line.len, err, errlen);
		s->line.len = 0;
		if (rc != 0)
			return rc;
	}
	return 0;
}

void
wsc_buf_free(struct wsc_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

void
wsc_sse_free(struct wsc_sse *s)
{
	wsc_buf_free(&s->line);
	wsc_buf_free(&s->data);
}

/* ---- WebSocket ---- */

int
wsc_key(char key[WSC_KEY_SIZE], char *err, size_t errlen)
{
	uint8_t raw[16];

	if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
		snprintf(err, errlen, "cannot get random bytes: %s",
		    strerror(errno));
		return -ERR_OS;
	}
	base64_encode_raw(key, sizeof raw, raw);
	key[BASE64_ENCODE_RAW_LENGTH(sizeof raw)] = '\0';
	return 0;
}

const char *
wsc_handshake_check(const struct httpc_head *h, const char *key)
{
	struct sha1_ctx sha;
	uint8_t digest[SHA1_DIGEST_SIZE];
	char want[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE) + 1];

	sha1_init(&sha);
	sha1_update(&sha, strlen(key), (const uint8_t *)key);
	sha1_update(&sha, sizeof WS_GUID - 1, (const uint8_t *)WS_GUID);
	sha1_digest(&sha, sizeof digest, digest);
	base64_encode_raw(want, sizeof digest, digest);
	want[sizeof want - 1] = '\0';
	if (!h->upgrade_ws)
		return "no Upgrade: websocket";
	if (!h->conn_upgrade)
		return "no Connection: Upgrade";
	if (strcmp(h->accept, want) != 0)
		return "wrong Sec-WebSocket-Accept";
	return NULL;
}

/* The caller's 0 (not now) and -1 (failed) as wslay takes them. */
static ssize_t
io_result(wslay_event_context_ptr ctx, ssize_t n)
{
	if (n > 0)
		return n;
	wslay_event_set_error(ctx, n == 0 ? WSLAY_ERR_WOULDBLOCK :
	    WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static ssize_t
recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
    void *user)
{
	struct wsc *w = user;

	(void)flags;
	return io_result(ctx, w->cb->recv(w->arg, buf, len));
}

static ssize_t
send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
    int flags, void *user)
{
	struct wsc *w = user;

	return io_result(ctx, w->cb->send(w->arg, data, len,
	    (flags & WSLAY_MSG_MORE) != 0));
}

static int
genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
	(void)user;
	if (getrandom(buf, len, 0) != (ssize_t)len) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return 0;
}

static void
frame_start_cb(wslay_event_context_ptr ctx,
    const struct wslay_event_on_frame_recv_start_arg *arg, void *user)
{
	struct wsc *w = user;

	(void)ctx;
	w->in_close = arg->opcode == WSLAY_CONNECTION_CLOSE;
	if (w->in_close)
		w->close_len = 0;
}

static void
frame_chunk_cb(wslay_event_context_ptr ctx,
    const struct wslay_event_on_frame_recv_chunk_arg *arg, void *user)
{
	struct wsc *w = user;
	size_t n = arg->data_length;

	(void)ctx;
	if (!w->in_close)
		return;
	if (n > sizeof w->close_buf - w->close_len)
		n = sizeof w->close_buf - w->close_len;
	memcpy(w->close_buf + w->close_len, arg->data, n);
	w->close_len += n;
}

static void
frame_end_cb(wslay_event_context_ptr ctx, void *user)
{
	struct wsc *w = user;
	size_t i, n;

	if (!w->in_close)
		return;
	w->in_close = 0;
	if (w->close_seen)
		return;
	w->close_seen = 1;
	w->close_code = 1005;		/* no status in the frame */
	if (w->close_len >= 2) {
		w->close_code = w->close_buf[0] << 8 | w->close_buf[1];
		n = w->close_len - 2;
		for (i = 0; i < n; i++) {
			unsigned char ch = w->close_buf[2 + i];

			w->close_reason[i] = ch < 0x20 ? ' ' : (char)ch;
		}
		w->close_reason[n] = '\0';
	}
	/* Echo the code before wslay answers, so a code it refuses is
	 * echoed too rather than answered with 1002; wslay then finds our
	 * close queued and queues nothing. */
	wslay_event_queue_close(ctx, w->close_len >= 2 ?
	    (uint16_t)w->close_code : 0, NULL, 0);
}

static void
msg_cb(wslay_event_context_ptr ctx,
    const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
	struct wsc *w = user;

	(void)ctx;
	if (arg->opcode == WSLAY_TEXT_FRAME)
		w->cb->on_text(w->arg, (const char *)arg->msg, arg->msg_length);
	else if (arg->opcode == WSLAY_BINARY_FRAME && w->cb->on_binary)
		w->cb->on_binary(w->arg);
}

int
wsc_open(struct wsc *w, const struct wsc_cb *cb, void *arg, size_t max)
{
	static const struct wslay_event_callbacks wcb = {
		.recv_callback = recv_cb,
		.send_callback = send_cb,
		.genmask_callback = genmask_cb,
		.on_frame_recv_start_callback = frame_start_cb,
		.on_frame_recv_chunk_callback = frame_chunk_cb,
		.on_frame_recv_end_callback = frame_end_cb,
		.on_msg_recv_callback = msg_cb,
	};

	memset(w, 0, sizeof *w);
	w->cb = cb;
	w->arg = arg;
	if (wslay_event_context_client_init(&w->ctx, &wcb, w) != 0) {
		w->ctx = NULL;
		return -ERR_OS;
	}
	wslay_event_config_set_max_recv_msg_length(w->ctx, max);
	return 0;
}

void
wsc_free(struct wsc *w)
{
	if (w->ctx != NULL)
		wslay_event_context_free(w->ctx);
	w->ctx = NULL;
}
