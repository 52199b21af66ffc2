/* route.h: what the files of route share.
 *
 * Calls go one way: main.c calls stream.c (the input, the writes) and
 * rules.c (the jq program); neither calls main.c or the other. What a
 * lower part must tell, it tells through struct route: the flags of its
 * struct daemon (a stop, a reload) and its counters, and the consumer
 * group's on_state callback for Redis coming and going. */
#ifndef LABPULSE_ROUTE_H
#define LABPULSE_ROUTE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <jq.h>

#include "addr.h"
#include "group.h"
#include "lines.h"
#include "prog.h"
#include "stats.h"

struct route_cfg {
	const char *from, *to, *hooks, *dead;
	const char *redis_url, *consumer, *stats_path;
	const char *rules_path;		/* --rules, or NULL for the default */
	const char *check_path;		/* --check FILE */
	const char *hook_names;		/* --hook-names FILE, else
					 * $LABPULSE_HOOKS; NULL for none */
	int test;			/* --test */
	long batch_size, claim_idle_ms;
	long max_len;			/* --max-len: trim to about this; 0 never */
	long trim_interval_ms;		/* --trim-interval; 0: never */
	jv args;			/* --arg and --argjson: an object */
};

enum sink_kind { SINK_NONE, SINK_STREAM, SINK_FD };

/* Where one kind of message goes: a stream, or NDJSON on a descriptor. */
struct sink {
	const char *spec;	/* the address as given */
	enum sink_kind kind;
	char key[160];		/* SINK_STREAM: labpulse:NAME */
	int fd;			/* SINK_FD */
	struct sink *same;	/* writes through another sink, keeping order */
	char *buf;		/* SINK_FD: the lines of the batch in hand */
	size_t len, cap;
};

/* A text that grows. */
struct text {
	char *s;
	size_t len, cap;
};

/* One event in hand, and what became of it. */
struct entry {
	char id[48];		/* the stream id; empty with NDJSON */
	long line;		/* the line number with NDJSON */
	char *raw;		/* the event's text as it was read */
	size_t len;
	char event_id[128];	/* its eventId, for logs; "-" when none */
	int64_t received_us;	/* its receivedAt; 0 when none */
	jv msgs;		/* the messages of the rules: an array */
	struct text out;	/* the same as compact JSON, a line each */
	char *error;		/* why it is set aside; NULL when routed */
	int rule_failed;	/* set aside because a rule failed on it */
};

struct batch {
	struct entry *e;
	size_t n, cap;
	int fd_done;		/* its NDJSON lines are written */
};

struct route {
	struct route_cfg cfg;
	char rules_path[PATH_MAX];
	jq_state *jq;
	jv hook_names;		/* $hooks: the names of the hooks file */
	struct addr from;
	struct sink to, hooks, dead;
	/* Redis */
	int use_redis;
	struct group g;		/* the input stream's group, or only the
				 * connection */
	char consumer[200];
	/* NDJSON input */
	struct lines in;
	int out_error;
	/* life: d.stop and d.reload are set by the signals */
	struct daemon d;
	int64_t started_us;
	struct hist *latency_us;
	struct stats_link link;	/* the Redis connection, one write at a time */
	jv by_topic;		/* topic prefix -> messages */
	unsigned long events_in, messages_out, dropped, rule_errors, dead_n;
	unsigned long reloads, reload_errors, batches, claimed;
	unsigned long trimmed, trimmed_hooks, trims;
	char trim_error[512];		/* the last trim's, "" when it ran */
};

/* rules.c */
/* The rules file when --rules is not given: $LABPULSE_RULES, else
 * ../etc/labpulse/route.jq beside the program when it exists (a build
 * tree), else the installed one. */
const char *rules_default_path(char *buf, size_t len);
/* Compile text, named name in errors, with the named arguments args (an
 * object, consumed); modules are looked for in dir. NULL when it does
 * not compile, with one line "NAME:LINE:COL: message" per error in err. */
jq_state *rules_compile(const char *text, const char *name, const char *dir,
    jv args, char *err, size_t errlen);
/* The same for the file path, with vars (an object, consumed): route's own
 * variables ($hooks), not in $ARGS. A file that cannot be read is an error
 * too. */
jq_state *rules_load(const char *path, jv args, jv vars, char *err,
    size_t errlen);
/* The messages the rules make of event (consumed): an array of objects each
 * with a string topic, or an invalid with the reason as a string. */
jv rules_run(jq_state *jq, jv event);
/* What jv_parse_sized(text, len) makes of text, the same value or error,
 * without the cost of jq's parser for an object of plain JSON. */
jv rules_parse(const char *text, size_t len);
/* Append v (consumed) as jv_dump_string(v, 0) writes it, byte for byte,
 * without its cost: 0, or -1 when memory ran out. */
int rules_dump(jv v, struct text *t);
/* Append n bytes of p: 0, or -1 when memory ran out. */
int text_add(struct text *t, const char *p, size_t n);
/* receivedAt as ingest writes it (2026-11-25T20:31:39.123456Z, any ISO 8601
 * time with a zone): microseconds since the epoch, or -1. */
int64_t rules_parse_time(const char *s);

/* stream.c */
/* Open --from: 0, or -ERR_NOINPUT with the reason in err. */
int source_open(struct route *r, char *err, size_t errlen);
/* Wait for entries and take what came, up to --batch-size; returns with an
 * empty batch on a signal or at the end of NDJSON input. */
void source_fill(struct route *r, struct batch *bt);
/* Write the messages and set-aside entries of the batch and acknowledge its
 * entries, all in one transaction: 0 when done, -1 when given up
 * (stopping while Redis is away, or an NDJSON output failed). */
int batch_write(struct route *r, struct batch *bt);
long source_pending(struct route *r);
void batch_clear(struct batch *bt);
/* The same, and free what the batch keeps for the next. */
void batch_free(struct batch *bt);

#endif
