/* wrk run beside the built-in generator: the same URL, connections,
 * duration and client CPU, its output kept and parsed, so that a report
 * shows both generators' throughput for the same server in the same run. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
const double cr_wrk_quantiles[4] = {0.5, 0.75, 0.9, 0.99};

/* A time as wrk prints it ("302.00us", "1.38ms", "5.00s", "1.00m"), in
 * milliseconds; NaN when it is none. */
static double cr_wrk_ms(const char *s)
{
    char *end;
    double v = strtod(s, &end);

    if (end == s)
        return NAN;
    if (strncmp(end, "us", 2) == 0)
        return v / 1000.0;
    if (strncmp(end, "ms", 2) == 0)
        return v;
    if (*end == 's')
        return v * 1000.0;
    if (*end == 'm')
        return v * 60000.0;
    if (*end == 'h')
        return v * 3600000.0;
    return NAN;
}

/* A line of the --latency distribution: "     99%    3.08ms". */
static void cr_wrk_parse_quantile(const char *p, cr_wrk_result *out)
{
    double pct;
    int used = 0;

    /* "1 threads and 50 connections" converts the 1 too: only a %n
     * reached after the '%' makes it a quantile line. */
    if (sscanf(p, "%lf%% %n", &pct, &used) != 1 || used == 0)
        return;
    for (int k = 0; k < 4; k++)
        if (fabs(pct - 100.0 * cr_wrk_quantiles[k]) < 1e-6)
            out->lat_ms[k] = cr_wrk_ms(p + used);
}

/* One line of wrk's output; true for the Requests/sec line. */
static bool cr_wrk_parse_line(const char *line, cr_wrk_result *out)
{
    const char *p = line + strspn(line, " \t");
    unsigned long long a, b, c, d;
    char took[32];

    if (sscanf(p, "Requests/sec: %lf", &out->requests_per_s) == 1)
        return true;
    if (sscanf(p, "%llu requests in %31[^,]", &a, took) == 2) {
        out->requests = a;
        out->seconds = cr_wrk_ms(took) / 1000.0;
    } else if (sscanf(p, "Socket errors: connect %llu, read %llu, write %llu, timeout %llu", &a, &b,
                      &c, &d) == 4) {
        out->err_connect = a;
        out->err_read = b;
        out->err_write = c;
        out->err_timeout = d;
    } else if (sscanf(p, "Non-2xx or 3xx responses: %llu", &a) == 1) {
        out->err_status = a;
    } else {
        cr_wrk_parse_quantile(p, out);
    }
    return false;
}

static int cr_wrk_parse(const char *path, cr_wrk_result *out)
{
    FILE *f = fopen(path, "r");
    char line[512];
    bool have_rps = false;

    if (f == NULL) {
        fprintf(stderr, "corral-bench: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL)
        have_rps |= cr_wrk_parse_line(line, out);
    if (ferror(f))
        fprintf(stderr, "corral-bench: cannot read %s\n", path);
    fclose(f);
    if (have_rps)
        return 0;
    fprintf(stderr, "corral-bench: wrk printed no Requests/sec (see %s)\n", path);
    return -1;
}

/* In the forked child: wrk's output into outfd, the pin, then wrk. */
static void cr_wrk_exec(const cr_wrk_spec *s, int outfd, char **argv)
{
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

    /* Should corral-bench die, wrk goes with it. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        fprintf(stderr, "corral-bench: prctl(PR_SET_PDEATHSIG): %s\n", strerror(errno));
    /* corral-bench ignores SIGPIPE, and an ignored signal stays so
     * across exec. */
    signal(SIGPIPE, SIG_DFL);
    if (s->cpu >= 0)
        cr_pin(0, s->cpu);
    if ((null >= 0 && dup2(null, STDIN_FILENO) < 0) || dup2(outfd, STDOUT_FILENO) < 0 ||
        dup2(outfd, STDERR_FILENO) < 0)
        _exit(127);
    execv(s->wrk, argv);
    fprintf(stderr, "corral-bench: cannot run %s: %s\n", s->wrk, strerror(errno));
    _exit(127);
}

static pid_t cr_wrk_spawn(const cr_wrk_spec *s, int outfd)
{
    char threads[16], conns[16], dur[16], timeout[16];
    char *argv[] = {(char *)s->wrk,
                    (char *)"-t",
                    threads,
                    (char *)"-c",
                    conns,
                    (char *)"-d",
                    dur,
                    (char *)"--timeout",
                    timeout,
                    (char *)"--latency",
                    (char *)s->url,
                    NULL};
    pid_t pid;

    snprintf(threads, sizeof(threads), "%d", s->threads);
    snprintf(conns, sizeof(conns), "%d", s->connections);
    snprintf(dur, sizeof(dur), "%ds", s->duration_s);
    snprintf(timeout, sizeof(timeout), "%ds", s->timeout_s);
    pid = fork();
    if (pid < 0)
        fprintf(stderr, "corral-bench: fork: %s\n", strerror(errno));
    if (pid == 0)
        cr_wrk_exec(s, outfd, argv);
    return pid;
}

/* Waits for wrk, at most limit_s: then kills it (by its pid) and reaps it.
 * 0 when it exited by itself (its status in *status). */
static int cr_wrk_wait(pid_t pid, int limit_s, int *status, struct rusage *ru)
{
    uint64_t deadline = cr_now_us() + (uint64_t)limit_s * 1000000u;

    for (;;) {
        pid_t r = wait4(pid, status, WNOHANG, ru);

        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR) {
            fprintf(stderr, "corral-bench: wait for wrk (pid %d): %s\n", (int)pid, strerror(errno));
            return -1;
        }
        if (cr_now_us() >= deadline)
            break;
        usleep(50 * 1000);
    }
    fprintf(stderr, "corral-bench: wrk (pid %d) still running after %d s: killed\n", (int)pid,
            limit_s);
    if (kill(pid, SIGKILL) != 0)
        fprintf(stderr, "corral-bench: kill %d: %s\n", (int)pid, strerror(errno));
    while (wait4(pid, status, 0, ru) < 0 && errno == EINTR)
        ;
    return -1;
}

static bool cr_wrk_exited_ok(const cr_wrk_spec *spec, int status)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return true;
    if (WIFEXITED(status))
        fprintf(stderr, "corral-bench: wrk exited with status %d (see %s)\n", WEXITSTATUS(status),
                spec->output);
    else
        fprintf(stderr, "corral-bench: wrk killed by signal %d (see %s)\n", WTERMSIG(status),
                spec->output);
    return false;
}

int cr_wrk_run(const cr_wrk_spec *spec, cr_wrk_result *out)
{
    struct rusage ru;
    uint64_t t0;
    int fd, status = 0, rc;
    pid_t pid;

    memset(out, 0, sizeof(*out));
    for (int k = 0; k < 4; k++)
        out->lat_ms[k] = NAN;
    fd = open(spec->output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "corral-bench: %s: %s\n", spec->output, strerror(errno));
        return -1;
    }
    t0 = cr_now_us();
    pid = cr_wrk_spawn(spec, fd);
    close(fd);
    if (pid < 0)
        return -1;
    /* wrk stops itself after -d; ten seconds more is the bound of a hang. */
    rc = cr_wrk_wait(pid, spec->duration_s + 10, &status, &ru);
    out->wall_s = (double)(cr_now_us() - t0) / 1e6;
    if (rc != 0 || !cr_wrk_exited_ok(spec, status))
        return -1;
    out->cpu_s = cr_rusage_cpu_s(&ru);
    return cr_wrk_parse(spec->output, out);
}
