# corralctl against real servers that it starts (daemonized) from a config
# in a temporary folder: own port, pidfile, scoreboard and logs in that
# folder. Every command and exit status, under the suite's MPM. Read into
# suite.py's namespace: check, expect_eq, get, Conn, req, write_config,
# children_of, pid_alive, proc_stat, free_port, BUILDDIR, SLOW and @test
# come from there.

import json
import stat
import struct

CORRALCTL = os.path.join(BUILDDIR, "corralctl")
CTL_TIMEOUT = 60.0 * SLOW  # one corralctl run; stop and restart wait for processes
CTL_SLOTS = set("_SRWKCG.")
CTL_MODULES = ["hello", "echo", "static", "delay", "status"]  # those of etc/corral.conf


class Ctl:
    """A config in a temporary folder and corralctl run on it. Remembers
    every master and child it saw, so that cleanup() can stop whatever is
    left by PID (checking the start time, so a reused PID is left alone)."""

    def __init__(self, label):
        check(os.access(CORRALCTL, os.X_OK), "no corralctl at %s (set CR_TOP_BUILDDIR)" % CORRALCTL)
        self.tmp = tempfile.mkdtemp(prefix="corral-ctl-%s-%s-" % (MPM, label))
        os.chmod(self.tmp, 0o755)
        self.logs = os.path.join(self.tmp, "logs")
        os.mkdir(self.logs)
        self.conf = os.path.join(self.tmp, "corral.conf")
        self.pidfile = os.path.join(self.logs, "corral.pid")
        self.scoreboard = os.path.join(self.logs, "corral.scoreboard")
        self.error_log = os.path.join(self.logs, "error.log")
        self.access_log = os.path.join(self.logs, "access.log")
        self.port = free_port()
        self.seen = {}  # pid -> start time, masters and children
        self.write()

    def write(self, extra=""):
        """The demo config on our port with the suite's MPM and few
        processes; its relative paths (logs/...) land in our folder."""
        write_config(self.conf, "hello")
        text = read_file(self.conf).decode()
        text = text.replace('"127.0.0.1:8080"', '"127.0.0.1:%d"' % self.port)
        text = text.replace('mpm = "prefork";', 'mpm = "%s";' % MPM)
        text = text.replace("start = 4;", "start = 2;")
        if "mpm_event" not in text:
            text += "\nmpm_event = { processes = 2; threads = 4; };\n"
        with open(self.conf, "w") as f:
            f.write(text + extra)

    def run(self, *args, expect=None, conf=None):
        """corralctl -f CONF ARGS... -> (status, stdout, stderr)."""
        argv = [CORRALCTL, "-f", conf or self.conf] + list(args)
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, cwd=self.tmp,
                               timeout=CTL_TIMEOUT, check=False, env=dict(os.environ, TZ="UTC"))
        except subprocess.TimeoutExpired:
            raise Fail("%s did not finish in %.0f s" % (" ".join(argv[1:]), CTL_TIMEOUT)) from None
        finally:
            self.note()
        out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
        crashes = [line for line in (out + err).splitlines() if CRASH_RE.search(line)]
        check(not crashes, "corralctl %s: crash report:\n%s" % (" ".join(args), "\n".join(crashes)))
        if expect is not None:
            check(p.returncode == expect, "corralctl %s: exit %d, want %d\nstdout: %s\nstderr: %s\n%s"
                  % (" ".join(args), p.returncode, expect, out.strip(), err.strip(), self.logs_tail()))
        return p.returncode, out, err

    def master(self):
        """The PID in the pidfile, or None."""
        try:
            return int(read_file(self.pidfile).decode().strip())
        except (FileNotFoundError, ValueError):
            return None

    def note(self):
        pid = self.master()
        if pid is None or not pid_alive(pid):
            return
        for p in {pid} | children_of(pid):
            st = proc_stat(p)
            if st and p not in self.seen:
                self.seen[p] = st[2]

    def children(self, n=1):
        """The master's live children once there are at least n."""
        pid = self.master()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            kids = children_of(pid) if pid else set()
            if len(kids) >= n:
                self.note()
                return kids
            check(pid and pid_alive(pid), "no master running\n" + self.logs_tail())
            if time.monotonic() > deadline:
                raise Fail("master %s has %d children, want %d\n%s" % (pid, len(kids), n, self.logs_tail()))
            time.sleep(0.05)

    def status(self, full=False):
        _, out, _ = self.run("--json", "fullstatus" if full else "status", expect=0)
        try:
            return json.loads(out)
        except ValueError as e:
            raise Fail("status --json is not JSON (%s): %s" % (e, short(out, 400))) from None

    def logs_tail(self):
        try:
            lines = read_file(self.error_log).decode("utf-8", "replace").splitlines()
        except FileNotFoundError:
            return "(no error log)"
        return "--- error.log (last 15 lines)\n" + "\n".join(lines[-15:])

    def cleanup(self):
        try:
            pid = self.master()
            if pid is not None and pid in self.seen and pid_alive(pid):
                self.run("stop")
        except Fail:
            pass
        finally:
            deadline = time.monotonic() + 5.0 * SLOW
            for pid, start in self.seen.items():
                while True:
                    st = proc_stat(pid)
                    if st is None or st[2] != start or st[0] in "ZXx":
                        break
                    if time.monotonic() > deadline:
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                        break
                    time.sleep(0.05)
            if not os.environ.get("CR_TEST_KEEP"):
                shutil.rmtree(self.tmp, ignore_errors=True)


def ctl_start(ctl, *opts):
    """corralctl start; returns the master's PID once it serves /hello."""
    _, out, _ = ctl.run(*opts, "start", expect=0)
    pid = ctl.master()
    check(pid is not None and pid_alive(pid), "no live master in %s after start" % ctl.pidfile)
    check("started (pid %d)" % pid in out, "start printed %s, want the pid %d" % (short(out), pid))
    expect_eq(get(ctl.port, "/hello").body, b"Hello, World!", "GET /hello after corralctl start")
    return pid


def ctl_stopped(ctl, pid, kids):
    """Master and children gone, port closed, pidfile and scoreboard removed."""
    check(not pid_alive(pid), "master %d still running after corralctl stop" % pid)
    left = sorted(k for k in kids if pid_alive(k))
    check(not left, "children %s still running after corralctl stop" % left)
    check(port_refuses(ctl.port), "port %d still accepts connections" % ctl.port)
    check(not os.path.exists(ctl.pidfile), "pidfile %s left behind" % ctl.pidfile)
    check(not os.path.exists(ctl.scoreboard), "scoreboard %s left behind" % ctl.scoreboard)


def ctl_not_running(ctl, commands, why):
    for cmd in commands:
        _, _, err = ctl.run(cmd, expect=1)
        check("not running" in err and why in err,
              "corralctl %s: stderr %s, want 'not running' and %r" % (cmd, short(err, 300), why))


@test(None)
def test_corralctl_start_stop(_):
    """start (the -o overrides reach corral), already running, stop waits
    for every process, then not running; graceful starts a stopped server."""
    ctl = Ctl("startstop")
    try:
        pid = ctl_start(ctl, "-o", "log.level=debug")
        mode = stat.S_IMODE(os.stat(ctl.scoreboard).st_mode)
        check(mode == 0o600, "scoreboard mode %o, want 600" % mode)
        check(b"[debug]" in read_file(ctl.error_log), "-o log.level=debug did not reach corral")
        _, _, err = ctl.run("start", expect=1)
        check("already running (pid %d)" % pid in err, "second start: stderr %s" % short(err, 300))
        kids = ctl.children()
        _, out, _ = ctl.run("stop", expect=0)
        check("stopped (pid %d)" % pid in out, "stop printed %s" % short(out))
        ctl_stopped(ctl, pid, kids)
        ctl_not_running(ctl, ("stop", "status", "fullstatus", "graceful-stop", "reopen-logs"),
                        "no pidfile")

        _, out, _ = ctl.run("graceful", expect=0)  # as apachectl: starts it
        check("not running; starting it" in out, "graceful on a stopped server printed %s" % short(out))
        pid = ctl.master()
        expect_eq(get(ctl.port, "/hello").status, 200, "GET /hello after graceful started it")
        kids = ctl.children()
        ctl.run("stop", expect=0)
        ctl_stopped(ctl, pid, kids)
    finally:
        ctl.cleanup()


@test(None)
def test_corralctl_stale_pidfile(_):
    """A pidfile naming a dead process or a live one that is no corral
    master: reported as not running, never signalled, replaced by start."""
    ctl = Ctl("stale")
    sleeper = subprocess.Popen(["sleep", "120"], stdin=subprocess.DEVNULL)
    try:
        gone = subprocess.Popen(["true"])
        gone.wait()
        with open(ctl.pidfile, "w") as f:
            f.write("%d\n" % gone.pid)
        ctl_not_running(ctl, ("status", "stop"), "pid %d is not running" % gone.pid)
        _, _, err = ctl.run("start", expect=0)
        check("stale pidfile" in err and "pid %d is not running" % gone.pid in err,
              "start over a dead pid: stderr %s" % short(err, 300))
        check(ctl.master() not in (None, gone.pid), "pidfile not replaced: %s" % ctl.master())
        ctl.run("stop", expect=0)

        with open(ctl.pidfile, "w") as f:
            f.write("%d\n" % sleeper.pid)
        ctl_not_running(ctl, ("stop", "graceful-stop", "reopen-logs", "status"),
                        "pid %d is not a corral master" % sleeper.pid)
        _, _, err = ctl.run("start", expect=0)
        check("not a corral master" in err, "start over a foreign pid: stderr %s" % short(err, 300))
        pid = ctl.master()
        check(pid not in (None, sleeper.pid), "pidfile not replaced: %s" % pid)
        expect_eq(get(ctl.port, "/hello").status, 200, "GET /hello")
        check(sleeper.poll() is None, "the process named by the stale pidfile was signalled")
        ctl.run("stop", expect=0)
    finally:
        sleeper.kill()
        sleeper.wait()
        ctl.cleanup()


@test(None)
def test_corralctl_configtest(_):
    """configtest and -t: Syntax OK, or the error with file and line."""
    ctl = Ctl("configtest")
    try:
        for args in (("configtest",), ("-t",)):
            _, out, _ = ctl.run(*args, expect=0)
            check("Syntax OK" in out, "corralctl %s printed %s" % (args[0], short(out)))
        bad = os.path.join(ctl.tmp, "bad.conf")
        with open(bad, "w") as f:
            f.write('// line 3 is wrong\nlisten = [ "127.0.0.1:%d" ];\nno_such_key = 1;\n' % ctl.port)
        _, _, err = ctl.run("configtest", expect=1, conf=bad)
        check("bad.conf:3" in err and "no_such_key" in err,
              "configtest on bad.conf: stderr should name bad.conf:3 and the key: %s" % short(err, 300))
        _, _, err = ctl.run("-o", "timeouts.header=0", "configtest", expect=1)
        check("timeouts.header" in err, "a bad -o: stderr should name the key: %s" % short(err, 300))
        check(not os.path.exists(ctl.pidfile), "configtest started something")
    finally:
        ctl.cleanup()


def ctl_generation(ctl):
    return ctl.status()["server"]["generation"]


@test(None)
def test_corralctl_graceful_bad_config(_):
    """graceful and restart test the config first: a broken one is shown
    with file and line and nothing is signalled; a good one gives a new
    generation that serves."""
    ctl = Ctl("graceful")
    try:
        pid = ctl_start(ctl)
        old = ctl.children()
        expect_eq(ctl_generation(ctl), 1, "generation after start")
        log_before = read_file(ctl.error_log)
        lines = read_file(ctl.conf).decode().count("\n")
        ctl.write("\nno_such_key = 1;\n")
        for cmd in ("graceful", "restart"):
            _, _, err = ctl.run(cmd, expect=1)
            check("corral.conf:%d" % (lines + 2) in err and "no_such_key" in err,
                  "%s with a bad config: stderr should name corral.conf:%d: %s"
                  % (cmd, lines + 2, short(err, 300)))
            check("nothing was signalled" in err, "%s: stderr %s" % (cmd, short(err, 300)))
        time.sleep(0.5 * SLOW)
        check(pid_alive(pid), "master exited")
        gone = sorted(k for k in old if not pid_alive(k))
        check(not gone, "children %s exited although nothing was signalled" % gone)
        log_after = read_file(ctl.error_log)[len(log_before):]
        check(b"restart" not in log_after, "the master restarted: %s" % short(log_after, 300))
        expect_eq(get(ctl.port, "/hello").body, b"Hello, World!", "GET /hello after the refusals")
        expect_eq(ctl_generation(ctl), 1, "generation after the refusals")

        ctl.write()
        _, out, _ = ctl.run("graceful", expect=0)
        check("generation 2" in out, "graceful printed %s" % short(out))
        wait_new_generation_ctl(ctl, old)
        expect_eq(get(ctl.port, "/hello").status, 200, "GET /hello after graceful")
        _, out, _ = ctl.run("restart", expect=0)
        check("generation 3" in out, "restart printed %s" % short(out))
        expect_eq(get(ctl.port, "/hello").status, 200, "GET /hello after restart")
        expect_eq(ctl.master(), pid, "master pid after the restarts")
        ctl.run("stop", expect=0)
    finally:
        ctl.cleanup()


def wait_new_generation_ctl(ctl, old):
    deadline = time.monotonic() + 10 * SLOW
    while True:
        kids = children_of(ctl.master())
        if kids and not kids & old:
            ctl.note()
            return kids
        if time.monotonic() > deadline:
            raise Fail("old children %s still there after graceful (now %s)\n%s"
                       % (sorted(old & kids), sorted(kids), ctl.logs_tail()))
        time.sleep(0.1)


def ctl_retry(what, fn, timeout=5.0):
    deadline = time.monotonic() + timeout * SLOW
    while True:
        try:
            return fn()
        except Fail as e:
            if time.monotonic() > deadline:
                raise Fail("%s: %s" % (what, e)) from None
        time.sleep(0.1)


@test(None)
def test_corralctl_status(_):
    """status and fullstatus, text and --json, from the scoreboard: the
    children are the master's, counters grow, a request in flight shows."""
    ctl = Ctl("status")
    try:
        pid = ctl_start(ctl)

        def same_children():
            doc = ctl.status()
            expect_eq(doc["server"]["master_pid"], pid, "master_pid")
            expect_eq(doc["server"]["mpm"], MPM, "mpm")
            pids = {c["pid"] for c in doc["children"]}
            expect_eq(pids, children_of(pid), "children in status --json against the master's")
            for c in doc["children"]:
                check(c["state"] in ("running", "graceful", "starting"), "child state %s" % c["state"])
                check("threads" not in c, "status --json lists threads")
            return doc

        before = ctl_retry("status --json", same_children)
        _, text, _ = ctl.run("status", expect=0)
        check("mpm %s, master pid %d" % (MPM, pid) in text, "status text: %s" % short(text, 300))
        for c in before["children"]:
            check(re.search(r"^\s*%d\s+1\s+running\s" % c["pid"], text, re.M),
                  "status text has no line for child %d: %s" % (c["pid"], short(text, 600)))

        n = 10
        for i in range(n):
            expect_eq(get(ctl.port, "/hello").status, 200, "GET /hello #%d" % (i + 1))

        def grew():
            got = ctl.status()["server"]["requests"] - before["server"]["requests"]
            check(got >= n, "requests grew by %d after %d GETs" % (got, n))

        ctl_retry("status --json after %d requests" % n, grew)

        slow = Conn(ctl.port)
        try:
            slow.send(req("/delay?ms=%d" % int(2000 * SLOW)))
            time.sleep(0.3 * SLOW)

            def in_flight():
                doc = ctl.status(full=True)
                check(set(doc["scoreboard"]) <= CTL_SLOTS, "scoreboard letters %s" % short(doc["scoreboard"]))
                found = [t for c in doc["children"] for t in c["threads"]
                         if t["request"].startswith("GET /delay")]
                check(found, "no thread shows GET /delay in fullstatus --json")
                check(all(t["state"] in CTL_SLOTS for c in doc["children"] for t in c["threads"]),
                      "thread states outside %s" % "".join(sorted(CTL_SLOTS)))
                expect_eq(found[0]["client"], "127.0.0.1", "client of the request in flight")
                check(found[0]["state"] in "RW", "state %s of the busy thread" % found[0]["state"])
                _, full, _ = ctl.run("fullstatus", expect=0)
                check(re.search(r"\s[RW]\s.*127\.0\.0\.1\s+GET /delay", full),
                      "fullstatus text has no thread line for the request: %s" % short(full, 800))
                check("Scoreboard:" in full, "fullstatus text has no Scoreboard")

            ctl_retry("fullstatus with a request in flight", in_flight, timeout=1.5)
            r = slow.read_response(timeout=10 * SLOW)
            expect_eq(r.status, 200, "the slow request")

            def handler_time():
                phases = ctl.status()["server"]["phases_us"]
                check(phases["handler"] >= int(2000 * SLOW) * 1000,
                      "a %d ms /delay served, handler time %s" % (int(2000 * SLOW), phases))

            ctl_retry("status --json phases after the slow request", handler_time)
            _, text, _ = ctl.run("status", expect=0)
            check(re.search(r"^mean time per request: wait [0-9.]+ us, read [0-9.]+ us, queue "
                            r"[0-9.]+ us, handler [0-9.]+ us, write [0-9.]+ us$", text, re.M),
                  "status text has no phase line: %s" % short(text, 600))
        finally:
            slow.close()
        ctl_bad_scoreboards(ctl)
        ctl.run("stop", expect=0)
    finally:
        ctl.cleanup()


def ctl_bad_scoreboards(ctl):
    """corralctl checks the header before it trusts the file: copies of the
    live scoreboard, spoiled, given with -o scoreboard=... are refused."""
    real = read_file(ctl.scoreboard)
    fake = os.path.join(ctl.tmp, "fake.scoreboard")
    cases = [
        (b"not a scoreboard" * 64, "bad magic"),
        (real[:8] + struct.pack("=I", 99) + real[12:], "layout 99"),
        (real[:len(real) // 2], "does not match its header"),
    ]
    for data, want in cases:
        with open(fake, "wb") as f:
            f.write(data)
        _, out, err = ctl.run("-o", 'scoreboard="%s"' % fake, "status", expect=1)
        check(want in err and not out, "status on a spoiled scoreboard (%s): stdout %s, stderr %s"
              % (want, short(out), short(err, 300)))


def ctl_lines(path, marker):
    try:
        return [l for l in read_file(path).decode("utf-8", "replace").splitlines() if marker in l]
    except FileNotFoundError:
        return []


@test(None)
def test_corralctl_reopen_logs(_):
    """logrotate's way: move the logs away, reopen-logs, and new lines land
    in new files, from the master and from the children."""
    ctl = Ctl("reopen")
    try:
        ctl_start(ctl)
        tag = "corral-it-%d" % os.getpid()
        get(ctl.port, "/hello", headers=["User-Agent: %s-before" % tag])
        ctl_retry("the first access log line", lambda: check(
            ctl_lines(ctl.access_log, tag + "-before"), "no line yet"))
        os.rename(ctl.access_log, ctl.access_log + ".1")
        os.rename(ctl.error_log, ctl.error_log + ".1")
        _, out, _ = ctl.run("reopen-logs", expect=0)
        check("reopened" in out, "reopen-logs printed %s" % short(out))
        check(ctl_lines(ctl.error_log, "logs reopened"), "the master wrote no 'logs reopened' to a new error log")
        n = 12
        for _ in range(n):  # sent once each: their log lines are counted
            get(ctl.port, "/hello", headers=["User-Agent: %s-after" % tag], replay=False)
        ctl_retry("the new access log", lambda: expect_eq(
            len(ctl_lines(ctl.access_log, tag + "-after")), n, "lines in the new access.log"))
        old = ctl_lines(ctl.access_log + ".1", tag + "-after")
        check(not old, "%d requests after reopen-logs went to the moved file" % len(old))
        # The children let go of the moved file once they logged again.
        ctl.run("stop", expect=0)
    finally:
        ctl.cleanup()


@test(None)
def test_corralctl_graceful_stop(_):
    """graceful-stop (WINCH): returns at once, the request in flight
    finishes, then every process exits."""
    ctl = Ctl("gstop")
    try:
        pid = ctl_start(ctl)
        kids = ctl.children()
        slow = Conn(ctl.port)
        try:
            slow.send(req("/delay?ms=1000"))
            time.sleep(0.3 * SLOW)
            _, out, _ = ctl.run("graceful-stop", expect=0)
            check("graceful stop" in out, "graceful-stop printed %s" % short(out))
            r = slow.read_response(timeout=10 * SLOW)
            expect_eq((r.status, r.body), (200, b"waited 1000 ms\n"), "the request in flight")
        finally:
            slow.close()
        deadline = time.monotonic() + STOP_TIMEOUT
        while pid_alive(pid) or any(pid_alive(k) for k in kids):
            check(time.monotonic() < deadline, "processes still running after graceful-stop")
            time.sleep(0.05)
        ctl_stopped(ctl, pid, kids)
    finally:
        ctl.cleanup()


@test(None)
def test_corralctl_modules(_):
    """-M lists the MPM and the modules with versions; -V the versions."""
    ctl = Ctl("modules")
    try:
        _, out, _ = ctl.run("-M", expect=0)
        check(re.search(r"^\s+mpm\s+%s\s+\S+\s+/\S*mpm_%s\.so$" % (MPM, MPM), out, re.M),
              "-M has no line for mpm %s: %s" % (MPM, short(out, 600)))
        for name in CTL_MODULES:
            check(re.search(r"^\s+module\s+%s\s+\d\S*\s+/\S*mod_%s\.so$" % (name, name), out, re.M),
                  "-M has no line with a version for module %s: %s" % (name, short(out, 600)))
        _, out, _ = ctl.run("-M", "--json", expect=0)
        doc = json.loads(out)
        expect_eq(doc["mpm"]["name"], MPM, "-M --json mpm")
        expect_eq([m["name"] for m in doc["modules"]], CTL_MODULES, "-M --json modules")
        check(all(m.get("version") for m in doc["modules"]), "-M --json: a module without a version")
        _, out, _ = ctl.run("-V", expect=0)
        check(re.search(r"^corralctl \d", out, re.M) and re.search(r"^corral \d", out, re.M),
              "-V: %s" % short(out, 400))
    finally:
        ctl.cleanup()
