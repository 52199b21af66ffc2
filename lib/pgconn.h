/* pgconn.h: opening PostgreSQL connections the way every libpq tool does:
 * --db CONNINFO (a conninfo string or URI), else PG* variables and
 * DATABASE_URL. */
#ifndef LABPULSE_PGCONN_H
#define LABPULSE_PGCONN_H

#include <stddef.h>
#include <libpq-fe.h>

/* A connection named appname in pg_stat_activity; NULL with err on failure.
 * conninfo NULL takes $DATABASE_URL when set, else the PG* variables. */
PGconn *pgconn_open(const char *conninfo, const char *appname,
    char *err, size_t errlen);
/* The same, giving up connecting after timeout_s seconds (libpq's
 * connect_timeout: at least 2; pgconn_open waits 10). */
PGconn *pgconn_open_timeout(const char *conninfo, const char *appname,
    long timeout_s, char *err, size_t errlen);
/* Whether c's server is a standby (pg_is_in_recovery()): 1 or 0, or -1
 * when it does not answer. */
int pgconn_in_recovery(PGconn *c);
/* Lists of libpq's multi-host settings (host, hostaddr, port): the n-th
 * item (from 0) of the comma-separated list into buf, or the list whole
 * when it has one item, as libpq applies a single port to every host;
 * "" past the end or for NULL. */
void pgconn_list_item(const char *list, int n, char *buf, size_t len);
/* Its items: 0 for NULL or "". */
int pgconn_list_count(const char *list);
/* A one-line form of PostgreSQL's message of res (or of the connection). */
void pgconn_error(PGconn *c, const PGresult *res, char *err, size_t errlen);

#endif
