/* corralctl: reading the config. The core's own loader, so that corralctl
 * sees exactly what the server sees (paths resolved against the config's
 * folder, the same defaults, the same errors with file and line); and, for
 * a config that does not validate, a reading of just where the running
 * server keeps its pidfile, scoreboard and error log. */
#include <libconfig.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corral/module.h"
#include "corralctl.h"
#include "loader.h"

const char *cr_ctl_default_config(void)
{
    static char installed[PATH_MAX];

    if (access("etc/corral.conf", F_OK) == 0)
        return "etc/corral.conf";
    snprintf(installed, sizeof(installed), "%s/corral.conf", CR_SYSCONF_DIR);
    return installed;
}

int cr_ctl_load_config(cr_ctl *ctl)
{
    char err[1024];

    if (cr_config_load(&ctl->cfg, ctl->config_file, ctl->overrides, ctl->noverrides, err,
                       sizeof(err)) != 0)
        return cr_ctl_fail("%s", err);
    return 0;
}

int cr_ctl_load_generation(const cr_ctl *ctl, cr_generation *g)
{
    char err[1024];

    if (cr_generation_load(g, ctl->exe_dir, ctl->config_file, ctl->overrides, ctl->noverrides, err,
                           sizeof(err)) != 0)
        return cr_ctl_fail("%s", err);
    return 0;
}

/* The value of the last -o KEY=VALUE for key, without blanks and quotes,
 * copied into buf; NULL when no override sets key. */
static const char *cr_ctl_override(const cr_ctl *ctl, const char *key, char *buf, size_t cap)
{
    size_t klen = strlen(key);
    const char *found = NULL;

    for (size_t i = 0; i < ctl->noverrides; i++) {
        const char *v = ctl->overrides[i] + strspn(ctl->overrides[i], " \t");
        size_t len;

        if (strncmp(v, key, klen) != 0)
            continue;
        v += klen + strspn(v + klen, " \t");
        if (*v != '=')
            continue;
        v += 1 + strspn(v + 1, " \t");
        len = strcspn(v, ";");
        while (len > 0 && strchr(" \t\n", v[len - 1]) != NULL)
            len--;
        if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
            v++;
            len -= 2;
        }
        snprintf(buf, cap, "%.*s", (int)len, v);
        found = buf;
    }
    return found;
}

/* A setting as the file has it, unless an override sets it. */
static const char *cr_ctl_setting(const cr_ctl *ctl, const config_t *doc, const char *key,
                                  const char *dflt, char *buf, size_t cap)
{
    const char *v = cr_ctl_override(ctl, key, buf, cap);

    if (v == NULL && !config_lookup_string(doc, key, &v))
        v = dflt;
    return v;
}

/* The defaults are those of core/config.c. */
static int cr_ctl_locate_in(cr_ctl *ctl, const config_t *doc)
{
    char pid_buf[PATH_MAX], sb_buf[PATH_MAX], log_buf[PATH_MAX];
    const char *pidfile =
        cr_ctl_setting(ctl, doc, "pidfile", "logs/corral.pid", pid_buf, sizeof(pid_buf));
    const char *sb = cr_ctl_setting(ctl, doc, "scoreboard", NULL, sb_buf, sizeof(sb_buf));
    const char *error =
        cr_ctl_setting(ctl, doc, "log.error", "logs/error.log", log_buf, sizeof(log_buf));
    cr_config *cfg = &ctl->cfg;

    cfg->pidfile = cr_config_path(cfg->dir, pidfile);
    if (cfg->pidfile == NULL)
        return -1;
    cfg->scoreboard =
        sb != NULL ? cr_config_path(cfg->dir, sb) : cr_config_default_scoreboard(cfg->pidfile);
    cfg->log.error = strcmp(error, "-") == 0 ? strdup("-") : cr_config_path(cfg->dir, error);
    return cfg->scoreboard != NULL && cfg->log.error != NULL ? 0 : -1;
}

int cr_ctl_locate(cr_ctl *ctl)
{
    char *copy = strdup(ctl->config_file);
    config_t doc;
    int rc = -1;

    if (copy == NULL)
        return -1;
    cr_config_free(&ctl->cfg);
    ctl->cfg.dir = realpath(dirname(copy), NULL);
    free(copy);
    if (ctl->cfg.dir == NULL)
        return -1;
    config_init(&doc);
    config_set_include_dir(&doc, ctl->cfg.dir);
    if (config_read_file(&doc, ctl->config_file))
        rc = cr_ctl_locate_in(ctl, &doc);
    config_destroy(&doc);
    return rc;
}
