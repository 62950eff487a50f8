/* mod_badabi (tests only): a module that claims module ABI 99, which no
 * corral has: the loader must refuse it at start, naming the module, its
 * file and both ABI versions. */
#include "corral/module.h"

static int cr_badabi_handle(cr_request *r)
{
    (void)r;
    return 500;
}

__attribute__((visibility("default"))) const cr_module cr_module_entry = {
    .magic = CR_MODULE_MAGIC,
    .abi = 99,
    .name = "badabi",
    .version = "1.0",
    .handle = cr_badabi_handle,
};
