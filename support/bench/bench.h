/* corral-bench: runs the same workloads under every MPM (and beside other
 * servers) and reports what each concurrency model costs. This header holds
 * what the parts share: the latency histogram, one run's result, the load
 * generator's and the process sampler's interfaces, and the report. */
#ifndef CR_BENCH_H
#define CR_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

/* ---- latency histogram (histogram.c) ----
 * Log-linear buckets: values below 2^CR_HIST_SUB_BITS microseconds are
 * exact; above, each power of two is split into 2^CR_HIST_SUB_BITS buckets,
 * so a value is kept within 1/2^CR_HIST_SUB_BITS (~1.6%) of itself. */
#define CR_HIST_SUB_BITS 6
#define CR_HIST_BUCKETS  ((64 - CR_HIST_SUB_BITS + 1) << CR_HIST_SUB_BITS)

typedef struct cr_hist {
    uint64_t count;
    uint64_t max_us;
    double sum_us;
    uint64_t buckets[CR_HIST_BUCKETS];
} cr_hist;

void cr_hist_add(cr_hist *h, uint64_t us);
void cr_hist_merge(cr_hist *into, const cr_hist *from);
/* The value at quantile q (0..1) in microseconds; 0 when empty. */
uint64_t cr_hist_quantile(const cr_hist *h, double q);

/* The server's request phases (wait, read, queue, handler, write), as
 * mod_status reports them. */
#define CR_BENCH_PHASES 5

/* ---- the load generator (loadgen.c) ---- */

/* CLOCK_MONOTONIC in microseconds. */
uint64_t cr_now_us(void);

/* Pins pid (0: the caller) to one CPU; a failure is reported, not fatal. */
void cr_pin(pid_t pid, int cpu);

struct rusage;

/* User + system seconds of a getrusage or wait4 result. */
double cr_rusage_cpu_s(const struct rusage *ru);

/* What one client connection does. */
typedef enum cr_load_kind {
    CR_LOAD_KEEPALIVE, /* requests back to back on one connection */
    CR_LOAD_CLOSE,     /* a new connection for every request */
    CR_LOAD_SLOW,      /* sends its request a byte at a time, reads its answer slowly */
} cr_load_kind;

typedef struct cr_load_spec {
    const char *host; /* "127.0.0.1" or "::1" */
    unsigned port;
    const char *path; /* with the query, e.g. "/delay?ms=10" */
    cr_load_kind kind;
    int connections;   /* concurrent clients */
    double rate;       /* open loop: requests per second over all clients; 0 = closed loop */
    double duration_s; /* measured time, after warmup_s */
    double warmup_s;
    int slow_gap_ms; /* CR_LOAD_SLOW: pause between bytes sent and between reads */
    int timeout_ms;  /* a response slower than this is an error */
    /* Called about every 500 ms with the requests so far, for progress. */
    void (*progress)(void *arg, double elapsed_s, uint64_t requests);
    void *progress_arg;
    /* Called about every 250 ms while the load runs, to sample the server. */
    void (*tick)(void *arg);
    void *tick_arg;
} cr_load_spec;

typedef struct cr_load_result {
    double seconds;          /* measured time */
    uint64_t requests;       /* complete 2xx/3xx responses in the measured time */
    uint64_t bytes;          /* response bytes (head and body) in the measured time */
    uint64_t requests_total; /* complete responses including warm-up and idle ones */
    uint64_t err_connect;    /* connect failed or refused */
    uint64_t err_read;       /* closed or reset without a (whole) response */
    uint64_t err_timeout;    /* no response within timeout_ms */
    uint64_t err_status;     /* a response that was not 2xx/3xx */
    int idle_held;           /* idle scenario: idle connections still open at the end */
    cr_hist latency;         /* of the measured requests; open loop: from when each was due */
} cr_load_result;

/* A numeric host ("127.0.0.1", "::1") and port as a socket address. 0 or -1. */
int cr_resolve_addr(const char *host, unsigned port, struct sockaddr_storage *ss, socklen_t *len);

/* Runs the load; 0, or -1 with a message on stderr when it could not start. */
int cr_load_run(const cr_load_spec *spec, cr_load_result *out);

/* Opens `count` idle keep-alive connections that each send one request for
 * path and read the answer, and keeps them open until cr_idle_close. */
typedef struct cr_idle_set cr_idle_set;
cr_idle_set *cr_idle_open(const char *host, unsigned port, const char *path, int count,
                          int timeout_ms);
int cr_idle_held(const cr_idle_set *s); /* still open and answered */
void cr_idle_close(cr_idle_set *s);

/* ---- wrk beside the built-in generator (wrk.c) ----
 * wrk (https://github.com/wg/wrk) run against the same URL, so that the
 * report can show both generators measure the same throughput. */
typedef struct cr_wrk_spec {
    const char *wrk; /* the executable, a path */
    const char *url;
    int connections;
    int threads;
    int duration_s;
    int timeout_s;      /* wrk's --timeout: a slower answer is an error */
    int cpu;            /* pin wrk to this CPU, or -1 */
    const char *output; /* wrk's own output (stdout and stderr) is kept in this file */
} cr_wrk_spec;

typedef struct cr_wrk_result {
    uint64_t requests;     /* "N requests in Xs" */
    double seconds;        /* the X of it */
    double requests_per_s; /* its Requests/sec */
    double lat_ms[4];      /* p50, p75, p90, p99 of its --latency distribution; NaN unknown */
    uint64_t err_connect, err_read, err_write, err_timeout, err_status;
    double cpu_s;  /* wrk's own user + system CPU, all its threads */
    double wall_s; /* from its start to its exit */
} cr_wrk_result;

extern const double cr_wrk_quantiles[4]; /* 0.5, 0.75, 0.9, 0.99 */

/* Runs wrk and reads its figures; 0, or -1 with a message on stderr (it
 * could not start, failed, hung past duration + 10 s and was killed, or
 * printed no Requests/sec). */
int cr_wrk_run(const cr_wrk_spec *spec, cr_wrk_result *out);

/* ---- the server's side (sampler.c) ---- */

/* Figures summed over a process and all its descendants. */
typedef struct cr_proc_sample {
    double cpu_s;  /* user + system seconds */
    double rss_kb; /* resident set */
    double pss_kb; /* proportional set: shared pages split between sharers */
    int processes;
    int threads;
    uint64_t ctx_switches; /* voluntary + involuntary, of every thread */
} cr_proc_sample;

/* 0, or -1 when pid is gone. */
int cr_proc_sample_tree(pid_t pid, cr_proc_sample *out);

/* One CPU's time from /proc/stat, in clock ticks: busy (user, nice,
 * system, irq, softirq, steal) and in all (idle and iowait too). */
typedef struct cr_core_times {
    uint64_t busy, total;
} cr_core_times;

/* 0, or -1 when /proc/stat has no such CPU. */
int cr_core_times_read(int cpu, cr_core_times *out);

/* What the client and the server used of the machine during one load
 * generator's run, in percent of one core: the CPU (user + system) of
 * their own processes and, when they are pinned, how busy their cores
 * were, which counts the loopback's softirq work and anything else that
 * ran there too. NaN: unknown. */
typedef struct cr_cpu_use {
    double client_pct, server_pct;
    double client_core_pct, server_core_pct;
    /* CPU microseconds per response, of the client and of the server: the
     * client's is what caps the rate one core of it can drive. */
    double client_us_per_req, server_us_per_req;
    double server_ctx_per_req; /* context switches of the server's threads per response */
} cr_cpu_use;

/* ---- one row of the report ---- */

/* One target under one scenario. Strings are NUL-terminated. */
typedef struct cr_bench_row {
    char target[64];   /* "prefork", "worker", "event", or a --target name */
    char scenario[64]; /* "hello", "backend-block", ... */
    char config[512];  /* how the target was set up, for the report */
    cr_load_result load;
    /* The server's figures, known when have_server: before and after are
     * taken around the whole run (warm-up included), so per-request figures
     * divide by load.requests_total; peak is the sample with the largest
     * PSS seen while loaded. cpu_ms_per_1k and idle_kb_per_conn mean
     * nothing without have_server (and the latter without idle_held). */
    bool have_server;
    cr_proc_sample before, after, peak;
    double cpu_ms_per_1k;    /* server CPU milliseconds per thousand requests */
    int idle_wanted;         /* idle scenario: idle connections asked for, else 0 */
    double idle_kb_per_conn; /* idle scenario: PSS growth per idle connection held */
    int64_t server_requests; /* the server's own count for the run (mod_status), -1 unknown */
    /* Where the time went, per request, from the server's phase counters
     * (microseconds), when known: waiting for the request, reading and
     * parsing it, queued for a handler thread, in the handler, writing. */
    bool have_phases;
    double phase_us[CR_BENCH_PHASES];
    /* The CPU the built-in generator (its thread) and the server used over
     * the run, warm-up included: which side was the bottleneck. */
    cr_cpu_use use;
    /* --wrk, hello rows: wrk against the same URL right after the built-in
     * run, and the CPU it and the server used meanwhile. */
    bool have_wrk;
    cr_wrk_result wrk;
    int wrk_threads;
    cr_cpu_use wrk_use;
} cr_bench_row;

typedef struct cr_bench_report {
    cr_bench_row *rows;
    size_t nrows;
    char machine[256]; /* CPU, cores, kernel */
    char date[64];
    char command[1024];
    int duration_s, connections, workers;
} cr_bench_report;

extern const char *const cr_bench_phase_names[CR_BENCH_PHASES];

/* report.c: markdown table on stdout; results.json, results.csv and a
 * self-contained report.html (SVG charts drawn by gnuplot) in dir. 0 or
 * -1 (message on stderr). */
void cr_report_markdown(const cr_bench_report *rep, FILE *out);
int cr_report_write_files(const cr_bench_report *rep, const char *dir);

#endif
