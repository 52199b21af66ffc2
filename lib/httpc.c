/* httpc.c: an HTTP/1.1 answer read by a client (httpc.h): loadgen's
 * dashboards, the test tools and the benchmark read theirs through it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "httpc.h"
#include "parse.h"

/* ---- the head ---- */

size_t
httpc_head_end(const char *p, size_t from, size_t n)
{
	size_t i;

	for (i = from; i < n; i++) {
		if (p[i] != '\n')
			continue;
		if (i + 1 < n && p[i + 1] == '\n')
			return i + 2;
		if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* Whether the comma-separated list v[0..n) has token, case aside. */
static int
has_token(const char *v, size_t n, const char *token)
{
	size_t tl = strlen(token), k, i = 0;

	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		for (k = i; k < n && v[k] != ' ' && v[k] != '\t' &&
		    v[k] != ','; k++)
			;
		if (k - i == tl && strncasecmp(v + i, token, tl) == 0)
			return 1;
		i = k;
	}
	return 0;
}

static int
name_is(const char *name, size_t n, const char *want)
{
	return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

/* One header line, name and value trimmed. */
static void
head_field(struct httpc_head *h, const char *name, size_t nl, const char *v,
    size_t vl)
{
	char num[24], *end;

	if (name_is(name, nl, "Content-Length")) {
		h->has_length = vl > 0 && vl < sizeof num && v[0] != '-' &&
		    v[0] != '+';
		if (h->has_length) {
			memcpy(num, v, vl);
			num[vl] = '\0';
			errno = 0;
			h->length = strtoull(num, &end, 10);
			h->has_length = *end == '\0' && errno == 0;
		}
	} else if (name_is(name, nl, "Transfer-Encoding")) {
		h->te = 1;
		h->chunked = has_token(v, vl, "chunked");
	} else if (name_is(name, nl, "Upgrade")) {
		h->upgrade_ws = vl == 9 && strncasecmp(v, "websocket", 9) == 0;
	} else if (name_is(name, nl, "Connection")) {
		h->conn_upgrade = has_token(v, vl, "upgrade");
		h->conn_close = has_token(v, vl, "close");
		h->conn_keep_alive = has_token(v, vl, "keep-alive");
	} else if (name_is(name, nl, "Sec-WebSocket-Accept")) {
		snprintf(h->accept, sizeof h->accept, "%.*s", (int)vl, v);
	} else if (name_is(name, nl, "Content-Type")) {
		snprintf(h->ctype, sizeof h->ctype, "%.*s", (int)vl, v);
	}
}

static int
is_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

int
httpc_head_parse(const char *p, size_t n, struct httpc_head *h, char *err,
    size_t errlen)
{
	const char *end = p + n, *eol, *colon, *v, *ve;
	size_t fl;

	memset(h, 0, sizeof *h);
	for (fl = 0; fl < n && fl < 80 && p[fl] != '\r' && p[fl] != '\n'; fl++)
		;
	if (n < 12 || strncmp(p, "HTTP/1.", 7) != 0 ||
	    (p[7] != '0' && p[7] != '1') || p[8] != ' ' ||
	    p[9] < '1' || p[9] > '9' || p[10] < '0' || p[10] > '9' ||
	    p[11] < '0' || p[11] > '9' || (n > 12 && p[12] != ' ' &&
	    p[12] != '\r' && p[12] != '\n')) {
		snprintf(err, errlen, "not an HTTP answer: %.*s", (int)fl, p);
		return -ERR_DATA;
	}
	h->http10 = p[7] == '0';
	h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	for (p = memchr(p, '\n', n); p != NULL && ++p < end; p = eol) {
		eol = memchr(p, '\n', (size_t)(end - p));
		if (eol == NULL)
			eol = end;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon == NULL)
			continue;
		for (v = colon + 1; v < eol && is_blank(*v); v++)
			;
		for (ve = eol; ve > v && is_blank(ve[-1]); ve--)
			;
		head_field(h, p, (size_t)(colon - p), v, (size_t)(ve - v));
	}
	return 0;
}

/* ---- the body ---- */

enum {
	CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF,
	CH_TRAILER, CH_TRAILER_LF, CH_TRAILER_LINE
};

void
httpc_body_start(struct httpc_body *b, const struct httpc_head *h)
{
	memset(b, 0, sizeof *b);
	if (h->status / 100 == 1 || h->status == 204 || h->status == 304)
		b->mode = HTTPC_DONE;
	else if (h->chunked)
		b->mode = HTTPC_CHUNKED;
	else if (h->has_length)
		b->mode = h->length ? HTTPC_LENGTH : HTTPC_DONE;
	else
		b->mode = HTTPC_TO_END;
	b->left = h->length;
	b->state = CH_SIZE;
}

static int
body_error(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "bad chunked body: %s", what);
	return -ERR_DATA;
}

static void
chunk_size_done(struct httpc_body *b)
{
	if (b->size == 0) {
		b->state = CH_TRAILER;
	} else {
		b->state = CH_DATA;
		b->left = b->size;
	}
	b->size = 0;
	b->digits = 0;
}

/* One byte of a chunked body outside the chunks' data: 0, or -ERR_DATA. */
static int
chunk_byte(struct httpc_body *b, int c, char *err, size_t errlen)
{
	int h;

	switch (b->state) {
	case CH_SIZE:
		if ((h = parse_hexdigit(c)) >= 0) {
			if (b->size > (UINT64_C(1) << 59))
				return body_error(err, errlen, "chunk too large");
			b->size = b->size * 16 + (uint64_t)h;
			b->digits++;
		} else if (b->digits == 0) {
			return body_error(err, errlen, "no chunk size");
		} else if (c == ';' || c == ' ' || c == '\t') {
			b->state = CH_EXT;
		} else if (c == '\r') {
			b->state = CH_SIZE_LF;
		} else if (c == '\n') {
			chunk_size_done(b);
		} else {
			return body_error(err, errlen, "bad chunk size");
		}
		break;
	case CH_EXT:
		if (c == '\n')
			chunk_size_done(b);
		break;
	case CH_SIZE_LF:
		if (c != '\n')
			return body_error(err, errlen, "bad chunk size line");
		chunk_size_done(b);
		break;
	case CH_DATA_CR:
		if (c == '\r')
			b->state = CH_DATA_LF;
		else if (c == '\n')
			b->state = CH_SIZE;
		else
			return body_error(err, errlen, "no CRLF after a chunk");
		break;
	case CH_DATA_LF:
		if (c != '\n')
			return body_error(err, errlen, "no CRLF after a chunk");
		b->state = CH_SIZE;
		break;
	case CH_TRAILER:
	case CH_TRAILER_LF:
		if (c == '\n')
			b->mode = HTTPC_DONE;
		else if (c == '\r' && b->state == CH_TRAILER)
			b->state = CH_TRAILER_LF;
		else
			b->state = CH_TRAILER_LINE;
		break;
	case CH_TRAILER_LINE:
		if (c == '\n')
			b->state = CH_TRAILER;
		break;
	}
	return 0;
}

int
httpc_body_feed(struct httpc_body *b, const char *p, size_t n, httpc_sink sink,
    void *arg, char *err, size_t errlen)
{
	size_t k;
	int rc;

	while (n > 0 && b->mode != HTTPC_DONE) {
		if (b->mode == HTTPC_TO_END)
			return sink(arg, p, n, err, errlen);
		if (b->mode == HTTPC_LENGTH || b->state == CH_DATA) {
			k = n < b->left ? n : (size_t)b->left;
			b->left -= k;
			if (b->left == 0) {
				if (b->mode == HTTPC_LENGTH)
					b->mode = HTTPC_DONE;
				else
					b->state = CH_DATA_CR;
			}
			if ((rc = sink(arg, p, k, err, errlen)) != 0)
				return rc;
			p += k;
			n -= k;
			continue;
		}
		if ((rc = chunk_byte(b, (unsigned char)*p, err, errlen)) < 0)
			return rc;
		p++;
		n--;
	}
	return b->mode == HTTPC_DONE ? 1 : 0;
}

int
httpc_body_can_end(const struct httpc_body *b)
{
	return b->mode == HTTPC_DONE || b->mode == HTTPC_TO_END ||
	    (b->mode == HTTPC_CHUNKED && b->state == CH_SIZE && b->digits == 0);
}
