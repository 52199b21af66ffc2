/* stallserver: a trivial HTTP/1.1 server for loadgen's tests and benchmark.
 * It answers every request at once (202, a small JSON body), or, with
 * --stall, holds every answer for a while, as a server that stalls does. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"
#include "parse.h"

static const char usage_text[] =
"usage: stallserver [--listen HOST:PORT] [--stall-after DURATION]\n"
"           [--stall DURATION]\n"
"       stallserver --help\n";

static const char help_text[] =
"Answer HTTP/1.1 requests on keep-alive connections, one thread, in order:\n"
"GET or HEAD /healthz with 200 \"ok\", every other request with 202 and the\n"
"body {\"accepted\":1}. Prints \"listening on HOST:PORT\" on stdout first.\n"
"\n"
"  --listen HOST:PORT     where to listen; port 0 takes a free one\n"
"                         (default: 127.0.0.1:0)\n"
"  --stall-after DURATION once this long has passed since the first request,\n"
"                         stall: keep reading and queuing requests but answer\n"
"                         none until the stall is over, then answer them all\n"
"                         in order (default: 0 when --stall is given)\n"
"  --stall DURATION       how long the one stall lasts (default: no stall)\n"
"  -h, --help             show this help\n"
"\n"
"A DURATION is a whole number with an optional unit ms, s, m or h; a bare\n"
"number is seconds. Log lines on stderr say when a stall begins and ends,\n"
"and, at SIGTERM or SIGINT, how many requests were answered; then exit 0.\n"
"Exit status: 0 stopped by a signal; 64 usage; 71 cannot listen, out of\n"
"memory or another system error.\n";

enum { OPT_LISTEN = 256, OPT_STALL, OPT_STALL_AFTER };

static const struct option longopts[] = {
	{ "help",	 no_argument,	    NULL, 'h' },
	{ "listen",	 required_argument, NULL, OPT_LISTEN },
	{ "stall",	 required_argument, NULL, OPT_STALL },
	{ "stall-after", required_argument, NULL, OPT_STALL_AFTER },
	{ NULL, 0, NULL, 0 }
};

#define EX_USAGE	64
#define EX_OSERR	71

#define MAX_HEAD	65536		/* request line and headers */
#define MAX_BODY	(16L << 20)
#define READ_CHUNK	65536
#define MAX_EVENTS	256

static const char answer_202[] =
	"HTTP/1.1 202 Accepted\r\n"
	"Content-Type: application/json\r\n"
	"Content-Length: 14\r\n"
	"\r\n"
	"{\"accepted\":1}";
static const char answer_202_close[] =
	"HTTP/1.1 202 Accepted\r\n"
	"Content-Type: application/json\r\n"
	"Content-Length: 14\r\n"
	"Connection: close\r\n"
	"\r\n"
	"{\"accepted\":1}";
static const char answer_health[] =
	"HTTP/1.1 200 OK\r\n"
	"Content-Type: text/plain\r\n"
	"Content-Length: 3\r\n"
	"\r\n"
	"ok\n";
static const char answer_continue[] = "HTTP/1.1 100 Continue\r\n\r\n";
static const char answer_400[] =
	"HTTP/1.1 400 Bad Request\r\n"
	"Content-Length: 0\r\nConnection: close\r\n\r\n";
static const char answer_413[] =
	"HTTP/1.1 413 Content Too Large\r\n"
	"Content-Length: 0\r\nConnection: close\r\n\r\n";
static const char answer_431[] =
	"HTTP/1.1 431 Request Header Fields Too Large\r\n"
	"Content-Length: 0\r\nConnection: close\r\n\r\n";

struct buf {
	char *p;
	size_t off, len, cap;		/* data is p[off .. len) */
};

struct conn {
	int fd;
	struct buf in, out;
	int closing;			/* close once out is written */
	int epout;			/* EPOLLOUT is asked for */
	int continued;			/* 100 Continue sent for this request */
	struct conn *next;
};

struct server {
	int lfd, ep;
	int64_t first_us;		/* the first request, 0 before it */
	int64_t stall_after_us, stall_us;
	int64_t stall_from, stall_until;	/* monotonic, once first_us */
	int stall_logged, released;
	unsigned long long requests, held;
	unsigned long conns;
	struct conn *all;
};

static volatile sig_atomic_t stop_requested;

static void __attribute__((noreturn))
usage(int code)
{
	fputs(usage_text, code ? stderr : stdout);
	if (code == 0)
		fputs(help_text, stdout);
	exit(code);
}

static void
on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static int64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void __attribute__((noreturn))
oom(void)
{
	log_error("out of memory");
	exit(EX_OSERR);
}

static void
buf_add(struct buf *b, const void *p, size_t n)
{
	size_t cap;
	char *np;

	if (b->off > 0 && b->off == b->len)
		b->off = b->len = 0;
	if (b->len + n > b->cap) {
		if (b->off > 0) {	/* compact before growing */
			memmove(b->p, b->p + b->off, b->len - b->off);
			b->len -= b->off;
			b->off = 0;
		}
		for (cap = b->cap ? b->cap : 4096; cap < b->len + n; cap *= 2)
			;
		if (cap != b->cap) {
			np = realloc(b->p, cap);
			if (np == NULL)
				oom();
			b->p = np;
			b->cap = cap;
		}
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static int
stalled(const struct server *s, int64_t now)
{
	return s->first_us && s->stall_us > 0 && now >= s->stall_from &&
	    now < s->stall_until;
}

static void
set_out(struct server *s, struct conn *c, int on)
{
	struct epoll_event ev;

	if (c->epout == on)
		return;
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN | (on ? EPOLLOUT : 0);
	ev.data.ptr = c;
	if (epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->epout = on;
}

static void
conn_close(struct server *s, struct conn *c)
{
	struct conn **pp;

	for (pp = &s->all; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->in.p);
	free(c->out.p);
	free(c);
	s->conns--;
}

/* Writes what is queued, unless the server stalls. Returns -1 when the
 * connection was closed. */
static int
conn_flush(struct server *s, struct conn *c, int64_t now)
{
	ssize_t n;

	if (stalled(s, now)) {
		set_out(s, c, 0);	/* else a writable socket spins the loop */
		return 0;
	}
	while (c->out.off < c->out.len) {
		n = send(c->fd, c->out.p + c->out.off, c->out.len - c->out.off,
		    MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			set_out(s, c, 1);
			return 0;
		}
		if (n <= 0) {
			conn_close(s, c);
			return -1;
		}
		c->out.off += (size_t)n;
	}
	c->out.off = c->out.len = 0;
	set_out(s, c, 0);
	if (c->closing) {
		conn_close(s, c);
		return -1;
	}
	return 0;
}

/* Case-insensitive: does the header value v (n bytes) hold the token t? */
static int
has_token(const char *v, size_t n, const char *t)
{
	size_t tl = strlen(t), i;

	for (i = 0; i + tl <= n; i++)
		if (strncasecmp(v + i, t, tl) == 0)
			return 1;
	return 0;
}

/* The length of a chunked body that starts at p (n bytes available), the
 * trailers and the final blank line included; 0 when more is needed, -1
 * when it is malformed. */
static long
chunked_length(const char *p, size_t n)
{
	size_t i = 0, line;
	unsigned long size;
	const char *eol;
	int digits;

	for (;;) {
		eol = memmem(p + i, n - i, "\r\n", 2);
		if (eol == NULL)
			return n - i > 1024 ? -1 : 0;
		line = (size_t)(eol - (p + i));
		size = 0;
		digits = 0;
		while (digits < (int)line &&
		    isxdigit((unsigned char)p[i + digits])) {
			char h = p[i + digits];

			size = size * 16 + (unsigned long)(h <= '9' ? h - '0' :
			    (h | 0x20) - 'a' + 10);
			if (size > (unsigned long)MAX_BODY)
				return -1;
			digits++;
		}
		if (digits == 0)
			return -1;
		i += line + 2;
		if (size == 0)
			break;
		if (n - i < size + 2)
			return 0;
		if (p[i + size] != '\r' || p[i + size + 1] != '\n')
			return -1;
		i += size + 2;
	}
	for (;;) {			/* trailers, then a blank line */
		eol = memmem(p + i, n - i, "\r\n", 2);
		if (eol == NULL)
			return 0;
		line = (size_t)(eol - (p + i));
		i += line + 2;
		if (line == 0)
			return (long)i;
	}
}

static void
first_request(struct server *s, int64_t now)
{
	s->first_us = now;
	if (s->stall_us <= 0)
		return;
	s->stall_from = now + s->stall_after_us;
	s->stall_until = s->stall_from + s->stall_us;
	log_info("first request; stall from +%.3fs to +%.3fs",
	    s->stall_after_us / 1e6, (s->stall_after_us + s->stall_us) / 1e6);
}

/* Queues an answer to each whole request in c->in; after a request that
 * ends the connection, or one that is refused, c is closing. */
static void
conn_serve(struct server *s, struct conn *c, int64_t now)
{
	for (;;) {
		const char *p = c->in.p + c->in.off, *end, *line, *eol, *sp;
		size_t avail = c->in.len - c->in.off, head, total;
		long clen = 0, blen;
		int chunked = 0, close_it = 0, complete, expect = 0,
		    health = 0, head_only = 0, http10 = 0, keep = 0;

		if (avail == 0 || c->closing)
			break;
		end = memmem(p, avail, "\r\n\r\n", 4);
		if (end == NULL) {
			if (avail > MAX_HEAD) {
				buf_add(&c->out, answer_431, sizeof answer_431 - 1);
				c->closing = 1;
			}
			break;
		}
		head = (size_t)(end - p) + 4;
		if (head > MAX_HEAD) {
			buf_add(&c->out, answer_431, sizeof answer_431 - 1);
			c->closing = 1;
			break;
		}
		/* the request line: METHOD SP TARGET SP HTTP/1.x */
		eol = memmem(p, head, "\r\n", 2);
		sp = memchr(p, ' ', (size_t)(eol - p));
		if (sp == NULL || sp == p || eol - p < 14 ||
		    memcmp(eol - 8, "HTTP/1.", 7) != 0 || eol[-9] != ' ') {
			buf_add(&c->out, answer_400, sizeof answer_400 - 1);
			c->closing = 1;
			break;
		}
		http10 = eol[-1] == '0';
		head_only = sp - p == 4 && memcmp(p, "HEAD", 4) == 0;
		if ((head_only || (sp - p == 3 && memcmp(p, "GET", 3) == 0)) &&
		    eol - 9 - (sp + 1) >= 8 &&
		    memcmp(sp + 1, "/healthz", 8) == 0 &&
		    (sp + 9 == eol - 9 || sp[9] == '?'))
			health = 1;
		/* the headers that frame the body and the connection */
		for (line = eol + 2; line < end; line = eol + 2) {
			const char *colon, *v;
			size_t nl, vl;

			eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
			colon = memchr(line, ':', (size_t)(eol - line));
			if (colon == NULL) {
				buf_add(&c->out, answer_400,
				    sizeof answer_400 - 1);
				c->closing = 1;
				return;
			}
			nl = (size_t)(colon - line);
			for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t');
			    v++)
				;
			vl = (size_t)(eol - v);
			if (nl == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
				char num[24];
				char *e;

				if (vl == 0 || vl >= sizeof num) {
					clen = -1;
				} else {
					memcpy(num, v, vl);
					num[vl] = '\0';
					clen = strtol(num, &e, 10);
					if (*e != '\0' && *e != ' ' && *e != '\t')
						clen = -1;
				}
				if (clen < 0 || clen > MAX_BODY) {
					buf_add(&c->out, clen < 0 ? answer_400 :
					    answer_413, clen < 0 ?
					    sizeof answer_400 - 1 :
					    sizeof answer_413 - 1);
					c->closing = 1;
					return;
				}
			} else if (nl == 17 &&
			    strncasecmp(line, "Transfer-Encoding", 17) == 0) {
				chunked = has_token(v, vl, "chunked");
			} else if (nl == 10 &&
			    strncasecmp(line, "Connection", 10) == 0) {
				close_it = has_token(v, vl, "close");
				keep = has_token(v, vl, "keep-alive");
			} else if (nl == 6 && strncasecmp(line, "Expect", 6) == 0) {
				expect = has_token(v, vl, "100-continue");
			}
		}
		if (http10 && !keep)
			close_it = 1;
		/* the body: chunked wins over Content-Length */
		if (chunked) {
			blen = chunked_length(p + head, avail - head);
			if (blen < 0) {
				buf_add(&c->out, answer_400, sizeof answer_400 - 1);
				c->closing = 1;
				break;
			}
			complete = blen > 0;
		} else {
			blen = clen;
			complete = avail - head >= (size_t)clen;
		}
		if (!complete) {
			if (expect && !c->continued && !http10) {
				buf_add(&c->out, answer_continue,
				    sizeof answer_continue - 1);
				c->continued = 1;
			}
			break;
		}
		total = head + (size_t)blen;
		/* a whole request: answer it */
		if (s->first_us == 0)
			first_request(s, now);
		s->requests++;
		if (stalled(s, now)) {
			s->held++;
			if (!s->stall_logged) {
				s->stall_logged = 1;
				log_info("stall begins: answers are held");
			}
		}
		if (health)
			buf_add(&c->out, answer_health, head_only ?
			    sizeof answer_health - 1 - 3 :
			    sizeof answer_health - 1);
		else if (close_it)
			buf_add(&c->out, answer_202_close, head_only ?
			    sizeof answer_202_close - 1 - 14 :
			    sizeof answer_202_close - 1);
		else
			buf_add(&c->out, answer_202, head_only ?
			    sizeof answer_202 - 1 - 14 :
			    sizeof answer_202 - 1);
		c->in.off += total;
		c->continued = 0;
		if (close_it)
			c->closing = 1;
	}
	if (c->in.off == c->in.len)
		c->in.off = c->in.len = 0;
}

/* Returns -1 when c was closed. */
static int
conn_read(struct server *s, struct conn *c, int64_t now)
{
	char tmp[READ_CHUNK];
	ssize_t n;

	n = recv(c->fd, tmp, sizeof tmp, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	if (n <= 0) {		/* the client is gone: its answers are moot */
		conn_close(s, c);
		return -1;
	}
	if (c->closing)		/* what follows a last request is ignored */
		return 0;
	buf_add(&c->in, tmp, (size_t)n);
	conn_serve(s, c, now);
	return conn_flush(s, c, now);
}

static void
accept_all(struct server *s)
{
	struct epoll_event ev;
	struct conn *c;
	int fd, one = 1;

	for (;;) {
		fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn("cannot accept: %s", strerror(errno));
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		c = calloc(1, sizeof *c);
		if (c == NULL)
			oom();
		c->fd = fd;
		memset(&ev, 0, sizeof ev);
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			log_warn("cannot watch a connection: %s", strerror(errno));
			close(fd);
			free(c);
			continue;
		}
		c->next = s->all;
		s->all = c;
		s->conns++;
	}
}

/* At the end of the stall, every held answer goes out, in order. */
static void
release(struct server *s, int64_t now)
{
	struct conn *c, *next;

	s->released = 1;
	if (s->stall_logged || s->held)
		log_info("stall ends: answering held=%llu", s->held);
	for (c = s->all; c; c = next) {
		next = c->next;
		conn_flush(s, c, now);
	}
}

int
main(int argc, char **argv)
{
	static struct server srv;
	struct server *s = &srv;
	struct epoll_event evs[MAX_EVENTS], ev;
	struct sigaction sa;
	const char *listen_spec = "127.0.0.1:0";
	char err[256], where[300];
	long v;
	int ch, n, i, timeout, after_given = 0;
	int64_t now;

	log_init("stallserver");
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			usage(0);
		case OPT_LISTEN:
			listen_spec = optarg;
			break;
		case OPT_STALL:
			if (parse_duration_ms(optarg, 1, 3600000, &v, err,
			    sizeof err) < 0) {
				log_error("--stall: %s", err);
				usage(EX_USAGE);
			}
			s->stall_us = (int64_t)v * 1000;
			break;
		case OPT_STALL_AFTER:
			if (parse_duration_ms(optarg, 0, 3600000, &v, err,
			    sizeof err) < 0) {
				log_error("--stall-after: %s", err);
				usage(EX_USAGE);
			}
			s->stall_after_us = (int64_t)v * 1000;
			after_given = 1;
			break;
		default:
			parse_option_error(ch, optind, argv, err, sizeof err);
			log_error("%s", err);
			usage(EX_USAGE);
		}
	}
	if (optind < argc) {
		log_error("unexpected argument '%s'", argv[optind]);
		usage(EX_USAGE);
	}
	if (after_given && s->stall_us == 0) {
		log_error("--stall-after needs --stall");
		usage(EX_USAGE);
	}

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;	/* no SA_RESTART: epoll_wait returns */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	s->lfd = addr_listen(listen_spec, 1024, err, sizeof err);
	if (s->lfd < 0) {
		log_error("cannot listen on %s: %s", listen_spec, err);
		return EX_OSERR;
	}
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	if (s->ep < 0) {
		log_error("cannot create an epoll instance: %s", strerror(errno));
		return EX_OSERR;
	}
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->lfd, &ev) < 0) {
		log_error("cannot watch the listening socket: %s",
		    strerror(errno));
		return EX_OSERR;
	}
	addr_describe(s->lfd, where, sizeof where);
	printf("listening on %s\n", where);
	fflush(stdout);

	while (!stop_requested) {
		timeout = -1;
		if (s->first_us && s->stall_us > 0 && !s->released) {
			int64_t left = s->stall_until - mono_us();

			timeout = left <= 0 ? 0 : (int)((left + 999) / 1000);
		}
		n = epoll_wait(s->ep, evs, MAX_EVENTS, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("epoll_wait: %s", strerror(errno));
			return EX_OSERR;
		}
		now = mono_us();
		for (i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c == NULL) {
				accept_all(s);
				continue;
			}
			if ((evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) &&
			    conn_read(s, c, now) < 0)
				continue;
			if (evs[i].events & EPOLLOUT)
				conn_flush(s, c, now);
		}
		if (s->first_us && s->stall_us > 0 && !s->released &&
		    now >= s->stall_until)
			release(s, now);
	}
	log_info("stopped requests=%llu held=%llu conns=%lu", s->requests,
	    s->held, s->conns);
	return 0;
}
