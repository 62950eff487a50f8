/* Where the error log goes: a file opened in the master before fork (and
 * re-opened on restart), or stderr. The logging calls themselves are the
 * public ones in corral/log.h.
 *
 * Reopening for logrotate (SIGUSR2 to the master, `corralctl reopen-logs`):
 * the master reopens its logs by name, then bumps a counter in the
 * scoreboard, the log epoch. Every process compares the epoch with the one
 * it last saw before it writes a log line, and on a change reopens its own
 * descriptors by name. Children need no signal for that, so no wait of
 * theirs is ever interrupted; a descriptor is replaced in place (dup3), so
 * threads writing meanwhile never see it closed. */
#ifndef CR_ERROR_LOG_H
#define CR_ERROR_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Opens path ("-" for stderr) for appending and makes it the error log;
 * the previous file is closed. Returns 0, or -1 with errno set. */
int cr_error_log_open(const char *path, int level);

/* Drops messages less severe than level from now on (a cr_log_level; the
 * open above sets it too). */
void cr_error_log_set_level(int level);

/* Also copy messages to stderr (foreground runs). */
void cr_error_log_mirror_stderr(bool on);

/* Descriptor of the current log file, -1 for stderr. */
int cr_error_log_fd(void);

/* The shared log epoch to follow (the scoreboard's), or NULL for none. */
void cr_logs_follow(_Atomic uint32_t *epoch);

/* True once for every change of the shared epoch since *seen, which it
 * updates: the one caller that gets true reopens. */
bool cr_logs_epoch_moved(_Atomic uint32_t *seen);

/* The shared epoch now, 0 when there is none. */
uint32_t cr_logs_epoch(void);

/* Opens path for appending and puts it in place of descriptor fd; with
 * owner != (uid_t)-1 the file is handed to that user, so that children
 * running as that user can reopen it too. 0, or -1 with errno. */
int cr_log_reopen_fd(int fd, const char *path, uid_t owner);

/* In the master: reopens the error log and the access log (descriptor
 * access_fd, -1 for none, of file access_path), handing the files to the
 * children's user when the master runs as root, then bumps the epoch so
 * that every child follows. Errors are logged. */
void cr_logs_reopen(int access_fd, const char *access_path, const char *user);

#endif
