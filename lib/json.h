/* json.h: a strict JSON scanner: RFC 8259, narrowed to what PostgreSQL's
 * jsonb stores. One pass validates a body whole and records where each
 * top-level event and each of its members lies, so that nothing else has to
 * find them again. */
#ifndef LABPULSE_JSON_H
#define LABPULSE_JSON_H

#include <stddef.h>

/* Containers nested deeper than this are refused (jq allows 256). */
#define JSON_MAX_DEPTH	64

enum json_kind {
	JSON_NONE, JSON_OBJECT, JSON_ARRAY, JSON_STRING, JSON_NUMBER,
	JSON_TRUE, JSON_FALSE, JSON_NULL
};

/* A member of an event object, as offsets into the scanned text. */
struct json_member {
	size_t key, keylen;	/* the key's bytes between its quotes */
	size_t val, vallen;	/* the value's bytes, a string's quotes too */
	size_t declen;		/* a string value: its decoded length */
	unsigned char kind;	/* the value's enum json_kind */
	unsigned char kesc;	/* the key holds escapes */
	unsigned char vesc;	/* a string value holds escapes */
};

/* An event: an element of the top-level array, or the top-level object. */
struct json_event {
	size_t from, to;	/* its bytes, to one past the last */
	size_t first, n;	/* an object's members in json_doc.members */
	unsigned char kind;
	unsigned char crlf;	/* holds a raw CR or LF (whitespace, then) */
};

struct json_doc {
	size_t limit;		/* set by the caller: events recorded at most
				 * (the rest are counted), 0 for all */
	unsigned char top;	/* the top-level value's enum json_kind */
	struct json_event *events;
	size_t nevents, evcap;
	struct json_member *members;
	size_t nmembers, memcap;
	long offset;		/* on error: the first byte that cannot be */
	int nomem;		/* on error: out of memory, not bad input */
	char err[128];		/* on error: why, with line and column */
};

/* Scan s[0..len) as one JSON text. Returns 0 with d's events filled (none
 * when the top-level value is neither an array nor an object; with
 * d->limit, nevents counts them all but only the first limit are there),
 * or -1 with d->offset and d->err, or d->nomem. A byte order mark is
 * refused.
 * d starts zeroed and may be reused; free it with json_doc_free. */
int json_scan(struct json_doc *d, const char *s, size_t len);
void json_doc_free(struct json_doc *d);

/* 1 when s[0..len) is one JSON text json_scan would accept, else 0. */
int json_valid(const char *s, size_t len);

/* Decode the bytes between a scanned string's quotes into out, which holds
 * at least len bytes (a decoded string is never longer); returns the
 * decoded length. Only for strings json_scan accepted. */
size_t json_decode(const char *s, size_t len, char *out);

/* Append s[0..len) (UTF-8) as a JSON string, quotes included, to out of
 * json_encoded_len(s, len) bytes; returns the bytes written. */
size_t json_encoded_len(const char *s, size_t len);
size_t json_encode(const char *s, size_t len, char *out);

#endif
