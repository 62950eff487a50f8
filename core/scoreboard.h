/* The scoreboard: shared memory created by the master before the first
 * fork, where the master publishes every child's pid and generation and
 * every handler slot records its state and counters. Status pages read it
 * in-process and corralctl from outside, which is why it is a file (the
 * config's `scoreboard`, mode 0600) mapped MAP_SHARED rather than anonymous
 * memory. The file opens with a header (magic, layout version, sizes) that
 * a reader checks before trusting the rest. Holds no pointers, so any
 * process may map it. Sized once from the hard limits.
 *
 * Children run as an unprivileged user and must not steer the root master:
 * the master's part (the header and the process slots) comes first, on
 * pages of its own that each child maps again read-only before it drops
 * root (cr_scoreboard_seal). The master itself never acts on a pid or a
 * generation read from here (see child_table.h); of what children write
 * it reads only the handler slots' states, to count spare servers, and
 * their counters, to add up totals. */
#ifndef CR_SCOREBOARD_H
#define CR_SCOREBOARD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define CR_SB_CLIENT_LEN  48
#define CR_SB_REQUEST_LEN 64

/* "CRSCORE" and a NUL: the first bytes of every scoreboard file. */
#define CR_SB_MAGIC "CRSCORE"
/* Bumped whenever the meaning or the layout of anything in the file
 * changes; sizes alone would miss a field that changed meaning. */
#define CR_SB_LAYOUT   3u
#define CR_SB_NAME_LEN 32

/* The phases of a request, in the order it passes them (see
 * http_conn.h, cr_conn_times); corral/status.h names them for readers. */
typedef enum cr_phase {
    CR_PHASE_WAIT,    /* for the client: no byte of the request has arrived */
    CR_PHASE_READ,    /* reading and parsing the head and the body */
    CR_PHASE_QUEUE,   /* for the server: arrived but not read, read but no thread */
    CR_PHASE_HANDLER, /* in the handler, a suspended wait included */
    CR_PHASE_WRITE,   /* the response going out */
    CR_PHASES
} cr_phase;

/* Written only by the thread that accounts the slot's requests (its own
 * for prefork and worker, the child's event thread for event). */
typedef struct cr_worker_score {
    volatile char state; /* cr_slot_state */
    uint64_t requests;   /* served by this slot since its child started */
    uint64_t bytes;
    uint64_t phase_ns[CR_PHASES]; /* time those requests spent in each phase */
    time_t last_used;
    char client[CR_SB_CLIENT_LEN];
    char request[CR_SB_REQUEST_LEN]; /* request line, truncated */
} cr_worker_score;

/* Written by the master only (read-only in children): a copy of its own
 * record, for readers. */
typedef struct cr_process_score {
    volatile pid_t pid; /* 0: slot free; -1: being forked */
    uint32_t generation;
    volatile char quiescing; /* the master asked it to stop gracefully */
    time_t started;
} cr_process_score;

/* Written by the child of the process slot: what it says of itself, for
 * status pages only (any child can write any of these). */
typedef struct cr_child_score {
    volatile char graceful; /* got a graceful stop signal, from whoever sent it */
} cr_child_score;

/* What the handler slots of exited children had served, added up when
 * their process slot is claimed again, so that server totals never go
 * backwards. Written by the master only. */
typedef struct cr_scoreboard_totals {
    uint64_t requests;
    uint64_t bytes;
    uint64_t phase_ns[CR_PHASES];
} cr_scoreboard_totals;

/* The start of the file. Written by the master only; the process slots,
 * the children's reports and the handler slots follow at the offsets it
 * gives. Everything before child_offset is the master's part. */
typedef struct cr_scoreboard_header {
    char magic[8];                        /* CR_SB_MAGIC */
    uint32_t layout;                      /* CR_SB_LAYOUT */
    uint32_t header_size;                 /* sizeof(cr_scoreboard_header) */
    uint32_t process_size;                /* sizeof(cr_process_score) */
    uint32_t worker_size;                 /* sizeof(cr_worker_score) */
    uint32_t process_limit;               /* process slots */
    uint32_t thread_limit;                /* handler slots per process slot */
    uint64_t process_offset;              /* of processes[0] from the start of the file */
    uint64_t worker_offset;               /* of workers[0] */
    uint64_t child_offset;                /* of children[0], on a page boundary */
    uint64_t map_size;                    /* the whole file */
    int64_t master_pid;                   /* the master that created the file */
    int64_t start_time;                   /* when the master created it */
    volatile int64_t restart_time;        /* when the running generation took over */
    volatile uint32_t running_generation; /* 1 at start, +1 per restart */
    _Atomic uint32_t log_epoch;           /* +1 per log reopen (error_log.h) */
    uint32_t child_size;                  /* sizeof(cr_child_score) */
    uint32_t page_size;                   /* the boundary of the master's part */
    char version[CR_SB_NAME_LEN];         /* CR_VERSION of the master */
    char mpm[CR_SB_NAME_LEN];             /* the MPM's name */
    cr_scoreboard_totals retired;
} cr_scoreboard_header;

/* This process's view of the map. running_generation and the times are
 * this process's copies (a child keeps those of the generation it was
 * forked in); the master publishes them to the header with each claim. */
typedef struct cr_scoreboard {
    uint32_t process_limit;
    uint32_t thread_limit;
    volatile uint32_t running_generation;
    time_t start_time; /* when the scoreboard was created: the server's start */
    time_t restart_time;
    cr_scoreboard_header *hdr;     /* the shared map starts with it */
    cr_scoreboard_totals *retired; /* in the shared map */
    cr_process_score *processes;   /* [process_limit] */
    cr_child_score *children;      /* [process_limit] */
    cr_worker_score *workers;      /* [process_limit * thread_limit] */
    size_t map_size;
    size_t master_size; /* the master's part: the first bytes of the map */
    void *map;
    char *path;     /* the file; NULL when attached read-only */
    int seal_fd;    /* in the creator: the file opened read-only, for children */
    dev_t file_dev; /* to remove the file only while it is still ours */
    ino_t file_ino;
    pid_t creator; /* only the master that created the file removes it */
} cr_scoreboard;

/* Creates the file `path` (mode 0600, replacing a stale one atomically)
 * for the given limits and maps it shared; mpm names the MPM for readers.
 * 0, or -1 with errno. */
int cr_scoreboard_create(cr_scoreboard *sb, const char *path, uint32_t process_limit,
                         uint32_t thread_limit, const char *mpm);

/* Unmaps the scoreboard; in the master that created it, also removes the
 * file (unless another one took its name meanwhile). */
void cr_scoreboard_destroy(cr_scoreboard *sb);

/* Maps the file of a running master read-only and checks its header.
 * 0, or -1 with a reason in err (errno set for system errors, 0 for a file
 * that is not a scoreboard this build can read). Free with
 * cr_scoreboard_destroy. */
int cr_scoreboard_attach(cr_scoreboard *sb, const char *path, char *err, size_t errlen);

static inline cr_worker_score *cr_scoreboard_worker(const cr_scoreboard *sb, uint32_t process,
                                                    uint32_t thread)
{
    return &sb->workers[process * sb->thread_limit + thread];
}

/* In a child forked by the creator, before it drops root: maps the
 * master's part again, read-only, from a descriptor that was opened
 * read-only, then closes that descriptor. The child can then neither write
 * that part nor make it writable again (mprotect refuses, the mapping has
 * no write access to regain; the file is the master's, mode 0600). 0, or
 * -1 with errno. */
int cr_scoreboard_seal(cr_scoreboard *sb);

/* Marks the process slot and its first `threads` handler slots as new for
 * pid; what the slot's previous child served moves to sb->retired. Also
 * publishes running_generation and restart_time to the header. The master
 * picks the slot from its own record, never from the pids here. */
void cr_scoreboard_claim(cr_scoreboard *sb, int slot, pid_t pid, uint32_t generation,
                         uint32_t threads);

/* Frees the slot of a child that exited. */
void cr_scoreboard_release(cr_scoreboard *sb, int slot);

struct cr_status;

/* A snapshot of any mapped scoreboard (this server's, or one attached
 * from outside) in the form of corral/status.h; see cr_status_snapshot.
 * NULL when out of memory. Implemented in status.c. */
struct cr_status *cr_scoreboard_status(const cr_scoreboard *sb);

#endif
