/* lines.h: NDJSON input, a line at a time, from a descriptor (standard
 * input, a file, a Unix socket): what batch-commit and route read when they
 * run in a pipe. */
#ifndef LABPULSE_LINES_H
#define LABPULSE_LINES_H

#include <stddef.h>

struct lines {
	int fd;
	char *buf;
	size_t len, cap;
	size_t used;		/* bytes of buf already handed out */
	long lineno;		/* lines handed out, blank ones counted */
	int eof, error;		/* error: a read failed (eof is set too) */
};

/* The longest line taken: a longer one ends the input as an error, rather
 * than the buffer growing as long as the line does. */
#define LINES_MAX	(64L << 20)

struct addr;

void lines_init(struct lines *l, int fd);
/* Open what a names (addr_open_input) and read lines from it: 0, or
 * -ERR_NOINPUT with err. */
int lines_open(struct lines *l, const struct addr *a, char *err,
    size_t errlen);
/* The next line that is not blank, without its newline (at the end of
 * the input, the last one without one too); NULL when no whole line is in
 * hand. It stays valid until lines_read. */
const char *lines_next(struct lines *l, size_t *len);
/* Wait up to timeout_ms for input and take what is there: 0, or -1 with
 * err when reading failed or a line is longer than LINES_MAX (then eof
 * and error are set, and the part of a line in hand is dropped). Called
 * when lines_next has no whole line to give. */
int lines_read(struct lines *l, int timeout_ms, char *err, size_t errlen);
/* The input ended and every line was handed out. */
int lines_done(const struct lines *l);
/* Free the buffer and close the descriptor (not standard input). */
void lines_free(struct lines *l);

#endif
