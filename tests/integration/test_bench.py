# corral-bench (read into suite.py's namespace): a short run of every
# scenario against corral under this MPM. The load generator's count must
# equal the server's own (mod_status), results.json must hold every
# scenario, results.csv the same rows, report.html must be well-formed.

import csv
import html.parser
import json

BENCH_SCENARIOS = ["hello", "close", "idle", "backend-block", "backend-suspend", "slow",
                   "static-1k", "static-100k"]
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


@test(None)
def test_bench_short_run(_):
    bench = os.path.join(BUILDDIR, "support", "corral-bench")
    check(os.access(bench, os.X_OK), "no corral-bench at %s" % bench)
    out = tempfile.mkdtemp(prefix="corral-it-bench-")
    port = free_port()
    try:
        argv = [bench, "--mpm", MPM, "--scenario", "hello,close,idle,backend,slow,static",
                "--duration", "1", "--warmup", "0", "--connections", "8", "--workers", "4",
                "--backend-connections", "16", "--idle", "50", "--out", out, "--port", str(port),
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

        with open(os.path.join(out, "results.csv"), newline="") as f:
            csv_rows = list(csv.DictReader(f))
        expect_eq(len(csv_rows), len(res["results"]), "rows in results.csv")

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
