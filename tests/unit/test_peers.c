/* test_peers.c: connections per address (caps, release, many addresses,
 * memory given back), address text, and token buckets against a fake
 * clock: refill arithmetic, waits, and the max_keys bound. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "peers.h"
#include "tap.h"

static void
test_caps(void)
{
	struct peers *p = peers_new(2);

	if (p == NULL)
		bail_out("peers_new: out of memory");
	is_int(peers_count(p, "192.0.2.1"), 0, "caps: unknown address holds 0");
	is_int(peers_addresses(p), 0, "caps: no addresses at first");
	is_int(peers_add(p, "192.0.2.1"), 0, "caps: first connection");
	is_int(peers_add(p, "192.0.2.1"), 0, "caps: second connection");
	is_int(peers_add(p, "192.0.2.1"), -1, "caps: third refused at cap 2");
	is_int(peers_count(p, "192.0.2.1"), 2, "caps: refusal counts nothing");
	is_int(peers_add(p, "192.0.2.2"), 0, "caps: another address is apart");
	is_int(peers_addresses(p), 2, "caps: two addresses");
	peers_del(p, "192.0.2.1");
	is_int(peers_count(p, "192.0.2.1"), 1, "caps: del counts down");
	is_int(peers_add(p, "192.0.2.1"), 0, "caps: room again after del");
	peers_del(p, "192.0.2.1");
	peers_del(p, "192.0.2.1");
	is_int(peers_count(p, "192.0.2.1"), 0, "caps: down to 0");
	is_int(peers_addresses(p), 1, "caps: an address at 0 is forgotten");
	peers_del(p, "192.0.2.1");
	peers_del(p, "198.51.100.9");
	is_int(peers_addresses(p), 1, "caps: del of an unknown address is a "
	    "no-op");
	peers_del(p, "192.0.2.2");
	is_int(peers_addresses(p), 0, "caps: all gone");
	peers_free(p);
	peers_free(NULL);

	p = peers_new(0);
	if (p == NULL)
		bail_out("peers_new: out of memory");
	{
		int i, fails = 0;

		for (i = 0; i < 1000; i++)
			fails += peers_add(p, "unix") < 0;
		is_int(fails, 0, "no cap: 1000 connections from one address");
		is_int(peers_count(p, "unix"), 1000, "no cap: counted");
	}
	peers_free(p);
	ok(peers_new(-1) == NULL, "caps: a negative cap is refused");
}

static void
test_many(void)
{
	struct peers *p = peers_new(3);
	char a[64];
	int i, bad = 0;

	if (p == NULL)
		bail_out("peers_new: out of memory");
	for (i = 0; i < 50000; i++) {
		snprintf(a, sizeof a, "2001:db8::%x:%x", i >> 16, i & 0xffff);
		bad += peers_add(p, a) < 0;
		bad += peers_add(p, a) < 0;
	}
	is_int(bad, 0, "many: 50000 addresses, two connections each");
	is_int(peers_addresses(p), 50000, "many: 50000 addresses");
	snprintf(a, sizeof a, "2001:db8::%x:%x", 0, 777);
	is_int(peers_count(p, a), 2, "many: one of them holds 2");
	is_int(peers_add(p, a), 0, "many: its third");
	is_int(peers_add(p, a), -1, "many: its fourth refused");
	peers_del(p, a);
	for (i = 0; i < 50000; i++) {
		snprintf(a, sizeof a, "2001:db8::%x:%x", i >> 16, i & 0xffff);
		peers_del(p, a);
		peers_del(p, a);
	}
	is_int(peers_addresses(p), 0, "many: all released, none kept");
	is_int(peers_add(p, "192.0.2.1"), 0, "many: the table still works");
	is_int(peers_count(p, "192.0.2.1"), 1, "many: and counts");
	peers_free(p);
}

static void
test_addr_text(void)
{
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;
	struct sockaddr_un su;
	char buf[64];

	memset(&s4, 0, sizeof s4);
	s4.sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.7", &s4.sin_addr);
	s4.sin_port = htons(4242);
	peers_addr_text((struct sockaddr *)&s4, buf);
	is_str(buf, "192.0.2.7", "addr text: IPv4, no port");

	memset(&s6, 0, sizeof s6);
	s6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::1", &s6.sin6_addr);
	peers_addr_text((struct sockaddr *)&s6, buf);
	is_str(buf, "2001:db8::1", "addr text: IPv6");

	inet_pton(AF_INET6, "::ffff:198.51.100.3", &s6.sin6_addr);
	peers_addr_text((struct sockaddr *)&s6, buf);
	is_str(buf, "198.51.100.3", "addr text: IPv4-mapped IPv6 as IPv4");

	inet_pton(AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	    &s6.sin6_addr);
	peers_addr_text((struct sockaddr *)&s6, buf);
	is_str(buf, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	    "addr text: the longest IPv6");

	memset(&su, 0, sizeof su);
	su.sun_family = AF_UNIX;
	strcpy(su.sun_path, "/run/labpulse/ingest.sock");
	peers_addr_text((struct sockaddr *)&su, buf);
	is_str(buf, "unix", "addr text: Unix socket");

	peers_addr_text(NULL, buf);
	is_str(buf, "unknown", "addr text: no address");
}

static void
test_refill(void)
{
	/* 2 tokens a second, burst 3 */
	struct buckets *b = buckets_new(2, 3, 100);
	int64_t t = 1000000000;

	if (b == NULL)
		bail_out("buckets_new: out of memory");
	is_int(buckets_take(b, "k", t), 0, "refill: a new key starts full (1)");
	is_int(buckets_take(b, "k", t), 0, "refill: burst (2)");
	is_int(buckets_take(b, "k", t), 0, "refill: burst (3)");
	is_int(buckets_take(b, "k", t), 500000, "refill: empty, wait 0.5 s");
	is_int(buckets_take(b, "k", t + 100000), 400000,
	    "refill: 0.1 s later, wait 0.4 s");
	is_int(buckets_take(b, "k", t + 499999), 1,
	    "refill: 1 us short, wait 1 us");
	is_int(buckets_take(b, "k", t + 500000), 0, "refill: a token at 0.5 s");
	is_int(buckets_take(b, "k", t + 500000), 500000,
	    "refill: and only one");
	/* a long pause refills to burst, not beyond */
	is_int(buckets_take(b, "k", t + 100000000), 0, "refill: after 100 s (1)");
	is_int(buckets_take(b, "k", t + 100000000), 0, "refill: (2)");
	is_int(buckets_take(b, "k", t + 100000000), 0, "refill: (3)");
	is_int(buckets_take(b, "k", t + 100000000), 500000,
	    "refill: capped at burst 3");
	/* a clock that steps back adds nothing and breaks nothing */
	is_int(buckets_take(b, "k", t), 500000,
	    "refill: a clock stepping back gives no tokens");
	is_int(buckets_take(b, "other", t), 0, "refill: keys are apart");
	is_int(buckets_keys(b), 2, "refill: two keys");
	buckets_free(b);
	buckets_free(NULL);

	/* a slow rate: 1 token a minute */
	b = buckets_new(1.0 / 60, 1, 10);
	if (b == NULL)
		bail_out("buckets_new: out of memory");
	is_int(buckets_take(b, "slow", 0), 0, "slow: the first");
	is_int(buckets_take(b, "slow", 0), 60000000, "slow: wait 60 s");
	is_int(buckets_take(b, "slow", 30000000), 30000000, "slow: wait 30 s");
	buckets_free(b);

	ok(buckets_new(0, 1, 1) == NULL, "buckets: rate 0 refused");
	ok(buckets_new(1, 0.5, 1) == NULL, "buckets: burst below 1 refused");
	ok(buckets_new(1, 1, 0) == NULL, "buckets: max_keys 0 refused");
}

static void
test_max_keys(void)
{
	/* 10 a second, burst 2: an emptied bucket refills in 0.2 s */
	struct buckets *b = buckets_new(10, 2, 2);
	int64_t t = 5000000;

	if (b == NULL)
		bail_out("buckets_new: out of memory");
	is_int(buckets_take(b, "a", t), 0, "max_keys: a");
	is_int(buckets_take(b, "b", t + 50000), 0, "max_keys: b");
	is_int(buckets_keys(b), 2, "max_keys: two keys");
	/* a took one at t: full again at t + 0.1 s */
	is_int(buckets_take(b, "c", t + 60000), 40000,
	    "max_keys: c waits until a has refilled");
	is_int(buckets_keys(b), 2, "max_keys: the table did not grow");
	is_int(buckets_take(b, "c", t + 100000), 0,
	    "max_keys: c takes the place of the full a");
	is_int(buckets_keys(b), 2, "max_keys: still two keys");
	is_int(buckets_take(b, "c", t + 100000), 0, "max_keys: c again");
	is_int(buckets_take(b, "c", t + 100000), 100000, "max_keys: c is empty");
	/* b was least recently used and is full at t + 0.15 s */
	is_int(buckets_take(b, "a", t + 100000), 50000,
	    "max_keys: a, forgotten, now waits for b");
	is_int(buckets_take(b, "a", t + 150000), 0,
	    "max_keys: a comes back full, b forgotten");
	is_int(buckets_take(b, "a", t + 150000), 0, "max_keys: a's burst");
	is_int(buckets_take(b, "a", t + 150000), 100000, "max_keys: a empty");

	/* expire forgets the refilled buckets only */
	buckets_expire(b, t + 150000);
	is_int(buckets_keys(b), 2, "expire: none refilled yet");
	buckets_expire(b, t + 310000);
	is_int(buckets_keys(b), 1, "expire: c refilled and forgotten");
	buckets_expire(b, t + 350000);
	is_int(buckets_keys(b), 0, "expire: a too");
	is_int(buckets_take(b, "a", t + 350000), 0, "expire: a starts full");
	buckets_free(b);
}

static void
test_many_keys(void)
{
	struct buckets *b = buckets_new(1, 1, 1000);
	char k[32];
	int i, waits = 0;

	if (b == NULL)
		bail_out("buckets_new: out of memory");
	for (i = 0; i < 5000; i++) {
		snprintf(k, sizeof k, "tok-%d", i);
		waits += buckets_take(b, k, 0) != 0;
	}
	is_int(buckets_keys(b), 1000, "many keys: bounded at max_keys");
	is_int(waits, 4000, "many keys: the rest wait");
	for (i = 0; i < 5000; i++) {
		snprintf(k, sizeof k, "tok-%d", i);
		waits += buckets_take(b, k, 2000000) != 0;
	}
	is_int(buckets_keys(b), 1000, "many keys: still bounded later");
	buckets_expire(b, 10000000);
	is_int(buckets_keys(b), 0, "many keys: expire forgets them all");
	buckets_free(b);
}

int
main(void)
{
	test_caps();
	test_many();
	test_addr_text();
	test_refill();
	test_max_keys();
	test_many_keys();
	return done_testing();
}
