/* lpwatch: a dashboard client of notify for tests and benchmarks. It follows
 * one WebSocket or SSE stream, prints each server message as a JSON line, and
 * stops on a goal (a count, an id), a drop, the server's close, or a time. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jv.h>
#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <wslay/wslay.h>

#include "hist.h"
#include "log.h"
#include "parse.h"

static const char usage_text[] =
"usage: lpwatch [--count N] [--drop-after N] [--latency] [--no-read] [--quiet]\n"
"           [--since ID] [--timeout SECONDS] [--token T] [--until-id ID] URL\n"
"       lpwatch --help\n";

static const char help_text[] =
"Follow one notify stream as a dashboard does, over WebSocket (URL path /ws)\n"
"or Server-Sent Events (URL path /sse), and print every server message on\n"
"stdout as one line of JSON, flushed per line.\n"
"\n"
"  --count N          exit once N messages of type \"message\" have arrived\n"
"  --drop-after N     after N messages of type \"message\", drop the connection\n"
"                     without a close frame and print \"last-id ID\"\n"
"  --latency          record now minus the send time of each message whose\n"
"                     message.eventId is \"b-<epoch microseconds>-...\"; print\n"
"                     the counts and percentiles as one JSON line at exit\n"
"  --no-read          complete the handshake with a 4 KiB receive buffer,\n"
"                     then never read again until the timeout\n"
"  --quiet            do not print the messages\n"
"  --since ID         resume after stream id ID: ?since=ID for WebSocket,\n"
"                     the Last-Event-ID header for SSE\n"
"  --timeout SECONDS  give up after this long, fractions allowed (default: 30)\n"
"  --token T          send Authorization: Bearer T\n"
"  --until-id ID      exit once a message of type \"message\" with a stream id\n"
"                     at or above ID (MS-SEQ) has arrived\n"
"  -h, --help         show this help\n"
"\n"
"URL is http://HOST:PORT/ws?class=C[&class=C...] or http://HOST:PORT/sse?...;\n"
"ws:// is taken as http:// for /ws.\n"
"\n"
"After the messages, in this order: the --latency line; \"close CODE REASON\"\n"
"if the server closed the WebSocket with a close frame, \"http STATUS BODY\" if\n"
"it answered the request with an HTTP error, \"eof\" if it ended the SSE\n"
"stream; \"last-id ID\" after --drop-after.\n"
"\n"
"Exit status: 0 the goal was reached, the time was up with no goal, or the\n"
"server closed, refused or ended the stream as above; 2 cannot connect, a bad\n"
"handshake, or the connection lost without a close; 3 the timeout (or SIGINT,\n"
"SIGTERM) came before the goal of --count, --until-id or --drop-after;\n"
"64 usage; 71 out of memory.\n";

enum {
	OPT_COUNT = 256, OPT_DROP_AFTER, OPT_LATENCY, OPT_NO_READ, OPT_QUIET,
	OPT_SINCE, OPT_TIMEOUT, OPT_TOKEN, OPT_UNTIL_ID
};

static const struct option longopts[] = {
	{ "count",	required_argument, NULL, OPT_COUNT },
	{ "drop-after",	required_argument, NULL, OPT_DROP_AFTER },
	{ "help",	no_argument,	   NULL, 'h' },
	{ "latency",	no_argument,	   NULL, OPT_LATENCY },
	{ "no-read",	no_argument,	   NULL, OPT_NO_READ },
	{ "quiet",	no_argument,	   NULL, OPT_QUIET },
	{ "since",	required_argument, NULL, OPT_SINCE },
	{ "timeout",	required_argument, NULL, OPT_TIMEOUT },
	{ "token",	required_argument, NULL, OPT_TOKEN },
	{ "until-id",	required_argument, NULL, OPT_UNTIL_ID },
	{ NULL, 0, NULL, 0 }
};

#define EX_CONN		2
#define EX_TIMEOUT	3
#define EX_USAGE	64
#define EX_OSERR	71

#define MAX_HEAD	65536		/* a response head */
#define MAX_MSG		(64u << 20)	/* a message, an SSE line or event */
#define MAX_ERRBODY	4096		/* what "http STATUS BODY" shows */
#define NO_READ_RCVBUF	4096
#define CLOSE_GRACE_US	1000000		/* to flush our close, await theirs */
#define RECV_BUDGET	(1u << 20)	/* bytes per turn before the clock */
#define WS_GUID		"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

enum proto { P_WS, P_SSE };

/* How the watch ended; decides the last lines and the exit status. */
enum finish {
	F_NONE,
	F_GOAL,		/* --count or --until-id reached */
	F_DROP,		/* --drop-after reached */
	F_TIME,		/* --timeout, or a signal */
	F_CLOSED,	/* the server sent a WebSocket close frame */
	F_HTTP,		/* the server answered with an HTTP error */
	F_EOF,		/* the server ended the SSE stream */
	F_LOST		/* connection or protocol failure */
};

struct watch_cfg {
	const char *url, *token, *since;
	char host[256], port[8], hostport[300];
	char *target;			/* path and query of the request line */
	enum proto proto;
	long count, drop_after;
	uint64_t until_ms, until_seq;
	int64_t timeout_us;
	int has_until, latency, no_read, quiet;
};

struct buf {
	char *p;
	size_t len, cap;
};

enum body_mode { B_DONE, B_LENGTH, B_CHUNKED, B_CLOSE };
enum chunk_state {
	CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF,
	CH_TRAILER, CH_TRAILER_LF, CH_TRAILER_LINE
};

/* The framing of a response body: Content-Length, chunked, or to the end. */
struct http_body {
	enum body_mode mode;
	enum chunk_state state;
	uint64_t left;			/* of the body or of the chunk */
	uint64_t size;			/* the chunk size being read */
	int digits;
};

struct sse {
	struct buf line, data;
	char event[64];
	char id[64];			/* the last "id:" field, kept across events */
	int after_cr;			/* a '\n' right after it ends nothing */
	int first_line;
};

struct response {
	int status;
	int chunked, has_length, upgrade_ws, conn_upgrade;
	uint64_t length;
	char accept[64], ctype[128];
};

struct watch {
	struct watch_cfg cfg;
	int fd;
	int64_t deadline;		/* CLOCK_MONOTONIC microseconds */
	char ws_key[32];
	struct response resp;
	struct http_body body;
	struct sse sse;
	struct buf errbody;
	wslay_event_context_ptr ws;
	size_t recv_budget;
	int io_eof, io_errno;
	int closing;			/* we sent, or are sending, our close */
	int in_close;			/* a close frame is being received */
	uint8_t close_buf[125];
	size_t close_len;
	int close_seen;			/* a close frame arrived */
	int close_code;
	char close_reason[128];
	int binary_warned;
	enum finish finish;
	unsigned long received, messages, snapshots, resyncs;
	struct hist *lat;
	char last_id[64];
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

static const char *
opt_name(int val)
{
	const struct option *o;

	for (o = longopts; o->name; o++)
		if (o->val == val)
			return o->name;
	return "?";
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

static int64_t
epoch_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
oom(void)
{
	log_error("out of memory");
	exit(EX_OSERR);
}

/* Appends n bytes and keeps a NUL after them; -1 past MAX_MSG. */
static int
buf_add(struct buf *b, const void *p, size_t n)
{
	size_t cap;
	char *np;

	if (n > MAX_MSG || b->len > MAX_MSG - n)
		return -1;
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		np = realloc(b->p, cap);
		if (np == NULL)
			oom();
		b->p = np;
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static void
buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

/* ---- options ---- */

/* "MS-SEQ" or "MS" (sequence 0), as Redis reads stream ids. */
static int
parse_stream_id(const char *s, size_t n, uint64_t *ms, uint64_t *seq)
{
	uint64_t v[2] = { 0, 0 };
	size_t i = 0;
	int part = 0, digits = 0;

	for (i = 0; i < n; i++) {
		unsigned d;

		if (s[i] == '-' && part == 0 && digits > 0) {
			part = 1;
			digits = 0;
			continue;
		}
		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v[part] > (UINT64_MAX - d) / 10)
			return -1;
		v[part] = v[part] * 10 + d;
		digits++;
	}
	if (digits == 0)
		return -1;
	*ms = v[0];
	*seq = v[1];
	return 0;
}

/* Seconds with an optional fraction: "30", "0.25". */
static int
parse_seconds(const char *s, int64_t *out_us, char *err, size_t errlen)
{
	char *end;
	double v;

	if (*s == '\0' || strspn(s, "0123456789.") != strlen(s)) {
		snprintf(err, errlen, "invalid duration '%s' (seconds)", s);
		return -1;
	}
	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end != '\0' || errno != 0 || v <= 0 ||
	    v > 31 * 86400.0) {
		snprintf(err, errlen,
		    "invalid duration '%s' (more than 0, at most 2678400)", s);
		return -1;
	}
	*out_us = (int64_t)(v * 1e6 + 0.5);
	if (*out_us < 1)
		*out_us = 1;
	return 0;
}

/* A header value or a request target must not end the line early. */
static int
has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

static void
append_encoded(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char e[3];

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
			if (buf_add(b, s, 1) < 0)
				oom();
			continue;
		}
		e[0] = '%';
		e[1] = hex[c >> 4];
		e[2] = hex[c & 15];
		if (buf_add(b, e, 3) < 0)
			oom();
	}
}

/* http://HOST[:PORT]/PATH[?QUERY] or ws://...; HOST may be [IPV6]. The
 * last segment of PATH picks the protocol. */
static int
parse_url(struct watch_cfg *c, char *err, size_t errlen)
{
	const char *p = c->url, *hend, *pstart, *qs;
	struct buf t = { NULL, 0, 0 };
	size_t hl, pl;
	int ws_scheme = 0;

	if (strncmp(p, "http://", 7) == 0) {
		p += 7;
	} else if (strncmp(p, "ws://", 5) == 0) {
		p += 5;
		ws_scheme = 1;
	} else {
		snprintf(err, errlen, "URL must start with http:// or ws://: %s",
		    c->url);
		return -1;
	}
	if (has_ctl(p) || strchr(p, ' ') != NULL) {
		snprintf(err, errlen, "URL has spaces or control characters");
		return -1;
	}
	pstart = p + strcspn(p, "/?#");
	if (*p == '[') {
		hend = strchr(p, ']');
		if (hend == NULL || hend > pstart) {
			snprintf(err, errlen, "bad IPv6 host in URL: %s", c->url);
			return -1;
		}
		hl = (size_t)(hend - p - 1);
		p++;
		hend++;
	} else {
		hend = p + strcspn(p, ":/?#");
		hl = (size_t)(hend - p);
	}
	if (hl == 0 || hl >= sizeof c->host) {
		snprintf(err, errlen, "bad host in URL: %s", c->url);
		return -1;
	}
	memcpy(c->host, p, hl);
	c->host[hl] = '\0';
	if (*hend == ':') {
		long port;

		pl = (size_t)(pstart - hend - 1);
		if (pl == 0 || pl >= sizeof c->port) {
			snprintf(err, errlen, "bad port in URL: %s", c->url);
			return -1;
		}
		memcpy(c->port, hend + 1, pl);
		c->port[pl] = '\0';
		if (parse_long(c->port, 1, 65535, &port, err, errlen) < 0) {
			snprintf(err, errlen, "bad port in URL: %s", c->url);
			return -1;
		}
	} else if (hend == pstart) {
		snprintf(c->port, sizeof c->port, "80");
	} else {
		snprintf(err, errlen, "bad host in URL: %s", c->url);
		return -1;
	}
	snprintf(c->hostport, sizeof c->hostport, "%.*s",
	    (int)(pstart - (c->url + (ws_scheme ? 5 : 7))),
	    c->url + (ws_scheme ? 5 : 7));

	/* the path alone, without the query or a fragment */
	pl = strcspn(pstart, "?#");
	qs = pstart + pl;
	if (pl >= 3 && memcmp(pstart + pl - 3, "/ws", 3) == 0) {
		c->proto = P_WS;
	} else if (pl >= 4 && memcmp(pstart + pl - 4, "/sse", 4) == 0 &&
	    !ws_scheme) {
		c->proto = P_SSE;
	} else {
		snprintf(err, errlen, "the URL path must end in /ws%s: %s",
		    ws_scheme ? "" : " or /sse", c->url);
		return -1;
	}
	if (buf_add(&t, pstart, pl) < 0)
		oom();
	if (*qs == '?') {
		size_t ql = strcspn(qs, "#");

		if (buf_add(&t, qs, ql) < 0)
			oom();
	}
	if (c->since != NULL && c->proto == P_WS) {
		if (buf_add(&t, strchr(t.p, '?') ? "&since=" : "?since=", 7) < 0)
			oom();
		append_encoded(&t, c->since);
	}
	c->target = t.p;
	return 0;
}

/* ---- the connection ---- */

/* Waits for events on the socket until deadline: 1 ready, 0 deadline or
 * signal, -1 error. */
static int
wait_fd(struct watch *w, short events, int64_t deadline, short *revents)
{
	struct pollfd pfd;
	int64_t left;
	int r;

	for (;;) {
		if (stop_requested)
			return 0;
		left = deadline - mono_us();
		if (left <= 0)
			return 0;
		pfd.fd = w->fd;
		pfd.events = events;
		pfd.revents = 0;
		left = (left + 999) / 1000;
		r = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			continue;
		*revents = pfd.revents;
		return 1;
	}
}

static const char *
why_stopped(void)
{
	return stop_requested ? "interrupted" : "timed out";
}

static void __attribute__((noreturn))
fail_connect(struct watch *w, const char *what, const char *why)
{
	log_error("cannot %s %s: %s", what, w->cfg.hostport, why);
	exit(EX_CONN);
}

static void
conn_open(struct watch *w)
{
	struct addrinfo hints, *res, *ai;
	char why[256] = "no address";
	int rc, one = 1, rcvbuf = NO_READ_RCVBUF;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(w->cfg.host, w->cfg.port, &hints, &res);
	if (rc != 0)
		fail_connect(w, "resolve", gai_strerror(rc));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		short rev;
		int soerr = 0;
		socklen_t sl = sizeof soerr;

		w->fd = socket(ai->ai_family,
		    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (w->fd < 0) {
			snprintf(why, sizeof why, "%s", strerror(errno));
			continue;
		}
		/* before connect, so that the window offered is small */
		if (w->cfg.no_read)
			setsockopt(w->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
			    sizeof rcvbuf);
		setsockopt(w->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (connect(w->fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno != EINPROGRESS) {
			snprintf(why, sizeof why, "%s", strerror(errno));
		} else if ((rc = wait_fd(w, POLLOUT, w->deadline, &rev)) <= 0) {
			snprintf(why, sizeof why, "%s",
			    rc < 0 ? strerror(errno) : why_stopped());
		} else if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &soerr,
		    &sl) < 0 || soerr != 0) {
			snprintf(why, sizeof why, "%s",
			    strerror(soerr ? soerr : errno));
		} else {
			break;
		}
		close(w->fd);
		w->fd = -1;
	}
	freeaddrinfo(res);
	if (w->fd < 0)
		fail_connect(w, "connect to", why);
}

static void
send_all(struct watch *w, const char *p, size_t n)
{
	ssize_t k;
	short rev;
	int rc;

	while (n > 0) {
		k = send(w->fd, p, n, MSG_NOSIGNAL);
		if (k > 0) {
			p += k;
			n -= (size_t)k;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			fail_connect(w, "send the request to", strerror(errno));
		rc = wait_fd(w, POLLOUT, w->deadline, &rev);
		if (rc <= 0)
			fail_connect(w, "send the request to",
			    rc < 0 ? strerror(errno) : why_stopped());
	}
}

static void
make_ws_key(struct watch *w)
{
	uint8_t raw[16];

	if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
		log_error("cannot get random bytes: %s", strerror(errno));
		exit(EX_CONN);
	}
	base64_encode_raw(w->ws_key, sizeof raw, raw);
	w->ws_key[BASE64_ENCODE_RAW_LENGTH(sizeof raw)] = '\0';
}

static void
send_request(struct watch *w)
{
	const struct watch_cfg *c = &w->cfg;
	char *req;
	int n;

	if (c->proto == P_WS)
		n = asprintf(&req,
		    "GET %s HTTP/1.1\r\n"
		    "Host: %s\r\n"
		    "User-Agent: lpwatch\r\n"
		    "Upgrade: websocket\r\n"
		    "Connection: Upgrade\r\n"
		    "Sec-WebSocket-Key: %s\r\n"
		    "Sec-WebSocket-Version: 13\r\n"
		    "%s%s%s"
		    "\r\n",
		    c->target, c->hostport, w->ws_key,
		    c->token ? "Authorization: Bearer " : "",
		    c->token ? c->token : "", c->token ? "\r\n" : "");
	else
		n = asprintf(&req,
		    "GET %s HTTP/1.1\r\n"
		    "Host: %s\r\n"
		    "User-Agent: lpwatch\r\n"
		    "Accept: text/event-stream\r\n"
		    "Cache-Control: no-cache\r\n"
		    "%s%s%s"
		    "%s%s%s"
		    "\r\n",
		    c->target, c->hostport,
		    c->since ? "Last-Event-ID: " : "",
		    c->since ? c->since : "", c->since ? "\r\n" : "",
		    c->token ? "Authorization: Bearer " : "",
		    c->token ? c->token : "", c->token ? "\r\n" : "");
	if (n < 0)
		oom();
	send_all(w, req, (size_t)n);
	free(req);
}

/* Where the head ends ("\r\n\r\n", "\n\n" or "\n\r\n") in p[0..n), looking
 * from from; 0 when not yet. */
static size_t
head_end(const char *p, size_t from, size_t n)
{
	size_t i;

	for (i = from; i < n; i++) {
		if (p[i] != '\n')
			continue;
		if (i + 1 < n && p[i + 1] == '\n')
			return i + 2;
		if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* Reads the response head and not one byte more: what follows stays in the
 * socket, for wslay, the body parser, or (--no-read) for nobody. */
static void
read_head(struct watch *w, struct buf *head)
{
	size_t end, take, from;
	ssize_t n, k;
	short rev;
	int rc;

	head->p = malloc(MAX_HEAD + 1);
	if (head->p == NULL)
		oom();
	head->cap = MAX_HEAD + 1;
	for (;;) {
		rc = wait_fd(w, POLLIN, w->deadline, &rev);
		if (rc <= 0)
			fail_connect(w, "read the answer of",
			    rc < 0 ? strerror(errno) : why_stopped());
		n = recv(w->fd, head->p + head->len, MAX_HEAD - head->len,
		    MSG_PEEK);
		if (n < 0 && (errno == EINTR || errno == EAGAIN ||
		    errno == EWOULDBLOCK))
			continue;
		if (n < 0)
			fail_connect(w, "read the answer of", strerror(errno));
		if (n == 0)
			fail_connect(w, "read the answer of",
			    "the server closed the connection before answering");
		from = head->len >= 2 ? head->len - 2 : 0;
		end = head_end(head->p, from, head->len + (size_t)n);
		take = end ? end - head->len : (size_t)n;
		while (take > 0) {
			k = recv(w->fd, head->p + head->len, take, 0);
			if (k <= 0 && !(k < 0 && errno == EINTR))
				fail_connect(w, "read the answer of",
				    k < 0 ? strerror(errno) : "lost");
			if (k > 0) {
				head->len += (size_t)k;
				take -= (size_t)k;
			}
		}
		head->p[head->len] = '\0';
		if (end)
			return;
		if (head->len >= MAX_HEAD)
			fail_connect(w, "read the answer of",
			    "response head too large");
	}
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Whether the comma-separated list has token, case aside. */
static int
has_token(const char *list, const char *token)
{
	size_t tl = strlen(token);

	while (*list) {
		size_t n;

		list += strspn(list, " \t,");
		n = strcspn(list, " \t,");
		if (n == tl && strncasecmp(list, token, tl) == 0)
			return 1;
		list += n;
	}
	return 0;
}

static void
parse_head(struct watch *w, char *head)
{
	struct response *r = &w->resp;
	char *line, *next, *colon, *name, *value;
	int status;

	next = strchr(head, '\n');
	if (next != NULL)
		*next++ = '\0';
	if (strncmp(head, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)head[7])
	    || head[8] != ' ' || sscanf(head + 9, "%3d", &status) != 1 ||
	    status < 100 || status > 999) {
		log_error("not an HTTP answer from %s: %.80s",
		    w->cfg.hostport, head);
		exit(EX_CONN);
	}
	r->status = status;
	for (line = next; line != NULL && *line; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		colon = strchr(line, ':');
		if (colon == NULL)
			continue;
		*colon = '\0';
		name = trim(line);
		value = trim(colon + 1);
		if (strcasecmp(name, "Content-Length") == 0) {
			char *end;

			errno = 0;
			r->length = strtoull(value, &end, 10);
			r->has_length = *value && *end == '\0' && errno == 0;
		} else if (strcasecmp(name, "Transfer-Encoding") == 0) {
			r->chunked = has_token(value, "chunked");
		} else if (strcasecmp(name, "Upgrade") == 0) {
			r->upgrade_ws = strcasecmp(value, "websocket") == 0;
		} else if (strcasecmp(name, "Connection") == 0) {
			r->conn_upgrade = has_token(value, "upgrade");
		} else if (strcasecmp(name, "Sec-WebSocket-Accept") == 0) {
			snprintf(r->accept, sizeof r->accept, "%s", value);
		} else if (strcasecmp(name, "Content-Type") == 0) {
			snprintf(r->ctype, sizeof r->ctype, "%s", value);
		}
	}
	if (r->status / 100 == 1 || r->status == 204 || r->status == 304)
		w->body.mode = B_DONE;
	else if (r->chunked)
		w->body.mode = B_CHUNKED;
	else if (r->has_length)
		w->body.mode = r->length ? B_LENGTH : B_DONE;
	else
		w->body.mode = B_CLOSE;
	w->body.left = r->length;
	w->body.state = CH_SIZE;
}

static void
check_ws_accept(struct watch *w)
{
	struct response *r = &w->resp;
	struct sha1_ctx sha;
	uint8_t digest[SHA1_DIGEST_SIZE];
	char want[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE) + 1];
	const char *bad = NULL;

	sha1_init(&sha);
	sha1_update(&sha, strlen(w->ws_key), (const uint8_t *)w->ws_key);
	sha1_update(&sha, sizeof WS_GUID - 1, (const uint8_t *)WS_GUID);
	sha1_digest(&sha, sizeof digest, digest);
	base64_encode_raw(want, sizeof digest, digest);
	want[sizeof want - 1] = '\0';
	if (!r->upgrade_ws)
		bad = "no Upgrade: websocket";
	else if (!r->conn_upgrade)
		bad = "no Connection: Upgrade";
	else if (strcmp(r->accept, want) != 0)
		bad = "wrong Sec-WebSocket-Accept";
	if (bad != NULL) {
		log_error("bad WebSocket handshake from %s: %s",
		    w->cfg.hostport, bad);
		exit(EX_CONN);
	}
}

/* ---- response bodies ---- */

typedef int (*body_sink)(struct watch *w, const char *p, size_t n);

static int
body_error(struct watch *w, const char *what)
{
	log_error("bad chunked body from %s: %s", w->cfg.hostport, what);
	return -1;
}

static void
chunk_size_done(struct http_body *b)
{
	if (b->size == 0) {
		b->state = CH_TRAILER;
	} else {
		b->state = CH_DATA;
		b->left = b->size;
	}
	b->size = 0;
	b->digits = 0;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Takes n bytes of the body as read and gives its content to sink: 1 once
 * the body is complete, 0 for more, -1 on an error (told). It stops early
 * once the watch is finished. */
static int
body_feed(struct watch *w, const char *p, size_t n, body_sink sink)
{
	struct http_body *b = &w->body;
	size_t k;
	int c, h;

	while (n > 0 && w->finish == F_NONE && b->mode != B_DONE) {
		if (b->mode == B_CLOSE)
			return sink(w, p, n) < 0 ? -1 : 0;
		if (b->mode == B_LENGTH || b->state == CH_DATA) {
			k = n < b->left ? n : (size_t)b->left;
			if (sink(w, p, k) < 0)
				return -1;
			b->left -= k;
			p += k;
			n -= k;
			if (b->left == 0) {
				if (b->mode == B_LENGTH)
					b->mode = B_DONE;
				else
					b->state = CH_DATA_CR;
			}
			continue;
		}
		c = (unsigned char)*p++;
		n--;
		switch (b->state) {
		case CH_SIZE:
			h = hexval(c);
			if (h >= 0) {
				if (b->size > (UINT64_C(1) << 59))
					return body_error(w, "chunk too large");
				b->size = b->size * 16 + (uint64_t)h;
				b->digits++;
			} else if (b->digits == 0) {
				return body_error(w, "no chunk size");
			} else if (c == ';' || c == ' ' || c == '\t') {
				b->state = CH_EXT;
			} else if (c == '\r') {
				b->state = CH_SIZE_LF;
			} else if (c == '\n') {
				chunk_size_done(b);
			} else {
				return body_error(w, "bad chunk size");
			}
			break;
		case CH_EXT:
			if (c == '\n')
				chunk_size_done(b);
			break;
		case CH_SIZE_LF:
			if (c != '\n')
				return body_error(w, "bad chunk size line");
			chunk_size_done(b);
			break;
		case CH_DATA_CR:
			if (c == '\r')
				b->state = CH_DATA_LF;
			else if (c == '\n')
				b->state = CH_SIZE;
			else
				return body_error(w, "no CRLF after a chunk");
			break;
		case CH_DATA_LF:
			if (c != '\n')
				return body_error(w, "no CRLF after a chunk");
			b->state = CH_SIZE;
			break;
		case CH_TRAILER:
			if (c == '\n')
				b->mode = B_DONE;
			else if (c == '\r')
				b->state = CH_TRAILER_LF;
			else
				b->state = CH_TRAILER_LINE;
			break;
		case CH_TRAILER_LF:
			if (c == '\n')
				b->mode = B_DONE;
			else
				b->state = CH_TRAILER_LINE;
			break;
		case CH_TRAILER_LINE:
			if (c == '\n')
				b->state = CH_TRAILER;
			break;
		case CH_DATA:
			break;		/* handled above */
		}
	}
	return b->mode == B_DONE ? 1 : 0;
}

/* Whether the end of the connection here ends the body cleanly: a stream
 * closed between two chunks is a server that stopped, not a cut message. */
static int
body_can_end(const struct http_body *b)
{
	return b->mode == B_DONE || b->mode == B_CLOSE ||
	    (b->mode == B_CHUNKED && b->state == CH_SIZE && b->digits == 0);
}

static int
errbody_sink(struct watch *w, const char *p, size_t n)
{
	if (w->errbody.len < MAX_ERRBODY) {
		if (n > MAX_ERRBODY - w->errbody.len)
			n = MAX_ERRBODY - w->errbody.len;
		if (buf_add(&w->errbody, p, n) < 0)
			return -1;
	}
	return 0;
}

/* The body of an HTTP error, as far as it comes before the deadline. */
static void
read_errbody(struct watch *w)
{
	char chunk[4096];
	ssize_t n;
	short rev;

	while (w->body.mode != B_DONE) {
		if (wait_fd(w, POLLIN, w->deadline, &rev) <= 0)
			break;
		n = recv(w->fd, chunk, sizeof chunk, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		if (body_feed(w, chunk, (size_t)n, errbody_sink) != 0)
			break;
	}
}

/* ---- messages ---- */

static void
emit_line(const char *p, size_t n)
{
	fwrite(p, 1, n, stdout);
	fputc('\n', stdout);
	fflush(stdout);
}

/* One line of a text that may hold line breaks or control characters. */
static void
emit_flat(const char *prefix, const char *p, size_t n)
{
	size_t i;

	while (n > 0 && isspace((unsigned char)p[n - 1]))
		n--;
	fputs(prefix, stdout);
	for (i = 0; i < n; i++)
		fputc((unsigned char)p[i] < 0x20 ? ' ' : p[i], stdout);
	fputc('\n', stdout);
	fflush(stdout);
}

/* Copies the string member key of obj into out: 0 when absent or not a
 * string. */
static int
member_str(jv obj, const char *key, char *out, size_t outlen)
{
	jv s = jv_object_get(jv_copy(obj), jv_string(key));
	int ok = jv_get_kind(s) == JV_KIND_STRING;

	if (ok)
		snprintf(out, outlen, "%s", jv_string_value(s));
	jv_free(s);
	return ok;
}

/* now - send time of a benchmark event "b-<send_us>-..."; -1 otherwise. */
static int64_t
bench_latency(jv msg)
{
	jv inner = jv_object_get(jv_copy(msg), jv_string("message"));
	char eid[96], *end;
	int64_t sent = -1, d;

	if (jv_get_kind(inner) == JV_KIND_OBJECT &&
	    member_str(inner, "eventId", eid, sizeof eid) &&
	    strncmp(eid, "b-", 2) == 0 && isdigit((unsigned char)eid[2])) {
		errno = 0;
		sent = (int64_t)strtoll(eid + 2, &end, 10);
		if (errno != 0 || *end != '-')
			sent = -1;
	}
	jv_free(inner);
	if (sent < 0)
		return -1;
	d = epoch_us() - sent;
	return d < 0 ? 0 : d;
}

/* One server message, the text of a WebSocket frame or an SSE event's data;
 * for SSE, its event type and last event id stand in when the JSON has no
 * "type" or "id". */
static void
on_message(struct watch *w, const char *text, size_t len,
    const char *sse_event, const char *sse_id)
{
	struct watch_cfg *c = &w->cfg;
	char type[32] = "", id[64] = "";
	uint64_t ms, seq;
	int64_t lat;
	jv v;

	if (w->finish != F_NONE)
		return;
	w->received++;
	v = jv_parse_sized(text, (int)len);
	if (jv_get_kind(v) != JV_KIND_OBJECT) {
		char excerpt[121];
		size_t i, k = len < sizeof excerpt - 1 ? len : sizeof excerpt - 1;

		for (i = 0; i < k; i++)
			excerpt[i] = (unsigned char)text[i] < 0x20 ? ' ' : text[i];
		excerpt[k] = '\0';
		log_warn("a message that is not a JSON object: %s", excerpt);
		if (!c->quiet)
			emit_flat("", text, len);
		jv_free(v);
		return;
	}
	if (!c->quiet) {
		if (memchr(text, '\n', len) == NULL &&
		    memchr(text, '\r', len) == NULL) {
			emit_line(text, len);
		} else {
			jv s = jv_dump_string(jv_copy(v), 0);

			emit_line(jv_string_value(s),
			    (size_t)jv_string_length_bytes(jv_copy(s)));
			jv_free(s);
		}
	}
	if (!member_str(v, "type", type, sizeof type) && sse_event != NULL)
		snprintf(type, sizeof type, "%s", sse_event);
	if (!member_str(v, "id", id, sizeof id) && sse_id != NULL)
		snprintf(id, sizeof id, "%s", sse_id);
	if (*id)
		snprintf(w->last_id, sizeof w->last_id, "%s", id);
	if (strcmp(type, "snapshot") == 0)
		w->snapshots++;
	else if (strcmp(type, "resync") == 0)
		w->resyncs++;
	if (strcmp(type, "message") != 0) {
		jv_free(v);
		return;
	}
	w->messages++;
	if (w->lat != NULL && (lat = bench_latency(v)) >= 0)
		hist_record(w->lat, (uint64_t)lat);
	jv_free(v);
	if (c->has_until && *id &&
	    parse_stream_id(id, strlen(id), &ms, &seq) == 0 &&
	    (ms > c->until_ms || (ms == c->until_ms && seq >= c->until_seq)))
		w->finish = F_GOAL;
	if (c->count > 0 && w->messages >= (unsigned long)c->count)
		w->finish = F_GOAL;
	if (c->drop_after > 0 && w->messages >= (unsigned long)c->drop_after)
		w->finish = F_DROP;
}

/* ---- SSE ---- */

static void
sse_dispatch(struct watch *w)
{
	struct sse *s = &w->sse;

	if (s->data.len > 0) {
		/* the data lines were each followed by '\n': drop the last */
		s->data.p[--s->data.len] = '\0';
		on_message(w, s->data.p, s->data.len,
		    *s->event ? s->event : NULL, *s->id ? s->id : NULL);
	}
	s->data.len = 0;
	s->event[0] = '\0';
}

static int
sse_line(struct watch *w, char *line, size_t len)
{
	struct sse *s = &w->sse;
	const char *value;
	size_t nlen, vlen;
	char *colon;

	if (s->first_line) {
		s->first_line = 0;
		if (len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
			line += 3;
			len -= 3;
		}
	}
	if (len == 0) {
		sse_dispatch(w);
		return 0;
	}
	if (line[0] == ':')
		return 0;		/* a comment: the heartbeat */
	colon = memchr(line, ':', len);
	if (colon != NULL) {
		nlen = (size_t)(colon - line);
		value = colon + 1;
		vlen = len - nlen - 1;
		if (vlen > 0 && *value == ' ') {
			value++;
			vlen--;
		}
	} else {
		nlen = len;
		value = "";
		vlen = 0;
	}
	if (nlen == 4 && memcmp(line, "data", 4) == 0) {
		if (buf_add(&s->data, value, vlen) < 0 ||
		    buf_add(&s->data, "\n", 1) < 0) {
			log_error("an SSE event of more than %u bytes", MAX_MSG);
			return -1;
		}
	} else if (nlen == 5 && memcmp(line, "event", 5) == 0) {
		snprintf(s->event, sizeof s->event, "%.*s", (int)vlen, value);
	} else if (nlen == 2 && memcmp(line, "id", 2) == 0 &&
	    memchr(value, '\0', vlen) == NULL) {
		snprintf(s->id, sizeof s->id, "%.*s", (int)vlen, value);
	}
	/* "retry" does not concern a test client */
	return 0;
}

/* Splits the stream into lines ended by "\r\n", "\n" or "\r", whichever
 * way the reads cut them. */
static int
sse_sink(struct watch *w, const char *p, size_t n)
{
	struct sse *s = &w->sse;
	size_t k;

	while (n > 0 && w->finish == F_NONE) {
		if (s->after_cr) {
			s->after_cr = 0;
			if (*p == '\n') {
				p++;
				n--;
				continue;
			}
		}
		for (k = 0; k < n && p[k] != '\n' && p[k] != '\r'; k++)
			;
		if (buf_add(&s->line, p, k) < 0) {
			log_error("an SSE line of more than %u bytes", MAX_MSG);
			return -1;
		}
		if (k == n)
			break;
		s->after_cr = p[k] == '\r';
		p += k + 1;
		n -= k + 1;
		if (sse_line(w, s->line.p, s->line.len) < 0)
			return -1;
		s->line.len = 0;
	}
	return 0;
}

static void
sse_run(struct watch *w)
{
	char chunk[65536];
	ssize_t n;
	short rev;
	int rc;

	if (strncasecmp(w->resp.ctype, "text/event-stream", 17) != 0)
		log_warn("Content-Type is '%s', not text/event-stream",
		    w->resp.ctype);
	w->sse.first_line = 1;
	if (w->body.mode == B_DONE)
		w->finish = F_EOF;
	while (w->finish == F_NONE) {
		rc = wait_fd(w, POLLIN, w->deadline, &rev);
		if (rc == 0) {
			w->finish = F_TIME;
			break;
		}
		n = rc < 0 ? -1 : recv(w->fd, chunk, sizeof chunk, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN ||
		    errno == EWOULDBLOCK))
			continue;
		if (n < 0) {
			log_error("lost the stream from %s: %s",
			    w->cfg.hostport, strerror(errno));
			w->finish = F_LOST;
		} else if (n == 0) {
			if (body_can_end(&w->body)) {
				w->finish = F_EOF;
			} else {
				log_error("the stream from %s was cut inside "
				    "a chunk", w->cfg.hostport);
				w->finish = F_LOST;
			}
		} else {
			rc = body_feed(w, chunk, (size_t)n, sse_sink);
			if (rc < 0)
				w->finish = F_LOST;
			else if (rc > 0 && w->finish == F_NONE)
				w->finish = F_EOF;
		}
	}
}

/* ---- WebSocket ---- */

static ssize_t
ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *p, size_t len, int flags,
    void *ud)
{
	struct watch *w = ud;
	ssize_t n;

	(void)flags;
	/* Leave the rest for later once done, and look at the clock now and
	 * then when the server sends faster than we read. */
	if ((w->finish != F_NONE && !w->closing) || w->recv_budget == 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (len > w->recv_budget)
		len = w->recv_budget;
	do
		n = recv(w->fd, p, len, 0);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		w->recv_budget -= (size_t)n;
		return n;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (n == 0)
		w->io_eof = 1;
	else
		w->io_errno = errno;
	wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	return -1;
}

static ssize_t
ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *p, size_t len,
    int flags, void *ud)
{
	struct watch *w = ud;
	ssize_t n;

	do
		n = send(w->fd, p, len, MSG_NOSIGNAL |
		    (flags & WSLAY_MSG_MORE ? MSG_MORE : 0));
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
	} else {
		w->io_errno = errno;
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	}
	return -1;
}

static int
ws_genmask_cb(wslay_event_context_ptr ctx, uint8_t *p, size_t len, void *ud)
{
	(void)ud;
	if (getrandom(p, len, 0) != (ssize_t)len) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return 0;
}

/*
 * The close frame is taken here, frame by frame, rather than from
 * on_msg_recv: wslay refuses close codes outside 1000-1011 and 3000-4999
 * as a protocol error and never reports them, yet notify closes slow
 * clients with 1013 (RFC 6455's registry has it).
 */
static void
ws_frame_start_cb(wslay_event_context_ptr ctx,
    const struct wslay_event_on_frame_recv_start_arg *arg, void *ud)
{
	struct watch *w = ud;

	(void)ctx;
	w->in_close = arg->opcode == WSLAY_CONNECTION_CLOSE;
	if (w->in_close)
		w->close_len = 0;
}

static void
ws_frame_chunk_cb(wslay_event_context_ptr ctx,
    const struct wslay_event_on_frame_recv_chunk_arg *arg, void *ud)
{
	struct watch *w = ud;
	size_t n = arg->data_length;

	(void)ctx;
	if (!w->in_close)
		return;
	if (n > sizeof w->close_buf - w->close_len)
		n = sizeof w->close_buf - w->close_len;
	memcpy(w->close_buf + w->close_len, arg->data, n);
	w->close_len += n;
}

static void
ws_frame_end_cb(wslay_event_context_ptr ctx, void *ud)
{
	struct watch *w = ud;
	size_t i, n;

	if (!w->in_close)
		return;
	w->in_close = 0;
	if (w->close_seen)
		return;
	w->close_seen = 1;
	if (w->close_len >= 2) {
		w->close_code = w->close_buf[0] << 8 | w->close_buf[1];
		n = w->close_len - 2;
		for (i = 0; i < n; i++) {
			unsigned char ch = w->close_buf[2 + i];

			w->close_reason[i] = ch < 0x20 ? ' ' : (char)ch;
		}
		w->close_reason[n] = '\0';
	} else {
		w->close_code = 1005;	/* no status in the frame */
	}
	/* Echo the code before wslay answers, so a code it refuses is
	 * echoed too rather than answered with 1002; wslay then finds our
	 * close queued and queues nothing. */
	wslay_event_queue_close(ctx, w->close_len >= 2 ?
	    (uint16_t)w->close_code : 0, NULL, 0);
}

static void
ws_msg_cb(wslay_event_context_ptr ctx,
    const struct wslay_event_on_msg_recv_arg *arg, void *ud)
{
	struct watch *w = ud;

	(void)ctx;
	if (arg->opcode == WSLAY_TEXT_FRAME) {
		on_message(w, (const char *)arg->msg, arg->msg_length, NULL,
		    NULL);
	} else if (arg->opcode == WSLAY_BINARY_FRAME && !w->binary_warned) {
		log_warn("binary frames from the server are ignored");
		w->binary_warned = 1;
	}
}

static void
ws_init(struct watch *w)
{
	static const struct wslay_event_callbacks cb = {
		.recv_callback = ws_recv_cb,
		.send_callback = ws_send_cb,
		.genmask_callback = ws_genmask_cb,
		.on_frame_recv_start_callback = ws_frame_start_cb,
		.on_frame_recv_chunk_callback = ws_frame_chunk_cb,
		.on_frame_recv_end_callback = ws_frame_end_cb,
		.on_msg_recv_callback = ws_msg_cb,
	};

	if (wslay_event_context_client_init(&w->ws, &cb, w) != 0)
		oom();
	wslay_event_config_set_max_recv_msg_length(w->ws, MAX_MSG);
}

/* Sends what wslay has queued (pongs, our close) until deadline. */
static void
ws_flush(struct watch *w, int64_t deadline)
{
	short rev;

	while (wslay_event_want_write(w->ws)) {
		if (wslay_event_send(w->ws) != 0)
			return;
		if (!wslay_event_want_write(w->ws) ||
		    wait_fd(w, POLLOUT, deadline, &rev) <= 0)
			return;
	}
}

/* Our side of the closing handshake: send 1000, then read (and ignore) what
 * comes until the server's close or the end of the connection. */
static void
ws_close(struct watch *w)
{
	int64_t grace = mono_us() + CLOSE_GRACE_US;
	short rev;

	w->closing = 1;
	wslay_event_queue_close(w->ws, 1000, NULL, 0);
	ws_flush(w, grace);
	while (!w->close_seen && !w->io_eof && wslay_event_want_read(w->ws) &&
	    wait_fd(w, POLLIN, grace, &rev) > 0) {
		w->recv_budget = RECV_BUDGET;
		if (wslay_event_recv(w->ws) != 0)
			break;
	}
}

static void
ws_lost(struct watch *w, const char *why)
{
	log_error("lost the WebSocket to %s: %s", w->cfg.hostport, why);
	w->finish = F_LOST;
}

static void
ws_run(struct watch *w)
{
	short events, rev;
	int rc;

	ws_init(w);
	while (w->finish == F_NONE) {
		if (w->close_seen) {
			w->finish = F_CLOSED;
			break;
		}
		if (!wslay_event_want_read(w->ws)) {
			char why[64];

			/* wslay found a protocol error and queued a close */
			ws_flush(w, mono_us() + CLOSE_GRACE_US);
			snprintf(why, sizeof why, "protocol error from the "
			    "server, closed with %u",
			    wslay_event_get_status_code_sent(w->ws));
			ws_lost(w, why);
			break;
		}
		events = POLLIN;
		if (wslay_event_want_write(w->ws))
			events |= POLLOUT;
		rc = wait_fd(w, events, w->deadline, &rev);
		if (rc == 0) {
			w->finish = F_TIME;
			break;
		}
		if (rc < 0) {
			ws_lost(w, strerror(errno));
			break;
		}
		if (rev & (POLLIN | POLLHUP | POLLERR)) {
			w->recv_budget = RECV_BUDGET;
			if (wslay_event_recv(w->ws) != 0 &&
			    w->finish == F_NONE && !w->close_seen) {
				ws_lost(w, w->io_eof ?
				    "closed without a close frame" :
				    strerror(w->io_errno ? w->io_errno : EIO));
				break;
			}
		}
		if (w->finish == F_DROP)
			break;
		if (wslay_event_want_write(w->ws) && wslay_event_send(w->ws) != 0
		    && w->finish == F_NONE && !w->close_seen) {
			ws_lost(w, strerror(w->io_errno ? w->io_errno : EIO));
			break;
		}
	}
	switch (w->finish) {
	case F_CLOSED:
		ws_flush(w, mono_us() + CLOSE_GRACE_US);
		break;
	case F_GOAL:
	case F_TIME:
		ws_close(w);
		break;
	default:
		break;		/* a drop, or nothing left to close */
	}
}

/* --no-read: the server's stream piles up in a small window until the end,
 * when a close frame is offered without waiting for an answer. */
static void
no_read_run(struct watch *w)
{
	struct pollfd none;

	while (!stop_requested && mono_us() < w->deadline) {
		int64_t left = (w->deadline - mono_us() + 999) / 1000;

		poll(&none, 0, left > INT_MAX ? INT_MAX : (int)left);
	}
	w->finish = F_TIME;
	if (w->cfg.proto == P_WS) {
		ws_init(w);
		w->closing = 1;
		wslay_event_queue_close(w->ws, 1000, NULL, 0);
		wslay_event_send(w->ws);
	}
}

/* ---- the end ---- */

static void
report(struct watch *w)
{
	const struct hist *h = w->lat;

	if (h != NULL) {
		char closed[16] = "null";

		if (w->finish == F_CLOSED)
			snprintf(closed, sizeof closed, "%d", w->close_code);
		printf("{\"received\":%lu,\"messages\":%lu,\"p50_us\":%" PRIu64
		    ",\"p90_us\":%" PRIu64 ",\"p99_us\":%" PRIu64
		    ",\"p999_us\":%" PRIu64 ",\"max_us\":%" PRIu64
		    ",\"snapshots\":%lu,\"resyncs\":%lu,\"closed\":%s}\n",
		    w->received, w->messages, hist_percentile(h, 50),
		    hist_percentile(h, 90), hist_percentile(h, 99),
		    hist_percentile(h, 99.9), h->count ? h->max : 0,
		    w->snapshots, w->resyncs, closed);
	}
	switch (w->finish) {
	case F_CLOSED:
		printf("close %d%s%s\n", w->close_code,
		    *w->close_reason ? " " : "", w->close_reason);
		break;
	case F_HTTP: {
		char prefix[24];

		snprintf(prefix, sizeof prefix, "http %d%s", w->resp.status,
		    w->errbody.len ? " " : "");
		emit_flat(prefix, w->errbody.p ? w->errbody.p : "",
		    w->errbody.len);
		break;
	}
	case F_EOF:
		printf("eof\n");
		break;
	case F_DROP:
		printf("last-id %s\n", w->last_id);
		break;
	default:
		break;
	}
	fflush(stdout);
}

static int
exit_status(const struct watch *w)
{
	const struct watch_cfg *c = &w->cfg;

	switch (w->finish) {
	case F_LOST:
		return EX_CONN;
	case F_TIME:
		return c->count > 0 || c->has_until || c->drop_after > 0 ?
		    EX_TIMEOUT : 0;
	default:
		return 0;
	}
}

int
main(int argc, char **argv)
{
	static struct watch watch;
	struct watch *w = &watch;
	struct watch_cfg *c = &w->cfg;
	struct sigaction sa;
	struct buf head = { NULL, 0, 0 };
	char err[256];
	const char *until = NULL;
	int ch, rc, code;

	log_init("lpwatch");
	w->fd = -1;
	c->timeout_us = 30 * INT64_C(1000000);
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		rc = 0;
		switch (ch) {
		case OPT_COUNT:
			rc = parse_long(optarg, 1, 1000000000L, &c->count, err,
			    sizeof err);
			break;
		case OPT_DROP_AFTER:
			rc = parse_long(optarg, 1, 1000000000L, &c->drop_after,
			    err, sizeof err);
			break;
		case 'h':
			usage(0);
		case OPT_LATENCY:
			c->latency = 1;
			break;
		case OPT_NO_READ:
			c->no_read = 1;
			break;
		case OPT_QUIET:
			c->quiet = 1;
			break;
		case OPT_SINCE:
			c->since = optarg;
			break;
		case OPT_TIMEOUT:
			rc = parse_seconds(optarg, &c->timeout_us, err,
			    sizeof err);
			break;
		case OPT_TOKEN:
			c->token = optarg;
			break;
		case OPT_UNTIL_ID:
			until = optarg;
			if (parse_stream_id(optarg, strlen(optarg),
			    &c->until_ms, &c->until_seq) < 0) {
				snprintf(err, sizeof err,
				    "invalid stream id '%s' (MS-SEQ)", optarg);
				rc = -1;
			}
			c->has_until = 1;
			break;
		default:
			parse_option_error(ch, optind, argv, err, sizeof err);
			log_error("%s", err);
			usage(EX_USAGE);
		}
		if (rc < 0) {
			log_error("--%s: %s", opt_name(ch), err);
			usage(EX_USAGE);
		}
	}
	if (optind >= argc) {
		log_error("a URL is required");
		usage(EX_USAGE);
	}
	if (argc - optind > 1) {
		log_error("unexpected argument '%s'", argv[optind + 1]);
		usage(EX_USAGE);
	}
	c->url = argv[optind];
	if (c->no_read && (c->count || until || c->drop_after || c->latency)) {
		log_error("--no-read reads no message: it takes no --count, "
		    "--drop-after, --latency or --until-id");
		usage(EX_USAGE);
	}
	if (c->drop_after && (c->count || until)) {
		log_error("--drop-after is a goal of its own: not with --count "
		    "or --until-id");
		usage(EX_USAGE);
	}
	if ((c->token && (has_ctl(c->token) || *c->token == '\0')) ||
	    (c->since && (has_ctl(c->since) || *c->since == '\0'))) {
		log_error("--%s: empty, or has control characters",
		    c->token && (has_ctl(c->token) || !*c->token) ?
		    "token" : "since");
		usage(EX_USAGE);
	}
	if (parse_url(c, err, sizeof err) < 0) {
		log_error("%s", err);
		usage(EX_USAGE);
	}

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (c->latency && (w->lat = hist_new()) == NULL)
		oom();

	w->deadline = mono_us() + c->timeout_us;
	conn_open(w);
	if (c->proto == P_WS)
		make_ws_key(w);
	send_request(w);
	read_head(w, &head);
	parse_head(w, head.p);
	if (w->resp.status != (c->proto == P_WS ? 101 : 200)) {
		read_errbody(w);
		w->finish = F_HTTP;
	} else {
		if (c->proto == P_WS)
			check_ws_accept(w);
		if (c->no_read)
			no_read_run(w);
		else if (c->proto == P_WS)
			ws_run(w);
		else
			sse_run(w);
	}
	report(w);
	code = exit_status(w);

	close(w->fd);
	if (w->ws != NULL)
		wslay_event_context_free(w->ws);
	hist_free(w->lat);
	buf_free(&head);
	buf_free(&w->errbody);
	buf_free(&w->sse.line);
	buf_free(&w->sse.data);
	free(c->target);
	return code;
}
