/* http.c: the students' POSTs over keep-alive connections, on libevent's own
 * HTTP client (evhttp), and the GET /healthz that comes first.
 *
 * Why evhttp rather than libcurl's multi interface: measured on this
 * 2-core machine, the client pinned to one core and a trivial keep-alive
 * server (a fixed 202) on the other, 64 connections, ~600-byte
 * single-event POSTs, closed loop:
 *
 *	wrk -t1 -c64                    157,000 requests/s
 *	evhttp client on libevent       100,000-120,000 requests/s
 *	curl multi on the same loop      65,000-68,000 requests/s
 *
 * curl's per-transfer work (its connection cache, state machine and timer
 * tree, the remove/add of an easy handle per request) costs more than
 * evhttp's request objects; without the epoll change list below both drop
 * (78,000 and 50,000), since evhttp switches read and write interest
 * several times a request and the change list folds them into one
 * epoll_ctl. evhttp clears the bar of half of wrk with room for loadgen's
 * own work; curl would not. What evhttp lacks (TLS, Unix sockets) ingest
 * does not need from a load generator on its own network.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "loadgen.h"
#include "prog.h"

/* The idle connections take turns: each is at most once in the ring. */
static void
idle_push(struct lg *lg, struct lg_hconn *c)
{
	lg->idle[(lg->idle_first + lg->nidle++) % lg->nconns] = c;
}

static struct lg_hconn *
idle_pop(struct lg *lg)
{
	struct lg_hconn *c = lg->idle[lg->idle_first];

	lg->idle_first = (lg->idle_first + 1) % lg->nconns;
	lg->nidle--;
	return c;
}

static void
on_error(enum evhttp_request_error e, void *arg)
{
	struct lg_hconn *c = arg;

	c->error = (int)e;
}

/* The answer, or NULL after an error the error callback named; a response
 * code of 0 is a connection that could not be made (evhttp calls back
 * without an error then). */
static void
on_answer(struct evhttp_request *hr, void *arg)
{
	struct lg_hconn *c = arg;
	struct lg *lg = c->lg;
	struct lg_req *r = c->req;
	enum lg_fail fail = F_NONE;
	int status = 0;

	if (hr == NULL)
		fail = c->error == EVREQ_HTTP_TIMEOUT ? F_TIMEOUT : F_RESET;
	else if ((status = evhttp_request_get_response_code(hr)) == 0)
		fail = F_CONNECT;
	c->error = -1;
	c->req = NULL;
	idle_push(lg, c);
	if (r != NULL) {
		lg->inflight--;
		students_answer(lg, r, status, fail);
	}
	students_pump(lg);
}

int
http_has_idle(const struct lg *lg)
{
	return lg->nidle > 0;
}

int
http_send(struct lg *lg, struct lg_req *r)
{
	struct lg_hconn *c;
	struct evhttp_request *hr;
	struct evkeyvalq *h;

	if (lg->nidle == 0)
		return 0;
	c = idle_pop(lg);
	hr = evhttp_request_new(on_answer, c);
	if (hr == NULL)
		die_nomem();
	evhttp_request_set_error_cb(hr, on_error);
	h = evhttp_request_get_output_headers(hr);
	evhttp_add_header(h, "Host", lg->ingest.hostport);
	evhttp_add_header(h, "Content-Type", "application/json");
	if (evbuffer_add(evhttp_request_get_output_buffer(hr), r->body,
	    r->len) < 0)
		die_nomem();
	c->req = r;
	c->error = -1;
	r->sent_us = lg_now_us();
	students_written(lg, r);
	lg->inflight++;
	if (evhttp_make_request(c->evcon, hr, EVHTTP_REQ_POST,
	    lg->events_path) < 0) {
		/* evhttp freed hr; the connection could not even start */
		c->req = NULL;
		idle_push(lg, c);
		lg->inflight--;
		students_answer(lg, r, 0, F_CONNECT);
	}
	return 1;
}

int
http_init(struct lg *lg, char *err, size_t errlen)
{
	struct timeval tv;
	long i;

	snprintf(lg->events_path, sizeof lg->events_path, "%s/api/v1/events",
	    lg->ingest.path);
	lg->nconns = lg->cfg.conns;
	lg->conns = calloc((size_t)lg->nconns, sizeof *lg->conns);
	lg->idle = calloc((size_t)lg->nconns, sizeof *lg->idle);
	if (lg->conns == NULL || lg->idle == NULL)
		die_nomem();
	tv.tv_sec = lg->cfg.timeout_ms / 1000;
	tv.tv_usec = (lg->cfg.timeout_ms % 1000) * 1000;
	for (i = 0; i < lg->nconns; i++) {
		struct lg_hconn *c = &lg->conns[i];

		c->lg = lg;
		c->error = -1;
		/* a numeric host: evhttp resolves nothing at connect time */
		c->evcon = evhttp_connection_base_new(lg->base, NULL,
		    lg->ingest.numeric, (unsigned short)lg->ingest.port_n);
		if (c->evcon == NULL) {
			snprintf(err, errlen, "cannot make an HTTP connection");
			return -1;
		}
		evhttp_connection_set_timeout_tv(c->evcon, &tv);
		idle_push(lg, c);
	}
	return 0;
}

/* ---- GET /healthz ---- */

static void
on_health_error(enum evhttp_request_error e, void *arg)
{
	struct lg *lg = arg;

	snprintf(lg->health_error, sizeof lg->health_error, "%s",
	    e == EVREQ_HTTP_TIMEOUT ? "no answer in time" :
	    e == EVREQ_HTTP_EOF ? "connection closed without an answer" :
	    "not an HTTP answer");
}

static void
on_health(struct evhttp_request *hr, void *arg)
{
	struct lg *lg = arg;

	lg->health_done = 1;
	if (hr != NULL) {
		lg->health_status = evhttp_request_get_response_code(hr);
		if (lg->health_status == 0)
			snprintf(lg->health_error, sizeof lg->health_error,
			    "cannot connect");
		else if (lg->health_status < 200 || lg->health_status > 299)
			snprintf(lg->health_error, sizeof lg->health_error,
			    "GET /healthz answered %d", lg->health_status);
	}
	event_base_loopbreak(lg->base);
}

void
http_health(struct lg *lg)
{
	struct evhttp_connection *evcon;
	struct evhttp_request *hr;
	struct timeval tv;
	char path[1040];

	tv.tv_sec = lg->cfg.timeout_ms / 1000;
	tv.tv_usec = (lg->cfg.timeout_ms % 1000) * 1000;
	snprintf(path, sizeof path, "%s/healthz", lg->ingest.path);
	evcon = evhttp_connection_base_new(lg->base, NULL, lg->ingest.numeric,
	    (unsigned short)lg->ingest.port_n);
	hr = evhttp_request_new(on_health, lg);
	if (evcon == NULL || hr == NULL)
		die_nomem();
	evhttp_connection_set_timeout_tv(evcon, &tv);
	evhttp_request_set_error_cb(hr, on_health_error);
	evhttp_add_header(evhttp_request_get_output_headers(hr), "Host",
	    lg->ingest.hostport);
	if (evhttp_make_request(evcon, hr, EVHTTP_REQ_GET, path) < 0) {
		lg->health_done = 1;
		snprintf(lg->health_error, sizeof lg->health_error,
		    "cannot connect");
	} else {
		event_base_dispatch(lg->base);
	}
	evhttp_connection_free(evcon);
}

void
http_free(struct lg *lg)
{
	long i;

	for (i = 0; i < lg->nconns; i++)
		if (lg->conns[i].evcon)
			evhttp_connection_free(lg->conns[i].evcon);
	free(lg->conns);
	lg->conns = NULL;
	lg->nconns = 0;
	free(lg->idle);
	lg->idle = NULL;
	lg->idle_first = lg->nidle = 0;
}
