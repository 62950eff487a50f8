/* What a server costs, read from /proc for its whole process tree: CPU
 * seconds, resident and proportional memory (PSS splits the pages forked
 * children share, so prefork's N processes are not counted N times),
 * processes, threads and context switches. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* The children of pid, from every thread's children file. */
static int cr_proc_children(pid_t pid, pid_t *kids, int max)
{
    char path[64];
    DIR *d;
    struct dirent *de;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    d = opendir(path);
    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL && n < max) {
        char file[320];
        FILE *f;
        long k;

        if (de->d_name[0] == '.')
            continue;
        snprintf(file, sizeof(file), "/proc/%d/task/%s/children", (int)pid, de->d_name);
        f = fopen(file, "r");
        if (f == NULL)
            continue;
        while (n < max && fscanf(f, "%ld", &k) == 1)
            kids[n++] = (pid_t)k;
        fclose(f);
    }
    closedir(d);
    return n;
}

/* utime + stime of the process (all its threads), in seconds. */
static int cr_proc_cpu(pid_t pid, double *cpu_s)
{
    char path[64], buf[1024], *p;
    unsigned long long ut = 0, st = 0;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command, which may hold spaces and parentheses. */
    p = strrchr(buf, ')');
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    *cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    return 0;
}

/* A "Key:   value kB"-style field of a /proc file, or -1. */
static long long cr_proc_field(const char *path, const char *key)
{
    char line[256];
    size_t klen = strlen(key);
    long long v = -1;
    FILE *f = fopen(path, "r");

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            v = atoll(line + klen + 1);
            break;
        }
    fclose(f);
    return v;
}

static uint64_t cr_proc_ctx_switches(pid_t pid)
{
    char path[64];
    DIR *d;
    struct dirent *de;
    uint64_t total = 0;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    d = opendir(path);
    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL) {
        char file[320];
        long long v, nv;

        if (de->d_name[0] == '.')
            continue;
        snprintf(file, sizeof(file), "/proc/%d/task/%s/status", (int)pid, de->d_name);
        v = cr_proc_field(file, "voluntary_ctxt_switches");
        nv = cr_proc_field(file, "nonvoluntary_ctxt_switches");
        total += (uint64_t)(v > 0 ? v : 0) + (uint64_t)(nv > 0 ? nv : 0);
    }
    closedir(d);
    return total;
}

static int cr_proc_add(pid_t pid, cr_proc_sample *s)
{
    char path[64];
    double cpu;
    long long v;

    if (cr_proc_cpu(pid, &cpu) != 0)
        return -1;
    s->cpu_s += cpu;
    s->processes++;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    v = cr_proc_field(path, "VmRSS");
    s->rss_kb += v > 0 ? (double)v : 0;
    v = cr_proc_field(path, "Threads");
    s->threads += v > 0 ? (int)v : 0;
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
    v = cr_proc_field(path, "Pss");
    s->pss_kb += v > 0 ? (double)v : 0;
    s->ctx_switches += cr_proc_ctx_switches(pid);
    return 0;
}

static void cr_proc_walk(pid_t pid, cr_proc_sample *s, int depth)
{
    pid_t kids[4096];
    int n;

    if (cr_proc_add(pid, s) != 0 || depth > 8)
        return;
    n = cr_proc_children(pid, kids, (int)(sizeof(kids) / sizeof(kids[0])));
    for (int i = 0; i < n; i++)
        cr_proc_walk(kids[i], s, depth + 1);
}

int cr_proc_sample_tree(pid_t pid, cr_proc_sample *out)
{
    memset(out, 0, sizeof(*out));
    cr_proc_walk(pid, out, 0);
    return out->processes > 0 ? 0 : -1;
}

int cr_core_times_read(int cpu, cr_core_times *out)
{
    char want[16], line[512];
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    int rc = -1;

    if (f == NULL)
        return -1;
    snprintf(want, sizeof(want), "cpu%d ", cpu);
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, want, strlen(want)) != 0)
            continue;
        /* user nice system idle iowait irq softirq steal */
        if (sscanf(line + strlen(want), "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) >= 7) {
            out->busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
            out->total = out->busy + v[3] + v[4];
            rc = 0;
        }
        break;
    }
    fclose(f);
    return rc;
}
