/* advise.c: which indexes cost writes and space for nothing (unused since
 * the statistics were reset, duplicates, prefixes of another), and which
 * foreign keys have none, from pg_stat_user_indexes, pg_index and the
 * catalog of the current schema. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jv.h>
#include <libpq-fe.h>

#include "log.h"
#include "prog.h"
#include "ops.h"

/* kind, table, index, bytes, pretty size, the other index, note: one row
 * per advice. An index serving a constraint (primary key, unique, an
 * exclusion) is never "unused": it enforces something. */
static const char advice_sql[] =
"WITH ix AS ("
"  SELECT i.*, c.relname AS iname, t.relname AS tname, c.relam,"
"   coalesce(pg_get_expr(i.indexprs, i.indrelid), '') AS exprs,"
"   coalesce(pg_get_expr(i.indpred, i.indrelid), '') AS pred,"
"   EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid"
"    AND k.contype IN ('p', 'u', 'x')) AS enforces"
"  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
"  JOIN pg_class t ON t.oid = i.indrelid"
"  JOIN pg_namespace n ON n.oid = c.relnamespace"
"  WHERE n.nspname = current_schema() AND i.indisvalid)"
" SELECT 1 AS o, 'duplicate' AS kind, a.tname, a.iname,"
"  pg_relation_size(a.indexrelid) AS bytes, b.iname AS other,"
"  'same columns as ' || b.iname AS note"
" FROM ix a JOIN ix b ON a.indrelid = b.indrelid"
"  AND a.indexrelid <> b.indexrelid AND a.relam = b.relam"
"  AND a.indkey::text = b.indkey::text AND a.indclass::text = b.indclass::text"
"  AND a.indcollation::text = b.indcollation::text"
"  AND a.indoption::text = b.indoption::text"
"  AND a.exprs = b.exprs AND a.pred = b.pred"
" WHERE NOT a.enforces AND (NOT a.indisunique OR b.indisunique)"
"  AND (b.enforces OR (b.indisunique AND NOT a.indisunique)"
"   OR a.indexrelid > b.indexrelid)"
" UNION ALL"
" SELECT 2, 'prefix', a.tname, a.iname, pg_relation_size(a.indexrelid),"
"  b.iname, 'its columns lead ' || b.iname"
" FROM ix a JOIN ix b ON a.indrelid = b.indrelid"
"  AND a.indexrelid <> b.indexrelid AND a.relam = b.relam"
"  AND a.relam = (SELECT oid FROM pg_am WHERE amname = 'btree')"
"  AND a.indnatts < b.indnatts AND a.exprs = '' AND b.exprs = ''"
"  AND a.pred = b.pred"
"  AND b.indkey::text || ' ' LIKE a.indkey::text || ' %'"
"  AND b.indclass::text || ' ' LIKE a.indclass::text || ' %'"
" WHERE NOT a.indisunique AND NOT a.enforces"
" UNION ALL"
" SELECT 3, 'unused', a.tname, a.iname, pg_relation_size(a.indexrelid),"
"  '', 'no scans since ' || coalesce((SELECT to_char(stats_reset,"
"   'YYYY-MM-DD HH24:MI:SS') FROM pg_stat_database"
"   WHERE datname = current_database()), 'the statistics began')"
" FROM ix a JOIN pg_stat_user_indexes s ON s.indexrelid = a.indexrelid"
" WHERE s.idx_scan = 0 AND NOT a.indisunique AND NOT a.enforces"
" UNION ALL"
" SELECT 4, 'foreign-key', t.relname, '', pg_relation_size(k.conrelid), '',"
"  'foreign key ' || k.conname || ' (' || (SELECT string_agg(quote_ident("
"   a.attname), ', ' ORDER BY array_position(k.conkey, a.attnum))"
"   FROM pg_attribute a WHERE a.attrelid = k.conrelid"
"   AND a.attnum = ANY (k.conkey)) || ') has no index: each delete or key"
" update of ' || k.confrelid::regclass::text || ' scans ' || t.relname"
" FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid"
" JOIN pg_namespace n ON n.oid = k.connamespace"
" WHERE k.contype = 'f' AND n.nspname = current_schema()"
"  AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = k.conrelid"
"   AND i.indisvalid AND i.indpred IS NULL"
"   AND (string_to_array(i.indkey::text, ' ')::int2[])"
"    [1:cardinality(k.conkey)] @> k.conkey"
"   AND (string_to_array(i.indkey::text, ' ')::int2[])"
"    [1:cardinality(k.conkey)] <@ k.conkey)"
" ORDER BY 1, 3, 4";

static void
pretty(long long b, char *buf, size_t len)
{
	if (b < 10240)
		snprintf(buf, len, "%lld bytes", b);
	else if (b < 10LL * 1024 * 1024)
		snprintf(buf, len, "%lld kB", b / 1024);
	else if (b < 10LL * 1024 * 1024 * 1024)
		snprintf(buf, len, "%lld MB", b / (1024 * 1024));
	else
		snprintf(buf, len, "%lld GB", b / (1024 * 1024 * 1024));
}

int
cmd_advise(struct job *j)
{
	PGresult *r, *reset;
	jv out, list, o;
	char size[32];
	const char *rs;
	int i, n;

	(void)j;
	reset = q(0, "SELECT to_char(stats_reset, 'YYYY-MM-DD HH24:MI:SS')"
	    " FROM pg_stat_database WHERE datname = current_database()",
	    0, NULL);
	rs = PQntuples(reset) && !PQgetisnull(reset, 0, 0) ?
	    PQgetvalue(reset, 0, 0) : NULL;
	r = q(0, advice_sql, 0, NULL);
	n = PQntuples(r);
	if (cfg.json) {
		list = jv_array();
		for (i = 0; i < n; i++) {
			const char *idx = PQgetvalue(r, i, 3);
			const char *other = PQgetvalue(r, i, 5);

			pretty(atoll(PQgetvalue(r, i, 4)), size, sizeof size);
			o = jv_object();
			o = jv_object_set(o, jv_string("kind"),
			    jv_string(PQgetvalue(r, i, 1)));
			o = jv_object_set(o, jv_string("table"),
			    jv_string(PQgetvalue(r, i, 2)));
			o = jv_object_set(o, jv_string("index"),
			    *idx ? jv_string(idx) : jv_null());
			o = jv_object_set(o, jv_string("bytes"),
			    jv_number(atof(PQgetvalue(r, i, 4))));
			o = jv_object_set(o, jv_string("size"), jv_string(size));
			o = jv_object_set(o, jv_string("other"),
			    *other ? jv_string(other) : jv_null());
			o = jv_object_set(o, jv_string("note"),
			    jv_string(PQgetvalue(r, i, 6)));
			list = jv_array_append(list, o);
		}
		out = jv_object();
		out = jv_object_set(out, jv_string("stats_reset"),
		    rs ? jv_string(rs) : jv_null());
		out = jv_object_set(out, jv_string("advice"), list);
		out = jv_dump_string(out, JV_PRINT_SORTED);
		if (!jv_is_valid(out))
			die_nomem();
		printf("%s\n", jv_string_value(out));
		jv_free(out);
	} else {
		printf("%-11s %-24s %-36s %-10s %s\n", "KIND", "TABLE", "INDEX",
		    "SIZE", "NOTE");
		for (i = 0; i < n; i++) {
			pretty(atoll(PQgetvalue(r, i, 4)), size, sizeof size);
			printf("%-11s %-24s %-36s %-10s %s\n", PQgetvalue(r, i, 1),
			    PQgetvalue(r, i, 2), *PQgetvalue(r, i, 3) ?
			    PQgetvalue(r, i, 3) : "-", size, PQgetvalue(r, i, 6));
		}
		if (n == 0)
			printf("no advice: every index is used and needed\n");
	}
	PQclear(r);
	PQclear(reset);
	return EX_OK;
}
