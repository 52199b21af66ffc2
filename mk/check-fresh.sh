#!/bin/sh
# check-fresh: the README's two commands on a machine that has nothing yet.
# Builds a minimal Debian 12 root from Debian's packages (mmdebstrap), puts
# this tree in it as a clone in /root/labpulse, runs `make demo` and `make
# test` there as root, then boots systemd in that root (systemd-nspawn -b)
# and runs tests/systemd/run inside: the units installed, set up, started,
# killed, reloaded and stopped for real. Needs root. Exit 0 when all passed.
#
# Environment:
#   LABPULSE_FRESH_MIRROR  Debian mirror (default http://deb.debian.org/debian)
#   LABPULSE_FRESH_KEEP    1: keep the root and its logs (their folder is named)
#   LABPULSE_FRESH_SKIP    words of demo, test, systemd: phases to leave out
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
prog=check-fresh
mirror=${LABPULSE_FRESH_MIRROR:-http://deb.debian.org/debian}
security=${mirror%/debian}/debian-security
skip=" ${LABPULSE_FRESH_SKIP:-} "

say() { echo "$prog: $*" >&2; }
die() { code=$1; shift; echo "$prog: error: $*" >&2; exit "$code"; }

[ "$(id -u)" -eq 0 ] || die 77 "needs root: it builds a Debian root and boots systemd in it"
sh "$top/mk/deps.sh" fresh

work=$(mktemp -d "${TMPDIR:-/var/tmp}/labpulse-fresh.XXXXXX")
root=$work/root
log=$work/check.log
nspawn=
started=$(date +%s)

# Whatever happens: the booted container powered off (systemd-nspawn turns
# SIGTERM into a clean shutdown of the container), then the root removed.
cleanup() {
	rc=$?
	trap - EXIT INT TERM
	if [ -n "$nspawn" ] && kill -0 "$nspawn" 2>/dev/null; then
		kill -TERM "$nspawn" 2>/dev/null || true
		i=0
		while kill -0 "$nspawn" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
		kill -KILL "$nspawn" 2>/dev/null || true
		wait "$nspawn" 2>/dev/null || true
	fi
	if [ "${LABPULSE_FRESH_KEEP:-0}" = 1 ]; then
		say "kept $work (the root, check.log, boot.log)"
	else
		rm -rf --one-file-system "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# phase NAME: start a timed phase; done_phase: its end.
phase() { phase_name=$1; phase_start=$(date +%s); say "$phase_name ..."; }
done_phase() { say "$phase_name: ok in $(($(date +%s) - phase_start)) s"; }
# fail: the end of the log, and the exit.
fail() {
	tail -n 60 "$log" >&2
	die 1 "$phase_name failed (the log's end above)"
}

phase "a minimal Debian 12 root (mmdebstrap)"
# What a fresh server has, and what the README asks for before its first
# command: git to clone, make to run it. systemd-sysv and dbus to boot.
mmdebstrap --variant=minbase --include=systemd-sysv,dbus,make,git,ca-certificates \
	bookworm "$root" "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
	"deb $security bookworm-security main" >>"$log" 2>&1 || fail
# The trust a machine of this kind has: its local certificate authorities,
# and npm told to use the system's store, through which it reaches the npm
# registry; and the host's apt proxy, if it has one.
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
	cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
	printf 'cafile=/etc/ssl/certs/ca-certificates.crt\n' >"$root/etc/npmrc"
fi
apt-config dump 2>/dev/null | grep -i '^Acquire::[a-z]*::Proxy ' \
	>"$root/etc/apt/apt.conf.d/80proxy" || rm -f "$root/etc/apt/apt.conf.d/80proxy"
# This tree as a clone has it: what git tracks and what is new, not what
# this checkout built.
mkdir -p "$root/root/labpulse"
if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
	git -C "$top" ls-files -co --exclude-standard -z |
		tar -C "$top" --null -T - -cf - | tar -C "$root/root/labpulse" -xf -
else
	tar -C "$top" --exclude=./bin --exclude=./var --exclude='*.o' --exclude=node_modules \
		-cf - . | tar -C "$root/root/labpulse" -xf -
fi
done_phase

# inside CMD: run CMD with bash in the root as root, not booted, from
# /root/labpulse, with a clean environment as a login would give.
inside() {
	systemd-nspawn -D "$root" --register=no --keep-unit -q --pipe --as-pid2 \
		--setenv=HOME=/root --setenv=LANG=C.UTF-8 \
		--setenv=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		/bin/bash -c "update-ca-certificates >/dev/null 2>&1; cd /root/labpulse && $1" \
		</dev/null >>"$log" 2>&1
}

case $skip in *" demo "*) ;; *)
	phase "make demo, as root in /root/labpulse"
	inside 'make demo && bin/labpulse down' || fail
	done_phase
esac

case $skip in *" test "*) ;; *)
	phase "make test, as root in /root/labpulse"
	mark=$(wc -l <"$log")
	inside 'make test' || fail
	tail -n +"$mark" "$log" | grep -E '^(Files=|Result:)' >&2 || true
	done_phase
esac

case $skip in *" systemd "*) ;; *)
	phase "systemd booted in the root, tests/systemd/run"
	# make test has installed everything; make demo alone does not bring bats.
	case $skip in *" test "*) inside 'make deps && make all' || fail ;; esac
	systemd-nspawn -D "$root" -b --register=no --keep-unit -q </dev/null >"$work/boot.log" 2>&1 &
	nspawn=$!
	leader= i=0
	while [ $i -lt 1200 ]; do
		kill -0 "$nspawn" 2>/dev/null || { cat "$work/boot.log" >&2; die 1 "the container did not boot"; }
		[ -n "$leader" ] || leader=$(pgrep -P "$nspawn" | head -n 1) || true
		if [ -n "$leader" ]; then
			state=$(nsenter -t "$leader" -a systemctl is-system-running 2>/dev/null) || true
			case $state in running|degraded) break ;; esac
		fi
		sleep 0.1; i=$((i + 1))
	done
	case ${state:-} in running|degraded) ;; *)
		tail -n 40 "$work/boot.log" >&2; die 1 "systemd in the container did not finish booting (${state:-no answer})" ;;
	esac
	say "booted ($state)"
	# Its TAP shows as it runs; its exit status decides.
	{
		rc=0
		nsenter -t "$leader" -a /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
			PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			/bin/bash -c 'cd /root/labpulse && tests/systemd/run' </dev/null 2>&1 || rc=$?
		echo "$rc" >"$work/systemd.rc"
	} | tee -a "$log"
	[ "$(cat "$work/systemd.rc")" = 0 ] ||
		die 1 "tests/systemd/run failed in the booted container (exit $(cat "$work/systemd.rc"))"
	done_phase
esac

say "passed in $(($(date +%s) - started)) s"
