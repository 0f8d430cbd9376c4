#!/usr/bin/env bash
# Mutation testing of one source file: which changes to its code does no test notice?
#
#   scripts/mutants.sh PATH [CARGO_TEST_ARG...]
#
# Installs cargo-mutants when it is missing, mutates only PATH and runs the project's test
# command (`cargo test --locked`, narrowed by any CARGO_TEST_ARGs, e.g. `--lib`) against each
# mutant, one at a time (a 2-core builder has no room for more) with a per-mutant timeout
# (MUTANTS_TIMEOUT seconds, default 300). Mutants are built in a copy of the tree, in
# $CARGO_TARGET_DIR/mutants/target (seeded from ours, so only Warden itself recompiles).
# Prints the missed mutants (the tests still pass with the code changed) and those that timed
# out; the full report stays in MUTANTS_OUT (default $CARGO_TARGET_DIR/mutants/<path>).
# Exits as cargo-mutants does: 0 when every mutant was caught, 2 when some were missed, 3 on
# timeouts, 4 when the unmutated tree fails its tests.
#
# MUTANTS_ARGS adds cargo-mutants options, e.g. MUTANTS_ARGS="--exclude-re estimate_bits".
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ]; then
    echo "usage: $0 PATH [CARGO_TEST_ARG...]" >&2
    exit 64
fi
file="$1"
shift
if [ ! -f "$file" ]; then
    echo "$0: no such file: $file" >&2
    exit 66
fi

if ! cargo mutants --version >/dev/null 2>&1; then
    echo "installing cargo-mutants" >&2
    cargo install --locked cargo-mutants
fi

base="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
out="${MUTANTS_OUT:-$base/mutants/${file//\//_}}"
mkdir -p "$out"
# Mutants build in a target directory of their own: they are compiled from a copy of the
# tree, and in ours their artifacts, newer than our sources, would pass for fresh builds of
# them. It is seeded once from ours, so dependencies are not built again.
export CARGO_TARGET_DIR="$base/mutants/target"
if [ ! -d "$CARGO_TARGET_DIR/debug" ] && [ -d "$base/debug" ]; then
    mkdir -p "$CARGO_TARGET_DIR"
    cp -a "$base/debug" "$CARGO_TARGET_DIR/"
fi

rc=0
cargo mutants \
    --file "$file" \
    --jobs 1 \
    --timeout "${MUTANTS_TIMEOUT:-300}" \
    --build-timeout "${MUTANTS_BUILD_TIMEOUT:-600}" \
    --cargo-arg=--locked \
    --output "$out" \
    ${MUTANTS_ARGS:-} \
    -- "$@" || rc=$?

report="$out/mutants.out"
for kind in missed timeout; do
    if [ -s "$report/$kind.txt" ]; then
        echo "== $kind mutants in $file:"
        cat "$report/$kind.txt"
    fi
done
if [ -f "$report/outcomes.json" ]; then
    echo "== report: $report"
fi
exit "$rc"
