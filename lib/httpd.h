/* httpd.h: an HTTP/1.1 server's connections on a libevent loop, bounded
 * against abuse: exact connection counts, a cap per peer address, a
 * whole-request deadline that trickling cannot stretch, and one request at
 * a time per connection (keep-alive and pipelining, answers in order). The
 * program sees whole requests (lib/httpreq) and answers each once. */
#ifndef LABPULSE_HTTPD_H
#define LABPULSE_HTTPD_H

#include <stddef.h>

#include "httpreq.h"

struct event_base;
struct httpd;
struct httpd_conn;

struct httpd_cfg {
	long max_conns;		/* open connections; at the cap, accepting stops */
	long max_per_addr;	/* connections one peer address holds; 0: no cap */
	long idle_ms;		/* wait for a request's first byte, and between
				 * reads of a request; also the write timeout */
	long request_ms;	/* a whole request, from its connection's accept
				 * (first request) or from its first byte */
	struct httpreq_limits req;
};

/* Counters since start, and the open connections. */
struct httpd_stats {
	long active;			/* accepted and not yet closed */
	long addresses;			/* peer addresses holding one */
	unsigned long total;		/* accepted */
	unsigned long cap_reached;	/* times accepting stopped at max_conns */
	unsigned long per_addr_refused;	/* answered 503 at accept: the
					 * address held max_per_addr */
	unsigned long request_timeouts;	/* cut: a request not whole in time */
	unsigned long idle_closed;	/* closed idle between requests */
	unsigned long bad_requests;	/* answered 400, 431, 501 or 505 */
	unsigned long too_large;	/* answered 413 */
	unsigned long requests;		/* whole requests handed over */
};

/* A whole request on c. The handler answers it exactly once with
 * httpd_reply, at once or later; until then c stays valid (even when the
 * peer has gone) and nothing more is read from it. r is valid until the
 * answer. */
typedef void (*httpd_handler)(struct httpd_conn *c, const struct httpreq *r,
    void *arg);

/* A server on base answering with fn; NULL with err when out of memory.
 * cfg is copied. */
struct httpd *httpd_new(struct event_base *base, const struct httpd_cfg *cfg,
    httpd_handler fn, void *arg, char *err, size_t errlen);
/* Accept on fd, a listening nonblocking socket (the server owns it from
 * now on); -1 with err. */
int httpd_listen(struct httpd *h, int fd, char *err, size_t errlen);
/* Answer the request handed over on c: status, then the header lines in
 * headers (each ending "\r\n", may be ""), Content-Length and the body.
 * The server adds the status line, Date and Connection; the body is left
 * out for HEAD. After it the connection reads the next request, or closes
 * (the client's wish, draining, or a status >= 400 the server chose). */
void httpd_reply(struct httpd_conn *c, int status, const char *headers,
    const char *body, size_t len);
/* Close c after this answer even when it could be kept alive. */
void httpd_close_after(struct httpd_conn *c);
/* The peer's address as lib/peers keys it ("192.0.2.1", "unix"). */
const char *httpd_conn_peer(const struct httpd_conn *c);
/* Stop accepting (the listening sockets are closed) and close each
 * connection once it holds no request in hand; done(arg) is called once
 * none is left open. */
void httpd_drain(struct httpd *h, void (*done)(void *), void *arg);
/* Called when accepting stops at max_conns (a log line, say). */
void httpd_on_cap(struct httpd *h, void (*fn)(void *, long), void *arg);
void httpd_get_stats(const struct httpd *h, struct httpd_stats *s);
/* Close everything; requests still in hand are not answered. */
void httpd_free(struct httpd *h);

/* The reason phrase of status ("Accepted"), "Unknown" when none is known. */
const char *httpd_reason(int status);

#endif
