#!/usr/bin/env python3
"""Integration tests: the real corral binary on loopback, for one MPM.

    python3 suite.py --mpm prefork [--list] [TEST ...]

Starts `corral -D FOREGROUND` with the demo config (etc/corral.conf) and
command-line overrides (port, logs and pidfile in a temporary folder), talks
HTTP/1.1 to it over real sockets, and prints one line per test:

    ok NAME
    ok NAME # SKIP why
    FAIL NAME: reason
    MPM prefork: 13 passed, 1 failed, 2 skipped

Standard library only. Every wait is bounded; every process started here is
stopped by its PID when its test ends, and again at exit whatever happened.

The one-shot helpers (get, http_request, expect_error) send each request
once as the test wrote it, then again split at random points into pieces
written apart, and again pipelined (twice in one write), each on a new
connection, and check that the answers match the first one (see
replay_request).
A test opts out with replay=False or `with no_replay():`.

Environment:
    CR_TOP_SRCDIR    source tree (default: two folders above this file)
    CR_TOP_BUILDDIR  build tree (default: $CR_TOP_SRCDIR/build)
    CR_CORRAL        the server binary (default: $CR_TOP_BUILDDIR/corral)
    CR_TEST_SLOW     multiplies every timeout, e.g. 5 under valgrind (default 1)
    CR_TEST_KEEP     if set, keep the temporary folders (logs) of the servers
    CR_TEST_SEED     seed of the replays' split points (default: random,
                     printed at the start and with each replay failure)
    CR_TEST_REPLAY   0: no replays (each request is sent once)
"""

import argparse
import atexit
import contextlib
import ctypes
import email.utils
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

SRCDIR = os.environ.get("CR_TOP_SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILDDIR = os.environ.get("CR_TOP_BUILDDIR") or os.path.join(SRCDIR, "build")
CORRAL = os.environ.get("CR_CORRAL") or os.path.join(BUILDDIR, "corral")
CONF = os.path.join(SRCDIR, "etc", "corral.conf")
WWW = os.path.join(SRCDIR, "etc", "www")

SLOW = float(os.environ.get("CR_TEST_SLOW") or "1")
IO_TIMEOUT = 5.0 * SLOW      # one request/response exchange
START_TIMEOUT = 10.0 * SLOW  # until the listener accepts connections
STOP_TIMEOUT = 10.0 * SLOW   # master exit after SIGTERM
TEST_TIMEOUT = 120.0 * SLOW  # hard bound on one test, fixture start included
HOST = "127.0.0.1"

MPM = None  # set from --mpm

# Signs of memory errors or crashes in a server's output or error log.
CRASH_RE = re.compile(
    r"AddressSanitizer|LeakSanitizer|ThreadSanitizer|MemorySanitizer|"
    r"UndefinedBehaviorSanitizer|runtime error:|"
    r"\b(?:SIGSEGV|SIGBUS|SIGABRT|SIGFPE|SIGILL|Segmentation fault)\b|"
    r"\bsignal (?:4|6|7|8|11)\b")

IMF_DATE_RE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"\d{4} \d\d:\d\d:\d\d GMT$")


class Fail(Exception):
    """A test's expectation was not met; the message says which."""


class TestTimeout(Exception):
    """The per-test alarm went off."""


class Skip(Exception):
    """Raised by a test that cannot run here (a missing feature or
    privilege); the message says why. Counted as skipped, not passed."""


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def expect_eq(got, want, what):
    if got != want:
        raise Fail("%s: got %s, want %s" % (what, short(got), short(want)))


def short(v, n=160):
    s = repr(v)
    return s if len(s) <= n else s[:n] + "...(%d chars)" % len(s)


# --------------------------------------------------------------------------
# processes


def proc_stat(pid):
    """(state, ppid, starttime) of pid, or None when it does not exist."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = s[s.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[19])


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    st = proc_stat(pid)
    return st is not None and st[0] not in "ZXx"


def children_of(pid):
    """Live (non-zombie) child PIDs of pid."""
    kids = set()
    task = "/proc/%d/task" % pid
    try:
        tids = os.listdir(task)
    except (FileNotFoundError, ProcessLookupError):
        return kids
    have_file = False
    for tid in tids:
        try:
            with open("%s/%s/children" % (task, tid)) as f:
                kids.update(int(x) for x in f.read().split())
            have_file = True
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
    if not have_file:  # kernel without CONFIG_PROC_CHILDREN: scan /proc
        for name in os.listdir("/proc"):
            if name.isdigit():
                st = proc_stat(int(name))
                if st and st[1] == pid:
                    kids.add(int(name))
    return {k for k in kids if pid_alive(k)}


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except (FileNotFoundError, ProcessLookupError):
        return None


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def port_refuses(port):
    """True when a connect to the port is refused (nothing listens)."""
    try:
        s = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    s.close()
    return False


try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:
    _LIBC = None


def _child_setup():
    # If this runner dies without cleaning up (SIGKILL), the master gets a
    # SIGTERM and stops its children itself.
    if _LIBC is not None:
        try:
            _LIBC.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
        except Exception:  # pylint: disable=broad-except
            pass


SERVERS = []  # every Server started, for the exit-time cleanup


class Server:
    """One corral master started in the foreground on a free loopback port."""

    def __init__(self, mpm, opts=(), label="server", env=None):
        self.mpm = mpm
        self.opts = list(opts)
        self.env = dict(env or {})  # extra environment of the server process
        self.label = label
        self.tmp = tempfile.mkdtemp(prefix="corral-it-%s-%s-" % (mpm, label))
        os.chmod(self.tmp, 0o755)  # readable if the children drop privileges
        self.error_log = os.path.join(self.tmp, "error.log")
        self.access_log = os.path.join(self.tmp, "access.log")
        self.pidfile = os.path.join(self.tmp, "corral.pid")
        self.output = os.path.join(self.tmp, "output.log")  # its stdout + stderr
        self.proc = None
        self.port = None
        self.seen = {}  # child pid -> starttime, to kill leftovers safely
        self.offsets = {}  # log file -> bytes already scanned for crashes
        SERVERS.append(self)

    def argv(self):
        a = [CORRAL, "-f", getattr(self, "conf", CONF), "-D", "FOREGROUND",
             "-o", "mpm=" + self.mpm,
             "-o", 'listen=["%s:%d"]' % (HOST, self.port),
             "-o", 'log.error="%s"' % self.error_log,
             "-o", 'log.access="%s"' % self.access_log,
             "-o", 'pidfile="%s"' % self.pidfile]
        for o in self.opts:
            a += ["-o", o]
        return a

    def start(self):
        check(os.access(CORRAL, os.X_OK), "no server binary at %s (set CR_TOP_BUILDDIR)" % CORRAL)
        env = dict(os.environ, TZ="UTC", **self.env)
        for attempt in range(3):
            self.port = free_port()
            with open(self.output, "ab") as out:
                self.proc = subprocess.Popen(
                    self.argv(), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    cwd=self.tmp, env=env, start_new_session=True, preexec_fn=_child_setup)
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                if self.proc.poll() is not None:
                    text = self.logs()
                    if "in use" in text and attempt < 2:  # lost the port race: retry
                        break
                    raise Fail("server exited with status %s before accepting connections\n%s"
                               % (self.proc.returncode, text))
                try:
                    socket.create_connection((HOST, self.port), timeout=1.0).close()
                    return self
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise Fail("server not accepting on port %d after %.0f s\n%s"
                               % (self.port, START_TIMEOUT, self.logs()))
                time.sleep(0.05)
        raise Fail("server could not start\n" + self.logs())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid

    def children(self):
        kids = children_of(self.proc.pid) if self.alive() else set()
        for k in kids:
            if k not in self.seen:
                st = proc_stat(k)
                if st:
                    self.seen[k] = st[2]
        return kids

    def wait_children(self, n=1, timeout=None):
        deadline = time.monotonic() + (timeout or START_TIMEOUT)
        while True:
            kids = self.children()
            if len(kids) >= n:
                return kids
            check(self.alive(), "master exited\n" + self.logs())
            if time.monotonic() > deadline:
                raise Fail("master has %d children, want at least %d\n%s"
                           % (len(kids), n, self.logs()))
            time.sleep(0.05)

    def logs(self, lines=25):
        parts = []
        for path in (self.error_log, self.output):
            try:
                with open(path, "rb") as f:
                    text = f.read().decode("utf-8", "replace").splitlines()
            except FileNotFoundError:
                continue
            if text:
                parts.append("--- %s (last %d lines)" % (os.path.basename(path), lines))
                parts.extend(text[-lines:])
        return "\n".join(parts) or "(the server logged nothing)"

    def new_crash_reports(self):
        """Crash or sanitizer lines logged since the last call, or ''."""
        found = []
        for path in (self.error_log, self.output):
            try:
                with open(path, "rb") as f:
                    f.seek(self.offsets.get(path, 0))
                    data = f.read()
            except FileNotFoundError:
                continue
            self.offsets[path] = self.offsets.get(path, 0) + len(data)
            for line in data.decode("utf-8", "replace").splitlines():
                if CRASH_RE.search(line):
                    found.append(line)
        return "\n".join(found[:20])

    def stop(self):
        """SIGTERM the master, wait, then SIGKILL whatever is left (by PID)."""
        if self.proc is None:
            return None
        self.children()  # note the current children
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(STOP_TIMEOUT)
            except ProcessLookupError:
                self.proc.wait(STOP_TIMEOUT)
        deadline = time.monotonic() + 5.0 * SLOW
        for pid, start in self.seen.items():
            while True:
                st = proc_stat(pid)
                if st is None or st[2] != start or st[0] in "ZXx":
                    break  # gone, reaped, or the PID now belongs to someone else
                if time.monotonic() > deadline:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    break
                time.sleep(0.05)
        return self.proc.returncode

    def cleanup(self):
        try:
            self.stop()
        finally:
            if not os.environ.get("CR_TEST_KEEP"):
                shutil.rmtree(self.tmp, ignore_errors=True)


def cleanup_all():
    for s in SERVERS:
        try:
            s.cleanup()
        except Exception:  # pylint: disable=broad-except
            pass


atexit.register(cleanup_all)


# --------------------------------------------------------------------------
# HTTP over raw sockets


class Response:
    def __init__(self, version, status, reason, header_lines, body):
        self.version = version            # "HTTP/1.1"
        self.status = status              # 200
        self.reason = reason
        self.header_lines = header_lines  # [(name, value)] as received
        self.headers = {}                 # lowercase name -> value (repeats joined by ", ")
        for k, v in header_lines:
            k = k.lower()
            self.headers[k] = self.headers[k] + ", " + v if k in self.headers else v
        self.body = body

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def has_token(self, name, token):
        """Whether a comma-separated header (Connection...) lists token."""
        v = self.headers.get(name.lower(), "")
        return token.lower() in (t.strip().lower() for t in v.split(","))

    def __repr__(self):
        return "<%s %d %s, %d byte body>" % (self.version, self.status, self.headers, len(self.body))


class Conn:
    """A client connection with a read buffer and deadline-bounded reads."""

    def __init__(self, port, timeout=None):
        self.timeout = timeout or IO_TIMEOUT
        self.port = port
        self.sock = socket.create_connection((HOST, port), timeout=self.timeout)
        self.buf = b""
        self.eof = False   # the server closed (FIN or RST)
        self.reset = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data, ignore_errors=False):
        """Sends all of data. With ignore_errors, a server that closes early
        (EPIPE / ECONNRESET) is not an error: its answer is still readable."""
        try:
            self.sock.sendall(data)
        except OSError:
            if not ignore_errors:
                raise

    def exchange(self, raw, head=False, replay=True, varies=False):
        """Sends one request, reads its answer -> Response. Like get, the
        request is then replayed on new connections (see replay_request)."""
        self.send(raw)
        r = self.read_response(head=head)
        replay_request(self.port, raw, r, head=head, mode=replay, varies=varies)
        return r

    def _fill(self, deadline, what):
        """Reads more into buf; False at EOF. Raises Fail at the deadline."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise Fail("timed out waiting for %s; received so far: %s" % (what, short(self.buf)))
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise Fail("timed out waiting for %s; received so far: %s"
                       % (what, short(self.buf))) from None
        except ConnectionResetError:
            self.eof = self.reset = True
            return False
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _take(self, n):
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_line(self, deadline, what):
        while b"\r\n" not in self.buf:
            if not self._fill(deadline, what):
                raise Fail("connection closed while reading %s; got %s" % (what, short(self.buf)))
        i = self.buf.index(b"\r\n")
        line = self._take(i + 2)
        return line[:-2]

    def read_exact(self, n, deadline, what):
        while len(self.buf) < n:
            if not self._fill(deadline, what):
                raise Fail("connection closed after %d of %d bytes of %s"
                           % (len(self.buf), n, what))
        return self._take(n)

    def read_response(self, head=False, timeout=None):
        """Reads one response (a 1xx included). head: the request was HEAD,
        so no body follows whatever the headers say."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline, "a response head"):
                raise Fail("connection closed without a complete response; got %s"
                           % short(self.buf))
        i = self.buf.index(b"\r\n\r\n")
        raw = self._take(i + 4)[:-4].decode("latin-1")
        lines = raw.split("\r\n")
        m = re.match(r"^(HTTP/\d\.\d) (\d\d\d)(?: (.*))?$", lines[0])
        check(m, "bad status line %s" % short(lines[0]))
        version, status, reason = m.group(1), int(m.group(2)), m.group(3) or ""
        hl = []
        for line in lines[1:]:
            check(":" in line and not line[0].isspace(), "bad response header line %s" % short(line))
            k, v = line.split(":", 1)
            check(k == k.strip() and k, "bad response header name %s" % short(line))
            hl.append((k, v.strip()))
        r = Response(version, status, reason, hl, b"")
        te = r.header("transfer-encoding")
        cl = r.header("content-length")
        if head or 100 <= status < 200 or status in (204, 304):
            pass
        elif te is not None:
            check(te.lower() == "chunked", "unexpected Transfer-Encoding %s" % short(te))
            check(cl is None, "response has both Transfer-Encoding and Content-Length")
            r.body = self._read_chunked(deadline)
        elif cl is not None:
            check(re.match(r"^\d+$", cl), "bad Content-Length %s" % short(cl))
            r.body = self.read_exact(int(cl), deadline, "a %s-byte body" % cl)
        else:
            while self._fill(deadline, "a body delimited by close"):
                pass
            r.body = self._take(len(self.buf))
        return r

    def _read_chunked(self, deadline):
        body = b""
        while True:
            line = self.read_line(deadline, "a chunk size").decode("latin-1")
            m = re.match(r"^([0-9A-Fa-f]+)(;.*)?$", line)
            check(m, "bad chunk size line %s" % short(line))
            n = int(m.group(1), 16)
            if n == 0:
                while self.read_line(deadline, "the trailer section"):
                    pass
                return body
            body += self.read_exact(n, deadline, "chunk data")
            expect_eq(self.read_exact(2, deadline, "the CRLF after a chunk"), b"\r\n", "chunk end")

    def wait_data(self, wait):
        """Whatever arrives within `wait` seconds (left in buf), or b''."""
        deadline = time.monotonic() + wait
        try:
            while time.monotonic() < deadline and self._fill(deadline, "data"):
                pass
        except Fail:
            pass
        return self.buf

    def wait_closed(self, timeout=None):
        """True if the server closes the connection within timeout. Data that
        arrives meanwhile is kept in buf."""
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while self._fill(deadline, "the connection to close"):
                pass
        except Fail:
            return False
        return True


def req(path, method="GET", version="1.1", host=True, headers=(), body=b""):
    """Builds a raw request. host: send "Host: 127.0.0.1"."""
    lines = ["%s %s HTTP/%s" % (method, path, version)]
    if host:
        lines.append("Host: " + HOST)
    lines.extend(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def http_request(port, raw, head=False, close_wait=0.0, replay=True, varies=False):
    """One request on a new connection -> (status, headers, body, closed).
    closed: the server closed the connection within close_wait seconds after
    the response (with 0: only if it had already done so). replay, varies:
    see replay_request."""
    with Conn(port) as c:
        c.send(raw, ignore_errors=True)
        r = c.read_response(head=head)
        closed = c.wait_closed(close_wait) if close_wait else c.eof
    replay_request(port, raw, r, head=head, mode=replay, varies=varies)
    return r.status, r.headers, r.body, closed


def get(port, path, replay=True, varies=False, **kw):
    """A request built by req(path, **kw) (GET unless method says otherwise)
    on a new connection -> Response. replay, varies: see replay_request."""
    raw = req(path, **kw)
    head = kw.get("method") == "HEAD"
    with Conn(port) as c:
        c.send(raw)
        r = c.read_response(head=head)
    replay_request(port, raw, r, head=head, mode=replay, varies=varies)
    return r


# --------------------------------------------------------------------------
# replays: every request of the one-shot helpers goes again split into
# pieces and pipelined, and must be answered as it was in one piece
#
# replay=True (the default): split, then pipelined twice in one write;
# replay="split": split only (malformed requests: the server closes after
# its error); False: sent once (a request that must not be repeated: not
# idempotent, slow, counted, timed, or sent mid-restart). varies=True: the
# answers' bodies (and the headers that describe them) are not compared,
# only status and the other headers (status pages, counters). Inside
# `with no_replay():`, or a test registered with @test(replay=False), every
# helper call sends once, in every thread. A failure names the variant, the
# cut offsets and the seed; CR_TEST_SEED=SEED with the test's name alone
# replays the same cuts.

REPLAY_SEED = int(os.environ.get("CR_TEST_SEED") or random.SystemRandom().randrange(1, 1 << 31))
REPLAY_ENABLED = os.environ.get("CR_TEST_REPLAY", "1") != "0"
REPLAY_PIECES = 6       # at most this many writes for one request
REPLAY_PAUSE = (0.001, 0.005)  # seconds between two of them
# Response headers that may differ between two answers to one request.
REPLAY_VARYING_HEADERS = {"date"}
# And those that describe a body, ignored when the body varies.
REPLAY_BODY_HEADERS = {"content-length", "etag", "last-modified", "content-range"}


class _ReplayState:
    def __init__(self):
        self.off = 0      # depth of no_replay() blocks
        self.test = None  # the running test's name
        self.rng = random.Random(REPLAY_SEED)

    def begin(self, name):
        """Each test draws from its own generator, so that running one test
        alone with CR_TEST_SEED replays the same split points."""
        self.test = name
        self.rng = random.Random("%d/%s" % (REPLAY_SEED, name))


REPLAY = _ReplayState()


class ReplayFail(Fail):
    """A replayed request was answered otherwise than in one piece."""


@contextlib.contextmanager
def no_replay():
    """Within: the one-shot helpers send each request once only."""
    REPLAY.off += 1
    try:
        yield
    finally:
        REPLAY.off -= 1


def replay_cuts(raw, rng):
    """Sorted offsets to cut raw at: one in the request line, one in the
    header lines, one inside the CRLFCRLF that ends the head, one in the
    body (each where raw has one), and one anywhere."""
    n = len(raw)
    cuts = set()

    def pick(lo, hi):
        lo, hi = max(1, lo), min(n, hi)
        if lo < hi:
            cuts.add(rng.randrange(lo, hi))

    line_end = raw.find(b"\r\n")
    head_end = raw.find(b"\r\n\r\n")
    if line_end < 0:
        line_end = n
    pick(1, line_end + 2)
    if head_end >= 0:
        pick(line_end + 2, head_end + 1)  # the header lines (none: empty range)
        pick(head_end + 1, head_end + 4)  # between two bytes of the CRLFCRLF
        pick(head_end + 4, n)             # the body
    else:
        pick(line_end + 2, n)
    pick(1, n)
    return sorted(cuts)[:REPLAY_PIECES - 1]


def send_split(c, raw, cuts, pauses):
    """Writes raw to c in the pieces that cuts delimit, pausing between
    them, with Nagle off so that each piece leaves on its own. Stops
    quietly when the server has closed (its answer is still readable)."""
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    bounds = [0] + cuts + [len(raw)]
    for i in range(len(bounds) - 1):
        if i:
            time.sleep(pauses[i - 1])
        try:
            c.sock.sendall(raw[bounds[i]:bounds[i + 1]])
        except OSError:
            return


def replay_diff(want, got, varies):
    """'' when got answers like want, else what differs."""
    if got.status != want.status:
        return "status %d, want %d (%s)" % (got.status, want.status, short(got.body, 100))
    if not varies and got.body != want.body:
        return "body %s, want %s" % (short(got.body), short(want.body))
    ignore = REPLAY_VARYING_HEADERS | (REPLAY_BODY_HEADERS if varies else set())
    names = (set(got.headers) | set(want.headers)) - ignore
    diff = ["%s: %s, want %s" % (k, short(got.headers.get(k)), short(want.headers.get(k)))
            for k in sorted(names) if got.headers.get(k) != want.headers.get(k)]
    return "headers differ: " + "; ".join(diff) if diff else ""


def replay_keeps_alive(raw, r, head):
    """Whether the connection stays open after r, the answer to raw."""
    if r.has_token("connection", "close"):
        return False
    if not head and r.header("content-length") is None and r.header("transfer-encoding") is None \
            and r.status >= 200 and r.status not in (204, 304):
        return False  # a body delimited by the close
    if raw.split(b"\r\n", 1)[0].endswith(b"HTTP/1.0"):
        return r.has_token("connection", "keep-alive")
    return True


def replay_end(c):
    """After the last answer on c: '' when the server closes, on its own or
    after the client's FIN, without sending anything more."""
    if not c.eof:
        try:
            c.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        if not c.wait_closed():
            return "the connection stayed open after the client's FIN"
    if c.buf:
        return "more bytes after the last answer: %s" % short(c.buf)
    return ""


def replay_request(port, raw, want, head=False, mode=True, varies=False, must_close=False):
    """Sends raw again on new connections, as described above, and checks
    each answer against want (the answer to raw sent in one piece), and
    that nothing follows the last one. must_close: the server must close
    after the split one on its own. Raises Fail naming the variant, the cut
    offsets and the seed."""
    if not mode or REPLAY.off or not REPLAY_ENABLED:
        return
    rng = REPLAY.rng
    cuts = replay_cuts(raw, rng)
    pauses = [rng.uniform(*REPLAY_PAUSE) for _ in cuts]
    first = short(raw, 100)
    again = "(CR_TEST_SEED=%d suite.py --mpm %s %s)" % (REPLAY_SEED, MPM, REPLAY.test or "")

    def run(variant, exchange):
        try:
            with Conn(port) as c:
                c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                why = exchange(c) or replay_end(c)
        except Fail as e:
            why = str(e).partition("\n")[0]
        except OSError as e:
            why = repr(e)
        if why:
            raise ReplayFail("%s %s: %s %s" % (first, variant, why, again))

    def split(c):
        send_split(c, raw, cuts, pauses)
        r = c.read_response(head=head)
        if must_close and not c.wait_closed():
            return "%d but the connection stayed open" % r.status
        return replay_diff(want, r, varies)

    run("split at bytes %s of %d" % (cuts, len(raw)), split)
    if mode == "split":
        return

    def pipelined(c):
        c.send(raw + raw, ignore_errors=True)
        for nth in ("first", "second"):
            r = c.read_response(head=head)
            why = replay_diff(want, r, varies)
            if why:
                return "%s answer: %s" % (nth, why)
            if not replay_keeps_alive(raw, r, head):
                return ""  # closed after it: the second request is not answered
        return ""

    run("pipelined twice in one write", pipelined)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def chunked(chunks, exts=None, upper=False):
    """Chunked encoding of the byte strings in chunks; exts[i] is appended to
    the i-th size line (a chunk extension such as ';name=value'); upper:
    sizes in upper-case hex."""
    out = b""
    for i, c in enumerate(chunks):
        ext = (exts or {}).get(i, "")
        size = ("%X" if upper else "%x") % len(c)
        out += (size + ext + "\r\n").encode() + c + b"\r\n"
    return out + b"0\r\n\r\n"


# --------------------------------------------------------------------------
# the runner

TESTS = []  # (name, function, fixture, mpms); fixture: "shared", "limits", "fresh" or None;
            # mpms: the MPMs the test applies to (None: all)

# Named servers shared by several tests; "fresh" starts one per test.
FIXTURE_OPTS = {
    "shared": [],
    "limits": ["limits.body_bytes=1000", "timeouts.header=1", "timeouts.keepalive=1"],
}


def fresh_opts():
    # Fewer processes to watch for the tests that kill them; the keep-alive
    # timeout is what the idle-connection test waits out.
    opts = ["timeouts.keepalive=2"]
    if MPM == "prefork":
        opts.append("mpm_prefork.start=2")
    if MPM == "event":
        opts += ["mpm_event.processes=2", "mpm_event.threads=4"]
    return opts


def test(fixture="shared", mpms=None, replay=True):
    """Registers a test. mpms: run it only under these MPMs (skipped, with
    no server started, under the others). replay=False: the one-shot
    helpers send its requests once only (see replay_request); say why."""
    def register(fn):
        def run_once(srv):
            with no_replay():
                fn(srv)
        TESTS.append((fn.__name__[len("test_"):], fn if replay else run_once, fixture, mpms))
        return fn
    return register


class Runner:
    def __init__(self):
        self.named = {}    # fixture name -> Server
        self.broken = {}   # fixture name -> why it could not start

    def fixture(self, name):
        if name is None:
            return None
        if name == "fresh":
            return Server(MPM, fresh_opts(), label="fresh").start()
        if name in self.broken:
            raise Fail("the %s server could not start (see the first failure)" % name)
        srv = self.named.get(name)
        if srv is not None and not srv.alive():
            print("# the %s server died (status %s); starting a new one"
                  % (name, srv.proc.returncode), flush=True)
            srv.cleanup()
            srv = None
        if srv is None:
            srv = Server(MPM, FIXTURE_OPTS[name], label=name)
            self.named[name] = srv
            try:
                srv.start()
            except Fail as e:
                self.broken[name] = str(e)
                raise
        return srv

    def run_one(self, name, fn, fixture):
        """None when the test passed, a Skip when it skipped itself, else
        why it failed."""
        srv = None
        REPLAY.begin(name)
        try:
            signal.alarm(int(TEST_TIMEOUT) + 1)
            srv = self.fixture(fixture)
            fn(srv)
            if srv is not None:
                if fixture == "fresh":
                    srv.stop()
                else:
                    check(srv.alive(), "the master exited during the test (status %s)\n%s"
                          % (srv.proc.returncode, srv.logs()))
                crashes = srv.new_crash_reports()
                check(not crashes, "crash reports in the server's logs:\n" + crashes)
            return None
        except Skip as e:
            return e
        except Fail as e:
            return str(e)
        except TestTimeout:
            return "test took longer than %.0f s" % TEST_TIMEOUT + (
                "\n" + srv.logs() if srv is not None and srv.proc is not None else "")
        except Exception:  # pylint: disable=broad-except
            return "exception:\n" + traceback.format_exc().rstrip()
        finally:
            signal.alarm(0)
            if fixture == "fresh" and srv is not None:
                srv.cleanup()

    def run(self, selected):
        """Runs the tests -> (passed, failed, skipped)."""
        passed = failed = skipped = 0
        for name, fn, fixture, mpms in TESTS:
            if selected and name not in selected:
                continue
            if mpms and MPM not in mpms:
                skipped += 1
                print("ok %s # SKIP only under %s" % (name, ", ".join(mpms)), flush=True)
                continue
            why = self.run_one(name, fn, fixture)
            if why is None:
                passed += 1
                print("ok %s" % name, flush=True)
            elif isinstance(why, Skip):
                skipped += 1
                print("ok %s # SKIP %s" % (name, why), flush=True)
            else:
                failed += 1
                first, _, rest = why.partition("\n")
                print("FAIL %s: %s" % (name, first), flush=True)
                for line in rest.splitlines():
                    print("#   " + line, flush=True)
        return passed, failed, skipped


RUNNER = Runner()


# --------------------------------------------------------------------------
# tests on the shared server (read-only: they do not change its state)


@test()
def test_hello(srv):
    r = get(srv.port, "/hello")
    expect_eq(r.status, 200, "status")
    expect_eq(r.version, "HTTP/1.1", "response version")
    expect_eq(r.body, b"Hello, World!", "body")
    expect_eq(r.header("content-length"), "13", "Content-Length")
    ctype = r.header("content-type") or ""
    check(ctype.lower().startswith("text/plain"), "Content-Type %s, want text/plain" % short(ctype))
    date = r.header("date")
    check(date is not None, "no Date header")
    check(IMF_DATE_RE.match(date), "Date not in IMF-fixdate format: %s" % short(date))
    skew = abs(email.utils.parsedate_to_datetime(date).timestamp() - time.time())
    check(skew < 300, "Date %s is %.0f s off the clock" % (date, skew))


@test()
def test_head(srv):
    with Conn(srv.port) as c:
        r = c.exchange(req("/hello", method="HEAD"), head=True)
        expect_eq(r.status, 200, "HEAD status")
        expect_eq(r.header("content-length"), "13", "HEAD Content-Length")
        extra = c.wait_data(0.5 * SLOW)
        check(not extra, "HEAD response followed by %s" % short(extra))
        check(not c.eof, "server closed the connection after HEAD")
        c.send(req("/hello"))
        r = c.read_response()
        expect_eq((r.status, r.body), (200, b"Hello, World!"), "GET after HEAD")


@test()
def test_static(srv):
    r = get(srv.port, "/")
    expect_eq(r.status, 200, "GET / status")
    ctype = r.header("content-type") or ""
    check(ctype.lower().startswith("text/html"), "GET / Content-Type %s" % short(ctype))
    index = os.path.join(WWW, "index.html")
    if os.path.exists(index):
        expect_eq(r.body, read_file(index), "GET / body (etc/www/index.html)")
    else:
        check(b"<html" in r.body.lower(), "GET / is not an HTML page: %s" % short(r.body))

    r = get(srv.port, "/static/1k.bin")
    expect_eq(r.status, 200, "GET /static/1k.bin status")
    expect_eq(r.header("content-length"), "1024", "1k.bin Content-Length")
    expect_eq(r.body, read_file(os.path.join(WWW, "static", "1k.bin")), "1k.bin body")

    expect_eq(get(srv.port, "/nope").status, 404, "GET /nope status")

    for path in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                 "/static/..%2f..%2f..%2f..%2fetc/passwd", "/static/../../../../etc/passwd"):
        st, _, body, _ = http_request(srv.port, req(path))
        check(400 <= st < 500, "GET %s: status %d, want 400 or 404" % (path, st))
        check(b"root:" not in body, "GET %s served /etc/passwd" % path)


@test()
def test_keepalive(srv):
    with Conn(srv.port) as c:  # HTTP/1.1 is persistent by default
        for i in range(3):
            c.send(req("/hello"))
            r = c.read_response()
            expect_eq((r.status, r.body), (200, b"Hello, World!"), "HTTP/1.1 request %d" % (i + 1))
            check(not r.has_token("connection", "close"),
                  "HTTP/1.1 response %d has Connection: close" % (i + 1))

    with Conn(srv.port) as c:  # HTTP/1.0 (no Host either): closed after the response
        r = c.exchange(req("/hello", version="1.0", host=False))
        expect_eq(r.status, 200, "HTTP/1.0 status")
        check(c.wait_closed(), "HTTP/1.0 without keep-alive: connection not closed")

    with Conn(srv.port) as c:  # HTTP/1.0 keep-alive: stays open, and says so
        for i in range(2):
            r = c.exchange(req("/hello", version="1.0", headers=["Connection: keep-alive"]))
            expect_eq((r.status, r.body), (200, b"Hello, World!"), "HTTP/1.0 keep-alive #%d" % (i + 1))
            check(r.has_token("connection", "keep-alive"),
                  "HTTP/1.0 keep-alive response lacks Connection: keep-alive (%s)"
                  % short(r.header("connection")))

    with Conn(srv.port) as c:  # HTTP/1.1 Connection: close
        r = c.exchange(req("/hello", headers=["Connection: close"]))
        expect_eq(r.status, 200, "Connection: close status")
        check(r.has_token("connection", "close"), "response to Connection: close lacks it")
        check(c.wait_closed(), "HTTP/1.1 Connection: close: connection not closed")


@test()
def test_pipelining(srv):
    with Conn(srv.port) as c:
        c.send(req("/hello") * 3)
        for i in range(3):
            r = c.read_response()
            expect_eq((r.status, r.body), (200, b"Hello, World!"), "pipelined response %d" % (i + 1))

    # Different requests, so the order shows; the last one closes.
    with Conn(srv.port) as c:
        c.send(req("/hello") + req("/static/1k.bin") + req("/nope") +
               req("/hello", method="HEAD") + req("/hello", headers=["Connection: close"]))
        want = [(200, 13), (200, 1024), (404, None), (200, 0), (200, 13)]
        for i, (status, length) in enumerate(want):
            r = c.read_response(head=(i == 3))
            got = (r.status, len(r.body) if length is not None else None)
            expect_eq(got, (status, length), "pipelined response %d (status, body length)" % (i + 1))
        check(c.wait_closed(), "connection not closed after the pipelined Connection: close")


@test()
def test_echo(srv):
    body = bytes(range(256)) * 4 + b"end"
    with Conn(srv.port) as c:
        r = c.exchange(req("/echo", method="POST", headers=["Content-Length: %d" % len(body)],
                           body=body))
        expect_eq(r.status, 200, "POST /echo status")
        expect_eq(r.body, body, "POST /echo body")
        r = c.exchange(req("/echo", method="POST", headers=["Transfer-Encoding: chunked"],
                           body=chunked([b"hello", b" ", b"world"])))
        expect_eq((r.status, r.body), (200, b"hello world"), "chunked POST /echo in one write")

        # Chunked, with extensions, an upper-case size, and sent in pieces
        # that split size lines and data.
        chunks = [b"Hello", b", ", b"chunked world " * 3, bytes(range(256))]
        wire = chunked(chunks, {0: ";ext=1", 2: ";name"}, upper=True)  # 5, 2, 2A, 100
        c.send(req("/echo", method="POST", headers=["Transfer-Encoding: chunked"]))
        for i in range(0, len(wire), 37):
            c.send(wire[i:i + 37])
            time.sleep(0.01)
        r = c.read_response()
        expect_eq(r.status, 200, "chunked POST /echo status")
        expect_eq(r.body, b"".join(chunks), "chunked POST /echo body")

        # Expect: 100-continue, the client waiting for the interim response.
        c.send(req("/echo", method="POST",
                   headers=["Content-Length: %d" % len(body), "Expect: 100-continue"]))
        r = c.read_response()
        expect_eq((r.version, r.status), ("HTTP/1.1", 100), "interim response to Expect: 100-continue")
        c.send(body)
        r = c.read_response()
        expect_eq(r.status, 200, "final response after 100 Continue")
        expect_eq(r.body, body, "body after 100 Continue")

    # Bodies followed by a pipelined request in the same packet.
    with Conn(srv.port) as c:
        c.send(req("/echo", method="POST", headers=["Content-Length: 3"], body=b"abc") +
               req("/echo", method="POST", headers=["Transfer-Encoding: chunked"],
                   body=chunked([b"xy", b"z"])) +
               req("/hello"))
        got = [c.read_response() for _ in range(3)]
        expect_eq([(r.status, r.body) for r in got],
                  [(200, b"abc"), (200, b"xyz"), (200, b"Hello, World!")],
                  "pipelined POST, chunked POST, GET")


@test()
def test_access_log(srv):
    ua = "corral-it/%d (access log)" % os.getpid()
    r = get(srv.port, "/hello", headers=["User-Agent: " + ua])
    expect_eq(r.status, 200, "status")
    line_re = re.compile(
        r'^127\.0\.0\.1 - - \[\d\d/(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)/\d{4}:'
        r'\d\d:\d\d:\d\d \+0000\] "GET /hello HTTP/1\.1" 200 13 "-" "' + re.escape(ua) + r'"$')
    deadline = time.monotonic() + IO_TIMEOUT
    lines = []
    while True:  # logs may be buffered a moment
        try:
            lines = read_file(srv.access_log).decode("utf-8", "replace").splitlines()
        except FileNotFoundError:
            lines = []
        if any(line_re.match(line) for line in lines):
            return
        if time.monotonic() > deadline:
            mine = [line for line in lines if ua in line]
            raise Fail("no combined-format line for the request in %s; lines with the UA: %s; "
                       "last lines: %s" % (srv.access_log, short(mine, 400), short(lines[-3:], 400)))
        time.sleep(0.1)


@test()
def test_no_fd_leaks(srv):
    def counts():
        return {p: n for p in srv.children() for n in [fd_count(p)] if n is not None}

    # Warm up every path first, so lazily opened descriptors are in the baseline.
    for path in ("/hello", "/", "/static/1k.bin", "/nope"):
        for _ in range(4):
            get(srv.port, path)
    time.sleep(0.3 * SLOW)
    base = counts()
    base_master = fd_count(srv.pid)
    check(base, "master has no children")

    for wave in range(20):  # 200 connections, 10 open at a time
        conns = [Conn(srv.port) for _ in range(10)]
        for i, c in enumerate(conns):
            if i % 2:
                c.close()  # closed without sending anything
            elif i % 4 == 0:
                c.send(req("/hello", headers=["Connection: close"]))
            else:
                c.send(req("/static/1k.bin"))  # keep-alive; the client closes
        for i, c in enumerate(conns):
            if not i % 2:
                with c:
                    r = c.read_response()
                    check(r.status == 200, "wave %d request %d: status %d" % (wave, i, r.status))

    limit = max(base.values()) + 2
    deadline = time.monotonic() + 10 * SLOW
    while True:  # the server may take a moment to notice the closes
        now = counts()
        over = {p: (n, base.get(p)) for p, n in now.items() if n > base.get(p, limit - 2) + 2}
        master = fd_count(srv.pid)
        if not over and now and master is not None and master <= base_master + 2:
            return
        if time.monotonic() > deadline:
            raise Fail("descriptors after 200 connections (pid: (now, baseline)): %s; master %s "
                       "(baseline %s); baseline children %s" % (over, master, base_master, base))
        time.sleep(0.2)


# --------------------------------------------------------------------------
# malformed input and timeouts, on a server with small limits


def expect_error(port, name, raw, statuses, must_close=True):
    """Sends raw on a new connection, then again split into pieces (the
    same error either way; not pipelined: the server closes after an
    error); returns '' or what went wrong."""
    try:
        with Conn(port) as c:
            c.send(raw, ignore_errors=True)
            r = c.read_response()
            if r.status not in statuses:
                return "%s: status %d, want %s" % (name, r.status, "/".join(map(str, statuses)))
            if must_close and not c.wait_closed():
                return "%s: %d but the connection stayed open" % (name, r.status)
        replay_request(port, raw, r, mode="split", must_close=must_close)
    except Fail as e:
        return "%s: %s" % (name, e)
    except OSError as e:
        return "%s: %s" % (name, e)
    return ""


@test("limits")
def test_bad_requests(srv):
    kids = srv.wait_children(1)
    port = srv.port
    cases = [
        ("garbage line", b"HELLO\r\n\r\n", (400,), True),
        ("20 KB header", req("/hello", headers=["X-Big: " + "a" * 20480]), (431,), True),
        ("6 KB URI", req("/hello?" + "u" * 6000), (414,), True),
        # Longer than both uri_bytes (4096) and header_bytes (8192): either is right.
        ("10 KB URI", req("/hello?" + "u" * 10240), (414, 431), True),
        ("body over limits.body_bytes", req("/echo", method="POST", headers=["Content-Length: 5000"],
                                            body=b"b" * 5000), (413,), False),
        ("Transfer-Encoding: gzip", req("/echo", method="POST",
                                        headers=["Transfer-Encoding: gzip"]), (501,), True),
        ("HTTP/2.0 request line", req("/hello", version="2.0"), (505,), True),
        ("Content-Length with Transfer-Encoding",
         req("/echo", method="POST", headers=["Content-Length: 5", "Transfer-Encoding: chunked"],
             body=b"0\r\n\r\n"), (400,), True),
        ("bad chunk size", req("/echo", method="POST", headers=["Transfer-Encoding: chunked"],
                               body=b"zz\r\nhello\r\n0\r\n\r\n"), (400,), True),
        ("HTTP/1.1 without Host", req("/hello", host=False), (400,), True),
    ]
    problems = [p for p in (expect_error(port, *case) for case in cases) if p]

    # Header timeout (timeouts.header=1): a partial request line, then nothing.
    with Conn(port) as c:
        c.send(b"GET /hel")
        t0 = time.monotonic()
        closed = c.wait_closed(8 * SLOW)
        took = time.monotonic() - t0
        if not closed:
            problems.append("header timeout: connection still open after %.1f s" % took)
        elif c.buf and not re.match(rb"^HTTP/1\.[01] 408 ", c.buf):
            problems.append("header timeout: got %s, want a 408" % short(c.buf))
        elif not c.buf:
            print("# note: header timeout closed the connection without a 408", flush=True)

    # Still serving, and nothing died.
    try:
        r = get(port, "/hello")
        if (r.status, r.body) != (200, b"Hello, World!"):
            problems.append("GET /hello afterwards: %r" % r)
    except Fail as e:
        problems.append("GET /hello afterwards: %s" % e)
    check(srv.alive(), "master exited: %s\n%s" % ("; ".join(problems), srv.logs()))
    dead = sorted(p for p in kids if not pid_alive(p))
    if dead:
        problems.append("children died: %s" % dead)
    if problems:
        raise Fail("; ".join(problems) + "\n" + srv.logs(10))


@test("limits")
def test_keepalive_timeout(srv):
    with Conn(srv.port) as c:  # timeouts.keepalive=1
        c.send(req("/hello"))
        expect_eq(c.read_response().status, 200, "status")
        t0 = time.monotonic()
        check(c.wait_closed(8 * SLOW), "idle keep-alive connection still open after %.1f s"
              % (time.monotonic() - t0))
        check(not c.buf, "server sent %s on an idle connection" % short(c.buf))


# --------------------------------------------------------------------------
# config test mode


def configtest(conf, opts=()):
    argv = [CORRAL, "-t", "-f", conf]
    for o in opts:
        argv += ["-o", o]
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=30 * SLOW, check=False)
    except subprocess.TimeoutExpired:
        raise Fail("%s did not finish in %.0f s" % (" ".join(argv), 30 * SLOW)) from None
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    crashes = [line for line in (out + err).splitlines() if CRASH_RE.search(line)]
    check(not crashes, "%s: crash or sanitizer report:\n%s" % (" ".join(argv), (out + err).strip()))
    return p.returncode, out, err


@test(None)
def test_configtest(_):
    check(os.access(CORRAL, os.X_OK), "no server binary at %s" % CORRAL)
    rc, out, err = configtest(CONF, ["mpm=" + MPM])
    check(rc == 0 and "Syntax OK" in out + err,
          "corral -t on the demo config: exit %d, output %s" % (rc, short(out + err, 400)))

    tmp = tempfile.mkdtemp(prefix="corral-it-conf-")
    try:
        bad = [
            ("bad_key.conf", "no_such_key = 1;", "no_such_key"),
            ("bad_range.conf", "limits = { header_bytes = 100; };", "limits.header_bytes"),
        ]
        for name, line3, key in bad:
            path = os.path.join(tmp, name)
            with open(path, "w") as f:
                f.write("// corral integration suite: line 3 is wrong\n"
                        'listen = [ "127.0.0.1:8080" ];\n' + line3 + "\n")
            rc, out, err = configtest(path, ["mpm=" + MPM])
            check(rc == 1, "corral -t on %s (%s): exit %d, want 1; output %s"
                  % (name, line3, rc, short(out + err, 400)))
            check(name + ":3" in err and key in err,
                  "corral -t on %s: stderr should name %s:3 and key '%s': %s"
                  % (name, name, key, short(err, 400)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # A bad value given with -o on the demo config.
    rc, out, err = configtest(CONF, ["mpm=" + MPM, "timeouts.header=0"])
    check(rc == 1 and "timeouts.header" in err,
          "corral -t -o timeouts.header=0: exit %d (want 1), stderr should name the key: %s"
          % (rc, short(err, 400)))


# --------------------------------------------------------------------------
# tests that kill processes, each on its own server


@test("fresh")
def test_child_respawn(srv):
    before = srv.wait_children(1)
    n = len(before)
    victim = min(before)
    seen = set(srv.seen)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 10 * SLOW
    while True:
        kids = srv.children()
        new = kids - seen
        reaped = proc_stat(victim) is None
        if new and reaped and len(kids) >= n:
            break
        check(srv.alive(), "master exited after a child was killed\n" + srv.logs())
        if time.monotonic() > deadline:
            raise Fail("%.0f s after SIGKILL to child %d: children %s (before %s), victim reaped: %s\n%s"
                       % (10 * SLOW, victim, sorted(kids), sorted(before), reaped, srv.logs()))
        time.sleep(0.1)
    for i in range(5):
        r = get(srv.port, "/hello")
        expect_eq((r.status, r.body), (200, b"Hello, World!"), "GET /hello #%d after respawn" % (i + 1))


@test("fresh")
def test_sigterm(srv):
    kids = srv.wait_children(1)
    deadline = time.monotonic() + IO_TIMEOUT
    while True:  # the pidfile names the master
        try:
            text = read_file(srv.pidfile).decode().strip()
        except FileNotFoundError:
            text = None
        if text == str(srv.pid):
            break
        if time.monotonic() > deadline:
            raise Fail("pidfile %s holds %s, want %d" % (srv.pidfile, short(text), srv.pid))
        time.sleep(0.1)

    # An idle keep-alive connection must not hold up the stop.
    idle = Conn(srv.port)
    try:
        idle.send(req("/hello"))
        expect_eq(idle.read_response().status, 200, "status")
        kids |= srv.children()
        t0 = time.monotonic()
        os.kill(srv.pid, signal.SIGTERM)
        try:
            rc = srv.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise Fail("master still running %.0f s after SIGTERM\n%s"
                       % (STOP_TIMEOUT, srv.logs())) from None
        took = time.monotonic() - t0
        check(rc == 0, "master exit status %d after SIGTERM\n%s" % (rc, srv.logs()))
        deadline = time.monotonic() + 5 * SLOW
        while True:
            left = sorted(p for p in kids if pid_alive(p))
            if not left:
                break
            if time.monotonic() > deadline:
                raise Fail("children %s still running after the master exited" % left)
            time.sleep(0.05)
        check(port_refuses(srv.port), "port %d still accepts connections" % srv.port)
        check(not os.path.exists(srv.pidfile), "pidfile %s not removed" % srv.pidfile)
        if took > 5 * SLOW:
            print("# note: the master took %.1f s to stop" % took, flush=True)
    finally:
        idle.close()


def start_slow_request(srv, ms):
    """Opens a connection with a /delay request in flight."""
    c = Conn(srv.port)
    c.send(req("/delay?ms=%d" % ms))
    time.sleep(0.3 * SLOW)  # let a child pick it up before the signal
    return c


def wait_new_generation(srv, old, timeout):
    """Waits until the master has children none of which are in old."""
    deadline = time.monotonic() + timeout
    while True:
        kids = srv.children()
        if kids and not kids & old:
            return kids
        check(srv.alive(), "master exited during a graceful restart\n" + srv.logs())
        if time.monotonic() > deadline:
            raise Fail("old children %s still there %.0f s after USR1 (now %s)\n%s"
                       % (sorted(old & kids), timeout, sorted(kids), srv.logs()))
        time.sleep(0.1)


@test("fresh")
def test_graceful_restart(srv):
    """USR1: a request in flight finishes; new connections are served by a
    new generation; the old children exit."""
    old = srv.wait_children(1)
    slow = start_slow_request(srv, 1500)
    try:
        os.kill(srv.pid, signal.SIGUSR1)
        for i in range(10):  # served all along: no connection refused
            # Sent once: mid-restart an old child may answer "Connection: close".
            r = get(srv.port, "/hello", replay=False)
            expect_eq(r.status, 200, "GET /hello #%d during the restart" % (i + 1))
            time.sleep(0.05)
        r = slow.read_response(timeout=10 * SLOW)
        expect_eq((r.status, r.body), (200, b"waited 1500 ms\n"), "the request in flight")
    finally:
        slow.close()
    wait_new_generation(srv, old, 10 * SLOW)
    expect_eq(get(srv.port, "/hello").status, 200, "GET /hello after the restart")


def write_config(path, hello_module):
    """The demo config, with absolute paths, /hello served by hello_module."""
    text = read_file(CONF).decode()
    text = text.replace('root = "www"', 'root = "%s"' % WWW)
    text = text.replace('{ path = "/hello"; module = "hello"; }',
                        '{ path = "/hello"; module = "%s"; }' % hello_module)
    text += '\nmod_static = { mime_types = "%s"; };\n' % os.path.join(SRCDIR, "etc", "mime.types")
    with open(path, "w") as f:
        f.write(text)


@test(None)
def test_graceful_restart_reloads_config(_):
    """USR1 with a broken config keeps the running generation serving and
    logs why; with a good one the new config takes effect."""
    srv = Server(MPM, fresh_opts(), label="reload")
    srv.conf = os.path.join(srv.tmp, "corral.conf")
    write_config(srv.conf, "hello")
    try:
        srv.start()
        expect_eq(get(srv.port, "/hello").body, b"Hello, World!", "GET /hello before")
        with open(srv.conf, "a") as f:
            f.write("\nno_such_key = 1;\n")
        os.kill(srv.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 5 * SLOW
        while b"restart refused" not in read_file(srv.error_log):
            check(time.monotonic() < deadline, "no 'restart refused' in the error log\n" + srv.logs())
            time.sleep(0.1)
        check(b"no_such_key" in read_file(srv.error_log), "the error log does not name the key")
        expect_eq(get(srv.port, "/hello").body, b"Hello, World!", "GET /hello after a bad reload")
        write_config(srv.conf, "echo")
        os.kill(srv.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 10 * SLOW
        while True:
            # Sent once: until the new generation serves, answers differ.
            r = get(srv.port, "/hello", method="POST", headers=["Content-Length: 8"],
                    body=b"reloaded", replay=False)
            if r.body == b"reloaded":
                break
            check(time.monotonic() < deadline, "the new route never took effect\n" + srv.logs())
            time.sleep(0.1)
        check(srv.alive(), "master exited\n" + srv.logs())
        rc = srv.stop()
        check(rc == 0, "master exit status %s after SIGTERM" % rc)
        crashes = srv.new_crash_reports()
        check(not crashes, "crash reports in the server's logs:\n" + crashes)
    finally:
        srv.cleanup()


@test("fresh")
def test_graceful_stop(srv):
    """WINCH: the request in flight finishes, then every process exits."""
    kids = srv.wait_children(1)
    slow = start_slow_request(srv, 1000)
    try:
        os.kill(srv.pid, signal.SIGWINCH)
        r = slow.read_response(timeout=10 * SLOW)
        expect_eq((r.status, r.body), (200, b"waited 1000 ms\n"), "the request in flight")
    finally:
        slow.close()
    try:
        rc = srv.proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise Fail("master still running %.0f s after WINCH\n%s" % (STOP_TIMEOUT, srv.logs())) from None
    check(rc == 0, "master exit status %d after WINCH\n%s" % (rc, srv.logs()))
    deadline = time.monotonic() + 5 * SLOW
    while any(pid_alive(p) for p in kids):
        check(time.monotonic() < deadline, "children still running after WINCH")
        time.sleep(0.05)
    check(port_refuses(srv.port), "port %d still accepts connections" % srv.port)


IDLE_CONNS = 2000


@test("fresh", mpms=("event",))
def test_idle_keepalive_connections(srv):
    """event only: thousands of idle keep-alive connections stay open while
    other clients are served, and go away when timeouts.keepalive expires."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    check(soft >= IDLE_CONNS + 100, "descriptor limit %d too low for %d connections" % (soft, IDLE_CONNS))
    conns = []
    try:
        for _ in range(IDLE_CONNS):
            s = socket.create_connection((HOST, srv.port), timeout=IO_TIMEOUT)
            s.sendall(req("/hello"))
            conns.append(s)
        for s in conns:
            data = b""
            while b"Hello, World!" not in data:
                chunk = s.recv(4096)
                check(chunk, "an idle connection was closed before its response")
                data += chunk
        for i in range(20):  # others are served meanwhile
            expect_eq(get(srv.port, "/hello").status, 200, "GET /hello #%d beside idle ones" % i)
        for s in conns:  # all still open
            s.setblocking(False)
            try:
                check(s.recv(1) != b"", "an idle connection was closed early")
            except BlockingIOError:
                pass
        # timeouts.keepalive (2 s here) closes them all.
        deadline = time.monotonic() + 10 * SLOW
        open_left = set(range(len(conns)))
        while open_left and time.monotonic() < deadline:
            for i in list(open_left):
                try:
                    if conns[i].recv(1) == b"":
                        open_left.discard(i)
                except BlockingIOError:
                    pass
                except OSError:
                    open_left.discard(i)
            time.sleep(0.2)
        check(not open_left, "%d idle connections still open after the keep-alive timeout"
              % len(open_left))
    finally:
        for s in conns:
            s.close()


# --------------------------------------------------------------------------
# tests kept in files of their own (test_*.py beside this one, one subject
# each, in name order): they are read into this namespace, so they use the
# helpers, fixtures and @test above as if written here.

def load_test_files():
    here = os.path.dirname(os.path.abspath(__file__))
    for name in sorted(os.listdir(here)):
        if name.startswith("test_") and name.endswith(".py"):
            path = os.path.join(here, name)
            with open(path) as f:
                exec(compile(f.read(), path, "exec"), globals())  # pylint: disable=exec-used


load_test_files()


# --------------------------------------------------------------------------
# last: the shared servers stop cleanly


@test(None)
def test_shared_servers_stop_cleanly(_):
    """TERM the shared servers: exit 0, no crash reports in their logs."""
    problems = []
    for name, srv in sorted(RUNNER.named.items()):
        if srv.proc is None:
            continue
        was_alive = srv.alive()
        rc = srv.stop()
        crashes = srv.new_crash_reports()
        if not was_alive:
            problems.append("%s server had already exited (status %s)" % (name, rc))
        elif rc != 0:
            problems.append("%s server exited with status %s after SIGTERM" % (name, rc))
        if crashes:
            problems.append("%s server logged:\n%s" % (name, crashes))
    if problems:
        raise Fail("; ".join(problems))


# --------------------------------------------------------------------------


def raise_fd_limit(want=8192):
    """Raises the soft descriptor limit, before any server starts so that the
    servers inherit it: the idle-connection test holds thousands open."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass


def main():
    global MPM  # pylint: disable=global-statement
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mpm", required=True, help="MPM to test: prefork, worker, event, ...")
    ap.add_argument("--list", action="store_true", help="list the tests and exit")
    ap.add_argument("tests", nargs="*", help="run only these tests")
    args = ap.parse_args()
    MPM = args.mpm
    if args.list:
        for name, _, fixture, mpms in TESTS:
            print("%s (%s%s)" % (name, fixture or "no server",
                                 ", only " + "/".join(mpms) if mpms else ""))
        return 0

    def on_alarm(*_):
        raise TestTimeout()

    def on_term(signum, _):
        sys.exit(128 + signum)  # runs the atexit cleanup

    raise_fd_limit()
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    print("# corral integration suite: mpm %s, %s, %s, replays %s (CR_TEST_SEED=%d)"
          % (MPM, CORRAL, CONF, "on" if REPLAY_ENABLED else "off", REPLAY_SEED), flush=True)
    unknown = set(args.tests) - {t[0] for t in TESTS}
    if unknown:
        print("unknown tests: %s" % ", ".join(sorted(unknown)), file=sys.stderr)
        return 2
    passed, failed, skipped = RUNNER.run(set(args.tests))
    cleanup_all()
    print("MPM %s: %d passed, %d failed, %d skipped" % (MPM, passed, failed, skipped), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
