/* ingest: accept JupyterLab events over HTTP, check and stamp them, and answer
 * only once they are durable in the events stream (or written out). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>

#include "addr.h"
#include "hist.h"
#include "ingest.h"
#include "log.h"
#include "prog.h"
#include "parse.h"
#include "peers.h"
#include "redis.h"
#include "sd.h"
#include "stats.h"
#include "tokens.h"

const char usage_text[] =
"usage: labpulse ingest [--default-class CLASS] [--drain-timeout DURATION]\n"
"           [--listen ADDR]... [--max-backlog N] [--max-backlog-bytes SIZE]\n"
"           [--max-batch N] [--max-body SIZE] [--max-conns N]\n"
"           [--max-conns-per-addr N] [--max-field SIZE] [--max-inflight N]\n"
"           [--rate-per-addr RATE[/BURST]] [--rate-per-token RATE[/BURST]]\n"
"           [--redis URL] [--redis-timeout DURATION]\n"
"           [--request-timeout DURATION] [--stats PATH] [--timeout DURATION]\n"
"           [--to ADDR] [--token-file FILE]\n"
"       labpulse ingest --help | --version\n";

const char help_text[] =
"Accept events from JupyterLab clients on POST /api/v1/events and queue them\n"
"durably; answer 202 only once every event of the request is queued.\n"
"\n"
"  --default-class CLASS     class of events with no classId and no token class\n"
"                            (default: default)\n"
"  --drain-timeout DURATION  on SIGTERM, wait this long for requests in hand\n"
"                            (default: 10s)\n"
"  --listen ADDR             HOST:PORT, [IPV6]:PORT or unix:PATH; repeatable\n"
"                            (default: 127.0.0.1:8000, or systemd's sockets)\n"
"  --max-backlog N           entries in the stream past which POSTs get 503, 0 for\n"
"                            no bound (default: 1000000)\n"
"  --max-backlog-bytes SIZE  the same in the stream's memory, 0 for no bound\n"
"                            (default: 1GiB)\n"
"  --max-batch N             events in one POST (default: 1000)\n"
"  --max-body SIZE           bytes in one POST body (default: 1MiB)\n"
"  --max-conns N             open client connections (default: 8192)\n"
"  --max-conns-per-addr N    open connections from one address, 0 for no cap\n"
"                            (default: 1024)\n"
"  --max-field SIZE          bytes in one string field (default: 256KiB)\n"
"  --max-inflight N          requests waiting on Redis before 503 (default: 10000)\n"
"  --rate-per-addr RATE[/BURST]\n"
"                            POSTs a second from one address, 0 for no limit\n"
"                            (default: 200/400)\n"
"  --rate-per-token RATE[/BURST]\n"
"                            POSTs a second with one token, 0 for no limit\n"
"                            (default: 1000/2000)\n"
"  --redis URL               redis://HOST[:PORT][/DB] or unix:PATH\n"
"                            (default: $LABPULSE_REDIS, else redis://127.0.0.1:6379/0)\n"
"  --redis-timeout DURATION  answer 503 and reconnect when Redis is silent this\n"
"                            long (default: 5s)\n"
"  --request-timeout DURATION\n"
"                            a whole request, from its connection's accept or\n"
"                            its first byte (default: 10s)\n"
"  --stats PATH              stats socket, or none\n"
"                            (default: $LABPULSE_RUNDIR/ingest.sock)\n"
"  --timeout DURATION        idle: before a request's first byte, between its\n"
"                            reads, for a write (default: 30s)\n"
"  --to ADDR                 stream:NAME, -, file:PATH or unix:PATH\n"
"                            (default: stream:events)\n"
"  --token-file FILE         require bearer tokens, each bound to a class or *\n"
"  -h, --help                show this help\n"
"  -V, --version             show the version\n";

enum {
	OPT_DEFAULT_CLASS = 256, OPT_DRAIN_TIMEOUT, OPT_LISTEN, OPT_MAX_BACKLOG,
	OPT_MAX_BACKLOG_BYTES, OPT_MAX_BATCH, OPT_MAX_BODY, OPT_MAX_CONNS,
	OPT_MAX_CONNS_PER_ADDR, OPT_MAX_FIELD, OPT_MAX_INFLIGHT,
	OPT_RATE_PER_ADDR, OPT_RATE_PER_TOKEN, OPT_REDIS, OPT_REDIS_TIMEOUT,
	OPT_REQUEST_TIMEOUT, OPT_STATS, OPT_TIMEOUT, OPT_TO, OPT_TOKEN_FILE
};

static const struct option longopts[] = {
	{ "default-class",	required_argument, NULL, OPT_DEFAULT_CLASS },
	{ "drain-timeout",	required_argument, NULL, OPT_DRAIN_TIMEOUT },
	{ "help",		no_argument,	   NULL, 'h' },
	{ "listen",		required_argument, NULL, OPT_LISTEN },
	{ "max-backlog",	required_argument, NULL, OPT_MAX_BACKLOG },
	{ "max-backlog-bytes",	required_argument, NULL, OPT_MAX_BACKLOG_BYTES },
	{ "max-batch",		required_argument, NULL, OPT_MAX_BATCH },
	{ "max-body",		required_argument, NULL, OPT_MAX_BODY },
	{ "max-conns",		required_argument, NULL, OPT_MAX_CONNS },
	{ "max-conns-per-addr",	required_argument, NULL, OPT_MAX_CONNS_PER_ADDR },
	{ "max-field",		required_argument, NULL, OPT_MAX_FIELD },
	{ "max-inflight",	required_argument, NULL, OPT_MAX_INFLIGHT },
	{ "rate-per-addr",	required_argument, NULL, OPT_RATE_PER_ADDR },
	{ "rate-per-token",	required_argument, NULL, OPT_RATE_PER_TOKEN },
	{ "redis",		required_argument, NULL, OPT_REDIS },
	{ "redis-timeout",	required_argument, NULL, OPT_REDIS_TIMEOUT },
	{ "request-timeout",	required_argument, NULL, OPT_REQUEST_TIMEOUT },
	{ "stats",		required_argument, NULL, OPT_STATS },
	{ "timeout",		required_argument, NULL, OPT_TIMEOUT },
	{ "to",			required_argument, NULL, OPT_TO },
	{ "token-file",		required_argument, NULL, OPT_TOKEN_FILE },
	{ "version",		no_argument,	   NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

static struct ingest ing;

static jv
fill_stats(void *arg)
{
	struct ingest *g = arg;
	jv o = stats_header("ingest", g->started_us), rej = jv_object(), r, b;
	struct httpd_stats hs;
	int i;

	memset(&hs, 0, sizeof hs);
	if (g->httpd)
		httpd_get_stats(g->httpd, &hs);
	for (i = 0; i < REJ__COUNT; i++)
		rej = jv_object_set(rej, jv_string(reject_name(i)),
		    jv_number(g->rejects[i]));
	/* refused by the connection layer before a request reached ingest */
	rej = jv_object_set(rej, jv_string("conns_per_addr"),
	    jv_number(hs.per_addr_refused));
	rej = jv_object_set(rej, jv_string("request_timeout"),
	    jv_number(hs.request_timeouts));
	rej = jv_object_set(rej, jv_string("bad_request"),
	    jv_number(hs.bad_requests));
	rej = jv_object_set(rej, jv_string("body_too_large"),
	    jv_number(hs.too_large));
	o = jv_object_set(o, jv_string("requests"), jv_number(g->requests));
	o = jv_object_set(o, jv_string("posts_accepted"), jv_number(g->posts_accepted));
	o = jv_object_set(o, jv_string("events_accepted"), jv_number(g->events_accepted));
	o = jv_object_set(o, jv_string("responses"), jv_object_set(jv_object_set(
	    jv_object_set(jv_object(), jv_string("2xx"), jv_number(g->resp_2xx)),
	    jv_string("4xx"), jv_number(g->resp_4xx + hs.bad_requests +
	    hs.too_large)),
	    jv_string("5xx"), jv_number(g->resp_5xx + hs.per_addr_refused)));
	o = jv_object_set(o, jv_string("rejected"), rej);
	o = jv_object_set(o, jv_string("cl_active"), jv_number(hs.active));
	o = jv_object_set(o, jv_string("cl_max"), jv_number(g->cfg.max_conns));
	o = jv_object_set(o, jv_string("cl_total"), jv_number(hs.total));
	o = jv_object_set(o, jv_string("cl_cap_reached"), jv_number(hs.cap_reached));
	o = jv_object_set(o, jv_string("cl_addresses"), jv_number(hs.addresses));
	o = jv_object_set(o, jv_string("cl_max_per_addr"),
	    jv_number(g->cfg.max_conns_per_addr));
	o = jv_object_set(o, jv_string("cl_idle_closed"), jv_number(hs.idle_closed));
	b = jv_object();
	b = jv_object_set(b, jv_string("entries"), g->backlog_len >= 0 ?
	    jv_number((double)g->backlog_len) : jv_null());
	b = jv_object_set(b, jv_string("bytes"), g->backlog_bytes >= 0 ?
	    jv_number((double)g->backlog_bytes) : jv_null());
	b = jv_object_set(b, jv_string("max"), jv_number(g->cfg.max_backlog));
	b = jv_object_set(b, jv_string("max_bytes"),
	    jv_number(g->cfg.max_backlog_bytes));
	b = jv_object_set(b, jv_string("full"), jv_bool(backlog_full(g)));
	o = jv_object_set(o, jv_string("backlog"), b);
	o = jv_object_set(o, jv_string("cl_waiting"), jv_number(g->inflight));
	o = jv_object_set(o, jv_string("inflight_max"), jv_number(g->cfg.max_inflight));
	o = jv_object_set(o, jv_string("maxwait_us"), jv_number(g->pend_head ?
	    (double)(stats_mono_us() - g->pend_head->t0) : 0));
	o = jv_object_set(o, jv_string("to"), jv_string(g->cfg.to));
	o = jv_object_set(o, jv_string("draining"), jv_bool(g->draining));
	if (g->redis) {
		r = jv_object();
		r = jv_object_set(r, jv_string("url"), jv_string(rconn_url(g->redis)));
		r = jv_object_set(r, jv_string("connected"),
		    jv_bool(rconn_is_up(g->redis)));
		r = jv_object_set(r, jv_string("sv_active"),
		    jv_number(g->inflight > 0 && rconn_is_up(g->redis)));
		r = jv_object_set(r, jv_string("sv_idle"),
		    jv_number(g->inflight == 0 && rconn_is_up(g->redis)));
		r = jv_object_set(r, jv_string("connects"),
		    jv_number(rconn_connects(g->redis)));
		r = jv_object_set(r, jv_string("losses"),
		    jv_number(rconn_losses(g->redis)));
		r = jv_object_set(r, jv_string("timeouts"), jv_number(g->redis_timeouts));
		if (!rconn_is_up(g->redis))
			r = jv_object_set(r, jv_string("last_error"),
			    jv_string(rconn_last_error(g->redis)));
		r = jv_object_set(r, jv_string("rtt_us"), stats_hist(g->redis_rtt));
		o = jv_object_set(o, jv_string("redis"), r);
	}
	{
		int up = g->redis && rconn_is_up(g->redis);
		struct stats_pool p = { "redis", up, 1, up && g->inflight > 0,
		    up && g->inflight == 0, g->inflight, g->pend_head ?
		    stats_mono_us() - g->pend_head->t0 : 0 };

		/* one connection carries every request at once: its use is
		 * the pipeline's depth against its bound, not sv_active */
		o = jv_object_set(o, jv_string("pools"), jv_object_set(
		    jv_object(), jv_string("redis"),
		    stats_link_add(stats_pool(&p), &g->link)));
	}
	o = jv_object_set(o, jv_string("queue"), stats_queue(g->inflight,
	    g->cfg.max_inflight, "requests waiting for Redis"));
	/* POSTs: taken, answered 2xx, answered 5xx (retried by clients) */
	o = jv_object_set(o, jv_string("delivery"), stats_delivery(g->requests,
	    g->posts_accepted, g->resp_5xx));
	return o;
}

static void
drained(void *arg)
{
	ingest_maybe_exit(arg);
}

static void
on_term(evutil_socket_t sig, short what, void *arg)
{
	struct ingest *g = arg;
	struct timeval tv;

	(void)what;
	if (g->draining)
		return;
	log_info("draining signal=%s waiting=%ld",
	    sig == SIGTERM ? "TERM" : "INT", g->inflight);
	sd_notify_state("STOPPING=1");
	g->draining = 1;
	httpd_drain(g->httpd, drained, g);
	ingest_maybe_exit(g);
	tv.tv_sec = g->cfg.drain_timeout_ms / 1000;
	tv.tv_usec = (g->cfg.drain_timeout_ms % 1000) * 1000;
	event_base_loopexit(g->base, &tv);
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct ingest *g = arg;
	struct tokens *t;
	char err[512];

	(void)sig;
	(void)what;
	if (g->cfg.token_file == NULL) {
		log_info("reload: nothing to reload");
		return;
	}
	t = tokens_load(g->cfg.token_file, err, sizeof err);
	if (t == NULL) {
		log_error("reload failed, keeping the old tokens: %s", err);
		return;
	}
	if (g->tokens)
		tokens_free(g->tokens);
	g->tokens = t;
	log_info("reloaded tokens=%zu file=%s", tokens_count(t),
	    g->cfg.token_file);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct ingest *g = arg;
	int64_t now = stats_mono_us();

	(void)fd;
	(void)what;
	sink_check_timeouts(g);
	sink_poll_backlog(g);
	if (g->rate_addr)
		buckets_expire(g->rate_addr, now);
	if (g->rate_token)
		buckets_expire(g->rate_token, now);
}

/* RATE[/BURST]: whole POSTs a second, and how many may come at once
 * (default: twice the rate); a rate of 0 turns the bucket off. */
static void
opt_rate(const char *name, const char *s, double *rate, double *burst)
{
	char buf[64], *slash;
	long r, b;

	if (strlen(s) >= sizeof buf)
		usage_error("--%s: '%s' is not RATE[/BURST]", name, s);
	memcpy(buf, s, strlen(s) + 1);
	slash = strchr(buf, '/');
	if (slash)
		*slash++ = '\0';
	opt_range(name, parse_long, buf, 0, 1000000, &r);
	b = r > 0 ? 2 * r : 1;
	if (slash)
		opt_range(name, parse_long, slash, 1, 10000000, &b);
	*rate = (double)r;
	*burst = (double)b;
}

static void
parse_args(int argc, char **argv, struct ingest_cfg *c)
{
	int ch;

	c->to = "stream:events";
	c->default_class = "default";
	c->max_body = 1L << 20;
	c->max_batch = 1000;
	c->max_field = 256L << 10;
	c->max_inflight = 10000;
	c->max_conns = 8192;
	c->max_conns_per_addr = 1024;
	c->max_backlog = 1000000;
	c->max_backlog_bytes = 1L << 30;
	c->rate_addr = 200;
	c->burst_addr = 400;
	c->rate_token = 1000;
	c->burst_token = 2000;
	c->request_timeout_ms = 10000;
	c->timeout_ms = 30000;
	c->redis_timeout_ms = 5000;
	c->drain_timeout_ms = 10000;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":hV", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_DEFAULT_CLASS:
			if (*optarg == '\0' || strlen(optarg) > 128) {
				log_error("--default-class: must be 1 to 128 bytes");
				usage(64);
			}
			c->default_class = optarg;
			break;
		case OPT_DRAIN_TIMEOUT:
			opt_range("drain-timeout", parse_duration_ms, optarg, 0,
			    3600000, &c->drain_timeout_ms);
			break;
		case 'h':
			usage(0);
		case OPT_LISTEN:
			if (c->nlisten == INGEST_MAX_LISTEN) {
				log_error("--listen: at most %d addresses",
				    INGEST_MAX_LISTEN);
				usage(64);
			}
			c->listen[c->nlisten++] = optarg;
			break;
		case OPT_MAX_BACKLOG:
			opt_range("max-backlog", parse_long, optarg, 0,
			    1000000000, &c->max_backlog);
			break;
		case OPT_MAX_BACKLOG_BYTES:
			opt_range("max-backlog-bytes", parse_size, optarg, 0,
			    1L << 40, &c->max_backlog_bytes);
			break;
		case OPT_MAX_BATCH:
			opt_range("max-batch", parse_long, optarg, 1, 100000,
			    &c->max_batch);
			break;
		case OPT_MAX_BODY:
			opt_range("max-body", parse_size, optarg, 64, 1L << 30,
			    &c->max_body);
			break;
		case OPT_MAX_CONNS:
			opt_range("max-conns", parse_long, optarg, 1, 1000000,
			    &c->max_conns);
			break;
		case OPT_MAX_CONNS_PER_ADDR:
			opt_range("max-conns-per-addr", parse_long, optarg, 0,
			    1000000, &c->max_conns_per_addr);
			break;
		case OPT_MAX_FIELD:
			opt_range("max-field", parse_size, optarg, 1, 1L << 30,
			    &c->max_field);
			break;
		case OPT_MAX_INFLIGHT:
			opt_range("max-inflight", parse_long, optarg, 1, 10000000,
			    &c->max_inflight);
			break;
		case OPT_RATE_PER_ADDR:
			opt_rate("rate-per-addr", optarg, &c->rate_addr,
			    &c->burst_addr);
			break;
		case OPT_RATE_PER_TOKEN:
			opt_rate("rate-per-token", optarg, &c->rate_token,
			    &c->burst_token);
			break;
		case OPT_REDIS:
			c->redis_url = optarg;
			break;
		case OPT_REDIS_TIMEOUT:
			opt_range("redis-timeout", parse_duration_ms, optarg, 10,
			    3600000, &c->redis_timeout_ms);
			break;
		case OPT_REQUEST_TIMEOUT:
			opt_range("request-timeout", parse_duration_ms, optarg,
			    100, 3600000, &c->request_timeout_ms);
			break;
		case OPT_STATS:
			c->stats_path = optarg;
			break;
		case OPT_TIMEOUT:
			opt_range("timeout", parse_duration_ms, optarg, 100,
			    3600000, &c->timeout_ms);
			break;
		case OPT_TO:
			c->to = optarg;
			break;
		case OPT_TOKEN_FILE:
			c->token_file = optarg;
			break;
		case 'V':
			printf("labpulse ingest %s\n", LABPULSE_VERSION);
			exit(0);
		default:
			bad_option(ch, argv);
		}
	}
	no_operands(argc, argv);
}

static void
on_cap(void *arg, long conns)
{
	(void)arg;
	log_warn("connection cap reached; not accepting conns=%ld", conns);
}

/* The server of lib/httpd on the listening sockets; its request bounds are
 * ingest's flags. */
static void
http_setup(struct ingest *g, const int *fds, int nfds)
{
	struct httpd_cfg hc;
	char err[512];
	int i;

	memset(&hc, 0, sizeof hc);
	hc.max_conns = g->cfg.max_conns;
	hc.max_per_addr = g->cfg.max_conns_per_addr;
	hc.idle_ms = g->cfg.timeout_ms;
	hc.request_ms = g->cfg.request_timeout_ms;
	hc.req.max_head = 16384;
	hc.req.max_body = (size_t)g->cfg.max_body;
	hc.req.max_headers = 100;
	g->httpd = httpd_new(g->base, &hc, http_handle, g, err, sizeof err);
	if (g->httpd == NULL)
		die(71, "cannot set up the HTTP server: %s", err);
	httpd_on_cap(g->httpd, on_cap, g);
	for (i = 0; i < nfds; i++)
		if (httpd_listen(g->httpd, fds[i], err, sizeof err) < 0)
			die(71, "cannot set up the HTTP server: %s", err);
}

/* Room for the connection cap and the stream's own descriptors. */
static void
raise_nofile(long want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= (rlim_t)want)
		return;
	rl.rlim_cur = rl.rlim_max < (rlim_t)want ? rl.rlim_max : (rlim_t)want;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < (rlim_t)want)
		log_warn("open-file limit %lu is below what --max-conns needs "
		    "(%ld)", (unsigned long)rl.rlim_cur, want);
}

int
main(int argc, char **argv)
{
	struct ingest_cfg *c = &ing.cfg;
	char err[512], ready[1024];
	int fds[INGEST_MAX_LISTEN], nfds;
	struct event *ev_term, *ev_int, *ev_hup, *tick;
	struct stats_server *stats = NULL;
	struct timeval quarter = { 0, 250000 };
	struct addr a;

	log_init("labpulse-ingest");
	parse_args(argc, argv, c);
	if (addr_parse(c->to, &a, err, sizeof err) < 0) {
		log_error("--to: %s", err);
		usage(64);
	}
	if (c->token_file) {
		ing.tokens = tokens_load(c->token_file, err, sizeof err);
		if (ing.tokens == NULL)
			die(78, "%s", err);
	}
	signal(SIGPIPE, SIG_IGN);
	raise_nofile(c->max_conns + 64);
	ing.started_us = stats_now_us();
	ing.exit_code = 0;
	ing.limits.max_batch = c->max_batch;
	ing.limits.max_field = c->max_field;
	ing.backlog_len = ing.backlog_bytes = -1;
	ing.redis_rtt = hist_new();
	ing.base = event_base_new();
	/* the bound of the pipeline: past it, 503 */
	if (ing.base == NULL || ing.redis_rtt == NULL ||
	    stats_link_init(&ing.link, c->max_inflight) < 0)
		die(71, "cannot create the event loop");
	/* keys past these are refused (503), never let grow without bound */
	if (c->rate_addr > 0 && (ing.rate_addr = buckets_new(c->rate_addr,
	    c->burst_addr, 65536)) == NULL)
		die(71, "out of memory");
	if (c->rate_token > 0 && c->token_file && (ing.rate_token =
	    buckets_new(c->rate_token, c->burst_token, 65536)) == NULL)
		die(71, "out of memory");

	nfds = prog_listen(c->listen, c->nlisten, "127.0.0.1:8000", fds, INGEST_MAX_LISTEN);
	if (sink_setup(&ing, err, sizeof err) < 0)
		die(a.kind == ADDR_STREAM ? 78 : 74, "--to %s: %s", c->to, err);
	prog_describe(fds, nfds, ready, sizeof ready);
	http_setup(&ing, fds, nfds);

	stats = prog_stats(ing.base, "ingest", c->stats_path, fill_stats, &ing);

	ev_term = evsignal_new(ing.base, SIGTERM, on_term, &ing);
	ev_int = evsignal_new(ing.base, SIGINT, on_term, &ing);
	ev_hup = evsignal_new(ing.base, SIGHUP, on_hup, &ing);
	tick = event_new(ing.base, -1, EV_PERSIST, on_tick, &ing);
	if (ev_term == NULL || ev_int == NULL || ev_hup == NULL || tick == NULL)
		die(71, "out of memory");
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);
	evsignal_add(ev_hup, NULL);
	evtimer_add(tick, &quarter);

	log_info("ready listen=%s to=%s", ready, c->to);
	{
		char state[1200];

		snprintf(state, sizeof state, "READY=1\nSTATUS=listening on %s",
		    ready);
		sd_notify_state(state);
	}

	event_base_dispatch(ing.base);

	if (ing.inflight > 0)
		log_warn("drain timed out; unanswered=%ld", ing.inflight);
	log_info("stopped requests=%lu events=%lu", ing.requests,
	    ing.events_accepted);
	/* Requests still waiting are answered 503 as Redis goes, while their
	 * connections are still there to answer on. */
	rconn_free(ing.redis);
	ing.redis = NULL;
	while (ing.pend_head)
		pending_done(ing.pend_head);
	httpd_free(ing.httpd);
	stats_close(stats);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	event_free(tick);
	if (ing.tokens)
		tokens_free(ing.tokens);
	if (ing.rate_addr)
		buckets_free(ing.rate_addr);
	if (ing.rate_token)
		buckets_free(ing.rate_token);
	hist_free(ing.redis_rtt);
	stats_link_free(&ing.link);
	event_base_free(ing.base);
	return ing.exit_code;
}
