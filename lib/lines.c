/* lines.c: NDJSON input, a line at a time. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "lines.h"

#define READ_AT_LEAST	65536	/* room made before each read */

void
lines_init(struct lines *l, int fd)
{
	memset(l, 0, sizeof *l);
	l->fd = fd;
}

int
lines_open(struct lines *l, const struct addr *a, char *err, size_t errlen)
{
	int fd = addr_open_input(a, err, errlen);

	if (fd < 0)
		return fd;
	lines_init(l, fd);
	return 0;
}

static int
blank(const char *p, size_t n)
{
	while (n > 0 && (*p == ' ' || *p == '\t' || *p == '\r')) {
		p++;
		n--;
	}
	return n == 0;
}

const char *
lines_next(struct lines *l, size_t *len)
{
	const char *line, *nl;
	size_t n;

	while (l->used < l->len) {
		line = l->buf + l->used;
		nl = memchr(line, '\n', l->len - l->used);
		if (nl == NULL && !l->eof)
			return NULL;
		n = nl ? (size_t)(nl - line) : l->len - l->used;
		l->used += n + (nl != NULL);
		l->lineno++;
		if (!blank(line, n)) {
			*len = n;
			return line;
		}
	}
	return NULL;
}

/* The input ends in error; the part of a line in hand is no line. */
static int
fail(struct lines *l)
{
	l->eof = l->error = 1;
	l->used = l->len;
	return -1;
}

int
lines_read(struct lines *l, int timeout_ms, char *err, size_t errlen)
{
	struct pollfd pfd = { l->fd, POLLIN, 0 };
	size_t want;
	char *nb;
	ssize_t n;

	if (l->used > 0) {
		memmove(l->buf, l->buf + l->used, l->len - l->used);
		l->len -= l->used;
		l->used = 0;
	}
	if (l->eof || poll(&pfd, 1, timeout_ms) <= 0)
		return 0;
	/* what is in hand is one line, not whole yet */
	if (l->len >= (size_t)LINES_MAX) {
		snprintf(err, errlen, "a line longer than %ld MiB",
		    LINES_MAX >> 20);
		return fail(l);
	}
	if (l->cap - l->len < READ_AT_LEAST) {
		nb = realloc(l->buf, l->cap ? l->cap * 2 : 2 * READ_AT_LEAST);
		if (nb == NULL) {
			snprintf(err, errlen, "out of memory");
			return fail(l);
		}
		l->buf = nb;
		l->cap = l->cap ? l->cap * 2 : 2 * READ_AT_LEAST;
	}
	/* never past the bound by more than a byte */
	want = l->cap - l->len;
	if (want > (size_t)LINES_MAX + 1 - l->len)
		want = (size_t)LINES_MAX + 1 - l->len;
	n = read(l->fd, l->buf + l->len, want);
	if (n < 0 && errno != EINTR && errno != EAGAIN) {
		snprintf(err, errlen, "%s", strerror(errno));
		return fail(l);
	}
	if (n == 0)
		l->eof = 1;
	else if (n > 0)
		l->len += (size_t)n;
	return 0;
}

int
lines_done(const struct lines *l)
{
	return l->eof && l->used >= l->len;
}

void
lines_free(struct lines *l)
{
	free(l->buf);
	l->buf = NULL;
	l->len = l->cap = l->used = 0;
	if (l->fd > STDERR_FILENO)
		close(l->fd);
	l->fd = -1;
}
