/* The commit cadence of the worker's loop (src/commit_policy.h). */
#include <stdlib.h>

#include "commit_policy.h"
#include "pn_test.h"

#define INTERVAL 100

static void test_first_transaction_gets_an_interval(void) {
    PN_ASSERT_EQ_INT(pn_commit_deadline(5000, INTERVAL, 0, 3), 5100);
}

/* The records polled first arrived during the commit: counted from its
 * start, as Kafka Streams counts it. */
static void test_steady_load_counts_from_the_previous_start(void) {
    PN_ASSERT_EQ_INT(pn_commit_deadline(5030, INTERVAL, 5000, 25), 5100);
    /* A record without a timestamp is not taken for an old one. */
    PN_ASSERT_EQ_INT(pn_commit_deadline(5030, INTERVAL, 5000, -1), 5100);
}

/* Behind (an old record, or a commit that took longer than the interval)
 * or idle: a whole interval of work amortises the commit. */
static void test_behind_or_idle_gets_a_whole_interval(void) {
    PN_ASSERT_EQ_INT(pn_commit_deadline(5030, INTERVAL, 5000, 500), 5130);
    PN_ASSERT_EQ_INT(pn_commit_deadline(5152, INTERVAL, 5000, 20), 5252);
    PN_ASSERT_EQ_INT(pn_commit_deadline(9000, INTERVAL, 5000, 0), 9100);
}

/* Whatever the clocks: commit starts at least an interval apart, and no
 * transaction open longer than an interval. */
static void test_bounds_hold_for_any_timing(void) {
    unsigned seed = 7;
    for (int i = 0; i < 100000; i++) {
        int64_t start = 1 + rand_r(&seed) % 100000;
        int64_t now = start + rand_r(&seed) % 700;
        int64_t age = (int64_t)(rand_r(&seed) % 400) - 1;
        int64_t d = pn_commit_deadline(now, INTERVAL, start, age);
        PN_ASSERT(d >= start + INTERVAL);
        PN_ASSERT(d > now);
        PN_ASSERT(d <= now + INTERVAL);
    }
}

static const pn_test_case_t cases[] = {
    {"first transaction gets an interval",
     test_first_transaction_gets_an_interval},
    {"steady load counts from the previous start",
     test_steady_load_counts_from_the_previous_start},
    {"behind or idle gets a whole interval",
     test_behind_or_idle_gets_a_whole_interval},
    {"bounds hold for any timing", test_bounds_hold_for_any_timing},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {{"commit_policy", cases},
                                          {NULL, NULL}};
