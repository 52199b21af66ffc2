/* batch-commit: commit events to PostgreSQL in batches, one transaction per
 * batch, and acknowledge them in the stream only after COMMIT returned. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "bc.h"
#include "hist.h"
#include "log.h"
#include "prog.h"
#include "parse.h"
#include "sd.h"
#include "stats.h"

const char usage_text[] =
"usage: labpulse batch-commit [--batch-size N] [--claim-idle DURATION]\n"
"           [--consumer NAME] [--db CONNINFO] [--from ADDR]\n"
"           [--max-wait DURATION] [--redis URL] [--stats PATH]\n"
"           [--trim-interval DURATION]\n"
"       labpulse batch-commit --help | --version\n";

const char help_text[] =
"Commit events to PostgreSQL in batches, one transaction per batch, each event\n"
"once; acknowledge them in the stream only after COMMIT.\n"
"\n"
"  --batch-size N           close a batch at N events (default: 500)\n"
"  --claim-idle DURATION    claim entries another consumer left pending this\n"
"                           long (default: 30s)\n"
"  --consumer NAME          consumer name in the group (default: HOST:PID)\n"
"  --db CONNINFO            PostgreSQL (default: $DATABASE_URL, else PG* variables)\n"
"  --from ADDR              stream:NAME@GROUP, -, file:PATH or unix:PATH\n"
"                           (default: stream:events@commit)\n"
"  --max-wait DURATION      close a batch this long after its first event\n"
"                           (default: 40ms)\n"
"  --redis URL              redis://HOST[:PORT][/DB] or unix:PATH\n"
"                           (default: $LABPULSE_REDIS, else redis://127.0.0.1:6379/0)\n"
"  --stats PATH             stats socket, or none\n"
"                           (default: $LABPULSE_RUNDIR/batch-commit.sock)\n"
"  --trim-interval DURATION trim the stream this often to the oldest entry\n"
"                           a group still needs, 0 never (default: 5s)\n"
"  -h, --help               show this help\n"
"  -V, --version            show the version\n";

enum {
	OPT_BATCH_SIZE = 256, OPT_CLAIM_IDLE, OPT_CONSUMER, OPT_DB, OPT_FROM,
	OPT_MAX_WAIT, OPT_REDIS, OPT_STATS, OPT_TRIM_INTERVAL
};

static const struct option longopts[] = {
	{ "batch-size",	required_argument, NULL, OPT_BATCH_SIZE },
	{ "claim-idle",	required_argument, NULL, OPT_CLAIM_IDLE },
	{ "consumer",	required_argument, NULL, OPT_CONSUMER },
	{ "db",		required_argument, NULL, OPT_DB },
	{ "from",	required_argument, NULL, OPT_FROM },
	{ "help",	no_argument,	   NULL, 'h' },
	{ "max-wait",	required_argument, NULL, OPT_MAX_WAIT },
	{ "redis",	required_argument, NULL, OPT_REDIS },
	{ "stats",	required_argument, NULL, OPT_STATS },
	{ "trim-interval", required_argument, NULL, OPT_TRIM_INTERVAL },
	{ "version",	no_argument,	   NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

static struct bc bc;

static void
on_signal(int sig)
{
	(void)sig;
	bc.stop = 1;
}

void
bc_serve(struct bc *b)
{
	prog_serve(b->base);
}

void
bc_idle(struct bc *b, long ms)
{
	prog_idle(b->base, ms, &b->stop);
}

static jv
fill_stats(void *arg)
{
	struct bc *b = arg;
	jv o = stats_header("batch-commit", b->started_us), pg, rd;
	int up = b->pg && PQstatus(b->pg) == CONNECTION_OK;
	long pending = source_pending(b);

	o = jv_object_set(o, jv_string("from"), jv_string(b->cfg.from));
	o = jv_object_set(o, jv_string("batches"), jv_number(b->batches));
	o = jv_object_set(o, jv_string("rows_committed"), jv_number(b->rows_committed));
	o = jv_object_set(o, jv_string("duplicates_skipped"), jv_number(b->duplicates));
	o = jv_object_set(o, jv_string("dead_rows"), jv_number(b->dead));
	o = jv_object_set(o, jv_string("acked"), jv_number(b->acked));
	o = jv_object_set(o, jv_string("claimed"), jv_number(b->claimed));
	/* entries removed from the stream, and the trims that ran */
	o = jv_object_set(o, jv_string("trimmed"), jv_number(b->trimmed));
	o = jv_object_set(o, jv_string("trims"), jv_number(b->trims));
	o = jv_object_set(o, jv_string("pending"), pending >= 0 ?
	    jv_number(pending) : jv_null());
	o = jv_object_set(o, jv_string("commit_us"), stats_hist(b->commit_us));
	o = jv_object_set(o, jv_string("batch_rows"), stats_hist(b->batch_rows));
	pg = jv_object();
	pg = jv_object_set(pg, jv_string("connected"), jv_bool(up));
	pg = jv_object_set(pg, jv_string("sv_active"), jv_number(up && b->in_txn));
	pg = jv_object_set(pg, jv_string("sv_idle"), jv_number(up && !b->in_txn));
	pg = jv_object_set(pg, jv_string("sv_max"), jv_number(1));
	pg = jv_object_set(pg, jv_string("reconnects"), jv_number(b->pg_reconnects));
	if (b->pg_error[0])
		pg = jv_object_set(pg, jv_string("last_error"), jv_string(b->pg_error));
	o = jv_object_set(o, jv_string("postgres"), pg);
	if (b->from.kind == ADDR_STREAM) {
		rd = jv_object();
		rd = jv_object_set(rd, jv_string("url"), jv_string(b->g.rt.url));
		rd = jv_object_set(rd, jv_string("connected"), jv_bool(b->g.c != NULL));
		rd = jv_object_set(rd, jv_string("stream"), jv_string(b->g.key));
		rd = jv_object_set(rd, jv_string("group"), jv_string(b->from.group));
		rd = jv_object_set(rd, jv_string("consumer"), jv_string(b->consumer));
		rd = jv_object_set(rd, jv_string("connects"),
		    jv_number(b->g.connects));
		if (b->g.error[0])
			rd = jv_object_set(rd, jv_string("last_error"),
			    jv_string(b->g.error));
		o = jv_object_set(o, jv_string("redis"), rd);
	}
	{
		struct stats_pool p = { "postgres", up, 1, up && b->in_txn,
		    up && !b->in_txn, 0, 0 };
		jv pools = jv_object_set(jv_object(), jv_string("postgres"),
		    stats_pool(&p));

		if (b->from.kind == ADDR_STREAM) {
			struct stats_pool r = { "redis", b->g.c != NULL, 1, 0,
			    b->g.c != NULL, 0, 0 };

			pools = jv_object_set(pools, jv_string("redis"),
			    stats_pool(&r));
		}
		o = jv_object_set(o, jv_string("pools"), pools);
	}
	o = jv_object_set(o, jv_string("queue"), stats_queue(pending >= 0 ?
	    pending : 0, -1, "entries pending in the group"));
	/* rows: taken, committed or found there already, set aside */
	o = jv_object_set(o, jv_string("delivery"), stats_delivery(
	    b->rows_committed + b->duplicates + b->dead,
	    b->rows_committed + b->duplicates, b->dead));
	return o;
}

static void
parse_args(int argc, char **argv, struct bc_cfg *c)
{
	int ch;

	c->from = "stream:events@commit";
	c->batch_size = 500;
	c->max_wait_ms = 40;
	c->claim_idle_ms = 30000;
	c->trim_interval_ms = 5000;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":hV", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_BATCH_SIZE:
			opt_range("batch-size", parse_long, optarg, 1, 100000,
			    &c->batch_size);
			break;
		case OPT_CLAIM_IDLE:
			opt_range("claim-idle", parse_duration_ms, optarg, 100,
			    86400000, &c->claim_idle_ms);
			break;
		case OPT_CONSUMER:
			if (*optarg == '\0' || strlen(optarg) > 128) {
				log_error("--consumer: must be 1 to 128 bytes");
				usage(64);
			}
			c->consumer = optarg;
			break;
		case OPT_DB:
			c->db = optarg;
			break;
		case OPT_FROM:
			c->from = optarg;
			break;
		case 'h':
			usage(0);
		case OPT_MAX_WAIT:
			opt_range("max-wait", parse_duration_ms, optarg, 1,
			    60000, &c->max_wait_ms);
			break;
		case OPT_REDIS:
			c->redis_url = optarg;
			break;
		case OPT_STATS:
			c->stats_path = optarg;
			break;
		case OPT_TRIM_INTERVAL:
			opt_range("trim-interval", parse_duration_ms, optarg, 0,
			    86400000, &c->trim_interval_ms);
			break;
		case 'V':
			printf("labpulse batch-commit %s\n", LABPULSE_VERSION);
			exit(0);
		default:
			bad_option(ch, argv);
		}
	}
	no_operands(argc, argv);
}

int
main(int argc, char **argv)
{
	struct bc_cfg *c = &bc.cfg;
	struct stats_server *stats = NULL;
	struct sigaction sa;
	struct batch bt = { NULL, 0, 0, 0 };
	char err[512], host[128];
	int ready = 0;

	log_init("labpulse-batch-commit");
	parse_args(argc, argv, c);
	if (addr_parse(c->from, &bc.from, err, sizeof err) < 0) {
		log_error("--from: %s", err);
		usage(64);
	}
	if (bc.from.kind == ADDR_STREAM && bc.from.group[0] == '\0') {
		log_error("--from: a stream is read as a consumer group: "
		    "stream:%s@GROUP", bc.from.stream);
		usage(64);
	}
	if (c->consumer)
		snprintf(bc.consumer, sizeof bc.consumer, "%s", c->consumer);
	else {
		gethostname(host, sizeof host);
		host[sizeof host - 1] = '\0';
		snprintf(bc.consumer, sizeof bc.consumer, "%s:%ld", host,
		    (long)getpid());
	}
	if (source_open(&bc, err, sizeof err) < 0)
		die(bc.from.kind == ADDR_STREAM ? 78 : 66, "--from %s: %s",
		    c->from, err);
	bc.started_us = stats_now_us();
	bc.commit_us = hist_new();
	bc.batch_rows = hist_new();
	bc.base = event_base_new();
	if (bc.base == NULL || bc.commit_us == NULL || bc.batch_rows == NULL)
		die(71, "out of memory");
	stats = prog_stats(bc.base, "batch-commit", c->stats_path, fill_stats, &bc);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;	/* no SA_RESTART: waits end early */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	while (!bc.stop && pg_ensure(&bc) < 0)
		bc_idle(&bc, 1000);
	if (!bc.stop) {
		log_info("ready from=%s consumer=%s batch_size=%ld max_wait_ms=%ld",
		    c->from, bc.consumer, c->batch_size, c->max_wait_ms);
		sd_notify_state("READY=1");
		ready = 1;
	}
	while (!bc.stop) {
		source_fill(&bc, &bt);
		if (bt.n > 0) {
			if (commit_batch(&bc, &bt) == 0)
				source_ack(&bc, &bt);
			batch_clear(&bt);
		}
		if (bc.from.kind != ADDR_STREAM && bc.in_eof && bc.inlen == 0)
			break;
	}
	/* the batch in hand when the signal came */
	if (bt.n > 0) {
		if (commit_batch(&bc, &bt) == 0)
			source_ack(&bc, &bt);
		batch_clear(&bt);
	}
	if (ready)
		sd_notify_state("STOPPING=1");
	log_info("stopped batches=%lu rows=%lu duplicates=%lu dead=%lu",
	    bc.batches, bc.rows_committed, bc.duplicates, bc.dead);
	/* a consumer named after its pid leaves the group tidy when it holds
	 * nothing; a named one (a unit's instance) stays for its next start */
	group_close(&bc.g, c->consumer == NULL);
	free(bt.rows);
	free(bc.inbuf);
	if (bc.pg)
		PQfinish(bc.pg);
	stats_close(stats);
	hist_free(bc.commit_us);
	hist_free(bc.batch_rows);
	event_base_free(bc.base);
	return bc.in_error ? 74 : 0;
}
