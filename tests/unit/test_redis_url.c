/* test_redis_url.c: sentinel:// URLs: what is parsed from them, every
 * refusal with its reason, and that a password never shows in what may be
 * logged; and the blocking connection's error when no sentinel answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "redis.h"
#include "tap.h"

static const char pw[] = "s3cr/et@pw,x";

static void
good(const char *url, int n, const char *first, int port, const char *last,
    const char *master, int db, const char *pass, const char *shown)
{
	struct redis_target t;
	char err[512] = "";

	if (!is_int(redis_target_parse(&t, url, err, sizeof err), 0,
	    "'%s' is a Redis URL", url)) {
		diag("    %s", err);
		skip(6, "not parsed");
		return;
	}
	is_int(t.nsentinels, n, "  %d sentinels", n);
	ok(strcmp(t.sentinel[0].host, first) == 0 && t.sentinel[0].port == port,
	    "  the first %s:%d", first, port);
	is_str(t.sentinel[n - 1].host, last, "  the last %s", last);
	ok(strcmp(t.master, master) == 0 && t.db == db, "  master %s, db %d",
	    master, db);
	is_str(t.password, pass, "  its password");
	ok(strcmp(t.url, shown) == 0 && t.host[0] == '\0' && t.path[0] == '\0',
	    "  shown as %s, no host of its own", shown);
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
	ok(t.password[0] == '\0' && strstr(t.url, secret) == NULL &&
	    t.nsentinels == 0, "  nor in the target");
}

int
main(void)
{
	struct redis_target t;
	struct redisContext *c;
	char err[1024] = "", url[600], want[1400];
	int i;

	unsetenv("LABPULSE_REDIS");
	good("sentinel://127.0.0.1:26379/labpulse", 1, "127.0.0.1", 26379,
	    "127.0.0.1", "labpulse", 0, "", "sentinel://127.0.0.1:26379/labpulse");
	good("sentinel://10.0.0.1:26379,10.0.0.2:26380,s3.example:1/Lab.p_u-1/3",
	    3, "10.0.0.1", 26379, "s3.example", "Lab.p_u-1", 3, "",
	    "sentinel://10.0.0.1:26379,10.0.0.2:26380,s3.example:1/Lab.p_u-1/3");
	good("sentinel://:hunter2@a:1,b:2/m/", 2, "a", 1, "b", "m", 0,
	    "hunter2", "sentinel://***@a:1,b:2/m/");
	/* a password holding '@', '/' and ',' is taken whole, shown nowhere */
	snprintf(url, sizeof url, "sentinel://:%s@h:26379/m/2", pw);
	good(url, 1, "h", 26379, "h", "m", 2, pw, "sentinel://***@h:26379/m/2");
	good("sentinel://a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8/m", 8, "a", 1, "h", "m",
	    0, "", "sentinel://a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8/m");
	snprintf(url, sizeof url, "sentinel://h:1/%064d", 0);
	good(url, 1, "h", 1, "h", url + 15, 0, "", url);
	setenv("LABPULSE_REDIS", "sentinel://:hunter2@e:9/env", 1);
	good(NULL, 1, "e", 9, "e", "env", 0, "hunter2",
	    "sentinel://***@e:9/env");
	unsetenv("LABPULSE_REDIS");

	bad("sentinel://:hunter2@a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8,i:9/m",
	    "hunter2", "bad Redis URL 'sentinel://***@a:1,b:2,c:3,d:4,e:5,f:6,"
	    "g:7,h:8,i:9/m': more than 8 sentinels");
	bad("sentinel://:hunter2@h:26379", "hunter2", "bad Redis URL "
	    "'sentinel://***@h:26379' (expected sentinel://HOST:PORT"
	    "[,HOST:PORT...]/MASTER[/DB])");
	bad("sentinel:///m", "\001", "bad Redis URL 'sentinel:///m' (expected "
	    "sentinel://HOST:PORT[,HOST:PORT...]/MASTER[/DB])");
	bad("sentinel://:hunter2@h/m", "hunter2", "bad Redis URL "
	    "'sentinel://***@h/m': bad sentinel 'h' (expected HOST:PORT, PORT "
	    "from 1 to 65535)");
	bad("sentinel://h:1,,k:2/m", "\001", "bad Redis URL 'sentinel://h:1,,"
	    "k:2/m': bad sentinel '' (expected HOST:PORT, PORT from 1 to 65535)");
	bad("sentinel://h:1,:2/m", "\001", "bad Redis URL 'sentinel://h:1,:2/m'"
	    ": bad sentinel ':2' (expected HOST:PORT, PORT from 1 to 65535)");
	bad("sentinel://h:0/m", "\001", "bad Redis URL 'sentinel://h:0/m': bad "
	    "sentinel 'h:0' (expected HOST:PORT, PORT from 1 to 65535)");
	bad("sentinel://h:65536/m", "\001", "bad Redis URL 'sentinel://h:65536/m'"
	    ": bad sentinel 'h:65536' (expected HOST:PORT, PORT from 1 to "
	    "65535)");
	bad("sentinel://h:12x/m", "\001", "bad Redis URL 'sentinel://h:12x/m': "
	    "bad sentinel 'h:12x' (expected HOST:PORT, PORT from 1 to 65535)");
	snprintf(url, sizeof url, "sentinel://:%s@h:1/", pw);
	bad(url, "s3cr", "bad Redis URL 'sentinel://***@h:1/': bad master name "
	    "'' (1 to 64 of A-Z a-z 0-9 . _ -)");
	bad("sentinel://h:1/lab pulse", "\001", "bad Redis URL "
	    "'sentinel://h:1/lab pulse': bad master name 'lab pulse' (1 to 64 of "
	    "A-Z a-z 0-9 . _ -)");
	snprintf(url, sizeof url, "sentinel://h:1/%065d", 0);
	snprintf(want, sizeof want, "bad Redis URL '%s': bad master name '%s' "
	    "(1 to 64 of A-Z a-z 0-9 . _ -)", url, url + 15);
	bad(url, "\001", want);
	bad("sentinel://:hunter2@h:1/m/x", "hunter2", "bad Redis URL "
	    "'sentinel://***@h:1/m/x': bad database 'x' (from 0 to 10000)");
	bad("sentinel://h:1/m/10001", "\001", "bad Redis URL "
	    "'sentinel://h:1/m/10001': bad database '10001' (from 0 to 10000)");
	bad("sentinel://h:1/m/-1", "\001", "bad Redis URL 'sentinel://h:1/m/-1':"
	    " bad database '-1' (from 0 to 10000)");
	bad("sentinel://h:1/m/1/2", "\001", "bad Redis URL "
	    "'sentinel://h:1/m/1/2': bad database '1/2' (from 0 to 10000)");
	bad("sentinal://:hunter2@h:1/m", "hunter2", "bad Redis URL (expected "
	    "redis://HOST[:PORT][/DB], sentinel://HOST:PORT[,HOST:PORT...]/"
	    "MASTER[/DB] or unix:PATH)");
	bad("sentinal://h:1/m", "\001", "bad Redis URL 'sentinal://h:1/m' "
	    "(expected redis://HOST[:PORT][/DB], sentinel://HOST:PORT"
	    "[,HOST:PORT...]/MASTER[/DB] or unix:PATH)");
	/* too long: nothing of it is echoed */
	i = snprintf(url, sizeof url, "sentinel://:%s@h:1/", pw);
	memset(url + i, 'm', sizeof url - i - 1);
	url[sizeof url - 1] = '\0';
	bad(url, "s3cr", "Redis URL too long");
	/* the masked form longer than the URL kept */
	snprintf(url, sizeof url, "sentinel://p@%0250d:1,%0241d:1/m", 0, 0);
	is_int(strlen(url), 511, "a URL of 511 bytes");
	bad(url, "\001", "Redis URL too long");

	/* no sentinel answers: the blocking connection names the URL, masked,
	 * and the last sentinel's error; port 1 of the loopback refuses */
	snprintf(url, sizeof url, "sentinel://:%s@127.0.0.1:1,127.0.0.1:1/m",
	    pw);
	if (redis_target_parse(&t, url, err, sizeof err) < 0)
		bail_out("%s", err);
	c = redis_connect_sync(&t, 1000, err, sizeof err);
	ok(c == NULL, "no sentinel on 127.0.0.1:1");
	is_str(err, "cannot reach Redis at sentinel://***@127.0.0.1:1,"
	    "127.0.0.1:1/m: sentinel 127.0.0.1:1: Connection refused",
	    "  the error names the masked URL and the sentinel");
	ok(strstr(err, "s3cr") == NULL && strstr(err, "pw") == NULL,
	    "  and holds no part of the password");
	redisFree(c);
	return done_testing();
}
