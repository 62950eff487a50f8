/* One client connection and the request it is serving: the read buffer the
 * parser works over, the request handed to modules, the response being
 * built. The blocking driver used by the prefork and worker MPMs lives
 * here; it reads with timeouts, parses, routes, calls the handler, writes
 * and repeats while the connection is kept alive. */
#ifndef CR_HTTP_CONN_H
#define CR_HTTP_CONN_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "corral/request.h"
#include "http_parser.h"
#include "pool.h"
#include "response.h"

struct cr_child;

#define CR_CONN_POOL_BLOCK 4096

typedef struct cr_conn {
    int fd;
    struct cr_child *child;
    int thread;
    char remote_addr[INET6_ADDRSTRLEN];
    unsigned remote_port;

    char *buf; /* read buffer: header_bytes + 1 */
    size_t cap;
    size_t len;
    size_t scanned; /* parser progress over the current head */
    unsigned nrequests;

    cr_http_head head;
    size_t head_len;
    cr_request req;
    cr_response resp;
    bool keep_alive;
    uint64_t bytes_sent; /* body bytes of the current response */

    cr_pool pool;
    _Alignas(16) char pool_block[CR_CONN_POOL_BLOCK];
} cr_conn;

/* The connection a request belongs to. */
static inline cr_conn *cr_conn_of(const cr_request *r)
{
    return (cr_conn *)((char *)r - offsetof(cr_conn, req));
}

/* Runs the handler chain for the parsed request in c and leaves the
 * response in c->resp (an error page when nothing served it). */
void cr_http_run_handlers(cr_conn *c);

/* Builds the standard page for status into c->resp. */
void cr_http_error_page(cr_conn *c, int status);

/* Formats the response head into buf (at most cap bytes); returns its
 * length, or 0 when it does not fit. */
size_t cr_http_format_head(cr_conn *c, char *buf, size_t cap);

/* Serves connection fd until it closes; fd is closed on return. */
void cr_http_serve_blocking(struct cr_child *child, int thread, int fd);

#endif
