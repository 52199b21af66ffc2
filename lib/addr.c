/* addr.c: parse addresses and open the sockets they name. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "addr.h"
#include "err.h"

static int
copy_field(char *dst, size_t dstlen, const char *src, size_t n,
    const char *what, char *err, size_t errlen)
{
	if (n == 0) {
		snprintf(err, errlen, "empty %s", what);
		return -1;
	}
	if (n >= dstlen) {
		snprintf(err, errlen, "%s too long (at most %zu bytes)", what,
		    dstlen - 1);
		return -1;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
	return 0;
}

int
addr_parse(const char *spec, struct addr *a, char *err, size_t errlen)
{
	const char *at;

	memset(a, 0, sizeof *a);
	if (strcmp(spec, "-") == 0) {
		a->kind = ADDR_STDIO;
		return 0;
	}
	if (strncmp(spec, "file:", 5) == 0) {
		a->kind = ADDR_FILE;
		return copy_field(a->path, sizeof a->path, spec + 5,
		    strlen(spec + 5), "file path", err, errlen);
	}
	if (strncmp(spec, "unix:", 5) == 0) {
		a->kind = ADDR_UNIX;
		if (strlen(spec + 5) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
			snprintf(err, errlen, "socket path too long: %s", spec + 5);
			return -1;
		}
		return copy_field(a->path, sizeof a->path, spec + 5,
		    strlen(spec + 5), "socket path", err, errlen);
	}
	if (strncmp(spec, "stream:", 7) == 0) {
		spec += 7;
		a->kind = ADDR_STREAM;
		at = strchr(spec, '@');
		if (at == NULL)
			return copy_field(a->stream, sizeof a->stream, spec,
			    strlen(spec), "stream name", err, errlen);
		if (copy_field(a->stream, sizeof a->stream, spec, at - spec,
		    "stream name", err, errlen) < 0)
			return -1;
		return copy_field(a->group, sizeof a->group, at + 1,
		    strlen(at + 1), "consumer group", err, errlen);
	}
	snprintf(err, errlen, "unknown address '%s' (expected -, file:PATH, "
	    "unix:PATH or stream:NAME[@GROUP])", spec);
	return -1;
}

/* path as a Unix socket's address; -1 when it is empty or too long. */
static int
unix_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof *sun);
	sun->sun_family = AF_UNIX;
	if (*path == '\0' || strlen(path) >= sizeof sun->sun_path)
		return -1;
	strcpy(sun->sun_path, path);
	return 0;
}

/* A stream socket connected to sun (backlog below 0, blocking), or bound
 * to it and listening (nonblocking); -1 with errno. */
static int
unix_open(const struct sockaddr_un *sun, int backlog)
{
	const struct sockaddr *sa = (const struct sockaddr *)sun;
	int fd, rc, e;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
	    (backlog < 0 ? 0 : SOCK_NONBLOCK), 0);
	if (fd < 0)
		return -1;
	rc = backlog < 0 ? connect(fd, sa, sizeof *sun) :
	    bind(fd, sa, sizeof *sun);
	if (rc == 0 && backlog >= 0)
		rc = listen(fd, backlog);
	if (rc < 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int
listen_unix(const char *path, int backlog, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd;

	if (unix_addr(path, &sun) < 0) {
		snprintf(err, errlen, "bad socket path '%s'", path);
		return -ERR_USAGE;
	}
	/* A socket left by a previous run is replaced; a socket some process
	 * still answers on, or any other file, is not. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s exists and is not a socket", path);
			return -ERR_OS;
		}
		if ((fd = unix_open(&sun, -1)) >= 0) {
			close(fd);
			snprintf(err, errlen, "%s is in use by another process", path);
			return -ERR_OS;
		}
		unlink(path);
	}
	if ((fd = unix_open(&sun, backlog)) < 0) {
		snprintf(err, errlen, "cannot listen on unix:%s: %s", path,
		    strerror(errno));
		return -ERR_OS;
	}
	return fd;
}

int
addr_listen(const char *spec, int backlog, char *err, size_t errlen)
{
	char host[256];
	const char *port, *colon;
	struct addrinfo hints, *res = NULL;
	int fd, rc, one = 1;
	size_t hl;

	if (strncmp(spec, "unix:", 5) == 0)
		return listen_unix(spec + 5, backlog, err, errlen);
	if (spec[0] == '[') {
		colon = strstr(spec, "]:");
		if (colon == NULL)
			goto bad;
		hl = colon - spec - 1;
		if (hl >= sizeof host)
			goto bad;
		memcpy(host, spec + 1, hl);
		host[hl] = '\0';
		port = colon + 2;
	} else {
		colon = strrchr(spec, ':');
		if (colon == NULL || memchr(spec, ':', colon - spec) != NULL)
			goto bad;
		hl = colon - spec;
		if (hl >= sizeof host)
			goto bad;
		memcpy(host, spec, hl);
		host[hl] = '\0';
		port = colon + 1;
	}
	if (*port == '\0' || strspn(port, "0123456789") != strlen(port) ||
	    atol(port) > 65535)
		goto bad;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(*host ? host : NULL, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve '%s': %s", spec,
		    gai_strerror(rc));
		return -ERR_OS;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		freeaddrinfo(res);
		return -ERR_OS;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
	    listen(fd, backlog) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", spec,
		    strerror(errno));
		close(fd);
		freeaddrinfo(res);
		return -ERR_OS;
	}
	freeaddrinfo(res);
	return fd;
bad:
	snprintf(err, errlen, "bad listen address '%s' (expected HOST:PORT, "
	    "[IPV6]:PORT or unix:PATH)", spec);
	return -ERR_USAGE;
}

void
addr_describe(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char host[INET6_ADDRSTRLEN];

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		snprintf(buf, len, "fd:%d", fd);
		return;
	}
	if (ss.ss_family == AF_UNIX) {
		snprintf(buf, len, "unix:%s", ((struct sockaddr_un *)&ss)->sun_path);
	} else if (ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
		snprintf(buf, len, "%s:%u", host, ntohs(sin->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
		snprintf(buf, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, len, "fd:%d", fd);
	}
}

int
addr_connect_unix(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	int fd;

	if (unix_addr(path, &sun) < 0) {
		snprintf(err, errlen, "socket path too long: %s", path);
		return -1;
	}
	if ((fd = unix_open(&sun, -1)) < 0) {
		snprintf(err, errlen, "cannot connect to unix:%s: %s", path,
		    strerror(errno));
		return -1;
	}
	return fd;
}

int
addr_open_input(const struct addr *a, char *err, size_t errlen)
{
	int fd;

	if (a->kind == ADDR_STDIO)
		return STDIN_FILENO;
	if (a->kind == ADDR_UNIX)
		fd = addr_connect_unix(a->path, err, errlen);
	else if ((fd = open(a->path, O_RDONLY | O_CLOEXEC)) < 0)
		snprintf(err, errlen, "cannot open %s: %s", a->path,
		    strerror(errno));
	return fd < 0 ? -ERR_NOINPUT : fd;
}

int
addr_parse_group_input(const char *spec, struct addr *a, char *err,
    size_t errlen)
{
	if (addr_parse(spec, a, err, errlen) < 0)
		return -1;
	if (a->kind == ADDR_STREAM && a->group[0] == '\0') {
		snprintf(err, errlen, "a stream is read as a consumer group: "
		    "stream:%s@GROUP", a->stream);
		return -1;
	}
	return 0;
}
