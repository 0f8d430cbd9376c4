# Sourced by bench/token.sh and conformance/run.sh: runs one `warden serve --role provider`
# for a script, hermetically, and stops it when the script exits.
#
#   provider_setup LABEL      clears WARDEN_*/RUST_LOG, makes $tmp, exports WARDEN_DATA_DIR,
#                             and installs the EXIT trap that stops the server by its pid
#   provider_start [CMD...]   starts "$warden" serve (prefixed by CMD, e.g. taskset -c 0) on
#                             an ephemeral loopback port; sets $warden_pid and $issuer (the
#                             server prints where it listens; the issuer follows that port)
#   provider_stop [PID]       stops a server this shell started (SIGTERM, SIGKILL after 5 s);
#                             without PID the provider; provider_start may then start it
#                             again, e.g. with other WARDEN_* settings
#
# Needs $warden (absolute path). Logs go to $tmp/warden.log and are shown on failure.

provider_setup() {
    provider_label="$1"
    while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(WARDEN_|RUST_LOG$)' || true)
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/warden-$provider_label.XXXXXX")"
    warden_pid=""
    export WARDEN_DATA_DIR="$tmp/data"
    trap provider_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

provider_stop() {
    local pid="${1:-$warden_pid}"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    if [ "$pid" = "$warden_pid" ]; then warden_pid=""; fi
}

provider_cleanup() {
    local rc=$?
    provider_stop
    if [ "$rc" -ne 0 ] && [ -f "$tmp/warden.log" ]; then
        echo "$provider_label: failed (exit $rc); last lines of the warden log:" >&2
        tail -n 30 "$tmp/warden.log" >&2 || true
    fi
    rm -rf "$tmp"
    exit "$rc"
}

provider_start() {
    export WARDEN_PROVIDER__LISTEN="127.0.0.1:0"
    : >"$tmp/warden.log"  # exists before the first poll below (the server opens it later)
    "$@" "$warden" serve --role provider >"$tmp/warden.log" 2>&1 &
    warden_pid=$!
    issuer=""
    for _ in $(seq 150); do
        kill -0 "$warden_pid" 2>/dev/null || break
        [ -n "$issuer" ] || issuer="$(sed -n 's/.*provider listening on \(http:[^ ]*\).*/\1/p' "$tmp/warden.log" | head -n1)"
        # "listening" is printed once bound, before the keys are loaded: wait until it serves.
        if [ -n "$issuer" ] && curl -fs -o /dev/null "$issuer/jwks"; then
            return 0
        fi
        sleep 0.1
    done
    echo "$provider_label: warden did not start" >&2
    return 1
}
