# Streamed responses (read into suite.py's namespace): cr_response_flush
# sends the head and each piece as it is written, in chunks to HTTP/1.1
# clients and delimited by the close to HTTP/1.0 ones. The delay module
# streams with ?chunks=K: from its handler (blocking, /delay) or from core
# timers (suspended, /wait, on the event MPM's event thread).


def piece(ms, size=0):
    text = b"waited %d ms" % ms
    return text + b"x" * max(0, size - len(text) - 1) + b"\n"


def read_chunk(c, deadline):
    """One chunk off the wire: its data, or None for the last chunk."""
    line = c.read_line(deadline, "a chunk size").decode("latin-1")
    check(re.match(r"^[0-9a-f]+$", line), "bad chunk size line %s" % short(line))
    n = int(line, 16)
    if n == 0:
        expect_eq(c.read_line(deadline, "the end of the trailer"), b"", "after the last chunk")
        return None
    data = c.read_exact(n, deadline, "chunk data")
    expect_eq(c.read_exact(2, deadline, "CRLF after a chunk"), b"\r\n", "chunk end")
    return data


@test()
def test_stream_chunks_arrive_as_flushed(srv):
    for path in ("/delay", "/wait"):
        with Conn(srv.port, timeout=10 * SLOW) as c:
            c.send(req("%s?ms=400&chunks=3" % path))
            r = c.read_response(head=True)  # the head only: the chunks are read below
            expect_eq((r.status, r.header("transfer-encoding"), r.header("content-length")),
                      (200, "chunked", None), path + " streamed head")
            deadline = time.monotonic() + 10 * SLOW
            first = read_chunk(c, deadline)
            expect_eq(first, piece(400), path + " first chunk")
            # The first piece was sent when it was written, not with the
            # response's end 800 ms later.
            check(b"0\r\n\r\n" not in c.buf, "%s: the whole stream came at once" % path)
            chunks = [first]
            while True:
                data = read_chunk(c, deadline)
                if data is None:
                    break
                chunks.append(data)
            expect_eq(chunks, [piece(400)] * 3, path + " chunks")
            # The connection stays usable after the last chunk.
            c.send(req("/hello"))
            expect_eq(c.read_response().body, b"Hello, World!", path + " keep-alive after a stream")


@test()
def test_stream_http10_and_head(srv):
    for path in ("/delay", "/wait"):
        with Conn(srv.port) as c:
            c.send(req("%s?ms=20&chunks=4" % path, version="1.0"))
            r = c.read_response()  # no length: read to the close
            check(r.header("transfer-encoding") is None, "chunked to an HTTP/1.0 client")
            expect_eq(r.body, piece(20) * 4, path + " HTTP/1.0 stream body")
            check(c.eof, "the connection of an HTTP/1.0 stream stayed open")
        with Conn(srv.port) as c:
            c.send(req("%s?ms=10&chunks=2" % path, method="HEAD"))
            r = c.read_response(head=True)
            expect_eq((r.status, r.header("transfer-encoding")), (200, "chunked"), path + " HEAD")
            c.send(req("/hello"))
            r = c.read_response()
            expect_eq(r.body, b"Hello, World!", path + " after HEAD: no stray body bytes")


@test()
def test_stream_slow_reader(srv):
    """Megabytes streamed at once to a client that reads late: the server
    queues what the socket does not take (event thread) or waits for it
    (other threads), and every byte arrives in order."""
    size, count = 65536, 100  # beyond what loopback socket buffers hold
    for path in ("/wait", "/delay"):
        with Conn(srv.port, timeout=30 * SLOW) as c:
            c.send(req("%s?ms=0&chunks=%d&size=%d" % (path, count, size)))
            time.sleep(1.0 * SLOW)  # let the socket buffers fill up
            r = c.read_response(timeout=30 * SLOW)
            expect_eq(r.status, 200, path + " status")
            expect_eq(len(r.body), size * count, path + " streamed length")
            check(r.body == piece(0, size) * count, path + ": the streamed bytes differ")
            # And the server is still fine for this connection.
            c.send(req("/hello"))
            expect_eq(c.read_response().body, b"Hello, World!", path + " after a long stream")
