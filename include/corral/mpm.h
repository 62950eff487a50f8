/* The MPM (multi-processing module) interface. An MPM is a shared object
 * (mpm_NAME.so) exporting one `const cr_mpm cr_mpm_entry`: it reads its own
 * config group into a state of its own for each generation, tells the
 * master how many children and threads to keep, and supplies the body of a
 * child process. Accepting, HTTP, routing, modules and the scoreboard are
 * core services listed below. */
#ifndef CORRAL_MPM_H
#define CORRAL_MPM_H

#include <libconfig.h>
#include <stdbool.h>
#include <stdint.h>

#include "corral/types.h"

#define CR_MPM_MAGIC 0x4352504du /* "CRPM" */
#define CR_MPM_ABI   2u          /* bumped on any incompatible change */

/* What the master keeps running, filled by cr_mpm.configure. Spare counts
 * are in idle handler slots (threads; one per prefork child). */
typedef struct cr_mpm_policy {
    int start_processes;   /* children forked at start */
    int min_processes;     /* never fewer live children than this */
    int max_processes;     /* never more live children than this */
    int threads_per_child; /* handler slots per child (1 for prefork) */
    int min_spare;         /* fork more children while fewer slots are idle; 0 = off */
    int max_spare;         /* stop an idle child while more slots are idle; 0 = off */
} cr_mpm_policy;

/* One child process as the core sees it; opaque to MPMs. */
typedef struct cr_child cr_child;

typedef struct cr_mpm {
    uint32_t magic; /* CR_MPM_MAGIC */
    uint32_t abi;   /* CR_MPM_ABI */
    const char *name;
    const char *version;
    /* Validates the group mpm_NAME (NULL when absent: use defaults), fills
     * policy and sets *state to what child_main needs of the config (NULL
     * when nothing). CR_OK, or CR_ERROR with a message in err and nothing
     * left allocated. Called once per generation, before any child forks:
     * at start, at every restart and for a config test. A graceful restart
     * configures the new generation while children of the old one still
     * serve with the old state, so the state belongs to its generation,
     * never to a static of the MPM. */
    int (*configure)(const config_setting_t *settings, cr_mpm_policy *policy, void **state,
                     char *err, size_t errlen);
    /* The body of a child process (also of `corral -X`), with the state
     * configure made for the child's generation. Returns the exit status.
     * It should return soon after cr_child_stopping() turns true. */
    int (*child_main)(cr_child *child, void *state);
    /* Frees a state configure made, when its generation is freed (a
     * restart replaced it, or the config was only tested). NULL when
     * configure never sets a state. */
    void (*release)(void *state);
} cr_mpm;

/* Scoreboard states of a handler slot, as mod_status letters. */
typedef enum cr_slot_state {
    CR_SLOT_DEAD = '.',
    CR_SLOT_STARTING = 'S',
    CR_SLOT_READY = '_',     /* idle, waiting for a connection */
    CR_SLOT_READ = 'R',      /* reading a request */
    CR_SLOT_WRITE = 'W',     /* in the handler or sending the reply */
    CR_SLOT_KEEPALIVE = 'K', /* waiting for the next request on a connection */
    CR_SLOT_CLOSING = 'C',
    CR_SLOT_GRACEFUL = 'G', /* finishing its work before exiting */
} cr_slot_state;

/* True once the child was asked to stop (at once or gracefully). */
bool cr_child_stopping(const cr_child *child);

/* True once the child was asked to stop without finishing its work. */
bool cr_child_stopping_now(const cr_child *child);

/* True when the child has served requests_per_child requests. */
bool cr_child_recycle_due(const cr_child *child);

/* Number of handler slots (threads) of this child. */
int cr_child_threads(const cr_child *child);

/* Waits for a connection on any listener and accepts it (non-blocking,
 * close-on-exec). Returns its descriptor, or -1 when woken without one
 * (a signal, another child took it, a transient accept error): check
 * cr_child_stopping and call again. */
int cr_child_accept(cr_child *child);

/* Serves one connection from start to close with blocking waits (request
 * head, body, handler, response, keep-alive), as handler slot `thread`.
 * Closes fd. */
void cr_child_serve_blocking(cr_child *child, int thread, int fd);

/* Options of the event-driven driver. */
typedef struct cr_event_options {
    int threads;         /* handler pool threads; scoreboard slots 0..threads-1, the
                          * event thread uses slot `threads` */
    int max_connections; /* per child; past it the child stops accepting for a while */
    int queue_limit;     /* requests waiting for a pool thread before 503s; 0: threads x 64 */
} cr_event_options;

/* Runs the event-driven driver as this child's body: one event thread
 * accepts, reads request heads and bodies without blocking, holds idle
 * keep-alive connections and finishes slow writes; complete requests go to
 * a pool of handler threads, or run on the event thread when every module
 * that may serve them is CR_MODULE_NONBLOCKING. Returns the exit status
 * once the child was asked to stop and its connections are done. */
int cr_child_serve_events(cr_child *child, const cr_event_options *opt);

/* Records the state of handler slot `thread` in the scoreboard. */
void cr_child_set_state(cr_child *child, int thread, cr_slot_state state);

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
