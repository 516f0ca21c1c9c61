/*
 * The snapshotter against librdkafka's mock cluster, for a fault a real
 * broker cannot be made to show on cue: the group coordinator goes away
 * while the partition leader stays, so the snapshotter's session times
 * out and its assignment is lost. It must not publish a checkpoint then:
 * the partition may have a new owner already, whose newer snapshots an
 * older one would follow in the compacted topic.
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
#include "panther/snapshotter.h"
#include "pn_test.h"

#define T_EVENTS "inventory.events"
#define T_SNAPSHOTS "inventory.snapshots"
#define GROUP "snapshotters"

typedef struct run {
    pn_snapshotter_t *snapshotter;
    pn_err_t err;
    char why[512];
} run_t;

static void *snapshotter_main(void *arg) {
    run_t *r = arg;
    r->err = pn_snapshotter_run(r->snapshotter, r->why, sizeof r->why);
    return NULL;
}

static void produce_update(rd_kafka_t *producer, pn_codec_t *codec) {
    pn_event_t ev = {.type = PN_EVT_UPDATED, .sku_id = pn_str_c("S"),
                     .node_id = pn_str_c("N"), .version = 1,
                     .command_id = pn_str_c("u1"), .by = pn_str_c("test"),
                     .at_ms = 1767225600000LL, .order_id = PN_STR_NULL,
                     .quantity = 10};
    pn_buf_t buf;
    pn_buf_init(&buf, 1 << 16);
    PN_REQUIRE(pn_codec_encode_event(codec, &ev, &buf) == PN_ERR_OK);
    PN_REQUIRE(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(T_EVENTS),
                                 RD_KAFKA_V_PARTITION(0),
                                 RD_KAFKA_V_KEY("S|N", 3),
                                 RD_KAFKA_V_VALUE(buf.data, buf.len),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) == 0);
    PN_REQUIRE(rd_kafka_flush(producer, 10000) == 0);
    pn_buf_free(&buf);
}

static bool wait_stats(pn_snapshotter_t *s,
                       bool (*done)(const pn_snapshotter_stats_t *)) {
    for (int64_t end = pn_mono_ms() + 60000; pn_mono_ms() < end;) {
        pn_snapshotter_stats_t st;
        pn_snapshotter_get_stats(s, &st);
        if (done(&st))
            return true;
        usleep(50 * 1000);
    }
    return false;
}

static bool caught_up(const pn_snapshotter_stats_t *st) {
    return st->partitions_caught_up == 1 && st->applied == 1;
}

/* The revocation is over (its counters are reset last). */
static bool revoked(const pn_snapshotter_stats_t *st) {
    return st->rebalances >= 2 && st->partitions_assigned == 0;
}

static void test_lost_assignment_publishes_nothing(void) {
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", why, sizeof why);
    rd_kafka_t *host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    PN_REQUIRE(host != NULL);
    rd_kafka_mock_cluster_t *mock = rd_kafka_mock_cluster_new(host, 2);
    PN_REQUIRE(mock != NULL);
    const char *topics[] = {T_EVENTS, T_SNAPSHOTS};
    for (int i = 0; i < 2; i++) {
        usleep(2000); /* see demo.c: the mock thread can miss a wake-up */
        PN_REQUIRE(rd_kafka_mock_topic_create(mock, topics[i], 1, 1) == 0);
        PN_REQUIRE(rd_kafka_mock_partition_set_leader(mock, topics[i], 0, 1) ==
                   0);
    }
    PN_REQUIRE(rd_kafka_mock_coordinator_set(mock, "group", GROUP, 2) == 0);
    const char *bootstrap = rd_kafka_mock_cluster_bootstraps(mock);

    conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, why, sizeof why);
    rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    PN_REQUIRE(producer != NULL);
    pn_codec_config_t cc = {0};
    pn_codec_t *codec;
    PN_REQUIRE(pn_codec_new(&cc, &codec, why, sizeof why) == PN_ERR_OK);
    produce_update(producer, codec);

    char *dir = pn_test_tmpdir("snap-mock");
    PN_REQUIRE(dir != NULL);
    const pn_kafka_prop_t kafka[] = {
        {"bootstrap.servers", bootstrap},
        {"fetch.wait.max.ms", "20"},
        {"session.timeout.ms", "3000"},
        {"heartbeat.interval.ms", "300"},
    };
    pn_snapshotter_options_t so = {
        .events_topic = T_EVENTS,
        .snapshots_topic = T_SNAPSHOTS,
        .group_id = GROUP,
        .instance_id = "s1",
        .interval_ms = 600000, /* no checkpoint but the revocation's */
        .kafka = kafka,
        .n_kafka = sizeof kafka / sizeof kafka[0],
        .store = {.path = dir},
    };
    run_t r = {0};
    pn_err_t e = pn_snapshotter_new(&so, &r.snapshotter, why, sizeof why);
    PN_ASSERT_(e == PN_ERR_OK, CU_TRUE, "snapshotter: %.400s", why);
    pthread_t thread;
    PN_REQUIRE(pthread_create(&thread, NULL, snapshotter_main, &r) == 0);
    PN_ASSERT(wait_stats(r.snapshotter, caught_up));

    /* The coordinator goes; the partition leader stays. */
    PN_REQUIRE(rd_kafka_mock_broker_set_down(mock, 2) == 0);
    PN_ASSERT(wait_stats(r.snapshotter, revoked));
    pn_snapshotter_stats_t st;
    pn_snapshotter_get_stats(r.snapshotter, &st);
    PN_ASSERT_EQ_INT(st.snapshots_published, 0);
    PN_ASSERT_EQ_INT(st.checkpoints, 0);

    pn_snapshotter_stop(r.snapshotter);
    pthread_join(thread, NULL);
    pn_snapshotter_free(r.snapshotter);
    pn_codec_free(codec);
    rd_kafka_destroy(producer);
    rd_kafka_mock_cluster_destroy(mock);
    rd_kafka_destroy(host);
    pn_test_rmdir(dir);
    free(dir);
}

static const pn_test_case_t cases[] = {
    {"a lost assignment publishes nothing",
     test_lost_assignment_publishes_nothing},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {{"snapshotter on the mock", cases},
                                          {NULL, NULL}};
