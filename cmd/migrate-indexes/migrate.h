/* migrate.h: what the files of migrate-indexes share. */
#ifndef LABPULSE_MIGRATE_H
#define LABPULSE_MIGRATE_H

#include <stddef.h>
#include <strings.h>

struct stmts {
	char **v;
	size_t n;
};

/* The length of the dollar-quote tag starting at p ("$$" or "$tag$"),
 * or 0. */
size_t dollar_tag(const char *p);
int split_sql(const char *sql, struct stmts *out, char *err, size_t errlen);
/* Add buf[0..len), trimmed, as the next statement (nothing when it is
 * blank): 0, or -1 out of memory. */
int stmts_push(struct stmts *s, const char *buf, size_t len);
void stmts_free(struct stmts *s);
/* Free the n strings of v and v itself, leaving them empty. */
void strv_free(char ***v, size_t *n);
/* 1 when a statement must run outside a transaction block. */
int stmt_needs_autocommit(const char *stmt);
/* 1 when the statements run in one transaction: none needs autocommit,
 * as up decides. */
int stmts_in_tx(const struct stmts *s);

#endif
