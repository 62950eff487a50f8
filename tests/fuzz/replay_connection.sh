#!/bin/sh
# Replays the connection fuzzer's corpus through the harness built without
# libFuzzer (part of `make check`): every input goes over a real connection
# to the event child and the blocking driver of this build, and must pass.
set -u
top_builddir=${CR_TOP_BUILDDIR:-.}
top_srcdir=${CR_TOP_SRCDIR:-.}
replay="$top_builddir/tests/fuzz/fuzz_connection_replay"
corpus="$top_srcdir/tests/fuzz/corpus_connection"

if [ ! -x "$replay" ]; then
    echo "fuzz replay: $replay not built" >&2
    exit 1
fi
exec "$replay" "$corpus"
