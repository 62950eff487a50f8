#!/bin/sh
# Replays the parser fuzzer's corpus through the harness built without
# libFuzzer (part of `make check`): every seed and kept finding must pass.
set -u
top_builddir=${CR_TOP_BUILDDIR:-.}
top_srcdir=${CR_TOP_SRCDIR:-.}
replay="$top_builddir/tests/fuzz/fuzz_http_parser_replay"
corpus="$top_srcdir/tests/fuzz/corpus"

if [ ! -x "$replay" ]; then
    echo "fuzz replay: $replay not built" >&2
    exit 1
fi
exec "$replay" "$corpus"
