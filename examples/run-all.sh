#!/usr/bin/env bash
# Runs every case study: each examples/*/run.sh with the warden binary, one after another.
#
#   examples/run-all.sh PATH/TO/warden
#
# Exits non-zero when any of them fails (after running them all), naming the failures.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[ $# -ge 1 ] || { echo "usage: $0 PATH/TO/warden" >&2; exit 2; }
warden="$1"
[ -f "$warden" ] && [ -x "$warden" ] || { echo "examples: not an executable file: $warden" >&2; exit 2; }
warden="$(cd "$(dirname "$warden")" && pwd)/$(basename "$warden")"

failed=()
count=0
for script in "$here"/*/run.sh; do
    [ -e "$script" ] || continue
    name="$(basename "$(dirname "$script")")"
    count=$((count + 1))
    echo "=== examples/$name"
    if ! bash "$script" "$warden"; then
        failed+=("$name")
    fi
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "examples: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "examples: $count passed"
