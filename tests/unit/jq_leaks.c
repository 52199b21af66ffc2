/* jq_leaks.c: linked into the tests that call jq's parser on bad JSON on
 * purpose (test_rules, the route_json fuzz target). Debian's jq 1.6 leaks
 * the message of a parse error in jv_parse_sized: that leak is jq's, so
 * LeakSanitizer is told to pass over it, and any other is still reported.
 * libjq has no frame pointers, so the slow unwinder is what sees the
 * frame; the count of suppressed leaks is no report of ours. Without a
 * sanitizer these are never called. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_options(void);
const char *__asan_default_options(void);

const char *
__lsan_default_suppressions(void)
{
	return "leak:jv_parse_sized\n";
}

const char *
__lsan_default_options(void)
{
	return "print_suppressions=0";
}

const char *
__asan_default_options(void)
{
	return "fast_unwind_on_malloc=0";
}
