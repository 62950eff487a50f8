#include "status_json.h"

int cr_status_json_set(json_t *obj, const char *key, json_t *val)
{
    /* json_object_set_new frees val when it fails, NULL included. */
    return json_object_set_new(obj, key, val) != 0;
}

json_t *cr_status_json_uint(uint64_t v)
{
    return json_integer((json_int_t)v);
}

json_t *cr_status_json_time(time_t t)
{
    return t != 0 ? json_integer((json_int_t)t) : json_null();
}

json_t *cr_status_json_done(json_t *obj, int bad)
{
    if (!bad)
        return obj;
    json_decref(obj);
    return NULL;
}

json_t *cr_status_json_phases(const uint64_t phase_ns[CR_STATUS_PHASES])
{
    json_t *o = json_object();
    int bad = o == NULL;

    for (int i = 0; !bad && i < CR_STATUS_PHASES; i++)
        bad |= cr_status_json_set(o, cr_status_phase_name((cr_status_phase)i),
                                  cr_status_json_uint(phase_ns[i] / 1000));
    return cr_status_json_done(o, bad);
}

json_t *cr_status_json_thread(const cr_status_thread *t)
{
    json_t *o = json_object();
    char state[2] = {t->state, '\0'};
    int bad = o == NULL;

    if (bad)
        return NULL;
    bad |= cr_status_json_set(o, "slot", json_integer(t->slot));
    bad |= cr_status_json_set(o, "state", json_string(state));
    bad |= cr_status_json_set(o, "requests", cr_status_json_uint(t->requests));
    bad |= cr_status_json_set(o, "bytes", cr_status_json_uint(t->bytes));
    bad |= cr_status_json_set(o, "phases_us", cr_status_json_phases(t->phase_ns));
    bad |= cr_status_json_set(o, "last_used", cr_status_json_time(t->last_used));
    bad |= cr_status_json_set(o, "client", json_string(t->client));
    bad |= cr_status_json_set(o, "request", json_string(t->request));
    return cr_status_json_done(o, bad);
}

int cr_status_json_child_members(json_t *o, const cr_status_child *c)
{
    int bad = 0;

    bad |= cr_status_json_set(o, "slot", json_integer(c->slot));
    bad |= cr_status_json_set(o, "pid", json_integer(c->pid));
    bad |= cr_status_json_set(o, "generation", json_integer(c->generation));
    bad |= cr_status_json_set(o, "state", json_string(cr_status_child_state_name(c->state)));
    bad |= cr_status_json_set(o, "started", cr_status_json_time(c->started));
    bad |= cr_status_json_set(o, "requests", cr_status_json_uint(c->requests));
    bad |= cr_status_json_set(o, "bytes", cr_status_json_uint(c->bytes));
    bad |= cr_status_json_set(o, "phases_us", cr_status_json_phases(c->phase_ns));
    return bad;
}

int cr_status_json_server_members(json_t *o, const cr_status_server *s)
{
    int bad = 0;

    bad |= cr_status_json_set(o, "version", json_string(s->version));
    bad |= cr_status_json_set(o, "mpm", json_string(s->mpm));
    bad |= cr_status_json_set(o, "current_time", json_integer(s->now));
    bad |= cr_status_json_set(o, "start_time", json_integer(s->start_time));
    bad |= cr_status_json_set(o, "restart_time", json_integer(s->restart_time));
    bad |= cr_status_json_set(o, "uptime", json_integer(s->uptime));
    bad |= cr_status_json_set(o, "generation", json_integer(s->generation));
    bad |= cr_status_json_set(o, "process_limit", json_integer(s->process_limit));
    bad |= cr_status_json_set(o, "thread_limit", json_integer(s->thread_limit));
    bad |= cr_status_json_set(o, "requests", cr_status_json_uint(s->requests));
    bad |= cr_status_json_set(o, "bytes", cr_status_json_uint(s->bytes));
    bad |= cr_status_json_set(o, "phases_us", cr_status_json_phases(s->phase_ns));
    bad |= cr_status_json_set(o, "busy_workers", json_integer(s->busy_workers));
    bad |= cr_status_json_set(o, "idle_workers", json_integer(s->idle_workers));
    bad |= cr_status_json_set(o, "graceful_workers", json_integer(s->graceful_workers));
    bad |= cr_status_json_set(o, "processes", json_integer(s->processes));
    bad |= cr_status_json_set(o, "stopping", json_integer(s->stopping));
    return bad;
}
