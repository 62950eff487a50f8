/* mod_hello: answers every request with a fixed "Hello, World!". It is the
 * smallest possible handler, the one corral-bench uses to measure what the
 * server itself costs per request. */
#include "corral/module.h"

static const char cr_hello_body[] = "Hello, World!";

static int cr_hello_handle(cr_request *r)
{
    /* Literals only: the hot path neither allocates nor copies. */
    if (cr_response_header(r, "Content-Type", "text/plain") != CR_OK)
        return 500;
    if (cr_response_write_ref(r, cr_hello_body, sizeof(cr_hello_body) - 1) != CR_OK)
        return 500;
    return CR_DONE;
}

__attribute__((visibility("default"))) const cr_module cr_module_entry = {
    .magic = CR_MODULE_MAGIC,
    .abi = CR_MODULE_ABI,
    .name = "hello",
    .version = "1.0",
    .flags = CR_MODULE_NONBLOCKING,
    .handle = cr_hello_handle,
};
