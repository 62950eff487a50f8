/* The error log, for the core, MPMs and modules alike. Messages below the
 * configured level are dropped before formatting. */
#ifndef CORRAL_LOG_H
#define CORRAL_LOG_H

#include <stdbool.h>

typedef enum cr_log_level {
    CR_LOG_EMERG = 0,
    CR_LOG_ALERT,
    CR_LOG_CRIT,
    CR_LOG_ERROR,
    CR_LOG_WARN,
    CR_LOG_NOTICE,
    CR_LOG_INFO,
    CR_LOG_DEBUG,
} cr_log_level;

/* True when messages of this level reach the log (the configured level or
 * a more severe one). */
bool cr_log_enabled(cr_log_level level);

void cr_log_write(cr_log_level level, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Logs fmt at level; cheap when the level is filtered out. */
#define cr_log(level, ...)                                                                         \
    do {                                                                                           \
        if (cr_log_enabled(level))                                                                 \
            cr_log_write((level), 0, __VA_ARGS__);                                                 \
    } while (0)

/* Logs fmt followed by ": " and strerror(errnum). */
#define cr_log_errno(level, errnum, ...)                                                           \
    do {                                                                                           \
        if (cr_log_enabled(level))                                                                 \
            cr_log_write((level), (errnum), __VA_ARGS__);                                          \
    } while (0)

#endif
