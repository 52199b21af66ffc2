#!/bin/sh
# libs.sh PKG_CONFIG CC PKG...: check that the libraries labpulse builds
# with are installed, before the compiler meets a missing header. Names
# each missing one with the Debian package that has it, says to run `make
# deps`, and exits 1; prints nothing and exits 0 when all are there.
# libs.sh --debs: the Debian packages that hold them, one a line, which
# mk/deps.sh must install (tests/build.bats checks).
set -u

# NAME:DEBIAN for each pkg-config name of the Makefile's PKGS, and for the
# headers of the libraries that come without a pkg-config file.
pcs="libevent:libevent-dev hiredis:libhiredis-dev libpq:libpq-dev
libcurl:libcurl4-openssl-dev nettle:nettle-dev zlib:zlib1g-dev"
headers="jq.h:libjq-dev wslay/wslay.h:libwslay-dev http_parser.h:libhttp-parser-dev"

# deb NAME: the Debian package of the pkg-config name NAME.
deb() {
	for m in $pcs; do [ "${m%%:*}" = "$1" ] && { echo "${m#*:}"; return; }; done
	echo "$1's -dev package"
}

if [ "${1:-}" = --debs ]; then
	echo build-essential; echo pkg-config
	for m in $pcs $headers; do echo "${m#*:}"; done
	exit 0
fi
pkgconfig=${1:-pkg-config} cc=${2:-cc}
shift 2 2>/dev/null || shift $#
libs=$*
missing=
need() { missing="$missing $1 ($2),"; }

# CC may carry words of its own (ccache gcc, clang -m32): the first runs.
set -- $cc
havecc=no
if [ $# -gt 0 ] && command -v "$1" >/dev/null 2>&1; then
	havecc=yes
else
	need "a C compiler, $cc" build-essential
fi
if ! command -v "$pkgconfig" >/dev/null 2>&1; then
	need "$pkgconfig" pkg-config
else
	# One at a time: asked for several, pkg-config says nothing of any
	# when one is missing.
	for lib in $libs; do
		"$pkgconfig" --exists "$lib" 2>/dev/null || need "$lib" "$(deb "$lib")"
	done
fi
# These come without a pkg-config file: ask the compiler for the header.
if [ $havecc = yes ]; then
	for h in $headers; do
		printf '#include <%s>\n' "${h%%:*}" |
			$cc -E -x c -o /dev/null - >/dev/null 2>&1 || need "${h%%:*}" "${h#*:}"
	done
fi
[ -z "$missing" ] && exit 0
missing=${missing%,}
echo "labpulse: error: not installed:$missing; run: make deps" >&2
exit 1
