/* request.c: what a dashboard's request asks for, decided from what
 * httpreq read: the route, the WebSocket handshake's fields, and the
 * query's classes, token and since. No I/O and no state: server.c acts on
 * the answer, and tests/fuzz/notify_request.c holds it to its invariants. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nettle/base64.h>
#include <nettle/sha1.h>

#include "httpreq.h"
#include "parse.h"
#include "utf8.h"
#include "notify.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* Does the comma-separated field value name token (in any case)? */
static int
has_token(const char *value, const char *token)
{
	size_t tl = strlen(token);
	const char *p = value;

	while (p && *p) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		if (strncasecmp(p, token, tl) == 0 &&
		    (p[tl] == '\0' || p[tl] == ',' || p[tl] == ' ' ||
		    p[tl] == '\t'))
			return 1;
		p = strchr(p, ',');
	}
	return 0;
}

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)). */
static void
ws_accept(const char *key, char *out)
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

/* Percent-decode s[0..len) into out (len + 1 bytes), '+' as a blank, as
 * HTML forms and evhttp do; a '%' without two hex digits stays as it is.
 * -1 when it decodes to a NUL byte, which no C string can carry. */
static int
decode(const char *s, size_t len, char *out)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		int hi, lo;

		if (s[i] == '+') {
			out[o++] = ' ';
		} else if (s[i] == '%' && i + 2 < len &&
		    (hi = parse_hexdigit(s[i + 1])) >= 0 &&
		    (lo = parse_hexdigit(s[i + 2])) >= 0) {
			if (hi == 0 && lo == 0)
				return -1;
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return 0;
}

/* UTF-8 text without control characters (C0, DEL, C1)? */
static int
is_text(const unsigned char *s)
{
	size_t len = strlen((const char *)s), i = 0, n;

	while (i < len) {
		if (s[i] < 0x20 || s[i] == 0x7f ||
		    (n = utf8_seq(s, len, i)) == 0 ||
		    (s[i] == 0xc2 && s[i + 1] < 0xa0))	/* C1: U+0080-009F */
			return 0;
		i += n;
	}
	return 1;
}

/* A token is printable ASCII (ours are base64url): anything else is no
 * instructor's, and is not sent to PostgreSQL, which would refuse bytes
 * that are not UTF-8 with an error rather than an empty answer. */
static int
is_token(const char *s)
{
	size_t n = 0;

	for (; *s; s++, n++)
		if (*s < 0x21 || *s > 0x7e)
			return 0;
	return n > 0 && n <= NOTIFY_MAX_TOKEN;
}

/* What a client sent, for a message: printable ASCII, at most 60 bytes. */
static void
shown(char *out, size_t outlen, const char *s)
{
	size_t i;

	for (i = 0; s[i] && i < 60 && i + 1 < outlen; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	out[i] = '\0';
}

static int
fail(struct nreq *q, int status, const char *msg)
{
	if (q->status == 0) {
		q->status = status;
		snprintf(q->msg, sizeof q->msg, "%s", msg);
	}
	return 0;
}

/* One name=value of the query, decoded into v (a buffer as long as the
 * query). 0, or -1 when memory ran out. */
static int
take_param(struct nreq *q, const char *key, size_t klen, char *v,
    char *since, int *bad_token)
{
	char msg[200];
	int i;

	if (klen == 5 && memcmp(key, "class", 5) == 0) {
		size_t vl = strlen(v);

		if (vl == 0 || vl > NOTIFY_MAX_CLASS) {
			snprintf(msg, sizeof msg, "class: must be 1 to %d bytes",
			    NOTIFY_MAX_CLASS);
			return fail(q, 400, msg);
		}
		if (!is_text((const unsigned char *)v))
			return fail(q, 400, "class: must be UTF-8 text without "
			    "control characters");
		for (i = 0; i < q->nclasses; i++)
			if (strcmp(q->classes[i], v) == 0) {
				snprintf(msg, sizeof msg, "class: %s is named "
				    "twice", v);
				return fail(q, 400, msg);
			}
		if (q->nclasses == NOTIFY_MAX_CLASSES) {
			snprintf(msg, sizeof msg, "class: at most %d classes",
			    NOTIFY_MAX_CLASSES);
			return fail(q, 400, msg);
		}
		if ((q->classes[q->nclasses] = strdup(v)) == NULL)
			return -1;
		q->nclasses++;
	} else if (klen == 5 && memcmp(key, "token", 5) == 0) {
		/* the Authorization field's, good or bad, comes first */
		if (q->token[0] == '\0' && !*bad_token && !is_token(v))
			*bad_token = 1;
		else if (q->token[0] == '\0' && !*bad_token)
			snprintf(q->token, sizeof q->token, "%s", v);
	} else if (klen == 5 && memcmp(key, "since", 5) == 0) {
		snprintf(since, NOTIFY_MAX_TOKEN + 1, "%s", v);
	}
	return 0;
}

/* ?class=…&class=…&token=…&since=…, and the Authorization and
 * Last-Event-ID fields: the subscription's status (0: good) in q. */
static int
take_query(const struct httpreq *r, struct nreq *q)
{
	const char *auth = httpreq_header(r, "Authorization");
	const char *leid = httpreq_header(r, "Last-Event-ID");
	const char *p = r->query, *amp, *eq;
	char since[NOTIFY_MAX_TOKEN + 1] = "", *v = NULL, shownv[64], msg[200];
	struct sid sid;
	int bad_token = 0;

	/* the query is checked first, then the token */
	if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
		if (!is_token(auth + 7))
			bad_token = 1;
		else
			snprintf(q->token, sizeof q->token, "%s", auth + 7);
	}
	if (p && (v = malloc(strlen(p) + 1)) == NULL)
		return -1;
	for (; p && *p; p = *amp ? amp + 1 : amp) {
		amp = strchr(p, '&');
		if (amp == NULL)
			amp = p + strlen(p);
		if (amp == p)
			continue;	/* "&&", a trailing "&" */
		eq = memchr(p, '=', (size_t)(amp - p));
		if (eq == NULL || eq == p ||
		    decode(eq + 1, (size_t)(amp - eq - 1), v) < 0) {
			fail(q, 400, "malformed query string");
			break;
		}
		if (take_param(q, p, (size_t)(eq - p), v, since, &bad_token) < 0) {
			free(v);
			return -1;
		}
	}
	free(v);
	/* EventSource reconnects with the id it saw last: newer than a ?since
	 * the page was opened with */
	if (leid && *leid)
		snprintf(since, sizeof since, "%s", leid);
	if (q->nclasses == 0)
		fail(q, 400, "class: name at least one class (?class=NAME)");
	if (since[0] && (strlen(since) >= sizeof q->since ||
	    sid_parse(since, &sid) < 0)) {
		shown(shownv, sizeof shownv, since);
		snprintf(msg, sizeof msg, "since: not a stream id (MS-SEQ): %s",
		    shownv);
		fail(q, 400, msg);
	} else {
		memcpy(q->since, since, strlen(since) + 1);	/* it fits */
	}
	if (bad_token)
		fail(q, 401, "unknown token");
	else if (q->token[0] == '\0')
		fail(q, 401, "no token");
	return 0;
}

static int
error(struct nreq *q, int status, const char *msg)
{
	q->kind = NREQ_ERROR;
	q->status = status;
	snprintf(q->msg, sizeof q->msg, "%s", msg);
	return 0;
}

int
nreq_parse(const struct httpreq *r, struct nreq *q)
{
	int stream;

	memset(q, 0, sizeof *q);
	stream = strcmp(r->path, "/ws") == 0 || strcmp(r->path, "/sse") == 0;
	q->head = strcmp(r->method, "HEAD") == 0;
	/* a stream has nothing to show without its body: GET only */
	if (stream && strcmp(r->method, "GET") != 0) {
		q->extra = "Allow: GET\r\n";
		return error(q, 405, "only GET");
	}
	if (strcmp(r->method, "GET") != 0 && !q->head) {
		q->extra = "Allow: GET, HEAD\r\n";
		return error(q, 405, "only GET or HEAD");
	}
	/* "GET *" (asterisk-form) names no resource */
	if (r->path[0] != '/')
		return error(q, 400, "malformed request target");
	if (strcmp(r->path, "/healthz") == 0) {
		q->kind = NREQ_HEALTH;
	} else if (strcmp(r->path, "/ws") == 0) {
		const char *up = httpreq_header(r, "Upgrade");
		const char *conn = httpreq_header(r, "Connection");
		const char *key = httpreq_header(r, "Sec-WebSocket-Key");
		const char *ver = httpreq_header(r, "Sec-WebSocket-Version");

		if (up == NULL || strcasecmp(up, "websocket") != 0 ||
		    conn == NULL || !has_token(conn, "upgrade"))
			return error(q, 426, "/ws is a WebSocket: send Upgrade: "
			    "websocket");
		if (ver == NULL || strcmp(ver, "13") != 0) {
			q->extra = "Sec-WebSocket-Version: 13\r\n";
			return error(q, 426, "Sec-WebSocket-Version must be 13");
		}
		/* 16 bytes in base64: 22 characters and "==" */
		if (key == NULL || strlen(key) != 24 ||
		    strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789+/") != 22 || strcmp(key + 22, "==") != 0)
			return error(q, 400, "Sec-WebSocket-Key: missing or "
			    "malformed");
		ws_accept(key, q->accept);
		q->kind = NREQ_WS;
		if (take_query(r, q) < 0) {
			nreq_free(q);
			return -1;
		}
	} else if (strcmp(r->path, "/sse") == 0) {
		q->kind = NREQ_SSE;
		if (take_query(r, q) < 0) {
			nreq_free(q);
			return -1;
		}
	} else {
		q->kind = NREQ_STATIC;
		q->path = r->path;
	}
	return 0;
}

void
nreq_free(struct nreq *q)
{
	for (int i = 0; i < q->nclasses; i++)
		free(q->classes[i]);
	q->nclasses = 0;
}
