/* loadgen.h: what the files of loadgen share: the configuration, the
 * simulated students and their requests, the dashboards, and the figures. */
#ifndef LABPULSE_LOADGEN_H
#define LABPULSE_LOADGEN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <jv.h>
#include <libpq-fe.h>

#include "stats.h"
#include "url.h"
#include "wsclient.h"

#define LG_MAX_STAGES		64
#define LG_MAX_SLO		32
#define LG_MAX_DASH		256	/* each keeps a histogram of 250 KiB */
#define LG_DASH_PER_CLASS	64	/* bits of lg_evrec.seen */
#define LG_RETRIES		3	/* after 0.5, 1 and 2 s, as the extension */
#define LG_NAMED_MAX		10	/* missing or duplicated ids named */
#define LG_CONN_PER_MS		1000	/* requests/s one connection carries */

struct event_base;
struct event;
struct evbuffer;
struct evhttp_connection;
struct bufferevent;
struct hist;

enum lg_model { MODEL_CLOSED, MODEL_OPEN };
enum lg_proto { PROTO_WS, PROTO_SSE };
enum lg_dproto { DPROTO_WS, DPROTO_SSE, DPROTO_MIXED };

struct lg_stage_cfg {
	double value;		/* students (closed) or requests/s (open) */
	long ms;
};

struct lg_cfg {
	const char *url, *notify, *token, *db, *slo, *json, *csv, *html;
	long students, classes, dashboards, batch, conns, timeout_ms;
	long duration_ms;
	long seed;		/* below 2^53: exact as a JSON number */
	double think, rate;
	enum lg_dproto dproto;
	int setup, verify_db, quiet;
	struct lg_stage_cfg stages[LG_MAX_STAGES];
	int nstages;
};

/* The figures of one stage, or of the whole run. */
struct lg_metrics {
	double value;		/* students or rate of the stage */
	uint64_t due;		/* open model: requests that fell due */
	uint64_t sent, ok;	/* HTTP requests written (retries too), 2xx */
	uint64_t ev_sent, ev_acked, ev_lost;
	uint64_t st_2xx, st_4xx, st_5xx, st_other;
	uint64_t err_connect, err_timeout, err_reset;
	uint64_t created;	/* open model: requests made from the schedule */
	uint64_t unsent;	/* open model: due, never sent before the end */
	uint64_t missing, duplicated;	/* --verify-db */
	struct hist *ack, *ack_unc, *e2e;
	int64_t t0, t1;		/* monotonic microseconds */
	int64_t t_last;		/* the last answer to one of its requests */
	double duration_s;
	double busy_s;		/* t0 to its last answer, at least duration_s */
	double delivery_pct;	/* the lowest dashboard's share */
};

/* One event a student sent (or is about to send). */
enum { EV_NEW, EV_INFLIGHT, EV_ACKED, EV_LOST };
struct lg_evrec {
	int64_t sent_us;	/* its latest attempt written, 0 before any */
	uint64_t seen;		/* bit d: dashboard d of its class received it */
	uint8_t stage, state, db;	/* db: rows in the table (saturating) */
};

enum lg_kind { K_OPENED, K_CELL, K_HELP, K_SAVE };

struct lg_student {
	uint32_t index;
	int klass;
	uint64_t rng;
	/* the closed model's lesson, on a clock that stops while waiting */
	int active, running, waiting, stopping;
	struct event *timer;
	int64_t vbase, rt_resume;	/* virtual time at rt_resume */
	int64_t v_cell, v_help, v_save, v_last;
	int burst_left, opened;
	int next_kind;
	int64_t next_v_evt, next_v_post;
	uint32_t pend_first, pend_count;	/* accumulated for --batch */
	/* what it sent */
	struct lg_evrec *ev;
	uint32_t nev, cap;
	uint32_t exec_count, cell_index;
	struct lg_req *req;	/* closed model: its one request */
};

/* One POST and its retries. */
struct lg_req {
	struct lg *lg;
	struct lg_student *st;
	uint32_t first, count;	/* events first.. of st */
	int attempt, stage;
	int64_t due_us, sent_us;
	char *body;
	size_t len, cap;
	struct event *retry;
	STAILQ_ENTRY(lg_req) next;	/* in the wait queue or the free list */
	LIST_ENTRY(lg_req) active;	/* in the list of those in use */
	int in_use;
};

struct lg_hconn {
	struct lg *lg;
	struct evhttp_connection *evcon;
	struct lg_req *req;
	int error;		/* from the error callback, -1 none */
};

enum lg_dstate {
	D_DOWN,			/* not connected; a retry may be set */
	D_CONNECTING,
	D_HEAD,			/* request sent, reading the answer's head */
	D_ERRBODY,		/* an HTTP refusal: reading why */
	D_WS,
	D_SSE,
	D_REFUSED		/* for good: 401/403, 4401/4403 */
};

struct lg_dash {
	struct lg *lg;
	int index, klass, local;
	char klass_name[32];
	enum lg_proto proto;
	enum lg_dstate state;
	struct bufferevent *bev;
	struct event *retry;
	struct wsc ws;
	char key[WSC_KEY_SIZE];
	struct httpc_body body;	/* SSE: chunked or to the end */
	struct wsc_sse sse;
	int http_status;
	long body_len;
	/* what happened */
	int connected, live;
	int refused_code;
	char refused_reason[128];
	char last_id[64];
	char last_error[160];
	int64_t down_us;	/* when its live connection was lost, or 0 */
	unsigned long messages, received, duplicates, alerts, snapshots;
	unsigned long resyncs, reconnects, other;
	uint64_t recv_acked;	/* distinct acknowledged events received */
	struct hist *e2e;
	uint64_t *st_expected, *st_received;	/* per stage */
};

struct lg_tick {
	double t_s;
	double rps, eps;
	uint64_t p99_us;
	uint64_t e2e_p99_us;	/* dashboards' end-to-end, 0 when none */
	unsigned long errors;
	unsigned long lost;	/* events given up on that second */
	int stage;
};

enum lg_unit { U_US, U_MS, U_S, U_PCT, U_COUNT };

struct lg_slo {
	char expr[96];
	char metric[16];
	char op[3];
	double value;		/* in the metric's base unit (us, %, count) */
	enum lg_unit unit;	/* as written, for showing */
	int dropped;		/* a default term that cannot apply */
};

struct lg_slo_result {
	int ok, measured;
	double value;
	const char *why;	/* when not measured */
};

enum lg_phase { PH_HEALTH, PH_DASH, PH_RUN, PH_DRAIN, PH_DONE };

struct lg_verify {
	int done;
	uint64_t acked, rows, missing, duplicated;
	jv missing_ids, duplicated_ids;
	double waited_s;
};

struct lg {
	struct lg_cfg cfg;
	enum lg_model model;
	struct event_base *base;
	char run_id[20];
	char prefix[32];	/* "lg-<run_id>-" */
	size_t prefix_len;
	char started_at[40];
	struct url ingest, notify;	/* --url, --notify: base URLs */
	char events_path[1040];
	char token[160];
	enum lg_phase phase;
	int interrupted;	/* the run ended before its plan */
	FILE *json_f, *csv_f, *html_f;

	/* students and HTTP */
	struct lg_student *students;
	long nstudents;
	struct lg_hconn *conns;
	long nconns;
	struct lg_hconn **idle;	/* a ring of nconns: the oldest idle first */
	long idle_first, nidle;
	STAILQ_HEAD(, lg_req) waitq, free_reqs;
	LIST_HEAD(, lg_req) active_reqs;
	long inflight, retrying, waiting;
	uint64_t next_k;		/* open model: the next request due */
	uint64_t sched_k0[LG_MAX_STAGES], sched_n[LG_MAX_STAGES];
	int64_t sched_t0[LG_MAX_STAGES];
	uint64_t rr;
	struct event *pump_ev;

	/* stages */
	int nstages, stage, stages_run;
	struct lg_metrics st[LG_MAX_STAGES], total;
	int64_t plan_end[LG_MAX_STAGES];	/* from run_t0 */
	int64_t run_t0, run_t1, drain_t1;
	int64_t run_t0_wall;	/* run_t0 on the wall clock, for the timeline */
	struct event *stage_ev, *tick_ev, *drain_ev, *sig_ev[2];

	/* dashboards */
	struct lg_dash *dash;
	int ndash;
	uint64_t *class_acked;
	unsigned long foreign;	/* messages of other runs */

	/* the timeline, one entry a second */
	struct lg_tick *tl;
	size_t ntl, captl;
	struct hist *sec_hist;
	struct hist *sec_e2e;	/* what dashboards received this second */
	struct hist *so_far;	/* the progress line's */
	uint64_t last_ok, last_acked, last_err, last_lost;
	int64_t last_tick;

	/* PostgreSQL */
	PGconn *pg;
	int pg_down;		/* the last try to reach it failed */
	int pg_returned;	/* it was away, and answers again */
	long instructor_id;
	char instructor[64];
	struct lg_verify verify;

	/* the health check */
	int health_done, health_status;
	char health_error[200];

	/* CPU */
	struct rusage ru0, ru1;
	int64_t cpu_t0, cpu_t1;
	double cpu_user, cpu_sys, cpu_pct;

	/* SLOs */
	struct lg_slo slo[LG_MAX_SLO];
	int nslo;
	struct lg_slo_result slo_total[LG_MAX_SLO];
	struct lg_slo_result *slo_stage;	/* nstages x nslo */
	int first_failed_stage, pass;
};

/* ---- main.c ---- */
/* The clocks of lib/stats, in microseconds. */
#define lg_now_us()	stats_mono_us()		/* monotonic */
#define lg_wall_us()	stats_now_us()
/* SIGINT and SIGTERM so far: one ends the run, two skip what follows. */
int lg_interrupted(void);
/* During the drain: end the run once nothing is left to wait for. */
void lg_maybe_drained(struct lg *lg);
uint64_t lg_rand(uint64_t *state);
double lg_uniform(uint64_t *state, double lo, double hi);

/* ---- http.c: POSTs over keep-alive connections ---- */
int http_init(struct lg *lg, char *err, size_t errlen);
/* GET /healthz once; lg->health_* tell the answer once health_done. */
void http_health(struct lg *lg);
int http_has_idle(const struct lg *lg);
/* Write r on an idle connection: 1, or 0 when none is idle. */
int http_send(struct lg *lg, struct lg_req *r);
void http_free(struct lg *lg);

/* ---- students.c: behaviour, events, retries, the open schedule ---- */
int students_init(struct lg *lg);
/* The run begins: the open schedule is fixed from now. */
void students_start(struct lg *lg);
/* A stage begins: the closed model's active students, the open rate. */
void students_stage(struct lg *lg, int stage);
/* The last stage ended: no new requests; retries still go. */
void students_stop(struct lg *lg);
/* An attempt's outcome: status 0 with kind for a failure. */
enum lg_fail { F_NONE, F_CONNECT, F_TIMEOUT, F_RESET };
void students_answer(struct lg *lg, struct lg_req *r, int status,
    enum lg_fail fail);
/* A connection fell idle: what waits goes first, then the open schedule. */
void students_pump(struct lg *lg);
/* Send now, or queue until a connection is idle. */
void students_submit(struct lg *lg, struct lg_req *r);
/* An attempt was written: its time, its counts. */
void students_written(struct lg *lg, struct lg_req *r);
/* Requests in flight, queued, waiting to retry, or due. */
int students_busy(const struct lg *lg);
/* At the end: what is still in flight or waiting is lost. */
void students_abandon(struct lg *lg);
void students_free(struct lg *lg);
struct lg_evrec *students_find(struct lg *lg, const char *id, size_t len,
    struct lg_student **st);
void req_release(struct lg *lg, struct lg_req *r);

/* ---- dash.c: dashboards over WebSocket and SSE ---- */
int dash_init(struct lg *lg);
void dash_connect_all(struct lg *lg);
/* Every dashboard live or given up on. */
int dash_all_settled(const struct lg *lg);
/* Every live dashboard has every acknowledged event of its class. */
int dash_all_received(const struct lg *lg);
/* An event was acknowledged: count it where dashboards saw it first. */
void dash_event_acked(struct lg *lg, struct lg_student *st,
    struct lg_evrec *e);
/* The share of acknowledged events of its class a dashboard received, in
 * one stage or (stage -1) in all; 0 when refused, 100 when none. */
double dash_delivery(const struct lg *lg, const struct lg_dash *d,
    int stage);
void dash_close_all(struct lg *lg);
void dash_free(struct lg *lg);

/* ---- db.c: --setup and --verify-db ----
 * Each call reaches PostgreSQL within --timeout, opening a new connection
 * when the last one broke; -1 with err once it fails for good or the time
 * is out ("cannot reach PostgreSQL in 10s (--timeout): ..."). */
int db_open(struct lg *lg, char *err, size_t errlen);
int db_setup(struct lg *lg, char *err, size_t errlen);
/* -1 when the instructor could not be revoked, told on stderr. */
int db_revoke(struct lg *lg);
int db_verify(struct lg *lg, char *err, size_t errlen);
void db_close(struct lg *lg);

/* ---- slo.c: --slo ---- */
int slo_parse(const char *list, struct lg_slo *out, int *n, char *err,
    size_t errlen);
/* The whole run (stage -1) or one stage. */
struct lg_slo_result slo_eval(const struct lg *lg, const struct lg_slo *s,
    int stage);
void slo_format_value(char *buf, size_t len, const struct lg_slo *s,
    double v);
/* The errors metric: failed tries, retried or not, and answers not 2xx. */
uint64_t slo_errors(const struct lg_metrics *m);

/* ---- report.c: the summary, JSON, CSV and HTML ---- */
void report_text(struct lg *lg, FILE *f);
int report_json(struct lg *lg, FILE *f);
int report_csv(struct lg *lg, FILE *f);
int report_html(struct lg *lg, FILE *f);
/* e.g. "850us", "12.3ms", "1.50s" */
void fmt_us(char *buf, size_t len, double us);
jv report_hist(const struct hist *h);

#endif
