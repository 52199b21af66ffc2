/* httpreq.c: read one HTTP/1.1 request at a time within bounds, over nodejs'
 * http_parser. A small scanner of our own walks the head first and decides
 * where the parser may stop, so that every refusal falls on the same byte
 * however the stream was cut into reads. Debian builds http_parser without
 * HTTP_PARSER_STRICT, so the scanners also hold the syntax it lets slip
 * (a lone CR as a line end, spaces in field names, "HTXP/1.1", junk where
 * a chunk's CRLF belongs): each is a way to smuggle a request past a proxy
 * that reads the bytes differently. */
#include <errno.h>
#include <http_parser.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpreq.h"
#include "parse.h"

enum phase { PH_HEAD, PH_BODY, PH_DONE, PH_ERROR };

/* Where the head scanner is. */
enum scan { SC_BEFORE, SC_RLINE, SC_LINESTART, SC_NAME, SC_VALUE };

/* Where the chunked-body scanner is. */
enum chunk {
	CK_SIZE1, CK_SIZE, CK_EXT, CK_SIZE_LF, CK_DATA, CK_DATA_CR, CK_DATA_LF,
	CK_TLINE, CK_TNAME, CK_TVALUE, CK_TLF, CK_END_LF, CK_END
};

/* Why the scanner stopped feeding the parser. */
enum stop {
	ST_NONE,	/* all bytes may go */
	ST_LIMIT,	/* the byte at the stop would pass max_head */
	ST_CTL,		/* the byte at the stop is a control byte */
	ST_FOLD,	/* a header line starts with white space */
	ST_FIELDS,	/* the byte at the stop starts one field too many */
	ST_CR,		/* the byte at the stop is not LF, and follows CR */
	ST_NAME,	/* the byte at the stop cannot be in a field name */
	ST_CHUNK,	/* the byte at the stop cannot be in a chunk size */
	ST_FRAMING,	/* the byte at the stop breaks the chunked framing */
	ST_RLINE,	/* the byte before the stop ended the request line */
	ST_HEAD		/* the byte before the stop ended the head */
};

enum last { CB_NONE, CB_FIELD, CB_VALUE };

/* Offsets into buf: it moves as it grows. */
struct hdrref {
	size_t name, nlen, value, vlen;
};

struct httpreq_priv {
	http_parser parser;
	http_parser_settings settings;
	struct httpreq *r;
	struct httpreq_limits lim;
	enum phase phase;
	size_t taken;		/* bytes of this request taken */
	size_t head;		/* of them, in the head */
	size_t wire;		/* of them, after the head */
	enum scan scan;
	int cr;			/* the last head byte was CR */
	char first[4];		/* the request line's first bytes */
	int nfirst;
	char tail[10];		/* and its last, CR left out */
	int ntail;
	size_t rline_len;	/* and its length, CR left out */
	int chunked;		/* the body is chunked */
	enum chunk chunk;
	uint64_t chunk_left;
	int fields;		/* header lines begun */
	int rline_done;		/* the request line has been checked */
	int headers_done;	/* on_headers_complete ran */
	int complete;		/* on_message_complete ran */
	int failed;		/* refused: status and error are set */
	/* target, path, query, then names and values, each NUL-ended */
	char *buf;
	size_t len, cap;
	size_t target_len, path_off, query_off;
	int has_query;
	struct hdrref *refs;
	int nrefs, refcap;
	enum last last;
	size_t body_cap, body_max;
};

static void
fail(struct httpreq *r, int status, const char *why)
{
	r->status = status;
	snprintf(r->error, sizeof r->error, "%s", why);
	r->priv->failed = 1;
}

/* p, grown to hold need items of sz bytes (doubling from first, never
 * past max), or NULL with p left as it was. */
static void *
grow(void *p, size_t *cap, size_t need, size_t sz, size_t first, size_t max)
{
	size_t ncap = *cap ? *cap : first;
	void *np;

	if (need <= *cap)
		return p;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 4 ? need : ncap * 2;
	if (ncap > max)
		ncap = max;
	if (ncap < need || ncap > SIZE_MAX / sz)
		return NULL;
	if ((np = realloc(p, ncap * sz)) == NULL)
		return NULL;
	*cap = ncap;
	return np;
}

/* Room for n more bytes in buf, and a NUL. */
static int
buf_room(struct httpreq_priv *q, size_t n)
{
	char *nb;

	if (n > SIZE_MAX - q->len - 1 ||
	    (nb = grow(q->buf, &q->cap, q->len + n + 1, 1, 256,
	    SIZE_MAX)) == NULL) {
		fail(q->r, 503, "out of memory");
		return -1;
	}
	q->buf = nb;
	return 0;
}

static int
buf_add(struct httpreq_priv *q, const char *p, size_t n)
{
	if (buf_room(q, n) < 0)
		return -1;
	memcpy(q->buf + q->len, p, n);
	q->len += n;
	return 0;
}

static int
buf_end(struct httpreq_priv *q)
{
	return buf_add(q, "", 1);
}

static int
on_url(http_parser *hp, const char *at, size_t n)
{
	struct httpreq_priv *q = hp->data;

	if (buf_add(q, at, n) < 0)
		return -1;
	q->target_len += n;
	return 0;
}

/* Close the name or value being read, as a NUL-ended string. */
static int
close_piece(struct httpreq_priv *q)
{
	struct hdrref *h;

	if (q->last == CB_NONE)
		return 0;
	h = &q->refs[q->nrefs - 1];
	if (q->last == CB_FIELD) {
		h->nlen = q->len - h->name;
		if (buf_end(q) < 0)
			return -1;
		h->value = q->len;
		h->vlen = 0;
		q->last = CB_VALUE;
		return 0;
	}
	h->vlen = q->len - h->value;
	return buf_end(q);
}

static int
on_header_field(http_parser *hp, const char *at, size_t n)
{
	struct httpreq_priv *q = hp->data;
	struct hdrref *refs;
	size_t cap;

	if (q->headers_done)
		return 0;	/* trailers: counted as framing, not kept */
	if (q->last != CB_FIELD) {
		if (q->last == CB_VALUE && close_piece(q) < 0)
			return -1;
		if (q->nrefs >= q->lim.max_headers) {
			fail(q->r, 431, "too many header fields");
			return -1;
		}
		cap = (size_t)q->refcap;
		if ((refs = grow(q->refs, &cap, (size_t)q->nrefs + 1,
		    sizeof *q->refs, 8, (size_t)q->lim.max_headers)) == NULL) {
			fail(q->r, 503, "out of memory");
			return -1;
		}
		q->refs = refs;
		q->refcap = (int)cap;
		q->refs[q->nrefs].name = q->len;
		q->refs[q->nrefs].nlen = 0;
		q->nrefs++;
		q->last = CB_FIELD;
	}
	return buf_add(q, at, n);
}

static int
on_header_value(http_parser *hp, const char *at, size_t n)
{
	struct httpreq_priv *q = hp->data;

	if (q->headers_done)
		return 0;
	if (q->last == CB_NONE)
		return 0;	/* the parser never does this */
	if (q->last == CB_FIELD && close_piece(q) < 0)
		return -1;
	return buf_add(q, at, n);
}

static int
on_headers_complete(http_parser *hp)
{
	struct httpreq_priv *q = hp->data;
	struct httpreq *r = q->r;
	struct hdrref *h;
	int i, ncl = 0, nte = 0;

	if (q->last == CB_FIELD && close_piece(q) < 0)
		return -1;
	if (q->last == CB_VALUE && close_piece(q) < 0)
		return -1;
	q->last = CB_NONE;
	q->headers_done = 1;
	if (q->nrefs > 0) {
		if ((r->headers = calloc((size_t)q->nrefs,
		    sizeof *r->headers)) == NULL) {
			fail(r, 503, "out of memory");
			return -1;
		}
	}
	/* buf is whole now: its offsets can become pointers */
	for (i = 0; i < q->nrefs; i++) {
		h = &q->refs[i];
		/* optional white space after a value is not part of it */
		while (h->vlen > 0 && (q->buf[h->value + h->vlen - 1] == ' ' ||
		    q->buf[h->value + h->vlen - 1] == '\t'))
			q->buf[h->value + --h->vlen] = '\0';
		r->headers[i].name = q->buf + h->name;
		r->headers[i].value = q->buf + h->value;
		if (strcasecmp(r->headers[i].name, "Content-Length") == 0)
			ncl++;
		if (strcasecmp(r->headers[i].name, "Transfer-Encoding") == 0)
			nte++;
	}
	r->nheaders = q->nrefs;
	r->target = q->buf;
	r->path = q->buf + q->path_off;
	r->query = q->has_query ? q->buf + q->query_off : NULL;
	r->http_minor = hp->http_minor;
	r->upgrade = hp->upgrade;

	/* http_parser refuses these too; we do not lean on its version */
	if (ncl > 1) {
		fail(r, 400, "duplicate Content-Length");
		return -1;
	}
	if (nte > 1) {
		fail(r, 400, "duplicate Transfer-Encoding");
		return -1;
	}
	if (ncl > 0 && nte > 0) {
		fail(r, 400, "Content-Length with Transfer-Encoding");
		return -1;
	}
	if (hp->flags & F_CHUNKED) {
		/* kept apart: a trailer field named Transfer-Encoding
		 * clears the parser's flag */
		q->chunked = 1;
		if (q->lim.max_body == 0) {
			fail(r, 413, "request body not allowed");
			return -1;
		}
		q->body_max = q->lim.max_body;
	} else if ((hp->flags & F_CONTENTLENGTH) && hp->content_length > 0) {
		if (q->lim.max_body == 0) {
			fail(r, 413, "request body not allowed");
			return -1;
		}
		if (hp->content_length > q->lim.max_body) {
			fail(r, 413, "request body too large");
			return -1;
		}
		q->body_max = (size_t)hp->content_length;
	}
	return 0;
}

static int
on_chunk_header(http_parser *hp)
{
	struct httpreq_priv *q = hp->data;

	/* refuse a chunk that cannot fit before its bytes arrive */
	if (hp->content_length > q->lim.max_body - q->r->body_len) {
		fail(q->r, 413, "request body too large");
		return -1;
	}
	return 0;
}

static int
on_body(http_parser *hp, const char *at, size_t n)
{
	struct httpreq_priv *q = hp->data;
	struct httpreq *r = q->r;
	char *body;

	if (n > q->body_max - r->body_len) {
		fail(r, 413, "request body too large");
		return -1;
	}
	if ((body = grow(r->body, &q->body_cap, r->body_len + n + 1, 1, 1024,
	    q->body_max + 1)) == NULL) {
		fail(r, 503, "out of memory");
		return -1;
	}
	r->body = body;
	memcpy(r->body + r->body_len, at, n);
	r->body_len += n;
	r->body[r->body_len] = '\0';
	return 0;
}

static int
on_message_complete(http_parser *hp)
{
	struct httpreq_priv *q = hp->data;

	q->complete = 1;
	q->r->keep_alive = http_should_keep_alive(hp);
	/* stop on this byte: what follows is the next request's */
	http_parser_pause(hp, 1);
	return 0;
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* The request line is whole: check its version, method and target, and
 * keep the decoded path and the query after the target in buf. */
static int
check_request_line(struct httpreq_priv *q)
{
	struct httpreq *r = q->r;
	http_parser *hp = &q->parser;
	size_t i, start, end, qs, qe;
	const char *t, *s;
	int hi, lo;

	q->rline_done = 1;
	/* "HTTP/" D "." D, which the unstrict parser does not insist on */
	if (hp->http_major == 0 && hp->http_minor == 9) {
		fail(r, 505, "HTTP version not supported");
		return -1;
	}
	if (q->ntail < 9 || memcmp(q->tail + q->ntail - 9, " HTTP/", 6) != 0 ||
	    !is_digit(q->tail[q->ntail - 3]) || q->tail[q->ntail - 2] != '.' ||
	    !is_digit(q->tail[q->ntail - 1])) {
		fail(r, 400, "malformed request line");
		return -1;
	}
	if (hp->http_major != 1) {
		fail(r, 505, "HTTP version not supported");
		return -1;
	}
	switch (hp->method) {
	case HTTP_GET: case HTTP_HEAD: case HTTP_POST: case HTTP_PUT:
	case HTTP_DELETE: case HTTP_OPTIONS: case HTTP_PATCH:
		break;
	default:
		fail(r, 501, "method not implemented");
		return -1;
	}
	r->method = http_method_str(hp->method);
	if (q->target_len == 0 || q->len != q->target_len ||
	    buf_end(q) < 0) {
		if (!q->failed)
			fail(r, 400, "malformed request target");
		return -1;
	}
	/* one space each side of the target, as RFC 9112 has it */
	if (q->rline_len != strlen(r->method) + q->target_len + 10) {
		fail(r, 400, "malformed request line");
		return -1;
	}
	t = q->buf;
	/* origin-form /p?q, asterisk-form *, absolute-form http://h/p?q */
	if (t[0] == '/')
		start = 0;
	else if (strcmp(t, "*") == 0)
		start = 0;
	else if ((s = strstr(t, "://")) != NULL && s != t) {
		start = (size_t)(s - t) + 3;
		start += strcspn(t + start, "/?#");
	} else {
		fail(r, 400, "malformed request target");
		return -1;
	}
	end = start + strcspn(t + start, "?#");
	q->has_query = t[end] == '?';
	qs = end + 1;
	qe = q->has_query ? qs + strcspn(t + qs, "#") : qs;

	/* room for the path and query at once: they are copied from buf */
	if (buf_room(q, 2 * q->target_len + 4) < 0)
		return -1;
	q->path_off = q->len;
	if (start == end && buf_add(q, "/", 1) < 0)
		return -1;
	for (i = start; i < end; i++) {
		char c = q->buf[i];

		if (c == '%') {
			hi = end - i < 3 ? -1 :
			    parse_hexdigit((unsigned char)q->buf[i + 1]);
			lo = hi < 0 ? -1 :
			    parse_hexdigit((unsigned char)q->buf[i + 2]);
			if (hi < 0 || lo < 0) {
				fail(r, 400,
				    "malformed percent-encoding in path");
				return -1;
			}
			c = (char)(hi << 4 | lo);
			if (c == '\0') {
				fail(r, 400, "NUL byte in path");
				return -1;
			}
			i += 2;
		}
		if (buf_add(q, &c, 1) < 0)
			return -1;
	}
	if (buf_end(q) < 0)
		return -1;
	if (q->has_query) {
		q->query_off = q->len;
		if (buf_add(q, q->buf + qs, qe - qs) < 0 || buf_end(q) < 0)
			return -1;
	}
	return 0;
}

static int
is_tchar(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+-.^_`|~",
	    c) != NULL);
}

static int
is_ctl(int c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* How many of the n bytes at p the parser may take before the head
 * scanner has something to say, and what. */
static size_t
scan_head(struct httpreq_priv *q, const unsigned char *p, size_t n,
    enum stop *why)
{
	size_t i;
	unsigned char c;

	for (i = 0; i < n; i++) {
		c = p[i];
		if (q->head + i >= q->lim.max_head) {
			*why = ST_LIMIT;
			return i;
		}
		if (is_ctl(c) && c != '\r' && c != '\n') {
			*why = ST_CTL;
			return i;
		}
		if (q->cr && c != '\n') {
			*why = ST_CR;
			return i;
		}
		q->cr = c == '\r';
		switch (q->scan) {
		case SC_BEFORE:
			/* empty lines before a request are allowed */
			if (c == '\r' || c == '\n')
				break;
			q->scan = SC_RLINE;
			/* fall through */
		case SC_RLINE:
			if (q->nfirst < (int)sizeof q->first)
				q->first[q->nfirst++] = (char)c;
			if (c == '\n') {
				q->scan = SC_LINESTART;
				*why = ST_RLINE;
				return i + 1;
			}
			if (c != '\r') {
				q->rline_len++;
				if (q->ntail == (int)sizeof q->tail) {
					memmove(q->tail, q->tail + 1,
					    sizeof q->tail - 1);
					q->ntail--;
				}
				q->tail[q->ntail++] = (char)c;
			}
			break;
		case SC_LINESTART:
			if (c == '\r')
				break;
			if (c == '\n') {
				*why = ST_HEAD;
				return i + 1;
			}
			if (c == ' ' || c == '\t') {
				*why = ST_FOLD;
				return i;
			}
			if (!is_tchar(c)) {
				*why = ST_NAME;
				return i;
			}
			if (q->fields >= q->lim.max_headers) {
				*why = ST_FIELDS;
				return i;
			}
			q->fields++;
			q->scan = SC_NAME;
			break;
		case SC_NAME:
			if (c == ':')
				q->scan = SC_VALUE;
			else if (!is_tchar(c)) {
				*why = ST_NAME;
				return i;
			}
			break;
		case SC_VALUE:
			if (c == '\n')
				q->scan = SC_LINESTART;
			break;
		}
	}
	*why = ST_NONE;
	return n;
}

/* Where a chunked body goes after the one byte a state takes. */
static enum chunk
after_crlf(const struct httpreq_priv *q)
{
	switch (q->chunk) {
	case CK_SIZE_LF:
		return q->chunk_left ? CK_DATA : CK_TLINE;
	case CK_DATA_CR:
		return CK_DATA_LF;
	case CK_DATA_LF:
		return CK_SIZE1;
	case CK_TLF:
		return CK_TLINE;
	default:
		return CK_END;
	}
}

/* The same for a chunked body, up to the end of its last CRLF; the
 * parser, unstrict, would take other bytes for CR and LF. */
static size_t
scan_chunked(struct httpreq_priv *q, const unsigned char *p, size_t n,
    enum stop *why)
{
	size_t i, k;
	unsigned char c;
	int d;

	*why = ST_NONE;
	for (i = 0; i < n && q->chunk != CK_END; i++) {
		c = p[i];
		switch (q->chunk) {
		case CK_SIZE1:
		case CK_SIZE:
			if ((d = parse_hexdigit(c)) >= 0) {
				if (q->chunk_left > (UINT64_MAX - 16) / 16) {
					*why = ST_CHUNK;
					return i;
				}
				q->chunk_left = q->chunk_left * 16 +
				    (uint64_t)d;
				q->chunk = CK_SIZE;
			} else if (q->chunk == CK_SIZE && c == '\r')
				q->chunk = CK_SIZE_LF;
			else if (q->chunk == CK_SIZE && c == ';')
				q->chunk = CK_EXT;
			else {
				*why = ST_CHUNK;
				return i;
			}
			break;
		case CK_EXT:
		case CK_TVALUE:
			/* an extension or a trailer's value runs to its CR */
			if (c == '\r')
				q->chunk = q->chunk == CK_EXT ? CK_SIZE_LF : CK_TLF;
			else if (is_ctl(c))
				goto framing;
			break;
		case CK_SIZE_LF:
		case CK_DATA_CR:
		case CK_DATA_LF:
		case CK_TLF:
		case CK_END_LF:
			/* states that take one byte, a CR or an LF */
			if (c != (q->chunk == CK_DATA_CR ? '\r' : '\n'))
				goto framing;
			q->chunk = after_crlf(q);
			break;
		case CK_DATA:
			k = n - i;
			if (k > q->chunk_left)
				k = (size_t)q->chunk_left;
			q->chunk_left -= k;
			i += k - 1;
			if (q->chunk_left == 0)
				q->chunk = CK_DATA_CR;
			break;
		case CK_TLINE:
		case CK_TNAME:
			/* a trailer's name, or the CR of the empty last line */
			if (q->chunk == CK_TLINE && c == '\r')
				q->chunk = CK_END_LF;
			else if (q->chunk == CK_TNAME && c == ':')
				q->chunk = CK_TVALUE;
			else if (is_tchar(c))
				q->chunk = CK_TNAME;
			else
				goto framing;
			break;
		case CK_END:
			break;
		}
	}
	return i;
framing:
	*why = ST_FRAMING;
	return i;
}

static int
is_method_char(int c)
{
	return (c >= 'A' && c <= 'Z') || c == '-';
}

/* The parser's errors that say all there is to say alone. */
static const struct {
	enum http_errno e;
	int status;
	const char *why;
} parser_errors[] = {
	{ HPE_INVALID_URL,		400, "malformed request target" },
	{ HPE_INVALID_HOST,		400, "malformed request target" },
	{ HPE_INVALID_PORT,		400, "malformed request target" },
	{ HPE_INVALID_PATH,		400, "malformed request target" },
	{ HPE_INVALID_QUERY_STRING,	400, "malformed request target" },
	{ HPE_INVALID_FRAGMENT,		400, "malformed request target" },
	{ HPE_HEADER_OVERFLOW,		431, "request head too large" },
	{ HPE_INVALID_CONTENT_LENGTH,	400, "invalid Content-Length" },
	{ HPE_INVALID_TRANSFER_ENCODING, 400, "unsupported Transfer-Encoding" },
	{ HPE_INVALID_CHUNK_SIZE,	400, "invalid chunk size" },
};

/* Turn a parser error at byte p[at] into a status and reason. */
static void
parser_error(struct httpreq_priv *q, const char *p, size_t at, size_t n)
{
	struct httpreq *r = q->r;
	http_parser *hp = &q->parser;
	enum http_errno e = HTTP_PARSER_ERRNO(hp);
	size_t k;

	if (q->failed)
		return;
	for (k = 0; k < sizeof parser_errors / sizeof parser_errors[0]; k++)
		if (parser_errors[k].e == e) {
			fail(r, parser_errors[k].status, parser_errors[k].why);
			return;
		}
	switch (e) {
	case HPE_INVALID_METHOD:
		if (q->nfirst >= 3 && memcmp(q->first, "PRI", 3) == 0)
			fail(r, 505, "HTTP/2 not supported");
		else if (at < n && is_method_char((unsigned char)p[at]))
			fail(r, 501, "method not implemented");
		else
			fail(r, 400, "malformed request line");
		return;
	case HPE_UNEXPECTED_CONTENT_LENGTH:
		fail(r, 400, hp->uses_transfer_encoding ?
		    "Content-Length with Transfer-Encoding" :
		    "duplicate Content-Length");
		return;
	default:
		break;
	}
	if (!q->rline_done)
		fail(r, 400, "malformed request line");
	else if (e == HPE_INVALID_HEADER_TOKEN)
		fail(r, 400, "invalid header field");
	else if (!q->headers_done)
		fail(r, 400, "malformed header field");
	else
		fail(r, 400, "malformed chunked body");
}

/* Run the parser over n bytes; the bytes it took, or -1 on its error. */
static long
run(struct httpreq_priv *q, const char *p, size_t n)
{
	size_t got;
	enum http_errno e;

	if (n == 0)
		return 0;
	got = http_parser_execute(&q->parser, &q->settings, p, n);
	e = HTTP_PARSER_ERRNO(&q->parser);
	if (q->failed || (e != HPE_OK && e != HPE_PAUSED)) {
		parser_error(q, p, got, n);
		return -1;
	}
	if (e == HPE_OK && got != n) {
		/* http_parser takes all it is given unless it stops */
		fail(q->r, 400, "malformed request");
		return -1;
	}
	return (long)got;
}

static enum httpreq_state
done(struct httpreq_priv *q, size_t used, size_t *usedp)
{
	*usedp = used;
	q->phase = PH_DONE;
	return HTTPREQ_DONE;
}

static enum httpreq_state
error(struct httpreq_priv *q, size_t used, size_t *usedp)
{
	*usedp = used;
	q->phase = PH_ERROR;
	return HTTPREQ_ERROR;
}

enum httpreq_state
httpreq_feed(struct httpreq *r, const char *p, size_t n, size_t *used)
{
	struct httpreq_priv *q = r->priv;
	size_t off = 0, k, allow;
	enum stop why;
	long got;

	*used = 0;
	if (q->phase == PH_DONE)
		return HTTPREQ_DONE;
	if (q->phase == PH_ERROR)
		return HTTPREQ_ERROR;
	while (off < n && q->phase == PH_HEAD) {
		k = scan_head(q, (const unsigned char *)p + off, n - off, &why);
		if ((got = run(q, p + off, k)) < 0)
			return error(q, off, used);
		off += (size_t)got;
		q->head += (size_t)got;
		q->taken += (size_t)got;
		switch (why) {
		case ST_NONE:
			break;
		case ST_LIMIT:
			fail(r, 431, "request head too large");
			return error(q, off, used);
		case ST_CTL:
			fail(r, 400, p[off] == '\0' ?
			    "NUL byte in request head" :
			    "control character in request head");
			return error(q, off, used);
		case ST_FOLD:
			fail(r, 400, q->fields == 0 ? "white space before "
			    "the first header field" : "obsolete line folding");
			return error(q, off, used);
		case ST_FIELDS:
			fail(r, 431, "too many header fields");
			return error(q, off, used);
		case ST_CR:
			fail(r, 400, "CR without LF in request head");
			return error(q, off, used);
		case ST_NAME:
			fail(r, 400, "invalid header field");
			return error(q, off, used);
		case ST_CHUNK:
		case ST_FRAMING:
			break;
		case ST_RLINE:
			if (check_request_line(q) < 0)
				return error(q, off, used);
			break;
		case ST_HEAD:
			if (!q->headers_done) {
				fail(r, 400, "malformed request head");
				return error(q, off, used);
			}
			if (q->complete)
				return done(q, off, used);
			q->phase = PH_BODY;
			break;
		}
	}
	if (off == n) {
		*used = n;
		return HTTPREQ_MORE;
	}
	/* The body, framing included, may take max_body + max_head bytes:
	 * chunk sizes, extensions and trailers cannot go on forever. */
	allow = q->lim.max_body + q->lim.max_head - q->wire;
	k = n - off < allow ? n - off : allow;
	why = ST_NONE;
	if (q->chunked)
		k = scan_chunked(q, (const unsigned char *)p + off, k, &why);
	if ((got = run(q, p + off, k)) < 0)
		return error(q, off, used);
	off += (size_t)got;
	q->wire += (size_t)got;
	q->taken += (size_t)got;
	if (q->complete)
		return done(q, off, used);
	if (why != ST_NONE) {
		fail(r, 400, why == ST_CHUNK ? "invalid chunk size" :
		    "malformed chunked body");
		return error(q, off, used);
	}
	if (off < n) {
		fail(r, 413, "request body too large");
		return error(q, off, used);
	}
	*used = n;
	return HTTPREQ_MORE;
}

static void
start(struct httpreq *r, struct httpreq_priv *q)
{
	struct httpreq_limits lim = q->lim;

	memset(q, 0, sizeof *q);
	q->lim = lim;
	q->r = r;
	http_parser_init(&q->parser, HTTP_REQUEST);
	q->parser.data = q;
	q->settings.on_url = on_url;
	q->settings.on_header_field = on_header_field;
	q->settings.on_header_value = on_header_value;
	q->settings.on_headers_complete = on_headers_complete;
	q->settings.on_body = on_body;
	q->settings.on_message_complete = on_message_complete;
	q->settings.on_chunk_header = on_chunk_header;
	memset(r, 0, sizeof *r);
	r->priv = q;
}

int
httpreq_init(struct httpreq *r, const struct httpreq_limits *lim)
{
	struct httpreq_priv *q;

	memset(r, 0, sizeof *r);
	if (lim->max_head == 0 || lim->max_headers <= 0 ||
	    lim->max_body > SIZE_MAX / 4 || lim->max_head > SIZE_MAX / 4) {
		errno = EINVAL;
		return -1;
	}
	if ((q = calloc(1, sizeof *q)) == NULL)
		return -1;
	q->lim = *lim;
	start(r, q);
	return 0;
}

size_t
httpreq_started(const struct httpreq *r)
{
	return r->priv ? r->priv->taken : 0;
}

static void
release(struct httpreq *r)
{
	struct httpreq_priv *q = r->priv;

	free(q->buf);
	free(q->refs);
	free(r->headers);
	free(r->body);
}

void
httpreq_reset(struct httpreq *r)
{
	struct httpreq_priv *q = r->priv;

	if (q == NULL)
		return;
	release(r);
	start(r, q);
}

void
httpreq_free(struct httpreq *r)
{
	if (r->priv == NULL)
		return;
	release(r);
	free(r->priv);
	memset(r, 0, sizeof *r);
}

int
httpreq_head_read(const struct httpreq *r)
{
	const struct httpreq_priv *q = r->priv;

	return q != NULL && q->headers_done && !q->failed &&
	    q->phase != PH_ERROR;
}

const char *
httpreq_header(const struct httpreq *r, const char *name)
{
	int i;

	for (i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}
