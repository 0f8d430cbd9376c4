#!/usr/bin/env bash
# Instruction counts per request of Warden's token endpoint (and the metadata baseline), from
# callgrind: repeatable on a loaded machine, unlike rates and CPU times.
#
#   bench/callgrind.sh [PATH/TO/warden]        (default: target/release/warden)
#
# Starts `warden serve --role provider` under `valgrind --tool=callgrind` with instrumentation
# off, creates a client_credentials client, then per endpoint: turns instrumentation on, drives
# the endpoint with wrk (bench/token.lua, same request as bench/token.sh) for BENCH_CG_DURATION,
# dumps the counters and turns instrumentation off. Prints instructions per response written
# (all threads, the runtime's idle work included) and writes the dumps and `callgrind_annotate`
# listings to bench/out/callgrind-<date>/ (git-ignored).
#
# Environment (optional): BENCH_CG_DURATION (10s), BENCH_CG_CONNECTIONS (32), BENCH_CG_TOP (40).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
die() { echo "callgrind: $*" >&2; exit 1; }

warden="${1:-$root/target/release/warden}"
[ -f "$warden" ] && [ -x "$warden" ] || die "not an executable file: $warden (build with: cargo build --release)"
warden="$(cd "$(dirname "$warden")" && pwd)/$(basename "$warden")"
duration="${BENCH_CG_DURATION:-10s}"
connections="${BENCH_CG_CONNECTIONS:-32}"
top="${BENCH_CG_TOP:-40}"
for tool in valgrind callgrind_control callgrind_annotate wrk curl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (Debian packages valgrind, wrk, curl)"
done

out="$here/out/callgrind-$(date +%Y-%m-%d-%H%M%S)"
mkdir -p "$out"

. "$root/scripts/provider.sh"
provider_setup callgrind
export WARDEN_LOG__LEVEL=warn
# Under valgrind the server runs ~50x slower, so the once-a-second client/resource cache refill
# (a SQLite read) would weigh ~50x more per request than at full speed: refill once a minute.
export WARDEN_PROVIDER__CLIENT_CACHE_TTL=60s
provider_start valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/callgrind.out.%p" \
    || die "warden did not start under valgrind"

"$warden" client create --name bench --grant-type client_credentials --scope read --json >"$tmp/client.json" \
    || die "warden client create failed"
json_field() { sed -n "s/.*\"$1\": *\"\\([^\"]*\\)\".*/\\1/p" "$tmp/client.json" | head -n1; }
client_id="$(json_field client_id)"
client_secret="$(json_field client_secret)"
[ -n "$client_id" ] && [ -n "$client_secret" ] || die "no client_id/client_secret in: $(cat "$tmp/client.json")"
export BENCH_AUTH; BENCH_AUTH="Basic $(printf '%s:%s' "$client_id" "$client_secret" | base64 -w0)"

field() { sed -n "s/^BENCH $1 //p" "$2" | head -n1; }

# measure NAME MODE PATH
measure() {
    local name="$1" mode="$2" path="$3"
    # A few requests first, uninstrumented: caches filled, connections not yet open.
    BENCH_MODE="$mode" wrk -t1 -c2 -d2s -s "$here/token.lua" "$issuer$path" >"$out/$name.warmup" 2>&1 \
        || die "wrk failed: $(cat "$out/$name.warmup")"
    callgrind_control -z "$warden_pid" >/dev/null 2>&1
    callgrind_control -i on "$warden_pid" >/dev/null 2>&1
    BENCH_MODE="$mode" wrk -t1 -c"$connections" -d"$duration" -s "$here/token.lua" "$issuer$path" >"$out/$name.wrk" 2>&1 \
        || die "wrk failed: $(cat "$out/$name.wrk")"
    callgrind_control -d "$name" "$warden_pid" >/dev/null 2>&1
    callgrind_control -i off "$warden_pid" >/dev/null 2>&1
    local bad; bad="$(field non200 "$out/$name.wrk")"
    [ "$bad" = 0 ] || die "$name: $bad non-200 responses; first: $(field first_non200 "$out/$name.wrk")"
}

measure token token /token
measure metadata get /.well-known/oauth-authorization-server

# Dumps are numbered in order: .1 = token, .2 = metadata.
report="$out/summary.txt"
{
    echo "callgrind, $(basename "$warden") $("$warden" --version 2>/dev/null || echo '?'), commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo ' (+uncommitted changes)')"
    echo "load: wrk -t1 -c$connections -d$duration per endpoint (instrumented; counts include every thread)"
    printf '%-10s %10s %16s %14s\n' endpoint responses instructions "instr/request"
    n=1
    for name in token metadata; do
        file="$(ls "$out"/callgrind.out.*."$n" 2>/dev/null | head -n1)"
        [ -n "$file" ] || die "no dump $n in $out"
        mv "$file" "$out/$name.callgrind"
        ir="$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$out/$name.callgrind" | head -n1)"
        [ -n "$ir" ] || ir="$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$out/$name.callgrind" | head -n1)"
        # Responses the server wrote (hyper encodes one head per response): wrk's count misses
        # the requests still in flight when it stops, which the server completes.
        reqs="$(callgrind_annotate --tree=caller --threshold=100 "$out/$name.callgrind" 2>/dev/null | awk '
            found { next }
            /< / { s = $0; sub(/.*\(/, "", s); sub(/x\).*/, "", s); gsub(/,/, "", s); acc += s; next }
            /\* .*Http1Transaction>::encode/ { found = 1; next }
            { acc = 0 }
            END { print (found ? acc : 0) }')"
        [ "${reqs:-0}" -gt 0 ] || reqs="$(field requests "$out/$name.wrk")"
        printf '%-10s %10s %16s %14s\n' "$name" "$reqs" "$ir" "$(awk -v a="$ir" -v b="$reqs" 'BEGIN { printf "%.0f", a / b }')"
        callgrind_annotate --inclusive=no "$out/$name.callgrind" 2>/dev/null | head -n $((top + 25)) >"$out/$name.self.txt" || true
        callgrind_annotate --inclusive=yes "$out/$name.callgrind" 2>/dev/null | head -n $((top + 25)) >"$out/$name.inclusive.txt" || true
        n=$((n + 1))
    done
} >"$report"
cat "$report"
echo "listings: ${out#"$root"/}/{token,metadata}.{self,inclusive}.txt"
