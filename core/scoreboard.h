/* The scoreboard: shared memory created by the master before the first
 * fork, where every child records its pid and generation and every handler
 * slot its state and counters. The master reads it for spare-server
 * maintenance; status pages and corralctl read it too. Holds no pointers,
 * so any process may map it. Sized once from the hard limits. */
#ifndef CR_SCOREBOARD_H
#define CR_SCOREBOARD_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define CR_SB_CLIENT_LEN 48
#define CR_SB_REQUEST_LEN 64

typedef struct cr_worker_score {
    volatile char state; /* cr_slot_state */
    uint64_t requests;   /* served by this slot since its child started */
    uint64_t bytes;
    time_t last_used;
    char client[CR_SB_CLIENT_LEN];
    char request[CR_SB_REQUEST_LEN]; /* request line, truncated */
} cr_worker_score;

typedef struct cr_process_score {
    volatile pid_t pid; /* 0: slot free */
    uint32_t generation;
    volatile char quiescing; /* asked to stop gracefully */
    time_t started;
} cr_process_score;

/* What the handler slots of exited children had served, added up when
 * their process slot is claimed again, so that server totals never go
 * backwards. Written by the master only. */
typedef struct cr_scoreboard_totals {
    uint64_t requests;
    uint64_t bytes;
} cr_scoreboard_totals;

typedef struct cr_scoreboard {
    uint32_t process_limit;
    uint32_t thread_limit;
    volatile uint32_t running_generation;
    time_t start_time; /* when the scoreboard was created: the server's start */
    time_t restart_time;
    cr_scoreboard_totals *retired; /* in the shared map */
    cr_process_score *processes;   /* [process_limit] */
    cr_worker_score *workers;      /* [process_limit * thread_limit] */
    size_t map_size;
    void *map;
} cr_scoreboard;

/* Maps anonymous shared memory for the given limits. 0, or -1 with errno. */
int cr_scoreboard_create(cr_scoreboard *sb, uint32_t process_limit, uint32_t thread_limit);

void cr_scoreboard_destroy(cr_scoreboard *sb);

static inline cr_worker_score *cr_scoreboard_worker(const cr_scoreboard *sb, uint32_t process,
                                                    uint32_t thread)
{
    return &sb->workers[process * sb->thread_limit + thread];
}

/* A free process slot, or -1 when all are in use. */
int cr_scoreboard_free_slot(const cr_scoreboard *sb);

/* Marks the process slot and its first `threads` handler slots as new for
 * pid; what the slot's previous child served moves to sb->retired. */
void cr_scoreboard_claim(cr_scoreboard *sb, int slot, pid_t pid, uint32_t generation,
                         uint32_t threads);

/* Frees the slot of a child that exited. */
void cr_scoreboard_release(cr_scoreboard *sb, int slot);

/* Process slot of pid, or -1. */
int cr_scoreboard_find(const cr_scoreboard *sb, pid_t pid);

#endif
