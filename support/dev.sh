#!/usr/bin/env bash
# Developer entry point: installs the Debian build dependencies that are
# missing, builds, and then runs the demo server or the tests.
#
#   support/dev.sh run     build, then serve etc/corral.conf on 127.0.0.1:8080
#   support/dev.sh test    build, run `make check`, then again with ASan+UBSan, then
#                          the integration suite of the threaded MPMs with TSan
#   support/dev.sh build   just build (into build/)
set -euo pipefail

top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs="$(nproc 2>/dev/null || echo 2)"
packages=(build-essential autoconf automake pkg-config libevent-dev libconfig-dev check
          libjansson-dev python3 curl gnuplot-nox groff-base shellcheck wrk)

install_deps() {
    local missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "dev.sh: installing ${missing[*]}" >&2
    local sudo=()
    [ "$(id -u)" -ne 0 ] && sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
}

# build DIR [configure args...]: an out-of-tree build, configured once.
build() {
    local dir="$1"
    shift
    if [ ! -x "$top/configure" ] || [ "$top/configure.ac" -nt "$top/configure" ] ||
        [ "$top/Makefile.am" -nt "$top/Makefile.in" ]; then
        (cd "$top" && autoreconf -fi)
    fi
    mkdir -p "$top/$dir"
    cd "$top/$dir"
    if [ ! -f Makefile ] || [ "$top/configure" -nt Makefile ]; then
        "$top/configure" --enable-werror "$@"
    fi
    make -j"$jobs"
}

check() {
    local dir="$1"
    shift
    build "$dir" "$@"
    run_check
}

# run_check [make args...]: `make check` in the current build folder.
run_check() {
    local rc=0
    make -j"$jobs" check "$@" || rc=$?
    # The runners' own closing lines, so a log reader sees what ran.
    grep -h -E "^[0-9]+%: Checks: " tests/unit/*.log 2>/dev/null || true
    # (the test driver appends its own PASS/FAIL line after the suite's total)
    grep -h -E "^[0-9]+ passed, [0-9]+ failed" tests/integration/run.sh.log 2>/dev/null | tail -n 1 || true
    if [ "$rc" -ne 0 ]; then
        cat test-suite.log >&2 || true
        return 1
    fi
}

# check_threaded DIR [configure args...]: only the integration suite, and
# only under the MPMs that run threads (every one built but prefork): the
# ones ThreadSanitizer has something to say about.
check_threaded() {
    local dir="$1"
    shift
    build "$dir" "$@"
    local so name mpms=()
    for so in mpm/mpm_*.so; do
        [ -e "$so" ] || continue
        name="${so#mpm/mpm_}"
        name="${name%.so}"
        [ "$name" = prefork ] || mpms+=("$name")
    done
    if [ ${#mpms[@]} -eq 0 ]; then
        echo "dev.sh: no threaded MPM in $dir; nothing to run" >&2
        return 0
    fi
    # Unit results of an earlier full run here would read as this run's.
    rm -f tests/unit/*.log
    CR_MPMS="$(IFS=,; echo "${mpms[*]}")" run_check TESTS=tests/integration/run.sh
}

cmd="${1:-}"
case "$cmd" in
run)
    install_deps
    (build build)
    cd "$top"
    echo "dev.sh: serving http://127.0.0.1:8080/ (Ctrl-C stops)" >&2
    exec "$top/build/corral" -f "$top/etc/corral.conf" -D FOREGROUND
    ;;
build)
    install_deps
    build build
    ;;
test)
    install_deps
    (check build)
    echo "dev.sh: again with AddressSanitizer + UndefinedBehaviorSanitizer" >&2
    (check build-asan --enable-sanitizers)
    echo "dev.sh: the threaded MPMs again with ThreadSanitizer" >&2
    (check_threaded build-tsan --enable-tsan)
    ;;
*)
    echo "usage: support/dev.sh run|test|build" >&2
    exit 2
    ;;
esac
