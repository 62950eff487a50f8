/* The server configuration: reads the libconfig file, applies -o KEY=VALUE
 * overrides, checks every key against the schema (unknown keys, wrong types
 * and out-of-range values are errors naming file, line and key) and fills a
 * cr_config with defaults for whatever was left out. */
#ifndef CR_CONFIG_H
#define CR_CONFIG_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>

#include "addr_rule.h"

typedef struct cr_route_conf {
    char *path;   /* prefix, starts with '/' */
    char *host;   /* virtual host names, space-separated ("*.d" for any below d); NULL: any */
    char *module; /* module name */
    cr_addr_rules access;             /* `allow` and `deny`, parsed; both empty: any client */
    const config_setting_t *settings; /* the route's group, for the module */
} cr_route_conf;

typedef struct cr_config {
    char *file;   /* absolute path of the config file */
    char *dir;    /* its folder: relative paths resolve against it */
    config_t doc; /* kept alive: route and MPM settings point into it */

    char **listen; /* "127.0.0.1:8080", "[::1]:8080", "unix:/path" */
    size_t nlisten;
    int backlog; /* default 511 */

    char *mpm;         /* default "prefork" */
    char *module_path; /* extra folder searched first for mpm_*.so / mod_*.so, NULL if unset */
    char *user;        /* NULL: keep the starting user */
    char *group;
    char *pidfile;     /* absolute; default <dir>/logs/corral.pid */
    char *scoreboard;  /* absolute; default the pidfile's path, .pid -> .scoreboard */
    char *server_name; /* default: the host name */

    struct {
        int header;    /* s to receive a whole request head; default 10 */
        int body;      /* s between body reads; default 30 */
        int keepalive; /* s idle between requests; default 5 */
        int write;     /* s a write may stall; default 30 */
        int graceful;  /* s a graceful stop waits; 0 = forever; default 0 */
    } timeouts;

    struct {
        size_t header_bytes;     /* default 8192, 1024..1048576 */
        size_t uri_bytes;        /* default 4096, 64..header_bytes */
        size_t body_bytes;       /* default 1048576, 0..1 GiB */
        long requests_per_child; /* 0 = unlimited */
        long keepalive_requests; /* per connection, default 1000, 0 = unlimited */
    } limits;

    struct {
        char *error;  /* absolute path, or "-" for stderr; default <dir>/logs/error.log */
        int level;    /* cr_log_level; default CR_LOG_INFO ("info") */
        char *access; /* absolute path, or NULL for none; default <dir>/logs/access.log */
    } log;

    char **modules; /* names, e.g. "static" for mod_static.so */
    size_t nmodules;

    cr_route_conf *routes;
    size_t nroutes;
} cr_config;

/* Loads file, then applies overrides (each "KEY=VALUE" as for -o: VALUE in
 * config syntax, a bare word taken as a string, dotted KEY into groups).
 * On failure returns -1 with a message such as
 * "etc/corral.conf:12: key 'timeouts.header': must be an integer 1..3600"
 * in err. The mpm_<name> and mod_<name> groups are accepted here and checked
 * by their owners. cfg is overwritten without being freed first; on failure
 * it is left zeroed, so cr_config_free is safe on it either way. */
int cr_config_load(cr_config *cfg, const char *file, char *const *overrides, size_t noverrides,
                   char *err, size_t errlen);

void cr_config_free(cr_config *cfg);

/* The top-level group `name` (e.g. "mpm_prefork"), or NULL. */
const config_setting_t *cr_config_group(const cr_config *cfg, const char *name);

/* The scoreboard file of a server whose config leaves it out: the
 * pidfile's path with .scoreboard in place of .pid. malloc'ed; NULL when
 * out of memory. */
char *cr_config_default_scoreboard(const char *pidfile);

/* Parses a log level name ("emerg".."debug"); -1 if unknown. */
int cr_config_log_level(const char *name);

#endif
