/* Cached timestamps for the Date header and the access log. Each thread
 * formats them at most once a second, so a request costs a compare, not a
 * strftime. */
#ifndef CR_HTTP_DATE_H
#define CR_HTTP_DATE_H

#include <stddef.h>
#include <time.h>

#define CR_HTTP_DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */
#define CR_LOG_DATE_LEN  26 /* "06/Nov/1994:08:49:37 +0000" */

/* The current time as an IMF-fixdate (RFC 9110 5.6.7), NUL-terminated. */
const char *cr_http_date_now(void);

/* The current time for the access log, NUL-terminated. */
const char *cr_log_date_now(void);

/* Formats t as an IMF-fixdate into buf (at least CR_HTTP_DATE_LEN + 1). */
void cr_http_date_format(time_t t, char *buf);

/* Seconds since the epoch, from a clock that is cheap to read. */
time_t cr_now(void);

#endif
