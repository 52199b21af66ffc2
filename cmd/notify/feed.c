/* feed.c: where notify's messages come from. Every instance reads all of
 * the routed stream (no consumer group), so that dashboards can be spread
 * over many instances; a second connection serves replays, which read the
 * stream up to the position the live reader has dispatched, so that a
 * client goes from replay to live with no gap and no duplicate. In a pipe,
 * NDJSON messages get ids of their own and replay only what is current.
 * Messages go to the callbacks main gave (feed_ops), a replay's to its
 * reader: nothing here knows a client. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "json.h"
#include "log.h"
#include "notify.h"
#include "redis.h"
#include "stats.h"

#define FEED_COUNT	200	/* entries per read */
#define FEED_BLOCK_MS	"5000"
#define REPLAY_WAIT_US	50000	/* a replay waits for the reader this often */
#define REPLAY_WAIT_TRIES	60	/* and this many times: 3 s */

/* What the live connection asked, one command at a time. */
enum live_ask { ASK_NONE, ASK_POSITION, ASK_READ, ASK_INFO };

struct feed {
	struct notify *n;
	struct feed_ops ops;
	char key[160];
	struct rconn *live, *query;
	enum live_ask reading;
	int positioned;
	struct sid pos;
	char pos_text[NOTIFY_ID_LEN];
	/* pipe mode */
	struct ninput *in;
	int in_eof;
	/* counters */
	unsigned long bad_messages, other_topics, reads, gaps;
	long replays_running;
};

static void
set_pos(struct feed *f, const char *id)
{
	if (sid_parse(id, &f->pos) < 0)
		return;
	snprintf(f->pos_text, sizeof f->pos_text, "%s", id);
}

/* "2026-11-25T20:31:39.123456Z" → microseconds; 0 when it is not that. */
static int64_t
parse_time_us(const char *s)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, n = 0;
	long frac = 0, scale = 1000000;
	const char *p;

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec,
	    &n) != 6 || n == 0)
		return 0;
	p = s + n;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++)
			if (scale > 1) {
				scale /= 10;
				frac += (*p - '0') * scale;
			}
	}
	if (*p != 'Z')
		return 0;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	return (int64_t)timegm(&tm) * 1000000 + frac;
}

/* The frame every client of the class gets:
 * {"type":"message","id":…,"class":…,"topic":…,"message":…}, with class and
 * topic re-encoded as they came from a field. NULL when out of memory. */
static char *
make_frame(const char *id, const char *topic, const char *msg, size_t len,
    size_t *outlen)
{
	jv k = jv_dump_string(jv_string(topic + 6), 0);
	jv tp = jv_dump_string(jv_string(topic), 0);
	size_t cap = len + strlen(id) + 80 +
	    (size_t)jv_string_length_bytes(jv_copy(k)) +
	    (size_t)jv_string_length_bytes(jv_copy(tp));
	char *frame = malloc(cap);
	size_t fl;

	if (frame) {
		fl = (size_t)snprintf(frame, cap, "{\"type\":\"message\","
		    "\"id\":\"%s\",\"class\":%s,\"topic\":%s,\"message\":", id,
		    jv_string_value(k), jv_string_value(tp));
		memcpy(frame + fl, msg, len);
		fl += len;
		frame[fl++] = '}';
		frame[fl] = '\0';
		*outlen = fl;
	}
	jv_free(k);
	jv_free(tp);
	return frame;
}

/* The frame of message msg, parsed as the object m: its bytes as written,
 * unless a line break must go (it would end an SSE data line), then
 * written again, compact. NULL when out of memory. */
static char *
frame_of(const char *id, const char *topic, jv m, const char *msg,
    size_t len, size_t *outlen)
{
	jv compact;
	char *frame;

	if (memchr(msg, '\n', len) == NULL && memchr(msg, '\r', len) == NULL)
		return make_frame(id, topic, msg, len, outlen);
	compact = jv_dump_string(jv_copy(m), 0);
	frame = make_frame(id, topic, jv_string_value(compact),
	    (size_t)jv_string_length_bytes(jv_copy(compact)), outlen);
	jv_free(compact);
	return frame;
}

/* One message of the stream: checked once, framed once, then handed to
 * the clients of its class. */
static void
feed_message(struct feed *f, const char *id, const char *topic,
    const char *msg, size_t len)
{
	struct notify *n = f->n;
	jv m, t;
	char *frame;
	size_t fl;
	int64_t received = 0;
	const char *klass;

	set_pos(f, id);
	n->messages_in++;
	if (strncmp(topic, "class:", 6) != 0 || topic[6] == '\0') {
		f->other_topics++;
		return;
	}
	klass = topic + 6;
	m = jv_parse_sized(msg, (int)len);
	if (!jv_is_valid(m) || jv_get_kind(m) != JV_KIND_OBJECT) {
		jv_free(m);
		f->bad_messages++;
		log_warn("not a JSON object; skipped id=%s", id);
		return;
	}
	t = jv_object_get(jv_copy(m), jv_string("receivedAt"));
	if (jv_get_kind(t) == JV_KIND_STRING)
		received = parse_time_us(jv_string_value(t));
	jv_free(t);
	frame = frame_of(id, topic, m, msg, len, &fl);
	if (frame)
		f->ops.dispatch(n, id, klass, frame, fl, received);
	else
		n->oom_dropped++;
	free(frame);
	jv_free(m);
}

/* Fields of a stream entry: topic and msg; NULL when absent. */
static void
entry_fields(redisReply *e, redisReply **topic, redisReply **msg)
{
	redisReply *f;
	size_t j;

	*topic = *msg = NULL;
	if (e->type != REDIS_REPLY_ARRAY || e->elements < 2)
		return;
	f = e->element[1];
	if (f->type != REDIS_REPLY_ARRAY)
		return;
	for (j = 0; j + 1 < f->elements; j += 2) {
		if (strcmp(f->element[j]->str, "topic") == 0)
			*topic = f->element[j + 1];
		else if (strcmp(f->element[j]->str, "msg") == 0)
			*msg = f->element[j + 1];
	}
}

static int stream_gap(redisReply *r, struct sid since);

/* XREAD's entries, in order. */
static void
take_entries(struct feed *f, redisReply *r)
{
	redisReply *entries, *topic, *msg;
	size_t i;

	f->reads++;
	if (r->type != REDIS_REPLY_ARRAY || r->elements == 0 ||
	    r->element[0]->elements < 2)
		return;
	entries = r->element[0]->element[1];
	for (i = 0; i < entries->elements; i++) {
		redisReply *e = entries->element[i];

		if (e->type != REDIS_REPLY_ARRAY || e->elements < 1)
			continue;
		entry_fields(e, &topic, &msg);
		if (topic == NULL || msg == NULL) {
			set_pos(f, e->element[0]->str);
			f->bad_messages++;
			continue;
		}
		feed_message(f, e->element[0]->str, topic->str, msg->str,
		    msg->len);
	}
}

/* XREVRANGE's newest entry: where reading starts. */
static void
take_position(struct feed *f, redisReply *r)
{
	if (r->type != REDIS_REPLY_ARRAY)
		return;
	if (r->elements > 0 && r->element[0]->type == REDIS_REPLY_ARRAY &&
	    r->element[0]->elements > 0)
		set_pos(f, r->element[0]->element[0]->str);
	f->positioned = 1;
	log_info("reading %s from id=%s", f->key, f->pos_text);
}

static void read_next(struct feed *f);

/* Every reply on the live connection, then the next read. Back after Redis
 * was away (XINFO): was the stream trimmed past what was read, or is it
 * another stream? Then every live client is told to resync. */
static void
on_live(redisAsyncContext *ac, void *reply, void *arg)
{
	struct feed *f = arg;
	redisReply *r = reply;
	enum live_ask asked = f->reading;

	(void)ac;
	f->reading = ASK_NONE;
	if (r == NULL)
		return;		/* lost: read again when it is back */
	if (asked == ASK_READ && r->type == REDIS_REPLY_ERROR) {
		log_warn("XREAD: %s", r->str);
		rconn_reset(f->live, r->str);
		return;
	}
	if (asked == ASK_READ)
		take_entries(f, r);
	else if (asked == ASK_POSITION)
		take_position(f, r);
	else if (stream_gap(r, f->pos) == 1) {
		log_warn("the stream lost entries after id=%s while Redis was "
		    "away; resyncing every client", f->pos_text);
		f->gaps++;
		f->ops.resync_all(f->n);
	}
	read_next(f);
}

static void
live_ask(struct feed *f, enum live_ask what, const char *fmt, ...)
{
	va_list ap;

	f->reading = what;
	va_start(ap, fmt);
	redisvAsyncCommand(rconn_ctx(f->live), on_live, f, fmt, ap);
	va_end(ap);
}

static void
read_next(struct feed *f)
{
	if (rconn_ctx(f->live) == NULL || f->reading || f->n->d.stop)
		return;
	if (!f->positioned)	/* start where the stream is now */
		live_ask(f, ASK_POSITION, "XREVRANGE %s + - COUNT 1", f->key);
	else
		live_ask(f, ASK_READ, "XREAD COUNT %d BLOCK %s STREAMS %s %s",
		    FEED_COUNT, FEED_BLOCK_MS, f->key, f->pos_text);
}

static void
on_live_state(struct rconn *rc, int up, void *arg)
{
	struct feed *f = arg;

	f->ops.redis_state(f->n, up, rconn_url(rc), rconn_last_error(rc));
	if (!up)
		return;
	if (f->positioned && rconn_ctx(rc) && !f->reading &&
	    rconn_connects(rc) > 1)
		live_ask(f, ASK_INFO, "XINFO STREAM %s", f->key);
	else
		read_next(f);
}

/* ---- replay ---- */

struct replay {
	struct feed *f;
	struct replay_reader rd;
	struct sid cursor, upto;
	char cursor_text[NOTIFY_ID_LEN], upto_text[NOTIFY_ID_LEN];
	struct event *wait;	/* the reader is not placed yet */
	int waited;
};

static void
replay_end(struct replay *rp, int result)
{
	rp->f->replays_running--;
	if (rp->wait)
		event_free(rp->wait);
	rp->rd.done(rp->rd.arg, result);
	free(rp);
}

/* Whether the reader still takes messages (of klass, unless NULL). */
static int
wanted(struct replay *rp, const char *klass)
{
	return rp->rd.wants(rp->rd.arg, klass);
}

static void replay_step(struct replay *rp);

static void
on_range(redisAsyncContext *ac, void *reply, void *arg)
{
	struct replay *rp = arg;
	struct feed *f = rp->f;
	redisReply *r = reply, *topic, *msg;
	size_t i, fl;
	char *frame;
	jv m;
	int stop = 0;

	(void)ac;
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || !wanted(rp, NULL)) {
		replay_end(rp, wanted(rp, NULL) ? -1 : 0);
		return;
	}
	for (i = 0; i < r->elements && !stop; i++) {
		redisReply *e = r->element[i];

		if (e->type != REDIS_REPLY_ARRAY || e->elements < 1)
			continue;
		sid_parse(e->element[0]->str, &rp->cursor);
		snprintf(rp->cursor_text, sizeof rp->cursor_text, "%s",
		    e->element[0]->str);
		entry_fields(e, &topic, &msg);
		if (topic == NULL || msg == NULL ||
		    strncmp(topic->str, "class:", 6) != 0 ||
		    !wanted(rp, topic->str + 6))
			continue;
		m = jv_parse_sized(msg->str, (int)msg->len);
		if (jv_get_kind(m) != JV_KIND_OBJECT) {
			jv_free(m);
			continue;
		}
		frame = frame_of(e->element[0]->str, topic->str, m, msg->str,
		    msg->len, &fl);
		jv_free(m);
		if (frame)
			stop = rp->rd.deliver(rp->rd.arg, e->element[0]->str,
			    frame, fl) < 0;
		else
			f->n->oom_dropped++;
		free(frame);
		f->n->replayed++;
	}
	if (stop) {
		replay_end(rp, 0);
		return;
	}
	if (r->elements == FEED_COUNT) {
		replay_step(rp);
		return;
	}
	/* all up to upto is sent: live from here, unless the live reader
	 * moved on meanwhile */
	if (sid_cmp(rp->upto, f->pos) == 0) {
		replay_end(rp, 0);
		return;
	}
	rp->cursor = rp->upto;
	memcpy(rp->cursor_text, rp->upto_text, sizeof rp->cursor_text);
	replay_step(rp);
}

static void
replay_step(struct replay *rp)
{
	struct feed *f = rp->f;
	redisAsyncContext *ac = rconn_ctx(f->query);

	rp->upto = f->pos;
	memcpy(rp->upto_text, f->pos_text, sizeof rp->upto_text);
	if (sid_cmp(rp->cursor, rp->upto) >= 0) {
		replay_end(rp, 0);
		return;
	}
	if (ac == NULL) {
		replay_end(rp, -1);
		return;
	}
	redisAsyncCommand(ac, on_range, rp, "XRANGE %s (%s %s COUNT %d",
	    f->key, rp->cursor_text, rp->upto_text, FEED_COUNT);
}

/* Is everything after since still in the stream, by XINFO STREAM's reply?
 * Trimming takes entries from the head, so an id older than the first entry
 * may have lost what followed it (an id trimmed alone gives one resync too
 * many, never a silent gap); XDEL shows in max-deleted-entry-id; an id
 * beyond the last one is from another stream. 1 for a gap, -1 when the
 * reply is not what was asked. */
static int
stream_gap(redisReply *r, struct sid since)
{
	struct sid maxdel = { 0, 0 }, last = { 0, 0 }, first = { 0, 0 };
	struct sid zero = { 0, 0 };
	long long length = 0, added = 0;
	int have_first = 0;
	size_t i;

	if (r->type == REDIS_REPLY_ERROR)	/* no such stream */
		return sid_cmp(since, zero) == 0 ? 0 : 1;
	if (r->type != REDIS_REPLY_ARRAY)
		return -1;
	for (i = 0; i + 1 < r->elements; i += 2) {
		const char *k = r->element[i]->str;
		redisReply *v = r->element[i + 1];

		if (k == NULL)
			continue;
		if (strcmp(k, "max-deleted-entry-id") == 0 &&
		    v->type == REDIS_REPLY_STRING)
			sid_parse(v->str, &maxdel);
		else if (strcmp(k, "last-generated-id") == 0 &&
		    v->type == REDIS_REPLY_STRING)
			sid_parse(v->str, &last);
		else if (strcmp(k, "length") == 0 && v->type == REDIS_REPLY_INTEGER)
			length = v->integer;
		else if (strcmp(k, "entries-added") == 0 &&
		    v->type == REDIS_REPLY_INTEGER)
			added = v->integer;
		else if (strcmp(k, "first-entry") == 0 &&
		    v->type == REDIS_REPLY_ARRAY && v->elements > 0 &&
		    v->element[0]->type == REDIS_REPLY_STRING)
			have_first = sid_parse(v->element[0]->str, &first) == 0;
	}
	if (sid_cmp(since, last) > 0)
		return 1;
	if (sid_cmp(since, zero) == 0)
		return added > length;
	if (sid_cmp(maxdel, since) > 0)
		return 1;
	if (have_first)
		return sid_cmp(since, first) < 0;
	return sid_cmp(since, last) < 0;	/* empty: whole if since was last */
}

static void
on_info(redisAsyncContext *ac, void *reply, void *arg)
{
	struct replay *rp = arg;
	int gap;

	(void)ac;
	if (!wanted(rp, NULL)) {
		replay_end(rp, 0);
		return;
	}
	if (reply == NULL || (gap = stream_gap(reply, rp->cursor)) < 0) {
		replay_end(rp, -1);
		return;
	}
	if (gap) {
		replay_end(rp, 1);
		return;
	}
	replay_step(rp);
}

static void replay_begin(struct replay *rp);

static void
on_replay_wait(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	replay_begin(arg);
}

/* Right after a restart, a storm of dashboards may come back before the
 * reader has placed itself in the stream, or while Redis is reached: they
 * wait a little for it rather than being closed and coming back again. */
static void
replay_begin(struct replay *rp)
{
	struct feed *f = rp->f;
	redisAsyncContext *ac = rconn_ctx(f->query);
	struct timeval tv = { 0, REPLAY_WAIT_US };

	if (!wanted(rp, NULL)) {
		replay_end(rp, 0);
		return;
	}
	if (ac == NULL || !f->positioned) {
		if (rp->waited++ >= REPLAY_WAIT_TRIES || f->n->d.stop ||
		    (rp->wait == NULL && (rp->wait = evtimer_new(f->n->base,
		    on_replay_wait, rp)) == NULL)) {
			replay_end(rp, -1);
			return;
		}
		evtimer_add(rp->wait, &tv);
		return;
	}
	redisAsyncCommand(ac, on_info, rp, "XINFO STREAM %s", f->key);
}

void
feed_replay(struct notify *n, const char *since,
    const struct replay_reader *rd)
{
	struct feed *f = n->feed;
	struct replay *rp;

	rp = calloc(1, sizeof *rp);
	if (rp == NULL) {
		rd->done(rd->arg, -1);
		return;
	}
	rp->f = f;
	rp->rd = *rd;
	f->replays_running++;
	if (sid_parse(since, &rp->cursor) < 0) {
		replay_end(rp, 1);
		return;
	}
	snprintf(rp->cursor_text, sizeof rp->cursor_text, "%" PRIu64 "-%"
	    PRIu64, rp->cursor.ms, rp->cursor.seq);
	n->replays++;
	if (f->in || f->query == NULL) {
		/* a pipe keeps no history: only the current position is whole */
		replay_end(rp, sid_cmp(rp->cursor, f->pos) == 0 ? 0 : 1);
		return;
	}
	replay_begin(rp);
}

/* ---- pipe mode ---- */

static void
on_line_input(struct evbuffer *in, void *arg)
{
	struct feed *f = arg;
	char *line, id[NOTIFY_ID_LEN];
	size_t len;
	struct sid last;

	while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF)) != NULL) {
		/* checked first: jq's parser keeps what it says of bad JSON */
		jv m = json_valid(line, len) ? jv_parse_sized(line, (int)len) :
		    jv_invalid(), t;

		if (len == 0 || strspn(line, " \t\r") == len) {
			jv_free(m);
			free(line);
			continue;
		}
		t = jv_is_valid(m) && jv_get_kind(m) == JV_KIND_OBJECT ?
		    jv_object_get(jv_copy(m), jv_string("topic")) : jv_invalid();
		/* the position moves when the message is dispatched */
		last = f->pos;
		sid_format(sid_next(&last, (uint64_t)(stats_now_us() / 1000)),
		    id);
		if (jv_get_kind(t) != JV_KIND_STRING) {
			f->bad_messages++;
			log_warn("input line is not a message with a topic; "
			    "skipped");
		} else {
			feed_message(f, id, jv_string_value(t), line, len);
		}
		jv_free(t);
		jv_free(m);
		free(line);
	}
}

static void
on_line_end(int error, void *arg)
{
	struct feed *f = arg;

	if (error == EMSGSIZE)
		log_error("cannot read %s: a line longer than %d bytes",
		    f->n->cfg.from, NINPUT_LINE_MAX);
	else if (error)
		log_error("cannot read %s: %s", f->n->cfg.from,
		    strerror(error));
	else
		log_info("input ended; dashboards stay connected");
	f->in_eof = 1;
}

static const struct ninput_ops line_ops = { on_line_input, on_line_end };

int
feed_open(struct notify *n, const struct feed_ops *ops, char *err,
    size_t errlen)
{
	struct feed *f = calloc(1, sizeof *f);
	int fd;

	if (f == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ERR_OS;
	}
	f->n = n;
	f->ops = *ops;
	n->feed = f;
	strcpy(f->pos_text, "0-0");
	if (n->from.kind == ADDR_STREAM) {
		snprintf(f->key, sizeof f->key, "labpulse:%s", n->from.stream);
		if ((f->live = rconn_new(n->base, n->cfg.redis_url, err,
		    errlen)) == NULL || (f->query = rconn_new(n->base,
		    n->cfg.redis_url, err, errlen)) == NULL)
			return -ERR_CONFIG;
		rconn_on_state(f->live, on_live_state, f);
		rconn_start(f->live);
		rconn_start(f->query);
		return 0;
	}
	if ((fd = addr_open_input(&n->from, err, errlen)) < 0)
		return fd;
	f->positioned = 1;
	if ((f->in = ninput_open(n->base, fd, &line_ops, f)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ERR_OS;
	}
	return 0;
}

const char *
feed_position(struct notify *n)
{
	return n->feed->pos_text;
}

int
feed_is_stream(struct notify *n)
{
	return n->feed->live != NULL;
}

int
feed_is_up(struct notify *n)
{
	struct feed *f = n->feed;

	if (f->in)
		return !f->in_eof;
	return rconn_is_up(f->live) && f->positioned;
}

jv
feed_stats(struct notify *n)
{
	struct feed *f = n->feed;
	jv o = jv_object();

	o = jv_object_set(o, jv_string("from"), jv_string(n->cfg.from));
	o = jv_object_set(o, jv_string("position"), jv_string(f->pos_text));
	o = jv_object_set(o, jv_string("bad_messages"), jv_number(f->bad_messages));
	o = jv_object_set(o, jv_string("other_topics"), jv_number(f->other_topics));
	o = jv_object_set(o, jv_string("gaps"), jv_number(f->gaps));
	if (f->live) {
		o = jv_object_set(o, jv_string("stream"), jv_string(f->key));
		o = jv_object_set(o, jv_string("url"),
		    jv_string(rconn_url(f->live)));
		o = jv_object_set(o, jv_string("connected"),
		    jv_bool(rconn_is_up(f->live) && rconn_is_up(f->query)));
		o = jv_object_set(o, jv_string("connects"),
		    jv_number(rconn_connects(f->live) + rconn_connects(f->query)));
		o = jv_object_set(o, jv_string("losses"),
		    jv_number(rconn_losses(f->live) + rconn_losses(f->query)));
		if (!rconn_is_up(f->live) && rconn_last_error(f->live)[0])
			o = jv_object_set(o, jv_string("last_error"),
			    jv_string(rconn_last_error(f->live)));
	} else {
		o = jv_object_set(o, jv_string("input_ended"), jv_bool(f->in_eof));
	}
	return o;
}

jv
feed_pool(struct notify *n)
{
	struct feed *f = n->feed;
	int live = rconn_is_up(f->live), query = rconn_is_up(f->query);
	/* the live connection waits in XREAD, for the stream as batch-commit's
	 * and route's readers do: idle; the other is busy while it serves
	 * replays */
	int busy = query && f->replays_running > 0;
	struct stats_pool p = { "redis", live && query, 2, busy,
	    live + (query && !busy), 0, 0 };

	return stats_pool(&p);
}

void
feed_close(struct notify *n)
{
	struct feed *f = n->feed;

	if (f == NULL)
		return;
	rconn_free(f->live);
	rconn_free(f->query);
	ninput_free(f->in);
	free(f);
	n->feed = NULL;
}
