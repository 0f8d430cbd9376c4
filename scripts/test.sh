#!/usr/bin/env bash
# Runs every test: unit and integration tests (in-process servers over real HTTP, the storage
# suite on SQLite and, when reachable, PostgreSQL), then the black-box conformance check with
# independent Python OAuth/JOSE libraries against the built binary, then the real login and
# consent pages in headless Chromium (screenshots in $target_dir/browser), then the case
# studies under examples/ against the built binary.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked
target_dir="${CARGO_TARGET_DIR:-target}"
bash conformance/run.sh "$target_dir/debug/warden"
bash tests/browser/run.sh "$target_dir/debug/warden"
bash examples/run-all.sh "$target_dir/debug/warden"
