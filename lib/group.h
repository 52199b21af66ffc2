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
	unsigned long connects;
	char error[512];		/* why Redis was lost; "" once back */
};

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
/* Close the connection; with leave, first take the consumer out of the
 * group when it holds no entry (a consumer that will not come back). */
void group_close(struct group *g, int leave);

#endif
