/* addr.h: the addresses of DESIGN.md (-, file:, unix:, stream:) and listening
 * sockets (host:port, [v6]:port, unix:PATH). */
#ifndef LABPULSE_ADDR_H
#define LABPULSE_ADDR_H

#include <stddef.h>

enum addr_kind { ADDR_STDIO, ADDR_FILE, ADDR_UNIX, ADDR_STREAM };

struct addr {
	enum addr_kind kind;
	char path[256];		/* file: and unix: */
	char stream[128];	/* stream:NAME */
	char group[128];	/* stream:NAME@GROUP, empty when none */
};

/* Parse a data address. Returns 0, or -1 with the reason in err. */
int addr_parse(const char *spec, struct addr *a, char *err, size_t errlen);

/* Create, bind and listen on a socket for spec; nonblocking, close-on-exec.
 * Returns the descriptor, or -ERR_USAGE (a spec that is not an address) or
 * -ERR_OS (the system refused) with the reason in err. */
int addr_listen(const char *spec, int backlog, char *err, size_t errlen);

/* The local address of a listening socket, as addr_listen would take it. */
void addr_describe(int fd, char *buf, size_t len);

/* Connect a blocking Unix stream socket to path. -1 with err on failure. */
int addr_connect_unix(const char *path, char *err, size_t errlen);

/* Parse the address of an input read as a consumer group: a stream must
 * name its group (stream:NAME@GROUP). Returns 0, or -1 with err. */
int addr_parse_group_input(const char *spec, struct addr *a, char *err,
    size_t errlen);

/* Open what a (ADDR_STDIO, ADDR_FILE or ADDR_UNIX) names for reading: the
 * descriptor, or -ERR_NOINPUT with err (a socket refused is an input that
 * cannot be opened too). The reading side of fdout_open. */
int addr_open_input(const struct addr *a, char *err, size_t errlen);

#endif
