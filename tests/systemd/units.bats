#!/usr/bin/env bats
# The systemd units under systemd: labpulse as installed by make install,
# set up by labpulse setup on this host's PostgreSQL and Redis, started,
# killed, reloaded and stopped by systemd. Run by tests/systemd/run, as root
# in a booted throwaway container: it drops the database labpulse.

bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert

export LC_ALL=C
TOP=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)

SERVICES="labpulse-ingest labpulse-batch-commit@1 labpulse-batch-commit@2 labpulse-route labpulse-notify"
INGEST=http://127.0.0.1:8000
NOTIFY=http://127.0.0.1:8080
RULES=/usr/local/etc/labpulse/route.jq
LP=/usr/local/bin/labpulse

# wait_long 'SHELL TEXT': what a systemd start or restart takes is not the
# test's to guess: the text is evaluated anew every 0.1 s, for up to 60 s.
wait_long() {
	for _ in $(seq 600); do
		eval "$1" && return 0
		sleep 0.1
	done
	return 1
}

sql() { runuser -u postgres -- env -C / psql -X -q -tA -d "${DB:-labpulse}" -c "$1"; }
rcli() { redis-cli "$@"; }
prop() { systemctl show -p "$2" --value "$1"; }
# cursor: where the whole journal is now. Not a unit's: a unit that never
# logged yet (poolstat's first run) has no cursor, and an empty one is an
# error to --after-cursor.
cursor() { journalctl -n 0 --show-cursor | sed -n 's/^-- cursor: //p'; }
# journal_since CURSOR UNIT: what UNIT logged after CURSOR.
journal_since() { journalctl -q -o cat --no-pager --after-cursor="$1" -u "$2"; }
# post URL BODY [curl args...]: sets $status_code and $body.
post() {
	local url=$1 data=$2; shift 2
	status_code=$(curl -sS -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' \
		-H 'Content-Type: application/json' --data-binary "$data" "$@" "$url")
	body=$(cat "$BATS_TEST_TMPDIR/body")
}

# track PID: a process of the test, stopped with its children (a poster's
# curl) by the test's teardown whatever the outcome (a file, since bats
# runs each test in a subshell).
track() { echo "$1" >>"$BATS_FILE_TMPDIR/pids"; }
stop_tracked() {
	local p
	[ -f "$BATS_FILE_TMPDIR/pids" ] || return 0
	while read -r p; do
		pkill -TERM -P "$p" 2>/dev/null || true
		kill "$p" 2>/dev/null || true
	done <"$BATS_FILE_TMPDIR/pids"
	while read -r p; do
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null || true
	done <"$BATS_FILE_TMPDIR/pids"
	rm -f "$BATS_FILE_TMPDIR/pids"
}

committed() { sql "select count(*) from events where event_id like '$1-%'"; }

setup_file() {
	# a clean host: the stack stopped, no database, role or streams of
	# labpulse, and a Redis setting that setup must find wrong
	systemctl stop labpulse.target 2>/dev/null || true
	systemctl reset-failed 'labpulse*' 2>/dev/null || true
	DB=postgres sql "drop database if exists labpulse"
	DB=postgres sql "drop role if exists labpulse"
	rcli --scan --pattern 'labpulse:*' | while read -r k; do rcli del "$k" >/dev/null; done
	rcli config set appendonly no >/dev/null
	cp "$RULES" "$BATS_FILE_TMPDIR/route.jq"
	cp /usr/local/etc/labpulse/tokens "$BATS_FILE_TMPDIR/tokens"
	cp /etc/default/labpulse "$BATS_FILE_TMPDIR/default"
	export RUN=r$$
}

teardown_file() {
	# the operator's files as they were
	[ -f "$BATS_FILE_TMPDIR/route.jq" ] && cp "$BATS_FILE_TMPDIR/route.jq" "$RULES"
	restore_ingest
	systemctl stop labpulse.target || true
	stop_tracked
}

# The token file and the environment file as they were (their contents:
# owner and mode stay what setup made them), and ingest started without
# tokens again, once a test changed them.
restore_ingest() {
	[ -e "$BATS_FILE_TMPDIR/ingest-changed" ] || return 0
	cat "$BATS_FILE_TMPDIR/tokens" >/usr/local/etc/labpulse/tokens
	cat "$BATS_FILE_TMPDIR/default" >/etc/default/labpulse
	rm -f "$BATS_FILE_TMPDIR/ingest-changed"
	systemctl try-restart labpulse-ingest
}

teardown() {
	stop_tracked
	restore_ingest
}

@test "make install puts the units where systemd reads them, naming this build's places; uninstall keeps what was edited" {
	local d=$BATS_TEST_TMPDIR/d
	run -0 make -s -C "$TOP" install DESTDIR="$d" PREFIX=/usr/local
	(cd "$d" && find . -path ./usr/local/share -prune -o -type f -print | sort) >"$BATS_TEST_TMPDIR/list"
	run cat "$BATS_TEST_TMPDIR/list"
	assert_line ./usr/local/lib/systemd/system/labpulse.target
	assert_line ./usr/local/lib/systemd/system/labpulse-ingest.socket
	assert_line ./usr/local/lib/systemd/system/labpulse-ingest.service
	assert_line ./usr/local/lib/systemd/system/labpulse-batch-commit@.service
	assert_line ./usr/local/lib/systemd/system/labpulse-route.service
	assert_line ./usr/local/lib/systemd/system/labpulse-notify.socket
	assert_line ./usr/local/lib/systemd/system/labpulse-notify.service
	assert_line ./usr/local/lib/systemd/system/labpulse-poolstat.service
	assert_line ./usr/local/lib/systemd/system/labpulse-poolstat.timer
	assert_line ./usr/local/libexec/labpulse/setup
	assert_line ./usr/local/etc/labpulse/route.jq
	assert_line ./usr/local/etc/labpulse/tokens
	assert_line ./etc/default/labpulse
	assert_equal "$(stat -c %a "$d/usr/local/etc/labpulse/tokens" "$d/etc/default/labpulse" | tr '\n' ' ')" "640 640 "

	# another PREFIX: the units name its programs; under /usr, systemd's own folder
	local u=$BATS_TEST_TMPDIR/usr unitdir
	run -0 make -s -C "$TOP" install DESTDIR="$u" PREFIX=/usr
	unitdir=$(pkg-config --variable=systemdsystemunitdir systemd)
	run -0 grep -h '^ExecStart=' "$u$unitdir/labpulse-ingest.service" \
		"$u$unitdir/labpulse-route.service"
	assert_output "ExecStart=/usr/libexec/labpulse/ingest \$LABPULSE_INGEST_ARGS
ExecStart=/usr/libexec/labpulse/route --consumer %H \$LABPULSE_ROUTE_ARGS"
	run -0 make -s -C "$TOP" install DESTDIR="$u" PREFIX=/opt/lp UNITDIR=/etc/systemd/system
	run -0 grep -h '^ExecStart=' "$u/etc/systemd/system/labpulse-notify.service"
	assert_output "ExecStart=/opt/lp/libexec/labpulse/notify --consumer %H \$LABPULSE_NOTIFY_ARGS"

	# an edited token file stays, and so does its folder; the rest goes
	echo "edited CS101" >>"$d/usr/local/etc/labpulse/tokens"
	run -0 make -s -C "$TOP" uninstall DESTDIR="$d" PREFIX=/usr/local
	run -0 find "$d" -type f
	assert_output "$d/usr/local/etc/labpulse/tokens"
}

@test "labpulse setup: --help, a bad flag (64), not as root (77)" {
	run -0 "$LP" setup --help
	assert_output "usage: labpulse setup [--no-redis] [--redis URL] [--set-redis]
       labpulse setup --help"
	run -64 "$LP" setup --no-such-flag
	assert_line "labpulse: error: unknown option '--no-such-flag'"
	run -64 "$LP" setup --no-redis --set-redis
	assert_line "labpulse: error: --set-redis conflicts with --no-redis"
	run -77 runuser -u nobody -- "$LP" setup
	assert_output "labpulse: error: setup creates a system user and a PostgreSQL role: run it as root (sudo labpulse setup)"
}

@test "labpulse setup makes the role, the database and the schema, and names what Redis must change (78)" {
	# setup says everything on standard error: both are read here
	run -78 "$LP" setup
	assert_line "labpulse: info: created the role labpulse"
	assert_line "labpulse: info: created the database labpulse, owned by the role labpulse"
	assert_line --partial "labpulse: info: schema: applied 0001_tables"
	assert_line "labpulse: error: Redis at redis://127.0.0.1:6379/0: appendonly is no, not yes"
	assert_line "    appendonly yes"
	# the role labpulse owns what the migrations made
	assert_equal "$(sql "select tableowner from pg_tables where tablename = 'events'")" labpulse
	assert_equal "$(sql "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
		where n.nspname = 'public' and pg_get_userbyid(c.relowner) <> 'labpulse'")" 0
}

@test "labpulse setup --set-redis writes Redis' settings; a second run changes nothing and says so" {
	run -0 "$LP" setup --set-redis
	assert_line "labpulse: info: Redis: set appendonly yes"
	assert_line "labpulse: info: Redis: written to its redis.conf (config rewrite)"
	run -0 grep -x 'appendonly yes' /etc/redis/redis.conf

	run -0 "$LP" setup
	assert_line "labpulse: info: the role labpulse exists"
	assert_line "labpulse: info: the database labpulse exists, owned by the role labpulse"
	assert_line --regexp "^labpulse: info: schema: nothing to apply: [0-9]+ migrations applied$"
	assert_line "labpulse: info: Redis at redis://127.0.0.1:6379/0 keeps what ingest acknowledges: nothing to change"
	assert_line "labpulse: info: nothing changed"
	refute_line --partial "created"
	refute_line --partial "error"
}

@test "systemctl start labpulse.target: every daemon reports ready (Type=notify), as the user labpulse" {
	run -0 systemctl start labpulse.target
	for s in $SERVICES; do
		assert_equal "$s $(prop "$s" Type) $(prop "$s" ActiveState)/$(prop "$s" SubState)" \
			"$s notify active/running"
		assert_equal "$s $(ps -o user= -p "$(prop "$s" MainPID)")" "$s labpulse"
	done
	for s in labpulse-ingest.socket labpulse-notify.socket; do
		assert_equal "$s $(prop "$s" ActiveState)" "$s active"
	done
	run -0 journalctl -q -o cat -u labpulse-route -u labpulse-notify -u labpulse-ingest -u 'labpulse-batch-commit@*'
	assert_line --partial "labpulse-ingest: info: ready listen=127.0.0.1:8000"
	assert_line --partial "labpulse-notify: info: ready listen=127.0.0.1:8080"
}

@test "POSTs through the socket-activated ingest are answered 202 and land in PostgreSQL once" {
	local i
	for i in $(seq 20); do
		post "$INGEST/api/v1/events" '[{"eventType":"cell_executed","emailAddress":"ada@example.edu","classId":"CS101","eventId":"'"$RUN-post-$i"'"}]'
		assert_equal "$status_code" 202
	done
	wait_long 'test "$(committed "$RUN-post")" = 20'
	assert_equal "$(committed "$RUN-post")" 20
}

@test "labpulse-poolstat.service reaches every daemon's stats socket, PostgreSQL and Redis" {
	local c
	c=$(cursor)
	[ -n "$c" ]
	run -0 systemctl start labpulse-poolstat.service
	# journald may write the line a moment after the run ended
	wait_long 'journal_since "$c" labpulse-poolstat | grep -q "^POOLSTAT "'
	run -0 journal_since "$c" labpulse-poolstat
	assert_line --regexp '^POOLSTAT OK - all 5 daemons up'
}

@test "an instructor's dashboard gets its class's events over SSE from the socket-activated notify" {
	local token
	# as the host's root would: as the system user labpulse, whose peer
	# authentication reaches the role labpulse
	token=$(runuser -u labpulse -- env -C / PGDATABASE=labpulse "$LP" instructor add "ada-$RUN" CS101)
	[ "${#token}" -eq 43 ]
	echo "$token" >"$BATS_FILE_TMPDIR/token"
	curl -sS -N --max-time 120 "$NOTIFY/sse?class=CS101&token=$token" \
		>"$BATS_TEST_TMPDIR/sse" 2>&1 3>&- &
	track $!
	wait_long 'grep -q "\"type\":\"snapshot\"" "$BATS_TEST_TMPDIR/sse"'
	post "$INGEST/api/v1/events" '[{"eventType":"cell_executed","emailAddress":"grace@example.edu","classId":"CS101","eventId":"'"$RUN-sse"'"}]'
	assert_equal "$status_code" 202
	wait_long 'grep -q "$RUN-sse" "$BATS_TEST_TMPDIR/sse"'
	# another class's event does not reach it
	post "$INGEST/api/v1/events" '[{"eventType":"cell_executed","emailAddress":"grace@example.edu","classId":"CS999","eventId":"'"$RUN-other"'"}]'
	post "$INGEST/api/v1/events" '[{"eventType":"cell_executed","emailAddress":"grace@example.edu","classId":"CS101","eventId":"'"$RUN-sse2"'"}]'
	wait_long 'grep -q "$RUN-sse2" "$BATS_TEST_TMPDIR/sse"'
	run -1 grep -q "$RUN-other" "$BATS_TEST_TMPDIR/sse"
}

@test "kill -9 of ingest while a client posts: systemd restarts it on its socket, no connection refused, no event lost" {
	local out=$BATS_TEST_TMPDIR/kill pid0 pid1 r0 n=400
	pid0=$(prop labpulse-ingest MainPID)
	r0=$(prop labpulse-ingest NRestarts)
	"$BATS_TEST_DIRNAME/poster" "$INGEST/api/v1/events" "$RUN-kill" "$n" "$out" 3>&- &
	local poster=$!
	track "$poster"
	# and a slow client, 4 KB at 1 KB/s a POST, whose request the kill cuts
	POSTER_PAD=4000 POSTER_RATE=1000 "$BATS_TEST_DIRNAME/poster" \
		"$INGEST/api/v1/events" "$RUN-slow" 3 "$out-slow" 3>&- &
	local slow=$!
	track "$slow"
	wait_long 'test "$(wc -l <"$out")" -ge 50'
	kill -9 "$pid0"
	wait_long 'test "$(prop labpulse-ingest ActiveState)/$(prop labpulse-ingest SubState)" = active/running'
	pid1=$(prop labpulse-ingest MainPID)
	[ "$pid1" != "$pid0" ] && [ "$pid1" != 0 ]
	assert_equal "$(prop labpulse-ingest NRestarts)" $((r0 + 1))
	assert_equal "$(prop labpulse-ingest.socket ActiveState)" active
	wait_long '! kill -0 "$poster" 2>/dev/null'
	wait_long '! kill -0 "$slow" 2>/dev/null'
	echo "# tries again after the kill: $(cat "$out.retried" "$out-slow.retried" | wc -l)" >&3
	run cat "$out.refused" "$out-slow.refused"
	assert_output ""
	assert_equal "$(wc -l <"$out")" "$n"
	# the slow client's request was cut, and it tried again
	run -0 grep -c . "$out-slow.retried"
	assert_equal "$(wc -l <"$out-slow")" 3
	wait_long 'test "$(committed "$RUN-slow")" = 3'
	wait_long 'test "$(committed "$RUN-kill")" = "$n"'
	assert_equal "$(committed "$RUN-kill")" "$n"
	assert_equal "$(sql "select count(distinct event_id) from events where event_id like '$RUN-kill-%'")" "$n"
}

@test "systemctl reload labpulse-route with bad rules keeps the old rules, and routing goes on" {
	local c pid token
	token=$(cat "$BATS_FILE_TMPDIR/token")
	pid=$(prop labpulse-route MainPID)
	c=$(cursor)
	printf '%s\n' 'this is not jq (' >"$RULES"
	run -0 systemctl reload labpulse-route
	wait_long 'journal_since "$c" labpulse-route | grep -q "reload failed, keeping the old rules"'
	assert_equal "$(prop labpulse-route MainPID) $(prop labpulse-route ActiveState)" "$pid active"

	curl -sS -N --max-time 120 "$NOTIFY/sse?class=CS101&token=$token" \
		>"$BATS_TEST_TMPDIR/sse" 2>&1 3>&- &
	track $!
	wait_long 'grep -q "\"type\":\"snapshot\"" "$BATS_TEST_TMPDIR/sse"'
	post "$INGEST/api/v1/events" '[{"eventType":"cell_executed","emailAddress":"grace@example.edu","classId":"CS101","eventId":"'"$RUN-reload"'"}]'
	assert_equal "$status_code" 202
	wait_long 'grep -q "$RUN-reload" "$BATS_TEST_TMPDIR/sse"'

	# good rules again: reloaded
	cp "$BATS_FILE_TMPDIR/route.jq" "$RULES"
	c=$(cursor)
	run -0 systemctl reload labpulse-route
	wait_long 'journal_since "$c" labpulse-route | grep -q "rules reloaded"'
}

@test "systemctl reload labpulse-notify checks every open dashboard again: a class taken away by hand ends its stream" {
	local c pid tok d=$BATS_TEST_TMPDIR
	tok=$(runuser -u labpulse -- env -C / PGDATABASE=labpulse "$LP" instructor add "hal-$RUN" CS101 CS102)
	# each stream's end is written down by the shell that ran it
	(curl -sS -N --max-time 120 "$NOTIFY/sse?class=CS102&token=$tok" >"$d/gone" 2>&1; echo ended >"$d/gone.end") 3>&- &
	track $!
	(curl -sS -N --max-time 120 "$NOTIFY/sse?class=CS101&token=$tok" >"$d/kept" 2>&1; echo ended >"$d/kept.end") 3>&- &
	track $!
	wait_long 'grep -q "\"type\":\"snapshot\"" "$d/gone" && grep -q "\"type\":\"snapshot\"" "$d/kept"'
	pid=$(prop labpulse-notify MainPID)
	# no notification tells notify of this one: only a reload finds it
	sql "delete from instructor_classes where class_id = 'CS102' and instructor_id = (select id from instructors where name = 'hal-$RUN')"
	c=$(cursor)
	run -0 systemctl reload labpulse-notify
	wait_long 'journal_since "$c" labpulse-notify | grep -q "reload: tokens, dashboard files and hooks"'
	wait_long 'test -s "$d/gone.end"'
	[ ! -e "$d/kept.end" ]
	assert_equal "$(prop labpulse-notify MainPID) $(prop labpulse-notify ActiveState)" "$pid active"
}

@test "ingest's token file: read as the group labpulse, given in /etc/default/labpulse, reloaded by systemctl reload" {
	local tokens=/usr/local/etc/labpulse/tokens t1 t2 c
	assert_equal "$(stat -c '%U:%G %a' "$tokens")" "root:labpulse 640"
	t1=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
	t2=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
	touch "$BATS_FILE_TMPDIR/ingest-changed"
	echo "$t1 CS101" >>"$tokens"
	echo "LABPULSE_INGEST_ARGS=--token-file $tokens" >>/etc/default/labpulse
	run -0 systemctl restart labpulse-ingest
	post "$INGEST/api/v1/events" '[{"eventType":"cell_executed","emailAddress":"ada@example.edu","eventId":"'"$RUN-tok-0"'"}]'
	assert_equal "$status_code" 401
	post "$INGEST/api/v1/events" '[{"eventType":"cell_executed","emailAddress":"ada@example.edu","eventId":"'"$RUN-tok-1"'"}]' \
		-H "Authorization: Bearer $t1"
	assert_equal "$status_code" 202

	# a new token, read at the reload
	echo "$t2 CS102" >>"$tokens"
	c=$(cursor)
	run -0 systemctl reload labpulse-ingest
	wait_long 'journal_since "$c" labpulse-ingest | grep -q "reloaded tokens=2 file=$tokens"'
	post "$INGEST/api/v1/events" '[{"eventType":"cell_executed","emailAddress":"ada@example.edu","eventId":"'"$RUN-tok-2"'"}]' \
		-H "Authorization: Bearer $t2"
	assert_equal "$status_code" 202

	# a bad file: the old tokens stay
	echo "a-line-with-no-class" >>"$tokens"
	c=$(cursor)
	run -0 systemctl reload labpulse-ingest
	wait_long 'journal_since "$c" labpulse-ingest | grep -q "reload failed, keeping the old tokens"'
	post "$INGEST/api/v1/events" '[{"eventType":"cell_executed","emailAddress":"ada@example.edu","eventId":"'"$RUN-tok-3"'"}]' \
		-H "Authorization: Bearer $t2"
	assert_equal "$status_code" 202
	wait_long 'test "$(committed "$RUN-tok")" = 3'
	assert_equal "$(sql "select string_agg(class_id, ' ' order by event_id) from events where event_id like '$RUN-tok-%'")" \
		"CS101 CS102 CS102"
}

@test "systemctl stop labpulse.target drains: each daemon exits 0, nothing acknowledged is lost" {
	local out=$BATS_TEST_TMPDIR/stop c s
	"$BATS_TEST_DIRNAME/poster" "$INGEST/api/v1/events" "$RUN-stop" 100000 "$out" 3>&- &
	local poster=$!
	track "$poster"
	wait_long 'test "$(wc -l <"$out")" -ge 50'
	c=$(cursor)
	run -0 systemctl stop labpulse.target
	touch "$out.stop"
	wait_long '! kill -0 "$poster" 2>/dev/null'
	# systemctl returns once the target stopped, which is before the
	# daemons it is after: they may still be draining
	for s in $SERVICES; do
		wait_long 'case $(prop "$s" ActiveState) in inactive|failed) true ;; *) false ;; esac'
	done
	for s in $SERVICES; do
		assert_equal "$s $(prop "$s" ActiveState) $(prop "$s" Result) $(prop "$s" ExecMainStatus)" \
			"$s inactive success 0"
		run -0 journal_since "$c" "$s"
		assert_line --partial "Deactivated successfully"
		refute_line --partial "Killing"
		refute_line --partial "status=9/KILL"
		refute_line --partial "Failed with result"
	done
	# what was acknowledged is committed, if not before the stop then
	# after the next start
	run -0 systemctl start labpulse.target
	local n
	n=$(wc -l <"$out")
	echo "# acknowledged before the stop: $n" >&3
	wait_long 'test "$(committed "$RUN-stop")" = "$n"'
	sort "$out" >"$BATS_TEST_TMPDIR/acked"
	sql "select event_id from events where event_id like '$RUN-stop-%' order by 1" | sort >"$BATS_TEST_TMPDIR/rows"
	run comm -23 "$BATS_TEST_TMPDIR/acked" "$BATS_TEST_TMPDIR/rows"
	assert_output ""
	run -0 systemctl stop labpulse.target
}

@test "systemd-analyze security: every service's exposure is 2.0 or lower" {
	local s score bad=
	for s in labpulse-ingest labpulse-batch-commit@1 labpulse-route labpulse-notify labpulse-poolstat; do
		score=$(systemd-analyze security --no-pager "$s.service" |
			sed -n 's/^.*Overall exposure level for [^:]*: \([0-9.]*\) .*$/\1/p')
		echo "# $s.service: exposure $score" >&3
		[ -n "$score" ] || bad+=" $s:none"
		awk -v s="$score" 'BEGIN { exit !(s + 0 <= 2.0) }' || bad+=" $s:$score"
	done
	assert_equal "${bad:-none}" none
}
