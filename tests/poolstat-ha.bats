#!/usr/bin/env bats
# poolstat across hosts: daemons' stats over TCP, PgBouncer's SHOW POOLS,
# every PostgreSQL node of a multi-host conninfo (a primary and a streaming
# standby) with its role and lag, and Redis's primary, replica and
# sentinels; --check's replica_lag and redis_replicas. Real engines, on
# loopback ports of their own.

setup_file() {
	load helper/common
	load helper/pg-ha
	load helper/redis-ha
	pgha_primary pg1
	pgha_standby pg2 pg1
	pgb_start bnc pg1 2
	redis_ha_up 3
	# the nodes listed standby first, as a campus lists them
	export MULTI="host=127.0.0.1,127.0.0.1 port=$pg2_PORT,$pg1_PORT user=labpulse dbname=labpulse target_session_attrs=read-write"
}

teardown_file() {
	load helper/common
	load helper/pg-ha
	stop_tracked
	pgha_down
}

setup() {
	load helper/common
	load helper/pg-ha
	load helper/redis-ha
	[ -x "$TOP/bin/poolstat" ] || { echo "bin/poolstat is not built: make bin/poolstat"; return 1; }
}

teardown() {
	stop_tracked
	# a replay a test paused goes on
	pgha_sql pg2 "select pg_wal_replay_resume()" >/dev/null 2>&1 || true
}

# json_of FILE JQ: JQ of the tick in FILE, compact.
json_of() {
	jq -ec "$2" "$1"
}

# ingest_tcp PORT: an ingest writing to a file, its stats on
# tcp:127.0.0.1:PORT; waits until the port answers.
ingest_tcp() {
	local http
	http=$(free_port)
	ingest --listen "127.0.0.1:$http" --to "file:$BATS_TEST_TMPDIR/events" \
		--stats "tcp:127.0.0.1:$1" </dev/null 2>"$BATS_TEST_TMPDIR/ingest.log" 3>&- &
	track $!
	wait_until "[ -n \"\$(ss -Hltn 'sport = :$1')\" ]"
}

@test "--stats: a tcp: address that is none is a usage error in every daemon" {
	local p bad
	for p in ingest batch-commit route notify; do
		for bad in tcp:127.0.0.1:0 tcp:127.0.0.1:65536 tcp:localhost:9100 \
		    tcp:127.0.0.1 tcp::9100 tcp:[::1:9100 tcp:10.0.0.1:91x; do
			run -64 --separate-stderr "$p" --stats "$bad"
			assert_equal "${stderr_lines[0]}" "labpulse-$p: error: --stats: bad stats address '$bad' (expected PATH, tcp:ADDRESS:PORT or tcp:[IPV6]:PORT, the port 1 to 65535)"
			[[ ${stderr_lines[1]} == "usage: labpulse $p "* ]]
		done
	done
}

@test "poolstat: --socket tcp: and --pgbouncer that are none are usage errors" {
	run -64 --separate-stderr poolstat --socket tcp:127.0.0.1:0
	assert_equal "${stderr_lines[0]}" "labpulse-poolstat: error: --socket: bad stats address 'tcp:127.0.0.1:0' (expected PATH, tcp:ADDRESS:PORT or tcp:[IPV6]:PORT, the port 1 to 65535)"
	run -64 --separate-stderr poolstat --socket tcp:db.example:9100
	assert_equal "${stderr_lines[0]}" "labpulse-poolstat: error: --socket: bad stats address 'tcp:db.example:9100' (expected PATH, tcp:ADDRESS:PORT or tcp:[IPV6]:PORT, the port 1 to 65535)"
	run -64 --separate-stderr poolstat --pgbouncer "host=127.0.0.1 colour=blue"
	assert_equal "${stderr_lines[0]}" 'labpulse-poolstat: error: --pgbouncer: invalid connection option "colour"'
	run -3 --separate-stderr poolstat --check --socket tcp:127.0.0.1:0
	assert_output "POOLSTAT UNKNOWN - --socket: bad stats address 'tcp:127.0.0.1:0' (expected PATH, tcp:ADDRESS:PORT or tcp:[IPV6]:PORT, the port 1 to 65535)"
}

@test "a daemon's stats over TCP: the same JSON, and poolstat shows its host in every form" {
	local s down
	s=$(free_port)
	down=$(free_port)
	ingest_tcp "$s"
	# the port answers with the object, as the Unix socket does
	exec 5<>"/dev/tcp/127.0.0.1/$s"
	cat <&5 >"$BATS_TEST_TMPDIR/raw.json"
	exec 5<&-
	run -0 jq -r '[.name, (.pools.redis | has("sv_max"))] | @tsv' "$BATS_TEST_TMPDIR/raw.json"
	assert_output $'ingest\ttrue'

	run -0 --separate-stderr poolstat --no-postgres --no-redis --sample 0 \
		--socket "tcp:127.0.0.1:$s" --socket "tcp:127.0.0.1:$down"
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/table"
	run -0 awk '$1 == "DAEMONS" { on = 1; print $1, $2, $3; next } on && NF == 0 { exit } on { print $1, $2, $3 }' "$BATS_TEST_TMPDIR/table"
	assert_output "DAEMONS HOST STATE
ingest 127.0.0.1 up
:$down 127.0.0.1 down"
	run -0 grep -c "^ingest@127.0.0.1 *redis " "$BATS_TEST_TMPDIR/table"
	run -0 grep "^:$down " "$BATS_TEST_TMPDIR/table"
	[[ $output == *"down         - cannot connect: Connection refused" ]]

	run -0 poolstat --no-postgres --no-redis --sample 0 --json \
		--socket "tcp:127.0.0.1:$s" --socket "tcp:127.0.0.1:$down"
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/tick.json"
	run -0 json_of "$BATS_TEST_TMPDIR/tick.json" '[.daemons[] | [.name, .host, .socket, .up]]'
	assert_output "[[\"ingest\",\"127.0.0.1\",\"tcp:127.0.0.1:$s\",true],[\":$down\",\"127.0.0.1\",\"tcp:127.0.0.1:$down\",false]]"

	run -0 poolstat --no-postgres --no-redis --sample 0 --prometheus \
		--socket "tcp:127.0.0.1:$s" --socket "tcp:127.0.0.1:$down"
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/prom"
	run -0 grep '^labpulse_daemon_up{' "$BATS_TEST_TMPDIR/prom"
	assert_output "labpulse_daemon_up{daemon=\"ingest\",host=\"127.0.0.1\"} 1
labpulse_daemon_up{daemon=\":$down\",host=\"127.0.0.1\"} 0"
	run -0 grep -c '^labpulse_pool_max_connections{daemon="ingest",pool="redis",host="127.0.0.1"} ' "$BATS_TEST_TMPDIR/prom"

	run -2 poolstat --no-postgres --no-redis --sample 0 --check \
		--socket "tcp:127.0.0.1:$s" --socket "tcp:127.0.0.1:$down"
	[[ $output == "POOLSTAT CRITICAL - daemon 127.0.0.1:$down down | "* ]]
}

@test "--pgbouncer: SHOW POOLS beside labpulse's pools; a pool full is CRITICAL and names it" {
	local i
	# PgBouncer has a pool once a client used it
	run -0 psql -XtAq -d "$bnc_DB" -c "select 1"
	run -0 poolstat --no-redis --db "$pg1_DB" --pgbouncer "$bnc_ADMIN" --sample 0 --json
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/tick.json"
	run -0 json_of "$BATS_TEST_TMPDIR/tick.json" '[.pgbouncers[] | .name, .up, (.pools[] | [.database, .user, .pool_mode, .pool_size, .cl_waiting])]'
	assert_output "[\"127.0.0.1:$bnc_PORT\",true,[\"labpulse\",\"labpulse\",\"transaction\",2,0]]"

	# three clients in a transaction each, two server connections
	for i in 1 2 3; do
		psql -XtAq -d "$bnc_DB" -c "select pg_sleep(120)" >/dev/null 2>&1 3>&- &
		track $!
	done
	wait_until "poolstat --no-redis --db '$pg1_DB' --pgbouncer '$bnc_ADMIN' --sample 0 --json |
		jq -e '.pgbouncers[0].pools[0] | .sv_active == 2 and .cl_waiting == 1' >/dev/null"
	run -0 poolstat --no-redis --db "$pg1_DB" --pgbouncer "$bnc_ADMIN" --sample 0
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/table"
	run -0 awk '$1 == "PGBOUNCER" { on = 1 } on && NF == 0 { exit } on' "$BATS_TEST_TMPDIR/table"
	assert_output "PGBOUNCER       POOL              SIZE SV_ACTIVE SV_IDLE CL_WAITING MAXWAIT_MS  UTIL%
127.0.0.1:$bnc_PORT labpulse/labpulse    2         2       0          1 $(awk '$2 == "labpulse/labpulse" { printf "%10s", $7 }' "$BATS_TEST_TMPDIR/table")  100.0"

	run -0 poolstat --no-redis --db "$pg1_DB" --pgbouncer "$bnc_ADMIN" --sample 0 --lines
	# PgBouncer's clients waiting are among all those waiting
	assert_equal "$(awk '{ print $4 }' <<<"$output")" "clwait
1"

	run -0 poolstat --no-redis --db "$pg1_DB" --pgbouncer "$bnc_ADMIN" --sample 0 --prometheus
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/prom"
	run -0 grep '^labpulse_pgbouncer_clients' "$BATS_TEST_TMPDIR/prom"
	assert_output "labpulse_pgbouncer_clients{pgbouncer=\"127.0.0.1:$bnc_PORT\",database=\"labpulse\",user=\"labpulse\",state=\"active\"} 2
labpulse_pgbouncer_clients{pgbouncer=\"127.0.0.1:$bnc_PORT\",database=\"labpulse\",user=\"labpulse\",state=\"waiting\"} 1"

	run -2 poolstat --no-redis --db "$pg1_DB" --pgbouncer "$bnc_ADMIN" --sample 0 --check
	[[ $output == "POOLSTAT CRITICAL - no daemon found"*"; pool_util 100% >= 80% (pgbouncer 127.0.0.1:$bnc_PORT labpulse/labpulse) | "* ]]
}

@test "--pgbouncer that does not answer is shown down with the reason, never fatal" {
	local p
	p=$(free_port)
	run -0 poolstat --no-redis --db "$pg1_DB" --pgbouncer "host=127.0.0.1 port=$p dbname=pgbouncer user=labpulse" --sample 0 --json
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/tick.json"
	run -0 json_of "$BATS_TEST_TMPDIR/tick.json" '.pgbouncers[0] | [.name, .up]'
	assert_output "[\"127.0.0.1:$p\",false]"
	run -0 json_of "$BATS_TEST_TMPDIR/tick.json" '.pgbouncers[0].error'
	[[ $output == *"Connection refused"* ]]
}

@test "--db with two hosts: each node, its role, and the standby's lag in bytes and seconds" {
	run -0 poolstat --no-redis --db "$MULTI" --sample 0 --json
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/tick.json"
	run -0 json_of "$BATS_TEST_TMPDIR/tick.json" '[.postgres.nodes[] | [.node, .up, .role]]'
	assert_output "[[\"127.0.0.1:$pg2_PORT\",true,\"standby\"],[\"127.0.0.1:$pg1_PORT\",true,\"primary\"]]"
	run -0 json_of "$BATS_TEST_TMPDIR/tick.json" '.postgres.nodes[0] | [(.lag_bytes | type), (.lag_s | type), .streaming]'
	assert_output '["number","number",true]'
	run -0 json_of "$BATS_TEST_TMPDIR/tick.json" '.postgres.nodes[1] | [.lag_bytes, .lag_s, (.replicas | length), .replicas[0].state]'
	assert_output '[null,null,1,"streaming"]'

	run -0 poolstat --no-redis --db "$MULTI" --sample 0
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/table"
	run -0 awk '$1 == "NODES" || $1 ~ /^127[.]0[.]0[.]1:/ { print $1, $2 }' "$BATS_TEST_TMPDIR/table"
	assert_output "NODES ROLE
127.0.0.1:$pg2_PORT standby
127.0.0.1:$pg1_PORT primary"

	run -0 poolstat --no-redis --db "$MULTI" --sample 0 --prometheus
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/prom"
	run -0 grep '^labpulse_postgres_node_primary' "$BATS_TEST_TMPDIR/prom"
	assert_output "labpulse_postgres_node_primary{node=\"127.0.0.1:$pg2_PORT\"} 0
labpulse_postgres_node_primary{node=\"127.0.0.1:$pg1_PORT\"} 1"
}

@test "a standby whose replay is paused lags: replica_lag crosses its threshold, and is OK once it resumes" {
	# a transaction replayed, so that the standby knows when it was
	pgha_sql pg1 "create table if not exists lagged (x int)" >/dev/null
	wait_until "[ \"\$(pgha_sql pg2 'select pg_last_xact_replay_timestamp() is not null')\" = t ]"
	pgha_sql pg2 "select pg_wal_replay_pause()" >/dev/null
	pgha_sql pg1 "insert into lagged values (1)" >/dev/null
	# the time since the last transaction it replayed, which only grows
	wait_until "poolstat --no-redis --db '$MULTI' --sample 0 --json |
		jq -e '.postgres.nodes[0] | .lag_bytes > 0 and .lag_s >= 0.5' >/dev/null" || {
		poolstat --no-redis --db "$MULTI" --sample 0 --json | jq -c .postgres.nodes
		return 1
	}
	run -2 poolstat --no-redis --db "$MULTI" --sample 0 --check --crit "replica_lag>=500ms"
	[[ $output == "POOLSTAT CRITICAL - no daemon found"*"; replica_lag "*"s >= 0.5s (postgres standby 127.0.0.1:$pg2_PORT) | "* ]]
	[[ $output == *" replica_lag="*"s;5;0.5 "* ]]

	pgha_sql pg2 "select pg_wal_replay_resume()" >/dev/null
	wait_until "poolstat --no-redis --db '$MULTI' --sample 0 --json |
		jq -e '.postgres.nodes[0] | .lag_bytes == 0 and .lag_s == 0' >/dev/null"
}

@test "a node down: shown with the reason; the other still answers" {
	pgha_stop pg2
	run -0 poolstat --no-redis --db "$MULTI" --sample 0 --json
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/tick.json"
	run -0 json_of "$BATS_TEST_TMPDIR/tick.json" '[.postgres.up, (.postgres.nodes[] | [.node, .up, .role])]'
	assert_output "[true,[\"127.0.0.1:$pg2_PORT\",false,null],[\"127.0.0.1:$pg1_PORT\",true,\"primary\"]]"
	run -0 poolstat --no-redis --db "$MULTI" --sample 0
	run -0 grep "^127.0.0.1:$pg2_PORT " <<<"$output"
	[[ $output == *" down     "*"Connection refused"* ]]
	# started again, it streams again
	pgha_start pg2 "$(pgha_field pg2 dir)" "$pg2_PORT"
	pgha_wait_streaming pg2
}

@test "Redis through Sentinel: both nodes with role, offset and lag, and each sentinel's view" {
	local p
	# the sentinels find each other through the primary, in a few seconds
	wait_until "poolstat --no-postgres --redis '$REDIS_HA_URL' --sample 0 --json |
		jq -e '[.redis.sentinels[].other_sentinels] == [2, 2, 2]' >/dev/null"
	run -0 poolstat --no-postgres --redis "$REDIS_HA_URL" --sample 0 --json
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/tick.json"
	run -0 json_of "$BATS_TEST_TMPDIR/tick.json" '[.redis.role, .redis.connected_replicas, (.redis.nodes[] | [.node, .role, (.offset | type), (.lag_bytes | type)])]'
	assert_output "[\"primary\",1,[\"127.0.0.1:$REDIS_HA_PRIMARY_PORT\",\"primary\",\"number\",\"null\"],[\"127.0.0.1:$REDIS_HA_REPLICA_PORT\",\"replica\",\"number\",\"number\"]]"
	run -0 json_of "$BATS_TEST_TMPDIR/tick.json" '[.redis.sentinels[] | [.up, .primary, .quorum, .other_sentinels, .flags, (.replicas | map(.node))]] | unique'
	assert_output "[[true,\"127.0.0.1:$REDIS_HA_PRIMARY_PORT\",2,2,\"master\",[\"127.0.0.1:$REDIS_HA_REPLICA_PORT\"]]]"

	run -0 poolstat --no-postgres --redis "$REDIS_HA_URL" --sample 0
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/table"
	run -0 awk '$1 == "SENTINEL" { on = 1 } on { print $1, $2, $3, $4, $5, $6 }' "$BATS_TEST_TMPDIR/table"
	want="SENTINEL PRIMARY QUORUM REPLICAS SENTINELS FLAGS"
	for p in $REDIS_HA_SENTINEL_PORTS; do
		want+=$'\n'"127.0.0.1:$p 127.0.0.1:$REDIS_HA_PRIMARY_PORT 2 1 3 master"
	done
	assert_output "$want"
	run -0 awk '$1 == "NODES" { on = 1 } $1 == "SENTINEL" { on = 0 } on { print $1, $2 }' "$BATS_TEST_TMPDIR/table"
	assert_output "NODES ROLE
127.0.0.1:$REDIS_HA_PRIMARY_PORT primary
127.0.0.1:$REDIS_HA_REPLICA_PORT replica"

	run -0 poolstat --no-postgres --redis "$REDIS_HA_URL" --sample 0 --prometheus
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/prom"
	run -0 grep -E '^labpulse_(redis_connected_replicas|redis_node_primary)' "$BATS_TEST_TMPDIR/prom"
	assert_output "labpulse_redis_node_primary{node=\"127.0.0.1:$REDIS_HA_PRIMARY_PORT\"} 1
labpulse_redis_node_primary{node=\"127.0.0.1:$REDIS_HA_REPLICA_PORT\"} 0
labpulse_redis_connected_replicas 1"
}

@test "connected to a replica: its own view, role, offset and the link to its primary" {
	run -0 poolstat --no-postgres --redis "redis://127.0.0.1:$REDIS_HA_REPLICA_PORT" --sample 0 --json
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/tick.json"
	run -0 json_of "$BATS_TEST_TMPDIR/tick.json" '[.redis.role, (.redis.nodes[] | [.node, .role, .primary, .link, (.offset | type)])]'
	assert_output "[\"replica\",[\"127.0.0.1:$REDIS_HA_REPLICA_PORT\",\"replica\",\"127.0.0.1:$REDIS_HA_PRIMARY_PORT\",\"up\",\"number\"]]"
}

@test "--check redis_replicas: off by default; with --crit redis_replicas<1, CRITICAL once the replica is gone" {
	run -2 poolstat --no-postgres --redis "$REDIS_HA_URL" --sample 0 --check --crit "redis_replicas<1"
	[[ $output == *" redis_replicas=1;;1" ]]
	[[ $output != *"redis_replicas 1"* ]]
	# the replica leaves: a primary of its own for a while
	rha_cli "$REDIS_HA_REPLICA_PORT" REPLICAOF NO ONE >/dev/null
	wait_until "[ \"\$(rha_cli $REDIS_HA_PRIMARY_PORT INFO replication | tr -d '\r' | sed -n 's/^connected_slaves://p')\" = 0 ]"
	run -2 poolstat --no-postgres --redis "$REDIS_HA_URL" --sample 0 --check --crit "redis_replicas<1"
	[[ $output == *"; redis_replicas 0 < 1 (redis 127.0.0.1:$REDIS_HA_PRIMARY_PORT) | "* ]]
	# by default it is no reason at all
	run -2 poolstat --no-postgres --redis "$REDIS_HA_URL" --sample 0 --check
	[[ $output != *"redis_replicas 0"* ]]
	[[ $output == *" redis_replicas=0;;0" ]]
	# and comes back, in sync, for the tests after
	rha_cli "$REDIS_HA_REPLICA_PORT" REPLICAOF 127.0.0.1 "$REDIS_HA_PRIMARY_PORT" >/dev/null
	wait_until "rha_cli $REDIS_HA_REPLICA_PORT INFO replication | grep -q '^master_link_status:up' &&
		replicas_acked $REDIS_HA_PRIMARY_PORT 1"
}

@test "after a Sentinel failover, poolstat follows the new primary and every sentinel names it" {
	redis_ha_failover
	run -0 poolstat --no-postgres --redis "$REDIS_HA_URL" --sample 0 --json
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/tick.json"
	run -0 json_of "$BATS_TEST_TMPDIR/tick.json" '[.redis.role, .redis.nodes[0].node, ([.redis.sentinels[].primary] | unique)]'
	assert_output "[\"primary\",\"127.0.0.1:$REDIS_HA_PRIMARY_PORT\",[\"127.0.0.1:$REDIS_HA_PRIMARY_PORT\"]]"
}
