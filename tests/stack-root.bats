#!/usr/bin/env bats
# A root's local stack from a checkout PostgreSQL's user cannot reach, as
# in a clone under /root (mode 700): the stack puts PostgreSQL's files where
# that user can, says where, and finds them again.

setup() {
	load helper/common
	[ "$(id -u)" -eq 0 ] || skip "the relocation is for root's stacks"
	closed=$(mktemp -d "${TMPDIR:-/tmp}/labpulse-closed.XXXXXX")
	chmod 700 "$closed"
	export LABPULSE_HOME=$closed/checkout/var
	export LABPULSE_TRIM_INTERVAL=0
}

# Whatever the test did: the stack down, its folders gone.
teardown() {
	[ -n "${closed:-}" ] || return 0
	labpulse down >/dev/null 2>&1 || true
	[ -f "$LABPULSE_HOME/pg-place" ] && rm -rf "$(cat "$LABPULSE_HOME/pg-place")"
	rm -rf "$closed"
}

@test "root, a home PostgreSQL's user cannot reach: its files go to /var/tmp, said once, found again" {
	local place out
	place=/var/tmp/labpulse-pg-$(printf '%s' "$LABPULSE_HOME" | sha256sum | cut -c1-12)
	run -0 --separate-stderr labpulse up
	out=$output
	assert_equal "$(cat "$LABPULSE_HOME/pg-place")" "$place"
	[[ $stderr == *"labpulse: info: PostgreSQL's user labpulse cannot reach $LABPULSE_HOME: its data, socket and log are in $place"* ]]
	[[ $out == *"export PGHOST='$place/run'"* ]]
	eval "$out"
	[ -f "$place/pg/PG_VERSION" ]
	[ ! -e "$LABPULSE_HOME/pg" ]
	# the whole stack works: an event is accepted and committed
	post "$LABPULSE_INGEST_URL/api/v1/events" "$(ext_event root-1)"
	assert_equal "$status_code" 202
	wait_until '[ "$(psql -tAXc "select count(*) from events where event_id = '"'root-1'"'")" = 1 ]'
	run -0 labpulse status
	assert_line --regexp "^postgres +running +pid [0-9]+ +since [0-9TZ:-]+ +unix:$place/run/\.s\.PGSQL\.5432\$"
	# down and up again: the same place, the data kept, nothing said again
	run -0 labpulse down
	run -0 --separate-stderr labpulse up
	[[ $stderr != *"cannot reach"* ]]
	run -0 psql -tAXc "select count(*) from events where event_id = 'root-1'"
	assert_output 1
}

@test "root, a home PostgreSQL's user can reach: nothing moves" {
	chmod 755 "$closed"
	run -0 --separate-stderr labpulse up
	[[ $stderr != *"cannot reach"* ]]
	[ ! -e "$LABPULSE_HOME/pg-place" ]
	[ -f "$LABPULSE_HOME/pg/PG_VERSION" ]
}
