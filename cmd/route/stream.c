/* stream.c: where route takes events from (a consumer group of the events
 * stream, or NDJSON) and how it writes what they became: the messages, the
 * entries set aside and the acknowledgement, in one transaction. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jv.h>

#include "fdout.h"
#include "log.h"
#include "prog.h"
#include "route.h"
#include "stats.h"

void
batch_free(struct batch *bt)
{
	size_t i;

	batch_clear(bt);
	for (i = 0; i < bt->cap; i++)
		free(bt->e[i].out.s);
	free(bt->e);
}

void
batch_clear(struct batch *bt)
{
	size_t i;

	for (i = 0; i < bt->n; i++) {
		free(bt->e[i].raw);
		free(bt->e[i].error);
		jv_free(bt->e[i].msgs);
	}
	bt->n = 0;
	bt->fd_done = 0;
}

static void
batch_add(struct batch *bt, const char *id, long line, const char *raw,
    size_t len)
{
	struct entry *e;
	struct text out;

	if (bt->n == bt->cap) {
		bt->cap = bt->cap ? bt->cap * 2 : 64;
		bt->e = realloc(bt->e, bt->cap * sizeof *bt->e);
		if (bt->e == NULL)
			die_nomem();
		memset(bt->e + bt->n, 0, (bt->cap - bt->n) * sizeof *bt->e);
	}
	e = &bt->e[bt->n++];
	/* the text of the messages is kept from one batch to the next */
	out = e->out;
	memset(e, 0, sizeof *e);
	e->out = out;
	e->out.len = 0;
	snprintf(e->id, sizeof e->id, "%s", id);
	e->line = line;
	e->raw = malloc(len + 1);
	if (e->raw == NULL)
		die_nomem();
	memcpy(e->raw, raw, len);
	e->raw[len] = '\0';
	e->len = len;
	e->msgs = jv_array();
	strcpy(e->event_id, "-");
}

/* An output key that holds something else than a stream would fail its
 * XADD inside the transaction while the XACK beside it succeeds: refuse to
 * start writing instead. */
static int
check_output(redisContext *c, const struct sink *s, char *err, size_t errlen)
{
	redisReply *x;
	int ok;

	if (s->kind != SINK_STREAM)
		return 0;
	x = redisCommand(c, "TYPE %s", s->key);
	if (x == NULL) {
		snprintf(err, errlen, "%s", c->errstr);
		return -1;
	}
	ok = x->type == REDIS_REPLY_STATUS && (strcmp(x->str, "stream") == 0 ||
	    strcmp(x->str, "none") == 0);
	if (!ok)
		snprintf(err, errlen, "%s holds a %s, not a stream", s->key,
		    x->type == REDIS_REPLY_STATUS ? x->str : "?");
	freeReplyObject(x);
	return ok ? 0 : -1;
}

/* Run on each connection to Redis, before it counts. */
static int
check_outputs(redisContext *c, void *arg, char *err, size_t errlen)
{
	struct route *r = arg;

	if (check_output(c, &r->to, err, errlen) < 0 ||
	    check_output(c, &r->hooks, err, errlen) < 0 ||
	    check_output(c, &r->dead, err, errlen) < 0)
		return -1;
	return 0;
}

/* Redis lost or back: the daemon's log line. */
static void
on_group_state(struct group *g, int up, void *arg)
{
	struct route *r = arg;

	daemon_redis_state(&r->d, g->rt.url, up, g->error);
}

int
source_open(struct route *r, char *err, size_t errlen)
{
	r->g.timeout_ms = 2000;
	r->g.check = check_outputs;
	r->g.on_state = on_group_state;
	r->g.arg = r;
	if (r->from.kind == ADDR_STREAM) {
		group_init(&r->g, r->from.stream, r->from.group, r->consumer);
		r->g.claim_idle_ms = r->cfg.claim_idle_ms;
		r->g.trim_interval_ms = r->cfg.trim_interval_ms;
		return 0;
	}
	return lines_open(&r->in, &r->from, err, errlen);
}

/* An entry of the group into the batch; one that is not an event is set
 * aside whole, as an object of its fields, as batch-commit does. */
static void
take(const char *id, const char *data, size_t len, int event, void *arg)
{
	struct batch *bt = arg;

	batch_add(bt, id, 0, data, len);
	if (!event) {
		bt->e[bt->n - 1].error = strdup("stream entry without an "
		    "event field");
		if (bt->e[bt->n - 1].error == NULL)
			die_nomem();
	}
}

/* Every --trim-interval, the input stream and the hooks stream trimmed to
 * what their groups still need (see group.h): batch-commit trims the input
 * too, harmlessly; a hooks stream no group reads yet is left whole, and the
 * routed stream, read by every notify without a group, is kept to
 * --max-len by each XADD. */
static void
trim(struct route *r)
{
	char err[512] = "";
	long n, h = 0;

	if (!group_trim_due(&r->g))
		return;
	n = group_trim(&r->g, NULL, err, sizeof err);
	if (n >= 0 && r->hooks.kind == SINK_STREAM &&
	    strcmp(r->hooks.key, r->g.key) != 0)
		h = group_trim(&r->g, r->hooks.key, err, sizeof err);
	if (n >= 0)
		r->trimmed += (unsigned long)n;
	if (h > 0)
		r->trimmed_hooks += (unsigned long)h;
	if (n >= 0 && h >= 0) {
		r->trims++;
		r->trim_error[0] = '\0';
		return;
	}
	if (strcmp(err, r->trim_error) != 0)
		log_warn("cannot trim; will retry reason=\"%s\"", err);
	snprintf(r->trim_error, sizeof r->trim_error, "%s", err);
}

static void
fill_stream(struct route *r, struct batch *bt)
{
	long got;

	while (!r->d.stop && !r->d.reload && bt->n == 0) {
		daemon_serve(&r->d);
		if (group_ensure(&r->g) < 0) {
			daemon_idle(&r->d, 500);
			continue;
		}
		trim(r);
		if (r->g.c == NULL)
			continue;
		got = group_claim(&r->g, r->cfg.batch_size, take, bt);
		if (got > 0) {
			log_info("claimed entries left pending by another "
			    "consumer count=%ld", got);
			r->claimed += got;
		}
		if (got != 0)
			continue;
		/* Routing is as soon as an event comes: a blocking read wakes
		 * at once; its timeout only lets signals and the stats socket
		 * be seen. */
		group_read(&r->g, r->cfg.batch_size, 100, take, bt);
	}
}

/* NDJSON: what is there, a line an event, up to --batch-size; waits only
 * while there is nothing. */
static void
fill_fd(struct route *r, struct batch *bt)
{
	const char *line;
	char err[300];
	size_t len;

	for (;;) {
		while ((size_t)r->cfg.batch_size > bt->n &&
		    (line = lines_next(&r->in, &len)) != NULL)
			batch_add(bt, "", r->in.lineno, line, len);
		if (bt->n > 0 || r->in.eof || r->d.stop || r->d.reload)
			return;
		daemon_serve(&r->d);
		if (lines_read(&r->in, 100, err, sizeof err) < 0)
			log_error("cannot read %s: %s", r->cfg.from, err);
	}
}

void
source_fill(struct route *r, struct batch *bt)
{
	if (r->from.kind == ADDR_STREAM)
		fill_stream(r, bt);
	else
		fill_fd(r, bt);
}

static void
buf_add(struct sink *s, const char *p, size_t n)
{
	while (s->same)
		s = s->same;
	if (s->cap - s->len < n + 1) {
		while (s->cap - s->len < n + 1)
			s->cap = s->cap ? s->cap * 2 : 65536;
		s->buf = realloc(s->buf, s->cap);
		if (s->buf == NULL)
			die_nomem();
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
}

static int
buf_flush(struct route *r, struct sink *s)
{
	if (s->kind != SINK_FD || s->same || s->len == 0)
		return 0;
	if (fdout_write_all(s->fd, s->buf, s->len) < 0) {
		log_error("cannot write to %s: %s", s->spec, strerror(errno));
		r->out_error = 1;
		r->d.stop = 1;
		s->len = 0;
		return -1;
	}
	s->len = 0;
	return 0;
}

static struct sink *
sink_of(struct route *r, jv msg)
{
	jv topic = jv_object_get(msg, jv_string("topic"));
	int hook = strncmp(jv_string_value(topic), "hook:", 5) == 0;

	jv_free(topic);
	return hook ? &r->hooks : &r->to;
}

/* The line of e->out at *off, without its newline; *off moves past it. */
static const char *
msg_line(const struct entry *e, size_t *off, size_t *len)
{
	const char *p = e->out.s + *off,
	    *nl = memchr(p, '\n', e->out.len - *off);

	*len = (size_t)(nl - p);
	*off += *len + 1;
	return p;
}

/* The NDJSON lines of the batch: each message whole, compact, a line. */
static int
write_fds(struct route *r, struct batch *bt)
{
	struct entry *e;
	struct sink *s;
	size_t i, off, len;
	int j, n, msgs_fd = r->to.kind == SINK_FD || r->hooks.kind == SINK_FD;
	const char *line;

	for (i = 0; i < bt->n; i++) {
		e = &bt->e[i];
		if (e->error) {
			if (r->dead.kind == SINK_FD) {
				jv o = jv_object(), txt;

				o = jv_object_set(o, jv_string("event"),
				    jv_string_sized(e->raw, (int)e->len));
				o = jv_object_set(o, jv_string("error"),
				    jv_string(e->error));
				o = jv_object_set(o, jv_string("source"),
				    e->id[0] ? jv_string(e->id) :
				    jv_string_fmt("%s:%ld", r->cfg.from, e->line));
				txt = jv_dump_string(o, 0);
				buf_add(&r->dead, jv_string_value(txt),
				    (size_t)jv_string_length_bytes(jv_copy(txt)));
				buf_add(&r->dead, "\n", 1);
				jv_free(txt);
			}
			continue;
		}
		n = msgs_fd ? jv_array_length(jv_copy(e->msgs)) : 0;
		for (j = 0, off = 0; j < n; j++) {
			line = msg_line(e, &off, &len);
			s = sink_of(r, jv_array_get(jv_copy(e->msgs), j));
			if (s->kind == SINK_FD)
				buf_add(s, line, len + 1);
		}
	}
	if (buf_flush(r, &r->to) < 0 || buf_flush(r, &r->hooks) < 0 ||
	    buf_flush(r, &r->dead) < 0)
		return -1;
	return 0;
}

/* A command for the transaction; its arguments are kept alive by the
 * caller's jv strings or the batch. */
struct cmds {
	const char **argv;
	size_t *argl;
	size_t n, cap;		/* arguments */
	int *argc;		/* arguments of each command */
	size_t ncmd, cmdcap;
	jv keep;		/* the texts the arguments point into */
	char max_len[24];	/* --max-len as text */
};

static void
cmd_begin(struct cmds *c)
{
	if (c->ncmd == c->cmdcap) {
		c->cmdcap = c->cmdcap ? c->cmdcap * 2 : 64;
		c->argc = realloc(c->argc, c->cmdcap * sizeof *c->argc);
		if (c->argc == NULL)
			die_nomem();
	}
	c->argc[c->ncmd++] = 0;
}

static void
cmd_arg(struct cmds *c, const char *p, size_t len)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 256;
		c->argv = realloc(c->argv, c->cap * sizeof *c->argv);
		c->argl = realloc(c->argl, c->cap * sizeof *c->argl);
	}
	if (c->argv == NULL || c->argl == NULL || c->argc == NULL)
		die_nomem();
	c->argv[c->n] = p;
	c->argl[c->n++] = len;
	c->argc[c->ncmd - 1]++;
}

static void
cmd_str(struct cmds *c, const char *s)
{
	cmd_arg(c, s, strlen(s));
}

/* A jv string kept until the commands are sent. */
static void
cmd_jv(struct cmds *c, jv s)
{
	c->keep = jv_array_append(c->keep, jv_copy(s));
	cmd_arg(c, jv_string_value(s), (size_t)jv_string_length_bytes(jv_copy(s)));
	jv_free(s);
}

/* MAXLEN ~ N: Redis trims whole nodes of the stream, cheaply, and keeps at
 * least N entries; dashboards resuming from a trimmed id get a resync. */
static void
cmd_trim(struct route *r, struct cmds *c)
{
	if (r->cfg.max_len <= 0)
		return;
	cmd_str(c, "MAXLEN");
	cmd_str(c, "~");
	cmd_str(c, c->max_len);
}

/* The transaction of the batch: its messages to the streams, the entries
 * set aside, the XACK of its entries. */
static void
build_cmds(struct route *r, struct batch *bt, struct cmds *c)
{
	struct entry *e;
	struct sink *s;
	size_t i, off, len;
	int j, n;
	const char *line;

	snprintf(c->max_len, sizeof c->max_len, "%ld", r->cfg.max_len);
	cmd_begin(c);
	cmd_str(c, "MULTI");
	for (i = 0; i < bt->n; i++) {
		e = &bt->e[i];
		if (e->error) {
			if (r->dead.kind != SINK_STREAM)
				continue;
			cmd_begin(c);
			cmd_str(c, "XADD");
			cmd_str(c, r->dead.key);
			cmd_trim(r, c);
			cmd_str(c, "*");
			cmd_str(c, "event");
			cmd_arg(c, e->raw, e->len);
			cmd_str(c, "error");
			cmd_str(c, e->error);
			cmd_str(c, "source");
			if (e->id[0])
				cmd_str(c, e->id);
			else
				cmd_jv(c, jv_string_fmt("%s:%ld", r->cfg.from,
				    e->line));
			continue;
		}
		n = jv_array_length(jv_copy(e->msgs));
		for (j = 0, off = 0; j < n; j++) {
			jv m = jv_array_get(jv_copy(e->msgs), j);

			line = msg_line(e, &off, &len);
			s = sink_of(r, jv_copy(m));
			if (s->kind != SINK_STREAM) {
				jv_free(m);
				continue;
			}
			cmd_begin(c);
			cmd_str(c, "XADD");
			cmd_str(c, s->key);
			cmd_trim(r, c);
			cmd_str(c, "*");
			cmd_str(c, "topic");
			cmd_jv(c, jv_object_get(m, jv_string("topic")));
			cmd_str(c, "msg");
			cmd_arg(c, line, len);
		}
	}
	if (r->from.kind == ADDR_STREAM) {
		cmd_begin(c);
		cmd_str(c, "XACK");
		cmd_str(c, r->g.key);
		cmd_str(c, r->g.name);
		for (i = 0; i < bt->n; i++)
			cmd_str(c, bt->e[i].id);
	}
	cmd_begin(c);
	cmd_str(c, "EXEC");
}

/* Send the transaction and read its answers: 0 when EXEC ran it, -1 with
 * the connection dropped otherwise. */
static int
send_cmds(struct route *r, struct cmds *c)
{
	redisReply *x, *exec = NULL;
	char why[400] = "";
	size_t i, off = 0;
	int lost = 0;
	int64_t sent = stats_mono_us();

	/* the link is busy from the first command to the last answer */
	stats_link_sent(&r->link);
	for (i = 0; i < c->ncmd; i++) {
		redisAppendCommandArgv(r->g.c, c->argc[i], c->argv + off,
		    c->argl + off);
		off += c->argc[i];
	}
	for (i = 0; i < c->ncmd; i++) {
		if (redisGetReply(r->g.c, (void **)&x) != REDIS_OK) {
			snprintf(why, sizeof why, "%s", r->g.c->errstr);
			lost = 1;
			break;
		}
		if (x->type == REDIS_REPLY_ERROR && !why[0])
			snprintf(why, sizeof why, "%s: %s", i == 0 ? "MULTI" :
			    i + 1 == c->ncmd ? "EXEC" : "queueing", x->str);
		if (i + 1 == c->ncmd)
			exec = x;
		else
			freeReplyObject(x);
	}
	stats_link_done(&r->link, sent);
	if (!lost && exec && exec->type == REDIS_REPLY_ARRAY) {
		/* the checks at connect make these unlikely: say so loudly */
		for (i = 0; i < exec->elements; i++)
			if (exec->element[i]->type == REDIS_REPLY_ERROR)
				log_error("a command of the transaction failed "
				    "error=\"%s\"", exec->element[i]->str);
		freeReplyObject(exec);
		return 0;
	}
	freeReplyObject(exec);
	if (!why[0])
		snprintf(why, sizeof why, "EXEC: transaction not run");
	group_drop(&r->g, why);
	return -1;
}

int
batch_write(struct route *r, struct batch *bt)
{
	struct cmds c;
	int rc = -1;

	if (bt->n == 0)
		return 0;
	if (!bt->fd_done) {
		if (write_fds(r, bt) < 0)
			return -1;
		bt->fd_done = 1;
	}
	if (!r->use_redis)
		return 0;
	memset(&c, 0, sizeof c);
	c.keep = jv_array();
	build_cmds(r, bt, &c);
	if (c.ncmd == 2) {	/* MULTI EXEC: nothing for Redis */
		rc = 0;
		goto out;
	}
	/* Written and acknowledged together, or neither: keep trying while
	 * Redis is away. */
	for (;;) {
		if (group_ensure(&r->g) == 0 && send_cmds(r, &c) == 0) {
			rc = 0;
			break;
		}
		if (r->d.stop) {
			log_info("stopping: batch abandoned unacknowledged "
			    "events=%zu", bt->n);
			break;
		}
		daemon_idle(&r->d, 500);
	}
out:
	free(c.argv);
	free(c.argl);
	free(c.argc);
	jv_free(c.keep);
	return rc;
}

long
source_pending(struct route *r)
{
	if (r->from.kind != ADDR_STREAM)
		return -1;
	return group_pending(&r->g);
}
