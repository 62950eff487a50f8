/* Unit tests of the configuration loader: defaults, the shipped
 * etc/corral.conf, every kind of error message, -o overrides, path
 * resolution and the helpers modules use to check their own settings. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "corral/log.h"
#include "corral/module.h"

/* Each test gets a fresh folder holding corral.conf. */
static char tmp_dir[PATH_MAX];
static char conf[PATH_MAX + 32];
static char err[sizeof(conf) + 512];
static cr_config cfg;

static char *in_dir(const char *rel)
{
    static char buf[PATH_MAX + 64];

    snprintf(buf, sizeof(buf), "%s/%s", tmp_dir, rel);
    return buf;
}

static void setup(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[PATH_MAX];

    snprintf(tmpl, sizeof(tmpl), "%s/cr_config_XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    ck_assert_ptr_nonnull(realpath(tmpl, tmp_dir));
    snprintf(conf, sizeof(conf), "%s/corral.conf", tmp_dir);
    memset(&cfg, 0, sizeof(cfg));
    err[0] = '\0';
}

static void teardown(void)
{
    cr_config_free(&cfg);
    unlink(conf);
    unlink(in_dir("inc.conf"));
    rmdir(tmp_dir);
}

static void write_conf(const char *text)
{
    FILE *f = fopen(conf, "w");

    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static int load(const char *text, char *const *ov, size_t nov)
{
    write_conf(text);
    return cr_config_load(&cfg, conf, ov, nov, err, sizeof(err));
}

/* Loads text expecting failure with exactly `want`, where "@" stands for
 * the config file's path. */
static void expect_error(const char *text, char *const *ov, size_t nov, const char *want)
{
    char full[sizeof(conf) + 512];
    const char *at = strchr(want, '@');

    if (at)
        snprintf(full, sizeof(full), "%.*s%s%s", (int)(at - want), want, conf, at + 1);
    else
        snprintf(full, sizeof(full), "%s", want);
    ck_assert_int_eq(load(text, ov, nov), -1);
    ck_assert_str_eq(err, full);
    ck_assert_ptr_null(cfg.file);
    ck_assert_ptr_null(cfg.doc.root);
}

/* ---- defaults and the shipped file ---- */

START_TEST(test_defaults)
{
    ck_assert_int_eq(load("", NULL, 0), 0);
    ck_assert_str_eq(cfg.file, in_dir("corral.conf"));
    ck_assert_str_eq(cfg.dir, tmp_dir);
    ck_assert_uint_eq(cfg.nlisten, 1);
    ck_assert_str_eq(cfg.listen[0], "127.0.0.1:8080");
    ck_assert_int_eq(cfg.backlog, 511);
    ck_assert_str_eq(cfg.mpm, "prefork");
    ck_assert_ptr_null(cfg.module_path);
    ck_assert_ptr_null(cfg.user);
    ck_assert_ptr_null(cfg.group);
    ck_assert_str_eq(cfg.pidfile, in_dir("logs/corral.pid"));
    ck_assert_ptr_nonnull(cfg.server_name);
    ck_assert_int_gt(strlen(cfg.server_name), 0);
    ck_assert_int_eq(cfg.timeouts.header, 10);
    ck_assert_int_eq(cfg.timeouts.body, 30);
    ck_assert_int_eq(cfg.timeouts.keepalive, 5);
    ck_assert_int_eq(cfg.timeouts.write, 30);
    ck_assert_int_eq(cfg.timeouts.graceful, 0);
    ck_assert_uint_eq(cfg.limits.header_bytes, 8192);
    ck_assert_uint_eq(cfg.limits.uri_bytes, 4096);
    ck_assert_uint_eq(cfg.limits.body_bytes, 1048576);
    ck_assert_int_eq(cfg.limits.requests_per_child, 0);
    ck_assert_int_eq(cfg.limits.keepalive_requests, 1000);
    ck_assert_str_eq(cfg.log.error, in_dir("logs/error.log"));
    ck_assert_int_eq(cfg.log.level, CR_LOG_INFO);
    ck_assert_str_eq(cfg.log.access, in_dir("logs/access.log"));
    ck_assert_uint_eq(cfg.nmodules, 3);
    ck_assert_str_eq(cfg.modules[0], "hello");
    ck_assert_str_eq(cfg.modules[1], "echo");
    ck_assert_str_eq(cfg.modules[2], "static");
    ck_assert_uint_eq(cfg.nroutes, 0);
    ck_assert_ptr_null(cr_config_group(&cfg, "mpm_prefork"));
}
END_TEST

START_TEST(test_all_keys)
{
    static const char text[] = "listen = ( \"*:80\", \"[::1]:0\", \"10.0.0.1:65535\" );\n"
                               "backlog = 1;\n"
                               "mpm = \"event\";\n"
                               "module_path = \"/opt/mods\";\n"
                               "user = \"www\";\n"
                               "group = \"web\";\n"
                               "pidfile = \"/run/c.pid\";\n"
                               "server_name = \"example.org\";\n"
                               "timeouts = { header = 1; body = 3600; keepalive = 0; write = 2;"
                               " graceful = 86400; };\n"
                               "limits = { header_bytes = 1024; uri_bytes = 1024;"
                               " body_bytes = 1073741824L; requests_per_child = 7;"
                               " keepalive_requests = 0; };\n"
                               "log = { error = \"-\"; level = \"debug\"; access = \"\"; };\n"
                               "modules = [ \"a_1\" ];\n"
                               "routes = ( { path = \"/x\"; module = \"a_1\"; host = \"h\"; } );\n";

    ck_assert_msg(load(text, NULL, 0) == 0, "%s", err);
    ck_assert_uint_eq(cfg.nlisten, 3);
    ck_assert_str_eq(cfg.listen[1], "[::1]:0");
    ck_assert_int_eq(cfg.backlog, 1);
    ck_assert_str_eq(cfg.mpm, "event");
    ck_assert_str_eq(cfg.module_path, "/opt/mods");
    ck_assert_str_eq(cfg.user, "www");
    ck_assert_str_eq(cfg.group, "web");
    ck_assert_str_eq(cfg.pidfile, "/run/c.pid");
    ck_assert_str_eq(cfg.server_name, "example.org");
    ck_assert_int_eq(cfg.timeouts.header, 1);
    ck_assert_int_eq(cfg.timeouts.body, 3600);
    ck_assert_int_eq(cfg.timeouts.keepalive, 0);
    ck_assert_int_eq(cfg.timeouts.write, 2);
    ck_assert_int_eq(cfg.timeouts.graceful, 86400);
    ck_assert_uint_eq(cfg.limits.header_bytes, 1024);
    ck_assert_uint_eq(cfg.limits.uri_bytes, 1024);
    ck_assert_uint_eq(cfg.limits.body_bytes, 1073741824);
    ck_assert_int_eq(cfg.limits.requests_per_child, 7);
    ck_assert_int_eq(cfg.limits.keepalive_requests, 0);
    ck_assert_str_eq(cfg.log.error, "-");
    ck_assert_int_eq(cfg.log.level, CR_LOG_DEBUG);
    ck_assert_ptr_null(cfg.log.access);
    ck_assert_uint_eq(cfg.nroutes, 1);
    ck_assert_str_eq(cfg.routes[0].path, "/x");
    ck_assert_str_eq(cfg.routes[0].module, "a_1");
    ck_assert_str_eq(cfg.routes[0].host, "h");
}
END_TEST

START_TEST(test_small_header_lowers_uri_default)
{
    ck_assert_int_eq(load("limits = { header_bytes = 2000; };", NULL, 0), 0);
    ck_assert_uint_eq(cfg.limits.uri_bytes, 2000);
}
END_TEST

START_TEST(test_shipped_conf)
{
    const char *top = getenv("CR_TOP_SRCDIR");
    char path[PATH_MAX + 32];
    const config_setting_t *g, *root;
    int v = 0;
    const char *s = NULL;

    snprintf(path, sizeof(path), "%s/etc/corral.conf", top && *top ? top : ".");
    ck_assert_msg(access(path, R_OK) == 0, "%s not found: set CR_TOP_SRCDIR", path);
    ck_assert_msg(cr_config_load(&cfg, path, NULL, 0, err, sizeof(err)) == 0, "%s", err);
    ck_assert_str_eq(cfg.listen[0], "127.0.0.1:8080");
    ck_assert_str_eq(cfg.mpm, "prefork");
    ck_assert_int_eq(strcmp(cfg.dir + strlen(cfg.dir) - 4, "/etc"), 0);
    snprintf(path, sizeof(path), "%s/logs/error.log", cfg.dir);
    ck_assert_str_eq(cfg.log.error, path);
    snprintf(path, sizeof(path), "%s/logs/corral.pid", cfg.dir);
    ck_assert_str_eq(cfg.pidfile, path);
    ck_assert_uint_eq(cfg.nmodules, 5);
    ck_assert_uint_eq(cfg.nroutes, 7);
    ck_assert_str_eq(cfg.routes[0].path, "/hello");
    ck_assert_str_eq(cfg.routes[1].module, "echo");
    ck_assert_str_eq(cfg.routes[2].module, "delay");
    ck_assert_str_eq(cfg.routes[3].path, "/wait");
    ck_assert_str_eq(cfg.routes[6].path, "/");
    ck_assert_str_eq(cfg.routes[6].module, "static");
    /* The scoreboard pages show clients' requests: loopback clients only. */
    for (size_t i = 4; i <= 5; i++) {
        ck_assert_str_eq(cfg.routes[i].module, "status");
        ck_assert_uint_eq(cfg.routes[i].access.nallow, 2);
        ck_assert_int_eq(cfg.routes[i].access.allow[0].net.family, CR_ADDR_V4);
        ck_assert_int_eq(cfg.routes[i].access.allow[1].net.family, CR_ADDR_V6);
    }
    ck_assert_uint_eq(cfg.routes[6].access.nallow + cfg.routes[6].access.ndeny, 0);
    root = cfg.routes[6].settings;
    ck_assert(config_setting_lookup_string(root, "root", &s));
    ck_assert_str_eq(s, "www");
    g = cr_config_group(&cfg, "mpm_prefork");
    ck_assert_ptr_nonnull(g);
    ck_assert(config_setting_lookup_int(g, "max_workers", &v));
    ck_assert_int_eq(v, 150);
}
END_TEST

START_TEST(test_include_from_config_dir)
{
    FILE *f = fopen(in_dir("inc.conf"), "w");

    ck_assert_ptr_nonnull(f);
    fputs("\ntimeouts = { header = 0; };\n", f);
    fclose(f);
    expect_error("@include \"inc.conf\"\n", NULL, 0,
                 "inc.conf:2: key 'timeouts.header': must be an integer between 1 and 3600");
    f = fopen(in_dir("inc.conf"), "w");
    ck_assert_ptr_nonnull(f);
    fputs("timeouts = { header = 3; };\n", f);
    fclose(f);
    ck_assert_msg(load("@include \"inc.conf\"\n", NULL, 0) == 0, "%s", err);
    ck_assert_int_eq(cfg.timeouts.header, 3);
}
END_TEST

/* ---- errors ---- */

START_TEST(test_missing_file)
{
    snprintf(conf, sizeof(conf), "%s/nothing.conf", tmp_dir);
    ck_assert_int_eq(cr_config_load(&cfg, conf, NULL, 0, err, sizeof(err)), -1);
    ck_assert_str_eq(err, in_dir("nothing.conf: cannot open: No such file or directory"));
    snprintf(conf, sizeof(conf), "%s/corral.conf", tmp_dir);
}
END_TEST

START_TEST(test_parse_error)
{
    expect_error("backlog = 5;\nmpm = ;\n", NULL, 0, "@:2: syntax error");
}
END_TEST

START_TEST(test_unknown_top_key)
{
    expect_error("backlog = 5;\n\nbogus = 2;\n", NULL, 0, "@:3: unknown key 'bogus'");
    expect_error("mpm_ = { };\n", NULL, 0, "@:1: unknown key 'mpm_'");
}
END_TEST

START_TEST(test_unknown_group_key)
{
    expect_error("timeouts = {\n  header = 5;\n  nap = 1;\n};\n", NULL, 0,
                 "@:3: unknown key 'timeouts.nap'");
    expect_error("limits = { uri = 1; };\n", NULL, 0, "@:1: unknown key 'limits.uri'");
    expect_error("log = { file = \"x\"; };\n", NULL, 0, "@:1: unknown key 'log.file'");
}
END_TEST

START_TEST(test_owned_groups)
{
    ck_assert_int_eq(load("mpm_x = { anything = 1; };\nmod_y = { z = [1, 2]; };\n", NULL, 0), 0);
    ck_assert_ptr_nonnull(cr_config_group(&cfg, "mod_y"));
    ck_assert_ptr_null(cr_config_group(&cfg, "backlog"));
    cr_config_free(&cfg);
    expect_error("\nmpm_prefork = 5;\n", NULL, 0,
                 "@:2: key 'mpm_prefork': must be a group { ... }");
}
END_TEST

START_TEST(test_wrong_type)
{
    expect_error("backlog = \"511\";\n", NULL, 0,
                 "@:1: key 'backlog': must be an integer between 1 and 65535");
    expect_error("mpm = 5;\n", NULL, 0, "@:1: key 'mpm': must be a string");
    expect_error("timeouts = 5;\n", NULL, 0, "@:1: key 'timeouts': must be a group { ... }");
    expect_error("timeouts = { body = 1.5; };\n", NULL, 0,
                 "@:1: key 'timeouts.body': must be an integer between 1 and 3600");
    expect_error("listen = \"127.0.0.1:80\";\n", NULL, 0,
                 "@:1: key 'listen': must be an array of strings [ \"...\", ... ]");
    expect_error("listen = ( \"*:80\", 5 );\n", NULL, 0, "@:1: key 'listen[1]': must be a string");
    expect_error("routes = [ ];\n", NULL, 0,
                 "@:1: key 'routes': must be a list of groups "
                 "( { path = \"/\"; module = \"NAME\"; }, ... )");
    expect_error("routes = ( \"/\" );\n", NULL, 0,
                 "@:1: key 'routes[0]': must be a group { path = ...; module = ...; }");
    expect_error("log = { level = 3; };\n", NULL, 0, "@:1: key 'log.level': must be a string");
}
END_TEST

START_TEST(test_out_of_range)
{
    expect_error("timeouts = {\n header = 0;\n};\n", NULL, 0,
                 "@:2: key 'timeouts.header': must be an integer between 1 and 3600");
    expect_error("timeouts = { keepalive = 3601; };\n", NULL, 0,
                 "@:1: key 'timeouts.keepalive': must be an integer between 0 and 3600");
    expect_error("backlog = 65536;\n", NULL, 0,
                 "@:1: key 'backlog': must be an integer between 1 and 65535");
    expect_error("limits = { header_bytes = 1023; };\n", NULL, 0,
                 "@:1: key 'limits.header_bytes': must be an integer between 1024 and 1048576");
    expect_error("limits = { header_bytes = 2048; uri_bytes = 4096; };\n", NULL, 0,
                 "@:1: key 'limits.uri_bytes': must be an integer between 64 and 2048");
    expect_error("limits = { body_bytes = 1073741825L; };\n", NULL, 0,
                 "@:1: key 'limits.body_bytes': must be an integer between 0 and 1073741824");
    expect_error("limits = { requests_per_child = -1; };\n", NULL, 0,
                 "@:1: key 'limits.requests_per_child': must be an integer >= 0");
}
END_TEST

START_TEST(test_bad_names)
{
    expect_error("mpm = \"Pre-fork\";\n", NULL, 0,
                 "@:1: key 'mpm': 'Pre-fork' must be a name of lowercase letters, digits and '_'");
    expect_error("modules = [ \"echo\", \"mod/x\" ];\n", NULL, 0,
                 "@:1: key 'modules[1]': 'mod/x' must be a name of lowercase letters, digits and "
                 "'_'");
    expect_error("modules = [ \"echo\", \"echo\" ];\n", NULL, 0,
                 "@:1: key 'modules[1]': module 'echo' is listed twice");
    expect_error("pidfile = \"\";\n", NULL, 0, "@:1: key 'pidfile': must not be empty");
}
END_TEST

START_TEST(test_routes)
{
    ck_assert_int_eq(load("routes = ( { path = \"/s\"; module = \"static\"; root = \"www\";"
                          " extra = [ 1, 2 ]; } );",
                          NULL, 0),
                     0);
    ck_assert_uint_eq(cfg.nroutes, 1);
    ck_assert_ptr_null(cfg.routes[0].host);
    ck_assert_ptr_nonnull(config_setting_get_member(cfg.routes[0].settings, "extra"));
    cr_config_free(&cfg);

    expect_error(
        "modules = [ \"echo\" ];\nroutes = (\n  { path = \"/\";\n    module = \"hello\"; }\n);\n",
        NULL, 0, "@:4: key 'routes[0].module': module 'hello' is not listed in 'modules'");
    expect_error(
        "routes = (\n  { path = \"/\"; module = \"echo\"; },\n  { module = \"echo\"; }\n);\n", NULL,
        0, "@:3: key 'routes[1]': route needs 'path'");
    expect_error("routes = ( { path = \"/\"; } );\n", NULL, 0,
                 "@:1: key 'routes[0]': route needs 'module'");
    expect_error("routes = ( { path = \"x\"; module = \"echo\"; } );\n", NULL, 0,
                 "@:1: key 'routes[0].path': 'x' must start with '/'");
    expect_error("routes = ( { path = \"/\"; module = \"echo\"; host = 1; } );\n", NULL, 0,
                 "@:1: key 'routes[0].host': must be a host name or a list of them "
                 "(\"*.example.com\" for any name below a domain)");
    expect_error("routes = ( { path = \"/\"; module = \"echo\"; host = [ \"a\", \"b c\" ]; } );\n",
                 NULL, 0,
                 "@:1: key 'routes[0].host': must be a host name or a list of them "
                 "(\"*.example.com\" for any name below a domain)");
    expect_error("routes = ( { path = \"/\"; module = \"echo\"; host = [ ]; } );\n", NULL, 0,
                 "@:1: key 'routes[0].host': must be a host name or a list of them "
                 "(\"*.example.com\" for any name below a domain)");
}
END_TEST

START_TEST(test_route_host_list)
{
    ck_assert_msg(load("routes = ( { path = \"/\"; module = \"echo\";"
                       " host = [ \"a.example\", \"*.b.example\", \"[::1]\" ]; } );",
                       NULL, 0) == 0,
                  "%s", err);
    ck_assert_str_eq(cfg.routes[0].host, "a.example *.b.example [::1]");
}
END_TEST

START_TEST(test_route_access)
{
    ck_assert_msg(load("routes = ( { path = \"/s\"; module = \"echo\";"
                       " allow = [ \"127.0.0.1\", \"::1\", \"10.0.0.0/8\", \"unix\" ];"
                       " deny = ( \"10.1.0.0/16\" ); },"
                       " { path = \"/\"; module = \"echo\"; } );",
                       NULL, 0) == 0,
                  "%s", err);
    ck_assert_uint_eq(cfg.routes[0].access.nallow, 4);
    ck_assert_uint_eq(cfg.routes[0].access.ndeny, 1);
    ck_assert_int_eq(cfg.routes[0].access.allow[0].net.family, CR_ADDR_V4);
    ck_assert_int_eq(cfg.routes[0].access.allow[1].net.family, CR_ADDR_V6);
    ck_assert_int_eq(cfg.routes[0].access.allow[2].net.bytes[0], 10);
    ck_assert_int_eq(cfg.routes[0].access.allow[2].mask[0], 0xff);
    ck_assert_int_eq(cfg.routes[0].access.allow[2].mask[1], 0);
    ck_assert_int_eq(cfg.routes[0].access.allow[3].net.family, CR_ADDR_UNIX);
    ck_assert_uint_eq(cfg.routes[1].access.nallow + cfg.routes[1].access.ndeny, 0);
}
END_TEST

START_TEST(test_route_access_errors)
{
    char *ov[] = {"routes=({ path = \"/\"; module = \"echo\"; deny = [ \"::/129\" ]; })"};

    expect_error("routes = (\n { path = \"/\"; module = \"echo\";\n"
                 "   allow = [ \"127.0.0.1\", \"10.0.0.0/33\" ]; }\n);\n",
                 NULL, 0,
                 "@:3: key 'routes[0].allow[1]': '10.0.0.0/33' is not an address, a CIDR block "
                 "(\"10.0.0.0/8\", \"fe80::/10\") or \"unix\"");
    expect_error("routes = ( { path = \"/\"; module = \"echo\"; deny = [ \"localhost\" ]; } );\n",
                 NULL, 0,
                 "@:1: key 'routes[0].deny[0]': 'localhost' is not an address, a CIDR block "
                 "(\"10.0.0.0/8\", \"fe80::/10\") or \"unix\"");
    expect_error("routes = ( { path = \"/\"; module = \"echo\"; allow = \"127.0.0.1\"; } );\n",
                 NULL, 0,
                 "@:1: key 'routes[0].allow': must be a list of client addresses and CIDR "
                 "blocks, such as [ \"127.0.0.1\", \"::1\", \"10.0.0.0/8\" ]");
    expect_error("routes = ( { path = \"/\"; module = \"echo\"; allow = [ ]; } );\n", NULL, 0,
                 "@:1: key 'routes[0].allow': must be a list of client addresses and CIDR "
                 "blocks, such as [ \"127.0.0.1\", \"::1\", \"10.0.0.0/8\" ]");
    expect_error("routes = ( { path = \"/\"; module = \"echo\"; deny = [ 1, 2 ]; } );\n", NULL, 0,
                 "@:1: key 'routes[0].deny': must be a list of client addresses and CIDR "
                 "blocks, such as [ \"127.0.0.1\", \"::1\", \"10.0.0.0/8\" ]");
    expect_error("routes = ( { path = \"/\"; module = \"echo\"; deny = { a = 1; }; } );\n", NULL, 0,
                 "@:1: key 'routes[0].deny': must be a list of client addresses and CIDR "
                 "blocks, such as [ \"127.0.0.1\", \"::1\", \"10.0.0.0/8\" ]");
    expect_error("", ov, 1,
                 "-o routes: key 'routes[0].deny[0]': '::/129' is not an address, a CIDR block "
                 "(\"10.0.0.0/8\", \"fe80::/10\") or \"unix\"");
}
END_TEST

START_TEST(test_listen_good)
{
    ck_assert_msg(load("listen = [ \"*:0\", \"0.0.0.0:1\", \"[::]:65535\", \"[fe80::1]:80\","
                       " \"unix:run/c.sock\", \"unix:/tmp/c.sock\" ];",
                       NULL, 0) == 0,
                  "%s", err);
    ck_assert_uint_eq(cfg.nlisten, 6);
    ck_assert_str_eq(cfg.listen[0], "*:0");
    ck_assert_str_eq(cfg.listen[3], "[fe80::1]:80");
    ck_assert_str_eq(cfg.listen[4] + 5, in_dir("run/c.sock"));
    ck_assert_int_eq(strncmp(cfg.listen[4], "unix:/", 6), 0);
    ck_assert_str_eq(cfg.listen[5], "unix:/tmp/c.sock");
}
END_TEST

START_TEST(test_listen_bad)
{
    static const char *const bad[] = {
        "localhost:80", "1.2.3.4",   "1.2.3.4:70000", "1.2.3.4:", "[::1]80", "[::1]:x",
        "::1:80",       "*:",        "1.2.3:80",      ":80",      "[]:80",   "1.2.3.4:-1",
        "1.2.3.4:8 0",  "*:0080000", "[1.2.3.4]:80",
    };
    char text[256], want[256];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "listen = [ \"%s\" ];\n", bad[i]);
        snprintf(want, sizeof(want),
                 "@:1: key 'listen[0]': '%s' is not IPV4:PORT, *:PORT, [IPV6]:PORT or unix:PATH",
                 bad[i]);
        expect_error(text, NULL, 0, want);
    }
    expect_error("listen = [ \"unix:\" ];\n", NULL, 0,
                 "@:1: key 'listen[0]': 'unix:' needs a socket path");
    expect_error("listen = [ ];\n", NULL, 0, "@:1: key 'listen': needs at least one address");
}
END_TEST

START_TEST(test_listen_unix_too_long)
{
    char text[512], want[512];
    char name[200];

    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    snprintf(text, sizeof(text), "listen = [ \"unix:/%s\" ];\n", name);
    snprintf(want, sizeof(want), "@:1: key 'listen[0]': socket path '/%s' is longer than 107 bytes",
             name);
    expect_error(text, NULL, 0, want);
}
END_TEST

START_TEST(test_bad_log_level)
{
    expect_error("log = {\n level = \"loud\";\n};\n", NULL, 0,
                 "@:2: key 'log.level': 'loud' is not one of emerg, alert, crit, error, warn, "
                 "notice, info, debug");
}
END_TEST

/* ---- overrides ---- */

START_TEST(test_override_bare_word_and_int)
{
    char *ov[] = {"mpm=event", "backlog=100", "server_name=my host", "user=a\"b\\c"};

    ck_assert_msg(load("mpm = \"prefork\";\n", ov, 4) == 0, "%s", err);
    ck_assert_str_eq(cfg.mpm, "event");
    ck_assert_int_eq(cfg.backlog, 100);
    ck_assert_str_eq(cfg.server_name, "my host");
    ck_assert_str_eq(cfg.user, "a\"b\\c");
}
END_TEST

START_TEST(test_override_quoted_and_forms)
{
    char *ov[] = {"mpm=\"worker\"",        " backlog = 0x10; ", "log.access=",
                  "limits.body_bytes=10L", "log.error=-",       "backlog=17"};

    ck_assert_msg(load("", ov, 6) == 0, "%s", err);
    ck_assert_str_eq(cfg.mpm, "worker");
    ck_assert_int_eq(cfg.backlog, 17);
    ck_assert_ptr_null(cfg.log.access);
    ck_assert_uint_eq(cfg.limits.body_bytes, 10);
    ck_assert_str_eq(cfg.log.error, "-");
}
END_TEST

START_TEST(test_override_dotted)
{
    char *ov[] = {"mpm_prefork.max_workers=64", "timeouts.keepalive=1", "log.level=debug",
                  "limits.body_bytes=10", "mod_a.b.c=\"deep\""};
    const config_setting_t *g;
    const char *s = NULL;
    int v = 0;

    ck_assert_msg(load("timeouts = {\n header = 7;\n keepalive = 9;\n};\n", ov, 5) == 0, "%s", err);
    ck_assert_int_eq(cfg.timeouts.keepalive, 1);
    ck_assert_int_eq(cfg.timeouts.header, 7);
    ck_assert_int_eq(cfg.log.level, CR_LOG_DEBUG);
    ck_assert_uint_eq(cfg.limits.body_bytes, 10);
    g = cr_config_group(&cfg, "mpm_prefork");
    ck_assert_ptr_nonnull(g);
    ck_assert(config_setting_lookup_int(g, "max_workers", &v));
    ck_assert_int_eq(v, 64);
    ck_assert(config_lookup_string(&cfg.doc, "mod_a.b.c", &s));
    ck_assert_str_eq(s, "deep");
}
END_TEST

START_TEST(test_override_aggregates)
{
    char *ov[] = {"listen=[\"127.0.0.1:9000\"]", "routes=({ path = \"/\"; module = \"echo\"; })",
                  "modules=[\"echo\", \"static\"]"};
    const char *s = NULL;

    ck_assert_msg(load("listen = [ \"*:80\", \"*:81\" ];\n"
                       "routes = ( { path = \"/a\"; module = \"hello\"; } );\n",
                       ov, 3) == 0,
                  "%s", err);
    ck_assert_uint_eq(cfg.nlisten, 1);
    ck_assert_str_eq(cfg.listen[0], "127.0.0.1:9000");
    ck_assert_uint_eq(cfg.nmodules, 2);
    ck_assert_uint_eq(cfg.nroutes, 1);
    ck_assert_str_eq(cfg.routes[0].path, "/");
    ck_assert_str_eq(cfg.routes[0].module, "echo");
    ck_assert(config_setting_lookup_string(cfg.routes[0].settings, "module", &s));
    ck_assert_str_eq(s, "echo");
}
END_TEST

START_TEST(test_override_validation_errors)
{
    char *hdr[] = {"timeouts.header=0"};
    char *route[] = {"routes=({ path = \"/\"; module = \"nope\"; })"};
    char *unknown[] = {"bogus=1"};
    char *nested[] = {"timeouts.nap=1"};
    char *created[] = {"limits2.x.y=1"};
    char *listen[] = {"listen=[\"127.0.0.1:9000\", \"nowhere\"]"};

    expect_error(
        "timeouts = { header = 5; };\n", hdr, 1,
        "-o timeouts.header: key 'timeouts.header': must be an integer between 1 and 3600");
    expect_error("", route, 1,
                 "-o routes: key 'routes[0].module': module 'nope' is not listed in 'modules'");
    expect_error("", unknown, 1, "-o bogus: unknown key 'bogus'");
    expect_error("timeouts = { header = 5; };\n", nested, 1,
                 "-o timeouts.nap: unknown key 'timeouts.nap'");
    expect_error("", created, 1, "-o limits2: unknown key 'limits2'");
    expect_error("", listen, 1,
                 "-o listen: key 'listen[1]': 'nowhere' is not IPV4:PORT, *:PORT, [IPV6]:PORT or "
                 "unix:PATH");
}
END_TEST

START_TEST(test_override_malformed)
{
    char *noeq[] = {"foo"};
    char *nokey[] = {"=5"};
    char *badkey[] = {"a..b=1"};
    char *badkey2[] = {"timeouts.=1"};
    char *syntax[] = {"listen=[\"a\""};
    char *two[] = {"backlog=1; mpm = \"x\""};
    char *notgroup[] = {"backlog.x=1"};

    expect_error("", noeq, 1, "-o foo: expected KEY=VALUE, e.g. -o timeouts.keepalive=2");
    expect_error("", nokey, 1, "-o =5: expected KEY=VALUE, e.g. -o timeouts.keepalive=2");
    expect_error("", badkey, 1, "-o a..b=1: expected KEY=VALUE, e.g. -o timeouts.keepalive=2");
    expect_error("", badkey2, 1,
                 "-o timeouts.=1: expected KEY=VALUE, e.g. -o timeouts.keepalive=2");
    expect_error("", syntax, 1, "-o listen: syntax error");
    expect_error("", two, 1, "-o backlog: the value must be a single setting");
    expect_error("backlog = 5;\n", notgroup, 1, "-o backlog.x: 'backlog' is not a group");
}
END_TEST

/* ---- paths ---- */

START_TEST(test_relative_paths)
{
    char *ov[] = {"module_path=mods"};

    ck_assert_msg(load("pidfile = \"run/c.pid\";\n"
                       "log = { error = \"e.log\"; access = \"/var/a.log\"; };\n",
                       ov, 1) == 0,
                  "%s", err);
    ck_assert_str_eq(cfg.pidfile, in_dir("run/c.pid"));
    ck_assert_str_eq(cfg.log.error, in_dir("e.log"));
    ck_assert_str_eq(cfg.log.access, "/var/a.log");
    ck_assert_str_eq(cfg.module_path, in_dir("mods"));
}
END_TEST

START_TEST(test_relative_config_file)
{
    char cwd[PATH_MAX];
    int rc;

    write_conf("backlog = 0;\n");
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
    ck_assert_int_eq(chdir(tmp_dir), 0);
    rc = cr_config_load(&cfg, "./corral.conf", NULL, 0, err, sizeof(err));
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(err, "./corral.conf:1: key 'backlog': must be an integer between 1 and 65535");

    write_conf("");
    ck_assert_int_eq(chdir(tmp_dir), 0);
    rc = cr_config_load(&cfg, "corral.conf", NULL, 0, err, sizeof(err));
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(cfg.file, in_dir("corral.conf"));
    ck_assert_str_eq(cfg.dir, tmp_dir);
}
END_TEST

START_TEST(test_config_path)
{
    char *p;

    p = cr_config_path("/etc/corral", "logs/x");
    ck_assert_str_eq(p, "/etc/corral/logs/x");
    free(p);
    p = cr_config_path("/etc/corral", "/abs");
    ck_assert_str_eq(p, "/abs");
    free(p);
    p = cr_config_path(NULL, "rel");
    ck_assert_str_eq(p, "rel");
    free(p);
    ck_assert_ptr_null(cr_config_path("/x", NULL));
}
END_TEST

/* ---- helpers for modules ---- */

START_TEST(test_check_keys_and_error)
{
    static const char *const some[] = {"root", NULL};
    static const char *const all[] = {"root", "bogus", NULL};
    char *ov[] = {"mod_static.root=\"over\""};
    const config_setting_t *g, *s;
    char small[12];
    char want[sizeof(conf) + 512];

    ck_assert_int_eq(load("mod_static = {\n root = \"x\";\n bogus = 1;\n};\n"
                          "routes = (\n { path = \"/\"; module = \"static\";\n   dir = 1; }\n);\n",
                          NULL, 0),
                     0);
    g = cr_config_group(&cfg, "mod_static");
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(cr_config_check_keys(g, some, err, sizeof(err)), CR_ERROR);
    snprintf(want, sizeof(want), "%s:3: unknown key 'mod_static.bogus'", conf);
    ck_assert_str_eq(err, want);
    ck_assert_int_eq(cr_config_check_keys(g, all, err, sizeof(err)), CR_OK);
    ck_assert_int_eq(cr_config_check_keys(NULL, all, err, sizeof(err)), CR_OK);

    cr_config_error(config_setting_get_member(g, "root"), err, sizeof(err), "bad %d", 5);
    snprintf(want, sizeof(want), "%s:2: key 'mod_static.root': bad 5", conf);
    ck_assert_str_eq(err, want);

    s = config_setting_get_member(cfg.routes[0].settings, "dir");
    ck_assert_int_eq(cr_config_check_keys(cfg.routes[0].settings, some, err, sizeof(err)),
                     CR_ERROR);
    snprintf(want, sizeof(want), "%s:6: unknown key 'routes[0].path'", conf);
    ck_assert_str_eq(err, want);
    cr_config_error(s, err, sizeof(err), "must be a string");
    snprintf(want, sizeof(want), "%s:7: key 'routes[0].dir': must be a string", conf);
    ck_assert_str_eq(err, want);

    /* A route's check allows the core's keys (path, module, host, allow,
     * deny) besides the module's own, and still names the first unknown
     * one. */
    {
        static const char *const dir_only[] = {"dir", NULL};
        cr_route_ctx ctx = {.settings = cfg.routes[0].settings, .err = err, .errlen = sizeof(err)};

        ck_assert_int_eq(cr_route_check_keys(&ctx, dir_only), CR_OK);
        ck_assert_int_eq(cr_route_check_keys(&ctx, some), CR_ERROR);
        snprintf(want, sizeof(want), "%s:7: unknown key 'routes[0].dir'", conf);
        ck_assert_str_eq(err, want);
    }

    cr_config_error(s, small, sizeof(small), "long message");
    ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
    cr_config_error(s, NULL, 0, "nothing written");
    cr_config_free(&cfg);

    ck_assert_int_eq(load("mod_static = { root = \"x\"; };\n", ov, 1), 0);
    g = cr_config_group(&cfg, "mod_static");
    cr_config_error(config_setting_get_member(g, "root"), err, sizeof(err), "bad");
    ck_assert_str_eq(err, "-o mod_static.root: key 'mod_static.root': bad");
}
END_TEST

START_TEST(test_log_level_names)
{
    ck_assert_int_eq(cr_config_log_level("emerg"), CR_LOG_EMERG);
    ck_assert_int_eq(cr_config_log_level("alert"), CR_LOG_ALERT);
    ck_assert_int_eq(cr_config_log_level("crit"), CR_LOG_CRIT);
    ck_assert_int_eq(cr_config_log_level("error"), CR_LOG_ERROR);
    ck_assert_int_eq(cr_config_log_level("warn"), CR_LOG_WARN);
    ck_assert_int_eq(cr_config_log_level("notice"), CR_LOG_NOTICE);
    ck_assert_int_eq(cr_config_log_level("info"), CR_LOG_INFO);
    ck_assert_int_eq(cr_config_log_level("debug"), CR_LOG_DEBUG);
    ck_assert_int_eq(cr_config_log_level("DEBUG"), -1);
    ck_assert_int_eq(cr_config_log_level(""), -1);
    ck_assert_int_eq(cr_config_log_level(NULL), -1);
}
END_TEST

START_TEST(test_free_is_safe)
{
    cr_config zero;

    memset(&zero, 0, sizeof(zero));
    cr_config_free(&zero);
    cr_config_free(NULL);
    ck_assert_int_eq(load("", NULL, 0), 0);
    cr_config_free(&cfg);
    cr_config_free(&cfg);
    ck_assert_ptr_null(cfg.file);
    ck_assert_ptr_null(cr_config_group(&cfg, "mpm_prefork"));
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *load_tc = tcase_create("load");
    TCase *err_tc = tcase_create("errors");
    TCase *ov_tc = tcase_create("overrides");
    TCase *util_tc = tcase_create("helpers");
    TCase *all[] = {load_tc, err_tc, ov_tc, util_tc};
    size_t i;

    for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        tcase_add_checked_fixture(all[i], setup, teardown);
        suite_add_tcase(s, all[i]);
    }
    tcase_add_test(load_tc, test_defaults);
    tcase_add_test(load_tc, test_all_keys);
    tcase_add_test(load_tc, test_small_header_lowers_uri_default);
    tcase_add_test(load_tc, test_shipped_conf);
    tcase_add_test(load_tc, test_relative_paths);
    tcase_add_test(load_tc, test_relative_config_file);
    tcase_add_test(load_tc, test_listen_good);
    tcase_add_test(load_tc, test_include_from_config_dir);
    tcase_add_test(err_tc, test_missing_file);
    tcase_add_test(err_tc, test_parse_error);
    tcase_add_test(err_tc, test_unknown_top_key);
    tcase_add_test(err_tc, test_unknown_group_key);
    tcase_add_test(err_tc, test_owned_groups);
    tcase_add_test(err_tc, test_wrong_type);
    tcase_add_test(err_tc, test_out_of_range);
    tcase_add_test(err_tc, test_bad_names);
    tcase_add_test(err_tc, test_routes);
    tcase_add_test(load_tc, test_route_host_list);
    tcase_add_test(load_tc, test_route_access);
    tcase_add_test(err_tc, test_route_access_errors);
    tcase_add_test(err_tc, test_listen_bad);
    tcase_add_test(err_tc, test_listen_unix_too_long);
    tcase_add_test(err_tc, test_bad_log_level);
    tcase_add_test(ov_tc, test_override_bare_word_and_int);
    tcase_add_test(ov_tc, test_override_quoted_and_forms);
    tcase_add_test(ov_tc, test_override_dotted);
    tcase_add_test(ov_tc, test_override_aggregates);
    tcase_add_test(ov_tc, test_override_validation_errors);
    tcase_add_test(ov_tc, test_override_malformed);
    tcase_add_test(util_tc, test_config_path);
    tcase_add_test(util_tc, test_check_keys_and_error);
    tcase_add_test(util_tc, test_log_level_names);
    tcase_add_test(util_tc, test_free_is_safe);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
