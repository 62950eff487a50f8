/* Unit tests for core/io/wait_thread.c and core/io/wait_fiber.c: the same
 * wait on a socketpair from a thread and from fibers on a real event loop
 * (readable, writable, timeouts, sleeps, stops of each kind, a signal), a
 * thousand sleeping fibers on one thread, and wakes from another thread. */
#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/fiber.h"
#include "io/wait.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CR_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CR_TEST_SANITIZED 1
#endif
#endif

#define CR_TEST_SHORT_MS 30
#define CR_TEST_LONG_MS  5000
#define CR_TEST_MANY     1000
#define CR_TEST_MANY_MS  50
#ifdef CR_TEST_SANITIZED
#define CR_TEST_MANY_LIMIT_MS 5000
#else
#define CR_TEST_MANY_LIMIT_MS 1000
#endif
#define CR_TEST_IDLE_STACKS   64
#define CR_TEST_WAKE_DELAY_MS 20

static int64_t cr_test_ms_since(int64_t start_ns)
{
    return (cr_wait_now_ns() - start_ns) / CR_WAIT_NS_PER_MS;
}

static void cr_test_raise(int fd)
{
    uint64_t one = 1;

    ck_assert_int_eq(write(fd, &one, sizeof(one)), (ssize_t)sizeof(one));
}

/* The stop descriptors, by kind, as the child makes them. */
typedef struct cr_test_stops {
    int fd[CR_WAIT_KINDS];
} cr_test_stops;

static cr_test_stops cr_test_stops_new(void)
{
    cr_test_stops st;

    for (int k = 0; k < CR_WAIT_KINDS; k++) {
        st.fd[k] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        ck_assert_int_ge(st.fd[k], 0);
    }
    return st;
}

/* A graceful stop raises the idle descriptor; an immediate one both. */
static void cr_test_stop_graceful(const cr_test_stops *st)
{
    cr_test_raise(st->fd[CR_WAIT_IDLE]);
}

static void cr_test_stop_now(const cr_test_stops *st)
{
    cr_test_raise(st->fd[CR_WAIT_BUSY]);
    cr_test_raise(st->fd[CR_WAIT_IDLE]);
}

static void cr_test_pair(int sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
}

static int cr_test_threads(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;

    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    fclose(f);
    ck_assert_int_gt(n, 0);
    return n;
}

/* ---- on a thread ---- */

static cr_wait_thread cr_test_thread_waiter(const cr_test_stops *st)
{
    cr_wait_thread t;

    cr_wait_thread_init(&t, st->fd, NULL);
    return t;
}

START_TEST(test_thread_readable_and_timeout)
{
    cr_test_stops st = cr_test_stops_new();
    cr_wait_thread t = cr_test_thread_waiter(&st);
    int sv[2];
    int64_t start;

    cr_test_pair(sv);
    start = cr_wait_now_ns();
    ck_assert_int_eq(
        cr_wait(&t.waiter, sv[0], POLLIN, cr_wait_deadline_ms(CR_TEST_SHORT_MS), CR_WAIT_BUSY),
        CR_WAIT_TIMEDOUT);
    ck_assert_int_ge(cr_test_ms_since(start), CR_TEST_SHORT_MS);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    ck_assert_int_eq(
        cr_wait(&t.waiter, sv[0], POLLIN, cr_wait_deadline_ms(CR_TEST_LONG_MS), CR_WAIT_BUSY),
        CR_WAIT_READY);
    ck_assert_int_eq(cr_wait(&t.waiter, sv[0], POLLOUT, CR_WAIT_FOREVER, CR_WAIT_IDLE),
                     CR_WAIT_READY);
    /* A deadline already gone polls once. */
    ck_assert_int_eq(cr_wait(&t.waiter, sv[1], POLLIN, cr_wait_now_ns() - 1, CR_WAIT_BUSY),
                     CR_WAIT_TIMEDOUT);
    start = cr_wait_now_ns();
    ck_assert_int_eq(cr_wait_sleep(&t.waiter, cr_wait_deadline_ms(CR_TEST_SHORT_MS), CR_WAIT_IDLE),
                     CR_WAIT_TIMEDOUT);
    ck_assert_int_ge(cr_test_ms_since(start), CR_TEST_SHORT_MS);
}
END_TEST

START_TEST(test_thread_poll_many)
{
    cr_test_stops st = cr_test_stops_new();
    cr_wait_thread t = cr_test_thread_waiter(&st);
    struct pollfd p[CR_WAIT_POLL_MAX + 1];
    int a[2], b[2];

    cr_test_pair(a);
    cr_test_pair(b);
    ck_assert_int_eq(write(b[1], "x", 1), 1);
    p[0] = (struct pollfd){.fd = a[0], .events = POLLIN};
    p[1] = (struct pollfd){.fd = b[0], .events = POLLIN};
    ck_assert_int_eq(cr_wait_thread_poll(&t, p, 2, NULL, CR_WAIT_BUSY), CR_WAIT_READY);
    ck_assert_int_eq(p[0].revents, 0);
    ck_assert_int_eq(p[1].revents, POLLIN);
    errno = 0;
    ck_assert_int_eq(cr_wait_thread_poll(&t, p, CR_WAIT_POLL_MAX + 1, NULL, CR_WAIT_BUSY),
                     CR_WAIT_FAILED);
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(test_thread_stops_by_kind)
{
    cr_test_stops st = cr_test_stops_new();
    cr_wait_thread t = cr_test_thread_waiter(&st);
    int sv[2];

    cr_test_pair(sv);
    cr_test_stop_graceful(&st);
    ck_assert_int_eq(cr_wait(&t.waiter, sv[0], POLLIN, CR_WAIT_FOREVER, CR_WAIT_IDLE),
                     CR_WAIT_STOPPED);
    ck_assert_int_eq(cr_wait_sleep(&t.waiter, CR_WAIT_FOREVER, CR_WAIT_IDLE), CR_WAIT_STOPPED);
    /* A graceful stop lets a request in progress finish. */
    ck_assert_int_eq(
        cr_wait(&t.waiter, sv[0], POLLIN, cr_wait_deadline_ms(CR_TEST_SHORT_MS), CR_WAIT_BUSY),
        CR_WAIT_TIMEDOUT);
    cr_test_stop_now(&st);
    ck_assert_int_eq(cr_wait(&t.waiter, sv[0], POLLIN, CR_WAIT_FOREVER, CR_WAIT_BUSY),
                     CR_WAIT_STOPPED);
    ck_assert_int_eq(cr_wait(&t.waiter, sv[0], POLLIN, CR_WAIT_FOREVER, CR_WAIT_IDLE),
                     CR_WAIT_STOPPED);
}
END_TEST

static volatile sig_atomic_t cr_test_signaled;

static void cr_test_on_signal(int sig)
{
    (void)sig;
    cr_test_signaled = 1;
}

/* As in a child: the stop signal stays blocked but while polling. */
START_TEST(test_thread_signal_interrupts)
{
    cr_test_stops st = cr_test_stops_new();
    struct sigaction sa = {.sa_handler = cr_test_on_signal};
    sigset_t block, wait_mask;
    cr_wait_thread t;
    int64_t start;

    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &block, &wait_mask), 0);
    sigdelset(&wait_mask, SIGUSR1);
    cr_wait_thread_init(&t, st.fd, &wait_mask);
    ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
    ck_assert_int_eq(cr_test_signaled, 0);
    start = cr_wait_now_ns();
    ck_assert_int_eq(cr_wait_sleep(&t.waiter, cr_wait_deadline_ms(CR_TEST_LONG_MS), CR_WAIT_BUSY),
                     CR_WAIT_STOPPED);
    ck_assert_int_eq(cr_test_signaled, 1);
    ck_assert_int_lt(cr_test_ms_since(start), CR_TEST_LONG_MS);
}
END_TEST

/* ---- on fibers ---- */

typedef struct cr_test_loop {
    struct event_base *base;
    cr_fiber_pool *pool;
    cr_fiber_sched *sched;
    cr_waiter *w;
    cr_test_stops stops;
    int done;
} cr_test_loop;

static void cr_test_loop_new(cr_test_loop *l)
{
    memset(l, 0, sizeof(*l));
    l->stops = cr_test_stops_new();
    l->base = event_base_new();
    ck_assert_ptr_nonnull(l->base);
    l->pool = cr_fiber_pool_new(0, CR_TEST_IDLE_STACKS);
    ck_assert_ptr_nonnull(l->pool);
    l->sched = cr_fiber_sched_new(l->base, l->pool, l->stops.fd);
    ck_assert_ptr_nonnull(l->sched);
    l->w = cr_fiber_sched_waiter(l->sched);
}

static void cr_test_loop_free(cr_test_loop *l)
{
    cr_fiber_sched_free(l->sched);
    cr_fiber_pool_free(l->pool);
    event_base_free(l->base);
}

/* Runs the loop until `want` fibers finished. */
static void cr_test_loop_run(cr_test_loop *l, int want)
{
    while (l->done < want)
        ck_assert_int_ge(event_base_loop(l->base, EVLOOP_ONCE), 0);
}

/* One fiber's wait and what came of it. */
typedef struct cr_test_waiting {
    cr_test_loop *loop;
    int fd;
    short events;
    long long ms; /* deadline from the start of the wait; -1: none */
    cr_wait_kind kind;
    cr_fiber_wake *wake; /* wait on this instead of fd */
    int result;
    int err;
    int64_t took_ms;
    bool finished;
} cr_test_waiting;

static void cr_test_waiting_fn(void *arg)
{
    cr_test_waiting *t = arg;
    int64_t start = cr_wait_now_ns();
    int64_t deadline = cr_wait_deadline_ms(t->ms);

    if (t->wake != NULL)
        t->result = cr_fiber_wake_wait(t->wake, deadline, t->kind);
    else
        t->result = cr_wait(t->loop->w, t->fd, t->events, deadline, t->kind);
    t->err = errno;
    t->took_ms = cr_test_ms_since(start);
    t->finished = true;
    t->loop->done++;
}

/* Starts t on a fiber; it runs until its wait yields (or ends). */
static void cr_test_start(cr_test_loop *l, cr_test_waiting *t)
{
    cr_fiber *f;

    t->loop = l;
    f = cr_fiber_new(l->pool, cr_test_waiting_fn, t);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_ge(cr_fiber_resume(f), 0);
}

START_TEST(test_fiber_readable)
{
    cr_test_loop l;
    int sv[2];
    cr_test_waiting t = {.events = POLLIN, .ms = CR_TEST_LONG_MS, .kind = CR_WAIT_BUSY};

    cr_test_loop_new(&l);
    cr_test_pair(sv);
    t.fd = sv[0];
    cr_test_start(&l, &t);
    ck_assert(!t.finished);
    ck_assert_uint_eq(cr_fiber_sched_waiting(l.sched), 1);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    cr_test_loop_run(&l, 1);
    ck_assert_int_eq(t.result, CR_WAIT_READY);
    ck_assert_int_lt(t.took_ms, CR_TEST_LONG_MS);
    ck_assert_uint_eq(cr_fiber_sched_waiting(l.sched), 0);
    cr_test_loop_free(&l);
}
END_TEST

START_TEST(test_fiber_timeout_and_sleep)
{
    cr_test_loop l;
    int sv[2];
    cr_test_waiting rd = {.events = POLLIN, .ms = CR_TEST_SHORT_MS, .kind = CR_WAIT_IDLE};
    cr_test_waiting sleep = {.fd = -1, .ms = CR_TEST_SHORT_MS, .kind = CR_WAIT_BUSY};
    cr_test_waiting wr = {.events = POLLOUT, .ms = CR_TEST_LONG_MS, .kind = CR_WAIT_BUSY};

    cr_test_loop_new(&l);
    cr_test_pair(sv);
    rd.fd = sv[0];
    wr.fd = sv[1];
    cr_test_start(&l, &rd);
    cr_test_start(&l, &sleep);
    cr_test_start(&l, &wr);
    cr_test_loop_run(&l, 3);
    ck_assert_int_eq(rd.result, CR_WAIT_TIMEDOUT);
    ck_assert_int_ge(rd.took_ms, CR_TEST_SHORT_MS);
    ck_assert_int_eq(sleep.result, CR_WAIT_TIMEDOUT);
    ck_assert_int_ge(sleep.took_ms, CR_TEST_SHORT_MS);
    ck_assert_int_eq(wr.result, CR_WAIT_READY);
    cr_test_loop_free(&l);
}
END_TEST

START_TEST(test_fiber_stops_by_kind)
{
    cr_test_loop l;
    cr_test_waiting idle = {.fd = -1, .ms = -1, .kind = CR_WAIT_IDLE};
    cr_test_waiting busy = {.fd = -1, .ms = -1, .kind = CR_WAIT_BUSY};
    cr_test_waiting late = {.fd = -1, .ms = -1, .kind = CR_WAIT_IDLE};

    cr_test_loop_new(&l);
    cr_test_start(&l, &idle);
    cr_test_start(&l, &busy);
    ck_assert_uint_eq(cr_fiber_sched_waiting(l.sched), 2);
    cr_test_stop_graceful(&l.stops);
    cr_test_loop_run(&l, 1);
    ck_assert(idle.finished);
    ck_assert_int_eq(idle.result, CR_WAIT_STOPPED);
    ck_assert(!busy.finished);
    ck_assert_uint_eq(cr_fiber_sched_waiting(l.sched), 1);
    /* Once stopped, an idle wait ends at once. */
    cr_test_start(&l, &late);
    ck_assert(late.finished);
    ck_assert_int_eq(late.result, CR_WAIT_STOPPED);
    cr_test_stop_now(&l.stops);
    cr_test_loop_run(&l, 3);
    ck_assert_int_eq(busy.result, CR_WAIT_STOPPED);
    ck_assert_uint_eq(cr_fiber_sched_waiting(l.sched), 0);
    cr_test_loop_free(&l);
}
END_TEST

START_TEST(test_fiber_many_sleep_on_one_thread)
{
    cr_test_loop l;
    cr_test_waiting *t = calloc(CR_TEST_MANY, sizeof(*t));
    int threads = cr_test_threads();
    int64_t start;

    ck_assert_ptr_nonnull(t);
    cr_test_loop_new(&l);
    for (int i = 0; i < CR_TEST_MANY; i++) {
        t[i] = (cr_test_waiting){.fd = -1, .ms = CR_TEST_MANY_MS, .kind = CR_WAIT_BUSY};
        cr_test_start(&l, &t[i]);
    }
    ck_assert_uint_eq(cr_fiber_sched_waiting(l.sched), CR_TEST_MANY);
    ck_assert_int_eq(cr_test_threads(), threads);
    /* Timed once all wait (making a fiber takes milliseconds under TSan):
     * sleeping one after the other would take CR_TEST_MANY times longer. */
    start = cr_wait_now_ns();
    cr_test_loop_run(&l, CR_TEST_MANY);
    ck_assert_int_lt(cr_test_ms_since(start), CR_TEST_MANY_LIMIT_MS);
    for (int i = 0; i < CR_TEST_MANY; i++) {
        ck_assert_int_eq(t[i].result, CR_WAIT_TIMEDOUT);
        ck_assert_int_ge(t[i].took_ms, CR_TEST_MANY_MS);
    }
    ck_assert_int_eq(l.done, CR_TEST_MANY);
    ck_assert_int_eq(cr_test_threads(), threads);
    cr_test_loop_free(&l);
    free(t);
}
END_TEST

static void *cr_test_wake_later(void *arg)
{
    struct timespec pause = {0, CR_TEST_WAKE_DELAY_MS * CR_WAIT_NS_PER_MS};

    nanosleep(&pause, NULL);
    cr_fiber_wake_signal(arg);
    return NULL;
}

START_TEST(test_fiber_woken_by_another_thread)
{
    cr_test_loop l;
    cr_fiber_wake wk;
    cr_test_waiting t = {.ms = CR_TEST_LONG_MS, .kind = CR_WAIT_BUSY, .wake = &wk};
    pthread_t th;

    cr_test_loop_new(&l);
    cr_fiber_wake_init(&wk, l.sched);
    cr_test_start(&l, &t);
    ck_assert(!t.finished);
    ck_assert_int_eq(pthread_create(&th, NULL, cr_test_wake_later, &wk), 0);
    cr_test_loop_run(&l, 1);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(t.result, CR_WAIT_READY);
    ck_assert_int_lt(t.took_ms, CR_TEST_LONG_MS);
    cr_fiber_wake_fini(&wk);
    cr_test_loop_free(&l);
}
END_TEST

START_TEST(test_fiber_wake_kept_and_taken_once)
{
    cr_test_loop l;
    cr_fiber_wake wk;
    cr_test_waiting first = {.ms = CR_TEST_SHORT_MS, .kind = CR_WAIT_BUSY, .wake = &wk};
    cr_test_waiting second = {.ms = CR_TEST_LONG_MS, .kind = CR_WAIT_BUSY, .wake = &wk};
    cr_test_waiting third = {.ms = CR_TEST_SHORT_MS, .kind = CR_WAIT_BUSY, .wake = &wk};

    cr_test_loop_new(&l);
    cr_fiber_wake_init(&wk, l.sched);
    cr_test_start(&l, &first);
    cr_test_loop_run(&l, 1);
    ck_assert_int_eq(first.result, CR_WAIT_TIMEDOUT);
    /* A signal nobody waits for is kept for the next wait. */
    ck_assert_int_eq(cr_fiber_wake_signal(&wk), CR_OK);
    ck_assert_int_eq(event_base_loop(l.base, EVLOOP_NONBLOCK), 0);
    cr_test_start(&l, &second);
    ck_assert(second.finished);
    ck_assert_int_eq(second.result, CR_WAIT_READY);
    cr_test_start(&l, &third);
    cr_test_loop_run(&l, 3);
    ck_assert_int_eq(third.result, CR_WAIT_TIMEDOUT);
    /* Queued and never seen by the loop: fini takes it back. */
    ck_assert_int_eq(cr_fiber_wake_signal(&wk), CR_OK);
    cr_fiber_wake_fini(&wk);
    ck_assert_int_eq(event_base_loop(l.base, EVLOOP_NONBLOCK), 0);
    cr_test_loop_free(&l);
}
END_TEST

START_TEST(test_fiber_waiter_refuses_thread_stack)
{
    cr_test_loop l;
    int sv[2];

    cr_test_loop_new(&l);
    cr_test_pair(sv);
    errno = 0;
    ck_assert_int_eq(cr_wait(l.w, sv[0], POLLIN, CR_WAIT_FOREVER, CR_WAIT_BUSY), CR_WAIT_FAILED);
    ck_assert_int_eq(errno, EDEADLK);
    cr_test_loop_free(&l);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("wait");
    TCase *thread = tcase_create("thread");
    TCase *fiber = tcase_create("fiber");
    SRunner *sr;
    int failed;

    tcase_set_timeout(thread, 30);
    tcase_add_test(thread, test_thread_readable_and_timeout);
    tcase_add_test(thread, test_thread_poll_many);
    tcase_add_test(thread, test_thread_stops_by_kind);
    tcase_add_test(thread, test_thread_signal_interrupts);
    suite_add_tcase(s, thread);
    tcase_set_timeout(fiber, 60);
    tcase_add_test(fiber, test_fiber_readable);
    tcase_add_test(fiber, test_fiber_timeout_and_sleep);
    tcase_add_test(fiber, test_fiber_stops_by_kind);
    tcase_add_test(fiber, test_fiber_many_sleep_on_one_thread);
    tcase_add_test(fiber, test_fiber_woken_by_another_thread);
    tcase_add_test(fiber, test_fiber_wake_kept_and_taken_once);
    tcase_add_test(fiber, test_fiber_waiter_refuses_thread_stack);
    suite_add_tcase(s, fiber);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
