# Request bodies read by the handler a piece at a time (read into
# suite.py's namespace): a route flagged CR_MODULE_STREAM_BODY gets its body
# off the socket as it arrives; mod_echo's `stream = true` routes send each
# piece straight back as a chunk.

STREAM_ROUTES = ('routes=({ path = "/up"; module = "echo"; stream = true; },'
                 '{ path = "/hello"; module = "hello"; })')


def stream_server(label, extra=()):
    return Server(MPM, [STREAM_ROUTES, "limits.body_bytes=4000000"] + list(extra),
                  label=label).start()


@test(None)
def test_request_body_streamed(_):
    srv = stream_server("body-stream")
    try:
        with Conn(srv.port, timeout=20 * SLOW) as c:
            # The first piece comes back before the rest was sent: the
            # handler reads while the body still arrives.
            c.send(req("/up", method="POST", headers=["Content-Length: 10"]) + b"first")
            r = c.read_response(head=True)
            expect_eq((r.status, r.header("transfer-encoding")), (200, "chunked"), "streamed echo head")
            expect_eq(c.read_line(time.monotonic() + 5 * SLOW, "a chunk size"), b"5", "first chunk size")
            expect_eq(c.read_exact(7, time.monotonic() + 5 * SLOW, "first chunk"), b"first\r\n", "first chunk")
            c.send(b"-more")
            rest = b""
            deadline = time.monotonic() + 5 * SLOW
            while not rest.endswith(b"0\r\n\r\n"):
                check(c._fill(deadline, "the rest of the stream"), "closed mid-stream")
                rest, c.buf = rest + c.buf, b""
            expect_eq(rest, b"5\r\n-more\r\n0\r\n\r\n", "the rest of the stream")

            # Megabytes, chunked in, in pieces of many sizes: all of it, in order.
            body = bytes(range(256)) * 12000  # 3 MB
            pieces = [body[i:i + 7777] for i in range(0, len(body), 7777)]
            c.send(req("/up", method="POST", headers=["Transfer-Encoding: chunked"]))
            reader_out = []

            def reader():
                try:
                    reader_out.append(c.read_response(timeout=60 * SLOW))
                except Exception as e:  # pylint: disable=broad-except
                    reader_out.append(e)
            t = threading.Thread(target=reader)
            t.start()
            c.send(chunked(pieces))
            t.join(90 * SLOW)
            check(reader_out and isinstance(reader_out[0], Response),
                  "no response to the chunked upload: %s" % (reader_out or "timeout"))
            expect_eq(len(reader_out[0].body), len(body), "echoed length")
            check(reader_out[0].body == body, "the echoed bytes differ")

            # Pipelined after a streamed body: the next request is intact.
            c.send(req("/up", method="POST", headers=["Content-Length: 3"], body=b"abc") + req("/hello"))
            expect_eq(c.read_response().body, b"abc", "streamed body before a pipelined request")
            expect_eq(c.read_response().body, b"Hello, World!", "the pipelined request")

        # Expect: 100-continue is answered when the handler asks for the body.
        with Conn(srv.port) as c:
            c.send(req("/up", method="POST", headers=["Content-Length: 4", "Expect: 100-continue"]))
            expect_eq(c.read_response().status, 100, "interim response")
            c.send(b"wxyz")
            expect_eq(c.read_response().body, b"wxyz", "body after 100 Continue")

        # Malformed chunks: the stream ends, the connection closes.
        with Conn(srv.port) as c:
            c.send(req("/up", method="POST", headers=["Transfer-Encoding: chunked"]) + b"zz\r\n")
            check(c.wait_closed(10 * SLOW), "connection left open after a malformed chunk")
        rc = srv.stop()
        check(rc == 0, "master exit status %s" % rc)
        crashes = srv.new_crash_reports()
        check(not crashes, "crash reports:\n" + crashes)
    finally:
        srv.cleanup()


@test(None)
def test_request_body_limits(_):
    srv = stream_server("body-limits", ["limits.body_bytes=1000", "timeouts.body=1"])
    try:
        # A declared length over the limit: 413 before the handler runs.
        status, _, _, closed = http_request(
            srv.port, req("/up", method="POST", headers=["Content-Length: 1001"]), close_wait=5 * SLOW)
        expect_eq((status, closed), (413, True), "Content-Length over limits.body_bytes")
        # A chunked body that grows past it: the stream stops there.
        with Conn(srv.port) as c:
            c.send(req("/up", method="POST", headers=["Transfer-Encoding: chunked"]) +
                   chunked([b"a" * 600, b"b" * 600]), ignore_errors=True)
            r = c.read_response(head=True)
            expect_eq(r.status, 200, "streamed head")
            check(c.wait_closed(10 * SLOW), "connection open after the body passed the limit")
            check(b"b" * 600 not in c.buf, "bytes past the limit were echoed")
        # A client that stops sending mid-body: the body timeout ends it.
        with Conn(srv.port, timeout=10 * SLOW) as c:
            c.send(req("/up", method="POST", headers=["Content-Length: 100"]) + b"partial")
            check(c.wait_closed(10 * SLOW), "a stalled upload was not timed out")
        expect_eq(get(srv.port, "/hello").body, b"Hello, World!", "the server after all that")
    finally:
        srv.cleanup()
