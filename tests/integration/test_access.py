# Client address rules (read into suite.py's namespace): a route's `allow`
# and `deny` choose the clients it serves by the address they connect from;
# any other gets the core's 403, and is not passed on to a later route. The
# clients here connect from 127.0.0.1, from 127.0.0.2 (Linux routes all of
# 127.0.0.0/8 to the loopback interface), from ::1 and over a unix socket.

ACCESS_ROUTES = (
    'routes=('
    '{ path = "/only2"; module = "hello"; allow = [ "127.0.0.2" ]; },'
    '{ path = "/not1"; module = "hello"; deny = [ "127.0.0.1" ]; },'
    '{ path = "/both"; module = "hello"; allow = [ "127.0.0.0/8" ]; deny = [ "127.0.0.1" ]; },'
    '{ path = "/v6"; module = "hello"; allow = [ "::1" ]; },'
    '{ path = "/local"; module = "hello"; allow = [ "127.0.0.1", "::1" ]; },'
    '{ path = "/unix"; module = "hello"; allow = [ "unix" ]; },'
    '{ path = "/echo"; module = "echo"; allow = [ "127.0.0.2" ]; },'
    '{ path = "/hello"; module = "hello"; },'
    '{ path = "/"; module = "echo"; })')

# path -> the status each client gets: (127.0.0.1, 127.0.0.2, ::1, unix).
# "/" is the unrestricted route every refused request would otherwise
# reach: a 403 there instead of echo's 200 shows no fall-through.
ACCESS_WANT = {
    "/only2": (403, 200, 403, 403),
    "/not1": (403, 200, 200, 200),
    "/both": (403, 200, 403, 403),
    "/v6": (403, 403, 200, 403),
    "/local": (200, 403, 200, 403),
    "/unix": (403, 403, 403, 200),
    "/": (200, 200, 200, 200),
}
ACCESS_CLIENTS = ("127.0.0.1", "127.0.0.2", "::1", "unix")


def access_sock(client, port, v6_port, sock_path):
    """A connected socket from the given client address."""
    if client == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(IO_TIMEOUT)
        s.connect(sock_path)
        return s
    if client == "::1":
        return socket.create_connection(("::1", v6_port), timeout=IO_TIMEOUT)
    return socket.create_connection((HOST, port), timeout=IO_TIMEOUT,
                                    source_address=(client, 0))


def access_read(s, buf, what):
    """Reads one response with a Content-Length body from s -> (status,
    body, the bytes after it)."""
    deadline = time.monotonic() + IO_TIMEOUT
    while b"\r\n\r\n" not in buf:
        check(time.monotonic() < deadline, "%s: no response head" % what)
        chunk = s.recv(65536)
        check(chunk, "%s: closed before the response: %s" % (what, short(buf)))
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.1 (\d{3}) ", lines[0])
    check(m, "%s: bad status line %s" % (what, short(lines[0])))
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    while len(rest) < length:
        check(time.monotonic() < deadline, "%s: body cut short" % what)
        chunk = s.recv(65536)
        check(chunk, "%s: closed inside the body" % what)
        rest += chunk
    return int(m.group(1)), rest[:length], rest[length:]


def access_get(client, path, port, v6_port, sock_path):
    what = "GET %s from %s" % (path, client)
    with access_sock(client, port, v6_port, sock_path) as s:
        s.sendall(req(path))
        status, body, _ = access_read(s, b"", what)
    return status, body


def free_port_v6():
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        return s.getsockname()[1]


def access_server(v6):
    """A server with ACCESS_ROUTES listening on 127.0.0.1, on [::1] when
    there is an IPv6 loopback, and on a unix socket -> (server, v6 port,
    socket path)."""
    srv = Server(MPM, [ACCESS_ROUTES], label="access")
    sock_path = os.path.join(srv.tmp, "corral.sock")
    v6_port = free_port_v6() if v6 else None
    extra = '"[::1]:%d", ' % v6_port if v6 else ""
    # Server.argv puts its own listen first; a later -o replaces it.
    srv.opts.append('listen=["%s:%%d", %s"unix:%s"]' % (HOST, extra, sock_path))
    real_argv = srv.argv

    def argv():
        a = real_argv()
        a[-1] = a[-1] % srv.port
        return a
    srv.argv = argv
    srv.start()
    return srv, v6_port, sock_path


def access_check(srv, clients, v6_port, sock_path):
    """Every path of ACCESS_WANT from each of clients: the status wanted,
    the core's page on a 403, the route's own answer otherwise."""
    for path, wants in ACCESS_WANT.items():
        for client, want in zip(ACCESS_CLIENTS, wants):
            if client not in clients:
                continue
            what = "GET %s from %s" % (path, client)
            status, body = access_get(client, path, srv.port, v6_port, sock_path)
            expect_eq(status, want, what)
            if status == 403:
                check(b"<h1>403 Forbidden</h1>" in body,
                      "%s: not the core's 403 page: %s" % (what, short(body)))
            else:
                check(body == b"Hello, World!" or path == "/", "%s: %s" % (what, short(body)))


def can_bind(addr, family=socket.AF_INET):
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((addr, 0))
        return True
    except OSError:
        return False


@test(None)
def test_access_allow_deny(_):
    if not can_bind("127.0.0.2"):
        raise Skip("no client address 127.0.0.2 here (127.0.0.0/8 is not all loopback)")
    srv, _, sock_path = access_server(False)
    try:
        access_check(srv, ("127.0.0.1", "127.0.0.2", "unix"), None, sock_path)
        # The refusal is logged with the client and the route.
        deadline = time.monotonic() + IO_TIMEOUT
        while b"client 127.0.0.1 refused" not in read_file(srv.error_log):
            check(time.monotonic() < deadline, "no refusal in the error log:\n" + srv.logs())
            time.sleep(0.05)
    finally:
        srv.cleanup()


@test(None)
def test_access_ipv6(_):
    if not can_bind("::1", socket.AF_INET6):
        raise Skip("no IPv6 loopback (::1) here")
    srv, v6_port, sock_path = access_server(True)
    try:
        access_check(srv, ("::1", "127.0.0.1"), v6_port, sock_path)
    finally:
        srv.cleanup()


@test()
def test_access_default_status_loopback_only(srv):
    """The shipped config keeps the scoreboard pages, which show clients'
    addresses and requests, to clients on this machine."""
    if not can_bind("127.0.0.2"):
        raise Skip("no client address 127.0.0.2 here (127.0.0.0/8 is not all loopback)")
    for path in ("/server-status?auto", "/metrics"):
        for client, want in (("127.0.0.1", 200), ("127.0.0.2", 403)):
            status, body = access_get(client, path, srv.port, None, None)
            expect_eq(status, want, "GET %s from %s" % (path, client))
            check(status == 200 or b"127.0.0.1" not in body,
                  "GET %s from %s shows a client address: %s" % (path, client, short(body)))
    status, _ = access_get("127.0.0.2", "/hello", srv.port, None, None)
    expect_eq(status, 200, "GET /hello from 127.0.0.2")


@test(None)
def test_access_refused_body_keeps_connection(_):
    """A refused POST with a body: 403, then the next request on the same
    connection is answered, so the body was read past rather than taken
    for a request."""
    srv, _, sock_path = access_server(False)
    try:
        body = b"x" * 3000
        raw = req("/echo", method="POST", headers=["Content-Length: %d" % len(body)], body=body)
        for client, want in (("127.0.0.1", 403), ("127.0.0.2", 200)):
            what = "POST /echo from %s" % client
            with access_sock(client, srv.port, None, sock_path) as s:
                s.sendall(raw + req("/hello"))
                status, got, rest = access_read(s, b"", what)
                expect_eq(status, want, what)
                if want == 200:
                    expect_eq(got, body, what + " body")
                status, got, _ = access_read(s, rest, "GET /hello after " + what)
                expect_eq((status, got), (200, b"Hello, World!"), "GET /hello after " + what)
    finally:
        srv.cleanup()


@test(None)
def test_access_bad_config(_):
    """corral -t refuses a bad list, naming the key of the bad entry."""
    cases = [
        ('allow = [ "127.0.0.1", "10.0.0.0/33" ]', "routes[0].allow[1]", "10.0.0.0/33"),
        ('deny = [ "::/129" ]', "routes[0].deny[0]", "::/129"),
        ('allow = [ "localhost" ]', "routes[0].allow[0]", "localhost"),
        ('allow = "127.0.0.1"', "routes[0].allow", "must be a list"),
        ('deny = [ ]', "routes[0].deny", "must be a list"),
    ]
    for keys, key, text in cases:
        rc, out, err = configtest(CONF, ["mpm=" + MPM,
                                         'routes=({ path = "/"; module = "hello"; %s; })' % keys])
        check(rc == 1 and ("key '%s'" % key) in err and text in err,
              "corral -t with %s: exit %d, %s" % (keys, rc, short(out + err, 300)))
    rc, out, err = configtest(CONF, ["mpm=" + MPM, 'routes=({ path = "/"; module = "hello"; '
                                     'allow = [ "10.0.0.0/8", "fe80::/10", "unix" ]; '
                                     'deny = [ "10.1.0.0/16" ]; })'])
    check(rc == 0, "corral -t with good rules: exit %d, %s" % (rc, short(out + err, 300)))
