/* Opening a file beneath a folder without ever leaving it, for mod_static:
 * openat2's RESOLVE_BENEATH where the kernel has it, else a walk by hand
 * that refuses exactly what RESOLVE_BENEATH refuses. */
#ifndef CR_STATIC_OPEN_H
#define CR_STATIC_OPEN_H

#include <stdbool.h>

/* The kernel's MAXSYMLINKS: both ways give up (ELOOP) at the same link. */
#define CR_STATIC_MAX_SYMLINKS 40

/* Whether openat2 with RESOLVE_BENEATH works here: the headers may have
 * it while the kernel, or a seccomp filter, refuses it. */
bool cr_static_openat2_usable(void);

/* Both open rel (relative; "" is not allowed, "." is rootfd's folder) below
 * the folder rootfd with the open(2) flags, and return a descriptor or -1
 * with errno set. A relative symlink is followed while it stays below
 * root; an absolute symlink, or a ".." or a symlink that would leave root
 * at any step, fails with EXDEV; more than CR_STATIC_MAX_SYMLINKS links
 * with ELOOP. */
int cr_static_openat2_beneath(int rootfd, const char *rel, int flags);
int cr_static_walk_beneath(int rootfd, const char *rel, int flags);

#endif
