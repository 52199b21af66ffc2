#!/usr/bin/env bats
# Redis through Sentinel: ingest, batch-commit, route and notify given a
# sentinel:// URL find the primary, carry events end to end, follow it
# when Sentinel fails over, and never write to the node that is no longer
# the primary; against real redis-server and redis-sentinel processes.

setup_file() {
	load helper/common
	load helper/redis-ha
	stack_up
	redis_ha_up 3
	local url=$REDIS_HA_URL
	start_ingest si --redis "$url"
	start_bc sb --redis "$url" --consumer sb
	start_route sr --redis "$url" --consumer sr \
		--rules "$TOP/etc/labpulse/route.jq"
	start_notify sn --redis "$url"
	export si_URL si_PID si_LOG si_STATS sb_PID sb_LOG sr_PID sr_LOG \
		sn_URL sn_PID sn_LOG sn_STATS
}

teardown_file() {
	load helper/common
	stop_tracked
	stack_down
}

setup() {
	load helper/common
	load helper/redis-ha
}

teardown() {
	stop_tracked
}

# post_to URL CLASS EVENTID: one event to the ingest at URL, a 202.
post_to() {
	local body
	printf -v body '[{"eventId":"%s","eventType":"cell_executed","eventTime":"2026-11-25T10:15:30.123Z","classId":"%s","emailAddress":"s1@example.edu","userName":"Ada","notebookPath":"lab1.ipynb","cellIndex":3,"code":"x = 1","hasError":false}]' \
		"$3" "$2"
	post "$1/api/v1/events" "$body"
	assert_equal "$status_code" 202
}

# routed_on PORT EVENTID: the routed stream of the server on PORT has a
# message of the event.
routed_on() {
	rha_cli "$1" XRANGE labpulse:routed - + | grep -q "\"eventId\":\"$2\""
}

# daemon_clients PORT: the connections to the server on PORT that are
# neither a sentinel's nor this query's own.
daemon_clients() {
	rha_cli "$1" CLIENT LIST TYPE normal |
		grep -v -e ' name=sentinel-' -e ' cmd=client|list ' || true
}

@test "bad sentinel URLs: the reason, the password never shown; 78 from a daemon, 64 from poolstat" {
	run -78 --separate-stderr ingest --listen 127.0.0.1:0 --stats none \
		--redis 'sentinel://:s3cret@127.0.0.1:1/lab pulse'
	assert_equal "$stderr" "labpulse-ingest: error: --to stream:events: bad Redis URL 'sentinel://***@127.0.0.1:1/lab pulse': bad master name 'lab pulse' (1 to 64 of A-Z a-z 0-9 . _ -)"
	run -78 --separate-stderr batch-commit --stats none \
		--redis 'sentinel://a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8,i:9/m'
	assert_equal "$stderr" "labpulse-batch-commit: error: --from stream:events@commit: bad Redis URL 'sentinel://a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8,i:9/m': more than 8 sentinels"
	run -78 --separate-stderr route --stats none --redis 'sentinel://h/m'
	assert_equal "$stderr" "labpulse-route: error: --redis: bad Redis URL 'sentinel://h/m': bad sentinel 'h' (expected HOST:PORT, PORT from 1 to 65535)"
	LABPULSE_REDIS='sentinel://:s3cret@h:26379' run -78 --separate-stderr \
		notify --listen 127.0.0.1:0 --stats none
	assert_equal "$stderr" "labpulse-notify: error: --from stream:routed: bad Redis URL 'sentinel://***@h:26379' (expected sentinel://HOST:PORT[,HOST:PORT...]/MASTER[/DB])"
	run -64 --separate-stderr poolstat --redis 'sentinel://h:1/m/x'
	assert_equal "${stderr_lines[0]}" "labpulse-poolstat: error: --redis: bad Redis URL 'sentinel://h:1/m/x': bad database 'x' (from 0 to 10000)"
	[[ ${stderr_lines[1]} == "usage: labpulse poolstat "* ]]
}

@test "through Sentinel an event posted is committed and routed; each daemon names the primary it found" {
	local p=$REDIS_HA_PRIMARY_PORT
	post_to "$si_URL" sen1 sen1-a
	wait_rows sen1 1
	redis_ha_wait 30 "routed_on $p sen1-a"
	# replicated (asynchronously), not written there
	redis_ha_wait 30 "[ \"\$(rha_cli $REDIS_HA_REPLICA_PORT XLEN labpulse:events)\" = 1 ]"
	for log in "$si_LOG" "$sb_LOG" "$sr_LOG" "$sn_LOG"; do
		grep -q ": info: Redis primary is 127.0.0.1:$p (via sentinel 127.0.0.1:" "$log" ||
			{ cat "$log" >&2; false; }
	done
	run stats "$si_STATS"
	assert_equal "$(jq -r '.redis.url, .redis.connected' <<<"$output")" \
		"$REDIS_HA_URL"$'\n'true
	run stats "$sn_STATS"
	assert_success
}

@test "after SENTINEL FAILOVER every daemon follows the new primary and nothing is written to the old one" {
	local old=$REDIS_HA_PRIMARY_PORT new log
	redis_ha_failover
	new=$REDIS_HA_PRIMARY_PORT
	assert_equal "$REDIS_HA_REPLICA_PORT" "$old"
	# each daemon found the new primary through the sentinels
	for log in "$si_LOG" "$sb_LOG" "$sr_LOG" "$sn_LOG"; do
		redis_ha_wait 60 "grep -q ': info: Redis primary is 127.0.0.1:$new (via sentinel 127.0.0.1:' '$log'" ||
			{ cat "$log" >&2; false; }
	done
	# what the old primary counts from now on: nothing of a daemon's
	rha_cli "$old" CONFIG RESETSTAT
	redis_ha_wait 30 "[ -z \"\$(daemon_clients $old)\" ]" ||
		{ daemon_clients "$old" >&2; false; }
	# a POST after the failover is stored in the new primary, committed
	# and routed there
	redis_ha_wait 30 "jq -e '.redis.connected' <<<\"\$(stats '$si_STATS')\" >/dev/null"
	post_to "$si_URL" sen2 sen2-a
	wait_rows sen2 1
	redis_ha_wait 30 "routed_on $new sen2-a"
	run rha_cli "$new" XLEN labpulse:events
	assert_output 2
	# the old primary took no command a daemon sent: no write refused
	# as READONLY, no connection of theirs
	run rha_cli "$old" INFO errorstats
	refute_output --partial READONLY
	assert_equal "$(daemon_clients "$old")" ""
	run stats "$si_STATS"
	assert_equal "$(jq -r '.redis.connected, .redis.connects >= 2' <<<"$output")" \
		$'true\ntrue'
	run stats "$sn_STATS"
	assert_equal "$(jq -c '[.. | objects | select(has("connects") and has("url")) | .connected] | all' <<<"$output")" true
	for pid in "$si_PID" "$sb_PID" "$sr_PID" "$sn_PID"; do
		kill -0 "$pid"
	done
}

@test "with no sentinel to reach, ingest keeps retrying, its stats say why, and it does not exit" {
	local p
	p=$(free_port)
	start_ingest lone --redis "sentinel://127.0.0.1:$p/$REDIS_HA_MASTER"
	redis_ha_wait 30 "jq -e '.redis.connected == false and .redis.last_error == \"sentinel 127.0.0.1:$p: Connection refused\"' <<<\"\$(stats '$lone_STATS')\" >/dev/null" || {
		stats "$lone_STATS" >&2
		false
	}
	post "$lone_URL/api/v1/events" "$(ext_event lone-1)"
	assert_equal "$status_code" 503
	run stats "$lone_STATS"
	assert_equal "$(jq -r '.redis.connected, .redis.connects' <<<"$output")" \
		$'false\n0'
	kill -0 "$lone_PID"
}
