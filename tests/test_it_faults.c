/* The guarantee under faults, against the real broker: workers killed with
 * SIGKILL mid-batch and restarted, partitions moving between workers, and a
 * lost local store. Each run ends with the audit of DESIGN.md section 6. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "it_support.h"
#include "pn_test.h"

const int pn_test_needs_broker = 1;

/* Small batches so that a kill lands in the middle of many of them. */
static const char *const small_batches[] = {"worker.batch.max.commands=500",
                                            "worker.commit.interval.ms=50",
                                            NULL};

static void expect_clean_audit(pn_it_t *it, uint64_t min_records) {
    pn_audit_report_t report;
    pn_it_audit(it, 180000, &report);
    PN_ASSERT_EQ_INT(report.violations, 0);
    PN_ASSERT(report.caught_up);
    PN_ASSERT_(report.command_records >= min_records, CU_FALSE,
               "%llu command records, expected at least %llu",
               (unsigned long long)report.command_records,
               (unsigned long long)min_records);
    PN_ASSERT(report.events > 0);
    PN_ASSERT(report.duplicate_outcomes > 0);
    pn_audit_report_print(&report, stdout);
    pn_audit_report_free(&report);
}

static void test_kill_nine_repeatedly(void) {
    pn_it_t it;
    PN_REQUIRE(pn_it_init(&it, "kill", 4, 4));
    const int n = 50000;
    pn_it_sender_t *sender = pn_it_send_async(&it, 11, 300, n, 4000);
    pid_t w = pn_it_worker_start(&it, "w1", small_batches);
    unsigned seed = (unsigned)time(NULL);
    printf("kill delays from seed %u\n", seed);
    int kills = 0;
    for (; kills < 12; kills++) {
        pn_it_sleep_ms(700 + (int)(rand_r(&seed) % 900));
        PN_ASSERT_EQ_INT(pn_it_worker_stop(w, SIGKILL), 128 + SIGKILL);
        w = pn_it_worker_start(&it, "w1", small_batches);
    }
    PN_ASSERT_EQ_INT(pn_it_send_wait(sender), 0);
    expect_clean_audit(&it, (uint64_t)n);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w, SIGTERM), 0);
    PN_ASSERT(kills >= 10);
    pn_it_cleanup(&it);
}

static void test_rebalance_three_workers(void) {
    pn_it_t it;
    PN_REQUIRE(pn_it_init(&it, "rebal", 6, 6));
    pn_it_sender_t *sender = pn_it_send_async(&it, 22, 300, 30000, 3000);
    pid_t w1 = pn_it_worker_start(&it, "w1", small_batches);
    pid_t w2 = pn_it_worker_start(&it, "w2", small_batches);
    pid_t w3 = pn_it_worker_start(&it, "w3", small_batches);
    pn_it_sleep_ms(4000);
    /* One dies for good; its partitions move once its session expires. */
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w2, SIGKILL), 128 + SIGKILL);
    pn_it_sleep_ms(3000);
    /* One joins; partitions move again. */
    pid_t w4 = pn_it_worker_start(&it, "w4", small_batches);
    PN_ASSERT_EQ_INT(pn_it_send_wait(sender), 0);
    expect_clean_audit(&it, 30000);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w1, SIGTERM), 0);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w3, SIGTERM), 0);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w4, SIGTERM), 0);
    pn_it_cleanup(&it);
}

static void test_lost_local_store(void) {
    pn_it_t it;
    PN_REQUIRE(pn_it_init(&it, "lost", 3, 3));
    pn_it_sender_t *sender = pn_it_send_async(&it, 33, 50, 5000, 0);
    PN_ASSERT_EQ_INT(pn_it_send_wait(sender), 0);
    pid_t w = pn_it_worker_start(&it, "w1", NULL);
    pn_audit_report_t report;
    pn_it_audit(&it, 60000, &report);
    PN_ASSERT_EQ_INT(report.violations, 0);
    uint64_t events_before = report.events;
    pn_audit_report_free(&report);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w, SIGTERM), 0);

    char store[4200];
    snprintf(store, sizeof store, "%s/store-w1", it.dir);
    pn_test_rmdir(store);
    struct stat st;
    PN_ASSERT(stat(store, &st) != 0);

    /* The worker rebuilds from the events topic and carries on: versions
     * continue where they were (the audit fails on a restart from 1). */
    w = pn_it_worker_start(&it, "w1", NULL);
    sender = pn_it_send_async(&it, 44, 50, 5000, 0);
    PN_ASSERT_EQ_INT(pn_it_send_wait(sender), 0);
    pn_it_audit(&it, 60000, &report);
    PN_ASSERT_EQ_INT(report.violations, 0);
    PN_ASSERT(report.events > events_before);
    pn_audit_report_free(&report);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w, SIGTERM), 0);
    pn_it_cleanup(&it);
}

static const pn_test_case_t cases[] = {
    {"SIGKILL mid-batch, repeatedly", test_kill_nine_repeatedly},
    {"three workers, one killed, one added", test_rebalance_three_workers},
    {"local store lost between runs", test_lost_local_store},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {{"faults", cases}, {NULL, NULL}};
