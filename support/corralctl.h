/* corralctl: starts, stops, restarts and inspects a corral server the way
 * apachectl does httpd. What its files share: the command-line context,
 * finding, signalling and starting the master (corralctl_master.c), and
 * the report read from the scoreboard file (corralctl_status.c). */
#ifndef CR_CORRALCTL_H
#define CR_CORRALCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "scoreboard.h"
#include "server.h"

typedef struct cr_ctl {
    const char *config_file; /* -f, or corral's default */
    char **overrides;        /* -o KEY=VALUE, in order; passed on to corral */
    size_t noverrides;
    bool json;     /* --json */
    char *exe_dir; /* folder of this program: corral and the build's modules are beside it */
    cr_config cfg; /* the config read with the core's loader */
} cr_ctl;

/* What the pidfile says. */
typedef enum cr_ctl_found {
    CR_CTL_NOT_RUNNING, /* no pidfile */
    CR_CTL_STALE,       /* a pidfile naming no live corral master */
    CR_CTL_RUNNING,
} cr_ctl_found;

typedef struct cr_ctl_master {
    cr_ctl_found found;
    pid_t pid;
    unsigned long long start; /* its start time in /proc, to tell a reused pid */
    char why[512];            /* CR_CTL_STALE: what is wrong with the pidfile */
} cr_ctl_master;

/* Prints "corralctl: " and the message to stderr; returns 1, the exit
 * status of a failed command. */
int cr_ctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* How often the bounded waits look again. */
#define CR_CTL_POLL_MS 50

/* Sleeps ms milliseconds, signals or not. */
void cr_ctl_sleep_ms(int ms);

/* A monotonic clock in milliseconds, for the bounded waits. */
long long cr_ctl_now_ms(void);

/* ---- corralctl_config.c ---- */

/* corral's default config file: etc/corral.conf when it exists here, else
 * the installed one. */
const char *cr_ctl_default_config(void);

/* Loads ctl->cfg with the core's loader. 0, or 1 after printing the error
 * with its file and line. */
int cr_ctl_load_config(cr_ctl *ctl);

/* Loads the whole generation (MPM, modules, routes), as `corral -t` and a
 * restart do. 0, or 1 after printing the error. */
int cr_ctl_load_generation(const cr_ctl *ctl, cr_generation *g);

/* For a config that does not validate: fills only cfg.pidfile,
 * cfg.scoreboard and cfg.log.error (and cfg.dir), from the file as
 * libconfig reads it and the -o overrides of those keys. 0, or -1 when
 * even that cannot be read. */
int cr_ctl_locate(cr_ctl *ctl);

/* ---- corralctl_master.c ---- */

/* Reads the pidfile and checks the process it names. 0, or -1 after
 * printing why the pidfile could not be read. */
int cr_ctl_find_master(const cr_ctl *ctl, cr_ctl_master *m);

/* cr_ctl_find_master for a command that needs a running master: 0 when
 * it runs, else 1 after printing "not running" and why. */
int cr_ctl_find_running(const cr_ctl *ctl, cr_ctl_master *m);

/* Sends sig to the master. 0, or 1 after printing why not. */
int cr_ctl_signal(const cr_ctl_master *m, int sig, const char *name);

/* True while the process pid that started at `start` (0: any) runs and is
 * no zombie. */
bool cr_ctl_alive(pid_t pid, unsigned long long start);

/* Maps the master's scoreboard and checks that it belongs to m. 0, or 1
 * after printing why not. */
int cr_ctl_attach(const cr_ctl *ctl, const cr_ctl_master *m, cr_scoreboard *sb);

/* Sends TERM and waits until the master and its children are gone. */
int cr_ctl_stop_master(const cr_ctl *ctl, const cr_ctl_master *m);

/* The corral binary: beside this program, else the installed one. NULL
 * after printing where it looked. */
char *cr_ctl_corral_binary(const cr_ctl *ctl);

/* Runs corral with -f and the -o overrides of ctl (none when ctl is NULL)
 * and the extra arguments (NULL ended), and waits for it: when it daemonizes, it exits once the
 * master serves. Its exit status, or -1 after printing why it did not run. */
int cr_ctl_run_corral(const cr_ctl *ctl, const char *bin, const char *const *extra);

/* ---- corralctl_status.c ---- */

/* status (full: fullstatus) of the running master, text or JSON. */
int cr_ctl_status(const cr_ctl *ctl, bool full);

#endif
