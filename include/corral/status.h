/* A read-only view of the running server for status pages and monitors
 * (mod_status): one call copies the scoreboard into plain structs, so a
 * module never sees the core's shared memory, its layout or its locking. */
#ifndef CORRAL_STATUS_H
#define CORRAL_STATUS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define CR_STATUS_NAME_LEN    64
#define CR_STATUS_CLIENT_LEN  48
#define CR_STATUS_REQUEST_LEN 64

/* Where requests spend their time, in the order they pass the phases. */
typedef enum cr_status_phase {
    CR_STATUS_PHASE_WAIT,    /* waiting for the client: from the accept, or from the previous
                              * response on a kept-alive connection, until the request's first
                              * bytes arrived (the kernel's receive timestamp) */
    CR_STATUS_PHASE_READ,    /* from the first byte read until head and body are read */
    CR_STATUS_PHASE_QUEUE,   /* waiting for the server: from the bytes' arrival until a thread
                              * read them (the accept queue, a process or event loop busy with
                              * others, a thread waking up), and from the request read until
                              * a handler thread took it (the event MPM's pool queue) */
    CR_STATUS_PHASE_HANDLER, /* in the handler; a suspended request's wait included */
    CR_STATUS_PHASE_WRITE,   /* the response going out, until the socket took all of it */
    CR_STATUS_PHASES
} cr_status_phase;

/* What a child process is doing, as a whole. */
typedef enum cr_status_child_state {
    CR_STATUS_CHILD_STARTING, /* forked, its pid not recorded yet */
    CR_STATUS_CHILD_RUNNING,
    CR_STATUS_CHILD_GRACEFUL, /* finishing its work before exiting (asked to, or of an
                               * older generation) */
} cr_status_child_state;

/* One handler slot (a thread; the only one of a prefork child). */
typedef struct cr_status_thread {
    int slot;          /* index within its child */
    char state;        /* cr_slot_state letter: _ S R W K C G . (G for every live slot of a
                        * child that is finishing gracefully) */
    uint64_t requests; /* served by this slot since its child started */
    uint64_t bytes;    /* response body bytes sent, likewise */
    uint64_t phase_ns[CR_STATUS_PHASES]; /* what those requests spent in each phase */
    time_t last_used;                    /* end of its last request, 0 if none */
    char client[CR_STATUS_CLIENT_LEN];   /* address of the last client, "" if none */
    char request[CR_STATUS_REQUEST_LEN]; /* current or last request line, truncated */
} cr_status_thread;

/* One child process, with all its handler slots. */
typedef struct cr_status_child {
    int slot;  /* process slot in the scoreboard */
    pid_t pid; /* 0 while starting */
    uint32_t generation;
    cr_status_child_state state;
    time_t started;
    uint64_t requests; /* sum over its threads */
    uint64_t bytes;
    uint64_t phase_ns[CR_STATUS_PHASES];
    size_t nthreads; /* thread_limit of the snapshot */
    cr_status_thread *threads;
} cr_status_child;

/* The server as a whole. */
typedef struct cr_status_server {
    char version[CR_STATUS_NAME_LEN];    /* "corral/0.1.0" */
    char mpm[CR_STATUS_NAME_LEN];        /* "prefork", "worker", "event", ... */
    time_t now;                          /* when the snapshot was taken */
    time_t start_time;                   /* when the master started */
    time_t restart_time;                 /* when the running generation took over */
    time_t uptime;                       /* now - start_time, in seconds */
    uint32_t generation;                 /* the running generation (1 at start, +1 per restart) */
    uint32_t process_limit;              /* process slots in the scoreboard */
    uint32_t thread_limit;               /* handler slots per process slot */
    uint64_t requests;                   /* served since start, exited children included */
    uint64_t bytes;                      /* response body bytes, likewise */
    uint64_t phase_ns[CR_STATUS_PHASES]; /* time those requests spent in each phase */
    unsigned busy_workers;               /* slots reading, writing, in keep-alive, closing or G */
    unsigned idle_workers;               /* slots ready for a connection in running children */
    unsigned graceful_workers;           /* slots of children finishing gracefully */
    unsigned processes;                  /* live children */
    unsigned stopping;                   /* children finishing gracefully */
} cr_status_server;

typedef struct cr_status {
    cr_status_server server;
    size_t nchildren;
    cr_status_child *children; /* live children, by process slot */
    /* One letter per handler slot of every process slot (process_limit x
     * thread_limit, '.' where nothing runs), NUL-terminated: Apache's
     * "Scoreboard:" line. */
    char *scoreboard;
} cr_status;

/* Copies the scoreboard of the server this process belongs to into one
 * malloc'ed snapshot. Callable from any thread of a child (or of the
 * master). Strings in it are NUL-terminated printable ASCII (other bytes
 * become '?'), safe to put into JSON as they are; HTML still needs
 * escaping. Counters are read without locking, so a snapshot taken while
 * requests run may be a request behind. NULL when out of memory or when no
 * server runs in this process. Free with cr_status_free. */
cr_status *cr_status_snapshot(void);

/* Frees a snapshot; NULL is allowed. */
void cr_status_free(cr_status *st);

/* Name of a phase: "wait", "read", "queue", "handler" or "write"; NULL
 * for a number that is not a phase. */
const char *cr_status_phase_name(cr_status_phase phase);

/* Name of a child state: "starting", "running" or "graceful". */
const char *cr_status_child_state_name(cr_status_child_state state);

/* What a scoreboard letter means ("Waiting for Connection", ...), for
 * legends; "Unknown" for a letter that is not a slot state. */
const char *cr_status_letter_name(char state);

#endif
