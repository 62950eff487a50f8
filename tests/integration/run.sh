#!/usr/bin/env bash
# Runs the integration suite against the real server once per MPM: those in
# CR_MPMS (comma separated) or every mpm_*.so the build produced.
set -uo pipefail

src="${CR_TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
build="${CR_TOP_BUILDDIR:-$src/build}"
export CR_TOP_SRCDIR="$src" CR_TOP_BUILDDIR="$build"

mpms=()
if [ -n "${CR_MPMS:-}" ]; then
    IFS=, read -r -a mpms <<<"$CR_MPMS"
else
    for so in "$build"/mpm/mpm_*.so; do
        [ -e "$so" ] || continue
        name="${so##*/mpm_}"
        mpms+=("${name%.so}")
    done
fi
if [ ${#mpms[@]} -eq 0 ]; then
    echo "run.sh: no MPM found under $build/mpm" >&2
    exit 1
fi

# A hard bound on each suite, should something hang despite its own timeouts.
limit="$(awk -v s="${CR_TEST_SLOW:-1}" 'BEGIN { printf "%d", 600 * s }')"
bound=()
if command -v timeout >/dev/null 2>&1; then
    bound=(timeout -k 15 "$limit")
fi

passed=0 failed=0 skipped=0 status=0 results=()
for mpm in "${mpms[@]}"; do
    out="$(mktemp)"
    ${bound[@]+"${bound[@]}"} python3 "$src/tests/integration/suite.py" --mpm "$mpm" 2>&1 | tee "$out"
    rc="${PIPESTATUS[0]}"
    [ "$rc" -eq 0 ] || status=1
    line="$(grep -E "^MPM $mpm: [0-9]+ passed, [0-9]+ failed" "$out" | tail -1)"
    rm -f "$out"
    if [ -z "$line" ]; then
        echo "run.sh: the suite for $mpm ended without a result line" >&2
        results+=("MPM $mpm: the suite did not finish")
        failed=$((failed + 1))
        status=1
        continue
    fi
    p="$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")"
    f="$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")"
    s=0
    if [[ "$line" =~ ([0-9]+)\ skipped ]]; then
        s="${BASH_REMATCH[1]}"
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        line="$line, but exit status $rc"
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
    results+=("$line")
done
echo
printf '%s\n' "${results[@]}"
echo "$passed passed, $failed failed, $skipped skipped"
exit "$status"
