/* The one wait sequential connection code does between non-blocking reads
 * and writes: this descriptor, these events, this deadline, and the
 * child's stop requests. A thread polls (cr_wait_thread); a fiber yields
 * to its thread's event loop (cr_fiber_sched) and is resumed when it ends.
 *
 * Deadlines are absolute CLOCK_MONOTONIC nanoseconds, CR_WAIT_FOREVER for
 * none. Every wait returns CR_WAIT_READY, CR_WAIT_TIMEDOUT, CR_WAIT_STOPPED
 * or CR_WAIT_FAILED (errno set).
 *
 * Stops come as descriptors, one per cr_wait_kind, that turn readable once
 * and stay so: a wait of kind K ends when the descriptor of K is readable.
 * The one for CR_WAIT_IDLE must turn readable on a graceful or an
 * immediate stop, the one for CR_WAIT_BUSY on an immediate stop only (the
 * child's stop eventfds, cr_child_stop_fd, are made that way). */
#ifndef CR_IO_WAIT_H
#define CR_IO_WAIT_H

#include <signal.h>
#include <stdint.h>
#include <time.h>

#include "corral/mpm.h"
#include "corral/types.h"

/* What a wait returns: the values of cr_child_wait. */
enum {
    CR_WAIT_TIMEDOUT = 0,
    CR_WAIT_READY = 1,
    CR_WAIT_STOPPED = CR_AGAIN, /* a stop that concerns this kind of wait */
    CR_WAIT_FAILED = CR_ERROR,  /* errno set */
};

/* The kinds of cr_wait_kind: CR_WAIT_BUSY and CR_WAIT_IDLE index arrays. */
#define CR_WAIT_KINDS 2

/* A deadline meaning none: wait until ready or stopped. */
#define CR_WAIT_FOREVER ((int64_t)0)

#define CR_WAIT_NS_PER_SEC ((int64_t)1000000000)
#define CR_WAIT_NS_PER_MS  ((int64_t)1000000)

struct pollfd;
struct event_base;
typedef struct cr_fiber_pool cr_fiber_pool;

typedef struct cr_waiter cr_waiter;

/* Waits until fd has one of events (POLLIN, POLLOUT; an error or hang-up
 * counts as ready, as in poll), the deadline passes, or a stop of kind is
 * requested. fd -1: sleeps until the deadline or a stop. */
typedef int cr_wait_fn(cr_waiter *w, int fd, short events, int64_t deadline_ns, cr_wait_kind kind);

struct cr_waiter {
    cr_wait_fn *wait;
};

/* CLOCK_MONOTONIC now, in nanoseconds; -1 with errno set on failure. */
static inline int64_t cr_wait_now_ns(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return -1;
    return (int64_t)ts.tv_sec * CR_WAIT_NS_PER_SEC + ts.tv_nsec;
}

/* The deadline ms milliseconds from now; CR_WAIT_FOREVER for ms < 0. */
static inline int64_t cr_wait_deadline_ms(long long ms)
{
    int64_t now = cr_wait_now_ns();

    if (ms < 0 || now < 0)
        return CR_WAIT_FOREVER;
    return now + (int64_t)ms * CR_WAIT_NS_PER_MS;
}

static inline int cr_wait(cr_waiter *w, int fd, short events, int64_t deadline_ns,
                          cr_wait_kind kind)
{
    return w->wait(w, fd, events, deadline_ns, kind);
}

/* Sleeps until the deadline: CR_WAIT_TIMEDOUT, or CR_WAIT_STOPPED. */
static inline int cr_wait_sleep(cr_waiter *w, int64_t deadline_ns, cr_wait_kind kind)
{
    return w->wait(w, -1, 0, deadline_ns, kind);
}

/* ---- on a thread (wait_thread.c) ---- */

/* Polls. Holds no state but its settings, so one serves every thread of a
 * process. A stop signal is let through while it polls (mask) and ends
 * the wait with CR_WAIT_STOPPED whatever its kind, as any EINTR does: the
 * caller looks at what was requested and waits again if it was not for
 * it. */
typedef struct cr_wait_thread {
    cr_waiter waiter;
    int stop_fd[CR_WAIT_KINDS];
    const sigset_t *mask; /* the signal mask while polling; NULL: the thread's */
} cr_wait_thread;

/* Most descriptors cr_wait_thread_poll takes at once. */
#define CR_WAIT_POLL_MAX 4

/* stop_fd as described at the top (-1: that kind is never stopped); mask
 * must outlive t. */
void cr_wait_thread_init(cr_wait_thread *t, const int stop_fd[CR_WAIT_KINDS], const sigset_t *mask);

/* The wait for up to CR_WAIT_POLL_MAX descriptors, with a relative
 * timeout (NULL: none); their revents are filled in on CR_WAIT_READY. */
int cr_wait_thread_poll(const cr_wait_thread *t, struct pollfd *fds, int nfds,
                        const struct timespec *timeout, cr_wait_kind kind);

/* ---- on a fiber (wait_fiber.c) ---- */

/* Runs waits of the fibers of one thread on that thread's event loop. A
 * wait registers a one-shot event for its descriptor (or a timer) and
 * yields; the event's callback resumes the fiber. The two stop
 * descriptors are watched, and a stop resumes every fiber waiting with a
 * kind it concerns.
 *
 * Threading: everything here but cr_fiber_wake_signal belongs to the
 * thread that made the scheduler, and its waits to the fibers of its
 * pool. Waiting from the thread's own stack fails with EDEADLK (nothing
 * could resume it while it holds the loop): a driver starts the code that
 * waits on a fiber (cr_fiber_new, cr_fiber_resume) and returns to the
 * loop when it yields, or registers an event of its own. */
typedef struct cr_fiber_sched cr_fiber_sched;

/* NULL on failure with errno set. base and pool outlive it. */
cr_fiber_sched *cr_fiber_sched_new(struct event_base *base, cr_fiber_pool *pool,
                                   const int stop_fd[CR_WAIT_KINDS]);

/* Cancels the events of fibers still waiting (they stay suspended, to be
 * dropped with their pool) and frees s. NULL is ignored. */
void cr_fiber_sched_free(cr_fiber_sched *s);

cr_waiter *cr_fiber_sched_waiter(cr_fiber_sched *s);

/* Fibers waiting now, of both kinds. */
unsigned cr_fiber_sched_waiting(const cr_fiber_sched *s);

typedef struct cr_wait_rec cr_wait_rec;

/* What another thread wakes a fiber by, such as a request's finish from a
 * handler thread. Embedded in the caller's object. */
typedef struct cr_fiber_wake {
    cr_fiber_sched *sched;
    cr_wait_rec *rec;           /* the fiber's wait on it; scheduler thread only */
    struct cr_fiber_wake *next; /* on the scheduler's queue; under its lock */
    int queued;                 /* under the scheduler's lock */
    int signaled;               /* under the scheduler's lock */
} cr_fiber_wake;

/* From the scheduler's thread. */
void cr_fiber_wake_init(cr_fiber_wake *wk, cr_fiber_sched *s);

/* From a fiber of wk's scheduler: waits until cr_fiber_wake_signal(wk),
 * the deadline or a stop of kind. A signal given before the wait makes it
 * return CR_WAIT_READY at once; each signal is taken once. */
int cr_fiber_wake_wait(cr_fiber_wake *wk, int64_t deadline_ns, cr_wait_kind kind);

/* From any thread. Touches wk only under the scheduler's lock, so once it
 * returned (or once the fiber saw the wake) wk may go as far as the caller
 * is concerned; the owner must still see that no signal starts after
 * cr_fiber_wake_fini. CR_OK, or CR_ERROR (errno set, logged) when the
 * scheduler's eventfd cannot be written. */
int cr_fiber_wake_signal(cr_fiber_wake *wk);

/* From the scheduler's thread, when no fiber waits on wk, before its
 * memory goes: takes it off the scheduler's queue. */
void cr_fiber_wake_fini(cr_fiber_wake *wk);

#endif
