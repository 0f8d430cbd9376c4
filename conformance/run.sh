#!/usr/bin/env bash
# Black-box interop check of Warden with independent Python libraries (Authlib, jwcrypto).
#
#   conformance/run.sh PATH/TO/warden
#
# Creates conformance/.venv (if missing, or if requirements.txt changed) with the pinned
# packages, starts `warden serve --role provider` on a free loopback port with a temporary
# data dir, creates a client with the CLI and runs conformance/interop.py against it.
# Last line on success: `N passed, 0 failed`. Needs python3.11 (or python3 >= 3.11) with
# venv + pip, and access to PyPI the first time.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { echo "conformance: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: $0 PATH/TO/warden"
warden="$1"
[ -f "$warden" ] && [ -x "$warden" ] || die "not an executable file: $warden"
warden="$(cd "$(dirname "$warden")" && pwd)/$(basename "$warden")"

# --- Python environment ---------------------------------------------------------------
python="${PYTHON:-}"
if [ -z "$python" ]; then
    if command -v python3.11 >/dev/null 2>&1; then python=python3.11
    elif command -v python3 >/dev/null 2>&1; then python=python3
    else die "python3.11 not found (set PYTHON=...)"; fi
fi
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "$python is older than 3.11"

venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
    echo "conformance: creating $venv" >&2
    "$python" -m venv "$venv" || die "could not create a venv (Debian: apt-get install python3-venv)"
fi
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    echo "conformance: installing pinned packages from requirements.txt" >&2
    "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$here/requirements.txt"
    echo "$want" > "$stamp"
fi
py="$venv/bin/python"

# --- a hermetic environment for warden --------------------------------------------------
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(WARDEN_|RUST_LOG$)' || true)

tmp="$(mktemp -d "${TMPDIR:-/tmp}/warden-conformance.XXXXXX")"
warden_pid=""
cleanup() {
    local rc=$?
    if [ -n "$warden_pid" ] && kill -0 "$warden_pid" 2>/dev/null; then
        kill -TERM "$warden_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$warden_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$warden_pid" 2>/dev/null || true
        wait "$warden_pid" 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ] && [ -f "$tmp/warden.log" ]; then
        echo "conformance: FAILED (exit $rc); last lines of the warden log:" >&2
        tail -n 30 "$tmp/warden.log" >&2 || true
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export WARDEN_DATA_DIR="$tmp/data"
export WARDEN_KEYS__ROTATION_DELAY=0s
export WARDEN_KEYS__REFRESH_INTERVAL=200ms
export WARDEN_LOG__LEVEL=info

free_port() {
    "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits until the metadata endpoint answers; fails early if the process died.
wait_ready() {
    local url="$1" pid="$2"
    for _ in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || return 1
        if "$py" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$url" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# A free port can be taken between the probe and warden's bind: try a few.
issuer=""
for attempt in 1 2 3 4 5; do
    port="$(free_port)"
    export WARDEN_PROVIDER__LISTEN="127.0.0.1:$port"
    export WARDEN_PROVIDER__ISSUER="http://127.0.0.1:$port"
    "$warden" serve --role provider >"$tmp/warden.log" 2>&1 &
    warden_pid=$!
    if wait_ready "$WARDEN_PROVIDER__ISSUER/.well-known/oauth-authorization-server" "$warden_pid"; then
        issuer="$WARDEN_PROVIDER__ISSUER"
        break
    fi
    kill -TERM "$warden_pid" 2>/dev/null || true
    wait "$warden_pid" 2>/dev/null || true
    warden_pid=""
    echo "conformance: warden did not start on port $port (attempt $attempt):" >&2
    tail -n 5 "$tmp/warden.log" >&2 || true
done
[ -n "$issuer" ] || die "warden did not start"
echo "conformance: warden pid $warden_pid, issuer $issuer, data $WARDEN_DATA_DIR" >&2

scope="read write"
audience="https://api.conformance.test"
"$warden" client create --name conformance --grant-type client_credentials \
    --scope read --scope write --audience "$audience" --json >"$tmp/client.json" \
    || die "warden client create failed"

"$py" "$here/interop.py" --warden "$warden" --issuer "$issuer" --client "$tmp/client.json" \
    --scope "$scope" --audience "$audience"
