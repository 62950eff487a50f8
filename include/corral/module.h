/* The handler module interface. A module is a shared object (mod_NAME.so)
 * that exports one `const cr_module cr_module_entry`; the core loads it by
 * the name listed in the config's `modules` and checks magic and ABI first.
 * A module stays loaded for the life of the master: a restart (HUP, USR1)
 * re-reads its settings but keeps its code; a rebuilt module takes a stop
 * and a start. Tutorial: docs/modules.md. */
#ifndef CORRAL_MODULE_H
#define CORRAL_MODULE_H

#include <libconfig.h>

#include "corral/request.h"
#include "corral/types.h"

#define CR_MODULE_MAGIC 0x43524d44u /* "CRMD" */
#define CR_MODULE_ABI   4u          /* bumped on any incompatible change */

/* The handler never blocks (no disk or network waits beyond what the core
 * does): an event MPM may run it inline on its event thread. */
#define CR_MODULE_NONBLOCKING 0x1u

/* The handler reads the request body itself, a piece at a time, with
 * cr_request_read: the core does not collect it first (uploads bigger than
 * memory, request streams). Its handler runs on a thread that may block. */
#define CR_MODULE_STREAM_BODY 0x2u

/* What route_init is given for each route that names the module. */
typedef struct cr_route_ctx {
    const config_setting_t
        *settings;          /* the route's group: path, module and the module's own keys */
    const char *config_dir; /* folder of the config file, for relative paths */
    void *route_data;       /* out: handed to handle() as r->route_data */
    uint32_t flags;         /* out: CR_MODULE_* flags for this route only, added
                             * to the module's (e.g. NONBLOCKING, STREAM_BODY) */
    char *err;              /* out: why the settings were refused */
    size_t errlen;
} cr_route_ctx;

typedef struct cr_module {
    uint32_t magic; /* CR_MODULE_MAGIC */
    uint32_t abi;   /* CR_MODULE_ABI the module was built against */
    const char *name;
    const char *version;
    uint32_t flags; /* CR_MODULE_* */

    /* In the master before fork, with the top-level group mod_NAME (NULL when
     * absent). Returns CR_OK or CR_ERROR with a message in err. */
    int (*init)(const config_setting_t *settings, const char *config_dir, char *err, size_t errlen);
    /* In the master, once for each route naming the module. CR_OK or CR_ERROR
     * (then free what was allocated: route_exit is not called). settings
     * and its strings live as long as the generation; route_data may
     * point into them. */
    int (*route_init)(cr_route_ctx *ctx);
    /* In the master when the route's generation ends (a restart or the
     * stop), to free what route_init stored. Children never call it. */
    void (*route_exit)(void *route_data);
    /* In each child after fork, and before it exits. */
    void (*child_init)(void);
    void (*child_exit)(void);
    /* Serves a request: CR_DONE (response built), CR_DECLINED (try the next
     * matching route), CR_SUSPENDED (the module finishes it later with
     * cr_response_finish, see request.h) or an HTTP status for the core's
     * standard page. */
    int (*handle)(cr_request *r);
} cr_module;

/* Checks that every key of the group `settings` is in allowed (a NULL-ended
 * list). On an unknown key writes "FILE:LINE: unknown key 'K'" to err and
 * returns CR_ERROR. */
int cr_config_check_keys(const config_setting_t *settings, const char *const *allowed, char *err,
                         size_t errlen);

/* cr_config_check_keys for a route in route_init: the route's group may
 * hold the core's route keys (path, module, host, allow, deny) and those
 * in allowed (a NULL-ended list of the module's own). The error goes to
 * ctx->err. */
int cr_route_check_keys(const cr_route_ctx *ctx, const char *const *allowed);

/* Formats "FILE:LINE: key 'NAME': " followed by fmt into err, for errors
 * about one setting. */
void cr_config_error(const config_setting_t *setting, char *err, size_t errlen, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));

/* Resolves path against dir when relative; returns a malloc'ed string. */
char *cr_config_path(const char *dir, const char *path);

#endif
