/* libFuzzer harness for core/http_parser.c: every input goes through the
 * head parser (whole and fed in growing prefixes, under two sets of limits),
 * the chunked decoder (whole and in pieces) and the path normalizer, and
 * any broken invariant aborts. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const cr_http_limits fuzz_limits[] = {
    {.header_bytes = 8192, .uri_bytes = 2048},
    {.header_bytes = 96, .uri_bytes = 24},
};

/* A copy of exactly len bytes, so AddressSanitizer sees any read past it. */
static char *dup_exact(const void *src, size_t len)
{
    char *b = malloc(len ? len : 1);
    FUZZ_CHECK(b != NULL);
    if (len)
        memcpy(b, src, len);
    return b;
}

/* Inputs are mostly small; past this, prefixes grow by more than a byte so
 * one input stays cheap. */
static size_t step_for(size_t size)
{
    return size <= 256 ? 1 : size / 128 + 1;
}

static bool in_buf(cr_str s, const char *buf, size_t len)
{
    return s.len == 0 || (s.ptr >= buf && s.len <= len && s.ptr - buf <= (ptrdiff_t)(len - s.len));
}

static bool str_eq(cr_str a, cr_str b)
{
    return a.len == b.len && (a.len == 0 || a.ptr == b.ptr);
}

static bool head_eq(const cr_http_head *a, const cr_http_head *b)
{
    if (a->method != b->method || !str_eq(a->method_name, b->method_name) ||
        !str_eq(a->target, b->target) || !str_eq(a->path, b->path) || !str_eq(a->query, b->query) ||
        a->version_minor != b->version_minor || a->nheaders != b->nheaders ||
        a->content_length != b->content_length || a->chunked != b->chunked ||
        a->keep_alive != b->keep_alive || a->expect_continue != b->expect_continue ||
        !str_eq(a->host, b->host))
        return false;
    for (size_t i = 0; i < a->nheaders; i++)
        if (!str_eq(a->headers[i].name, b->headers[i].name) ||
            !str_eq(a->headers[i].value, b->headers[i].value))
            return false;
    return true;
}

static void check_path(const char *in, size_t len);

static void check_parsed_head(const char *buf, size_t rc, const cr_http_limits *lim,
                              const cr_http_head *h)
{
    FUZZ_CHECK(rc <= lim->header_bytes);
    FUZZ_CHECK(buf[rc - 1] == '\n');
    FUZZ_CHECK(h->version_minor == 0 || h->version_minor == 1);
    FUZZ_CHECK(h->nheaders <= CR_HTTP_MAX_HEADERS);
    FUZZ_CHECK(h->content_length >= -1);
    FUZZ_CHECK(!(h->chunked && h->content_length >= 0));
    FUZZ_CHECK(h->method_name.len > 0 && in_buf(h->method_name, buf, rc));
    FUZZ_CHECK(h->target.len > 0 && h->target.len <= lim->uri_bytes);
    FUZZ_CHECK(in_buf(h->target, buf, rc));
    FUZZ_CHECK(in_buf(h->path, buf, rc) || (h->path.len == 1 && h->path.ptr[0] == '/'));
    FUZZ_CHECK(h->path.len > 0 && in_buf(h->query, buf, rc) && in_buf(h->host, buf, rc));
    FUZZ_CHECK(h->version_minor == 1 || !h->expect_continue);
    for (size_t i = 0; i < h->nheaders; i++) {
        const cr_header *hd = &h->headers[i];
        FUZZ_CHECK(hd->name.len > 0 && in_buf(hd->name, buf, rc) && in_buf(hd->value, buf, rc));
        FUZZ_CHECK(memchr(hd->value.ptr, '\n', hd->value.len) == NULL);
        FUZZ_CHECK(memchr(hd->value.ptr, '\r', hd->value.len) == NULL);
        FUZZ_CHECK(memchr(hd->value.ptr, '\0', hd->value.len) == NULL);
    }
    if (h->path.ptr[0] == '/')
        check_path(h->path.ptr, h->path.len);
}

static bool valid_status(int rc)
{
    return rc >= 0 || rc == -400 || rc == -414 || rc == -431 || rc == -501 || rc == -505;
}

/* Feeds growing prefixes, each in its own exact-size buffer, carrying
 * `scanned` as the connection does: every call must answer what a fresh
 * call on the same bytes answers, and a head found in a prefix is the one
 * the whole input gives. */
static void fuzz_head_incremental(const uint8_t *data, size_t size, const cr_http_limits *lim,
                                  int whole_rc, const cr_http_head *whole)
{
    size_t scanned = 0, step = step_for(size);
    for (size_t n = 0;; n = n + step < size ? n + step : size) {
        char *b = dup_exact(data, n);
        cr_http_head h, fresh;
        size_t zero = 0;
        int rc = cr_http_parse_head(b, n, &scanned, lim, &h);
        int rc_fresh = cr_http_parse_head(b, n, &zero, lim, &fresh);
        FUZZ_CHECK(rc == rc_fresh);
        FUZZ_CHECK(scanned <= n);
        if (rc > 0) {
            FUZZ_CHECK(head_eq(&h, &fresh));
            FUZZ_CHECK(rc == whole_rc);
            FUZZ_CHECK(h.nheaders == whole->nheaders && h.method == whole->method &&
                       h.content_length == whole->content_length);
        }
        free(b);
        if (rc != 0 || n == size)
            return;
    }
}

static void fuzz_head(const uint8_t *data, size_t size, const cr_http_limits *lim)
{
    char *b = dup_exact(data, size);
    cr_http_head h;
    size_t scanned = 0;
    int rc = cr_http_parse_head(b, size, &scanned, lim, &h);
    FUZZ_CHECK(valid_status(rc));
    FUZZ_CHECK(rc <= 0 || (size_t)rc <= size);
    if (rc > 0)
        check_parsed_head(b, (size_t)rc, lim, &h);
    fuzz_head_incremental(data, size, lim, rc, &h);
    free(b);
}

/* Serves the input as a connection would: head after head, skipping each
 * Content-Length body and decoding each chunked one in place, so that
 * pipelined requests and what chunked decoding leaves behind get parsed. */
static void fuzz_pipeline(const uint8_t *data, size_t size, const cr_http_limits *lim)
{
    char *b = dup_exact(data, size);
    size_t off = 0, end = size;
    for (int i = 0; i < 32; i++) {
        cr_http_head h;
        size_t scanned = 0;
        int rc = cr_http_parse_head(b + off, end - off, &scanned, lim, &h);
        if (rc <= 0)
            break;
        check_parsed_head(b + off, (size_t)rc, lim, &h);
        off += (size_t)rc;
        if (h.content_length > 0) {
            if ((uint64_t)h.content_length > end - off)
                break;
            off += (size_t)h.content_length;
        } else if (h.chunked) {
            cr_chunked_decoder d = {0};
            size_t n = end - off;
            int rest = cr_chunked_decode(&d, b + off, &n);
            if (rest < 0)
                break;
            FUZZ_CHECK(off + n + (size_t)rest <= end);
            off += n;
            end = off + (size_t)rest;
        }
    }
    free(b);
}

typedef struct chunk_result {
    int rc;
    char *out; /* decoded data, then the bytes that followed the body */
    size_t out_len;
    size_t rest;
} chunk_result;

/* Decodes data in pieces of the given length (size for one piece). */
static chunk_result decode_in_pieces(const uint8_t *data, size_t size, size_t piece)
{
    chunk_result r = {CR_AGAIN, malloc(size ? size : 1), 0, 0};
    cr_chunked_decoder d = {0};
    FUZZ_CHECK(r.out != NULL);
    for (size_t from = 0; from < size; from += piece) {
        size_t n = size - from < piece ? size - from : piece, in = n;
        char *b = dup_exact(data + from, n);
        r.rc = cr_chunked_decode(&d, b, &n);
        FUZZ_CHECK(r.rc == CR_AGAIN || r.rc == CR_ERROR || r.rc >= 0);
        FUZZ_CHECK(n <= in);
        if (r.rc >= 0) {
            FUZZ_CHECK(n + (size_t)r.rc <= in);
            /* what follows the body is moved, never altered */
            FUZZ_CHECK(memcmp(b + n, data + from + in - (size_t)r.rc, (size_t)r.rc) == 0);
            memcpy(r.out + r.out_len, b, n);
            r.out_len += n;
            r.rest = (size_t)r.rc + size - from - in;
        } else if (r.rc == CR_AGAIN) {
            memcpy(r.out + r.out_len, b, n);
            r.out_len += n;
        }
        free(b);
        if (r.rc != CR_AGAIN)
            break;
    }
    return r;
}

/* However the input is cut, the decoder reaches the same verdict, the same
 * data and the same following bytes. */
static void fuzz_chunked(const uint8_t *data, size_t size)
{
    chunk_result whole = decode_in_pieces(data, size, size ? size : 1);
    size_t pieces[] = {1, 2, 3, 7, 64};
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        if (pieces[i] == 1 && size > 1024)
            continue;
        chunk_result r = decode_in_pieces(data, size, pieces[i]);
        FUZZ_CHECK((r.rc == CR_ERROR) == (whole.rc == CR_ERROR));
        FUZZ_CHECK((r.rc >= 0) == (whole.rc >= 0));
        if (r.rc != CR_ERROR) {
            FUZZ_CHECK(r.out_len == whole.out_len);
            FUZZ_CHECK(memcmp(r.out, whole.out, r.out_len) == 0);
            FUZZ_CHECK(r.rest == whole.rest);
        }
        free(r.out);
    }
    free(whole.out);
}

static bool has(const char *s, size_t len, const char *needle)
{
    return memmem(s, len, needle, strlen(needle)) != NULL;
}

static bool ends_with(const char *s, size_t len, const char *tail)
{
    size_t n = strlen(tail);
    return len >= n && memcmp(s + len - n, tail, n) == 0;
}

static bool has_control(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return true;
    return false;
}

static void check_path(const char *in, size_t len)
{
    char *src = dup_exact(in, len);
    char *out = malloc(len + 1);
    FUZZ_CHECK(out != NULL);
    ssize_t rc = cr_http_normalize_path(src, len, out);
    FUZZ_CHECK(rc >= -1 && rc <= (ssize_t)len);
    if (rc >= 0) {
        size_t n = (size_t)rc;
        FUZZ_CHECK(n >= 1 && out[0] == '/' && out[n] == '\0');
        FUZZ_CHECK(memchr(out, '\0', n) == NULL);
        FUZZ_CHECK(!has(out, n, "//") && !has(out, n, "/./") && !has(out, n, "/../"));
        FUZZ_CHECK(!ends_with(out, n, "/.") && !ends_with(out, n, "/.."));
        /* without '%' left to decode or decoded controls (refused raw),
         * normalizing again changes nothing */
        if (memchr(out, '%', n) == NULL && !has_control(out, n)) {
            char *again = malloc(n + 1);
            FUZZ_CHECK(again != NULL);
            FUZZ_CHECK(cr_http_normalize_path(out, n, again) == rc);
            FUZZ_CHECK(memcmp(again, out, n + 1) == 0);
            free(again);
        }
    }
    free(out);
    free(src);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < sizeof(fuzz_limits) / sizeof(fuzz_limits[0]); i++)
        fuzz_head(data, size, &fuzz_limits[i]);
    fuzz_pipeline(data, size, &fuzz_limits[0]);
    fuzz_chunked(data, size);
    check_path((const char *)data, size);
    return 0;
}
