/* Suspended requests and request timers. A handler that returns
 * CR_SUSPENDED leaves its request to the module, which finishes it later
 * from any thread; one atomic state word settles the races between the
 * handler returning, the module finishing and the client leaving. The
 * connection driver (blocking or event) supplies how to wake the thread
 * that drives the connection and how to arm a timer there. */
#ifndef CR_SUSPEND_H
#define CR_SUSPEND_H

#include <event2/event_struct.h>
#include <stdbool.h>
#include <sys/uio.h>

#include "corral/request.h"

struct cr_conn;

typedef enum cr_run_state {
    CR_RUN_HANDLER = 0,    /* the handler runs, or no handler ran yet */
    CR_RUN_FINISHED_EARLY, /* finished before the handler returned CR_SUSPENDED */
    CR_RUN_SUSPENDED,      /* waiting for the module */
    CR_RUN_FINISHED,       /* finished while suspended: the driver sends the response */
    CR_RUN_ABORTED,        /* dropped: the client left or the child stops */
} cr_run_state;

struct cr_timer {
    struct event ev; /* the event driver's timer */
    struct cr_timer *next;
    struct cr_conn *c;
    cr_timer_fn fn;
    void *arg;
    long long due_ms; /* CLOCK_MONOTONIC */
    bool armed;
};

/* What a connection driver does for suspended requests. */
typedef struct cr_conn_driver {
    /* A suspended request was finished, maybe on another thread: make the
     * driving thread send it. Must not touch c once the driving thread
     * may have seen the wake-up. */
    void (*wake)(struct cr_conn *c);
    /* Starts t on the driving thread (due at t->due_ms), or NULL when the
     * driver's own wait watches the due times. */
    void (*arm)(struct cr_conn *c, cr_timer *t);
    void (*disarm)(struct cr_conn *c, cr_timer *t);
    /* Sends iov for cr_response_flush, from whatever thread calls it: all
     * of it, or what the socket takes with the rest queued where blocking
     * is not allowed (the event thread). CR_OK or CR_ERROR. */
    int (*send)(struct cr_conn *c, struct iovec *iov, int n);
} cr_conn_driver;

/* Milliseconds of CLOCK_MONOTONIC_COARSE. */
long long cr_monotonic_ms(void);

/* After the handler returned CR_SUSPENDED, on the driving thread: true
 * when the request is now suspended (its timers armed), false when the
 * module already finished it and the response can go out. */
bool cr_conn_park(struct cr_conn *c);

/* Drops a suspended request, on the driving thread: cancels its timers and
 * tells the module. False when it was finished meanwhile (the wake-up is
 * on its way): then the response goes out as usual. */
bool cr_conn_abort(struct cr_conn *c);

/* Due time of the earliest timer, or -1 when none. */
long long cr_conn_next_timer(const struct cr_conn *c);

/* Runs the timers due at now, on the driving thread. */
void cr_conn_run_timers(struct cr_conn *c, long long now);

/* Fires one timer (the event driver's callback). */
void cr_timer_fire(cr_timer *t);

/* Cancels every timer of the request (it is ending). */
void cr_conn_cancel_timers(struct cr_conn *c);

#endif
