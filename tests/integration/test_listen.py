# Listeners and the master's privileges (read into suite.py's namespace):
# one server listens on IPv4, IPv6 and a unix socket at once and answers on
# each; started as root with `user`, its children run as that user while
# the master keeps root (to bind, and to signal them).


def unix_get(path, target):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(IO_TIMEOUT)
    try:
        s.connect(path)
        s.sendall(req(target))
        data = b""
        while b"\r\n\r\n" not in data or not data.endswith(b"Hello, World!"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data
    finally:
        s.close()


def have_ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


@test(None)
def test_listen_ipv4_ipv6_unix(_):
    srv = Server(MPM, [], label="listen")
    sock_path = os.path.join(srv.tmp, "corral.sock")
    v6 = have_ipv6_loopback()
    v6_port = free_port()
    extra = ['"[::1]:%d"' % v6_port] if v6 else []
    # Server.argv puts its own listen first; a later -o replaces it.
    srv.opts.append('listen=["%s:%%d", %s"unix:%s"]' % (HOST, "".join(e + ", " for e in extra),
                                                       sock_path))
    real_argv = srv.argv

    def argv():
        a = real_argv()
        a[-1] = a[-1] % srv.port
        return a
    srv.argv = argv
    try:
        srv.start()
        expect_eq(get(srv.port, "/hello").body, b"Hello, World!", "GET over IPv4")
        if v6:
            with socket.create_connection(("::1", v6_port), timeout=IO_TIMEOUT) as s:
                s.sendall(req("/hello"))
                data = b""
                while not data.endswith(b"Hello, World!"):
                    chunk = s.recv(4096)
                    check(chunk, "IPv6 connection closed early: %s" % short(data))
                    data += chunk
            check(data.startswith(b"HTTP/1.1 200"), "GET over IPv6: %s" % short(data))
        else:
            print("# note: no IPv6 loopback here; the IPv6 listener was not tried", flush=True)
        data = unix_get(sock_path, "/hello")
        check(data.startswith(b"HTTP/1.1 200") and data.endswith(b"Hello, World!"),
              "GET over the unix socket: %s" % short(data))
        rc = srv.stop()
        check(rc == 0, "master exit status %s" % rc)
        check(not os.path.exists(sock_path) or port_refuses(srv.port),
              "listeners left behind after the stop")
    finally:
        srv.cleanup()


def proc_uids(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("Uid:"):
                    return [int(x) for x in line.split()[1:]]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return None


@test(None)
def test_children_drop_privileges(_):
    if os.geteuid() != 0:
        raise Skip("not root: privilege dropping not tried")
    import pwd
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        raise Skip("no user nobody here: privilege dropping not tried") from None
    srv = Server(MPM, ['user="nobody"'], label="user").start()
    try:
        kids = srv.wait_children(1)
        expect_eq(get(srv.port, "/hello").body, b"Hello, World!", "GET /hello as nobody")
        # A child drops privileges right after its fork: one just forked may
        # still be root for a moment, but not for long.
        for k in kids:
            deadline = time.monotonic() + 5 * SLOW
            while True:
                uids = proc_uids(k) if pid_alive(k) else [nobody.pw_uid] * 4
                if uids is not None and all(u == nobody.pw_uid for u in uids):
                    break
                check(time.monotonic() < deadline,
                      "child %d runs with uids %s, want %d" % (k, uids, nobody.pw_uid))
                time.sleep(0.05)
        check(proc_uids(srv.pid)[0] == 0, "the master gave up root")
        rc = srv.stop()
        check(rc == 0, "master exit status %s" % rc)
    finally:
        srv.cleanup()
