#!/bin/sh
# demo: bring up the local stack and show the main job: a class's events
# posted the way the JupyterLab cell-monitor extension posts them, accepted,
# durable in the events stream, committed to PostgreSQL, and live on an
# instructor's dashboard of the class.
set -eu
export PATH="$(pwd)/bin:$PATH"
out=$(labpulse up) || exit 69
eval "$out"
url=$LABPULSE_INGEST_URL/api/v1/events
rsock=${LABPULSE_REDIS#unix:}
before=$(redis-cli -s "$rsock" XLEN labpulse:events)
echo "== stack up in $LABPULSE_HOME; ingest at $LABPULSE_INGEST_URL, dashboards at $LABPULSE_NOTIFY_URL"
run=$(date +%s)
echo "== an instructor for CS101 (only the token's hash is stored):"
tok=$(labpulse instructor add "demo-$run" CS101 | tail -n 1)
# a dashboard of the class, over Server-Sent Events, while the lesson runs
live=$LABPULSE_HOME/demo-dashboard.txt
curl -sN --max-time 30 "$LABPULSE_NOTIFY_URL/sse?class=CS101&token=$tok" >"$live" 2>/dev/null &
dash=$!
i=0
while ! grep -q '^event: snapshot' "$live" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
echo "== a lesson: 30 students in CS101 run cells, fail some, ask for help"
alerts=0
ok=0 n=0
for round in 1 2 3; do
	s=1
	while [ $s -le 30 ]; do
		n=$((n + 1))
		err=false msg=null type=cell_executed
		[ $(( (s + round) % 7 )) -eq 0 ] && err=true msg='"NameError: name x is not defined"'
		[ $(( (s * round) % 11 )) -eq 0 ] && type=help
		[ "$err" = true ] && [ "$type" = cell_executed ] && alerts=$((alerts + 1))
		body=$(printf '[{"eventId":"demo-%s-%d","eventType":"%s","eventTime":"%s","emailAddress":"student%02d@example.edu","userName":"Student %d","notebookPath":"lab%d.ipynb","cellId":"cell-%d","cellIndex":%d,"cellType":"code","code":"df.describe()","executionCount":%d,"hasError":%s,"errorMessage":%s,"executionDurationMs":%d.5,"classId":"CS101"}]' \
			"$run" "$n" "$type" "$(date -u +%Y-%m-%dT%H:%M:%S.000)" "$s" "$s" "$round" "$round" "$round" "$n" "$err" "$msg" "$((s * 3))")
		code=$(curl -s -o /dev/null -w '%{http_code}' -X POST \
			-H 'Content-Type: application/json' --data-binary "$body" "$url")
		[ "$code" = 202 ] && ok=$((ok + 1))
		s=$((s + 1))
	done
done
after=$(redis-cli -s "$rsock" XLEN labpulse:events)
echo "== posted $n events, $ok answered 202; the stream grew by $((after - before))"
echo "== a bad POST is answered precisely:"
curl -s -X POST -H 'Content-Type: application/json' \
	--data-binary '[{"eventType":"cell_executed","emailAddress":"a@example.edu"},{"eventType":"help"}]' "$url"
echo "== committed to PostgreSQL by batch-commit:"
i=0
while [ "$(psql -tAXc "select count(*) from events where event_id like 'demo-$run-%'")" -lt "$ok" ] && [ $i -lt 100 ]; do
	sleep 0.1; i=$((i + 1))
done
psql -tAXc "select count(*) || ' of the ' || $ok || ' accepted events are rows in events' from events where event_id like 'demo-$run-%'"
echo "== who is stuck in CS101 (student_progress, kept in the same transactions):"
psql -Xc "select student_id, notebook_path, events, errors, last_event_type from student_progress where class_id = 'CS101' order by errors desc, student_id limit 5"
echo "== the last event in the stream, as ingest stamped it:"
redis-cli -s "$rsock" --raw XREVRANGE labpulse:events + - COUNT 1 | sed -n 3p | jq .
echo "== ingest's and batch-commit's counters (their stats sockets):"
socat -T 2 - "UNIX-CONNECT:$LABPULSE_RUNDIR/ingest.sock" </dev/null |
	jq -c '{requests, events_accepted, rejected: (.rejected | with_entries(select(.value > 0))), redis_rtt_p99_us: .redis.rtt_us.p99}'
socat -T 2 - "UNIX-CONNECT:$LABPULSE_RUNDIR/batch-commit.sock" </dev/null |
	jq -c '{batches, rows_committed, duplicates_skipped, dead_rows, commit_p99_us: .commit_us.p99, pending}'
echo "== the CS101 dashboard got them live, each with its stream id (route's rules add an alert per failed cell):"
i=0
while [ "$(grep -c '^event: message' "$live")" -lt $((ok + alerts)) ] && [ $i -lt 100 ]; do
	sleep 0.1; i=$((i + 1))
done
kill "$dash" 2>/dev/null || true
echo "$(grep -c '^event: message' "$live") messages for $ok events and $alerts failed cells; the last alert:"
grep '^data: {"type":"message"' "$live" | sed 's/^data: //' | jq -c 'select(.message.kind == "alert") | {id, class, message: (.message | {studentId, notebookPath, errorMessage})}' | tail -n 1
echo "== labpulse status:"
labpulse status
echo "== the dashboard, in a browser: $LABPULSE_NOTIFY_URL/?class=CS101&token=$tok"
echo "== the stack keeps running: eval \"\$(bin/labpulse env)\" to use it, bin/labpulse down to stop it."
[ "$ok" -eq "$n" ]
