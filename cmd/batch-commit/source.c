/* source.c: where batch-commit takes events from: a consumer group of the
 * events stream (its own pending entries first, then entries other
 * consumers left pending too long, then new ones), or NDJSON. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bc.h"
#include "log.h"
#include "prog.h"
#include "stats.h"

void
batch_clear(struct batch *bt)
{
	size_t i;

	for (i = 0; i < bt->n; i++)
		free(bt->rows[i].raw);
	bt->n = 0;
}

static void
batch_add(struct batch *bt, const char *id, const char *raw, size_t len)
{
	struct row *r;

	if (bt->n == bt->cap) {
		bt->cap = bt->cap ? bt->cap * 2 : 64;
		bt->rows = realloc(bt->rows, bt->cap * sizeof *bt->rows);
		if (bt->rows == NULL)
			die_nomem();
	}
	r = &bt->rows[bt->n++];
	snprintf(r->id, sizeof r->id, "%s", id);
	r->raw = malloc(len + 1);
	if (r->raw == NULL)
		die_nomem();
	memcpy(r->raw, raw, len);
	r->raw[len] = '\0';
	r->len = len;
	if (bt->n == 1)
		bt->opened_us = stats_mono_us();
}

int
source_open(struct bc *b, char *err, size_t errlen)
{
	if (b->from.kind == ADDR_STREAM) {
		group_init(&b->g, b->from.stream, b->from.group,
		    b->consumer);
		b->g.timeout_ms = b->cfg.max_wait_ms + 2000;
		b->g.claim_idle_ms = b->cfg.claim_idle_ms;
		b->g.trim_interval_ms = b->cfg.trim_interval_ms;
		b->g.on_state = daemon_group_state;
		b->g.arg = &b->d;
		if (redis_target_parse(&b->g.rt, b->cfg.redis_url, err,
		    errlen) < 0)
			return -ERR_CONFIG;
		return 0;
	}
	return lines_open(&b->in, &b->from, err, errlen);
}

/* An entry of the group into the batch; one that is not an event is set
 * aside whole, as an object of its fields, never lost. */
static void
take(const char *id, const char *data, size_t len, int event, void *arg)
{
	(void)event;
	batch_add(arg, id, data, len);
}

/* Every --trim-interval, the stream trimmed to what the groups still
 * need (see group.h); route does the same, harmlessly. */
static void
trim(struct bc *b)
{
	char err[512];
	long n;

	if (!group_trim_due(&b->g))
		return;
	n = group_trim(&b->g, NULL, err, sizeof err);
	if (n >= 0) {
		b->trimmed += (unsigned long)n;
		b->trims++;
		b->trim_error[0] = '\0';
		return;
	}
	if (strcmp(err, b->trim_error) != 0)
		log_warn("cannot trim the stream; will retry stream=%s "
		    "reason=\"%s\"", b->g.key, err);
	snprintf(b->trim_error, sizeof b->trim_error, "%s", err);
}

/* How long the batch in hand may still wait: -1 with none in hand, 0 once
 * its time is up, else milliseconds, rounded up. */
static long
wait_left(const struct bc *b, const struct batch *bt)
{
	int64_t left;

	if (bt->n == 0)
		return -1;
	left = bt->opened_us + b->cfg.max_wait_ms * 1000 - stats_mono_us();
	return left <= 0 ? 0 : (long)(left / 1000) + 1;
}

static void
fill_stream(struct bc *b, struct batch *bt)
{
	long want, block, got;
	long wait;
	int pending;

	while (!b->d.stop && (size_t)b->cfg.batch_size > bt->n) {
		daemon_serve(&b->d);
		if (group_ensure(&b->g) < 0) {
			if (bt->n > 0)
				return;	/* commit what is in hand */
			daemon_idle(&b->d, 500);
			continue;
		}
		trim(b);
		if (b->g.c == NULL)
			continue;
		want = b->cfg.batch_size - (long)bt->n;
		got = group_claim(&b->g, want, take, bt);
		if (got > 0) {
			log_info("claimed entries left pending by another "
			    "consumer count=%ld", got);
			b->claimed += got;
		}
		if (b->g.c == NULL)
			continue;
		want = b->cfg.batch_size - (long)bt->n;
		if (want <= 0)
			break;
		/* With events in hand, poll without blocking and wait here: a
		 * Redis BLOCK timeout fires only on Redis's own timer (10 times
		 * a second by default), late for a 50 ms batch. Idle, a blocking
		 * read wakes at once when an event comes. */
		if ((wait = wait_left(b, bt)) == 0)
			break;
		block = wait < 0 ? 100 : 0;
		pending = !b->g.own_pending_done;
		got = group_read(&b->g, want, block, take, bt);
		if (got < 0)
			continue;
		if (pending && got > 0)
			return;	/* commit the pending ones first */
		/* done too when the pending read held only entries whose data
		 * was gone */
		if (pending)
			b->g.own_pending_done = 1;
		else if (block == 0 && got == 0) {
			struct timespec ts = { 0, 2 * 1000000L };

			nanosleep(&ts, NULL);	/* nothing yet: the batch waits */
		}
	}
}

/* NDJSON: read what is there, a line a row, until the batch is full, the
 * wait is over, or the input ends. */
static void
fill_fd(struct bc *b, struct batch *bt)
{
	const char *line;
	char err[300];
	size_t len;
	long wait;
	int timeout;

	for (;;) {
		while ((size_t)b->cfg.batch_size > bt->n &&
		    (line = lines_next(&b->in, &len)) != NULL)
			batch_add(bt, "", line, len);
		if ((size_t)b->cfg.batch_size <= bt->n || b->d.stop ||
		    b->in.eof)
			return;
		if ((wait = wait_left(b, bt)) == 0)
			return;
		timeout = wait < 0 ? 100 : (int)wait;
		daemon_serve(&b->d);
		if (lines_read(&b->in, timeout, err, sizeof err) < 0)
			log_error("cannot read %s: %s", b->cfg.from, err);
	}
}

void
source_fill(struct bc *b, struct batch *bt)
{
	if (b->from.kind == ADDR_STREAM)
		fill_stream(b, bt);
	else
		fill_fd(b, bt);
}

int
source_done(const struct bc *b)
{
	return b->from.kind != ADDR_STREAM && lines_done(&b->in);
}

void
source_ack(struct bc *b, struct batch *bt)
{
	const char **ids;
	size_t i;
	long n;

	if (b->from.kind != ADDR_STREAM || bt->n == 0)
		return;
	ids = malloc(bt->n * sizeof *ids);
	if (ids == NULL)
		die_nomem();
	for (i = 0; i < bt->n; i++)
		ids[i] = bt->rows[i].id;
	/* Committed rows must be acknowledged, or they come back (harmlessly,
	 * as duplicates): keep trying while Redis is away. */
	for (;;) {
		if (group_ensure(&b->g) == 0 &&
		    (n = group_ack(&b->g, ids, bt->n)) >= 0) {
			b->acked += (unsigned long)n;
			break;
		}
		if (b->d.stop) {
			log_warn("stopping before the acknowledgement; the "
			    "committed entries will come back as duplicates "
			    "rows=%zu", bt->n);
			break;
		}
		daemon_idle(&b->d, 500);
	}
	free(ids);
}

long
source_pending(struct bc *b)
{
	if (b->from.kind != ADDR_STREAM)
		return -1;
	return group_pending(&b->g);
}

void
source_close(struct bc *b, int leave)
{
	group_close(&b->g, leave);
	if (b->from.kind != ADDR_STREAM)
		lines_free(&b->in);
}
