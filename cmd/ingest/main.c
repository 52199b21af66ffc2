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

static opt_parser opt_rate;

#define OPT_CFG struct ingest_cfg
static const struct opt options[] = {
	O_NAME("default-class", "CLASS", default_class, "128", "default",
	    "class of events with no classId and no token class"),
	O_DURATION("drain-timeout", drain_timeout_ms, "0", "1h", "10s",
	    "on SIGTERM, wait this long for requests in hand"),
	O_LIST("listen", "ADDR", listen, nlisten, "16",
	    "127.0.0.1:8000, or systemd's sockets",
	    "HOST:PORT, [IPV6]:PORT or unix:PATH; repeatable"),
	O_LONG("max-backlog", max_backlog, "0", "1000000000", "1000000",
	    "entries in the stream past which POSTs get 503, 0 for no bound"),
	O_SIZE("max-backlog-bytes", max_backlog_bytes, "0", "1024GiB", "1GiB",
	    "the same in the stream's memory, 0 for no bound"),
	O_LONG("max-batch", max_batch, "1", "100000", "1000",
	    "events in one POST"),
	O_SIZE("max-body", max_body, "64", "1GiB", "1MiB",
	    "bytes in one POST body"),
	O_LONG("max-conns", max_conns, "1", "1000000", "8192",
	    "open client connections"),
	O_LONG("max-conns-per-addr", max_conns_per_addr, "0", "1000000", "1024",
	    "open connections from one address, 0 for no cap"),
	O_SIZE("max-field", max_field, "1", "1GiB", "256KiB",
	    "bytes in one string field"),
	O_LONG("max-inflight", max_inflight, "1", "10000000", "10000",
	    "requests waiting on Redis before 503"),
	O_FN("rate-per-addr", "RATE[/BURST]", rate_addr, opt_rate, "200/400",
	    "POSTs a second from one address, 0 for no limit"),
	O_FN("rate-per-token", "RATE[/BURST]", rate_token, opt_rate,
	    "1000/2000", "POSTs a second with one token, 0 for no limit"),
	O_TEXT("redis", "URL", redis_url,
	    "$LABPULSE_REDIS, else redis://127.0.0.1:6379/0",
	    "redis://HOST[:PORT][/DB], "
	    "sentinel://HOST:PORT[,HOST:PORT...]/MASTER[/DB] or unix:PATH"),
	O_DURATION("redis-timeout", redis_timeout_ms, "10ms", "1h", "5s",
	    "answer 503 and reconnect when Redis is silent this long"),
	O_LONG("redis-wait", redis_wait, "0", "16", "0",
	    "replicas that must hold a POST's events before its 202 (WAIT)"),
	O_DURATION("redis-wait-timeout", redis_wait_timeout_ms, "1ms", "1m",
	    "1s", "how long a WAIT waits; shorter than --redis-timeout"),
	O_DURATION("request-timeout", request_timeout_ms, "100ms", "1h", "10s",
	    "a whole request, from its connection's accept or its first byte"),
	O_TEXT("stats", "ADDR", stats_path, "$LABPULSE_RUNDIR/ingest.sock",
	    "stats socket: a path, tcp:HOST:PORT, or none"),
	O_DURATION("timeout", timeout_ms, "100ms", "1h", "30s",
	    "idle: before a request's first byte, between its reads, for a "
	    "write"),
	O_STR("to", "ADDR", to, "stream:events",
	    "stream:NAME, -, file:PATH or unix:PATH"),
	O_STR("token-file", "FILE", token_file, NULL,
	    "require bearer tokens, each bound to a class or *"),
	O_END
};

static const struct prog_opts prog_opts = {
	"ingest",
	"Accept events from JupyterLab clients on POST /api/v1/events and queue "
	"them durably; answer 202 only once every event of the request is "
	"queued.",
	options, NULL, NULL, NULL
};

static struct ingest ing;

#define ING(name, field)	STATS_COUNTER(name, struct ingest, field)
#define HTTP(name, field)	STATS_COUNTER(name, struct httpd_stats, field)
static const struct stats_counter counters[] = {
	ING("requests", requests),
	ING("posts_accepted", posts_accepted),
	ING("events_accepted", events_accepted),
	ING("wait_sent", wait_sent),
	ING("wait_short", wait_short),
	{ NULL, 0 }
}, conn_counters[] = {
	HTTP("cl_total", total),
	HTTP("cl_cap_reached", cap_reached),
	HTTP("cl_idle_closed", idle_closed),
	{ NULL, 0 }
}, conn_rejects[] = {
	/* refused by the connection layer before a request reached ingest */
	HTTP("conns_per_addr", per_addr_refused),
	HTTP("request_timeout", request_timeouts),
	HTTP("bad_request", bad_requests),
	HTTP("body_too_large", too_large),
	{ NULL, 0 }
};

static jv
num(double x)
{
	return jv_number(x);
}

/* A number, or null while it is not known (below 0). */
static jv
known(long long x)
{
	return x >= 0 ? jv_number((double)x) : jv_null();
}

static jv
stats_backlog(const struct ingest *g)
{
	jv b = jv_object();

	b = jv_object_set(b, jv_string("entries"), known(g->backlog_len));
	b = jv_object_set(b, jv_string("bytes"), known(g->backlog_bytes));
	b = jv_object_set(b, jv_string("max"), num(g->cfg.max_backlog));
	b = jv_object_set(b, jv_string("max_bytes"),
	    num(g->cfg.max_backlog_bytes));
	return jv_object_set(b, jv_string("full"), jv_bool(backlog_full(g)));
}

/* The Redis connection, and the pool poolstat shows: one connection
 * carries every request at once, so its use is the pipeline's depth
 * against its bound, not sv_active. */
static jv
stats_redis(const struct ingest *g, jv o, int64_t maxwait)
{
	int up = g->redis && rconn_is_up(g->redis);
	struct stats_pool p = { "redis", up, 1, up && g->inflight > 0,
	    up && g->inflight == 0, g->inflight, maxwait };
	jv r = jv_object();

	if (g->redis) {
		r = jv_object_set(r, jv_string("url"),
		    jv_string(rconn_url(g->redis)));
		r = jv_object_set(r, jv_string("connected"), jv_bool(up));
		r = jv_object_set(r, jv_string("sv_active"), num(p.sv_active));
		r = jv_object_set(r, jv_string("sv_idle"), num(p.sv_idle));
		r = jv_object_set(r, jv_string("connects"),
		    num(rconn_connects(g->redis)));
		r = jv_object_set(r, jv_string("losses"),
		    num(rconn_losses(g->redis)));
		r = jv_object_set(r, jv_string("timeouts"),
		    num(g->redis_timeouts));
		if (!up)
			r = jv_object_set(r, jv_string("last_error"),
			    jv_string(rconn_last_error(g->redis)));
		r = jv_object_set(r, jv_string("rtt_us"),
		    stats_hist(g->redis_rtt));
		o = jv_object_set(o, jv_string("redis"), r);
	} else
		jv_free(r);
	return jv_object_set(o, jv_string("pools"), jv_object_set(jv_object(),
	    jv_string("redis"), stats_link_add(stats_pool(&p), &g->link)));
}

static jv
fill_stats(void *arg)
{
	struct ingest *g = arg;
	const struct pending *oldest = sink_oldest(g);
	int64_t maxwait = oldest ? stats_mono_us() - oldest->t0 : 0;
	jv o = stats_header("ingest", g->started_us), rej = jv_object(), resp;
	struct httpd_stats hs;
	int i;

	memset(&hs, 0, sizeof hs);
	if (g->httpd)
		httpd_get_stats(g->httpd, &hs);
	for (i = 0; i < REJ__COUNT; i++)
		rej = jv_object_set(rej, jv_string(reject_name(i)),
		    num(g->rejects[i]));
	rej = stats_counters(rej, &hs, conn_rejects);
	resp = jv_object_set(jv_object(), jv_string("2xx"), num(g->resp_2xx));
	resp = jv_object_set(resp, jv_string("4xx"),
	    num(g->resp_4xx + hs.bad_requests + hs.too_large));
	resp = jv_object_set(resp, jv_string("5xx"),
	    num(g->resp_5xx + hs.per_addr_refused));
	o = stats_counters(o, g, counters);
	o = jv_object_set(o, jv_string("responses"), resp);
	o = jv_object_set(o, jv_string("rejected"), rej);
	o = jv_object_set(o, jv_string("cl_active"), num(hs.active));
	o = jv_object_set(o, jv_string("cl_max"), num(g->cfg.max_conns));
	o = stats_counters(o, &hs, conn_counters);
	o = jv_object_set(o, jv_string("cl_addresses"), num(hs.addresses));
	o = jv_object_set(o, jv_string("cl_max_per_addr"),
	    num(g->cfg.max_conns_per_addr));
	o = jv_object_set(o, jv_string("backlog"), stats_backlog(g));
	o = jv_object_set(o, jv_string("cl_waiting"), num(g->inflight));
	o = jv_object_set(o, jv_string("inflight_max"), num(g->cfg.max_inflight));
	o = jv_object_set(o, jv_string("maxwait_us"), num((double)maxwait));
	o = jv_object_set(o, jv_string("to"), jv_string(g->cfg.to));
	o = jv_object_set(o, jv_string("draining"), jv_bool(g->draining));
	o = stats_redis(g, o, maxwait);
	o = jv_object_set(o, jv_string("queue"), stats_queue(g->inflight,
	    g->cfg.max_inflight, "requests waiting for Redis"));
	/* POSTs: taken, answered 2xx, answered 5xx (retried by clients) */
	return jv_object_set(o, jv_string("delivery"), stats_delivery(
	    g->requests, g->posts_accepted, g->resp_5xx));
}

static void
drained(void *arg)
{
	ingest_maybe_exit(arg);
}

static void
on_stop(void *arg, const char *sig)
{
	struct ingest *g = arg;
	struct timeval tv;

	log_info("draining signal=%s waiting=%ld", sig, g->inflight);
	daemon_stopping(&g->d);
	g->draining = 1;
	httpd_drain(g->httpd, drained, g);
	ingest_maybe_exit(g);
	tv.tv_sec = g->cfg.drain_timeout_ms / 1000;
	tv.tv_usec = (g->cfg.drain_timeout_ms % 1000) * 1000;
	event_base_loopexit(g->base, &tv);
}

static void
on_reload(void *arg)
{
	struct ingest *g = arg;
	struct tokens *t;
	char err[512];

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
static int
opt_rate(const struct opt *o, const char *s, void *cfg, char *err,
    size_t errlen)
{
	struct ingest_rate *r = (void *)((char *)cfg + o->off);
	char buf[64], *slash;
	long rate, burst;

	if (strlen(s) >= sizeof buf) {
		snprintf(err, errlen, "'%s' is not RATE[/BURST]", s);
		return -1;
	}
	memcpy(buf, s, strlen(s) + 1);
	slash = strchr(buf, '/');
	if (slash)
		*slash++ = '\0';
	if (parse_long(buf, 0, 1000000, &rate, err, errlen) < 0)
		return -1;
	burst = rate > 0 ? 2 * rate : 1;
	if (slash && parse_long(slash, 1, 10000000, &burst, err, errlen) < 0)
		return -1;
	r->rate = (double)rate;
	r->burst = (double)burst;
	return 0;
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
		die(EX_OSERR, "cannot set up the HTTP server: %s", err);
	httpd_on_cap(g->httpd, on_cap, g);
	for (i = 0; i < nfds; i++)
		if (httpd_listen(g->httpd, fds[i], err, sizeof err) < 0)
			die(EX_OSERR, "cannot set up the HTTP server: %s", err);
}

/* What ingest needs before it is ready: the tokens, the rate buckets,
 * the sockets, the sink, the HTTP server, the tick. */
static void
acquire(struct ingest *g, int *fds, int *nfds)
{
	struct ingest_cfg *c = &g->cfg;
	struct timeval quarter = { 0, 250000 };
	char err[512];
	int rc;

	if (addr_parse(c->to, &g->to, err, sizeof err) < 0)
		usage_error("--to: %s", err);
	if (c->redis_wait > 0 && g->to.kind != ADDR_STREAM)
		usage_error("--redis-wait: replicas hold a stream, not --to %s",
		    c->to);
	/* a WAIT that runs out its time must not pass for a silent Redis */
	if (c->redis_wait > 0 && c->redis_wait_timeout_ms >= c->redis_timeout_ms)
		usage_error("--redis-wait-timeout: %ldms is not shorter than "
		    "--redis-timeout %ldms", c->redis_wait_timeout_ms,
		    c->redis_timeout_ms);
	if (c->token_file &&
	    (g->tokens = tokens_load(c->token_file, err, sizeof err)) == NULL)
		die(EX_CONFIG, "%s", err);
	daemon_nofile(c->max_conns + 64, "--max-conns");
	g->started_us = stats_now_us();
	g->limits.max_batch = c->max_batch;
	g->limits.max_field = c->max_field;
	g->backlog_len = g->backlog_bytes = -1;
	TAILQ_INIT(&g->pending);
	TAILQ_INIT(&g->unsynced);
	/* the bound of the pipeline: past it, 503 */
	if ((g->redis_rtt = hist_new()) == NULL ||
	    stats_link_init(&g->link, c->max_inflight) < 0)
		die_nomem();
	/* keys past these are refused (503), never let grow without bound */
	if (c->rate_addr.rate > 0 && (g->rate_addr = buckets_new(
	    c->rate_addr.rate, c->rate_addr.burst, 65536)) == NULL)
		die_nomem();
	if (c->rate_token.rate > 0 && c->token_file && (g->rate_token =
	    buckets_new(c->rate_token.rate, c->rate_token.burst, 65536)) == NULL)
		die_nomem();
	*nfds = prog_listen(c->listen, c->nlisten, "127.0.0.1:8000", fds,
	    INGEST_MAX_LISTEN);
	if ((rc = sink_setup(g, err, sizeof err)) < 0)
		die_kind(rc, "--to %s: %s", c->to, err);
	http_setup(g, fds, *nfds);
	g->tick = event_new(g->base, -1, EV_PERSIST, on_tick, g);
	if (g->tick == NULL || evtimer_add(g->tick, &quarter) < 0)
		die_nomem();
}

/* Requests still waiting are answered 503 as Redis goes, while their
 * connections are still there to answer on. */
static void
release(struct ingest *g)
{
	rconn_free(g->redis);
	g->redis = NULL;
	while (!TAILQ_EMPTY(&g->pending))
		pending_done(TAILQ_FIRST(&g->pending));
	while (!TAILQ_EMPTY(&g->unsynced))
		pending_done(TAILQ_FIRST(&g->unsynced));
	httpd_free(g->httpd);
	event_free(g->tick);
	/* each of these takes NULL, as free(3) does */
	tokens_free(g->tokens);
	buckets_free(g->rate_addr);
	buckets_free(g->rate_token);
	hist_free(g->redis_rtt);
	stats_link_free(&g->link);
	daemon_end(&g->d);
}

int
main(int argc, char **argv)
{
	struct ingest *g = &ing;
	int fds[INGEST_MAX_LISTEN], nfds;

	log_init("labpulse-ingest");
	opt_parse(&prog_opts, argc, argv, &g->cfg);
	g->d.on_stop = on_stop;
	g->d.on_reload = on_reload;
	daemon_start(&g->d, "ingest", g->cfg.stats_path, fill_stats, g);
	g->base = g->d.base;
	acquire(g, fds, &nfds);
	daemon_ready_listening(&g->d, fds, nfds, "to=%s", g->cfg.to);
	event_base_dispatch(g->base);
	if (g->inflight > 0)
		log_warn("drain timed out; unanswered=%ld", g->inflight);
	log_info("stopped requests=%lu events=%lu", g->requests,
	    g->events_accepted);
	release(g);
	return g->exit_code;
}
