/* The wait on a fiber: a one-shot libevent event per wait, its record on
 * the waiting fiber's stack (no allocation per wait), and the fiber
 * yielding until the loop delivers a result by resuming it. Whoever
 * delivers (the event's callback, a stop, a wake) runs on the thread's own
 * stack, inside the loop. */
#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "corral/log.h"
#include "fiber.h"
#include "wait.h"

struct cr_wait_rec {
    cr_fiber_sched *sched;
    cr_fiber *fiber;
    cr_fiber_wake *wake; /* the wake point waited on, or NULL */
    int64_t deadline_ns;
    cr_wait_kind kind;
    bool linked; /* on sched->waiting[kind] */
    bool done;   /* result delivered */
    int result;
    cr_wait_rec *prev, *next;
    struct event ev; /* the descriptor or the timer; deleted before the wait returns */
};

struct cr_fiber_sched {
    cr_waiter waiter;
    struct event_base *base;
    cr_fiber_pool *pool; /* of the fibers that wait here */
    pthread_t owner;     /* the loop's thread */
    int stop_fd[CR_WAIT_KINDS];
    bool stop_armed[CR_WAIT_KINDS];
    /* Sticky, like the stop descriptors: a later wait of the kind returns
     * at once. */
    bool stopped[CR_WAIT_KINDS];
    struct event stop_ev[CR_WAIT_KINDS];
    cr_wait_rec *waiting[CR_WAIT_KINDS];
    unsigned nwaiting;
    /* Other threads' wakes: a queue under lock, and an eventfd that the
     * first wake into an empty queue writes. */
    int wake_fd;
    bool wake_armed;
    struct event wake_ev;
    pthread_mutex_t lock;
    cr_fiber_wake *woken;
};

/* ---- the waiting records ---- */

static void cr_wait_fiber_link(cr_fiber_sched *s, cr_wait_rec *r)
{
    r->prev = NULL;
    r->next = s->waiting[r->kind];
    if (r->next != NULL)
        r->next->prev = r;
    s->waiting[r->kind] = r;
    r->linked = true;
    s->nwaiting++;
}

static void cr_wait_fiber_unlink(cr_wait_rec *r)
{
    cr_fiber_sched *s = r->sched;

    if (!r->linked)
        return;
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        s->waiting[r->kind] = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    r->linked = false;
    s->nwaiting--;
}

/* Ends r's wait with result and runs its fiber until it yields again or
 * finishes. From the loop, on the thread's own stack. r may be gone once
 * this returns. */
static void cr_wait_fiber_deliver(cr_wait_rec *r, int result)
{
    cr_fiber *f = r->fiber;

    cr_wait_fiber_unlink(r);
    r->done = true;
    r->result = result;
    if (cr_fiber_resume(f) < 0)
        cr_log_errno(CR_LOG_ERROR, errno, "cannot resume a waiting fiber");
}

/* ---- events ---- */

static int cr_wait_fiber_add(cr_wait_rec *r, int64_t now)
{
    int64_t left = r->deadline_ns > now ? r->deadline_ns - now : 0;
    struct timeval tv = {.tv_sec = (time_t)(left / CR_WAIT_NS_PER_SEC),
                         .tv_usec = (suseconds_t)(left % CR_WAIT_NS_PER_SEC / 1000)};

    if (event_add(&r->ev, r->deadline_ns == CR_WAIT_FOREVER ? NULL : &tv) == 0)
        return 0;
    cr_log(CR_LOG_ERROR, "cannot add a fiber's wait to the event loop");
    errno = ENOMEM;
    return -1;
}

static void cr_wait_fiber_on_event(evutil_socket_t fd, short what, void *arg)
{
    cr_wait_rec *r = arg;
    int64_t now;

    (void)fd;
    if (what & (EV_READ | EV_WRITE)) {
        cr_wait_fiber_deliver(r, CR_WAIT_READY);
        return;
    }
    /* libevent's clock may be a coarse one, a tick behind: a timeout it
     * reports before the deadline waits on for the rest. */
    now = cr_wait_now_ns();
    if (now >= 0 && now < r->deadline_ns && cr_wait_fiber_add(r, now) == 0)
        return;
    cr_wait_fiber_deliver(r, CR_WAIT_TIMEDOUT);
}

static void cr_wait_fiber_stop_kind(cr_fiber_sched *s, cr_wait_kind kind)
{
    cr_wait_rec *r;

    s->stopped[kind] = true;
    /* The descriptor stays readable: watching it on would spin. */
    if (s->stop_armed[kind] && event_del(&s->stop_ev[kind]) != 0)
        cr_log(CR_LOG_ERROR, "cannot remove a stop descriptor from the event loop");
    s->stop_armed[kind] = false;
    /* New waits of this kind return at once, so the list only shrinks. */
    while ((r = s->waiting[kind]) != NULL)
        cr_wait_fiber_deliver(r, CR_WAIT_STOPPED);
}

static void cr_wait_fiber_on_stop(evutil_socket_t fd, short what, void *arg)
{
    cr_fiber_sched *s = arg;

    (void)what;
    for (int k = 0; k < CR_WAIT_KINDS; k++)
        if (s->stop_fd[k] == fd && !s->stopped[k])
            cr_wait_fiber_stop_kind(s, (cr_wait_kind)k);
}

/* ---- waiting ---- */

/* 0 when a fiber of s may wait with kind now, else what the wait returns. */
static int cr_wait_fiber_refuse(const cr_fiber_sched *s, cr_wait_kind kind)
{
    if ((unsigned)kind >= CR_WAIT_KINDS) {
        errno = EINVAL;
        return CR_WAIT_FAILED;
    }
    if (!pthread_equal(s->owner, pthread_self())) {
        errno = EPERM;
        return CR_WAIT_FAILED;
    }
    if (cr_fiber_current() == NULL) {
        errno = EDEADLK;
        return CR_WAIT_FAILED;
    }
    return s->stopped[kind] ? CR_WAIT_STOPPED : 0;
}

static void cr_wait_fiber_rec_init(cr_wait_rec *r, cr_fiber_sched *s, int64_t deadline_ns,
                                   cr_wait_kind kind)
{
    r->sched = s;
    r->fiber = cr_fiber_current();
    r->wake = NULL;
    r->deadline_ns = deadline_ns;
    r->kind = kind;
    r->linked = false;
    r->done = false;
    r->result = CR_WAIT_FAILED;
}

/* Registers r's event (assigned), yields until a result is delivered, and
 * leaves nothing of r in the loop or the scheduler. */
static int cr_wait_fiber_park(cr_fiber_sched *s, cr_wait_rec *r, bool has_event)
{
    int64_t now = cr_wait_now_ns();

    if (now < 0)
        return CR_WAIT_FAILED;
    if (has_event && cr_wait_fiber_add(r, now) != 0)
        return CR_WAIT_FAILED;
    cr_wait_fiber_link(s, r);
    /* The driver may resume a fiber for reasons of its own: only a
     * delivered result ends the wait. */
    while (!r->done)
        if (cr_fiber_yield() != 0)
            break;
    if (event_del(&r->ev) != 0)
        cr_log(CR_LOG_ERROR, "cannot remove a fiber's wait from the event loop");
    cr_wait_fiber_unlink(r);
    if (r->wake != NULL)
        r->wake->rec = NULL;
    if (!r->done)
        errno = EPERM;
    return r->result;
}

static short cr_wait_fiber_flags(short events)
{
    short flags = 0;

    if (events & (POLLIN | POLLRDHUP | POLLPRI))
        flags |= EV_READ;
    if (events & POLLOUT)
        flags |= EV_WRITE;
    return flags;
}

static int cr_wait_fiber_wait(cr_waiter *w, int fd, short events, int64_t deadline_ns,
                              cr_wait_kind kind)
{
    cr_fiber_sched *s = (cr_fiber_sched *)w;
    short flags = cr_wait_fiber_flags(events);
    int rc = cr_wait_fiber_refuse(s, kind);
    cr_wait_rec r;

    if (rc != 0)
        return rc;
    if (fd >= 0 && flags == 0) {
        errno = EINVAL;
        return CR_WAIT_FAILED;
    }
    cr_wait_fiber_rec_init(&r, s, deadline_ns, kind);
    if (event_assign(&r.ev, s->base, fd < 0 ? -1 : fd, fd < 0 ? 0 : flags, cr_wait_fiber_on_event,
                     &r) != 0) {
        errno = EINVAL;
        return CR_WAIT_FAILED;
    }
    /* A sleep with no deadline waits for a stop alone. */
    return cr_wait_fiber_park(s, &r, fd >= 0 || deadline_ns != CR_WAIT_FOREVER);
}

/* ---- wakes from other threads ---- */

/* Takes the next woken point off the queue; false when none is left. */
static bool cr_wait_fiber_pop_woken(cr_fiber_sched *s, cr_wait_rec **rec)
{
    cr_fiber_wake *wk;

    pthread_mutex_lock(&s->lock);
    wk = s->woken;
    if (wk != NULL) {
        s->woken = wk->next;
        wk->queued = 0;
        *rec = wk->signaled ? wk->rec : NULL;
        /* A point nobody waits on keeps its signal for the next wait. */
        if (*rec != NULL)
            wk->signaled = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return wk != NULL;
}

static void cr_wait_fiber_on_wake(evutil_socket_t fd, short what, void *arg)
{
    cr_fiber_sched *s = arg;
    cr_wait_rec *r;
    uint64_t n;

    (void)what;
    /* Drained before the queue is read: a wake queued after this read
     * writes the eventfd again. */
    if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        cr_log_errno(CR_LOG_ERROR, errno, "cannot read the fiber scheduler's eventfd");
    /* One at a time, the lock released in between: a resumed fiber may
     * signal a wake point itself. */
    while (cr_wait_fiber_pop_woken(s, &r))
        if (r != NULL)
            cr_wait_fiber_deliver(r, CR_WAIT_READY);
}

void cr_fiber_wake_init(cr_fiber_wake *wk, cr_fiber_sched *s)
{
    *wk = (cr_fiber_wake){.sched = s};
}

static bool cr_wait_fiber_take_signal(cr_fiber_wake *wk)
{
    bool signaled;

    pthread_mutex_lock(&wk->sched->lock);
    signaled = wk->signaled != 0;
    wk->signaled = 0;
    pthread_mutex_unlock(&wk->sched->lock);
    return signaled;
}

int cr_fiber_wake_wait(cr_fiber_wake *wk, int64_t deadline_ns, cr_wait_kind kind)
{
    cr_fiber_sched *s = wk->sched;
    int rc = cr_wait_fiber_refuse(s, kind);
    cr_wait_rec r;

    if (rc != 0)
        return rc;
    if (wk->rec != NULL) {
        errno = EBUSY; /* one fiber waits on a point at a time */
        return CR_WAIT_FAILED;
    }
    if (cr_wait_fiber_take_signal(wk))
        return CR_WAIT_READY;
    cr_wait_fiber_rec_init(&r, s, deadline_ns, kind);
    if (event_assign(&r.ev, s->base, -1, 0, cr_wait_fiber_on_event, &r) != 0) {
        errno = EINVAL;
        return CR_WAIT_FAILED;
    }
    r.wake = wk;
    wk->rec = &r;
    return cr_wait_fiber_park(s, &r, deadline_ns != CR_WAIT_FOREVER);
}

int cr_fiber_wake_signal(cr_fiber_wake *wk)
{
    cr_fiber_sched *s = wk->sched;
    uint64_t one = 1;
    bool first;

    pthread_mutex_lock(&s->lock);
    first = s->woken == NULL;
    wk->signaled = 1;
    if (!wk->queued) {
        wk->queued = 1;
        wk->next = s->woken;
        s->woken = wk;
    }
    pthread_mutex_unlock(&s->lock);
    /* From here on only s: wk may already be gone. */
    if (!first)
        return CR_OK;
    if (write(s->wake_fd, &one, sizeof(one)) == (ssize_t)sizeof(one))
        return CR_OK;
    cr_log_errno(CR_LOG_ERROR, errno, "cannot write the fiber scheduler's eventfd");
    return CR_ERROR;
}

void cr_fiber_wake_fini(cr_fiber_wake *wk)
{
    cr_fiber_sched *s = wk->sched;

    pthread_mutex_lock(&s->lock);
    for (cr_fiber_wake **p = &s->woken; wk->queued && *p != NULL; p = &(*p)->next) {
        if (*p == wk) {
            *p = wk->next;
            wk->queued = 0;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
}

/* ---- the scheduler ---- */

static int cr_wait_fiber_watch(cr_fiber_sched *s, struct event *ev, int fd, event_callback_fn cb)
{
    if (event_assign(ev, s->base, fd, EV_READ | EV_PERSIST, cb, s) != 0 ||
        event_add(ev, NULL) != 0) {
        cr_log(CR_LOG_ERROR, "cannot watch descriptor %d in the fiber scheduler", fd);
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

static int cr_wait_fiber_watch_all(cr_fiber_sched *s)
{
    for (int k = 0; k < CR_WAIT_KINDS; k++) {
        if (s->stop_fd[k] < 0)
            continue;
        if (cr_wait_fiber_watch(s, &s->stop_ev[k], s->stop_fd[k], cr_wait_fiber_on_stop) != 0)
            return -1;
        s->stop_armed[k] = true;
    }
    if (cr_wait_fiber_watch(s, &s->wake_ev, s->wake_fd, cr_wait_fiber_on_wake) != 0)
        return -1;
    s->wake_armed = true;
    return 0;
}

cr_fiber_sched *cr_fiber_sched_new(struct event_base *base, cr_fiber_pool *pool,
                                   const int stop_fd[CR_WAIT_KINDS])
{
    cr_fiber_sched *s = calloc(1, sizeof(*s));
    int err;

    if (s == NULL)
        return NULL;
    s->waiter.wait = cr_wait_fiber_wait;
    s->base = base;
    s->pool = pool;
    s->owner = pthread_self();
    for (int k = 0; k < CR_WAIT_KINDS; k++)
        s->stop_fd[k] = stop_fd[k];
    err = pthread_mutex_init(&s->lock, NULL);
    if (err != 0) {
        free(s);
        errno = err;
        return NULL;
    }
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->wake_fd < 0)
        cr_log_errno(CR_LOG_ERROR, errno, "cannot make the fiber scheduler's eventfd");
    if (s->wake_fd < 0 || cr_wait_fiber_watch_all(s) != 0) {
        err = errno;
        cr_fiber_sched_free(s);
        errno = err;
        return NULL;
    }
    return s;
}

static void cr_wait_fiber_unwatch(struct event *ev, bool *armed)
{
    if (*armed && event_del(ev) != 0)
        cr_log(CR_LOG_ERROR, "cannot remove a descriptor from the event loop");
    *armed = false;
}

void cr_fiber_sched_free(cr_fiber_sched *s)
{
    if (s == NULL)
        return;
    for (int k = 0; k < CR_WAIT_KINDS; k++) {
        cr_wait_rec *r;

        cr_wait_fiber_unwatch(&s->stop_ev[k], &s->stop_armed[k]);
        /* Their stacks may be unmapped next: the loop must forget them. */
        while ((r = s->waiting[k]) != NULL) {
            if (event_del(&r->ev) != 0)
                cr_log(CR_LOG_ERROR, "cannot remove a fiber's wait from the event loop");
            cr_wait_fiber_unlink(r);
        }
    }
    cr_wait_fiber_unwatch(&s->wake_ev, &s->wake_armed);
    if (s->wake_fd >= 0 && close(s->wake_fd) != 0)
        cr_log_errno(CR_LOG_WARN, errno, "close of the fiber scheduler's eventfd");
    pthread_mutex_destroy(&s->lock);
    free(s);
}

cr_waiter *cr_fiber_sched_waiter(cr_fiber_sched *s)
{
    return &s->waiter;
}

unsigned cr_fiber_sched_waiting(const cr_fiber_sched *s)
{
    return s->nwaiting;
}
