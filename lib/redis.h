/* redis.h: one asynchronous Redis connection on the program's event loop,
 * reconnecting with backoff; the server named as in DESIGN.md. */
#ifndef LABPULSE_REDIS_H
#define LABPULSE_REDIS_H

#include <stddef.h>
#include <hiredis/async.h>

struct event_base;
struct rconn;

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
