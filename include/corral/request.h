/* The request a handler module receives and the calls that build its
 * response. Strings in cr_request point into the connection's buffers and
 * stay valid until the response is finished; memory from cr_palloc lives
 * exactly as long. */
#ifndef CORRAL_REQUEST_H
#define CORRAL_REQUEST_H

#include <stdbool.h>
#include <sys/types.h>

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
    cr_str method_name;  /* as sent */
    cr_str target;       /* request-target as sent, e.g. "/a%20b?x=1" */
    cr_str path;         /* percent-decoded, dot segments removed, NUL-terminated */
    cr_str query;        /* raw query string without '?', len 0 when absent */
    int version_minor;   /* HTTP/1.<minor> */
    const cr_header *headers;
    size_t nheaders;
    cr_str host;         /* Host header, len 0 when absent */
    cr_str body;         /* the whole request body (de-chunked), len 0 when none */
    const char *remote_addr; /* client address as text, e.g. "127.0.0.1" */
    unsigned remote_port;
    cr_str route_path;   /* the prefix of the route that matched */
    void *route_data;    /* what the module's route_init stored for this route */
    cr_pool *pool;       /* freed when the request ends */
} cr_request;

/* First header named `name` (case-insensitive), or NULL. */
const cr_str *cr_request_header(const cr_request *r, const char *name);

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

/* Sends len bytes of fd from offset as the body (after anything written).
 * The core owns fd from here on and closes it. */
int cr_response_sendfile(cr_request *r, int fd, off_t offset, size_t len);

/* Answers with the core's standard page for status (a handler may also just
 * return the status). */
int cr_response_error(cr_request *r, int status);

/* The reason phrase of a status code ("Not Found"), "Unknown" if none. */
const char *cr_http_reason(int status);

#endif
