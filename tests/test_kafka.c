/* pn_kafka_destroy: a client's destroy with a deadline (src/kafka.c), and
 * pn_topic_read_all (src/topic_reader.c), on librdkafka's in-process mock
 * cluster, which can slow one broker down. */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "panther/kafka.h"
#include "pn_test.h"
#include "topic_reader.h"

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

/* A read of a topic whose partition 0 grows while partition 1, on a slow
 * broker, has not been read yet: partition 0 reports its end twice. */
typedef struct growing_read {
    rd_kafka_t *producer;
    int per_partition[2];
    pthread_t grower;
    bool growing;
} growing_read_t;

static void produce_to_partition(rd_kafka_t *producer, int32_t partition) {
    PN_REQUIRE(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC("r"),
                                 RD_KAFKA_V_PARTITION(partition),
                                 RD_KAFKA_V_VALUE("x", 1),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) == 0);
    PN_REQUIRE(rd_kafka_flush(producer, 10000) == 0);
}

/* A second record for partition 0, a second after its first was read: by
 * then the reader has seen partition 0's end (the mock holds an empty fetch
 * for 500 ms), and partition 1's record is still on its way (5 s). */
static void *grow_later(void *arg) {
    growing_read_t *g = arg;
    usleep(1000 * 1000);
    produce_to_partition(g->producer, 0);
    return NULL;
}

static pn_err_t count_and_grow(void *opaque, const rd_kafka_message_t *m) {
    growing_read_t *g = opaque;
    if (m->partition == 0 && !g->growing)
        g->growing = pthread_create(&g->grower, NULL, grow_later, g) == 0;
    if (m->partition >= 0 && m->partition < 2)
        g->per_partition[m->partition]++;
    return PN_ERR_OK;
}

/* Topic "r" on a mock cluster of two brokers: partition 0 led by broker 1,
 * partition 1 by broker 2 (which the tests slow down). */
typedef struct two_brokers {
    rd_kafka_t *host;
    rd_kafka_mock_cluster_t *mock;
    const char *bootstrap;
} two_brokers_t;

static void two_brokers_start(two_brokers_t *tb) {
    tb->host = client(RD_KAFKA_PRODUCER, "", NULL);
    tb->mock = rd_kafka_mock_cluster_new(tb->host, 2);
    PN_REQUIRE(tb->mock != NULL);
    PN_REQUIRE(rd_kafka_mock_topic_create(tb->mock, "r", 2, 1) == 0);
    PN_REQUIRE(rd_kafka_mock_partition_set_leader(tb->mock, "r", 0, 1) == 0);
    PN_REQUIRE(rd_kafka_mock_partition_set_leader(tb->mock, "r", 1, 2) == 0);
    tb->bootstrap = rd_kafka_mock_cluster_bootstraps(tb->mock);
}

static void two_brokers_stop(two_brokers_t *tb) {
    rd_kafka_mock_cluster_destroy(tb->mock);
    rd_kafka_destroy(tb->host);
}

static void test_read_counts_each_partition_end_once(void) {
    two_brokers_t tb;
    two_brokers_start(&tb);
    rd_kafka_mock_cluster_t *mock = tb.mock;
    const char *bootstrap = tb.bootstrap;
    growing_read_t g = {.producer = client(RD_KAFKA_PRODUCER, bootstrap, NULL)};
    produce_to_partition(g.producer, 0);
    produce_to_partition(g.producer, 1);
    PN_REQUIRE(rd_kafka_mock_broker_set_rtt(mock, 2, 5000) == 0);

    pn_kafka_prop_t kafka[] = {{"bootstrap.servers", bootstrap}};
    char why[512] = "";
    pn_err_t e = pn_topic_read_all(kafka, 1, "r", count_and_grow, &g, 60000,
                                   why, sizeof why);
    PN_ASSERT_(e == PN_ERR_OK, CU_FALSE, "read: %s", why);
    PN_REQUIRE(g.growing);
    pthread_join(g.grower, NULL);
    PN_ASSERT_EQ_INT(g.per_partition[0], 2);
    PN_ASSERT_EQ_INT(g.per_partition[1], 1); /* not left unread */
    rd_kafka_destroy(g.producer);
    two_brokers_stop(&tb);
}

/* A read that waits for a partition behind a slow broker stops once its
 * stop flag is set (a signal handler's), not when the records come. */
static volatile sig_atomic_t stop_reading;

static void *stop_later(void *arg) {
    (void)arg;
    usleep(1000 * 1000);
    stop_reading = 1;
    return NULL;
}

static pn_err_t count_record(void *opaque, const rd_kafka_message_t *m) {
    (void)m;
    (*(int *)opaque)++;
    return PN_ERR_OK;
}

static void test_read_stops_when_asked(void) {
    two_brokers_t tb;
    two_brokers_start(&tb);
    rd_kafka_mock_cluster_t *mock = tb.mock;
    const char *bootstrap = tb.bootstrap;
    rd_kafka_t *producer = client(RD_KAFKA_PRODUCER, bootstrap, NULL);
    produce_to_partition(producer, 1);
    PN_REQUIRE(rd_kafka_mock_broker_set_rtt(mock, 2, 30000) == 0);

    pn_kafka_prop_t kafka[] = {{"bootstrap.servers", bootstrap}};
    char why[512] = "";
    int records = 0;
    stop_reading = 0;
    pthread_t stopper;
    PN_REQUIRE(pthread_create(&stopper, NULL, stop_later, NULL) == 0);
    int64_t t0 = pn_mono_ms();
    pn_err_t e = pn_topic_read_all_until(kafka, 1, "r", count_record, &records,
                                         60000, &stop_reading, why, sizeof why);
    int64_t took = pn_mono_ms() - t0;
    pthread_join(stopper, NULL);
    PN_ASSERT_EQ_INT(e, PN_ERR_STATE);
    PN_ASSERT_(strstr(why, "interrupted") != NULL, CU_FALSE, "error: %.400s",
               why);
    PN_ASSERT_(took < 5000, CU_FALSE, "stopped after %lld ms", (long long)took);
    PN_ASSERT_EQ_INT(records, 0);
    rd_kafka_destroy(producer);
    two_brokers_stop(&tb);
}

static const pn_test_case_t cases[] = {
    {"destroy in time", test_destroy_in_time},
    {"a destroy past its deadline is left behind",
     test_destroy_past_its_deadline_is_left_behind},
    {"a read counts each partition's end once",
     test_read_counts_each_partition_end_once},
    {"a read stops when asked", test_read_stops_when_asked},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {{"kafka", cases}, {NULL, NULL}};
