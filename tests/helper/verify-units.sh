#!/bin/sh
# verify-units.sh: check the units in etc/systemd with systemd-analyze verify,
# on copies whose ExecStart= runs a binary that exists on this host.
# Exit 0 clean, 1 when verify fails or says anything about our units,
# 77 (skip) when systemd-analyze is missing.
set -u
LC_ALL=C
export LC_ALL

case $0 in
*/*) here=${0%/*} ;;
*) here=. ;;
esac
root=$(cd "$here/../.." && pwd) || exit 1

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "verify-units: skip: systemd-analyze not found" >&2
	exit 77
fi

# `command -v true` names the shell builtin; ExecStart= needs a path.
true_bin=$(command -v true)
case $true_bin in
/*) ;;
*)
	true_bin=
	IFS_save=$IFS
	IFS=:
	for d in $PATH; do
		if [ -x "$d/true" ] && [ ! -d "$d/true" ]; then
			true_bin=$d/true
			break
		fi
	done
	IFS=$IFS_save
	;;
esac
case $true_bin in
/*) ;;
*)
	echo "verify-units: error: no true binary on PATH" >&2
	exit 1
	;;
esac

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

names=
for f in "$root"/etc/systemd/*.service "$root"/etc/systemd/*.socket \
    "$root"/etc/systemd/*.timer \
    "$root"/etc/systemd/*.target; do
	[ -f "$f" ] || continue
	n=${f##*/}
	# Keep any prefix such as - or @ and the arguments; swap the binary.
	sed "s|^\(ExecStart=[-@:+!]*\)[^ ]*|\1$true_bin|" "$f" >"$tmp/$n" ||
	    exit 1
	names="$names $n"
done
if [ -z "$names" ]; then
	echo "verify-units: error: no units in $root/etc/systemd" >&2
	exit 1
fi

# Documentation=man: entries are looked up in this tree's pages.
set --
if command -v man >/dev/null 2>&1; then
	MANPATH=$root/man
	export MANPATH
else
	set -- --man=no
fi
# Judge our units, not the host's: errors in units they pull in are not ours.
if systemd-analyze --help 2>/dev/null | grep -q -e '--recursive-errors'; then
	set -- "$@" --recursive-errors=no
fi

for n in $names; do
	set -- "$@" "$tmp/$n"
done
out=$(cd "$tmp" && systemd-analyze verify "$@" 2>&1)
rc=$?
[ -n "$out" ] && printf '%s\n' "$out"

status=0
if [ "$rc" -ne 0 ]; then
	echo "verify-units: systemd-analyze verify exited $rc" >&2
	status=1
fi
for n in $names; do
	if printf '%s\n' "$out" | grep -F -q -e "$n"; then
		echo "verify-units: systemd-analyze has something to say about $n" >&2
		status=1
	fi
done
[ "$status" -eq 0 ] && echo "verify-units: ok:$names"
exit "$status"
