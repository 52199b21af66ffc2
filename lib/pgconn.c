/* pgconn.c: libpq connections opened alike by every program. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgconn.h"

void
pgconn_error(PGconn *c, const PGresult *res, char *err, size_t errlen)
{
	const char *m = res ? PQresultErrorMessage(res) : NULL;
	size_t n;

	if (m == NULL || *m == '\0')
		m = c ? PQerrorMessage(c) : "no connection";
	if (strncmp(m, "ERROR:  ", 8) == 0)
		m += 8;
	snprintf(err, errlen, "%s", m);
	/* libpq ends messages with a newline and may add DETAIL lines */
	for (n = 0; err[n]; n++)
		if (err[n] == '\n') {
			err[n] = err[n + 1] ? ' ' : '\0';
		}
	n = strlen(err);
	while (n > 0 && err[n - 1] == ' ')
		err[--n] = '\0';
}

void
pgconn_list_item(const char *list, int n, char *buf, size_t len)
{
	const char *p = list, *comma;

	*buf = '\0';
	if (list == NULL)
		return;
	if (strchr(list, ',') == NULL) {
		snprintf(buf, len, "%s", list);
		return;
	}
	for (; n > 0 && p; n--)
		if ((p = strchr(p, ',')) != NULL)
			p++;
	if (p == NULL)
		return;
	comma = strchr(p, ',');
	snprintf(buf, len, "%.*s", (int)(comma ? comma - p : (long)strlen(p)),
	    p);
}

int
pgconn_list_count(const char *list)
{
	int n = 1;

	if (list == NULL || *list == '\0')
		return 0;
	for (; *list; list++)
		n += *list == ',';
	return n;
}

/* What a server must be for target_session_attrs. */
enum want { W_ANY, W_PRIMARY, W_STANDBY };

int
pgconn_in_recovery(PGconn *c)
{
	PGresult *r = PQexec(c, "SELECT pg_catalog.pg_is_in_recovery()");
	int rc = -1;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		rc = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	return rc;
}

/* Whether c, asked itself, is what want says: 1, 0, or -1 when it does
 * not even answer. */
static int
server_is(PGconn *c, enum want want)
{
	int standby = pgconn_in_recovery(c);

	if (standby < 0)
		return -1;
	return want == W_ANY || (want == W_STANDBY) == standby;
}

/* The target_session_attrs of c's options, as far as this file checks
 * them itself; *prefer for prefer-standby. */
static enum want
wanted(const PQconninfoOption *opts, int *prefer)
{
	const PQconninfoOption *o;

	*prefer = 0;
	for (o = opts; o->keyword; o++) {
		if (strcmp(o->keyword, "target_session_attrs") != 0 || !o->val)
			continue;
		if (strcmp(o->val, "read-write") == 0 ||
		    strcmp(o->val, "primary") == 0)
			return W_PRIMARY;
		if (strcmp(o->val, "read-only") == 0 ||
		    strcmp(o->val, "standby") == 0)
			return W_STANDBY;
		if (strcmp(o->val, "prefer-standby") == 0)
			*prefer = 1;
	}
	return W_ANY;
}

/* A multi-host conninfo through PgBouncer (one in front of each node)
 * meets two things libpq cannot see through. A PgBouncer whose server is
 * gone still accepts logins, answering from what it kept of its last
 * server login, and fails the first query ("server login has been
 * failing"); and it tells new clients the in_hot_standby of that login,
 * so a standby promoted behind it still looks like a standby to
 * target_session_attrs (PgBouncer 1.18). So when opts names several
 * hosts, the server libpq chose is asked what it is; when it does not
 * answer or is not what target_session_attrs wants, each host is tried
 * alone, in order, with every other setting as given but
 * target_session_attrs, which the server answers here instead. c is
 * libpq's connection (kept when it is right) or NULL; the connection to
 * use, or NULL. */
static PGconn *
each_host(PQconninfoOption *opts, PGconn *c)
{
	const char *keys[64], *vals[64], *hosts = NULL, *addrs = NULL;
	const char *ports = NULL;
	char host[256], addr[256], port[32];
	int n = 0, ih = -1, ia = -1, ip = -1, it = -1, i, nhosts, prefer;
	int pass;
	enum want want = wanted(opts, &prefer);
	PQconninfoOption *o;

	for (o = opts; o->keyword && n < 60; o++) {
		if (o->val == NULL || *o->val == '\0')
			continue;
		if (strcmp(o->keyword, "host") == 0)
			hosts = o->val, ih = n;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			addrs = o->val, ia = n;
		else if (strcmp(o->keyword, "port") == 0)
			ports = o->val, ip = n;
		else if (strcmp(o->keyword, "target_session_attrs") == 0)
			it = n;
		keys[n] = o->keyword;
		vals[n++] = o->val;
	}
	keys[n] = vals[n] = NULL;
	nhosts = pgconn_list_count(hosts ? hosts : addrs);
	if (nhosts < 2)
		return c;
	if (c != NULL && server_is(c, want) == 1)
		return c;
	PQfinish(c);
	if (it >= 0)
		vals[it] = "any";
	/* prefer-standby: a standby first, then any server */
	for (pass = prefer ? 0 : 1; pass < 2; pass++)
		for (i = 0; i < nhosts; i++) {
			pgconn_list_item(hosts, i, host, sizeof host);
			pgconn_list_item(addrs, i, addr, sizeof addr);
			pgconn_list_item(ports, i, port, sizeof port);
			if (ih >= 0)
				vals[ih] = host;
			if (ia >= 0)
				vals[ia] = addr;
			if (ip >= 0)
				vals[ip] = port;
			c = PQconnectdbParams(keys, vals, 0);
			if (c != NULL && PQstatus(c) == CONNECTION_OK &&
			    server_is(c, pass == 0 ? W_STANDBY : want) == 1)
				return c;
			PQfinish(c);
		}
	return NULL;
}

PGconn *
pgconn_open(const char *conninfo, const char *appname, char *err,
    size_t errlen)
{
	return pgconn_open_timeout(conninfo, appname, 10, err, errlen);
}

PGconn *
pgconn_open_timeout(const char *conninfo, const char *appname,
    long timeout_s, char *err, size_t errlen)
{
	const char *keys[] = { "dbname", "fallback_application_name",
	    "connect_timeout", NULL };
	const char *vals[4];
	char timeout[32];
	PQconninfoOption *opts;
	PGconn *c;

	*err = '\0';
	if (conninfo == NULL)
		conninfo = getenv("DATABASE_URL");
	vals[0] = conninfo && *conninfo ? conninfo : NULL;
	vals[1] = appname;
	snprintf(timeout, sizeof timeout, "%ld", timeout_s < 2 ? 2 : timeout_s);
	vals[2] = timeout;
	vals[3] = NULL;
	if (vals[0] == NULL) {
		keys[0] = "fallback_application_name";
		vals[0] = appname;
		keys[1] = "connect_timeout";
		vals[1] = timeout;
		keys[2] = NULL;
	}
	c = PQconnectdbParams(keys, vals, 1);
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	opts = PQconninfo(c);
	if (PQstatus(c) != CONNECTION_OK) {
		pgconn_error(c, NULL, err, errlen);
		PQfinish(c);
		c = NULL;
	}
	if (opts == NULL)
		return c;	/* out of memory: libpq's choice stands */
	c = each_host(opts, c);
	PQconninfoFree(opts);
	if (c == NULL && *err == '\0')
		snprintf(err, errlen, "no server of the conninfo answered as "
		    "target_session_attrs asks");
	return c;
}
