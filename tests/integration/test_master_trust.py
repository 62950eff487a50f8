# The master signals only the processes it forked (read into suite.py's
# namespace). The scoreboard is shared memory that children can write, so
# a pid in it is no reason to signal anything: a process of this test is
# written into the process slots the way a compromised child could, then
# the master is made to do everything that signals children (spare-process
# reduction, graceful restart, full restart, stop through corralctl). The
# process must survive each step, and the server must still stop cleanly.

import struct

TRUST_CTL = os.path.join(BUILDDIR, "corralctl")
TRUST_MAGIC = b"CRSCORE\0"
# In the scoreboard's header (core/scoreboard.h), little-endian.
TRUST_PROCESS_SIZE_AT = 16
TRUST_PROCESS_LIMIT_AT = 24
TRUST_PROCESS_OFFSET_AT = 32
TRUST_WORKER_SIZE_AT = 20
TRUST_THREAD_LIMIT_AT = 28
TRUST_WORKER_OFFSET_AT = 40
TRUST_IDLE = b"_"  # CR_SLOT_READY: an idle handler slot
# Long enough for the master to run its spare-process check a few times.
TRUST_SETTLE = 3.0 * SLOW


def trust_scoreboard(srv):
    return os.path.splitext(srv.pidfile)[0] + ".scoreboard"


def trust_forge(srv, pid, generation=0, idle=False):
    """Writes pid (and generation) into every free process slot of srv's
    scoreboard; with idle, marks the handler slots of those slots idle, as
    spare servers. Returns how many slots were written."""
    with open(trust_scoreboard(srv), "r+b") as f:
        head = f.read(64)
        check(head[:8] == TRUST_MAGIC, "not a scoreboard: %s" % short(head[:8]))
        psize, = struct.unpack_from("<I", head, TRUST_PROCESS_SIZE_AT)
        plimit, = struct.unpack_from("<I", head, TRUST_PROCESS_LIMIT_AT)
        poff, = struct.unpack_from("<Q", head, TRUST_PROCESS_OFFSET_AT)
        wsize, = struct.unpack_from("<I", head, TRUST_WORKER_SIZE_AT)
        tlimit, = struct.unpack_from("<I", head, TRUST_THREAD_LIMIT_AT)
        woff, = struct.unpack_from("<Q", head, TRUST_WORKER_OFFSET_AT)
        written = 0
        for i in range(plimit):
            f.seek(poff + i * psize)
            if struct.unpack("<i", f.read(4))[0] != 0:
                continue
            f.seek(poff + i * psize)
            f.write(struct.pack("<iI", pid, generation))
            for t in range(tlimit if idle else 0):
                f.seek(woff + (i * tlimit + t) * wsize)
                f.write(TRUST_IDLE)
            written += 1
        f.flush()
    return written


def trust_generation(srv, kids):
    """The generation a running child's process slot shows. A child seen in
    /proc may not be in the scoreboard yet (a slow, sanitized start): wait
    for it, within the start timeout."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        with open(trust_scoreboard(srv), "rb") as f:
            head = f.read(64)
            psize, = struct.unpack_from("<I", head, TRUST_PROCESS_SIZE_AT)
            plimit, = struct.unpack_from("<I", head, TRUST_PROCESS_LIMIT_AT)
            poff, = struct.unpack_from("<Q", head, TRUST_PROCESS_OFFSET_AT)
            for i in range(plimit):
                f.seek(poff + i * psize)
                pid, gen = struct.unpack("<iI", f.read(8))
                if pid in kids:
                    return gen
        if time.monotonic() > deadline:
            raise Fail("no child of %s in the scoreboard" % sorted(kids))
        time.sleep(0.05)


def trust_check_alive(victim, srv, step):
    check(pid_alive(victim.pid), "%s: the master signalled pid %d, which it did not fork "
          "(exit status %s)\n%s" % (step, victim.pid, victim.poll(), srv.logs()))
    check(srv.alive(), "%s: the master exited\n%s" % (step, srv.logs()))


def trust_restart(srv, victim, sig, what):
    """Sends sig to the master and waits for a new generation of children.
    A master that waits for the forged pid to exit never gets there."""
    old = srv.wait_children(1)
    os.kill(srv.pid, sig)
    deadline = time.monotonic() + 15 * SLOW
    while True:
        kids = srv.children()
        if kids and not kids & old:
            return kids
        trust_check_alive(victim, srv, what)
        if time.monotonic() > deadline:
            raise Fail("%s: no new generation of children %.0f s later (old %s, now %s)\n%s"
                       % (what, 15 * SLOW, sorted(old), sorted(kids), srv.logs()))
        time.sleep(0.1)


@test("fresh")
def test_master_signals_only_its_children(srv):
    victim = subprocess.Popen(["sleep", "60"], stdin=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        kids = srv.wait_children(1)
        gen = trust_generation(srv, kids)

        # Spare servers of the running generation, all idle: prefork and
        # worker stop idle children above max_spare.
        check(trust_forge(srv, victim.pid, gen, idle=True) > 0, "no free process slot")
        time.sleep(TRUST_SETTLE)
        trust_check_alive(victim, srv, "spare-process reduction")
        r = get(srv.port, "/hello")
        expect_eq(r.status, 200, "GET /hello with forged process slots")

        # Children of an old generation: a graceful restart stops those.
        trust_forge(srv, victim.pid)
        trust_restart(srv, victim, signal.SIGUSR1, "graceful restart (USR1)")
        trust_check_alive(victim, srv, "graceful restart")

        trust_forge(srv, victim.pid)
        trust_restart(srv, victim, signal.SIGHUP, "restart (HUP)")
        trust_check_alive(victim, srv, "restart")
        expect_eq(get(srv.port, "/hello").status, 200, "GET /hello after the restarts")

        # Stopped through corralctl, which waits for the server's processes.
        srv.wait_children(1)
        trust_forge(srv, victim.pid)
        argv = [TRUST_CTL, "-f", CONF, "-o", 'pidfile="%s"' % srv.pidfile, "stop"]
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                               cwd=srv.tmp, timeout=STOP_TIMEOUT + 5 * SLOW, check=False)
        except subprocess.TimeoutExpired:
            raise Fail("corralctl stop still waiting %.0f s later (pid %d %s)\n%s"
                       % (STOP_TIMEOUT + 5 * SLOW, victim.pid,
                          "alive" if pid_alive(victim.pid) else "killed", srv.logs())) from None
        check(p.returncode == 0, "corralctl stop: exit %d: %s\n%s"
              % (p.returncode, p.stderr.decode("utf-8", "replace").strip(), srv.logs()))
        try:
            rc = srv.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise Fail("master still running %.0f s after corralctl stop\n%s"
                       % (STOP_TIMEOUT, srv.logs())) from None
        check(rc == 0, "master exit status %d\n%s" % (rc, srv.logs()))
        check(pid_alive(victim.pid), "stop: the master signalled pid %d, which it did not fork"
              % victim.pid)
    finally:
        if victim.poll() is None:
            os.kill(victim.pid, signal.SIGTERM)
        victim.wait(IO_TIMEOUT)
