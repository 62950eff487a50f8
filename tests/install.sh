#!/usr/bin/env bash
# make install and make uninstall of the build tree into temporary prefixes
# (prefix=DIR and DESTDIR=DIR): what lands where, corral.pc, the installed
# corral finding its installed modules, nothing left after the uninstall;
# then corral-mod's errors, shellcheck over corral-mod and groff over the man
# pages (each when the tool is installed). Run by make check.
set -uo pipefail

src="${CR_TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}"
build="${CR_TOP_BUILDDIR:-$src/build}"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/corral-install-test.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
failed=0

fail() {
    echo "FAIL: $*"
    failed=1
}

ok() {
    echo "ok $*"
}

# A make of its own, whatever the enclosing `make check` passes down.
mk() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES -u DESTDIR \
        make -s -C "$build" "$@" >"$tmp/make.log" 2>&1 || {
        echo "make $*:"
        tail -n 20 "$tmp/make.log"
        return 1
    }
}

# Files (and links) below a folder, one relative path a line.
files_in() {
    (cd "$1" 2>/dev/null && find . \( -type f -o -type l \) | sed 's|^\./||' | sort)
}

expected=(
    sbin/corral sbin/corralctl bin/corral-mod bin/corral-bench
    lib/corral/mpm_prefork.so lib/corral/mpm_worker.so lib/corral/mpm_event.so
    lib/corral/mod_hello.so lib/corral/mod_echo.so lib/corral/mod_static.so
    lib/corral/mod_delay.so
    include/corral/corral.h include/corral/types.h include/corral/request.h
    include/corral/module.h include/corral/mpm.h include/corral/log.h
    lib/pkgconfig/corral.pc etc/corral.conf etc/mime.types
    share/man/man8/corral.8 share/man/man5/corral.conf.5 share/man/man1/corral-mod.1
    share/man/man8/corralctl.8 lib/systemd/system/corral.service etc/logrotate.d/corral
    include/corral/status.h include/corral/work_queue.h
    share/corral/www/index.html
)

[ -f "$build/Makefile" ] || {
    echo "no Makefile in $build (set CR_TOP_BUILDDIR)"
    exit 1
}
# Up to date first: an install with prefix=DIR must build nothing with DIR
# compiled in.
mk all || exit 1

# ---- make install prefix=DIR ---------------------------------------------------

p="$tmp/prefix"
if mk install prefix="$p"; then
    missing=()
    for f in "${expected[@]}"; do
        [ -e "$p/$f" ] || missing+=("$f")
    done
    if [ ${#missing[@]} -eq 0 ]; then ok "install prefix=DIR"; else fail "install prefix=DIR: missing ${missing[*]}"; fi
    if ! [ -x "$p/bin/corral-mod" ] || ! [ -x "$p/sbin/corral" ]; then fail "corral or corral-mod not executable"; fi

    # corral.pc: the headers' folder, libconfig's flags, the module folder.
    pc=(env PKG_CONFIG_PATH="$p/lib/pkgconfig" pkg-config)
    if command -v pkg-config >/dev/null 2>&1; then
        cflags="$("${pc[@]}" --cflags corral)" || fail "pkg-config --cflags corral failed"
        want="-I$p/include $(pkg-config --cflags libconfig)"
        read -r -a got_words <<<"$cflags"
        read -r -a want_words <<<"$want"
        if [ "${got_words[*]}" = "${want_words[*]}" ]; then
            ok "corral.pc cflags"
        else
            fail "pkg-config --cflags corral: '$cflags', want '$want'"
        fi
        moduledir="$("${pc[@]}" --variable=moduledir corral)"
        if [ "$moduledir" = "$p/lib/corral" ]; then ok "corral.pc moduledir"; else fail "corral.pc moduledir: $moduledir"; fi
        grep -q '^Requires:.*libconfig' "$p/lib/pkgconfig/corral.pc" || fail "corral.pc does not require libconfig"
    fi

    # No build-tree or configured path in what was installed for this prefix.
    for f in bin/corral-mod lib/pkgconfig/corral.pc etc/corral.conf; do
        grep -q '@[a-zA-Z_]*@' "$p/$f" && fail "$f keeps a @placeholder@: $(grep -o '@[a-zA-Z_]*@' "$p/$f" | head -1)"
    done
    grep -q "root = \"$p/share/corral/www\"" "$p/etc/corral.conf" || fail "the installed corral.conf does not serve $p/share/corral/www"

    if command -v shellcheck >/dev/null 2>&1 && ! out="$(shellcheck "$p/bin/corral-mod" 2>&1)"; then
        fail "shellcheck on the installed corral-mod: $out"
    fi

    # The installed corral, on the installed config, finds the installed
    # modules (the configured prefix is not $p).
    if out="$("$p/sbin/corral" -t -f "$p/etc/corral.conf" 2>&1)" && [[ "$out" == *"Syntax OK"* ]]; then
        ok "installed corral -t on the installed config"
    else
        fail "installed corral -t -f $p/etc/corral.conf: $out"
    fi
    if "$p/sbin/corral" -V | grep -qF "($p/lib/corral/mpm_prefork.so)" &&
        "$p/sbin/corral" -V | grep -qxF "  $p/lib/corral"; then
        ok "installed corral -V"
    else
        fail "installed corral -V does not list $p/lib/corral/mpm_prefork.so: $("$p/sbin/corral" -V)"
    fi

    # corral-mod -i installs where the installed corral looks.
    printf '%s\n' '#include <corral/corral.h>' \
        'static int h(cr_request *r) { (void)r; return 204; }' \
        '__attribute__((visibility("default"))) const cr_module cr_module_entry = {' \
        '    .magic = CR_MODULE_MAGIC, .abi = CR_MODULE_ABI, .name = "t", .handle = h };' >"$tmp/mod_t.c"
    if (cd "$tmp" && PKG_CONFIG_PATH="$p/lib/pkgconfig" "$p/bin/corral-mod" -i -n t2 -c mod_t.c >"$tmp/cm.log" 2>&1); then
        if [ -f "$p/lib/corral/mod_t2.so" ]; then ok "corral-mod -i -n t2 -c"; else fail "corral-mod -i did not write $p/lib/corral/mod_t2.so"; fi
        out="$("$p/sbin/corral" -t -f "$p/etc/corral.conf" -o 'modules=["t2"]' -o 'routes=({ path = "/"; module = "t2"; })' 2>&1)" ||
            fail "installed corral -t with mod_t2: $out"
        rm -f "$p/lib/corral/mod_t2.so" "$tmp/mod_t.so"
    else
        fail "corral-mod -i -n t2 -c mod_t.c: $(cat "$tmp/cm.log")"
    fi

    # The bundled MPMs need nothing but the installed headers: each builds
    # out of tree as a new MPM the installed corral loads.
    for m in prefork worker event; do
        so="$p/lib/corral/mpm_ot$m.so"
        # shellcheck disable=SC2046 # pkg-config's flags are words
        if cc -shared -fPIC -std=gnu11 -Wall -Wextra -Werror -pthread \
            $(PKG_CONFIG_PATH="$p/lib/pkgconfig" pkg-config --cflags corral) \
            -o "$so" "$src/mpm/$m/$m.c" >"$tmp/mpm.log" 2>&1; then
            if out="$("$p/sbin/corral" -t -f "$p/etc/corral.conf" -o "mpm=ot$m" 2>&1)"; then
                ok "out-of-tree MPM from mpm/$m/$m.c"
            else
                fail "installed corral -t with mpm_ot$m.so: $out"
            fi
        else
            fail "mpm/$m/$m.c does not build with the installed headers alone: $(head -5 "$tmp/mpm.log")"
        fi
        rm -f "$so"
    done

    if mk uninstall prefix="$p"; then
        left="$(files_in "$p")"
        if [ -z "$left" ]; then ok "uninstall prefix=DIR"; else fail "left after make uninstall prefix=DIR: $left"; fi
    else
        fail "make uninstall prefix=DIR"
    fi
else
    fail "make install prefix=DIR"
fi

# ---- make install DESTDIR=DIR ----------------------------------------------------

d="$tmp/destdir"
configured="$(sed -n 's/^prefix = //p' "$build/Makefile")"
if mk install DESTDIR="$d"; then
    missing=()
    for f in "${expected[@]}"; do
        [ -e "$d$configured/$f" ] || missing+=("$f")
    done
    if [ ${#missing[@]} -eq 0 ]; then ok "install DESTDIR=DIR"; else fail "install DESTDIR=DIR: missing ${missing[*]} below $d$configured"; fi
    # Staged: the files name the final prefix, not the staging folder.
    grep -qx "prefix=$configured" "$d$configured/lib/pkgconfig/corral.pc" ||
        fail "staged corral.pc: $(grep '^prefix=' "$d$configured/lib/pkgconfig/corral.pc")"
    grep -q "$d" "$d$configured/bin/corral-mod" "$d$configured/etc/corral.conf" &&
        fail "staged files name the DESTDIR folder"
    if mk uninstall DESTDIR="$d"; then
        left="$(files_in "$d")"
        if [ -z "$left" ]; then ok "uninstall DESTDIR=DIR"; else fail "left after make uninstall DESTDIR=DIR: $left"; fi
    else
        fail "make uninstall DESTDIR=DIR"
    fi
else
    fail "make install DESTDIR=DIR"
fi

# ---- corral-mod's errors -----------------------------------------------------------

cm="$src/support/corral-mod"
# Runs corral-mod expecting exit 1 and a message matching $2.
cm_fails() {
    local what="$1" want="$2" out rc
    shift 2
    out="$("$@" 2>&1)"
    rc=$?
    if [ $rc -eq 1 ] && grep -qE "$want" <<<"$out"; then
        ok "corral-mod: $what"
    else
        fail "corral-mod $what: exit $rc, output '$out' (want exit 1 and /$want/)"
    fi
}
nopc=(env PKG_CONFIG_PATH="$tmp/none" PKG_CONFIG_LIBDIR="$tmp/none")
touch "$tmp/mod_x.c"
cm_fails "no arguments" "usage" "$cm"
cm_fails "-c without sources" "needs at least one C source" "$cm" -c
cm_fails "a source that is not there" "cannot read" "$cm" -c "$tmp/nope.c"
cm_fails "unknown option" "unknown option '--frobnicate'" "$cm" -c "$tmp/mod_x.c" --frobnicate
cm_fails "missing compiler" "compiler '/nonexistent/cc'.*not found" env CC=/nonexistent/cc "$cm" -c "$tmp/mod_x.c"
cm_fails "corral.pc not found" "cannot find corral.*PKG_CONFIG_PATH" "${nopc[@]}" "$cm" -c "$tmp/mod_x.c"
cm_fails "-q corral.pc not found" "PKG_CONFIG_PATH" "${nopc[@]}" "$cm" -q moduledir
cm_fails "-q unknown variable" "unknown variable 'nope'" "$cm" -q nope
cm_fails "bad -n" "module name" "$cm" -c "$tmp/mod_x.c" -n Bad-Name
if "$cm" -h | grep -q "^usage: corral-mod"; then ok "corral-mod -h"; else fail "corral-mod -h"; fi

# ---- lint ---------------------------------------------------------------------------

if command -v shellcheck >/dev/null 2>&1; then
    if out="$(shellcheck "$cm" "$src/tests/install.sh" 2>&1)"; then ok "shellcheck"; else fail "shellcheck: $out"; fi
else
    echo "# shellcheck not installed: skipped"
fi
if command -v groff >/dev/null 2>&1; then
    for page in "$build"/man/corral.8 "$build"/man/corral.conf.5 "$build"/man/corral-mod.1 \
        "$build"/man/corralctl.8; do
        [ -f "$page" ] || {
            fail "$page not built"
            continue
        }
        out="$(groff -man -Tutf8 -ww -z "$page" 2>&1)"
        if [ -z "$out" ]; then ok "groff -ww $(basename "$page")"; else fail "groff -ww $page: $out"; fi
    done
else
    echo "# groff not installed: skipped"
fi

exit $failed
