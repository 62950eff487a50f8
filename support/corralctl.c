/* corralctl: the apachectl of corral. Reads the config with the core's own
 * loader to find the master (its pidfile) and the scoreboard file, then
 * starts corral, signals the master, or reports what the scoreboard
 * shows. Links the whole core, like the corral binary, so that -M and the
 * config test load the MPM and the modules exactly as the server does. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "corral/corral.h"
#include "corralctl.h"
#include "cr_build.h"
#include "error_log.h"
#include "loader.h"
#include "server.h"

/* How long a restart may take to show a new generation in the scoreboard:
 * a full one first stops every child (the master sends KILL after 8 s). */
#define CR_CTL_RESTART_TIMEOUT_MS 30000
#define CR_CTL_REOPEN_TIMEOUT_MS  10000
#define CR_CTL_START_WAIT_MS      10000

static void cr_ctl_usage(FILE *out)
{
    fprintf(out,
            "usage: corralctl [-f FILE] [-o KEY=VALUE]... [--json] COMMAND\n"
            "       corralctl [-f FILE] [-o KEY=VALUE]... -M | -V | -t | -h\n"
            "commands:\n"
            "  start          start corral (as a daemon) and wait until it serves\n"
            "  stop           stop it (TERM) and wait until every process is gone\n"
            "  restart        test the config, then restart (HUP); starts it when stopped\n"
            "  graceful       test the config, then restart gracefully (USR1); starts it\n"
            "                 when stopped\n"
            "  graceful-stop  stop once the requests in flight are done (WINCH)\n"
            "  configtest     test the config (also -t)\n"
            "  status         the children, their state and counters, from the scoreboard\n"
            "  fullstatus     status and every handler slot with its current request\n"
            "  reopen-logs    reopen the error and access logs (USR2), after logrotate\n"
            "options:\n"
            "  -f FILE        config file (default etc/corral.conf, else %s/corral.conf)\n"
            "  -o KEY=VALUE   override a config setting, as for corral; passed on to it\n"
            "  --json         status, fullstatus and -M as JSON\n"
            "  -M             list the MPM and the modules the config loads\n"
            "  -V             versions and build options\n"
            "  -h             this help\n",
            CR_SYSCONF_DIR);
}

/* ---- the config ---- */

static int cr_ctl_configtest(const cr_ctl *ctl)
{
    cr_generation g;

    if (cr_ctl_load_generation(ctl, &g) != 0)
        return 1;
    printf("Syntax OK (mpm %s, %zu modules, %zu routes)\n", g.cfg.mpm, g.nmodules,
           g.router.nroutes);
    cr_generation_free(&g);
    return 0;
}

/* ---- start and stop ---- */

static int cr_ctl_remove_stale(const cr_ctl *ctl, const cr_ctl_master *m)
{
    fprintf(stderr, "corralctl: %s; removing it\n", m->why);
    if (unlink(ctl->cfg.pidfile) != 0 && errno != ENOENT)
        return cr_ctl_fail("cannot remove %s: %s", ctl->cfg.pidfile, strerror(errno));
    return 0;
}

/* After corral exited 0 the master serves; confirm it through the pidfile. */
static int cr_ctl_wait_started(const cr_ctl *ctl)
{
    long long deadline = cr_ctl_now_ms() + CR_CTL_START_WAIT_MS;
    cr_ctl_master m;

    for (;;) {
        if (cr_ctl_find_master(ctl, &m) != 0)
            return 1;
        if (m.found == CR_CTL_RUNNING) {
            printf("corral started (pid %ld)\n", (long)m.pid);
            return 0;
        }
        if (cr_ctl_now_ms() > deadline)
            return cr_ctl_fail("corral said it started, but %s does not name a running master; "
                               "see the error log %s",
                               ctl->cfg.pidfile, ctl->cfg.log.error);
        cr_ctl_sleep_ms(CR_CTL_POLL_MS);
    }
}

static int cr_ctl_start_now(const cr_ctl *ctl)
{
    char *bin = cr_ctl_corral_binary(ctl);
    int status;

    if (bin == NULL)
        return 1;
    status = cr_ctl_run_corral(ctl, bin, NULL);
    free(bin);
    if (status < 0)
        return 1;
    if (status != 0)
        return cr_ctl_fail("corral did not start (exit status %d); see the error log %s", status,
                           ctl->cfg.log.error);
    return cr_ctl_wait_started(ctl);
}

static int cr_ctl_start(const cr_ctl *ctl)
{
    cr_ctl_master m;

    if (cr_ctl_find_master(ctl, &m) != 0)
        return 1;
    if (m.found == CR_CTL_RUNNING)
        return cr_ctl_fail("already running (pid %ld)", (long)m.pid);
    if (m.found == CR_CTL_STALE && cr_ctl_remove_stale(ctl, &m) != 0)
        return 1;
    return cr_ctl_start_now(ctl);
}

static int cr_ctl_stop(const cr_ctl *ctl)
{
    cr_ctl_master m;

    if (cr_ctl_find_running(ctl, &m) != 0)
        return 1;
    if (cr_ctl_stop_master(ctl, &m) != 0)
        return 1;
    printf("corral stopped (pid %ld)\n", (long)m.pid);
    return 0;
}

/* Signals that need no config test and no wait. */
static int cr_ctl_graceful_stop(const cr_ctl *ctl)
{
    cr_ctl_master m;

    if (cr_ctl_find_running(ctl, &m) != 0)
        return 1;
    if (cr_ctl_signal(&m, SIGWINCH, "WINCH") != 0)
        return 1;
    printf("graceful stop requested (pid %ld): the requests in flight finish first\n", (long)m.pid);
    return 0;
}

/* ---- restarts ---- */

/* What the master would refuse on its own: checked here so that the
 * refusal comes with a message and no signal is sent. */
static int cr_ctl_check_restartable(const cr_generation *g, const cr_scoreboard *sb)
{
    char running[CR_SB_NAME_LEN + 1];

    snprintf(running, sizeof(running), "%.*s", CR_SB_NAME_LEN, sb->hdr->mpm);
    if (strcmp(g->mpm->name, running) != 0)
        return cr_ctl_fail("the MPM cannot change on a restart (%s -> %s): use stop, then start",
                           running, g->mpm->name);
    if ((uint32_t)g->policy.threads_per_child > sb->thread_limit ||
        (uint32_t)g->policy.max_processes > sb->process_limit)
        return cr_ctl_fail("the new limits (%d processes x %d threads) exceed the running "
                           "scoreboard's (%u x %u): use stop, then start",
                           g->policy.max_processes, g->policy.threads_per_child, sb->process_limit,
                           sb->thread_limit);
    return 0;
}

/* Size of the error log now, to read what the master writes after it. */
static off_t cr_ctl_log_size(const char *path)
{
    struct stat st;

    return strcmp(path, "-") != 0 && stat(path, &st) == 0 ? st.st_size : -1;
}

/* A "restart refused" line the master logged after offset `from`, copied
 * into line; false when there is none (or no log file to look in). */
static bool cr_ctl_refusal(const char *path, off_t from, char *line, size_t cap)
{
    FILE *f;
    bool found = false;

    if (from < 0 || (f = fopen(path, "re")) == NULL)
        return false;
    if (fseeko(f, from, SEEK_SET) == 0)
        while (!found && fgets(line, (int)cap, f) != NULL)
            found = strstr(line, "restart refused") != NULL;
    fclose(f);
    if (found)
        line[strcspn(line, "\n")] = '\0';
    return found;
}

/* Waits for the generation in the scoreboard to move past old. */
static int cr_ctl_wait_generation(const cr_ctl *ctl, const cr_ctl_master *m,
                                  const cr_scoreboard *sb, uint32_t old, off_t log_from)
{
    long long deadline = cr_ctl_now_ms() + CR_CTL_RESTART_TIMEOUT_MS;
    char line[1024];

    for (;;) {
        uint32_t now = sb->hdr->running_generation;

        if (now != old) {
            printf("restarted: generation %u (pid %ld)\n", (unsigned)now, (long)m->pid);
            return 0;
        }
        if (cr_ctl_refusal(ctl->cfg.log.error, log_from, line, sizeof(line)))
            return cr_ctl_fail("the master refused the restart: %s", line);
        if (!cr_ctl_alive(m->pid, m->start))
            return cr_ctl_fail("the master (pid %ld) exited during the restart; see the error "
                               "log %s",
                               (long)m->pid, ctl->cfg.log.error);
        if (cr_ctl_now_ms() > deadline)
            return cr_ctl_fail("no new generation %d s after the signal; see the error log %s",
                               CR_CTL_RESTART_TIMEOUT_MS / 1000, ctl->cfg.log.error);
        cr_ctl_sleep_ms(CR_CTL_POLL_MS);
    }
}

static int cr_ctl_signal_restart(const cr_ctl *ctl, const cr_ctl_master *m, const cr_generation *g,
                                 int sig, const char *name)
{
    cr_scoreboard sb;
    uint32_t old;
    off_t log_from;
    int rc;

    if (cr_ctl_attach(ctl, m, &sb) != 0)
        return 1;
    rc = cr_ctl_check_restartable(g, &sb);
    if (rc == 0) {
        old = sb.hdr->running_generation;
        log_from = cr_ctl_log_size(ctl->cfg.log.error);
        rc = cr_ctl_signal(m, sig, name);
        if (rc == 0)
            rc = cr_ctl_wait_generation(ctl, m, &sb, old, log_from);
    }
    cr_scoreboard_destroy(&sb);
    return rc;
}

/* restart (HUP) and graceful (USR1): the config is tested first, and a
 * config that would not load is never signalled. As apachectl, a stopped
 * server is started. */
static int cr_ctl_restart(const cr_ctl *ctl, int sig, const char *name)
{
    cr_ctl_master m;
    cr_generation g;
    int rc;

    if (cr_ctl_find_master(ctl, &m) != 0)
        return 1;
    if (cr_ctl_load_generation(ctl, &g) != 0) {
        if (m.found == CR_CTL_RUNNING)
            return cr_ctl_fail("not restarting: the configuration has errors; nothing was "
                               "signalled, pid %ld keeps serving the old one",
                               (long)m.pid);
        return cr_ctl_fail("not starting: the configuration has errors");
    }
    if (m.found != CR_CTL_RUNNING) {
        cr_generation_free(&g);
        printf("corral is not running; starting it\n");
        if (m.found == CR_CTL_STALE && cr_ctl_remove_stale(ctl, &m) != 0)
            return 1;
        return cr_ctl_start_now(ctl);
    }
    rc = cr_ctl_signal_restart(ctl, &m, &g, sig, name);
    cr_generation_free(&g);
    return rc;
}

/* ---- reopen-logs ---- */

/* The master bumps the log epoch once it reopened its own files. */
static int cr_ctl_wait_epoch(const cr_ctl_master *m, const cr_scoreboard *sb, uint32_t old)
{
    long long deadline = cr_ctl_now_ms() + CR_CTL_REOPEN_TIMEOUT_MS;

    while (atomic_load(&sb->hdr->log_epoch) == old) {
        if (!cr_ctl_alive(m->pid, m->start))
            return cr_ctl_fail("the master (pid %ld) exited", (long)m->pid);
        if (cr_ctl_now_ms() > deadline)
            return cr_ctl_fail("the master (pid %ld) did not reopen its logs in %d s", (long)m->pid,
                               CR_CTL_REOPEN_TIMEOUT_MS / 1000);
        cr_ctl_sleep_ms(CR_CTL_POLL_MS);
    }
    printf("logs reopened (pid %ld); each child reopens them before its next log line\n",
           (long)m->pid);
    return 0;
}

static int cr_ctl_reopen_logs(const cr_ctl *ctl)
{
    cr_ctl_master m;
    cr_scoreboard sb;
    uint32_t old;
    int rc;

    if (cr_ctl_find_running(ctl, &m) != 0)
        return 1;
    if (cr_ctl_attach(ctl, &m, &sb) != 0)
        return 1;
    old = atomic_load(&sb.hdr->log_epoch);
    rc = cr_ctl_signal(&m, SIGUSR2, "USR2");
    if (rc == 0)
        rc = cr_ctl_wait_epoch(&m, &sb, old);
    cr_scoreboard_destroy(&sb);
    return rc;
}

/* ---- -M and -V ---- */

static int cr_ctl_modules_text(const cr_generation *g)
{
    printf("Loaded MPM and modules (%s):\n", g->cfg.file);
    printf("  %-7s %-12s %-9s %s\n", "mpm", g->mpm->name, g->mpm->version ? g->mpm->version : "-",
           g->mpm_file);
    for (size_t i = 0; i < g->nmodules; i++) {
        const cr_module_ref *r = &g->modules[i];

        printf("  %-7s %-12s %-9s %s\n", "module", r->name,
               r->module->version ? r->module->version : "-", r->file);
    }
    return 0;
}

static json_t *cr_ctl_json_object(const char *name, const char *version, const char *file)
{
    return json_pack("{s:s, s:s?, s:s}", "name", name, "version", version, "file", file);
}

static int cr_ctl_modules_json(const cr_generation *g)
{
    json_t *mods = json_array(), *root;
    char *text;
    int bad = mods == NULL;

    for (size_t i = 0; !bad && i < g->nmodules; i++)
        bad = json_array_append_new(mods, cr_ctl_json_object(g->modules[i].name,
                                                             g->modules[i].module->version,
                                                             g->modules[i].file)) != 0;
    root = bad ? NULL
               : json_pack("{s:s, s:o, s:o}", "config", g->cfg.file, "mpm",
                           cr_ctl_json_object(g->mpm->name, g->mpm->version, g->mpm_file),
                           "modules", mods);
    if (root == NULL) {
        json_decref(mods);
        return cr_ctl_fail("out of memory while writing JSON");
    }
    text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (text == NULL)
        return cr_ctl_fail("out of memory while writing JSON");
    puts(text);
    free(text);
    return 0;
}

static int cr_ctl_modules(const cr_ctl *ctl)
{
    cr_generation g;
    int rc;

    if (cr_ctl_load_generation(ctl, &g) != 0)
        return 1;
    rc = ctl->json ? cr_ctl_modules_json(&g) : cr_ctl_modules_text(&g);
    cr_generation_free(&g);
    return rc;
}

/* Ours, then the server's own report (corral -V). */
static int cr_ctl_version(const cr_ctl *ctl)
{
    static const char *const v[] = {"-V", NULL};
    char *bin;
    int status;

    printf("corralctl %s (scoreboard layout %u, build %s)\n", CR_VERSION, CR_SB_LAYOUT,
           CR_BUILD_OPTIONS);
    bin = cr_ctl_corral_binary(ctl);
    if (bin == NULL)
        return 1;
    printf("server binary: %s\n", bin);
    fflush(stdout);
    /* corral -V reads no config: no -f, no -o. */
    status = cr_ctl_run_corral(NULL, bin, v);
    free(bin);
    return status == 0 ? 0 : 1;
}

/* ---- the command line ---- */

typedef struct cr_ctl_args {
    const char *command;
    bool modules; /* -M */
    bool version; /* -V */
} cr_ctl_args;

static int cr_ctl_add_override(cr_ctl *ctl, char *kv)
{
    char **grown = realloc(ctl->overrides, (ctl->noverrides + 1) * sizeof(*grown));

    if (grown == NULL)
        return cr_ctl_fail("%s", strerror(ENOMEM));
    ctl->overrides = grown;
    ctl->overrides[ctl->noverrides++] = kv;
    return 0;
}

/* One option; 1 to stop with that status, 0 to go on. */
static int cr_ctl_option(int ch, cr_ctl *ctl, cr_ctl_args *a)
{
    switch (ch) {
    case 'f':
        ctl->config_file = optarg;
        return 0;
    case 'o':
        return cr_ctl_add_override(ctl, optarg);
    case 'j':
        ctl->json = true;
        return 0;
    case 'M':
        a->modules = true;
        return 0;
    case 'V':
        a->version = true;
        return 0;
    case 't':
        a->command = "configtest";
        return 0;
    case 'h':
        cr_ctl_usage(stdout);
        exit(0);
    default:
        cr_ctl_usage(stderr);
        return 1;
    }
}

static int cr_ctl_parse(int argc, char **argv, cr_ctl *ctl, cr_ctl_args *a)
{
    static const struct option longs[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int ch;

    while ((ch = getopt_long(argc, argv, "f:o:MVth", longs, NULL)) != -1)
        if (cr_ctl_option(ch, ctl, a) != 0)
            return 1;
    if (optind < argc && a->command == NULL)
        a->command = argv[optind++];
    if (optind < argc)
        return cr_ctl_fail("unexpected argument '%s' (one command at a time)", argv[optind]);
    if (a->command == NULL && !a->modules && !a->version) {
        cr_ctl_usage(stderr);
        return 1;
    }
    if (ctl->config_file == NULL)
        ctl->config_file = cr_ctl_default_config();
    return 0;
}

/* A config that does not validate still tells where the running server
 * is, so that it can be stopped or looked at while the file is being
 * fixed; but it is never started or restarted with it. */
static int cr_ctl_config_for(cr_ctl *ctl, const char *cmd)
{
    bool restart = strcmp(cmd, "restart") == 0 || strcmp(cmd, "graceful") == 0;
    cr_ctl_master m;

    if (cr_ctl_load_config(ctl) == 0)
        return 0;
    if (strcmp(cmd, "start") == 0 || cr_ctl_locate(ctl) != 0)
        return restart ? cr_ctl_fail("not restarting: the configuration has errors; nothing "
                                     "was signalled")
                       : 1;
    if (!restart) {
        fprintf(stderr, "corralctl: warning: the configuration has errors; using only its "
                        "pidfile, scoreboard and log.error\n");
        return 0;
    }
    if (cr_ctl_find_master(ctl, &m) == 0 && m.found == CR_CTL_RUNNING)
        return cr_ctl_fail("not restarting: the configuration has errors; nothing was "
                           "signalled, pid %ld keeps serving the old one",
                           (long)m.pid);
    return cr_ctl_fail("not restarting: the configuration has errors; nothing was signalled");
}

static int cr_ctl_dispatch(cr_ctl *ctl, const char *cmd)
{
    if (strcmp(cmd, "configtest") == 0)
        return cr_ctl_configtest(ctl);
    if (cr_ctl_config_for(ctl, cmd) != 0)
        return 1;
    if (strcmp(cmd, "start") == 0)
        return cr_ctl_start(ctl);
    if (strcmp(cmd, "stop") == 0)
        return cr_ctl_stop(ctl);
    if (strcmp(cmd, "restart") == 0)
        return cr_ctl_restart(ctl, SIGHUP, "HUP");
    if (strcmp(cmd, "graceful") == 0)
        return cr_ctl_restart(ctl, SIGUSR1, "USR1");
    if (strcmp(cmd, "graceful-stop") == 0)
        return cr_ctl_graceful_stop(ctl);
    if (strcmp(cmd, "status") == 0 || strcmp(cmd, "fullstatus") == 0)
        return cr_ctl_status(ctl, strcmp(cmd, "fullstatus") == 0);
    if (strcmp(cmd, "reopen-logs") == 0)
        return cr_ctl_reopen_logs(ctl);
    cr_ctl_fail("unknown command '%s'", cmd);
    cr_ctl_usage(stderr);
    return 1;
}

int main(int argc, char **argv)
{
    cr_ctl ctl = {0};
    cr_ctl_args a = {0};
    int rc;

    /* Modules loaded for -M and the config test log through the core:
     * only what matters reaches the terminal. */
    cr_error_log_set_level(CR_LOG_WARN);
    rc = cr_ctl_parse(argc, argv, &ctl, &a);
    if (rc == 0) {
        ctl.exe_dir = cr_loader_exe_dir();
        if (a.version)
            rc = cr_ctl_version(&ctl);
        else if (a.modules)
            rc = cr_ctl_modules(&ctl);
        else
            rc = cr_ctl_dispatch(&ctl, a.command);
    }
    cr_config_free(&ctl.cfg);
    free(ctl.exe_dir);
    free(ctl.overrides);
    return rc;
}
