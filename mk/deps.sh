#!/bin/sh
# deps.sh [demo|test|fresh] [--list]: install what labpulse needs from
# Debian's packages, and nothing when all is there; --list prints the
# packages instead, one a line. Uses sudo when not run as root.
#   demo  what the programs and the local stack need: the libraries to
#         build with, PostgreSQL, Redis, and the tools `make demo` shows
#         them with (curl, jq, socat)
#   test  (the default) that, and the test tools: bats, Chromium and
#         playwright-core for the dashboard test, Prometheus' promtool,
#         tmux, wrk, clang for the fuzzers, the engines the cluster test
#         runs (Redis Sentinel, PgBouncer, HAProxy, pg_auto_failover),
#         and the rest below
#   fresh what `make check-fresh` builds and boots a clean Debian root with
set -eu
what=${1:-test}
demo="build-essential pkg-config libpq-dev libhiredis-dev libevent-dev
libwslay-dev libcurl4-openssl-dev libjq-dev libhttp-parser-dev nettle-dev zlib1g-dev
postgresql redis-server redis-tools curl jq socat procps util-linux"
test="bats bats-assert bats-support mandoc systemd chromium nodejs prometheus
tmux wrk iproute2 clang libclang-rt-14-dev python3
redis-sentinel pgbouncer haproxy pg-auto-failover-cli postgresql-15-auto-failover"
case $what in
demo) pkgs=$demo ;;
test) pkgs="$demo $test" ;;
fresh) pkgs="mmdebstrap systemd-container" ;;
*) echo "usage: sh mk/deps.sh [demo|test|fresh] [--list]" >&2; exit 64 ;;
esac
if [ "${2:-}" = --list ]; then
	for p in $pkgs; do echo "$p"; done
	exit 0
fi
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' ||
		missing="$missing $p"
done
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
if [ -n "$missing" ]; then
	echo "labpulse: installing:$missing" >&2
	$sudo apt-get update -qq
	# shellcheck disable=SC2086
	$sudo apt-get install -y -qq --no-install-recommends $missing >&2
fi

# The browser test drives chromium with playwright-core from npm, pinned by
# tests/browser/package-lock.json. npm is not in the list above: Debian ships
# it as a package of its own, while NodeSource's nodejs carries it and
# conflicts with Debian's.
[ "$what" = test ] || exit 0
browser=$(dirname "$0")/../tests/browser
if [ ! -d "$browser/node_modules/playwright-core" ]; then
	if ! command -v npm >/dev/null 2>&1; then
		echo "labpulse: installing: npm" >&2
		{ $sudo apt-get update -qq &&
		    $sudo apt-get install -y -qq --no-install-recommends npm >&2; } || {
			echo "labpulse: error: cannot install npm, which the browser test needs" >&2
			exit 69
		}
	fi
	echo "labpulse: installing playwright-core in tests/browser" >&2
	(cd "$browser" && npm ci --no-audit --no-fund --loglevel=error >&2) || {
		echo "labpulse: error: npm ci failed in tests/browser: the browser test needs playwright-core from the npm registry" >&2
		exit 69
	}
fi
