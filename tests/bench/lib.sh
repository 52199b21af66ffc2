# lib.sh: the preamble every benchmark shares, sourced with
#   . "$(dirname "$0")/lib.sh"
# after the script has set prog. It gives die/info, a private LABPULSE_HOME
# (bench_home), a private stack (bench_up) and the clean-up that stops both
# whatever way the script ends. A script says what differs by setting
# keep_dirs (the folders of $home worth keeping when a step fails) and by
# redefining bench_stop (the processes of its own to stop before the stack).
# shellcheck shell=sh disable=SC2034,SC2154 # prog is the script's, the rest used by it
set -u
LC_ALL=C
export LC_ALL

top=$(cd "$(dirname "$0")/../.." && pwd)
out=$top/tests/bench/out
home=
keep=0		# 1: copy the logs to /tmp on the way out
keep_dirs=	# folders of $home kept with log/ (none: nothing is kept)
stack=0		# 1: `labpulse up` was called; `labpulse down` on the way out
need_target=bench	# what need_files tells to make

# printf, not echo: a shell's echo may take a backslash as an escape
die() { code=$1; shift; printf '%s\n' "$prog: error: $*" >&2; keep=1; exit "$code"; }
info() { printf '%s\n' "$prog: info: $*" >&2; }

# need_files FILE...: each built, or exit 69 naming the make target
need_files() {
	for f; do
		[ -x "$f" ] || die 69 "$f is not built; run: make $need_target"
	done
}
# need_tools TOOL...: each on PATH, or exit 69
need_tools() {
	for t; do
		command -v "$t" >/dev/null 2>&1 || die 69 "$t is not installed; run: make deps"
	done
}

# The script's own processes, stopped before the stack; redefined by a
# script that starts some.
bench_stop() { :; }

# shellcheck disable=SC2317
bench_cleanup() {
	bench_stop
	if [ "$keep" = 1 ] && [ -n "$keep_dirs" ] && [ -n "$home" ]; then
		saved=$(mktemp -d "${TMPDIR:-/tmp}/$prog-logs.XXXXXX") && {
			for d in log $keep_dirs; do
				[ -d "$home/$d" ] && cp -R "$home/$d" "$saved/"
			done
			info "logs kept in $saved"
		}
	fi
	[ "$stack" = 1 ] && "$top/bin/labpulse" down >/dev/null 2>&1
	[ -n "$home" ] && rm -rf "$home"
}

# bench_home PREFIX [PARENT]: a new LABPULSE_HOME, PREFIX.XXXXXX in PARENT
# (TMPDIR or /tmp unless told), removed on the way out, and the out folder;
# sets home.
bench_home() {
	home=$(mktemp -d "${2:-${TMPDIR:-/tmp}}/$1.XXXXXX") ||
		die 69 "cannot make a temp folder"
	# PostgreSQL may run as another user, which must reach the folder.
	chmod 755 "$home"
	LABPULSE_HOME=$home
	export LABPULSE_HOME
	# a shell killed by a signal skips its EXIT trap: turn each into an exit
	trap bench_cleanup EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 141' PIPE	# a report piped into head: the stack still goes
	trap 'exit 143' TERM
	mkdir -p "$out" || die 69 "cannot make $out"
}

# bench_up [VAR=VALUE...]: a private stack from `labpulse up` with the
# variables given, its environment in this shell.
# shellcheck disable=SC2120 # the variables are optional
bench_up() {
	# set first: a stack that half came up is taken down too
	stack=1
	stack_env=$(env "$@" "$top/bin/labpulse" up) ||
		die 69 "labpulse up failed; see $home/log"
	eval "$stack_env"
}

# bench_only CODE NAME...: stop every daemon of the stack but those named,
# so that the figures are theirs; exit CODE if one does not stop in 15 s.
# Sets stopped to the names of those stopped.
bench_only() {
	code_=$1
	shift
	stopped=
	for pidf in "$LABPULSE_RUNDIR"/*.pid; do
		d=$(basename "$pidf" .pid)
		case " $* " in *" $d "*) continue ;; esac
		pid=$(cat "$pidf" 2>/dev/null) || continue
		kill -TERM "$pid" 2>/dev/null || continue
		for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$pid" 2>/dev/null && die "$code_" "$d did not stop"
		stopped="$stopped $d"
	done
}

# kib_of PID FIELD: a VmXXX field of /proc/PID/status in KiB.
kib_of() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null; }
# ticks PID [all]: the user and system CPU of a process in clock ticks,
# with all also that of the children it waited for (PostgreSQL's ended
# backends); 0 once it is gone. The fields are counted after the command's
# name, which may hold blanks.
ticks() {
	awk -v all="${2:-}" '{ sub(/^.*\) /, ""); print $12 + $13 + (all ? $14 + $15 : 0) }' \
		"/proc/$1/stat" 2>/dev/null || echo 0
}
# median of the numbers given (the middle one of an odd count), 0 of none
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : 0 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
# calc EXPR [NAME=VALUE...] [fmt=FORMAT]: awk arithmetic on numbers, printed
# with %.3f unless fmt= says otherwise
calc() {
	e=$1
	shift
	f=%.3f
	a=
	for kv; do
		case $kv in
		fmt=*) f=${kv#fmt=} ;;
		*) a="$a -v $kv" ;;
		esac
	done
	# shellcheck disable=SC2086
	awk $a -v fmt="$f" "BEGIN { printf fmt, ($e) }"
}
