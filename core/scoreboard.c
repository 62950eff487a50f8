#include "scoreboard.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "corral/corral.h"

/* Far above any real server (the master sizes the scoreboard from the MPM's
 * limits), low enough that a corrupt header cannot overflow the size. */
#define CR_SB_MAX_PROCESSES (1u << 20)
#define CR_SB_MAX_THREADS   (1u << 16)

#define CR_SB_CACHE_LINE 64
/* Page sizes a header may name: 4 KiB to 1 MiB, powers of two. */
#define CR_SB_MIN_PAGE 4096u
#define CR_SB_MAX_PAGE (1u << 20)

/* Where each part of the map starts and how big it is. */
typedef struct cr_sb_layout {
    uint64_t proc_off;
    uint64_t child_off; /* the end of the master's part */
    uint64_t worker_off;
    uint64_t size;
} cr_sb_layout;

/* n rounded up to a multiple of unit, a power of two. */
static uint64_t cr_sb_align(uint64_t n, uint64_t unit)
{
    return (n + unit - 1) & ~(unit - 1);
}

/* The map for these limits: header, process slots, children's reports and
 * handler slots, each on a cache line of its own; the reports start a page,
 * so that what comes before can be mapped read-only on its own. */
static cr_sb_layout cr_sb_geometry(uint32_t process_limit, uint32_t thread_limit,
                                   uint32_t page_size)
{
    cr_sb_layout l;

    l.proc_off = cr_sb_align(sizeof(cr_scoreboard_header), CR_SB_CACHE_LINE);
    l.child_off =
        cr_sb_align(l.proc_off + (uint64_t)sizeof(cr_process_score) * process_limit, page_size);
    l.worker_off = cr_sb_align(l.child_off + (uint64_t)sizeof(cr_child_score) * process_limit,
                               CR_SB_CACHE_LINE);
    l.size = l.worker_off + (uint64_t)sizeof(cr_worker_score) * process_limit * thread_limit;
    return l;
}

static uint32_t cr_sb_page_size(void)
{
    long n = sysconf(_SC_PAGESIZE);

    return n >= (long)CR_SB_MIN_PAGE && n <= (long)CR_SB_MAX_PAGE ? (uint32_t)n : CR_SB_MIN_PAGE;
}

/* Points sb's fields into a map whose header is filled and checked. */
static void cr_sb_view(cr_scoreboard *sb, void *map)
{
    cr_scoreboard_header *h = map;

    sb->map = map;
    sb->map_size = h->map_size;
    sb->master_size = h->child_offset;
    sb->seal_fd = -1;
    sb->hdr = h;
    sb->process_limit = h->process_limit;
    sb->thread_limit = h->thread_limit;
    sb->running_generation = h->running_generation;
    sb->start_time = (time_t)h->start_time;
    sb->restart_time = (time_t)h->restart_time;
    sb->retired = &h->retired;
    sb->processes = (cr_process_score *)((char *)map + h->process_offset);
    sb->children = (cr_child_score *)((char *)map + h->child_offset);
    sb->workers = (cr_worker_score *)((char *)map + h->worker_offset);
}

static void cr_sb_fill_header(cr_scoreboard_header *h, uint32_t process_limit,
                              uint32_t thread_limit, uint32_t page_size, const char *mpm)
{
    cr_sb_layout l = cr_sb_geometry(process_limit, thread_limit, page_size);

    memcpy(h->magic, CR_SB_MAGIC, sizeof(h->magic));
    h->layout = CR_SB_LAYOUT;
    h->header_size = sizeof(*h);
    h->process_size = sizeof(cr_process_score);
    h->child_size = sizeof(cr_child_score);
    h->worker_size = sizeof(cr_worker_score);
    h->page_size = page_size;
    h->process_limit = process_limit;
    h->thread_limit = thread_limit;
    h->process_offset = l.proc_off;
    h->child_offset = l.child_off;
    h->worker_offset = l.worker_off;
    h->map_size = l.size;
    h->master_pid = getpid();
    h->start_time = time(NULL);
    h->restart_time = h->start_time;
    snprintf(h->version, sizeof(h->version), "%s", CR_VERSION);
    snprintf(h->mpm, sizeof(h->mpm), "%s", mpm);
}

/* The file just created at `tmp` (st), opened again read-only: what the
 * children seal their view with. -1 with errno. */
static int cr_sb_open_seal(const char *tmp, const struct stat *st)
{
    struct stat again;
    int fd = open(tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0)
        return -1;
    if (fstat(fd, &again) != 0 || again.st_dev != st->st_dev || again.st_ino != st->st_ino) {
        close(fd);
        errno = EEXIST; /* someone replaced the file in between */
        return -1;
    }
    return fd;
}

/* Maps a new file `tmp` of `size` bytes, zero-filled, read-write; *seal_fd
 * gets it opened read-only. */
static void *cr_sb_map_new(const char *tmp, uint64_t size, struct stat *st, int *seal_fd)
{
    void *map = MAP_FAILED;
    int saved, fd;

    /* A leftover of a master that had this pid and crashed. */
    if (unlink(tmp) != 0 && errno != ENOENT)
        return NULL;
    fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return NULL;
    if (ftruncate(fd, (off_t)size) == 0 && fstat(fd, st) == 0 &&
        (*seal_fd = cr_sb_open_seal(tmp, st)) >= 0)
        map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    saved = errno;
    close(fd);
    if (map != MAP_FAILED)
        return map;
    if (*seal_fd >= 0)
        close(*seal_fd);
    *seal_fd = -1;
    unlink(tmp);
    errno = saved;
    return NULL;
}

int cr_scoreboard_create(cr_scoreboard *sb, const char *path, uint32_t process_limit,
                         uint32_t thread_limit, const char *mpm)
{
    uint32_t page_size = cr_sb_page_size();
    cr_sb_layout l = cr_sb_geometry(process_limit, thread_limit, page_size);
    struct stat st;
    char *tmp = NULL;
    void *map;
    int saved, seal_fd = -1;

    memset(sb, 0, sizeof(*sb));
    sb->seal_fd = -1;
    sb->path = strdup(path);
    if (sb->path == NULL || asprintf(&tmp, "%s.%ld.tmp", path, (long)getpid()) < 0)
        goto fail_nomem;
    map = cr_sb_map_new(tmp, l.size, &st, &seal_fd);
    if (map == NULL)
        goto fail;
    cr_sb_fill_header(map, process_limit, thread_limit, page_size, mpm);
    cr_sb_view(sb, map);
    for (uint32_t i = 0; i < process_limit * thread_limit; i++)
        sb->workers[i].state = CR_SLOT_DEAD;
    /* Renamed once complete, so a reader never sees half a header, and a
     * stale file of a crashed master is replaced in one step. */
    if (rename(tmp, path) != 0) {
        saved = errno;
        munmap(map, l.size);
        close(seal_fd);
        unlink(tmp);
        errno = saved;
        goto fail;
    }
    sb->seal_fd = seal_fd;
    sb->file_dev = st.st_dev;
    sb->file_ino = st.st_ino;
    sb->creator = getpid();
    free(tmp);
    return 0;
fail_nomem:
    errno = ENOMEM;
fail:
    saved = errno;
    free(tmp);
    free(sb->path);
    memset(sb, 0, sizeof(*sb));
    sb->seal_fd = -1;
    errno = saved;
    return -1;
}

int cr_scoreboard_seal(cr_scoreboard *sb)
{
    void *map;
    int saved;

    if (sb->seal_fd < 0) {
        errno = EBADF;
        return -1;
    }
    /* MAP_FIXED replaces the writable pages in place, in one step: the
     * pointers into them stay valid. */
    map = mmap(sb->map, sb->master_size, PROT_READ, MAP_SHARED | MAP_FIXED, sb->seal_fd, 0);
    saved = errno;
    close(sb->seal_fd);
    sb->seal_fd = -1;
    errno = saved;
    return map == MAP_FAILED ? -1 : 0;
}

/* True while path still names the file this master created. */
static bool cr_sb_still_ours(const cr_scoreboard *sb)
{
    struct stat st;

    return stat(sb->path, &st) == 0 && st.st_dev == sb->file_dev && st.st_ino == sb->file_ino;
}

void cr_scoreboard_destroy(cr_scoreboard *sb)
{
    if (sb->path != NULL && sb->creator == getpid() && cr_sb_still_ours(sb))
        (void)unlink(sb->path);
    /* A zeroed scoreboard (never created) has no map and no descriptor. */
    if (sb->map != NULL && sb->seal_fd >= 0)
        close(sb->seal_fd);
    if (sb->map != NULL)
        munmap(sb->map, sb->map_size);
    free(sb->path);
    memset(sb, 0, sizeof(*sb));
}

static int cr_sb_bad(char *err, size_t errlen, const char *path, const char *why)
{
    snprintf(err, errlen, "%s: %s", path, why);
    errno = 0;
    return -1;
}

/* Checks what a reader must trust before following any offset. */
static int cr_sb_check_header(const cr_scoreboard_header *h, uint64_t file_size, const char *path,
                              char *err, size_t errlen)
{
    cr_sb_layout l;
    char why[160];

    if (memcmp(h->magic, CR_SB_MAGIC, sizeof(h->magic)) != 0)
        return cr_sb_bad(err, errlen, path, "not a corral scoreboard (bad magic)");
    if (h->layout != CR_SB_LAYOUT) {
        snprintf(why, sizeof(why), "scoreboard layout %u, this program reads layout %u",
                 (unsigned)h->layout, CR_SB_LAYOUT);
        return cr_sb_bad(err, errlen, path, why);
    }
    if (h->header_size != sizeof(*h) || h->process_size != sizeof(cr_process_score) ||
        h->child_size != sizeof(cr_child_score) || h->worker_size != sizeof(cr_worker_score))
        return cr_sb_bad(err, errlen, path, "scoreboard written by a build with other sizes");
    if (h->process_limit == 0 || h->process_limit > CR_SB_MAX_PROCESSES || h->thread_limit == 0 ||
        h->thread_limit > CR_SB_MAX_THREADS || h->page_size < CR_SB_MIN_PAGE ||
        h->page_size > CR_SB_MAX_PAGE || (h->page_size & (h->page_size - 1)) != 0)
        return cr_sb_bad(err, errlen, path, "scoreboard limits out of range");
    l = cr_sb_geometry(h->process_limit, h->thread_limit, h->page_size);
    if (h->process_offset != l.proc_off || h->child_offset != l.child_off ||
        h->worker_offset != l.worker_off || h->map_size != l.size || file_size != l.size)
        return cr_sb_bad(err, errlen, path, "scoreboard size does not match its header");
    return 0;
}

int cr_scoreboard_attach(cr_scoreboard *sb, const char *path, char *err, size_t errlen)
{
    struct stat st;
    void *map;
    int fd, saved;

    memset(sb, 0, sizeof(*sb));
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || fstat(fd, &st) != 0) {
        saved = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(saved));
        if (fd >= 0)
            close(fd);
        errno = saved;
        return -1;
    }
    if ((uint64_t)st.st_size < sizeof(cr_scoreboard_header)) {
        close(fd);
        return cr_sb_bad(err, errlen, path, "too small to be a corral scoreboard");
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    saved = errno;
    close(fd);
    if (map == MAP_FAILED) {
        snprintf(err, errlen, "%s: mmap: %s", path, strerror(saved));
        errno = saved;
        return -1;
    }
    if (cr_sb_check_header(map, (uint64_t)st.st_size, path, err, errlen) != 0) {
        munmap(map, (size_t)st.st_size);
        return -1;
    }
    cr_sb_view(sb, map);
    return 0;
}

void cr_scoreboard_claim(cr_scoreboard *sb, int slot, pid_t pid, uint32_t generation,
                         uint32_t threads)
{
    cr_process_score *p = &sb->processes[slot];

    /* Every new generation starts children right away, so publishing here
     * keeps readers from outside (corralctl) current without the restart
     * code knowing about them. */
    sb->hdr->running_generation = sb->running_generation;
    sb->hdr->restart_time = sb->restart_time;
    p->pid = pid;
    p->generation = generation;
    p->quiescing = 0;
    p->started = time(NULL);
    sb->children[slot].graceful = 0;
    for (uint32_t t = 0; t < sb->thread_limit; t++) {
        cr_worker_score *w = cr_scoreboard_worker(sb, (uint32_t)slot, t);

        sb->retired->requests += w->requests;
        sb->retired->bytes += w->bytes;
        for (int i = 0; i < CR_PHASES; i++)
            sb->retired->phase_ns[i] += w->phase_ns[i];
        memset(w, 0, sizeof(*w));
        w->state = t < threads ? CR_SLOT_STARTING : CR_SLOT_DEAD;
    }
}

void cr_scoreboard_release(cr_scoreboard *sb, int slot)
{
    sb->processes[slot].pid = 0;
    for (uint32_t t = 0; t < sb->thread_limit; t++)
        cr_scoreboard_worker(sb, (uint32_t)slot, t)->state = CR_SLOT_DEAD;
}
