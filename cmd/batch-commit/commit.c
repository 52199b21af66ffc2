/* commit.c: one transaction per batch, by one of two paths.
 *
 * The fast path, for a batch of new events: COPY straight into events,
 * then one statement that adds the batch's progress, summed here per
 * class, student and notebook, to student_progress; COMMIT. It is three
 * round trips, and PostgreSQL (where a batch's time goes) does the least
 * work it can: no staging table, no ON CONFLICT, no RETURNING.
 *
 * The staging path, for any other batch (one that meets an event already
 * there, a row PostgreSQL refuses, an event this file cannot sum exactly):
 * COPY into a staging table, move the rows into events skipping
 * duplicates, update student_progress from the very rows inserted. A row
 * PostgreSQL refuses is isolated by splitting the batch under savepoints,
 * and set aside in dead_events with the reason.
 *
 * No state outlives a transaction, so that batch-commit works through a
 * pooler that hands each transaction to any server connection (PgBouncer's
 * transaction pooling) as well as on a connection of its own: the settings
 * are SET LOCAL in each transaction, every statement is unnamed (sent with
 * its parameters, never prepared by name), and the staging table is made
 * by the transaction that uses it, ON COMMIT DROP. The fast path keeps
 * its three round trips (the settings ride in the first); what it pays is
 * the planning of its one statement each time, not measurable against a
 * batch's COPY. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jv.h>
#include <libpq-fe.h>

#include "bc.h"
#include "events.h"
#include "hist.h"
#include "log.h"
#include "pgconn.h"
#include "prog.h"
#include "stats.h"

/* How a try ends: committed; to be tried again with the whole batch; or
 * (the fast path) to be done by the staging path instead. */
enum { OK = 0, TRANSIENT = -1, FALLBACK = -2 };

/* Every transaction's start: times without a zone are UTC (as fold_fields
 * reads them), and no notice is worth a log line. */
#define TXN_BEGIN \
	"BEGIN; SET LOCAL TimeZone = 'UTC';" \
	" SET LOCAL client_min_messages = warning;"

/* The columns a COPY fills, in the order stage_row writes them. */
#define EVENT_COLUMNS \
	"class_id, student_id, event_id, event_type, event_time, received_at," \
	" session_id, notebook_path, cell_id, cell_index, cell_type," \
	" execution_count, has_error, execution_duration_ms, payload"

static const char copy_sql[] =
	"COPY lp_staging (" EVENT_COLUMNS ") FROM STDIN";

/* The fast path's first round trip: the transaction and its COPY. */
static const char fast_copy_sql[] =
	TXN_BEGIN " COPY events (" EVENT_COLUMNS ") FROM STDIN";

/* The staging path's: the transaction and its staging table, the columns
 * of events as the migrations made them, gone at its end. */
static const char staging_begin_sql[] =
	TXN_BEGIN " CREATE TEMP TABLE lp_staging"
	" (LIKE events INCLUDING DEFAULTS) ON COMMIT DROP";

/* How a batch's sums join a progress row already there. */
#define PROGRESS_UPSERT \
	" ON CONFLICT (class_id, student_id, notebook_path) DO UPDATE SET" \
	"  events = p.events + EXCLUDED.events," \
	"  executions = p.executions + EXCLUDED.executions," \
	"  errors = p.errors + EXCLUDED.errors," \
	"  first_activity = least(p.first_activity, EXCLUDED.first_activity)," \
	"  last_event_type = CASE WHEN EXCLUDED.last_activity >= p.last_activity" \
	"   THEN EXCLUDED.last_event_type ELSE p.last_event_type END," \
	"  last_activity = greatest(p.last_activity, EXCLUDED.last_activity)"

#define PROGRESS_INSERT \
	"INSERT INTO student_progress AS p (class_id, student_id, notebook_path," \
	" events, executions, errors, first_activity, last_activity," \
	" last_event_type)"

/* Rows are locked in key order, so that consumers sharing students cannot
 * deadlock on student_progress. */
static const char move_sql[] =
	"WITH ins AS ("
	" INSERT INTO events (" EVENT_COLUMNS ")"
	" SELECT " EVENT_COLUMNS " FROM lp_staging"
	" ON CONFLICT (student_id, event_id) DO NOTHING"
	" RETURNING class_id, student_id, coalesce(notebook_path, '') AS nb,"
	"  event_type, has_error, event_time"
	"), prog AS ("
	PROGRESS_INSERT
	" SELECT class_id, student_id, nb, count(*),"
	"  count(*) FILTER (WHERE event_type = 'cell_executed'),"
	"  count(*) FILTER (WHERE has_error), min(event_time), max(event_time),"
	"  (array_agg(event_type ORDER BY event_time DESC))[1]"
	" FROM ins GROUP BY class_id, student_id, nb"
	" ORDER BY class_id, student_id, nb"
	PROGRESS_UPSERT
	")"
	" SELECT count(*) FROM ins";

/* The fast path's progress: one row per key, summed by fold_batch, in key
 * order for the same reason. */
static const char fold_sql[] =
	PROGRESS_INSERT
	" SELECT * FROM unnest($1::text[], $2::text[], $3::text[],"
	"  $4::bigint[], $5::bigint[], $6::bigint[], $7::timestamptz[],"
	"  $8::timestamptz[], $9::text[])"
	" ORDER BY 1, 2, 3"
	PROGRESS_UPSERT;

static const char dead_sql[] =
	"INSERT INTO dead_events (stream_id, consumer, reason, sqlstate, raw)"
	" VALUES ($1, $2, $3, $4, $5)"
	" ON CONFLICT (stream_id, raw_sha256) DO NOTHING";

/* What a connection is checked with before it is used: the tables and
 * columns the statements above name. */
static const char check_sql[] =
	"SELECT " EVENT_COLUMNS " FROM events LIMIT 0";

int
pg_ensure(struct bc *b)
{
	char err[512];
	PGresult *r;

	if (b->pg && PQstatus(b->pg) == CONNECTION_OK)
		return 0;
	if (b->pg) {
		pgconn_error(b->pg, NULL, err, sizeof err);
		daemon_pg_state(&b->d, 0, err);
		PQfinish(b->pg);
		b->pg = NULL;
		b->pg_reconnects++;
	}
	b->in_txn = 0;
	b->pg = pgconn_open(b->cfg.db, "labpulse-batch-commit", err, sizeof err);
	if (b->pg == NULL) {
		daemon_pg_state(&b->d, 0, err);
		snprintf(b->pg_error, sizeof b->pg_error, "%s", err);
		return -1;
	}
	/* a missing table or column is told now, not at the first batch;
	 * the statements are parsed as the unnamed one, which the next
	 * statement replaces: nothing of this outlives it */
	r = PQexecParams(b->pg, check_sql, 0, NULL, NULL, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK) {
		PQclear(r);
		r = PQprepare(b->pg, "", fold_sql, 0, NULL);
	}
	if (PQresultStatus(r) == PGRES_COMMAND_OK) {
		PQclear(r);
		r = PQprepare(b->pg, "", dead_sql, 0, NULL);
	}
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		pgconn_error(b->pg, r, err, sizeof err);
		if (strcmp(err, b->pg_error) != 0)
			log_error("cannot check the schema (is it migrated? "
			    "labpulse migrate-indexes up): %s", err);
		snprintf(b->pg_error, sizeof b->pg_error, "%s", err);
		PQclear(r);
		PQfinish(b->pg);
		b->pg = NULL;
		return -1;
	}
	PQclear(r);
	daemon_pg_state(&b->d, 1, NULL);
	b->pg_error[0] = '\0';
	return 0;
}

/* A primary demoted under a connection (a failover brought it back as a
 * standby) refuses every write, "cannot execute COPY during recovery",
 * while the connection itself is fine: target_session_attrs is checked
 * only when a connection is made. After a failed batch the server is
 * asked, and a standby's connection dropped, so that the next one finds
 * the primary. */
static void
drop_if_standby(struct bc *b)
{
	if (b->pg == NULL || PQstatus(b->pg) != CONNECTION_OK ||
	    pgconn_in_recovery(b->pg) != 1)
		return;
	daemon_pg_state(&b->d, 0, "the server is a standby now");
	PQfinish(b->pg);
	b->pg = NULL;
	b->pg_reconnects++;
}

void
commit_close(struct bc *b)
{
	PQfinish(b->pg);	/* which takes NULL */
	b->pg = NULL;
}

/* One staged row in COPY's text format, and what the fast path sums of it
 * (see fold_fields). */
struct staged {
	char *line;
	size_t len;
	char bad[300];		/* why the row cannot even be parsed */
	int foldable;		/* the fields below are set */
	char *key[3];		/* class_id, student_id, notebook_path or "" */
	char *type, *time;	/* event_type, event_time as COPY gives them */
	int64_t sec;		/* event_time: seconds since the epoch ... */
	long nsec;		/* ... and nanoseconds, for ordering */
	int exec, error;	/* a cell_executed event; has_error true */
};

/* A growing byte buffer for COPY data. */
struct evbuf_lite {
	char *p;
	size_t n, cap;
};

static void
lite_add(struct evbuf_lite *o, const char *s, size_t n)
{
	if (o->n + n + 1 > o->cap) {
		o->cap = (o->n + n + 1) * 2;
		o->p = realloc(o->p, o->cap);
		if (o->p == NULL)
			die_nomem();
	}
	memcpy(o->p + o->n, s, n);
	o->n += n;
	o->p[o->n] = '\0';
}

static void
put_text(struct evbuf_lite *o, const char *s, size_t n)
{
	size_t i, run = 0;

	for (i = 0; i < n; i++) {
		const char *esc = NULL;

		switch (s[i]) {
		case '\\': esc = "\\\\"; break;
		case '\t': esc = "\\t"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		}
		if (esc) {
			lite_add(o, s + run, i - run);
			lite_add(o, esc, 2);
			run = i + 1;
		}
	}
	lite_add(o, s + run, n - run);
}

/* The columns of copy_sql but the payload, and the fields they come from:
 * the first of field, alt and alt2 that is there. */
enum { C_CLASS, C_STUDENT, C_EVENT_TYPE = 3, C_TIME, C_NOTEBOOK = 7,
	C_HAS_ERROR = 12 };
static const struct column {
	const char *field, *alt, *alt2;
} columns[] = {
	{ "classId", NULL, NULL },
	{ "studentId", "emailAddress", "userId" },
	{ "eventId", NULL, NULL },
	{ "eventType", NULL, NULL },
	{ "eventTime", "receivedAt", NULL },
	{ "receivedAt", NULL, NULL },
	{ "sessionId", NULL, NULL },
	{ "notebookPath", NULL, NULL },
	{ "cellId", NULL, NULL },
	{ "cellIndex", NULL, NULL },
	{ "cellType", NULL, NULL },
	{ "executionCount", NULL, NULL },
	{ "hasError", NULL, NULL },
	{ "executionDurationMs", NULL, NULL },
};
#define NCOLUMNS (sizeof columns / sizeof columns[0])

/* The value of column c in ev: the first of its fields that is there and
 * not null; null when none is. */
static jv
column_value(jv ev, const struct column *c)
{
	const char *names[3] = { c->field, c->alt, c->alt2 };
	jv v = jv_null();
	int i;

	for (i = 0; i < 3 && names[i]; i++) {
		jv_free(v);
		v = jv_object_get(jv_copy(ev), jv_string(names[i]));
		if (jv_is_valid(v) && jv_get_kind(v) != JV_KIND_NULL)
			break;
	}
	return v;
}

/* A value as PostgreSQL is given it: strings as they are (a NUL byte in
 * one makes PostgreSQL refuse the row, as it should), numbers in full,
 * booleans t/f, an array or object where a scalar belongs as its JSON;
 * NULL for absent or null. The text lives in num or in *keep (jv_free it);
 * its length in *len. */
static const char *
value_text(jv v, char num[64], jv *keep, size_t *len)
{
	*keep = jv_null();
	switch (jv_get_kind(v)) {
	case JV_KIND_STRING:
		*len = (size_t)jv_string_length_bytes(jv_copy(v));
		return jv_string_value(v);
	case JV_KIND_NUMBER:
		snprintf(num, 64, "%.17g", jv_number_value(v));
		break;
	case JV_KIND_TRUE:
	case JV_KIND_FALSE:
		snprintf(num, 64, "%s", jv_get_kind(v) == JV_KIND_TRUE ? "t" : "f");
		break;
	case JV_KIND_INVALID:
	case JV_KIND_NULL:
		return NULL;
	default:
		*keep = jv_dump_string(jv_copy(v), 0);
		*len = (size_t)jv_string_length_bytes(jv_copy(*keep));
		return jv_string_value(*keep);
	}
	*len = strlen(num);
	return num;
}

/* A column's value as a string of its own; NULL for none. */
static char *
column_text(jv ev, size_t col)
{
	jv v = column_value(ev, &columns[col]), keep;
	char num[64], *out = NULL;
	size_t len;
	const char *t = value_text(v, num, &keep, &len);

	if (t && (out = strndup(t, len)) == NULL)
		die_nomem();
	jv_free(keep);
	jv_free(v);
	return out;
}

/* A column's value as COPY text, absent or null as \N. */
static void
put_field(struct evbuf_lite *o, jv ev, size_t col)
{
	jv v = column_value(ev, &columns[col]), keep;
	char num[64];
	size_t len;
	const char *t = value_text(v, num, &keep, &len);

	if (t)
		put_text(o, t, len);
	else
		lite_add(o, "\\N", 2);
	jv_free(keep);
	jv_free(v);
}

/* n decimal digits at s, or -1. */
static long
digits(const char *s, int n)
{
	long v = 0;

	while (n-- > 0) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s++ - '0');
	}
	return v;
}

/* Days from 1970-01-01 to the date (proleptic Gregorian, as PostgreSQL). */
static int64_t
days_from_civil(long y, long m, long d)
{
	long era, yoe, doy;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	return (int64_t)era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy -
	    719468;
}

/* The offset of a zone at s (Z, +HH, +HHMM, +HH:MM, none: UTC, as the
 * session's TimeZone is) in seconds east; -1 with *ok 0 when it is not
 * one of those. */
static long
zone_offset(const char *s, int *ok)
{
	long h, m = 0;

	*ok = 1;
	if (*s == '\0' || ((*s == 'Z' || *s == 'z') && s[1] == '\0'))
		return 0;
	if ((*s != '+' && *s != '-') || (h = digits(s + 1, 2)) < 0)
		return *ok = 0, -1;
	if (s[3] != '\0') {
		const char *mm = s[3] == ':' ? s + 4 : s + 3;

		if ((m = digits(mm, 2)) < 0 || mm[2] != '\0')
			return *ok = 0, -1;
	}
	return (*s == '-' ? -1 : 1) * (h * 3600 + m * 60);
}

/* An event time, in the ISO 8601 forms ingest accepts (a fraction after a
 * point, not a comma), as seconds and nanoseconds since the epoch: 0, or
 * -1 for any other form (the row is then not summed here, and its batch
 * takes the staging path, so that PostgreSQL alone decides what such a
 * time means). A date PostgreSQL refuses fails the COPY before any sum is
 * used. */
static int
parse_time(const char *s, int64_t *sec, long *nsec)
{
	long y, mo, d, h, mi, se = 0, ns = 0, scale = 100000000, off;
	int ok;

	if (strlen(s) < 16 || s[4] != '-' || s[7] != '-' ||
	    !strchr("Tt ", s[10]) || s[13] != ':')
		return -1;
	y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
	h = digits(s + 11, 2), mi = digits(s + 14, 2);
	if (y < 1 || mo < 0 || d < 0 || h < 0 || mi < 0)
		return -1;
	s += 16;
	if (*s == ':') {
		if ((se = digits(s + 1, 2)) < 0)
			return -1;
		s += 3;
		if (*s == '.')	/* not ',': what PostgreSQL makes of it is its own */
			for (s++; *s >= '0' && *s <= '9'; s++, scale /= 10) {
				if (scale == 0)
					return -1;	/* beyond nanoseconds */
				ns += (*s - '0') * scale;
			}
	}
	off = zone_offset(s, &ok);
	if (!ok)
		return -1;
	*sec = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se -
	    off;
	*nsec = ns;
	return 0;
}

/* What the fast path sums of a row, in s; s->foldable stays 0 when the
 * row cannot be summed exactly here (no class, student, type or time; a
 * time in another form; a hasError that is not a boolean): its batch then
 * takes the staging path, where PostgreSQL sums the rows itself. */
static void
fold_fields(jv ev, struct staged *s)
{
	jv err = column_value(ev, &columns[C_HAS_ERROR]);
	int k = jv_get_kind(err);

	jv_free(err);
	s->key[0] = column_text(ev, C_CLASS);
	s->key[1] = column_text(ev, C_STUDENT);
	s->key[2] = column_text(ev, C_NOTEBOOK);
	s->type = column_text(ev, C_EVENT_TYPE);
	s->time = column_text(ev, C_TIME);
	if (s->key[2] == NULL && (s->key[2] = strdup("")) == NULL)
		die_nomem();
	if (s->key[0] == NULL || s->key[1] == NULL || s->type == NULL ||
	    s->time == NULL || parse_time(s->time, &s->sec, &s->nsec) < 0 ||
	    (k != JV_KIND_TRUE && k != JV_KIND_FALSE && k != JV_KIND_NULL &&
	    k != JV_KIND_INVALID))
		return;
	s->exec = strcmp(s->type, "cell_executed") == 0;
	s->error = k == JV_KIND_TRUE;
	s->foldable = 1;
}

static void
staged_free(struct staged *s)
{
	free(s->line);
	free(s->key[0]);
	free(s->key[1]);
	free(s->key[2]);
	free(s->type);
	free(s->time);
}

/* Why a row is not a JSON object, as jq says it, in s->bad. */
static void
stage_bad(jv ev, struct staged *s)
{
	jv msg = jv_is_valid(ev) ? jv_string("not a JSON object")
	    : jv_invalid_get_msg(ev);
	const char *m = jv_get_kind(msg) == JV_KIND_STRING ?
	    jv_string_value(msg) : "not JSON";
	/* jq quotes the whole text after the reason: raw keeps it */
	const char *cut = strstr(m, " (while parsing");

	snprintf(s->bad, sizeof s->bad, "malformed event: %.*s",
	    cut ? (int)(cut - m) : (int)strlen(m), m);
	jv_free(msg);
	if (jv_is_valid(ev))
		jv_free(ev);
}

static void
stage_row(const struct row *r, struct staged *s)
{
	struct evbuf_lite o = { NULL, 0, 0 };
	jv ev = jv_parse_sized(r->raw, (int)r->len);
	char now[32];
	size_t i;

	memset(s, 0, sizeof *s);
	if (!jv_is_valid(ev) || jv_get_kind(ev) != JV_KIND_OBJECT) {
		stage_bad(ev, s);
		return;
	}
	if (!jv_object_has(jv_copy(ev), jv_string("receivedAt"))) {
		events_format_time(stats_now_us(), now);
		ev = jv_object_set(ev, jv_string("receivedAt"), jv_string(now));
	}
	for (i = 0; i < NCOLUMNS; i++) {
		put_field(&o, ev, i);
		lite_add(&o, "\t", 1);
	}
	fold_fields(ev, s);
	/* the payload is the event as it was queued: no second encoding */
	jv_free(ev);
	put_text(&o, r->raw, r->len);
	lite_add(&o, "\n", 1);
	s->line = o.p;
	s->len = o.n;
}

/* ---- the fast path's sums ---- */

/* The nine arrays of fold_sql, as text array literals. */
enum { FOLD_PARAMS = 9 };
struct fold {
	struct evbuf_lite arr[FOLD_PARAMS];
	const char *p[FOLD_PARAMS];
};

/* An element of a text array literal: quoted, its \ and " escaped. */
static void
arr_add(struct evbuf_lite *o, const char *s)
{
	lite_add(o, o->n ? ",\"" : "{\"", 2);
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			lite_add(o, "\\", 1);
		lite_add(o, s, 1);
	}
	lite_add(o, "\"", 1);
}

static int
key_cmp(const void *x, const void *y)
{
	const struct staged *a = *(struct staged *const *)x;
	const struct staged *b = *(struct staged *const *)y;
	int i, c;

	for (i = 0; i < 3; i++)
		if ((c = strcmp(a->key[i], b->key[i])) != 0)
			return c;
	return 0;
}

static int
time_cmp(const struct staged *a, const struct staged *b)
{
	if (a->sec != b->sec)
		return a->sec < b->sec ? -1 : 1;
	return (a->nsec > b->nsec) - (a->nsec < b->nsec);
}

/* The sums of one key's n rows, as today's prog CTE makes them: events,
 * executions, errors, the least and greatest event_time, and the type of
 * the latest event. */
static void
fold_key(struct fold *f, struct staged *const *v, size_t n)
{
	const struct staged *first = v[0], *last = v[0];
	unsigned long ex = 0, er = 0;
	char num[3][24];
	const char *vals[FOLD_PARAMS];
	size_t i;

	for (i = 0; i < n; i++) {
		ex += (unsigned long)v[i]->exec;
		er += (unsigned long)v[i]->error;
		if (time_cmp(v[i], first) < 0)
			first = v[i];
		if (time_cmp(v[i], last) >= 0)
			last = v[i];
	}
	snprintf(num[0], sizeof num[0], "%zu", n);
	snprintf(num[1], sizeof num[1], "%lu", ex);
	snprintf(num[2], sizeof num[2], "%lu", er);
	vals[0] = v[0]->key[0], vals[1] = v[0]->key[1], vals[2] = v[0]->key[2];
	vals[3] = num[0], vals[4] = num[1], vals[5] = num[2];
	vals[6] = first->time, vals[7] = last->time, vals[8] = last->type;
	for (i = 0; i < FOLD_PARAMS; i++)
		arr_add(&f->arr[i], vals[i]);
}

/* The batch's progress summed per key into f: 0, or -1 when a row cannot
 * be summed here (then the batch takes the staging path). */
static int
fold_batch(struct staged *st, size_t n, struct fold *f)
{
	struct staged **v;
	size_t i, j;

	memset(f, 0, sizeof *f);
	for (i = 0; i < n; i++)
		if (st[i].line == NULL || !st[i].foldable)
			return -1;
	if (n == 0)
		return -1;
	if ((v = malloc(n * sizeof *v)) == NULL)
		die_nomem();
	for (i = 0; i < n; i++)
		v[i] = &st[i];
	qsort(v, n, sizeof *v, key_cmp);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && key_cmp(&v[i], &v[j]) == 0; j++)
			;
		fold_key(f, v + i, j - i);
	}
	free(v);
	for (i = 0; i < FOLD_PARAMS; i++) {
		lite_add(&f->arr[i], "}", 1);
		f->p[i] = f->arr[i].p;
	}
	return 0;
}

static void
fold_free(struct fold *f)
{
	int i;

	for (i = 0; i < FOLD_PARAMS; i++)
		free(f->arr[i].p);
}

/* Errors of the data (class 22) or of a constraint (class 23) belong to a
 * row; anything else (a lost connection, a deadlock, a server shutting
 * down) is tried again with the whole batch. */
static int
row_error(const PGresult *r)
{
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	return st && (strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0 ||
	    strcmp(st, "54000") == 0);
}

struct attempt {
	struct bc *b;
	struct batch *bt;
	struct staged *st;
	unsigned long inserted, staged, dead;
	char err[512];
};

static int
exec_ok(struct attempt *a, const char *sql)
{
	PGresult *r = PQexec(a->b->pg, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;

	if (!ok)
		pgconn_error(a->b->pg, r, a->err, sizeof a->err);
	PQclear(r);
	return ok;
}

static int
set_aside(struct attempt *a, size_t i, const char *reason, const char *state)
{
	const char *p[5];
	int len[5] = { 0, 0, 0, 0, (int)a->bt->rows[i].len };
	int fmt[5] = { 0, 0, 0, 0, 1 };
	PGresult *r;
	int ok;

	p[0] = a->bt->rows[i].id[0] ? a->bt->rows[i].id : NULL;
	p[1] = a->b->consumer[0] ? a->b->consumer : NULL;
	p[2] = reason;
	p[3] = state;
	p[4] = a->bt->rows[i].raw;
	r = PQexecParams(a->b->pg, dead_sql, 5, NULL, p, len, fmt, 0);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		pgconn_error(a->b->pg, r, a->err, sizeof a->err);
	else
		a->dead++;
	log_warn("event set aside stream_id=%s reason=\"%s\"",
	    a->bt->rows[i].id[0] ? a->bt->rows[i].id : "-", reason);
	PQclear(r);
	return ok ? OK : TRANSIENT;
}

/* Run sql, a COPY FROM STDIN (after other statements, maybe), with the
 * staged rows [lo, hi): COPY's result, or NULL with a->err when the rows
 * could not even be sent. */
static PGresult *
copy_rows(struct attempt *a, const char *sql, size_t lo, size_t hi)
{
	PGconn *c = a->b->pg;
	struct evbuf_lite data = { NULL, 0, 0 };
	PGresult *r, *more;
	size_t i;

	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COPY_IN)
		return r;	/* an error, for the caller to judge */
	PQclear(r);
	for (i = lo; i < hi; i++)
		if (a->st[i].line)
			lite_add(&data, a->st[i].line, a->st[i].len);
	if (PQputCopyData(c, data.p, (int)data.n) != 1 ||
	    PQputCopyEnd(c, NULL) != 1) {
		pgconn_error(c, NULL, a->err, sizeof a->err);
		free(data.p);
		return NULL;
	}
	free(data.p);
	r = PQgetResult(c);
	while ((more = PQgetResult(c)) != NULL)
		PQclear(more);	/* drain: COPY answers once */
	if (r == NULL)
		pgconn_error(c, NULL, a->err, sizeof a->err);
	return r;
}

/* ---- the staging path ---- */

static int attempt_range(struct attempt *a, size_t lo, size_t hi);

/* The rows [lo, hi) were refused with r (cleared here): split them on a
 * row's error down to the row, set aside then; anything else is
 * transient. n: the rows staged in the range. */
static int
refused(struct attempt *a, PGresult *r, size_t lo, size_t hi, size_t n)
{
	char state[8] = "", reason[512];
	size_t i, mid;

	pgconn_error(a->b->pg, r, reason, sizeof reason);
	if (r && PQresultErrorField(r, PG_DIAG_SQLSTATE))
		snprintf(state, sizeof state, "%s",
		    PQresultErrorField(r, PG_DIAG_SQLSTATE));
	if (!row_error(r) || PQstatus(a->b->pg) != CONNECTION_OK) {
		snprintf(a->err, sizeof a->err, "%s", reason);
		PQclear(r);
		return TRANSIENT;
	}
	PQclear(r);
	if (!exec_ok(a, "ROLLBACK TO SAVEPOINT lp_rows"))
		return TRANSIENT;
	if (n == 1) {
		for (i = lo; i < hi && a->st[i].line == NULL; i++)
			;
		return set_aside(a, i, reason, state);
	}
	mid = lo + (hi - lo) / 2;
	if (attempt_range(a, lo, mid) != OK)
		return TRANSIENT;
	return attempt_range(a, mid, hi);
}

/* Stage rows [lo, hi) and move them; split on a row's error. */
static int
attempt_range(struct attempt *a, size_t lo, size_t hi)
{
	PGresult *r;
	unsigned long ins;
	size_t i, n = 0;

	for (i = lo; i < hi; i++)
		n += a->st[i].line != NULL;
	if (n == 0)
		return OK;
	if (!exec_ok(a, "SAVEPOINT lp_rows") ||
	    (r = copy_rows(a, copy_sql, lo, hi)) == NULL)
		return TRANSIENT;
	if (PQresultStatus(r) == PGRES_COMMAND_OK) {
		PQclear(r);
		r = PQexecParams(a->b->pg, move_sql, 0, NULL, NULL, NULL, NULL,
		    0);
	}
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		return refused(a, r, lo, hi, n);
	ins = strtoul(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	if (!exec_ok(a, "TRUNCATE lp_staging") ||
	    !exec_ok(a, "RELEASE SAVEPOINT lp_rows"))
		return TRANSIENT;
	a->inserted += ins;
	a->staged += n;
	return OK;
}

/* The staging path's transaction: the rows that are no JSON object set
 * aside, the others staged and moved. */
static int
try_staging(struct attempt *a)
{
	size_t i;

	if (!exec_ok(a, staging_begin_sql))
		return TRANSIENT;
	a->b->in_txn = 1;
	for (i = 0; i < a->bt->n; i++)
		if (a->st[i].line == NULL &&
		    set_aside(a, i, a->st[i].bad, NULL) != OK)
			return TRANSIENT;
	if (attempt_range(a, 0, a->bt->n) != OK || !exec_ok(a, "COMMIT"))
		return TRANSIENT;
	return OK;
}

/* ---- the fast path ---- */

/* A result of the pipeline, and the NULL that ends it. */
static PGresult *
pipeline_result(PGconn *c)
{
	PGresult *r = PQgetResult(c), *more;

	if (r && PQresultStatus(r) != PGRES_PIPELINE_SYNC)
		while (PQstatus(c) == CONNECTION_OK &&
		    (more = PQgetResult(c)) != NULL)
			PQclear(more);
	return r;
}

/* The sums and COMMIT, sent together: one round trip. OK; FALLBACK when
 * PostgreSQL refused the sums for a row's sake; TRANSIENT else, an
 * unanswered COMMIT included (the batch is tried again, and its rows are
 * then duplicates, skipped by the staging path). */
static int
fold_commit(struct attempt *a, const struct fold *f)
{
	PGconn *c = a->b->pg;
	PGresult *r[3] = { NULL, NULL, NULL };
	int i, rc = TRANSIENT;

	if (PQenterPipelineMode(c) &&
	    PQsendQueryParams(c, fold_sql, FOLD_PARAMS, NULL, f->p, NULL, NULL,
	    0) && PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) &&
	    PQpipelineSync(c))
		for (i = 0; i < 3 && PQstatus(c) == CONNECTION_OK; i++)
			r[i] = pipeline_result(c);
	if (PQresultStatus(r[0]) != PGRES_COMMAND_OK)
		rc = row_error(r[0]) ? FALLBACK : TRANSIENT;
	else if (PQresultStatus(r[1]) == PGRES_COMMAND_OK &&
	    PQresultStatus(r[2]) == PGRES_PIPELINE_SYNC)
		rc = OK;
	if (rc != OK)
		pgconn_error(c, PQresultStatus(r[0]) != PGRES_COMMAND_OK ? r[0] :
		    r[1], a->err, sizeof a->err);
	for (i = 0; i < 3; i++)
		PQclear(r[i]);
	/* a connection left in pipeline mode could run nothing else: a new
	 * one for the next try */
	if (!PQexitPipelineMode(c)) {
		PQfinish(c);
		a->b->pg = NULL;
		a->b->pg_reconnects++;
	}
	return rc;
}

/* The fast path's transaction: BEGIN and COPY into events in one round
 * trip, the rows sent, then fold_commit. FALLBACK when PostgreSQL refused
 * a row: a duplicate of an event already there (unique_violation), or a
 * row of its own fault. */
static int
try_fast(struct attempt *a, const struct fold *f)
{
	PGresult *r;

	a->b->in_txn = 1;
	if ((r = copy_rows(a, fast_copy_sql, 0, a->bt->n)) == NULL)
		return TRANSIENT;
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		int rc = row_error(r) ? FALLBACK : TRANSIENT;

		pgconn_error(a->b->pg, r, a->err, sizeof a->err);
		PQclear(r);
		return rc;
	}
	PQclear(r);
	return fold_commit(a, f);
}

static void
rollback(struct bc *b)
{
	if (PQstatus(b->pg) == CONNECTION_OK) {
		PGresult *r = PQexec(b->pg, "ROLLBACK");

		PQclear(r);
	}
	b->in_txn = 0;
}

/* One try at the batch: the fast path when f holds its sums (*fast 1),
 * the staging path when not, or when the fast path met a row PostgreSQL
 * refused (then *fast becomes 0 for the tries that follow). */
static int
try_commit(struct bc *b, struct batch *bt, struct staged *st,
    const struct fold *f, int *fast, struct attempt *a)
{
	int rc;

	memset(a, 0, sizeof *a);
	a->b = b;
	a->bt = bt;
	a->st = st;
	if (*fast) {
		rc = try_fast(a, f);
		if (rc == OK) {
			a->inserted = a->staged = bt->n;
			b->in_txn = 0;
			return OK;
		}
		rollback(b);
		if (rc != FALLBACK)
			return TRANSIENT;
		*fast = 0;
	}
	rc = try_staging(a);
	if (rc != OK)
		rollback(b);
	b->in_txn = 0;
	return rc;
}

static void
count_batch(struct bc *b, const struct batch *bt, const struct attempt *a,
    int fast, int64_t t0)
{
	hist_record(b->commit_us, (uint64_t)(stats_mono_us() - t0));
	hist_record(b->batch_rows, bt->n);
	b->batches++;
	if (fast)
		b->batches_fast++;
	else
		b->batches_fallback++;
	b->rows_committed += a->inserted;
	b->duplicates += a->staged - a->inserted;
	b->dead += a->dead;
	b->pg_error[0] = '\0';
}

int
commit_batch(struct bc *b, struct batch *bt)
{
	struct staged *st = calloc(bt->n, sizeof *st);
	struct attempt a;
	struct fold f;
	long backoff = 100;
	int64_t t0;
	size_t i;
	int rc = -1, fast;

	if (st == NULL)
		die_nomem();
	for (i = 0; i < bt->n; i++)
		stage_row(&bt->rows[i], &st[i]);
	fast = fold_batch(st, bt->n, &f) == 0;
	for (;;) {
		if (pg_ensure(b) == 0) {
			t0 = stats_mono_us();
			if (try_commit(b, bt, st, &f, &fast, &a) == OK) {
				count_batch(b, bt, &a, fast, t0);
				rc = 0;
				break;
			}
			log_warn("batch not committed; will retry rows=%zu "
			    "reason=\"%s\"", bt->n, a.err);
			snprintf(b->pg_error, sizeof b->pg_error, "%s", a.err);
			drop_if_standby(b);
		}
		if (b->d.stop) {
			log_info("stopping: batch abandoned unacknowledged rows=%zu",
			    bt->n);
			break;
		}
		daemon_idle(&b->d, backoff);
		backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
	}
	for (i = 0; i < bt->n; i++)
		staged_free(&st[i]);
	free(st);
	fold_free(&f);
	return rc;
}
