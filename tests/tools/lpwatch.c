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
#include <sys/socket.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <jv.h>

#include "err.h"
#include "hist.h"
#include "log.h"
#include "parse.h"
#include "stats.h"
#include "url.h"
#include "wsclient.h"

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

#define MAX_HEAD	65536		/* a response head */
#define MAX_MSG		(64u << 20)	/* a message, an SSE line or event */
#define MAX_ERRBODY	4096		/* what "http STATUS BODY" shows */
#define NO_READ_RCVBUF	4096
#define CLOSE_GRACE_US	1000000		/* to flush our close, await theirs */
#define RECV_BUDGET	(1u << 20)	/* bytes per turn before the clock */

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
	struct url u;
	char *target;			/* path and query of the request line */
	enum proto proto;
	long count, drop_after;
	uint64_t until_ms, until_seq;
	int64_t timeout_us;
	int has_until, latency, no_read, quiet;
};

struct watch {
	struct watch_cfg cfg;
	int fd;
	int64_t deadline;		/* CLOCK_MONOTONIC microseconds */
	char ws_key[WSC_KEY_SIZE];
	struct httpc_head resp;
	struct httpc_body body;
	struct wsc_sse sse;
	struct wsc_buf errbody;
	struct wsc ws;
	size_t recv_budget;
	int io_eof, io_errno;
	int closing;			/* we sent, or are sending, our close */
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

static void
on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void
oom(void)
{
	log_error("out of memory");
	exit(EX_OSERR);
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

/* http://HOST[:PORT]/PATH[?QUERY] or ws://...; HOST may be [IPV6]. The
 * last segment of PATH picks the protocol. */
static int
parse_url(struct watch_cfg *c, char *err, size_t errlen)
{
	size_t pl, cap;
	int rc;

	if ((rc = url_split(c->url, URL_WS, &c->u, err, errlen)) < 0)
		return rc;
	pl = strcspn(c->u.path, "?");
	if (pl >= 3 && memcmp(c->u.path + pl - 3, "/ws", 3) == 0) {
		c->proto = P_WS;
	} else if (pl >= 4 && memcmp(c->u.path + pl - 4, "/sse", 4) == 0 &&
	    !c->u.ws) {
		c->proto = P_SSE;
	} else {
		snprintf(err, errlen, "the URL path must end in /ws%s: %s",
		    c->u.ws ? "" : " or /sse", c->url);
		return -1;
	}
	cap = strlen(c->u.path) + 8 + (c->since ? 3 * strlen(c->since) : 0);
	if ((c->target = malloc(cap)) == NULL)
		oom();
	snprintf(c->target, cap, "%s", c->u.path);
	if (c->since != NULL && c->proto == P_WS) {
		strcat(c->target, strchr(c->target, '?') ? "&since=" : "?since=");
		url_encode(c->target, cap, c->since);
	}
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
		left = deadline - stats_mono_us();
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
	log_error("cannot %s %s: %s", what, w->cfg.u.hostport, why);
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
	rc = getaddrinfo(w->cfg.u.host, w->cfg.u.port, &hints, &res);
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
send_request(struct watch *w)
{
	const struct watch_cfg *c = &w->cfg;
	struct wsc_req r = { .target = c->target, .host = c->u.hostport,
	    .agent = "lpwatch", .token = c->token };
	char *req;

	if (c->proto == P_WS)
		r.ws_key = w->ws_key;
	else
		r.last_id = c->since;
	if ((req = wsc_request(&r)) == NULL)
		oom();
	send_all(w, req, strlen(req));
	free(req);
}

/* Reads the response head and not one byte more: what follows stays in the
 * socket, for wslay, the body parser, or (--no-read) for nobody. */
static void
read_head(struct watch *w, struct wsc_buf *head)
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
		end = httpc_head_end(head->p, from, head->len + (size_t)n);
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

static void
parse_head(struct watch *w, const struct wsc_buf *head)
{
	char err[160];
	const char *bad;

	if (httpc_head_parse(head->p, head->len, &w->resp, err, sizeof err) < 0) {
		log_error("%s: %s", w->cfg.u.hostport, err);
		exit(EX_CONN);
	}
	httpc_body_start(&w->body, &w->resp);
	if (w->cfg.proto != P_WS || w->resp.status != 101)
		return;
	if ((bad = wsc_handshake_check(&w->resp, w->ws_key)) != NULL) {
		log_error("bad WebSocket handshake from %s: %s",
		    w->cfg.u.hostport, bad);
		exit(EX_CONN);
	}
}

/* ---- response bodies ---- */

static int
errbody_sink(void *arg, const char *p, size_t n, char *err, size_t errlen)
{
	struct watch *w = arg;

	(void)err;
	(void)errlen;
	if (w->errbody.len < MAX_ERRBODY) {
		if (n > MAX_ERRBODY - w->errbody.len)
			n = MAX_ERRBODY - w->errbody.len;
		if (wsc_buf_add(&w->errbody, p, n, MAX_ERRBODY) < 0)
			oom();
	}
	return 0;
}

/* The body of an HTTP error, as far as it comes before the deadline. */
static void
read_errbody(struct watch *w)
{
	char chunk[4096], err[160];
	ssize_t n;
	short rev;

	while (w->body.mode != HTTPC_DONE) {
		if (wait_fd(w, POLLIN, w->deadline, &rev) <= 0)
			break;
		n = recv(w->fd, chunk, sizeof chunk, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		if (httpc_body_feed(&w->body, chunk, (size_t)n, errbody_sink, w,
		    err, sizeof err) != 0)
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
	d = stats_now_us() - sent;
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

static int
sse_event(void *arg, const char *data, size_t len, const char *event,
    const char *id)
{
	struct watch *w = arg;

	on_message(w, data, len, event, id);
	return w->finish != F_NONE;
}

static void
sse_run(struct watch *w)
{
	char chunk[65536], err[160];
	ssize_t n;
	short rev;
	int rc;

	if (strncasecmp(w->resp.ctype, "text/event-stream", 17) != 0)
		log_warn("Content-Type is '%s', not text/event-stream",
		    w->resp.ctype);
	wsc_sse_init(&w->sse, sse_event, w, MAX_MSG);
	if (w->body.mode == HTTPC_DONE)
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
			    w->cfg.u.hostport, strerror(errno));
			w->finish = F_LOST;
		} else if (n == 0) {
			if (httpc_body_can_end(&w->body)) {
				w->finish = F_EOF;
			} else {
				log_error("the stream from %s was cut inside "
				    "a chunk", w->cfg.u.hostport);
				w->finish = F_LOST;
			}
		} else {
			rc = httpc_body_feed(&w->body, chunk, (size_t)n,
			    wsc_sse_feed, &w->sse, err, sizeof err);
			if (rc == -ERR_OS)
				oom();
			if (rc < 0) {
				log_error("the stream from %s: %s",
				    w->cfg.u.hostport, err);
				w->finish = F_LOST;
			}
			else if (rc > 0 && w->finish == F_NONE)
				w->finish = F_EOF;
		}
	}
}

/* ---- WebSocket ---- */

/* 0 (not now) for EAGAIN; -1 for an error or the end, noted. */
static ssize_t
io_result(struct watch *w, ssize_t n)
{
	if (n >= 0 || errno == EAGAIN || errno == EWOULDBLOCK)
		return n < 0 ? 0 : n;
	w->io_errno = errno;
	return -1;
}

static ssize_t
ws_recv(void *arg, uint8_t *p, size_t len)
{
	struct watch *w = arg;
	ssize_t n;

	/* Leave the rest for later once done, and look at the clock now and
	 * then when the server sends faster than we read. */
	if ((w->finish != F_NONE && !w->closing) || w->recv_budget == 0)
		return 0;
	if (len > w->recv_budget)
		len = w->recv_budget;
	do
		n = recv(w->fd, p, len, 0);
	while (n < 0 && errno == EINTR);
	if (n == 0) {
		w->io_eof = 1;
		return -1;
	}
	if ((n = io_result(w, n)) > 0)
		w->recv_budget -= (size_t)n;
	return n;
}

static ssize_t
ws_send(void *arg, const uint8_t *p, size_t len, int more)
{
	struct watch *w = arg;
	ssize_t n;

	do
		n = send(w->fd, p, len, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
	while (n < 0 && errno == EINTR);
	return io_result(w, n);
}

static void
ws_text(void *arg, const char *msg, size_t len)
{
	on_message(arg, msg, len, NULL, NULL);
}

static void
ws_binary(void *arg)
{
	struct watch *w = arg;

	if (!w->binary_warned)
		log_warn("binary frames from the server are ignored");
	w->binary_warned = 1;
}

static void
ws_init(struct watch *w)
{
	static const struct wsc_cb cb = { ws_recv, ws_send, ws_text,
	    ws_binary };

	if (wsc_open(&w->ws, &cb, w, MAX_MSG) < 0)
		oom();
}

/* Sends what wslay has queued (pongs, our close) until deadline. */
static void
ws_flush(struct watch *w, int64_t deadline)
{
	short rev;

	while (wslay_event_want_write(w->ws.ctx)) {
		if (wslay_event_send(w->ws.ctx) != 0)
			return;
		if (!wslay_event_want_write(w->ws.ctx) ||
		    wait_fd(w, POLLOUT, deadline, &rev) <= 0)
			return;
	}
}

/* Our side of the closing handshake: send 1000, then read (and ignore) what
 * comes until the server's close or the end of the connection. */
static void
ws_close(struct watch *w)
{
	int64_t grace = stats_mono_us() + CLOSE_GRACE_US;
	short rev;

	w->closing = 1;
	wslay_event_queue_close(w->ws.ctx, 1000, NULL, 0);
	ws_flush(w, grace);
	while (!w->ws.close_seen && !w->io_eof &&
	    wslay_event_want_read(w->ws.ctx) &&
	    wait_fd(w, POLLIN, grace, &rev) > 0) {
		w->recv_budget = RECV_BUDGET;
		if (wslay_event_recv(w->ws.ctx) != 0)
			break;
	}
}

static void
ws_lost(struct watch *w, const char *why)
{
	log_error("lost the WebSocket to %s: %s", w->cfg.u.hostport, why);
	w->finish = F_LOST;
}

static void
ws_run(struct watch *w)
{
	short events, rev;
	int rc;

	ws_init(w);
	while (w->finish == F_NONE) {
		if (w->ws.close_seen) {
			w->finish = F_CLOSED;
			break;
		}
		if (!wslay_event_want_read(w->ws.ctx)) {
			char why[64];

			/* wslay found a protocol error and queued a close */
			ws_flush(w, stats_mono_us() + CLOSE_GRACE_US);
			snprintf(why, sizeof why, "protocol error from the "
			    "server, closed with %u",
			    wslay_event_get_status_code_sent(w->ws.ctx));
			ws_lost(w, why);
			break;
		}
		events = POLLIN;
		if (wslay_event_want_write(w->ws.ctx))
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
			if (wslay_event_recv(w->ws.ctx) != 0 &&
			    w->finish == F_NONE && !w->ws.close_seen) {
				ws_lost(w, w->io_eof ?
				    "closed without a close frame" :
				    strerror(w->io_errno ? w->io_errno : EIO));
				break;
			}
		}
		if (w->finish == F_DROP)
			break;
		if (wslay_event_want_write(w->ws.ctx) &&
		    wslay_event_send(w->ws.ctx) != 0 &&
		    w->finish == F_NONE && !w->ws.close_seen) {
			ws_lost(w, strerror(w->io_errno ? w->io_errno : EIO));
			break;
		}
	}
	switch (w->finish) {
	case F_CLOSED:
		ws_flush(w, stats_mono_us() + CLOSE_GRACE_US);
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

	while (!stop_requested && stats_mono_us() < w->deadline) {
		int64_t left = (w->deadline - stats_mono_us() + 999) / 1000;

		poll(&none, 0, left > INT_MAX ? INT_MAX : (int)left);
	}
	w->finish = F_TIME;
	if (w->cfg.proto == P_WS) {
		ws_init(w);
		w->closing = 1;
		wslay_event_queue_close(w->ws.ctx, 1000, NULL, 0);
		wslay_event_send(w->ws.ctx);
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
			snprintf(closed, sizeof closed, "%d", w->ws.close_code);
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
		printf("close %d%s%s\n", w->ws.close_code,
		    *w->ws.close_reason ? " " : "", w->ws.close_reason);
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
	struct wsc_buf head = { NULL, 0, 0 };
	char err[256];
	const char *until = NULL;
	int ch, rc, li = 0, code;

	log_init("lpwatch");
	w->fd = -1;
	c->timeout_us = 30 * INT64_C(1000000);
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", longopts, &li)) != -1) {
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
			log_error("--%s: %s", longopts[li].name, err);
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
	if ((c->token && (wsc_has_ctl(c->token) || *c->token == '\0')) ||
	    (c->since && (wsc_has_ctl(c->since) || *c->since == '\0'))) {
		log_error("--%s: empty, or has control characters",
		    c->token && (wsc_has_ctl(c->token) || !*c->token) ?
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

	w->deadline = stats_mono_us() + c->timeout_us;
	conn_open(w);
	if (c->proto == P_WS && wsc_key(w->ws_key, err, sizeof err) < 0) {
		log_error("%s", err);
		exit(EX_CONN);
	}
	send_request(w);
	read_head(w, &head);
	parse_head(w, &head);
	if (w->resp.status != (c->proto == P_WS ? 101 : 200)) {
		read_errbody(w);
		w->finish = F_HTTP;
	} else {
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
	wsc_free(&w->ws);
	hist_free(w->lat);
	wsc_buf_free(&head);
	wsc_buf_free(&w->errbody);
	wsc_sse_free(&w->sse);
	free(c->target);
	return code;
}
