#!/bin/sh
# Install what labpulse needs from Debian's packages, and nothing when all is
# there. Uses sudo when not run as root.
set -eu
pkgs="build-essential pkg-config libpq-dev libhiredis-dev libevent-dev
libwslay-dev libcurl4-openssl-dev libjq-dev postgresql redis-server
redis-tools bats bats-assert bats-support mandoc curl jq procps util-linux
socat systemd"
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "labpulse: installing:$missing" >&2
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >&2
