#include "scoreboard.h"

#include <string.h>
#include <sys/mman.h>

#include "corral/mpm.h"

int cr_scoreboard_create(cr_scoreboard *sb, uint32_t process_limit, uint32_t thread_limit)
{
    size_t totals = sizeof(cr_scoreboard_totals);
    size_t procs = sizeof(cr_process_score) * process_limit;
    size_t workers = sizeof(cr_worker_score) * process_limit * thread_limit;
    void *map;

    map = mmap(NULL, totals + procs + workers, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
               -1, 0);
    if (map == MAP_FAILED)
        return -1;
    sb->process_limit = process_limit;
    sb->thread_limit = thread_limit;
    sb->running_generation = 0;
    sb->start_time = time(NULL);
    sb->restart_time = sb->start_time;
    sb->map = map;
    sb->map_size = totals + procs + workers;
    sb->retired = map;
    sb->processes = (cr_process_score *)((char *)map + totals);
    sb->workers = (cr_worker_score *)((char *)map + totals + procs);
    for (uint32_t i = 0; i < process_limit * thread_limit; i++)
        sb->workers[i].state = CR_SLOT_DEAD;
    return 0;
}

void cr_scoreboard_destroy(cr_scoreboard *sb)
{
    if (sb->map != NULL)
        munmap(sb->map, sb->map_size);
    memset(sb, 0, sizeof(*sb));
}

int cr_scoreboard_free_slot(const cr_scoreboard *sb)
{
    for (uint32_t i = 0; i < sb->process_limit; i++)
        if (sb->processes[i].pid == 0)
            return (int)i;
    return -1;
}

void cr_scoreboard_claim(cr_scoreboard *sb, int slot, pid_t pid, uint32_t generation,
                         uint32_t threads)
{
    cr_process_score *p = &sb->processes[slot];

    p->pid = pid;
    p->generation = generation;
    p->quiescing = 0;
    p->started = time(NULL);
    for (uint32_t t = 0; t < sb->thread_limit; t++) {
        cr_worker_score *w = cr_scoreboard_worker(sb, (uint32_t)slot, t);

        sb->retired->requests += w->requests;
        sb->retired->bytes += w->bytes;
        memset(w, 0, sizeof(*w));
        w->state = t < threads ? CR_SLOT_STARTING : CR_SLOT_DEAD;
    }
}

void cr_scoreboard_release(cr_scoreboard *sb, int slot)
{
    sb->processes[slot].pid = 0;
    for (uint32_t t = 0; t < sb->thread_limit; t++)
        cr_scoreboard_worker(sb, (uint32_t)slot, t)->state = CR_SLOT_DEAD;
}

int cr_scoreboard_find(const cr_scoreboard *sb, pid_t pid)
{
    for (uint32_t i = 0; i < sb->process_limit; i++)
        if (sb->processes[i].pid == pid)
            return (int)i;
    return -1;
}
