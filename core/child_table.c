#include "child_table.h"

#include <stdlib.h>
#include <string.h>

int cr_child_table_init(cr_child_table *t, uint32_t count)
{
    t->slots = calloc(count, sizeof(*t->slots));
    t->count = t->slots != NULL ? count : 0;
    return t->slots != NULL ? 0 : -1;
}

void cr_child_table_free(cr_child_table *t)
{
    free(t->slots);
    t->slots = NULL;
    t->count = 0;
}

int cr_child_table_free_slot(const cr_child_table *t)
{
    for (uint32_t i = 0; i < t->count; i++)
        if (t->slots[i].pid == 0)
            return (int)i;
    return -1;
}

int cr_child_table_find(const cr_child_table *t, pid_t pid)
{
    if (pid <= 0)
        return -1;
    for (uint32_t i = 0; i < t->count; i++)
        if (t->slots[i].pid == pid)
            return (int)i;
    return -1;
}

void cr_child_table_add(cr_child_table *t, int slot, pid_t pid, uint32_t generation,
                        long long now_ms)
{
    t->slots[slot] = (cr_child_entry){
        .pid = pid, .generation = generation, .stopping = false, .started_ms = now_ms};
}

void cr_child_table_remove(cr_child_table *t, int slot)
{
    memset(&t->slots[slot], 0, sizeof(t->slots[slot]));
}
