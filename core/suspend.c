#include "suspend.h"

#include <stdatomic.h>
#include <time.h>

#include "corral/log.h"
#include "http_conn.h"

long long cr_monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Moves the state from `from` to `to`; false when it was something else. */
static bool cr_run_move(cr_conn *c, int from, int to)
{
    return atomic_compare_exchange_strong(&c->run_state, &from, to);
}

int cr_response_finish(cr_request *r)
{
    cr_conn *c = cr_conn_of(r);
    const cr_conn_driver *driver = c->driver;

    if (cr_run_move(c, CR_RUN_HANDLER, CR_RUN_FINISHED_EARLY))
        return CR_OK;
    if (!cr_run_move(c, CR_RUN_SUSPENDED, CR_RUN_FINISHED))
        return CR_ERROR;
    driver->wake(c);
    return CR_OK;
}

void cr_request_on_abort(cr_request *r, cr_abort_fn fn, void *arg)
{
    cr_conn *c = cr_conn_of(r);

    c->on_abort = fn;
    c->abort_arg = arg;
}

static void cr_timer_arm(cr_conn *c, cr_timer *t)
{
    if (c->driver->arm != NULL)
        c->driver->arm(c, t);
    t->armed = true;
}

cr_timer *cr_timer_add(cr_request *r, unsigned long ms, cr_timer_fn fn, void *arg)
{
    cr_conn *c = cr_conn_of(r);
    cr_timer *t = cr_palloc(r, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->c = c;
    t->fn = fn;
    t->arg = arg;
    t->due_ms = cr_monotonic_ms() + (long long)ms;
    t->armed = false;
    t->next = c->timers;
    c->timers = t;
    /* Added by a timer callback: the request is suspended already. */
    if (atomic_load(&c->run_state) == CR_RUN_SUSPENDED)
        cr_timer_arm(c, t);
    return t;
}

static void cr_timer_unlink(cr_timer *t)
{
    cr_timer **p = &t->c->timers;

    while (*p != NULL && *p != t)
        p = &(*p)->next;
    if (*p == t)
        *p = t->next;
}

void cr_timer_cancel(cr_timer *t)
{
    cr_conn *c = t->c;

    if (t->armed && c->driver->disarm != NULL)
        c->driver->disarm(c, t);
    t->armed = false;
    cr_timer_unlink(t);
}

void cr_conn_cancel_timers(cr_conn *c)
{
    while (c->timers != NULL)
        cr_timer_cancel(c->timers);
}

bool cr_conn_park(cr_conn *c)
{
    if (!cr_run_move(c, CR_RUN_HANDLER, CR_RUN_SUSPENDED))
        return false;
    /* From here on a finish may come from any thread, but timers belong to
     * this one: the module touches them only from the handler (done) and
     * from their callbacks (run here). */
    for (cr_timer *t = c->timers; t != NULL; t = t->next)
        cr_timer_arm(c, t);
    return true;
}

bool cr_conn_abort(cr_conn *c)
{
    if (!cr_run_move(c, CR_RUN_SUSPENDED, CR_RUN_ABORTED))
        return false;
    cr_conn_cancel_timers(c);
    cr_log(CR_LOG_INFO, "%s dropped a suspended request: %.*s", c->remote_addr,
           (int)c->req.target.len, c->req.target.ptr);
    if (c->on_abort != NULL)
        c->on_abort(&c->req, c->abort_arg);
    return true;
}

long long cr_conn_next_timer(const cr_conn *c)
{
    long long next = -1;

    for (const cr_timer *t = c->timers; t != NULL; t = t->next)
        if (next < 0 || t->due_ms < next)
            next = t->due_ms;
    return next;
}

void cr_timer_fire(cr_timer *t)
{
    cr_conn *c = t->c;

    t->armed = false;
    cr_timer_unlink(t);
    /* A module thread may have finished the request a moment ago. */
    if (atomic_load(&c->run_state) == CR_RUN_SUSPENDED)
        t->fn(&c->req, t->arg);
}

void cr_conn_run_timers(cr_conn *c, long long now)
{
    cr_timer *t;

    do {
        for (t = c->timers; t != NULL && t->due_ms > now; t = t->next)
            ;
        if (t != NULL)
            cr_timer_fire(t);
    } while (t != NULL);
}
