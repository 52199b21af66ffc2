/* batch-commit: commit events to PostgreSQL in batches, one transaction per
 * batch, and acknowledge them in the stream only after COMMIT returned. */
#include <stdio.h>
#include <stdlib.h>

#include "bc.h"
#include "hist.h"
#include "log.h"
#include "prog.h"
#include "stats.h"

#define OPT_CFG struct bc_cfg
static const struct opt options[] = {
	O_LONG("batch-size", batch_size, "1", "100000", "500",
	    "close a batch at N events"),
	O_DURATION("claim-idle", claim_idle_ms, "100ms", "24h", "30s",
	    "claim entries another consumer left pending this long"),
	/* O_NAME's check with a default made at start, as O_TEXT shows one */
	O_NAME_TEXT("consumer", "NAME", consumer, "128", "HOST:PID",
	    "consumer name in the group"),
	O_TEXT("db", "CONNINFO", db, "$DATABASE_URL, else PG* variables",
	    "PostgreSQL"),
	O_STR("from", "ADDR", from, "stream:events@commit",
	    "stream:NAME@GROUP, -, file:PATH or unix:PATH"),
	O_DURATION("max-wait", max_wait_ms, "1ms", "60s", "40ms",
	    "close a batch this long after its first event"),
	O_TEXT("redis", "URL", redis_url,
	    "$LABPULSE_REDIS, else redis://127.0.0.1:6379/0",
	    "redis://HOST[:PORT][/DB], "
	    "sentinel://HOST:PORT[,HOST:PORT...]/MASTER[/DB] or unix:PATH"),
	O_TEXT("stats", "ADDR", stats_path, "$LABPULSE_RUNDIR/batch-commit.sock",
	    "stats socket: a path, tcp:HOST:PORT, or none"),
	O_DURATION("trim-interval", trim_interval_ms, "0", "24h", "5s",
	    "trim the stream this often to the oldest entry a group still "
	    "needs, 0 never"),
	O_END
};

static const struct prog_opts prog_opts = {
	"batch-commit",
	"Commit events to PostgreSQL in batches, one transaction per batch, "
	"each event once; acknowledge them in the stream only after COMMIT.",
	options, NULL, NULL, NULL
};

static struct bc bc;

/* The PostgreSQL connection; up: whether it is. */
static jv
stats_postgres(const struct bc *b, int up)
{
	jv pg = jv_object();

	pg = jv_object_set(pg, jv_string("connected"), jv_bool(up));
	pg = jv_object_set(pg, jv_string("sv_active"),
	    jv_number(up && b->in_txn));
	pg = jv_object_set(pg, jv_string("sv_idle"),
	    jv_number(up && !b->in_txn));
	pg = jv_object_set(pg, jv_string("sv_max"), jv_number(1));
	pg = jv_object_set(pg, jv_string("reconnects"),
	    jv_number(b->pg_reconnects));
	if (b->pg_error[0])
		pg = jv_object_set(pg, jv_string("last_error"),
		    jv_string(b->pg_error));
	return pg;
}

/* The stream's connection and where this consumer reads. */
static jv
stats_redis(const struct bc *b)
{
	jv rd = jv_object();

	rd = jv_object_set(rd, jv_string("url"), jv_string(b->g.rt.url));
	rd = jv_object_set(rd, jv_string("connected"),
	    jv_bool(b->g.c != NULL));
	rd = jv_object_set(rd, jv_string("stream"), jv_string(b->g.key));
	rd = jv_object_set(rd, jv_string("group"), jv_string(b->from.group));
	rd = jv_object_set(rd, jv_string("consumer"), jv_string(b->consumer));
	rd = jv_object_set(rd, jv_string("connects"), jv_number(b->g.connects));
	if (b->g.error[0])
		rd = jv_object_set(rd, jv_string("last_error"),
		    jv_string(b->g.error));
	return rd;
}

/* Each connection as a pool of one. */
static jv
stats_pools(const struct bc *b, int up)
{
	struct stats_pool p = { "postgres", up, 1, up && b->in_txn,
	    up && !b->in_txn, 0, 0 };
	struct stats_pool r = { "redis", b->g.c != NULL, 1, 0, b->g.c != NULL,
	    0, 0 };
	jv pools = jv_object_set(jv_object(), jv_string("postgres"),
	    stats_pool(&p));

	if (b->from.kind == ADDR_STREAM)
		pools = jv_object_set(pools, jv_string("redis"), stats_pool(&r));
	return pools;
}

static jv
fill_stats(void *arg)
{
	struct bc *b = arg;
	jv o = stats_header("batch-commit", b->started_us);
	int up = b->pg && PQstatus(b->pg) == CONNECTION_OK;
	long pending = source_pending(b);

	o = jv_object_set(o, jv_string("from"), jv_string(b->cfg.from));
	o = jv_object_set(o, jv_string("batches"), jv_number(b->batches));
	/* of them, those the fast path committed, and those that met a
	 * duplicate, a refused row or an event it cannot sum */
	o = jv_object_set(o, jv_string("batches_fast"),
	    jv_number(b->batches_fast));
	o = jv_object_set(o, jv_string("batches_fallback"),
	    jv_number(b->batches_fallback));
	o = jv_object_set(o, jv_string("rows_committed"),
	    jv_number(b->rows_committed));
	o = jv_object_set(o, jv_string("duplicates_skipped"),
	    jv_number(b->duplicates));
	o = jv_object_set(o, jv_string("dead_rows"), jv_number(b->dead));
	o = jv_object_set(o, jv_string("acked"), jv_number(b->acked));
	o = jv_object_set(o, jv_string("claimed"), jv_number(b->claimed));
	/* entries removed from the stream, and the trims that ran */
	o = jv_object_set(o, jv_string("trimmed"), jv_number(b->trimmed));
	o = jv_object_set(o, jv_string("trims"), jv_number(b->trims));
	o = jv_object_set(o, jv_string("pending"), pending >= 0 ?
	    jv_number(pending) : jv_null());
	o = jv_object_set(o, jv_string("commit_us"), stats_hist(b->commit_us));
	o = jv_object_set(o, jv_string("batch_rows"),
	    stats_hist(b->batch_rows));
	o = jv_object_set(o, jv_string("postgres"), stats_postgres(b, up));
	if (b->from.kind == ADDR_STREAM)
		o = jv_object_set(o, jv_string("redis"), stats_redis(b));
	o = jv_object_set(o, jv_string("pools"), stats_pools(b, up));
	o = jv_object_set(o, jv_string("queue"), stats_queue(pending >= 0 ?
	    pending : 0, -1, "entries pending in the group"));
	/* rows: taken, committed or found there already, set aside */
	o = jv_object_set(o, jv_string("delivery"), stats_delivery(
	    b->rows_committed + b->duplicates + b->dead,
	    b->rows_committed + b->duplicates, b->dead));
	return o;
}

/* --from is an address, and a stream is read only as a consumer group. */
static void
check_options(struct bc *b)
{
	char err[512];

	if (addr_parse_group_input(b->cfg.from, &b->from, err, sizeof err) < 0)
		usage_error("--from: %s", err);
}

/* The consumer name, the input, the stats socket and signals, then
 * PostgreSQL, tried every second until it answers or a signal comes. */
static void
acquire(struct bc *b)
{
	char err[512];
	int rc;

	group_consumer_name(b->cfg.consumer, b->consumer, sizeof b->consumer);
	if ((rc = source_open(b, err, sizeof err)) < 0)
		die_kind(rc, "--from %s: %s", b->cfg.from, err);
	b->started_us = stats_now_us();
	if ((b->commit_us = hist_new()) == NULL ||
	    (b->batch_rows = hist_new()) == NULL)
		die_nomem();
	daemon_start(&b->d, "batch-commit", b->cfg.stats_path, fill_stats, b);
	while (!b->d.stop && pg_ensure(b) < 0)
		daemon_idle(&b->d, 1000);
}

/* Commit the batch in hand, and acknowledge it once committed. */
static void
flush(struct bc *b, struct batch *bt)
{
	if (bt->n == 0)
		return;
	if (commit_batch(b, bt) == 0)
		source_ack(b, bt);
	batch_clear(bt);
}

static void
release(struct bc *b, struct batch *bt)
{
	/* a consumer named after its pid leaves the group tidy when it holds
	 * nothing; a named one (a unit's instance) stays for its next start */
	source_close(b, b->cfg.consumer == NULL);
	commit_close(b);
	free(bt->rows);
	hist_free(b->commit_us);
	hist_free(b->batch_rows);
	daemon_end(&b->d);
}

int
main(int argc, char **argv)
{
	struct bc *b = &bc;
	struct batch bt = { NULL, 0, 0, 0 };

	log_init("labpulse-batch-commit");
	opt_parse(&prog_opts, argc, argv, &b->cfg);
	check_options(b);
	acquire(b);
	if (!b->d.stop)
		daemon_ready(&b->d, NULL, "from=%s consumer=%s batch_size=%ld "
		    "max_wait_ms=%ld", b->cfg.from, b->consumer,
		    b->cfg.batch_size, b->cfg.max_wait_ms);
	while (!b->d.stop && !source_done(b)) {
		source_fill(b, &bt);
		flush(b, &bt);
	}
	daemon_stopping(&b->d);
	flush(b, &bt);	/* the batch in hand when the signal came */
	log_info("stopped batches=%lu rows=%lu duplicates=%lu dead=%lu",
	    b->batches, b->rows_committed, b->duplicates, b->dead);
	release(b, &bt);
	return b->in.error ? EX_IOERR : EX_OK;
}
