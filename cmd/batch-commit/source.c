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

#include <hiredis/hiredis.h>
#include <jv.h>

#include "bc.h"
#include "log.h"
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
	}
	r = &bt->rows[bt->n++];
	snprintf(r->id, sizeof r->id, "%s", id);
	r->raw = malloc(len + 1);
	memcpy(r->raw, raw, len);
	r->raw[len] = '\0';
	r->len = len;
	if (bt->n == 1)
		bt->opened_us = stats_mono_us();
}

static void
redis_drop(struct bc *b, const char *reason)
{
	char why[512];

	/* reason may live in the context about to be freed */
	snprintf(why, sizeof why, "%s", reason);
	if (b->redis) {
		redisFree(b->redis);
		b->redis = NULL;
	}
	if (strcmp(why, b->redis_error) != 0)
		log_warn("lost Redis; retrying url=%s reason=\"%s\"", b->rt.url,
		    why);
	snprintf(b->redis_error, sizeof b->redis_error, "%s", why);
}

/* Connected, with the consumer group made; -1 while Redis is away. */
static int
redis_ensure(struct bc *b)
{
	char err[512];
	redisReply *r;

	if (b->redis)
		return 0;
	b->redis = redis_connect_sync(&b->rt, b->cfg.max_wait_ms + 2000, err,
	    sizeof err);
	if (b->redis == NULL) {
		redis_drop(b, err);
		return -1;
	}
	/* from the start of the stream: events queued before the group
	 * existed are committed too */
	r = redisCommand(b->redis, "XGROUP CREATE %s %s 0 MKSTREAM", b->key,
	    b->from.group);
	if (r == NULL || (r->type == REDIS_REPLY_ERROR &&
	    strncmp(r->str, "BUSYGROUP", 9) != 0)) {
		snprintf(err, sizeof err, "XGROUP CREATE: %s",
		    r ? r->str : b->redis->errstr);
		freeReplyObject(r);
		redis_drop(b, err);
		return -1;
	}
	freeReplyObject(r);
	if (b->redis_error[0])
		log_info("connected to Redis url=%s", b->rt.url);
	b->redis_error[0] = '\0';
	b->redis_reconnects++;
	b->own_pending_done = 0;	/* after a restart of Redis, look again */
	return 0;
}

int
source_open(struct bc *b, char *err, size_t errlen)
{
	if (b->from.kind == ADDR_STREAM) {
		if (b->from.group[0] == '\0') {
			snprintf(err, errlen, "a stream is read as a consumer "
			    "group: stream:%s@GROUP", b->from.stream);
			return -1;
		}
		snprintf(b->key, sizeof b->key, "labpulse:%s", b->from.stream);
		strcpy(b->claim_cursor, "0-0");
		return redis_target_parse(&b->rt, b->cfg.redis_url, err, errlen);
	}
	if (b->from.kind == ADDR_STDIO) {
		b->in_fd = STDIN_FILENO;
	} else if (b->from.kind == ADDR_FILE) {
		b->in_fd = open(b->from.path, O_RDONLY | O_CLOEXEC);
	} else {
		b->in_fd = addr_connect_unix(b->from.path, err, errlen);
		if (b->in_fd < 0)
			return -1;
	}
	if (b->in_fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", b->from.path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* Take the entries of an XREADGROUP or XAUTOCLAIM reply into the batch.
 * Entries whose data is gone (deleted from the stream) are acknowledged. */
static size_t
take_entries(struct bc *b, struct batch *bt, redisReply *entries)
{
	size_t i, j, got = 0;

	for (i = 0; i < entries->elements; i++) {
		redisReply *e = entries->element[i], *f;

		if (e->type != REDIS_REPLY_ARRAY || e->elements < 2)
			continue;
		f = e->element[1];
		if (f->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(redisCommand(b->redis, "XACK %s %s %s",
			    b->key, b->from.group, e->element[0]->str));
			continue;
		}
		for (j = 0; j + 1 < f->elements; j += 2)
			if (strcmp(f->element[j]->str, "event") == 0)
				break;
		if (j + 1 >= f->elements) {
			/* not an event of ours: set aside whole, as an object
			 * of its fields, never lost */
			jv o = jv_object(), txt;

			for (j = 0; j + 1 < f->elements; j += 2)
				o = jv_object_set(o, jv_string(f->element[j]->str),
				    jv_string_sized(f->element[j + 1]->str,
				    (int)f->element[j + 1]->len));
			o = jv_object_set(jv_object(), jv_string("notAnEvent"), o);
			txt = jv_dump_string(o, 0);
			batch_add(bt, e->element[0]->str, jv_string_value(txt),
			    (size_t)jv_string_length_bytes(jv_copy(txt)));
			jv_free(txt);
			got++;
			continue;
		}
		batch_add(bt, e->element[0]->str, f->element[j + 1]->str,
		    f->element[j + 1]->len);
		got++;
	}
	return got;
}

/* Entries another consumer left pending longer than --claim-idle. */
static void
claim(struct bc *b, struct batch *bt, long want)
{
	redisReply *r;
	char idle[32], count[32];

	if (stats_mono_us() < b->next_claim_us)
		return;
	b->next_claim_us = stats_mono_us() + 1000000;
	snprintf(idle, sizeof idle, "%ld", b->cfg.claim_idle_ms);
	snprintf(count, sizeof count, "%ld", want);
	r = redisCommand(b->redis, "XAUTOCLAIM %s %s %s %s %s COUNT %s", b->key,
	    b->from.group, b->consumer, idle, b->claim_cursor, count);
	if (r == NULL) {
		redis_drop(b, b->redis->errstr);
		return;
	}
	if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
	    r->element[1]->type == REDIS_REPLY_ARRAY) {
		size_t got = take_entries(b, bt, r->element[1]);

		if (got)
			log_info("claimed entries left pending by another "
			    "consumer count=%zu", got);
		b->claimed += got;
		snprintf(b->claim_cursor, sizeof b->claim_cursor, "%s",
		    r->element[0]->str);
		/* more may be waiting: look again with the next batch */
		if (got > 0 && strcmp(b->claim_cursor, "0-0") != 0)
			b->next_claim_us = 0;
	}
	freeReplyObject(r);
}

static int
fill_stream(struct bc *b, struct batch *bt)
{
	redisReply *r;
	long want, block;
	int64_t left;
	char count[32], blk[32];

	while (!b->stop && (size_t)b->cfg.batch_size > bt->n) {
		bc_serve(b);
		if (redis_ensure(b) < 0) {
			if (bt->n > 0)
				return 0;	/* commit what is in hand */
			bc_idle(b, 500);
			continue;
		}
		want = b->cfg.batch_size - (long)bt->n;
		if (b->own_pending_done)
			claim(b, bt, want);
		if (b->redis == NULL)
			continue;
		want = b->cfg.batch_size - (long)bt->n;
		if (want <= 0)
			break;
		/* With events in hand, poll without blocking and wait here: a
		 * Redis BLOCK timeout fires only on Redis's own timer (10 times
		 * a second by default), late for a 50 ms batch. Idle, a blocking
		 * read wakes at once when an event comes. */
		block = 100;
		if (bt->n > 0) {
			left = bt->opened_us + b->cfg.max_wait_ms * 1000 -
			    stats_mono_us();
			if (left <= 0)
				break;
			block = 0;
		}
		snprintf(count, sizeof count, "%ld", want);
		snprintf(blk, sizeof blk, "%ld", block);
		if (!b->own_pending_done)
			r = redisCommand(b->redis, "XREADGROUP GROUP %s %s COUNT %s"
			    " STREAMS %s 0", b->from.group, b->consumer, count,
			    b->key);
		else if (block == 0)
			r = redisCommand(b->redis, "XREADGROUP GROUP %s %s COUNT %s"
			    " STREAMS %s >", b->from.group, b->consumer, count,
			    b->key);
		else
			r = redisCommand(b->redis, "XREADGROUP GROUP %s %s COUNT %s"
			    " BLOCK %s STREAMS %s >", b->from.group, b->consumer,
			    count, blk, b->key);
		if (r == NULL) {
			redis_drop(b, b->redis->errstr);
			continue;
		}
		if (r->type == REDIS_REPLY_ERROR) {
			char why[300];

			snprintf(why, sizeof why, "XREADGROUP: %s", r->str);
			freeReplyObject(r);
			/* NOGROUP: the stream or group was deleted: make again */
			redis_drop(b, why);
			continue;
		}
		if (block == 0 && b->own_pending_done &&
		    (r->type != REDIS_REPLY_ARRAY || r->elements == 0)) {
			struct timespec ts = { 0, 2 * 1000000L };

			freeReplyObject(r);
			nanosleep(&ts, NULL);	/* nothing yet: the batch waits */
			continue;
		}
		if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
		    r->element[0]->elements >= 2) {
			size_t got = take_entries(b, bt, r->element[0]->element[1]);

			if (!b->own_pending_done && got == 0)
				b->own_pending_done = 1;
			if (!b->own_pending_done && got > 0) {
				freeReplyObject(r);
				return 0;	/* commit the pending ones first */
			}
		} else if (!b->own_pending_done) {
			b->own_pending_done = 1;
		}
		freeReplyObject(r);
	}
	return 0;
}

/* NDJSON: read what is there, a line a row, until the batch is full, the
 * wait is over, or the input ends. */
static int
fill_fd(struct bc *b, struct batch *bt)
{
	struct pollfd pfd = { b->in_fd, POLLIN, 0 };
	char *nl;
	ssize_t n;
	int64_t left;
	int timeout;

	for (;;) {
		while ((size_t)b->cfg.batch_size > bt->n && b->inlen > 0 &&
		    (nl = memchr(b->inbuf, '\n', b->inlen)) != NULL) {
			size_t len = nl - b->inbuf;

			if (len > 0 && strspn(b->inbuf, " \t\r") < len)
				batch_add(bt, "", b->inbuf, len);
			memmove(b->inbuf, nl + 1, b->inlen - len - 1);
			b->inlen -= len + 1;
		}
		if ((size_t)b->cfg.batch_size <= bt->n || b->stop)
			return 0;
		if (b->in_eof) {
			if (b->inlen > 0) {	/* a last line without newline */
				batch_add(bt, "", b->inbuf, b->inlen);
				b->inlen = 0;
			}
			return 0;
		}
		if (bt->n > 0) {
			left = bt->opened_us + b->cfg.max_wait_ms * 1000 -
			    stats_mono_us();
			if (left <= 0)
				return 0;
			timeout = (int)(left / 1000) + 1;
		} else {
			timeout = 100;
		}
		bc_serve(b);
		if (poll(&pfd, 1, timeout) <= 0)
			continue;
		if (b->incap - b->inlen < 65536) {
			b->incap = b->incap ? b->incap * 2 : 1 << 20;
			b->inbuf = realloc(b->inbuf, b->incap);
		}
		n = read(b->in_fd, b->inbuf + b->inlen, b->incap - b->inlen);
		if (n < 0 && errno != EINTR && errno != EAGAIN) {
			log_error("cannot read %s: %s", b->cfg.from, strerror(errno));
			b->in_eof = 1;
			b->in_error = 1;
		} else if (n == 0) {
			b->in_eof = 1;
		} else if (n > 0) {
			b->inlen += n;
		}
	}
}

int
source_fill(struct bc *b, struct batch *bt)
{
	return b->from.kind == ADDR_STREAM ? fill_stream(b, bt) : fill_fd(b, bt);
}

void
source_ack(struct bc *b, struct batch *bt)
{
	const char **argv;
	size_t i, argc = 0;
	redisReply *r;

	if (b->from.kind != ADDR_STREAM || bt->n == 0)
		return;
	argv = malloc((bt->n + 3) * sizeof *argv);
	argv[argc++] = "XACK";
	argv[argc++] = b->key;
	argv[argc++] = b->from.group;
	for (i = 0; i < bt->n; i++)
		argv[argc++] = bt->rows[i].id;
	/* Committed rows must be acknowledged, or they come back (harmlessly,
	 * as duplicates): keep trying while Redis is away. */
	for (;;) {
		if (redis_ensure(b) == 0) {
			r = redisCommandArgv(b->redis, (int)argc, argv, NULL);
			if (r && r->type == REDIS_REPLY_INTEGER) {
				b->acked += (unsigned long)r->integer;
				freeReplyObject(r);
				break;
			}
			redis_drop(b, r ? r->str : b->redis->errstr);
			freeReplyObject(r);
		}
		if (b->stop) {
			log_warn("stopping before the acknowledgement; the "
			    "committed entries will come back as duplicates "
			    "rows=%zu", bt->n);
			break;
		}
		bc_idle(b, 500);
	}
	free(argv);
}

long
source_pending(struct bc *b)
{
	redisReply *r;
	long n = -1;

	if (b->from.kind != ADDR_STREAM || b->redis == NULL)
		return -1;
	r = redisCommand(b->redis, "XPENDING %s %s", b->key, b->from.group);
	if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
	    r->element[0]->type == REDIS_REPLY_INTEGER)
		n = (long)r->element[0]->integer;
	if (r == NULL)
		redis_drop(b, b->redis->errstr);
	freeReplyObject(r);
	return n;
}
