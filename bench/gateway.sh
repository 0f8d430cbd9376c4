#!/usr/bin/env bash
# Gateway benchmark (issue 7): one fixed-concurrency load, side by side in one run, against
#   (a) the upstream directly,
#   (b) Warden as a plain proxy (an anonymous route),
#   (c) Warden with the full policy: a Warden ES256 access token (JWT) + a scope rule, plus a
#       rate limit and JSON-schema validation of the POST body when this build has those
#       settings (bench/policy/*.toml, each checked with `warden config check` first),
#   (d) nginx as a plain reverse proxy, one worker,
# and prints requests/s, p50/p99, the servers' CPU per request and the ratios (b)/(d),
# (c)/(d) and (x)/(a). See bench/README.md.
#
#   bench/gateway.sh [PATH/TO/warden]        (default: target/release/warden)
#
# Every row sends the same request: POST of a small JSON body with an Authorization header
# (the upstream and the plain proxies ignore it). wrk runs pinned to one core, the server
# under test and the upstream on the other (taskset); everything listens on 127.0.0.1 only,
# and every process the script starts is stopped by its pid when it exits.
#
# Environment (all optional): BENCH_DURATION (10s), BENCH_WARMUP (3s), BENCH_CONNECTIONS (32),
# BENCH_THREADS (1), BENCH_SERVER_CPU (0), BENCH_WRK_CPU (1), BENCH_UPSTREAM_CPU (= the
# server's), BENCH_NICE (0), BENCH_NGINX (nginx binary; default: from PATH or /usr/sbin/nginx),
# BENCH_ROWS (a b c d: which rows to run), BENCH_UPSTREAM (the upstream binary; default: built
# with `cargo bench --bench upstream --no-run`), BENCH_KEEP (1: keep Warden running after the
# runs and print its pid and URLs, for `perf record`; stop it yourself).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
warden="$(warden_binary "${1:-}")"
upstream_cpu="${BENCH_UPSTREAM_CPU:-$server_cpu}"
rows="${BENCH_ROWS:-a b c d}"
keep="${BENCH_KEEP:-0}"
for r in $rows; do case "$r" in a|b|c|d) ;; *) die "BENCH_ROWS: unknown row $r (a b c d)";; esac; done
body='{"name":"bench","qty":1}'

# --- tools ------------------------------------------------------------------------------
for tool in wrk taskset curl ss; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (Debian packages wrk, util-linux, curl, iproute2)"
done
[ "$(nproc --all)" -ge 2 ] || die "needs 2 CPUs (server and load generator on separate cores)"
[ "$server_cpu" != "$wrk_cpu" ] || die "BENCH_SERVER_CPU and BENCH_WRK_CPU must differ"
[ "$upstream_cpu" != "$wrk_cpu" ] || die "BENCH_UPSTREAM_CPU and BENCH_WRK_CPU must differ"
nginx="${BENCH_NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
case " $rows " in *" d "*) [ -x "$nginx" ] || die "nginx is missing (apt-get install -y nginx-light), or leave row d out: BENCH_ROWS='a b c'";; esac
clk_tck="$(getconf CLK_TCK)"

upstream_bin="${BENCH_UPSTREAM:-}"
if [ -z "$upstream_bin" ]; then
    echo "bench: building the upstream (cargo bench --bench upstream --no-run)" >&2
    upstream_bin="$(cd "$root" && cargo bench --locked --bench upstream --no-run --message-format=json 2>/dev/null \
        | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n1)"
fi
[ -x "$upstream_bin" ] || die "could not build the upstream (cargo bench --bench upstream --no-run)"

# --- processes: every one started here is stopped by its pid on exit ------------------------
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(WARDEN_|RUST_LOG$)' || true)
tmp="$(mktemp -d "${TMPDIR:-/tmp}/warden-gateway-bench.XXXXXX")"
pids=()
stop_pid() {
    local pid="$1"
    [ -n "$pid" ] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    if [ "$keep" = 1 ] && [ "$rc" -eq 0 ]; then
        echo "bench: BENCH_KEEP=1: left running (stop them by pid): ${pids[*]}; files in $tmp" >&2
        exit 0
    fi
    local i
    for (( i=${#pids[@]}-1; i>=0; i-- )); do stop_pid "${pids[$i]}"; done
    if [ "$rc" -ne 0 ]; then
        for log in "$tmp"/*.log; do
            [ -s "$log" ] || continue
            echo "bench: failed (exit $rc); last lines of ${log##*/}:" >&2
            tail -n 15 "$log" >&2 || true
        done
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free loopback port for nginx (Warden and the upstream bind port 0 and say where).
free_port() {
    local p
    for _ in $(seq 100); do
        p=$(( 20000 + RANDOM % 30000 ))
        ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return 0; }
    done
    die "no free port found"
}
# wait_for FILE SED-EXPR: the first match of SED-EXPR in FILE, within 15 s.
wait_for() {
    local found=""
    for _ in $(seq 150); do
        found="$(sed -n "$2" "$1" 2>/dev/null | head -n1)"
        [ -z "$found" ] || { echo "$found"; return 0; }
        sleep 0.1
    done
    return 1
}

# --- the upstream -------------------------------------------------------------------------
"${on_cpu[@]}" "$upstream_cpu" "$upstream_bin" --listen 127.0.0.1:0 >"$tmp/upstream.out" 2>"$tmp/upstream.log" &
upstream_pid=$!
pids+=("$upstream_pid")
upstream_addr="$(wait_for "$tmp/upstream.out" 's/^BENCH listening //p')" || die "the upstream did not start"
upstream="http://$upstream_addr"

# --- Warden: provider + gateway in one process ---------------------------------------------
need_warden=0
case " $rows " in *" b "*|*" c "*) need_warden=1;; esac
extras=""
if [ "$need_warden" = 1 ]; then
    export WARDEN_DATA_DIR="$tmp/data" WARDEN_LOG__LEVEL=warn WARDEN_CONFIG="$tmp/warden.toml"
    write_config() {  # write_config EXTRA-FILES...: route (c) last, so the extras extend it
        {
            echo 'version = 1'
            echo '[provider]'
            echo 'listen = "127.0.0.1:0"'
            echo '[gateway]'
            echo 'listen = "127.0.0.1:0"'
            echo '[[gateway.routes]]'
            echo 'id = "plain"'
            echo 'path = "/plain/"'
            echo 'methods = ["POST"]'
            echo "upstream = \"$upstream\""
            echo 'auth = ["anonymous"]'
            echo '[[gateway.routes]]'
            echo 'id = "policy"'
            echo 'path = "/policy/"'
            echo 'methods = ["POST"]'
            echo "upstream = \"$upstream\""
            echo 'auth = ["warden"]'
            echo 'scopes_all = ["bench:write"]'
            local f
            for f in "$@"; do echo; cat "$f"; done
        } >"$tmp/warden.toml"
    }
    # (c)'s optional policies: each one that this build's `config check` accepts is kept.
    kept=()
    for f in "$here"/policy/*.toml; do
        [ -f "$f" ] || continue
        write_config "${kept[@]}" "$f"
        if "$warden" config check >"$tmp/check.out" 2>&1; then
            kept+=("$f")
            extras="$extras $(basename "$f" .toml)"
        else
            echo "bench: (c) without $(basename "$f" .toml): this build does not accept bench/policy/$(basename "$f") ($(head -n1 "$tmp/check.out"))" >&2
        fi
    done
    write_config "${kept[@]}"
    "$warden" config check >"$tmp/check.out" 2>&1 || die "warden config check: $(cat "$tmp/check.out")"

    "${on_cpu[@]}" "$server_cpu" "$warden" serve --role provider,gateway >"$tmp/warden.log" 2>&1 &
    warden_pid=$!
    pids+=("$warden_pid")
    issuer="$(wait_for "$tmp/warden.log" 's/.*provider listening on \(http:[^ ]*\).*/\1/p')" || die "warden did not start"
    gateway="$(wait_for "$tmp/warden.log" 's/.*gateway  *listening on \(http:[^ ]*\).*/\1/p')" || die "the gateway did not start"
    for _ in $(seq 150); do curl -fs -o /dev/null "$issuer/jwks" && break; sleep 0.1; done

    # A Warden access token (ES256) from the provider role of the same process.
    "$warden" client create --name bench --grant-type client_credentials --scope bench:write \
        --access-token-lifetime 1h --json >"$tmp/client.json" || die "warden client create failed"
    json_field() { sed -n "s/.*\"$1\": *\"\\([^\"]*\\)\".*/\\1/p" "$2" | head -n1; }
    client_id="$(json_field client_id "$tmp/client.json")"
    client_secret="$(json_field client_secret "$tmp/client.json")"
    [ -n "$client_id" ] && [ -n "$client_secret" ] || die "no client_id/client_secret in: $(cat "$tmp/client.json")"
    curl -fsS -u "$client_id:$client_secret" -d 'grant_type=client_credentials&scope=bench:write' \
        "$issuer/token" >"$tmp/token.json" || die "POST /token failed"
    token="$(json_field access_token "$tmp/token.json")"
    header="$(printf '%s' "${token%%.*}" | tr '_-' '/+')"
    while [ $(( ${#header} % 4 )) -ne 0 ]; do header="$header="; done
    case "$(printf '%s' "$header" | base64 -d 2>/dev/null)" in
        *'"alg":"ES256"'*) ;;
        *) die "the access token is not an ES256 JWT: $(cat "$tmp/token.json")";;
    esac
    # (c) really checks: no token is 401, the token passes; (b) passes without one.
    post() { curl -s -o "$tmp/post.out" -w '%{http_code}' -H 'Content-Type: application/json' -d "$body" "$@"; }
    [ "$(post "$gateway/policy/items")" = 401 ] || die "(c) without a token did not answer 401: $(cat "$tmp/post.out")"
    [ "$(post -H "Authorization: Bearer $token" "$gateway/policy/items")" = 200 ] || die "(c) with the token did not answer 200: $(cat "$tmp/post.out")"
    [ "$(post "$gateway/plain/items")" = 200 ] || die "(b) did not answer 200: $(cat "$tmp/post.out")"
else
    token="none"
fi
export BENCH_MODE=post BENCH_BODY="$body" BENCH_AUTH="Bearer $token"

# --- nginx: plain reverse proxy, one process -----------------------------------------------
nginx_url=""
start_nginx() {
    local port; port="$(free_port)"
    mkdir -p "$tmp/nginx"
    cat >"$tmp/nginx/nginx.conf" <<EOF
# One process serves (no master, so one pid to pin and measure), keep-alive to the upstream.
daemon off;
master_process off;
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    upstream bench_upstream {
        server $upstream_addr;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://bench_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$proxy_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$host;
        }
    }
}
EOF
    "${on_cpu[@]}" "$server_cpu" "$nginx" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx.log" >"$tmp/nginx.out" 2>&1 &
    nginx_pid=$!
    pids+=("$nginx_pid")
    nginx_url="http://127.0.0.1:$port"
    for _ in $(seq 100); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "$body" "$nginx_url/items")" = 200 ] && return 0
        kill -0 "$nginx_pid" 2>/dev/null || break
        sleep 0.1
    done
    die "nginx did not start: $(cat "$tmp/nginx.log" "$tmp/nginx.out" 2>/dev/null)"
}

# --- runs -----------------------------------------------------------------------------------
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# run NAME URL SERVER-PID: warm-up, then the measured run; CPU of the server and the upstream.
run() {
    local name="$1" url="$2" pid="$3"
    echo "bench: ($name): warm-up $warmup" >&2
    "${on_cpu[@]}" "$wrk_cpu" wrk -t"$threads" -c"$connections" -d"$warmup" \
        -s "$here/token.lua" "$url" >"$tmp/$name.warmup" 2>&1 || die "wrk failed: $(cat "$tmp/$name.warmup")"
    local bad; bad="$(field non200 "$tmp/$name.warmup")"
    [ "${bad:-x}" = 0 ] || die "($name): warm-up got non-200 responses ($bad); first: $(field first_non200 "$tmp/$name.warmup")"
    echo "bench: ($name): measuring $duration" >&2
    local t0 c0 u0 t1 c1 u1
    t0="$(date +%s.%N)"; c0="$(cpu_ticks "$pid")"; u0="$(cpu_ticks "$upstream_pid")"
    "${on_cpu[@]}" "$wrk_cpu" wrk -t"$threads" -c"$connections" -d"$duration" --latency \
        -s "$here/token.lua" "$url" >"$tmp/$name.out" 2>&1 || die "wrk failed: $(cat "$tmp/$name.out")"
    t1="$(date +%s.%N)"; c1="$(cpu_ticks "$pid")"; u1="$(cpu_ticks "$upstream_pid")"
    local n; n="$(field requests "$tmp/$name.out")"
    awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" -v hz="$clk_tck" \
        'BEGIN { printf "%.0f\n", 100 * (b - a) / hz / (t1 - t0) }' >"$tmp/$name.cpu"
    awk -v a="$c0" -v b="$c1" -v hz="$clk_tck" -v n="$n" \
        'BEGIN { printf "%.1f\n", (n > 0 ? 1e6 * (b - a) / hz / n : 0) }' >"$tmp/$name.cpureq"
    awk -v a="$u0" -v b="$u1" -v hz="$clk_tck" -v n="$n" \
        'BEGIN { printf "%.1f\n", (n > 0 ? 1e6 * (b - a) / hz / n : 0) }' >"$tmp/$name.upreq"
}

for r in $rows; do
    case "$r" in
        a) run a "$upstream/items" "$upstream_pid" ;;
        b) run b "$gateway/plain/items" "$warden_pid" ;;
        c) run c "$gateway/policy/items" "$warden_pid" ;;
        d) [ -n "$nginx_url" ] || start_nginx; run d "$nginx_url/items" "$nginx_pid" ;;
    esac
done

# --- report ---------------------------------------------------------------------------------
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
ratio() { if [ -n "$1" ] && [ -n "$2" ]; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; else echo -; fi; }
rps() { [ -f "$tmp/$1.out" ] && field rps "$tmp/$1.out" || true; }
label() {
    case "$1" in
        a) echo "(a) upstream direct";;
        b) echo "(b) warden plain proxy";;
        c) echo "(c) warden full policy";;
        d) echo "(d) nginx plain proxy";;
    esac
}
report="$tmp/report.txt"
{
    echo "Warden gateway benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "binary:   $warden ($("$warden" --version 2>/dev/null || echo '?'))"
    echo "commit:   $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo ' (+uncommitted changes)')"
    echo "cpu:      $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1) × $(nproc --all); kernel $(uname -r)"
    echo "placement: server under test on cpu $server_cpu, upstream on cpu $upstream_cpu, wrk on cpu $wrk_cpu; nice $nice_level"
    echo "load:     $(wrk --version 2>&1 | head -n1 | cut -d' ' -f1-2), -t$threads -c$connections, warm-up $warmup, measured $duration per row"
    echo "request:  POST /…/items, Content-Type: application/json, body $body, Authorization: Bearer <ES256 Warden token>"
    echo "(c):      auth = [\"warden\"] (ES256 JWT, verified-claims cache, revocation check) + scopes_all = [\"bench:write\"]${extras:+ +$extras}"
    [ -z "$extras" ] && echo "          (rate limit and schema validation not in (c): this build has none of the settings in bench/policy/)"
    case " $rows " in *" d "*) echo "nginx:    $("$nginx" -v 2>&1 | sed 's/^nginx version: //'), one process (master_process off), keepalive 64 to the upstream";; esac
    echo "machine:  load average before the runs $load_before, after $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    printf '%-24s %9s %8s %8s %8s %8s %11s %10s %9s %9s\n' \
        row "req/s" "p50 ms" "p99 ms" "non-200" "srv CPU" "srv us/req" "up us/req" "÷ (d)" "÷ (a)"
    for r in $rows; do
        out="$tmp/$r.out"
        printf '%-24s %9s %8s %8s %8s %7s%% %11s %10s %9s %9s\n' "$(label "$r")" \
            "$(field rps "$out")" "$(ms "$(field p50_us "$out")")" "$(ms "$(field p99_us "$out")")" \
            "$(field non200 "$out")" "$(cat "$tmp/$r.cpu")" "$(cat "$tmp/$r.cpureq")" \
            "$(if [ "$r" = a ]; then echo -; else cat "$tmp/$r.upreq"; fi)" \
            "$(ratio "$(rps "$r")" "$(rps d)")" "$(ratio "$(rps "$r")" "$(rps a)")"
    done
    echo
    b_d="$(ratio "$(rps b)" "$(rps d)")"; c_d="$(ratio "$(rps c)" "$(rps d)")"
    echo "ratios:   (b)/(d) = $b_d   (c)/(d) = $c_d   (goal: (c)/(d) ≥ 1)"
    if [ -f "$tmp/c.cpureq" ] && [ -f "$tmp/d.cpureq" ]; then
        echo "CPU per request, server only: (b) $(cat "$tmp/b.cpureq" 2>/dev/null || echo -) µs, (c) $(cat "$tmp/c.cpureq") µs, (d) $(cat "$tmp/d.cpureq") µs;" \
            "(c)/(d) = $(ratio "$(cat "$tmp/c.cpureq")" "$(cat "$tmp/d.cpureq")")× nginx's"
    fi
    echo "srv CPU:  the server's CPU time (all threads) / wall time during the run; srv/up us/req: CPU time of"
    echo "          the server / the upstream over the run ÷ requests (the upstream shares the server's core)"
    # shellcheck disable=SC2086
    warn_failures "$tmp" $rows
    for r in $rows; do
        echo
        echo "wrk --latency, $(label "$r"):"
        grep -v '^BENCH ' "$tmp/$r.out"
    done
} >"$report"

mkdir -p "$here/out"
dest="$here/out/gateway-$(date +%Y-%m-%d-%H%M%S).txt"
cp "$report" "$dest"
sed -n '1,/^ratios:/p' "$report"
sed -n '/^CPU per request/,/^          the server/p' "$report"
grep '^WARNING' "$report" || true
echo
echo "written to ${dest#"$root"/}"
if [ "$keep" = 1 ] && [ -n "${warden_pid:-}" ]; then
    echo "BENCH_KEEP=1: warden pid $warden_pid, gateway $gateway, token in $tmp/token.json"
fi

for r in $rows; do
    bad="$(field non200 "$tmp/$r.out")"
    [ "$bad" = 0 ] || die "$(label "$r") had $bad non-200 responses: its numbers measure refusals, not proxying"
done
