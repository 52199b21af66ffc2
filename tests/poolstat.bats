#!/usr/bin/env bats
# poolstat: pools, queues and delivery in one view, against the stack's
# daemons, PostgreSQL and Redis, and against fake daemons whose stats the
# test writes; --check as a monitoring plugin, --watch on a real terminal
# (tmux), --json and --prometheus checked field by field.

setup_file() {
	load helper/common
	# the views are checked against one consumer of the commit group: a
	# stopped batch-commit is the whole group's lag and one daemon down
	export LABPULSE_COMMITTERS=1
	stack_up
}

teardown_file() {
	load helper/common
	stop_tracked
	stack_down
}

setup() {
	load helper/common
	[ -x "$TOP/bin/poolstat" ] || { echo "bin/poolstat is not built: make bin/poolstat"; return 1; }
	TMUX_SOCK=
	FAKE=
}

teardown() {
	local bc
	# fakes, psql sessions and watchers the test started, stopped ones too
	stop_tracked
	[ -z "$TMUX_SOCK" ] || tmux -L "$TMUX_SOCK" kill-server 2>/dev/null || true
	# what a test held open in PostgreSQL, and a batch-commit it stopped
	psql -tAXq -c "select pg_terminate_backend(pid) from pg_stat_activity
		where application_name like 'poolstat-test%'" >/dev/null 2>&1 || true
	bc=$(cat "$LABPULSE_RUNDIR/batch-commit.pid" 2>/dev/null) &&
		kill -CONT "$bc" 2>/dev/null || true
	# the hooks' streams a test filled, once their notify is stopped
	redis-cli -s "${LABPULSE_REDIS#unix:}" DEL labpulse:hooks labpulse:hooks-dead >/dev/null 2>&1 || true
}

# The names of the metrics of --check and of its performance data.
METRICS="pool_util queue_util cl_waiting maxwait stream_lag pending delivery daemons_down hooks_dead replica_lag redis_replicas"
SECTIONS="DAEMONS POOLS QUEUES DELIVERY POSTGRES REDIS"

# section TITLE FILE: the lines of one section of the table, its title line
# left out (HOOKS is there only when a notify delivers hooks).
section() {
	awk -v t="$1" '$1 ~ /^(DAEMONS|POOLS|QUEUES|DELIVERY|HOOKS|POSTGRES|REDIS)$/ { on = ($1 == t); next } on' "$2"
}

# group_info STREAM GROUP FIELD: a field of the group in XINFO GROUPS.
group_info() {
	redis-cli -s "${LABPULSE_REDIS#unix:}" --raw XINFO GROUPS "labpulse:$1" |
		awk -v g="$2" -v f="$3" 'NR % 2 == 1 { k = $0; next }
			k == "name" { cur = $0 } cur == g && k == f { print; exit }'
}

group_idle() {
	[ "$(group_info events "$1" lag)" = 0 ] && [ "$(group_info events "$1" pending)" = 0 ]
}

# quiet: wait until the stack has caught up: nothing lagging or pending in
# the groups of labpulse:events.
quiet() {
	wait_for group_idle commit || { echo "group commit is not idle"; return 1; }
	wait_for group_idle route || { echo "group route is not idle"; return 1; }
}

# pg_count APP [STATE]: client backends of the application APP.
pg_count() {
	psql -tAXc "select count(*) from pg_stat_activity where application_name = '$1'${2:+ and state = '$2'}"
}

# check_line: $output of a --check run is one line in the monitoring-plugin
# form, "POOLSTAT STATE - reasons | performance data", with an item of
# performance data for every metric.
check_line() {
	local m item re='^[a-z_]+=(-?[0-9.]+|U)(%|s|ms|us|c|B|KB|MB)?(;[-0-9.~@:]*){0,4}$'
	[ "${#lines[@]}" -eq 1 ] || { echo "want one line, got ${#lines[@]}: $output"; return 1; }
	[[ $output =~ ^POOLSTAT\ (OK|WARNING|CRITICAL|UNKNOWN)\ -\ .+\ \|\ .+$ ]] ||
		{ echo "not a check line: $output"; return 1; }
	for m in $METRICS; do
		item=$(printf '%s\n' "${output#* | }" | tr ' ' '\n' | grep "^$m=") ||
			{ echo "no performance data for $m: $output"; return 1; }
		[[ $item =~ $re ]] || { echo "performance data not label=value[UOM];warn;crit: $item"; return 1; }
	done
}

# reasons: the reasons part of the --check line in $output.
reasons() {
	local r=${output%% | *}
	printf '%s\n' "${r#* - }"
}

# perf LABEL: "VALUE UOM WARN CRIT" of LABEL in the performance data of the
# --check line in $output, numbers as awk prints them, "-" for empty.
perf() {
	printf '%s\n' "${output#* | }" | tr ' ' '\n' | awk -F';' -v l="$1" '
		{ i = index($1, "="); if (substr($1, 1, i - 1) != l) next
		  v = substr($1, i + 1); u = v; sub(/^-?[0-9.]+/, "", u); sub(/[^-0-9.].*$/, "", v)
		  print v + 0, (u == "" ? "-" : u), ($2 == "" ? "-" : $2 + 0), ($3 == "" ? "-" : $3 + 0); exit }'
}

# perf_seconds LABEL: the value of LABEL in seconds, from its unit.
perf_seconds() {
	perf "$1" | awk '{ f = $2 == "us" ? 1e-6 : $2 == "ms" ? 1e-3 : $2 == "s" ? 1 : -1; if (f < 0) print "no time unit: " $2; else print $1 * f }'
}

# Every field of the JSON of one tick, as labpulse-poolstat(1) documents
# it, with its type: prints what is missing, of another type, or not
# documented; nothing when the tick is right.
SHAPE_JQ='
def N: ["number"]; def Nn: ["number", "null"]; def S: ["string"];
def Sn: ["string", "null"]; def B: ["boolean"]; def O: ["object"];
def A: ["array"]; def Z: ["null"];
def want($where; $spec; $strict):
	. as $o
	| if type != "object" then "\($where): \(type), want object"
	  else
		($spec | to_entries[] | .key as $k | .value as $ts
		 | if ($o | has($k) | not) then "\($where).\($k): missing"
		   elif ($ts | map(select(. == ($o[$k] | type))) | length) == 0
		   then "\($where).\($k): \($o[$k] | type), want \($ts | join(" or "))"
		   else empty end),
		(if $strict then $o | keys[] | select(. as $k | $spec | has($k) | not)
		   | "\($where).\(.): not in the documented shape" else empty end)
	  end;
def daemon($w):
	if .up == true then
		want($w; {name: S, host: S, socket: S, up: B, error: Z, pid: N, version: S,
		    started_at: S, uptime_s: N, pools: O, queue: O, delivery: O,
		    stats: O}; true),
		(.pools | objects | to_entries[] | .key as $p | .value
		 | want("\($w).pools.\($p)"; {kind: S, connected: B, sv_max: N,
		     sv_active: N, sv_idle: N, cl_waiting: N, maxwait_us: N,
		     util_pct: N}; false),
		   (if .kind == "postgres" or .kind == "redis" then empty
		    else "\($w).pools.\($p).kind: \(.kind)" end)),
		(.queue | want("\($w).queue"; {depth: N, max: Nn, what: S}; false)),
		(.delivery | want("\($w).delivery"; {in: N, out: N, dropped: N,
		    share_pct: N, in_per_s: Nn, out_per_s: Nn}; true))
	else
		want($w; {name: S, host: S, socket: S, up: B, error: S}; false)
	end;
def postgres:
	if .up == true then
		want("postgres"; {up: B, error: Z, max_connections: N, reserved: N,
		    connections: N, util_pct: N, by_app: O, oldest_xact_s: Nn,
		    commits_per_s: Nn, rollbacks_per_s: Nn, cache_hit_pct: Nn,
		    nodes: A}; true),
		(.nodes | arrays | to_entries[] | .key as $n | .value
		 | want("postgres.nodes[\($n)]"; {node: S, up: B, error: Z, role: S,
		     lsn: N, lag_bytes: Nn, lag_s: Nn, streaming: ["boolean", "null"],
		     replicas: A}; true)),
		(.by_app | objects | to_entries[] | .key as $a | .value
		 | want("postgres.by_app[\($a)]"; {active: N, idle: N,
		     idle_in_transaction: N, waiting: N}; true))
	else want("postgres"; {up: B, error: S}; false) end;
def redis:
	if .up == true then
		want("redis"; {up: B, error: Z, connected_clients: N,
		    blocked_clients: N, used_memory: N, ops_per_s: N, hooks_dead: Nn,
		    hooks_pending: Nn, streams: A, role: S, connected_replicas: Nn,
		    nodes: A}; true),
		(.nodes | arrays | to_entries[] | .key as $n | .value
		 | want("redis.nodes[\($n)]"; {node: S, role: S, offset: Nn,
		     lag_bytes: Nn, lag_s: Nn}; false)),
		(.streams | arrays | to_entries[] | .key as $s | .value
		 | want("redis.streams[\($s)]"; {stream: S, length: N, groups: A}; true),
		   (.groups | arrays | to_entries[] | .key as $g | .value
		    | want("redis.streams[\($s)].groups[\($g)]"; {group: S,
		        consumers: N, pending: N, lag: Nn, last_delivered_id: S,
		        idlest_consumer: Sn, idlest_ms: Nn}; true)))
	else want("redis"; {up: B, error: S}; false) end;
want("tick"; {time: S, interval_s: Nn, daemons: A, postgres: O, redis: O,
    pgbouncers: A, summary: O}; true),
(.time | strings
 | select(test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]+)?Z$") | not)
 | "time: not ISO 8601 in UTC: \(.)"),
(.daemons | arrays | to_entries[] | .key as $i | .value | daemon("daemons[\($i)]")),
(.postgres | objects | postgres),
(.redis | objects | redis),
(.summary | want("summary"; {daemons: N, daemons_down: N, pool_util_pct: Nn,
    queue_util_pct: Nn, cl_waiting: N, maxwait_us: N, stream_lag: Nn, pending: Nn,
    delivery_pct: Nn, hooks_dead: Nn, replica_lag_s: Nn, redis_replicas: Nn}; true))
'

# prom_lint FILE...: the Prometheus text format 0.0.4 as labpulse writes it,
# for when promtool is missing, and for what promtool does not check: every
# sample line is a labpulse_ metric with labels from daemon, pool, stream,
# group, app, state and destination; every metric has # HELP and # TYPE before its
# samples, which stand together; counters end in _total, and only they.
prom_lint() {
	awk '
	function bad(why) { printf "%s:%d: %s: %s\n", FILENAME, FNR, why, $0; err = 1 }
	/^$/ { next }
	/^# HELP / {
		if (NF < 4) bad("HELP without a text")
		if ($3 !~ /^labpulse_[a-z_]+$/) bad("not a labpulse_ name")
		if ($3 in help) bad("a second HELP")
		if ($3 in seen) bad("HELP after the samples")
		help[$3] = 1
		next
	}
	/^# TYPE / {
		if (!($3 in help)) bad("TYPE without a HELP before it")
		if ($3 in type) bad("a second TYPE")
		if ($3 in seen) bad("TYPE after the samples")
		if (NF != 4 || $4 !~ /^(counter|gauge|histogram|summary|untyped)$/) bad("not a type")
		if ($4 == "counter" && $3 !~ /_total$/) bad("a counter not named _total")
		if ($4 != "counter" && $3 ~ /_total$/) bad("_total on a " $4)
		type[$3] = $4
		next
	}
	/^#/ { next }
	{
		if ($0 !~ /^labpulse_[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)$/) {
			bad("not a sample line")
			next
		}
		name = $0
		sub(/[{ ].*$/, "", name)
		fam = name
		if (!(fam in type)) {
			f = fam
			sub(/_(bucket|sum|count)$/, "", f)
			if ((f in type) && (type[f] == "histogram" || type[f] == "summary"))
				fam = f
		}
		if (!(fam in type)) { bad("no # TYPE before the sample"); next }
		if (fam != last && (fam in seen)) bad("samples of one metric apart")
		last = fam
		seen[fam] = 1
		n++
		key = $0
		sub(/ [^ ]*$/, "", key)
		if (key in sample) bad("a second sample with the same labels")
		sample[key] = 1
		s = $0
		sub(/ [^ ]*$/, "", s)
		if (sub(/^[^{]*\{/, "", s)) {
			while (match(s, /^[a-z_]+="[^"]*"/)) {
				l = substr(s, 1, index(s, "=") - 1)
				if (l !~ /^(daemon|host|pool|stream|group|app|state|destination|node|pgbouncer|database|user|sentinel|le|quantile)$/)
					bad("label " l " is none of daemon, host, pool, stream, group, app, state, destination, node, pgbouncer, database, user, sentinel")
				s = substr(s, RLENGTH + 1)
				sub(/^,/, "", s)
			}
		}
	}
	END {
		for (m in help) if (!(m in type)) { print m ": HELP without TYPE"; err = 1 }
		if (n == 0) { print "no samples"; err = 1 }
		exit err
	}' "$@"
}

# prom_check FILE: promtool when it is here, and the parser above always.
prom_check() {
	run -0 prom_lint "$1"
	if command -v promtool >/dev/null 2>&1; then
		run -0 promtool check metrics <"$1"
	fi
}

# fake NAME JSON: a daemon's stats socket $FAKE/NAME.sock that answers with
# JSON and closes, as a daemon does; sets FAKE_PID.
fake() {
	printf '%s\n' "$2" >"$BATS_TEST_TMPDIR/$1.json"
	socat UNIX-LISTEN:"$FAKE/$1.sock",fork EXEC:"cat $BATS_TEST_TMPDIR/$1.json" \
		</dev/null >/dev/null 2>&1 3>&- &
	FAKE_PID=$!
	track "$FAKE_PID"
	wait_for test -S "$FAKE/$1.sock"
}

# fakes: a rundir of fake daemons: three that answer (ingest, batch-commit-2,
# notify-2), one that answers nothing (notify: its server is stopped), one
# whose server is gone (route-old), one that answers with what is not JSON
# (route-bad), and sockets and files that are no daemon's.
fakes() {
	FAKE=$BATS_TEST_TMPDIR/run
	mkdir -p "$FAKE"
	fake ingest '{"name":"ingest","pid":4242,"version":"0.1.0","started_at":"2026-11-25T10:00:00Z","uptime_s":3600.5,
	  "pools":{"redis":{"kind":"redis","connected":true,"sv_max":4,"sv_active":3,"sv_idle":1,"cl_waiting":2,"maxwait_us":1500000}},
	  "queue":{"depth":7,"max":100,"what":"requests waiting for Redis"},
	  "delivery":{"in":100,"out":80,"dropped":20},"events_accepted":100}'
	fake batch-commit-2 '{"name":"batch-commit","pid":4343,"version":"0.1.0","started_at":"2026-11-25T10:00:00Z","uptime_s":60,
	  "pools":{"postgres":{"kind":"postgres","connected":true,"sv_max":2,"sv_active":1,"sv_idle":1,"cl_waiting":1,"maxwait_us":20000},
	           "redis":{"kind":"redis","connected":true,"sv_max":1,"sv_active":0,"sv_idle":1,"cl_waiting":0,"maxwait_us":0}},
	  "queue":{"depth":0,"max":500,"what":"rows in the open batch"},
	  "delivery":{"in":500,"out":500,"dropped":0}}'
	fake notify-2 '{"name":"notify","pid":4444,"version":"0.1.0","started_at":"2026-11-25T10:00:00Z","uptime_s":60,
	  "pools":{"postgres":{"kind":"postgres","connected":true,"sv_max":2,"sv_active":0,"sv_idle":2,"cl_waiting":0,"maxwait_us":0}},
	  "queue":{"depth":0,"max":null,"what":"messages queued for dashboards"},
	  "delivery":{"in":1000,"out":900,"dropped":100}}'
	fake notify '{"name":"notify"}'
	kill -STOP "$FAKE_PID"
	fake route-bad 'this is no JSON'
	# a socket whose server has exited
	socat UNIX-LISTEN:"$FAKE/route-old.sock",unlink-close=0 /dev/null </dev/null >/dev/null 2>&1 3>&- &
	local p=$!
	track "$p"
	wait_for test -S "$FAKE/route-old.sock"
	kill "$p"
	wait "$p" 2>/dev/null || true
	[ -S "$FAKE/route-old.sock" ]
	# no daemon's: Redis's socket (which answers JSON), other names, pid files
	fake redis '{"name":"ingest","pid":1}'
	fake other '{"name":"route","pid":2}'
	: >"$FAKE/ingest.sock.old"
	echo 4242 >"$FAKE/ingest.pid"
	mkdir "$FAKE/pg"
}

# fcheck ARGS...: poolstat --check over the fake daemons alone.
fcheck() {
	poolstat --check --no-postgres --no-redis --sample 0 --timeout 300ms "$@"
}

@test "--help prints the usage on stdout, with every option, and exits 0" {
	run -0 --separate-stderr poolstat --help
	[ -z "$stderr" ]
	[[ ${lines[0]} == "usage: labpulse poolstat "* ]]
	printf '%s\n' "$output" | sed -n '1,/^$/p' >"$BATS_TEST_TMPDIR/usage"
	for o in --db --redis --rundir --socket --json --prometheus --lines --watch \
	    --count --sample --record --replay --check --warn --crit --timeout \
	    --no-postgres --no-redis --help --version; do
		grep -qE -- "(^|[[ |])$o([] |]|\$)" "$BATS_TEST_TMPDIR/usage" ||
			{ echo "the usage does not name $o"; cat "$BATS_TEST_TMPDIR/usage"; false; }
	done
	run -0 poolstat --version
	[[ $output == *0.1* ]]
}

@test "bad flags and values: 64 with the usage on stderr; under --check, 3 with a POOLSTAT UNKNOWN line" {
	run -64 --separate-stderr poolstat --bogus
	[ -z "$output" ]
	[[ $stderr == *"usage: labpulse poolstat"* ]]
	run -64 --separate-stderr poolstat extra-argument
	[[ $stderr == *"usage: labpulse poolstat"* ]]
	run -64 --separate-stderr poolstat --watch 0.05
	run -64 --separate-stderr poolstat --watch=soon
	run -64 --separate-stderr poolstat --watch soon
	[[ $stderr == *"unexpected argument 'soon'"* ]]
	run -64 --separate-stderr poolstat --watch 1 --count x
	run -64 --separate-stderr poolstat --sample -1
	run -64 --separate-stderr poolstat --timeout forever
	run -64 --separate-stderr poolstat --json --prometheus
	run -64 --separate-stderr poolstat --json --lines
	[[ $stderr == *"labpulse-poolstat: "* ]]
	run -64 --separate-stderr poolstat --count 3
	run -64 --separate-stderr poolstat --record "$BATS_TEST_TMPDIR/r" --replay "$BATS_TEST_TMPDIR/r"
	run -64 --separate-stderr poolstat --rundir "$BATS_TEST_TMPDIR" --socket "$BATS_TEST_TMPDIR/ingest.sock"
	run -64 --separate-stderr poolstat --redis 'http://example.org'
	# a monitoring system reads stdout and the status: UNKNOWN, not 64
	run -3 --separate-stderr poolstat --check --bogus
	[ "${#lines[@]}" -eq 1 ]
	[[ $output == "POOLSTAT UNKNOWN - "* ]]
	[[ $stderr == *"usage: labpulse poolstat"* ]]
	run -3 --separate-stderr poolstat --check --watch 0.05
	[[ $output == "POOLSTAT UNKNOWN - "* ]]
	# one line, once: no --watch, --json and the like
	run -3 --separate-stderr poolstat --check --json
	[[ $output == "POOLSTAT UNKNOWN - "* ]]
}

@test "a bad expression: 64 with the reason; under --check, 3 with a POOLSTAT UNKNOWN line" {
	run -64 --separate-stderr poolstat --warn 'foo>1'
	[ -z "$output" ]
	assert_equal "${stderr_lines[0]}" "labpulse-poolstat: error: --warn: unknown metric 'foo' in 'foo>1'"
	run -64 --separate-stderr poolstat --crit 'pool_util>=80%,bar<2'
	assert_equal "${stderr_lines[0]}" "labpulse-poolstat: error: --crit: unknown metric 'bar' in 'pool_util>=80%,bar<2'"
	for e in 'pool_util>=' 'pool_util=5' 'pool_util=>5' 'pool_util>=5kg' '>=5' 'pool_util>=five' 'pool_util 5'; do
		run -64 --separate-stderr poolstat --crit "$e"
		[[ ${stderr_lines[0]} == "labpulse-poolstat: error: --crit: "* ]] ||
			{ echo "$e: $stderr"; false; }
	done
	run -3 --separate-stderr poolstat --check --warn 'foo>1'
	[ "${#lines[@]}" -eq 1 ]
	[[ $output == "POOLSTAT UNKNOWN - "*"unknown metric 'foo'"* ]]
	run -3 --separate-stderr poolstat --check --crit 'maxwait>=5kg'
	[[ $output == "POOLSTAT UNKNOWN - "* ]]
}

@test "the one-shot table names every running daemon, its pid, and has every section" {
	quiet
	run -0 --separate-stderr poolstat
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/t"
	for s in $SECTIONS; do
		[ "$(grep -c -E "^$s( |\$)" "$BATS_TEST_TMPDIR/t")" = 1 ] ||
			{ echo "section $s:"; cat "$BATS_TEST_TMPDIR/t"; false; }
	done
	section DAEMONS "$BATS_TEST_TMPDIR/t" >"$BATS_TEST_TMPDIR/d"
	for d in ingest batch-commit route notify; do
		grep -qE "^ *$d +up +$(cat "$LABPULSE_RUNDIR/$d.pid")( |\$)" "$BATS_TEST_TMPDIR/d" ||
			{ echo "no row: $d up PID"; cat "$BATS_TEST_TMPDIR/t"; false; }
	done
	# Redis's socket in the rundir is no daemon
	! grep -qE '^ *redis( |$)' "$BATS_TEST_TMPDIR/d" || false
	[ "$(grep -cE ' up( |$)' "$BATS_TEST_TMPDIR/d")" = 4 ]
	# the server's connections beside the daemons' pools
	section POOLS "$BATS_TEST_TMPDIR/t" | grep -qE 'postgres +server'
	# both groups of the events stream
	section QUEUES "$BATS_TEST_TMPDIR/t" >"$BATS_TEST_TMPDIR/q"
	grep -qE '(^| )commit( |$)' "$BATS_TEST_TMPDIR/q"
	grep -qE '(^| )route( |$)' "$BATS_TEST_TMPDIR/q"
	section POSTGRES "$BATS_TEST_TMPDIR/t" | grep -q 'labpulse-batch-commit'
	# at most 100 columns
	run -0 awk 'length > 100' "$BATS_TEST_TMPDIR/t"
	assert_output ""
}

@test "--check on the running stack: OK, one line, performance data for every metric" {
	quiet
	run -0 poolstat --check
	check_line
	[[ $output == "POOLSTAT OK - all 4 daemons up, pools and queues within limits | "* ]]
	# the default thresholds
	assert_equal "$(perf pool_util | cut -d' ' -f2-)" "% 70 80"
	assert_equal "$(perf queue_util | cut -d' ' -f2-)" "% 70 90"
	assert_equal "$(perf stream_lag | cut -d' ' -f3-)" "1000 10000"
	assert_equal "$(perf delivery | cut -d' ' -f2-)" "% - 99.5"
	assert_equal "$(perf daemons_down)" "0 - - 1"
	assert_equal "$(perf hooks_dead)" "0 - 1 100"
	assert_equal "$(perf pending | cut -d' ' -f1)" 0
	assert_equal "$(perf stream_lag | cut -d' ' -f1)" 0
}

@test "--json: one object with every documented field, of the documented type" {
	post_one jsoncls json-1
	quiet
	run -0 --separate-stderr poolstat --json
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/j"
	[ "${#lines[@]}" -eq 1 ]
	run -0 jq -r "$SHAPE_JQ" "$BATS_TEST_TMPDIR/j"
	assert_output ""
	j() { jq -c "$1" "$BATS_TEST_TMPDIR/j"; }
	assert_equal "$(j '[.daemons[].name] | sort')" '["batch-commit","ingest","notify","route"]'
	for d in ingest batch-commit route notify; do
		assert_equal "$(j ".daemons[] | select(.name == \"$d\") | [.up, .socket, .pid, .stats.name, .stats.pid]")" \
			"[true,\"$LABPULSE_RUNDIR/$d.sock\",$(cat "$LABPULSE_RUNDIR/$d.pid"),\"$d\",$(cat "$LABPULSE_RUNDIR/$d.pid")]"
	done
	# two samples 500ms apart: rates
	j '.interval_s' | awk '{ exit !($1 >= 0.4 && $1 <= 1.5) }'
	assert_equal "$(j '[.daemons[].delivery | .in_per_s, .out_per_s | type] | unique')" '["number"]'
	assert_equal "$(j '.postgres | [.up, .max_connections, .reserved]')" '[true,100,3]'
	assert_equal "$(j '.postgres.commits_per_s | type')" '"number"'
	# its own connection is left out
	assert_equal "$(j '.postgres.by_app | has("labpulse-poolstat")')" false
	assert_equal "$(j '.postgres.by_app | has("labpulse-batch-commit")')" true
	assert_equal "$(j '.redis.up')" true
	assert_equal "$(j '[.redis.streams[] | select(.stream == "labpulse:events") | .groups[] | [.group, .pending, .lag]] | sort')" \
		'[["commit",0,0],["route",0,0]]'
	assert_equal "$(j '.redis.streams[] | select(.stream == "labpulse:events") | .length')" "$(xlen events)"
	assert_equal "$(j '[.redis.streams[].stream] | map(startswith("labpulse:")) | all')" true
	assert_equal "$(j '.summary | [.daemons, .daemons_down, .stream_lag, .pending]')" '[4,0,0,0]'
	# no dead letter of hooks, and no hooks group: no notify delivers them
	assert_equal "$(j '[.redis.hooks_dead, .redis.hooks_pending, .summary.hooks_dead]')" '[0,null,0]'
	# one sample: no rates
	run -0 --separate-stderr poolstat --json --sample 0
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/j"
	run -0 jq -r "$SHAPE_JQ" "$BATS_TEST_TMPDIR/j"
	assert_output ""
	assert_equal "$(j '[.interval_s, (.daemons[].delivery | .in_per_s, .out_per_s), .postgres.commits_per_s, .postgres.rollbacks_per_s] | unique')" '[null]'
}

@test "--prometheus passes promtool check metrics (or the test's parser) and names every daemon" {
	quiet
	run -0 --separate-stderr poolstat --prometheus
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/p"
	prom_check "$BATS_TEST_TMPDIR/p"
	for d in ingest batch-commit route notify; do
		grep -q "{daemon=\"$d\"" "$BATS_TEST_TMPDIR/p" ||
			{ echo "no sample of daemon $d"; cat "$BATS_TEST_TMPDIR/p"; false; }
	done
	grep -q 'stream="labpulse:events"' "$BATS_TEST_TMPDIR/p"
	grep -q 'group="commit"' "$BATS_TEST_TMPDIR/p"
	grep -q 'app="labpulse-batch-commit"' "$BATS_TEST_TMPDIR/p"
	grep -q '^# TYPE labpulse_[a-z_]*_total counter$' "$BATS_TEST_TMPDIR/p"
	# with --watch, one exposition per tick, a blank line between them
	run -0 --separate-stderr poolstat --prometheus --watch 0.2 --count 2 --sample 0
	printf '%s\n' "$output" | awk -v d="$BATS_TEST_TMPDIR/x" '/^$/ { n++; next } { print > (d (n + 0)) }'
	[ -f "$BATS_TEST_TMPDIR/x0" ] && [ -f "$BATS_TEST_TMPDIR/x1" ] && [ ! -f "$BATS_TEST_TMPDIR/x2" ]
	prom_check "$BATS_TEST_TMPDIR/x0"
	prom_check "$BATS_TEST_TMPDIR/x1"
}

@test "at rest, with nothing flowing, no daemon's pool is busy" {
	quiet
	run -0 --separate-stderr poolstat --json --sample 0
	assert_equal "$(jq -c '[.daemons[] | .name as $d | .pools | to_entries[]
		| select(.value.sv_active > 0) | "\($d) \(.key) \(.value.sv_active)/\(.value.sv_max)"]' <<<"$output")" '[]'
	# so that a light threshold judges PostgreSQL alone
	run -0 poolstat --check --sample 0 --warn 'pool_util>=10%' --crit 'pool_util>=50%'
	check_line
}

@test "PostgreSQL connections held open raise the utilization and cross the thresholds" {
	quiet
	# the daemons whose pools are idle at rest: notify's Redis pool counts
	# its stream reader, always in XREAD, as busy (see the test above)
	set -- --socket "$LABPULSE_RUNDIR/ingest.sock" --socket "$LABPULSE_RUNDIR/batch-commit.sock" \
		--socket "$LABPULSE_RUNDIR/route.sock"
	run -0 poolstat "$@" --check --sample 0 --warn 'pool_util>=10%' --crit 'pool_util>=50%'
	check_line
	for _ in $(seq 15); do
		PGAPPNAME=poolstat-test psql -X -q -c 'select pg_sleep(120)' >/dev/null 2>&1 3>&- &
		track "$!"
	done
	wait_until '[ "$(pg_count poolstat-test active)" = 15 ]'
	n=$(psql -tAXc "select count(*) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()")
	run -0 --separate-stderr poolstat --json --sample 0
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/j"
	j() { jq -c "$1" "$BATS_TEST_TMPDIR/j"; }
	assert_equal "$(j '.postgres.by_app["poolstat-test"]')" '{"active":15,"idle":0,"idle_in_transaction":0,"waiting":0}'
	assert_equal "$(j '.postgres.connections')" "$n"
	assert_equal "$(j '.postgres | (.util_pct - .connections * 100 / .max_connections) | fabs < 0.05')" true
	assert_equal "$(j '.postgres.util_pct >= 15 and .summary.pool_util_pct >= .postgres.util_pct')" true
	util=$(j '.postgres.util_pct | floor')
	# the table: the server's row, and the connections by application
	run -0 --separate-stderr poolstat --sample 0
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/t"
	section POOLS "$BATS_TEST_TMPDIR/t" | grep -E 'postgres +server' | grep -qE "(^|[^0-9])$n([^0-9]|\$)"
	section POSTGRES "$BATS_TEST_TMPDIR/t" | grep -qE '^ *poolstat-test +15 +0 +0 +0( |$)' ||
		{ cat "$BATS_TEST_TMPDIR/t"; false; }
	# thresholds: 15 of 100 is at least 10% (warn), not 50% (crit)...
	run -1 poolstat "$@" --check --sample 0 --warn 'pool_util>=10%' --crit 'pool_util>=50%'
	check_line
	[[ $output == "POOLSTAT WARNING - "* ]]
	[[ $(reasons) == *"pool_util ${util}"*"% >= 10% (postgres)"* ]] || { echo "$output"; false; }
	assert_equal "$(perf pool_util | cut -d' ' -f2-)" "% 10 50"
	perf pool_util | awk '{ exit !($1 >= 15) }'
	# ...but at least 12%
	run -2 poolstat "$@" --check --sample 0 --crit 'pool_util>=12%'
	check_line
	[[ $output == "POOLSTAT CRITICAL - "* ]]
	[[ $(reasons) == *"pool_util ${util}"*"% >= 12% (postgres)"* ]] || { echo "$output"; false; }
	assert_equal "$(perf pool_util | cut -d' ' -f3-)" "70 12"
	# closed again, all is well
	psql -tAXq -c "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'poolstat-test'" >/dev/null
	wait_until '[ "$(pg_count poolstat-test)" = 0 ]'
	run -0 poolstat "$@" --check --sample 0 --warn 'pool_util>=10%' --crit 'pool_util>=12%'
}

@test "batch-commit stopped while events flow: the commit group's lag and pending rise" {
	quiet
	bc=$(cat "$LABPULSE_RUNDIR/batch-commit.pid")
	# a lock on events holds batch-commit's first batch uncommitted (pending)...
	PGAPPNAME=poolstat-test-lock psql -X -q -c 'begin; lock table events in share mode; select pg_sleep(120)' \
		>/dev/null 2>&1 3>&- &
	track "$!"
	wait_until '[ "$(psql -tAXc "select count(*) from pg_locks l join pg_stat_activity a using (pid) where a.application_name = '\''poolstat-test-lock'\'' and l.granted and l.relation = '\''events'\''::regclass")" = 1 ]'
	assert_equal "$(post_many stopped 0 20 10)" 20
	wait_until '[ "$(group_info events commit pending)" -gt 0 ]'
	wait_until '[ "$(psql -tAXc "select count(*) from pg_stat_activity where application_name = '\''labpulse-batch-commit'\'' and wait_event_type = '\''Lock'\''")" = 1 ]'
	# ...and, stopped, it reads no more (lag)
	kill -STOP "$bc"
	assert_equal "$(post_many stopped 20 120 10)" 100
	wait_for group_idle route
	pending=$(group_info events commit pending)
	lag=$(group_info events commit lag)
	assert_equal "$((pending + lag))" 120
	[ "$lag" -ge 100 ]
	run -0 --separate-stderr poolstat --json --sample 0 --timeout 500ms
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/j"
	j() { jq -c "$1" "$BATS_TEST_TMPDIR/j"; }
	assert_equal "$(j '.redis.streams[] | select(.stream == "labpulse:events") | .groups[] | select(.group == "commit") | [.pending, .lag]')" \
		"[$pending,$lag]"
	assert_equal "$(j '.summary | [.stream_lag, .pending]')" "[$lag,$pending]"
	# a stopped daemon does not answer: down, after --timeout
	assert_equal "$(j '.daemons[] | select(.name == "batch-commit") | [.up, (.error | type)]')" '[false,"string"]'
	assert_equal "$(j '.summary.daemons_down')" 1
	# its PostgreSQL connection waits for the lock
	assert_equal "$(j '.postgres.by_app["labpulse-batch-commit"].waiting')" 1
	j '.postgres.oldest_xact_s' | awk '{ exit !($1 > 0) }'
	# the table's row of the group: consumers, pending, lag
	run -0 --separate-stderr poolstat --sample 0 --timeout 500ms
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/t"
	section QUEUES "$BATS_TEST_TMPDIR/t" | grep -qE "(^| )commit +1 +$pending +$lag( |\$)" ||
		{ cat "$BATS_TEST_TMPDIR/t"; false; }
	section DAEMONS "$BATS_TEST_TMPDIR/t" | grep -qE '^ *batch-commit +down( |$)'
	# thresholds: lag warns, pending is critical when asked; the down
	# daemon is left out of it with daemons_down>=5
	run -1 poolstat --check --sample 0 --timeout 500ms --warn 'stream_lag>=50' --crit 'daemons_down>=5'
	check_line
	[[ $output == "POOLSTAT WARNING - "* ]]
	[[ $(reasons) == *"stream_lag $lag >= 50"* ]] || { echo "$output"; false; }
	assert_equal "$(perf stream_lag)" "$lag - 50 10000"
	run -2 poolstat --check --sample 0 --timeout 500ms --crit 'pending>=1,daemons_down>=5'
	[[ $output == "POOLSTAT CRITICAL - "* ]]
	[[ $(reasons) == *"pending $pending >= 1"* ]] || { echo "$output"; false; }
	# and by default, the down daemon is critical
	run -2 poolstat --check --sample 0 --timeout 500ms
	[[ $(reasons) == *"daemon batch-commit down"* ]] || { echo "$output"; false; }
	# started again, it catches up
	kill -CONT "$bc"
	psql -tAXq -c "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'poolstat-test-lock'" >/dev/null
	wait_rows stopped 120
	quiet
	run -0 poolstat --check --sample 0
}

@test "a killed daemon is shown down and --check exits 2; started again, OK" {
	quiet
	pid=$(cat "$LABPULSE_RUNDIR/route.pid")
	kill -9 "$pid"
	wait_until '! stats "$LABPULSE_RUNDIR/route.sock" >/dev/null 2>&1'
	run -2 poolstat --check --sample 0
	check_line
	[[ $output == "POOLSTAT CRITICAL - "* ]]
	assert_equal "$(reasons)" "daemon route down"
	assert_equal "$(perf daemons_down)" "1 - - 1"
	run -0 --separate-stderr poolstat --sample 0
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/t"
	section DAEMONS "$BATS_TEST_TMPDIR/t" >"$BATS_TEST_TMPDIR/d"
	grep -qiE '^ *route +down .*refused' "$BATS_TEST_TMPDIR/d" || { cat "$BATS_TEST_TMPDIR/t"; false; }
	[ "$(grep -cE ' up( |$)' "$BATS_TEST_TMPDIR/d")" = 3 ]
	run -0 --separate-stderr poolstat --json --sample 0
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/j"
	run -0 jq -r "$SHAPE_JQ" "$BATS_TEST_TMPDIR/j"
	assert_output ""
	assert_equal "$(jq -c '.daemons[] | select(.name == "route") | [.up, .socket]' "$BATS_TEST_TMPDIR/j")" \
		"[false,\"$LABPULSE_RUNDIR/route.sock\"]"
	assert_equal "$(jq -c '.summary | [.daemons, .daemons_down]' "$BATS_TEST_TMPDIR/j")" '[4,1]'
	# labpulse up starts what is missing; where nothing reaps orphans (a
	# container's init), the killed route lingers as a zombie that kill -0
	# finds alive, so its pid file goes first
	rm -f "$LABPULSE_RUNDIR/route.pid"
	labpulse up >/dev/null 3>&-
	wait_for stats "$LABPULSE_RUNDIR/route.sock" >/dev/null
	quiet
	run -0 poolstat --check --sample 0
	[[ $output == "POOLSTAT OK - all 4 daemons up, pools and queues within limits | "* ]]
}

@test "PostgreSQL or Redis unreachable: CRITICAL with the reason, unless left out" {
	quiet
	nowhere=$BATS_TEST_TMPDIR/nowhere
	run -2 env LABPULSE_REDIS="unix:$nowhere/redis.sock" poolstat --check --sample 0
	check_line
	[[ $output == "POOLSTAT CRITICAL - "* ]]
	[[ $(reasons) == *[Rr]edis* ]]
	run -2 poolstat --check --sample 0 --redis "unix:$nowhere/redis.sock"
	[[ $(reasons) == *[Rr]edis* ]]
	run -0 poolstat --check --sample 0 --redis "unix:$nowhere/redis.sock" --no-redis
	[[ $output == "POOLSTAT OK - "* ]]
	run -2 env PGHOST="$nowhere" poolstat --check --sample 0
	check_line
	[[ $(reasons) == *[Pp]ostgre* ]]
	run -2 poolstat --check --sample 0 --db "host=$nowhere dbname=labpulse"
	[[ $(reasons) == *[Pp]ostgre* ]]
	run -0 env PGHOST="$nowhere" poolstat --check --sample 0 --no-postgres
	[[ $output == "POOLSTAT OK - "* ]]
	# the table and the JSON say why, in one line each
	run env LABPULSE_REDIS="unix:$nowhere/redis.sock" PGHOST="$nowhere" poolstat --sample 0
	[ "$status" -eq 0 ] || [ "$status" -eq 69 ]
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/t"
	assert_equal "$(section REDIS "$BATS_TEST_TMPDIR/t" | grep -c .)" 1
	assert_equal "$(section POSTGRES "$BATS_TEST_TMPDIR/t" | grep -c .)" 1
	run env LABPULSE_REDIS="unix:$nowhere/redis.sock" PGHOST="$nowhere" poolstat --json --sample 0
	[ "$status" -eq 0 ] || [ "$status" -eq 69 ]
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/j"
	run -0 jq -r "$SHAPE_JQ" "$BATS_TEST_TMPDIR/j"
	assert_output ""
	assert_equal "$(jq -c '[.redis.up, (.redis.error | length > 0), .postgres.up, (.postgres.error | length > 0)]' "$BATS_TEST_TMPDIR/j")" \
		'[false,true,false,true]'
}

@test "daemons are the rundir's sockets named after one; one that does not answer is down, with the reason" {
	fakes
	SECONDS=0
	run -0 --separate-stderr poolstat --rundir "$FAKE" --no-postgres --no-redis --json --sample 0 --timeout 300ms
	[ "$SECONDS" -le 3 ]
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/j"
	run -0 jq -r "$SHAPE_JQ" "$BATS_TEST_TMPDIR/j"
	assert_output ""
	j() { jq -c "$1" "$BATS_TEST_TMPDIR/j"; }
	assert_equal "$(j '[.daemons[] | [.name, .up]] | sort')" \
		'[["batch-commit-2",true],["ingest",true],["notify",false],["notify-2",true],["route-bad",false],["route-old",false]]'
	assert_equal "$(j '[.daemons[] | select(.up | not) | .error | type] | unique')" '["string"]'
	assert_equal "$(j '.daemons[] | select(.name == "ingest") | [.socket, .pid, .version, .uptime_s, .stats.events_accepted]')" \
		"[\"$FAKE/ingest.sock\",4242,\"0.1.0\",3600.5,100]"
	assert_equal "$(j '.daemons[] | select(.name == "ingest") | [.pools.redis.util_pct, .queue.depth, .queue.max, .delivery.share_pct]')" '[75,7,100,80]'
	assert_equal "$(j '.daemons[] | select(.name == "batch-commit-2") | [.pools.postgres.util_pct, .pools.redis.util_pct, .delivery.share_pct, .stats.name]')" \
		'[50,0,100,"batch-commit"]'
	assert_equal "$(j '.daemons[] | select(.name == "notify-2") | [.queue.max, .delivery.share_pct]')" '[null,90]'
	# delivery is the notify daemons' alone: not ingest's 80%
	assert_equal "$(j '.summary | [.daemons, .daemons_down, .pool_util_pct, .cl_waiting, .maxwait_us, .delivery_pct]')" \
		'[6,3,75,3,1500000,90]'
	# the table: down and why
	run -0 --separate-stderr poolstat --rundir "$FAKE" --no-postgres --no-redis --sample 0 --timeout 300ms
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/t"
	section DAEMONS "$BATS_TEST_TMPDIR/t" >"$BATS_TEST_TMPDIR/d"
	grep -qiE '^ *route-old +down .*refused' "$BATS_TEST_TMPDIR/d" || { cat "$BATS_TEST_TMPDIR/t"; false; }
	grep -qiE '^ *notify +down .*tim' "$BATS_TEST_TMPDIR/d" || { cat "$BATS_TEST_TMPDIR/t"; false; }
	grep -qiE '^ *route-bad +down .*json' "$BATS_TEST_TMPDIR/d" || { cat "$BATS_TEST_TMPDIR/t"; false; }
	grep -qE '^ *ingest +up +4242( |$)' "$BATS_TEST_TMPDIR/d"
	grep -qE '^ *batch-commit-2 +up +4343( |$)' "$BATS_TEST_TMPDIR/d"
	! grep -qE '^ *(redis|other|pg)( |$)' "$BATS_TEST_TMPDIR/d" || false
	# --socket: these and no others
	run -0 --separate-stderr poolstat --socket "$FAKE/ingest.sock" --socket "$FAKE/route-old.sock" \
		--no-postgres --no-redis --json --sample 0 --timeout 300ms
	assert_equal "$(jq -c '[.daemons[] | [.name, .up]] | sort' <<<"$output")" '[["ingest",true],["route-old",false]]'
	# LABPULSE_RUNDIR is the default rundir
	run -0 --separate-stderr env LABPULSE_RUNDIR="$FAKE" poolstat --no-postgres --no-redis --json --sample 0 --timeout 300ms
	assert_equal "$(jq -c '.summary.daemons' <<<"$output")" 6
}

@test "--check thresholds: the defaults, --warn and --crit replacing them per metric, operators and units" {
	fakes
	run -2 fcheck --rundir "$FAKE"
	check_line
	[[ $output == "POOLSTAT CRITICAL - "* ]]
	reasons >"$BATS_TEST_TMPDIR/r"
	for r in "daemon notify down" "daemon route-bad down" "daemon route-old down" "delivery 90% < 99.5%"; do
		grep -qF "$r" "$BATS_TEST_TMPDIR/r" || { echo "no reason '$r' in: $output"; false; }
	done
	# only the reasons of the worst state: pool_util 75% only warns
	! grep -q pool_util "$BATS_TEST_TMPDIR/r" || false
	assert_equal "$(perf pool_util)" "75 % 70 80"
	assert_equal "$(perf delivery)" "90 % - 99.5"
	assert_equal "$(perf daemons_down)" "3 - - 1"
	assert_equal "$(perf cl_waiting)" "3 - - -"
	assert_equal "$(perf_seconds maxwait)" 1.5
	# the daemons that answer, with delivery allowed down to 50%: WARNING
	set -- --socket "$FAKE/ingest.sock" --socket "$FAKE/notify-2.sock"
	run -1 fcheck "$@" --crit 'delivery<50%'
	check_line
	[[ $(reasons) == "pool_util 75% >= 70%"* ]] || { echo "$output"; false; }
	assert_equal "$(perf delivery | cut -d' ' -f3-)" "- 50"
	# each --warn and --crit replaces the default of the metrics it names,
	# and only those
	run -0 fcheck "$@" --warn 'pool_util>=80%' --crit 'delivery<50%'
	check_line
	assert_equal "${output%% | *}" "POOLSTAT OK - all 2 daemons up, pools and queues within limits"
	assert_equal "$(perf pool_util | cut -d' ' -f3-)" "80 80"
	assert_equal "$(perf stream_lag | cut -d' ' -f3-)" "1000 10000"
	run -2 fcheck "$@" --warn 'pool_util>=80%' --crit 'delivery<=90%'
	[[ $(reasons) == *"delivery 90% <= 90%"* ]] || { echo "$output"; false; }
	run -0 fcheck "$@" --warn 'pool_util>=80%' --crit 'delivery<90%'
	# several expressions, and several options
	run -1 fcheck "$@" --warn 'pool_util>=80%,cl_waiting>=2' --crit 'delivery<50%'
	[[ $(reasons) == "cl_waiting 2 >= 2"* ]] || { echo "$output"; false; }
	run -0 fcheck "$@" --warn 'pool_util>=80%,cl_waiting>2' --crit 'delivery<50%'
	run -1 fcheck "$@" --warn 'pool_util>=80%' --warn 'cl_waiting>1' --crit 'delivery<50%'
	[[ $(reasons) == "cl_waiting 2 > 1"* ]] || { echo "$output"; false; }
	# maxwait in us, ms or s
	run -2 fcheck "$@" --warn 'pool_util>=80%' --crit 'delivery<50%,maxwait>=1s'
	[[ $(reasons) == "maxwait "*" >= "* ]] || { echo "$output"; false; }
	run -0 fcheck "$@" --warn 'pool_util>=80%' --crit 'delivery<50%,maxwait>1500ms'
	run -2 fcheck "$@" --warn 'pool_util>=80%' --crit 'delivery<50%,maxwait>=1500000us'
	run -0 fcheck "$@" --warn 'pool_util>=80%' --crit 'delivery<50%,maxwait>=1501ms'
	# a lower bound on pool_util, as odd as it is, is an expression too
	run -2 fcheck "$@" --warn 'pool_util>=80%' --crit 'delivery<50%,pool_util<76%'
	# daemons_down over the whole rundir
	run -1 fcheck --rundir "$FAKE" --crit 'delivery<50%,daemons_down>3' --warn 'daemons_down>=3,pool_util>=80%'
	[[ $output == "POOLSTAT WARNING - "* ]]
	# said as the daemons that are down, or as the metric
	[[ $(reasons) == *"daemon route-old down"* || $(reasons) == *"daemons_down 3 >= 3"* ]] ||
		{ echo "$output"; false; }
}

@test "--watch not on a terminal: one line per tick, a header first and every 20 lines" {
	quiet
	run -0 --separate-stderr poolstat --watch 0.1 --count 21
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/w"
	assert_equal "${#lines[@]}" 23
	assert_equal "${lines[21]}" "${lines[0]}"
	[[ ${lines[0]} == *[a-z]* ]]
	run -0 awk 'NR != 1 && NR != 22 && (NF != 16 || $2 != "4/4") { print NR ": " $0 }' "$BATS_TEST_TMPDIR/w"
	assert_output ""
	# --lines: the same without --watch's terminal test
	run -0 --separate-stderr poolstat --lines --watch 0.1 --count 2
	assert_equal "${#lines[@]}" 3
	# --json with --watch: NDJSON, one tick a line
	run -0 --separate-stderr poolstat --json --watch 0.1 --count 3
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/j"
	assert_equal "${#lines[@]}" 3
	run -0 jq -r "$SHAPE_JQ" "$BATS_TEST_TMPDIR/j"
	assert_output ""
}

@test "--watch: rates come from the deltas between ticks, never from totals since start" {
	post_many before 0 100 20 >/dev/null
	quiet
	f=$BATS_TEST_TMPDIR/w
	poolstat --json --watch 0.5 --count 10 >"$f" 2>"$f.err" 3>&- &
	pid=$!
	track "$pid"
	wait_until '[ -s "$f" ]'
	assert_equal "$(post_many during 0 200 10)" 200
	wait_rows during 200
	wait "$pid"
	assert_equal "$(wc -l <"$f")" 10
	run -0 jq -r "$SHAPE_JQ" "$f"
	assert_output ""
	# ticks 2 to 8 each cover the time since the tick before
	run -0 jq -sc '[.[1:][] | .interval_s >= 0.4 and .interval_s <= 1] | all' "$f"
	assert_output true
	run -0 jq -sc '[.[].time] | . == (sort | unique)' "$f"
	assert_output true
	# what the rates add up to is what came while it watched: ingest's
	# delivery counts POSTs (20 of 10 events), batch-commit's rows
	sum() {
		jq -s --arg d "$1" --arg k "$2" '[.[1:][] | .interval_s *
			(.daemons[] | select(.name == $d) | .delivery[$k])] | add | round' "$f"
	}
	assert_equal "$(sum ingest in_per_s)" 20
	assert_equal "$(sum batch-commit in_per_s)" 200
	assert_equal "$(sum batch-commit out_per_s)" 200
}

@test "--record, then --replay with no server at all, shows the recorded ticks" {
	quiet
	rec=$BATS_TEST_TMPDIR/rec.ndjson
	run -0 --separate-stderr poolstat --json --watch 0.3 --count 3 --record "$rec"
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/stdout"
	assert_equal "$(wc -l <"$rec")" 3
	run -0 jq -r "$SHAPE_JQ" "$rec"
	assert_output ""
	diff <(jq -cS . "$rec") <(jq -cS . "$BATS_TEST_TMPDIR/stdout")
	# --record appends
	run -0 --separate-stderr poolstat --lines --watch 0.3 --count 2 --record "$rec"
	assert_equal "$(wc -l <"$rec")" 5
	nowhere=$BATS_TEST_TMPDIR/nowhere
	replay() {
		env LABPULSE_RUNDIR="$nowhere" LABPULSE_REDIS="unix:$nowhere/redis.sock" \
			PGHOST="$nowhere" poolstat --replay "$rec" --timeout 200ms "$@"
	}
	run -0 --separate-stderr replay --json
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/replayed"
	diff <(jq -cS . "$rec") <(jq -cS . "$BATS_TEST_TMPDIR/replayed")
	# in every format
	run -0 --separate-stderr replay
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/t"
	for s in $SECTIONS; do
		[ "$(grep -c -E "^$s( |\$)" "$BATS_TEST_TMPDIR/t")" = 5 ] || { echo "section $s"; cat "$BATS_TEST_TMPDIR/t"; false; }
	done
	[ "$(section DAEMONS "$BATS_TEST_TMPDIR/t" | grep -cE '^ *route +up ')" = 5 ]
	run -0 --separate-stderr replay --lines
	run -0 awk 'NF == 16 && $2 == "4/4"' <<<"$output"
	assert_equal "${#lines[@]}" 5
	run -0 --separate-stderr replay --prometheus
	printf '%s\n' "$output" | awk -v d="$BATS_TEST_TMPDIR/x" '/^$/ { n++; next } { print > (d (n + 0)) }'
	for i in 0 1 2 3 4; do prom_check "$BATS_TEST_TMPDIR/x$i"; done
	# --check: of the last tick
	run -0 replay --check
	check_line
	[[ $output == "POOLSTAT OK - all 4 daemons up, pools and queues within limits | "* ]]
	# paced by --watch: 5 ticks, 4 intervals
	start=$(date +%s%N)
	run -0 --separate-stderr replay --json --watch 0.3
	assert_equal "${#lines[@]}" 5
	[ $(( ($(date +%s%N) - start) / 1000000 )) -ge 1100 ]
	# files that are not there, or not ticks
	run -66 --separate-stderr poolstat --replay "$nowhere/rec.ndjson"
	run -3 --separate-stderr poolstat --replay "$nowhere/rec.ndjson" --check
	[[ $output == "POOLSTAT UNKNOWN - "* ]]
	printf '{"time":"2026-11-25T10:00:00Z"}\nnot a tick\n' >"$BATS_TEST_TMPDIR/bad.ndjson"
	run -65 --separate-stderr poolstat --replay "$BATS_TEST_TMPDIR/bad.ndjson" --json
	[[ $stderr == *"bad.ndjson:2: not a tick"* ]]
	# a recorded tick with daemons down says the same as it said live
	fakes
	run -2 fcheck --rundir "$FAKE"
	live=$output
	run -0 --separate-stderr poolstat --rundir "$FAKE" --no-postgres --no-redis --timeout 300ms \
		--json --watch 0.1 --count 1 --record "$BATS_TEST_TMPDIR/down.ndjson"
	rec=$BATS_TEST_TMPDIR/down.ndjson
	run -2 replay --check --no-postgres --no-redis
	check_line
	assert_equal "$output" "$live"
}

@test "--watch on a terminal (tmux) redraws in place like top, and SIGINT or SIGTERM leave the terminal as it was" {
	command -v tmux >/dev/null || skip "tmux is not installed"
	quiet
	TMUX_SOCK=labpulse-test-$$
	t() { tmux -L "$TMUX_SOCK" "$@" 3>&-; }
	fmt() { t display-message -p -t lp "$1"; }
	pane() { t capture-pane -p -t lp; }
	t -f /dev/null new-session -d -x 120 -y 40 -s lp "env PS1='lp\$ ' sh"
	track "$(t display-message -p '#{pid}')"	# the server, should kill-server fail
	wait_until 'pane | grep -q "^lp\\$"'
	t send-keys -t lp "$TOP/bin/poolstat --watch 0.3" Enter
	wait_until '[ "$(fmt "#{alternate_on}")" = 1 ]'
	# a whole frame: one whose last section is drawn (a capture may fall
	# between the clearing and the drawing of a redraw)
	frame() { wait_until "pane >'$1'; grep -qE '^REDIS( |\\\$)' '$1'"; }
	frame "$BATS_TEST_TMPDIR/c1"
	assert_equal "$(fmt '#{cursor_flag}')" 0
	for s in $SECTIONS; do
		[ "$(grep -cE "^$s( |\$)" "$BATS_TEST_TMPDIR/c1")" = 1 ] || { cat "$BATS_TEST_TMPDIR/c1"; false; }
	done
	for d in ingest batch-commit route notify; do
		grep -qE "^ *$d +up " "$BATS_TEST_TMPDIR/c1" || { cat "$BATS_TEST_TMPDIR/c1"; false; }
	done
	! grep -q 'poolstat --watch' "$BATS_TEST_TMPDIR/c1" || false
	# redrawn: something changes, and nothing scrolls
	post_one tmuxcls tmux-1
	wait_until '! pane | cmp -s - "$BATS_TEST_TMPDIR/c1"'
	sleep 1
	frame "$BATS_TEST_TMPDIR/c2"
	for s in $SECTIONS; do
		[ "$(grep -cE "^$s( |\$)" "$BATS_TEST_TMPDIR/c2")" = 1 ] || { cat "$BATS_TEST_TMPDIR/c2"; false; }
	done
	[ "$(wc -l <"$BATS_TEST_TMPDIR/c2")" -le 40 ]
	run -0 awk 'length > 100' "$BATS_TEST_TMPDIR/c2"
	assert_output ""
	assert_equal "$(fmt '#{history_size}')" 0
	# SIGINT: the primary screen is back, with the cursor, and the status is 0
	t send-keys -t lp C-c
	wait_until '[ "$(fmt "#{alternate_on}")" = 0 ]'
	assert_equal "$(fmt '#{cursor_flag}')" 1
	pane >"$BATS_TEST_TMPDIR/c3"
	grep -q "^lp\\$ $TOP/bin/poolstat --watch 0.3" "$BATS_TEST_TMPDIR/c3" || { cat "$BATS_TEST_TMPDIR/c3"; false; }
	! grep -qE '^(DAEMONS|POOLS|REDIS)( |$)' "$BATS_TEST_TMPDIR/c3" || false
	t send-keys -t lp 'echo "rc=$?"' Enter
	wait_until 'pane | grep -qx "rc=0"'
	# SIGTERM: the same
	t send-keys -t lp "clear; $TOP/bin/poolstat --watch 0.3" Enter
	wait_until '[ "$(fmt "#{alternate_on}")" = 1 ]'
	wait_until '[ -n "$(pgrep -P "$(fmt "#{pane_pid}")" -x poolstat)" ]'
	kill -TERM "$(pgrep -P "$(fmt '#{pane_pid}')" -x poolstat)"
	wait_until '[ "$(fmt "#{alternate_on}")" = 0 ]'
	assert_equal "$(fmt '#{cursor_flag}')" 1
	t send-keys -t lp 'echo "rc=$?"' Enter
	wait_until 'pane | grep -qx "rc=0"'
	# --count: it ends by itself, and leaves the terminal as well
	t send-keys -t lp "clear; $TOP/bin/poolstat --watch 0.2 --count 3; echo \"rc=\$?\"" Enter
	wait_until 'pane | grep -qx "rc=0"'
	assert_equal "$(fmt '#{alternate_on}')" 0
	assert_equal "$(fmt '#{cursor_flag}')" 1
	! pane | grep -qE '^(DAEMONS|REDIS)( |$)' || false
	# --lines on a terminal: lines, no redraw
	t send-keys -t lp "clear; $TOP/bin/poolstat --lines --watch 0.2 --count 3; echo \"rc=\$?\"" Enter
	wait_until 'pane | grep -qx "rc=0"'
	[ "$(pane | awk 'NF == 16 && $2 == "4/4"' | wc -l)" = 3 ] || { pane; false; }
}

# tick_gap FILE: the seconds between the first two ticks of FILE (NDJSON).
tick_gap() {
	jq -sr 'def t: .time | capture("^(?<s>.*T[0-9:]+)[.](?<ms>[0-9]+)Z$")
		| ((.s + "Z") | fromdate) + (.ms | tonumber) / 1000;
		(.[1] | t) - (.[0] | t)' "$1"
}

@test "--watch alone refreshes every 2 seconds, as top does; --watch N and --watch=N as before" {
	f=$BATS_TEST_TMPDIR/w
	run -0 --separate-stderr poolstat --json --watch --count 2 --no-postgres --no-redis
	printf '%s\n' "$output" >"$f"
	assert_equal "${#lines[@]}" 2
	tick_gap "$f" | awk '{ exit !($1 >= 1.95 && $1 < 3.5) }' || { tick_gap "$f"; false; }
	# the interval of the rates is the watch's
	jq -s '.[1].interval_s' "$f" | awk '{ exit !($1 >= 1.95 && $1 < 3.5) }'
	for w in '--watch 0.3' '--watch=0.3'; do
		# shellcheck disable=SC2086
		run -0 --separate-stderr poolstat --json $w --count 2 --no-postgres --no-redis
		printf '%s\n' "$output" >"$f"
		assert_equal "${#lines[@]}" 2
		tick_gap "$f" | awk '{ exit !($1 >= 0.25 && $1 < 1.5) }' || { echo "$w: $(tick_gap "$f")"; false; }
	done
	# not on a terminal, the default lines: a header and a line a tick
	run -0 --separate-stderr poolstat --watch --count 1
	assert_equal "${#lines[@]}" 2
	[[ ${lines[1]} == *" 4/4 "* ]] || { echo "$output"; false; }
	# on a terminal: the table redrawn, till --count
	command -v tmux >/dev/null || skip "tmux is not installed"
	TMUX_SOCK=labpulse-test-$$
	t() { tmux -L "$TMUX_SOCK" "$@" 3>&-; }
	pane() { t capture-pane -p -t lp; }
	t -f /dev/null new-session -d -x 120 -y 40 -s lp "env PS1='lp\$ ' sh"
	track "$(t display-message -p '#{pid}')"
	wait_until 'pane | grep -q "^lp\\$"'
	t send-keys -t lp "$TOP/bin/poolstat --watch --count 2; echo \"rc=\$?\"" Enter
	wait_until '[ "$(t display-message -p -t lp "#{alternate_on}")" = 1 ]'
	wait_until 'pane | grep -qE "^REDIS( |\$)"'
	wait_until 'pane | grep -qx "rc=0"'
	assert_equal "$(t display-message -p -t lp '#{alternate_on}')" 0
}

@test "a class of 200 at ten times its pace: --check stays OK; ingest's pipelined link is busy, not full" {
	quiet
	out=$BATS_TEST_TMPDIR/lg.out
	loadgen --students 200 --think 0.1 --dashboards 10 --setup --duration 20s \
		--slo lost=0 --quiet >"$out" 2>&1 </dev/null 3>&- &
	lg=$!
	track "$lg"
	# the class is under way: ingest takes its events
	flowing() {
		poolstat --json --no-postgres --no-redis >"$BATS_TEST_TMPDIR/t" 2>/dev/null &&
			jq -e '.daemons[] | select(.name == "ingest") | .delivery.in_per_s >= 50' \
				"$BATS_TEST_TMPDIR/t" >/dev/null
	}
	wait_for flowing || { cat "$out"; false; }
	for _ in 1 2 3; do
		run -0 poolstat --check
		check_line
		[[ $output == "POOLSTAT OK - all 4 daemons up, pools and queues within limits | "* ]] ||
			{ echo "$output"; false; }
	done
	run -0 --separate-stderr poolstat --json
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/j"
	j() { jq -c "$1" "$BATS_TEST_TMPDIR/j"; }
	run -0 jq -r "$SHAPE_JQ" "$BATS_TEST_TMPDIR/j"
	assert_output ""
	# one request in flight is not a full link: the depth against the
	# bound is
	assert_equal "$(j '.daemons[] | select(.name == "ingest") | .pools.redis
		| [.multiplexed, .inflight_max, (.util_pct == (.inflight * 100 / .inflight_max * 100 | round) / 100),
		   .util_pct < 5, .busy_pct > 0, .busy_pct <= 100, .wait_us.count > 0, .wait_p99_us == .wait_us.p99]')" \
		'[true,10000,true,true,true,true,true,true]'
	assert_equal "$(j '.daemons[] | select(.name == "route") | .pools.redis | [.multiplexed, .inflight_max, .busy_pct > 0]')" \
		'[true,1,true]'
	# notify's pool is no link: its use stays sv_active of sv_max, with
	# the time busy and the waits for a connection beside
	assert_equal "$(j '.daemons[] | select(.name == "notify") | .pools.postgres
		| [.multiplexed, .util_pct == (.sv_active * 100 / .sv_max), (.busy_us, .busy_pct | type), .wait_us.count > 0]')" \
		'[null,true,"number","number",true]'
	assert_equal "$(j '.summary.queue_util_pct < 5')" true
	wait "$lg" || { cat "$out"; false; }
}

# ev ID: one event of the extension, without the array around it.
ev() {
	local e
	e=$(ext_event "$1")
	e=${e#[}
	printf '%s\n' "${e%]}"
}

@test "ingest's stream backlog full: --check is CRITICAL and names it" {
	start_ingest qfull --to stream:poolstat-qfull --max-backlog 3
	redis-cli -s "${LABPULSE_REDIS#unix:}" DEL labpulse:poolstat-qfull >/dev/null
	run -0 poolstat --check --socket "$qfull_STATS" --no-postgres --no-redis --sample 0
	assert_output "POOLSTAT OK - all 1 daemons up, pools and queues within limits | pool_util=0%;70;80 queue_util=0%;70;90 cl_waiting=0;; maxwait=0ms;; stream_lag=U;1000;10000 pending=U;; delivery=U;;99.5 daemons_down=0;;1 hooks_dead=U;1;100 replica_lag=U;5;30 redis_replicas=U;;0"
	post "$qfull_URL/api/v1/events" "[$(ev q-1),$(ev q-2),$(ev q-3)]"
	assert_equal "$status_code" 202
	wait_until '[ "$(stats "$qfull_STATS" | jq .backlog.full)" = true ]'
	run -2 poolstat --check --socket "$qfull_STATS" --no-postgres --no-redis --sample 0
	assert_output "POOLSTAT CRITICAL - queue_util 100% >= 90% (qfull backlog) | pool_util=0%;70;80 queue_util=100%;70;90 cl_waiting=0;; maxwait=0ms;; stream_lag=U;1000;10000 pending=U;; delivery=U;;99.5 daemons_down=0;;1 hooks_dead=U;1;100 replica_lag=U;5;30 redis_replicas=U;;0"
	# it is really full: ingest refuses the next POST
	post "$qfull_URL/api/v1/events" "[$(ev q-4)]"
	assert_equal "$status_code" 503
	# its own thresholds: a warning, not yet critical
	run -1 poolstat --check --socket "$qfull_STATS" --no-postgres --no-redis --sample 0 --crit 'queue_util>100%' --warn 'queue_util>=70%'
	assert_output "POOLSTAT WARNING - queue_util 100% >= 70% (qfull backlog) | pool_util=0%;70;80 queue_util=100%;70;100 cl_waiting=0;; maxwait=0ms;; stream_lag=U;1000;10000 pending=U;; delivery=U;;99.5 daemons_down=0;;1 hooks_dead=U;1;100 replica_lag=U;5;30 redis_replicas=U;;0"
	redis-cli -s "${LABPULSE_REDIS#unix:}" DEL labpulse:poolstat-qfull >/dev/null
}

@test "ingest's pipeline at its bound while Redis is paused: --check is CRITICAL and names its link" {
	local rc=${LABPULSE_REDIS#unix:} i
	start_ingest qpipe --to stream:poolstat-qpipe --max-inflight 4 --redis-timeout 60s
	# writes wait for up to 20 s, or until unpaused; reads go on
	redis-cli -s "$rc" CLIENT PAUSE 20000 WRITE >/dev/null
	for i in 1 2 3 4; do
		curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
			--data-binary "[$(ev p-$i)]" "$qpipe_URL/api/v1/events" \
			>"$BATS_TEST_TMPDIR/code$i" 2>&1 </dev/null 3>&- &
		track "$!"
	done
	wait_until '[ "$(stats "$qpipe_STATS" | jq .pools.redis.inflight)" = 4 ]'
	run -2 poolstat --check --socket "$qpipe_STATS" --no-postgres --no-redis --sample 0
	check_line
	assert_equal "$(reasons)" "pool_util 100% >= 80% (qpipe redis); queue_util 100% >= 90% (qpipe queue)"
	assert_equal "$(perf pool_util)" "100 % 70 80"
	assert_equal "$(perf queue_util)" "100 % 70 90"
	assert_equal "$(perf cl_waiting)" "4 - - -"
	# it is really full: the fifth is refused at once
	post "$qpipe_URL/api/v1/events" "[$(ev p-5)]"
	assert_equal "$status_code" 503
	redis-cli -s "$rc" CLIENT UNPAUSE >/dev/null
	for i in 1 2 3 4; do
		wait_until "[ \"\$(cat '$BATS_TEST_TMPDIR/code$i')\" = 202 ]"
	done
	wait_until '[ "$(stats "$qpipe_STATS" | jq .pools.redis.inflight)" = 0 ]'
	run -0 poolstat --check --socket "$qpipe_STATS" --no-postgres --no-redis --sample 0
	# the last three waited behind the first, held by the pause
	assert_equal "$(stats "$qpipe_STATS" | jq -c '.pools.redis.wait_us | [.count, .max > 0]')" '[4,true]'
	redis-cli -s "$rc" DEL labpulse:poolstat-qpipe >/dev/null
}

# dead_letter N...: dead letters of hooks on labpulse:hooks-dead, as notify
# writes them, one for each N.
dead_letter() {
	local n
	for n in "$@"; do
		printf 'XADD labpulse:hooks-dead * source 1764064800000-%s topic hook:chat msg "{\\"topic\\":\\"hook:chat\\",\\"text\\":\\"help\\"}" destination chat reason "HTTP 400" attempts 1 status 400 body ""\n' "$n"
	done | redis-cli -s "${LABPULSE_REDIS#unix:}" >/dev/null
}

@test "dead letters of hooks on labpulse:hooks-dead: WARNING from 1, CRITICAL from 100, OK once the stream is gone" {
	FAKE=$BATS_TEST_TMPDIR/run
	mkdir -p "$FAKE"
	fake notify '{"name":"notify","pid":4545,"version":"0.1.0","started_at":"2026-11-25T10:00:00Z","uptime_s":60,"pools":{},
	  "queue":{"depth":0,"max":null,"what":"messages queued for dashboards"},"delivery":{"in":10,"out":10,"dropped":0}}'
	quiet
	redis-cli -s "${LABPULSE_REDIS#unix:}" DEL labpulse:hooks-dead >/dev/null
	set -- --socket "$FAKE/notify.sock" --no-postgres --sample 0
	rest="cl_waiting=0;; maxwait=0ms;; stream_lag=0;1000;10000 pending=0;; delivery=100%;;99.5 daemons_down=0;;1"
	# the stack's Redis has no replica, its PostgreSQL no standby
	ha="replica_lag=U;5;30 redis_replicas=0;;0"
	run -0 poolstat "$@" --check
	assert_output "POOLSTAT OK - all 1 daemons up, pools and queues within limits | pool_util=U;70;80 queue_util=U;70;90 $rest hooks_dead=0;1;100 $ha"
	dead_letter 1
	assert_equal "$(xlen hooks-dead)" 1
	run -1 poolstat "$@" --check
	assert_output "POOLSTAT WARNING - hooks_dead 1 >= 1 (labpulse:hooks-dead) | pool_util=U;70;80 queue_util=U;70;90 $rest hooks_dead=1;1;100 $ha"
	# the same figure in JSON, Prometheus and the lines
	run -0 --separate-stderr poolstat "$@" --json
	assert_equal "$(jq -c '[.redis.hooks_dead, .summary.hooks_dead]' <<<"$output")" '[1,1]'
	run -0 --separate-stderr poolstat "$@" --prometheus
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/p"
	prom_check "$BATS_TEST_TMPDIR/p"
	run -0 grep -x 'labpulse_hooks_dead_letters [0-9]*' "$BATS_TEST_TMPDIR/p"
	assert_output "labpulse_hooks_dead_letters 1"
	run -0 --separate-stderr poolstat "$@" --lines
	assert_equal "$(awk 'NR == 1 { print $(NF - 1) } NR == 2 { print NF, $(NF - 1) }' <<<"$output")" "dead
16 1"
	dead_letter $(seq 2 100)
	assert_equal "$(xlen hooks-dead)" 100
	run -2 poolstat "$@" --check
	assert_output "POOLSTAT CRITICAL - hooks_dead 100 >= 100 (labpulse:hooks-dead) | pool_util=U;70;80 queue_util=U;70;90 $rest hooks_dead=100;1;100 $ha"
	# thresholds of its own
	run -1 poolstat "$@" --check --crit 'hooks_dead>100' --warn 'hooks_dead>=50'
	assert_output "POOLSTAT WARNING - hooks_dead 100 >= 50 (labpulse:hooks-dead) | pool_util=U;70;80 queue_util=U;70;90 $rest hooks_dead=100;50;100 $ha"
	run -3 --separate-stderr poolstat "$@" --check --crit 'hooks_dead>=1%'
	assert_output "POOLSTAT UNKNOWN - --crit: hooks_dead takes a bare number, not '%', in 'hooks_dead>=1%'"
	# an operator dealt with them: the stream is deleted
	redis-cli -s "${LABPULSE_REDIS#unix:}" DEL labpulse:hooks-dead >/dev/null
	run -0 poolstat "$@" --check
	assert_output "POOLSTAT OK - all 1 daemons up, pools and queues within limits | pool_util=U;70;80 queue_util=U;70;90 $rest hooks_dead=0;1;100 $ha"
	# without Redis, no figure
	run -0 poolstat "$@" --check --no-redis
	assert_output "POOLSTAT OK - all 1 daemons up, pools and queues within limits | pool_util=U;70;80 queue_util=U;70;90 cl_waiting=0;; maxwait=0ms;; stream_lag=U;1000;10000 pending=U;; delivery=100%;;99.5 daemons_down=0;;1 hooks_dead=U;1;100 replica_lag=U;5;30 redis_replicas=U;;0"
}

@test "the HOOKS section of a recorded tick: a row per destination and the totals, only when a notify reports hooks" {
	rec=$BATS_TEST_TMPDIR/hooks.ndjson
	notify='{"name":"notify","socket":"/run/labpulse/notify.sock","up":true,"error":null,"pid":4444,"version":"0.1.0",
	  "started_at":"2026-11-25T10:00:00Z","uptime_s":60,"pools":{},"queue":{"depth":0,"max":null,"what":"bytes"},
	  "delivery":{"in":1,"out":1,"dropped":0,"share_pct":100,"in_per_s":null,"out_per_s":null},"stats":{"name":"notify"'
	hooks='"hooks":{"file":"/etc/labpulse/hooks","from":"stream:hooks@hooks","dead_to":"stream:hooks-dead",
	  "read":12,"delivered":9,"dead":1,"retried":3,"rate_limited":2,"queued":1,"in_flight":1,"max_queue":20000,
	  "destinations":{
	    "ta-desk":{"kind":"webhook","rate":5,"burst":10,"queued":1,"in_flight":1,"sent":4,"retried":3,"rate_limited":0,
	      "dead":1,"last_status":503,"bucket_wait_us_p99":0,"latency_us_p99":1234},
	    "chat":{"kind":"telegram","rate":1.0,"burst":1,"queued":0,"in_flight":0,"sent":5,"retried":0,"rate_limited":2,
	      "dead":0,"last_status":200,"bucket_wait_us_p99":1000000,"latency_us_p99":250000}}}'
	redis='"redis":{"up":true,"error":null,"connected_clients":1,"blocked_clients":0,"used_memory":1,"ops_per_s":1,
	  "hooks_dead":3,"hooks_pending":1,"streams":[]}'
	{
		printf '{"time":"2026-11-25T10:00:00.000Z","interval_s":null,"daemons":[%s,%s}}],"postgres":{"up":false,"error":"x"},%s}\n' \
			"$notify" "$hooks" "$redis"
		printf '{"time":"2026-11-25T10:00:01.000Z","interval_s":null,"daemons":[%s}}],"postgres":{"up":false,"error":"x"},%s}\n' \
			"$notify" "$redis"
	} | jq -c . >"$rec"
	run -0 --separate-stderr poolstat --replay "$rec" --count 1 --no-postgres
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/t"
	assert_equal "${lines[0]}" "labpulse poolstat  $(date -d 2026-11-25T10:00:00Z '+%Y-%m-%d %H:%M:%S')  no rates  WARNING - hooks_dead 3 >= 1 (labpulse:hooks-dead)"
	grep -qx 'HOOKS     KIND     QUEUED INFLIGHT     SENT RETRIED  429S   DEAD WAIT99_MS  LAT99_MS LAST' "$BATS_TEST_TMPDIR/t"
	run -0 section HOOKS "$BATS_TEST_TMPDIR/t"
	assert_output "notify    all           1        1        9       3     2      1         -         -    -
  chat    telegram      0        0        5       0     2      0    1000.0     250.0  200
  ta-desk webhook       1        1        4       3     0      1       0.0       1.2  503
  notify: read 12, held 2 of 20000, from stream:hooks@hooks, dead letters to stream:hooks-dead
  notify: hooks file /etc/labpulse/hooks
dead letters waiting in labpulse:hooks-dead: 3; pending in group hooks: 1"
	# the tick after: the notify reports no hooks, so no section
	run -0 --separate-stderr poolstat --replay "$rec" --no-postgres
	assert_equal "$(grep -c '^HOOKS ' <<<"$output")" 1
	# the lines: hook messages held, and the dead letters
	run -0 --separate-stderr poolstat --replay "$rec" --no-postgres --lines
	assert_equal "$(awk '{ print $(NF - 2), $(NF - 1) }' <<<"$output")" "hooks dead
2 3
- 3"
	run -0 --separate-stderr poolstat --replay "$rec" --no-postgres --prometheus --count 1
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/p"
	prom_check "$BATS_TEST_TMPDIR/p"
	run -0 grep -E '^labpulse_hooks?_[a-z_]+(\{[^}]*\})? ' "$BATS_TEST_TMPDIR/p"
	assert_output 'labpulse_hooks_dead_letters 3
labpulse_hooks_read_total{daemon="notify"} 12
labpulse_hooks_delivered_total{daemon="notify"} 9
labpulse_hooks_dead_total{daemon="notify"} 1
labpulse_hooks_retried_total{daemon="notify"} 3
labpulse_hooks_rate_limited_total{daemon="notify"} 2
labpulse_hooks_queued{daemon="notify"} 1
labpulse_hooks_in_flight{daemon="notify"} 1
labpulse_hooks_max_queue{daemon="notify"} 20000
labpulse_hook_queued{daemon="notify",destination="chat"} 0
labpulse_hook_queued{daemon="notify",destination="ta-desk"} 1
labpulse_hook_in_flight{daemon="notify",destination="chat"} 0
labpulse_hook_in_flight{daemon="notify",destination="ta-desk"} 1
labpulse_hook_sent_total{daemon="notify",destination="chat"} 5
labpulse_hook_sent_total{daemon="notify",destination="ta-desk"} 4
labpulse_hook_retried_total{daemon="notify",destination="chat"} 0
labpulse_hook_retried_total{daemon="notify",destination="ta-desk"} 3
labpulse_hook_rate_limited_total{daemon="notify",destination="chat"} 2
labpulse_hook_rate_limited_total{daemon="notify",destination="ta-desk"} 0
labpulse_hook_dead_total{daemon="notify",destination="chat"} 0
labpulse_hook_dead_total{daemon="notify",destination="ta-desk"} 1
labpulse_hook_last_status{daemon="notify",destination="chat"} 200
labpulse_hook_last_status{daemon="notify",destination="ta-desk"} 503
labpulse_hook_bucket_wait_seconds{daemon="notify",destination="chat",quantile="0.99"} 1
labpulse_hook_bucket_wait_seconds{daemon="notify",destination="ta-desk",quantile="0.99"} 0
labpulse_hook_latency_seconds{daemon="notify",destination="chat",quantile="0.99"} 0.25
labpulse_hook_latency_seconds{daemon="notify",destination="ta-desk",quantile="0.99"} 0.001234'
}

@test "a notify delivering hooks: HOOKS shows its destination, and JSON, Prometheus and Redis's pending agree" {
	local rc=${LABPULSE_REDIS#unix:} port
	port=$(free_port)
	printf '# a webhook at a port nobody listens on\ndesk  http://127.0.0.1:%s/hook\n' "$port" >"$BATS_TEST_TMPDIR/hooks"
	redis-cli -s "$rc" DEL labpulse:hooks labpulse:hooks-dead >/dev/null
	redis-cli -s "$rc" XADD labpulse:hooks '*' topic hook:desk msg '{"topic":"hook:desk","text":"help"}' >/dev/null
	# a failed attempt waits an hour before the next: it stays held
	start_notify nhooks --hooks "$BATS_TEST_TMPDIR/hooks" --hook-backoff 1h
	wait_until '[ "$(stats "$nhooks_STATS" | jq -c ".hooks | [.read, .queued + .in_flight]")" = "[1,1]" ]'
	set -- --socket "$nhooks_STATS" --no-postgres --sample 0
	run -0 --separate-stderr poolstat "$@"
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/t"
	section HOOKS "$BATS_TEST_TMPDIR/t" >"$BATS_TEST_TMPDIR/h"
	grep -qE '^nhooks +all +' "$BATS_TEST_TMPDIR/h" || { cat "$BATS_TEST_TMPDIR/t"; false; }
	# nothing sent, nothing dead, and no answer: no status
	grep -qE '^  desk +webhook +[0-9]+ +[0-9]+ +0 +[0-9]+ +0 +0 +[-0-9.]+ +[-0-9.]+ +-$' "$BATS_TEST_TMPDIR/h" ||
		{ cat "$BATS_TEST_TMPDIR/t"; false; }
	# where it reads and writes, as it says them
	run -0 jq -r '.hooks | "\(.from), dead letters to \(.dead_to)"' <<<"$(stats "$nhooks_STATS")"
	grep -qxF "  nhooks: read 1, held 1 of 20000, from $output" "$BATS_TEST_TMPDIR/h" ||
		{ cat "$BATS_TEST_TMPDIR/t"; false; }
	grep -qx "  nhooks: hooks file $BATS_TEST_TMPDIR/hooks" "$BATS_TEST_TMPDIR/h"
	# the entry is the group's, not acknowledged, and nothing is dead
	grep -qx 'dead letters waiting in labpulse:hooks-dead: 0; pending in group hooks: 1' "$BATS_TEST_TMPDIR/h" ||
		{ cat "$BATS_TEST_TMPDIR/t"; false; }
	run -0 --separate-stderr poolstat "$@" --json
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/j"
	run -0 jq -r "$SHAPE_JQ" "$BATS_TEST_TMPDIR/j"
	assert_output ""
	assert_equal "$(jq -c '[.redis.hooks_dead, .redis.hooks_pending, .summary.hooks_dead,
		(.daemons[0].stats.hooks.destinations.desk | .kind, .sent, .dead)]' "$BATS_TEST_TMPDIR/j")" '[0,1,0,"webhook",0,0]'
	run -0 --separate-stderr poolstat "$@" --prometheus
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/p"
	prom_check "$BATS_TEST_TMPDIR/p"
	grep -qx 'labpulse_hooks_read_total{daemon="nhooks"} 1' "$BATS_TEST_TMPDIR/p"
	grep -qx 'labpulse_hook_sent_total{daemon="nhooks",destination="desk"} 0' "$BATS_TEST_TMPDIR/p"
	grep -qx 'labpulse_hooks_dead_letters 0' "$BATS_TEST_TMPDIR/p"
	run -0 poolstat "$@" --check
	[[ $output == "POOLSTAT OK - all 1 daemons up, pools and queues within limits | "*" hooks_dead=0;1;100 replica_lag=U;5;30 redis_replicas=0;;0" ]] ||
		{ echo "$output"; false; }
}
