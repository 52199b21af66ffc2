/* wsclient.h: the client side of notify's streams, as the dashboard page
 * speaks them: the request, the WebSocket handshake and frames (through
 * wslay, masked, with the close codes wslay will not report), and
 * Server-Sent Events; the answer's head and body through httpc.h. No
 * sockets here: each caller reads and writes in its own way (an event
 * loop, poll(2)) and hands the bytes over. */
#ifndef LABPULSE_WSCLIENT_H
#define LABPULSE_WSCLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <wslay/wslay.h>

#include "httpc.h"

/* ---- the request ---- */

/* Whether s has a control character: a header value or a request target
 * with one would end its line early. */
int wsc_has_ctl(const char *s);

struct wsc_req {
	const char *target;	/* path and query */
	const char *host;	/* the Host header */
	const char *agent;	/* the User-Agent header */
	const char *ws_key;	/* a WebSocket upgrade with this key; NULL
				 * asks for an event stream */
	const char *last_id;	/* SSE: Last-Event-ID, or NULL */
	const char *token;	/* Authorization: Bearer, or NULL */
};

/* The GET request, allocated; NULL when out of memory. */
char *wsc_request(const struct wsc_req *r);

/* ---- Server-Sent Events ---- */

struct wsc_buf {
	char *p;		/* NUL-terminated */
	size_t len, cap;
};

/* Append n bytes to b, keeping a NUL after them: 0, or -ERR_DATA past max
 * bytes in all, -ERR_OS out of memory. */
int wsc_buf_add(struct wsc_buf *b, const void *p, size_t n, size_t max);
/* Free b's bytes; b is empty after. */
void wsc_buf_free(struct wsc_buf *b);

/* One event: its data (the data lines joined by '\n'), and its event type
 * and the last id, NULL when there is none. 0 to go on, anything else
 * stops the feed and is its result. */
typedef int (*wsc_sse_fn)(void *arg, const char *data, size_t len,
    const char *event, const char *id);

struct wsc_sse {
	wsc_sse_fn on_event;
	void *arg;
	size_t max;		/* the longest line and event */
	struct wsc_buf line, data;
	char event[64];
	char id[64];		/* the last "id:" field, kept across events */
	int after_cr;		/* a '\n' right after it ends nothing */
	int started;		/* a BOM may start the stream only */
};

/* Ready for a new stream; the buffers are kept. */
void wsc_sse_init(struct wsc_sse *s, wsc_sse_fn fn, void *arg, size_t max);
/* An httpc_sink (arg: the struct wsc_sse): lines ended by "\r\n", "\n" or
 * "\r", however the reads cut them. -ERR_DATA for a line or an event
 * longer than max, -ERR_OS out of memory; or what on_event returned. */
int wsc_sse_feed(void *sse, const char *p, size_t n, char *err,
    size_t errlen);
/* Free s's buffers. */
void wsc_sse_free(struct wsc_sse *s);

/* ---- WebSocket ---- */

#define WSC_KEY_SIZE	25	/* a Sec-WebSocket-Key and its NUL */

/* A fresh Sec-WebSocket-Key. 0, or -ERR_OS with err. */
int wsc_key(char key[WSC_KEY_SIZE], char *err, size_t errlen);
/* NULL when h completes the upgrade asked with key, else what is wrong. */
const char *wsc_handshake_check(const struct httpc_head *h, const char *key);

struct wsc;

/* The caller's connection. recv reads up to len bytes, send writes them
 * (more: more follow at once); each returns how many, 0 when it cannot
 * for now, -1 when the connection failed or ended. */
struct wsc_cb {
	ssize_t (*recv)(void *arg, uint8_t *buf, size_t len);
	ssize_t (*send)(void *arg, const uint8_t *data, size_t len, int more);
	void (*on_text)(void *arg, const char *msg, size_t len);
	void (*on_binary)(void *arg);	/* may be NULL */
};

/* A client connection after the handshake. The close frame is read here,
 * frame by frame: wslay refuses codes outside 1000-1011 and 3000-4999
 * (notify closes a slow client with 1013) and never reports them. */
struct wsc {
	wslay_event_context_ptr ctx;
	const struct wsc_cb *cb;
	void *arg;
	int in_close;
	uint8_t close_buf[125];
	size_t close_len;
	int close_seen;		/* the server's close frame arrived */
	int close_code;		/* 1005 when it had none */
	char close_reason[126];	/* control characters made blanks */
};

/* Start w on cb with arg, taking messages up to max bytes. 0, or -ERR_OS
 * (out of memory). */
int wsc_open(struct wsc *w, const struct wsc_cb *cb, void *arg, size_t max);
/* Free the wslay context, if any. */
void wsc_free(struct wsc *w);

#endif
