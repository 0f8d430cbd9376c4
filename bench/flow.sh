#!/usr/bin/env bash
# Benchmark of the browser flow's machine part, beside the client-credentials token request:
# one full authorization code flow with login excluded (GET /authorize with a signed-in
# session and prompt=none, then POST /token with the code and PKCE verifier: an ES256 access
# token and an RS256 ID token), and one refresh (rotation: a new refresh token, access token
# and ID token), reported as ratios to the client-credentials rate of the same run.
#
#   bench/flow.sh [PATH/TO/warden]        (default: target/release/warden)
#
# Starts `warden serve --role provider` pinned to one core (temporary SQLite data dir, log
# level warn), creates a user and a first-party client with the CLI, signs in once with curl
# (the login page's CSRF token and cookie), then runs the load driver (`benches/flow.rs`, built
# with `cargo bench --no-run`) pinned to the other core, per mode for BENCH_DURATION.
#
# Environment (optional): BENCH_DURATION (10, seconds), BENCH_CONNECTIONS (16),
# BENCH_SERVER_CPU (0), BENCH_DRIVER_CPU (1).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
warden="$(warden_binary "${1:-}")"
duration="${BENCH_DURATION:-10}"
connections="${BENCH_CONNECTIONS:-16}"
driver_cpu="${BENCH_DRIVER_CPU:-1}"
[ "$(nproc --all)" -ge 2 ] || die "needs 2 CPUs"
for tool in curl taskset; do command -v "$tool" >/dev/null 2>&1 || die "$tool is missing"; done

echo "bench: building the load driver (cargo bench --bench flow --no-run)" >&2
driver="$(cd "$root" && cargo bench --locked --bench flow --no-run --message-format=json 2>/dev/null \
    | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n1)"
[ -x "$driver" ] || die "could not build the load driver"

. "$root/scripts/provider.sh"
provider_setup flow-bench
export WARDEN_LOG__LEVEL=warn
provider_start taskset -c "$server_cpu" || die "warden did not start"
callback="https://rp.example/cb"

password="correct horse battery staple"
printf '%s\n' "$password" | "$warden" user create bench-user --password-stdin --json >/dev/null || die "user create failed"
"$warden" client create --name bench-rp --redirect-uri "$callback" --grant-type authorization_code --grant-type client_credentials \
    --grant-type refresh_token --scope "openid offline_access" --first-party --json >"$tmp/client.json" || die "client create failed"
client_id="$(sed -n 's/.*"client_id": *"\([^"]*\)".*/\1/p' "$tmp/client.json" | head -n1)"
client_secret="$(sed -n 's/.*"client_secret": *"\([^"]*\)".*/\1/p' "$tmp/client.json" | head -n1)"
[ -n "$client_id" ] && [ -n "$client_secret" ] || die "no client credentials in $(cat "$tmp/client.json")"

# Sign in once, as a browser would: the login page sets the CSRF cookie and carries the token.
jar="$tmp/cookies"
challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
authorize="$issuer/authorize?client_id=$client_id&redirect_uri=$callback&response_type=code&scope=openid&state=s&code_challenge=$challenge&code_challenge_method=S256"
page="$(curl -fsS -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" "$authorize")"
html="$(curl -fsS -c "$jar" -b "$jar" "$page")"
csrf="$(printf '%s' "$html" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -n1)"
action="$(printf '%s' "$html" | sed -n 's/.*<form method="post" action="\([^"]*\)".*/\1/p' | head -n1 | sed 's/&#x2f;/\//g')"
[ -n "$csrf" ] && [ -n "$action" ] || die "no login form at $page"
origin="$(printf '%s' "$issuer" | sed 's#^\(https\?://[^/]*\).*#\1#')"
back="$(curl -fsS -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" --data-urlencode "csrf=$csrf" \
    --data-urlencode "username=bench-user" --data-urlencode "password=$password" "$origin$action")"
case "$back" in "$callback?code="*) ;; *) die "sign-in did not end with a code: $back";; esac
session="$(awk '$6 == "warden_session" { print $7 }' "$jar" | tail -n1)"
[ -n "$session" ] || die "no session cookie after sign-in"

# run MODE: the driver against the server; results in $tmp/MODE.out.
run() {
    echo "bench: $1: ${duration}s, $connections connections" >&2
    taskset -c "$driver_cpu" "$driver" --mode "$1" --issuer "$issuer" --client-id "$client_id" \
        --client-secret "$client_secret" --cookie "warden_session=$session" --redirect-uri "$callback" \
        --connections "$connections" --seconds "$duration" --pid "$warden_pid" >"$tmp/$1.out" || true
    grep -q '^BENCH rate' "$tmp/$1.out" || die "$1: the driver failed: $(cat "$tmp/$1.out")"
}
modes="cc code"
if curl -fsS "$issuer/.well-known/openid-configuration" | grep -q '"refresh_token"'; then modes="$modes refresh"; fi
for m in $modes; do run "$m"; done

label() { case "$1" in cc) echo "client_credentials";; code) echo "code flow (no login)";; refresh) echo "refresh";; esac; }
base="$(field rate "$tmp/cc.out")"
out="$root/bench/out/flow-$(date -u +%Y-%m-%d-%H%M%S).txt"
mkdir -p "$root/bench/out"
{
    echo "Warden browser-flow benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "binary: $warden ($("$warden" --version 2>/dev/null || echo '?')), commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "setup:  warden --role provider on cpu $server_cpu (SQLite, log warn); driver on cpu $driver_cpu, $connections connections, ${duration}s per mode"
    echo "        access tokens ES256, ID tokens RS256; a flow = GET /authorize (prompt=none, signed in) + POST /token"
    echo
    printf '%-22s %10s %9s %9s %8s %8s %12s %12s\n' mode "flows/s" "p50 ms" "p99 ms" failed "srv CPU" "CPU us/flow" "rate ratio"
    for m in $modes; do
        f="$tmp/$m.out"
        printf '%-22s %10s %9.2f %9.2f %8s %7s%% %12s %12.3f\n' "$(label "$m")" "$(field rate "$f")" \
            "$(awk -v u="$(field p50_us "$f")" 'BEGIN { print u / 1000 }')" "$(awk -v u="$(field p99_us "$f")" 'BEGIN { print u / 1000 }')" \
            "$(field failed "$f")" "$(field cpu_pct "$f")" "$(field cpu_us_per_flow "$f")" \
            "$(awk -v a="$(field rate "$f")" -v b="$base" 'BEGIN { print (b > 0 ? a / b : 0) }')"
    done
    for m in $modes; do
        e="$(field first_error "$tmp/$m.out")"
        [ -z "$e" ] || echo "first error ($m): $e"
    done
} | tee "$out"
echo "written to ${out#"$root"/}"
