/* A child process from the core's side: its scoreboard slot, the signals
 * that ask it to stop, and the waits every MPM uses. Stop requests arrive
 * as signals that stay blocked except inside ppoll/epoll_pwait, so a wait
 * can never miss one. */
#ifndef CR_CHILD_H
#define CR_CHILD_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "corral/mpm.h"
#include "io/wait.h"
#include "server.h"

struct cr_child {
    cr_server *srv;
    cr_generation *gen;
    int slot;              /* process slot in the scoreboard */
    int epfd;              /* the listeners and the stop descriptors, for cr_child_accept */
    sigset_t wait_mask;    /* the mask while waiting: stop signals let through */
    cr_wait_thread waiter; /* every thread's wait: the stop eventfds and wait_mask */
    atomic_ulong requests;
    long long drain_until; /* cr_child_accept_pending takes connections until then (ms) */
};

/* Prepares the current process as child `slot` (signals, listeners,
 * modules' child_init) and runs the MPM's child_main. Returns the exit
 * status. */
int cr_child_run(cr_server *srv, int slot);

/* Counts a served request for requests_per_child. */
void cr_child_count_request(cr_child *child);

/* After a graceful stop or restart, how long a connection that has no
 * request in progress (idle keep-alive, or accepted with nothing sent yet)
 * is still waited for: its request, if it comes, is served with
 * Connection: close instead of meeting a closed socket, and the old child
 * still leaves soon. Never longer than the timeout that already ran. */
#define CR_CHILD_GRACEFUL_IDLE_MS 1000

#endif
