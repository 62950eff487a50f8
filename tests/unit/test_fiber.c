/* Unit tests for core/io/fiber.c: values through resume and yield, fibers
 * that finish, many interleaved, stacks reused within the idle bound,
 * registers, floating-point modes and errno across switches, the calls it
 * refuses, the guard area's report (in forked children), and the cost of a
 * switch (printed, never asserted). */
#include <check.h>
#include <errno.h>
#include <fenv.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io/fiber.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CR_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CR_TEST_SANITIZED 1
#endif
#endif

#ifdef CR_TEST_SANITIZED
#define CR_TEST_COST_ROUNDS 1000000UL
#else
#define CR_TEST_COST_ROUNDS 10000000UL
#endif
#define CR_TEST_KIB          ((size_t)1024)
#define CR_TEST_STACK        (64 * CR_TEST_KIB)
#define CR_TEST_MANY         1000
#define CR_TEST_MANY_STEPS   5
#define CR_TEST_MANY_IDLE    64
#define CR_TEST_ERRNO_ROUNDS 10000
#define CR_TEST_CHAINED_EXIT 42
#define CR_TEST_LABEL        "GET /deep/path?q=1 HTTP/1.1"

static cr_fiber_pool *cr_test_pool(size_t stack_size, unsigned max_idle)
{
    cr_fiber_pool *p = cr_fiber_pool_new(stack_size, max_idle);

    ck_assert_ptr_nonnull(p);
    return p;
}

static cr_fiber_pool_stats cr_test_stats(const cr_fiber_pool *p)
{
    cr_fiber_pool_stats st;

    cr_fiber_pool_stats_get(p, &st);
    return st;
}

/* ---- resume and yield ---- */

typedef struct cr_test_pingpong {
    int rounds;
    int to_fiber;
    int to_thread;
    cr_fiber *seen_current;
} cr_test_pingpong;

static void cr_test_pingpong_fn(void *arg)
{
    cr_test_pingpong *pp = arg;

    pp->seen_current = cr_fiber_current();
    for (int i = 0; i < pp->rounds; i++) {
        pp->to_thread = pp->to_fiber * 2 + 1;
        cr_fiber_yield();
    }
}

START_TEST(test_ping_pong)
{
    cr_fiber_pool *p = cr_test_pool(0, 4);
    cr_test_pingpong pp = {.rounds = 100};
    cr_fiber *f = cr_fiber_new(p, cr_test_pingpong_fn, &pp);

    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_null(cr_fiber_current());
    for (int i = 0; i < pp.rounds; i++) {
        pp.to_fiber = i;
        ck_assert_int_eq(cr_fiber_resume(f), 0);
        ck_assert_int_eq(pp.to_thread, 2 * i + 1);
        ck_assert_ptr_null(cr_fiber_current());
    }
    ck_assert_ptr_eq(pp.seen_current, f);
    ck_assert_int_eq(cr_fiber_resume(f), 1);
    cr_fiber_pool_free(p);
}
END_TEST

static void cr_test_set_flag(void *arg)
{
    *(int *)arg = 1;
}

START_TEST(test_finishes_and_goes_back)
{
    cr_fiber_pool *p = cr_test_pool(0, 4);
    int ran = 0;
    cr_fiber *f = cr_fiber_new(p, cr_test_set_flag, &ran);

    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(cr_test_stats(p).live, 1);
    ck_assert_int_eq(ran, 0);
    ck_assert_int_eq(cr_fiber_resume(f), 1);
    ck_assert_int_eq(ran, 1);
    ck_assert_uint_eq(cr_test_stats(p).live, 0);
    ck_assert_uint_eq(cr_test_stats(p).idle, 1);
    /* Back in the pool, it is not resumable. */
    ck_assert_int_eq(cr_fiber_resume(f), -1);
    ck_assert_int_eq(errno, EINVAL);
    cr_fiber_pool_free(p);
}
END_TEST

/* ---- many fibers ---- */

typedef struct cr_test_many {
    unsigned long step;
    unsigned long seen[CR_TEST_MANY][CR_TEST_MANY_STEPS];
} cr_test_many;

typedef struct cr_test_many_arg {
    cr_test_many *shared;
    int index;
} cr_test_many_arg;

static void cr_test_many_fn(void *arg)
{
    cr_test_many_arg *a = arg;

    for (int k = 0; k < CR_TEST_MANY_STEPS; k++) {
        a->shared->seen[a->index][k] = a->shared->step++;
        cr_fiber_yield();
    }
}

START_TEST(test_many_interleaved)
{
    static cr_test_many shared;
    static cr_test_many_arg args[CR_TEST_MANY];
    static cr_fiber *fibers[CR_TEST_MANY];
    cr_fiber_pool *p = cr_test_pool(0, CR_TEST_MANY_IDLE);
    cr_fiber_pool_stats st;

    for (int i = 0; i < CR_TEST_MANY; i++) {
        args[i] = (cr_test_many_arg){&shared, i};
        fibers[i] = cr_fiber_new(p, cr_test_many_fn, &args[i]);
        ck_assert_ptr_nonnull(fibers[i]);
    }
    for (int k = 0; k <= CR_TEST_MANY_STEPS; k++)
        for (int i = 0; i < CR_TEST_MANY; i++)
            ck_assert_int_eq(cr_fiber_resume(fibers[i]), k == CR_TEST_MANY_STEPS);
    for (int i = 0; i < CR_TEST_MANY; i++)
        for (int k = 0; k < CR_TEST_MANY_STEPS; k++)
            ck_assert_uint_eq(shared.seen[i][k], (unsigned long)k * CR_TEST_MANY + i);
    st = cr_test_stats(p);
    ck_assert_uint_eq(st.live, 0);
    ck_assert_uint_eq(st.idle, CR_TEST_MANY_IDLE);
    ck_assert_uint_eq(st.mapped, CR_TEST_MANY);
    cr_fiber_pool_free(p);
}
END_TEST

/* ---- reuse ---- */

static void cr_test_frame_fn(void *arg)
{
    /* The real frame, not an ASan fake one. */
    *(uintptr_t *)arg = (uintptr_t)__builtin_frame_address(0);
}

static void cr_test_nothing(void *arg)
{
}

START_TEST(test_stacks_reused_within_bound)
{
    cr_fiber_pool *p = cr_test_pool(CR_TEST_STACK, 2);
    uintptr_t frame1 = 0, frame2 = 0;
    cr_fiber *f1 = cr_fiber_new(p, cr_test_frame_fn, &frame1);
    cr_fiber *f2, *fs[5];

    ck_assert_int_eq(cr_fiber_resume(f1), 1);
    ck_assert_uint_lt(frame1, (uintptr_t)f1);
    ck_assert_uint_gt(frame1, (uintptr_t)f1 - CR_TEST_STACK);
    f2 = cr_fiber_new(p, cr_test_frame_fn, &frame2);
    ck_assert_ptr_eq(f2, f1);
    ck_assert_int_eq(cr_fiber_resume(f2), 1);
    ck_assert_uint_eq(frame2, frame1);
    ck_assert_uint_eq(cr_test_stats(p).mapped, 1);

    for (int i = 0; i < 5; i++)
        fs[i] = cr_fiber_new(p, cr_test_nothing, NULL);
    ck_assert_uint_eq(cr_test_stats(p).mapped, 5); /* one from the pool, four new */
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(cr_fiber_resume(fs[i]), 1);
    ck_assert_uint_eq(cr_test_stats(p).idle, 2);
    ck_assert_uint_eq(cr_test_stats(p).stack_size, CR_TEST_STACK);
    fs[0] = cr_fiber_new(p, cr_test_nothing, NULL);
    ck_assert_uint_eq(cr_test_stats(p).mapped, 5);
    ck_assert_uint_eq(cr_test_stats(p).idle, 1);
    ck_assert_int_eq(cr_fiber_resume(fs[0]), 1);
    cr_fiber_pool_free(p);
}
END_TEST

START_TEST(test_free_with_suspended_fibers)
{
    cr_fiber_pool *p = cr_test_pool(0, 4);
    cr_test_pingpong pp = {.rounds = 10};

    for (int i = 0; i < 3; i++) {
        cr_fiber *f = cr_fiber_new(p, cr_test_pingpong_fn, &pp);

        ck_assert_int_eq(cr_fiber_resume(f), 0);
    }
    cr_fiber_new(p, cr_test_nothing, NULL); /* never run */
    ck_assert_uint_eq(cr_test_stats(p).live, 4);
    cr_fiber_pool_free(p);
    /* The thread may have a pool again. */
    cr_fiber_pool_free(cr_test_pool(0, 0));
}
END_TEST

/* ---- what a switch preserves ---- */

typedef void cr_test_between(void *arg);

/* Values live across `between`, in callee-saved registers or on the stack:
 * the switch must bring them all back. */
static __attribute__((noinline)) uint64_t cr_test_mix(uint64_t seed, cr_test_between *between,
                                                      void *arg)
{
    uint64_t a = seed * 0x9E3779B97F4A7C15ULL, b = a ^ (a >> 29), c = b * 3 + seed;
    uint64_t d = c ^ 0xdeadbeefULL, e = d + a, g = e * b, h = g ^ c;
    double x = (double)seed * 0.25, y = x * 1.5 + 2.0, z = y / 3.0;

    if (between != NULL)
        between(arg);
    return a + 3 * b + 5 * c + 7 * d + 11 * e + 13 * g + 17 * h + (uint64_t)(x + y * z);
}

static void cr_test_yield_between(void *arg)
{
    cr_fiber_yield();
}

static void cr_test_resume_between(void *arg)
{
    ck_assert_int_eq(cr_fiber_resume(arg), 0);
}

typedef struct cr_test_regs {
    uint64_t seed;
    uint64_t result;
} cr_test_regs;

static void cr_test_regs_fn(void *arg)
{
    cr_test_regs *r = arg;

    r->result = cr_test_mix(r->seed, cr_test_yield_between, NULL);
}

START_TEST(test_registers_survive_switches)
{
    cr_fiber_pool *p = cr_test_pool(0, 4);
    cr_test_regs r = {.seed = 12345};
    cr_fiber *f = cr_fiber_new(p, cr_test_regs_fn, &r);
    uint64_t mine;

    /* The thread's values live across the resume, the fiber's across its
     * yield, each with other values in the registers meanwhile. */
    mine = cr_test_mix(777, cr_test_resume_between, f);
    ck_assert_uint_eq(mine, cr_test_mix(777, NULL, NULL));
    ck_assert_int_eq(cr_fiber_resume(f), 1);
    ck_assert_uint_eq(r.result, cr_test_mix(12345, NULL, NULL));
    cr_fiber_pool_free(p);
}
END_TEST

#if defined(__x86_64__)
/* x86-64 only: boost's arm64 switch leaves FPCR to the thread. */
typedef struct cr_test_fp {
    volatile double one, three;
    volatile double third;
    int mode_after;
} cr_test_fp;

static void cr_test_fp_fn(void *arg)
{
    cr_test_fp *t = arg;

    fesetround(FE_UPWARD);
    cr_fiber_yield();
    t->mode_after = fegetround();
    t->third = t->one / t->three;
}

START_TEST(test_fp_modes_per_fiber)
{
    cr_fiber_pool *p = cr_test_pool(0, 4);
    cr_test_fp t = {.one = 1.0, .three = 3.0};
    cr_fiber *f = cr_fiber_new(p, cr_test_fp_fn, &t);
    volatile double down;

    ck_assert_int_eq(fegetround(), FE_TONEAREST);
    ck_assert_int_eq(cr_fiber_resume(f), 0);
    ck_assert_int_eq(fegetround(), FE_TONEAREST);
    fesetround(FE_DOWNWARD);
    ck_assert_int_eq(cr_fiber_resume(f), 1);
    ck_assert_int_eq(fegetround(), FE_DOWNWARD);
    down = t.one / t.three;
    fesetround(FE_TONEAREST);
    ck_assert_int_eq(t.mode_after, FE_UPWARD);
    ck_assert(t.third > down);
    cr_fiber_pool_free(p);
}
END_TEST
#endif

/* errno belongs to the thread: a switch neither saves nor restores it. */
typedef struct cr_test_errno {
    int base;
    int rounds;
    int bad; /* rounds where the fiber saw another value */
} cr_test_errno;

static void cr_test_errno_fn(void *arg)
{
    cr_test_errno *t = arg;

    for (int i = 0; i < t->rounds; i++) {
        if (errno != t->base + 2 * i)
            t->bad++;
        errno = t->base + 2 * i + 1;
        cr_fiber_yield();
    }
}

/* Returns the number of mismatches seen on either side. */
static int cr_test_errno_run(int base)
{
    cr_fiber_pool *p = cr_fiber_pool_new(0, 1);
    cr_test_errno t = {.base = base, .rounds = CR_TEST_ERRNO_ROUNDS};
    cr_fiber *f;
    int bad = 0;

    if (p == NULL || (f = cr_fiber_new(p, cr_test_errno_fn, &t)) == NULL)
        return -1;
    for (int i = 0; i < t.rounds; i++) {
        errno = base + 2 * i;
        if (cr_fiber_resume(f) != 0 || errno != base + 2 * i + 1)
            bad++;
    }
    if (cr_fiber_resume(f) != 1)
        bad++;
    cr_fiber_pool_free(p);
    return bad + t.bad;
}

static void *cr_test_errno_thread(void *arg)
{
    *(int *)arg = cr_test_errno_run(*(int *)arg);
    return NULL;
}

START_TEST(test_errno_per_thread)
{
    pthread_t th;
    int other = 1000000;

    ck_assert_int_eq(pthread_create(&th, NULL, cr_test_errno_thread, &other), 0);
    ck_assert_int_eq(cr_test_errno_run(5000000), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(other, 0);
}
END_TEST

/* ---- refusals ---- */

typedef struct cr_test_nest {
    cr_fiber *self, *other;
    int rc_other, err_other, rc_self, err_self;
} cr_test_nest;

static void cr_test_nest_fn(void *arg)
{
    cr_test_nest *n = arg;

    n->rc_other = cr_fiber_resume(n->other);
    n->err_other = errno;
    n->rc_self = cr_fiber_resume(n->self);
    n->err_self = errno;
}

START_TEST(test_nesting_refused)
{
    cr_fiber_pool *p = cr_test_pool(0, 4);
    cr_test_nest n = {0};

    n.other = cr_fiber_new(p, cr_test_nothing, NULL);
    n.self = cr_fiber_new(p, cr_test_nest_fn, &n);
    ck_assert_int_eq(cr_fiber_resume(n.self), 1);
    ck_assert_int_eq(n.rc_other, -1);
    ck_assert_int_eq(n.err_other, EDEADLK);
    ck_assert_int_eq(n.rc_self, -1);
    ck_assert_int_eq(n.err_self, EDEADLK);
    /* The other one was left alone, still runnable. */
    ck_assert_int_eq(cr_fiber_resume(n.other), 1);
    cr_fiber_pool_free(p);
}
END_TEST

typedef struct cr_test_foreign {
    cr_fiber_pool *pool;
    cr_fiber *fiber;
    int rc_resume, err_resume, err_new;
    cr_fiber *made;
} cr_test_foreign;

static void *cr_test_foreign_thread(void *arg)
{
    cr_test_foreign *t = arg;

    t->rc_resume = cr_fiber_resume(t->fiber);
    t->err_resume = errno;
    t->made = cr_fiber_new(t->pool, cr_test_nothing, NULL);
    t->err_new = errno;
    return NULL;
}

START_TEST(test_other_threads_refused)
{
    cr_fiber_pool *p = cr_test_pool(0, 4);
    cr_test_foreign t = {.pool = p};
    pthread_t th;

    t.fiber = cr_fiber_new(p, cr_test_nothing, NULL);
    ck_assert_int_eq(pthread_create(&th, NULL, cr_test_foreign_thread, &t), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(t.rc_resume, -1);
    ck_assert_int_eq(t.err_resume, EPERM);
    ck_assert_ptr_null(t.made);
    ck_assert_int_eq(t.err_new, EPERM);
    ck_assert_int_eq(cr_fiber_resume(t.fiber), 1);
    cr_fiber_pool_free(p);
}
END_TEST

START_TEST(test_misuse_refused)
{
    cr_fiber_pool *p;

    ck_assert_int_eq(cr_fiber_yield(), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_ptr_null(cr_fiber_pool_new(4 * CR_TEST_KIB, 0));
    ck_assert_int_eq(errno, EINVAL);
    p = cr_test_pool(0, 0);
    ck_assert_ptr_null(cr_fiber_pool_new(0, 0));
    ck_assert_int_eq(errno, EEXIST);
    cr_fiber_pool_free(p);
    cr_fiber_pool_free(NULL);
}
END_TEST

START_TEST(test_altstack_while_pool_lives)
{
    stack_t before, during, after;
    cr_fiber_pool *p;

    ck_assert_int_eq(sigaltstack(NULL, &before), 0);
    p = cr_test_pool(0, 0);
    ck_assert_int_eq(sigaltstack(NULL, &during), 0);
    ck_assert(!(during.ss_flags & SS_DISABLE));
    if (!(before.ss_flags & SS_DISABLE)) /* one the thread had is kept */
        ck_assert_ptr_eq(during.ss_sp, before.ss_sp);
    cr_fiber_pool_free(p);
    ck_assert_int_eq(sigaltstack(NULL, &after), 0);
    ck_assert_int_eq(after.ss_flags & SS_DISABLE, before.ss_flags & SS_DISABLE);
    if (!(before.ss_flags & SS_DISABLE))
        ck_assert_ptr_eq(after.ss_sp, before.ss_sp);
}
END_TEST

START_TEST(test_label_copied_and_cleaned)
{
    /* Seen only through the overflow report; here, that setting one with
     * control characters or past the limit is safe. */
    cr_fiber_pool *p = cr_test_pool(0, 0);
    cr_fiber *f = cr_fiber_new(p, cr_test_nothing, NULL);
    char longer[CR_FIBER_LABEL_MAX * 2];

    memset(longer, 'x', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    cr_fiber_set_label(f, longer);
    cr_fiber_set_label(f, "GET /\r\n\x7f");
    cr_fiber_set_label(f, NULL);
    ck_assert_int_eq(cr_fiber_resume(f), 1);
    cr_fiber_pool_free(p);
}
END_TEST

/* ---- faults, in forked children ---- */

typedef struct cr_test_child {
    int status;
    char out[4096];
} cr_test_child;

typedef void cr_test_child_body(int out_fd);

/* Runs body in a child whose stderr goes to res->out; waits for it. */
static void cr_test_run_child(cr_test_child_body *body, cr_test_child *res)
{
    int fds[2];
    size_t n = 0;
    ssize_t r;
    pid_t pid;

    ck_assert_int_eq(pipe(fds), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        if (dup2(fds[1], STDERR_FILENO) < 0)
            _exit(2);
        body(fds[1]);
        _exit(0);
    }
    close(fds[1]);
    while ((r = read(fds[0], res->out + n, sizeof(res->out) - 1 - n)) > 0)
        n += (size_t)r;
    res->out[n] = '\0';
    close(fds[0]);
    ck_assert_int_eq(waitpid(pid, &res->status, 0), pid);
}

static int cr_test_killed_by(const cr_test_child *c, int sig)
{
    return WIFSIGNALED(c->status) && WTERMSIG(c->status) == sig;
}

/* The sanitizers install a SIGSEGV handler of their own, which reports
 * and exits 1; the children want the plain default behind ours. */
static void cr_test_default_segv(void)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};

    sigemptyset(&dfl.sa_mask);
    if (sigaction(SIGSEGV, &dfl, NULL) != 0)
        _exit(3);
}

static volatile unsigned long cr_test_depth_limit = ~0UL;

static unsigned long cr_test_recurse(unsigned long depth)
{
    volatile char frame[256];

    frame[0] = (char)depth;
    if (depth >= cr_test_depth_limit)
        return frame[0];
    return cr_test_recurse(depth + 1) + (unsigned long)frame[0];
}

static void cr_test_recurse_fn(void *arg)
{
    cr_test_recurse(0);
}

static void cr_test_overflow_child(int report_fd, int use_report_fd)
{
    cr_fiber_pool *p;
    cr_fiber *f;

    cr_test_default_segv();
    p = cr_fiber_pool_new(CR_TEST_STACK, 0);
    if (p == NULL || (f = cr_fiber_new(p, cr_test_recurse_fn, NULL)) == NULL)
        _exit(4);
    if (use_report_fd) {
        cr_fiber_pool_report_to(p, report_fd);
        /* Nothing may come from stderr now. */
        if (freopen("/dev/null", "w", stderr) == NULL)
            _exit(5);
    }
    cr_fiber_set_label(f, CR_TEST_LABEL);
    cr_fiber_resume(f);
    _exit(6);
}

static void cr_test_overflow_stderr(int out_fd)
{
    cr_test_overflow_child(out_fd, 0);
}

static void cr_test_overflow_report_fd(int out_fd)
{
    int fd = dup(out_fd);

    cr_test_overflow_child(fd, 1);
}

START_TEST(test_overflow_reported_and_fatal)
{
    cr_test_child c;

    cr_test_run_child(cr_test_overflow_stderr, &c);
    ck_assert_msg(cr_test_killed_by(&c, SIGSEGV), "status %#x, output: %s", c.status, c.out);
    ck_assert_msg(
        strstr(c.out, "corral: fiber stack overflow (64 KiB) in: " CR_TEST_LABEL " [pid ") != NULL,
        "output: %s", c.out);
}
END_TEST

START_TEST(test_overflow_to_report_fd)
{
    cr_test_child c;

    cr_test_run_child(cr_test_overflow_report_fd, &c);
    ck_assert_msg(cr_test_killed_by(&c, SIGSEGV), "status %#x, output: %s", c.status, c.out);
    ck_assert_msg(strstr(c.out, "in: " CR_TEST_LABEL) != NULL, "output: %s", c.out);
}
END_TEST

/* A PROT_NONE page to fault on, not any fiber's guard. */
static volatile char *cr_test_bad_page(void)
{
    void *page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (page == MAP_FAILED)
        _exit(7);
    return page;
}

static volatile char *cr_test_fault_at;

static void cr_test_touch_bad_page(void *arg)
{
    cr_test_fault_at[0] = 1;
}

static void cr_test_fault_child(int out_fd, int on_fiber)
{
    cr_fiber_pool *p;
    cr_fiber *f;

    cr_test_fault_at = cr_test_bad_page();
    p = cr_fiber_pool_new(CR_TEST_STACK, 0);
    if (p == NULL || (f = cr_fiber_new(p, cr_test_touch_bad_page, NULL)) == NULL)
        _exit(4);
    cr_fiber_set_label(f, CR_TEST_LABEL);
    if (on_fiber)
        cr_fiber_resume(f);
    else
        cr_test_touch_bad_page(NULL);
    _exit(6);
}

static void cr_test_fault_thread_child(int out_fd)
{
    cr_test_default_segv();
    cr_test_fault_child(out_fd, 0);
}

static void cr_test_fault_fiber_child(int out_fd)
{
    cr_test_default_segv();
    cr_test_fault_child(out_fd, 1);
}

START_TEST(test_other_faults_untouched)
{
    cr_test_child c;

    cr_test_run_child(cr_test_fault_thread_child, &c);
    ck_assert_msg(cr_test_killed_by(&c, SIGSEGV), "status %#x, output: %s", c.status, c.out);
    ck_assert_ptr_null(strstr(c.out, "overflow"));

    /* On a fiber, but not in its guard area: no overflow either. */
    cr_test_run_child(cr_test_fault_fiber_child, &c);
    ck_assert_msg(cr_test_killed_by(&c, SIGSEGV), "status %#x, output: %s", c.status, c.out);
    ck_assert_ptr_null(strstr(c.out, "overflow"));
}
END_TEST

static void cr_test_prev_handler(int sig, siginfo_t *si, void *uctx)
{
    _exit(si->si_addr == (void *)cr_test_fault_at ? CR_TEST_CHAINED_EXIT : 8);
}

static void cr_test_chain_child(int out_fd)
{
    struct sigaction sa = {.sa_sigaction = cr_test_prev_handler, .sa_flags = SA_SIGINFO};

    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) != 0)
        _exit(3);
    cr_test_fault_child(out_fd, 0);
}

START_TEST(test_chains_to_previous_handler)
{
    cr_test_child c;

    cr_test_run_child(cr_test_chain_child, &c);
    ck_assert_msg(WIFEXITED(c.status) && WEXITSTATUS(c.status) == CR_TEST_CHAINED_EXIT,
                  "status %#x, output: %s", c.status, c.out);
}
END_TEST

/* ---- cost ---- */

static void cr_test_spin_fn(void *arg)
{
    unsigned long rounds = *(unsigned long *)arg;

    for (unsigned long i = 0; i < rounds; i++)
        cr_fiber_yield();
}

static double cr_test_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

START_TEST(test_switch_cost)
{
    cr_fiber_pool *p = cr_test_pool(0, 1);
    unsigned long rounds = CR_TEST_COST_ROUNDS;
    cr_fiber *f = cr_fiber_new(p, cr_test_spin_fn, &rounds);
    double start, ns;

    start = cr_test_now_ns();
    for (unsigned long i = 0; i < rounds; i++)
        cr_fiber_resume(f);
    ns = cr_test_now_ns() - start;
    ck_assert_int_eq(cr_fiber_resume(f), 1);
    printf("fiber switch: %.1f ns per resume + yield round trip (%lu round trips)\n",
           ns / (double)rounds, rounds);
    cr_fiber_pool_free(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fiber");
    TCase *tc = tcase_create("switch");
    TCase *faults = tcase_create("faults");
    TCase *cost = tcase_create("cost");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_ping_pong);
    tcase_add_test(tc, test_finishes_and_goes_back);
    tcase_add_test(tc, test_many_interleaved);
    tcase_add_test(tc, test_stacks_reused_within_bound);
    tcase_add_test(tc, test_free_with_suspended_fibers);
    tcase_add_test(tc, test_registers_survive_switches);
#if defined(__x86_64__)
    tcase_add_test(tc, test_fp_modes_per_fiber);
#endif
    tcase_add_test(tc, test_errno_per_thread);
    tcase_add_test(tc, test_nesting_refused);
    tcase_add_test(tc, test_other_threads_refused);
    tcase_add_test(tc, test_misuse_refused);
    tcase_add_test(tc, test_altstack_while_pool_lives);
    tcase_add_test(tc, test_label_copied_and_cleaned);
    suite_add_tcase(s, tc);
    tcase_set_timeout(faults, 60);
    tcase_add_test(faults, test_overflow_reported_and_fatal);
    tcase_add_test(faults, test_overflow_to_report_fd);
    tcase_add_test(faults, test_other_faults_untouched);
    tcase_add_test(faults, test_chains_to_previous_handler);
    suite_add_tcase(s, faults);
    tcase_set_timeout(cost, 120);
    tcase_add_test(cost, test_switch_cost);
    suite_add_tcase(s, cost);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
