/* corral: command line, config test, version report, then the master. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corral/corral.h"
#include "cr_build.h"
#include "loader.h"
#include "master.h"

static void cr_usage(FILE *out)
{
    fprintf(out,
            "usage: corral [-f FILE] [-o KEY=VALUE]... [-D FOREGROUND] [-X] [-t] [-V] [-h]\n"
            "  -f FILE        config file (default etc/corral.conf, else %s/corral.conf)\n"
            "  -o KEY=VALUE   override a config setting; VALUE in config syntax, a bare\n"
            "                 word is a string, a dotted KEY reaches into groups\n"
            "  -D FOREGROUND  do not become a daemon\n"
            "  -X             serve in this one process, no children (for debuggers)\n"
            "  -t             test the config and exit (\"Syntax OK\" or the error)\n"
            "  -V             print version, build options and the MPMs found\n"
            "  -h             this help\n",
            CR_SYSCONF_DIR);
}

static const char *cr_default_config(void)
{
    static char installed[PATH_MAX];

    if (access("etc/corral.conf", F_OK) == 0)
        return "etc/corral.conf";
    snprintf(installed, sizeof(installed), "%s/corral.conf", CR_SYSCONF_DIR);
    return installed;
}

static int cr_add_override(cr_options *opt, char *kv)
{
    char **grown = realloc(opt->overrides, (opt->noverrides + 1) * sizeof(*grown));

    if (grown == NULL)
        return -1;
    opt->overrides = grown;
    opt->overrides[opt->noverrides++] = kv;
    return 0;
}

static int cr_parse_args(int argc, char **argv, cr_options *opt)
{
    int ch;

    while ((ch = getopt(argc, argv, "f:o:D:XtVvh")) != -1) {
        switch (ch) {
        case 'f':
            opt->config_file = optarg;
            break;
        case 'o':
            if (cr_add_override(opt, optarg) != 0)
                return -1;
            break;
        case 'D':
            if (strcmp(optarg, "FOREGROUND") != 0) {
                fprintf(stderr, "corral: unknown -D %s (known: FOREGROUND)\n", optarg);
                return -1;
            }
            opt->foreground = true;
            break;
        case 'X':
            opt->single_process = true;
            break;
        case 't':
            opt->test_only = true;
            break;
        case 'V':
        case 'v':
            opt->show_version = true;
            break;
        case 'h':
            cr_usage(stdout);
            exit(0);
        default:
            cr_usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "corral: unexpected argument '%s'\n", argv[optind]);
        cr_usage(stderr);
        return -1;
    }
    if (opt->config_file == NULL)
        opt->config_file = cr_default_config();
    return 0;
}

static void cr_show_version(const char *exe_dir)
{
    printf("corral %s\n", CR_VERSION);
    printf("build: %s, module ABI %u, MPM ABI %u\n", CR_BUILD_OPTIONS, CR_MODULE_ABI, CR_MPM_ABI);
    /* Where this binary looks, which is not the configured folder for a
     * tree installed elsewhere or run from the build. */
    printf("module folders:\n");
    cr_loader_list_dirs(stdout, exe_dir, NULL, "  ");
    printf("MPMs found:\n");
    cr_loader_list_mpms(stdout, exe_dir, NULL);
}

int main(int argc, char **argv)
{
    cr_options opt = {0};
    /* Lives as long as the process: main returns only when the master (or
     * a child, in its copy) is done. */
    cr_server server = {.access_log = -1};
    cr_server *srv = &server;
    cr_generation *gen = NULL;
    char err[1024];
    int status = 1;

    if (cr_parse_args(argc, argv, &opt) != 0)
        goto done;
    srv->exe_dir = cr_loader_exe_dir();
    cr_status_init(srv);
    if (opt.show_version) {
        cr_show_version(srv->exe_dir);
        status = 0;
        goto done;
    }
    gen = calloc(1, sizeof(*gen));
    if (gen == NULL) {
        fprintf(stderr, "corral: %s\n", strerror(ENOMEM));
        goto done;
    }
    if (cr_generation_load(gen, srv->exe_dir, opt.config_file, opt.overrides, opt.noverrides, err,
                           sizeof(err)) != 0) {
        fprintf(stderr, "corral: %s\n", err);
        free(gen);
        goto done;
    }
    gen->number = 1;
    srv->gen = gen;
    if (opt.test_only) {
        printf("Syntax OK (mpm %s, %zu modules, %zu routes)\n", gen->cfg.mpm, gen->nmodules,
               gen->router.nroutes);
        status = 0;
    } else {
        status = cr_master_run(srv, &opt);
    }
    cr_generation_free(srv->gen);
    free(srv->gen);
done:
    free(srv->exe_dir);
    free(opt.overrides);
    return status;
}
