/* The worker against the real broker: the semantics table end to end,
 * dead letters, forwarding of misrouted commands, and start-up refusals. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "it_support.h"
#include "pn_test.h"

const int pn_test_needs_broker = 1;

typedef struct expect {
    pn_command_t cmd;
    pn_status_t status;
    pn_reason_t reason;
    int64_t version, on_hand, reserved;
} expect_t;

#define OK PN_STATUS_ACCEPTED
#define NO PN_STATUS_REJECTED
#define R(x) PN_REASON_##x
#define C(t, id, order, q) pn_it_cmd(PN_CMD_##t, id, order, "SKU-1", "DC-1", true, q)
#define CN(t, id, order) pn_it_cmd(PN_CMD_##t, id, order, "SKU-1", "DC-1", false, 0)

static void check_outcome(const pn_it_outcome_t *all, size_t n, const expect_t *e) {
    char id[300];
    snprintf(id, sizeof id, "%.*s", (int)e->cmd.id.len, e->cmd.id.ptr);
    const pn_outcome_record_t *o = pn_it_find_outcome(all, n, id, false);
    PN_ASSERT_(o != NULL, CU_FALSE, "no outcome for %s", id);
    if (!o)
        return;
    /* rec is pn_it_outcome_t's first member. */
    const pn_it_outcome_t *found = (const pn_it_outcome_t *)o;
    PN_ASSERT_(o->outcome.status == e->status && o->outcome.reason == e->reason,
               CU_FALSE, "%s: %s/%s, expected %s/%s", id,
               pn_status_name(o->outcome.status), pn_reason_name(o->outcome.reason),
               pn_status_name(e->status), pn_reason_name(e->reason));
    PN_ASSERT_(o->outcome.version == e->version && o->outcome.on_hand == e->on_hand &&
                   o->outcome.reserved == e->reserved &&
                   o->outcome.available == e->on_hand - e->reserved,
               CU_FALSE, "%s (command at %lld@%lld): v%lld %lld/%lld, expected "
               "v%lld %lld/%lld", id, (long long)found->source_partition,
               (long long)found->source_offset, (long long)o->outcome.version,
               (long long)o->outcome.on_hand, (long long)o->outcome.reserved,
               (long long)e->version, (long long)e->on_hand,
               (long long)e->reserved);
}

/* Every row and reason of DESIGN.md section 4, through Kafka. */
static void test_semantics_table(void) {
    pn_it_t it;
    PN_REQUIRE(pn_it_init(&it, "table", 3, 3));
    expect_t table[] = {
        {C(UPDATE, "u1", NULL, -1), NO, R(INVALID_QUANTITY), 0, 0, 0},
        {C(UPDATE, "u2", NULL, 10), OK, R(NONE), 1, 10, 0},
        {C(UPDATE, "u3", NULL, 10), OK, R(NONE), 1, 10, 0}, /* no event */
        {C(RESERVE, "r1", "o1", 0), NO, R(INVALID_QUANTITY), 1, 10, 0},
        {C(RESERVE, "r2", "o1", 11), NO, R(INSUFFICIENT_INVENTORY), 1, 10, 0},
        {C(RESERVE, "r3", "o1", 4), OK, R(NONE), 2, 10, 4},
        {C(RESERVE, "r4", "o2", 6), OK, R(NONE), 3, 10, 10},
        {C(RESERVE, "r5", "o3", 1), NO, R(INSUFFICIENT_INVENTORY), 3, 10, 10},
        {C(CANCEL, "c1", "o9", 1), NO, R(NO_RESERVATION), 3, 10, 10},
        {C(CANCEL, "c2", "o1", 0), NO, R(INVALID_QUANTITY), 3, 10, 10},
        {C(CANCEL, "c3", "o1", 5), NO, R(EXCEEDS_RESERVATION), 3, 10, 10},
        {C(CANCEL, "c4", "o1", 1), OK, R(NONE), 4, 10, 9},
        {CN(CANCEL, "c5", "o1"), OK, R(NONE), 5, 10, 6},
        {C(SHIP, "s1", "o1", 1), NO, R(NO_RESERVATION), 5, 10, 6},
        {C(SHIP, "s2", "o2", -3), NO, R(INVALID_QUANTITY), 5, 10, 6},
        {C(SHIP, "s3", "o2", 7), NO, R(EXCEEDS_RESERVATION), 5, 10, 6},
        {C(SHIP, "s4", "o2", 2), OK, R(NONE), 6, 8, 4},
        {C(UPDATE, "u4", NULL, 1), OK, R(NONE), 7, 1, 4}, /* available < 0 */
        {CN(SHIP, "s5", "o2"), OK, R(NONE), 8, 0, 0},    /* clamp at 0 */
        {pn_it_cmd(PN_CMD_RESERVE, "x1", "o1", "SKU|1", "DC-1", true, 1), NO,
         R(INVALID_COMMAND), 0, 0, 0},
        {pn_it_cmd(PN_CMD_RESERVE, "", "o1", "SKU-1", "DC-1", true, 1), NO,
         R(INVALID_COMMAND), 8, 0, 0},
    };
    size_t n = sizeof table / sizeof table[0];
    /* One at a time, each delivered before the next is sent: the rows
     * depend on their order, and a producer that retries a request (as on
     * a topic just created) may put a later record first. Seen once in CI:
     * u1 ran after u2, by the outcomes' source offsets or by the worker, the
     * run could not tell (the audit now checks the worker's side). */
    for (size_t i = 0; i < n; i++) {
        pn_it_send(&it, &table[i].cmd, false);
        pn_it_flush(&it);
    }
    /* A resend of an executed id is a duplicate with the original outcome. */
    pn_command_t again = C(RESERVE, "r3", "o1", 4);
    pn_it_send(&it, &again, false);
    pn_it_flush(&it);

    pid_t w = pn_it_worker_start(&it, "w1", NULL);
    pn_audit_report_t report;
    pn_it_audit(&it, 60000, &report);
    PN_ASSERT_EQ_INT(report.violations, 0);
    PN_ASSERT_EQ_INT(report.outcomes, n + 1);
    PN_ASSERT_EQ_INT(report.events, 8);
    pn_audit_report_free(&report);

    pn_it_outcome_t *all;
    size_t n_out = pn_it_read_outcomes(&it, &all);
    for (size_t i = 0; i < n; i++)
        if (table[i].cmd.id.len)
            check_outcome(all, n_out, &table[i]);
    const pn_outcome_record_t *dup = pn_it_find_outcome(all, n_out, "r3", true);
    PN_ASSERT(dup != NULL);
    if (dup) {
        PN_ASSERT_EQ_INT(dup->outcome.version, 2);
        PN_ASSERT_EQ_INT(dup->outcome.reserved, 4);
    }
    pn_it_free_outcomes(all, n_out);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w, SIGTERM), 0);
    pn_it_cleanup(&it);
}

/* Garbage goes to the dead-letter topic; a command on the wrong partition
 * is forwarded and executed exactly once. */
static void test_dead_letters_and_forwarding(void) {
    pn_it_t it;
    PN_REQUIRE(pn_it_init(&it, "dlt", 4, 4));
    pn_it_send_raw(&it, "\x07garbage", 8);
    pn_it_send_raw(&it, "\x00\x00\x00\x00\x09zz", 7);
    char ids[40][16], skus[40][16];
    for (int i = 0; i < 40; i++) {
        snprintf(ids[i], sizeof ids[i], "m%d", i);
        snprintf(skus[i], sizeof skus[i], "S%d", i);
        pn_command_t c = pn_it_cmd(PN_CMD_UPDATE, ids[i], NULL, skus[i], "N",
                                   true, 5 + i);
        pn_it_send(&it, &c, i % 2 == 0); /* half of them misrouted */
    }
    /* And 40 from a producer left on librdkafka's default partitioner:
     * some land on the wrong partition by its CRC32. */
    char ids2[40][16], skus2[40][16];
    for (int i = 0; i < 40; i++) {
        snprintf(ids2[i], sizeof ids2[i], "d%d", i);
        snprintf(skus2[i], sizeof skus2[i], "D%d", i);
        pn_command_t c = pn_it_cmd(PN_CMD_UPDATE, ids2[i], NULL, skus2[i], "N",
                                   true, 5 + i);
        pn_it_send_default_partitioner(&it, &c);
    }
    pn_it_flush(&it);
    pid_t w = pn_it_worker_start(&it, "w1", NULL);
    pn_audit_report_t report;
    pn_it_audit(&it, 60000, &report);
    PN_ASSERT_EQ_INT(report.violations, 0);
    PN_ASSERT_EQ_INT(report.dead_letters, 2);
    PN_ASSERT_EQ_INT(report.undecodable, 2);
    PN_ASSERT(report.misrouted > 20); /* 20 by hand, some by the CRC32 */
    PN_ASSERT_EQ_INT(report.forwarded_copies, report.misrouted);
    PN_ASSERT_EQ_INT(report.outcomes, 80);
    PN_ASSERT_EQ_INT(report.events, 80);
    pn_audit_report_free(&report);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w, SIGTERM), 0);
    pn_it_cleanup(&it);
}

/* Records keep arriving over many commit intervals: the worker commits on
 * the interval, not only when a batch is full or when it stops. */
static void test_commits_on_cadence(void) {
    pn_it_t it;
    PN_REQUIRE(pn_it_init(&it, "cadence", 2, 2));
    const char *const sets[] = {"worker.commit.interval.ms=50",
                                "worker.batch.max.commands=1000000", NULL};
    pid_t w = pn_it_worker_start(&it, "w1", sets);
    /* Ready first: a worker that joins late finds the load as a backlog,
     * which it rightly takes in a few full transactions (CI saw 7). */
    PN_ASSERT(pn_it_worker_wait_ready(&it, "w1", 60000));
    /* About 4 s of load: some 80 commit intervals. */
    pn_it_sender_t *sender = pn_it_send_async(&it, 5, 40, 4000, 1000);
    PN_ASSERT_EQ_INT(pn_it_send_wait(sender), 0);
    pn_audit_report_t report;
    pn_it_audit(&it, 60000, &report);
    PN_ASSERT_EQ_INT(report.violations, 0);
    PN_ASSERT(report.caught_up);
    PN_ASSERT_EQ_INT(report.command_records, 4000);
    pn_audit_report_free(&report);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w, SIGTERM), 0);
    pn_it_worker_log_t log;
    pn_it_worker_log(&it, "w1", &log);
    PN_ASSERT(log.stopped);
    PN_ASSERT(log.commands >= 4000); /* more if a batch was retried */
    /* One transaction for everything would mean no cadence at all. */
    PN_ASSERT_(log.commits >= 8, CU_FALSE, "%llu commits for 4000 commands",
               (unsigned long long)log.commits);
    pn_it_cleanup(&it);
}

/* A full batch commits at once, whatever the interval. */
static void test_commits_full_batches(void) {
    pn_it_t it;
    PN_REQUIRE(pn_it_init(&it, "fullbatch", 2, 2));
    pn_it_sender_t *sender = pn_it_send_async(&it, 6, 40, 1000, 0);
    PN_ASSERT_EQ_INT(pn_it_send_wait(sender), 0);
    const char *const sets[] = {"worker.commit.interval.ms=60000",
                                "worker.batch.max.commands=100",
                                "kafka.transaction.timeout.ms=120000", NULL};
    pid_t w = pn_it_worker_start(&it, "w1", sets);
    pn_audit_report_t report;
    pn_it_audit(&it, 50000, &report); /* well before the interval ends */
    PN_ASSERT_EQ_INT(report.violations, 0);
    PN_ASSERT(report.caught_up);
    PN_ASSERT_EQ_INT(report.command_records, 1000);
    pn_audit_report_free(&report);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w, SIGTERM), 0);
    pn_it_worker_log_t log;
    pn_it_worker_log(&it, "w1", &log);
    PN_ASSERT(log.stopped);
    PN_ASSERT_EQ_INT(log.commits, 10);
    pn_it_cleanup(&it);
}

/* A second worker joins while the first has a transaction open (a long
 * commit interval under continuous load): the first aborts it on the
 * revocation, and every command still has exactly one outcome. */
static void test_rebalance_with_open_transaction(void) {
    pn_it_t it;
    PN_REQUIRE(pn_it_init(&it, "openrebal", 4, 4));
    const char *const sets[] = {"worker.commit.interval.ms=8000",
                                "kafka.transaction.timeout.ms=60000", NULL};
    pid_t w1 = pn_it_worker_start(&it, "w1", sets);
    pn_it_sender_t *sender = pn_it_send_async(&it, 7, 200, 6000, 500);
    pn_it_sleep_ms(3000);
    pid_t w2 = pn_it_worker_start(&it, "w2", sets);
    PN_ASSERT_EQ_INT(pn_it_send_wait(sender), 0);
    pn_audit_report_t report;
    pn_it_audit(&it, 120000, &report);
    PN_ASSERT_EQ_INT(report.violations, 0);
    PN_ASSERT(report.caught_up);
    PN_ASSERT_EQ_INT(report.command_records, 6000);
    pn_audit_report_free(&report);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w1, SIGTERM), 0);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w2, SIGTERM), 0);
    pn_it_worker_log_t log;
    pn_it_worker_log(&it, "w1", &log);
    PN_ASSERT(log.stopped);
    PN_ASSERT(log.revocation_aborts >= 1);
    PN_ASSERT(log.aborts >= log.revocation_aborts);
    pn_it_cleanup(&it);
}

/* Commands and events with different partition counts: refused, exit 2. */
static void test_refuses_uncopartitioned_topics(void) {
    pn_it_t it;
    PN_REQUIRE(pn_it_init(&it, "copart", 3, 2));
    pid_t w = pn_it_worker_start(&it, "w1", NULL);
    int status = pn_it_worker_stop(w, 0); /* wait for it to exit by itself */
    PN_ASSERT_EQ_INT(status, 2);
    pn_it_cleanup(&it);
}

static void test_bad_configuration_exits_2(void) {
    pn_it_t it;
    PN_REQUIRE(pn_it_init(&it, "badcfg", 1, 1));
    const char *bad_value[] = {"worker", "--set", "worker.batch.max.commands=zero",
                               NULL};
    PN_ASSERT_EQ_INT(pn_it_run_panther(&it, bad_value), 2);
    const char *unknown[] = {"worker", "--set", "worker.batchsize=10", NULL};
    PN_ASSERT_EQ_INT(pn_it_run_panther(&it, unknown), 2);
    const char *bad_flag[] = {"worker", "--no-such-flag", NULL};
    PN_ASSERT_EQ_INT(pn_it_run_panther(&it, bad_flag), 2);
    const char *missing_file[] = {"worker", "--config", "/nonexistent.properties",
                                  NULL};
    PN_ASSERT_EQ_INT(pn_it_run_panther(&it, missing_file), 2);
    pn_it_cleanup(&it);
}

/* Event retention runs inside the worker: with a retention of 1 ms every
 * event a snapshot covers goes from RocksDB, and the audit (which reads
 * the topics, the record) still passes. */
static void test_worker_expires_events(void) {
    pn_it_t it;
    PN_REQUIRE(pn_it_init(&it, "retention", 2, 2));
    pn_it_sender_t *sender = pn_it_send_async(&it, 9, 20, 2000, 0);
    PN_ASSERT_EQ_INT(pn_it_send_wait(sender), 0);
    const char *const sets[] = {"store.event.retention.ms=1", NULL};
    pid_t w = pn_it_worker_start(&it, "w1", sets);
    pn_audit_report_t report;
    pn_it_audit(&it, 60000, &report);
    PN_ASSERT_EQ_INT(report.violations, 0);
    PN_ASSERT(report.caught_up);
    pn_audit_report_free(&report);
    /* Retention steps run once a second between transactions. */
    pn_it_sleep_ms(2500);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w, SIGTERM), 0);
    pn_it_worker_log_t log;
    pn_it_worker_log(&it, "w1", &log);
    PN_ASSERT(log.stopped);
    PN_ASSERT(log.events_expired > 0);
    pn_it_cleanup(&it);
}

static const pn_test_case_t cases[] = {
    {"semantics table end to end", test_semantics_table},
    {"dead letters and forwarding", test_dead_letters_and_forwarding},
    {"commits on the interval under continuous load", test_commits_on_cadence},
    {"a full batch commits at once", test_commits_full_batches},
    {"the worker expires events past their retention", test_worker_expires_events},
    {"rebalance while a transaction is open",
     test_rebalance_with_open_transaction},
    {"refuses topics that are not co-partitioned",
     test_refuses_uncopartitioned_topics},
    {"bad configuration exits 2", test_bad_configuration_exits_2},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {{"worker", cases}, {NULL, NULL}};
