#include <string.h>
#include <strings.h>

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
