/*
 * The worker (DESIGN.md section 6): consumes commands of its assigned
 * partitions, runs them through the engine, and publishes events, outcomes,
 * forwarded commands and dead letters together with the consumed offsets
 * in one Kafka transaction per batch. The local store is written only after
 * the transaction commits; on assignment a partition is first restored from
 * the events topic, so the store is a cache of the events topic.
 *
 * A worker runs on the thread that calls pn_worker_run(); pn_worker_stop()
 * may be called from any thread or a signal handler.
 */
#ifndef PANTHER_WORKER_H
#define PANTHER_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "panther/codec.h"
#include "panther/engine.h"
#include "panther/err.h"
#include "panther/kafka.h"
#include "panther/metrics.h"
#include "panther/schema_registry.h"
#include "panther/store.h"

typedef struct pn_worker_s pn_worker_t;

typedef struct pn_worker_options {
    const char *commands_topic;
    const char *events_topic;
    const char *outcomes_topic;
    const char *dead_letter_topic;
    const char *group_id;
    /* Stable name of this worker: the transactional.id is
     * "<group_id>-<instance_id>", so a restarted instance fences its
     * previous incarnation. */
    const char *instance_id;
    bool exactly_once; /* false: at_least_once */
    int commit_interval_ms;
    int batch_max_commands;
    const pn_kafka_prop_t *kafka; /* user kafka.* properties, prefix cut */
    size_t n_kafka;
    pn_store_options_t store;
    pn_engine_options_t engine; /* store and codec are filled in */
    pn_codec_config_t codec;
    /* Confluent Schema Registry for the writer schemas of framed commands
     * (schema_registry.h): base URL or comma-separated list; NULL or ""
     * for none. When set, the worker creates and owns a registry client
     * that replaces codec.lookup. A record whose schema the registry
     * cannot serve now (PN_ERR_IO) is not dead-lettered: its batch is
     * aborted and retried after a backoff. */
    const char *schema_registry_url;
    const char *schema_registry_auth; /* "user:password" or NULL; secret */
    /* Metrics and health (metrics.h), borrowed, NULL for none: the worker
     * registers its panther_* families in `metrics` and keeps `health`
     * live (a beat per loop iteration) and ready (partitions assigned and
     * restored). */
    pn_metrics_t *metrics;
    pn_health_t *health;
} pn_worker_options_t;

/** Counters for logs, metrics and tests. Monotonic. */
typedef struct pn_worker_stats {
    uint64_t commands;
    uint64_t events;
    uint64_t outcomes;
    uint64_t dead_letters;
    uint64_t forwarded;
    uint64_t batches;
    uint64_t commits;
    uint64_t aborts;
    uint64_t producer_rebuilds;
    uint64_t restored_events;
    uint64_t rebalances;
} pn_worker_stats_t;

/**
 * Opens the store, connects to Kafka, checks that the topics exist and that
 * commands and events are co-partitioned. PN_ERR_CONFIG for a problem the
 * user must fix (message in errstr). *workerp owned by the caller.
 */
PN_MUST_CHECK pn_err_t pn_worker_new(const pn_worker_options_t *opts,
                                     pn_worker_t **workerp, char *errstr,
                                     size_t errstr_size);

/** Runs until pn_worker_stop(); returns after a clean shutdown (open
 *  transaction finished or aborted, partitions revoked, producer flushed),
 *  or on an unrecoverable error. */
PN_MUST_CHECK pn_err_t pn_worker_run(pn_worker_t *worker, char *errstr,
                                     size_t errstr_size);

/** Asks the worker to stop; async-signal-safe. */
void pn_worker_stop(pn_worker_t *worker);

/** A snapshot of the counters (any thread; values may lag slightly). */
void pn_worker_get_stats(const pn_worker_t *worker, pn_worker_stats_t *stats);

/** NULL-safe. */
void pn_worker_free(pn_worker_t *worker);

#endif
