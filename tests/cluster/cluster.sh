#!/bin/bash
# cluster.sh: labpulse on nine hosts made of network namespaces (lpc-*),
# around the engines as Debian ships them: Redis with Sentinel, PostgreSQL
# under pg_auto_failover, PgBouncer and HAProxy. Needs root.
#
#   cluster.sh up | down | status
#   cluster.sh exec HOST CMD...
#   cluster.sh kill-host HOST | restore-host HOST
#   cluster.sh partition HOST | heal HOST
#   cluster.sh kill NAME | start NAME
#
# HOST is app1 or lpc-app1 and so on; NAME one service (cluster.sh status
# lists them). State, configs, logs and pid files live in run/ beside this
# file; every `up` starts from an empty one.
set -u

prog=cluster.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
bin=$top/bin
run=$here/run
pids=$run/pids
logs=$run/log
pgbin=/usr/lib/postgresql/15/bin

net=10.77.15
declare -A ip=(
	[app1]=$net.11 [app2]=$net.12 [redis1]=$net.21 [redis2]=$net.22
	[mon]=$net.30 [pg1]=$net.31 [pg2]=$net.32 [lb]=$net.40 [client]=$net.50
)
hosts="app1 app2 redis1 redis2 mon pg1 pg2 lb client"

# The services of each host, in the order they start. Those of an app
# host are named after it (app1-ingest); the others by what they are.
app_svcs="pgbouncer1 pgbouncer2 ingest batch-commit route notify"
host_svcs() {
	case $1 in
	app1|app2) for s in $app_svcs; do printf '%s ' "$1-$s"; done; echo ;;
	redis1) echo "redis1 sentinel1" ;;
	redis2) echo "redis2 sentinel2" ;;
	mon) echo "monitor sentinel3 redis3" ;;
	pg1) echo pg1 ;;
	pg2) echo pg2 ;;
	lb) echo haproxy ;;
	client) echo ;;
	esac
}
svc_host() {
	case $1 in
	app[12]-*) echo "${1%%-*}" ;;
	redis1|sentinel1) echo redis1 ;;
	redis2|sentinel2) echo redis2 ;;
	monitor|sentinel3|redis3) echo mon ;;
	pg1|pg2) echo "$1" ;;
	haproxy) echo lb ;;
	*) return 1 ;;
	esac
}
all_svcs() { local h; for h in $hosts; do host_svcs "$h"; done; }

sentinels="$net.21:26379,$net.22:26379,$net.30:26379"
master=labpulse
db_direct="host=$net.31,$net.32 port=5432,5432 dbname=labpulse user=labpulse target_session_attrs=read-write"
db_read="host=$net.32,$net.31 port=5432,5432 dbname=labpulse user=labpulse target_session_attrs=prefer-standby"
# batch-commit's, through the host's two PgBouncers
db_bouncer="host=127.0.0.1,127.0.0.1 port=6432,6433 dbname=labpulse user=labpulse target_session_attrs=read-write"
monitor_uri="postgres://autoctl_node@$net.30:5431/pg_auto_failover?sslmode=disable"

# Daemons must not inherit the caller's descriptors: a test runner (bats)
# waits for them to close.
for fd in 3 4 5 6 7 8 9; do eval "exec $fd>&-"; done

die() { local c=$1; shift; echo "labpulse-cluster: error: $*" >&2; exit "$c"; }
info() { echo "labpulse-cluster: info: $*" >&2; }
usage() {
	sed -n '6,11s/^#  *//p' "$0" | sed '1s/^/usage: /;2,$s/^/       /' >&2
	exit 64
}

# now_ms: milliseconds since the epoch.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# wait_for SECONDS WHAT CMD...: poll CMD every 100 ms until it succeeds;
# fail naming WHAT once SECONDS have passed.
wait_for() {
	local limit=$1 what=$2 end
	shift 2
	end=$(($(now_ms) + limit * 1000))
	until "$@" >/dev/null 2>&1; do
		[ "$(now_ms)" -lt "$end" ] || { echo "labpulse-cluster: error: $what not ready in ${limit}s" >&2; return 1; }
		sleep 0.1
	done
}

nsx() { local h=$1; shift; ip netns exec "lpc-$h" "$@"; }

host_arg() {
	local h=${1#lpc-}
	[ -n "${ip[$h]:-}" ] || die 64 "unknown host '$1'; hosts: $hosts"
	echo "$h"
}

# ---- PostgreSQL's files ------------------------------------------------
# PostgreSQL, pg_autoctl and PgBouncer refuse to run as root: they run as
# the user postgres, which must reach their files. A clone under a folder
# closed to it (/root) keeps them in a folder of /var/tmp named after the
# clone; run/pgstate points there.
pgroot() {
	if [ -L "$run/pgstate" ]; then
		readlink "$run/pgstate"
	elif setpriv --reuid=postgres --regid=postgres --clear-groups test -x "$run" 2>/dev/null; then
		echo "$run/pgstate"
	else
		echo "/var/tmp/labpulse-cluster-$(printf '%s' "$run" | sha256sum | cut -c1-12)"
	fi
}

# as_pg HOST CMD...: CMD as postgres in HOST's namespace, with a socket
# folder of its own bound on /run/postgresql (where Debian's PostgreSQL
# and pg_autoctl look): the hosts share one file system, and two servers
# on port 5432 would otherwise fight for one socket's lock file. Every
# step execs, so that CMD keeps the pid ip netns exec had.
pg_env() {	# host: the command that runs what follows so
	local d
	d=$(pgroot)/$1
	pgx=(ip netns exec "lpc-$1" setsid env -i PATH="$pgbin:/usr/bin:/bin:/usr/sbin:/sbin"
		HOME="$d" XDG_CONFIG_HOME="$d/config" XDG_DATA_HOME="$d/share"
		XDG_RUNTIME_DIR="$d/rt" LANG=C.UTF-8 PGDATA="$d/pgdata"
		sh -c 'mount --bind "$0" /run/postgresql &&
			exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"'
		"$d/sock")
}
as_pg() { local pgx; pg_env "$1"; shift; "${pgx[@]}" "$@"; }

# psql_at HOST SQL: run SQL as postgres on HOST's server, through its socket
# (a path, reached from anywhere), and print the rows.
psql_at() {
	local h=$1 port=5432
	[ "$h" = mon ] && port=5431
	setpriv --reuid=postgres --regid=postgres --init-groups -- \
		psql -h "$(pgroot)/$h/sock" -p "$port" -U postgres -XAtq -v ON_ERROR_STOP=1 \
		-d "${3:-postgres}" -c "$2"
}

# ---- processes -----------------------------------------------------------
# spawn NAME HOST CMD...: start CMD in HOST's namespace, in a session of its
# own, its output in log/NAME.log, its pid in pids/NAME.pid. ip netns exec,
# setsid (no group leader here) and as_pg's sh all exec, so $! is CMD's pid.
spawn() {
	local name=$1 h=$2
	shift 2
	ip netns exec "lpc-$h" setsid "$@" </dev/null >>"$logs/$name.log" 2>&1 &
	echo $! >"$pids/$name.pid"
}
spawn_pg() {
	local name=$1 pgx
	pg_env "$2"
	shift 2
	"${pgx[@]}" "$@" </dev/null >>"$logs/$name.log" 2>&1 &
	echo $! >"$pids/$name.pid"
}

# A pid file's process runs, outside the root namespace's network (a pid
# the kernel gave to another process is left alone), and is no zombie.
pid_of() {
	local p
	p=$(cat "$pids/$1.pid" 2>/dev/null) || return 1
	[ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 1
	[ "$(readlink "/proc/$p/ns/net" 2>/dev/null)" != "$(readlink /proc/self/ns/net)" ] || return 1
	grep -qs '^[0-9]* (.*) Z' "/proc/$p/stat" && return 1
	echo "$p"
}

# descendants PID: PID and every process under it.
descendants() {
	local c
	echo "$1"
	for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do descendants "$c"; done
}

# kill_svc NAME SIGNAL: the service's process and all under it.
kill_svc() {
	local p
	p=$(pid_of "$1") || return 0
	# shellcheck disable=SC2046
	kill -s "$2" $(descendants "$p") 2>/dev/null
	return 0
}

# ---- the network ---------------------------------------------------------
ns_exists() { [ -e "/run/netns/lpc-$1" ]; }

make_switch() {
	ns_exists sw && return 0
	ip netns add lpc-sw || return 1
	ip -n lpc-sw link set lo up &&
		ip -n lpc-sw link add br0 type bridge &&
		ip -n lpc-sw link set br0 up
}

# make_host HOST: its namespace, lo up, and a veth whose other end (v-HOST)
# is a port of the bridge in lpc-sw; nothing in the root namespace.
make_host() {
	local h=$1
	ns_exists "$h" && return 0
	ip netns add "lpc-$h" &&
		ip -n "lpc-$h" link set lo up &&
		ip -n lpc-sw link add "v-$h" type veth peer name eth0 netns "lpc-$h" &&
		ip -n lpc-sw link set "v-$h" master br0 &&
		ip -n lpc-sw link set "v-$h" up &&
		ip -n "lpc-$h" addr add "${ip[$h]}/24" dev eth0 &&
		ip -n "lpc-$h" link set eth0 up
}

# kill_host_procs HOST: every process in the namespace, at once.
kill_host_procs() {
	local h=$1 p
	ns_exists "$h" || return 0
	for _ in 1 2 3; do
		p=$(ip netns pids "lpc-$h" 2>/dev/null)
		[ -n "$p" ] || return 0
		# shellcheck disable=SC2086
		kill -KILL $p 2>/dev/null
		sleep 0.05
	done
}

# ---- what each service is ------------------------------------------------
redis_conf() {	# host: writes its redis.conf
	local h=$1 d=$run/$1 m
	mkdir -p "$d"
	{
		echo "bind ${ip[$h]} 127.0.0.1"
		echo "port 6379"
		echo "protected-mode no"
		echo "daemonize no"
		echo "dir $d"
		echo "appendonly yes"
		echo "appendfsync everysec"
		echo 'save ""'
		echo "replica-announce-ip ${ip[$h]}"
		# A node that comes back after a failover starts as a replica of
		# the primary Sentinel names, never as a second primary.
		m=$(agreed_redis_primary)
		if [ -z "$m" ]; then
			[ "$h" = redis1 ] || echo "replicaof ${ip[redis1]} 6379"
		elif [ "$m" != "${ip[$h]}" ]; then
			echo "replicaof $m 6379"
		fi
	} >"$d/redis.conf"
}

sentinel_conf() {	# host: writes its sentinel.conf, unless it has one
	local h=$1 d=$run/$1
	mkdir -p "$d"
	[ -f "$d/sentinel.conf" ] && return 0
	cat >"$d/sentinel.conf" <<-EOF
	port 26379
	bind ${ip[$h]} 127.0.0.1
	protected-mode no
	daemonize no
	dir $d
	sentinel announce-ip ${ip[$h]}
	sentinel monitor $master ${ip[redis1]} 6379 2
	sentinel down-after-milliseconds $master 1000
	sentinel failover-timeout $master 5000
	sentinel parallel-syncs $master 1
	EOF
}

# The primary's address as the sentinels that answer say it, or nothing.
current_redis_primary() {
	local h a
	for h in redis1 redis2 mon; do
		ns_exists "$h" || continue
		a=$(nsx "$h" timeout 2 redis-cli -h "${ip[$h]}" -p 26379 \
			sentinel get-master-addr-by-name "$master" 2>/dev/null | head -n 1)
		case $a in "$net".*) echo "$a"; return 0 ;; esac
	done
}

# The primary every sentinel that answers names, at least two of them
# answering and none naming another; fails otherwise. A sentinel that has
# not yet heard of a failover still names the old primary: a node started
# on its word would come back as a second primary.
agreed_redis_primary() {
	local h a seen= n=0
	for h in redis1 redis2 mon; do
		ns_exists "$h" || continue
		a=$(nsx "$h" timeout 2 redis-cli -h "${ip[$h]}" -p 26379 \
			sentinel get-master-addr-by-name "$master" 2>/dev/null | head -n 1)
		case $a in "$net".*) ;; *) continue ;; esac
		[ -z "$seen" ] || [ "$seen" = "$a" ] || return 1
		seen=$a n=$((n + 1))
	done
	[ "$n" -ge 2 ] && echo "$seen"
}

pgbouncer_conf() {	# app host, n (1: port 6432 to pg1; 2: 6433 to pg2)
	local h=$1 n=$2 d port pg
	d=$(pgroot)/$h
	port=$((6431 + n)) pg=pg$n
	mkdir -p "$d"
	printf '"labpulse" ""\n"lpcadmin" ""\n' >"$d/userlist.txt"
	cat >"$d/pgbouncer$n.ini" <<-EOF
	[databases]
	labpulse = host=${ip[$pg]} port=5432 dbname=labpulse
	[pgbouncer]
	listen_addr = 127.0.0.1,${ip[$h]}
	listen_port = $port
	unix_socket_dir =
	auth_type = trust
	auth_file = $d/userlist.txt
	admin_users = lpcadmin
	stats_users = lpcadmin
	pool_mode = transaction
	default_pool_size = 10
	max_client_conn = 500
	ignore_startup_parameters = extra_float_digits,options
	server_connect_timeout = 2
	server_login_retry = 1
	query_wait_timeout = 10
	server_check_delay = 1
	logfile =
	pidfile =
	EOF
	chown -R postgres: "$d"
}

haproxy_conf() {
	mkdir -p "$run/lb"
	cat >"$run/lb/haproxy.cfg" <<-EOF
	global
	    maxconn 8192
	defaults
	    mode http
	    timeout connect 1s
	    timeout check 500ms
	    timeout client 60s
	    timeout server 60s
	    timeout tunnel 1h
	    timeout http-keep-alive 10s
	    # a request whose connection failed (a host gone) goes to the
	    # other server at once, not after the checks marked it down
	    retries 2
	    option redispatch 1
	    default-server inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions
	frontend ingest
	    bind ${ip[lb]}:8000
	    default_backend ingest
	backend ingest
	    balance roundrobin
	    option httpchk GET /healthz
	    http-check expect status 200
	    server app1 ${ip[app1]}:8000 check
	    server app2 ${ip[app2]}:8000 check
	frontend notify
	    bind ${ip[lb]}:8080
	    default_backend notify
	backend notify
	    balance leastconn
	    option httpchk GET /healthz
	    http-check expect status 200
	    server app1 ${ip[app1]}:8080 check
	    server app2 ${ip[app2]}:8080 check
	listen stats
	    bind ${ip[lb]}:8404
	    stats enable
	    stats uri /
	    stats refresh 2s
	EOF
}

# ---- readiness -------------------------------------------------------------
redis_ready() { [ "$(nsx "$1" redis-cli -h "${ip[$1]}" -p "$2" ping 2>/dev/null)" = PONG ]; }
http_ready() { nsx "$1" curl -fsS -o /dev/null --max-time 1 "http://${ip[$1]}:$2/${3:-healthz}"; }
log_ready() { grep -qs ': info: ready ' "$logs/$1.log"; }
pgb_ready() {
	nsx "$1" psql "host=127.0.0.1 port=$2 user=lpcadmin dbname=pgbouncer connect_timeout=1" \
		-XAtqc 'SHOW VERSION'
}
node_state() {	# node: its state as the monitor has it
	psql_at mon "SELECT reportedstate FROM pgautofailover.node WHERE nodename = '$1'" \
		pg_auto_failover 2>/dev/null
}
other_pg() { [ "$1" = pg1 ] && echo pg2 || echo pg1; }
node_in() { local s; s=$(node_state "$1") && case " ${*:2} " in *" $s "*) return 0 ;; esac; return 1; }

# ---- starting each service -------------------------------------------------
start_svc() {
	local name=$1 h d n
	h=$(svc_host "$name") || die 64 "unknown service '$name'; services: $(all_svcs | xargs)"
	ns_exists "$h" || die 69 "host lpc-$h is down; bring it back with: $prog restore-host $h"
	if pid_of "$name" >/dev/null; then return 0; fi
	: >>"$logs/$name.log"
	case $name in
	redis1|redis2|redis3)
		# a node that ran before comes back as a replica of the primary
		# the sentinels agree on, once they do
		[ ! -f "$run/$h/redis.conf" ] ||
			wait_for 30 "the sentinels' agreement on a primary" agreed_redis_primary ||
			return 1
		redis_conf "$h"
		spawn "$name" "$h" redis-server "$run/$h/redis.conf"
		wait_for 20 "$name" redis_ready "$h" 6379 || return 1
		;;
	sentinel*)
		sentinel_conf "$h"
		spawn "$name" "$h" redis-sentinel "$run/$h/sentinel.conf"
		wait_for 20 "$name" redis_ready "$h" 26379 || return 1
		;;
	monitor)
		d=$(pgroot)/mon
		if [ ! -f "$d/pgdata/PG_VERSION" ]; then
			as_pg mon pg_autoctl create monitor --pgdata "$d/pgdata" --pgport 5431 \
				--hostname "${ip[mon]}" --auth trust --no-ssl --pgctl "$pgbin/pg_ctl" \
				>>"$logs/$name.log" 2>&1 || { tail -n 20 "$logs/$name.log" >&2; die 69 "pg_autoctl create monitor failed"; }
			hba "$d/pgdata"
		fi
		spawn_pg "$name" mon pg_autoctl run --pgdata "$d/pgdata"
		wait_for 60 "the monitor" psql_at mon 'SELECT 1' pg_auto_failover || return 1
		tune_monitor || return 1
		;;
	pg1|pg2)
		d=$(pgroot)/$h
		if [ ! -f "$d/pgdata/PG_VERSION" ]; then
			[ "$h" = pg2 ] || [ -z "$(node_state pg2)" ] ||
				die 69 "cannot create pg1 beside an existing pg2"
			as_pg "$h" pg_autoctl create postgres --pgdata "$d/pgdata" --pgport 5432 \
				--hostname "${ip[$h]}" --name "$h" --dbname labpulse \
				--monitor "$monitor_uri" --auth trust --no-ssl --pgctl "$pgbin/pg_ctl" \
				>>"$logs/$name.log" 2>&1 || { tail -n 20 "$logs/$name.log" >&2; die 69 "pg_autoctl create postgres ($h) failed"; }
			hba "$d/pgdata"
			# A primary cut off from the monitor and its standby
			# demotes itself after this long: less than the
			# monitor's primary_demote_timeout (below), so that two
			# primaries never take writes at once.
			as_pg "$h" pg_autoctl config set --pgdata "$d/pgdata" \
				timeout.network_partition_timeout 2 >>"$logs/$name.log" 2>&1 ||
				die 69 "cannot set $h's network_partition_timeout"
		fi
		spawn_pg "$name" "$h" pg_autoctl run --pgdata "$d/pgdata"
		# Back after a failover, it rejoins as the secondary of the
		# other node; else it is the primary, or the first node.
		if node_in "$(other_pg "$h")" primary wait_primary; then
			wait_for 180 "$h as secondary" node_in "$h" secondary || return 1
		else
			wait_for 180 "$h" node_in "$h" single primary secondary wait_primary || return 1
		fi
		;;
	haproxy)
		haproxy_conf
		spawn "$name" lb haproxy -db -f "$run/lb/haproxy.cfg"
		wait_for 20 haproxy http_ready lb 8404 '' || return 1
		;;
	app*-pgbouncer*)
		n=${name##*pgbouncer}
		pgbouncer_conf "$h" "$n"
		spawn "$name" "$h" setpriv --reuid=postgres --regid=postgres --init-groups -- \
			pgbouncer "$(pgroot)/$h/pgbouncer$n.ini"
		wait_for 20 "$name" pgb_ready "$h" $((6431 + n)) || return 1
		;;
	app*-*) start_daemon "$name" "$h" ;;
	esac
}

# Anyone on the cluster's subnet may connect, as any user, to every
# database and for replication: a test bed, not a deployment.
hba() {
	printf 'host all all %s.0/24 trust\nhost replication all %s.0/24 trust\n' "$net" "$net" >>"$1/pg_hba.conf"
}

# pg_auto_failover's timings, lowered on the monitor from tens of seconds
# (health checks every 20 s, a node unhealthy after 20 s, a primary given
# 30 s to demote) to about a second each.
tune_monitor() {
	psql_at mon "ALTER SYSTEM SET pgautofailover.health_check_period = 1000" &&
	psql_at mon "ALTER SYSTEM SET pgautofailover.health_check_timeout = 1000" &&
	psql_at mon "ALTER SYSTEM SET pgautofailover.health_check_max_retries = 1" &&
	psql_at mon "ALTER SYSTEM SET pgautofailover.health_check_retry_delay = 500" &&
	psql_at mon "ALTER SYSTEM SET pgautofailover.node_considered_unhealthy_timeout = 2000" &&
	psql_at mon "ALTER SYSTEM SET pgautofailover.primary_demote_timeout = 3000" &&
	psql_at mon "ALTER SYSTEM SET pgautofailover.startup_grace_period = 2000" &&
	psql_at mon "SELECT pg_reload_conf()" >/dev/null || {
		echo "labpulse-cluster: error: cannot lower pg_auto_failover's timings on the monitor" >&2
		return 1
	}
}

start_daemon() {	# name host
	local name=$1 h=$2 d=${1#*-} port args
	case $d in
	ingest) port=9100 ;; batch-commit) port=9101 ;; route) port=9102 ;; notify) port=9103 ;;
	esac
	mkdir -p "$run/$h"
	args=(--redis "sentinel://$sentinels/$master" --stats "tcp:${ip[$h]}:$port")
	case $d in
	ingest)
		# All requests come from HAProxy's address: the bounds per
		# address and per token are off.
		args+=(--listen "${ip[$h]}:8000" --max-conns-per-addr 0
			--rate-per-addr 0 --rate-per-token 0)
		args+=(--redis-wait "${LPC_REDIS_WAIT:-1}")
		;;
	batch-commit)
		args+=(--db "$db_bouncer" --consumer "$h" --claim-idle 2s) ;;
	route)
		args+=(--rules "$top/etc/labpulse/route.jq" --consumer "$h" --claim-idle 2s) ;;
	notify)
		args+=(--listen "${ip[$h]}:8080" --db "$db_direct" --consumer "$h"
			--claim-idle 2s --max-conns-per-addr 0 --web-root "$top/share/web")
		args+=(--db-read "$db_read")
		;;
	esac
	spawn "$name" "$h" "$bin/$d" "${args[@]}"
	case $d in
	ingest) wait_for 30 "$name" http_ready "$h" 8000 ;;
	notify) wait_for 30 "$name" http_ready "$h" 8080 ;;
	*) wait_for 30 "$name" log_ready "$name" ;;
	esac || { tail -n 5 "$logs/$name.log" >&2; return 1; }
}

start_host() {	# host: its namespace and services
	local h=$1 s
	make_switch || die 69 "cannot make the switch lpc-sw"
	make_host "$h" || die 69 "cannot make host lpc-$h"
	for s in $(host_svcs "$h"); do start_svc "$s" || die 69 "$s did not start; see $logs/$s.log"; done
}

# ---- commands ---------------------------------------------------------------
need_root() {
	[ "$(id -u)" -eq 0 ] || die 77 "the cluster needs root (network namespaces); run as root"
	ip netns list >/dev/null 2>&1 || die 69 "ip netns does not work here"
	local p
	for p in redis-server redis-sentinel pgbouncer haproxy pg_autoctl curl psql; do
		command -v "$p" >/dev/null || die 69 "$p is not installed; run: make deps"
	done
	[ -x "$pgbin/pg_ctl" ] || die 69 "PostgreSQL 15 is not installed; run: make deps"
	for p in ingest batch-commit route notify migrate-indexes; do
		[ -x "$bin/$p" ] || die 69 "bin/$p is not built; run: make"
	done
}

# An up that does not reach its end, by an error (every step's failure
# ends it) or by INT or TERM, takes down what it built.
up_done=0
up_exit() {
	local rc=$?
	trap - EXIT INT TERM
	if [ "$up_done" = 0 ]; then
		info "up did not finish; tearing down what it built"
		cmd_down
		[ "$rc" -ne 0 ] || rc=69
	fi
	exit "$rc"
}

cmd_up() {
	local t0 h pgd
	need_root
	t0=$(now_ms)
	# an interrupt from here on, even in the cleaning, leaves nothing
	trap up_exit EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	cmd_down 2>/dev/null
	[ -L "$run/pgstate" ] && rm -rf "$(readlink "$run/pgstate")"
	rm -rf "$run"
	mkdir -p "$run" && chmod 755 "$run" || die 69 "cannot make $run"
	pgd=$(pgroot)
	[ "$pgd" = "$run/pgstate" ] || { rm -rf "$pgd"; mkdir -p "$run"; ln -s "$pgd" "$run/pgstate"; }
	mkdir -p "$run" "$pids" "$logs" "$pgd" || die 69 "cannot make $run"
	for h in mon pg1 pg2 app1 app2; do
		mkdir -p "$pgd/$h/sock" "$pgd/$h/config" "$pgd/$h/share" "$pgd/$h/rt" &&
			chmod 700 "$pgd/$h/rt" || die 69 "cannot make $pgd/$h"
	done
	chown -R postgres: "$pgd" && chmod 755 "$run" "$pgd" || die 69 "cannot give $pgd to postgres"

	make_switch || die 69 "cannot make the switch lpc-sw"
	for h in $hosts; do make_host "$h" || die 69 "cannot make host lpc-$h"; done
	start_host redis1
	start_host redis2
	start_svc redis3 || die 69 "redis3 did not start; see $logs/redis3.log"
	start_svc sentinel3 || die 69 "sentinel3 did not start; see $logs/sentinel3.log"
	wait_for 30 "the replicas redis2 and redis3" redis_replica_up || exit 69
	start_svc monitor || die 69 "the monitor did not start; see $logs/monitor.log"
	start_svc pg1 || die 69 "pg1 did not start; see $logs/pg1.log"
	start_svc pg2 || die 69 "pg2 did not start; see $logs/pg2.log"
	wait_for 180 "pg2 as secondary" node_in pg2 secondary || exit 69
	wait_for 60 "pg1 as primary" node_in pg1 primary || exit 69
	make_role
	nsx app1 "$bin/migrate-indexes" --db "$db_direct" --dir "$top/etc/migrations" up \
		>>"$logs/migrate.log" 2>&1 || { tail -n 5 "$logs/migrate.log" >&2; die 69 "migrations failed; see $logs/migrate.log"; }
	start_host app1
	start_host app2
	start_host lb
	up_done=1
	trap - EXIT INT TERM
	info "up in $(( ($(now_ms) - t0) / 1000 ))s; ingest http://${ip[lb]}:8000, notify http://${ip[lb]}:8080, HAProxy's stats http://${ip[lb]}:8404/"
}

# Online, and fed: after a diskless full sync redis1 streams nothing to a
# replica until its first acknowledgement, up to a second later; a write
# (a PUBLISH, which leaves no key) acknowledged by both says it is past.
redis_replica_up() {
	nsx redis1 redis-cli -h "${ip[redis1]}" info replication >"$run/replication" &&
		grep -q "^slave0:.*state=online" "$run/replication" &&
		grep -q "^slave1:.*state=online" "$run/replication" &&
		[ "$(printf 'PUBLISH labpulse:probe 1\nWAIT 2 500\n' |
			nsx redis1 timeout 5 redis-cli -h "${ip[redis1]}" 2>/dev/null | tail -n 1)" = 2 ]
}

# The role the programs connect as: it owns the database, which
# pg_autoctl made (the primary's changes reach the secondary by replication).
make_role() {
	psql_at pg1 "DO \$\$ BEGIN
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'labpulse') THEN
			CREATE ROLE labpulse LOGIN;
		END IF; END \$\$" &&
	psql_at pg1 "ALTER DATABASE labpulse OWNER TO labpulse" ||
		die 69 "cannot make the role labpulse on pg1"
}

cmd_down() {
	local h s left
	[ "$(id -u)" -eq 0 ] || die 77 "the cluster needs root (network namespaces); run as root"
	# The daemons first, so that they drain while Redis and PostgreSQL
	# are still there; then everything else.
	for h in app1 app2; do
		for s in ingest batch-commit route notify; do kill_svc "$h-$s" TERM; done
	done
	wait_gone 10 app1-ingest app1-batch-commit app1-route app1-notify \
		app2-ingest app2-batch-commit app2-route app2-notify
	for s in $(all_svcs); do kill_svc "$s" TERM; done
	# shellcheck disable=SC2046
	wait_gone 10 $(all_svcs)
	for s in $(all_svcs); do kill_svc "$s" KILL; done
	for h in $(ip netns list 2>/dev/null | sed -n 's/^lpc-\([^ ]*\).*/\1/p'); do
		kill_host_procs "$h"
		ip netns del "lpc-$h" 2>/dev/null
	done
	left=$(ip netns list 2>/dev/null | grep '^lpc-')
	rm -f "$pids"/*.pid 2>/dev/null
	[ -z "$left" ] || die 69 "namespaces left: $left"
	return 0
}

wait_gone() {	# seconds names...
	local end n
	end=$(($(now_ms) + $1 * 1000))
	shift
	while :; do
		for n in "$@"; do pid_of "$n" >/dev/null && break; n=; done
		[ -z "${n:-}" ] && return 0
		[ "$(now_ms)" -lt "$end" ] || return 0
		sleep 0.1
	done
}

cmd_status() {
	local h s p rc=0 m role
	for h in $hosts; do
		if ! ns_exists "$h"; then
			printf '%-11s %-13s down\n' "lpc-$h" "${ip[$h]}"
			rc=3
			continue
		fi
		if ip -n lpc-sw -o link show "v-$h" 2>/dev/null | grep -q '[<,]UP[,>]'; then
			printf '%-11s %-13s up\n' "lpc-$h" "${ip[$h]}"
		else
			printf '%-11s %-13s up, partitioned\n' "lpc-$h" "${ip[$h]}"
		fi
		for s in $(host_svcs "$h"); do
			if p=$(pid_of "$s"); then
				role=
				case $s in
				redis[123]) role=$(nsx "$h" timeout 2 redis-cli -h "${ip[$h]}" role 2>/dev/null | head -n 1) ;;
				esac
				printf '    %-20s running pid %-7s %s\n' "$s" "$p" "$role"
			else
				printf '    %-20s stopped\n' "$s"; rc=3
			fi
		done
	done
	m=$(current_redis_primary)
	echo "Redis primary per Sentinel: ${m:-unknown}"
	for h in redis1 redis2 mon; do
		ns_exists "$h" || continue
		printf '    sentinel %-13s says %s\n' "${ip[$h]}" \
			"$(nsx "$h" timeout 2 redis-cli -h "${ip[$h]}" -p 26379 sentinel get-master-addr-by-name "$master" 2>/dev/null | tr '\n' ' ')"
	done
	echo "PostgreSQL (pg_autoctl show state):"
	if ns_exists mon && pid_of monitor >/dev/null; then
		as_pg mon pg_autoctl show state --pgdata "$(pgroot)/mon/pgdata" 2>&1 | sed 's/^/    /'
	else
		echo "    the monitor is down"
	fi
	return $rc
}

cmd_kill_host() {
	local h s
	h=$(host_arg "$1") || exit 64
	ns_exists "$h" || die 69 "host lpc-$h is already down"
	kill_host_procs "$h"
	ip netns del "lpc-$h"
	for s in $(host_svcs "$h"); do rm -f "$pids/$s.pid"; done
	info "lpc-$h killed"
}

cmd_restore_host() {
	local h
	h=$(host_arg "$1") || exit 64
	ns_exists "$h" && ip netns pids "lpc-$h" | grep -q . && die 69 "host lpc-$h is up"
	start_host "$h"
	info "lpc-$h restored"
}

cmd_link() {	# host up|down
	local h
	h=$(host_arg "$1") || exit 64
	ns_exists "$h" || die 69 "host lpc-$h is down"
	ip -n lpc-sw link set "v-$h" "$2" || die 69 "cannot set v-$h $2"
}

cmd_kill() {
	local h
	h=$(svc_host "$1") || die 64 "unknown service '$1'; services: $(all_svcs | xargs)"
	pid_of "$1" >/dev/null || die 69 "$1 is not running"
	kill_svc "$1" KILL
	# PostgreSQL's children stop on their own once the postmaster is gone;
	# wait until its port is free so that `start` finds it so.
	wait_gone 10 "$1"
	info "$1 killed"
}

cmd_start() {
	start_svc "$1" || die 69 "$1 did not start; see $logs/$1.log"
	info "$1 started"
}

case ${1:-} in
up) [ $# -eq 1 ] || usage; cmd_up ;;
down) [ $# -eq 1 ] || usage; cmd_down ;;
status) [ $# -eq 1 ] || usage; need_root; cmd_status ;;
exec) [ $# -ge 3 ] || usage; h=$(host_arg "$2") || exit 64; shift 2; exec ip netns exec "lpc-$h" "$@" ;;
kill-host) [ $# -eq 2 ] || usage; need_root; cmd_kill_host "$2" ;;
restore-host) [ $# -eq 2 ] || usage; need_root; cmd_restore_host "$2" ;;
partition) [ $# -eq 2 ] || usage; need_root; cmd_link "$2" down ;;
heal) [ $# -eq 2 ] || usage; need_root; cmd_link "$2" up ;;
kill) [ $# -eq 2 ] || usage; need_root; cmd_kill "$2" ;;
start) [ $# -eq 2 ] || usage; need_root; cmd_start "$2" ;;
-h|--help) sed -n '6,11s/^#  *//p' "$0" | sed '1s/^/usage: /;2,$s/^/       /'; exit 0 ;;
*) usage ;;
esac
