#!/usr/bin/env bats
# The contract every program keeps (see labpulse(7) and cmd/prog.h): --help
# exits 0 on stdout, a bad flag exits 64 with the usage on stderr, a man page
# that lints clean, whose SYNOPSIS names the same options as --help and whose
# items state the ranges and defaults --help shows; exit statuses by name,
# each in exit_table and in labpulse(7); mains under 80 lines; the six places
# of a program.

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

# ---- the contract of cmd/prog.h -------------------------------------------

# exit_table of cmd/prog.c, "CODE NAME" a line, from the unit test built on
# it (make unit).
exit_table() {
	[ -x "$TOP/tests/unit/test_prog" ] ||
		{ echo "tests/unit/test_prog is not built: make unit" >&2; return 1; }
	"$TOP/tests/unit/test_prog" --exit-table
}

# The first argument of every call in cmd/ that chooses an exit status,
# "FILE:LINE: CALL ARG" a line.
exit_calls() {
	(cd "$TOP" && perl tests/helper/exit-calls.pl cmd/*.c cmd/*/*.c)
}

@test "labpulse(7) lists exactly the exit statuses of exit_table" {
	exit_table >"$BATS_TEST_TMPDIR/table"
	cut -d' ' -f1 "$BATS_TEST_TMPDIR/table" | sort -n >"$BATS_TEST_TMPDIR/codes"
	sed -n '/^\.Sh EXIT STATUS/,/^\.Sh /p' "$TOP/man/man7/labpulse.7" |
		sed -n 's/^\.It \([0-9][0-9]*\)$/\1/p' | sort -n >"$BATS_TEST_TMPDIR/man"
	[ -s "$BATS_TEST_TMPDIR/codes" ]
	run diff "$BATS_TEST_TMPDIR/codes" "$BATS_TEST_TMPDIR/man"
	[ "$status" -eq 0 ] ||
		{ echo "exit_table (<) vs labpulse(7) EXIT STATUS (>):"; echo "$output"; false; }
}

@test "no exit status in cmd/ is a bare number" {
	exit_calls >"$BATS_TEST_TMPDIR/calls"
	# a number of its own in the argument, subscripts aside: exit(0),
	# die(71, ...), die(ok ? 70 : 69, ...)
	sed 's/\[[^]]*\]//g' "$BATS_TEST_TMPDIR/calls" |
		grep -E '^[^ ]+ [a-z_]+ (.*[^A-Za-z0-9_.])?[0-9]+([^A-Za-z0-9_.].*)?$' \
		>"$BATS_TEST_TMPDIR/bare" || true
	[ ! -s "$BATS_TEST_TMPDIR/bare" ] || {
		echo "exit statuses by number; name them (EX_* of <sysexits.h>, EX_OK, EX_CHECK):"
		cat "$BATS_TEST_TMPDIR/bare"
		false
	}
}

# resolve_names FILE NAME...: "NAME VALUE" for each, as the C compiler sees
# NAME after <sysexits.h>, cmd/prog.h and the headers FILE includes;
# nothing when it cannot. Read from the assembly, so nothing is linked or run
# (1000 is added so that 0 is no zero fill).
resolve_names() {
	local file=$1 n; shift
	{
		echo '#include <sysexits.h>'
		echo '#include "prog.h"'
		grep '^#include "' "$TOP/$file"
		for n in "$@"; do echo "const int resolved_$n = (int)($n) + 1000;"; done
	} >"$BATS_TEST_TMPDIR/resolve.c"
	# shellcheck disable=SC2046
	${CC:-cc} -S -D_GNU_SOURCE -I"$TOP/cmd" -I"$TOP/lib" -I"$TOP/$(dirname "$file")" \
		$(pkg-config --cflags libevent hiredis libpq libcurl nettle zlib 2>/dev/null) \
		-o "$BATS_TEST_TMPDIR/resolve.s" "$BATS_TEST_TMPDIR/resolve.c" 2>/dev/null &&
		awk '/^resolved_[A-Za-z0-9_]*:/ { n = substr($1, 10, length($1) - 10) }
			n != "" && $1 == ".long" { print n, $2 - 1000; n = "" }' \
			"$BATS_TEST_TMPDIR/resolve.s"
}

@test "every exit status used in cmd/ is in exit_table" {
	local file call arg part v n bad=0
	local -A code name value
	exit_table >"$BATS_TEST_TMPDIR/table"
	while read -r v n; do code[$v]=1; name[$n]=1; done <"$BATS_TEST_TMPDIR/table"
	exit_calls >"$BATS_TEST_TMPDIR/calls"
	# each branch of a ?: that is a number or a NAME; variables pass
	while read -r file call arg; do
		[ "$call" != die_kind ] || continue
		file=${file%%:*}
		IFS='?:' read -r -a parts <<<"$arg"
		for part in "${parts[@]}"; do
			part=${part// /}
			if [[ $part =~ ^[0-9]+$ ]]; then
				[ -n "${code[$part]:-}" ] ||
					{ echo "$file: status $part is not in exit_table"; bad=1; }
			elif [[ $part =~ ^[A-Z][A-Z0-9_]*$ ]] && [ -z "${value[$part]:-}" ]; then
				value[$part]=?
				resolve_names "$file" "$part" >"$BATS_TEST_TMPDIR/value" || true
				read -r n v <"$BATS_TEST_TMPDIR/value" || v=
				if [ -n "$v" ]; then
					value[$part]=$v
					[ -n "${code[$v]:-}" ] ||
						{ echo "$file: $part ($v) is not in exit_table"; bad=1; }
				elif [ -z "${name[$part]:-}" ]; then
					echo "$file: $part: no value with <sysexits.h>, prog.h and the file's headers, nor a name of exit_table"
					bad=1
				fi
			fi
		done
	done <"$BATS_TEST_TMPDIR/calls"
	[ "$bad" -eq 0 ]
}

@test "every main() in cmd/*/main.c is under 80 lines" {
	local f bad=0
	for f in "$TOP"/cmd/*/main.c; do
		awk -v f="${f#"$TOP"/}" '
			/^main\(/ { s = NR }
			s && /^}/ { n = NR - s + 1; s = 0; found = 1
				if (n >= 80) { print f ": main() is " n " lines"; bad = 1 } }
			END { if (!found) { print f ": no main( at column 0"; bad = 1 }
				exit bad }' "$f" || bad=1
	done
	[ "$bad" -eq 0 ]
}

@test "each man page states the ranges and defaults its --help shows" {
	local p bad=0
	for p in $PROGS; do
		[ "$p" != labpulse ] || continue
		run_prog "$p" --help >"$BATS_TEST_TMPDIR/help" ||
			{ echo "$p: --help failed"; bad=1; continue; }
		perl "$TOP/tests/helper/help-vs-man.pl" "$p" "$BATS_TEST_TMPDIR/help" \
			"$(page_of "$p")" >"$BATS_TEST_TMPDIR/diff"
		[ ! -s "$BATS_TEST_TMPDIR/diff" ] || { cat "$BATS_TEST_TMPDIR/diff"; bad=1; }
	done
	[ "$bad" -eq 0 ]
}

# What prog.h's contract lists for a program NAME. The daemons are named
# here; a program that starts a daemon (daemon_start) must be one of them.
DAEMONS="ingest batch-commit route notify poolstat"

@test "every program has the six places cmd/prog.h lists" {
	local p progs bad=0
	progs=$(sed -n 's/^PROGS *= *//p' "$TOP/Makefile")
	[ -n "$progs" ]
	for p in $PROGS; do
		[ "$p" = labpulse ] || [[ " $progs " == *" $p "* ]] ||
			{ echo "cmd/$p/ is not in PROGS of the Makefile"; bad=1; }
	done
	for p in $progs; do
		[ -f "$TOP/cmd/$p/main.c" ] || { echo "$p: no cmd/$p/main.c"; bad=1; }
		[ -f "$(page_of "$p")" ] || { echo "$p: no man page"; bad=1; }
		grep -Eq "^[[:space:]]*\{ \"$p\"," "$TOP/cmd/labpulse/main.c" ||
			{ echo "$p: not in the front's table (cmd/labpulse/main.c)"; bad=1; }
		[ -f "$TOP/tests/$p.bats" ] || { echo "$p: no tests/$p.bats"; bad=1; }
		if grep -qs 'daemon_start(' "$TOP/cmd/$p"/*.c &&
		    [[ " $DAEMONS " != *" $p "* ]]; then
			echo "$p: starts a daemon but is not in DAEMONS of this test"; bad=1
		fi
		[[ " $DAEMONS " == *" $p "* ]] || continue
		[ -f "$TOP/etc/systemd/labpulse-$p.service" ] ||
			[ -f "$TOP/etc/systemd/labpulse-$p@.service" ] ||
			{ echo "$p: no unit etc/systemd/labpulse-$p.service"; bad=1; }
	done
	[ "$bad" -eq 0 ]
}
