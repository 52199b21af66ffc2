#!/usr/bin/env bats
# fuzz corpora: every input ever kept in tests/fuzz/corpus/NAME, seeds and
# crashes found, replayed through target NAME built with ASan and UBSan.

setup() {
	load helper/common
}

@test "every fuzz target has a corpus, and every corpus replays clean" {
	local n=0 t
	for src in "$TOP"/tests/fuzz/*.c; do
		t=$(basename "$src" .c)
		[ "$t" = replay ] && continue
		n=$((n + 1))
		[ -x "$TOP/tests/fuzz/bin/$t-replay" ] || fail "target $t is not built (is it in tests/fuzz/targets.mk?)"
		[ -n "$(ls -A "$TOP/tests/fuzz/corpus/$t" 2>/dev/null)" ] || fail "target $t has no corpus"
		run --separate-stderr "$TOP/tests/fuzz/bin/$t-replay" "$TOP/tests/fuzz/corpus/$t"
		[ "$status" -eq 0 ] || fail "target $t: $stderr"
		[[ $output == "replayed "* ]] || fail "target $t: $output"
	done
	[ "$n" -ge 1 ] || fail "no fuzz targets"
}
