/* group.c: one consumer of a Redis consumer group, hiredis's blocking API;
 * the programs say what becomes of the entries and what is logged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jv.h>

#include "group.h"
#include "sid.h"
#include "stats.h"

void
group_consumer_name(const char *given, char *buf, size_t len)
{
	char host[128];

	if (given) {
		snprintf(buf, len, "%s", given);
		return;
	}
	if (gethostname(host, sizeof host) < 0)
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	snprintf(buf, len, "%s:%ld", host, (long)getpid());
}

void
group_init(struct group *g, const char *stream, const char *group,
    const char *consumer)
{
	snprintf(g->key, sizeof g->key, "labpulse:%s", stream);
	g->name = group;
	g->consumer = consumer;
	strcpy(g->claim_cursor, "0-0");
}

void
group_drop(struct group *g, const char *reason)
{
	char why[sizeof g->error];
	int news;

	/* reason may live in the context about to be freed */
	snprintf(why, sizeof why, "%s", reason);
	if (g->c) {
		redisFree(g->c);
		g->c = NULL;
	}
	news = strcmp(why, g->error) != 0;
	snprintf(g->error, sizeof g->error, "%s", why);
	if (news && g->on_state)
		g->on_state(g, 0, g->arg);
}

int
group_ensure(struct group *g)
{
	char err[512];
	redisReply *r;
	int lost;

	if (g->c)
		return 0;
	g->c = redis_connect_sync(&g->rt, g->timeout_ms, err, sizeof err);
	if (g->c == NULL) {
		group_drop(g, err);
		return -1;
	}
	if (g->key[0]) {
		/* from the start of the stream: events queued before the
		 * group existed are taken too */
		r = redisCommand(g->c, "XGROUP CREATE %s %s 0 MKSTREAM", g->key,
		    g->name);
		if (r == NULL || (r->type == REDIS_REPLY_ERROR &&
		    strncmp(r->str, "BUSYGROUP", 9) != 0)) {
			snprintf(err, sizeof err, "XGROUP CREATE: %s",
			    r ? r->str : g->c->errstr);
			freeReplyObject(r);
			group_drop(g, err);
			return -1;
		}
		freeReplyObject(r);
	}
	if (g->check && g->check(g->c, g->arg, err, sizeof err) < 0) {
		group_drop(g, err);
		return -1;
	}
	lost = g->error[0] != '\0';
	g->error[0] = '\0';
	g->connects++;
	g->own_pending_done = 0;	/* after a restart of Redis, look again */
	if (lost && g->on_state)
		g->on_state(g, 1, g->arg);
	return 0;
}

/* Hand over the entries of an XREADGROUP or XAUTOCLAIM reply. Entries whose
 * data is gone (deleted from the stream) are acknowledged. */
static long
take_entries(struct group *g, redisReply *entries, group_take_fn take,
    void *arg)
{
	size_t i, j;
	long got = 0;

	for (i = 0; i < entries->elements; i++) {
		redisReply *e = entries->element[i], *f;

		if (e->type != REDIS_REPLY_ARRAY || e->elements < 2)
			continue;
		f = e->element[1];
		if (f->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(redisCommand(g->c, "XACK %s %s %s",
			    g->key, g->name, e->element[0]->str));
			continue;
		}
		for (j = 0; j + 1 < f->elements; j += 2)
			if (strcmp(f->element[j]->str, "event") == 0)
				break;
		if (j + 1 >= f->elements) {
			/* not an event of ours: handed over whole, as an
			 * object of its fields, never lost */
			jv o = jv_object(), txt;

			for (j = 0; j + 1 < f->elements; j += 2)
				o = jv_object_set(o, jv_string(f->element[j]->str),
				    jv_string_sized(f->element[j + 1]->str,
				    (int)f->element[j + 1]->len));
			o = jv_object_set(jv_object(), jv_string("notAnEvent"), o);
			txt = jv_dump_string(o, 0);
			take(e->element[0]->str, jv_string_value(txt),
			    (size_t)jv_string_length_bytes(jv_copy(txt)), 0, arg);
			jv_free(txt);
			got++;
			continue;
		}
		take(e->element[0]->str, f->element[j + 1]->str,
		    f->element[j + 1]->len, 1, arg);
		got++;
	}
	return got;
}

long
group_claim(struct group *g, long want, group_take_fn take, void *arg)
{
	redisReply *r;
	char idle[32], count[32];
	long got = 0;

	if (!g->own_pending_done || stats_mono_us() < g->next_claim_us)
		return 0;
	g->next_claim_us = stats_mono_us() + 1000000;
	snprintf(idle, sizeof idle, "%ld", g->claim_idle_ms);
	snprintf(count, sizeof count, "%ld", want);
	r = redisCommand(g->c, "XAUTOCLAIM %s %s %s %s %s COUNT %s", g->key,
	    g->name, g->consumer, idle, g->claim_cursor, count);
	if (r == NULL) {
		group_drop(g, g->c->errstr);
		return -1;
	}
	if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
	    r->element[1]->type == REDIS_REPLY_ARRAY) {
		got = take_entries(g, r->element[1], take, arg);
		snprintf(g->claim_cursor, sizeof g->claim_cursor, "%s",
		    r->element[0]->str);
		/* more may be waiting: look again with the next batch */
		if (got > 0 && strcmp(g->claim_cursor, "0-0") != 0)
			g->next_claim_us = 0;
	}
	freeReplyObject(r);
	return got;
}

long
group_read(struct group *g, long want, long block_ms, group_take_fn take,
    void *arg)
{
	redisReply *r, *entries;
	char count[32], block[32];
	long got = 0;

	snprintf(count, sizeof count, "%ld", want);
	snprintf(block, sizeof block, "%ld", block_ms);
	if (!g->own_pending_done)
		r = redisCommand(g->c, "XREADGROUP GROUP %s %s COUNT %s"
		    " STREAMS %s 0", g->name, g->consumer, count, g->key);
	else if (block_ms == 0)
		r = redisCommand(g->c, "XREADGROUP GROUP %s %s COUNT %s"
		    " STREAMS %s >", g->name, g->consumer, count, g->key);
	else
		r = redisCommand(g->c, "XREADGROUP GROUP %s %s COUNT %s"
		    " BLOCK %s STREAMS %s >", g->name, g->consumer, count,
		    block, g->key);
	if (r == NULL) {
		group_drop(g, g->c->errstr);
		return -1;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		char why[300];

		snprintf(why, sizeof why, "XREADGROUP: %s", r->str);
		freeReplyObject(r);
		/* NOGROUP: the stream or group was deleted: make again */
		group_drop(g, why);
		return -1;
	}
	if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
	    r->element[0]->elements >= 2) {
		entries = r->element[0]->element[1];
		got = take_entries(g, entries, take, arg);
		if (!g->own_pending_done && entries->elements == 0)
			g->own_pending_done = 1;
	} else if (!g->own_pending_done) {
		g->own_pending_done = 1;
	}
	freeReplyObject(r);
	return got;
}

long
group_ack(struct group *g, const char *const *ids, size_t n)
{
	const char **argv;
	size_t i, argc = 0;
	redisReply *r;
	long acked = -1;

	argv = malloc((n + 3) * sizeof *argv);
	if (argv == NULL)
		return -1;
	argv[argc++] = "XACK";
	argv[argc++] = g->key;
	argv[argc++] = g->name;
	for (i = 0; i < n; i++)
		argv[argc++] = ids[i];
	r = redisCommandArgv(g->c, (int)argc, argv, NULL);
	if (r && r->type == REDIS_REPLY_INTEGER)
		acked = (long)r->integer;
	else
		group_drop(g, r ? r->str : g->c->errstr);
	freeReplyObject(r);
	free(argv);
	return acked;
}

long
group_pending(struct group *g)
{
	redisReply *r;
	long n = -1;

	if (g->c == NULL || g->key[0] == '\0')
		return -1;
	r = redisCommand(g->c, "XPENDING %s %s", g->key, g->name);
	if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
	    r->element[0]->type == REDIS_REPLY_INTEGER)
		n = (long)r->element[0]->integer;
	if (r == NULL)
		group_drop(g, g->c->errstr);
	freeReplyObject(r);
	return n;
}

/* The value of the field name in an XINFO reply (names and values in turn). */
static const redisReply *
reply_field(const redisReply *r, const char *name)
{
	size_t i;

	if (r->type != REDIS_REPLY_ARRAY)
		return NULL;
	for (i = 0; i + 1 < r->elements; i += 2)
		if (r->element[i]->type == REDIS_REPLY_STRING ||
		    r->element[i]->type == REDIS_REPLY_STATUS)
			if (strcmp(r->element[i]->str, name) == 0)
				return r->element[i + 1];
	return NULL;
}

long
group_trim_key(redisContext *c, const char *key, char *err, size_t errlen)
{
	redisReply *groups, *r;
	const redisReply *name, *last;
	struct sid min = { 0, 0 }, id;
	char minid[SID_LEN];
	size_t i;
	long removed = -1;
	int have = 0;

	/* first the last-delivered-ids, then the pending lists: see group.h */
	groups = redisCommand(c, "XINFO GROUPS %s", key);
	if (groups == NULL) {
		snprintf(err, errlen, "XINFO GROUPS %s: %s", key, c->errstr);
		return -1;
	}
	if (groups->type == REDIS_REPLY_ERROR) {
		/* no stream, nothing to trim */
		if (strstr(groups->str, "no such key")) {
			freeReplyObject(groups);
			return 0;
		}
		snprintf(err, errlen, "XINFO GROUPS %s: %s", key, groups->str);
		freeReplyObject(groups);
		return -1;
	}
	if (groups->type != REDIS_REPLY_ARRAY) {
		snprintf(err, errlen, "XINFO GROUPS %s: unexpected reply", key);
		freeReplyObject(groups);
		return -1;
	}
	for (i = 0; i < groups->elements; i++) {
		name = reply_field(groups->element[i], "name");
		last = reply_field(groups->element[i], "last-delivered-id");
		if (name == NULL || last == NULL ||
		    name->type != REDIS_REPLY_STRING ||
		    last->type != REDIS_REPLY_STRING ||
		    sid_parse(last->str, &id) < 0) {
			snprintf(err, errlen, "XINFO GROUPS %s: unexpected reply",
			    key);
			goto out;
		}
		/* the first id after it */
		if (id.seq == UINT64_MAX) {
			id.ms++;
			id.seq = 0;
		} else {
			id.seq++;
		}
		if (!have || sid_cmp(id, min) < 0)
			min = id;
		have = 1;
		r = redisCommand(c, "XPENDING %s %b", key, name->str,
		    name->len);
		if (r == NULL) {
			snprintf(err, errlen, "XPENDING %s: %s", key, c->errstr);
			goto out;
		}
		if (r->type == REDIS_REPLY_ERROR) {
			/* a group deleted meanwhile, or worse: trim next time */
			snprintf(err, errlen, "XPENDING %s %s: %s", key,
			    name->str, r->str);
			freeReplyObject(r);
			goto out;
		}
		if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
		    r->element[0]->type != REDIS_REPLY_INTEGER) {
			snprintf(err, errlen, "XPENDING %s: unexpected reply", key);
			freeReplyObject(r);
			goto out;
		}
		if (r->element[0]->integer > 0) {
			if (r->element[1]->type != REDIS_REPLY_STRING ||
			    sid_parse(r->element[1]->str, &id) < 0) {
				snprintf(err, errlen, "XPENDING %s: unexpected "
				    "reply", key);
				freeReplyObject(r);
				goto out;
			}
			if (sid_cmp(id, min) < 0)
				min = id;
		}
		freeReplyObject(r);
	}
	if (!have) {		/* no group: nobody said what it still needs */
		removed = 0;
		goto out;
	}
	sid_format(min, minid);
	r = redisCommand(c, "XTRIM %s MINID %s", key, minid);
	if (r == NULL)
		snprintf(err, errlen, "XTRIM %s: %s", key, c->errstr);
	else if (r->type != REDIS_REPLY_INTEGER)
		snprintf(err, errlen, "XTRIM %s: %s", key,
		    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
	else
		removed = (long)r->integer;
	freeReplyObject(r);
out:
	freeReplyObject(groups);
	return removed;
}

int
group_trim_due(struct group *g)
{
	int64_t now;

	if (g->c == NULL || g->trim_interval_ms <= 0)
		return 0;
	now = stats_mono_us();
	if (now < g->next_trim_us)
		return 0;
	g->next_trim_us = now + (int64_t)g->trim_interval_ms * 1000;
	return 1;
}

long
group_trim(struct group *g, const char *key, char *err, size_t errlen)
{
	long n;

	if (g->c == NULL) {
		snprintf(err, errlen, "not connected");
		return -1;
	}
	n = group_trim_key(g->c, key ? key : g->key, err, errlen);
	if (n < 0 && g->c->err)
		group_drop(g, g->c->errstr);
	return n;
}

void
group_close(struct group *g, int leave)
{
	redisReply *r;

	if (g->c == NULL)
		return;
	if (leave && g->key[0]) {
		r = redisCommand(g->c, "XPENDING %s %s - + 1 %s", g->key,
		    g->name, g->consumer);
		if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 0)
			freeReplyObject(redisCommand(g->c,
			    "XGROUP DELCONSUMER %s %s %s", g->key, g->name,
			    g->consumer));
		freeReplyObject(r);
	}
	redisFree(g->c);
	g->c = NULL;
}
