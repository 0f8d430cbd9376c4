#!/usr/bin/env bash
# Mutation testing: which changes to the code does no test notice?
#
#   scripts/mutants.sh FILE [FILTERSET]   mutate FILE, run the tests FILTERSET selects
#   scripts/mutants.sh --targets [GREP]   every line of scripts/mutants.targets (matching GREP)
#
# FILTERSET is a cargo-nextest filterset over the unit tests and the integration binary, e.g.
# 'test(/^oauth::(rfc7009|revoke)/)'; without one every test runs. scripts/mutants.targets
# names, per security-relevant file, the tests that concern it.
#
# One mutant at a time (a 2-core builder has no room for more). Nearly all the time goes to
# compiling, so two passes keep it affordable: when FILE has unit tests of its own (at least
# MUTANTS_UNIT_FIRST_MIN, default 3) and the filterset selects them, each mutant is first
# built as the library's unit tests alone (one compile) and tried against them; only the
# mutants they miss are built again with the integration binary and tried against both
# (cargo-mutants --iterate). nextest stops at the first failing test. About 10 s per mutant
# caught by a unit test and 20 s otherwise on a 2-core machine.
#
# Mutants build in $CARGO_TARGET_DIR/mutants/target (seeded once from ours, so only Warden
# recompiles; in our own target dir a mutant's artifacts, newer than our sources, would pass
# for fresh builds of them). Reports stay in MUTANTS_OUT (default
# $CARGO_TARGET_DIR/mutants/<file>); a rerun skips the mutants caught before, so delete it to
# start over. The tree must pass its tests: the baseline run is skipped.
# MUTANTS_TIMEOUT (seconds per test run, default 120) and MUTANTS_ARGS (more cargo-mutants
# options, e.g. MUTANTS_ARGS="--re assertion_verifies") tune it.
# Prints the missed and timed-out mutants. Exits 0 when every mutant was caught, 2 when some
# were missed, 3 on timeouts (the largest code of any file with --targets).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ]; then
    echo "usage: $0 FILE [FILTERSET] | $0 --targets [GREP]" >&2
    exit 64
fi

if ! cargo mutants --version >/dev/null 2>&1; then
    echo "installing cargo-mutants" >&2
    cargo install --locked cargo-mutants
fi
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "installing cargo-nextest" >&2
    cargo install --locked cargo-nextest
fi

base="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
export CARGO_TARGET_DIR="$base/mutants/target"
if [ ! -d "$CARGO_TARGET_DIR/debug" ] && [ -d "$base/debug" ]; then
    mkdir -p "$CARGO_TARGET_DIR"
    cp -a "$base/debug" "$CARGO_TARGET_DIR/"
fi

# mutate FILE FILTERSET: both passes over one file; returns cargo-mutants' exit code.
mutate() {
    local file="$1" filter="$2"
    if [ ! -f "$file" ]; then
        echo "$0: no such file: $file" >&2
        return 66
    fi
    local out="${MUTANTS_OUT:-$base/mutants/${file//\//_}}"
    mkdir -p "$out"
    local common=(--file "$file" --jobs 1 --baseline skip --iterate --test-tool nextest
        --timeout "${MUTANTS_TIMEOUT:-120}" --build-timeout "${MUTANTS_BUILD_TIMEOUT:-600}"
        --cargo-arg=--locked --output "$out")
    # shellcheck disable=SC2206
    local extra=(${MUTANTS_ARGS:-})
    # A filterset nextest cannot parse fails every test run, which cargo-mutants would count
    # as every mutant caught: check it (and that it selects tests) on the unmutated tree.
    local select=()
    [ -n "$filter" ] && select=(-E "$filter")
    local listed
    if ! listed="$(cargo nextest list --locked --lib --test integration "${select[@]}" 2>&1)"; then
        echo "$listed" | tail -20 >&2
        echo "$0: the tests for $file cannot be listed (filterset: $filter)" >&2
        return 65
    fi
    local module="${file#src/}"
    module="${module%.rs}"
    module="${module%/mod}"
    module="${module//\//::}::"
    local units
    units="$(grep -c "^warden ${module}" <<<"$listed" || true)"
    echo "== $file: $(grep -c '^warden' <<<"$listed" || true) tests selected, $units of them unit tests of ${module%::}"
    # A unit-only run that selects none of them passes (a missed mutant, tried again in pass 2).
    select+=(--no-tests=warn)
    if [ "$units" -ge "${MUTANTS_UNIT_FIRST_MIN:-3}" ]; then
        echo "== $file: pass 1, unit tests"
        cargo mutants "${common[@]}" "${extra[@]}" --cargo-arg=--lib -- "${select[@]}" || true
    fi
    echo "== $file: pass 2, unit and integration tests"
    local rc=0
    cargo mutants "${common[@]}" "${extra[@]}" --cargo-arg=--lib --cargo-arg=--test=integration \
        -- "${select[@]}" || rc=$?
    local report="$out/mutants.out"
    for kind in missed timeout; do
        if [ -s "$report/$kind.txt" ]; then
            echo "== $kind mutants in $file:"
            cat "$report/$kind.txt"
        fi
    done
    echo "== report: $report"
    return "$rc"
}

if [ "$1" = "--targets" ]; then
    worst=0
    while read -r file filter; do
        case "$file" in '' | '#'*) continue ;; esac
        if [ -n "${2:-}" ] && ! grep -q -- "$2" <<<"$file"; then continue; fi
        rc=0
        mutate "$file" "$filter" || rc=$?
        [ "$rc" -gt "$worst" ] && worst=$rc
    done <scripts/mutants.targets
    exit "$worst"
fi
mutate "$1" "${2:-}"
