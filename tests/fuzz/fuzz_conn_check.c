/* The client's side of the connection fuzz harness: which requests its bytes
 * hold, and whether the server's answer is a sequence of well-formed
 * HTTP/1.1 responses that fits them (one final response per request at
 * most, bodies framed as the head says, an echo that gives back the body
 * sent, nothing after Connection: close). */
#include "fuzz_conn_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A server's response head is small; past this without its end it is
 * malformed. */
#define CR_FZ_RESP_HEAD_MAX 65536
/* A chunk size line of the server's: hex digits only, no extensions. */
#define CR_FZ_CHUNK_DIGITS_MAX          16
#define CR_FZ_CONTENT_LENGTH_DIGITS_MAX 18

static const char *const cr_fz_delay_routes[] = {"/wait", "/delay"};
static const char *const cr_fz_echo_targets[] = {"/echo", "/stream"};

static void *cr_fz_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (q == NULL) {
        fprintf(stderr, "fuzz_conn_check: out of memory\n");
        abort();
    }
    return q;
}

/* ---- the client's requests ---- */

static bool cr_fz_str_is(cr_str s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

static bool cr_fz_starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Whether the route that gets path is the delay module's, whose suspended
 * requests end when the client half-closes. */
static bool cr_fz_to_delay(const cr_http_head *h)
{
    char *norm = cr_fz_xrealloc(NULL, h->path.len + 1);
    bool delay = false;

    if (cr_http_normalize_path(h->path.ptr, h->path.len, norm) >= 0)
        for (size_t i = 0; i < sizeof(cr_fz_delay_routes) / sizeof(cr_fz_delay_routes[0]); i++)
            delay |= cr_fz_starts_with(norm, cr_fz_delay_routes[i]);
    free(norm);
    return delay;
}

static cr_fz_request cr_fz_describe(const cr_http_head *h)
{
    cr_fz_request r = {.head = h->method == CR_METHOD_HEAD, .droppable = cr_fz_to_delay(h)};

    for (size_t i = 0; i < sizeof(cr_fz_echo_targets) / sizeof(cr_fz_echo_targets[0]); i++)
        r.echo |= !r.head && cr_fz_str_is(h->target, cr_fz_echo_targets[i]);
    return r;
}

/* Takes the body of the request whose head ended at *off; *end moves when
 * a chunked body is decoded in place. 0, or -1 when the body is not all
 * there, is malformed or is over the limit. */
static int cr_fz_take_body(cr_fz_requests *rq, const cr_http_head *h, size_t *off, size_t *end,
                           size_t body_limit, cr_fz_request *r)
{
    r->body_off = *off;
    if (h->chunked) {
        cr_chunked_decoder d = {0};
        size_t n = *end - *off;
        int rest = cr_chunked_decode(&d, rq->scratch + *off, &n);

        if (rest < 0 || n > body_limit)
            return -1;
        r->body_len = n;
        *off += n;
        *end = *off + (size_t)rest;
        return 0;
    }
    if (h->content_length <= 0)
        return 0;
    if ((uint64_t)h->content_length > body_limit || (uint64_t)h->content_length > *end - *off)
        return -1;
    r->body_len = (size_t)h->content_length;
    *off += r->body_len;
    return 0;
}

static void cr_fz_add_request(cr_fz_requests *rq, const cr_fz_request *r)
{
    if (rq->count == rq->cap) {
        rq->cap = rq->cap ? rq->cap * 2 : 16;
        rq->items = cr_fz_xrealloc(rq->items, rq->cap * sizeof(*rq->items));
    }
    rq->items[rq->count++] = *r;
}

void cr_fz_requests_parse(cr_fz_requests *rq, const uint8_t *data, size_t len,
                          const cr_http_limits *lim, size_t body_limit)
{
    size_t off = 0, end = len;

    memset(rq, 0, sizeof(*rq));
    rq->scratch = cr_fz_xrealloc(NULL, len);
    if (len > 0)
        memcpy(rq->scratch, data, len);
    while (off < end) {
        cr_http_head h;
        size_t scanned = 0;
        int rc = cr_http_parse_head(rq->scratch + off, end - off, &scanned, lim, &h);
        cr_fz_request r;

        if (rc <= 0)
            break;
        off += (size_t)rc;
        r = cr_fz_describe(&h);
        if (cr_fz_take_body(rq, &h, &off, &end, body_limit, &r) != 0) {
            /* Not all there or refused: whatever answers it may stop short. */
            rq->last = r;
            rq->last.echo = false;
            rq->last.droppable = true;
            rq->extra = true;
            return;
        }
        cr_fz_add_request(rq, &r);
        if (!h.keep_alive)
            return;
    }
    /* A head that is incomplete or refused: the server may answer it with
     * an error page, whatever its method. */
    if (off < end) {
        rq->extra = true;
        rq->last = (cr_fz_request){.droppable = true};
    }
}

void cr_fz_requests_free(cr_fz_requests *rq)
{
    free(rq->scratch);
    free(rq->items);
    memset(rq, 0, sizeof(*rq));
}

/* ---- the server's answer ---- */

typedef struct cr_fz_resp {
    int status;
    size_t head_len;
    long long content_length; /* -1: none */
    bool chunked;
    bool close;
} cr_fz_resp;

/* A span of the answer under inspection; `error` set on the first fault. */
typedef struct cr_fz_cursor {
    const char *p;
    size_t len;
    const char *error;
} cr_fz_cursor;

static bool cr_fz_tchar(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* Field value and reason phrase: visible characters, spaces, tabs and
 * obs-text; never a control character, which would let a client's bytes
 * reshape the response. */
static bool cr_fz_text_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return false;
    }
    return true;
}

static bool cr_fz_digits(const char *s, size_t n, size_t max, long long *value)
{
    long long v = 0;

    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *value = v;
    return true;
}

static bool cr_fz_field_is(const char *s, size_t n, const char *lit)
{
    return n == strlen(lit) && strncasecmp(s, lit, n) == 0;
}

/* One header line (without its CRLF) into resp; the error or NULL. */
static const char *cr_fz_header_line(const char *line, size_t n, cr_fz_resp *resp)
{
    const char *colon = memchr(line, ':', n);
    size_t name_len, vlen;
    const char *v;

    if (colon == NULL || colon == line)
        return "response header line without a name and a colon";
    name_len = (size_t)(colon - line);
    for (size_t i = 0; i < name_len; i++)
        if (!cr_fz_tchar((unsigned char)line[i]))
            return "response header name is not a token";
    v = colon + 1;
    vlen = n - name_len - 1;
    while (vlen > 0 && (*v == ' ' || *v == '\t'))
        v++, vlen--;
    while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
    if (!cr_fz_text_ok(v, vlen))
        return "control character in a response header value";
    if (cr_fz_field_is(line, name_len, "content-length")) {
        if (resp->content_length >= 0 ||
            !cr_fz_digits(v, vlen, CR_FZ_CONTENT_LENGTH_DIGITS_MAX, &resp->content_length))
            return "bad or repeated Content-Length in a response";
    } else if (cr_fz_field_is(line, name_len, "transfer-encoding")) {
        if (resp->chunked || !cr_fz_field_is(v, vlen, "chunked"))
            return "response Transfer-Encoding other than one chunked";
        resp->chunked = true;
    } else if (cr_fz_field_is(line, name_len, "connection")) {
        resp->close |= cr_fz_field_is(v, vlen, "close");
    }
    return NULL;
}

static const char *cr_fz_status_line(const char *line, size_t n, cr_fz_resp *resp)
{
    static const char version[] = "HTTP/1.1 ";
    long long status;

    if (n < sizeof(version) - 1 + 4 || memcmp(line, version, sizeof(version) - 1) != 0)
        return "response does not start with an HTTP/1.1 status line";
    line += sizeof(version) - 1;
    n -= sizeof(version) - 1;
    if (!cr_fz_digits(line, 3, 3, &status) || status < 100 || line[3] != ' ')
        return "malformed status code";
    if (!cr_fz_text_ok(line + 4, n - 4))
        return "control character in the reason phrase";
    resp->status = (int)status;
    return NULL;
}

/* Parses the response head at the cursor. 1 done (resp filled), 0 not all
 * there, -1 malformed (c->error says why). */
static int cr_fz_resp_head(cr_fz_cursor *c, cr_fz_resp *resp)
{
    size_t at = 0;

    *resp = (cr_fz_resp){.content_length = -1};
    for (int line_no = 0;; line_no++) {
        const char *eol = memchr(c->p + at, '\n', c->len - at);
        size_t n;

        if (eol == NULL) {
            if (c->len > CR_FZ_RESP_HEAD_MAX)
                c->error = "response head without an end";
            return c->error ? -1 : 0;
        }
        n = (size_t)(eol - (c->p + at));
        if (n == 0 || c->p[at + n - 1] != '\r' || memchr(c->p + at, '\r', n - 1) != NULL) {
            c->error = "response line not ended by CRLF, or a bare CR in it";
            return -1;
        }
        n--;
        if (n == 0 && line_no > 0) {
            resp->head_len = at + 2;
            if (resp->chunked && resp->content_length >= 0)
                c->error = "response with both Content-Length and chunked";
            return c->error ? -1 : 1;
        }
        c->error = line_no == 0 ? cr_fz_status_line(c->p + at, n, resp)
                                : cr_fz_header_line(c->p + at, n, resp);
        if (c->error != NULL)
            return -1;
        at += n + 2;
    }
}

/* Walks a chunked body from the cursor; with out, appends the data to it.
 * Returns its encoded length, 0 when not all there, -1 when malformed. */
static long long cr_fz_chunked_body(cr_fz_cursor *c, char *out, size_t *out_len)
{
    size_t at = 0;

    for (;;) {
        size_t digits = 0;
        unsigned long long size = 0;

        while (at + digits < c->len && digits <= CR_FZ_CHUNK_DIGITS_MAX) {
            char ch = c->p[at + digits];
            int v = ch >= '0' && ch <= '9'   ? ch - '0'
                    : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                    : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                             : -1;
            if (v < 0)
                break;
            size = size * 16 + (unsigned)v;
            digits++;
        }
        if (at + digits + 2 > c->len)
            return 0;
        if (digits == 0 || digits > CR_FZ_CHUNK_DIGITS_MAX ||
            memcmp(c->p + at + digits, "\r\n", 2) != 0) {
            c->error = "malformed chunk size line in a response";
            return -1;
        }
        at += digits + 2;
        if (size > c->len - at || c->len - at - size < 2)
            return 0;
        if (memcmp(c->p + at + size, "\r\n", 2) != 0) {
            c->error = size ? "chunk data not followed by CRLF" : "trailer in a response";
            return -1;
        }
        if (out != NULL) {
            memcpy(out + *out_len, c->p + at, size);
            *out_len += size;
        }
        at += size + 2;
        if (size == 0)
            return (long long)at;
    }
}

/* The body's length in the answer: >0 or 0 with *complete, or not all
 * there (*complete false); -1 malformed. */
static long long cr_fz_body_len(cr_fz_cursor *c, const cr_fz_resp *resp, bool no_body, bool at_eof,
                                bool *complete)
{
    long long n;

    *complete = true;
    if (no_body)
        return 0;
    if (resp->chunked) {
        n = cr_fz_chunked_body(c, NULL, NULL);
        *complete = n > 0;
        return n;
    }
    if (resp->content_length >= 0) {
        *complete = (unsigned long long)resp->content_length <= c->len;
        return resp->content_length;
    }
    /* No length: the body runs to the close, which it must announce. */
    if (!resp->close) {
        c->error = "response without a length that keeps the connection";
        return -1;
    }
    *complete = at_eof;
    return (long long)c->len;
}

/* A 200 from an echo route gives back exactly the body that was sent. */
static const char *cr_fz_check_echo(const cr_fz_requests *rq, const cr_fz_request *req,
                                    const cr_fz_resp *resp, cr_fz_cursor body)
{
    const char *sent = rq->scratch + req->body_off;
    char *got;
    size_t got_len = 0;
    bool same;

    if (!resp->chunked)
        return body.len == req->body_len && memcmp(body.p, sent, body.len) == 0
                   ? NULL
                   : "echo answered a body other than the one sent";
    got = cr_fz_xrealloc(NULL, body.len);
    cr_fz_chunked_body(&body, got, &got_len);
    same = got_len == req->body_len && memcmp(got, sent, got_len) == 0;
    free(got);
    return same ? NULL : "echo answered a body other than the one sent";
}

static cr_fz_verdict cr_fz_fail(cr_fz_verdict v, const char *error, size_t at)
{
    v.error = error;
    v.at = at;
    return v;
}

/* The request the next final response answers, or NULL when none may. */
static const cr_fz_request *cr_fz_answering(const cr_fz_requests *rq, size_t finals)
{
    if (finals < rq->count)
        return &rq->items[finals];
    return finals == rq->count && rq->extra ? &rq->last : NULL;
}

cr_fz_verdict cr_fz_check_answer(const char *answer, size_t len, bool at_eof,
                                 const cr_fz_requests *rq)
{
    cr_fz_verdict v = {0};
    size_t pos = 0;
    bool closed = false;

    while (pos < len) {
        cr_fz_cursor c = {answer + pos, len - pos, NULL};
        const cr_fz_request *req;
        cr_fz_resp resp;
        long long body;
        bool complete, no_body;
        int rc;

        if (closed)
            return cr_fz_fail(v, "bytes after a response that closed the connection", pos);
        rc = cr_fz_resp_head(&c, &resp);
        if (rc < 0)
            return cr_fz_fail(v, c.error, pos);
        if (rc == 0)
            return at_eof ? cr_fz_fail(v, "response head cut short by the close", pos) : v;
        if (resp.status < 200) {
            if (resp.status != 100 || resp.chunked || resp.content_length >= 0)
                return cr_fz_fail(v, "an interim response other than a bare 100", pos);
            pos += resp.head_len;
            continue;
        }
        req = cr_fz_answering(rq, v.finals);
        if (req == NULL)
            return cr_fz_fail(v, "more responses than requests", pos);
        no_body = req->head || resp.status == 204 || resp.status == 304;
        c.p += resp.head_len;
        c.len -= resp.head_len;
        body = cr_fz_body_len(&c, &resp, no_body, at_eof, &complete);
        if (body < 0)
            return cr_fz_fail(v, c.error, pos);
        if (!complete)
            return at_eof && !req->droppable
                       ? cr_fz_fail(v, "response body cut short by the close", pos)
                       : v;
        if (req->echo && resp.status == 200) {
            const char *err =
                cr_fz_check_echo(rq, req, &resp, (cr_fz_cursor){c.p, (size_t)body, NULL});

            if (err != NULL)
                return cr_fz_fail(v, err, pos);
        }
        v.finals++;
        pos += resp.head_len + (size_t)body;
        closed = resp.close;
    }
    return v;
}
