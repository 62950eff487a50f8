# mod_status: /server-status (HTML, ?auto, ?json) and /metrics (Prometheus)
# on the demo config. Read into suite.py's namespace: get, Conn, req, check,
# expect_eq, Fail, MPM, SLOW, @test and the rest come from there.

import html.parser
import json

STATUS = "/server-status"
METRICS = "/metrics"
SLOT_LETTERS = set("_SRWKCG.")

# Handler slots per child in the demo config: prefork has one, worker
# `threads = 25`, event its default 16 pool threads plus the event thread.
THREADS_PER_CHILD = {"prefork": 1, "worker": 25, "event": 17}

AUTO_KEYS = ("ServerVersion", "ServerMPM", "ServerUptimeSeconds", "Uptime", "Total Accesses",
             "Total kBytes", "BusyWorkers", "IdleWorkers", "Processes", "Scoreboard")

PROM_SAMPLE_RE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)'
    r'(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*)?\})?'
    r' (-?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\+Inf|-Inf|NaN))$')
PROM_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')


def status_get(srv, query="", path=STATUS):
    r = get(srv.port, path + query, varies=True)  # the figures change with every request
    expect_eq(r.status, 200, "GET %s%s status" % (path, query))
    return r


def status_auto(srv):
    """GET ?auto -> {key: value}; every line must be `Key: value`."""
    r = status_get(srv, "?auto")
    ctype = r.header("content-type") or ""
    check(ctype.startswith("text/plain"), "?auto Content-Type %s" % short(ctype))
    fields = {}
    text = r.body.decode("ascii")
    check(text.endswith("\n"), "?auto does not end with a newline: %s" % short(text[-40:]))
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z][A-Za-z0-9 ]*): (\S.*)$", line)
        check(m, "?auto line is not `Key: value`: %s" % short(line))
        check(m.group(1) not in fields, "?auto repeats key %s" % m.group(1))
        fields[m.group(1)] = m.group(2)
    for k in AUTO_KEYS:
        check(k in fields, "?auto has no %s line: %s" % (k, short(text, 600)))
    return fields


def status_json(srv):
    r = status_get(srv, "?json")
    ctype = r.header("content-type") or ""
    check(ctype.startswith("application/json"), "?json Content-Type %s" % short(ctype))
    try:
        return json.loads(r.body)
    except ValueError as e:
        raise Fail("?json is not JSON (%s): %s" % (e, short(r.body, 400))) from None


def status_metrics(srv):
    """GET /metrics -> {(name, frozenset(labels)): value}, checking the
    exposition format line by line."""
    r = status_get(srv, path=METRICS)
    expect_eq(r.header("content-type"), "text/plain; version=0.0.4; charset=utf-8",
              "/metrics Content-Type")
    samples, typed = {}, {}
    for line in r.body.decode("utf-8").splitlines():
        if line.startswith("# TYPE "):
            parts = line.split()
            check(len(parts) == 4 and parts[3] in ("counter", "gauge", "untyped"),
                  "bad TYPE line %s" % short(line))
            check(parts[2] not in typed, "two TYPE lines for %s" % parts[2])
            typed[parts[2]] = parts[3]
            continue
        if line.startswith("#") or not line:
            check(not line or line.startswith("# HELP "), "bad comment line %s" % short(line))
            continue
        m = PROM_SAMPLE_RE.match(line)
        check(m, "/metrics line is not `name{labels} value`: %s" % short(line))
        name = m.group(1)
        check(name in typed, "%s has no TYPE line before its samples" % name)
        if typed[name] == "counter":
            check(name.endswith("_total"), "counter %s does not end in _total" % name)
        labels = frozenset(PROM_LABEL_RE.findall(m.group(2) or ""))
        check((name, labels) not in samples, "sample %s%s twice" % (name, sorted(labels)))
        samples[(name, labels)] = float(m.group(3))
    return samples


def retry(what, fn, timeout=3.0):
    """Calls fn until it returns without Fail (counters are updated after
    the response goes out, children may come and go); raises the last Fail."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        try:
            return fn()
        except Fail as e:
            if time.monotonic() > deadline:
                raise Fail("%s: %s" % (what, e)) from None
        time.sleep(0.1)


def hello_n(srv, n):
    for i in range(n):
        r = get(srv.port, "/hello")
        expect_eq(r.status, 200, "GET /hello #%d" % (i + 1))


@test()
def test_status_auto_counts(srv):
    """?auto uses Apache's keys and Total Accesses counts the requests."""
    before = status_auto(srv)
    expect_eq(before["ServerMPM"], MPM, "ServerMPM")
    check(before["ServerVersion"].startswith("corral/"), "ServerVersion %s" % before["ServerVersion"])
    for k in ("ServerUptimeSeconds", "Uptime", "Total Accesses", "Total kBytes", "BusyWorkers",
              "IdleWorkers", "Processes"):
        check(before[k].isdigit(), "%s is not a count: %s" % (k, before[k]))
    check(int(before["BusyWorkers"]) >= 1, "BusyWorkers 0 while serving ?auto")
    n = 12
    hello_n(srv, n)

    def grew():
        after = status_auto(srv)
        got = int(after["Total Accesses"]) - int(before["Total Accesses"])
        check(got >= n, "Total Accesses grew by %d after %d requests to /hello" % (got, n))
        check(int(after["Uptime"]) >= int(before["Uptime"]), "Uptime went backwards")

    retry("after %d requests" % n, grew)


@test()
def test_status_auto_scoreboard(srv):
    """Scoreboard: one letter per handler slot, threads_per_child letters
    for every live child, the rest '.'."""
    per_child = THREADS_PER_CHILD[MPM]

    def consistent():
        auto = status_auto(srv)
        board = auto["Scoreboard"]
        check(set(board) <= SLOT_LETTERS, "Scoreboard has other letters: %s" % short(board))
        check(len(board) % per_child == 0,
              "Scoreboard of %d letters is no multiple of %d slots per child" % (len(board), per_child))
        procs = int(auto["Processes"])
        check(procs >= 1, "Processes %d" % procs)
        used = len(board) - board.count(".")
        expect_eq(used, procs * per_child, "letters other than '.' for %d children" % procs)
        busy = sum(board.count(c) for c in "RWKCG")
        expect_eq(int(auto["BusyWorkers"]), busy, "BusyWorkers against the Scoreboard letters")
        check(int(auto["IdleWorkers"]) <= board.count("_"), "IdleWorkers beyond the '_' letters")
        return board

    board = retry("?auto", consistent)
    limits = status_json(srv)["server"]
    expect_eq(limits["thread_limit"], per_child, "JSON thread_limit")
    expect_eq(len(board), limits["process_limit"] * limits["thread_limit"],
              "Scoreboard letters (process_limit x thread_limit)")


@test()
def test_status_json(srv):
    """?json: the server, and children that are real child processes of the
    master, each with its handler slots."""
    per_child = THREADS_PER_CHILD[MPM]

    def real_children():
        doc = status_json(srv)
        s = doc["server"]
        expect_eq(s["mpm"], MPM, "server.mpm")
        check(s["generation"] >= 1, "generation %s" % s["generation"])
        check(s["start_time"] <= s["restart_time"] <= s["current_time"],
              "start %s, restart %s, now %s" % (s["start_time"], s["restart_time"], s["current_time"]))
        expect_eq(s["uptime"], s["current_time"] - s["start_time"], "uptime")
        expect_eq(len(doc["children"]), s["processes"], "children listed against server.processes")
        expect_eq(len(doc["scoreboard"]), s["process_limit"] * s["thread_limit"], "scoreboard length")
        kids = srv.children()
        pids = {c["pid"] for c in doc["children"] if c["pid"]}
        check(pids and pids <= kids, "JSON child pids %s, the master's children %s"
              % (sorted(pids), sorted(kids)))
        return doc

    doc = retry("?json", real_children)
    seen_self = False
    total = 0
    for c in doc["children"]:
        check(c["state"] in ("running", "graceful", "starting"), "child state %s" % c["state"])
        check(c["uptime"] >= 0 and c["started"] >= doc["server"]["start_time"],
              "child %d started %s" % (c["pid"], c["started"]))
        expect_eq(len(c["threads"]), per_child, "threads of child %d" % c["pid"])
        expect_eq(sum(t["requests"] for t in c["threads"]), c["requests"],
                  "child %d requests against its threads" % c["pid"])
        total += c["requests"]
        for t in c["threads"]:
            check(t["state"] in SLOT_LETTERS, "thread state %s" % t["state"])
            seen_self |= t["request"] == "GET /server-status?json"
    check(seen_self, "no slot shows the request being served (GET /server-status?json)")
    check(total <= doc["server"]["requests"],
          "children served %d, more than the server's %d" % (total, doc["server"]["requests"]))


PHASES = ("wait", "read", "queue", "handler", "write")
PHASE_AUTO_KEYS = {"wait": "PhaseWaitUs", "read": "PhaseReadUs", "queue": "PhaseQueueUs",
                   "handler": "PhaseHandlerUs", "write": "PhaseWriteUs"}


def auto_phases(fields):
    """{phase: µs} from ?auto fields; each must be a count."""
    out = {}
    for phase, key in PHASE_AUTO_KEYS.items():
        check(key in fields and fields[key].isdigit(), "?auto %s: %s" % (key, fields.get(key)))
        out[phase] = int(fields[key])
    return out


@test("fresh", replay=False)  # counts the requests exactly and times their phases
def test_status_phases(srv):
    """Where the time goes: on one keep-alive connection, requests that wait
    D ms in the handler (blocking and suspended) with G ms pauses between
    them show up as handler and wait time, and the phases add up to no more
    than the time that passed."""
    rounds, d_ms, g_ms = 3, 30, 60
    started = time.monotonic()
    before = status_auto(srv)
    with Conn(srv.port) as c:
        for i in range(rounds):
            for path in ("/delay?ms=%d" % d_ms, "/wait?ms=%d" % d_ms):
                time.sleep(g_ms / 1000)
                c.send(req(path))
                r = c.read_response()
                expect_eq(r.status, 200, "GET %s (round %d)" % (path, i + 1))
    served = 2 * rounds

    def counted():
        after = status_auto(srv)
        grew = int(after["Total Accesses"]) - int(before["Total Accesses"])
        # The first ?auto is counted once answered, the last one not yet.
        expect_eq(grew, served + 1, "Total Accesses growth")
        return after

    after = retry("?auto after %d requests" % served, counted)
    elapsed_us = (time.monotonic() - started) * 1e6
    p0, p1 = auto_phases(before), auto_phases(after)
    delta = {k: p1[k] - p0[k] for k in PHASES}
    for k in PHASES:
        check(delta[k] >= 0, "phase %s went backwards: %s" % (k, delta))
    check(delta["handler"] >= served * d_ms * 1000,
          "%d requests that wait %d ms in the handler: %s" % (served, d_ms, delta))
    check(delta["wait"] >= served * g_ms * 1000 * 0.9,
          "%d pauses of %d ms before the requests: %s" % (served, g_ms, delta))
    check(sum(delta.values()) <= elapsed_us,
          "the phases add up to %d µs, more than the %d µs that passed: %s"
          % (sum(delta.values()), elapsed_us, delta))

    doc = status_json(srv)
    server = doc["server"]["phases_us"]
    expect_eq(sorted(server), sorted(PHASES), "server.phases_us keys")
    for k in PHASES:
        check(server[k] >= p1[k], "JSON %s %d µs, less than ?auto's earlier %d" % (k, server[k], p1[k]))
    for child in doc["children"]:
        for t in child["threads"]:
            expect_eq(sorted(t["phases_us"]), sorted(PHASES),
                      "phases_us keys of child %d slot %d" % (child["pid"], t["slot"]))
        total = {k: sum(t["phases_us"][k] for t in child["threads"]) for k in PHASES}
        for k in PHASES:
            # Each figure is rounded down to a microsecond on its own.
            check(total[k] <= child["phases_us"][k] <= total[k] + len(child["threads"]),
                  "child %d %s: %d µs, its threads %d" % (child["pid"], k, child["phases_us"][k], total[k]))

    samples = status_metrics(srv)
    for k in PHASES:
        v = samples.get(("corral_request_phase_seconds_total", frozenset({("phase", k)})))
        check(v is not None and v * 1e6 >= p1[k] - 1,
              "/metrics phase %s: %s (?auto had %d µs)" % (k, v, p1[k]))


def one_handler_opts():
    """A server with one handler slot (and a second process or thread for
    nothing else than the status page would be a second slot: none)."""
    return {"prefork": ["mpm_prefork.start=1", "mpm_prefork.min_spare=0",
                        "mpm_prefork.max_spare=1", "mpm_prefork.max_workers=1"],
            "worker": ["mpm_worker.processes=1", "mpm_worker.threads=1",
                       "mpm_worker.min_spare_threads=0", "mpm_worker.max_spare_threads=1",
                       "mpm_worker.max_workers=1"],
            "event": ["mpm_event.processes=1", "mpm_event.threads=1"]}[MPM]


@test(None, replay=False)  # times the phases on a server with one handler slot
def test_status_phases_queue(_):
    """With one handler slot, a request that comes while another holds it
    for D ms waits about D ms for it: in the accept queue (prefork, worker,
    which take a connection only with a free slot) or the handler pool's
    queue (event). The phase totals count it as queue, not as wait."""
    d_ms = 300
    srv = Server(MPM, one_handler_opts(), label="one-slot").start()
    try:
        # Connection: close, or a kept-alive connection would hold the slot.
        close = ["Connection: close"]
        with Conn(srv.port) as a:
            a.send(req("/delay?ms=%d" % d_ms, headers=close))
            time.sleep(0.05)
            with Conn(srv.port) as b:
                b.send(req("/delay?ms=%d" % d_ms, headers=close))
                expect_eq(a.read_response(timeout=5 * SLOW).status, 200, "the first /delay")
                expect_eq(b.read_response(timeout=5 * SLOW).status, 200, "the second /delay")

        def counted():
            fields = status_auto(srv)
            check(int(fields["Total Accesses"]) >= 2, "Total Accesses %s" % fields["Total Accesses"])
            return auto_phases(fields)

        ph = retry("?auto after two /delay", counted)
        # The second request waited for the first one's remaining ~250 ms.
        check(ph["queue"] >= 0.6 * (d_ms - 50) * 1000,
              "a request that waited for the only slot: %s" % ph)
        check(ph["handler"] >= 2 * d_ms * 1000, "two %d ms handlers: %s" % (d_ms, ph))
        check(ph["wait"] < ph["queue"], "the wait for the slot counted as the client's: %s" % ph)
    finally:
        srv.stop()
        srv.cleanup()


class _StatusHTML(html.parser.HTMLParser):
    VOID = {"meta", "br", "hr", "img", "link", "input", "col", "area", "base", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.tags, self.text, self.problems = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append("</%s> closes %s" % (tag, self.stack[-1:] or "nothing"))
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


@test()
def test_status_html(srv):
    """The page parses with balanced tags and escapes a request line that
    holds markup."""
    evil = STATUS + "?q=<script>alert(1)</script>"
    r = get(srv.port, evil, varies=True)  # the page changes with every request
    expect_eq(r.status, 200, "GET %s status" % evil)
    ctype = r.header("content-type") or ""
    check(ctype.startswith("text/html"), "Content-Type %s" % short(ctype))
    page = r.body.decode("utf-8")
    check(page.startswith("<!DOCTYPE html>"), "no doctype: %s" % short(page))
    p = _StatusHTML()
    p.feed(page)
    p.close()
    check(not p.problems, "HTML: %s" % "; ".join(p.problems[:5]))
    check(not p.stack, "HTML: unclosed %s" % p.stack)
    check("script" not in p.tags, "the request line came out as a <script> element")
    check("&lt;script&gt;" in page, "the request line is not escaped")
    text = "".join(p.text)
    check("GET " + evil in text, "the page does not show the request line %s" % evil)
    for want in ("corral/", MPM, "Scoreboard", "Waiting for Connection"):
        check(want in text, "the page does not mention %r" % want)
    kids = srv.children()
    check(any("<td>%d</td>" % pid in page for pid in kids),
          "none of the master's children %s is on the page" % sorted(kids))

    with Conn(srv.port) as c:
        c.send(req(STATUS, method="HEAD"))
        r = c.read_response(head=True)
        expect_eq(r.status, 200, "HEAD status")
        check(int(r.header("content-length") or 0) > 0, "HEAD Content-Length %s"
              % r.header("content-length"))
        extra = c.wait_data(0.3 * SLOW)
        check(not extra, "HEAD response followed by %s" % short(extra))


def metrics_children(srv):
    """/metrics with one corral_child_requests_total series per live child
    (children may come and go between two reads: retried)."""
    m = status_metrics(srv)
    pids = set()
    for name, labels in m:
        if name == "corral_child_requests_total":
            d = dict(labels)
            check(d.get("pid", "").isdigit() and d.get("generation", "").isdigit(),
                  "child labels %s" % sorted(labels))
            pids.add(int(d["pid"]))
    procs = m.get(("corral_processes", frozenset()))
    check(pids and len(pids) == procs,
          "child series %s against corral_processes %s" % (sorted(pids), procs))
    check(pids <= srv.children(), "child pids %s are not the master's children %s"
          % (sorted(pids), sorted(srv.children())))
    return m


@test()
def test_status_metrics(srv):
    """/metrics parses as Prometheus text; its counters count."""
    m = retry("/metrics", lambda: metrics_children(srv))
    names = {name for name, _ in m}
    for want in ("corral_requests_total", "corral_bytes_total", "corral_workers",
                 "corral_processes", "corral_uptime_seconds", "corral_child_requests_total"):
        check(want in names, "/metrics has no %s" % want)
    busy = m.get(("corral_workers", frozenset({("state", "busy")})))
    idle = m.get(("corral_workers", frozenset({("state", "idle")})))
    check(busy is not None and idle is not None, "corral_workers needs state busy and idle")
    check(busy >= 1, "no busy worker while serving /metrics")

    before = m[("corral_requests_total", frozenset())]
    n = 7
    hello_n(srv, n)

    def grew():
        after = status_metrics(srv)[("corral_requests_total", frozenset())]
        check(after - before >= n, "corral_requests_total grew by %d after %d requests"
              % (after - before, n))

    retry("/metrics", grew)


@test()
def test_status_methods(srv):
    """Only GET and HEAD: anything else is 405 with Allow."""
    for path, method in ((STATUS, "POST"), (STATUS + "?json", "PUT"), (METRICS, "DELETE")):
        body = b"x" if method != "DELETE" else b""
        hdrs = ["Content-Length: %d" % len(body)]
        r = get(srv.port, path, method=method, headers=hdrs, body=body)
        expect_eq(r.status, 405, "%s %s" % (method, path))
        allow = r.header("allow") or ""
        expect_eq(sorted(a.strip() for a in allow.split(",")), ["GET", "HEAD"], "Allow header")


@test(None)
def test_status_config_errors(_):
    """A status route with an unknown key or format is refused, naming file,
    line and key."""
    tmp = tempfile.mkdtemp(prefix="corral-it-status-")
    try:
        cases = [
            ("format.conf", 'format = "xml";', "format"),
            ("format_type.conf", "format = 1;", "format"),
            ("key.conf", "colour = \"blue\";", "colour"),
        ]
        for name, setting, key in cases:
            path = os.path.join(tmp, name)
            with open(path, "w") as f:
                f.write('listen = [ "127.0.0.1:8080" ];\nmodules = [ "status" ];\n'
                        'routes = (\n  { path = "/s"; module = "status"; %s }\n);\n' % setting)
            rc, out, err = configtest(path, ["mpm=" + MPM])
            check(rc == 1, "corral -t with %s: exit %d, want 1; %s" % (setting, rc, short(out + err, 400)))
            check(name + ":4" in err and key in err,
                  "corral -t with %s: stderr should name %s:4 and '%s': %s"
                  % (setting, name, key, short(err, 400)))
        path = os.path.join(tmp, "good.conf")
        with open(path, "w") as f:
            f.write('listen = [ "127.0.0.1:8080" ];\nmodules = [ "status" ];\n'
                    'routes = ( { path = "/s"; module = "status"; format = "html"; },\n'
                    '           { path = "/m"; module = "status"; format = "prometheus"; } );\n')
        rc, out, err = configtest(path, ["mpm=" + MPM])
        check(rc == 0, "corral -t with both formats: exit %d; %s" % (rc, short(out + err, 400)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@test("fresh")
def test_status_restarts(srv):
    """Graceful restarts: the generation counts them, and the totals keep
    what exited children served, also once their slots are reused."""
    hello_n(srv, 10)

    def counted():
        doc = status_json(srv)
        check(doc["server"]["requests"] >= 10, "requests %d after 10" % doc["server"]["requests"])
        return doc

    first = retry("?json", counted)
    gen = first["server"]["generation"]
    for i in (1, 2):  # the second restart reuses the slots of the first generation
        old = srv.wait_children(1)
        os.kill(srv.pid, signal.SIGUSR1)
        wait_new_generation(srv, old, 10 * SLOW)

        def restarted():
            doc = status_json(srv)
            expect_eq(doc["server"]["generation"], gen + i, "generation after restart %d" % i)
            check(all(c["generation"] == gen + i for c in doc["children"]
                      if c["state"] == "running"), "running children of an old generation")
            return doc

        doc = retry("after restart %d" % i, restarted, timeout=5.0)
        check(doc["server"]["requests"] >= first["server"]["requests"],
              "requests went from %d down to %d after restart %d"
              % (first["server"]["requests"], doc["server"]["requests"], i))
        check(doc["server"]["restart_time"] >= first["server"]["start_time"], "restart_time")
    auto = status_auto(srv)
    expect_eq(auto["ParentServerConfigGeneration"], str(gen + 2), "ParentServerConfigGeneration")
