/* json.c: the strict scanner of json.h. What it accepts, jq parses and
 * PostgreSQL's jsonb stores; what it refuses it refuses at the first byte
 * that cannot belong to such a text, so an error costs one pass too. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "utf8.h"

/* PostgreSQL 15's numeric, as jsonb uses it (numeric.c): an exponent within
 * INT_MAX / 2, at most 16383 digits after the point, and a first digit at
 * most 131071 places before it. */
#define PG_EXP_LIMIT	1073741823L
#define PG_DSCALE_MAX	16383L
#define PG_WEIGHT_MAX	131071L

struct scanner {
	const char *s;
	size_t len, i;
	struct json_doc *d;	/* NULL: validate only */
	int crlf;
};

static int
fail_at(struct scanner *c, size_t at, int where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Record why and where; where adds jq's "at line L, column C". */
static int
fail_at(struct scanner *c, size_t at, int where, const char *fmt, ...)
{
	struct json_doc *d = c->d;
	size_t k, line = 1, bol = 0;
	va_list ap;
	int n;

	if (d == NULL)
		return -1;
	d->offset = (long)at;
	va_start(ap, fmt);
	n = vsnprintf(d->err, sizeof d->err, fmt, ap);
	va_end(ap);
	if (!where || n < 0 || (size_t)n >= sizeof d->err)
		return -1;
	for (k = 0; k < at && k < c->len; k++)
		if (c->s[k] == '\n') {
			line++;
			bol = k + 1;
		}
	snprintf(d->err + n, sizeof d->err - (size_t)n,
	    " at line %zu, column %zu", line, at - bol + 1);
	return -1;
}

static int
eof(struct scanner *c)
{
	return fail_at(c, c->len, 1, "unfinished JSON text at EOF");
}

/* Where a value was due and s[at] cannot start one. */
static int
not_a_value(struct scanner *c, size_t at)
{
	unsigned char ch;

	if (at >= c->len)
		return eof(c);
	ch = (unsigned char)c->s[at];
	if (ch == 0xef && c->len - at >= 3 && memcmp(c->s + at, "\xef\xbb\xbf",
	    3) == 0)
		return fail_at(c, at, 1,
		    "byte order mark (U+FEFF) is not allowed");
	if (strchr(",:]}", ch) && ch)
		return fail_at(c, at, 1, "Expected value before '%c'", ch);
	if (ch > 0x20 && ch < 0x7f)
		return fail_at(c, at, 1, "unexpected '%c'", ch);
	return fail_at(c, at, 1, "unexpected byte 0x%02x", ch);
}

static void
ws(struct scanner *c)
{
	while (c->i < c->len) {
		switch (c->s[c->i]) {
		case '\n':
		case '\r':
			c->crlf = 1;
			/* FALLTHROUGH */
		case ' ':
		case '\t':
			c->i++;
			break;
		default:
			return;
		}
	}
}

static int
hex4(const char *s, unsigned *v)
{
	int k;
	unsigned d;

	*v = 0;
	for (k = 0; k < 4; k++) {
		char h = s[k];

		if (h >= '0' && h <= '9')
			d = (unsigned)(h - '0');
		else if (h >= 'a' && h <= 'f')
			d = (unsigned)(h - 'a' + 10);
		else if (h >= 'A' && h <= 'F')
			d = (unsigned)(h - 'A' + 10);
		else
			return -1;
		*v = *v << 4 | d;
	}
	return 0;
}

/* A string at c->i (its opening quote). */
static int
scan_string(struct scanner *c, int *esc, size_t *declen)
{
	const unsigned char *s = (const unsigned char *)c->s;
	size_t n = 0, q;
	unsigned cp, lo;

	*esc = 0;
	for (c->i++; c->i < c->len;) {
		unsigned char ch = s[c->i];

		if (ch == '"') {
			c->i++;
			*declen = n;
			return 0;
		}
		if (ch < 0x20)
			return fail_at(c, c->i, 1,
			    "control character U+%04X in a string", ch);
		if (ch >= 0x80) {
			if ((q = utf8_seq(s, c->len, c->i)) == 0)
				return fail_at(c, c->i, 0, "not UTF-8");
			c->i += q;
			n += q;
			continue;
		}
		if (ch != '\\') {
			c->i++;
			n++;
			continue;
		}
		*esc = 1;
		if (c->i + 1 >= c->len)
			return eof(c);
		ch = s[c->i + 1];
		if (ch != 'u') {
			if (!strchr("\"\\/bfnrt", ch) || ch == '\0')
				return fail_at(c, c->i, 1, "invalid escape");
			c->i += 2;
			n++;
			continue;
		}
		if (c->len - c->i < 6 || hex4(c->s + c->i + 2, &cp) < 0)
			return fail_at(c, c->i, 1, "invalid \\u escape");
		if (cp == 0)
			return fail_at(c, c->i, 1,
			    "\\u0000 is not allowed in a string");
		if (cp >= 0xdc00 && cp <= 0xdfff)
			return fail_at(c, c->i, 1, "unpaired UTF-16 surrogate");
		if (cp >= 0xd800 && cp <= 0xdbff) {
			if (c->len - c->i < 12 || s[c->i + 6] != '\\' ||
			    s[c->i + 7] != 'u' ||
			    hex4(c->s + c->i + 8, &lo) < 0 ||
			    lo < 0xdc00 || lo > 0xdfff)
				return fail_at(c, c->i, 1,
				    "unpaired UTF-16 surrogate");
			c->i += 12;
			n += 4;
			continue;
		}
		c->i += 6;
		n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
	}
	return fail_at(c, c->len, 1, "unfinished string at EOF");
}

static int
digit(struct scanner *c)
{
	return c->i < c->len && c->s[c->i] >= '0' && c->s[c->i] <= '9';
}

static int
scan_number(struct scanner *c)
{
	size_t start = c->i, intd = 0, fracd = 0;
	long long weight = 0, exp = 0, dscale;
	int nonzero = 0, neg = 0;

	if (c->s[c->i] == '-')
		c->i++;
	if (!digit(c))
		return c->i >= c->len ? eof(c) :
		    fail_at(c, start, 1, "invalid number");
	if (c->s[c->i] == '0') {
		c->i++;
		intd = 1;
		if (digit(c))
			return fail_at(c, start, 1,
			    "number with a leading zero");
	} else {
		/* a first digit of 1 to 9: the weight is the digits' count */
		for (; digit(c); c->i++)
			intd++;
		nonzero = 1;
		weight = (long long)intd - 1;
	}
	if (c->i < c->len && c->s[c->i] == '.') {
		c->i++;
		if (!digit(c))
			return c->i >= c->len ? eof(c) :
			    fail_at(c, start, 1, "invalid number");
		for (; digit(c); c->i++) {
			fracd++;
			if (!nonzero && c->s[c->i] != '0') {
				nonzero = 1;
				weight = -(long long)fracd;
			}
		}
	}
	if (c->i < c->len && (c->s[c->i] == 'e' || c->s[c->i] == 'E')) {
		c->i++;
		if (c->i < c->len && (c->s[c->i] == '+' || c->s[c->i] == '-'))
			neg = c->s[c->i++] == '-';
		if (!digit(c))
			return c->i >= c->len ? eof(c) :
			    fail_at(c, start, 1, "invalid number");
		for (; digit(c); c->i++)
			if (exp <= PG_EXP_LIMIT)
				exp = exp * 10 + (c->s[c->i] - '0');
		if (neg)
			exp = -exp;
	}
	dscale = (long long)fracd - exp;
	if (exp >= PG_EXP_LIMIT || exp <= -PG_EXP_LIMIT ||
	    dscale > PG_DSCALE_MAX || (nonzero && weight + exp > PG_WEIGHT_MAX))
		return fail_at(c, start, 1,
		    "number out of the range PostgreSQL's numeric holds");
	return 0;
}

static int
literal(struct scanner *c, const char *word)
{
	size_t n = strlen(word);

	if (c->len - c->i < n || memcmp(c->s + c->i, word, n) != 0) {
		if (c->len - c->i < n && memcmp(c->s + c->i, word,
		    c->len - c->i) == 0)
			return eof(c);
		return fail_at(c, c->i, 1, "invalid literal");
	}
	c->i += n;
	return 0;
}

static int
grow(struct json_doc *d, void **p, size_t *cap, size_t need, size_t size)
{
	size_t ncap;
	void *np;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	while (ncap < need)
		ncap *= 2;
	if ((np = realloc(*p, ncap * size)) == NULL) {
		d->nomem = 1;
		snprintf(d->err, sizeof d->err, "out of memory");
		return -1;
	}
	*p = np;
	*cap = ncap;
	return 0;
}

static int scan_value(struct scanner *, int, struct json_event *);

/* At the opening of a container at depth closed by close: 1 past it when
 * empty, 0 at its first element, -1 with the error. */
static int
open_container(struct scanner *c, int depth, char close)
{
	if (depth > JSON_MAX_DEPTH)
		return fail_at(c, c->i, 1, "nesting deeper than %d levels",
		    JSON_MAX_DEPTH);
	c->i++;
	ws(c);
	if (c->i < c->len && c->s[c->i] == close) {
		c->i++;
		return 1;
	}
	return 0;
}

/* After an element of a container closed by close: 1 past the close,
 * 0 past a comma (at the next element), -1 with the error. */
static int
after_element(struct scanner *c, char close)
{
	ws(c);
	if (c->i >= c->len)
		return eof(c);
	if (c->s[c->i] == close) {
		c->i++;
		return 1;
	}
	if (c->s[c->i] != ',')
		return fail_at(c, c->i, 1, "expected ',' or '%c'", close);
	c->i++;
	ws(c);
	return 0;
}

/*
 * depth counts the containers open around this one, itself included.
 * ev, when not NULL, is the event whose members are recorded: this object
 * is an event.
 */
static int
scan_object(struct scanner *c, int depth, struct json_event *ev)
{
	struct json_doc *d = c->d;
	struct json_member m;
	size_t evi = ev && d ? (size_t)(ev - d->events) : 0;
	int esc, rc;

	if ((rc = open_container(c, depth, '}')) != 0)
		return rc < 0 ? -1 : 0;
	for (;;) {
		if (c->i >= c->len)
			return eof(c);
		if (c->s[c->i] != '"') {
			if (strchr(",:]}", c->s[c->i]) && c->s[c->i])
				return not_a_value(c, c->i);
			return fail_at(c, c->i, 1,
			    "object keys must be strings");
		}
		memset(&m, 0, sizeof m);
		m.key = c->i + 1;
		if (scan_string(c, &esc, &m.declen) < 0)
			return -1;
		m.keylen = c->i - 1 - m.key;
		m.kesc = (unsigned char)esc;
		ws(c);
		if (c->i >= c->len)
			return eof(c);
		if (c->s[c->i] != ':')
			return fail_at(c, c->i, 1,
			    "expected ':' after an object key");
		c->i++;
		ws(c);
		m.val = c->i;
		m.declen = 0;
		if (c->i < c->len && c->s[c->i] == '"') {
			m.kind = JSON_STRING;
			if (scan_string(c, &esc, &m.declen) < 0)
				return -1;
			m.vesc = (unsigned char)esc;
		} else if (scan_value(c, depth, NULL) < 0) {
			return -1;
		} else {
			switch (c->s[m.val]) {
			case '{': m.kind = JSON_OBJECT; break;
			case '[': m.kind = JSON_ARRAY; break;
			case 't': m.kind = JSON_TRUE; break;
			case 'f': m.kind = JSON_FALSE; break;
			case 'n': m.kind = JSON_NULL; break;
			default: m.kind = JSON_NUMBER; break;
			}
		}
		m.vallen = c->i - m.val;
		if (ev && d) {
			if (grow(d, (void **)&d->members, &d->memcap,
			    d->nmembers + 1, sizeof m) < 0)
				return -1;
			d->members[d->nmembers++] = m;
			d->events[evi].n++;
		}
		if ((rc = after_element(c, '}')) != 0)
			return rc < 0 ? -1 : 0;
	}
}

/* top: this is the top-level array, whose elements are the events. */
static int
scan_array(struct scanner *c, int depth, int top)
{
	struct json_doc *d = c->d;
	struct json_event *ev;
	int rc;

	if ((rc = open_container(c, depth, ']')) != 0)
		return rc < 0 ? -1 : 0;
	for (;;) {
		ev = NULL;
		if (top && d && d->limit && d->nevents >= d->limit) {
			d->nevents++;	/* counted, not recorded */
		} else if (top && d) {
			if (grow(d, (void **)&d->events, &d->evcap,
			    d->nevents + 1, sizeof *ev) < 0)
				return -1;
			ev = &d->events[d->nevents++];
			memset(ev, 0, sizeof *ev);
			ev->from = c->i;
			ev->first = d->nmembers;
			c->crlf = 0;
		}
		if (scan_value(c, depth, ev) < 0)
			return -1;
		if (ev) {
			/* d->events may have moved meanwhile */
			ev = &d->events[d->nevents - 1];
			ev->to = c->i;
			ev->crlf = (unsigned char)c->crlf;
		}
		if ((rc = after_element(c, ']')) != 0)
			return rc < 0 ? -1 : 0;
	}
}

/* A value at c->i inside depth containers; ev as for scan_object. */
static int
scan_value(struct scanner *c, int depth, struct json_event *ev)
{
	size_t declen;
	int esc;

	if (c->i >= c->len)
		return eof(c);
	if (ev)
		ev->kind = JSON_NONE;
	switch (c->s[c->i]) {
	case '{':
		if (ev)
			ev->kind = JSON_OBJECT;
		return scan_object(c, depth + 1, ev);
	case '[':
		if (ev)
			ev->kind = JSON_ARRAY;
		return scan_array(c, depth + 1, 0);
	case '"':
		if (ev)
			ev->kind = JSON_STRING;
		return scan_string(c, &esc, &declen);
	case 't':
		if (ev)
			ev->kind = JSON_TRUE;
		return literal(c, "true");
	case 'f':
		if (ev)
			ev->kind = JSON_FALSE;
		return literal(c, "false");
	case 'n':
		if (ev)
			ev->kind = JSON_NULL;
		return literal(c, "null");
	case '-': case '0': case '1': case '2': case '3': case '4':
	case '5': case '6': case '7': case '8': case '9':
		if (ev)
			ev->kind = JSON_NUMBER;
		return scan_number(c);
	default:
		return not_a_value(c, c->i);
	}
}

static int
scan_text(struct scanner *c)
{
	struct json_doc *d = c->d;
	struct json_event *ev;

	ws(c);
	if (c->i >= c->len)
		return eof(c);
	if (d)
		d->top = JSON_NONE;
	if (c->s[c->i] == '[') {
		if (d)
			d->top = JSON_ARRAY;
		if (scan_array(c, 1, 1) < 0)
			return -1;
	} else if (c->s[c->i] == '{' && d) {
		d->top = JSON_OBJECT;
		if (grow(d, (void **)&d->events, &d->evcap, 1, sizeof *ev) < 0)
			return -1;
		ev = &d->events[0];
		memset(ev, 0, sizeof *ev);
		d->nevents = 1;
		ev->from = c->i;
		ev->kind = JSON_OBJECT;
		c->crlf = 0;
		if (scan_object(c, 1, ev) < 0)
			return -1;
		ev = &d->events[0];
		ev->to = c->i;
		ev->crlf = (unsigned char)c->crlf;
	} else if (scan_value(c, 0, NULL) < 0) {
		return -1;
	}
	ws(c);
	if (c->i < c->len)
		return fail_at(c, c->i, 1,
		    "unexpected data after the JSON text");
	return 0;
}

int
json_scan(struct json_doc *d, const char *s, size_t len)
{
	struct scanner c = { s, len, 0, d, 0 };

	d->nevents = d->nmembers = 0;
	d->offset = -1;
	d->nomem = 0;
	d->err[0] = '\0';
	d->top = JSON_NONE;
	if (scan_text(&c) < 0) {
		d->nevents = d->nmembers = 0;
		return -1;
	}
	return 0;
}

void
json_doc_free(struct json_doc *d)
{
	free(d->events);
	free(d->members);
	memset(d, 0, sizeof *d);
}

int
json_valid(const char *s, size_t len)
{
	struct scanner c = { s, len, 0, NULL, 0 };

	return scan_text(&c) == 0;
}

static size_t
put_utf8(char *out, unsigned cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

size_t
json_decode(const char *s, size_t len, char *out)
{
	size_t i = 0, n = 0;
	unsigned cp, lo;

	while (i < len) {
		if (s[i] != '\\') {
			out[n++] = s[i++];
			continue;
		}
		switch (s[i + 1]) {
		case 'b': out[n++] = '\b'; break;
		case 'f': out[n++] = '\f'; break;
		case 'n': out[n++] = '\n'; break;
		case 'r': out[n++] = '\r'; break;
		case 't': out[n++] = '\t'; break;
		case 'u':
			hex4(s + i + 2, &cp);
			if (cp >= 0xd800 && cp <= 0xdbff) {
				hex4(s + i + 8, &lo);
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				    (lo - 0xdc00);
				i += 6;
			}
			n += put_utf8(out + n, cp);
			i += 6;
			continue;
		default: out[n++] = s[i + 1]; break;
		}
		i += 2;
	}
	return n;
}

size_t
json_encoded_len(const char *s, size_t len)
{
	size_t i, n = 2;

	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		n += ch == '"' || ch == '\\' ? 2 : ch < 0x20 ? 6 : 1;
	}
	return n;
}

size_t
json_encode(const char *s, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, n = 0;

	out[n++] = '"';
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\') {
			out[n++] = '\\';
			out[n++] = (char)ch;
		} else if (ch < 0x20) {
			memcpy(out + n, "\\u00", 4);
			out[n + 4] = hex[ch >> 4];
			out[n + 5] = hex[ch & 15];
			n += 6;
		} else {
			out[n++] = (char)ch;
		}
	}
	out[n++] = '"';
	return n;
}
