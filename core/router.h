/* Maps a request to the modules that may serve it: routes from the config,
 * tried in config order, each a path prefix (matched on a segment boundary
 * unless it ends in '/') and optionally a host name. Which clients a route
 * serves (its access rules) is checked by the caller once a route matched:
 * a refused client gets 403 rather than the next route. */
#ifndef CR_ROUTER_H
#define CR_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "addr_rule.h"
#include "corral/module.h"
#include "corral/types.h"

typedef struct cr_route {
    cr_str path;
    const char *host; /* space-separated names ("*.domain": any below it); NULL: any host */
    const cr_module *module;
    void *route_data;
    bool nonblocking;     /* the module, or route_init for this route, says it never blocks */
    bool stream_body;     /* the handler reads the body itself (cr_request_read) */
    cr_addr_rules access; /* the clients it serves (`allow`, `deny`); owned by the config */
} cr_route;

typedef struct cr_router {
    cr_route *routes;
    size_t nroutes;
} cr_router;

/* Index of the first route at or after `from` that matches host and path,
 * or -1. host is the Host header (port ignored, case-insensitive). */
int cr_router_match(const cr_router *rt, size_t from, cr_str host, cr_str path);

/* True when path lies under the route prefix. */
int cr_route_prefix_matches(cr_str prefix, cr_str path);

#endif
