/* The master process: binds the listeners, daemonizes, writes the pidfile,
 * forks and reaps children as the MPM's policy says, keeps the spare ones,
 * and turns signals into stops and restarts (TERM stop, HUP restart, USR1
 * graceful restart, WINCH graceful stop). It never serves a request. */
#ifndef CR_MASTER_H
#define CR_MASTER_H

#include <stdbool.h>
#include <stddef.h>

#include "server.h"

typedef struct cr_options {
    const char *config_file;
    char **overrides; /* -o KEY=VALUE, in order */
    size_t noverrides;
    bool test_only;      /* -t */
    bool show_version;   /* -V */
    bool foreground;     /* -D FOREGROUND */
    bool single_process; /* -X */
} cr_options;

/* Runs the server with srv->gen already loaded. Returns the exit status. */
int cr_master_run(cr_server *srv, const cr_options *opt);

#endif
