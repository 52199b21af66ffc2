/* url.c: http://HOST[:PORT][/PATH] split, resolved and encoded, for the
 * clients: loadgen and the test tools. */
#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "parse.h"
#include "url.h"

static int
bad(char *err, size_t errlen, const char *s, const char *why)
{
	snprintf(err, errlen, "'%s': %s", s, why);
	return -ERR_USAGE;
}

/* HOST or [IPV6], then :PORT or nothing, up to pend. */
static int
split_authority(const char *s, const char *p, const char *pend, struct url *u,
    char *err, size_t errlen)
{
	const char *hend;
	char perr[128];
	size_t hl, pl;
	long port;

	if (*p == '[') {
		hend = memchr(p, ']', (size_t)(pend - p));
		if (hend == NULL)
			return bad(err, errlen, s, "bad IPv6 host");
		hl = (size_t)(hend - p - 1);
		p++;
		hend++;
	} else {
		hend = p + strcspn(p, ":/?#");
		hl = (size_t)(hend - p);
	}
	if (hl == 0 || hl >= sizeof u->host)
		return bad(err, errlen, s, "bad host");
	memcpy(u->host, p, hl);
	u->host[hl] = '\0';
	if (hend == pend) {
		snprintf(u->port, sizeof u->port, "80");
		u->port_n = 80;
		return 0;
	}
	if (*hend != ':')
		return bad(err, errlen, s, "bad host");
	pl = (size_t)(pend - hend - 1);
	if (pl == 0 || pl >= sizeof u->port)
		return bad(err, errlen, s, "bad port");
	memcpy(u->port, hend + 1, pl);
	u->port[pl] = '\0';
	if (parse_long(u->port, 1, 65535, &port, perr, sizeof perr) < 0)
		return bad(err, errlen, s, "bad port");
	u->port_n = (int)port;
	return 0;
}

int
url_split(const char *s, int flags, struct url *u, char *err, size_t errlen)
{
	const char *p = s, *pstart;
	size_t pl;
	int rc;

	memset(u, 0, sizeof *u);
	if (strncmp(p, "http://", 7) == 0) {
		p += 7;
	} else if ((flags & URL_WS) && strncmp(p, "ws://", 5) == 0) {
		p += 5;
		u->ws = 1;
	} else {
		snprintf(err, errlen, "'%s' is not an http://%s URL", s,
		    flags & URL_WS ? " or ws://" : "");
		return -ERR_USAGE;
	}
	for (pstart = p; *pstart; pstart++)
		if ((unsigned char)*pstart <= ' ' || *pstart == 0x7f)
			return bad(err, errlen, s,
			    "spaces or control characters");
	pstart = p + strcspn(p, "/?#");
	if ((rc = split_authority(s, p, pstart, u, err, errlen)) < 0)
		return rc;
	snprintf(u->hostport, sizeof u->hostport, "%.*s", (int)(pstart - p),
	    p);
	pl = strcspn(pstart, "#");
	if (flags & URL_BASE) {
		if (pstart[strcspn(pstart, "?#")] != '\0')
			return bad(err, errlen, s,
			    "a base URL has no query or fragment");
		while (pl > 0 && pstart[pl - 1] == '/')
			pl--;
	}
	if (*pstart != '/' && !(flags & URL_BASE))
		u->path[0] = '/';
	if (strlen(u->path) + pl >= sizeof u->path)
		return bad(err, errlen, s, "path too long");
	strncat(u->path, pstart, pl);
	return 0;
}

int
url_resolve(struct url *u, char *err, size_t errlen)
{
	struct addrinfo hints, *res;
	int rc;

	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(u->host, u->port, &hints, &res);
	if (rc == 0) {
		memcpy(&u->sa, res->ai_addr, res->ai_addrlen);
		u->salen = res->ai_addrlen;
		rc = getnameinfo(res->ai_addr, res->ai_addrlen, u->numeric,
		    sizeof u->numeric, NULL, 0, NI_NUMERICHOST);
		freeaddrinfo(res);
	}
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", u->host,
		    gai_strerror(rc));
		return -ERR_UNAVAILABLE;
	}
	return 0;
}

size_t
url_encode(char *out, size_t cap, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = strlen(out);

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		int plain = isalnum(c) || c == '-' || c == '.' || c == '_' ||
		    c == '~';

		if (o + (plain ? 1 : 3) >= cap)
			break;
		if (plain) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return o;
}
