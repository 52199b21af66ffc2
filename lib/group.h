/* group.h: reading a stream as one consumer of a Redis consumer group, on a
 * blocking connection: the consumer's own pending entries first, then those
 * other consumers left pending too long, then new ones. */
#ifndef LABPULSE_GROUP_H
#define LABPULSE_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "redis.h"

struct group;

/* An entry taken: its id and its event, or, when it has no "event" field,
 * its fields as {"notAnEvent":{FIELD:VALUE,...}} with event 0. */
typedef void (*group_take_fn)(const char *id, const char *data, size_t len,
    int event, void *arg);

struct group {
	/* set by the program; group_init sets key, name, consumer and the
	 * cursor */
	struct redis_target rt;
	long timeout_ms;		/* to connect, and for each command */
	long claim_idle_ms;		/* --claim-idle */
	char key[160];			/* labpulse:STREAM; "" for a plain
					 * connection with no group */
	const char *name, *consumer;	/* the group and this consumer in
					 * it: the program's strings */
	/* Run on each new connection before it counts: 0, or -1 with err. */
	int (*check)(struct redisContext *c, void *arg, char *err,
	    size_t errlen);
	/* Told when Redis is lost for another reason than the last one (up
	 * 0, the reason in error) and when it is back after a loss (up 1). */
	void (*on_state)(struct group *g, int up, void *arg);
	void *arg;
	/* state */
	struct redisContext *c;		/* NULL while Redis is away */
	int own_pending_done;		/* own pending entries taken back */
	char claim_cursor[48];
	int64_t next_claim_us;
	long trim_interval_ms;		/* --trim-interval; 0: never */
	int64_t next_trim_us;
	unsigned long connects;
	char error[512];		/* why Redis was lost; "" once back */
};

/* The consumer's name: given, else HOST:PID, unique on the machine and
 * telling where a pending entry is held. */
void group_consumer_name(const char *given, char *buf, size_t len);
/* Read group of the stream labpulse:STREAM as consumer; group and consumer
 * are kept, not copied. */
void group_init(struct group *g, const char *stream, const char *group,
    const char *consumer);
/* Connected, with the group made (from the start of the stream) and check
 * passed; -1 while Redis is away. */
int group_ensure(struct group *g);
/* Forget the connection, Redis lost for reason. */
void group_drop(struct group *g, const char *reason);
/* Up to want entries: the consumer's own pending ones until a read of them
 * comes back empty, then new ones, waiting up to block_ms for them (0: not
 * at all). The number taken, or -1 with the connection dropped. */
long group_read(struct group *g, long want, long block_ms, group_take_fn take,
    void *arg);
/* Up to want entries other consumers left pending longer than
 * claim_idle_ms, once the own pending ones are done, at most once a second
 * unless more are waiting. The number taken, or -1 as group_read. */
long group_claim(struct group *g, long want, group_take_fn take, void *arg);
/* Acknowledge n entries: how many were pending, or -1 (the connection
 * dropped, or out of memory). */
long group_ack(struct group *g, const char *const *ids, size_t n);
/* The entries pending in the group, or -1 when not known. */
long group_pending(struct group *g);
/* Trimming. A stream read by consumer groups is trimmed with XTRIM MINID
 * to the oldest entry some group of it still needs: the oldest pending
 * entry of each group (XPENDING), or, for a group with none pending, the
 * first entry after its last-delivered-id (XINFO GROUPS); the oldest over
 * all groups. A stream with no group is left alone.
 *
 * Why no lock is needed, neither with another trimmer (route and
 * batch-commit both trim labpulse:events) nor with XADD, XREADGROUP, XACK,
 * XAUTOCLAIM running meanwhile: the last-delivered-ids are read first (t0),
 * the pending summaries after (t1), the trim comes last (t2). An entry a
 * group needs at t2 is either after its last-delivered-id at t2, which only
 * moves forward, so after the one read at t0; or pending at t2. A pending
 * entry was either delivered after t0, so it is after the last-delivered-id
 * read at t0; or delivered before t0 and never acknowledged since (nothing
 * puts an acknowledged entry back), so pending at t1 too and not older than
 * the oldest pending read then. XAUTOCLAIM and XCLAIM (without FORCE) only
 * move entries between consumers of the same pending list: a claimed entry
 * was pending all along. So a MINID computed at t0..t1 is safe at any later
 * time, and of two trimmers the one with the older snapshot removes less;
 * XTRIM only removes entries older than its MINID, so the order of two
 * trims does not matter. XADD appends after every existing entry, beyond
 * every last-delivered-id.
 *
 * What it does not protect: a group made after t0 (XGROUP CREATE ... 0,
 * as group_ensure does for a consumer started for the first time) starts
 * from the oldest entry left, the same as when it is made just after a
 * trim; and an operator's XGROUP SETID back to an older id, or XCLAIM
 * FORCE of an id not pending, finds the entries before MINID gone. The
 * stream is a queue, not an archive: PostgreSQL is. */

/* Trim the stream key as above on the connection c: the number of entries
 * removed (0 when the key does not exist or has no group), or -1 with err;
 * c->err is set when the connection was lost. */
long group_trim_key(struct redisContext *c, const char *key, char *err,
    size_t errlen);
/* Whether a trim is due: connected, trim_interval_ms > 0, and that long
 * since the last one; when it is, the next one is scheduled. */
int group_trim_due(struct group *g);
/* group_trim_key on g's connection (key NULL: g's own stream), dropping
 * the connection when it was lost. */
long group_trim(struct group *g, const char *key, char *err, size_t errlen);
/* Close the connection; with leave, first take the consumer out of the
 * group when it holds no entry (a consumer that will not come back). */
void group_close(struct group *g, int leave);

#endif
