/* auth.c: who holds a token. Answers are cached by the token's SHA-256 (the
 * form instructors.token_hash keeps), for --token-ttl and at most
 * AUTH_MAX_ENTRIES, and the tokens still to be asked are asked together in
 * one query, one batch at a time: a thousand dashboards reconnecting at
 * once after a restart cost a query per few hundred distinct tokens, not a
 * thousand queries queued behind a pool of two. A revocation (listen.c, or
 * SIGHUP) drops answers and bumps a generation, so that a batch asked
 * before it (for that token, or for any at SIGHUP) is asked again rather
 * than believed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "log.h"
#include "notify.h"
#include "stats.h"

#define AUTH_BUCKETS	1024
#define AUTH_BATCH	500	/* digests a query asks for at most */

/* The instructors of a batch of digests, with the classes each may watch. */
static const char sql_auth_batch[] =
	"SELECT i.token_hash, i.name, coalesce((SELECT json_agg(c.class_id"
	" ORDER BY c.class_id) FROM instructor_classes c"
	" WHERE c.instructor_id = i.id), '[]')"
	" FROM instructors i"
	" WHERE i.token_hash = ANY($1::text[]) AND i.disabled_at IS NULL";

enum astate {
	A_QUEUED,	/* to be asked in the next batch */
	A_ASKED,	/* in the batch in flight */
	A_KNOWN		/* an instructor's, until expires_us */
};

struct waiter {
	auth_done_fn done;
	void *arg;
};

struct aentry {
	char hex[NOTIFY_DIGEST_HEX];
	enum astate state;
	char instructor[128];
	jv classes;
	int64_t expires_us;
	struct waiter *w;
	int nw, capw;
	TAILQ_ENTRY(aentry) order;	/* queued: the queue; known: by age */
	struct aentry *next;		/* in its bucket */
};
TAILQ_HEAD(aentry_list, aentry);

struct authcache {
	struct notify *n;
	int64_t ttl_us;
	struct aentry *buckets[AUTH_BUCKETS];
	struct aentry_list queued, known;
	long nknown, nqueued;
	int asking;		/* a batch is in flight */
	int closing;		/* exit: nothing more is asked */
	unsigned long gen;	/* bumped by every revocation */
	unsigned long hits, misses, batches, asked, evicted, expired, forgotten;
	unsigned long errors;
};

static unsigned
bucket(const char *hex)
{
	unsigned h = 0;

	for (int i = 0; i < 8 && hex[i]; i++)
		h = h * 31 + (unsigned char)hex[i];
	return h % AUTH_BUCKETS;
}

static struct aentry *
find(struct authcache *a, const char *hex)
{
	struct aentry *e;

	for (e = a->buckets[bucket(hex)]; e; e = e->next)
		if (strcmp(e->hex, hex) == 0)
			return e;
	return NULL;
}

static void
unlink_entry(struct authcache *a, struct aentry *e)
{
	struct aentry **pp = &a->buckets[bucket(e->hex)];

	while (*pp && *pp != e)
		pp = &(*pp)->next;
	if (*pp)
		*pp = e->next;
	if (e->state == A_KNOWN) {
		TAILQ_REMOVE(&a->known, e, order);
		a->nknown--;
	} else if (e->state == A_QUEUED) {
		TAILQ_REMOVE(&a->queued, e, order);
		a->nqueued--;
	}
}

/* Only entries nobody waits for are freed. */
static void
entry_free(struct authcache *a, struct aentry *e)
{
	unlink_entry(a, e);
	jv_free(e->classes);
	free(e->w);
	free(e);
}

/* Tell everyone waiting for e; e stays as it is. */
static void
answer(struct aentry *e, int status, const char *err)
{
	struct waiter *w = e->w;
	int i, nw = e->nw;

	e->w = NULL;
	e->nw = e->capw = 0;
	for (i = 0; i < nw; i++)
		w[i].done(w[i].arg, status, e->instructor, e->classes, err);
	free(w);
}

static void ask(struct authcache *a);

struct batch {
	struct authcache *a;
	struct aentry **e;
	int n;
	unsigned long gen;
};

static void
on_batch(PGresult *res, const char *err, void *arg)
{
	struct batch *b = arg;
	struct authcache *a = b->a;
	int64_t now = stats_mono_us();
	int i, r, rows = res ? PQntuples(res) : 0;

	a->asking = 0;
	if (res && b->gen != a->gen) {
		/* a revocation came while it ran: what it saw may be stale */
		for (i = 0; i < b->n; i++) {
			b->e[i]->state = A_QUEUED;
			TAILQ_INSERT_TAIL(&a->queued, b->e[i], order);
			a->nqueued++;
		}
		goto out;
	}
	if (res == NULL)
		a->errors++;
	for (i = 0; i < b->n; i++) {
		struct aentry *e = b->e[i];

		for (r = 0; res && r < rows; r++)
			if (strcmp(PQgetvalue(res, r, 0), e->hex) == 0)
				break;
		if (res == NULL || r == rows) {
			/* unknown tokens are not kept: one added a moment
			 * later works at once */
			unlink_entry(a, e);
			answer(e, res ? 401 : 503, err);
			jv_free(e->classes);
			free(e);
			continue;
		}
		snprintf(e->instructor, sizeof e->instructor, "%s",
		    PQgetvalue(res, r, 1));
		jv_free(e->classes);
		e->classes = jv_parse(PQgetvalue(res, r, 2));
		if (jv_get_kind(e->classes) != JV_KIND_ARRAY) {
			jv_free(e->classes);
			e->classes = jv_array();
		}
		e->state = A_KNOWN;
		e->expires_us = now + a->ttl_us;
		TAILQ_INSERT_TAIL(&a->known, e, order);
		a->nknown++;
		answer(e, 0, NULL);
		if (a->ttl_us == 0)
			entry_free(a, e);
	}
	while (a->nknown > AUTH_MAX_ENTRIES) {
		a->evicted++;
		entry_free(a, TAILQ_FIRST(&a->known));
	}
out:
	free(b->e);
	free(b);
	ask(a);
}

/* Ask for what is queued, when no batch is in flight. */
static void
ask(struct authcache *a)
{
	struct batch *b;
	struct aentry *e;
	char *arr, *p;
	const char *params[1];

	if (a->asking || a->closing || TAILQ_EMPTY(&a->queued))
		return;
	b = calloc(1, sizeof *b);
	arr = malloc(AUTH_BATCH * NOTIFY_DIGEST_HEX + 3);
	if (b)
		b->e = calloc(AUTH_BATCH, sizeof *b->e);
	if (b == NULL || b->e == NULL || arr == NULL) {
		/* tell the first in line; the others wait for the next try */
		e = TAILQ_FIRST(&a->queued);
		unlink_entry(a, e);
		answer(e, 503, "out of memory");
		jv_free(e->classes);
		free(e);
		if (b)
			free(b->e);
		free(b);
		free(arr);
		return;
	}
	b->a = a;
	b->gen = a->gen;
	p = arr;
	*p++ = '{';
	while ((e = TAILQ_FIRST(&a->queued)) != NULL && b->n < AUTH_BATCH) {
		TAILQ_REMOVE(&a->queued, e, order);
		a->nqueued--;
		e->state = A_ASKED;
		b->e[b->n++] = e;
		if (p > arr + 1)
			*p++ = ',';
		memcpy(p, e->hex, NOTIFY_DIGEST_HEX - 1);
		p += NOTIFY_DIGEST_HEX - 1;
	}
	*p++ = '}';
	*p = '\0';
	a->asking = 1;
	a->batches++;
	a->asked += (unsigned long)b->n;
	params[0] = arr;
	/* ahead of snapshots: a dashboard waits for its token first */
	pgpool_query_first(a->n->pool, sql_auth_batch, 1, params, on_batch, b);
	free(arr);
}

struct authcache *
auth_new(struct notify *n, long ttl_ms)
{
	struct authcache *a = calloc(1, sizeof *a);

	if (a == NULL)
		return NULL;
	a->n = n;
	a->ttl_us = (int64_t)ttl_ms * 1000;
	TAILQ_INIT(&a->queued);
	TAILQ_INIT(&a->known);
	return a;
}

void
auth_check(struct notify *n, const char *hex, auth_done_fn done, void *arg)
{
	struct authcache *a = n->auth;
	struct aentry *e = find(a, hex);
	struct waiter *w;

	if (e && e->state == A_KNOWN) {
		/* a revocation that came while the loop was busy goes first:
		 * it may drop this very answer */
		listen_poll(n->listener);
		e = find(a, hex);
	}
	if (e && e->state == A_KNOWN && e->expires_us <= stats_mono_us()) {
		a->expired++;
		entry_free(a, e);
		e = NULL;
	}
	if (e && e->state == A_KNOWN) {
		a->hits++;
		/* the oldest go first when the cache is full */
		TAILQ_REMOVE(&a->known, e, order);
		TAILQ_INSERT_TAIL(&a->known, e, order);
		done(arg, 0, e->instructor, e->classes, NULL);
		return;
	}
	a->misses++;
	if (e == NULL) {
		e = calloc(1, sizeof *e);
		if (e == NULL) {
			done(arg, 503, "", jv_null(), "out of memory");
			return;
		}
		snprintf(e->hex, sizeof e->hex, "%s", hex);
		e->classes = jv_array();
		e->state = A_QUEUED;
		e->next = a->buckets[bucket(e->hex)];
		a->buckets[bucket(e->hex)] = e;
		TAILQ_INSERT_TAIL(&a->queued, e, order);
		a->nqueued++;
	}
	if (e->nw == e->capw) {
		int cap = e->capw ? 2 * e->capw : 4;

		w = realloc(e->w, (size_t)cap * sizeof *w);
		if (w == NULL) {
			if (e->nw == 0 && e->state == A_QUEUED)
				entry_free(a, e);
			done(arg, 503, "", jv_null(), "out of memory");
			return;
		}
		e->w = w;
		e->capw = cap;
	}
	e->w[e->nw].done = done;
	e->w[e->nw].arg = arg;
	e->nw++;
	ask(a);
}

void
auth_forget(struct notify *n, const char *hex)
{
	struct authcache *a = n->auth;
	struct aentry *e = find(a, hex);

	/* only the batch that asks for this very token can have seen it
	 * before it was revoked: the others' answers stand, so that a stream
	 * of revocations of other tokens does not keep every check waiting */
	if (e && e->state == A_ASKED)
		a->gen++;
	if (e && e->state == A_KNOWN) {
		a->forgotten++;
		entry_free(a, e);
	}
}

void
auth_flush(struct notify *n)
{
	struct authcache *a = n->auth;

	a->gen++;
	while (!TAILQ_EMPTY(&a->known)) {
		a->forgotten++;
		entry_free(a, TAILQ_FIRST(&a->known));
	}
}

jv
auth_stats(struct notify *n)
{
	struct authcache *a = n->auth;
	jv o = jv_object();

	o = jv_object_set(o, jv_string("entries"), jv_number(a->nknown));
	o = jv_object_set(o, jv_string("max_entries"),
	    jv_number(AUTH_MAX_ENTRIES));
	o = jv_object_set(o, jv_string("ttl_ms"),
	    jv_number((double)(a->ttl_us / 1000)));
	o = jv_object_set(o, jv_string("hits"), jv_number(a->hits));
	o = jv_object_set(o, jv_string("misses"), jv_number(a->misses));
	o = jv_object_set(o, jv_string("queued"), jv_number(a->nqueued));
	o = jv_object_set(o, jv_string("batches"), jv_number(a->batches));
	o = jv_object_set(o, jv_string("asked"), jv_number(a->asked));
	o = jv_object_set(o, jv_string("expired"), jv_number(a->expired));
	o = jv_object_set(o, jv_string("evicted"), jv_number(a->evicted));
	o = jv_object_set(o, jv_string("forgotten"), jv_number(a->forgotten));
	o = jv_object_set(o, jv_string("errors"), jv_number(a->errors));
	return o;
}

void
auth_close(struct authcache *a)
{
	if (a)
		a->closing = 1;
}

void
auth_free(struct authcache *a)
{
	int i;

	if (a == NULL)
		return;
	/* the pool answered its batch before this ("shutting down"); what
	 * waits still is answered now */
	for (i = 0; i < AUTH_BUCKETS; i++)
		while (a->buckets[i]) {
			struct aentry *e = a->buckets[i];

			a->buckets[i] = e->next;
			answer(e, 503, "shutting down");
			jv_free(e->classes);
			free(e);
		}
	free(a);
}
