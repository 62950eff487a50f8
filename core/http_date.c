#include "http_date.h"

static const char cr_wday[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char cr_month[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Per thread, so threaded MPMs read it without a lock. */
static __thread time_t cr_cached_second = -1;
static __thread char cr_cached_http[CR_HTTP_DATE_LEN + 1];
static __thread char cr_cached_log[CR_LOG_DATE_LEN + 1];

time_t cr_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return ts.tv_sec;
}

static char *cr_put2(char *p, int v)
{
    *p++ = (char)('0' + v / 10 % 10);
    *p++ = (char)('0' + v % 10);
    return p;
}

static char *cr_put4(char *p, int v)
{
    p = cr_put2(p, v / 100);
    return cr_put2(p, v % 100);
}

static char *cr_put_str(char *p, const char *s)
{
    while (*s)
        *p++ = *s++;
    return p;
}

static char *cr_put_time(char *p, const struct tm *tm)
{
    p = cr_put2(p, tm->tm_hour);
    *p++ = ':';
    p = cr_put2(p, tm->tm_min);
    *p++ = ':';
    return cr_put2(p, tm->tm_sec);
}

void cr_http_date_format(time_t t, char *buf)
{
    struct tm tm;
    char *p = buf;

    gmtime_r(&t, &tm);
    p = cr_put_str(p, cr_wday[tm.tm_wday]);
    p = cr_put_str(p, ", ");
    p = cr_put2(p, tm.tm_mday);
    *p++ = ' ';
    p = cr_put_str(p, cr_month[tm.tm_mon]);
    *p++ = ' ';
    p = cr_put4(p, tm.tm_year + 1900);
    *p++ = ' ';
    p = cr_put_time(p, &tm);
    p = cr_put_str(p, " GMT");
    *p = '\0';
}

static void cr_log_date_format(time_t t, char *buf)
{
    struct tm tm;
    char *p = buf;

    gmtime_r(&t, &tm);
    p = cr_put2(p, tm.tm_mday);
    *p++ = '/';
    p = cr_put_str(p, cr_month[tm.tm_mon]);
    *p++ = '/';
    p = cr_put4(p, tm.tm_year + 1900);
    *p++ = ':';
    p = cr_put_time(p, &tm);
    p = cr_put_str(p, " +0000");
    *p = '\0';
}

static void cr_date_refresh(void)
{
    time_t now = cr_now();

    if (now == cr_cached_second)
        return;
    cr_cached_second = now;
    cr_http_date_format(now, cr_cached_http);
    cr_log_date_format(now, cr_cached_log);
}

const char *cr_http_date_now(void)
{
    cr_date_refresh();
    return cr_cached_http;
}

const char *cr_log_date_now(void)
{
    cr_date_refresh();
    return cr_cached_log;
}
