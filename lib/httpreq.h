/* httpreq.h: one HTTP/1.1 request read from a byte stream, a piece at a
 * time, within bounds; nodejs' http_parser does the parsing. ingest's server
 * and notify's both read their requests with it.
 *
 * What is refused, and how (status, then the reason in error):
 * - 400: syntax (request line, header fields, chunked framing), NUL or any
 *   control byte but HT in the head, a lone CR, obsolete line folding,
 *   white space in or after a field name, a path with bad percent-encoding
 *   or %00, two Content-Length or two Transfer-Encoding fields, both
 *   together, a Transfer-Encoding other than chunked. A first line that is
 *   not a method (a TLS handshake, a stray body) is 400 too.
 * - 413: Content-Length over max_body (as soon as the head is read), chunks
 *   adding up past it (at each chunk's size line), any body when max_body
 *   is 0, and a chunked body longer on the wire, framing (sizes,
 *   extensions, trailers) included, than max_body + max_head bytes.
 * - 431: a head over max_head bytes, or over max_headers fields.
 * - 501: a method other than GET, HEAD, POST, PUT, DELETE, OPTIONS and PATCH
 *   (CONNECT, TRACE, WebDAV, or an unknown upper-case token).
 * - 505: a version other than HTTP/1.x: HTTP/0.9, HTTP/2.0, the HTTP/2
 *   preface ("PRI * HTTP/2.0").
 * - 503: out of memory.
 * Every refusal falls on the same byte of the stream however it was cut
 * into reads, so its status and reason do not depend on the network. */
#ifndef LABPULSE_HTTPREQ_H
#define LABPULSE_HTTPREQ_H

#include <stddef.h>

struct httpreq_limits {
	size_t max_head;	/* request line and header fields, in bytes */
	size_t max_body;	/* body bytes; 0: a request with a body is 413 */
	int max_headers;	/* header fields */
};

enum httpreq_state {
	HTTPREQ_MORE,		/* all bytes taken; the request is not whole */
	HTTPREQ_DONE,		/* one whole request; *used says where it ends */
	HTTPREQ_ERROR		/* status and error say why; answer, then close */
};

struct httpreq_header {
	char *name, *value;
};

struct httpreq {
	/* Valid once DONE. Strings are NUL-terminated and hold no NUL. */
	const char *method;	/* "GET", "POST", "HEAD", ... */
	char *target;		/* the request target as sent */
	/* target up to '?' or '#', percent-decoded ('+' stays '+'); for an
	 * absolute-form target (http://host/p) its path, "/" when none;
	 * "*" for OPTIONS *. May hold any byte but NUL once decoded. */
	char *path;
	char *query;		/* after '?' up to '#', as sent; NULL when none */
	struct httpreq_header *headers;	/* in order; values trimmed */
	int nheaders;			/* chunked trailers are not kept */
	char *body;		/* NUL-terminated copy; NULL when none */
	size_t body_len;
	int http_minor;		/* HTTP/1.x */
	int keep_alive;		/* the connection may carry another request */
	int upgrade;		/* Connection: upgrade with an Upgrade field */
	/* Valid on ERROR: 400, 413, 431, 501, 503 or 505, and the reason
	 * (short, lower-case, no period: "request body too large"). */
	int status;
	char error[128];
	/* private */
	struct httpreq_priv *priv;
};

/* Ready r for a connection's first request; -1 when out of memory or when
 * lim->max_head or lim->max_headers is not positive. lim is copied. */
int httpreq_init(struct httpreq *r, const struct httpreq_limits *lim);
/* Take up to n bytes of the connection. *used is how many were taken: on
 * MORE all n; on DONE the rest belong to the next request (pipelining),
 * or with upgrade set to the new protocol (a WebSocket's first frames).
 * On ERROR the rest does not matter: answer status and close. Once DONE or
 * ERROR, feeding takes nothing and returns the same until httpreq_reset. */
enum httpreq_state httpreq_feed(struct httpreq *r, const char *p, size_t n,
    size_t *used);
/* Bytes of the current request taken so far (0 before its first byte). */
size_t httpreq_started(const struct httpreq *r);
/* Forget the request and free its memory; the next bytes start a new one
 * on the connection. */
void httpreq_reset(struct httpreq *r);
/* Free what r holds; r may be freed twice, or after a failed init. */
void httpreq_free(struct httpreq *r);
/* The first header field called name (any case), or NULL. Valid once DONE
 * (and once httpreq_head_read: for answering "Expect: 100-continue"). */
const char *httpreq_header(const struct httpreq *r, const char *name);
/* 1 once the head is whole and accepted (method, target, path, query and
 * headers valid) while the body may still be coming; else 0. */
int httpreq_head_read(const struct httpreq *r);

#endif
