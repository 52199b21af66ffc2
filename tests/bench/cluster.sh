#!/bin/sh
# cluster.sh: the scale-out figure: the events per second the cluster of
# tests/cluster/cluster.sh sustains through HAProxy with its two app hosts,
# against the same cluster with one app host, measured in the same run.
#  - two hosts: HAProxy's own frontend, 10.77.15.40:8000, app1 and app2;
#  - one host: a second HAProxy in lpc-lb, on :8100, whose only server is
#    app1 (the same daemons, the same Redis and PostgreSQL);
#  - the client: tests/bench/httpbench in lpc-client, closed loop, batches
#    of events as the extension posts them when it catches up; 3 runs of
#    each, interleaved, medians. Sustainable is end to end: the events
#    accepted (202) over the load's time plus the time the slowest consumer
#    group (batch-commit's, route's, notify's) then takes to catch up, so a
#    front that outruns the consumers gains nothing; the rate accepted is
#    shown beside it.
#  - the reference: redis-benchmark from lpc-client against the Redis
#    primary, XADD of an event-sized entry over the same connections, in
#    the same run: the ceiling of the store every event goes through.
# Every namespace shares this machine's cores: the two app hosts do not
# bring cores of their own, so per core is the rate over the machine's
# cores, for both set-ups. What two hosts add here is concurrency, not
# hardware; the ratio says how much of one host's rate survives the second
# host's overhead (HAProxy balancing, two consumers claiming), and on real
# machines it is the floor of the scale-out.
# Needs root (network namespaces); run by `make bench` when root, or alone:
#   sh tests/bench/cluster.sh
# BENCH_RUN_S the seconds of each run (default 10), BENCH_CONNS the
# connections (default 32), BENCH_BATCH the events in a POST (default 10).
# A benchmark reports: only a step that cannot run exits non-zero (64 bad
# settings, 69 a tool or build is missing, 70 a run failed).
# shellcheck disable=SC2086,SC2046
prog="bench-cluster"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
cluster=$top/tests/cluster/cluster.sh
bench=$top/tests/bench/httpbench
runs=3
run_s=${BENCH_RUN_S:-10}
conns=${BENCH_CONNS:-32}
batch=${BENCH_BATCH:-10}
warm_s=2
lb=10.77.15.40

case $run_s in ''|*[!0-9]*|0) die 64 "BENCH_RUN_S must be a whole number of seconds above 0" ;; esac
case $conns in ''|*[!0-9]*|0) die 64 "BENCH_CONNS must be a whole number above 0" ;; esac
case $batch in ''|*[!0-9]*|0) die 64 "BENCH_BATCH must be a whole number above 0" ;; esac
[ "$(id -u)" -eq 0 ] || die 69 "the cluster needs root (network namespaces)"
need_files "$cluster" "$bench" "$top/bin/ingest" "$top/bin/batch-commit"
need_tools jq awk haproxy redis-benchmark redis-cli
cores=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)

work=$(mktemp -d "${TMPDIR:-/tmp}/lpbench-cluster.XXXXXX") || die 69 "cannot make a temp folder"
mkdir -p "$out" || die 69 "cannot make $out"
lb1_pid=
up=0
# shellcheck disable=SC2317 # called by the traps
cleanup() {
	[ -n "$lb1_pid" ] && kill -TERM "$lb1_pid" 2>/dev/null
	[ "$up" = 1 ] && "$cluster" down >/dev/null 2>&1
	if [ "$keep" = 1 ]; then
		info "logs kept in $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

info "bringing the cluster up"
up=1
"$cluster" up >"$work/up.log" 2>&1 </dev/null || { cat "$work/up.log" >&2; die 70 "the cluster did not come up"; }
client() { "$cluster" exec lpc-client "$@"; }
primary=$(client redis-cli -h 10.77.15.30 -p 26379 sentinel get-master-addr-by-name labpulse | head -n 1)
case $primary in 10.77.15.*) ;; *) die 70 "Sentinel names no Redis primary: '$primary'" ;; esac

# One app host: a HAProxy of its own in lpc-lb, as the cluster's but for
# the one server.
cat >"$work/one.cfg" <<EOF
global
    maxconn 8192
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 10s
frontend ingest1
    bind $lb:8100
    default_backend ingest1
backend ingest1
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2
    server app1 10.77.15.11:8000 check
EOF
"$cluster" exec lpc-lb haproxy -db -f "$work/one.cfg" >"$work/one.log" 2>&1 </dev/null &
lb1_pid=$!
for _ in $(seq 100); do
	client curl -fsS -o /dev/null --max-time 1 "http://$lb:8100/healthz" 2>/dev/null && break
	kill -0 "$lb1_pid" 2>/dev/null || break
	sleep 0.1
done
client curl -fsS -o /dev/null --max-time 1 "http://$lb:8100/healthz" ||
	{ cat "$work/one.log" >&2; die 70 "the one-host HAProxy did not start"; }

# lag: entries of the stream the slowest consumer group (batch-commit's,
# route's, notify's) has not read yet: what the consumers have not caught
# up with. Entries read and not yet acknowledged are not counted: a group
# may keep some pending by design.
lag() {
	client redis-cli -h "$primary" -p 6379 --no-auth-warning xinfo groups labpulse:events 2>/dev/null |
		awk 'prev == "lag" && $1 + 0 > n { n = $1 + 0 } { prev = $1 } END { print n + 0 }'
}

# run NAME URL I: one httpbench run, saved as $work/NAME.I.json
run() {
	rf=$work/$1.$3
	client "$bench" --url "$2" --conns "$conns" --batch "$batch" --classes 10 \
		--duration "$run_s" --warmup "$warm_s" --json >"$rf.json" 2>"$rf.err"
	rc=$?
	if [ "$rc" -gt 1 ] || ! jq -e .requests "$rf.json" >/dev/null 2>&1; then
		cat "$rf.err" >&2
		die 70 "httpbench against $2 failed with status $rc"
	fi
	lag >"$rf.lag"
	# the consumers catch up, up to 120 s: the load's events through the
	# whole pipeline over the load's time and that
	t0=$(date +%s%N)
	for _ in $(seq 1200); do [ "$(lag)" -eq 0 ] && break; sleep 0.1; done
	drain_s=$(calc '(t1 - t0) / 1e9' t0="$t0" t1="$(date +%s%N)")
	[ "$(lag)" -eq 0 ] || info "  the consumers did not catch up in 120 s"
	# (calc sets f, e and a of its own: this function's names differ)
	{ calc 'n / (w + d)' n="$(jq .events.accepted "$rf.json")" \
		w="$(jq .cpu.wall_s "$rf.json")" d="$drain_s" fmt=%.1f; echo; } >"$rf.sustained"
	info "  $1 run $3: $(jq -r '"\(.events_per_s) events/s accepted, \(.requests_per_s) POSTs/s, p99 \(.latency_ms.p99) ms, status \(.status|tostring), errors \(.errors|tostring)"' "$rf.json"); the slowest consumer group $(cat "$rf.lag") behind, caught up in ${drain_s}s: $(cat "$rf.sustained") events/s end to end"
}

event_bytes=400
payload=$(awk -v n="$event_bytes" 'BEGIN { while (n-- > 0) printf "x" }')
xadd() {
	line=$(client redis-benchmark -h "$primary" -p 6379 -c "$conns" -n "$1" -P 1 --csv \
		XADD labpulse:benchref '*' event "$payload" 2>/dev/null | tail -n 1)
	client redis-cli -h "$primary" -p 6379 DEL labpulse:benchref >/dev/null
	# from the end: the command itself holds commas
	v=$(printf '%s\n' "$line" | awk -F, '{ f = $(NF - 6); gsub(/"/, "", f); print f }')
	case $v in ''|*[!0-9.]*) die 70 "redis-benchmark gave no figure: $line" ;; esac
	echo "$v"
}

info "$runs runs each of $run_s s (after $warm_s s of warm-up), $conns connections, $batch events a POST; two hosts and one, interleaved"
ref_runs=
for i in $(seq "$runs"); do
	run two "http://$lb:8000/api/v1/events" "$i"
	run one "http://$lb:8100/api/v1/events" "$i"
	v=$(xadd 100000)
	ref_runs="$ref_runs $v"
	info "  redis-benchmark run $i: $v XADD/s against the primary $primary"
done

values() { for i in $(seq "$runs"); do jq -r "$1" "$work/$2.$i.json"; done; }
files() { for i in $(seq "$runs"); do cat "$work/$2.$i.$1"; done; }
sum() { awk '{ n += $1 } END { print n + 0 }'; }
ref=$(median $ref_runs)
acc_two=$(median $(values .events_per_s two))
acc_one=$(median $(values .events_per_s one))
sus_two=$(median $(files sustained two))
sus_one=$(median $(files sustained one))
errs_two=$(values '[.errors[]] | add' two | sum)
errs_one=$(values '[.errors[]] | add' one | sum)
bad_two=$(values '.requests.answered - .requests.ok' two | sum)
bad_one=$(values '.requests.answered - .requests.ok' one | sum)
lag_two=$(files lag two | sort -g | tail -n 1)
lag_one=$(files lag one | sort -g | tail -n 1)
r=$(ratio "$sus_two" "$sus_one")
r_acc=$(ratio "$acc_two" "$acc_one")
pc_two=$(calc 'a / c' a="$sus_two" c="$cores" fmt=%.0f)
pc_one=$(calc 'a / c' a="$sus_one" c="$cores" fmt=%.0f)
ref_two=$(ratio "$acc_two" "$ref")
ref_one=$(ratio "$acc_one" "$ref")

cat <<EOF

cluster scaling (medians of $runs runs; the $cores cores shared by every host)
                   end to end   per core    accepted   of XADD   errors  non-2xx   max lag
                   (events/s)              (events/s)      ref
  two app hosts  $(printf '%12.0f %10s %11.0f %9s %8s %8s %9s' "$sus_two" "$pc_two" "$acc_two" "$ref_two" "$errs_two" "$bad_two" "$lag_two")
  one app host   $(printf '%12.0f %10s %11.0f %9s %8s %8s %9s' "$sus_one" "$pc_one" "$acc_one" "$ref_one" "$errs_one" "$bad_one" "$lag_one")
  two over one: $r end to end, $r_acc accepted
  reference: redis-benchmark XADD of $event_bytes bytes against the primary, $conns clients: $ref/s
  end to end: the events accepted over the load's time and the time the
  slowest consumer group then took to catch up; per core: over the machine's
  $cores cores, which both set-ups share
EOF

cat >"$out/cluster.json" <<EOF
{"runs": $runs, "run_s": $run_s, "conns": $conns, "batch": $batch, "cores": $cores,
 "two_hosts": {"end_to_end_per_s": $sus_two, "per_core": $pc_two, "accepted_per_s": $acc_two,
   "accepted_of_reference": $ref_two, "errors": $errs_two, "non_2xx": $bad_two, "max_lag": $lag_two},
 "one_host": {"end_to_end_per_s": $sus_one, "per_core": $pc_one, "accepted_per_s": $acc_one,
   "accepted_of_reference": $ref_one, "errors": $errs_one, "non_2xx": $bad_one, "max_lag": $lag_one},
 "two_over_one": $r, "two_over_one_accepted": $r_acc,
 "reference": {"tool": "redis-benchmark", "command": "XADD", "bytes": $event_bytes, "per_s": $ref}}
EOF
info "figures in $out/cluster.json"
