# What a hostile or broken client must not be able to do, under every MPM
# (read into suite.py's namespace): state of one request leaking into the
# next, a handler moved onto the event thread, unbounded output, a head
# that never ends, a write timeout that cuts a steady reader, and a flood
# of pipelined requests.

CHUNKED_ECHO = (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\n%s\r\n0\r\n\r\n")


@test()
def test_pipelined_after_chunked_body(srv):
    """A request pipelined after a chunked body gets its own body, whatever
    its framing: nothing of the chunked one (its buffer, its finished
    decoder) is carried over."""
    with Conn(srv.port) as c:
        c.send(CHUNKED_ECHO % b"hello" + CHUNKED_ECHO % b"WORLD" + req("/hello"))
        expect_eq(c.read_response().body, b"hello", "first chunked body")
        expect_eq(c.read_response().body, b"WORLD", "second chunked body")
        expect_eq(c.read_response().body, b"Hello, World!", "the request after them")
    big = bytes(range(256)) * 234 + b"0123"  # 59908 bytes: beyond the read buffer
    with Conn(srv.port, timeout=20 * SLOW) as c:
        c.send(CHUNKED_ECHO % b"hello" +
               req("/echo", method="POST", headers=["Content-Length: %d" % len(big)]) + big)
        expect_eq(c.read_response().body, b"hello", "chunked body")
        r = c.read_response()
        expect_eq((r.status, len(r.body)), (200, len(big)), "Content-Length body after it")
        check(r.body == big, "the Content-Length body came back changed")
    with Conn(srv.port) as c:
        c.send(req("/echo", method="POST", headers=["Transfer-Encoding: chunked"]) +
               chunked([b"ab", b"cd"]) + req("/echo", method="POST", headers=["Content-Length: 0"]))
        expect_eq(c.read_response().body, b"abcd", "chunked body")
        expect_eq(c.read_response().body, b"", "an empty body after it")


@test()
def test_client_cannot_choose_blocking(srv):
    """The way a route waits is the route's: asking a suspending route to
    block (?mode=block) changes nothing, so no request can put a sleeping
    handler on the event MPM's event thread. While such requests wait,
    every other request is answered."""
    conns = []
    try:
        # One at a time, so that a child whose thread would sleep leaves
        # the next connection to another child, until every one sleeps (the
        # event MPM's default is two children; prefork has two more idle).
        for _ in range(2):
            c = Conn(srv.port, timeout=20 * SLOW)
            c.send(req("/wait?mode=block&ms=3000"))
            conns.append(c)
            time.sleep(0.1 * SLOW)
        for i in range(10):
            r = get(srv.port, "/hello")
            expect_eq(r.body, b"Hello, World!", "/hello #%d while /wait?mode=block waits" % i)
        for c in conns:
            check(not c.wait_data(0.01), "a /wait?ms=3000 answered before /hello: it did not wait")
        for c in conns:
            r = c.read_response(timeout=20 * SLOW)
            expect_eq(r.body, b"waited 3000 ms\n", "the waiting request")
    finally:
        for c in conns:
            c.close()


def children_rss_kb(srv):
    total = 0
    for pid in srv.children():
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


@test(None)
def test_unread_stream_is_bounded(_):
    """A client that never reads a fast stream costs the server bounded
    memory (the output queue is capped, or flush waits) and is dropped once
    its write stalls; the server goes on answering others."""
    srv = Server(MPM, ["timeouts.write=2"], label="unread").start()
    try:
        srv.wait_children()
        time.sleep(0.3 * SLOW)
        before = children_rss_kb(srv)
        with Conn(srv.port, timeout=20 * SLOW) as c:
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            c.send(req("/wait?ms=0&chunks=1000&size=1048576"))
            time.sleep(3 * SLOW)
            grown = children_rss_kb(srv) - before
            check(grown < 96 * 1024, "the children grew by %d KiB for one client that does "
                  "not read" % grown)
            expect_eq(get(srv.port, "/hello").body, b"Hello, World!", "/hello meanwhile")
            # Dropped: what was sent ends before the thousand pieces did.
            got = 0
            deadline = time.monotonic() + 30 * SLOW
            while c._fill(deadline, "the server to drop the client"):
                got += len(c.buf)
                c.buf = b""
            check(got < 1000 * 1048576, "all %d bytes were sent to a client that did not read"
                  % got)
    finally:
        srv.cleanup()


@test(None)
def test_header_timeout_bounds_whole_head(_):
    """timeouts.header bounds the whole head from its first byte: a client
    that sends one byte now and then is answered 408 when it runs out, not
    kept for ever."""
    srv = Server(MPM, ["timeouts.header=2"], label="slowhead").start()
    try:
        with Conn(srv.port, timeout=15 * SLOW) as c:
            t0 = time.monotonic()
            c.send(b"GET /hello HTTP/1.1\r\n")
            for _ in range(int(12 / 0.4)):
                try:
                    c.sock.sendall(b"X")
                except OSError:
                    break  # closed: its answer is still to be read
                if c.wait_data(0.4 * SLOW):
                    break
            took = time.monotonic() - t0
            r = c.read_response(timeout=5 * SLOW)
            expect_eq(r.status, 408, "status for a head that never ends")
            check(took < 10 * SLOW, "answered only after %.1f s with timeouts.header = 2" % took)
    finally:
        srv.cleanup()


def slow_reader(port, rcvbuf):
    """A connection whose receive buffer is rcvbuf bytes, set before the
    connect so that the window stays small."""
    c = Conn.__new__(Conn)
    c.timeout = 60 * SLOW
    c.buf, c.eof, c.reset = b"", False, False
    c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    c.sock.settimeout(c.timeout)
    c.sock.connect((HOST, port))
    return c


@test(None)
def test_write_timeout_bounds_a_stall(_):
    """timeouts.write bounds one stall, not the whole response: a steady but
    slow reader of a response that takes several write timeouts to read
    gets all of it."""
    body = bytes(range(256)) * (12 * 4096)  # 12 MiB, beyond the socket buffers
    srv = Server(MPM, ["timeouts.write=2", "limits.body_bytes=%d" % (2 * len(body))],
                 label="slowread").start()
    try:
        with slow_reader(srv.port, 65536) as c:
            sender = threading.Thread(target=c.send, args=(
                req("/echo", method="POST", headers=["Content-Length: %d" % len(body)]) + body,
                True))
            sender.start()
            got = b""
            t0 = time.monotonic()
            deadline = t0 + 60 * SLOW
            while time.monotonic() < deadline:
                try:
                    c.sock.settimeout(max(0.1, deadline - time.monotonic()))
                    data = c.sock.recv(65536)
                except (socket.timeout, ConnectionResetError):
                    break
                if not data:
                    break
                got += data
                end = got.find(b"\r\n\r\n")
                if end >= 0 and len(got) - end - 4 >= len(body):
                    break
                # About 3 MB/s: twice the write timeout for 12 MiB, while
                # the socket never stalls for long (it wakes a writer only
                # once a third of its buffer is free).
                time.sleep(0.02)
            sender.join(10 * SLOW)
            took = time.monotonic() - t0
            end = got.find(b"\r\n\r\n")
            check(end >= 0, "no response head; got %s" % short(got))
            rest = got[end + 4:]
            check(len(rest) == len(body), "the response was cut after %d of %d body bytes "
                  "(%.1f s of steady reading)" % (len(rest), len(body), took))
            check(rest == body, "the echoed bytes differ")
    finally:
        srv.cleanup()


class SmallStackServer(Server):
    """A server whose processes start with a small stack, as a thread's
    would be: deep recursion shows as a crash."""

    def argv(self):
        return ["prlimit", "--stack=%d" % (2 * 1024 * 1024), "--"] + Server.argv(self)


@test(None)
def test_pipelined_flood(_):
    """Tens of thousands of tiny requests in one stream are all answered, in
    order, with no child lost (no recursion per pipelined request)."""
    n = 60000
    srv = SmallStackServer(MPM, ["limits.header_bytes=1048576", "limits.keepalive_requests=0"],
                           label="flood").start()
    try:
        kids = srv.wait_children()
        one = b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"
        with Conn(srv.port, timeout=120 * SLOW) as c:
            c.send(one * n)  # the server reads it all before it answers much
            seen = 0
            tail = b""
            deadline = time.monotonic() + 100 * SLOW
            want = b"HTTP/1.1 200 OK\r\n"
            while seen < n:
                if not c._fill(deadline, "%d of %d responses" % (seen, n)):
                    break
                data, c.buf = tail + c.buf, b""
                seen += data.count(want)
                tail = data[-(len(want) - 1):]
            expect_eq(seen, n, "responses to pipelined requests")
        check(kids <= srv.children(), "a child died: %s then %s" % (sorted(kids),
                                                                     sorted(srv.children())))
    finally:
        srv.cleanup()
