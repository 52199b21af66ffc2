#!/usr/bin/env bats
# loadgen: short runs against the test stack (ingest, batch-commit, route,
# notify, PostgreSQL), and against tests/tools/stallserver, a server that
# stalls on cue, for coordinated omission. Each run lasts 3 to 6 seconds.

setup_file() {
	load helper/common
	stack_up
}

teardown_file() {
	load helper/common
	stop_tracked
	stack_down
}

setup() {
	load helper/common
	[ -x "$TOP/bin/loadgen" ] || { echo "bin/loadgen is not built: make bin/loadgen"; return 1; }
	STALLSERVER=${STALLSERVER:-$TOP/tests/tools/stallserver}
}

# Whatever the outcome: a server the test started is stopped.
teardown() {
	stop_tracked
}

# Where nothing listens: a usage error must come before the health check, so
# a value taken by mistake ends the run at once with 69, not a load of 60 s.
NOWHERE="--url http://127.0.0.1:1 --duration 1s"

# A class that posts quickly enough for a few seconds to carry weight: each
# student runs a cell every 1.2 to 1.8 s.
QUICK="--students 30 --classes 3 --think 0.1"

# check_report FILE: every member labpulse-loadgen(1) documents in its JSON
# report is there with its type, and no member it does not document; prints
# what is wrong, nothing when all is well.
check_report() {
	jq -r '
	def num: type == "number";
	def count: num and . >= 0 and . == floor;
	def ts: type == "string" and test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+]00:?00)$");
	def pcts: [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 99.9, 99.99, 99.999, 100];
	# keys($path; $want): members missing or not documented
	def members($path; $want):
		((($want - keys) | map("\($path).\(.): missing")) +
		 ((keys - $want) | map("\($path).\(.): not documented")))[];
	def want($path; $cond; $what): if $cond then empty else "\($path): not \($what)" end;
	def hist($path):
		if type != "object" then "\($path): not a histogram object"
		else members($path; ["count", "min", "max", "mean", "p50", "p90", "p99", "p999", "p9999", "percentiles"]),
			(("count", "min", "max", "mean", "p50", "p90", "p99", "p999", "p9999") as $k |
				want("\($path).\($k)"; .[$k] | num; "a number")),
			want("\($path).count"; .count | count; "a count"),
			want("\($path).percentiles"; (.percentiles | type) == "array" and
				([.percentiles[] | .[0]] == pcts) and
				all(.percentiles[]; length == 2 and (.[1] | num));
				"[[PERCENT, VALUE], ...] at \(pcts | map(tostring) | join(" "))"),
			(if .count > 0 then want($path; .min <= .p50 and .p50 <= .p90 and .p90 <= .p99 and
				.p99 <= .p999 and .p999 <= .p9999 and .p9999 <= .max; "in order min <= p50 <= ... <= max")
			 else empty end)
		end;
	def slo($path; $unit):
		if type != "array" then "\($path): not an array" else
		to_entries[] | .key as $i | .value |
			# why, when it could not be measured
			members("\($path)[\($i)]"; ["expr", "ok", "measured"] + (if $unit then ["unit"] else [] end) +
				(if .measured == null then ["reason"] else [] end)),
			(if .measured == null then want("\($path)[\($i)].reason"; .reason | type == "string"; "a string") else empty end),
			want("\($path)[\($i)].expr"; .expr | type == "string"; "a string"),
			want("\($path)[\($i)].ok"; .ok | type == "boolean"; "a boolean"),
			want("\($path)[\($i)].measured"; .measured | num or . == null; "a number or null")
		end;
	def stage($path; $model; $total):
		# the total may carry an index of its own, or not
		(if $total then del(.index) else . end |
		 members($path; ["index", "students", "rate", "duration_s", "requests", "events", "status",
			"errors", "ack_us", "ack_uncorrected_us", "e2e_us", "delivery_pct", "missing", "duplicated",
			"slo"] - (if $total then ["index"] else [] end))),
		(if $total then empty else want("\($path).index"; .index | count; "a count") end),
		(if $model == "closed" then
			want("\($path).students"; .students | count; "a count (closed model)"),
			want("\($path).rate"; .rate == null; "null (closed model)"),
			want("\($path).ack_uncorrected_us"; .ack_uncorrected_us == null; "null (closed model)")
		 else
			want("\($path).students"; .students == null; "null (open model)"),
			want("\($path).rate"; .rate | num; "a number (open model)"),
			(.ack_uncorrected_us | hist("\($path).ack_uncorrected_us"))
		 end),
		want("\($path).duration_s"; .duration_s | num; "a number"),
		(.requests | members("\($path).requests"; ["sent", "ok", "per_s_offered", "per_s_achieved"] +
			(if $model == "open" then ["due", "unsent"] else [] end))),
		(if $model == "open" then want("\($path).requests.due/unsent"; (.requests.due | count) and
			(.requests.unsent | count); "counts") else empty end),
		want("\($path).requests.sent/ok"; (.requests.sent | count) and (.requests.ok | count); "counts"),
		want("\($path).requests.per_s_*"; (.requests.per_s_offered | num) and (.requests.per_s_achieved | num); "numbers"),
		(.events | members("\($path).events"; ["sent", "acked", "lost", "per_s_offered", "per_s_achieved"])),
		want("\($path).events.sent/acked/lost"; (.events.sent | count) and (.events.acked | count) and (.events.lost | count); "counts"),
		want("\($path).events.per_s_*"; (.events.per_s_offered | num) and (.events.per_s_achieved | num); "numbers"),
		(.status | members("\($path).status"; ["2xx", "4xx", "5xx", "other"])),
		want("\($path).status"; all(.status[]; count); "counts"),
		(.errors | members("\($path).errors"; ["connect", "timeout", "reset", "4xx", "5xx", "total"])),
		want("\($path).errors"; all(.errors[]; count); "counts"),
		want("\($path).errors.total"; .errors.total == .errors.connect + .errors.timeout + .errors.reset +
			.errors["4xx"] + .errors["5xx"] + .status.other; "the sum of the kinds and other answers"),
		want("\($path).delivery_pct"; .delivery_pct | num; "a number"),
		want("\($path).missing/duplicated"; all(.missing, .duplicated; . == null or count); "counts or null"),
		(.ack_us | hist("\($path).ack_us")),
		(.e2e_us | hist("\($path).e2e_us")),
		(.slo | slo("\($path).slo"; false));
	. as $r |
	members(""; ["version", "run_id", "seed", "started_at", "duration_s", "model", "interrupted", "config", "stages",
		"total", "dashboards", "delivery_pct", "verify_db", "cpu", "timeline",
		"timeline_t0_ms", "slo", "first_failed_stage", "pass"]),
	want(".version"; .version == 1; "1"),
	want(".run_id"; .run_id | type == "string" and length > 0; "a string"),
	want(".seed"; .seed | count; "a count"),
	want(".started_at"; .started_at | ts; "an ISO 8601 UTC time"),
	want(".duration_s"; .duration_s | num; "a number"),
	want(".model"; .model == "closed" or .model == "open"; "closed or open"),
	want(".interrupted"; .interrupted | type == "boolean"; "a boolean"),
	(.config | members(".config"; ["students", "classes", "dashboards", "dashboard_proto", "think",
		"batch", "conns", "rate", "stages", "url", "notify", "timeout_s", "setup", "verify_db"]),
		want(".config.counts"; (.students | count) and (.classes | count) and (.dashboards | count) and
			(.batch | count) and (.conns | count); "counts"),
		want(".config.dashboard_proto"; .dashboard_proto | IN("ws", "sse", "mixed"); "ws, sse or mixed"),
		want(".config.think"; if $r.model == "closed" then .think | num else .think == null end;
			"a number (closed) or null (open)"),
		want(".config.timeout_s"; .timeout_s | num; "a number"),
		want(".config.setup/verify_db"; (.setup | type == "boolean") and (.verify_db | type == "boolean"); "booleans"),
		want(".config.rate"; if $r.model == "open" then .rate | num else .rate == null end; "a number (open) or null (closed)"),
		want(".config.url"; .url | type == "string"; "a string"),
		want(".config.notify"; .notify | type == "string" or . == null; "a string or null"),
		want(".config.stages"; (.stages | type) == "array" and (.stages | length) > 0 and
			all(.stages[]; (keys == ["duration_s", "students"] or keys == ["duration_s", "rate"]) and
				(.duration_s | num)); "[{students|rate, duration_s}, ...]")),
	want(".stages"; (.stages | type) == "array" and (.stages | length) == ($r.config.stages | length); "one object a stage"),
	(.stages | to_entries[] | .key as $i | .value | stage(".stages[\($i)]"; $r.model; false),
		want(".stages[\($i)].index"; .index == $i; "its position")),
	(.total | stage(".total"; $r.model; true)),
	want(".dashboards"; (.dashboards | type) == "array" and (.dashboards | length) == $r.config.dashboards; "one object a dashboard"),
	(.dashboards | to_entries[] | .key as $i | .value | ".dashboards[\($i)]" as $p |
		members($p; ["index", "class", "proto", "connected", "refused", "expected", "received",
			"received_acked", "duplicates", "alerts", "delivery_pct", "reconnects", "resyncs",
			"last_error", "e2e_us"]),
		want("\($p).last_error"; .last_error | . == null or type == "string"; "null or a string"),
		want("\($p).index"; .index == $i; "its position"),
		want("\($p).class"; .class | type == "string" and test("^loadgen-[0-9]+$"); "loadgen-K"),
		want("\($p).proto"; .proto | IN("ws", "sse"); "ws or sse"),
		want("\($p).connected"; .connected | type == "boolean"; "a boolean"),
		want("\($p).refused"; .refused == null or ((.refused | keys) == ["code", "reason"] and
			(.refused.code | count) and (.refused.reason | type == "string")); "null or {code, reason}"),
		want("\($p).counts"; all(.expected, .received, .received_acked, .duplicates, .alerts,
			.reconnects, .resyncs; count); "counts"),
		want("\($p).delivery_pct"; .delivery_pct | num and . >= 0 and . <= 100; "a share in percent"),
		(.e2e_us | hist("\($p).e2e_us"))),
	want(".delivery_pct"; .delivery_pct | num; "a number"),
	(if .verify_db == null then empty else .verify_db |
		members(".verify_db"; ["acked", "rows", "missing", "duplicated", "missing_ids", "duplicated_ids",
			"waited_s"]),
		want(".verify_db.waited_s"; .waited_s | num; "a number"),
		want(".verify_db.counts"; all(.acked, .rows, .missing, .duplicated; count); "counts"),
		want(".verify_db.*_ids"; all(.missing_ids, .duplicated_ids; type == "array" and length <= 10 and
			all(.[]; type == "string")); "arrays of at most 10 strings")
	 end),
	(.cpu | members(".cpu"; ["user_s", "sys_s", "pct_of_core", "saturated"]),
		want(".cpu"; (.user_s | num) and (.sys_s | num) and (.pct_of_core | num) and
			(.saturated | type == "boolean"); "numbers and a boolean")),
	want(".timeline"; (.timeline | type) == "array" and (.timeline | length) > 0; "a non-empty array"),
	(.timeline | to_entries[] | .key as $i | .value |
		members(".timeline[\($i)]"; ["t_s", "stage", "requests_per_s", "events_per_s", "ack_p99_us", "e2e_p99_us",
			"errors", "lost"]),
		want(".timeline[\($i)]"; (.t_s | num) and (.stage | count) and (.requests_per_s | num) and (.events_per_s | num) and
			(.ack_p99_us | num) and (.e2e_p99_us | num) and (.errors | count) and (.lost | count); "numbers")),
	want(".timeline_t0_ms"; (.timeline_t0_ms | count) and .timeline_t0_ms > 1.7e12; "milliseconds since the epoch"),
	want(".timeline[].lost"; ([.timeline[].lost] | add) == .total.events.lost; "adding up to .total.events.lost"),
	(.slo | slo(".slo"; true)),
	want(".first_failed_stage"; .first_failed_stage == null or (.first_failed_stage | count); "null or an index"),
	want(".pass"; .pass | type == "boolean"; "a boolean"),
	# what the figures must agree on
	want(".pass"; .pass == all(.slo[]; .ok); "true exactly when every SLO holds"),
	want(".total.requests.ok"; .total.requests.ok == .total.status["2xx"]; "the 2xx answers"),
	want(".total.requests.sent"; .total.requests.sent == ([.stages[].requests.sent] | add); "the sum of the stages"),
	want(".total.events.acked"; .total.events.acked == ([.stages[].events.acked] | add); "the sum of the stages"),
	want(".total.ack_us.count"; .total.ack_us.count == ([.stages[].ack_us.count] | add); "the sum of the stages"),
	want(".delivery_pct"; .delivery_pct == ([.dashboards[].delivery_pct] | min // 100); "the least dashboard share, 100 when none")
	' "$1"
}

# expect FILE FILTER: the jq FILTER is true of the report FILE; when not,
# shows the figures it could be about.
expect() {
	jq -e "$2" "$1" >/dev/null && return 0
	echo "not true of the report: $2"
	jq -c '{model, config, total: (.total | {requests, events, status, errors,
		ack_us: (.ack_us | del(.percentiles)?),
		ack_uncorrected_us: (.ack_uncorrected_us | del(.percentiles)?)}),
		verify_db, delivery_pct, dashboards: [.dashboards[]? | del(.e2e_us)],
		slo, first_failed_stage, pass}' "$1"
	return 1
}

# csv_field FILE ROW COLUMN: a field of the CSV report, by header name.
csv_field() {
	awk -F, -v row="$2" -v col="$3" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
		$1 == row { print $c }' "$1"
}

@test "a short closed-model run passes the default SLOs; the reports hold every figure" {
	J=$BATS_TEST_TMPDIR/closed.json C=$BATS_TEST_TMPDIR/closed.csv H=$BATS_TEST_TMPDIR/closed.html
	run -0 --separate-stderr loadgen $QUICK --dashboards 3 --duration 4s --seed 42 \
		--setup --verify-db --json "$J" --csv "$C" --html "$H"
	assert_equal "${lines[-1]}" PASS
	run -0 check_report "$J"
	assert_output ""
	run_id=$(jq -r .run_id "$J")
	# the configuration as given
	expect "$J" '.model == "closed" and .seed == 42 and .config == {students: 30, classes: 3,
		dashboards: 3, dashboard_proto: "mixed", think: 0.1, batch: 1, conns: 30, rate: null,
		stages: [{students: 30, duration_s: 4}], url: env.LABPULSE_INGEST_URL,
		notify: env.LABPULSE_NOTIFY_URL, timeout_s: 10, setup: true, verify_db: true}'
	expect "$J" '(.stages | length) == 1 and .stages[0].students == 30 and .stages[0].rate == null
		and .first_failed_stage == null and .pass == true and .interrupted == false'
	# the default SLOs, and with --verify-db every event stored, once
	expect "$J" '[.slo[].expr] == ["ack_p99<100ms", "e2e_p99<100ms", "delivery>=99.5%", "lost=0",
		"missing=0", "duplicated=0"] and all(.slo[]; .ok) and all(.stages[0].slo[]; .ok)'
	# a load that carries weight, all answered 2xx, none lost
	expect "$J" '.total.requests.sent >= 40'
	expect "$J" '.total | .requests.sent == .requests.ok and .events.sent == .events.acked and
		.events.lost == 0 and .status["4xx"] == 0 and .status["5xx"] == 0 and ([.errors[]] | add) == 0'
	expect "$J" '.duration_s >= 4 and .duration_s < 6 and .stages[0].duration_s >= 4'
	# --verify-db found every acknowledged event, once; so does psql
	expect "$J" '(.verify_db | del(.waited_s)) == {acked: .total.events.acked, rows: .total.events.acked, missing: 0,
		duplicated: 0, missing_ids: [], duplicated_ids: []}'
	acked=$(jq .total.events.acked "$J")
	assert_equal "$(psql -tAXc "select count(*), count(distinct event_id) from events where event_id like 'lg-$run_id-%'")" "$acked|$acked"
	# student i is student<i>@loadgen.test, in class loadgen-(i mod 3)
	assert_equal "$(psql -tAXc "select count(*) from events where event_id like 'lg-$run_id-%'
		and (student_id !~ '^student[0-9]+@loadgen\.test$'
		  or class_id <> 'loadgen-' || (substring(student_id from '^student([0-9]+)@')::int % 3))")" 0
	# every dashboard got every activity of its class: what PostgreSQL holds
	psql -tAXF ' ' -c "select class_id, count(*) from events where event_id like 'lg-$run_id-%' group by 1 order by 1" \
		>"$BATS_TEST_TMPDIR/by_class"
	assert_equal "$(jq -r '.dashboards[] | "\(.class) \(.expected)"' "$J" | sort)" "$(cat "$BATS_TEST_TMPDIR/by_class")"
	expect "$J" '[.dashboards[] | [.index, .class, .proto, .connected, .refused, .received == .expected,
		.duplicates, .delivery_pct]] == [[0, "loadgen-0", "ws", true, null, true, 0, 100],
		[1, "loadgen-1", "sse", true, null, true, 0, 100], [2, "loadgen-2", "ws", true, null, true, 0, 100]]'
	expect "$J" '.delivery_pct == 100'
	# the e2e latencies are those of the dashboards' messages, merged
	expect "$J" '.total.e2e_us.count > 0 and .total.e2e_us.count == ([.dashboards[].e2e_us.count] | add)'
	# one timeline point a second of the run
	expect "$J" '(.timeline | length) >= 4 and (.timeline | length) <= 6'
	# each second has the dashboards' e2e p99 of what they received in it,
	# none above the run's; nothing was given up
	expect "$J" '.total.e2e_us.max as $max | any(.timeline[]; .e2e_p99_us > 0) and
		all(.timeline[]; .e2e_p99_us <= $max) and all(.timeline[]; .lost == 0)'
	# the timeline began on the wall clock after the run was started
	expect "$J" '.timeline_t0_ms / 1000 >= (.started_at | fromdateiso8601)'
	# --setup made an instructor for the run's classes, and revoked it
	assert_equal "$(psql -tAXc "select i.disabled_at is not null, string_agg(c.class_id, ' ' order by c.class_id)
		from instructors i join instructor_classes c on c.instructor_id = i.id
		where i.name = 'loadgen-$run_id' group by i.id")" 't|loadgen-0 loadgen-1 loadgen-2'
	# the CSV: its header, a row for the stage and one for the total, the
	# figures of the JSON report
	assert_equal "$(head -n 1 "$C")" \
		'stage,students,rate,duration_s,requests,req_per_s,events,events_per_s,ok_2xx,err_4xx,err_5xx,connect,timeout,reset,lost,ack_p50_us,ack_p90_us,ack_p99_us,ack_p999_us,ack_p9999_us,ack_max_us,e2e_p50_us,e2e_p90_us,e2e_p99_us,e2e_p999_us,e2e_p9999_us,e2e_max_us,delivery_pct'
	assert_equal "$(cut -d, -f1 "$C" | tail -n +2 | tr '\n' ' ')" '0 total '
	assert_equal "$(awk -F, 'NR > 1 && NF != 28' "$C")" ""
	assert_equal "$(csv_field "$C" total requests)" "$(jq .total.requests.sent "$J")"
	assert_equal "$(csv_field "$C" total events)" "$(jq .total.events.sent "$J")"
	assert_equal "$(csv_field "$C" total ok_2xx)" "$(jq '.total.status["2xx"]' "$J")"
	assert_equal "$(csv_field "$C" 0 students)" 30
	assert_equal "$(csv_field "$C" 0 rate)" ""
	awk -v a="$(csv_field "$C" total ack_p99_us)" -v b="$(jq .total.ack_us.p99 "$J")" 'BEGIN { exit !(a == b) }'
	awk -v a="$(csv_field "$C" total e2e_max_us)" -v b="$(jq .total.e2e_us.max "$J")" 'BEGIN { exit !(a == b) }'
	awk -v a="$(csv_field "$C" total delivery_pct)" 'BEGIN { exit !(a == 100) }'
	# the HTML: self-contained, with its charts inline
	grep -q '<svg' "$H"
	grep -q PASS "$H"
	run grep -Eio "(src|href)[[:space:]]*=[[:space:]]*[\"']?(https?:)?//[^\"' >]*|@import|url\([\"']?(https?:)?//" "$H"
	assert_output ""
}

@test "a short open-model run passes the default SLOs, with both latencies" {
	J=$BATS_TEST_TMPDIR/open.json
	run -0 --separate-stderr loadgen --students 40 --classes 4 --dashboards 4 --rate 100 \
		--duration 4s --setup --verify-db --json "$J"
	assert_equal "${lines[-1]}" PASS
	# the summary gives the uncorrected figures beside the corrected ones
	assert_output --partial uncorrected
	run -0 check_report "$J"
	assert_output ""
	expect "$J" '.model == "open" and .config.rate == 100 and .config.stages == [{rate: 100, duration_s: 4}]
		and .stages[0].rate == 100 and .stages[0].students == null'
	# 100 requests a second for 4 s, on schedule: 400, give or take the edges
	expect "$J" '.total.requests.sent >= 395 and .total.requests.sent <= 405'
	expect "$J" '.total.requests.per_s_offered > 99 and .total.requests.per_s_offered < 101'
	expect "$J" '.total.requests.per_s_achieved > 95 and .total.requests.per_s_achieved < 105'
	# from due time is never shorter than from send time, request by
	# request, so at every percentile; both count the same requests
	expect "$J" '.total | .ack_us.count == .ack_uncorrected_us.count and .ack_us.count == .requests.ok
		and ([.ack_us.percentiles, .ack_uncorrected_us.percentiles] | transpose | all(.[0][1] >= .[1][1]))'
	acked=$(jq .total.events.acked "$J")
	run_id=$(jq -r .run_id "$J")
	expect "$J" '.verify_db | .rows == .acked and .missing == 0 and .duplicated == 0'
	assert_equal "$(psql -tAXc "select count(*) from events where event_id like 'lg-$run_id-%'")" "$acked"
	expect "$J" '[.dashboards[] | [.proto, .connected, .received == .expected, .delivery_pct]] | unique ==
		[["sse", true, true, 100], ["ws", true, true, 100]]'
}

@test "an SLO that cannot hold: exit 1, the term named with its value, FAIL" {
	J=$BATS_TEST_TMPDIR/slo.json
	run -1 --separate-stderr loadgen $QUICK --dashboards 0 --duration 3s --slo 'ack_p99<1us' --json "$J"
	assert_line --regexp '^SLO failed: ack_p99<1us \(measured [0-9]+(\.[0-9]+)?(us|ms|s)\)$'
	assert_equal "${lines[-1]}" FAIL
	expect "$J" '.total.ack_us.p99 > 1 and .pass == false and .first_failed_stage == 0 and
		.stages[0].slo[0].ok == false and
		.slo == [{expr: "ack_p99<1us", ok: false, measured: .total.ack_us.p99, unit: "us"}]'
	# in microseconds, it is the figure of the report
	p99=$(jq .total.ack_us.p99 "$J")
	if [[ $(grep '^SLO failed: ' <<<"$output") == *us\) ]]; then
		assert_line "SLO failed: ack_p99<1us (measured ${p99}us)"
	fi
	# terms that hold are not named
	run -0 --separate-stderr loadgen $QUICK --dashboards 0 --duration 3s --slo 'ack_p99<60s,lost=0,errors=0'
	refute_line --partial 'SLO failed'
	assert_equal "${lines[-1]}" PASS
}

@test "a dashboard whose class the token does not allow is refused, and delivery shows it" {
	tok=$(labpulse instructor add lg-partial loadgen-0 2>/dev/null | tail -n 1)
	J=$BATS_TEST_TMPDIR/refused.json
	# dashboard 0 (ws, loadgen-0) is allowed; 1 (sse, loadgen-1) and 2 (ws,
	# loadgen-2) are not
	run -1 --separate-stderr loadgen $QUICK --dashboards 3 --token "$tok" --duration 3s --json "$J"
	assert_line --regexp '^SLO failed: delivery>=99\.5% \(measured 0(\.0+)?%\)$'
	assert_equal "${lines[-1]}" FAIL
	run -0 check_report "$J"
	assert_output ""
	expect "$J" '[.dashboards[] | [.index, .proto, .refused.code, .received, .delivery_pct]] ==
		[[0, "ws", null, .dashboards[0].expected, 100], [1, "sse", 403, 0, 0], [2, "ws", 4403, 0, 0]]'
	expect "$J" 'all(.dashboards[]; .expected > 0)'
	expect "$J" '[.dashboards[].connected] == [true, false, false]'
	expect "$J" '[.dashboards[1, 2].refused.reason] == ["class loadgen-1 is not yours", "class loadgen-2 is not yours"]'
	expect "$J" '.delivery_pct == 0 and .pass == false and
		[.slo[] | select(.expr == "delivery>=99.5%") | [.ok, .measured]] == [[false, 0]]'
	# a token that is no one's: every dashboard refused
	run -1 --separate-stderr loadgen --students 20 --classes 2 --think 0.1 --dashboards 2 \
		--token wrong --duration 3s --json "$J"
	expect "$J" '[.dashboards[] | [.proto, .connected, .refused.code, .delivery_pct]] ==
		[["ws", false, 4401, 0], ["sse", false, 401, 0]]'
}

@test "coordinated omission: a 1 s stall shows in the corrected p99, not in the uncorrected one" {
	[ -x "$STALLSERVER" ] || { echo "tests/tools/stallserver is not built: make unit"; false; }
	"$STALLSERVER" --stall-after 2 --stall 1 >"$BATS_TEST_TMPDIR/ss.out" 2>"$BATS_TEST_TMPDIR/ss.err" 3>&- &
	ss_pid=$!
	track "$ss_pid"
	wait_for grep -q '^listening on ' "$BATS_TEST_TMPDIR/ss.out"
	addr=$(sed -n 's/^listening on //p' "$BATS_TEST_TMPDIR/ss.out")
	J=$BATS_TEST_TMPDIR/co.json
	# 500 requests due, 100 a second over 4 connections for 5 s; the server
	# answers none from 2 s after its first request (loadgen's health
	# check, right before the load) to 3 s. lost=0 is the only SLO: it holds.
	run -0 --separate-stderr loadgen --url "http://$addr" --dashboards 0 --students 40 \
		--rate 100 --conns 4 --duration 5s --slo 'lost=0' --json "$J"
	expect "$J" '.model == "open" and .total.requests.sent >= 480 and .total.requests.sent <= 505'
	# Corrected, each request is timed from when it was due: the ~100 due
	# during the stall waited for a connection until it ended, from 1 s down
	# to nothing, so the top 5 of 500 (p99 is rank 495) are all ~0.95 s or
	# more. 400 ms leaves room for a stall that starts up to half a second
	# late, or a run that cuts it short, and is still hundreds of loopback
	# round trips.
	expect "$J" '.total.ack_us.p99 > 400000'
	# Uncorrected, from when each was sent: only the requests in flight
	# when the stall began waited, one a connection, 4 of 500, the top 4;
	# the 5th and 6th from the top (p99 is the 6th) were sent after the
	# stall, on a free connection, and took a round trip, well under a
	# millisecond on loopback. 100 ms is a hundred times that, for a busy
	# machine, and ten times below the stall.
	expect "$J" '.total.ack_uncorrected_us.p99 < 100000'
	# the requests the server held were timed, both ways
	expect "$J" '.total.ack_us.max >= 900000 and .total.ack_uncorrected_us.max >= 900000'
	# and they were no more than the connections: --conns holds
	kill -TERM "$ss_pid"
	wait_for grep -q 'stopped requests=' "$BATS_TEST_TMPDIR/ss.err"
	held=$(sed -n 's/.*stall ends: answering held=\([0-9]*\).*/\1/p' "$BATS_TEST_TMPDIR/ss.err")
	[ "${held:-0}" -ge 1 ] && [ "$held" -le 4 ] || { cat "$BATS_TEST_TMPDIR/ss.err"; false; }
}

@test "a server that stops answering: the events given up show in the timeline's lost, second by second" {
	[ -x "$STALLSERVER" ] || { echo "tests/tools/stallserver is not built: make unit"; false; }
	# it holds every answer from 1 s after loadgen's health check, for
	# longer than the run and its retries
	"$STALLSERVER" --stall-after 1 --stall 60 >"$BATS_TEST_TMPDIR/ss.out" 2>"$BATS_TEST_TMPDIR/ss.err" 3>&- &
	ss_pid=$!
	track "$ss_pid"
	wait_for grep -q '^listening on ' "$BATS_TEST_TMPDIR/ss.out"
	addr=$(sed -n 's/^listening on //p' "$BATS_TEST_TMPDIR/ss.out")
	J=$BATS_TEST_TMPDIR/lost.json
	# each held request times out after 1 s, and so do its 3 retries: the
	# events of the last second are given up
	run -1 --separate-stderr loadgen --url "http://$addr" --dashboards 0 --students 10 \
		--rate 20 --conns 4 --duration 2s --timeout 1s --slo 'lost=0' --json "$J"
	assert_line --regexp '^SLO failed: lost=0 \(measured [1-9][0-9]*\)$'
	run -0 check_report "$J"
	assert_output ""
	# what was given up is in the timeline, after the stall began, and adds
	# up to the total
	expect "$J" '.total.events.lost > 0 and ([.timeline[].lost] | add) == .total.events.lost'
	expect "$J" '.timeline[0].lost == 0'
	# no dashboard: no e2e figure in any second
	expect "$J" 'all(.timeline[]; .e2e_p99_us == 0)'
}

@test "usage errors exit 64: a bad flag, --slo, --stages, an impossible rate, dashboards without notify or token" {
	run -64 --separate-stderr loadgen --bogus
	[ -z "$output" ]
	[[ ${stderr_lines[0]} == "labpulse-loadgen: error: unknown option '--bogus'" ]]
	[[ $stderr == *"usage: labpulse loadgen"* ]]
	run -64 --separate-stderr loadgen $NOWHERE --slo 'foo<1ms' --dashboards 0
	[ -z "$output" ]
	[[ ${stderr_lines[0]} == "labpulse-loadgen: error: --slo: unknown metric 'foo' in 'foo<1ms'" ]] || { echo "$stderr"; false; }
	[[ $stderr == *"usage: labpulse loadgen"* ]]
	for bad in 'ack_p99<' 'ack_p99~1ms' 'ack_p99<1parsec' 'delivery>=lots' 'ack_p99<<1ms'; do
		run -64 --separate-stderr loadgen $NOWHERE --slo "$bad" --dashboards 0
		[[ ${stderr_lines[0]} == "labpulse-loadgen: error: --slo: "* ]] || { echo "'$bad': $stderr"; false; }
	done
	for bad in '50' '50:' ':30s' '50:30s,abc' '50:30parsecs' '-5:10s' ''; do
		run -64 --separate-stderr loadgen --url http://127.0.0.1:1 --stages "$bad" --dashboards 0
		[[ ${stderr_lines[0]} == "labpulse-loadgen: error: --stages: "* ]] || { echo "'$bad': $stderr"; false; }
		[[ $stderr == *"usage: labpulse loadgen"* ]]
	done
	run -64 --separate-stderr loadgen $NOWHERE --rate 5000 --conns 4 --dashboards 0
	[[ ${stderr_lines[0]} == "labpulse-loadgen: error: --rate 5000 needs more than --conns 4 connections"* ]] || { echo "$stderr"; false; }
	run -64 --separate-stderr env -u LABPULSE_NOTIFY_URL loadgen $NOWHERE --dashboards 3 --setup
	[[ ${stderr_lines[0]} == "labpulse-loadgen: error: "*--notify* ]] || { echo "$stderr"; false; }
	run -64 --separate-stderr loadgen $NOWHERE --dashboards 3
	[[ ${stderr_lines[0]} == "labpulse-loadgen: error: "*--token* && ${stderr_lines[0]} == *--setup* ]] || { echo "$stderr"; false; }
	for bad in '--students 0' '--students x' '--conns 0' '--think -1' '--batch 0' \
		'--duration 0' '--dashboard-proto carrier-pigeon' '--timeout soon'; do
		# shellcheck disable=SC2086
		run -64 --separate-stderr loadgen --url http://127.0.0.1:1 $bad --dashboards 0
		[[ ${stderr_lines[0]} == "labpulse-loadgen: error: --"* ]] || { echo "$bad: $stderr"; false; }
	done
}

@test "ingest unreachable at the start: exit 69, at once" {
	SECONDS=0
	run -69 --separate-stderr loadgen --url http://127.0.0.1:1 --dashboards 0 --duration 60s
	[[ $stderr == *"labpulse-loadgen: error: "*"http://127.0.0.1:1"* ]] || { echo "$stderr"; false; }
	[ "$SECONDS" -lt 10 ]
}

@test "with batch-commit stopped, --verify-db names the missing events and exits 1" {
	# every consumer of the group: the stack runs one per core
	pids=$(committers)
	# shellcheck disable=SC2086
	kill -TERM $pids
	for pid in $pids; do wait_until "! kill -0 $pid 2>/dev/null"; done
	J=$BATS_TEST_TMPDIR/missing.json
	run -1 --separate-stderr loadgen --students 20 --classes 2 --think 0.1 --dashboards 0 \
		--duration 3s --timeout 1s --verify-db --slo 'lost=0,missing=0,duplicated=0' --json "$J"
	acked=$(jq .total.events.acked "$J")
	expect "$J" '.total.events.acked > 10'
	expect "$J" '.verify_db | .acked == .rows + .missing and .rows == 0 and .duplicated == 0 and
		(.missing_ids | length) == 10 and .duplicated_ids == []'
	expect "$J" '.verify_db.acked == .total.events.acked'
	expect "$J" '.run_id as $r | all(.verify_db.missing_ids[]; startswith("lg-\($r)-"))'
	assert_line "SLO failed: missing=0 (measured $acked)"
	refute_line --partial 'SLO failed: lost'
	refute_line --partial 'SLO failed: duplicated'
	assert_equal "${lines[-1]}" FAIL
	# the summary names missing events
	assert_output --partial "$(jq -r '.verify_db.missing_ids[0]' "$J")"
	# with the default SLOs too: every event stored is what --verify-db
	# checks, and a run that lost some from the database fails
	run -1 --separate-stderr loadgen --students 20 --classes 2 --think 0.1 --dashboards 2 --setup \
		--duration 3s --timeout 1s --verify-db
	assert_equal "${lines[-1]}" FAIL
	# an SLO on the database without --verify-db is not measured, and fails
	run -1 --separate-stderr loadgen --students 10 --classes 2 --think 0.1 --dashboards 0 \
		--duration 3s --slo 'missing=0' --json "$J"
	expect "$J" '.verify_db == null and .slo[0].ok == false and .slo[0].measured == null'
	assert_line --regexp '^SLO failed: missing=0 \(not measured.*\)$'
	# batch-commit back, for whatever follows
	labpulse up >/dev/null
}

# ---- a stack that restarts under the run ----

# lg_start NAME ARGS...: loadgen in the background, tracked; its output in
# $BATS_TEST_TMPDIR/NAME.out and NAME.err; sets LG_PID, LG_OUT, LG_ERR.
# Instructors made before it are not its own (lg_under_way).
lg_start() {
	local name=$1; shift
	LG_OUT=$BATS_TEST_TMPDIR/$name.out LG_ERR=$BATS_TEST_TMPDIR/$name.err
	LG_BEFORE=$(psql -tAXc "select coalesce(max(id), 0) from instructors" 2>/dev/null) || LG_BEFORE=
	loadgen "$@" </dev/null >"$LG_OUT" 2>"$LG_ERR" 3>&- &
	LG_PID=$!
	track "$LG_PID"
}

# lg_under_way: the run of lg_start's loadgen --setup has 20 events in
# PostgreSQL, so its students post and batch-commit commits; sets RUN_ID.
lg_under_way() {
	RUN_ID=$(psql -tAXc "select substr(name, 9) from instructors
		where id > $LG_BEFORE and name like 'loadgen-%' order by id limit 1")
	[ -n "$RUN_ID" ] &&
		[ "$(psql -tAXc "select count(*) from events where event_id like 'lg-$RUN_ID-%'")" -ge 20 ]
}

# lg_wait: until loadgen has ended (up to 60 s); its exit status in
# LG_STATUS.
lg_wait() {
	for _ in $(seq 1200); do
		kill -0 "$LG_PID" 2>/dev/null || break
		sleep 0.05
	done
	! kill -0 "$LG_PID" 2>/dev/null ||
		{ echo "loadgen (pid $LG_PID) still runs after 60 s"; cat "$LG_ERR"; return 1; }
	LG_STATUS=0
	wait "$LG_PID" || LG_STATUS=$?
}

# same_address NAME: labpulse up brought NAME (ingest or notify) back at the
# URL it had when the stack started.
same_address() {
	local var=LABPULSE_${1^^}_URL now
	now=$(labpulse env | sed -n "s/^export $var='\\(.*\\)'\$/\\1/p")
	[ "$now" = "${!var}" ] || { echo "labpulse up brought $1 back at '$now', not at '${!var}'"; return 1; }
}

# A class of 30 with 4 dashboards (2 ws, 2 sse) for 8 s, every event and
# every message counted; the e2e latency of messages a dashboard missed
# while notify was away is seconds, so no SLO on it.
RESTART_RUN="--students 30 --classes 3 --think 0.1 --dashboards 4 --duration 8s --setup --verify-db
	--slo lost=0,missing=0,duplicated=0,delivery>=100%"

@test "PostgreSQL restarted (-m immediate) during a run: loadgen reconnects, revokes, verifies and passes" {
	# whole, whatever a test before left
	labpulse up >/dev/null
	J=$BATS_TEST_TMPDIR/pg.json
	t0=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
	# shellcheck disable=SC2086
	lg_start pg $RESTART_RUN --json "$J"
	wait_for lg_under_way
	pg_stack -m immediate -w stop >/dev/null
	labpulse up >/dev/null
	lg_wait
	cat "$LG_ERR"
	assert_equal "$LG_STATUS" 0
	assert_equal "$(tail -n 1 "$LG_OUT")" PASS
	# PostgreSQL did restart during the run, and loadgen found its
	# connection broken, and reached PostgreSQL again
	assert_equal "$(psql -tAXc "select pg_postmaster_start_time() > '$t0'")" t
	grep -q '^labpulse-loadgen: warning: lost the connection to PostgreSQL: .*; trying again for up to 10s$' "$LG_ERR"
	grep -qx 'labpulse-loadgen: info: reached PostgreSQL again' "$LG_ERR"
	# every event acknowledged is in the table, once; the instructor of
	# the run was revoked
	assert_equal "$(jq -r .run_id "$J")" "$RUN_ID"
	expect "$J" '.total.events.acked > 100 and .total.events.lost == 0 and .verify_db.acked == .total.events.acked
		and .verify_db.rows == .total.events.acked and .verify_db.missing == 0 and .verify_db.duplicated == 0'
	assert_equal "$(psql -tAXc "select disabled_at is not null from instructors where name = 'loadgen-$RUN_ID'")" t
	assert_equal "$(psql -tAXc "select count(*) from events where event_id like 'lg-$RUN_ID-%'")" \
		"$(jq .total.events.acked "$J")"
}

@test "PostgreSQL away at the start: loadgen waits up to --timeout for it, and says when it never came" {
	# whole, whatever a test before left
	labpulse up >/dev/null
	pg_stack -m immediate -w stop >/dev/null
	SECONDS=0
	run -69 --separate-stderr loadgen --dashboards 0 --duration 1s --timeout 1s --verify-db
	secs=$SECONDS
	labpulse up >/dev/null
	# before the run: nothing measured, nothing printed
	assert_output ""
	[ "$secs" -lt 5 ]
	[ "${#stderr_lines[@]}" -eq 2 ] || { echo "$stderr"; false; }
	[[ ${stderr_lines[0]} == "labpulse-loadgen: warning: cannot reach PostgreSQL: connection to server on socket \""*"; trying again for up to 1s" ]] || { echo "$stderr"; false; }
	[[ ${stderr_lines[1]} == "labpulse-loadgen: error: cannot reach PostgreSQL in 1s (--timeout): connection to server on socket \""* ]] || { echo "$stderr"; false; }
	# the error is on one line, without libpq's tabs
	[[ $stderr != *$'\t'* ]]

	# PostgreSQL back within --timeout: --setup goes on, and so does the run
	pg_stack -m immediate -w stop >/dev/null
	J=$BATS_TEST_TMPDIR/late.json
	lg_start late --students 10 --classes 2 --think 0.1 --dashboards 2 --duration 2s --timeout 20s \
		--setup --verify-db --json "$J"
	wait_until "grep -q 'cannot reach PostgreSQL' '$LG_ERR'"
	labpulse up >/dev/null
	lg_wait
	cat "$LG_ERR"
	assert_equal "$LG_STATUS" 0
	grep -qx 'labpulse-loadgen: info: reached PostgreSQL again' "$LG_ERR"
	expect "$J" '.pass and .verify_db.missing == 0 and .delivery_pct == 100 and ([.dashboards[].connected] | all)'
}

@test "PostgreSQL gone for good during a run: the verdict still comes, the revocation and the check fail by name, exit 69" {
	# whole, whatever a test before left
	labpulse up >/dev/null
	J=$BATS_TEST_TMPDIR/gone.json
	lg_start gone --students 30 --classes 3 --think 0.1 --dashboards 2 --duration 4s --timeout 2s \
		--setup --verify-db --json "$J"
	wait_for lg_under_way
	pg_stack -m immediate -w stop >/dev/null
	lg_wait
	# back for what follows, before anything can fail
	labpulse up >/dev/null
	cat "$LG_ERR"
	assert_equal "$LG_STATUS" 69
	run -0 grep -c '^labpulse-loadgen: warning: lost the connection to PostgreSQL: .*; trying again for up to 2s$' "$LG_ERR"
	assert_output 1
	grep -q "^labpulse-loadgen: error: cannot revoke instructor loadgen-$RUN_ID: cannot reach PostgreSQL in 2s (--timeout): .*; revoke it with: labpulse instructor revoke loadgen-$RUN_ID\$" "$LG_ERR"
	grep -q '^labpulse-loadgen: error: --verify-db: cannot reach PostgreSQL in 2s (--timeout): ' "$LG_ERR"
	# the verdict: what was measured holds, what needs the database fails
	grep -qx 'SLO ok: lost=0 (measured 0)' "$LG_OUT"
	grep -qx 'SLO failed: missing=0 (not measured: the database check failed)' "$LG_OUT"
	assert_equal "$(tail -n 1 "$LG_OUT")" FAIL
	expect "$J" '.verify_db == null and .pass == false and .total.events.acked > 20'
	# the instructor is still active, as the message says; its command
	# revokes it
	assert_equal "$(psql -tAXc "select disabled_at is null from instructors where name = 'loadgen-$RUN_ID'")" t
	labpulse instructor revoke "loadgen-$RUN_ID" 2>/dev/null
}

@test "a PostgreSQL that accepts, then drops each request: the loss is told once, no return is, exit 69 at --timeout" {
	# enough of the protocol for libpq to connect: no authentication,
	# ready; the first query closes the connection
	cat >"$BATS_TEST_TMPDIR/dropper.py" <<'PY'
import socket, struct, threading
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
print(s.getsockname()[1], flush=True)
def serve(c):
    try:
        n = struct.unpack("!I", c.recv(4))[0]
        c.recv(n - 4)
        c.sendall(b"R" + struct.pack("!II", 8, 0) + b"Z" + struct.pack("!I", 5) + b"I")
        c.recv(65536)
    except Exception:
        pass
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
	python3 "$BATS_TEST_TMPDIR/dropper.py" >"$BATS_TEST_TMPDIR/port" 3>&- &
	track "$!"
	wait_for test -s "$BATS_TEST_TMPDIR/port"
	SECONDS=0
	run -69 --separate-stderr loadgen --dashboards 0 --duration 1s --timeout 2s --setup \
		--db "host=127.0.0.1 port=$(cat "$BATS_TEST_TMPDIR/port") dbname=x user=x sslmode=disable"
	secs=$SECONDS
	assert_output ""
	[ "$secs" -lt 8 ]
	# one line for the whole absence, however many connections it took
	[ "${#stderr_lines[@]}" -eq 2 ] || { echo "$stderr"; false; }
	[[ ${stderr_lines[0]} == "labpulse-loadgen: warning: lost the connection to PostgreSQL: "*"; trying again for up to 2s" ]] || { echo "$stderr"; false; }
	[[ ${stderr_lines[1]} == "labpulse-loadgen: error: --setup: cannot add instructor loadgen-"*": cannot reach PostgreSQL in 2s (--timeout): "* ]] || { echo "$stderr"; false; }
}

@test "notify killed (-9) and away for 3 s during a run: dashboards reconnect, resume with their last id, miss nothing" {
	# whole, whatever a test before left
	labpulse up >/dev/null
	J=$BATS_TEST_TMPDIR/notify.json
	# shellcheck disable=SC2086
	lg_start notify $RESTART_RUN --json "$J"
	wait_for lg_under_way
	kill -KILL "$(cat "$LABPULSE_RUNDIR/notify.pid")"
	wait_until "! curl -s -o /dev/null '$LABPULSE_NOTIFY_URL/healthz'"
	# away for a while: the dashboards' reconnections are refused, again
	# and again
	sleep 3
	labpulse up >/dev/null
	same_address notify
	lg_wait
	cat "$LG_ERR"
	assert_equal "$LG_STATUS" 0
	assert_equal "$(tail -n 1 "$LG_OUT")" PASS
	# each dashboard lost notify, tried again while it was away, came back
	# and resumed after the last message it had
	run -0 grep -c '^labpulse-loadgen: warning: dashboard [0-3] (loadgen-[0-2], \(ws\|sse\)) lost its connection: .*; reconnecting every 1000 ms$' "$LG_ERR"
	assert_output 4
	run -0 grep -c '^labpulse-loadgen: info: dashboard [0-3] (loadgen-[0-2], \(ws\|sse\)) back after [0-9.]* s; resuming after [0-9]*-[0-9]*$' "$LG_ERR"
	assert_output 4
	expect "$J" '[.dashboards[] | [.proto, .connected, .refused, .reconnects >= 3, .resyncs, .duplicates,
		.received == .expected, .delivery_pct]] == [["ws", true, null, true, 0, 0, true, 100],
		["sse", true, null, true, 0, 0, true, 100], ["ws", true, null, true, 0, 0, true, 100],
		["sse", true, null, true, 0, 0, true, 100]]'
	expect "$J" 'all(.dashboards[]; .expected > 20) and .delivery_pct == 100'
	expect "$J" '.verify_db.missing == 0 and .verify_db.duplicated == 0 and .total.events.lost == 0'
}

@test "ingest killed (-9) during a run and brought back by labpulse up: the students' retries carry every event" {
	# whole, whatever a test before left
	labpulse up >/dev/null
	J=$BATS_TEST_TMPDIR/ingest.json
	# shellcheck disable=SC2086
	lg_start ingest $RESTART_RUN --json "$J"
	wait_for lg_under_way
	kill -KILL "$(cat "$LABPULSE_RUNDIR/ingest.pid")"
	wait_until "! curl -s -o /dev/null '$LABPULSE_INGEST_URL/healthz'"
	labpulse up >/dev/null
	same_address ingest
	lg_wait
	cat "$LG_ERR"
	assert_equal "$LG_STATUS" 0
	assert_equal "$(tail -n 1 "$LG_OUT")" PASS
	# requests failed while ingest was away, and were retried: none given
	# up, every event acknowledged once in the end, and stored once
	expect "$J" '.total.errors.connect + .total.errors.reset > 0'
	expect "$J" '.total.events.lost == 0 and .total.events.acked == .total.events.sent
		and .total.events.acked > 100'
	expect "$J" '.verify_db | .rows == .acked and .missing == 0 and .duplicated == 0'
	expect "$J" '.delivery_pct == 100'
}
