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
	/* the class bound to the client's token, authoritative: an event
	 * naming another classId is refused (403). NULL (or "*") for a token
	 * bound to any class, or no token: the client's classId stands. */
	const char *token_class;
	const char *default_class;	/* for events with no classId: when
					 * token_class is NULL or "*" */
	int64_t received_us;		/* server time, microseconds since the epoch */
};

/* Why a body was refused: an HTTP status and where it went wrong. */
struct events_error {
	int status;		/* 400, 403 (classId), 413; 503 out of memory */
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

/* Check a body and make its stamped events. The body must be strict JSON
 * as json.h scans it (what PostgreSQL's jsonb takes; no byte order mark),
 * an array of event objects or one object. Each event is queued as the
 * client's bytes, less the members the server sets (studentId, receivedAt),
 * raw CR and LF made spaces, then eventId (when absent: events_derive_id of
 * its bytes), classId (when absent), studentId and receivedAt. Returns 0,
 * or -1 with e filled and nothing in out. Free out with events_text_free. */
int events_prepare_text(const char *body, size_t len,
    const struct events_limits *lim, const struct events_ctx *ctx,
    struct events_text *out, struct events_error *e);
void events_text_free(struct events_text *t);
/* 1 (the default): events' fields are read from the scan of the body, and
 * jq parses only an event the scan cannot decide (a known field given
 * twice, an over-long unknown one); 0: jq parses every event. The two must
 * agree on every body; tests and the fuzzer set 0 to compare them. */
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
/* The eventId of an event that came without one: the first 16 bytes of
 * the SHA-256 of its bytes as sent, as a UUID of version 8 (RFC 9562),
 * lowercase; the same bytes, as in a retried POST, give the same id. */
void events_derive_id(const char *bytes, size_t len, char buf[37]);

#endif
