/* bc.h: what the files of batch-commit share. */
#ifndef LABPULSE_BC_H
#define LABPULSE_BC_H

#include <signal.h>
#include <stdint.h>
#include <libpq-fe.h>

#include "addr.h"
#include "group.h"

struct bc_cfg {
	const char *from;
	const char *redis_url;
	const char *db;
	const char *consumer;
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
	int in_fd, in_eof, in_error;
	char *inbuf;
	size_t inlen, incap;
	/* PostgreSQL */
	PGconn *pg;
	int in_txn;
	/* life */
	volatile sig_atomic_t stop;
	struct event_base *base;
	int64_t started_us;
	struct hist *commit_us, *batch_rows;
	unsigned long batches, rows_committed, duplicates, dead, acked;
	unsigned long pg_reconnects, claimed;
	unsigned long trimmed, trims;	/* entries removed, trims run */
	char trim_error[512];		/* the last trim's, "" when it ran */
	char pg_error[512];
};

/* source.c */
int source_open(struct bc *b, char *err, size_t errlen);
/* Fill b->batch until batch_size rows or max_wait after the first one. */
int source_fill(struct bc *b, struct batch *bt);
/* Acknowledge the batch's entries; keeps trying until done or stopping. */
void source_ack(struct bc *b, struct batch *bt);
long source_pending(struct bc *b);
void batch_clear(struct batch *bt);

/* commit.c */
int pg_ensure(struct bc *b);
/* Commit the batch: 0 when committed, -1 when abandoned (stopping). */
int commit_batch(struct bc *b, struct batch *bt);

/* main.c */
/* Sleep up to ms while serving the stats socket; returns early on stop. */
void bc_idle(struct bc *b, long ms);
void bc_serve(struct bc *b);

#endif
