/* Unit tests for core/http_parser.c: valid and invalid request heads, each
 * also fed one byte more at a time, pipelining, the chunked decoder split at
 * every byte, and path normalization. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_parser.h"

#define RAW(s) s, sizeof(s) - 1

static const cr_http_limits limits = {.header_bytes = 8192, .uri_bytes = 2048};

static bool str_is(cr_str s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

#define ck_assert_cr_str(s, want)                                                                  \
    ck_assert_msg(str_is((s), (want)), "%s is \"%.*s\", want \"%s\"", #s, (int)(s).len, (s).ptr,   \
                  (want))

/* A copy of exactly len bytes, so AddressSanitizer sees any read past it. */
static char *dup_exact(const char *raw, size_t len)
{
    char *b = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(b);
    memcpy(b, raw, len);
    return b;
}

static int parse(const char *raw, size_t len, cr_http_head *h)
{
    size_t scanned = 0;
    return cr_http_parse_head(raw, len, &scanned, &limits, h);
}

/* ---- valid heads ---- */

typedef struct valid_case {
    const char *raw;
    size_t body; /* bytes at the end of raw that follow the head */
    cr_method method;
    const char *method_name, *target, *path, *query;
    int minor;
    size_t nheaders;
    int64_t content_length;
    bool chunked, keep_alive, expect_continue;
    const char *host;
} valid_case;

static const valid_case valid[] = {
    {"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", 0, CR_METHOD_GET, "GET", "/", "/", "", 1, 1, -1,
     false, true, false, "example.com"},
    {"GET /index.html?a=1&b=2 HTTP/1.1\r\nHost: h\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n", 0,
     CR_METHOD_GET, "GET", "/index.html?a=1&b=2", "/index.html", "a=1&b=2", 1, 3, -1, false, true,
     false, "h"},
    {"GET /old HTTP/1.0\r\n\r\n", 0, CR_METHOD_GET, "GET", "/old", "/old", "", 0, 0, -1, false,
     false, false, ""},
    {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0, CR_METHOD_GET, "GET", "/", "/", "", 0,
     1, -1, false, true, false, ""},
    {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", 0, CR_METHOD_GET, "GET", "/", "/",
     "", 0, 1, -1, false, false, false, ""},
    {"GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive ,CLOSE\r\n\r\n", 0, CR_METHOD_GET, "GET",
     "/", "/", "", 1, 2, -1, false, false, false, "h"},
    {"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nconnection: close\r\n\r\n", 0,
     CR_METHOD_GET, "GET", "/", "/", "", 1, 3, -1, false, false, false, "h"},
    {"GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n", 0, CR_METHOD_GET, "GET", "/", "/",
     "", 1, 2, -1, false, true, false, "h"},
    {"POST /submit HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", 5, CR_METHOD_POST,
     "POST", "/submit", "/submit", "", 1, 2, 5, false, true, false, "h"},
    {"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     15, CR_METHOD_POST, "POST", "/up", "/up", "", 1, 2, -1, true, true, false, "h"},
    {"GET /lf HTTP/1.1\nHost: h\n\n", 0, CR_METHOD_GET, "GET", "/lf", "/lf", "", 1, 1, -1, false,
     true, false, "h"},
    {"GET /mixed HTTP/1.1\r\nHost: h\n\r\n", 0, CR_METHOD_GET, "GET", "/mixed", "/mixed", "", 1, 1,
     -1, false, true, false, "h"},
    {"\r\n\r\n\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 0, CR_METHOD_GET, "GET", "/", "/", "", 1, 1, -1,
     false, true, false, "h"},
    {"GET / HTTP/1.1\r\nHost: \t h \t\r\nX-Empty:\r\nX-A:  v  v \r\n\r\n", 0, CR_METHOD_GET, "GET",
     "/", "/", "", 1, 3, -1, false, true, false, "h"},
    {"PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc", 3,
     CR_METHOD_PUT, "PUT", "/f", "/f", "", 1, 3, 3, false, true, false, "h"},
    {"POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\nExpect: 100-Continue\r\n\r\n", 0,
     CR_METHOD_POST, "POST", "/e", "/e", "", 1, 3, 10, false, true, true, "h"},
    {"POST /e HTTP/1.0\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\nx", 1, CR_METHOD_POST,
     "POST", "/e", "/e", "", 0, 2, 1, false, false, false, ""},
    {"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 0, CR_METHOD_OPTIONS, "OPTIONS", "*", "*", "", 1, 1,
     -1, false, true, false, "h"},
    {"GET http://example.com:8080/p/q?z=1 HTTP/1.1\r\nHost: other\r\n\r\n", 0, CR_METHOD_GET, "GET",
     "http://example.com:8080/p/q?z=1", "/p/q", "z=1", 1, 1, -1, false, true, false,
     "example.com:8080"},
    {"GET HTTPS://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", 0, CR_METHOD_GET, "GET",
     "HTTPS://example.com", "/", "", 1, 1, -1, false, true, false, "example.com"},
    {"GET http://example.com?q HTTP/1.1\r\nHost: example.com\r\n\r\n", 0, CR_METHOD_GET, "GET",
     "http://example.com?q", "/", "q", 1, 1, -1, false, true, false, "example.com"},
    {"PROPFIND /dav HTTP/1.1\r\nHost: h\r\n\r\n", 0, CR_METHOD_UNKNOWN, "PROPFIND", "/dav", "/dav",
     "", 1, 1, -1, false, true, false, "h"},
    {"get / HTTP/1.1\r\nHost: h\r\n\r\n", 0, CR_METHOD_UNKNOWN, "get", "/", "/", "", 1, 1, -1,
     false, true, false, "h"},
    {"DELETE /? HTTP/1.1\r\nHost: h\r\n\r\n", 0, CR_METHOD_DELETE, "DELETE", "/?", "/", "", 1, 1,
     -1, false, true, false, "h"},
    {"HEAD /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\nX-Bin: \xff\xfe\r\n\r\n", 0, CR_METHOD_HEAD, "HEAD",
     "/caf\xc3\xa9", "/caf\xc3\xa9", "", 1, 2, -1, false, true, false, "h"},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775807\r\n\r\n", 0, CR_METHOD_POST,
     "POST", "/", "/", "", 1, 2, INT64_MAX, false, true, false, "h"},
    {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 007\r\n\r\n1234567", 7, CR_METHOD_POST, "POST",
     "/", "/", "", 1, 2, 7, false, true, false, "h"},
    {"GET / HTTP/1.1\r\nHost:\r\n\r\n", 0, CR_METHOD_GET, "GET", "/", "/", "", 1, 1, -1, false,
     true, false, ""},
    {"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", 0, CR_METHOD_GET, "GET", "/", "/", "", 1, 1, -1,
     false, true, false, "[::1]:8080"},
    {"PATCH /p HTTP/1.1\r\nHost: h\r\n\r\n", 0, CR_METHOD_PATCH, "PATCH", "/p", "/p", "", 1, 1, -1,
     false, true, false, "h"},
    {"TRACE /t HTTP/1.1\r\nHost: h\r\n\r\n", 0, CR_METHOD_TRACE, "TRACE", "/t", "/t", "", 1, 1, -1,
     false, true, false, "h"},
    {"CONNECT /c HTTP/1.1\r\nHost: h\r\n\r\n", 0, CR_METHOD_CONNECT, "CONNECT", "/c", "/c", "", 1,
     1, -1, false, true, false, "h"},
};

static void check_valid(const valid_case *c, const cr_http_head *h)
{
    ck_assert_int_eq(h->method, c->method);
    ck_assert_cr_str(h->method_name, c->method_name);
    ck_assert_cr_str(h->target, c->target);
    ck_assert_cr_str(h->path, c->path);
    ck_assert_cr_str(h->query, c->query);
    ck_assert_int_eq(h->version_minor, c->minor);
    ck_assert_uint_eq(h->nheaders, c->nheaders);
    ck_assert_int_eq(h->content_length, c->content_length);
    ck_assert_int_eq(h->chunked, c->chunked);
    ck_assert_int_eq(h->keep_alive, c->keep_alive);
    ck_assert_int_eq(h->expect_continue, c->expect_continue);
    ck_assert_cr_str(h->host, c->host);
}

START_TEST(test_valid_whole)
{
    const valid_case *c = &valid[_i];
    size_t len = strlen(c->raw);
    char *buf = dup_exact(c->raw, len);
    cr_http_head h;
    ck_assert_int_eq(parse(buf, len, &h), (int)(len - c->body));
    check_valid(c, &h);
    free(buf);
}
END_TEST

/* One byte more per call, as a slow client would send it, carrying
 * `scanned` across calls the way the connection does. */
START_TEST(test_valid_split)
{
    const valid_case *c = &valid[_i];
    size_t head_len = strlen(c->raw) - c->body;
    size_t scanned = 0;
    cr_http_head h;
    for (size_t n = 0; n < head_len; n++) {
        char *buf = dup_exact(c->raw, n);
        int rc = cr_http_parse_head(buf, n, &scanned, &limits, &h);
        free(buf);
        ck_assert_msg(rc == 0, "case %d: %d at %zu bytes", _i, rc, n);
    }
    char *buf = dup_exact(c->raw, head_len);
    ck_assert_int_eq(cr_http_parse_head(buf, head_len, &scanned, &limits, &h), (int)head_len);
    check_valid(c, &h);
    free(buf);
}
END_TEST

START_TEST(test_header_fields)
{
    const char *raw = "GET / HTTP/1.1\r\nHost:  a.b \r\nX-Empty:\r\nX-Multi: one, two\t\r\n\r\n";
    cr_http_head h;
    ck_assert_int_gt(parse(raw, strlen(raw), &h), 0);
    ck_assert_uint_eq(h.nheaders, 3);
    ck_assert_cr_str(h.headers[0].name, "Host");
    ck_assert_cr_str(h.headers[0].value, "a.b");
    ck_assert_cr_str(h.headers[1].name, "X-Empty");
    ck_assert_cr_str(h.headers[1].value, "");
    ck_assert_cr_str(h.headers[2].name, "X-Multi");
    ck_assert_cr_str(h.headers[2].value, "one, two");
}
END_TEST

START_TEST(test_need_more)
{
    static const char *const partial[] = {
        "",
        "\r",
        "\r\n",
        "\r\n\r",
        "G",
        "GET /",
        "GET / HTTP/1.1",
        "GET / HTTP/1.1\r",
        "GET / HTTP/1.1\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n\r",
        "GET / HTTP/1.1\nHost: h\n",
    };
    for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++) {
        cr_http_head h;
        ck_assert_msg(parse(partial[i], strlen(partial[i]), &h) == 0, "partial %zu", i);
    }
}
END_TEST

/* ---- pipelining ---- */

START_TEST(test_pipeline)
{
    static const char raw[] = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
                              "POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
                              "GET /3 HTTP/1.0\r\n\r\n";
    static const char *const paths[] = {"/1", "/2", "/3"};
    size_t len = sizeof(raw) - 1, off = 0;
    char *buf = dup_exact(raw, len);
    for (int i = 0; i < 3; i++) {
        cr_http_head h;
        size_t scanned = 0;
        int rc = cr_http_parse_head(buf + off, len - off, &scanned, &limits, &h);
        ck_assert_int_gt(rc, 0);
        ck_assert_cr_str(h.path, paths[i]);
        off += (size_t)rc + (h.content_length > 0 ? (size_t)h.content_length : 0);
    }
    ck_assert_uint_eq(off, len);
    free(buf);
}
END_TEST

START_TEST(test_pipeline_chunked)
{
    static const char raw[] = "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: v\r\n\r\n"
                              "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
    size_t len = sizeof(raw) - 1, scanned = 0;
    char *buf = dup_exact(raw, len);
    cr_http_head h;
    int rc = cr_http_parse_head(buf, len, &scanned, &limits, &h);
    ck_assert_int_gt(rc, 0);
    ck_assert(h.chunked);
    cr_chunked_decoder d = {0};
    char *body = buf + rc;
    size_t blen = len - (size_t)rc;
    int rest = cr_chunked_decode(&d, body, &blen);
    ck_assert_int_eq(rest, (int)strlen("GET /b HTTP/1.1\r\nHost: h\r\n\r\n"));
    ck_assert_uint_eq(blen, 5);
    ck_assert(memcmp(body, "abcde", 5) == 0);
    scanned = 0;
    ck_assert_int_eq(cr_http_parse_head(body + blen, (size_t)rest, &scanned, &limits, &h), rest);
    ck_assert_cr_str(h.path, "/b");
    free(buf);
}
END_TEST

/* ---- invalid heads ---- */

typedef struct invalid_case {
    const char *raw;
    size_t len;
    int status;
} invalid_case;

#define H11 "GET / HTTP/1.1\r\nHost: h\r\n"

static const invalid_case invalid[] = {
    /* framing */
    {RAW("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
     -400},
    {RAW("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
     -400},
    {RAW(H11 "Content-Length: 5\r\nContent-Length: 6\r\n\r\n"), -400},
    {RAW(H11 "Content-Length: 5, 6\r\n\r\n"), -400},
    {RAW(H11 "Content-Length: -1\r\n\r\n"), -400},
    {RAW(H11 "Content-Length: +1\r\n\r\n"), -400},
    {RAW(H11 "Content-Length: 1x\r\n\r\n"), -400},
    {RAW(H11 "Content-Length:\r\n\r\n"), -400},
    {RAW(H11 "Content-Length: 1 2\r\n\r\n"), -400},
    {RAW(H11 "Content-Length: 0x10\r\n\r\n"), -400},
    {RAW(H11 "Content-Length: 1,\r\n\r\n"), -400},
    {RAW(H11 "Content-Length: ,1\r\n\r\n"), -400},
    {RAW(H11 "Content-Length: 9223372036854775808\r\n\r\n"), -400},
    {RAW(H11 "Content-Length: 99999999999999999999\r\n\r\n"), -400},
    {RAW(H11 "Transfer-Encoding: gzip, chunked\r\n\r\n"), -501},
    {RAW(H11 "Transfer-Encoding: gzip\r\n\r\n"), -501},
    {RAW(H11 "Transfer-Encoding: chunked, gzip\r\n\r\n"), -501},
    {RAW(H11 "Transfer-Encoding: identity\r\n\r\n"), -501},
    {RAW(H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"), -501},
    {RAW(H11 "Transfer-Encoding:\r\n\r\n"), -400},
    {RAW("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), -400},
    /* Host */
    {RAW("GET / HTTP/1.1\r\n\r\n"), -400},
    {RAW("GET / HTTP/1.1\r\nX: y\r\n\r\n"), -400},
    {RAW(H11 "Host: h\r\n\r\n"), -400},
    {RAW("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), -400},
    {RAW("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), -400},
    {RAW("GET / HTTP/1.1\r\nHost: a@b\r\n\r\n"), -400},
    /* field syntax */
    {RAW("GET / HTTP/1.1\r\nHost : h\r\n\r\n"), -400},
    {RAW("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n"), -400},
    {RAW(H11 "X: a\r\n b\r\n\r\n"), -400},
    {RAW(H11 "X: a\r\n\tb\r\n\r\n"), -400},
    {RAW("GET / HTTP/1.1\r\n Host: h\r\n\r\n"), -400},
    {RAW(H11 ": x\r\n\r\n"), -400},
    {RAW(H11 "X(: y\r\n\r\n"), -400},
    {RAW(H11 "NoColon\r\n\r\n"), -400},
    {RAW(H11 "X\0Y: z\r\n\r\n"), -400},
    {RAW(H11 "X: a\x01z\r\n\r\n"), -400},
    {RAW(H11 "X: a\0z\r\n\r\n"), -400},
    {RAW(H11 "X: a\x7fz\r\n\r\n"), -400},
    /* bare CR */
    {RAW("GET / HTTP/1.1\rHost: h\r\n\r\n"), -400},
    {RAW(H11 "X: a\rb\r\n\r\n"), -400},
    {RAW("\rGET / HTTP/1.1\r\nHost: h\r\n\r\n"), -400},
    {RAW("GET / HTTP/1.1\r\r\nHost: h\r\n\r\n"), -400},
    {RAW("GET / HTTP/1.1\r\nHost: h\r\r\n\r\n"), -400},
    {RAW(H11 "\r\r\n\r\n"), -400},
    /* version */
    {RAW("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), -505},
    {RAW("GET / HTTP/1.2\r\nHost: h\r\n\r\n"), -505},
    {RAW("GET / HTTP/0.9\r\n\r\n"), -505},
    {RAW("GET / HTTP/3.1\r\n\r\n"), -505},
    {RAW("GET / HTTP/1.1x\r\nHost: h\r\n\r\n"), -400},
    {RAW("GET / http/1.1\r\nHost: h\r\n\r\n"), -400},
    {RAW("GET / HTTP/1\r\nHost: h\r\n\r\n"), -400},
    {RAW("GET / HTTP/11.1\r\nHost: h\r\n\r\n"), -400},
    {RAW("GET / HTTP/1.1 \r\nHost: h\r\n\r\n"), -400},
    {RAW("GET / HTTP/1.a\r\nHost: h\r\n\r\n"), -400},
    {RAW("GET /\r\n\r\n"), -400},
    {RAW("GET / \r\n\r\n"), -400},
    /* request line */
    {RAW("GET  / HTTP/1.1\r\nHost: h\r\n\r\n"), -400},
    {RAW("GET /  HTTP/1.1\r\nHost: h\r\n\r\n"), -400},
    {RAW("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n"), -400},
    {RAW(" GET / HTTP/1.1\r\nHost: h\r\n\r\n"), -400},
    {RAW("G(T / HTTP/1.1\r\nHost: h\r\n\r\n"), -400},
    {RAW("GET x HTTP/1.1\r\nHost: h\r\n\r\n"), -400},
    {RAW("GET * HTTP/1.1\r\nHost: h\r\n\r\n"), -400},
    {RAW("GET ftp://x/ HTTP/1.1\r\nHost: h\r\n\r\n"), -400},
    {RAW("GET http:///p HTTP/1.1\r\nHost: h\r\n\r\n"), -400},
    {RAW("GET http:// HTTP/1.1\r\nHost: h\r\n\r\n"), -400},
    {RAW("GET http://user@host/ HTTP/1.1\r\nHost: h\r\n\r\n"), -400},
    {RAW("GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n"), -400},
    {RAW("GET /a\x01"
         "b HTTP/1.1\r\nHost: h\r\n\r\n"),
     -400},
    {RAW("GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n"), -400},
    {RAW("GET\r\n\r\n"), -400},
    {RAW("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), -400},
    /* detected before the head ends */
    {RAW("GET / HTTP/2.0\r\nHost:"), -505},
    {RAW("G@T / HTTP/1.1"), -400},
};

START_TEST(test_invalid)
{
    const invalid_case *c = &invalid[_i];
    char *buf = dup_exact(c->raw, c->len);
    cr_http_head h;
    int rc = parse(buf, c->len, &h);
    ck_assert_msg(rc == c->status, "case %d: got %d, want %d", _i, rc, c->status);
    free(buf);
}
END_TEST

/* Fed one byte more at a time, an invalid head is never accepted, and the
 * error, once seen, is the one the whole input gives. */
START_TEST(test_invalid_split)
{
    const invalid_case *c = &invalid[_i];
    size_t scanned = 0;
    cr_http_head h;
    int rc = 0;
    for (size_t n = 0; n <= c->len && rc == 0; n++) {
        char *buf = dup_exact(c->raw, n);
        rc = cr_http_parse_head(buf, n, &scanned, &limits, &h);
        free(buf);
    }
    ck_assert_msg(rc == c->status, "case %d: got %d, want %d", _i, rc, c->status);
}
END_TEST

/* ---- limits ---- */

/* Builds "GET <target> HTTP/1.1\r\nHost: h\r\n" + extra + "\r\n". */
static char *make_head(size_t target_len, const char *extra, size_t *len)
{
    size_t cap = target_len + strlen(extra) + 64;
    char *b = malloc(cap);
    ck_assert_ptr_nonnull(b);
    memcpy(b, "GET /", 5);
    memset(b + 5, 'a', target_len - 1);
    int n =
        snprintf(b + 4 + target_len, cap - 4 - target_len, " HTTP/1.1\r\nHost: h\r\n%s\r\n", extra);
    *len = 4 + target_len + (size_t)n;
    return b;
}

START_TEST(test_uri_limit)
{
    size_t len;
    cr_http_head h;
    char *b = make_head(limits.uri_bytes, "", &len);
    ck_assert_int_eq(parse(b, len, &h), (int)len);
    ck_assert_uint_eq(h.target.len, limits.uri_bytes);
    free(b);
    b = make_head(limits.uri_bytes + 1, "", &len);
    ck_assert_int_eq(parse(b, len, &h), -414);
    free(b);
}
END_TEST

/* An endless target is refused as soon as it passes the limit, long before
 * the head could reach header_bytes. */
START_TEST(test_uri_limit_early)
{
    size_t len;
    cr_http_head h;
    char *b = make_head(100000, "", &len);
    size_t scanned = 0;
    int rc = 0;
    size_t n = 0;
    for (; n < len && rc == 0; n += 7)
        rc = cr_http_parse_head(b, n, &scanned, &limits, &h);
    ck_assert_int_eq(rc, -414);
    ck_assert_uint_le(n, limits.uri_bytes + 4 + 1 + 7 + 7);
    free(b);
}
END_TEST

static char *repeat_headers(size_t count, size_t *len)
{
    char *extra = malloc(count * 16 + 1);
    ck_assert_ptr_nonnull(extra);
    size_t o = 0;
    for (size_t i = 0; i < count; i++)
        o += (size_t)sprintf(extra + o, "X-%zu: v\r\n", i);
    char *b = make_head(1, extra, len);
    free(extra);
    return b;
}

START_TEST(test_max_headers)
{
    size_t len;
    cr_http_head h;
    char *b = repeat_headers(CR_HTTP_MAX_HEADERS - 1, &len);
    ck_assert_int_eq(parse(b, len, &h), (int)len);
    ck_assert_uint_eq(h.nheaders, CR_HTTP_MAX_HEADERS);
    free(b);
    b = repeat_headers(CR_HTTP_MAX_HEADERS, &len);
    ck_assert_int_eq(parse(b, len, &h), -431);
    free(b);
}
END_TEST

START_TEST(test_header_bytes)
{
    size_t len, vlen = 10000;
    cr_http_head h;
    char *extra = malloc(vlen + 16);
    ck_assert_ptr_nonnull(extra);
    memcpy(extra, "X-Big: ", 7);
    memset(extra + 7, 'v', vlen);
    strcpy(extra + 7 + vlen, "\r\n");
    char *b = make_head(1, extra, &len);

    /* complete but too big */
    ck_assert_int_eq(parse(b, len, &h), -431);
    /* still arriving: refused once past the limit */
    ck_assert_int_eq(parse(b, limits.header_bytes, &h), 0);
    ck_assert_int_eq(parse(b, limits.header_bytes + 1, &h), -431);

    /* exactly at the limit is fine, one more byte is not */
    cr_http_limits lim = {.header_bytes = len, .uri_bytes = 100};
    size_t scanned = 0;
    ck_assert_int_eq(cr_http_parse_head(b, len, &scanned, &lim, &h), (int)len);
    lim.header_bytes = len - 1;
    scanned = 0;
    ck_assert_int_eq(cr_http_parse_head(b, len, &scanned, &lim, &h), -431);
    free(b);
    free(extra);
}
END_TEST

/* A client sending nothing but empty lines is cut off at header_bytes. */
START_TEST(test_empty_line_flood)
{
    size_t len = limits.header_bytes + 2;
    char *b = malloc(len);
    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i < len; i += 2)
        memcpy(b + i, "\r\n", 2);
    cr_http_head h;
    ck_assert_int_eq(parse(b, limits.header_bytes, &h), 0);
    ck_assert_int_eq(parse(b, len, &h), -431);
    free(b);
}
END_TEST

/* ---- chunked bodies ---- */

typedef struct chunked_case {
    const char *raw;
    size_t len;
    const char *data; /* decoded body */
    size_t data_len;
    size_t rest; /* bytes after the body; (size_t)-1: the body is not over */
} chunked_case;

#define MORE ((size_t)-1)

static const chunked_case chunked_ok[] = {
    {RAW("5\r\nhello\r\n0\r\n\r\n"), RAW("hello"), 0},
    {RAW("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET / HTTP/1.1\r\n"), RAW("hello world"), 16},
    {RAW("A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n"), RAW("0123456789abcdefghij"), 0},
    {RAW("3;name=val;x\r\nabc\r\n0;last=\"q\"\r\n\r\n"), RAW("abc"), 0},
    {RAW("3 ;a\r\nabc\r\n0\t\r\n\r\n"), RAW("abc"), 0},
    {RAW("3\r\nabc\r\n0\r\nX-T: 1\r\nY:2\r\n\r\nXY"), RAW("abc"), 2},
    {RAW("3\nabc\n0\n\n"), RAW("abc"), 0},
    {RAW("3\nabc\n0\nT: v\n\n"), RAW("abc"), 0},
    {RAW("0003\r\nabc\r\n0000\r\n\r\n"), RAW("abc"), 0},
    {RAW("0\r\n\r\n"), RAW(""), 0},
    {RAW("1\r\n\0\r\n2\r\n\r\n\r\n0\r\n\r\n"), RAW("\0\r\n"), 0},
    {RAW("ffffffffffffffff\r\n"), RAW(""), MORE},
    {RAW("5\r\nhel"), RAW("hel"), MORE},
    {RAW("5\r\nhello\r\n0\r\nX: y"), RAW("hello"), MORE},
};

static const chunked_case chunked_bad[] = {
    {RAW("x\r\n"), NULL, 0, 0},
    {RAW("\r\n"), NULL, 0, 0},
    {RAW("-1\r\n"), NULL, 0, 0},
    {RAW("0x5\r\nhello\r\n0\r\n\r\n"), NULL, 0, 0},
    {RAW("1 2\r\nab\r\n0\r\n\r\n"), NULL, 0, 0},
    {RAW("5\r\nhelloX\r\n0\r\n\r\n"), NULL, 0, 0},
    {RAW("5\r\nhello\rX"), NULL, 0, 0},
    {RAW("5\r\nhello\r\r\n"), NULL, 0, 0},
    {RAW("5\r\r\nhello\r\n0\r\n\r\n"), NULL, 0, 0},
    {RAW("5;a\rb\r\nhello\r\n0\r\n\r\n"), NULL, 0, 0},
    {RAW("5;a\x01\r\nhello\r\n0\r\n\r\n"), NULL, 0, 0},
    {RAW("10000000000000000\r\n"), NULL, 0, 0},
    {RAW("00000000000000001\r\nx\r\n0\r\n\r\n"), NULL, 0, 0},
    {RAW("0\r\nbad\r\n\r\n"), NULL, 0, 0},
    {RAW("0\r\n: v\r\n\r\n"), NULL, 0, 0},
    {RAW("0\r\n x: v\r\n\r\n"), NULL, 0, 0},
    {RAW("0\r\nX: v\x01\r\n\r\n"), NULL, 0, 0},
    {RAW("0\r\nX: v\rw\r\n\r\n"), NULL, 0, 0},
    {RAW("0\r\n\rX"), NULL, 0, 0},
};

/* Feeds raw to a fresh decoder in pieces cut at `cuts` (ascending offsets),
 * each piece in its own exact-size buffer as it would arrive from a read.
 * Collects the decoded data into out and what followed the body into rest.
 * Returns the last status. */
static int decode_pieces(const char *raw, size_t len, const size_t *cuts, size_t ncuts, char *out,
                         size_t *out_len, char *rest, size_t *rest_len)
{
    cr_chunked_decoder d = {0};
    size_t from = 0;
    *out_len = *rest_len = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        size_t n = to - from;
        char *piece = dup_exact(raw + from, n);
        int rc = cr_chunked_decode(&d, piece, &n);
        if (rc != CR_ERROR) {
            memcpy(out + *out_len, piece, n);
            *out_len += n;
        }
        if (rc >= 0) {
            memcpy(rest, piece + n, (size_t)rc);
            memcpy(rest + rc, raw + to, len - to);
            *rest_len = (size_t)rc + len - to;
        }
        free(piece);
        if (rc != CR_AGAIN)
            return rc;
        from = to;
    }
    return CR_AGAIN;
}

static void check_chunked_ok(const chunked_case *c, const size_t *cuts, size_t ncuts)
{
    char out[256], rest[256];
    size_t out_len, rest_len;
    int rc = decode_pieces(c->raw, c->len, cuts, ncuts, out, &out_len, rest, &rest_len);
    if (c->rest == MORE) {
        ck_assert_int_eq(rc, CR_AGAIN);
    } else {
        ck_assert_int_ge(rc, 0);
        ck_assert_uint_eq(rest_len, c->rest);
        ck_assert(memcmp(rest, c->raw + c->len - c->rest, c->rest) == 0);
    }
    ck_assert_msg(out_len == c->data_len && memcmp(out, c->data, out_len) == 0,
                  "decoded \"%.*s\", want \"%s\"", (int)out_len, out, c->data);
}

/* Whole, cut once at every offset, and one byte per call. */
static void for_each_split(const chunked_case *c,
                           void (*check)(const chunked_case *, const size_t *, size_t))
{
    check(c, NULL, 0);
    for (size_t k = 0; k <= c->len; k++)
        check(c, &k, 1);
    size_t every[256];
    ck_assert_uint_le(c->len, 256);
    for (size_t k = 0; k + 1 < c->len; k++)
        every[k] = k + 1;
    check(c, every, c->len ? c->len - 1 : 0);
}

START_TEST(test_chunked_ok)
{
    for_each_split(&chunked_ok[_i], check_chunked_ok);
}
END_TEST

static void check_chunked_bad(const chunked_case *c, const size_t *cuts, size_t ncuts)
{
    char out[256], rest[256];
    size_t out_len, rest_len;
    int rc = decode_pieces(c->raw, c->len, cuts, ncuts, out, &out_len, rest, &rest_len);
    ck_assert_int_eq(rc, CR_ERROR);
}

START_TEST(test_chunked_bad)
{
    for_each_split(&chunked_bad[_i], check_chunked_bad);
}
END_TEST

/* Once the body is over, further input is all "following bytes". */
START_TEST(test_chunked_after_done)
{
    char buf[16] = "0\r\n\r\n";
    size_t len = 5;
    cr_chunked_decoder d = {0};
    ck_assert_int_eq(cr_chunked_decode(&d, buf, &len), 0);
    ck_assert_uint_eq(len, 0);
    memcpy(buf, "GET", 3);
    len = 3;
    ck_assert_int_eq(cr_chunked_decode(&d, buf, &len), 3);
    ck_assert_uint_eq(len, 0);
    ck_assert(memcmp(buf, "GET", 3) == 0);
}
END_TEST

static int decode_all(const char *raw, size_t len)
{
    char *b = dup_exact(raw, len);
    cr_chunked_decoder d = {0};
    int rc = cr_chunked_decode(&d, b, &len);
    free(b);
    return rc;
}

START_TEST(test_chunked_limits)
{
    /* extensions up to the line limit, then one byte more */
    size_t n = 4096;
    char *b = malloc(n + 64);
    ck_assert_ptr_nonnull(b);
    b[0] = '1';
    b[1] = ';';
    memset(b + 2, 'e', n - 2);
    memcpy(b + n, "\r\nx\r\n0\r\n\r\n", 10);
    ck_assert_int_eq(decode_all(b, n + 10), 0);
    memset(b + 2, 'e', n - 1);
    memcpy(b + n + 1, "\r\nx\r\n0\r\n\r\n", 10);
    ck_assert_int_eq(decode_all(b, n + 11), CR_ERROR);
    free(b);

    /* 16 hex digits are fine, 17 are not */
    ck_assert_int_eq(decode_all(RAW("000000000000000a\r\n")), CR_AGAIN);
    ck_assert_int_eq(decode_all(RAW("0000000000000000a\r\n")), CR_ERROR);

    /* the trailer section is bounded */
    n = 10000;
    b = malloc(n + 16);
    ck_assert_ptr_nonnull(b);
    memcpy(b, "0\r\nX: ", 6);
    memset(b + 6, 'v', n - 6);
    memcpy(b + n, "\r\n\r\n", 4);
    ck_assert_int_eq(decode_all(b, n + 4), CR_ERROR);
    free(b);
}
END_TEST

/* ---- path normalization ---- */

typedef struct norm_case {
    const char *in;
    size_t len;
    const char *out; /* NULL: refused */
} norm_case;

static const norm_case norm[] = {
    {RAW("/"), "/"},
    {RAW("/a/b"), "/a/b"},
    {RAW("/a/./b"), "/a/b"},
    {RAW("/a/../b"), "/b"},
    {RAW("/a/b/../../c"), "/c"},
    {RAW("/%2e%2e/"), NULL},
    {RAW("/%2E%2E"), NULL},
    {RAW("/.."), NULL},
    {RAW("/../x"), NULL},
    {RAW("/a/../.."), NULL},
    {RAW("/a/b/../../.."), NULL},
    {RAW("/a/.."), "/"},
    {RAW("/a/b/.."), "/a/"},
    {RAW("/a/."), "/a/"},
    {RAW("/."), "/"},
    {RAW("/./"), "/"},
    {RAW("/a%00b"), NULL},
    {RAW("/a\0b"), NULL},
    {RAW("/%zz"), NULL},
    {RAW("/%2"), NULL},
    {RAW("/%"), NULL},
    {RAW("/%g0"), NULL},
    {RAW("//a//b"), "/a/b"},
    {RAW("//"), "/"},
    {RAW("/a/b/"), "/a/b/"},
    {RAW("/a//"), "/a/"},
    {RAW(""), NULL},
    {RAW("a/b"), NULL},
    {RAW("*"), NULL},
    {RAW("/a%2Fb"), "/a/b"},
    {RAW("/a%2f..%2fb"), "/b"},
    {RAW("/a/%2E/b"), "/a/b"},
    {RAW("/a/.%2e/b"), "/b"},
    {RAW("/%41%42c"), "/ABc"},
    {RAW("/a%20b"), "/a b"},
    {RAW("/caf%C3%A9"), "/caf\xc3\xa9"},
    {RAW("/caf\xc3\xa9"), "/caf\xc3\xa9"},
    {RAW("/..."), "/..."},
    {RAW("/.a/..b/c."), "/.a/..b/c."},
    {RAW("/a\x01"), NULL},
    {RAW("/a\x7f"), NULL},
    {RAW("/%25"), "/%"},
    {RAW("/%2e%2"), NULL},
};

START_TEST(test_normalize)
{
    const norm_case *c = &norm[_i];
    char *in = dup_exact(c->in, c->len);
    char *out = malloc(c->len + 1);
    ck_assert_ptr_nonnull(out);
    ssize_t rc = cr_http_normalize_path(in, c->len, out);
    if (c->out == NULL) {
        ck_assert_msg(rc == -1, "case %d \"%s\": got \"%s\"", _i, c->in, rc >= 0 ? out : "");
    } else {
        ck_assert_msg(rc >= 0, "case %d \"%s\": refused", _i, c->in);
        ck_assert_int_eq(rc, (ssize_t)strlen(c->out));
        ck_assert_str_eq(out, c->out);
    }
    free(in);
    free(out);
}
END_TEST

/* ---- cr_str_ieq ---- */

START_TEST(test_str_ieq)
{
    ck_assert(cr_str_ieq(CR_STR("Chunked"), "chunked"));
    ck_assert(cr_str_ieq(CR_STR("CHUNKED"), "chunked"));
    ck_assert(cr_str_ieq(CR_STR(""), ""));
    ck_assert(!cr_str_ieq(CR_STR("chunke"), "chunked"));
    ck_assert(!cr_str_ieq(CR_STR("chunkedx"), "chunked"));
    ck_assert(!cr_str_ieq(CR_STR("chunked"), ""));
    ck_assert(!cr_str_ieq((cr_str){"ab\0", 3}, "ab"));
    ck_assert(!cr_str_ieq(CR_STR("x-y"), "x_y"));
    ck_assert(!cr_str_ieq(CR_STR("@"), "`"));
    ck_assert(!cr_str_ieq(CR_STR("["), "{"));
}
END_TEST

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *parser_suite(void)
{
    Suite *s = suite_create("http_parser");

    TCase *tc = tcase_create("head");
    tcase_add_loop_test(tc, test_valid_whole, 0, NELEM(valid));
    tcase_add_loop_test(tc, test_valid_split, 0, NELEM(valid));
    tcase_add_test(tc, test_header_fields);
    tcase_add_test(tc, test_need_more);
    tcase_add_test(tc, test_pipeline);
    tcase_add_test(tc, test_pipeline_chunked);
    tcase_add_loop_test(tc, test_invalid, 0, NELEM(invalid));
    tcase_add_loop_test(tc, test_invalid_split, 0, NELEM(invalid));
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_add_test(tc, test_uri_limit);
    tcase_add_test(tc, test_uri_limit_early);
    tcase_add_test(tc, test_max_headers);
    tcase_add_test(tc, test_header_bytes);
    tcase_add_test(tc, test_empty_line_flood);
    suite_add_tcase(s, tc);

    tc = tcase_create("chunked");
    tcase_add_loop_test(tc, test_chunked_ok, 0, NELEM(chunked_ok));
    tcase_add_loop_test(tc, test_chunked_bad, 0, NELEM(chunked_bad));
    tcase_add_test(tc, test_chunked_after_done);
    tcase_add_test(tc, test_chunked_limits);
    suite_add_tcase(s, tc);

    tc = tcase_create("path");
    tcase_add_loop_test(tc, test_normalize, 0, NELEM(norm));
    tcase_add_test(tc, test_str_ieq);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(parser_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
