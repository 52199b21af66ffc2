/* rules.c: the jq program that turns an event into messages: found,
 * compiled once with jq's errors placed at their line and column, and run
 * per event. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "route.h"

const char *
rules_default_path(char *buf, size_t len)
{
	const char *env = getenv("LABPULSE_RULES");
	char self[PATH_MAX], rel[PATH_MAX + 32], real[PATH_MAX], *slash;
	struct stat st;
	ssize_t n;

	if (env && *env)
		return env;
	n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL)
			*slash = '\0';
		snprintf(rel, sizeof rel, "%s/../etc/labpulse/route.jq", self);
		if (stat(rel, &st) == 0 && S_ISREG(st.st_mode) &&
		    realpath(rel, real) != NULL &&
		    snprintf(buf, len, "%s", real) < (int)len)
			return buf;
	}
	return LABPULSE_SYSCONFDIR "/labpulse/route.jq";
}

/* One compile error, placed. */
struct cerr {
	long line, col;		/* 0 when jq gave no place */
	char msg[400];
};

struct cerrs {
	const char *text;
	struct cerr *v;
	size_t n;
};

/* Line `line` (from 1) of text, and its length without the newline. */
static const char *
text_line(const char *text, long line, size_t *len)
{
	const char *p = text, *nl;

	while (--line > 0 && (nl = strchr(p, '\n')) != NULL)
		p = nl + 1;
	if (line > 0)
		return NULL;
	nl = strchr(p, '\n');
	*len = nl ? (size_t)(nl - p) : strlen(p);
	return p;
}

/* jq 1.6 reports "jq: error: MSG at <top-level>, line N:\nLINE" followed by
 * as many spaces as the error's byte offset in that line: the column is
 * what follows the line's own text, counted in characters. */
static void
on_compile_error(void *arg, jv msg)
{
	static const char at[] = " at <top-level>, line ";
	static const char hint[] = " (Unix shell quoting issues?)";
	struct cerrs *ce = arg;
	struct cerr *e;
	const char *s, *nl, *p, *q, *ln;
	size_t linelen, pad, i, mlen;
	long col;

	if (jv_get_kind(msg) != JV_KIND_STRING) {
		jv_free(msg);
		return;
	}
	s = jv_string_value(msg);
	/* the closing "jq: 1 compile error" says nothing new */
	if (strncmp(s, "jq: ", 4) == 0 && isdigit((unsigned char)s[4])) {
		jv_free(msg);
		return;
	}
	e = realloc(ce->v, (ce->n + 1) * sizeof *ce->v);
	if (e == NULL) {	/* the errors so far are still told */
		jv_free(msg);
		return;
	}
	ce->v = e;
	e = &ce->v[ce->n++];
	e->line = e->col = 0;
	if (strncmp(s, "jq: error: ", 11) == 0)
		s += 11;
	nl = strchr(s, '\n');
	mlen = nl ? (size_t)(nl - s) : strlen(s);
	for (p = NULL, q = s; (q = strstr(q, at)) != NULL && q < s + mlen; q++)
		p = q;
	if (p && nl) {
		e->line = strtol(p + sizeof at - 1, NULL, 10);
		mlen = p - s;
		ln = text_line(ce->text, e->line, &linelen);
		pad = strlen(nl + 1);
		pad = ln && pad > linelen ? pad - linelen : 0;
		col = 1;
		for (i = 0; i < pad; i++)	/* UTF-8 continuation bytes */
			if (i >= linelen || ((unsigned char)ln[i] & 0xc0) != 0x80)
				col++;
		e->col = col;
	}
	while (mlen > 0 && isspace((unsigned char)s[mlen - 1]))
		mlen--;
	/* a hint for programs given on a shell's command line, not files */
	if (mlen > sizeof hint - 1 &&
	    memcmp(s + mlen - (sizeof hint - 1), hint, sizeof hint - 1) == 0)
		mlen -= sizeof hint - 1;
	snprintf(e->msg, sizeof e->msg, "%.*s", (int)mlen, s);
	jv_free(msg);
}

/* jq's debug: what a rule shows while it is being written or tested. */
static void
on_debug(void *arg, jv v)
{
	char buf[1024];

	(void)arg;
	log_info("rule debug: %s", jv_dump_string_trunc(v, buf, sizeof buf));
}

static int
cerr_cmp(const void *a, const void *b)
{
	const struct cerr *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->col < y->col ? -1 : x->col > y->col;
}

/* rules_compile, with vars (an object, consumed): variables of route's own
 * ($hooks), bound beside the named arguments but not in $ARGS. */
static jq_state *
compile_vars(const char *text, const char *name, const char *dir, jv args,
    jv vars, char *err, size_t errlen)
{
	struct cerrs ce = { text, NULL, 0 };
	jq_state *jq;
	jv named, all;
	size_t i, off = 0;
	int ok;

	*err = '\0';
	jq = jq_init();
	if (jq == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		jv_free(args);
		jv_free(vars);
		return NULL;
	}
	jq_set_error_cb(jq, on_compile_error, &ce);
	/* without these, jq 1.6 aborts on an import */
	jq_set_attr(jq, jv_string("JQ_ORIGIN"), jv_string(dir));
	jq_set_attr(jq, jv_string("PROGRAM_ORIGIN"), jv_string(dir));
	jq_set_attr(jq, jv_string("JQ_LIBRARY_PATH"),
	    jv_array_append(jv_array(), jv_string(dir)));
	/* $ARGS as jq(1) has it; each named argument is a variable too */
	named = jv_copy(args);
	all = jv_object_set(jv_object(), jv_string("positional"), jv_array());
	all = jv_object_set(all, jv_string("named"), named);
	all = jv_object_merge(jv_object_set(jv_object(), jv_string("ARGS"), all),
	    jv_copy(args));
	all = jv_object_merge(all, vars);
	ok = jq_compile_args(jq, text, all);
	if (!ok && ce.n == 0) {
		ce.v = calloc(1, sizeof *ce.v);
		if (ce.v == NULL) {
			snprintf(err, errlen, "%s: out of memory", name);
			jq_teardown(&jq);
			jv_free(args);
			return NULL;
		}
		snprintf(ce.v->msg, sizeof ce.v->msg, "does not compile");
		ce.n = 1;
	}
	if (!ok) {
		qsort(ce.v, ce.n, sizeof *ce.v, cerr_cmp);
		for (i = 0; i < ce.n && off < errlen; i++) {
			if (ce.v[i].line > 0)
				off += snprintf(err + off, errlen - off,
				    "%s%s:%ld:%ld: %s", i ? "\n" : "", name,
				    ce.v[i].line, ce.v[i].col, ce.v[i].msg);
			else
				off += snprintf(err + off, errlen - off,
				    "%s%s: %s", i ? "\n" : "", name,
				    ce.v[i].msg);
		}
		jq_teardown(&jq);
	} else {
		jq_set_error_cb(jq, NULL, NULL);
		jq_set_debug_cb(jq, on_debug, NULL);
	}
	free(ce.v);
	jv_free(args);
	return jq;
}

jq_state *
rules_compile(const char *text, const char *name, const char *dir, jv args,
    char *err, size_t errlen)
{
	return compile_vars(text, name, dir, args, jv_object(), err, errlen);
}

jq_state *
rules_load(const char *path, jv args, jv vars, char *err, size_t errlen)
{
	char dir[PATH_MAX], *slash;
	jq_state *jq;
	jv text;

	text = jv_load_file(path, 1);
	if (!jv_is_valid(text)) {
		jv m = jv_invalid_get_msg(text);

		snprintf(err, errlen, "%s: cannot read the rules: %s", path,
		    jv_get_kind(m) == JV_KIND_STRING ? jv_string_value(m) :
		    strerror(errno));
		jv_free(m);
		jv_free(args);
		jv_free(vars);
		return NULL;
	}
	snprintf(dir, sizeof dir, "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	jq = compile_vars(jv_string_value(text), path, dir, args, vars, err,
	    errlen);
	jv_free(text);
	return jq;
}

static jv
reason(const char *what, jv v)
{
	char buf[300];

	if (jv_get_kind(v) == JV_KIND_STRING) {
		jv s = jv_string_fmt("%s%s", what, jv_string_value(v));

		jv_free(v);
		return s;
	}
	return jv_string_fmt("%s(not a string): %s", what,
	    jv_dump_string_trunc(v, buf, sizeof buf));
}

jv
rules_run(jq_state *jq, jv event)
{
	jv out = jv_array(), r, topic, code;
	char buf[300];
	int i = 0;

	jq_start(jq, event, 0);
	while (jv_is_valid(r = jq_next(jq))) {
		i++;
		topic = jv_get_kind(r) == JV_KIND_OBJECT ?
		    jv_object_get(jv_copy(r), jv_string("topic")) : jv_invalid();
		if (jv_get_kind(topic) != JV_KIND_STRING ||
		    jv_string_length_bytes(jv_copy(topic)) == 0) {
			jv_free(topic);
			jv_free(out);
			return jv_invalid_with_msg(jv_string_fmt("output %d is "
			    "not an object with a string \"topic\": %s", i,
			    jv_dump_string_trunc(r, buf, sizeof buf)));
		}
		jv_free(topic);
		out = jv_array_append(out, r);
	}
	if (jq_halted(jq)) {
		jv_free(r);
		code = jq_get_exit_code(jq);
		/* halt ends the messages; halt_error fails the event */
		if (jv_is_valid(code) && !(jv_get_kind(code) == JV_KIND_NUMBER &&
		    jv_number_value(code) == 0)) {
			jv_free(code);
			jv_free(out);
			return jv_invalid_with_msg(reason("halt_error: ",
			    jq_get_error_message(jq)));
		}
		jv_free(code);
		return out;
	}
	if (jv_invalid_has_msg(jv_copy(r))) {
		jv_free(out);
		return jv_invalid_with_msg(reason("", jv_invalid_get_msg(r)));
	}
	jv_free(r);
	return out;
}

static int
digits(const char **p, int n)
{
	int v = 0;

	while (n-- > 0) {
		if (!isdigit((unsigned char)**p))
			return -1;
		v = v * 10 + (*(*p)++ - '0');
	}
	return v;
}

int64_t
rules_parse_time(const char *s)
{
	struct tm tm;
	int64_t us = 0, scale = 100000;
	int off = 0, sign, hh, mm;
	time_t t;

	memset(&tm, 0, sizeof tm);
	if ((tm.tm_year = digits(&s, 4)) < 0 || *s++ != '-' ||
	    (tm.tm_mon = digits(&s, 2)) < 1 || *s++ != '-' ||
	    (tm.tm_mday = digits(&s, 2)) < 1 || (*s != 'T' && *s != 't'))
		return -1;
	s++;
	if ((tm.tm_hour = digits(&s, 2)) < 0 || *s++ != ':' ||
	    (tm.tm_min = digits(&s, 2)) < 0 || *s++ != ':' ||
	    (tm.tm_sec = digits(&s, 2)) < 0)
		return -1;
	if (*s == '.' || *s == ',') {
		s++;
		if (!isdigit((unsigned char)*s))
			return -1;
		for (; isdigit((unsigned char)*s); s++, scale /= 10)
			us += (*s - '0') * scale;
	}
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		sign = *s++ == '-' ? -1 : 1;
		if ((hh = digits(&s, 2)) < 0)
			return -1;
		if (*s == ':')
			s++;
		if ((mm = digits(&s, 2)) < 0)
			return -1;
		off = sign * (hh * 3600 + mm * 60);
	} else if (*s == '\0') {
		/* no zone: UTC, as everywhere in labpulse */
	} else {
		return -1;
	}
	if (*s != '\0' || tm.tm_mon > 12 || tm.tm_mday > 31 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm);
	return ((int64_t)t - off) * 1000000 + us;
}

/* ---- events in, messages out, as jq's own parser and printer -------- */

/* Room for n more bytes in t: 0, or -1 when memory ran out. */
static int
text_room(struct text *t, size_t n)
{
	char *s;
	size_t cap;

	if (t->cap - t->len >= n)
		return 0;
	for (cap = t->cap ? t->cap : 512; cap - t->len < n; cap *= 2)
		;
	if ((s = realloc(t->s, cap)) == NULL)
		return -1;
	t->s = s;
	t->cap = cap;
	return 0;
}

int
text_add(struct text *t, const char *p, size_t n)
{
	if (text_room(t, n) < 0)
		return -1;
	memcpy(t->s + t->len, p, n);
	t->len += n;
	return 0;
}

/* Deeper than this, jq's parser and printer are left to say what they
 * say (both stop at 256). */
#define JSON_DEPTH_MAX 200

struct jin {
	const char *p, *end;
	int depth;
	struct text *scratch;	/* where escaped strings are decoded */
};

/* What jq's parser reads as part of a number or a literal word. */
static int
word_byte(const char *p, const char *end)
{
	return p < end && (*p == '\0' || !strchr(" \t\r\n\"[],{}:", *p));
}

static void
skip_space(struct jin *in)
{
	while (in->p < in->end && (*in->p == ' ' || *in->p == '\t' ||
	    *in->p == '\r' || *in->p == '\n'))
		in->p++;
}

static int
hex4(const char *p)
{
	int v = 0, i, d;

	for (i = 0; i < 4; i++, p++) {
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			return -1;
		v = v << 4 | d;
	}
	return v;
}

/* A string at the opening quote. Escapes are decoded as jq does; a raw
 * control byte, a bad escape or a surrogate escape is jq's to judge. */
static int
parse_string(struct jin *in, jv *out)
{
	const char *s = in->p + 1, *p;
	char *o;
	int esc = 0, c;

	for (p = s; p < in->end && *p != '"'; p++) {
		if ((unsigned char)*p < 0x20)
			return -1;
		if (*p == '\\') {
			esc = 1;
			if (++p == in->end)
				return -1;
		}
	}
	if (p == in->end)
		return -1;
	in->p = p + 1;
	if (!esc) {
		*out = jv_string_sized(s, (int)(p - s));
		return 0;
	}
	/* decoded, it is never longer */
	in->scratch->len = 0;
	if (text_room(in->scratch, (size_t)(p - s)) < 0)
		return -1;
	for (o = in->scratch->s; s < p; s++) {
		if (*s != '\\') {
			*o++ = *s;
			continue;
		}
		switch (*++s) {
		case '"': case '\\': case '/': *o++ = *s; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 't': *o++ = '\t'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 'u':
			if (p - s < 5 || (c = hex4(s + 1)) < 0 ||
			    (c >= 0xd800 && c <= 0xdfff))
				return -1;
			s += 4;
			if (c < 0x80) {
				*o++ = (char)c;
			} else if (c < 0x800) {
				*o++ = (char)(0xc0 | c >> 6);
				*o++ = (char)(0x80 | (c & 0x3f));
			} else {
				*o++ = (char)(0xe0 | c >> 12);
				*o++ = (char)(0x80 | (c >> 6 & 0x3f));
				*o++ = (char)(0x80 | (c & 0x3f));
			}
			break;
		default:
			return -1;
		}
	}
	*out = jv_string_sized(in->scratch->s, (int)(o - in->scratch->s));
	return 0;
}

/* A number as JSON writes it. An integer of up to 15 digits is exact as a
 * double; any other is converted by jq's parser, as jq would. */
static int
parse_number(struct jin *in, jv *out)
{
	const char *s = in->p, *p = s;
	char tok[64];
	int64_t v = 0;
	int digits = 0, plain = 1;
	jv n;

	if (*p == '-')
		p++;
	if (p == in->end || *p < '0' || *p > '9')
		return -1;
	if (*p == '0' && p + 1 < in->end && p[1] >= '0' && p[1] <= '9')
		return -1;
	for (; p < in->end && *p >= '0' && *p <= '9'; p++, digits++)
		v = digits < 18 ? v * 10 + (*p - '0') : v;
	if (p < in->end && *p == '.') {
		plain = 0;
		if (++p == in->end || *p < '0' || *p > '9')
			return -1;
		while (p < in->end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < in->end && (*p == 'e' || *p == 'E')) {
		plain = 0;
		if (++p < in->end && (*p == '+' || *p == '-'))
			p++;
		if (p == in->end || *p < '0' || *p > '9')
			return -1;
		while (p < in->end && *p >= '0' && *p <= '9')
			p++;
	}
	if (word_byte(p, in->end))
		return -1;
	in->p = p;
	if (plain && digits <= 15) {
		*out = jv_number(*s == '-' ? -(double)v : (double)v);
		return 0;
	}
	if ((size_t)(p - s) >= sizeof tok)
		return -1;
	memcpy(tok, s, p - s);
	tok[p - s] = '\0';
	n = jv_parse_sized(tok, (int)(p - s));
	if (jv_get_kind(n) != JV_KIND_NUMBER) {
		jv_free(n);
		return -1;
	}
	*out = n;
	return 0;
}

static int parse_value(struct jin *in, jv *out);

/* The members of an object or the elements of an array, added in order
 * with jv_object_set and jv_array_append, as jq's parser adds them. */
static int
parse_container(struct jin *in, jv *out)
{
	int obj = *in->p == '{';
	char close = obj ? '}' : ']';
	jv c = obj ? jv_object() : jv_array(), k = jv_null(), v;

	if (++in->depth > JSON_DEPTH_MAX)
		goto bad;
	in->p++;
	skip_space(in);
	if (in->p < in->end && *in->p == close)
		goto done;
	for (;;) {
		if (obj) {
			if (in->p == in->end || *in->p != '"' ||
			    parse_string(in, &k) < 0)
				goto bad;
			skip_space(in);
			if (in->p == in->end || *in->p != ':') {
				jv_free(k);
				goto bad;
			}
			in->p++;
			skip_space(in);
		}
		if (parse_value(in, &v) < 0) {
			jv_free(k);
			goto bad;
		}
		c = obj ? jv_object_set(c, k, v) : jv_array_append(c, v);
		skip_space(in);
		if (in->p < in->end && *in->p == ',') {
			in->p++;
			skip_space(in);
			continue;
		}
		if (in->p < in->end && *in->p == close)
			break;
		goto bad;
	}
done:
	in->p++;
	in->depth--;
	*out = c;
	return 0;
bad:
	jv_free(c);
	return -1;
}

static int
parse_word(struct jin *in, const char *w, jv v, jv *out)
{
	size_t n = strlen(w);

	if ((size_t)(in->end - in->p) < n || memcmp(in->p, w, n) != 0 ||
	    word_byte(in->p + n, in->end))
		return -1;
	in->p += n;
	*out = v;
	return 0;
}

static int
parse_value(struct jin *in, jv *out)
{
	if (in->p == in->end)
		return -1;
	switch (*in->p) {
	case '{': case '[': return parse_container(in, out);
	case '"': return parse_string(in, out);
	case 't': return parse_word(in, "true", jv_true(), out);
	case 'f': return parse_word(in, "false", jv_false(), out);
	case 'n': return parse_word(in, "null", jv_null(), out);
	default: return parse_number(in, out);
	}
}

jv
rules_parse(const char *text, size_t len)
{
	static struct text scratch;	/* kept from one event to the next */
	struct jin in = { text, text + len, 0, &scratch };
	jv v;

	skip_space(&in);
	if (in.p < in.end && *in.p == '{' && parse_value(&in, &v) == 0) {
		skip_space(&in);
		if (in.p == in.end)
			return v;
		jv_free(v);
	}
	return jv_parse_sized(text, (int)len);
}

/* The length of the UTF-8 character at p when it is one jq prints as it
 * is (no overlong form, no surrogate, at most U+10FFFF), else 0. */
static size_t
utf8_len(const unsigned char *p, const unsigned char *end)
{
	size_t n, i;
	long c;

	if (*p >= 0xc2 && *p <= 0xdf)
		n = 2, c = *p & 0x1f;
	else if (*p >= 0xe0 && *p <= 0xef)
		n = 3, c = *p & 0x0f;
	else if (*p >= 0xf0 && *p <= 0xf4)
		n = 4, c = *p & 0x07;
	else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
	    (n == 4 && (c < 0x10000 || c > 0x10ffff)))
		return 0;
	return n;
}

static int
dump_string(jv s, struct text *t)
{
	const unsigned char *p = (const unsigned char *)jv_string_value(s),
	    *end = p + jv_string_length_bytes(jv_copy(s)), *run;
	char esc[8];
	size_t n;

	if (text_add(t, "\"", 1) < 0)
		return -1;
	while (p < end) {
		for (run = p; p < end && *p >= 0x20 && *p < 0x7f && *p != '"' &&
		    *p != '\\'; p++)
			;
		if (p > run && text_add(t, (const char *)run, p - run) < 0)
			return -1;
		if (p == end)
			break;
		if (*p >= 0x80) {
			if ((n = utf8_len(p, end)) == 0 ||
			    text_add(t, (const char *)p, n) < 0)
				return -1;
			p += n;
			continue;
		}
		switch (*p) {
		case '"': memcpy(esc, "\\\"", 3); break;
		case '\\': memcpy(esc, "\\\\", 3); break;
		case '\b': memcpy(esc, "\\b", 3); break;
		case '\t': memcpy(esc, "\\t", 3); break;
		case '\r': memcpy(esc, "\\r", 3); break;
		case '\n': memcpy(esc, "\\n", 3); break;
		case '\f': memcpy(esc, "\\f", 3); break;
		default: snprintf(esc, sizeof esc, "\\u%04x", *p); break;
		}
		if (text_add(t, esc, strlen(esc)) < 0)
			return -1;
		p++;
	}
	return text_add(t, "\"", 1);
}

/* x (not consumed) as jv_dump_string(x, 0) prints it: 0, or -1 when that
 * is left to jq (or memory ran out). */
static int
dump_value(jv x, struct text *t, int depth)
{
	char num[32];
	double d;
	jv s, k, v;
	int i, n, rc = 0, first = 1;

	if (depth > JSON_DEPTH_MAX)
		return -1;
	switch (jv_get_kind(x)) {
	case JV_KIND_NULL: return text_add(t, "null", 4);
	case JV_KIND_FALSE: return text_add(t, "false", 5);
	case JV_KIND_TRUE: return text_add(t, "true", 4);
	case JV_KIND_STRING: return dump_string(x, t);
	case JV_KIND_NUMBER:
		/* an integer below 1e16 is its digits to jq's dtoa; -0, a
		 * fraction, a big one: jq prints it */
		d = jv_number_value(x);
		/* the range first: casting inf or NaN is undefined */
		if (d > -1e16 && d < 1e16 && d == (double)(int64_t)d &&
		    !(d == 0 && signbit(d))) {
			n = snprintf(num, sizeof num, "%" PRId64, (int64_t)d);
			return text_add(t, num, (size_t)n);
		}
		s = jv_dump_string(jv_copy(x), 0);
		rc = text_add(t, jv_string_value(s),
		    (size_t)jv_string_length_bytes(jv_copy(s)));
		jv_free(s);
		return rc;
	case JV_KIND_ARRAY:
		n = jv_array_length(jv_copy(x));
		rc = text_add(t, "[", 1);
		for (i = 0; i < n && rc == 0; i++) {
			v = jv_array_get(jv_copy(x), i);
			if (i > 0)
				rc = text_add(t, ",", 1);
			if (rc == 0)
				rc = dump_value(v, t, depth + 1);
			jv_free(v);
		}
		return rc < 0 ? rc : text_add(t, "]", 1);
	case JV_KIND_OBJECT:
		rc = text_add(t, "{", 1);
		for (i = jv_object_iter(x); rc == 0 && jv_object_iter_valid(x, i);
		    i = jv_object_iter_next(x, i)) {
			if (!first)
				rc = text_add(t, ",", 1);
			first = 0;
			k = jv_object_iter_key(x, i);
			v = jv_object_iter_value(x, i);
			if (rc == 0)
				rc = dump_string(k, t);
			if (rc == 0)
				rc = text_add(t, ":", 1);
			if (rc == 0)
				rc = dump_value(v, t, depth + 1);
			jv_free(k);
			jv_free(v);
		}
		return rc < 0 ? rc : text_add(t, "}", 1);
	default:
		return -1;
	}
}

int
rules_dump(jv v, struct text *t)
{
	size_t mark = t->len;
	jv s;
	int rc = 0;

	if (dump_value(v, t, 0) < 0) {
		t->len = mark;
		s = jv_dump_string(jv_copy(v), 0);
		rc = text_add(t, jv_string_value(s),
		    (size_t)jv_string_length_bytes(jv_copy(s)));
		jv_free(s);
	}
	jv_free(v);
	return rc;
}
