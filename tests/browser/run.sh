#!/usr/bin/env bash
# Headless-Chromium test of Warden's real login and consent pages (tests/browser/flow.mjs).
#
#   tests/browser/run.sh PATH/TO/warden
#
# Installs Debian's `chromium` with apt-get when /usr/bin/chromium is missing (as root, or
# with sudo), runs `npm ci` here when node_modules is missing or package-lock.json changed,
# starts `warden serve --role provider` on a free loopback port with a temporary data dir
# (scripts/provider.sh), creates a user with the CLI and runs flow.mjs, which creates the
# client, drives the pages and saves screenshots to $CARGO_TARGET_DIR/browser (else
# target/browser). Last line on success: `N passed, 0 failed`; exits non-zero on any failure.
# Needs Node >= 20 with npm, and access to the npm registry the first time.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
die() { echo "browser: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: $0 PATH/TO/warden"
warden="$1"
[ -f "$warden" ] && [ -x "$warden" ] || die "not an executable file: $warden"
warden="$(cd "$(dirname "$warden")" && pwd)/$(basename "$warden")"

# --- Chromium (Debian's package: Playwright cannot download its own browser here) ---------
export CHROMIUM=/usr/bin/chromium
if [ ! -x "$CHROMIUM" ]; then
    echo "browser: installing Debian's chromium" >&2
    if [ "$(id -u)" -eq 0 ]; then sudo=()
    elif command -v sudo >/dev/null 2>&1; then sudo=(sudo -n)
    else die "$CHROMIUM is missing and this is not root (apt-get install chromium)"; fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
        || die "apt-get update failed"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null \
        || die "apt-get install chromium failed"
    [ -x "$CHROMIUM" ] || die "the chromium package did not install $CHROMIUM"
fi

# --- Node packages (pinned by package-lock.json) ---------------------------------------
command -v node >/dev/null 2>&1 || die "node not found (Debian: apt-get install nodejs npm; Node >= 20)"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 20 ? 1 : 0)' \
    || die "node $(node --version) is older than 20"
stamp="$here/node_modules/.package-lock.sha256"
want="$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    echo "browser: installing pinned packages from package-lock.json" >&2
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
    echo "$want" > "$stamp"
fi

# --- where the screenshots go ------------------------------------------------------------
target_dir="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$target_dir/browser"
out="$(cd "$target_dir/browser" && pwd)"
rm -f "$out"/*.png

# --- warden, hermetic, on an ephemeral port ---------------------------------------------
. "$root/scripts/provider.sh"
provider_setup browser
export WARDEN_LOG__LEVEL=info
provider_start || die "warden did not start"
echo "browser: warden pid $warden_pid, issuer $issuer, data $WARDEN_DATA_DIR" >&2

password="correct horse battery staple"
printf '%s\n' "$password" | "$warden" user create alice --password-stdin \
    --name "Alice Smith" --email alice@example.com --email-verified >/dev/null \
    || die "warden user create alice failed"
printf '%s\n' "$password" | "$warden" user create bob --password-stdin --name "Bob Jones" >/dev/null \
    || die "warden user create bob failed"

node "$here/flow.mjs" --warden "$warden" --issuer "$issuer" --out "$out" \
    --username alice --other-username bob --password "$password"
