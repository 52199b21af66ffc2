/* db.c: loadgen's two visits to PostgreSQL: --setup makes an instructor
 * for the run's dashboards (only the token's SHA-256 is stored, as
 * `labpulse instructor add` does) and revokes it at the end; --verify-db
 * compares the events table with what ingest acknowledged. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <nettle/sha2.h>

#include "loadgen.h"
#include "log.h"
#include "pgconn.h"

#define POLL_MS		200
#define STALL_MS	1000	/* no new rows this long: batch-commit is done */

int
db_open(struct lg *lg, char *err, size_t errlen)
{
	lg->pg = pgconn_open(lg->cfg.db, "labpulse-loadgen", err, errlen);
	return lg->pg ? 0 : -1;
}

void
db_close(struct lg *lg)
{
	if (lg->pg)
		PQfinish(lg->pg);
	lg->pg = NULL;
}

/* A connection that still answers, opened again if it dropped. */
static int
db_ready(struct lg *lg, char *err, size_t errlen)
{
	if (lg->pg && PQstatus(lg->pg) == CONNECTION_OK)
		return 0;
	if (lg->pg) {
		PQreset(lg->pg);
		if (PQstatus(lg->pg) == CONNECTION_OK)
			return 0;
		db_close(lg);
	}
	return db_open(lg, err, errlen);
}

static void
hex(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

int
db_setup(struct lg *lg, char *err, size_t errlen)
{
	struct sha256_ctx sha;
	uint8_t raw[24], digest[SHA256_DIGEST_SIZE];
	char hash[2 * SHA256_DIGEST_SIZE + 1], classes[24], idbuf[24];
	const char *p[2];
	PGresult *res;

	/* a fresh secret whatever the seed: the run is repeatable, its
	 * token is not */
	if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
		snprintf(err, errlen, "cannot get random bytes: %s",
		    strerror(errno));
		return -1;
	}
	hex(raw, sizeof raw, lg->token);
	sha256_init(&sha);
	sha256_update(&sha, strlen(lg->token), (const uint8_t *)lg->token);
	sha256_digest(&sha, sizeof digest, digest);
	hex(digest, sizeof digest, hash);
	snprintf(lg->instructor, sizeof lg->instructor, "loadgen-%s",
	    lg->run_id);
	snprintf(classes, sizeof classes, "%ld", lg->cfg.classes);

	res = PQexec(lg->pg, "BEGIN");
	PQclear(res);
	p[0] = lg->instructor;
	p[1] = hash;
	res = PQexecParams(lg->pg, "INSERT INTO instructors (name, token_hash)"
	    " VALUES ($1, $2) RETURNING id", 2, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pgconn_error(lg->pg, res, err, errlen);
		PQclear(res);
		PQclear(PQexec(lg->pg, "ROLLBACK"));
		return -1;
	}
	lg->instructor_id = atol(PQgetvalue(res, 0, 0));
	PQclear(res);
	snprintf(idbuf, sizeof idbuf, "%ld", lg->instructor_id);
	p[0] = idbuf;
	p[1] = classes;
	res = PQexecParams(lg->pg, "INSERT INTO instructor_classes"
	    " (instructor_id, class_id) SELECT $1::bigint, 'loadgen-' || g"
	    " FROM generate_series(0, $2::int - 1) g", 2, NULL, p, NULL, NULL,
	    0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pgconn_error(lg->pg, res, err, errlen);
		PQclear(res);
		PQclear(PQexec(lg->pg, "ROLLBACK"));
		lg->instructor_id = 0;
		return -1;
	}
	PQclear(res);
	res = PQexec(lg->pg, "COMMIT");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pgconn_error(lg->pg, res, err, errlen);
		PQclear(res);
		lg->instructor_id = 0;
		return -1;
	}
	PQclear(res);
	return 0;
}

void
db_revoke(struct lg *lg)
{
	char err[512], idbuf[24];
	const char *p[1] = { idbuf };
	PGresult *res;

	if (lg->instructor_id == 0)
		return;
	if (db_ready(lg, err, sizeof err) < 0) {
		log_error("cannot revoke instructor %s: %s", lg->instructor,
		    err);
		return;
	}
	snprintf(idbuf, sizeof idbuf, "%ld", lg->instructor_id);
	res = PQexecParams(lg->pg, "UPDATE instructors SET disabled_at = now()"
	    " WHERE id = $1::bigint AND disabled_at IS NULL", 1, NULL, p,
	    NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pgconn_error(lg->pg, res, err, sizeof err);
		log_error("cannot revoke instructor %s: %s", lg->instructor,
		    err);
	}
	PQclear(res);
	lg->instructor_id = 0;
}

static long
count_rows(struct lg *lg, const char *pattern, char *err, size_t errlen)
{
	const char *p[1] = { pattern };
	PGresult *res = PQexecParams(lg->pg, "SELECT count(*) FROM events"
	    " WHERE event_id LIKE $1", 1, NULL, p, NULL, NULL, 0);
	long n;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pgconn_error(lg->pg, res, err, errlen);
		PQclear(res);
		return -1;
	}
	n = atol(PQgetvalue(res, 0, 0));
	PQclear(res);
	return n;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR && lg_interrupted() < 2)
		;
}

/* The rows of the run by event id, onto the events' records: how many
 * acknowledged ones are missing; with record, the figures too. */
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
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pgconn_error(lg->pg, res, err, errlen);
		PQclear(res);
		return -1;
	}
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
 * compare the rows of the run with the events acknowledged. */
int
db_verify(struct lg *lg, char *err, size_t errlen)
{
	struct lg_verify *v = &lg->verify;
	char pattern[64];
	int64_t t0 = lg_now_us(), grew = t0;
	long rows, prev = -1;

	/* the run id is hex: nothing in it is a LIKE wildcard */
	snprintf(pattern, sizeof pattern, "%s%%", lg->prefix);
	v->acked = lg->total.ev_acked;
	if (db_ready(lg, err, errlen) < 0)
		return -1;
	for (;;) {
		rows = count_rows(lg, pattern, err, errlen);
		if (rows < 0)
			return -1;
		if (rows > prev) {
			prev = rows;
			grew = lg_now_us();
		}
		/* enough rows: are they the acknowledged ones? */
		if ((uint64_t)rows >= v->acked) {
			long missing = scan(lg, pattern, 0, err, errlen);

			if (missing < 0)
				return -1;
			if (missing == 0)
				break;
		}
		if (lg_interrupted() >= 2 ||
		    lg_now_us() - grew >= STALL_MS * 1000 ||
		    lg_now_us() - t0 >= lg->cfg.timeout_ms * 1000)
			break;
		sleep_ms(POLL_MS);
	}
	v->waited_s = (double)(lg_now_us() - t0) / 1e6;
	v->missing_ids = jv_array();
	v->duplicated_ids = jv_array();
	v->done = 1;
	if (scan(lg, pattern, 1, err, errlen) < 0) {
		jv_free(v->missing_ids);
		jv_free(v->duplicated_ids);
		v->done = 0;
		return -1;
	}
	return 0;
}
