/* ops.h: what main.c, check.c, advise.c and progress.c of migrate-indexes
 * share: the run's settings, its connection, the migrations as loaded. */
#ifndef LABPULSE_MIGRATE_OPS_H
#define LABPULSE_MIGRATE_OPS_H

#include <limits.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "plan.h"

struct migrate_cfg {
	const char *conninfo;
	const char *dir;
	long lock_timeout_ms;		/* --lock-timeout */
	long lock_retries;		/* --lock-retries */
	long statement_timeout_ms;	/* --statement-timeout */
	int allow_hazard;		/* --allow-hazard */
	int json;			/* --json */
	int tty;			/* stderr is a terminal: progress lines */
};

struct migration {
	int version;
	char name[200];
	char path[PATH_MAX];
	char *sql;
	char down_path[PATH_MAX];
	char *down_sql;			/* NULL: no .down.sql beside it */
	char checksum[65];
	/* from the history */
	char state[16];		/* "" pending, applying, applied, failed, rolled_back */
	char applied_checksum[65];
	char applied_at[40];
	char error[512];
};

extern struct migrate_cfg cfg;
extern PGconn *db;

/* Run sql with text parameters on db; exit 70 (69 when the connection is
 * gone) on error unless ok_fail. The caller clears the result. */
PGresult *q(int ok_fail, const char *sql, int n, const char *const *params);
/* The same for a statement whose result is not wanted. */
void q0(const char *sql);
/* Set the session's statement_timeout to ms (0: none). */
void set_statement_timeout(long ms);

/* plan's classification of stmt alone, with no catalog: its kind, table,
 * index, whether it builds one. Returns its number of hazards. */
int stmt_item(const char *stmt, struct plan_item *it);

/* Run one statement of a migration on db. When it builds an index and
 * stderr is a terminal, a second connection polls
 * pg_stat_progress_create_index meanwhile and one line on stderr shows
 * the phase, blocks and tuples done. The caller clears the result. */
PGresult *run_stmt(const char *stmt);
/* Close the second connection, if one was opened. */
void progress_close(void);

/* The commands of check.c: exit statuses as labpulse-migrate-indexes(1)
 * says. */
int cmd_verify(struct migration *m, size_t n);
int cmd_repair(struct migration *m, size_t n);
/* Print one line for each invalid index of the current schema to stdout
 * (status); returns how many. */
int print_invalid_indexes(void);

/* advise.c: the index advice as a table, or JSON with cfg.json. */
int cmd_advise(void);

#endif
