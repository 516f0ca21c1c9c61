/* Reads every partition of a topic from the beginning to its current end
 * (read_committed), calling back once per record. Used by the audit and the
 * rebuild tool. Internal. */
#ifndef PANTHER_TOPIC_READER_H
#define PANTHER_TOPIC_READER_H

#include <librdkafka/rdkafka.h>
#include <signal.h>

#include "panther/err.h"
#include "panther/kafka.h"

typedef pn_err_t (*pn_topic_record_fn)(void *opaque,
                                       const rd_kafka_message_t *m);

/**
 * Reads `topic` to its end. A non-OK return of fn stops the read and is
 * returned. PN_ERR_KAFKA (message in errstr) when the topic cannot be read
 * or its end is not reached within timeout_ms.
 */
PN_MUST_CHECK pn_err_t pn_topic_read_all(const pn_kafka_prop_t *kafka,
                                         size_t n_kafka, const char *topic,
                                         pn_topic_record_fn fn, void *opaque,
                                         int timeout_ms, char *errstr,
                                         size_t errstr_size);

/**
 * The same, stopping with PN_ERR_STATE ("interrupted") once *stop is set,
 * also while no record comes (a signal handler's flag).
 */
PN_MUST_CHECK pn_err_t pn_topic_read_all_until(
    const pn_kafka_prop_t *kafka, size_t n_kafka, const char *topic,
    pn_topic_record_fn fn, void *opaque, int timeout_ms,
    const volatile sig_atomic_t *stop, char *errstr, size_t errstr_size);

#endif
