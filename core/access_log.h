/* The access log in the combined format:
 * host - - [time] "request line" status bytes "referer" "user-agent".
 * Reopened by name when the log epoch moves (see error_log.h). */
#ifndef CR_ACCESS_LOG_H
#define CR_ACCESS_LOG_H

#include <stdint.h>
#include <sys/types.h>

#include "http_conn.h"

/* Opens path for appending. Returns the descriptor or -1 with errno. */
int cr_access_log_open(const char *path);

/* Reopens path in place of descriptor fd (see cr_log_reopen_fd) and notes
 * epoch as seen: the master, answering a reopen request. 0, or -1 with
 * errno. */
int cr_access_log_reopen(int fd, const char *path, uid_t owner, uint32_t epoch);

/* Writes one line for the request just answered on c; first reopens the
 * file when the log epoch moved. */
void cr_access_log_write(int fd, const cr_conn *c);

#endif
