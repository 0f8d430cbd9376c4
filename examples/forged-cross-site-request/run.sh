#!/usr/bin/env bash
# Replays the Verizon case (README.md): starts the vulnerable upstream and Warden with this
# directory's warden.toml, then sends the forged cross-site request with curl — first to the
# upstream directly (it works: the victim's e-mail changes), then through Warden (403). The
# legitimate requests pass; the bearer-only route refuses the forged one as well (401).
#
#   examples/forged-cross-site-request/run.sh        (after `cargo build`)
#
# WARDEN: the binary (default: target/debug/warden, under $CARGO_TARGET_DIR if set).
# Uses 127.0.0.1 ports 8100 (gateway) and 8101 (upstream).
# Exits non-zero when any answer differs from the expected one.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
warden="${1:-${WARDEN:-${CARGO_TARGET_DIR:-$root/target}/debug/warden}}"
[ -x "$warden" ] || { echo "run.sh: no $warden (run cargo build first)" >&2; exit 66; }

while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(WARDEN_|RUST_LOG$)' | grep -v '^WARDEN$' || true)
tmp="$(mktemp -d "${TMPDIR:-/tmp}/warden-csrf.XXXXXX")"
pids=()
cleanup() {
    local rc=$?
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ "$rc" -ne 0 ]; then
        echo "run.sh: failed; last lines of the logs:" >&2
        tail -n 20 "$tmp"/*.log >&2 || true
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT

python3 "$here/upstream.py" 8101 2>"$tmp/upstream.log" &
pids+=($!)
"$warden" serve --config "$here/warden.toml" --data-dir "$tmp/data" >"$tmp/warden.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    if curl -fs -o /dev/null http://127.0.0.1:8100/healthz && curl -s -o /dev/null http://127.0.0.1:8101/; then break; fi
    sleep 0.1
done

gw=http://127.0.0.1:8100
failures=0
# expect STATUS DESCRIPTION CURL-ARGS...: one request, its status checked.
expect() {
    local want="$1" what="$2"
    shift 2
    local got
    got="$(curl -s -o "$tmp/body" -w '%{http_code}' "$@")"
    if [ "$got" = "$want" ]; then
        printf '  ok    %s  %-60s %s\n' "$got" "$what" "$(head -c 100 "$tmp/body" | tr '\n' ' ')"
    else
        printf '  FAIL  %s (expected %s)  %s\n' "$got" "$want" "$what"
        failures=$((failures + 1))
    fi
}
# What the attacker's page makes the victim's browser send: the session cookie rides along.
forged=(-X POST -H 'cookie: session=victim' -H 'origin: https://evil.example' -H 'sec-fetch-site: cross-site'
    -H 'content-type: application/x-www-form-urlencoded' --data 'email=attacker@evil.example')

echo "1. The forged request straight to the upstream: it works, that is the vulnerability."
expect 200 "forged POST to the upstream" "${forged[@]}" http://127.0.0.1:8101/account/email
expect 200 "the victim's account now" -H 'cookie: session=victim' http://127.0.0.1:8101/account/

echo "2. The victim resets the address from the site itself (same origin, through Warden)."
expect 200 "same-origin POST" -X POST -H 'cookie: session=victim' -H "origin: $gw" -H 'sec-fetch-site: same-origin' \
    --data 'email=victim@example.com' "$gw/account/email"
expect 200 "from the company's app (a listed CORS origin)" -X POST -H 'cookie: session=victim' -H 'origin: https://app.example' \
    --data 'email=victim@example.com' "$gw/account/email"

echo "3. The forged request through Warden: refused before the upstream."
expect 403 "forged POST (Origin: https://evil.example)" "${forged[@]}" "$gw/account/email"
expect 403 "forged POST without Origin (Sec-Fetch-Site: cross-site)" -X POST -H 'cookie: session=victim' \
    -H 'sec-fetch-site: cross-site' --data 'email=attacker@evil.example' "$gw/account/email"
expect 200 "the victim's account is unchanged" -H 'cookie: session=victim' "$gw/account/"
grep -q 'victim@example.com' "$tmp/body" || { echo "  FAIL  the address changed"; failures=$((failures + 1)); }

echo "4. The bearer-only route: the forged request carries no token."
expect 401 "forged POST to the bearer-only route" "${forged[@]}" "$gw/v2/account/email"

if [ "$failures" -ne 0 ]; then
    echo "$failures unexpected answer(s)" >&2
    exit 1
fi
echo "All as expected: the forged cross-site request never reached the upstream through Warden."
