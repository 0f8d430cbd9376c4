#!/usr/bin/env bash
# The Snapchat case, played end to end: an unofficial client replays the official app's
# credentials (pulled out of its binary) and is stopped by app attestation; the official
# app, attested, gets through. Usage: run.sh [PATH/TO/warden] (default: the debug build). Needs python3, curl and
# openssl. Uses ports 18080 (provider), 18000 (gateway) and 18900 (the API); stops what it
# started, by pid.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
warden="${1:-${CARGO_TARGET_DIR:-$root/target}/debug/warden}"
[ -x "$warden" ] || { echo "build first: cargo build (expected $warden)" >&2; exit 1; }
for tool in python3 curl openssl; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

w() { "$warden" --config "$here/warden.toml" --data-dir "$work/data" "$@"; }
json() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# The attestation service: mints a one-use attestation for an app, signed with `key`.
attest() { # app, key
    local now header payload sig
    now=$(date +%s)
    header=$(printf '{"alg":"EdDSA","kid":"attest-demo-1","typ":"JWT"}' | b64url)
    payload=$(printf '{"iss":"https://attest.example","aud":"https://orders.example","sub":"%s","iat":%d,"exp":%d,"jti":"%s"}' \
        "$1" "$now" $((now + 60)) "$(openssl rand -hex 12)" | b64url)
    printf '%s.%s' "$header" "$payload" > "$work/input"
    sig=$(openssl pkeyutl -sign -inkey "$2" -rawin -in "$work/input" | b64url)
    printf '%s.%s.%s' "$header" "$payload" "$sig"
}

# The API: answers 200 to whatever reaches it, and says so.
cat > "$work/api.py" <<'PY'
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"order": 42, "items": ["streak freeze"]}\n'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        print("  [api] reached by", self.headers.get("x-warden-client-id"), flush=True)
HTTPServer(("127.0.0.1", 18900), H).serve_forever()
PY

echo "== setup: the official app and the thief's own app are registered"
official=$(w --json client create --name shop-app --grant-type client_credentials --scope orders:read)
id=$(echo "$official" | json client_id)
secret=$(echo "$official" | json client_secret)
thief_app=$(w --json client create --name thief-app --grant-type client_credentials | json client_id)

python3 "$work/api.py" & pids+=($!)
"$warden" --config "$here/warden.toml" --data-dir "$work/data" serve > "$work/warden.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do
    curl -fs http://127.0.0.1:18000/livez >/dev/null 2>&1 && curl -fs http://127.0.0.1:18080/livez >/dev/null 2>&1 && break
    sleep 0.1
done

api=http://127.0.0.1:18000/orders/42
call() { # label, token, [attestation]
    local args=(-s -o "$work/body" -w '%{http_code}' -H "authorization: Bearer $2")
    [ $# -ge 3 ] && args+=(-H "x-app-attestation: $3")
    local code detail
    code=$(curl "${args[@]}" "$api")
    detail=$(python3 -c 'import json,sys
try: print(json.load(open(sys.argv[1])).get("detail", ""))
except Exception: print("")' "$work/body")
    printf '%-62s -> %s %s\n' "$1" "$code" "$detail"
}

echo "== the unofficial client extracted client_id and secret from the app's binary"
stolen=$(curl -s -u "$id:$secret" -d grant_type=client_credentials http://127.0.0.1:18080/token | json access_token)
call "replay with the stolen key alone" "$stolen"
openssl genpkey -algorithm ed25519 -out "$work/forger.pem" 2>/dev/null
call "replay with an attestation it signed itself" "$stolen" "$(attest "$id" "$work/forger.pem")"
call "replay with an attestation for its own (genuine) app" "$stolen" "$(attest "$thief_app" "$here/attestation-service.key.pem")"

echo "== the official app, attested on a genuine device"
genuine=$(attest "$id" "$here/attestation-service.key.pem")
call "official app with a fresh attestation" "$stolen" "$genuine"
call "that attestation captured and replayed" "$stolen" "$genuine"
