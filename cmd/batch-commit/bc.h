/* bc.h: what the files of batch-commit share.
 *
 * Calls go one way: main.c calls source.c (events in, acknowledgements
 * out) and commit.c (PostgreSQL); neither calls main.c nor the other.
 * What they need from above, the stop flag, the stats socket served while
 * they wait and the log lines of a service lost or back, they take from
 * the struct daemon in struct bc. */
#ifndef LABPULSE_BC_H
#define LABPULSE_BC_H

#include <stdint.h>
#include <libpq-fe.h>

#include "addr.h"
#include "group.h"
#include "lines.h"
#include "prog.h"

struct bc_cfg {
	const char *from;
	const char *redis_url;
	const char *db;
	const char *consumer;		/* NULL: HOST:PID, made at start */
	const char *stats_path;
	long batch_size, max_wait_ms, claim_idle_ms;
	long trim_interval_ms;		/* --trim-interval; 0: never */
};

/* One event in hand: its stream id (empty in pipe mode) and its text. */
struct row {
	char id[48];
	char *raw;
	size_t len;
};

struct batch {
	struct row *rows;
	size_t n, cap;
	int64_t opened_us;	/* monotonic time of the first row */
};

struct bc {
	struct bc_cfg cfg;
	struct addr from;
	struct group g;		/* the stream */
	char consumer[200];
	/* pipe mode */
	struct lines in;
	/* PostgreSQL */
	PGconn *pg;
	int in_txn;
	/* life: signals, stats socket, readiness, state lines */
	struct daemon d;
	int64_t started_us;
	struct hist *commit_us, *batch_rows;
	unsigned long batches, rows_committed, duplicates, dead, acked;
	/* batches committed by the fast path, and by the staging path */
	unsigned long batches_fast, batches_fallback;
	unsigned long pg_reconnects, claimed;
	unsigned long trimmed, trims;	/* entries removed, trims run */
	char trim_error[512];		/* the last trim's, "" when it ran */
	char pg_error[512];
};

/* source.c */
/* Open --from: 0, or -ERR_CONFIG (a bad Redis URL) or -ERR_NOINPUT (an
 * input that cannot be opened) with err. */
int source_open(struct bc *b, char *err, size_t errlen);
/* Fill bt until batch_size rows or max_wait after the first one. */
void source_fill(struct bc *b, struct batch *bt);
/* Acknowledge the batch's entries; keeps trying until done or stopping. */
void source_ack(struct bc *b, struct batch *bt);
/* Whether NDJSON input ended and every line of it was taken. */
int source_done(const struct bc *b);
long source_pending(struct bc *b);
/* Close the input; with leave, take the consumer out of the group when it
 * holds nothing. */
void source_close(struct bc *b, int leave);
void batch_clear(struct batch *bt);

/* commit.c */
/* Connected to PostgreSQL with the session prepared: 0, or -1 (logged). */
int pg_ensure(struct bc *b);
/* Commit the batch: 0 when committed, -1 when abandoned (stopping). */
int commit_batch(struct bc *b, struct batch *bt);
void commit_close(struct bc *b);

#endif
