# corral-bench (read into suite.py's namespace): a short run of every
# scenario against corral under this MPM. The load generator's count must
# equal the server's own (mod_status), the server's per-phase times must be
# there for every row and show the backend's wait in the handler, results.json
# must hold every scenario, results.csv the same rows, report.html must be
# well-formed. Then wrk beside the built-in generator (--wrk).

import csv
import html.parser
import json

BENCH_SCENARIOS = ["hello", "close", "idle", "backend-block", "backend-suspend", "slow",
                   "static-1k", "static-100k"]
BENCH_PHASES = ["wait", "read", "queue", "handler", "write"]
BENCH_BACKEND_MS = 10
# HTML elements that never have a closing tag.
VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
             "track", "wbr"}


class TagBalance(html.parser.HTMLParser):
    """Fails on a closing tag that does not match the open one."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors = [], []

    def handle_starttag(self, tag, attrs):
        if tag not in VOID_TAGS:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        pass

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append("</%s> at line %d closes %s" % (tag, self.getpos()[0],
                                                               self.stack[-1:] or "nothing"))
        else:
            self.stack.pop()


def bench_check_phases(rows, text):
    """Where the time goes: every row of corral has the five phases (mean
    microseconds per request, from mod_status's Phase*Us), none negative,
    and a backend that waits BENCH_BACKEND_MS holds its requests in the
    handler at least that long, blocking or suspended."""
    for sc in BENCH_SCENARIOS:
        ph = rows[(MPM, sc)]["phases"]
        check(ph is not None, "%s: no phases in results.json (does /server-status?auto print "
              "PhaseWaitUs ... PhaseWriteUs?)" % sc)
        for name in BENCH_PHASES:
            v = ph.get(name + "_us")
            check(isinstance(v, (int, float)) and v >= 0, "%s: phase %s is %r" % (sc, name, v))
    for sc in ("backend-block", "backend-suspend"):
        handler = rows[(MPM, sc)]["phases"]["handler_us"]
        check(handler >= 0.9 * BENCH_BACKEND_MS * 1000,
              "%s: %.0f us per request in the handler, the backend waits %d ms"
              % (sc, handler, BENCH_BACKEND_MS))
    check("where the time goes" in text, "the markdown has no phase table")


@test(None)
def test_bench_short_run(_):
    bench = os.path.join(BUILDDIR, "support", "corral-bench")
    check(os.access(bench, os.X_OK), "no corral-bench at %s" % bench)
    out = tempfile.mkdtemp(prefix="corral-it-bench-")
    port = free_port()
    try:
        argv = [bench, "--mpm", MPM, "--scenario", "hello,close,idle,backend,slow,static",
                "--duration", "1", "--warmup", "0", "--connections", "8", "--workers", "4",
                "--backend-connections", "16", "--backend-ms", str(BENCH_BACKEND_MS),
                "--idle", "50", "--out", out, "--port", str(port),
                "--corral", CORRAL, "--no-pin"]
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=180 * SLOW, check=False)
        text, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
        check(p.returncode == 0, "corral-bench exit %d\n%s\n%s" % (p.returncode, text[-2000:], err[-2000:]))
        check("| %s " % MPM in text or MPM in text, "the markdown table does not name %s" % MPM)

        with open(os.path.join(out, "results.json")) as f:
            res = json.load(f)
        rows = {(r["target"], r["scenario"]): r for r in res["results"]}
        for sc in BENCH_SCENARIOS:
            check((MPM, sc) in rows, "results.json has no row for %s / %s" % (MPM, sc))
        for sc in ("hello", "close", "backend-block", "backend-suspend", "static-1k", "static-100k"):
            r = rows[(MPM, sc)]
            check(r["requests"] > 0, "%s: no requests measured" % sc)
            expect_eq(r["server_requests"], r["requests_total"],
                      "%s: the server's count (mod_status) against the load generator's" % sc)
        idle = rows[(MPM, "idle")]
        # A process or thread per connection holds at most one per worker.
        want = 50 if MPM == "event" else 4
        check(idle["idle_held"] == want or (MPM != "event" and idle["idle_held"] <= want),
              "idle: %s of 50 idle connections held, want %s" % (idle["idle_held"], want))
        bench_check_phases(rows, text)

        with open(os.path.join(out, "results.csv"), newline="") as f:
            csv_rows = list(csv.DictReader(f))
        expect_eq(len(csv_rows), len(res["results"]), "rows in results.csv")
        for r in csv_rows:
            for ph in BENCH_PHASES:
                check(r.get("phase_%s_us" % ph), "results.csv: %s has no phase_%s_us"
                      % (r.get("scenario"), ph))

        with open(os.path.join(out, "report.html"), encoding="utf-8") as f:
            page = f.read()
        parser = TagBalance()
        parser.feed(page)
        parser.close()
        check(not parser.errors, "report.html: " + "; ".join(parser.errors[:5]))
        check(parser.stack in ([], ["html"]), "report.html leaves %s open" % parser.stack)
        check("<svg" in page or "gnuplot" in page, "report.html has neither charts nor a note why")
    finally:
        shutil.rmtree(out, ignore_errors=True)


@test(None)
def test_bench_wrk(_):
    """--wrk: wrk on the same URL right after the built-in hello run, its
    figures beside the built-in generator's in every format; a --wrk that
    cannot run is refused before any server starts."""
    bench = os.path.join(BUILDDIR, "support", "corral-bench")
    wrk = shutil.which("wrk")
    check(wrk is not None, "wrk is not installed (support/dev.sh installs it)")
    out = tempfile.mkdtemp(prefix="corral-it-bench-wrk-")
    try:
        base = [bench, "--mpm", MPM, "--duration", "1", "--warmup", "0", "--connections", "8",
                "--workers", "4", "--out", out, "--port", str(free_port()), "--corral", CORRAL,
                "--no-pin"]
        for bad, why in ((["--scenario", "hello", "--wrk=/nonexistent/wrk"], "--wrk="),
                         (["--scenario", "idle", "--wrk"], "hello")):
            p = subprocess.run(base + bad, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=10 * SLOW, check=False)
            err = p.stderr.decode("utf-8", "replace")
            expect_eq(p.returncode, 2, "exit status of corral-bench %s" % " ".join(bad))
            check(why in err, "corral-bench %s says %s" % (" ".join(bad), short(err)))

        p = subprocess.run(base + ["--scenario", "hello", "--wrk"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60 * SLOW, check=False)
        text, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
        check(p.returncode == 0, "corral-bench --wrk exit %d\n%s\n%s"
              % (p.returncode, text[-2000:], err[-2000:]))
        check("beside wrk" in text, "the markdown has no table beside wrk")
        check(os.path.exists(os.path.join(out, "wrk-%s.txt" % MPM)), "wrk's output is not kept")

        with open(os.path.join(out, "results.json")) as f:
            res = json.load(f)
        rows = {(r["target"], r["scenario"]): r for r in res["results"]}
        w = rows[(MPM, "hello")]["wrk"]
        check(w is not None, "results.json: no wrk figures for hello")
        expect_eq(w["threads"], 1, "wrk's threads (the built-in generator's one)")
        check(w["requests"] > 0 and w["requests_per_s"] > 0, "wrk measured nothing: %s" % short(w))
        expect_eq(w["errors"], {"connect": 0, "read": 0, "write": 0, "timeout": 0, "status": 0},
                  "wrk's errors")
        check(None not in w["latency"].values(), "wrk's latency: %s" % short(w["latency"]))
        # Both measure the same server: a factor of 3 between them is a
        # broken parse or generator, not noise.
        check(1 / 3 < w["ratio_to_builtin"] < 3, "wrk / built-in = %s" % w["ratio_to_builtin"])

        with open(os.path.join(out, "results.csv"), newline="") as f:
            hello = [r for r in csv.DictReader(f) if r["scenario"] == "hello"]
        check(hello and hello[0]["wrk_requests_per_s"], "results.csv: no wrk_requests_per_s")
    finally:
        shutil.rmtree(out, ignore_errors=True)
