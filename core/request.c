/* The request calls of the module API: headers, arguments, addresses,
 * request memory. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "corral/log.h"
#include "corral/request.h"
#include "http_conn.h"

const cr_str *cr_request_header(const cr_request *r, const char *name)
{
    size_t len = strlen(name);

    for (size_t i = 0; i < r->nheaders; i++) {
        const cr_header *h = &r->headers[i];

        if (h->name.len == len && strncasecmp(h->name.ptr, name, len) == 0)
            return &h->value;
    }
    return NULL;
}

void *cr_palloc(cr_request *r, size_t size)
{
    return cr_pool_alloc(r->pool, size);
}

const cr_str *cr_request_header_next(const cr_request *r, const char *name, const cr_str *prev)
{
    size_t len = strlen(name), i = 0;

    if (prev != NULL) {
        const cr_header *h = (const cr_header *)((const char *)prev - offsetof(cr_header, value));

        i = (size_t)(h - r->headers) + 1;
    }
    for (; i < r->nheaders; i++) {
        const cr_header *h = &r->headers[i];

        if (h->name.len == len && strncasecmp(h->name.ptr, name, len) == 0)
            return &h->value;
    }
    return NULL;
}

static int cr_hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Form decoding: '+' is a space, %XX a byte; a malformed escape stays as
 * it is, as browsers and most servers treat it. */
static size_t cr_form_decode(const char *in, size_t len, char *out)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        int hi, lo;

        if (in[i] == '+') {
            out[n++] = ' ';
        } else if (in[i] == '%' && i + 2 < len && (hi = cr_hex_value(in[i + 1])) >= 0 &&
                   (lo = cr_hex_value(in[i + 2])) >= 0) {
            out[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[n++] = in[i];
        }
    }
    out[n] = '\0';
    return n;
}

/* Finds name=value in an &-separated list (the name compared after
 * decoding) and returns the decoded value. */
static const char *cr_args_find(cr_request *r, const char *list, size_t listlen, const char *name,
                                size_t *len)
{
    size_t namelen = strlen(name);
    const char *p = list, *end = list + listlen;

    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *kend = eq != NULL ? eq : stop;
        char *key = cr_palloc(r, (size_t)(kend - p) + 1);

        if (key == NULL)
            return NULL;
        if (cr_form_decode(p, (size_t)(kend - p), key) == namelen &&
            memcmp(key, name, namelen) == 0) {
            const char *v = eq != NULL ? eq + 1 : stop;
            char *value = cr_palloc(r, (size_t)(stop - v) + 1);
            size_t n;

            if (value == NULL)
                return NULL;
            n = cr_form_decode(v, (size_t)(stop - v), value);
            if (len != NULL)
                *len = n;
            return value;
        }
        p = stop + 1;
    }
    return NULL;
}

static bool cr_request_is_form(const cr_request *r)
{
    static const char form[] = "application/x-www-form-urlencoded";
    const cr_str *type = cr_request_header(r, "Content-Type");

    return type != NULL && type->len >= sizeof(form) - 1 &&
           strncasecmp(type->ptr, form, sizeof(form) - 1) == 0 &&
           (type->len == sizeof(form) - 1 || type->ptr[sizeof(form) - 1] == ';' ||
            type->ptr[sizeof(form) - 1] == ' ');
}

const char *cr_request_arg(cr_request *r, const char *name, size_t *len)
{
    const char *v = cr_args_find(r, r->query.ptr, r->query.len, name, len);

    if (v == NULL && r->body.len > 0 && cr_request_is_form(r))
        v = cr_args_find(r, r->body.ptr, r->body.len, name, len);
    return v;
}

int cr_request_local_addr(const cr_request *r, char *buf, size_t buflen, unsigned *port)
{
    const cr_conn *c = cr_conn_of(r);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    if (getsockname(c->fd, (struct sockaddr *)&ss, &sl) != 0) {
        cr_log_errno(CR_LOG_ERROR, errno, "getsockname");
        return CR_ERROR;
    }
    if (port != NULL)
        *port = 0;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;

        if (port != NULL)
            *port = ntohs(in->sin_port);
        return inet_ntop(AF_INET, &in->sin_addr, buf, (socklen_t)buflen) ? CR_OK : CR_ERROR;
    }
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;

        if (port != NULL)
            *port = ntohs(in6->sin6_port);
        return inet_ntop(AF_INET6, &in6->sin6_addr, buf, (socklen_t)buflen) ? CR_OK : CR_ERROR;
    }
    return snprintf(buf, buflen, "unix") < (int)buflen ? CR_OK : CR_ERROR;
}
