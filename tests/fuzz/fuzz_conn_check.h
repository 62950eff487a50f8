/* What a client can verify about a server's answer to the bytes it sent:
 * the requests those bytes hold, read with the server's own parser, and
 * whether the answer is a well-formed sequence of HTTP/1.1 responses that
 * fits them. Used by the connection fuzz harness (fuzz_connection.c). */
#ifndef CR_FUZZ_CONN_CHECK_H
#define CR_FUZZ_CONN_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_parser.h"

/* One request found in the client's bytes. */
typedef struct cr_fz_request {
    bool head;       /* HEAD: its response carries no body */
    bool echo;       /* exactly /echo or /stream: a 200 answers with the body */
    bool droppable;  /* its response may be cut short when the client leaves: a
                      * suspended request, or one the client never finished */
    size_t body_off; /* the decoded body, in cr_fz_requests.scratch */
    size_t body_len;
} cr_fz_request;

typedef struct cr_fz_requests {
    char *scratch; /* a copy of the client's bytes, chunked bodies decoded in place */
    cr_fz_request *items;
    size_t count, cap;
    /* After the last complete request come bytes the server may still
     * answer once before it closes (an error, an incomplete request, one
     * over a limit): that answer is described by `last`. */
    bool extra;
    cr_fz_request last;
} cr_fz_requests;

/* Reads the requests in data as the server would, under its limits (head
 * and target from lim, decoded body up to body_limit). Aborts when out of
 * memory. */
void cr_fz_requests_parse(cr_fz_requests *rq, const uint8_t *data, size_t len,
                          const cr_http_limits *lim, size_t body_limit);

void cr_fz_requests_free(cr_fz_requests *rq);

/* The verdict over an answer. */
typedef struct cr_fz_verdict {
    const char *error; /* NULL: well-formed as far as it goes */
    size_t at;         /* offset of the fault in the answer */
    size_t finals;     /* complete final (non-1xx) responses */
} cr_fz_verdict;

/* Checks answer[0..len) against rq. at_eof: the server closed and all it
 * sent is here, so a response cut short is a fault (unless its request is
 * droppable); otherwise the answer may stop anywhere. */
cr_fz_verdict cr_fz_check_answer(const char *answer, size_t len, bool at_eof,
                                 const cr_fz_requests *rq);

#endif
