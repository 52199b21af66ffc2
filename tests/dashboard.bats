#!/usr/bin/env bats
# dashboard: the instructors' page served by notify, in a real browser
# (Debian's chromium driven by tests/browser/dashboard.mjs), against the
# whole stack: events posted to ingest must show up in the page's tables.

setup_file() {
	load helper/common
	command -v node >/dev/null ||
		fail "node is missing: run 'make deps' (mk/deps.sh installs nodejs)"
	[ -x "${CHROMIUM:-/usr/bin/chromium}" ] ||
		fail "chromium is missing at ${CHROMIUM:-/usr/bin/chromium}: run 'make deps' (mk/deps.sh installs Debian's chromium)"
	[ -d "$TOP/tests/browser/node_modules/playwright-core" ] ||
		fail "playwright-core is missing: run 'make deps' (mk/deps.sh runs npm ci in tests/browser)"
	stack_up
	[ -n "${LABPULSE_NOTIFY_URL:-}" ] ||
		fail "labpulse up started no notify: 'labpulse env' printed no LABPULSE_NOTIFY_URL"
	labpulse instructor add ann CS101 >"$BATS_FILE_TMPDIR/ann" ||
		fail "labpulse instructor add ann CS101 failed"
	TOKEN=$(tail -n 1 "$BATS_FILE_TMPDIR/ann")
	export TOKEN
}

teardown_file() {
	load helper/common
	stop_tracked
	stack_down
}

setup() {
	load helper/common
	PAGE=$TOP/tests/browser/dashboard.mjs
	PAGE_OUT=$BATS_TEST_TMPDIR/page.out
	PAGE_ERR=$BATS_TEST_TMPDIR/page.err
	PAGE_PID=
}

# Whatever the outcome: the page script and the browser it started stop.
teardown() {
	stop_tracked
}

# page_url [QUERY]: the dashboard for ann's token and CS101, and QUERY.
page_url() {
	printf '%s/?token=%s&class=CS101%s' "$LABPULSE_NOTIFY_URL" \
		"$(jq -rn --arg t "$TOKEN" '$t | @uri')" "${1:+&$1}"
}

# send ID EMAIL CLASS HASERROR: one cell run as the JupyterLab extension
# posts it, timed now.
send() {
	local msg=null
	[ "$4" = true ] && msg="NameError: name 'x' is not defined"
	post "$LABPULSE_INGEST_URL/api/v1/events" "$(jq -cn --arg id "$1" \
		--arg who "$2" --arg cls "$3" --argjson bad "$4" --arg msg "$msg" \
		--arg t "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" \
		'[{eventId: $id, eventType: "cell_executed", eventTime: $t,
		   emailAddress: $who, userName: ($who | sub("@.*"; "")),
		   classId: $cls, sessionId: "sess-1", notebookPath: "lab1.ipynb",
		   cellId: "c-1", cellIndex: 3, cellType: "code", code: "print(x)",
		   executionCount: 1, hasError: $bad,
		   errorMessage: (if $bad then $msg else null end)}]')"
	assert_equal "$status_code" 202
}

# await_line REGEX: until the page script prints a matching line; fails
# with all it printed when it exits first or 20 s pass.
await_line() {
	for _ in $(seq 200); do
		grep -q -- "$1" "$PAGE_OUT" && return 0
		kill -0 "$PAGE_PID" 2>/dev/null || break
		sleep 0.1
	done
	grep -q -- "$1" "$PAGE_OUT" && return 0
	fail "$(printf 'the page script printed no line matching %s\n--- stdout\n%s\n--- stderr\n%s' \
		"$1" "$(cat "$PAGE_OUT")" "$(cat "$PAGE_ERR")")"
}

# watch_class QUERY EMAIL OTHER: the page (with QUERY) sees EMAIL's first
# cell run, then a failing one highlighted, and never OTHER, a student of
# another class who runs a cell in between.
watch_class() {
	local query=$1 who=$2 other=$3
	: >"$PAGE_OUT"
	node "$PAGE" "$(page_url "$query")" --class CS101 --row "$who" \
		--expect 'executions=1,errors=0,notebook=lab1.ipynb,!alert' \
		--expect 'executions=2,errors=1,alert' \
		--absent "$other" --screenshot "$BATS_TEST_TMPDIR/dashboard.png" \
		</dev/null >"$PAGE_OUT" 2>"$PAGE_ERR" 3>&- &
	PAGE_PID=$!
	track "$PAGE_PID"
	await_line '^ready$'
	send "$who-1" "$who" CS101 false
	await_line '"step":1'
	send "$other-1" "$other" CS999 false
	send "$who-2" "$who" CS101 true
	wait "$PAGE_PID" || fail "$(printf 'the page script failed\n--- stdout\n%s\n--- stderr\n%s' \
		"$(cat "$PAGE_OUT")" "$(cat "$PAGE_ERR")")"
	PAGE_PID=
	grep '"step":2' "$PAGE_OUT" >"$BATS_TEST_TMPDIR/step2"
	row=$(jq -c .row "$BATS_TEST_TMPDIR/step2")
	assert_equal "$(jq -r '[.class, .student, .name, .notebook, .executions, .errors, .alert] | join(" ")' <<<"$row")" \
		"CS101 $who ${who%@*} lab1.ipynb 2 1 true"
	[[ $(jq -r .last <<<"$row") =~ ^(just\ now|[0-9]+\ s\ ago)$ ]]
	# the token was taken off the address bar
	assert_equal "$(jq -r .url "$BATS_TEST_TMPDIR/step2")" \
		"$LABPULSE_NOTIFY_URL/?class=CS101${query:+&$query}"
}

@test "over SSE, a student's cell runs show up live, an error highlights the row, other classes stay out" {
	watch_class '' s1@example.org s9@example.org
	assert_equal "$(jq -r .state "$BATS_TEST_TMPDIR/step2")" "connected (SSE)"
}

@test "over WebSocket (proto=ws), the same" {
	watch_class proto=ws s2@example.org s8@example.org
	assert_equal "$(jq -r .state "$BATS_TEST_TMPDIR/step2")" "connected (WebSocket)"
}

@test "a wrong token and a class not the instructor's are shown, over SSE and WebSocket" {
	for proto in '' '&proto=ws'; do
		run -0 --separate-stderr node "$PAGE" \
			"$LABPULSE_NOTIFY_URL/?token=wrong&class=CS101$proto" --state error
		assert_line --partial '"state":"error: token refused (4401)'
		run -0 --separate-stderr node "$PAGE" "$(page_url "class=CS999$proto")" --state error
		assert_line --partial '"state":"error: class not allowed (4403)'
	done
}
