/* The wait on a thread: one ppoll over the descriptors and the stop
 * descriptor of the wait's kind, with the stop signals let through. */
#include <errno.h>
#include <poll.h>
#include <string.h>

#include "wait.h"

static int cr_wait_thread_wait(cr_waiter *w, int fd, short events, int64_t deadline_ns,
                               cr_wait_kind kind);

void cr_wait_thread_init(cr_wait_thread *t, const int stop_fd[CR_WAIT_KINDS], const sigset_t *mask)
{
    t->waiter.wait = cr_wait_thread_wait;
    for (int k = 0; k < CR_WAIT_KINDS; k++)
        t->stop_fd[k] = stop_fd[k];
    t->mask = mask;
}

int cr_wait_thread_poll(const cr_wait_thread *t, struct pollfd *fds, int nfds,
                        const struct timespec *timeout, cr_wait_kind kind)
{
    struct pollfd p[CR_WAIT_POLL_MAX + 1];
    int n;

    if (nfds < 0 || nfds > CR_WAIT_POLL_MAX || (unsigned)kind >= CR_WAIT_KINDS) {
        errno = EINVAL;
        return CR_WAIT_FAILED;
    }
    memcpy(p, fds, sizeof(*p) * (size_t)nfds);
    /* poll skips a negative descriptor: a kind that is never stopped, or
     * a sleep's fd -1. */
    p[nfds] = (struct pollfd){.fd = t->stop_fd[kind], .events = POLLIN};
    n = ppoll(p, (nfds_t)nfds + 1, timeout, t->mask);
    /* Only stop signals get through the mask, and their handlers raise
     * the stop descriptors: the caller finds out which stop it was. */
    if (n < 0)
        return errno == EINTR ? CR_WAIT_STOPPED : CR_WAIT_FAILED;
    for (int i = 0; i < nfds; i++)
        fds[i].revents = p[i].revents;
    if (p[nfds].revents)
        return CR_WAIT_STOPPED;
    return n > 0 ? CR_WAIT_READY : CR_WAIT_TIMEDOUT;
}

/* The time from now until deadline_ns (none left: zero). */
static struct timespec cr_wait_thread_left(int64_t deadline_ns, int64_t now)
{
    int64_t left = deadline_ns > now ? deadline_ns - now : 0;

    return (struct timespec){.tv_sec = (time_t)(left / CR_WAIT_NS_PER_SEC),
                             .tv_nsec = (long)(left % CR_WAIT_NS_PER_SEC)};
}

static int cr_wait_thread_wait(cr_waiter *w, int fd, short events, int64_t deadline_ns,
                               cr_wait_kind kind)
{
    const cr_wait_thread *t = (const cr_wait_thread *)w;
    struct pollfd p = {.fd = fd, .events = events};
    struct timespec ts;
    int64_t now;

    if (deadline_ns == CR_WAIT_FOREVER)
        return cr_wait_thread_poll(t, &p, 1, NULL, kind);
    now = cr_wait_now_ns();
    if (now < 0)
        return CR_WAIT_FAILED;
    ts = cr_wait_thread_left(deadline_ns, now);
    return cr_wait_thread_poll(t, &p, 1, &ts, kind);
}
