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
#include "server.h"

struct cr_child {
    cr_server *srv;
    cr_generation *gen;
    int slot;           /* process slot in the scoreboard */
    int epfd;           /* the listeners and the stop descriptors, for cr_child_accept */
    sigset_t wait_mask; /* the mask while waiting: stop signals let through */
    atomic_ulong requests;
    long long drain_until; /* cr_child_accept_pending takes connections until then (ms) */
};

/* Prepares the current process as child `slot` (signals, listeners,
 * modules' child_init) and runs the MPM's child_main. Returns the exit
 * status. */
int cr_child_run(cr_server *srv, int slot);

/* How a wait reacts to a stop request. */
typedef enum cr_wait_kind {
    CR_WAIT_BUSY, /* mid-request: only an immediate stop interrupts it */
    CR_WAIT_IDLE, /* between requests: a graceful stop interrupts it too */
} cr_wait_kind;

/* Waits until fd has one of events or timeout_ms passed (-1: forever).
 * Returns 1 ready, 0 timed out, CR_AGAIN when a stop that concerns this
 * kind of wait was requested, CR_ERROR on failure (errno set). Every
 * thread of the child sees a stop request, not just the one the signal
 * landed on. */
int cr_child_wait(cr_child *child, int fd, short events, int timeout_ms, cr_wait_kind kind);

#define CR_CHILD_POLL_MAX 4

struct pollfd;

/* cr_child_wait for up to CR_CHILD_POLL_MAX descriptors at once; their
 * revents are filled in when it returns 1. */
int cr_child_poll(cr_child *child, struct pollfd *fds, int nfds, int timeout_ms, cr_wait_kind kind);

/* Descriptor that turns readable once a stop of this kind is requested
 * (for MPMs that wait in an event loop of their own). */
int cr_child_stop_fd(const cr_child *child, cr_wait_kind kind);

/* Counts a served request for requests_per_child. */
void cr_child_count_request(cr_child *child);

/* After a graceful stop or restart, how long a connection that has no
 * request in progress (idle keep-alive, or accepted with nothing sent yet)
 * is still waited for: its request, if it comes, is served with
 * Connection: close instead of meeting a closed socket, and the old child
 * still leaves soon. Never longer than the timeout that already ran. */
#define CR_CHILD_GRACEFUL_IDLE_MS 1000

/* After a graceful stop (not a restart: then the new generation accepts),
 * a connection the listeners hold already: clients that connected before
 * the master stopped new ones from completing, which must be answered, not
 * reset when the listeners close. Returns its descriptor (non-blocking,
 * close-on-exec), or -1 when there is none left, this is no graceful stop,
 * or CR_CHILD_DRAIN_MS passed since the first call (where new connections
 * could not be stopped, on unix sockets, a steady stream of them must not
 * keep the child from stopping). Never waits. One thread per child calls
 * it. */
int cr_child_accept_pending(cr_child *child);

#define CR_CHILD_DRAIN_MS 1000

/* True after a graceful stop of the server (cr_child_accept_pending may
 * have connections), until an immediate stop. */
bool cr_child_draining(const cr_child *child);

#endif
