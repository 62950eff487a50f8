/* mod_echo: answers any method with the request body, labelled with the
 * request's own Content-Type. With ?headers=1 it answers in text/plain with
 * the request line and the headers as received, a blank line, then the
 * body: what a client or a proxy in between really sent. Useful to test
 * body reading (Content-Length and chunked) through every MPM.
 * A route with `stream = true;` reads the body as it arrives and sends each
 * piece straight back as a chunk: a request stream in, a response stream
 * out, in constant memory whatever the body's size. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corral/module.h"

#define CR_ECHO_PIECE 16384

static int cr_echo_route_init(cr_route_ctx *ctx)
{
    static const char *const allowed[] = {"stream", NULL};
    const config_setting_t *stream = config_setting_get_member(ctx->settings, "stream");

    if (cr_route_check_keys(ctx, allowed) != CR_OK)
        return CR_ERROR;
    if (stream == NULL)
        return CR_OK;
    if (config_setting_type(stream) != CONFIG_TYPE_BOOL) {
        cr_config_error(stream, ctx->err, ctx->errlen, "must be true or false");
        return CR_ERROR;
    }
    if (config_setting_get_bool(stream))
        ctx->flags |= CR_MODULE_STREAM_BODY;
    return CR_OK;
}

/* The request's Content-Type as a NUL-terminated string from the request
 * pool, or a generic type when there is none. */
static const char *cr_echo_content_type(cr_request *r)
{
    const cr_str *type = cr_request_header(r, "Content-Type");
    if (type == NULL || type->len == 0)
        return "application/octet-stream";
    char *copy = cr_palloc(r, type->len + 1);
    if (copy == NULL)
        return NULL;
    memcpy(copy, type->ptr, type->len);
    copy[type->len] = '\0';
    return copy;
}

static int cr_echo_write_str(cr_request *r, cr_str s)
{
    return cr_response_write(r, s.ptr, s.len);
}

/* "METHOD TARGET HTTP/1.x\n", then "Name: value\n" for each header, "\n". */
static int cr_echo_head(cr_request *r)
{
    char version[16];
    int n = snprintf(version, sizeof(version), " HTTP/1.%d\n", r->version_minor);

    if (cr_echo_write_str(r, r->method_name) != CR_OK || cr_response_write(r, " ", 1) != CR_OK ||
        cr_echo_write_str(r, r->target) != CR_OK ||
        cr_response_write(r, version, (size_t)n) != CR_OK)
        return CR_ERROR;
    for (size_t i = 0; i < r->nheaders; i++) {
        const cr_header *h = &r->headers[i];

        if (cr_echo_write_str(r, h->name) != CR_OK || cr_response_write(r, ": ", 2) != CR_OK ||
            cr_echo_write_str(r, h->value) != CR_OK || cr_response_write(r, "\n", 1) != CR_OK)
            return CR_ERROR;
    }
    return cr_response_write(r, "\n", 1);
}

/* Each piece of the body back as a chunk as soon as it arrived (a route
 * that streams; elsewhere an empty body reads as its end at once). */
static int cr_echo_stream(cr_request *r)
{
    char piece[CR_ECHO_PIECE];
    ssize_t n;

    while ((n = cr_request_read(r, piece, sizeof(piece))) > 0)
        if (cr_response_write(r, piece, (size_t)n) != CR_OK || cr_response_flush(r) != CR_OK)
            return CR_DONE; /* the client is gone: nothing more to say */
    if (n == 0)
        return CR_DONE;
    return errno == EMSGSIZE ? 413 : 400; /* the core hangs up if the head is out */
}

static int cr_echo_handle(cr_request *r)
{
    const char *show = cr_request_arg(r, "headers", NULL);
    bool with_head = show != NULL && strcmp(show, "0") != 0;
    const char *type = with_head ? "text/plain; charset=utf-8" : cr_echo_content_type(r);

    if (type == NULL || cr_response_header(r, "Content-Type", type) != CR_OK)
        return 500;
    if (with_head && cr_echo_head(r) != CR_OK)
        return 500;
    if (r->body.len == 0)
        return cr_echo_stream(r);
    /* The body lives in the connection until the request ends: no copy. */
    if (cr_response_write_ref(r, r->body.ptr, r->body.len) != CR_OK)
        return 500;
    return CR_DONE;
}

__attribute__((visibility("default"))) const cr_module cr_module_entry = {
    .magic = CR_MODULE_MAGIC,
    .abi = CR_MODULE_ABI,
    .name = "echo",
    .version = "1.1",
    .flags = CR_MODULE_NONBLOCKING,
    .route_init = cr_echo_route_init,
    .handle = cr_echo_handle,
};
