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
#include <event2/http.h>

#include "addr.h"
#include "hist.h"
#include "ingest.h"
#include "log.h"
#include "prog.h"
#include "parse.h"
#include "redis.h"
#include "sd.h"
#include "stats.h"

const char usage_text[] =
"usage: labpulse ingest [--default-class CLASS] [--drain-timeout DURATION]\n"
"           [--listen ADDR]... [--max-batch N] [--max-body SIZE]\n"
"           [--max-conns N] [--max-field SIZE] [--max-inflight N]\n"
"           [--redis URL] [--redis-timeout DURATION] [--stats PATH]\n"
"           [--timeout DURATION] [--to ADDR] [--token-file FILE]\n"
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
"  --max-batch N             events in one POST (default: 1000)\n"
"  --max-body SIZE           bytes in one POST body (default: 1MiB)\n"
"  --max-conns N             open client connections (default: 1024)\n"
"  --max-field SIZE          bytes in one string field (default: 256KiB)\n"
"  --max-inflight N          requests waiting on Redis before 503 (default: 10000)\n"
"  --redis URL               redis://HOST[:PORT][/DB] or unix:PATH\n"
"                            (default: $LABPULSE_REDIS, else redis://127.0.0.1:6379/0)\n"
"  --redis-timeout DURATION  answer 503 and reconnect when Redis is silent this\n"
"                            long (default: 5s)\n"
"  --stats PATH              stats socket, or none\n"
"                            (default: $LABPULSE_RUNDIR/ingest.sock)\n"
"  --timeout DURATION        read, write and keep-alive idle timeout (default: 30s)\n"
"  --to ADDR                 stream:NAME, -, file:PATH or unix:PATH\n"
"                            (default: stream:events)\n"
"  --token-file FILE         require bearer tokens, each bound to a class\n"
"  -h, --help                show this help\n"
"  -V, --version             show the version\n";

enum {
	OPT_DEFAULT_CLASS = 256, OPT_DRAIN_TIMEOUT, OPT_LISTEN, OPT_MAX_BATCH,
	OPT_MAX_BODY, OPT_MAX_CONNS, OPT_MAX_FIELD, OPT_MAX_INFLIGHT, OPT_REDIS,
	OPT_REDIS_TIMEOUT, OPT_STATS, OPT_TIMEOUT, OPT_TO, OPT_TOKEN_FILE
};

static const struct option longopts[] = {
	{ "default-class",	required_argument, NULL, OPT_DEFAULT_CLASS },
	{ "drain-timeout",	required_argument, NULL, OPT_DRAIN_TIMEOUT },
	{ "help",		no_argument,	   NULL, 'h' },
	{ "listen",		required_argument, NULL, OPT_LISTEN },
	{ "max-batch",		required_argument, NULL, OPT_MAX_BATCH },
	{ "max-body",		required_argument, NULL, OPT_MAX_BODY },
	{ "max-conns",		required_argument, NULL, OPT_MAX_CONNS },
	{ "max-field",		required_argument, NULL, OPT_MAX_FIELD },
	{ "max-inflight",	required_argument, NULL, OPT_MAX_INFLIGHT },
	{ "redis",		required_argument, NULL, OPT_REDIS },
	{ "redis-timeout",	required_argument, NULL, OPT_REDIS_TIMEOUT },
	{ "stats",		required_argument, NULL, OPT_STATS },
	{ "timeout",		required_argument, NULL, OPT_TIMEOUT },
	{ "to",			required_argument, NULL, OPT_TO },
	{ "token-file",		required_argument, NULL, OPT_TOKEN_FILE },
	{ "version",		no_argument,	   NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

static struct ingest ing;

int
tokens_load(const char *path, struct token **out, size_t *n, char *err,
    size_t errlen)
{
	FILE *f = fopen(path, "r");
	char line[1024], *tok, *cls, *extra, *save;
	struct token *t = NULL, *nt;
	size_t count = 0;
	int lineno = 0;

	if (f == NULL) {
		snprintf(err, errlen, "cannot open token file %s: %s", path,
		    strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line too long", path, lineno);
			goto fail;
		}
		tok = strtok_r(line, " \t\r\n", &save);
		if (tok == NULL || *tok == '#')
			continue;
		cls = strtok_r(NULL, " \t\r\n", &save);
		extra = strtok_r(NULL, " \t\r\n", &save);
		if (cls == NULL || (extra != NULL && *extra != '#')) {
			snprintf(err, errlen, "%s:%d: expected TOKEN CLASS",
			    path, lineno);
			goto fail;
		}
		nt = realloc(t, (count + 1) * sizeof *t);
		if (nt == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		t = nt;
		t[count].token = strdup(tok);
		t[count].class_id = strdup(cls);
		count++;
	}
	fclose(f);
	if (count == 0) {
		snprintf(err, errlen, "%s: no tokens", path);
		tokens_free(t, count);
		return -1;
	}
	*out = t;
	*n = count;
	return 0;
fail:
	fclose(f);
	tokens_free(t, count);
	return -1;
}

void
tokens_free(struct token *t, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(t[i].token);
		free(t[i].class_id);
	}
	free(t);
}

static jv
fill_stats(void *arg)
{
	struct ingest *g = arg;
	jv o = stats_header("ingest", g->started_us), rej = jv_object(), r;
	int i;

	for (i = 0; i < REJ__COUNT; i++)
		rej = jv_object_set(rej, jv_string(reject_name(i)),
		    jv_number(g->rejects[i]));
	o = jv_object_set(o, jv_string("requests"), jv_number(g->requests));
	o = jv_object_set(o, jv_string("posts_accepted"), jv_number(g->posts_accepted));
	o = jv_object_set(o, jv_string("events_accepted"), jv_number(g->events_accepted));
	o = jv_object_set(o, jv_string("responses"), jv_object_set(jv_object_set(
	    jv_object_set(jv_object(), jv_string("2xx"), jv_number(g->resp_2xx)),
	    jv_string("4xx"), jv_number(g->resp_4xx)),
	    jv_string("5xx"), jv_number(g->resp_5xx)));
	o = jv_object_set(o, jv_string("rejected"), rej);
	o = jv_object_set(o, jv_string("cl_active"), jv_number(g->conns));
	o = jv_object_set(o, jv_string("cl_max"), jv_number(g->cfg.max_conns));
	o = jv_object_set(o, jv_string("cl_total"), jv_number(g->conns_total));
	o = jv_object_set(o, jv_string("cl_cap_reached"), jv_number(g->conns_paused));
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

		o = jv_object_set(o, jv_string("pools"), jv_object_set(
		    jv_object(), jv_string("redis"), stats_pool(&p)));
	}
	o = jv_object_set(o, jv_string("queue"), stats_queue(g->inflight,
	    g->cfg.max_inflight, "requests waiting for Redis"));
	/* POSTs: taken, answered 2xx, answered 5xx (retried by clients) */
	o = jv_object_set(o, jv_string("delivery"), stats_delivery(g->requests,
	    g->posts_accepted, g->resp_5xx));
	return o;
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
	http_drain(g);
	ingest_maybe_exit(g);
	tv.tv_sec = g->cfg.drain_timeout_ms / 1000;
	tv.tv_usec = (g->cfg.drain_timeout_ms % 1000) * 1000;
	event_base_loopexit(g->base, &tv);
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct ingest *g = arg;
	struct token *t;
	size_t n;
	char err[512];

	(void)sig;
	(void)what;
	if (g->cfg.token_file == NULL) {
		log_info("reload: nothing to reload");
		return;
	}
	if (tokens_load(g->cfg.token_file, &t, &n, err, sizeof err) < 0) {
		log_error("reload failed, keeping the old tokens: %s", err);
		return;
	}
	tokens_free(g->tokens, g->ntokens);
	g->tokens = t;
	g->ntokens = n;
	log_info("reloaded tokens=%zu file=%s", n, g->cfg.token_file);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	sink_check_timeouts(arg);
	http_age_conns(arg);
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
	c->max_conns = 1024;
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
		case OPT_MAX_FIELD:
			opt_range("max-field", parse_size, optarg, 1, 1L << 30,
			    &c->max_field);
			break;
		case OPT_MAX_INFLIGHT:
			opt_range("max-inflight", parse_long, optarg, 1, 10000000,
			    &c->max_inflight);
			break;
		case OPT_REDIS:
			c->redis_url = optarg;
			break;
		case OPT_REDIS_TIMEOUT:
			opt_range("redis-timeout", parse_duration_ms, optarg, 10,
			    3600000, &c->redis_timeout_ms);
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
	if (c->token_file && tokens_load(c->token_file, &ing.tokens,
	    &ing.ntokens, err, sizeof err) < 0)
		die(78, "%s", err);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile(c->max_conns + 64);
	ing.started_us = stats_now_us();
	ing.exit_code = 0;
	ing.limits.max_batch = c->max_batch;
	ing.limits.max_field = c->max_field;
	ing.redis_rtt = hist_new();
	ing.base = event_base_new();
	if (ing.base == NULL || ing.redis_rtt == NULL)
		die(71, "cannot create the event loop");

	nfds = prog_listen(c->listen, c->nlisten, "127.0.0.1:8000", fds, INGEST_MAX_LISTEN);
	if (sink_setup(&ing, err, sizeof err) < 0)
		die(a.kind == ADDR_STREAM ? 78 : 74, "--to %s: %s", c->to, err);
	if (http_setup(&ing, fds, nfds) < 0)
		die(71, "cannot set up the HTTP server");

	stats = prog_stats(ing.base, "ingest", c->stats_path, fill_stats, &ing);

	ev_term = evsignal_new(ing.base, SIGTERM, on_term, &ing);
	ev_int = evsignal_new(ing.base, SIGINT, on_term, &ing);
	ev_hup = evsignal_new(ing.base, SIGHUP, on_hup, &ing);
	tick = event_new(ing.base, -1, EV_PERSIST, on_tick, &ing);
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);
	evsignal_add(ev_hup, NULL);
	evtimer_add(tick, &quarter);

	prog_describe(fds, nfds, ready, sizeof ready);
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
	evhttp_free(ing.http);
	while (ing.pend_head)
		pending_done(ing.pend_head);
	stats_close(stats);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	event_free(tick);
	tokens_free(ing.tokens, ing.ntokens);
	hist_free(ing.redis_rtt);
	event_base_free(ing.base);
	return ing.exit_code;
}
