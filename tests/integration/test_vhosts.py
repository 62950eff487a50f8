# Virtual hosts (read into suite.py's namespace): a route's `host` scopes
# it to names of the Host header, exact or "*.domain", one or a list;
# other hosts fall through to the next matching route.


def host_get(port, path, host):
    return get(port, path, host=False, headers=["Host: " + host] if host is not None else [])


@test(None)
def test_vhosts(_):
    routes = ('routes=('
              '{ path = "/"; module = "echo"; host = [ "site-a.test", "*.site-b.test" ]; },'
              '{ path = "/"; module = "delay"; host = "[::1]"; ms = 0; },'
              '{ path = "/"; module = "hello"; })')
    srv = Server(MPM, [routes], label="vhosts").start()
    try:
        cases = [("site-a.test", "echo"), ("SITE-A.test:8080", "echo"),
                 ("www.site-b.test", "echo"), ("a.b.site-b.test", "echo"),
                 ("site-b.test", "hello"), ("site-a.test.evil", "hello"),
                 ("other.test", "hello"), ("[::1]:80", "delay"), ("127.0.0.1", "hello")]
        for host, want in cases:
            r = host_get(srv.port, "/?headers=1", host)
            expect_eq(r.status, 200, "Host: %s status" % host)
            got = ("echo" if r.body.startswith(b"GET /?headers=1 HTTP/1.1\n") else
                   "delay" if r.body.startswith(b"waited") else
                   "hello" if r.body == b"Hello, World!" else repr(r.body[:40]))
            expect_eq(got, want, "module serving Host: %s" % host)
        # HTTP/1.0 without Host: only the unscoped route.
        with Conn(srv.port) as c:
            c.send(req("/", version="1.0", host=False))
            expect_eq(c.read_response().body, b"Hello, World!", "no Host header")
        # A bad host list is refused with file, line and key.
        rc, _, err = configtest(CONF, ["mpm=" + MPM, 'routes=({ path = "/"; module = "hello"; '
                                       'host = [ "ok.test", "not ok" ]; })'])
        check(rc == 1 and "routes[0].host" in err, "corral -t with a bad host list: exit %d, %s"
              % (rc, short(err, 300)))
    finally:
        srv.cleanup()
