/* test_lines: NDJSON input a line at a time (lib/lines.c), through a pipe:
 * blank lines skipped but counted, a last line without its newline, a
 * line split across reads, the end. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "lines.h"
#include "tap.h"

static const char *
next(struct lines *l, char *buf, size_t cap)
{
	const char *p;
	size_t n;

	if ((p = lines_next(l, &n)) == NULL)
		return NULL;
	if (n >= cap)
		n = cap - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return buf;
}

int
main(void)
{
	struct lines l;
	char err[200], got[64];
	int fd[2];

	if (pipe(fd) < 0)
		bail_out("pipe");
	lines_init(&l, fd[0]);
	ok(next(&l, got, sizeof got) == NULL, "nothing before a read");
	(void)!write(fd[1], "{\"a\":1}\n\n \t\r\n{\"b\"", 17);
	is_int(lines_read(&l, 1000, err, sizeof err), 0, "a read");
	is_str(next(&l, got, sizeof got), "{\"a\":1}", "the first line");
	is_int((int)l.lineno, 1, "counted as line 1");
	ok(next(&l, got, sizeof got) == NULL,
	    "blank lines skipped, a half line kept");
	is_int((int)l.lineno, 3, "the blank lines counted");
	(void)!write(fd[1], ":2}\n{\"c\":3}", 11);
	close(fd[1]);
	is_int(lines_read(&l, 1000, err, sizeof err), 0, "the rest");
	is_str(next(&l, got, sizeof got), "{\"b\":2}", "a line across reads");
	is_int((int)l.lineno, 4, "line 4");
	ok(next(&l, got, sizeof got) == NULL, "no newline yet: not whole");
	ok(!lines_done(&l), "not done before the end is seen");
	is_int(lines_read(&l, 1000, err, sizeof err), 0, "the end");
	ok(l.eof && !l.error, "eof, no error");
	is_str(next(&l, got, sizeof got), "{\"c\":3}",
	    "at the end, the last line without its newline");
	ok(next(&l, got, sizeof got) == NULL, "then nothing");
	ok(lines_done(&l), "done");
	lines_free(&l);
	/* a line that never ends is refused at the bound, not kept growing */
	if (pipe(fd) < 0)
		bail_out("pipe");
	lines_init(&l, fd[0]);
	{
		static char chunk[1 << 16];
		long sent = 0;
		int rc = 0;

		memset(chunk, 'x', sizeof chunk);
		while (rc == 0 && sent <= LINES_MAX + (long)sizeof chunk) {
			(void)!write(fd[1], chunk, sizeof chunk);
			sent += (long)sizeof chunk;
			rc = lines_read(&l, 1000, err, sizeof err);
		}
		is_int(rc, -1, "a line past LINES_MAX ends the input");
		is_str(err, "a line longer than 64 MiB", "and says so");
		ok(l.eof && l.error && l.len <= (size_t)LINES_MAX + 1,
		    "with no more than the bound kept, and a byte");
		ok(next(&l, got, sizeof got) == NULL,
		    "and the part in hand is no line");
	}
	close(fd[1]);
	lines_free(&l);
	lines_init(&l, 12345);
	is_int(lines_read(&l, 0, err, sizeof err), -1,
	    "a read that fails is an error");
	is_str(err, strerror(EBADF), "and says why");
	ok(l.eof && l.error, "the input ends with an error");
	lines_free(&l);
	return done_testing();
}
