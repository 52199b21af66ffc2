/* test_group.c: trimming a stream to what its consumer groups still need
 * (group_trim_key), against a Redis of its own on a Unix socket in a
 * temporary folder; skipped when redis-server is not installed. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "group.h"
#include "tap.h"

static char dir[] = "/tmp/lp-test-group.XXXXXX";
static char sock[128];
static pid_t redis_pid = -1;
static redisContext *c;

static void
stop_redis(void)
{
	char cmd[256];

	if (c)
		redisFree(c);
	if (redis_pid > 0) {
		kill(redis_pid, SIGKILL);
		waitpid(redis_pid, NULL, 0);
	}
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
}

static int
start_redis(void)
{
	struct timespec ts = { 0, 20 * 1000000L };
	int i, devnull;

	if (mkdtemp(dir) == NULL)
		bail_out("mkdtemp: %s", strerror(errno));
	snprintf(sock, sizeof sock, "%s/r.sock", dir);
	redis_pid = fork();
	if (redis_pid < 0)
		bail_out("fork: %s", strerror(errno));
	if (redis_pid == 0) {
		devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0) {
			dup2(devnull, 1);
			dup2(devnull, 2);
		}
		execlp("redis-server", "redis-server", "--port", "0",
		    "--unixsocket", sock, "--dir", dir, "--save", "",
		    "--appendonly", "no", (char *)NULL);
		_exit(127);
	}
	atexit(stop_redis);
	for (i = 0; i < 250; i++) {
		c = redisConnectUnix(sock);
		if (c && !c->err)
			return 0;
		redisFree(c);
		c = NULL;
		if (waitpid(redis_pid, NULL, WNOHANG) == redis_pid) {
			redis_pid = -1;
			return -1;	/* not installed, or did not start */
		}
		nanosleep(&ts, NULL);
	}
	return -1;
}

/* A command whose reply is not needed. */
static void
run(const char *fmt, ...)
{
	redisReply *r;
	va_list ap;

	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	if (r == NULL)
		bail_out("Redis lost: %s", c->errstr);
	if (r->type == REDIS_REPLY_ERROR)
		bail_out("%s: %s", fmt, r->str);
	freeReplyObject(r);
}

static long long
xlen(const char *key)
{
	redisReply *r = redisCommand(c, "XLEN %s", key);
	long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;

	freeReplyObject(r);
	return n;
}

/* The first id of the stream, in buf. */
static const char *
first(const char *key, char *buf, size_t len)
{
	redisReply *r = redisCommand(c, "XRANGE %s - + COUNT 1", key);

	snprintf(buf, len, "%s", r && r->type == REDIS_REPLY_ARRAY &&
	    r->elements == 1 ? r->element[0]->element[0]->str : "(none)");
	freeReplyObject(r);
	return buf;
}

static void
trims(const char *key, long want, const char *what)
{
	char err[512] = "";
	long n = group_trim_key(c, key, err, sizeof err);

	if (!is_int(n, want, "%s: %ld removed", what, want))
		diag("    %s", err);
}

int
main(void)
{
	char err[512], buf[64];
	struct group g;
	long n;

	if (start_redis() < 0) {
		skip(1, "no redis-server to run");
		return done_testing();
	}

	trims("lp:none", 0, "a stream that does not exist");
	run("SET lp:str x");
	n = group_trim_key(c, "lp:str", err, sizeof err);
	is_int(n, -1, "a key that is not a stream: an error");
	ok(strncmp(err, "XINFO GROUPS lp:str: WRONGTYPE", 30) == 0,
	    "  naming the command and the key");

	/* entries 1-1 .. 1-10 */
	for (n = 1; n <= 10; n++)
		run("XADD lp:s 1-%ld event e%ld", n, n);
	trims("lp:s", 0, "a stream with no group is left whole");
	is_int(xlen("lp:s"), 10, "  10 entries");

	run("XGROUP CREATE lp:s g1 0");
	trims("lp:s", 0, "a group that read nothing holds all");
	run("XREADGROUP GROUP g1 a COUNT 3 STREAMS lp:s >");
	trims("lp:s", 0, "three read, none acknowledged: all stay");
	run("XACK lp:s g1 1-1 1-3");
	trims("lp:s", 1, "1-1 and 1-3 acknowledged, 1-2 pending");
	is_str(first("lp:s", buf, sizeof buf), "1-2", "  the oldest pending is first");
	/* a pending entry claimed by another consumer is still pending */
	run("XAUTOCLAIM lp:s g1 b 0 0-0");
	trims("lp:s", 0, "claimed by another consumer: it stays");
	run("XACK lp:s g1 1-2");
	trims("lp:s", 2, "acknowledged: up to the group's position");
	is_str(first("lp:s", buf, sizeof buf), "1-4", "  the first entry not read is first");

	/* a second group, with a name that needs binary-safe quoting, lags */
	run("XGROUP CREATE lp:s %s 1-5", "a group");
	run("XREADGROUP GROUP g1 a COUNT 100 STREAMS lp:s >");
	run("XACK lp:s g1 1-4 1-5 1-6 1-7 1-8 1-9 1-10");
	trims("lp:s", 2, "a lagging group holds what it has not read");
	is_str(first("lp:s", buf, sizeof buf), "1-6", "  after its position");
	trims("lp:s", 0, "trimming again changes nothing");
	run("XGROUP SETID lp:s %s $", "a group");
	trims("lp:s", 5, "every group at the end: nothing left");
	is_int(xlen("lp:s"), 0, "  an empty stream");
	run("XADD lp:s 2-1 event new");
	trims("lp:s", 0, "an entry added after: it stays");

	/* the id after MS-(2^64-1) is (MS+1)-0 */
	run("XADD lp:big 5-18446744073709551615 event a");
	run("XADD lp:big 6-0 event b");
	run("XGROUP CREATE lp:big g 5-18446744073709551615");
	trims("lp:big", 1, "the sequence at its maximum");
	is_str(first("lp:big", buf, sizeof buf), "6-0", "  6-0 stays");

	/* the pacing of group_trim */
	memset(&g, 0, sizeof g);
	ok(!group_trim_due(&g), "not due without a connection");
	g.c = c;
	ok(!group_trim_due(&g), "not due with no interval");
	g.trim_interval_ms = 60000;
	ok(group_trim_due(&g), "due the first time");
	ok(!group_trim_due(&g), "  and not again within the interval");
	return done_testing();
}
