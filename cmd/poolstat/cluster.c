/* cluster.c: the parts of a tick that span hosts: each PostgreSQL node of a
 * multi-host conninfo with its role and replication lag, PgBouncer's SHOW
 * POOLS, Redis's replicas and Sentinel's view of the master. Whatever does
 * not answer is down, never fatal. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "pgconn.h"
#include "poolstat.h"

/* ---- PostgreSQL nodes ---- */

/* Each node's role and position, and a standby's lag in seconds: none
 * when it has replayed all it received (an idle primary sends nothing,
 * and the time since the last replayed transaction is then no lag). On a
 * primary, its standbys as pg_stat_replication has them. */
static const char node_sql[] =
"select pg_is_in_recovery(),"
" pg_wal_lsn_diff(case when pg_is_in_recovery() then pg_last_wal_replay_lsn()"
" else pg_current_wal_lsn() end, '0/0'),"
" case when not pg_is_in_recovery() then null"
" when pg_last_wal_receive_lsn() is not distinct from pg_last_wal_replay_lsn()"
" then 0 else extract(epoch from now() - pg_last_xact_replay_timestamp())"
" end,"
" (select status from pg_stat_wal_receiver limit 1);"
"select application_name, coalesce(host(client_addr), 'local'), state,"
" case when pg_is_in_recovery() then null"
" else pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) end,"
" extract(epoch from replay_lag)"
" from pg_stat_replication order by 1, 2";

/* The value of key in a parsed conninfo, or NULL. */
static const char *
ci_value(PQconninfoOption *o, const char *key)
{
	for (; o && o->keyword; o++)
		if (strcmp(o->keyword, key) == 0)
			return o->val && *o->val ? o->val : NULL;
	return NULL;
}

static const char *
db_conninfo(const struct ps_cfg *c)
{
	const char *ci = c->db;

	if (ci == NULL)
		ci = getenv("DATABASE_URL");
	return ci && *ci ? ci : NULL;
}

void
nodes_init(struct collector *co)
{
	const char *ci = db_conninfo(co->cfg), *hosts, *addrs, *ports;
	PQconninfoOption *o = NULL;
	int i, n;

	co->nnodes = 0;
	if (co->cfg->no_postgres)
		return;
	if (ci) {
		/* a conninfo that is none: the main connection says why */
		o = PQconninfoParse(ci, NULL);
		if (o == NULL)
			return;
		hosts = ci_value(o, "host");
		addrs = ci_value(o, "hostaddr");
		ports = ci_value(o, "port");
	} else {
		hosts = getenv("PGHOST");
		addrs = getenv("PGHOSTADDR");
		ports = getenv("PGPORT");
	}
	n = pgconn_list_count(hosts ? hosts : addrs);
	/* one host: the node is the connection poolstat has anyway */
	if (n > 1) {
		if (n > PG_NODES_MAX)
			n = PG_NODES_MAX;
		for (i = 0; i < n; i++) {
			/* through locals: the compiler cannot tell the
			 * arrays of co apart */
			char host[sizeof co->node_host[i]];
			char addr[sizeof co->node_addr[i]];
			char port[sizeof co->node_port[i]];

			pgconn_list_item(hosts, i, host, sizeof host);
			pgconn_list_item(addrs, i, addr, sizeof addr);
			pgconn_list_item(ports, i, port, sizeof port);
			snprintf(co->node_host[i], sizeof co->node_host[i],
			    "%s", host);
			snprintf(co->node_addr[i], sizeof co->node_addr[i],
			    "%s", addr);
			snprintf(co->node_port[i], sizeof co->node_port[i],
			    "%s", port);
			/* named by host, as it was written, else by address */
			snprintf(co->node_name[i], sizeof co->node_name[i],
			    "%s:%s", host[0] ? host : addr,
			    port[0] ? port : "5432");
		}
		co->nnodes = n;
	}
	PQconninfoFree(o);
}

/* A connection to node i alone, whatever its role. */
static PGconn *
node_open(struct collector *co, int i, char *err, size_t errlen)
{
	const struct ps_cfg *c = co->cfg;
	const char *keys[9], *vals[9], *ci = db_conninfo(c);
	char timeout[32];
	PGconn *pg;
	int k = 0;

	snprintf(timeout, sizeof timeout, "%ld", (c->timeout_ms + 999) / 1000 <
	    2 ? 2 : (c->timeout_ms + 999) / 1000);
	if (ci) {
		keys[k] = "dbname";
		vals[k++] = ci;
	}
	/* both when both are listed: libpq wants as many of each */
	if (co->node_host[i][0]) {
		keys[k] = "host";
		vals[k++] = co->node_host[i];
	}
	if (co->node_addr[i][0]) {
		keys[k] = "hostaddr";
		vals[k++] = co->node_addr[i];
	}
	if (co->node_port[i][0]) {
		keys[k] = "port";
		vals[k++] = co->node_port[i];
	}
	keys[k] = "target_session_attrs";
	vals[k++] = "any";
	keys[k] = "fallback_application_name";
	vals[k++] = "labpulse-poolstat";
	keys[k] = "connect_timeout";
	vals[k++] = timeout;
	keys[k] = NULL;
	vals[k] = NULL;
	/* the conninfo expanded first, the node's own keys after it win */
	pg = PQconnectdbParams(keys, vals, 1);
	if (pg == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (PQstatus(pg) != CONNECTION_OK) {
		pgconn_error(pg, NULL, err, errlen);
		PQfinish(pg);
		return NULL;
	}
	return pg;
}

static jv
node_down(const char *name, const char *err)
{
	jv o = source_down(err);

	return jv_object_set(o, jv_string("node"), jv_string(name));
}

/* The node on pg, named name; on failure pg is finished and *lost set. */
static jv
node_read(struct collector *co, PGconn *pg, const char *name, int *lost)
{
	PGresult *res[2] = { NULL, NULL };
	char err[1024];
	jv o, reps, r;
	int i, standby;

	*lost = 0;
	if (pg_query(co, pg, node_sql, res, 2, err, sizeof err) < 0) {
		pg_clear(res, 2);
		*lost = 1;
		return node_down(name, err);
	}
	standby = PQntuples(res[0]) > 0 && strcmp(PQgetvalue(res[0], 0, 0),
	    "t") == 0;
	o = jv_object();
	o = jv_object_set(o, jv_string("node"), jv_string(name));
	o = jv_object_set(o, jv_string("up"), jv_true());
	o = jv_object_set(o, jv_string("error"), jv_null());
	o = jv_object_set(o, jv_string("role"), jv_string(standby ? "standby" :
	    "primary"));
	o = jv_object_set(o, jv_string("lsn"), num_or_null(pg_num(res[0], 0,
	    1)));
	o = jv_object_set(o, jv_string("lag_bytes"), jv_null());
	o = jv_object_set(o, jv_string("lag_s"), num_or_null(round_to(
	    pg_num(res[0], 0, 2), 3)));
	o = jv_object_set(o, jv_string("streaming"), !standby ? jv_null() :
	    jv_bool(PQntuples(res[0]) > 0 && !PQgetisnull(res[0], 0, 3) &&
	    strcmp(PQgetvalue(res[0], 0, 3), "streaming") == 0));
	reps = jv_array();
	for (i = 0; i < PQntuples(res[1]); i++) {
		r = jv_object();
		r = jv_object_set(r, jv_string("name"),
		    jv_string(PQgetvalue(res[1], i, 0)));
		r = jv_object_set(r, jv_string("client"),
		    jv_string(PQgetvalue(res[1], i, 1)));
		r = jv_object_set(r, jv_string("state"),
		    jv_string(PQgetvalue(res[1], i, 2)));
		r = jv_object_set(r, jv_string("lag_bytes"),
		    num_or_null(pg_num(res[1], i, 3)));
		r = jv_object_set(r, jv_string("lag_s"),
		    num_or_null(round_to(pg_num(res[1], i, 4), 3)));
		reps = jv_array_append(reps, r);
	}
	o = jv_object_set(o, jv_string("replicas"), reps);
	pg_clear(res, 2);
	return o;
}

/* The primary's replay_lag of the standby named host: of its replicas
 * connected from host, else of all of them, the largest. */
static double
replay_lag(jv primary, const char *host)
{
	jv reps = jget(primary, "replicas"), r;
	char client[256];
	double best = NAN, any = NAN, x;
	int i, n = jlen(reps);

	for (i = 0; i < n; i++) {
		r = jv_array_get(jv_copy(reps), i);
		x = jnum(r, "lag_s");
		if (!isnan(x) && (isnan(any) || x > any))
			any = x;
		if (!isnan(x) && strcmp(jstr(r, "client", client,
		    sizeof client), host) == 0 && (isnan(best) || x > best))
			best = x;
		jv_free(r);
	}
	jv_free(reps);
	return isnan(best) ? any : best;
}

/* A standby's lag in bytes: how far its replay is behind the primary's
 * position, both read in this tick; and in seconds, when the standby
 * cannot tell (it has replayed no transaction since it started), the
 * primary's replay_lag of it. */
static jv
standby_lag(jv nodes)
{
	double top = NAN, x;
	jv n, primary = jv_null();
	int i, len = jlen(nodes);
	char role[32], name[300], *colon;

	for (i = 0; i < len && isnan(top); i++) {
		n = jv_array_get(jv_copy(nodes), i);
		if (jtrue(n, "up") && strcmp(jstr(n, "role", role, sizeof role),
		    "primary") == 0) {
			top = jnum(n, "lsn");
			jv_free(primary);
			primary = jv_copy(n);
		}
		jv_free(n);
	}
	if (isnan(top)) {
		jv_free(primary);
		return nodes;
	}
	for (i = 0; i < len; i++) {
		n = jv_array_get(jv_copy(nodes), i);
		if (!jtrue(n, "up") || strcmp(jstr(n, "role", role,
		    sizeof role), "standby") != 0) {
			jv_free(n);
			continue;
		}
		x = top - jnum(n, "lsn");
		n = jv_object_set(n, jv_string("lag_bytes"),
		    num_or_null(x < 0 ? 0 : x));
		if (isnan(jnum(n, "lag_s"))) {
			jstr(n, "node", name, sizeof name);
			if ((colon = strrchr(name, ':')) != NULL)
				*colon = '\0';
			n = jv_object_set(n, jv_string("lag_s"),
			    num_or_null(x > 0 ? replay_lag(primary, name) : 0));
		}
		nodes = jv_array_set(nodes, i, n);
	}
	jv_free(primary);
	return nodes;
}

jv
read_pg_nodes(struct collector *co)
{
	char err[1024], name[600], sql[64];
	jv nodes = jv_array();
	int i, lost;

	if (co->nnodes == 0) {
		if (co->pg == NULL)
			return nodes;
		snprintf(name, sizeof name, "%s:%s", PQhost(co->pg),
		    PQport(co->pg));
		nodes = jv_array_append(nodes, node_read(co, co->pg, name,
		    &lost));
		/* a query left in flight would fail the next tick's */
		if (lost) {
			PQfinish(co->pg);
			co->pg = NULL;
		}
		return standby_lag(nodes);
	}
	for (i = 0; i < co->nnodes; i++) {
		if (co->node[i] == NULL) {
			co->node[i] = node_open(co, i, err, sizeof err);
			if (co->node[i] == NULL) {
				nodes = jv_array_append(nodes,
				    node_down(co->node_name[i], err));
				continue;
			}
			snprintf(sql, sizeof sql, "set statement_timeout = %ld",
			    co->cfg->timeout_ms);
			if (pg_query(co, co->node[i], sql, NULL, 0, err,
			    sizeof err) < 0) {
				PQfinish(co->node[i]);
				co->node[i] = NULL;
				nodes = jv_array_append(nodes,
				    node_down(co->node_name[i], err));
				continue;
			}
		}
		nodes = jv_array_append(nodes, node_read(co, co->node[i],
		    co->node_name[i], &lost));
		if (lost) {
			PQfinish(co->node[i]);
			co->node[i] = NULL;
		}
	}
	return standby_lag(nodes);
}

/* ---- PgBouncer ---- */

/* HOST:PORT of a conninfo, as it names a PgBouncer. */
static void
bouncer_name(const char *ci, char *buf, size_t len)
{
	PQconninfoOption *o = PQconninfoParse(ci, NULL);
	const char *h = ci_value(o, "host"), *p = ci_value(o, "port");

	if (h == NULL)
		h = ci_value(o, "hostaddr");
	snprintf(buf, len, "%s:%s", h ? h : "local", p ? p : "5432");
	PQconninfoFree(o);
}

static int
col(const PGresult *r, const char *name)
{
	return PQfnumber(r, name);
}

/* A column of row i by name: NAN when this PgBouncer has no such column. */
static double
colnum(const PGresult *r, int i, const char *name)
{
	int c = col(r, name);

	return c < 0 ? NAN : pg_num(r, i, c);
}

static const char *
colstr(const PGresult *r, int i, const char *name)
{
	int c = col(r, name);

	return c < 0 || PQgetisnull(r, i, c) ? "" : PQgetvalue(r, i, c);
}

/* pool_size of database db in SHOW DATABASES, NAN when not there. */
static double
pool_size(const PGresult *dbs, const char *db)
{
	int i;

	for (i = 0; dbs && i < PQntuples(dbs); i++)
		if (strcmp(colstr(dbs, i, "name"), db) == 0)
			return colnum(dbs, i, "pool_size");
	return NAN;
}

static jv
bouncer_pools(const PGresult *pools, const PGresult *dbs)
{
	/* SHOW POOLS's counts, copied as they are */
	static const char *const counts[] = { "cl_active", "cl_waiting",
		"sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login" };
	jv arr = jv_array(), p;
	const char *db;
	double act, size, mw;
	size_t k;
	int i;

	for (i = 0; i < PQntuples(pools); i++) {
		db = colstr(pools, i, "database");
		/* the console itself */
		if (strcmp(db, "pgbouncer") == 0)
			continue;
		act = colnum(pools, i, "sv_active");
		size = pool_size(dbs, db);
		mw = colnum(pools, i, "maxwait") * 1e6 +
		    (isnan(colnum(pools, i, "maxwait_us")) ? 0 :
		    colnum(pools, i, "maxwait_us"));
		p = jv_object();
		p = jv_object_set(p, jv_string("database"), jv_string(db));
		p = jv_object_set(p, jv_string("user"),
		    jv_string(colstr(pools, i, "user")));
		p = jv_object_set(p, jv_string("pool_mode"),
		    jv_string(colstr(pools, i, "pool_mode")));
		for (k = 0; k < sizeof counts / sizeof *counts; k++)
			p = jv_object_set(p, jv_string(counts[k]),
			    num_or_null(colnum(pools, i, counts[k])));
		p = jv_object_set(p, jv_string("maxwait_us"), num_or_null(mw));
		p = jv_object_set(p, jv_string("pool_size"), num_or_null(size));
		p = jv_object_set(p, jv_string("util_pct"), num_or_null(
		    isnan(act) || !(size > 0) ? NAN :
		    round_to(act * 100 / size, 2)));
		arr = jv_array_append(arr, p);
	}
	return arr;
}

jv
read_pgbouncers(struct collector *co)
{
	const struct ps_cfg *c = co->cfg;
	PGresult *pools = NULL, *dbs = NULL;
	char err[1024], name[600];
	jv arr = jv_array(), o;
	int i;

	for (i = 0; i < c->npgbouncers; i++) {
		bouncer_name(c->pgbouncers[i], name, sizeof name);
		if (co->bouncer[i] == NULL) {
			co->bouncer[i] = pgconn_open_timeout(c->pgbouncers[i],
			    "labpulse-poolstat", (c->timeout_ms + 999) / 1000,
			    err, sizeof err);
			if (co->bouncer[i] == NULL)
				goto down;
		}
		/* the console takes one command a query */
		if (pg_query(co, co->bouncer[i], "SHOW POOLS", &pools, 1, err,
		    sizeof err) < 0 || pg_query(co, co->bouncer[i],
		    "SHOW DATABASES", &dbs, 1, err, sizeof err) < 0) {
			PQclear(pools);
			PQclear(dbs);
			pools = dbs = NULL;
			PQfinish(co->bouncer[i]);
			co->bouncer[i] = NULL;
			goto down;
		}
		o = jv_object();
		o = jv_object_set(o, jv_string("name"), jv_string(name));
		o = jv_object_set(o, jv_string("up"), jv_true());
		o = jv_object_set(o, jv_string("error"), jv_null());
		o = jv_object_set(o, jv_string("pools"), bouncer_pools(pools,
		    dbs));
		arr = jv_array_append(arr, o);
		PQclear(pools);
		PQclear(dbs);
		pools = dbs = NULL;
		continue;
down:
		o = source_down(err);
		o = jv_object_set(o, jv_string("name"), jv_string(name));
		arr = jv_array_append(arr, o);
	}
	return arr;
}

/* ---- Redis: replication and Sentinel ---- */

/* The value of key in INFO's text, in buf; "" when it is not there. */
static const char *
info_str(const char *info, const char *key, char *buf, size_t len)
{
	return field_str(info, key, ':', "\r\n", buf, len);
}

/* A field of a replica's line "ip=…,port=…,state=…,offset=…,lag=…". */
static const char *
kv_str(const char *line, const char *key, char *buf, size_t len)
{
	return field_str(line, key, '=', ",", buf, len);
}

static double
kv_num(const char *line, const char *key)
{
	char v[64];

	return kv_str(line, key, v, sizeof v)[0] ? strtod(v, NULL) : NAN;
}

static jv
rnode(const char *addr, const char *role, double offset, double lag_bytes,
    double lag_s)
{
	jv o = jv_object();

	o = jv_object_set(o, jv_string("node"), jv_string(addr));
	o = jv_object_set(o, jv_string("role"), jv_string(role));
	o = jv_object_set(o, jv_string("offset"), num_or_null(offset));
	o = jv_object_set(o, jv_string("lag_bytes"), num_or_null(lag_bytes));
	o = jv_object_set(o, jv_string("lag_s"), num_or_null(lag_s));
	return o;
}

jv
redis_replication(struct collector *co, const char *info, jv o)
{
	const redisContext *rc = co->redis;
	char self[300], role[32], key[32], line[512], ip[256], port[16],
	    st[64], v[300], mh[256];
	double top, off, io;
	jv nodes = jv_array(), n;
	int i;

	if (rc->connection_type == REDIS_CONN_UNIX)
		snprintf(self, sizeof self, "unix:%s", rc->unix_sock.path);
	else
		snprintf(self, sizeof self, "%s:%d", rc->tcp.host, rc->tcp.port);
	info_str(info, "role", role, sizeof role);
	if (strcmp(role, "slave") == 0) {
		/* connected to a replica: its own view of its primary; its
		 * link down, -1 since the last I/O, and the lag is how long
		 * it has been down */
		io = info_num(info, "master_last_io_seconds_ago");
		if (io < 0)
			io = info_num(info, "master_link_down_since_seconds");
		n = rnode(self, "replica", info_num(info, "slave_repl_offset"),
		    NAN, io < 0 ? NAN : io);
		snprintf(v, sizeof v, "%s:%s", info_str(info, "master_host",
		    mh, sizeof mh), info_str(info, "master_port", port,
		    sizeof port));
		n = jv_object_set(n, jv_string("primary"), jv_string(v));
		n = jv_object_set(n, jv_string("link"), jv_string(info_str(info,
		    "master_link_status", st, sizeof st)));
		nodes = jv_array_append(nodes, n);
		o = jv_object_set(o, jv_string("role"), jv_string("replica"));
		o = jv_object_set(o, jv_string("connected_replicas"),
		    num_or_null(info_num(info, "connected_slaves")));
		return jv_object_set(o, jv_string("nodes"), nodes);
	}
	top = info_num(info, "master_repl_offset");
	nodes = jv_array_append(nodes, rnode(self, "primary", top, NAN, NAN));
	for (i = 0; i < 64; i++) {
		snprintf(key, sizeof key, "slave%d", i);
		if (!info_str(info, key, line, sizeof line)[0])
			break;
		snprintf(v, sizeof v, "%s:%s", kv_str(line, "ip", ip,
		    sizeof ip), kv_str(line, "port", port, sizeof port));
		off = kv_num(line, "offset");
		n = rnode(v, "replica", off, isnan(top) || isnan(off) ? NAN :
		    top - off < 0 ? 0 : top - off, kv_num(line, "lag"));
		n = jv_object_set(n, jv_string("state"), jv_string(kv_str(line,
		    "state", st, sizeof st)));
		nodes = jv_array_append(nodes, n);
	}
	o = jv_object_set(o, jv_string("role"), jv_string("primary"));
	o = jv_object_set(o, jv_string("connected_replicas"),
	    num_or_null(info_num(info, "connected_slaves")));
	return jv_object_set(o, jv_string("nodes"), nodes);
}

/* The value of field name in a reply of name/value pairs, as text. */
static const char *
pair(const redisReply *r, const char *name)
{
	size_t i;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY)
		return NULL;
	for (i = 0; i + 1 < r->elements; i += 2)
		if (r->element[i]->type == REDIS_REPLY_STRING &&
		    r->element[i + 1]->type == REDIS_REPLY_STRING &&
		    strcmp(r->element[i]->str, name) == 0)
			return r->element[i + 1]->str;
	return NULL;
}

static jv
pair_num(const redisReply *r, const char *name)
{
	const char *v = pair(r, name);

	return v ? jv_number(strtod(v, NULL)) : jv_null();
}

static jv
pair_str(const redisReply *r, const char *name)
{
	const char *v = pair(r, name);

	return v ? jv_string(v) : jv_null();
}

/* One sentinel's view: the master it sees, its flags and quorum, the
 * replicas it knows. */
static jv
sentinel_view(struct collector *co, const char *host, int port)
{
	const char *master = co->rt.master;
	struct timeval tv;
	redisContext *s;
	redisReply *m = NULL, *rs = NULL;
	char name[300], err[600], addr[300];
	jv o, reps, r;
	size_t i;

	snprintf(name, sizeof name, "%s:%d", host, port);
	tv.tv_sec = co->cfg->timeout_ms / 1000;
	tv.tv_usec = co->cfg->timeout_ms % 1000 * 1000;
	s = redisConnectWithTimeout(host, port, tv);
	if (s == NULL || s->err) {
		snprintf(err, sizeof err, "cannot reach sentinel %s: %s", name,
		    s ? s->errstr : "out of memory");
		goto down;
	}
	redisSetTimeout(s, tv);
	m = redisCommand(s, "SENTINEL master %s", master);
	if (m && m->type == REDIS_REPLY_ARRAY)
		rs = redisCommand(s, "SENTINEL replicas %s", master);
	if (m == NULL || m->type != REDIS_REPLY_ARRAY) {
		snprintf(err, sizeof err, "sentinel %s: %s", name,
		    m == NULL ? (s->errstr[0] ? s->errstr : "no answer") :
		    m->type == REDIS_REPLY_ERROR ? m->str : "not a master");
		goto down;
	}
	o = jv_object();
	o = jv_object_set(o, jv_string("sentinel"), jv_string(name));
	o = jv_object_set(o, jv_string("up"), jv_true());
	o = jv_object_set(o, jv_string("error"), jv_null());
	snprintf(addr, sizeof addr, "%s:%s", pair(m, "ip") ? pair(m, "ip") :
	    "?", pair(m, "port") ? pair(m, "port") : "?");
	o = jv_object_set(o, jv_string("primary"), jv_string(addr));
	o = jv_object_set(o, jv_string("flags"), pair_str(m, "flags"));
	o = jv_object_set(o, jv_string("quorum"), pair_num(m, "quorum"));
	o = jv_object_set(o, jv_string("replicas_known"),
	    pair_num(m, "num-slaves"));
	o = jv_object_set(o, jv_string("other_sentinels"),
	    pair_num(m, "num-other-sentinels"));
	reps = jv_array();
	for (i = 0; rs && rs->type == REDIS_REPLY_ARRAY && i < rs->elements;
	    i++) {
		snprintf(addr, sizeof addr, "%s:%s",
		    pair(rs->element[i], "ip") ? pair(rs->element[i], "ip") :
		    "?", pair(rs->element[i], "port") ?
		    pair(rs->element[i], "port") : "?");
		r = jv_object();
		r = jv_object_set(r, jv_string("node"), jv_string(addr));
		r = jv_object_set(r, jv_string("flags"),
		    pair_str(rs->element[i], "flags"));
		r = jv_object_set(r, jv_string("link"),
		    pair_str(rs->element[i], "master-link-status"));
		r = jv_object_set(r, jv_string("offset"),
		    pair_num(rs->element[i], "slave-repl-offset"));
		reps = jv_array_append(reps, r);
	}
	o = jv_object_set(o, jv_string("replicas"), reps);
	freeReplyObject(m);
	if (rs)
		freeReplyObject(rs);
	redisFree(s);
	return o;
down:
	if (m)
		freeReplyObject(m);
	if (rs)
		freeReplyObject(rs);
	if (s)
		redisFree(s);
	o = source_down(err);
	return jv_object_set(o, jv_string("sentinel"), jv_string(name));
}

jv
read_sentinels(struct collector *co)
{
	jv arr = jv_array();
	int i;

	for (i = 0; i < co->rt.nsentinels; i++)
		arr = jv_array_append(arr, sentinel_view(co,
		    co->rt.sentinel[i].host, co->rt.sentinel[i].port));
	return arr;
}

void
cluster_free(struct collector *co)
{
	int i;

	for (i = 0; i < PG_NODES_MAX; i++) {
		if (co->node[i])
			PQfinish(co->node[i]);
		co->node[i] = NULL;
	}
	for (i = 0; i < PGBOUNCERS_MAX; i++) {
		if (co->bouncer[i])
			PQfinish(co->bouncer[i]);
		co->bouncer[i] = NULL;
	}
}
