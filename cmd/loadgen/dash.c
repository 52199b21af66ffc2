/* dash.c: the instructors' dashboards, as notify serves them: WebSocket
 * (RFC 6455 through wslay, client side, masking) or Server-Sent Events,
 * each on a bufferevent of the one loop. Each message of the run is matched
 * by its eventId with the time its POST was written; a dashboard that loses
 * its connection tries again every second, for as long as notify is away,
 * and resumes with ?since= the last id it saw, as the dashboard page does
 * (the page backs off to 10 s; a run wants its dashboards back as soon as
 * notify is); one refused (401/403, close 4401/4403) stays out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "hist.h"
#include "loadgen.h"
#include "log.h"
#include "prog.h"

#define MAX_HEAD	65536
#define MAX_MSG		(64u << 20)
#define RECONNECT_MS	1000

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
			hist_record(lg->sec_e2e, (uint64_t)(now - e->sent_us));
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
	wsc_free(&d->ws);
	if (d->bev) {
		bufferevent_free(d->bev);
		d->bev = NULL;
	}
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
send_request(struct lg_dash *d)
{
	struct lg *lg = d->lg;
	struct wsc_req r = { .host = lg->notify.hostport,
	    .agent = "labpulse-loadgen" };
	char target[2048], err[200], *req;
	int rc;

	snprintf(target, sizeof target, "%s/%s?class=", lg->notify.path,
	    d->proto == PROTO_WS ? "ws" : "sse");
	url_encode(target, sizeof target, d->klass_name);
	strncat(target, "&token=", sizeof target - strlen(target) - 1);
	url_encode(target, sizeof target, lg->token);
	if (d->last_id[0]) {
		strncat(target, "&since=", sizeof target - strlen(target) - 1);
		url_encode(target, sizeof target, d->last_id);
	}
	if (d->proto == PROTO_WS) {
		if ((rc = wsc_key(d->key, err, sizeof err)) < 0)
			die_kind(rc, "%s", err);
		r.ws_key = d->key;
	}
	r.target = target;
	req = wsc_request(&r);
	if (req == NULL ||
	    evbuffer_add(bufferevent_get_output(d->bev), req, strlen(req)) < 0)
		die_nomem();
	free(req);
	d->state = D_HEAD;
}

/* ---- WebSocket, through lib/wsclient on the bufferevent ---- */

/* What is in the input buffer; the end of the connection comes as an
 * event (on_event). */
static ssize_t
ws_recv(void *arg, uint8_t *buf, size_t len)
{
	struct bufferevent *bev = ((struct lg_dash *)arg)->bev;
	int n = bev ? evbuffer_remove(bufferevent_get_input(bev), buf, len) : 0;

	return n > 0 ? n : 0;
}

static ssize_t
ws_send(void *arg, const uint8_t *data, size_t len, int more)
{
	struct bufferevent *bev = ((struct lg_dash *)arg)->bev;

	(void)more;
	if (bev == NULL || evbuffer_add(bufferevent_get_output(bev), data,
	    len) < 0)
		return -1;
	return (ssize_t)len;
}

static void
ws_text(void *arg, const char *msg, size_t len)
{
	on_message(arg, msg, len);
}

static const struct wsc_cb ws_cb = { ws_recv, ws_send, ws_text, NULL };

static void
ws_read(struct lg_dash *d)
{
	char why[200];
	int r = wslay_event_recv(d->ws.ctx);

	if (d->ws.close_seen) {
		wslay_event_send(d->ws.ctx);
		if (d->ws.close_code >= 4400 && d->ws.close_code <= 4499) {
			refused(d, d->ws.close_code, d->ws.close_reason);
		} else {
			snprintf(why, sizeof why, "closed %d %s",
			    d->ws.close_code, d->ws.close_reason);
			lost(d, why);
		}
		return;
	}
	if (r == 0 && wslay_event_want_write(d->ws.ctx))
		r = wslay_event_send(d->ws.ctx);
	if (r != 0 || !wslay_event_want_read(d->ws.ctx)) {
		snprintf(why, sizeof why, "WebSocket protocol error (%d)", r);
		lost(d, why);
	}
}

/* ---- Server-Sent Events ---- */

/* Its "id" and "event" repeat what the JSON says. */
static int
sse_event(void *arg, const char *data, size_t len, const char *event,
    const char *id)
{
	(void)event;
	(void)id;
	on_message(arg, data, len);
	return 0;
}

static void
sse_read(struct lg_dash *d)
{
	struct evbuffer *in = bufferevent_get_input(d->bev);
	struct evbuffer_iovec v;
	char err[200];
	int r = 0;

	while (r == 0 && evbuffer_peek(in, -1, NULL, &v, 1) > 0 &&
	    v.iov_len > 0) {
		r = httpc_body_feed(&d->body, v.iov_base, v.iov_len, wsc_sse_feed,
		    &d->sse, err, sizeof err);
		evbuffer_drain(in, v.iov_len);
	}
	if (r < 0)
		lost(d, err);
	else if (r > 0)
		lost(d, "the stream ended");
}

/* ---- the answer's head ---- */

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
	struct httpc_head h;
	char err[200];
	size_t hl;
	int rc;

	if (end.pos < 0) {
		if (evbuffer_get_length(in) > MAX_HEAD)
			lost(d, "answer head too large");
		return;
	}
	hl = (size_t)end.pos + 4;
	rc = httpc_head_parse((const char *)evbuffer_pullup(in, (ssize_t)hl), hl,
	    &h, err, sizeof err);
	evbuffer_drain(in, hl);
	if (rc < 0) {
		lost(d, "not an HTTP answer");
		return;
	}
	d->http_status = h.status;
	if (d->proto == PROTO_WS && h.status == 101) {
		if (wsc_handshake_check(&h, d->key) != NULL) {
			lost(d, "bad WebSocket handshake");
			return;
		}
		bufferevent_set_timeouts(d->bev, NULL, NULL);
		if (wsc_open(&d->ws, &ws_cb, d, MAX_MSG) < 0)
			die_nomem();
		d->state = D_WS;
		if (evbuffer_get_length(in) > 0)
			ws_read(d);
		return;
	}
	if (d->proto == PROTO_SSE && h.status == 200) {
		httpc_body_start(&d->body, &h);
		wsc_sse_init(&d->sse, sse_event, d, MAX_MSG);
		bufferevent_set_timeouts(d->bev, NULL, NULL);
		d->state = D_SSE;
		if (evbuffer_get_length(in) > 0)
			sse_read(d);
		return;
	}
	d->body_len = h.has_length ? (long)h.length : -1;
	d->state = D_ERRBODY;
	errbody(d, 0);
}

static void
errbody_more(struct lg_dash *d)
{
	errbody(d, 0);
}

/* What reads the input in each state; in the others it is dropped. */
static void (*const readers[D_REFUSED + 1])(struct lg_dash *) = {
	[D_HEAD] = read_head,
	[D_ERRBODY] = errbody_more,
	[D_WS] = ws_read,
	[D_SSE] = sse_read,
};

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct lg_dash *d = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (readers[d->state] != NULL)
		readers[d->state](d);
	else
		evbuffer_drain(in, evbuffer_get_length(in));
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
		die_nomem();
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
		die_nomem();
	if (lg->ndash == 0)
		return 0;
	lg->dash = calloc((size_t)lg->ndash, sizeof *lg->dash);
	if (lg->dash == NULL)
		die_nomem();
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
		d->retry = evtimer_new(lg->base, on_reconnect, d);
		/* one allocation: received follows expected */
		d->st_expected = calloc(2 * (size_t)lg->nstages,
		    sizeof *d->st_expected);
		if (d->e2e == NULL || d->retry == NULL ||
		    d->st_expected == NULL)
			die_nomem();
		d->st_received = d->st_expected + lg->nstages;
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
		if (d->state == D_WS && d->ws.ctx && d->bev) {
			wslay_event_queue_close(d->ws.ctx, 1000, NULL, 0);
			wslay_event_send(d->ws.ctx);
			(void)evbuffer_write(bufferevent_get_output(d->bev),
			    bufferevent_getfd(d->bev));
		}
		if (d->state != D_REFUSED)
			d->state = D_DOWN;
		reset_conn(d);
	}
}

void
dash_free(struct lg *lg)
{
	int j;

	for (j = 0; j < lg->ndash; j++) {
		struct lg_dash *d = &lg->dash[j];

		reset_conn(d);
		wsc_sse_free(&d->sse);
		hist_free(d->e2e);
		event_free(d->retry);
		free(d->st_expected);
	}
	free(lg->dash);
	free(lg->class_acked);
	lg->dash = NULL;
	lg->class_acked = NULL;
}
