/* ops.h: what the files of migrate-indexes share: the run's settings, its
 * connection, the migrations as loaded, the commands. */
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
	int optional;			/* of DIR/optional: applied by add only */
	char checksum[65];
	/* from the history */
	char state[16];		/* "" pending, applying, applied, failed, rolled_back */
	char applied_checksum[65];
	char applied_at[40];
	char error[512];
};

/* What a command works on: the migrations loaded (none for advise, nor
 * for plan of files) and its operands. */
struct job {
	struct migration *m;
	size_t n;
	char **args;
	int nargs;
	long down_n;			/* down N */
};

extern struct migrate_cfg cfg;
extern PGconn *db;

/* history.c. Run sql with text parameters on db; exit EX_SOFTWARE
 * (EX_UNAVAILABLE when the connection is gone) on error unless ok_fail.
 * The caller clears the result. */
PGresult *q(int ok_fail, const char *sql, int n, const char *const *params);
/* The same for a statement whose result is not wanted. */
void q0(const char *sql);
/* Set the session's statement_timeout to ms (0: none). */
void set_statement_timeout(long ms);
/* Make the history table labpulse_migrations when there is none. */
void ensure_history(void);
/* Whether there is a history table. */
int have_history(void);
/* The checksum of each migration, and what the history says of it. */
void load_history(struct migration *m, size_t n);
/* The history's rows (version, name, state) whose file is not among m,
 * by version; with applied_only, those applied. The caller clears it. */
PGresult *history_orphans(const struct migration *m, size_t n,
    int applied_only);
/* Record m in the history as state, run in a transaction (tx) for ms
 * (-1: not yet), with the failed statement and the error when it failed. */
void record(const struct migration *m, const char *state, int tx, long ms,
    const char *stmt, const char *error);

/* apply.c. Wait for and take the lock of a run that writes: one at a
 * time. */
void take_lock(void);

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

/* The commands, each with its exit status as labpulse-migrate-indexes(1)
 * says: main.c's, apply.c's, check.c's and advise.c's (a table, or JSON with
 * cfg.json). */
int cmd_plan(struct job *j);
int cmd_up(struct job *j);
int cmd_down(struct job *j);
int cmd_add(struct job *j);
int cmd_drop(struct job *j);
int cmd_status(struct job *j);
int cmd_verify(struct job *j);
int cmd_repair(struct job *j);
int cmd_advise(struct job *j);
/* Print one line for each invalid index of the current schema to stdout
 * (status); returns how many. */
int print_invalid_indexes(void);

#endif
