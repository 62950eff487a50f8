#!/usr/bin/env bash
# Developer entry point: installs the Debian build dependencies that are
# missing, builds, and then runs the demo server or the tests.
#
#   support/dev.sh run     build, then serve etc/corral.conf on 127.0.0.1:8080
#   support/dev.sh test    build, run `make check`, then again with ASan+UBSan, then
#                          run both libFuzzer harnesses for a while (clang), then
#                          the integration suite and the connection fuzz corpus
#                          of the threaded MPMs with TSan
#   support/dev.sh build   just build (into build/)
set -euo pipefail

top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs="$(nproc 2>/dev/null || echo 2)"
packages=(build-essential autoconf automake pkg-config libevent-dev libconfig-dev check
          libjansson-dev python3 curl gnuplot-nox groff-base shellcheck wrk
          clang libclang-rt-dev)

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
# ones ThreadSanitizer has something to say about; and the connection fuzz
# corpus, which runs the event child and the blocking driver on threads.
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
    CR_MPMS="$(IFS=,; echo "${mpms[*]}")" run_check \
        TESTS="tests/integration/run.sh tests/fuzz/replay_connection.sh"
}

# Whether clang can build a libFuzzer binary here.
have_libfuzzer() {
    local t ok=1
    command -v clang >/dev/null 2>&1 || return 1
    t="$(mktemp -d)"
    printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' >"$t/t.c"
    if clang -fsanitize=fuzzer,address "$t/t.c" -o "$t/t" >/dev/null 2>&1; then
        ok=0
    fi
    rm -rf "$t"
    return "$ok"
}

# fuzz DIR: builds both libFuzzer harnesses there (make fuzz: clang, ASan,
# UBSan) and runs each for CR_FUZZ_SECONDS (default 60) on a copy of its
# corpus, so the repository is not written. A crash, a sanitizer report, a
# broken invariant or a hang (-timeout) fails; the inputs that did are
# kept in DIR/fuzz-findings/.
fuzz() {
    local dir="$1" secs="${CR_FUZZ_SECONDS:-60}" work name corpus rc=0
    if ! have_libfuzzer; then
        echo "dev.sh: no clang with libFuzzer (apt-get install clang libclang-rt-dev);" \
            "skipping the fuzz stage" >&2
        return 0
    fi
    build "$dir" --enable-sanitizers
    make -j"$jobs" fuzz
    work="$(mktemp -d)"
    for name in http_parser connection; do
        corpus="$top/tests/fuzz/corpus"
        [ "$name" = connection ] && corpus="$top/tests/fuzz/corpus_connection"
        mkdir -p "$work/$name/corpus" "$work/$name/findings"
        cp "$corpus"/* "$work/$name/corpus/"
        local dict=()
        [ -f "$top/tests/fuzz/$name.dict" ] && dict=("-dict=$top/tests/fuzz/$name.dict")
        echo "dev.sh: fuzz_$name for ${secs}s" >&2
        if "tests/fuzz/fuzz_$name" -max_total_time="$secs" -timeout=30 "${dict[@]}" \
            -artifact_prefix="$work/$name/findings/" "$work/$name/corpus" \
            >"$work/$name/log" 2>&1; then
            grep -h -E "^Done [0-9]+ runs" "$work/$name/log" >&2 || true
        else
            mkdir -p fuzz-findings
            cp "$work/$name/findings"/* fuzz-findings/ 2>/dev/null || true
            tail -n 60 "$work/$name/log" >&2
            echo "dev.sh: fuzz_$name failed; its input is in $dir/fuzz-findings/" >&2
            rc=1
        fi
    done
    rm -rf "$work"
    return "$rc"
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
    echo "dev.sh: the libFuzzer harnesses for a while" >&2
    (fuzz build-asan)
    echo "dev.sh: the threaded MPMs again with ThreadSanitizer" >&2
    (check_threaded build-tsan --enable-tsan)
    ;;
*)
    echo "usage: support/dev.sh run|test|build" >&2
    exit 2
    ;;
esac
