# The module tutorial, docs/modules.md, followed word for word: its files
# written into an empty folder in the order the page gives them, its
# commands run (corral-mod and corral from a `make install` into a
# temporary prefix), its curl commands played over a socket and their
# output compared with the page's, its log lines looked for in the server's
# error log; then the claims its prose makes about suspended requests and
# streams. The conventions are described at the end of docs/modules.md.
#
# Read into suite.py's namespace (Server, Conn, req, check, BUILDDIR, ...).
# pylint: disable=undefined-variable

import shlex
import urllib.parse

DOCS_PAGE = os.path.join(SRCDIR, "docs", "modules.md")
DOCS_FOLDER = "/home/you/greet"  # the reader's folder, as the page prints it
DOCS_PORT = 8080                 # the port of the page's URLs and outputs
DOCS_MPM = "event"               # the MPM the page's config and outputs name
DOCS_CURL_UA = "curl/7.88.1"     # the User-Agent of the page's curl outputs
DOCS_LOG_RE = re.compile(r"^\[[^\]]*\] \[(\w+)\] \[pid \d+\] (.*)$")


def docs_blocks(text):
    """The fenced blocks of a markdown text -> [(lang, attrs, body, line)];
    attrs from the info string's words: k=v, or a bare word -> True."""
    blocks, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        m = re.match(r"^```(\S*)(.*)$", lines[i])
        if not m:
            i += 1
            continue
        start, attrs = i + 1, {}
        for word in m.group(2).split():
            k, eq, v = word.partition("=")
            attrs[k] = v if eq else True
        i += 1
        while i < len(lines) and lines[i] != "```":
            i += 1
        check(i < len(lines), "docs/modules.md:%d: fenced block never closed" % start)
        blocks.append((m.group(1), attrs, "\n".join(lines[start:i]), start))
        i += 1
    return blocks


def docs_commands(body, where):
    """A console block -> [(command, expected output)]."""
    cmds = []
    for line in body.split("\n"):
        if line.startswith("$ "):
            cmds.append([line[2:], []])
        else:
            check(cmds, "%s: output before any $ command" % where)
            cmds[-1][1].append(line)
    return [(c, "".join(l + "\n" for l in out)) for c, out in cmds]


def docs_run(argv, what, env, cwd=None, timeout=60):
    """Runs argv -> (returncode, stdout, stderr), bounded in time."""
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=env, cwd=cwd,
                           timeout=timeout * SLOW, check=False)
    except subprocess.TimeoutExpired:
        raise Fail("%s: %s did not finish in %.0f s"
                   % (what, " ".join(argv), timeout * SLOW)) from None
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    crashes = [line for line in (out + err).splitlines() if CRASH_RE.search(line)]
    check(not crashes, "%s: crash or sanitizer report:\n%s" % (what, (out + err).strip()))
    return p.returncode, out, err


def docs_run_ok(argv, what, env, cwd=None, timeout=60):
    rc, out, err = docs_run(argv, what, env, cwd, timeout)
    if rc != 0:
        tail = "\n".join((out + err).strip().splitlines()[-15:])
        raise Fail("%s: %s exited %d\n%s" % (what, " ".join(argv), rc, tail))
    return out, err


class DocsServer(Server):
    """The installed corral started with the page's own arguments, plus
    overrides: the MPM under test, a free port, logs and pidfile in its
    temporary folder."""

    def __init__(self, binary, args, opts=(), label="docs"):
        Server.__init__(self, MPM, opts, label=label)
        self.binary = binary
        self.args = list(args)

    def argv(self):
        return ([self.binary] + self.args +
                ["-o", "mpm=" + self.mpm,
                 "-o", 'listen=["%s:%d"]' % (HOST, self.port),
                 "-o", 'log.error="%s"' % self.error_log,
                 "-o", 'log.access="%s"' % self.access_log,
                 "-o", 'pidfile="%s"' % self.pidfile] +
                [a for o in self.opts for a in ("-o", o)])


class DocsWalk:
    """Follows the page in order, in one folder, as its reader would."""

    def __init__(self, work, prefix, env):
        self.work = work
        self.corral = os.path.join(prefix, "sbin", "corral")
        self.corral_mod = os.path.join(prefix, "bin", "corral-mod")
        self.env = env
        self.srv = None
        self.servers = []
        self.files = set()    # files the page had us write
        self.paths = set()    # first segment of each path curl asked for
        self.built = set()    # sources built with corral-mod
        self.configtests = []  # (args, exit status)
        self.logs_seen = 0
        self.abi_checked = False

    # ---- text ----

    def expect(self, text):
        """The page's output as this run should print it."""
        text = text.replace(DOCS_FOLDER, os.path.realpath(self.work))
        if self.srv is not None:
            text = text.replace("127.0.0.1:%d" % DOCS_PORT, "127.0.0.1:%d" % self.srv.port)
            text = text.replace("localhost:%d" % DOCS_PORT, "localhost:%d" % self.srv.port)
        text = re.sub(r"\bmpm(:?) %s\b" % DOCS_MPM, lambda m: "mpm%s %s" % (m.group(1), MPM), text)
        return re.sub(r"(?m)^Date: .*$", "Date: (any)", text)

    def compare(self, where, cmd, got, want):
        got = re.sub(r"(?m)^Date: .*$", "Date: (any)", got)
        if got != self.expect(want):
            raise Fail("%s: `%s` printed\n%s\n--- the page says (after rewriting)\n%s"
                       % (where, cmd, got.rstrip("\n"), self.expect(want).rstrip("\n")))

    # ---- blocks ----

    def write_file(self, name, body, where):
        check(re.match(r"^[\w.-]+$", name), "%s: file name %r is not a plain name" % (where, name))
        with open(os.path.join(self.work, name), "w") as f:
            f.write(body + "\n")
        self.files.add(name)

    def console(self, body, attrs, where):
        restore = self.abi_swap(attrs, where) if "abi" in attrs else None
        try:
            for cmd, want in docs_commands(body, where):
                self.command(cmd, want, where)
        finally:
            if restore is not None:
                os.replace(restore, os.path.join(self.work, "mod_%s.so" % attrs["module"]))

    def command(self, cmd, want, where):
        stdin = None
        if " | " in cmd:  # only `seq A B | ...`
            left, cmd = cmd.split(" | ", 1)
            words = left.split()
            check(words[0] == "seq" and len(words) == 3 and all(w.isdigit() for w in words[1:]),
                  "%s: cannot follow the pipe `%s |`" % (where, left))
            stdin = "".join("%d\n" % i for i in range(int(words[1]), int(words[2]) + 1)).encode()
        argv = shlex.split(cmd)
        if argv[0] == "corral-mod":
            check(want == "", "%s: output given for `%s` (corral-mod's is not compared)"
                  % (where, cmd))
            out, err = docs_run_ok([self.corral_mod] + argv[1:], cmd, self.env, cwd=self.work)
            check("warning" not in (out + err).lower(),
                  "%s: `%s` warned:\n%s" % (where, cmd, out + err))
            self.built.update(a for a in argv[1:] if a.endswith(".c"))
        elif argv[0] == "corral" and "-t" in argv:
            rc, out, err = docs_run([self.corral] + argv[1:] + ["-o", "mpm=" + MPM], cmd, self.env,
                                    cwd=self.work)
            self.compare(where, cmd, out + err, want)
            ok = "Syntax OK" in want
            check(rc == (0 if ok else 1),
                  "%s: `%s` exited %d, want %d" % (where, cmd, rc, 0 if ok else 1))
            self.configtests.append((cmd, rc))
        elif argv[0] == "corral" and argv[-2:] == ["-D", "FOREGROUND"]:
            check(want == "", "%s: output given for `%s`" % (where, cmd))
            args = list(argv[1:])
            check("-f" in args, "%s: `%s` names no config" % (where, cmd))
            i = args.index("-f") + 1
            args[i] = os.path.join(self.work, args[i])
            self.stop()
            self.srv = DocsServer(self.corral, args, label="docs%d" % len(self.servers))
            self.servers.append(self.srv)
            self.srv.start()
        elif argv[0] == "curl":
            check(self.srv is not None and self.srv.alive(),
                  "%s: `%s` with no server running" % (where, cmd))
            self.compare(where, cmd, self.curl(argv, stdin, where), want)
        else:
            raise Fail("%s: the test cannot follow `%s`" % (where, cmd))

    def log_lines(self, body, where):
        check(self.srv is not None, "%s: log lines with no server running" % where)
        for line in body.split("\n"):
            m = DOCS_LOG_RE.match(line)
            check(m, "%s: %r is not a log line" % (where, line))
            want = (m.group(1), m.group(2))
            deadline = time.monotonic() + IO_TIMEOUT
            while True:
                try:
                    logged = read_file(self.srv.error_log).decode("utf-8", "replace").splitlines()
                except FileNotFoundError:
                    logged = []
                found = [DOCS_LOG_RE.match(l) for l in logged]
                if any(f and (f.group(1), f.group(2)) == want for f in found):
                    break
                if time.monotonic() > deadline:
                    raise Fail("%s: the error log has no line\n%s\n%s"
                               % (where, "[%s] %s" % want, self.srv.logs()))
                time.sleep(0.05)
            self.logs_seen += 1

    def abi_swap(self, attrs, where):
        """Puts a mod_NAME.so built for another ABI in place (by rename, so
        that a running server keeps its copy); returns the saved original."""
        name = attrs.get("module")
        check(isinstance(name, str) and re.match(r"^\w+$", name),
              "%s: abi= needs module=NAME" % where)
        src = os.path.join(self.work, "mod_%s.c" % name)
        text = read_file(src).decode()
        check(text.count(".abi = CR_MODULE_ABI") == 1,
              "%s: mod_%s.c does not set .abi = CR_MODULE_ABI once" % (where, name))
        old = os.path.join(self.work, "abi")
        os.makedirs(old, exist_ok=True)
        with open(os.path.join(old, "mod_%s.c" % name), "w") as f:
            f.write(text.replace(".abi = CR_MODULE_ABI", ".abi = %s" % attrs["abi"]))
        docs_run_ok([self.corral_mod, "-c", "mod_%s.c" % name],
                    "corral-mod for ABI " + attrs["abi"], self.env, cwd=old)
        so = os.path.join(self.work, "mod_%s.so" % name)
        saved = os.path.join(old, "saved.so")
        os.replace(so, saved)
        os.replace(os.path.join(old, "mod_%s.so" % name), so)
        self.abi_checked = True
        return saved

    # ---- curl over a socket ----

    def curl(self, argv, stdin, where):
        """Plays a curl command line: sends what curl sends, returns what
        curl -s prints (the body; with -i the head first)."""
        flags, headers = set(), []
        data = method = upload = url = max_time = None
        i = 1
        while i < len(argv):
            a = argv[i]
            if a.startswith("-") and not a.startswith("--") and len(a) > 1:
                for j, ch in enumerate(a[1:]):
                    if ch in "sSNi0":
                        flags.add(ch)
                        continue
                    check(ch in "dHXmT", "%s: curl option -%s not understood" % (where, ch))
                    value = a[j + 2:]
                    if not value:
                        i += 1
                        check(i < len(argv), "%s: curl -%s needs a value" % (where, ch))
                        value = argv[i]
                    if ch == "d":
                        data = value.encode()
                    elif ch == "H":
                        headers.append(value)
                    elif ch == "X":
                        method = value
                    elif ch == "m":
                        max_time = float(value)
                    else:
                        check(value == "-" and stdin is not None,
                              "%s: only `... | curl -T -`" % where)
                        upload = stdin
                    break
            else:
                check(not a.startswith("-") and url is None,
                      "%s: curl argument %r not understood" % (where, a))
                url = a
            i += 1
        u = urllib.parse.urlsplit(url or "")
        check(u.scheme == "http" and u.port == DOCS_PORT
              and u.hostname in ("127.0.0.1", "localhost"),
              "%s: curl URL %r is not http://127.0.0.1:%d/..." % (where, url, DOCS_PORT))
        target = (u.path or "/") + ("?" + u.query if u.query else "")
        self.paths.add("/" + (u.path or "/").split("/")[1])
        lines = ["Host: %s:%d" % (u.hostname, self.srv.port), "User-Agent: " + DOCS_CURL_UA,
                 "Accept: */*"] + headers
        body = b""
        if data is not None:
            method = method or "POST"
            lines += ["Content-Length: %d" % len(data),
                      "Content-Type: application/x-www-form-urlencoded"]
            body = data
        elif upload is not None:
            method = method or "PUT"
            lines += ["Transfer-Encoding: chunked", "Expect: 100-continue"]
        method = method or "GET"
        version = "1.0" if "0" in flags else "1.1"
        head = ("%s %s HTTP/%s\r\n" % (method, target, version) +
                "".join(l + "\r\n" for l in lines) + "\r\n").encode("latin-1")
        timeout = max_time if max_time is not None else IO_TIMEOUT
        with Conn(self.srv.port, timeout=timeout) as c:
            try:
                c.send(head + body)
                r = None
                if upload is not None:
                    try:  # as curl: wait up to a second for 100 Continue
                        r = c.read_response(timeout=1.0)
                    except Fail as e:
                        if "timed out" not in str(e):
                            raise
                    if r is None or r.status == 100:
                        pieces = [upload[k:k + 16384] for k in range(0, len(upload), 16384)]
                        c.send(chunked(pieces))
                        r = None
                if r is None:
                    r = c.read_response(head=method == "HEAD", timeout=timeout)
            except Fail as e:
                if max_time is not None and "timed out" in str(e):
                    return ""  # curl -s gives up quietly
                raise
        out = r.body.decode("utf-8", "replace")
        if "i" in flags:
            out = ("%s %d %s\n" % (r.version, r.status, r.reason) +
                   "".join("%s: %s\n" % hv for hv in r.header_lines) + "\n" + out)
            date = r.header("date")
            check(date is not None and IMF_DATE_RE.match(date),
                  "%s: Date header %r" % (where, date))
        return out

    # ---- servers ----

    def stop(self):
        """Stops the running server: exit status 0, no crash reports."""
        srv, self.srv = self.srv, None
        if srv is None:
            return
        check(srv.alive(), "the server exited before its stop\n" + srv.logs())
        rc = srv.stop()
        check(rc == 0, "the server's exit status after SIGTERM: %s\n%s" % (rc, srv.logs()))
        crashes = srv.new_crash_reports()
        check(not crashes, "crash reports in the server's logs:\n" + crashes)

    def cleanup(self):
        for s in self.servers:
            s.cleanup()


def docs_read_chunk(c, deadline):
    """One chunk of a chunked body: its bytes, or None for the last."""
    line = c.read_line(deadline, "a chunk size").decode("latin-1")
    check(re.match(r"^[0-9a-fA-F]+$", line), "bad chunk size line %s" % short(line))
    n = int(line, 16)
    if n == 0:
        expect_eq(c.read_line(deadline, "the end of the trailer"), b"", "after the last chunk")
        return None
    data = c.read_exact(n, deadline, "chunk data")
    expect_eq(c.read_exact(2, deadline, "CRLF after a chunk"), b"\r\n", "chunk end")
    return data


def docs_prose_claims(walk):
    """What the page says in words, on the server of its last step."""
    port = walk.srv.port
    # later: answers no sooner than asked (the core's timers run on a
    # coarse clock: a few ms of slack).
    t0 = time.monotonic()
    r = get(port, "/later?ms=300&name=Ann")
    took = time.monotonic() - t0
    expect_eq((r.status, r.body), (200, b"Hello, Ann, 300 ms later\n"), "GET /later?ms=300")
    check(took >= 0.28, "/later?ms=300 answered after %.3f s" % took)

    # ticker: each line goes out when written, as a chunk.
    with Conn(port, timeout=10 * SLOW) as c:
        c.send(req("/ticks?n=3&ms=400"))
        r = c.read_response(head=True)  # the head; the chunks are read below
        expect_eq((r.status, r.header("transfer-encoding"), r.header("content-length")),
                  (200, "chunked", None), "/ticks head")
        deadline = time.monotonic() + 10 * SLOW
        first = docs_read_chunk(c, deadline)
        t_first = time.monotonic()
        expect_eq(first, b"tick 1 of 3\n", "/ticks first chunk")
        check(b"0\r\n\r\n" not in c.buf, "/ticks: the whole stream came at once")
        chunks = [first]
        while True:
            data = docs_read_chunk(c, deadline)
            if data is None:
                break
            chunks.append(data)
        expect_eq(b"".join(chunks), b"tick 1 of 3\ntick 2 of 3\ntick 3 of 3\n", "/ticks body")
        gap = time.monotonic() - t_first
        check(gap >= 0.75, "/ticks: the last line came %.3f s after the first" % gap)
        c.send(req("/greet"))  # the connection goes on after a stream
        expect_eq(c.read_response().body, b"Hello, World\n", "GET /greet after a stream")


def docs_slots_claim(walk):
    """With two handler slots, ten requests suspended for 500 ms: prefork
    and worker keep a slot per request (five rounds, 2.5 s), event keeps
    none (one round)."""
    slots = {
        "prefork": ["mpm_prefork.start=1", "mpm_prefork.min_spare=1", "mpm_prefork.max_spare=1",
                    "mpm_prefork.max_workers=2"],
        "worker": ["mpm_worker.processes=1", "mpm_worker.threads=2", "mpm_worker.max_workers=2",
                   "mpm_worker.min_spare_threads=0", "mpm_worker.max_spare_threads=2"],
        "event": ["mpm_event.processes=1", "mpm_event.threads=1"],
    }
    if MPM not in slots:
        return
    srv = DocsServer(walk.corral, ["-f", os.path.join(walk.work, "greet.conf"), "-D", "FOREGROUND"],
                     slots[MPM], label="docs-slots")
    walk.servers.append(srv)
    walk.srv = srv
    srv.start()
    n, ms = 10, 500
    conns = []
    try:
        t0 = time.monotonic()
        for i in range(n):
            c = Conn(srv.port, timeout=20 * SLOW)
            conns.append(c)
            # Closed after the answer: an idle keep-alive connection would
            # hold a prefork or worker slot too.
            c.send(req("/later?ms=%d&name=n%d" % (ms, i), headers=["Connection: close"]))
        for i, c in enumerate(conns):
            r = c.read_response()
            expect_eq((r.status, r.body), (200, b"Hello, n%d, %d ms later\n" % (i, ms)),
                      "suspended request %d" % i)
        took = time.monotonic() - t0
    finally:
        for c in conns:
            c.close()
    if MPM == "event":
        check(took < n * ms / 2000.0, "event, one thread: %d requests of %d ms took %.2f s, as if "
              "each held the thread" % (n, ms, took))
    else:
        check(took >= 3 * ms / 1000.0, "%s, two slots: %d requests of %d ms took only %.2f s"
              % (MPM, n, ms, took))
    walk.stop()


@test(None)
def test_docs_modules_tutorial(_):
    check(os.path.exists(DOCS_PAGE), "no %s" % DOCS_PAGE)
    check(os.path.exists(os.path.join(BUILDDIR, "Makefile")), "no Makefile in %s" % BUILDDIR)
    tmp = tempfile.mkdtemp(prefix="corral-it-docs-")
    os.chmod(tmp, 0o755)
    prefix = os.path.join(tmp, "prefix")
    work = os.path.join(tmp, "greet")
    os.mkdir(work)
    # A make of its own (nothing from an enclosing `make check`), and
    # corral-mod finding its installation by itself, as the page has it.
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "DESTDIR",
                        "PKG_CONFIG_PATH", "CFLAGS", "CPPFLAGS", "LDFLAGS", "CC")}
    env["PATH"] = "%s/bin:%s/sbin:%s" % (prefix, prefix, env.get("PATH", "/usr/bin:/bin"))
    make = ["make", "-s", "-C", BUILDDIR]
    walk = DocsWalk(work, prefix, env)
    try:
        docs_run_ok(make + ["all"], "build", env, timeout=100)
        docs_run_ok(make + ["install", "prefix=" + prefix], "make install", env, timeout=100)
        text = read_file(DOCS_PAGE).decode("utf-8")
        for lang, attrs, body, line in docs_blocks(text):
            where = "docs/modules.md:%d" % line
            if isinstance(attrs.get("file"), str):
                walk.write_file(attrs["file"], body, where)
            elif lang == "console":
                walk.console(body, attrs, where)
            elif lang == "text" and attrs.get("log"):
                walk.log_lines(body, where)

        # The page still walks through everything it promises.
        for name in ("mod_greet.c", "greet.conf", "bad.conf", "mod_inspect.c", "motd.txt",
                     "mod_later.c", "mod_ticker.c"):
            check(name in walk.files, "the page no longer gives %s" % name)
        for name in ("mod_greet.c", "mod_inspect.c", "mod_later.c", "mod_ticker.c"):
            check(name in walk.built, "the page no longer builds %s" % name)
        for path in ("/greet", "/hola", "/inspect", "/motd", "/upload", "/later", "/ticks"):
            check(path in walk.paths, "the page no longer shows a request to %s" % path)
        check(any(rc == 1 for _, rc in walk.configtests), "the page shows no refused config")
        check(walk.logs_seen >= 2, "the page shows %d log lines, want the abort's" % walk.logs_seen)
        check(walk.abi_checked, "the page shows no ABI mismatch")
        check(len(walk.servers) >= 5 and walk.srv is not None and walk.srv.alive(),
              "the page starts %d servers; the last one is not running" % len(walk.servers))

        docs_prose_claims(walk)
        walk.stop()
        docs_slots_claim(walk)
    finally:
        walk.cleanup()
        if not os.environ.get("CR_TEST_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
