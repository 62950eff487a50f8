/* corralctl: the master process from outside. Its pid comes from the
 * config's pidfile; a pidfile is trusted only when the process it names is
 * alive and is a corral master (its scoreboard names it, or it runs the
 * corral binary), so a stale pidfile whose pid was reused by another
 * program never gets a signal. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "corralctl.h"

#ifndef CR_SBIN_DIR
#define CR_SBIN_DIR "/usr/local/sbin"
#endif

/* Beyond the master's own escalation (TERM again at 3 s, KILL at 8 s). */
#define CR_CTL_STOP_TIMEOUT_MS 30000
/* corral -D-less start: its parent waits for the master to be ready. */
#define CR_CTL_START_TIMEOUT_MS 60000
#define CR_CTL_MAX_PIDS         4096

int cr_ctl_fail(const char *fmt, ...)
{
    va_list ap;

    fputs("corralctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

void cr_ctl_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

long long cr_ctl_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- /proc ---- */

typedef struct cr_ctl_proc {
    char state;               /* R S D Z ... */
    long ppid;                /* field 4 */
    unsigned long long start; /* field 22: clock ticks after boot */
    char comm[64];
} cr_ctl_proc;

/* Reads /proc/PID/stat. 0, or -1 when there is no such process. */
static int cr_ctl_proc_stat(pid_t pid, cr_ctl_proc *p)
{
    char path[64], buf[1024];
    const char *open_paren, *close_paren;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* comm may hold spaces and parentheses: it ends at the last ')'. */
    open_paren = strchr(buf, '(');
    close_paren = strrchr(buf, ')');
    if (open_paren == NULL || close_paren == NULL || close_paren < open_paren ||
        close_paren[1] == '\0')
        return -1;
    snprintf(p->comm, sizeof(p->comm), "%.*s", (int)(close_paren - open_paren - 1), open_paren + 1);
    p->state = close_paren[2];
    /* The parent, fields 5 to 21 skipped, then the start time. */
    if (sscanf(close_paren + 3,
               "%ld %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu",
               &p->ppid, &p->start) != 2)
        return -1;
    return 0;
}

bool cr_ctl_alive(pid_t pid, unsigned long long start)
{
    cr_ctl_proc p;

    if (pid <= 0 || cr_ctl_proc_stat(pid, &p) != 0)
        return false;
    return p.state != 'Z' && p.state != 'X' && p.state != 'x' && (start == 0 || p.start == start);
}

/* ---- the pidfile ---- */

/* 1 with *pid (0 when the file holds no number), 0 when there is no
 * pidfile, -1 after printing why it cannot be read. */
static int cr_ctl_read_pidfile(const char *path, pid_t *pid)
{
    char buf[64], *end;
    ssize_t n;
    long v;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    *pid = 0;
    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0) {
        cr_ctl_fail("cannot read the pidfile %s: %s", path, strerror(errno));
        return -1;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    if (n < 0) {
        cr_ctl_fail("cannot read the pidfile %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    buf[n] = '\0';
    errno = 0;
    v = strtol(buf, &end, 10);
    if (errno == 0 && end != buf && v > 0 && v < (1L << 30) &&
        strspn(end, " \t\r\n") == strlen(end))
        *pid = (pid_t)v;
    return 1;
}

/* A corral master: its scoreboard names it (the surest sign), or it runs
 * the corral binary (a master whose scoreboard file went missing). */
static bool cr_ctl_is_master(const cr_ctl *ctl, pid_t pid, const cr_ctl_proc *p)
{
    cr_scoreboard sb;
    char err[512];
    bool named = false;

    if (cr_scoreboard_attach(&sb, ctl->cfg.scoreboard, err, sizeof(err)) == 0) {
        named = sb.hdr->master_pid == pid;
        cr_scoreboard_destroy(&sb);
    }
    return named || strcmp(p->comm, "corral") == 0;
}

int cr_ctl_find_master(const cr_ctl *ctl, cr_ctl_master *m)
{
    const char *pidfile = ctl->cfg.pidfile;
    cr_ctl_proc p;
    int rc;

    memset(m, 0, sizeof(*m));
    rc = cr_ctl_read_pidfile(pidfile, &m->pid);
    if (rc <= 0)
        return rc;
    m->found = CR_CTL_STALE;
    if (m->pid == 0)
        snprintf(m->why, sizeof(m->why), "stale pidfile %s: it holds no process id", pidfile);
    else if (cr_ctl_proc_stat(m->pid, &p) != 0 || p.state == 'Z' || p.state == 'X')
        snprintf(m->why, sizeof(m->why), "stale pidfile %s: pid %ld is not running", pidfile,
                 (long)m->pid);
    else if (!cr_ctl_is_master(ctl, m->pid, &p))
        snprintf(m->why, sizeof(m->why),
                 "stale pidfile %s: pid %ld is not a corral master (it is '%s')", pidfile,
                 (long)m->pid, p.comm);
    else {
        m->found = CR_CTL_RUNNING;
        m->start = p.start;
    }
    return 0;
}

int cr_ctl_find_running(const cr_ctl *ctl, cr_ctl_master *m)
{
    if (cr_ctl_find_master(ctl, m) != 0)
        return 1;
    if (m->found == CR_CTL_RUNNING)
        return 0;
    if (m->found == CR_CTL_STALE)
        return cr_ctl_fail("not running (%s)", m->why);
    return cr_ctl_fail("not running (no pidfile %s)", ctl->cfg.pidfile);
}

int cr_ctl_signal(const cr_ctl_master *m, int sig, const char *name)
{
    /* The pid was checked a moment ago; check again right before. */
    if (!cr_ctl_alive(m->pid, m->start))
        return cr_ctl_fail("not running (pid %ld exited)", (long)m->pid);
    if (kill(m->pid, sig) != 0)
        return cr_ctl_fail("cannot send %s to pid %ld: %s", name, (long)m->pid, strerror(errno));
    return 0;
}

int cr_ctl_attach(const cr_ctl *ctl, const cr_ctl_master *m, cr_scoreboard *sb)
{
    char err[1024];

    if (cr_scoreboard_attach(sb, ctl->cfg.scoreboard, err, sizeof(err)) != 0)
        return cr_ctl_fail("cannot read the scoreboard of pid %ld: %s", (long)m->pid, err);
    if (sb->hdr->master_pid != m->pid) {
        cr_ctl_fail("the scoreboard %s belongs to pid %lld, not to the running master %ld",
                    ctl->cfg.scoreboard, (long long)sb->hdr->master_pid, (long)m->pid);
        cr_scoreboard_destroy(sb);
        return 1;
    }
    return 0;
}

/* ---- stop ---- */

typedef struct cr_ctl_procs {
    pid_t pid[CR_CTL_MAX_PIDS];
    unsigned long long start[CR_CTL_MAX_PIDS];
    size_t n;
} cr_ctl_procs;

/* Adds pid; with parent > 0, only if parent is its parent. */
static void cr_ctl_procs_add(cr_ctl_procs *ps, pid_t pid, pid_t parent)
{
    cr_ctl_proc p;

    for (size_t i = 0; i < ps->n; i++)
        if (ps->pid[i] == pid)
            return;
    if (pid <= 0 || ps->n == CR_CTL_MAX_PIDS || cr_ctl_proc_stat(pid, &p) != 0)
        return;
    if (parent > 0 && p.ppid != (long)parent)
        return;
    ps->pid[ps->n] = pid;
    ps->start[ps->n++] = p.start;
}

/* The master's children as the kernel lists them, for those the
 * scoreboard may not show yet (forked a moment ago). */
static void cr_ctl_procs_add_children(cr_ctl_procs *ps, pid_t master)
{
    char path[96];
    long pid;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children", (long)master, (long)master);
    f = fopen(path, "re");
    if (f == NULL)
        return;
    while (fscanf(f, "%ld", &pid) == 1)
        cr_ctl_procs_add(ps, (pid_t)pid, 0);
    fclose(f);
}

/* The master and its children. A pid from the scoreboard counts only
 * while the master is its parent: whatever else the file may name (it is
 * shared memory, a corrupt or stale one names anything) is not waited for. */
static void cr_ctl_procs_gather(const cr_ctl *ctl, const cr_ctl_master *m, cr_ctl_procs *ps)
{
    cr_scoreboard sb;
    char err[512];

    ps->n = 0;
    cr_ctl_procs_add(ps, m->pid, 0);
    if (cr_scoreboard_attach(&sb, ctl->cfg.scoreboard, err, sizeof(err)) == 0) {
        for (uint32_t i = 0; i < sb.process_limit; i++)
            cr_ctl_procs_add(ps, sb.processes[i].pid, m->pid);
        cr_scoreboard_destroy(&sb);
    }
    cr_ctl_procs_add_children(ps, m->pid);
}

/* Number of them still running. */
static size_t cr_ctl_procs_alive(const cr_ctl_procs *ps)
{
    size_t n = 0;

    for (size_t i = 0; i < ps->n; i++)
        n += cr_ctl_alive(ps->pid[i], ps->start[i]);
    return n;
}

int cr_ctl_stop_master(const cr_ctl *ctl, const cr_ctl_master *m)
{
    static cr_ctl_procs ps;
    long long deadline;
    size_t left;

    cr_ctl_procs_gather(ctl, m, &ps);
    if (cr_ctl_signal(m, SIGTERM, "TERM") != 0)
        return 1;
    deadline = cr_ctl_now_ms() + CR_CTL_STOP_TIMEOUT_MS;
    while ((left = cr_ctl_procs_alive(&ps)) > 0) {
        if (cr_ctl_now_ms() > deadline)
            return cr_ctl_fail(
                "%zu of the server's %zu processes still run %d s after TERM (master "
                "pid %ld)",
                left, ps.n, CR_CTL_STOP_TIMEOUT_MS / 1000, (long)m->pid);
        cr_ctl_sleep_ms(CR_CTL_POLL_MS);
    }
    return 0;
}

/* ---- start ---- */

char *cr_ctl_corral_binary(const cr_ctl *ctl)
{
    char *path = NULL;

    if (ctl->exe_dir != NULL && asprintf(&path, "%s/corral", ctl->exe_dir) >= 0) {
        if (access(path, X_OK) == 0)
            return path;
        free(path);
        path = NULL;
    }
    if (access(CR_SBIN_DIR "/corral", X_OK) == 0)
        return strdup(CR_SBIN_DIR "/corral");
    cr_ctl_fail("cannot find the corral binary (looked in %s and %s)",
                ctl->exe_dir ? ctl->exe_dir : "(this program's folder)", CR_SBIN_DIR);
    return NULL;
}

static char **cr_ctl_corral_argv(const cr_ctl *ctl, const char *bin, const char *const *extra)
{
    size_t nextra = 0, n = 0;
    char **argv;

    while (extra != NULL && extra[nextra] != NULL)
        nextra++;
    argv = calloc(4 + 2 * (ctl ? ctl->noverrides : 0) + nextra, sizeof(*argv));
    if (argv == NULL)
        return NULL;
    argv[n++] = (char *)bin;
    /* The absolute path: the master reads the file again on a restart. */
    if (ctl != NULL) {
        argv[n++] = "-f";
        argv[n++] = ctl->cfg.file;
    }
    for (size_t i = 0; ctl != NULL && i < ctl->noverrides; i++) {
        argv[n++] = "-o";
        argv[n++] = ctl->overrides[i];
    }
    for (size_t i = 0; i < nextra; i++)
        argv[n++] = (char *)extra[i];
    return argv;
}

/* Waits for the corral we started, within a bound. Its status, or -1. */
static int cr_ctl_wait_corral(pid_t pid, const char *bin)
{
    long long deadline = cr_ctl_now_ms() + CR_CTL_START_TIMEOUT_MS;
    int status;
    pid_t got;

    while ((got = waitpid(pid, &status, WNOHANG)) == 0) {
        if (cr_ctl_now_ms() > deadline) {
            cr_ctl_fail("%s did not finish starting in %d s; stopping it", bin,
                        CR_CTL_START_TIMEOUT_MS / 1000);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        cr_ctl_sleep_ms(CR_CTL_POLL_MS);
    }
    if (got < 0) {
        cr_ctl_fail("waitpid for %s: %s", bin, strerror(errno));
        return -1;
    }
    if (WIFSIGNALED(status)) {
        cr_ctl_fail("%s was killed by signal %d (%s)", bin, WTERMSIG(status),
                    strsignal(WTERMSIG(status)));
        return -1;
    }
    return WEXITSTATUS(status);
}

int cr_ctl_run_corral(const cr_ctl *ctl, const char *bin, const char *const *extra)
{
    char **argv = cr_ctl_corral_argv(ctl, bin, extra);
    pid_t pid;

    if (argv == NULL) {
        cr_ctl_fail("%s", strerror(ENOMEM));
        return -1;
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        cr_ctl_fail("fork: %s", strerror(errno));
        free(argv);
        return -1;
    }
    if (pid == 0) {
        execv(bin, argv);
        fprintf(stderr, "corralctl: cannot run %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    free(argv);
    return cr_ctl_wait_corral(pid, bin);
}
