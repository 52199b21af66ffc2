/* server.c: the HTTP side of notify: read a request with httpreq, within
 * a deadline, then answer it as request.c decided (/healthz, the
 * dashboard's files from web.c, a 4xx), or hand a stream's request back to
 * client.c, which turns the connection into a WebSocket (the RFC 6455
 * handshake's answer is written here, frames go through wslay) or an SSE
 * stream. libevent 2.1's evhttp cannot hand a connection over to another
 * protocol, so the request is read here. A file's answer may keep the
 * connection for the next request, as browsers expect. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "httpreq.h"
#include "log.h"
#include "notify.h"

#define MAX_HEAD	8192	/* request line and header fields */
#define MAX_HEADERS	64
/* A GET has no body; a small one is read so that any other method gets
 * its 405 rather than a 413. */
#define MAX_BODY	4096

static const char *
status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 426: return "Upgrade Required";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

void
server_reply(struct client *c, int status, const char *ctype,
    const char *extra, const char *body, size_t len)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nCache-Control: no-cache\r\n"
	    "X-Content-Type-Options: nosniff\r\n%sConnection: close\r\n\r\n",
	    status, status_text(status), ctype, len, extra ? extra : "");
	if (!c->head_only)
		evbuffer_add(out, body, len);
}

void
server_error_extra(struct client *c, int status, const char *extra,
    const char *msg)
{
	jv o = jv_object_set(jv_object(), jv_string("error"), jv_string(msg));
	jv s = jv_dump_string(o, 0);
	char head[256];

	snprintf(head, sizeof head, "%s%s", extra ? extra : "",
	    status == 401 ? "WWW-Authenticate: Bearer realm=\"labpulse\"\r\n" :
	    status == 503 ? "Retry-After: 5\r\n" : "");
	server_reply(c, status, "application/json", head, jv_string_value(s),
	    (size_t)jv_string_length_bytes(jv_copy(s)));
	jv_free(s);
}

void
server_error(struct client *c, int status, const char *msg)
{
	server_error_extra(c, status, NULL, msg);
}

/* Does the comma-separated list of entity tags (If-None-Match) hold tag,
 * weakly compared (a W/ prefix aside), or "*"? */
static int
tag_matches(const char *list, const char *tag)
{
	size_t tl = strlen(tag);
	const char *p = list;

	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return 1;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		if (strncmp(p, tag, tl) == 0 &&
		    (p[tl] == '\0' || p[tl] == ',' || p[tl] == ' ' ||
		    p[tl] == '\t'))
			return 1;
		p = strchr(p, ',');
		if (p == NULL)
			break;
	}
	return 0;
}

/* Does Accept-Encoding allow gzip (named, or *, with a q above 0)? */
static int
takes_gzip(const char *ae)
{
	const char *p = ae;
	int star = 0, gzip = -1;

	while (p && *p) {
		size_t nl;
		const char *semi, *end = strchr(p, ',');
		int q = 1;

		while (*p == ' ' || *p == '\t')
			p++;
		nl = strcspn(p, " \t;,");
		if (end == NULL)
			end = p + strlen(p);
		semi = memchr(p, ';', (size_t)(end - p));
		if (semi) {
			const char *qv = strstr(semi, "q=");

			/* q=0, q=0.0, q=0.000: refused */
			if (qv && qv < end && qv[2] == '0' &&
			    strspn(qv + 3, ".0") == strcspn(qv + 3, " \t,"))
				q = 0;
		}
		if (nl == 4 && strncasecmp(p, "gzip", 4) == 0)
			gzip = q;
		else if (nl == 1 && *p == '*')
			star = q;
		p = *end ? end + 1 : end;
	}
	return gzip >= 0 ? gzip : star;
}

/* The query's v=, when it is a version: "" when none. */
static void
query_version(const char *query, char *out, size_t outlen)
{
	const char *p = query;

	out[0] = '\0';
	while (p && *p) {
		size_t len = strcspn(p, "&");

		if (strncmp(p, "v=", 2) == 0 && len - 2 < outlen) {
			memcpy(out, p + 2, len - 2);
			out[len - 2] = '\0';
			return;
		}
		p += len;
		if (*p == '&')
			p++;
	}
}

/* A file of the dashboard, as browsers expect: validators, a year's
 * caching for a versioned reference (the page's NAME?v=VERSION), no-cache
 * and a validator for the rest, gzip when asked. 1 when the connection
 * may carry another request. */
static int
serve_static(struct client *c, const char *path)
{
	const struct webfile *f = web_find(c->n->web, path);
	const char *inm = httpreq_header(c->req, "If-None-Match");
	const char *ae = httpreq_header(c->req, "Accept-Encoding");
	char v[32], head[768];
	const char *body, *etag, *cache;
	size_t len;
	int gz, status = 200, keep;
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (f == NULL) {
		server_error(c, 404, "no such page");
		return 0;
	}
	query_version(c->req->query, v, sizeof v);
	/* an old page may ask for an old version: it gets today's, which
	 * must not be kept under the old name for a year */
	cache = strcmp(v, f->version) == 0 ?
	    "public, max-age=31536000, immutable" : "no-cache";
	gz = f->gz && ae && takes_gzip(ae);
	body = gz ? f->gz : f->body;
	len = gz ? f->gzlen : f->len;
	etag = gz ? f->gzetag : f->etag;
	if (inm && tag_matches(inm, etag))
		status = 304;
	c->served++;
	/* a few hundred requests a connection, then another: a client that
	 * never lets go does not keep its slot forever */
	keep = c->req->keep_alive && c->served < NOTIFY_KEEPALIVE_MAX;
	snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\n"
	    "Content-Type: %s\r\n"
	    "Cache-Control: %s\r\n"
	    "ETag: %s\r\n"
	    "%s%s"
	    "X-Content-Type-Options: nosniff\r\n"
	    "Content-Security-Policy: default-src 'self'; connect-src 'self'; "
	    "frame-ancestors 'none'\r\n"
	    "Referrer-Policy: no-referrer\r\n"
	    "Connection: %s\r\n",
	    status, status_text(status), f->ctype, cache, etag,
	    f->gz ? "Vary: Accept-Encoding\r\n" : "",
	    gz ? "Content-Encoding: gzip\r\n" : "",
	    keep ? "keep-alive" : "close");
	evbuffer_add(out, head, strlen(head));
	/* a 304 says nothing of a length: its 200 would have it */
	if (status == 200)
		evbuffer_add_printf(out, "Content-Length: %zu\r\n", len);
	evbuffer_add(out, "\r\n", 2);
	if (status == 200 && !c->head_only)
		evbuffer_add(out, body, len);
	return keep;
}

void
server_upgrade(struct client *c, const char *accept)
{
	evbuffer_add_printf(bufferevent_get_output(c->bev),
	    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
	    accept);
}

/* Act on a whole request: 1 when it asks for a stream (q is the caller's
 * then), 2 when it was answered and the connection may carry another, -1
 * when it was answered and is to be closed. */
static int
route(struct client *c, struct nreq *q)
{
	int ret = -1;

	if (nreq_parse(c->req, q) < 0) {
		c->n->oom_closed++;
		server_error(c, 503, "out of memory");
		return -1;
	}
	c->head_only = q->head;
	switch (q->kind) {
	case NREQ_ERROR:
		c->n->malformed++;
		log_info("bad request peer=%s status=%d reason=\"%s\"", c->peer,
		    q->status, q->msg);
		server_error_extra(c, q->status, q->extra, q->msg);
		break;
	case NREQ_HEALTH:
		if (feed_is_up(c->n) && !c->n->d.stop)
			server_reply(c, 200, "text/plain", NULL, "ok\n", 3);
		else
			server_reply(c, 503, "text/plain", NULL, "unavailable\n",
			    12);
		break;
	case NREQ_STATIC:
		if (serve_static(c, q->path))
			ret = 2;
		break;
	case NREQ_WS:
	case NREQ_SSE:
		return 1;
	}
	nreq_free(q);
	return ret;
}

int
server_request(struct client *c, struct nreq *q)
{
	static const struct httpreq_limits lim = { MAX_HEAD, MAX_BODY,
	    MAX_HEADERS };
	struct evbuffer *in = bufferevent_get_input(c->bev);
	enum httpreq_state st = HTTPREQ_MORE;
	int ret;

	if (c->req == NULL) {
		c->req = malloc(sizeof *c->req);
		if (c->req == NULL || httpreq_init(c->req, &lim) < 0) {
			free(c->req);
			c->req = NULL;
			c->n->oom_closed++;
			server_error(c, 503, "out of memory");
			return -1;
		}
	}
	/* httpreq takes the bytes as they are, NULs and all; what follows a
	 * whole request stays in the buffer (a WebSocket's first frames) */
	while (st == HTTPREQ_MORE && evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v[4];
		size_t took = 0, used;
		int nv = evbuffer_peek(in, -1, NULL, v, 4), i;

		if (nv <= 0)
			break;
		for (i = 0; i < nv && i < 4 && st == HTTPREQ_MORE; i++) {
			used = 0;
			st = httpreq_feed(c->req, v[i].iov_base, v[i].iov_len,
			    &used);
			/* MORE: every byte was taken, whatever *used says */
			took += st == HTTPREQ_MORE ? v[i].iov_len : used;
		}
		evbuffer_drain(in, took);
	}
	if (st == HTTPREQ_MORE)
		return 0;
	if (st == HTTPREQ_ERROR) {
		c->n->malformed++;
		log_info("bad request peer=%s status=%d reason=\"%s\"", c->peer,
		    c->req->status, c->req->error);
		server_error(c, c->req->status, c->req->error);
		ret = -1;
	} else {
		ret = route(c, q);
	}
	httpreq_free(c->req);
	free(c->req);
	c->req = NULL;
	/* a HEAD's answer is queued: the next answer on this connection (the
	 * next request's, a 408) has its body */
	c->head_only = 0;
	return ret;
}
