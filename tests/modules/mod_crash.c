/* mod_crash (tests only): a handler that dereferences NULL, so that a test
 * can check that the master logs the child's death with its signal and
 * replaces it while the other children keep serving. */
#include "corral/module.h"

/* Volatile: the compiler cannot know it is NULL, so it keeps the store. */
static int *volatile cr_crash_null;

/* Without UBSan's null check (sanitizer builds), which would stop the
 * child with a report of its own instead of the SIGSEGV this is about. */
__attribute__((no_sanitize("undefined"))) static int cr_crash_handle(cr_request *r)
{
    (void)r;
    *cr_crash_null = 1;
    return 500;
}

__attribute__((visibility("default"))) const cr_module cr_module_entry = {
    .magic = CR_MODULE_MAGIC,
    .abi = CR_MODULE_ABI,
    .name = "crash",
    .version = "1.0",
    .handle = cr_crash_handle,
};
