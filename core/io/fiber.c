/* Fibers over boost.context's fcontext switch (fctx.S). A fiber is one
 * mapping: a guard area, its stack, and its cr_fiber at the top. Finished
 * fibers wait on their pool's idle list to be reused whole. */
#include "fiber.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "corral/log.h"

/* The sanitizers keep their own idea of the stack in use, so they are told
 * of every switch (see cr_fiber_san_*). gcc says __SANITIZE_*__, clang
 * __has_feature. */
#if defined(__SANITIZE_ADDRESS__)
#define CR_FIBER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CR_FIBER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define CR_FIBER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CR_FIBER_TSAN 1
#endif
#endif

#ifdef CR_FIBER_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef CR_FIBER_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#define CR_FIBER_KIB ((size_t)1024)
#if defined(CR_FIBER_ASAN) || defined(CR_FIBER_TSAN)
/* ASan's redzones make every frame larger, and a sanitizer report is
 * formatted (and symbolized) on the stack where the error happened. */
#define CR_FIBER_STACK_DEFAULT (256 * CR_FIBER_KIB)
#else
#define CR_FIBER_STACK_DEFAULT (64 * CR_FIBER_KIB)
#endif
#define CR_FIBER_STACK_MIN (16 * CR_FIBER_KIB)
#define CR_FIBER_STACK_MAX (64 * CR_FIBER_KIB * CR_FIBER_KIB)
/* PROT_NONE below each stack. More than one page: a frame larger than the
 * guard (an 8 KiB buffer on the stack is common in server code) would
 * step over it into the mapping below, often another fiber's stack, and
 * corrupt it silently. It costs address space only. */
#define CR_FIBER_GUARD_SIZE (16 * CR_FIBER_KIB)
/* The alternate signal stack installed for a thread that has none: the
 * fault handler runs there, since the overflowed stack has no room left,
 * and so may the handler it passes other faults on to. */
#define CR_FIBER_ALTSTACK_SIZE (64 * CR_FIBER_KIB)
/* The cr_fiber at the top of its mapping starts on this boundary. */
#define CR_FIBER_HEAD_ALIGN 64
#define CR_FIBER_NO_LABEL   "(no label)"

/* The C face of fctx.S. A context is a pointer into a suspended stack,
 * where the switch left the registers it saved. */
typedef void *cr_fctx;
typedef struct cr_fctx_transfer {
    cr_fctx fctx; /* the context that jumped here, to jump back to */
    void *data;   /* what it passed */
} cr_fctx_transfer;

/* Saves the callee-saved registers and the floating-point control words
 * on the current stack, loads those of `to`, and continues there. Returns
 * when someone jumps back. */
__attribute__((visibility("hidden"))) cr_fctx_transfer cr_fctx_jump(cr_fctx to, void *data);

/* A context that calls fn on the stack below top when first jumped to. fn
 * must never return: the assembly then calls _exit(0), ending the process
 * with success. */
__attribute__((visibility("hidden"))) cr_fctx cr_fctx_make(void *top, size_t size,
                                                           void (*fn)(cr_fctx_transfer));

typedef enum cr_fiber_state {
    CR_FIBER_READY,     /* created, never run */
    CR_FIBER_RUNNING,   /* the thread's current fiber */
    CR_FIBER_SUSPENDED, /* yielded */
    CR_FIBER_DONE,      /* its function returned; going back to the pool */
    CR_FIBER_IDLE,      /* on the pool's idle list */
} cr_fiber_state;

struct cr_fiber {
    cr_fctx ctx; /* where it continues; valid while READY or SUSPENDED */
    cr_fiber_fn *fn;
    void *arg;
    cr_fiber_pool *pool;
    cr_fiber *prev, *next; /* the pool's live list, or its idle list (next only) */
    char *map;             /* the mapping: guard area, stack, this struct */
    cr_fiber_state state;
#ifdef CR_FIBER_ASAN
    void *asan_fake_stack; /* ASan's fake frames of this fiber while suspended */
#endif
#ifdef CR_FIBER_TSAN
    void *tsan_fiber;
#endif
    char label[CR_FIBER_LABEL_MAX];
};

struct cr_fiber_pool {
    size_t stack_size; /* page-rounded, guard excluded */
    size_t guard_size;
    size_t map_size;
    unsigned max_idle;
    unsigned nlive, nidle;
    unsigned long mapped;
    cr_fiber *live; /* created, not finished */
    cr_fiber *idle;
    int report_fd;
    void *altstack; /* the alternate signal stack we installed; NULL if the thread had one */
    size_t altstack_size;
    stack_t prev_altstack;
};

/* What a thread knows of its fibers. Thread-local rather than passed
 * around, because fiber code yields without knowing who resumed it, and
 * the fault handler must find the running fiber from nothing but the
 * faulting thread. initial-exec, because the handler must not go through
 * __tls_get_addr (it may allocate); the core is linked into the
 * executable, where that model costs nothing. */
typedef struct cr_fiber_thread {
    cr_fiber_pool *pool;
    cr_fiber *current;  /* NULL on the thread's own stack */
    cr_fctx thread_ctx; /* where the running fiber yields to */
#ifdef CR_FIBER_ASAN
    void *asan_fake_stack; /* the thread stack's, while a fiber runs */
    const void *stack_bottom;
    size_t stack_size; /* of the thread's stack, as ASan tells on a fiber's first entry */
#endif
#ifdef CR_FIBER_TSAN
    void *tsan_fiber; /* the thread's own */
#endif
} cr_fiber_thread;

static __thread cr_fiber_thread cr_fiber_self __attribute__((tls_model("initial-exec")));

/* The fault handlers that were in place before ours, to chain to: process
 * wide, like the dispositions themselves. Written once, before ours is
 * installed. */
static const int cr_fiber_fault_signals[] = {SIGSEGV, SIGBUS};
#define CR_FIBER_NFAULT_SIGNALS (sizeof(cr_fiber_fault_signals) / sizeof(cr_fiber_fault_signals[0]))
static struct sigaction cr_fiber_prev_action[CR_FIBER_NFAULT_SIGNALS];
static pthread_once_t cr_fiber_signals_once = PTHREAD_ONCE_INIT;
static int cr_fiber_signals_error; /* errno of a failed installation; 0 once installed */

/* ---- stacks ---- */

static size_t cr_fiber_round_up(size_t n, size_t unit)
{
    return (n + unit - 1) / unit * unit;
}

static size_t cr_fiber_head_size(void)
{
    return cr_fiber_round_up(sizeof(cr_fiber), CR_FIBER_HEAD_ALIGN);
}

static char *cr_fiber_stack_low(const cr_fiber *f)
{
    return f->map + f->pool->guard_size;
}

static size_t cr_fiber_stack_len(const cr_fiber *f)
{
    return (size_t)((const char *)f - cr_fiber_stack_low(f));
}

static cr_fiber *cr_fiber_map(cr_fiber_pool *p)
{
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE;
    char *map = mmap(NULL, p->map_size, PROT_READ | PROT_WRITE, flags, -1, 0);
    cr_fiber *f;
    int err;

    if (map == MAP_FAILED) {
        err = errno;
        cr_log_errno(CR_LOG_ERROR, err, "cannot map a fiber stack of %zu KiB",
                     p->stack_size / CR_FIBER_KIB);
        errno = err;
        return NULL;
    }
    if (mprotect(map, p->guard_size, PROT_NONE) != 0) {
        err = errno;
        cr_log_errno(CR_LOG_ERROR, err, "cannot protect a fiber stack's guard area");
        if (munmap(map, p->map_size) != 0)
            cr_log_errno(CR_LOG_ERROR, errno, "cannot unmap a fiber stack");
        errno = err;
        return NULL;
    }
    f = (cr_fiber *)(map + p->map_size - cr_fiber_head_size());
    f->map = map;
    f->pool = p;
    p->mapped++;
    return f;
}

/* Leaves errno as it was: this runs on the way out of cr_fiber_resume. */
static void cr_fiber_unmap(cr_fiber *f)
{
    size_t size = f->pool->map_size;
    char *map = f->map;
    int saved = errno;

#ifdef CR_FIBER_ASAN
    /* A suspended fiber's frames leave poisoned redzones behind; memory
     * mapped here later must not inherit them. */
    ASAN_UNPOISON_MEMORY_REGION(map, size);
#endif
    if (munmap(map, size) != 0)
        cr_log_errno(CR_LOG_ERROR, errno, "cannot unmap a fiber stack");
    errno = saved;
}

/* ---- the sanitizers' view of the switches ---- */

/* Inlined always: ThreadSanitizer records function entries and exits on
 * the stack it believes current, so a function of their own would enter
 * on one stack and leave on the other, unbalancing both. */
#define CR_FIBER_SAN_HOOK static inline __attribute__((always_inline)) void

/* On the thread's stack, about to enter f. */
CR_FIBER_SAN_HOOK cr_fiber_san_enter(cr_fiber_thread *self, cr_fiber *f)
{
#ifdef CR_FIBER_ASAN
    __sanitizer_start_switch_fiber(&self->asan_fake_stack, cr_fiber_stack_low(f),
                                   cr_fiber_stack_len(f));
#endif
#ifdef CR_FIBER_TSAN
    __tsan_switch_to_fiber(f->tsan_fiber, 0);
#endif
}

/* Back on the thread's stack. */
CR_FIBER_SAN_HOOK cr_fiber_san_back(cr_fiber_thread *self)
{
#ifdef CR_FIBER_ASAN
    __sanitizer_finish_switch_fiber(self->asan_fake_stack, NULL, NULL);
#endif
}

/* On f, about to go back to the thread's stack; for good when finished. */
CR_FIBER_SAN_HOOK cr_fiber_san_leave(cr_fiber_thread *self, cr_fiber *f, bool finished)
{
#ifdef CR_FIBER_ASAN
    __sanitizer_start_switch_fiber(finished ? NULL : &f->asan_fake_stack, self->stack_bottom,
                                   self->stack_size);
#endif
#ifdef CR_FIBER_TSAN
    __tsan_switch_to_fiber(self->tsan_fiber, 0);
#endif
}

/* On f, entered for the first time or again. */
CR_FIBER_SAN_HOOK cr_fiber_san_arrived(cr_fiber_thread *self, cr_fiber *f)
{
#ifdef CR_FIBER_ASAN
    __sanitizer_finish_switch_fiber(f->asan_fake_stack, &self->stack_bottom, &self->stack_size);
#endif
}

static void cr_fiber_san_start(cr_fiber *f)
{
#ifdef CR_FIBER_ASAN
    f->asan_fake_stack = NULL;
#endif
#ifdef CR_FIBER_TSAN
    f->tsan_fiber = __tsan_create_fiber(0);
#endif
}

static void cr_fiber_san_end(cr_fiber *f)
{
#ifdef CR_FIBER_TSAN
    __tsan_destroy_fiber(f->tsan_fiber);
    f->tsan_fiber = NULL;
#endif
}

/* ---- the overflow report ---- */

/* Appends s, as far as it fits; async-signal-safe, like the two below. */
static size_t cr_fiber_put(char *buf, size_t n, size_t cap, const char *s)
{
    while (*s != '\0' && n < cap)
        buf[n++] = *s++;
    return n;
}

static size_t cr_fiber_put_uint(char *buf, size_t n, size_t cap, unsigned long v)
{
    char digits[24];
    size_t k = 0;

    do {
        digits[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (k > 0 && n < cap)
        buf[n++] = digits[--k];
    return n;
}

/* One write, so that the line is not split between processes sharing the
 * log; stderr when the report descriptor fails. */
static void cr_fiber_report_overflow(const cr_fiber *f)
{
    char line[CR_FIBER_LABEL_MAX + 96];
    size_t cap = sizeof(line) - 1;
    size_t n = cr_fiber_put(line, 0, cap, "corral: fiber stack overflow (");
    int fd = f->pool->report_fd;

    n = cr_fiber_put_uint(line, n, cap, f->pool->stack_size / CR_FIBER_KIB);
    n = cr_fiber_put(line, n, cap, " KiB) in: ");
    n = cr_fiber_put(line, n, cap, f->label[0] != '\0' ? f->label : CR_FIBER_NO_LABEL);
    n = cr_fiber_put(line, n, cap, " [pid ");
    n = cr_fiber_put_uint(line, n, cap, (unsigned long)getpid());
    n = cr_fiber_put(line, n, cap, "]");
    line[n++] = '\n';
    if (write(fd, line, n) < 0 && fd != STDERR_FILENO)
        (void)!write(STDERR_FILENO, line, n);
}

/* A fault in f's guard area. si_code > 0: raised by the kernel for an
 * access, not sent by kill or raise. */
static bool cr_fiber_overflowed(const cr_fiber *f, const siginfo_t *si)
{
    const char *addr = si->si_addr;

    return si->si_code > 0 && addr >= f->map && addr < cr_fiber_stack_low(f);
}

/* Ends the process by sig, as if no handler were installed: the signal is
 * blocked while its handler runs, so it is delivered, with the default
 * action, on return; a fault would also recur there. */
static void cr_fiber_die(int sig)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};

    sigemptyset(&dfl.sa_mask);
    if (sigaction(sig, &dfl, NULL) != 0 || raise(sig) != 0)
        _exit(128 + sig);
}

static const struct sigaction *cr_fiber_prev_for(int sig)
{
    size_t i = 0;

    while (i + 1 < CR_FIBER_NFAULT_SIGNALS && cr_fiber_fault_signals[i] != sig)
        i++;
    return &cr_fiber_prev_action[i];
}

/* Passes a signal that is no overflow on as if ours were not there. A fault
 * (si_code > 0) recurs when the handler returns: the previous action is put
 * back and meets it first hand, with its own flags and mask (a previous
 * handler that recovers from faults leaves ours uninstalled from then on).
 * A sent signal does not recur, so the previous handler is called here.
 *
 * Under ThreadSanitizer, its own fault report stops after the first lines
 * ("nested bug in the same thread") once any handler was installed over it,
 * even its own put back; the process still ends. */
static void cr_fiber_chain(int sig, siginfo_t *si, void *uctx)
{
    const struct sigaction *prev = cr_fiber_prev_for(sig);

    if (si->si_code > 0) {
        if (sigaction(sig, prev, NULL) != 0)
            _exit(128 + sig);
        return;
    }
    if (prev->sa_handler == SIG_IGN)
        return;
    if (prev->sa_handler == SIG_DFL) {
        cr_fiber_die(sig);
        return;
    }
    if (prev->sa_flags & SA_SIGINFO)
        prev->sa_sigaction(sig, si, uctx);
    else
        prev->sa_handler(sig);
}

static void cr_fiber_on_fault(int sig, siginfo_t *si, void *uctx)
{
    const cr_fiber *f = cr_fiber_self.current;
    int saved = errno; /* the interrupted code's */

    if (f == NULL || !cr_fiber_overflowed(f, si))
        cr_fiber_chain(sig, si, uctx);
    else {
        cr_fiber_report_overflow(f);
        cr_fiber_die(sig);
    }
    errno = saved;
}

/* Reads every previous action first, so that ours never runs without
 * them. */
static void cr_fiber_signals_install(void)
{
    struct sigaction sa = {.sa_sigaction = cr_fiber_on_fault, .sa_flags = SA_SIGINFO | SA_ONSTACK};
    size_t i;

    sigemptyset(&sa.sa_mask);
    for (i = 0; i < CR_FIBER_NFAULT_SIGNALS; i++)
        if (sigaction(cr_fiber_fault_signals[i], NULL, &cr_fiber_prev_action[i]) != 0)
            goto fail;
    for (i = 0; i < CR_FIBER_NFAULT_SIGNALS; i++)
        if (sigaction(cr_fiber_fault_signals[i], &sa, NULL) != 0)
            goto fail;
    return;
fail:
    cr_fiber_signals_error = errno;
    cr_log_errno(CR_LOG_ERROR, errno, "cannot install the fiber stack overflow handler");
}

static int cr_fiber_signals_ready(void)
{
    int rc = pthread_once(&cr_fiber_signals_once, cr_fiber_signals_install);

    if (rc != 0) {
        cr_log_errno(CR_LOG_ERROR, rc, "cannot install the fiber stack overflow handler");
        return rc;
    }
    return cr_fiber_signals_error;
}

/* The handler needs a stack when the fiber's is exhausted. A thread that
 * has an alternate stack already (the sanitizers give each thread one)
 * keeps it. */
static int cr_fiber_altstack_setup(cr_fiber_pool *p)
{
    stack_t ss = {.ss_size = CR_FIBER_ALTSTACK_SIZE};
    int err;

    if (sigaltstack(NULL, &p->prev_altstack) != 0) {
        err = errno;
        cr_log_errno(CR_LOG_ERROR, err, "cannot read the alternate signal stack");
        return err;
    }
    if (!(p->prev_altstack.ss_flags & SS_DISABLE))
        return 0;
    ss.ss_sp = mmap(NULL, ss.ss_size, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (ss.ss_sp == MAP_FAILED) {
        err = errno;
        cr_log_errno(CR_LOG_ERROR, err, "cannot map an alternate signal stack");
        return err;
    }
    if (sigaltstack(&ss, NULL) != 0) {
        err = errno;
        cr_log_errno(CR_LOG_ERROR, err, "cannot install an alternate signal stack");
        if (munmap(ss.ss_sp, ss.ss_size) != 0)
            cr_log_errno(CR_LOG_ERROR, errno, "cannot unmap an alternate signal stack");
        return err;
    }
    p->altstack = ss.ss_sp;
    p->altstack_size = ss.ss_size;
    return 0;
}

static void cr_fiber_altstack_restore(cr_fiber_pool *p)
{
    stack_t off = {.ss_flags = SS_DISABLE};

    if (p->altstack == NULL)
        return;
    if (sigaltstack(&off, NULL) != 0) {
        /* Still in use: leaking it beats unmapping a live signal stack. */
        cr_log_errno(CR_LOG_ERROR, errno, "cannot remove the alternate signal stack");
        return;
    }
    if (munmap(p->altstack, p->altstack_size) != 0)
        cr_log_errno(CR_LOG_ERROR, errno, "cannot unmap an alternate signal stack");
}

/* ---- pools ---- */

static void cr_fiber_link_live(cr_fiber_pool *p, cr_fiber *f)
{
    f->prev = NULL;
    f->next = p->live;
    if (p->live != NULL)
        p->live->prev = f;
    p->live = f;
    p->nlive++;
}

static void cr_fiber_unlink_live(cr_fiber_pool *p, cr_fiber *f)
{
    if (f->prev != NULL)
        f->prev->next = f->next;
    else
        p->live = f->next;
    if (f->next != NULL)
        f->next->prev = f->prev;
    p->nlive--;
}

cr_fiber_pool *cr_fiber_pool_new(size_t stack_size, unsigned max_idle)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    cr_fiber_pool *p;
    int err;

    if (cr_fiber_self.pool != NULL) {
        errno = EEXIST;
        return NULL;
    }
    if (stack_size == 0)
        stack_size = CR_FIBER_STACK_DEFAULT;
    if (stack_size < CR_FIBER_STACK_MIN || stack_size > CR_FIBER_STACK_MAX) {
        errno = EINVAL;
        return NULL;
    }
    err = cr_fiber_signals_ready();
    if (err != 0) {
        errno = err;
        return NULL;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->stack_size = cr_fiber_round_up(stack_size, page);
    p->guard_size = cr_fiber_round_up(CR_FIBER_GUARD_SIZE, page);
    p->map_size = p->guard_size + p->stack_size;
    p->max_idle = max_idle;
    p->report_fd = STDERR_FILENO;
    err = cr_fiber_altstack_setup(p);
    if (err != 0) {
        free(p);
        errno = err;
        return NULL;
    }
    cr_fiber_self.pool = p;
#ifdef CR_FIBER_TSAN
    cr_fiber_self.tsan_fiber = __tsan_get_current_fiber();
#endif
    return p;
}

void cr_fiber_pool_free(cr_fiber_pool *p)
{
    cr_fiber *f;

    if (p == NULL)
        return;
    if (p != cr_fiber_self.pool || cr_fiber_self.current != NULL) {
        cr_log(CR_LOG_ERROR, "fiber pool freed %s: left as it is",
               cr_fiber_self.current != NULL ? "on a fiber" : "by another thread");
        return;
    }
    while ((f = p->live) != NULL) {
        cr_fiber_unlink_live(p, f);
        cr_fiber_san_end(f);
        cr_fiber_unmap(f);
    }
    while ((f = p->idle) != NULL) {
        p->idle = f->next;
        cr_fiber_unmap(f);
    }
    cr_fiber_altstack_restore(p);
    cr_fiber_self.pool = NULL;
    free(p);
}

void cr_fiber_pool_report_to(cr_fiber_pool *p, int fd)
{
    p->report_fd = fd;
}

void cr_fiber_pool_stats_get(const cr_fiber_pool *p, cr_fiber_pool_stats *out)
{
    out->stack_size = p->stack_size;
    out->live = p->nlive;
    out->idle = p->nidle;
    out->mapped = p->mapped;
}

/* ---- fibers ---- */

/* Every fiber starts here, on its own stack, and never returns (see
 * cr_fctx_make): it ends by jumping back to the thread for good. */
static _Noreturn void cr_fiber_main(cr_fctx_transfer t)
{
    cr_fiber_thread *self = &cr_fiber_self;
    cr_fiber *f = t.data;

    self->thread_ctx = t.fctx;
    cr_fiber_san_arrived(self, f);
    f->fn(f->arg);
    f->state = CR_FIBER_DONE;
    cr_fiber_san_leave(self, f, true);
    cr_fctx_jump(self->thread_ctx, NULL);
    /* Unreachable: a finished fiber is never resumed, and its stack is
     * reused with a fresh context. */
    abort();
}

static cr_fiber *cr_fiber_take(cr_fiber_pool *p)
{
    cr_fiber *f = p->idle;

    if (f == NULL)
        return cr_fiber_map(p);
    p->idle = f->next;
    p->nidle--;
    return f;
}

cr_fiber *cr_fiber_new(cr_fiber_pool *p, cr_fiber_fn *fn, void *arg)
{
    cr_fiber *f;

    if (p != cr_fiber_self.pool) {
        errno = EPERM;
        return NULL;
    }
    f = cr_fiber_take(p);
    if (f == NULL)
        return NULL;
    f->fn = fn;
    f->arg = arg;
    f->state = CR_FIBER_READY;
    f->label[0] = '\0';
    f->ctx = cr_fctx_make(f, cr_fiber_stack_len(f), cr_fiber_main);
    cr_fiber_san_start(f);
    cr_fiber_link_live(p, f);
    return f;
}

/* A finished fiber back to the pool, kept for reuse or unmapped. */
static void cr_fiber_release(cr_fiber *f)
{
    cr_fiber_pool *p = f->pool;

    cr_fiber_unlink_live(p, f);
    cr_fiber_san_end(f);
    if (p->nidle >= p->max_idle) {
        cr_fiber_unmap(f);
        return;
    }
    f->state = CR_FIBER_IDLE;
    f->next = p->idle;
    p->idle = f;
    p->nidle++;
}

/* The errno value refusing a resume of f, 0 when it may go ahead. */
static int cr_fiber_resume_refused(const cr_fiber_thread *self, const cr_fiber *f)
{
    if (self->current != NULL)
        return EDEADLK;
    if (f->pool != self->pool)
        return EPERM;
    if (f->state != CR_FIBER_READY && f->state != CR_FIBER_SUSPENDED)
        return EINVAL;
    return 0;
}

/* A resume and the yield that answers it are two cr_fctx_jump calls, about
 * 25 instructions each and no system call (swapcontext makes one per
 * switch, for the signal mask: 2.2 us per round trip here). Measured on the
 * plain -O2 build, on a 2-core AMD EPYC VM: 26-29 ns per round trip, printed
 * by `CK_RUN_CASE=cost tests/unit/test_fiber` in a build folder. The bare
 * pair of jumps in a loop takes 11 ns; the rest is the return after each
 * switch, which the CPU's return-address predictor cannot foresee (any
 * switch wrapped in a function pays it). */
int cr_fiber_resume(cr_fiber *f)
{
    cr_fiber_thread *self = &cr_fiber_self;
    int refused = cr_fiber_resume_refused(self, f);

    if (refused != 0) {
        errno = refused;
        return -1;
    }
    self->current = f;
    f->state = CR_FIBER_RUNNING;
    cr_fiber_san_enter(self, f);
    f->ctx = cr_fctx_jump(f->ctx, f).fctx;
    cr_fiber_san_back(self);
    self->current = NULL;
    if (f->state != CR_FIBER_DONE)
        return 0;
    cr_fiber_release(f);
    return 1;
}

int cr_fiber_yield(void)
{
    cr_fiber_thread *self = &cr_fiber_self;
    cr_fiber *f = self->current;

    if (f == NULL) {
        errno = EPERM;
        return -1;
    }
    f->state = CR_FIBER_SUSPENDED;
    cr_fiber_san_leave(self, f, false);
    self->thread_ctx = cr_fctx_jump(self->thread_ctx, NULL).fctx;
    cr_fiber_san_arrived(self, f);
    return 0;
}

cr_fiber *cr_fiber_current(void)
{
    return cr_fiber_self.current;
}

void cr_fiber_set_label(cr_fiber *f, const char *text)
{
    size_t n = 0;

    for (; text != NULL && text[n] != '\0' && n < CR_FIBER_LABEL_MAX - 1; n++) {
        unsigned char c = (unsigned char)text[n];

        f->label[n] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    f->label[n] = '\0';
}
