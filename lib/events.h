/* events.h: the event of DESIGN.md: parse a POST body, check every field a
 * client may send, and stamp what the server adds. */
#ifndef LABPULSE_EVENTS_H
#define LABPULSE_EVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <jv.h>

struct events_limits {
	long max_batch;		/* events in one body */
	long max_field;		/* bytes in one string field */
};

struct events_ctx {
	const char *token_class;	/* class bound to the client's token, or NULL */
	const char *default_class;
	int64_t received_us;		/* server time, microseconds since the epoch */
};

/* Why a body was refused: an HTTP status and where it went wrong. */
struct events_error {
	int status;		/* 400 or 413 */
	long index;		/* event index in the batch, -1 when none */
	long offset;		/* byte offset of malformed JSON, -1 when none */
	char field[64];		/* offending field, empty when none */
	char msg[320];
};

/* The events of a body as they are queued: each the client's own bytes
 * with the server's fields added, one after another in buf. */
struct events_text {
	char *buf;
	size_t len, cap;
	struct events_item {
		size_t off, len;
		char *id;	/* its eventId, as answered to the client */
	} *items;
	size_t n;
};

/* Check a body and make its stamped events. Returns 0, or -1 with e filled
 * and nothing in out. Free out with events_text_free. */
int events_prepare_text(const char *body, size_t len,
    const struct events_limits *lim, const struct events_ctx *ctx,
    struct events_text *out, struct events_error *e);
void events_text_free(struct events_text *t);
/* 1 (the default): a plain body is checked by a scan of its bytes before
 * the full parse; tests set 0 to compare the two. */
extern int events_fast_path;

/* The same, as an array of parsed events (one object is taken
 * as a batch of one). Returns 0, or -1 with e filled and nothing in *out. */
int events_prepare(const char *body, size_t len,
    const struct events_limits *lim, const struct events_ctx *ctx,
    jv *out, struct events_error *e);

/* The response body for e, as a JSON object. */
jv events_error_json(const struct events_error *e);

/* 1 when s is an ISO 8601 date and time, with or without a zone. */
int events_valid_time(const char *s);
/* Format us (microseconds since the epoch) as 2026-11-25T20:31:39.123456Z. */
void events_format_time(int64_t us, char buf[32]);
/* A random UUID (version 4) for events that came without an id. */
void events_new_id(char buf[37]);

#endif
