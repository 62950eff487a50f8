/* The event-driven connection driver (event MPM). One libevent thread per
 * child accepts, reads request heads and bodies without blocking, holds
 * idle keep-alive connections on common timeouts and finishes writes the
 * socket could not take at once; a complete request runs inline when its
 * modules never block, else on a pool thread, and comes back to the event
 * thread once its response is out or would block. An idle connection
 * keeps only a small cr_econn; the full cr_conn with its buffers is
 * attached while a request is in progress and recycled after. */
#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "child.h"
#include "corral/log.h"
#include "corral/work_queue.h"
#include "http_conn.h"

#define CR_ACCEPT_BATCH       64
#define CR_LINGER_SECONDS     2
#define CR_SPARE_CONNS        16
#define CR_CALLBACKS_PER_PASS 256
/* An inline handler that holds the event thread longer than this stalls
 * every connection of the child: it is logged (at most once a minute). */
#define CR_INLINE_SLOW_NS         (100 * 1000000LL)
#define CR_INLINE_SLOW_LOG_GAP_NS (60 * 1000000000LL)

typedef enum cr_econn_state {
    CR_ES_IDLE,      /* keep-alive wait: no request bytes, no cr_conn */
    CR_ES_HEAD,      /* reading a request head */
    CR_ES_BODY,      /* reading its body */
    CR_ES_HANDLER,   /* queued for or inside a pool thread */
    CR_ES_SUSPENDED, /* the handler keeps the request; no thread holds it */
    CR_ES_WRITE,     /* waiting to send the rest of a response */
    CR_ES_LINGER,    /* our side closed, draining the client */
} cr_econn_state;

struct cr_evloop;

typedef struct cr_econn {
    struct event ev;
    struct cr_evloop *loop;
    cr_conn *c;            /* while a request is in progress */
    struct cr_econn *next; /* done list */
    struct cr_econn *prev_all, *next_all;
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } peer;
    int fd;
    uint8_t state;
    bool linger;   /* drain the client after the response */
    bool buffered; /* the next request's bytes are in the buffer already */
    unsigned nrequests;
    int64_t idle_since; /* accepted, or the last response written (cr_now_ns) */
} cr_econn;

typedef struct cr_evloop {
    cr_child *child;
    const cr_config *cfg;
    struct event_base *base;
    struct event **listen_ev;
    size_t nlisten;
    struct event *stop_ev;     /* graceful stop requested */
    struct event *stop_now_ev; /* immediate stop requested */
    struct event *done_ev;     /* pool threads handed connections back */
    struct event *resume_ev;   /* accept again after a pause */
    pthread_t event_thread;
    const struct timeval *tv_header, *tv_body, *tv_keepalive, *tv_write, *tv_linger;

    cr_econn *all; /* every open connection */
    int nconns;
    int max_conns;
    bool accepting;
    bool full_logged;
    bool stopping;
    int64_t slow_logged_at; /* the last warning of a slow inline handler */

    cr_conn **spares; /* recycled cr_conn structs with their buffers */
    int nspares;

    /* The pool. */
    int nthreads;
    pthread_t *threads;
    cr_work_queue *pool_queue; /* requests waiting for a pool thread */
    int queue_limit;           /* its capacity: past it, 503s */
    pthread_mutex_t lock;      /* guards done */
    cr_econn *done;            /* handed back, newest first */
} cr_evloop;

static void cr_ev_on_conn_event(evutil_socket_t fd, short what, void *arg);
static void cr_ev_on_bytes(cr_econn *e);
static void cr_ev_wake(cr_conn *c);
static void cr_ev_arm_timer(cr_conn *c, cr_timer *t);
static void cr_ev_disarm_timer(cr_conn *c, cr_timer *t);
static int cr_ev_send(cr_conn *c, struct iovec *iov, int n);

static const cr_conn_driver cr_event_driver = {
    .wake = cr_ev_wake,
    .arm = cr_ev_arm_timer,
    .disarm = cr_ev_disarm_timer,
    .send = cr_ev_send,
};

/* ---- connection bookkeeping ---- */

static void cr_ev_listeners(cr_evloop *l, bool on)
{
    if (l->accepting == on)
        return;
    for (size_t i = 0; i < l->nlisten; i++)
        if ((on ? event_add(l->listen_ev[i], NULL) : event_del(l->listen_ev[i])) != 0)
            cr_log(CR_LOG_ERROR, "cannot %s listener events", on ? "add" : "remove");
    l->accepting = on;
}

static cr_conn *cr_ev_conn_get(cr_evloop *l, cr_econn *e)
{
    cr_conn *c;

    if (l->nspares > 0) {
        c = l->spares[--l->nspares];
    } else {
        c = malloc(sizeof(*c));
        if (c == NULL)
            return NULL;
        c->cap = l->cfg->limits.header_bytes + 1;
        c->buf = malloc(c->cap);
        if (c->buf == NULL) {
            free(c);
            return NULL;
        }
    }
    {
        char *buf = c->buf;
        size_t cap = c->cap;

        cr_conn_init(c, l->child, l->nthreads, e->fd);
        c->buf = buf;
        c->cap = cap;
    }
    c->driver = &cr_event_driver;
    c->driver_data = e;
    cr_conn_set_peer(c, &e->peer.sa);
    c->nrequests = e->nrequests;
    c->t.wait_from = e->idle_since;
    return c;
}

static void cr_ev_conn_put(cr_evloop *l, cr_conn *c)
{
    cr_conn_cancel_timers(c);
    free(c->pending);
    c->pending = NULL;
    cr_response_cleanup(&c->resp);
    cr_pool_reset(&c->pool);
    if (l->nspares < CR_SPARE_CONNS) {
        l->spares[l->nspares++] = c;
        return;
    }
    free(c->buf);
    free(c);
}

static void cr_ev_close(cr_econn *e)
{
    cr_evloop *l = e->loop;

    event_del(&e->ev);
    /* Finished meanwhile or not, the module is done with it once the abort
     * hook returned; a finish already queued is dropped with e below. */
    if (e->state == CR_ES_SUSPENDED)
        cr_conn_abort(e->c);
    if (e->c != NULL)
        cr_ev_conn_put(l, e->c);
    if (close(e->fd) != 0)
        cr_log_errno(CR_LOG_DEBUG, errno, "close of client socket");
    if (e->prev_all != NULL)
        e->prev_all->next_all = e->next_all;
    else
        l->all = e->next_all;
    if (e->next_all != NULL)
        e->next_all->prev_all = e->prev_all;
    free(e);
    l->nconns--;
    if (l->stopping) {
        if (l->nconns == 0)
            event_base_loopbreak(l->base);
        return;
    }
    if (!l->accepting && l->nconns < l->max_conns && !event_pending(l->resume_ev, EV_TIMEOUT, 0))
        cr_ev_listeners(l, true);
}

/* Watches the connection for `what` with the given timeout. */
static void cr_ev_watch(cr_econn *e, short what, const struct timeval *tv)
{
    if (event_pending(&e->ev, EV_READ | EV_WRITE, NULL) && (event_get_events(&e->ev) & what)) {
        event_add(&e->ev, tv);
        return;
    }
    event_del(&e->ev);
    event_assign(&e->ev, e->loop->base, e->fd, (short)(what | EV_PERSIST), cr_ev_on_conn_event, e);
    if (event_add(&e->ev, tv) != 0) {
        cr_log(CR_LOG_ERROR, "cannot watch a client connection");
        cr_ev_close(e);
    }
}

/* Waits for more of a request head. timeouts.header bounds the whole head
 * from its first byte, as under the blocking driver: re-arming the full
 * timeout at every read would let a client that sends a byte now and then
 * hold the connection for ever. */
static void cr_ev_watch_head(cr_econn *e)
{
    int64_t due = e->c->t.first_byte + (int64_t)e->loop->cfg->timeouts.header * 1000000000;
    int64_t left = due - cr_now_ns();
    struct timeval tv = {0, 0};

    if (e->c->t.first_byte == 0) {
        cr_ev_watch(e, EV_READ, e->loop->tv_header);
        return;
    }
    if (left > 0) {
        tv.tv_sec = (time_t)(left / 1000000000);
        tv.tv_usec = (suseconds_t)(left % 1000000000 / 1000);
    }
    /* libevent counts from the time it cached when this pass of the loop
     * began, which lags ours by the pass so far. */
    event_base_update_cache_time(e->loop->base);
    cr_ev_watch(e, EV_READ, &tv);
}

/* ---- writing ---- */

static void cr_ev_build_output(cr_conn *c)
{
    cr_response *resp = &c->resp;
    bool with_body = c->req.method != CR_METHOD_HEAD && !cr_status_has_no_body(resp->status);
    size_t cap = resp->headers_len + 512;
    char *head;
    size_t hl;

    c->out_next = 0;
    c->file_left = 0;
    if (resp->streaming) {
        /* The head went out with the first flush: the rest and the end. */
        c->nout = with_body ? cr_response_chunk_iov(resp, c->out, true) : 0;
        c->bytes_sent += with_body ? resp->body_len : 0;
        return;
    }
    head = cr_pool_alloc(&c->pool, cap);
    hl = head != NULL ? cr_http_format_head(c, head, cap) : 0;
    c->out[0] = (struct iovec){head, hl};
    c->nout = 1;
    if (!with_body)
        return;
    memcpy(&c->out[1], resp->body, sizeof(struct iovec) * (size_t)resp->nbody);
    c->nout += resp->nbody;
    c->bytes_sent += resp->body_len + (resp->file_fd >= 0 ? resp->file_len : 0);
    if (resp->file_fd >= 0) {
        c->file_off = resp->file_off;
        c->file_left = resp->file_len;
    }
}

/* Sends what the socket takes. 1 all sent, 0 would block, -1 failed. */
/* Sends what an event-thread cr_response_flush queued. 1 all sent, 0 would
 * block, -1 failed. */
static int cr_ev_send_pending(cr_conn *c)
{
    while (c->pending_off < c->pending_len) {
        ssize_t n =
            send(c->fd, c->pending + c->pending_off, c->pending_len - c->pending_off, MSG_NOSIGNAL);

        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        c->pending_off += (size_t)n;
    }
    c->pending_off = c->pending_len = 0;
    return 1;
}

static int cr_ev_flush(cr_conn *c)
{
    int rc = cr_ev_send_pending(c);

    if (rc <= 0)
        return rc;
    while (c->out_next < c->nout) {
        struct msghdr msg = {.msg_iov = &c->out[c->out_next],
                             .msg_iovlen = (size_t)(c->nout - c->out_next)};
        ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | (c->file_left ? MSG_MORE : 0));

        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        while (c->out_next < c->nout && (size_t)n >= c->out[c->out_next].iov_len)
            n -= (ssize_t)c->out[c->out_next++].iov_len;
        if (c->out_next < c->nout) {
            c->out[c->out_next].iov_base = (char *)c->out[c->out_next].iov_base + n;
            c->out[c->out_next].iov_len -= (size_t)n;
        }
    }
    while (c->file_left > 0) {
        ssize_t n = sendfile(c->fd, c->resp.file_fd, &c->file_off, c->file_left);

        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        if (n == 0)
            return -1;
        c->file_left -= (size_t)n;
    }
    return 1;
}

static void cr_ev_start_linger(cr_econn *e)
{
    if (shutdown(e->fd, SHUT_WR) != 0) {
        cr_ev_close(e);
        return;
    }
    cr_ev_conn_put(e->loop, e->c);
    e->c = NULL;
    e->state = CR_ES_LINGER;
    cr_ev_watch(e, EV_READ, e->loop->tv_linger);
}

/* The response is out: log it, then keep the connection or close it. */
static void cr_ev_finish(cr_econn *e)
{
    cr_conn *c = e->c;

    cr_conn_account(c);
    if (!c->keep_alive) {
        /* Also when we close a connection the client meant to keep (a
         * stopping child): a request it sent meanwhile must not turn this
         * answer into a reset. */
        if (e->linger || c->head.keep_alive)
            cr_ev_start_linger(e);
        else
            cr_ev_close(e);
        return;
    }
    memmove(c->buf, c->buf + c->consumed, c->len - c->consumed);
    c->len -= c->consumed;
    cr_conn_next_request(c);
    e->nrequests++;
    if (c->len > 0) {
        /* A pipelined request is already here. It is parsed from the loop,
         * not from here: calling back into the parser would nest one call
         * chain per request a client packs into one write. */
        e->state = CR_ES_HEAD;
        e->buffered = true;
        event_active(&e->ev, EV_READ, 1);
        return;
    }
    e->idle_since = c->t.wait_from;
    cr_ev_conn_put(e->loop, c);
    e->c = NULL;
    e->state = CR_ES_IDLE;
    cr_ev_watch(e, EV_READ, e->loop->tv_keepalive);
}

/* Sends the response built in e->c, now or once the socket takes it. */
static void cr_ev_respond(cr_econn *e)
{
    int rc;

    /* The handler is done (inline, or a suspended request finished); a
     * pool thread that sends the response itself stamps it there. */
    if (e->c->t.handler_start != 0 && e->c->t.handler_end == 0)
        e->c->t.handler_end = cr_now_ns();
    if (e->c->send_failed) {
        cr_ev_close(e);
        return;
    }
    cr_ev_build_output(e->c);
    rc = cr_ev_flush(e->c);
    if (rc < 0) {
        cr_ev_close(e);
        return;
    }
    if (rc == 0) {
        e->state = CR_ES_WRITE;
        cr_ev_watch(e, EV_WRITE, e->loop->tv_write);
        return;
    }
    cr_ev_finish(e);
}

static void cr_ev_error(cr_econn *e, int status)
{
    e->c->keep_alive = false;
    e->linger = true;
    cr_http_error_page(e->c, status);
    cr_ev_respond(e);
}

/* ---- the pool ---- */

static void cr_ev_queue(cr_econn *e)
{
    cr_evloop *l = e->loop;

    /* The pool is stopped only once the loop is done: a refusal is a full
     * queue. */
    if (cr_work_queue_push(l->pool_queue, e) != CR_OK) {
        cr_log(CR_LOG_WARN, "all %d handler threads busy and %d requests queued; answering 503",
               l->nthreads, l->queue_limit);
        cr_ev_error(e, 503);
        return;
    }
    e->state = CR_ES_HANDLER;
    event_del(&e->ev);
}

/* The next request for a pool thread, or NULL once the pool stops. */
static cr_econn *cr_ev_pool_take(cr_evloop *l)
{
    void *e;

    return cr_work_queue_pop(l->pool_queue, &e) == CR_OK ? e : NULL;
}

static void cr_ev_pool_give_back(cr_evloop *l, cr_econn *e)
{
    pthread_mutex_lock(&l->lock);
    e->next = l->done;
    l->done = e;
    pthread_mutex_unlock(&l->lock);
    event_active(l->done_ev, EV_READ, 0);
}

typedef struct cr_pool_thread {
    cr_evloop *loop;
    int index;
} cr_pool_thread;

static void *cr_ev_pool_main(void *arg)
{
    cr_pool_thread *t = arg;
    cr_evloop *l = t->loop;
    cr_econn *e;
    int rc;

    cr_child_set_state(l->child, t->index, CR_SLOT_READY);
    while ((e = cr_ev_pool_take(l)) != NULL) {
        cr_child_set_state(l->child, t->index, CR_SLOT_WRITE);
        e->c->thread = t->index;
        e->c->t.handler_start = cr_now_ns();
        cr_conn_note_request(e->c);
        rc = cr_http_run_handlers(e->c);
        if (rc != CR_SUSPENDED)
            e->c->t.handler_end = cr_now_ns();
        if (e->c->body_stream) {
            cr_body_stream_end(e->c);
            e->linger = !e->c->body_ended;
        }
        if (rc == CR_SUSPENDED) {
            /* Parked by the event thread: a finish from now on must not
             * hand e back a second time while it is on the done list. */
            e->c->handler_suspended = true;
        } else if (e->c->send_failed) {
            e->c->nout = -1; /* tells the event thread to close */
        } else {
            cr_ev_build_output(e->c);
            /* Try the write here: most responses fit in the socket buffer
             * and then the event thread only has to log and re-arm. */
            if (cr_ev_flush(e->c) < 0)
                e->c->nout = -1;
        }
        cr_child_set_state(l->child, t->index, CR_SLOT_READY);
        cr_ev_pool_give_back(l, e);
    }
    free(t);
    return NULL;
}

/* ---- suspended requests ---- */

/* Watches a suspended request's connection for the client leaving. */
static void cr_ev_watch_suspended(cr_econn *e)
{
    bool early_close = event_base_get_features(e->loop->base) & EV_FEATURE_EARLY_CLOSE;
    short what = (short)((early_close ? EV_CLOSED : EV_READ) | EV_PERSIST);

    bool output = e->c->pending_len > e->c->pending_off;

    /* Flushed output the socket could not take yet goes out meanwhile, and
     * a client that takes none of it for timeouts.write is dropped. */
    if (output)
        what |= EV_WRITE;
    event_del(&e->ev);
    event_assign(&e->ev, e->loop->base, e->fd, what, cr_ev_on_conn_event, e);
    if (event_add(&e->ev, output ? e->loop->tv_write : NULL) != 0)
        cr_log(CR_LOG_ERROR, "cannot watch a suspended request's connection");
}

/* The handler returned: send its response, or hold the request for the
 * module if it is still suspended. */
static void cr_ev_after_handler(cr_econn *e, int rc)
{
    e->c->handler_suspended = false;
    if (rc == CR_SUSPENDED && cr_conn_park(e->c)) {
        e->state = CR_ES_SUSPENDED;
        cr_ev_watch_suspended(e);
        return;
    }
    cr_ev_respond(e);
}

/* A suspended request was finished (handed over through the done list). */
static void cr_ev_resume(cr_econn *e)
{
    cr_conn_cancel_timers(e->c);
    event_del(&e->ev);
    cr_ev_respond(e);
}

static void cr_ev_wake(cr_conn *c)
{
    cr_econn *e = c->driver_data;

    cr_ev_pool_give_back(e->loop, e);
}

static void cr_ev_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    cr_timer_fire(arg);
}

static void cr_ev_arm_timer(cr_conn *c, cr_timer *t)
{
    cr_econn *e = c->driver_data;
    long long left = t->due_ms - cr_monotonic_ms();
    struct timeval tv = {0, 0};

    if (left > 0) {
        tv.tv_sec = (time_t)(left / 1000);
        tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
    }
    evtimer_assign(&t->ev, e->loop->base, cr_ev_on_timer, t);
    if (evtimer_add(&t->ev, &tv) != 0)
        cr_log(CR_LOG_ERROR, "cannot add a request timer");
}

static void cr_ev_disarm_timer(cr_conn *c, cr_timer *t)
{
    (void)c;
    evtimer_del(&t->ev);
}

static void cr_ev_drop_suspended(cr_econn *e)
{
    if (cr_conn_abort(e->c)) {
        cr_ev_close(e);
        return;
    }
    /* Finished a moment ago: the done list has it. */
    event_del(&e->ev);
}

/* The client of a suspended request closed (or sent more), or the socket
 * takes more of what a flush left. */
static void cr_ev_on_suspended_event(cr_econn *e, short what)
{
    char byte;
    ssize_t n;

    if (what & EV_TIMEOUT) {
        cr_log(CR_LOG_INFO, "%s took none of a streamed response for %d s; dropping it",
               e->c->remote_addr, e->loop->cfg->timeouts.write);
        cr_ev_drop_suspended(e);
        return;
    }
    if (what & EV_WRITE) {
        int rc = cr_ev_send_pending(e->c);

        if (rc < 0) {
            cr_ev_drop_suspended(e);
            return;
        }
        if (rc > 0)
            cr_ev_watch_suspended(e);
        if (!(what & (EV_READ | EV_CLOSED)))
            return;
    }
    n = recv(e->fd, &byte, 1, MSG_PEEK);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0) {
        /* A pipelined request: nothing more to learn until the response is
         * out, and a level-triggered watch would spin. */
        if (e->c->pending_len == e->c->pending_off)
            event_del(&e->ev);
        return;
    }
    cr_ev_drop_suspended(e);
}

/* Copies iov, less its first `skip` bytes, after the queued output. */
static int cr_ev_queue_output(cr_conn *c, const struct iovec *iov, int n, size_t skip, size_t total)
{
    size_t need = c->pending_len - c->pending_off + (total - skip);

    if (c->pending_off > 0) {
        memmove(c->pending, c->pending + c->pending_off, c->pending_len - c->pending_off);
        c->pending_len -= c->pending_off;
        c->pending_off = 0;
    }
    if (need > c->pending_cap) {
        size_t cap = need > 2 * c->pending_cap ? need : 2 * c->pending_cap;
        char *grown = realloc(c->pending, cap);

        if (grown == NULL) {
            cr_log(CR_LOG_ERROR, "out of memory for a streamed response");
            return CR_ERROR;
        }
        c->pending = grown;
        c->pending_cap = cap;
    }
    cr_log(CR_LOG_DEBUG, "queued %zu bytes of a streamed response", total - skip);
    for (int k = 0; k < n; k++) {
        size_t len = iov[k].iov_len, off = skip < len ? skip : len;

        skip -= off;
        memcpy(c->pending + c->pending_len, (const char *)iov[k].iov_base + off, len - off);
        c->pending_len += len - off;
    }
    return CR_OK;
}

/* cr_response_flush. On the event thread (an inline handler, a timer
 * callback) nothing may block: what the socket does not take now is
 * queued and sent before anything else of the connection. Elsewhere (a
 * pool thread, a module's own thread) the caller waits. */
static int cr_ev_send(cr_conn *c, struct iovec *iov, int n)
{
    cr_econn *e = c->driver_data;
    size_t total = 0, queued = c->pending_len - c->pending_off;
    ssize_t sent = 0;

    if (!pthread_equal(pthread_self(), e->loop->event_thread))
        return cr_conn_send_all(c, iov, n, false) == 0 ? CR_OK : CR_ERROR;
    if (queued > CR_RESPONSE_QUEUE_MAX) {
        cr_log(CR_LOG_INFO, "%s does not read its streamed response (%zu bytes queued); closing",
               c->remote_addr, queued);
        return CR_ERROR;
    }
    if (queued == 0) {
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};

        sent = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        if (sent < 0 && errno != EAGAIN && errno != EINTR)
            return CR_ERROR;
        if (sent < 0)
            sent = 0;
    }
    for (int k = 0; k < n; k++)
        total += iov[k].iov_len;
    if ((size_t)sent == total)
        return CR_OK;
    if (cr_ev_queue_output(c, iov, n, (size_t)sent, total) != CR_OK)
        return CR_ERROR;
    /* Only when the queue was empty: re-arming at every flush would
     * restart the write timeout of a client that reads nothing. */
    if (e->state == CR_ES_SUSPENDED && queued == 0)
        cr_ev_watch_suspended(e);
    return CR_OK;
}

static void cr_ev_on_done(evutil_socket_t fd, short what, void *arg)
{
    cr_evloop *l = arg;
    cr_econn *e;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&l->lock);
    e = l->done;
    l->done = NULL;
    pthread_mutex_unlock(&l->lock);
    while (e != NULL) {
        cr_econn *next = e->next;
        cr_conn *c = e->c;

        if (e->state == CR_ES_SUSPENDED)
            cr_ev_resume(e);
        else if (c->handler_suspended)
            cr_ev_after_handler(e, CR_SUSPENDED);
        else if (c->nout < 0)
            cr_ev_close(e);
        else if (c->out_next < c->nout || c->file_left > 0) {
            e->state = CR_ES_WRITE;
            cr_ev_watch(e, EV_WRITE, l->tv_write);
        } else {
            cr_ev_finish(e);
        }
        e = next;
    }
}

/* ---- reading ---- */

/* Whether every route that may serve the request is non-blocking, so it
 * can run on the event thread. */
static bool cr_ev_runs_inline(const cr_conn *c)
{
    const cr_router *rt = &c->child->gen->router;
    int i = cr_router_match(rt, 0, c->req.host, c->req.path);

    if (i < 0)
        return true;
    for (; i >= 0; i = cr_router_match(rt, (size_t)i + 1, c->req.host, c->req.path))
        if (!rt->routes[i].nonblocking || rt->routes[i].stream_body)
            return false;
    return true;
}

/* A non-blocking route that blocked anyway: a module bug that no request
 * can cause (where a handler runs is the route's, never the client's), so
 * it is worth a warning that names the route. */
static void cr_ev_note_slow_inline(cr_evloop *l, const cr_conn *c)
{
    int64_t now = cr_now_ns(), took = now - c->t.handler_start;

    if (took < CR_INLINE_SLOW_NS ||
        (l->slow_logged_at != 0 && now - l->slow_logged_at < CR_INLINE_SLOW_LOG_GAP_NS))
        return;
    l->slow_logged_at = now;
    cr_log(CR_LOG_WARN,
           "a non-blocking handler held the event thread for %lld ms on %.*s (route %.*s); "
           "a route that may block must not be declared non-blocking",
           (long long)(took / 1000000), (int)c->req.target.len, c->req.target.ptr,
           (int)c->req.route_path.len, c->req.route_path.ptr);
}

static void cr_ev_dispatch(cr_econn *e)
{
    cr_conn *c = e->c;

    c->keep_alive = cr_conn_may_keep_alive(c);
    c->t.parsed = cr_now_ns();
    if (cr_ev_runs_inline(c)) {
        int rc;

        /* The scoreboard slot of whoever runs the handler: here, the event
         * thread's; a pool thread notes it when it takes the request. */
        c->thread = e->loop->nthreads;
        c->t.handler_start = c->t.parsed;
        cr_conn_note_request(c);
        cr_child_set_state(c->child, c->thread, CR_SLOT_WRITE);
        rc = cr_http_run_handlers(c);
        cr_child_set_state(c->child, c->thread, CR_SLOT_READY);
        cr_ev_note_slow_inline(e->loop, c);
        cr_ev_after_handler(e, rc);
        return;
    }
    cr_ev_queue(e);
}

static void cr_ev_send_continue(cr_conn *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

    if (!c->head.expect_continue || c->head.version_minor == 0)
        return;
    c->head.expect_continue = false;
    if (send(c->fd, cont, sizeof(cont) - 1, MSG_NOSIGNAL) < 0 && errno != EAGAIN)
        cr_log_errno(CR_LOG_DEBUG, errno, "send of 100 Continue");
}

/* Takes what arrived of a Content-Length body. Returns 1 complete, 0 more
 * needed, or an HTTP status. */
static int cr_ev_length_body(cr_conn *c)
{
    size_t want = c->body_want;

    if (c->head_len + want <= c->cap) {
        if (c->len < c->head_len + want)
            return 0;
        c->req.body = (cr_str){c->buf + c->head_len, want};
        c->consumed = c->head_len + want;
        return 1;
    }
    if (c->body == NULL) {
        size_t have = c->len - c->head_len;

        c->body = cr_pool_alloc(&c->pool, want);
        if (c->body == NULL)
            return 500;
        c->body_len = have < want ? have : want;
        memcpy(c->body, c->buf + c->head_len, c->body_len);
        c->consumed = c->head_len + c->body_len;
    }
    if (c->body_len < want)
        return 0;
    c->req.body = (cr_str){c->body, want};
    return 1;
}

/* Decodes what arrived of a chunked body. 1 complete, 0 more, or a status. */
static int cr_ev_chunked_body(cr_conn *c)
{
    size_t n = c->len - c->head_len;
    int rc = cr_chunked_decode(&c->chunked, c->buf + c->head_len, &n);
    int st;

    if (rc == CR_ERROR)
        return 400;
    st = cr_body_append(c, &c->body, &c->body_len, &c->body_cap, c->buf + c->head_len, n);
    if (st != 0)
        return st;
    if (rc == CR_AGAIN) {
        c->len = c->head_len;
        return 0;
    }
    memmove(c->buf + c->head_len, c->buf + c->head_len + n, (size_t)rc);
    c->len = c->head_len + (size_t)rc;
    c->consumed = c->head_len;
    c->req.body = (cr_str){c->body != NULL ? c->body : "", c->body_len};
    return 1;
}

static int cr_ev_body(cr_conn *c)
{
    return c->head.chunked ? cr_ev_chunked_body(c) : cr_ev_length_body(c);
}

/* A head is complete: set up the request and its body. */
static void cr_ev_on_head(cr_econn *e, int head_len)
{
    cr_conn *c = e->c;
    int rc;

    c->head_len = (size_t)head_len;
    c->consumed = c->head_len;
    rc = cr_conn_begin_request(c);
    if (rc != 0) {
        cr_ev_error(e, rc);
        return;
    }
    if (c->head.content_length > (int64_t)c->child->gen->cfg.limits.body_bytes) {
        cr_ev_error(e, 413);
        return;
    }
    if (cr_conn_streams_body(c)) {
        /* A pool thread hands the body to the handler as it comes. */
        cr_body_stream_begin(c);
        cr_ev_dispatch(e);
        return;
    }
    if (!c->head.chunked && c->head.content_length <= 0) {
        cr_ev_dispatch(e);
        return;
    }
    c->body_want = c->head.chunked ? 0 : (size_t)c->head.content_length;
    e->state = CR_ES_BODY;
    cr_ev_on_bytes(e);
}

static void cr_ev_on_bytes(cr_econn *e)
{
    cr_conn *c = e->c;
    cr_http_limits limits = {e->loop->cfg->limits.header_bytes, e->loop->cfg->limits.uri_bytes};
    int rc;

    if (e->state == CR_ES_BODY) {
        rc = cr_ev_body(c);
        if (rc == 1) {
            cr_ev_dispatch(e);
        } else if (rc > 1) {
            cr_ev_error(e, rc);
        } else {
            cr_ev_send_continue(c);
            cr_ev_watch(e, EV_READ, e->loop->tv_body);
        }
        return;
    }
    e->state = CR_ES_HEAD;
    rc = cr_http_parse_head(c->buf, c->len, &c->scanned, &limits, &c->head);
    if (rc > 0) {
        cr_ev_on_head(e, rc);
    } else if (rc < 0) {
        cr_ev_error(e, -rc);
    } else if (c->len >= c->cap) {
        cr_ev_error(e, 431);
    } else {
        cr_ev_watch_head(e);
    }
}

/* Where a read lands: the read buffer, or the pool buffer of a body too big
 * for it. */
static void cr_ev_read_target(cr_econn *e, char **into, size_t *room)
{
    cr_conn *c = e->c;

    if (e->state == CR_ES_BODY && c->body != NULL && !c->head.chunked) {
        *into = c->body + c->body_len;
        *room = c->body_want - c->body_len;
        return;
    }
    *into = c->buf + c->len;
    *room = c->cap - c->len;
}

static void cr_ev_on_readable(cr_econn *e)
{
    char *into;
    size_t room;
    ssize_t n;

    if (e->c == NULL) {
        e->c = cr_ev_conn_get(e->loop, e);
        if (e->c == NULL) {
            cr_log(CR_LOG_ERROR, "out of memory for a connection");
            cr_ev_close(e);
            return;
        }
    }
    cr_ev_read_target(e, &into, &room);
    n = cr_conn_recv(e->c, into, room);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        cr_ev_close(e);
        return;
    }
    if (into == e->c->buf + e->c->len)
        e->c->len += (size_t)n;
    else
        e->c->body_len += (size_t)n;
    cr_ev_on_bytes(e);
}

static void cr_ev_on_linger(cr_econn *e, short what)
{
    char sink[4096];
    ssize_t n;

    if (what & EV_TIMEOUT) {
        cr_ev_close(e);
        return;
    }
    n = read(e->fd, sink, sizeof(sink));
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        cr_ev_close(e);
}

static void cr_ev_on_timeout(cr_econn *e)
{
    /* A graceful stop changes nothing: an immediate one never gets here. */
    if (e->state == CR_ES_HEAD && e->c != NULL && e->c->len > 0) {
        cr_ev_error(e, 408);
        return;
    }
    cr_ev_close(e);
}

static void cr_ev_on_conn_event(evutil_socket_t fd, short what, void *arg)
{
    cr_econn *e = arg;

    (void)fd;
    if (e->state == CR_ES_SUSPENDED) {
        cr_ev_on_suspended_event(e, what);
        return;
    }
    if (e->state == CR_ES_LINGER) {
        cr_ev_on_linger(e, what);
        return;
    }
    if (what & EV_TIMEOUT) {
        cr_ev_on_timeout(e);
        return;
    }
    if (e->buffered) {
        e->buffered = false;
        cr_ev_on_bytes(e);
        return;
    }
    if (e->state == CR_ES_WRITE) {
        int rc = cr_ev_flush(e->c);

        if (rc < 0)
            cr_ev_close(e);
        else if (rc > 0)
            cr_ev_finish(e);
        return;
    }
    cr_ev_on_readable(e);
}

/* ---- accepting ---- */

static void cr_ev_on_resume(evutil_socket_t fd, short what, void *arg)
{
    cr_evloop *l = arg;

    (void)fd;
    (void)what;
    if (!l->stopping && l->nconns < l->max_conns)
        cr_ev_listeners(l, true);
}

static void cr_ev_pause_accepting(cr_evloop *l, int err)
{
    struct timeval pause = {0, 200 * 1000};

    cr_log_errno(CR_LOG_ERROR, err, "accept; pausing new connections");
    cr_ev_listeners(l, false);
    event_add(l->resume_ev, &pause);
}

static void cr_ev_add_conn(cr_evloop *l, int fd, const struct sockaddr_storage *ss, bool tcp)
{
    cr_econn *e = calloc(1, sizeof(*e));
    int one = 1;

    if (e == NULL) {
        cr_log(CR_LOG_ERROR, "out of memory for a connection");
        close(fd);
        return;
    }
    if (tcp)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    e->fd = fd;
    e->loop = l;
    e->idle_since = cr_now_ns();
    memcpy(&e->peer, ss, ss->ss_family == AF_INET6 ? sizeof(e->peer.in6) : sizeof(e->peer.in));
    e->next_all = l->all;
    if (l->all != NULL)
        l->all->prev_all = e;
    l->all = e;
    l->nconns++;
    e->state = CR_ES_HEAD;
    event_assign(&e->ev, l->base, fd, EV_READ | EV_PERSIST, cr_ev_on_conn_event, e);
    if (event_add(&e->ev, l->tv_header) != 0)
        cr_ev_close(e);
}

static void cr_ev_on_accept(evutil_socket_t lfd, short what, void *arg)
{
    cr_evloop *l = arg;

    (void)what;
    for (int i = 0; i < CR_ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd;

        if (l->nconns >= l->max_conns) {
            if (!l->full_logged)
                cr_log(CR_LOG_WARN, "reached max_connections (%d); not accepting until below",
                       l->max_conns);
            l->full_logged = true;
            cr_ev_listeners(l, false);
            return;
        }
        fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                cr_ev_pause_accepting(l, errno);
            else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                cr_log_errno(CR_LOG_ERROR, errno, "accept");
            return;
        }
        if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
            ss.ss_family = AF_UNIX;
        cr_ev_add_conn(l, fd, &ss, ss.ss_family != AF_UNIX);
    }
}

/* ---- stopping ---- */

/* A graceful stop of the server: clients that connected before it are
 * answered, not reset when the listeners close. */
static void cr_ev_drain(cr_evloop *l)
{
    int fd;

    while ((fd = cr_child_accept_pending(l->child)) >= 0) {
        struct sockaddr_storage ss = {.ss_family = AF_UNSPEC};
        socklen_t len = sizeof(ss);

        if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) {
            cr_log_errno(CR_LOG_DEBUG, errno, "getpeername");
            ss.ss_family = AF_UNSPEC;
        }
        if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
            ss.ss_family = AF_UNIX;
        cr_ev_add_conn(l, fd, &ss, false);
    }
}

/* Whether the connection waits for a request that has not begun: idle
 * after a response, or accepted with nothing received yet. */
static bool cr_ev_waits_for_request(const cr_econn *e)
{
    return e->state == CR_ES_IDLE || (e->state == CR_ES_HEAD && (e->c == NULL || e->c->len == 0));
}

/* Cuts such a wait to CR_CHILD_GRACEFUL_IDLE_MS from now, so the stopping
 * child leaves soon; a request that comes meanwhile is still answered
 * (with Connection: close) instead of meeting a closed socket. */
static void cr_ev_cut_idle_wait(cr_econn *e, const struct timeval *now)
{
    const struct timeval cut = {CR_CHILD_GRACEFUL_IDLE_MS / 1000,
                                (CR_CHILD_GRACEFUL_IDLE_MS % 1000) * 1000};
    struct timeval due, left;

    if (!event_pending(&e->ev, EV_TIMEOUT, &due))
        return;
    evutil_timersub(&due, now, &left);
    if (evutil_timercmp(&left, &cut, <=))
        return;
    if (event_add(&e->ev, &cut) != 0) {
        cr_log(CR_LOG_ERROR, "cannot re-arm a client connection's timeout");
        cr_ev_close(e);
    }
}

static void cr_ev_on_stop(evutil_socket_t fd, short what, void *arg)
{
    cr_evloop *l = arg;
    struct timeval now;
    cr_econn *e, *next;

    (void)fd;
    (void)what;
    if (l->stopping)
        return;
    l->stopping = true;
    cr_ev_listeners(l, false);
    event_del(l->stop_ev);
    cr_ev_drain(l);
    event_base_gettimeofday_cached(l->base, &now);
    for (e = l->all; e != NULL; e = next) {
        next = e->next_all;
        if (cr_ev_waits_for_request(e))
            cr_ev_cut_idle_wait(e, &now);
    }
    if (l->nconns == 0)
        event_base_loopbreak(l->base);
}

static void cr_ev_on_stop_now(evutil_socket_t fd, short what, void *arg)
{
    cr_evloop *l = arg;

    (void)fd;
    (void)what;
    l->stopping = true;
    event_base_loopbreak(l->base);
}

/* ---- setup ---- */

static int cr_ev_start_pool(cr_evloop *l)
{
    l->threads = calloc((size_t)l->nthreads, sizeof(*l->threads));
    if (l->threads == NULL)
        return -1;
    for (int i = 0; i < l->nthreads; i++) {
        cr_pool_thread *t = malloc(sizeof(*t));
        int err;

        if (t == NULL)
            return -1;
        t->loop = l;
        t->index = i;
        err = pthread_create(&l->threads[i], NULL, cr_ev_pool_main, t);
        if (err != 0) {
            cr_log_errno(CR_LOG_CRIT, err, "pthread_create");
            free(t);
            l->nthreads = i;
            return -1;
        }
    }
    return 0;
}

static void cr_ev_stop_pool(cr_evloop *l)
{
    cr_work_queue_stop(l->pool_queue);
    for (int i = 0; i < l->nthreads; i++)
        pthread_join(l->threads[i], NULL);
    free(l->threads);
}

static const struct timeval *cr_ev_timeout(cr_evloop *l, int seconds)
{
    struct timeval tv = {seconds, 0};

    return event_base_init_common_timeout(l->base, &tv);
}

static int cr_ev_setup_events(cr_evloop *l)
{
    const cr_listeners *ls = &l->child->srv->listeners;

    l->tv_header = cr_ev_timeout(l, l->cfg->timeouts.header);
    l->tv_body = cr_ev_timeout(l, l->cfg->timeouts.body);
    l->tv_keepalive = cr_ev_timeout(l, l->cfg->timeouts.keepalive);
    l->tv_write = cr_ev_timeout(l, l->cfg->timeouts.write);
    l->tv_linger = cr_ev_timeout(l, CR_LINGER_SECONDS);
    l->listen_ev = calloc(ls->count ? ls->count : 1, sizeof(*l->listen_ev));
    if (l->listen_ev == NULL)
        return -1;
    for (size_t i = 0; i < ls->count; i++) {
        l->listen_ev[i] =
            event_new(l->base, ls->items[i].fd, EV_READ | EV_PERSIST, cr_ev_on_accept, l);
        if (l->listen_ev[i] == NULL)
            return -1;
        l->nlisten = i + 1;
    }
    l->stop_ev =
        event_new(l->base, cr_child_stop_fd(l->child, CR_WAIT_IDLE), EV_READ, cr_ev_on_stop, l);
    l->stop_now_ev =
        event_new(l->base, cr_child_stop_fd(l->child, CR_WAIT_BUSY), EV_READ, cr_ev_on_stop_now, l);
    l->done_ev = event_new(l->base, -1, 0, cr_ev_on_done, l);
    l->resume_ev = evtimer_new(l->base, cr_ev_on_resume, l);
    if (l->stop_ev == NULL || l->stop_now_ev == NULL || l->done_ev == NULL || l->resume_ev == NULL)
        return -1;
    if (event_add(l->stop_ev, NULL) != 0 || event_add(l->stop_now_ev, NULL) != 0)
        return -1;
    cr_ev_listeners(l, true);
    return 0;
}

static struct event_base *cr_ev_new_base(void)
{
    struct event_config *ec = event_config_new();
    struct event_base *base;

    if (ec == NULL)
        return NULL;
    /* Coalesces the remove/add of a connection handed to the pool and back
     * within one loop pass into no epoll_ctl at all. */
    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    /* Pipelined requests are run one callback each (cr_ev_finish): after
     * this many callbacks the loop polls again, so a client that packs
     * thousands into one write cannot starve the other connections, and
     * the loop's cached time stays fresh for the timeouts. */
    if (event_config_set_max_dispatch_interval(ec, NULL, CR_CALLBACKS_PER_PASS, 0) != 0)
        cr_log(CR_LOG_WARN, "cannot bound the callbacks of one event loop pass");
    base = event_base_new_with_config(ec);
    event_config_free(ec);
    return base;
}

static void cr_ev_cleanup(cr_evloop *l)
{
    while (l->all != NULL)
        cr_ev_close(l->all);
    for (int i = 0; i < l->nspares; i++) {
        free(l->spares[i]->buf);
        free(l->spares[i]);
    }
    free(l->spares);
    for (size_t i = 0; i < l->nlisten; i++)
        event_free(l->listen_ev[i]);
    free(l->listen_ev);
    if (l->stop_ev)
        event_free(l->stop_ev);
    if (l->stop_now_ev)
        event_free(l->stop_now_ev);
    if (l->done_ev)
        event_free(l->done_ev);
    if (l->resume_ev)
        event_free(l->resume_ev);
    if (l->base)
        event_base_free(l->base);
    cr_work_queue_free(l->pool_queue);
    pthread_mutex_destroy(&l->lock);
}

int cr_child_serve_events(cr_child *child, const cr_event_options *opt)
{
    cr_evloop l = {.child = child,
                   .cfg = &child->gen->cfg,
                   .nthreads = opt->threads,
                   .max_conns = opt->max_connections,
                   .queue_limit = opt->queue_limit ? opt->queue_limit : opt->threads * 64};
    int status = 1;

    pthread_mutex_init(&l.lock, NULL);
    /* Logs its own failure. */
    l.pool_queue = cr_work_queue_new(l.queue_limit);
    if (l.pool_queue == NULL)
        goto done;
    /* Before the base exists, or its locks are no-ops: event_active from the
     * pool threads needs them. */
    if (evthread_use_pthreads() != 0 || (l.base = cr_ev_new_base()) == NULL) {
        cr_log(CR_LOG_CRIT, "cannot create the event loop");
        goto done;
    }
    l.spares = calloc(CR_SPARE_CONNS, sizeof(*l.spares));
    if (l.spares == NULL || cr_ev_setup_events(&l) != 0 || cr_ev_start_pool(&l) != 0) {
        cr_log(CR_LOG_CRIT, "cannot set up the event MPM child");
        goto done;
    }
    l.event_thread = pthread_self();
    cr_child_set_state(child, opt->threads, CR_SLOT_READY);
    /* Stop signals land on this thread only (the pool threads were created
     * with them blocked); the handler raises the eventfd the loop watches. */
    if (pthread_sigmask(SIG_SETMASK, &child->wait_mask, NULL) != 0)
        cr_log_errno(CR_LOG_ERROR, errno, "pthread_sigmask");
    if (event_base_dispatch(l.base) < 0)
        cr_log(CR_LOG_ERROR, "event loop failed");
    status = 0;
done:
    if (l.threads != NULL)
        cr_ev_stop_pool(&l);
    cr_ev_cleanup(&l);
    return status;
}
