/* The status snapshot (corral/status.h) as jansson objects: the members
 * mod_status's ?json and `corralctl --json status` share, so both spell
 * the server, a child and a handler slot the same way. Each caller adds
 * what only it knows (corralctl: the master's pid, per-child counts). */
#ifndef CR_STATUS_JSON_H
#define CR_STATUS_JSON_H

#include <jansson.h>
#include <stdint.h>
#include <time.h>

#include "corral/status.h"

/* Sets obj[key] = val, taking val (NULL counts as a failure); 1 when it
 * failed, so that failures can be or-ed together. */
int cr_status_json_set(json_t *obj, const char *key, json_t *val);

json_t *cr_status_json_uint(uint64_t v);

/* A Unix time, or null for 0 (never). */
json_t *cr_status_json_time(time_t t);

/* obj, or NULL (obj freed) when bad. */
json_t *cr_status_json_done(json_t *obj, int bad);

/* {"wait": µs, "read": µs, ...}. */
json_t *cr_status_json_phases(const uint64_t phase_ns[CR_STATUS_PHASES]);

/* A handler slot: slot, state, requests, bytes, phases_us, last_used,
 * client, request. */
json_t *cr_status_json_thread(const cr_status_thread *t);

/* Adds a child's slot, pid, generation, state, started, requests, bytes
 * and phases_us to o; 1 when one failed. */
int cr_status_json_child_members(json_t *o, const cr_status_child *c);

/* Adds the server's members (version, mpm, times, generation, limits,
 * totals, phases_us, worker and process counts) to o; 1 when one failed. */
int cr_status_json_server_members(json_t *o, const cr_status_server *s);

#endif
