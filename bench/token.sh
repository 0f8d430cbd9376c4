#!/usr/bin/env bash
# Load benchmark of Warden's token endpoint, with /jwks and the metadata document as baselines.
#
#   bench/token.sh [PATH/TO/warden]        (default: target/release/warden)
#
# Starts `warden serve --role provider` (temporary data dir, log level warn) pinned to one
# core, creates a client_credentials client, and drives it with wrk pinned to another core:
# per endpoint a warm-up, then a measured run. Prints a table and writes it to
# bench/out/results-<date>.txt. See bench/README.md.
#
# Environment (all optional): BENCH_DURATION (10s), BENCH_WARMUP (3s), BENCH_CONNECTIONS (32),
# BENCH_THREADS (1), BENCH_SERVER_CPU (0), BENCH_WRK_CPU (1).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
die() { echo "bench: $*" >&2; exit 1; }

warden="${1:-$root/target/release/warden}"
[ -f "$warden" ] && [ -x "$warden" ] || die "not an executable file: $warden (build with: cargo build --release)"
warden="$(cd "$(dirname "$warden")" && pwd)/$(basename "$warden")"

duration="${BENCH_DURATION:-10s}"
warmup="${BENCH_WARMUP:-3s}"
connections="${BENCH_CONNECTIONS:-32}"
threads="${BENCH_THREADS:-1}"
server_cpu="${BENCH_SERVER_CPU:-0}"
wrk_cpu="${BENCH_WRK_CPU:-1}"

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

# --- server -------------------------------------------------------------------------------
. "$root/scripts/provider.sh"
provider_setup bench
export WARDEN_LOG__LEVEL=warn
provider_start taskset -c "$server_cpu" || die "warden did not start"
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
export BENCH_AUTH="Basic $(printf '%s:%s' "$client_id" "$client_secret" | base64 -w0)"

# --- runs -----------------------------------------------------------------------------------
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$warden_pid/stat"; }
field() { sed -n "s/^BENCH $1 //p" "$2" | head -n1; }

# run NAME MODE PATH: warm-up, then the measured run; results in $tmp/NAME.{out,cpu}.
run() {
    local name="$1" mode="$2" path="$3"
    echo "bench: $name: warm-up $warmup" >&2
    BENCH_MODE="$mode" taskset -c "$wrk_cpu" wrk -t"$threads" -c"$connections" -d"$warmup" \
        -s "$here/token.lua" "$base$path" >"$tmp/$name.warmup" 2>&1 || die "wrk failed: $(cat "$tmp/$name.warmup")"
    local bad; bad="$(field non200 "$tmp/$name.warmup")"
    if [ "${bad:-x}" != 0 ]; then
        die "$name: warm-up got non-200 responses ($bad); first: $(field first_non200 "$tmp/$name.warmup")"
    fi
    echo "bench: $name: measuring $duration" >&2
    local t0 c0 t1 c1
    t0="$(date +%s.%N)"; c0="$(cpu_ticks)"
    BENCH_MODE="$mode" taskset -c "$wrk_cpu" wrk -t"$threads" -c"$connections" -d"$duration" --latency \
        -s "$here/token.lua" "$base$path" >"$tmp/$name.out" 2>&1 &
    local wrk_pid=$!
    sleep 5
    top -b -n1 -p "$warden_pid" 2>/dev/null | tail -n 2 >"$tmp/$name.top" || true
    wait "$wrk_pid" || die "wrk failed: $(cat "$tmp/$name.out")"
    t1="$(date +%s.%N)"; c1="$(cpu_ticks)"
    awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" -v hz="$clk_tck" \
        'BEGIN { printf "%.0f\n", 100 * (b - a) / hz / (t1 - t0) }' >"$tmp/$name.cpu"
    awk -v a="$c0" -v b="$c1" -v hz="$clk_tck" -v n="$(field requests "$tmp/$name.out")" \
        'BEGIN { printf "%.1f\n", (n > 0 ? 1e6 * (b - a) / hz / n : 0) }' >"$tmp/$name.cpureq"
}

run token token /token
run jwks get /jwks
run metadata get /.well-known/oauth-authorization-server

# --- report ---------------------------------------------------------------------------------
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
base_rps="$(field rps "$tmp/metadata.out")"
base_p99="$(field p99_us "$tmp/metadata.out")"
rss_kb="$(awk '/^VmRSS/ { print $2 }' "/proc/$warden_pid/status")"
report="$tmp/report.txt"
{
    echo "Warden token-endpoint benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "binary:  $warden ($("$warden" --version 2>/dev/null || echo '?'))"
    echo "commit:  $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo ' (+uncommitted changes)')"
    echo "cpu:     $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1) × $ncpu; kernel $(uname -r)"
    echo "setup:   warden --role provider on cpu $server_cpu, log warn, SQLite in a temp dir; ES256 tokens"
    echo "load:    $(wrk --version 2>&1 | head -n1 | cut -d' ' -f1-2) on cpu $wrk_cpu, -t$threads -c$connections, warm-up $warmup, measured $duration per endpoint"
    echo
    printf '%-10s %10s %9s %9s %9s %8s %10s %11s %10s\n' \
        endpoint "req/s" "p50 ms" "p99 ms" "non-200" "srv CPU" "CPU us/req" "req/s ratio" "p99 ratio"
    for name in token jwks metadata; do
        out="$tmp/$name.out"
        printf '%-10s %10s %9s %9s %9s %7s%% %10s %11s %10s\n' "$name" \
            "$(field rps "$out")" "$(ms "$(field p50_us "$out")")" "$(ms "$(field p99_us "$out")")" \
            "$(field non200 "$out")" "$(cat "$tmp/$name.cpu")" "$(cat "$tmp/$name.cpureq")" \
            "$(ratio "$(field rps "$out")" "$base_rps")" "$(ratio "$(field p99_us "$out")" "$base_p99")"
    done
    echo
    echo "endpoints: token = POST /token (client_credentials, client_secret_basic); jwks = GET /jwks;"
    echo "           metadata = GET /.well-known/oauth-authorization-server (baseline: ratios are endpoint/metadata)"
    echo "srv CPU:   warden's CPU time / wall time during the measured run (100% = the whole pinned core)"
    echo "warden RSS after the runs: $((rss_kb / 1024)) MiB"
    for name in token jwks metadata; do
        fs="$(field first_non200 "$tmp/$name.out")"
        se="$(field socket_errors "$tmp/$name.out")"
        [ -z "$fs" ] || echo "WARNING: $name: first non-200 response: $fs"
        [ "${se:-0}" = 0 ] || echo "WARNING: $name: $se socket errors (connect/read/write/timeout)"
    done
    echo
    echo "top during the token run:"
    cat "$tmp/token.top" 2>/dev/null || true
    echo
    echo "wrk --latency, token run:"
    grep -v '^BENCH ' "$tmp/token.out"
} >"$report"

mkdir -p "$here/out"
dest="$here/out/results-$(date +%Y-%m-%d-%H%M%S).txt"
cp "$report" "$dest"
cat "$report"
echo
echo "written to ${dest#"$root"/}"

token_bad="$(field non200 "$tmp/token.out")"
[ "$token_bad" = 0 ] || die "the token run had $token_bad non-200 responses: the numbers above are not token issuance"
