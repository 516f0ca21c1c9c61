/* The worker's state, shared by its modules: worker.c (loop, transactions,
 * rebalances), worker_records.c (one consumed record: decode, route,
 * execute, publish) and restore.c (catching up from the events topic). */
#ifndef PANTHER_WORKER_INTERNAL_H
#define PANTHER_WORKER_INTERNAL_H

#include <librdkafka/rdkafka.h>
#include <signal.h>

#include "panther/buf.h"
#include "panther/worker.h"
#include "worker_metrics.h"

struct pn_worker_s {
    pn_worker_options_t opts; /* strings borrowed from the caller */
    char txn_id[512];
    pn_codec_t *codec;
    pn_schema_registry_t *registry; /* NULL without schema_registry_url */
    pn_store_t *store;
    pn_engine_t *engine;
    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    rd_kafka_t *restore_consumer; /* group-less, read_committed */
    int32_t n_partitions; /* of the commands and the events topics */
    volatile sig_atomic_t stop;

    rd_kafka_topic_partition_list_t *to_restore; /* assigned, not restored */
    /* A rebalance callback that could not take its partitions: the loop
     * stops the worker with this (the callback cannot return it). */
    char rebalance_failure[512];

    /* The open transaction (with at_least_once: the open batch). Records
     * are executed and produced as they are polled; only their consumed
     * positions are kept, to be committed with the transaction. */
    bool txn_open;
    int64_t txn_deadline_ms; /* monotonic: commit when reached */
    int64_t commit_started_ms; /* of the last commit, 0 before the first */
    int64_t offsets_sent_ms;   /* when its offsets were in the transaction */
    size_t txn_records;      /* consumed records handled in it */
    size_t served_at;        /* txn_records when deliveries were last served */
    rd_kafka_topic_partition_list_t *txn_offsets; /* last offset + 1 */
    int64_t *event_offsets; /* by partition: last event delivered, or -1 */
    rd_kafka_resp_err_t delivery_err;

    pn_buf_t scratch;
    unsigned consecutive_aborts; /* for the retry back-off */
    int64_t maintain_due_ms; /* monotonic: next pn_engine_maintain() */
    pn_worker_stats_t stats;
    pn_worker_metrics_t *metrics; /* NULL without metrics and health */
};

/** Produces one record (copied); headers are owned by librdkafka after
 *  the call, also on failure. Returns ABORTABLE or FENCED on failure. */
pn_err_t pn_worker_produce(pn_worker_t *w, const char *topic,
                           int32_t partition, const void *key, size_t key_len,
                           const void *value, size_t value_len,
                           rd_kafka_headers_t *headers, bool is_event);

/** Decodes, routes and executes one consumed command record, producing its
 *  results into the open transaction. Errors abort the batch. */
pn_err_t pn_worker_handle_message(pn_worker_t *w, const rd_kafka_message_t *m,
                                  char *errstr, size_t errstr_size);

/** Restores every partition in w->to_restore from the events topic, then
 *  resumes them on the consumer. */
pn_err_t pn_worker_restore(pn_worker_t *w, char *errstr, size_t errstr_size);

/** "0,1,5" for logs. */
void pn_worker_format_partitions(const rd_kafka_topic_partition_list_t *parts,
                                 char *buf, size_t size);

#endif
