#include "error_log.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "access_log.h"
#include "corral/log.h"

/* The configured level. Every cr_log call reads it, through
 * cr_log_enabled, in whatever file it is: the calls have no argument to
 * carry it, and the error log is one per process anyway. */
static int cr_log_max_level = CR_LOG_INFO;

static int cr_error_log = -1;   /* -1: stderr */
static char *cr_error_log_path; /* its file, for reopening; NULL for stderr */
static bool cr_error_mirror;

/* The scoreboard's log epoch (NULL before there is one) and the last value
 * the error log of this process followed. Set in the master before any
 * fork, so children inherit both. */
static _Atomic uint32_t *cr_log_epoch;
static _Atomic uint32_t cr_error_seen;

static const char *const cr_level_names[] = {"emerg", "alert",  "crit", "error",
                                             "warn",  "notice", "info", "debug"};

int cr_error_log_open(const char *path, int level)
{
    char *copy = NULL;
    int fd = -1;

    if (strcmp(path, "-") != 0) {
        copy = strdup(path);
        if (copy == NULL)
            return -1;
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            free(copy);
            return -1;
        }
    }
    if (cr_error_log >= 0)
        close(cr_error_log);
    cr_error_log = fd;
    free(cr_error_log_path);
    cr_error_log_path = copy;
    cr_log_max_level = level;
    return 0;
}

void cr_error_log_set_level(int level)
{
    cr_log_max_level = level;
}

bool cr_log_enabled(cr_log_level level)
{
    return (int)level <= cr_log_max_level;
}

void cr_error_log_mirror_stderr(bool on)
{
    cr_error_mirror = on;
}

int cr_error_log_fd(void)
{
    return cr_error_log;
}

/* ---- reopening ---- */

void cr_logs_follow(_Atomic uint32_t *epoch)
{
    cr_log_epoch = epoch;
}

uint32_t cr_logs_epoch(void)
{
    return cr_log_epoch != NULL ? atomic_load_explicit(cr_log_epoch, memory_order_acquire) : 0;
}

bool cr_logs_epoch_moved(_Atomic uint32_t *seen)
{
    uint32_t now = cr_logs_epoch();
    uint32_t old = atomic_load_explicit(seen, memory_order_relaxed);

    return now != old && atomic_compare_exchange_strong(seen, &old, now);
}

int cr_log_reopen_fd(int fd, const char *path, uid_t owner)
{
    int nfd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    int saved;

    if (nfd < 0)
        return -1;
    if ((owner == (uid_t)-1 || fchown(nfd, owner, (gid_t)-1) == 0) &&
        dup3(nfd, fd, O_CLOEXEC) >= 0) {
        close(nfd);
        return 0;
    }
    saved = errno;
    close(nfd);
    errno = saved;
    return -1;
}

/* The children's user when they drop root, so that the files the master
 * creates stay writable for them (nginx does the same); -1 otherwise. */
static uid_t cr_logs_owner(const char *user)
{
    struct passwd *pw;

    if (user == NULL || geteuid() != 0)
        return (uid_t)-1;
    pw = getpwnam(user);
    return pw != NULL ? pw->pw_uid : (uid_t)-1;
}

void cr_logs_reopen(int access_fd, const char *access_path, const char *user)
{
    uid_t owner = cr_logs_owner(user);
    uint32_t next = cr_logs_epoch() + 1;

    /* The files first, the epoch last: a child must find them created
     * (and handed to its user) when it follows. Until the epoch moves, an
     * error logged here does not make this process follow it. */
    if (cr_error_log >= 0 && cr_log_reopen_fd(cr_error_log, cr_error_log_path, owner) != 0)
        cr_log_errno(CR_LOG_ERROR, errno,
                     "cannot reopen the error log %s; still writing to the old file",
                     cr_error_log_path);
    if (access_fd >= 0 && access_path != NULL &&
        cr_access_log_reopen(access_fd, access_path, owner, next) != 0)
        cr_log_errno(CR_LOG_ERROR, errno,
                     "cannot reopen the access log %s; still writing to the old file", access_path);
    if (cr_log_epoch != NULL)
        atomic_store_explicit(cr_log_epoch, next, memory_order_release);
    atomic_store(&cr_error_seen, next);
    cr_log(CR_LOG_NOTICE, "logs reopened (log epoch %u)", (unsigned)next);
}

/* Before each line: follow a reopen the master asked for. */
static void cr_error_log_follow(void)
{
    if (cr_error_log < 0 || !cr_logs_epoch_moved(&cr_error_seen))
        return;
    /* The error goes to the old file, which is still open. */
    if (cr_log_reopen_fd(cr_error_log, cr_error_log_path, (uid_t)-1) != 0)
        cr_log_errno(CR_LOG_ERROR, errno,
                     "cannot reopen the error log %s; still writing to the old file",
                     cr_error_log_path);
}

void cr_log_write(cr_log_level level, int errnum, const char *fmt, ...)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    size_t n;
    va_list ap;
    int saved = errno;

    cr_error_log_follow();
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    n = strftime(line, sizeof(line), "[%Y-%m-%d %H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ld] [%s] [pid %ld] ",
                          (long)tv.tv_usec / 1000, cr_level_names[level], (long)getpid());
    va_start(ap, fmt);
    if (n < sizeof(line))
        n += (size_t)vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (errnum != 0 && n < sizeof(line)) {
        char ebuf[128];

        n += (size_t)snprintf(line + n, sizeof(line) - n, ": %s",
                              strerror_r(errnum, ebuf, sizeof(ebuf)));
    }
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';

    /* One write per line so lines from several processes never interleave. */
    if (cr_error_log >= 0 && write(cr_error_log, line, n) < 0 && !cr_error_mirror)
        (void)!write(STDERR_FILENO, line, n);
    if (cr_error_log < 0 || cr_error_mirror)
        (void)!write(STDERR_FILENO, line, n);
    errno = saved;
}
