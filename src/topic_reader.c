#include "topic_reader.h"
#include "clock.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static pn_err_t reader_new(const pn_kafka_prop_t *kafka, size_t n_kafka,
                           rd_kafka_t **rkp, char *errstr,
                           size_t errstr_size) {
    char group[64];
    /* No group membership is used (partitions are assigned), but
     * librdkafka wants a group id for a consumer; nothing is committed. */
    snprintf(group, sizeof group, "panther-reader-%ld", (long)getpid());
    const pn_kafka_prop_t fixed[] = {
        {"group.id", group},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"enable.partition.eof", "true"},
        {"isolation.level", "read_committed"},
        {"auto.offset.reset", "earliest"},
    };
    rd_kafka_conf_t *conf;
    pn_err_t err = pn_kafka_conf_new(NULL, 0, kafka, n_kafka, fixed,
                                     sizeof fixed / sizeof fixed[0], &conf,
                                     errstr, errstr_size);
    if (err)
        return err;
    char why[512];
    *rkp = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (!*rkp) {
        rd_kafka_conf_destroy(conf);
        return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                          "cannot create a consumer: %s", why);
    }
    return PN_ERR_OK;
}

pn_err_t pn_topic_read_all(const pn_kafka_prop_t *kafka, size_t n_kafka,
                           const char *topic, pn_topic_record_fn fn,
                           void *opaque, int timeout_ms, char *errstr,
                           size_t errstr_size) {
    return pn_topic_read_all_until(kafka, n_kafka, topic, fn, opaque,
                                   timeout_ms, NULL, errstr, errstr_size);
}

pn_err_t pn_topic_read_all_until(const pn_kafka_prop_t *kafka, size_t n_kafka,
                                 const char *topic, pn_topic_record_fn fn,
                                 void *opaque, int timeout_ms,
                                 const volatile sig_atomic_t *stop,
                                 char *errstr, size_t errstr_size) {
    rd_kafka_t *rk;
    pn_err_t err = reader_new(kafka, n_kafka, &rk, errstr, errstr_size);
    if (err)
        return err;
    int32_t n_parts = 0;
    err = pn_kafka_partition_count(rk, topic, 10000, &n_parts, errstr,
                                   errstr_size);
    rd_kafka_topic_partition_list_t *parts =
        rd_kafka_topic_partition_list_new(n_parts > 0 ? n_parts : 1);
    for (int32_t p = 0; !err && p < n_parts; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    if (!err && rd_kafka_assign(rk, parts))
        err = pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                         "cannot assign topic '%s'", topic);
    rd_kafka_topic_partition_list_destroy(parts);
    /* A partition reports its end again after records that came later: it
     * counts once, or another partition would be left unread. */
    uint8_t *at_end = calloc(n_parts > 0 ? (size_t)n_parts : 1, 1);
    if (!err && !at_end)
        err = PN_ERR_NOMEM;
    int remaining = n_parts;
    int64_t deadline = pn_mono_ms() + timeout_ms;
    while (!err && remaining > 0) {
        if (stop && *stop) {
            err = pn_err_set(errstr, errstr_size, PN_ERR_STATE, "interrupted");
            break;
        }
        if (pn_mono_ms() > deadline) {
            err = pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                             "timed out reading topic '%s' (%d partitions "
                             "not at their end)", topic, remaining);
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < n_parts &&
                !at_end[m->partition]) {
                at_end[m->partition] = 1;
                remaining--;
            }
        } else if (m->err)
            err = pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                             "reading topic '%s': %s", topic,
                             rd_kafka_message_errstr(m));
        else
            err = fn(opaque, m);
        rd_kafka_message_destroy(m);
    }
    free(at_end);
    rd_kafka_consumer_close(rk);
    pn_kafka_destroy(rk, "topic reader", PN_KAFKA_DESTROY_TIMEOUT_MS);
    return err;
}
