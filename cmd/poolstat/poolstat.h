/* poolstat.h: the parts of poolstat: a tick collected from the daemons'
 * stats sockets, PostgreSQL and Redis (collect.c), shown as a table, lines
 * or Prometheus text (show.c), and judged against thresholds (check.c). */
#ifndef POOLSTAT_H
#define POOLSTAT_H

#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <jv.h>
#include <libpq-fe.h>

#include "redis.h"

enum ps_format { FMT_TABLE, FMT_LINES, FMT_JSON, FMT_PROM };

/* The metrics of --check, in the order of its performance data. */
enum metric {
	M_POOL_UTIL, M_QUEUE_UTIL, M_CL_WAITING, M_MAXWAIT, M_STREAM_LAG, M_PENDING,
	M_DELIVERY, M_DAEMONS_DOWN, M_HOOKS_DEAD, M_REPLICA_LAG, M_REDIS_REPLICAS,
	M_COUNT
};
enum { L_WARN, L_CRIT };
/* --check's statuses, those of a monitoring plugin. */
enum { ST_OK, ST_WARNING, ST_CRITICAL, ST_UNKNOWN };
enum { OP_GT, OP_GE, OP_LT, OP_LE };
enum unit { U_NONE, U_PCT, U_US, U_MS, U_S };

struct threshold {
	int set;
	int op;
	double value;		/* in the metric's unit: %, a count, µs */
	enum unit unit;		/* as written, to say it back */
};

#define SOCKETS_MAX	64	/* --socket given that often at most */
#define PGBOUNCERS_MAX	16	/* --pgbouncer */
#define PG_NODES_MAX	16	/* hosts of a multi-host --db */

struct ps_cfg {
	const char *db, *redis_url, *rundir;
	const char *sockets[SOCKETS_MAX];
	int nsockets;
	const char *pgbouncers[PGBOUNCERS_MAX];
	int npgbouncers;
	enum ps_format format;	/* of the three below; FMT_TABLE for none */
	int json, prometheus, lines;
	long watch_ms;		/* 0: no --watch */
	long count;		/* 0: no --count */
	long sample_ms, timeout_ms;
	const char *record, *replay;
	int check, no_postgres, no_redis;
	struct threshold th[2][M_COUNT];
};

/* A growing string. */
struct sbuf {
	char *s;
	size_t len, cap;
};

void sb_printf(struct sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void sb_vprintf(struct sbuf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
void sb_putc(struct sbuf *b, char c);
void sb_reset(struct sbuf *b);
void sb_free(struct sbuf *b);

/* Counters of a sample that the JSON of a tick does not carry (it carries
 * their rates): for the rates, and for Prometheus, which wants counters. */
struct raw {
	int64_t mono_us;
	int pg;			/* the four below were read */
	double xact_commit, xact_rollback, blks_hit, blks_read;
	int redis;
	double commands;	/* total_commands_processed */
	double ops_now;		/* instantaneous_ops_per_sec */
	long sent_at_info;	/* our own commands sent before that INFO */
};

struct collector {
	const struct ps_cfg *cfg;
	struct redis_target rt;
	struct redisContext *redis;
	PGconn *pg;
	/* a multi-host --db: a connection to each of its hosts, by name */
	int nnodes;
	char node_name[PG_NODES_MAX][300];
	/* the node's items of the host, hostaddr and port lists ("" none) */
	char node_host[PG_NODES_MAX][256], node_addr[PG_NODES_MAX][256];
	char node_port[PG_NODES_MAX][16];
	PGconn *node[PG_NODES_MAX];
	PGconn *bouncer[PGBOUNCERS_MAX];	/* --pgbouncer's consoles */
	long redis_sent;	/* commands we sent, left out of ops/s */
	jv prev;		/* the tick before, or jv_null() */
	struct raw raw, prev_raw;
	char note[400];		/* why no daemon was found, or "" */
	volatile sig_atomic_t *stop;
};

/* collect.c */
int collector_init(struct collector *co, const struct ps_cfg *c,
    volatile sig_atomic_t *stop, char *err, size_t errlen);
/* One sample as a tick, with rates from the tick before when there is
 * one. */
jv collector_tick(struct collector *co);
void collector_free(struct collector *co);
/* The parts of collect.c that cluster.c shares. */
jv source_down(const char *err);
int pg_query(struct collector *co, PGconn *pg, const char *sql,
    PGresult **res, int nres, char *err, size_t errlen);
void pg_clear(PGresult **res, int n);
double pg_num(const PGresult *r, int row, int col);
/* The value of key in text made of items KEY<kv>VALUE, each ended by a
 * byte of ends: INFO's lines (':', "\r\n") or the fields of its replica
 * lines ('=', ","); "" when it is not there. */
const char *field_str(const char *text, const char *key, int kv,
    const char *ends, char *buf, size_t len);
/* INFO's field key as a number, NAN when it is not there. */
double info_num(const char *info, const char *key);

/* cluster.c: what runs on several hosts. */
/* The hosts of --db (or $DATABASE_URL, or $PGHOST) as nodes, when there
 * are several. */
void nodes_init(struct collector *co);
/* Each PostgreSQL node: its role and replication lag. */
jv read_pg_nodes(struct collector *co);
/* SHOW POOLS of each --pgbouncer. */
jv read_pgbouncers(struct collector *co);
/* Redis's replication from INFO of the node connected to: its role,
 * replicas and their lag, into o. */
jv redis_replication(struct collector *co, const char *info, jv o);
/* Each sentinel's view of the master, for a sentinel:// target. */
jv read_sentinels(struct collector *co);
void cluster_free(struct collector *co);

/* The figures the thresholds judge, from a tick alone (so that a replayed
 * tick is judged as it was live). NAN where no source gives one. */
struct figures {
	int daemons, down;
	double v[M_COUNT];
	char where[M_COUNT][600];
	/* for --lines */
	double pending_total, in_s, rows_s, msgs_s, pg_conns, pg_util;
	double hooks_held;	/* hook messages queued or in flight */
};

/* check.c */
void figures_of(jv tick, const struct ps_cfg *c, struct figures *f);
jv figures_json(const struct figures *f);
/* Set the thresholds of the metrics expr names, one level's th[M_COUNT];
 * -1 with the reason in err. */
int check_parse(struct threshold *th, const char *expr, char *err,
    size_t errlen);
/* The state of tick and its line, "POOLSTAT STATE - reasons | perfdata". */
int check_judge(const struct ps_cfg *c, jv tick, const char *note,
    struct sbuf *line);
/* The state and its reasons alone, for the table's title. */
int check_state(const struct ps_cfg *c, jv tick, const char *note,
    struct sbuf *reasons);
const char *check_state_word(int state);

/* show.c */
void show_table(struct sbuf *b, const struct ps_cfg *c, jv tick,
    const char *note);
void show_line_header(struct sbuf *b);
void show_line(struct sbuf *b, const struct ps_cfg *c, jv tick);
/* raw is NULL for a replayed tick: its counters are then left out. */
void show_prometheus(struct sbuf *b, const struct ps_cfg *c, jv tick,
    const struct raw *raw);

/* Reading a jv without consuming it; a missing key or a non-object gives
 * null, a non-number NAN. */
jv jget(jv o, const char *key);
/* The length of an array; 0 for anything else. */
int jlen(jv a);
double jnum(jv o, const char *key);
int jtrue(jv o, const char *key);
const char *jstr(jv o, const char *key, char *buf, size_t len);
jv num_or_null(double x);
double round_to(double x, int decimals);
/* The daemon's name, with @HOST when it was reached over TCP: its name
 * in the tables and in --check's reasons. */
const char *daemon_label(jv d, char *buf, size_t len);
/* The kind of daemon d is: ingest, batch-commit, route, notify or "". */
const char *daemon_kind(jv d, char *buf, size_t len);
/* fn for each pool of daemon d: the daemon's name, the pool's, the pool. */
typedef void (*pool_fn)(void *arg, const char *name, const char *pool,
    jv p);
void each_pool(jv d, pool_fn fn, void *arg);
/* fn for each stream of rd, Redis's part of a tick, with g null and group
 * NULL; then for each of its groups. */
typedef void (*group_fn)(void *arg, jv s, const char *stream, jv g,
    const char *group);
void each_group(jv rd, group_fn fn, void *arg);
/* An error message on one line: control bytes as blanks, runs of blanks
 * as one, and jq's echo of the text it could not parse cut off. */
char *one_line(char *s);
/* A number as short as it reads: at most 2 decimals, no trailing zeros. */
const char *fmt_num(double x, char *buf, size_t len);

#endif
