/* The guarantee under faults, against the real broker: workers killed with
 * SIGKILL mid-batch and restarted, partitions moving between workers, a
 * previous owner's transaction still open when a partition is taken over,
 * and a lost local store. Most runs end with the audit of DESIGN.md
 * section 6. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "it_support.h"
#include "panther/kafka.h"
#include "panther/partition.h"
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

/* The outcome of the command with this id, waiting up to wait_ms. */
static bool wait_outcome(pn_it_t *it, const char *id, pn_outcome_t *out,
                         int wait_ms) {
    for (int64_t end = pn_mono_ms() + wait_ms;;) {
        pn_it_outcome_t *all;
        size_t n = pn_it_read_outcomes(it, &all);
        const pn_outcome_record_t *o = pn_it_find_outcome(all, n, id, false);
        if (o)
            *out = o->outcome;
        pn_it_free_outcomes(all, n);
        if (o)
            return true;
        if (pn_mono_ms() >= end)
            return false;
        pn_it_sleep_ms(500);
    }
}

/* A transactional producer that writes the stream's next event to the
 * events topic, as the partition's previous owner would, and leaves its
 * transaction open. */
static rd_kafka_t *zombie_open(pn_it_t *it, const char *name, const char *sku,
                               const char *node, int64_t version,
                               int32_t on_hand, int32_t previous) {
    char err[512], txn_id[200];
    snprintf(txn_id, sizeof txn_id, "%s-%s", it->prefix, name);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", it->bootstrap, err, sizeof err);
    rd_kafka_conf_set(conf, "transactional.id", txn_id, err, sizeof err);
    rd_kafka_conf_set(conf, "transaction.timeout.ms", "60000", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    PN_REQUIRE(rk != NULL);
    rd_kafka_error_t *e = rd_kafka_init_transactions(rk, 30000);
    PN_REQUIRE(e == NULL);
    PN_REQUIRE(rd_kafka_begin_transaction(rk) == NULL);
    pn_event_t ev = {.type = PN_EVT_UPDATED, .sku_id = pn_str_c(sku),
                     .node_id = pn_str_c(node), .version = version,
                     .command_id = pn_str_c("zombie-update"),
                     .by = pn_str_c("it"), .at_ms = 1767225600000LL,
                     .order_id = PN_STR_NULL, .quantity = on_hand,
                     .previous_quantity = previous};
    pn_buf_t value;
    pn_buf_init(&value, 1 << 20);
    PN_REQUIRE(pn_codec_encode_event(it->codec, &ev, &value) == PN_ERR_OK);
    char key[PN_STREAM_KEY_MAX];
    size_t key_len = pn_stream_key(ev.sku_id, ev.node_id, key, sizeof key);
    int32_t n = 0;
    PN_REQUIRE(pn_kafka_partition_count(rk, it->events, 10000, &n, err,
                                        sizeof err) == PN_ERR_OK);
    PN_REQUIRE(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(it->events),
                                 RD_KAFKA_V_PARTITION(
                                     pn_partition_for_key(key, key_len, n)),
                                 RD_KAFKA_V_KEY(key, key_len),
                                 RD_KAFKA_V_VALUE(value.data, value.len),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR_NO_ERROR);
    PN_REQUIRE(rd_kafka_flush(rk, 30000) == RD_KAFKA_RESP_ERR_NO_ERROR);
    pn_buf_free(&value);
    return rk;
}

/* A previous owner of the partition, cut off in the middle of a commit,
 * ends its transaction after this worker was assigned the partition: the
 * worker must not run a command before that transaction is over, and then
 * must see its events if it committed (otherwise it would reuse the version
 * the zombie wrote) and carry on from its own state if it was aborted. */
static void zombie_case(bool commits) {
    pn_it_t it;
    PN_REQUIRE(pn_it_init(&it, commits ? "zombiec" : "zombiea", 1, 1));
    pn_command_t stock = pn_it_cmd(PN_CMD_UPDATE, "z-stock", NULL, "SKU-Z",
                                   "DC-Z", true, 10);
    pn_it_send(&it, &stock, false);
    pn_it_flush(&it);
    pid_t w = pn_it_worker_start(&it, "w1", NULL);
    pn_outcome_t o = {0};
    PN_REQUIRE(wait_outcome(&it, "z-stock", &o, 60000));
    PN_ASSERT_EQ_INT(o.version, 1);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w, SIGTERM), 0);

    rd_kafka_t *zombie = zombie_open(&it, "zombie", "SKU-Z", "DC-Z", 2, 7, 10);
    w = pn_it_worker_start(&it, "w1", NULL);
    pn_command_t reserve = pn_it_cmd(PN_CMD_RESERVE, "z-reserve", "o-z",
                                     "SKU-Z", "DC-Z", true, 1);
    pn_it_send(&it, &reserve, false);
    pn_it_flush(&it);
    /* While the transaction is open, the command waits. */
    PN_ASSERT(!wait_outcome(&it, "z-reserve", &o, 4000));
    rd_kafka_error_t *e = commits ? rd_kafka_commit_transaction(zombie, 30000)
                                  : rd_kafka_abort_transaction(zombie, 30000);
    PN_ASSERT(e == NULL);
    rd_kafka_destroy(zombie);
    PN_REQUIRE(wait_outcome(&it, "z-reserve", &o, 60000));
    PN_ASSERT_EQ_INT(o.status, PN_STATUS_ACCEPTED);
    PN_ASSERT_EQ_INT(o.version, commits ? 3 : 2);
    PN_ASSERT_EQ_INT(o.on_hand, commits ? 7 : 10);
    PN_ASSERT_EQ_INT(o.reserved, 1);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w, SIGTERM), 0);
    pn_it_cleanup(&it);
}

static void test_restore_waits_for_a_zombie_that_commits(void) {
    zombie_case(true);
}

static void test_restore_waits_for_a_zombie_that_aborts(void) {
    zombie_case(false);
}

/* The same wait with two partitions, while the other one reaches its end a
 * second time: a transaction there commits after the worker first got to
 * its end. Each partition counts once; a restore that counted ends, not
 * partitions, finished here with the zombie's still open. */
static void test_restore_counts_each_partition_once(void) {
    pn_it_t it;
    PN_REQUIRE(pn_it_init(&it, "zombie2", 2, 2));
    /* SKU-Z|DC-Z and SKU-B|DC-Z lie on different ones of 2 partitions. */
    const char *z = "SKU-Z", *other = "SKU-B";
    PN_REQUIRE(pn_partition_for_key("SKU-Z|DC-Z", 10, 2) !=
               pn_partition_for_key("SKU-B|DC-Z", 10, 2));
    pn_command_t stock_z = pn_it_cmd(PN_CMD_UPDATE, "z-stock", NULL, z, "DC-Z",
                                     true, 10);
    pn_command_t stock_o = pn_it_cmd(PN_CMD_UPDATE, "o-stock", NULL, other,
                                     "DC-Z", true, 10);
    pn_it_send(&it, &stock_z, false);
    pn_it_send(&it, &stock_o, false);
    pn_it_flush(&it);
    pid_t w = pn_it_worker_start(&it, "w1", NULL);
    pn_outcome_t o = {0};
    PN_REQUIRE(wait_outcome(&it, "z-stock", &o, 60000));
    PN_REQUIRE(wait_outcome(&it, "o-stock", &o, 60000));
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w, SIGTERM), 0);

    rd_kafka_t *zombie = zombie_open(&it, "zombie", z, "DC-Z", 2, 7, 10);
    w = pn_it_worker_start(&it, "w1", NULL);
    char log[4200];
    snprintf(log, sizeof log, "%s/w1.log", it.dir);
    const char *waiting[] = {"restore waiting for an open transaction", NULL};
    for (int i = 0; i < 300 && pn_it_log_count(log, waiting) == 0; i++)
        pn_it_sleep_ms(100);
    PN_ASSERT(pn_it_log_count(log, waiting) > 0);
    pn_it_sleep_ms(1000); /* the other partition is at its end by now */
    rd_kafka_t *late = zombie_open(&it, "late", other, "DC-Z", 2, 8, 10);
    PN_ASSERT(rd_kafka_commit_transaction(late, 30000) == NULL);
    rd_kafka_destroy(late);

    pn_command_t reserve = pn_it_cmd(PN_CMD_RESERVE, "z-reserve", "o-z", z,
                                     "DC-Z", true, 1);
    pn_it_send(&it, &reserve, false);
    pn_it_flush(&it);
    PN_ASSERT(!wait_outcome(&it, "z-reserve", &o, 4000));
    PN_ASSERT(rd_kafka_commit_transaction(zombie, 30000) == NULL);
    rd_kafka_destroy(zombie);
    PN_REQUIRE(wait_outcome(&it, "z-reserve", &o, 60000));
    PN_ASSERT_EQ_INT(o.version, 3);
    PN_ASSERT_EQ_INT(o.on_hand, 7);
    pn_audit_report_t report;
    pn_it_audit(&it, 60000, &report);
    PN_ASSERT_EQ_INT(report.violations, 0);
    pn_audit_report_free(&report);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w, SIGTERM), 0);
    pn_it_cleanup(&it);
}

static const pn_test_case_t cases[] = {
    {"SIGKILL mid-batch, repeatedly", test_kill_nine_repeatedly},
    {"three workers, one killed, one added", test_rebalance_three_workers},
    {"restore waits for a zombie that commits",
     test_restore_waits_for_a_zombie_that_commits},
    {"restore waits for a zombie that aborts",
     test_restore_waits_for_a_zombie_that_aborts},
    {"restore counts each partition once",
     test_restore_counts_each_partition_once},
    {"local store lost between runs", test_lost_local_store},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {{"faults", cases}, {NULL, NULL}};
