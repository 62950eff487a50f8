/* Unit tests for modules/static_open.c: on a tree with symlinks of every
 * kind, the walk by hand gives the answer RESOLVE_BENEATH gives (and, where
 * the kernel has openat2, the same answer openat2 gives), and a folder
 * swapped for a symlink to outside during the walk never lets it out. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "static_open.h"

#define CR_TEST_FLAGS       (O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
#define CR_TEST_RACE_ROUNDS 20000

static char cr_test_tmp[PATH_MAX];
static char cr_test_root[PATH_MAX];
static int cr_test_rootfd = -1;

/* out (PATH_MAX bytes) = base/name; the tree is short, so it always fits. */
static void cr_test_path(char *out, const char *base, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", base, name);
    ck_assert(n > 0 && n < PATH_MAX);
}

/* tmp/NAME, written with the text. */
static void cr_test_file(const char *name, const char *text)
{
    char path[PATH_MAX];
    cr_test_path(path, cr_test_tmp, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

static void cr_test_dir(const char *name)
{
    char path[PATH_MAX];
    cr_test_path(path, cr_test_tmp, name);
    ck_assert_int_eq(mkdir(path, 0755), 0);
}

/* tmp/root/NAME -> target; "@/" at the start of target stands for tmp/. */
static void cr_test_link(const char *name, const char *target)
{
    char path[PATH_MAX], to[PATH_MAX];
    cr_test_path(path, cr_test_root, name);
    if (target[0] == '@')
        cr_test_path(to, cr_test_tmp, target + 2);
    ck_assert_int_eq(symlink(target[0] == '@' ? to : target, path), 0);
}

static void cr_test_tree(void)
{
    strcpy(cr_test_tmp, "/tmp/corral-static-open-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(cr_test_tmp));
    cr_test_path(cr_test_root, cr_test_tmp, "root");
    cr_test_dir("outside");
    cr_test_dir("root");
    cr_test_dir("root/sub");
    cr_test_dir("root/sub/deeper");
    cr_test_file("secret", "SECRET");
    cr_test_file("outside/x", "SECRET");
    cr_test_file("root/file", "file");
    cr_test_file("root/sub/a", "a");
    cr_test_file("root/sub/deeper/b", "b");
    char fifo[PATH_MAX];
    cr_test_path(fifo, cr_test_root, "fifo");
    ck_assert_int_eq(mkfifo(fifo, 0644), 0);
    cr_test_link("rel_link", "file");
    cr_test_link("sub/up_link", "../file");
    cr_test_link("sub/dir_link", "deeper");
    cr_test_link("sub/dir_slash", "deeper/");
    cr_test_link("sub/chain", "../rel_link");
    cr_test_link("dot_link", ".");
    cr_test_link("abs_link", "@/root/file");
    cr_test_link("abs_dir", "@/root/sub");
    cr_test_link("escape_rel", "../secret");
    cr_test_link("escape_dir", "..");
    cr_test_link("out_dir", "../outside");
    cr_test_link("sub/deep_escape", "../../secret");
    cr_test_link("reenter", "../root/file");
    cr_test_link("loop", "loop");
    cr_test_link("dangling", "missing");
    /* c0 -> c1 -> ... -> c40 -> file: c1 takes 40 links, c0 one too many. */
    for (int i = 0; i <= CR_STATIC_MAX_SYMLINKS; i++) {
        char name[16], target[16];
        snprintf(name, sizeof(name), "c%d", i);
        snprintf(target, sizeof(target), "c%d", i + 1);
        cr_test_link(name, i == CR_STATIC_MAX_SYMLINKS ? "file" : target);
    }
    cr_test_rootfd = open(cr_test_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(cr_test_rootfd, 0);
}

static void cr_test_untree(void)
{
    char cmd[PATH_MAX + 16];
    close(cr_test_rootfd);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cr_test_tmp);
    ck_assert_int_eq(system(cmd), 0);
}

typedef struct cr_test_case {
    const char *rel;
    int err;          /* 0: opens */
    const char *file; /* then: the file it opens, below tmp/root */
} cr_test_case;

static const cr_test_case cr_test_cases[] = {
    {".", 0, "."},
    {"file", 0, "file"},
    {"sub/", 0, "sub"},
    {"sub/../file", 0, "file"},
    {"rel_link", 0, "file"},
    {"sub/up_link", 0, "file"},
    {"sub/dir_link/b", 0, "sub/deeper/b"},
    {"sub/dir_slash", 0, "sub/deeper"},
    {"sub/dir_link/../a", 0, "sub/a"}, /* ".." of the folder the link reached */
    {"sub/dir_link/../../file", 0, "file"},
    {"sub/chain", 0, "file"},
    {"dot_link/dot_link/file", 0, "file"},
    {"c1", 0, "file"},
    {"fifo", 0, "fifo"},
    {"c0", ELOOP, NULL},
    {"loop", ELOOP, NULL},
    {"abs_link", EXDEV, NULL},
    {"abs_dir/a", EXDEV, NULL},
    {"escape_rel", EXDEV, NULL},
    {"escape_dir/secret", EXDEV, NULL},
    {"escape_dir/root/file", EXDEV, NULL},
    {"out_dir/x", EXDEV, NULL},
    {"sub/deep_escape", EXDEV, NULL},
    {"reenter", EXDEV, NULL},
    {"..", EXDEV, NULL},
    {"../root/file", EXDEV, NULL},
    {"sub/../../secret", EXDEV, NULL},
    {"missing", ENOENT, NULL},
    {"dangling", ENOENT, NULL},
    {"sub/missing/x", ENOENT, NULL},
    {"file/", ENOTDIR, NULL},
    {"file/x", ENOTDIR, NULL},
    {"rel_link/", ENOTDIR, NULL},
};

/* Checks one way of opening against the expected outcome. */
static void cr_test_expect(const char *how, int fd, int err, const cr_test_case *c)
{
    if (c->err != 0) {
        ck_assert_msg(fd < 0, "%s %s: opened, want %s", how, c->rel, strerror(c->err));
        ck_assert_msg(err == c->err, "%s %s: %s, want %s", how, c->rel, strerror(err),
                      strerror(c->err));
        return;
    }
    ck_assert_msg(fd >= 0, "%s %s: %s, want %s", how, c->rel, strerror(err), c->file);
    char path[PATH_MAX];
    cr_test_path(path, cr_test_root, c->file);
    struct stat got, want;
    ck_assert_int_eq(fstat(fd, &got), 0);
    ck_assert_int_eq(stat(path, &want), 0);
    ck_assert_msg(got.st_dev == want.st_dev && got.st_ino == want.st_ino,
                  "%s %s: opened another file than %s", how, c->rel, c->file);
    close(fd);
}

START_TEST(test_walk_and_openat2_agree)
{
    cr_test_tree();
    bool openat2 = cr_static_openat2_usable();
    for (size_t i = 0; i < sizeof(cr_test_cases) / sizeof(cr_test_cases[0]); i++) {
        const cr_test_case *c = &cr_test_cases[i];
        errno = 0;
        int fd = cr_static_walk_beneath(cr_test_rootfd, c->rel, CR_TEST_FLAGS);
        cr_test_expect("walk", fd, errno, c);
        if (!openat2)
            continue;
        errno = 0;
        fd = cr_static_openat2_beneath(cr_test_rootfd, c->rel, CR_TEST_FLAGS);
        cr_test_expect("openat2", fd, errno, c);
    }
    cr_test_untree();
}
END_TEST

START_TEST(test_walk_long_names)
{
    cr_test_tree();
    char name[NAME_MAX + 2];
    memset(name, 'a', NAME_MAX + 1);
    name[NAME_MAX + 1] = '\0';
    errno = 0;
    ck_assert_int_lt(cr_static_walk_beneath(cr_test_rootfd, name, CR_TEST_FLAGS), 0);
    ck_assert_int_eq(errno, ENAMETOOLONG);
    static char path[PATH_MAX + 2];
    memset(path, 'a', sizeof(path) - 1);
    errno = 0;
    ck_assert_int_lt(cr_static_walk_beneath(cr_test_rootfd, path, CR_TEST_FLAGS), 0);
    ck_assert_int_eq(errno, ENAMETOOLONG);
    cr_test_untree();
}
END_TEST

/* root/swap trades places, atomically and over and over, between a folder
 * holding x and a symlink to tmp/outside, which holds a secret x. */
static atomic_bool cr_test_racing;
static char cr_test_swap[PATH_MAX], cr_test_swap_alt[PATH_MAX];

static void *cr_test_swapper(void *arg)
{
    (void)arg;
    while (atomic_load(&cr_test_racing))
        if (renameat2(AT_FDCWD, cr_test_swap, AT_FDCWD, cr_test_swap_alt, RENAME_EXCHANGE) != 0)
            break;
    return NULL;
}

START_TEST(test_walk_swapped_folder_race)
{
    cr_test_tree();
    cr_test_dir("root/swap");
    cr_test_file("root/swap/x", "inside");
    cr_test_link("swap_alt", "../outside");
    cr_test_path(cr_test_swap, cr_test_root, "swap");
    cr_test_path(cr_test_swap_alt, cr_test_root, "swap_alt");
    if (renameat2(AT_FDCWD, cr_test_swap, AT_FDCWD, cr_test_swap_alt, RENAME_EXCHANGE) != 0) {
        fprintf(stderr, "# RENAME_EXCHANGE unsupported here (%s): race not tried\n",
                strerror(errno));
        cr_test_untree();
        return;
    }
    atomic_store(&cr_test_racing, true);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, cr_test_swapper, NULL), 0);
    int opened = 0;
    for (int i = 0; i < CR_TEST_RACE_ROUNDS; i++) {
        int fd = cr_static_walk_beneath(cr_test_rootfd, "swap/x", CR_TEST_FLAGS);
        if (fd < 0)
            continue;
        char buf[16] = {0};
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        ck_assert_int_gt(n, 0);
        ck_assert_msg(strcmp(buf, "inside") == 0, "round %d: read %s through the swap", i, buf);
        opened++;
    }
    atomic_store(&cr_test_racing, false);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_gt(opened, 0);
    cr_test_untree();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("static_open");
    TCase *tc = tcase_create("beneath");
    tcase_add_test(tc, test_walk_and_openat2_agree);
    tcase_add_test(tc, test_walk_long_names);
    tcase_add_test(tc, test_walk_swapped_folder_race);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
