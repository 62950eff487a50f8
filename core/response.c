#include "response.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "corral/log.h"
#include "http_conn.h"
#include "http_date.h"

void cr_response_reset(cr_response *resp)
{
    memset(resp, 0, offsetof(cr_response, file_fd));
    resp->status = 200;
    resp->file_fd = -1;
    resp->file_off = 0;
    resp->file_len = 0;
    resp->started = false;
    resp->streaming = false;
    resp->chunked = false;
}

void cr_response_cleanup(cr_response *resp)
{
    if (resp->file_fd >= 0)
        close(resp->file_fd);
    resp->file_fd = -1;
}

bool cr_status_has_no_body(int status)
{
    return (status >= 100 && status < 200) || status == 204 || status == 304;
}

const char *cr_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 417:
        return "Expectation Failed";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

void cr_response_status(cr_request *r, int status)
{
    if (status >= 100 && status <= 999)
        cr_conn_of(r)->resp.status = status;
}

static bool cr_is_token(const char *s)
{
    static const char *const specials = "()<>@,;:\\\"/[]?={} \t";

    if (*s == '\0')
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= 32 || (unsigned char)*s >= 127 || strchr(specials, *s))
            return false;
    return true;
}

static bool cr_header_value_ok(const char *v)
{
    for (; *v; v++)
        if (*v == '\r' || *v == '\n')
            return false;
    return true;
}

/* Headers the core writes itself; a module setting them would duplicate. */
static bool cr_header_reserved(const char *name)
{
    static const char *const reserved[] = {"content-length", "transfer-encoding", "connection",
                                           "date", NULL};

    for (size_t i = 0; reserved[i]; i++)
        if (strcasecmp(name, reserved[i]) == 0)
            return true;
    return false;
}

int cr_response_header(cr_request *r, const char *name, const char *value)
{
    cr_conn *c = cr_conn_of(r);
    cr_response *resp = &c->resp;
    size_t nlen = strlen(name), vlen = strlen(value), need = nlen + vlen + 4;

    if (!cr_is_token(name) || !cr_header_value_ok(value) || cr_header_reserved(name))
        return CR_ERROR;
    if (resp->headers_len + need > resp->headers_cap) {
        size_t cap = resp->headers_cap ? resp->headers_cap * 2 : 256;
        char *grown;

        while (cap < resp->headers_len + need)
            cap *= 2;
        grown = cr_pool_alloc(&c->pool, cap);
        if (grown == NULL)
            return CR_ERROR;
        if (resp->headers_len)
            memcpy(grown, resp->headers, resp->headers_len);
        resp->headers = grown;
        resp->headers_cap = cap;
    }
    memcpy(resp->headers + resp->headers_len, name, nlen);
    memcpy(resp->headers + resp->headers_len + nlen, ": ", 2);
    memcpy(resp->headers + resp->headers_len + nlen + 2, value, vlen);
    memcpy(resp->headers + resp->headers_len + nlen + 2 + vlen, "\r\n", 2);
    resp->headers_len += need;
    return CR_OK;
}

static int cr_body_add(cr_response *resp, const void *data, size_t len)
{
    if (resp->nbody == CR_RESPONSE_MAX_IOV || resp->file_fd >= 0)
        return CR_ERROR;
    resp->body[resp->nbody].iov_base = (void *)data;
    resp->body[resp->nbody].iov_len = len;
    resp->nbody++;
    resp->body_len += len;
    return CR_OK;
}

int cr_response_write_ref(cr_request *r, const void *data, size_t len)
{
    cr_conn *c = cr_conn_of(r);

    if (len == 0)
        return CR_OK;
    if (c->resp.nbody == CR_RESPONSE_MAX_IOV)
        return cr_response_write(r, data, len);
    return cr_body_add(&c->resp, data, len);
}

/* Copies go to one growing pool buffer that the last iov points at, so many
 * small writes still make one iov. */
int cr_response_write(cr_request *r, const void *data, size_t len)
{
    cr_conn *c = cr_conn_of(r);
    cr_response *resp = &c->resp;
    struct iovec *last = resp->nbody ? &resp->body[resp->nbody - 1] : NULL;
    size_t have, cap;
    char *buf;

    if (len == 0)
        return CR_OK;
    if (resp->file_fd >= 0)
        return CR_ERROR;
    /* A stream's next writes go to the buffer its last flush emptied. */
    if (last == NULL && resp->copy != NULL) {
        resp->body[0] = (struct iovec){resp->copy, 0};
        resp->nbody = 1;
        last = &resp->body[0];
    }
    if (last == NULL || resp->copy == NULL || last->iov_base != resp->copy) {
        cap = len * 2 > 1024 ? len * 2 : 1024;
        buf = cr_pool_alloc(&c->pool, cap);
        if (buf == NULL || resp->nbody == CR_RESPONSE_MAX_IOV)
            return CR_ERROR;
        resp->copy = buf;
        resp->copy_cap = cap;
        return cr_body_add(resp, memcpy(buf, data, len), len);
    }
    have = last->iov_len;
    if (have + len > resp->copy_cap) {
        cap = (have + len) * 2;
        buf = cr_pool_alloc(&c->pool, cap);
        if (buf == NULL)
            return CR_ERROR;
        memcpy(buf, resp->copy, have);
        resp->copy = buf;
        resp->copy_cap = cap;
        last->iov_base = buf;
    }
    memcpy(resp->copy + have, data, len);
    last->iov_len += len;
    resp->body_len += len;
    return CR_OK;
}

int cr_response_writev(cr_request *r, const struct iovec *iov, int n)
{
    for (int i = 0; i < n; i++)
        if (cr_response_write(r, iov[i].iov_base, iov[i].iov_len) != CR_OK)
            return CR_ERROR;
    return CR_OK;
}

int cr_response_sendfile(cr_request *r, int fd, off_t offset, size_t len)
{
    cr_response *resp = &cr_conn_of(r)->resp;

    if (resp->file_fd >= 0) {
        close(fd);
        return CR_ERROR;
    }
    resp->file_fd = fd;
    resp->file_off = offset;
    resp->file_len = len;
    return CR_OK;
}

int cr_response_chunk_iov(cr_response *resp, struct iovec *iov, bool last)
{
    static const char crlf[] = "\r\n", last_chunk[] = "0\r\n\r\n";
    int n = 0;

    if (!resp->chunked) {
        memcpy(iov, resp->body, sizeof(*iov) * (size_t)resp->nbody);
        return resp->nbody;
    }
    /* A chunk of size 0 would end the body: an empty flush sends nothing. */
    if (resp->body_len > 0) {
        int len = snprintf(resp->chunk_line, sizeof(resp->chunk_line), "%zx\r\n", resp->body_len);

        iov[n++] = (struct iovec){resp->chunk_line, (size_t)len};
        memcpy(&iov[n], resp->body, sizeof(*iov) * (size_t)resp->nbody);
        n += resp->nbody;
        iov[n++] = (struct iovec){(void *)crlf, 2};
    }
    if (last)
        iov[n++] = (struct iovec){(void *)last_chunk, sizeof(last_chunk) - 1};
    return n;
}

void cr_response_body_sent(cr_response *resp)
{
    resp->nbody = 0;
    resp->body_len = 0;
}

static bool cr_response_has_body(const cr_conn *c)
{
    return c->req.method != CR_METHOD_HEAD && !cr_status_has_no_body(c->resp.status);
}

/* The first flush: the head goes out without a length, so the body is
 * chunked, or delimited by closing the connection for an HTTP/1.0 client. */
static int cr_response_start_stream(cr_conn *c, struct iovec *head)
{
    cr_response *resp = &c->resp;
    size_t cap = resp->headers_len + 512, len;
    char *buf = cr_pool_alloc(&c->pool, cap);

    resp->streaming = true;
    resp->chunked = c->req.version_minor >= 1;
    if (!resp->chunked)
        c->keep_alive = false;
    len = buf != NULL ? cr_http_format_head(c, buf, cap) : 0;
    if (len == 0)
        return CR_ERROR;
    *head = (struct iovec){buf, len};
    return CR_OK;
}

int cr_response_flush(cr_request *r)
{
    cr_conn *c = cr_conn_of(r);
    cr_response *resp = &c->resp;
    struct iovec iov[1 + CR_RESPONSE_MAX_IOV + CR_RESPONSE_FRAMING_IOV];
    int n = 0;

    /* A file is sent whole, after the body: nothing to stream. Once a
     * send failed the rest of the response is never sent (the drivers
     * close instead), so later flushes fail at once. */
    if (resp->file_fd >= 0 || c->send_failed)
        return CR_ERROR;
    if (!resp->streaming && cr_response_start_stream(c, &iov[n++]) != CR_OK)
        return CR_ERROR;
    if (cr_response_has_body(c)) {
        n += cr_response_chunk_iov(resp, &iov[n], false);
        c->bytes_sent += resp->body_len;
    }
    cr_response_body_sent(resp);
    if (n == 0)
        return CR_OK;
    if (c->driver->send(c, iov, n) == CR_OK)
        return CR_OK;
    c->send_failed = true;
    return CR_ERROR;
}

size_t cr_response_queued(const cr_request *r)
{
    const cr_conn *c = cr_conn_of(r);

    return c->pending_len - c->pending_off;
}

int cr_response_error(cr_request *r, int status)
{
    cr_http_error_page(cr_conn_of(r), status);
    return CR_DONE;
}

/* Headers the handler already set (Location, Allow, ...) are kept; its
 * body is replaced by the page. */
void cr_http_error_page(cr_conn *c, int status)
{
    const char *reason = cr_http_reason(status);
    cr_response *resp = &c->resp;
    char page[512];
    int n;

    cr_response_cleanup(resp);
    resp->status = status;
    resp->nbody = 0;
    resp->body_len = 0;
    resp->copy = NULL;
    resp->copy_cap = 0;
    if (cr_status_has_no_body(status))
        return;
    n = snprintf(page, sizeof(page),
                 "<!DOCTYPE html>\n<html><head><title>%d %s</title></head>\n"
                 "<body><h1>%d %s</h1></body></html>\n",
                 status, reason, status, reason);
    if (!cr_response_has_header(resp, "Content-Type"))
        cr_response_header(&c->req, "Content-Type", "text/html; charset=utf-8");
    cr_response_write(&c->req, page, (size_t)n);
}

bool cr_response_has_header(const cr_response *resp, const char *name)
{
    size_t nlen = strlen(name);
    const char *p = resp->headers, *end;

    /* No header yet: NULL, and NULL + 0 is undefined behaviour. */
    if (p == NULL)
        return false;
    end = p + resp->headers_len;
    while (p != NULL && p < end) {
        if ((size_t)(end - p) > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0)
            return true;
        p = memchr(p, '\n', (size_t)(end - p));
        if (p != NULL)
            p++;
    }
    return false;
}

static size_t cr_append(char *buf, size_t at, size_t cap, const char *s, size_t len)
{
    if (at + len > cap)
        return cap + 1;
    memcpy(buf + at, s, len);
    return at + len;
}

size_t cr_http_format_head(cr_conn *c, char *buf, size_t cap)
{
    cr_response *resp = &c->resp;
    char line[128];
    size_t at = 0;
    int n;

    n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: corral\r\n",
                 resp->status, cr_http_reason(resp->status), cr_http_date_now());
    at = cr_append(buf, at, cap, line, (size_t)n);
    if (resp->headers_len)
        at = cr_append(buf, at, cap, resp->headers, resp->headers_len);
    if (resp->streaming && resp->chunked && !cr_status_has_no_body(resp->status)) {
        at = cr_append(buf, at, cap, "Transfer-Encoding: chunked\r\n", 28);
    } else if (!resp->streaming && !cr_status_has_no_body(resp->status)) {
        n = snprintf(line, sizeof(line), "Content-Length: %zu\r\n",
                     resp->body_len + resp->file_len);
        at = cr_append(buf, at, cap, line, (size_t)n);
    }
    if (!c->keep_alive)
        at = cr_append(buf, at, cap, "Connection: close\r\n\r\n", 21);
    else if (c->req.version_minor == 0)
        at = cr_append(buf, at, cap, "Connection: keep-alive\r\n\r\n", 26);
    else
        at = cr_append(buf, at, cap, "\r\n", 2);
    return at > cap ? 0 : at;
}
