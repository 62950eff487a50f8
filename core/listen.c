#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "corral/log.h"

typedef struct cr_sockaddr {
    struct sockaddr_storage ss;
    socklen_t len;
} cr_sockaddr;

static int cr_parse_port(const char *s, struct sockaddr_storage *ss)
{
    char *end;
    long port = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || port < 0 || port > 65535)
        return -1;
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    return 0;
}

static int cr_parse_unix(const char *path, cr_sockaddr *a)
{
    struct sockaddr_un *un = (struct sockaddr_un *)&a->ss;

    if (strlen(path) >= sizeof(un->sun_path))
        return -1;
    un->sun_family = AF_UNIX;
    strcpy(un->sun_path, path);
    a->len = (socklen_t)sizeof(*un);
    return 0;
}

static int cr_parse_inet(const char *name, cr_sockaddr *a)
{
    char host[64];
    const char *colon = strrchr(name, ':');
    size_t hlen;

    if (colon == NULL || (hlen = (size_t)(colon - name)) >= sizeof(host))
        return -1;
    memcpy(host, name, hlen);
    host[hlen] = '\0';
    if (host[0] == '[' && hlen > 2 && host[hlen - 1] == ']') {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->ss;

        host[hlen - 1] = '\0';
        in6->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, host + 1, &in6->sin6_addr) != 1)
            return -1;
        a->len = sizeof(*in6);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&a->ss;

        in->sin_family = AF_INET;
        if (strcmp(host, "*") == 0 || host[0] == '\0')
            in->sin_addr.s_addr = htonl(INADDR_ANY);
        else if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
            return -1;
        a->len = sizeof(*in);
    }
    return cr_parse_port(colon + 1, &a->ss);
}

static int cr_parse_addr(const char *name, cr_sockaddr *a)
{
    memset(a, 0, sizeof(*a));
    if (strncmp(name, "unix:", 5) == 0)
        return cr_parse_unix(name + 5, a);
    return cr_parse_inet(name, a);
}

/* A leftover socket file from a server that is gone would make bind fail;
 * one that still accepts connections belongs to a live server. */
static int cr_unix_remove_stale(const char *path)
{
    struct stat st;
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    int fd, live;

    if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode))
        return 0;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    strcpy(un.sun_path, path);
    live = connect(fd, (struct sockaddr *)&un, sizeof(un)) == 0;
    close(fd);
    if (live) {
        errno = EADDRINUSE;
        return -1;
    }
    return unlink(path);
}

/* Asks the kernel to stamp when each segment arrives, on the sockets this
 * listener accepts (they inherit it): the request's arrival time splits
 * the wait for a request between the client and the server (accept queue,
 * run queue, a busy event loop). Only the phase figures lose by a failure. */
static void cr_listener_stamp_arrivals(int fd, const char *name)
{
    int flags = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;

    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof(flags)) != 0)
        cr_log_errno(CR_LOG_INFO, errno, "listen '%s': no arrival timestamps (SO_TIMESTAMPING)",
                     name);
}

static int cr_listener_open(const char *name, int backlog, char *err, size_t errlen)
{
    cr_sockaddr a;
    int fd = -1, one = 1;

    if (cr_parse_addr(name, &a) != 0) {
        snprintf(err, errlen, "listen '%s': not an address", name);
        return -1;
    }
    fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    if (a.ss.ss_family == AF_UNIX) {
        if (cr_unix_remove_stale(((struct sockaddr_un *)&a.ss)->sun_path) != 0)
            goto fail;
    } else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
        goto fail;
    }
    if (a.ss.ss_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)
        goto fail;
    if (bind(fd, (struct sockaddr *)&a.ss, a.len) != 0)
        goto fail;
    if (a.ss.ss_family == AF_UNIX && chmod(((struct sockaddr_un *)&a.ss)->sun_path, 0666) != 0)
        goto fail;
    if (listen(fd, backlog) != 0)
        goto fail;
    cr_listener_stamp_arrivals(fd, name);
    return fd;
fail:
    snprintf(err, errlen, "listen '%s': %s", name, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

static const cr_listener *cr_listeners_find(const cr_listeners *ls, const char *name)
{
    for (size_t i = 0; i < ls->count; i++)
        if (strcmp(ls->items[i].name, name) == 0)
            return &ls->items[i];
    return NULL;
}

static void cr_listener_close(cr_listener *l, int unlink_path)
{
    if (l->fd >= 0 && close(l->fd) != 0)
        cr_log_errno(CR_LOG_WARN, errno, "close of listener %s", l->name);
    if (unlink_path && strncmp(l->name, "unix:", 5) == 0 && unlink(l->name + 5) != 0)
        cr_log_errno(CR_LOG_WARN, errno, "unlink %s", l->name + 5);
    free(l->name);
    l->name = NULL;
    l->fd = -1;
}

int cr_listeners_update(cr_listeners *ls, char *const *names, size_t count, int backlog, char *err,
                        size_t errlen)
{
    cr_listener *next = calloc(count ? count : 1, sizeof(*next));
    size_t opened = 0;

    if (next == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (; opened < count; opened++) {
        const cr_listener *old = cr_listeners_find(ls, names[opened]);

        next[opened].name = strdup(names[opened]);
        next[opened].fd =
            old != NULL ? old->fd : cr_listener_open(names[opened], backlog, err, errlen);
        if (next[opened].name == NULL || next[opened].fd < 0)
            goto fail;
    }
    for (size_t i = 0; i < ls->count; i++) {
        int kept = 0;

        for (size_t j = 0; j < count; j++)
            kept |= next[j].fd == ls->items[i].fd;
        if (kept)
            ls->items[i].fd = -1;
        cr_listener_close(&ls->items[i], !kept);
    }
    free(ls->items);
    ls->items = next;
    ls->count = count;
    return 0;
fail:
    for (size_t i = 0; i <= opened && i < count; i++) {
        if (next[i].fd >= 0 && cr_listeners_find(ls, names[i]) == NULL)
            close(next[i].fd);
        free(next[i].name);
    }
    free(next);
    return -1;
}

void cr_listeners_close(cr_listeners *ls, int unlink_paths)
{
    for (size_t i = 0; i < ls->count; i++)
        cr_listener_close(&ls->items[i], unlink_paths);
    free(ls->items);
    ls->items = NULL;
    ls->count = 0;
}
