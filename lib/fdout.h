/* fdout.h: NDJSON out to stdout, a file or a Unix socket, written whole. */
#ifndef LABPULSE_FDOUT_H
#define LABPULSE_FDOUT_H

#include <stddef.h>

struct addr;

/* Open what a (ADDR_STDIO, ADDR_FILE or ADDR_UNIX) names for writing.
 * Returns a descriptor, or -1 with err. */
int fdout_open(const struct addr *a, char *err, size_t errlen);
/* Write all of buf, retrying short writes; -1 with errno on failure. */
int fdout_write_all(int fd, const char *buf, size_t len);

#endif
