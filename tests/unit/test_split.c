/* test_split.c: how migrate-indexes cuts a migration into statements. */
#include <stdlib.h>
#include <string.h>

#include "../../cmd/migrate-indexes/migrate.h"
#include "tap.h"

static void
check(const char *name, const char *sql, size_t n, const char *const *want)
{
	struct stmts s;
	char err[100];
	size_t i;

	if (split_sql(sql, &s, err, sizeof err) < 0) {
		ok(0, "%s: split failed: %s", name, err);
		return;
	}
	is_int((long)s.n, (long)n, "%s: %zu statements", name, n);
	for (i = 0; i < n && i < s.n; i++)
		is_str(s.v[i], want[i], "%s: statement %zu", name, i + 1);
	stmts_free(&s);
}

int
main(void)
{
	struct stmts s;
	char err[100];

	{
		const char *w[] = { "CREATE TABLE a (x int)", "SELECT 1" };
		check("plain", "CREATE TABLE a (x int);\nSELECT 1;\n", 2, w);
	}
	{
		const char *w[] = { "SELECT 'a;b', \"c;d\"", "SELECT 'it''s; fine'" };
		check("quotes", "SELECT 'a;b', \"c;d\"; SELECT 'it''s; fine';", 2, w);
	}
	{
		const char *w[] = { "SELECT 1", "SELECT 2" };
		check("comments", "-- one; two\nSELECT 1; /* a; /* nested; */ b */ SELECT 2\n", 2, w);
	}
	{
		const char *w[] = { "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql",
		    "SELECT $$x;y$$" };
		check("dollar quotes",
		    "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\nSELECT $$x;y$$;", 2, w);
	}
	{
		const char *w[] = { "SELECT $1" };
		check("a parameter is not a quote", "SELECT $1;", 1, w);
	}
	check("only comments and blanks", "-- nothing\n\n/* here */ ;\n", 0, NULL);
	ok(split_sql("SELECT 'open", &s, err, sizeof err) < 0 &&
	    strcmp(err, "unterminated quote or comment") == 0,
	    "an unterminated quote is refused");
	ok(split_sql("SELECT 1 /* open", &s, err, sizeof err) < 0,
	    "an unterminated comment is refused");
	ok(split_sql("SELECT $a$ open", &s, err, sizeof err) < 0,
	    "an unterminated dollar quote is refused");
	ok(stmt_needs_autocommit("CREATE INDEX CONCURRENTLY i ON t (a)"),
	    "CONCURRENTLY needs autocommit");
	ok(stmt_needs_autocommit("drop index concurrently if exists i"),
	    "in any case");
	ok(!stmt_needs_autocommit("CREATE TABLE concurrently_seen (a int)"),
	    "a name that starts with it does not");
	ok(!stmt_needs_autocommit("CREATE INDEX i ON t (a)"),
	    "a plain index does not");
	return done_testing();
}
