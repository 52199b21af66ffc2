#!/usr/bin/env bats
# ingest against hostile bodies: strict JSON (what PostgreSQL's jsonb would
# refuse is refused with 400, nothing queued, ingest still answering), the
# class a token is bound to, and the eventId derived from an event's bytes.

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
	URL=$LABPULSE_INGEST_URL/api/v1/events
	RSOCK=${LABPULSE_REDIS#unix:}
}

# Whatever the outcome: what the test started is gone before the next.
teardown() {
	stop_tracked
}

# refused FILE STATUS BODY: POST the bytes of FILE (any bytes, NUL too);
# the answer must be STATUS with exactly BODY, and nothing queued.
refused() {
	local before
	before=$(xlen)
	post "$URL" "@$1"
	assert_equal "$status_code" "$2"
	assert_equal "$body" "$3"
	assert_equal "$(xlen)" "$before"
}

# body NAME PRINTF-FORMAT: write a body to a file, for refused.
body() {
	# shellcheck disable=SC2059
	printf "$2" >"$BATS_TEST_TMPDIR/$1"
	echo "$BATS_TEST_TMPDIR/$1"
}

# The last entry of the events stream: the event as queued.
last_event() {
	redis-cli -s "$RSOCK" --raw XREVRANGE labpulse:events + - COUNT 1 >"$BATS_TEST_TMPDIR/last"
	sed -n 3p "$BATS_TEST_TMPDIR/last"
}

# derived_id BYTES: the eventId ingest gives an event sent without one:
# SHA-256 of its bytes, the first 16 bytes as a UUID of version 8.
derived_id() {
	local h v
	h=$(printf '%s' "$1" | sha256sum)
	v=$(((16#${h:16:1} & 3) | 8))
	printf '%s-%s-8%s-%x%s-%s\n' "${h:0:8}" "${h:8:4}" "${h:13:3}" "$v" "${h:17:3}" "${h:20:12}"
}

GOOD='{"eventType":"cell_executed","emailAddress":"a@x.org"}'

@test "the byte order mark that crashed ingest is refused at byte 0, and ingest lives on" {
	f=$(body bom '\357\273\277[{"eventType":"cell_executed","metadata":{"kernel":"python3"},"eventId":"bom-1","emailAddress":"ada@example.edu"}]')
	refused "$f" 400 '{"error":"malformed JSON at byte 0: byte order mark (U+FEFF) is not allowed at line 1, column 1","offset":0}'
	f=$(body bom2 '\357\273\277{"eventType":"a","emailAddress":"x","eventId":"bom-2"}')
	refused "$f" 400 '{"error":"malformed JSON at byte 0: byte order mark (U+FEFF) is not allowed at line 1, column 1","offset":0}'
	get "$LABPULSE_INGEST_URL/healthz"
	assert_equal "$status_code" 200
	post "$URL" "$(ext_event bom-after)"
	assert_equal "$status_code" 202
	assert_equal "$body" '{"accepted":1,"ids":["bom-after"]}'
}

@test "what jq 1.6 took and jsonb refuses: 400 with the offset, nothing queued" {
	f=$(body nan '[{"eventType":"a","emailAddress":"x","result":nan}]')
	refused "$f" 400 '{"error":"malformed JSON at byte 46: invalid literal at line 1, column 47","offset":46}'
	f=$(body zero '[{"eventType":"a","emailAddress":"x","cellIndex":007}]')
	refused "$f" 400 '{"error":"malformed JSON at byte 49: number with a leading zero at line 1, column 50","offset":49}'
	f=$(body dot '[{"eventType":"a","emailAddress":"x","result":.5}]')
	refused "$f" 400 '{"error":"malformed JSON at byte 46: unexpected '"'.'"' at line 1, column 47","offset":46}'
	f=$(body rawnul '[{"eventType":"a","emailAddress":"x","code":"a\000b"}]')
	refused "$f" 400 '{"error":"malformed JSON at byte 46: control character U+0000 in a string at line 1, column 47","offset":46}'
	f=$(body escnul '[{"eventType":"a","emailAddress":"x","code":"a\\u0000"}]')
	refused "$f" 400 '{"error":"malformed JSON at byte 46: \\u0000 is not allowed in a string at line 1, column 47","offset":46}'
	f=$(body surrogate '[{"eventType":"a","emailAddress":"x","code":"\\ud800"}]')
	refused "$f" 400 '{"error":"malformed JSON at byte 45: unpaired UTF-16 surrogate at line 1, column 46","offset":45}'
	f=$(body lowsur '[{"eventType":"a","emailAddress":"x","code":"\\udc00\\ud800"}]')
	refused "$f" 400 '{"error":"malformed JSON at byte 45: unpaired UTF-16 surrogate at line 1, column 46","offset":45}'
	f=$(body exponent '[{"eventType":"a","emailAddress":"x","result":1e131072}]')
	refused "$f" 400 '{"error":"malformed JSON at byte 46: number out of the range PostgreSQL'"'"'s numeric holds at line 1, column 47","offset":46}'
	f=$(body scale '[{"eventType":"a","emailAddress":"x","result":1.00e-16382}]')
	refused "$f" 400 '{"error":"malformed JSON at byte 46: number out of the range PostgreSQL'"'"'s numeric holds at line 1, column 47","offset":46}'
	f=$(body latin1 '[{"eventType":"a","emailAddress":"caf\351"}]')
	refused "$f" 400 '{"error":"malformed JSON at byte 37: not UTF-8","offset":37}'
	f=$(body tab '[{"eventType":"a","emailAddress":"x","code":"a\tb"}]')
	refused "$f" 400 '{"error":"malformed JSON at byte 46: control character U+0009 in a string at line 1, column 47","offset":46}'
	f=$(body plus '[{"eventType":"a","emailAddress":"x","result":+1}]')
	refused "$f" 400 '{"error":"malformed JSON at byte 46: unexpected '"'+'"' at line 1, column 47","offset":46}'
	f=$(body onedot '[{"eventType":"a","emailAddress":"x","result":1.}]')
	refused "$f" 400 '{"error":"malformed JSON at byte 46: invalid number at line 1, column 47","offset":46}'
	f=$(body inf '[{"eventType":"a","emailAddress":"x","result":Infinity}]')
	refused "$f" 400 '{"error":"malformed JSON at byte 46: unexpected '"'I'"' at line 1, column 47","offset":46}'
	f=$(body quotes "[{'eventType':'a','emailAddress':'x'}]")
	refused "$f" 400 '{"error":"malformed JSON at byte 2: object keys must be strings at line 1, column 3","offset":2}'
	f=$(body comment '[{"eventType":"a","emailAddress":"x"} /* one */]')
	refused "$f" 400 '{"error":"malformed JSON at byte 38: expected '"','"' or '"']'"' at line 1, column 39","offset":38}'
	f=$(body trailing '[{"eventType":"a","emailAddress":"x"}]\n\nmore')
	refused "$f" 400 '{"error":"malformed JSON at byte 40: unexpected data after the JSON text at line 3, column 1","offset":40}'
	get "$LABPULSE_INGEST_URL/healthz"
	assert_equal "$status_code" 200
}

@test "nesting: 64 levels are taken, the 65th is refused where it opens" {
	open=$(printf '[%.0s' $(seq 62))
	close=$(printf ']%.0s' $(seq 62))
	post "$URL" "[{\"eventType\":\"a\",\"emailAddress\":\"x\",\"eventId\":\"deep-64\",\"r\":$open$close}]"
	assert_equal "$status_code" 202
	f=$BATS_TEST_TMPDIR/deep
	printf '[{"eventType":"a","emailAddress":"x","r":[%s%s]}]' "$open" "$close" >"$f"
	refused "$f" 400 '{"error":"malformed JSON at byte 103: nesting deeper than 64 levels at line 1, column 104","offset":103}'
}

@test "the client's bytes are queued: numbers keep their digits, server fields are cut, lines joined" {
	post "$URL" $'[{"eventId":"q-1","eventType":"a","emailAddress":"x@y","studentId":"forged","big":12345678901234567890123,"f":1.50,\r\n "m":{"k":[1,\n2]},"receivedAt":"1999"}]'
	assert_equal "$status_code" 202
	ev=$(last_event)
	at=$(jq -r .receivedAt <<<"$ev")
	assert_equal "$ev" '{"eventId":"q-1","eventType":"a","emailAddress":"x@y","big":12345678901234567890123,"f":1.50,"m":{"k":[1, 2]},"classId":"default","studentId":"x@y","receivedAt":"'"$at"'"}'
	[[ $at =~ ^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{6}Z$ ]]
}

@test "no eventId: one derived from the event's bytes; a retried POST gets the same id and one row" {
	ev='{"eventType":"cell_executed","emailAddress":"retry@example.edu","classId":"RETRY1","eventTime":"2026-11-25T10:15:30.123","code":"x = 1"}'
	want=$(derived_id "$ev")
	post "$URL" "[$ev]"
	assert_equal "$status_code" 202
	assert_equal "$body" '{"accepted":1,"ids":["'"$want"'"]}'
	post "$URL" "[$ev]"
	assert_equal "$status_code" 202
	assert_equal "$body" '{"accepted":1,"ids":["'"$want"'"]}'
	assert_equal "$(jq -r .eventId <<<"$(last_event)")" "$want"
	# batch-commit keeps one row for the student and the id
	wait_rows RETRY1 1
	run -0 psql -tAXc "select event_id from events where class_id = 'RETRY1'"
	assert_output "$want"
}

# These two need ingest on lib/tokens.c (the "*" class and the 403 rule).
@test "a token bound to a class is authoritative: another classId is 403, nothing of the POST queued" {
	printf '# token class\nsecret-a CS102\nsite-wide *\n' >"$BATS_FILE_TMPDIR/tokens"
	start_ingest tok --token-file "$BATS_FILE_TMPDIR/tokens"
	u=$tok_URL/api/v1/events
	before=$(xlen)
	post "$u" '[{"eventType":"a","emailAddress":"x","eventId":"c-1"},{"eventType":"a","emailAddress":"x","eventId":"c-2","classId":"CS101"}]' -H 'Authorization: Bearer secret-a'
	assert_equal "$status_code" 403
	assert_equal "$body" '{"error":"field classId at index 1 is not the class of the token","field":"classId","index":1}'
	assert_equal "$(xlen)" "$before"
	# its own class, named or not, is taken
	post "$u" '[{"eventType":"a","emailAddress":"x","eventId":"c-3","classId":"CS102"},{"eventType":"a","emailAddress":"x","eventId":"c-4"}]' -H 'Authorization: Bearer secret-a'
	assert_equal "$status_code" 202
	redis-cli -s "$RSOCK" --raw XREVRANGE labpulse:events + - COUNT 2 >"$BATS_TEST_TMPDIR/x"
	assert_equal "$(sed -n 3p "$BATS_TEST_TMPDIR/x" | jq -r '.eventId + " " + .classId')" "c-4 CS102"
	assert_equal "$(sed -n 6p "$BATS_TEST_TMPDIR/x" | jq -r '.eventId + " " + .classId')" "c-3 CS102"
}

@test "a token bound to * lets the client's classId stand; no classId gets --default-class" {
	printf 'secret-a CS102\nsite-wide *\n' >"$BATS_FILE_TMPDIR/tokens2"
	start_ingest star --token-file "$BATS_FILE_TMPDIR/tokens2" --default-class DEF1
	u=$star_URL/api/v1/events
	post "$u" '[{"eventType":"a","emailAddress":"x","eventId":"s-1","classId":"CS101"}]' -H 'Authorization: Bearer site-wide'
	assert_equal "$status_code" 202
	assert_equal "$(jq -r .classId <<<"$(last_event)")" CS101
	post "$u" '[{"eventType":"a","emailAddress":"x","eventId":"s-2"}]' -H 'Authorization: Bearer site-wide'
	assert_equal "$status_code" 202
	assert_equal "$(jq -r .classId <<<"$(last_event)")" DEF1
}
