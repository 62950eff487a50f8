#include "router.h"

#include <string.h>
#include <strings.h>

int cr_route_prefix_matches(cr_str prefix, cr_str path)
{
    if (path.len < prefix.len || memcmp(path.ptr, prefix.ptr, prefix.len) != 0)
        return 0;
    /* "/hello" serves "/hello" and "/hello/x" but not "/helloworld". */
    if (prefix.len == 0 || prefix.ptr[prefix.len - 1] == '/' || path.len == prefix.len)
        return 1;
    return path.ptr[prefix.len] == '/';
}

/* One configured name against the request's host (port dropped): equal,
 * or for "*.domain" any name ending in ".domain". Case-insensitive. */
static int cr_host_name_matches(const char *want, size_t wlen, const char *host, size_t len)
{
    if (wlen > 2 && want[0] == '*' && want[1] == '.') {
        want++;
        wlen--;
        return len > wlen && strncasecmp(host + len - wlen, want, wlen) == 0;
    }
    return wlen == len && strncasecmp(want, host, len) == 0;
}

static int cr_route_host_matches(const char *want, cr_str host)
{
    size_t len = host.len;
    const char *colon;

    if (want == NULL)
        return 1;
    /* Drop the port, but not the colons of a bracketed IPv6 literal. */
    colon = memrchr(host.ptr, ':', host.len);
    if (colon != NULL && memchr(colon, ']', host.len - (size_t)(colon - host.ptr)) == NULL)
        len = (size_t)(colon - host.ptr);
    /* want is a space-separated list of names. */
    while (*want) {
        size_t wlen = strcspn(want, " ");

        if (cr_host_name_matches(want, wlen, host.ptr, len))
            return 1;
        want += wlen;
        want += *want == ' ';
    }
    return 0;
}

int cr_router_match(const cr_router *rt, size_t from, cr_str host, cr_str path)
{
    for (size_t i = from; i < rt->nroutes; i++) {
        const cr_route *route = &rt->routes[i];

        if (cr_route_host_matches(route->host, host) && cr_route_prefix_matches(route->path, path))
            return (int)i;
    }
    return -1;
}
