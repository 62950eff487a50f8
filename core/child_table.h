/* The master's own record of the children it forked: pid, generation and
 * whether it asked each to stop, in the master's private memory. Children
 * can write the scoreboard, so the master takes no pid or generation from
 * there: every signal it sends and every decision on a child goes by this
 * table, indexed like the scoreboard's process slots. */
#ifndef CR_CHILD_TABLE_H
#define CR_CHILD_TABLE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct cr_child_entry {
    pid_t pid; /* forked by this master and not reaped yet; 0: the slot is free */
    uint32_t generation;
    bool stopping;        /* this master asked it to stop (USR1, WINCH, spare reduction) */
    long long started_ms; /* when it was forked, on the monotonic clock */
} cr_child_entry;

typedef struct cr_child_table {
    cr_child_entry *slots; /* [count] */
    uint32_t count;
} cr_child_table;

/* count free slots. 0, or -1 (out of memory). */
int cr_child_table_init(cr_child_table *t, uint32_t count);

void cr_child_table_free(cr_child_table *t);

/* A free slot, or -1 when all hold a child. */
int cr_child_table_free_slot(const cr_child_table *t);

/* The slot of pid, or -1 when this master did not fork it (or reaped it). */
int cr_child_table_find(const cr_child_table *t, pid_t pid);

/* Records the child just forked into a free slot. */
void cr_child_table_add(cr_child_table *t, int slot, pid_t pid, uint32_t generation,
                        long long now_ms);

/* Forgets the child of slot, once reaped: its pid may belong to anyone
 * from then on. */
void cr_child_table_remove(cr_child_table *t, int slot);

#endif
