/* The scoreboard as plain structs for modules (include/corral/status.h).
 *
 * The scoreboard is written without locks by every handler thread of every
 * child, and the copy here reads it the same way: a torn string is cut and
 * cleaned, a counter may be one request behind. Those reads race with the
 * writers by design (as Apache's mod_status does), so they go through
 * volatile loads in functions ThreadSanitizer does not instrument, and never
 * through memcpy or the str* functions, which it intercepts. */
#include "corral/status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corral/corral.h"
#include "server.h"

#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 8)
#define CR_NO_TSAN __attribute__((no_sanitize("thread"), noinline))
#else
#define CR_NO_TSAN __attribute__((noinline))
#endif

#define CR_LOAD(lv) (*(const volatile __typeof__(lv) *)&(lv))

/* Copies a string that another process may be rewriting: stops at the
 * first NUL or at cap - 1 bytes, and turns anything but printable ASCII
 * into '?' so that a cut multibyte character cannot reach a JSON string. */
CR_NO_TSAN static void cr_status_copy_str(char *dst, size_t cap, const char *src, size_t srclen)
{
    const volatile char *s = src;
    size_t i;

    for (i = 0; i + 1 < cap && i < srclen; i++) {
        char ch = s[i];

        if (ch == '\0')
            break;
        dst[i] = ch >= 0x20 && ch < 0x7f ? ch : '?';
    }
    dst[i] = '\0';
}

/* A slot of a child that is finishing shows G whatever it does, as in
 * Apache: it takes no new work. */
static char cr_status_letter(char state, bool graceful)
{
    if (graceful && state != CR_SLOT_DEAD)
        return CR_SLOT_GRACEFUL;
    return state;
}

CR_NO_TSAN static void cr_status_copy_thread(cr_status_thread *t, const cr_worker_score *w,
                                             int slot, bool graceful)
{
    t->slot = slot;
    t->state = cr_status_letter(CR_LOAD(w->state), graceful);
    t->requests = CR_LOAD(w->requests);
    t->bytes = CR_LOAD(w->bytes);
    for (int i = 0; i < CR_STATUS_PHASES; i++)
        t->phase_ns[i] = CR_LOAD(w->phase_ns[i]);
    t->last_used = CR_LOAD(w->last_used);
    cr_status_copy_str(t->client, sizeof(t->client), w->client, sizeof(w->client));
    cr_status_copy_str(t->request, sizeof(t->request), w->request, sizeof(w->request));
}

/* Copies process slot i when a child holds it; false when it is free. */
CR_NO_TSAN static bool cr_status_copy_child(cr_status_child *c, cr_status_thread *threads,
                                            const cr_scoreboard *sb, uint32_t i)
{
    const cr_process_score *p = &sb->processes[i];
    pid_t pid = CR_LOAD(p->pid);
    bool graceful;

    if (pid == 0)
        return false;
    c->slot = (int)i;
    c->pid = pid > 0 ? pid : 0;
    c->generation = CR_LOAD(p->generation);
    c->started = CR_LOAD(p->started);
    graceful = CR_LOAD(p->quiescing) || CR_LOAD(sb->children[i].graceful) ||
               c->generation < sb->running_generation;
    c->state = graceful ? CR_STATUS_CHILD_GRACEFUL
                        : (pid > 0 ? CR_STATUS_CHILD_RUNNING : CR_STATUS_CHILD_STARTING);
    c->nthreads = sb->thread_limit;
    c->threads = threads;
    c->requests = c->bytes = 0;
    memset(c->phase_ns, 0, sizeof(c->phase_ns));
    for (uint32_t t = 0; t < sb->thread_limit; t++) {
        cr_status_copy_thread(&threads[t], cr_scoreboard_worker(sb, i, t), (int)t, graceful);
        c->requests += threads[t].requests;
        c->bytes += threads[t].bytes;
        for (int k = 0; k < CR_STATUS_PHASES; k++)
            c->phase_ns[k] += threads[t].phase_ns[k];
    }
    return true;
}

CR_NO_TSAN static uint32_t cr_status_count_children(const cr_scoreboard *sb)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i < sb->process_limit; i++)
        n += CR_LOAD(sb->processes[i].pid) != 0;
    return n;
}

/* Requests and bytes of every slot, live or not (a dead slot keeps its
 * counters until it is claimed again, then they move to retired). */
CR_NO_TSAN static void cr_status_totals(cr_status_server *s, const cr_scoreboard *sb)
{
    s->requests = CR_LOAD(sb->retired->requests);
    s->bytes = CR_LOAD(sb->retired->bytes);
    for (int k = 0; k < CR_STATUS_PHASES; k++)
        s->phase_ns[k] = CR_LOAD(sb->retired->phase_ns[k]);
    for (uint32_t i = 0; i < sb->process_limit * sb->thread_limit; i++) {
        s->requests += CR_LOAD(sb->workers[i].requests);
        s->bytes += CR_LOAD(sb->workers[i].bytes);
        for (int k = 0; k < CR_STATUS_PHASES; k++)
            s->phase_ns[k] += CR_LOAD(sb->workers[i].phase_ns[k]);
    }
}

/* Busy and idle follow Apache: S and . are neither; idle counts only
 * slots of children that still take work. */
static void cr_status_count_slots(cr_status *st)
{
    cr_status_server *s = &st->server;

    for (size_t i = 0; i < st->nchildren; i++) {
        const cr_status_child *c = &st->children[i];

        s->processes++;
        s->stopping += c->state == CR_STATUS_CHILD_GRACEFUL;
        for (size_t t = 0; t < c->nthreads; t++) {
            char state = c->threads[t].state;

            if (state == CR_SLOT_READY)
                s->idle_workers++;
            else if (state != CR_SLOT_DEAD && state != CR_SLOT_STARTING)
                s->busy_workers++;
            s->graceful_workers += state == CR_SLOT_GRACEFUL;
        }
    }
}

/* The letter grid: every slot, '.' for process slots nobody holds. */
static void cr_status_grid(cr_status *st, const cr_scoreboard *sb)
{
    size_t n = (size_t)sb->process_limit * sb->thread_limit;

    memset(st->scoreboard, CR_SLOT_DEAD, n);
    st->scoreboard[n] = '\0';
    for (size_t i = 0; i < st->nchildren; i++) {
        const cr_status_child *c = &st->children[i];

        for (size_t t = 0; t < c->nthreads; t++)
            st->scoreboard[(size_t)c->slot * sb->thread_limit + t] = c->threads[t].state;
    }
}

/* The server-wide fields. running_generation and restart_time are the
 * reading process's copies: a child has those of the generation it was
 * forked in, which is the running one for every child that still takes
 * requests; a reader from outside has those the master last published. */
static void cr_status_server_info(cr_status_server *s, const cr_scoreboard *sb)
{
    char version[CR_SB_NAME_LEN];

    cr_status_copy_str(version, sizeof(version), sb->hdr->version, sizeof(sb->hdr->version));
    snprintf(s->version, sizeof(s->version), "corral/%s", version);
    cr_status_copy_str(s->mpm, sizeof(s->mpm), sb->hdr->mpm, sizeof(sb->hdr->mpm));
    s->now = time(NULL);
    s->start_time = sb->start_time;
    s->restart_time = sb->restart_time;
    s->uptime = s->now > s->start_time ? s->now - s->start_time : 0;
    s->generation = sb->running_generation;
    s->process_limit = sb->process_limit;
    s->thread_limit = sb->thread_limit;
    cr_status_totals(s, sb);
}

/* One block: the snapshot, then the children, their threads and the grid. */
static cr_status *cr_status_alloc(const cr_scoreboard *sb, uint32_t nchildren)
{
    size_t children = sizeof(cr_status_child) * nchildren;
    size_t threads = sizeof(cr_status_thread) * nchildren * sb->thread_limit;
    size_t grid = (size_t)sb->process_limit * sb->thread_limit + 1;
    char *block = calloc(1, sizeof(cr_status) + children + threads + grid);
    cr_status *st = (cr_status *)block;

    if (block == NULL)
        return NULL;
    st->children = (cr_status_child *)(block + sizeof(cr_status));
    st->scoreboard = block + sizeof(cr_status) + children + threads;
    return st;
}

cr_status *cr_scoreboard_status(const cr_scoreboard *sb)
{
    cr_status_thread *threads;
    uint32_t room;
    cr_status *st;

    /* A child that starts between the count and the copy is left out. */
    room = cr_status_count_children(sb);
    st = cr_status_alloc(sb, room);
    if (st == NULL)
        return NULL;
    threads = (cr_status_thread *)(st->children + room);
    for (uint32_t i = 0; i < sb->process_limit && st->nchildren < room; i++) {
        cr_status_child *c = &st->children[st->nchildren];

        if (cr_status_copy_child(c, threads + st->nchildren * sb->thread_limit, sb, i))
            st->nchildren++;
    }
    cr_status_server_info(&st->server, sb);
    cr_status_count_slots(st);
    cr_status_grid(st, sb);
    return st;
}

/* The server a snapshot copies. cr_status_snapshot is public API that a
 * module's handler calls without arguments, so nothing can carry the
 * server to it: main names it here once, through cr_status_init, rather
 * than this file reading main's object. */
static const cr_server *cr_status_srv;

void cr_status_init(const cr_server *srv)
{
    cr_status_srv = srv;
}

cr_status *cr_status_snapshot(void)
{
    const cr_server *srv = cr_status_srv;

    if (srv == NULL || srv->sb.map == NULL || srv->gen == NULL) {
        errno = ESRCH;
        return NULL;
    }
    return cr_scoreboard_status(&srv->sb);
}

void cr_status_free(cr_status *st)
{
    free(st);
}

/* The scoreboard and the public header count the same phases. */
_Static_assert((int)CR_STATUS_PHASE_WAIT == (int)CR_PHASE_WAIT &&
                   (int)CR_STATUS_PHASE_READ == (int)CR_PHASE_READ &&
                   (int)CR_STATUS_PHASE_QUEUE == (int)CR_PHASE_QUEUE &&
                   (int)CR_STATUS_PHASE_HANDLER == (int)CR_PHASE_HANDLER &&
                   (int)CR_STATUS_PHASE_WRITE == (int)CR_PHASE_WRITE &&
                   (int)CR_STATUS_PHASES == (int)CR_PHASES,
               "phase lists differ");

const char *cr_status_phase_name(cr_status_phase phase)
{
    static const char *const names[CR_STATUS_PHASES] = {"wait", "read", "queue", "handler",
                                                        "write"};

    return (unsigned)phase < CR_STATUS_PHASES ? names[phase] : NULL;
}

const char *cr_status_child_state_name(cr_status_child_state state)
{
    switch (state) {
    case CR_STATUS_CHILD_STARTING:
        return "starting";
    case CR_STATUS_CHILD_RUNNING:
        return "running";
    case CR_STATUS_CHILD_GRACEFUL:
        return "graceful";
    }
    return "unknown";
}

/* Apache's legend wording, so the page reads the same. */
const char *cr_status_letter_name(char state)
{
    switch (state) {
    case CR_SLOT_READY:
        return "Waiting for Connection";
    case CR_SLOT_STARTING:
        return "Starting up";
    case CR_SLOT_READ:
        return "Reading Request";
    case CR_SLOT_WRITE:
        return "Sending Reply";
    case CR_SLOT_KEEPALIVE:
        return "Keepalive (read)";
    case CR_SLOT_CLOSING:
        return "Closing connection";
    case CR_SLOT_GRACEFUL:
        return "Gracefully finishing";
    case CR_SLOT_DEAD:
        return "Open slot with no current process";
    }
    return "Unknown";
}
