/* Fibers: stacks of their own, switched in user space with no system call,
 * so that sequential code (read, wait, write) can wait by yielding to an
 * event loop instead of blocking its thread.
 *
 * One pool per thread, and a fiber lives and dies on the thread of its
 * pool: it is never resumed from another one, because code running on it
 * may keep thread-local addresses (errno's, for one) across a yield. The
 * thread's own stack resumes fibers; a fiber yields back to it. A fiber
 * cannot resume another one: there is one level, the scheduler and its
 * fibers.
 *
 * Stacks are mmap'd with a PROT_NONE guard area below them (16 KiB: a frame up to
 * that size cannot step over it). Overflowing one writes
 * `corral: fiber stack overflow (64 KiB) in: LABEL [pid N]` to the pool's
 * report descriptor and kills the process by SIGSEGV: a clean crash rather
 * than memory corruption. Other faults go on to the handler or default
 * action that was there before.
 *
 * On x86-64 a fiber keeps its own floating-point control modes (rounding,
 * exception masks); on arm64 they belong to the thread, so code must not
 * yield while it has changed them. */
#ifndef CR_IO_FIBER_H
#define CR_IO_FIBER_H

#include <stddef.h>

typedef struct cr_fiber_pool cr_fiber_pool;
typedef struct cr_fiber cr_fiber;

/* A fiber's body. It may return (the fiber is then finished) or yield any
 * number of times before. */
typedef void cr_fiber_fn(void *arg);

/* Room for a fiber's label, with its terminating NUL. */
#define CR_FIBER_LABEL_MAX 128

typedef struct cr_fiber_pool_stats {
    size_t stack_size;    /* bytes of stack per fiber, guard page not counted */
    unsigned live;        /* fibers created and not finished */
    unsigned idle;        /* stacks kept for reuse */
    unsigned long mapped; /* stacks ever mapped: reuse leaves it unchanged */
} cr_fiber_pool_stats;

/* A pool for the calling thread: fibers with stack_size bytes of stack
 * (rounded up to pages; 0: the default, 64 KiB, or 256 KiB in sanitizer
 * builds whose frames carry redzones), keeping at most max_idle finished
 * stacks for reuse. It also installs the stack overflow report: the
 * process's SIGSEGV and SIGBUS handler (once, chaining to the previous
 * one) and, when the thread has none, an alternate signal stack. NULL on
 * failure with errno set: EEXIST when the thread already has a pool,
 * EINVAL for a size below 16 KiB or above 64 MiB. */
cr_fiber_pool *cr_fiber_pool_new(size_t stack_size, unsigned max_idle);

/* Unmaps every stack, those of fibers still suspended included (they are
 * dropped without running further: what they hold is not released), and
 * puts back the thread's previous alternate signal stack. From the pool's
 * thread, on its own stack, before that thread ends. NULL is ignored. */
void cr_fiber_pool_free(cr_fiber_pool *p);

/* Where the overflow line goes: STDERR_FILENO until set. A daemonized
 * server's stderr is /dev/null, so its driver points this at the error
 * log (and again after reopening the logs). */
void cr_fiber_pool_report_to(cr_fiber_pool *p, int fd);

void cr_fiber_pool_stats_get(const cr_fiber_pool *p, cr_fiber_pool_stats *out);

/* A fiber that will run fn(arg) when first resumed, on a stack reused from
 * the pool or newly mapped. From the pool's thread (on a fiber or not).
 * NULL on failure with errno set: ENOMEM, or EPERM when p is not the
 * calling thread's pool. */
cr_fiber *cr_fiber_new(cr_fiber_pool *p, cr_fiber_fn *fn, void *arg);

/* Runs f until it yields (0) or its function returns (1). A finished fiber
 * goes back to its pool at once: f must not be used after 1. From the
 * thread's own stack; -1 with errno set otherwise: EDEADLK when called on
 * a fiber, EPERM when f belongs to another thread, EINVAL when f is
 * running or finished (as far as that can be told: a finished fiber's
 * memory may be unmapped or reused). errno is left alone on success, so
 * what the fiber set before yielding reads back here. */
int cr_fiber_resume(cr_fiber *f);

/* Suspends the calling fiber and returns to whoever resumed it; returns 0
 * once resumed again. -1 with errno EPERM when not called on a fiber. */
int cr_fiber_yield(void);

/* The fiber running on this thread; NULL on the thread's own stack. */
cr_fiber *cr_fiber_current(void);

/* What the overflow line names the fiber by, such as the request line:
 * text is copied (at most CR_FIBER_LABEL_MAX - 1 bytes, control characters
 * replaced by '?'); NULL clears it. A new fiber has none. */
void cr_fiber_set_label(cr_fiber *f, const char *text);

#endif
