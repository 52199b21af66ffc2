/* httpbench: an HTTP/1.1 keep-alive load client on one libevent loop that
 * POSTs JupyterLab-like events to ingest, closed or open loop, and reports
 * throughput and latency corrected for coordinated omission. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "hist.h"
#include "log.h"
#include "parse.h"
#include "stats.h"
#include "url.h"
#include "httpc.h"

static const char usage_text[] =
"usage: httpbench [--batch N] [--classes N] [--conns N] [--duration SECONDS]\n"
"           [--json] [--rate R] [--stamp] [--timeout SECONDS]\n"
"           [--warmup SECONDS] --url URL\n"
"       httpbench --help\n";

static const char help_text[] =
"POST JupyterLab cell events to URL over keep-alive connections on one event\n"
"loop, then report requests/s, events/s, status codes, errors, latency\n"
"percentiles and the client's own CPU use.\n"
"\n"
"  --batch N           events in one POST (default: 1)\n"
"  --classes N         give each event \"classId\":\"bench-K\", K the student\n"
"                      (0 to 199) modulo N; 0 sends no classId (default: 0)\n"
"  --conns N           keep-alive connections (default: 200)\n"
"  --duration SECONDS  measured time after the warm-up (default: 10)\n"
"  --json              one JSON object on stdout instead of the table\n"
"  --rate R            open loop: R requests per second in total, latency\n"
"                      measured from each request's due time; 0 is closed\n"
"                      loop, each connection sends when answered (default: 0)\n"
"  --stamp             eventIds \"b-<epoch microseconds>-<n>\", the time the\n"
"                      request is written (in the open loop, when it is really\n"
"                      sent, not when it fell due), for a dashboard client to\n"
"                      measure POST to receipt; without it \"bench-<run>-<n>\"\n"
"  --timeout SECONDS   a request unanswered this long is an error; also the\n"
"                      connect time allowed and the wait for answers after\n"
"                      the end (default: 5)\n"
"  --warmup SECONDS    load before the measured window, not counted (default: 1)\n"
"  --url URL           http://HOST:PORT/PATH\n"
"  -h, --help          show this help\n"
"\n"
"Exit status: 0 at least one request was answered 2xx, 1 none was, 64 usage,\n"
"68 the host cannot be resolved, 71 the event loop cannot be set up.\n";

enum {
	OPT_BATCH = 256, OPT_CLASSES, OPT_CONNS, OPT_DURATION, OPT_JSON,
	OPT_RATE, OPT_STAMP, OPT_TIMEOUT, OPT_URL, OPT_WARMUP
};

static const struct option longopts[] = {
	{ "batch",	required_argument, NULL, OPT_BATCH },
	{ "classes",	required_argument, NULL, OPT_CLASSES },
	{ "conns",	required_argument, NULL, OPT_CONNS },
	{ "duration",	required_argument, NULL, OPT_DURATION },
	{ "help",	no_argument,	   NULL, 'h' },
	{ "json",	no_argument,	   NULL, OPT_JSON },
	{ "rate",	required_argument, NULL, OPT_RATE },
	{ "stamp",	no_argument,	   NULL, OPT_STAMP },
	{ "timeout",	required_argument, NULL, OPT_TIMEOUT },
	{ "url",	required_argument, NULL, OPT_URL },
	{ "warmup",	required_argument, NULL, OPT_WARMUP },
	{ NULL, 0, NULL, 0 }
};

#define MAX_HEAD	65536
#define MAX_BODY	(16L << 20)
#define EVENT_MAX	1024		/* bytes one rendered event may take */
#define STUDENTS	200
#define RETRY_MIN_MS	50
#define RETRY_MAX_MS	1000

struct bench_cfg {
	const char *url;
	struct url u;
	long batch, classes, conns, duration_ms, timeout_ms, warmup_ms;
	double rate;
	int json, stamp;
};

enum conn_state { C_CLOSED, C_CONNECTING, C_IDLE, C_HEAD, C_BODY };
enum phase { P_CONNECT, P_RUN, P_DRAIN, P_DONE };

struct bench;

struct conn {
	struct bench *b;
	struct bufferevent *bev;
	struct event *retry;
	enum conn_state state;
	struct conn *iprev, *inext;	/* in the idle queue */
	int in_idle;
	int close_after;		/* the server said Connection: close */
	int status;
	size_t body_left;
	int64_t due_us, sent_us;
	int measured;
	long retry_ms;
};

struct bench {
	struct bench_cfg cfg;
	struct event_base *base;
	struct conn *conns;
	struct conn *idle_head, *idle_tail;
	struct event *tick, *phase_ev, *sigint;
	enum phase phase;
	char run_id[48];
	char *body;
	size_t body_cap;
	uint64_t next_event;		/* counter in the eventIds */
	int64_t stamp_us;		/* --stamp: wall time of this request */
	unsigned long event_bytes;	/* rendered, for the average size */
	uint64_t next_req;		/* open loop: the next request's index */
	int64_t t_start, t_warm, t_end;
	long connected, inflight;
	struct hist *lat, *lat_unc;	/* microseconds */
	struct rusage ru0;
	/* counters over the whole run */
	unsigned long sent, answered, ok, events_sent, events_accepted;
	unsigned long err_connect, err_reset, err_timeout, err_protocol;
	unsigned long unanswered, server_closed, connects, backlog;
	unsigned long status[600];
	/* counters over the measured window */
	unsigned long w_answered, w_ok, w_events;
	char last_error[160];
};

static void conn_connect(struct conn *c);
static void conn_ready(struct conn *c);

static void __attribute__((noreturn))
usage(int code)
{
	fputs(usage_text, code ? stderr : stdout);
	if (code == 0)
		fputs(help_text, stdout);
	exit(code);
}

static void __attribute__((noreturn, format(printf, 2, 3)))
die(int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_error("%s", msg);
	exit(code);
}

static struct timeval
tv_of_us(int64_t us)
{
	struct timeval tv;

	if (us < 0)
		us = 0;
	tv.tv_sec = (time_t)(us / 1000000);
	tv.tv_usec = (suseconds_t)(us % 1000000);
	return tv;
}

static int
parse_rate(const char *s, double *out, char *err, size_t errlen)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end != '\0' || errno != 0 || !isfinite(v) ||
	    v < 0 || v > 10e6) {
		snprintf(err, errlen, "invalid rate '%s' (0 to 10000000)", s);
		return -1;
	}
	*out = v;
	return 0;
}

/* ---- the events ---- */

static const char event_code[] =
	"import pandas as pd\\n"
	"df = pd.read_csv('grades.csv')\\n"
	"print(df.groupby('team').score.mean().round(2))";

/* One event as the cell-monitor extension sends it, about 500 bytes: the
 * fields of DESIGN.md, 200 students, 100 characters of Python; with
 * --classes, the class a dashboard follows; with --stamp, the send time
 * in the eventId, which route passes to the dashboards unchanged. */
static size_t
render_event(struct bench *b, char *p, size_t cap)
{
	uint64_t n = b->next_event++;
	unsigned k = (unsigned)(n % STUDENTS);
	char id[80], klass[40] = "";
	int len;

	if (b->cfg.stamp)
		snprintf(id, sizeof id, "b-%lld-%llu", (long long)b->stamp_us,
		    (unsigned long long)n);
	else
		snprintf(id, sizeof id, "bench-%s-%llu", b->run_id,
		    (unsigned long long)n);
	if (b->cfg.classes > 0)
		snprintf(klass, sizeof klass, "\"classId\":\"bench-%u\",",
		    k % (unsigned)b->cfg.classes);
	len = snprintf(p, cap,
	    "{\"eventId\":\"%s\",%s\"eventType\":\"cell_executed\","
	    "\"eventTime\":\"2026-11-25T10:15:%02u.%03u\","
	    "\"emailAddress\":\"student%u@example.edu\","
	    "\"userName\":\"Student %u\",\"teamName\":\"team-%02u\","
	    "\"sessionId\":\"s-%u\",\"notebookPath\":\"lab3.ipynb\","
	    "\"cellId\":\"c%u\",\"cellIndex\":%u,\"cellType\":\"code\","
	    "\"code\":\"%s\",\"executionCount\":%llu,\"hasError\":false,"
	    "\"result\":\"3.2\",\"executionDurationMs\":12.5,"
	    "\"metadata\":{\"kernel\":\"python3\"}}",
	    id, klass, (unsigned)(n / 1000 % 60),
	    (unsigned)(n % 1000), k, k, k % 20, k, (unsigned)(n % 40),
	    (unsigned)(n % 40), event_code,
	    (unsigned long long)(n / STUDENTS % 1000 + 1));
	if (len < 0 || (size_t)len >= cap)
		return 0;
	b->event_bytes += (unsigned long)len;
	return (size_t)len;
}

static size_t
render_body(struct bench *b)
{
	size_t len = 0, n;
	long i;

	b->body[len++] = '[';
	for (i = 0; i < b->cfg.batch; i++) {
		if (i > 0)
			b->body[len++] = ',';
		n = render_event(b, b->body + len, b->body_cap - len - 2);
		if (n == 0)
			return 0;
		len += n;
	}
	b->body[len++] = ']';
	return len;
}

/* ---- the idle queue: connections ready for a request, oldest first ---- */

static void
idle_push(struct conn *c)
{
	struct bench *b = c->b;

	if (c->in_idle)
		return;
	c->inext = NULL;
	c->iprev = b->idle_tail;
	if (b->idle_tail)
		b->idle_tail->inext = c;
	else
		b->idle_head = c;
	b->idle_tail = c;
	c->in_idle = 1;
}

static void
idle_remove(struct conn *c)
{
	struct bench *b = c->b;

	if (!c->in_idle)
		return;
	if (c->iprev)
		c->iprev->inext = c->inext;
	else
		b->idle_head = c->inext;
	if (c->inext)
		c->inext->iprev = c->iprev;
	else
		b->idle_tail = c->iprev;
	c->iprev = c->inext = NULL;
	c->in_idle = 0;
}

/* ---- phases ---- */

static void
finish(struct bench *b)
{
	if (b->phase == P_DONE)
		return;
	b->phase = P_DONE;
	event_base_loopbreak(b->base);
}

static void
maybe_finish(struct bench *b)
{
	if (b->phase == P_DRAIN && b->inflight == 0)
		finish(b);
}

static void
set_phase_timer(struct bench *b, int64_t at_us)
{
	struct timeval tv = tv_of_us(at_us - stats_mono_us());

	evtimer_add(b->phase_ev, &tv);
}

static int64_t
due_of(const struct bench *b, uint64_t k)
{
	return b->t_start + (int64_t)((double)k * 1e6 / b->cfg.rate);
}

static void send_request(struct conn *c, int64_t due);

/* Open loop: send every request that is due while a connection is free;
 * what cannot go yet stays due and is sent late, its wait counted. */
static void
pump(struct bench *b)
{
	int64_t now = stats_mono_us(), due = 0;
	struct timeval tv;

	if (b->phase != P_RUN)
		return;
	while (b->idle_head) {
		due = due_of(b, b->next_req);
		if (due > now || due >= b->t_end)
			break;
		b->next_req++;
		send_request(b->idle_head, due);
	}
	due = due_of(b, b->next_req);
	if (b->idle_head && due < b->t_end) {
		tv = tv_of_us(due - now);
		evtimer_add(b->tick, &tv);
	}
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pump(arg);
}

static void
start_run(struct bench *b)
{
	struct conn *c;

	b->phase = P_RUN;
	b->t_start = stats_mono_us();
	b->t_warm = b->t_start + b->cfg.warmup_ms * 1000;
	b->t_end = b->t_warm + b->cfg.duration_ms * 1000;
	set_phase_timer(b, b->t_end);
	if (b->cfg.rate > 0) {
		pump(b);
		return;
	}
	while ((c = b->idle_head) != NULL)
		send_request(c, b->t_start);
}

static void
on_phase(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;
	double due;

	(void)fd;
	(void)what;
	switch (b->phase) {
	case P_CONNECT:
		start_run(b);
		break;
	case P_RUN:
		b->phase = P_DRAIN;
		evtimer_del(b->tick);
		if (b->cfg.rate > 0) {
			/* requests that fell due but found no free connection */
			due = ceil((double)(b->t_end - b->t_start) * b->cfg.rate /
			    1e6);
			if (due > (double)b->next_req)
				b->backlog = (unsigned long)(due -
				    (double)b->next_req);
		}
		set_phase_timer(b, stats_mono_us() + b->cfg.timeout_ms * 1000);
		maybe_finish(b);
		break;
	case P_DRAIN:
		b->unanswered += (unsigned long)b->inflight;
		finish(b);
		break;
	case P_DONE:
		break;
	}
}

static void
on_sigint(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;

	(void)fd;
	(void)what;
	if (b->phase == P_CONNECT || b->phase == P_RUN) {
		if (b->phase == P_CONNECT)
			b->t_start = b->t_warm = b->t_end = stats_mono_us();
		else if (stats_mono_us() < b->t_end)
			b->t_end = stats_mono_us() > b->t_warm ? stats_mono_us() : b->t_warm;
		b->phase = P_RUN;
		event_active(b->phase_ev, EV_TIMEOUT, 0);
	} else {
		finish(b);
	}
}

/* ---- connections ---- */

static void
conn_close(struct conn *c, long retry_ms)
{
	struct bench *b = c->b;
	struct timeval tv;

	idle_remove(c);
	if (c->state == C_HEAD || c->state == C_BODY)
		b->inflight--;
	if (c->state != C_CLOSED && c->state != C_CONNECTING)
		b->connected--;
	if (c->bev) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	c->state = C_CLOSED;
	if (b->phase == P_CONNECT || b->phase == P_RUN) {
		tv = tv_of_us(retry_ms * 1000);
		evtimer_add(c->retry, &tv);
	}
	maybe_finish(b);
}

static void
conn_failed(struct conn *c)
{
	c->retry_ms = c->retry_ms ? c->retry_ms * 2 : RETRY_MIN_MS;
	if (c->retry_ms > RETRY_MAX_MS)
		c->retry_ms = RETRY_MAX_MS;
	conn_close(c, c->retry_ms);
}

static void
note_error(struct bench *b, const char *what, int err)
{
	snprintf(b->last_error, sizeof b->last_error, "%s: %s", what,
	    err ? evutil_socket_error_to_string(err) : "closed by peer");
}

static void
send_request(struct conn *c, int64_t due)
{
	struct bench *b = c->b;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct timeval tv = tv_of_us(b->cfg.timeout_ms * 1000);
	size_t len;

	idle_remove(c);
	if (b->cfg.stamp)
		b->stamp_us = stats_now_us();
	len = render_body(b);
	if (len == 0)
		die(EX_SOFTWARE, "event buffer too small");
	evbuffer_add_printf(out, "POST %s HTTP/1.1\r\nHost: %s\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
	    b->cfg.u.path, b->cfg.u.hostport, len);
	evbuffer_add(out, b->body, len);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	c->state = C_HEAD;
	c->due_us = due;
	c->sent_us = stats_mono_us();
	c->measured = due >= b->t_warm;
	c->close_after = 0;
	b->inflight++;
	b->sent++;
	b->events_sent += (unsigned long)b->cfg.batch;
}

/* A connection with nothing in flight: send, or wait for the schedule. */
static void
conn_ready(struct conn *c)
{
	struct bench *b = c->b;

	bufferevent_set_timeouts(c->bev, NULL, NULL);
	c->state = C_IDLE;
	if (b->phase == P_DRAIN || b->phase == P_DONE) {
		maybe_finish(b);
		return;
	}
	if (b->phase == P_RUN && b->cfg.rate == 0) {
		send_request(c, stats_mono_us());
		return;
	}
	idle_push(c);
	if (b->phase == P_RUN)
		pump(b);
}

/* Status line and the headers this client acts on; chunked bodies are
 * not needed here. */
static int
parse_head(struct conn *c, const char *h, size_t len)
{
	struct httpc_head hd;
	char err[160];

	if (httpc_head_parse(h, len, &hd, err, sizeof err) < 0 ||
	    hd.status > 599 || hd.te || (hd.has_length && hd.length > MAX_BODY))
		return -1;
	if (!hd.has_length && hd.status != 204 && hd.status != 304)
		return -1;
	c->status = hd.status;
	c->body_left = hd.has_length ? (size_t)hd.length : 0;
	c->close_after = hd.conn_close || (hd.http10 && !hd.conn_keep_alive);
	return 0;
}

static unsigned long
accepted_of(const char *body, size_t len)
{
	const char *p = memmem(body, len, "\"accepted\":", 11);
	char num[24];
	size_t i = 0;

	if (p == NULL)
		return 0;
	for (p += 11; p < body + len && *p == ' '; p++)
		;
	while (p < body + len && *p >= '0' && *p <= '9' && i < sizeof num - 1)
		num[i++] = *p++;
	num[i] = '\0';
	return strtoul(num, NULL, 10);
}

static void
response_done(struct conn *c, unsigned long accepted)
{
	struct bench *b = c->b;
	int64_t now = stats_mono_us();
	int ok = c->status >= 200 && c->status < 300;

	b->inflight--;
	b->answered++;
	b->status[c->status]++;
	if (ok) {
		b->ok++;
		b->events_accepted += accepted;
	}
	if (now >= b->t_warm && now <= b->t_end) {
		b->w_answered++;
		if (ok) {
			b->w_ok++;
			b->w_events += accepted;
		}
	}
	if (c->measured) {
		hist_record(b->lat, (uint64_t)(now - c->due_us));
		hist_record(b->lat_unc, (uint64_t)(now - c->sent_us));
	}
	c->retry_ms = 0;
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct bench *b = c->b;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr pos;
	unsigned long accepted = 0;
	size_t hl;

	if (c->state == C_HEAD) {
		pos = evbuffer_search(in, "\r\n\r\n", 4, NULL);
		if (pos.pos < 0) {
			if (evbuffer_get_length(in) > MAX_HEAD)
				goto bad;
			return;
		}
		hl = (size_t)pos.pos + 4;
		if (parse_head(c, (const char *)evbuffer_pullup(in,
		    (ssize_t)hl), hl) < 0)
			goto bad;
		evbuffer_drain(in, hl);
		c->state = C_BODY;
	}
	if (c->state != C_BODY)
		goto bad;	/* bytes nobody asked for */
	if (evbuffer_get_length(in) < c->body_left)
		return;
	if (c->status >= 200 && c->status < 300 && c->body_left > 0)
		accepted = accepted_of((const char *)evbuffer_pullup(in,
		    (ssize_t)c->body_left), c->body_left);
	evbuffer_drain(in, c->body_left);
	response_done(c, accepted);
	c->state = C_IDLE;
	if (evbuffer_get_length(in) > 0)
		goto bad;
	if (c->close_after) {
		b->server_closed++;
		conn_close(c, 0);
		return;
	}
	conn_ready(c);
	return;
bad:
	b->err_protocol++;
	snprintf(b->last_error, sizeof b->last_error,
	    "protocol: unexpected response bytes");
	conn_failed(c);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	struct bench *b = c->b;
	int err = EVUTIL_SOCKET_ERROR();
	int busy = c->state == C_HEAD || c->state == C_BODY;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		c->state = C_IDLE;
		b->connected++;
		b->connects++;
		if (b->phase == P_CONNECT && b->connected == b->cfg.conns)
			event_active(b->phase_ev, EV_TIMEOUT, 0);
		conn_ready(c);
		return;
	}
	if (c->state == C_CONNECTING) {
		b->err_connect++;
		note_error(b, "connect", what & BEV_EVENT_TIMEOUT ? ETIMEDOUT : err);
		conn_failed(c);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		b->err_timeout++;
		note_error(b, "request", ETIMEDOUT);
		conn_failed(c);
		return;
	}
	if (!busy && (what & BEV_EVENT_EOF)) {
		/* a keep-alive connection the server ended while idle */
		b->server_closed++;
		conn_close(c, 0);
		return;
	}
	b->err_reset++;
	note_error(b, "connection", what & BEV_EVENT_EOF ? 0 : err);
	conn_failed(c);
}

static void
conn_connect(struct conn *c)
{
	struct bench *b = c->b;
	struct timeval tv = tv_of_us(b->cfg.timeout_ms * 1000);
	evutil_socket_t fd;
	int one = 1;

	fd = socket(b->cfg.u.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd < 0) {
		b->err_connect++;
		note_error(b, "socket", errno);
		conn_failed(c);
		return;
	}
	/* requests are written whole; never wait on Nagle */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->bev = bufferevent_socket_new(b->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		b->err_connect++;
		note_error(b, "bufferevent", ENOMEM);
		conn_failed(c);
		return;
	}
	c->state = C_CONNECTING;
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(c->bev,
	    (struct sockaddr *)&b->cfg.u.sa, (int)b->cfg.u.salen) < 0) {
		b->err_connect++;
		note_error(b, "connect", EVUTIL_SOCKET_ERROR());
		conn_failed(c);
	}
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (c->b->phase == P_CONNECT || c->b->phase == P_RUN)
		conn_connect(c);
}

/* ---- the report ---- */

static double
ms(uint64_t us)
{
	return (double)us / 1000.0;
}

static void
json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void
json_latency(const char *name, const struct hist *h)
{
	printf("\"%s\":{\"count\":%llu,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
	    "\"p999\":%.3f,\"max\":%.3f,\"mean\":%.3f}", name,
	    (unsigned long long)h->count, ms(hist_percentile(h, 50)),
	    ms(hist_percentile(h, 90)), ms(hist_percentile(h, 99)),
	    ms(hist_percentile(h, 99.9)), ms(h->count ? h->max : 0),
	    hist_mean(h) / 1000.0);
}

static void
text_latency(const char *name, const struct hist *h)
{
	printf("  %-22s %9.3f %9.3f %9.3f %9.3f %9.3f  (n=%llu)\n", name,
	    ms(hist_percentile(h, 50)), ms(hist_percentile(h, 90)),
	    ms(hist_percentile(h, 99)), ms(hist_percentile(h, 99.9)),
	    ms(h->count ? h->max : 0), (unsigned long long)h->count);
}

static void
report(struct bench *b, double wall_s)
{
	const struct bench_cfg *c = &b->cfg;
	struct rusage ru;
	double win = (double)c->duration_ms / 1000.0, user, sys, cpu;
	double rps = win > 0 ? (double)b->w_answered / win : 0;
	double evb = b->next_event ? (double)b->event_bytes /
	    (double)b->next_event : 0;
	double eps = win > 0 ? (double)b->w_events / win : 0;
	int i, first = 1;

	getrusage(RUSAGE_SELF, &ru);
	user = (double)(ru.ru_utime.tv_sec - b->ru0.ru_utime.tv_sec) +
	    (double)(ru.ru_utime.tv_usec - b->ru0.ru_utime.tv_usec) / 1e6;
	sys = (double)(ru.ru_stime.tv_sec - b->ru0.ru_stime.tv_sec) +
	    (double)(ru.ru_stime.tv_usec - b->ru0.ru_stime.tv_usec) / 1e6;
	cpu = wall_s > 0 ? 100.0 * (user + sys) / wall_s : 0;
	if (c->json) {
		printf("{\"url\":");
		json_string(c->url);
		printf(",\"mode\":\"%s\",\"conns\":%ld,\"batch\":%ld,"
		    "\"rate\":%.3f,\"duration_s\":%.3f,\"warmup_s\":%.3f,"
		    "\"classes\":%ld,\"stamp\":%s,",
		    c->rate > 0 ? "open" : "closed", c->conns, c->batch,
		    c->rate, win, (double)c->warmup_ms / 1000.0, c->classes,
		    c->stamp ? "true" : "false");
		printf("\"requests\":{\"sent\":%lu,\"answered\":%lu,\"ok\":%lu},"
		    "\"events\":{\"sent\":%lu,\"accepted\":%lu,\"bytes\":%.0f},"
		    "\"status\":{", b->sent, b->answered, b->ok, b->events_sent,
		    b->events_accepted, evb);
		for (i = 0; i < 600; i++)
			if (b->status[i]) {
				printf("%s\"%d\":%lu", first ? "" : ",", i,
				    b->status[i]);
				first = 0;
			}
		printf("},\"errors\":{\"connect\":%lu,\"reset\":%lu,"
		    "\"timeout\":%lu,\"protocol\":%lu,\"unanswered\":%lu},",
		    b->err_connect, b->err_reset, b->err_timeout,
		    b->err_protocol, b->unanswered);
		printf("\"last_error\":");
		json_string(b->last_error);
		printf(",\"connects\":%lu,\"server_closed\":%lu,\"backlog\":%lu,",
		    b->connects, b->server_closed, b->backlog);
		printf("\"window\":{\"seconds\":%.3f,\"answered\":%lu,\"ok\":%lu,"
		    "\"events_accepted\":%lu},\"requests_per_s\":%.1f,"
		    "\"events_per_s\":%.1f,", win, b->w_answered, b->w_ok,
		    b->w_events, rps, eps);
		json_latency("latency_ms", b->lat);
		putchar(',');
		json_latency("latency_uncorrected_ms", b->lat_unc);
		printf(",\"cpu\":{\"user_s\":%.3f,\"sys_s\":%.3f,\"wall_s\":%.3f,"
		    "\"pct\":%.1f}}\n", user, sys, wall_s, cpu);
		return;
	}
	printf("httpbench: %s\n", c->url);
	printf("  %s loop, %ld connections, %ld event(s) per POST",
	    c->rate > 0 ? "open" : "closed", c->conns, c->batch);
	if (c->rate > 0)
		printf(", %.1f requests/s offered", c->rate);
	printf(", %.1f s warm-up + %.1f s measured\n",
	    (double)c->warmup_ms / 1000.0, win);
	if (c->classes > 0)
		printf("  classes   bench-0 to bench-%ld, by student\n",
		    c->classes - 1);
	if (c->stamp)
		printf("  eventIds  stamped with the send time, b-<epoch us>-<n>\n");
	printf("  requests  sent %lu  answered %lu  2xx %lu\n", b->sent,
	    b->answered, b->ok);
	printf("  events    sent %lu  accepted %lu  (%.0f bytes each)\n",
	    b->events_sent, b->events_accepted, evb);
	printf("  status   ");
	for (i = 0; i < 600; i++)
		if (b->status[i])
			printf(" %d:%lu", i, b->status[i]);
	printf("%s\n", b->answered ? "" : " none");
	printf("  errors    connect %lu  reset %lu  timeout %lu  protocol %lu"
	    "  unanswered %lu\n", b->err_connect, b->err_reset,
	    b->err_timeout, b->err_protocol, b->unanswered);
	if (b->last_error[0])
		printf("  last error: %s\n", b->last_error);
	printf("  connects %lu  closed by server %lu", b->connects,
	    b->server_closed);
	if (c->rate > 0)
		printf("  due but never sent %lu", b->backlog);
	printf("\n  throughput (measured window)  %.1f requests/s  "
	    "%.1f events/s\n", rps, eps);
	printf("  latency ms               %9s %9s %9s %9s %9s\n", "p50", "p90",
	    "p99", "p99.9", "max");
	if (c->rate > 0) {
		text_latency("from due time", b->lat);
		text_latency("from send (uncorr.)", b->lat_unc);
	} else {
		text_latency("request", b->lat);
	}
	printf("  client CPU  user %.2f s  sys %.2f s  = %.0f%% of one core "
	    "over %.1f s\n", user, sys, cpu, wall_s);
}

/* ---- main ---- */

int
main(int argc, char **argv)
{
	static struct bench bench;
	struct bench *b = &bench;
	struct bench_cfg *c = &b->cfg;
	struct event_config *ecfg;
	char err[256];
	int64_t t0;
	long i;
	int ch, rc, li = 0;

	log_init("httpbench");
	c->batch = 1;
	c->conns = 200;
	c->duration_ms = 10000;
	c->timeout_ms = 5000;
	c->warmup_ms = 1000;
	while ((ch = getopt_long(argc, argv, "h", longopts, &li)) != -1) {
		rc = 0;
		switch (ch) {
		case OPT_BATCH:
			rc = parse_long(optarg, 1, 10000, &c->batch, err,
			    sizeof err);
			break;
		case OPT_CLASSES:
			rc = parse_long(optarg, 0, STUDENTS, &c->classes, err,
			    sizeof err);
			break;
		case OPT_CONNS:
			rc = parse_long(optarg, 1, 20000, &c->conns, err,
			    sizeof err);
			break;
		case OPT_DURATION:
			rc = parse_duration_ms(optarg, 100, 86400000L,
			    &c->duration_ms, err, sizeof err);
			break;
		case 'h':
			usage(0);
		case OPT_JSON:
			c->json = 1;
			break;
		case OPT_RATE:
			rc = parse_rate(optarg, &c->rate, err, sizeof err);
			break;
		case OPT_STAMP:
			c->stamp = 1;
			break;
		case OPT_TIMEOUT:
			rc = parse_duration_ms(optarg, 10, 3600000L,
			    &c->timeout_ms, err, sizeof err);
			break;
		case OPT_URL:
			c->url = optarg;
			break;
		case OPT_WARMUP:
			rc = parse_duration_ms(optarg, 0, 86400000L,
			    &c->warmup_ms, err, sizeof err);
			break;
		default:
			usage(EX_USAGE);
		}
		if (rc < 0) {
			log_error("--%s: %s", longopts[li].name, err);
			usage(EX_USAGE);
		}
	}
	if (optind < argc) {
		log_error("unexpected argument '%s'", argv[optind]);
		usage(EX_USAGE);
	}
	if (c->url == NULL) {
		log_error("--url is required");
		usage(EX_USAGE);
	}
	if (url_split(c->url, 0, &c->u, err, sizeof err) < 0) {
		log_error("--url: %s", err);
		usage(EX_USAGE);
	}
	if (url_resolve(&c->u, err, sizeof err) < 0)
		die(EX_NOHOST, "%s", err);
	signal(SIGPIPE, SIG_IGN);

	snprintf(b->run_id, sizeof b->run_id, "%ld.%lld", (long)getpid(),
	    (long long)time(NULL));
	b->body_cap = (size_t)c->batch * EVENT_MAX + 16;
	b->body = malloc(b->body_cap);
	b->conns = calloc((size_t)c->conns, sizeof *b->conns);
	b->lat = hist_new();
	b->lat_unc = hist_new();
	ecfg = event_config_new();
	if (ecfg == NULL || b->body == NULL || b->conns == NULL ||
	    b->lat == NULL || b->lat_unc == NULL)
		die(EX_OSERR, "out of memory");
	event_config_set_flag(ecfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	b->base = event_base_new_with_config(ecfg);
	event_config_free(ecfg);
	if (b->base == NULL)
		die(EX_OSERR, "cannot set up the event loop");
	b->tick = evtimer_new(b->base, on_tick, b);
	b->phase_ev = evtimer_new(b->base, on_phase, b);
	b->sigint = evsignal_new(b->base, SIGINT, on_sigint, b);
	if (b->tick == NULL || b->phase_ev == NULL || b->sigint == NULL)
		die(EX_OSERR, "cannot set up the event loop");
	evsignal_add(b->sigint, NULL);

	getrusage(RUSAGE_SELF, &b->ru0);
	t0 = stats_mono_us();
	/* far-off marks until the run starts */
	b->t_start = b->t_warm = b->t_end = INT64_MAX / 2;
	b->phase = P_CONNECT;
	set_phase_timer(b, t0 + c->timeout_ms * 1000);
	for (i = 0; i < c->conns; i++) {
		struct conn *cn = &b->conns[i];

		cn->b = b;
		cn->retry = evtimer_new(b->base, on_retry, cn);
		if (cn->retry == NULL)
			die(EX_OSERR, "cannot set up the event loop");
		conn_connect(cn);
	}
	event_base_dispatch(b->base);

	report(b, (double)(stats_mono_us() - t0) / 1e6);
	for (i = 0; i < c->conns; i++) {
		if (b->conns[i].bev)
			bufferevent_free(b->conns[i].bev);
		event_free(b->conns[i].retry);
	}
	event_free(b->tick);
	event_free(b->phase_ev);
	event_free(b->sigint);
	event_base_free(b->base);
	hist_free(b->lat);
	hist_free(b->lat_unc);
	free(b->conns);
	free(b->body);
	return b->ok > 0 ? 0 : 1;
}
