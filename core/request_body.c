/* The request body as the handler reads it (cr_request_read). For a route
 * flagged CR_MODULE_STREAM_BODY the core leaves the body on the socket and
 * the handler pulls it through the connection's read buffer: bytes after
 * the head are taken first, then reads with the body timeout; a chunked
 * body is decoded in place. Elsewhere the body was collected before the
 * handler and is read from r->body. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "corral/log.h"
#include "http_conn.h"

bool cr_conn_streams_body(const cr_conn *c)
{
    const cr_router *rt = &c->child->gen->router;
    int i = cr_router_match(rt, 0, c->req.host, c->req.path);

    return i >= 0 && rt->routes[i].stream_body;
}

void cr_body_stream_begin(cr_conn *c)
{
    c->body_stream = true;
    c->body_dpos = c->body_dend = c->head_len;
    c->body_left =
        c->head.chunked || c->head.content_length <= 0 ? 0 : (uint64_t)c->head.content_length;
    c->body_ended = !c->head.chunked && c->body_left == 0;
    memset(&c->chunked, 0, sizeof(c->chunked));
}

/* Turns raw input at buf[dend, len) into deliverable bytes. 0, or -1 on
 * malformed chunks. */
static int cr_body_take_input(cr_conn *c)
{
    size_t raw = c->len - c->body_dend;

    if (!c->head.chunked) {
        size_t take = raw < c->body_left ? raw : (size_t)c->body_left;

        c->body_dend += take;
        c->body_left -= take;
        c->body_ended = c->body_left == 0;
        return 0;
    }
    if (raw == 0)
        return 0;
    {
        size_t n = raw;
        int rc = cr_chunked_decode(&c->chunked, c->buf + c->body_dend, &n);

        if (rc == CR_ERROR) {
            cr_log(CR_LOG_INFO, "%s: malformed chunked body", c->remote_addr);
            errno = EPROTO;
            return -1;
        }
        c->len = c->body_dend + n + (rc > 0 ? (size_t)rc : 0);
        c->body_dend += n;
        c->body_ended = rc >= 0;
    }
    return 0;
}

/* Reads more of the body from the socket into the buffer after the head,
 * keeping what is there. 0, or -1 when the client is gone or too slow. */
static int cr_body_fill(cr_conn *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    const cr_config *cfg = cr_conn_config(c);
    long long deadline = cr_monotonic_ms() + 1000LL * cfg->timeouts.body;
    size_t raw = c->len - c->body_dend;

    /* The head stays where it is: the request's strings point into it. */
    memmove(c->buf + c->head_len, c->buf + c->body_dend, raw);
    c->body_dpos = c->body_dend = c->head_len;
    c->len = c->head_len + raw;
    if (c->head.expect_continue && c->head.version_minor > 0) {
        struct iovec iov = {(void *)cont, sizeof(cont) - 1};

        c->head.expect_continue = false;
        if (cr_conn_send_all(c, &iov, 1, false) != 0)
            return -1;
    }
    for (;;) {
        ssize_t n = read(c->fd, c->buf + c->len, c->cap - c->len);

        if (n > 0) {
            c->len += (size_t)n;
            return 0;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            errno = ECONNRESET;
            return -1;
        }
        if (cr_conn_wait(c, POLLIN, deadline, false) != 1) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
}

static ssize_t cr_body_read_buffered(cr_conn *c, void *buf, size_t len)
{
    size_t left = c->req.body.len - c->body_read;

    if (len > left)
        len = left;
    if (len == 0)
        return 0; /* also no body at all: body.ptr may be NULL */
    memcpy(buf, c->req.body.ptr + c->body_read, len);
    c->body_read += len;
    return (ssize_t)len;
}

ssize_t cr_request_read(cr_request *r, void *buf, size_t len)
{
    cr_conn *c = cr_conn_of(r);

    if (!c->body_stream)
        return cr_body_read_buffered(c, buf, len);
    for (;;) {
        size_t have = c->body_dend - c->body_dpos;

        if (have > 0) {
            size_t limit = cr_conn_config(c)->limits.body_bytes;

            if (c->body_read >= limit) {
                cr_log(CR_LOG_INFO, "%s: request body over limits.body_bytes", c->remote_addr);
                errno = EMSGSIZE;
                return CR_ERROR;
            }
            if (len > have)
                len = have;
            if (len > limit - c->body_read)
                len = limit - c->body_read;
            memcpy(buf, c->buf + c->body_dpos, len);
            c->body_dpos += len;
            c->body_read += len;
            return (ssize_t)len;
        }
        if (c->body_ended)
            return 0;
        if (cr_body_take_input(c) != 0)
            return CR_ERROR;
        if (c->body_dend > c->body_dpos || c->body_ended)
            continue;
        if (cr_body_fill(c) != 0)
            return CR_ERROR;
    }
}

void cr_body_stream_end(cr_conn *c)
{
    if (!c->body_stream)
        return;
    /* Where the next request starts is known only once the body ended. */
    if (!c->body_ended)
        c->keep_alive = false;
    c->consumed = c->body_dend;
}
