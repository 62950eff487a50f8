/* corral-bench's report: the markdown tables (stdout), and in the results
 * folder results.json (jansson), results.csv and a self-contained report.html
 * whose charts are inline SVG drawn by gnuplot.
 *
 * Every format prints the same derived figures (cr_rps, cr_lat_ms, ...), in
 * which NaN stands for "unknown": it prints as "-" in the tables, null in the
 * JSON, an empty field in the CSV and NaN for gnuplot (which leaves the bar
 * out). The markdown and the HTML tables are built by the same row builders
 * (cr_main_row, cr_phase_row) and only rendered differently (cr_fmt), so the
 * two never disagree. Strings of the report are NUL-terminated; bytes that
 * are not UTF-8 print as '?' wherever a reader would reject them. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

const char *const cr_bench_phase_names[CR_BENCH_PHASES] = {"wait", "read", "queue", "handler",
                                                           "write"};

/* ---- derived figures (NaN: unknown) ---- */

static double cr_rps(const cr_bench_row *r)
{
    if (r->load.seconds <= 0)
        return NAN;
    return (double)r->load.requests / r->load.seconds;
}

static double cr_lat_ms(const cr_bench_row *r, double q)
{
    if (r->load.latency.count == 0)
        return NAN;
    return (double)cr_hist_quantile(&r->load.latency, q) / 1000.0;
}

static double cr_max_ms(const cr_bench_row *r)
{
    if (r->load.latency.count == 0)
        return NAN;
    return (double)r->load.latency.max_us / 1000.0;
}

static double cr_mean_ms(const cr_bench_row *r)
{
    if (r->load.latency.count == 0)
        return NAN;
    return r->load.latency.sum_us / (double)r->load.latency.count / 1000.0;
}

/* corral-bench leaves it 0 when no request was answered: unknown then. */
static double cr_cpu_per_1k(const cr_bench_row *r)
{
    if (!r->have_server || r->load.requests_total == 0 || !isfinite(r->cpu_ms_per_1k) ||
        r->cpu_ms_per_1k < 0)
        return NAN;
    return r->cpu_ms_per_1k;
}

/* A memory figure of the server in MiB; 0 KB means the sampler could not
 * read it (PSS needs read access to the server's smaps). */
static double cr_mib(const cr_bench_row *r, double kb)
{
    if (!r->have_server || !(kb > 0))
        return NAN;
    return kb / 1024.0;
}

/* Per request of the whole run: before/after bracket cr_load_run, warm-up
 * included, which is what requests_total counts. A tree that lost processes
 * can count fewer switches after than before: unknown then. */
static double cr_ctx_per_req(const cr_bench_row *r)
{
    if (!r->have_server || r->load.requests_total == 0 ||
        r->after.ctx_switches < r->before.ctx_switches)
        return NAN;
    return (double)(r->after.ctx_switches - r->before.ctx_switches) /
           (double)r->load.requests_total;
}

/* A row of the idle scenario (when none could be held, that is news too). */
static bool cr_row_idle(const cr_bench_row *r)
{
    return r->idle_wanted > 0;
}

static double cr_idle_kb(const cr_bench_row *r)
{
    if (!r->have_server || r->load.idle_held <= 0 || !isfinite(r->idle_kb_per_conn))
        return NAN;
    return r->idle_kb_per_conn;
}

static double cr_phase_total(const cr_bench_row *r)
{
    double sum = 0;

    if (!r->have_phases)
        return NAN;
    for (int i = 0; i < CR_BENCH_PHASES; i++)
        sum += r->phase_us[i];
    return sum;
}

static double cr_phase_pct(const cr_bench_row *r, int i)
{
    double total = cr_phase_total(r);

    if (!(total > 0))
        return NAN;
    return 100.0 * r->phase_us[i] / total;
}

/* A figure of cr_cpu_use; NaN when unknown (or nonsense). */
static double cr_pct(double v)
{
    return isfinite(v) && v >= 0 ? v : NAN;
}

/* A figure of the CPU use of wrk's run, when there was one. */
static double cr_wrk_pct(const cr_bench_row *r, double v)
{
    return r->have_wrk ? cr_pct(v) : NAN;
}

static double cr_wrk_rps(const cr_bench_row *r)
{
    return r->have_wrk ? r->wrk.requests_per_s : NAN;
}

/* wrk's throughput over the built-in generator's: 1 when they agree. */
static double cr_wrk_ratio(const cr_bench_row *r)
{
    double builtin = cr_rps(r), wrk = cr_wrk_rps(r);

    if (!(builtin > 0) || !isfinite(wrk))
        return NAN;
    return wrk / builtin;
}

static double cr_wrk_lat_ms(const cr_bench_row *r, int k)
{
    return r->have_wrk ? r->wrk.lat_ms[k] : NAN;
}

/* ---- walking the rows ---- */

/* Whether row i is the first of its scenario (by_target: of its target), so
 * that a loop over the rows visits each once, in the order of the run. */
static bool cr_first(const cr_bench_report *rep, size_t i, bool by_target)
{
    const cr_bench_row *a = &rep->rows[i];

    for (size_t j = 0; j < i; j++) {
        const cr_bench_row *b = &rep->rows[j];

        if (strcmp(by_target ? a->target : a->scenario, by_target ? b->target : b->scenario) == 0)
            return false;
    }
    return true;
}

static const cr_bench_row *cr_find(const cr_bench_report *rep, const char *scenario,
                                   const char *target)
{
    for (size_t i = 0; i < rep->nrows; i++) {
        const cr_bench_row *r = &rep->rows[i];

        if (strcmp(r->scenario, scenario) == 0 && strcmp(r->target, target) == 0)
            return r;
    }
    return NULL;
}

/* What the tables of one scenario need to show. */
typedef struct cr_scen {
    const char *name;
    bool idle;         /* the idle columns */
    bool phases;       /* some target has phase counters: the second table */
    bool server_count; /* some target has its own request count */
    bool wrk;          /* some target was measured with wrk too: the third table */
} cr_scen;

static void cr_scen_get(const cr_bench_report *rep, const char *name, cr_scen *sc)
{
    *sc = (cr_scen){.name = name};
    for (size_t i = 0; i < rep->nrows; i++) {
        const cr_bench_row *r = &rep->rows[i];

        if (strcmp(r->scenario, name) != 0)
            continue;
        sc->idle |= cr_row_idle(r);
        sc->phases |= r->have_phases;
        sc->server_count |= r->server_requests >= 0;
        sc->wrk |= r->have_wrk;
    }
}

/* ---- text escaping ---- */

typedef enum cr_esc {
    CR_ESC_RAW,    /* as is (only the UTF-8 check) */
    CR_ESC_MD,     /* markdown text and table cells */
    CR_ESC_CODE,   /* inside a markdown code span */
    CR_ESC_HTML,   /* HTML text and attribute values */
    CR_ESC_CSV,    /* inside a quoted CSV field */
    CR_ESC_GPDATA, /* inside a "string" of a gnuplot data file: no escape exists */
    CR_ESC_GPSTR,  /* inside a 'string' of a gnuplot script */
} cr_esc;

/* The length of the valid UTF-8 sequence at s, or 0 when none starts there
 * (stray continuation byte, overlong form, surrogate, past U+10FFFF). The
 * NUL terminator is no continuation byte, so this never reads past it. */
static size_t cr_utf8_seq(const unsigned char *s)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t n;

    if (c < 0x80)
        return 1;
    if (c < 0xC2 || c > 0xF4)
        return 0;
    n = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

static void cr_put_html_char(FILE *f, int c)
{
    switch (c) {
    case '&':
        fputs("&amp;", f);
        return;
    case '<':
        fputs("&lt;", f);
        return;
    case '>':
        fputs("&gt;", f);
        return;
    case '"':
        fputs("&quot;", f);
        return;
    case '\'':
        fputs("&#39;", f);
        return;
    }
    /* Other C0 controls are not allowed in HTML text. */
    fputc(c < 0x20 && c != '\n' && c != '\t' ? '?' : c, f);
}

static void cr_put_char(FILE *f, int c, cr_esc how)
{
    if (how == CR_ESC_HTML) {
        cr_put_html_char(f, c);
        return;
    }
    /* A line break would end a table row or a gnuplot string. */
    if (c < 0x20 && how != CR_ESC_RAW && how != CR_ESC_CSV)
        c = ' ';
    if (how == CR_ESC_MD && strchr("\\|`*<>[]&", c))
        fputc('\\', f);
    else if (how == CR_ESC_CSV && c == '"')
        fputc('"', f);
    else if (how == CR_ESC_GPSTR && c == '\'')
        fputc('\'', f);
    else if (how == CR_ESC_GPDATA && c == '"')
        c = '\'';
    fputc(c, f);
}

static void cr_put(FILE *f, const char *s, cr_esc how)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        size_t n = cr_utf8_seq(p);

        if (n == 0) {
            fputc('?', f);
            p++;
        } else if (n > 1) {
            fwrite(p, 1, n, f);
            p += n;
        } else {
            cr_put_char(f, *p++, how);
        }
    }
}

/* A markdown code span: the fence is one backtick longer than the longest
 * run inside, so commands and configs print verbatim whatever they hold. */
static void cr_md_code(FILE *f, const char *s)
{
    size_t run = 0, longest = 0, len = strlen(s);
    bool pad = len > 0 && (s[0] == '`' || s[len - 1] == '`');

    for (const char *p = s; *p; p++) {
        run = *p == '`' ? run + 1 : 0;
        if (run > longest)
            longest = run;
    }
    for (size_t i = 0; i <= longest; i++)
        fputc('`', f);
    fputs(pad ? " " : "", f);
    cr_put(f, s, CR_ESC_CODE);
    fputs(pad ? " " : "", f);
    for (size_t i = 0; i <= longest; i++)
        fputc('`', f);
}

/* ---- tables: built once per row, rendered as markdown or HTML ---- */

#define CR_COLS 24
#define CR_CELL 112

typedef struct cr_table {
    int n;
    const char *head[CR_COLS];
    bool num[CR_COLS]; /* a figure: right-aligned */
    char cell[CR_COLS][CR_CELL];
} cr_table;

__attribute__((format(printf, 4, 5))) static void cr_col(cr_table *t, const char *head, bool num,
                                                         const char *fmt, ...)
{
    va_list ap;

    if (t->n == CR_COLS)
        return;
    t->head[t->n] = head;
    t->num[t->n] = num;
    va_start(ap, fmt);
    vsnprintf(t->cell[t->n], CR_CELL, fmt, ap);
    va_end(ap);
    t->n++;
}

static void cr_col_num(cr_table *t, const char *head, double v, int decimals)
{
    if (!isfinite(v))
        cr_col(t, head, true, "-");
    else
        cr_col(t, head, true, "%.*f", decimals, v);
}

static void cr_col_procs(cr_table *t, const cr_bench_row *r)
{
    if (!r->have_server || r->peak.processes <= 0)
        cr_col(t, "procs/threads", true, "-");
    else
        cr_col(t, "procs/threads", true, "%d/%d", r->peak.processes, r->peak.threads);
}

static void cr_col_counts(cr_table *t, const cr_bench_row *r)
{
    cr_col(t, "requests", true, "%" PRIu64, r->load.requests_total);
    if (r->server_requests < 0)
        cr_col(t, "server count", true, "-");
    else
        cr_col(t, "server count", true, "%" PRId64, r->server_requests);
}

typedef void (*cr_row_fn)(cr_table *t, const cr_scen *sc, const cr_bench_row *r);

static void cr_main_row(cr_table *t, const cr_scen *sc, const cr_bench_row *r)
{
    const cr_load_result *l = &r->load;

    t->n = 0;
    cr_col(t, "target", false, "%s", r->target);
    cr_col_num(t, "req/s", cr_rps(r), 0);
    cr_col_num(t, "p50 ms", cr_lat_ms(r, 0.5), 2);
    cr_col_num(t, "p90 ms", cr_lat_ms(r, 0.9), 2);
    cr_col_num(t, "p99 ms", cr_lat_ms(r, 0.99), 2);
    cr_col_num(t, "p99.9 ms", cr_lat_ms(r, 0.999), 2);
    cr_col_num(t, "max ms", cr_max_ms(r), 2);
    cr_col(t, "errors c/r/t/s", true, "%" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64,
           l->err_connect, l->err_read, l->err_timeout, l->err_status);
    cr_col_num(t, "CPU ms/1k req", cr_cpu_per_1k(r), 2);
    cr_col_num(t, "PSS MiB", cr_mib(r, r->peak.pss_kb), 1);
    cr_col_num(t, "RSS MiB", cr_mib(r, r->peak.rss_kb), 1);
    cr_col_procs(t, r);
    cr_col_num(t, "ctx sw/req", cr_ctx_per_req(r), 2);
    if (sc->idle) {
        cr_col(t, "idle held", true, "%d / %d", l->idle_held, r->idle_wanted);
        cr_col_num(t, "KB/idle conn", cr_idle_kb(r), 2);
    }
    if (sc->server_count)
        cr_col_counts(t, r);
}

static void cr_phase_row(cr_table *t, const cr_scen *sc, const cr_bench_row *r)
{
    /* The headers follow cr_bench_phase_names. */
    static const char *const heads[CR_BENCH_PHASES] = {"wait µs (%)", "read µs (%)", "queue µs (%)",
                                                       "handler µs (%)", "write µs (%)"};

    (void)sc;
    t->n = 0;
    cr_col(t, "target", false, "%s", r->target);
    for (int i = 0; i < CR_BENCH_PHASES; i++) {
        double pct = cr_phase_pct(r, i);

        if (!r->have_phases)
            cr_col(t, heads[i], true, "-");
        else if (!isfinite(pct))
            cr_col(t, heads[i], true, "%.1f", r->phase_us[i]);
        else
            cr_col(t, heads[i], true, "%.1f (%.1f%%)", r->phase_us[i], pct);
    }
    cr_col_num(t, "total µs", cr_phase_total(r), 1);
}

/* Which pinned core was saturated during a run (95% busy or more): the
 * side that capped the throughput; "-" when the cores are unknown. */
static const char *cr_saturated(const cr_cpu_use *u)
{
    bool client = u->client_core_pct >= 95, server = u->server_core_pct >= 95;

    if (!isfinite(u->client_core_pct) || !isfinite(u->server_core_pct))
        return "-";
    return client && server ? "both" : client ? "client" : server ? "server" : "neither";
}

/* "a / b", either "-" when unknown. */
static void cr_col_pair(cr_table *t, const char *head, double a, double b, int decimals)
{
    char x[32] = "-", y[32] = "-";

    if (isfinite(a))
        snprintf(x, sizeof x, "%.*f", decimals, a);
    if (isfinite(b))
        snprintf(y, sizeof y, "%.*f", decimals, b);
    cr_col(t, head, true, "%s / %s", x, y);
}

/* The built-in generator beside wrk, on the same target and URL; a pair
 * "a / b" is the built-in's figure and wrk's. wrk's distribution has no
 * p99.9: the two share p50 and p99. */
static void cr_wrk_row(cr_table *t, const cr_scen *sc, const cr_bench_row *r)
{
    const cr_wrk_result *w = &r->wrk;

    (void)sc;
    t->n = 0;
    cr_col(t, "target", false, "%s", r->target);
    cr_col_num(t, "built-in req/s", cr_rps(r), 0);
    cr_col_num(t, "wrk req/s", cr_wrk_rps(r), 0);
    cr_col_num(t, "wrk ÷ built-in", cr_wrk_ratio(r), 3);
    cr_col_pair(t, "p50 ms", cr_lat_ms(r, 0.5), cr_wrk_lat_ms(r, 0), 2);
    cr_col_pair(t, "p99 ms", cr_lat_ms(r, 0.99), cr_wrk_lat_ms(r, 3), 2);
    if (r->have_wrk)
        cr_col(t, "wrk errors c/r/w/t/s", true,
               "%" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64, w->err_connect,
               w->err_read, w->err_write, w->err_timeout, w->err_status);
    else
        cr_col(t, "wrk errors c/r/w/t/s", true, "-");
    cr_col_pair(t, "client µs/req", cr_pct(r->use.client_us_per_req),
                cr_wrk_pct(r, r->wrk_use.client_us_per_req), 1);
    cr_col_pair(t, "client CPU %", cr_pct(r->use.client_pct), cr_wrk_pct(r, r->wrk_use.client_pct),
                0);
    cr_col_pair(t, "client core %", cr_pct(r->use.client_core_pct),
                cr_wrk_pct(r, r->wrk_use.client_core_pct), 0);
    cr_col_pair(t, "server µs/req", cr_pct(r->use.server_us_per_req),
                cr_wrk_pct(r, r->wrk_use.server_us_per_req), 1);
    cr_col_pair(t, "server core %", cr_pct(r->use.server_core_pct),
                cr_wrk_pct(r, r->wrk_use.server_core_pct), 0);
    cr_col_pair(t, "server ctx sw/req", cr_pct(r->use.server_ctx_per_req),
                cr_wrk_pct(r, r->wrk_use.server_ctx_per_req), 2);
    cr_col(t, "saturated core", false, "%s / %s", cr_saturated(&r->use),
           r->have_wrk ? cr_saturated(&r->wrk_use) : "-");
}

/* How a format prints headings and tables. */
typedef struct cr_fmt {
    void (*title)(FILE *f, int level, const char *name, const char *suffix);
    void (*head)(FILE *f, const cr_table *t);
    void (*row)(FILE *f, const cr_table *t);
    void (*end)(FILE *f);
} cr_fmt;

static void cr_emit_table(const cr_bench_report *rep, FILE *f, const cr_fmt *fmt, const cr_scen *sc,
                          cr_row_fn build)
{
    cr_table t;
    bool any = false;

    for (size_t i = 0; i < rep->nrows; i++) {
        if (strcmp(rep->rows[i].scenario, sc->name) != 0)
            continue;
        build(&t, sc, &rep->rows[i]);
        if (!any)
            fmt->head(f, &t);
        any = true;
        fmt->row(f, &t);
    }
    if (any)
        fmt->end(f);
}

static void cr_emit_scenarios(const cr_bench_report *rep, FILE *f, const cr_fmt *fmt)
{
    cr_scen sc;

    for (size_t i = 0; i < rep->nrows; i++) {
        if (!cr_first(rep, i, false))
            continue;
        cr_scen_get(rep, rep->rows[i].scenario, &sc);
        fmt->title(f, 2, sc.name, "");
        cr_emit_table(rep, f, fmt, &sc, cr_main_row);
        if (sc.phases) {
            fmt->title(f, 3, sc.name, ": where the time goes (µs per request)");
            cr_emit_table(rep, f, fmt, &sc, cr_phase_row);
        }
        if (sc.wrk) {
            fmt->title(f, 3, sc.name, ": the built-in generator beside wrk (built-in / wrk)");
            cr_emit_table(rep, f, fmt, &sc, cr_wrk_row);
        }
    }
}

/* The config of a target: its first row's that has one. */
static const char *cr_target_config(const cr_bench_report *rep, const char *target)
{
    for (size_t i = 0; i < rep->nrows; i++)
        if (strcmp(rep->rows[i].target, target) == 0 && rep->rows[i].config[0])
            return rep->rows[i].config;
    return "";
}

static const char cr_legend[] =
    "Latency in ms; errors are connect/read/timeout/status; CPU is the server's (the whole "
    "process tree) per 1000 requests; PSS, RSS and procs/threads at the memory peak; ctx sw/req: "
    "context switches per request; -: unknown. Beside wrk: the same URL, connections, duration "
    "and client CPU; CPU % is the share of one core the client (load generator) and the server "
    "processes used during each one's run, core % how busy their pinned cores were (loopback "
    "softirq work and anything else running there included).";

/* ---- markdown ---- */

static void cr_md_title(FILE *f, int level, const char *name, const char *suffix)
{
    fprintf(f, "\n%.*s ", level, "######");
    cr_put(f, name, CR_ESC_MD);
    fprintf(f, "%s\n", suffix);
}

static void cr_md_line(FILE *f, const cr_table *t, bool head)
{
    for (int i = 0; i < t->n; i++) {
        fputs("| ", f);
        cr_put(f, head ? t->head[i] : t->cell[i], CR_ESC_MD);
        fputc(' ', f);
    }
    fputs("|\n", f);
}

static void cr_md_head(FILE *f, const cr_table *t)
{
    fputc('\n', f);
    cr_md_line(f, t, true);
    for (int i = 0; i < t->n; i++)
        fputs(t->num[i] ? "|---:" : "|:---", f);
    fputs("|\n", f);
}

static void cr_md_row(FILE *f, const cr_table *t)
{
    cr_md_line(f, t, false);
}

static void cr_md_end(FILE *f)
{
    (void)f;
}

static const cr_fmt cr_md_fmt = {cr_md_title, cr_md_head, cr_md_row, cr_md_end};

static void cr_md_item(FILE *f, const char *label, const char *text)
{
    fprintf(f, "- %s: ", label);
    cr_put(f, text[0] ? text : "-", CR_ESC_MD);
    fputc('\n', f);
}

static void cr_md_header(const cr_bench_report *rep, FILE *f)
{
    fputs("# corral-bench\n\n", f);
    cr_md_item(f, "date", rep->date);
    cr_md_item(f, "machine", rep->machine);
    fputs("- command: ", f);
    cr_md_code(f, rep->command);
    fprintf(f, "\n- duration: %d s per run, connections: %d, workers: %d\n\n%s\n", rep->duration_s,
            rep->connections, rep->workers, cr_legend);
}

static void cr_md_targets(const cr_bench_report *rep, FILE *f)
{
    fputs("\n## Targets\n\n", f);
    for (size_t i = 0; i < rep->nrows; i++) {
        const char *config = cr_target_config(rep, rep->rows[i].target);

        if (!cr_first(rep, i, true))
            continue;
        fputs("- ", f);
        cr_put(f, rep->rows[i].target, CR_ESC_MD);
        fputs(": ", f);
        if (config[0])
            cr_md_code(f, config);
        else
            fputc('-', f);
        fputc('\n', f);
    }
}

void cr_report_markdown(const cr_bench_report *rep, FILE *out)
{
    cr_md_header(rep, out);
    cr_emit_scenarios(rep, out, &cr_md_fmt);
    cr_md_targets(rep, out);
    fflush(out);
}

/* ---- files ---- */

static void cr_warn_errno(const char *what, const char *path)
{
    fprintf(stderr, "corral-bench: %s %s: %s\n", what, path, strerror(errno));
}

/* Flushes and closes f; a failed write anywhere before shows here. */
static int cr_fclose(FILE *f, const char *path)
{
    bool bad;

    errno = 0;
    bad = fflush(f) != 0 || ferror(f);
    if (bad && errno == 0)
        errno = EIO;
    if (fclose(f) != 0 && !bad)
        bad = true;
    if (!bad)
        return 0;
    cr_warn_errno("cannot write", path);
    return -1;
}

static int cr_join(char *buf, size_t size, const char *dir, const char *name)
{
    if ((size_t)snprintf(buf, size, "%s/%s", dir, name) < size)
        return 0;
    errno = ENAMETOOLONG;
    cr_warn_errno("cannot write", name);
    return -1;
}

/* mkdir -p: the folder of a run is usually new, and so is its parent. */
static int cr_mkdirs(const char *dir)
{
    char buf[PATH_MAX];

    if (dir[0] == '\0') {
        errno = ENOENT;
        goto fail;
    }
    if ((size_t)snprintf(buf, sizeof buf, "%s", dir) >= sizeof buf) {
        errno = ENAMETOOLONG;
        goto fail;
    }
    for (char *p = buf + 1;; p++) {
        char c = *p;

        if (c != '/' && c != '\0')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            goto fail;
        *p = c;
        if (c == '\0')
            return 0;
    }
fail:
    cr_warn_errno("cannot create", dir);
    return -1;
}

/* ---- results.json ---- */

/* jansson refuses strings that are not UTF-8: one odd byte in a --target
 * name should not cost the file, so such bytes become '?'. */
static json_t *cr_jstr(const char *s)
{
    json_t *j = json_string(s);
    char *copy;

    if (j)
        return j;
    copy = strdup(s);
    if (!copy)
        return NULL;
    for (unsigned char *p = (unsigned char *)copy; *p;) {
        size_t n = cr_utf8_seq(p);

        if (n == 0)
            *p = '?';
        p += n ? n : 1;
    }
    j = json_string(copy);
    free(copy);
    return j;
}

static json_t *cr_jnum(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *cr_juint(uint64_t v)
{
    return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

/* The end of an object builder: json_object_set_new takes its value even
 * when it fails (a NULL value, or a NULL object after a failed allocation),
 * so one flag per object is all the error handling a builder needs. */
static json_t *cr_jdone(json_t *o, int bad)
{
    if (!bad)
        return o;
    json_decref(o);
    return NULL;
}

static json_t *cr_json_sample(const cr_proc_sample *s)
{
    json_t *o = json_object();
    int bad = 0;

    bad |= json_object_set_new(o, "cpu_s", cr_jnum(s->cpu_s));
    bad |= json_object_set_new(o, "rss_kb", cr_jnum(s->rss_kb));
    bad |= json_object_set_new(o, "pss_kb", cr_jnum(s->pss_kb));
    bad |= json_object_set_new(o, "processes", json_integer(s->processes));
    bad |= json_object_set_new(o, "threads", json_integer(s->threads));
    bad |= json_object_set_new(o, "ctx_switches", cr_juint(s->ctx_switches));
    return cr_jdone(o, bad);
}

static json_t *cr_json_server(const cr_bench_row *r)
{
    json_t *o;
    int bad = 0;

    if (!r->have_server)
        return json_null();
    o = json_object();
    bad |= json_object_set_new(o, "before", cr_json_sample(&r->before));
    bad |= json_object_set_new(o, "after", cr_json_sample(&r->after));
    bad |= json_object_set_new(o, "peak", cr_json_sample(&r->peak));
    bad |= json_object_set_new(o, "cpu_ms_per_1k", cr_jnum(cr_cpu_per_1k(r)));
    bad |= json_object_set_new(o, "ctx_switches_per_request", cr_jnum(cr_ctx_per_req(r)));
    return cr_jdone(o, bad);
}

static json_t *cr_json_latency(const cr_bench_row *r)
{
    json_t *o = json_object();
    int bad = 0;

    bad |= json_object_set_new(o, "p50_ms", cr_jnum(cr_lat_ms(r, 0.5)));
    bad |= json_object_set_new(o, "p90_ms", cr_jnum(cr_lat_ms(r, 0.9)));
    bad |= json_object_set_new(o, "p99_ms", cr_jnum(cr_lat_ms(r, 0.99)));
    bad |= json_object_set_new(o, "p999_ms", cr_jnum(cr_lat_ms(r, 0.999)));
    bad |= json_object_set_new(o, "max_ms", cr_jnum(cr_max_ms(r)));
    bad |= json_object_set_new(o, "mean_ms", cr_jnum(cr_mean_ms(r)));
    bad |= json_object_set_new(o, "count", cr_juint(r->load.latency.count));
    return cr_jdone(o, bad);
}

static json_t *cr_json_errors(const cr_load_result *l)
{
    json_t *o = json_object();
    int bad = 0;

    bad |= json_object_set_new(o, "connect", cr_juint(l->err_connect));
    bad |= json_object_set_new(o, "read", cr_juint(l->err_read));
    bad |= json_object_set_new(o, "timeout", cr_juint(l->err_timeout));
    bad |= json_object_set_new(o, "status", cr_juint(l->err_status));
    return cr_jdone(o, bad);
}

static json_t *cr_json_phases(const cr_bench_row *r)
{
    char key[32];
    json_t *o;
    int bad = 0;

    if (!r->have_phases)
        return json_null();
    o = json_object();
    for (int i = 0; i < CR_BENCH_PHASES; i++) {
        snprintf(key, sizeof key, "%s_us", cr_bench_phase_names[i]);
        bad |= json_object_set_new(o, key, cr_jnum(r->phase_us[i]));
    }
    bad |= json_object_set_new(o, "total_us", cr_jnum(cr_phase_total(r)));
    return cr_jdone(o, bad);
}

static json_t *cr_json_use(const cr_cpu_use *u)
{
    json_t *o = json_object();
    int bad = 0;

    bad |= json_object_set_new(o, "client_cpu_pct", cr_jnum(cr_pct(u->client_pct)));
    bad |= json_object_set_new(o, "client_core_pct", cr_jnum(cr_pct(u->client_core_pct)));
    bad |= json_object_set_new(o, "server_cpu_pct", cr_jnum(cr_pct(u->server_pct)));
    bad |= json_object_set_new(o, "server_core_pct", cr_jnum(cr_pct(u->server_core_pct)));
    bad |= json_object_set_new(o, "client_us_per_request", cr_jnum(cr_pct(u->client_us_per_req)));
    bad |= json_object_set_new(o, "server_us_per_request", cr_jnum(cr_pct(u->server_us_per_req)));
    bad |= json_object_set_new(o, "server_ctx_switches_per_request",
                               cr_jnum(cr_pct(u->server_ctx_per_req)));
    return cr_jdone(o, bad);
}

static json_t *cr_json_wrk_latency(const cr_bench_row *r)
{
    static const char *const keys[4] = {"p50_ms", "p75_ms", "p90_ms", "p99_ms"};
    json_t *o = json_object();
    int bad = 0;

    for (int k = 0; k < 4; k++)
        bad |= json_object_set_new(o, keys[k], cr_jnum(cr_wrk_lat_ms(r, k)));
    return cr_jdone(o, bad);
}

static json_t *cr_json_wrk_errors(const cr_wrk_result *w)
{
    json_t *o = json_object();
    int bad = 0;

    bad |= json_object_set_new(o, "connect", cr_juint(w->err_connect));
    bad |= json_object_set_new(o, "read", cr_juint(w->err_read));
    bad |= json_object_set_new(o, "write", cr_juint(w->err_write));
    bad |= json_object_set_new(o, "timeout", cr_juint(w->err_timeout));
    bad |= json_object_set_new(o, "status", cr_juint(w->err_status));
    return cr_jdone(o, bad);
}

static json_t *cr_json_wrk(const cr_bench_row *r)
{
    const cr_wrk_result *w = &r->wrk;
    json_t *o;
    int bad = 0;

    if (!r->have_wrk)
        return json_null();
    o = json_object();
    bad |= json_object_set_new(o, "threads", json_integer(r->wrk_threads));
    bad |= json_object_set_new(o, "seconds", cr_jnum(w->seconds));
    bad |= json_object_set_new(o, "requests", cr_juint(w->requests));
    bad |= json_object_set_new(o, "requests_per_s", cr_jnum(w->requests_per_s));
    bad |= json_object_set_new(o, "ratio_to_builtin", cr_jnum(cr_wrk_ratio(r)));
    bad |= json_object_set_new(o, "latency", cr_json_wrk_latency(r));
    bad |= json_object_set_new(o, "errors", cr_json_wrk_errors(w));
    bad |= json_object_set_new(o, "cpu_s", cr_jnum(w->cpu_s));
    bad |= json_object_set_new(o, "wall_s", cr_jnum(w->wall_s));
    bad |= json_object_set_new(o, "cpu_use", cr_json_use(&r->wrk_use));
    return cr_jdone(o, bad);
}

static json_t *cr_json_row(const cr_bench_row *r)
{
    const cr_load_result *l = &r->load;
    json_t *o = json_object();
    int bad = 0;

    bad |= json_object_set_new(o, "target", cr_jstr(r->target));
    bad |= json_object_set_new(o, "scenario", cr_jstr(r->scenario));
    bad |= json_object_set_new(o, "config", cr_jstr(r->config));
    bad |= json_object_set_new(o, "seconds", cr_jnum(l->seconds));
    bad |= json_object_set_new(o, "requests", cr_juint(l->requests));
    bad |= json_object_set_new(o, "requests_per_s", cr_jnum(cr_rps(r)));
    bad |= json_object_set_new(o, "bytes", cr_juint(l->bytes));
    bad |= json_object_set_new(o, "requests_total", cr_juint(l->requests_total));
    bad |= json_object_set_new(o, "latency", cr_json_latency(r));
    bad |= json_object_set_new(o, "errors", cr_json_errors(l));
    bad |= json_object_set_new(o, "server", cr_json_server(r));
    bad |= json_object_set_new(o, "server_requests",
                               r->server_requests < 0 ? json_null()
                                                      : json_integer(r->server_requests));
    bad |= json_object_set_new(o, "phases", cr_json_phases(r));
    bad |= json_object_set_new(o, "cpu_use", cr_json_use(&r->use));
    bad |= json_object_set_new(o, "wrk", cr_json_wrk(r));
    bad |= json_object_set_new(o, "idle_wanted", json_integer(r->idle_wanted));
    bad |= json_object_set_new(o, "idle_held", json_integer(l->idle_held));
    bad |= json_object_set_new(o, "idle_kb_per_conn", cr_jnum(cr_idle_kb(r)));
    return cr_jdone(o, bad);
}

static json_t *cr_json_report(const cr_bench_report *rep)
{
    json_t *o = json_object(), *rows = json_array();
    int bad = 0;

    for (size_t i = 0; i < rep->nrows; i++)
        bad |= json_array_append_new(rows, cr_json_row(&rep->rows[i]));
    bad |= json_object_set_new(o, "date", cr_jstr(rep->date));
    bad |= json_object_set_new(o, "machine", cr_jstr(rep->machine));
    bad |= json_object_set_new(o, "command", cr_jstr(rep->command));
    bad |= json_object_set_new(o, "duration_s", json_integer(rep->duration_s));
    bad |= json_object_set_new(o, "connections", json_integer(rep->connections));
    bad |= json_object_set_new(o, "workers", json_integer(rep->workers));
    bad |= json_object_set_new(o, "results", rows);
    return cr_jdone(o, bad);
}

static int cr_write_json(const cr_bench_report *rep, const char *path)
{
    json_t *root = cr_json_report(rep);
    int rc = -1;

    errno = ENOMEM; /* the only way the builders fail */
    if (!root)
        goto fail;
    errno = 0;
    rc = json_dump_file(root, path, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    if (rc != 0 && errno == 0)
        errno = EIO;
    json_decref(root);
    if (rc == 0)
        return 0;
fail:
    cr_warn_errno("cannot write", path);
    return -1;
}

/* ---- results.csv ---- */

/* One line of the CSV: the header line (head) prints the names of the
 * fields instead of their values, so the two cannot drift apart. */
typedef struct cr_csv {
    FILE *f;
    bool head;
    int n; /* fields so far on this line */
} cr_csv;

static void cr_csv_field(cr_csv *c, const char *name, const char *value)
{
    const char *s = c->head ? name : value;

    if (c->n++)
        fputc(',', c->f);
    if (!strpbrk(s, ",\"\r\n")) {
        cr_put(c->f, s, CR_ESC_RAW);
        return;
    }
    fputc('"', c->f);
    cr_put(c->f, s, CR_ESC_CSV);
    fputc('"', c->f);
}

static void cr_csv_num(cr_csv *c, const char *name, double v)
{
    char buf[64] = "";

    if (isfinite(v))
        snprintf(buf, sizeof buf, "%.10g", v);
    cr_csv_field(c, name, buf);
}

static void cr_csv_uint(cr_csv *c, const char *name, uint64_t v)
{
    char buf[32];

    snprintf(buf, sizeof buf, "%" PRIu64, v);
    cr_csv_field(c, name, buf);
}

static void cr_csv_sample(cr_csv *c, const char *prefix, const cr_proc_sample *s, bool known)
{
    static const char *const names[6] = {"cpu_s",     "rss_kb",  "pss_kb",
                                         "processes", "threads", "ctx_switches"};
    double v[6] = {s->cpu_s,     s->rss_kb,  s->pss_kb,
                   s->processes, s->threads, (double)s->ctx_switches};
    char name[64];

    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "%s_%s", prefix, names[i]);
        cr_csv_num(c, name, known ? v[i] : NAN);
    }
}

static void cr_csv_phases(cr_csv *c, const cr_bench_row *r)
{
    char name[32];

    for (int i = 0; i < CR_BENCH_PHASES; i++) {
        snprintf(name, sizeof name, "phase_%s_us", cr_bench_phase_names[i]);
        cr_csv_num(c, name, r->have_phases ? r->phase_us[i] : NAN);
    }
    cr_csv_num(c, "phase_total_us", cr_phase_total(r));
}

static void cr_csv_use(cr_csv *c, const char *prefix, const cr_cpu_use *u, bool known)
{
    static const char *const names[7] = {"client_cpu_pct",
                                         "client_core_pct",
                                         "server_cpu_pct",
                                         "server_core_pct",
                                         "client_us_per_request",
                                         "server_us_per_request",
                                         "server_ctx_switches_per_request"};
    double v[7] = {u->client_pct,        u->client_core_pct,   u->server_pct,
                   u->server_core_pct,   u->client_us_per_req, u->server_us_per_req,
                   u->server_ctx_per_req};
    char name[64];

    for (int i = 0; i < 7; i++) {
        snprintf(name, sizeof name, "%s%s", prefix, names[i]);
        cr_csv_num(c, name, known ? cr_pct(v[i]) : NAN);
    }
}

static void cr_csv_wrk(cr_csv *c, const cr_bench_row *r)
{
    static const char *const lat[4] = {"wrk_p50_ms", "wrk_p75_ms", "wrk_p90_ms", "wrk_p99_ms"};
    const cr_wrk_result *w = &r->wrk;
    bool k = r->have_wrk;

    cr_csv_use(c, "", &r->use, true);
    cr_csv_num(c, "wrk_requests", k ? (double)w->requests : NAN);
    cr_csv_num(c, "wrk_seconds", k ? w->seconds : NAN);
    cr_csv_num(c, "wrk_requests_per_s", cr_wrk_rps(r));
    cr_csv_num(c, "wrk_ratio_to_builtin", cr_wrk_ratio(r));
    for (int i = 0; i < 4; i++)
        cr_csv_num(c, lat[i], cr_wrk_lat_ms(r, i));
    cr_csv_num(c, "wrk_err_connect", k ? (double)w->err_connect : NAN);
    cr_csv_num(c, "wrk_err_read", k ? (double)w->err_read : NAN);
    cr_csv_num(c, "wrk_err_write", k ? (double)w->err_write : NAN);
    cr_csv_num(c, "wrk_err_timeout", k ? (double)w->err_timeout : NAN);
    cr_csv_num(c, "wrk_err_status", k ? (double)w->err_status : NAN);
    cr_csv_num(c, "wrk_cpu_s", k ? w->cpu_s : NAN);
    cr_csv_num(c, "wrk_wall_s", k ? w->wall_s : NAN);
    cr_csv_use(c, "wrk_", &r->wrk_use, k);
}

static void cr_csv_line(cr_csv *c, const cr_bench_row *r)
{
    const cr_load_result *l = &r->load;

    c->n = 0;
    cr_csv_field(c, "target", r->target);
    cr_csv_field(c, "scenario", r->scenario);
    cr_csv_field(c, "config", r->config);
    cr_csv_num(c, "seconds", l->seconds);
    cr_csv_uint(c, "requests", l->requests);
    cr_csv_num(c, "requests_per_s", cr_rps(r));
    cr_csv_uint(c, "bytes", l->bytes);
    cr_csv_uint(c, "requests_total", l->requests_total);
    cr_csv_num(c, "p50_ms", cr_lat_ms(r, 0.5));
    cr_csv_num(c, "p90_ms", cr_lat_ms(r, 0.9));
    cr_csv_num(c, "p99_ms", cr_lat_ms(r, 0.99));
    cr_csv_num(c, "p999_ms", cr_lat_ms(r, 0.999));
    cr_csv_num(c, "max_ms", cr_max_ms(r));
    cr_csv_num(c, "mean_ms", cr_mean_ms(r));
    cr_csv_uint(c, "latency_count", l->latency.count);
    cr_csv_uint(c, "err_connect", l->err_connect);
    cr_csv_uint(c, "err_read", l->err_read);
    cr_csv_uint(c, "err_timeout", l->err_timeout);
    cr_csv_uint(c, "err_status", l->err_status);
    cr_csv_num(c, "cpu_ms_per_1k", cr_cpu_per_1k(r));
    cr_csv_num(c, "ctx_switches_per_request", cr_ctx_per_req(r));
    cr_csv_sample(c, "before", &r->before, r->have_server);
    cr_csv_sample(c, "after", &r->after, r->have_server);
    cr_csv_sample(c, "peak", &r->peak, r->have_server);
    cr_csv_num(c, "server_requests", r->server_requests < 0 ? NAN : (double)r->server_requests);
    cr_csv_phases(c, r);
    cr_csv_uint(c, "idle_wanted", r->idle_wanted > 0 ? (uint64_t)r->idle_wanted : 0);
    cr_csv_uint(c, "idle_held", l->idle_held > 0 ? (uint64_t)l->idle_held : 0);
    cr_csv_num(c, "idle_kb_per_conn", cr_idle_kb(r));
    cr_csv_wrk(c, r);
    fputs("\r\n", c->f); /* RFC 4180 */
}

static int cr_write_csv(const cr_bench_report *rep, const char *path)
{
    static const cr_bench_row none; /* the header line prints no figure */
    cr_csv c = {.head = true};

    c.f = fopen(path, "w");
    if (!c.f) {
        cr_warn_errno("cannot create", path);
        return -1;
    }
    cr_csv_line(&c, &none);
    c.head = false;
    for (size_t i = 0; i < rep->nrows; i++)
        cr_csv_line(&c, &rep->rows[i]);
    return cr_fclose(c.f, path);
}

/* ---- charts: gnuplot scripts and data in temp files under dir ---- */

enum { CR_CHART_RPS, CR_CHART_LATENCY, CR_CHART_MEMORY, CR_CHART_PHASES, CR_NCHARTS };

typedef enum cr_chart_state {
    CR_CHART_NONE,      /* nothing to draw (no data) */
    CR_CHART_DRAWN,     /* svg holds the <svg> element */
    CR_CHART_FAILED,    /* see stderr */
    CR_CHART_NOGNUPLOT, /* gnuplot is not installed */
} cr_chart_state;

typedef struct cr_charts {
    bool no_gnuplot;
    cr_chart_state state[CR_NCHARTS];
    char *svg[CR_NCHARTS];
} cr_charts;

/* One chart being drawn. */
typedef struct cr_plot {
    const cr_bench_report *rep;
    FILE *dat, *gp;
    char dat_path[PATH_MAX], gp_path[PATH_MAX], svg_path[PATH_MAX];
} cr_plot;

static const char *const cr_chart_titles[CR_NCHARTS] = {
    "Throughput (requests per second)",
    "Latency percentiles (ms, log scale)",
    "Peak memory of the server (PSS, MiB)",
    "Where the time goes (µs per request)",
};

/* Percentiles shade from light (p50) to dark (p99.9); the phases follow
 * cr_bench_phase_names. */
static const double cr_lat_q[4] = {0.5, 0.9, 0.99, 0.999};
static const char *const cr_lat_names[4] = {"p50", "p90", "p99", "p99.9"};
static const char *const cr_lat_colors[4] = {"#c6dbef", "#6baed6", "#2171b5", "#08306b"};
static const char *const cr_phase_colors[CR_BENCH_PHASES] = {"#bab0ac", "#4e79a7", "#f28e2b",
                                                             "#59a14f", "#b07aa1"};

static double cr_fig_pss(const cr_bench_row *r)
{
    return cr_mib(r, r->peak.pss_kb);
}

/* A value for gnuplot: NaN leaves the bar out, as a value a log axis
 * cannot show must be. */
static void cr_gp_num(FILE *f, double v, bool logscale)
{
    if (!isfinite(v) || (logscale && v <= 0))
        fputs(" NaN", f);
    else
        fprintf(f, " %.6g", v);
}

static void cr_gp_str(FILE *f, const char *s, bool data)
{
    fputc(data ? '"' : '\'', f);
    cr_put(f, s, data ? CR_ESC_GPDATA : CR_ESC_GPSTR);
    fputc(data ? '"' : '\'', f);
}

/* A path in a gnuplot script: bytes as they are (no UTF-8 repair), ''
 * for a quote. */
static void cr_gp_path(FILE *f, const char *path)
{
    fputc('\'', f);
    for (const char *p = path; *p; p++) {
        if (*p == '\'')
            fputc('\'', f);
        fputc(*p, f);
    }
    fputc('\'', f);
}

/* The longest name of a scenario (by_target: of a target) in characters:
 * a group of bars must be wide enough for its label. */
static int cr_label_chars(const cr_bench_report *rep, bool by_target)
{
    int widest = 0;

    for (size_t i = 0; i < rep->nrows; i++) {
        const cr_bench_row *r = &rep->rows[i];
        int n = 0;

        for (const char *s = by_target ? r->target : r->scenario; *s; s++)
            n += (*s & 0xC0) != 0x80;
        widest = n > widest ? n : widest;
    }
    return widest;
}

/* The width in pixels of a chart with `slots` groups or clusters of at
 * least min_px each, labelled by the longest name (~6 px a character). */
static int cr_gp_width(int slots, int min_px, int label_chars)
{
    int slot = 6 * label_chars + 12;

    return 160 + slots * (slot > min_px ? slot : min_px);
}

static void cr_gp_begin(cr_plot *p, int width, const char *ylabel, bool logscale)
{
    static const char *const palette[8] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759",
                                           "#76b7b2", "#edc948", "#b07aa1", "#9c755f"};
    FILE *f = p->gp;

    width = width < 640 ? 640 : width > 2400 ? 2400 : width;
    fprintf(f, "set terminal svg size %d,420 font 'sans,11' background '#ffffff' noenhanced\n",
            width);
    fputs("set encoding utf8\nset output ", f);
    cr_gp_path(f, p->svg_path);
    fputs("\nset ylabel ", f);
    cr_gp_str(f, ylabel, false);
    fputs("\nset key outside top center horizontal\nset style data histograms\n"
          "set style fill solid 0.9 border rgb '#404040'\nset grid ytics lc rgb '#dddddd'\n"
          "set border 3\nset xtics nomirror scale 0\nset ytics nomirror\nset bmargin 5\n",
          f);
    for (int i = 0; i < 8; i++)
        fprintf(f, "set linetype %d lc rgb '%s'\n", i + 1, palette[i]);
    fputs("set linetype cycle 8\n", f);
    if (logscale)
        fputs("set logscale y\nset format y '%g'\n", f);
    else
        fputs("set yrange [0:*]\n", f);
}

/* Whether the target has a value to draw in some scenario: gnuplot stops
 * with an error on a series with no valid point. */
static bool cr_gp_has(const cr_bench_report *rep, const char *target,
                      double (*fig)(const cr_bench_row *), bool logscale)
{
    for (size_t i = 0; i < rep->nrows; i++) {
        double v = fig(&rep->rows[i]);

        if (strcmp(rep->rows[i].target, target) == 0 && isfinite(v) && (!logscale || v > 0))
            return true;
    }
    return false;
}

/* The data of grouped bars of one figure: a matrix, scenarios down and
 * targets across, with a header line. Sets the number of each. */
static void cr_gp_matrix_data(cr_plot *p, double (*fig)(const cr_bench_row *), bool logscale,
                              int *nscen, int *ntargets)
{
    const cr_bench_report *rep = p->rep;

    fputs("scenario", p->dat);
    for (size_t i = 0; i < rep->nrows; i++) {
        if (!cr_first(rep, i, true))
            continue;
        fputc(' ', p->dat);
        cr_gp_str(p->dat, rep->rows[i].target, true);
        (*ntargets)++;
    }
    fputc('\n', p->dat);
    for (size_t i = 0; i < rep->nrows; i++) {
        if (!cr_first(rep, i, false))
            continue;
        (*nscen)++;
        cr_gp_str(p->dat, rep->rows[i].scenario, true);
        for (size_t j = 0; j < rep->nrows; j++) {
            const cr_bench_row *r;

            if (!cr_first(rep, j, true))
                continue;
            r = cr_find(rep, rep->rows[i].scenario, rep->rows[j].target);
            cr_gp_num(p->dat, r ? fig(r) : NAN, logscale);
        }
        fputc('\n', p->dat);
    }
}

/* Grouped bars of one figure: a group per scenario, a bar per target. */
static bool cr_gp_matrix(cr_plot *p, double (*fig)(const cr_bench_row *), const char *ylabel,
                         bool logscale)
{
    const cr_bench_report *rep = p->rep;
    int ntargets = 0, nscen = 0, col = 1, drawn = 0;

    cr_gp_matrix_data(p, fig, logscale, &nscen, &ntargets);
    cr_gp_begin(p, cr_gp_width(nscen, (ntargets + 1) * 28, cr_label_chars(rep, false)), ylabel,
                logscale);
    for (size_t j = 0; j < rep->nrows; j++) {
        if (!cr_first(rep, j, true))
            continue;
        col++;
        if (!cr_gp_has(rep, rep->rows[j].target, fig, logscale))
            continue;
        fputs(drawn ? ", \\\n  ''" : "plot ", p->gp);
        if (!drawn)
            cr_gp_path(p->gp, p->dat_path);
        /* The column keeps the target's line type, so a target has the same
         * colour in every chart whichever targets are left out. */
        fprintf(p->gp, " using %d%s title columnheader(%d) lt %d", col, drawn ? "" : ":xtic(1)",
                col, col - 1);
        drawn++;
    }
    fputc('\n', p->gp);
    return drawn > 0;
}

static bool cr_chart_rps(cr_plot *p)
{
    double lo = INFINITY, hi = 0;

    /* Scenarios differ a hundredfold (hello vs a 10 ms backend): a linear
     * axis would flatten the slow ones to nothing. */
    for (size_t i = 0; i < p->rep->nrows; i++) {
        double v = cr_rps(&p->rep->rows[i]);

        if (isfinite(v) && v > 0) {
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
    }
    fputs("set style histogram clustered gap 1\n", p->gp);
    if (hi >= 30 * lo)
        return cr_gp_matrix(p, cr_rps, "requests/s (log scale)", true);
    return cr_gp_matrix(p, cr_rps, "requests/s", false);
}

static bool cr_chart_memory(cr_plot *p)
{
    fputs("set style histogram clustered gap 1\n", p->gp);
    return cr_gp_matrix(p, cr_fig_pss, "peak PSS (MiB)", false);
}

static bool cr_lat_known(const cr_bench_row *r)
{
    for (int k = 0; k < 4; k++)
        if (!(cr_lat_ms(r, cr_lat_q[k]) > 0))
            return false;
    return true;
}

static bool cr_phases_known(const cr_bench_row *r)
{
    if (!r->have_phases)
        return false;
    for (int k = 0; k < CR_BENCH_PHASES; k++)
        if (!isfinite(r->phase_us[k]) || r->phase_us[k] < 0)
            return false;
    return true;
}

static bool cr_gp_drawable(const cr_bench_row *r, const char *scenario, bool phases)
{
    return strcmp(r->scenario, scenario) == 0 && (phases ? cr_phases_known(r) : cr_lat_known(r));
}

/* One block of a per-scenario chart, "target" v1 v2 ... for each row of the
 * scenario that can be drawn; how many. An empty block is not written: it
 * would not count as a gnuplot index. */
static int cr_gp_block(cr_plot *p, const char *scenario, bool phases)
{
    int n = 0;

    for (size_t i = 0; i < p->rep->nrows; i++)
        n += cr_gp_drawable(&p->rep->rows[i], scenario, phases);
    if (n == 0)
        return 0;
    fputs("# ", p->dat);
    cr_put(p->dat, scenario, CR_ESC_GPDATA);
    fputc('\n', p->dat);
    for (size_t i = 0; i < p->rep->nrows; i++) {
        const cr_bench_row *r = &p->rep->rows[i];

        if (!cr_gp_drawable(r, scenario, phases))
            continue;
        cr_gp_str(p->dat, r->target, true);
        for (int k = 0; k < (phases ? CR_BENCH_PHASES : 4); k++)
            cr_gp_num(p->dat, phases ? r->phase_us[k] : cr_lat_ms(r, cr_lat_q[k]), !phases);
        fputc('\n', p->dat);
    }
    fputs("\n\n", p->dat); /* two blank lines end a gnuplot index */
    return n;
}

/* The plot clause of block `index`: a newhistogram labelled with the
 * scenario, one series per column, titled in the key only once. */
static void cr_gp_group(cr_plot *p, int index, const char *scenario, bool phases)
{
    int nseries = phases ? CR_BENCH_PHASES : 4;

    fputs(index ? ", \\\n  newhistogram " : "plot newhistogram ", p->gp);
    cr_gp_str(p->gp, scenario, false);
    for (int k = 0; k < nseries; k++) {
        fputs(", ", p->gp);
        if (k == 0)
            cr_gp_path(p->gp, p->dat_path);
        else
            fputs("''", p->gp);
        fprintf(p->gp, " index %d using %d%s", index, k + 2, k == 0 ? ":xtic(1)" : "");
        if (index == 0) {
            fputs(" title ", p->gp);
            cr_gp_str(p->gp, phases ? cr_bench_phase_names[k] : cr_lat_names[k], false);
        } else {
            fputs(" notitle", p->gp);
        }
        fprintf(p->gp, " lc rgb '%s'", phases ? cr_phase_colors[k] : cr_lat_colors[k]);
    }
}

/* Bars grouped by scenario (a newhistogram each), a cluster or a stack per
 * target. gnuplot wants the script after the data is known (the width), so
 * the plot clauses are collected in a second pass. */
static bool cr_gp_grouped(cr_plot *p, bool phases)
{
    const cr_bench_report *rep = p->rep;
    int blocks = 0, clusters = 0;
    bool *drawn = calloc(rep->nrows ? rep->nrows : 1, sizeof *drawn);

    if (!drawn)
        return false;
    for (size_t i = 0; i < rep->nrows; i++) {
        int n;

        if (!cr_first(rep, i, false))
            continue;
        n = cr_gp_block(p, rep->rows[i].scenario, phases);
        drawn[i] = n > 0;
        blocks += n > 0;
        clusters += n > 0 ? n + 1 : 0; /* and a gap between scenarios */
    }
    if (phases)
        fputs("set style histogram rowstacked title offset 0,-1\nset boxwidth 0.6 relative\n",
              p->gp);
    else
        fputs("set style histogram clustered gap 1 title offset 0,-1\n", p->gp);
    cr_gp_begin(p, cr_gp_width(clusters, 60, cr_label_chars(rep, true)),
                phases ? "µs per request" : "ms (log scale)", !phases);
    for (int b = 0, i = 0; i < (int)rep->nrows; i++)
        if (drawn[i])
            cr_gp_group(p, b++, rep->rows[i].scenario, phases);
    fputc('\n', p->gp);
    free(drawn);
    return blocks > 0;
}

static bool cr_chart_latency(cr_plot *p)
{
    return cr_gp_grouped(p, false);
}

static bool cr_chart_phases(cr_plot *p)
{
    return cr_gp_grouped(p, true);
}

static bool (*const cr_chart_fns[CR_NCHARTS])(cr_plot *p) = {cr_chart_rps, cr_chart_latency,
                                                             cr_chart_memory, cr_chart_phases};

/* A new empty file dir/.corral-bench-XXXXXX<suffix>, open for writing when
 * f is not NULL. */
static int cr_tmp(const char *dir, const char *suffix, char *path, FILE **f)
{
    int fd;

    if ((size_t)snprintf(path, PATH_MAX, "%s/.corral-bench-XXXXXX%s", dir, suffix) >= PATH_MAX) {
        errno = ENAMETOOLONG;
        goto fail;
    }
    fd = mkstemps(path, (int)strlen(suffix));
    if (fd < 0)
        goto fail;
    if (f)
        *f = fdopen(fd, "w");
    if (f ? *f != NULL : close(fd) == 0)
        return 0;
    if (f)
        close(fd);
    unlink(path);
fail:
    cr_warn_errno("cannot create a temp file in", dir);
    path[0] = '\0';
    return -1;
}

/* Runs gnuplot on the script (on its stdin); 0, 1 when gnuplot is not
 * installed, -1 when it failed (its messages are on stderr). */
static int cr_gnuplot(const char *script)
{
    char *argv[] = {(char *)"gnuplot", NULL};
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int rc, status;

    rc = posix_spawn_file_actions_init(&fa);
    if (rc != 0)
        goto fail;
    rc = posix_spawn_file_actions_addopen(&fa, 0, script, O_RDONLY, 0);
    /* stdout carries the markdown: gnuplot's chatter goes to stderr. */
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, 2, 1);
    /* glibc's posix_spawnp returns a failed exec (no gnuplot) as ENOENT. */
    if (rc == 0)
        rc = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc == ENOENT)
        return 1;
    if (rc != 0)
        goto fail;
    while ((rc = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    if (rc < 0) {
        cr_warn_errno("cannot wait for gnuplot on", script);
        return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    /* One built on fork (other libcs, valgrind) has the child exit 127 as
     * the shell does. */
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        return 1;
    if (WIFEXITED(status))
        fprintf(stderr, "corral-bench: gnuplot exited with status %d\n", WEXITSTATUS(status));
    else
        fprintf(stderr, "corral-bench: gnuplot killed by signal %d\n", WTERMSIG(status));
    return -1;
fail:
    errno = rc;
    cr_warn_errno("cannot run gnuplot on", script);
    return -1;
}

/* The SVG gnuplot wrote, from its <svg> element on: the XML prolog and
 * any DOCTYPE have no place inside HTML. */
static char *cr_read_svg(const char *path)
{
    FILE *f = fopen(path, "r");
    struct stat st;
    char *buf = NULL, *svg;
    size_t n;

    if (!f || fstat(fileno(f), &st) != 0)
        goto fail;
    buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        goto fail;
    n = fread(buf, 1, (size_t)st.st_size, f);
    if (ferror(f))
        goto fail;
    buf[n] = '\0';
    fclose(f);
    svg = strstr(buf, "<svg");
    if (!svg) {
        fprintf(stderr, "corral-bench: no <svg> element in %s\n", path);
        free(buf);
        return NULL;
    }
    memmove(buf, svg, strlen(svg) + 1);
    return buf;
fail:
    cr_warn_errno("cannot read", path);
    free(buf);
    if (f)
        fclose(f);
    return NULL;
}

static void cr_plot_cleanup(cr_plot *p)
{
    if (p->dat)
        fclose(p->dat);
    if (p->gp)
        fclose(p->gp);
    if (p->dat_path[0])
        unlink(p->dat_path);
    if (p->gp_path[0])
        unlink(p->gp_path);
    if (p->svg_path[0])
        unlink(p->svg_path);
}

/* Draws chart k: its state, and its <svg> in *svg when drawn. */
static cr_chart_state cr_chart(const cr_bench_report *rep, const char *dir, int k, char **svg)
{
    cr_plot p = {.rep = rep};
    cr_chart_state state = CR_CHART_FAILED;
    int rc;

    if (cr_tmp(dir, ".dat", p.dat_path, &p.dat) || cr_tmp(dir, ".gp", p.gp_path, &p.gp) ||
        cr_tmp(dir, ".svg", p.svg_path, NULL))
        goto done;
    if (!cr_chart_fns[k](&p)) {
        state = CR_CHART_NONE;
        goto done;
    }
    rc = cr_fclose(p.dat, p.dat_path);
    p.dat = NULL;
    rc |= cr_fclose(p.gp, p.gp_path);
    p.gp = NULL;
    if (rc == 0)
        rc = cr_gnuplot(p.gp_path);
    if (rc == 1)
        state = CR_CHART_NOGNUPLOT;
    if (rc == 0)
        *svg = cr_read_svg(p.svg_path);
    if (rc == 0 && *svg)
        state = CR_CHART_DRAWN;
done:
    cr_plot_cleanup(&p);
    return state;
}

/* Draws every chart; a missing gnuplot is said once and stops the rest. */
static void cr_draw_charts(const cr_bench_report *rep, const char *dir, cr_charts *c)
{
    *c = (cr_charts){.no_gnuplot = false};
    for (int k = 0; k < CR_NCHARTS; k++) {
        c->state[k] = cr_chart(rep, dir, k, &c->svg[k]);
        if (c->state[k] == CR_CHART_FAILED)
            fprintf(stderr, "corral-bench: warning: the chart \"%s\" is left out of the report\n",
                    cr_chart_titles[k]);
        if (c->state[k] != CR_CHART_NOGNUPLOT)
            continue;
        c->no_gnuplot = true;
        fputs("corral-bench: warning: gnuplot not found (apt-get install gnuplot-nox): "
              "report.html has no charts\n",
              stderr);
        for (; k < CR_NCHARTS; k++)
            c->state[k] = CR_CHART_NOGNUPLOT;
    }
}

static void cr_free_charts(cr_charts *c)
{
    for (int k = 0; k < CR_NCHARTS; k++)
        free(c->svg[k]);
}

/* ---- report.html ---- */

static void cr_html_title(FILE *f, int level, const char *name, const char *suffix)
{
    fprintf(f, "<h%d>", level);
    cr_put(f, name, CR_ESC_HTML);
    cr_put(f, suffix, CR_ESC_HTML);
    fprintf(f, "</h%d>\n", level);
}

static void cr_html_head(FILE *f, const cr_table *t)
{
    fputs("<table>\n<thead><tr>", f);
    for (int i = 0; i < t->n; i++) {
        fputs("<th>", f);
        cr_put(f, t->head[i], CR_ESC_HTML);
        fputs("</th>", f);
    }
    fputs("</tr></thead>\n<tbody>\n", f);
}

static void cr_html_row(FILE *f, const cr_table *t)
{
    fputs("<tr>", f);
    for (int i = 0; i < t->n; i++) {
        fputs(t->num[i] ? "<td class=\"n\">" : "<td>", f);
        cr_put(f, t->cell[i], CR_ESC_HTML);
        fputs("</td>", f);
    }
    fputs("</tr>\n", f);
}

static void cr_html_end(FILE *f)
{
    fputs("</tbody>\n</table>\n", f);
}

static const cr_fmt cr_html_fmt = {cr_html_title, cr_html_head, cr_html_row, cr_html_end};

static const char cr_css[] =
    "body{font-family:sans-serif;margin:2em auto;max-width:90em;padding:0 1em;color:#222}\n"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}\n"
    "th,td{border:1px solid #ccc;padding:.25em .6em}\n"
    "th{background:#f2f2f2}\n"
    "td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\n"
    "figure{margin:1em 0 2em}figcaption{font-weight:bold;margin-bottom:.5em}\n"
    "svg{max-width:100%;height:auto}\n"
    ".note{background:#fff4d6;border:1px solid #e0c36a;padding:.5em 1em}\n"
    "code{white-space:pre-wrap}\n";

static void cr_html_item(FILE *f, const char *label, const char *text, bool code)
{
    fprintf(f, "<li>%s: %s", label, code ? "<code>" : "");
    cr_put(f, text[0] ? text : "-", CR_ESC_HTML);
    fprintf(f, "%s</li>\n", code ? "</code>" : "");
}

static void cr_html_top(const cr_bench_report *rep, FILE *f)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\" />\n"
          "<title>corral-bench: ",
          f);
    cr_put(f, rep->date, CR_ESC_HTML);
    fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>corral-bench</h1>\n<ul>\n",
            cr_css);
    cr_html_item(f, "date", rep->date, false);
    cr_html_item(f, "machine", rep->machine, false);
    cr_html_item(f, "command", rep->command, true);
    fprintf(f, "<li>duration: %d s per run, connections: %d, workers: %d</li>\n</ul>\n<p>",
            rep->duration_s, rep->connections, rep->workers);
    cr_put(f, cr_legend, CR_ESC_HTML);
    fputs("</p>\n", f);
}

/* Writes gnuplot's <svg> with its ids (gpPt0, gnuplot_canvas, ...) and the
 * references to them prefixed by the chart's number: every chart defines
 * the same ids, and ids must be unique in the page. */
static void cr_html_svg(FILE *f, const char *svg, int k)
{
    static const char *const marks[] = {" id='", " id=\"", "href='#", "href=\"#", "url(#"};

    for (const char *p = svg; *p;) {
        size_t i, n = 0;

        for (i = 0; i < sizeof marks / sizeof *marks; i++) {
            n = strlen(marks[i]);
            if (strncmp(p, marks[i], n) == 0)
                break;
        }
        if (i == sizeof marks / sizeof *marks) {
            fputc(*p++, f);
            continue;
        }
        fwrite(p, 1, n, f);
        fprintf(f, "chart%d-", k);
        p += n;
    }
}

static void cr_html_charts(FILE *f, const cr_charts *c)
{
    fputs("<h2>Charts</h2>\n", f);
    if (c->no_gnuplot) {
        fputs("<p class=\"note\">No charts: gnuplot was not found when this report was written "
              "(apt-get install gnuplot-nox).</p>\n",
              f);
        return;
    }
    for (int k = 0; k < CR_NCHARTS; k++) {
        if (c->state[k] == CR_CHART_NONE)
            continue;
        fprintf(f, "<figure>\n<figcaption>");
        cr_put(f, cr_chart_titles[k], CR_ESC_HTML);
        fputs("</figcaption>\n", f);
        if (c->state[k] == CR_CHART_DRAWN)
            cr_html_svg(f, c->svg[k], k);
        else
            fputs("<p class=\"note\">This chart could not be drawn: gnuplot failed (see the "
                  "messages of corral-bench).</p>",
                  f);
        fputs("\n</figure>\n", f);
    }
}

static void cr_html_targets(const cr_bench_report *rep, FILE *f)
{
    fputs("<h2>Targets</h2>\n<table>\n<thead><tr><th>target</th><th>config</th></tr></thead>\n"
          "<tbody>\n",
          f);
    for (size_t i = 0; i < rep->nrows; i++) {
        const char *config = cr_target_config(rep, rep->rows[i].target);

        if (!cr_first(rep, i, true))
            continue;
        fputs("<tr><td>", f);
        cr_put(f, rep->rows[i].target, CR_ESC_HTML);
        fputs("</td><td><code>", f);
        cr_put(f, config[0] ? config : "-", CR_ESC_HTML);
        fputs("</code></td></tr>\n", f);
    }
    fputs("</tbody>\n</table>\n", f);
}

static int cr_write_html(const cr_bench_report *rep, const char *dir, const char *path)
{
    cr_charts charts;
    FILE *f;
    int rc;

    cr_draw_charts(rep, dir, &charts);
    f = fopen(path, "w");
    if (!f) {
        cr_warn_errno("cannot create", path);
        cr_free_charts(&charts);
        return -1;
    }
    cr_html_top(rep, f);
    cr_html_charts(f, &charts);
    cr_emit_scenarios(rep, f, &cr_html_fmt);
    cr_html_targets(rep, f);
    fputs("</body>\n</html>\n", f);
    rc = cr_fclose(f, path);
    cr_free_charts(&charts);
    return rc;
}

int cr_report_write_files(const cr_bench_report *rep, const char *dir)
{
    char path[PATH_MAX];
    int rc = 0;

    if (cr_mkdirs(dir) != 0)
        return -1;
    /* Each file on its own: a failed one should not cost the others the
     * results of a long run. */
    if (cr_join(path, sizeof path, dir, "results.json") != 0 || cr_write_json(rep, path) != 0)
        rc = -1;
    if (cr_join(path, sizeof path, dir, "results.csv") != 0 || cr_write_csv(rep, path) != 0)
        rc = -1;
    if (cr_join(path, sizeof path, dir, "report.html") != 0 || cr_write_html(rep, dir, path) != 0)
        rc = -1;
    return rc;
}
