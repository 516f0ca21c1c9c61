/* Shared CUnit runner: registers pn_test_suites[] of the linked test file,
 * runs them verbosely and exits non-zero on any failure. An optional
 * argument runs only the suite of that name. */
#define _XOPEN_SOURCE 700
#include <CUnit/Basic.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "pn_test.h"

char *pn_test_tmpdir(const char *tag) {
    const char *base = getenv("TMPDIR");
    char templ[4096];
    snprintf(templ, sizeof templ, "%s/panther-%s-XXXXXX",
             base && *base ? base : "/tmp", tag);
    char *dir = mkdtemp(templ);
    return dir ? strdup(dir) : NULL;
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void pn_test_rmdir(const char *path) {
    if (path)
        nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Integration test files define this as 1: without a broker (no
 * PN_TEST_BOOTSTRAP) they are reported to ctest as skipped. */
__attribute__((weak)) const int pn_test_needs_broker = 0;

/*
 * The watchdog: a case still running after PN_TEST_CASE_TIMEOUT_S seconds
 * (default 480, below ctest's timeouts) is named on stderr, the test file's
 * pn_test_on_hang shows what it knows (integration tests: the tails of
 * their processes' logs), and the run aborts. Without it a hung case is
 * killed by ctest with nothing printed but "Timeout".
 */
static unsigned case_timeout_s(void) {
    const char *v = getenv("PN_TEST_CASE_TIMEOUT_S");
    char *end;
    unsigned long s = v && *v ? strtoul(v, &end, 10) : 480;
    return v && *v && *end ? 480 : (unsigned)s;
}

/* Every thread's stack, through gdb when the machine has it (scripts/test
 * installs it): where the hung case waits. */
static void print_stacks(void) {
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "command -v gdb >/dev/null && gdb -p %ld -batch -nx "
             "-ex 'thread apply all bt 25' </dev/null 1>&2 2>/dev/null",
             (long)getpid());
    prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0); /* Yama */
    fflush(NULL);
    if (system(cmd) != 0)
        fprintf(stderr, "watchdog: no stacks (gdb not found or failed)\n");
}

static void *watchdog_main(void *arg) {
    unsigned limit = *(const unsigned *)arg;
    CU_pTest seen = NULL;
    unsigned running = 0;
    for (;;) {
        sleep(1);
        CU_pTest now = CU_get_current_test();
        running = now == seen ? running + 1 : 0;
        seen = now;
        if (!now || running < limit)
            continue;
        fprintf(stderr, "\nwatchdog: test case \"%s\" still running after "
                        "%u s; aborting\n", now->pName, running);
        print_stacks();
        if (pn_test_on_hang)
            pn_test_on_hang();
        fflush(NULL);
        abort();
    }
    return NULL;
}

/* Runs after every case, also one ended by a fatal assertion. */
static void after_case(void) {
    if (pn_test_after_case)
        pn_test_after_case();
}

int main(int argc, char **argv) {
    if (pn_test_before_main)
        pn_test_before_main();
    if (pn_test_needs_broker && !getenv("PN_TEST_BOOTSTRAP")) {
        fprintf(stderr, "skipped: PN_TEST_BOOTSTRAP is not set "
                        "(scripts/test starts a broker and sets it)\n");
        return 77;
    }
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    for (const pn_test_suite_t *s = pn_test_suites; s->name; s++) {
        if (argc > 1 && strcmp(argv[1], s->name) != 0)
            continue;
        CU_pSuite suite = CU_add_suite_with_setup_and_teardown(
            s->name, NULL, NULL, NULL, after_case);
        if (!suite)
            return 2;
        for (const pn_test_case_t *c = s->cases; c->name; c++)
            if ((argc <= 2 || strcmp(argv[2], c->name) == 0) &&
                !CU_add_test(suite, c->name, c->fn))
                return 2;
    }
    /* Unbuffered: a killed run still shows the case it was in. */
    setvbuf(stdout, NULL, _IONBF, 0);
    static unsigned limit;
    limit = case_timeout_s();
    pthread_t watchdog;
    if (limit && pthread_create(&watchdog, NULL, watchdog_main, &limit) == 0)
        pthread_detach(watchdog);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() +
                      CU_get_number_of_tests_failed();
    unsigned ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (ran == 0) {
        fprintf(stderr, "no test ran\n");
        return 1;
    }
    return failed ? 1 : 0;
}
