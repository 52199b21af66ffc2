/* route: turn events into addressed messages (class rooms, alerts, chat
 * hooks) with a jq program, and acknowledge each event only once its
 * messages are written. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fdout.h"
#include "hist.h"
#include "hookfile.h"
#include "log.h"
#include "prog.h"
#include "route.h"
#include "stats.h"

static opt_parser opt_named;

#define OPT_CFG struct route_cfg
static const struct opt options[] = {
	O_FN("arg", "NAME VALUE", args, opt_named, NULL,
	    "$NAME is the string VALUE in the rules"),
	O_FN("argjson", "NAME JSON", args, opt_named, NULL,
	    "$NAME is the JSON value JSON in the rules"),
	O_LONG("batch-size", batch_size, "1", "100000", "500",
	    "take at most N events at a time"),
	O_STR("check", "FILE", check_path, NULL,
	    "compile the rules of FILE, say \"FILE: ok\", exit"),
	O_DURATION("claim-idle", claim_idle_ms, "100ms", "24h", "30s",
	    "claim entries another consumer left pending this long"),
	/* a default that is no value: made of the host and the pid */
	O_NAME_TEXT("consumer", "NAME", consumer, "128", "HOST:PID",
	    "consumer name in the group"),
	O_TEXT("dead", "ADDR", dead, "stream:route-dead; none without Redis",
	    "where events the rules fail on go: stream:NAME, -, file:PATH, "
	    "unix:PATH or none"),
	O_STR("from", "ADDR", from, "stream:events@route",
	    "stream:NAME@GROUP, -, file:PATH or unix:PATH"),
	O_TEXT("hook-names", "FILE", hook_names, "$LABPULSE_HOOKS, else none",
	    "the hooks file whose destination names are $hooks in the rules"),
	O_TEXT("hooks", "ADDR", hooks, "stream:hooks, or --to when that is "
	    "NDJSON", "where messages of topic hook:... go"),
	O_LONG("max-len", max_len, "0", "1000000000", "200000",
	    "keep about the last N entries of each stream it writes, 0 for "
	    "all"),
	O_TEXT("redis", "URL", redis_url,
	    "$LABPULSE_REDIS, else redis://127.0.0.1:6379/0",
	    "redis://HOST[:PORT][/DB], "
	    "sentinel://HOST:PORT[,HOST:PORT...]/MASTER[/DB] or unix:PATH"),
	O_TEXT("rules", "FILE", rules_path, "$LABPULSE_RULES, else "
	    LABPULSE_SYSCONFDIR "/labpulse/route.jq", "the jq program"),
	O_TEXT("stats", "ADDR", stats_path, "$LABPULSE_RUNDIR/route.sock",
	    "stats socket: a path, tcp:HOST:PORT, or none"),
	O_FLAG("test", test, "route NDJSON events from standard input to "
	    "standard output, touching no Redis; exit 65 if a rule failed"),
	O_STR("to", "ADDR", to, "stream:routed",
	    "stream:NAME, -, file:PATH or unix:PATH"),
	O_DURATION("trim-interval", trim_interval_ms, "0", "24h", "5s",
	    "trim the input stream and the hooks stream this often to the "
	    "oldest entry a group still needs, 0 never"),
	O_END
};

static const struct prog_opts prog_opts = {
	"route",
	"Turn events into addressed messages with jq rules: class rooms, "
	"alerts, chat hooks. An event is acknowledged only once its messages "
	"are written.",
	options, NULL,
	"usage: labpulse route [--arg NAME VALUE] [--argjson NAME JSON]\n"
	"           [--batch-size N] [--claim-idle DURATION] [--consumer NAME]\n"
	"           [--dead ADDR] [--from ADDR] [--hook-names FILE]\n"
	"           [--hooks ADDR] [--max-len N] [--redis URL] [--rules FILE]\n"
	"           [--stats PATH] [--to ADDR] [--trim-interval DURATION]\n"
	"       labpulse route --check FILE [--arg NAME VALUE] "
	"[--argjson NAME JSON]\n"
	"           [--hook-names FILE]\n"
	"       labpulse route --test [--rules FILE] [--arg NAME VALUE]\n"
	"           [--argjson NAME JSON] [--hook-names FILE]\n"
	"       labpulse route --help | --version\n",
	NULL
};

/* Distinct topic prefixes counted apart in the stats; the rest together. */
#define TOPIC_PREFIXES_MAX 64

static struct route rt;

/* Each line of a multi-line error but the last, logged on its own; the
 * last is returned, for the caller to log or die with. */
static const char *
log_head_lines(const char *prefix, const char *text)
{
	const char *nl;

	while ((nl = strchr(text, '\n')) != NULL) {
		log_error("%s%.*s", prefix, (int)(nl - text), text);
		text = nl + 1;
	}
	return text;
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
			die_nomem();
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
	int j, n;

	if (e->error) {		/* set aside already when read */
		set_aside(e, "entry set aside", jv_null());
		return;
	}
	ev = rules_parse(e->raw, e->len);
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
	/* the text each output writes, made once */
	n = jv_array_length(jv_copy(out));
	for (j = 0; j < n; j++)
		if (rules_dump(jv_array_get(jv_copy(out), j), &e->out) < 0 ||
		    text_add(&e->out, "\n", 1) < 0)
			die_nomem();
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

/* $hooks: the destination names of the hooks file of --hook-names, else
 * of $LABPULSE_HOOKS; [] when neither names one. Only the names are read
 * (no key or token file). 0, or -ERR_KIND with the reason in err. */
static int
hook_names_load(const struct route_cfg *c, jv *names, char *err,
    size_t errlen)
{
	const char *path = c->hook_names ? c->hook_names :
	    getenv("LABPULSE_HOOKS");
	struct hookfile hf;
	size_t i;
	int rc;

	*names = jv_array();
	if (path == NULL || *path == '\0')
		return 0;
	if ((rc = hookfile_load(path, &hf, err, errlen)) < 0) {
		jv_free(*names);
		*names = jv_invalid();
		return rc;
	}
	for (i = 0; i < hf.n; i++)
		*names = jv_array_append(*names, jv_string(hf.d[i].name));
	hookfile_free(&hf);
	return 0;
}

static jv
rule_vars(jv names)
{
	return jv_object_set(jv_object(), jv_string("hooks"), jv_copy(names));
}

static void
reload_rules(struct route *r)
{
	static const char why[] = "reload failed, keeping the old rules: ";
	char err[4096];
	jq_state *jq;
	jv names;

	r->d.reload = 0;
	/* the names go with the rules that use them; a bad hooks file keeps
	 * the names the running rules have */
	if (hook_names_load(&r->cfg, &names, err, sizeof err) < 0)
		log_warn("reload: keeping the old hook names: %s", err);
	else {
		jv_free(r->hook_names);
		r->hook_names = names;
	}
	jq = rules_load(r->rules_path, jv_copy(r->cfg.args),
	    rule_vars(r->hook_names), err, sizeof err);
	if (jq == NULL) {
		r->reload_errors++;
		log_error("%s%s", why, log_head_lines(why, err));
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

/* --arg NAME VALUE, --argjson NAME JSON: getopt gives NAME, and the value
 * is the next word of the command line, taken here. */
static int
opt_named(const struct opt *o, const char *name, void *cfg, char *err,
    size_t errlen)
{
	jv *args = (jv *)(void *)((char *)cfg + o->off), v, m;
	int json = strcmp(o->name, "argjson") == 0;
	const char *value = opt_next_word();

	if (value == NULL)
		usage_error("option '--%s' needs a NAME and a %s", o->name,
		    json ? "JSON value" : "VALUE");
	if (!jq_name(name)) {
		snprintf(err, errlen, "'%s' is not a jq variable name", name);
		return -1;
	}
	v = json ? jv_parse(value) : jv_string(value);
	if (!jv_is_valid(v)) {
		m = jv_invalid_get_msg(v);
		usage_error("--%s %s: invalid JSON: %s", o->name, name,
		    jv_get_kind(m) == JV_KIND_STRING ? jv_string_value(m) : "?");
	}
	*args = jv_object_set(*args, jv_string(name), v);
	return 0;
}

/* The modes take their input and output from their own words. */
static void
check_options(const struct route_cfg *c)
{
	if (c->test && (opt_given("dead") || opt_given("from") ||
	    opt_given("hooks") || opt_given("stats") || opt_given("to")))
		usage_error("--test reads standard input and writes standard "
		    "output: it goes with no --dead, --from, --hooks, --stats "
		    "or --to");
	if (c->check_path && (c->test || c->rules_path))
		usage_error("--check FILE names the rules to check: it goes "
		    "with neither --test nor --rules");
	if (jv_object_has(jv_copy(c->args), jv_string("hooks")))
		usage_error("$hooks is the names of the hooks file "
		    "(--hook-names): it is not given by --arg or --argjson");
}

/* $hooks at start: a hooks file that cannot be read or is bad stops route
 * before it touches anything. */
static jv
hook_names_or_die(const struct route_cfg *c)
{
	char err[1024];
	jv names;
	int rc;

	if ((rc = hook_names_load(c, &names, err, sizeof err)) < 0)
		die_kind(rc, "%s", err);
	return names;
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
	if (addr_parse(spec, &a, err, sizeof err) < 0)
		usage_error("--%s: %s", opt, err);
	if (a.kind == ADDR_STREAM) {
		if (a.group[0])
			usage_error("--%s: a stream is written without a group: "
			    "stream:%s", opt, a.stream);
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
		die(EX_IOERR, "--%s %s: %s", opt, s->spec, err);
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

/* The rules of path, or their errors, one a line, and EX_CONFIG. */
static jq_state *
rules_or_die(const char *path, jv args, jv names)
{
	char err[4096];
	jq_state *jq = rules_load(path, args, rule_vars(names), err,
	    sizeof err);

	if (jq == NULL)
		die(EX_CONFIG, "%s", log_head_lines("", err));
	return jq;
}

/* --check FILE: the rules compile, or each error is said. */
static int
check_rules(struct route_cfg *c)
{
	jv names = hook_names_or_die(c);
	jq_state *jq = rules_or_die(c->check_path, c->args, names);

	printf("%s: ok\n", c->check_path);
	jq_teardown(&jq);
	jv_free(names);
	return EX_OK;
}

/* --from is an address, and a stream is read only as a consumer group;
 * the consumer is named by --consumer, else HOST:PID. */
static void
input_parse(struct route *r)
{
	char err[300];

	if (addr_parse_group_input(r->cfg.from, &r->from, err, sizeof err) < 0)
		usage_error("--from: %s", err);
	group_consumer_name(r->cfg.consumer, r->consumer, sizeof r->consumer);
}

/* What route needs before it is ready, the rules first: a bad file
 * touches no stream and makes no stats socket. Then Redis, waited for. */
static void
acquire(struct route *r)
{
	struct route_cfg *c = &r->cfg;
	char err[512], path[PATH_MAX];
	int rc;

	if (c->test) {
		c->from = c->to = "-";
		c->hooks = NULL;
		c->dead = c->stats_path = "none";
	}
	input_parse(r);
	setup_outputs(r);
	snprintf(r->rules_path, sizeof r->rules_path, "%s", c->rules_path ?
	    c->rules_path : rules_default_path(path, sizeof path));
	r->hook_names = hook_names_or_die(c);
	r->jq = rules_or_die(r->rules_path, jv_copy(c->args), r->hook_names);
	if (r->use_redis &&
	    redis_target_parse(&r->g.rt, c->redis_url, err, sizeof err) < 0)
		die(EX_CONFIG, "--redis: %s", err);
	if ((rc = source_open(r, err, sizeof err)) < 0)
		die_kind(rc, "--from %s: %s", c->from, err);
	open_outputs(r);
	r->started_us = stats_now_us();
	r->by_topic = jv_object();
	/* a blocking connection: one transaction on it at a time */
	if ((r->latency_us = hist_new()) == NULL ||
	    stats_link_init(&r->link, 1) < 0)
		die_nomem();
	daemon_start(&r->d, "route", c->stats_path, fill_stats, r);
	while (!r->d.stop && r->use_redis && group_ensure(&r->g) < 0)
		daemon_idle(&r->d, 500);
}

static void
sink_free(struct sink *s)
{
	if (s->kind == SINK_FD && s->same == NULL && s->fd > STDERR_FILENO)
		close(s->fd);
	free(s->buf);
}

/* A consumer named after its pid leaves the group tidy when it holds
 * nothing; a named one (a unit's) stays for its next start. The status:
 * input or output failed, or --test found events the rules failed on. */
static int
release(struct route *r, struct batch *bt)
{
	struct route_cfg *c = &r->cfg;
	int code = EX_OK;

	group_close(&r->g, c->consumer == NULL);
	if (r->in.error || r->out_error)
		code = EX_IOERR;
	else if (c->test && (r->rule_errors > 0 || r->dead_n > 0))
		code = EX_DATAERR;
	batch_free(bt);
	if (r->from.kind != ADDR_STREAM)
		lines_free(&r->in);
	sink_free(&r->to);
	sink_free(&r->hooks);
	sink_free(&r->dead);
	daemon_end(&r->d);
	hist_free(r->latency_us);
	stats_link_free(&r->link);
	jv_free(r->by_topic);
	jv_free(c->args);
	jv_free(r->hook_names);
	jq_teardown(&r->jq);
	return code;
}

int
main(int argc, char **argv)
{
	struct route *r = &rt;
	struct route_cfg *c = &r->cfg;
	struct batch bt = { NULL, 0, 0, 0 };
	size_t i;

	log_init("labpulse-route");
	c->args = jv_object();
	opt_parse(&prog_opts, argc, argv, c);
	check_options(c);
	if (c->check_path)
		return check_rules(c);
	acquire(r);
	if (!r->d.stop && !c->test)
		daemon_ready(&r->d, NULL, "from=%s to=%s rules=%s hooks=%s "
		    "dead=%s%s%s", c->from, c->to, r->rules_path, r->hooks.spec,
		    r->dead.spec, r->from.kind == ADDR_STREAM ? " consumer=" :
		    "", r->from.kind == ADDR_STREAM ? r->consumer : "");
	while (!r->d.stop) {
		if (r->d.reload)
			reload_rules(r);
		source_fill(r, &bt);
		if (bt.n > 0) {
			for (i = 0; i < bt.n; i++)
				route_entry(r, &bt.e[i]);
			if (batch_write(r, &bt) == 0)
				account(r, &bt);
			batch_clear(&bt);
		}
		if (r->from.kind != ADDR_STREAM && lines_done(&r->in))
			break;
	}
	daemon_stopping(&r->d);
	if (!c->test)
		log_info("stopped events=%lu messages=%lu dropped=%lu "
		    "rule_errors=%lu dead=%lu", r->events_in, r->messages_out,
		    r->dropped, r->rule_errors, r->dead_n);
	return release(r, &bt);
}
