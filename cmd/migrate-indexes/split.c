/* split.c: cut a migration into its statements, as psql would: semicolons
 * outside quotes, identifiers, dollar quotes and comments end a statement.
 * Comments are left out of the statements. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate.h"

int
stmts_push(struct stmts *s, const char *buf, size_t len)
{
	size_t a = 0, b = len;
	char **v;

	while (a < b && isspace((unsigned char)buf[a]))
		a++;
	while (b > a && isspace((unsigned char)buf[b - 1]))
		b--;
	if (a == b)
		return 0;
	if ((v = realloc(s->v, (s->n + 1) * sizeof *s->v)) == NULL)
		return -1;
	s->v = v;
	if ((s->v[s->n] = strndup(buf + a, b - a)) == NULL)
		return -1;
	s->n++;
	return 0;
}

size_t
dollar_tag(const char *p)
{
	size_t i = 1;

	if (p[0] != '$')
		return 0;
	if (isdigit((unsigned char)p[1]))
		return 0;	/* $1 is a parameter */
	while (isalnum((unsigned char)p[i]) || p[i] == '_')
		i++;
	return p[i] == '$' ? i + 1 : 0;
}

int
split_sql(const char *sql, struct stmts *out, char *err, size_t errlen)
{
	size_t len = strlen(sql), i = 0, o = 0, tag, depth;
	char *buf = malloc(len + 1);
	char q;

	out->v = NULL;
	out->n = 0;
	if (buf == NULL)
		goto nomem;
	while (i < len) {
		char c = sql[i];

		if (c == '-' && sql[i + 1] == '-') {
			while (i < len && sql[i] != '\n')
				i++;
			continue;
		}
		if (c == '/' && sql[i + 1] == '*') {
			for (depth = 1, i += 2; i < len && depth > 0; i++) {
				if (sql[i] == '/' && sql[i + 1] == '*')
					depth++, i++;
				else if (sql[i] == '*' && sql[i + 1] == '/')
					depth--, i++;
			}
			if (depth > 0)
				goto unterminated;
			buf[o++] = ' ';
			continue;
		}
		if (c == '\'' || c == '"') {
			q = c;
			buf[o++] = sql[i++];
			while (i < len) {
				buf[o++] = sql[i];
				if (sql[i++] == q) {
					if (sql[i] == q) {	/* doubled: escaped */
						buf[o++] = sql[i++];
						continue;
					}
					break;
				}
			}
			if (i >= len && buf[o - 1] != q)
				goto unterminated;
			continue;
		}
		if ((tag = dollar_tag(sql + i)) > 0) {
			const char *end = NULL, *p;

			for (p = sql + i + tag; (p = strchr(p, '$')) != NULL; p++)
				if (strncmp(p, sql + i, tag) == 0) {
					end = p;
					break;
				}
			if (end == NULL)
				goto unterminated;
			memcpy(buf + o, sql + i, end + tag - (sql + i));
			o += end + tag - (sql + i);
			i = end + tag - sql;
			continue;
		}
		if (c == ';') {
			if (stmts_push(out, buf, o) < 0)
				goto nomem;
			o = 0;
			i++;
			continue;
		}
		buf[o++] = sql[i++];
	}
	if (stmts_push(out, buf, o) < 0)
		goto nomem;
	free(buf);
	return 0;
unterminated:
	free(buf);
	stmts_free(out);
	snprintf(err, errlen, "unterminated quote or comment");
	return -1;
nomem:
	free(buf);
	stmts_free(out);
	snprintf(err, errlen, "out of memory");
	return -1;
}

void
strv_free(char ***v, size_t *n)
{
	while (*n > 0)
		free((*v)[--*n]);
	free(*v);
	*v = NULL;
}

void
stmts_free(struct stmts *s)
{
	strv_free(&s->v, &s->n);
}

int
stmts_in_tx(const struct stmts *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (stmt_needs_autocommit(s->v[i]))
			return 0;
	return 1;
}

/* 1 when a statement must run outside a transaction block. */
int
stmt_needs_autocommit(const char *stmt)
{
	const char *p;

	for (p = stmt; *p; p++)
		if (strncasecmp(p, "concurrently", 12) == 0 &&
		    (p == stmt || !isalnum((unsigned char)p[-1])) &&
		    !isalnum((unsigned char)p[12]) && p[12] != '_')
			return 1;
	return 0;
}
