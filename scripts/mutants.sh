#!/usr/bin/env bash
# Mutation testing of one source file: which changes to its code does no test notice?
#
#   scripts/mutants.sh PATH [CARGO_TEST_ARG...]
#
# Installs cargo-mutants when it is missing, mutates only PATH and runs the project's test
# command (`cargo test --locked`, narrowed by any CARGO_TEST_ARGs, e.g. `--lib`) against each
# mutant, one at a time (a 2-core builder has no room for more) with a per-mutant timeout
# (MUTANTS_TIMEOUT seconds, default 300). Mutants are built in a copy of the tree but with our
# target directory, so only Warden itself recompiles. Prints the missed mutants (the tests
# still pass with the code changed) and those that timed out; the full report stays in
# MUTANTS_OUT (default $CARGO_TARGET_DIR/mutants/<path>). Exits as cargo-mutants does: 0 when
# every mutant was caught, 2 when some were missed, 3 on timeouts, 4 when the unmutated tree
# fails its tests.
#
# MUTANTS_ARGS adds cargo-mutants options, e.g. MUTANTS_ARGS="--exclude-re estimate_bits".
# Do not build in the same target directory while this runs: cargo serializes the builds.
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

CARGO_TARGET_DIR="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
export CARGO_TARGET_DIR
out="${MUTANTS_OUT:-$CARGO_TARGET_DIR/mutants/${file//\//_}}"
mkdir -p "$out"

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
