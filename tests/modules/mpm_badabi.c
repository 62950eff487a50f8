/* mpm_badabi (tests only): an MPM that claims MPM ABI 99, which no corral
 * has: the loader must refuse it at start, naming the MPM, its file and both
 * ABI versions. Its hooks are never called. */
#include "corral/mpm.h"

static int cr_badabi_configure(const config_setting_t *settings, cr_mpm_policy *policy,
                               void **state, char *err, size_t errlen)
{
    (void)settings;
    (void)policy;
    (void)state;
    (void)err;
    (void)errlen;
    return CR_ERROR;
}

static int cr_badabi_child_main(cr_child *child, void *state)
{
    (void)child;
    (void)state;
    return 1;
}

static void cr_badabi_release(void *state)
{
    (void)state;
}

__attribute__((visibility("default"))) const cr_mpm cr_mpm_entry = {
    .magic = CR_MPM_MAGIC,
    .abi = 99,
    .name = "badabi",
    .version = "1.0",
    .configure = cr_badabi_configure,
    .child_main = cr_badabi_child_main,
    .release = cr_badabi_release,
};
