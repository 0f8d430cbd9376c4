#!/usr/bin/env bash
# Black-box interop check of Warden with independent Python libraries (Authlib, jwcrypto).
#
#   conformance/run.sh PATH/TO/warden
#
# Creates conformance/.venv (if missing, or if requirements.txt changed) with the pinned
# packages, starts `warden serve --role provider` on a free loopback port with a temporary
# data dir, creates a client with the CLI and runs conformance/interop.py against it: first
# everything with ES256 access tokens, then, restarting the provider on the same data dir
# with keys.access_token_alg = RS256, PS256 and EdDSA in turn, the signature checks.
# Last line on success: `N passed, 0 failed`; exits non-zero on any failure. Needs
# python3.11 (or python3 >= 3.11) with venv + pip, and access to PyPI the first time.
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

# --- warden, hermetic, on an ephemeral port ---------------------------------------------
. "$here/../scripts/provider.sh"
provider_setup conformance
export WARDEN_KEYS__ROTATION_DELAY=0s
export WARDEN_KEYS__REFRESH_INTERVAL=200ms
export WARDEN_LOG__LEVEL=info
# Dynamic registration (interop.py registers a client with an initial access token) may ask
# for these scopes and audiences; the second audience is the one it asks for.
scope="read write"
audience="https://api.conformance.test"
dynamic_audience="https://reports.conformance.test"
export WARDEN_REGISTRATION__ALLOWED_SCOPES="read,write"
export WARDEN_REGISTRATION__ALLOWED_AUDIENCES="$audience,$dynamic_audience"
provider_start || die "warden did not start"
echo "conformance: warden pid $warden_pid, issuer $issuer, data $WARDEN_DATA_DIR" >&2

"$warden" client create --name conformance --grant-type client_credentials \
    --scope read --scope write --audience "$audience" --json >"$tmp/client.json" \
    || die "warden client create failed"

# Each phase adds its counts to the tally; `summary` prints the one closing line. A phase
# that dies before reporting is counted as a failure there, and fails the script here.
tally="$tmp/tally.jsonl"
common=(--warden "$warden" --client "$tmp/client.json" --scope "$scope" --audience "$audience" --tally "$tally")
rc=0
"$py" "$here/interop.py" main "${common[@]}" --issuer "$issuer" --dynamic-audience "$dynamic_audience" || rc=1
algs=(RS256 PS256 EdDSA)
for alg in "${algs[@]}"; do
    provider_stop
    export WARDEN_KEYS__ACCESS_TOKEN_ALG="$alg"
    provider_start || die "warden did not restart with keys.access_token_alg=$alg"
    echo "conformance: restarted with access_token_alg=$alg, pid $warden_pid, issuer $issuer" >&2
    "$py" "$here/interop.py" alg "${common[@]}" --issuer "$issuer" --alg "$alg" || rc=1
done
"$py" "$here/interop.py" summary --tally "$tally" --phases $((1 + ${#algs[@]})) || rc=1
exit "$rc"
