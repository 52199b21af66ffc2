/* dash.c: the instructors' dashboards, as notify serves them: WebSocket
 * (RFC 6455 through wslay, client side, masking) or Server-Sent Events,
 * each on a bufferevent of the one loop. Each message of the run is matched
 * by its eventId with the time its POST was written; a dashboard that loses
 * its connection tries again every second, for as long as notify is away,
 * and resumes with ?since= the last id it saw, as the dashboard page does
 * (the page backs off to 10 s; a run wants its dashboards back as soon as
 * notify is); one refused (401/403, close 4401/4403) stays out. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <nettle/base64.h>
#include <nettle/sha1.h>

#include "hist.h"
#include "loadgen.h"
#include "log.h"

#define MAX_HEAD	65536
#define MAX_MSG		(64u << 20)
#define RECONNECT_MS	1000
#define WS_GUID		"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static void dash_connect(struct lg_dash *d);

/* ---- a JSON scan, for the few members a message is matched by ---- */

/* Past the string at p (at its opening quote); NULL if unterminated. */
static const char *
skip_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

static const char *
skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' ||
	    *p == '\r'))
		p++;
	return p;
}

/* Past the value at p; NULL if malformed. */
static const char *
skip_value(const char *p, const char *end)
{
	int depth = 0;

	if (p >= end)
		return NULL;
	if (*p == '"')
		return skip_string(p, end);
	if (*p != '{' && *p != '[') {
		while (p < end && *p != ',' && *p != '}' && *p != ']' &&
		    *p != ' ' && *p != '\n' && *p != '\r' && *p != '\t')
			p++;
		return p;
	}
	for (; p < end; p++) {
		if (*p == '"') {
			p = skip_string(p, end);
			if (p == NULL)
				return NULL;
			p--;
		} else if (*p == '{' || *p == '[') {
			depth++;
		} else if (*p == '}' || *p == ']') {
			if (--depth == 0)
				return p + 1;
		}
	}
	return NULL;
}

/* The value of member key of the object at p..end: its start and end
 * (strings without their quotes), or 0 when absent. */
static int
json_member(const char *p, const char *end, const char *key,
    const char **v, const char **vend)
{
	size_t kl = strlen(key);
	const char *k, *kend;

	p = skip_ws(p, end);
	if (p >= end || *p != '{')
		return 0;
	p++;
	for (;;) {
		p = skip_ws(p, end);
		if (p >= end || *p != '"')
			return 0;
		k = p + 1;
		p = skip_string(p, end);
		if (p == NULL)
			return 0;
		kend = p - 1;
		p = skip_ws(p, end);
		if (p >= end || *p != ':')
			return 0;
		p = skip_ws(p + 1, end);
		*v = p;
		p = skip_value(p, end);
		if (p == NULL)
			return 0;
		if ((size_t)(kend - k) == kl && memcmp(k, key, kl) == 0) {
			*vend = p;
			if (**v == '"') {
				(*v)++;
				(*vend)--;
			}
			return 1;
		}
		p = skip_ws(p, end);
		if (p >= end || *p != ',')
			return 0;
		p++;
	}
}

static int
is(const char *v, const char *vend, const char *s)
{
	size_t n = strlen(s);

	return (size_t)(vend - v) == n && memcmp(v, s, n) == 0;
}

/* ---- messages ---- */

static void
match(struct lg_dash *d, const char *id, size_t len)
{
	struct lg *lg = d->lg;
	struct lg_student *st;
	struct lg_evrec *e = students_find(lg, id, len, &st);
	uint64_t bit = UINT64_C(1) << d->local;
	int64_t now;

	if (e == NULL) {
		d->other++;
		return;
	}
	if (e->seen & bit) {
		d->duplicates++;
		return;
	}
	e->seen |= bit;
	d->received++;
	if (e->sent_us > 0) {
		now = lg_now_us();
		if (now > e->sent_us) {
			hist_record(d->e2e, (uint64_t)(now - e->sent_us));
			hist_record(lg->st[e->stage].e2e,
			    (uint64_t)(now - e->sent_us));
		}
	}
	if (e->state == EV_ACKED) {
		d->recv_acked++;
		d->st_received[e->stage]++;
		if (lg->phase == PH_DRAIN)
			lg_maybe_drained(lg);
	}
}

static void
on_message(struct lg_dash *d, const char *p, size_t len)
{
	const char *end = p + len, *v, *ve, *m, *me, *k, *ke;

	d->messages++;
	if (!json_member(p, end, "type", &v, &ve))
		return;
	if (is(v, ve, "hello")) {
		d->connected = 1;
		if (d->down_us) {
			log_info("dashboard %d (%s, %s) back after %.1f s; %s%s",
			    d->index, d->klass_name,
			    d->proto == PROTO_WS ? "ws" : "sse",
			    (double)(lg_now_us() - d->down_us) / 1e6,
			    d->last_id[0] ? "resuming after " :
			    "nothing seen yet: a snapshot", d->last_id);
			d->down_us = 0;
		}
		return;
	}
	if (is(v, ve, "snapshot") || is(v, ve, "resync")) {
		if (v[0] == 'r')
			d->resyncs++;
		else
			d->snapshots++;
		d->live = 1;
		if (json_member(p, end, "id", &v, &ve) &&
		    (size_t)(ve - v) < sizeof d->last_id)
			snprintf(d->last_id, sizeof d->last_id, "%.*s",
			    (int)(ve - v), v);
		return;
	}
	if (!is(v, ve, "message"))
		return;
	d->live = 1;
	if (json_member(p, end, "id", &v, &ve) &&
	    (size_t)(ve - v) < sizeof d->last_id)
		snprintf(d->last_id, sizeof d->last_id, "%.*s", (int)(ve - v), v);
	if (!json_member(p, end, "message", &m, &me) ||
	    !json_member(m, me, "eventId", &v, &ve)) {
		d->lg->foreign++;
		return;
	}
	if ((size_t)(ve - v) <= d->lg->prefix_len ||
	    memcmp(v, d->lg->prefix, d->lg->prefix_len) != 0) {
		d->lg->foreign++;
		return;
	}
	if (!json_member(m, me, "kind", &k, &ke) || is(k, ke, "activity"))
		match(d, v, (size_t)(ve - v));
	else if (is(k, ke, "alert"))
		d->alerts++;
	else
		d->other++;
}

/* ---- the connection ---- */

static void
reset_conn(struct lg_dash *d)
{
	if (d->ws) {
		wslay_event_context_free(d->ws);
		d->ws = NULL;
	}
	if (d->bev) {
		bufferevent_free(d->bev);
		d->bev = NULL;
	}
	evbuffer_drain(d->sse, evbuffer_get_length(d->sse));
	evbuffer_drain(d->data, evbuffer_get_length(d->data));
	d->chunked = 0;
	d->chunk_left = -1;
	d->in_close = 0;
	d->close_len = 0;
	d->http_status = 0;
}

/* The connection is gone; try again in a second while the run lasts. */
static void
lost(struct lg_dash *d, const char *why)
{
	struct timeval tv = { RECONNECT_MS / 1000, (RECONNECT_MS % 1000) * 1000 };

	snprintf(d->last_error, sizeof d->last_error, "%s", why);
	if (d->live || d->state == D_WS || d->state == D_SSE) {
		log_warn("dashboard %d (%s, %s) lost its connection: %s; "
		    "reconnecting every %d ms", d->index, d->klass_name,
		    d->proto == PROTO_WS ? "ws" : "sse", why, RECONNECT_MS);
		d->down_us = lg_now_us();
	}
	reset_conn(d);
	d->state = D_DOWN;
	d->live = 0;
	if (d->lg->phase < PH_DONE)
		evtimer_add(d->retry, &tv);
}

static void
refused(struct lg_dash *d, int code, const char *reason)
{
	d->refused_code = code;
	snprintf(d->refused_reason, sizeof d->refused_reason, "%s", reason);
	log_warn("dashboard %d (%s, %s) refused: %d %s", d->index,
	    d->klass_name, d->proto == PROTO_WS ? "ws" : "sse", code, reason);
	reset_conn(d);
	d->state = D_REFUSED;
	d->live = 0;
}

static void
on_reconnect(evutil_socket_t fd, short what, void *arg)
{
	struct lg_dash *d = arg;

	(void)fd;
	(void)what;
	if (d->state == D_DOWN && d->lg->phase < PH_DONE) {
		d->reconnects++;
		dash_connect(d);
	}
}

static void
append_encoded(char *out, size_t cap, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = strlen(out);

	for (; *s && o + 4 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
}

static void
send_request(struct lg_dash *d)
{
	struct lg *lg = d->lg;
	struct evbuffer *out = bufferevent_get_output(d->bev);
	char target[1024];
	uint8_t raw[16];

	snprintf(target, sizeof target, "%s/%s?class=", lg->notify.prefix,
	    d->proto == PROTO_WS ? "ws" : "sse");
	append_encoded(target, sizeof target, d->klass_name);
	strncat(target, "&token=", sizeof target - strlen(target) - 1);
	append_encoded(target, sizeof target, lg->token);
	if (d->last_id[0]) {
		strncat(target, "&since=", sizeof target - strlen(target) - 1);
		append_encoded(target, sizeof target, d->last_id);
	}
	if (d->proto == PROTO_WS) {
		if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
			lg_die(70, "cannot get random bytes: %s",
			    strerror(errno));
		base64_encode_raw(d->key, sizeof raw, raw);
		d->key[BASE64_ENCODE_RAW_LENGTH(sizeof raw)] = '\0';
		evbuffer_add_printf(out, "GET %s HTTP/1.1\r\nHost: %s\r\n"
		    "User-Agent: labpulse-loadgen\r\nUpgrade: websocket\r\n"
		    "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
		    "Sec-WebSocket-Version: 13\r\n\r\n", target,
		    lg->notify.hostport, d->key);
	} else {
		evbuffer_add_printf(out, "GET %s HTTP/1.1\r\nHost: %s\r\n"
		    "User-Agent: labpulse-loadgen\r\n"
		    "Accept: text/event-stream\r\nCache-Control: no-cache\r\n"
		    "\r\n", target, lg->notify.hostport);
	}
	d->state = D_HEAD;
}

/* ---- WebSocket, through wslay on the bufferevent ---- */

static ssize_t
ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
    void *user)
{
	struct lg_dash *d = user;
	int n;

	(void)flags;
	n = d->bev ? evbuffer_remove(bufferevent_get_input(d->bev), buf, len)
	    : 0;
	if (n <= 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	return n;
}

static ssize_t
ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
    int flags, void *user)
{
	struct lg_dash *d = user;

	(void)flags;
	if (d->bev == NULL ||
	    evbuffer_add(bufferevent_get_output(d->bev), data, len) < 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

static int
ws_genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
    void *user)
{
	(void)user;
	if (getrandom(buf, len, 0) != (ssize_t)len) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return 0;
}

/* Close frames are read here, frame by frame: wslay refuses codes outside
 * 1000-1011 and 3000-4999 (notify closes a slow client with 1013) and does
 * not report them. */
static void
ws_frame_start_cb(wslay_event_context_ptr ctx,
    const struct wslay_event_on_frame_recv_start_arg *arg, void *user)
{
	struct lg_dash *d = user;

	(void)ctx;
	d->in_close = arg->opcode == WSLAY_CONNECTION_CLOSE;
	if (d->in_close)
		d->close_len = 0;
}

static void
ws_frame_chunk_cb(wslay_event_context_ptr ctx,
    const struct wslay_event_on_frame_recv_chunk_arg *arg, void *user)
{
	struct lg_dash *d = user;
	size_t n = arg->data_length;

	(void)ctx;
	if (!d->in_close)
		return;
	if (n > sizeof d->close_buf - d->close_len)
		n = sizeof d->close_buf - d->close_len;
	memcpy(d->close_buf + d->close_len, arg->data, n);
	d->close_len += n;
}

static void
ws_frame_end_cb(wslay_event_context_ptr ctx, void *user)
{
	struct lg_dash *d = user;

	if (!d->in_close)
		return;
	d->in_close = 0;
	d->close_seen = 1;
	d->close_code = d->close_len >= 2 ?
	    d->close_buf[0] << 8 | d->close_buf[1] : 1005;
	/* echo it before wslay answers a code it refuses with 1002 */
	wslay_event_queue_close(ctx, d->close_len >= 2 ?
	    (uint16_t)d->close_code : 0, NULL, 0);
}

static void
ws_msg_cb(wslay_event_context_ptr ctx,
    const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
	(void)ctx;
	if (arg->opcode == WSLAY_TEXT_FRAME)
		on_message(user, (const char *)arg->msg, arg->msg_length);
}

static int
ws_start(struct lg_dash *d)
{
	static const struct wslay_event_callbacks cb = {
		.recv_callback = ws_recv_cb,
		.send_callback = ws_send_cb,
		.genmask_callback = ws_genmask_cb,
		.on_frame_recv_start_callback = ws_frame_start_cb,
		.on_frame_recv_chunk_callback = ws_frame_chunk_cb,
		.on_frame_recv_end_callback = ws_frame_end_cb,
		.on_msg_recv_callback = ws_msg_cb,
	};

	if (wslay_event_context_client_init(&d->ws, &cb, d) != 0)
		lg_oom();
	wslay_event_config_set_max_recv_msg_length(d->ws, MAX_MSG);
	d->close_seen = 0;
	d->state = D_WS;
	return 0;
}

static void
ws_read(struct lg_dash *d)
{
	char why[200];
	int r = wslay_event_recv(d->ws);

	if (d->close_seen) {
		char reason[126];
		size_t n = d->close_len > 2 ? d->close_len - 2 : 0, i;

		for (i = 0; i < n; i++)
			reason[i] = d->close_buf[2 + i] < 0x20 ? ' ' :
			    (char)d->close_buf[2 + i];
		reason[n] = '\0';
		wslay_event_send(d->ws);
		if (d->close_code >= 4400 && d->close_code <= 4499) {
			refused(d, d->close_code, reason);
		} else {
			snprintf(why, sizeof why, "closed %d %s",
			    d->close_code, reason);
			lost(d, why);
		}
		return;
	}
	if (r == 0 && wslay_event_want_write(d->ws))
		r = wslay_event_send(d->ws);
	if (r != 0 || !wslay_event_want_read(d->ws)) {
		snprintf(why, sizeof why, "WebSocket protocol error (%d)", r);
		lost(d, why);
	}
}

/* ---- Server-Sent Events ---- */

static void
sse_line(struct lg_dash *d, char *line, size_t n)
{
	char *v;
	size_t nl;

	if (n > 0 && line[n - 1] == '\r')
		line[--n] = '\0';
	if (n == 0) {
		size_t dl = evbuffer_get_length(d->data);

		if (dl > 0) {
			/* each data line added a '\n': the last is not data */
			char *p = (char *)evbuffer_pullup(d->data, -1);

			on_message(d, p, dl - 1);
			evbuffer_drain(d->data, dl);
		}
		return;
	}
	if (line[0] == ':')
		return;		/* a heartbeat */
	v = memchr(line, ':', n);
	nl = v ? (size_t)(v - line) : n;
	if (v) {
		v++;
		if (*v == ' ')
			v++;
	} else {
		v = line + n;
	}
	if (nl == 4 && memcmp(line, "data", 4) == 0) {
		if (evbuffer_get_length(d->data) + (size_t)(line + n - v) >
		    MAX_MSG)
			return;
		evbuffer_add(d->data, v, (size_t)(line + n - v));
		evbuffer_add(d->data, "\n", 1);
	}
	/* "id", "event" and "retry" repeat what the JSON says */
}

/* The body's bytes into d->sse, taking chunked framing off. 1 when the
 * body ended, -1 on a framing error. */
static int
sse_unframe(struct lg_dash *d, struct evbuffer *in)
{
	char *line;
	size_t n;

	if (!d->chunked) {
		evbuffer_add_buffer(d->sse, in);
		return 0;
	}
	for (;;) {
		if (d->chunk_left == -1) {
			unsigned long size;
			char *end;

			line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
			if (line == NULL)
				return evbuffer_get_length(in) > 1024 ? -1 : 0;
			size = strtoul(line, &end, 16);
			if (end == line) {
				free(line);
				return -1;
			}
			free(line);
			if (size == 0)
				return 1;
			d->chunk_left = (int64_t)size;
		} else if (d->chunk_left == -2) {
			line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
			if (line == NULL)
				return 0;
			free(line);
			d->chunk_left = -1;
		} else {
			size_t have = evbuffer_get_length(in), take;

			if (have == 0)
				return 0;
			take = have < (size_t)d->chunk_left ? have :
			    (size_t)d->chunk_left;
			evbuffer_remove_buffer(in, d->sse, take);
			d->chunk_left -= (int64_t)take;
			if (d->chunk_left == 0)
				d->chunk_left = -2;
		}
	}
}

static void
sse_read(struct lg_dash *d)
{
	struct evbuffer *in = bufferevent_get_input(d->bev);
	char *line;
	size_t n;
	int r = sse_unframe(d, in);

	while (d->state == D_SSE &&
	    (line = evbuffer_readln(d->sse, &n, EVBUFFER_EOL_LF)) != NULL) {
		sse_line(d, line, n);
		free(line);
	}
	if (evbuffer_get_length(d->sse) > MAX_MSG)
		lost(d, "an SSE line too long");
	else if (r < 0)
		lost(d, "bad chunked framing");
	else if (r > 0)
		lost(d, "the stream ended");
}

/* ---- the answer's head ---- */

static const char *
header_value(const char *head, const char *name)
{
	size_t nl = strlen(name);
	const char *p = strchr(head, '\n');

	while (p != NULL && p[1] != '\0') {
		p++;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			p += nl + 1;
			while (*p == ' ' || *p == '\t')
				p++;
			return p;
		}
		p = strchr(p, '\n');
	}
	return NULL;
}

static int
value_is(const char *v, const char *word)
{
	size_t n = strlen(word);

	return v != NULL && strncasecmp(v, word, n) == 0 &&
	    (v[n] == '\r' || v[n] == '\n' || v[n] == ' ' || v[n] == ';' ||
	    v[n] == ',' || v[n] == '\0');
}

static int
value_has(const char *v, const char *token)
{
	size_t n = strlen(token);

	while (v != NULL && *v && *v != '\r' && *v != '\n') {
		while (*v == ' ' || *v == ',' || *v == '\t')
			v++;
		if (strncasecmp(v, token, n) == 0 && (v[n] == ',' ||
		    v[n] == ' ' || v[n] == '\r' || v[n] == '\n' || !v[n]))
			return 1;
		v += strcspn(v, ",\r\n");
	}
	return 0;
}

static int
ws_accept_ok(const struct lg_dash *d, const char *got)
{
	struct sha1_ctx sha;
	uint8_t digest[SHA1_DIGEST_SIZE];
	char want[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE) + 1];

	sha1_init(&sha);
	sha1_update(&sha, strlen(d->key), (const uint8_t *)d->key);
	sha1_update(&sha, sizeof WS_GUID - 1, (const uint8_t *)WS_GUID);
	sha1_digest(&sha, sizeof digest, digest);
	base64_encode_raw(want, sizeof digest, digest);
	want[sizeof want - 1] = '\0';
	return got != NULL && strncmp(got, want, strlen(want)) == 0;
}

/* The body of a refusal, when it is all here: its "error", else its text. */
static void
errbody(struct lg_dash *d, int eof)
{
	struct evbuffer *in = bufferevent_get_input(d->bev);
	size_t have = evbuffer_get_length(in);
	char reason[128] = "";
	const char *p, *v, *ve;

	if (!eof && (d->body_len < 0 || have < (size_t)d->body_len))
		return;
	if (d->body_len >= 0 && have > (size_t)d->body_len)
		have = (size_t)d->body_len;
	p = (const char *)evbuffer_pullup(in, (ssize_t)have);
	if (p != NULL && json_member(p, p + have, "error", &v, &ve))
		snprintf(reason, sizeof reason, "%.*s", (int)(ve - v), v);
	else if (p != NULL)
		snprintf(reason, sizeof reason, "%.*s", (int)(have < 100 ?
		    have : 100), p);
	if (d->http_status >= 400 && d->http_status < 500) {
		refused(d, d->http_status, reason);
	} else {
		char why[200];

		snprintf(why, sizeof why, "HTTP %d %s", d->http_status, reason);
		lost(d, why);
	}
}

static void
read_head(struct lg_dash *d)
{
	struct evbuffer *in = bufferevent_get_input(d->bev);
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	char *head;
	const char *v;
	size_t hl;
	int status;

	if (end.pos < 0) {
		if (evbuffer_get_length(in) > MAX_HEAD)
			lost(d, "answer head too large");
		return;
	}
	hl = (size_t)end.pos + 4;
	head = malloc(hl + 1);
	if (head == NULL)
		lg_oom();
	evbuffer_remove(in, head, hl);
	head[hl] = '\0';
	if (strncmp(head, "HTTP/1.", 7) != 0 || head[8] != ' ' ||
	    sscanf(head + 9, "%3d", &status) != 1) {
		free(head);
		lost(d, "not an HTTP answer");
		return;
	}
	d->http_status = status;
	if (d->proto == PROTO_WS && status == 101) {
		if (!value_is(header_value(head, "Upgrade"), "websocket") ||
		    !value_has(header_value(head, "Connection"), "upgrade") ||
		    !ws_accept_ok(d, header_value(head, "Sec-WebSocket-Accept"))) {
			free(head);
			lost(d, "bad WebSocket handshake");
			return;
		}
		free(head);
		bufferevent_set_timeouts(d->bev, NULL, NULL);
		ws_start(d);
		if (evbuffer_get_length(in) > 0)
			ws_read(d);
		return;
	}
	if (d->proto == PROTO_SSE && status == 200) {
		d->chunked = value_has(header_value(head,
		    "Transfer-Encoding"), "chunked");
		d->chunk_left = -1;
		free(head);
		bufferevent_set_timeouts(d->bev, NULL, NULL);
		d->state = D_SSE;
		if (evbuffer_get_length(in) > 0)
			sse_read(d);
		return;
	}
	v = header_value(head, "Content-Length");
	d->body_len = v ? atol(v) : -1;
	free(head);
	d->state = D_ERRBODY;
	errbody(d, 0);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct lg_dash *d = arg;

	(void)bev;
	switch (d->state) {
	case D_HEAD:
		read_head(d);
		break;
	case D_ERRBODY:
		errbody(d, 0);
		break;
	case D_WS:
		ws_read(d);
		break;
	case D_SSE:
		sse_read(d);
		break;
	default:
		evbuffer_drain(bufferevent_get_input(bev),
		    evbuffer_get_length(bufferevent_get_input(bev)));
		break;
	}
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct lg_dash *d = arg;
	char why[200];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		send_request(d);
		return;
	}
	if (d->state == D_ERRBODY && (what & BEV_EVENT_EOF)) {
		errbody(d, 1);
		return;
	}
	if (d->state == D_SSE && (what & BEV_EVENT_EOF)) {
		sse_read(d);
		if (d->state == D_SSE)
			lost(d, "the stream ended");
		return;
	}
	if (d->state == D_WS && (what & BEV_EVENT_EOF) &&
	    evbuffer_get_length(bufferevent_get_input(d->bev)) > 0) {
		ws_read(d);
		if (d->state != D_WS)
			return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		snprintf(why, sizeof why, "%s timed out",
		    d->state == D_CONNECTING ? "connecting" : "the handshake");
	else if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof why, "closed by notify");
	else
		snprintf(why, sizeof why, "%s%s",
		    d->state == D_CONNECTING ? "cannot connect: " : "",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	lost(d, why);
}

static void
dash_connect(struct lg_dash *d)
{
	struct lg *lg = d->lg;
	struct timeval tv;

	reset_conn(d);
	d->bev = bufferevent_socket_new(lg->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (d->bev == NULL)
		lg_oom();
	tv.tv_sec = lg->cfg.timeout_ms / 1000;
	tv.tv_usec = (lg->cfg.timeout_ms % 1000) * 1000;
	bufferevent_setcb(d->bev, on_read, NULL, on_event, d);
	bufferevent_set_timeouts(d->bev, &tv, &tv);
	bufferevent_enable(d->bev, EV_READ | EV_WRITE);
	d->state = D_CONNECTING;
	if (bufferevent_socket_connect(d->bev, (struct sockaddr *)&lg->notify.sa,
	    (int)lg->notify.salen) < 0)
		lost(d, "cannot connect");
}

/* ---- the run's side ---- */

int
dash_init(struct lg *lg)
{
	int j;

	lg->ndash = (int)lg->cfg.dashboards;
	lg->class_acked = calloc((size_t)lg->cfg.classes, sizeof
	    *lg->class_acked);
	if (lg->class_acked == NULL)
		lg_oom();
	if (lg->ndash == 0)
		return 0;
	lg->dash = calloc((size_t)lg->ndash, sizeof *lg->dash);
	if (lg->dash == NULL)
		lg_oom();
	for (j = 0; j < lg->ndash; j++) {
		struct lg_dash *d = &lg->dash[j];

		d->lg = lg;
		d->index = j;
		d->klass = (int)(j % lg->cfg.classes);
		d->local = (int)(j / lg->cfg.classes);
		snprintf(d->klass_name, sizeof d->klass_name, "loadgen-%d",
		    d->klass);
		d->proto = lg->cfg.dproto == DPROTO_WS ? PROTO_WS :
		    lg->cfg.dproto == DPROTO_SSE ? PROTO_SSE :
		    j % 2 == 0 ? PROTO_WS : PROTO_SSE;
		d->e2e = hist_new();
		d->sse = evbuffer_new();
		d->data = evbuffer_new();
		d->retry = evtimer_new(lg->base, on_reconnect, d);
		d->st_expected = calloc((size_t)lg->nstages,
		    sizeof *d->st_expected);
		d->st_received = calloc((size_t)lg->nstages,
		    sizeof *d->st_received);
		if (d->e2e == NULL || d->sse == NULL || d->data == NULL ||
		    d->retry == NULL || d->st_expected == NULL ||
		    d->st_received == NULL)
			lg_oom();
		d->chunk_left = -1;
	}
	return 0;
}

void
dash_connect_all(struct lg *lg)
{
	int j;

	for (j = 0; j < lg->ndash; j++)
		dash_connect(&lg->dash[j]);
}

int
dash_all_settled(const struct lg *lg)
{
	int j;

	for (j = 0; j < lg->ndash; j++)
		if (!lg->dash[j].live && lg->dash[j].state != D_REFUSED)
			return 0;
	return 1;
}

int
dash_all_received(const struct lg *lg)
{
	int j;

	for (j = 0; j < lg->ndash; j++) {
		const struct lg_dash *d = &lg->dash[j];

		if (d->state != D_REFUSED &&
		    d->recv_acked < lg->class_acked[d->klass])
			return 0;
	}
	return 1;
}

void
dash_event_acked(struct lg *lg, struct lg_student *st, struct lg_evrec *e)
{
	int j;

	lg->class_acked[st->klass]++;
	for (j = st->klass; j < lg->ndash; j += (int)lg->cfg.classes) {
		struct lg_dash *d = &lg->dash[j];

		d->st_expected[e->stage]++;
		if (e->seen & (UINT64_C(1) << d->local)) {
			d->recv_acked++;
			d->st_received[e->stage]++;
		}
	}
}

double
dash_delivery(const struct lg *lg, const struct lg_dash *d, int stage)
{
	uint64_t want, got;

	if (d->state == D_REFUSED)
		return 0;
	want = stage < 0 ? lg->class_acked[d->klass] : d->st_expected[stage];
	got = stage < 0 ? d->recv_acked : d->st_received[stage];
	return want == 0 ? 100.0 : 100.0 * (double)got / (double)want;
}

/* Leave politely: a WebSocket close 1000, written at once. */
void
dash_close_all(struct lg *lg)
{
	int j;

	for (j = 0; j < lg->ndash; j++) {
		struct lg_dash *d = &lg->dash[j];

		evtimer_del(d->retry);
		if (d->state == D_WS && d->ws && d->bev) {
			wslay_event_queue_close(d->ws, 1000, NULL, 0);
			wslay_event_send(d->ws);
			(void)evbuffer_write(bufferevent_get_output(d->bev),
			    bufferevent_getfd(d->bev));
		}
		if (d->state != D_REFUSED)
			d->state = D_DOWN;
		if (d->ws) {
			wslay_event_context_free(d->ws);
			d->ws = NULL;
		}
		if (d->bev) {
			bufferevent_free(d->bev);
			d->bev = NULL;
		}
	}
}

void
dash_free(struct lg *lg)
{
	int j;

	for (j = 0; j < lg->ndash; j++) {
		struct lg_dash *d = &lg->dash[j];

		if (d->ws)
			wslay_event_context_free(d->ws);
		if (d->bev)
			bufferevent_free(d->bev);
		hist_free(d->e2e);
		evbuffer_free(d->sse);
		evbuffer_free(d->data);
		event_free(d->retry);
		free(d->st_expected);
		free(d->st_received);
	}
	free(lg->dash);
	free(lg->class_acked);
	lg->dash = NULL;
	lg->class_acked = NULL;
}
