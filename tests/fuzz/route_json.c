/* route_json.c: route reads events with its own parser and writes messages
 * with its own writer, to spare jq's cost; both promise jq's results. So:
 * rules_parse must give what jv_parse_sized gives, the same value or the
 * same error, and rules_dump must write what jv_dump_string(v, 0) writes,
 * byte for byte, for whatever jq makes of the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jv.h>

#include "route/route.h"

static void
check(int ok)
{
	if (!ok)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct text t = { NULL, 0, 0 };
	jv want, got, dump;

	if (size > 65536)
		return 0;
	want = jv_parse_sized((const char *)data, (int)size);
	got = rules_parse((const char *)data, size);
	check(jv_is_valid(want) == jv_is_valid(got));
	if (!jv_is_valid(want)) {
		jv wm = jv_invalid_get_msg(want), gm = jv_invalid_get_msg(got);

		check(jv_equal(wm, gm));
		return 0;
	}
	check(jv_equal(jv_copy(want), jv_copy(got)));
	jv_free(got);
	dump = jv_dump_string(jv_copy(want), 0);
	check(rules_dump(want, &t) == 0);
	check(t.len == (size_t)jv_string_length_bytes(jv_copy(dump)));
	check(memcmp(t.s, jv_string_value(dump), t.len) == 0);
	jv_free(dump);
	free(t.s);
	return 0;
}
