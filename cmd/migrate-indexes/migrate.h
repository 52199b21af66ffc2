/* migrate.h: what the files of migrate-indexes share. */
#ifndef LABPULSE_MIGRATE_H
#define LABPULSE_MIGRATE_H

#include <stddef.h>
#include <strings.h>

struct stmts {
	char **v;
	size_t n;
};

int split_sql(const char *sql, struct stmts *out, char *err, size_t errlen);
void stmts_free(struct stmts *s);
int stmt_needs_autocommit(const char *stmt);

#endif
