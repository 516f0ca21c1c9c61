/* pn_kafka_destroy: a client's destroy with a deadline (src/kafka.c), on
 * librdkafka's in-process mock cluster. */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "panther/kafka.h"
#include "pn_test.h"

static rd_kafka_t *client(rd_kafka_type_t type, const char *bootstrap,
                          rd_kafka_conf_t *conf) {
    if (!conf)
        conf = rd_kafka_conf_new();
    char why[512];
    PN_REQUIRE(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, why,
                                 sizeof why) == RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(type, conf, why, sizeof why);
    PN_REQUIRE(rk != NULL);
    return rk;
}

static void test_destroy_in_time(void) {
    PN_ASSERT(pn_kafka_destroy(NULL, "nothing", 10));
    rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, "127.0.0.1:1", NULL);
    int64_t t0 = pn_mono_ms();
    PN_ASSERT(pn_kafka_destroy(rk, "producer", 10000));
    PN_ASSERT(pn_mono_ms() - t0 < 10000);
}

/* The revocation at destroy runs this callback on the destroying thread:
 * a slow one stands in for a destroy that does not end. */
static volatile int assigned, revoke_started, revoke_ended;

static void slow_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t *parts,
                           void *opaque) {
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rd_kafka_assign(rk, parts);
        assigned = 1;
        return;
    }
    revoke_started = 1;
    sleep(2);
    rd_kafka_assign(rk, NULL);
    revoke_ended = 1;
}

static void test_destroy_past_its_deadline_is_left_behind(void) {
    rd_kafka_t *host = client(RD_KAFKA_PRODUCER, "", NULL);
    rd_kafka_mock_cluster_t *mock = rd_kafka_mock_cluster_new(host, 1);
    PN_REQUIRE(mock != NULL);
    PN_REQUIRE(rd_kafka_mock_topic_create(mock, "t", 1, 1) == 0);
    const char *bootstrap = rd_kafka_mock_cluster_bootstraps(mock);

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char why[512];
    PN_REQUIRE(rd_kafka_conf_set(conf, "group.id", "g", why, sizeof why) ==
               RD_KAFKA_CONF_OK);
    rd_kafka_conf_set_rebalance_cb(conf, slow_rebalance);
    rd_kafka_t *consumer = client(RD_KAFKA_CONSUMER, bootstrap, conf);
    rd_kafka_poll_set_consumer(consumer);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, "t", RD_KAFKA_PARTITION_UA);
    PN_REQUIRE(rd_kafka_subscribe(consumer, topics) == 0);
    rd_kafka_topic_partition_list_destroy(topics);
    for (int i = 0; i < 300 && !assigned; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(consumer, 100);
        if (m)
            rd_kafka_message_destroy(m);
    }
    PN_REQUIRE(assigned);

    int64_t t0 = pn_mono_ms();
    PN_ASSERT(!pn_kafka_destroy(consumer, "consumer", 300));
    int64_t waited = pn_mono_ms() - t0;
    PN_ASSERT(waited >= 300 && waited < 1900);
    PN_ASSERT(revoke_started && !revoke_ended);
    /* The destroy goes on by itself and ends. */
    for (int i = 0; i < 100 && !revoke_ended; i++)
        usleep(100 * 1000);
    PN_ASSERT(revoke_ended);
    usleep(500 * 1000); /* the destroying thread frees its record */
    rd_kafka_mock_cluster_destroy(mock);
    rd_kafka_destroy(host);
}

static const pn_test_case_t cases[] = {
    {"destroy in time", test_destroy_in_time},
    {"a destroy past its deadline is left behind",
     test_destroy_past_its_deadline_is_left_behind},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {{"kafka", cases}, {NULL, NULL}};
