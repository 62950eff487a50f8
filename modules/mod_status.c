/* mod_status: the scoreboard as Apache's mod_status shows it. A route
 * answers GET and HEAD with an HTML page, with `?auto` the plain text that
 * Apache monitors read (same key names), with `?json` the same data as
 * JSON; a route with `format = "prometheus";` answers in the Prometheus
 * text exposition format instead. Everything comes from one snapshot
 * (corral/status.h), so a page is consistent with itself. */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "corral/corral.h"
#include "corral/status.h"
#include "status_json.h"

#define CR_STATUS_LINE_MAX   512 /* a formatted line; longer ones take request memory */
#define CR_STATUS_GRID_WIDTH 64  /* scoreboard letters per line of the HTML grid */
#define CR_STATUS_TIME_MAX   64

typedef enum cr_status_format {
    CR_STATUS_HTML,
    CR_STATUS_AUTO,
    CR_STATUS_JSON,
    CR_STATUS_PROMETHEUS,
} cr_status_format;

typedef struct cr_status_route {
    cr_status_format format; /* CR_STATUS_HTML: the query chooses */
} cr_status_route;

/* The response body being written; the first failure sticks, so callers
 * write on and check once. */
typedef struct cr_out {
    cr_request *r;
    int failed;
} cr_out;

/* ---- route settings ---- */

static int cr_status_parse_format(const config_setting_t *f, cr_status_format *format, char *err,
                                  size_t errlen)
{
    const char *v =
        config_setting_type(f) == CONFIG_TYPE_STRING ? config_setting_get_string(f) : NULL;

    if (v != NULL && strcmp(v, "html") == 0) {
        *format = CR_STATUS_HTML;
        return CR_OK;
    }
    if (v != NULL && strcmp(v, "prometheus") == 0) {
        *format = CR_STATUS_PROMETHEUS;
        return CR_OK;
    }
    cr_config_error(f, err, errlen, "must be \"html\" or \"prometheus\"");
    return CR_ERROR;
}

static int cr_status_route_init(cr_route_ctx *ctx)
{
    static const char *const allowed[] = {"format", NULL};
    const config_setting_t *f = config_setting_get_member(ctx->settings, "format");
    cr_status_format format = CR_STATUS_HTML;
    cr_status_route *route;

    if (cr_route_check_keys(ctx, allowed) != CR_OK)
        return CR_ERROR;
    if (f != NULL && cr_status_parse_format(f, &format, ctx->err, ctx->errlen) != CR_OK)
        return CR_ERROR;
    route = malloc(sizeof(*route));
    if (route == NULL) {
        snprintf(ctx->err, ctx->errlen, "out of memory");
        return CR_ERROR;
    }
    route->format = format;
    ctx->route_data = route;
    return CR_OK;
}

static void cr_status_route_exit(void *route_data)
{
    free(route_data);
}

/* ---- output helpers ---- */

static void cr_out_write(cr_out *o, const char *s, size_t n)
{
    if (!o->failed && cr_response_write(o->r, s, n) != CR_OK)
        o->failed = 1;
}

static void cr_out_str(cr_out *o, const char *s)
{
    cr_out_write(o, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void cr_out_printf(cr_out *o, const char *fmt, ...)
{
    char line[CR_STATUS_LINE_MAX], *buf = line;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0) {
        o->failed = 1;
        return;
    }
    if ((size_t)n >= sizeof(line)) {
        buf = cr_palloc(o->r, (size_t)n + 1);
        if (buf == NULL) {
            o->failed = 1;
            return;
        }
        va_start(ap, fmt);
        vsnprintf(buf, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    cr_out_write(o, buf, (size_t)n);
}

/* The entity for a character HTML treats specially, else NULL. */
static const char *cr_html_entity(char c)
{
    switch (c) {
    case '&':
        return "&amp;";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '"':
        return "&quot;";
    case '\'':
        return "&#39;";
    }
    return NULL;
}

/* Text for HTML element content and quoted attribute values. */
static void cr_out_html(cr_out *o, const char *s)
{
    const char *run = s;

    for (; *s != '\0'; s++) {
        const char *esc = cr_html_entity(*s);

        if (esc == NULL)
            continue;
        cr_out_write(o, run, (size_t)(s - run));
        cr_out_str(o, esc);
        run = s + 1;
    }
    cr_out_write(o, run, (size_t)(s - run));
}

/* A Prometheus label value: backslash, double quote and newline escaped. */
static void cr_out_label(cr_out *o, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\' || *s == '"')
            cr_out_write(o, "\\", 1);
        if (*s == '\n')
            cr_out_str(o, "\\n");
        else
            cr_out_write(o, s, 1);
    }
}

/* Apache's DEFAULT_TIME_FORMAT, in the server's time zone. */
static const char *cr_status_time(char *buf, size_t cap, time_t t)
{
    struct tm tm;

    if (localtime_r(&t, &tm) == NULL || strftime(buf, cap, "%A, %d-%b-%Y %H:%M:%S %Z", &tm) == 0)
        snprintf(buf, cap, "%lld", (long long)t);
    return buf;
}

/* "1 day 2 hours 3 minutes 4 seconds", zero parts left out, as Apache. */
static const char *cr_status_uptime(char *buf, size_t cap, time_t up)
{
    static const struct {
        long secs;
        const char *unit;
    } parts[] = {{86400, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"}};
    size_t at = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && at < cap; i++) {
        long n = (long)up / parts[i].secs;

        up -= (time_t)n * parts[i].secs;
        if (n == 0)
            continue;
        at += (size_t)snprintf(buf + at, cap - at, "%s%ld %s%s", at ? " " : "", n, parts[i].unit,
                               n == 1 ? "" : "s");
    }
    if (buf[0] == '\0')
        snprintf(buf, cap, "0 seconds");
    return buf;
}

/* ---- ?auto ---- */

static void cr_status_auto_rates(cr_out *o, const cr_status_server *s)
{
    double load[3];

    if (getloadavg(load, 3) == 3)
        cr_out_printf(o, "Load1: %.2f\nLoad5: %.2f\nLoad15: %.2f\n", load[0], load[1], load[2]);
    else
        cr_log(CR_LOG_DEBUG, "mod_status: getloadavg failed; no Load lines");
    cr_out_printf(o, "Total Accesses: %llu\nTotal kBytes: %llu\n", (unsigned long long)s->requests,
                  (unsigned long long)(s->bytes / 1024));
    cr_out_printf(o, "Uptime: %lld\n", (long long)s->uptime);
    if (s->uptime > 0)
        cr_out_printf(o, "ReqPerSec: %g\nBytesPerSec: %g\n",
                      (double)s->requests / (double)s->uptime,
                      (double)s->bytes / (double)s->uptime);
    if (s->requests > 0)
        cr_out_printf(o, "BytesPerReq: %g\n", (double)s->bytes / (double)s->requests);
}

/* "PhaseWaitUs: N": microseconds the requests of Total Accesses spent in
 * each phase, so a reader of two snapshots gets the mean per request. */
static void cr_status_auto_phases(cr_out *o, const cr_status_server *s)
{
    static const char *const keys[CR_STATUS_PHASES] = {"Wait", "Read", "Queue", "Handler", "Write"};

    for (int i = 0; i < CR_STATUS_PHASES; i++)
        cr_out_printf(o, "Phase%sUs: %llu\n", keys[i], (unsigned long long)(s->phase_ns[i] / 1000));
}

static void cr_status_auto(cr_out *o, const cr_status *st)
{
    const cr_status_server *s = &st->server;
    char now[CR_STATUS_TIME_MAX], restart[CR_STATUS_TIME_MAX], up[CR_STATUS_TIME_MAX];

    cr_out_printf(o, "ServerVersion: %s\nServerMPM: %s\n", s->version, s->mpm);
    cr_out_printf(o, "CurrentTime: %s\nRestartTime: %s\n", cr_status_time(now, sizeof(now), s->now),
                  cr_status_time(restart, sizeof(restart), s->restart_time));
    /* corral has one generation count for config and MPM alike. */
    cr_out_printf(o, "ParentServerConfigGeneration: %u\nParentServerMPMGeneration: %u\n",
                  s->generation, s->generation);
    cr_out_printf(o, "ServerUptimeSeconds: %lld\nServerUptime: %s\n", (long long)s->uptime,
                  cr_status_uptime(up, sizeof(up), s->uptime));
    cr_status_auto_rates(o, s);
    cr_status_auto_phases(o, s);
    cr_out_printf(o, "BusyWorkers: %u\nGracefulWorkers: %u\nIdleWorkers: %u\n", s->busy_workers,
                  s->graceful_workers, s->idle_workers);
    cr_out_printf(o, "Processes: %u\nStopping: %u\n", s->processes, s->stopping);
    cr_out_str(o, "Scoreboard: ");
    cr_out_str(o, st->scoreboard);
    cr_out_str(o, "\n");
}

/* ---- ?json ---- */

static json_t *cr_status_json_threads(const cr_status_child *c)
{
    json_t *threads = json_array();
    int bad = threads == NULL;

    for (size_t t = 0; !bad && t < c->nthreads; t++)
        bad |= json_array_append_new(threads, cr_status_json_thread(&c->threads[t])) != 0;
    return cr_status_json_done(threads, bad);
}

static json_t *cr_status_json_child(const cr_status_child *c, time_t now)
{
    json_t *o = json_object();
    int bad = o == NULL;

    if (bad)
        return NULL;
    bad |= cr_status_json_child_members(o, c);
    bad |= cr_status_json_set(o, "uptime", json_integer(now > c->started ? now - c->started : 0));
    bad |= cr_status_json_set(o, "threads", cr_status_json_threads(c));
    return cr_status_json_done(o, bad);
}

static json_t *cr_status_json_server(const cr_status_server *s)
{
    json_t *o = json_object();

    if (o == NULL)
        return NULL;
    return cr_status_json_done(o, cr_status_json_server_members(o, s));
}

static json_t *cr_status_json_children(const cr_status *st)
{
    json_t *children = json_array();
    int bad = children == NULL;

    for (size_t i = 0; !bad && i < st->nchildren; i++)
        bad |= json_array_append_new(children,
                                     cr_status_json_child(&st->children[i], st->server.now)) != 0;
    return cr_status_json_done(children, bad);
}

static json_t *cr_status_json_tree(const cr_status *st)
{
    json_t *root = json_object();
    int bad = root == NULL;

    if (bad)
        return NULL;
    bad |= cr_status_json_set(root, "server", cr_status_json_server(&st->server));
    bad |= cr_status_json_set(root, "scoreboard", json_string(st->scoreboard));
    bad |= cr_status_json_set(root, "children", cr_status_json_children(st));
    return cr_status_json_done(root, bad);
}

static void cr_status_json(cr_out *o, const cr_status *st)
{
    json_t *root = cr_status_json_tree(st);
    char *text = root != NULL ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

    json_decref(root);
    if (text == NULL) {
        o->failed = 1;
        return;
    }
    cr_out_str(o, text);
    cr_out_str(o, "\n");
    free(text);
}

/* ---- Prometheus ---- */

static void cr_prom_head(cr_out *o, const char *name, const char *type, const char *help)
{
    cr_out_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void cr_prom_server(cr_out *o, const cr_status_server *s)
{
    cr_prom_head(o, "corral_info", "gauge", "Version and MPM of the server (always 1).");
    cr_out_str(o, "corral_info{version=\"");
    cr_out_label(o, s->version);
    cr_out_str(o, "\",mpm=\"");
    cr_out_label(o, s->mpm);
    cr_out_str(o, "\"} 1\n");
    cr_prom_head(o, "corral_start_time_seconds", "gauge", "When the server started (Unix time).");
    cr_out_printf(o, "corral_start_time_seconds %lld\n", (long long)s->start_time);
    cr_prom_head(o, "corral_uptime_seconds", "gauge", "Seconds since the server started.");
    cr_out_printf(o, "corral_uptime_seconds %lld\n", (long long)s->uptime);
    cr_prom_head(o, "corral_generation", "gauge", "Running configuration generation.");
    cr_out_printf(o, "corral_generation %u\n", s->generation);
    cr_prom_head(o, "corral_requests_total", "counter", "Requests served since the start.");
    cr_out_printf(o, "corral_requests_total %llu\n", (unsigned long long)s->requests);
    cr_prom_head(o, "corral_bytes_total", "counter", "Response body bytes sent since the start.");
    cr_out_printf(o, "corral_bytes_total %llu\n", (unsigned long long)s->bytes);
    cr_prom_head(o, "corral_request_phase_seconds_total", "counter",
                 "Time the requests of corral_requests_total spent in each phase.");
    for (int i = 0; i < CR_STATUS_PHASES; i++)
        cr_out_printf(o, "corral_request_phase_seconds_total{phase=\"%s\"} %.6f\n",
                      cr_status_phase_name((cr_status_phase)i), (double)s->phase_ns[i] / 1e9);
    cr_prom_head(o, "corral_workers", "gauge", "Handler slots (threads) busy or idle.");
    cr_out_printf(o, "corral_workers{state=\"busy\"} %u\ncorral_workers{state=\"idle\"} %u\n",
                  s->busy_workers, s->idle_workers);
    cr_prom_head(o, "corral_processes", "gauge", "Live child processes.");
    cr_out_printf(o, "corral_processes %u\n", s->processes);
    cr_prom_head(o, "corral_processes_stopping", "gauge", "Children finishing gracefully.");
    cr_out_printf(o, "corral_processes_stopping %u\n", s->stopping);
}

/* Every scoreboard state, also those no slot is in, so series never vanish. */
static void cr_prom_slots(cr_out *o, const cr_status *st)
{
    static const char letters[] = "_SRWKCG.";

    cr_prom_head(o, "corral_scoreboard_slots", "gauge",
                 "Handler slots of the scoreboard by state letter.");
    for (const char *l = letters; *l != '\0'; l++) {
        unsigned n = 0;

        for (const char *p = st->scoreboard; *p != '\0'; p++)
            n += *p == *l;
        cr_out_printf(o, "corral_scoreboard_slots{state=\"%c\"} %u\n", *l, n);
    }
}

static void cr_prom_children(cr_out *o, const cr_status *st)
{
    static const char *const heads[][2] = {
        {"corral_child_requests_total", "Requests served by a child since it started."},
        {"corral_child_bytes_total", "Response body bytes sent by a child since it started."},
        {"corral_child_start_time_seconds", "When a child started (Unix time)."},
    };

    for (size_t h = 0; h < sizeof(heads) / sizeof(heads[0]); h++) {
        cr_prom_head(o, heads[h][0], h < 2 ? "counter" : "gauge", heads[h][1]);
        for (size_t i = 0; i < st->nchildren; i++) {
            const cr_status_child *c = &st->children[i];
            unsigned long long v = h == 0   ? c->requests
                                   : h == 1 ? c->bytes
                                            : (unsigned long long)c->started;

            if (c->pid > 0)
                cr_out_printf(o, "%s{pid=\"%ld\",generation=\"%u\"} %llu\n", heads[h][0],
                              (long)c->pid, c->generation, v);
        }
    }
}

static void cr_status_prometheus(cr_out *o, const cr_status *st)
{
    cr_prom_server(o, &st->server);
    cr_prom_slots(o, st);
    cr_prom_children(o, st);
}

/* ---- HTML ---- */

/* Where the time of an average request went, since the start. */
static void cr_html_phases(cr_out *o, const cr_status_server *s)
{
    if (s->requests == 0)
        return;
    cr_out_str(o, "<dt>Mean time per request</dt><dd>");
    for (int i = 0; i < CR_STATUS_PHASES; i++)
        cr_out_printf(o, "%s%s %.1f µs", i ? ", " : "", cr_status_phase_name((cr_status_phase)i),
                      (double)s->phase_ns[i] / 1e3 / (double)s->requests);
    cr_out_str(o, "</dd>\n");
}

static void cr_html_summary(cr_out *o, const cr_status *st)
{
    const cr_status_server *s = &st->server;
    char now[CR_STATUS_TIME_MAX], restart[CR_STATUS_TIME_MAX], up[CR_STATUS_TIME_MAX];

    cr_out_str(o, "<dl>\n<dt>Server Version</dt><dd>");
    cr_out_html(o, s->version);
    cr_out_str(o, "</dd>\n<dt>Server MPM</dt><dd>");
    cr_out_html(o, s->mpm);
    cr_out_str(o, "</dd>\n<dt>Current Time</dt><dd>");
    cr_out_html(o, cr_status_time(now, sizeof(now), s->now));
    cr_out_str(o, "</dd>\n<dt>Restart Time</dt><dd>");
    cr_out_html(o, cr_status_time(restart, sizeof(restart), s->restart_time));
    cr_out_str(o, "</dd>\n<dt>Server uptime</dt><dd>");
    cr_out_html(o, cr_status_uptime(up, sizeof(up), s->uptime));
    cr_out_printf(o, "</dd>\n<dt>Generation</dt><dd>%u</dd>\n", s->generation);
    cr_out_printf(o, "<dt>Total accesses</dt><dd>%llu</dd>\n", (unsigned long long)s->requests);
    cr_out_printf(o, "<dt>Total traffic</dt><dd>%llu kB</dd>\n",
                  (unsigned long long)(s->bytes / 1024));
    cr_html_phases(o, s);
    cr_out_printf(o, "<dt>Workers</dt><dd>%u busy, %u idle, %u gracefully finishing</dd>\n",
                  s->busy_workers, s->idle_workers, s->graceful_workers);
    cr_out_printf(o, "<dt>Processes</dt><dd>%u, %u stopping</dd>\n</dl>\n", s->processes,
                  s->stopping);
}

static void cr_html_grid(cr_out *o, const cr_status *st)
{
    static const char letters[] = "_SRWKCG.";
    size_t n = strlen(st->scoreboard);

    cr_out_str(o, "<h2>Scoreboard</h2>\n<pre class=\"scoreboard\">");
    for (size_t at = 0; at < n; at += CR_STATUS_GRID_WIDTH) {
        cr_out_write(o, st->scoreboard + at,
                     n - at < CR_STATUS_GRID_WIDTH ? n - at : CR_STATUS_GRID_WIDTH);
        cr_out_str(o, "\n");
    }
    cr_out_str(o, "</pre>\n<dl class=\"legend\">\n");
    for (const char *l = letters; *l != '\0'; l++) {
        char letter[2] = {*l, '\0'};

        cr_out_str(o, "<dt><code>");
        cr_out_html(o, letter);
        cr_out_str(o, "</code></dt><dd>");
        cr_out_html(o, cr_status_letter_name(*l));
        cr_out_str(o, "</dd>\n");
    }
    cr_out_str(o, "</dl>\n");
}

static void cr_html_children(cr_out *o, const cr_status *st)
{
    cr_out_str(o, "<h2>Children</h2>\n<table>\n<tr><th>Slot</th><th>PID</th><th>Generation</th>"
                  "<th>State</th><th>Uptime (s)</th><th>Requests</th><th>Bytes</th></tr>\n");
    for (size_t i = 0; i < st->nchildren; i++) {
        const cr_status_child *c = &st->children[i];
        time_t up = st->server.now > c->started ? st->server.now - c->started : 0;

        cr_out_printf(o,
                      "<tr><td>%d</td><td>%ld</td><td>%u</td><td>%s</td><td>%lld</td>"
                      "<td>%llu</td><td>%llu</td></tr>\n",
                      c->slot, (long)c->pid, c->generation, cr_status_child_state_name(c->state),
                      (long long)up, (unsigned long long)c->requests, (unsigned long long)c->bytes);
    }
    cr_out_str(o, "</table>\n");
}

static void cr_html_thread(cr_out *o, const cr_status_child *c, const cr_status_thread *t,
                           time_t now)
{
    char state[2] = {t->state, '\0'};

    cr_out_printf(o, "<tr><td>%d-%d</td><td>%ld</td><td>%u</td><td>", c->slot, t->slot,
                  (long)c->pid, c->generation);
    cr_out_html(o, state);
    cr_out_printf(o, "</td><td>%llu</td><td>%llu</td>", (unsigned long long)t->requests,
                  (unsigned long long)t->bytes);
    if (t->last_used != 0)
        cr_out_printf(o, "<td>%lld</td>", (long long)(now > t->last_used ? now - t->last_used : 0));
    else
        cr_out_str(o, "<td>-</td>");
    cr_out_str(o, "<td>");
    cr_out_html(o, t->client);
    cr_out_str(o, "</td><td>");
    cr_out_html(o, t->request);
    cr_out_str(o, "</td></tr>\n");
}

/* Slots that never ran anything are left out, as Apache does. */
static void cr_html_threads(cr_out *o, const cr_status *st)
{
    cr_out_str(o, "<h2>Threads</h2>\n<table>\n<tr><th>Slot</th><th>PID</th><th>Generation</th>"
                  "<th>State</th><th>Requests</th><th>Bytes</th><th>Last used (s ago)</th>"
                  "<th>Client</th><th>Request</th></tr>\n");
    for (size_t i = 0; i < st->nchildren; i++) {
        const cr_status_child *c = &st->children[i];

        for (size_t t = 0; t < c->nthreads; t++)
            if (c->threads[t].state != '.' || c->threads[t].requests != 0)
                cr_html_thread(o, c, &c->threads[t], st->server.now);
    }
    cr_out_str(o, "</table>\n");
}

static void cr_status_html(cr_out *o, const cr_status *st)
{
    cr_out_str(o, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                  "<title>corral server status</title>\n"
                  "<style>body{font-family:sans-serif}dt{font-weight:bold}"
                  "table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}"
                  "</style>\n</head>\n<body>\n<h1>corral server status</h1>\n");
    cr_html_summary(o, st);
    cr_html_grid(o, st);
    cr_html_children(o, st);
    cr_html_threads(o, st);
    cr_out_str(o, "</body>\n</html>\n");
}

/* ---- the handler ---- */

/* `auto` or `json` as a word of the query (`?auto`, `?x=1&json`). */
static cr_status_format cr_status_query_format(const cr_str *q)
{
    const char *p = q->ptr, *end = q->ptr + q->len;

    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        size_t n = (size_t)((amp != NULL ? amp : end) - p);

        if (n == 4 && memcmp(p, "auto", 4) == 0)
            return CR_STATUS_AUTO;
        if (n == 4 && memcmp(p, "json", 4) == 0)
            return CR_STATUS_JSON;
        p += n + 1;
    }
    return CR_STATUS_HTML;
}

static const char *cr_status_content_type(cr_status_format format)
{
    switch (format) {
    case CR_STATUS_AUTO:
        return "text/plain; charset=us-ascii";
    case CR_STATUS_JSON:
        return "application/json";
    case CR_STATUS_PROMETHEUS:
        return "text/plain; version=0.0.4; charset=utf-8";
    case CR_STATUS_HTML:
        break;
    }
    return "text/html; charset=utf-8";
}

static void cr_status_render(cr_out *o, cr_status_format format, const cr_status *st)
{
    switch (format) {
    case CR_STATUS_AUTO:
        cr_status_auto(o, st);
        break;
    case CR_STATUS_JSON:
        cr_status_json(o, st);
        break;
    case CR_STATUS_PROMETHEUS:
        cr_status_prometheus(o, st);
        break;
    case CR_STATUS_HTML:
        cr_status_html(o, st);
        break;
    }
}

static int cr_status_handle(cr_request *r)
{
    const cr_status_route *route = r->route_data;
    cr_status_format format = route->format;
    cr_out o = {r, 0};
    cr_status *st;

    if (r->method != CR_METHOD_GET && r->method != CR_METHOD_HEAD) {
        cr_response_header(r, "Allow", "GET, HEAD");
        return 405;
    }
    if (format == CR_STATUS_HTML)
        format = cr_status_query_format(&r->query);
    st = cr_status_snapshot();
    if (st == NULL) {
        cr_log_errno(CR_LOG_ERROR, errno, "mod_status: no scoreboard snapshot");
        return 500;
    }
    cr_status_render(&o, format, st);
    cr_status_free(st);
    if (cr_response_header(r, "Content-Type", cr_status_content_type(format)) != CR_OK ||
        cr_response_header(r, "Cache-Control", "no-store") != CR_OK)
        o.failed = 1;
    if (o.failed) {
        cr_log(CR_LOG_ERROR, "mod_status: out of memory building the response");
        return 500;
    }
    return CR_DONE;
}

__attribute__((visibility("default"))) const cr_module cr_module_entry = {
    .magic = CR_MODULE_MAGIC,
    .abi = CR_MODULE_ABI,
    .name = "status",
    .version = CR_VERSION,
    .route_init = cr_status_route_init,
    .route_exit = cr_status_route_exit,
    .handle = cr_status_handle,
};
