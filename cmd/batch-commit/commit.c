/* commit.c: one transaction per batch: COPY into a staging table, move the
 * rows into events skipping duplicates, update student_progress from the
 * very rows inserted. A row PostgreSQL refuses is isolated by splitting the
 * batch under savepoints, and set aside in dead_events with the reason. */
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

enum { OK = 0, TRANSIENT = -1 };

static const char setup_sql[] =
	"SET TimeZone = 'UTC';"
	"SET client_min_messages = warning;"
	/* the columns of events as the migrations made them */
	"CREATE TEMP TABLE IF NOT EXISTS lp_staging"
	" (LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS";

static const char copy_sql[] =
	"COPY lp_staging (class_id, student_id, event_id, event_type,"
	" event_time, received_at, session_id, notebook_path, cell_id,"
	" cell_index, cell_type, execution_count, has_error,"
	" execution_duration_ms, payload) FROM STDIN";

/* Rows are locked in key order, so that consumers sharing students cannot
 * deadlock on student_progress. */
static const char move_sql[] =
	"WITH ins AS ("
	" INSERT INTO events (class_id, student_id, event_id, event_type,"
	"  event_time, received_at, session_id, notebook_path, cell_id,"
	"  cell_index, cell_type, execution_count, has_error,"
	"  execution_duration_ms, payload)"
	" SELECT class_id, student_id, event_id, event_type, event_time,"
	"  received_at, session_id, notebook_path, cell_id, cell_index,"
	"  cell_type, execution_count, has_error, execution_duration_ms, payload"
	" FROM lp_staging"
	" ON CONFLICT (student_id, event_id) DO NOTHING"
	" RETURNING class_id, student_id, coalesce(notebook_path, '') AS nb,"
	"  event_type, has_error, event_time"
	"), prog AS ("
	" INSERT INTO student_progress AS p (class_id, student_id, notebook_path,"
	"  events, executions, errors, first_activity, last_activity,"
	"  last_event_type)"
	" SELECT class_id, student_id, nb, count(*),"
	"  count(*) FILTER (WHERE event_type = 'cell_executed'),"
	"  count(*) FILTER (WHERE has_error), min(event_time), max(event_time),"
	"  (array_agg(event_type ORDER BY event_time DESC))[1]"
	" FROM ins GROUP BY class_id, student_id, nb"
	" ORDER BY class_id, student_id, nb"
	" ON CONFLICT (class_id, student_id, notebook_path) DO UPDATE SET"
	"  events = p.events + EXCLUDED.events,"
	"  executions = p.executions + EXCLUDED.executions,"
	"  errors = p.errors + EXCLUDED.errors,"
	"  first_activity = least(p.first_activity, EXCLUDED.first_activity),"
	"  last_event_type = CASE WHEN EXCLUDED.last_activity >= p.last_activity"
	"   THEN EXCLUDED.last_event_type ELSE p.last_event_type END,"
	"  last_activity = greatest(p.last_activity, EXCLUDED.last_activity)"
	")"
	" SELECT count(*) FROM ins";

static const char dead_sql[] =
	"INSERT INTO dead_events (stream_id, consumer, reason, sqlstate, raw)"
	" VALUES ($1, $2, $3, $4, $5)"
	" ON CONFLICT (stream_id, raw_sha256) DO NOTHING";

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
	r = PQexec(b->pg, setup_sql);
	if (PQresultStatus(r) == PGRES_COMMAND_OK) {
		PQclear(r);
		r = PQprepare(b->pg, "lp_move", move_sql, 0, NULL);
	}
	if (PQresultStatus(r) == PGRES_COMMAND_OK) {
		PQclear(r);
		r = PQprepare(b->pg, "lp_dead", dead_sql, 0, NULL);
	}
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		pgconn_error(b->pg, r, err, sizeof err);
		if (strcmp(err, b->pg_error) != 0)
			log_error("cannot prepare the session (is the schema "
			    "migrated? labpulse migrate-indexes up): %s", err);
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

void
commit_close(struct bc *b)
{
	if (b->pg)
		PQfinish(b->pg);
	b->pg = NULL;
}

/* One staged row in COPY's text format. */
struct staged {
	char *line;
	size_t len;
	char bad[300];		/* why the row cannot even be parsed */
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

/* A field of ev as COPY text: strings as they are (a NUL byte in one makes
 * PostgreSQL refuse the row, as it should), numbers in full, booleans t/f,
 * absent or null as \N. */
static void
put_field(struct evbuf_lite *o, jv ev, const char *name, const char *alt,
    const char *alt2)
{
	jv v = jv_object_get(jv_copy(ev), jv_string(name));
	char num[64];

	if ((!jv_is_valid(v) || jv_get_kind(v) == JV_KIND_NULL) && alt) {
		jv_free(v);
		v = jv_object_get(jv_copy(ev), jv_string(alt));
		if ((!jv_is_valid(v) || jv_get_kind(v) == JV_KIND_NULL) && alt2) {
			jv_free(v);
			v = jv_object_get(jv_copy(ev), jv_string(alt2));
		}
	}
	switch (jv_get_kind(v)) {
	case JV_KIND_STRING:
		put_text(o, jv_string_value(v),
		    (size_t)jv_string_length_bytes(jv_copy(v)));
		break;
	case JV_KIND_NUMBER:
		snprintf(num, sizeof num, "%.17g", jv_number_value(v));
		lite_add(o, num, strlen(num));
		break;
	case JV_KIND_TRUE:
		lite_add(o, "t", 1);
		break;
	case JV_KIND_FALSE:
		lite_add(o, "f", 1);
		break;
	case JV_KIND_INVALID:
	case JV_KIND_NULL:
		lite_add(o, "\\N", 2);
		break;
	default: {	/* an array or object where a scalar belongs */
		jv txt = jv_dump_string(jv_copy(v), 0);

		put_text(o, jv_string_value(txt),
		    (size_t)jv_string_length_bytes(jv_copy(txt)));
		jv_free(txt);
	}
	}
	jv_free(v);
}

/* The columns of copy_sql but the payload, and the fields they come from:
 * the first of field, alt and alt2 that is there. */
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

static void
stage_row(const struct row *r, struct staged *s)
{
	struct evbuf_lite o = { NULL, 0, 0 };
	jv ev = jv_parse_sized(r->raw, (int)r->len);
	char now[32];
	size_t i;

	memset(s, 0, sizeof *s);
	if (!jv_is_valid(ev) || jv_get_kind(ev) != JV_KIND_OBJECT) {
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
		return;
	}
	if (!jv_object_has(jv_copy(ev), jv_string("receivedAt"))) {
		events_format_time(stats_now_us(), now);
		ev = jv_object_set(ev, jv_string("receivedAt"), jv_string(now));
	}
	for (i = 0; i < sizeof columns / sizeof columns[0]; i++) {
		put_field(&o, ev, columns[i].field, columns[i].alt,
		    columns[i].alt2);
		lite_add(&o, "\t", 1);
	}
	/* the payload is the event as it was queued: no second encoding */
	jv_free(ev);
	put_text(&o, r->raw, r->len);
	lite_add(&o, "\n", 1);
	s->line = o.p;
	s->len = o.n;
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
	r = PQexecPrepared(a->b->pg, "lp_dead", 5, p, len, fmt, 0);
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

/* Stage rows [lo, hi) and move them; split on a row's error. */
static int
attempt_range(struct attempt *a, size_t lo, size_t hi)
{
	struct bc *b = a->b;
	struct evbuf_lite data = { NULL, 0, 0 };
	PGresult *r;
	size_t i, n = 0;
	char state[8] = "", reason[512];

	for (i = lo; i < hi; i++)
		if (a->st[i].line) {
			lite_add(&data, a->st[i].line, a->st[i].len);
			n++;
		}
	if (n == 0) {
		free(data.p);
		return OK;
	}
	if (!exec_ok(a, "SAVEPOINT lp_rows"))
		goto transient;
	r = PQexec(b->pg, copy_sql);
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		pgconn_error(b->pg, r, a->err, sizeof a->err);
		PQclear(r);
		goto transient;
	}
	PQclear(r);
	if (PQputCopyData(b->pg, data.p, (int)data.n) != 1 ||
	    PQputCopyEnd(b->pg, NULL) != 1) {
		pgconn_error(b->pg, NULL, a->err, sizeof a->err);
		goto transient;
	}
	free(data.p);
	data.p = NULL;
	r = PQgetResult(b->pg);
	while (PQgetResult(b->pg) != NULL)
		;	/* drain: COPY answers once */
	if (PQresultStatus(r) == PGRES_COMMAND_OK) {
		PQclear(r);
		r = PQexecPrepared(b->pg, "lp_move", 0, NULL, NULL, NULL, 0);
		if (PQresultStatus(r) == PGRES_TUPLES_OK) {
			unsigned long ins = strtoul(PQgetvalue(r, 0, 0), NULL, 10);

			PQclear(r);
			if (!exec_ok(a, "TRUNCATE lp_staging") ||
			    !exec_ok(a, "RELEASE SAVEPOINT lp_rows"))
				goto transient;
			a->inserted += ins;
			a->staged += n;
			return OK;
		}
	}
	/* refused: a row's fault, or not */
	pgconn_error(b->pg, r, reason, sizeof reason);
	if (r && PQresultErrorField(r, PG_DIAG_SQLSTATE))
		snprintf(state, sizeof state, "%s",
		    PQresultErrorField(r, PG_DIAG_SQLSTATE));
	if (!row_error(r) || PQstatus(b->pg) != CONNECTION_OK) {
		snprintf(a->err, sizeof a->err, "%s", reason);
		PQclear(r);
		goto transient;
	}
	PQclear(r);
	if (!exec_ok(a, "ROLLBACK TO SAVEPOINT lp_rows"))
		goto transient;
	if (n == 1) {
		for (i = lo; i < hi && a->st[i].line == NULL; i++)
			;
		return set_aside(a, i, reason, state);
	}
	{
		size_t mid = lo + (hi - lo) / 2;

		if (attempt_range(a, lo, mid) != OK)
			return TRANSIENT;
		return attempt_range(a, mid, hi);
	}
transient:
	free(data.p);
	return TRANSIENT;
}

static int
try_commit(struct bc *b, struct batch *bt, struct staged *st,
    struct attempt *a)
{
	size_t i;

	memset(a, 0, sizeof *a);
	a->b = b;
	a->bt = bt;
	a->st = st;
	if (!exec_ok(a, "BEGIN"))
		return TRANSIENT;
	b->in_txn = 1;
	for (i = 0; i < bt->n; i++)
		if (st[i].line == NULL && set_aside(a, i, st[i].bad, NULL) != OK)
			goto fail;
	if (attempt_range(a, 0, bt->n) != OK)
		goto fail;
	if (!exec_ok(a, "COMMIT"))
		goto fail;
	b->in_txn = 0;
	return OK;
fail:
	if (PQstatus(b->pg) == CONNECTION_OK) {
		PGresult *r = PQexec(b->pg, "ROLLBACK");

		PQclear(r);
	}
	b->in_txn = 0;
	return TRANSIENT;
}

int
commit_batch(struct bc *b, struct batch *bt)
{
	struct staged *st = calloc(bt->n, sizeof *st);
	struct attempt a;
	long backoff = 100;
	int64_t t0;
	size_t i;
	int rc = -1;

	if (st == NULL)
		die_nomem();
	for (i = 0; i < bt->n; i++)
		stage_row(&bt->rows[i], &st[i]);
	for (;;) {
		if (pg_ensure(b) == 0) {
			t0 = stats_mono_us();
			if (try_commit(b, bt, st, &a) == OK) {
				hist_record(b->commit_us,
				    (uint64_t)(stats_mono_us() - t0));
				hist_record(b->batch_rows, bt->n);
				b->batches++;
				b->rows_committed += a.inserted;
				b->duplicates += a.staged - a.inserted;
				b->dead += a.dead;
				b->pg_error[0] = '\0';
				rc = 0;
				break;
			}
			log_warn("batch not committed; will retry rows=%zu "
			    "reason=\"%s\"", bt->n, a.err);
			snprintf(b->pg_error, sizeof b->pg_error, "%s", a.err);
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
		free(st[i].line);
	free(st);
	return rc;
}
