/* corral-bench's load generator: HTTP/1.1 clients on one libevent thread.
 * Closed loop: every client sends its next request as soon as the answer
 * to the last one is in. Open loop (a rate): requests fall due on a fixed
 * schedule whatever the server does, wait for a free client if none is,
 * and their latency counts from when they were due, so a server that
 * stalls cannot hide the queue it builds (coordinated omission). */
#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define CR_CLIENT_BUF      65536
#define CR_SLOW_READ_BYTES 64
#define CR_RETRY_MS        10
#define CR_DUE_QUEUE       (1 << 20)

typedef enum cr_client_state {
    CR_CL_CONNECTING,
    CR_CL_SENDING,
    CR_CL_READING,
    CR_CL_WAITING, /* open loop: no request due */
    CR_CL_PAUSED,  /* slow client between two bytes, or before a reconnect */
} cr_client_state;

/* Where the response parser is. */
typedef enum cr_resp_state {
    CR_RS_HEAD,
    CR_RS_BODY_LENGTH,
    CR_RS_CHUNK_SIZE,
    CR_RS_CHUNK_DATA,
    CR_RS_CHUNK_CRLF,
    CR_RS_TRAILER,
    CR_RS_UNTIL_CLOSE,
} cr_resp_state;

struct cr_loadgen;

typedef struct cr_client {
    struct event ev;
    struct event pause;
    struct cr_loadgen *lg;
    int fd;
    short watching; /* the events the connection is watched for */
    cr_client_state state;
    size_t sent;       /* bytes of the request written */
    uint64_t start_us; /* when the request was due (open loop) or first sent */
    bool busy;         /* a request is under way */
    /* the response */
    cr_resp_state rs;
    char head[4096];
    size_t head_len;
    uint64_t left; /* body or chunk bytes still to come */
    int status;
    bool close_after;
    uint64_t resp_bytes;
    char line[32]; /* a chunk size line */
    size_t line_len;
} cr_client;

typedef struct cr_loadgen {
    const cr_load_spec *spec;
    cr_load_result *out;
    struct event_base *base;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char *request;
    size_t request_len;
    cr_client *clients;
    struct event *tick_ev, *due_ev, *end_ev;
    uint64_t t0_us, measure_from_us, measure_to_us;
    double last_progress_s, last_tick_s;
    bool draining; /* the time is up: requests under way finish, no new ones */
    uint64_t drain_until_us;
    /* open loop */
    uint64_t *due;
    size_t due_head, due_tail;
    double next_due_us;
    double interval_us;
    char sink[CR_CLIENT_BUF];
} cr_loadgen;

static void cr_client_on_event(evutil_socket_t fd, short what, void *arg);
static void cr_client_start(cr_client *cl);
static void cr_client_send(cr_client *cl);

uint64_t cr_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void cr_pin(pid_t pid, int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(pid, sizeof(set), &set) != 0)
        fprintf(stderr, "corral-bench: cannot pin pid %d to CPU %d: %s\n", (int)pid, cpu,
                strerror(errno));
}

double cr_rusage_cpu_s(const struct rusage *ru)
{
    return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) +
           (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1e6;
}

int cr_resolve_addr(const char *host, unsigned port, struct sockaddr_storage *ss, socklen_t *len)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
    struct addrinfo *ai;
    char service[16];
    int rc;

    snprintf(service, sizeof(service), "%u", port);
    rc = getaddrinfo(host, service, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "corral-bench: address %s: %s\n", host, gai_strerror(rc));
        return -1;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

/* ---- the due queue (open loop) ---- */

static bool cr_due_take(cr_loadgen *lg, uint64_t *due)
{
    if (lg->due_head == lg->due_tail)
        return false;
    *due = lg->due[lg->due_head++ % CR_DUE_QUEUE];
    return true;
}

static void cr_due_push(cr_loadgen *lg, uint64_t due)
{
    /* A queue this long means the server stopped: later ones would only
     * measure the same stall again. */
    if (lg->due_tail - lg->due_head >= CR_DUE_QUEUE)
        return;
    lg->due[lg->due_tail++ % CR_DUE_QUEUE] = due;
}

/* ---- a client's connection ---- */

/* Watches the connection for what; a no-op when it already does, so that
 * a keep-alive client costs one epoll_wait per request and no epoll_ctl
 * (wrk re-arms EPOLLOUT for every request: two epoll_ctl more): the
 * generator must not be the bottleneck it measures. */
static void cr_client_watch(cr_client *cl, short what)
{
    if (cl->watching == what && event_pending(&cl->ev, what, NULL))
        return;
    cl->watching = what;
    event_del(&cl->ev);
    event_assign(&cl->ev, cl->lg->base, cl->fd, (short)(what | EV_PERSIST), cr_client_on_event, cl);
    event_add(&cl->ev, NULL);
}

/* Drops a connection whose request is still under way with a reset, so
 * that the server does not serve (and count) it later, during another run. */
static void cr_client_abandon(cr_client *cl)
{
    struct linger reset = {1, 0};

    if (cl->fd >= 0 && cl->busy)
        setsockopt(cl->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
}

static void cr_client_close(cr_client *cl)
{
    event_del(&cl->ev);
    event_del(&cl->pause);
    if (cl->fd >= 0)
        close(cl->fd);
    cl->fd = -1;
}

static void cr_client_pause(cr_client *cl, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    event_del(&cl->ev);
    cl->state = CR_CL_PAUSED;
    evtimer_add(&cl->pause, &tv);
}

static bool cr_in_window(const cr_loadgen *lg, uint64_t t)
{
    return t >= lg->measure_from_us && t < lg->measure_to_us;
}

/* The request failed: count it, drop the connection, start again. */
static void cr_client_fail(cr_client *cl, uint64_t *counter)
{
    if (cr_in_window(cl->lg, cr_now_us()))
        (*counter)++;
    cr_client_abandon(cl);
    cr_client_close(cl);
    cl->busy = false;
    cr_client_pause(cl, CR_RETRY_MS);
}

static int cr_client_connect(cr_client *cl)
{
    cr_loadgen *lg = cl->lg;
    int one = 1;

    cl->fd = socket(lg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (cl->fd < 0) {
        fprintf(stderr, "corral-bench: socket: %s\n", strerror(errno));
        return -1;
    }
    setsockopt(cl->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(cl->fd, (struct sockaddr *)&lg->addr, lg->addrlen) != 0 && errno != EINPROGRESS)
        return -1;
    cl->state = CR_CL_CONNECTING;
    cr_client_watch(cl, EV_WRITE);
    return 0;
}

static void cr_client_reset_response(cr_client *cl)
{
    cl->rs = CR_RS_HEAD;
    cl->head_len = 0;
    cl->left = 0;
    cl->status = 0;
    cl->close_after = false;
    cl->resp_bytes = 0;
    cl->line_len = 0;
}

/* Starts the next request: now (closed loop) or when one is due. */
static void cr_client_next(cr_client *cl)
{
    cr_loadgen *lg = cl->lg;
    uint64_t due;

    if (lg->draining) {
        cl->busy = false;
        cl->state = CR_CL_WAITING;
        cr_client_close(cl);
        return;
    }
    if (lg->spec->rate > 0) {
        if (!cr_due_take(lg, &due)) {
            cl->state = CR_CL_WAITING;
            cl->busy = false;
            event_del(&cl->ev);
            return;
        }
        cl->start_us = due;
    } else {
        cl->start_us = cr_now_us();
    }
    cl->busy = true;
    cl->sent = 0;
    cr_client_reset_response(cl);
    if (cl->fd < 0) {
        if (cr_client_connect(cl) != 0)
            cr_client_fail(cl, &lg->out->err_connect);
        return;
    }
    cl->state = CR_CL_SENDING;
    cr_client_send(cl);
}

static void cr_client_send(cr_client *cl)
{
    cr_loadgen *lg = cl->lg;
    size_t want = lg->request_len - cl->sent;
    ssize_t n;

    if (lg->spec->kind == CR_LOAD_SLOW)
        want = 1;
    n = send(cl->fd, lg->request + cl->sent, want, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            cr_client_fail(cl, &lg->out->err_read);
        else
            cr_client_watch(cl, EV_WRITE);
        return;
    }
    cl->sent += (size_t)n;
    if (cl->sent == lg->request_len) {
        cl->state = CR_CL_READING;
        cr_client_watch(cl, EV_READ);
        return;
    }
    if (lg->spec->kind == CR_LOAD_SLOW)
        cr_client_pause(cl, lg->spec->slow_gap_ms);
    else
        cr_client_watch(cl, EV_WRITE);
}

/* The head is in: status, how the body is delimited, whether the server
 * closes after it. */
static void cr_client_parse_head(cr_client *cl)
{
    const char *p = cl->head, *end = cl->head + cl->head_len;
    bool chunked = false, have_length = false;

    cl->status = cl->head_len > 12 ? atoi(cl->head + 9) : 0;
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL && ++p < end) {
        if (strncasecmp(p, "content-length:", 15) == 0) {
            cl->left = strtoull(p + 15, NULL, 10);
            have_length = true;
        } else if (strncasecmp(p, "transfer-encoding:", 18) == 0) {
            chunked = strstr(p, "chunked") != NULL && strstr(p, "chunked") < end;
        } else if (strncasecmp(p, "connection:", 11) == 0) {
            const char *eol = memchr(p, '\n', (size_t)(end - p));
            size_t n = eol ? (size_t)(eol - p) : (size_t)(end - p);

            cl->close_after = memmem(p, n, "close", 5) != NULL;
        }
    }
    if (cl->status == 204 || cl->status == 304 || (cl->status >= 100 && cl->status < 200))
        cl->rs = CR_RS_BODY_LENGTH, cl->left = 0;
    else if (chunked)
        cl->rs = CR_RS_CHUNK_SIZE;
    else if (have_length)
        cl->rs = CR_RS_BODY_LENGTH;
    else
        cl->rs = CR_RS_UNTIL_CLOSE;
}

/* Takes n bytes of the head; returns how many were used. */
static size_t cr_client_take_head(cr_client *cl, const char *data, size_t n)
{
    size_t room = sizeof(cl->head) - cl->head_len, take = n < room ? n : room;
    char *end;

    memcpy(cl->head + cl->head_len, data, take);
    cl->head_len += take;
    end = memmem(cl->head, cl->head_len, "\r\n\r\n", 4);
    if (end == NULL)
        return take;
    take -= cl->head_len - (size_t)(end + 4 - cl->head);
    cl->head_len = (size_t)(end + 4 - cl->head);
    cr_client_parse_head(cl);
    return take;
}

/* Walks a chunked body; returns the bytes used. */
static size_t cr_client_take_chunked(cr_client *cl, const char *data, size_t n)
{
    size_t used = 0;

    while (used < n && cl->rs != CR_RS_BODY_LENGTH) {
        char ch = data[used];

        if (cl->rs == CR_RS_CHUNK_DATA) {
            size_t take = n - used < cl->left ? n - used : (size_t)cl->left;

            used += take;
            cl->left -= take;
            if (cl->left == 0)
                cl->rs = CR_RS_CHUNK_CRLF, cl->left = 2;
            continue;
        }
        used++;
        if (cl->rs == CR_RS_CHUNK_CRLF) {
            if (--cl->left == 0)
                cl->rs = CR_RS_CHUNK_SIZE;
        } else if (ch != '\n') {
            if (cl->line_len < sizeof(cl->line) - 1)
                cl->line[cl->line_len++] = ch;
        } else if (cl->rs == CR_RS_CHUNK_SIZE) {
            cl->line[cl->line_len] = '\0';
            cl->left = strtoull(cl->line, NULL, 16);
            cl->line_len = 0;
            cl->rs = cl->left ? CR_RS_CHUNK_DATA : CR_RS_TRAILER;
        } else if (cl->line_len <= 1) { /* the empty line ending the trailer */
            cl->rs = CR_RS_BODY_LENGTH;
            cl->left = 0;
        } else {
            cl->line_len = 0;
        }
    }
    return used;
}

/* Feeds received bytes to the parser; true once the response is whole. */
static bool cr_client_feed(cr_client *cl, const char *data, size_t n)
{
    while (n > 0) {
        size_t used;

        if (cl->rs == CR_RS_HEAD)
            used = cr_client_take_head(cl, data, n);
        else if (cl->rs == CR_RS_BODY_LENGTH)
            used = n < cl->left ? n : (size_t)cl->left, cl->left -= used;
        else if (cl->rs == CR_RS_UNTIL_CLOSE)
            used = n;
        else
            used = cr_client_take_chunked(cl, data, n);
        data += used;
        n -= used;
        if (cl->rs == CR_RS_BODY_LENGTH && cl->left == 0)
            return true;
        if (used == 0)
            break;
    }
    return cl->rs == CR_RS_BODY_LENGTH && cl->left == 0;
}

static void cr_client_done(cr_client *cl)
{
    cr_loadgen *lg = cl->lg;
    uint64_t now = cr_now_us();
    bool ok = cl->status >= 200 && cl->status < 400;

    lg->out->requests_total++;
    if (cr_in_window(lg, now)) {
        if (ok) {
            lg->out->requests++;
            lg->out->bytes += cl->resp_bytes;
            cr_hist_add(&lg->out->latency, now - cl->start_us);
        } else {
            lg->out->err_status++;
        }
    }
    cl->busy = false;
    if (cl->close_after || lg->spec->kind == CR_LOAD_CLOSE)
        cr_client_close(cl);
    cr_client_next(cl);
}

static void cr_client_read(cr_client *cl)
{
    cr_loadgen *lg = cl->lg;
    size_t want = lg->spec->kind == CR_LOAD_SLOW ? CR_SLOW_READ_BYTES : sizeof(lg->sink);
    ssize_t n = recv(cl->fd, lg->sink, want, 0);

    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            cr_client_fail(cl, &lg->out->err_read);
        return;
    }
    if (n == 0) {
        if (cl->rs == CR_RS_UNTIL_CLOSE) {
            cl->close_after = true;
            cl->rs = CR_RS_BODY_LENGTH;
            cr_client_done(cl);
            return;
        }
        cr_client_fail(cl, &lg->out->err_read);
        return;
    }
    cl->resp_bytes += (uint64_t)n;
    if (cr_client_feed(cl, lg->sink, (size_t)n)) {
        cr_client_done(cl);
        return;
    }
    if (lg->spec->kind == CR_LOAD_SLOW)
        cr_client_pause(cl, lg->spec->slow_gap_ms);
}

static void cr_client_connected(cr_client *cl)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(cl->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        cr_client_fail(cl, &cl->lg->out->err_connect);
        return;
    }
    cl->state = CR_CL_SENDING;
    cr_client_send(cl);
}

static void cr_client_on_event(evutil_socket_t fd, short what, void *arg)
{
    cr_client *cl = arg;

    (void)fd;
    (void)what;
    if (cl->state == CR_CL_CONNECTING)
        cr_client_connected(cl);
    else if (cl->state == CR_CL_SENDING)
        cr_client_send(cl);
    else if (cl->state == CR_CL_READING)
        cr_client_read(cl);
}

/* A pause ended: a slow client's next byte or read, or a reconnect. */
static void cr_client_on_pause(evutil_socket_t fd, short what, void *arg)
{
    cr_client *cl = arg;

    (void)fd;
    (void)what;
    if (cl->fd < 0 || !cl->busy) {
        cr_client_start(cl);
        return;
    }
    if (cl->sent < cl->lg->request_len) {
        cl->state = CR_CL_SENDING;
        cr_client_watch(cl, EV_WRITE);
    } else {
        cl->state = CR_CL_READING;
        cr_client_watch(cl, EV_READ);
    }
}

static void cr_client_start(cr_client *cl)
{
    cl->busy = false;
    cr_client_next(cl);
}

/* ---- the schedule ---- */

static void cr_lg_dispatch_due(cr_loadgen *lg)
{
    for (int i = 0; i < lg->spec->connections && lg->due_head != lg->due_tail; i++) {
        cr_client *cl = &lg->clients[i];

        if (cl->state == CR_CL_WAITING && !cl->busy)
            cr_client_next(cl);
    }
}

static void cr_lg_on_due(evutil_socket_t fd, short what, void *arg)
{
    cr_loadgen *lg = arg;
    uint64_t now = cr_now_us();

    (void)fd;
    (void)what;
    while (lg->next_due_us <= (double)now) {
        cr_due_push(lg, (uint64_t)lg->next_due_us);
        lg->next_due_us += lg->interval_us;
    }
    cr_lg_dispatch_due(lg);
}

static void cr_lg_check_timeouts(cr_loadgen *lg, uint64_t now)
{
    uint64_t limit = (uint64_t)lg->spec->timeout_ms * 1000u;

    for (int i = 0; i < lg->spec->connections; i++) {
        cr_client *cl = &lg->clients[i];

        if (cl->busy && cl->state != CR_CL_PAUSED && now - cl->start_us > limit &&
            now > cl->start_us)
            cr_client_fail(cl, &lg->out->err_timeout);
    }
}

static void cr_lg_on_tick(evutil_socket_t fd, short what, void *arg)
{
    cr_loadgen *lg = arg;
    uint64_t now = cr_now_us();
    double elapsed = (double)(now - lg->t0_us) / 1e6;

    (void)fd;
    (void)what;
    cr_lg_check_timeouts(lg, now);
    if (lg->spec->tick != NULL && elapsed - lg->last_tick_s >= 0.25) {
        lg->last_tick_s = elapsed;
        lg->spec->tick(lg->spec->tick_arg);
    }
    if (lg->spec->progress != NULL && elapsed - lg->last_progress_s >= 0.5) {
        lg->last_progress_s = elapsed;
        lg->spec->progress(lg->spec->progress_arg, elapsed, lg->out->requests_total);
    }
}

static bool cr_lg_any_busy(const cr_loadgen *lg)
{
    for (int i = 0; i < lg->spec->connections; i++)
        if (lg->clients[i].busy)
            return true;
    return false;
}

/* The time is up: let the requests under way finish (briefly), so that
 * the server's count and ours can be compared exactly. */
static void cr_lg_on_end(evutil_socket_t fd, short what, void *arg)
{
    cr_loadgen *lg = arg;
    struct timeval again = {0, 10000};

    (void)fd;
    (void)what;
    if (!lg->draining) {
        lg->draining = true;
        lg->drain_until_us = cr_now_us() + 2000000u;
        if (lg->due_ev != NULL)
            event_del(lg->due_ev);
    }
    if (!cr_lg_any_busy(lg) || cr_now_us() > lg->drain_until_us) {
        event_base_loopbreak(lg->base);
        return;
    }
    evtimer_add(lg->end_ev, &again);
}

static int cr_lg_build_request(cr_loadgen *lg)
{
    const cr_load_spec *s = lg->spec;
    const char *conn = s->kind == CR_LOAD_CLOSE ? "close" : "keep-alive";
    int n = asprintf(&lg->request,
                     "GET %s HTTP/1.1\r\nHost: %s:%u\r\nUser-Agent: corral-bench\r\n"
                     "Connection: %s\r\n\r\n",
                     s->path, s->host, s->port, conn);

    if (n < 0) {
        lg->request = NULL;
        return -1;
    }
    lg->request_len = (size_t)n;
    return 0;
}

static int cr_lg_setup(cr_loadgen *lg)
{
    const cr_load_spec *s = lg->spec;
    struct timeval tick = {0, 100000}, due = {0, 1000};
    struct timeval end = {(time_t)(s->warmup_s + s->duration_s),
                          (suseconds_t)((s->warmup_s + s->duration_s -
                                         (double)(time_t)(s->warmup_s + s->duration_s)) *
                                        1e6)};

    if (cr_resolve_addr(s->host, s->port, &lg->addr, &lg->addrlen) != 0 ||
        cr_lg_build_request(lg) != 0)
        return -1;
    lg->base = event_base_new();
    lg->clients = calloc((size_t)s->connections, sizeof(*lg->clients));
    if (lg->base == NULL || lg->clients == NULL)
        return -1;
    lg->tick_ev = event_new(lg->base, -1, EV_PERSIST, cr_lg_on_tick, lg);
    lg->end_ev = evtimer_new(lg->base, cr_lg_on_end, lg);
    if (lg->tick_ev == NULL || lg->end_ev == NULL || event_add(lg->tick_ev, &tick) != 0 ||
        evtimer_add(lg->end_ev, &end) != 0)
        return -1;
    if (s->rate > 0) {
        lg->due = malloc(sizeof(*lg->due) * CR_DUE_QUEUE);
        lg->due_ev = event_new(lg->base, -1, EV_PERSIST, cr_lg_on_due, lg);
        if (lg->due == NULL || lg->due_ev == NULL || event_add(lg->due_ev, &due) != 0)
            return -1;
        lg->interval_us = 1e6 / s->rate;
    }
    return 0;
}

static void cr_lg_cleanup(cr_loadgen *lg)
{
    for (int i = 0; lg->clients != NULL && i < lg->spec->connections; i++) {
        cr_client_abandon(&lg->clients[i]);
        cr_client_close(&lg->clients[i]);
    }
    free(lg->clients);
    if (lg->tick_ev)
        event_free(lg->tick_ev);
    if (lg->due_ev)
        event_free(lg->due_ev);
    if (lg->end_ev)
        event_free(lg->end_ev);
    if (lg->base)
        event_base_free(lg->base);
    free(lg->due);
    free(lg->request);
}

int cr_load_run(const cr_load_spec *spec, cr_load_result *out)
{
    cr_loadgen *lg = calloc(1, sizeof(*lg));
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (lg == NULL)
        return -1;
    lg->spec = spec;
    lg->out = out;
    if (cr_lg_setup(lg) != 0) {
        fprintf(stderr, "corral-bench: cannot set up the load generator\n");
        goto done;
    }
    lg->t0_us = cr_now_us();
    lg->measure_from_us = lg->t0_us + (uint64_t)(spec->warmup_s * 1e6);
    lg->measure_to_us = lg->measure_from_us + (uint64_t)(spec->duration_s * 1e6);
    lg->next_due_us = (double)lg->t0_us;
    for (int i = 0; i < spec->connections; i++) {
        cr_client *cl = &lg->clients[i];

        cl->lg = lg;
        cl->fd = -1;
        evtimer_assign(&cl->pause, lg->base, cr_client_on_pause, cl);
        event_assign(&cl->ev, lg->base, -1, 0, cr_client_on_event, cl);
        cr_client_start(cl);
    }
    event_base_dispatch(lg->base);
    out->seconds = spec->duration_s;
    rc = 0;
done:
    cr_lg_cleanup(lg);
    free(lg);
    return rc;
}

/* ---- idle connections ---- */

struct cr_idle_set {
    int *fds;
    int count;
};

/* Idle clients, all at once: connect, send one request, read its answer;
 * the sockets that got one stay open. Done together, so that a server
 * that can answer only some (a process per connection) costs one timeout,
 * not one per client. */
typedef struct cr_idle_client {
    int fd;
    size_t sent;
    bool answered;
} cr_idle_client;

static void cr_idle_step(cr_idle_client *c, short revents, const char *req, size_t reqlen)
{
    char buf[4096];
    ssize_t n;

    if ((revents & POLLOUT) && c->sent < reqlen) {
        n = send(c->fd, req + c->sent, reqlen - c->sent, MSG_NOSIGNAL);
        if (n > 0)
            c->sent += (size_t)n;
        else if (n < 0 && errno != EAGAIN && errno != EINPROGRESS && errno != ENOTCONN)
            c->sent = reqlen + 1; /* failed */
    }
    if ((revents & (POLLIN | POLLHUP | POLLERR)) && c->sent == reqlen) {
        /* The answer to /hello is small: its head and body come in one read. */
        n = recv(c->fd, buf, sizeof(buf), 0);
        c->answered = n > 12 && memcmp(buf, "HTTP/1.1 2", 10) == 0;
        if (!c->answered)
            c->sent = reqlen + 1;
    }
}

static void cr_idle_exchange(cr_idle_client *cl, int count, const char *req, int timeout_ms)
{
    struct pollfd *p = count > 0 ? calloc((size_t)count, sizeof(*p)) : NULL;
    size_t reqlen = strlen(req);
    uint64_t deadline = cr_now_us() + (uint64_t)timeout_ms * 1000u;
    int pending = count;

    if (count <= 0 || p == NULL) {
        free(p);
        return;
    }
    while (pending > 0 && cr_now_us() < deadline) {
        pending = 0;
        for (int i = 0; i < count; i++) {
            bool busy = cl[i].fd >= 0 && !cl[i].answered && cl[i].sent <= reqlen;

            p[i].fd = busy ? cl[i].fd : -1;
            p[i].events = cl[i].sent < reqlen ? POLLOUT : POLLIN;
            pending += busy;
        }
        if (pending == 0 || poll(p, (nfds_t)count, 100) < 0)
            break;
        for (int i = 0; i < count; i++)
            if (p[i].fd >= 0 && p[i].revents)
                cr_idle_step(&cl[i], p[i].revents, req, reqlen);
    }
    free(p);
}

cr_idle_set *cr_idle_open(const char *host, unsigned port, const char *path, int count,
                          int timeout_ms)
{
    cr_idle_set *s = calloc(1, sizeof(*s));
    cr_idle_client *cl = calloc((size_t)(count > 0 ? count : 1), sizeof(*cl));
    struct sockaddr_storage ss;
    socklen_t len;
    char req[512];

    if (s == NULL || cl == NULL || cr_resolve_addr(host, port, &ss, &len) != 0)
        goto fail;
    s->fds = malloc(sizeof(*s->fds) * (size_t)(count > 0 ? count : 1));
    if (s->fds == NULL)
        goto fail;
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s:%u\r\nUser-Agent: corral-bench\r\n\r\n",
             path, host, port);
    for (int i = 0; i < count; i++) {
        cl[i].fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (cl[i].fd >= 0 && connect(cl[i].fd, (struct sockaddr *)&ss, len) != 0 &&
            errno != EINPROGRESS) {
            close(cl[i].fd);
            cl[i].fd = -1;
        }
    }
    cr_idle_exchange(cl, count, req, timeout_ms);
    for (int i = 0; i < count; i++) {
        /* Reset, not closed: a server that accepts the connection later
         * must not find a whole request in it and serve (and count) it
         * during the next run. */
        struct linger reset = {1, 0};

        if (cl[i].answered) {
            s->fds[s->count++] = cl[i].fd;
        } else if (cl[i].fd >= 0) {
            setsockopt(cl[i].fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
            close(cl[i].fd);
        }
    }
    free(cl);
    return s;
fail:
    if (s != NULL)
        free(s->fds);
    free(s);
    free(cl);
    return NULL;
}

int cr_idle_held(const cr_idle_set *s)
{
    int held = 0;

    for (int i = 0; i < s->count; i++) {
        struct pollfd p = {.fd = s->fds[i], .events = POLLIN | POLLRDHUP};
        char c;

        if (poll(&p, 1, 0) == 0)
            held++;
        else if (!(p.revents & (POLLHUP | POLLERR | POLLRDHUP)) &&
                 recv(s->fds[i], &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0)
            held++; /* data, not a close: still open */
    }
    return held;
}

void cr_idle_close(cr_idle_set *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < s->count; i++)
        close(s->fds[i]);
    free(s->fds);
    free(s);
}
