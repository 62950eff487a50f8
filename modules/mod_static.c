/* mod_static: serves the files below a route's `root` folder, with a
 * Content-Type from the extension (mime.types), Last-Modified and a strong
 * ETag; answers conditional requests (If-None-Match, If-Modified-Since) with
 * 304 and a single byte range (Range, If-Range) with 206 or 416. Files are
 * opened beneath a descriptor of root (static_open.c), so neither a crafted
 * path nor a symlink reaches outside root. Folders serve their index file;
 * there are no listings. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_PATH */
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "corral/log.h"
#include "corral/module.h"
#include "static_open.h"

/* Non-blocking so that a FIFO planted below root cannot hang the worker
 * before fstat sees it is not a regular file; no effect on regular files. */
#define CR_STATIC_OPEN_FLAGS   (O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
#define CR_STATIC_DEFAULT_TYPE "application/octet-stream"
#define CR_MIME_MAX_BYTES      (1024 * 1024)
#define CR_MIME_MAX_EXT        16
#define CR_HTTP_DATE_SIZE      64
#define CR_ETAG_SIZE           64 /* '"' + 3 x 16 hex digits + 2 '-' + '"' + NUL */
#define CR_CONTENT_RANGE_SIZE  96 /* "bytes " + 3 x 20 digits + '-' + '/' + NUL */

typedef struct cr_mime_entry {
    const char *ext; /* lower case, without the dot */
    const char *type;
    size_t seq; /* order in the file: the first mention of an extension wins */
} cr_mime_entry;

/* Extension to type, sorted by extension for bsearch. */
typedef struct cr_mime_table {
    char *text; /* the whole file, cut in place into NUL-terminated words */
    cr_mime_entry *entries;
    size_t n;
    size_t cap;
} cr_mime_table;

typedef struct cr_static_route {
    int rootfd;  /* O_PATH descriptor of root: every file is opened beneath it */
    char *root;  /* realpath of root, for messages */
    char *index; /* file served for a folder, a plain name */
} cr_static_route;

/* Built in the master by init, read-only in the children. */
static cr_mime_table cr_static_mime;
static bool cr_static_use_openat2;

static void cr_static_close(int fd)
{
    if (close(fd) != 0)
        cr_log_errno(CR_LOG_WARN, errno, "mod_static: close");
}

static void cr_static_lower(char *s)
{
    for (; *s != '\0'; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* ---- mime.types ---------------------------------------------------------- */

static void cr_mime_free(cr_mime_table *t)
{
    free(t->entries);
    free(t->text);
    *t = (cr_mime_table){0};
}

static int cr_mime_cmp(const void *a, const void *b)
{
    const cr_mime_entry *x = a, *y = b;
    int c = strcmp(x->ext, y->ext);
    if (c != 0)
        return c;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static int cr_mime_key_cmp(const void *key, const void *entry)
{
    return strcmp(key, ((const cr_mime_entry *)entry)->ext);
}

static int cr_mime_add(cr_mime_table *t, char *ext, const char *type)
{
    if (t->n == t->cap) {
        size_t cap = t->cap > 0 ? 2 * t->cap : 128;
        cr_mime_entry *entries = realloc(t->entries, cap * sizeof(*entries));
        if (entries == NULL)
            return ENOMEM;
        t->entries = entries;
        t->cap = cap;
    }
    cr_static_lower(ext);
    t->entries[t->n] = (cr_mime_entry){.ext = ext, .type = type, .seq = t->n};
    t->n++;
    return 0;
}

/* Reads a small regular file whole into a NUL-terminated malloc'ed buffer.
 * Returns 0 or an errno value. */
static int cr_static_read_fd(int fd, char **text)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return errno;
    if (!S_ISREG(st.st_mode))
        return EINVAL;
    if (st.st_size > CR_MIME_MAX_BYTES)
        return EFBIG;
    size_t size = (size_t)st.st_size, len = 0;
    char *buf = malloc(size + 1);
    if (buf == NULL)
        return ENOMEM;
    while (len < size) {
        ssize_t n = read(fd, buf + len, size - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = errno;
            free(buf);
            return err;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    *text = buf;
    return 0;
}

static int cr_static_slurp(const char *path, char **text)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int err = cr_static_read_fd(fd, text);
    cr_static_close(fd);
    return err;
}

/* Lines are "type ext ext ...", '#' starts a comment. */
static int cr_mime_parse(cr_mime_table *t)
{
    char *lines = NULL;
    for (char *line = strtok_r(t->text, "\n", &lines); line != NULL;
         line = strtok_r(NULL, "\n", &lines)) {
        char *comment = strchr(line, '#');
        if (comment != NULL)
            *comment = '\0';
        char *words = NULL;
        const char *type = strtok_r(line, " \t\r", &words);
        if (type == NULL)
            continue;
        for (char *ext = strtok_r(NULL, " \t\r", &words); ext != NULL;
             ext = strtok_r(NULL, " \t\r", &words)) {
            if (cr_mime_add(t, ext, type) != 0)
                return ENOMEM;
        }
    }
    return 0;
}

/* Returns 0 or an errno value; t is left empty on failure. */
static int cr_mime_load(cr_mime_table *t, const char *path)
{
    int err = cr_static_slurp(path, &t->text);
    if (err == 0)
        err = cr_mime_parse(t);
    if (err != 0) {
        cr_mime_free(t);
        return err;
    }
    if (t->n == 0)
        return 0;
    qsort(t->entries, t->n, sizeof(*t->entries), cr_mime_cmp);
    size_t kept = 1;
    for (size_t i = 1; i < t->n; i++)
        if (strcmp(t->entries[kept - 1].ext, t->entries[i].ext) != 0)
            t->entries[kept++] = t->entries[i];
    t->n = kept;
    return 0;
}

/* The type for the extension of the last segment of name. */
static const char *cr_static_mime_type(const char *name)
{
    const char *base = strrchr(name, '/');
    base = base != NULL ? base + 1 : name;
    const char *dot = strrchr(base, '.');
    /* A leading dot names a hidden file, not an extension. */
    if (dot == NULL || dot == base || strlen(dot + 1) >= CR_MIME_MAX_EXT || cr_static_mime.n == 0)
        return CR_STATIC_DEFAULT_TYPE;
    char ext[CR_MIME_MAX_EXT];
    strcpy(ext, dot + 1);
    cr_static_lower(ext);
    const cr_mime_entry *e = bsearch(ext, cr_static_mime.entries, cr_static_mime.n,
                                     sizeof(*cr_static_mime.entries), cr_mime_key_cmp);
    return e != NULL ? e->type : CR_STATIC_DEFAULT_TYPE;
}

/* ---- configuration ------------------------------------------------------- */

/* CR_STATIC_NO_OPENAT2=1 in the server's environment is a test knob: it
 * selects the by-hand walk even where the kernel has openat2, so the tests
 * can check that both give the same answers on one machine. */
static bool cr_static_choose_openat2(void)
{
    const char *knob = getenv("CR_STATIC_NO_OPENAT2");
    if (knob != NULL && strcmp(knob, "1") == 0) {
        cr_log(CR_LOG_NOTICE,
               "mod_static: CR_STATIC_NO_OPENAT2=1, resolving paths without openat2");
        return false;
    }
    return cr_static_openat2_usable();
}

static int cr_static_init(const config_setting_t *settings, const char *config_dir, char *err,
                          size_t errlen)
{
    static const char *const allowed[] = {"mime_types", NULL};
    if (settings != NULL && cr_config_check_keys(settings, allowed, err, errlen) != CR_OK)
        return CR_ERROR;
    const config_setting_t *setting =
        settings != NULL ? config_setting_get_member(settings, "mime_types") : NULL;
    const char *file = setting != NULL ? config_setting_get_string(setting) : "mime.types";
    if (file == NULL) {
        cr_config_error(setting, err, errlen, "must be a string (a file)");
        return CR_ERROR;
    }
    char *path = cr_config_path(config_dir, file);
    cr_mime_table table = {0};
    int rc = path != NULL ? cr_mime_load(&table, path) : ENOMEM;
    if (rc != 0 && setting != NULL)
        cr_config_error(setting, err, errlen, "%s: %s", path != NULL ? path : file, strerror(rc));
    else if (rc != 0)
        snprintf(err, errlen, "mod_static: %s: %s", path != NULL ? path : file, strerror(rc));
    free(path);
    if (rc != 0)
        return CR_ERROR;
    /* Swapped only once the new file has loaded: a bad one keeps the old table. */
    cr_mime_free(&cr_static_mime);
    cr_static_mime = table;
    cr_static_use_openat2 = cr_static_choose_openat2();
    return CR_OK;
}

static void cr_static_route_free(cr_static_route *route)
{
    if (route->rootfd >= 0)
        cr_static_close(route->rootfd);
    free(route->root);
    free(route->index);
    free(route);
}

/* Resolves root to its real path and keeps a descriptor of it, which also
 * proves it is a folder. Returns 0 or an errno value. */
static int cr_static_open_root(cr_static_route *route, const char *path)
{
    route->root = realpath(path, NULL);
    if (route->root == NULL)
        return errno;
    route->rootfd = open(route->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (route->rootfd < 0)
        return errno;
    return 0;
}

static int cr_static_root(cr_route_ctx *ctx, cr_static_route *route)
{
    const config_setting_t *setting = config_setting_get_member(ctx->settings, "root");
    if (setting == NULL) {
        const char *file = config_setting_source_file(ctx->settings);
        snprintf(ctx->err, ctx->errlen, "%s:%u: route needs key 'root' (the folder to serve)",
                 file != NULL ? file : "config", config_setting_source_line(ctx->settings));
        return CR_ERROR;
    }
    const char *root = config_setting_get_string(setting);
    if (root == NULL) {
        cr_config_error(setting, ctx->err, ctx->errlen, "must be a string (a folder)");
        return CR_ERROR;
    }
    char *path = cr_config_path(ctx->config_dir, root);
    int err = path != NULL ? cr_static_open_root(route, path) : ENOMEM;
    if (err != 0)
        cr_config_error(setting, ctx->err, ctx->errlen, "%s: %s", path != NULL ? path : root,
                        strerror(err));
    free(path);
    return err == 0 ? CR_OK : CR_ERROR;
}

static bool cr_static_is_file_name(const char *name)
{
    return name[0] != '\0' && strchr(name, '/') == NULL && strncmp(name, "..", 2) != 0 &&
           strcmp(name, ".") != 0;
}

static int cr_static_index(cr_route_ctx *ctx, cr_static_route *route)
{
    const config_setting_t *setting = config_setting_get_member(ctx->settings, "index");
    const char *index = setting != NULL ? config_setting_get_string(setting) : "index.html";
    if (index == NULL || !cr_static_is_file_name(index)) {
        cr_config_error(setting, ctx->err, ctx->errlen, "must be a file name without '/'");
        return CR_ERROR;
    }
    route->index = strdup(index);
    if (route->index == NULL) {
        snprintf(ctx->err, ctx->errlen, "mod_static: out of memory");
        return CR_ERROR;
    }
    return CR_OK;
}

static void cr_static_route_exit(void *route_data)
{
    cr_static_route_free(route_data);
}

static int cr_static_route_init(cr_route_ctx *ctx)
{
    static const char *const allowed[] = {"root", "index", NULL};
    if (cr_route_check_keys(ctx, allowed) != CR_OK)
        return CR_ERROR;
    cr_static_route *route = calloc(1, sizeof(*route));
    if (route == NULL) {
        snprintf(ctx->err, ctx->errlen, "mod_static: out of memory");
        return CR_ERROR;
    }
    route->rootfd = -1;
    if (cr_static_root(ctx, route) != CR_OK || cr_static_index(ctx, route) != CR_OK) {
        cr_static_route_free(route);
        return CR_ERROR;
    }
    ctx->route_data = route;
    return CR_OK;
}

/* ---- opening files beneath root ------------------------------------------ */

/* The request path below the route's prefix, without leading slashes:
 * "/static/css/a.css" under route "/static" gives "css/a.css", and the
 * route's own folder gives "". NULL when the path is not below the prefix. */
static const char *cr_static_relative(const cr_request *r, size_t *len)
{
    const cr_str *path = &r->path, *prefix = &r->route_path;
    if (path->len < prefix->len || memcmp(path->ptr, prefix->ptr, prefix->len) != 0)
        return NULL;
    size_t i = prefix->len;
    bool at_segment = i == 0 || prefix->ptr[i - 1] == '/' || i == path->len || path->ptr[i] == '/';
    if (!at_segment)
        return NULL;
    while (i < path->len && path->ptr[i] == '/')
        i++;
    *len = path->len - i;
    return path->ptr + i;
}

/* The core already decodes the path and removes its dot segments; this is
 * a second lock on the same door, for whatever still arrives: no NUL byte
 * (it would cut the name short), no control character (no file worth
 * serving has one, and they end up in logs), no segment "." and no segment
 * that starts with "..". */
static bool cr_static_relative_is_safe(const char *rel, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)rel[i];
        if (c < 0x20 || c == 0x7f)
            return false;
        if (c != '.' || (i > 0 && rel[i - 1] != '/'))
            continue;
        bool alone = i + 1 == len || rel[i + 1] == '/';
        if (alone || rel[i + 1] == '.')
            return false;
    }
    return true;
}

static int cr_static_errno_status(const cr_static_route *route, int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
        return 404;
    case EACCES:
    case EPERM:
    case ELOOP: /* a symlink loop, or too many links */
    case EXDEV: /* an absolute symlink, or a step that would leave root */
    case ENXIO: /* a socket or a device without a driver */
    case ENODEV:
        return 403;
    default:
        cr_log_errno(CR_LOG_ERROR, err, "mod_static: opening a file below %s", route->root);
        return 500;
    }
}

/* Opens rel ("" for root itself) beneath root and stats it. Returns CR_OK
 * with *fd open, or the HTTP status to answer with. */
static int cr_static_open(const cr_static_route *route, const char *rel, int *fd, struct stat *st)
{
    const char *name = rel[0] != '\0' ? rel : ".";
    *fd = cr_static_use_openat2
              ? cr_static_openat2_beneath(route->rootfd, name, CR_STATIC_OPEN_FLAGS)
              : cr_static_walk_beneath(route->rootfd, name, CR_STATIC_OPEN_FLAGS);
    if (*fd < 0)
        return cr_static_errno_status(route, errno);
    if (fstat(*fd, st) != 0) {
        int status = cr_static_errno_status(route, errno);
        cr_static_close(*fd);
        return status;
    }
    return CR_OK;
}

/* ---- HTTP dates ---------------------------------------------------------- */

static const char cr_static_days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const cr_static_long_days[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                   "Thursday", "Friday", "Saturday"};
static const char cr_static_months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* RFC 1123 date, spelled out by hand: strftime's names follow the locale. */
static int cr_static_http_date(time_t t, char *out)
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL)
        return CR_ERROR;
    snprintf(out, CR_HTTP_DATE_SIZE, "%s, %02d %s %04d %02d:%02d:%02d GMT",
             cr_static_days[tm.tm_wday], tm.tm_mday, cr_static_months[tm.tm_mon], tm.tm_year + 1900,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
    return CR_OK;
}

/* The value of n decimal digits at s, or -1 if one of them is not a digit. */
static int cr_static_digits(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Names in HTTP dates are case-sensitive (RFC 9110 5.6.7). */
static int cr_static_month(const char *s)
{
    for (int m = 0; m < 12; m++)
        if (memcmp(s, cr_static_months[m], 3) == 0)
            return m;
    return -1;
}

static bool cr_static_day_name(const char *s, size_t len, bool long_name)
{
    for (int d = 0; d < 7; d++) {
        const char *name = long_name ? cr_static_long_days[d] : cr_static_days[d];
        if (strlen(name) == len && memcmp(s, name, len) == 0)
            return true;
    }
    return false;
}

/* "hh:mm:ss" at s. */
static bool cr_static_clock(const char *s, struct tm *tm)
{
    if (s[2] != ':' || s[5] != ':')
        return false;
    tm->tm_hour = cr_static_digits(s, 2);
    tm->tm_min = cr_static_digits(s + 3, 2);
    tm->tm_sec = cr_static_digits(s + 6, 2);
    return tm->tm_hour >= 0 && tm->tm_min >= 0 && tm->tm_sec >= 0;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT", the one format senders must use. */
static bool cr_static_imf_date(const char *s, size_t len, struct tm *tm)
{
    if (len != 29 || !cr_static_day_name(s, 3, false) || memcmp(s + 3, ", ", 2) != 0 ||
        s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || memcmp(s + 25, " GMT", 4) != 0)
        return false;
    tm->tm_mday = cr_static_digits(s + 5, 2);
    tm->tm_mon = cr_static_month(s + 8);
    tm->tm_year = cr_static_digits(s + 12, 4) - 1900;
    return tm->tm_year >= -1900 && cr_static_clock(s + 17, tm);
}

/* Obsolete "Sunday, 06-Nov-94 08:49:37 GMT". */
static bool cr_static_rfc850_date(const char *s, size_t len, struct tm *tm)
{
    const char *comma = memchr(s, ',', len);
    if (comma == NULL || !cr_static_day_name(s, (size_t)(comma - s), true))
        return false;
    const char *p = comma + 1;
    if ((size_t)(s + len - p) != 23 || p[0] != ' ')
        return false;
    p++;
    if (p[2] != '-' || p[6] != '-' || p[9] != ' ' || memcmp(p + 18, " GMT", 4) != 0)
        return false;
    tm->tm_mday = cr_static_digits(p, 2);
    tm->tm_mon = cr_static_month(p + 3);
    int yy = cr_static_digits(p + 7, 2);
    /* Two-digit years: the usual pivot, 70..99 is the 20th century. */
    tm->tm_year = yy < 70 ? yy + 100 : yy;
    return yy >= 0 && cr_static_clock(p + 10, tm);
}

/* Obsolete asctime "Sun Nov  6 08:49:37 1994" (the day padded with a space). */
static bool cr_static_asctime_date(const char *s, size_t len, struct tm *tm)
{
    if (len != 24 || !cr_static_day_name(s, 3, false) || s[3] != ' ' || s[7] != ' ' ||
        s[10] != ' ' || s[19] != ' ')
        return false;
    tm->tm_mon = cr_static_month(s + 4);
    tm->tm_mday = s[8] == ' ' ? cr_static_digits(s + 9, 1) : cr_static_digits(s + 8, 2);
    tm->tm_year = cr_static_digits(s + 20, 4) - 1900;
    return tm->tm_year >= -1900 && cr_static_clock(s + 11, tm);
}

/* An HTTP-date in any of its three formats (RFC 9110 5.6.7). False for
 * anything else, which callers ignore as the RFC says. */
static bool cr_static_parse_date(const cr_str *v, time_t *out)
{
    struct tm tm = {0};
    if (!cr_static_imf_date(v->ptr, v->len, &tm) && !cr_static_rfc850_date(v->ptr, v->len, &tm) &&
        !cr_static_asctime_date(v->ptr, v->len, &tm))
        return false;
    if (tm.tm_mon < 0 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
        tm.tm_sec > 60)
        return false;
    int mday = tm.tm_mday, mon = tm.tm_mon;
    time_t t = timegm(&tm);
    /* timegm moves "31 Feb" into March: such a date is not a date. */
    if (t == (time_t)-1 || tm.tm_mday != mday || tm.tm_mon != mon)
        return false;
    *out = t;
    return true;
}

/* ---- conditional and range requests -------------------------------------- */

/* What a file response is validated and cut by. */
typedef struct cr_static_file {
    int fd;
    uint64_t size;
    time_t mtime;
    char etag[CR_ETAG_SIZE];
    char last_modified[CR_HTTP_DATE_SIZE];
} cr_static_file;

typedef enum cr_static_span_kind {
    CR_STATIC_WHOLE,        /* 200 with the whole file */
    CR_STATIC_PART,         /* 206 with one range */
    CR_STATIC_UNSATISFIABLE /* 416 */
} cr_static_span_kind;

typedef struct cr_static_span {
    uint64_t first;
    uint64_t len;
} cr_static_span;

static bool cr_static_name_is(const cr_header *h, const char *name)
{
    size_t len = strlen(name);
    return h->name.len == len && strncasecmp(h->name.ptr, name, len) == 0;
}

/* The first field named name and how many there are: a field sent twice is
 * a list of two, which Range, If-Range and If-Modified-Since do not allow. */
static const cr_str *cr_static_header(const cr_request *r, const char *name, size_t *count)
{
    const cr_str *first = NULL;
    *count = 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        if (!cr_static_name_is(&r->headers[i], name))
            continue;
        if (first == NULL)
            first = &r->headers[i].value;
        (*count)++;
    }
    return first;
}

/* A strong validator: the same path replaced by another file (inode), or
 * rewritten within the same second (size, nanoseconds), gets a new tag. */
static void cr_static_etag(const struct stat *st, char *out)
{
    uint64_t ns = (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec;
    snprintf(out, CR_ETAG_SIZE, "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "\"", (uint64_t)st->st_ino,
             (uint64_t)st->st_size, ns);
}

static bool cr_static_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Whether the If-None-Match list v holds "*" or etag, comparing weakly
 * (RFC 9110 13.1.2: W/"x" matches "x"). A malformed list matches nothing,
 * so the client gets the full response rather than a wrong 304. */
static bool cr_static_etag_listed(const cr_str *v, const char *etag)
{
    size_t etag_len = strlen(etag);
    const char *p = v->ptr, *end = v->ptr + v->len;
    for (;;) {
        while (p < end && (cr_static_ows(*p) || *p == ','))
            p++;
        if (p == end)
            return false;
        if (*p == '*')
            return true;
        if (end - p >= 2 && p[0] == 'W' && p[1] == '/')
            p += 2;
        if (p == end || *p != '"')
            return false;
        const char *close = memchr(p + 1, '"', (size_t)(end - p - 1));
        if (close == NULL)
            return false;
        size_t len = (size_t)(close - p) + 1;
        if (len == etag_len && memcmp(p, etag, len) == 0)
            return true;
        for (p = close + 1; p < end && cr_static_ows(*p); p++)
            ;
        if (p < end && *p != ',')
            return false;
    }
}

/* RFC 9110 13.2.2: If-None-Match decides when present, else
 * If-Modified-Since (to the second, as Last-Modified shows it). */
static bool cr_static_not_modified(const cr_request *r, const cr_static_file *f)
{
    bool has_inm = false;
    for (size_t i = 0; i < r->nheaders; i++) {
        if (!cr_static_name_is(&r->headers[i], "If-None-Match"))
            continue;
        has_inm = true;
        if (cr_static_etag_listed(&r->headers[i].value, f->etag))
            return true;
    }
    if (has_inm)
        return false;
    size_t count;
    const cr_str *v = cr_static_header(r, "If-Modified-Since", &count);
    time_t since;
    if (count != 1 || !cr_static_parse_date(v, &since))
        return false;
    return f->mtime <= since;
}

/* If-Range (RFC 9110 13.1.5): the range applies only to the representation
 * the client already has part of. An entity-tag compares strongly, so a
 * weak one never matches; a date must equal Last-Modified exactly. */
static bool cr_static_if_range_holds(const cr_request *r, const cr_static_file *f)
{
    size_t count;
    const cr_str *v = cr_static_header(r, "If-Range", &count);
    if (count == 0)
        return true;
    if (count > 1 || v->len == 0)
        return false;
    /* "W/" rather than 'W': "Wed, ..." is a date. */
    if (v->ptr[0] == '"' || (v->len >= 2 && v->ptr[0] == 'W' && v->ptr[1] == '/'))
        return v->len == strlen(f->etag) && memcmp(v->ptr, f->etag, v->len) == 0;
    time_t t;
    return cr_static_parse_date(v, &t) && t == f->mtime;
}

/* Decimal digits at *p, saturating at UINT64_MAX: a position that large is
 * past any file, which the range checks handle. False when there are none. */
static bool cr_static_number(const char **p, const char *end, uint64_t *out)
{
    const char *start = *p;
    uint64_t n = 0;
    for (; *p < end && **p >= '0' && **p <= '9'; (*p)++) {
        uint64_t d = (uint64_t)(**p - '0');
        n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
    }
    *out = n;
    return *p != start;
}

/* One "bytes=a-b", "bytes=a-" or "bytes=-n" against a file of size bytes
 * (size > 0). Several ranges or any other syntax serve the whole file,
 * which RFC 9110 14.2 allows: it saves a multipart body for a rare case. */
static cr_static_span_kind cr_static_parse_range(const cr_str *v, uint64_t size,
                                                 cr_static_span *span)
{
    const char *p = v->ptr, *end = v->ptr + v->len;
    if (v->len < 6 || strncasecmp(p, "bytes=", 6) != 0 || memchr(p, ',', v->len) != NULL)
        return CR_STATIC_WHOLE;
    for (p += 6; p < end && cr_static_ows(*p); p++)
        ;
    uint64_t first, last;
    bool has_first = cr_static_number(&p, end, &first);
    if (p == end || *p++ != '-')
        return CR_STATIC_WHOLE;
    bool has_last = cr_static_number(&p, end, &last);
    if (p != end || (!has_first && !has_last))
        return CR_STATIC_WHOLE;
    if (!has_first) { /* the last `last` bytes */
        if (last == 0)
            return CR_STATIC_UNSATISFIABLE;
        span->len = last < size ? last : size;
        span->first = size - span->len;
        return CR_STATIC_PART;
    }
    /* Reversed bounds are an invalid range, answered like one past the end. */
    if (first >= size || (has_last && last < first))
        return CR_STATIC_UNSATISFIABLE;
    if (!has_last || last >= size)
        last = size - 1;
    span->first = first;
    span->len = last - first + 1;
    return CR_STATIC_PART;
}

/* Range is defined for GET only (RFC 9110 14.2): HEAD gets the headers of
 * the whole file. An empty file has no byte to cut, so it is sent whole. */
static cr_static_span_kind cr_static_range(const cr_request *r, const cr_static_file *f,
                                           cr_static_span *span)
{
    if (r->method != CR_METHOD_GET || f->size == 0)
        return CR_STATIC_WHOLE;
    size_t count;
    const cr_str *v = cr_static_header(r, "Range", &count);
    if (count != 1 || !cr_static_if_range_holds(r, f))
        return CR_STATIC_WHOLE;
    return cr_static_parse_range(v, f->size, span);
}

/* ---- file responses ------------------------------------------------------ */

/* ETag and Last-Modified go on every answer about the file, 304 included. */
static int cr_static_validators(cr_request *r, const struct stat *st, cr_static_file *f)
{
    f->size = (uint64_t)st->st_size;
    f->mtime = st->st_mtim.tv_sec;
    cr_static_etag(st, f->etag);
    if (cr_static_http_date(f->mtime, f->last_modified) != CR_OK)
        return CR_ERROR;
    if (cr_response_header(r, "ETag", f->etag) != CR_OK ||
        cr_response_header(r, "Last-Modified", f->last_modified) != CR_OK)
        return CR_ERROR;
    return CR_OK;
}

/* The core's error page for 416 is the body, so no Content-Type is set. */
static int cr_static_unsatisfiable(cr_request *r, cr_static_file *f)
{
    char range[CR_CONTENT_RANGE_SIZE];
    snprintf(range, sizeof(range), "bytes */%" PRIu64, f->size);
    cr_static_close(f->fd);
    if (cr_response_header(r, "Content-Range", range) != CR_OK)
        return 500;
    return 416;
}

/* 200 or 206 with the bytes of span; the core owns fd from here on. */
static int cr_static_send(cr_request *r, cr_static_file *f, cr_static_span_kind kind,
                          const cr_static_span *span, const char *name)
{
    cr_static_span whole = {.first = 0, .len = f->size};
    if (kind == CR_STATIC_WHOLE)
        span = &whole;
    int rc = cr_response_header(r, "Content-Type", cr_static_mime_type(name));
    if (rc == CR_OK)
        rc = cr_response_header(r, "Accept-Ranges", "bytes");
    if (rc == CR_OK && kind == CR_STATIC_PART) {
        char range[CR_CONTENT_RANGE_SIZE];
        snprintf(range, sizeof(range), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, span->first,
                 span->first + span->len - 1, f->size);
        rc = cr_response_header(r, "Content-Range", range);
        cr_response_status(r, 206);
    }
    if (rc != CR_OK) {
        cr_static_close(f->fd);
        return 500;
    }
    if (cr_response_sendfile(r, f->fd, (off_t)span->first, (size_t)span->len) != CR_OK)
        return 500;
    return CR_DONE;
}

/* Answers with the open file; fd is consumed in every case. */
static int cr_static_serve_file(cr_request *r, int fd, const struct stat *st, const char *name)
{
    /* Only regular files: no devices, FIFOs or sockets. */
    if (!S_ISREG(st->st_mode)) {
        cr_static_close(fd);
        return 403;
    }
    cr_static_file f = {.fd = fd};
    if (cr_static_validators(r, st, &f) != CR_OK) {
        cr_static_close(fd);
        return 500;
    }
    if (cr_static_not_modified(r, &f)) {
        cr_static_close(fd);
        cr_response_status(r, 304);
        return CR_DONE;
    }
    cr_static_span span = {0};
    cr_static_span_kind kind = cr_static_range(r, &f, &span);
    if (kind == CR_STATIC_UNSATISFIABLE)
        return cr_static_unsatisfiable(r, &f);
    return cr_static_send(r, &f, kind, &span, name);
}

/* ---- responses ----------------------------------------------------------- */

static bool cr_static_url_safe(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("-._~!$&'()*+,;=:@/", c) != NULL);
}

/* Percent-encodes the decoded request path for a Location header. Leading
 * slashes collapse into one, or "//host/" would send the client to another
 * site. */
static char *cr_static_location(cr_request *r)
{
    static const char hex[] = "0123456789ABCDEF";
    const cr_str *path = &r->path, *query = &r->query;
    char *out = cr_palloc(r, 3 * path->len + query->len + 4);
    if (out == NULL)
        return NULL;
    size_t i = 0;
    while (i < path->len && path->ptr[i] == '/')
        i++;
    char *p = out;
    *p++ = '/';
    for (; i < path->len; i++) {
        unsigned char c = (unsigned char)path->ptr[i];
        if (cr_static_url_safe(c)) {
            *p++ = (char)c;
            continue;
        }
        *p++ = '%';
        *p++ = hex[c >> 4];
        *p++ = hex[c & 0xf];
    }
    if (p[-1] != '/')
        *p++ = '/';
    if (query->len > 0) {
        *p++ = '?';
        memcpy(p, query->ptr, query->len);
        p += query->len;
    }
    *p = '\0';
    return out;
}

/* A folder: "/about" redirects to "/about/" so that relative links in its
 * index resolve; "/about/" serves the index, and no index means 403. */
static int cr_static_serve_folder(cr_request *r, const cr_static_route *route, const char *rel,
                                  size_t len)
{
    if (r->path.len == 0 || r->path.ptr[r->path.len - 1] != '/') {
        char *location = cr_static_location(r);
        if (location == NULL || cr_response_header(r, "Location", location) != CR_OK)
            return 500;
        return 301;
    }
    size_t index_len = strlen(route->index);
    char *index = cr_palloc(r, len + index_len + 1);
    if (index == NULL)
        return 500;
    memcpy(index, rel, len); /* rel is "" or ends with '/' */
    memcpy(index + len, route->index, index_len + 1);
    int fd;
    struct stat st;
    int status = cr_static_open(route, index, &fd, &st);
    if (status == 404)
        return 403;
    if (status != CR_OK)
        return status;
    return cr_static_serve_file(r, fd, &st, index);
}

static int cr_static_handle(cr_request *r)
{
    const cr_static_route *route = r->route_data;
    if (r->method != CR_METHOD_GET && r->method != CR_METHOD_HEAD) {
        if (cr_response_header(r, "Allow", "GET, HEAD") != CR_OK)
            return 500;
        return 405;
    }
    size_t len = 0;
    const char *rel = cr_static_relative(r, &len);
    if (rel == NULL)
        return 404;
    /* 404 like a missing file: a probe learns nothing about the tree. */
    if (!cr_static_relative_is_safe(rel, len))
        return 404;
    int fd;
    struct stat st;
    int status = cr_static_open(route, rel, &fd, &st);
    if (status != CR_OK)
        return status;
    if (S_ISDIR(st.st_mode)) {
        cr_static_close(fd);
        return cr_static_serve_folder(r, route, rel, len);
    }
    return cr_static_serve_file(r, fd, &st, rel);
}

__attribute__((visibility("default"))) const cr_module cr_module_entry = {
    .magic = CR_MODULE_MAGIC,
    .abi = CR_MODULE_ABI,
    .name = "static",
    .version = "1.0",
    /* Opening and stat-ing a file does not wait on clients; the body goes out
     * by sendfile from the core, which never blocks an event thread. */
    .flags = CR_MODULE_NONBLOCKING,
    .init = cr_static_init,
    .route_init = cr_static_route_init,
    .route_exit = cr_static_route_exit,
    .handle = cr_static_handle,
};
