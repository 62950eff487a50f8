#include "loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corral/log.h"

#define CR_SEARCH_DIRS 5

#ifndef CR_SBIN_DIR
#define CR_SBIN_DIR "/usr/local/sbin"
#endif

/* The installed module folder as seen from the binary's own folder: with
 * sbindir /usr/local/sbin and pkglibdir /usr/local/lib/corral it is
 * EXE_DIR/../lib/corral. So a tree installed with `make install prefix=DIR`
 * after the build, or moved as a whole, finds its own modules before those
 * of the configured prefix. False when that folder does not exist. */
static bool cr_relocated_dir(const char *exe_dir, char *out, size_t outlen)
{
    const char *sbin = CR_SBIN_DIR, *mod = CR_MODULE_DIR, *rest;
    size_t i = 0, common = 0, used;
    int ups = 0;

    /* The longest common prefix made of whole path components. */
    while (sbin[i] != '\0' && sbin[i] == mod[i])
        if (sbin[i++] == '/')
            common = i;
    if ((sbin[i] == '\0' || sbin[i] == '/') && (mod[i] == '\0' || mod[i] == '/'))
        common = i;
    for (const char *p = sbin + common; *p != '\0'; p++)
        if (*p != '/' && (p == sbin + common || p[-1] == '/'))
            ups++;
    for (rest = mod + common; *rest == '/'; rest++)
        ;
    used = (size_t)snprintf(out, outlen, "%s", exe_dir);
    for (int k = 0; k < ups && used < outlen; k++)
        used += (size_t)snprintf(out + used, outlen - used, "/..");
    if (*rest != '\0' && used < outlen)
        used += (size_t)snprintf(out + used, outlen - used, "/%s", rest);
    if (used >= outlen || access(out, X_OK) != 0)
        return false;
    char *real = realpath(out, NULL); /* "/opt/c/lib/corral", not "/opt/c/sbin/../lib/corral" */
    if (real != NULL && strlen(real) < outlen)
        memcpy(out, real, strlen(real) + 1);
    free(real);
    return true;
}

/* True when both name the same existing folder. */
static bool cr_same_dir(const char *a, const char *b)
{
    char *ra = realpath(a, NULL), *rb = realpath(b, NULL);
    bool same = ra != NULL && rb != NULL && strcmp(ra, rb) == 0;

    free(ra);
    free(rb);
    return same;
}

/* Where shared objects are looked for, in order: the config's module_path,
 * the build tree beside an uninstalled binary, the installed folder as
 * seen from the binary, the installed folder. */
static size_t cr_search_dirs(const char *exe_dir, const char *module_path,
                             char dirs[CR_SEARCH_DIRS][4096])
{
    size_t n = 0;

    if (module_path != NULL)
        snprintf(dirs[n++], 4096, "%s", module_path);
    if (exe_dir != NULL) {
        snprintf(dirs[n++], 4096, "%s/modules", exe_dir);
        snprintf(dirs[n++], 4096, "%s/mpm", exe_dir);
        if (cr_relocated_dir(exe_dir, dirs[n], 4096) && !cr_same_dir(dirs[n], CR_MODULE_DIR))
            n++;
    }
    snprintf(dirs[n++], 4096, "%s", CR_MODULE_DIR);
    return n;
}

static char *cr_find_object(const char *exe_dir, const char *module_path, const char *file,
                            char *searched, size_t searchedlen)
{
    char dirs[CR_SEARCH_DIRS][4096];
    size_t n = cr_search_dirs(exe_dir, module_path, dirs), used = 0;
    char path[4200];

    searched[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s", dirs[i], file);
        if (access(path, R_OK) == 0)
            return strdup(path);
        used += (size_t)snprintf(searched + used, used < searchedlen ? searchedlen - used : 0,
                                 "%s%s", i ? ", " : "", dirs[i]);
    }
    return NULL;
}

/* dlopen + dlsym of `symbol`; err holds the loader's message on failure. */
static void *cr_open_object(const char *path, const char *symbol, void **dl, char *err,
                            size_t errlen)
{
    void *sym;

    *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (*dl == NULL) {
        const char *why = dlerror();

        /* A core function it needs is missing: built for another corral. */
        snprintf(err, errlen, "%s%s", why,
                 strstr(why, "undefined symbol") != NULL ? " (rebuild it with corral-mod)" : "");
        return NULL;
    }
    sym = dlsym(*dl, symbol);
    if (sym == NULL) {
        snprintf(err, errlen, "%s: no symbol %s (not a corral shared object?)", path, symbol);
        dlclose(*dl);
        *dl = NULL;
    }
    return sym;
}

/* Checks the magic and ABI version at the head of a module or MPM table.
 * Those two fields open cr_module and cr_mpm in every ABI version, so they
 * can be read before anything else in the table is trusted. */
static int cr_check_abi(const char *kind, const char *name, const char *file, uint32_t magic,
                        uint32_t want_magic, uint32_t abi, uint32_t want_abi, char *why,
                        size_t whylen)
{
    if (magic != want_magic) {
        snprintf(why, whylen,
                 "%s '%s' (%s) is not a corral %s: magic 0x%08x, want 0x%08x; build it with "
                 "corral-mod",
                 kind, name, file, kind, (unsigned)magic, (unsigned)want_magic);
        return -1;
    }
    if (abi != want_abi) {
        snprintf(why, whylen,
                 "%s '%s' (%s) was built for %s ABI %u, this corral has ABI %u: rebuild it with "
                 "corral-mod",
                 kind, name, file, kind, (unsigned)abi, (unsigned)want_abi);
        return -1;
    }
    return 0;
}

static int cr_load_mpm(cr_generation *g, const char *exe_dir, char *err, size_t errlen)
{
    const config_setting_t *where = config_lookup(&g->cfg.doc, "mpm");
    char file[256], searched[8192], why[1024];
    const cr_mpm *mpm;

    snprintf(file, sizeof(file), "mpm_%s.so", g->cfg.mpm);
    g->mpm_file = cr_find_object(exe_dir, g->cfg.module_path, file, searched, sizeof(searched));
    if (g->mpm_file == NULL) {
        snprintf(why, sizeof(why), "MPM '%s': %s not found in %.600s", g->cfg.mpm, file, searched);
        goto fail;
    }
    mpm = cr_open_object(g->mpm_file, "cr_mpm_entry", &g->mpm_dl, why, sizeof(why));
    if (mpm == NULL)
        goto fail;
    if (cr_check_abi("MPM", g->cfg.mpm, g->mpm_file, mpm->magic, CR_MPM_MAGIC, mpm->abi, CR_MPM_ABI,
                     why, sizeof(why)) != 0)
        goto fail;
    g->mpm = mpm;
    return 0;
fail:
    if (where != NULL)
        cr_config_error(where, err, errlen, "%s", why);
    else
        snprintf(err, errlen, "%s", why);
    return -1;
}

static int cr_configure_mpm(cr_generation *g, char *err, size_t errlen)
{
    char group[128];
    void *state = NULL;

    snprintf(group, sizeof(group), "mpm_%s", g->cfg.mpm);
    memset(&g->policy, 0, sizeof(g->policy));
    if (g->mpm->configure(cr_config_group(&g->cfg, group), &g->policy, &state, err, errlen) !=
        CR_OK)
        return -1;
    /* Kept before the checks below, so that a refused policy still frees it. */
    g->mpm_state = state;
    if (g->policy.threads_per_child < 1 || g->policy.max_processes < 1) {
        snprintf(err, errlen, "MPM '%s' asked for no processes or threads", g->cfg.mpm);
        return -1;
    }
    return 0;
}

static int cr_load_module(cr_generation *g, size_t i, const char *exe_dir, char *err, size_t errlen)
{
    const config_setting_t *where = config_lookup(&g->cfg.doc, "modules");
    cr_module_ref *ref = &g->modules[i];
    char file[256], searched[8192], why[1024], group[128];
    const cr_module *m;

    /* Errors name the module's own entry of the list, when there is one. */
    if (where != NULL && config_setting_get_elem(where, (unsigned)i) != NULL)
        where = config_setting_get_elem(where, (unsigned)i);

    ref->name = strdup(g->cfg.modules[i]);
    snprintf(file, sizeof(file), "mod_%s.so", ref->name);
    ref->file = cr_find_object(exe_dir, g->cfg.module_path, file, searched, sizeof(searched));
    if (ref->file == NULL) {
        snprintf(why, sizeof(why), "module '%s': %s not found in %.600s", ref->name, file,
                 searched);
        goto fail;
    }
    m = cr_open_object(ref->file, "cr_module_entry", &ref->dl, why, sizeof(why));
    if (m == NULL)
        goto fail;
    if (cr_check_abi("module", ref->name, ref->file, m->magic, CR_MODULE_MAGIC, m->abi,
                     CR_MODULE_ABI, why, sizeof(why)) != 0)
        goto fail;
    /* Refused now rather than crashing the first child that gets a request. */
    if (m->handle == NULL) {
        snprintf(why, sizeof(why), "module '%s' (%s) has no handle function", ref->name, ref->file);
        goto fail;
    }
    ref->module = m;
    snprintf(group, sizeof(group), "mod_%s", ref->name);
    if (m->init != NULL &&
        m->init(cr_config_group(&g->cfg, group), g->cfg.dir, err, errlen) != CR_OK)
        return -1;
    return 0;
fail:
    if (where != NULL)
        cr_config_error(where, err, errlen, "%s", why);
    else
        snprintf(err, errlen, "%s", why);
    return -1;
}

static const cr_module *cr_generation_module(const cr_generation *g, const char *name)
{
    for (size_t i = 0; i < g->nmodules; i++)
        if (g->modules[i].module != NULL && strcmp(g->modules[i].name, name) == 0)
            return g->modules[i].module;
    return NULL;
}

static int cr_build_routes(cr_generation *g, char *err, size_t errlen)
{
    g->router.routes = calloc(g->cfg.nroutes ? g->cfg.nroutes : 1, sizeof(cr_route));
    if (g->router.routes == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < g->cfg.nroutes; i++) {
        const cr_route_conf *rc = &g->cfg.routes[i];
        cr_route *r = &g->router.routes[i];
        cr_route_ctx ctx = {
            .settings = rc->settings, .config_dir = g->cfg.dir, .err = err, .errlen = errlen};

        r->path = (cr_str){rc->path, strlen(rc->path)};
        r->host = rc->host;
        r->access = rc->access;
        r->module = cr_generation_module(g, rc->module);
        g->router.nroutes = i + 1;
        if (r->module == NULL) {
            cr_config_error(rc->settings, err, errlen, "module '%s' is not loaded", rc->module);
            return -1;
        }
        if (r->module->route_init != NULL && r->module->route_init(&ctx) != CR_OK)
            return -1;
        r->route_data = ctx.route_data;
        r->nonblocking = (r->module->flags | ctx.flags) & CR_MODULE_NONBLOCKING;
        r->stream_body = (r->module->flags | ctx.flags) & CR_MODULE_STREAM_BODY;
    }
    return 0;
}

int cr_generation_load(cr_generation *g, const char *exe_dir, const char *file,
                       char *const *overrides, size_t noverrides, char *err, size_t errlen)
{
    memset(g, 0, sizeof(*g));
    if (cr_config_load(&g->cfg, file, overrides, noverrides, err, errlen) != 0)
        return -1;
    if (cr_load_mpm(g, exe_dir, err, errlen) != 0 || cr_configure_mpm(g, err, errlen) != 0)
        goto fail;
    g->modules = calloc(g->cfg.nmodules ? g->cfg.nmodules : 1, sizeof(*g->modules));
    if (g->modules == NULL)
        goto fail;
    g->nmodules = g->cfg.nmodules;
    for (size_t i = 0; i < g->nmodules; i++)
        if (cr_load_module(g, i, exe_dir, err, errlen) != 0)
            goto fail;
    if (cr_build_routes(g, err, errlen) != 0)
        goto fail;
    return 0;
fail:
    cr_generation_free(g);
    return -1;
}

/* Shared objects stay mapped for the life of the process: a restart that
 * loads the same file gets the same handle back, and whatever a module's
 * init allocated stays reachable from it. */
void cr_generation_free(cr_generation *g)
{
    if (g->mpm != NULL && g->mpm->release != NULL && g->mpm_state != NULL)
        g->mpm->release(g->mpm_state);
    for (size_t i = 0; i < g->nmodules; i++) {
        free(g->modules[i].name);
        free(g->modules[i].file);
    }
    for (size_t i = 0; i < g->router.nroutes; i++) {
        const cr_route *r = &g->router.routes[i];

        if (r->module != NULL && r->module->route_exit != NULL && r->route_data != NULL)
            r->module->route_exit(r->route_data);
    }
    free(g->modules);
    free(g->router.routes);
    free(g->mpm_file);
    cr_config_free(&g->cfg);
    memset(g, 0, sizeof(*g));
}

static void cr_list_dir_mpms(FILE *out, const char *dir, char *seen, size_t seenlen)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        char name[256];

        if (len < 8 || strncmp(e->d_name, "mpm_", 4) != 0 || strcmp(e->d_name + len - 3, ".so"))
            continue;
        snprintf(name, sizeof(name), " %.*s ", (int)(len - 7), e->d_name + 4);
        if (strstr(seen, name) != NULL)
            continue;
        strncat(seen, name, seenlen - strlen(seen) - 1);
        fprintf(out, "  %.*s (%s/%s)\n", (int)(len - 7), e->d_name + 4, dir, e->d_name);
    }
    closedir(d);
}

char *cr_loader_exe_dir(void)
{
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);

    if (n <= 0)
        return NULL;
    path[n] = '\0';
    return strdup(dirname(path));
}

void cr_loader_list_dirs(FILE *out, const char *exe_dir, const char *module_path,
                         const char *indent)
{
    char dirs[CR_SEARCH_DIRS][4096];
    size_t n = cr_search_dirs(exe_dir, module_path, dirs);

    for (size_t i = 0; i < n; i++)
        if (access(dirs[i], X_OK) == 0)
            fprintf(out, "%s%s\n", indent, dirs[i]);
}

void cr_loader_list_mpms(FILE *out, const char *exe_dir, const char *module_path)
{
    char dirs[CR_SEARCH_DIRS][4096];
    char seen[4096] = "";
    size_t n = cr_search_dirs(exe_dir, module_path, dirs);

    for (size_t i = 0; i < n; i++)
        cr_list_dir_mpms(out, dirs[i], seen, sizeof(seen));
}
