/* Helpers shared by the config loader, the MPMs and the modules for checking
 * their own groups: unknown-key checks, error messages that point at the
 * file and line (or at the -o override) of a setting, and path resolution. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corral/module.h"

/* Appends the dotted path of s ("routes[1].module") to buf at *pos. */
static void key_path(const config_setting_t *s, char *buf, size_t len, size_t *pos)
{
    const config_setting_t *parent = config_setting_parent(s);
    int n;

    if (!parent)
        return;
    key_path(parent, buf, len, pos);
    if (config_setting_name(s))
        n = snprintf(buf + *pos, len - *pos, "%s%s", *pos ? "." : "", config_setting_name(s));
    else
        n = snprintf(buf + *pos, len - *pos, "[%d]", config_setting_index(s));
    if (n < 0)
        return;
    *pos += (size_t)n < len - *pos ? (size_t)n : len - *pos - 1;
}

static void setting_key(const config_setting_t *s, char *buf, size_t len)
{
    size_t pos = 0;

    buf[0] = '\0';
    key_path(s, buf, len, &pos);
}

/* "FILE:LINE" for settings read from a file. Settings an -o override made
 * have no file: name the outermost of them, which is what the user typed
 * after -o (or the group it created). */
static void setting_origin(const config_setting_t *s, char *buf, size_t len)
{
    const config_setting_t *top = NULL;
    char key[256];

    if (config_setting_source_file(s)) {
        snprintf(buf, len, "%s:%u", config_setting_source_file(s),
                 (unsigned)config_setting_source_line(s));
        return;
    }
    for (; s && config_setting_parent(s) && !config_setting_source_file(s);
         s = config_setting_parent(s))
        top = s;
    if (!top) {
        snprintf(buf, len, "(command line)");
        return;
    }
    setting_key(top, key, sizeof(key));
    snprintf(buf, len, "-o %s", key);
}

void cr_config_error(const config_setting_t *setting, char *err, size_t errlen, const char *fmt,
                     ...)
{
    char origin[300], key[256];
    va_list ap;
    int n;

    if (!err || !errlen)
        return;
    setting_origin(setting, origin, sizeof(origin));
    setting_key(setting, key, sizeof(key));
    n = snprintf(err, errlen, "%s: key '%s': ", origin, key);
    if (n < 0 || (size_t)n >= errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static int key_allowed(const char *name, const char *const *allowed)
{
    for (; *allowed; allowed++)
        if (strcmp(name, *allowed) == 0)
            return 1;
    return 0;
}

/* The keys of a route the core reads itself (config.c); a module lists
 * only its own. */
static const char *const cr_route_core_keys[] = {"path", "module", "host", "allow", "deny", NULL};

static int key_allowed_in(const char *name, const char *const *allowed, const char *const *also)
{
    return key_allowed(name, allowed) || (also != NULL && key_allowed(name, also));
}

static int cr_check_keys(const config_setting_t *settings, const char *const *allowed,
                         const char *const *also, char *err, size_t errlen)
{
    char origin[300], key[256];
    int i, n;

    if (!settings)
        return CR_OK;
    if (!config_setting_is_group(settings)) {
        cr_config_error(settings, err, errlen, "must be a group { ... }");
        return CR_ERROR;
    }
    n = config_setting_length(settings);
    for (i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(settings, (unsigned)i);

        if (key_allowed_in(config_setting_name(s), allowed, also))
            continue;
        if (err && errlen) {
            setting_origin(s, origin, sizeof(origin));
            setting_key(s, key, sizeof(key));
            snprintf(err, errlen, "%s: unknown key '%s'", origin, key);
        }
        return CR_ERROR;
    }
    return CR_OK;
}

int cr_config_check_keys(const config_setting_t *settings, const char *const *allowed, char *err,
                         size_t errlen)
{
    return cr_check_keys(settings, allowed, NULL, err, errlen);
}

int cr_route_check_keys(const cr_route_ctx *ctx, const char *const *allowed)
{
    return cr_check_keys(ctx->settings, allowed, cr_route_core_keys, ctx->err, ctx->errlen);
}

char *cr_config_path(const char *dir, const char *path)
{
    char *out;

    if (!path)
        return NULL;
    if (path[0] == '/' || !dir || !dir[0])
        return strdup(path);
    if (!path[0])
        return strdup(dir);
    if (asprintf(&out, "%s/%s", dir, path) < 0)
        return NULL;
    return out;
}
