/* Request head parser, chunked body decoder and path normalizer: the
 * byte-level half of the HTTP/1.1 engine. No I/O and no allocation, so the
 * connection code runs it on its read buffer and the tests and the fuzzer
 * run it on anything. */
#include "http_parser.h"

#include <limits.h>
#include <string.h>

/* Character classes, one bit each in cr_ctab. */
#define CR_C_TOKEN  1 /* tchar (RFC 9110 5.6.2): methods, field names */
#define CR_C_VALUE  2 /* field-content: HTAB, SP, visible ASCII, obs-text */
#define CR_C_HOST   4 /* uri-host and port (RFC 3986 3.2.2) */
#define CR_C_TARGET 8 /* request-target: no SP, no controls */

/* Each entry ORs the classes its byte belongs to: 15 is all four, 10 value
 * and target only (like '"' or obs-text), 2 value only (SP, HTAB). */
static const uint8_t cr_ctab[256] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  2,  0,  0,  0,  0,  0,  0,  /* 00 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 10 */
    2,  15, 10, 11, 15, 15, 15, 15, 14, 14, 15, 15, 14, 15, 15, 10, /* 20 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 14, 14, 10, 14, 10, 10, /* 30 */
    10, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, /* 40 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 14, 10, 14, 11, 15, /* 50 */
    11, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, /* 60 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 10, 11, 10, 15, 0,  /* 70 */
    10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, /* 80 */
    10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, /* 90 */
    10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, /* a0 */
    10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, /* b0 */
    10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, /* c0 */
    10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, /* d0 */
    10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, /* e0 */
    10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, /* f0 */
};

#define CR_CHUNK_LINE_MAX    4096 /* chunk-size line with extensions, without CRLF */
#define CR_CHUNK_SIZE_DIGITS 16   /* hex digits: a uint64_t and no more */
#define CR_CHUNK_TRAILER_MAX 8192 /* whole trailer section */

static inline bool cr_is(char c, int cls)
{
    return cr_ctab[(unsigned char)c] & cls;
}

static inline bool cr_is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static inline bool cr_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static inline int cr_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

bool cr_str_ieq(cr_str s, const char *lower)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c >= 'A' && c <= 'Z')
            c += 'a' - 'A';
        if (lower[i] == '\0' || c != (unsigned char)lower[i])
            return false;
    }
    return lower[s.len] == '\0';
}

/* What the header lines tell beyond h's own fields, gathered so the checks
 * that depend on several headers run once at the end. */
typedef struct cr_head_scan {
    unsigned nhost;
    bool host_from_target; /* absolute-form: the target's authority wins */
    bool te_seen;
    bool te_unsupported;
    bool conn_close;
    bool conn_keep_alive;
} cr_head_scan;

static cr_str cr_trim(const char *p, const char *e)
{
    while (p < e && cr_is_ows(*p))
        p++;
    while (e > p && cr_is_ows(e[-1]))
        e--;
    return (cr_str){p, (size_t)(e - p)};
}

/* The line's content without its terminator: eol points at the LF, and a CR
 * right before it belongs to the terminator too. */
static const char *cr_line_end(const char *p, const char *eol)
{
    return eol > p && eol[-1] == '\r' ? eol - 1 : eol;
}

/* Offset of the request line after any empty lines, len when the buffer
 * holds nothing else yet, -1 for a CR not followed by LF. */
static ssize_t cr_skip_empty_lines(const char *buf, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (buf[i] == '\n') {
            i++;
            continue;
        }
        if (buf[i] != '\r')
            return (ssize_t)i;
        if (i + 1 == len)
            return (ssize_t)len;
        if (buf[i + 1] != '\n')
            return -1;
        i += 2;
    }
    return (ssize_t)len;
}

/* Looks for an empty line (LF LF or LF CR LF) from `from` on. Returns the
 * offset just past it, or 0 with *resume set to where the next search must
 * start: a LF at the very end may still begin one. */
static size_t cr_find_head_end(const char *buf, size_t len, size_t from, size_t *resume)
{
    const char *end = buf + len;
    const char *p = buf + from;
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        size_t i = (size_t)(p - buf);
        if (i + 1 == len || (i + 2 == len && buf[i + 1] == '\r')) {
            *resume = i;
            return 0;
        }
        if (buf[i + 1] == '\n')
            return i + 2;
        if (buf[i + 1] == '\r' && buf[i + 2] == '\n')
            return i + 3;
        p++;
    }
    *resume = len;
    return 0;
}

static cr_method cr_method_of(cr_str m)
{
    switch (m.len) {
    case 3:
        if (memcmp(m.ptr, "GET", 3) == 0)
            return CR_METHOD_GET;
        if (memcmp(m.ptr, "PUT", 3) == 0)
            return CR_METHOD_PUT;
        break;
    case 4:
        if (memcmp(m.ptr, "HEAD", 4) == 0)
            return CR_METHOD_HEAD;
        if (memcmp(m.ptr, "POST", 4) == 0)
            return CR_METHOD_POST;
        break;
    case 5:
        if (memcmp(m.ptr, "PATCH", 5) == 0)
            return CR_METHOD_PATCH;
        if (memcmp(m.ptr, "TRACE", 5) == 0)
            return CR_METHOD_TRACE;
        break;
    case 6:
        if (memcmp(m.ptr, "DELETE", 6) == 0)
            return CR_METHOD_DELETE;
        break;
    case 7:
        if (memcmp(m.ptr, "OPTIONS", 7) == 0)
            return CR_METHOD_OPTIONS;
        if (memcmp(m.ptr, "CONNECT", 7) == 0)
            return CR_METHOD_CONNECT;
        break;
    }
    return CR_METHOD_UNKNOWN;
}

static int cr_parse_version(const char *p, const char *e, cr_http_head *h)
{
    if (e - p != 8 || memcmp(p, "HTTP/", 5) != 0 || !cr_is_digit(p[5]) || p[6] != '.' ||
        !cr_is_digit(p[7]))
        return -400;
    if (p[5] != '1' || p[7] > '1')
        return -505;
    h->version_minor = p[7] - '0';
    return 0;
}

static void cr_split_path(cr_http_head *h, const char *p, const char *e)
{
    const char *q = memchr(p, '?', (size_t)(e - p));
    if (q == NULL) {
        h->path = (cr_str){p, (size_t)(e - p)};
        h->query = (cr_str){e, 0};
        return;
    }
    h->path = (cr_str){p, (size_t)(q - p)};
    h->query = (cr_str){q + 1, (size_t)(e - q - 1)};
}

/* absolute-form (RFC 9112 3.2.2): the authority becomes the host, and a
 * missing path means "/". Userinfo is refused: '@' is not a host byte. */
static int cr_split_absolute(cr_http_head *h, cr_head_scan *s)
{
    cr_str t = h->target;
    size_t skip;
    if (t.len > 7 && cr_str_ieq((cr_str){t.ptr, 7}, "http://"))
        skip = 7;
    else if (t.len > 8 && cr_str_ieq((cr_str){t.ptr, 8}, "https://"))
        skip = 8;
    else
        return -400;
    const char *a = t.ptr + skip, *e = t.ptr + t.len, *p = a;
    while (p < e && *p != '/' && *p != '?') {
        if (!cr_is(*p, CR_C_HOST))
            return -400;
        p++;
    }
    if (p == a)
        return -400;
    h->host = (cr_str){a, (size_t)(p - a)};
    s->host_from_target = true;
    if (p < e && *p == '/') {
        cr_split_path(h, p, e);
        return 0;
    }
    h->path = CR_STR("/");
    h->query = p < e ? (cr_str){p + 1, (size_t)(e - p - 1)} : (cr_str){e, 0};
    return 0;
}

static int cr_split_target(cr_http_head *h, cr_head_scan *s)
{
    cr_str t = h->target;
    if (t.ptr[0] == '/') {
        cr_split_path(h, t.ptr, t.ptr + t.len);
        return 0;
    }
    if (t.len == 1 && t.ptr[0] == '*') {
        if (h->method != CR_METHOD_OPTIONS)
            return -400;
        h->path = t;
        h->query = (cr_str){t.ptr + 1, 0};
        return 0;
    }
    return cr_split_absolute(h, s);
}

/* Parses the request line p..e. With complete false the line is still
 * arriving: it is only checked as far as it goes, so a hopeless one is
 * refused before its end shows up, and 0 means "no error so far". */
static int cr_parse_request_line(const char *p, const char *e, const cr_http_limits *lim,
                                 cr_http_head *h, cr_head_scan *s, bool complete)
{
    const char *m = p;
    while (p < e && cr_is(*p, CR_C_TOKEN))
        p++;
    if (p == e)
        return complete ? -400 : 0;
    if (p == m || *p != ' ')
        return -400;
    const char *t = ++p;
    while (p < e && cr_is(*p, CR_C_TARGET))
        p++;
    if ((size_t)(p - t) > lim->uri_bytes)
        return -414;
    if (p == e)
        return complete ? -400 : 0;
    if (p == t || *p != ' ')
        return -400;
    if (!complete)
        return 0;
    h->method_name = (cr_str){m, (size_t)(t - 1 - m)};
    h->method = cr_method_of(h->method_name);
    h->target = (cr_str){t, (size_t)(p - t)};
    int rc = cr_parse_version(p + 1, e, h);
    if (rc < 0)
        return rc;
    return cr_split_target(h, s);
}

/* Content-Length: one number, or a list of identical ones (RFC 9110 8.6).
 * Returns the value, or -1 when the field is invalid. */
static int64_t cr_parse_content_length(cr_str v)
{
    const char *p = v.ptr, *e = v.ptr + v.len;
    int64_t val = -1;
    for (;;) {
        const char *digits = p;
        int64_t n = 0;
        while (p < e && cr_is_digit(*p)) {
            int d = *p++ - '0';
            if (n > (INT64_MAX - d) / 10)
                return -1;
            n = n * 10 + d;
        }
        if (p == digits || (val >= 0 && n != val))
            return -1;
        val = n;
        while (p < e && cr_is_ows(*p))
            p++;
        if (p == e)
            return val;
        if (*p++ != ',')
            return -1;
        while (p < e && cr_is_ows(*p))
            p++;
    }
}

static int cr_on_content_length(cr_http_head *h, cr_str v)
{
    int64_t n = cr_parse_content_length(v);
    if (n < 0 || (h->content_length >= 0 && h->content_length != n))
        return -400;
    h->content_length = n;
    return 0;
}

/* Only "chunked", once: anything else would be a coding we cannot undo, and
 * a repeated "chunked" would mean applying it twice. */
static int cr_on_transfer_encoding(cr_http_head *h, cr_head_scan *s, cr_str v)
{
    if (v.len == 0)
        return -400;
    if (!s->te_seen && cr_str_ieq(v, "chunked")) {
        h->chunked = true;
    } else {
        h->chunked = false;
        s->te_unsupported = true;
    }
    s->te_seen = true;
    return 0;
}

static int cr_on_host(cr_http_head *h, cr_head_scan *s, cr_str v)
{
    if (++s->nhost > 1)
        return -400;
    for (size_t i = 0; i < v.len; i++)
        if (!cr_is(v.ptr[i], CR_C_HOST))
            return -400;
    if (!s->host_from_target)
        h->host = v;
    return 0;
}

static void cr_on_connection(cr_head_scan *s, cr_str v)
{
    const char *p = v.ptr, *end = v.ptr + v.len;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        cr_str tok = cr_trim(p, comma ? comma : end);
        if (cr_str_ieq(tok, "close"))
            s->conn_close = true;
        else if (cr_str_ieq(tok, "keep-alive"))
            s->conn_keep_alive = true;
        if (comma == NULL)
            return;
        p = comma + 1;
    }
}

/* The few fields the core itself acts on; the switch on the name's length
 * keeps every other header to one comparison at most. */
static int cr_on_header(cr_http_head *h, cr_head_scan *s, cr_str name, cr_str v)
{
    switch (name.len) {
    case 4:
        if (cr_str_ieq(name, "host"))
            return cr_on_host(h, s, v);
        break;
    case 6:
        if (cr_str_ieq(name, "expect") && cr_str_ieq(v, "100-continue"))
            h->expect_continue = true;
        break;
    case 10:
        if (cr_str_ieq(name, "connection"))
            cr_on_connection(s, v);
        break;
    case 14:
        if (cr_str_ieq(name, "content-length"))
            return cr_on_content_length(h, v);
        break;
    case 17:
        if (cr_str_ieq(name, "transfer-encoding"))
            return cr_on_transfer_encoding(h, s, v);
        break;
    }
    return 0;
}

/* True when none of the 8 bytes in x is a control (below 0x20, or DEL).
 * HTAB counts as one here; the byte loop after it sorts that out. */
static inline bool cr_word_plain(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t below_sp = (x - ones * 0x20) & ~x & highs;
    uint64_t y = x ^ (ones * 0x7f);
    uint64_t del = (y - ones) & ~y & highs;
    return (below_sp | del) == 0;
}

/* Field values are most of a head's bytes, so they are checked a word at a
 * time while the word is plainly fine. */
static bool cr_value_ok(const char *p, const char *e)
{
    while (e - p >= 8) {
        uint64_t x;
        memcpy(&x, p, sizeof(x));
        if (!cr_word_plain(x))
            break;
        p += 8;
    }
    for (; p < e; p++)
        if (!cr_is(*p, CR_C_VALUE))
            return false;
    return true;
}

/* One field line p..e (terminator excluded). A line starting with
 * whitespace is obs-fold, or whitespace before the first field: both are
 * refused (RFC 9112 2.2, 5.2), as is whitespace before the colon. */
static int cr_parse_header_line(const char *p, const char *e, cr_http_head *h, cr_head_scan *s)
{
    const char *n = p;
    while (p < e && cr_is(*p, CR_C_TOKEN))
        p++;
    if (p == n || p == e || *p != ':')
        return -400;
    cr_str name = {n, (size_t)(p - n)};
    p++;
    while (p < e && cr_is_ows(*p))
        p++;
    const char *v = p;
    if (!cr_value_ok(p, e))
        return -400;
    while (e > v && cr_is_ows(e[-1]))
        e--;
    if (h->nheaders == CR_HTTP_MAX_HEADERS)
        return -431;
    cr_str value = {v, (size_t)(e - v)};
    h->headers[h->nheaders++] = (cr_header){name, value};
    return cr_on_header(h, s, name, value);
}

/* Field lines from p up to the empty line that ends the head at end. */
static int cr_parse_headers(const char *p, const char *end, cr_http_head *h, cr_head_scan *s)
{
    for (;;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            return -400;
        const char *e = cr_line_end(p, eol);
        if (e == p)
            return 0;
        int rc = cr_parse_header_line(p, e, h, s);
        if (rc < 0)
            return rc;
        p = eol + 1;
    }
}

/* Message framing and connection rules that need all headers (RFC 9112
 * 6.1, 6.3, 9.3; RFC 9110 7.2). Both Content-Length and Transfer-Encoding
 * is a smuggling attempt more often than not, so it is refused outright. */
static int cr_finish_head(cr_http_head *h, const cr_head_scan *s)
{
    if (s->te_seen && (h->content_length >= 0 || h->version_minor == 0))
        return -400;
    if (s->te_unsupported)
        return -501;
    if (h->version_minor == 1 && s->nhost == 0)
        return -400;
    if (h->version_minor == 1)
        h->keep_alive = !s->conn_close;
    else
        h->keep_alive = s->conn_keep_alive && !s->conn_close;
    h->expect_continue = h->expect_continue && h->version_minor == 1;
    return 0;
}

static void cr_head_init(cr_http_head *h)
{
    h->method = CR_METHOD_UNKNOWN;
    h->nheaders = 0;
    h->content_length = -1;
    h->chunked = false;
    h->keep_alive = false;
    h->expect_continue = false;
    h->host = (cr_str){"", 0};
}

static int cr_parse_complete(const char *buf, size_t start, size_t end, const cr_http_limits *lim,
                             cr_http_head *h)
{
    const char *p = buf + start, *head_end = buf + end;
    const char *eol = memchr(p, '\n', (size_t)(head_end - p));
    cr_head_scan s = {0};
    cr_head_init(h);
    int rc = cr_parse_request_line(p, cr_line_end(p, eol), lim, h, &s, true);
    if (rc < 0)
        return rc;
    if (end > lim->header_bytes || end > INT_MAX)
        return -431;
    rc = cr_parse_headers(eol + 1, head_end, h, &s);
    if (rc < 0)
        return rc;
    rc = cr_finish_head(h, &s);
    return rc < 0 ? rc : (int)end;
}

/* No end of head yet. The request line is judged on what has arrived, so
 * an endless target is refused as soon as it passes uri_bytes and garbage
 * (say, a TLS handshake) at once, rather than after header_bytes or a
 * timeout. That costs a look at the first line per call while the head is
 * incomplete, which a head arriving whole never pays. */
static int cr_incomplete_head(const char *buf, size_t len, size_t start, const cr_http_limits *lim,
                              cr_http_head *h)
{
    const char *p = buf + start;
    const char *eol = memchr(p, '\n', len - start);
    cr_head_scan s = {0};
    cr_head_init(h);
    int rc = eol ? cr_parse_request_line(p, cr_line_end(p, eol), lim, h, &s, true)
                 : cr_parse_request_line(p, buf + len, lim, h, &s, false);
    if (rc < 0)
        return rc;
    return len > lim->header_bytes ? -431 : 0;
}

/* Offset just past the empty line starting at q, or 0 when q does not start
 * one (or may, once more bytes arrive). */
static size_t cr_empty_line_at(const char *buf, const char *q, const char *end)
{
    if (q < end && *q == '\n')
        return (size_t)(q + 1 - buf);
    if (end - q >= 2 && q[0] == '\r' && q[1] == '\n')
        return (size_t)(q + 2 - buf);
    return 0;
}

#define CR_PARSE_SLOW 1 /* cr_parse_one_pass could not decide; no head is 1 byte */

/* The common case, a whole head in the buffer at the first look: finding
 * its end and parsing it in one pass over the lines. Anything unusual (no
 * end, a bad field line whose verdict may depend on where the head ends)
 * returns CR_PARSE_SLOW and is left to the two-step path, so both paths
 * always answer alike. */
static int cr_parse_one_pass(const char *buf, size_t len, size_t start, const cr_http_limits *lim,
                             cr_http_head *h)
{
    const char *p = buf + start, *end = buf + len;
    const char *eol = memchr(p, '\n', len - start);
    if (eol == NULL)
        return CR_PARSE_SLOW;
    cr_head_scan s = {0};
    cr_head_init(h);
    int rc = cr_parse_request_line(p, cr_line_end(p, eol), lim, h, &s, true);
    if (rc < 0)
        return rc;
    for (;;) {
        p = eol + 1;
        size_t head_len = cr_empty_line_at(buf, p, end);
        if (head_len > 0) {
            if (head_len > lim->header_bytes || head_len > INT_MAX)
                return -431;
            rc = cr_finish_head(h, &s);
            return rc < 0 ? rc : (int)head_len;
        }
        eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL || cr_parse_header_line(p, cr_line_end(p, eol), h, &s) < 0)
            return CR_PARSE_SLOW;
    }
}

int cr_http_parse_head(const char *buf, size_t len, size_t *scanned, const cr_http_limits *limits,
                       cr_http_head *h)
{
    ssize_t start = cr_skip_empty_lines(buf, len);
    if (start < 0)
        return -400;
    if (*scanned == 0) {
        int rc = cr_parse_one_pass(buf, len, (size_t)start, limits, h);
        if (rc != CR_PARSE_SLOW)
            return rc;
    }
    size_t from = *scanned;
    if (from < (size_t)start || from > len)
        from = (size_t)start;
    size_t end = cr_find_head_end(buf, len, from, scanned);
    if (end == 0)
        return cr_incomplete_head(buf, len, (size_t)start, limits, h);
    return cr_parse_complete(buf, (size_t)start, end, limits, h);
}

/* Chunked decoder states, in the order a body goes through them; the zero
 * state is the start of a chunk-size line, so a zeroed decoder is ready. */
enum {
    CR_CH_SIZE_START = 0,
    CR_CH_SIZE,
    CR_CH_SIZE_BWS, /* after the digits: whitespace before ';' */
    CR_CH_EXT,
    CR_CH_SIZE_LF, /* CR seen on the size line */
    CR_CH_DATA,
    CR_CH_DATA_CR, /* data done: CRLF (or LF) must follow */
    CR_CH_DATA_LF,
    CR_CH_TRAILER_START,
    CR_CH_TRAILER_NAME,
    CR_CH_TRAILER_VALUE,
    CR_CH_TRAILER_LF,
    CR_CH_FINAL_LF,
    CR_CH_DONE,
};

static int cr_chunk_size_line_end(cr_chunked_decoder *d)
{
    d->ext_bytes = 0;
    d->state = d->chunk_left ? CR_CH_DATA : CR_CH_TRAILER_START;
    return 0;
}

/* After the size digits: optional whitespace, then extensions or the line
 * end. Extensions are bounded but otherwise only kept free of controls:
 * nothing here interprets them. */
static int cr_chunk_after_size(cr_chunked_decoder *d, unsigned char c)
{
    if (d->state == CR_CH_SIZE_BWS && cr_is_ows((char)c))
        return 0;
    if (d->state == CR_CH_SIZE_BWS && c == ';') {
        d->state = CR_CH_EXT;
        return 0;
    }
    if (c == '\r') {
        d->state = CR_CH_SIZE_LF;
        return 0;
    }
    if (c == '\n')
        return cr_chunk_size_line_end(d);
    if (d->state == CR_CH_EXT && (c == '\t' || (c >= 0x20 && c != 0x7f)))
        return 0;
    return -1;
}

static int cr_chunk_size_byte(cr_chunked_decoder *d, unsigned char c)
{
    if (c != '\r' && c != '\n' && ++d->ext_bytes > CR_CHUNK_LINE_MAX)
        return -1;
    int v = cr_hexval(c);
    switch (d->state) {
    case CR_CH_SIZE_START:
        if (v < 0)
            return -1;
        d->chunk_left = (uint64_t)v;
        d->state = CR_CH_SIZE;
        return 0;
    case CR_CH_SIZE:
        if (v < 0) {
            d->state = CR_CH_SIZE_BWS;
            return cr_chunk_after_size(d, c);
        }
        if (d->ext_bytes > CR_CHUNK_SIZE_DIGITS)
            return -1;
        d->chunk_left = d->chunk_left << 4 | (uint64_t)v;
        return 0;
    case CR_CH_SIZE_LF:
        return c == '\n' ? cr_chunk_size_line_end(d) : -1;
    default:
        return cr_chunk_after_size(d, c);
    }
}

/* Trailer fields are checked for shape (token, colon, field-content) and
 * size, then dropped: the request exposes none of them. */
static int cr_chunk_trailer_byte(cr_chunked_decoder *d, unsigned char c)
{
    if (++d->trailer_bytes > CR_CHUNK_TRAILER_MAX)
        return -1;
    switch (d->state) {
    case CR_CH_TRAILER_START:
        if (c == '\r' || c == '\n') {
            d->state = c == '\r' ? CR_CH_FINAL_LF : CR_CH_DONE;
            return 0;
        }
        if (!cr_is((char)c, CR_C_TOKEN))
            return -1;
        d->state = CR_CH_TRAILER_NAME;
        return 0;
    case CR_CH_TRAILER_NAME:
        if (c == ':')
            d->state = CR_CH_TRAILER_VALUE;
        return c == ':' || cr_is((char)c, CR_C_TOKEN) ? 0 : -1;
    case CR_CH_TRAILER_VALUE:
        if (c == '\r' || c == '\n') {
            d->state = c == '\r' ? CR_CH_TRAILER_LF : CR_CH_TRAILER_START;
            return 0;
        }
        return cr_is((char)c, CR_C_VALUE) ? 0 : -1;
    case CR_CH_TRAILER_LF:
        d->state = CR_CH_TRAILER_START;
        return c == '\n' ? 0 : -1;
    case CR_CH_FINAL_LF:
        d->state = CR_CH_DONE;
        return c == '\n' ? 0 : -1;
    default:
        return -1;
    }
}

/* One byte of framing (anything but chunk data). */
static int cr_chunk_step(cr_chunked_decoder *d, unsigned char c)
{
    if (d->state < CR_CH_DATA)
        return cr_chunk_size_byte(d, c);
    if (d->state == CR_CH_DATA_CR && (c == '\r' || c == '\n')) {
        d->state = c == '\r' ? CR_CH_DATA_LF : CR_CH_SIZE_START;
        return 0;
    }
    if (d->state == CR_CH_DATA_LF && c == '\n') {
        d->state = CR_CH_SIZE_START;
        return 0;
    }
    if (d->state >= CR_CH_TRAILER_START)
        return cr_chunk_trailer_byte(d, c);
    return -1;
}

int cr_chunked_decode(cr_chunked_decoder *d, char *buf, size_t *len)
{
    size_t n = *len, r = 0, w = 0;
    while (r < n && d->state != CR_CH_DONE) {
        if (d->state != CR_CH_DATA) {
            if (cr_chunk_step(d, (unsigned char)buf[r++]) < 0) {
                *len = w;
                return CR_ERROR;
            }
            continue;
        }
        size_t take = n - r < d->chunk_left ? n - r : (size_t)d->chunk_left;
        if (w != r)
            memmove(buf + w, buf + r, take);
        w += take;
        r += take;
        d->chunk_left -= take;
        if (d->chunk_left == 0)
            d->state = CR_CH_DATA_CR;
    }
    *len = w;
    if (d->state != CR_CH_DONE)
        return CR_AGAIN;
    if (w != r)
        memmove(buf + w, buf + r, n - r);
    return (int)(n - r);
}

/* Ends the segment out[seg..*o) at a '/' or at the end of the path:
 * "." goes away, ".." takes the segment before it along, "" (from "//")
 * leaves nothing. Returns -1 when ".." would climb above the root. */
static int cr_end_segment(char *out, size_t *o, size_t seg, bool at_slash)
{
    size_t n = *o - seg;
    if (n == 1 && out[seg] == '.') {
        *o = seg;
        return 0;
    }
    if (n == 2 && out[seg] == '.' && out[seg + 1] == '.') {
        if (seg == 1)
            return -1;
        *o = seg - 1;
        while (out[*o - 1] != '/')
            (*o)--;
        return 0;
    }
    if (n > 0 && at_slash)
        out[(*o)++] = '/';
    return 0;
}

/* Decoding first and removing dot segments after means "%2e%2e" is "..",
 * and a decoded "%2F" separates segments like a raw '/': the output can
 * never name anything above the root however the input was spelled. */
ssize_t cr_http_normalize_path(const char *in, size_t len, char *out)
{
    if (len == 0 || in[0] != '/')
        return -1;
    size_t o = 1, seg = 1;
    out[0] = '/';
    for (size_t i = 1; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            if (len - i < 3)
                return -1;
            int hi = cr_hexval((unsigned char)in[i + 1]);
            int lo = cr_hexval((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0 || (hi | lo) == 0)
                return -1;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (c < 0x20 || c == 0x7f) {
            return -1;
        }
        if (c != '/') {
            out[o++] = (char)c;
            continue;
        }
        if (cr_end_segment(out, &o, seg, true) < 0)
            return -1;
        seg = o;
    }
    if (cr_end_segment(out, &o, seg, false) < 0)
        return -1;
    out[o] = '\0';
    return (ssize_t)o;
}
