/* mod_echo: answers with the request body, labelled with the request's own
 * Content-Type. Useful to test body reading (Content-Length and chunked) and
 * to measure request bodies through every MPM. */
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

static int cr_echo_handle(cr_request *r)
{
    const char *type = cr_echo_content_type(r);
    if (type == NULL || cr_response_header(r, "Content-Type", type) != CR_OK)
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
    .version = "1.0",
    .flags = CR_MODULE_NONBLOCKING,
    .handle = cr_echo_handle,
};
