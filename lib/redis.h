/* redis.h: one asynchronous Redis connection on the program's event loop,
 * reconnecting with backoff; the server named as in DESIGN.md. */
#ifndef LABPULSE_REDIS_H
#define LABPULSE_REDIS_H

#include <stddef.h>
#include <hiredis/async.h>

struct event_base;
struct rconn;
struct redisContext;

/* Where Redis is: parsed from a URL (see rconn_new). */
struct redis_target {
	char url[512];		/* as given, the password masked */
	char host[256], path[256], password[256];
	int port, db;
};

/* Parse url as rconn_new says (NULL: $LABPULSE_REDIS, then the default)
 * into t, whose url is then the one to show: its password masked as ***.
 * -1 with err when it is not a Redis URL; err never holds the password,
 * and neither does t. */
int redis_target_parse(struct redis_target *t, const char *url,
    char *err, size_t errlen);
/* A blocking connection with a socket timeout, authenticated and on its
 * database; NULL with err. */
struct redisContext *redis_connect_sync(const struct redis_target *t,
    long timeout_ms, char *err, size_t errlen);

typedef void (*rconn_state_fn)(struct rconn *rc, int up, void *arg);

/* url: redis://[:PASSWORD@]HOST[:PORT][/DB] or unix:PATH[?db=DB]; NULL takes
 * $LABPULSE_REDIS, then redis://127.0.0.1:6379/0. NULL with err on a bad URL. */
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
