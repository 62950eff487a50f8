/* delay: a simulated slow backend. Waits N milliseconds (the route's `ms`,
 * or ?ms=N, at most 60000) blocking its thread, then answers 200 with a
 * short text body: the workload for comparing the MPMs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "corral/corral.h"

#define CR_DELAY_MAX_MS 60000

typedef struct cr_delay_route {
    long ms;
} cr_delay_route;

static int cr_delay_route_init(cr_route_ctx *ctx)
{
    static const char *const allowed[] = { "path", "module", "host", "ms", NULL };
    const config_setting_t *ms = config_setting_get_member(ctx->settings, "ms");
    cr_delay_route *route;

    if (cr_config_check_keys(ctx->settings, allowed, ctx->err, ctx->errlen) != CR_OK)
        return CR_ERROR;
    if (ms != NULL && (config_setting_type(ms) != CONFIG_TYPE_INT ||
                       config_setting_get_int(ms) < 0 ||
                       config_setting_get_int(ms) > CR_DELAY_MAX_MS)) {
        cr_config_error(ms, ctx->err, ctx->errlen, "must be an integer between 0 and %d",
                        CR_DELAY_MAX_MS);
        return CR_ERROR;
    }
    route = malloc(sizeof(*route));
    if (route == NULL) {
        snprintf(ctx->err, ctx->errlen, "out of memory");
        return CR_ERROR;
    }
    route->ms = ms != NULL ? config_setting_get_int(ms) : 10;
    ctx->route_data = route;
    return CR_OK;
}

static void cr_delay_route_exit(void *route_data)
{
    free(route_data);
}

/* ?ms=N overrides the route's delay; anything unparsable keeps it. */
static long cr_delay_ms(const cr_request *r, long fallback)
{
    const char *q = r->query.ptr, *end = q + r->query.len;

    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp != NULL ? amp : end;

        if (stop - q > 3 && memcmp(q, "ms=", 3) == 0) {
            long v = 0;

            for (const char *p = q + 3; p < stop && v <= CR_DELAY_MAX_MS; p++) {
                if (*p < '0' || *p > '9')
                    return fallback;
                v = v * 10 + (*p - '0');
            }
            return v <= CR_DELAY_MAX_MS ? v : CR_DELAY_MAX_MS;
        }
        q = stop + 1;
    }
    return fallback;
}

static int cr_delay_handle(cr_request *r)
{
    const cr_delay_route *route = r->route_data;
    long ms = cr_delay_ms(r, route->ms);
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    char body[64];
    int n;

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    n = snprintf(body, sizeof(body), "waited %ld ms\n", ms);
    cr_response_header(r, "Content-Type", "text/plain");
    cr_response_write(r, body, (size_t)n);
    return CR_DONE;
}

__attribute__((visibility("default"))) const cr_module cr_module_entry = {
    .magic = CR_MODULE_MAGIC,
    .abi = CR_MODULE_ABI,
    .name = "delay",
    .version = CR_VERSION,
    .route_init = cr_delay_route_init,
    .route_exit = cr_delay_route_exit,
    .handle = cr_delay_handle,
};
