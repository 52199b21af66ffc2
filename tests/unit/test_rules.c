/* test_rules.c: how route compiles its jq rules, places their errors, runs
 * them on an event, and reads receivedAt; and that it reads events and
 * writes messages exactly as jq's own parser and printer do. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../cmd/route/route.h"
#include "tap.h"

/* The errors of text, or "" when it compiles. */

static void
compile_err(const char *text, jv args, char *err, size_t len)
{
	jq_state *jq = rules_compile(text, "r.jq", ".", args, err, len);

	if (jq)
		jq_teardown(&jq);
}

static void
check_err(const char *name, const char *text, const char *want)
{
	char err[1024];

	compile_err(text, jv_object(), err, sizeof err);
	is_str(err, want, "%s", name);
}

/* The messages of event under text, as compact JSON, or "error: ...". */
static void
check_run(const char *name, const char *text, const char *event,
    const char *want)
{
	char err[1024], got[2048];
	jq_state *jq = rules_compile(text, "r.jq", ".", jv_object(), err,
	    sizeof err);
	jv out, s;

	if (jq == NULL) {
		ok(0, "%s: does not compile: %s", name, err);
		return;
	}
	out = rules_run(jq, jv_parse(event));
	if (jv_is_valid(out)) {
		s = jv_dump_string(out, 0);
		snprintf(got, sizeof got, "%s", jv_string_value(s));
	} else {
		s = jv_invalid_get_msg(out);
		snprintf(got, sizeof got, "error: %s", jv_string_value(s));
	}
	jv_free(s);
	is_str(got, want, "%s", name);
	jq_teardown(&jq);
}

/* What jq's printer makes of v, or its error: the text to compare. */
static jv
jq_text(jv v)
{
	jv m;

	if (jv_is_valid(v))
		return jv_dump_string(v, 0);
	m = jv_invalid_get_msg(v);
	return jv_get_kind(m) == JV_KIND_STRING ?
	    jv_string_fmt("invalid: %s", jv_string_value(m)) : m;
}

/* rules_dump writes v as jv_dump_string does; v is consumed. */
static int
same_dump(jv v)
{
	struct text t = { NULL, 0, 0 };
	jv want = jv_dump_string(jv_copy(v), 0);
	int same;

	if (rules_dump(v, &t) < 0 || text_add(&t, "", 1) < 0)
		return 0;
	same = strcmp(t.s, jv_string_value(want)) == 0;
	if (!same)
		diag("got  %s\nwant %s", t.s, jv_string_value(want));
	free(t.s);
	jv_free(want);
	return same;
}

/* rules_parse makes of text (and of each of its beginnings) what
 * jv_parse_sized makes, the same value or the same error; and what it
 * makes is written as jq writes it. */
static void
check_json(const char *name, const char *text, size_t len)
{
	size_t n;
	int same = 1;
	jv a, b;

	for (n = len; n > 0 && same; n--) {
		a = jq_text(rules_parse(text, n));
		b = jq_text(jv_parse_sized(text, (int)n));
		same = jv_equal(jv_copy(a), jv_copy(b));
		if (!same)
			diag("%.*s\ngot  %s\nwant %s", (int)n, text,
			    jv_string_value(a), jv_string_value(b));
		jv_free(a);
		jv_free(b);
		a = rules_parse(text, n);
		if (same && jv_is_valid(a))
			same = same_dump(a);
		else
			jv_free(a);
	}
	ok(same, "JSON as jq reads and writes it: %s", name);
}
#define CHECK_JSON(name, lit) check_json(name, lit, sizeof lit - 1)

static void
check_json_all(void)
{
	char deep[1300];
	size_t i;

	CHECK_JSON("an event", "{\"eventId\":\"e1\",\"classId\":\"c\","
	    "\"cellIndex\":3,\"executionCount\":-7,\"hasError\":false,"
	    "\"ok\":true,\"errorMessage\":null,\"metadata\":{\"noise\":"
	    "false,\"tags\":[1,\"a\",[],{}]},\"code\":\"print(\\\"\\u00e9\\\")"
	    "\\n\\tx\\\\ \\/\\b\\f\\r\"}");
	CHECK_JSON("white space", " \t\r\n{ \"a\" : [ 1 , 2 ] , \"b\":{ } }\n ");
	CHECK_JSON("numbers", "{\"a\":[0,-0,1.5,-2.25e3,1E2,1e-7,0.1,"
	    "123456789012345,1234567890123456,12345678901234567890,1e400,"
	    "-1e400,5e-324,9007199254740993,100000000000000000000]}");
	CHECK_JSON("bad numbers", "{\"a\":[01,1.,.5,-,+1,1e,0x10,1.5.5]}");
	CHECK_JSON("words", "{\"a\":[true,false,null,nan,tru,nulls,True]}");
	CHECK_JSON("escapes", "{\"a\":\"\\u0000\\u001f\\u007f\\u00ff\\u0800"
	    "\\uffff\\ud83d\\ude00\\ud800\\udc00x\\uZZZZ\\q\"}");
	CHECK_JSON("raw bytes", "{\"a\":\"\x01\x1f\x7f\xc3\xa9\xe2\x82\xac"
	    "\xf0\x9f\x98\x80\xff\xc0\x80\xed\xa0\x80\xf4\x90\x80\x80\"}");
	CHECK_JSON("duplicate keys", "{\"a\":1,\"b\":2,\"a\":3}");
	CHECK_JSON("not objects", "[1,{\"a\":2}]");
	CHECK_JSON("extra values", "{\"a\":1}{\"b\":2}");
	CHECK_JSON("a byte order mark", "\xef\xbb\xbf{\"a\":1}");
	CHECK_JSON("syntax errors", "{\"a\" 1,,\"b\":[1 2],}");
	CHECK_JSON("a NUL", "{\"a\":1\0}");
	CHECK_JSON("record separator", "{\"a\":1}\x1e");
	for (i = 0; i < 300; i++)
		deep[i] = '[';
	deep[i++] = '1';
	memset(deep + i, ']', 300);
	deep[i + 300] = '\0';
	check_json("too deep to print", deep, strlen(deep));
	snprintf(deep, sizeof deep, "{\"a\":");
	memset(deep + 5, '[', 280);
	deep[285] = '\0';
	check_json("too deep to parse", deep, strlen(deep));
	ok(same_dump(jv_number(NAN)) && same_dump(jv_number(-0.0)) &&
	    same_dump(jv_number(1e16)) && same_dump(jv_number(-1e15)) &&
	    same_dump(jv_number(9007199254740992.0)) &&
	    same_dump(jv_number(0.30000000000000004)),
	    "numbers as jq writes them");
	ok(same_dump(jv_string_sized("a\x7f\x01\xff\"\\", 6)) &&
	    same_dump(jv_string("")) && same_dump(jv_object()) &&
	    same_dump(jv_array()),
	    "strings and empty values as jq writes them");
}

int
main(void)
{
	char err[1024];

	check_err("compiles", "{topic: \"class:\\(.classId)\"}", "");
	check_err("undefined function: line and column",
	    ".a |\n  foo(1) | .b\n", "r.jq:2:3: foo/1 is not defined");
	check_err("syntax error: jq's shell hint dropped",
	    "select(.x)\n| {topic: \"t\", kind: }\n| .\n",
	    "r.jq:2:22: syntax error, unexpected '}'");
	check_err("at the end of the text",
	    ".a |", "r.jq:1:4: syntax error, unexpected $end");
	check_err("two errors, in the order of the text",
	    "def f: g; f | h", "r.jq:1:8: g/0 is not defined\n"
	    "r.jq:1:15: h/0 is not defined");
	check_err("columns count characters, not bytes",
	    "\"\xc3\xa9\xc3\xa9\" | nope", "r.jq:1:8: nope/0 is not defined");
	check_err("a tab is one column", "\t\tnope",
	    "r.jq:1:3: nope/0 is not defined");
	check_err("an unknown variable", "{topic: $t}",
	    "r.jq:1:9: $t is not defined");
	check_err("an error without a place", "import \"nosuch\" as n; .",
	    "r.jq: module not found: nosuch");
	compile_err("{topic: $t}", jv_object_set(jv_object(), jv_string("t"),
	    jv_string("x")), err, sizeof err);
	is_str(err, "", "a named argument is a variable");
	compile_err("$ARGS.named.t", jv_object_set(jv_object(), jv_string("t"),
	    jv_string("x")), err, sizeof err);
	is_str(err, "", "$ARGS as jq(1) has it");
	compile_err("$ENV.PATH", jv_object(), err, sizeof err);
	is_str(err, "", "$ENV");

	check_run("one message", "{topic: \"class:\\(.c)\", n: .n}",
	    "{\"c\":\"A\",\"n\":1}", "[{\"topic\":\"class:A\",\"n\":1}]");
	check_run("none", "empty", "{}", "[]");
	check_run("fan-out, in order", "{topic: \"a\"}, {topic: \"b\"}", "{}",
	    "[{\"topic\":\"a\"},{\"topic\":\"b\"}]");
	check_run("a jq error", "error(\"boom\")", "{}", "error: boom");
	check_run("an error that is not a string", "error({a: 1})", "{}",
	    "error: (not a string): {\"a\":1}");
	check_run("a run-time type error", ".a.b", "{\"a\":\"s\"}",
	    "error: Cannot index string with string \"b\"");
	check_run("an output that is not an object", "{topic: \"a\"}, 1", "{}",
	    "error: output 2 is not an object with a string \"topic\": 1");
	check_run("a topic that is not a string", "{topic: 1}", "{}",
	    "error: output 1 is not an object with a string \"topic\": "
	    "{\"topic\":1}");
	check_run("an empty topic", "{topic: \"\"}", "{}",
	    "error: output 1 is not an object with a string \"topic\": "
	    "{\"topic\":\"\"}");
	check_run("halt ends the messages", "{topic: \"a\"}, halt, {topic: \"b\"}",
	    "{}", "[{\"topic\":\"a\"}]");
	check_run("halt_error fails the event", "\"stop\" | halt_error", "{}",
	    "error: halt_error: stop");

	is_int(rules_parse_time("2026-11-25T20:31:39.123456Z"),
	    1795638699123456LL, "receivedAt as ingest writes it");
	is_int(rules_parse_time("2026-11-25T20:31:39Z"), 1795638699000000LL,
	    "no fraction");
	is_int(rules_parse_time("2026-11-25T21:31:39.5+01:00"),
	    1795638699500000LL, "a zone ahead of UTC");
	is_int(rules_parse_time("2026-11-25T20:31:39.123456"),
	    1795638699123456LL, "no zone is UTC");
	is_int(rules_parse_time("2026-11-25"), -1, "a date alone");
	is_int(rules_parse_time("2026-13-25T20:31:39Z"), -1, "month 13");
	is_int(rules_parse_time("yesterday"), -1, "words");
	is_int(rules_parse_time("2026-11-25T20:31:39Zjunk"), -1, "junk after");
	check_json_all();
	return done_testing();
}
