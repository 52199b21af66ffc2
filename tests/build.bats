#!/usr/bin/env bats
# The build on a machine that has not got the libraries yet: the README's
# commands install them first and only then ask pkg-config for their flags;
# a plain make without them says what is missing. A pkg-config that knows
# nothing until a stand-in for `make deps` has run plays the fresh machine.

setup_file() {
	load helper/common
	tree=$(mktemp -d "${TMPDIR:-/tmp}/labpulse-build.XXXXXX")
	export tree
	# The sources, not what this checkout built.
	if git -C "$TOP" rev-parse --git-dir >/dev/null 2>&1; then
		git -C "$TOP" ls-files -co --exclude-standard -z |
			tar -C "$TOP" --null -T - -cf - | tar -C "$tree" -xf -
	else
		cp -a "$TOP/." "$tree" && make -s -C "$tree" clean
	fi
	real=$(command -v pkg-config)
	mkdir "$tree/fake"
	# pkg-config as it is before `make deps`: nothing is there.
	cat >"$tree/fake/pkg-config" <<-SH
	#!/bin/sh
	[ -e "$tree/fake/installed" ] || exit 1
	exec "$real" "\$@"
	SH
	# make deps: now it is.
	cat >"$tree/fake/deps" <<-SH
	#!/bin/sh
	echo "deps \$*" >>"$tree/fake/deps.log"
	touch "$tree/fake/installed"
	SH
	chmod 755 "$tree/fake/pkg-config" "$tree/fake/deps"
}

teardown_file() {
	rm -rf "$tree"
}

setup() {
	load helper/common
	rm -f "$tree/fake/installed" "$tree/fake/deps.log"
	make -s -C "$tree" clean >/dev/null
}

fake_make() {
	make -s -C "$tree" PKG_CONFIG="$tree/fake/pkg-config" CFLAGS=-O0 "$@"
}

@test "make without the libraries names each missing one and make deps, before any compiler error" {
	run -2 --separate-stderr fake_make all
	assert_equal "${stderr_lines[0]}" "labpulse: error: not installed: libevent (libevent-dev), hiredis (libhiredis-dev), libpq (libpq-dev), libcurl (libcurl4-openssl-dev), nettle (nettle-dev), zlib (zlib1g-dev); run: make deps"
	[[ $stderr != *"No such file"* ]]
	[ -z "$(find "$tree/lib" "$tree/cmd" -name '*.o')" ]
	[ ! -e "$tree/bin/ingest" ]
}

@test "make demo installs first, then builds with the flags pkg-config gives after it" {
	run -0 fake_make DEPS="$tree/fake/deps" DEMO=true demo
	assert_equal "$(cat "$tree/fake/deps.log")" "deps demo"
	for p in labpulse ingest batch-commit route notify migrate-indexes poolstat loadgen; do
		[ -x "$tree/bin/$p" ]
	done
	run -0 "$tree/bin/ingest" --version
	assert_output "labpulse ingest 0.1.0"
}

@test "make test installs first, with the test tools, then builds the programs and the unit tests" {
	run -0 fake_make DEPS="$tree/fake/deps" PROVE=: test
	assert_equal "$(cat "$tree/fake/deps.log")" "deps test"
	[ -x "$tree/bin/notify" ]
	[ -x "$tree/tests/unit/test_events" ]
}

@test "mk/deps.sh knows demo, test and fresh, and nothing else" {
	run -64 --separate-stderr sh "$TOP/mk/deps.sh" everything
	assert_equal "$stderr" "usage: sh mk/deps.sh [demo|test|fresh] [--list]"
}

@test "every library the build asks pkg-config for is known, and make demo installs its package" {
	local pkgs debs p deb
	pkgs=$(make -s -C "$TOP" --eval 'print-pkgs: ; @echo $(PKGS)' print-pkgs)
	[ -n "$pkgs" ]
	debs=$(sh "$TOP/mk/deps.sh" demo --list)
	for p in $pkgs; do
		# what libs.sh names for it when it is missing
		run -1 --separate-stderr sh "$TOP/mk/libs.sh" /bin/false cc "$p"
		deb=$(sed -n "s/.* $p (\([^)]*\)).*/\1/p" <<<"$stderr")
		[[ $deb == *-dev ]] || { echo "$p: no Debian package known: $stderr"; false; }
		grep -qx "$deb" <<<"$debs" || { echo "$p: $deb is not in mk/deps.sh's demo list"; false; }
	done
	for deb in $(sh "$TOP/mk/libs.sh" --debs); do
		grep -qx "$deb" <<<"$debs" || { echo "$deb is not in mk/deps.sh's demo list"; false; }
	done
}
