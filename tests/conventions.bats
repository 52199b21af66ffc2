#!/usr/bin/env bats
# The contract every program keeps (see labpulse(7)): --help exits 0 on
# stdout, a bad flag exits 64 with the usage on stderr, a man page that lints
# clean and whose SYNOPSIS names the same options as --help.

setup() {
	load helper/common
	PROGS="labpulse $(cd "$TOP/cmd" && for d in */; do echo "${d%/}"; done | grep -v '^labpulse$')"
}

page_of() {
	if [ "$1" = labpulse ]; then echo "$TOP/man/man1/labpulse.1"
	else echo "$TOP/man/man1/labpulse-$1.1"; fi
}

run_prog() {
	local p=$1; shift
	if [ "$p" = labpulse ]; then labpulse "$@"; else labpulse "$p" "$@"; fi
}

# The long options a text names: "--name" in --help, "Fl -name" in mdoc.
help_opts() { grep -o -- '--[a-z][a-z-]*' | sort -u; }
man_opts() {
	sed -n '/^\.Sh SYNOPSIS/,/^\.Sh /p' "$1" |
		grep -oE '(Fl|\|) -[a-z][a-z-]*' | sed -E 's/^(Fl|\|) -/--/' | sort -u
}

@test "every program answers --help on stdout with exit 0" {
	for p in $PROGS; do
		run -0 --separate-stderr run_prog "$p" --help
		[[ ${lines[0]} == "usage: labpulse"* ]] || { echo "$p: ${lines[0]}"; false; }
		[ -z "$stderr" ]
	done
}

@test "every program answers a bad flag with the usage on stderr and exit 64" {
	for p in $PROGS; do
		run -64 --separate-stderr run_prog "$p" --no-such-flag
		[ -z "$output" ]
		[[ $stderr == *"usage: labpulse"* ]] || { echo "$p: $stderr"; false; }
	done
}

@test "every program has a man page, and every page lints clean" {
	for p in $PROGS; do
		[ -f "$(page_of "$p")" ] || { echo "no man page for $p"; false; }
	done
	run -0 mandoc -Tlint -W warning "$TOP"/man/man1/*.1 "$TOP"/man/man7/*.7
	assert_output ""
}

@test "each --help names the options its man page's SYNOPSIS names" {
	for p in $PROGS; do
		run_prog "$p" --help | sed -n '1,/^$/p' | help_opts >"$BATS_TEST_TMPDIR/help"
		man_opts "$(page_of "$p")" >"$BATS_TEST_TMPDIR/man"
		run diff "$BATS_TEST_TMPDIR/help" "$BATS_TEST_TMPDIR/man"
		[ "$status" -eq 0 ] || { echo "$p: --help vs man page:"; echo "$output"; false; }
	done
}

@test "the systemd units pass systemd-analyze verify" {
	run sh "$TOP/tests/helper/verify-units.sh"
	[ "$status" -eq 77 ] && skip "systemd-analyze is not installed"
	assert_success
}
