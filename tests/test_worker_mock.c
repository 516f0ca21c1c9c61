/*
 * The worker against librdkafka's mock cluster, for faults a real broker
 * cannot be made to show on cue: a transaction that fails, then a group
 * coordinator that cannot say where the group's partitions were committed.
 * The worker must rewind to the committed offsets or stop; resuming from
 * anywhere else would skip commands or run them twice.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "panther/buf.h"
#include "panther/codec.h"
#include "panther/partition.h"
#include "panther/worker.h"
#include "pn_test.h"

#define T_COMMANDS "inventory.commands"
#define T_EVENTS "inventory.events"
#define T_OUTCOMES "inventory.outcomes"
#define T_DLT "inventory.commands.DLT"

/* Kafka protocol API keys (librdkafka does not install its table). */
enum { API_OFFSET_FETCH = 9, API_ADD_OFFSETS_TO_TXN = 25 };

typedef struct harness {
    rd_kafka_t *host;
    rd_kafka_mock_cluster_t *mock;
    char bootstrap[512];
    pn_kafka_prop_t kafka[2];
    rd_kafka_t *producer;
    pn_codec_t *codec;
    char *dir;
    pn_worker_t *worker;
    pthread_t thread;
    pn_err_t run_err;
    char run_why[512];
    atomic_bool exited;
} harness_t;

static void *worker_main(void *arg) {
    harness_t *h = arg;
    h->run_err = pn_worker_run(h->worker, h->run_why, sizeof h->run_why);
    atomic_store(&h->exited, true);
    return NULL;
}

static void harness_start(harness_t *h) {
    memset(h, 0, sizeof *h);
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", why, sizeof why);
    h->host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    PN_REQUIRE(h->host != NULL);
    h->mock = rd_kafka_mock_cluster_new(h->host, 1);
    PN_REQUIRE(h->mock != NULL);
    snprintf(h->bootstrap, sizeof h->bootstrap, "%s",
             rd_kafka_mock_cluster_bootstraps(h->mock));
    const char *topics[] = {T_COMMANDS, T_EVENTS, T_OUTCOMES, T_DLT};
    for (size_t i = 0; i < 4; i++) {
        usleep(2000); /* see demo.c: the mock thread can miss a wake-up */
        PN_REQUIRE(rd_kafka_mock_topic_create(h->mock, topics[i], 1, 1) == 0);
    }
    h->kafka[0] = (pn_kafka_prop_t){"bootstrap.servers", h->bootstrap};
    h->kafka[1] = (pn_kafka_prop_t){"fetch.wait.max.ms", "20"};

    conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", h->bootstrap, why, sizeof why);
    h->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    PN_REQUIRE(h->producer != NULL);
    pn_codec_config_t cc = {0};
    PN_REQUIRE(pn_codec_new(&cc, &h->codec, why, sizeof why) == PN_ERR_OK);
    h->dir = pn_test_tmpdir("worker-mock");
    PN_REQUIRE(h->dir != NULL);

    pn_worker_options_t wo = {
        .commands_topic = T_COMMANDS,
        .events_topic = T_EVENTS,
        .outcomes_topic = T_OUTCOMES,
        .dead_letter_topic = T_DLT,
        .group_id = "workers",
        .instance_id = "w1",
        .exactly_once = true,
        .commit_interval_ms = 100,
        .batch_max_commands = 1000,
        .kafka = h->kafka,
        .n_kafka = 2,
        .store = {.path = h->dir},
    };
    PN_REQUIRE(pn_worker_new(&wo, &h->worker, why, sizeof why) == PN_ERR_OK);
    PN_REQUIRE(pthread_create(&h->thread, NULL, worker_main, h) == 0);
}

static void harness_stop(harness_t *h) {
    pn_worker_stop(h->worker);
    pthread_join(h->thread, NULL);
    pn_worker_free(h->worker);
    pn_codec_free(h->codec);
    rd_kafka_destroy(h->producer);
    rd_kafka_mock_cluster_destroy(h->mock);
    rd_kafka_destroy(h->host);
    pn_test_rmdir(h->dir);
    free(h->dir);
}

static void send_update(harness_t *h, int i) {
    char id[32];
    snprintf(id, sizeof id, "u%d", i);
    pn_command_t cmd = {.type = PN_CMD_UPDATE, .id = pn_str_c(id),
                        .sku_id = pn_str_c("SKU-1"), .node_id = pn_str_c("N"),
                        .by = pn_str_c("test"), .at_ms = 1767225600000LL,
                        .has_quantity = true, .quantity = i};
    pn_buf_t buf;
    pn_buf_init(&buf, 1 << 16);
    PN_REQUIRE(pn_codec_encode_command(h->codec, &cmd, PN_FRAMING_PLAIN, 0,
                                       &buf) == PN_ERR_OK);
    PN_REQUIRE(rd_kafka_producev(h->producer, RD_KAFKA_V_TOPIC(T_COMMANDS),
                                 RD_KAFKA_V_PARTITION(0),
                                 RD_KAFKA_V_KEY("SKU-1|N", 7),
                                 RD_KAFKA_V_VALUE(buf.data, buf.len),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) == 0);
    PN_REQUIRE(rd_kafka_flush(h->producer, 10000) == 0);
    pn_buf_free(&buf);
}

/* Waits until the worker's stats satisfy done (or it exits), 30 s at most. */
static bool wait_for(harness_t *h, bool (*done)(const pn_worker_stats_t *)) {
    for (int64_t end = pn_mono_ms() + 30000; pn_mono_ms() < end;) {
        pn_worker_stats_t s;
        pn_worker_get_stats(h->worker, &s);
        if (done(&s) || atomic_load(&h->exited))
            return done(&s);
        usleep(20 * 1000);
    }
    return false;
}

static bool one_commit(const pn_worker_stats_t *s) { return s->commits >= 1; }
static bool one_abort(const pn_worker_stats_t *s) { return s->aborts >= 1; }
static bool two_commits(const pn_worker_stats_t *s) { return s->commits >= 2; }

/* The next transaction fails (the coordinator refuses its offsets), and
 * then the committed offsets cannot be read n times. */
static void fail_next_transaction(harness_t *h, size_t lookups_failing) {
    rd_kafka_mock_push_request_errors(h->mock, API_ADD_OFFSETS_TO_TXN, 1,
                                      RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED);
    for (size_t i = 0; i < lookups_failing; i++)
        rd_kafka_mock_push_request_errors(
            h->mock, API_OFFSET_FETCH, 1,
            RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED);
}

/* One command committed, then a second whose transaction fails and whose
 * rewind finds the committed offsets unreadable lookups_failing times. */
static void start_and_fail(harness_t *h, size_t lookups_failing) {
    harness_start(h);
    send_update(h, 1);
    PN_ASSERT(wait_for(h, one_commit));
    fail_next_transaction(h, lookups_failing);
    send_update(h, 2);
    PN_ASSERT(wait_for(h, one_abort));
}

/* The offsets stay unknown: the worker stops with an error that says so,
 * where it used to go back to the log's start and run it all again. */
static void test_unknown_committed_offsets_stop_the_worker(void) {
    harness_t h;
    start_and_fail(&h, 1000);
    for (int i = 0; i < 300 && !atomic_load(&h.exited); i++)
        usleep(100 * 1000); /* 5 look-ups with pauses of 1..4 s */
    PN_ASSERT(atomic_load(&h.exited));
    PN_ASSERT_EQ_INT(h.run_err, PN_ERR_KAFKA);
    PN_ASSERT_(strstr(h.run_why, "committed offsets") != NULL, CU_FALSE,
               "error: %.400s", h.run_why);
    pn_worker_stats_t s;
    pn_worker_get_stats(h.worker, &s);
    PN_ASSERT_EQ_INT(s.commits, 1); /* nothing after the failure */
    harness_stop(&h);
}

/* A look-up that fails twice and then answers: the worker rewinds, runs the
 * aborted command again and goes on. */
static void test_committed_offsets_read_on_a_retry(void) {
    harness_t h;
    start_and_fail(&h, 2);
    PN_ASSERT(wait_for(&h, two_commits));
    PN_ASSERT(!atomic_load(&h.exited));
    pn_worker_stats_t s;
    pn_worker_get_stats(h.worker, &s);
    PN_ASSERT_EQ_INT(s.aborts, 1);
    harness_stop(&h);
    PN_ASSERT_EQ_INT(h.run_err, PN_ERR_OK);
}

static const pn_test_case_t cases[] = {
    {"unknown committed offsets stop the worker",
     test_unknown_committed_offsets_stop_the_worker},
    {"committed offsets read on a retry",
     test_committed_offsets_read_on_a_retry},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {{"worker on the mock", cases},
                                          {NULL, NULL}};
