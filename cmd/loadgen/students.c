/* students.c: the simulated class. In the closed model each student lives a
 * lesson as the cell-monitor extension reports it: a cell every 12-18 s,
 * bursts, failing cells, help requests and saves, each event posted after
 * the extension's debounce, one request at a time, retried on 5xx and
 * network errors after 0.5, 1 and 2 s. In the open model requests fall due
 * on a fixed schedule, whatever the server does, and go round the students
 * with the same mix of events. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "hist.h"
#include "loadgen.h"
#include "prog.h"

#define SEC		INT64_C(1000000)
#define EVENT_MAX	1400	/* bytes one rendered event may take */

/* Bumps a counter of a stage and of the run. */
#define BUMP(lg, s, f, n) do {						\
	(lg)->st[(s)].f += (n);						\
	(lg)->total.f += (n);						\
} while (0)

/* The share of each kind in a lesson, from the closed model's rates: a
 * cell every 15 s (1.2 with bursts), help every 120 s, a save every 210 s. */
#define MIX_CELL	0.08
#define MIX_HELP	(1.0 / 120)
#define MIX_SAVE	(1.0 / 210)

static const char *const codes[] = {
	"import pandas as pd\\ndf = pd.read_csv('grades.csv')\\ndf.head()",
	"df.groupby('team').score.mean().round(2)",
	"import matplotlib.pyplot as plt\\nplt.hist(df.score, bins=20)\\n"
	    "plt.show()",
	"def mean(xs):\\n    return sum(xs) / len(xs)\\n\\nmean([3, 4, 5])",
	"for i in range(5):\\n    print(i ** 2)",
	"import numpy as np\\nx = np.linspace(0, 1, 101)\\n"
	    "y = np.sin(2 * np.pi * x)",
	"model.fit(X_train, y_train)\\nmodel.score(X_test, y_test)",
	"len(df[df.score > 50])",
};

static const char *const failures[] = {
	"NameError: name 'df' is not defined",
	"KeyError: 'scores'",
	"TypeError: unsupported operand type(s) for +: 'int' and 'str'",
	"ZeroDivisionError: division by zero",
	"ModuleNotFoundError: No module named 'sklearn'",
	"IndentationError: expected an indented block",
};

#define NELEM(a) (sizeof (a) / sizeof (a)[0])

static void on_retry(evutil_socket_t fd, short what, void *arg);

/* ---- requests ---- */

static struct lg_req *
req_get(struct lg *lg)
{
	struct lg_req *r = STAILQ_FIRST(&lg->free_reqs);

	if (r != NULL) {
		STAILQ_REMOVE_HEAD(&lg->free_reqs, next);
	} else {
		r = calloc(1, sizeof *r);
		if (r == NULL)
			die_nomem();
		r->lg = lg;
		r->retry = evtimer_new(lg->base, on_retry, r);
		if (r->retry == NULL)
			die_nomem();
	}
	r->st = NULL;
	r->first = r->count = 0;
	r->attempt = 0;
	r->len = 0;
	r->due_us = r->sent_us = 0;
	LIST_INSERT_HEAD(&lg->active_reqs, r, active);
	r->in_use = 1;
	return r;
}

void
req_release(struct lg *lg, struct lg_req *r)
{
	if (!r->in_use)
		return;
	r->in_use = 0;
	evtimer_del(r->retry);
	LIST_REMOVE(r, active);
	STAILQ_INSERT_HEAD(&lg->free_reqs, r, next);
}

static void
body_reserve(struct lg_req *r, size_t more)
{
	size_t cap;
	char *p;

	if (r->len + more <= r->cap)
		return;
	cap = r->cap ? r->cap : 2048;
	while (cap < r->len + more)
		cap *= 2;
	p = realloc(r->body, cap);
	if (p == NULL)
		die_nomem();
	r->body = p;
	r->cap = cap;
}

/* ---- events ---- */

static struct lg_evrec *
new_event(struct lg_student *st, uint32_t *n)
{
	struct lg_evrec *e;

	if (st->nev == st->cap) {
		uint32_t cap = st->cap ? st->cap * 2 : 16;

		e = realloc(st->ev, (size_t)cap * sizeof *e);
		if (e == NULL)
			die_nomem();
		st->ev = e;
		st->cap = cap;
	}
	*n = st->nev++;
	e = &st->ev[*n];
	memset(e, 0, sizeof *e);
	return e;
}

/* Appending to a body whose room was reserved: no printf on the hot path,
 * where a think-0 run renders a hundred thousand events a second. */
static char *
put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

#define PUT(p, lit)	put((p), (lit), sizeof (lit) - 1)

static char *
put_str(char *p, const char *s)
{
	return put(p, s, strlen(s));
}

static char *
put_u(char *p, uint64_t v)
{
	char tmp[24];
	int n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

/* 2026-11-25T10:15:42.123Z; the part up to the second is kept a second. */
static char *
put_time(char *p, int64_t us)
{
	static int64_t cached_s = -1;
	static char head[24];
	int64_t sec = us / SEC;
	unsigned ms = (unsigned)(us % SEC / 1000);

	if (sec != cached_s) {
		time_t t = (time_t)sec;
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(head, sizeof head, "%Y-%m-%dT%H:%M:%S.", &tm);
		cached_s = sec;
	}
	p = put_str(p, head);
	*p++ = (char)('0' + ms / 100);
	*p++ = (char)('0' + ms / 10 % 10);
	*p++ = (char)('0' + ms % 10);
	*p++ = 'Z';
	return p;
}

/* One event as the extension sends it (about 600 bytes), appended to the
 * request's body. */
static void
render_event(struct lg *lg, struct lg_req *r, struct lg_student *st,
    uint32_t n, int kind, int64_t wall_us)
{
	char *start, *p;
	const char *type;
	unsigned tenths;
	int failed = 0;

	body_reserve(r, EVENT_MAX);
	start = p = r->body + r->len;
	switch (kind) {
	case K_OPENED:
		type = "notebook_opened";
		break;
	case K_HELP:
		type = "help";
		break;
	case K_SAVE:
		type = "notebook_saved";
		break;
	default:
		type = "cell_executed";
		failed = lg_uniform(&st->rng, 0, 1) < 0.08;
		break;
	}
	p = PUT(p, "{\"eventId\":\"");
	p = put(p, lg->prefix, lg->prefix_len);
	p = put_u(p, st->index);
	*p++ = '-';
	p = put_u(p, n);
	p = PUT(p, "\",\"eventType\":\"");
	p = put_str(p, type);
	p = PUT(p, "\",\"eventTime\":\"");
	p = put_time(p, wall_us);
	p = PUT(p, "\",\"emailAddress\":\"student");
	p = put_u(p, st->index);
	p = PUT(p, "@loadgen.test\",\"userName\":\"Student ");
	p = put_u(p, st->index);
	p = PUT(p, "\",\"sessionId\":\"");
	p = put(p, lg->prefix, lg->prefix_len);
	*p++ = 's';
	p = put_u(p, st->index);
	p = PUT(p, "\",\"notebookPath\":\"lesson-");
	p = put_u(p, (uint64_t)st->klass);
	p = PUT(p, ".ipynb\",");
	if (kind == K_CELL) {
		st->exec_count++;
		if (!failed || lg_uniform(&st->rng, 0, 1) < 0.5)
			st->cell_index = (st->cell_index + 1) % 40;
		p = PUT(p, "\"cellId\":\"cell-");
		p = put_u(p, st->cell_index);
		p = PUT(p, "\",\"cellIndex\":");
		p = put_u(p, st->cell_index);
		p = PUT(p, ",\"cellType\":\"code\",\"code\":\"");
		p = put_str(p, codes[lg_rand(&st->rng) % NELEM(codes)]);
		p = PUT(p, "\",\"executionCount\":");
		p = put_u(p, st->exec_count);
		if (failed) {
			p = PUT(p, ",\"hasError\":true,\"errorMessage\":\"");
			p = put_str(p, failures[lg_rand(&st->rng) %
			    NELEM(failures)]);
			p = PUT(p, "\"");
		} else {
			p = PUT(p, ",\"hasError\":false,\"errorMessage\":null");
		}
		tenths = (unsigned)lg_uniform(&st->rng, 20, failed ? 800 : 9000);
		p = PUT(p, ",\"executionDurationMs\":");
		p = put_u(p, tenths / 10);
		*p++ = '.';
		*p++ = (char)('0' + tenths % 10);
	} else {
		p = PUT(p, "\"cellId\":null,\"cellIndex\":null,\"cellType\":null,"
		    "\"code\":null,\"executionCount\":null,\"hasError\":null,"
		    "\"errorMessage\":null,\"executionDurationMs\":null");
	}
	p = PUT(p, ",\"classId\":\"loadgen-");
	p = put_u(p, (uint64_t)st->klass);
	p = PUT(p, "\"}");
	if ((size_t)(p - start) >= EVENT_MAX)
		die(EX_SOFTWARE, "an event did not fit in %d bytes", EVENT_MAX);
	r->len += (size_t)(p - start);
}

static void
body_open(struct lg_req *r)
{
	body_reserve(r, 2);
	r->len = 0;
	r->body[r->len++] = '[';
}

static void
body_close(struct lg_req *r)
{
	body_reserve(r, 2);
	r->body[r->len++] = ']';
}

/* A kind drawn from the lesson's mix: for the open model, and for the
 * closed one without think time, where every clock says "now". */
static int
mix_kind(struct lg_student *st)
{
	double x = lg_uniform(&st->rng, 0, MIX_CELL + MIX_HELP + MIX_SAVE);

	if (x < MIX_HELP)
		return K_HELP;
	if (x < MIX_HELP + MIX_SAVE)
		return K_SAVE;
	return K_CELL;
}

/* ---- the closed model ---- */

static int64_t
pause_us(struct lg *lg, struct lg_student *st, double lo_s, double hi_s)
{
	return (int64_t)(lg_uniform(&st->rng, lo_s, hi_s) * lg->cfg.think * 1e6);
}

static void
arm(struct lg_student *st)
{
	int64_t at = st->rt_resume + (st->next_v_post - st->vbase);
	int64_t d = at - lg_now_us();
	struct timeval tv;

	if (d < 0)
		d = 0;
	tv.tv_sec = (time_t)(d / SEC);
	tv.tv_usec = (suseconds_t)(d % SEC);
	evtimer_add(st->timer, &tv);
}

/* The next thing the student does, on its own clock, and when it posts. */
static void
plan_next(struct lg *lg, struct lg_student *st)
{
	int64_t v;
	int kind;

	if (!st->opened) {
		kind = K_OPENED;
		v = st->v_last;
	} else if (lg->cfg.think == 0) {
		kind = mix_kind(st);
		v = st->v_last;
	} else if (st->burst_left > 0) {
		kind = K_CELL;
		v = st->v_last + pause_us(lg, st, 1, 3);
	} else {
		kind = K_CELL;
		v = st->v_cell;
		if (st->v_help < v) {
			kind = K_HELP;
			v = st->v_help;
		}
		if (st->v_save < v) {
			kind = K_SAVE;
			v = st->v_save;
		}
	}
	st->next_kind = kind;
	st->next_v_evt = v;
	/* the extension's debounce */
	st->next_v_post = v + pause_us(lg, st, 0.2, 2.2);
	if (st->next_v_post < st->vbase)
		st->next_v_post = st->vbase;
	arm(st);
}

static void
student_stop(struct lg_student *st)
{
	evtimer_del(st->timer);
	st->running = 0;
	st->stopping = 0;
}

static void
student_start(struct lg *lg, struct lg_student *st)
{
	st->running = 1;
	st->stopping = 0;
	st->rt_resume = lg_now_us();
	if (!st->opened && st->nev == 0) {
		/* a class does not open its notebooks in one instant; each
		 * clock of the lesson starts somewhere else */
		st->v_last = pause_us(lg, st, 0, 10);
		st->v_cell = st->v_last + pause_us(lg, st, 0.5, 15);
		st->v_help = st->v_last + pause_us(lg, st, 10, 150);
		st->v_save = st->v_last + pause_us(lg, st, 30, 300);
	}
	plan_next(lg, st);
}

static void
closed_send(struct lg *lg, struct lg_student *st)
{
	struct lg_req *r = st->req;
	uint32_t i;

	body_close(r);
	r->st = st;
	r->first = st->pend_first;
	r->count = st->pend_count;
	r->attempt = 0;
	r->stage = lg->stage;
	for (i = 0; i < r->count; i++)
		st->ev[r->first + i].stage = (uint8_t)r->stage;
	st->pend_count = 0;
	st->waiting = 1;
	r->due_us = lg_now_us();
	students_submit(lg, r);
}

static void
on_student(evutil_socket_t fd, short what, void *arg)
{
	struct lg_student *st = arg;
	struct lg *lg = st->req->lg;
	int kind = st->next_kind;
	int64_t v = st->next_v_evt, now = lg_now_us(), wall = lg_wall_us();
	uint32_t n;

	(void)fd;
	(void)what;
	if (!st->active) {
		student_stop(st);
		return;
	}
	switch (kind) {
	case K_OPENED:
		st->opened = 1;
		break;
	case K_CELL:
		if (st->burst_left > 0)
			st->burst_left--;
		else if (lg_uniform(&st->rng, 0, 1) < 0.10)
			st->burst_left = 2;
		st->v_cell = v + pause_us(lg, st, 12, 18);
		break;
	case K_HELP:
		st->v_help = v + pause_us(lg, st, 90, 150);
		break;
	case K_SAVE:
		st->v_save = v + pause_us(lg, st, 120, 300);
		break;
	}
	st->v_last = v;
	st->vbase = st->next_v_post;
	st->rt_resume = now;
	if (st->pend_count == 0)
		body_open(st->req);
	new_event(st, &n);
	if (st->pend_count == 0)
		st->pend_first = n;
	else
		st->req->body[st->req->len++] = ',';
	st->pend_count++;
	/* the event happened when the debounce began */
	render_event(lg, st->req, st, n, kind,
	    wall - (st->next_v_post - st->next_v_evt));
	if (st->pend_count >= (uint32_t)lg->cfg.batch)
		closed_send(lg, st);
	else
		plan_next(lg, st);
}

/* The request of a closed-model student is over: think, or stop. */
static void
closed_done(struct lg *lg, struct lg_student *st)
{
	st->waiting = 0;
	if (!st->active || st->stopping || lg->phase != PH_RUN) {
		student_stop(st);
		return;
	}
	st->rt_resume = lg_now_us();
	plan_next(lg, st);
	/* due already (no think time): go now rather than through a timer
	 * and another turn of the loop */
	if (st->next_v_post <= st->vbase) {
		evtimer_del(st->timer);
		on_student(-1, 0, st);
	}
}

/* ---- the open model ---- */

/* When request k of the schedule falls due; INT64_MAX past the plan. */
static int64_t
due_of(struct lg *lg, uint64_t k, int *stage)
{
	int s;

	for (s = 0; s < lg->nstages; s++) {
		if (k < lg->sched_k0[s] + lg->sched_n[s]) {
			*stage = s;
			return lg->sched_t0[s] + (int64_t)((double)(k -
			    lg->sched_k0[s]) * 1e6 / lg->st[s].value);
		}
	}
	*stage = lg->nstages - 1;
	return INT64_MAX;
}

static void
open_send(struct lg *lg, int64_t due, int stage)
{
	struct lg_req *r = req_get(lg);
	struct lg_student *st = &lg->students[lg->rr++ % (uint64_t)lg->nstudents];
	int64_t wall = lg_wall_us() - (lg_now_us() - due);
	uint32_t n;
	long i;

	r->st = st;
	r->stage = stage;
	r->due_us = due;
	body_open(r);
	for (i = 0; i < lg->cfg.batch; i++) {
		struct lg_evrec *e = new_event(st, &n);

		e->stage = (uint8_t)stage;
		if (i == 0)
			r->first = n;
		else
			r->body[r->len++] = ',';
		render_event(lg, r, st, n, st->opened ? mix_kind(st) :
		    K_OPENED, wall);
		st->opened = 1;
	}
	r->count = (uint32_t)lg->cfg.batch;
	body_close(r);
	lg->st[stage].created++;
	students_submit(lg, r);
}

static void
on_pump(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	students_pump(arg);
}

/* ---- submitting, answers, retries ---- */

static void
wait_push(struct lg *lg, struct lg_req *r)
{
	STAILQ_INSERT_TAIL(&lg->waitq, r, next);
	lg->waiting++;
}

static struct lg_req *
wait_pop(struct lg *lg)
{
	struct lg_req *r = STAILQ_FIRST(&lg->waitq);

	if (r == NULL)
		return NULL;
	STAILQ_REMOVE_HEAD(&lg->waitq, next);
	lg->waiting--;
	return r;
}

void
students_submit(struct lg *lg, struct lg_req *r)
{
	/* what waits for a connection goes first */
	if (!STAILQ_EMPTY(&lg->waitq) || !http_send(lg, r))
		wait_push(lg, r);
}

void
students_written(struct lg *lg, struct lg_req *r)
{
	struct lg_evrec *e = &r->st->ev[r->first];
	uint32_t i;

	BUMP(lg, r->stage, sent, 1);
	if (r->attempt == 0)
		BUMP(lg, r->stage, ev_sent, r->count);
	for (i = 0; i < r->count; i++, e++) {
		e->sent_us = r->sent_us;
		e->state = EV_INFLIGHT;
	}
}

void
students_pump(struct lg *lg)
{
	struct lg_req *r;
	int64_t now, due, until;
	int stage;

	while (!STAILQ_EMPTY(&lg->waitq) && http_has_idle(lg)) {
		r = wait_pop(lg);
		http_send(lg, r);
	}
	if (lg->model != MODEL_OPEN || !STAILQ_EMPTY(&lg->waitq) ||
	    (lg->phase != PH_RUN && lg->phase != PH_DRAIN))
		return;
	/* after the last stage, only what fell due before its end */
	until = lg->phase == PH_RUN ? INT64_MAX : lg->run_t1;
	now = lg_now_us();
	while (http_has_idle(lg)) {
		due = due_of(lg, lg->next_k, &stage);
		if (due > now || due >= until)
			break;
		lg->next_k++;
		open_send(lg, due, stage);
	}
	due = due_of(lg, lg->next_k, &stage);
	if (http_has_idle(lg) && due > now && due < until &&
	    due != INT64_MAX) {
		struct timeval tv;
		int64_t d = due - now;

		tv.tv_sec = (time_t)(d / SEC);
		tv.tv_usec = (suseconds_t)(d % SEC);
		evtimer_add(lg->pump_ev, &tv);
	}
	lg_maybe_drained(lg);
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct lg_req *r = arg;
	struct lg *lg = r->lg;

	(void)fd;
	(void)what;
	lg->retrying--;
	if (lg->model == MODEL_OPEN)
		r->due_us = lg_now_us();
	students_submit(lg, r);
}

/* The request is over, acknowledged or given up. */
static void
finished(struct lg *lg, struct lg_req *r)
{
	if (lg->model == MODEL_CLOSED)
		closed_done(lg, r->st);
	else
		req_release(lg, r);
	lg_maybe_drained(lg);
}

void
students_answer(struct lg *lg, struct lg_req *r, int status,
    enum lg_fail fail)
{
	struct lg_metrics *m = &lg->st[r->stage];
	struct lg_evrec *e = &r->st->ev[r->first];
	int64_t now = lg_now_us();
	uint32_t i;
	int retry = 0;

	m->t_last = now;
	switch (fail) {
	case F_CONNECT:
		BUMP(lg, r->stage, err_connect, 1);
		retry = 1;
		break;
	case F_TIMEOUT:
		BUMP(lg, r->stage, err_timeout, 1);
		retry = 1;
		break;
	case F_RESET:
		BUMP(lg, r->stage, err_reset, 1);
		retry = 1;
		break;
	case F_NONE:
		if (status >= 200 && status < 300) {
			BUMP(lg, r->stage, st_2xx, 1);
			BUMP(lg, r->stage, ok, 1);
			hist_record(m->ack, (uint64_t)(now - (lg->model ==
			    MODEL_OPEN ? r->due_us : r->sent_us)));
			hist_record(lg->sec_hist, (uint64_t)(now -
			    (lg->model == MODEL_OPEN ? r->due_us : r->sent_us)));
			if (m->ack_unc)
				hist_record(m->ack_unc,
				    (uint64_t)(now - r->sent_us));
		} else if (status >= 500) {
			BUMP(lg, r->stage, st_5xx, 1);
			retry = 1;
		} else if (status >= 400) {
			BUMP(lg, r->stage, st_4xx, 1);
		} else {
			BUMP(lg, r->stage, st_other, 1);
		}
		break;
	}
	if (status >= 200 && status < 300) {
		BUMP(lg, r->stage, ev_acked, r->count);
		for (i = 0; i < r->count; i++, e++) {
			e->state = EV_ACKED;
			dash_event_acked(lg, r->st, e);
		}
		finished(lg, r);
		return;
	}
	if (retry && r->attempt < LG_RETRIES && lg->phase != PH_DONE) {
		struct timeval tv;
		long ms = 500L << r->attempt;

		r->attempt++;
		tv.tv_sec = ms / 1000;
		tv.tv_usec = (ms % 1000) * 1000;
		evtimer_add(r->retry, &tv);
		lg->retrying++;
		return;
	}
	/* given up, as the extension does, or refused (4xx): never stored */
	BUMP(lg, r->stage, ev_lost, r->count);
	for (i = 0; i < r->count; i++, e++)
		e->state = EV_LOST;
	finished(lg, r);
}

int
students_busy(const struct lg *lg)
{
	int stage;

	if (lg->inflight > 0 || lg->waiting > 0 || lg->retrying > 0)
		return 1;
	if (lg->model == MODEL_OPEN && lg->phase == PH_DRAIN) {
		int64_t due = due_of((struct lg *)lg, lg->next_k, &stage);

		return due != INT64_MAX && due < lg->run_t1;
	}
	return 0;
}

/* ---- stages ---- */

int
students_init(struct lg *lg)
{
	uint64_t seed = (uint64_t)lg->cfg.seed;
	long i;
	int s;

	STAILQ_INIT(&lg->waitq);
	STAILQ_INIT(&lg->free_reqs);
	LIST_INIT(&lg->active_reqs);
	lg->nstudents = lg->cfg.students;
	lg->students = calloc((size_t)lg->nstudents, sizeof *lg->students);
	if (lg->students == NULL)
		die_nomem();
	for (i = 0; i < lg->nstudents; i++) {
		struct lg_student *st = &lg->students[i];

		st->index = (uint32_t)i;
		st->klass = (int)(i % lg->cfg.classes);
		st->rng = seed ^ (0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1));
		lg_rand(&st->rng);
		if (lg->model == MODEL_CLOSED) {
			st->timer = evtimer_new(lg->base, on_student, st);
			st->req = req_get(lg);
			st->req->st = st;
			if (st->timer == NULL)
				die_nomem();
		}
	}
	lg->pump_ev = evtimer_new(lg->base, on_pump, lg);
	if (lg->pump_ev == NULL)
		die_nomem();
	if (lg->model == MODEL_OPEN) {
		uint64_t k = 0;
		int64_t t = 0;

		for (s = 0; s < lg->nstages; s++) {
			lg->sched_k0[s] = k;
			lg->sched_t0[s] = t;	/* offsets until the run starts */
			lg->sched_n[s] = lg->st[s].value > 0 ? (uint64_t)
			    ((double)lg->cfg.stages[s].ms / 1000.0 *
			    lg->st[s].value + 0.999999) : 0;
			k += lg->sched_n[s];
			t += lg->cfg.stages[s].ms * 1000;
		}
	}
	return 0;
}

void
students_start(struct lg *lg)
{
	int s;

	if (lg->model == MODEL_OPEN)
		for (s = 0; s < lg->nstages; s++)
			lg->sched_t0[s] += lg->run_t0;
}

void
students_stage(struct lg *lg, int stage)
{
	long i, n;

	if (lg->model == MODEL_OPEN) {
		students_pump(lg);
		return;
	}
	n = (long)lg->st[stage].value;
	for (i = 0; i < lg->nstudents; i++) {
		struct lg_student *st = &lg->students[i];

		if (i < n) {
			st->active = 1;
			st->stopping = 0;
			if (!st->running)
				student_start(lg, st);
		} else if (st->active) {
			st->active = 0;
			if (st->waiting)
				st->stopping = 1;
			else
				student_stop(st);
		}
	}
}

void
students_stop(struct lg *lg)
{
	long i;

	evtimer_del(lg->pump_ev);
	for (i = 0; i < lg->nstudents; i++) {
		struct lg_student *st = &lg->students[i];

		st->active = 0;
		if (lg->model == MODEL_CLOSED) {
			if (st->waiting)
				st->stopping = 1;
			else if (st->running)
				student_stop(st);
		}
	}
	/* the open model keeps sending what fell due before the end */
	students_pump(lg);
}

/* The end: whatever is not acknowledged yet never will be. */
void
students_abandon(struct lg *lg)
{
	struct lg_req *r, *next;
	long i;
	int s;

	for (i = 0; i < lg->nconns; i++) {
		r = lg->conns[i].req;
		if (r != NULL) {
			BUMP(lg, r->stage, err_timeout, 1);
			lg->conns[i].req = NULL;
			lg->inflight--;
		}
	}
	for (r = LIST_FIRST(&lg->active_reqs); r != NULL; r = next) {
		struct lg_evrec *e;
		uint32_t k, lost = 0;

		next = LIST_NEXT(r, active);
		if (r->st == NULL || r->count == 0)
			continue;
		e = &r->st->ev[r->first];
		for (k = 0; k < r->count; k++, e++)
			if (e->state == EV_INFLIGHT) {
				e->state = EV_LOST;
				lost++;
			}
		if (lost)
			BUMP(lg, r->stage, ev_lost, lost);
		evtimer_del(r->retry);
		r->count = 0;
	}
	STAILQ_INIT(&lg->waitq);
	lg->waiting = lg->retrying = 0;
	for (i = 0; i < lg->nstudents; i++) {
		struct lg_student *st = &lg->students[i];

		if (st->timer)
			evtimer_del(st->timer);
		st->running = st->waiting = 0;
	}
	if (lg->pump_ev)
		evtimer_del(lg->pump_ev);
	/* the open model: what fell due in each stage, and never went */
	if (lg->model == MODEL_OPEN) {
		for (s = 0; s < lg->nstages; s++) {
			struct lg_metrics *m = &lg->st[s];
			uint64_t due = 0;

			if (lg->run_t1 > lg->sched_t0[s] && m->value > 0) {
				double x = (double)(lg->run_t1 -
				    lg->sched_t0[s]) * m->value / 1e6;

				due = (uint64_t)x + ((double)(uint64_t)x < x);
				if (due > lg->sched_n[s])
					due = lg->sched_n[s];
			}
			if (due < m->created)
				due = m->created;
			m->due = due;
			m->unsent = due - m->created;
			lg->total.due += due;
			lg->total.unsent += m->unsent;
		}
	}
}

struct lg_evrec *
students_find(struct lg *lg, const char *id, size_t len,
    struct lg_student **stp)
{
	const char *p = id + lg->prefix_len, *end = id + len;
	uint64_t i = 0, n = 0;
	int digits = 0;

	if (len <= lg->prefix_len || memcmp(id, lg->prefix, lg->prefix_len))
		return NULL;
	for (; p < end && *p >= '0' && *p <= '9' && digits < 10; p++, digits++)
		i = i * 10 + (uint64_t)(*p - '0');
	if (digits == 0 || p >= end || *p != '-')
		return NULL;
	for (p++, digits = 0; p < end && *p >= '0' && *p <= '9' &&
	    digits < 10; p++, digits++)
		n = n * 10 + (uint64_t)(*p - '0');
	if (digits == 0 || p != end || i >= (uint64_t)lg->nstudents ||
	    n >= lg->students[i].nev)
		return NULL;
	if (stp)
		*stp = &lg->students[i];
	return &lg->students[i].ev[n];
}

void
students_free(struct lg *lg)
{
	struct lg_req *r, *next;
	long i;

	for (r = LIST_FIRST(&lg->active_reqs); r != NULL; r = next) {
		next = LIST_NEXT(r, active);
		req_release(lg, r);
	}
	for (r = STAILQ_FIRST(&lg->free_reqs); r != NULL; r = next) {
		next = STAILQ_NEXT(r, next);
		event_free(r->retry);
		free(r->body);
		free(r);
	}
	STAILQ_INIT(&lg->free_reqs);
	for (i = 0; i < lg->nstudents; i++) {
		if (lg->students[i].timer)
			event_free(lg->students[i].timer);
		free(lg->students[i].ev);
	}
	free(lg->students);
	lg->students = NULL;
	if (lg->pump_ev)
		event_free(lg->pump_ev);
	lg->pump_ev = NULL;
}
