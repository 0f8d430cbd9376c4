#!/usr/bin/env bash
# The VIN-enumeration case study, end to end (README.md here):
#
#   examples/vin-enumeration/run.sh PATH/TO/warden
#
# Starts the carmaker's accounts service and car API (carmaker.py) and Warden's gateway with
# warden.toml, signs alice in, and shows: her car → 200; another VIN → 403 (the car API
# never hears of it); no token → 401. Stops what it started, by pid. Exits non-zero on any
# unexpected outcome. Needs python3, openssl and curl; ports 18410-18412 free.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { echo "vin-enumeration: FAIL: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: $0 PATH/TO/warden"
warden="$1"
[ -f "$warden" ] && [ -x "$warden" ] || die "not an executable file: $warden"
for tool in python3 openssl curl; do command -v "$tool" >/dev/null || die "$tool is needed"; done

gateway=http://127.0.0.1:18410
accounts=http://127.0.0.1:18411
for port in 18410 18411 18412; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then die "port $port is in use"; fi
done

tmp="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
show_logs() {
    echo "--- carmaker.py ---" >&2; cat "$tmp/carmaker.log" >&2 || true
    echo "--- warden ---" >&2; cat "$tmp/warden.log" >&2 || true
}

# Polls a URL until it answers (10 s at most).
wait_for() {
    for _ in $(seq 1 100); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    show_logs
    die "$1 did not come up"
}

python3 "$here/carmaker.py" --key "$tmp/accounts-key.pem" 2>"$tmp/carmaker.log" &
pids+=($!)
wait_for "$accounts/jwks.json"

"$warden" config check "$here/warden.toml"
"$warden" --config "$here/warden.toml" --data-dir "$tmp/data" serve >"$tmp/warden.log" 2>&1 &
pids+=($!)
wait_for "$gateway/healthz"

# Prints the status of a GET through the gateway; the body goes to $tmp/body.
status() {
    curl -sS -o "$tmp/body" -w '%{http_code}' "$@"
}
expect() {
    local want="$1" what="$2"; shift 2
    local got
    got="$(status "$@")"
    if [ "$got" != "$want" ]; then
        show_logs
        die "$what: expected $want, got $got: $(cat "$tmp/body")"
    fi
    echo "  $got  $what"
}

alice_car=SJNFAAZE0U6000001
bobs_car=SJNFAAZE0U6000002

echo "The attack: anyone asking for any VIN"
expect 401 "no token, alice's car" "$gateway/cars/$alice_car"
expect 401 "no token, bob's car" "$gateway/cars/$bobs_car"

echo "alice signs in at the accounts service"
token="$(curl -fsS -d username=alice -d password=alice-password "$accounts/token" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')"
[ -n "$token" ] || die "no token for alice"

echo "With her token"
expect 200 "alice's own car" -H "authorization: Bearer $token" "$gateway/cars/$alice_car"
grep -q "\"vin\": \"$alice_car\"" "$tmp/body" || die "the car API's answer did not come through: $(cat "$tmp/body")"
expect 403 "bob's car (enumerating VINs)" -H "authorization: Bearer $token" "$gateway/cars/$bobs_car"
expect 403 "a made-up VIN" -H "authorization: Bearer $token" "$gateway/cars/SJNFAAZE0U6999999"
expect 400 "bob's car behind an encoded slash" -H "authorization: Bearer $token" "$gateway/cars/$alice_car%2F..%2F$bobs_car"
expect 401 "a tampered token" -H "authorization: Bearer ${token%?????}AAAAA" "$gateway/cars/$alice_car"

# The car API saw exactly one request: alice's car. The refusals never reached it.
seen="$(grep -c '^car-api: ' "$tmp/carmaker.log" || true)"
if [ "$seen" != 1 ] || ! grep -q "^car-api: GET /cars/$alice_car\$" "$tmp/carmaker.log"; then
    show_logs
    die "the car API should have seen alice's car only"
fi
echo "  the car API saw 1 request (alice's car); the refusals never reached it"
denied="$(grep -c 'gateway_denied' "$tmp/warden.log" || true)"
[ "$denied" = 6 ] || { show_logs; die "expected 6 gateway_denied audit events, found $denied"; }
if grep -qF "${token##*.}" "$tmp/warden.log"; then die "the token is in Warden's log"; fi
echo "  each refusal is one audit event in Warden's log (which holds no token), e.g.:"
sed 's/\x1b\[[0-9;]*m//g' "$tmp/warden.log" | grep 'gateway_denied' | grep 'status=403' | head -n 1 | sed 's/^/    /'
echo "vin-enumeration: ok"
