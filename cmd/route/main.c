/* route: turn events into addressed messages (class rooms, alerts, chat
 * hooks) with a jq program, and acknowledge each event only once its
 * messages are written. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "fdout.h"
#include "hist.h"
#include "log.h"
#include "prog.h"
#include "parse.h"
#include "route.h"
#include "sd.h"
#include "stats.h"

const char usage_text[] =
"usage: labpulse route [--arg NAME VALUE] [--argjson NAME JSON]\n"
"           [--batch-size N] [--claim-idle DURATION] [--consumer NAME]\n"
"           [--dead ADDR] [--from ADDR] [--hooks ADDR] [--max-len N]\n"
"           [--redis URL] [--rules FILE] [--stats PATH] [--to ADDR]\n"
"           [--trim-interval DURATION]\n"
"       labpulse route --check FILE [--arg NAME VALUE] [--argjson NAME JSON]\n"
"       labpulse route --test [--rules FILE] [--arg NAME VALUE]\n"
"           [--argjson NAME JSON]\n"
"       labpulse route --help | --version\n";

const char help_text[] =
"Turn events into addressed messages with jq rules: class rooms, alerts,\n"
"chat hooks. An event is acknowledged only once its messages are written.\n"
"\n"
"  --arg NAME VALUE         $NAME is the string VALUE in the rules\n"
"  --argjson NAME JSON      $NAME is the JSON value JSON in the rules\n"
"  --batch-size N           take at most N events at a time (default: 500)\n"
"  --check FILE             compile the rules of FILE, say \"FILE: ok\", exit\n"
"  --claim-idle DURATION    claim entries another consumer left pending this\n"
"                           long (default: 30s)\n"
"  --consumer NAME          consumer name in the group (default: HOST:PID)\n"
"  --dead ADDR              where events the rules fail on go: stream:NAME,\n"
"                           -, file:PATH, unix:PATH or none\n"
"                           (default: stream:route-dead; none without Redis)\n"
"  --from ADDR              stream:NAME@GROUP, -, file:PATH or unix:PATH\n"
"                           (default: stream:events@route)\n"
"  --hooks ADDR             where messages of topic hook:... go\n"
"                           (default: stream:hooks, or --to when that is NDJSON)\n"
"  --max-len N              keep about the last N entries of each stream it\n"
"                           writes, 0 for all (default: 200000)\n"
"  --redis URL              redis://HOST[:PORT][/DB] or unix:PATH\n"
"                           (default: $LABPULSE_REDIS, else redis://127.0.0.1:6379/0)\n"
"  --rules FILE             the jq program (default: $LABPULSE_RULES, else\n"
"                           " LABPULSE_SYSCONFDIR "/labpulse/route.jq)\n"
"  --stats PATH             stats socket, or none\n"
"                           (default: $LABPULSE_RUNDIR/route.sock)\n"
"  --test                   route NDJSON events from standard input to standard\n"
"                           output, touching no Redis; exit 65 if a rule failed\n"
"  --to ADDR                stream:NAME, -, file:PATH or unix:PATH\n"
"                           (default: stream:routed)\n"
"  --trim-interval DURATION trim the input stream and the hooks stream this\n"
"                           often to the oldest entry a group still needs,\n"
"                           0 never (default: 5s)\n"
"  -h, --help               show this help\n"
"  -V, --version            show the version\n";

enum {
	OPT_ARG = 256, OPT_ARGJSON, OPT_BATCH_SIZE, OPT_CHECK, OPT_CLAIM_IDLE,
	OPT_CONSUMER, OPT_DEAD, OPT_FROM, OPT_HOOKS, OPT_MAX_LEN, OPT_REDIS,
	OPT_RULES,
	OPT_STATS, OPT_TEST, OPT_TO, OPT_TRIM_INTERVAL
};

static const struct option longopts[] = {
	{ "arg",	required_argument, NULL, OPT_ARG },
	{ "argjson",	required_argument, NULL, OPT_ARGJSON },
	{ "batch-size",	required_argument, NULL, OPT_BATCH_SIZE },
	{ "check",	required_argument, NULL, OPT_CHECK },
	{ "claim-idle",	required_argument, NULL, OPT_CLAIM_IDLE },
	{ "consumer",	required_argument, NULL, OPT_CONSUMER },
	{ "dead",	required_argument, NULL, OPT_DEAD },
	{ "from",	required_argument, NULL, OPT_FROM },
	{ "help",	no_argument,	   NULL, 'h' },
	{ "hooks",	required_argument, NULL, OPT_HOOKS },
	{ "max-len",	required_argument, NULL, OPT_MAX_LEN },
	{ "redis",	required_argument, NULL, OPT_REDIS },
	{ "rules",	required_argument, NULL, OPT_RULES },
	{ "stats",	required_argument, NULL, OPT_STATS },
	{ "test",	no_argument,	   NULL, OPT_TEST },
	{ "to",		required_argument, NULL, OPT_TO },
	{ "trim-interval", required_argument, NULL, OPT_TRIM_INTERVAL },
	{ "version",	no_argument,	   NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

/* Distinct topic prefixes counted apart in the stats; the rest together. */
#define TOPIC_PREFIXES_MAX 64

static struct route rt;

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		rt.reload = 1;
	else
		rt.stop = 1;
}

void
route_serve(struct route *r)
{
	prog_serve(r->base);
}

void
route_idle(struct route *r, long ms)
{
	prog_idle(r->base, ms, &r->stop);
}

/* Each line of a multi-line error, logged on its own. */
static void
log_lines(const char *prefix, const char *text)
{
	const char *nl;

	while (*text) {
		nl = strchr(text, '\n');
		log_error("%s%.*s", prefix, nl ? (int)(nl - text) :
		    (int)strlen(text), text);
		if (nl == NULL)
			break;
		text = nl + 1;
	}
}

/* A value for a log line: as is when it is one plain word, else quoted
 * with its quotes and backslashes escaped and control bytes as spaces. */
static const char *
logval(char *buf, size_t len, const char *s, int quote)
{
	size_t o = 0, max = len > 4 ? len - 4 : 0;
	const char *p;

	for (p = s; *p && !quote; p++)
		if (*p == ' ' || *p == '"' || *p == '\\' || (unsigned char)*p < 32)
			quote = 1;
	if (!quote || len < 8) {
		snprintf(buf, len, "%s", s);
		return buf;
	}
	buf[o++] = '"';
	for (p = s; *p && o < max; p++) {
		if (*p == '"' || *p == '\\')
			buf[o++] = '\\';
		buf[o++] = (unsigned char)*p < 32 ? ' ' : *p;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

/* Mark e as set aside for why (a string, unless e says why already), and
 * log it. */
static void
set_aside(struct entry *e, const char *what, jv why)
{
	char where[96], id[160], err[600];

	if (e->error == NULL) {
		e->error = strdup(jv_string_value(why));
		if (e->error == NULL)
			die(71, "out of memory");
	}
	jv_free(why);
	if (e->id[0])
		snprintf(where, sizeof where, "stream_id=%s", e->id);
	else
		snprintf(where, sizeof where, "line=%ld", e->line);
	log_warn("%s %s eventId=%s error=%s", what, where,
	    logval(id, sizeof id, e->event_id, 0),
	    logval(err, sizeof err, e->error, 1));
}

/* Parse an entry and run the rules on it: its messages, or why not. */
static void
route_entry(struct route *r, struct entry *e)
{
	jv ev, v, out;

	if (e->error) {		/* set aside already when read */
		set_aside(e, "entry set aside", jv_null());
		return;
	}
	ev = jv_parse_sized(e->raw, (int)e->len);
	if (!jv_is_valid(ev)) {
		v = jv_invalid_get_msg(ev);
		set_aside(e, "entry set aside", jv_get_kind(v) ==
		    JV_KIND_STRING ? jv_string_fmt("not JSON: %s",
		    jv_string_value(v)) : jv_string("not JSON"));
		jv_free(v);
		return;
	}
	if (jv_get_kind(ev) != JV_KIND_OBJECT) {
		jv_free(ev);
		set_aside(e, "entry set aside",
		    jv_string("not a JSON object"));
		return;
	}
	v = jv_object_get(jv_copy(ev), jv_string("eventId"));
	if (jv_get_kind(v) == JV_KIND_STRING)
		snprintf(e->event_id, sizeof e->event_id, "%s",
		    jv_string_value(v));
	else if (jv_get_kind(v) == JV_KIND_NUMBER)
		snprintf(e->event_id, sizeof e->event_id, "%.17g",
		    jv_number_value(v));
	jv_free(v);
	v = jv_object_get(jv_copy(ev), jv_string("receivedAt"));
	if (jv_get_kind(v) == JV_KIND_STRING) {
		e->received_us = rules_parse_time(jv_string_value(v));
		if (e->received_us < 0)
			e->received_us = 0;
	}
	jv_free(v);
	out = rules_run(r->jq, ev);
	if (!jv_is_valid(out)) {
		e->rule_failed = 1;
		set_aside(e, "rule error", jv_invalid_get_msg(out));
		return;
	}
	jv_free(e->msgs);
	e->msgs = out;
}

static void
count_topic(struct route *r, jv msg)
{
	jv topic = jv_object_get(msg, jv_string("topic")), key, n;
	const char *t = jv_string_value(topic), *colon = strchr(t, ':');

	key = jv_string_sized(t, colon ? (int)(colon - t) : (int)strlen(t));
	jv_free(topic);
	n = jv_object_get(jv_copy(r->by_topic), jv_copy(key));
	if (!jv_is_valid(n) &&
	    jv_object_length(jv_copy(r->by_topic)) >= TOPIC_PREFIXES_MAX) {
		jv_free(key);
		key = jv_string("(other)");
		jv_free(n);
		n = jv_object_get(jv_copy(r->by_topic), jv_copy(key));
	}
	r->by_topic = jv_object_set(r->by_topic, key, jv_number(
	    jv_is_valid(n) ? jv_number_value(n) + 1 : 1));
	jv_free(n);
}

/* The figures of a batch written. */
static void
account(struct route *r, struct batch *bt)
{
	int64_t now = stats_now_us();
	struct entry *e;
	size_t i;
	int j, n;

	r->batches++;
	for (i = 0; i < bt->n; i++) {
		e = &bt->e[i];
		r->events_in++;
		if (e->received_us > 0 && now >= e->received_us)
			hist_record(r->latency_us, (uint64_t)(now - e->received_us));
		if (e->error) {
			r->dead_n++;
			r->rule_errors += e->rule_failed;
			continue;
		}
		n = jv_array_length(jv_copy(e->msgs));
		if (n == 0)
			r->dropped++;
		r->messages_out += n;
		for (j = 0; j < n; j++)
			count_topic(r, jv_array_get(jv_copy(e->msgs), j));
	}
}

static void
reload_rules(struct route *r)
{
	char err[4096];
	jq_state *jq;

	r->reload = 0;
	jq = rules_load(r->rules_path, jv_copy(r->cfg.args), err, sizeof err);
	if (jq == NULL) {
		r->reload_errors++;
		log_lines("reload failed, keeping the old rules: ", err);
		return;
	}
	jq_teardown(&r->jq);
	r->jq = jq;
	r->reloads++;
	log_info("rules reloaded file=%s", r->rules_path);
}

static jv
fill_stats(void *arg)
{
	struct route *r = arg;
	jv o = stats_header("route", r->started_us), rd;
	long pending = source_pending(r);

	o = jv_object_set(o, jv_string("from"), jv_string(r->cfg.from));
	o = jv_object_set(o, jv_string("to"), jv_string(r->cfg.to));
	o = jv_object_set(o, jv_string("hooks"), jv_string(r->hooks.spec));
	o = jv_object_set(o, jv_string("rules"), jv_string(r->rules_path));
	o = jv_object_set(o, jv_string("events_in"), jv_number(r->events_in));
	o = jv_object_set(o, jv_string("messages_out"),
	    jv_number(r->messages_out));
	o = jv_object_set(o, jv_string("messages_by_topic"),
	    jv_copy(r->by_topic));
	o = jv_object_set(o, jv_string("dropped"), jv_number(r->dropped));
	o = jv_object_set(o, jv_string("rule_errors"),
	    jv_number(r->rule_errors));
	o = jv_object_set(o, jv_string("dead"), jv_number(r->dead_n));
	o = jv_object_set(o, jv_string("reloads"), jv_number(r->reloads));
	o = jv_object_set(o, jv_string("reload_errors"),
	    jv_number(r->reload_errors));
	o = jv_object_set(o, jv_string("batches"), jv_number(r->batches));
	o = jv_object_set(o, jv_string("claimed"), jv_number(r->claimed));
	/* entries removed from the input stream and from hooks, and the
	 * trims that ran */
	o = jv_object_set(o, jv_string("trimmed"), jv_number(r->trimmed));
	o = jv_object_set(o, jv_string("trimmed_hooks"),
	    jv_number(r->trimmed_hooks));
	o = jv_object_set(o, jv_string("trims"), jv_number(r->trims));
	o = jv_object_set(o, jv_string("latency_us"), stats_hist(r->latency_us));
	o = jv_object_set(o, jv_string("pending"), pending >= 0 ?
	    jv_number(pending) : jv_null());
	if (r->use_redis) {
		rd = jv_object();
		rd = jv_object_set(rd, jv_string("url"), jv_string(r->g.rt.url));
		rd = jv_object_set(rd, jv_string("connected"),
		    jv_bool(r->g.c != NULL));
		if (r->from.kind == ADDR_STREAM) {
			rd = jv_object_set(rd, jv_string("stream"),
			    jv_string(r->g.key));
			rd = jv_object_set(rd, jv_string("group"),
			    jv_string(r->from.group));
			rd = jv_object_set(rd, jv_string("consumer"),
			    jv_string(r->consumer));
		}
		rd = jv_object_set(rd, jv_string("connects"),
		    jv_number(r->g.connects));
		if (r->g.error[0])
			rd = jv_object_set(rd, jv_string("last_error"),
			    jv_string(r->g.error));
		o = jv_object_set(o, jv_string("redis"), rd);
	}
	{
		jv pools = jv_object();

		if (r->use_redis) {
			struct stats_pool p = { "redis", r->g.c != NULL, 1, 0,
			    r->g.c != NULL, 0, 0 };

			pools = jv_object_set(pools, jv_string("redis"),
			    stats_link_add(stats_pool(&p), &r->link));
		}
		o = jv_object_set(o, jv_string("pools"), pools);
	}
	o = jv_object_set(o, jv_string("queue"), stats_queue(pending >= 0 ?
	    pending : 0, -1, "entries pending in the group"));
	/* events: taken, routed (or dropped by a rule, on purpose), set aside */
	o = jv_object_set(o, jv_string("delivery"), stats_delivery(r->events_in,
	    r->events_in - r->dead_n, r->dead_n));
	return o;
}

static int
jq_name(const char *s)
{
	if (!isalpha((unsigned char)*s) && *s != '_')
		return 0;
	for (s++; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return 0;
	return 1;
}

/* --arg NAME VALUE, --argjson NAME JSON: NAME is optarg, the value the
 * next argument. */
static void
named_arg(struct route_cfg *c, int json, int argc, char **argv)
{
	const char *opt = json ? "--argjson" : "--arg", *name = optarg;
	jv v, m;

	if (optind >= argc) {
		log_error("option '%s' needs a NAME and a %s", opt,
		    json ? "JSON value" : "VALUE");
		usage(64);
	}
	if (!jq_name(name)) {
		log_error("%s: '%s' is not a jq variable name", opt, name);
		usage(64);
	}
	v = json ? jv_parse(argv[optind]) : jv_string(argv[optind]);
	if (!jv_is_valid(v)) {
		m = jv_invalid_get_msg(v);
		log_error("%s %s: invalid JSON: %s", opt, name,
		    jv_get_kind(m) == JV_KIND_STRING ? jv_string_value(m) : "?");
		jv_free(m);
		usage(64);
	}
	optind++;
	c->args = jv_object_set(c->args, jv_string(name), v);
}

static void
parse_args(int argc, char **argv, struct route_cfg *c)
{
	int ch, io = 0;

	c->from = "stream:events@route";
	c->to = "stream:routed";
	c->batch_size = 500;
	c->max_len = 200000;
	c->claim_idle_ms = 30000;
	c->trim_interval_ms = 5000;
	c->args = jv_object();
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":hV", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_ARG:
		case OPT_ARGJSON:
			named_arg(c, ch == OPT_ARGJSON, argc, argv);
			break;
		case OPT_MAX_LEN:
			opt_range("max-len", parse_long, optarg, 0, 1000000000L,
			    &c->max_len);
			break;
		case OPT_BATCH_SIZE:
			opt_range("batch-size", parse_long, optarg, 1, 100000,
			    &c->batch_size);
			break;
		case OPT_CHECK:
			c->check_path = optarg;
			break;
		case OPT_CLAIM_IDLE:
			opt_range("claim-idle", parse_duration_ms, optarg, 100,
			    86400000, &c->claim_idle_ms);
			break;
		case OPT_CONSUMER:
			if (*optarg == '\0' || strlen(optarg) > 128) {
				log_error("--consumer: must be 1 to 128 bytes");
				usage(64);
			}
			c->consumer = optarg;
			break;
		case OPT_DEAD:
			c->dead = optarg;
			io = 1;
			break;
		case OPT_FROM:
			c->from = optarg;
			io = 1;
			break;
		case 'h':
			usage(0);
		case OPT_HOOKS:
			c->hooks = optarg;
			io = 1;
			break;
		case OPT_REDIS:
			c->redis_url = optarg;
			break;
		case OPT_RULES:
			c->rules_path = optarg;
			break;
		case OPT_STATS:
			c->stats_path = optarg;
			io = 1;
			break;
		case OPT_TEST:
			c->test = 1;
			break;
		case OPT_TO:
			c->to = optarg;
			io = 1;
			break;
		case OPT_TRIM_INTERVAL:
			opt_range("trim-interval", parse_duration_ms, optarg, 0,
			    86400000, &c->trim_interval_ms);
			break;
		case 'V':
			printf("labpulse route %s\n", LABPULSE_VERSION);
			exit(0);
		default:
			bad_option(ch, argv);
		}
	}
	no_operands(argc, argv);
	if (c->test && io) {
		log_error("--test reads standard input and writes standard "
		    "output: it goes with no --dead, --from, --hooks, --stats "
		    "or --to");
		usage(64);
	}
	if (c->check_path && (c->test || c->rules_path)) {
		log_error("--check FILE names the rules to check: it goes "
		    "with neither --test nor --rules");
		usage(64);
	}
}

/* An output address: a stream without a group, NDJSON, or (for --dead)
 * none. */
static void
sink_parse(struct sink *s, const char *opt, const char *spec, int none_ok)
{
	struct addr a;
	char err[300];

	s->spec = spec;
	s->fd = -1;
	if (none_ok && strcmp(spec, "none") == 0) {
		s->kind = SINK_NONE;
		return;
	}
	if (addr_parse(spec, &a, err, sizeof err) < 0) {
		log_error("--%s: %s", opt, err);
		usage(64);
	}
	if (a.kind == ADDR_STREAM) {
		if (a.group[0]) {
			log_error("--%s: a stream is written without a group: "
			    "stream:%s", opt, a.stream);
			usage(64);
		}
		s->kind = SINK_STREAM;
		snprintf(s->key, sizeof s->key, "labpulse:%s", a.stream);
		return;
	}
	s->kind = SINK_FD;
}

static void
sink_open(struct sink *s, const char *opt, struct sink *prev[], int nprev)
{
	struct addr a;
	char err[300];
	int i;

	if (s->kind != SINK_FD)
		return;
	for (i = 0; i < nprev; i++)
		if (prev[i]->kind == SINK_FD && strcmp(prev[i]->spec, s->spec) == 0) {
			s->same = prev[i];
			return;
		}
	addr_parse(s->spec, &a, err, sizeof err);
	s->fd = fdout_open(&a, err, sizeof err);
	if (s->fd < 0)
		die(74, "--%s %s: %s", opt, s->spec, err);
}

static void
setup_outputs(struct route *r)
{
	struct route_cfg *c = &r->cfg;
	int streams;

	sink_parse(&r->to, "to", c->to, 0);
	if (c->hooks)
		sink_parse(&r->hooks, "hooks", c->hooks, 0);
	else if (r->to.kind == SINK_FD)
		sink_parse(&r->hooks, "hooks", c->to, 0);
	else
		sink_parse(&r->hooks, "hooks", "stream:hooks", 0);
	streams = r->from.kind == ADDR_STREAM || r->to.kind == SINK_STREAM ||
	    r->hooks.kind == SINK_STREAM;
	/* a pipe with no Redis keeps no Redis for what it sets aside: the
	 * log line and the dead counter are its record */
	sink_parse(&r->dead, "dead", c->dead ? c->dead : streams ?
	    "stream:route-dead" : "none", 1);
	r->use_redis = streams || r->dead.kind == SINK_STREAM;
}

static void
open_outputs(struct route *r)
{
	struct sink *prev[2] = { &r->to, &r->hooks };

	sink_open(&r->to, "to", prev, 0);
	sink_open(&r->hooks, "hooks", prev, 1);
	sink_open(&r->dead, "dead", prev, 2);
}

static jq_state *
load_or_die(const char *path, jv args)
{
	char err[4096];
	jq_state *jq = rules_load(path, args, err, sizeof err);

	if (jq == NULL) {
		log_lines("", err);
		exit(78);
	}
	return jq;
}

static void
sink_free(struct sink *s)
{
	if (s->kind == SINK_FD && s->same == NULL && s->fd > STDERR_FILENO)
		close(s->fd);
	free(s->buf);
}

int
main(int argc, char **argv)
{
	struct route_cfg *c = &rt.cfg;
	struct stats_server *stats = NULL;
	struct sigaction sa;
	struct batch bt = { NULL, 0, 0, 0 };
	char err[512], path[PATH_MAX], host[128];
	size_t i;
	int ready = 0, code = 0;

	log_init("labpulse-route");
	parse_args(argc, argv, c);
	if (c->check_path) {
		rt.jq = load_or_die(c->check_path, c->args);
		printf("%s: ok\n", c->check_path);
		jq_teardown(&rt.jq);
		return 0;
	}
	if (c->test) {
		c->from = "-";
		c->to = "-";
		c->hooks = NULL;
		c->dead = "none";
		c->stats_path = "none";
	}
	if (addr_parse(c->from, &rt.from, err, sizeof err) < 0) {
		log_error("--from: %s", err);
		usage(64);
	}
	if (rt.from.kind == ADDR_STREAM && rt.from.group[0] == '\0') {
		log_error("--from: a stream is read as a consumer group: "
		    "stream:%s@GROUP", rt.from.stream);
		usage(64);
	}
	setup_outputs(&rt);
	/* the rules first: a bad file touches no stream */
	snprintf(rt.rules_path, sizeof rt.rules_path, "%s", c->rules_path ?
	    c->rules_path : rules_default_path(path, sizeof path));
	rt.jq = load_or_die(rt.rules_path, jv_copy(c->args));
	if (rt.use_redis &&
	    redis_target_parse(&rt.g.rt, c->redis_url, err, sizeof err) < 0)
		die(78, "--redis: %s", err);
	if (c->consumer)
		snprintf(rt.consumer, sizeof rt.consumer, "%s", c->consumer);
	else {
		gethostname(host, sizeof host);
		host[sizeof host - 1] = '\0';
		snprintf(rt.consumer, sizeof rt.consumer, "%s:%ld", host,
		    (long)getpid());
	}
	if (source_open(&rt, err, sizeof err) < 0)
		die(66, "--from %s: %s", c->from, err);
	open_outputs(&rt);
	rt.started_us = stats_now_us();
	rt.latency_us = hist_new();
	rt.by_topic = jv_object();
	/* a blocking connection: one transaction on it at a time */
	if (rt.latency_us == NULL || stats_link_init(&rt.link, 1) < 0)
		die(71, "out of memory");
	rt.base = event_base_new();
	if (rt.base == NULL)
		die(71, "cannot make the event loop");
	stats = prog_stats(rt.base, "route", c->stats_path, fill_stats, &rt);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;	/* no SA_RESTART: waits end early */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	while (!rt.stop && rt.use_redis && group_ensure(&rt.g) < 0)
		route_idle(&rt, 500);
	if (!rt.stop && !c->test) {
		log_info("ready from=%s to=%s rules=%s hooks=%s dead=%s%s%s",
		    c->from, c->to, rt.rules_path, rt.hooks.spec, rt.dead.spec,
		    rt.from.kind == ADDR_STREAM ? " consumer=" : "",
		    rt.from.kind == ADDR_STREAM ? rt.consumer : "");
		sd_notify_state("READY=1");
		ready = 1;
	}
	while (!rt.stop) {
		if (rt.reload)
			reload_rules(&rt);
		source_fill(&rt, &bt);
		if (bt.n > 0) {
			for (i = 0; i < bt.n; i++)
				route_entry(&rt, &bt.e[i]);
			if (batch_write(&rt, &bt) == 0)
				account(&rt, &bt);
			batch_clear(&bt);
		}
		if (rt.from.kind != ADDR_STREAM && rt.in_eof && rt.inlen == 0)
			break;
	}
	if (ready)
		sd_notify_state("STOPPING=1");
	if (!c->test)
		log_info("stopped events=%lu messages=%lu dropped=%lu "
		    "rule_errors=%lu dead=%lu", rt.events_in, rt.messages_out,
		    rt.dropped, rt.rule_errors, rt.dead_n);
	/* a consumer named after its pid leaves the group tidy when it holds
	 * nothing; a named one (a unit's) stays for its next start */
	group_close(&rt.g, c->consumer == NULL);
	if (rt.in_error || rt.out_error)
		code = 74;
	else if (c->test && (rt.rule_errors > 0 || rt.dead_n > 0))
		code = 65;
	free(bt.e);
	free(rt.inbuf);
	if (rt.in_fd > STDERR_FILENO)
		close(rt.in_fd);
	sink_free(&rt.to);
	sink_free(&rt.hooks);
	sink_free(&rt.dead);
	stats_close(stats);
	if (rt.base)
		event_base_free(rt.base);
	hist_free(rt.latency_us);
	stats_link_free(&rt.link);
	jv_free(rt.by_topic);
	jv_free(c->args);
	jq_teardown(&rt.jq);
	return code;
}
