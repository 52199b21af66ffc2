/* events.c: what ingest checks before an event may enter the stream. Unknown
 * fields are kept; known ones must have the type clients send. The body is
 * scanned once by json.c; the events are queued as the client wrote them. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nettle/sha2.h>

#include "events.h"
#include "json.h"

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

static int
is_integer(double d)
{
	/* in range first: casting a larger double is undefined */
	return d > -9007199254740992.0 && d < 9007199254740992.0 &&
	    d == (double)(long long)d;
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

static int
rule_cmp(const void *key, const void *r)
{
	return strcmp(key, ((const struct field_rule *)r)->name);
}

#define NRULES (sizeof rules / sizeof rules[0])

/*
 * One known field's value, read either from the scan (the fast path) or
 * from jq's parse of the event (the full path). Both paths fill these and
 * one function judges them, so that they cannot judge differently.
 */
struct fval {
	int present;
	unsigned kind;		/* T_STRING, T_NUMBER, T_BOOL, T_NULL, T_OBJECT;
				 * 0 for an array */
	int integer;		/* a number: an integral one */
	double num;		/* a number, for userId */
	const char *p;		/* a string read by value: decoded, not
				 * NUL-terminated */
	size_t len;		/* a string: its decoded length */
};

/* The fields whose string contents (not only their length) matter. */
static int
read_by_value(size_t r)
{
	return r == RULE_CLASSID || r == RULE_EMAIL || r == RULE_EVENTID ||
	    r == RULE_EVENTTIME || r == RULE_USERID;
}

static int
type_ok(const struct fval *v, unsigned types)
{
	switch (v->kind) {
	case T_STRING:
		return types & (T_STRING | T_ANY);
	case T_NUMBER:
		if (types & (T_NUMBER | T_ANY))
			return 1;
		return (types & T_INTEGER) && v->integer;
	case T_BOOL:
		return types & (T_BOOL | T_ANY);
	case T_NULL:
		return types & (T_NULL | T_ANY);
	case T_OBJECT:
		return types & (T_OBJECT | T_ANY);
	default:
		return types & T_ANY;
	}
}

static int
valid_time_n(const char *p, size_t len)
{
	char t[48];

	if (len >= sizeof t)
		return 0;
	memcpy(t, p, len);
	t[len] = '\0';
	return events_valid_time(t);
}

static int
has_student(const struct fval *v)
{
	return (v[RULE_EMAIL].kind == T_STRING && v[RULE_EMAIL].len > 0) ||
	    (v[RULE_USERID].kind == T_STRING && v[RULE_USERID].len > 0) ||
	    v[RULE_USERID].kind == T_NUMBER;
}

/* The rules in their order, so that the first error named does not depend
 * on the order of the fields; then the class the token allows. too_long is
 * the first other string field longer than the limit, or "". */
static int
check_fields(const struct fval *v, const char *too_long, long idx,
    const struct events_limits *lim, const struct events_ctx *ctx,
    struct events_error *e)
{
	const char *tc = ctx->token_class;
	size_t i;
	int ok;

	for (i = 0; i < NRULES; i++) {
		if (!v[i].present)
			continue;
		ok = type_ok(&v[i], rules[i].types);
		if (ok && v[i].kind == T_STRING) {
			if ((long)v[i].len > lim->max_field)
				return fail(e, 413, idx, rules[i].name,
				    "field %s at index %ld is longer than %ld bytes",
				    rules[i].name, idx, lim->max_field);
			/* "a non-empty string" */
			if (i == RULE_CLASSID || i == RULE_EVENTID ||
			    i == RULE_EVENTTYPE)
				ok = v[i].len > 0;
			else if (i == RULE_EVENTTIME)
				ok = valid_time_n(v[i].p, v[i].len);
		}
		if (!ok)
			return fail(e, 400, idx, rules[i].name,
			    "field %s at index %ld must be %s", rules[i].name,
			    idx, rules[i].expect);
	}
	/* the size limit holds for every string field, known or not */
	if (too_long[0])
		return fail(e, 413, idx, too_long,
		    "field %s at index %ld is longer than %ld bytes", too_long,
		    idx, lim->max_field);
	if (!v[RULE_EVENTTYPE].present)
		return fail(e, 400, idx, "eventType",
		    "missing required field eventType at index %ld", idx);
	if (!has_student(v))
		return fail(e, 400, idx, "emailAddress",
		    "missing required field emailAddress (or userId) at index %ld",
		    idx);
	/* a token bound to a class is authoritative: no writing elsewhere */
	if (tc != NULL && strcmp(tc, "*") != 0 && v[RULE_CLASSID].present &&
	    (v[RULE_CLASSID].len != strlen(tc) ||
	    memcmp(v[RULE_CLASSID].p, tc, v[RULE_CLASSID].len) != 0))
		return fail(e, 403, idx, "classId",
		    "field classId at index %ld is not the class of the token",
		    idx);
	return 0;
}

void
events_derive_id(const char *bytes, size_t len, char buf[37])
{
	struct sha256_ctx h;
	uint8_t d[SHA256_DIGEST_SIZE];

	sha256_init(&h);
	sha256_update(&h, len, (const uint8_t *)bytes);
	sha256_digest(&h, sizeof d, d);
	d[6] = (uint8_t)((d[6] & 0x0f) | 0x80);		/* version 8 */
	d[8] = (uint8_t)((d[8] & 0x3f) | 0x80);		/* variant 10 */
	snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x", d[0], d[1], d[2], d[3], d[4], d[5],
	    d[6], d[7], d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15]);
}

/* One request's working state. */
struct prep {
	const char *body;
	size_t len;
	const struct json_doc *d;
	const struct events_limits *lim;
	const struct events_ctx *ctx;
	char *scratch;		/* decoded strings: len bytes hold them all */
	size_t used;
	char received[32];
	int oom;
};

static void
add_str(struct prep *p, struct events_text *t, const char *s, size_t n)
{
	size_t ncap;
	char *nb;

	if (p->oom)
		return;
	if (t->len + n > t->cap) {
		ncap = (t->len + n) * 2 + 256;
		if ((nb = realloc(t->buf, ncap)) == NULL) {
			p->oom = 1;
			return;
		}
		t->buf = nb;
		t->cap = ncap;
	}
	memcpy(t->buf + t->len, s, n);
	t->len += n;
}

/* s as a JSON string, after a comma unless first. */
static void
add_field(struct prep *p, struct events_text *t, int *first,
    const char *name, const char *s, size_t n)
{
	char small[256], *enc;
	size_t elen = json_encoded_len(s, n);

	if (!*first)
		add_str(p, t, ",", 1);
	*first = 0;
	add_str(p, t, "\"", 1);
	add_str(p, t, name, strlen(name));
	add_str(p, t, "\":", 2);
	enc = elen <= sizeof small ? small : malloc(elen);
	if (enc == NULL) {
		p->oom = 1;
		return;
	}
	add_str(p, t, enc, json_encode(s, n, enc));
	if (enc != small)
		free(enc);
}

/* Whether member m's key, decoded, is name. */
static int
key_is(const char *body, const struct json_member *m, const char *name)
{
	char k[128];
	size_t n = strlen(name);

	if (!m->kesc)
		return m->keylen == n && memcmp(body + m->key, name, n) == 0;
	if (m->keylen >= sizeof k)
		return 0;	/* decodes to more than 21 bytes */
	return json_decode(body + m->key, m->keylen, k) == n &&
	    memcmp(k, name, n) == 0;
}

/* The fields the server sets: what a client sends there is cut out. */
static int
server_field(const char *body, const struct json_member *m)
{
	return key_is(body, m, "studentId") || key_is(body, m, "receivedAt");
}

/*
 * Append event ev to t as it is queued: the client's bytes, less any member
 * the server sets, with raw CR and LF (whitespace, in valid JSON) turned
 * into spaces for NDJSON; then the server's fields. The client's numbers
 * and strings keep their bytes: nothing is re-encoded.
 */
static void
emit(struct prep *p, struct events_text *t, const struct json_event *ev,
    const struct fval *v, const char *student, size_t studentlen)
{
	const struct json_member *m = ev->n ?
	    p->d->members + ev->first : NULL;
	const char *cls;
	char id[37];
	size_t k, start = t->len, cut = 0;
	int first = 1;

	for (k = 0; k < ev->n; k++)
		cut += server_field(p->body, &m[k]);
	if (cut == 0) {
		add_str(p, t, p->body + ev->from, ev->to - 1 - ev->from);
		first = ev->n == 0;
	} else {
		add_str(p, t, "{", 1);
		for (k = 0; k < ev->n; k++) {
			if (server_field(p->body, &m[k]))
				continue;
			if (!first)
				add_str(p, t, ",", 1);
			first = 0;
			add_str(p, t, p->body + m[k].key - 1,
			    m[k].val + m[k].vallen - (m[k].key - 1));
		}
	}
	if (ev->crlf && !p->oom)
		for (k = start; k < t->len; k++)
			if (t->buf[k] == '\n' || t->buf[k] == '\r')
				t->buf[k] = ' ';
	if (!v[RULE_EVENTID].present) {
		events_derive_id(p->body + ev->from, ev->to - ev->from, id);
		add_field(p, t, &first, "eventId", id, 36);
	}
	cls = p->ctx->token_class && strcmp(p->ctx->token_class, "*") != 0 ?
	    p->ctx->token_class : p->ctx->default_class;
	if (!v[RULE_CLASSID].present && cls != NULL)
		add_field(p, t, &first, "classId", cls, strlen(cls));
	add_field(p, t, &first, "studentId", student, studentlen);
	add_field(p, t, &first, "receivedAt", p->received,
	    strlen(p->received));
	add_str(p, t, "}", 1);
	if (p->oom)
		return;
	t->items[t->n].off = start;
	t->items[t->n].len = t->len - start;
	t->items[t->n].id = v[RULE_EVENTID].present ?
	    strndup(v[RULE_EVENTID].p, v[RULE_EVENTID].len) : strdup(id);
	if (t->items[t->n].id == NULL)
		p->oom = 1;
	else
		t->n++;
}

static unsigned
kind_bit(unsigned char kind)
{
	switch (kind) {
	case JSON_STRING: return T_STRING;
	case JSON_NUMBER: return T_NUMBER;
	case JSON_TRUE: case JSON_FALSE: return T_BOOL;
	case JSON_NULL: return T_NULL;
	case JSON_OBJECT: return T_OBJECT;
	default: return 0;
	}
}

/*
 * The fast path: the known fields of event ev from the scan alone, with no
 * parse into jq's values (jq's parser was most of ingest's time). Returns
 * 1 with v filled, or 0 for what only the full path reads as jq does: a
 * known field given twice (jq keeps the last), an over-long other field
 * (jq names the first in its own order), a number too long to copy.
 */
static int
fast_fields(struct prep *p, const struct json_event *ev, struct fval *v)
{
	const struct json_member *m = ev->n ?
	    p->d->members + ev->first : NULL;
	const struct field_rule *rule;
	char key[64], num[64];
	size_t k, r;

	for (k = 0; k < ev->n; k++, m++) {
		rule = NULL;
		if (!m->kesc && m->keylen < sizeof key) {
			memcpy(key, p->body + m->key, m->keylen);
			key[m->keylen] = '\0';
			rule = bsearch(key, rules, NRULES, sizeof rules[0],
			    rule_cmp);
		} else if (m->kesc && m->keylen < 128) {
			char dk[128];
			size_t n = json_decode(p->body + m->key, m->keylen, dk);

			if (n < sizeof key) {
				memcpy(key, dk, n);
				key[n] = '\0';
				rule = bsearch(key, rules, NRULES,
				    sizeof rules[0], rule_cmp);
			}
		}
		if (rule == NULL) {
			if (m->kind == JSON_STRING &&
			    (long)m->declen > p->lim->max_field)
				return 0;
			continue;
		}
		r = (size_t)(rule - rules);
		if (v[r].present)
			return 0;
		v[r].present = 1;
		v[r].kind = kind_bit(m->kind);
		if (m->kind == JSON_STRING) {
			v[r].len = m->declen;
			if (!read_by_value(r))
				continue;
			if (!m->vesc) {
				v[r].p = p->body + m->val + 1;
				continue;
			}
			if (p->scratch == NULL &&
			    (p->scratch = malloc(p->len)) == NULL) {
				p->oom = 1;
				return 0;
			}
			v[r].p = p->scratch + p->used;
			p->used += json_decode(p->body + m->val + 1,
			    m->vallen - 2, p->scratch + p->used);
		} else if (m->kind == JSON_NUMBER && (r == RULE_USERID ||
		    (rule->types & T_INTEGER))) {
			if (m->vallen >= sizeof num)
				return 0;
			memcpy(num, p->body + m->val, m->vallen);
			num[m->vallen] = '\0';
			v[r].num = strtod(num, NULL);
			v[r].integer = is_integer(v[r].num);
		}
	}
	return 1;
}

/* The full path: the known fields of the event as jq parses it. keep[]
 * holds the values v points into, for the caller to free. */
static int
full_fields(jv ev, const struct events_limits *lim, struct fval *v,
    jv *keep, char *too_long, size_t tlsize)
{
	const struct field_rule *rule;
	size_t r;

	jv_object_foreach(ev, key, val) {
		rule = bsearch(jv_string_value(key), rules, NRULES,
		    sizeof rules[0], rule_cmp);
		if (rule == NULL) {
			if (too_long[0] == '\0' &&
			    jv_get_kind(val) == JV_KIND_STRING &&
			    jv_string_length_bytes(jv_copy(val)) > lim->max_field)
				snprintf(too_long, tlsize, "%s",
				    jv_string_value(key));
			jv_free(val);
			jv_free(key);
			continue;
		}
		r = (size_t)(rule - rules);
		v[r].present = 1;
		switch (jv_get_kind(val)) {
		case JV_KIND_STRING:
			v[r].kind = T_STRING;
			v[r].p = jv_string_value(val);
			v[r].len = (size_t)jv_string_length_bytes(jv_copy(val));
			break;
		case JV_KIND_NUMBER:
			v[r].kind = T_NUMBER;
			v[r].num = jv_number_value(val);
			v[r].integer = is_integer(v[r].num);
			break;
		case JV_KIND_TRUE:
		case JV_KIND_FALSE:
			v[r].kind = T_BOOL;
			break;
		case JV_KIND_NULL:
			v[r].kind = T_NULL;
			break;
		case JV_KIND_OBJECT:
			v[r].kind = T_OBJECT;
			break;
		default:
			v[r].kind = 0;
			break;
		}
		jv_free(keep[r]);
		keep[r] = val;
		jv_free(key);
	}
	return 0;
}

int events_fast_path = 1;

/* Check event i and append it to out. */
static int
one_event(struct prep *p, size_t i, struct events_text *out,
    struct events_error *e)
{
	const struct json_event *ev = &p->d->events[i];
	struct fval v[NRULES];
	jv keep[NRULES], parsed = jv_invalid();
	char too_long[64] = "", numtxt[64];
	const char *student;
	size_t k, studentlen;
	int rc = -1;

	memset(v, 0, sizeof v);
	for (k = 0; k < NRULES; k++)
		keep[k] = jv_invalid();
	if (events_fast_path && ev->kind != JSON_OBJECT) {
		fail(e, 400, (long)i, NULL,
		    "event at index %zu is not a JSON object", i);
		goto out;
	}
	if (!events_fast_path || !fast_fields(p, ev, v)) {
		if (p->oom)
			goto out;
		memset(v, 0, sizeof v);
		parsed = jv_parse_sized(p->body + ev->from,
		    (int)(ev->to - ev->from));
		if (!jv_is_valid(parsed)) {
			/* the scanner's contract with jq broken: refuse */
			fail(e, 400, -1, NULL, "malformed JSON at byte %zu: "
			    "not read the same by every parser", ev->from);
			e->offset = (long)ev->from;
			goto out;
		}
		if (jv_get_kind(parsed) != JV_KIND_OBJECT) {
			fail(e, 400, (long)i, NULL,
			    "event at index %zu is not a JSON object", i);
			goto out;
		}
		full_fields(parsed, p->lim, v, keep, too_long, sizeof too_long);
	}
	if (check_fields(v, too_long, (long)i, p->lim, p->ctx, e) < 0)
		goto out;
	/* the student: emailAddress, else userId (a number as jq writes it) */
	if (v[RULE_EMAIL].kind == T_STRING && v[RULE_EMAIL].len > 0) {
		student = v[RULE_EMAIL].p;
		studentlen = v[RULE_EMAIL].len;
	} else if (v[RULE_USERID].kind == T_STRING) {
		student = v[RULE_USERID].p;
		studentlen = v[RULE_USERID].len;
	} else {
		jv txt = jv_dump_string(jv_number(v[RULE_USERID].num), 0);

		snprintf(numtxt, sizeof numtxt, "%s", jv_string_value(txt));
		jv_free(txt);
		student = numtxt;
		studentlen = strlen(numtxt);
	}
	emit(p, out, ev, v, student, studentlen);
	rc = 0;
out:
	for (k = 0; k < NRULES; k++)
		jv_free(keep[k]);
	jv_free(parsed);
	return rc;
}

static int
is_ws(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

int
events_prepare_text(const char *body, size_t len,
    const struct events_limits *lim, const struct events_ctx *ctx,
    struct events_text *out, struct events_error *e)
{
	struct json_doc d;
	struct prep p;
	size_t i;
	int rc = -1;

	memset(out, 0, sizeof *out);
	memset(&d, 0, sizeof d);
	for (i = 0; i < len && is_ws(body[i]); i++)
		;
	if (i == len) {
		fail(e, 400, -1, NULL, "empty body: expected a JSON array of "
		    "events or one event object");
		e->offset = (long)len;
		return -1;
	}
	/* what a refused batch would make is not kept */
	d.limit = lim->max_batch > 0 ? (size_t)lim->max_batch : 1;
	if (json_scan(&d, body, len) < 0) {
		if (d.nomem) {
			fail(e, 503, -1, NULL, "out of memory");
		} else {
			fail(e, 400, -1, NULL, "malformed JSON at byte %ld: %s",
			    d.offset, d.err);
			e->offset = d.offset;
		}
		goto out;
	}
	if (d.top != JSON_ARRAY && d.top != JSON_OBJECT) {
		fail(e, 400, -1, NULL, "expected a JSON array of events or "
		    "one event object");
		goto out;
	}
	if (d.nevents == 0) {
		fail(e, 400, -1, NULL, "empty batch: no events");
		goto out;
	}
	if ((long)d.nevents > lim->max_batch) {
		fail(e, 413, -1, NULL, "batch of %zu events is larger than "
		    "the limit of %ld", d.nevents, lim->max_batch);
		goto out;
	}
	memset(&p, 0, sizeof p);
	p.body = body;
	p.len = len;
	p.d = &d;
	p.lim = lim;
	p.ctx = ctx;
	events_format_time(ctx->received_us, p.received);
	out->cap = len + d.nevents * 160;
	out->buf = malloc(out->cap);
	out->items = calloc(d.nevents, sizeof *out->items);
	if (out->buf == NULL || out->items == NULL)
		p.oom = 1;
	for (i = 0; i < d.nevents && !p.oom; i++)
		if (one_event(&p, i, out, e) < 0)
			break;
	free(p.scratch);
	if (p.oom)
		fail(e, 503, -1, NULL, "out of memory");
	else if (i == d.nevents)
		rc = 0;
out:
	json_doc_free(&d);
	if (rc < 0)
		events_text_free(out);
	return rc;
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
