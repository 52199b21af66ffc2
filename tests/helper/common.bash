# common.bash: what every command-level test loads: bats-support and
# bats-assert, the built programs on PATH, a private stack per test file.
bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert

export LC_ALL=C
# From this file's own place, so that a test file in a subfolder of tests/
# (tests/fixtures/) finds the same tree.
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PATH="$TOP/bin:$PATH"

# A stack of its own for the test file, outside bats' private temp folder
# so that PostgreSQL's unprivileged user can reach it when we are root.
stack_up() {
	LABPULSE_HOME=$(mktemp -d "${TMPDIR:-/tmp}/labpulse-test.XXXXXX")
	chmod 755 "$LABPULSE_HOME"
	export LABPULSE_HOME
	# The stack's consumers trim what both groups acknowledged; tests read
	# the newest entries and count them, so their stacks keep everything
	# (tests/trim.bats runs consumers that trim).
	export LABPULSE_TRIM_INTERVAL=${LABPULSE_TRIM_INTERVAL:-0}
	local out
	# a stack that started half-way (PostgreSQL up, ingest not ready) must
	# not outlive the failure: teardown_file may never run stack_down
	out=$(labpulse up) || {
		echo "labpulse up failed" >&2
		labpulse down >/dev/null 2>&1 || true
		return 1
	}
	eval "$out"
}

# committers: the pids of the stack's batch-commit consumers, one per core
# unless LABPULSE_COMMITTERS says otherwise (batch-commit.pid, then
# batch-commit-K.pid).
committers() {
	cat "$LABPULSE_RUNDIR"/batch-commit.pid "$LABPULSE_RUNDIR"/batch-commit-[0-9]*.pid 2>/dev/null
}

stack_down() {
	[ -n "${LABPULSE_HOME:-}" ] || return 0
	labpulse down || true
	rm -rf "$LABPULSE_HOME"
}

# Every process a test starts is tracked here, by pid, in a file of the
# test file's own: bats runs each test in a subshell, whose variables
# teardown_file never sees, so a list kept in a variable is lost exactly
# when a test fails. Each pid is kept with its start time, so that a pid the
# kernel has since given to another process is never signalled.
TRACKED_PIDS=$BATS_FILE_TMPDIR/tracked.pids

# proc_start PID: the process's start time (field 22 of /proc/PID/stat);
# fails when there is no such process.
proc_start() {
	local s f
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	read -r -a f <<<"${s##*) }"
	echo "${f[19]}"
}

# proc_alive PID START: PID is still the process that started at START, and
# not a zombie that nobody reaped yet.
proc_alive() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	[ "${s%% *}" != Z ] && [ "$(proc_start "$1")" = "$2" ]
}

# proc_tree PID: PID and every process below it, as PID:START words.
proc_tree() {
	local t c
	t=$(proc_start "$1") || return 0
	echo "$1:$t"
	for c in $(pgrep -P "$1" 2>/dev/null); do proc_tree "$c"; done
}

# track PID...: processes stop_tracked stops; the start_* helpers track what
# they start, and a test tracks every `CMD &` of its own. In setup_file they
# belong to the file, in a test to that test.
track() {
	local p t
	for p in "$@"; do
		t=$(proc_start "$p") || continue	# already gone
		echo "${BATS_TEST_NUMBER:-file} $p $t" >>"$TRACKED_PIDS"
	done
}

# stop_procs PID:START...: SIGTERM (and SIGCONT, for a stopped one), up to
# 10 s for each to go, then SIGKILL.
stop_procs() {
	local w p left
	[ $# -gt 0 ] || return 0
	for w in "$@"; do
		proc_alive "${w%:*}" "${w#*:}" || continue
		kill -CONT "${w%:*}" 2>/dev/null || true
		kill -TERM "${w%:*}" 2>/dev/null || true
	done
	for _ in $(seq 200); do
		left=
		for w in "$@"; do
			! proc_alive "${w%:*}" "${w#*:}" || left+=" $w"
		done
		[ -n "$left" ] || return 0
		sleep 0.05
	done
	for w in $left; do
		p=${w%:*}
		echo "# stop_tracked: pid $p did not stop in 10 s; killing it" >&2
		! proc_alive "$p" "${w#*:}" || kill -KILL "$p" 2>/dev/null || true
	done
	return 0
}

# stop_tracked: stops what the current test tracked (in teardown), or all
# that the file's tests and setup_file tracked (in teardown_file), and what
# those processes started in turn. Copes with processes already gone; never
# fails, so that teardown_file goes on to stack_down.
stop_tracked() {
	local scope=${BATS_TEST_NUMBER:-} s p t keep='' procs=()
	[ -f "$TRACKED_PIDS" ] || return 0
	while read -r s p t; do
		if [ -n "$scope" ] && [ "$s" != "$scope" ]; then
			keep+="$s $p $t"$'\n'
			continue
		fi
		proc_alive "$p" "$t" || continue
		# shellcheck disable=SC2207
		procs+=($(proc_tree "$p"))
	done <"$TRACKED_PIDS"
	printf '%s' "$keep" >"$TRACKED_PIDS"
	stop_procs "${procs[@]}" || true
	return 0
}

# fresh_db NAME: an empty database NAME in the stack's PostgreSQL.
fresh_db() {
	psql -qtAXc "set client_min_messages = warning" -c "drop database if exists $1" \
		-c "create database $1" -d postgres
}

# post URL BODY [curl args...]: sets $status_code, $body and $headers;
# $CT overrides the Content-Type. A server that never answers fails the
# test after 60 s rather than hanging the suite (a --max-time of the
# caller's, coming later, wins).
post() {
	local url=$1 data=$2; shift 2
	local out=$BATS_TEST_TMPDIR/post.$$
	status_code=$(curl -sS --max-time 60 -o "$out.body" -D "$out.head" -w '%{http_code}' \
		-X POST -H "Content-Type: ${CT:-application/json}" --data-binary "$data" \
		"$@" "$url")
	body=$(cat "$out.body")
	headers=$(tr -d '\r' <"$out.head")
}

# get URL [curl args...]: the same for GET.
get() {
	local url=$1; shift
	local out=$BATS_TEST_TMPDIR/get.$$
	status_code=$(curl -sS --max-time 60 -o "$out.body" -D "$out.head" -w '%{http_code}' \
		"$@" "$url")
	body=$(cat "$out.body")
	headers=$(tr -d '\r' <"$out.head")
}

# The stats object of the daemon whose socket is $1.
stats() {
	# a daemon that accepts nothing must not hang the test
	timeout 5 socat -T 2 - "UNIX-CONNECT:$1" </dev/null
}

xlen() {
	redis-cli -s "${LABPULSE_REDIS#unix:}" XLEN "labpulse:${1:-events}"
}

# replicas_acked PORT N: a write on the Redis primary on PORT (a PUBLISH,
# which leaves no key) is acknowledged by N replicas within half a second.
# A replica whose link is up may still not be fed: after a diskless full
# sync the primary streams nothing until the replica's first
# acknowledgement, which comes up to a second later.
replicas_acked() {
	local n
	n=$(printf 'PUBLISH labpulse:probe 1\nWAIT %s 500\n' "$2" |
		timeout 5 redis-cli -h 127.0.0.1 -p "$1" 2>/dev/null | tail -n 1)
	[ "$n" = "$2" ]
}

# start_ingest NAME [ARGS...]: a second ingest with its own flags, on a free
# port; sets ${NAME}_URL, ${NAME}_PID, ${NAME}_LOG, ${NAME}_STATS.
start_ingest() {
	local name=$1; shift
	local log=$BATS_FILE_TMPDIR/$name.log sock=$BATS_FILE_TMPDIR/$name.sock
	: >"$log"
	ingest --listen 127.0.0.1:0 --stats "$sock" "$@" </dev/null 2>"$log" 3>&- &
	local pid=$! addr=
	track "$pid"
	for _ in $(seq 100); do
		addr=$(sed -n 's/.*: info: ready listen=\([^ ]*\).*/\1/p' "$log")
		[ -n "$addr" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	[ -n "$addr" ] || { cat "$log" >&2; return 1; }
	printf -v "${name}_URL" 'http://%s' "$addr"
	printf -v "${name}_PID" '%s' "$pid"
	printf -v "${name}_LOG" '%s' "$log"
	printf -v "${name}_STATS" '%s' "$sock"
}

# wait_for CMD...: retry a command for up to 15 s (a sanitizer build on a
# busy machine is slow to start).
wait_for() {
	for _ in $(seq 300); do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}

# free_port: a loopback TCP port nothing listens on, below the ephemeral
# range, so that no connection's own port takes it meanwhile.
free_port() {
	local lo hi p
	read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
	for _ in $(seq 100); do
		p=$((10000 + RANDOM % (lo - 10000)))
		[ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] && { echo "$p"; return 0; }
	done
	return 1
}

# wait_until 'SHELL TEXT': wait_for, with the text evaluated anew each time
# (wait_for test "$(...)" would evaluate it once).
wait_until() {
	wait_for eval "$1"
}

# An event as the JupyterLab cell-monitor extension sends it.
ext_event() {
	local id=${1:-evt-1} who=${2:-ada@example.edu}
	printf '[{"eventId":"%s","eventType":"cell_executed","eventTime":"2026-11-25T10:15:30.123","emailAddress":"%s","userName":"Ada","teamName":"t1","sessionId":"s-1","notebookPath":"lab1.ipynb","cellId":"c-9","cellIndex":3,"cellType":"code","code":"print(1)","executionCount":7,"hasError":false,"errorMessage":null,"result":"1","executionDurationMs":12.5,"metadata":{"kernel":"python3"}}]' "$id" "$who"
}

# post_many CLASS FROM TO PER [BASEURL]: post the events FROM..TO-1 of CLASS,
# PER to a POST, retrying a 503 or a lost connection as the extension does;
# prints how many were accepted.
post_many() {
	local cls=$1 i=$2 to=$3 per=$4 url=${5:-$LABPULSE_INGEST_URL}/api/v1/events
	local acc=0 body n code tries type err
	while [ "$i" -lt "$to" ]; do
		body='[' n=0
		while [ "$n" -lt "$per" ] && [ "$i" -lt "$to" ]; do
			[ "$n" -gt 0 ] && body+=','
			type=cell_executed err=false
			[ $((i % 5)) -eq 0 ] && type=help
			[ $((i % 7)) -eq 0 ] && err=true
			printf -v ev '{"eventId":"%s-%d","eventType":"%s","classId":"%s","emailAddress":"s%d@%s.edu","notebookPath":"nb%d.ipynb","eventTime":"2026-11-25T%02d:%02d:%02d.%03d","hasError":%s,"cellIndex":%d,"code":"x = %d"}' \
				"$cls" "$i" "$type" "$cls" $((i % 37)) "$cls" $((i % 3)) \
				$((i / 3600 % 24)) $((i / 60 % 60)) $((i % 60)) $((i % 1000)) "$err" $((i % 20)) "$i"
			body+=$ev
			i=$((i + 1)) n=$((n + 1))
		done
		body+=']'
		for tries in $(seq 300); do
			code=$(curl -s -o /dev/null -w '%{http_code}' -X POST \
				-H 'Content-Type: application/json' --data-binary "$body" "$url")
			[ "$code" = 202 ] && break
			case $code in 5??|000) sleep 0.1 ;; *) echo "post_many: HTTP $code" >&2; return 1 ;; esac
		done
		[ "$code" = 202 ] || { echo "post_many: gave up" >&2; return 1; }
		acc=$((acc + n))
	done
	echo "$acc"
}

# rows CLASS: events of CLASS in PostgreSQL.
rows() {
	psql -tAXc "select count(*) from events where class_id = '$1'"
}

# wait_rows CLASS N [SECONDS]: until CLASS has N rows.
wait_rows() {
	local n
	for _ in $(seq $((${3:-60} * 10))); do
		n=$(rows "$1" 2>/dev/null)
		[ "$n" = "$2" ] && return 0
		sleep 0.1
	done
	echo "wait_rows: $1 has ${n:-?} rows, expected $2" >&2
	return 1
}

# The stack's PostgreSQL, stopped and started as its own user.
pg_stack() {
	local owner bin
	owner=$(stat -c %U "$LABPULSE_HOME/pg")
	bin=$(pg_config --bindir 2>/dev/null)
	[ -x "$bin/pg_ctl" ] || bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
	if [ "$owner" = "$(id -un)" ]; then
		"$bin/pg_ctl" -D "$LABPULSE_HOME/pg" "$@"
	else
		runuser -u "$owner" -- "$bin/pg_ctl" -D "$LABPULSE_HOME/pg" "$@"
	fi
}

# start_bc NAME [ARGS...]: a batch-commit of the test's own; sets ${NAME}_PID,
# ${NAME}_LOG and ${NAME}_STATS.
start_bc() {
	local name=$1; shift
	local log=$BATS_FILE_TMPDIR/$name.log sock=$BATS_FILE_TMPDIR/$name.sock
	: >"$log"
	batch-commit --stats "$sock" "$@" </dev/null 2>"$log" 3>&- &
	local pid=$!
	track "$pid"
	printf -v "${name}_PID" '%s' "$pid"
	printf -v "${name}_LOG" '%s' "$log"
	printf -v "${name}_STATS" '%s' "$sock"
	wait_for grep -q ': info: ready ' "$log" || { cat "$log" >&2; return 1; }
}

# start_route NAME [ARGS...]: a route of the test's own; sets ${NAME}_PID,
# ${NAME}_LOG and ${NAME}_STATS.
start_route() {
	local name=$1; shift
	local log=$BATS_FILE_TMPDIR/$name.log sock=$BATS_FILE_TMPDIR/$name.sock
	: >"$log"
	route --stats "$sock" "$@" </dev/null 2>"$log" 3>&- &
	local pid=$!
	track "$pid"
	printf -v "${name}_PID" '%s' "$pid"
	printf -v "${name}_LOG" '%s' "$log"
	printf -v "${name}_STATS" '%s' "$sock"
	wait_for grep -q ': info: ready ' "$log" || { cat "$log" >&2; return 1; }
}

# pending STREAM GROUP: entries delivered and not yet acknowledged.
pending() {
	redis-cli -s "${LABPULSE_REDIS#unix:}" XPENDING "labpulse:$1" "$2" | head -n 1
}

# start_notify NAME [ARGS...]: a notify of the test's own on a free port;
# sets ${NAME}_URL, ${NAME}_PID, ${NAME}_LOG and ${NAME}_STATS.
start_notify() {
	local name=$1; shift
	local log=$BATS_FILE_TMPDIR/$name.log sock=$BATS_FILE_TMPDIR/$name.sock
	: >"$log"
	notify --listen 127.0.0.1:0 --stats "$sock" "$@" 2>"$log" 3>&- &
	local pid=$! addr=
	track "$pid"
	for _ in $(seq 300); do
		addr=$(sed -n 's/.*: info: ready listen=\([^ ]*\).*/\1/p' "$log")
		[ -n "$addr" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	[ -n "$addr" ] || { cat "$log" >&2; return 1; }
	printf -v "${name}_URL" 'http://%s' "$addr"
	printf -v "${name}_PID" '%s' "$pid"
	printf -v "${name}_LOG" '%s' "$log"
	printf -v "${name}_STATS" '%s' "$sock"
	wait_for curl -fs -o /dev/null "http://$addr/healthz"
}

# post_one CLASS EVENTID [STUDENT [HASERROR]]: one cell execution.
post_one() {
	local body
	printf -v body '[{"eventId":"%s","eventType":"cell_executed","eventTime":"2026-11-25T10:15:30.123Z","classId":"%s","emailAddress":"%s","userName":"Ada","notebookPath":"lab1.ipynb","cellIndex":3,"code":"x = 1","hasError":%s}]' \
		"$2" "$1" "${3:-s1@example.edu}" "${4:-false}"
	post "$LABPULSE_INGEST_URL/api/v1/events" "$body"
	[ "$status_code" = 202 ] || { echo "post_one: HTTP $status_code $body" >&2; return 1; }
}

# routed CLASS: the routed stream's messages of CLASS, in stream order, as
# "ID EVENTID KIND" lines: what every dashboard of CLASS must get.
routed() {
	redis-cli -s "${LABPULSE_REDIS#unix:}" --raw XRANGE labpulse:routed - + |
		awk -v t="class:$1" 'NR % 5 == 1 { id = $0 } NR % 5 == 3 { top = $0 }
			NR % 5 == 0 && top == t { print "{\"id\":\"" id "\",\"m\":" $0 "}" }' |
		jq -r '"\(.id) \(.m.eventId) \(.m.kind)"'
}

# got FILE: what an lpwatch output FILE received, in the form routed prints.
got() {
	grep '^{' "$1" | jq -r 'select(.type == "message") | "\(.id) \(.message.eventId) \(.message.kind)"'
}
