/* httpreq.c: fuzz lib/httpreq. The first two bytes choose the limits and
 * how the stream is cut; the rest is a connection's bytes. Each request is
 * read once whole and once in pieces: the two must agree on everything,
 * and what they agree on must hold the contract (no NUL in the strings,
 * bodies within max_body, ...). DONE requests are walked like a pipelined
 * connection: reset, and on with the bytes that follow. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpreq.h"

static const struct httpreq_limits limits[] = {
	{ 8192, 1024, 64 },
	{ 64, 16, 4 },
	{ 256, 0, 8 },
	{ 40, 1000, 1 },
};

#define check(c) do { if (!(c)) abort(); } while (0)

static int
same(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* s is a string of the head: it came from the input, and holds no NUL
 * (the terminating one aside) and no control byte. */
static void
head_string(const char *s, size_t maxlen)
{
	size_t i, n = strlen(s);

	check(n <= maxlen);
	for (i = 0; i < n; i++)
		check((unsigned char)s[i] >= 0x20 || s[i] == '\t');
}

/* s came from the request's bytes as they are */
static void
from_input(const char *s, const char *p, size_t used)
{
	size_t n = strlen(s);

	check(n == 0 || memmem(p, used, s, n) != NULL);
}

static void
invariants(const struct httpreq *r, const struct httpreq_limits *lim,
    const char *p, size_t used, size_t avail)
{
	int i;

	check(used > 0 && used <= avail);
	check(httpreq_started(r) == used);
	check(r->method != NULL && r->target != NULL && r->path != NULL);
	head_string(r->method, 16);
	head_string(r->target, lim->max_head);
	from_input(r->target, p, used);
	check(strchr(r->target, ' ') == NULL);
	check(strlen(r->path) <= strlen(r->target) || strcmp(r->path, "/") == 0);
	check(r->path[0] != '\0');
	if (r->query != NULL)
		head_string(r->query, strlen(r->target));
	check(r->nheaders >= 0 && r->nheaders <= lim->max_headers);
	check(r->nheaders == 0 || r->headers != NULL);
	for (i = 0; i < r->nheaders; i++) {
		head_string(r->headers[i].name, lim->max_head);
		head_string(r->headers[i].value, lim->max_head);
		check(r->headers[i].name[0] != '\0');
		check(strpbrk(r->headers[i].name, " \t:") == NULL);
		check(httpreq_header(r, r->headers[i].name) != NULL);
		from_input(r->headers[i].name, p, used);
		from_input(r->headers[i].value, p, used);
	}
	check(r->body_len <= lim->max_body);
	check((r->body == NULL) == (r->body_len == 0));
	if (r->body != NULL)
		check(r->body[r->body_len] == '\0');
	check(r->http_minor >= 0 && r->http_minor <= 9);
	check(r->keep_alive == 0 || r->keep_alive == 1);
	check(r->upgrade == 0 || r->upgrade == 1);
	/* the head within max_head: all but the body, for a plain body */
	if (httpreq_header(r, "Transfer-Encoding") == NULL) {
		check(used - r->body_len <= lim->max_head);
		check(memchr(p, '\0', used - r->body_len) == NULL);
		check(r->body_len == 0 ||
		    memcmp(p + used - r->body_len, r->body, r->body_len) == 0);
	} else
		check(used - r->body_len <= lim->max_head + lim->max_body +
		    lim->max_head);
}

static void
agree(const struct httpreq *a, const struct httpreq *b)
{
	int i;

	check(same(a->method, b->method));
	check(same(a->target, b->target));
	check(same(a->path, b->path));
	check(same(a->query, b->query));
	check(a->nheaders == b->nheaders);
	for (i = 0; i < a->nheaders; i++) {
		check(same(a->headers[i].name, b->headers[i].name));
		check(same(a->headers[i].value, b->headers[i].value));
	}
	check(a->body_len == b->body_len);
	check(a->body_len == 0 || memcmp(a->body, b->body, a->body_len) == 0);
	check(a->http_minor == b->http_minor);
	check(a->keep_alive == b->keep_alive);
	check(a->upgrade == b->upgrade);
}

/* Feed p to r in pieces of step and 1 bytes in turn. */
static enum httpreq_state
feed_pieces(struct httpreq *r, const char *p, size_t n, size_t step,
    size_t *usedp)
{
	enum httpreq_state st = HTTPREQ_MORE;
	size_t off = 0, k, used;
	int j = 0;

	while (off < n) {
		k = j++ % 2 ? 1 : step;
		if (k > n - off)
			k = n - off;
		st = httpreq_feed(r, p + off, k, &used);
		check(used <= k);
		if (st != HTTPREQ_MORE) {
			off += used;
			break;
		}
		check(used == k);
		off += used;
	}
	*usedp = off;
	return st;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct httpreq_limits *lim;
	struct httpreq whole, cut;
	enum httpreq_state s1, s2;
	const char *p;
	size_t n, u1, u2, step;
	int requests = 0;

	if (size < 2)
		return 0;
	lim = &limits[data[0] % (sizeof limits / sizeof *limits)];
	step = 1 + data[1] % 23;
	p = (const char *)data + 2;
	n = size - 2;
	if (httpreq_init(&whole, lim) < 0)
		return 0;
	if (httpreq_init(&cut, lim) < 0) {
		httpreq_free(&whole);
		return 0;
	}
	while (n > 0 && requests++ < 64) {
		s1 = httpreq_feed(&whole, p, n, &u1);
		s2 = feed_pieces(&cut, p, n, step, &u2);
		check(s1 == s2);
		if (s1 == HTTPREQ_MORE) {
			check(u1 == n && u2 == n);
			check(httpreq_started(&whole) == n);
			check(httpreq_started(&cut) == n);
			break;
		}
		if (s1 == HTTPREQ_ERROR) {
			check(whole.status == cut.status);
			check(strcmp(whole.error, cut.error) == 0);
			check(whole.status == 400 || whole.status == 413 ||
			    whole.status == 431 || whole.status == 501 ||
			    whole.status == 505);
			check(whole.error[0] != '\0');
			break;
		}
		check(u1 == u2);
		invariants(&whole, lim, p, u1, n);
		agree(&whole, &cut);
		/* DONE holds until reset */
		if (u1 < n) {
			check(httpreq_feed(&whole, p + u1, n - u1, &u2) ==
			    HTTPREQ_DONE && u2 == 0);
		}
		if (whole.upgrade)
			break;	/* the rest is another protocol */
		httpreq_reset(&whole);
		httpreq_reset(&cut);
		check(httpreq_started(&whole) == 0);
		p += u1;
		n -= u1;
	}
	httpreq_free(&whole);
	httpreq_free(&cut);
	return 0;
}
