#!/usr/bin/env bash
# Load benchmark of Warden's token endpoint, with /jwks and the metadata document as baselines,
# against a reference provider (panva's oidc-provider, bench/peers/oidc-provider) run the same way.
#
#   bench/token.sh [--no-peer] [PATH/TO/warden]        (default: target/release/warden)
#
# Starts `warden serve --role provider` (temporary data dir, log level warn) pinned to one
# core, creates a client_credentials client, and drives it with wrk pinned to another core:
# per endpoint a warm-up, then a measured run. Then stops Warden and does the same for the
# peer's token endpoint (one node process, ES256 JWT access tokens, same client, same request,
# same pinning, same wrk settings). Prints a table and writes it to
# bench/out/results-<date>.txt. See bench/README.md.
#
# Environment (all optional): BENCH_DURATION (10s), BENCH_WARMUP (3s), BENCH_CONNECTIONS (32),
# BENCH_THREADS (1), BENCH_SERVER_CPU (0), BENCH_WRK_CPU (1), BENCH_PEER (1; 0 = like --no-peer),
# BENCH_NICE (0; e.g. -15 as root runs servers and wrk ahead of other work on a shared machine).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

peer="${BENCH_PEER:-1}"
if [ "${1:-}" = "--no-peer" ]; then peer=0; shift; fi
case "$peer" in 0|1) ;; *) die "BENCH_PEER must be 0 or 1";; esac
warden="$(warden_binary "${1:-}")"

# --- tools ------------------------------------------------------------------------------
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v wrk >/dev/null 2>&1; then
    echo "bench: installing wrk (apt-get)" >&2
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq wrk >/dev/null
fi
command -v wrk >/dev/null 2>&1 || die "wrk is not installed"
command -v taskset >/dev/null 2>&1 || die "taskset is missing (Debian package util-linux)"
ncpu="$(nproc --all)"
if [ "$ncpu" -lt 2 ]; then
    die "needs 2 CPUs (server and load generator on separate cores); this machine has $ncpu"
fi
if [ "$server_cpu" = "$wrk_cpu" ]; then die "BENCH_SERVER_CPU and BENCH_WRK_CPU must differ"; fi
clk_tck="$(getconf CLK_TCK)"
peer_dir="$here/peers/oidc-provider"
if [ "$peer" = 1 ]; then
    command -v node >/dev/null 2>&1 || die "node is missing (the oidc-provider peer needs it); BENCH_PEER=0 skips the peer"
    if [ ! -d "$peer_dir/node_modules/oidc-provider" ]; then
        command -v npm >/dev/null 2>&1 || die "npm is missing (to install the peer); BENCH_PEER=0 skips the peer"
        echo "bench: installing the peer (npm ci in ${peer_dir#"$root"/})" >&2
        (cd "$peer_dir" && npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci failed in $peer_dir"
    fi
fi

# --- server -------------------------------------------------------------------------------
. "$root/scripts/provider.sh"
provider_setup bench
export WARDEN_LOG__LEVEL=warn
provider_start "${on_cpu[@]}" "$server_cpu" || die "warden did not start"
base="$issuer"

"$warden" client create --name bench --grant-type client_credentials --scope read --json >"$tmp/client.json" \
    || die "warden client create failed"
json_field() { sed -n "s/.*\"$1\": *\"\\([^\"]*\\)\".*/\\1/p" "$tmp/client.json" | head -n1; }
client_id="$(json_field client_id)"
client_secret="$(json_field client_secret)"
[ -n "$client_id" ] && [ -n "$client_secret" ] || die "no client_id/client_secret in: $(cat "$tmp/client.json")"
# RFC 6749 §2.3.1: form-urlencode id and secret before Basic encoding (generated values are
# URL-safe already, so this is the identity, checked here rather than assumed).
case "$client_id$client_secret" in *[!A-Za-z0-9._~-]*) die "client id/secret need form-encoding; not supported here";; esac
basic() { printf 'Basic %s' "$(printf '%s:%s' "$1" "$2" | base64 -w0)"; }
export BENCH_AUTH; BENCH_AUTH="$(basic "$client_id" "$client_secret")"

# One token by hand: the run must measure ES256-signed JWT access tokens, nothing cheaper.
# check_token NAME URL: exits unless URL issues a 200 with an ES256 at+jwt access token.
check_token() {
    local body header
    body="$(curl -fsS -H "Authorization: $BENCH_AUTH" -H 'Accept: application/json' \
        --data 'grant_type=client_credentials&scope=read' "$2")" || die "$1: POST /token failed"
    header="$(printf '%s' "$body" | sed -n 's/.*"access_token": *"\([^".]*\)\..*/\1/p' | tr '_-' '/+')"
    while [ $(( ${#header} % 4 )) -ne 0 ]; do header="$header="; done
    header="$(printf '%s' "$header" | base64 -d 2>/dev/null || true)"
    case "$header" in
        *'"alg":"ES256"'*) ;;
        *) die "$1: the access token is not an ES256 JWT (header: ${header:-none}; body: ${body:0:200})";;
    esac
}
check_token warden "$base/token"

# --- runs -----------------------------------------------------------------------------------
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
# utime + stime of every thread of process $1, in clock ticks (fields after the ")" of comm).
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# run NAME MODE URL PID: warm-up, then the measured run against the server PID; results in
# $tmp/NAME.{out,cpu,cpureq,top}.
run() {
    local name="$1" mode="$2" url="$3" pid="$4"
    echo "bench: $name: warm-up $warmup" >&2
    BENCH_MODE="$mode" "${on_cpu[@]}" "$wrk_cpu" wrk -t"$threads" -c"$connections" -d"$warmup" \
        -s "$here/token.lua" "$url" >"$tmp/$name.warmup" 2>&1 || die "wrk failed: $(cat "$tmp/$name.warmup")"
    local bad; bad="$(field non200 "$tmp/$name.warmup")"
    if [ "${bad:-x}" != 0 ]; then
        die "$name: warm-up got non-200 responses ($bad); first: $(field first_non200 "$tmp/$name.warmup")"
    fi
    echo "bench: $name: measuring $duration" >&2
    local t0 c0 t1 c1
    t0="$(date +%s.%N)"; c0="$(cpu_ticks "$pid")"
    BENCH_MODE="$mode" "${on_cpu[@]}" "$wrk_cpu" wrk -t"$threads" -c"$connections" -d"$duration" --latency \
        -s "$here/token.lua" "$url" >"$tmp/$name.out" 2>&1 &
    local wrk_pid=$!
    sleep 5
    top -b -n1 -p "$pid" 2>/dev/null | tail -n 2 >"$tmp/$name.top" || true
    wait "$wrk_pid" || die "wrk failed: $(cat "$tmp/$name.out")"
    t1="$(date +%s.%N)"; c1="$(cpu_ticks "$pid")"
    awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" -v hz="$clk_tck" \
        'BEGIN { printf "%.0f\n", 100 * (b - a) / hz / (t1 - t0) }' >"$tmp/$name.cpu"
    awk -v a="$c0" -v b="$c1" -v hz="$clk_tck" -v n="$(field requests "$tmp/$name.out")" \
        'BEGIN { printf "%.1f\n", (n > 0 ? 1e6 * (b - a) / hz / n : 0) }' >"$tmp/$name.cpureq"
}

run token token "$base/token" "$warden_pid"
run jwks get "$base/jwks" "$warden_pid"
run metadata get "$base/.well-known/oauth-authorization-server" "$warden_pid"
rss_kb="$(awk '/^VmRSS/ { print $2 }' "/proc/$warden_pid/status")"
warden_version="$("$warden" --version 2>/dev/null || echo '?')"

# --- peer: oidc-provider, after Warden has stopped, on the same cores ------------------------
rows="token jwks metadata"
peer_pid=""
bench_cleanup() {
    local rc=$?
    provider_stop "$peer_pid"
    (exit "$rc")
    provider_cleanup
}
trap bench_cleanup EXIT
if [ "$peer" = 1 ]; then
    provider_stop "$warden_pid"
    warden_pid=""
    peer_version="$(sed -n 's/^  "version": "\([^"]*\)".*/\1/p' "$peer_dir/node_modules/oidc-provider/package.json" | head -n1)"
    # Same client id and secret as Warden's client, so wrk sends byte-identical requests.
    BENCH_PEER_CLIENT_ID="$client_id" BENCH_PEER_CLIENT_SECRET="$client_secret" NODE_ENV=production \
        "${on_cpu[@]}" "$server_cpu" node "$peer_dir/server.mjs" 0 >"$tmp/peer.out" 2>"$tmp/peer.log" &
    peer_pid=$!
    peer_token=""
    for _ in $(seq 100); do
        kill -0 "$peer_pid" 2>/dev/null || break
        peer_token="$(sed -n 's/.*"token_endpoint":"\([^"]*\)".*/\1/p' "$tmp/peer.out" | head -n1)"
        [ -z "$peer_token" ] || break
        sleep 0.1
    done
    [ -n "$peer_token" ] || die "oidc-provider did not start: $(cat "$tmp/peer.log")"
    check_token oidc-provider "$peer_token"
    run peer token "$peer_token" "$peer_pid"
    rows="$rows peer"
fi

# --- report ---------------------------------------------------------------------------------
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
label() { if [ "$1" = peer ]; then echo "oidc-provider token"; else echo "warden $1"; fi; }
base_rps="$(field rps "$tmp/metadata.out")"
base_p99="$(field p99_us "$tmp/metadata.out")"
report="$tmp/report.txt"
{
    echo "Warden token-endpoint benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "binary:  $warden ($warden_version)"
    echo "commit:  $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo ' (+uncommitted changes)')"
    echo "cpu:     $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1) × $ncpu; kernel $(uname -r)"
    echo "setup:   warden --role provider on cpu $server_cpu, log warn, SQLite in a temp dir; ES256 tokens"
    [ "$peer" = 0 ] || echo "peer:    oidc-provider $peer_version on node $(node --version) on cpu $server_cpu (one process, NODE_ENV=production, in-memory adapter), ES256 JWT access tokens; run after Warden stopped"
    echo "load:    $(wrk --version 2>&1 | head -n1 | cut -d' ' -f1-2) on cpu $wrk_cpu, -t$threads -c$connections, warm-up $warmup, measured $duration per endpoint; nice $nice_level for servers and wrk"
    echo "machine: load average before the runs $load_before, after $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "request: POST /token, grant_type=client_credentials&scope=read, client_secret_basic (same client id and secret on both servers)"
    echo
    printf '%-20s %10s %9s %9s %9s %8s %10s %11s %10s\n' \
        endpoint "req/s" "p50 ms" "p99 ms" "non-200" "srv CPU" "CPU us/req" "req/s ratio" "p99 ratio"
    for name in $rows; do
        out="$tmp/$name.out"
        printf '%-20s %10s %9s %9s %9s %7s%% %10s %11s %10s\n' "$(label "$name")" \
            "$(field rps "$out")" "$(ms "$(field p50_us "$out")")" "$(ms "$(field p99_us "$out")")" \
            "$(field non200 "$out")" "$(cat "$tmp/$name.cpu")" "$(cat "$tmp/$name.cpureq")" \
            "$(ratio "$(field rps "$out")" "$base_rps")" "$(ratio "$(field p99_us "$out")" "$base_p99")"
    done
    echo
    if [ "$peer" = 1 ]; then
        echo "warden / oidc-provider: tokens/s $(ratio "$(field rps "$tmp/token.out")" "$(field rps "$tmp/peer.out")")×," \
            "CPU per token $(ratio "$(cat "$tmp/peer.cpureq")" "$(cat "$tmp/token.cpureq")")× less," \
            "p99 $(ratio "$(field p99_us "$tmp/token.out")" "$(field p99_us "$tmp/peer.out")")"
        echo
    fi
    echo "endpoints: token = POST /token (client_credentials, client_secret_basic); jwks = GET /jwks;"
    echo "           metadata = GET /.well-known/oauth-authorization-server (baseline: ratios are endpoint/metadata)"
    echo "srv CPU:   server CPU time (all threads) / wall time during the measured run (100% = the whole pinned core)"
    echo "warden RSS after its runs: $((rss_kb / 1024)) MiB"
    # shellcheck disable=SC2086
    warn_failures "$tmp" $rows
    echo
    echo "top during the warden token run:"
    cat "$tmp/token.top" 2>/dev/null || true
    echo
    echo "wrk --latency, warden token run:"
    grep -v '^BENCH ' "$tmp/token.out"
    if [ "$peer" = 1 ]; then
        echo
        echo "wrk --latency, oidc-provider token run:"
        grep -v '^BENCH ' "$tmp/peer.out"
    fi
} >"$report"

mkdir -p "$here/out"
dest="$here/out/results-$(date +%Y-%m-%d-%H%M%S).txt"
cp "$report" "$dest"
cat "$report"
echo
echo "written to ${dest#"$root"/}"

for name in $rows; do
    [ "$name" = token ] || [ "$name" = peer ] || continue
    bad="$(field non200 "$tmp/$name.out")"
    [ "$bad" = 0 ] || die "the $(label "$name") run had $bad non-200 responses: the numbers above are not token issuance"
done
