/* url.h: the http://HOST[:PORT][/PATH] URLs the clients of labpulse are
 * given (loadgen's --url and --notify, the test tools), split and resolved
 * once. No TLS: a load generator and its tools talk plain HTTP on their own
 * network. */
#ifndef LABPULSE_URL_H
#define LABPULSE_URL_H

#include <stddef.h>
#include <sys/socket.h>

/* url_split's flags. */
#define URL_BASE	0x1	/* a prefix: no query or fragment, and no
				 * slash at the end of path */
#define URL_WS		0x2	/* ws:// is taken as http:// */

struct url {
	char host[256];		/* an IPv6 address without its brackets */
	char port[8];		/* "80" when none is written */
	char hostport[300];	/* as written, for the Host header */
	char path[1024];	/* and query, without a fragment; "/" when
				 * none (URL_BASE: "" then) */
	int port_n;
	int ws;			/* the scheme was ws:// */
	/* url_resolve's */
	struct sockaddr_storage sa;
	socklen_t salen;
	char numeric[64];	/* the address, for a client that takes text */
};

/* Split s into u. Returns 0, or -ERR_USAGE with the reason (naming s) in
 * err: another scheme, a bad host or port, spaces or control characters. */
int url_split(const char *s, int flags, struct url *u, char *err,
    size_t errlen);
/* Resolve u's host and port to its first address. Returns 0, or
 * -ERR_UNAVAILABLE with "cannot resolve HOST: why" in err. */
int url_resolve(struct url *u, char *err, size_t errlen);
/* Append s to the string out (of cap bytes) percent-encoded as a query
 * value: all but letters, digits and "-._~". What does not fit is left
 * out. Returns the length of out. */
size_t url_encode(char *out, size_t cap, const char *s);

#endif
