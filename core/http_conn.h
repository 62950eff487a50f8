/* One client connection and the request it is serving: the read buffer the
 * parser works over, the request handed to modules, the response being
 * built. The blocking driver used by the prefork and worker MPMs lives
 * here; it reads with timeouts, parses, routes, calls the handler, writes
 * and repeats while the connection is kept alive. */
#ifndef CR_HTTP_CONN_H
#define CR_HTTP_CONN_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "addr_rule.h"
#include "corral/request.h"
#include "http_parser.h"
#include "pool.h"
#include "response.h"
#include "suspend.h"

struct cr_child;

#define CR_CONN_POOL_BLOCK 4096

/* When the current request passed each phase boundary, in CLOCK_MONOTONIC
 * nanoseconds (cr_now_ns); 0 for a boundary it never reached (an error
 * answered before the handler). cr_conn_account turns them into the
 * scoreboard's per-phase times (cr_phase). */
typedef struct cr_conn_times {
    int64_t wait_from;     /* accepted, or the previous response written */
    int64_t first_byte;    /* the first byte of this request read */
    int64_t parsed;        /* head and body read */
    int64_t handler_start; /* a thread entered the handler */
    int64_t handler_end;   /* the response is complete (or suspended and finished) */
    int64_t done;          /* the response written; set by cr_conn_account */
    int64_t arrived;       /* the kernel received those bytes (0: unknown) */
} cr_conn_times;

static inline int64_t cr_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

typedef struct cr_conn {
    /* ---- the connection: lives from accept to close ---- */
    int fd;
    struct cr_child *child;
    int thread;
    char remote_addr[INET6_ADDRSTRLEN];
    unsigned remote_port;
    cr_addr peer; /* remote_addr in binary, for the routes' allow and deny */

    char *buf; /* read buffer: header_bytes + 1 */
    size_t cap;
    size_t len;
    unsigned nrequests;

    const cr_conn_driver *driver;
    void *driver_data;
    int wake_fd; /* the blocking driver's wake-up eventfd, made at the first suspend */

    /* What an event-thread cr_response_flush could not send at once; the
     * buffer is kept between requests, the bytes never outlive one. */
    char *pending;
    size_t pending_len, pending_off, pending_cap;

    cr_conn_times t; /* carried into the next request by cr_conn_next_request */

    /* The parsed head; the parser initializes it for each request. */
    cr_http_head head;

    /* ---- the request: everything from CR_CONN_REQUEST_FIRST up to the
     * pool is zeroed by cr_conn_next_request, so no state of one request
     * can leak into the next one on a kept-alive connection. Add
     * per-request fields here. ---- */
    size_t scanned; /* parser progress over the current head */
    size_t head_len;
    cr_request req;
    cr_response resp;
    bool keep_alive;
    bool send_failed;    /* a flush failed: the rest of the response is not sent */
    uint64_t bytes_sent; /* body bytes of the current response */
    size_t consumed;     /* bytes of buf that belong to the current request */

    /* Progress of a request body and of a response write, for the event
     * driver, which does both a piece at a time. */
    cr_chunked_decoder chunked;
    char *body;
    size_t body_len;
    size_t body_cap;
    size_t body_want;
    struct iovec out[1 + CR_RESPONSE_MAX_IOV + CR_RESPONSE_FRAMING_IOV];
    int nout;
    int out_next;
    off_t file_off;
    size_t file_left;
    /* A body the handler reads itself (request_body.c): decoded bytes not
     * yet delivered are buf[body_dpos, body_dend), raw input follows. */
    bool body_stream;
    bool body_ended;
    uint64_t body_left; /* Content-Length bytes not yet taken in */
    size_t body_dpos, body_dend;
    size_t body_read; /* delivered by cr_request_read */

    /* A request the handler suspended (suspend.h). */
    atomic_int run_state;
    cr_timer *timers;
    cr_abort_fn on_abort;
    void *abort_arg;
    bool handler_suspended; /* the handler returned CR_SUSPENDED */

    /* ---- the pool: reset, not zeroed, between requests ---- */
    cr_pool pool;
    _Alignas(16) char pool_block[CR_CONN_POOL_BLOCK];
} cr_conn;

/* The first per-request field of cr_conn (see above). */
#define CR_CONN_REQUEST_FIRST scanned

/* The connection a request belongs to. */
static inline cr_conn *cr_conn_of(const cr_request *r)
{
    return (cr_conn *)((char *)r - offsetof(cr_conn, req));
}

/* Resets c for a new connection on fd; the buffer is the caller's. */
void cr_conn_init(cr_conn *c, struct cr_child *child, int thread, int fd);

/* Records the client's address as text. */
void cr_conn_set_peer(cr_conn *c, const struct sockaddr *sa);

const struct cr_config *cr_conn_config(const cr_conn *c);
struct cr_worker_score *cr_conn_score(const cr_conn *c);

/* Copies the request line and client into the scoreboard slot. */
void cr_conn_note_request(cr_conn *c);

/* Fills c->req from the parsed head and normalizes the path. Returns 0 or
 * an HTTP status to answer with. */
int cr_conn_begin_request(cr_conn *c);

/* Appends n bytes to a request body kept in the pool, within the body
 * limit. Returns 0, 413 or 500. */
int cr_body_append(cr_conn *c, char **body, size_t *len, size_t *cap, const char *data, size_t n);

/* Whether the connection may serve another request after this one. */
bool cr_conn_may_keep_alive(const cr_conn *c);

/* read(2) from the client, except that the first read of a request also
 * stamps c->t.first_byte and, from the kernel's receive timestamp (see
 * listen.c), c->t.arrived. Returns and sets errno as read does. */
ssize_t cr_conn_recv(cr_conn *c, char *into, size_t room);

/* Counts the finished request in the scoreboard (its phase times too) and
 * the access log. */
void cr_conn_account(cr_conn *c);

/* Forgets the finished request: response, pool, request fields. */
void cr_conn_next_request(cr_conn *c);

/* Runs the handler chain for the parsed request in c and leaves the
 * response in c->resp (an error page when nothing served it). Returns
 * CR_DONE, or CR_SUSPENDED when the handler keeps the request: the driver
 * then calls cr_conn_park on its own thread. */
int cr_http_run_handlers(cr_conn *c);

/* Builds the standard page for status into c->resp. */
void cr_http_error_page(cr_conn *c, int status);

/* Formats the response head into buf (at most cap bytes); returns its
 * length, or 0 when it does not fit. */
size_t cr_http_format_head(cr_conn *c, char *buf, size_t cap);

/* Milliseconds until a CLOCK_MONOTONIC deadline (cr_monotonic_ms), 0 when
 * past. */
int cr_ms_left(long long deadline);

/* Waits for the client socket to be ready for events. 1 ready; 0 timed
 * out or asked to stop; -1 error. An idle wait also ends on a graceful
 * stop: nothing is lost by closing a connection between requests. */
int cr_conn_wait(cr_conn *c, short events, long long deadline, bool idle);

/* Sends all of iov, waiting for the socket as needed (the write timeout
 * between progress). 0, or -1 when the client is gone or too slow. more:
 * more data follows at once (MSG_MORE). */
int cr_conn_send_all(cr_conn *c, struct iovec *iov, int niov, bool more);

/* Whether the route that gets the request reads its body itself. */
bool cr_conn_streams_body(const cr_conn *c);

/* Leaves the body of the request to the handler's cr_request_read. */
void cr_body_stream_begin(cr_conn *c);

/* After the handler: where the next request starts (c->consumed), or no
 * keep-alive when the body was not read to its end. */
void cr_body_stream_end(cr_conn *c);

/* Serves connection fd until it closes; fd is closed on return. */
void cr_http_serve_blocking(struct cr_child *child, int thread, int fd);

#endif
