/* The request a handler module receives, the calls that build its
 * response, and the calls that let a handler answer later: suspend the
 * request, finish it from any thread or from a core timer. Strings in
 * cr_request point into the connection's buffers and stay valid until the
 * response is finished; memory from cr_palloc lives exactly as long. */
#ifndef CORRAL_REQUEST_H
#define CORRAL_REQUEST_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "corral/types.h"

typedef enum cr_method {
    CR_METHOD_UNKNOWN = 0, /* any other token: method_name has it */
    CR_METHOD_GET,
    CR_METHOD_HEAD,
    CR_METHOD_POST,
    CR_METHOD_PUT,
    CR_METHOD_DELETE,
    CR_METHOD_OPTIONS,
    CR_METHOD_PATCH,
    CR_METHOD_TRACE,
    CR_METHOD_CONNECT,
} cr_method;

typedef struct cr_pool cr_pool;

typedef struct cr_request {
    cr_method method;
    cr_str method_name;       /* as sent */
    cr_str target;            /* request-target as sent, e.g. "/a%20b?x=1" */
    cr_str path;              /* percent-decoded, dot segments removed, NUL-terminated */
    cr_str query;             /* raw query string without '?', len 0 when absent */
    int version_minor;        /* HTTP/1.<minor> */
    const cr_header *headers; /* every header as received, in order: iterate [0, nheaders) */
    size_t nheaders;
    cr_str host;             /* Host header, len 0 when absent */
    cr_str body;             /* the whole request body (de-chunked), len 0 when none; empty
                              * when the route streams it (read it with cr_request_read) */
    const char *remote_addr; /* client address as text, e.g. "127.0.0.1" */
    unsigned remote_port;
    cr_str route_path; /* the prefix of the route that matched */
    void *route_data;  /* what the module's route_init stored for this route */
    cr_pool *pool;     /* freed when the request ends */
} cr_request;

/* First header named `name` (case-insensitive), or NULL. */
const cr_str *cr_request_header(const cr_request *r, const char *name);

/* The next header named `name` after the one `prev` points to (NULL: the
 * first), for headers sent more than once; NULL when there is no other. */
const cr_str *cr_request_header_next(const cr_request *r, const char *name, const cr_str *prev);

/* The argument `name` of the query string, else of an
 * application/x-www-form-urlencoded body (not on a route that streams its
 * body: the query only): percent- and '+'-decoded into
 * request memory and NUL-terminated; its length (it may hold a NUL) in
 * *len when len is not NULL. NULL when absent or out of memory. */
const char *cr_request_arg(cr_request *r, const char *name, size_t *len);

/* Reads the next piece of the request body (de-chunked) into buf: the
 * number of bytes, 0 at its end, or CR_ERROR with errno ECONNRESET (the
 * client is gone), ETIMEDOUT (too slow), EPROTO (malformed chunks) or
 * EMSGSIZE (more than limits.body_bytes; what came before is read). Under a
 * route flagged CR_MODULE_STREAM_BODY the bytes come off the socket as
 * they arrive (an "Expect: 100-continue" is answered at the first call);
 * elsewhere from r->body. Call it from the handler, before suspending. A
 * body not read to its end costs the connection its keep-alive. */
ssize_t cr_request_read(cr_request *r, void *buf, size_t len);

/* The local address and port the connection came in on, as text
 * ("127.0.0.1", "::1", "unix"), written to buf. CR_OK or CR_ERROR. */
int cr_request_local_addr(const cr_request *r, char *buf, size_t buflen, unsigned *port);

/* Memory that lives until the request ends; NULL when out of memory. */
void *cr_palloc(cr_request *r, size_t size);

/* Sets the response status (default 200). */
void cr_response_status(cr_request *r, int status);

/* Adds a response header. Refuses (CR_ERROR) a name that is not a token or a
 * value that holds CR, LF or NUL. Date, Server, Content-Length, Connection
 * and Transfer-Encoding are set by the core. */
int cr_response_header(cr_request *r, const char *name, const char *value);

/* Appends a copy of data to the response body. */
int cr_response_write(cr_request *r, const void *data, size_t len);

/* Appends data without copying; it must stay valid until the request ends
 * (string literals, data owned by the module). */
int cr_response_write_ref(cr_request *r, const void *data, size_t len);

/* Appends a copy of the n buffers of iov, in order. */
int cr_response_writev(cr_request *r, const struct iovec *iov, int n);

/* Sends the head and what was written so far, now: the response is then
 * streamed, in chunks to an HTTP/1.1 client (to HTTP/1.0, delimited by
 * closing the connection). Write, flush, write, flush..., then end as
 * usual (return CR_DONE, or cr_response_finish when suspended): the rest
 * goes out as the last chunk. Set the status and headers before the first
 * flush. It waits until the socket took the data (timeouts.write bounds
 * each stall), except on the event MPM's event thread (inline handlers
 * and timer callbacks), where what the socket cannot take at once is
 * queued: a flush while more than CR_RESPONSE_QUEUE_MAX bytes are still
 * queued fails. Not with cr_response_sendfile. CR_OK, or CR_ERROR when
 * the client is gone or does not read: stop producing and end the
 * request; the connection is then closed without the rest. */
int cr_response_flush(cr_request *r);

/* The most a connection keeps queued for a client that reads slower than
 * the module flushes (see cr_response_flush). */
#define CR_RESPONSE_QUEUE_MAX (1024 * 1024)

/* Bytes flushed on the event thread that the client has not taken yet: a
 * module streaming faster than its client reads can wait for it to fall
 * (from a timer) instead of having its flushes fail. 0 elsewhere. */
size_t cr_response_queued(const cr_request *r);

/* Sends len bytes of fd from offset as the body (after anything written).
 * The core owns fd from here on and closes it. */
int cr_response_sendfile(cr_request *r, int fd, off_t offset, size_t len);

/* Answers with the core's standard page for status (a handler may also just
 * return the status). */
int cr_response_error(cr_request *r, int status);

/* The reason phrase of a status code ("Not Found"), "Unknown" if none. */
const char *cr_http_reason(int status);

/* ---- answering later ----
 *
 * A handler that cannot answer yet (it waits for a backend, a message, a
 * timer) returns CR_SUSPENDED and keeps the request. It builds the response
 * whenever it is ready, with the calls above, and ends it with
 * cr_response_finish, from any thread. Until then, under prefork and worker
 * the request keeps its process or thread waiting; under event it holds no
 * thread at all.
 *
 * Calls on a suspended request come from one thread at a time. Timer
 * callbacks run on the thread that drives the connection (under event:
 * the event thread, so they must not block); a module that also touches
 * the request from threads of its own serializes those with its timer
 * callbacks (a lock) or uses only one of the two. */

/* Ends a suspended request: the core sends the response built so far. May
 * be called from any thread, also before the handler returned
 * CR_SUSPENDED. r must not be touched afterwards. CR_OK, or CR_ERROR when
 * the request is not suspended (finished already, or aborted). */
int cr_response_finish(cr_request *r);

typedef void (*cr_abort_fn)(cr_request *r, void *arg);

/* Calls fn if the request is dropped while suspended: the client closed
 * its connection, or the child stops at once. fn runs on a core thread;
 * when it returns the request is freed, so it must make sure no other
 * thread of the module touches r after that (take the lock the module
 * finishes its requests under). Timers of the request are cancelled
 * before. Without fn a dropped request is freed silently. Call it from
 * the handler. */
void cr_request_on_abort(cr_request *r, cr_abort_fn fn, void *arg);

typedef struct cr_timer cr_timer;
typedef void (*cr_timer_fn)(cr_request *r, void *arg);

/* Calls fn(r, arg) once, ms milliseconds from now, on the thread that
 * drives the connection, while the request is suspended (a timer added in
 * the handler starts counting at once but fires only after the handler
 * returned CR_SUSPENDED). Call it from the handler or from a timer
 * callback of the same request. Finishing or dropping the request cancels
 * its timers. NULL when out of memory. */
cr_timer *cr_timer_add(cr_request *r, unsigned long ms, cr_timer_fn fn, void *arg);

/* Cancels a timer that has not fired; from the same threads as
 * cr_timer_add. */
void cr_timer_cancel(cr_timer *t);

#endif
