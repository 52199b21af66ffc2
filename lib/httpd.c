/* httpd.c: the connections of an HTTP/1.1 server on bufferevents; a
 * connection's life is counted from accept to close, and every wait on a
 * peer has a deadline. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "httpd.h"
#include "peers.h"
#include "stats.h"

#define HTTPD_MAX_LISTEN 16
/* A client that pipelines without reading its answers stops being read
 * past this much output. */
#define OUT_HIGH (256 * 1024)
/* After an error answer, what the client still sends is read and dropped
 * for a while, so that closing does not reset the answer away. */
#define LINGER_MS 2000
#define LINGER_BYTES (256 * 1024)

struct httpd_conn {
	struct httpd *h;
	struct httpd_conn *prev, *next;	/* h->conns, or h->zombies */
	struct bufferevent *bev;	/* NULL once closed */
	struct event *timer;
	struct httpreq req;
	int64_t accepted_us, started_us, last_read_us;
	size_t lingered;
	unsigned nreq;			/* requests answered */
	unsigned busy:1;		/* handed over, not answered */
	unsigned closing:1;		/* close once the output is written */
	unsigned lingering:1;		/* output written, dropping input */
	unsigned linger_after:1;	/* linger rather than close at once */
	unsigned close_after:1;		/* the handler's wish */
	unsigned head:1;		/* the request in hand is HEAD */
	unsigned keep:1;		/* ... and may be followed by another */
	unsigned minor0:1;		/* ... and is HTTP/1.0 */
	unsigned eof:1;			/* the peer sent everything */
	unsigned in_process:1;
	unsigned continued:1;		/* 100 Continue sent, or not needed */
	unsigned waiting_out:1;		/* reading paused for the output */
	char peer[64];
};

struct httpd {
	struct event_base *base;
	struct httpd_cfg cfg;
	httpd_handler fn;
	void *arg;
	struct evconnlistener *lev[HTTPD_MAX_LISTEN];
	int nlev;
	int paused, draining;
	struct peers *peers;
	struct httpd_conn *conns, *zombies;
	struct httpd_stats st;
	void (*drained)(void *);
	void *drained_arg;
	struct event *drain_ev;
	void (*on_cap)(void *, long);
	void *on_cap_arg;
	time_t date_t;
	char date[40];
};

static void process(struct httpd_conn *c);
static void close_conn(struct httpd_conn *c);

static const struct {
	int code;
	const char *text;
} reasons[] = {
	{ 100, "Continue" }, { 200, "OK" }, { 201, "Created" },
	{ 202, "Accepted" }, { 204, "No Content" }, { 400, "Bad Request" },
	{ 401, "Unauthorized" }, { 403, "Forbidden" }, { 404, "Not Found" },
	{ 405, "Method Not Allowed" }, { 408, "Request Timeout" },
	{ 409, "Conflict" }, { 411, "Length Required" },
	{ 413, "Content Too Large" }, { 414, "URI Too Long" },
	{ 415, "Unsupported Media Type" }, { 422, "Unprocessable Content" },
	{ 429, "Too Many Requests" },
	{ 431, "Request Header Fields Too Large" },
	{ 500, "Internal Server Error" }, { 501, "Not Implemented" },
	{ 502, "Bad Gateway" }, { 503, "Service Unavailable" },
	{ 504, "Gateway Timeout" }, { 505, "HTTP Version Not Supported" },
};

const char *
httpd_reason(int status)
{
	size_t i;

	for (i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
		if (reasons[i].code == status)
			return reasons[i].text;
	return "Unknown";
}

static void
set_accepting(struct httpd *h, int on)
{
	int i;

	if (h->paused == !on || h->draining)
		return;
	for (i = 0; i < h->nlev; i++) {
		if (on)
			evconnlistener_enable(h->lev[i]);
		else
			evconnlistener_disable(h->lev[i]);
	}
	h->paused = !on;
	if (!on) {
		h->st.cap_reached++;
		if (h->on_cap)
			h->on_cap(h->on_cap_arg, h->st.active);
	}
}

static void
arm(struct httpd_conn *c, int64_t at_us)
{
	int64_t d = at_us - stats_mono_us();
	struct timeval tv;

	if (d < 0)
		d = 0;
	tv.tv_sec = (time_t)(d / 1000000);
	tv.tv_usec = (suseconds_t)(d % 1000000);
	evtimer_add(c->timer, &tv);
}

/* When the request being read (or awaited) must be whole, and when the
 * peer's silence ends it: the earlier of the two is the next check. */
static int64_t
deadline(const struct httpd_conn *c, int *started)
{
	const struct httpd *h = c->h;
	int64_t whole, quiet;

	*started = httpreq_started(&c->req) > 0;
	if (c->nreq == 0)
		whole = c->accepted_us + h->cfg.request_ms * 1000;
	else if (*started)
		whole = c->started_us + h->cfg.request_ms * 1000;
	else
		whole = INT64_MAX;
	quiet = c->last_read_us + h->cfg.idle_ms * 1000;
	return whole < quiet ? whole : quiet;
}

static void
reap(struct httpd *h)
{
	if (h->draining && h->st.active == 0 && h->drained && h->drain_ev)
		event_active(h->drain_ev, 0, 0);
}

static void
on_drained(evutil_socket_t fd, short what, void *arg)
{
	struct httpd *h = arg;

	(void)fd;
	(void)what;
	if (h->drained && h->st.active == 0)
		h->drained(h->drained_arg);
}

static void
unlink_conn(struct httpd_conn **head, struct httpd_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		*head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

static void
push_conn(struct httpd_conn **head, struct httpd_conn *c)
{
	c->prev = NULL;
	c->next = *head;
	if (*head)
		(*head)->prev = c;
	*head = c;
}

static void
free_conn(struct httpd_conn *c)
{
	httpreq_free(&c->req);
	if (c->timer)
		event_free(c->timer);
	free(c);
}

/* The slot is freed at once; a request in hand keeps the memory until it
 * is answered. */
static void
close_conn(struct httpd_conn *c)
{
	struct httpd *h = c->h;

	if (c->bev == NULL)
		return;
	bufferevent_free(c->bev);
	c->bev = NULL;
	evtimer_del(c->timer);
	peers_del(h->peers, c->peer);
	h->st.active--;
	unlink_conn(&h->conns, c);
	if (c->busy || c->in_process)
		push_conn(&h->zombies, c);
	else
		free_conn(c);
	set_accepting(h, h->st.active < h->cfg.max_conns);
	reap(h);
}

static void
add_date(struct httpd *h, struct evbuffer *out)
{
	time_t now = time(NULL);
	struct tm tm;

	if (now != h->date_t) {
		gmtime_r(&now, &tm);
		strftime(h->date, sizeof h->date,
		    "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
		h->date_t = now;
	}
	evbuffer_add(out, h->date, strlen(h->date));
}

/* Once the output is written: close, or start dropping what the client
 * still sends (see LINGER_MS). */
static void
finish(struct httpd_conn *c)
{
	if (!c->linger_after || c->eof) {
		close_conn(c);
		return;
	}
	c->lingering = 1;
	shutdown(bufferevent_getfd(c->bev), SHUT_WR);
	bufferevent_disable(c->bev, EV_WRITE);
	bufferevent_enable(c->bev, EV_READ);
	arm(c, stats_mono_us() + LINGER_MS * 1000);
}

static void
write_answer(struct httpd_conn *c, int status, const char *headers,
    const char *body, size_t len)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char line[160];
	int n;

	n = snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", status,
	    httpd_reason(status));
	evbuffer_add(out, line, (size_t)n);
	add_date(c->h, out);
	if (headers && *headers)
		evbuffer_add(out, headers, strlen(headers));
	if (c->closing)
		evbuffer_add(out, "Connection: close\r\n", 19);
	else if (c->minor0)
		evbuffer_add(out, "Connection: keep-alive\r\n", 24);
	n = snprintf(line, sizeof line, "Content-Length: %zu\r\n\r\n", len);
	evbuffer_add(out, line, (size_t)n);
	if (!c->head && len > 0)
		evbuffer_add(out, body, len);
}

/* An answer of the server's own (a bad request, a cut one): JSON
 * {"error": why}, and the connection closes after it. */
static void
own_answer(struct httpd_conn *c, int status, const char *headers,
    const char *why)
{
	char body[300];
	size_t i, n = 0;

	n += (size_t)snprintf(body, sizeof body, "{\"error\":\"");
	for (i = 0; why[i] && n < sizeof body - 8; i++) {
		unsigned char ch = (unsigned char)why[i];

		if (ch == '"' || ch == '\\') {
			body[n++] = '\\';
			body[n++] = (char)ch;
		} else if (ch < 0x20 || ch == 0x7f) {
			body[n++] = ' ';
		} else {
			body[n++] = (char)ch;
		}
	}
	n += (size_t)snprintf(body + n, sizeof body - n, "\"}\n");
	c->closing = 1;
	c->linger_after = 1;
	write_answer(c, status, headers, body, n);
	bufferevent_disable(c->bev, EV_READ);
	evtimer_del(c->timer);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		finish(c);
}

/* curl (and others) wait a second for "100 Continue" before a body of some
 * size: answer it as soon as the head is read, whatever the reads' sizes. */
static void
maybe_continue(struct httpd_conn *c)
{
	const char *e;

	if (c->continued || !httpreq_head_read(&c->req))
		return;
	c->continued = 1;
	e = httpreq_header(&c->req, "Expect");
	if (e && strcasecmp(e, "100-continue") == 0)
		evbuffer_add(bufferevent_get_output(c->bev),
		    "HTTP/1.1 100 Continue\r\n\r\n", 25);
}

static void
hand_over(struct httpd_conn *c)
{
	struct httpd *h = c->h;

	c->busy = 1;
	c->head = strcmp(c->req.method, "HEAD") == 0;
	c->keep = c->req.keep_alive != 0;
	c->minor0 = c->req.http_minor == 0;
	evtimer_del(c->timer);
	bufferevent_disable(c->bev, EV_READ);
	h->st.requests++;
	h->fn(c, &c->req, h->arg);
}

static void
refuse(struct httpd_conn *c, const struct httpreq *r)
{
	struct httpd *h = c->h;

	if (r->status == 413)
		h->st.too_large++;
	else
		h->st.bad_requests++;
	c->minor0 = 0;
	c->head = 0;
	own_answer(c, r->status, r->status == 503 ?
	    "Content-Type: application/json\r\nRetry-After: 1\r\n" :
	    "Content-Type: application/json\r\n",
	    r->error[0] ? r->error : httpd_reason(r->status));
}

static void
process(struct httpd_conn *c)
{
	struct evbuffer *in;
	struct evbuffer_iovec v;
	enum httpreq_state st;
	size_t used;

	if (c->in_process || c->bev == NULL)
		return;
	c->in_process = 1;
	while (c->bev && !c->busy && !c->closing) {
		int was;

		if (evbuffer_get_length(bufferevent_get_output(c->bev)) >
		    OUT_HIGH) {
			c->waiting_out = 1;
			break;
		}
		in = bufferevent_get_input(c->bev);
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			break;
		was = httpreq_started(&c->req) > 0;
		st = httpreq_feed(&c->req, v.iov_base, v.iov_len, &used);
		if (!was && httpreq_started(&c->req) > 0) {
			int s;

			c->started_us = stats_mono_us();
			c->continued = 0;
			arm(c, deadline(c, &s));
		}
		if (st == HTTPREQ_MORE)
			maybe_continue(c);
		evbuffer_drain(in, used);
		if (st == HTTPREQ_ERROR) {
			refuse(c, &c->req);
			break;
		}
		if (st == HTTPREQ_DONE)
			hand_over(c);
	}
	c->in_process = 0;
	if (c->bev == NULL) {
		if (!c->busy) {	/* closed while answering synchronously */
			unlink_conn(&c->h->zombies, c);
			free_conn(c);
		}
		return;
	}
	if (c->busy || c->closing || c->waiting_out) {
		bufferevent_disable(c->bev, EV_READ);
		return;
	}
	if (c->eof) {
		/* nothing more will come: a half-read request never ends */
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
			close_conn(c);
		else
			c->closing = 1;
		return;
	}
	bufferevent_enable(c->bev, EV_READ);
}

void
httpd_close_after(struct httpd_conn *c)
{
	c->close_after = 1;
}

void
httpd_reply(struct httpd_conn *c, int status, const char *headers,
    const char *body, size_t len)
{
	struct httpd *h = c->h;
	int s;

	if (!c->busy)
		return;
	c->busy = 0;
	if (c->bev == NULL) {	/* the peer went away meanwhile */
		if (!c->in_process) {
			unlink_conn(&h->zombies, c);
			free_conn(c);
		}
		return;
	}
	if (!c->keep || c->close_after || h->draining || c->eof)
		c->closing = 1;
	write_answer(c, status, headers, body, len);
	c->nreq++;
	c->close_after = 0;
	httpreq_reset(&c->req);
	c->last_read_us = stats_mono_us();
	if (c->closing) {
		bufferevent_disable(c->bev, EV_READ);
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
			finish(c);
		return;
	}
	arm(c, deadline(c, &s));
	if (!c->in_process)
		process(c);
}

const char *
httpd_conn_peer(const struct httpd_conn *c)
{
	return c->peer;
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct httpd_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	c->last_read_us = stats_mono_us();
	if (c->lingering) {
		c->lingered += evbuffer_get_length(in);
		evbuffer_drain(in, evbuffer_get_length(in));
		if (c->lingered > LINGER_BYTES)
			close_conn(c);
		return;
	}
	process(c);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct httpd_conn *c = arg;

	(void)bev;
	if (c->closing && !c->busy && !c->lingering) {
		finish(c);
		return;
	}
	if (c->waiting_out) {
		c->waiting_out = 0;
		process(c);
	}
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct httpd_conn *c = arg;

	(void)bev;
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	    (what & BEV_EVENT_READING) && !c->lingering) {
		/* a client that half-closes still gets its answer */
		c->eof = 1;
		if (c->busy)
			return;
		if (!c->closing && evbuffer_get_length(
		    bufferevent_get_input(c->bev)) > 0) {
			process(c);
			return;
		}
		if (!c->closing && evbuffer_get_length(
		    bufferevent_get_output(c->bev)) > 0) {
			c->closing = 1;
			return;
		}
		if (c->closing)
			return;
	}
	close_conn(c);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct httpd_conn *c = arg;
	struct httpd *h = c->h;
	int64_t now = stats_mono_us(), at;
	int started;

	(void)fd;
	(void)what;
	if (c->bev == NULL || c->busy)
		return;
	if (c->lingering || c->closing) {
		close_conn(c);
		return;
	}
	at = deadline(c, &started);
	if (now < at) {
		arm(c, at);
		return;
	}
	if (started) {
		h->st.request_timeouts++;
		c->minor0 = 0;
		c->head = 0;
		/* the client may be slow, not hostile: 503 is retried */
		own_answer(c, 503, "Content-Type: application/json\r\n"
		    "Retry-After: 1\r\n", "request not received in time");
		return;
	}
	if (c->nreq == 0)
		h->st.request_timeouts++;
	else
		h->st.idle_closed++;
	close_conn(c);
}

/* Refused at accept: the answer is sent at once and the socket closed; the
 * client retries a 503. */
static void
refuse_addr(int fd)
{
	static const char body[] =
	    "{\"error\":\"too many connections from your address\"}\n";
	char msg[300];
	int n;
	ssize_t w;

	n = snprintf(msg, sizeof msg, "HTTP/1.1 503 Service Unavailable\r\n"
	    "Content-Type: application/json\r\nRetry-After: 1\r\n"
	    "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
	    sizeof body - 1, body);
	w = send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w;
	shutdown(fd, SHUT_WR);
	close(fd);
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct httpd *h = arg;
	struct httpd_conn *c;
	char peer[64];
	int one = 1;

	(void)l;
	(void)salen;
	if (h->draining || h->st.active >= h->cfg.max_conns) {
		close(fd);
		set_accepting(h, 0);
		return;
	}
	peers_addr_text(sa, peer);
	if (peers_add(h->peers, peer) < 0) {
		h->st.per_addr_refused++;
		refuse_addr(fd);
		return;
	}
	c = calloc(1, sizeof *c);
	if (c == NULL || httpreq_init(&c->req, &h->cfg.req) < 0) {
		free(c);
		peers_del(h->peers, peer);
		close(fd);
		return;
	}
	c->h = h;
	memcpy(c->peer, peer, sizeof c->peer);
	c->timer = evtimer_new(h->base, on_timer, c);
	c->bev = bufferevent_socket_new(h->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->timer == NULL || c->bev == NULL) {
		if (c->bev)
			bufferevent_free(c->bev);
		else
			close(fd);
		peers_del(h->peers, peer);
		free_conn(c);
		return;
	}
	if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->accepted_us = c->last_read_us = stats_mono_us();
	push_conn(&h->conns, c);
	h->st.active++;
	h->st.total++;
	{
		struct timeval wt = { h->cfg.idle_ms / 1000,
		    (h->cfg.idle_ms % 1000) * 1000 };

		bufferevent_set_timeouts(c->bev, NULL, &wt);
	}
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_enable(c->bev, EV_READ);
	{
		int s;

		arm(c, deadline(c, &s));
	}
	if (h->st.active >= h->cfg.max_conns)
		set_accepting(h, 0);
}

struct httpd *
httpd_new(struct event_base *base, const struct httpd_cfg *cfg,
    httpd_handler fn, void *arg, char *err, size_t errlen)
{
	struct httpd *h = calloc(1, sizeof *h);

	if (h == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->base = base;
	h->cfg = *cfg;
	h->fn = fn;
	h->arg = arg;
	h->peers = peers_new(cfg->max_per_addr);
	h->drain_ev = event_new(base, -1, 0, on_drained, h);
	if (h->peers == NULL || h->drain_ev == NULL) {
		snprintf(err, errlen, "out of memory");
		httpd_free(h);
		return NULL;
	}
	return h;
}

int
httpd_listen(struct httpd *h, int fd, char *err, size_t errlen)
{
	struct evconnlistener *l;

	if (h->nlev == HTTPD_MAX_LISTEN) {
		snprintf(err, errlen, "at most %d listening sockets",
		    HTTPD_MAX_LISTEN);
		return -1;
	}
	l = evconnlistener_new(h->base, on_accept, h, LEV_OPT_CLOSE_ON_FREE |
	    LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (l == NULL) {
		snprintf(err, errlen, "cannot accept on descriptor %d: %s", fd,
		    strerror(errno));
		return -1;
	}
	if (h->paused)
		evconnlistener_disable(l);
	h->lev[h->nlev++] = l;
	return 0;
}

void
httpd_on_cap(struct httpd *h, void (*fn)(void *, long), void *arg)
{
	h->on_cap = fn;
	h->on_cap_arg = arg;
}

void
httpd_drain(struct httpd *h, void (*done)(void *), void *arg)
{
	struct httpd_conn *c, *next;
	int i;

	for (i = 0; i < h->nlev; i++)
		evconnlistener_free(h->lev[i]);
	h->nlev = 0;
	h->draining = 1;
	h->drained = done;
	h->drained_arg = arg;
	for (c = h->conns; c; c = next) {
		next = c->next;
		if (c->busy || c->lingering)
			continue;
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
			c->closing = 1;
		else
			close_conn(c);
	}
	reap(h);
}

void
httpd_get_stats(const struct httpd *h, struct httpd_stats *s)
{
	*s = h->st;
	s->addresses = peers_addresses(h->peers);
}

void
httpd_free(struct httpd *h)
{
	struct httpd_conn *c;
	int i;

	if (h == NULL)
		return;
	for (i = 0; i < h->nlev; i++)
		evconnlistener_free(h->lev[i]);
	h->nlev = 0;
	h->draining = 1;
	h->drained = NULL;
	while ((c = h->conns) != NULL) {
		c->busy = 0;
		close_conn(c);
	}
	while ((c = h->zombies) != NULL) {
		unlink_conn(&h->zombies, c);
		free_conn(c);
	}
	if (h->drain_ev)
		event_free(h->drain_ev);
	if (h->peers)
		peers_free(h->peers);
	free(h);
}
