/* corral-bench: starts corral once per MPM from a generated config with the
 * same modules and the same concurrency budget, runs each scenario against
 * it with the built-in load generator while sampling what the server
 * costs, stops it, and reports all of it side by side (and beside other
 * servers given with --target). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define CR_BENCH_MAX_TARGETS 16
#define CR_START_TIMEOUT_MS  15000

typedef struct cr_target {
    char name[64];
    char host[64];
    unsigned port;
    pid_t pid;             /* 0: unknown */
    bool ours;             /* a corral started here */
    bool has_status;       /* /server-status?auto answers (corral started here) */
    uint64_t status_reads; /* requests of ours the server counts too */
    char config[512];
} cr_target;

typedef struct cr_options {
    char *mpms;
    char *scenarios;
    int duration;
    int warmup;
    int connections;
    int backend_connections;
    int workers;
    int idle;
    int backend_ms;
    double rate;
    const char *out;
    const char *corral;
    unsigned port;
    bool pin;
    const char *wrk; /* --wrk: as given ("wrk" without a path), then the executable found */
    cr_target ext[CR_BENCH_MAX_TARGETS];
    int next;
} cr_options;

typedef struct cr_scenario {
    const char *name; /* as given to --scenario */
    const char *row;  /* the row's name in the report */
    const char *path;
    cr_load_kind kind;
    bool needs_corral; /* uses corral's delay module */
} cr_scenario;

static const cr_scenario cr_scenarios[] = {
    {"hello", "hello", "/hello", CR_LOAD_KEEPALIVE, false},
    {"close", "close", "/hello", CR_LOAD_CLOSE, false},
    {"idle", "idle", "/hello", CR_LOAD_KEEPALIVE, false},
    {"backend", "backend-block", "/delay?ms=%d", CR_LOAD_KEEPALIVE, true},
    {"backend", "backend-suspend", "/wait?ms=%d", CR_LOAD_KEEPALIVE, true},
    {"slow", "slow", "/hello", CR_LOAD_KEEPALIVE, false},
    {"static", "static-1k", "/static/1k.bin", CR_LOAD_KEEPALIVE, false},
    {"static", "static-100k", "/static/100k.bin", CR_LOAD_KEEPALIVE, false},
};

static void cr_usage(FILE *f)
{
    fprintf(
        f,
        "usage: corral-bench [--mpm prefork,worker,event] [--scenario LIST] [--duration S]\n"
        "                    [--connections N] [--workers N] [--out DIR] [options]\n"
        "scenarios: hello, close, idle, backend, slow, static (default hello,idle,backend)\n"
        "  --duration S              measured seconds per run (default 5; warm-up 1 s)\n"
        "  --warmup S                seconds before measuring (default 1)\n"
        "  --connections N           active clients (default 50)\n"
        "  --workers N               requests that may be in a handler at once, the same\n"
        "                            budget for every MPM (default 64)\n"
        "  --backend-connections N   clients of the backend scenario (default 10 x workers)\n"
        "  --backend-ms MS           the simulated backend's wait (default 10)\n"
        "  --idle N                  idle keep-alive connections of the idle scenario (5000)\n"
        "  --rate R                  open loop: R requests per second, latency from when\n"
        "                            each was due; default closed loop\n"
        "  --target NAME=URL[,pid=PID]  also measure a running server (loopback only)\n"
        "  --out DIR                 results.json, results.csv, report.html (default\n"
        "                            bench-results)\n"
        "  --corral PATH             the corral binary (default: beside corral-bench)\n"
        "  --port P                  first port for the servers started here (18400)\n"
        "  --no-pin                  do not pin the server to CPU 0 and the clients to the last\n"
        "  --wrk[=PATH]              after each target's hello run, run wrk (PATH, default wrk\n"
        "                            from PATH) on the same URL with the same connections,\n"
        "                            duration, one thread and CPU, and report both side by side\n");
}

/* ---- options ---- */

static int cr_parse_target(cr_options *o, const char *arg)
{
    cr_target *t;
    const char *eq = strchr(arg, '='), *url, *pid;
    char host[64];
    unsigned port;

    if (o->next == CR_BENCH_MAX_TARGETS || eq == NULL || eq == arg)
        return -1;
    t = &o->ext[o->next];
    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%.*s", (int)(eq - arg), arg);
    url = eq + 1;
    if (sscanf(url, "http://%63[^:/]:%u", host, &port) != 2 &&
        sscanf(url, "http://[%63[^]]]:%u", host, &port) != 2)
        return -1;
    if (strcmp(host, "127.0.0.1") != 0 && strcmp(host, "::1") != 0 &&
        strcmp(host, "localhost") != 0) {
        fprintf(stderr, "corral-bench: %s: only loopback targets\n", url);
        return -1;
    }
    snprintf(t->host, sizeof(t->host), "%s", strcmp(host, "localhost") ? host : "127.0.0.1");
    t->port = port;
    pid = strstr(url, ",pid=");
    t->pid = pid != NULL ? (pid_t)atoi(pid + 5) : 0;
    snprintf(t->config, sizeof(t->config), "external server at %s", url);
    o->next++;
    return 0;
}

static bool cr_list_has(const char *list, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = list; p != NULL && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return true;
    return false;
}

/* --wrk compares closed-loop throughput of the hello scenario: wrk has
 * no open loop to set against --rate. */
static int cr_check_wrk(const cr_options *o)
{
    if (o->wrk == NULL)
        return 0;
    if (!cr_list_has(o->scenarios, "hello")) {
        fprintf(stderr, "corral-bench: --wrk runs beside the hello scenario: add hello to "
                        "--scenario\n");
        return -1;
    }
    if (o->rate > 0) {
        fprintf(stderr, "corral-bench: --wrk compares closed loops: not with --rate\n");
        return -1;
    }
    return 0;
}

static int cr_parse_args(int argc, char **argv, cr_options *o)
{
    static const struct option longs[] = {{"mpm", 1, 0, 'm'},
                                          {"scenario", 1, 0, 's'},
                                          {"duration", 1, 0, 'd'},
                                          {"warmup", 1, 0, 'W'},
                                          {"connections", 1, 0, 'c'},
                                          {"workers", 1, 0, 'w'},
                                          {"backend-connections", 1, 0, 'B'},
                                          {"backend-ms", 1, 0, 'M'},
                                          {"idle", 1, 0, 'i'},
                                          {"rate", 1, 0, 'r'},
                                          {"target", 1, 0, 't'},
                                          {"out", 1, 0, 'o'},
                                          {"corral", 1, 0, 'C'},
                                          {"port", 1, 0, 'p'},
                                          {"no-pin", 0, 0, 'n'},
                                          {"wrk", 2, 0, 'K'},
                                          {"help", 0, 0, 'h'},
                                          {0, 0, 0, 0}};
    int ch;

    while ((ch = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        switch (ch) {
        case 'm':
            o->mpms = optarg;
            break;
        case 's':
            o->scenarios = optarg;
            break;
        case 'd':
            o->duration = atoi(optarg);
            break;
        case 'W':
            o->warmup = atoi(optarg);
            break;
        case 'c':
            o->connections = atoi(optarg);
            break;
        case 'w':
            o->workers = atoi(optarg);
            break;
        case 'B':
            o->backend_connections = atoi(optarg);
            break;
        case 'M':
            o->backend_ms = atoi(optarg);
            break;
        case 'i':
            o->idle = atoi(optarg);
            break;
        case 'r':
            o->rate = atof(optarg);
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'C':
            o->corral = optarg;
            break;
        case 'p':
            o->port = (unsigned)atoi(optarg);
            break;
        case 'n':
            o->pin = false;
            break;
        case 'K':
            o->wrk = optarg != NULL ? optarg : "wrk";
            break;
        case 't':
            if (cr_parse_target(o, optarg) != 0) {
                fprintf(stderr,
                        "corral-bench: bad --target %s (NAME=http://127.0.0.1:PORT[,pid=PID])\n",
                        optarg);
                return -1;
            }
            break;
        case 'h':
            cr_usage(stdout);
            exit(0);
        default:
            cr_usage(stderr);
            return -1;
        }
    }
    if (optind < argc || o->duration < 1 || o->duration > 3600 || o->warmup < 0 ||
        o->connections < 1 || o->connections > 50000 || o->workers < 1 || o->workers > 1024 ||
        o->idle < 0 || o->idle > 200000 || o->backend_ms < 0 || o->backend_ms > 10000) {
        fprintf(stderr, "corral-bench: bad arguments (see --help)\n");
        return -1;
    }
    if (o->backend_connections <= 0)
        o->backend_connections = o->workers * 10;
    return cr_check_wrk(o);
}

/* ---- starting corral ---- */

static int cr_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "w");

    if (f == NULL || fwrite(data, 1, len, f) != len) {
        fprintf(stderr, "corral-bench: %s: %s\n", path, strerror(errno));
        if (f != NULL)
            fclose(f);
        return -1;
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* The files the static scenario serves, in a folder of the output. */
static int cr_make_docroot(const char *dir)
{
    char path[8192], *buf = malloc(102400);
    int rc = -1;

    if (buf == NULL)
        return -1;
    for (size_t i = 0; i < 102400; i++)
        buf[i] = (char)('a' + i % 26);
    snprintf(path, sizeof(path), "%s/static", dir);
    if ((mkdir(dir, 0755) != 0 && errno != EEXIST) || (mkdir(path, 0755) != 0 && errno != EEXIST))
        goto done;
    snprintf(path, sizeof(path), "%s/static/1k.bin", dir);
    if (cr_write_file(path, buf, 1024) != 0)
        goto done;
    snprintf(path, sizeof(path), "%s/static/100k.bin", dir);
    if (cr_write_file(path, buf, 102400) != 0)
        goto done;
    snprintf(path, sizeof(path), "%s/mime.types", dir);
    rc = cr_write_file(path, "application/octet-stream bin\ntext/plain txt\n", 41);
done:
    free(buf);
    return rc;
}

/* The same modules and routes for every MPM; the budget of `workers`
 * requests in handlers at once spelled in each MPM's own terms. */
static int cr_write_config(const cr_options *o, const char *mpm, const char *dir, unsigned port,
                           cr_target *t)
{
    char path[8192], text[8192];
    int w = o->workers, n;
    const char *budget;
    char mpm_conf[512];

    if (strcmp(mpm, "prefork") == 0)
        snprintf(mpm_conf, sizeof(mpm_conf),
                 "mpm_prefork = { start = %d; min_spare = 0; max_spare = %d; max_workers = %d; };",
                 w, w, w);
    else if (strcmp(mpm, "worker") == 0)
        snprintf(mpm_conf, sizeof(mpm_conf),
                 "mpm_worker = { processes = 1; threads = %d; min_spare_threads = 0; "
                 "max_spare_threads = %d; max_workers = %d; };",
                 w, w, w);
    else if (strcmp(mpm, "event") == 0)
        snprintf(mpm_conf, sizeof(mpm_conf),
                 "mpm_event = { processes = 1; threads = %d; max_connections = 200000; };", w);
    else
        mpm_conf[0] = '\0';
    budget = mpm_conf[0] ? mpm_conf : "(the MPM's defaults)";
    n = snprintf(text, sizeof(text),
                 "// written by corral-bench\n"
                 "listen = [ \"127.0.0.1:%u\" ];\nmpm = \"%s\";\n%s\n"
                 "pidfile = \"%s/corral.pid\";\n"
                 "timeouts = { header = 30; keepalive = 120; write = 60; };\n"
                 "limits = { keepalive_requests = 0; };\n"
                 "log = { error = \"%s/error.log\"; level = \"notice\"; access = \"\"; };\n"
                 "modules = [ \"hello\", \"delay\", \"static\", \"status\" ];\n"
                 "mod_static = { mime_types = \"%s/www/mime.types\"; };\n"
                 "routes = (\n"
                 "  { path = \"/hello\"; module = \"hello\"; },\n"
                 "  { path = \"/delay\"; module = \"delay\"; mode = \"block\"; },\n"
                 "  { path = \"/wait\"; module = \"delay\"; mode = \"suspend\"; },\n"
                 "  { path = \"/server-status\"; module = \"status\"; },\n"
                 "  { path = \"/static\"; module = \"static\"; root = \"%s/www/static\"; }\n"
                 ");\n",
                 port, mpm, mpm_conf, dir, dir, o->out, o->out);
    if (n < 0 || (size_t)n >= sizeof(text))
        return -1;
    snprintf(t->config, sizeof(t->config), "mpm = \"%s\"; %s access log off", mpm, budget);
    snprintf(path, sizeof(path), "%s/corral.conf", dir);
    return cr_write_file(path, text, (size_t)n);
}

/* The CPU of the clients (the built-in generator and wrk alike) when
 * pinning, else -1: the last one, the server having CPU 0. */
static int cr_client_cpu(const cr_options *o)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return o->pin && n >= 2 ? (int)n - 1 : -1;
}

/* One GET; the status code, or -1. */
static int cr_http_get(const char *host, unsigned port, const char *path, char *body, size_t cap)
{
    char req[512];
    struct timeval tv = {2, 0};
    size_t len = 0;
    ssize_t n;
    int fd = -1, status = -1;
    struct sockaddr_storage ss;
    socklen_t sl;
    char *end;

    if (cr_resolve_addr(host, port, &ss, &sl) != 0)
        return -1;
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path,
             host);
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0 ||
        send(fd, req, strlen(req), MSG_NOSIGNAL) < 0)
        goto done;
    while (len < cap - 1 && (n = recv(fd, body + len, cap - 1 - len, 0)) > 0)
        len += (size_t)n;
    body[len] = '\0';
    if (len > 12 && strncmp(body, "HTTP/1.", 7) == 0)
        status = atoi(body + 9);
    end = strstr(body, "\r\n\r\n");
    if (end != NULL)
        memmove(body, end + 4, strlen(end + 4) + 1);
done:
    close(fd);
    return status;
}

static int cr_wait_answers(const cr_target *t, pid_t child)
{
    char body[4096];

    for (int waited = 0; waited < CR_START_TIMEOUT_MS; waited += 50) {
        if (child > 0 && waitpid(child, NULL, WNOHANG) == child)
            return -1;
        if (cr_http_get(t->host, t->port, "/hello", body, sizeof(body)) == 200)
            return 0;
        usleep(50 * 1000);
    }
    return -1;
}

static int cr_start_corral(const cr_options *o, const char *mpm, int index, cr_target *t)
{
    char dir[4096], conf[4200];
    pid_t pid;

    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", mpm);
    snprintf(t->host, sizeof(t->host), "127.0.0.1");
    t->port = o->port + (unsigned)index;
    t->ours = t->has_status = true;
    snprintf(dir, sizeof(dir), "%s/%s", o->out, mpm);
    if ((mkdir(dir, 0755) != 0 && errno != EEXIST) || cr_write_config(o, mpm, dir, t->port, t) != 0)
        return -1;
    snprintf(conf, sizeof(conf), "%s/corral.conf", dir);
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);

        /* Before the exec, so that every process and thread of the server
         * inherits it. */
        if (o->pin && sysconf(_SC_NPROCESSORS_ONLN) >= 2)
            cr_pin(0, 0);
        if (null >= 0) {
            dup2(null, STDIN_FILENO);
            dup2(null, STDOUT_FILENO);
        }
        execl(o->corral, o->corral, "-f", conf, "-D", "FOREGROUND", (char *)NULL);
        fprintf(stderr, "corral-bench: cannot run %s: %s\n", o->corral, strerror(errno));
        _exit(127);
    }
    t->pid = pid;
    if (cr_wait_answers(t, pid) != 0) {
        fprintf(stderr, "corral-bench: corral (mpm %s) did not answer; see %s/error.log\n", mpm,
                dir);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return 0;
}

static void cr_stop_corral(cr_target *t)
{
    int status;

    if (!t->ours || t->pid <= 0)
        return;
    if (kill(t->pid, SIGTERM) != 0)
        fprintf(stderr, "corral-bench: kill %d: %s\n", (int)t->pid, strerror(errno));
    if (waitpid(t->pid, &status, 0) < 0)
        fprintf(stderr, "corral-bench: waitpid %d: %s\n", (int)t->pid, strerror(errno));
    t->pid = 0;
}

/* ---- one run ---- */

typedef struct cr_run {
    const cr_options *o;
    cr_target *t;
    cr_bench_row *row;
    double total_s;
} cr_run;

static void cr_run_progress(void *arg, double elapsed, uint64_t requests)
{
    cr_run *r = arg;

    fprintf(stderr, "\r[%s] %-16s %5.1f / %.0f s  %10llu requests ", r->t->name, r->row->scenario,
            elapsed, r->total_s, (unsigned long long)requests);
    fflush(stderr);
}

static void cr_run_tick(void *arg)
{
    cr_run *r = arg;
    cr_proc_sample s;

    if (r->t->pid <= 0 || cr_proc_sample_tree(r->t->pid, &s) != 0)
        return;
    if (s.pss_kb > r->row->peak.pss_kb)
        r->row->peak = s;
}

/* One read of mod_status's ?auto: the server's own request count and,
 * when it reports them, the microseconds its counted requests spent in
 * each phase, totalled since it started. */
typedef struct cr_status_read {
    int64_t count; /* Total Accesses; -1 unknown */
    bool have_phases;
    double phase_us[CR_BENCH_PHASES];
} cr_status_read;

/* The ?auto keys of the phases, in the order of cr_bench_phase_names. */
static const char *const cr_phase_keys[CR_BENCH_PHASES] = {
    "PhaseWaitUs", "PhaseReadUs", "PhaseQueueUs", "PhaseHandlerUs", "PhaseWriteUs"};

/* The number N of a line `key: N` of a ?auto body. */
static bool cr_auto_field(const char *body, const char *key, unsigned long long *v)
{
    size_t n = strlen(key);

    for (const char *p = body; p != NULL; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        char *end;

        if (strncmp(p, key, n) != 0 || p[n] != ':')
            continue;
        errno = 0;
        *v = strtoull(p + n + 1, &end, 10);
        return end != p + n + 1 && errno == 0;
    }
    return false;
}

/* Reads the status once (one request gives the count and the phases
 * together, so the two always describe the same requests); the count, or
 * -1. A server that does not report the phases leaves have_phases false. */
static int64_t cr_server_read(cr_target *t, cr_status_read *s)
{
    char body[65536];
    unsigned long long v;

    memset(s, 0, sizeof(*s));
    s->count = -1;
    if (!t->has_status)
        return -1;
    t->status_reads++;
    if (cr_http_get(t->host, t->port, "/server-status?auto", body, sizeof(body)) != 200 ||
        !cr_auto_field(body, "Total Accesses", &v))
        return -1;
    s->count = (int64_t)v;
    s->have_phases = true;
    for (int i = 0; i < CR_BENCH_PHASES; i++) {
        s->have_phases &= cr_auto_field(body, cr_phase_keys[i], &v);
        s->phase_us[i] = (double)v;
    }
    return s->count;
}

/* The server's status once its count stopped moving (but for our own
 * status requests): requests of an earlier run still trickling in (a
 * client that gave up leaves its request behind) must not land in this
 * one's count. */
static int64_t cr_server_read_settled(cr_target *t, cr_status_read *s)
{
    int64_t last = cr_server_read(t, s);

    for (int i = 0; last >= 0 && i < 30; i++) {
        int64_t now;

        usleep(100 * 1000);
        now = cr_server_read(t, s);
        if (now < 0 || now == last + 1)
            return now;
        last = now;
    }
    return last;
}

/* Slow clients in a thread of their own beside the measured load. */
typedef struct cr_slow_load {
    cr_load_spec spec;
    cr_load_result result;
    pthread_t thread;
} cr_slow_load;

static void *cr_slow_main(void *arg)
{
    cr_slow_load *s = arg;

    cr_load_run(&s->spec, &s->result);
    return NULL;
}

/* The mean microseconds per request in each phase between two reads of
 * the status. The totals cover exactly the requests Total Accesses
 * counts (a request is counted, and its times added, once it is
 * answered), so the mean divides by the count's own delta: the requests
 * of the run plus our status reads in between (a few, against hundreds
 * or more), but not the read that returned `after` (answered, not yet
 * counted, when it printed the figures). The same holds in the idle and
 * slow scenarios, where requests of ours may still be counted later and
 * server_requests is left unknown: the means are exact for the requests
 * that were counted. */
static void cr_run_phases(cr_bench_row *row, const cr_status_read *before,
                          const cr_status_read *after)
{
    int64_t n = after->count - before->count;
    double mean[CR_BENCH_PHASES];

    if (!before->have_phases || !after->have_phases || before->count < 0 || n <= 0)
        return;
    for (int i = 0; i < CR_BENCH_PHASES; i++) {
        double d = after->phase_us[i] - before->phase_us[i];

        /* Totals that went back: the server restarted in between. */
        if (d < 0)
            return;
        mean[i] = d / (double)n;
    }
    memcpy(row->phase_us, mean, sizeof(mean));
    row->have_phases = true;
}

/* The server's count and phases after the run, against those before. */
static void cr_run_server_status(cr_target *t, const cr_scenario *sc, cr_bench_row *row,
                                 const cr_status_read *before, uint64_t reads0)
{
    cr_status_read after;

    row->server_requests = -1;
    if (before->count < 0 || cr_server_read_settled(t, &after) < 0)
        return;
    cr_run_phases(row, before, &after);
    /* Idle and slow clients may leave requests the server counts later. */
    if (strcmp(sc->row, "idle") == 0 || strcmp(sc->row, "slow") == 0)
        return;
    /* Less our status requests the server counted in between: each is
     * counted once answered, so the last one is not in after.count. */
    row->server_requests = after.count - before->count - (int64_t)(t->status_reads - reads0);
}

static double cr_thread_cpu_s(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_THREAD, &ru) != 0) {
        fprintf(stderr, "corral-bench: getrusage: %s\n", strerror(errno));
        return NAN;
    }
    return cr_rusage_cpu_s(&ru);
}

/* What the client and the server use of the machine over a run. */
typedef struct cr_meter {
    double wall0, thread_cpu0;
    bool have_server;
    cr_proc_sample server0;
    int cores[2]; /* the client's and the server's CPU when pinned, else -1 */
    bool have_cores;
    cr_core_times core0[2];
} cr_meter;

static void cr_meter_start(cr_meter *m, const cr_options *o, const cr_target *t)
{
    m->cores[0] = cr_client_cpu(o);
    m->cores[1] = m->cores[0] >= 0 && t->ours ? 0 : -1;
    m->have_cores = m->cores[0] >= 0 && cr_core_times_read(m->cores[0], &m->core0[0]) == 0 &&
                    (m->cores[1] < 0 || cr_core_times_read(m->cores[1], &m->core0[1]) == 0);
    m->have_server = t->pid > 0 && cr_proc_sample_tree(t->pid, &m->server0) == 0;
    m->thread_cpu0 = cr_thread_cpu_s();
    m->wall0 = (double)cr_now_us() / 1e6;
}

static double cr_meter_core_pct(const cr_meter *m, int i)
{
    cr_core_times now;

    if (!m->have_cores || m->cores[i] < 0 || cr_core_times_read(m->cores[i], &now) != 0 ||
        now.total <= m->core0[i].total)
        return NAN;
    return 100.0 * (double)(now.busy - m->core0[i].busy) / (double)(now.total - m->core0[i].total);
}

/* The figures since cr_meter_start, for `requests` responses. The
 * client is wrk when given, else this thread: the built-in generator
 * (with the sampling of the server it does every 250 ms). */
static void cr_meter_stop(const cr_meter *m, const cr_target *t, const cr_wrk_result *wrk,
                          uint64_t requests, cr_cpu_use *use)
{
    double wall = (double)cr_now_us() / 1e6 - m->wall0, n = requests > 0 ? (double)requests : NAN;
    double client_s = wrk != NULL ? wrk->cpu_s : cr_thread_cpu_s() - m->thread_cpu0;
    double server_s = NAN, server_ctx = NAN;
    cr_proc_sample now;

    if (m->have_server && cr_proc_sample_tree(t->pid, &now) == 0) {
        server_s = now.cpu_s - m->server0.cpu_s;
        server_ctx = (double)now.ctx_switches - (double)m->server0.ctx_switches;
    }
    use->client_pct = 100.0 * client_s / wall;
    use->server_pct = 100.0 * server_s / wall;
    use->client_core_pct = cr_meter_core_pct(m, 0);
    use->server_core_pct = cr_meter_core_pct(m, 1);
    use->client_us_per_req = client_s * 1e6 / n;
    use->server_us_per_req = server_s * 1e6 / n;
    use->server_ctx_per_req = server_ctx / n;
}

static void cr_run_figures(cr_bench_row *row, int idle_held)
{
    /* Every response of the sampled interval, warm-up included. */
    uint64_t n = row->load.requests_total;

    if (row->have_server && n > 0)
        row->cpu_ms_per_1k = (row->after.cpu_s - row->before.cpu_s) * 1e6 / (double)n;
    if (row->have_server && idle_held > 0)
        row->idle_kb_per_conn = (row->peak.pss_kb - row->before.pss_kb) / idle_held;
}

static int cr_run_one(const cr_options *o, cr_target *t, const cr_scenario *sc, cr_bench_row *row)
{
    char path[256];
    cr_run run = {o, t, row, (double)(o->warmup + o->duration)};
    cr_load_spec spec = {.host = t->host,
                         .port = t->port,
                         .path = path,
                         .kind = sc->kind,
                         .connections = o->connections,
                         .rate = o->rate,
                         .duration_s = o->duration,
                         .warmup_s = o->warmup,
                         .slow_gap_ms = 10,
                         .timeout_ms = 5000,
                         .progress = cr_run_progress,
                         .progress_arg = &run,
                         .tick = cr_run_tick,
                         .tick_arg = &run};
    cr_idle_set *idle = NULL;
    cr_slow_load slow;
    cr_status_read st0;
    cr_meter meter;
    uint64_t reads0;
    int rc;

    memset(row, 0, sizeof(*row));
    snprintf(row->target, sizeof(row->target), "%s", t->name);
    snprintf(row->scenario, sizeof(row->scenario), "%s", sc->row);
    snprintf(row->config, sizeof(row->config), "%s", t->config);
    snprintf(path, sizeof(path), sc->path, o->backend_ms);
    if (strncmp(sc->row, "backend", 7) == 0)
        spec.connections = o->backend_connections;
    cr_server_read_settled(t, &st0);
    reads0 = t->status_reads;
    row->have_server = t->pid > 0 && cr_proc_sample_tree(t->pid, &row->before) == 0;
    row->peak = row->before;
    if (strcmp(sc->row, "idle") == 0) {
        fprintf(stderr, "[%s] idle: opening %d idle keep-alive connections\n", t->name, o->idle);
        row->idle_wanted = o->idle;
        idle = cr_idle_open(t->host, t->port, "/hello", o->idle, 3000);
        cr_run_tick(&run);
    }
    if (strcmp(sc->row, "slow") == 0) {
        slow.spec = spec;
        slow.spec.kind = CR_LOAD_SLOW;
        slow.spec.progress = NULL;
        slow.spec.tick = NULL;
        slow.spec.timeout_ms = 60000;
        if (pthread_create(&slow.thread, NULL, cr_slow_main, &slow) != 0)
            return -1;
    }
    cr_meter_start(&meter, o, t);
    rc = cr_load_run(&spec, &row->load);
    cr_meter_stop(&meter, t, NULL, row->load.requests_total, &row->use);
    if (strcmp(sc->row, "slow") == 0)
        pthread_join(slow.thread, NULL);
    fprintf(stderr, "\n");
    if (idle != NULL) {
        row->load.idle_held = cr_idle_held(idle);
        cr_idle_close(idle);
    }
    if (row->have_server)
        row->have_server = cr_proc_sample_tree(t->pid, &row->after) == 0;
    cr_run_figures(row, row->load.idle_held);
    cr_run_server_status(t, sc, row, &st0, reads0);
    return rc;
}

/* ---- wrk beside the built-in generator ---- */

/* The executable a --wrk names: a path as it is, a bare name searched in
 * $PATH; NULL (and a message) when there is none. */
static char *cr_find_program(const char *name)
{
    const char *path = getenv("PATH");
    struct stat st;
    char *file;

    if (strchr(name, '/') != NULL) {
        if (stat(name, &st) == 0 && S_ISREG(st.st_mode) && access(name, X_OK) == 0)
            return strdup(name);
        fprintf(stderr, "corral-bench: --wrk=%s: not an executable file\n", name);
        return NULL;
    }
    for (const char *p = path ? path : "/usr/bin:/bin"; p != NULL;
         p = strchr(p, ':') ? strchr(p, ':') + 1 : NULL) {
        int len = (int)strcspn(p, ":");

        /* An empty entry is the current folder. */
        if (asprintf(&file, "%.*s/%s", len ? len : 1, len ? p : ".", name) < 0)
            return NULL;
        if (stat(file, &st) == 0 && S_ISREG(st.st_mode) && access(file, X_OK) == 0)
            return file;
        free(file);
    }
    fprintf(stderr,
            "corral-bench: --wrk: %s is not installed (apt-get install wrk) or not in "
            "PATH; give its path with --wrk=PATH\n",
            name);
    return NULL;
}

/* Where wrk's own output is kept: OUT/wrk-TARGET.txt, the target's name
 * reduced to characters safe in a file name. */
static void cr_wrk_output(const cr_options *o, const cr_target *t, char *path, size_t cap)
{
    char name[sizeof(t->name)];
    size_t i;

    for (i = 0; t->name[i] && i < sizeof(name) - 1; i++)
        name[i] = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_",
                         t->name[i]) != NULL
                      ? t->name[i]
                      : '_';
    name[i] = '\0';
    snprintf(path, cap, "%s/wrk-%s.txt", o->out, name);
}

/* --wrk: wrk against the URL of the hello run just done, with the budget
 * of the built-in generator: the same connections, the same duration,
 * and the same client CPU, one thread (the built-in generator is one
 * libevent thread) pinned where it is pinned. The server is warm from
 * the run just before, so wrk's -d is all measured time. */
static int cr_run_wrk(const cr_options *o, cr_target *t, cr_bench_row *row)
{
    char url[160], output[4096];
    bool v6 = strchr(t->host, ':') != NULL;
    cr_wrk_spec spec = {.wrk = o->wrk,
                        .url = url,
                        .connections = o->connections,
                        .threads = 1,
                        .duration_s = o->duration,
                        .timeout_s = 5,
                        .cpu = cr_client_cpu(o),
                        .output = output};
    cr_meter meter;

    snprintf(url, sizeof(url), "http://%s%s%s:%u/hello", v6 ? "[" : "", t->host, v6 ? "]" : "",
             t->port);
    cr_wrk_output(o, t, output, sizeof(output));
    fprintf(stderr, "[%s] hello (wrk)  %d s, %d connections, %d thread: %s\n", t->name,
            spec.duration_s, spec.connections, spec.threads, output);
    cr_meter_start(&meter, o, t);
    if (cr_wrk_run(&spec, &row->wrk) != 0)
        return -1;
    cr_meter_stop(&meter, t, &row->wrk, row->wrk.requests, &row->wrk_use);
    row->have_wrk = true;
    row->wrk_threads = spec.threads;
    return 0;
}

/* ---- all of it ---- */

static void cr_fill_machine(cr_bench_report *rep, int argc, char **argv)
{
    struct utsname u;
    time_t now = time(NULL);
    char model[128] = "?", line[256];
    FILE *f = fopen("/proc/cpuinfo", "r");
    size_t at = 0;

    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "model name", 10) == 0 && strchr(line, ':')) {
            snprintf(model, sizeof(model), "%s", strchr(line, ':') + 2);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    if (f != NULL)
        fclose(f);
    uname(&u);
    snprintf(rep->machine, sizeof(rep->machine), "%s, %ld CPUs, %s %s", model,
             sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release);
    strftime(rep->date, sizeof(rep->date), "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
    for (int i = 0; i < argc && at < sizeof(rep->command) - 1; i++)
        at += (size_t)snprintf(rep->command + at, sizeof(rep->command) - at, "%s%s", i ? " " : "",
                               argv[i]);
}

static void cr_raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            fprintf(stderr, "corral-bench: cannot raise the descriptor limit: %s\n",
                    strerror(errno));
    }
}

static int cr_bench_target(const cr_options *o, cr_target *t, cr_bench_report *rep)
{
    const char *list = o->scenarios;

    for (size_t i = 0; i < sizeof(cr_scenarios) / sizeof(cr_scenarios[0]); i++) {
        const cr_scenario *sc = &cr_scenarios[i];

        if (!cr_list_has(list, sc->name))
            continue;
        if (sc->needs_corral && !t->ours) {
            fprintf(stderr, "[%s] %s: skipped (needs corral's delay module)\n", t->name, sc->row);
            continue;
        }
        if (cr_run_one(o, t, sc, &rep->rows[rep->nrows]) != 0)
            return -1;
        rep->nrows++;
        if (o->wrk != NULL && strcmp(sc->row, "hello") == 0 &&
            cr_run_wrk(o, t, &rep->rows[rep->nrows - 1]) != 0)
            return -1;
    }
    return 0;
}

static char *cr_default_corral(const char *argv0)
{
    char self[4096], *slash, *path;
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

    if (n <= 0)
        return strdup("corral");
    self[n] = '\0';
    slash = strrchr(self, '/');
    *slash = '\0';
    /* Built in support/ of the build tree, or installed beside sbin. */
    if (asprintf(&path, "%s/../corral", self) > 0 && access(path, X_OK) == 0)
        return path;
    free(path);
    if (asprintf(&path, "%s/../sbin/corral", self) > 0 && access(path, X_OK) == 0)
        return path;
    free(path);
    (void)argv0;
    return strdup("corral");
}

int main(int argc, char **argv)
{
    cr_options o = {.mpms = "prefork,worker,event",
                    .scenarios = "hello,idle,backend",
                    .duration = 5,
                    .warmup = 1,
                    .connections = 50,
                    .workers = 64,
                    .idle = 5000,
                    .backend_ms = 10,
                    .out = "bench-results",
                    .port = 18400,
                    .pin = true};
    cr_bench_report rep = {0};
    char *corral = NULL, *out_abs = NULL, *wrk = NULL;
    size_t max_rows;
    int status = 1, index = 0;

    if (cr_parse_args(argc, argv, &o) != 0)
        return 2;
    if (o.wrk != NULL && (o.wrk = wrk = cr_find_program(o.wrk)) == NULL)
        return 2;
    corral = o.corral ? strdup(o.corral) : cr_default_corral(argv[0]);
    o.corral = corral;
    cr_raise_fd_limit();
    signal(SIGPIPE, SIG_IGN);
    if (mkdir(o.out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "corral-bench: %s: %s\n", o.out, strerror(errno));
        goto done;
    }
    /* The generated configs name their files absolutely: relative paths
     * in a config are taken from its own folder. */
    out_abs = realpath(o.out, NULL);
    if (out_abs == NULL) {
        fprintf(stderr, "corral-bench: %s: %s\n", o.out, strerror(errno));
        goto done;
    }
    if (strlen(out_abs) > 3000) {
        fprintf(stderr, "corral-bench: %s: path too long\n", out_abs);
        goto done;
    }
    o.out = out_abs;
    {
        char www[4096];

        snprintf(www, sizeof(www), "%s/www", o.out);
        if (cr_make_docroot(www) != 0)
            goto done;
    }
    max_rows =
        (size_t)(CR_BENCH_MAX_TARGETS + 8) * (sizeof(cr_scenarios) / sizeof(cr_scenarios[0]));
    rep.rows = calloc(max_rows, sizeof(*rep.rows));
    if (rep.rows == NULL)
        goto done;
    cr_fill_machine(&rep, argc, argv);
    rep.duration_s = o.duration;
    rep.connections = o.connections;
    rep.workers = o.workers;
    if (cr_client_cpu(&o) >= 0)
        cr_pin(0, cr_client_cpu(&o));
    for (const char *p = o.mpms; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        char mpm[32];
        cr_target t;

        snprintf(mpm, sizeof(mpm), "%.*s", (int)strcspn(p, ","), p);
        fprintf(stderr, "[%s] starting corral (%s)\n", mpm, o.corral);
        if (cr_start_corral(&o, mpm, index++, &t) != 0)
            goto report;
        if (cr_bench_target(&o, &t, &rep) != 0) {
            cr_stop_corral(&t);
            goto report;
        }
        cr_stop_corral(&t);
    }
    for (int i = 0; i < o.next; i++)
        if (cr_bench_target(&o, &o.ext[i], &rep) != 0)
            goto report;
    status = 0;
report:
    if (rep.nrows > 0) {
        cr_report_markdown(&rep, stdout);
        if (cr_report_write_files(&rep, o.out) != 0)
            status = 1;
    }
done:
    free(rep.rows);
    free(corral);
    free(out_abs);
    free(wrk);
    return status;
}
