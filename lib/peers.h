/* peers.h: what one peer may hold on a server: connections per address,
 * and token buckets for request rates by any key (an address, a token).
 * Both tables are bounded: see each function. */
#ifndef LABPULSE_PEERS_H
#define LABPULSE_PEERS_H

#include <stdint.h>

/* The text of a peer's address as the tables key it: "192.0.2.1",
 * "2001:db8::1", or "unix" for a Unix socket peer. An IPv4-mapped IPv6
 * address is the IPv4 one; no port, no scope; "unknown" for NULL or any
 * other family. */
struct sockaddr;
void peers_addr_text(const struct sockaddr *sa, char buf[64]);

struct peers;
/* max: connections one address may hold at once (0: no cap). NULL when
 * out of memory or max < 0. An address has an entry only while it holds a
 * connection, so memory follows the connections open. */
struct peers *peers_new(long max);
/* Count a new connection from addr: 0, or -1 when addr holds max already
 * (nothing counted) or memory ran out. */
int peers_add(struct peers *p, const char *addr);
/* The connection counted by peers_add closed; an address not counted is
 * left alone. */
void peers_del(struct peers *p, const char *addr);
/* Connections addr holds now; 0 when none. */
long peers_count(const struct peers *p, const char *addr);
/* Addresses holding at least one connection. */
long peers_addresses(const struct peers *p);
/* Free p and all it holds; NULL is harmless. */
void peers_free(struct peers *p);

struct buckets;
/* rate tokens a second, up to burst; at most max_keys keys are kept. NULL
 * when out of memory, rate <= 0, burst < 1 or max_keys < 1. A new key's
 * bucket starts full. */
struct buckets *buckets_new(double rate, double burst, long max_keys);
/* Take one token for key at now_us (monotonic): 0 when there was one,
 * else the microseconds until there will be (nothing taken), at least 1.
 * A new key when max_keys are kept: the least recently used bucket is
 * forgotten if it has refilled, else the new key waits until it will have
 * (the table never grows past max_keys). 1 s when out of memory. O(1). */
int64_t buckets_take(struct buckets *b, const char *key, int64_t now_us);
/* Forget the buckets that have refilled (a forgotten key comes back
 * full, so nothing changes for it); call now and then. O(keys). */
void buckets_expire(struct buckets *b, int64_t now_us);
/* Keys kept now. */
long buckets_keys(const struct buckets *b);
/* Free b and all it holds; NULL is harmless. */
void buckets_free(struct buckets *b);

#endif
