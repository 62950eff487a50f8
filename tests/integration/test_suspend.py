# Suspended requests (read into suite.py's namespace): a handler returns
# CR_SUSPENDED and finishes the request later from a core timer; the demo's
# delay module does so with mode=suspend. Under every MPM: the answer comes,
# keep-alive and pipelining go on after it, a client that leaves is noticed
# (its process or thread is free again), a graceful stop waits for it.


def suspended(ms):
    """A request the delay module suspends, on the demo's route that always
    does (so the event MPM runs it on its event thread)."""
    return "/wait?ms=%d" % ms


@test()
def test_suspend_answers(srv):
    t0 = time.monotonic()
    r = get(srv.port, suspended(300), replay=False)  # timed: sent once
    took = time.monotonic() - t0
    expect_eq((r.status, r.body), (200, b"waited 300 ms\n"), "suspended /delay")
    check(took >= 0.29, "answered after %.3f s, before its timer was due" % took)
    expect_eq(get(srv.port, suspended(0)).body, b"waited 0 ms\n", "a timer due at once")
    # The way of waiting is the route's: a request cannot choose it.
    expect_eq(get(srv.port, "/delay?ms=5&mode=suspend").body, b"waited 5 ms\n", "mode=suspend")
    expect_eq(get(srv.port, "/wait?ms=5&mode=block").body, b"waited 5 ms\n", "mode=block")
    expect_eq(get(srv.port, "/delay?ms=1&mode=sideways").status, 200, "an unknown mode")


@test()
def test_suspend_keepalive_and_pipelining(srv):
    with Conn(srv.port) as c:
        for ms in (50, 0, 120):
            c.send(req(suspended(ms)))
            r = c.read_response()
            expect_eq((r.status, r.body), (200, b"waited %d ms\n" % ms), "keep-alive #%d ms" % ms)
        # Pipelined: answered in order though the later timers are shorter.
        c.send(req(suspended(200)) + req(suspended(10)) + req("/hello"))
        bodies = [c.read_response().body for _ in range(3)]
        expect_eq(bodies, [b"waited 200 ms\n", b"waited 10 ms\n", b"Hello, World!"],
                  "pipelined responses")
        # HEAD on a suspended request: the head only, the connection still usable.
        c.send(req(suspended(20), method="HEAD"))
        r = c.read_response(head=True)
        expect_eq((r.status, r.header("content-length")), (200, "13"), "HEAD")
        c.send(req("/hello"))
        expect_eq(c.read_response().body, b"Hello, World!", "after HEAD")


def small_server_opts():
    """A server with two handler slots in all, so that two requests that
    nobody frees would block every later one."""
    opts = ["timeouts.keepalive=2"]
    if MPM == "prefork":
        opts += ["mpm_prefork.start=2", "mpm_prefork.min_spare=0", "mpm_prefork.max_spare=2",
                 "mpm_prefork.max_workers=2"]
    elif MPM == "worker":
        opts += ["mpm_worker.processes=1", "mpm_worker.threads=2",
                 "mpm_worker.min_spare_threads=0", "mpm_worker.max_spare_threads=2",
                 "mpm_worker.max_workers=2"]
    elif MPM == "event":
        opts += ["mpm_event.processes=1", "mpm_event.threads=2"]
    return opts


@test(None)
def test_suspend_client_leaves(_):
    """Clients that close while their request is suspended free what held
    it: later requests are served at once, the child's descriptors come
    back, and the drop is logged."""
    srv = Server(MPM, small_server_opts(), label="suspend-leave").start()
    try:
        kids = srv.wait_children(1)
        get(srv.port, "/hello")
        base = {k: fd_count(k) for k in kids}
        for _ in range(3):
            conns = [Conn(srv.port) for _ in range(4)]
            for c in conns:
                c.send(req(suspended(30000)))
            time.sleep(0.3 * SLOW)
            for c in conns:
                c.close()
            t0 = time.monotonic()
            # Two slots in all: this is served only if the dropped requests
            # gave theirs back long before their 30 s timers.
            r = get(srv.port, "/hello")
            expect_eq((r.status, r.body), (200, b"Hello, World!"), "GET /hello after drops")
            check(time.monotonic() - t0 < 10 * SLOW, "the dropped requests held their slots")
        deadline = time.monotonic() + 5 * SLOW
        while True:
            now = {k: fd_count(k) for k in kids if pid_alive(k)}
            grown = {k: (base[k], n) for k, n in now.items() if n is not None and base[k] is not None and n > base[k]}
            if not grown:
                break
            check(time.monotonic() < deadline, "children hold more descriptors than before "
                  "(pid: (before, after)): %s" % grown)
            time.sleep(0.1)
        log = read_file(srv.error_log)
        check(b"dropped a suspended request" in log,
              "the error log does not mention the dropped requests\n" + srv.logs())
        rc = srv.stop()
        check(rc == 0, "master exit status %s after SIGTERM" % rc)
        crashes = srv.new_crash_reports()
        check(not crashes, "crash reports in the server's logs:\n" + crashes)
    finally:
        srv.cleanup()


@test("fresh", mpms=("event",))
def test_suspend_holds_no_thread(srv):
    """event: suspended requests are not queued behind a busy pool. With
    every pool thread asleep in a blocking /delay, suspended requests still
    finish, and before the blocking ones."""
    blockers = []
    try:
        for _ in range(4 * 2):  # fresh_opts: 2 children x 4 threads
            c = Conn(srv.port, timeout=30 * SLOW)
            c.send(req("/delay?ms=4000"))
            blockers.append(c)
        time.sleep(0.3 * SLOW)
        t0 = time.monotonic()
        conns = [Conn(srv.port) for _ in range(50)]
        for c in conns:
            c.send(req(suspended(200)))
        for i, c in enumerate(conns):
            r = c.read_response(timeout=10 * SLOW)
            expect_eq((r.status, r.body), (200, b"waited 200 ms\n"), "suspended request #%d" % i)
            c.close()
        took = time.monotonic() - t0
        check(all(not b.buf for b in blockers) and all(not b.wait_data(0) for b in blockers),
              "a blocking request finished before the suspended ones (%.1f s)" % took)
        for i, b in enumerate(blockers):
            r = b.read_response(timeout=30 * SLOW)
            expect_eq(r.body, b"waited 4000 ms\n", "blocking request #%d" % i)
    finally:
        for b in blockers:
            b.close()


@test("fresh")
def test_suspend_graceful_stop(srv):
    """WINCH waits for a suspended request in flight; TERM afterwards finds
    nothing left."""
    kids = srv.wait_children(1)
    c = Conn(srv.port, timeout=10 * SLOW)
    try:
        c.send(req(suspended(1000)))
        time.sleep(0.3 * SLOW)
        os.kill(srv.pid, signal.SIGWINCH)
        r = c.read_response(timeout=10 * SLOW)
        expect_eq((r.status, r.body), (200, b"waited 1000 ms\n"), "the suspended request in flight")
    finally:
        c.close()
    try:
        rc = srv.proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise Fail("master still running %.0f s after WINCH\n%s" % (STOP_TIMEOUT, srv.logs())) from None
    check(rc == 0, "master exit status %d after WINCH" % rc)
    deadline = time.monotonic() + 5 * SLOW
    while any(pid_alive(p) for p in kids):
        check(time.monotonic() < deadline, "children still running after WINCH")
        time.sleep(0.05)


@test("fresh")
def test_suspend_sigterm_drops(srv):
    """TERM with a long suspended request in flight: the master and its
    children stop promptly; the request is dropped, not waited for."""
    kids = srv.wait_children(1)
    c = Conn(srv.port, timeout=10 * SLOW)
    try:
        c.send(req(suspended(60000)))
        time.sleep(0.3 * SLOW)
        kids |= srv.children()
        os.kill(srv.pid, signal.SIGTERM)
        try:
            rc = srv.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise Fail("master still running %.0f s after TERM\n%s" % (STOP_TIMEOUT, srv.logs())) from None
        check(rc == 0, "master exit status %d after TERM" % rc)
        check(c.wait_closed(5 * SLOW), "the suspended request's connection stayed open")
    finally:
        c.close()
    deadline = time.monotonic() + 5 * SLOW
    while any(pid_alive(p) for p in kids):
        check(time.monotonic() < deadline, "children still running after TERM")
        time.sleep(0.05)
