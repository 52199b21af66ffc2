/* hooks.c: hook messages (topic hook:NAME, written by route to the hooks
 * stream) delivered to the destinations of the hooks file: webhooks and
 * Telegram chats, over libcurl on notify's loop. Each destination has its
 * queue, in stream order, one request in flight, a token bucket that
 * spreads a burst rather than refusing it, and a backoff after failures.
 * An entry is acknowledged in the group only once its destination
 * answered 2xx or it was written to the dead-letter stream: a notify that
 * dies leaves the rest pending, for the next to claim (XAUTOCLAIM). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "err.h"
#include "hookfile.h"
#include "json.h"
#include "log.h"
#include "notify.h"
#include "pace.h"
#include "redis.h"
#include "stats.h"
#include "tokens.h"

#define HOOKS_READ_COUNT	200	/* entries per read or claim */
#define HOOKS_BLOCK_MS		"2000"
#define HOOKS_BACKOFF_CAP_US	(300 * (int64_t)1000000)
#define HOOKS_RESP_KEEP		4096	/* bytes of an answer kept */
#define HOOKS_EXCERPT		200	/* of them, in a dead letter */
#define HOOKS_DEAD_MAXLEN	"100000"	/* dead letters kept */
#define HOOKS_CLAIM_EVERY_US	1000000
#define HOOKS_LATE_US		2000	/* a timer's lateness made good */
#define NO_TEXT	"no text for Telegram: msg has no string field text"
/* Telegram's documented limits, kept without being told. */
#define TG_GROUP_RATE		(20.0 / 60)
#define TG_BOT_RATE		30.0

struct hmsg {
	TAILQ_ENTRY(hmsg) link;
	char id[NOTIFY_ID_LEN];
	int64_t born_us;	/* wall clock: the id's time, or when read */
	int attempts;
	char *topic, *msg;	/* msg: the message as JSON, sent as it is */
	size_t msglen;
	char *text;		/* Telegram's text */
};
TAILQ_HEAD(hmsg_list, hmsg);

/* Telegram's bot-wide limit, one per token. */
struct bot {
	char *token;
	struct bucket b;
};

struct hdest {
	struct hooks *h;
	char name[HOOK_NAME_MAX + 1];
	struct hookdest conf;	/* a copy; its file names are not used */
	int gone;		/* no longer in the file: dead letters */
	struct hmsg_list q;	/* the head is the one in flight */
	long queued;
	struct bucket b, group_b;
	struct bot *bot;
	char *secret;		/* webhook's HMAC key */
	size_t secretlen;
	int failures;		/* consecutive */
	int64_t retry_at_us;	/* monotonic: no try before */
	int64_t ready_us;	/* since when the head could have gone */
	int64_t due_us;		/* when the timer set was due, or 0 */
	CURL *easy;
	int busy;
	struct curl_slist *hdrs;
	char *body;		/* Telegram's, made for the request */
	char resp[HOOKS_RESP_KEEP];
	size_t resplen;
	char errbuf[CURL_ERROR_SIZE];
	int64_t sent_us;
	struct event *timer;
	long last_status;
	unsigned long sent, retried, rate_limited, dead;
	struct ring latency, wait;
};

struct hooks {
	struct notify *n;
	char path[512];
	struct hdest **dests;
	size_t ndests;
	struct bot *bots;
	size_t nbots;
	struct curlev *curl;
	struct addr from, dead;
	char key[160], dead_key[160], consumer[160];
	const char *group;
	struct rconn *rd, *wr;
	int group_made, reading, own_phase, claiming;
	char own_cursor[NOTIFY_ID_LEN], claim_cursor[NOTIFY_ID_LEN];
	struct event *claim_timer;
	int64_t next_refresh_us;
	jv held;		/* ids in memory: an id read twice is skipped */
	long nheld;
	/* NDJSON */
	struct ninput *in;
	struct evbuffer *inbuf;	/* what was read and not taken */
	int in_paused;
	struct sid pos;
	int stopping;
	unsigned long read, delivered, dead_letters, retried, rate_limited;
	/* acknowledgements and dead letters Redis did not take (away, or
	 * lost): their messages stay pending, to be claimed and sent again;
	 * Redis's loss itself is logged once, by the reader */
	unsigned long not_written;
	unsigned long skipped_dup;
};

static void dest_kick(struct hdest *d);
static void read_more(struct hooks *h);
static void pipe_resume(struct hooks *h);

static int64_t
now_us(void)
{
	return stats_mono_us();
}

/* ---- messages in memory ---- */

static void
msg_free(struct hmsg *m)
{
	if (m == NULL)
		return;
	free(m->topic);
	free(m->msg);
	free(m->text);
	free(m);
}

static int
is_held(struct hooks *h, const char *id)
{
	jv v = jv_object_get(jv_copy(h->held), jv_string(id));
	int yes = jv_is_valid(v);

	jv_free(v);
	return yes;
}

/* A message leaves memory: delivered, dead, or given up to be claimed. */
static void
msg_settle(struct hdest *d, struct hmsg *m)
{
	struct hooks *h = d->h;

	TAILQ_REMOVE(&d->q, m, link);
	d->queued--;
	h->held = jv_object_delete(h->held, jv_string(m->id));
	h->nheld--;
	msg_free(m);
	if (!h->stopping) {
		read_more(h);
		pipe_resume(h);
	}
	if (h->in && ninput_ended(h->in) && h->nheld == 0)
		log_info("hooks: input ended and every message is settled "
		    "delivered=%lu dead=%lu", h->delivered, h->dead_letters);
}

/* ---- acknowledgements and dead letters ---- */

static void
on_written(redisAsyncContext *ac, void *reply, void *arg)
{
	struct hooks *h = arg;
	redisReply *r = reply;

	(void)ac;
	if (r == NULL || r->type == REDIS_REPLY_ERROR ||
	    r->type == REDIS_REPLY_NIL) {
		h->not_written++;
		if (r && r->type == REDIS_REPLY_ERROR)
			log_warn("hooks: a dead letter was not written: %s; "
			    "its message stays pending", r->str);
	}
}

static void
ack(struct hooks *h, const char *id)
{
	redisAsyncContext *ac;

	if (h->from.kind != ADDR_STREAM)
		return;
	if ((ac = rconn_ctx(h->wr)) == NULL) {
		h->not_written++;
		return;
	}
	redisAsyncCommand(ac, NULL, NULL, "XACK %s %s %s", h->key, h->group,
	    id);
}

/* The dead letter of a message, as NDJSON or as a stream entry, and its
 * acknowledgement with it (one transaction). */
static void
dead_letter(struct hooks *h, const char *id, const char *topic,
    const char *msg, size_t msglen, const char *dest, const char *reason,
    int attempts, long status, const char *body, size_t bodylen)
{
	redisAsyncContext *ac;

	h->dead_letters++;
	log_warn("hooks: dead letter id=%s destination=%s attempts=%d "
	    "status=%ld reason=\"%s\"", id, dest, attempts, status, reason);
	if (bodylen > HOOKS_EXCERPT)
		bodylen = HOOKS_EXCERPT;
	if (h->dead.kind != ADDR_STREAM) {
		jv o = jv_object();
		jv s;

		o = jv_object_set(o, jv_string("source"), jv_string(id));
		o = jv_object_set(o, jv_string("topic"), jv_string(topic));
		o = jv_object_set(o, jv_string("msg"),
		    jv_string_sized(msg, (int)msglen));
		o = jv_object_set(o, jv_string("destination"), jv_string(dest));
		o = jv_object_set(o, jv_string("reason"), jv_string(reason));
		o = jv_object_set(o, jv_string("attempts"), jv_number(attempts));
		o = jv_object_set(o, jv_string("status"), jv_number(status));
		o = jv_object_set(o, jv_string("body"),
		    jv_string_sized(body, (int)bodylen));
		s = jv_dump_string(o, 0);
		printf("%s\n", jv_string_value(s));
		fflush(stdout);
		jv_free(s);
		ack(h, id);
		return;
	}
	if ((ac = rconn_ctx(h->wr)) == NULL) {
		h->not_written++;
		return;
	}
	redisAsyncCommand(ac, NULL, NULL, "MULTI");
	redisAsyncCommand(ac, NULL, NULL, "XADD %s MAXLEN ~ %s * source %s "
	    "topic %s msg %b destination %s reason %s attempts %d status %ld "
	    "body %b", h->dead_key, HOOKS_DEAD_MAXLEN, id, topic, msg, msglen,
	    dest, reason, attempts, status, body, bodylen);
	if (h->from.kind == ADDR_STREAM)
		redisAsyncCommand(ac, NULL, NULL, "XACK %s %s %s", h->key,
		    h->group, id);
	redisAsyncCommand(ac, on_written, h, "EXEC");
}

/* ---- destinations ---- */

static struct hdest *
dest_find(struct hooks *h, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < h->ndests; i++)
		if (strlen(h->dests[i]->name) == len &&
		    memcmp(h->dests[i]->name, name, len) == 0)
			return h->dests[i];
	return NULL;
}

static void
dest_dead(struct hdest *d, struct hmsg *m, const char *reason)
{
	dead_letter(d->h, m->id, m->topic, m->msg, m->msglen, d->name, reason,
	    m->attempts, d->last_status, d->resp, d->resplen);
	d->dead++;
	msg_settle(d, m);
}

static size_t
on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct hdest *d = arg;
	size_t len = size * nmemb, room = sizeof d->resp - 1 - d->resplen;

	memcpy(d->resp + d->resplen, p, len < room ? len : room);
	d->resplen += len < room ? len : room;
	d->resp[d->resplen] = '\0';
	return len;
}

static int
add_header(struct curl_slist **l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int
add_header(struct curl_slist **l, const char *fmt, ...)
{
	char line[256];
	struct curl_slist *n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if ((n = curl_slist_append(*l, line)) == NULL)
		return -1;
	*l = n;
	return 0;
}

/* The request of the head message: -1 when memory ran out. */
static int
dest_request(struct hdest *d, struct hmsg *m)
{
	struct hooks *h = d->h;
	CURL *e = d->easy;
	char url[HOOK_URL_MAX + 512];
	const char *api;

	curl_easy_reset(e);
	curl_slist_free_all(d->hdrs);
	d->hdrs = NULL;
	free(d->body);
	d->body = NULL;
	if (add_header(&d->hdrs, "Content-Type: application/json") < 0 ||
	    add_header(&d->hdrs, "User-Agent: labpulse-notify/%s",
	    LABPULSE_VERSION) < 0 || add_header(&d->hdrs, "Expect:") < 0)
		return -1;
	if (d->conf.kind == HOOK_TELEGRAM) {
		jv t = jv_dump_string(jv_string(m->text), 0);
		int chat_is_name = d->conf.target[0] == '@';

		if (asprintf(&d->body, "{\"chat_id\":%s%s%s,\"text\":%s}",
		    chat_is_name ? "\"" : "", d->conf.target,
		    chat_is_name ? "\"" : "", jv_string_value(t)) < 0)
			d->body = NULL;
		jv_free(t);
		if (d->body == NULL)
			return -1;
		api = h->n->cfg.telegram_api;
		snprintf(url, sizeof url, "%.*s/bot%s/sendMessage",
		    (int)(strlen(api) - (api[strlen(api) - 1] == '/')), api,
		    d->bot->token);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(d->body));
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, d->body);
	} else {
		if (add_header(&d->hdrs, "Idempotency-Key: %s", m->id) < 0)
			return -1;
		if (d->secret) {
			char mac[TOKENS_HEX_SIZE];

			tokens_hmac_sha256_hex(d->secret, d->secretlen, m->msg,
			    m->msglen, mac);
			if (add_header(&d->hdrs,
			    "X-Labpulse-Signature: sha256=%s", mac) < 0)
				return -1;
		}
		snprintf(url, sizeof url, "%s", d->conf.target);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)m->msglen);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, m->msg);
	}
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, d->hdrs);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, h->n->cfg.hook_timeout_ms);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, d);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, d->errbuf);
	d->resplen = 0;
	d->resp[0] = '\0';
	d->errbuf[0] = '\0';
	return 0;
}

/* Telegram's parameters.retry_after, in seconds, or -1. */
static int64_t
telegram_retry_after(struct hdest *d)
{
	jv o = jv_parse_sized(d->resp, (int)d->resplen), p;
	int64_t s = -1;

	if (jv_get_kind(o) == JV_KIND_OBJECT) {
		p = jv_object_get(o, jv_string("parameters"));
		if (jv_get_kind(p) == JV_KIND_OBJECT) {
			jv ra = jv_object_get(p, jv_string("retry_after"));

			if (jv_get_kind(ra) == JV_KIND_NUMBER &&
			    jv_number_value(ra) >= 0 &&
			    jv_number_value(ra) <= 86400)
				s = (int64_t)jv_number_value(ra);
			jv_free(ra);
		} else {
			jv_free(p);
		}
	} else {
		jv_free(o);
	}
	return s;
}

/* How long a 429 asks to wait, in microseconds; -1 when it does not say. */
static int64_t
rate_limit_wait(struct hdest *d)
{
	struct curl_header *hd;
	int64_t s;

	if (d->conf.kind == HOOK_TELEGRAM &&
	    (s = telegram_retry_after(d)) >= 0)
		return s * 1000000;
	if (curl_easy_header(d->easy, "Retry-After", 0, CURLH_HEADER, -1,
	    &hd) == CURLHE_OK)
		return retry_after_us(hd->value, stats_now_us());
	return -1;
}

/* A try that failed and may be tried again. */
static void
dest_failed(struct hdest *d, struct hmsg *m, const char *why)
{
	struct hooks *h = d->h;
	char reason[CURL_ERROR_SIZE + 128];
	int64_t cap = HOOKS_BACKOFF_CAP_US, base;

	d->failures++;
	if (m->attempts >= h->n->cfg.hook_max_attempts) {
		snprintf(reason, sizeof reason, "no success in %d attempts; "
		    "the last: %s", m->attempts, why);
		dest_dead(d, m, reason);
		return;
	}
	base = h->n->cfg.hook_backoff_ms * 1000;
	if (base > cap)
		cap = base;
	d->retry_at_us = now_us() + backoff_us(base, cap, d->failures,
	    arc4random());
	d->retried++;
	h->retried++;
	log_info("hooks: retry destination=%s id=%s attempt=%d in_ms=%lld "
	    "reason=\"%s\"", d->name, m->id, m->attempts,
	    (long long)((d->retry_at_us - now_us()) / 1000), why);
}

static void
on_done(void *easy, int code, void *arg)
{
	struct hdest *d = arg;
	struct hooks *h = d->h;
	struct hmsg *m = TAILQ_FIRST(&d->q);
	char why[CURL_ERROR_SIZE + 64];
	long status = 0;
	int64_t wait, t = now_us();

	d->busy = 0;
	ring_add(&d->latency, (uint64_t)(t - d->sent_us));
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	if (code != CURLE_OK) {
		snprintf(why, sizeof why, "%s", d->errbuf[0] ? d->errbuf :
		    curl_easy_strerror(code));
		d->last_status = 0;
		dest_failed(d, m, why);
	} else if ((d->last_status = status) >= 200 && status < 300) {
		d->failures = 0;
		d->sent++;
		h->delivered++;
		ack(h, m->id);
		msg_settle(d, m);
	} else if (status == 429) {
		d->rate_limited++;
		h->rate_limited++;
		m->attempts--;	/* asked to wait: not a failed try */
		if ((wait = rate_limit_wait(d)) < 0) {
			dest_failed(d, m, "HTTP 429 without Retry-After");
		} else {
			bucket_hold(&d->b, t + wait);
			log_info("hooks: rate limited destination=%s "
			    "wait_ms=%lld", d->name, (long long)(wait / 1000));
		}
	} else if (status >= 500) {
		snprintf(why, sizeof why, "HTTP %ld", status);
		dest_failed(d, m, why);
	} else {
		snprintf(why, sizeof why, "HTTP %ld: final, not retried",
		    status);
		dest_dead(d, m, why);
	}
	d->ready_us = t;
	dest_kick(d);
}

static void
on_dest_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dest_kick(arg);
}

static int64_t
max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/* Send the head of d's queue when d is free, its buckets hold a token and
 * no backoff runs; else wake when that may be so. */
static void
dest_kick(struct hdest *d)
{
	struct hooks *h = d->h;
	struct hmsg *m;
	int64_t t, wait;
	struct timeval tv;

	while (!d->busy && !h->stopping && (m = TAILQ_FIRST(&d->q)) != NULL) {
		if (d->gone) {
			char reason[HOOK_NAME_MAX + sizeof h->path + 64];

			snprintf(reason, sizeof reason, "destination %s is no "
			    "longer in %s", d->name, h->path);
			dest_dead(d, m, reason);
			continue;
		}
		if (stats_now_us() - m->born_us > h->n->cfg.hook_max_age_ms *
		    1000) {
			dest_dead(d, m, "older than --hook-max-age");
			continue;
		}
		if (d->conf.kind == HOOK_TELEGRAM && m->text == NULL) {
			/* the destination became a chat at a reload */
			dest_dead(d, m, NO_TEXT);
			continue;
		}
		t = now_us();
		/* A timer fires a millisecond or so late (epoll counts
		 * milliseconds): the token it waited for was due at due_us,
		 * and taking it as of then keeps the rate, which lateness
		 * at each send would lower by a few percent. */
		if (d->due_us && t > d->due_us && t - d->due_us <= HOOKS_LATE_US)
			t = d->due_us;
		d->due_us = 0;
		wait = max64(d->retry_at_us - t, bucket_wait_us(&d->b, t));
		if (d->conf.group)
			wait = max64(wait, bucket_wait_us(&d->group_b, t));
		if (d->bot)
			wait = max64(wait, bucket_wait_us(&d->bot->b, t));
		if (wait > 0) {
			tv.tv_sec = wait / 1000000;
			tv.tv_usec = wait % 1000000;
			evtimer_add(d->timer, &tv);
			d->due_us = t + wait;
			return;
		}
		bucket_take(&d->b, t);
		if (d->conf.group)
			bucket_take(&d->group_b, t);
		if (d->bot)
			bucket_take(&d->bot->b, t);
		ring_add(&d->wait, (uint64_t)(t - max64(d->ready_us,
		    d->retry_at_us)));
		if (dest_request(d, m) < 0 ||
		    curlev_add(h->curl, d->easy, on_done, d) < 0) {
			log_warn("hooks: out of memory; %s retried", m->id);
			d->retry_at_us = t + 1000000;
			continue;
		}
		m->attempts++;
		d->busy = 1;
		d->sent_us = now_us();
	}
}

/* A message for d, at the tail of its queue. */
static void
dest_push(struct hdest *d, struct hmsg *m)
{
	struct hooks *h = d->h;

	h->held = jv_object_set(h->held, jv_string(m->id), jv_true());
	h->nheld++;
	if (TAILQ_EMPTY(&d->q))
		d->ready_us = now_us();
	TAILQ_INSERT_TAIL(&d->q, m, link);
	d->queued++;
	dest_kick(d);
}

/* ---- taking a message in ---- */

/* id's time in microseconds, or now when it has none. */
static int64_t
id_time_us(const char *id)
{
	struct sid s;

	if (sid_parse(id, &s) == 0 && s.ms > 0)
		return (int64_t)s.ms * 1000;
	return stats_now_us();
}

/* An entry or NDJSON line: to its destination's queue, or a dead letter. */
static void
take(struct hooks *h, const char *id, const char *topic, const char *msg,
    size_t msglen)
{
	struct hdest *d = NULL;
	struct hmsg *m;
	char reason[256];
	const char *name = topic && strncmp(topic, "hook:", 5) == 0 ?
	    topic + 5 : "";
	jv o, text = jv_invalid();

	if (is_held(h, id)) {
		h->skipped_dup++;
		return;
	}
	h->read++;
	/* checked first: jq's parser keeps what it says of bad JSON */
	o = msg && json_valid(msg, msglen) ? jv_parse_sized(msg, (int)msglen) :
	    jv_invalid();
	if (msg == NULL)
		snprintf(reason, sizeof reason, "no msg field");
	else if (jv_get_kind(o) != JV_KIND_OBJECT)
		snprintf(reason, sizeof reason, "msg is not a JSON object");
	else if (topic == NULL)
		snprintf(reason, sizeof reason, "no topic");
	else if (*name == '\0')
		snprintf(reason, sizeof reason, "topic %.200s is not hook:NAME",
		    topic);
	else if ((d = dest_find(h, name, strlen(name))) == NULL ||
	    d->gone)
		snprintf(reason, sizeof reason, "no destination %.*s in the "
		    "hooks file", HOOK_NAME_MAX, name);
	else if (d->conf.kind == HOOK_TELEGRAM &&
	    jv_get_kind(text = jv_object_get(jv_copy(o), jv_string("text"))) !=
	    JV_KIND_STRING)
		snprintf(reason, sizeof reason, NO_TEXT);
	else
		reason[0] = '\0';
	jv_free(o);
	if (reason[0]) {
		jv_free(text);
		dead_letter(h, id, topic ? topic : "", msg ? msg : "",
		    msg ? msglen : 0, name, reason, 0, 0, "", 0);
		return;
	}
	if ((m = calloc(1, sizeof *m)) == NULL ||
	    (m->topic = strdup(topic)) == NULL ||
	    (m->msg = malloc(msglen + 1)) == NULL ||
	    (jv_is_valid(text) && (m->text = strdup(jv_string_value(text))) ==
	    NULL)) {
		jv_free(text);
		msg_free(m);
		log_warn("hooks: out of memory; %s left pending", id);
		return;
	}
	jv_free(text);
	memcpy(m->msg, msg, msglen);
	m->msg[msglen] = '\0';
	m->msglen = msglen;
	snprintf(m->id, sizeof m->id, "%s", id);
	m->born_us = h->from.kind == ADDR_STREAM ? id_time_us(id) :
	    stats_now_us();
	dest_push(d, m);
}

/* The entries of an XREADGROUP or XAUTOCLAIM reply: [[id, [f, v, ...]]]. */
static int
take_entries(struct hooks *h, redisReply *list, char *last, size_t lastlen)
{
	size_t i, j;
	int n = 0;

	for (i = 0; i < list->elements; i++) {
		redisReply *e = list->element[i], *f;
		const char *topic = NULL, *msg = NULL;
		size_t msglen = 0;

		if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
		    e->element[0]->type != REDIS_REPLY_STRING)
			continue;
		snprintf(last, lastlen, "%s", e->element[0]->str);
		n++;
		f = e->element[1];
		if (f->type != REDIS_REPLY_ARRAY) {
			/* deleted (trimmed) while pending: nothing to send */
			ack(h, e->element[0]->str);
			continue;
		}
		for (j = 0; j + 1 < f->elements; j += 2) {
			if (f->element[j]->type != REDIS_REPLY_STRING ||
			    f->element[j + 1]->type != REDIS_REPLY_STRING)
				continue;
			if (strcmp(f->element[j]->str, "topic") == 0)
				topic = f->element[j + 1]->str;
			else if (strcmp(f->element[j]->str, "msg") == 0) {
				msg = f->element[j + 1]->str;
				msglen = f->element[j + 1]->len;
			}
		}
		take(h, e->element[0]->str, topic, msg, msglen);
	}
	return n;
}

/* ---- the stream ---- */

static long
room(struct hooks *h)
{
	long r = h->n->cfg.hook_queue - h->nheld;

	return r < HOOKS_READ_COUNT ? r : HOOKS_READ_COUNT;
}

static void
on_read(redisAsyncContext *ac, void *reply, void *arg)
{
	struct hooks *h = arg;
	redisReply *r = reply;
	char last[NOTIFY_ID_LEN] = "";
	int n = 0;

	(void)ac;
	h->reading = 0;
	if (r == NULL)
		return;	/* lost: read again once back */
	if (r->type == REDIS_REPLY_ERROR) {
		log_warn("hooks: reading %s: %s", h->key, r->str);
		if (strncmp(r->str, "NOGROUP", 7) == 0)
			rconn_reset(h->rd, r->str);
		return;
	}
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
	    r->element[0]->elements == 2)
		n = take_entries(h, r->element[0]->element[1], last,
		    sizeof last);
	if (h->own_phase) {
		if (n == 0)
			h->own_phase = 0;
		else
			snprintf(h->own_cursor, sizeof h->own_cursor, "%s",
			    last);
	}
	read_more(h);
}

static void
read_more(struct hooks *h)
{
	redisAsyncContext *ac;
	long n;

	if (h->rd == NULL || (ac = rconn_ctx(h->rd)) == NULL || h->reading ||
	    h->stopping || !h->group_made || (n = room(h)) <= 0)
		return;
	h->reading = 1;
	if (h->own_phase)
		redisAsyncCommand(ac, on_read, h, "XREADGROUP GROUP %s %s "
		    "COUNT %ld STREAMS %s %s", h->group, h->consumer, n,
		    h->key, h->own_cursor);
	else
		redisAsyncCommand(ac, on_read, h, "XREADGROUP GROUP %s %s "
		    "COUNT %ld BLOCK " HOOKS_BLOCK_MS " STREAMS %s >",
		    h->group, h->consumer, n, h->key);
}

static void
on_group(redisAsyncContext *ac, void *reply, void *arg)
{
	struct hooks *h = arg;
	redisReply *r = reply;

	(void)ac;
	if (r == NULL)
		return;
	if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9)) {
		log_warn("hooks: cannot make group %s of %s: %s", h->group,
		    h->key, r->str);
		return;
	}
	h->group_made = 1;
	read_more(h);
}

static void
on_rd_state(struct rconn *rc, int up, void *arg)
{
	struct hooks *h = arg;

	daemon_redis_state(&h->n->d, rconn_url(rc), up, rconn_last_error(rc));
	h->reading = 0;
	h->group_made = 0;
	if (!up)
		return;
	/* our own pending entries first: those a lost acknowledgement left */
	h->own_phase = 1;
	snprintf(h->own_cursor, sizeof h->own_cursor, "0");
	redisAsyncCommand(rconn_ctx(rc), on_group, h, "XGROUP CREATE %s %s 0 "
	    "MKSTREAM", h->key, h->group);
}

static void
on_claim(redisAsyncContext *ac, void *reply, void *arg)
{
	struct hooks *h = arg;
	redisReply *r = reply;
	char last[NOTIFY_ID_LEN];
	int n = 0;

	(void)ac;
	h->claiming = 0;
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING)
		return;
	snprintf(h->claim_cursor, sizeof h->claim_cursor, "%s",
	    r->element[0]->str);
	if (r->element[1]->type == REDIS_REPLY_ARRAY)
		n = take_entries(h, r->element[1], last, sizeof last);
	if (n > 0)
		log_info("hooks: took over %d pending messages", n);
}

/* Our messages in memory marked as read now (XCLAIM JUSTID to ourselves),
 * so that no other consumer takes over a message we still hold. */
static void
refresh_held(struct hooks *h, redisAsyncContext *ac)
{
	const char *argv[1000 + 7];
	size_t i, argc = 0;
	struct hmsg *m;

	for (i = 0; i < h->ndests; i++) {
		TAILQ_FOREACH(m, &h->dests[i]->q, link) {
			if (argc == 0) {
				argv[argc++] = "XCLAIM";
				argv[argc++] = h->key;
				argv[argc++] = h->group;
				argv[argc++] = h->consumer;
				argv[argc++] = "0";
			}
			argv[argc++] = m->id;
			if (argc == 1000 + 5) {
				argv[argc++] = "JUSTID";
				redisAsyncCommandArgv(ac, NULL, NULL, (int)argc,
				    argv, NULL);
				argc = 0;
			}
		}
	}
	if (argc > 0) {
		argv[argc++] = "JUSTID";
		redisAsyncCommandArgv(ac, NULL, NULL, (int)argc, argv, NULL);
	}
}

/* Every second: entries a dead consumer left pending, and ours kept
 * fresh. */
static void
on_claim_timer(evutil_socket_t fd, short what, void *arg)
{
	struct hooks *h = arg;
	redisAsyncContext *ac = rconn_ctx(h->wr);
	int64_t t = now_us();
	long n;

	(void)fd;
	(void)what;
	if (ac == NULL || !h->group_made || h->stopping)
		return;
	if (t >= h->next_refresh_us) {
		refresh_held(h, ac);
		h->next_refresh_us = t + h->n->cfg.claim_idle_ms * 500;
	}
	if (h->claiming || (n = room(h)) <= 0)
		return;
	h->claiming = 1;
	redisAsyncCommand(ac, on_claim, h, "XAUTOCLAIM %s %s %s %ld %s COUNT "
	    "%ld", h->key, h->group, h->consumer, h->n->cfg.claim_idle_ms,
	    h->claim_cursor, n);
}

/* ---- NDJSON ---- */

/* The whole lines of buf, while there is room for them; reading stops
 * when there is none, and goes on from pipe_resume. */
static void
pipe_take(struct evbuffer *buf, void *arg)
{
	struct hooks *h = arg;
	char *line, id[NOTIFY_ID_LEN];
	size_t len;

	while (h->nheld < h->n->cfg.hook_queue &&
	    (line = evbuffer_readln(buf, &len, EVBUFFER_EOL_LF)) != NULL) {
		jv o = jv_invalid(), t = jv_invalid();

		if (strspn(line, " \t\r") == len) {
			free(line);
			continue;
		}
		sid_format(sid_next(&h->pos, (uint64_t)(stats_now_us() /
		    1000)), id);
		if (json_valid(line, len))
			o = jv_parse_sized(line, (int)len);
		if (jv_get_kind(o) == JV_KIND_OBJECT)
			t = jv_object_get(jv_copy(o), jv_string("topic"));
		take(h, id, jv_get_kind(t) == JV_KIND_STRING ?
		    jv_string_value(t) : NULL, line, len);
		jv_free(t);
		jv_free(o);
		free(line);
	}
	h->in_paused = h->nheld >= h->n->cfg.hook_queue;
	if (h->in_paused)
		ninput_reading(h->in, 0);
}

static void
pipe_resume(struct hooks *h)
{
	if (h->in == NULL || !h->in_paused)
		return;
	h->in_paused = 0;
	/* lines read before the pause first; after the end, only those */
	pipe_take(h->inbuf, h);
	if (!h->in_paused)
		ninput_reading(h->in, 1);
}

static void
pipe_end(int error, void *arg)
{
	struct hooks *h = arg;

	if (error == EMSGSIZE)
		log_error("hooks: %s: a line longer than %d bytes; reading "
		    "stops", h->n->cfg.hooks_from, NINPUT_LINE_MAX);
	else if (error)
		log_error("hooks: cannot read %s: %s", h->n->cfg.hooks_from,
		    strerror(error));
	log_info("hooks: input ended; %ld messages still to deliver",
	    h->nheld);
}

/* pipe_take, keeping the buffer for pipe_resume. */
static void
pipe_lines(struct evbuffer *buf, void *arg)
{
	struct hooks *h = arg;

	h->inbuf = buf;
	pipe_take(buf, h);
}

static const struct ninput_ops pipe_ops = { pipe_lines, pipe_end };

/* ---- the file ---- */

static struct bot *
bot_for(struct hooks *h, const char *token)
{
	size_t i;

	for (i = 0; i < h->nbots; i++)
		if (strcmp(h->bots[i].token, token) == 0)
			return &h->bots[i];
	return NULL;
}

/* Secrets and tokens of the file hf, into a new set of destinations
 * matched by name with the old: -ERR_KIND with err. */
static int
read_secrets(struct hooks *h, const struct hookfile *hf, char **secrets,
    size_t *secretlens, char **tokens, char *err, size_t errlen)
{
	const char *env = getenv("LABPULSE_TELEGRAM_TOKEN");
	size_t i, len;
	int rc;

	(void)h;
	for (i = 0; i < hf->n; i++) {
		const struct hookdest *c = &hf->d[i];

		if (c->secret_file && (rc = hookfile_read_secret(c->secret_file,
		    HOOK_SECRET_MAX, &secrets[i], &secretlens[i], err,
		    errlen)) < 0)
			return rc == -ERR_NOINPUT ? -ERR_CONFIG : rc;
		if (c->kind != HOOK_TELEGRAM)
			continue;
		if (c->token_file) {
			if ((rc = hookfile_read_secret(c->token_file,
			    HOOK_TOKEN_MAX, &tokens[i], &len, err,
			    errlen)) < 0)
				return rc == -ERR_NOINPUT ? -ERR_CONFIG : rc;
		} else if (env && *env) {
			if ((tokens[i] = strdup(env)) == NULL) {
				snprintf(err, errlen, "out of memory");
				return -ERR_OS;
			}
		} else {
			snprintf(err, errlen, "%s:%d: destination %s has no bot "
			    "token: set LABPULSE_TELEGRAM_TOKEN or token-file=",
			    h->path, c->line, c->name);
			return -ERR_CONFIG;
		}
		if (strpbrk(tokens[i], "/?#% \t") != NULL) {
			snprintf(err, errlen, "%s:%d: destination %s: the bot "
			    "token has a character no token has", h->path,
			    c->line, c->name);
			return -ERR_CONFIG;
		}
	}
	return 0;
}

static void
dest_free(struct hdest *d)
{
	struct hmsg *m;

	if (d == NULL)
		return;
	if (d->busy)
		curlev_remove(d->h->curl, d->easy);
	while ((m = TAILQ_FIRST(&d->q)) != NULL) {
		TAILQ_REMOVE(&d->q, m, link);
		msg_free(m);
	}
	if (d->easy)
		curl_easy_cleanup(d->easy);
	curl_slist_free_all(d->hdrs);
	free(d->body);
	free(d->secret);
	if (d->timer)
		event_free(d->timer);
	free(d);
}

static void
set_conf(struct hdest *d, const struct hookdest *c, char *secret,
    size_t secretlen, struct bot *bot, int64_t t)
{
	d->conf = *c;
	d->conf.secret_file = d->conf.token_file = NULL;
	free(d->secret);
	d->secret = secret;
	d->secretlen = secretlen;
	d->bot = bot;
	d->gone = 0;
	bucket_set(&d->b, c->rate, (double)c->burst, t);
}

/* Read the file: the destinations matched by name with those there are
 * (their queues and state kept), new ones made, those no longer named
 * marked gone. Nothing changes when anything fails: -ERR_KIND with err. */
static int
load(struct hooks *h, char *err, size_t errlen)
{
	struct hookfile hf = { 0 };
	char **secrets = NULL, **tokens = NULL;
	size_t *lens = NULL, *botix = NULL, i, j, nnew = 0, nbots = 0;
	struct hdest **dests = NULL, *d;
	struct bot *bots = NULL;
	int64_t t = now_us();
	int rc;

	if ((rc = hookfile_load(h->path, &hf, err, errlen)) < 0)
		return rc;
	secrets = calloc(hf.n + 1, sizeof *secrets);
	tokens = calloc(hf.n + 1, sizeof *tokens);
	lens = calloc(hf.n + 1, sizeof *lens);
	dests = calloc(hf.n + h->ndests + 1, sizeof *dests);
	bots = calloc(hf.n + 1, sizeof *bots);
	botix = calloc(hf.n + 1, sizeof *botix);
	rc = -ERR_OS;
	snprintf(err, errlen, "out of memory");
	if (secrets == NULL || tokens == NULL || lens == NULL ||
	    botix == NULL ||
	    dests == NULL || bots == NULL ||
	    (rc = read_secrets(h, &hf, secrets, lens, tokens, err, errlen)) < 0)
		goto fail;
	/* bots: one per token, keeping the buckets of those there were */
	for (i = 0; i < hf.n; i++) {
		struct bot *old;

		if (tokens[i] == NULL)
			continue;
		for (j = 0; j < nbots; j++)
			if (strcmp(bots[j].token, tokens[i]) == 0)
				break;
		botix[i] = j;
		if (j < nbots)
			continue;
		bots[nbots].token = tokens[i];
		tokens[i] = NULL;
		if ((old = bot_for(h, bots[nbots].token)) != NULL)
			bots[nbots].b = old->b;
		else
			bucket_init(&bots[nbots].b, TG_BOT_RATE, 1, t);
		nbots++;
	}
	/* destinations: every new one made before any old one changes */
	for (i = 0; i < hf.n; i++) {
		if (dest_find(h, hf.d[i].name, strlen(hf.d[i].name)))
			continue;
		if ((d = calloc(1, sizeof *d)) == NULL ||
		    (d->easy = curl_easy_init()) == NULL ||
		    (d->timer = evtimer_new(h->n->base, on_dest_timer, d)) ==
		    NULL) {
			if (d)
				dest_free(d);
			rc = -ERR_OS;
			goto fail;
		}
		d->h = h;
		snprintf(d->name, sizeof d->name, "%s", hf.d[i].name);
		TAILQ_INIT(&d->q);
		bucket_init(&d->b, hf.d[i].rate, (double)hf.d[i].burst, t);
		bucket_init(&d->group_b, TG_GROUP_RATE, 1, t);
		dests[nnew++] = d;
	}
	/* from here nothing fails */
	for (i = 0; i < h->ndests; i++)
		dests[nnew + i] = h->dests[i];
	free(h->dests);
	h->dests = dests;
	h->ndests += nnew;
	for (i = 0; i < h->ndests; i++) {
		const struct hookdest *c;

		d = h->dests[i];
		c = hookfile_find(&hf, d->name, strlen(d->name));
		if (c == NULL) {
			d->gone = 1;
			continue;
		}
		j = (size_t)(c - hf.d);
		set_conf(d, c, secrets[j], lens[j], c->kind == HOOK_TELEGRAM ?
		    &bots[botix[j]] : NULL, t);
		secrets[j] = NULL;
	}
	for (i = 0; i < h->nbots; i++)
		free(h->bots[i].token);
	free(h->bots);
	h->bots = bots;
	h->nbots = nbots;
	bots = NULL;
	rc = 0;
fail:
	for (i = 0; i < hf.n; i++) {
		free(secrets ? secrets[i] : NULL);
		free(tokens ? tokens[i] : NULL);
	}
	if (rc < 0 && dests) {
		for (i = 0; i < nnew; i++)
			dest_free(dests[i]);
		free(dests);
	}
	if (bots) {
		for (i = 0; i < nbots; i++)
			free(bots[i].token);
		free(bots);
	}
	free(secrets);
	free(tokens);
	free(lens);
	free(botix);
	hookfile_free(&hf);
	return rc;
}

/* ---- what main calls ---- */

/* Where messages come from and dead letters go. */
static int
open_io(struct hooks *h, char *err, size_t errlen)
{
	struct notify_cfg *c = &h->n->cfg;
	struct timeval every = { HOOKS_CLAIM_EVERY_US / 1000000, 0 };
	int fd;

	h->from = h->n->hooks_from;
	h->dead = h->n->hooks_dead;
	snprintf(h->dead_key, sizeof h->dead_key, "labpulse:%s",
	    h->dead.stream);
	if (h->from.kind == ADDR_STREAM || h->dead.kind == ADDR_STREAM) {
		if ((h->wr = rconn_new(h->n->base, c->redis_url, err,
		    errlen)) == NULL)
			return -ERR_CONFIG;
		rconn_start(h->wr);
	}
	if (h->from.kind == ADDR_STREAM) {
		snprintf(h->key, sizeof h->key, "labpulse:%s", h->from.stream);
		h->group = h->from.group;
		group_consumer_name(c->consumer, h->consumer,
		    sizeof h->consumer);
		snprintf(h->claim_cursor, sizeof h->claim_cursor, "0-0");
		if ((h->rd = rconn_new(h->n->base, c->redis_url, err,
		    errlen)) == NULL)
			return -ERR_CONFIG;
		if ((h->claim_timer = event_new(h->n->base, -1, EV_PERSIST,
		    on_claim_timer, h)) == NULL ||
		    evtimer_add(h->claim_timer, &every) < 0)
			return -ERR_OS;
		rconn_on_state(h->rd, on_rd_state, h);
		rconn_start(h->rd);
		return 0;
	}
	if ((fd = addr_open_input(&h->from, err, errlen)) < 0)
		return fd;
	if ((h->in = ninput_open(h->n->base, fd, &pipe_ops, h)) == NULL)
		return -ERR_OS;
	return 0;
}

int
hooks_open(struct notify *n, char *err, size_t errlen)
{
	const char *path = n->cfg.hooks_file;
	struct hooks *h;
	int rc;

	if (path == NULL)
		path = getenv("LABPULSE_HOOKS");
	if (path == NULL || *path == '\0')
		return 0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (h = calloc(1, sizeof *h)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ERR_OS;
	}
	n->hooks = h;
	h->n = n;
	h->held = jv_object();
	snprintf(h->path, sizeof h->path, "%s", path);
	if ((h->curl = curlev_new(n->base)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ERR_OS;
	}
	if ((rc = load(h, err, errlen)) < 0)
		return rc;
	if ((rc = open_io(h, err, errlen)) < 0 && rc == -ERR_OS)
		snprintf(err, errlen, "out of memory");
	if (rc == 0)
		log_info("hooks: file=%s destinations=%zu from=%s dead=%s",
		    h->path, h->ndests, n->cfg.hooks_from, n->hooks_dead_spec);
	return rc;
}

void
hooks_reload(struct notify *n)
{
	struct hooks *h = n->hooks;
	char err[1024];
	size_t i;

	if (h == NULL)
		return;
	if (load(h, err, sizeof err) < 0) {
		log_warn("hooks: %s not read again; keeping what was: %s",
		    h->path, err);
		return;
	}
	log_info("hooks: reloaded %s destinations=%zu", h->path, h->ndests);
	for (i = 0; i < h->ndests; i++)
		dest_kick(h->dests[i]);
}

void
hooks_stop(struct notify *n)
{
	struct hooks *h = n->hooks;
	size_t i;

	if (h == NULL)
		return;
	h->stopping = 1;
	for (i = 0; i < h->ndests; i++)
		evtimer_del(h->dests[i]->timer);
	if (h->in)
		ninput_reading(h->in, 0);
}

long
hooks_in_flight(struct notify *n)
{
	struct hooks *h = n->hooks;
	long k = 0;
	size_t i;

	if (h == NULL)
		return 0;
	for (i = 0; i < h->ndests; i++)
		k += h->dests[i]->busy;
	return k;
}

static jv
dest_stats(const struct hdest *d)
{
	jv o = jv_object();

	o = jv_object_set(o, jv_string("kind"), jv_string(d->conf.kind ==
	    HOOK_TELEGRAM ? "telegram" : "webhook"));
	o = jv_object_set(o, jv_string("rate"), jv_number(d->conf.rate));
	o = jv_object_set(o, jv_string("burst"), jv_number(d->conf.burst));
	o = jv_object_set(o, jv_string("queued"), jv_number(d->queued));
	o = jv_object_set(o, jv_string("in_flight"), jv_number(d->busy));
	o = jv_object_set(o, jv_string("sent"), jv_number(d->sent));
	o = jv_object_set(o, jv_string("retried"), jv_number(d->retried));
	o = jv_object_set(o, jv_string("rate_limited"),
	    jv_number(d->rate_limited));
	o = jv_object_set(o, jv_string("dead"), jv_number(d->dead));
	o = jv_object_set(o, jv_string("last_status"),
	    jv_number(d->last_status));
	o = jv_object_set(o, jv_string("bucket_wait_us_p99"),
	    jv_number((double)ring_percentile(&d->wait, 99)));
	o = jv_object_set(o, jv_string("latency_us_p99"),
	    jv_number((double)ring_percentile(&d->latency, 99)));
	if (d->gone)
		o = jv_object_set(o, jv_string("gone"), jv_true());
	return o;
}

#define COUNTER(name, field)	STATS_COUNTER(name, struct hooks, field)
static const struct stats_counter counters[] = {
	COUNTER("read", read),
	COUNTER("delivered", delivered),
	COUNTER("dead", dead_letters),
	COUNTER("retried", retried),
	COUNTER("rate_limited", rate_limited),
	COUNTER("not_written", not_written),
	COUNTER("duplicates_skipped", skipped_dup),
	{ NULL, 0 }
};

jv
hooks_stats(struct notify *n)
{
	struct hooks *h = n->hooks;
	jv o, ds = jv_object();
	size_t i;

	if (h == NULL)
		return jv_invalid();
	o = jv_object_set(jv_object(), jv_string("file"), jv_string(h->path));
	o = jv_object_set(o, jv_string("from"),
	    jv_string(n->cfg.hooks_from));
	o = jv_object_set(o, jv_string("dead_to"),
	    jv_string(n->hooks_dead_spec));
	o = stats_counters(o, h, counters);
	o = jv_object_set(o, jv_string("queued"), jv_number(h->nheld));
	o = jv_object_set(o, jv_string("in_flight"),
	    jv_number(hooks_in_flight(n)));
	o = jv_object_set(o, jv_string("max_queue"),
	    jv_number(n->cfg.hook_queue));
	if (h->in)
		o = jv_object_set(o, jv_string("input_ended"),
		    jv_bool(ninput_ended(h->in)));
	for (i = 0; i < h->ndests; i++)
		ds = jv_object_set(ds, jv_string(h->dests[i]->name),
		    dest_stats(h->dests[i]));
	return jv_object_set(o, jv_string("destinations"), ds);
}

void
hooks_close(struct notify *n)
{
	struct hooks *h = n->hooks;
	size_t i;

	if (h == NULL)
		return;
	for (i = 0; i < h->ndests; i++)
		dest_free(h->dests[i]);
	free(h->dests);
	for (i = 0; i < h->nbots; i++)
		free(h->bots[i].token);
	free(h->bots);
	curlev_free(h->curl);
	if (h->claim_timer)
		event_free(h->claim_timer);
	ninput_free(h->in);
	rconn_free(h->rd);
	rconn_free(h->wr);
	jv_free(h->held);
	free(h);
	n->hooks = NULL;
	curl_global_cleanup();
}
