#include "master.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "access_log.h"
#include "child.h"
#include "child_table.h"
#include "corral/corral.h"
#include "error_log.h"
#include "loader.h"

#define CR_MAX_SPAWN_RATE       32
#define CR_STOP_TERM_AGAIN_MS   3000
#define CR_STOP_KILL_MS         8000
#define CR_RESPAWN_MAX_DELAY_MS 10000
#define CR_FAST_DEATH_MS        2000

typedef struct cr_master {
    cr_server *srv;
    const cr_options *opt;
    sigset_t signals;     /* handled synchronously with sigtimedwait */
    int spawn_rate;       /* children forked per tick while short of spares */
    int respawns;         /* children owed for ones that died unasked */
    long long respawn_at; /* not before this time (ms), after fast deaths */
    int fast_deaths;      /* consecutive children that died soon after start */
    int ready_fd;         /* daemonizing parent waits for a byte here; -1 */
    /* The children this master forked: the only pids it ever signals. */
    cr_child_table kids;
    bool pidfile_written;
    bool stop_asked; /* TERM or INT came while waiting for children */
} cr_master;

static long long cr_master_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- pidfile ---- */

static pid_t cr_pidfile_read(const char *path)
{
    char buf[32] = "";
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return (pid_t)strtol(buf, NULL, 10);
}

static int cr_pidfile_check(const char *path)
{
    pid_t pid = cr_pidfile_read(path);

    if (pid > 0 && pid != getpid() && kill(pid, 0) == 0) {
        cr_log(CR_LOG_ERROR, "already running (pid %ld, pidfile %s)", (long)pid, path);
        return -1;
    }
    if (pid > 0)
        cr_log(CR_LOG_NOTICE, "removing stale pidfile %s (pid %ld is gone)", path, (long)pid);
    return 0;
}

static int cr_pidfile_write(cr_master *m)
{
    const char *path = m->srv->gen->cfg.pidfile;
    char buf[32];
    int fd, len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, buf, (size_t)len) != len) {
        cr_log_errno(CR_LOG_ERROR, errno, "cannot write pidfile %s", path);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    m->pidfile_written = true;
    return 0;
}

static void cr_pidfile_remove(cr_master *m)
{
    const char *path = m->srv->gen->cfg.pidfile;

    if (m->pidfile_written && cr_pidfile_read(path) == getpid() && unlink(path) != 0)
        cr_log_errno(CR_LOG_WARN, errno, "cannot remove pidfile %s", path);
}

/* ---- logs, listeners, privileges ---- */

static int cr_master_open_logs(cr_server *srv)
{
    const cr_config *cfg = &srv->gen->cfg;
    int fd = -1;

    if (cr_error_log_open(cfg->log.error, cfg->log.level) != 0) {
        fprintf(stderr, "corral: cannot open error log %s: %s\n", cfg->log.error, strerror(errno));
        return -1;
    }
    if (cfg->log.access != NULL && (fd = cr_access_log_open(cfg->log.access)) < 0) {
        cr_log_errno(CR_LOG_ERROR, errno, "cannot open access log %s", cfg->log.access);
        return -1;
    }
    if (srv->access_log >= 0)
        close(srv->access_log);
    srv->access_log = fd;
    return 0;
}

static int cr_master_listen(cr_server *srv)
{
    const cr_config *cfg = &srv->gen->cfg;
    char err[512];

    if (cr_listeners_update(&srv->listeners, cfg->listen, cfg->nlisten, cfg->backlog, err,
                            sizeof(err)) != 0) {
        cr_log(CR_LOG_ERROR, "%s", err);
        return -1;
    }
    return 0;
}

/* Children give up root; the master keeps it to bind new addresses on a
 * restart. */
static int cr_drop_privileges(const cr_config *cfg)
{
    struct passwd *pw;
    struct group *gr = NULL;

    if (geteuid() != 0 || cfg->user == NULL)
        return 0;
    pw = getpwnam(cfg->user);
    if (pw == NULL) {
        cr_log(CR_LOG_ERROR, "user '%s' does not exist", cfg->user);
        return -1;
    }
    if (cfg->group != NULL && (gr = getgrnam(cfg->group)) == NULL) {
        cr_log(CR_LOG_ERROR, "group '%s' does not exist", cfg->group);
        return -1;
    }
    if (setgid(gr ? gr->gr_gid : pw->pw_gid) != 0 ||
        initgroups(pw->pw_name, gr ? gr->gr_gid : pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
        cr_log_errno(CR_LOG_ERROR, errno, "cannot switch to user %s", cfg->user);
        return -1;
    }
    return 0;
}

/* ---- children ---- */

static void cr_master_child_body(cr_master *m, int slot)
{
    sigset_t none;

    sigemptyset(&none);
    if (pthread_sigmask(SIG_SETMASK, &none, NULL) != 0)
        _exit(1);
    /* While still root: the sealed view is what the unprivileged child
     * keeps. A child that cannot seal does not serve. */
    if (cr_scoreboard_seal(&m->srv->sb) != 0) {
        cr_log_errno(CR_LOG_CRIT, errno, "cannot map the scoreboard's master part read-only");
        _exit(1);
    }
    if (cr_drop_privileges(&m->srv->gen->cfg) != 0)
        _exit(1);
    if (m->ready_fd >= 0)
        close(m->ready_fd);
    exit(cr_child_run(m->srv, slot));
}

static int cr_master_spawn(cr_master *m)
{
    cr_server *srv = m->srv;
    int slot = cr_child_table_free_slot(&m->kids);
    pid_t pid;

    if (slot < 0) {
        cr_log(CR_LOG_ERROR, "scoreboard is full (%u process slots); not starting a child",
               srv->sb.process_limit);
        return -1;
    }
    /* Claimed before fork so the child's first state update is never
     * overwritten by the claim. */
    cr_scoreboard_claim(&srv->sb, slot, -1, srv->gen->number,
                        (uint32_t)srv->gen->policy.threads_per_child);
    pid = fork();
    if (pid < 0) {
        cr_log_errno(CR_LOG_ERROR, errno, "fork");
        cr_scoreboard_release(&srv->sb, slot);
        return -1;
    }
    if (pid == 0)
        cr_master_child_body(m, slot);
    cr_child_table_add(&m->kids, slot, pid, srv->gen->number, cr_master_now_ms());
    srv->sb.processes[slot].pid = pid; /* for readers only */
    cr_log(CR_LOG_DEBUG, "started child %ld in slot %d", (long)pid, slot);
    return 0;
}

typedef struct cr_census {
    int live;     /* current generation, not asked to stop */
    int idle;     /* idle handler slots among those */
    int all;      /* every child still running, any generation */
    int idle_one; /* slot of a child with an idle slot, or -1 */
} cr_census;

/* Which children there are comes from the master's own table; only how
 * busy they are comes from the scoreboard, as the children report it. */
static cr_census cr_master_census(const cr_master *m)
{
    const cr_server *srv = m->srv;
    const cr_scoreboard *sb = &srv->sb;
    cr_census c = {0, 0, 0, -1};

    for (uint32_t i = 0; i < m->kids.count; i++) {
        const cr_child_entry *k = &m->kids.slots[i];

        if (k->pid == 0)
            continue;
        c.all++;
        if (k->stopping || k->generation != srv->gen->number)
            continue;
        c.live++;
        for (uint32_t t = 0; t < (uint32_t)srv->gen->policy.threads_per_child; t++) {
            char st = cr_scoreboard_worker(sb, i, t)->state;

            if (st == CR_SLOT_READY || st == CR_SLOT_STARTING) {
                c.idle++;
                if (st == CR_SLOT_READY)
                    c.idle_one = (int)i;
            }
        }
    }
    return c;
}

/* Signals the child of slot (one this master forked and has not reaped,
 * so its pid cannot belong to anyone else yet); USR1 and WINCH also mark
 * it as stopping. */
static void cr_master_signal(cr_master *m, int slot, int sig)
{
    cr_child_entry *k = &m->kids.slots[slot];

    if (sig == SIGUSR1 || sig == SIGWINCH) {
        k->stopping = true;
        m->srv->sb.processes[slot].quiescing = 1; /* for readers only */
    }
    if (kill(k->pid, sig) != 0 && errno != ESRCH)
        cr_log_errno(CR_LOG_WARN, errno, "kill(%ld, %d)", (long)k->pid, sig);
}

static void cr_master_maintain(cr_master *m)
{
    const cr_mpm_policy *pol = &m->srv->gen->policy;
    cr_census c = cr_master_census(m);
    int want = 0;

    if (m->respawns > 0 && cr_master_now_ms() >= m->respawn_at) {
        want = m->respawns;
        m->respawns = 0;
    }
    if (c.live + want < pol->min_processes)
        want = pol->min_processes - c.live;
    if (pol->min_spare > 0 && c.idle + want * pol->threads_per_child < pol->min_spare) {
        want += m->spawn_rate;
        if (m->spawn_rate < CR_MAX_SPAWN_RATE)
            m->spawn_rate *= 2;
    } else {
        m->spawn_rate = 1;
        if (pol->max_spare > 0 && c.idle - pol->threads_per_child >= pol->max_spare &&
            c.idle_one >= 0 && c.live > pol->min_processes)
            cr_master_signal(m, c.idle_one, SIGUSR1);
    }
    if (c.live + want > pol->max_processes)
        want = pol->max_processes - c.live;
    while (want-- > 0 && cr_master_spawn(m) == 0)
        ;
}

static void cr_master_log_exit(pid_t pid, int status, bool expected)
{
    if (WIFSIGNALED(status))
        cr_log(expected ? CR_LOG_INFO : CR_LOG_ERROR, "child %ld exited on signal %d (%s)%s",
               (long)pid, WTERMSIG(status), strsignal(WTERMSIG(status)),
               WCOREDUMP(status) ? ", core dumped" : "");
    else if (WEXITSTATUS(status) != 0)
        cr_log(CR_LOG_ERROR, "child %ld exited with status %d", (long)pid, WEXITSTATUS(status));
    else
        cr_log(CR_LOG_DEBUG, "child %ld exited", (long)pid);
}

/* Owes a replacement for a child of the running generation that died
 * without being asked; one that keeps dying at start is replaced later
 * and later, so a broken child cannot spin the CPU. */
static void cr_master_owe_respawn(cr_master *m, int slot, int status)
{
    long long lived = cr_master_now_ms() - m->kids.slots[slot].started_ms;
    bool crashed = WIFSIGNALED(status) || WEXITSTATUS(status) != 0;

    m->respawns++;
    if (!crashed || lived >= CR_FAST_DEATH_MS) {
        m->fast_deaths = 0;
        return;
    }
    if (m->fast_deaths < 10)
        m->fast_deaths++;
    long long delay = 100LL << m->fast_deaths;
    if (delay > CR_RESPAWN_MAX_DELAY_MS)
        delay = CR_RESPAWN_MAX_DELAY_MS;
    m->respawn_at = cr_master_now_ms() + delay;
    if (m->fast_deaths >= 3)
        cr_log(CR_LOG_WARN, "children keep dying at start; next one in %lld ms", delay);
}

static void cr_master_reap(cr_master *m, bool stopping)
{
    cr_server *srv = m->srv;
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        int slot = cr_child_table_find(&m->kids, pid);
        bool asked = stopping || slot < 0 || m->kids.slots[slot].stopping ||
                     m->kids.slots[slot].generation != srv->gen->number;

        cr_master_log_exit(pid, status, asked);
        if (slot < 0)
            continue;
        /* A recycled child (requests_per_child) is replaced like a dead one. */
        if (!asked)
            cr_master_owe_respawn(m, slot, status);
        cr_child_table_remove(&m->kids, slot);
        cr_scoreboard_release(&srv->sb, slot);
    }
    if (pid < 0 && errno != ECHILD)
        cr_log_errno(CR_LOG_ERROR, errno, "waitpid");
}

static void cr_master_signal_all(cr_master *m, int sig, bool old_only)
{
    for (uint32_t i = 0; i < m->kids.count; i++) {
        const cr_child_entry *k = &m->kids.slots[i];

        if (k->pid == 0 || (old_only && k->generation == m->srv->gen->number))
            continue;
        cr_master_signal(m, (int)i, sig);
    }
}

static int cr_master_wait_signal(cr_master *m, int timeout_ms)
{
    struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
    int sig = sigtimedwait(&m->signals, NULL, &ts);

    if (sig < 0 && errno != EAGAIN && errno != EINTR)
        cr_log_errno(CR_LOG_ERROR, errno, "sigtimedwait");
    return sig < 0 ? 0 : sig;
}

/* corralctl reopen-logs, after logrotate: the master reopens, the
 * children follow through the scoreboard's log epoch. */
static void cr_master_reopen_logs(cr_master *m)
{
    cr_logs_reopen(m->srv->access_log, m->srv->gen->cfg.log.access, m->srv->gen->cfg.user);
}

/* Waits for every child to exit: TERM again after a while, then KILL.
 * With graceful_ms > 0 the children first get that long to finish (< 0:
 * as long as they need). A TERM or INT meanwhile is not lost: it cuts a
 * graceful wait short and leaves m->stop_asked set for the caller. */
static void cr_master_reclaim(cr_master *m, long long graceful_ms)
{
    long long start = cr_master_now_ms();
    bool termed = graceful_ms == 0, killed = false;

    for (;;) {
        long long waited;
        int sig;

        cr_master_reap(m, true);
        if (cr_master_census(m).all == 0)
            return;
        waited = cr_master_now_ms() - start;
        if (!termed && graceful_ms > 0 && waited >= graceful_ms) {
            cr_log(CR_LOG_WARN, "graceful stop timed out; stopping the rest");
            cr_master_signal_all(m, SIGTERM, false);
            start = cr_master_now_ms();
            termed = true;
        } else if (termed && !killed && waited >= CR_STOP_KILL_MS) {
            cr_log(CR_LOG_WARN, "children still running; sending KILL");
            cr_master_signal_all(m, SIGKILL, false);
            killed = true;
        } else if (termed && !killed && waited >= CR_STOP_TERM_AGAIN_MS &&
                   waited < CR_STOP_TERM_AGAIN_MS + 200) {
            cr_master_signal_all(m, SIGTERM, false);
        }
        sig = cr_master_wait_signal(m, 200);
        /* A log rotation does not wait for the children: its old file is
         * already renamed away. */
        if (sig == SIGUSR2)
            cr_master_reopen_logs(m);
        if (sig != SIGTERM && sig != SIGINT)
            continue;
        m->stop_asked = true;
        if (!termed) {
            cr_log(CR_LOG_NOTICE, "stop requested during a graceful stop; stopping the rest");
            cr_master_signal_all(m, SIGTERM, false);
            start = cr_master_now_ms();
            termed = true;
        }
    }
}

/* ---- restarts ---- */

static int cr_master_check_new(cr_master *m, const cr_generation *g)
{
    const cr_generation *cur = m->srv->gen;
    const cr_scoreboard *sb = &m->srv->sb;

    if (strcmp(g->cfg.mpm, cur->cfg.mpm) != 0) {
        cr_log(CR_LOG_ERROR,
               "restart refused: the MPM cannot change on a restart (%s -> %s); "
               "stop and start the server",
               cur->cfg.mpm, g->cfg.mpm);
        return -1;
    }
    if ((uint32_t)g->policy.threads_per_child > sb->thread_limit ||
        (uint32_t)g->policy.max_processes > sb->process_limit) {
        cr_log(CR_LOG_ERROR,
               "restart refused: the new limits exceed the scoreboard's "
               "(%u processes x %u threads); stop and start the server",
               sb->process_limit, sb->thread_limit);
        return -1;
    }
    return 0;
}

/* Loads the config again; on any error the running generation stays. */
static cr_generation *cr_master_reload(cr_master *m)
{
    cr_generation *g = malloc(sizeof(*g));
    char err[1024];

    if (g == NULL)
        return NULL;
    if (cr_generation_load(g, m->srv->exe_dir, m->opt->config_file, m->opt->overrides,
                           m->opt->noverrides, err, sizeof(err)) != 0) {
        cr_log(CR_LOG_ERROR, "restart refused, still serving the old configuration: %s", err);
        free(g);
        return NULL;
    }
    if (cr_master_check_new(m, g) != 0)
        goto fail;
    g->number = m->srv->gen->number + 1;
    return g;
fail:
    cr_generation_free(g);
    free(g);
    return NULL;
}

static void cr_master_swap(cr_master *m, cr_generation *g)
{
    cr_server *srv = m->srv;
    cr_generation *old = srv->gen;

    srv->gen = g;
    if (cr_master_listen(srv) != 0 || cr_master_open_logs(srv) != 0)
        cr_log(CR_LOG_ERROR, "new listeners or logs failed; kept what was open");
    srv->sb.running_generation = g->number;
    srv->sb.restart_time = time(NULL);
    cr_generation_free(old);
    free(old);
}

static void cr_master_restart(cr_master *m, bool graceful)
{
    cr_generation *g = cr_master_reload(m);
    int start;

    if (g == NULL)
        return;
    cr_log(CR_LOG_NOTICE, "%s restart to generation %u", graceful ? "graceful" : "full", g->number);
    if (!graceful) {
        cr_master_signal_all(m, SIGTERM, false);
        cr_master_reclaim(m, 0);
    }
    if (m->stop_asked) { /* the loop stops the server instead */
        cr_generation_free(g);
        free(g);
        return;
    }
    cr_master_swap(m, g);
    m->respawns = 0;
    m->fast_deaths = 0;
    start = m->srv->gen->policy.start_processes;
    while (start-- > 0 && cr_master_spawn(m) == 0)
        ;
    /* Only then are the old children told to finish the connections they
     * hold and exit, so that someone accepts all along; the listeners stay
     * open, so no connection is refused. */
    if (graceful)
        cr_master_signal_all(m, SIGUSR1, true);
}

/* ---- the loop ---- */

/* A graceful stop takes no new connection, yet every client whose connect
 * succeeded must be answered: closing the listeners would reset those the
 * kernel completed but no child accepted yet. A filter that drops SYNs
 * stops new handshakes (those clients are refused once the last process
 * closes the socket) and lets the ACKs of handshakes under way through;
 * the children then accept what is queued (cr_child_accept_pending). Unix
 * sockets take no filter: their queue is served the same way, and a client
 * that connects in between is reset. */
static void cr_master_refuse_new(cr_server *srv)
{
    static struct sock_filter drop_syn[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),           /* the TCP header's flags */
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x02, 0, 1), /* SYN */
        BPF_STMT(BPF_RET | BPF_K, 0),                     /* drop */
        BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),           /* keep */
    };
    const struct sock_fprog prog = {sizeof(drop_syn) / sizeof(drop_syn[0]), drop_syn};
    const cr_listeners *ls = &srv->listeners;

    for (size_t i = 0; i < ls->count; i++) {
        if (strncmp(ls->items[i].name, "unix:", 5) == 0)
            continue;
        if (setsockopt(ls->items[i].fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) != 0)
            cr_log_errno(CR_LOG_WARN, errno, "cannot stop new connections on %s",
                         ls->items[i].name);
    }
}

static void cr_master_shutdown(cr_master *m, bool graceful)
{
    cr_server *srv = m->srv;

    if (graceful) {
        cr_log(CR_LOG_NOTICE, "graceful stop: finishing requests in flight");
        cr_master_refuse_new(srv);
        cr_master_signal_all(m, SIGWINCH, false);
        cr_listeners_close(&srv->listeners, 1);
        cr_master_reclaim(
            m, srv->gen->cfg.timeouts.graceful > 0 ? 1000LL * srv->gen->cfg.timeouts.graceful : -1);
    } else {
        cr_log(CR_LOG_NOTICE, "stopping");
        cr_master_signal_all(m, SIGTERM, false);
        cr_master_reclaim(m, 0);
    }
    cr_listeners_close(&srv->listeners, 1);
    cr_pidfile_remove(m);
    cr_log(CR_LOG_NOTICE, "stopped");
}

static void cr_master_loop(cr_master *m)
{
    for (;;) {
        int tick = m->respawns > 0 ? 100 : 1000;
        int sig = cr_master_wait_signal(m, tick);

        switch (sig) {
        case SIGTERM:
        case SIGINT:
            cr_master_shutdown(m, false);
            return;
        case SIGWINCH:
            cr_master_shutdown(m, true);
            return;
        case SIGHUP:
            cr_master_restart(m, false);
            break;
        case SIGUSR1:
            cr_master_restart(m, true);
            break;
        case SIGUSR2:
            cr_master_reopen_logs(m);
            break;
        default:
            break;
        }
        if (m->stop_asked) { /* a TERM during a full restart */
            cr_master_shutdown(m, false);
            return;
        }
        cr_master_reap(m, false);
        cr_master_maintain(m);
    }
}

/* ---- start ---- */

/* The parent stays until the master says it started, so `corral` exits
 * non-zero when start-up fails after the fork. */
static int cr_daemonize(cr_master *m)
{
    int pipefd[2], devnull;
    pid_t pid;
    char ok;

    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        perror("corral: pipe");
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        perror("corral: fork");
        return -1;
    }
    if (pid > 0) {
        close(pipefd[1]);
        if (read(pipefd[0], &ok, 1) == 1)
            exit(0);
        fprintf(stderr, "corral: start-up failed; see %s\n", m->srv->gen->cfg.log.error);
        exit(1);
    }
    close(pipefd[0]);
    m->ready_fd = pipefd[1];
    if (setsid() < 0)
        return -1;
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 || dup2(devnull, STDOUT_FILENO) < 0)
        return -1;
    if (cr_error_log_fd() >= 0 && dup2(devnull, STDERR_FILENO) < 0)
        return -1;
    close(devnull);
    return 0;
}

static void cr_master_ready(cr_master *m)
{
    if (m->ready_fd < 0)
        return;
    (void)!write(m->ready_fd, "1", 1);
    close(m->ready_fd);
    m->ready_fd = -1;
}

static int cr_master_scoreboard(cr_master *m)
{
    cr_server *srv = m->srv;
    const cr_mpm_policy *pol = &srv->gen->policy;
    /* Room for a second generation still finishing during a graceful
     * restart. */
    uint32_t procs = (uint32_t)pol->max_processes * 2 + 2;

    if (cr_scoreboard_create(&srv->sb, srv->gen->cfg.scoreboard, procs,
                             (uint32_t)pol->threads_per_child, srv->gen->mpm->name) != 0) {
        cr_log_errno(CR_LOG_ERROR, errno, "cannot create the scoreboard %s",
                     srv->gen->cfg.scoreboard);
        return -1;
    }
    srv->sb.running_generation = srv->gen->number;
    cr_logs_follow(&srv->sb.hdr->log_epoch);
    return cr_child_table_init(&m->kids, procs);
}

/* At the end, with the pidfile: corralctl takes a missing scoreboard for a
 * stopped server. */
static void cr_master_scoreboard_remove(cr_master *m)
{
    cr_logs_follow(NULL);
    cr_scoreboard_destroy(&m->srv->sb);
    cr_child_table_free(&m->kids);
}

static int cr_master_block_signals(cr_master *m)
{
    static const int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH};
    struct sigaction ign = {.sa_handler = SIG_IGN};

    sigemptyset(&m->signals);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaddset(&m->signals, sigs[i]);
    sigemptyset(&ign.sa_mask);
    if (sigaction(SIGPIPE, &ign, NULL) != 0)
        return -1;
    return pthread_sigmask(SIG_BLOCK, &m->signals, NULL);
}

static int cr_master_single(cr_master *m)
{
    cr_server *srv = m->srv;
    int status;

    cr_scoreboard_claim(&srv->sb, 0, getpid(), srv->gen->number,
                        (uint32_t)srv->gen->policy.threads_per_child);
    cr_log(CR_LOG_NOTICE, "single-process mode (-X), mpm %s", srv->gen->cfg.mpm);
    status = cr_child_run(srv, 0);
    cr_listeners_close(&srv->listeners, 1);
    cr_pidfile_remove(m);
    cr_master_scoreboard_remove(m);
    return status;
}

int cr_master_run(cr_server *srv, const cr_options *opt)
{
    cr_master m = {.srv = srv, .opt = opt, .spawn_rate = 1, .ready_fd = -1};
    const cr_config *cfg = &srv->gen->cfg;

    srv->access_log = -1;
    if (cr_master_block_signals(&m) != 0 || cr_master_open_logs(srv) != 0)
        return 1;
    /* Start-up errors go to the terminal as well as the log; once running,
     * only a foreground server on a terminal keeps echoing. */
    cr_error_log_mirror_stderr(strcmp(cfg->log.error, "-") != 0);
    if (cr_pidfile_check(cfg->pidfile) != 0 || cr_master_listen(srv) != 0)
        return 1;
    if (!opt->foreground && !opt->single_process && cr_daemonize(&m) != 0) {
        cr_log_errno(CR_LOG_ERROR, errno, "cannot become a daemon");
        return 1;
    }
    if (cr_pidfile_write(&m) != 0 || cr_master_scoreboard(&m) != 0)
        goto fail;
    cr_log(CR_LOG_NOTICE, "corral %s (mpm %s) serving on %s%s, pid %ld", CR_VERSION, cfg->mpm,
           cfg->listen[0], cfg->nlisten > 1 ? " and more" : "", (long)getpid());
    if (opt->single_process)
        return cr_master_single(&m);
    for (int i = 0; i < srv->gen->policy.start_processes; i++)
        if (cr_master_spawn(&m) != 0)
            goto fail;
    cr_master_ready(&m);
    cr_error_log_mirror_stderr(opt->foreground && isatty(STDERR_FILENO) &&
                               strcmp(cfg->log.error, "-") != 0);
    cr_master_loop(&m);
    cr_master_scoreboard_remove(&m);
    return 0;
fail:
    cr_master_signal_all(&m, SIGTERM, false);
    cr_master_reclaim(&m, 0);
    cr_listeners_close(&srv->listeners, 1);
    cr_pidfile_remove(&m);
    cr_master_scoreboard_remove(&m);
    return 1;
}
