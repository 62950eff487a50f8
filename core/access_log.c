#include "access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "corral/log.h"
#include "error_log.h"
#include "http_date.h"

/* The last log epoch this process's access log followed (error_log.h). */
static _Atomic uint32_t cr_access_seen;

int cr_access_log_open(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

int cr_access_log_reopen(int fd, const char *path, uid_t owner, uint32_t epoch)
{
    atomic_store(&cr_access_seen, epoch);
    return cr_log_reopen_fd(fd, path, owner);
}

/* Before each line: follow a reopen the master asked for. One thread of
 * the child does it; the others keep writing to whichever file the
 * descriptor holds at that instant. */
static void cr_access_log_follow(int fd, const cr_conn *c)
{
    const char *path;

    if (!cr_logs_epoch_moved(&cr_access_seen))
        return;
    path = cr_conn_config(c)->log.access;
    if (path != NULL && cr_log_reopen_fd(fd, path, (uid_t)-1) != 0)
        cr_log_errno(CR_LOG_ERROR, errno,
                     "cannot reopen the access log %s; still writing to the old file", path);
}

/* Copies s into out, escaping quotes, backslashes and control bytes so a
 * client cannot forge log lines. */
static size_t cr_log_escape(char *out, size_t cap, cr_str s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;

    if (s.len == 0 && cap > 1) {
        out[0] = '-';
        return 1;
    }
    for (size_t i = 0; i < s.len && n + 4 < cap; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];

        if (ch == '"' || ch == '\\') {
            out[n++] = '\\';
            out[n++] = (char)ch;
        } else if (ch < 32 || ch >= 127) {
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[ch >> 4];
            out[n++] = hex[ch & 15];
        } else {
            out[n++] = (char)ch;
        }
    }
    return n;
}

static cr_str cr_header_or_empty(const cr_conn *c, const char *name)
{
    const cr_str *v = c->req.headers != NULL ? cr_request_header(&c->req, name) : NULL;

    return v != NULL ? *v : (cr_str){"", 0};
}

void cr_access_log_write(int fd, const cr_conn *c)
{
    char line[4096], bytes[24];
    size_t n;
    int len;

    if (fd < 0)
        return;
    cr_access_log_follow(fd, c);
    n = (size_t)snprintf(line, sizeof(line), "%s - - [%s] \"", c->remote_addr, cr_log_date_now());
    if (c->req.method_name.len) {
        n += cr_log_escape(line + n, 64, c->req.method_name);
        line[n++] = ' ';
        n += cr_log_escape(line + n, 1024, c->req.target);
        n += (size_t)snprintf(line + n, 16, " HTTP/1.%d", c->req.version_minor);
    } else {
        line[n++] = '-';
    }
    if (c->bytes_sent)
        snprintf(bytes, sizeof(bytes), "%llu", (unsigned long long)c->bytes_sent);
    else
        strcpy(bytes, "-");
    n += (size_t)snprintf(line + n, 64, "\" %d %s \"", c->resp.status, bytes);
    n += cr_log_escape(line + n, 768, cr_header_or_empty(c, "referer"));
    line[n++] = '"';
    line[n++] = ' ';
    line[n++] = '"';
    n += cr_log_escape(line + n, 768, cr_header_or_empty(c, "user-agent"));
    len = snprintf(line + n, 3, "\"\n");
    (void)!write(fd, line, n + (size_t)len);
}
