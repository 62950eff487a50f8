/* The access log in the combined format:
 * host - - [time] "request line" status bytes "referer" "user-agent". */
#ifndef CR_ACCESS_LOG_H
#define CR_ACCESS_LOG_H

#include "http_conn.h"

/* Opens path for appending. Returns the descriptor or -1 with errno. */
int cr_access_log_open(const char *path);

/* Writes one line for the request just answered on c. */
void cr_access_log_write(int fd, const cr_conn *c);

#endif
