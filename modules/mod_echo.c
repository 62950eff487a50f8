/* mod_echo: answers any method with the request body, labelled with the
 * request's own Content-Type. With ?headers=1 it answers in text/plain with
 * the request line and the headers as received, a blank line, then the
 * body: what a client or a proxy in between really sent. Useful to test
 * body reading (Content-Length and chunked) through every MPM. */
#include <stdio.h>
#include <string.h>

#include "corral/module.h"

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

static int cr_echo_handle(cr_request *r)
{
    const char *show = cr_request_arg(r, "headers", NULL);
    bool with_head = show != NULL && strcmp(show, "0") != 0;
    const char *type = with_head ? "text/plain; charset=utf-8" : cr_echo_content_type(r);

    if (type == NULL || cr_response_header(r, "Content-Type", type) != CR_OK)
        return 500;
    if (with_head && cr_echo_head(r) != CR_OK)
        return 500;
    /* The body lives in the connection until the request ends: no copy. */
    if (r->body.len > 0 && cr_response_write_ref(r, r->body.ptr, r->body.len) != CR_OK)
        return 500;
    return CR_DONE;
}

__attribute__((visibility("default"))) const cr_module cr_module_entry = {
    .magic = CR_MODULE_MAGIC,
    .abi = CR_MODULE_ABI,
    .name = "echo",
    .version = "1.1",
    .flags = CR_MODULE_NONBLOCKING,
    .handle = cr_echo_handle,
};
