# Module loading: the ABI check, a handler that crashes its child, and a
# module built out of tree with the installed corral-mod.
#
# Read into suite.py's namespace (Server, configtest, get, check, BUILDDIR,
# ...). The test modules (tests/modules/: mod_badabi, mpm_badabi, mod_crash)
# are built by `make check` into $CR_TOP_BUILDDIR/tests/modules.
# pylint: disable=undefined-variable

MODULES_DIR = os.path.join(BUILDDIR, "tests", "modules")

# Sanitizer lines a deliberate SIGSEGV may log under ASan or TSan builds.
SEGV_REPORT_RE = re.compile(
    r"\bSEGV\b|DEADLYSIGNAL|can not provide additional info|\bsignal 11\b|Segmentation fault")


def modules_version_info():
    """(module ABI, MPM ABI, sanitized) of the corral under test, from -V."""
    try:
        p = subprocess.run([CORRAL, "-V"], stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=30 * SLOW, check=False)
    except subprocess.TimeoutExpired:
        raise Fail("%s -V did not finish" % CORRAL) from None
    out = p.stdout.decode("utf-8", "replace")
    m = re.search(r"module ABI (\d+), MPM ABI (\d+)", out)
    check(p.returncode == 0 and m, "corral -V: exit %d, no ABI versions in %s"
          % (p.returncode, short(out, 400)))
    sanitized = bool(re.search(r"\b(?:sanitizers|tsan)=yes\b", out))
    return int(m.group(1)), int(m.group(2)), sanitized


def modules_need(*names):
    for name in names:
        path = os.path.join(MODULES_DIR, name)
        check(os.path.exists(path), "%s not built: run `make check TESTS=` in %s" % (path, BUILDDIR))


def modules_procs_with(marker):
    """Live processes whose command line contains marker."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if marker.encode() in cmd and pid_alive(int(name)):
            found.append(int(name))
    return found


@test(None)
def test_modules_abi_mismatch(_):
    """A module or an MPM built for another ABI is refused at start, with its
    name, its file and both versions: by corral -t (exit 1), and by a start
    in the foreground or as a daemon, which leaves no process behind."""
    modules_need("mod_badabi.so", "mpm_badabi.so")
    mod_abi, mpm_abi, _ = modules_version_info()
    check(mod_abi != 99 and mpm_abi != 99, "this corral has ABI 99: the test modules prove nothing")
    so = os.path.join(MODULES_DIR, "mod_badabi.so")
    want = ("module 'badabi' (%s) was built for module ABI 99, this corral has ABI %d: "
            "rebuild it with corral-mod" % (so, mod_abi))
    opts = ["module_path=" + MODULES_DIR, 'modules=["hello", "badabi"]',
            'routes=({ path = "/hello"; module = "hello"; })']

    rc, out, err = configtest(CONF, ["mpm=" + MPM] + opts)
    check(rc == 1, "corral -t with mod_badabi: exit %d, want 1; output %s" % (rc, short(out + err, 400)))
    check(want in err, "corral -t with mod_badabi: stderr %s\nwant it to contain %s"
          % (short(err, 600), want))
    check("Syntax OK" not in out, "corral -t with mod_badabi said Syntax OK")

    mpm_so = os.path.join(MODULES_DIR, "mpm_badabi.so")
    want_mpm = ("MPM 'badabi' (%s) was built for MPM ABI 99, this corral has ABI %d: "
                "rebuild it with corral-mod" % (mpm_so, mpm_abi))
    rc, out, err = configtest(CONF, ["mpm=badabi", "module_path=" + MODULES_DIR])
    check(rc == 1 and want_mpm in err, "corral -t -o mpm=badabi: exit %d, stderr %s\nwant exit 1 and %s"
          % (rc, short(err, 600), want_mpm))

    srv = Server(MPM, opts, label="badabi")
    srv.port = free_port()
    try:
        for foreground in (True, False):
            argv = srv.argv()
            if not foreground:
                i = argv.index("-D")
                del argv[i:i + 2]
            how = "in the foreground" if foreground else "as a daemon"
            try:
                p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                   cwd=srv.tmp, timeout=30 * SLOW, start_new_session=True,
                                   check=False)
            except subprocess.TimeoutExpired:
                raise Fail("corral with mod_badabi %s still running after %.0f s"
                           % (how, 30 * SLOW)) from None
            err = p.stderr.decode("utf-8", "replace")
            check(p.returncode == 1, "corral with mod_badabi %s: exit %d, want 1; stderr %s"
                  % (how, p.returncode, short(err, 400)))
            check(want in err, "corral with mod_badabi %s: stderr %s\nwant it to contain %s"
                  % (how, short(err, 600), want))
            crashes = [line for line in err.splitlines() if CRASH_RE.search(line)]
            check(not crashes, "corral with mod_badabi %s: %s" % (how, "\n".join(crashes)))
            time.sleep(0.2 * SLOW)
            left = modules_procs_with(srv.tmp)
            check(not left, "processes left after a refused start %s: %s" % (how, left))
            check(not os.path.exists(srv.pidfile), "pidfile written by a refused start %s" % how)
            check(port_refuses(srv.port), "port %d accepts after a refused start %s" % (srv.port, how))
    finally:
        srv.cleanup()


def modules_wait_death(srv, offset, deadline):
    """Waits for the error log to say, past offset, that a child died
    unasked -> (pid, how), how being "signal N" or "status N"."""
    pat = re.compile(rb"child (\d+) exited (?:on signal (\d+)|with status (\d+))")
    while True:
        try:
            with open(srv.error_log, "rb") as f:
                f.seek(offset)
                m = pat.search(f.read())
        except FileNotFoundError:
            m = None
        if m:
            how = "signal " + m.group(2).decode() if m.group(2) else "status " + m.group(3).decode()
            return int(m.group(1)), how
        check(srv.alive(), "the master exited after a child crashed\n" + srv.logs())
        if time.monotonic() > deadline:
            raise Fail("no child death in the error log\n" + srv.logs())
        time.sleep(0.05)


@test(None)
def test_modules_crash(_):
    """A handler that dereferences NULL: the client sees the connection
    closed with no response, the master logs the child's death with its
    signal and replaces it, and /hello is served all along."""
    modules_need("mod_crash.so")
    _, _, sanitized = modules_version_info()
    opts = fresh_opts() + [
        "module_path=" + MODULES_DIR, 'modules=["hello", "crash"]',
        'routes=({ path = "/crash"; module = "crash"; }, { path = "/hello"; module = "hello"; })']
    srv = Server(MPM, opts, label="crash")
    core = resource.getrlimit(resource.RLIMIT_CORE)
    try:
        # No core files from the children that crash on purpose.
        resource.setrlimit(resource.RLIMIT_CORE, (0, core[1]))
        try:
            srv.start()
        finally:
            resource.setrlimit(resource.RLIMIT_CORE, core)
        srv.wait_children(2)
        for n in range(1, 4):
            seen = set(srv.seen) | srv.children()
            offset = os.path.getsize(srv.error_log)
            with Conn(srv.port) as c:
                c.send(req("/crash"))
                check(c.wait_closed(IO_TIMEOUT), "GET /crash #%d: connection still open" % n)
                check(not c.buf, "GET /crash #%d: got a response %s" % (n, short(c.buf)))
            for i in range(5):  # the other children serve meanwhile
                r = get(srv.port, "/hello")
                expect_eq((r.status, r.body), (200, b"Hello, World!"),
                          "GET /hello #%d after crash #%d" % (i + 1, n))
            deadline = time.monotonic() + 15 * SLOW
            victim, how = modules_wait_death(srv, offset, deadline)
            # Under ASan or TSan, the sanitizer's SEGV handler makes the child
            # exit after its report (status 1 for ASan, 66 for TSan).
            check(how == "signal 11" or (sanitized and how.startswith("status ")),
                  "crash #%d: child %d exited with %s, want signal 11%s\n%s"
                  % (n, victim, how, " or a sanitizer's exit status" if sanitized else "",
                     srv.logs()))
            check(victim != srv.pid, "the master itself crashed")
            while True:  # replaced: a new child, the victim gone
                kids = srv.children()
                if kids - seen and not pid_alive(victim) and len(kids) >= 2:
                    break
                check(srv.alive(), "the master exited after crash #%d\n%s" % (n, srv.logs()))
                if time.monotonic() > deadline:
                    raise Fail("crash #%d: child %d not replaced after %.0f s (children %s)\n%s"
                               % (n, victim, 15 * SLOW, sorted(kids), srv.logs()))
                time.sleep(0.05)
        for i in range(10):
            r = get(srv.port, "/hello")
            expect_eq((r.status, r.body), (200, b"Hello, World!"), "GET /hello #%d at the end" % (i + 1))

        # The crashes were on purpose: their reports are consumed here, and
        # must be about SIGSEGV only.
        reports = srv.new_crash_reports()
        check(re.search(r"\bsignal 11\b|Segmentation fault|Sanitizer: SEGV", reports),
              "the crash reports do not mention SIGSEGV:\n%s\n%s" % (reports, srv.logs()))
        other = [line for line in reports.splitlines() if not SEGV_REPORT_RE.search(line)]
        check(not other, "crash reports beside the expected SIGSEGV:\n" + "\n".join(other))
        rc = srv.stop()
        check(rc == 0, "master exit status %s after SIGTERM\n%s" % (rc, srv.logs()))
        crashes = srv.new_crash_reports()
        check(not crashes, "crash reports after the test's own:\n" + crashes)
    finally:
        srv.cleanup()


MODULES_OOT_SOURCE = r"""/* Built out of tree by the integration suite with the installed corral-mod. */
#include <corral/corral.h>

static const char oot_body[] = "built by corral-mod\n";

static int oot_handle(cr_request *r)
{
    if (cr_response_header(r, "X-Built-By", "corral-mod") != CR_OK ||
        cr_response_header(r, "Content-Type", "text/plain") != CR_OK)
        return 500;
    if (cr_response_write_ref(r, oot_body, sizeof(oot_body) - 1) != CR_OK)
        return 500;
    return CR_DONE;
}

__attribute__((visibility("default"))) const cr_module cr_module_entry = {
    .magic = CR_MODULE_MAGIC,
    .abi = CR_MODULE_ABI,
    .name = "oot",
    .version = "1.0",
    .handle = oot_handle,
};
"""


def modules_run(argv, what, env=None, cwd=None, timeout=60):
    """Runs argv -> (stdout, stderr); Fail with its output unless it exits 0."""
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=env, cwd=cwd,
                           timeout=timeout * SLOW, check=False)
    except subprocess.TimeoutExpired:
        raise Fail("%s: %s did not finish in %.0f s" % (what, " ".join(argv), timeout * SLOW)) from None
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    if p.returncode != 0:
        tail = "\n".join((out + err).strip().splitlines()[-15:])
        raise Fail("%s: %s exited %d\n%s" % (what, " ".join(argv), p.returncode, tail))
    return out, err


class InstalledServer(Server):
    """A Server running another corral binary (an installed one)."""

    binary = None

    def argv(self):
        a = Server.argv(self)
        a[0] = self.binary
        return a


@test(None)
def test_modules_out_of_tree(_):
    """make install into a temporary prefix; build a module in an empty
    folder with the installed corral-mod alone; the installed corral, on the
    installed config, loads it (and its own MPM and modules) and serves it;
    make uninstall leaves no file behind."""
    check(os.path.exists(os.path.join(BUILDDIR, "Makefile")), "no Makefile in %s" % BUILDDIR)
    tmp = tempfile.mkdtemp(prefix="corral-it-oot-")
    prefix = os.path.join(tmp, "prefix")
    work = os.path.join(tmp, "work")
    os.mkdir(work)
    os.chmod(tmp, 0o755)
    # A make of its own: nothing from an enclosing `make check`.
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "DESTDIR")}
    make = ["make", "-s", "-C", BUILDDIR]
    srv = None
    try:
        # Up to date first, so that the install with another prefix builds
        # nothing with that prefix compiled in.
        modules_run(make + ["all"], "build", env=env, timeout=100)
        modules_run(make + ["install", "prefix=" + prefix], "make install", env=env)
        for rel in ("sbin/corral", "bin/corral-mod", "lib/pkgconfig/corral.pc",
                    "include/corral/corral.h", "include/corral/module.h",
                    "lib/corral/mpm_%s.so" % MPM, "lib/corral/mod_hello.so",
                    "etc/corral.conf", "etc/mime.types", "share/man/man8/corral.8",
                    "share/man/man5/corral.conf.5", "share/man/man1/corral-mod.1"):
            check(os.path.exists(os.path.join(prefix, rel)), "make install did not install %s" % rel)

        mod_env = dict(env, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
        corral_mod = os.path.join(prefix, "bin", "corral-mod")
        out, _ = modules_run([corral_mod, "-q", "moduledir", "includedir", "cflags"],
                             "corral-mod -q", env=mod_env)
        lines = out.splitlines()
        check(len(lines) == 3, "corral-mod -q moduledir includedir cflags: %s" % short(out))
        expect_eq(lines[0], os.path.join(prefix, "lib", "corral"), "corral-mod -q moduledir")
        expect_eq(lines[1], os.path.join(prefix, "include"), "corral-mod -q includedir")
        check("-I" + os.path.join(prefix, "include") in lines[2].split(),
              "corral-mod -q cflags: %s lacks -I%s/include" % (lines[2], prefix))

        with open(os.path.join(work, "mod_oot.c"), "w") as f:
            f.write(MODULES_OOT_SOURCE)
        out, err = modules_run([corral_mod, "-c", "mod_oot.c"], "corral-mod -c", env=mod_env, cwd=work)
        check(os.path.exists(os.path.join(work, "mod_oot.so")),
              "corral-mod -c mod_oot.c wrote no mod_oot.so:\n%s%s" % (out, err))
        check("warning" not in err.lower(), "corral-mod -c mod_oot.c warned:\n" + err)
        for flag in ("-fPIC", "-shared", "-fvisibility=hidden", "-Wall", "-Wextra"):
            check(flag in out.split(), "corral-mod -c: %s not in the command %s" % (flag, short(out)))
        # -i -n: installed beside the bundled modules, under another name.
        modules_run([corral_mod, "-i", "-n", "oot2", "mod_oot.so"], "corral-mod -i", env=mod_env,
                    cwd=work)
        check(os.path.exists(os.path.join(prefix, "lib", "corral", "mod_oot2.so")),
              "corral-mod -i -n oot2 did not install lib/corral/mod_oot2.so")

        corral = os.path.join(prefix, "sbin", "corral")
        conf = os.path.join(prefix, "etc", "corral.conf")
        out, _ = modules_run([corral, "-t", "-f", conf, "-o", "mpm=" + MPM],
                             "the installed corral -t on the installed config", env=env)
        check("Syntax OK" in out, "installed corral -t: %s" % short(out))

        srv = InstalledServer(MPM, [
            "module_path=" + work, 'modules=["hello", "oot", "oot2"]',
            'routes=({ path = "/oot2"; module = "oot2"; }, { path = "/oot"; module = "oot"; },'
            ' { path = "/hello"; module = "hello"; })'], label="oot")
        srv.binary = corral
        srv.conf = conf
        srv.start()
        for path in ("/oot", "/oot2/x"):
            r = get(srv.port, path)
            expect_eq((r.status, r.body), (200, b"built by corral-mod\n"), "GET %s" % path)
            expect_eq(r.header("x-built-by"), "corral-mod", "GET %s X-Built-By" % path)
        r = get(srv.port, "/hello")
        expect_eq((r.status, r.body), (200, b"Hello, World!"), "GET /hello (installed mod_hello)")
        rc = srv.stop()
        check(rc == 0, "installed corral: exit status %s after SIGTERM\n%s" % (rc, srv.logs()))
        crashes = srv.new_crash_reports()
        check(not crashes, "crash reports in the installed corral's logs:\n" + crashes)

        os.unlink(os.path.join(prefix, "lib", "corral", "mod_oot2.so"))
        modules_run(make + ["uninstall", "prefix=" + prefix], "make uninstall", env=env)
        left = []
        for root, _, files in os.walk(prefix):
            left.extend(os.path.relpath(os.path.join(root, f), prefix) for f in files)
        check(not left, "files left after make uninstall: %s" % ", ".join(sorted(left)))
    finally:
        if srv is not None:
            srv.cleanup()
        if not os.environ.get("CR_TEST_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
