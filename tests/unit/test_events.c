/* test_events.c: events_prepare on what JupyterLab cell-monitor clients send
 * and on every way a body can be refused; the time, id and error helpers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jv.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#endif
#if defined(__GLIBC__) && !defined(UNDER_ASAN)
#include <malloc.h>
#define HEAP_COUNTED 1
#endif

#include "events.h"
#include "tap.h"

/* 2026-11-25T20:31:39.123456Z */
#define RECEIVED_US	INT64_C(1795638699123456)
#define RECEIVED_AT	"2026-11-25T20:31:39.123456Z"

/* One cell run as the cell-monitor extension posts it: an array of one,
 * camelCase, emailAddress and no classId, eventTime without a zone, a
 * fractional duration, and a field labpulse does not know (kept). */
static const char cell_run[] =
    "[{\"eventType\":\"cell_executed\","
    "\"eventTime\":\"2026-11-25T20:31:38.512\","
    "\"emailAddress\":\"ada@example.edu\",\"userName\":\"Ada L.\","
    "\"sessionId\":\"9b2f4c1e-5d2a-4f8e-9d1c-0a7b3e6f2d41\","
    "\"notebookPath\":\"week3/lab.ipynb\","
    "\"cellId\":\"4f2c8a90-1b3d-4e5f-a6b7-c8d9e0f1a2b3\",\"cellIndex\":3,"
    "\"cellType\":\"code\",\"code\":\"print(sum(range(10)))\","
    "\"executionCount\":7,\"hasError\":false,\"errorMessage\":null,"
    "\"result\":\"45\\n\",\"executionDurationMs\":12.75,"
    "\"metadata\":{\"kernel\":\"python3\",\"tags\":[\"graded\"]},"
    "\"teamName\":\"team-a\",\"labVersion\":\"0.3.1\"}]";

static const struct events_limits limits = { 100, 4096 };

static int
prepare_with(const char *body, const struct events_limits *lim,
    const char *token_class, jv *out, struct events_error *e)
{
	struct events_ctx ctx = { token_class, "default", RECEIVED_US };

	memset(e, 0, sizeof *e);
	e->index = e->offset = -2;	/* so "left alone" shows */
	return events_prepare(body, strlen(body), lim, &ctx, out, e);
}

static int
prepare(const char *body, const char *token_class, jv *out,
    struct events_error *e)
{
	return prepare_with(body, &limits, token_class, out, e);
}

static jv
get(jv obj, const char *key)
{
	return jv_object_get(jv_copy(obj), jv_string(key));
}

/* The string value of obj[key] for a comparison, or a marker. */
static int
field_is(jv obj, const char *key, const char *want, const char *name)
{
	jv v = get(obj, key);
	int pass;

	pass = is_str(jv_get_kind(v) == JV_KIND_STRING ? jv_string_value(v) :
	    "(absent or not a string)", want, "%s", name);
	jv_free(v);
	return pass;
}

/* A lowercase UUID of version 8 (RFC 9562), as events_derive_id makes. */
static int
is_uuid_v8(const char *s)
{
	int i;

	if (strlen(s) != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (strchr("0123456789abcdef", s[i]) == NULL || s[i] == '\0')
			return 0;
	}
	return s[14] == '8' && strchr("89ab", s[19]) != NULL;
}

/* 2026-11-25T20:31:39.123456Z, digit for digit. */
static int
is_received_format(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
	size_t i;

	if (strlen(s) != sizeof shape - 1)
		return 0;
	for (i = 0; i < sizeof shape - 1; i++)
		if (shape[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != shape[i])
			return 0;
	return 1;
}

/* *out must hold the only reference to the array and to each event in it, or
 * every event accepted would stay in memory for good. */
static void
check_owned(jv out, const char *name)
{
	jv ev;
	int i, n, extra = 0;

	if (jv_get_kind(out) != JV_KIND_ARRAY) {
		ok(0, "%s: *out is an array", name);
		return;
	}
	is_int(jv_get_refcnt(out), 1, "%s: *out holds the only reference",
	    name);
	n = jv_array_length(jv_copy(out));
	for (i = 0; i < n; i++) {
		ev = jv_array_get(jv_copy(out), i);
		if (jv_get_refcnt(ev) != 2 && extra++ < 3)
			diag("    event %d: %d references, expected 2 (the array, "
			    "this test)", i, jv_get_refcnt(ev));
		jv_free(ev);
	}
	is_int(extra, 0, "%s: no stray reference to any event", name);
}

static void
test_cell_monitor_event(void)
{
	struct events_error e;
	jv out, ev, in, keys, k, v;
	int i, n, kept = 1;

	is_int(prepare(cell_run, "cs101", &out, &e), 0,
	    "cell-monitor event: accepted");
	ok(jv_get_kind(out) == JV_KIND_ARRAY &&
	    jv_array_length(jv_copy(out)) == 1, "cell-monitor event: one event out");
	check_owned(out, "cell-monitor event");
	ev = jv_array_get(jv_copy(out), 0);
	jv_free(out);

	v = get(ev, "receivedAt");
	ok(jv_get_kind(v) == JV_KIND_STRING &&
	    is_received_format(jv_string_value(v)),
	    "receivedAt is YYYY-MM-DDTHH:MM:SS.ffffffZ");
	jv_free(v);
	field_is(ev, "receivedAt", RECEIVED_AT, "receivedAt is ctx.received_us");
	field_is(ev, "classId", "cs101", "classId from the token's class");
	field_is(ev, "studentId", "ada@example.edu", "studentId is emailAddress");
	v = get(ev, "eventId");
	{
		char want[37];

		/* the event's bytes: the body less its brackets */
		events_derive_id(cell_run + 1, strlen(cell_run) - 2, want);
		ok(jv_get_kind(v) == JV_KIND_STRING &&
		    is_uuid_v8(jv_string_value(v)) &&
		    strcmp(jv_string_value(v), want) == 0,
		    "eventId derived from the event's bytes (%s)",
		    jv_get_kind(v) == JV_KIND_STRING ? jv_string_value(v) :
		    "none");
	}
	jv_free(v);
	field_is(ev, "eventTime", "2026-11-25T20:31:38.512",
	    "eventTime without a zone kept as sent");
	v = get(ev, "executionDurationMs");
	ok(jv_get_kind(v) == JV_KIND_NUMBER && jv_number_value(v) == 12.75,
	    "fractional executionDurationMs kept");
	jv_free(v);
	field_is(ev, "labVersion", "0.3.1", "unknown field kept");

	/* Every field the client sent comes out unchanged, plus four. */
	in = jv_array_get(jv_parse(cell_run), 0);
	keys = jv_keys(jv_copy(in));
	n = jv_array_length(jv_copy(keys));
	for (i = 0; i < n; i++) {
		k = jv_array_get(jv_copy(keys), i);
		if (!jv_equal(get(in, jv_string_value(k)),
		    get(ev, jv_string_value(k)))) {
			diag("    field %s changed", jv_string_value(k));
			kept = 0;
		}
		jv_free(k);
	}
	ok(kept, "all %d fields sent are kept unchanged", n);
	is_int(jv_object_length(jv_copy(ev)), n + 4,
	    "only eventId, classId, studentId and receivedAt are added");
	jv_free(keys);
	jv_free(in);
	jv_free(ev);

	is_int(prepare(cell_run, NULL, &out, &e), 0,
	    "cell-monitor event without a token class: accepted");
	ev = jv_array_get(out, 0);
	field_is(ev, "classId", "default", "classId from default_class");
	jv_free(ev);
}

/* Prepare a one-event body that must pass, and return the event. */
static jv
one_event(const char *body, const char *token_class, const char *name)
{
	struct events_error e;
	jv out, ev;

	if (!is_int(prepare(body, token_class, &out, &e), 0, "%s: accepted",
	    name))
		diag("    %s", e.msg);
	if (jv_get_kind(out) != JV_KIND_ARRAY) {
		jv_free(out);
		return jv_object();
	}
	ev = jv_array_get(out, 0);
	return ev;
}

static void
test_stamping(void)
{
	struct events_error e;
	jv ev, out, a, b;

	ev = one_event("[{\"eventType\":\"help\",\"emailAddress\":\"b@x.org\","
	    "\"classId\":\"phys2\"}]", NULL, "client classId, no token");
	field_is(ev, "classId", "phys2", "classId the client sent is kept");
	jv_free(ev);
	ev = one_event("[{\"eventType\":\"help\",\"emailAddress\":\"b@x.org\","
	    "\"classId\":\"phys2\"}]", "*", "client classId, a * token");
	field_is(ev, "classId", "phys2", "a * token: the client's classId kept");
	jv_free(ev);
	ev = one_event("[{\"eventType\":\"help\",\"emailAddress\":\"b@x.org\"}]",
	    "*", "no classId, a * token");
	field_is(ev, "classId", "default", "a * token: default_class");
	jv_free(ev);
	ev = one_event("[{\"eventType\":\"help\",\"emailAddress\":\"b@x.org\","
	    "\"classId\":\"cs101\"}]", "cs101", "the token's own class named");
	field_is(ev, "classId", "cs101", "the token's class named: kept");
	jv_free(ev);

	ev = one_event("[{\"eventType\":\"help\",\"userId\":\"u-17\"}]", NULL,
	    "userId only");
	field_is(ev, "studentId", "u-17", "studentId is userId without email");
	jv_free(ev);

	ev = one_event("[{\"eventType\":\"help\",\"userId\":42}]", NULL,
	    "numeric userId");
	field_is(ev, "studentId", "42", "numeric userId becomes the string \"42\"");
	a = get(ev, "userId");
	ok(jv_get_kind(a) == JV_KIND_NUMBER && jv_number_value(a) == 42,
	    "numeric userId itself stays a number");
	jv_free(a);
	jv_free(ev);

	ev = one_event("[{\"eventType\":\"help\",\"emailAddress\":null,"
	    "\"userId\":\"u-18\"}]", NULL, "null emailAddress");
	field_is(ev, "studentId", "u-18", "null emailAddress: studentId is userId");
	jv_free(ev);

	ev = one_event("[{\"eventType\":\"help\",\"emailAddress\":\"\","
	    "\"userId\":7}]", NULL, "empty emailAddress");
	field_is(ev, "studentId", "7", "empty emailAddress: studentId is userId");
	jv_free(ev);

	ev = one_event("[{\"eventType\":\"help\",\"emailAddress\":\"c@x.org\","
	    "\"userId\":\"u-19\"}]", NULL, "both emailAddress and userId");
	field_is(ev, "studentId", "c@x.org", "emailAddress wins over userId");
	jv_free(ev);

	ev = one_event("[{\"eventType\":\"help\",\"emailAddress\":\"d@x.org\","
	    "\"eventId\":\"test-event-1\"}]", NULL, "client eventId");
	field_is(ev, "eventId", "test-event-1", "eventId the client sent is kept");
	jv_free(ev);

	ev = one_event("[{\"eventType\":\"help\",\"emailAddress\":\"d@x.org\","
	    "\"receivedAt\":\"1999-01-01T00:00:00Z\",\"studentId\":\"mallory\"}]",
	    NULL, "client receivedAt and studentId");
	field_is(ev, "receivedAt", RECEIVED_AT, "receivedAt is the server's");
	field_is(ev, "studentId", "d@x.org", "studentId is the server's");
	jv_free(ev);

	ev = one_event("{\"eventType\":\"notebook_opened\","
	    "\"emailAddress\":\"e@x.org\"}", NULL, "single object");
	field_is(ev, "studentId", "e@x.org", "single object: stamped");
	jv_free(ev);
	is_int(prepare("{\"eventType\":\"notebook_opened\","
	    "\"emailAddress\":\"e@x.org\"}", NULL, &out, &e), 0,
	    "single object: accepted");
	ok(jv_get_kind(out) == JV_KIND_ARRAY &&
	    jv_array_length(jv_copy(out)) == 1, "single object: a batch of one");
	jv_free(out);

	is_int(prepare("[{\"eventType\":\"a\",\"userId\":1},"
	    "{\"eventType\":\"b\",\"userId\":2},"
	    "{\"eventType\":\"c\",\"userId\":3,\"eventId\":\"mine\"}]", "k", &out,
	    &e), 0, "batch of three: accepted");
	is_int(jv_array_length(jv_copy(out)), 3, "batch of three: three out");
	check_owned(out, "batch of three");
	a = jv_array_get(jv_copy(out), 0);
	b = jv_array_get(jv_copy(out), 1);
	ev = jv_array_get(jv_copy(out), 2);
	ok(!jv_equal(get(a, "eventId"), get(b, "eventId")),
	    "batch: generated ids differ");
	field_is(ev, "eventId", "mine", "batch: a client id among generated ones");
	ok(jv_equal(get(a, "receivedAt"), get(ev, "receivedAt")),
	    "batch: one receivedAt for the whole POST");
	field_is(b, "eventType", "b", "batch: order kept");
	field_is(b, "classId", "k", "batch: every event gets a classId");
	jv_free(a);
	jv_free(b);
	jv_free(ev);
	jv_free(out);

	/* Values of known fields that are fine, at their edges. */
	ev = one_event("[{\"eventType\":\"x\",\"userId\":\"u\",\"cellIndex\":3.0,"
	    "\"executionCount\":null,\"hasError\":true,\"metadata\":null,"
	    "\"result\":[1,{\"a\":2}],\"executionDurationMs\":0,"
	    "\"eventTime\":\"2026-11-25T20:31:39+01:00\"}]", NULL,
	    "integral 3.0, nulls, any result, zoned time");
	jv_free(ev);
	ev = one_event("[{\"eventType\":\"x\",\"userId\":\"u\",\"result\":null,"
	    "\"metadata\":{}}]", NULL, "null result, empty metadata");
	jv_free(ev);
}

struct refusal {
	const char *name;
	const char *body;
	int status;
	long index;
	long offset;
	const char *field;
	const char *msg;	/* exact, or a prefix when it ends in '*' */
};

static void
check_refusal(const struct refusal *r, const struct events_limits *lim)
{
	struct events_error e;
	jv out;
	size_t n;
	int rc;

	rc = prepare_with(r->body, lim, "cs101", &out, &e);
	is_int(rc, -1, "%s: refused", r->name);
	ok(!jv_is_valid(out), "%s: nothing in *out", r->name);
	jv_free(out);
	if (rc != -1)
		return;
	is_int(e.status, r->status, "%s: status %d", r->name, r->status);
	is_int(e.index, r->index, "%s: index %ld", r->name, r->index);
	is_int(e.offset, r->offset, "%s: offset %ld", r->name, r->offset);
	is_str(e.field, r->field, "%s: field '%s'", r->name, r->field);
	if (r->msg == NULL)
		return;
	n = strlen(r->msg);
	if (n > 0 && r->msg[n - 1] == '*') {
		if (!ok(strncmp(e.msg, r->msg, n - 1) == 0, "%s: message", r->name))
			diag("    got '%s'", e.msg);
	} else
		is_str(e.msg, r->msg, "%s: message", r->name);
}

#define GOOD	"{\"eventType\":\"cell_executed\",\"emailAddress\":\"a@x.org\"}"
#define BAD(f)	"[" GOOD ",{\"eventType\":\"cell_executed\"," \
	"\"emailAddress\":\"b@x.org\"," f "}]"

static void
test_refusals(void)
{
	static const struct refusal r[] = {
		{ "double comma", "[{\"a\":1,,}]", 400, -1, 8, "",
		    "malformed JSON at byte 8: *" },
		{ "cut short", "{\"a\":", 400, -1, 5, "",
		    "malformed JSON at byte 5: *" },
		{ "trailing garbage", "{} x", 400, -1, 3, "",
		    "malformed JSON at byte 3: *" },
		{ "second value", "[" GOOD "] [1]", 400, -1, 57, "",
		    "malformed JSON at byte 57: *" },
		{ "error on line 2", "[\n{\"a\":1,,}]", 400, -1, 9, "", NULL },
		{ "error after UTF-8", "[\"\xc3\xa9\",,]", 400, -1, 6, "", NULL },
		{ "leading blanks", "  [1,,]", 400, -1, 5, "", NULL },
		{ "unfinished string", "[\"abc", 400, -1, 5, "", NULL },
		/* a bare word is found bad where it ends: jq reads it whole first */
		{ "single quotes", "{'a':1}", 400, -1, 1, "",
		    "malformed JSON at byte 1: object keys must be strings at "
		    "line 1, column 2" },
		{ "Python True", "{\"hasError\":True}", 400, -1, 12, "",
		    "malformed JSON at byte 12: unexpected 'T' at line 1, "
		    "column 13" },
		{ "empty body", "", 400, -1, 0, "",
		    "empty body: expected a JSON array of events or one event "
		    "object" },
		{ "blank body", " \r\n\t", 400, -1, 4, "", "empty body: *" },
		{ "empty array", "[]", 400, -1, -1, "", "empty batch: no events" },
		{ "number at top level", "42", 400, -1, -1, "",
		    "expected a JSON array of events or one event object" },
		{ "string at top level", "\"event\"", 400, -1, -1, "",
		    "expected a JSON array of events or one event object" },
		{ "null at top level", "null", 400, -1, -1, "", NULL },
		{ "element not an object", "[" GOOD ",7]", 400, 1, -1, "",
		    "event at index 1 is not a JSON object" },
		{ "element an array", "[[]]", 400, 0, -1, "",
		    "event at index 0 is not a JSON object" },
		{ "missing eventType", "[" GOOD ",{\"emailAddress\":\"b@x.org\"}]",
		    400, 1, -1, "eventType",
		    "missing required field eventType at index 1" },
		{ "missing student", "[{\"eventType\":\"help\"}]", 400, 0, -1,
		    "emailAddress",
		    "missing required field emailAddress (or userId) at index 0" },
		{ "empty emailAddress and userId",
		    "[{\"eventType\":\"help\",\"emailAddress\":\"\",\"userId\":\"\"}]",
		    400, 0, -1, "emailAddress", NULL },
		{ "null emailAddress and userId",
		    "[{\"eventType\":\"help\",\"emailAddress\":null,\"userId\":null}]",
		    400, 0, -1, "emailAddress", NULL },
		{ "cellIndex \"x\"", BAD("\"cellIndex\":\"x\""), 400, 1, -1,
		    "cellIndex", "field cellIndex at index 1 must be an integer" },
		{ "cellIndex 2.5", BAD("\"cellIndex\":2.5"), 400, 1, -1,
		    "cellIndex", NULL },
		{ "cellIndex 1e300", BAD("\"cellIndex\":1e300"), 400, 1, -1,
		    "cellIndex", NULL },
		{ "hasError \"yes\"", BAD("\"hasError\":\"yes\""), 400, 1, -1,
		    "hasError", "field hasError at index 1 must be a boolean" },
		{ "hasError 1", BAD("\"hasError\":1"), 400, 1, -1, "hasError",
		    NULL },
		{ "metadata []", BAD("\"metadata\":[]"), 400, 1, -1, "metadata",
		    "field metadata at index 1 must be an object" },
		{ "metadata \"{}\"", BAD("\"metadata\":\"{}\""), 400, 1, -1,
		    "metadata", NULL },
		{ "executionCount 1.5", BAD("\"executionCount\":1.5"), 400, 1, -1,
		    "executionCount",
		    "field executionCount at index 1 must be an integer" },
		{ "eventTime \"yesterday\"", BAD("\"eventTime\":\"yesterday\""),
		    400, 1, -1, "eventTime",
		    "field eventTime at index 1 must be an ISO 8601 date and time" },
		{ "eventTime number", BAD("\"eventTime\":1764102699"), 400, 1, -1,
		    "eventTime", NULL },
		{ "eventId \"\"", BAD("\"eventId\":\"\""), 400, 1, -1, "eventId",
		    "field eventId at index 1 must be a non-empty string" },
		{ "eventId 5", BAD("\"eventId\":5"), 400, 1, -1, "eventId", NULL },
		{ "classId \"\"", BAD("\"classId\":\"\""), 400, 1, -1, "classId",
		    NULL },
		{ "eventType \"\"", "[{\"eventType\":\"\",\"userId\":\"u\"}]", 400,
		    0, -1, "eventType", NULL },
		{ "eventType null", "[{\"eventType\":null,\"userId\":\"u\"}]", 400,
		    0, -1, "eventType", NULL },
		{ "userId true", "[{\"eventType\":\"x\",\"userId\":true}]", 400, 0,
		    -1, "userId", NULL },
		{ "emailAddress 5", "[{\"eventType\":\"x\",\"emailAddress\":5}]",
		    400, 0, -1, "emailAddress", NULL },
		{ "executionDurationMs \"12\"", BAD("\"executionDurationMs\":\"12\""),
		    400, 1, -1, "executionDurationMs", NULL },
		{ "code 5", BAD("\"code\":5"), 400, 1, -1, "code", NULL },
	};
	size_t i;

	for (i = 0; i < sizeof r / sizeof r[0]; i++)
		check_refusal(&r[i], &limits);
}

/* What RFC 8259 or PostgreSQL's jsonb refuses is refused at the door,
 * where it goes wrong; jq 1.6 took most of these. */
static void
test_strict_json(void)
{
	static const struct refusal r[] = {
		{ "a byte order mark", "\xef\xbb\xbf[" GOOD "]", 400, -1, 0, "",
		    "malformed JSON at byte 0: byte order mark (U+FEFF) is not "
		    "allowed at line 1, column 1" },
		/* the body that crashed ingest: the mark, then an object value */
		{ "a byte order mark, an object value",
		    "\xef\xbb\xbf[{\"eventType\":\"x\",\"metadata\":{\"a\":1},"
		    "\"eventId\":\"e1\",\"emailAddress\":\"a@x\"}]", 400, -1, 0, "",
		    "malformed JSON at byte 0: byte order mark *" },
		{ "a byte order mark after a blank", " \xef\xbb\xbf{}", 400, -1, 1,
		    "", "malformed JSON at byte 1: byte order mark *" },
		{ "nan", BAD("\"result\":nan"), 400, -1, 119, "",
		    "malformed JSON at byte 119: invalid literal at line 1, "
		    "column 120" },
		{ "NaN", BAD("\"result\":NaN"), 400, -1, 119, "",
		    "malformed JSON at byte 119: unexpected 'N' *" },
		{ "Infinity", BAD("\"result\":Infinity"), 400, -1, 119, "",
		    "malformed JSON at byte 119: unexpected 'I' *" },
		{ "-Infinity", BAD("\"result\":-Infinity"), 400, -1, 119, "",
		    "malformed JSON at byte 119: invalid number *" },
		{ "007", BAD("\"cellIndex\":007"), 400, -1, 122, "",
		    "malformed JSON at byte 122: number with a leading zero at "
		    "line 1, column 123" },
		{ "-01", BAD("\"result\":-01"), 400, -1, 119, "",
		    "malformed JSON at byte 119: number with a leading zero *" },
		{ ".5", BAD("\"result\":.5"), 400, -1, 119, "",
		    "malformed JSON at byte 119: unexpected '.' *" },
		{ "1.", BAD("\"result\":1.}"), 400, -1, 119, "",
		    "malformed JSON at byte 119: invalid number *" },
		{ "+1", BAD("\"result\":+1"), 400, -1, 119, "",
		    "malformed JSON at byte 119: unexpected '+' *" },
		{ "1e", BAD("\"result\":1e}"), 400, -1, 119, "",
		    "malformed JSON at byte 119: invalid number *" },
		{ "0x10", BAD("\"result\":0x10"), 400, -1, 120, "",
		    "malformed JSON at byte 120: expected ',' or '}' *" },
		{ "an exponent numeric cannot hold", BAD("\"result\":1e131072"),
		    400, -1, 119, "", "malformed JSON at byte 119: number out of "
		    "the range PostgreSQL's numeric holds at line 1, column 120" },
		{ "too many digits after the point", BAD("\"result\":1e-16384"),
		    400, -1, 119, "", "malformed JSON at byte 119: number out *" },
		{ "an exponent past INT_MAX / 2", BAD("\"result\":0e1073741823"),
		    400, -1, 119, "", "malformed JSON at byte 119: number out *" },
		{ "an enormous exponent", BAD("\"result\":1e99999999999999999999"),
		    400, -1, 119, "", "malformed JSON at byte 119: number out *" },
		{ "a raw tab in a string", BAD("\"code\":\"a\tb\""), 400, -1, 119,
		    "", "malformed JSON at byte 119: control character U+0009 *" },
		{ "a raw newline in a string", BAD("\"code\":\"a\nb\""), 400, -1,
		    119, "", "malformed JSON at byte 119: control character "
		    "U+000A in a string at line 1, column 120" },
		{ "\\u0000", BAD("\"code\":\"a\\u0000\""), 400, -1, 119, "",
		    "malformed JSON at byte 119: \\u0000 is not allowed in a "
		    "string at line 1, column 120" },
		{ "\\u0000 in a key", "{\"a\\u0000\":1}", 400, -1, 3, "",
		    "malformed JSON at byte 3: \\u0000 *" },
		{ "a lone high surrogate", BAD("\"code\":\"\\ud800\""), 400, -1,
		    118, "", "malformed JSON at byte 118: unpaired UTF-16 "
		    "surrogate at line 1, column 119" },
		{ "a lone low surrogate", BAD("\"code\":\"\\udc00\""), 400, -1, 118,
		    "", "malformed JSON at byte 118: unpaired UTF-16 surrogate *" },
		{ "a high surrogate, then a letter", BAD("\"code\":\"\\ud83dx\""),
		    400, -1, 118, "", "malformed JSON at byte 118: unpaired *" },
		{ "two high surrogates", BAD("\"code\":\"\\ud83d\\ud83d\""), 400,
		    -1, 118, "", "malformed JSON at byte 118: unpaired *" },
		{ "a bad escape", BAD("\"code\":\"\\x41\""), 400, -1, 118, "",
		    "malformed JSON at byte 118: invalid escape *" },
		{ "a short \\u", BAD("\"code\":\"\\u12\""), 400, -1, 118, "",
		    "malformed JSON at byte 118: invalid \\u escape *" },
		{ "not UTF-8", BAD("\"code\":\"\xff\""), 400, -1, 118, "",
		    "malformed JSON at byte 118: not UTF-8" },
		{ "overlong UTF-8", BAD("\"code\":\"\xc0\xaf\""), 400, -1, 118, "",
		    "malformed JSON at byte 118: not UTF-8" },
		{ "UTF-8 of a surrogate", BAD("\"code\":\"\xed\xa0\x80\""), 400,
		    -1, 118, "", "malformed JSON at byte 118: not UTF-8" },
		{ "UTF-8 cut short", BAD("\"code\":\"\xe2\x82\""), 400, -1, 118, "",
		    "malformed JSON at byte 118: not UTF-8" },
		{ "Latin-1 outside a string", "[\xe9]", 400, -1, 1, "",
		    "malformed JSON at byte 1: unexpected byte 0xe9 *" },
		{ "single quoted string", BAD("\"code\":'x'"), 400, -1, 117, "",
		    "malformed JSON at byte 117: unexpected *" },
		{ "a comment", "[" GOOD " /* c */]", 400, -1, 56, "",
		    "malformed JSON at byte 56: expected ',' or ']' *" },
		{ "a line comment", "// c\n[" GOOD "]", 400, -1, 0, "",
		    "malformed JSON at byte 0: unexpected '/' *" },
		{ "a trailing comma", "[" GOOD ",]", 400, -1, 56, "",
		    "malformed JSON at byte 56: Expected value before ']' at "
		    "line 1, column 57" },
		{ "a trailing comma in an object", "{\"a\":1,}", 400, -1, 7, "",
		    "malformed JSON at byte 7: Expected value before '}' *" },
		{ "a form feed as blank", "\f[" GOOD "]", 400, -1, 0, "",
		    "malformed JSON at byte 0: unexpected byte 0x0c *" },
		{ "a second line", "[" GOOD ",\n\n  x]", 400, -1, 60, "",
		    "malformed JSON at byte 60: unexpected 'x' at line 3, column 3" },
		{ "a key without a colon", "{\"a\" 1}", 400, -1, 5, "",
		    "malformed JSON at byte 5: expected ':' after an object key *" },
		{ "cut short in a string", "[{\"a\":\"b", 400, -1, 8, "",
		    "malformed JSON at byte 8: unfinished string at EOF *" },
		{ "cut short in a literal", "[tru", 400, -1, 4, "",
		    "malformed JSON at byte 4: unfinished JSON text at EOF *" },
		{ "trailing garbage", "[" GOOD "]x", 400, -1, 56, "",
		    "malformed JSON at byte 56: unexpected data after the JSON "
		    "text at line 1, column 57" },
	};
	char deep[200];
	struct events_error e;
	jv out;
	size_t i;

	for (i = 0; i < sizeof r / sizeof r[0]; i++)
		check_refusal(&r[i], &limits);

	/* 64 levels of nesting are taken, 65 are not: the batch and the
	 * event are two */
	memset(deep, 0, sizeof deep);
	strcpy(deep, "[{\"eventType\":\"x\",\"userId\":\"u\",\"result\":");
	i = strlen(deep);
	memset(deep + i, '[', 62);
	memset(deep + i + 62, ']', 62);
	strcpy(deep + i + 124, "}]");
	is_int(prepare(deep, NULL, &out, &e), 0, "64 levels deep: accepted");
	jv_free(out);
	memmove(deep + i + 1, deep + i, strlen(deep + i) + 1);
	deep[i] = '[';
	memmove(deep + i + 64, deep + i + 63, strlen(deep + i + 63) + 1);
	deep[i + 63] = ']';
	is_int(prepare(deep, NULL, &out, &e), -1, "65 levels deep: refused");
	is_str(e.msg, "malformed JSON at byte 102: nesting deeper than 64 "
	    "levels at line 1, column 103", "65 levels deep: the message");
	is_int(e.offset, 102, "65 levels deep: where the 65th opens");

	/* a raw NUL: the body's length, not a C string's */
	{
		static const char nul[] = "[{\"eventType\":\"a\0b\"}]";
		struct events_ctx ctx = { NULL, "default", RECEIVED_US };
		struct events_text t;

		is_int(events_prepare_text(nul, sizeof nul - 1, &limits, &ctx,
		    &t, &e), -1, "a raw NUL in a string: refused");
		is_int(e.status, 400, "a raw NUL in a string: 400");
		is_int(e.offset, 16, "a raw NUL in a string: its offset");
		is_str(e.msg, "malformed JSON at byte 16: control character "
		    "U+0000 in a string at line 1, column 17",
		    "a raw NUL in a string: the message");
	}

	/* what jsonb still holds is taken */
	is_int(prepare("[{\"eventType\":\"x\",\"userId\":\"u\",\"a\":1e131071,"
	    "\"b\":1.5e-16382,\"c\":0e1000000,\"d\":-0,\"e\":1E+2,\"f\":\"\\ud83d"
	    "\\ude00\\u00e9\\/\",\"g\":\"\x7f\"}]", NULL, &out, &e), 0,
	    "numbers at jsonb's edges, a surrogate pair, DEL: accepted");
	jv_free(out);
}

/* A token bound to a class is authoritative; "*" and no token let the
 * client's classId stand. */
static void
test_class_rule(void)
{
	static const struct refusal r[] = {
		{ "another class", "[" GOOD ",{\"eventType\":\"x\","
		    "\"emailAddress\":\"b\",\"classId\":\"CS101\"}]", 403, 1, -1,
		    "classId",
		    "field classId at index 1 is not the class of the token" },
		{ "another class, escaped", "[{\"eventType\":\"x\","
		    "\"emailAddress\":\"b\",\"classId\":\"cs10\\u0032\"}]", 403, 0,
		    -1, "classId", NULL },
		{ "the class twice, the last another", "[{\"eventType\":\"x\","
		    "\"emailAddress\":\"b\",\"classId\":\"cs101\","
		    "\"classId\":\"cs102\"}]", 403, 0, -1, "classId", NULL },
		/* a bad field before it is named first */
		{ "another class after a bad field", "[{\"eventType\":\"x\","
		    "\"emailAddress\":\"b\",\"classId\":\"CS1\",\"cellIndex\":\"a\"}]",
		    400, 0, -1, "cellIndex", NULL },
	};
	struct events_error e;
	jv out, ev;
	size_t i;

	for (i = 0; i < sizeof r / sizeof r[0]; i++)
		check_refusal(&r[i], &limits);
	ev = one_event("[{\"eventType\":\"x\",\"emailAddress\":\"b\","
	    "\"classId\":\"cs\\u0031\\u00301\"}]", "cs101",
	    "the token's class, escaped");
	field_is(ev, "classId", "cs101", "the token's class, escaped: kept");
	jv_free(ev);
	ev = one_event("[{\"eventType\":\"x\",\"emailAddress\":\"b\"}]", "cs102",
	    "no classId, a class token");
	field_is(ev, "classId", "cs102", "no classId: the token's class");
	jv_free(ev);
	is_int(prepare("[{\"eventType\":\"x\",\"emailAddress\":\"b\","
	    "\"classId\":\"CS101\"}]", "CS102", &out, &e), -1,
	    "CS102 token, classId CS101: refused");
	ok(!jv_is_valid(out), "CS102 token, classId CS101: nothing out");
	is_int(e.status, 403, "CS102 token, classId CS101: 403");
}

/* What is queued: the client's bytes, the server's fields spliced. */
static void
test_queued_bytes(void)
{
	struct events_ctx ctx = { NULL, "default", RECEIVED_US };
	struct events_text t, t2;
	struct events_error e;
	const char *body;
	char id[37], want[512];

	body = "[{\"eventType\":\"a\",\"studentId\":\"forged\",\"emailAddress\":"
	    "\"x@y\",\"big\":12345678901234567890123,\"f\":1.50,\"receivedAt\":"
	    "\"1999\",\"m\":{\"k\" : [1,\r\n2]}}]";
	is_int(events_prepare_text(body, strlen(body), &limits, &ctx, &t, &e), 0,
	    "server fields sent: accepted");
	events_derive_id(body + 1, strlen(body) - 2, id);
	snprintf(want, sizeof want, "{\"eventType\":\"a\",\"emailAddress\":"
	    "\"x@y\",\"big\":12345678901234567890123,\"f\":1.50,\"m\":{\"k\" : "
	    "[1,  2]},\"eventId\":\"%s\",\"classId\":\"default\",\"studentId\":"
	    "\"x@y\",\"receivedAt\":\"" RECEIVED_AT "\"}", id);
	ok(t.len == strlen(want) && memcmp(t.buf, want, t.len) == 0,
	    "server fields cut out, numbers kept, CR LF as spaces");
	if (t.len != strlen(want) || memcmp(t.buf, want, t.len) != 0)
		diag("    got  %.*s\n    want %s", (int)t.len, t.buf, want);
	is_str(t.n ? t.items[0].id : "", id,
	    "server fields sent: the derived id answered");
	/* a retry of the same body: the same id */
	is_int(events_prepare_text(body, strlen(body), &limits, &ctx, &t2, &e),
	    0, "a retry: accepted");
	is_str(t2.n ? t2.items[0].id : "", t.n ? t.items[0].id : "-",
	    "a retry: the same eventId");
	events_text_free(&t);
	events_text_free(&t2);

	body = "{\"eventType\":\"a\",\"userId\":\"u\\u00e9\",\"student\\u0049d\":1,"
	    "\"eventId\":\"e\\/1\"}";
	is_int(events_prepare_text(body, strlen(body), &limits, &ctx, &t, &e), 0,
	    "escaped key of a server field: accepted");
	snprintf(want, sizeof want, "{\"eventType\":\"a\",\"userId\":\"u\\u00e9\","
	    "\"eventId\":\"e\\/1\",\"classId\":\"default\",\"studentId\":"
	    "\"u\xc3\xa9\",\"receivedAt\":\"" RECEIVED_AT "\"}");
	ok(t.len == strlen(want) && memcmp(t.buf, want, t.len) == 0,
	    "escaped server key cut out; the student decoded");
	if (t.len != strlen(want) || memcmp(t.buf, want, t.len) != 0)
		diag("    got  %.*s\n    want %s", (int)t.len, t.buf, want);
	is_str(t.n ? t.items[0].id : "", "e/1", "the decoded eventId answered");
	events_text_free(&t);

	body = "{\"eventType\":\"a\",\"userId\":\"a\\\"b\\u0001\"}";
	is_int(events_prepare_text(body, strlen(body), &limits, &ctx, &t, &e), 0,
	    "a student with a quote and a control character: accepted");
	ok(t.len > 0 && memmem(t.buf, t.len, "\"studentId\":\"a\\\"b\\u0001\"",
	    strlen("\"studentId\":\"a\\\"b\\u0001\"")) != NULL,
	    "the student written back as JSON: %.*s", (int)t.len, t.buf);
	events_text_free(&t);
}

static void
test_limits(void)
{
	static const struct events_limits small = { 3, 16 };
	static const struct refusal r[] = {
		{ "code of 17 bytes",
		    "[{\"eventType\":\"x\",\"userId\":\"u\"},"
		    "{\"eventType\":\"x\",\"userId\":\"u\","
		    "\"code\":\"0123456789abcdefg\"}]", 413, 1, -1, "code",
		    "field code at index 1 is longer than 16 bytes" },
		{ "9 two-byte characters",
		    "[{\"eventType\":\"x\",\"userId\":\"u\",\"userName\":"
		    "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
		    "\xc3\xa9\xc3\xa9\"}]", 413, 0, -1, "userName", NULL },
		{ "emailAddress of 17 bytes",
		    "[{\"eventType\":\"x\",\"emailAddress\":\"abcdefghij@x.org1\"}]",
		    413, 0, -1, "emailAddress", NULL },
		{ "unknown field of 17 bytes",
		    "[{\"eventType\":\"x\",\"userId\":\"u\","
		    "\"labVersion\":\"0123456789abcdefg\"}]", 413, 0, -1,
		    "labVersion", NULL },
		{ "four events, limit three",
		    "[{},{},{},{}]", 413, -1, -1, "",
		    "batch of 4 events is larger than the limit of 3" },
	};
	struct events_error e;
	jv out;
	size_t i;

	is_int(prepare_with("[{\"eventType\":\"x\",\"userId\":\"u\","
	    "\"code\":\"0123456789abcdef\"}]", &small, NULL, &out, &e), 0,
	    "code of exactly max_field bytes: accepted");
	jv_free(out);
	is_int(prepare_with("[{\"eventType\":\"x\",\"userId\":\"u\",\"userName\":"
	    "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\"}]", &small, NULL, &out, &e), 0,
	    "8 two-byte characters (16 bytes): accepted");
	jv_free(out);
	is_int(prepare_with("[{\"eventType\":\"x\",\"userId\":1},"
	    "{\"eventType\":\"x\",\"userId\":2},{\"eventType\":\"x\",\"userId\":3}]",
	    &small, NULL, &out, &e), 0, "exactly max_batch events: accepted");
	jv_free(out);
	for (i = 0; i < sizeof r / sizeof r[0]; i++)
		check_refusal(&r[i], &small);
}

static void
test_error_json(void)
{
	struct events_error e;
	jv out, j, v;

	prepare(BAD("\"cellIndex\":\"x\""), NULL, &out, &e);
	jv_free(out);
	j = events_error_json(&e);
	is_int(jv_get_kind(j), JV_KIND_OBJECT, "error json: an object");
	field_is(j, "error", "field cellIndex at index 1 must be an integer",
	    "error json: error is the message");
	field_is(j, "field", "cellIndex", "error json: field");
	v = get(j, "index");
	ok(jv_get_kind(v) == JV_KIND_NUMBER && jv_number_value(v) == 1,
	    "error json: index 1");
	jv_free(v);
	ok(!jv_object_has(jv_copy(j), jv_string("offset")),
	    "error json: no offset when not a JSON error");
	is_int(jv_object_length(jv_copy(j)), 3, "error json: three keys");
	jv_free(j);

	prepare("[{\"a\":1,,}]", NULL, &out, &e);
	jv_free(out);
	j = events_error_json(&e);
	v = get(j, "offset");
	ok(jv_get_kind(v) == JV_KIND_NUMBER && jv_number_value(v) == 8,
	    "malformed error json: offset 8");
	jv_free(v);
	ok(!jv_object_has(jv_copy(j), jv_string("index")) &&
	    !jv_object_has(jv_copy(j), jv_string("field")),
	    "malformed error json: no index, no field");
	is_int(jv_object_length(jv_copy(j)), 2, "malformed error json: two keys");
	jv_free(j);

	prepare("[]", NULL, &out, &e);
	jv_free(out);
	j = events_error_json(&e);
	field_is(j, "error", "empty batch: no events", "batch error json: error");
	is_int(jv_object_length(jv_copy(j)), 1, "batch error json: one key");
	jv_free(j);
}

/* A daemon prepares events all day: what it frees must go back. LeakSanitizer
 * sees this under ASan; glibc's counters see it in a plain build. */
static void
test_no_leak(void)
{
#ifdef HEAP_COUNTED
	struct events_error e;
	struct mallinfo2 before, after;
	jv out;
	int i;

	for (i = 0; i < 10; i++) {		/* warm up jq's own tables */
		prepare(cell_run, NULL, &out, &e);
		jv_free(out);
	}
	before = mallinfo2();
	for (i = 0; i < 1000; i++) {
		prepare(cell_run, NULL, &out, &e);
		jv_free(out);
		prepare("[{\"eventType\":\"x\",\"userId\":42}]", NULL, &out,
		    &e);
		jv_free(out);
		prepare(BAD("\"cellIndex\":\"x\""), NULL, &out, &e);
		jv_free(out);
		prepare("[{\"a\":1,,}]", NULL, &out, &e);
		jv_free(out);
	}
	after = mallinfo2();
	if (!ok(after.uordblks <= before.uordblks + 65536,
	    "4000 bodies prepared and freed: the heap does not grow"))
		diag("    grew by %zu bytes",
		    (size_t)(after.uordblks - before.uordblks));
#else
	skip(1, "heap not counted here (LeakSanitizer or no glibc)");
#endif
}

static void
test_valid_time(void)
{
	static const char *const good[] = {
		"2026-11-25T20:31:39Z",
		"2026-11-25T20:31:39z",
		"2026-11-25T20:31:39",			/* no zone: UTC */
		"2026-11-25T20:31:39.512",
		"2026-11-25T20:31:39.1Z",
		"2026-11-25T20:31:39.123456789Z",	/* 9 fraction digits */
		"2026-11-25T20:31:39,5Z",
		"2026-11-25T20:31:39+01:00",
		"2026-11-25T20:31:39+0100",
		"2026-11-25T20:31:39+01",
		"2026-11-25T20:31:39-05:30",
		"2026-11-25T20:31:39.123+01:00",
		"2026-11-25T20:31:39-00:00",
		"2026-11-25T20:31:39+23:59",
		"2026-11-25t20:31:39Z",
		"2026-11-25 20:31:39Z",
		"2026-11-25T20:31",			/* seconds may be left out */
		"2026-11-25T20:31Z",
		"2026-11-25T20:31+01:00",
		"2026-12-31T23:59:60Z",			/* leap second */
		"2026-01-01T00:00:00Z",
		"2024-02-29T12:00:00Z",			/* leap year */
		"2026-01-31T00:00:00Z",
		"2026-04-30T00:00:00Z",
	};
	static const char *const bad[] = {
		"",
		"yesterday",
		"2026-11-25",				/* a date alone */
		"2026-11-25T",
		"2026-11-25T20",
		"2026-11-25T20:3",
		"2026-13-01T00:00:00Z",			/* month 13 */
		"2026-00-01T00:00:00Z",
		"2026-11-00T00:00:00Z",
		"2026-11-32T00:00:00Z",
		"2026-11-25T24:00:00Z",			/* hour 24 */
		"2026-11-25T20:60:00Z",
		"2026-11-25T20:31:61Z",
		"2026-11-25T20:31:39.1234567890Z",	/* 10 fraction digits */
		"2026-11-25T20:31:39.Z",
		"2026-11-25T20:31:39.",
		"2026-11-25T20:31.5Z",			/* fraction without seconds */
		"2026-11-25T20:31:39ZZ",
		"2026-11-25T20:31:39Z ",
		" 2026-11-25T20:31:39Z",
		"2026-11-25T20:31:39+1",
		"2026-11-25T20:31:39+01:",
		"2026-11-25T20:31:39+01:0",
		"2026-11-25T20:31:39+01:000",
		"2026-11-25T20:31:39+24:00",
		"2026-11-25T20:31:39+01:60",
		"2026-11-25T20:31:39 +01:00",
		"2026-11-25T20:31:39UTC",
		"2026-11-25X20:31:39Z",
		"2026/11/25T20:31:39Z",
		"26-11-25T20:31:39Z",
		"2026-1-25T20:31:39Z",
		"2026-11-5T20:31:39Z",
		"2026-11-25T2:31:39Z",
		"20261125T203139Z",			/* basic format */
		"1764102699",
		/* days that do not exist in their month */
		"2026-02-29T00:00:00Z",			/* 2026 is no leap year */
		"2026-02-30T00:00:00Z",
		"2026-04-31T00:00:00Z",
		"2100-02-29T00:00:00Z",			/* no leap year either */
	};
	size_t i;

	for (i = 0; i < sizeof good / sizeof good[0]; i++)
		is_int(events_valid_time(good[i]), 1, "valid time '%s'", good[i]);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		is_int(events_valid_time(bad[i]), 0, "invalid time '%s'", bad[i]);
}

static void
test_format_time(void)
{
	static const struct {
		int64_t us;
		const char *want;
	} t[] = {
		{ 0, "1970-01-01T00:00:00.000000Z" },
		{ 1, "1970-01-01T00:00:00.000001Z" },
		{ 999999, "1970-01-01T00:00:00.999999Z" },
		{ RECEIVED_US, RECEIVED_AT },
		{ INT64_C(1795638699000042), "2026-11-25T20:31:39.000042Z" },
		{ INT64_C(1709164800500000), "2024-02-29T00:00:00.500000Z" },
		{ INT64_C(4102444799999999), "2099-12-31T23:59:59.999999Z" },
	};
	char buf[32];
	size_t i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		memset(buf, 'x', sizeof buf);
		events_format_time(t[i].us, buf);
		is_str(buf, t[i].want, "format_time(%lld)", (long long)t[i].us);
	}
	events_format_time(RECEIVED_US, buf);
	is_int(events_valid_time(buf), 1, "format_time output is a valid time");
}

/* The id of an event sent without one: the same bytes, the same id. */
static void
test_derive_id(void)
{
	char a[37], b[37];

	memset(a, 'x', sizeof a);
	/* sha256("x") = 2d711642b726b044 01627ca9fbac32f5...: version and
	 * variant bits set */
	events_derive_id("x", 1, a);
	is_str(a, "2d711642-b726-8044-8162-7ca9fbac32f5",
	    "derive_id: SHA-256, first 16 bytes, as a UUID v8");
	ok(is_uuid_v8(a), "derive_id: a lowercase UUID v8");
	events_derive_id("x", 1, b);
	is_str(b, a, "derive_id: the same bytes, the same id");
	events_derive_id("y", 1, b);
	ok(strcmp(a, b) != 0, "derive_id: other bytes, another id");
	events_derive_id("", 0, b);
	is_str(b, "e3b0c442-98fc-8c14-9afb-f4c8996fb924",
	    "derive_id: of no bytes");
}

/* What ingest queues: the client's own bytes, stamped. */
static void
test_text(void)
{
	struct events_ctx ctx = { NULL, "default", RECEIVED_US };
	struct events_text t;
	struct events_error e;
	const char *body;
	char *one;

	body = "[{\"eventType\":\"a\",\"emailAddress\":\"x@y\",\"eventId\":\"n1\","
	    "\"big\":12345678901234567890,\"f\":1.50}]";
	is_int(events_prepare_text(body, strlen(body), &limits, &ctx, &t, &e), 0,
	    "text: accepted");
	one = strndup(t.buf + t.items[0].off, t.items[0].len);
	is_str(one, "{\"eventType\":\"a\",\"emailAddress\":\"x@y\",\"eventId\":\"n1\","
	    "\"big\":12345678901234567890,\"f\":1.50,\"classId\":\"default\","
	    "\"studentId\":\"x@y\",\"receivedAt\":\"2026-11-25T20:31:39.123456Z\"}",
	    "text: the client's bytes kept (numbers too), the stamps added");
	is_str(t.items[0].id, "n1", "text: the id answered");
	free(one);
	events_text_free(&t);

	/* a field the server sets, sent by the client: one key, the server's */
	body = "{\"eventType\":\"a\",\"userId\":\"u\",\"studentId\":\"forged\"}";
	is_int(events_prepare_text(body, strlen(body), &limits, &ctx, &t, &e), 0,
	    "text: studentId sent by the client");
	one = strndup(t.buf + t.items[0].off, t.items[0].len);
	ok(strstr(one, "forged") == NULL && strstr(one, "\"studentId\":\"u\"") != NULL,
	    "text: the server's studentId replaces the client's: %s", one);
	ok(strstr(one, "\"eventId\":\"") != NULL, "text: an id was made");
	is_int((long)strlen(t.items[0].id), 36, "text: a UUID answered");
	free(one);
	events_text_free(&t);

	/* an event over several lines is written on one, for NDJSON */
	body = "[\n {\"eventType\": \"a\",\n  \"emailAddress\": \"x\"},\n {\"eventType\":\"b\",\"emailAddress\":\"y\"}\n]";
	is_int(events_prepare_text(body, strlen(body), &limits, &ctx, &t, &e), 0,
	    "text: a pretty-printed batch");
	is_int((long)t.n, 2, "text: two events");
	ok(memchr(t.buf, '\n', t.len) == NULL, "text: no newline in what is queued");
	one = strndup(t.buf + t.items[1].off, t.items[1].len);
	ok(strncmp(one, "{\"eventType\":\"b\",\"emailAddress\":\"y\",\"eventId\":\"",
	    strlen("{\"eventType\":\"b\",\"emailAddress\":\"y\",\"eventId\":\"")) == 0,
	    "text: the second event's own bytes: %s", one);
	free(one);
	events_text_free(&t);

	/* bytes that are not UTF-8 are refused where they are */
	body = "[{\"eventType\":\"a\",\"emailAddress\":\"x\xff\"}]";
	is_int(events_prepare_text(body, strlen(body), &limits, &ctx, &t, &e), -1,
	    "text: not UTF-8 refused");
	is_int(e.status, 400, "text: not UTF-8: 400");
	is_int(e.offset, 35, "text: not UTF-8: its offset");
	is_str(e.msg, "malformed JSON at byte 35: not UTF-8", "text: not UTF-8: the message");
	body = "[{\"eventType\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",\"emailAddress\":\"x\"}]";
	is_int(events_prepare_text(body, strlen(body), &limits, &ctx, &t, &e), 0,
	    "text: two-, three- and four-byte UTF-8 accepted");
	events_text_free(&t);
}

/* The scan and jq's parse of each event answer the same: the same bytes
 * and ids when accepted, the same status, index, field and message when
 * not; with no token, a "*" token and a class token. */
static void
test_fast_path_same(void)
{
	static const char *const bodies[] = {
		"[{\"eventId\":\"a1\",\"eventType\":\"cell_executed\",\"eventTime\":\"2026-11-25T10:15:30.123\","
		"\"emailAddress\":\"ada@example.edu\",\"userName\":\"Ada L\u00f6we\",\"cellIndex\":3,"
		"\"executionCount\":null,\"hasError\":false,\"executionDurationMs\":12.5e0,"
		"\"metadata\":{\"k\":[1,2,{\"x\":\"y\"}]},\"result\":[true,null],\"code\":\"print(\\\"hi\\\")\\n\"}]",
		"{\"eventId\":\"a2\",\"eventType\":\"help\",\"userId\":\"u-7\",\"classId\":\"CS1\"}",
		"[{\"eventId\":\"a3\",\"eventType\":\"x\",\"userId\":42}]",
		"[{\"eventId\":\"a4\",\"eventType\":\"x\",\"emailAddress\":\"e\\/s\"}]",
		"[{\"eventId\":\"a5\",\"eventType\":\"x\",\"emailAddress\":\"\",\"userId\":\"u5\"},"
		" {\"eventId\":\"a6\",\"eventType\":\"x\",\"userId\":\"u6\",\"emailAddress\":\"e6\"}]",
		"[{\"eventId\":\"a7\",\"eventType\":\"x\",\"emailAddress\":\"e\",\"dup\":1,\"dup\":2}]",
		"[{\"eventId\":\"a8\",\"eventType\":\"x\",\"emailAddress\":\"e\",\"eventType\":\"y\"}]",
		"[{\"eventId\":\"\u00e9t\u00e9\",\"eventType\":\"x\",\"emailAddress\":\"\u00e9\"}]",
		"[{\"eventType\":\"x\",\"emailAddress\":\"e\",\"classId\":\"CS2\"}]",
		"[{\"eventType\":\"x\",\"emailAddress\":\"e\",\"class\\u0049d\":\"CS\\u0031\"}]",
		"[{\"eventType\":\"x\",\"emailAddress\":\"e\",\"student\\u0049d\":\"m\",\"receivedAt\":1,\"z\":2}]",
		"[{\"eventType\":\"x\",\"userId\":12345678901234567890123}]",
		"[{\"eventType\":\"x\",\"userId\":1e400}]",
		"[{\"eventType\":\"x\",\"userId\":\"u\",\"cellIndex\":3.00000000000000000001}]",
		"[{\"eventType\":\"x\",\"userId\":\"u\",\"eventTime\":\"2026-11-25T10:15:30\\u002b01:00\"}]",
		"[{\"eventType\":\"x\",\"userId\":\"u\",\"eventId\":\"\\ud83d\\ude00\\n\"}]",
		"[{\"eventType\":\"x\",\"userId\":\"u\",\"other\":\"0123456789012345678901234567890123456789\",\"other\":\"short\"}]",
		"[{\"eventType\":\"x\",\"userId\":\"u\",\"cellIndex\":\"3\"},7,[]]",
		"[{\"eventType\":\"x\",\"userId\":\"\"}]",
		"[{\"eventType\":\"x\",\"emailAddress\":\"e\",\"classId\":\"CS1\",\"classId\":\"CS2\"}]",
		"  [ {\"eventId\" : \"a9\" , \"eventType\" : \"x\" , \"emailAddress\" : \"e\" } ]  ",
	};
	static const char *const classes[] = { NULL, "*", "CS1" };
	static const struct events_limits lim = { 100, 32 };
	struct events_text a, b;
	struct events_error ea, eb;
	size_t i, k, c;
	int ra, rb, same;

	for (c = 0; c < sizeof classes / sizeof classes[0]; c++)
	for (i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		struct events_ctx ctx = { classes[c], "default", RECEIVED_US };
		const char *body = bodies[i];

		events_fast_path = 1;
		ra = events_prepare_text(body, strlen(body), &lim, &ctx, &a, &ea);
		events_fast_path = 0;
		rb = events_prepare_text(body, strlen(body), &lim, &ctx, &b, &eb);
		if (ra < 0 || rb < 0) {
			same = ra == rb && ea.status == eb.status &&
			    ea.index == eb.index && ea.offset == eb.offset &&
			    strcmp(ea.field, eb.field) == 0 &&
			    strcmp(ea.msg, eb.msg) == 0;
			if (!ok(same, "body %zu, class %s: both refuse alike (%s)",
			    i, classes[c] ? classes[c] : "none", ea.msg))
				diag("    scan: %d %s / parse: %d %s", ra, ea.msg,
				    rb, eb.msg);
			events_text_free(&a);
			events_text_free(&b);
			continue;
		}
		same = a.n == b.n && a.len == b.len && memcmp(a.buf, b.buf, a.len) == 0;
		for (k = 0; same && k < a.n; k++)
			same = strcmp(a.items[k].id, b.items[k].id) == 0;
		ok(same, "body %zu, class %s: the scan and the parse queue the "
		    "same bytes", i, classes[c] ? classes[c] : "none");
		if (!same)
			diag("    scan:  %.*s\n    parse: %.*s", (int)a.len, a.buf,
			    (int)b.len, b.buf);
		events_text_free(&a);
		events_text_free(&b);
	}
	events_fast_path = 1;
}

int
main(void)
{
	test_fast_path_same();
	test_text();
	test_cell_monitor_event();
	test_stamping();
	test_refusals();
	test_strict_json();
	test_class_rule();
	test_queued_bytes();
	test_limits();
	test_error_json();
	test_no_leak();
	test_valid_time();
	test_format_time();
	test_derive_id();
	return done_testing();
}
