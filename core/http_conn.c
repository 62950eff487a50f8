#include "http_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/errqueue.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "access_log.h"
#include "child.h"
#include "corral/log.h"

void cr_conn_set_peer(cr_conn *c, const struct sockaddr *sa)
{
    strcpy(c->remote_addr, "-");
    c->remote_port = 0;
    cr_addr_from_sockaddr(&c->peer, sa);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

        inet_ntop(AF_INET, &in->sin_addr, c->remote_addr, sizeof(c->remote_addr));
        c->remote_port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

        inet_ntop(AF_INET6, &in6->sin6_addr, c->remote_addr, sizeof(c->remote_addr));
        c->remote_port = ntohs(in6->sin6_port);
    } else if (sa->sa_family == AF_UNIX) {
        strcpy(c->remote_addr, "unix");
    }
}

void cr_conn_init(cr_conn *c, struct cr_child *child, int thread, int fd)
{
    memset(c, 0, offsetof(cr_conn, pool_block));
    c->fd = fd;
    c->child = child;
    c->thread = thread;
    c->wake_fd = -1;
    cr_pool_init(&c->pool, c->pool_block, sizeof(c->pool_block));
    cr_response_reset(&c->resp);
}

const cr_config *cr_conn_config(const cr_conn *c)
{
    return &c->child->gen->cfg;
}

cr_worker_score *cr_conn_score(const cr_conn *c)
{
    return cr_scoreboard_worker(&c->child->srv->sb, (uint32_t)c->child->slot, (uint32_t)c->thread);
}

void cr_conn_note_request(cr_conn *c)
{
    cr_worker_score *w = cr_conn_score(c);
    size_t n = c->head.target.len + c->head.method_name.len + 1;

    if (n >= sizeof(w->request))
        n = sizeof(w->request) - 1;
    snprintf(w->request, sizeof(w->request), "%.*s %.*s", (int)c->head.method_name.len,
             c->head.method_name.ptr, (int)c->head.target.len, c->head.target.ptr);
    w->request[n] = '\0';
    snprintf(w->client, sizeof(w->client), "%s", c->remote_addr);
}

int cr_body_append(cr_conn *c, char **body, size_t *len, size_t *cap, const char *data, size_t n)
{
    if (n == 0)
        return 0;
    if (*len + n > cr_conn_config(c)->limits.body_bytes)
        return 413;
    if (*len + n > *cap) {
        size_t grown = *cap ? *cap * 2 : 4096;
        char *p;

        while (grown < *len + n)
            grown *= 2;
        p = cr_pool_alloc(&c->pool, grown);
        if (p == NULL)
            return 500;
        if (*len)
            memcpy(p, *body, *len);
        *body = p;
        *cap = grown;
    }
    memcpy(*body + *len, data, n);
    *len += n;
    return 0;
}

static void cr_conn_fill_request(cr_conn *c)
{
    cr_request *r = &c->req;
    cr_http_head *h = &c->head;

    r->method = h->method;
    r->method_name = h->method_name;
    r->target = h->target;
    r->query = h->query;
    r->version_minor = h->version_minor;
    r->headers = h->headers;
    r->nheaders = h->nheaders;
    r->host = h->host;
    r->remote_addr = c->remote_addr;
    r->remote_port = c->remote_port;
    r->pool = &c->pool;
}

/* Everything between a parsed head and the body: the request fields and
 * the normalized path. Returns 0 or an HTTP status to answer with. */
int cr_conn_begin_request(cr_conn *c)
{
    char *path = cr_pool_alloc(&c->pool, c->head.path.len + 1);
    ssize_t plen;

    cr_conn_fill_request(c);
    if (path == NULL)
        return 500;
    /* The asterisk form names the server itself, not a resource. */
    if (c->head.path.len == 1 && c->head.path.ptr[0] == '*') {
        c->req.path = (cr_str){"*", 1};
        return c->head.method == CR_METHOD_OPTIONS ? 0 : 400;
    }
    plen = cr_http_normalize_path(c->head.path.ptr, c->head.path.len, path);
    if (plen < 0)
        return 400;
    c->req.path = (cr_str){path, (size_t)plen};
    return 0;
}

int cr_http_run_handlers(cr_conn *c)
{
    const cr_router *rt = &c->child->gen->router;
    cr_request *r = &c->req;
    int i = cr_router_match(rt, 0, r->host, r->path);

    if (r->path.len == 1 && r->path.ptr[0] == '*') {
        cr_response_header(r, "Allow", "GET, HEAD, POST, PUT, DELETE, OPTIONS");
        return CR_DONE;
    }
    while (i >= 0) {
        const cr_route *route = &rt->routes[i];
        int rc;

        /* A refused client is answered here rather than passed on, so a
         * later, broader route never serves what this one keeps out. */
        if (!cr_addr_rules_admit(&route->access, &c->peer)) {
            cr_log(CR_LOG_INFO, "client %s refused by the allow/deny rules of route %.*s",
                   c->remote_addr, (int)route->path.len, route->path.ptr);
            cr_http_error_page(c, 403);
            return CR_DONE;
        }
        r->route_path = route->path;
        r->route_data = route->route_data;
        rc = route->module->handle(r);
        if (rc == CR_DONE || rc == CR_SUSPENDED)
            return rc;
        if (rc >= 100 && rc <= 599 && c->resp.streaming) {
            /* The head is out: all that is left to say is to hang up. */
            cr_log(CR_LOG_INFO, "module %s failed (%d) on %.*s after streaming began",
                   route->module->name, rc, (int)r->target.len, r->target.ptr);
            c->keep_alive = false;
            return CR_DONE;
        }
        if (rc >= 100 && rc <= 599) {
            cr_http_error_page(c, rc);
            return CR_DONE;
        }
        if (rc != CR_DECLINED) {
            cr_log(CR_LOG_ERROR, "module %s failed on %.*s (returned %d)", route->module->name,
                   (int)r->target.len, r->target.ptr, rc);
            cr_http_error_page(c, 500);
            return CR_DONE;
        }
        cr_conn_cancel_timers(c);
        cr_response_cleanup(&c->resp);
        cr_response_reset(&c->resp);
        i = cr_router_match(rt, (size_t)i + 1, r->host, r->path);
    }
    cr_http_error_page(c, 404);
    return CR_DONE;
}

bool cr_conn_may_keep_alive(const cr_conn *c)
{
    const cr_config *cfg = cr_conn_config(c);

    if (!c->head.keep_alive || cr_child_stopping(c->child))
        return false;
    return cfg->limits.keepalive_requests == 0 ||
           c->nrequests + 1 < (unsigned long)cfg->limits.keepalive_requests;
}

/* The CLOCK_MONOTONIC time of a kernel receive timestamp (CLOCK_REALTIME)
 * taken `now` (monotonic) ago, or 0 when the message carries none. */
static int64_t cr_conn_arrival(struct msghdr *msg, int64_t now)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm != NULL; cm = CMSG_NXTHDR(msg, cm)) {
        struct scm_timestamping ts;
        struct timespec real;

        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_TIMESTAMPING)
            continue;
        memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
        if (ts.ts[0].tv_sec == 0 || clock_gettime(CLOCK_REALTIME, &real) != 0)
            return 0;
        return now - ((int64_t)(real.tv_sec - ts.ts[0].tv_sec) * 1000000000 +
                      (real.tv_nsec - ts.ts[0].tv_nsec));
    }
    return 0;
}

ssize_t cr_conn_recv(cr_conn *c, char *into, size_t room)
{
    union {
        char buf[CMSG_SPACE(sizeof(struct scm_timestamping))];
        struct cmsghdr align;
    } control;
    struct iovec iov = {into, room};
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = control.buf,
                         .msg_controllen = sizeof(control.buf)};
    ssize_t n;

    if (c->t.first_byte != 0)
        return read(c->fd, into, room);
    n = recvmsg(c->fd, &msg, 0);
    if (n > 0) {
        c->t.first_byte = cr_now_ns();
        c->t.arrived = cr_conn_arrival(&msg, c->t.first_byte);
    }
    return n;
}

/* Adds the request's time in each phase to the slot. A boundary the
 * request never reached takes the one before it, so its phase counts 0.
 * Bytes that arrived before the server read them were waiting for it, not
 * for the client: that part of the wait is queueing (the accept queue for
 * a new connection's first request, a process or an event loop busy with
 * others); a pipelined request that came during the previous response
 * only waited from the end of it. */
static void cr_conn_add_phases(cr_worker_score *w, const cr_conn *c)
{
    const cr_conn_times *t = &c->t;
    int64_t mark[CR_PHASES + 1] = {t->wait_from,     t->first_byte,  t->parsed,
                                   t->handler_start, t->handler_end, t->done};
    int64_t phase[CR_PHASES], arrived = t->arrived;

    if (mark[0] == 0)
        mark[0] = t->done;
    for (int i = 1; i <= CR_PHASES; i++)
        if (mark[i] < mark[i - 1])
            mark[i] = mark[i - 1];
    for (int i = 0; i < CR_PHASES; i++)
        phase[i] = mark[i + 1] - mark[i];
    if (arrived != 0 && t->first_byte != 0) {
        if (arrived < mark[0] && c->nrequests == 0)
            phase[CR_PHASE_QUEUE] += mark[0] - arrived;
        if (arrived < mark[0])
            arrived = mark[0];
        if (arrived > mark[1])
            arrived = mark[1];
        phase[CR_PHASE_WAIT] -= mark[1] - arrived;
        phase[CR_PHASE_QUEUE] += mark[1] - arrived;
    }
    for (int i = 0; i < CR_PHASES; i++)
        w->phase_ns[i] += (uint64_t)phase[i];
}

void cr_conn_account(cr_conn *c)
{
    cr_worker_score *w = cr_conn_score(c);

    c->t.done = cr_now_ns();
    cr_conn_add_phases(w, c);
    w->requests++;
    w->bytes += c->bytes_sent;
    w->last_used = time(NULL);
    cr_child_count_request(c->child);
    cr_access_log_write(c->child->srv->access_log, c);
}

void cr_conn_next_request(cr_conn *c)
{
    cr_conn_cancel_timers(c);
    cr_response_cleanup(&c->resp);
    cr_pool_reset(&c->pool);
    /* Every per-request field at once: a field reset one by one is a field
     * someone forgets, and the next request then reads pointers into the
     * pool just reset (a body, a decoder that already finished). */
    memset(&c->CR_CONN_REQUEST_FIRST, 0,
           offsetof(cr_conn, pool) - offsetof(cr_conn, CR_CONN_REQUEST_FIRST));
    atomic_store(&c->run_state, CR_RUN_HANDLER);
    cr_response_reset(&c->resp);
    c->nrequests++;
    /* The next request's wait starts now; one a pipelining client already
     * sent has none. */
    c->t = (cr_conn_times){.wait_from = c->t.done, .first_byte = c->len > 0 ? c->t.done : 0};
}

int cr_ms_left(long long deadline)
{
    long long left = deadline - cr_monotonic_ms();

    return left > 0 ? (int)left : 0;
}

int cr_conn_wait(cr_conn *c, short events, long long deadline, bool idle)
{
    for (;;) {
        int rc = cr_child_wait(c->child, c->fd, events, cr_ms_left(deadline),
                               idle ? CR_WAIT_IDLE : CR_WAIT_BUSY);

        if (rc == 1 || rc == 0)
            return rc;
        if (rc == CR_ERROR) {
            cr_log_errno(CR_LOG_ERROR, errno, "poll on client socket");
            return -1;
        }
        if (cr_child_stopping_now(c->child) || (idle && cr_child_stopping(c->child)))
            return 0;
    }
}

int cr_conn_send_all(cr_conn *c, struct iovec *iov, int niov, bool more)
{
    long long stall = 1000LL * cr_conn_config(c)->timeouts.write;
    long long deadline = cr_monotonic_ms() + stall;
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
    int flags = MSG_NOSIGNAL | (more ? MSG_MORE : 0);

    while (msg.msg_iovlen > 0) {
        ssize_t n = sendmsg(c->fd, &msg, flags);

        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                return -1;
            if (cr_conn_wait(c, POLLOUT, deadline, false) != 1)
                return -1;
            continue;
        }
        /* timeouts.write bounds a stall, not the whole response: a slow
         * but steady reader of a large body is served to its end. */
        deadline = cr_monotonic_ms() + stall;
        c->resp.started = true;
        while (msg.msg_iovlen > 0 && (size_t)n >= msg.msg_iov->iov_len) {
            n -= (ssize_t)msg.msg_iov->iov_len;
            msg.msg_iov++;
            msg.msg_iovlen--;
        }
        if (msg.msg_iovlen > 0) {
            msg.msg_iov->iov_base = (char *)msg.msg_iov->iov_base + n;
            msg.msg_iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}
