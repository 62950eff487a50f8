/* libFuzzer harness for a whole connection of the real drivers. Once per
 * process it sets up what a child serves with (config, the modules hello,
 * echo, static, delay and status loaded from the build, the routes, a
 * scoreboard) and starts an event-MPM child on a thread, as `corral -X`
 * does, listening on a unix socket. Each input then opens one connection,
 * to that child or to the blocking driver (prefork and worker's) run on
 * one end of a socketpair, writes the input's client bytes cut as the
 * input says, reads the whole answer and checks it (fuzz_conn_check.c).
 *
 * Input: byte 0 picks the driver and how the bytes go out (CR_FZ_*
 * below), byte 1 seeds the cuts and pauses, the rest is what the client
 * sends: pipelined requests, bodies of every framing, garbage.
 *
 * Every wait is bounded. A server that neither reads, answers nor closes
 * for CR_FZ_PATIENCE_MS is a finding (abort), except where the input may
 * ask the delay module for long waits, which are given up quietly. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <linux/sockios.h>

#include "access_log.h"
#include "child.h"
#include "error_log.h"
#include "fuzz_conn_check.h"
#include "http_conn.h"
#include "loader.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The server object main would hold (core/main.c is not linked in). */
static cr_server cr_fz_server;

/* ThreadSanitizer, in its build: the event loop batches its epoll changes
 * (EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST), so the removal of a connection
 * it closed reaches epoll_ctl at its next pass, by number. When this
 * process's client side has meanwhile been given that number for a socket
 * of its own, the two threads look like racing on one descriptor; the
 * kernel just answers ENOENT. Other races are still reported. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
    return "race:epoll_ctl\n";
}

/* Byte 0 of an input. */
#define CR_FZ_BLOCKING    0x01 /* the blocking driver, else the event child */
#define CR_FZ_SPLIT_MASK  0x06 /* how the client bytes are cut into writes: */
#define CR_FZ_SPLIT_WHOLE 0x00 /*   one write */
#define CR_FZ_SPLIT_RAND  0x02 /*   pieces of random sizes */
#define CR_FZ_SPLIT_BYTE  0x04 /*   one byte per write */
#define CR_FZ_SPLIT_PAUSE 0x06 /*   random pieces, with short pauses between some */
#define CR_FZ_HOLD        0x08 /* half-close only once everything is answered */
#define CR_FZ_DRAIN       0x10 /* after each write, let the server read it first */

#define CR_FZ_HEADER_BYTES 2
#define CR_FZ_INPUT_MAX    (1024 * 1024)

/* A server that neither takes bytes, answers nor closes for this long
 * hangs: its own timeouts (CR_FZ_CONFIG) are all shorter. */
#define CR_FZ_PATIENCE_MS 10000
/* Inputs that may ask the delay module for long waits are given up after
 * this long without progress... */
#define CR_FZ_SLOW_GIVE_UP_MS 3000
/* ...and hangs are not reported for this long after such a give-up, while
 * a handler may still sleep (the delay module's longest wait, and some). */
#define CR_FZ_SETTLE_MS 65000
/* In CR_FZ_HOLD mode, the write side is closed anyway after this long
 * (past the keep-alive timeout, so the server has closed by then). */
#define CR_FZ_HOLD_MS 1500
/* Letting the server read each piece (CR_FZ_DRAIN): per write, and for
 * the whole input, so that a server busy elsewhere costs little; checked
 * every CR_FZ_DRAIN_POLL_US. */
#define CR_FZ_DRAIN_WAIT_US   2000
#define CR_FZ_DRAIN_BUDGET_US 100000
#define CR_FZ_DRAIN_POLL_US   20
/* CR_FZ_SPLIT_BYTE writes this many bytes one at a time (a whole head at
 * the harness's limits), then the rest at once: a long input stays cheap. */
#define CR_FZ_BYTE_WRITES 2048
/* Pauses of CR_FZ_SPLIT_PAUSE: each at most, all together at most. */
#define CR_FZ_PAUSE_MAX_US    2000
#define CR_FZ_PAUSE_BUDGET_US 250000
/* Answers are kept up to this size for the check; the rest is read and
 * dropped. */
#define CR_FZ_ANSWER_CAP (16 * 1024 * 1024)
#define CR_FZ_READ_CHUNK 65536

/* Scoreboard process slots: the event child's and the blocking driver's. */
#define CR_FZ_EVENT_SLOT    0
#define CR_FZ_BLOCKING_SLOT 1
#define CR_FZ_SLOTS         2
#define CR_FZ_BLOCKING_MAX  64

/* Short timeouts so that a stuck connection ends soon, small limits so
 * that 413, 414 and 431 are reachable. write is 2 s rather than 1 so that
 * a client starved of CPU on a loaded machine is not cut off. %s: the
 * folder, the unix socket. */
#define CR_FZ_CONFIG                                                                               \
    "listen = [ \"unix:%s\" ];\n"                                                                  \
    "mpm = \"event\";\n"                                                                           \
    "mpm_event = { processes = 1; threads = 4; max_connections = 256; };\n"                        \
    "pidfile = \"corral.pid\";\n"                                                                  \
    "scoreboard = \"corral.scoreboard\";\n"                                                        \
    "timeouts = { header = 1; body = 1; keepalive = 1; write = 2; graceful = 1; };\n"              \
    "limits = { header_bytes = 2048; uri_bytes = 512; body_bytes = 16384;\n"                       \
    "           keepalive_requests = 100; };\n"                                                    \
    "log = { error = \"error.log\"; level = \"error\"; access = \"/dev/null\"; };\n"               \
    "modules = [ \"hello\", \"echo\", \"static\", \"delay\", \"status\" ];\n"                      \
    "routes = (\n"                                                                                 \
    "    { path = \"/hello\"; module = \"hello\"; },\n"                                            \
    "    { path = \"/echo\"; module = \"echo\"; },\n"                                              \
    "    { path = \"/stream\"; module = \"echo\"; stream = true; },\n"                             \
    "    { path = \"/delay\"; module = \"delay\"; ms = 1; },\n"                                    \
    "    { path = \"/wait\"; module = \"delay\"; ms = 1; mode = \"suspend\"; },\n"                 \
    "    { path = \"/server-status\"; module = \"status\"; },\n"                                   \
    "    { path = \"/\"; module = \"static\"; root = \"www\"; }\n"                                 \
    ");\n"

/* The request that shows the child serves, once at start. */
#define CR_FZ_WARM_UP "GET /hello HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n"

/* The delay module's knobs: an input naming one may legitimately be slow. */
static const char *const cr_fz_slow_args[] = {"ms=", "chunks=", "size="};

/* A blocking-driver connection run on its own thread. */
enum { CR_FZ_RUNNING, CR_FZ_FINISHED, CR_FZ_ABANDONED };
typedef struct cr_fz_blocking_run {
    int fd;      /* the server's end */
    int done_fd; /* eventfd raised when the driver returned */
    int thread;  /* handler slot in the scoreboard */
    atomic_int state;
    pthread_t tid;
} cr_fz_blocking_run;

static struct {
    char dir[96];
    char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
    cr_generation gen;
    cr_child blocking; /* the blocking driver's child */
    pthread_t event_thread;
    atomic_bool event_returned;
    atomic_bool slot_busy[CR_FZ_BLOCKING_MAX];
    int nslots;
    long long settle_until; /* hangs are not reported before (ms) */
    bool ready;
} cr_fz;

/* A finding or a broken setup: the message, then abort, which libFuzzer
 * and the replay report with the input. The temporary folder stays, with
 * the server's error.log. */
#define CR_FZ_DIE(...)                                                                             \
    do {                                                                                           \
        fprintf(stderr, "fuzz_connection: " __VA_ARGS__);                                          \
        fprintf(stderr, "\n(server log: %s/error.log)\n", cr_fz.dir);                              \
        abort();                                                                                   \
    } while (0)

static long long cr_fz_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static long long cr_fz_now_ms(void)
{
    return cr_fz_now_us() / 1000;
}

static void cr_fz_sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* xorshift32: the cuts and pauses, reproducible from the seed byte. */
static uint32_t cr_fz_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* ---- one-time setup ---- */

static void cr_fz_write_file(const char *rel, const char *data, size_t len)
{
    char path[256];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", cr_fz.dir, rel);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd) != 0)
        CR_FZ_DIE("cannot write %s: %s", path, strerror(errno));
}

static void cr_fz_mkdir(const char *rel)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", cr_fz.dir, rel);
    if (mkdir(path, 0755) != 0)
        CR_FZ_DIE("cannot create %s: %s", path, strerror(errno));
}

/* The static site (and the MIME types mod_static reads): small files, a
 * folder with an index, and one file big enough to need several writes
 * once a few are pipelined. */
static void cr_fz_write_site(void)
{
    static const char index[] = "<!DOCTYPE html>\n<title>fuzz</title>\n";
    static const char mime[] = "text/html html\ntext/plain txt\n";
    static char big[64 * 1024];

    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)('a' + i % 26);
    cr_fz_write_file("mime.types", mime, sizeof(mime) - 1);
    cr_fz_mkdir("www");
    cr_fz_mkdir("www/dir");
    cr_fz_write_file("www/index.html", index, sizeof(index) - 1);
    cr_fz_write_file("www/a.txt", "hello, static\n", 14);
    cr_fz_write_file("www/dir/index.html", index, sizeof(index) - 1);
    cr_fz_write_file("www/big.bin", big, sizeof(big));
}

static void cr_fz_write_config(char *path, size_t len)
{
    char text[sizeof(CR_FZ_CONFIG) + sizeof(cr_fz.sock)];

    snprintf(text, sizeof(text), CR_FZ_CONFIG, cr_fz.sock);
    cr_fz_write_file("corral.conf", text, strlen(text));
    snprintf(path, len, "%s/corral.conf", cr_fz.dir);
}

/* Where the built MPM and modules are: ROOT/mpm and ROOT/modules. */
static const char *cr_fz_module_root(void)
{
    const char *env = getenv("CR_FUZZ_MODULE_ROOT");

#ifdef CR_FZ_MODULE_ROOT
    if (env == NULL || env[0] == '\0')
        env = CR_FZ_MODULE_ROOT;
#endif
    if (env == NULL || env[0] == '\0')
        CR_FZ_DIE("set CR_FUZZ_MODULE_ROOT to the folder holding mpm/ and modules/");
    return env;
}

static void cr_fz_load(void)
{
    cr_server *srv = &cr_fz_server;
    cr_config *cfg = &cr_fz.gen.cfg;
    char conf[256], err[1024];
    /* CR_FUZZ_VERBOSE=1: the server's log on stderr, every message. */
    char *verbose[] = {"log.error=\"-\"", "log.level=\"debug\""};
    bool loud = getenv("CR_FUZZ_VERBOSE") != NULL;

    cr_fz_write_config(conf, sizeof(conf));
    if (cr_generation_load(&cr_fz.gen, cr_fz_module_root(), conf, loud ? verbose : NULL,
                           loud ? 2 : 0, err, sizeof(err)) != 0)
        CR_FZ_DIE("cannot load the config: %s", err);
    cr_fz.gen.number = 1;
    srv->gen = &cr_fz.gen;
    cr_status_init(srv);
    srv->single_process = true;
    srv->foreground = true;
    if (cr_error_log_open(cfg->log.error, cfg->log.level) != 0)
        CR_FZ_DIE("cannot open the error log %s: %s", cfg->log.error, strerror(errno));
    srv->access_log = cr_access_log_open(cfg->log.access);
    if (srv->access_log < 0)
        CR_FZ_DIE("cannot open the access log %s: %s", cfg->log.access, strerror(errno));
    if (cr_listeners_update(&srv->listeners, cfg->listen, cfg->nlisten, cfg->backlog, err,
                            sizeof(err)) != 0)
        CR_FZ_DIE("cannot listen: %s", err);
}

static void cr_fz_scoreboard(void)
{
    cr_server *srv = &cr_fz_server;
    uint32_t threads = (uint32_t)cr_fz.gen.policy.threads_per_child;

    if (cr_scoreboard_create(&srv->sb, cr_fz.gen.cfg.scoreboard, CR_FZ_SLOTS, threads,
                             cr_fz.gen.mpm->name) != 0)
        CR_FZ_DIE("cannot create the scoreboard: %s", strerror(errno));
    srv->sb.running_generation = cr_fz.gen.number;
    cr_scoreboard_claim(&srv->sb, CR_FZ_EVENT_SLOT, getpid(), cr_fz.gen.number, threads);
    cr_scoreboard_claim(&srv->sb, CR_FZ_BLOCKING_SLOT, getpid(), cr_fz.gen.number, threads);
    cr_fz.nslots = (int)threads < CR_FZ_BLOCKING_MAX ? (int)threads : CR_FZ_BLOCKING_MAX;
}

/* The event-MPM child, as `corral -X` runs it: signals, listeners,
 * modules' child_init, then the MPM's child_main until asked to stop. */
static void *cr_fz_event_main(void *arg)
{
    int status = cr_child_run(arg, CR_FZ_EVENT_SLOT);

    if (status != 0)
        fprintf(stderr, "fuzz_connection: the event child returned %d\n", status);
    atomic_store(&cr_fz.event_returned, true);
    return NULL;
}

/* ---- the client ---- */

typedef struct cr_fz_client {
    int fd;
    char *answer;
    size_t len, cap;
    bool overflow;  /* more than CR_FZ_ANSWER_CAP came; the rest was dropped */
    bool eof;       /* the server closed */
    bool shut;      /* our write side is closed */
    bool refused;   /* the server no longer takes bytes (EPIPE) */
    long long last; /* when something last moved (ms) */
    long long drain_left_us, pause_left_us;
} cr_fz_client;

static void cr_fz_keep(cr_fz_client *cl, const char *buf, size_t n)
{
    if (cl->len + n > CR_FZ_ANSWER_CAP) {
        cl->overflow = true;
        return;
    }
    if (cl->len + n > cl->cap) {
        size_t cap = cl->cap ? cl->cap : CR_FZ_READ_CHUNK;
        char *grown;

        while (cap < cl->len + n)
            cap *= 2;
        grown = realloc(cl->answer, cap);
        if (grown == NULL)
            CR_FZ_DIE("out of memory for an answer of %zu bytes", cl->len + n);
        cl->answer = grown;
        cl->cap = cap;
    }
    memcpy(cl->answer + cl->len, buf, n);
    cl->len += n;
}

/* Reads what is there without waiting. A reset counts as the close: on a
 * unix socket it comes after all the data the server sent. */
static void cr_fz_read_some(cr_fz_client *cl)
{
    static _Thread_local char buf[CR_FZ_READ_CHUNK];

    while (!cl->eof) {
        ssize_t n = recv(cl->fd, buf, sizeof(buf), MSG_DONTWAIT);

        if (n > 0) {
            cr_fz_keep(cl, buf, (size_t)n);
            cl->last = cr_fz_now_ms();
        } else if (n == 0 || errno == ECONNRESET) {
            cl->eof = true;
            cl->last = cr_fz_now_ms();
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        } else if (errno != EINTR) {
            CR_FZ_DIE("recv: %s", strerror(errno));
        }
    }
}

/* Waits up to ms for the answer to move (or, with want_write, for room to
 * write), reading what comes. */
static void cr_fz_pump(cr_fz_client *cl, bool want_write, int ms)
{
    struct pollfd p = {.fd = cl->fd,
                       .events = (short)((cl->eof ? 0 : POLLIN) | (want_write ? POLLOUT : 0))};

    if (p.events == 0) {
        cr_fz_sleep_us((long)ms * 1000);
        return;
    }
    if (poll(&p, 1, ms) < 0 && errno != EINTR)
        CR_FZ_DIE("poll: %s", strerror(errno));
    if (p.revents & (POLLIN | POLLHUP | POLLERR))
        cr_fz_read_some(cl);
}

static bool cr_fz_stalled(const cr_fz_client *cl, int patience_ms)
{
    return cr_fz_now_ms() - cl->last >= patience_ms;
}

/* Bytes we sent that the server has not read yet. */
static int cr_fz_unread(const cr_fz_client *cl)
{
    int n = 0;

    if (ioctl(cl->fd, SIOCOUTQ, &n) != 0)
        CR_FZ_DIE("ioctl(SIOCOUTQ): %s", strerror(errno));
    return n;
}

/* Writes one piece. false when the server stalled past patience. */
static bool cr_fz_write(cr_fz_client *cl, const uint8_t *p, size_t n, int patience_ms)
{
    while (n > 0 && !cl->refused) {
        ssize_t w = send(cl->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (w > 0) {
            p += w;
            n -= (size_t)w;
            cl->last = cr_fz_now_ms();
        } else if (errno == EPIPE || errno == ECONNRESET) {
            cl->refused = true;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (cr_fz_stalled(cl, patience_ms))
                return false;
            cr_fz_pump(cl, true, 10);
        } else if (errno != EINTR) {
            CR_FZ_DIE("send: %s", strerror(errno));
        }
    }
    return true;
}

/* Lets the server read what was written (partial reads at this point),
 * within the input's budget, reading the answer meanwhile. */
static void cr_fz_drain(cr_fz_client *cl)
{
    long long start = cr_fz_now_us(), now = start;

    while (now - start < CR_FZ_DRAIN_WAIT_US && now - start < cl->drain_left_us && !cl->refused &&
           cr_fz_unread(cl) > 0) {
        cr_fz_read_some(cl);
        cr_fz_sleep_us(CR_FZ_DRAIN_POLL_US);
        now = cr_fz_now_us();
    }
    cl->drain_left_us -= now - start;
}

/* A pause between two writes of CR_FZ_SPLIT_PAUSE, reading meanwhile. */
static void cr_fz_pause(cr_fz_client *cl, uint32_t *seed)
{
    long us = (long)(cr_fz_next(seed) % CR_FZ_PAUSE_MAX_US);
    long long until, left;

    if (cr_fz_next(seed) % 3 != 0 || us > cl->pause_left_us)
        return;
    cl->pause_left_us -= us;
    until = cr_fz_now_us() + us;
    while ((left = until - cr_fz_now_us()) > 0) {
        if (left < 1000)
            cr_fz_sleep_us((long)left);
        else
            cr_fz_pump(cl, false, (int)(left / 1000));
    }
}

/* The length of the next write, `off` bytes being written already. */
static size_t cr_fz_piece(uint8_t mode, uint32_t *seed, size_t off, size_t left)
{
    static const uint32_t spans[] = {4, 32, 512};
    size_t n;

    switch (mode & CR_FZ_SPLIT_MASK) {
    case CR_FZ_SPLIT_WHOLE:
        return left;
    case CR_FZ_SPLIT_BYTE:
        return off < CR_FZ_BYTE_WRITES ? 1 : left;
    default:
        n = 1 + cr_fz_next(seed) % spans[cr_fz_next(seed) % 3];
        return n < left ? n : left;
    }
}

/* Sends the client bytes as the mode says. false when the server stalled. */
static bool cr_fz_send_all(cr_fz_client *cl, uint8_t mode, uint32_t seed, const uint8_t *data,
                           size_t len, int patience_ms)
{
    size_t off = 0;

    while (off < len && !cl->refused) {
        size_t n = cr_fz_piece(mode, &seed, off, len - off);

        if (!cr_fz_write(cl, data + off, n, patience_ms))
            return false;
        off += n;
        if (mode & CR_FZ_DRAIN)
            cr_fz_drain(cl);
        if ((mode & CR_FZ_SPLIT_MASK) == CR_FZ_SPLIT_PAUSE)
            cr_fz_pause(cl, &seed);
    }
    return true;
}

static void cr_fz_shut(cr_fz_client *cl)
{
    if (cl->shut)
        return;
    cl->shut = true;
    /* ENOTCONN: the server is gone already, which is fine. */
    if (shutdown(cl->fd, SHUT_WR) != 0 && errno != ENOTCONN)
        CR_FZ_DIE("shutdown: %s", strerror(errno));
}

/* CR_FZ_HOLD: the write side stays open until every request is answered
 * (a suspended request ends when its client half-closes; an incomplete
 * one waits for the server's timeout), or the server closes, or
 * CR_FZ_HOLD_MS passed. */
static void cr_fz_hold(cr_fz_client *cl, const cr_fz_requests *rq)
{
    long long until = cr_fz_now_ms() + CR_FZ_HOLD_MS;
    size_t seen = (size_t)-1, all = rq->count + (rq->extra ? 1 : 0);

    while (!cl->eof && cr_fz_now_ms() < until) {
        if (cl->len != seen && !cl->overflow) {
            seen = cl->len;
            if (cr_fz_check_answer(cl->answer, cl->len, false, rq).finals >= all)
                return;
        }
        cr_fz_pump(cl, false, 10);
    }
}

/* Reads until the server closes. false when it stalled past patience. */
static bool cr_fz_read_to_eof(cr_fz_client *cl, int patience_ms)
{
    while (!cl->eof) {
        if (cr_fz_stalled(cl, patience_ms))
            return false;
        cr_fz_pump(cl, false, 50);
    }
    return true;
}

/* ---- what an input may do ---- */

static int cr_fz_hex(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Whether the input names one of the delay module's knobs, in the query
 * or a form body, however encoded: then a long wait is its right. */
static bool cr_fz_may_be_slow(const uint8_t *data, size_t len)
{
    char *flat = malloc(len + 1);
    size_t n = 0;
    bool slow = false;

    if (flat == NULL)
        CR_FZ_DIE("out of memory");
    for (size_t i = 0; i < len; i++) {
        int hi, lo;

        if (data[i] == '%' && i + 2 < len && (hi = cr_fz_hex(data[i + 1])) >= 0 &&
            (lo = cr_fz_hex(data[i + 2])) >= 0) {
            flat[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            flat[n++] = (char)data[i];
        }
        if (flat[n - 1] >= 'A' && flat[n - 1] <= 'Z')
            flat[n - 1] = (char)(flat[n - 1] - 'A' + 'a');
    }
    for (size_t i = 0; i < sizeof(cr_fz_slow_args) / sizeof(cr_fz_slow_args[0]); i++)
        slow |= memmem(flat, n, cr_fz_slow_args[i], strlen(cr_fz_slow_args[i])) != NULL;
    free(flat);
    return slow;
}

/* ---- the drivers ---- */

static int cr_fz_connect_event(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        CR_FZ_DIE("socket: %s", strerror(errno));
    memcpy(sa.sun_path, cr_fz.sock, strlen(cr_fz.sock) + 1);
    while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        if (errno != EINTR)
            CR_FZ_DIE("connect to %s: %s", cr_fz.sock, strerror(errno));
    if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0)
        CR_FZ_DIE("fcntl: %s", strerror(errno));
    return fd;
}

static void *cr_fz_blocking_main(void *arg)
{
    cr_fz_blocking_run *run = arg;
    uint64_t one = 1;

    cr_http_serve_blocking(&cr_fz.blocking, run->thread, run->fd);
    atomic_store(&cr_fz.slot_busy[run->thread], false);
    if (atomic_exchange(&run->state, CR_FZ_FINISHED) == CR_FZ_ABANDONED) {
        close(run->done_fd);
        free(run);
        return NULL;
    }
    if (write(run->done_fd, &one, sizeof(one)) != sizeof(one))
        CR_FZ_DIE("write to an eventfd: %s", strerror(errno));
    return NULL;
}

/* A free handler slot of the blocking child, or -1. */
static int cr_fz_take_slot(void)
{
    for (int i = 0; i < cr_fz.nslots; i++) {
        bool free_slot = false;

        if (atomic_compare_exchange_strong(&cr_fz.slot_busy[i], &free_slot, true))
            return i;
    }
    return -1;
}

/* Starts the blocking driver on one end of a socketpair; returns the
 * other end, or -1 when every slot is held by an abandoned run. */
static int cr_fz_start_blocking(cr_fz_blocking_run **out)
{
    int sv[2], err, slot = cr_fz_take_slot();
    cr_fz_blocking_run *run;

    if (slot < 0)
        return -1;
    run = calloc(1, sizeof(*run));
    if (run == NULL)
        CR_FZ_DIE("out of memory");
    /* Non-blocking on the server's side, as accept4 gives it. */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 ||
        fcntl(sv[0], F_SETFL, O_NONBLOCK) != 0 || fcntl(sv[1], F_SETFL, O_NONBLOCK) != 0)
        CR_FZ_DIE("socketpair: %s", strerror(errno));
    run->done_fd = eventfd(0, EFD_CLOEXEC);
    if (run->done_fd < 0)
        CR_FZ_DIE("eventfd: %s", strerror(errno));
    run->fd = sv[1];
    run->thread = slot;
    atomic_init(&run->state, CR_FZ_RUNNING);
    err = pthread_create(&run->tid, NULL, cr_fz_blocking_main, run);
    if (err != 0)
        CR_FZ_DIE("pthread_create: %s", strerror(err));
    *out = run;
    return sv[0];
}

/* After the client closed: the driver must return within patience. true
 * when it did; false when it was left running (a slow input). */
static bool cr_fz_finish_blocking(cr_fz_blocking_run *run, int patience_ms, bool may_be_slow)
{
    struct pollfd p = {.fd = run->done_fd, .events = POLLIN};
    long long until = cr_fz_now_ms() + patience_ms;
    int n;

    do
        n = poll(&p, 1, (int)(until - cr_fz_now_ms()));
    while (n < 0 && errno == EINTR && cr_fz_now_ms() < until);
    if (n <= 0 && !may_be_slow)
        CR_FZ_DIE("the blocking driver did not return %d ms after its client closed", patience_ms);
    if (n <= 0 && atomic_exchange(&run->state, CR_FZ_ABANDONED) == CR_FZ_RUNNING) {
        pthread_detach(run->tid);
        return false;
    }
    pthread_join(run->tid, NULL);
    close(run->done_fd);
    free(run);
    return true;
}

/* ---- one input ---- */

static void cr_fz_report(const cr_fz_client *cl, const uint8_t *data, size_t len, cr_fz_verdict v,
                         bool blocking)
{
    size_t from = v.at > 200 ? v.at - 200 : 0, to = v.at + 400 < cl->len ? v.at + 400 : cl->len;

    fprintf(stderr,
            "fuzz_connection: %s driver: %s at byte %zu of the answer (%zu bytes, %s; %zu "
            "final responses before it; client sent %zu bytes)\n--- answer around it ---\n",
            blocking ? "blocking" : "event", v.error, v.at, cl->len,
            cl->eof ? "closed" : "not closed", v.finals, len);
    fwrite(cl->answer + from, 1, to - from, stderr);
    fprintf(stderr, "\n--- client bytes ---\n");
    fwrite(data, 1, len < 2000 ? len : 2000, stderr);
    fprintf(stderr, "\n---\n(server log: %s/error.log)\n", cr_fz.dir);
    abort();
}

static bool cr_fz_hangs_reported(bool may_be_slow)
{
    return !may_be_slow && cr_fz_now_ms() >= cr_fz.settle_until;
}

static void cr_fz_stuck(bool may_be_slow, const char *what, bool blocking)
{
    if (cr_fz_hangs_reported(may_be_slow)) {
        if (atomic_load(&cr_fz.event_returned))
            CR_FZ_DIE("the event child is gone");
        CR_FZ_DIE("%s driver: the server %s for %d ms", blocking ? "blocking" : "event", what,
                  CR_FZ_PATIENCE_MS);
    }
    cr_fz.settle_until = cr_fz_now_ms() + CR_FZ_SETTLE_MS;
}

/* Runs the client over fd and checks its answer. */
static void cr_fz_converse(int fd, uint8_t mode, uint32_t seed, const uint8_t *data, size_t len,
                           bool blocking, bool slow, bool *gave_up)
{
    const cr_config *cfg = &cr_fz.gen.cfg;
    const cr_http_limits lim = {cfg->limits.header_bytes, cfg->limits.uri_bytes};
    int patience = slow ? CR_FZ_SLOW_GIVE_UP_MS : CR_FZ_PATIENCE_MS;
    cr_fz_client cl = {.fd = fd,
                       .last = cr_fz_now_ms(),
                       .drain_left_us = CR_FZ_DRAIN_BUDGET_US,
                       .pause_left_us = CR_FZ_PAUSE_BUDGET_US};
    cr_fz_requests rq;
    cr_fz_verdict v;

    cr_fz_requests_parse(&rq, data, len, &lim, cfg->limits.body_bytes);
    *gave_up = false;
    if (!cr_fz_send_all(&cl, mode, seed, data, len, patience)) {
        cr_fz_stuck(slow, "took no bytes and sent none", blocking);
        *gave_up = true;
    } else {
        if (mode & CR_FZ_HOLD)
            cr_fz_hold(&cl, &rq);
        cr_fz_shut(&cl);
        cl.last = cr_fz_now_ms();
        if (!cr_fz_read_to_eof(&cl, patience)) {
            cr_fz_stuck(slow, "neither answered nor closed", blocking);
            *gave_up = true;
        }
    }
    v = cr_fz_check_answer(cl.answer, cl.len, cl.eof && !cl.overflow, &rq);
    /* CR_FUZZ_SHOW=1: every answer on stderr, to see what a seed does. */
    if (getenv("CR_FUZZ_SHOW") != NULL)
        fprintf(stderr, "--- %s driver, %zu requests, %zu answered%s ---\n%.*s\n",
                blocking ? "blocking" : "event", rq.count, v.finals, cl.eof ? ", closed" : "",
                (int)(cl.len < 4096 ? cl.len : 4096), cl.answer ? cl.answer : "");
    if (v.error != NULL)
        cr_fz_report(&cl, data, len, v, blocking);
    cr_fz_requests_free(&rq);
    free(cl.answer);
}

static void cr_fz_run(const uint8_t *data, size_t len, uint8_t mode, uint32_t seed)
{
    cr_fz_blocking_run *run = NULL;
    bool blocking = mode & CR_FZ_BLOCKING, slow = cr_fz_may_be_slow(data, len), gave_up;
    int fd = blocking ? cr_fz_start_blocking(&run) : -1;

    /* Every blocking slot held by a slow input left running: the event
     * child takes this one. */
    if (fd < 0) {
        blocking = false;
        fd = cr_fz_connect_event();
    }
    cr_fz_converse(fd, mode, seed, data, len, blocking, slow, &gave_up);
    if (close(fd) != 0)
        CR_FZ_DIE("close: %s", strerror(errno));
    if (run != NULL &&
        !cr_fz_finish_blocking(run, gave_up ? CR_FZ_SLOW_GIVE_UP_MS : CR_FZ_PATIENCE_MS,
                               !cr_fz_hangs_reported(slow)))
        cr_fz.settle_until = cr_fz_now_ms() + CR_FZ_SETTLE_MS;
}

/* ---- process start and end ---- */

static int cr_fz_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0)
        fprintf(stderr, "fuzz_connection: cannot remove %s: %s\n", path, strerror(errno));
    return 0;
}

/* Stops the event child as an immediate stop would, then removes what
 * setup made. */
static void cr_fz_teardown(void)
{
    cr_server *srv = &cr_fz_server;
    uint64_t one = 1;
    struct timespec until;
    int err;

    if (!cr_fz.ready)
        return;
    for (int i = 0; i < cr_fz.nslots; i++)
        if (atomic_load(&cr_fz.slot_busy[i]))
            return; /* a slow input's driver still runs on what we would free */
    if (write(cr_child_stop_fd(&cr_fz.blocking, CR_WAIT_BUSY), &one, sizeof(one)) != sizeof(one))
        fprintf(stderr, "fuzz_connection: cannot stop the event child: %s\n", strerror(errno));
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += CR_FZ_PATIENCE_MS / 1000;
    err = pthread_timedjoin_np(cr_fz.event_thread, NULL, &until);
    if (err != 0) {
        fprintf(stderr, "fuzz_connection: the event child did not stop: %s\n", strerror(err));
        return;
    }
    cr_listeners_close(&srv->listeners, 1);
    if (srv->access_log >= 0)
        close(srv->access_log);
    cr_scoreboard_destroy(&srv->sb);
    cr_generation_free(&cr_fz.gen);
    nftw(cr_fz.dir, cr_fz_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static void cr_fz_make_dir(void)
{
    const char *tmp = getenv("TMPDIR");

    if (tmp == NULL || tmp[0] == '\0' || strlen(tmp) > 40)
        tmp = "/tmp";
    snprintf(cr_fz.dir, sizeof(cr_fz.dir), "%s/corral-fuzz-XXXXXX", tmp);
    if (mkdtemp(cr_fz.dir) == NULL)
        CR_FZ_DIE("mkdtemp %s: %s", cr_fz.dir, strerror(errno));
    snprintf(cr_fz.sock, sizeof(cr_fz.sock), "%s/http.sock", cr_fz.dir);
}

/* The child's stop signals are for corral's master, not for this process:
 * the fuzzer's own handlers come back once the child installed its. */
static const int cr_fz_stop_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGWINCH};

static void cr_fz_start_event_child(void)
{
    struct sigaction saved[sizeof(cr_fz_stop_signals) / sizeof(cr_fz_stop_signals[0])];
    size_t nsig = sizeof(cr_fz_stop_signals) / sizeof(cr_fz_stop_signals[0]);
    bool gave_up;
    int err, fd;

    for (size_t i = 0; i < nsig; i++)
        if (sigaction(cr_fz_stop_signals[i], NULL, &saved[i]) != 0)
            CR_FZ_DIE("sigaction: %s", strerror(errno));
    err = pthread_create(&cr_fz.event_thread, NULL, cr_fz_event_main, &cr_fz_server);
    if (err != 0)
        CR_FZ_DIE("pthread_create: %s", strerror(err));
    /* Served once the child is up: its signal handlers are in place then. */
    fd = cr_fz_connect_event();
    cr_fz_converse(fd, CR_FZ_SPLIT_WHOLE, 1, (const uint8_t *)CR_FZ_WARM_UP,
                   sizeof(CR_FZ_WARM_UP) - 1, false, false, &gave_up);
    close(fd);
    for (size_t i = 0; i < nsig; i++)
        if (sigaction(cr_fz_stop_signals[i], &saved[i], NULL) != 0)
            CR_FZ_DIE("sigaction: %s", strerror(errno));
}

/* The blocking child waits like the event child, on the process's stop
 * descriptors (made by the event child's setup). */
static void cr_fz_blocking_waiter(void)
{
    int stop_fds[CR_WAIT_KINDS];

    stop_fds[CR_WAIT_BUSY] = cr_child_stop_fd(&cr_fz.blocking, CR_WAIT_BUSY);
    stop_fds[CR_WAIT_IDLE] = cr_child_stop_fd(&cr_fz.blocking, CR_WAIT_IDLE);
    cr_wait_thread_init(&cr_fz.blocking.waiter, stop_fds, &cr_fz.blocking.wait_mask);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (cr_fz.ready)
        return 0;
    cr_fz_make_dir();
    cr_fz_write_site();
    cr_fz_load();
    cr_fz_scoreboard();
    cr_fz.blocking = (cr_child){
        .srv = &cr_fz_server, .gen = &cr_fz.gen, .slot = CR_FZ_BLOCKING_SLOT, .epfd = -1};
    if (pthread_sigmask(SIG_BLOCK, NULL, &cr_fz.blocking.wait_mask) != 0)
        CR_FZ_DIE("pthread_sigmask: %s", strerror(errno));
    cr_fz_start_event_child();
    cr_fz_blocking_waiter();
    cr_fz.ready = true;
    atexit(cr_fz_teardown);
    return 0;
}

/* CR_FUZZ_DRIVER=event or blocking: every input goes to that driver. */
static uint8_t cr_fz_driver_mode(uint8_t mode)
{
    static const char *forced;
    static bool read_env;

    if (!read_env) {
        forced = getenv("CR_FUZZ_DRIVER");
        read_env = true;
    }
    if (forced != NULL && strcmp(forced, "event") == 0)
        return mode & ~CR_FZ_BLOCKING;
    if (forced != NULL && strcmp(forced, "blocking") == 0)
        return mode | CR_FZ_BLOCKING;
    return mode;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cr_fz.ready)
        LLVMFuzzerInitialize(NULL, NULL);
    if (size < CR_FZ_HEADER_BYTES || size > CR_FZ_INPUT_MAX)
        return 0;
    /* xorshift needs a seed other than 0 */
    cr_fz_run(data + CR_FZ_HEADER_BYTES, size - CR_FZ_HEADER_BYTES, cr_fz_driver_mode(data[0]),
              (uint32_t)data[1] << 8 | 0x5a);
    return 0;
}
