/* The response being built for one request, and how it is put on the wire:
 * the head is formatted into one buffer and sent with the body in a single
 * writev (or head then sendfile for files). */
#ifndef CR_RESPONSE_H
#define CR_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#define CR_RESPONSE_MAX_IOV 16

typedef struct cr_response {
    int status;
    char *headers; /* extra header lines, "Name: value\r\n" each, from the pool */
    size_t headers_len;
    size_t headers_cap;
    struct iovec body[CR_RESPONSE_MAX_IOV];
    int nbody;
    size_t body_len;
    char *copy; /* where cr_response_write copies go; the last body iov points into it */
    size_t copy_cap;
    int file_fd; /* -1: no file */
    off_t file_off;
    size_t file_len;
    bool started;        /* something was written to the socket */
    bool streaming;      /* the head went out with cr_response_flush; the body follows */
    bool chunked;        /* streaming in chunks (HTTP/1.1), else delimited by the close */
    char chunk_line[24]; /* size line of the chunk being sent */
} cr_response;

/* Iovecs cr_response_chunk_iov may fill beyond the body's own. */
#define CR_RESPONSE_FRAMING_IOV 3

void cr_response_reset(cr_response *resp);

/* For a streaming response: lays the body written since the last flush
 * out into iov as one chunk (size line, data, CRLF), followed by the last
 * chunk when last; unframed when the response is delimited by the close.
 * iov has room for CR_RESPONSE_MAX_IOV + CR_RESPONSE_FRAMING_IOV. Returns
 * the count. */
int cr_response_chunk_iov(cr_response *resp, struct iovec *iov, bool last);

/* Forgets the body once it is sent, keeping the copy buffer for the next
 * writes of a stream. */
void cr_response_body_sent(cr_response *resp);

/* Releases what the response holds (the file descriptor). */
void cr_response_cleanup(cr_response *resp);

/* True for statuses that never carry a body (1xx, 204, 304). */
bool cr_status_has_no_body(int status);

/* True when the handler set header `name` (case-insensitive). */
bool cr_response_has_header(const cr_response *resp, const char *name);

#endif
