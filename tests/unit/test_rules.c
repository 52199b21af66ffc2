/* test_rules.c: how route compiles its jq rules, places their errors, runs
 * them on an event, and reads receivedAt. */
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
	return done_testing();
}
