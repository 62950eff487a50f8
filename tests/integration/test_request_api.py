# The request calls of the module API seen through the bundled modules
# (read into suite.py's namespace): echo?headers=1 shows the headers as the
# module API iterates them, the arguments helper decodes query and form.


@test()
def test_echo_headers(srv):
    body = b"some body"
    raw = ("POST /echo?headers=1&x=%%41 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-One: 1\r\n"
           "X-Twice: a\r\nx-twice:   b  \r\nContent-Length: %d\r\n\r\n" % len(body)).encode() + body
    with Conn(srv.port) as c:
        r = c.exchange(raw)
        expect_eq(r.status, 200, "status")
        check((r.header("content-type") or "").startswith("text/plain"),
              "Content-Type %s" % r.header("content-type"))
        want = (b"POST /echo?headers=1&x=%41 HTTP/1.1\nHost: 127.0.0.1\nX-One: 1\n"
                b"X-Twice: a\nx-twice: b\nContent-Length: 9\n\n" + body)
        expect_eq(r.body, want, "echo of the request head and body")
        # headers=0 and no argument: the body alone, typed as sent.
        r = c.exchange(req("/echo?headers=0", method="POST",
                           headers=["Content-Type: application/x-thing", "Content-Length: 2"],
                           body=b"hi"))
        expect_eq((r.body, r.header("content-type")), (b"hi", "application/x-thing"), "headers=0")


@test()
def test_request_args(srv):
    # The delay module reads ms and mode with cr_request_arg: percent- and
    # '+'-decoding, the first of repeated names, a form body when the query
    # has none.
    cases = [("/delay?ms=%31%32", b"waited 12 ms\n"),
             ("/delay?other=1&ms=3&ms=9", b"waited 3 ms\n"),
             ("/delay?%6Ds=4", b"waited 4 ms\n"),
             ("/delay?ms=12x", b"waited 10 ms\n"),  # unparsable: the route's 10
             ("/delay?ms", b"waited 10 ms\n")]
    for path, want in cases:
        r = get(srv.port, path)
        expect_eq((r.status, r.body), (200, want), "GET " + path)
    form = b"a=1&ms=7&mode=s%75spend"
    r = get(srv.port, "/delay", method="POST", body=form,
            headers=["Content-Type: application/x-www-form-urlencoded; charset=utf-8",
                     "Content-Length: %d" % len(form)])
    expect_eq((r.status, r.body), (200, b"waited 7 ms\n"), "form body arguments")
    r = get(srv.port, "/delay", method="POST", body=b"ms=7",
            headers=["Content-Type: text/plain", "Content-Length: 4"])
    expect_eq(r.body, b"waited 10 ms\n", "a body that is not a form is no arguments")
