#include <librdkafka/rdkafka.h>

#include "panther/partition.h"
#include "pn_test.h"

/* Vectors from Kafka's own UtilsTest.testMurmur2. */
static void test_murmur2_matches_java(void) {
    static const struct {
        const char *key;
        int32_t hash;
    } v[] = {{"21", -973932308},
             {"foobar", -790332482},
             {"a-little-bit-long-string", -985981536},
             {"a-little-bit-longer-string", -1486304829},
             {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
             {"abc", 479470107}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        PN_ASSERT_EQ_INT(pn_murmur2(v[i].key, strlen(v[i].key)), v[i].hash);
}

/* librdkafka's murmur2 partitioner is documented to match Java's. */
static void test_partition_matches_librdkafka(void) {
    char key[64];
    for (int i = 0; i < 2000; i++) {
        int len = snprintf(key, sizeof key, "SKU-%d|DC-%d", i * 7919, i % 13);
        for (int32_t n = 1; n <= 64; n *= 2) {
            int32_t ours = pn_partition_for_key(key, (size_t)len, n);
            int32_t theirs = rd_kafka_msg_partitioner_murmur2(
                NULL, key, (size_t)len, n, NULL, NULL);
            PN_ASSERT_EQ_INT(ours, theirs);
            PN_ASSERT(ours >= 0 && ours < n);
        }
    }
}

static const pn_test_case_t cases[] = {
    {"murmur2 matches Java's", test_murmur2_matches_java},
    {"partitions match librdkafka murmur2", test_partition_matches_librdkafka},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {{"partition", cases}, {NULL, NULL}};
