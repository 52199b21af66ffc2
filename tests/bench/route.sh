#!/bin/sh
# route.sh: the CPU route spends per event, draining a backlog of stamped
# events (tests/bench/genevents.awk) from a Redis of its own with the
# shipped rules and its default flags; and, when asked, a copy of what it
# wrote, to compare two builds. Run by `make bench`, or alone:
#   sh tests/bench/route.sh
# ROUTE_BENCH_EVENTS sets the events of a run (default 200000),
# ROUTE_BENCH_RUNS the runs whose median is reported (default 3),
# ROUTE_BENCH_DUMP=FILE writes the routed stream's fields (without ids) of
# the last run to FILE, ROUTE_BENCH_PERF=FILE records `perf record -g` of
# the last run's route to FILE (ROUTE_BENCH_PERF_OPTS: its options, -g
# unless told), ROUTE_BENCH_PROG=PATH runs another build of route.
prog="bench-route"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
gen=$top/tests/bench/genevents.awk
n=${ROUTE_BENCH_EVENTS:-200000}
runs=${ROUTE_BENCH_RUNS:-3}
dump=${ROUTE_BENCH_DUMP:-}
perfout=${ROUTE_BENCH_PERF:-}
route=${ROUTE_BENCH_PROG:-$top/bin/route}

case $n in ''|*[!0-9]*|0*) die 64 "ROUTE_BENCH_EVENTS must be a positive integer, not '$n'" ;; esac
case $runs in [1-9]) ;; *) die 64 "ROUTE_BENCH_RUNS must be 1 to 9, not '$runs'" ;; esac
need_target=bin/route
need_files "$route"
need_tools redis-server redis-cli awk
[ -z "$perfout" ] || need_tools perf

redis_pid=
route_pid=
# shellcheck disable=SC2317 # called by the EXIT trap
bench_stop() {
	for p in $route_pid $redis_pid; do
		kill -TERM "$p" 2>/dev/null
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	done
}
bench_home lpbench-route
sock=$home/redis.sock
redis() { redis-cli -s "$sock" "$@"; }

redis-server --unixsocket "$sock" --port 0 --save '' --appendonly no \
	--dir "$home" --daemonize no >"$home/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 100); do redis PING >/dev/null 2>&1 && break; sleep 0.1; done
redis PING >/dev/null 2>&1 || die 69 "redis-server did not start"

hz=$(getconf CLK_TCK)
# lag of the group route: entries not yet delivered, and pending ones
group_left() {
	redis XINFO GROUPS labpulse:events | awk '
		NR % 2 == 1 { k = $0; next }
		k == "name" { g = $0 }
		g == "route" && (k == "lag" || k == "pending") { s += $0 }
		END { print s + 0 }'
}

us=
rates=
i=0
while [ "$i" -lt "$runs" ]; do
	i=$((i + 1))
	redis FLUSHALL >/dev/null
	awk -v n="$n" -v seed=7 -v copy=/dev/null -f "$gen" |
		redis --pipe >/dev/null || die 70 "cannot fill the stream"
	[ "$(redis XLEN labpulse:events)" = "$n" ] || die 70 "the stream does not hold $n events"
	redis XGROUP CREATE labpulse:events route 0 >/dev/null
	t0=$(date +%s.%N)
	"$route" --redis "unix:$sock" --stats none --consumer bench \
		--trim-interval 0 --rules "$top/etc/labpulse/route.jq" </dev/null \
		2>>"$home/route.log" &
	route_pid=$!
	if [ -n "$perfout" ] && [ "$i" = "$runs" ]; then
		# shellcheck disable=SC2086 # the options, split
		perf record ${ROUTE_BENCH_PERF_OPTS:--g} -o "$perfout" -p "$route_pid" >/dev/null 2>&1 &
		perf_pid=$!
	fi
	while [ "$(group_left)" != 0 ]; do
		kill -0 "$route_pid" 2>/dev/null || {
			tail -n 5 "$home/route.log" >&2
			die 70 "route exited during the run"
		}
		sleep 0.05
	done
	t1=$(date +%s.%N)
	ticks=$(ticks "$route_pid")
	[ -n "$perfout" ] && [ "$i" = "$runs" ] && { kill -INT "$perf_pid"; wait "$perf_pid"; }
	kill -TERM "$route_pid"
	wait "$route_pid" || die 70 "route did not exit 0"
	route_pid=
	cpu=$(calc 't / hz / n * 1000000' t="$ticks" hz="$hz" n="$n" fmt=%.2f)
	rate=$(calc 'n / (b - a)' n="$n" a="$t0" b="$t1" fmt=%.0f)
	info "run $i: $n events, $cpu us CPU an event, $rate events/s"
	us="$us $cpu"
	rates="$rates $rate"
done
[ -z "$dump" ] || redis --raw XRANGE labpulse:routed - + |
	awk 'NR % 5 != 1' >"$dump"
# shellcheck disable=SC2086 # the figures, one an argument
med=$(median $us)
# shellcheck disable=SC2086
rate=$(median $rates)
# the machine may be shared: the median of the runs, and a ratio between
# two builds measured in turn, say more than one figure
printf 'route: %s us CPU an event, %s events/s (median of %s runs of %s events)\n' \
	"$med" "$rate" "$runs" "$n"
printf '{"bench":"route","events":%s,"runs":%s,"cpu_us_per_event":%s,"events_per_s":%s}\n' \
	"$n" "$runs" "$med" "$rate" >"$out/route.json"
