/* test_redis.c: Redis URLs: what is parsed from them, and that a password
 * never shows in what may be logged (the url kept, an error text). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "redis.h"
#include "tap.h"

static const char pw[] = "s3cr/et@pw";

static void
good(const char *url, const char *host, int port, int db, const char *pass,
    const char *shown)
{
	struct redis_target t;
	char err[512] = "";

	if (!is_int(redis_target_parse(&t, url, err, sizeof err), 0,
	    "'%s' is a Redis URL", url)) {
		diag("    %s", err);
		skip(4, "not parsed");
		return;
	}
	is_str(t.host, host, "  its host");
	ok(t.port == port && t.db == db, "  its port %d and db %d", port, db);
	is_str(t.password, pass, "  its password");
	is_str(t.url, shown, "  the url shown");
}

static void
bad(const char *url, const char *secret, const char *want)
{
	struct redis_target t;
	char err[512] = "";

	is_int(redis_target_parse(&t, url, err, sizeof err), -1,
	    "'%s' is refused", url);
	is_str(err, want, "  with its reason");
	ok(strstr(err, secret) == NULL, "  the password is not in it");
	ok(t.password[0] == '\0' && strstr(t.url, secret) == NULL,
	    "  nor in the target");
}

int
main(void)
{
	struct redis_target t;
	struct redisContext *c;
	char err[512] = "", url[128];

	unsetenv("LABPULSE_REDIS");
	good("redis://127.0.0.1:6390/2", "127.0.0.1", 6390, 2, "",
	    "redis://127.0.0.1:6390/2");
	good("redis://:hunter2@db.example:7000/1", "db.example", 7000, 1,
	    "hunter2", "redis://***@db.example:7000/1");
	good("redis://user:hunter2@db.example", "db.example", 6379, 0,
	    "hunter2", "redis://***@db.example");
	/* a password holding '@' and '/' is taken whole, and shown nowhere */
	snprintf(url, sizeof url, "redis://:%s@10.0.0.1:6380/3", pw);
	good(url, "10.0.0.1", 6380, 3, pw, "redis://***@10.0.0.1:6380/3");

	bad("redis://:hunter2@host:notaport/0", "hunter2",
	    "bad Redis URL 'redis://***@host:notaport/0' (expected "
	    "redis://HOST[:PORT][/DB] or unix:PATH)");
	bad("redis://:hunter2@host:6379/x", "hunter2",
	    "bad Redis URL 'redis://***@host:6379/x' (expected "
	    "redis://HOST[:PORT][/DB] or unix:PATH)");
	snprintf(url, sizeof url, "redis://:%s@host:0", pw);
	bad(url, "s3cr", "bad Redis URL 'redis://***@host:0' (expected "
	    "redis://HOST[:PORT][/DB] or unix:PATH)");
	bad("http://:hunter2@host/", "hunter2", "bad Redis URL (expected "
	    "redis://HOST[:PORT][/DB], sentinel://HOST:PORT[,HOST:PORT...]/"
	    "MASTER[/DB] or unix:PATH)");
	bad("redis://host:99999", "\001", "bad Redis URL 'redis://host:99999' "
	    "(expected redis://HOST[:PORT][/DB] or unix:PATH)");

	/* an error of the connection names the server, not the password:
	 * port 1 of the loopback refuses */
	snprintf(url, sizeof url, "redis://:%s@127.0.0.1:1/0", pw);
	if (redis_target_parse(&t, url, err, sizeof err) < 0)
		bail_out("%s", err);
	c = redis_connect_sync(&t, 1000, err, sizeof err);
	ok(c == NULL, "no Redis on 127.0.0.1:1");
	is_str(err, "cannot reach Redis at redis://***@127.0.0.1:1/0: "
	    "Connection refused", "  the error names the masked URL");
	ok(strstr(err, "s3cr") == NULL && strstr(err, "pw") == NULL,
	    "  and holds no part of the password");
	redisFree(c);
	return done_testing();
}
