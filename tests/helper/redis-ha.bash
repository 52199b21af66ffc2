# redis-ha.bash: a Redis primary, a replica of it and sentinels watching
# them, on free loopback ports, for tests of programs that follow the
# primary through Sentinel. Load tests/helper/common first; every process
# is tracked (stop_tracked stops it).
#
# After redis_ha_up:
#   REDIS_HA_MASTER         the master's name in Sentinel (labpulse)
#   REDIS_HA_PRIMARY_PORT   the primary's port, REDIS_HA_REPLICA_PORT the
#                           replica's (swapped by redis_ha_failover)
#   REDIS_HA_SENTINEL_PORTS the sentinels' ports, space-separated
#   REDIS_HA_URL            sentinel://127.0.0.1:PORT,.../labpulse
#   REDIS_HA_DIR            their configuration and logs (*.log)

REDIS_HA_MASTER=labpulse

# redis_ha_port: a free port none of the cluster's took yet.
redis_ha_port() {
	local p
	for _ in $(seq 20); do
		p=$(free_port) || return 1
		case " ${REDIS_HA_TAKEN:-} " in *" $p "*) continue ;; esac
		REDIS_HA_TAKEN="${REDIS_HA_TAKEN:-} $p"
		echo "$p"
		return 0
	done
	return 1
}

# redis_ha_wait SECONDS 'SHELL TEXT': until the text succeeds, evaluated
# anew each time, for at most SECONDS; fails with the text on stderr.
redis_ha_wait() {
	local end=$((SECONDS + $1))
	while [ "$SECONDS" -lt "$end" ]; do
		eval "$2" && return 0
		sleep 0.1
	done
	eval "$2" && return 0
	echo "redis_ha_wait: not within $1 s: $2" >&2
	return 1
}

# rha_cli PORT ARGS...: one command to the server or sentinel on PORT.
rha_cli() {
	local p=$1; shift
	timeout 5 redis-cli -h 127.0.0.1 -p "$p" --raw "$@"
}

# redis_ha_role PORT: master, slave or sentinel.
redis_ha_role() {
	rha_cli "$1" ROLE 2>/dev/null | head -n 1
}

# redis_ha_primary_of PORT: the primary's port the sentinel on PORT names.
redis_ha_primary_of() {
	rha_cli "$1" SENTINEL get-master-addr-by-name "$REDIS_HA_MASTER" 2>/dev/null |
		sed -n 2p
}

# redis_ha_server NAME PORT [ARGS...]: a redis-server of the cluster.
redis_ha_server() {
	local name=$1 port=$2; shift 2
	redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
		--dir "$REDIS_HA_DIR" --dbfilename "$name.rdb" \
		--repl-diskless-sync yes --repl-diskless-sync-delay 0 "$@" \
		</dev/null >"$REDIS_HA_DIR/$name.log" 2>&1 3>&- &
	track $!
	redis_ha_wait 15 "[ \"\$(rha_cli $port PING 2>/dev/null)\" = PONG ]" || {
		cat "$REDIS_HA_DIR/$name.log" >&2
		return 1
	}
}

# redis_ha_up [N]: a primary, its replica and N sentinels (3 by default),
# once the replica is in sync and fed, and every sentinel sees both.
redis_ha_up() {
	local n=${1:-3} i p conf urls=
	REDIS_HA_DIR=$(mktemp -d "${BATS_FILE_TMPDIR:-${TMPDIR:-/tmp}}/redis-ha.XXXXXX")
	REDIS_HA_PRIMARY_PORT=$(redis_ha_port) || return 1
	REDIS_HA_REPLICA_PORT=$(redis_ha_port) || return 1
	redis_ha_server primary "$REDIS_HA_PRIMARY_PORT" || return 1
	redis_ha_server replica "$REDIS_HA_REPLICA_PORT" \
		--replicaof 127.0.0.1 "$REDIS_HA_PRIMARY_PORT" || return 1
	redis_ha_wait 30 "rha_cli $REDIS_HA_REPLICA_PORT INFO replication | grep -q '^master_link_status:up' &&
		replicas_acked $REDIS_HA_PRIMARY_PORT 1" || return 1
	REDIS_HA_SENTINEL_PORTS=
	for i in $(seq "$n"); do
		p=$(redis_ha_port) || return 1
		conf=$REDIS_HA_DIR/sentinel-$i.conf
		# quorum 2 of 3: a failover forced with SENTINEL FAILOVER
		# needs no vote; timings as short as the cluster's
		cat >"$conf" <<-CONF
			port $p
			bind 127.0.0.1
			dir $REDIS_HA_DIR
			sentinel monitor $REDIS_HA_MASTER 127.0.0.1 $REDIS_HA_PRIMARY_PORT $(((n + 1) / 2))
			sentinel down-after-milliseconds $REDIS_HA_MASTER 1000
			sentinel failover-timeout $REDIS_HA_MASTER 5000
			sentinel parallel-syncs $REDIS_HA_MASTER 1
		CONF
		redis-sentinel "$conf" </dev/null >"$REDIS_HA_DIR/sentinel-$i.log" 2>&1 3>&- &
		track $!
		REDIS_HA_SENTINEL_PORTS+="${REDIS_HA_SENTINEL_PORTS:+ }$p"
		urls+="${urls:+,}127.0.0.1:$p"
	done
	REDIS_HA_URL="sentinel://$urls/$REDIS_HA_MASTER"
	for p in $REDIS_HA_SENTINEL_PORTS; do
		redis_ha_wait 30 "[ \"\$(redis_ha_primary_of $p)\" = $REDIS_HA_PRIMARY_PORT ] &&
			rha_cli $p SENTINEL replicas $REDIS_HA_MASTER | grep -qx $REDIS_HA_REPLICA_PORT" || {
			cat "$REDIS_HA_DIR"/sentinel-*.log >&2
			return 1
		}
	done
	export REDIS_HA_MASTER REDIS_HA_PRIMARY_PORT REDIS_HA_REPLICA_PORT \
		REDIS_HA_SENTINEL_PORTS REDIS_HA_URL REDIS_HA_DIR REDIS_HA_TAKEN
}

# redis_ha_failover: SENTINEL FAILOVER, then wait (at most 60 s) until
# every sentinel names the replica as primary, it says master, and the
# old primary is its replica again, in sync and fed (Sentinel converts it some
# seconds after the switch, and then closes its clients' connections).
# Swaps REDIS_HA_PRIMARY_PORT and REDIS_HA_REPLICA_PORT.
redis_ha_failover() {
	local old=$REDIS_HA_PRIMARY_PORT new=$REDIS_HA_REPLICA_PORT p first
	first=${REDIS_HA_SENTINEL_PORTS%% *}
	# a sentinel that has not yet judged the replica fit answers NOGOOD:
	# asked again until it takes it
	redis_ha_wait 30 "[ \"\$(rha_cli $first SENTINEL FAILOVER $REDIS_HA_MASTER 2>&1)\" = OK ]" ||
		return 1
	for p in $REDIS_HA_SENTINEL_PORTS; do
		redis_ha_wait 60 "[ \"\$(redis_ha_primary_of $p)\" = $new ]" || return 1
	done
	redis_ha_wait 60 "[ \"\$(redis_ha_role $new)\" = master ] &&
		[ \"\$(redis_ha_role $old)\" = slave ] &&
		rha_cli $old INFO replication | grep -q '^master_link_status:up' &&
		replicas_acked $new 1" || {
		cat "$REDIS_HA_DIR"/sentinel-*.log >&2
		return 1
	}
	REDIS_HA_PRIMARY_PORT=$new
	REDIS_HA_REPLICA_PORT=$old
	export REDIS_HA_PRIMARY_PORT REDIS_HA_REPLICA_PORT
}
