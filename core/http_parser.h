/* Incremental, zero-copy HTTP/1.1 request parser. It works over the
 * connection's read buffer: the head is parsed only once it is complete
 * (found by scanning just the bytes that arrived since the last call), and
 * every string in the result points into that buffer. Also: the chunked
 * body decoder and the path normalizer (percent-decoding, dot segments). */
#ifndef CR_HTTP_PARSER_H
#define CR_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "corral/types.h"
#include "corral/request.h"

#define CR_HTTP_MAX_HEADERS 100

typedef struct cr_http_head {
    cr_method method;
    cr_str method_name; /* as sent, e.g. "GET" */
    cr_str target;      /* request-target as sent: "/a%20b?x=1" */
    cr_str path;        /* target up to '?', still percent-encoded */
    cr_str query;       /* after '?', without it; len 0 when absent */
    int version_minor;  /* HTTP/1.<minor>: 0 or 1 */

    cr_header headers[CR_HTTP_MAX_HEADERS];
    size_t nheaders;

    /* Derived from the headers while parsing. */
    int64_t content_length; /* -1 when absent */
    bool chunked;           /* Transfer-Encoding: chunked */
    bool keep_alive;        /* after RFC 9112 rules for the version and Connection */
    bool expect_continue;   /* Expect: 100-continue */
    cr_str host;            /* Host header value, len 0 when absent */
} cr_http_head;

typedef struct cr_http_limits {
    size_t header_bytes; /* whole head (request line + headers); over -> 431 */
    size_t uri_bytes;    /* request-target; over -> 414 */
} cr_http_limits;

/* Parses the request head at the start of buf[0..len).
 * scanned: in/out, how many bytes earlier calls already searched for the end
 * of the head without finding it (start at 0; reset to 0 for each request).
 * Returns the head's length in bytes (> 0) when a complete head was parsed
 * into *h; 0 when more bytes are needed; or a negative HTTP status:
 *   -400 malformed (bad request line, bad header, both Content-Length and
 *        Transfer-Encoding, conflicting or invalid Content-Length, missing
 *        or repeated Host on HTTP/1.1, a CR not followed by LF, ...)
 *   -414 request-target longer than limits->uri_bytes
 *   -431 head longer than limits->header_bytes or too many headers
 *   -501 Transfer-Encoding other than "chunked"
 *   -505 HTTP version other than 1.0 or 1.1
 * *h is meaningful only after a positive return. Lines may end in CRLF or a
 * bare LF. Empty lines before the request line (RFC 9112 2.2) are skipped
 * and counted in the returned length. The request line is checked as soon
 * as it arrives, even before the rest of the head: a target past uri_bytes
 * or a line that cannot be HTTP is refused without waiting for more.
 * For "OPTIONS *", path is "*". For an absolute-form target
 * ("http://host/p?q"), path and query come from it, host is its authority
 * (RFC 9112 3.2.2), and a missing path is a static "/": the one non-empty
 * string not pointing into buf. */
int cr_http_parse_head(const char *buf, size_t len, size_t *scanned, const cr_http_limits *limits,
                       cr_http_head *h);

/* Chunked transfer-coding decoder, in place. */
typedef struct cr_chunked_decoder {
    int state;
    uint64_t chunk_left;  /* bytes left in the current chunk's data */
    size_t ext_bytes;     /* bytes in the current size line, to bound it */
    size_t trailer_bytes; /* bytes of trailer section, to bound it */
} cr_chunked_decoder;

/* Decodes buf[0..*len) in place, across calls as input arrives (zero the
 * decoder before the first call; input may be cut at any byte): on return
 * buf[0..*len) holds the decoded data bytes of this call's input. Chunk
 * extensions and trailer fields are checked and dropped; a size line may
 * hold 4096 bytes and 16 hex digits, the trailer section 8192 bytes.
 * Returns:
 *   >= 0: the body (and its trailer section) is complete; the value is how
 *         many input bytes followed it (a pipelined request), moved to sit
 *         right after the decoded data at buf[*len .. *len + ret)
 *   CR_AGAIN: all input consumed, more is needed
 *   CR_ERROR: malformed chunked encoding (the caller answers 400) */
int cr_chunked_decode(cr_chunked_decoder *d, char *buf, size_t *len);

/* Percent-decodes and normalizes a request path (RFC 3986 5.2.4 dot-segment
 * removal, "//" collapsed to "/"). out must have room for len + 1 bytes; the
 * result is NUL-terminated. Returns the output length, or -1 when the path is
 * invalid: not starting with '/', a bad %-escape, an encoded NUL, a raw
 * control character, or ".." that would climb above the root. Escapes are
 * decoded before dot segments are removed, so "%2e%2e" is ".." and an
 * encoded "/" (%2F) separates segments; a trailing "/" is kept. */
ssize_t cr_http_normalize_path(const char *in, size_t len, char *out);

/* Case-insensitive ASCII comparison of s against a NUL-terminated lowercase
 * literal. */
bool cr_str_ieq(cr_str s, const char *lower);

#endif
