/* plan.h: what a migration will do to a live database before it runs: per
 * statement the lock it takes, whether it rewrites the table, and its
 * hazards, from a classifier over the SQL text (libpg_query is not in
 * Debian). */
#ifndef LABPULSE_PLAN_H
#define LABPULSE_PLAN_H

#include <stddef.h>
#include <stdio.h>

#include <libpq-fe.h>

#define PLAN_MAX_HAZARDS 8

struct plan_hazard {
	const char *rule;	/* stable id, e.g. "index-not-concurrent" */
	char msg[256];		/* why, and what to do instead */
};

struct plan_item {
	int stmt;		/* 1-based number of the statement in its file */
	int line;		/* line of the file it starts on, 0 unknown */
	char kind[48];		/* "CREATE INDEX", "ALTER TABLE ADD COLUMN", ... */
	char table[128];	/* the table it locks as written, "" none */
	char index[128];	/* the index it builds or drops, "" none */
	const char *lock;	/* PostgreSQL's lock level name, "" none */
	int rewrite;		/* 1: rewrites the whole table */
	int index_build;	/* 1: builds an index (a build time is estimated) */
	int new_table;		/* 1: the table is created earlier in the plan */
	int in_tx;		/* 1: runs inside a transaction */
	size_t nhaz;
	struct plan_hazard haz[PLAN_MAX_HAZARDS];
};

/* What the statements planned so far leave behind, for the ones after:
 * tables created earlier in the plan (new, so no hazard), validated
 * NOT NULL checks, an explicit BEGIN. One context serves a whole run of
 * plan, so that a table created by an earlier pending migration is new in
 * the later ones. */
struct plan_ctx {
	PGconn *db;		/* NULL: plan without the catalog */
	int in_tx;		/* the file being planned runs in a transaction */
	int explicit_tx;	/* a BEGIN was seen and no COMMIT yet */
	/* "t:table" created, "i:index=table" built, "c:table.col" has a
	 * validated NOT NULL check, "k:table.constraint=col" a NOT VALID one */
	char **names;
	size_t nnames;
};

/* Start a context; db may be NULL (then a table exists unless created
 * earlier in the plan, and no size is shown). */
void plan_init(struct plan_ctx *c, PGconn *db);
/* Free what the context holds (not the connection). */
void plan_ctx_free(struct plan_ctx *c);

/* 1 when the file runs in one transaction, 0 when its statements run one
 * by one (one of them has CONCURRENTLY: as migrate-indexes up decides),
 * -1 when it cannot be split (err filled). */
int plan_file_tx(const char *sql, char *err, size_t errlen);

/* Classify one statement (comments and literals do not fool it) into out,
 * updating c for the statements after it. Returns the number of hazards
 * found, or -1 when out of memory (out still filled as far as it goes). */
int plan_stmt(struct plan_ctx *c, const char *stmt, struct plan_item *out);

/* Plan a whole file: split it, set c->in_tx as up would run it, classify
 * each statement. *items is malloc'ed (free() it), *n its length.
 * Returns the number of hazards, or -1 with err filled when the file
 * cannot be split or memory runs out. */
int plan_file(struct plan_ctx *c, const char *sql, struct plan_item **items,
    size_t *n, char *err, size_t errlen);

/* Print the plan of one migration called name to out, as text lines or as
 * one JSON object a migration (json). With db (may be NULL) each table's
 * size and row estimate and an estimated build time for index builds.
 * Returns the number of hazards. */
int plan_print(FILE *out, PGconn *db, const char *name,
    const struct plan_item *items, size_t n, int json);

/* plan_file then plan_print (out NULL: print nothing), for main.c's plan
 * (each pending migration, or each FILE, in order, with one context) and
 * for up's refusal of a hazardous migration. Returns the number of
 * hazards, or -1 with err filled (the file cannot be parsed: exit 65). */
int plan_migration(FILE *out, struct plan_ctx *c, const char *name,
    const char *sql, int json, char *err, size_t errlen);

#endif
