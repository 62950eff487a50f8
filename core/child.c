#include "child.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "corral/log.h"
#include "http_conn.h"

/* Set from signal handlers: the only process state outside the server
 * object, because a handler can reach nothing else safely. The eventfds
 * are written once and never drained, so every wait in every thread sees
 * them readable from then on. The flags are atomics, not volatile
 * sig_atomic_t, because threads other than the one the signal landed on
 * read them; lock-free atomics are safe in a signal handler too. */
static atomic_int cr_stop_now;
static atomic_int cr_stop_graceful;
/* The graceful stop is the server's (WINCH), not a restart's (USR1): no
 * new generation will accept what the listeners hold, so this child does. */
static atomic_int cr_stop_drain;
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the stop flags are set in signal handlers");
static int cr_stop_now_fd = -1;
static int cr_stop_graceful_fd = -1;
/* This child's own report in the scoreboard, so that the status page
 * shows it finishing even when the stop signal did not come from the
 * master (the process slot itself is the master's, read-only here). */
static volatile char *cr_quiescing;

static void cr_stop_fd_raise(int fd)
{
    uint64_t one = 1;
    int saved = errno;

    if (fd >= 0)
        (void)!write(fd, &one, sizeof(one));
    errno = saved;
}

static void cr_on_stop_signal(int sig)
{
    (void)sig;
    cr_stop_now = 1;
    cr_stop_fd_raise(cr_stop_now_fd);
    cr_stop_fd_raise(cr_stop_graceful_fd);
}

static void cr_on_graceful_signal(int sig)
{
    (void)sig;
    cr_stop_graceful = 1;
    if (cr_quiescing != NULL)
        *cr_quiescing = 1;
    cr_stop_fd_raise(cr_stop_graceful_fd);
}

/* Set before the graceful flag, so that whoever sees the stop sees what
 * kind it is. */
static void cr_on_graceful_stop_signal(int sig)
{
    cr_stop_drain = 1;
    cr_on_graceful_signal(sig);
}

int cr_child_stop_fd(const cr_child *child, cr_wait_kind kind)
{
    (void)child;
    return kind == CR_WAIT_IDLE ? cr_stop_graceful_fd : cr_stop_now_fd;
}

bool cr_child_stopping(const cr_child *child)
{
    (void)child;
    return cr_stop_now || cr_stop_graceful;
}

bool cr_child_stopping_now(const cr_child *child)
{
    (void)child;
    return cr_stop_now;
}

bool cr_child_recycle_due(const cr_child *child)
{
    long limit = child->gen->cfg.limits.requests_per_child;

    return limit > 0 && atomic_load(&child->requests) >= (unsigned long)limit;
}

int cr_child_threads(const cr_child *child)
{
    return child->gen->policy.threads_per_child;
}

void cr_child_count_request(cr_child *child)
{
    atomic_fetch_add(&child->requests, 1);
}

void cr_child_set_state(cr_child *child, int thread, cr_slot_state state)
{
    cr_worker_score *w =
        cr_scoreboard_worker(&child->srv->sb, (uint32_t)child->slot, (uint32_t)thread);

    w->state = (char)state;
}

static int cr_child_signals(cr_child *child)
{
    struct sigaction sa;
    sigset_t stop;
    int stop_fds[CR_WAIT_KINDS];

    cr_stop_now_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    cr_stop_graceful_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (cr_stop_now_fd < 0 || cr_stop_graceful_fd < 0)
        return -1;
    stop_fds[CR_WAIT_BUSY] = cr_stop_now_fd;
    stop_fds[CR_WAIT_IDLE] = cr_stop_graceful_fd;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: a stop must interrupt the wait it arrives in. */
    sa.sa_handler = cr_on_stop_signal;
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0 ||
        sigaction(SIGHUP, &sa, NULL) != 0)
        return -1;
    sa.sa_handler = cr_on_graceful_signal;
    if (sigaction(SIGUSR1, &sa, NULL) != 0)
        return -1;
    sa.sa_handler = cr_on_graceful_stop_signal;
    if (sigaction(SIGWINCH, &sa, NULL) != 0)
        return -1;
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) != 0)
        return -1;
    sa.sa_handler = SIG_DFL;
    if (sigaction(SIGCHLD, &sa, NULL) != 0)
        return -1;

    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    sigaddset(&stop, SIGUSR1);
    sigaddset(&stop, SIGWINCH);
    if (pthread_sigmask(SIG_BLOCK, &stop, &child->wait_mask) != 0)
        return -1;
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(&stop, sig) == 1)
            sigdelset(&child->wait_mask, sig);
    cr_wait_thread_init(&child->waiter, stop_fds, &child->wait_mask);
    return 0;
}

#define CR_EPOLL_STOP UINT32_MAX

static int cr_child_listen(cr_child *child)
{
    const cr_listeners *ls = &child->srv->listeners;
    struct epoll_event stop = {.events = EPOLLIN, .data.u32 = CR_EPOLL_STOP};

    child->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (child->epfd < 0)
        return -1;
    if (epoll_ctl(child->epfd, EPOLL_CTL_ADD, cr_stop_graceful_fd, &stop) != 0)
        return -1;
    for (size_t i = 0; i < ls->count; i++) {
        /* EPOLLEXCLUSIVE wakes one waiting child per connection, not all. */
        struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.u32 = (uint32_t)i};

        if (epoll_ctl(child->epfd, EPOLL_CTL_ADD, ls->items[i].fd, &ev) != 0)
            return -1;
    }
    return 0;
}

_Static_assert(CR_CHILD_POLL_MAX <= CR_WAIT_POLL_MAX, "cr_child_poll waits through the io layer");

int cr_child_poll(cr_child *child, struct pollfd *fds, int nfds, int timeout_ms, cr_wait_kind kind)
{
    struct timespec ts = {.tv_sec = timeout_ms / 1000,
                          .tv_nsec = (long)(timeout_ms % 1000) * CR_WAIT_NS_PER_MS};

    return cr_wait_thread_poll(&child->waiter, fds, nfds, timeout_ms >= 0 ? &ts : NULL, kind);
}

int cr_child_wait(cr_child *child, int fd, short events, int timeout_ms, cr_wait_kind kind)
{
    struct pollfd p = {.fd = fd, .events = events};

    return cr_child_poll(child, &p, 1, timeout_ms, kind);
}

static void cr_accept_failed(cr_child *child, int err)
{
    struct timespec pause = {0, 100 * 1000000L};

    if (err == EAGAIN || err == EINTR || err == ECONNABORTED || err == EPROTO)
        return;
    cr_log_errno(CR_LOG_ERROR, err, "accept");
    /* Out of descriptors or memory: back off instead of spinning on a
     * listener that stays readable. */
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
        ppoll(NULL, 0, &pause, &child->wait_mask);
}

/* Accepts a connection on listener i without waiting; -1 when none. */
static int cr_child_accept_on(cr_child *child, uint32_t i)
{
    const cr_listener *l = &child->srv->listeners.items[i];
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;

    if (fd < 0) {
        cr_accept_failed(child, errno);
        return -1;
    }
    if (strncmp(l->name, "unix:", 5) != 0 &&
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
        cr_log_errno(CR_LOG_DEBUG, errno, "setsockopt(TCP_NODELAY)");
    return fd;
}

#define CR_CHILD_WOKEN_MAX 16

/* A stop ended the wait for a connection. The stop descriptor and a
 * listener can turn ready together (another thread's signal handler
 * raises the descriptor), and one event per wait may return the stop
 * only. EPOLLEXCLUSIVE wakes one waiting child per connection: if that
 * wake-up was spent on this child, the connection would sit in the backlog
 * until the next one wakes another child, so it is taken here (and served:
 * it came before the stop was seen). */
static int cr_child_accept_woken(cr_child *child)
{
    struct epoll_event ev[CR_CHILD_WOKEN_MAX];
    int n;

    if (cr_stop_now)
        return -1;
    n = epoll_wait(child->epfd, ev, CR_CHILD_WOKEN_MAX, 0);
    if (n < 0 && errno != EINTR)
        cr_log_errno(CR_LOG_ERROR, errno, "epoll_wait on listeners");
    for (int i = 0; i < n; i++) {
        int fd = ev[i].data.u32 == CR_EPOLL_STOP ? -1 : cr_child_accept_on(child, ev[i].data.u32);

        if (fd >= 0)
            return fd;
    }
    return -1;
}

int cr_child_accept(cr_child *child)
{
    struct epoll_event ev;
    int n;

    if (cr_child_stopping(child))
        return -1;
    n = epoll_pwait(child->epfd, &ev, 1, -1, &child->wait_mask);
    if (n < 0 && errno != EINTR)
        cr_log_errno(CR_LOG_ERROR, errno, "epoll_pwait on listeners");
    if (n == 1 && ev.data.u32 != CR_EPOLL_STOP)
        return cr_child_accept_on(child, ev.data.u32);
    return cr_child_stopping(child) ? cr_child_accept_woken(child) : -1;
}

bool cr_child_draining(const cr_child *child)
{
    (void)child;
    return cr_stop_drain && !cr_stop_now;
}

int cr_child_accept_pending(cr_child *child)
{
    const cr_listeners *ls = &child->srv->listeners;
    long long now = cr_monotonic_ms();

    if (!cr_child_draining(child))
        return -1;
    if (child->drain_until == 0)
        child->drain_until = now + CR_CHILD_DRAIN_MS;
    else if (now >= child->drain_until)
        return -1;
    for (size_t i = 0; i < ls->count; i++) {
        int fd = cr_child_accept_on(child, (uint32_t)i);

        if (fd >= 0)
            return fd;
    }
    return -1;
}

void cr_child_serve_blocking(cr_child *child, int thread, int fd)
{
    cr_http_serve_blocking(child, thread, fd);
}

static void cr_child_modules(cr_generation *g, bool init)
{
    for (size_t i = 0; i < g->nmodules; i++) {
        const cr_module *m = g->modules[i].module;

        if (init && m->child_init != NULL)
            m->child_init();
        if (!init && m->child_exit != NULL)
            m->child_exit();
    }
}

int cr_child_run(cr_server *srv, int slot)
{
    cr_child child = {.srv = srv, .gen = srv->gen, .slot = slot, .epfd = -1};
    int status;

    /* A child whose master died must not serve on alone. */
    if (!srv->single_process && prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
        cr_log_errno(CR_LOG_WARN, errno, "prctl(PR_SET_PDEATHSIG)");
    cr_quiescing = &srv->sb.children[slot].graceful;
    if (cr_child_signals(&child) != 0 || cr_child_listen(&child) != 0) {
        cr_log_errno(CR_LOG_CRIT, errno, "child setup");
        return 1;
    }
    cr_child_modules(child.gen, true);
    status = child.gen->mpm->child_main(&child, child.gen->mpm_state);
    cr_child_modules(child.gen, false);
    close(child.epfd);
    return status;
}
