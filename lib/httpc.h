/* httpc.h: the client side of an HTTP/1.1 answer: where its head ends,
 * what the head says, and its body's framing (Content-Length, chunked, or
 * to the end). No sockets: each caller reads in its own way (an event
 * loop, poll(2)) and hands the bytes over. */
#ifndef LABPULSE_HTTPC_H
#define LABPULSE_HTTPC_H

#include <stddef.h>
#include <stdint.h>

/* ---- the head ---- */

struct httpc_head {
	int status;
	int http10;		/* HTTP/1.0: the connection ends after it */
	int has_length;		/* a valid Content-Length */
	uint64_t length;
	int chunked;		/* Transfer-Encoding has chunked */
	int te;			/* Transfer-Encoding at all */
	int upgrade_ws;		/* Upgrade: websocket */
	int conn_upgrade, conn_close, conn_keep_alive;	/* Connection's */
	char accept[64];	/* Sec-WebSocket-Accept */
	char ctype[128];	/* Content-Type */
};

/* Where the head ends ("\r\n\r\n", "\n\n" or "\n\r\n") in p[0..n),
 * looking from from: the length of the head, or 0 when it is not all
 * there yet. */
size_t httpc_head_end(const char *p, size_t from, size_t n);
/* Parse the head p[0..n): 0, or -ERR_DATA with "not an HTTP answer: "
 * and its first line in err. */
int httpc_head_parse(const char *p, size_t n, struct httpc_head *h, char *err,
    size_t errlen);

/* ---- the body ---- */

enum httpc_body_mode { HTTPC_DONE, HTTPC_LENGTH, HTTPC_CHUNKED, HTTPC_TO_END };

struct httpc_body {
	enum httpc_body_mode mode;
	int state;		/* in a chunked body */
	uint64_t left;		/* of the body or of the chunk */
	uint64_t size;		/* the chunk size being read */
	int digits;
};

/* What a body's content goes to: 0 to go on, anything else ends the feed
 * and is its result (below zero an error, told in err). */
typedef int (*httpc_sink)(void *arg, const char *p, size_t n, char *err,
    size_t errlen);

/* The framing h announces. */
void httpc_body_start(struct httpc_body *b, const struct httpc_head *h);
/* Take n bytes of the body as read, giving its content to sink: 1 once the
 * body is complete, 0 for more, -ERR_DATA ("bad chunked body: ...") for
 * bad framing, or what the sink returned. */
int httpc_body_feed(struct httpc_body *b, const char *p, size_t n,
    httpc_sink sink, void *arg, char *err, size_t errlen);
/* Whether the end of the connection here ends the body cleanly: a stream
 * closed between two chunks is a server that stopped, not a cut message. */
int httpc_body_can_end(const struct httpc_body *b);

#endif
