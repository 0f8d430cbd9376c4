# Shared by the bench scripts (sourced, never run): where things are, how a script fails, the
# binary under test, and the load settings every wrk-driven script reads the same way.

here="$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
die() { echo "bench: $*" >&2; exit 1; }

# The Warden binary to measure, as an absolute path: $1, else the release build.
warden_binary() {
    local w="${1:-$root/target/release/warden}"
    [ -f "$w" ] && [ -x "$w" ] || die "not an executable file: $w (build with: cargo build --release)"
    echo "$(cd "$(dirname "$w")" && pwd)/$(basename "$w")"
}

# wrk's settings from BENCH_* (see each script's header), and on_cpu: the prefix that gives a
# server or a wrk the same niceness and pinning ("${on_cpu[@]}" CPU CMD; each program execs
# the next, so $! is the program's own pid).
duration="${BENCH_DURATION:-10s}"
warmup="${BENCH_WARMUP:-3s}"
connections="${BENCH_CONNECTIONS:-32}"
threads="${BENCH_THREADS:-1}"
server_cpu="${BENCH_SERVER_CPU:-0}"
wrk_cpu="${BENCH_WRK_CPU:-1}"
nice_level="${BENCH_NICE:-0}"
case "$nice_level" in -[0-9]|-1[0-9]|-20|[0-9]|1[0-9]) ;; *) die "BENCH_NICE must be between -20 and 19";; esac
on_cpu=(nice -n "$nice_level" taskset -c)

# A value wrk's script (token.lua) reported: the rest of the line "BENCH NAME ..." in FILE.
field() { sed -n "s/^BENCH $1 //p" "$2" | head -n1; }

# warn_failures DIR ROWS...: a warning for each row whose run (DIR/ROW.out) saw a non-200
# answer or socket errors. The calling script defines label ROW.
warn_failures() {
    local dir="$1" r fs se
    shift
    for r in "$@"; do
        fs="$(field first_non200 "$dir/$r.out")"
        se="$(field socket_errors "$dir/$r.out")"
        [ -z "$fs" ] || echo "WARNING: $(label "$r"): first non-200 response: $fs"
        [ "${se:-0}" = 0 ] || echo "WARNING: $(label "$r"): $se socket errors (connect/read/write/timeout)"
    done
}
