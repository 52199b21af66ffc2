#!/bin/bash
# setup: `labpulse setup`, what the systemd units need of this host before
# their first start: a system user labpulse, PostgreSQL's role and database
# labpulse with the schema, and a Redis that keeps what ingest acknowledged.
set -eu

prog=labpulse
here=$(cd "$(dirname "$0")" && pwd)
# Filled in when bin/setup is made: the install's places.
sysconfdir=@SYSCONFDIR@
envfile=@ENVFILE@
user=labpulse

die() { code=$1; shift; echo "$prog: error: $*" >&2; exit "$code"; }
info() { echo "$prog: info: $*" >&2; }
# A change made: said, and counted, so that a run that made none says so.
changes=0
did() { changes=$((changes + 1)); info "$*"; }
finish() {
	if [ "$changes" -eq 0 ]; then info "nothing changed"
	elif [ "$changes" -eq 1 ]; then info "1 change made"
	else info "$changes changes made"; fi
	exit 0
}

usage() {
	cat >&"$1" <<-'EOF'
	usage: labpulse setup [--no-redis] [--redis URL] [--set-redis]
	       labpulse setup --help
	EOF
}

# The front passes the command's name first, as it does to the stack.
[ "${1:-}" = setup ] && shift

redis_url='' set_redis=0 check_redis=1
while [ $# -gt 0 ]; do
	case $1 in
	--no-redis) check_redis=0 ;;
	--redis)
		[ $# -ge 2 ] || { echo "$prog: error: --redis needs a URL" >&2; usage 2; exit 64; }
		redis_url=$2; shift ;;
	--redis=*) redis_url=${1#--redis=} ;;
	--set-redis) set_redis=1 ;;
	-h|--help) usage 1; exit 0 ;;
	*) echo "$prog: error: unknown option '$1'" >&2; usage 2; exit 64 ;;
	esac
	shift
done
[ "$check_redis" = 1 ] || [ "$set_redis" = 0 ] ||
	{ echo "$prog: error: --set-redis conflicts with --no-redis" >&2; usage 2; exit 64; }

[ "$(id -u)" -eq 0 ] ||
	die 77 "setup creates a system user and a PostgreSQL role: run it as root (sudo labpulse setup)"

# This host's PostgreSQL, on its own socket: what the caller's PG* variables
# name is not what the units reach.
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGSERVICE PGOPTIONS \
	PGPASSWORD PGPASSFILE DATABASE_URL
# The users below cannot reach the caller's folder (/root).
cd /

# --- the system user ---------------------------------------------------
# With DynamicUser= the units would get a new uid at every start; a system
# user of that name is taken instead, so that files can be given to it (the
# token file, a password file), and root reaches the database as it
# (runuser -u labpulse) by the same peer authentication as the units.
if id -u "$user" >/dev/null 2>&1; then
	info "the system user $user exists"
else
	useradd --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin "$user" ||
		die 69 "cannot create the system user $user"
	did "created the system user $user"
fi

# --- PostgreSQL --------------------------------------------------------
command -v psql >/dev/null 2>&1 ||
	die 69 "psql is not installed; install PostgreSQL (apt-get install postgresql)"
id -u postgres >/dev/null 2>&1 ||
	die 69 "no system user postgres: is PostgreSQL installed on this host?"

# One query as PostgreSQL's superuser, over the local socket.
pg() {
	runuser -u postgres -- psql -X -q -tA -v ON_ERROR_STOP=1 -d postgres "$@"
}

out=$(pg -c 'select 1' 2>&1) || die 69 "cannot reach this host's PostgreSQL as its user postgres: $out (is it running? systemctl status postgresql)"

login=$(pg -c "select rolcanlogin from pg_roles where rolname = '$user'")
case $login in
t) info "the role $user exists" ;;
f)	pg -c "alter role $user login" >/dev/null
	did "the role $user may now log in" ;;
*)	pg -c "create role $user login" >/dev/null
	did "created the role $user" ;;
esac

owner=$(pg -c "select pg_get_userbyid(datdba) || ' ' || pg_encoding_to_char(encoding) from pg_database where datname = '$user'")
if [ -z "$owner" ]; then
	# Events are UTF-8 JSON: a cluster made in another encoding gets a
	# UTF-8 database all the same.
	if [ "$(pg -c "select pg_encoding_to_char(encoding) from pg_database where datname = 'template1'")" = UTF8 ]; then
		pg -c "create database $user owner $user" >/dev/null
	else
		pg -c "create database $user owner $user encoding 'UTF8' locale 'C.UTF-8' template template0" >/dev/null
	fi
	did "created the database $user, owned by the role $user"
else
	[ "${owner% *}" = "$user" ] ||
		die 78 "the database $user exists and belongs to the role ${owner% *}, not to $user; give it to $user (alter database $user owner to $user) only if $user may own all of it, or drop it"
	[ "${owner#* }" = UTF8 ] ||
		die 78 "the database $user is in the encoding ${owner#* }, not UTF8; events are UTF-8 JSON"
	info "the database $user exists, owned by the role $user"
fi

# The units reach PostgreSQL as the system user labpulse, by peer
# authentication (Debian's pg_hba.conf: local all all peer).
as_user() { runuser -u "$user" -- "$@"; }
out=$(as_user psql -X -q -tA -d "$user" -c 'select current_user' 2>&1) || true
[ "$out" = "$user" ] ||
	die 78 "the system user $user cannot log in as the role $user over the local socket: $out; pg_hba.conf needs the line: local $user $user peer"

# The schema, made by the role labpulse so that it owns every object.
migrate=$here/migrate-indexes
dir=${LABPULSE_MIGRATIONS:-}
if [ -z "$dir" ]; then
	for d in "$here/../etc/migrations" "$here/../../share/labpulse/migrations"; do
		[ -d "$d" ] && { dir=$(cd "$d" && pwd); break; }
	done
fi
[ -n "$dir" ] || die 69 "no migrations beside $here; set LABPULSE_MIGRATIONS"
as_user test -x "$migrate" -a -r "$dir" ||
	die 69 "the system user $user cannot reach $migrate or $dir; run the installed labpulse (make install)"
out=$(as_user env LABPULSE_MIGRATIONS="$dir" "$migrate" up 2>&1) ||
	die 69 "the migrations failed: $out"
printf '%s\n' "$out" | sed "s/^/$prog: info: schema: /" >&2
case $out in "nothing to apply"*) ;; *) changes=$((changes + 1)) ;; esac

# --- the token file ----------------------------------------------------
# ingest --token-file runs as labpulse: the file is for its group only.
tokens=$sysconfdir/labpulse/tokens
if [ -f "$tokens" ]; then
	if [ "$(stat -c "%G %a" "$tokens")" = "$(id -gn "$user") 640" ]; then
		info "$tokens is root's, readable by the group $user only"
	else
		{ chown "root:$(id -gn "$user")" "$tokens" && chmod 640 "$tokens"; } ||
			die 69 "cannot give $tokens to the group $user"
		did "$tokens is now root's, readable by the group $user only"
	fi
fi

# --- Redis -------------------------------------------------------------
[ "$check_redis" = 1 ] || { info "Redis not checked (--no-redis)"; finish; }
command -v redis-cli >/dev/null 2>&1 ||
	die 69 "redis-cli is not installed; install Redis (apt-get install redis-server) or use --no-redis"

# The Redis the units use: --redis, else LABPULSE_REDIS of the environment
# file, else the programs' default.
if [ -z "$redis_url" ] && [ -r "$envfile" ]; then
	redis_url=$(sed -n 's/^[[:blank:]]*LABPULSE_REDIS=//p' "$envfile" | tail -n 1)
	redis_url=${redis_url#[\"\']}; redis_url=${redis_url%[\"\']}
fi
redis_url=${redis_url:-redis://127.0.0.1:6379/0}
# what messages show of it: no password
shown=$(printf '%s' "$redis_url" | sed 's|//[^@/]*@|//***@|')
case $redis_url in
unix:*)
	p=${redis_url#unix:}
	rc=(redis-cli -s "${p%%\?*}")
	case $p in *\?db=*) rc+=(-n "${p##*\?db=}") ;; esac ;;
redis://*) rc=(redis-cli --no-auth-warning -u "$redis_url") ;;
sentinel://*)
	# the primary the sentinels name now, checked as the units will
	# find it; the password is the Redis nodes', the sentinels take none
	rest=${redis_url#sentinel://} pw=
	case $rest in *@*) pw=${rest%@*}; pw=${pw#*:}; rest=${rest##*@} ;; esac
	case $rest in */?*) ;; *) die 64 "--redis must be sentinel://HOST:PORT[,HOST:PORT...]/MASTER[/DB], not '$shown'" ;; esac
	master=${rest#*/} db=0
	case $master in */*) db=${master#*/}; master=${master%%/*} ;; esac
	primary=
	for s in $(printf '%s' "${rest%%/*}" | tr , ' '); do
		primary=$(redis-cli -h "${s%:*}" -p "${s##*:}" sentinel get-master-addr-by-name "$master" 2>/dev/null |
			paste -sd: -) || primary=
		case $primary in ?*:?*) break ;; *) primary= ;; esac
	done
	[ -n "$primary" ] || die 69 "cannot reach Redis at $shown: no sentinel names master '$master'"
	shown="$shown (primary $primary)"
	export REDISCLI_AUTH=$pw
	[ -n "$pw" ] || unset REDISCLI_AUTH
	rc=(redis-cli -h "${primary%:*}" -p "${primary##*:}" -n "${db:-0}") ;;
*) die 64 "--redis must be redis://HOST[:PORT][/DB], sentinel://HOST:PORT[,HOST:PORT...]/MASTER[/DB] or unix:PATH, not '$shown'" ;;
esac

rconf() { "${rc[@]}" config get "$1" 2>&1 | sed -n 2p; }
out=$("${rc[@]}" ping 2>&1) || true
[ "$out" = PONG ] || die 69 "cannot reach Redis at $shown: $out"

# What labpulse(7) asks of Redis: the append-only file, synced always or
# every second, and no eviction (a full Redis refuses writes, and ingest
# answers 503, rather than losing stream entries).
wrong=()
[ "$(rconf appendonly)" = yes ] || wrong+=("appendonly yes")
case $(rconf appendfsync) in
always) ;;
everysec) info "Redis: appendfsync everysec: a power loss may cost about the last second of acknowledged events (always loses none; see labpulse(7))" ;;
*) wrong+=("appendfsync everysec") ;;
esac
[ "$(rconf maxmemory-policy)" = noeviction ] || wrong+=("maxmemory-policy noeviction")
[ "$(rconf maxmemory)" != 0 ] ||
	info "Redis: no maxmemory: it grows until the machine runs out; set maxmemory to what the machine can spare"

if [ ${#wrong[@]} -eq 0 ]; then
	info "Redis at $shown keeps what ingest acknowledges: nothing to change"
	finish
fi
if [ "$set_redis" = 0 ]; then
	for w in "${wrong[@]}"; do
		echo "$prog: error: Redis at $shown: ${w% *} is $(rconf "${w% *}"), not ${w#* }" >&2
	done
	echo "$prog: error: put these lines in redis.conf and restart Redis, or run: labpulse setup --set-redis" >&2
	printf '    %s\n' "${wrong[@]}" >&2
	exit 78
fi
for w in "${wrong[@]}"; do
	out=$("${rc[@]}" config set "${w% *}" "${w#* }" 2>&1) || true
	[ "$out" = OK ] || die 69 "Redis at $shown refused config set ${w}: $out"
	did "Redis: set ${w}"
done
out=$("${rc[@]}" config rewrite 2>&1) || true
if [ "$out" != OK ]; then
	echo "$prog: error: Redis at $shown runs with them now, but could not write its redis.conf ($out): put these lines there:" >&2
	printf '    %s\n' "${wrong[@]}" >&2
	exit 78
fi
info "Redis: written to its redis.conf (config rewrite)"
finish
