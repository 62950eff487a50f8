/* delay: a simulated slow backend. Waits N milliseconds (the route's `ms`,
 * or ?ms=N, at most 60000), then answers 200 with a short text body: the
 * workload for comparing the MPMs. It waits in one of two ways (the
 * route's `mode`):
 *   block    sleeps in the handler, holding its thread as a blocking
 *            backend call would;
 *   suspend  suspends the request and finishes it from a core timer, as a
 *            module written for an asynchronous backend would.
 * With ?chunks=K (at most 1000) it streams: K pieces, one every N ms, each
 * flushed as a chunk as soon as it is there; ?size=B pads each piece to B
 * bytes (at most 1 MiB) with 'x' before its newline. A suspended stream
 * keeps pace with its client: while much of it waits in the queue of a
 * client that reads slowly, the next piece waits too.
 *
 * The mode is the route's alone, never the client's: a suspending route
 * may run on the event MPM's event thread, and a request that could turn
 * it into a sleeping one would stall every connection of that thread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "corral/corral.h"

#define CR_DELAY_MAX_MS     60000
#define CR_DELAY_MAX_CHUNKS 1000
#define CR_DELAY_MAX_SIZE   (1024 * 1024)
/* A stream waits while more than this is queued for a client that reads
 * slower than the pieces come (see cr_response_queued), checking again
 * every CR_DELAY_PACE_MS. */
#define CR_DELAY_QUEUE_HIGH (256 * 1024)
#define CR_DELAY_PACE_MS    5

typedef enum cr_delay_mode {
    CR_DELAY_BLOCK,
    CR_DELAY_SUSPEND,
} cr_delay_mode;

typedef struct cr_delay_route {
    long ms;
    cr_delay_mode mode;
} cr_delay_route;

static int cr_delay_parse_mode(const char *s, cr_delay_mode *mode)
{
    if (strcmp(s, "block") == 0)
        *mode = CR_DELAY_BLOCK;
    else if (strcmp(s, "suspend") == 0)
        *mode = CR_DELAY_SUSPEND;
    else
        return CR_ERROR;
    return CR_OK;
}

static int cr_delay_route_settings(cr_route_ctx *ctx, cr_delay_route *route)
{
    static const char *const allowed[] = {"ms", "mode", NULL};
    const config_setting_t *ms = config_setting_get_member(ctx->settings, "ms");
    const config_setting_t *mode = config_setting_get_member(ctx->settings, "mode");

    if (cr_route_check_keys(ctx, allowed) != CR_OK)
        return CR_ERROR;
    if (ms != NULL &&
        (config_setting_type(ms) != CONFIG_TYPE_INT || config_setting_get_int(ms) < 0 ||
         config_setting_get_int(ms) > CR_DELAY_MAX_MS)) {
        cr_config_error(ms, ctx->err, ctx->errlen, "must be an integer between 0 and %d",
                        CR_DELAY_MAX_MS);
        return CR_ERROR;
    }
    if (mode != NULL &&
        (config_setting_type(mode) != CONFIG_TYPE_STRING ||
         cr_delay_parse_mode(config_setting_get_string(mode), &route->mode) != CR_OK)) {
        cr_config_error(mode, ctx->err, ctx->errlen, "must be \"block\" or \"suspend\"");
        return CR_ERROR;
    }
    route->ms = ms != NULL ? config_setting_get_int(ms) : 10;
    return CR_OK;
}

static int cr_delay_route_init(cr_route_ctx *ctx)
{
    cr_delay_route *route = calloc(1, sizeof(*route));

    if (route == NULL) {
        snprintf(ctx->err, ctx->errlen, "out of memory");
        return CR_ERROR;
    }
    if (cr_delay_route_settings(ctx, route) != CR_OK) {
        free(route);
        return CR_ERROR;
    }
    /* A suspending route never holds its thread: the event MPM may run it
     * on its event thread. */
    if (route->mode == CR_DELAY_SUSPEND)
        ctx->flags |= CR_MODULE_NONBLOCKING;
    ctx->route_data = route;
    return CR_OK;
}

static void cr_delay_route_exit(void *route_data)
{
    free(route_data);
}

/* What one request asked for. */
typedef struct cr_delay_job {
    long ms;
    long chunks; /* pieces still to send */
    long size;   /* bytes of a piece, at least its text */
} cr_delay_job;

/* The argument `name` as a number up to max (capped); anything unparsable
 * gives fallback. */
static long cr_delay_number(cr_request *r, const char *name, long fallback, long max)
{
    const char *v = cr_request_arg(r, name, NULL);
    char *end;
    long n;

    if (v == NULL || *v < '0' || *v > '9')
        return fallback;
    errno = 0;
    n = strtol(v, &end, 10);
    if (*end != '\0')
        return fallback;
    return errno == ERANGE || n > max ? max : n;
}

/* Writes one piece; flushes it unless it is the last. CR_OK or CR_ERROR
 * (the client is gone). */
static int cr_delay_piece(cr_request *r, cr_delay_job *job)
{
    static const char filler[4096] = {[0 ... 4095] = 'x'};
    char body[64];
    int n = snprintf(body, sizeof(body), "waited %ld ms", job->ms);

    if (cr_response_write(r, body, (size_t)n) != CR_OK)
        return CR_ERROR;
    for (long left = job->size - n - 1; left > 0; left -= (long)sizeof(filler))
        if (cr_response_write(r, filler,
                              left < (long)sizeof(filler) ? (size_t)left : sizeof(filler)) != CR_OK)
            return CR_ERROR;
    if (cr_response_write(r, "\n", 1) != CR_OK)
        return CR_ERROR;
    return --job->chunks > 0 ? cr_response_flush(r) : CR_OK;
}

static void cr_delay_wake(cr_request *r, void *arg)
{
    cr_delay_job *job = arg;

    if (cr_response_queued(r) > CR_DELAY_QUEUE_HIGH) {
        if (cr_timer_add(r, CR_DELAY_PACE_MS, cr_delay_wake, job) == NULL)
            cr_response_finish(r);
        return;
    }
    if (cr_delay_piece(r, job) == CR_OK && job->chunks > 0 &&
        cr_timer_add(r, (unsigned long)job->ms, cr_delay_wake, job) != NULL)
        return;
    cr_response_finish(r);
}

static void cr_delay_sleep(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int cr_delay_handle(cr_request *r)
{
    const cr_delay_route *route = r->route_data;
    cr_delay_job *job = cr_palloc(r, sizeof(*job));

    if (job == NULL || cr_response_header(r, "Content-Type", "text/plain") != CR_OK)
        return 500;
    job->ms = cr_delay_number(r, "ms", route->ms, CR_DELAY_MAX_MS);
    job->chunks = cr_delay_number(r, "chunks", 1, CR_DELAY_MAX_CHUNKS);
    job->size = cr_delay_number(r, "size", 0, CR_DELAY_MAX_SIZE);
    if (job->chunks < 1)
        job->chunks = 1;
    if (route->mode == CR_DELAY_SUSPEND) {
        if (cr_timer_add(r, (unsigned long)job->ms, cr_delay_wake, job) == NULL)
            return 500;
        return CR_SUSPENDED;
    }
    do
        cr_delay_sleep(job->ms);
    while (cr_delay_piece(r, job) == CR_OK && job->chunks > 0);
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
