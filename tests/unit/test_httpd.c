/* test_httpd.c: lib/httpd on a real loopback socket, client and server in
 * one process: answers in order under pipelining with late answers, HEAD,
 * exact connection counts, the cap per address, the whole-request deadline
 * against trickling, bad requests, and draining. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "httpd.h"
#include "stats.h"
#include "tap.h"

static struct event_base *base;
static struct httpd *srv;
static int port;

/* Answers are held back until the test lets them go. */
#define MAXHELD 16
static struct httpd_conn *held[MAXHELD];
static char held_path[MAXHELD][64];
static int nheld, hold;
static int drained;

static void
handler(struct httpd_conn *c, const struct httpreq *r, void *arg)
{
	char body[128];
	int n;

	(void)arg;
	if (hold && nheld < MAXHELD) {
		snprintf(held_path[nheld], sizeof held_path[0], "%s", r->path);
		held[nheld++] = c;
		return;
	}
	n = snprintf(body, sizeof body, "{\"path\":\"%s\"}\n", r->path);
	httpd_reply(c, 200, "Content-Type: application/json\r\n", body,
	    (size_t)n);
}

static void
release(void)
{
	struct httpd_conn *c[MAXHELD];
	char body[128], path[MAXHELD][64];
	int i, n, k = nheld;

	/* an answer may hand the next request over at once: take them first */
	memcpy(c, held, sizeof c);
	memcpy(path, held_path, sizeof path);
	nheld = 0;
	for (i = 0; i < k; i++) {
		n = snprintf(body, sizeof body, "{\"path\":\"%s\"}\n",
		    path[i]);
		httpd_reply(c[i], 200, "", body, (size_t)n);
	}
}

static void
pump(int ms)
{
	struct timespec ts = { 0, 2 * 1000000L };
	int64_t until = stats_mono_us() + ms * 1000LL;

	while (stats_mono_us() < until) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		nanosleep(&ts, NULL);
	}
}

static int
client_from(const char *src)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		bail_out("socket: %s", strerror(errno));
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	if (src) {
		inet_pton(AF_INET, src, &a.sin_addr);
		if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0)
			bail_out("bind %s: %s", src, strerror(errno));
	}
	a.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
		bail_out("connect: %s", strerror(errno));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	pump(20);
	return fd;
}

static void
say(int fd, const char *s)
{
	if (write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		bail_out("write: %s", strerror(errno));
}

/* What the server sent within ms, until it closed (*closed) or ms ran out. */
static void
hear(int fd, int ms, char *buf, size_t len, int *closed)
{
	int64_t until = stats_mono_us() + ms * 1000LL;
	size_t n = 0;
	ssize_t k;

	*closed = 0;
	buf[0] = '\0';
	while (stats_mono_us() < until && n < len - 1) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		k = read(fd, buf + n, len - 1 - n);
		if (k > 0) {
			n += (size_t)k;
			buf[n] = '\0';
		} else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
			*closed = 1;
			break;
		} else {
			struct timespec ts = { 0, 2 * 1000000L };

			nanosleep(&ts, NULL);
		}
	}
}

static long
active(void)
{
	struct httpd_stats s;

	httpd_get_stats(srv, &s);
	return s.active;
}

static void
start(long max_per_addr, long request_ms)
{
	struct httpd_cfg cfg;
	struct sockaddr_in a;
	socklen_t al = sizeof a;
	char err[200];
	int fd;

	memset(&cfg, 0, sizeof cfg);
	cfg.max_conns = 100;
	cfg.max_per_addr = max_per_addr;
	cfg.idle_ms = 5000;
	cfg.request_ms = request_ms;
	cfg.req.max_head = 4096;
	cfg.req.max_body = 1024;
	cfg.req.max_headers = 32;
	srv = httpd_new(base, &cfg, handler, NULL, err, sizeof err);
	if (srv == NULL)
		bail_out("httpd_new: %s", err);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    listen(fd, 64) < 0 || getsockname(fd, (struct sockaddr *)&a, &al) < 0)
		bail_out("listen: %s", strerror(errno));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	port = ntohs(a.sin_port);
	if (httpd_listen(srv, fd, err, sizeof err) < 0)
		bail_out("httpd_listen: %s", err);
}

static void
on_drained(void *arg)
{
	(void)arg;
	drained = 1;
}

int
main(void)
{
	char buf[4096], *a, *b;
	int fd, fd2, closed;

	base = event_base_new();
	if (base == NULL)
		bail_out("event_base_new");
	start(2, 500);

	/* pipelined, answered late, in order */
	fd = client_from(NULL);
	is_int(active(), 1, "a bare connection counts from its accept");
	hold = 1;
	say(fd, "GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\n"
	    "Host: x\r\n\r\n");
	pump(50);
	is_int(nheld, 1, "one request at a time: the second waits");
	release();
	pump(50);
	is_int(nheld, 1, "the second is handed over once the first is answered");
	release();
	hold = 0;
	hear(fd, 200, buf, sizeof buf, &closed);
	a = strstr(buf, "{\"path\":\"/one\"}");
	b = strstr(buf, "{\"path\":\"/two\"}");
	ok(a && b && a < b, "both answered, in order");
	ok(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0, "status line");
	ok(!closed, "kept alive");

	/* HEAD: the length, no body */
	say(fd, "HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n");
	hear(fd, 200, buf, sizeof buf, &closed);
	ok(strstr(buf, "Content-Length: 14\r\n") != NULL &&
	    strstr(buf, "{") == NULL, "HEAD: Content-Length, no body");

	/* the cap per address: 2 */
	fd2 = client_from(NULL);
	{
		int fd3 = client_from(NULL);

		hear(fd3, 500, buf, sizeof buf, &closed);
		ok(strncmp(buf, "HTTP/1.1 503 ", 13) == 0 && closed &&
		    strstr(buf, "Retry-After: 1\r\n") != NULL,
		    "past the cap per address: 503 with Retry-After, closed");
		close(fd3);
	}
	{
		int fd4 = client_from("127.0.0.2");

		say(fd4, "GET /other HTTP/1.0\r\n\r\n");
		hear(fd4, 500, buf, sizeof buf, &closed);
		ok(strstr(buf, "/other") != NULL && closed,
		    "another address is served; HTTP/1.0 closes");
		close(fd4);
	}
	close(fd2);
	pump(50);
	is_int(active(), 1, "a closed connection frees its slot at once");

	/* trickling does not stretch the deadline (500 ms here) */
	fd2 = client_from(NULL);
	{
		const char *req = "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n";
		size_t i;

		closed = 0;
		for (i = 0; req[i] && !closed; i++) {
			if (write(fd2, req + i, 1) != 1)
				break;
			hear(fd2, 100, buf, sizeof buf, &closed);
			if (buf[0])
				break;
		}
		if (!closed && !buf[0])
			hear(fd2, 1000, buf, sizeof buf, &closed);
		ok(strncmp(buf, "HTTP/1.1 503 ", 13) == 0 &&
		    strstr(buf, "request not received in time") != NULL,
		    "a trickled request is cut with 503");
	}
	close(fd2);

	/* a malformed request: 400, closed */
	fd2 = client_from(NULL);
	say(fd2, "GET /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n"
	    "\r\nab");
	hear(fd2, 500, buf, sizeof buf, &closed);
	ok(strncmp(buf, "HTTP/1.1 400 ", 13) == 0, "a bad request: 400");
	close(fd2);

	/* drain: the idle connection is closed, and done is called */
	httpd_drain(srv, on_drained, NULL);
	hear(fd, 200, buf, sizeof buf, &closed);
	ok(closed, "draining closes an idle connection");
	pump(50);
	ok(drained && active() == 0, "drained once none is left");
	close(fd);
	httpd_free(srv);
	event_base_free(base);
	return done_testing();
}
