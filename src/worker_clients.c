#include "worker_clients.h"

#include <inttypes.h>
#include <stdio.h>

pn_err_t pn_worker_consumer_conf(const pn_worker_clients_spec_t *spec,
                                 rd_kafka_conf_t **confp, char *errstr,
                                 size_t errstr_size) {
    const pn_kafka_prop_t defaults[] = {
        {"auto.offset.reset", "earliest"},
        {"session.timeout.ms", "10000"},
        {"heartbeat.interval.ms", "1000"},
        {"statistics.interval.ms", "5000"}, /* consumer lag metrics */
    };
    const pn_kafka_prop_t fixed[] = {
        {"group.id", spec->group_id},
        /* Static membership: a restarted instance takes its partitions
         * back at once instead of waiting for a rebalance. */
        {"group.instance.id", spec->instance_id},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"isolation.level", "read_committed"},
        /* Eager rebalancing: a revocation takes every partition, so a
         * polled batch is dropped whole. */
        {"partition.assignment.strategy", "range,roundrobin"},
    };
    size_t n_defaults = sizeof defaults / sizeof defaults[0];
    return pn_kafka_conf_new(defaults, spec->lag_stats ? n_defaults
                                                       : n_defaults - 1,
                             spec->user, spec->n_user, fixed,
                             sizeof fixed / sizeof fixed[0], confp, errstr,
                             errstr_size);
}

pn_err_t pn_worker_producer_conf(const pn_worker_clients_spec_t *spec,
                                 rd_kafka_conf_t **confp, char *errstr,
                                 size_t errstr_size) {
    int interval = spec->commit_interval_ms;
    /* Records become visible at the commit, whose flush sends what is
     * lingering at once, so lingering inside a transaction costs no
     * latency: up to a fifth of the interval (20 ms at most) makes the
     * produce requests fewer and larger. Measured against 5 ms at the
     * default interval: the broker's CPU 20-35 % lower at 10,000
     * commands/s with the same latency, exactly-once throughput 4-16 %
     * higher (bench/results/e2e.md). */
    char linger[16];
    snprintf(linger, sizeof linger, "%d", interval / 5 < 20 ? interval / 5 : 20);
    /* Long enough for a slow commit at any interval the config allows
     * (it refuses an explicit setting below twice the interval). */
    char txn_timeout[24];
    int64_t timeout_ms = 10 * (int64_t)interval;
    snprintf(txn_timeout, sizeof txn_timeout, "%" PRId64,
             timeout_ms < 10000 ? (int64_t)10000 : timeout_ms);
    const pn_kafka_prop_t defaults[] = {
        {"linger.ms", linger},
        {"transaction.timeout.ms", txn_timeout},
        {"message.max.bytes", "2000000"},
        /* A transaction begun right after a commit finds the broker still
         * writing the previous one's markers: its first AddPartitionsToTxn
         * is refused with CONCURRENT_TRANSACTIONS (nearly every time, in
         * the bench's debug logs) and retried after this backoff, and
         * the AddOffsetsToTxn behind it on the same connection waits too.
         * librdkafka's 100 ms default made send_offsets_to_transaction
         * take up to an interval; 20 ms is what Java's producer uses for
         * this retry (KAFKA-5477). */
        {"retry.backoff.ms", "20"},
    };
    pn_kafka_prop_t fixed[3] = {
        {"enable.idempotence", "true"},
        /* Java's partitioner for keyed records (outcomes, dead letters). */
        {"partitioner", "murmur2_random"},
    };
    size_t n_fixed = 2;
    if (spec->txn_id)
        fixed[n_fixed++] = (pn_kafka_prop_t){"transactional.id", spec->txn_id};
    return pn_kafka_conf_new(defaults, sizeof defaults / sizeof defaults[0],
                             spec->user, spec->n_user, fixed, n_fixed, confp,
                             errstr, errstr_size);
}
