#!/usr/bin/env bats
# smoke: the cluster of cluster.sh comes up, takes an event through HAProxy
# into PostgreSQL, survives an app host torn down, a Redis primary and a
# PostgreSQL primary killed (the engines promote the other node), and goes
# down leaving no namespace and no process. The tests run in order on one
# cluster. Needs root and working network namespaces; skipped otherwise.

setup_file() {
	load ../helper/common
	[ "$(id -u)" -eq 0 ] || skip "the cluster needs root (network namespaces)"
	ip netns add lpc-smoke-probe 2>/dev/null && ip netns del lpc-smoke-probe ||
		skip "ip netns does not work here"
	export CLUSTER=$TOP/tests/cluster/cluster.sh
	"$CLUSTER" up >"$BATS_FILE_TMPDIR/up.log" 2>&1 </dev/null 3>&- || {
		cat "$BATS_FILE_TMPDIR/up.log"
		"$CLUSTER" down >/dev/null 2>&1 3>&- || true
		return 1
	}
}

teardown_file() {
	[ "$(id -u)" -ne 0 ] || "$BATS_TEST_DIRNAME/cluster.sh" down >/dev/null 2>&1 3>&- || true
}

setup() {
	load ../helper/common
	CLUSTER=$TOP/tests/cluster/cluster.sh
}

LB=10.77.15.40
SENTINEL=10.77.15.30

in_client() { "$CLUSTER" exec lpc-client "$@"; }

# post ID: POST one event through HAProxy; prints the HTTP status.
post_lb() {
	in_client curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST \
		-H 'Content-Type: application/json' --data "$(ext_event "$1")" \
		"http://$LB:8000/api/v1/events"
}

# rows_on IP ID: the events of that id in the PostgreSQL at IP.
rows_on() {
	in_client psql "host=$1 port=5432 dbname=labpulse user=labpulse connect_timeout=2" \
		-XAtc "SELECT count(*) FROM events WHERE event_id = '$2'"
}

# wait_secs N CMD...: poll CMD every 100 ms for at most N seconds.
wait_secs() {
	local n=$1
	shift
	for _ in $(seq $((n * 10))); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}
accepted() { [ "$(post_lb "$1")" = 202 ]; }
stored_on() { [ "$(rows_on "$1" "$2")" = 1 ]; }

# The state the monitor has for NODE, reported/assigned.
pg_state() {
	in_client psql "host=10.77.15.30 port=5431 dbname=pg_auto_failover user=postgres connect_timeout=2" \
		-XAtc "SELECT reportedstate || '/' || goalstate FROM pgautofailover.node WHERE nodename = '$1'"
}
pg_promoted() { case $(pg_state pg2) in primary/primary|wait_primary/wait_primary) return 0 ;; esac; return 1; }
redis_primary() {
	in_client redis-cli -h "$SENTINEL" -p 26379 sentinel get-master-addr-by-name labpulse
}
redis_promoted() { case $(redis_primary | head -n 1) in 10.77.15.22|10.77.15.30) ;; *) false ;; esac; }
backends_up() {	# HAProxy's stats: both ingest servers UP
	local csv
	csv=$(in_client curl -fsS --max-time 2 "http://$LB:8404/;csv") || return 1
	[ "$(grep -c '^ingest,app[12],.*,UP,' <<<"$csv")" = 2 ]
}

@test "up: every host, Redis with its replicas, PostgreSQL primary and secondary" {
	run "$CLUSTER" status
	assert_success
	assert_line --regexp '^lpc-app1 +10\.77\.15\.11 +up$'
	assert_line --regexp '^ +pg2 +running '
	assert_line --regexp '^ +redis2 +running pid [0-9]+ +slave$'
	assert_line --regexp '^ +redis3 +running pid [0-9]+ +slave$'
	assert_line 'Redis primary per Sentinel: 10.77.15.21'
	assert_line --regexp 'pg1 \| .* primary \| +primary$'
	assert_line --regexp 'pg2 \| .* secondary \| +secondary$'
}

@test "an event POSTed through HAProxy is 202 and reaches PostgreSQL on pg1 and pg2" {
	run post_lb smoke-1
	assert_output 202
	wait_secs 20 stored_on 10.77.15.31 smoke-1
	wait_secs 20 stored_on 10.77.15.32 smoke-1
}

@test "with lpc-app1 torn down, POSTs go to app2; restored, both serve again" {
	run "$CLUSTER" kill-host lpc-app1
	assert_success
	run ip netns pids lpc-app1
	assert_failure
	wait_secs 20 accepted smoke-2
	wait_secs 20 stored_on 10.77.15.31 smoke-2
	run "$CLUSTER" restore-host lpc-app1
	assert_success
	wait_secs 20 backends_up
}

@test "pg1 killed: pg_auto_failover promotes pg2; pg1 comes back as its secondary" {
	run "$CLUSTER" kill pg1
	assert_success
	wait_secs 60 pg_promoted
	run "$CLUSTER" start pg1
	assert_success
	run pg_state pg1
	assert_output secondary/secondary
}

@test "after the PostgreSQL failover, batch-commit stores new events on pg2" {
	wait_secs 30 accepted smoke-3
	wait_secs 60 stored_on 10.77.15.32 smoke-3
}

@test "redis1 killed: Sentinel promotes a replica; redis1 comes back as its replica" {
	local primary
	run "$CLUSTER" kill redis1
	assert_success
	wait_secs 30 redis_promoted
	primary=$(redis_primary | head -n 1)
	run "$CLUSTER" start redis1
	assert_success
	run "$CLUSTER" exec lpc-redis1 redis-cli -h 10.77.15.21 role
	assert_line --index 0 slave
	assert_line --index 1 "$primary"
}

# nothing_left: no lpc- namespace, no process in another network
# namespace, none started from the cluster's files.
nothing_left() {
	run ip netns list
	refute_output --partial lpc-
	local p self left=
	self=$(readlink /proc/self/ns/net)
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/ns/net" 2>/dev/null)" = "$self" ] && continue
		grep -qs '^State:.*Z' "$p/status" && continue
		[ -e "$p/ns/net" ] && left="$left ${p#/proc/}"
	done
	assert_equal "$left" ""
	run pgrep -f "$TOP/tests/cluster/run"
	assert_failure
}

@test "down leaves no lpc- namespace and no process of the cluster" {
	run "$CLUSTER" down
	assert_success
	nothing_left
}

@test "up interrupted (TERM) half-way tears down what it built" {
	"$CLUSTER" down >/dev/null 2>&1 3>&-
	"$CLUSTER" up >"$BATS_TEST_TMPDIR/up.log" 2>&1 </dev/null 3>&- &
	local up=$!
	# the Redis hosts are built before PostgreSQL's: interrupt while the
	# engines start
	wait_until '[ -s "$TOP/tests/cluster/run/pids/redis1.pid" ]' ||
		{ kill -TERM "$up"; wait "$up" || true; false; }
	kill -TERM "$up"
	local rc=0
	wait "$up" || rc=$?
	assert_equal "$rc" 143
	nothing_left || { cat "$BATS_TEST_TMPDIR/up.log"; false; }
}
