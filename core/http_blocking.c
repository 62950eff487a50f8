/* The blocking connection driver of the prefork and worker MPMs: one
 * thread owns the connection from accept to close and waits in ppoll with
 * the timeouts of the config (header, body, keep-alive, write). */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "child.h"
#include "corral/log.h"
#include "http_conn.h"

/* What reading a request ended in, besides a complete one. */
enum {
    CR_CONN_CLOSE = 0, /* close without answering: EOF, idle timeout, stop */
};

#define CR_LINGER_MS    2000
#define CR_LINGER_BYTES (256 * 1024)

/* A suspended request was finished: wake the thread holding it. */
static void cr_blocking_wake(cr_conn *c)
{
    uint64_t one = 1;

    if (write(c->wake_fd, &one, sizeof(one)) != sizeof(one))
        cr_log_errno(CR_LOG_ERROR, errno, "write to a request's wake-up eventfd");
}

static int cr_blocking_send(cr_conn *c, struct iovec *iov, int n)
{
    return cr_conn_send_all(c, iov, n, false) == 0 ? CR_OK : CR_ERROR;
}

/* Timers need no arming: the suspended wait below watches their due times. */
static const cr_conn_driver cr_blocking_driver = {.wake = cr_blocking_wake,
                                                  .send = cr_blocking_send};

static cr_conn *cr_conn_new(cr_child *child, int thread, int fd)
{
    size_t cap = child->gen->cfg.limits.header_bytes + 1;
    cr_conn *c = malloc(sizeof(*c));
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (c == NULL)
        return NULL;
    cr_conn_init(c, child, thread, fd);
    c->t.wait_from = cr_now_ns();
    c->driver = &cr_blocking_driver;
    c->buf = malloc(cap);
    if (c->buf == NULL) {
        free(c);
        return NULL;
    }
    c->cap = cap;
    ss.ss_family = AF_UNSPEC;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        cr_log_errno(CR_LOG_DEBUG, errno, "getpeername");
    cr_conn_set_peer(c, (struct sockaddr *)&ss);
    return c;
}

static void cr_conn_free(cr_conn *c)
{
    cr_conn_cancel_timers(c);
    cr_response_cleanup(&c->resp);
    cr_pool_reset(&c->pool);
    if (c->wake_fd >= 0 && close(c->wake_fd) != 0)
        cr_log_errno(CR_LOG_DEBUG, errno, "close of a wake-up eventfd");
    if (close(c->fd) != 0)
        cr_log_errno(CR_LOG_DEBUG, errno, "close of client socket");
    free(c->buf);
    free(c);
}

/* Reads what is available into the buffer. >0 bytes read, 0 EOF, -1
 * error, CR_AGAIN nothing yet. */
static ssize_t cr_conn_read(cr_conn *c, char *into, size_t room)
{
    ssize_t n = cr_conn_recv(c, into, room);

    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EINTR)
        return CR_AGAIN;
    if (errno != ECONNRESET)
        cr_log_errno(CR_LOG_DEBUG, errno, "read from %s", c->remote_addr);
    return -1;
}

/* Once the child stops gracefully, the wait for a request that has not
 * begun ends within CR_CHILD_GRACEFUL_IDLE_MS (or sooner, as before). */
static void cr_conn_cut_idle_wait(long long *deadline)
{
    long long cut = cr_monotonic_ms() + CR_CHILD_GRACEFUL_IDLE_MS;

    if (cut < *deadline)
        *deadline = cut;
}

/* Waits for the first bytes of a request on a connection that has none
 * (just accepted, or kept alive). A graceful stop only shortens the wait:
 * a client that sends its request meanwhile gets an answer (with
 * Connection: close), not a closed socket. 1 readable, 0 timed out or
 * stopping at once, -1 error. */
static int cr_conn_wait_request(cr_conn *c, long long *deadline)
{
    for (;;) {
        bool graceful = cr_child_stopping(c->child);
        int rc;

        if (graceful)
            cr_conn_cut_idle_wait(deadline);
        rc = cr_child_wait(c->child, c->fd, POLLIN, cr_ms_left(*deadline),
                           graceful ? CR_WAIT_BUSY : CR_WAIT_IDLE);
        if (rc == 1 || rc == 0)
            return rc;
        if (rc == CR_ERROR) {
            cr_log_errno(CR_LOG_ERROR, errno, "poll on client socket");
            return -1;
        }
        if (cr_child_stopping_now(c->child))
            return 0;
    }
}

/* Reads until a whole request head is in the buffer. Returns its length,
 * CR_CONN_CLOSE, or a negative HTTP status to answer with. */
static int cr_conn_read_head(cr_conn *c)
{
    const cr_config *cfg = cr_conn_config(c);
    cr_http_limits limits = {cfg->limits.header_bytes, cfg->limits.uri_bytes};
    bool fresh = c->nrequests == 0;
    long long idle_deadline =
        cr_monotonic_ms() + 1000LL * (fresh ? cfg->timeouts.header : cfg->timeouts.keepalive);
    long long deadline = 0;
    bool try_read = fresh;

    c->scanned = 0;
    for (;;) {
        ssize_t n;
        int rc;

        if (c->len > 0) {
            rc = cr_http_parse_head(c->buf, c->len, &c->scanned, &limits, &c->head);
            if (rc != 0)
                return rc;
            if (deadline == 0) {
                deadline = cr_monotonic_ms() + 1000LL * cfg->timeouts.header;
                cr_child_set_state(c->child, c->thread, CR_SLOT_READ);
            }
            if (c->len >= c->cap)
                return -431;
        }
        if (!try_read) {
            rc = c->len ? cr_conn_wait(c, POLLIN, deadline, false)
                        : cr_conn_wait_request(c, &idle_deadline);
            if (rc < 0)
                return CR_CONN_CLOSE;
            if (rc == 0)
                return c->len && !cr_child_stopping_now(c->child) ? -408 : CR_CONN_CLOSE;
        }
        try_read = false;
        n = cr_conn_read(c, c->buf + c->len, c->cap - c->len);
        if (n == 0 || n == -1)
            return CR_CONN_CLOSE;
        if (n > 0)
            c->len += (size_t)n;
    }
}

static int cr_conn_send_file(cr_conn *c)
{
    long long deadline = cr_monotonic_ms() + 1000LL * cr_conn_config(c)->timeouts.write;
    cr_response *resp = &c->resp;
    off_t off = resp->file_off;
    size_t left = resp->file_len;

    while (left > 0) {
        ssize_t n = sendfile(c->fd, resp->file_fd, &off, left);

        if (n > 0) {
            left -= (size_t)n;
            c->bytes_sent += (uint64_t)n;
            deadline = cr_monotonic_ms() + 1000LL * cr_conn_config(c)->timeouts.write;
            continue;
        }
        if (n == 0) {
            cr_log(CR_LOG_ERROR, "file for %.*s shrank while being sent", (int)c->req.target.len,
                   c->req.target.ptr);
            return -1;
        }
        if (errno != EAGAIN && errno != EINTR)
            return -1;
        if (cr_conn_wait(c, POLLOUT, deadline, false) != 1)
            return -1;
    }
    return 0;
}

/* The end of a streamed response: the rest of the body, the last chunk. */
static int cr_conn_end_stream(cr_conn *c)
{
    struct iovec iov[CR_RESPONSE_MAX_IOV + CR_RESPONSE_FRAMING_IOV];
    int n;

    if (c->req.method == CR_METHOD_HEAD || cr_status_has_no_body(c->resp.status))
        return 0;
    n = cr_response_chunk_iov(&c->resp, iov, true);
    c->bytes_sent += c->resp.body_len;
    return n > 0 ? cr_conn_send_all(c, iov, n, false) : 0;
}

static int cr_conn_send_response(cr_conn *c)
{
    cr_response *resp = &c->resp;
    struct iovec iov[CR_RESPONSE_MAX_IOV + 1];
    bool with_body = c->req.method != CR_METHOD_HEAD && !cr_status_has_no_body(resp->status);
    char small[1024], *head = small;
    size_t hl;
    int niov = 1;

    if (resp->streaming)
        return cr_conn_end_stream(c);
    hl = cr_http_format_head(c, small, sizeof(small));
    if (hl == 0) {
        size_t cap = resp->headers_len + 512;

        head = cr_pool_alloc(&c->pool, cap);
        if (head == NULL || (hl = cr_http_format_head(c, head, cap)) == 0)
            return -1;
    }
    iov[0].iov_base = head;
    iov[0].iov_len = hl;
    if (with_body) {
        memcpy(&iov[1], resp->body, sizeof(struct iovec) * (size_t)resp->nbody);
        niov += resp->nbody;
    }
    if (cr_conn_send_all(c, iov, niov, with_body && resp->file_fd >= 0) != 0)
        return -1;
    if (with_body)
        c->bytes_sent += resp->body_len;
    if (with_body && resp->file_fd >= 0)
        return cr_conn_send_file(c);
    return 0;
}

/* Answers 100 Continue when the client waits for it before sending. */
static int cr_conn_continue(cr_conn *c, size_t have, size_t want)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct iovec iov = {(void *)cont, sizeof(cont) - 1};

    if (!c->head.expect_continue || c->head.version_minor == 0 || have >= want)
        return 0;
    c->head.expect_continue = false;
    return cr_conn_send_all(c, &iov, 1, false);
}

/* Reads into dst[have..want) with the body timeout. 0, or -1 to close. */
static int cr_conn_read_exact(cr_conn *c, char *dst, size_t have, size_t want)
{
    long long deadline = cr_monotonic_ms() + 1000LL * cr_conn_config(c)->timeouts.body;

    while (have < want) {
        ssize_t n = cr_conn_read(c, dst + have, want - have);

        if (n == 0 || n == -1)
            return -1;
        if (n > 0) {
            have += (size_t)n;
            deadline = cr_monotonic_ms() + 1000LL * cr_conn_config(c)->timeouts.body;
            continue;
        }
        if (cr_conn_wait(c, POLLIN, deadline, false) != 1)
            return -1;
    }
    return 0;
}

/* A Content-Length body: kept in the read buffer when it fits there,
 * otherwise in one pool allocation. Returns 0, an HTTP status, or -1. */
static int cr_conn_read_length_body(cr_conn *c, size_t *consumed)
{
    size_t want = (size_t)c->head.content_length;
    size_t avail = c->len - c->head_len;
    size_t have = avail < want ? avail : want;
    char *body;

    if (c->head.content_length > (int64_t)cr_conn_config(c)->limits.body_bytes)
        return 413;
    if (cr_conn_continue(c, have, want) != 0)
        return -1;
    if (c->head_len + want <= c->cap) {
        body = c->buf + c->head_len;
        if (cr_conn_read_exact(c, body, have, want) != 0)
            return -1;
        if (c->len < c->head_len + want)
            c->len = c->head_len + want;
        *consumed = c->head_len + want;
    } else {
        body = cr_pool_alloc(&c->pool, want);
        if (body == NULL)
            return 500;
        memcpy(body, c->buf + c->head_len, have);
        if (cr_conn_read_exact(c, body, have, want) != 0)
            return -1;
        *consumed = c->head_len + have;
    }
    c->req.body = (cr_str){body, want};
    return 0;
}

/* A chunked body: decoded in place in the read buffer, collected into a
 * pool buffer; bytes of a pipelined request that follow stay after the
 * head. Returns 0, an HTTP status, or -1. */
static int cr_conn_read_chunked_body(cr_conn *c, size_t *consumed)
{
    long long deadline = cr_monotonic_ms() + 1000LL * cr_conn_config(c)->timeouts.body;
    cr_chunked_decoder d = {0};
    char *body = NULL;
    size_t blen = 0, bcap = 0;

    if (cr_conn_continue(c, 0, 1) != 0)
        return -1;
    for (;;) {
        size_t n = c->len - c->head_len;
        int rc = cr_chunked_decode(&d, c->buf + c->head_len, &n);
        int st;

        if (rc == CR_ERROR)
            return 400;
        st = cr_body_append(c, &body, &blen, &bcap, c->buf + c->head_len, n);
        if (st != 0)
            return st;
        if (rc >= 0) {
            memmove(c->buf + c->head_len, c->buf + c->head_len + n, (size_t)rc);
            c->len = c->head_len + (size_t)rc;
            break;
        }
        c->len = c->head_len;
        for (;;) {
            ssize_t got = cr_conn_read(c, c->buf + c->len, c->cap - c->len);

            if (got == 0 || got == -1)
                return -1;
            if (got > 0) {
                c->len += (size_t)got;
                deadline = cr_monotonic_ms() + 1000LL * cr_conn_config(c)->timeouts.body;
                break;
            }
            if (cr_conn_wait(c, POLLIN, deadline, false) != 1)
                return -1;
        }
    }
    *consumed = c->head_len;
    c->req.body = (cr_str){body != NULL ? body : "", blen};
    return 0;
}

/* The path, then the body. Returns 0, an HTTP status, or -1 to close. */
static int cr_conn_prepare_request(cr_conn *c, size_t *consumed)
{
    int rc = cr_conn_begin_request(c);

    *consumed = c->head_len;
    if (rc != 0)
        return rc;
    if (c->head.content_length > (int64_t)cr_conn_config(c)->limits.body_bytes)
        return 413;
    if (cr_conn_streams_body(c)) {
        cr_body_stream_begin(c);
        return 0;
    }
    if (c->head.chunked)
        return cr_conn_read_chunked_body(c, consumed);
    if (c->head.content_length > 0)
        return cr_conn_read_length_body(c, consumed);
    return 0;
}

/* Closes our side first and drains what the client still sends, so it
 * reads our answer instead of a reset. */
static void cr_conn_linger(cr_conn *c)
{
    long long deadline = cr_monotonic_ms() + CR_LINGER_MS;
    size_t drained = 0;
    char sink[4096];

    cr_child_set_state(c->child, c->thread, CR_SLOT_CLOSING);
    if (shutdown(c->fd, SHUT_WR) != 0)
        return;
    while (drained < CR_LINGER_BYTES) {
        ssize_t n = cr_conn_read(c, sink, sizeof(sink));

        if (n == 0 || n == -1)
            return;
        if (n > 0) {
            drained += (size_t)n;
            continue;
        }
        if (cr_conn_wait(c, POLLIN, deadline, false) != 1)
            return;
    }
}

/* Consumes a wake-up; true when there was one. */
static bool cr_conn_take_wake(cr_conn *c)
{
    uint64_t n;

    return read(c->wake_fd, &n, sizeof(n)) == sizeof(n);
}

/* The finish that beat a drop is about to write the eventfd: the request
 * (and the descriptor) must outlive that write. */
static void cr_conn_wait_wake(cr_conn *c)
{
    struct pollfd p = {.fd = c->wake_fd, .events = POLLIN};

    while (!cr_conn_take_wake(c))
        if (poll(&p, 1, -1) < 0 && errno != EINTR) {
            cr_log_errno(CR_LOG_CRIT, errno, "poll on a wake-up eventfd");
            return;
        }
}

/* Holds the thread while the handler's request is suspended: runs its
 * timers, notices the client leaving and an immediate stop (a graceful one
 * lets the request finish). True once finished, false when dropped. */
static bool cr_conn_wait_finished(cr_conn *c)
{
    for (;;) {
        struct pollfd p[2] = {{.fd = c->wake_fd, .events = POLLIN},
                              {.fd = c->fd, .events = POLLRDHUP}};
        long long next = cr_conn_next_timer(c);
        int rc = cr_child_poll(c->child, p, 2, next < 0 ? -1 : cr_ms_left(next), CR_WAIT_BUSY);

        if (rc == 1 && (p[0].revents & POLLIN) && cr_conn_take_wake(c))
            return true;
        if (rc == CR_AGAIN && !cr_child_stopping_now(c->child))
            continue; /* a graceful stop: finish what we hold */
        if (rc == CR_ERROR)
            cr_log_errno(CR_LOG_ERROR, errno, "poll on a suspended request");
        if (rc == CR_AGAIN || rc == CR_ERROR || (rc == 1 && p[1].revents)) {
            if (cr_conn_abort(c))
                return false;
            cr_conn_wait_wake(c);
            return true;
        }
        if (rc == 0)
            cr_conn_run_timers(c, cr_monotonic_ms());
    }
}

/* Runs the handlers; a request they suspend is waited for here. False
 * when it was dropped and the connection is to be closed. */
static bool cr_conn_handle(cr_conn *c)
{
    if (cr_http_run_handlers(c) != CR_SUSPENDED)
        return true;
    if (c->wake_fd < 0) {
        c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (c->wake_fd < 0) {
            cr_log_errno(CR_LOG_ERROR, errno, "eventfd for a suspended request");
            /* Nothing can wake us: the module's finish must find no one. */
            if (cr_conn_park(c) && cr_conn_abort(c))
                return false;
            return true;
        }
    }
    if (!cr_conn_park(c))
        return true;
    return cr_conn_wait_finished(c);
}

/* Serves one request. Returns true when the connection stays open. */
static bool cr_conn_serve_one(cr_conn *c)
{
    size_t consumed = 0;
    int rc = cr_conn_read_head(c);
    bool sent;

    if (rc == CR_CONN_CLOSE)
        return false;
    cr_child_set_state(c->child, c->thread, CR_SLOT_WRITE);
    if (rc < 0) {
        c->keep_alive = false;
        cr_http_error_page(c, -rc);
    } else {
        c->head_len = (size_t)rc;
        cr_conn_note_request(c);
        rc = cr_conn_prepare_request(c, &consumed);
        if (rc < 0)
            return false;
        c->t.parsed = c->t.handler_start = cr_now_ns();
        c->keep_alive = rc == 0 && cr_conn_may_keep_alive(c);
        if (rc > 0)
            cr_http_error_page(c, rc);
        else if (!cr_conn_handle(c))
            return false;
        c->t.handler_end = cr_now_ns();
        if (c->body_stream) {
            cr_body_stream_end(c);
            consumed = c->consumed;
        }
    }
    sent = !c->send_failed && cr_conn_send_response(c) == 0;
    cr_conn_account(c);
    /* Drain what the client still sends so it reads our answer, not a
     * reset: after an error, a body the handler left unread, or when we
     * close a connection the client meant to keep (a stopping child), so
     * a request it sent meanwhile does not destroy this answer. */
    if (sent && !c->keep_alive &&
        (rc != 0 || (c->body_stream && !c->body_ended) || c->head.keep_alive))
        cr_conn_linger(c);
    if (!sent || !c->keep_alive)
        return false;

    /* Keep what a pipelining client already sent after this request. */
    memmove(c->buf, c->buf + consumed, c->len - consumed);
    c->len -= consumed;
    return true;
}

void cr_http_serve_blocking(cr_child *child, int thread, int fd)
{
    cr_conn *c = cr_conn_new(child, thread, fd);

    if (c == NULL) {
        cr_log(CR_LOG_ERROR, "out of memory for a connection");
        close(fd);
        return;
    }
    cr_child_set_state(child, thread, CR_SLOT_READ);
    while (cr_conn_serve_one(c)) {
        cr_conn_next_request(c);
        cr_child_set_state(child, thread, CR_SLOT_KEEPALIVE);
    }
    cr_conn_free(c);
}
