/* events.c: the differential fuzz target of lib/events.c. Every body is
 * prepared by the fast path (fields read from the scan) and by the full
 * path (jq parses each event): they must agree on accepting, on the error
 * (status, index, offset, field, message) and on every byte queued. What is
 * queued must be strict JSON objects on one line each; what the scanner
 * takes, jq must take too. The first byte picks the token class and the
 * limits; the rest is the body. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jv.h>

#include "events.h"
#include "json.h"

static void
check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "events fuzz: %s\n", what);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const classes[] = { NULL, "*", "CS101", "cs\xc3\xa9" };
	struct events_limits lim;
	struct events_ctx ctx;
	struct events_text a, b;
	struct events_error ea, eb;
	struct json_doc d;
	const char *body;
	size_t len, i;
	int ra, rb;
	jv v;

	if (size < 1 || size > (1 << 20))
		return 0;
	ctx.token_class = classes[data[0] & 3];
	ctx.default_class = "default";
	ctx.received_us = INT64_C(1795638699123456);
	lim.max_batch = data[0] & 4 ? 3 : 1000;
	lim.max_field = data[0] & 8 ? 16 : 4096;
	body = (const char *)data + 1;
	len = size - 1;

	memset(&ea, 0, sizeof ea);
	memset(&eb, 0, sizeof eb);
	events_fast_path = 1;
	ra = events_prepare_text(body, len, &lim, &ctx, &a, &ea);
	events_fast_path = 0;
	rb = events_prepare_text(body, len, &lim, &ctx, &b, &eb);
	events_fast_path = 1;

	check(ra == rb, "the fast and full paths disagree on accepting");
	if (ra < 0) {
		check(ea.status == eb.status, "statuses differ");
		check(ea.index == eb.index, "indexes differ");
		check(ea.offset == eb.offset, "offsets differ");
		check(strcmp(ea.field, eb.field) == 0, "fields differ");
		check(strcmp(ea.msg, eb.msg) == 0, "messages differ");
		check(ea.offset <= (long)len, "an offset past the body");
		check(ea.status == 400 || ea.status == 403 ||
		    ea.status == 413, "an unexpected status");
		check(a.n == 0 && a.buf == NULL, "a refusal left events out");
	} else {
		check(a.n == b.n && a.len == b.len &&
		    memcmp(a.buf, b.buf, a.len) == 0, "queued bytes differ");
		check(memchr(a.buf, '\n', a.len) == NULL &&
		    memchr(a.buf, '\r', a.len) == NULL, "a line break queued");
		for (i = 0; i < a.n; i++) {
			check(strcmp(a.items[i].id, b.items[i].id) == 0,
			    "answered ids differ");
			check(json_valid(a.buf + a.items[i].off, a.items[i].len),
			    "a queued event is not strict JSON");
			v = jv_parse_sized(a.buf + a.items[i].off,
			    (int)a.items[i].len);
			check(jv_get_kind(v) == JV_KIND_OBJECT,
			    "a queued event is not an object to jq");
			check(jv_object_length(jv_copy(v)) >= 4,
			    "a queued event lacks the server's fields");
			jv_free(v);
		}
	}
	events_text_free(&a);
	events_text_free(&b);

	/* what the scanner takes, jq takes */
	memset(&d, 0, sizeof d);
	if (json_scan(&d, body, len) == 0) {
		check(json_valid(body, len), "json_valid and json_scan differ");
		v = jv_parse_sized(body, (int)len);
		check(jv_is_valid(v), "the scanner took what jq refuses");
		jv_free(v);
	} else {
		check(!json_valid(body, len), "json_valid and json_scan differ");
	}
	json_doc_free(&d);
	return 0;
}
