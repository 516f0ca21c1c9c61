/* The Kafka client settings of a worker: Panther's defaults (which kafka.*
 * settings override) and the settings it fixes. Shared by the worker
 * (worker.c) and the bench's transactional pass-through baseline
 * (bench/bench_passthrough.c), so that the two differ only in what runs
 * between the poll and the produce. */
#ifndef PANTHER_WORKER_CLIENTS_H
#define PANTHER_WORKER_CLIENTS_H

#include <stdbool.h>
#include <stddef.h>

#include "panther/kafka.h"

typedef struct pn_worker_clients_spec {
    const char *group_id;
    const char *instance_id; /* static membership */
    const char *txn_id;      /* transactional.id; NULL for at_least_once */
    int commit_interval_ms;
    bool lag_stats; /* librdkafka statistics, for the consumer-lag metrics */
    const pn_kafka_prop_t *user; /* kafka.* settings, bootstrap included */
    size_t n_user;
} pn_worker_clients_spec_t;

/** The consumer's configuration (read_committed, manual offsets, static
 *  membership, eager assignment). The caller owns *confp. */
PN_MUST_CHECK pn_err_t pn_worker_consumer_conf(
    const pn_worker_clients_spec_t *spec, rd_kafka_conf_t **confp,
    char *errstr, size_t errstr_size);

/** The producer's configuration (idempotent; transactional with txn_id).
 *  The caller owns *confp. */
PN_MUST_CHECK pn_err_t pn_worker_producer_conf(
    const pn_worker_clients_spec_t *spec, rd_kafka_conf_t **confp,
    char *errstr, size_t errstr_size);

#endif
