/* peers.c: bounded tables of what each peer holds: connections per address
 * and token buckets by key. Keys come from the network, so the table hashes
 * them with SipHash under a random key: chains stay short whatever
 * addresses an attacker picks. */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "peers.h"

struct ent {
	struct ent *next;		/* in its hash chain */
	TAILQ_ENTRY(ent) lru;		/* buckets: by last use */
	uint64_t hash;
	long count;			/* peers: connections */
	double tokens;			/* buckets: at last */
	int64_t last;
	size_t klen;
	char key[];
};

struct table {
	struct ent **b;
	size_t nb;		/* a power of two */
	long n;
	uint64_t k0, k1;
};

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND do { \
	v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
	v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2; \
	v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0; \
	v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
} while (0)

/* SipHash-2-4 */
static uint64_t
siphash(const struct table *t, const char *s, size_t n)
{
	uint64_t v0 = 0x736f6d6570736575ULL ^ t->k0;
	uint64_t v1 = 0x646f72616e646f6dULL ^ t->k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ t->k0;
	uint64_t v3 = 0x7465646279746573ULL ^ t->k1;
	uint64_t m, b = (uint64_t)n << 56;
	const unsigned char *p = (const unsigned char *)s;
	size_t i, left = n & 7;
	int j;

	for (i = 0; i + 8 <= n; i += 8) {
		m = 0;
		for (j = 7; j >= 0; j--)
			m = m << 8 | p[i + j];
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (j = (int)left - 1; j >= 0; j--)
		b |= (uint64_t)p[i + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

static int
tab_init(struct table *t)
{
	uint64_t k[2];

	memset(t, 0, sizeof *t);
	if (getrandom(k, sizeof k, GRND_NONBLOCK) != (ssize_t)sizeof k) {
		/* weaker, but the table still works */
		k[0] = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL;
		k[1] = (uint64_t)getpid() * 0xc2b2ae3d27d4eb4fULL ^
		    (uint64_t)(uintptr_t)t;
	}
	t->k0 = k[0];
	t->k1 = k[1];
	t->nb = 16;
	if ((t->b = calloc(t->nb, sizeof *t->b)) == NULL)
		return -1;
	return 0;
}

/* The link that points at key's entry, or at the NULL ending its chain. */
static struct ent **
tab_link(const struct table *t, const char *key, size_t klen, uint64_t h)
{
	struct ent **l = &t->b[h & (t->nb - 1)];

	for (; *l != NULL; l = &(*l)->next)
		if ((*l)->hash == h && (*l)->klen == klen &&
		    memcmp((*l)->key, key, klen) == 0)
			break;
	return l;
}

static struct ent *
tab_find(const struct table *t, const char *key)
{
	size_t klen = strlen(key);

	return *tab_link(t, key, klen, siphash(t, key, klen));
}

/* Rehash into nb chains; on no memory the table stays as it was. */
static void
tab_resize(struct table *t, size_t nb)
{
	struct ent **nbk, *e, *next;
	size_t i;

	if ((nbk = calloc(nb, sizeof *nbk)) == NULL)
		return;
	for (i = 0; i < t->nb; i++)
		for (e = t->b[i]; e != NULL; e = next) {
			next = e->next;
			e->next = nbk[e->hash & (nb - 1)];
			nbk[e->hash & (nb - 1)] = e;
		}
	free(t->b);
	t->b = nbk;
	t->nb = nb;
}

/* A new entry for key, not in the table before; NULL when out of memory. */
static struct ent *
tab_add(struct table *t, const char *key)
{
	size_t klen = strlen(key);
	struct ent *e;
	struct ent **l;

	if ((e = calloc(1, sizeof *e + klen + 1)) == NULL)
		return NULL;
	e->hash = siphash(t, key, klen);
	e->klen = klen;
	memcpy(e->key, key, klen + 1);
	if ((size_t)t->n >= t->nb && t->nb < SIZE_MAX / 2 / sizeof *t->b)
		tab_resize(t, t->nb * 2);
	l = &t->b[e->hash & (t->nb - 1)];
	e->next = *l;
	*l = e;
	t->n++;
	return e;
}

static void
tab_del(struct table *t, struct ent *e)
{
	struct ent **l = tab_link(t, e->key, e->klen, e->hash);

	*l = e->next;
	free(e);
	t->n--;
	/* give memory back once the crowd has gone */
	if (t->nb > 16 && (size_t)t->n < t->nb / 8)
		tab_resize(t, t->nb / 2);
}

static void
tab_free(struct table *t)
{
	struct ent *e, *next;
	size_t i;

	for (i = 0; i < t->nb; i++)
		for (e = t->b[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	free(t->b);
	t->b = NULL;
}

void
peers_addr_text(const struct sockaddr *sa, char buf[64])
{
	const struct sockaddr_in6 *s6;
	struct in_addr a4;

	snprintf(buf, 64, "unknown");
	if (sa == NULL)
		return;
	switch (sa->sa_family) {
	case AF_INET:
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		    buf, 64);
		break;
	case AF_INET6:
		s6 = (const struct sockaddr_in6 *)sa;
		/* one peer, one address, whichever family it came by */
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			memcpy(&a4, &s6->sin6_addr.s6_addr[12], 4);
			inet_ntop(AF_INET, &a4, buf, 64);
		} else
			inet_ntop(AF_INET6, &s6->sin6_addr, buf, 64);
		break;
	case AF_UNIX:
		snprintf(buf, 64, "unix");
		break;
	}
}

struct peers {
	struct table t;
	long max;
};

struct peers *
peers_new(long max)
{
	struct peers *p;

	if (max < 0 || (p = calloc(1, sizeof *p)) == NULL)
		return NULL;
	p->max = max;
	if (tab_init(&p->t) < 0) {
		free(p);
		return NULL;
	}
	return p;
}

int
peers_add(struct peers *p, const char *addr)
{
	struct ent *e = tab_find(&p->t, addr);

	if (e == NULL) {
		if ((e = tab_add(&p->t, addr)) == NULL)
			return -1;
	}
	if (p->max > 0 && e->count >= p->max)
		return -1;
	e->count++;
	return 0;
}

void
peers_del(struct peers *p, const char *addr)
{
	struct ent *e = tab_find(&p->t, addr);

	if (e == NULL)
		return;
	if (--e->count <= 0)
		tab_del(&p->t, e);
}

long
peers_count(const struct peers *p, const char *addr)
{
	struct ent *e = tab_find(&p->t, addr);

	return e ? e->count : 0;
}

long
peers_addresses(const struct peers *p)
{
	return p->t.n;
}

/* A table's owner (peers, buckets) and the table in it. */
static void
owner_free(void *owner, struct table *t)
{
	if (owner == NULL)
		return;
	tab_free(t);
	free(owner);
}

void
peers_free(struct peers *p)
{
	owner_free(p, p ? &p->t : NULL);
}

struct buckets {
	struct table t;
	double rate, burst;	/* tokens a second, tokens */
	long max_keys;
	TAILQ_HEAD(, ent) lru;		/* the oldest first */
};

struct buckets *
buckets_new(double rate, double burst, long max_keys)
{
	struct buckets *b;

	if (!(rate > 0) || !(burst >= 1) || max_keys < 1 ||
	    (b = calloc(1, sizeof *b)) == NULL)
		return NULL;
	b->rate = rate;
	b->burst = burst;
	b->max_keys = max_keys;
	if (tab_init(&b->t) < 0) {
		free(b);
		return NULL;
	}
	TAILQ_INIT(&b->lru);
	return b;
}

/* e's tokens at now, at most burst; a clock that steps back adds none.
 * Within a billionth of a token counts as there: the arithmetic is in
 * floating point, and a wait must not come out a microsecond long. */
static double
refill(const struct buckets *b, const struct ent *e, int64_t now)
{
	double t = e->tokens;

	if (now > e->last)
		t += (double)(now - e->last) * b->rate / 1e6;
	return t > b->burst - 1e-9 ? b->burst : t;
}

/* Microseconds until e holds want tokens; at least 1. */
static int64_t
wait_for(const struct buckets *b, const struct ent *e, int64_t now,
    double want)
{
	double us = ceil((want - refill(b, e, now)) * 1e6 / b->rate - 1e-6);

	if (us < 1)
		return 1;
	if (us > 9e18)
		return INT64_MAX;
	return (int64_t)us;
}

long
buckets_keys(const struct buckets *b)
{
	return b->t.n;
}

static void
bucket_forget(struct buckets *b, struct ent *e)
{
	TAILQ_REMOVE(&b->lru, e, lru);
	tab_del(&b->t, e);
}

int64_t
buckets_take(struct buckets *b, const char *key, int64_t now_us)
{
	struct ent *e = tab_find(&b->t, key);
	double t;

	if (e == NULL) {
		/* The least recently used bucket is the one most likely to
		 * have refilled: forget it if it has, else make the newcomer
		 * wait for it rather than grow past max_keys. */
		if (b->t.n >= b->max_keys) {
			struct ent *old = TAILQ_FIRST(&b->lru);

			if (old == NULL || refill(b, old, now_us) < b->burst)
				return old ? wait_for(b, old, now_us,
				    b->burst) : 1;
			bucket_forget(b, old);
		}
		if ((e = tab_add(&b->t, key)) == NULL)
			return 1000000;	/* out of memory: come later */
		e->tokens = b->burst;
		e->last = now_us;
		TAILQ_INSERT_TAIL(&b->lru, e, lru);
	}
	t = refill(b, e, now_us);
	if (t < 1 - 1e-9)
		return wait_for(b, e, now_us, 1);
	if (t < 1)
		t = 1;
	e->tokens = t - 1;
	if (now_us > e->last)
		e->last = now_us;
	TAILQ_REMOVE(&b->lru, e, lru);
	TAILQ_INSERT_TAIL(&b->lru, e, lru);
	return 0;
}

void
buckets_expire(struct buckets *b, int64_t now_us)
{
	struct ent *e, *next;

	for (e = TAILQ_FIRST(&b->lru); e != NULL; e = next) {
		next = TAILQ_NEXT(e, lru);
		if (refill(b, e, now_us) >= b->burst)
			bucket_forget(b, e);
	}
}

void
buckets_free(struct buckets *b)
{
	owner_free(b, b ? &b->t : NULL);
}
