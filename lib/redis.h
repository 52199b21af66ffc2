/* redis.h: one asynchronous Redis connection on the program's event loop,
 * reconnecting with backoff, and finding the primary through Redis Sentinel
 * when told to; the server named as in DESIGN.md. */
#ifndef LABPULSE_REDIS_H
#define LABPULSE_REDIS_H

#include <stddef.h>
#include <hiredis/async.h>

struct event_base;
struct rconn;
struct redisContext;

#define REDIS_SENTINELS_MAX	8	/* in one sentinel:// URL */
#define REDIS_MASTER_MAX	64	/* bytes of a Sentinel master name */

struct redis_sentinel {
	char host[256];
	int port;
};

/* Where Redis is: parsed from a URL (see rconn_new). A sentinel:// target
 * has its sentinels and master name, and no host: the primary is asked
 * for at each connection. */
struct redis_target {
	char url[512];		/* as given, the password masked */
	char host[256], path[256], password[256];
	int port, db;
	int nsentinels;		/* 0 unless sentinel:// */
	struct redis_sentinel sentinel[REDIS_SENTINELS_MAX];
	char master[REDIS_MASTER_MAX + 1];
};

/* Parse url as rconn_new says (NULL: $LABPULSE_REDIS, then the default)
 * into t, whose url is then the one to show: its password masked as ***.
 * -1 with err when it is not a Redis URL; err never holds the password,
 * and neither does t. */
int redis_target_parse(struct redis_target *t, const char *url,
    char *err, size_t errlen);
/* A blocking connection with a socket timeout, authenticated and on its
 * database; NULL with err. A sentinel:// target is resolved first, the
 * sentinels asked in turn (each within a share of the timeout), and the
 * connection is returned only once ROLE says it is the primary; the whole
 * within about timeout_ms. */
struct redisContext *redis_connect_sync(const struct redis_target *t,
    long timeout_ms, char *err, size_t errlen);

/* Called, when set, with one line to log each time the primary named by
 * the sentinels changes ("Redis primary is HOST:PORT (via sentinel
 * HOST:PORT)"), once per change in the process however many connections
 * follow it. lib/ does not log: a program sets it (cmd/daemon.c). */
extern void (*redis_notice_hook)(const char *msg);

typedef void (*rconn_state_fn)(struct rconn *rc, int up, void *arg);

/* url: redis://[:PASSWORD@]HOST[:PORT][/DB],
 * sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER[/DB] or
 * unix:PATH[?db=DB]; NULL takes $LABPULSE_REDIS, then
 * redis://127.0.0.1:6379/0. NULL with err on a bad URL.
 *
 * Through Sentinel the connection is up only once ROLE said master on it:
 * nothing the program sends can reach a replica before. The sentinels are
 * asked in turn (one that does not answer within RCONN_SENTINEL_MS is
 * skipped), a subscription to +switch-master on one of them resets the
 * connection when the master moves, and ROLE is asked again every second,
 * a reset when it is no longer master. A reset re-resolves. */
#define RCONN_SENTINEL_MS	1000
struct rconn *rconn_new(struct event_base *base, const char *url,
    char *err, size_t errlen);
void rconn_on_state(struct rconn *rc, rconn_state_fn fn, void *arg);
/* Start connecting; later losses reconnect by themselves. */
void rconn_start(struct rconn *rc);
/* The context for commands, or NULL while not connected. */
redisAsyncContext *rconn_ctx(struct rconn *rc);
int rconn_is_up(const struct rconn *rc);
const char *rconn_url(const struct rconn *rc);
const char *rconn_last_error(const struct rconn *rc);
/* Drop the connection (callbacks in flight get a NULL reply) and reconnect. */
void rconn_reset(struct rconn *rc, const char *why);
void rconn_free(struct rconn *rc);
/* Counters for stats: connects and losses since start. */
unsigned long rconn_connects(const struct rconn *rc);
unsigned long rconn_losses(const struct rconn *rc);

#endif
