#!/usr/bin/env bats
# failover: the cluster of cluster.sh (two app hosts behind HAProxy, Redis
# with Sentinel, PostgreSQL under pg_auto_failover) under one fault a test:
# an app host torn down, the Redis primary killed, the PostgreSQL primary
# killed, an app host cut off for 10 s. Each test runs loadgen's class
# (200 students, sped up, 10 dashboards) through HAProxy with --verify-db
# and the probe beside it, injects the fault about 10 s into the load,
# repairs it, and passes when nothing acknowledged was lost, nothing was
# stored twice and every dashboard received every acknowledged event of its
# class. Events loadgen gave up on were never acknowledged: they are
# reported, not failed on. Each test prints its figures (tests/cluster/report):
# the time to recover, the events given up, the dashboards' e2e p99 in the
# fault window. Needs root (network namespaces); run by make cluster-test.

setup_file() {
	load ../helper/common
	[ "$(id -u)" -eq 0 ] || skip "the cluster needs root (network namespaces)"
	export CLUSTER=$TOP/tests/cluster/cluster.sh
	# up cleans a half-built cluster first, and tears down what it built
	# when it fails
	"$CLUSTER" up >"$BATS_FILE_TMPDIR/up.log" 2>&1 </dev/null 3>&- || {
		cat "$BATS_FILE_TMPDIR/up.log"
		"$CLUSTER" down >/dev/null 2>&1 3>&- || true
		return 1
	}
}

teardown_file() {
	load ../helper/common
	stop_tracked
	[ "$(id -u)" -ne 0 ] || "$TOP/tests/cluster/cluster.sh" down 3>&- || true
}

setup() {
	load ../helper/common
	CLUSTER=$TOP/tests/cluster/cluster.sh
	PROBE=$TOP/tests/cluster/probe
	REPORT=$TOP/tests/cluster/report
	[ -x "$TOP/bin/loadgen" ] || { echo "bin/loadgen is not built: make bin/loadgen"; return 1; }
}

# Whatever the outcome: what the test started is stopped. A fault left in
# place would fail every test after it, so the cluster is repaired too.
teardown() {
	stop_tracked
	[ -z "${REPAIR:-}" ] || eval "$REPAIR" >/dev/null 2>&1 || true
}

LB=10.77.15.40
SENTINEL=10.77.15.30
DB="host=10.77.15.31,10.77.15.32 port=5432,5432 dbname=labpulse user=labpulse target_session_attrs=read-write connect_timeout=2"
# The class, sped up tenfold: about 150 POSTs a second in all.
THINK=0.1
RUN_S=40
FAULT_AFTER_S=10

now_ms() { echo $(($(date +%s%N) / 1000000)); }

in_client() { "$CLUSTER" exec lpc-client "$@"; }

# wait_long SECONDS CMD...: poll CMD every 100 ms for up to SECONDS (the
# cluster's failovers take seconds, beyond wait_for's 15).
wait_long() {
	local end=$(($(now_ms) + $1 * 1000))
	shift
	until "$@"; do
		[ "$(now_ms)" -lt "$end" ] || return 1
		sleep 0.1
	done
}

# start_load NAME: loadgen and the probe in lpc-client, through HAProxy.
start_load() {
	J=$BATS_TEST_TMPDIR/$1.json P=$BATS_TEST_TMPDIR/$1.probe
	LG_OUT=$BATS_TEST_TMPDIR/$1.out LG_ERR=$BATS_TEST_TMPDIR/$1.err
	: >"$P"
	"$CLUSTER" exec lpc-client "$PROBE" --out "$P" "http://$LB:8000" \
		</dev/null >/dev/null 2>"$BATS_TEST_TMPDIR/$1.probe.err" 3>&- &
	PROBE_PID=$!
	track "$PROBE_PID"
	# the figures are asserted from the JSON below; the SLOs loadgen
	# checks itself are the same ones, so that its exit status agrees
	"$CLUSTER" exec lpc-client "$TOP/bin/loadgen" --url "http://$LB:8000" \
		--notify "http://$LB:8080" --setup --verify-db --db "$DB" \
		--students 200 --dashboards 10 --think "$THINK" --duration "${RUN_S}s" \
		--timeout 20s --slo 'missing=0,duplicated=0,delivery>=100%' --json "$J" \
		</dev/null >"$LG_OUT" 2>"$LG_ERR" 3>&- &
	LG_PID=$!
	track "$LG_PID"
	LG_START=$(now_ms)
}

# under_way: the probe's events are accepted and loadgen's dashboards have
# had time to connect; then the fault waits until about FAULT_AFTER_S into
# the load (a schedule, not a condition: the fault may come at any moment).
under_way() {
	wait_long 60 grep -q ' 202$' "$P" || { echo "the probe got no 202 in 60 s"; tail -n 5 "$P"; return 1; }
	while [ $(($(now_ms) - LG_START)) -lt $((FAULT_AFTER_S * 1000)) ]; do
		running "$LG_PID" || { echo "loadgen ended early"; cat "$LG_ERR"; return 1; }
		sleep 0.2
	done
}

# running PID: the process is there and not a zombie (a child of this
# shell stays one until it is waited for).
running() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	[ "${s%% *}" != Z ]
}

# served_after MS: the probe had a 202 answered after MS.
served_after() { awk -v t="$1" '$1 > t && $2 == 202 { f = 1; exit } END { exit !f }' "$P"; }

# finish: stop the probe, wait for loadgen (its run, drain and checks),
# assert what must hold, print the figures.
finish() {
	local w status
	wait_long 120 eval '! running "$LG_PID"' ||
		{ echo "loadgen still runs 120 s after it started"; tail -n 20 "$LG_ERR"; return 1; }
	status=0
	wait "$LG_PID" || status=$?
	# shellcheck disable=SC2046 # PID:START words
	stop_procs $(proc_tree "$PROBE_PID")
	[ -s "$J" ] || { echo "loadgen (status $status) wrote no report"; tail -n 20 "$LG_ERR"; return 1; }
	"$REPORT" --json "$J" --probe "$P" --fault "$FAULT" ${HEAL:+--heal "$HEAL"} \
		>"$BATS_TEST_TMPDIR/figures" || { cat "$BATS_TEST_TMPDIR/figures"; return 1; }
	while read -r w; do echo "# $BATS_TEST_DESCRIPTION: $w" >&3; done <"$BATS_TEST_TMPDIR/figures"
	# nothing acknowledged lost, nothing stored twice, every dashboard had
	# every acknowledged event of its class
	run jq -r '"missing=\(.verify_db.missing) duplicated=\(.verify_db.duplicated) delivery=\([.dashboards[].delivery_pct] | unique | map(tostring) | join(","))"' "$J"
	assert_output 'missing=0 duplicated=0 delivery=100'
	run jq -r '.verify_db.acked > 1000 and (.dashboards | length) == 10' "$J"
	assert_output true
	[ "$status" -eq 0 ] || { echo "loadgen exited $status"; tail -n 20 "$LG_OUT" "$LG_ERR"; return 1; }
}

# redis_primary: redis1, redis2 or redis3, as Sentinel says.
redis_primary() {
	local a
	a=$(in_client redis-cli -h "$SENTINEL" -p 26379 sentinel get-master-addr-by-name labpulse | head -n 1)
	case $a in
	10.77.15.21) echo redis1 ;;
	10.77.15.22) echo redis2 ;;
	10.77.15.30) echo redis3 ;;
	*) echo "no Redis primary per Sentinel: '$a'" >&2; return 1 ;;
	esac
}

redis_role() { in_client redis-cli -h "$1" -p 6379 role 2>/dev/null | head -n 1; }

# pg_role ADDR: t for a standby, f for the primary.
pg_role() {
	in_client psql "host=$1 port=5432 dbname=labpulse user=labpulse connect_timeout=2" \
		-tAXc 'select pg_is_in_recovery()' 2>/dev/null
}

# pg_primary: pg1 or pg2, the one that takes writes.
pg_primary() {
	if [ "$(pg_role 10.77.15.31)" = f ]; then echo pg1
	elif [ "$(pg_role 10.77.15.32)" = f ]; then echo pg2
	else echo "no PostgreSQL primary" >&2; return 1
	fi
}

# committed_since ADDR MS: the rows committed on ADDR after MS (epoch ms).
committed_since() {
	in_client psql "host=$1 port=5432 dbname=labpulse user=labpulse connect_timeout=2" \
		-tAXc "select count(*) from events where committed_at > to_timestamp($2 / 1000.0)" 2>/dev/null
}

pg_addr() { case $1 in pg1) echo 10.77.15.31 ;; pg2) echo 10.77.15.32 ;; esac; }
redis_addr() { case $1 in redis1) echo 10.77.15.21 ;; redis2) echo 10.77.15.22 ;; redis3) echo 10.77.15.30 ;; esac; }

@test "the probe and the report: figures from a log of answers" {
	# before the fault, 202s 20 ms apart; after it, a failure, a gap, then
	# 202s again: recovery at the first of those
	printf '%s\n' '1000 202' '1020 202' '1040 503' '1060 0' '1900 202' '1920 202' >"$BATS_TEST_TMPDIR/p"
	printf '%s\n' '{"timeline_t0_ms": 0, "total": {"events": {"lost": 3}}, "timeline": [
		{"t_s": 1, "e2e_p99_us": 1000, "lost": 0}, {"t_s": 2, "e2e_p99_us": 7500, "lost": 2},
		{"t_s": 3, "e2e_p99_us": 2000, "lost": 1}, {"t_s": 9, "e2e_p99_us": 9000000, "lost": 0}]}' >"$BATS_TEST_TMPDIR/j"
	run -0 --separate-stderr "$REPORT" --json "$BATS_TEST_TMPDIR/j" --probe "$BATS_TEST_TMPDIR/p" --fault 1030
	assert_output "$(printf '%s\n' recovery_ms=870 unavailable_ms=880 probe_failed=2 given_up=3 \
		given_up_window=3 e2e_p99_ms_window=7.5 window_s=1.0-4.9)"
	# a gap alone is an interruption too; the window goes on to --heal
	printf '%s\n' '1000 202' '1020 202' '1500 202' '1520 202' >"$BATS_TEST_TMPDIR/p"
	run -0 --separate-stderr "$REPORT" --json "$BATS_TEST_TMPDIR/j" --probe "$BATS_TEST_TMPDIR/p" --fault 1010 --heal 6000
	assert_line recovery_ms=490
	assert_line window_s=1.0-9.0
	assert_line e2e_p99_ms_window=9000.0
	# no interruption: 0
	printf '%s\n' '1000 202' '1020 202' '1040 202' >"$BATS_TEST_TMPDIR/p"
	run -0 --separate-stderr "$REPORT" --json "$BATS_TEST_TMPDIR/j" --probe "$BATS_TEST_TMPDIR/p" --fault 1010
	assert_line recovery_ms=0
	assert_line probe_failed=0
	# never served again: exit 1
	printf '%s\n' '1000 202' '1020 0' '2020 0' >"$BATS_TEST_TMPDIR/p"
	run -1 --separate-stderr "$REPORT" --json "$BATS_TEST_TMPDIR/j" --probe "$BATS_TEST_TMPDIR/p" --fault 1010
	assert_line recovery_ms=none
	# bad input, bad usage
	printf '%s\n' '1000 oops' >"$BATS_TEST_TMPDIR/p"
	run -65 --separate-stderr "$REPORT" --json "$BATS_TEST_TMPDIR/j" --probe "$BATS_TEST_TMPDIR/p" --fault 1010
	assert_equal "$stderr" "report: error: $BATS_TEST_TMPDIR/p:1: not \"MS STATUS\": '1000 oops'"
	run -64 --separate-stderr "$REPORT" --probe "$BATS_TEST_TMPDIR/p" --fault 1010
	assert_equal "${stderr_lines[-1]}" "report: error: the following arguments are required: --json"
	run -64 --separate-stderr "$PROBE" --interval 0 http://127.0.0.1:1
	assert_equal "${stderr_lines[-1]}" "probe: error: argument --interval: 0: not from 1 to 60000"
	# the probe against nothing: one line per try, status 0, stops on TERM
	"$PROBE" --interval 20 --timeout 200 --out "$BATS_TEST_TMPDIR/p0" http://127.0.0.1:1 </dev/null 3>&- &
	pp=$!
	track "$pp"
	wait_for eval '[ "$(wc -l <"$BATS_TEST_TMPDIR/p0")" -ge 3 ]'
	kill -TERM "$pp"
	wait "$pp"
	run -0 awk '$2 != 0 || $1 !~ /^[0-9]+$/' "$BATS_TEST_TMPDIR/p0"
	assert_output ""
}

# The faults in the order of what they leave behind: the app hosts come back
# as they were; Redis and PostgreSQL come back with their roles swapped.
@test "app host lpc-app1 torn down and restored" {
	REPAIR="'$CLUSTER' restore-host app1"
	start_load app1
	under_way
	FAULT=$(now_ms)
	"$CLUSTER" kill-host app1
	# HAProxy takes app1 out in about a second; app1 stays away 10 s, then
	# the probe must be served
	wait_long 10 eval '[ $(($(now_ms) - FAULT)) -ge 10000 ]'
	wait_long 60 served_after "$((FAULT + 10000))" || { echo "no 202 10 s after the fault"; tail -n 5 "$P"; false; }
	"$CLUSTER" restore-host app1
	HEAL=$(now_ms)
	REPAIR=
	finish
}

@test "app host lpc-app2 partitioned for 10 s, then healed" {
	REPAIR="'$CLUSTER' heal app2"
	start_load partition
	under_way
	FAULT=$(now_ms)
	"$CLUSTER" partition app2
	wait_long 10 eval '[ $(($(now_ms) - FAULT)) -ge 10000 ]'
	"$CLUSTER" heal app2
	HEAL=$(now_ms)
	REPAIR=
	wait_long 60 served_after "$HEAL" || { echo "no 202 in 60 s after the heal"; tail -n 5 "$P"; false; }
	finish
}

@test "Redis primary killed, brought back as replica (ingest --redis-wait 1)" {
	local old
	old=$(redis_primary)
	REPAIR="'$CLUSTER' start $old"
	start_load redis
	under_way
	FAULT=$(now_ms)
	"$CLUSTER" kill "$old"
	# Sentinel promotes the replica within seconds, the daemons follow it
	wait_long 60 eval 'p=$(redis_primary 2>/dev/null) && [ "$p" != "'"$old"'" ]' ||
		{ echo "no new Redis primary in 60 s"; "$CLUSTER" status; false; }
	# the other replica follows the new primary, and WAIT 1 is met again:
	# ingest serves before the old primary is back
	PROMOTED=$(now_ms)
	wait_long 60 served_after "$PROMOTED" || { echo "no 202 in 60 s after the promotion"; tail -n 5 "$P"; false; }
	"$CLUSTER" start "$old"
	HEAL=$(now_ms)
	REPAIR=
	# the old primary is a replica of the new one
	wait_long 30 eval '[ "$(redis_role '"$(redis_addr "$old")"')" = slave ]' ||
		{ echo "$old is not a replica: $(redis_role "$(redis_addr "$old")")"; false; }
	finish
}

@test "PostgreSQL primary killed, the standby promoted, the old primary back as secondary" {
	local old
	old=$(pg_primary)
	REPAIR="'$CLUSTER' start $old"
	start_load pg
	under_way
	FAULT=$(now_ms)
	"$CLUSTER" kill "$old"
	# ingest does not touch PostgreSQL: the probe may never notice; the
	# standby is promoted by the monitor within seconds
	wait_long 60 eval 'p=$(pg_primary 2>/dev/null) && [ "$p" != "'"$old"'" ]' ||
		{ echo "no new PostgreSQL primary in 60 s"; "$CLUSTER" status; false; }
	PROMOTED=$(now_ms)
	# batch-commit commits on the new primary: the time from the fault to
	# its first row there is what the dashboards' snapshots wait
	wait_long 60 eval '[ "$(committed_since "$(pg_addr "$(pg_primary)")" "$FAULT")" -gt 0 ]' ||
		{ echo "no commit on the new primary in 60 s"; false; }
	echo "# $BATS_TEST_DESCRIPTION: promoted_ms=$((PROMOTED - FAULT)) commits_resumed_ms=$(($(now_ms) - FAULT))" >&3
	wait_long 60 served_after "$PROMOTED" || { echo "no 202 in 60 s after the promotion"; tail -n 5 "$P"; false; }
	"$CLUSTER" start "$old"
	HEAL=$(now_ms)
	REPAIR=
	wait_long 120 eval '[ "$(pg_role '"$(pg_addr "$old")"')" = t ]' ||
		{ echo "$old did not come back as a standby"; "$CLUSTER" status; false; }
	finish
}
