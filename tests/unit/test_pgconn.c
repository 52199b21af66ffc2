/* test_pgconn: the lists of libpq's multi-host settings, as programs split
 * them to try each host alone. */
#include <stddef.h>

#include "pgconn.h"
#include "tap.h"

int
main(void)
{
	char b[16];

	pgconn_list_item("a,bb,ccc", 0, b, sizeof b);
	is_str(b, "a", "first item");
	pgconn_list_item("a,bb,ccc", 1, b, sizeof b);
	is_str(b, "bb", "middle item");
	pgconn_list_item("a,bb,ccc", 2, b, sizeof b);
	is_str(b, "ccc", "last item");
	pgconn_list_item("a,bb,ccc", 3, b, sizeof b);
	is_str(b, "", "past the end: empty");
	pgconn_list_item("5432", 3, b, sizeof b);
	is_str(b, "5432", "one item stands for every host");
	pgconn_list_item("a,,c", 1, b, sizeof b);
	is_str(b, "", "an empty item stays empty");
	pgconn_list_item(NULL, 0, b, sizeof b);
	is_str(b, "", "no list: empty");
	pgconn_list_item("averyveryverylonghostname,b", 0, b, sizeof b);
	is_str(b, "averyveryverylo", "cut to the buffer");

	is_int(pgconn_list_count(NULL), 0, "NULL: none");
	is_int(pgconn_list_count(""), 0, "empty: none");
	is_int(pgconn_list_count("a"), 1, "one host");
	is_int(pgconn_list_count("a,b,c"), 3, "three hosts");
	return done_testing();
}
