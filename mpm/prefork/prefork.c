/* prefork: single-threaded children, each serving one connection at a time
 * with blocking waits. The master keeps between min_spare and max_spare
 * idle children, up to max_workers. */
#include <stdio.h>

#include "corral/corral.h"

#define CR_PREFORK_HARD_LIMIT 20000

typedef struct cr_prefork_key {
    const char *name;
    int *value;
    int min;
    int max;
} cr_prefork_key;

static int cr_prefork_read(const config_setting_t *settings, const cr_prefork_key *k, char *err,
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

/* Sets no state: the children need nothing of the config beyond the policy. */
static int cr_prefork_configure(const config_setting_t *settings, cr_mpm_policy *policy,
                                void **state, char *err, size_t errlen)
{
    static const char *const allowed[] = {"start", "min_spare", "max_spare", "max_workers", NULL};
    int start = 4, min_spare = 2, max_spare = 8, max_workers = 150;
    const cr_prefork_key keys[] = {
        {"start", &start, 1, CR_PREFORK_HARD_LIMIT},
        {"min_spare", &min_spare, 0, CR_PREFORK_HARD_LIMIT},
        {"max_spare", &max_spare, 1, CR_PREFORK_HARD_LIMIT},
        {"max_workers", &max_workers, 1, CR_PREFORK_HARD_LIMIT},
    };

    if (settings != NULL && cr_config_check_keys(settings, allowed, err, errlen) != CR_OK)
        return CR_ERROR;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (cr_prefork_read(settings, &keys[i], err, errlen) != CR_OK)
            return CR_ERROR;
    if (min_spare > max_spare || start > max_workers) {
        cr_config_error(settings, err, errlen,
                        "needs min_spare <= max_spare and start <= max_workers");
        return CR_ERROR;
    }
    *state = NULL;
    policy->start_processes = start;
    policy->min_processes = 1;
    policy->max_processes = max_workers;
    policy->threads_per_child = 1;
    policy->min_spare = min_spare;
    policy->max_spare = max_spare;
    return CR_OK;
}

static int cr_prefork_child_main(cr_child *child, void *state)
{
    int fd;

    (void)state;
    cr_child_set_state(child, 0, CR_SLOT_READY);
    while (!cr_child_stopping(child) && !cr_child_recycle_due(child)) {
        fd = cr_child_accept(child);
        if (fd < 0)
            continue;
        cr_child_serve_blocking(child, 0, fd);
        cr_child_set_state(child, 0, CR_SLOT_READY);
    }
    /* A graceful stop: clients that connected before it are answered, not
     * reset when the listeners close. */
    while ((fd = cr_child_accept_pending(child)) >= 0)
        cr_child_serve_blocking(child, 0, fd);
    return 0;
}

__attribute__((visibility("default"))) const cr_mpm cr_mpm_entry = {
    .magic = CR_MPM_MAGIC,
    .abi = CR_MPM_ABI,
    .name = "prefork",
    .version = CR_VERSION,
    .configure = cr_prefork_configure,
    .child_main = cr_prefork_child_main,
};
