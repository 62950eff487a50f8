/* corralctl status and fullstatus: the running master's scoreboard file,
 * read directly (no HTTP route needed) through the same snapshot code as
 * mod_status, printed as text or as JSON (--json). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "corral/mpm.h"
#include "corral/status.h"
#include "corralctl.h"
#include "status_json.h"

/* What corralctl adds up per child from its handler slots. */
typedef struct cr_ctl_counts {
    unsigned busy;
    unsigned idle;
    int connections; /* -1 when the slots cannot tell */
} cr_ctl_counts;

/* A slot holds a connection while it reads, writes, waits for the next
 * request or closes. Under the event MPM idle connections sit on the event
 * loop, not in a slot, and a finishing child shows G for every slot: the
 * count is unknown there. */
static cr_ctl_counts cr_ctl_child_counts(const cr_status_child *c, const char *mpm)
{
    cr_ctl_counts k = {0, 0, 0};
    bool countable = strcmp(mpm, "event") != 0 && c->state != CR_STATUS_CHILD_GRACEFUL;

    for (size_t t = 0; t < c->nthreads; t++) {
        char s = c->threads[t].state;

        if (s == CR_SLOT_READY)
            k.idle++;
        else if (s != CR_SLOT_DEAD && s != CR_SLOT_STARTING)
            k.busy++;
        if (s == CR_SLOT_READ || s == CR_SLOT_WRITE || s == CR_SLOT_KEEPALIVE ||
            s == CR_SLOT_CLOSING)
            k.connections++;
    }
    if (!countable)
        k.connections = -1;
    return k;
}

/* ---- text ---- */

static const char *cr_ctl_time(char *buf, size_t cap, time_t t)
{
    struct tm tm;

    if (t == 0 || localtime_r(&t, &tm) == NULL || strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(buf, cap, "-");
    return buf;
}

static const char *cr_ctl_duration(char *buf, size_t cap, time_t s)
{
    if (s >= 86400)
        snprintf(buf, cap, "%lldd %02lld:%02lld:%02lld", (long long)s / 86400,
                 (long long)s % 86400 / 3600, (long long)s % 3600 / 60, (long long)s % 60);
    else
        snprintf(buf, cap, "%02lld:%02lld:%02lld", (long long)s / 3600, (long long)s % 3600 / 60,
                 (long long)s % 60);
    return buf;
}

/* Where the time of an average request went since the start. */
static void cr_ctl_text_phases(const cr_status_server *s)
{
    if (s->requests == 0)
        return;
    printf("mean time per request:");
    for (int i = 0; i < CR_STATUS_PHASES; i++)
        printf("%s %s %.1f us", i ? "," : "", cr_status_phase_name((cr_status_phase)i),
               (double)s->phase_ns[i] / 1e3 / (double)s->requests);
    printf("\n");
}

static void cr_ctl_text_server(const cr_status_server *s, pid_t master, const char *path)
{
    char started[32], restarted[32], up[32];

    printf("%s, mpm %s, master pid %ld, generation %u\n", s->version, s->mpm, (long)master,
           (unsigned)s->generation);
    printf("started %s, up %s, restarted %s\n",
           cr_ctl_time(started, sizeof(started), s->start_time),
           cr_ctl_duration(up, sizeof(up), s->uptime),
           cr_ctl_time(restarted, sizeof(restarted), s->restart_time));
    printf("%llu requests, %llu bytes served since the start\n", (unsigned long long)s->requests,
           (unsigned long long)s->bytes);
    cr_ctl_text_phases(s);
    printf("%u children (%u gracefully finishing); workers: %u busy, %u idle, %u gracefully "
           "finishing\n",
           s->processes, s->stopping, s->busy_workers, s->idle_workers, s->graceful_workers);
    printf("scoreboard %s: %u process slots x %u handler slots\n", path, (unsigned)s->process_limit,
           (unsigned)s->thread_limit);
}

static void cr_ctl_text_children(const cr_status *st)
{
    printf("\n%8s %5s %-9s %5s %5s %6s %10s %14s\n", "PID", "GEN", "STATE", "BUSY", "IDLE", "CONNS",
           "REQUESTS", "BYTES");
    for (size_t i = 0; i < st->nchildren; i++) {
        const cr_status_child *c = &st->children[i];
        cr_ctl_counts k = cr_ctl_child_counts(c, st->server.mpm);
        char conns[16] = "-";

        if (k.connections >= 0)
            snprintf(conns, sizeof(conns), "%d", k.connections);
        printf("%8ld %5u %-9s %5u %5u %6s %10llu %14llu\n", (long)c->pid, (unsigned)c->generation,
               cr_status_child_state_name(c->state), k.busy, k.idle, conns,
               (unsigned long long)c->requests, (unsigned long long)c->bytes);
    }
}

/* Every slot's letter, 64 to a line as Apache prints them, and what the
 * letters mean. */
static void cr_ctl_text_grid(const char *grid)
{
    static const char letters[] = "_SRWKCG.";
    size_t n = strlen(grid);

    printf("\nScoreboard:\n");
    for (size_t i = 0; i < n; i += 64)
        printf("  %.64s\n", grid + i);
    for (const char *l = letters; *l != '\0'; l++)
        printf("%s\"%c\" %s", l == letters ? "" : ", ", *l, cr_status_letter_name(*l));
    printf("\n");
}

/* One line per handler slot of the live children; slots beyond the
 * child's threads ('.') are left out. */
static void cr_ctl_text_threads(const cr_status *st)
{
    printf("\n%8s %4s %2s %-24s %10s %14s %-8s %-16s %s\n", "PID", "SLOT", "ST", "STATE",
           "REQUESTS", "BYTES", "LAST", "CLIENT", "REQUEST");
    for (size_t i = 0; i < st->nchildren; i++) {
        const cr_status_child *c = &st->children[i];

        for (size_t t = 0; t < c->nthreads; t++) {
            const cr_status_thread *th = &c->threads[t];
            char last[16] = "-";
            struct tm tm;

            if (th->state == CR_SLOT_DEAD)
                continue;
            if (th->last_used != 0 && localtime_r(&th->last_used, &tm) != NULL)
                strftime(last, sizeof(last), "%H:%M:%S", &tm);
            printf("%8ld %4d %2c %-24s %10llu %14llu %-8s %-16s %s\n", (long)c->pid, th->slot,
                   th->state, cr_status_letter_name(th->state), (unsigned long long)th->requests,
                   (unsigned long long)th->bytes, last, th->client[0] ? th->client : "-",
                   th->request[0] ? th->request : "-");
        }
    }
    cr_ctl_text_grid(st->scoreboard);
}

/* ---- JSON: mod_status's members (modules/status_json.c) and ours ---- */

static json_t *cr_ctl_json_thread(const cr_status_thread *t)
{
    json_t *o = cr_status_json_thread(t);

    if (o == NULL)
        return NULL;
    return cr_status_json_done(
        o, cr_status_json_set(o, "state_name", json_string(cr_status_letter_name(t->state))));
}

static json_t *cr_ctl_json_threads(const cr_status_child *c)
{
    json_t *a = json_array();
    int bad = a == NULL;

    for (size_t t = 0; !bad && t < c->nthreads; t++)
        if (c->threads[t].state != CR_SLOT_DEAD)
            bad |= json_array_append_new(a, cr_ctl_json_thread(&c->threads[t])) != 0;
    return cr_status_json_done(a, bad);
}

static json_t *cr_ctl_json_child(const cr_status_child *c, const char *mpm, bool full)
{
    cr_ctl_counts k = cr_ctl_child_counts(c, mpm);
    json_t *o = json_object();
    int bad = o == NULL;

    if (bad)
        return NULL;
    bad |= cr_status_json_child_members(o, c);
    bad |= cr_status_json_set(o, "busy", json_integer(k.busy));
    bad |= cr_status_json_set(o, "idle", json_integer(k.idle));
    bad |= cr_status_json_set(o, "connections",
                              k.connections >= 0 ? json_integer(k.connections) : json_null());
    if (full)
        bad |= cr_status_json_set(o, "threads", cr_ctl_json_threads(c));
    return cr_status_json_done(o, bad);
}

static json_t *cr_ctl_json_server(const cr_status_server *s, pid_t master, const char *path)
{
    json_t *o = json_object();
    int bad = o == NULL;

    if (bad)
        return NULL;
    bad |= cr_status_json_server_members(o, s);
    bad |= cr_status_json_set(o, "master_pid", json_integer(master));
    bad |= cr_status_json_set(o, "scoreboard_file", json_string(path));
    return cr_status_json_done(o, bad);
}

static json_t *cr_ctl_json_tree(const cr_status *st, pid_t master, const char *path, bool full)
{
    json_t *root = json_object(), *children = json_array();
    int bad = root == NULL || children == NULL;

    for (size_t i = 0; !bad && i < st->nchildren; i++)
        bad |= json_array_append_new(
                   children, cr_ctl_json_child(&st->children[i], st->server.mpm, full)) != 0;
    if (bad) {
        json_decref(children);
        json_decref(root);
        return NULL;
    }
    bad |= cr_status_json_set(root, "server", cr_ctl_json_server(&st->server, master, path));
    if (full)
        bad |= cr_status_json_set(root, "scoreboard", json_string(st->scoreboard));
    bad |= cr_status_json_set(root, "children", children);
    return cr_status_json_done(root, bad);
}

static int cr_ctl_json(const cr_status *st, pid_t master, const char *path, bool full)
{
    json_t *root = cr_ctl_json_tree(st, master, path, full);
    char *text = root != NULL ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;

    json_decref(root);
    if (text == NULL)
        return cr_ctl_fail("out of memory while writing JSON");
    puts(text);
    free(text);
    return 0;
}

int cr_ctl_status(const cr_ctl *ctl, bool full)
{
    cr_ctl_master m;
    cr_scoreboard sb;
    cr_status *st;
    int rc = 0;

    if (cr_ctl_find_running(ctl, &m) != 0)
        return 1;
    if (cr_ctl_attach(ctl, &m, &sb) != 0)
        return 1;
    st = cr_scoreboard_status(&sb);
    cr_scoreboard_destroy(&sb);
    if (st == NULL)
        return cr_ctl_fail("out of memory while reading the scoreboard");
    if (ctl->json) {
        rc = cr_ctl_json(st, m.pid, ctl->cfg.scoreboard, full);
    } else {
        cr_ctl_text_server(&st->server, m.pid, ctl->cfg.scoreboard);
        cr_ctl_text_children(st);
        if (full)
            cr_ctl_text_threads(st);
    }
    cr_status_free(st);
    return rc;
}
