/* server.c: the HTTP side of notify: read one request with httpreq, within
 * a deadline set at accept, then answer it as request.c decided (/healthz,
 * the dashboard's static files, a 4xx) or turn the connection into a
 * WebSocket (RFC 6455 handshake here, frames through wslay) or an SSE
 * stream. libevent 2.1's evhttp cannot hand a connection over to another
 * protocol, so the request is read here. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
#define MAX_STATIC	(1 << 20)

static const char *
status_text(int status)
{
	switch (status) {
	case 200: return "OK";
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

static const char *
content_type(const char *name)
{
	const char *dot = strrchr(name, '.');

	if (dot == NULL)
		return "application/octet-stream";
	if (strcmp(dot, ".html") == 0)
		return "text/html; charset=utf-8";
	if (strcmp(dot, ".js") == 0)
		return "text/javascript; charset=utf-8";
	if (strcmp(dot, ".css") == 0)
		return "text/css; charset=utf-8";
	if (strcmp(dot, ".svg") == 0)
		return "image/svg+xml";
	if (strcmp(dot, ".png") == 0)
		return "image/png";
	if (strcmp(dot, ".ico") == 0)
		return "image/x-icon";
	return "application/octet-stream";
}

/* A file of the dashboard: a plain name in the web root, nothing else. */
static void
serve_static(struct client *c, const char *path)
{
	const char *name = strcmp(path, "/") == 0 ? "index.html" : path + 1;
	char file[1024], *buf;
	struct stat st;
	ssize_t got;
	int fd;

	if (*name == '.' || strspn(name, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != strlen(name) ||
	    snprintf(file, sizeof file, "%s/%s", c->n->web_root, name) >=
	    (int)sizeof file) {
		server_error(c, 404, "no such page");
		return;
	}
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > MAX_STATIC) {
		if (fd >= 0)
			close(fd);
		server_error(c, 404, "no such page");
		return;
	}
	buf = malloc((size_t)st.st_size + 1);
	got = buf ? read(fd, buf, (size_t)st.st_size) : -1;
	close(fd);
	if (got != st.st_size) {
		free(buf);
		server_error(c, 503, "cannot read the page");
		return;
	}
	server_reply(c, 200, content_type(name),
	    "Content-Security-Policy: default-src 'self'; connect-src 'self'; "
	    "frame-ancestors 'none'\r\nReferrer-Policy: no-referrer\r\n",
	    buf, (size_t)got);
	free(buf);
}

/* Act on a whole request: 1 when the client is a WebSocket or SSE one
 * now, -1 when it was answered. */
static int
route(struct client *c)
{
	struct nreq q;
	int ret = -1;

	if (nreq_parse(c->req, &q) < 0) {
		c->n->oom_closed++;
		server_error(c, 503, "out of memory");
		return -1;
	}
	switch (q.kind) {
	case NREQ_ERROR:
		c->n->malformed++;
		log_info("bad request peer=%s status=%d reason=\"%s\"", c->peer,
		    q.status, q.msg);
		server_error_extra(c, q.status, q.extra, q.msg);
		break;
	case NREQ_HEALTH:
		if (feed_is_up(c->n) && !c->n->stopping)
			server_reply(c, 200, "text/plain", NULL, "ok\n", 3);
		else
			server_reply(c, 503, "text/plain", NULL, "unavailable\n",
			    12);
		break;
	case NREQ_STATIC:
		serve_static(c, q.path);
		break;
	case NREQ_WS:
		if (client_ws_start(c) < 0) {
			c->n->oom_closed++;
			server_error(c, 503, "out of memory");
			break;
		}
		evbuffer_add_printf(bufferevent_get_output(c->bev),
		    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		    "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		    q.accept);
		client_subscribe(c, &q);
		ret = 1;
		break;
	case NREQ_SSE:
		c->kind = CK_SSE;
		client_subscribe(c, &q);
		ret = 1;
		break;
	}
	nreq_free(&q);
	return ret;
}

int
server_request(struct client *c)
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
		ret = route(c);
	}
	httpreq_free(c->req);
	free(c->req);
	c->req = NULL;
	return ret;
}
