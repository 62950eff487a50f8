# Graceful restart (USR1) and graceful stop (WINCH) under load (read into
# suite.py's namespace). A load generator in this process (threads over raw
# sockets) keeps keep-alive clients and connection-per-request clients busy
# while the master restarts or stops; every request that reached the server
# must be answered. A keep-alive client reconnects without counting an error
# only after a response that said "Connection: close".

LOAD_KEEPALIVE = 4  # keep-alive clients
LOAD_PER_REQUEST = 4  # connection-per-request clients
LOAD_IO = 10.0 * SLOW  # one exchange, including a wait in the backlog
# Under load a restart takes longer than on an idle server: the old
# children finish their connections while the new ones start.
LOAD_GENERATION = 20.0 * SLOW
# Paths the clients take turns on: a plain answer, a handler that blocks
# and one that suspends, so that requests are in flight at any moment.
LOAD_PATHS = ("/hello", "/delay?ms=15", "/hello", "/wait?ms=15")


def load_body_ok(path, body):
    """Whether body is what path answers; /hello may be routed to mod_hello
    or, after the config change, to mod_echo (an empty GET body)."""
    if path == "/hello":
        return body in (b"Hello, World!", b"")
    return body == b"waited 15 ms\n"


class LoadStats:
    """Counts per client kind, shared by the client threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = {"keep-alive": 0, "per-request": 0}
        self.errors = {"keep-alive": 0, "per-request": 0}
        self.reconnects = 0  # keep-alive clients after "Connection: close"
        self.refused = 0  # connects that failed once a graceful stop began
        self.messages = []
        self.stop_at = None  # time.monotonic() of a graceful stop, if any

    def ok(self, kind):
        with self.lock:
            self.requests[kind] += 1

    def error(self, kind, what):
        with self.lock:
            self.errors[kind] += 1
            if len(self.messages) < 10:
                self.messages.append("%s client, %.3f s: %s" % (kind, time.monotonic(), what))

    def connect_failed(self, kind, err):
        """A connect that failed: refused after a graceful stop began, an
        error otherwise."""
        with self.lock:
            after_stop = self.stop_at is not None and time.monotonic() >= self.stop_at
            if after_stop:
                self.refused += 1
        if not after_stop:
            self.error(kind, "connect: %r" % err)
        return after_stop

    def total(self):
        with self.lock:
            return sum(self.requests.values())

    def summary(self):
        with self.lock:
            return ("keep-alive %d requests, %d errors (%d reconnects after Connection: close); "
                    "per-request %d requests, %d errors; %d connects refused after the stop"
                    % (self.requests["keep-alive"], self.errors["keep-alive"], self.reconnects,
                       self.requests["per-request"], self.errors["per-request"], self.refused))


class LoadClient(threading.Thread):
    """Sends requests back to back until told to stop."""

    def __init__(self, port, keepalive, index, stats, stop):
        super().__init__(daemon=True)
        self.port = port
        self.keepalive = keepalive
        self.kind = "keep-alive" if keepalive else "per-request"
        self.index = index
        self.stats = stats
        self.stop = stop
        self.conn = None

    def connect(self):
        """A new connection, or None (after a pause) when it failed."""
        try:
            return Conn(self.port, timeout=LOAD_IO)
        except OSError as e:
            self.stats.connect_failed(self.kind, e)
            self.stop.wait(0.05)
            return None

    def exchange(self, path):
        """One request and its response on self.conn. Returns the response,
        or None after counting an error."""
        headers = [] if self.keepalive else ["Connection: close"]
        try:
            self.conn.send(req(path, headers=headers))
            r = self.conn.read_response()
        except (Fail, OSError) as e:
            self.stats.error(self.kind, "%s: %s" % (path, str(e).partition("\n")[0]))
            return None
        if r.status != 200 or not load_body_ok(path, r.body):
            self.stats.error(self.kind, "%s: %d %s" % (path, r.status, short(r.body, 60)))
            return None
        return r

    def drop(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def run(self):
        turn = self.index
        while not self.stop.is_set():
            if self.conn is None:
                self.conn = self.connect()
                if self.conn is None:
                    continue
            path = LOAD_PATHS[turn % len(LOAD_PATHS)]
            turn += 1
            r = self.exchange(path)
            if r is None:
                self.drop()
                continue
            self.stats.ok(self.kind)
            if not self.keepalive:
                self.drop()
            elif r.has_token("connection", "close"):
                with self.stats.lock:
                    self.stats.reconnects += 1
                self.drop()
        self.drop()


def load_start(port, stats, stop):
    clients = [LoadClient(port, True, i, stats, stop) for i in range(LOAD_KEEPALIVE)]
    clients += [LoadClient(port, False, i, stats, stop) for i in range(LOAD_PER_REQUEST)]
    for c in clients:
        c.start()
    return clients


def load_stop(clients, stop):
    stop.set()
    deadline = time.monotonic() + LOAD_IO + 5 * SLOW
    for c in clients:
        c.join(max(0.1, deadline - time.monotonic()))
    stuck = [c.name for c in clients if c.is_alive()]
    check(not stuck, "load clients %s did not stop" % stuck)


def load_wait_progress(stats, more, timeout):
    """Waits until the clients have been answered `more` more times."""
    want = stats.total() + more
    deadline = time.monotonic() + timeout
    while stats.total() < want:
        check(time.monotonic() < deadline, "the load made no progress for %.0f s (%s)"
              % (timeout, stats.summary()))
        time.sleep(0.02)


def load_server_opts():
    """Room for every load client at once, plus the slow requests."""
    opts = ["timeouts.keepalive=5"]
    if MPM == "prefork":
        opts += ["mpm_prefork.start=12", "mpm_prefork.min_spare=4", "mpm_prefork.max_spare=16"]
    elif MPM == "event":
        opts += ["mpm_event.processes=2", "mpm_event.threads=4"]
    return opts


def load_check(stats, what):
    print("# %s (mpm %s): %s" % (what, MPM, stats.summary()), flush=True)
    errors = sum(stats.errors.values())
    check(errors == 0, "%d failed requests during the %s: %s\n%s"
          % (errors, what, stats.summary(), "\n".join(stats.messages)))


@test(None)
def test_graceful_restart_under_load(_):
    """Five USR1 restarts while keep-alive and connection-per-request
    clients send requests back to back: not one fails; the last restart
    changes the config and its route is served afterwards."""
    srv = Server(MPM, load_server_opts(), label="restart-load")
    srv.conf = os.path.join(srv.tmp, "corral.conf")
    write_config(srv.conf, "hello")
    stats, stop, clients = LoadStats(), threading.Event(), []
    try:
        srv.start()
        srv.wait_children(1)
        clients = load_start(srv.port, stats, stop)
        load_wait_progress(stats, 50, LOAD_IO)
        for i in range(5):
            if i == 4:
                write_config(srv.conf, "echo")
            old = srv.children()
            os.kill(srv.pid, signal.SIGUSR1)
            wait_new_generation(srv, old, LOAD_GENERATION)
            load_wait_progress(stats, 150, LOAD_IO)  # served by the new generation
        r = get(srv.port, "/hello", method="POST", headers=["Content-Length: 8"], body=b"reloaded")
        expect_eq((r.status, r.body), (200, b"reloaded"), "POST /hello after the config change")
        load_stop(clients, stop)
        load_check(stats, "graceful restarts under load")
        check(srv.alive(), "master exited\n" + srv.logs())
        rc = srv.stop()
        check(rc == 0, "master exit status %s after SIGTERM" % rc)
        crashes = srv.new_crash_reports()
        check(not crashes, "crash reports in the server's logs:\n" + crashes)
    finally:
        stop.set()
        srv.cleanup()


def load_wait_exit(srv, kids, what):
    try:
        rc = srv.proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise Fail("master still running %.0f s after %s\n%s"
                   % (STOP_TIMEOUT, what, srv.logs())) from None
    check(rc == 0, "master exit status %d after %s\n%s" % (rc, what, srv.logs()))
    deadline = time.monotonic() + 5 * SLOW
    while True:
        left = sorted(p for p in kids if pid_alive(p))
        if not left:
            break
        check(time.monotonic() < deadline, "children %s still running after %s" % (left, what))
        time.sleep(0.05)


@test(None)
def test_graceful_stop_under_load(_):
    """WINCH under load: the requests in flight (slow ones included) are
    answered, connections are refused only once the listeners are closed,
    and no request that reached the server goes unanswered."""
    srv = Server(MPM, load_server_opts(), label="stop-load")
    stats, stop, clients, slow = LoadStats(), threading.Event(), [], []
    try:
        srv.start()
        kids = srv.wait_children(1)
        clients = load_start(srv.port, stats, stop)
        load_wait_progress(stats, 50, LOAD_IO)
        for path in ("/delay?ms=1000", "/wait?ms=1000"):
            slow.append(Conn(srv.port, timeout=LOAD_IO))
            slow[-1].send(req(path))
        time.sleep(0.3 * SLOW)
        kids |= srv.children()
        stats.stop_at = time.monotonic()
        os.kill(srv.pid, signal.SIGWINCH)
        for c in slow:
            r = c.read_response()
            expect_eq((r.status, r.body), (200, b"waited 1000 ms\n"), "a slow request in flight")
        load_wait_exit(srv, kids, "WINCH")
        time.sleep(0.3 * SLOW)  # the clients see the port closed
        load_stop(clients, stop)
        load_check(stats, "graceful stop under load")
        check(port_refuses(srv.port), "port %d still accepts connections" % srv.port)
        crashes = srv.new_crash_reports()
        check(not crashes, "crash reports in the server's logs:\n" + crashes)
    finally:
        stop.set()
        for c in slow:
            c.close()
        srv.cleanup()


def grace_small_opts():
    """Two handler slots in all, and (event) two connections per child, so
    that two slow requests leave the next connections in the listener's
    queue."""
    opts = ["timeouts.keepalive=2"]
    if MPM == "prefork":
        opts += ["mpm_prefork.start=2", "mpm_prefork.min_spare=0", "mpm_prefork.max_spare=2",
                 "mpm_prefork.max_workers=2"]
    elif MPM == "worker":
        opts += ["mpm_worker.processes=1", "mpm_worker.threads=2",
                 "mpm_worker.min_spare_threads=0", "mpm_worker.max_spare_threads=2",
                 "mpm_worker.max_workers=2"]
    elif MPM == "event":
        opts += ["mpm_event.processes=1", "mpm_event.threads=2", "mpm_event.max_connections=2"]
    return opts


@test(None)
def test_graceful_stop_serves_backlog(_):
    """WINCH while every handler slot is busy: the connections still in the
    listener's queue (connected, request sent, not accepted yet) are
    answered once the slow requests are done, not reset."""
    srv = Server(MPM, grace_small_opts(), label="stop-backlog")
    slow, queued = [], []
    try:
        srv.start()
        kids = srv.wait_children(2 if MPM == "prefork" else 1)
        for _ in range(2):
            slow.append(Conn(srv.port, timeout=10 * SLOW))
            slow[-1].send(req("/delay?ms=1000"))
        time.sleep(0.3 * SLOW)
        for _ in range(2):
            queued.append(Conn(srv.port, timeout=10 * SLOW))
            queued[-1].send(req("/hello"))
        expect_eq(queued[0].wait_data(0.2 * SLOW), b"", "an answer while every slot is busy")
        kids |= srv.children()
        os.kill(srv.pid, signal.SIGWINCH)
        for c in slow:
            r = c.read_response()
            expect_eq((r.status, r.body), (200, b"waited 1000 ms\n"), "a slow request in flight")
        for i, c in enumerate(queued):
            r = c.read_response()
            expect_eq((r.status, r.body), (200, b"Hello, World!"), "queued connection #%d" % i)
            check(r.has_token("connection", "close"), "queued connection #%d: no Connection: "
                  "close from a stopping server (%s)" % (i, r.headers))
        load_wait_exit(srv, kids, "WINCH")
        check(port_refuses(srv.port), "port %d still accepts connections" % srv.port)
        crashes = srv.new_crash_reports()
        check(not crashes, "crash reports in the server's logs:\n" + crashes)
    finally:
        for c in slow + queued:
            c.close()
        srv.cleanup()


@test(None)
def test_graceful_stop_timeout(_):
    """timeouts.graceful bounds a graceful stop: a suspended request that
    would take a minute is cut off after 1 s and the master exits."""
    srv = Server(MPM, fresh_opts() + ["timeouts.graceful=1"], label="graceful-timeout")
    c = None
    try:
        srv.start()
        kids = srv.wait_children(1)
        c = Conn(srv.port, timeout=10 * SLOW)
        c.send(req("/wait?ms=60000"))
        time.sleep(0.3 * SLOW)
        kids |= srv.children()
        t0 = time.monotonic()
        os.kill(srv.pid, signal.SIGWINCH)
        load_wait_exit(srv, kids, "WINCH with timeouts.graceful=1")
        took = time.monotonic() - t0
        check(took >= 0.9, "the master exited %.2f s after WINCH, before timeouts.graceful" % took)
        check(took < 5 * SLOW, "the master took %.1f s to exit, timeouts.graceful is 1 s" % took)
        check(c.wait_closed(5 * SLOW), "the cut-off request's connection is still open")
        expect_eq(c.buf, b"", "what the cut-off request received")
        check(b"graceful stop timed out" in read_file(srv.error_log),
              "no 'graceful stop timed out' in the error log\n" + srv.logs())
        check(port_refuses(srv.port), "port %d still accepts connections" % srv.port)
        crashes = srv.new_crash_reports()
        check(not crashes, "crash reports in the server's logs:\n" + crashes)
    finally:
        if c is not None:
            c.close()
        srv.cleanup()


@test(None)
def test_graceful_restart_idle_connections(_):
    """USR1 with a connection that has sent nothing yet and an idle
    keep-alive one: both are answered (with Connection: close) when their
    request comes soon after, and an idle one left alone is closed well
    before timeouts.keepalive."""
    opts = fresh_opts() + ["timeouts.keepalive=30"]
    if MPM == "prefork":
        opts.append("mpm_prefork.start=4")  # a child for each connection
    srv = Server(MPM, opts, label="restart-idle")
    conns = []
    try:
        srv.start()
        old = srv.wait_children(1)
        fresh, kept, left = Conn(srv.port), Conn(srv.port), Conn(srv.port)
        conns += [fresh, kept, left]
        for c in (kept, left):
            c.send(req("/hello"))
            expect_eq(c.read_response().status, 200, "first request")
        time.sleep(0.3 * SLOW)  # all three held by children of the first generation
        os.kill(srv.pid, signal.SIGUSR1)
        time.sleep(0.3 * SLOW)
        for what, c in (("a new connection", fresh), ("an idle keep-alive connection", kept)):
            c.send(req("/hello"))
            r = c.read_response()
            expect_eq((r.status, r.body), (200, b"Hello, World!"), what)
            check(r.has_token("connection", "close"), "%s: no Connection: close from an old "
                  "child (%s)" % (what, r.headers))
            check(c.wait_closed(), "%s: still open after Connection: close" % what)
        t0 = time.monotonic()
        check(left.wait_closed(10 * SLOW), "an idle connection stays open after a restart")
        check(time.monotonic() - t0 < 5 * SLOW, "an idle connection took %.1f s to close"
              % (time.monotonic() - t0))
        expect_eq(left.buf, b"", "what the idle connection received")
        wait_new_generation(srv, old, 10 * SLOW)
        expect_eq(get(srv.port, "/hello").status, 200, "GET /hello after the restart")
        rc = srv.stop()
        check(rc == 0, "master exit status %s after SIGTERM" % rc)
        crashes = srv.new_crash_reports()
        check(not crashes, "crash reports in the server's logs:\n" + crashes)
    finally:
        for c in conns:
            c.close()
        srv.cleanup()


@test(None)
def test_graceful_stop_then_term(_):
    """TERM during a graceful stop that would wait forever (timeouts.graceful
    = 0) is not lost: the request in flight is dropped and every process
    exits at once."""
    srv = Server(MPM, fresh_opts(), label="graceful-term")
    c = None
    try:
        srv.start()
        kids = srv.wait_children(1)
        c = Conn(srv.port, timeout=10 * SLOW)
        c.send(req("/wait?ms=60000"))
        time.sleep(0.3 * SLOW)
        kids |= srv.children()
        os.kill(srv.pid, signal.SIGWINCH)
        time.sleep(0.5 * SLOW)
        check(srv.alive(), "the master did not wait for the request in flight")
        t0 = time.monotonic()
        os.kill(srv.pid, signal.SIGTERM)
        load_wait_exit(srv, kids, "WINCH then TERM")
        took = time.monotonic() - t0
        check(took < 5 * SLOW, "the master took %.1f s to exit after TERM" % took)
        check(c.wait_closed(5 * SLOW), "the dropped request's connection is still open")
        check(port_refuses(srv.port), "port %d still accepts connections" % srv.port)
        crashes = srv.new_crash_reports()
        check(not crashes, "crash reports in the server's logs:\n" + crashes)
    finally:
        if c is not None:
            c.close()
        srv.cleanup()


@test("fresh")
def test_restart_hup_leaves_no_child(srv):
    """HUP: every child of the old generation is gone (the request in flight
    with it), a new generation serves, and the port never stopped
    listening."""
    old = srv.wait_children(1)
    c = Conn(srv.port, timeout=10 * SLOW)
    try:
        c.send(req("/wait?ms=60000"))
        time.sleep(0.3 * SLOW)
        old |= srv.children()
        os.kill(srv.pid, signal.SIGHUP)
        check(c.wait_closed(5 * SLOW), "the request in flight survived a full restart")
    finally:
        c.close()
    deadline = time.monotonic() + 5 * SLOW
    while any(pid_alive(p) for p in old):
        check(time.monotonic() < deadline, "old children %s still running after HUP"
              % sorted(p for p in old if pid_alive(p)))
        time.sleep(0.05)
    wait_new_generation(srv, old, 10 * SLOW)
    expect_eq(get(srv.port, "/hello").status, 200, "GET /hello after HUP")
