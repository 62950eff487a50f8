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

/* ---- JSON ---- */

static int cr_js_set(json_t *obj, const char *key, json_t *val)
{
    return json_object_set_new(obj, key, val) != 0;
}

static json_t *cr_js_uint(uint64_t v)
{
    return json_integer((json_int_t)v);
}

static json_t *cr_js_time(time_t t)
{
    return t != 0 ? json_integer((json_int_t)t) : json_null();
}

/* Hands obj back, or frees it and returns NULL when a member failed. */
static json_t *cr_js_done(json_t *obj, int bad)
{
    if (!bad)
        return obj;
    json_decref(obj);
    return NULL;
}

static json_t *cr_ctl_json_thread(const cr_status_thread *t)
{
    json_t *o = json_object();
    char state[2] = {t->state, '\0'};
    int bad = o == NULL;

    if (bad)
        return NULL;
    bad |= cr_js_set(o, "slot", json_integer(t->slot));
    bad |= cr_js_set(o, "state", json_string(state));
    bad |= cr_js_set(o, "state_name", json_string(cr_status_letter_name(t->state)));
    bad |= cr_js_set(o, "requests", cr_js_uint(t->requests));
    bad |= cr_js_set(o, "bytes", cr_js_uint(t->bytes));
    bad |= cr_js_set(o, "last_used", cr_js_time(t->last_used));
    bad |= cr_js_set(o, "client", json_string(t->client));
    bad |= cr_js_set(o, "request", json_string(t->request));
    return cr_js_done(o, bad);
}

static json_t *cr_ctl_json_threads(const cr_status_child *c)
{
    json_t *a = json_array();
    int bad = a == NULL;

    for (size_t t = 0; !bad && t < c->nthreads; t++)
        if (c->threads[t].state != CR_SLOT_DEAD)
            bad |= json_array_append_new(a, cr_ctl_json_thread(&c->threads[t])) != 0;
    return cr_js_done(a, bad);
}

static json_t *cr_ctl_json_child(const cr_status_child *c, const char *mpm, bool full)
{
    cr_ctl_counts k = cr_ctl_child_counts(c, mpm);
    json_t *o = json_object();
    int bad = o == NULL;

    if (bad)
        return NULL;
    bad |= cr_js_set(o, "pid", json_integer(c->pid));
    bad |= cr_js_set(o, "slot", json_integer(c->slot));
    bad |= cr_js_set(o, "generation", json_integer(c->generation));
    bad |= cr_js_set(o, "state", json_string(cr_status_child_state_name(c->state)));
    bad |= cr_js_set(o, "started", cr_js_time(c->started));
    bad |= cr_js_set(o, "busy", json_integer(k.busy));
    bad |= cr_js_set(o, "idle", json_integer(k.idle));
    bad |=
        cr_js_set(o, "connections", k.connections >= 0 ? json_integer(k.connections) : json_null());
    bad |= cr_js_set(o, "requests", cr_js_uint(c->requests));
    bad |= cr_js_set(o, "bytes", cr_js_uint(c->bytes));
    if (full)
        bad |= cr_js_set(o, "threads", cr_ctl_json_threads(c));
    return cr_js_done(o, bad);
}

/* {"wait": µs, ...}, as mod_status's ?json has it. */
static json_t *cr_ctl_json_phases(const cr_status_server *s)
{
    json_t *o = json_object();
    int bad = o == NULL;

    for (int i = 0; !bad && i < CR_STATUS_PHASES; i++)
        bad |= cr_js_set(o, cr_status_phase_name((cr_status_phase)i),
                         cr_js_uint(s->phase_ns[i] / 1000));
    return cr_js_done(o, bad);
}

static json_t *cr_ctl_json_server(const cr_status_server *s, pid_t master, const char *path)
{
    json_t *o = json_object();
    int bad = o == NULL;

    if (bad)
        return NULL;
    bad |= cr_js_set(o, "version", json_string(s->version));
    bad |= cr_js_set(o, "mpm", json_string(s->mpm));
    bad |= cr_js_set(o, "master_pid", json_integer(master));
    bad |= cr_js_set(o, "scoreboard_file", json_string(path));
    bad |= cr_js_set(o, "current_time", json_integer(s->now));
    bad |= cr_js_set(o, "start_time", json_integer(s->start_time));
    bad |= cr_js_set(o, "restart_time", json_integer(s->restart_time));
    bad |= cr_js_set(o, "uptime", json_integer(s->uptime));
    bad |= cr_js_set(o, "generation", json_integer(s->generation));
    bad |= cr_js_set(o, "process_limit", json_integer(s->process_limit));
    bad |= cr_js_set(o, "thread_limit", json_integer(s->thread_limit));
    bad |= cr_js_set(o, "requests", cr_js_uint(s->requests));
    bad |= cr_js_set(o, "bytes", cr_js_uint(s->bytes));
    bad |= cr_js_set(o, "phases_us", cr_ctl_json_phases(s));
    bad |= cr_js_set(o, "busy_workers", json_integer(s->busy_workers));
    bad |= cr_js_set(o, "idle_workers", json_integer(s->idle_workers));
    bad |= cr_js_set(o, "graceful_workers", json_integer(s->graceful_workers));
    bad |= cr_js_set(o, "processes", json_integer(s->processes));
    bad |= cr_js_set(o, "stopping", json_integer(s->stopping));
    return cr_js_done(o, bad);
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
    bad |= cr_js_set(root, "server", cr_ctl_json_server(&st->server, master, path));
    if (full)
        bad |= cr_js_set(root, "scoreboard", json_string(st->scoreboard));
    bad |= cr_js_set(root, "children", children);
    return cr_js_done(root, bad);
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

    if (cr_ctl_find_master(ctl, &m) != 0)
        return 1;
    if (m.found != CR_CTL_RUNNING)
        return cr_ctl_not_running(ctl, &m);
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
