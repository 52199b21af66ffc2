/* server.c: the HTTP side of notify: read one GET request, then answer it
 * (/healthz, the dashboard's static files) or turn the connection into a
 * WebSocket (RFC 6455 handshake here, frames through wslay) or an SSE
 * stream. libevent 2.1's evhttp cannot hand a connection over to another
 * protocol, so the request is parsed here, with evhttp's URI helpers. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <nettle/base64.h>
#include <nettle/sha1.h>

#include "log.h"
#include "notify.h"

#define MAX_REQUEST	8192
#define MAX_STATIC	(1 << 20)

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

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
	case 426: return "Upgrade Required";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
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
server_error(struct client *c, int status, const char *msg)
{
	jv o = jv_object_set(jv_object(), jv_string("error"), jv_string(msg));
	jv s = jv_dump_string(o, 0);
	const char *extra = NULL;

	if (status == 401)
		extra = "WWW-Authenticate: Bearer realm=\"labpulse\"\r\n";
	else if (status == 503)
		extra = "Retry-After: 5\r\n";
	server_reply(c, status, "application/json", extra, jv_string_value(s),
	    (size_t)jv_string_length_bytes(jv_copy(s)));
	jv_free(s);
}

/* The value of header name in the request's header block, or NULL. */
static const char *
header(struct evkeyvalq *h, const char *name)
{
	struct evkeyval *kv;

	TAILQ_FOREACH(kv, h, next)
		if (strcasecmp(kv->key, name) == 0)
			return kv->value;
	return NULL;
}

/* Does a comma-separated header value name token (case-insensitive)? */
static int
has_token(const char *value, const char *token)
{
	size_t tl = strlen(token);
	const char *p = value;

	while (p && *p) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		if (strncasecmp(p, token, tl) == 0 &&
		    (p[tl] == '\0' || p[tl] == ',' || p[tl] == ' '))
			return 1;
		p = strchr(p, ',');
	}
	return 0;
}

static int
parse_headers(char *block, struct evkeyvalq *h)
{
	char *line, *save = NULL, *colon, *v;

	for (line = strtok_r(block, "\r\n", &save); line;
	    line = strtok_r(NULL, "\r\n", &save)) {
		colon = strchr(line, ':');
		if (colon == NULL || colon == line)
			return -1;
		*colon = '\0';
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		evhttp_add_header(h, line, v);
	}
	return 0;
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

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)). */
static void
ws_accept(const char *key, char out[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE) + 1])
{
	struct sha1_ctx sha;
	uint8_t digest[SHA1_DIGEST_SIZE];

	sha1_init(&sha);
	sha1_update(&sha, strlen(key), (const uint8_t *)key);
	sha1_update(&sha, sizeof ws_guid - 1, (const uint8_t *)ws_guid);
	sha1_digest(&sha, sizeof digest, digest);
	base64_encode_raw(out, sizeof digest, digest);
	out[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE)] = '\0';
}

/* ?class=…&class=…&token=…&since=…: 0, or an HTTP status with msg. */
static int
take_query(struct client *c, const char *query, struct evkeyvalq *h,
    char *msg, size_t msglen)
{
	struct evkeyvalq q;
	struct evkeyval *kv;
	struct sid sid;
	const char *auth = header(h, "Authorization");
	const char *leid = header(h, "Last-Event-ID");
	int status = 0;

	TAILQ_INIT(&q);
	if (query && evhttp_parse_query_str(query, &q) < 0) {
		snprintf(msg, msglen, "malformed query string");
		return 400;
	}
	if (auth && strncasecmp(auth, "Bearer ", 7) == 0)
		snprintf(c->token, sizeof c->token, "%s", auth + 7);

	TAILQ_FOREACH(kv, &q, next) {
		if (strcmp(kv->key, "class") == 0) {
			if (*kv->value == '\0' || strlen(kv->value) > 120) {
				snprintf(msg, msglen, "class: must be 1 to 120 "
				    "bytes");
				status = 400;
				break;
			}
			if (c->nclasses == NOTIFY_MAX_CLASSES) {
				snprintf(msg, msglen, "class: at most %d classes",
				    NOTIFY_MAX_CLASSES);
				status = 400;
				break;
			}
			c->classes[c->nclasses++] = strdup(kv->value);
		} else if (strcmp(kv->key, "token") == 0 && c->token[0] == '\0') {
			snprintf(c->token, sizeof c->token, "%s", kv->value);
		} else if (strcmp(kv->key, "since") == 0) {
			snprintf(c->since, sizeof c->since, "%.47s", kv->value);
		}
	}
	evhttp_clear_headers(&q);
	/* EventSource reconnects with the id it saw last: newer than a ?since
	 * the page was opened with */
	if (leid && *leid)
		snprintf(c->since, sizeof c->since, "%.47s", leid);
	if (status)
		return status;
	if (c->nclasses == 0) {
		snprintf(msg, msglen, "class: name at least one class "
		    "(?class=NAME)");
		return 400;
	}
	if (c->since[0] && sid_parse(c->since, &sid) < 0) {
		snprintf(msg, msglen, "since: not a stream id (MS-SEQ): %s",
		    c->since);
		return 400;
	}
	return 0;
}

static int
upgrade_ws(struct client *c, const char *query, struct evkeyvalq *h)
{
	const char *up = header(h, "Upgrade"), *conn = header(h, "Connection");
	const char *key = header(h, "Sec-WebSocket-Key");
	const char *ver = header(h, "Sec-WebSocket-Version");
	char accept[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE) + 1], msg[200];
	int status;

	if (up == NULL || strcasecmp(up, "websocket") != 0 || conn == NULL ||
	    !has_token(conn, "upgrade")) {
		server_error(c, 426, "/ws is a WebSocket: send Upgrade: websocket");
		return -1;
	}
	if (ver == NULL || strcmp(ver, "13") != 0) {
		static const char v13[] =
		    "{\"error\":\"Sec-WebSocket-Version must be 13\"}";

		server_reply(c, 426, "application/json",
		    "Sec-WebSocket-Version: 13\r\n", v13, sizeof v13 - 1);
		return -1;
	}
	if (key == NULL || strlen(key) != 24) {
		server_error(c, 400, "Sec-WebSocket-Key: missing or malformed");
		return -1;
	}
	if (client_ws_start(c) < 0) {
		server_error(c, 503, "out of memory");
		return -1;
	}
	ws_accept(key, accept);
	evbuffer_add_printf(bufferevent_get_output(c->bev),
	    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
	status = take_query(c, query, h, msg, sizeof msg);
	client_subscribe(c, status, msg);
	return 1;
}

int
server_request(struct client *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer_ptr end;
	struct evkeyvalq h;
	char *req, *line_end, *method, *target, *version, *query, *path;
	size_t len;
	int ret = 1, status;
	char msg[200];

	end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (end.pos < 0) {
		if (evbuffer_get_length(in) > MAX_REQUEST) {
			server_error(c, 431, "request too large");
			return -1;
		}
		return 0;
	}
	len = (size_t)end.pos + 4;
	if (len > MAX_REQUEST) {
		server_error(c, 431, "request too large");
		return -1;
	}
	req = malloc(len + 1);
	evbuffer_remove(in, req, len);
	req[len] = '\0';
	TAILQ_INIT(&h);
	line_end = strstr(req, "\r\n");
	*line_end = '\0';
	method = req;
	target = strchr(method, ' ');
	version = target ? strchr(target + 1, ' ') : NULL;
	if (target == NULL || version == NULL ||
	    strncmp(version + 1, "HTTP/1.", 7) != 0 ||
	    parse_headers(line_end + 2, &h) < 0) {
		server_error(c, 400, "malformed request");
		ret = -1;
		goto out;
	}
	*target++ = '\0';
	*version = '\0';
	if (strcmp(method, "GET") != 0) {
		static const char only[] = "{\"error\":\"only GET\"}";

		server_reply(c, 405, "application/json", "Allow: GET\r\n", only,
		    sizeof only - 1);
		ret = -1;
		goto out;
	}
	query = strchr(target, '?');
	if (query)
		*query++ = '\0';
	path = evhttp_decode_uri(target);
	if (path == NULL) {
		server_error(c, 400, "malformed path");
		ret = -1;
		goto out;
	}
	if (strcmp(path, "/healthz") == 0) {
		if (feed_is_up(c->n) && !c->n->stopping)
			server_reply(c, 200, "text/plain", NULL, "ok\n", 3);
		else
			server_reply(c, 503, "text/plain", NULL, "unavailable\n",
			    12);
		ret = -1;
	} else if (strcmp(path, "/ws") == 0) {
		ret = upgrade_ws(c, query, &h);
	} else if (strcmp(path, "/sse") == 0) {
		c->kind = CK_SSE;
		status = take_query(c, query, &h, msg, sizeof msg);
		client_subscribe(c, status, msg);
		ret = 1;
	} else {
		serve_static(c, path);
		ret = -1;
	}
	free(path);
out:
	evhttp_clear_headers(&h);
	free(req);
	return ret;
}
