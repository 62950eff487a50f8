#include "error_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "corral/log.h"

int cr_log_max_level = CR_LOG_INFO;

static int cr_error_log = -1; /* -1: stderr */
static bool cr_error_mirror;

static const char *const cr_level_names[] = { "emerg", "alert",  "crit", "error",
                                              "warn",  "notice", "info", "debug" };

int cr_error_log_open(const char *path, int level)
{
    int fd = -1;

    if (strcmp(path, "-") != 0) {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return -1;
    }
    if (cr_error_log >= 0)
        close(cr_error_log);
    cr_error_log = fd;
    cr_log_max_level = level;
    return 0;
}

void cr_error_log_mirror_stderr(bool on)
{
    cr_error_mirror = on;
}

int cr_error_log_fd(void)
{
    return cr_error_log;
}

void cr_log_write(cr_log_level level, int errnum, const char *fmt, ...)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    size_t n;
    va_list ap;
    int saved = errno;

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
