/* Runs the fuzz harness over stored inputs without libFuzzer, so `make
 * check` keeps every seed and past finding passing in a plain build. Each
 * argument is a file or a directory of files (not descended into). */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional, as under libFuzzer: one-time setup before the first input. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static char current[4096];

/* Names the input that crashed, since the harness itself cannot. */
static void on_crash(int sig)
{
    static const char msg[] = "fuzz replay: crashed on ";
    ssize_t rc = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    rc += write(STDERR_FILENO, current, strlen(current));
    rc += write(STDERR_FILENO, "\n", 1);
    (void)rc;
    signal(sig, SIG_DFL);
    raise(sig);
}

static int read_file(const char *path, uint8_t **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    while (buf != NULL) {
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap)
            break;
        uint8_t *bigger = realloc(buf, cap *= 2);
        if (bigger == NULL)
            free(buf);
        buf = bigger;
    }
    int err = ferror(f) || buf == NULL;
    fclose(f);
    if (err) {
        free(buf);
        return -1;
    }
    *data = buf;
    *size = len;
    return 0;
}

static int run_file(const char *path)
{
    uint8_t *data, *exact;
    size_t size;
    if (read_file(path, &data, &size) < 0) {
        fprintf(stderr, "fuzz replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    /* an exact-size copy, so a read past the input is caught as under libFuzzer */
    exact = malloc(size ? size : 1);
    if (exact == NULL) {
        free(data);
        return -1;
    }
    memcpy(exact, data, size);
    snprintf(current, sizeof(current), "%s", path);
    LLVMFuzzerTestOneInput(exact, size);
    free(exact);
    free(data);
    return 0;
}

static int run_dir(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "fuzz replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[4096];
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (run_file(path) < 0)
            rc = -1;
        else
            (*count)++;
    }
    closedir(d);
    return rc;
}

int main(int argc, char **argv)
{
    static const int sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        signal(sigs[i], on_crash);

    size_t count = 0;
    int failed = 0;
    if (LLVMFuzzerInitialize != NULL)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) < 0) {
            fprintf(stderr, "fuzz replay: %s: %s\n", argv[i], strerror(errno));
            failed = 1;
        } else if (S_ISDIR(st.st_mode)) {
            failed |= run_dir(argv[i], &count) < 0;
        } else if (run_file(argv[i]) < 0) {
            failed = 1;
        } else {
            count++;
        }
    }
    printf("fuzz replay: %zu inputs\n", count);
    if (count == 0) {
        fprintf(stderr, "fuzz replay: no inputs found\n");
        return EXIT_FAILURE;
    }
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
