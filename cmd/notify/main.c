/* notify: live instructor dashboards over WebSocket and Server-Sent Events,
 * fed from the routed stream, filtered by the classes each instructor may
 * watch, with replay after a reconnect and bounded send queues. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "hist.h"
#include "hookfile.h"
#include "log.h"
#include "notify.h"
#include "peers.h"
#include "prog.h"
#include "stats.h"

static opt_parser opt_on_slow;

#define OPT_CFG struct notify_cfg
static const struct opt options[] = {
	O_DURATION("claim-idle", claim_idle_ms, "100ms", "24h", "30s",
	    "take over hook messages another consumer left pending this long"),
	O_NAME_TEXT("consumer", "NAME", consumer, "128", "HOST:PID",
	    "consumer name in the hooks group"),
	O_TEXT("db", "CONNINFO", db, "$DATABASE_URL, else PG* variables",
	    "PostgreSQL"),
	O_LONG("db-pool", pool_size, "1", "64", "2",
	    "PostgreSQL connections shared by all clients"),
	O_TEXT("db-read", "CONNINFO", db_read, "--db",
	    "PostgreSQL for the dashboards' snapshots: a standby"),
	/* a standby a few ms behind is common under load; a second rides out
	 * a burst without sending every snapshot to --db */
	O_DURATION("db-read-max-lag", read_max_lag_ms, "0", "1m", "1s",
	    "how long a snapshot waits for --db-read to replay what --db had "
	    "when it was asked; then --db answers it"),
	O_LONG("db-read-pool", read_pool_size, "1", "64", "2",
	    "connections to --db-read"),
	O_STR("from", "ADDR", from, "stream:routed",
	    "stream:NAME (read whole), -, file:PATH or unix:PATH"),
	O_DURATION("heartbeat", heartbeat_ms, "100ms", "1h", "15s",
	    "SSE comments and WebSocket pings this often; no answer for two "
	    "of them closes a WebSocket"),
	O_DURATION("hook-backoff", hook_backoff_ms, "1ms", "1h", "1s",
	    "wait after a destination's first failure, doubled after each "
	    "further one up to 5m, with jitter"),
	O_DURATION("hook-max-age", hook_max_age_ms, "1s", "168h", "1h",
	    "a hook message older than this is a dead letter"),
	O_LONG("hook-max-attempts", hook_max_attempts, "1", "100", "8",
	    "tries of one hook message before it is a dead letter"),
	O_LONG("hook-queue", hook_queue, "10", "1000000", "20000",
	    "hook messages held at once; past it no more are read"),
	O_DURATION("hook-timeout", hook_timeout_ms, "100ms", "10m", "10s",
	    "one request to a destination, connect to answer"),
	O_TEXT("hooks", "FILE", hooks_file, "$LABPULSE_HOOKS, else none",
	    "deliver hook messages to the destinations FILE names"),
	O_TEXT("hooks-dead", "ADDR", hooks_dead,
	    "stream:hooks-dead, - with NDJSON hooks",
	    "where dead letters go: stream:NAME or -"),
	O_STR("hooks-from", "ADDR", hooks_from, "stream:hooks@hooks",
	    "stream:NAME@GROUP, -, file:PATH or unix:PATH"),
	O_LIST("listen", "ADDR", listen, nlisten, "8",
	    "127.0.0.1:8080, or systemd's sockets",
	    "HOST:PORT or unix:PATH, repeatable"),
	O_LONG("max-clients", max_clients, "1", "100000", "1000",
	    "connections at once; more are answered 503"),
	/* a class's instructors may share one NAT address, and a lecture
	 * hall's screens too: far above one person's tabs, far below what
	 * would let one address hold --max-clients */
	O_LONG("max-conns-per-addr", max_conns_per_addr, "0", "100000", "64",
	    "connections at once from one address, 0 for no cap; more are "
	    "answered 503"),
	O_SIZE("max-queue", max_queue, "1KiB", "1GiB", "1MiB",
	    "bytes queued for one client before it is resynced or closed; a "
	    "WebSocket client whose pings take it past this is closed 1008"),
	O_FN("on-slow", "resync|close", slow_close, opt_on_slow, "resync",
	    "what a client past --max-queue gets: a resync and a fresh "
	    "snapshot once it drained, or close 1013"),
	O_TEXT("redis", "URL", redis_url,
	    "$LABPULSE_REDIS, else redis://127.0.0.1:6379/0",
	    "redis://HOST[:PORT][/DB], "
	    "sentinel://HOST:PORT[,HOST:PORT...]/MASTER[/DB] or unix:PATH"),
	O_DURATION("request-timeout", request_timeout_ms, "100ms", "10m", "10s",
	    "a request must be whole this long after the connection opened, "
	    "or the answer before it on a kept-alive one, else 408"),
	O_TEXT("stats", "ADDR", stats_path, "$LABPULSE_RUNDIR/notify.sock",
	    "stats socket: a path, tcp:HOST:PORT, or none"),
	O_STR("telegram-api", "URL", telegram_api, "https://api.telegram.org",
	    "the Telegram Bot API's base URL"),
	/* revocations arrive by LISTEN at once, and a lost LISTEN re-checks
	 * everyone: the TTL only bounds what no notification says (a class
	 * taken away by hand in SQL) */
	O_DURATION("token-ttl", token_ttl_ms, "0", "24h", "60s",
	    "keep who holds a token this long, 0 to ask PostgreSQL every "
	    "time; revocations drop it at once"),
	O_TEXT("web-root", "DIR", web_root, "the installed ones",
	    "the dashboard's files"),
	O_END
};

static const struct prog_opts prog_opts = {
	"notify",
	"Serve live class dashboards: WebSocket at /ws, Server-Sent Events at "
	"/sse, the dashboard page at /, and /healthz. Clients name their "
	"classes with ?class= and authenticate with an instructor token. With "
	"--hooks, deliver hook messages to webhooks and Telegram chats.",
	options, NULL, NULL, NULL
};

static int
opt_on_slow(const struct opt *o, const char *s, void *cfg, char *err,
    size_t errlen)
{
	int *close_it = (int *)(void *)((char *)cfg + o->off);

	if (strcmp(s, "resync") != 0 && strcmp(s, "close") != 0) {
		snprintf(err, errlen, "resync or close, not '%s'", s);
		return -1;
	}
	*close_it = strcmp(s, "close") == 0;
	return 0;
}

/* What needs more than one option, or more than the option's own text. */
static void
check_options(struct notify *n)
{
	char err[512], *perr = NULL;
	const char *api;

	if (addr_parse(n->cfg.from, &n->from, err, sizeof err) < 0)
		usage_error("--from: %s", err);
	if (n->from.kind == ADDR_STREAM && n->from.group[0])
		usage_error("--from: every notify reads all of the stream: "
		    "stream:%s, without @GROUP", n->from.stream);
	if (addr_parse_group_input(n->cfg.hooks_from, &n->hooks_from, err,
	    sizeof err) < 0)
		usage_error("--hooks-from: %s", err);
	if (n->from.kind == ADDR_STDIO && n->hooks_from.kind == ADDR_STDIO)
		usage_error("--hooks-from -: standard input is --from's");
	n->hooks_dead_spec = n->cfg.hooks_dead ? n->cfg.hooks_dead :
	    n->hooks_from.kind == ADDR_STREAM ? "stream:hooks-dead" : "-";
	if (addr_parse(n->hooks_dead_spec, &n->hooks_dead, err,
	    sizeof err) < 0)
		usage_error("--hooks-dead: %s", err);
	/* the token goes after it in the path: no room for a query, and a
	 * length that leaves room for the rest of the URL */
	api = n->cfg.telegram_api;
	if ((strncmp(api, "https://", 8) != 0 &&
	    strncmp(api, "http://", 7) != 0) || strlen(api) > 512 ||
	    api[strcspn(api, "?# \t\r\n")] != '\0')
		usage_error("--telegram-api: an http:// or https:// URL of at "
		    "most 512 bytes, with no query, not '%.80s'", api);
	if (n->cfg.db_read) {
		PQconninfoOption *ci = PQconninfoParse(n->cfg.db_read, &perr);

		if (ci == NULL) {
			if (perr)
				perr[strcspn(perr, "\n")] = '\0';
			usage_error("--db-read: %s", perr ? perr : "out of memory");
		}
		PQconninfoFree(ci);
	} else if (opt_given("db-read-max-lag") || opt_given("db-read-pool"))
		usage_error("--db-read-%s: only with --db-read",
		    opt_given("db-read-pool") ? "pool" : "max-lag");
	if ((n->hooks_dead.kind != ADDR_STREAM &&
	    n->hooks_dead.kind != ADDR_STDIO) || n->hooks_dead.group[0])
		usage_error("--hooks-dead: stream:NAME or -, not %s",
		    n->hooks_dead_spec);
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
			die(EX_CONFIG, "--web-root %s: not a folder",
			    n->web_root);
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

/* The counters of the stats object: each an unsigned long of struct
 * notify, by the name the object gives it. */
#define COUNTER(name, field)	STATS_COUNTER(name, struct notify, field)
static const struct stats_counter counters[] = {
	COUNTER("accepted", accepted),
	COUNTER("refused_cap", refused_cap),
	COUNTER("refused_per_addr", refused_addr),
	COUNTER("request_timeouts", request_timeouts),
	COUNTER("bad_requests", malformed),
	COUNTER("ws_queue_closed", ws_over),
	COUNTER("oom_closed", oom_closed),
	COUNTER("oom_dropped", oom_dropped),
	COUNTER("messages_in", messages_in),
	COUNTER("messages_sent", messages_sent),
	COUNTER("snapshots", snapshots),
	COUNTER("replays", replays),
	COUNTER("replayed", replayed),
	COUNTER("dropped_slow", dropped_slow),
	COUNTER("dead_closed", dead_closed),
	COUNTER("protocol_errors", proto_errors),
	COUNTER("revoked_closed", revoked_closed),
	COUNTER("closed_unavailable", closed_unavailable),
	COUNTER("recheck_errors", recheck_errors),
	{ NULL, 0 }
}, reads[] = {
	COUNTER("snapshots", read_snapshots),
	COUNTER("waits", read_waits),
	COUNTER("to_db_lagging", read_lagging),
	COUNTER("to_db_unavailable", read_unavailable),
	{ NULL, 0 }
}, resyncs[] = {
	COUNTER("gap", resync_gap),
	COUNTER("slow", resync_slow),
	{ NULL, 0 }
}, refused[] = {
	COUNTER("400", bad_requests),
	COUNTER("401", auth_401),
	COUNTER("403", auth_403),
	{ NULL, 0 }
};

static jv
fill_stats(void *arg)
{
	struct notify *n = arg;
	jv o = stats_header("notify", n->started_us), cl, pools;

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
	o = stats_counters(o, n, counters);
	o = jv_object_set(o, jv_string("resyncs"),
	    stats_counters(jv_object(), n, resyncs));
	o = jv_object_set(o, jv_string("refused"),
	    stats_counters(jv_object(), n, refused));
	o = jv_object_set(o, jv_string("delivery_us"), stats_hist(n->delivery_us));
	o = jv_object_set(o, jv_string("max_queue"), jv_number(n->cfg.max_queue));
	o = jv_object_set(o, jv_string("feed"), feed_stats(n));
	if (n->hooks)
		o = jv_object_set(o, jv_string("hooks"), hooks_stats(n));
	o = jv_object_set(o, jv_string("postgres"), pgpool_stats(n->pool));
	if (n->read_pool) {
		jv r = stats_counters(jv_object(), n, reads);

		r = jv_object_set(r, jv_string("waiting"),
		    jv_number(n->read_waiting));
		r = jv_object_set(r, jv_string("max_lag_ms"),
		    jv_number(n->cfg.read_max_lag_ms));
		r = jv_object_set(r, jv_string("pool"),
		    pgpool_stats(n->read_pool));
		o = jv_object_set(o, jv_string("db_read"), r);
	}
	o = jv_object_set(o, jv_string("token_cache"), auth_stats(n));
	if (n->listener)
		o = jv_object_set(o, jv_string("revocations"),
		    listen_stats(n->listener));
	o = jv_object_set(o, jv_string("web_files"),
	    jv_number(web_count(n->web)));
	pools = jv_object_set(jv_object(), jv_string("postgres"),
	    pgpool_pool(n->pool));
	if (n->read_pool)
		pools = jv_object_set(pools, jv_string("postgres-read"),
		    pgpool_pool(n->read_pool));
	if (feed_is_stream(n))
		pools = jv_object_set(pools, jv_string("redis"), feed_pool(n));
	o = jv_object_set(o, jv_string("pools"), pools);
	o = jv_object_set(o, jv_string("queue"), stats_queue(
	    (double)client_queued_total(n), -1, "bytes queued for dashboards"));
	/* messages for live clients: meant, sent, skipped (a slow client's) */
	return jv_object_set(o, jv_string("delivery"), stats_delivery(
	    n->messages_sent + n->skipped, n->messages_sent, n->skipped));
}

/* Every --heartbeat, the clients' heartbeats; once stopping, every 50 ms,
 * whether the last client is gone. */
static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct notify *n = arg;

	(void)fd;
	(void)what;
	if (!n->d.stop)
		client_tick(n);
	else if (n->nclients == 0 && hooks_in_flight(n) == 0)
		event_base_loopbreak(n->base);
}

/* Stop: no new connections, every client told; the loop ends once they
 * are all gone, or after a grace. */
static void
on_stop(void *arg, const char *sig)
{
	struct notify *n = arg;
	struct timeval grace = { 2, 0 }, check = { 0, 50000 };
	int i;

	log_info("stopping signal=%s clients=%ld", sig, n->nclients);
	daemon_stopping(&n->d);
	for (i = 0; i < n->nlisteners; i++)
		evconnlistener_disable(n->listeners[i]);
	client_close_all(n);
	hooks_stop(n);
	evtimer_add(n->tick, &check);
	event_base_loopexit(n->base, &grace);
}

static void
on_reload(void *arg)
{
	struct notify *n = arg;

	log_info("reload: tokens, dashboard files and hooks");
	load_web(n);
	client_recheck_all(n);
	hooks_reload(n);
}

/* PostgreSQL's state from the pool (url NULL), Redis's from the feed. */
static void
link_state(struct notify *n, int up, const char *url, const char *reason)
{
	if (url)
		daemon_redis_state(&n->d, url, up, reason);
	else
		daemon_pg_state(&n->d, up, reason);
}

/* --db-read's connections, logged apart from --db's: a standby away
 * sends snapshots to --db, and is no outage. */
static void
read_state(struct notify *n, int up, const char *url, const char *reason)
{
	(void)url;
	if (up && n->read_up != 1)
		log_info("connected to PostgreSQL for snapshots (--db-read)");
	else if (!up && (n->read_up != 0 ||
	    strcmp(n->read_why, reason ? reason : "") != 0))
		log_warn("lost PostgreSQL for snapshots (--db-read); asking "
		    "--db reason=\"%s\"", reason ? reason : "");
	n->read_up = up;
	snprintf(n->read_why, sizeof n->read_why, "%s",
	    up || reason == NULL ? "" : reason);
}

/* client.c's entry points, for the parts below it to call back. */
static const struct feed_ops feed_ops = {
	client_dispatch, client_resync_all, link_state
};
static const struct revoke_ops revoke_ops = {
	client_revoke, client_recheck_all
};

static struct notify nt = { .d = { .on_stop = on_stop,
    .on_reload = on_reload } };

/* The listening sockets, each accepting into client.c. */
static void
accept_on(struct notify *n, const int *fds, int nfds)
{
	int i;

	for (i = 0; i < nfds; i++) {
		n->listeners[i] = evconnlistener_new(n->base, on_accept, n,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fds[i]);
		if (n->listeners[i] == NULL)
			die(EX_OSERR, "cannot listen on descriptor %d", fds[i]);
		evconnlistener_set_error_cb(n->listeners[i], on_listen_error);
		n->nlisteners++;
	}
}

/* What notify needs before it is ready: the loop and its signals, the
 * dashboard's files, the pool, the sockets, the feed, the revocations,
 * the heartbeat. */
static void
acquire(struct notify *n, int *fds, int *nfds)
{
	struct notify_cfg *c = &n->cfg;
	struct timeval hb = { c->heartbeat_ms / 1000,
	    (c->heartbeat_ms % 1000) * 1000 };
	char err[512];
	int rc;

	daemon_start(&n->d, "notify", c->stats_path, fill_stats, n);
	n->base = n->d.base;
	find_web_root(n);
	TAILQ_INIT(&n->clients);
	n->started_us = stats_now_us();
	n->pool = pgpool_new(n->base, c->db, (int)c->pool_size,
	    "labpulse-notify", link_state, n);
	TAILQ_INIT(&n->snapwait);
	n->read_up = -1;
	if (c->db_read && (n->read_pool = pgpool_new(n->base, c->db_read,
	    (int)c->read_pool_size, "labpulse-notify-read", read_state,
	    n)) == NULL)
		die_nomem();
	n->peers = peers_new(c->max_conns_per_addr);
	n->auth = auth_new(n, c->token_ttl_ms);
	if ((n->delivery_us = hist_new()) == NULL || n->pool == NULL ||
	    n->peers == NULL || n->auth == NULL)
		die_nomem();
	if (load_web(n) < 0 && c->web_root)
		die(EX_CONFIG, "--web-root %s: cannot read it", n->web_root);
	*nfds = prog_listen(c->listen, c->nlisten, "127.0.0.1:8080", fds,
	    NOTIFY_MAX_LISTEN);
	if ((rc = feed_open(n, &feed_ops, err, sizeof err)) < 0)
		die_kind(rc, "--from %s: %s", c->from, err);
	if ((rc = hooks_open(n, err, sizeof err)) < 0)
		die_kind(rc, "%s", err);
	/* a connection to each hook destination, beside the clients */
	daemon_nofile(c->max_clients + 64 + (n->hooks ? HOOKFILE_MAX_DEST : 0),
	    "--max-clients");
	accept_on(n, fds, *nfds);
	if ((n->listener = listen_start(n, &revoke_ops)) == NULL ||
	    (n->tick = event_new(n->base, -1, EV_PERSIST, on_tick, n)) == NULL ||
	    evtimer_add(n->tick, &hb) < 0)
		die_nomem();
}

/* Past the grace what is left goes; the auth cache closes before the pool
 * that answers it, and is freed after. */
static void
release(struct notify *n)
{
	int i;

	client_drop_all(n);
	for (i = 0; i < n->nlisteners; i++)
		evconnlistener_free(n->listeners[i]);
	feed_close(n);
	hooks_close(n);
	listen_free(n->listener);
	auth_close(n->auth);
	/* before --db's: what it gives up on may be asked of --db */
	pgpool_free(n->read_pool);
	pgpool_free(n->pool);
	auth_free(n->auth);
	web_free(n->web);
	peers_free(n->peers);
	event_free(n->tick);
	hist_free(n->delivery_us);
	daemon_end(&n->d);
}

int
main(int argc, char **argv)
{
	int fds[NOTIFY_MAX_LISTEN], nfds;

	log_init("labpulse-notify");
	opt_parse(&prog_opts, argc, argv, &nt.cfg);
	check_options(&nt);
	acquire(&nt, fds, &nfds);
	daemon_ready_listening(&nt.d, fds, nfds, "from=%s web_root=%s",
	    nt.cfg.from, nt.web_root);
	event_base_dispatch(nt.base);
	log_info("stopped messages_in=%lu messages_sent=%lu clients=%ld",
	    nt.messages_in, nt.messages_sent, nt.nclients);
	release(&nt);
	return EX_OK;
}
