#!/bin/bash
# stack: the private local stack behind `labpulse up|down|status|env`: a
# PostgreSQL and a Redis of its own in $LABPULSE_HOME, and the labpulse
# daemons, on Unix sockets and free loopback ports. The test suite uses it too.
set -u

prog=labpulse
here=$(cd "$(dirname "$0")" && pwd)
home=${LABPULSE_HOME:-./var}
# Only up makes the home: the other commands (instructor, on a host whose
# PostgreSQL the PG variables name, among them) leave the folder they run
# in as it was.
if [ "${1:-}" = up ]; then
	mkdir -p "$home" 2>/dev/null
	home=$(cd "$home" 2>/dev/null && pwd) || { echo "$prog: error: cannot use LABPULSE_HOME=${LABPULSE_HOME:-./var}" >&2; exit 69; }
elif [ -d "$home" ]; then
	home=$(cd "$home" && pwd)
else
	case $home in /*) ;; *) home=$(pwd)/${home#./} ;; esac
fi
run=$home/run
logs=$home/log
pgdata=$home/pg
pgsock=$run/pg
pglog=$logs/postgres.log
pgport=5432

# PostgreSQL refuses to run as root, so a root's stack runs it as the system
# user labpulse, which must reach its files. A checkout under /root (mode
# 700) is out of its reach: then PostgreSQL's data, socket and log go to a
# folder of their own in /var/tmp, named after the home, which `labpulse up`
# names and $home/pg-place remembers for down, status and env.
pgplace_file=$home/pg-place
pgplace=
if [ -f "$pgplace_file" ]; then
	pgplace=$(cat "$pgplace_file")
elif [ "$(id -u)" -eq 0 ] && [ ! -d "$pgdata" ] &&
    ! setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$home" 2>/dev/null; then
	pgplace=/var/tmp/labpulse-pg-$(printf '%s' "$home" | sha256sum | cut -c1-12)
fi
if [ -n "$pgplace" ]; then
	pgdata=$pgplace/pg
	pgsock=$pgplace/run
	pglog=$pgplace/postgres.log
fi
redisdir=$home/redis
redissock=$run/redis.sock

# batch-commit runs as several consumers of the group commit, one per core
# by default (at least 1, at most 8), or LABPULSE_COMMITTERS of them: a
# batch's time goes in PostgreSQL's backend, one core each, so N consumers
# let N backends commit at once. The first is batch-commit, its files named
# as ever; the others batch-commit-2, -3 and so on. $home/committers
# remembers how many up started, for down and status, and for a later up
# without the variable, which brings back the same stack.
committers() {
	local n
	if [ -z "${LABPULSE_COMMITTERS:-}" ] && n=$(cat "$home/committers" 2>/dev/null) &&
	    [ -n "$n" ] && [ "$n" -ge 1 ] 2>/dev/null; then
		echo "$n"
		return 0
	fi
	if [ -n "${LABPULSE_COMMITTERS:-}" ]; then
		case $LABPULSE_COMMITTERS in
		[1-9]|1[0-6]) echo "$LABPULSE_COMMITTERS"; return 0 ;;
		esac
		die 78 "LABPULSE_COMMITTERS must be a number from 1 to 16, not '$LABPULSE_COMMITTERS'"
	fi
	n=$(getconf _NPROCESSORS_ONLN 2>/dev/null) || n=1
	case $n in ''|*[!0-9]*|0) n=1 ;; esac
	[ "$n" -gt 8 ] && n=8
	echo "$n"
}
# The consumers' names: as many as up started last, and any other whose
# pid file is there.
committer_names() {
	local n k f names=batch-commit
	n=$(cat "$home/committers" 2>/dev/null) || n=1
	case $n in ''|*[!0-9]*) n=1 ;; esac
	for k in $(seq 2 "$n"); do names="$names batch-commit-$k"; done
	for f in "$run"/batch-commit-*.pid; do
		[ -e "$f" ] || continue
		f=${f##*/}
		case " $names " in *" ${f%.pid} "*) ;; *) names="$names ${f%.pid}" ;; esac
	done
	echo "$names"
}
daemon_names() { echo "ingest $(committer_names) route notify"; }

# Daemons must not inherit the caller's descriptors: a test runner waits on
# them, and `eval "$(labpulse up)"` waits for stdout to close.
for fd in 3 4 5 6 7 8 9; do eval "exec $fd>&-"; done

die() { code=$1; shift; echo "$prog: error: $*" >&2; exit "$code"; }
info() { echo "$prog: info: $*" >&2; }

pgbin() {
	local d
	if command -v pg_config >/dev/null 2>&1; then
		d=$(pg_config --bindir 2>/dev/null)
		[ -x "$d/initdb" ] && { echo "$d"; return; }
	fi
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	[ -n "$d" ] && [ -x "$d/initdb" ] && { echo "$d"; return; }
	d=$(dirname "$(command -v initdb 2>/dev/null || echo /x/x)")
	[ -x "$d/initdb" ] && { echo "$d"; return; }
	die 69 "PostgreSQL's server programs (initdb, pg_ctl) are not installed; run: make deps"
}

# PostgreSQL refuses to run as root: then it runs as the system user labpulse.
pguser=
as_pg() {
	if [ -n "$pguser" ]; then runuser -u "$pguser" -- "$@"; else "$@"; fi
}
setup_pguser() {
	[ "$(id -u)" -eq 0 ] || return 0
	pguser=labpulse
	if ! id -u "$pguser" >/dev/null 2>&1; then
		useradd --system --no-create-home --shell /usr/sbin/nologin "$pguser" 2>/dev/null ||
			die 69 "cannot create the system user $pguser for PostgreSQL"
	fi
	if [ -n "$pgplace" ] && [ ! -f "$pgplace_file" ]; then
		mkdir -p "$pgplace" && chmod 755 "$pgplace" && printf '%s\n' "$pgplace" >"$pgplace_file" ||
			die 69 "cannot make $pgplace for PostgreSQL's files"
		info "PostgreSQL's user $pguser cannot reach $home: its data, socket and log are in $pgplace"
	fi
	runuser -u "$pguser" -- test -x "$(dirname "$pgdata")" ||
		die 69 "PostgreSQL's user $pguser cannot reach $(dirname "$pgdata"); set LABPULSE_HOME to a folder it can (for example under /tmp)"
}

# A pid file's process runs, and is not a zombie that nobody reaped yet.
alive() {
	local pid
	[ -f "$1" ] || return 1
	pid=$(cat "$1" 2>/dev/null)
	kill -0 "$pid" 2>/dev/null || return 1
	! grep -qs '^[0-9]* (.*) Z' "/proc/$pid/stat"
}

pg_up() {
	[ -f "$pgdata/postmaster.pid" ] && kill -0 "$(head -n 1 "$pgdata/postmaster.pid")" 2>/dev/null
}

start_pg() {
	local bin
	bin=$(pgbin) || exit 69
	setup_pguser
	mkdir -p "$pgsock" "$logs"
	touch "$pglog"
	if [ -n "$pguser" ]; then
		chown "$pguser" "$pgsock" "$pglog"
		[ -d "$pgdata" ] && chown -R "$pguser" "$pgdata"
	fi
	chmod 700 "$pgsock"
	if [ ! -f "$pgdata/PG_VERSION" ]; then
		rm -rf "$pgdata"
		mkdir -p "$pgdata"
		[ -n "$pguser" ] && chown "$pguser" "$pgdata"
		as_pg "$bin/initdb" -D "$pgdata" -U labpulse -A trust -E UTF8 \
			--locale=C.UTF-8 -N >>"$pglog" 2>&1 ||
			as_pg "$bin/initdb" -D "$pgdata" -U labpulse -A trust -E UTF8 \
				--locale=C -N >>"$pglog" 2>&1 ||
			die 69 "initdb failed; see $pglog"
	fi
	if ! pg_up; then
		as_pg "$bin/pg_ctl" -D "$pgdata" -l "$pglog" -w -t 60 \
			-o "-c listen_addresses='' -c unix_socket_directories='$pgsock' -p $pgport -c max_connections=100" \
			start >/dev/null 2>&1 ||
			die 69 "PostgreSQL did not start; see $pglog"
	fi
	if ! psql -h "$pgsock" -p "$pgport" -U labpulse -d postgres -tAXc \
		"select 1 from pg_database where datname = 'labpulse'" 2>/dev/null | grep -q 1; then
		"$bin/createdb" -h "$pgsock" -p "$pgport" -U labpulse labpulse ||
			die 69 "cannot create the database labpulse"
	fi
}

redis_up() { [ -S "$redissock" ] && redis-cli -s "$redissock" ping 2>/dev/null | grep -q PONG; }

# When Redis writes its append-only file to the disk: everysec (the
# default) loses up to about a second of acknowledged events when the
# machine loses power, always none, at a cost `make bench` measures; see
# labpulse(7). Set on a Redis already running too, when the variable is set.
redis_fsync() {
	case ${LABPULSE_REDIS_FSYNC:-everysec} in
	always|everysec) echo "${LABPULSE_REDIS_FSYNC:-everysec}" ;;
	*) die 78 "LABPULSE_REDIS_FSYNC must be always or everysec, not '${LABPULSE_REDIS_FSYNC}'" ;;
	esac
}

start_redis() {
	local fsync
	command -v redis-server >/dev/null || die 69 "redis-server is not installed; run: make deps"
	fsync=$(redis_fsync) || exit 78
	mkdir -p "$redisdir" "$logs"
	if redis_up; then
		if [ -n "${LABPULSE_REDIS_FSYNC:-}" ]; then
			redis-cli -s "$redissock" config set appendfsync "$fsync" 2>&1 | grep -q '^OK' ||
				die 69 "cannot set appendfsync $fsync in the running Redis"
		fi
		return 0
	fi
	date +%s >"$run/redis.since"
	redis-server --port 0 --unixsocket "$redissock" --unixsocketperm 700 \
		--dir "$redisdir" --appendonly yes --appendfsync "$fsync" \
		--daemonize yes --pidfile "$run/redis.pid" \
		--logfile "$logs/redis.log" --save "" >/dev/null ||
		die 69 "Redis did not start; see $logs/redis.log"
	for _ in $(seq 100); do redis_up && return 0; sleep 0.1; done
	die 69 "Redis did not answer; see $logs/redis.log"
}

migrate() {
	local dir=${LABPULSE_MIGRATIONS:-}
	[ -x "$here/migrate-indexes" ] || return 0
	if [ -z "$dir" ]; then
		for d in "$here/../etc/migrations" "$here/../../share/labpulse/migrations"; do
			[ -d "$d" ] && { dir=$d; break; }
		done
	fi
	[ -n "$dir" ] || return 0
	PGHOST=$pgsock PGPORT=$pgport PGUSER=labpulse PGDATABASE=labpulse \
		"$here/migrate-indexes" --dir "$dir" up >>"$logs/migrate.log" 2>&1 ||
		die 69 "migrations failed; see $logs/migrate.log"
}

# A time as status shows it: UTC, to the second.
utc() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

# An HTTP daemon keeps its address across restarts: the first `up` chooses
# a free loopback port, $home/NAME.listen remembers what it bound, and every
# later `up` (after `down`, or bringing back a daemon that died) binds the
# same one, so that the URLs printed before stay good for the clients and
# dashboards that retry them. A new port is chosen below the ephemeral
# range, where no client's outgoing connection (a dashboard reconnecting
# while notify is away) can hold it.
port_taken() {	# port: something listens on 127.0.0.1:PORT
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
choose_port() {
	local lo p
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
	if [ "$lo" -gt 11024 ]; then
		for _ in $(seq 100); do
			p=$((10000 + RANDOM % (lo - 10000)))
			port_taken "$p" || { echo "$p"; return 0; }
		done
	fi
	echo 0		# the kernel's choice
}
# The address NAME is to listen on: GIVEN (a LABPULSE_*_LISTEN), else the
# one remembered, else a new free port.
listen_addr() {	# name given
	if [ -n "$2" ]; then
		echo "$2"
	elif [ -s "$home/$1.listen" ]; then
		cat "$home/$1.listen"
	else
		echo "127.0.0.1:$(choose_port)"
	fi
}
# Refuse, rather than move, when another process holds a remembered port.
check_listen() {	# name addr
	local port=${2##*:} who
	[ -s "$home/$1.listen" ] && [ "$(cat "$home/$1.listen")" = "$2" ] || return 0
	case $port in ''|*[!0-9]*|0) return 0 ;; esac
	port_taken "$port" || return 0
	who=$(ss -Hltnp "sport = :$port" 2>/dev/null |
		sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\),.*/ (\1, pid \2)/p' | head -n 1)
	die 69 "$1's address $2, kept in $home/$1.listen, is taken by another process$who; stop it, or remove that file to let up choose a new port"
}

# Each daemon runs under a small shell that waits for it and writes down
# when and how it ended in $run/NAME.exit ("TIME STATUS", STATUS as the
# shell's wait gives it: 128+N for signal N), which status shows for a
# daemon that died. The pid file still names the daemon itself, so that a
# signal sent to that pid reaches the daemon (down drains it with SIGTERM).
# The shell ignores the signals meant for the daemon, set after the fork
# so that the daemon does not inherit them ignored.
# The script reaches the shell in the environment, so that ps shows a
# short command line.
# shellcheck disable=SC2016
supervise='unset LABPULSE_SUPERVISE
pidf=$1 exitf=$2 name=$3; shift 3
"$@" &
pid=$!
echo "$pid" >"$pidf.new" && mv -f "$pidf.new" "$pidf"
trap "" HUP INT TERM
wait "$pid"
rc=$?
echo "$(date +%s) $rc" >"$exitf.new" && mv -f "$exitf.new" "$exitf"
if [ "$rc" -gt 128 ]; then
	echo "labpulse: warning: $name died pid=$pid signal=$(kill -l "$rc")"
elif [ "$rc" -ne 0 ]; then
	echo "labpulse: warning: $name died pid=$pid status=$rc"
fi'

# How an exit record says the daemon ended: "killed by signal 9 (KILL)",
# "exited 69".
how_ended() {	# wait status
	if [ "$1" -gt 128 ]; then
		echo "killed by signal $(($1 - 128)) ($(kill -l "$1" 2>/dev/null || echo '?'))"
	else
		echo "exited $1"
	fi
}

# Start one daemon in the background and wait for its "ready" log line,
# which carries the address it listens on.
start_daemon() {
	local name=$1; shift
	local pidf=$run/$name.pid logf=$logs/$name.log off line addr sup end rc
	# batch-commit-2 and the like run batch-commit
	local bin=${name%-[0-9]*}
	alive "$pidf" && return 0
	if read -r end rc 2>/dev/null <"$run/$name.exit"; then
		info "$name died at $(utc "$end"), $(how_ended "$rc"); starting it again"
	fi
	rm -f "$pidf" "$run/$name.exit"
	touch "$logf"
	off=$(stat -c %s "$logf")
	date +%s >"$run/$name.since"
	# shellcheck disable=SC2016
	LABPULSE_RUNDIR=$run LABPULSE_REDIS=unix:$redissock \
	PGHOST=$pgsock PGPORT=$pgport PGUSER=labpulse PGDATABASE=labpulse \
	LABPULSE_SUPERVISE=$supervise \
		setsid sh -c 'eval "$LABPULSE_SUPERVISE"' labpulse-supervise \
		"$pidf" "$run/$name.exit" "$name" \
		"$here/$bin" --stats "$run/$name.sock" "$@" \
		</dev/null >>"$logf" 2>&1 &
	sup=$!
	for _ in $(seq 100); do
		[ -s "$pidf" ] && break
		kill -0 "$sup" 2>/dev/null || break
		sleep 0.02
	done
	for _ in $(seq 200); do
		line=$(tail -c +$((off + 1)) "$logf" | grep -m 1 ': info: ready ')
		if [ -n "$line" ]; then
			addr=$(printf '%s\n' "$line" | sed -n 's/.* listen=\([^ ]*\).*/\1/p')
			if [ -n "$addr" ]; then
				echo "http://$addr" >"$run/$name.addr"
				echo "$addr" >"$home/$name.listen"
			else
				echo "unix:$run/$name.sock" >"$run/$name.addr"
			fi
			return 0
		fi
		alive "$pidf" || break
		sleep 0.05
	done
	tail -n 5 "$logf" >&2
	die 69 "$name did not become ready; see $logf"
}

wait_healthy() {
	local url=$1
	for _ in $(seq 100); do
		curl -fsS -o /dev/null --max-time 2 "$url/healthz" 2>/dev/null && return 0
		sleep 0.1
	done
	die 69 "$url/healthz did not answer 200"
}

print_env() {
	local q="'"
	echo "export LABPULSE_HOME=$q$home$q"
	echo "export LABPULSE_RUNDIR=$q$run$q"
	echo "export PGHOST=$q$pgsock$q"
	echo "export PGPORT=$q$pgport$q"
	echo "export PGDATABASE=${q}labpulse$q"
	echo "export PGUSER=${q}labpulse$q"
	echo "export LABPULSE_REDIS=${q}unix:$redissock$q"
	[ -f "$run/ingest.addr" ] &&
		echo "export LABPULSE_INGEST_URL=$q$(cat "$run/ingest.addr")$q"
	[ -f "$run/notify.addr" ] &&
		echo "export LABPULSE_NOTIFY_URL=$q$(cat "$run/notify.addr")$q"
	return 0
}

# Stopped by down, a daemon is stopped, not dead: its exit record goes too,
# once its supervising shell wrote it.
stop_daemon() {
	local name=$1 pidf=$run/$1.pid pid
	alive "$pidf" || { rm -f "$pidf" "$run/$name.addr" "$run/$name.exit" "$run/$name.since"; return 0; }
	pid=$(cat "$pidf")
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then
		info "$name did not drain in 15 s; killing it"
		kill -KILL "$pid" 2>/dev/null
	fi
	for _ in $(seq 100); do [ -f "$run/$name.exit" ] && break; sleep 0.02; done
	rm -f "$pidf" "$run/$name.addr" "$run/$name.exit" "$run/$name.since"
}

# The consumers of the group commit: want of them, each a consumer name of
# its own (stack-HOST for the first, as before; stack-HOST-K after); those
# beyond want, from an earlier up, stopped.
start_committers() {
	local k=1 name suffix d
	for d in $(committer_names); do
		[ "${d#batch-commit-}" != "$d" ] && [ "${d#batch-commit-}" -gt "$1" ] &&
			stop_daemon "$d"
	done
	echo "$1" >"$home/committers"
	while [ "$k" -le "$1" ]; do
		name=batch-commit suffix=
		[ "$k" -gt 1 ] && name=batch-commit-$k suffix=-$k
		start_daemon "$name" --consumer "stack-$(hostname)$suffix" \
			--trim-interval "${LABPULSE_TRIM_INTERVAL:-5s}"
		k=$((k + 1))
	done
}

cmd_up() {
	local addr want
	redis_fsync >/dev/null || exit 78	# before anything starts
	want=$(committers) || exit 78
	mkdir -p "$run" "$logs"
	start_pg
	start_redis
	migrate
	# One address posts flat out here (loadgen, the benchmarks, tests): the
	# bounds per address and token are off. The backlog bound stays, unless
	# LABPULSE_INGEST_FLAGS (split on blanks) says otherwise.
	addr=$(listen_addr ingest "${LABPULSE_INGEST_LISTEN:-}")
	alive "$run/ingest.pid" || check_listen ingest "$addr"
	# shellcheck disable=SC2086
	start_daemon ingest --listen "$addr" \
		--max-conns-per-addr 0 --rate-per-addr 0 --rate-per-token 0 \
		${LABPULSE_INGEST_FLAGS:-}
	wait_healthy "$(cat "$run/ingest.addr")"
	start_committers "$want"
	start_daemon route --consumer "stack-$(hostname)" \
		--trim-interval "${LABPULSE_TRIM_INTERVAL:-5s}"
	addr=$(listen_addr notify "${LABPULSE_NOTIFY_LISTEN:-}")
	alive "$run/notify.pid" || check_listen notify "$addr"
	start_daemon notify --listen "$addr"
	wait_healthy "$(cat "$run/notify.addr")"
	print_env
}

cmd_down() {
	local d bin
	for d in $(daemon_names); do stop_daemon "$d"; done
	if redis_up; then
		redis-cli -s "$redissock" shutdown >/dev/null 2>&1
		for _ in $(seq 100); do redis_up || break; sleep 0.1; done
	fi
	rm -f "$run/redis.pid" "$run/redis.since"
	if pg_up; then
		bin=$(pgbin) || exit 69
		setup_pguser
		as_pg "$bin/pg_ctl" -D "$pgdata" -m fast -w -t 60 stop >/dev/null 2>&1 ||
			die 69 "PostgreSQL did not stop; see $pglog"
	fi
	return 0
}

# One line a part: running, with its pid, since when and its address;
# stopped (never started, or by down); or, for a daemon, died: when and how.
cmd_status() {
	local all=0 d pid since end rc
	if pg_up; then
		pid=$(head -n 1 "$pgdata/postmaster.pid")
		since=$(sed -n 3p "$pgdata/postmaster.pid")
		printf '%-14s %-8s pid %-7s since %s  unix:%s/.s.PGSQL.%s\n' postgres running \
			"$pid" "$(utc "$since")" "$pgsock" "$pgport"
	else
		printf '%-14s %s\n' postgres stopped; all=3
	fi
	if redis_up; then
		since=$(cat "$run/redis.since" 2>/dev/null) ||
			since=$(( $(date +%s) - $(redis-cli -s "$redissock" info server |
				sed -n 's/^uptime_in_seconds:\([0-9]*\).*/\1/p') ))
		printf '%-14s %-8s pid %-7s since %s  unix:%s\n' redis running \
			"$(cat "$run/redis.pid" 2>/dev/null)" "$(utc "$since")" "$redissock"
	else
		printf '%-14s %s\n' redis stopped; all=3
	fi
	for d in $(daemon_names); do
		pid=$(cat "$run/$d.pid" 2>/dev/null)
		if alive "$run/$d.pid"; then
			since=$(cat "$run/$d.since" 2>/dev/null) || since=$(stat -c %Y "$run/$d.pid")
			printf '%-14s %-8s pid %-7s since %s  %s\n' "$d" running "$pid" \
				"$(utc "$since")" "$(cat "$run/$d.addr" 2>/dev/null)"
		elif [ -n "$pid" ] && read -r end rc 2>/dev/null <"$run/$d.exit"; then
			printf '%-14s %-8s pid %-7s at    %s  %s\n' "$d" died "$pid" \
				"$(utc "$end")" "$(how_ended "$rc")"
			all=3
		elif [ -n "$pid" ]; then
			# its supervising shell is gone too (killed, or the machine
			# restarted): neither when nor how is known
			printf '%-14s %-8s pid %-7s at    ?  how unknown\n' "$d" died "$pid"
			all=3
		else
			printf '%-14s %s\n' "$d" stopped; all=3
		fi
	done
	return $all
}

cmd_env() {
	pg_up && redis_up || die 69 "the stack in $home is not up; start it with: labpulse up"
	print_env
}

# Instructors and their tokens, in the database named by PG* variables or
# DATABASE_URL, else in the local stack's. Only a token's SHA-256 is stored.
instructor_usage() {
	cat >&"${1:-2}" <<-'EOF'
	usage: labpulse instructor add NAME CLASS...
	       labpulse instructor list
	       labpulse instructor revoke NAME
	EOF
}

ipsql() {
	if [ -z "${PGHOST:-}${PGDATABASE:-}${PGSERVICE:-}${DATABASE_URL:-}" ]; then
		pg_up || die 69 "no database: set PG* variables or DATABASE_URL, or start the local stack with: labpulse up"
		PGHOST=$pgsock PGPORT=$pgport PGUSER=labpulse PGDATABASE=labpulse \
			psql -X -q -v ON_ERROR_STOP=1 "$@"
	elif [ -n "${DATABASE_URL:-}" ] && [ -z "${PGHOST:-}${PGDATABASE:-}" ]; then
		psql -X -q -v ON_ERROR_STOP=1 -d "$DATABASE_URL" "$@"
	else
		psql -X -q -v ON_ERROR_STOP=1 "$@"
	fi
}

# A name or class: 1 to 120 characters, no control character but, in a
# class (ingest takes any string), a tab. Refused here because `list` shows
# them on a terminal; anything else reaches the database byte for byte.
valid_name() {	# what: the thing named; value
	local v=$2
	[ -n "$v" ] || die 64 "$1 must not be empty"
	[ "${#v}" -le 120 ] || die 64 "$1 must be at most 120 bytes: $v"
	[ "$1" = CLASS ] && v=${v//$'\t'/ }
	case $v in *[[:cntrl:]]*) die 64 "$1 must not hold control characters" ;; esac
}

cmd_instructor() {
	local sub=${1:-} name token out c n values vars
	[ $# -gt 0 ] && shift
	case $sub in
	add)
		[ $# -ge 2 ] || { echo "$prog: error: add needs a NAME and at least one CLASS" >&2; instructor_usage; exit 64; }
		name=$1; shift
		valid_name NAME "$name"
		for c in "$@"; do valid_name CLASS "$c"; done
		token=$(head -c 32 /dev/urandom | base64 -w 0 | tr '+/' '-_' | tr -d '=')
		# Each class is a psql variable, quoted by psql as a literal
		# (:'cN'): its bytes arrive as given, where COPY's text format
		# took CS\101 for CSA and a tab for a column break.
		vars=() values=
		n=0
		for c in "$@"; do
			n=$((n + 1))
			vars+=(-v "c$n=$c")
			values+="${values:+, }(:'c$n')"
		done
		# the token reaches psql in its script, not on a command line
		# that ps shows
		sql=$(printf '\\set token %s\n' "$token"; cat <<-'SQL'
		BEGIN;
		SELECT count(*) > 0 AS exists FROM instructors WHERE name = :'name' AND disabled_at IS NULL \gset
		\if :exists
		\echo instructor exists
		ROLLBACK;
		\quit
		\endif
		WITH i AS (INSERT INTO instructors (name, token_hash)
			VALUES (:'name', encode(sha256(convert_to(:'token', 'UTF8')), 'hex'))
			RETURNING id)
		INSERT INTO instructor_classes (instructor_id, class_id)
			SELECT DISTINCT i.id, n.class_id FROM i,
		SQL
		printf '\t\t(VALUES %s) AS n (class_id);\nCOMMIT;\n' "$values"
		)
		out=$(ipsql -v name="$name" "${vars[@]}" -tA -f /dev/fd/3 3<<<"$sql" </dev/null 2>&1
		) || die 69 "cannot add the instructor: $out"
		case $out in *"instructor exists"*)
			die 65 "instructor $name exists; revoke it first or choose another name" ;;
		esac
		info "instructor $name may watch: $*; the token below is shown only now"
		printf '%s\n' "$token"
		;;
	list)
		[ $# -eq 0 ] || { instructor_usage; exit 64; }
		ipsql -c "SELECT i.name, coalesce(string_agg(c.class_id, ' ' ORDER BY c.class_id), '') AS classes,
			to_char(i.created_at, 'YYYY-MM-DD HH24:MI') AS created,
			CASE WHEN i.disabled_at IS NULL THEN 'active' ELSE 'revoked ' || to_char(i.disabled_at, 'YYYY-MM-DD HH24:MI') END AS state
			FROM instructors i LEFT JOIN instructor_classes c ON c.instructor_id = i.id
			GROUP BY i.id ORDER BY i.name, i.id" ||
			die 69 "cannot list the instructors"
		;;
	revoke)
		[ $# -eq 1 ] || { echo "$prog: error: revoke needs one NAME" >&2; instructor_usage; exit 64; }
		out=$(ipsql -v name="$1" -tA -f - <<-'SQL' 2>&1
		-- one statement, one transaction: every notify that LISTENs
		-- hears of the token (by its digest) once the revocation commits
		WITH r AS (UPDATE instructors SET disabled_at = now()
			WHERE name = :'name' AND disabled_at IS NULL RETURNING token_hash)
		SELECT count(*) FROM (SELECT pg_notify('labpulse_revoke', token_hash) FROM r) AS n;
		SQL
		) || die 69 "cannot revoke: $out"
		[ "$out" = 1 ] || die 65 "no active instructor named $1"
		info "instructor $1 revoked; every notify closes the dashboards it has open"
		;;
	-h|--help) instructor_usage 1; exit 0 ;;
	*) [ -n "$sub" ] && echo "$prog: error: unknown instructor command '$sub'" >&2
	   instructor_usage; exit 64 ;;
	esac
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
env) cmd_env ;;
instructor) shift; cmd_instructor "$@" ;;
*) echo "usage: labpulse up | down | status | env | instructor" >&2; exit 64 ;;
esac
