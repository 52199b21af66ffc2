/* plan.c: what each statement of a migration will lock, whether it rewrites
 * its table, and which of squawk's hazards it has, from the SQL text: a
 * small lexer (comments, strings, dollar quotes and quoted identifiers
 * cannot fool it) and a classifier over its tokens, helped by the catalog
 * when the database is at hand. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "migrate.h"
#include "plan.h"

/* A rough figure for an index build: PostgreSQL reads and sorts the heap at
 * some tens of MB/s on a modest server; said to be an estimate wherever it
 * is shown. */
#define PLAN_BUILD_MB_PER_S 50.0

enum { T_WORD, T_QIDENT, T_STR, T_NUM, T_PUNCT };

struct tok {
	int t;
	int depth;		/* parentheses open before it */
	char *s;		/* words lowercased, quotes stripped */
};

struct toks {
	struct tok *v;
	size_t n;
};

static const char *const lock_order[] = {
	"ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE",
	"SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE", NULL
};

static int
lock_rank(const char *l)
{
	int i;

	for (i = 0; lock_order[i]; i++)
		if (strcmp(lock_order[i], l) == 0)
			return i + 1;
	return 0;
}

static void
toks_free(struct toks *k)
{
	size_t i;

	for (i = 0; i < k->n; i++)
		free(k->v[i].s);
	free(k->v);
	k->v = NULL;
	k->n = 0;
}

static int
push_tok(struct toks *k, int t, int depth, const char *s, size_t len)
{
	struct tok *v = realloc(k->v, (k->n + 1) * sizeof *v);
	char *c;
	size_t i;

	if (v == NULL)
		return -1;
	k->v = v;
	if ((c = malloc(len + 1)) == NULL)
		return -1;
	for (i = 0; i < len; i++)
		c[i] = t == T_WORD ? (char)tolower((unsigned char)s[i]) : s[i];
	c[len] = '\0';
	k->v[k->n].t = t;
	k->v[k->n].depth = depth;
	k->v[k->n].s = c;
	k->n++;
	return 0;
}

/* The text quoted by q at s[*i], a doubled q unescaped (with esc, a
 * backslash too), into buf, cut at len - 1; *i moves past the closing
 * quote. Returns the text's length. */
static size_t
unquote(const char *s, size_t *i, char q, int esc, char *buf, size_t len)
{
	size_t at, j = 0;

	for (at = *i + 1; s[at]; at++) {
		if (esc && s[at] == '\\' && s[at + 1]) {
			at++;
		} else if (s[at] == q) {
			if (s[at + 1] != q)
				break;
			at++;
		}
		if (j < len - 1)
			buf[j++] = s[at];
	}
	*i = s[at] ? at + 1 : at;
	return j;
}

static int
lex(const char *s, struct toks *k)
{
	size_t i = 0, j, tag;
	int depth = 0, rc = 0;
	char buf[512];

	k->v = NULL;
	k->n = 0;
	while (s[i] && rc == 0) {
		unsigned char c = (unsigned char)s[i];

		if (isspace(c)) {
			i++;
		} else if (c == '-' && s[i + 1] == '-') {
			while (s[i] && s[i] != '\n')
				i++;
		} else if (c == '/' && s[i + 1] == '*') {
			int d = 1;

			for (i += 2; s[i] && d > 0; i++) {
				if (s[i] == '/' && s[i + 1] == '*')
					d++, i++;
				else if (s[i] == '*' && s[i + 1] == '/')
					d--, i++;
			}
		} else if (c == '"') {
			/* a quoted identifier: its text, "" unescaped */
			j = unquote(s, &i, '"', 0, buf, sizeof buf);
			rc = push_tok(k, T_QIDENT, depth, buf, j);
		} else if (c == '\'' || ((c == 'e' || c == 'E' || c == 'b' ||
		    c == 'B' || c == 'x' || c == 'X' || c == 'n' || c == 'N') &&
		    s[i + 1] == '\'')) {
			int esc = c == 'e' || c == 'E';

			if (c != '\'')
				i++;
			j = unquote(s, &i, '\'', esc, buf, sizeof buf);
			rc = push_tok(k, T_STR, depth, buf, j);
		} else if ((tag = dollar_tag(s + i)) > 0) {
			const char *end;

			for (end = s + i + tag; (end = strchr(end, '$')) != NULL;
			    end++)
				if (strncmp(end, s + i, tag) == 0)
					break;
			j = end ? (size_t)(end - (s + i + tag)) : strlen(s + i + tag);
			rc = push_tok(k, T_STR, depth, s + i + tag,
			    j < sizeof buf ? j : sizeof buf - 1);
			i += tag + j + (end ? tag : 0);
		} else if (isalpha(c) || c == '_' || c >= 0x80) {
			for (j = i; isalnum((unsigned char)s[j]) || s[j] == '_' ||
			    s[j] == '$' || (unsigned char)s[j] >= 0x80; j++)
				;
			rc = push_tok(k, T_WORD, depth, s + i, j - i);
			i = j;
		} else if (isdigit(c) || (c == '.' && isdigit((unsigned char)s[i + 1]))) {
			for (j = i; isalnum((unsigned char)s[j]) || s[j] == '.' ||
			    s[j] == '_'; j++)
				;
			rc = push_tok(k, T_NUM, depth, s + i, j - i);
			i = j;
		} else if (c == ':' && s[i + 1] == ':') {
			rc = push_tok(k, T_PUNCT, depth, s + i, 2);
			i += 2;
		} else {
			if (c == ')' && depth > 0)
				depth--;
			rc = push_tok(k, T_PUNCT, depth, s + i, 1);
			if (c == '(')
				depth++;
			i++;
		}
	}
	return rc;
}

/* Token i is the keyword w (unquoted). */
static int
kw(const struct toks *k, size_t i, const char *w)
{
	return i < k->n && k->v[i].t == T_WORD && strcmp(k->v[i].s, w) == 0;
}

static int
punct(const struct toks *k, size_t i, const char *p)
{
	return i < k->n && k->v[i].t == T_PUNCT && strcmp(k->v[i].s, p) == 0;
}

static int
ident(const struct toks *k, size_t i)
{
	return i < k->n && (k->v[i].t == T_WORD || k->v[i].t == T_QIDENT);
}

/* One identifier as PostgreSQL would print it: quoted when it must be. */
static void
ident_out(const struct tok *t, char *out, size_t len)
{
	const char *p;
	int plain = t->t == T_WORD;

	if (!plain) {
		plain = t->s[0] != '\0' && !isdigit((unsigned char)t->s[0]);
		for (p = t->s; *p && plain; p++)
			if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p)
			    || *p == '_'))
				plain = 0;
	}
	if (plain)
		snprintf(out, len, "%s", t->s);
	else
		snprintf(out, len, "\"%s\"", t->s);
}

/* A possibly qualified name at *i (a.b.c) into out; *i moves past it.
 * "public." is left out so that public.t and t are the same table. */
static int
name_at(const struct toks *k, size_t *i, char *out, size_t len)
{
	char part[160];
	size_t o = 0;

	out[0] = '\0';
	if (!ident(k, *i))
		return 0;
	for (;;) {
		ident_out(&k->v[*i], part, sizeof part);
		o += snprintf(out + o, o < len ? len - o : 0, "%s%s",
		    o ? "." : "", part);
		(*i)++;
		if (!punct(k, *i, ".") || !ident(k, *i + 1))
			break;
		(*i)++;
	}
	if (strncmp(out, "public.", 7) == 0)
		memmove(out, out + 7, strlen(out + 7) + 1);
	return 1;
}

static void
upper_copy(char *dst, const char *src, size_t len)
{
	size_t i;

	for (i = 0; src[i] && i < len - 1; i++)
		dst[i] = (char)toupper((unsigned char)src[i]);
	dst[i] = '\0';
}

/* The context's memory of names. */
static int
remember(struct plan_ctx *c, const char *kind, const char *a, const char *b)
{
	char **v;
	char *s;
	size_t len = strlen(kind) + strlen(a) + (b ? strlen(b) + 1 : 0) + 1;

	if ((s = malloc(len)) == NULL)
		return -1;
	snprintf(s, len, "%s%s%s%s", kind, a, b ? "=" : "", b ? b : "");
	if ((v = realloc(c->names, (c->nnames + 1) * sizeof *v)) == NULL) {
		free(s);
		return -1;
	}
	c->names = v;
	c->names[c->nnames++] = s;
	return 0;
}

/* The value remembered under kind+a ("" when it has none), or NULL. */
static const char *
recall(const struct plan_ctx *c, const char *kind, const char *a)
{
	size_t i, kl = strlen(kind), al = strlen(a);

	for (i = c->nnames; i-- > 0;)
		if (strncmp(c->names[i], kind, kl) == 0 &&
		    strncmp(c->names[i] + kl, a, al) == 0 &&
		    (c->names[i][kl + al] == '\0' || c->names[i][kl + al] == '='))
			return c->names[i][kl + al] ? c->names[i] + kl + al + 1 : "";
	return NULL;
}

/* One catalog question with text parameters: 1 and the first value of the
 * first row copied to out when there is one (not null), 0 when there is
 * none, -1 when there is no database or the question failed: then each
 * caller assumes the worst, so that a lost connection hides no hazard. */
static int
ask(PGconn *db, const char *sql, int n, const char *const *p, char *out,
    size_t len)
{
	PGresult *r;
	int rc = -1;

	if (db == NULL)
		return -1;
	r = PQexecParams(db, sql, n, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK) {
		rc = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0);
		if (rc)
			snprintf(out, len, "%s", PQgetvalue(r, 0, 0));
	}
	PQclear(r);
	return rc;
}

/* Whether the table already exists, so that locking it hurts: created
 * earlier in the plan is new; with the catalog, exists when it is there;
 * without, assumed to exist. */
static int
table_exists(const struct plan_ctx *c, const char *table, int *is_new)
{
	char v[8];
	const char *p[1] = { table };

	*is_new = recall(c, "t:", table) != NULL;
	if (*is_new)
		return 0;
	return ask(c->db, "SELECT 1 WHERE to_regclass($1) IS NOT NULL", 1, p,
	    v, sizeof v) != 0;
}

static void
hazard(struct plan_item *it, const char *rule, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
hazard(struct plan_item *it, const char *rule, const char *fmt, ...)
{
	va_list ap;

	if (it->nhaz >= PLAN_MAX_HAZARDS)
		return;
	it->haz[it->nhaz].rule = rule;
	va_start(ap, fmt);
	vsnprintf(it->haz[it->nhaz].msg, sizeof it->haz[it->nhaz].msg, fmt, ap);
	va_end(ap);
	it->nhaz++;
}

static void
take_lock(struct plan_item *it, const char *lock)
{
	if (lock_rank(lock) > lock_rank(it->lock))
		it->lock = lock;
}

/* Functions whose value a fast default (PostgreSQL 11+) may store once:
 * immutable or stable. Any other call counts as volatile (a rewrite)
 * unless the catalog says otherwise. */
static const char *const not_volatile[] = {
	"now", "transaction_timestamp", "statement_timestamp", "current_date",
	"current_timestamp", "localtimestamp", "current_time", "localtime",
	"current_user", "session_user", "current_schema", "lower", "upper",
	"length", "coalesce", "nullif", "greatest", "least", "abs", "round",
	"trim", "concat", "to_char", "to_timestamp", "to_date", "make_interval",
	"jsonb_build_object", "json_build_object", "jsonb_build_array",
	"array", "row", "cast", "interval", "timestamptz", "timestamp",
	"numeric", "varchar", "char", "bit", "date", "time", NULL
};

static const char *const volatile_fn[] = {
	"random", "clock_timestamp", "gen_random_uuid", "uuid_generate_v1",
	"uuid_generate_v4", "nextval", "timeofday", "setval", "txid_current",
	NULL
};

static int
in_list(const char *const *l, const char *w)
{
	for (; *l; l++)
		if (strcmp(*l, w) == 0)
			return 1;
	return 0;
}

/* The first volatile call in tokens [a, b), into fn; 1 when found. */
static int
volatile_call(const struct plan_ctx *c, const struct toks *k, size_t a,
    size_t b, char *fn, size_t len)
{
	size_t i;
	char v[8];

	for (i = a; i < b; i++) {
		const char *p[1];

		if (k->v[i].t != T_WORD || !punct(k, i + 1, "("))
			continue;
		if (in_list(not_volatile, k->v[i].s))
			continue;
		snprintf(fn, len, "%s()", k->v[i].s);
		if (in_list(volatile_fn, k->v[i].s))
			return 1;
		p[0] = k->v[i].s;
		if (ask(c->db, "SELECT bool_or(provolatile = 'v')::text FROM"
		    " pg_proc WHERE proname = $1", 1, p, v, sizeof v) == 1 &&
		    strcmp(v, "false") == 0)
			continue;
		return 1;
	}
	return 0;
}

/* The end of the ALTER TABLE action starting at a: a comma at depth d. */
static size_t
action_end(const struct toks *k, size_t a, int d)
{
	for (; a < k->n; a++)
		if (k->v[a].depth == d && (punct(k, a, ",") || punct(k, a, ";")))
			break;
	return a;
}

static size_t
find_kw(const struct toks *k, size_t a, size_t b, const char *w)
{
	for (; a < b; a++)
		if (kw(k, a, w))
			return a;
	return b;
}

/* NOT VALID at the top level of the action [a, b) at depth d. */
static int
not_valid(const struct toks *k, size_t a, size_t b, int d)
{
	for (; a + 1 < b; a++)
		if (k->v[a].depth == d && kw(k, a, "not") && kw(k, a + 1, "valid"))
			return 1;
	return 0;
}

static const char *const serials[] = {
	"serial", "bigserial", "smallserial", "serial2", "serial4", "serial8",
	NULL
};

/* The column of CHECK (col IS NOT NULL) at a (the CHECK keyword), or 0. */
static int
check_not_null(const struct toks *k, size_t a, size_t b, char *col,
    size_t len)
{
	size_t i = a + 1, j;

	while (punct(k, i, "("))
		i++;
	if (i >= b || !ident(k, i))
		return 0;
	j = i + 1;
	if (!kw(k, j, "is") || !kw(k, j + 1, "not") || !kw(k, j + 2, "null"))
		return 0;
	for (j += 3; j < b && punct(k, j, ")"); j++)
		;
	if (j < b && !kw(k, j, "not"))
		return 0;
	ident_out(&k->v[i], col, len);
	return 1;
}

/* A valid CHECK (col IS NOT NULL) in the catalog, or one validated earlier
 * in the plan: then SET NOT NULL needs no scan (PostgreSQL 12+). */
static int
has_not_null_check(const struct plan_ctx *c, const char *table,
    const char *col)
{
	char key[300], re[300], v[8];
	const char *p[2] = { table, re };

	snprintf(key, sizeof key, "%s.%s", table, col);
	if (recall(c, "c:", key) != NULL)
		return 1;
	snprintf(re, sizeof re, "^CHECK \\(+%s IS NOT NULL\\)+$", col);
	return ask(c->db, "SELECT 1 FROM pg_constraint WHERE conrelid ="
	    " to_regclass($1) AND contype = 'c' AND convalidated AND"
	    " pg_get_constraintdef(oid) ~ $2", 2, p, v, sizeof v) == 1;
}

/* One action of an ALTER TABLE: tokens [a, e) at depth d of the table t. */
struct action {
	struct plan_ctx *c;
	const struct toks *k;
	size_t a, e;
	int d;
	const char *t;
	int exists;		/* t exists: its hazards count */
	struct plan_item *it;
	const char *what;	/* out: the kind of action */
	const char *lock;	/* out: the lock it takes */
};

/* ADD [CONSTRAINT name] CHECK (...) [NOT VALID]; j at CHECK. A validated
 * CHECK (col IS NOT NULL) is remembered for a later SET NOT NULL, a NOT
 * VALID one under its name until VALIDATE CONSTRAINT. */
static int
add_check(struct action *x, size_t j, const char *cname)
{
	char col[128], key[300];
	int nv = not_valid(x->k, j, x->e, x->d);

	x->what = "ALTER TABLE ADD CHECK";
	if (!nv && x->exists)
		hazard(x->it, "constraint-not-valid", "CHECK scans %s under "
		    "ACCESS EXCLUSIVE; add it NOT VALID, then VALIDATE "
		    "CONSTRAINT", x->t);
	if (!check_not_null(x->k, j, x->e, col, sizeof col))
		return 0;
	if (!nv) {
		snprintf(key, sizeof key, "%s.%s", x->t, col);
		return remember(x->c, "c:", key, NULL);
	}
	if (cname[0] == '\0')
		return 0;
	snprintf(key, sizeof key, "%s.%s", x->t, cname);
	return remember(x->c, "k:", key, col);
}

/* ADD [COLUMN] [IF NOT EXISTS] col type ...; j after ADD. */
static void
add_column(struct action *x, size_t j)
{
	const struct toks *k = x->k;
	char col[128], fn[64];
	size_t df, end;

	x->what = "ALTER TABLE ADD COLUMN";
	if (kw(k, j, "column"))
		j++;
	if (kw(k, j, "if") && kw(k, j + 2, "exists"))
		j += 3;
	ident_out(&k->v[j < x->e ? j : x->a], col, sizeof col);
	/* the default runs up to the column's next constraint */
	df = find_kw(k, j, x->e, "default");
	for (end = df + 1; end < x->e; end++)
		if (k->v[end].depth == x->d && (kw(k, end, "not") ||
		    kw(k, end, "null") || kw(k, end, "constraint") ||
		    kw(k, end, "check") || kw(k, end, "unique") ||
		    kw(k, end, "primary") || kw(k, end, "references") ||
		    kw(k, end, "collate")))
			break;
	if (df < x->e && volatile_call(x->c, k, df + 1, end, fn, sizeof fn)) {
		x->it->rewrite = 1;
		if (x->exists)
			hazard(x->it, "volatile-default", "DEFAULT %s is "
			    "volatile: rewrites %s under ACCESS EXCLUSIVE; add "
			    "the column without it, SET DEFAULT, backfill in "
			    "batches", fn, x->t);
	} else if (j + 1 < x->e && (in_list(serials, k->v[j + 1].s) ||
	    (find_kw(k, j, x->e, "generated") < x->e &&
	    find_kw(k, j, x->e, "stored") < x->e))) {
		x->it->rewrite = 1;
		if (x->exists)
			hazard(x->it, "volatile-default", "column %s is filled "
			    "per row: rewrites %s under ACCESS EXCLUSIVE; add it "
			    "plain, backfill in batches", col, x->t);
	}
}

/* ADD ...: a constraint or a column. */
static int
alter_add(struct action *x)
{
	const struct toks *k = x->k;
	char cname[128] = "";
	size_t j = x->a + 1;

	if (kw(k, j, "constraint") && ident(k, j + 1)) {
		ident_out(&k->v[j + 1], cname, sizeof cname);
		j += 2;
	}
	if (kw(k, j, "check"))
		return add_check(x, j, cname);
	if (kw(k, j, "foreign")) {
		x->what = "ALTER TABLE ADD FOREIGN KEY";
		x->lock = "SHARE ROW EXCLUSIVE";
		if (!not_valid(k, j, x->e, x->d) && x->exists)
			hazard(x->it, "constraint-not-valid", "FOREIGN KEY scans "
			    "%s and blocks its writes; add it NOT VALID, then "
			    "VALIDATE CONSTRAINT", x->t);
	} else if (kw(k, j, "unique") || kw(k, j, "primary")) {
		int uniq = kw(k, j, "unique");

		x->what = uniq ? "ALTER TABLE ADD UNIQUE" :
		    "ALTER TABLE ADD PRIMARY KEY";
		/* UNIQUE USING INDEX adopts a built index; USING INDEX
		 * TABLESPACE after the columns still builds one */
		if (!kw(k, j + (uniq ? 1 : 2), "using") && x->exists)
			hazard(x->it, "unique-constraint", "%s builds its index "
			    "under ACCESS EXCLUSIVE on %s; CREATE UNIQUE INDEX "
			    "CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX",
			    uniq ? "UNIQUE" : "PRIMARY KEY", x->t);
	} else if (kw(k, j, "exclude")) {
		x->what = "ALTER TABLE ADD EXCLUDE";
	} else {
		add_column(x, j);
	}
	return 0;
}

/* ALTER [COLUMN] col ... */
static void
alter_column(struct action *x)
{
	const struct toks *k = x->k;
	char col[128] = "";
	size_t j = x->a + 1;

	if (kw(k, j, "column"))
		j++;
	if (ident(k, j))
		ident_out(&k->v[j], col, sizeof col);
	j++;
	x->what = "ALTER TABLE ALTER COLUMN";
	if (kw(k, j, "type") || (kw(k, j, "set") && kw(k, j + 1, "data") &&
	    kw(k, j + 2, "type"))) {
		x->what = "ALTER TABLE ALTER COLUMN TYPE";
		x->it->rewrite = 1;
		if (x->exists)
			hazard(x->it, "column-type-change", "changing the type "
			    "of %s rewrites %s and its indexes under ACCESS "
			    "EXCLUSIVE; add a new column, backfill, switch", col,
			    x->t);
	} else if (kw(k, j, "set") && kw(k, j + 1, "not") &&
	    kw(k, j + 2, "null")) {
		x->what = "ALTER TABLE SET NOT NULL";
		if (x->exists && !has_not_null_check(x->c, x->t, col))
			hazard(x->it, "set-not-null", "SET NOT NULL scans %s "
			    "under ACCESS EXCLUSIVE; first ADD CHECK (%s IS NOT "
			    "NULL) NOT VALID and VALIDATE it", x->t, col);
	} else if (kw(k, j, "set") && kw(k, j + 1, "statistics")) {
		x->what = "ALTER TABLE SET STATISTICS";
		x->lock = "SHARE UPDATE EXCLUSIVE";
	} else if (kw(k, j, "set") && kw(k, j + 1, "default")) {
		x->what = "ALTER TABLE SET DEFAULT";
	} else if (kw(k, j, "drop") && kw(k, j + 1, "default")) {
		x->what = "ALTER TABLE DROP DEFAULT";
	} else if (kw(k, j, "drop") && kw(k, j + 1, "not")) {
		x->what = "ALTER TABLE DROP NOT NULL";
	}
}

/* VALIDATE CONSTRAINT name: a NOT VALID CHECK (col IS NOT NULL) of that
 * name now counts for SET NOT NULL. */
static int
alter_validate(struct action *x)
{
	const struct toks *k = x->k;
	char cname[128], key[300];
	const char *col;
	size_t j = x->a;

	x->what = "ALTER TABLE VALIDATE CONSTRAINT";
	x->lock = "SHARE UPDATE EXCLUSIVE";
	if (!kw(k, j + 1, "constraint") || !ident(k, j + 2))
		return 0;
	ident_out(&k->v[j + 2], cname, sizeof cname);
	snprintf(key, sizeof key, "%s.%s", x->t, cname);
	if ((col = recall(x->c, "k:", key)) == NULL)
		return 0;
	snprintf(key, sizeof key, "%s.%s", x->t, col);
	return remember(x->c, "c:", key, NULL);
}

/* ALTER TABLE [IF EXISTS] [ONLY] name action [, action ...]: the strongest
 * lock of its actions, the kind of the first. */
static int
plan_alter_table(struct plan_ctx *c, const struct toks *k, size_t i,
    struct plan_item *it)
{
	struct action x;
	char t[128];
	const char *first = NULL;
	int isnew, nact = 0, rc = 0;

	if (kw(k, i, "if") && kw(k, i + 1, "exists"))
		i += 2;
	if (kw(k, i, "only"))
		i++;
	if (!name_at(k, &i, t, sizeof t))
		return 0;
	snprintf(it->table, sizeof it->table, "%s", t);
	memset(&x, 0, sizeof x);
	x.c = c;
	x.k = k;
	x.t = t;
	x.it = it;
	x.exists = table_exists(c, t, &isnew);
	it->new_table = isnew;
	x.d = i < k->n ? k->v[i].depth : 0;
	for (x.a = i; x.a < k->n && rc == 0; x.a = x.e + 1) {
		x.e = action_end(k, x.a, x.d);
		if (x.a >= x.e)
			continue;
		x.what = "ALTER TABLE";
		x.lock = "ACCESS EXCLUSIVE";
		nact++;
		if (kw(k, x.a, "add"))
			rc = alter_add(&x);
		else if (kw(k, x.a, "alter"))
			alter_column(&x);
		else if (kw(k, x.a, "validate"))
			rc = alter_validate(&x);
		else if (kw(k, x.a, "drop"))
			x.what = kw(k, x.a + 1, "constraint") ?
			    "ALTER TABLE DROP CONSTRAINT" :
			    "ALTER TABLE DROP COLUMN";
		else if (kw(k, x.a, "rename"))
			x.what = "ALTER TABLE RENAME";
		else if (kw(k, x.a, "cluster") || (kw(k, x.a, "set") &&
		    (punct(k, x.a + 1, "(") || kw(k, x.a + 1, "without")))) {
			x.what = "ALTER TABLE SET";
			x.lock = "SHARE UPDATE EXCLUSIVE";
		}
		if (first == NULL)
			first = x.what;
		take_lock(it, x.lock);
	}
	snprintf(it->kind, sizeof it->kind, "%s%s",
	    first ? first : "ALTER TABLE", nact > 1 ? " (and more)" : "");
	return rc < 0 ? -1 : 0;
}

static void
concurrently_checks(const struct plan_ctx *c, struct plan_item *it)
{
	if (c->in_tx || c->explicit_tx)
		hazard(it, "concurrently-in-transaction", "%s CONCURRENTLY "
		    "cannot run inside a transaction block; keep it out of "
		    "BEGIN ... COMMIT", it->kind);
}

static int
plan_index(struct plan_ctx *c, const struct toks *k, size_t i,
    struct plan_item *it)
{
	int conc = 0, ine = 0, exists, isnew;
	char v[8];

	snprintf(it->kind, sizeof it->kind, "%s", kw(k, 1, "unique") ?
	    "CREATE UNIQUE INDEX" : "CREATE INDEX");
	it->index_build = 1;
	if (kw(k, i, "concurrently"))
		conc = 1, i++;
	if (kw(k, i, "if") && kw(k, i + 1, "not") && kw(k, i + 2, "exists"))
		ine = 1, i += 3;
	if (!kw(k, i, "on"))
		name_at(k, &i, it->index, sizeof it->index);
	if (kw(k, i, "on"))
		i++;
	if (kw(k, i, "only"))
		i++;
	name_at(k, &i, it->table, sizeof it->table);
	it->lock = conc ? "SHARE UPDATE EXCLUSIVE" : "SHARE";
	exists = table_exists(c, it->table, &isnew);
	it->new_table = isnew;
	if (!conc && exists)
		hazard(it, "index-not-concurrent", "%s without CONCURRENTLY "
		    "blocks writes to %s for the whole build; use %s "
		    "CONCURRENTLY", it->kind, it->table, it->kind);
	if (conc)
		concurrently_checks(c, it);
	if (conc && ine && it->index[0]) {
		const char *p[1] = { it->index };
		int invalid;

		/* With the catalog the leftover is known: only an INVALID index
		 * of that name makes IF NOT EXISTS skip the build. */
		invalid = ask(c->db, "SELECT 1 FROM pg_index WHERE indexrelid ="
		    " to_regclass($1) AND NOT indisvalid", 1, p, v, sizeof v);
		if (invalid < 0)
			hazard(it, "concurrently-if-not-exists", "IF NOT EXISTS "
			    "skips an INVALID %s left by a failed build; check "
			    "(status, repair) before a rerun", it->index);
		else if (invalid)
			hazard(it, "concurrently-if-not-exists", "%s exists and "
			    "is INVALID: IF NOT EXISTS skips it; DROP INDEX "
			    "CONCURRENTLY %s first (or run repair)", it->index,
			    it->index);
	}
	if (it->index[0])
		return remember(c, "i:", it->index, it->table);
	return 0;
}

/* The table of index it->index, into it->table: one built earlier in the
 * plan, else the catalog's. 1 when that table exists (or cannot be told:
 * assume the worse), with *isnew when the plan created it. */
static int
index_table(struct plan_ctx *c, struct plan_item *it, int *isnew)
{
	const char *known;

	if ((known = recall(c, "i:", it->index)) != NULL) {
		snprintf(it->table, sizeof it->table, "%s", known);
		return table_exists(c, it->table, isnew);
	}
	if (c->db != NULL) {
		const char *p[1] = { it->index };

		return ask(c->db, "SELECT indrelid::regclass::text FROM"
		    " pg_index WHERE indexrelid = to_regclass($1)", 1, p,
		    it->table, sizeof it->table) != 0;
	}
	return 1;
}

/* What a statement that may say CONCURRENTLY risks without it. */
struct blocking {
	const char *lock;	/* the lock it takes without */
	const char *rule;
	const char *msg;	/* the hazard; %s: the table */
	const char *unnamed;	/* the table in msg when it is not known */
};

static const struct blocking drop_blocks = {
	"ACCESS EXCLUSIVE", "drop-index-not-concurrent", "DROP INDEX without "
	"CONCURRENTLY takes ACCESS EXCLUSIVE on %s, blocking reads and writes; "
	"use DROP INDEX CONCURRENTLY", "its table"
};

static const struct blocking reindex_blocks = {
	"SHARE", "reindex-not-concurrent", "REINDEX without CONCURRENTLY "
	"blocks writes to %s (and reads using the index); use REINDEX ... "
	"CONCURRENTLY", "the table"
};

/* The lock of it, and its hazards: without CONCURRENTLY, b's when its
 * table exists; with, the one of a transaction block. */
static void
concurrency(const struct plan_ctx *c, struct plan_item *it, int conc,
    int exists, const struct blocking *b)
{
	it->lock = conc ? "SHARE UPDATE EXCLUSIVE" : b->lock;
	if (!conc && exists)
		hazard(it, b->rule, b->msg, it->table[0] ? it->table :
		    b->unnamed);
	if (conc)
		concurrently_checks(c, it);
}

static void
plan_drop_index(struct plan_ctx *c, const struct toks *k, size_t i,
    struct plan_item *it)
{
	int conc = 0, exists, isnew = 0;

	snprintf(it->kind, sizeof it->kind, "DROP INDEX");
	if (kw(k, i, "concurrently"))
		conc = 1, i++;
	if (kw(k, i, "if") && kw(k, i + 1, "exists"))
		i += 2;
	name_at(k, &i, it->index, sizeof it->index);
	exists = index_table(c, it, &isnew);
	it->new_table = isnew;
	concurrency(c, it, conc, exists, &drop_blocks);
}

static void
plan_reindex(struct plan_ctx *c, const struct toks *k, size_t i,
    struct plan_item *it)
{
	int conc = 0, exists, isnew = 0, what_index;

	snprintf(it->kind, sizeof it->kind, "REINDEX");
	if (punct(k, i, "(")) {
		while (i < k->n && !punct(k, i, ")"))
			i++;
		i++;
	}
	what_index = kw(k, i, "index");
	i++;
	if (kw(k, i, "concurrently"))
		conc = 1, i++;
	it->index_build = 1;
	if (what_index) {
		name_at(k, &i, it->index, sizeof it->index);
		exists = index_table(c, it, &isnew);
	} else {
		name_at(k, &i, it->table, sizeof it->table);
		exists = table_exists(c, it->table, &isnew);
	}
	it->new_table = isnew;
	concurrency(c, it, conc, exists, &reindex_blocks);
}

/* SET [SESSION|LOCAL] lock_timeout|statement_timeout = 0 | DEFAULT, RESET:
 * up's finite timeouts undone. */
static void
plan_set(const struct toks *k, size_t i, struct plan_item *it, int reset)
{
	const char *name;
	const struct tok *v;
	const char *p;
	int zero;

	if (kw(k, i, "session") || kw(k, i, "local"))
		i++;
	if (!kw(k, i, "lock_timeout") && !kw(k, i, "statement_timeout"))
		return;
	name = k->v[i].s;
	i++;
	if (reset) {
		hazard(it, "timeout-zero", "RESET %s drops the finite timeout up "
		    "sets; leave it to up (--%s)", name,
		    strcmp(name, "lock_timeout") == 0 ? "lock-timeout" :
		    "statement-timeout");
		return;
	}
	if (kw(k, i, "to") || punct(k, i, "="))
		i++;
	if (i >= k->n)
		return;
	v = &k->v[i];
	zero = v->t == T_WORD && strcmp(v->s, "default") == 0;
	if (v->t == T_NUM || v->t == T_STR) {
		for (p = v->s; *p == '0' || *p == '.'; p++)
			;
		zero = p != v->s && (*p == '\0' || isalpha((unsigned char)*p));
	}
	if (zero && strcmp(name, "lock_timeout") == 0)
		hazard(it, "timeout-zero", "lock_timeout = %s: a statement waits "
		    "for its lock without bound, and every query queued behind "
		    "it stalls; leave it to up (--lock-timeout)", v->s);
	else if (zero && strcmp(name, "statement_timeout") == 0)
		hazard(it, "timeout-zero", "statement_timeout = %s: a statement "
		    "may hold its locks without bound; leave it to up "
		    "(--statement-timeout)", v->s);
}

int
plan_stmt(struct plan_ctx *c, const char *stmt, struct plan_item *out)
{
	struct toks k;
	size_t i = 1;
	int rc = 0;

	memset(out, 0, sizeof *out);
	out->lock = "";
	out->in_tx = c->in_tx || c->explicit_tx;
	if (lex(stmt, &k) < 0) {
		toks_free(&k);
		return -1;
	}
	if (k.n == 0 || k.v[0].t != T_WORD) {
		snprintf(out->kind, sizeof out->kind, "?");
		goto done;
	}
	if (kw(&k, 0, "create")) {
		if (kw(&k, 1, "or") && kw(&k, 2, "replace"))
			i = 3;
		if (kw(&k, i, "unique"))
			i++;
		if (kw(&k, i, "index")) {
			if (plan_index(c, &k, i + 1, out) < 0)
				rc = -1;
			goto done;
		}
		while (kw(&k, i, "temp") || kw(&k, i, "temporary") ||
		    kw(&k, i, "unlogged") || kw(&k, i, "global") ||
		    kw(&k, i, "local"))
			i++;
		if (kw(&k, i, "table")) {
			i++;
			if (kw(&k, i, "if") && kw(&k, i + 2, "exists"))
				i += 3;
			snprintf(out->kind, sizeof out->kind, "CREATE TABLE");
			name_at(&k, &i, out->table, sizeof out->table);
			out->lock = "ACCESS EXCLUSIVE";
			out->new_table = 1;
			if (recall(c, "t:", out->table) == NULL &&
			    remember(c, "t:", out->table, NULL) < 0)
				rc = -1;
			goto done;
		}
		snprintf(out->kind, sizeof out->kind, "CREATE %s",
		    i < k.n ? k.v[i].s : "");
		upper_copy(out->kind, out->kind, sizeof out->kind);
	} else if (kw(&k, 0, "alter") && kw(&k, 1, "table")) {
		if (plan_alter_table(c, &k, 2, out) < 0)
			rc = -1;
		goto done;
	} else if (kw(&k, 0, "drop") && kw(&k, 1, "index")) {
		plan_drop_index(c, &k, 2, out);
		goto done;
	} else if (kw(&k, 0, "reindex")) {
		plan_reindex(c, &k, 1, out);
		goto done;
	} else if (kw(&k, 0, "drop") && kw(&k, 1, "table")) {
		i = 2;
		if (kw(&k, i, "if") && kw(&k, i + 1, "exists"))
			i += 2;
		snprintf(out->kind, sizeof out->kind, "DROP TABLE");
		name_at(&k, &i, out->table, sizeof out->table);
		out->lock = "ACCESS EXCLUSIVE";
		goto done;
	} else if (kw(&k, 0, "begin") || (kw(&k, 0, "start") &&
	    kw(&k, 1, "transaction"))) {
		c->explicit_tx = 1;
	} else if (kw(&k, 0, "commit") || kw(&k, 0, "end") ||
	    kw(&k, 0, "rollback") || kw(&k, 0, "abort")) {
		c->explicit_tx = 0;
	} else if (kw(&k, 0, "set")) {
		plan_set(&k, 1, out, 0);
	} else if (kw(&k, 0, "reset")) {
		plan_set(&k, 1, out, 1);
	} else if (kw(&k, 0, "insert") || kw(&k, 0, "update") ||
	    kw(&k, 0, "delete") || kw(&k, 0, "merge") || kw(&k, 0, "copy")) {
		out->lock = "ROW EXCLUSIVE";
		i = kw(&k, 0, "insert") || kw(&k, 0, "merge") ||
		    (kw(&k, 0, "delete") && kw(&k, 1, "from")) ? 2 : 1;
		if (kw(&k, i, "into") || kw(&k, i, "only"))
			i++;
		name_at(&k, &i, out->table, sizeof out->table);
	} else if (kw(&k, 0, "truncate")) {
		out->lock = "ACCESS EXCLUSIVE";
		if (kw(&k, i, "table"))
			i++;
		name_at(&k, &i, out->table, sizeof out->table);
	} else if (kw(&k, 0, "vacuum") || kw(&k, 0, "analyze") ||
	    kw(&k, 0, "cluster")) {
		int full = kw(&k, 0, "cluster") ||
		    find_kw(&k, 1, k.n, "full") < k.n;

		out->lock = full ? "ACCESS EXCLUSIVE" :
		    "SHARE UPDATE EXCLUSIVE";
		out->rewrite = full;
		while (i < k.n && (punct(&k, i, "(") || k.v[i].depth > 0 ||
		    kw(&k, i, "full") || kw(&k, i, "verbose") || kw(&k, i,
		    "analyze") || kw(&k, i, "freeze")))
			i++;
		name_at(&k, &i, out->table, sizeof out->table);
	} else if (kw(&k, 0, "lock")) {
		char mode[32];

		if (kw(&k, i, "table"))
			i++;
		name_at(&k, &i, out->table, sizeof out->table);
		out->lock = "ACCESS EXCLUSIVE";
		if (kw(&k, i, "in")) {
			size_t m = i + 1, o = 0;

			mode[0] = '\0';
			for (; m < k.n && !kw(&k, m, "mode"); m++)
				o += snprintf(mode + o, o < sizeof mode ?
				    sizeof mode - o : 0, "%s%s", o ? " " : "",
				    k.v[m].s);
			upper_copy(mode, mode, sizeof mode);
			if (lock_rank(mode))
				out->lock = lock_order[lock_rank(mode) - 1];
		}
	} else if (kw(&k, 0, "select") || kw(&k, 0, "with")) {
		out->lock = "ACCESS SHARE";
	}
	/* anything else: its first word, and the second when the first
	 * alone says little (ALTER INDEX, DROP VIEW) */
	if (out->kind[0] == '\0') {
		if ((kw(&k, 0, "alter") || kw(&k, 0, "drop") ||
		    kw(&k, 0, "comment")) && k.n > 1 && k.v[1].t == T_WORD)
			snprintf(out->kind, sizeof out->kind, "%s %s", k.v[0].s,
			    k.v[1].s);
		else
			snprintf(out->kind, sizeof out->kind, "%s", k.v[0].s);
		upper_copy(out->kind, out->kind, sizeof out->kind);
	}
done:
	if (out->table[0] && !out->new_table)
		out->new_table = recall(c, "t:", out->table) != NULL;
	toks_free(&k);
	return rc < 0 ? -1 : (int)out->nhaz;
}

/* The line each statement starts on, read as split_sql reads the file. */
static void
stmt_lines(const char *sql, int *lines, size_t n)
{
	size_t i = 0, k = 0, tag;
	int line = 1, seen = 0, start = 0;
	const char *e;

	while (sql[i] && k < n) {
		char c = sql[i];

		if (c == '\n') {
			line++;
			i++;
			continue;
		}
		if (c == '-' && sql[i + 1] == '-') {
			while (sql[i] && sql[i] != '\n')
				i++;
			continue;
		}
		if (c == '/' && sql[i + 1] == '*') {
			int d = 1;

			for (i += 2; sql[i] && d > 0; i++) {
				if (sql[i] == '\n')
					line++;
				else if (sql[i] == '/' && sql[i + 1] == '*')
					d++, i++;
				else if (sql[i] == '*' && sql[i + 1] == '/')
					d--, i++;
			}
			continue;
		}
		if (c == ';') {
			if (seen)
				lines[k++] = start;
			seen = 0;
			i++;
			continue;
		}
		if (!isspace((unsigned char)c) && !seen)
			seen = 1, start = line;
		if (c == '\'' || c == '"') {
			for (i++; sql[i]; i++) {
				if (sql[i] == '\n')
					line++;
				if (sql[i] == c) {
					if (sql[i + 1] != c)
						break;
					i++;
				}
			}
			if (sql[i])
				i++;
			continue;
		}
		if ((tag = dollar_tag(sql + i)) > 0) {
			for (e = sql + i + tag; (e = strchr(e, '$')) != NULL; e++)
				if (strncmp(e, sql + i, tag) == 0)
					break;
			if (e == NULL)
				break;
			for (; sql + i < e + tag; i++)
				if (sql[i] == '\n')
					line++;
			continue;
		}
		i++;
	}
	if (seen && k < n)
		lines[k++] = start;
	while (k < n)
		lines[k++] = 0;
}

void
plan_init(struct plan_ctx *c, PGconn *db)
{
	memset(c, 0, sizeof *c);
	c->db = db;
}

void
plan_ctx_free(struct plan_ctx *c)
{
	strv_free(&c->names, &c->nnames);
}

int
plan_file_tx(const char *sql, char *err, size_t errlen)
{
	struct stmts s;
	int tx;

	if (split_sql(sql, &s, err, errlen) < 0)
		return -1;
	tx = stmts_in_tx(&s);
	stmts_free(&s);
	return tx;
}

int
plan_file(struct plan_ctx *c, const char *sql, struct plan_item **items,
    size_t *n, char *err, size_t errlen)
{
	struct stmts s;
	struct plan_item *v;
	int *lines, h, total = 0;
	size_t i;

	*items = NULL;
	*n = 0;
	if (split_sql(sql, &s, err, errlen) < 0)
		return -1;
	c->in_tx = stmts_in_tx(&s);
	c->explicit_tx = 0;
	v = calloc(s.n ? s.n : 1, sizeof *v);
	lines = calloc(s.n ? s.n : 1, sizeof *lines);
	if (v == NULL || lines == NULL) {
		free(v);
		free(lines);
		stmts_free(&s);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	stmt_lines(sql, lines, s.n);
	for (i = 0; i < s.n; i++) {
		if ((h = plan_stmt(c, s.v[i], &v[i])) < 0) {
			free(v);
			free(lines);
			stmts_free(&s);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		v[i].stmt = (int)i + 1;
		v[i].line = lines[i];
		total += h;
	}
	free(lines);
	*items = v;
	*n = s.n;
	stmts_free(&s);
	return total;
}

struct tstat {
	int known;		/* 1: in the catalog */
	double rows;		/* reltuples, -1 never analyzed */
	long long total;	/* pg_total_relation_size */
	long long heap;		/* pg_relation_size */
	char pretty[32];
};

static int
table_stat(PGconn *db, const char *table, struct tstat *st)
{
	const char *p[1] = { table };
	PGresult *r;

	memset(st, 0, sizeof *st);
	if (db == NULL || table[0] == '\0')
		return -1;
	r = PQexecParams(db, "SELECT c.reltuples, pg_total_relation_size(c.oid),"
	    " pg_relation_size(c.oid), pg_size_pretty(pg_total_relation_size(c.oid))"
	    " FROM pg_class c WHERE c.oid = to_regclass($1)", 1, NULL, p, NULL,
	    NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		st->known = 1;
		st->rows = atof(PQgetvalue(r, 0, 0));
		st->total = atoll(PQgetvalue(r, 0, 1));
		st->heap = atoll(PQgetvalue(r, 0, 2));
		snprintf(st->pretty, sizeof st->pretty, "%s", PQgetvalue(r, 0, 3));
	}
	PQclear(r);
	return st->known ? 0 : -1;
}

static double
build_seconds(const struct tstat *st)
{
	return st->heap / (PLAN_BUILD_MB_PER_S * 1024 * 1024);
}

static void
json_str(FILE *out, const char *s)
{
	size_t len = strlen(s);
	char *b = malloc(json_encoded_len(s, len));

	if (b == NULL) {
		fputs("null", out);
		return;
	}
	fwrite(b, 1, json_encode(s, len, b), out);
	free(b);
}

/* s as a JSON string, or null when empty. */
static void
json_opt(FILE *out, const char *key, const char *s)
{
	fprintf(out, ",\"%s\":", key);
	if (s[0])
		json_str(out, s);
	else
		fputs("null", out);
}

static void
print_json(FILE *out, const struct plan_item *it, const struct tstat *st,
    int first)
{
	size_t h;

	fprintf(out, "%s{\"statement\":%d,\"line\":%d", first ? "" : ",",
	    it->stmt, it->line);
	json_opt(out, "kind", it->kind);
	json_opt(out, "table", it->table);
	json_opt(out, "index", it->index);
	json_opt(out, "lock", it->lock);
	fprintf(out, ",\"rewrite\":%s,\"new_table\":%s",
	    it->rewrite ? "true" : "false", it->new_table ? "true" : "false");
	if (st != NULL) {
		fprintf(out, ",\"rows_estimate\":%.0f,\"bytes\":%lld", st->rows,
		    st->total);
		if (it->index_build)
			fprintf(out, ",\"build_seconds_estimate\":%.1f",
			    build_seconds(st));
	}
	fputs(",\"hazards\":[", out);
	for (h = 0; h < it->nhaz; h++) {
		fprintf(out, "%s{\"rule\":", h ? "," : "");
		json_str(out, it->haz[h].rule);
		fputs(",\"message\":", out);
		json_str(out, it->haz[h].msg);
		fputs("}", out);
	}
	fputs("]}", out);
}

static void
print_text(FILE *out, const struct plan_item *it, const struct tstat *st)
{
	size_t h;

	fprintf(out, "  line %d: %s%s%s%s%s: lock %s%s\n", it->line,
	    it->kind, it->index[0] ? " " : "", it->index,
	    it->table[0] ? " on " : "", it->table,
	    it->lock[0] ? it->lock : "none",
	    it->rewrite ? ", rewrites the table" :
	    it->new_table ? " (new table)" : "");
	if (st != NULL) {
		/* reltuples is -1 until the first VACUUM or ANALYZE */
		if (st->rows < 0)
			fprintf(out, "    %s: rows not estimated yet (never "
			    "analyzed), %s", it->table, st->pretty);
		else
			fprintf(out, "    %s: about %.0f rows, %s", it->table,
			    st->rows, st->pretty);
		if (it->index_build && build_seconds(st) < 0.1)
			fprintf(out, "; build under 0.1 s (estimate: heap at "
			    "%.0f MB/s)", PLAN_BUILD_MB_PER_S);
		else if (it->index_build)
			fprintf(out, "; build about %.1f s (estimate: heap at "
			    "%.0f MB/s)", build_seconds(st),
			    PLAN_BUILD_MB_PER_S);
		fputc('\n', out);
	}
	for (h = 0; h < it->nhaz; h++)
		fprintf(out, "    hazard %s: %s\n", it->haz[h].rule,
		    it->haz[h].msg);
}

int
plan_print(FILE *out, PGconn *db, const char *name,
    const struct plan_item *items, size_t n, int json)
{
	struct tstat st;
	size_t i, total = 0;
	int tx = n > 0 ? items[0].in_tx : 1, have;

	for (i = 0; i < n; i++)
		total += items[i].nhaz;
	if (json) {
		fputs("{\"migration\":", out);
		json_str(out, name);
		fprintf(out, ",\"transaction\":%s,\"hazards\":%zu,"
		    "\"statements\":[", tx ? "true" : "false", total);
	} else {
		fprintf(out, "%s: %zu statement%s, %s, %zu hazard%s\n", name, n,
		    n == 1 ? "" : "s", tx ? "in a transaction" :
		    "outside a transaction, one by one", total,
		    total == 1 ? "" : "s");
	}
	for (i = 0; i < n; i++) {
		/* a new table has no size yet, or an old one of that name */
		have = !items[i].new_table &&
		    table_stat(db, items[i].table, &st) == 0;
		if (json)
			print_json(out, &items[i], have ? &st : NULL, i == 0);
		else
			print_text(out, &items[i], have ? &st : NULL);
	}
	if (json)
		fputs("]}\n", out);
	return (int)total;
}

int
plan_migration(FILE *out, struct plan_ctx *c, const char *name,
    const char *sql, int json, char *err, size_t errlen)
{
	struct plan_item *items;
	size_t n;
	int h;

	if ((h = plan_file(c, sql, &items, &n, err, errlen)) < 0)
		return -1;
	if (out != NULL)
		plan_print(out, c->db, name, items, n, json);
	free(items);
	return h;
}
