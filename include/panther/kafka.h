/*
 * librdkafka adapter: builds client configurations from Panther's settings,
 * routes librdkafka's logs into Panther's JSON log, reads topic metadata and
 * translates librdkafka errors into pn_err_t. Nothing above this module
 * looks at rd_kafka_resp_err_t.
 */
#ifndef PANTHER_KAFKA_H
#define PANTHER_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "panther/err.h"

/*
 * Record headers Panther writes (values are decimal text where numeric):
 * on events and outcomes, the commands-topic record they answer; on dead
 * letters, the error and where the record was; on a forwarded command,
 * where the misrouted original was.
 */
#define PN_HEADER_SOURCE_PARTITION "panther.source.partition"
#define PN_HEADER_SOURCE_OFFSET "panther.source.offset"
#define PN_HEADER_ERROR "panther.error"
#define PN_HEADER_ERROR_MESSAGE "panther.error.message"
#define PN_HEADER_ORIGINAL_TOPIC "panther.original.topic"
#define PN_HEADER_ORIGINAL_PARTITION "panther.original.partition"
#define PN_HEADER_ORIGINAL_OFFSET "panther.original.offset"
#define PN_HEADER_FORWARDED_PARTITION "panther.forwarded.from.partition"
#define PN_HEADER_FORWARDED_OFFSET "panther.forwarded.from.offset"

/** Reads a decimal header of a message; false when absent or not a
 *  number. */
bool pn_kafka_header_int(const rd_kafka_message_t *m, const char *name,
                         int64_t *value);

/** Default deadline of pn_kafka_destroy, ms. */
#define PN_KAFKA_DESTROY_TIMEOUT_MS 15000

/**
 * rd_kafka_destroy with a deadline: false (and a warning logged, naming
 * what) when the client has not finished after timeout_ms, in which case
 * it is left to finish, or not, on a thread of its own, and the caller
 * goes on. librdkafka 2.0.x (Debian 12's 2.0.2) can leak a reference to
 * a partition of a consumer that assigned partitions, and its destroy then
 * waits forever for a broker thread (librdkafka issues #4362, #4486); a
 * tool or a stopping worker must not hang on that. The handle must not be
 * used afterwards either way.
 */
bool pn_kafka_destroy(rd_kafka_t *rk, const char *what, int timeout_ms);

/** How long ago the record was written (its Kafka timestamp against the
 *  wall clock, ms); -1 when it has none. */
int64_t pn_kafka_record_age_ms(const rd_kafka_message_t *m);

/** A `name=value` librdkafka property given by the user (kafka.* keys). */
typedef struct pn_kafka_prop {
    const char *name;
    const char *value;
} pn_kafka_prop_t;

/**
 * A new librdkafka configuration: Panther's defaults, then the user's
 * properties (which override them), then the properties Panther depends on
 * (`fixed`, which win), with logs routed to pn_log. On failure names the
 * offending property in errstr. Caller owns the result (or hands it to
 * rd_kafka_new, which takes it).
 */
PN_MUST_CHECK pn_err_t pn_kafka_conf_new(const pn_kafka_prop_t *defaults,
                                         size_t n_defaults,
                                         const pn_kafka_prop_t *user,
                                         size_t n_user,
                                         const pn_kafka_prop_t *fixed,
                                         size_t n_fixed,
                                         rd_kafka_conf_t **confp,
                                         char *errstr, size_t errstr_size);

/** Partition count of a topic; PN_ERR_NOT_FOUND when it does not exist. */
PN_MUST_CHECK pn_err_t pn_kafka_partition_count(rd_kafka_t *rk,
                                                const char *topic,
                                                int timeout_ms,
                                                int32_t *count, char *errstr,
                                                size_t errstr_size);

/** Maps a librdkafka error to Panther's (fenced, abortable, other). */
pn_err_t pn_kafka_err(rd_kafka_resp_err_t err);

/** Same for a transactional API error object (not freed here). */
pn_err_t pn_kafka_txn_err(const rd_kafka_error_t *error);

/** The log callback that routes librdkafka's logs into Panther's log. */
void pn_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                     const char *buf);

#endif
