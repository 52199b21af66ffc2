/* test_url.c: the URLs the clients are given, split, resolved (numeric
 * hosts only, no name service needed) and query values encoded. */
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "tap.h"
#include "url.h"

static void
split_ok(const char *s, int flags, const char *host, const char *port,
    const char *hostport, const char *path)
{
	struct url u;
	char err[256] = "";

	if (!is_int(url_split(s, flags, &u, err, sizeof err), 0,
	    "'%s' accepted", s)) {
		diag("    %s", err);
		return;
	}
	is_str(u.host, host, "'%s': host", s);
	is_str(u.port, port, "'%s': port", s);
	is_str(u.hostport, hostport, "'%s': Host", s);
	is_str(u.path, path, "'%s': path", s);
}

static void
split_bad(const char *s, int flags, const char *msg)
{
	struct url u;
	char err[256] = "";

	is_int(url_split(s, flags, &u, err, sizeof err), -ERR_USAGE,
	    "'%.40s' refused", s);
	is_str(err, msg, "'%.40s': error text", s);
}

static void
encode(const char *s, size_t cap, const char *want)
{
	char out[64] = "q=";

	url_encode(out, cap, s);
	is_str(out, want, "encode '%s' in %zu bytes", s, cap);
}

int
main(void)
{
	struct url u;
	char err[2048], big[1200];

	split_ok("http://127.0.0.1:8000", URL_BASE, "127.0.0.1", "8000",
	    "127.0.0.1:8000", "");
	split_ok("http://h/lab/pulse//", URL_BASE, "h", "80", "h",
	    "/lab/pulse");
	split_ok("http://[::1]:9/x", URL_BASE, "::1", "9", "[::1]:9", "/x");
	split_ok("http://h:1", 0, "h", "1", "h:1", "/");
	split_ok("http://h:1?a=b", 0, "h", "1", "h:1", "/?a=b");
	split_ok("http://h:1/ws?class=A#top", 0, "h", "1", "h:1",
	    "/ws?class=A");
	split_ok("ws://[fe80::1]/ws", URL_WS, "fe80::1", "80", "[fe80::1]",
	    "/ws");
	url_split("ws://h/ws", URL_WS, &u, err, sizeof err);
	is_int(u.ws, 1, "ws:// noted");

	split_bad("https://h/", 0, "'https://h/' is not an http:// URL");
	split_bad("ws://h/ws", 0, "'ws://h/ws' is not an http:// URL");
	split_bad("ftp://h/", URL_WS,
	    "'ftp://h/' is not an http:// or ws:// URL");
	split_bad("http://h/?x", URL_BASE,
	    "'http://h/?x': a base URL has no query or fragment");
	split_bad("http://h#x", URL_BASE,
	    "'http://h#x': a base URL has no query or fragment");
	split_bad("http://[::1/x", 0, "'http://[::1/x': bad IPv6 host");
	split_bad("http://:80/", 0, "'http://:80/': bad host");
	split_bad("http:///", 0, "'http:///': bad host");
	split_bad("http://[::1]x/", 0, "'http://[::1]x/': bad host");
	split_bad("http://h:/", 0, "'http://h:/': bad port");
	split_bad("http://h:0/", 0, "'http://h:0/': bad port");
	split_bad("http://h:65536/", 0, "'http://h:65536/': bad port");
	split_bad("http://h:8x/", 0, "'http://h:8x/': bad port");
	split_bad("http://h/a b", 0,
	    "'http://h/a b': spaces or control characters");
	split_bad("http://h/a\r\nX: y", 0,
	    "'http://h/a\r\nX: y': spaces or control characters");
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	memcpy(big, "http://h/", 9);
	is_int(url_split(big, 0, &u, err, sizeof err), -ERR_USAGE,
	    "a path too long refused");
	ok(strstr(err, "path too long") != NULL, "said so: %.60s", err);

	is_int(url_split("http://127.0.0.1:8000/", URL_BASE, &u, err,
	    sizeof err), 0, "numeric IPv4 split");
	is_int(url_resolve(&u, err, sizeof err), 0, "numeric IPv4 resolved");
	is_str(u.numeric, "127.0.0.1", "its address");
	ok(u.salen > 0 && u.sa.ss_family == AF_INET, "its sockaddr");
	url_split("http://[::1]:8000/", URL_BASE, &u, err, sizeof err);
	is_int(url_resolve(&u, err, sizeof err), 0, "numeric IPv6 resolved");
	is_str(u.numeric, "::1", "its address");
	url_split("http://no.such.host.invalid/", URL_BASE, &u, err,
	    sizeof err);
	is_int(url_resolve(&u, err, sizeof err), -ERR_UNAVAILABLE,
	    "a name that cannot resolve");
	ok(strncmp(err, "cannot resolve no.such.host.invalid: ", 37) == 0,
	    "said so: %s", err);

	encode("Az09-._~", 64, "q=Az09-._~");
	encode("a b&c=d/é", 64, "q=a%20b%26c%3Dd%2F%C3%A9");
	encode("abcdef", 6, "q=abc");
	encode("&&", 7, "q=%26");
	return done_testing();
}
