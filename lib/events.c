/* events.c: what ingest checks before an event may enter the stream. Unknown
 * fields are kept; known ones must have the type clients send. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "events.h"

enum {
	T_STRING = 1, T_NUMBER = 2, T_INTEGER = 4, T_BOOL = 8, T_NULL = 16,
	T_OBJECT = 32, T_ANY = 64
};

struct field_rule {
	const char *name;
	unsigned types;
	const char *expect;
};

/* The fields of DESIGN.md, as the JupyterLab cell-monitor clients send them. */
static const struct field_rule rules[] = {
	{ "cellId",		T_STRING | T_NULL,	"a string" },
	{ "cellIndex",		T_INTEGER | T_NULL,	"an integer" },
	{ "cellType",		T_STRING | T_NULL,	"a string" },
	{ "classId",		T_STRING,		"a non-empty string" },
	{ "code",		T_STRING | T_NULL,	"a string" },
	{ "emailAddress",	T_STRING | T_NULL,	"a string" },
	{ "errorMessage",	T_STRING | T_NULL,	"a string" },
	{ "eventId",		T_STRING,		"a non-empty string" },
	{ "eventTime",		T_STRING,		"an ISO 8601 date and time" },
	{ "eventType",		T_STRING,		"a non-empty string" },
	{ "executionCount",	T_INTEGER | T_NULL,	"an integer" },
	{ "executionDurationMs", T_NUMBER | T_NULL,	"a number" },
	{ "hasError",		T_BOOL | T_NULL,	"a boolean" },
	{ "metadata",		T_OBJECT | T_NULL,	"an object" },
	{ "notebookPath",	T_STRING | T_NULL,	"a string" },
	{ "result",		T_ANY,			"any value" },
	{ "sessionId",		T_STRING | T_NULL,	"a string" },
	{ "teamName",		T_STRING | T_NULL,	"a string" },
	{ "userId",		T_STRING | T_NUMBER | T_NULL, "a string" },
	{ "userName",		T_STRING | T_NULL,	"a string" },
};

/* Indexes into rules[] (kept sorted by name for bsearch). */
enum {
	RULE_CLASSID = 3, RULE_EMAIL = 5, RULE_EVENTID = 7, RULE_EVENTTIME = 8,
	RULE_EVENTTYPE = 9, RULE_USERID = 18
};

static int
fail(struct events_error *e, int status, long index, const char *field,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int
fail(struct events_error *e, int status, long index, const char *field,
    const char *fmt, ...)
{
	va_list ap;

	e->status = status;
	e->index = index;
	e->offset = -1;
	snprintf(e->field, sizeof e->field, "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	return -1;
}

/* jq's parser reports lines and columns; feeding it a byte at a time finds
 * the exact offset, and is done only for bodies already known to be bad. */
static long
json_error_offset(const char *buf, size_t len)
{
	struct jv_parser *p = jv_parser_new(0);
	size_t i;
	int seen = 0;
	long off = (long)len;
	jv v;

	for (i = 0; i < len; i++) {
		if (seen && !isspace((unsigned char)buf[i])) {
			off = (long)i;
			goto out;
		}
		jv_parser_set_buf(p, buf + i, 1, 1);
		while (jv_is_valid(v = jv_parser_next(p))) {
			seen = 1;
			jv_free(v);
		}
		if (jv_invalid_has_msg(jv_copy(v))) {
			jv_free(v);
			off = (long)i;
			goto out;
		}
		jv_free(v);
	}
out:
	jv_parser_free(p);
	return off;
}

static int
is_integer(double d)
{
	/* in range first: casting a larger double is undefined */
	return d > -9007199254740992.0 && d < 9007199254740992.0 &&
	    d == (double)(long long)d;
}

static int
type_ok(jv v, unsigned types)
{
	switch (jv_get_kind(v)) {
	case JV_KIND_STRING:
		return types & (T_STRING | T_ANY);
	case JV_KIND_NUMBER:
		if (types & (T_NUMBER | T_ANY))
			return 1;
		return (types & T_INTEGER) && is_integer(jv_number_value(v));
	case JV_KIND_TRUE:
	case JV_KIND_FALSE:
		return types & (T_BOOL | T_ANY);
	case JV_KIND_NULL:
		return types & (T_NULL | T_ANY);
	case JV_KIND_OBJECT:
		return types & (T_OBJECT | T_ANY);
	default:
		return types & T_ANY;
	}
}

static int
two(const char *s, int lo, int hi)
{
	int v;

	if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]))
		return -1;
	v = (s[0] - '0') * 10 + (s[1] - '0');
	return v < lo || v > hi ? -1 : v;
}

int
events_valid_time(const char *s)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };
	int i, year = 0, month, day;

	for (i = 0; i < 4; i++) {
		if (!isdigit((unsigned char)s[i]))
			return 0;
		year = year * 10 + (s[i] - '0');
	}
	s += 4;
	if (*s++ != '-' || (month = two(s, 1, 12)) < 0)
		return 0;
	s += 2;
	if (*s++ != '-' || (day = two(s, 1, mdays[month - 1])) < 0)
		return 0;
	if (month == 2 && day == 29 &&
	    !(year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)))
		return 0;
	s += 2;
	if ((*s != 'T' && *s != 't' && *s != ' ') || two(s + 1, 0, 23) < 0)
		return 0;
	s += 3;
	if (*s++ != ':' || two(s, 0, 59) < 0)
		return 0;
	s += 2;
	if (*s == ':') {
		if (two(s + 1, 0, 60) < 0)
			return 0;
		s += 3;
		if (*s == '.' || *s == ',') {
			s++;
			if (!isdigit((unsigned char)*s))
				return 0;
			for (i = 0; isdigit((unsigned char)*s); i++, s++)
				if (i >= 9)
					return 0;
		}
	}
	if (*s == '\0')
		return 1;
	if ((*s == 'Z' || *s == 'z') && s[1] == '\0')
		return 1;
	if (*s != '+' && *s != '-')
		return 0;
	s++;
	if (two(s, 0, 23) < 0)
		return 0;
	s += 2;
	if (*s == '\0')
		return 1;
	if (*s == ':')
		s++;
	return two(s, 0, 59) >= 0 && s[2] == '\0';
}

void
events_format_time(int64_t us, char buf[32])
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;
	size_t n;

	gmtime_r(&t, &tm);
	n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, 32 - n, ".%06dZ", (int)(us % 1000000));
}

/* xoshiro-style state seeded once from the kernel: ids need to be unique,
 * not secret, and a system call per event would cost more than the rest. */
static uint64_t rng_s[2];

static uint64_t
rng_next(void)
{
	uint64_t s1 = rng_s[0];
	const uint64_t s0 = rng_s[1];

	if (rng_s[0] == 0 && rng_s[1] == 0) {
		if (getrandom(rng_s, sizeof rng_s, 0) != sizeof rng_s) {
			rng_s[0] = (uint64_t)time(NULL) ^ (uint64_t)clock();
			rng_s[1] = (uint64_t)(uintptr_t)&s1 | 1;
		}
		return rng_next();
	}
	rng_s[0] = s0;
	s1 ^= s1 << 23;
	rng_s[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
	return rng_s[1] + s0;
}

void
events_new_id(char buf[37])
{
	uint64_t a = rng_next(), b = rng_next();

	a = (a & ~UINT64_C(0xf000)) | UINT64_C(0x4000);		/* version 4 */
	b = (b & ~(UINT64_C(3) << 62)) | (UINT64_C(2) << 62);	/* variant */
	snprintf(buf, 37, "%08x-%04x-%04x-%04x-%012llx",
	    (unsigned)(a >> 32), (unsigned)((a >> 16) & 0xffff),
	    (unsigned)(a & 0xffff), (unsigned)(b >> 48),
	    (unsigned long long)(b & UINT64_C(0xffffffffffff)));
}

static int
rule_cmp(const void *key, const void *r)
{
	return strcmp(key, ((const struct field_rule *)r)->name);
}

#define NRULES (sizeof rules / sizeof rules[0])

/* One pass over the event's fields; then the rules in their order, so that
 * the first error named does not depend on the order of the fields. */
static int
check_event(jv ev, long idx, const struct events_limits *lim,
    struct events_error *e)
{
	jv vals[NRULES];
	char too_long[64] = "";
	const struct field_rule *rule;
	size_t i;
	int ok, rc = 0, has_student;

	if (jv_get_kind(ev) != JV_KIND_OBJECT)
		return fail(e, 400, idx, NULL,
		    "event at index %ld is not a JSON object", idx);
	for (i = 0; i < NRULES; i++)
		vals[i] = jv_invalid();
	jv_object_foreach(ev, key, val) {
		rule = bsearch(jv_string_value(key), rules, NRULES,
		    sizeof rules[0], rule_cmp);
		if (rule != NULL) {
			vals[rule - rules] = val;
		} else {
			if (too_long[0] == '\0' &&
			    jv_get_kind(val) == JV_KIND_STRING &&
			    jv_string_length_bytes(jv_copy(val)) > lim->max_field)
				snprintf(too_long, sizeof too_long, "%s",
				    jv_string_value(key));
			jv_free(val);
		}
		jv_free(key);
	}
	for (i = 0; i < NRULES; i++) {
		jv v = vals[i];

		if (!jv_is_valid(v))		/* absent */
			continue;
		ok = type_ok(v, rules[i].types);
		if (ok && jv_get_kind(v) == JV_KIND_STRING) {
			int len = jv_string_length_bytes(jv_copy(v));

			if (len > lim->max_field) {
				rc = fail(e, 413, idx, rules[i].name,
				    "field %s at index %ld is longer than %ld bytes",
				    rules[i].name, idx, lim->max_field);
				goto out;
			}
			if (rules[i].types == T_STRING && strcmp(rules[i].expect,
			    "a non-empty string") == 0)
				ok = len > 0;
			else if (strcmp(rules[i].name, "eventTime") == 0)
				ok = events_valid_time(jv_string_value(v));
		}
		if (!ok) {
			rc = fail(e, 400, idx, rules[i].name,
			    "field %s at index %ld must be %s", rules[i].name,
			    idx, rules[i].expect);
			goto out;
		}
	}
	/* the size limit holds for every string field, known or not */
	if (too_long[0]) {
		rc = fail(e, 413, idx, too_long,
		    "field %s at index %ld is longer than %ld bytes", too_long,
		    idx, lim->max_field);
		goto out;
	}
	if (!jv_is_valid(vals[RULE_EVENTTYPE])) {
		rc = fail(e, 400, idx, "eventType",
		    "missing required field eventType at index %ld", idx);
		goto out;
	}
	has_student = (jv_get_kind(vals[RULE_EMAIL]) == JV_KIND_STRING &&
	    jv_string_length_bytes(jv_copy(vals[RULE_EMAIL])) > 0) ||
	    (jv_get_kind(vals[RULE_USERID]) == JV_KIND_STRING &&
	    jv_string_length_bytes(jv_copy(vals[RULE_USERID])) > 0) ||
	    jv_get_kind(vals[RULE_USERID]) == JV_KIND_NUMBER;
	if (!has_student)
		rc = fail(e, 400, idx, "emailAddress",
		    "missing required field emailAddress (or userId) at index %ld",
		    idx);
out:
	for (i = 0; i < NRULES; i++)
		jv_free(vals[i]);
	return rc;
}

/* The student's id: emailAddress, else userId (a number as its text).
 * Consumes ev. */
static jv
student_of(jv ev)
{
	jv email = jv_object_get(jv_copy(ev), jv_string("emailAddress"));
	jv user;

	if (jv_get_kind(email) == JV_KIND_STRING &&
	    jv_string_length_bytes(jv_copy(email)) > 0) {
		jv_free(ev);
		return email;
	}
	jv_free(email);
	user = jv_object_get(ev, jv_string("userId"));
	if (jv_get_kind(user) == JV_KIND_NUMBER)
		return jv_dump_string(user, 0);
	return user;
}

/* The end of the (valid) JSON value that starts at s[i]. */
static size_t
value_end(const char *s, size_t len, size_t i)
{
	int depth = 0;

	if (s[i] != '{' && s[i] != '[' && s[i] != '"') {
		while (i < len && !strchr(",]} \t\r\n", s[i]))
			i++;
		return i;
	}
	for (; i < len; i++) {
		switch (s[i]) {
		case '"':
			for (i++; i < len && s[i] != '"'; i++)
				if (s[i] == '\\')
					i++;
			if (depth == 0)
				return i + 1;
			break;
		case '{':
		case '[':
			depth++;
			break;
		case '}':
		case ']':
			if (--depth == 0)
				return i + 1;
			break;
		}
	}
	return len;
}

/* Where each top-level event lies in the body, so that it can be queued as
 * the client wrote it: numbers keep their digits, nothing is re-encoded. */
static void
event_spans(const char *s, size_t len, size_t n, size_t *from, size_t *to)
{
	size_t i = 0, k = 0;

	while (i < len && isspace((unsigned char)s[i]))
		i++;
	if (s[i] == '{') {
		from[0] = i;
		to[0] = value_end(s, len, i);
		return;
	}
	for (i++; k < n && i < len; k++) {
		while (i < len && (isspace((unsigned char)s[i]) || s[i] == ','))
			i++;
		from[k] = i;
		to[k] = i = value_end(s, len, i);
	}
}

/* The first byte at which s is not UTF-8, or -1. */
static long
utf8_invalid_at(const unsigned char *s, size_t len)
{
	size_t i = 0, n, k;
	unsigned c;

	while (i < len) {
		c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3;
		else
			return (long)i;
		for (k = 1; k <= n; k++)
			if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
				return (long)i;
		if ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] > 0x9f) ||
		    (c == 0xf0 && s[i + 1] < 0x90) || (c == 0xf4 && s[i + 1] > 0x8f))
			return (long)i;
		i += n + 1;
	}
	return -1;
}

static void
add_str(struct events_text *t, const char *s, size_t n)
{
	if (t->len + n > t->cap) {
		t->cap = (t->len + n) * 2 + 256;
		t->buf = realloc(t->buf, t->cap);
	}
	memcpy(t->buf + t->len, s, n);
	t->len += n;
}

static void
add_field(struct events_text *t, int *first, const char *name, jv value)
{
	jv txt = jv_dump_string(value, 0);

	if (!*first)
		add_str(t, ",", 1);
	*first = 0;
	add_str(t, "\"", 1);
	add_str(t, name, strlen(name));
	add_str(t, "\":", 2);
	add_str(t, jv_string_value(txt), (size_t)jv_string_length_bytes(jv_copy(txt)));
	jv_free(txt);
}

/* Append event i, stamped, to t: its own bytes with the server's fields
 * added before the closing brace. An event that already carries a field the
 * server sets, or spans lines, is written anew from its parsed form. */
static void
emit_event(struct events_text *t, const char *body, size_t from, size_t to,
    jv ev, const struct events_ctx *ctx, const char *received)
{
	char id[37];
	jv eid = jv_object_get(jv_copy(ev), jv_string("eventId"));
	int first;
	size_t start = t->len;

	if (!jv_is_valid(eid)) {
		jv_free(eid);
		events_new_id(id);
		eid = jv_string(id);
		if (!jv_object_has(jv_copy(ev), jv_string("studentId")) &&
		    !jv_object_has(jv_copy(ev), jv_string("receivedAt")) &&
		    memchr(body + from, '\n', to - from) == NULL &&
		    memchr(body + from, '\r', to - from) == NULL)
			goto text;
		ev = jv_object_set(ev, jv_string("eventId"), jv_copy(eid));
		goto rebuild;
	}
	if (jv_object_has(jv_copy(ev), jv_string("studentId")) ||
	    jv_object_has(jv_copy(ev), jv_string("receivedAt")) ||
	    memchr(body + from, '\n', to - from) != NULL ||
	    memchr(body + from, '\r', to - from) != NULL)
		goto rebuild;
	jv_free(eid);
	eid = jv_invalid();
text:
	add_str(t, body + from, to - 1 - from);	/* up to the closing brace */
	first = jv_object_length(jv_copy(ev)) == 0;
	if (jv_is_valid(eid))
		add_field(t, &first, "eventId", jv_copy(eid));
	goto stamp;
rebuild:
	{
		jv txt = jv_dump_string(jv_object_delete(jv_object_delete(
		    jv_copy(ev), jv_string("studentId")), jv_string("receivedAt")), 0);
		size_t n = (size_t)jv_string_length_bytes(jv_copy(txt));

		add_str(t, jv_string_value(txt), n - 1);
		first = n <= 2;
		jv_free(txt);
	}
stamp:
	if (!jv_object_has(jv_copy(ev), jv_string("classId")))
		add_field(t, &first, "classId", jv_string(ctx->token_class ?
		    ctx->token_class : ctx->default_class));
	add_field(t, &first, "studentId", student_of(jv_copy(ev)));
	add_field(t, &first, "receivedAt", jv_string(received));
	add_str(t, "}", 1);
	/* the id answered to the client */
	if (!jv_is_valid(eid))
		eid = jv_object_get(jv_copy(ev), jv_string("eventId"));
	t->items[t->n].off = start;
	t->items[t->n].len = t->len - start;
	t->items[t->n].id = strdup(jv_string_value(eid));
	t->n++;
	jv_free(eid);
	jv_free(ev);
}

int events_fast_path = 1;

/*
 * The fast path. A body a JupyterLab client sends (an array of flat objects
 * with plain strings) is checked by one scan of its bytes, with no parse
 * into jq's values: jq's parser was most of ingest's time. Anything else a
 * scan cannot decide as jq would (escapes in a string that matters, \u,
 * numbers as student ids, duplicate known fields, lines inside an event, any
 * error at all) is handed to the full path below, which gives the exact
 * answer and error.
 */
struct scan {
	const char *s;
	size_t len, i;
	int newline;		/* a line break between tokens */
};

static void
scan_ws(struct scan *c)
{
	while (c->i < c->len) {
		char ch = c->s[c->i];

		if (ch == '\n' || ch == '\r')
			c->newline = 1;
		else if (ch != ' ' && ch != '\t')
			return;
		c->i++;
	}
}

/* A string at c->i; its decoded length in *dlen, whether it holds escapes
 * in *esc. 0, or -1 when the fast path cannot take it. */
static int
scan_string(struct scan *c, size_t *dlen, int *esc)
{
	size_t n = 0;
	unsigned char ch;

	*esc = 0;
	if (c->s[c->i] != '"')
		return -1;
	for (c->i++; c->i < c->len; c->i++) {
		ch = (unsigned char)c->s[c->i];
		if (ch == '"') {
			c->i++;
			*dlen = n;
			return 0;
		}
		if (ch < 0x20 || ch == 0x7f)
			return -1;
		if (ch == '\\') {
			c->i++;
			if (c->i >= c->len || !strchr("\"\\/bfnrt", c->s[c->i]))
				return -1;	/* \u, or not JSON */
			*esc = 1;
		}
		n++;
	}
	return -1;
}

static int
scan_number(struct scan *c)
{
	const char *s = c->s;
	size_t i = c->i;

	if (i < c->len && s[i] == '-')
		i++;
	if (i >= c->len || !isdigit((unsigned char)s[i]))
		return -1;
	if (s[i] == '0')
		i++;
	else
		while (i < c->len && isdigit((unsigned char)s[i]))
			i++;
	if (i < c->len && s[i] == '.') {
		if (++i >= c->len || !isdigit((unsigned char)s[i]))
			return -1;
		while (i < c->len && isdigit((unsigned char)s[i]))
			i++;
	}
	if (i < c->len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < c->len && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= c->len || !isdigit((unsigned char)s[i]))
			return -1;
		while (i < c->len && isdigit((unsigned char)s[i]))
			i++;
	}
	c->i = i;
	return 0;
}

/* After a member or element: 1 on a comma (more follow), 0 on close, -1
 * on anything else. */
static int
scan_next(struct scan *c, char close)
{
	scan_ws(c);
	if (c->i >= c->len)
		return -1;
	if (c->s[c->i] == ',') {
		c->i++;
		scan_ws(c);
		return 1;
	}
	return c->s[c->i++] == close ? 0 : -1;
}

static int
scan_value(struct scan *c, int depth)
{
	size_t dlen;
	int esc;
	char open;

	if (c->i >= c->len || depth > 32)
		return -1;
	switch (c->s[c->i]) {
	case '"':
		return scan_string(c, &dlen, &esc);
	case 't':
		if (c->len - c->i < 4 || memcmp(c->s + c->i, "true", 4))
			return -1;
		c->i += 4;
		return 0;
	case 'f':
		if (c->len - c->i < 5 || memcmp(c->s + c->i, "false", 5))
			return -1;
		c->i += 5;
		return 0;
	case 'n':
		if (c->len - c->i < 4 || memcmp(c->s + c->i, "null", 4))
			return -1;
		c->i += 4;
		return 0;
	case '{':
	case '[':
		open = c->s[c->i++];
		scan_ws(c);
		if (c->i < c->len && c->s[c->i] == (open == '{' ? '}' : ']')) {
			c->i++;
			return 0;
		}
		for (;;) {
			if (open == '{') {
				if (c->i >= c->len || scan_string(c, &dlen, &esc) < 0)
					return -1;
				scan_ws(c);
				if (c->i >= c->len || c->s[c->i++] != ':')
					return -1;
				scan_ws(c);
			}
			if (scan_value(c, depth + 1) < 0)
				return -1;
			switch (scan_next(c, open == '{' ? '}' : ']')) {
			case 1:
				continue;
			case 0:
				return 0;
			default:
				return -1;
			}
		}
	default:
		return scan_number(c);
	}
}

/* What the fast path keeps of one event. */
struct fast_event {
	size_t from, to;
	const char *id, *student;	/* contents of plain strings */
	size_t idlen, studentlen;
	int has_class;
};

static int
fast_event(struct scan *c, const struct events_limits *lim,
    struct fast_event *fe)
{
	unsigned seen = 0;
	const struct field_rule *rule;
	char key[64], num[64];
	size_t kstart, klen, vstart, dlen;
	int esc, kesc, more;
	unsigned kind;

	memset(fe, 0, sizeof *fe);
	if (c->i >= c->len || c->s[c->i] != '{')
		return -1;
	fe->from = c->i++;
	c->newline = 0;
	scan_ws(c);
	if (c->i < c->len && c->s[c->i] == '}')
		return -1;
	for (;;) {
		kstart = c->i + 1;
		if (scan_string(c, &dlen, &kesc) < 0 || kesc)
			return -1;
		klen = c->i - 1 - kstart;
		scan_ws(c);
		if (c->i >= c->len || c->s[c->i++] != ':')
			return -1;
		scan_ws(c);
		vstart = c->i;
		if (c->i >= c->len)
			return -1;
		esc = 0;
		dlen = 0;
		if (c->s[c->i] == '"') {
			if (scan_string(c, &dlen, &esc) < 0)
				return -1;
			kind = T_STRING;
			if ((long)dlen > lim->max_field)
				return -1;
		} else {
			if (scan_value(c, 1) < 0)
				return -1;
			switch (c->s[vstart]) {
			case 't': case 'f': kind = T_BOOL; break;
			case 'n': kind = T_NULL; break;
			case '{': kind = T_OBJECT; break;
			case '[': kind = 0; break;	/* an array */
			default: kind = T_NUMBER; break;
			}
		}
		rule = NULL;
		if (klen < sizeof key) {
			memcpy(key, c->s + kstart, klen);
			key[klen] = '\0';
			if (strcmp(key, "studentId") == 0 ||
			    strcmp(key, "receivedAt") == 0)
				return -1;	/* the server's: the full path */
			rule = bsearch(key, rules, NRULES, sizeof rules[0],
			    rule_cmp);
		}
		if (rule != NULL) {
			unsigned bit = 1u << (rule - rules);

			if (seen & bit)
				return -1;
			seen |= bit;
			if (!(rule->types & T_ANY)) {
				if (kind == T_NUMBER && !(rule->types & T_NUMBER)) {
					if (!(rule->types & T_INTEGER) ||
					    c->i - vstart >= sizeof num)
						return -1;
					memcpy(num, c->s + vstart, c->i - vstart);
					num[c->i - vstart] = '\0';
					if (!is_integer(strtod(num, NULL)))
						return -1;
				} else if (kind != T_NUMBER &&
				    !(rule->types & kind)) {
					return -1;
				}
			}
			if (kind == T_STRING) {
				const char *v = c->s + vstart + 1;

				if (rule->types == T_STRING && dlen == 0 &&
				    strcmp(rule->expect, "a non-empty string") == 0)
					return -1;
				if (rule - rules == RULE_EVENTTIME) {
					char t[48];

					if (esc || dlen >= sizeof t)
						return -1;
					memcpy(t, v, dlen);
					t[dlen] = '\0';
					if (!events_valid_time(t))
						return -1;
				}
				if (rule - rules == RULE_EVENTID) {
					if (esc)
						return -1;
					fe->id = v;
					fe->idlen = dlen;
				}
				if (rule - rules == RULE_EMAIL && dlen > 0) {
					if (esc)
						return -1;
					fe->student = v;
					fe->studentlen = dlen;
				}
				if (rule - rules == RULE_USERID && dlen > 0 &&
				    fe->student == NULL) {
					if (esc)
						return -1;
					fe->student = v;
					fe->studentlen = dlen;
				}
			} else if (rule - rules == RULE_USERID && kind == T_NUMBER) {
				return -1;	/* a number as id: the full path */
			}
			if (rule - rules == RULE_CLASSID)
				fe->has_class = 1;
		}
		if ((more = scan_next(c, '}')) < 0)
			return -1;
		if (!more)
			break;
	}
	fe->to = c->i;
	if (c->newline || !(seen & (1u << RULE_EVENTTYPE)) || fe->student == NULL)
		return -1;
	/* emailAddress wins over userId, as in student_of() */
	return 0;
}

static int
fast_prepare(const char *body, size_t len, const struct events_limits *lim,
    const struct events_ctx *ctx, struct events_text *out)
{
	struct scan c = { body, len, 0, 0 };
	struct fast_event *fe = NULL;
	size_t n = 0, cap = 0, i, start;
	char received[32], id[37];
	int array, more;
	jv cls;

	scan_ws(&c);
	if (c.i >= len)
		return 0;
	array = body[c.i] == '[';
	if (array) {
		c.i++;
		scan_ws(&c);
	}
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			fe = realloc(fe, cap * sizeof *fe);
		}
		if (fast_event(&c, lim, &fe[n]) < 0)
			goto no;
		n++;
		c.newline = 0;
		if (!array)
			break;
		more = scan_next(&c, ']');
		if (more < 0)
			goto no;
		if (!more)
			break;
	}
	scan_ws(&c);
	if (c.i != len || (long)n > lim->max_batch)
		goto no;
	events_format_time(ctx->received_us, received);
	cls = jv_dump_string(jv_string(ctx->token_class ? ctx->token_class
	    : ctx->default_class), 0);
	memset(out, 0, sizeof *out);
	out->items = calloc(n, sizeof *out->items);
	for (i = 0; i < n; i++) {
		start = out->len;
		add_str(out, body + fe[i].from, fe[i].to - 1 - fe[i].from);
		if (fe[i].id == NULL) {
			events_new_id(id);
			add_str(out, ",\"eventId\":\"", 12);
			add_str(out, id, 36);
			add_str(out, "\"", 1);
		}
		if (!fe[i].has_class) {
			add_str(out, ",\"classId\":", 11);
			add_str(out, jv_string_value(cls),
			    (size_t)jv_string_length_bytes(jv_copy(cls)));
		}
		add_str(out, ",\"studentId\":\"", 14);
		add_str(out, fe[i].student, fe[i].studentlen);
		add_str(out, "\",\"receivedAt\":\"", 16);
		add_str(out, received, strlen(received));
		add_str(out, "\"}", 2);
		out->items[i].off = start;
		out->items[i].len = out->len - start;
		out->items[i].id = fe[i].id ? strndup(fe[i].id, fe[i].idlen)
		    : strdup(id);
		out->n++;
	}
	jv_free(cls);
	free(fe);
	return 1;
no:
	free(fe);
	return 0;
}

int
events_prepare_text(const char *body, size_t len,
    const struct events_limits *lim, const struct events_ctx *ctx,
    struct events_text *out, struct events_error *e)
{
	jv doc, ev;
	char received[32];
	size_t *from = NULL, *to = NULL;
	long bad;
	int i, n;

	memset(out, 0, sizeof *out);
	for (i = 0; (size_t)i < len && i < INT32_MAX; i++)
		if (!isspace((unsigned char)body[i]))
			break;
	if ((size_t)i == len) {
		fail(e, 400, -1, NULL, "empty body: expected a JSON array of events "
		    "or one event object");
		e->offset = (long)len;
		return -1;
	}
	if (events_fast_path &&
	    utf8_invalid_at((const unsigned char *)body, len) < 0 &&
	    fast_prepare(body, len, lim, ctx, out))
		return 0;
	doc = jv_parse_sized(body, (int)len);
	if (!jv_is_valid(doc)) {
		jv msg = jv_invalid_get_msg(doc);
		long off = json_error_offset(body, len);
		const char *m = jv_get_kind(msg) == JV_KIND_STRING ?
		    jv_string_value(msg) : "parse error";
		/* jq quotes the whole body after the reason: keep the reason */
		const char *cut = strstr(m, " (while parsing");

		fail(e, 400, -1, NULL, "malformed JSON at byte %ld: %.*s", off,
		    cut ? (int)(cut - m) : (int)strlen(m), m);
		e->offset = off;
		jv_free(msg);
		return -1;
	}
	/* jq takes bytes that are not UTF-8 as U+FFFD; the events are queued as
	 * sent, so such a body is refused instead */
	if ((bad = utf8_invalid_at((const unsigned char *)body, len)) >= 0) {
		jv_free(doc);
		fail(e, 400, -1, NULL, "malformed JSON at byte %ld: not UTF-8", bad);
		e->offset = bad;
		return -1;
	}
	if (jv_get_kind(doc) == JV_KIND_OBJECT)
		doc = jv_array_append(jv_array(), doc);
	if (jv_get_kind(doc) != JV_KIND_ARRAY) {
		jv_free(doc);
		return fail(e, 400, -1, NULL, "expected a JSON array of events or "
		    "one event object");
	}
	n = jv_array_length(jv_copy(doc));
	if (n == 0) {
		jv_free(doc);
		return fail(e, 400, -1, NULL, "empty batch: no events");
	}
	if (n > lim->max_batch) {
		jv_free(doc);
		return fail(e, 413, -1, NULL, "batch of %d events is larger than "
		    "the limit of %ld", n, lim->max_batch);
	}
	for (i = 0; i < n; i++) {
		ev = jv_array_get(jv_copy(doc), i);
		if (check_event(ev, i, lim, e) < 0) {
			jv_free(ev);
			jv_free(doc);
			return -1;
		}
		jv_free(ev);
	}
	events_format_time(ctx->received_us, received);
	from = malloc(n * sizeof *from);
	to = malloc(n * sizeof *to);
	out->items = calloc(n, sizeof *out->items);
	event_spans(body, len, (size_t)n, from, to);
	for (i = 0; i < n; i++)
		emit_event(out, body, from[i], to[i], jv_array_get(jv_copy(doc), i),
		    ctx, received);
	free(from);
	free(to);
	jv_free(doc);
	return 0;
}

void
events_text_free(struct events_text *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		free(t->items[i].id);
	free(t->items);
	free(t->buf);
	memset(t, 0, sizeof *t);
}

int
events_prepare(const char *body, size_t len, const struct events_limits *lim,
    const struct events_ctx *ctx, jv *out, struct events_error *e)
{
	struct events_text t;
	size_t i;

	*out = jv_invalid();
	if (events_prepare_text(body, len, lim, ctx, &t, e) < 0)
		return -1;
	*out = jv_array();
	for (i = 0; i < t.n; i++)
		*out = jv_array_append(*out, jv_parse_sized(t.buf + t.items[i].off,
		    (int)t.items[i].len));
	events_text_free(&t);
	return 0;
}

jv
events_error_json(const struct events_error *e)
{
	jv o = jv_object_set(jv_object(), jv_string("error"), jv_string(e->msg));

	if (e->field[0])
		o = jv_object_set(o, jv_string("field"), jv_string(e->field));
	if (e->index >= 0)
		o = jv_object_set(o, jv_string("index"), jv_number(e->index));
	if (e->offset >= 0)
		o = jv_object_set(o, jv_string("offset"), jv_number(e->offset));
	return o;
}
