/* The process-wide server object and its generations. A generation is one
 * reading of the config with the MPM and modules it loaded and the routes
 * built from it; a restart builds a new one beside the running one and
 * swaps only if it loaded cleanly. */
#ifndef CR_SERVER_H
#define CR_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "corral/module.h"
#include "corral/mpm.h"
#include "listen.h"
#include "router.h"
#include "scoreboard.h"

typedef struct cr_module_ref {
    char *name;
    char *file;
    const cr_module *module;
    void *dl;
} cr_module_ref;

typedef struct cr_generation {
    uint32_t number;
    cr_config cfg;
    const cr_mpm *mpm;
    char *mpm_file;
    void *mpm_dl;
    cr_mpm_policy policy;
    void *mpm_state; /* what mpm->configure made for this generation's children */
    cr_module_ref *modules;
    size_t nmodules;
    cr_router router;
} cr_generation;

typedef struct cr_server {
    cr_generation *gen;
    cr_listeners listeners;
    cr_scoreboard sb;
    char *exe_dir;       /* folder of the corral binary, to find uninstalled .so files */
    bool foreground;     /* -D FOREGROUND */
    bool single_process; /* -X */
    int access_log;      /* descriptor, -1 when off */
} cr_server;

/* Names the server cr_status_snapshot copies (implemented in status.c).
 * Called once by main before the master runs, so that children inherit it. */
void cr_status_init(const cr_server *srv);

#endif
