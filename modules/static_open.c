/* Opening a file beneath a folder without ever leaving it: openat2's
 * RESOLVE_BENEATH where the kernel has it, else a walk by hand, one name at
 * a time from the root's descriptor, that follows the same rule. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_PATH, readlinkat on an O_PATH symlink */
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#endif
#endif

#include "corral/log.h"
#include "static_open.h"

#if defined(RESOLVE_BENEATH) && defined(SYS_openat2)
#define CR_STATIC_HAVE_OPENAT2 1
#endif

/* A step of the walk: never follows a symlink, needs only search
 * permission on the folder, and reads nothing. */
#define CR_STATIC_STEP_FLAGS (O_PATH | O_NOFOLLOW | O_CLOEXEC)
/* EAGAIN from openat2: a concurrent rename made the kernel unsure. */
#define CR_STATIC_OPENAT2_TRIES 3

static void cr_static_open_close(int fd)
{
    if (close(fd) != 0)
        cr_log_errno(CR_LOG_WARN, errno, "mod_static: close");
}

/* Closes fd keeping errno, for the error paths that return it. */
static int cr_static_open_fail(int fd, int err)
{
    if (fd >= 0)
        cr_static_open_close(fd);
    errno = err;
    return -1;
}

/* ---- openat2 ------------------------------------------------------------- */

bool cr_static_openat2_usable(void)
{
#ifdef CR_STATIC_HAVE_OPENAT2
    struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_BENEATH};
    long fd = syscall(SYS_openat2, AT_FDCWD, ".", &how, sizeof(how));
    if (fd >= 0) {
        cr_static_open_close((int)fd);
        return true;
    }
    cr_log_errno(CR_LOG_NOTICE, errno, "mod_static: openat2 unavailable, walking paths by hand");
#endif
    return false;
}

int cr_static_openat2_beneath(int rootfd, const char *rel, int flags)
{
#ifdef CR_STATIC_HAVE_OPENAT2
    struct open_how how = {
        .flags = (unsigned)flags | O_CLOEXEC,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    long fd = -1;
    for (int tries = 0; tries < CR_STATIC_OPENAT2_TRIES; tries++) {
        fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
        if (fd >= 0 || errno != EAGAIN)
            break;
    }
    return (int)fd;
#else
    (void)rootfd;
    (void)rel;
    (void)flags;
    errno = ENOSYS;
    return -1;
#endif
}

/* ---- the walk by hand ---------------------------------------------------- */

/* Every folder the walk enters was reached from rootfd by names that were
 * folders, never symlinks, when opened (O_NOFOLLOW); a symlink is read
 * through a descriptor of the link itself, so what is read is what was
 * checked; and ".." is not asked of the file system (a folder moved out of
 * root meanwhile would lead outside) but taken off the names walked. */
typedef struct cr_static_walk {
    int rootfd;
    int cur;   /* the folder reached: rootfd, or a descriptor the walk owns */
    int links; /* symlinks followed so far */
    size_t done_len;
    char done[PATH_MAX]; /* the names from root to cur, '/' between them */
    char todo[PATH_MAX]; /* what is left to resolve */
} cr_static_walk;

/* Makes fd (owned) the current folder. */
static void cr_static_walk_move(cr_static_walk *w, int fd)
{
    if (w->cur != w->rootfd)
        cr_static_open_close(w->cur);
    w->cur = fd;
}

static int cr_static_walk_enter(cr_static_walk *w, int fd, const char *name, size_t len)
{
    size_t sep = w->done_len > 0 ? 1 : 0;
    if (w->done_len + sep + len >= sizeof(w->done))
        return cr_static_open_fail(fd, ENAMETOOLONG);
    if (sep)
        w->done[w->done_len] = '/';
    memcpy(w->done + w->done_len + sep, name, len);
    w->done_len += sep + len;
    w->done[w->done_len] = '\0';
    cr_static_walk_move(w, fd);
    return 0;
}

/* Copies the name of len bytes at s into name (NAME_MAX + 1 bytes). */
static int cr_static_walk_name(const char *s, size_t len, char *name)
{
    if (len > NAME_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(name, s, len);
    name[len] = '\0';
    return 0;
}

/* "..": the folder one name up, opened again from root by its names. At
 * root it would leave root, which RESOLVE_BENEATH refuses with EXDEV. */
static int cr_static_walk_up(cr_static_walk *w)
{
    if (w->done_len == 0) {
        errno = EXDEV;
        return -1;
    }
    char *slash = memrchr(w->done, '/', w->done_len);
    w->done_len = slash != NULL ? (size_t)(slash - w->done) : 0;
    w->done[w->done_len] = '\0';
    cr_static_walk_move(w, w->rootfd);
    for (size_t at = 0; at < w->done_len;) {
        size_t len = strcspn(w->done + at, "/");
        char name[NAME_MAX + 1];
        if (cr_static_walk_name(w->done + at, len, name) != 0)
            return -1;
        int fd = openat(w->cur, name, CR_STATIC_STEP_FLAGS | O_DIRECTORY);
        if (fd < 0)
            return -1;
        cr_static_walk_move(w, fd);
        at += len + 1;
    }
    return 0;
}

/* Replaces the link's name in todo (todo[0..rest)) by its target; lfd is
 * the link, opened with O_PATH | O_NOFOLLOW, and is consumed. */
static int cr_static_walk_link(cr_static_walk *w, int lfd, size_t rest)
{
    if (w->links++ >= CR_STATIC_MAX_SYMLINKS)
        return cr_static_open_fail(lfd, ELOOP);
    char target[PATH_MAX];
    ssize_t n = readlinkat(lfd, "", target, sizeof(target));
    if (n < 0)
        return cr_static_open_fail(lfd, errno);
    cr_static_open_close(lfd);
    if (n == 0) {
        errno = ENOENT; /* what the kernel says of an empty link */
        return -1;
    }
    if ((size_t)n == sizeof(target)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (target[0] == '/') {
        errno = EXDEV; /* an absolute link starts outside root */
        return -1;
    }
    size_t rest_len = strlen(w->todo + rest);
    if ((size_t)n + rest_len >= sizeof(w->todo)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memmove(w->todo + n, w->todo + rest, rest_len + 1);
    memcpy(w->todo, target, (size_t)n);
    return 0;
}

/* The last name: opened for the caller, or a link that comes back as *lfd.
 * O_NOFOLLOW makes a link (there now, or swapped in since) fail with
 * ELOOP instead of being followed. Returns the descriptor, or -1; when
 * the name is a link, -1 with *lfd set. */
static int cr_static_walk_last(cr_static_walk *w, const char *name, int flags, int *lfd)
{
    int fd = openat(w->cur, name, flags | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0 || errno != ELOOP)
        return fd;
    int link = openat(w->cur, name, CR_STATIC_STEP_FLAGS);
    if (link < 0)
        return -1;
    struct stat st;
    if (fstat(link, &st) != 0)
        return cr_static_open_fail(link, errno);
    if (!S_ISLNK(st.st_mode)) /* swapped back meanwhile: refuse, as ELOOP said */
        return cr_static_open_fail(link, ELOOP);
    *lfd = link;
    return -1;
}

/* A name with more after it: a folder to enter, or a link to expand.
 * Returns 0 having entered the folder, or with *lfd set for a link; -1. */
static int cr_static_walk_middle(cr_static_walk *w, const char *name, size_t len, int *lfd)
{
    int fd = openat(w->cur, name, CR_STATIC_STEP_FLAGS);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return cr_static_open_fail(fd, errno);
    if (S_ISLNK(st.st_mode)) {
        *lfd = fd;
        return 0;
    }
    if (!S_ISDIR(st.st_mode))
        return cr_static_open_fail(fd, ENOTDIR);
    return cr_static_walk_enter(w, fd, name, len);
}

/* Resolves w->todo name by name. Returns the open descriptor or -1. */
static int cr_static_walk_run(cr_static_walk *w, int flags)
{
    size_t at = 0;
    for (;;) {
        while (w->todo[at] == '/')
            at++;
        if (w->todo[at] == '\0') /* a folder, or a name that ended in '/' */
            return openat(w->cur, ".", flags | O_CLOEXEC);
        size_t len = strcspn(w->todo + at, "/"), rest = at + len;
        char name[NAME_MAX + 1];
        if (cr_static_walk_name(w->todo + at, len, name) != 0)
            return -1;
        at = rest;
        if (strcmp(name, ".") == 0)
            continue;
        if (strcmp(name, "..") == 0) {
            if (cr_static_walk_up(w) != 0)
                return -1;
            continue;
        }
        int lfd = -1;
        if (w->todo[rest] == '\0') {
            int fd = cr_static_walk_last(w, name, flags, &lfd);
            if (lfd < 0)
                return fd; /* the file, or -1 */
        } else if (cr_static_walk_middle(w, name, len, &lfd) != 0) {
            return -1;
        } else if (lfd < 0) {
            continue; /* entered a folder */
        }
        if (cr_static_walk_link(w, lfd, rest) != 0)
            return -1;
        at = 0;
    }
}

int cr_static_walk_beneath(int rootfd, const char *rel, int flags)
{
    cr_static_walk w = {.rootfd = rootfd, .cur = rootfd};
    size_t len = strlen(rel);
    if (len >= sizeof(w.todo)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(w.todo, rel, len + 1);
    int fd = cr_static_walk_run(&w, flags);
    int err = errno;
    cr_static_walk_move(&w, rootfd);
    errno = err;
    return fd;
}
