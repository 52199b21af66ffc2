# pg-ha.bash: PostgreSQL as a campus runs it, for the tests that need more
# than the stack's one server: a primary and streaming standbys on loopback
# TCP, each in a temporary folder of its own, and PgBouncer in front of a
# node in transaction pooling mode. Load it after helper/common. Every
# server started here is recorded, and pgha_down (teardown_file) stops it
# whatever the outcome; PgBouncer is tracked as any process (stop_tracked).
#
#   pgha_primary NAME          a new cluster, database labpulse
#   pgha_standby NAME FROM     a copy of node FROM (pg_basebackup -R), streaming
#   pgha_promote NAME          the standby becomes a primary
#   pgha_stop NAME [MODE]      pg_ctl stop -m MODE (fast)
#   pgb_start NAME NODE [SIZE] PgBouncer, pool_mode = transaction
#   pgha_down                  every node stopped, its folder removed
#
# A node NAME sets NAME_PORT and NAME_DB (a conninfo of database labpulse);
# a PgBouncer NAME sets NAME_PORT, NAME_DB (through it, user labpulse) and
# NAME_ADMIN (its admin console, where SHOW POOLS answers), all exported
# so that the tests of a file see what its setup_file started.

PGHA_NODES=$BATS_FILE_TMPDIR/pgha.nodes
# A bound for every wait here: generous, for a busy machine.
PGHA_WAIT_S=${PGHA_WAIT_S:-60}

# The folder of PostgreSQL's server programs, as the stack finds it.
pgha_bin() {
	local d
	d=$(pg_config --bindir 2>/dev/null)
	[ -x "$d/initdb" ] || d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	[ -x "$d/initdb" ] || { echo "pg-ha: PostgreSQL's server programs are not installed" >&2; return 1; }
	echo "$d"
}

# PostgreSQL and PgBouncer refuse to run as root: then they run as the
# system user labpulse (the one the stack uses, made the same way).
pgha_user() {
	if [ "$(id -u)" -ne 0 ]; then
		id -un
		return
	fi
	id -u labpulse >/dev/null 2>&1 ||
		useradd --system --no-create-home --shell /usr/sbin/nologin labpulse 2>/dev/null ||
		id -u labpulse >/dev/null 2>&1 ||
		{ echo "pg-ha: cannot create the system user labpulse" >&2; return 1; }
	echo labpulse
}

# as_pgha CMD...: CMD as that user.
as_pgha() {
	local u
	u=$(pgha_user) || return 1
	if [ "$u" = "$(id -un)" ]; then
		"$@"
	else
		setpriv --reuid="$u" --regid="$(id -g "$u")" --clear-groups "$@"
	fi
}

# pgha_dir NAME: a new folder for NAME, outside bats' private folder so that
# the unprivileged user reaches it; prints its path.
pgha_dir() {
	local d
	d=$(mktemp -d "${TMPDIR:-/tmp}/labpulse-pgha-$1.XXXXXX") || return 1
	chmod 755 "$d"
	chown "$(pgha_user)" "$d" || return 1
	echo "$d"
}

# pgha_field NAME FIELD: what the record of node NAME holds (dir, port).
pgha_field() {
	awk -v n="$1" -v f="$2" '$1 == n { print (f == "dir" ? $2 : $3) }' "$PGHA_NODES" 2>/dev/null | tail -n 1
}

# pgha_sql NAME SQL: SQL's answer from node NAME, unaligned, no header.
pgha_sql() {
	psql -h 127.0.0.1 -p "$(pgha_field "$1" port)" -U labpulse -d postgres \
		-XtAq -v ON_ERROR_STOP=1 -c "$2"
}

# pgha_export NAME PORT DB: the variables a node or PgBouncer NAME sets.
pgha_export() {
	printf -v "${1}_PORT" '%s' "$2"
	printf -v "${1}_DB" '%s' "$3"
	export "${1}_PORT" "${1}_DB"
}

# pgha_start NAME DIR PORT: the server of DIR on 127.0.0.1:PORT (its socket
# in DIR), recorded for pgha_down before it starts.
pgha_start() {
	local bin
	bin=$(pgha_bin) || return 1
	echo "$1 $2 $3" >>"$PGHA_NODES"
	as_pgha "$bin/pg_ctl" -D "$2/data" -l "$2/log" -w -t "$PGHA_WAIT_S" \
		-o "-c listen_addresses=127.0.0.1 -c unix_socket_directories='$2' -p $3 -c max_connections=50 -c fsync=off" \
		start >/dev/null || { cat "$2/log" >&2; return 1; }
	pgha_export "$1" "$3" "host=127.0.0.1 port=$3 user=labpulse dbname=labpulse"
}

pgha_primary() {
	local name=$1 dir bin port
	bin=$(pgha_bin) || return 1
	dir=$(pgha_dir "$name") || return 1
	port=$(free_port) || return 1
	as_pgha "$bin/initdb" -D "$dir/data" -U labpulse -A trust -E UTF8 \
		--locale=C -N >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
	pgha_start "$name" "$dir" "$port" || return 1
	pgha_sql "$name" "create database labpulse" >/dev/null
}

# pgha_standby NAME FROM: a base backup of FROM with the standby's settings
# (-R), started, and waited for until it streams from FROM.
pgha_standby() {
	local name=$1 from=$2 dir bin port
	bin=$(pgha_bin) || return 1
	dir=$(pgha_dir "$name") || return 1
	port=$(free_port) || return 1
	as_pgha "$bin/pg_basebackup" -h 127.0.0.1 -p "$(pgha_field "$from" port)" \
		-U labpulse -D "$dir/data" -R -X stream -c fast >"$dir/basebackup.log" 2>&1 ||
		{ cat "$dir/basebackup.log" >&2; return 1; }
	pgha_start "$name" "$dir" "$port" || return 1
	pgha_wait_streaming "$name"
}

# pgha_until SECONDS 'SHELL TEXT': the text, evaluated every 0.1 s, until it
# succeeds; fails when it did not within the bound.
pgha_until() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		eval "$2" && return 0
		sleep 0.1
	done
	return 1
}

pgha_wait_streaming() {
	pgha_until "$PGHA_WAIT_S" \
		"[ \"\$(pgha_sql '$1' 'select status from pg_stat_wal_receiver' 2>/dev/null)\" = streaming ]" ||
		{ echo "pg-ha: $1 does not stream" >&2; return 1; }
}

# pgha_promote NAME: pg_ctl promote, and the node out of recovery.
pgha_promote() {
	local bin
	bin=$(pgha_bin) || return 1
	as_pgha "$bin/pg_ctl" -D "$(pgha_field "$1" dir)/data" -w -t "$PGHA_WAIT_S" promote >/dev/null || return 1
	pgha_until "$PGHA_WAIT_S" "[ \"\$(pgha_sql '$1' 'select pg_is_in_recovery()' 2>/dev/null)\" = f ]"
}

# pgha_stop NAME [MODE]: the node stopped (fast by default; immediate is a
# crash); already stopped is fine.
pgha_stop() {
	local bin dir
	bin=$(pgha_bin) || return 1
	dir=$(pgha_field "$1" dir)
	[ -f "$dir/data/postmaster.pid" ] || return 0
	as_pgha "$bin/pg_ctl" -D "$dir/data" -m "${2:-fast}" -w -t "$PGHA_WAIT_S" stop >/dev/null 2>&1 ||
		as_pgha "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t "$PGHA_WAIT_S" stop >/dev/null 2>&1
	[ ! -f "$dir/data/postmaster.pid" ]
}

# pgha_down: every node of the file stopped and its folder removed; never
# fails, so that the rest of teardown_file runs.
pgha_down() {
	local name dir port
	[ -f "$PGHA_NODES" ] || return 0
	while read -r name dir port; do
		pgha_stop "$name" immediate || true
	done <"$PGHA_NODES"
	while read -r name dir port; do
		[[ $dir == */labpulse-pgha-* ]] && rm -rf "$dir"
	done <"$PGHA_NODES"
	rm -f "$PGHA_NODES"
	return 0
}

# pgb_start NAME NODE [POOL_SIZE]: PgBouncer on a free loopback port in front
# of node NODE's database labpulse, pool_mode = transaction, POOL_SIZE (2)
# server connections. Clients log in as labpulse with password labpulse
# (its auth file; the node itself trusts PgBouncer); labpulse is also the
# admin of its console.
pgb_start() {
	local name=$1 node=$2 size=${3:-2} dir port pid admin
	dir=$(pgha_dir "$name") || return 1
	port=$(free_port) || return 1
	echo '"labpulse" "labpulse"' >"$dir/users.txt"
	cat >"$dir/pgbouncer.ini" <<-EOF
	[databases]
	labpulse = host=127.0.0.1 port=$(pgha_field "$node" port) dbname=labpulse user=labpulse
	[pgbouncer]
	listen_addr = 127.0.0.1
	listen_port = $port
	unix_socket_dir =
	auth_type = md5
	auth_file = $dir/users.txt
	admin_users = labpulse
	pool_mode = transaction
	default_pool_size = $size
	min_pool_size = 0
	reserve_pool_size = 0
	max_client_conn = 100
	server_login_retry = 1
	server_connect_timeout = 2
	; a client whose server is gone waits in the queue this long (120 s by
	; default) before it is told: a failover must not take that long
	query_wait_timeout = 5
	EOF
	chown "$(pgha_user)" "$dir"/*
	echo "$name $dir $port pgbouncer" >>"$PGHA_NODES"
	as_pgha pgbouncer "$dir/pgbouncer.ini" </dev/null >"$dir/pgbouncer.log" 2>&1 3>&- &
	pid=$!
	track "$pid"
	admin="host=127.0.0.1 port=$port user=labpulse password=labpulse dbname=pgbouncer"
	printf -v "${name}_ADMIN" '%s' "$admin"
	export "${name}_ADMIN"
	pgha_export "$name" "$port" "host=127.0.0.1 port=$port user=labpulse password=labpulse dbname=labpulse"
	pgha_until "$PGHA_WAIT_S" "psql -XtAq -d '$admin' -c 'show version' >/dev/null 2>&1" ||
		{ cat "$dir/pgbouncer.log" >&2; return 1; }
}

# pgha_gen CLASS FROM TO: events FROM to TO-1 of CLASS as NDJSON, 20
# students, three notebooks, types and errors that vary, a second apart.
pgha_gen() {
	awk -v c="$1" -v from="$2" -v to="$3" 'BEGIN {
		split("cell_executed notebook_saved help", types, " ")
		for (i = from; i < to; i++)
			printf "{\"eventId\":\"%s-%d\",\"eventType\":\"%s\",\"classId\":\"%s\",\"emailAddress\":\"s%d@x.edu\",\"notebookPath\":\"nb%d.ipynb\",\"eventTime\":\"2026-12-06T%02d:%02d:%02dZ\",\"hasError\":%s}\n",
			    c, i, types[i % 3 + 1], c, i % 20, i % 3, 8 + int(i / 3600), int(i % 3600 / 60), i % 60,
			    i % 7 == 0 ? "true" : "false"
	}'
}

# pgha_xadd STREAM: each NDJSON line of standard input an entry of
# labpulse:STREAM, in the Redis of $LABPULSE_REDIS (unix:PATH).
pgha_xadd() {
	local key=labpulse:$1 l
	while IFS= read -r l; do
		LC_ALL=C printf '*5\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$5\r\nevent\r\n$%d\r\n%s\r\n' \
			"${#key}" "$key" "$(LC_ALL=C; echo ${#l})" "$l"
	done | redis-cli -s "${LABPULSE_REDIS#unix:}" --pipe >/dev/null
}
