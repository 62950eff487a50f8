/* Where the error log goes: a file opened in the master before fork (and
 * re-opened on restart), or stderr. The logging calls themselves are the
 * public ones in corral/log.h. */
#ifndef CR_ERROR_LOG_H
#define CR_ERROR_LOG_H

#include <stdbool.h>

/* Opens path ("-" for stderr) for appending and makes it the error log;
 * the previous file is closed. Returns 0, or -1 with errno set. */
int cr_error_log_open(const char *path, int level);

/* Also copy messages to stderr (foreground runs). */
void cr_error_log_mirror_stderr(bool on);

/* Descriptor of the current log file, -1 for stderr. */
int cr_error_log_fd(void);

#endif
