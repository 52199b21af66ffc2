/* fdout.c: blocking NDJSON output; a pipe's back-pressure holds the writer. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "fdout.h"

int
fdout_open(const struct addr *a, char *err, size_t errlen)
{
	int fd;

	switch (a->kind) {
	case ADDR_STDIO:
		fd = STDOUT_FILENO;
		/* stdout may have been left nonblocking by whoever gave it. */
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
		return fd;
	case ADDR_FILE:
		fd = open(a->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0)
			snprintf(err, errlen, "cannot open %s: %s", a->path,
			    strerror(errno));
		return fd;
	case ADDR_UNIX:
		return addr_connect_unix(a->path, err, errlen);
	default:
		snprintf(err, errlen, "not a file, socket or stdout");
		return -1;
	}
}

int
fdout_write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= n;
	}
	return 0;
}
