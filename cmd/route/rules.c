/* rules.c: the jq program that turns an event into messages: found,
 * compiled once with jq's errors placed at their line and column, and run
 * per event. */
#include <ctype.h>
#include <errno.h>
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

jq_state *
rules_compile(const char *text, const char *name, const char *dir, jv args,
    char *err, size_t errlen)
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
rules_load(const char *path, jv args, char *err, size_t errlen)
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
	jq = rules_compile(jv_string_value(text), path, dir, args, err, errlen);
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
