/* notify: live instructor dashboards over WebSocket and Server-Sent Events,
 * fed from the routed stream, filtered by the classes each instructor may
 * watch, with replay after a reconnect and bounded send queues. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "hist.h"
#include "log.h"
#include "prog.h"
#include "notify.h"
#include "parse.h"
#include "peers.h"
#include "sd.h"
#include "stats.h"

const char usage_text[] =
"usage: labpulse notify [--db CONNINFO] [--db-pool N] [--from ADDR]\n"
"           [--heartbeat DURATION] [--listen ADDR]... [--max-clients N]\n"
"           [--max-conns-per-addr N] [--max-queue SIZE]\n"
"           [--on-slow resync|close] [--redis URL]\n"
"           [--request-timeout DURATION] [--stats PATH]\n"
"           [--token-ttl DURATION] [--web-root DIR]\n"
"       labpulse notify --help | --version\n";

const char help_text[] =
"Serve live class dashboards: WebSocket at /ws, Server-Sent Events at /sse,\n"
"the dashboard page at /, and /healthz. Clients name their classes with\n"
"?class= and authenticate with an instructor token.\n"
"\n"
"  --db CONNINFO            PostgreSQL (default: $DATABASE_URL, else PG* variables)\n"
"  --db-pool N              PostgreSQL connections shared by all clients\n"
"                           (default: 2)\n"
"  --from ADDR              stream:NAME (read whole), -, file:PATH or unix:PATH\n"
"                           (default: stream:routed)\n"
"  --heartbeat DURATION     SSE comments and WebSocket pings this often; no\n"
"                           answer for two of them closes a WebSocket\n"
"                           (default: 15s)\n"
"  --listen ADDR            HOST:PORT or unix:PATH, repeatable\n"
"                           (default: 127.0.0.1:8080, or systemd's sockets)\n"
"  --max-clients N          connections at once; more are answered 503\n"
"                           (default: 1000)\n"
"  --max-conns-per-addr N   connections at once from one address, 0 for no\n"
"                           cap; more are answered 503 (default: 64)\n"
"  --max-queue SIZE         bytes queued for one client before it is resynced\n"
"                           or closed; a WebSocket client whose pings take it\n"
"                           past this is closed 1008 (default: 1MiB)\n"
"  --on-slow resync|close   what a client past --max-queue gets: a resync and\n"
"                           a fresh snapshot once it drained, or close 1013\n"
"                           (default: resync)\n"
"  --redis URL              redis://HOST[:PORT][/DB] or unix:PATH\n"
"                           (default: $LABPULSE_REDIS, else redis://127.0.0.1:6379/0)\n"
"  --request-timeout DURATION\n"
"                           a request must be whole this long after the\n"
"                           connection opened, or the answer before it on a\n"
"                           kept-alive one, else 408 (default: 10s)\n"
"  --stats PATH             stats socket, or none\n"
"                           (default: $LABPULSE_RUNDIR/notify.sock)\n"
"  --token-ttl DURATION     keep who holds a token this long, 0 to ask\n"
"                           PostgreSQL every time; revocations drop it at\n"
"                           once (default: 60s)\n"
"  --web-root DIR           the dashboard's files (default: the installed ones)\n"
"  -h, --help               show this help\n"
"  -V, --version            show the version\n";

enum {
	OPT_DB = 256, OPT_DB_POOL, OPT_FROM, OPT_HEARTBEAT, OPT_LISTEN,
	OPT_MAX_CLIENTS, OPT_MAX_CONNS_PER_ADDR, OPT_MAX_QUEUE, OPT_ON_SLOW,
	OPT_REDIS, OPT_REQUEST_TIMEOUT, OPT_STATS, OPT_TOKEN_TTL, OPT_WEB_ROOT
};

static const struct option longopts[] = {
	{ "db",		 required_argument, NULL, OPT_DB },
	{ "db-pool",	 required_argument, NULL, OPT_DB_POOL },
	{ "from",	 required_argument, NULL, OPT_FROM },
	{ "heartbeat",	 required_argument, NULL, OPT_HEARTBEAT },
	{ "help",	 no_argument,	    NULL, 'h' },
	{ "listen",	 required_argument, NULL, OPT_LISTEN },
	{ "max-clients", required_argument, NULL, OPT_MAX_CLIENTS },
	{ "max-conns-per-addr", required_argument, NULL, OPT_MAX_CONNS_PER_ADDR },
	{ "max-queue",	 required_argument, NULL, OPT_MAX_QUEUE },
	{ "on-slow",	 required_argument, NULL, OPT_ON_SLOW },
	{ "redis",	 required_argument, NULL, OPT_REDIS },
	{ "request-timeout", required_argument, NULL, OPT_REQUEST_TIMEOUT },
	{ "stats",	 required_argument, NULL, OPT_STATS },
	{ "token-ttl",	 required_argument, NULL, OPT_TOKEN_TTL },
	{ "version",	 no_argument,	    NULL, 'V' },
	{ "web-root",	 required_argument, NULL, OPT_WEB_ROOT },
	{ NULL, 0, NULL, 0 }
};

static struct notify nt;

static void
parse_args(int argc, char **argv, struct notify_cfg *c)
{
	int ch;

	c->from = "stream:routed";
	c->max_clients = 1000;
	c->max_queue = 1 << 20;
	c->heartbeat_ms = 15000;
	c->pool_size = 2;
	c->request_timeout_ms = 10000;
	/* revocations arrive by LISTEN at once, and a lost LISTEN re-checks
	 * everyone: the TTL only bounds what no notification says (a class
	 * taken away by hand in SQL) */
	c->token_ttl_ms = 60000;
	/* a class's instructors may share one NAT address, and a lecture
	 * hall's screens too: far above one person's tabs, far below what
	 * would let one address hold --max-clients */
	c->max_conns_per_addr = 64;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":hV", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_DB:
			c->db = optarg;
			break;
		case OPT_DB_POOL:
			opt_range("db-pool", parse_long, optarg, 1, 64,
			    &c->pool_size);
			break;
		case OPT_FROM:
			c->from = optarg;
			break;
		case OPT_HEARTBEAT:
			opt_range("heartbeat", parse_duration_ms, optarg, 100,
			    3600000, &c->heartbeat_ms);
			break;
		case 'h':
			usage(0);
		case OPT_LISTEN:
			if (c->nlisten == NOTIFY_MAX_LISTEN) {
				log_error("--listen: at most %d", NOTIFY_MAX_LISTEN);
				usage(64);
			}
			c->listen[c->nlisten++] = optarg;
			break;
		case OPT_MAX_CLIENTS:
			opt_range("max-clients", parse_long, optarg, 1, 100000,
			    &c->max_clients);
			break;
		case OPT_MAX_CONNS_PER_ADDR:
			opt_range("max-conns-per-addr", parse_long, optarg, 0,
			    100000, &c->max_conns_per_addr);
			break;
		case OPT_MAX_QUEUE:
			opt_range("max-queue", parse_size, optarg, 1024,
			    1L << 30, &c->max_queue);
			break;
		case OPT_ON_SLOW:
			if (strcmp(optarg, "resync") == 0)
				c->slow_close = 0;
			else if (strcmp(optarg, "close") == 0)
				c->slow_close = 1;
			else {
				log_error("--on-slow: resync or close, not '%s'",
				    optarg);
				usage(64);
			}
			break;
		case OPT_REDIS:
			c->redis_url = optarg;
			break;
		case OPT_REQUEST_TIMEOUT:
			opt_range("request-timeout", parse_duration_ms, optarg,
			    100, 600000, &c->request_timeout_ms);
			break;
		case OPT_STATS:
			c->stats_path = optarg;
			break;
		case OPT_TOKEN_TTL:
			opt_range("token-ttl", parse_duration_ms, optarg, 0,
			    86400000, &c->token_ttl_ms);
			break;
		case 'V':
			printf("labpulse notify %s\n", LABPULSE_VERSION);
			exit(0);
		case OPT_WEB_ROOT:
			c->web_root = optarg;
			break;
		default:
			bad_option(ch, argv);
		}
	}
	no_operands(argc, argv);
}

/* --web-root, else share/web beside the program in a source tree, else the
 * installed files. */
static void
find_web_root(struct notify *n)
{
	const char *rel[] = { "../share/web", "../../share/labpulse/web", NULL };
	char self[PATH_MAX], *slash;
	struct stat st;
	ssize_t len;
	int i;

	if (n->cfg.web_root) {
		snprintf(n->web_root, sizeof n->web_root, "%s", n->cfg.web_root);
		if (stat(n->web_root, &st) < 0 || !S_ISDIR(st.st_mode))
			die(78, "--web-root %s: not a folder", n->web_root);
		return;
	}
	len = readlink("/proc/self/exe", self, sizeof self - 1);
	if (len > 0) {
		self[len] = '\0';
		if ((slash = strrchr(self, '/')) != NULL)
			*slash = '\0';
		for (i = 0; rel[i]; i++) {
			if (snprintf(n->web_root, sizeof n->web_root, "%s/%s",
			    self, rel[i]) >= (int)sizeof n->web_root)
				continue;
			if (stat(n->web_root, &st) == 0 && S_ISDIR(st.st_mode))
				return;
		}
	}
	snprintf(n->web_root, sizeof n->web_root, "%s", LABPULSE_DATADIR "/web");
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	char peer[64] = "unix", addr[64];

	(void)l;
	peers_addr_text(sa, addr);
	if (sa && sa->sa_family != AF_UNIX && salen > 0) {
		char host[48];

		if (evutil_inet_ntop(sa->sa_family, sa->sa_family == AF_INET ?
		    (void *)&((struct sockaddr_in *)sa)->sin_addr :
		    (void *)&((struct sockaddr_in6 *)sa)->sin6_addr, host,
		    sizeof host))
			snprintf(peer, sizeof peer, "%s:%d", host,
			    ntohs(((struct sockaddr_in *)sa)->sin_port));
	}
	client_accept(arg, fd, peer, addr);
}

static void
on_listen_error(struct evconnlistener *l, void *arg)
{
	(void)l;
	(void)arg;
	/* EMFILE and the like: the connection waits in the backlog */
	log_warn("accept: %s", strerror(errno));
}

static jv
fill_stats(void *arg)
{
	struct notify *n = arg;
	jv o = stats_header("notify", n->started_us), cl, rs;

	cl = jv_object();
	cl = jv_object_set(cl, jv_string("cl_active"), jv_number(n->nws + n->nsse));
	cl = jv_object_set(cl, jv_string("ws"), jv_number(n->nws));
	cl = jv_object_set(cl, jv_string("sse"), jv_number(n->nsse));
	cl = jv_object_set(cl, jv_string("connections"), jv_number(n->nclients));
	cl = jv_object_set(cl, jv_string("max_clients"),
	    jv_number(n->cfg.max_clients));
	cl = jv_object_set(cl, jv_string("by_class"), client_stats(n));
	cl = jv_object_set(cl, jv_string("addresses"),
	    jv_number(peers_addresses(n->peers)));
	cl = jv_object_set(cl, jv_string("max_conns_per_addr"),
	    jv_number(n->cfg.max_conns_per_addr));
	o = jv_object_set(o, jv_string("clients"), cl);
	o = jv_object_set(o, jv_string("accepted"), jv_number(n->accepted));
	o = jv_object_set(o, jv_string("refused_cap"), jv_number(n->refused_cap));
	o = jv_object_set(o, jv_string("refused_per_addr"),
	    jv_number(n->refused_addr));
	o = jv_object_set(o, jv_string("request_timeouts"),
	    jv_number(n->request_timeouts));
	o = jv_object_set(o, jv_string("bad_requests"), jv_number(n->malformed));
	o = jv_object_set(o, jv_string("ws_queue_closed"), jv_number(n->ws_over));
	o = jv_object_set(o, jv_string("oom_closed"), jv_number(n->oom_closed));
	o = jv_object_set(o, jv_string("oom_dropped"), jv_number(n->oom_dropped));
	o = jv_object_set(o, jv_string("messages_in"), jv_number(n->messages_in));
	o = jv_object_set(o, jv_string("messages_sent"), jv_number(n->messages_sent));
	o = jv_object_set(o, jv_string("snapshots"), jv_number(n->snapshots));
	o = jv_object_set(o, jv_string("replays"), jv_number(n->replays));
	o = jv_object_set(o, jv_string("replayed"), jv_number(n->replayed));
	rs = jv_object();
	rs = jv_object_set(rs, jv_string("gap"), jv_number(n->resync_gap));
	rs = jv_object_set(rs, jv_string("slow"), jv_number(n->resync_slow));
	o = jv_object_set(o, jv_string("resyncs"), rs);
	o = jv_object_set(o, jv_string("dropped_slow"), jv_number(n->dropped_slow));
	o = jv_object_set(o, jv_string("dead_closed"), jv_number(n->dead_closed));
	o = jv_object_set(o, jv_string("protocol_errors"),
	    jv_number(n->proto_errors));
	rs = jv_object();
	rs = jv_object_set(rs, jv_string("400"), jv_number(n->bad_requests));
	rs = jv_object_set(rs, jv_string("401"), jv_number(n->auth_401));
	rs = jv_object_set(rs, jv_string("403"), jv_number(n->auth_403));
	o = jv_object_set(o, jv_string("refused"), rs);
	o = jv_object_set(o, jv_string("revoked_closed"),
	    jv_number(n->revoked_closed));
	o = jv_object_set(o, jv_string("closed_unavailable"),
	    jv_number(n->closed_unavailable));
	o = jv_object_set(o, jv_string("recheck_errors"),
	    jv_number(n->recheck_errors));
	o = jv_object_set(o, jv_string("delivery_us"), stats_hist(n->delivery_us));
	o = jv_object_set(o, jv_string("max_queue"), jv_number(n->cfg.max_queue));
	o = jv_object_set(o, jv_string("feed"), feed_stats(n));
	o = jv_object_set(o, jv_string("postgres"), pgpool_stats(n->pool));
	o = jv_object_set(o, jv_string("token_cache"), auth_stats(n));
	if (n->listener)
		o = jv_object_set(o, jv_string("revocations"),
		    listen_stats(n->listener));
	o = jv_object_set(o, jv_string("web_files"),
	    jv_number(web_count(n->web)));
	{
		jv pools = jv_object_set(jv_object(), jv_string("postgres"),
		    pgpool_pool(n->pool));

		if (feed_is_stream(n))
			pools = jv_object_set(pools, jv_string("redis"),
			    feed_pool(n));
		o = jv_object_set(o, jv_string("pools"), pools);
	}
	o = jv_object_set(o, jv_string("queue"), stats_queue(
	    (double)client_queued_total(n), -1, "bytes queued for dashboards"));
	/* messages for live clients: meant, sent, skipped (a slow client's) */
	o = jv_object_set(o, jv_string("delivery"), stats_delivery(
	    n->messages_sent + n->skipped, n->messages_sent, n->skipped));
	return o;
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	client_tick(arg);
}

static void
on_stop_check(evutil_socket_t fd, short what, void *arg)
{
	struct notify *n = arg;

	(void)fd;
	(void)what;
	if (n->nclients == 0)
		event_base_loopbreak(n->base);
}

static struct event *stop_check;

static void
on_term(evutil_socket_t sig, short what, void *arg)
{
	struct notify *n = arg;
	struct timeval grace = { 2, 0 }, check = { 0, 50000 };
	int i;

	(void)what;
	if (n->stopping)
		return;
	n->stopping = 1;
	log_info("stopping signal=%s clients=%ld",
	    sig == SIGTERM ? "TERM" : "INT", n->nclients);
	sd_notify_state("STOPPING=1");
	for (i = 0; i < n->nlisteners; i++)
		evconnlistener_disable(n->listeners[i]);
	client_close_all(n);
	stop_check = event_new(n->base, -1, EV_PERSIST, on_stop_check, n);
	evtimer_add(stop_check, &check);
	event_base_loopexit(n->base, &grace);
}

/* The dashboard's files, read anew: NULL kept as the old ones. */
static int
load_web(struct notify *n)
{
	char err[512];
	struct web *w = web_load(n->web_root, err, sizeof err);

	if (w == NULL) {
		log_warn("dashboard files not read; keeping what was %s", err);
		return -1;
	}
	web_free(n->web);
	n->web = w;
	return 0;
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct notify *n = arg;

	(void)sig;
	(void)what;
	log_info("reload: tokens and dashboard files");
	load_web(n);
	client_recheck_all(n);
}

static void
raise_nofile(long want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= (rlim_t)want)
		return;
	rl.rlim_cur = rl.rlim_max < (rlim_t)want ? rl.rlim_max : (rlim_t)want;
	setrlimit(RLIMIT_NOFILE, &rl);
}

int
main(int argc, char **argv)
{
	struct notify_cfg *c = &nt.cfg;
	char err[512], ready[1024], state[1200];
	int fds[NOTIFY_MAX_LISTEN], nfds, i;
	struct event *ev_term, *ev_int, *ev_hup, *tick;
	struct stats_server *stats = NULL;
	struct timeval hb;

	log_init("labpulse-notify");
	parse_args(argc, argv, c);
	if (addr_parse(c->from, &nt.from, err, sizeof err) < 0) {
		log_error("--from: %s", err);
		usage(64);
	}
	if (nt.from.kind == ADDR_STREAM && nt.from.group[0]) {
		log_error("--from: every notify reads all of the stream: "
		    "stream:%s, without @GROUP", nt.from.stream);
		usage(64);
	}
	find_web_root(&nt);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile(c->max_clients + 64);
	TAILQ_INIT(&nt.clients);
	nt.started_us = stats_now_us();
	nt.delivery_us = hist_new();
	nt.base = event_base_new();
	if (nt.base == NULL || nt.delivery_us == NULL)
		die(71, "cannot create the event loop");
	nt.pool = pgpool_new(nt.base, c->db, (int)c->pool_size);
	nt.peers = peers_new(c->max_conns_per_addr);
	nt.auth = auth_new(&nt, c->token_ttl_ms);
	if (nt.pool == NULL || nt.peers == NULL || nt.auth == NULL)
		die(71, "out of memory");
	if (load_web(&nt) < 0 && c->web_root)
		die(78, "--web-root %s: cannot read it", nt.web_root);

	nfds = prog_listen(c->listen, c->nlisten, "127.0.0.1:8080", fds, NOTIFY_MAX_LISTEN);
	if (feed_open(&nt, err, sizeof err) < 0)
		die(nt.from.kind == ADDR_STREAM ? 78 : 66, "--from %s: %s",
		    c->from, err);
	for (i = 0; i < nfds; i++) {
		nt.listeners[i] = evconnlistener_new(nt.base, on_accept, &nt,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fds[i]);
		if (nt.listeners[i] == NULL)
			die(71, "cannot listen on descriptor %d", fds[i]);
		evconnlistener_set_error_cb(nt.listeners[i], on_listen_error);
		nt.nlisteners++;
	}
	/* a PostgreSQL that is away now is tried again every second */
	if ((nt.listener = listen_start(&nt)) == NULL)
		die(71, "out of memory");
	stats = prog_stats(nt.base, "notify", c->stats_path, fill_stats, &nt);
	ev_term = evsignal_new(nt.base, SIGTERM, on_term, &nt);
	ev_int = evsignal_new(nt.base, SIGINT, on_term, &nt);
	ev_hup = evsignal_new(nt.base, SIGHUP, on_hup, &nt);
	tick = event_new(nt.base, -1, EV_PERSIST, on_tick, &nt);
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);
	evsignal_add(ev_hup, NULL);
	hb.tv_sec = c->heartbeat_ms / 1000;
	hb.tv_usec = (c->heartbeat_ms % 1000) * 1000;
	evtimer_add(tick, &hb);

	prog_describe(fds, nfds, ready, sizeof ready);
	log_info("ready listen=%s from=%s web_root=%s", ready, c->from,
	    nt.web_root);
	snprintf(state, sizeof state, "READY=1\nSTATUS=listening on %s", ready);
	sd_notify_state(state);

	event_base_dispatch(nt.base);

	log_info("stopped messages_in=%lu messages_sent=%lu clients=%ld",
	    nt.messages_in, nt.messages_sent, nt.nclients);
	client_drop_all(&nt);	/* past the grace: what is left goes now */
	for (i = 0; i < nt.nlisteners; i++)
		evconnlistener_free(nt.listeners[i]);
	feed_close(&nt);
	listen_free(nt.listener);
	auth_close(nt.auth);
	pgpool_free(nt.pool);
	auth_free(nt.auth);
	web_free(nt.web);
	peers_free(nt.peers);
	stats_close(stats);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	event_free(tick);
	if (stop_check)
		event_free(stop_check);
	hist_free(nt.delivery_us);
	event_base_free(nt.base);
	return 0;
}
