/* The listening sockets. The master opens them once and keeps them across
 * restarts (a restart only opens new addresses and closes dropped ones), so
 * the kernel keeps queueing connections while children come and go. */
#ifndef CR_LISTEN_H
#define CR_LISTEN_H

#include <stddef.h>

typedef struct cr_listener {
    char *name; /* as in the config: "127.0.0.1:8080", "[::1]:80", "unix:/path" */
    int fd;
} cr_listener;

typedef struct cr_listeners {
    cr_listener *items;
    size_t count;
} cr_listeners;

/* Makes ls hold exactly the addresses in names: keeps sockets already open
 * for a name, binds the new ones, closes the others. On failure ls is left
 * as it was and err says which address failed and why. */
int cr_listeners_update(cr_listeners *ls, char *const *names, size_t count, int backlog, char *err,
                        size_t errlen);

/* Closes every socket (and removes unix socket files when unlink_paths). */
void cr_listeners_close(cr_listeners *ls, int unlink_paths);

#endif
