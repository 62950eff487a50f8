# mod_static: validators (ETag, Last-Modified), conditional requests (304),
# byte ranges (206, 416), methods and paths that must never reach outside
# root. Read into suite.py's namespace: get, Conn, req, check, expect_eq,
# http_request, read_file, Server, WWW, MPM and @test come from there.

STATIC_FILE = "/static/1k.bin"
STATIC_PATH = os.path.join(WWW, "static", "1k.bin")
ETAG_RE = re.compile(r'^"[0-9a-f]+-[0-9a-f]+-[0-9a-f]+"$')


def static_etag(path):
    """The ETag mod_static builds: inode, size, mtime in ns, in hex."""
    st = os.stat(path)
    return '"%x-%x-%x"' % (st.st_ino, st.st_size, st.st_mtime_ns)


def static_mtime(path):
    return int(os.stat(path).st_mtime)


def imf_date(t):
    return email.utils.formatdate(t, usegmt=True)


def expect_304(c, path, headers, what, etag=None, head=False):
    """Sends a conditional request on c and checks a bodiless 304 that keeps
    the connection open. etag: the ETag it must carry (default 1k.bin's)."""
    c.send(req(path, method="HEAD" if head else "GET", headers=headers))
    r = c.read_response(head=head)
    expect_eq(r.status, 304, "%s: status" % what)
    check(r.header("content-length") is None,
          "%s: 304 with Content-Length %s" % (what, r.header("content-length")))
    expect_eq(r.header("etag"), etag or static_etag(STATIC_PATH), "%s: 304 ETag" % what)
    check(r.header("last-modified") is not None, "%s: 304 without Last-Modified" % what)
    extra = c.wait_data(0.2 * SLOW)
    check(not extra, "%s: 304 followed by %s" % (what, short(extra)))
    check(not c.eof, "%s: server closed the connection after a 304" % what)
    return r


@test()
def test_static_etag(srv):
    want = static_etag(STATIC_PATH)
    r1 = get(srv.port, STATIC_FILE)
    expect_eq(r1.status, 200, "status")
    etag = r1.header("etag")
    check(etag is not None, "no ETag on a file response")
    check(ETAG_RE.match(etag), "ETag %s is not a strong tag of three hex numbers" % short(etag))
    expect_eq(etag, want, "ETag (inode-size-mtime_ns)")
    expect_eq(r1.header("last-modified"), imf_date(static_mtime(STATIC_PATH)), "Last-Modified")
    expect_eq(r1.header("accept-ranges"), "bytes", "Accept-Ranges")
    # Stable: again, on another connection (maybe another child), and for HEAD.
    r2 = get(srv.port, STATIC_FILE)
    expect_eq(r2.header("etag"), etag, "ETag of a second GET")
    r3 = get(srv.port, STATIC_FILE, method="HEAD")
    expect_eq((r3.status, r3.header("etag"), r3.body), (200, etag, b""), "HEAD status, ETag, body")
    expect_eq(r3.header("content-length"), "1024", "HEAD Content-Length")
    # The index of a folder has its own.
    r4 = get(srv.port, "/")
    expect_eq(r4.header("etag"), static_etag(os.path.join(WWW, "index.html")), "ETag of /")


@test()
def test_static_if_none_match(srv):
    etag = static_etag(STATIC_PATH)
    body = read_file(STATIC_PATH)
    with Conn(srv.port) as c:  # one connection: keep-alive must survive each 304
        expect_304(c, STATIC_FILE, ["If-None-Match: " + etag], "If-None-Match: the ETag")
        c.send(req(STATIC_FILE))
        r = c.read_response()
        expect_eq((r.status, r.body), (200, body), "GET after a 304 on the same connection")
        expect_304(c, STATIC_FILE, ["If-None-Match: W/" + etag], "If-None-Match: W/ (weak compare)")
        expect_304(c, STATIC_FILE, ['If-None-Match: "nope", W/"x" ,%s' % etag],
                   "If-None-Match: a list holding the ETag")
        expect_304(c, STATIC_FILE, ['If-None-Match: "a"', "If-None-Match: " + etag],
                   "If-None-Match: two fields")
        expect_304(c, STATIC_FILE, ["If-None-Match: *"], "If-None-Match: *")
        expect_304(c, STATIC_FILE, ["If-None-Match: " + etag], "HEAD If-None-Match", head=True)
        index_etag = static_etag(os.path.join(WWW, "index.html"))
        expect_304(c, "/", ["If-None-Match: " + index_etag], "If-None-Match on a folder's index",
                   etag=index_etag)
        for value in ('"nope"', '"%s"' % etag.strip('"')[:-1], etag.strip('"')):
            c.send(req(STATIC_FILE, headers=["If-None-Match: " + value]))
            r = c.read_response()
            expect_eq((r.status, r.body), (200, body), "If-None-Match: %s (no match)" % value)
            expect_eq(r.header("etag"), etag, "ETag of the 200")
        # If-None-Match decides alone: a matching If-Modified-Since is ignored.
        since = imf_date(static_mtime(STATIC_PATH))
        c.send(req(STATIC_FILE, headers=['If-None-Match: "nope"', "If-Modified-Since: " + since]))
        r = c.read_response()
        expect_eq(r.status, 200, "If-None-Match mismatch with If-Modified-Since equal")


@test()
def test_static_if_modified_since(srv):
    mtime = static_mtime(STATIC_PATH)
    body = read_file(STATIC_PATH)
    with Conn(srv.port) as c:
        expect_304(c, STATIC_FILE, ["If-Modified-Since: " + imf_date(mtime)],
                   "If-Modified-Since: Last-Modified")
        expect_304(c, STATIC_FILE, ["If-Modified-Since: " + imf_date(mtime + 3600)],
                   "If-Modified-Since: an hour later")
        rfc850 = time.strftime("%A, %d-%b-%y %H:%M:%S GMT", time.gmtime(mtime))
        expect_304(c, STATIC_FILE, ["If-Modified-Since: " + rfc850], "If-Modified-Since: RFC 850")
        asctime = time.asctime(time.gmtime(mtime))
        expect_304(c, STATIC_FILE, ["If-Modified-Since: " + asctime], "If-Modified-Since: asctime")
        expect_304(c, STATIC_FILE, ["If-Modified-Since: " + imf_date(mtime)],
                   "HEAD If-Modified-Since", head=True)
        for value in (imf_date(mtime - 1), imf_date(0), "yesterday", imf_date(mtime)[:-4],
                      imf_date(mtime).replace("GMT", "UTC"), "Mon, 31 Feb 2020 00:00:00 GMT",
                      imf_date(mtime).lower()):
            c.send(req(STATIC_FILE, headers=["If-Modified-Since: " + value]))
            r = c.read_response()
            expect_eq((r.status, r.body), (200, body),
                      "If-Modified-Since: %s (older or not a date)" % value)
        c.send(req(STATIC_FILE, headers=["If-Modified-Since: " + imf_date(mtime)] * 2))
        r = c.read_response()
        expect_eq(r.status, 200, "If-Modified-Since sent twice (ignored)")


def expect_range(c, rng, status, content_range, data, what, headers=()):
    c.send(req(STATIC_FILE, headers=["Range: " + rng] + list(headers)))
    r = c.read_response()
    expect_eq(r.status, status, "%s: status" % what)
    expect_eq(r.header("content-range"), content_range, "%s: Content-Range" % what)
    if data is not None:
        expect_eq(r.body, data, "%s: body" % what)
        expect_eq(r.header("content-length"), str(len(data)), "%s: Content-Length" % what)
    return r


@test()
def test_static_range(srv):
    body = read_file(STATIC_PATH)
    size = len(body)
    etag = static_etag(STATIC_PATH)
    mtime = static_mtime(STATIC_PATH)
    with Conn(srv.port) as c:
        r = expect_range(c, "bytes=0-99", 206, "bytes 0-99/%d" % size, body[:100], "first bytes")
        expect_eq(r.header("etag"), etag, "206 ETag")
        expect_eq(r.header("accept-ranges"), "bytes", "206 Accept-Ranges")
        check((r.header("content-type") or "").startswith("application/octet-stream"),
              "206 Content-Type %s" % short(r.header("content-type")))
        expect_range(c, "bytes=10-10", 206, "bytes 10-10/%d" % size, body[10:11], "one byte")
        expect_range(c, "bytes=-100", 206, "bytes %d-%d/%d" % (size - 100, size - 1, size),
                     body[-100:], "suffix")
        expect_range(c, "bytes=-5000", 206, "bytes 0-%d/%d" % (size - 1, size), body,
                     "suffix longer than the file")
        expect_range(c, "bytes=1000-", 206, "bytes 1000-%d/%d" % (size - 1, size), body[1000:],
                     "open-ended")
        expect_range(c, "bytes=1000-99999999999999999999999", 206,
                     "bytes 1000-%d/%d" % (size - 1, size), body[1000:], "end past the file")
        expect_range(c, "BYTES=5-9", 206, "bytes 5-9/%d" % size, body[5:10], "unit case")
        for rng in ("bytes=%d-" % size, "bytes=5000-6000", "bytes=-0", "bytes=9-5",
                    "bytes=99999999999999999999999-"):
            r = expect_range(c, rng, 416, "bytes */%d" % size, None, "unsatisfiable %s" % rng)
            check(body not in r.body, "416 for %s carries the file" % rng)
        for rng in ("bytes=0-1,5-6", "bytes=0-1, -3", "items=0-1", "bytes=a-b", "bytes=-",
                    "bytes=1-2-3", "bytes 0-1", ""):
            expect_range(c, rng, 200, None, body, "ignored Range %r" % rng)
        # If-Range: the range only when the validator still matches.
        expect_range(c, "bytes=0-9", 206, "bytes 0-9/%d" % size, body[:10], "If-Range: ETag",
                     ["If-Range: " + etag])
        expect_range(c, "bytes=0-9", 206, "bytes 0-9/%d" % size, body[:10], "If-Range: date",
                     ["If-Range: " + imf_date(mtime)])
        for value in ('"nope"', "W/" + etag, imf_date(mtime - 1), imf_date(mtime + 1), "garbage"):
            expect_range(c, "bytes=0-9", 200, None, body, "If-Range: %s (mismatch)" % value,
                         ["If-Range: " + value])
        # A 304 wins over Range; a failed If-None-Match leaves the range.
        expect_304(c, STATIC_FILE, ["Range: bytes=0-9", "If-None-Match: " + etag],
                   "Range with a matching If-None-Match")
        expect_range(c, "bytes=0-9", 206, "bytes 0-9/%d" % size, body[:10],
                     "Range with If-None-Match mismatch", ['If-None-Match: "nope"'])
        # HEAD: range handling is for GET only, so the whole file's headers.
        c.send(req(STATIC_FILE, method="HEAD", headers=["Range: bytes=0-99"]))
        r = c.read_response(head=True)
        expect_eq((r.status, r.header("content-length"), r.header("content-range")),
                  (200, str(size), None), "HEAD with Range (status, Content-Length, Content-Range)")
        extra = c.wait_data(0.2 * SLOW)
        check(not extra, "HEAD with Range followed by %s" % short(extra))
        c.send(req(STATIC_FILE))
        r = c.read_response()
        expect_eq((r.status, r.body), (200, body), "GET after HEAD with Range")


@test()
def test_static_methods(srv):
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"):
        with Conn(srv.port) as c:
            c.send(req(STATIC_FILE, method=method, headers=["Content-Length: 2"], body=b"hi"))
            r = c.read_response()
            expect_eq(r.status, 405, "%s status" % method)
            expect_eq(r.header("allow"), "GET, HEAD", "%s Allow" % method)
            check(read_file(STATIC_PATH) not in r.body, "%s served the file" % method)
            c.send(req(STATIC_FILE))
            expect_eq(c.read_response().status, 200, "GET after %s on the same connection" % method)


def static_tree():
    """A temporary root and a secret beside it:
        TMP/secret.txt            outside root
        TMP/root/index.html
        TMP/root/big.bin          256 KiB
        TMP/root/..data           a name that starts with two dots
        TMP/root/sub/a.txt        a folder without an index
        TMP/root/escape -> ../secret.txt
        TMP/root/escape_dir -> ..
    """
    tmp = tempfile.mkdtemp(prefix="corral-it-static-")
    os.chmod(tmp, 0o755)
    root = os.path.join(tmp, "root")
    os.makedirs(os.path.join(root, "sub"))
    os.chmod(root, 0o755)
    os.chmod(os.path.join(root, "sub"), 0o755)
    files = {
        os.path.join(tmp, "secret.txt"): b"SECRET outside the root\n",
        os.path.join(root, "index.html"): b"<html>temp root</html>\n",
        os.path.join(root, "big.bin"): bytes((i * 7 + i // 251) & 0xff for i in range(256 * 1024)),
        os.path.join(root, "..data"): b"SECRET two dots\n",
        os.path.join(root, "sub", "a.txt"): b"a\n",
    }
    for path, data in files.items():
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o644)
    os.symlink("../secret.txt", os.path.join(root, "escape"))
    os.symlink("..", os.path.join(root, "escape_dir"))
    return tmp, root


# The two ways mod_static opens a file: openat2 (RESOLVE_BENEATH) where the
# kernel has it, and the walk by hand that CR_STATIC_NO_OPENAT2=1 selects.
STATIC_RESOLVERS = (("openat2", {}), ("walk", {"CR_STATIC_NO_OPENAT2": "1"}))
WALK_NOTICE = "resolving paths without openat2"


def static_server(root, name, env):
    """A started server with one static route on root; with the walk, its
    log must show that the knob took effect."""
    route = 'routes=({ path = "/"; module = "static"; root = "%s"; })' % root
    srv = Server(MPM, fresh_opts() + [route], label="static-" + name, env=env)
    try:
        srv.start()
        if env:
            check(WALK_NOTICE in srv.logs(100), "the knob was ignored\n" + srv.logs())
    except Fail as e:
        srv.cleanup()
        raise Fail("%s: %s" % (name, e))
    return srv


@test(None)
def test_static_outside_root(_):
    """Dot segments however spelled, NUL bytes and symlinks never reach a
    file outside root, with openat2 and without; big files serve ranges
    under every MPM."""
    tmp, root = static_tree()
    try:
        for name, env in STATIC_RESOLVERS:
            srv = static_server(root, name, env)
            try:
                static_outside_root(srv, tmp, root)
            except Fail as e:
                raise Fail("%s: %s" % (name, e))
            finally:
                srv.cleanup()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def static_outside_root(srv, tmp, root):
    """The checks of test_static_outside_root against one server."""
    r = get(srv.port, "/")
    expect_eq((r.status, r.body), (200, b"<html>temp root</html>\n"), "GET / of the temp root")
    big = read_file(os.path.join(root, "big.bin"))
    r = get(srv.port, "/big.bin")
    expect_eq((r.status, len(r.body), r.body == big), (200, len(big), True), "GET /big.bin")
    r = get(srv.port, "/big.bin", headers=["Range: bytes=100000-200000"])
    expect_eq((r.status, r.header("content-range")),
              (206, "bytes 100000-200000/%d" % len(big)), "range of big.bin")
    check(r.body == big[100000:200001], "range of big.bin: wrong bytes (%d)" % len(r.body))
    r = get(srv.port, "/sub")
    expect_eq((r.status, r.header("location")), (301, "/sub/"), "GET /sub (a folder)")
    r = get(srv.port, "/sub/")
    expect_eq(r.status, 403, "GET /sub/ (a folder without an index: no listing)")
    check(b"a.txt" not in r.body, "GET /sub/ lists the folder")
    expect_eq(get(srv.port, "/sub/%2e/a.txt").body, b"a\n", "GET /sub/%2e/a.txt")
    expect_eq(get(srv.port, "/sub/x/%2e%2E/a.txt").body, b"a\n", "GET /sub/x/%2e%2E/a.txt")

    attempts = [
        "/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt", "/%2e./secret.txt",
        "/.%2E/secret.txt", "/sub/../../secret.txt", "/sub/%2e%2e/%2e%2e/secret.txt",
        "/sub/..%2f..%2fsecret.txt", "/sub%2f..%2f..%2fsecret.txt", "/%2e%2e%2fsecret.txt",
        "/..%5csecret.txt", "/%252e%252e/secret.txt", "/escape", "/escape_dir/secret.txt",
        "/escape_dir/root/index.html", "/..data", "/%2e.data", "/sub/../..data",
        "/index.html%00", "/index.html%00.txt", "/%00", "/sub/%00/../a.txt",
        "/sub/a.txt%0a", "/%0d%0aX-Injected:%20yes", "/../../../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/" + "%2e%2e/" * 12 + "etc/passwd", "/" + root + "/../secret.txt",
        "//" + tmp.lstrip("/") + "/secret.txt",
    ]
    problems = []
    for path in attempts:
        for method in ("GET", "HEAD"):
            try:
                st, headers, body, _ = http_request(srv.port, req(path, method=method),
                                                    head=method == "HEAD")
            except Fail as e:
                problems.append("%s %s: %s" % (method, path, e))
                continue
            if not 400 <= st < 500:
                problems.append("%s %s: status %d, want 4xx" % (method, path, st))
            if b"SECRET" in body or b"root:" in body:
                problems.append("%s %s: served a file outside root" % (method, path))
            if "x-injected" in headers:
                problems.append("%s %s: a header was injected" % (method, path))
    check(not problems, "; ".join(problems))
    # A %2f inside a name does not split it into dot segments either.
    r = get(srv.port, "/sub%2fa.txt")
    check(r.status in (200, 404) and b"SECRET" not in r.body, "GET /sub%%2fa.txt: %r" % r)
    check(srv.alive(), "master exited\n" + srv.logs())
    crashes = srv.new_crash_reports()
    check(not crashes, "crash reports in the server's logs:\n" + crashes)


def symlink_tree():
    """A temporary root with symlinks of every kind, beside things outside:
        TMP/secret.txt, TMP/outside/x.txt     outside root
        TMP/root/file.txt, sub/a.txt, sub/deeper/b.txt
        rel_link -> file.txt                  relative, inside: served
        sub/up_link -> ../file.txt            relative with "..", inside: served
        sub/dir_link -> deeper                a relative folder inside: served
        sub/chain -> ../rel_link              a link to a link inside: served
        abs_link -> TMP/root/file.txt         absolute, to a file inside
        abs_dir -> TMP/root/sub               absolute, to a folder inside
        escape_rel -> ../secret.txt, escape_abs -> TMP/secret.txt
        out_dir -> ../outside, out_dir_abs -> TMP/outside   folders outside
        sub/deep_escape -> ../../secret.txt
        reenter -> ../root/file.txt           leaves root, then comes back
        loop -> loop
    """
    tmp = tempfile.mkdtemp(prefix="corral-it-symlinks-")
    root = os.path.join(tmp, "root")
    for d in (tmp, os.path.join(tmp, "outside"), root, os.path.join(root, "sub"),
              os.path.join(root, "sub", "deeper")):
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
    files = {
        os.path.join(tmp, "secret.txt"): b"SECRET outside the root\n",
        os.path.join(tmp, "outside", "x.txt"): b"SECRET in a folder outside\n",
        os.path.join(root, "file.txt"): b"inside\n",
        os.path.join(root, "sub", "a.txt"): b"a\n",
        os.path.join(root, "sub", "deeper", "b.txt"): b"b\n",
    }
    for path, data in files.items():
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o644)
    links = {
        "rel_link": "file.txt", "sub/up_link": "../file.txt", "sub/dir_link": "deeper",
        "sub/chain": "../rel_link", "abs_link": os.path.join(root, "file.txt"),
        "abs_dir": os.path.join(root, "sub"), "escape_rel": "../secret.txt",
        "escape_abs": os.path.join(tmp, "secret.txt"), "out_dir": "../outside",
        "out_dir_abs": os.path.join(tmp, "outside"), "sub/deep_escape": "../../secret.txt",
        "reenter": "../root/file.txt", "loop": "loop",
    }
    for name, target in links.items():
        os.symlink(target, os.path.join(root, name))
    return tmp, root


# Path -> the answer both ways must give. The rule is RESOLVE_BENEATH's: a
# relative symlink that stays below root is followed; an absolute one, or
# any step (a "..", a link, an intermediate folder) that leaves root, is 403.
SYMLINK_ANSWERS = [
    ("/rel_link", 200, b"inside\n"),
    ("/sub/up_link", 200, b"inside\n"),
    ("/sub/dir_link/b.txt", 200, b"b\n"),
    ("/sub/chain", 200, b"inside\n"),
    ("/abs_link", 403, None),
    ("/abs_dir/a.txt", 403, None),
    ("/escape_rel", 403, None),
    ("/escape_abs", 403, None),
    ("/out_dir/x.txt", 403, None),
    ("/out_dir_abs/x.txt", 403, None),
    ("/sub/deep_escape", 403, None),
    ("/reenter", 403, None),
    ("/loop", 403, None),
    ("/sub/dir_link/missing", 404, None),
]


@test(None)
def test_static_symlinks(_):
    """openat2 and the walk without it give the same answer for every kind
    of symlink, and neither reaches outside root."""
    tmp, root = symlink_tree()
    answers = {}
    try:
        for name, env in STATIC_RESOLVERS:
            srv = static_server(root, name, env)
            try:
                for path, _, _ in SYMLINK_ANSWERS:
                    r = get(srv.port, path)
                    check(b"SECRET" not in r.body, "%s: %s served a file outside root"
                          % (name, path))
                    answers[(name, path)] = (r.status, r.body if r.status == 200 else None)
                crashes = srv.new_crash_reports()
                check(not crashes, "%s: crash reports in the logs:\n%s" % (name, crashes))
            finally:
                srv.cleanup()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    names = [name for name, _ in STATIC_RESOLVERS]
    differ = ["%s: %s" % (path, ", ".join("%s %s" % (n, answers[(n, path)][0]) for n in names))
              for path, _, _ in SYMLINK_ANSWERS
              if len(set(answers[(n, path)] for n in names)) > 1]
    check(not differ, "openat2 and the walk disagree: " + "; ".join(differ))
    wrong = ["%s %s: %s, want %s" % (n, path, answers[(n, path)][0], status)
             for path, status, body in SYMLINK_ANSWERS for n in names
             if answers[(n, path)] != (status, body)]
    check(not wrong, "; ".join(wrong))
