/* Unit tests for what children can and cannot change in the scoreboard
 * (core/scoreboard.c: a sealed child cannot write the master's part, nor
 * make it writable again) and for the master's own record of its children
 * (core/child_table.c), which it trusts instead. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child_table.h"
#include "corral/mpm.h"
#include "scoreboard.h"

#define T_PROCESSES 6
#define T_THREADS   3

/* What a sealed child finds; each failed expectation exits with its own
 * status so that the parent's assertion names it. */
enum {
    T_OK,
    T_SEAL_FAILED,
    T_HEADER_WRITABLE_BY_READ,
    T_MPROTECT_ALLOWED,
    T_PROC_MEM_WRITABLE,
    T_PROCESS_SLOT_WRITABLE,
};

#define T_DIR_TEMPLATE "/tmp/cr-test-scoreboard-XXXXXX"

static char t_dir[sizeof(T_DIR_TEMPLATE)];
static char t_path[sizeof(t_dir) + 32];

static void t_create(cr_scoreboard *sb)
{
    memcpy(t_dir, T_DIR_TEMPLATE, sizeof(t_dir));
    ck_assert_ptr_nonnull(mkdtemp(t_dir));
    snprintf(t_path, sizeof(t_path), "%s/corral.scoreboard", t_dir);
    ck_assert_int_eq(cr_scoreboard_create(sb, t_path, T_PROCESSES, T_THREADS, "test"), 0);
}

static void t_destroy(cr_scoreboard *sb)
{
    cr_scoreboard_destroy(sb);
    ck_assert_int_eq(rmdir(t_dir), 0);
}

/* read(2) into memory the process cannot write fails with EFAULT instead of
 * crashing it: a probe that works under the sanitizers' signal handlers. */
static bool t_writable_by_read(void *at)
{
    int p[2];
    bool ok;

    if (pipe(p) != 0 || write(p[1], "x", 1) != 1)
        return true; /* cannot tell: count it as a failure */
    ok = read(p[0], at, 1) == 1;
    close(p[0]);
    close(p[1]);
    return ok;
}

/* A debugger's way around page protections; refused for a shared mapping
 * of a file opened read-only. */
static bool t_writable_by_proc_mem(void *at)
{
    int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
    bool ok;

    if (fd < 0)
        return false; /* no /proc: nothing to go around with */
    ok = pwrite(fd, "x", 1, (off_t)(uintptr_t)at) == 1;
    close(fd);
    return ok;
}

static int t_sealed_child(cr_scoreboard *sb)
{
    if (cr_scoreboard_seal(sb) != 0)
        return T_SEAL_FAILED;
    if (t_writable_by_read(sb->hdr->version))
        return T_HEADER_WRITABLE_BY_READ;
    if (mprotect(sb->map, sb->master_size, PROT_READ | PROT_WRITE) == 0 || errno != EACCES)
        return T_MPROTECT_ALLOWED;
    if (t_writable_by_proc_mem((void *)&sb->processes[1].pid))
        return T_PROC_MEM_WRITABLE;
    if (t_writable_by_read((void *)&sb->processes[T_PROCESSES - 1]))
        return T_PROCESS_SLOT_WRITABLE;
    /* What the child reports of itself stays writable, and reaches the
     * master. */
    sb->children[2].graceful = 1;
    cr_scoreboard_worker(sb, 2, 1)->state = CR_SLOT_READY;
    return T_OK;
}

START_TEST(test_sealed_child_cannot_write_master_part)
{
    cr_scoreboard sb;
    int status;
    pid_t pid;

    t_create(&sb);
    ck_assert_uint_eq(sb.master_size % (size_t)sysconf(_SC_PAGESIZE), 0);
    ck_assert_ptr_eq((char *)sb.children, (char *)sb.map + sb.master_size);
    ck_assert((char *)(sb.processes + T_PROCESSES) <= (char *)sb.children);
    ck_assert((char *)sb.workers >= (char *)(sb.children + T_PROCESSES));
    cr_scoreboard_claim(&sb, 2, 4242, 1, T_THREADS);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(t_sealed_child(&sb));
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), T_OK);
    ck_assert_int_eq(sb.children[2].graceful, 1);
    ck_assert_int_eq(cr_scoreboard_worker(&sb, 2, 1)->state, CR_SLOT_READY);
    ck_assert_int_eq(sb.processes[2].pid, 4242);
    ck_assert_int_eq(sb.processes[1].pid, 0);
    /* The master's own view stays writable. */
    sb.processes[1].pid = 7;
    ck_assert_int_eq(sb.processes[1].pid, 7);
    t_destroy(&sb);
}
END_TEST

START_TEST(test_attach_reads_every_part)
{
    cr_scoreboard sb, seen;
    char err[256];

    t_create(&sb);
    cr_scoreboard_claim(&sb, 3, 1234, 5, T_THREADS);
    sb.children[3].graceful = 1;
    ck_assert_int_eq(cr_scoreboard_attach(&seen, t_path, err, sizeof(err)), 0);
    ck_assert_uint_eq(seen.process_limit, T_PROCESSES);
    ck_assert_uint_eq(seen.thread_limit, T_THREADS);
    ck_assert_uint_eq(seen.master_size, sb.master_size);
    ck_assert_int_eq(seen.processes[3].pid, 1234);
    ck_assert_uint_eq(seen.processes[3].generation, 5);
    ck_assert_int_eq(seen.children[3].graceful, 1);
    ck_assert_int_eq(cr_scoreboard_worker(&seen, 3, 0)->state, CR_SLOT_STARTING);
    /* Attached, not created: nothing to seal with. */
    ck_assert_int_eq(cr_scoreboard_seal(&seen), -1);
    cr_scoreboard_destroy(&seen);
    t_destroy(&sb);
}
END_TEST

START_TEST(test_child_table_knows_only_its_children)
{
    cr_child_table t;

    ck_assert_int_eq(cr_child_table_init(&t, 3), 0);
    ck_assert_int_eq(cr_child_table_free_slot(&t), 0);
    cr_child_table_add(&t, 0, 100, 1, 10);
    cr_child_table_add(&t, 1, 101, 1, 10);
    ck_assert_int_eq(cr_child_table_free_slot(&t), 2);
    ck_assert_int_eq(cr_child_table_find(&t, 101), 1);
    ck_assert_int_eq(cr_child_table_find(&t, 999), -1);
    /* A free slot's pid 0, or the -1 of kill(-1), is nobody's. */
    ck_assert_int_eq(cr_child_table_find(&t, 0), -1);
    ck_assert_int_eq(cr_child_table_find(&t, -1), -1);
    cr_child_table_remove(&t, 0);
    ck_assert_int_eq(cr_child_table_find(&t, 100), -1);
    ck_assert_int_eq(cr_child_table_free_slot(&t), 0);
    cr_child_table_add(&t, 0, 102, 2, 20);
    cr_child_table_add(&t, 2, 103, 2, 20);
    ck_assert_int_eq(cr_child_table_free_slot(&t), -1);
    ck_assert_uint_eq(t.slots[2].generation, 2);
    ck_assert(!t.slots[2].stopping);
    cr_child_table_free(&t);
    ck_assert_uint_eq(t.count, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("scoreboard");
    TCase *tc = tcase_create("trust");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_sealed_child_cannot_write_master_part);
    tcase_add_test(tc, test_attach_reads_every_part);
    tcase_add_test(tc, test_child_table_knows_only_its_children);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
