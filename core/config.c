/* The configuration loader: reads the file with libconfig, applies the -o
 * overrides to the parsed document, then checks every key and fills
 * cr_config (see config.h for the schema and its defaults). */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "corral/log.h"
#include "corral/module.h"

/* What every step of a load needs: the config being filled and where to
 * write the reason it failed. */
typedef struct cr_loader {
    cr_config *cfg;
    char *err;
    size_t errlen;
} cr_loader;

/* get_str flags */
enum {
    CR_STR_NONEMPTY = 0x1, /* "" is refused */
    CR_STR_NAME = 0x2,     /* only [a-z0-9_]+, as in file names mod_NAME.so */
};

typedef int (*cr_elem_fn)(cr_loader *ld, const config_setting_t *elem, char **out);

static const char *const level_names[] = {
    [CR_LOG_EMERG] = "emerg", [CR_LOG_ALERT] = "alert", [CR_LOG_CRIT] = "crit",
    [CR_LOG_ERROR] = "error", [CR_LOG_WARN] = "warn",   [CR_LOG_NOTICE] = "notice",
    [CR_LOG_INFO] = "info",   [CR_LOG_DEBUG] = "debug",
};

static int set_err(cr_loader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int set_err(cr_loader *ld, const char *fmt, ...)
{
    va_list ap;

    if (!ld->err || !ld->errlen)
        return -1;
    va_start(ap, fmt);
    vsnprintf(ld->err, ld->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int oom(cr_loader *ld)
{
    return set_err(ld, "out of memory while loading the configuration");
}

int cr_config_log_level(const char *name)
{
    size_t i;

    if (!name)
        return -1;
    for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcmp(name, level_names[i]) == 0)
            return (int)i;
    return -1;
}

const config_setting_t *cr_config_group(const cr_config *cfg, const char *name)
{
    const config_setting_t *s;

    if (!cfg || !cfg->doc.root || !name)
        return NULL;
    s = config_setting_get_member(config_root_setting(&cfg->doc), name);
    return s && config_setting_is_group(s) ? s : NULL;
}

static void free_strings(char **v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void cr_config_free(cr_config *cfg)
{
    size_t i;

    if (!cfg)
        return;
    free_strings(cfg->listen, cfg->nlisten);
    free_strings(cfg->modules, cfg->nmodules);
    for (i = 0; i < cfg->nroutes; i++) {
        free(cfg->routes[i].path);
        free(cfg->routes[i].host);
        free(cfg->routes[i].module);
        cr_addr_rules_free(&cfg->routes[i].access);
    }
    free(cfg->routes);
    free(cfg->file);
    free(cfg->dir);
    free(cfg->mpm);
    free(cfg->module_path);
    free(cfg->user);
    free(cfg->group);
    free(cfg->pidfile);
    free(cfg->scoreboard);
    free(cfg->server_name);
    free(cfg->log.error);
    free(cfg->log.access);
    if (cfg->doc.root)
        config_destroy(&cfg->doc);
    memset(cfg, 0, sizeof(*cfg));
}

/* ---- reading the file ---- */

static int check_readable(cr_loader *ld, const char *file)
{
    struct stat st;
    FILE *f = fopen(file, "r");
    int e = 0;

    if (!f)
        return set_err(ld, "%s: cannot open: %s", file, strerror(errno));
    /* libconfig only says "file I/O error" for a folder. */
    if (fstat(fileno(f), &st) < 0)
        e = errno;
    else if (S_ISDIR(st.st_mode))
        e = EISDIR;
    fclose(f);
    return e ? set_err(ld, "%s: cannot open: %s", file, strerror(e)) : 0;
}

/* Sets cfg->dir to the real path of the file's folder and cfg->file to the
 * file inside it. */
static int locate_file(cr_loader *ld, const char *file)
{
    cr_config *cfg = ld->cfg;
    const char *slash = strrchr(file, '/');
    const char *base = slash ? slash + 1 : file;
    char *folder = strdup(file);
    int rc = -1;

    if (!folder)
        return oom(ld);
    cfg->dir = realpath(dirname(folder), NULL);
    if (!cfg->dir) {
        set_err(ld, "%s: cannot open: %s", file, strerror(errno));
        goto out;
    }
    if (asprintf(&cfg->file, "%s/%s", strcmp(cfg->dir, "/") ? cfg->dir : "", base) < 0) {
        cfg->file = NULL;
        oom(ld);
        goto out;
    }
    rc = 0;
out:
    free(folder);
    return rc;
}

static int read_file(cr_loader *ld, const char *file)
{
    config_t *doc = &ld->cfg->doc;

    if (!file || !file[0])
        return set_err(ld, "no configuration file given");
    if (check_readable(ld, file) < 0 || locate_file(ld, file) < 0)
        return -1;
    config_init(doc);
    config_set_include_dir(doc, ld->cfg->dir);
    if (config_read_file(doc, file))
        return 0;
    return set_err(ld, "%s:%d: %s", config_error_file(doc) ? config_error_file(doc) : file,
                   config_error_line(doc), config_error_text(doc));
}

/* ---- -o KEY=VALUE ---- */

static int is_name_char(char c, int first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '*')
        return 1;
    return !first && ((c >= '0' && c <= '9') || c == '-' || c == '_');
}

/* A dotted path of libconfig names, as in "mpm_prefork.max_workers". */
static int valid_key(const char *key)
{
    int first = 1;

    if (!*key)
        return 0;
    for (; *key; key++) {
        if (*key == '.' && !first) {
            first = 1;
            continue;
        }
        if (!is_name_char(*key, first))
            return 0;
        first = 0;
    }
    return !first;
}

/* Anything that does not open a quoted string or an aggregate: such a value
 * is taken as a string when it is not valid config syntax on its own. */
static int is_bare_word(const char *value, size_t len)
{
    return len == 0 || !strchr("\"[({", value[0]);
}

static char *quoted_setting(const char *leaf, const char *value, size_t len)
{
    char *text = malloc(strlen(leaf) + 2 * len + 8);
    char *p;
    size_t i;

    if (!text)
        return NULL;
    p = text + sprintf(text, "%s = \"", leaf);
    for (i = 0; i < len; i++) {
        if (value[i] == '"' || value[i] == '\\')
            *p++ = '\\';
        *p++ = value[i];
    }
    strcpy(p, "\";");
    return text;
}

static int read_setting(config_t *tmp, const char *text)
{
    config_destroy(tmp);
    config_init(tmp);
    return config_read_string(tmp, text);
}

/* Parses VALUE as the only setting `leaf` of tmp. */
static int parse_value(cr_loader *ld, config_t *tmp, const char *key, const char *leaf,
                       const char *value)
{
    size_t len;
    char *text = NULL;
    int ok;

    while (*value == ' ' || *value == '\t')
        value++;
    len = strlen(value);
    while (len && strchr(" \t\n;", value[len - 1]))
        len--;
    if (asprintf(&text, "%s = %.*s;", leaf, (int)len, value) < 0)
        return oom(ld);
    ok = read_setting(tmp, text);
    if (!ok && is_bare_word(value, len)) {
        free(text);
        text = quoted_setting(leaf, value, len);
        if (!text)
            return oom(ld);
        ok = read_setting(tmp, text);
    }
    free(text);
    if (!ok)
        return set_err(ld, "-o %s: %s", key, config_error_text(tmp));
    if (config_setting_length(config_root_setting(tmp)) != 1)
        return set_err(ld, "-o %s: the value must be a single setting", key);
    return 0;
}

/* The group that will hold the last part of the dotted key, created along
 * the way when missing. */
static config_setting_t *override_parent(cr_loader *ld, char *key)
{
    config_setting_t *cur = config_root_setting(&ld->cfg->doc);
    config_setting_t *next;
    char *seg = key, *dot;

    while ((dot = strchr(seg, '.'))) {
        *dot = '\0';
        next = config_setting_get_member(cur, seg);
        if (!next)
            next = config_setting_add(cur, seg, CONFIG_TYPE_GROUP);
        *dot = '.';
        if (!next) {
            oom(ld);
            return NULL;
        }
        if (!config_setting_is_group(next)) {
            set_err(ld, "-o %s: '%.*s' is not a group", key, (int)(dot - key), key);
            return NULL;
        }
        cur = next;
        seg = dot + 1;
    }
    return cur;
}

static config_setting_t *copy_setting(config_setting_t *parent, const char *name,
                                      const config_setting_t *src)
{
    int type = config_setting_type(src);
    config_setting_t *dst = config_setting_add(parent, name, type);
    int ok = dst != NULL;
    int i, n;

    if (!ok)
        return NULL;
    switch (type) {
    case CONFIG_TYPE_INT:
        ok = config_setting_set_int(dst, config_setting_get_int(src));
        break;
    case CONFIG_TYPE_INT64:
        ok = config_setting_set_int64(dst, config_setting_get_int64(src));
        break;
    case CONFIG_TYPE_FLOAT:
        ok = config_setting_set_float(dst, config_setting_get_float(src));
        break;
    case CONFIG_TYPE_BOOL:
        ok = config_setting_set_bool(dst, config_setting_get_bool(src));
        break;
    case CONFIG_TYPE_STRING:
        ok = config_setting_set_string(dst, config_setting_get_string(src));
        break;
    default:
        n = config_setting_length(src);
        for (i = 0; ok && i < n; i++) {
            const config_setting_t *e = config_setting_get_elem(src, (unsigned)i);

            ok = copy_setting(dst, config_setting_name(e), e) != NULL;
        }
    }
    config_setting_set_format(dst, config_setting_get_format(src));
    return ok ? dst : NULL;
}

/* The KEY of "KEY=VALUE", without the blanks around it. */
static char *override_key(const char *ov, const char *eq)
{
    while (ov < eq && (*ov == ' ' || *ov == '\t'))
        ov++;
    while (eq > ov && (eq[-1] == ' ' || eq[-1] == '\t'))
        eq--;
    return strndup(ov, (size_t)(eq - ov));
}

static int apply_override(cr_loader *ld, const char *ov)
{
    const char *eq = strchr(ov, '=');
    config_setting_t *parent, *src;
    char *key = NULL;
    const char *leaf;
    config_t tmp;
    int rc = -1;

    config_init(&tmp);
    if (eq)
        key = override_key(ov, eq);
    if (!eq || !key || !valid_key(key)) {
        set_err(ld, "-o %s: expected KEY=VALUE, e.g. -o timeouts.keepalive=2", ov);
        goto out;
    }
    leaf = strrchr(key, '.') ? strrchr(key, '.') + 1 : key;
    if (parse_value(ld, &tmp, key, leaf, eq + 1) < 0)
        goto out;
    parent = override_parent(ld, key);
    if (!parent)
        goto out;
    src = config_setting_get_member(config_root_setting(&tmp), leaf);
    config_setting_remove(parent, leaf);
    if (!src || !copy_setting(parent, leaf, src)) {
        oom(ld);
        goto out;
    }
    rc = 0;
out:
    config_destroy(&tmp);
    free(key);
    return rc;
}

/* ---- typed getters: an absent member leaves *out (the default) alone ---- */

static int get_int(cr_loader *ld, const config_setting_t *grp, const char *name, long long min,
                   long long max, long long *out)
{
    const config_setting_t *s = grp ? config_setting_get_member(grp, name) : NULL;
    int type;

    if (!s)
        return 0;
    type = config_setting_type(s);
    if ((type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64) &&
        config_setting_get_int64(s) >= min && config_setting_get_int64(s) <= max) {
        *out = config_setting_get_int64(s);
        return 0;
    }
    if (max == LLONG_MAX)
        cr_config_error(s, ld->err, ld->errlen, "must be an integer >= %lld", min);
    else
        cr_config_error(s, ld->err, ld->errlen, "must be an integer between %lld and %lld", min,
                        max);
    return -1;
}

static int is_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

static int check_str(cr_loader *ld, const config_setting_t *s, unsigned flags)
{
    const char *v;

    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        cr_config_error(s, ld->err, ld->errlen, "must be a string");
        return -1;
    }
    v = config_setting_get_string(s);
    if ((flags & CR_STR_NONEMPTY) && !v[0]) {
        cr_config_error(s, ld->err, ld->errlen, "must not be empty");
        return -1;
    }
    if ((flags & CR_STR_NAME) && !is_name(v)) {
        cr_config_error(s, ld->err, ld->errlen,
                        "'%s' must be a name of lowercase letters, digits and '_'", v);
        return -1;
    }
    return 0;
}

static int get_str(cr_loader *ld, const config_setting_t *grp, const char *name, unsigned flags,
                   const char **out)
{
    const config_setting_t *s = grp ? config_setting_get_member(grp, name) : NULL;

    if (!s)
        return 0;
    if (check_str(ld, s, flags) < 0)
        return -1;
    *out = config_setting_get_string(s);
    return 0;
}

/* The group `name` of root with its keys checked; *out is NULL when absent. */
static int get_group(cr_loader *ld, const config_setting_t *root, const char *name,
                     const char *const *keys, const config_setting_t **out)
{
    *out = config_setting_get_member(root, name);
    if (!*out)
        return 0;
    return cr_config_check_keys(*out, keys, ld->err, ld->errlen) == CR_OK ? 0 : -1;
}

/* strdup that reports; NULL stays NULL. */
static int dup_str(cr_loader *ld, char **dst, const char *src)
{
    if (!src)
        return 0;
    *dst = strdup(src);
    return *dst ? 0 : oom(ld);
}

/* Copies path, made absolute against the config folder; NULL stays NULL. */
static int dup_path(cr_loader *ld, char **dst, const char *path)
{
    if (!path)
        return 0;
    *dst = cr_config_path(ld->cfg->dir, path);
    return *dst ? 0 : oom(ld);
}

/* Fills *out / *n from an array or list of strings, each passed through fn.
 * *n counts the entries filled so far, so a failure frees cleanly. */
static int load_strings(cr_loader *ld, const config_setting_t *s, cr_elem_fn fn, char ***out,
                        size_t *n)
{
    int i, len;

    if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
        cr_config_error(s, ld->err, ld->errlen, "must be an array of strings [ \"...\", ... ]");
        return -1;
    }
    len = config_setting_length(s);
    *out = calloc((size_t)len + 1, sizeof(**out));
    if (!*out)
        return oom(ld);
    for (i = 0; i < len; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);

        if (check_str(ld, e, CR_STR_NONEMPTY) < 0 || fn(ld, e, &(*out)[i]) < 0)
            return -1;
        (*n)++;
    }
    return 0;
}

static int load_default_strings(cr_loader *ld, const char *const *v, char ***out, size_t *n)
{
    size_t len = 0;

    while (v[len])
        len++;
    *out = calloc(len + 1, sizeof(**out));
    if (!*out)
        return oom(ld);
    for (; *n < len; (*n)++)
        if (dup_str(ld, &(*out)[*n], v[*n]) < 0)
            return -1;
    return 0;
}

/* ---- top level ---- */

static const char *const top_keys[] = {
    "listen", "backlog", "mpm",        "module_path", "user",
    "group",  "pidfile", "scoreboard", "server_name", "timeouts",
    "limits", "log",     "modules",    "routes",      NULL,
};

/* mpm_NAME and mod_NAME groups belong to an MPM or a module. */
static int is_owned_group(const char *name)
{
    return (strncmp(name, "mpm_", 4) == 0 || strncmp(name, "mod_", 4) == 0) && is_name(name + 4);
}

static int check_top(cr_loader *ld, const config_setting_t *root)
{
    size_t nkeys = sizeof(top_keys) / sizeof(top_keys[0]) - 1;
    int i, n = config_setting_length(root);
    const char **allowed = calloc(nkeys + (size_t)n + 1, sizeof(*allowed));
    size_t k;
    int rc = -1;

    if (!allowed)
        return oom(ld);
    for (k = 0; k < nkeys; k++)
        allowed[k] = top_keys[k];
    for (i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);

        if (!is_owned_group(config_setting_name(s)))
            continue;
        if (!config_setting_is_group(s)) {
            cr_config_error(s, ld->err, ld->errlen, "must be a group { ... }");
            goto out;
        }
        allowed[k++] = config_setting_name(s);
    }
    rc = cr_config_check_keys(root, allowed, ld->err, ld->errlen) == CR_OK ? 0 : -1;
out:
    free(allowed);
    return rc;
}

static int default_server_name(cr_loader *ld)
{
    char host[256];

    if (gethostname(host, sizeof(host)) < 0 || !host[0])
        return dup_str(ld, &ld->cfg->server_name, "localhost");
    host[sizeof(host) - 1] = '\0';
    return dup_str(ld, &ld->cfg->server_name, host);
}

/* Beside the pidfile and named after it, so that two servers with their
 * own pidfiles never share one. */
char *cr_config_default_scoreboard(const char *pidfile)
{
    size_t len = strlen(pidfile);
    char *path;

    if (len > 4 && strcmp(pidfile + len - 4, ".pid") == 0)
        len -= 4;
    if (asprintf(&path, "%.*s.scoreboard", (int)len, pidfile) < 0)
        return NULL;
    return path;
}

static int default_scoreboard(cr_loader *ld)
{
    ld->cfg->scoreboard = cr_config_default_scoreboard(ld->cfg->pidfile);
    return ld->cfg->scoreboard ? 0 : oom(ld);
}

static int load_server(cr_loader *ld, const config_setting_t *root)
{
    cr_config *cfg = ld->cfg;
    const char *mpm = "prefork", *module_path = NULL, *user = NULL, *group = NULL;
    const char *pidfile = "logs/corral.pid", *server_name = NULL, *scoreboard = NULL;
    long long backlog = 511;

    if (get_int(ld, root, "backlog", 1, 65535, &backlog) < 0 ||
        get_str(ld, root, "mpm", CR_STR_NAME, &mpm) < 0 ||
        get_str(ld, root, "module_path", CR_STR_NONEMPTY, &module_path) < 0 ||
        get_str(ld, root, "user", CR_STR_NONEMPTY, &user) < 0 ||
        get_str(ld, root, "group", CR_STR_NONEMPTY, &group) < 0 ||
        get_str(ld, root, "pidfile", CR_STR_NONEMPTY, &pidfile) < 0 ||
        get_str(ld, root, "scoreboard", CR_STR_NONEMPTY, &scoreboard) < 0 ||
        get_str(ld, root, "server_name", CR_STR_NONEMPTY, &server_name) < 0)
        return -1;
    cfg->backlog = (int)backlog;
    if (dup_str(ld, &cfg->mpm, mpm) < 0 || dup_path(ld, &cfg->module_path, module_path) < 0 ||
        dup_str(ld, &cfg->user, user) < 0 || dup_str(ld, &cfg->group, group) < 0 ||
        dup_path(ld, &cfg->pidfile, pidfile) < 0)
        return -1;
    if (scoreboard != NULL ? dup_path(ld, &cfg->scoreboard, scoreboard) < 0
                           : default_scoreboard(ld) < 0)
        return -1;
    return server_name ? dup_str(ld, &cfg->server_name, server_name) : default_server_name(ld);
}

/* ---- listen ---- */

static int valid_port(const char *p)
{
    long v = 0;
    int digits = 0;

    for (; *p >= '0' && *p <= '9' && digits < 6; p++, digits++)
        v = v * 10 + (*p - '0');
    return !*p && digits > 0 && digits <= 5 && v <= 65535;
}

/* "IPV4:PORT", "*:PORT" or "[IPV6]:PORT"; port 0 asks for any free port. */
static int valid_inet(const char *v)
{
    char host[INET6_ADDRSTRLEN];
    unsigned char addr[sizeof(struct in6_addr)];
    const char *end, *port;
    int family = AF_INET;

    if (v[0] == '[') {
        end = strchr(v, ']');
        if (!end || end[1] != ':')
            return 0;
        v++;
        port = end + 2;
        family = AF_INET6;
    } else {
        end = strrchr(v, ':');
        if (!end)
            return 0;
        port = end + 1;
    }
    if (end == v || (size_t)(end - v) >= sizeof(host) || !valid_port(port))
        return 0;
    if (family == AF_INET && end - v == 1 && v[0] == '*')
        return 1;
    memcpy(host, v, (size_t)(end - v));
    host[end - v] = '\0';
    return inet_pton(family, host, addr) == 1;
}

static int unix_addr(cr_loader *ld, const config_setting_t *elem, const char *path, char **out)
{
    size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
    char *abs;
    int rc = -1;

    if (!path[0]) {
        cr_config_error(elem, ld->err, ld->errlen, "'unix:' needs a socket path");
        return -1;
    }
    abs = cr_config_path(ld->cfg->dir, path);
    if (!abs)
        return oom(ld);
    if (strlen(abs) > max) {
        cr_config_error(elem, ld->err, ld->errlen, "socket path '%s' is longer than %zu bytes", abs,
                        max);
    } else if (asprintf(out, "unix:%s", abs) < 0) {
        *out = NULL;
        oom(ld);
    } else {
        rc = 0;
    }
    free(abs);
    return rc;
}

static int listen_addr(cr_loader *ld, const config_setting_t *elem, char **out)
{
    const char *v = config_setting_get_string(elem);

    if (strncmp(v, "unix:", 5) == 0)
        return unix_addr(ld, elem, v + 5, out);
    if (!valid_inet(v)) {
        cr_config_error(elem, ld->err, ld->errlen,
                        "'%s' is not IPV4:PORT, *:PORT, [IPV6]:PORT or unix:PATH", v);
        return -1;
    }
    return dup_str(ld, out, v);
}

static int load_listen(cr_loader *ld, const config_setting_t *root)
{
    static const char *const defaults[] = {"127.0.0.1:8080", NULL};
    const config_setting_t *s = config_setting_get_member(root, "listen");
    cr_config *cfg = ld->cfg;

    if (!s)
        return load_default_strings(ld, defaults, &cfg->listen, &cfg->nlisten);
    if (load_strings(ld, s, listen_addr, &cfg->listen, &cfg->nlisten) < 0)
        return -1;
    if (cfg->nlisten == 0) {
        cr_config_error(s, ld->err, ld->errlen, "needs at least one address");
        return -1;
    }
    return 0;
}

/* ---- groups ---- */

static int load_timeouts(cr_loader *ld, const config_setting_t *root)
{
    static const char *const keys[] = {"header", "body", "keepalive", "write", "graceful", NULL};
    long long header = 10, body = 30, keepalive = 5, wr = 30, graceful = 0;
    const config_setting_t *g;

    if (get_group(ld, root, "timeouts", keys, &g) < 0 ||
        get_int(ld, g, "header", 1, 3600, &header) < 0 ||
        get_int(ld, g, "body", 1, 3600, &body) < 0 ||
        get_int(ld, g, "keepalive", 0, 3600, &keepalive) < 0 ||
        get_int(ld, g, "write", 1, 3600, &wr) < 0 ||
        get_int(ld, g, "graceful", 0, 86400, &graceful) < 0)
        return -1;
    ld->cfg->timeouts.header = (int)header;
    ld->cfg->timeouts.body = (int)body;
    ld->cfg->timeouts.keepalive = (int)keepalive;
    ld->cfg->timeouts.write = (int)wr;
    ld->cfg->timeouts.graceful = (int)graceful;
    return 0;
}

static int load_limits(cr_loader *ld, const config_setting_t *root)
{
    static const char *const keys[] = {"header_bytes",       "uri_bytes",          "body_bytes",
                                       "requests_per_child", "keepalive_requests", NULL};
    long long header = 8192, uri = -1, body = 1048576, per_child = 0, keepalive = 1000;
    const config_setting_t *g;

    if (get_group(ld, root, "limits", keys, &g) < 0 ||
        get_int(ld, g, "header_bytes", 1024, 1048576, &header) < 0 ||
        get_int(ld, g, "uri_bytes", 64, header, &uri) < 0 ||
        get_int(ld, g, "body_bytes", 0, 1073741824, &body) < 0 ||
        get_int(ld, g, "requests_per_child", 0, LONG_MAX, &per_child) < 0 ||
        get_int(ld, g, "keepalive_requests", 0, LONG_MAX, &keepalive) < 0)
        return -1;
    /* A small header_bytes lowers the default URI limit with it. */
    if (uri < 0)
        uri = header < 4096 ? header : 4096;
    ld->cfg->limits.header_bytes = (size_t)header;
    ld->cfg->limits.uri_bytes = (size_t)uri;
    ld->cfg->limits.body_bytes = (size_t)body;
    ld->cfg->limits.requests_per_child = (long)per_child;
    ld->cfg->limits.keepalive_requests = (long)keepalive;
    return 0;
}

static int load_log(cr_loader *ld, const config_setting_t *root)
{
    static const char *const keys[] = {"error", "level", "access", NULL};
    const char *error = "logs/error.log", *level = "info", *access = "logs/access.log";
    cr_config *cfg = ld->cfg;
    const config_setting_t *g;

    if (get_group(ld, root, "log", keys, &g) < 0 ||
        get_str(ld, g, "error", CR_STR_NONEMPTY, &error) < 0 ||
        get_str(ld, g, "level", 0, &level) < 0 || get_str(ld, g, "access", 0, &access) < 0)
        return -1;
    cfg->log.level = cr_config_log_level(level);
    if (cfg->log.level < 0) {
        cr_config_error(config_setting_get_member(g, "level"), ld->err, ld->errlen,
                        "'%s' is not one of emerg, alert, crit, error, warn, notice, info, debug",
                        level);
        return -1;
    }
    if (strcmp(error, "-") == 0) {
        if (dup_str(ld, &cfg->log.error, error) < 0)
            return -1;
    } else if (dup_path(ld, &cfg->log.error, error) < 0) {
        return -1;
    }
    return dup_path(ld, &cfg->log.access, access[0] ? access : NULL);
}

/* ---- modules and routes ---- */

static int module_listed(const cr_config *cfg, const char *name)
{
    size_t i;

    for (i = 0; i < cfg->nmodules; i++)
        if (strcmp(cfg->modules[i], name) == 0)
            return 1;
    return 0;
}

static int module_name(cr_loader *ld, const config_setting_t *elem, char **out)
{
    const char *v = config_setting_get_string(elem);

    if (check_str(ld, elem, CR_STR_NAME) < 0)
        return -1;
    if (module_listed(ld->cfg, v)) {
        cr_config_error(elem, ld->err, ld->errlen, "module '%s' is listed twice", v);
        return -1;
    }
    return dup_str(ld, out, v);
}

static int load_modules(cr_loader *ld, const config_setting_t *root)
{
    static const char *const defaults[] = {"hello", "echo", "static", NULL};
    const config_setting_t *s = config_setting_get_member(root, "modules");
    cr_config *cfg = ld->cfg;

    if (!s)
        return load_default_strings(ld, defaults, &cfg->modules, &cfg->nmodules);
    return load_strings(ld, s, module_name, &cfg->modules, &cfg->nmodules);
}

/* A virtual host name: letters, digits, '-', '.', ':' and '[' ']' for an
 * IPv6 literal, or "*." and a domain for any name below it. */
static int host_name_ok(const char *v)
{
    if (strncmp(v, "*.", 2) == 0)
        v += 2;
    if (!*v)
        return 0;
    for (; *v; v++)
        if (!isalnum((unsigned char)*v) && !strchr("-.:[]_", *v))
            return 0;
    return 1;
}

/* A route's `host`: one name or a list of them, kept as one string of
 * space-separated names for the router. */
static int load_route_hosts(cr_loader *ld, const config_setting_t *s, cr_route_conf *r)
{
    const config_setting_t *h = config_setting_get_member(s, "host");
    int n = h && config_setting_is_array(h) ? config_setting_length(h) : 1;
    size_t len = 0;

    if (!h)
        return 0;
    if (!config_setting_is_array(h) && config_setting_type(h) != CONFIG_TYPE_STRING)
        goto bad;
    if (n == 0)
        goto bad;
    for (int i = 0; i < n; i++) {
        const config_setting_t *e =
            config_setting_is_array(h) ? config_setting_get_elem(h, (unsigned)i) : h;
        const char *v =
            config_setting_type(e) == CONFIG_TYPE_STRING ? config_setting_get_string(e) : NULL;

        if (!v || !host_name_ok(v))
            goto bad;
        len += strlen(v) + 1;
    }
    r->host = calloc(1, len);
    if (!r->host)
        return oom(ld);
    for (int i = 0; i < n; i++) {
        const config_setting_t *e =
            config_setting_is_array(h) ? config_setting_get_elem(h, (unsigned)i) : h;

        if (i)
            strcat(r->host, " ");
        strcat(r->host, config_setting_get_string(e));
    }
    return 0;
bad:
    cr_config_error(h, ld->err, ld->errlen,
                    "must be a host name or a list of them (\"*.example.com\" for any name below "
                    "a domain)");
    return -1;
}

static int addr_list_error(cr_loader *ld, const config_setting_t *s)
{
    cr_config_error(s, ld->err, ld->errlen,
                    "must be a list of client addresses and CIDR blocks, such as [ \"127.0.0.1\", "
                    "\"::1\", \"10.0.0.0/8\" ]");
    return -1;
}

/* One of a route's client address lists (`allow`, `deny`): a non-empty
 * list of strings, each parsed into a binary rule here so that a request
 * only compares bytes. */
static int load_addr_list(cr_loader *ld, const config_setting_t *route, const char *key,
                          cr_addr_rule **out, size_t *n)
{
    const config_setting_t *s = config_setting_get_member(route, key);
    int len;

    if (!s)
        return 0;
    if (!config_setting_is_array(s) && !config_setting_is_list(s))
        return addr_list_error(ld, s);
    len = config_setting_length(s);
    if (len == 0)
        return addr_list_error(ld, s);
    *out = calloc((size_t)len, sizeof(**out));
    if (!*out)
        return oom(ld);
    for (int i = 0; i < len; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *v =
            config_setting_type(e) == CONFIG_TYPE_STRING ? config_setting_get_string(e) : NULL;

        if (!v)
            return addr_list_error(ld, s);
        if (cr_addr_rule_parse(v, &(*out)[i]) < 0) {
            cr_config_error(e, ld->err, ld->errlen,
                            "'%s' is not an address, a CIDR block (\"10.0.0.0/8\", "
                            "\"fe80::/10\") or \"%s\"",
                            v, CR_ADDR_UNIX_WORD);
            return -1;
        }
        (*n)++;
    }
    return 0;
}

static int load_route_access(cr_loader *ld, const config_setting_t *s, cr_route_conf *r)
{
    if (load_addr_list(ld, s, "allow", &r->access.allow, &r->access.nallow) < 0)
        return -1;
    return load_addr_list(ld, s, "deny", &r->access.deny, &r->access.ndeny);
}

/* Checks path, module, host, allow and deny; the other keys of the route
 * are for its module to check in route_init. */
static int load_route(cr_loader *ld, const config_setting_t *s, cr_route_conf *r)
{
    const char *path = NULL, *module = NULL;

    if (!config_setting_is_group(s)) {
        cr_config_error(s, ld->err, ld->errlen, "must be a group { path = ...; module = ...; }");
        return -1;
    }
    if (get_str(ld, s, "path", CR_STR_NONEMPTY, &path) < 0 ||
        get_str(ld, s, "module", CR_STR_NONEMPTY, &module) < 0)
        return -1;
    if (!path || !module) {
        cr_config_error(s, ld->err, ld->errlen, "route needs '%s'", path ? "module" : "path");
        return -1;
    }
    if (path[0] != '/') {
        cr_config_error(config_setting_get_member(s, "path"), ld->err, ld->errlen,
                        "'%s' must start with '/'", path);
        return -1;
    }
    if (!module_listed(ld->cfg, module)) {
        cr_config_error(config_setting_get_member(s, "module"), ld->err, ld->errlen,
                        "module '%s' is not listed in 'modules'", module);
        return -1;
    }
    r->settings = s;
    if (dup_str(ld, &r->path, path) < 0 || dup_str(ld, &r->module, module) < 0)
        return -1;
    if (load_route_hosts(ld, s, r) < 0)
        return -1;
    return load_route_access(ld, s, r);
}

static int load_routes(cr_loader *ld, const config_setting_t *root)
{
    const config_setting_t *s = config_setting_get_member(root, "routes");
    cr_config *cfg = ld->cfg;
    int i, n;

    if (!s)
        return 0;
    if (!config_setting_is_list(s)) {
        cr_config_error(s, ld->err, ld->errlen,
                        "must be a list of groups ( { path = \"/\"; module = \"NAME\"; }, ... )");
        return -1;
    }
    n = config_setting_length(s);
    cfg->routes = calloc((size_t)n + 1, sizeof(*cfg->routes));
    if (!cfg->routes)
        return oom(ld);
    for (i = 0; i < n; i++) {
        /* Counted before it is filled so that a failure frees what it got. */
        cfg->nroutes++;
        if (load_route(ld, config_setting_get_elem(s, (unsigned)i), &cfg->routes[i]) < 0)
            return -1;
    }
    return 0;
}

int cr_config_load(cr_config *cfg, const char *file, char *const *overrides, size_t noverrides,
                   char *err, size_t errlen)
{
    cr_loader ld = {cfg, err, errlen};
    const config_setting_t *root;
    size_t i;

    memset(cfg, 0, sizeof(*cfg));
    if (err && errlen)
        err[0] = '\0';
    if (read_file(&ld, file) < 0)
        goto fail;
    /* Before validation, so that a bad override is reported like a bad line. */
    for (i = 0; i < noverrides; i++)
        if (apply_override(&ld, overrides[i]) < 0)
            goto fail;
    root = config_root_setting(&cfg->doc);
    if (check_top(&ld, root) < 0 || load_server(&ld, root) < 0 || load_listen(&ld, root) < 0 ||
        load_timeouts(&ld, root) < 0 || load_limits(&ld, root) < 0 || load_log(&ld, root) < 0 ||
        load_modules(&ld, root) < 0 || load_routes(&ld, root) < 0)
        goto fail;
    return 0;
fail:
    cr_config_free(cfg);
    return -1;
}
