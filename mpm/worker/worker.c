/* worker: each child runs `threads` handler threads, each owning one
 * connection at a time with blocking waits, and a listener (the child's
 * own thread) that accepts only while a handler is idle and hands it over. */
/* pthread_timedjoin_np */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "corral/corral.h"

#define CR_WORKER_MAX_PROCESSES 1000
#define CR_WORKER_STR(n)        CR_WORKER_STR_(n)
#define CR_WORKER_STR_(n)       #n
#define CR_WORKER_MAX_THREADS   1024
#define CR_WORKER_MAX_WORKERS   (CR_WORKER_MAX_PROCESSES * CR_WORKER_MAX_THREADS)
/* After an immediate stop, how long handler threads get to return. */
#define CR_WORKER_STOP_WAIT_S 3

/* ---- configuration ---- */

typedef struct cr_worker_key {
    const char *name;
    int *value;
    int min;
    int max;
} cr_worker_key;

static int cr_worker_read(const config_setting_t *settings, const cr_worker_key *k, char *err,
                          size_t errlen)
{
    const config_setting_t *s = settings ? config_setting_get_member(settings, k->name) : NULL;

    if (s == NULL)
        return CR_OK;
    if (config_setting_type(s) != CONFIG_TYPE_INT) {
        cr_config_error(s, err, errlen, "must be an integer");
        return CR_ERROR;
    }
    *k->value = config_setting_get_int(s);
    if (*k->value < k->min || *k->value > k->max) {
        cr_config_error(s, err, errlen, "must be between %d and %d", k->min, k->max);
        return CR_ERROR;
    }
    return CR_OK;
}

/* What is wrong with these counts together, or NULL. */
static const char *cr_worker_check(int processes, int threads, int max_workers)
{
    if (max_workers < threads)
        return "max_workers must be at least threads";
    if (max_workers / threads > CR_WORKER_MAX_PROCESSES)
        return "max_workers / threads (the most children) must be at most " CR_WORKER_STR(
            CR_WORKER_MAX_PROCESSES);
    if (processes > max_workers / threads)
        return "processes * threads must be at most max_workers";
    return NULL;
}

/* Sets no state: the children need nothing of the config beyond the policy. */
static int cr_worker_configure(const config_setting_t *settings, cr_mpm_policy *policy,
                               void **state, char *err, size_t errlen)
{
    static const char *const allowed[] = {"processes",         "threads",     "min_spare_threads",
                                          "max_spare_threads", "max_workers", NULL};
    int processes = 2, threads = 25, min_spare = 25, max_spare = 75, max_workers = 400;
    const char *problem;
    const cr_worker_key keys[] = {
        {"processes", &processes, 1, CR_WORKER_MAX_PROCESSES},
        {"threads", &threads, 1, CR_WORKER_MAX_THREADS},
        {"min_spare_threads", &min_spare, 0, CR_WORKER_MAX_WORKERS},
        {"max_spare_threads", &max_spare, 1, CR_WORKER_MAX_WORKERS},
        {"max_workers", &max_workers, 1, CR_WORKER_MAX_WORKERS},
    };

    if (settings != NULL && cr_config_check_keys(settings, allowed, err, errlen) != CR_OK)
        return CR_ERROR;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (cr_worker_read(settings, &keys[i], err, errlen) != CR_OK)
            return CR_ERROR;
    problem = cr_worker_check(processes, threads, max_workers);
    if (problem != NULL) {
        cr_config_error(settings, err, errlen, "%s", problem);
        return CR_ERROR;
    }
    /* As Apache does: with less room than one child's threads above the
     * minimum, stopping an idle child would drop below min_spare_threads
     * and fork a new one on the next tick, over and over. */
    if (max_spare < min_spare + threads)
        max_spare = min_spare + threads;
    *state = NULL;
    policy->start_processes = processes;
    policy->min_processes = 1;
    policy->max_processes = max_workers / threads;
    policy->threads_per_child = threads;
    policy->min_spare = min_spare;
    policy->max_spare = max_spare;
    return CR_OK;
}

/* ---- the hand-off between the listener and the handler threads ---- */

typedef struct cr_worker cr_worker;

typedef struct cr_handler {
    cr_worker *w;
    int slot; /* handler slot in the scoreboard */
    pthread_t tid;
} cr_handler;

struct cr_worker {
    cr_child *child;
    /* Accepted connections not yet picked up. Never more than the idle
     * handlers, so it holds at most `nthreads`; stopped when no more come,
     * and idle handlers exit. */
    cr_work_queue *handoff;
    pthread_mutex_t lock;  /* guards the fields below */
    int wake_fd;           /* eventfd: a handler turned idle or exited */
    bool listener_waiting; /* the listener sleeps on wake_fd */
    int idle;              /* handlers waiting for a connection, less those already handed one */
    int running;           /* handler threads started and not yet finished */
    int nthreads;
    cr_handler *handlers;
};

/* Called with the lock held. The write is skipped while the listener is
 * busy accepting, so handing over a connection costs no system call. */
static void cr_worker_wake_listener(cr_worker *w)
{
    uint64_t one = 1;

    if (!w->listener_waiting)
        return;
    w->listener_waiting = false;
    if (write(w->wake_fd, &one, sizeof(one)) < 0)
        cr_log_errno(CR_LOG_ERROR, errno, "write to the listener's eventfd");
}

/* Waits for a connection to serve. Returns it, or -1 once the child stops
 * and no connection is left for this thread. */
static int cr_worker_take(cr_worker *w)
{
    void *item;

    pthread_mutex_lock(&w->lock);
    w->idle++;
    cr_worker_wake_listener(w);
    pthread_mutex_unlock(&w->lock);
    if (cr_work_queue_pop(w->handoff, &item) != CR_OK)
        return -1;
    return (int)(intptr_t)item;
}

/* The listener accepted only once a handler was idle, and each idle
 * handler takes one connection, so the queue has room: a refusal means a
 * stop, and the connection is closed unanswered. */
static void cr_worker_hand_over(cr_worker *w, int fd)
{
    pthread_mutex_lock(&w->lock);
    w->idle--;
    pthread_mutex_unlock(&w->lock);
    /* The descriptor travels in the pointer: no allocation per connection. */
    if (cr_work_queue_push(w->handoff, (void *)(intptr_t)fd) == CR_OK)
        return;
    cr_log(CR_LOG_ERROR, "no handler thread takes an accepted connection; closing it");
    if (close(fd) != 0)
        cr_log_errno(CR_LOG_WARN, errno, "close of an accepted connection");
}

static void *cr_worker_handler(void *arg)
{
    cr_handler *h = arg;
    cr_worker *w = h->w;
    int fd;

    for (;;) {
        cr_child_set_state(w->child, h->slot, CR_SLOT_READY);
        fd = cr_worker_take(w);
        if (fd < 0)
            break;
        cr_child_serve_blocking(w->child, h->slot, fd);
    }
    cr_child_set_state(w->child, h->slot, CR_SLOT_DEAD);
    pthread_mutex_lock(&w->lock);
    w->running--;
    cr_worker_wake_listener(w);
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* ---- the listener ---- */

/* Sleeps until a handler wakes the listener. CR_OK when woken, CR_AGAIN
 * on a stop of this kind, CR_ERROR on failure. Stop signals get through
 * only while a thread polls, so the listener waits in a poll rather than
 * on a condition variable: with every handler busy, it is the one thread
 * left to notice a stop. */
static int cr_worker_sleep(cr_worker *w, cr_wait_kind kind)
{
    uint64_t n;
    int rc = cr_child_wait(w->child, w->wake_fd, POLLIN, -1, kind);

    if (rc == CR_ERROR || (rc == 1 && read(w->wake_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)) {
        cr_log_errno(CR_LOG_ERROR, errno, "waiting on the listener's eventfd");
        return CR_ERROR;
    }
    return rc == CR_AGAIN ? CR_AGAIN : CR_OK;
}

/* Waits until a handler is free, so that a connection nobody could serve
 * stays in the kernel's backlog (or goes to another child) instead of
 * being accepted here. CR_OK, CR_AGAIN when a stop of this kind came, or
 * CR_ERROR. */
static int cr_worker_wait_idle(cr_worker *w, cr_wait_kind kind)
{
    int rc = CR_OK;

    pthread_mutex_lock(&w->lock);
    while (w->idle == 0 && rc == CR_OK) {
        w->listener_waiting = true;
        pthread_mutex_unlock(&w->lock);
        rc = cr_worker_sleep(w, kind);
        pthread_mutex_lock(&w->lock);
    }
    w->listener_waiting = false;
    pthread_mutex_unlock(&w->lock);
    return rc;
}

static int cr_worker_listen(cr_worker *w)
{
    while (!cr_child_stopping(w->child) && !cr_child_recycle_due(w->child)) {
        int rc = cr_worker_wait_idle(w, CR_WAIT_IDLE);
        int fd;

        if (rc == CR_ERROR)
            return 1;
        if (rc != CR_OK)
            continue;
        fd = cr_child_accept(w->child);
        if (fd >= 0)
            cr_worker_hand_over(w, fd);
    }
    return 0;
}

/* A graceful stop: clients that connected before it are answered, not
 * reset when the listeners close; each waits for a free handler. */
static void cr_worker_drain(cr_worker *w)
{
    while (cr_child_draining(w->child) && cr_worker_wait_idle(w, CR_WAIT_BUSY) == CR_OK) {
        int fd = cr_child_accept_pending(w->child);

        if (fd < 0)
            return;
        cr_worker_hand_over(w, fd);
    }
}

/* Idle handlers exit at once; busy ones when their connection ends. */
static void cr_worker_stop(cr_worker *w)
{
    cr_work_queue_stop(w->handoff);
}

/* Waits, in a poll so that an immediate stop arriving meanwhile is seen,
 * until every handler finished or an immediate stop was asked. */
static void cr_worker_wait_running(cr_worker *w)
{
    pthread_mutex_lock(&w->lock);
    while (w->running > 0 && !cr_child_stopping_now(w->child)) {
        w->listener_waiting = true;
        pthread_mutex_unlock(&w->lock);
        if (cr_worker_sleep(w, CR_WAIT_BUSY) == CR_ERROR)
            return;
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
}

/* Joins the handler threads. After an immediate stop their waits return
 * at once; one that does not return in time is stuck in module code, and
 * the process exits without it rather than hang: returning would run the
 * modules' child_exit under the thread still using them. */
static void cr_worker_join(cr_worker *w, int started)
{
    struct timespec deadline;

    cr_worker_wait_running(w);
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += CR_WORKER_STOP_WAIT_S;
    for (int i = 0; i < started; i++) {
        int rc = cr_child_stopping_now(w->child)
                     ? pthread_timedjoin_np(w->handlers[i].tid, NULL, &deadline)
                     : pthread_join(w->handlers[i].tid, NULL);

        if (rc == ETIMEDOUT) {
            cr_log(CR_LOG_ERROR, "handler threads still busy %d s after the stop; exiting anyway",
                   CR_WORKER_STOP_WAIT_S);
            _exit(1);
        }
        if (rc != 0)
            cr_log_errno(CR_LOG_ERROR, rc, "joining handler thread %d", i);
    }
}

/* ---- the child ---- */

static void cr_worker_free(cr_worker *w)
{
    if (w->wake_fd >= 0 && close(w->wake_fd) != 0)
        cr_log_errno(CR_LOG_WARN, errno, "close of the listener's eventfd");
    cr_work_queue_free(w->handoff);
    pthread_mutex_destroy(&w->lock);
    free(w->handlers);
}

static int cr_worker_init(cr_worker *w, cr_child *child)
{
    *w = (cr_worker){
        .child = child, .lock = PTHREAD_MUTEX_INITIALIZER, .nthreads = cr_child_threads(child)};
    w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    w->handlers = calloc((size_t)w->nthreads, sizeof(*w->handlers));
    if (w->wake_fd < 0 || w->handlers == NULL) {
        cr_log_errno(CR_LOG_CRIT, errno, "worker setup");
        cr_worker_free(w);
        return -1;
    }
    /* Logs its own failure. */
    w->handoff = cr_work_queue_new(w->nthreads);
    if (w->handoff == NULL) {
        cr_worker_free(w);
        return -1;
    }
    return 0;
}

/* Starts the handler threads; they inherit the blocked stop signals.
 * Returns how many started: all of them, or fewer after an error. */
static int cr_worker_start(cr_worker *w)
{
    int i;

    for (i = 0; i < w->nthreads; i++) {
        cr_handler *h = &w->handlers[i];
        int rc;

        *h = (cr_handler){.w = w, .slot = i};
        pthread_mutex_lock(&w->lock);
        w->running++;
        pthread_mutex_unlock(&w->lock);
        rc = pthread_create(&h->tid, NULL, cr_worker_handler, h);
        if (rc != 0) {
            cr_log_errno(CR_LOG_CRIT, rc, "pthread_create (handler thread %d of %d)", i + 1,
                         w->nthreads);
            pthread_mutex_lock(&w->lock);
            w->running--;
            pthread_mutex_unlock(&w->lock);
            break;
        }
    }
    return i;
}

static int cr_worker_child_main(cr_child *child, void *state)
{
    cr_worker w;
    int started, status = 1;

    (void)state;
    if (cr_worker_init(&w, child) != 0)
        return 1;
    started = cr_worker_start(&w);
    if (started == w.nthreads)
        status = cr_worker_listen(&w);
    if (started == w.nthreads)
        cr_worker_drain(&w);
    cr_worker_stop(&w);
    cr_worker_join(&w, started);
    cr_worker_free(&w);
    return status;
}

__attribute__((visibility("default"))) const cr_mpm cr_mpm_entry = {
    .magic = CR_MPM_MAGIC,
    .abi = CR_MPM_ABI,
    .name = "worker",
    .version = CR_VERSION,
    .configure = cr_worker_configure,
    .child_main = cr_worker_child_main,
};
