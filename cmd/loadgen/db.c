/* db.c: loadgen's visits to PostgreSQL: --setup makes an instructor for the
 * run's dashboards (only the token's SHA-256 is stored, as `labpulse
 * instructor add` does) and revokes it at the end; --verify-db compares the
 * events table with what ingest acknowledged. Each visit outlives a
 * PostgreSQL restart: a connection that broke (the server restarted, or
 * is still starting) is opened again, and the request made again, until
 * --timeout has passed; only then is PostgreSQL called unreachable. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "loadgen.h"
#include "log.h"
#include "pgconn.h"
#include "tokens.h"

#define POLL_MS		200
#define RETRY_MS	200
/* No new rows this long: batch-commit is done. After PostgreSQL was away,
 * longer: batch-commit then tries again up to 5 s apart, and may not have
 * tried yet. */
#define STALL_MS	1000
#define STALL_AWAY_MS	6000

/* What a request returns besides 0: failed for good, or on a connection
 * that broke (or never was), to be made again on a new one. */
#define DB_FAILED	-1
#define DB_AGAIN	-2

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR && lg_interrupted() < 2)
		;
}

/* --timeout as it was written, for messages: 10s, 2500ms. */
static void
fmt_timeout(char *buf, size_t len, long ms)
{
	if (ms % 1000 == 0)
		snprintf(buf, len, "%lds", ms / 1000);
	else
		snprintf(buf, len, "%ldms", ms);
}

/* A failure on the connection rather than of the request: the server went
 * away or is not ready (SQLSTATE class 08, 57P01-57P03), or libpq lost it
 * and gave no SQLSTATE. */
static int
broke(PGconn *c, const PGresult *res)
{
	const char *s;

	if (c == NULL || PQstatus(c) != CONNECTION_OK || res == NULL)
		return 1;
	s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	return s == NULL || strncmp(s, "08", 2) == 0 ||
	    strcmp(s, "57P01") == 0 || strcmp(s, "57P02") == 0 ||
	    strcmp(s, "57P03") == 0;
}

/* libpq's messages on one line: pgconn_error made their line breaks
 * blanks; the tabs that indent their second lines go too. */
static void
tidy(char *s)
{
	char *start = s, *o = s;
	int blank = 0;

	for (; *s; s++) {
		if (*s == ' ' || *s == '\t') {
			blank = o != start;
			continue;
		}
		if (blank)
			*o++ = ' ';
		blank = 0;
		*o++ = *s;
	}
	*o = '\0';
}

/* The error of res on err; DB_AGAIN or DB_FAILED, as broke() says. */
static int
failed(struct lg *lg, PGresult *res, char *err, size_t errlen)
{
	int rc = broke(lg->pg, res) ? DB_AGAIN : DB_FAILED;

	pgconn_error(lg->pg, res, err, errlen);
	tidy(err);
	PQclear(res);
	return rc;
}

/* A server's notices (its WARNING as it shuts down) are not loadgen's to
 * print: what they mean for the run is told in its own lines. */
static void
no_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

void
db_close(struct lg *lg)
{
	PQfinish(lg->pg);	/* which takes NULL */
	lg->pg = NULL;
}

/* A connection that answered last time, or a new one, opened within the
 * deadline. A broken one is told once; its coming back is told by
 * db_answered, not here: a server that accepts and then drops would
 * otherwise be told gone and back on every try. */
static int
db_connect(struct lg *lg, int64_t deadline, char *err, size_t errlen)
{
	int64_t left = deadline - lg_now_us();
	char t[32];

	if (lg->pg && PQstatus(lg->pg) == CONNECTION_OK)
		return 0;
	db_close(lg);
	lg->pg = pgconn_open_timeout(lg->cfg.db, "labpulse-loadgen",
	    (long)((left > 0 ? left : 0) + 999999) / 1000000, err, errlen);
	if (lg->pg == NULL) {
		tidy(err);
		if (!lg->pg_down) {
			fmt_timeout(t, sizeof t, lg->cfg.timeout_ms);
			log_warn("cannot reach PostgreSQL: %s; trying again "
			    "for up to %s", err, t);
			lg->pg_down = 1;
		}
		return -1;
	}
	PQsetNoticeProcessor(lg->pg, no_notice, NULL);
	return 0;
}

/* A request was answered: PostgreSQL is back if it was away. */
static void
db_answered(struct lg *lg)
{
	if (lg->pg_down) {
		log_info("reached PostgreSQL again");
		lg->pg_down = 0;
		lg->pg_returned = 1;
	}
}

/* The request broke its connection: told once, and dropped. */
static void
db_broke(struct lg *lg, const char *err)
{
	char t[32];

	if (!lg->pg_down) {
		fmt_timeout(t, sizeof t, lg->cfg.timeout_ms);
		log_warn("lost the connection to PostgreSQL: %s; trying again "
		    "for up to %s", err, t);
		lg->pg_down = 1;
	}
	db_close(lg);
}

/* What the deadline ends: err says so, with the last failure. */
static void
timed_out(struct lg *lg, const char *last, char *err, size_t errlen)
{
	char t[32];

	fmt_timeout(t, sizeof t, lg->cfg.timeout_ms);
	snprintf(err, errlen, "cannot reach PostgreSQL in %s (--timeout): %s",
	    t, last);
}

/* op on a connection, made again on a new one while it breaks, until
 * --timeout: 0, or -1 with err. */
static int
db_retry(struct lg *lg, int (*op)(struct lg *, int, void *, char *,
    size_t), void *arg, char *err, size_t errlen)
{
	int64_t deadline = lg_now_us() + lg->cfg.timeout_ms * 1000, left;
	char last[512] = "";
	int attempt, rc;

	for (attempt = 0;; attempt++) {
		if (db_connect(lg, deadline, last, sizeof last) == 0) {
			rc = op(lg, attempt, arg, last, sizeof last);
			if (rc != DB_AGAIN)
				db_answered(lg);
			if (rc == 0)
				return 0;
			if (rc == DB_FAILED) {
				snprintf(err, errlen, "%s", last);
				return -1;
			}
			db_broke(lg, last);
		}
		left = deadline - lg_now_us();
		if (left <= 0 || lg_interrupted() >= 2) {
			timed_out(lg, last, err, errlen);
			return -1;
		}
		sleep_ms(left < RETRY_MS * 1000 ? (long)(left / 1000) + 1 :
		    RETRY_MS);
	}
}

static int
op_nothing(struct lg *lg, int attempt, void *arg, char *err, size_t errlen)
{
	(void)lg;
	(void)attempt;
	(void)arg;
	(void)err;
	(void)errlen;
	return 0;
}

int
db_open(struct lg *lg, char *err, size_t errlen)
{
	return db_retry(lg, op_nothing, NULL, err, errlen);
}

/* The instructor and its classes in one statement, so one transaction. An
 * attempt after one that broke first looks for what that one may have
 * committed before its answer was lost: the hash is unique. */
static int
op_setup(struct lg *lg, int attempt, void *arg, char *err, size_t errlen)
{
	const char *hash = arg, *p[3];
	char classes[24];
	PGresult *res;

	p[0] = lg->instructor;
	p[1] = hash;
	if (attempt > 0) {
		res = PQexecParams(lg->pg, "SELECT id FROM instructors"
		    " WHERE name = $1 AND token_hash = $2", 2, NULL, p, NULL,
		    NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			return failed(lg, res, err, errlen);
		if (PQntuples(res) == 1) {
			lg->instructor_id = atol(PQgetvalue(res, 0, 0));
			PQclear(res);
			return 0;
		}
		PQclear(res);
	}
	snprintf(classes, sizeof classes, "%ld", lg->cfg.classes);
	p[2] = classes;
	res = PQexecParams(lg->pg, "WITH i AS (INSERT INTO instructors"
	    " (name, token_hash) VALUES ($1, $2) RETURNING id),"
	    " c AS (INSERT INTO instructor_classes (instructor_id, class_id)"
	    " SELECT i.id, 'loadgen-' || g FROM i,"
	    " generate_series(0, $3::int - 1) g)"
	    " SELECT id FROM i", 3, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		return failed(lg, res, err, errlen);
	lg->instructor_id = atol(PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

int
db_setup(struct lg *lg, char *err, size_t errlen)
{
	uint8_t raw[24];
	char hash[TOKENS_HEX_SIZE];

	/* a fresh secret whatever the seed: the run is repeatable, its
	 * token is not */
	if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
		snprintf(err, errlen, "cannot get random bytes: %s",
		    strerror(errno));
		return -1;
	}
	tokens_hex(raw, sizeof raw, lg->token);
	tokens_sha256_hex(lg->token, strlen(lg->token), hash);
	snprintf(lg->instructor, sizeof lg->instructor, "loadgen-%s",
	    lg->run_id);
	if (db_retry(lg, op_setup, hash, err, errlen) < 0) {
		lg->instructor_id = 0;
		return -1;
	}
	return 0;
}

/*
 * Made again as it is: a revoked instructor stays as it was revoked. As
 * `labpulse instructor revoke` does, the same statement notifies every
 * notify (channel labpulse_revoke, the token's digest), which drops the
 * token from its cache and closes the dashboards still open with it.
 */
static int
op_revoke(struct lg *lg, int attempt, void *arg, char *err, size_t errlen)
{
	char idbuf[24];
	const char *p[1] = { idbuf };
	PGresult *res;

	(void)attempt;
	(void)arg;
	snprintf(idbuf, sizeof idbuf, "%ld", lg->instructor_id);
	res = PQexecParams(lg->pg, "WITH r AS (UPDATE instructors"
	    " SET disabled_at = now()"
	    " WHERE id = $1::bigint AND disabled_at IS NULL RETURNING token_hash)"
	    " SELECT count(pg_notify('labpulse_revoke', token_hash)) FROM r",
	    1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return failed(lg, res, err, errlen);
	PQclear(res);
	return 0;
}

int
db_revoke(struct lg *lg)
{
	char err[600];

	if (lg->instructor_id == 0)
		return 0;
	if (db_retry(lg, op_revoke, NULL, err, sizeof err) < 0) {
		log_error("cannot revoke instructor %s: %s; revoke it with: "
		    "labpulse instructor revoke %s", lg->instructor, err,
		    lg->instructor);
		return -1;
	}
	lg->instructor_id = 0;
	return 0;
}

static long
count_rows(struct lg *lg, const char *pattern, char *err, size_t errlen)
{
	const char *p[1] = { pattern };
	PGresult *res = PQexecParams(lg->pg, "SELECT count(*) FROM events"
	    " WHERE event_id LIKE $1", 1, NULL, p, NULL, NULL, 0);
	long n;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return failed(lg, res, err, errlen);
	n = atol(PQgetvalue(res, 0, 0));
	PQclear(res);
	return n;
}

/* The rows of the run by event id, onto the events' records: how many
 * acknowledged ones are missing; with record, the figures too. DB_AGAIN
 * or DB_FAILED when the query failed, and then nothing is recorded. */
static long
scan(struct lg *lg, const char *pattern, int record, char *err,
    size_t errlen)
{
	struct lg_verify *v = &lg->verify;
	const char *p[1] = { pattern };
	PGresult *res;
	long i, s, missing = 0;
	uint32_t n;
	int nt;

	res = PQexecParams(lg->pg, "SELECT event_id, count(*) FROM events"
	    " WHERE event_id LIKE $1 GROUP BY 1", 1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return failed(lg, res, err, errlen);
	for (s = 0; s < lg->nstudents; s++)
		for (n = 0; n < lg->students[s].nev; n++)
			lg->students[s].ev[n].db = 0;
	nt = PQntuples(res);
	for (i = 0; i < nt; i++) {
		const char *id = PQgetvalue(res, (int)i, 0);
		long c = atol(PQgetvalue(res, (int)i, 1));
		struct lg_evrec *e = students_find(lg, id, strlen(id), NULL);

		if (e != NULL)
			e->db = (uint8_t)(c > 255 ? 255 : c);
		if (!record)
			continue;
		v->rows += (uint64_t)c;
		if (c > 1) {
			v->duplicated++;
			if (e != NULL) {
				lg->st[e->stage].duplicated++;
				lg->total.duplicated++;
			}
			if (jv_array_length(jv_copy(v->duplicated_ids)) <
			    LG_NAMED_MAX)
				v->duplicated_ids = jv_array_append(
				    v->duplicated_ids, jv_string(id));
		}
	}
	PQclear(res);
	for (s = 0; s < lg->nstudents; s++) {
		struct lg_student *st = &lg->students[s];

		for (n = 0; n < st->nev; n++) {
			struct lg_evrec *e = &st->ev[n];

			if (e->state != EV_ACKED || e->db > 0)
				continue;
			missing++;
			if (!record)
				continue;
			v->missing++;
			lg->st[e->stage].missing++;
			lg->total.missing++;
			if (jv_array_length(jv_copy(v->missing_ids)) <
			    LG_NAMED_MAX)
				v->missing_ids = jv_array_append(v->missing_ids,
				    jv_string_fmt("%s%ld-%u", lg->prefix, s, n));
		}
	}
	return missing;
}

/* Wait for batch-commit (up to --timeout, while the rows keep coming), then
 * compare the rows of the run with the events acknowledged. A connection
 * that breaks meanwhile is opened again within the same --timeout. */
int
db_verify(struct lg *lg, char *err, size_t errlen)
{
	struct lg_verify *v = &lg->verify;
	char pattern[64], last[512] = "";
	int64_t t0 = lg_now_us(), grew = t0;
	int64_t deadline = t0 + lg->cfg.timeout_ms * 1000;
	long rows, prev = -1, missing, stall;
	int done = 0;

	/* the run id is hex: nothing in it is a LIKE wildcard */
	snprintf(pattern, sizeof pattern, "%s%%", lg->prefix);
	v->acked = lg->total.ev_acked;
	for (;;) {
		if (db_connect(lg, deadline, last, sizeof last) < 0)
			goto again;
		if (done) {
			/* the figures, from one last look */
			v->missing_ids = jv_array();
			v->duplicated_ids = jv_array();
			missing = scan(lg, pattern, 1, last, sizeof last);
			if (missing != DB_AGAIN)
				db_answered(lg);
			if (missing >= 0) {
				v->waited_s = (double)(lg_now_us() - t0) / 1e6;
				v->done = 1;
				return 0;
			}
			/* nothing was recorded before the query failed */
			jv_free(v->missing_ids);
			jv_free(v->duplicated_ids);
			if (missing == DB_FAILED)
				break;
			db_broke(lg, last);
			goto again;
		}
		rows = count_rows(lg, pattern, last, sizeof last);
		if (rows == DB_AGAIN) {
			db_broke(lg, last);
			goto again;
		}
		db_answered(lg);
		if (rows == DB_FAILED)
			break;
		if (rows > prev) {
			prev = rows;
			grew = lg_now_us();
		}
		/* enough rows: are they the acknowledged ones? */
		if ((uint64_t)rows >= v->acked) {
			missing = scan(lg, pattern, 0, last, sizeof last);
			if (missing == DB_FAILED)
				break;
			if (missing == DB_AGAIN) {
				db_broke(lg, last);
				goto again;
			}
			if (missing == 0) {
				done = 1;
				continue;
			}
		}
		stall = lg->pg_returned ? STALL_AWAY_MS : STALL_MS;
		if (lg_interrupted() >= 2 ||
		    lg_now_us() - grew >= stall * 1000 ||
		    lg_now_us() >= deadline) {
			done = 1;
			continue;
		}
		sleep_ms(POLL_MS);
		continue;
again:
		/* no answer: wait for PostgreSQL, within the deadline */
		if (lg_now_us() >= deadline || lg_interrupted() >= 2) {
			timed_out(lg, last, err, errlen);
			return -1;
		}
		sleep_ms(RETRY_MS);
	}
	snprintf(err, errlen, "%s", last);
	return -1;
}
