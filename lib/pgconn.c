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
	PGconn *c;

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
	if (PQstatus(c) != CONNECTION_OK) {
		pgconn_error(c, NULL, err, errlen);
		PQfinish(c);
		return NULL;
	}
	return c;
}
