/* test_addr.c: data addresses (-, file:, unix:, stream:) and listening
 * sockets on TCP, IPv6 and Unix paths, in a temporary directory. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
#include "tap.h"

static const char bad_listen[] =
    "(expected HOST:PORT, [IPV6]:PORT or unix:PATH)";

static char *
repeat(char c, size_t n)
{
	static char buf[300];

	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

static void
parse_ok(const char *spec, enum addr_kind kind, const char *path,
    const char *stream, const char *group)
{
	struct addr a;
	char err[256] = "";

	if (!is_int(addr_parse(spec, &a, err, sizeof err), 0,
	    "parse '%.40s' accepted", spec)) {
		diag("    %s", err);
		return;
	}
	is_int(a.kind, kind, "parse '%.40s': kind", spec);
	is_str(a.path, path, "parse '%.40s': path", spec);
	is_str(a.stream, stream, "parse '%.40s': stream", spec);
	is_str(a.group, group, "parse '%.40s': group", spec);
}

static void
parse_bad(const char *spec, const char *msg)
{
	struct addr a;
	char err[512] = "";

	is_int(addr_parse(spec, &a, err, sizeof err), -1,
	    "parse '%.40s' refused", spec);
	is_str(err, msg, "parse '%.40s': error text", spec);
}

static void
test_parse(void)
{
	char spec[600], msg[700];

	parse_ok("-", ADDR_STDIO, "", "", "");
	parse_ok("file:/var/log/labpulse/events.ndjson", ADDR_FILE,
	    "/var/log/labpulse/events.ndjson", "", "");
	parse_ok("file:out.ndjson", ADDR_FILE, "out.ndjson", "", "");
	parse_ok("unix:/run/labpulse/ingest.sock", ADDR_UNIX,
	    "/run/labpulse/ingest.sock", "", "");
	parse_ok("stream:events", ADDR_STREAM, "", "events", "");
	parse_ok("stream:events@commit", ADDR_STREAM, "", "events", "commit");

	/* the longest that fit */
	snprintf(spec, sizeof spec, "file:/%s", repeat('f', 254));
	parse_ok(spec, ADDR_FILE, spec + 5, "", "");
	snprintf(spec, sizeof spec, "unix:/%s", repeat('u', 106));
	parse_ok(spec, ADDR_UNIX, spec + 5, "", "");
	snprintf(spec, sizeof spec, "stream:%s", repeat('s', 127));
	parse_ok(spec, ADDR_STREAM, "", spec + 7, "");
	snprintf(spec, sizeof spec, "stream:e@%s", repeat('g', 127));
	parse_ok(spec, ADDR_STREAM, "", "e", spec + 9);

	parse_bad("file:", "empty file path");
	parse_bad("unix:", "empty socket path");
	parse_bad("stream:", "empty stream name");
	parse_bad("stream:@commit", "empty stream name");
	parse_bad("stream:events@", "empty consumer group");
	parse_bad("http://localhost/", "unknown address 'http://localhost/' "
	    "(expected -, file:PATH, unix:PATH or stream:NAME[@GROUP])");
	parse_bad("", "unknown address '' (expected -, file:PATH, unix:PATH or "
	    "stream:NAME[@GROUP])");
	parse_bad("FILE:/tmp/x", "unknown address 'FILE:/tmp/x' (expected -, "
	    "file:PATH, unix:PATH or stream:NAME[@GROUP])");
	parse_bad("--", "unknown address '--' (expected -, file:PATH, unix:PATH "
	    "or stream:NAME[@GROUP])");

	snprintf(spec, sizeof spec, "file:/%s", repeat('f', 255));
	parse_bad(spec, "file path too long (at most 255 bytes)");
	snprintf(spec, sizeof spec, "unix:/%s", repeat('u', 107));
	snprintf(msg, sizeof msg, "socket path too long: %s", spec + 5);
	parse_bad(spec, msg);
	snprintf(spec, sizeof spec, "stream:%s", repeat('s', 128));
	parse_bad(spec, "stream name too long (at most 127 bytes)");
	snprintf(spec, sizeof spec, "stream:e@%s", repeat('g', 128));
	parse_bad(spec, "consumer group too long (at most 127 bytes)");
}

static int
is_nonblocking(int fd)
{
	return (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
}

static int
is_cloexec(int fd)
{
	return (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
}

/* The port at the end of "host:port", or 0. */
static unsigned
port_of(const char *desc)
{
	const char *c = strrchr(desc, ':');

	return c ? (unsigned)strtoul(c + 1, NULL, 10) : 0;
}

/* Connect to the listener and accept the connection: it really listens. */
static void
check_accepts(int lfd, const struct sockaddr *sa, socklen_t salen,
    const char *name)
{
	int c, s;

	c = socket(sa->sa_family, SOCK_STREAM, 0);
	ok(c >= 0 && connect(c, sa, salen) == 0, "%s: a client connects", name);
	s = accept(lfd, NULL, NULL);
	ok(s >= 0, "%s: the connection is accepted", name);
	if (s >= 0)
		close(s);
	if (c >= 0)
		close(c);
}

static void
test_tcp(void)
{
	char err[256] = "", desc[128], want[128], spec[64];
	struct sockaddr_in sin;
	unsigned port;
	int fd, fd2;

	fd = addr_listen("127.0.0.1:0", 16, err, sizeof err);
	if (!ok(fd >= 0, "listen on 127.0.0.1:0"))
		diag("    %s", err);
	if (fd < 0) {
		skip(6, "no IPv4 listener");
		return;
	}
	addr_describe(fd, desc, sizeof desc);
	port = port_of(desc);
	ok(port > 0 && port <= 65535, "127.0.0.1:0 got a port (%s)", desc);
	snprintf(want, sizeof want, "127.0.0.1:%u", port);
	is_str(desc, want, "describe gives 127.0.0.1:PORT");
	ok(is_nonblocking(fd) && is_cloexec(fd), "listener is nonblocking and "
	    "close-on-exec");

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	check_accepts(fd, (struct sockaddr *)&sin, sizeof sin, "127.0.0.1");

	/* The port is taken while fd listens. */
	snprintf(spec, sizeof spec, "127.0.0.1:%u", port);
	fd2 = addr_listen(spec, 16, err, sizeof err);
	snprintf(want, sizeof want, "cannot listen on %s: %s", spec,
	    strerror(EADDRINUSE));
	is_int(fd2, -ERR_OS, "a port in use is refused, the system's doing");
	if (fd2 >= 0)
		close(fd2);
	else
		is_str(err, want, "a port in use: error text");
	close(fd);
}

static int
have_ipv6(void)
{
	struct sockaddr_in6 sin6;
	int fd, ok6;

	fd = socket(AF_INET6, SOCK_STREAM, 0);
	if (fd < 0)
		return 0;
	memset(&sin6, 0, sizeof sin6);
	sin6.sin6_family = AF_INET6;
	sin6.sin6_addr = in6addr_loopback;
	ok6 = bind(fd, (struct sockaddr *)&sin6, sizeof sin6) == 0;
	close(fd);
	return ok6;
}

static void
test_ipv6(void)
{
	char err[256] = "", desc[128], want[128];
	struct sockaddr_in6 sin6;
	unsigned port;
	int fd;

	if (!have_ipv6()) {
		skip(5, "no IPv6 loopback here");
		return;
	}
	fd = addr_listen("[::1]:0", 16, err, sizeof err);
	if (!ok(fd >= 0, "listen on [::1]:0"))
		diag("    %s", err);
	if (fd < 0) {
		skip(4, "listen on [::1]:0 failed");
		return;
	}
	addr_describe(fd, desc, sizeof desc);
	port = port_of(desc);
	ok(port > 0 && port <= 65535, "[::1]:0 got a port (%s)", desc);
	snprintf(want, sizeof want, "[::1]:%u", port);
	is_str(desc, want, "describe gives [::1]:PORT");
	memset(&sin6, 0, sizeof sin6);
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(port);
	sin6.sin6_addr = in6addr_loopback;
	check_accepts(fd, (struct sockaddr *)&sin6, sizeof sin6, "[::1]");
	close(fd);
}

static void
listen_bad(const char *spec, const char *msg)
{
	char err[512] = "", want[512];
	int fd;

	fd = addr_listen(spec, 16, err, sizeof err);
	is_int(fd, -ERR_USAGE, "listen '%.40s' refused as bad words", spec);
	if (fd >= 0)
		close(fd);
	if (msg == NULL) {
		snprintf(want, sizeof want, "bad listen address '%s' %s", spec,
		    bad_listen);
		msg = want;
	}
	is_str(err, msg, "listen '%.40s': error text", spec);
}

static void
test_listen_bad(void)
{
	char spec[320], msg[400];

	listen_bad("nohost", NULL);
	listen_bad("host:", NULL);
	listen_bad("host:99999", NULL);
	listen_bad("127.0.0.1:65536", NULL);
	listen_bad("a:b:c", NULL);
	listen_bad("::1:0", NULL);		/* IPv6 needs brackets */
	listen_bad("127.0.0.1:-1", NULL);
	listen_bad("127.0.0.1:8o", NULL);
	listen_bad("127.0.0.1: 80", NULL);
	listen_bad("[::1]", NULL);
	listen_bad("[::1]:", NULL);
	listen_bad("[::1:80", NULL);
	listen_bad("", NULL);
	listen_bad("unix:", "bad socket path ''");
	snprintf(spec, sizeof spec, "unix:/%s", repeat('u', 107));
	snprintf(msg, sizeof msg, "bad socket path '%s'", spec + 5);
	listen_bad(spec, msg);
}

static int
is_socket_file(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

static void
test_unix(void)
{
	char dir[256], sock[300], regular[300], spec[320], desc[320];
	char path[320], err[1200] = "", want[1200], buf[8] = "";
	const char *tmp = getenv("TMPDIR");
	int fd, c, s;
	FILE *f;

	snprintf(dir, sizeof dir, "%s/labpulse-unit.XXXXXX",
	    tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL)
		bail_out("mkdtemp %s: %s", dir, strerror(errno));
	snprintf(sock, sizeof sock, "%s/ingest.sock", dir);
	snprintf(regular, sizeof regular, "%s/notes.txt", dir);
	snprintf(spec, sizeof spec, "unix:%s", sock);

	fd = addr_listen(spec, 16, err, sizeof err);
	if (!ok(fd >= 0, "listen on unix:DIR/ingest.sock"))
		diag("    %s", err);
	ok(is_socket_file(sock), "the socket file exists");
	addr_describe(fd, desc, sizeof desc);
	is_str(desc, spec, "describe gives unix:PATH");
	ok(fd >= 0 && is_nonblocking(fd) && is_cloexec(fd),
	    "unix listener is nonblocking and close-on-exec");

	c = addr_connect_unix(sock, err, sizeof err);
	if (!ok(c >= 0, "addr_connect_unix to the listener"))
		diag("    %s", err);
	ok(c >= 0 && !is_nonblocking(c) && is_cloexec(c),
	    "client socket is blocking and close-on-exec");
	s = accept(fd, NULL, NULL);
	ok(s >= 0, "the listener accepts it");
	ok(c >= 0 && s >= 0 && write(c, "ping", 4) == 4 &&
	    read(s, buf, sizeof buf - 1) == 4 && strcmp(buf, "ping") == 0,
	    "bytes go through");
	if (s >= 0)
		close(s);
	if (c >= 0)
		close(c);

	/* Closed, the file stays: a stale socket a new run must replace. */
	if (fd >= 0)
		close(fd);
	ok(is_socket_file(sock), "a closed listener leaves its socket file");
	c = addr_connect_unix(sock, err, sizeof err);
	snprintf(want, sizeof want, "cannot connect to unix:%s: %s", sock,
	    strerror(ECONNREFUSED));
	is_int(c, -1, "connect to a stale socket is refused");
	if (c >= 0)
		close(c);
	else
		is_str(err, want, "connect to a stale socket: error text");
	fd = addr_listen(spec, 16, err, sizeof err);
	if (!ok(fd >= 0, "a stale socket file is replaced"))
		diag("    %s", err);
	c = addr_connect_unix(sock, err, sizeof err);
	ok(c >= 0, "and the new listener takes connections");
	if (c >= 0)
		close(c);
	if (fd >= 0)
		close(fd);

	/* Anything that is not a socket is left alone. */
	if ((f = fopen(regular, "w")) == NULL)
		bail_out("cannot create %s: %s", regular, strerror(errno));
	fputs("keep me\n", f);
	fclose(f);
	snprintf(spec, sizeof spec, "unix:%s", regular);
	snprintf(want, sizeof want, "%s exists and is not a socket", regular);
	fd = addr_listen(spec, 16, err, sizeof err);
	is_int(fd, -ERR_OS, "a regular file at the path is refused");
	if (fd >= 0)
		close(fd);
	is_str(err, want, "a regular file: error text");
	ok(access(regular, F_OK) == 0 && !is_socket_file(regular),
	    "the regular file is still there");

	snprintf(spec, sizeof spec, "unix:%s", dir);
	snprintf(want, sizeof want, "%s exists and is not a socket", dir);
	fd = addr_listen(spec, 16, err, sizeof err);
	is_int(fd, -ERR_OS, "a directory at the path is refused");
	if (fd >= 0)
		close(fd);
	is_str(err, want, "a directory: error text");

	snprintf(spec, sizeof spec, "unix:%s/missing/x.sock", dir);
	snprintf(want, sizeof want, "cannot listen on %s: %s", spec,
	    strerror(ENOENT));
	fd = addr_listen(spec, 16, err, sizeof err);
	is_int(fd, -ERR_OS, "a socket in a missing directory is refused");
	if (fd >= 0)
		close(fd);
	is_str(err, want, "a missing directory: error text");

	snprintf(path, sizeof path, "%s/nobody.sock", dir);
	c = addr_connect_unix(path, err, sizeof err);
	is_int(c, -1, "connect to a missing socket fails");
	if (c >= 0)
		close(c);
	snprintf(want, sizeof want, "cannot connect to unix:%s: %s", path,
	    strerror(ENOENT));
	is_str(err, want, "connect to a missing socket: error text");

	snprintf(path, sizeof path, "/%s", repeat('u', 107));
	c = addr_connect_unix(path, err, sizeof err);
	is_int(c, -1, "connect to a path too long fails");
	if (c >= 0)
		close(c);
	snprintf(want, sizeof want, "socket path too long: %s", path);
	is_str(err, want, "connect to a path too long: error text");

	unlink(sock);
	unlink(regular);
	if (rmdir(dir) < 0)
		diag("cannot remove %s: %s", dir, strerror(errno));
}

/* The inputs of batch-commit and route: a stream needs its group, and an
 * input that cannot be opened is EX_NOINPUT's kind, whatever it is. */
static void
test_inputs(void)
{
	char dir[] = "/tmp/test_addr_in.XXXXXX", path[300], err[512] = "";
	struct addr a;
	int fd;

	is_int(addr_parse_group_input("stream:events@commit", &a, err,
	    sizeof err), 0, "a stream with its group is an input");
	is_int(addr_parse_group_input("stream:events", &a, err, sizeof err), -1,
	    "a stream without a group is refused");
	is_str(err, "a stream is read as a consumer group: stream:events@GROUP",
	    "and the error says how to name one");
	is_int(addr_parse_group_input("-", &a, err, sizeof err), 0,
	    "standard input needs no group");
	is_int(addr_open_input(&a, err, sizeof err), STDIN_FILENO,
	    "- opens standard input");
	if (mkdtemp(dir) == NULL)
		bail_out("mkdtemp %s: %s", dir, strerror(errno));
	snprintf(path, sizeof path, "file:%s/none", dir);
	addr_parse(path, &a, err, sizeof err);
	is_int(addr_open_input(&a, err, sizeof err), -ERR_NOINPUT,
	    "a missing file is no input");
	snprintf(path, sizeof path, "cannot open %s/none: %s", dir,
	    strerror(ENOENT));
	is_str(err, path, "and the error names it");
	snprintf(path, sizeof path, "unix:%s/none.sock", dir);
	addr_parse(path, &a, err, sizeof err);
	is_int(addr_open_input(&a, err, sizeof err), -ERR_NOINPUT,
	    "a socket nobody listens on is no input");
	snprintf(path, sizeof path, "file:%s", dir);
	addr_parse(path, &a, err, sizeof err);
	fd = addr_open_input(&a, err, sizeof err);
	ok(fd >= 0, "a readable path opens");
	if (fd >= 0)
		close(fd);
	rmdir(dir);
}

int
main(void)
{
	test_parse();
	test_tcp();
	test_ipv6();
	test_listen_bad();
	test_unix();
	test_inputs();
	return done_testing();
}
