/* event: per child one event thread that accepts, reads requests and holds
 * idle keep-alive connections, plus a pool of handler threads; the core's
 * event driver does the work, this MPM sizes it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corral/corral.h"

typedef struct cr_event_key {
    const char *name;
    int *value;
    int min;
    int max;
} cr_event_key;

static int cr_event_read(const config_setting_t *settings, const cr_event_key *k, char *err,
                         size_t errlen)
{
    const config_setting_t *s = settings ? config_setting_get_member(settings, k->name) : NULL;

    if (s == NULL)
        return CR_OK;
    if (config_setting_type(s) != CONFIG_TYPE_INT) {
        cr_config_error(s, err, errlen, "must be an integer");
        return CR_ERROR;
    }
    *k->value = config_setting_get_int(s);
    if (*k->value < k->min || *k->value > k->max) {
        cr_config_error(s, err, errlen, "must be between %d and %d", k->min, k->max);
        return CR_ERROR;
    }
    return CR_OK;
}

/* The options of one generation's children: configure runs in the master
 * once per generation, and after a graceful restart children of the old
 * generation still run with theirs. */
static int cr_event_configure(const config_setting_t *settings, cr_mpm_policy *policy, void **state,
                              char *err, size_t errlen)
{
    static const char *const allowed[] = {"processes", "threads", "max_connections", "queue_limit",
                                          NULL};
    int processes = 2, threads = 16, max_connections = 10000, queue_limit = 0;
    const cr_event_key keys[] = {
        {"processes", &processes, 1, 1000},
        {"threads", &threads, 1, 1024},
        {"max_connections", &max_connections, 1, 1000000},
        {"queue_limit", &queue_limit, 0, 1000000},
    };
    cr_event_options *opts;

    if (settings != NULL && cr_config_check_keys(settings, allowed, err, errlen) != CR_OK)
        return CR_ERROR;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (cr_event_read(settings, &keys[i], err, errlen) != CR_OK)
            return CR_ERROR;
    opts = malloc(sizeof(*opts));
    if (opts == NULL) {
        snprintf(err, errlen, "mpm_event: %s", strerror(errno));
        return CR_ERROR;
    }
    *opts = (cr_event_options){threads, max_connections, queue_limit};
    *state = opts;
    policy->start_processes = processes;
    policy->min_processes = processes;
    policy->max_processes = processes;
    /* The handler threads plus the event thread's own slot. */
    policy->threads_per_child = threads + 1;
    policy->min_spare = 0;
    policy->max_spare = 0;
    return CR_OK;
}

static int cr_event_child_main(cr_child *child, void *state)
{
    return cr_child_serve_events(child, state);
}

static void cr_event_release(void *state)
{
    free(state);
}

__attribute__((visibility("default"))) const cr_mpm cr_mpm_entry = {
    .magic = CR_MPM_MAGIC,
    .abi = CR_MPM_ABI,
    .name = "event",
    .version = CR_VERSION,
    .configure = cr_event_configure,
    .child_main = cr_event_child_main,
    .release = cr_event_release,
};
