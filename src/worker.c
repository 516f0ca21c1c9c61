/*
 * The worker loop, pipelined as Kafka Streams does it: records are executed
 * and their results produced as they are polled, into a transaction begun
 * with the first of them; the transaction (results plus consumed offsets)
 * is committed about every commit interval (txn_deadline says from when)
 * or when the batch is full, and then the local store is written. Polling never stops
 * for longer than one record's work, so a command waits at most about one
 * commit interval plus one commit.
 *
 * Ordering is the whole guarantee (DESIGN.md section 6):
 *   1. Kafka commit first: events, outcomes, forwards, dead letters and the
 *      consumed offsets become visible together or not at all.
 *   2. RocksDB second: a crash between the two leaves the store behind the
 *      events topic, and the restore on the next assignment catches it up.
 * Anything that goes wrong before (1) completes is undone by aborting the
 * transaction, discarding the engine's batch and rewinding the consumer to
 * the committed offsets.
 */
#include "panther/worker.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "panther/log.h"
#include "panther/partition.h"
#include "commit_policy.h"
#include "worker_clients.h"
#include "worker_internal.h"
#include "clock.h"

/* Marks the delivery reports of events, whose offsets become checkpoints. */
static char event_tag;

/* --- producer ---------------------------------------------------------------- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque) {
    (void)rk;
    pn_worker_t *w = opaque;
    if (m->err) {
        if (!w->delivery_err)
            w->delivery_err = m->err;
        return;
    }
    if (m->_private == &event_tag && m->partition >= 0 &&
        m->partition < w->n_partitions &&
        m->offset > w->event_offsets[m->partition])
        w->event_offsets[m->partition] = m->offset;
}

/* The settings both Kafka clients share with the bench's pass-through. */
static pn_worker_clients_spec_t clients_spec(const pn_worker_t *w) {
    return (pn_worker_clients_spec_t){
        .group_id = w->opts.group_id,
        .instance_id = w->opts.instance_id,
        .txn_id = w->opts.exactly_once ? w->txn_id : NULL,
        .commit_interval_ms = w->opts.commit_interval_ms,
        .lag_stats = w->opts.metrics,
        .user = w->opts.kafka,
        .n_user = w->opts.n_kafka};
}

static pn_err_t producer_new(pn_worker_t *w, char *errstr, size_t errstr_size) {
    pn_worker_clients_spec_t spec = clients_spec(w);
    rd_kafka_conf_t *conf;
    pn_err_t err = pn_worker_producer_conf(&spec, &conf, errstr, errstr_size);
    if (err)
        return err;
    rd_kafka_conf_set_opaque(conf, w);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    char why[512];
    w->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!w->producer) {
        rd_kafka_conf_destroy(conf);
        return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                          "cannot create the producer: %s", why);
    }
    if (!w->opts.exactly_once)
        return PN_ERR_OK;
    /* Fences any earlier incarnation of this instance and aborts the
     * transaction it may have left open. */
    rd_kafka_error_t *error = rd_kafka_init_transactions(w->producer, 60000);
    if (error) {
        err = pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                         "init_transactions for '%s': %s", w->txn_id,
                         rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        rd_kafka_destroy(w->producer);
        w->producer = NULL;
    }
    return err;
}

/* Produces one record, waiting for room when the local queue is full. */
pn_err_t pn_worker_produce(pn_worker_t *w, const char *topic,
                           int32_t partition, const void *key, size_t key_len,
                           const void *value, size_t value_len,
                           rd_kafka_headers_t *headers, bool is_event) {
    for (;;) {
        rd_kafka_resp_err_t rerr = rd_kafka_producev(
            w->producer, RD_KAFKA_V_TOPIC(topic),
            RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_KEY((void *)key, key_len),
            RD_KAFKA_V_VALUE((void *)value, value_len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADERS(headers),
            RD_KAFKA_V_OPAQUE(is_event ? &event_tag : NULL), RD_KAFKA_V_END);
        if (rerr == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(w->producer, 50);
            continue;
        }
        if (rerr) {
            if (headers)
                rd_kafka_headers_destroy(headers);
            pn_log_kv(PN_LOG_ERROR, "produce failed", PN_LOG_STR("topic", topic),
                      PN_LOG_INT("partition", partition),
                      PN_LOG_STR("error", rd_kafka_err2str(rerr)));
            return pn_kafka_err(rerr) == PN_ERR_KAFKA_FENCED
                       ? PN_ERR_KAFKA_FENCED
                       : PN_ERR_KAFKA_ABORTABLE;
        }
        return PN_ERR_OK;
    }
}

/* --- the open transaction ------------------------------------------------------- */

static void reset_delivery(pn_worker_t *w) {
    w->delivery_err = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int32_t p = 0; p < w->n_partitions; p++)
        w->event_offsets[p] = -1;
}

static pn_err_t txn_step(rd_kafka_error_t *error, const char *what,
                         char *errstr, size_t errstr_size) {
    if (!error)
        return PN_ERR_OK;
    pn_err_t err = pn_kafka_txn_err(error);
    pn_err_set(errstr, errstr_size, err, "%s: %s", what,
               rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
    return err;
}

/* Forgets the open transaction's bookkeeping (after commit or abort). */
static void txn_close(pn_worker_t *w) {
    w->txn_open = false;
    w->txn_records = 0;
    w->served_at = 0;
    if (w->txn_offsets)
        rd_kafka_topic_partition_list_destroy(w->txn_offsets);
    w->txn_offsets = NULL;
}

/* When the transaction that the record opens must commit
 * (src/commit_policy.h). */
static int64_t txn_deadline(const pn_worker_t *w, const rd_kafka_message_t *m,
                            int64_t now) {
    return pn_commit_deadline(now, w->opts.commit_interval_ms,
                              w->commit_started_ms, pn_kafka_record_age_ms(m));
}

/* Opens a transaction (a batch, with at_least_once) for the record that
 * has just been polled. */
static pn_err_t txn_begin(pn_worker_t *w, const rd_kafka_message_t *m,
                          char *errstr, size_t errstr_size) {
    if (!w->producer) /* a rebuild in a rebalance callback failed */
        return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA, "no producer");
    reset_delivery(w);
    pn_worker_metrics_batch_begin(w);
    w->stats.batches++;
    w->txn_offsets = rd_kafka_topic_partition_list_new(8);
    w->txn_records = 0;
    w->txn_open = true;
    w->txn_deadline_ms = txn_deadline(w, m, pn_mono_ms());
    if (!w->opts.exactly_once)
        return PN_ERR_OK;
    return txn_step(rd_kafka_begin_transaction(w->producer),
                    "begin_transaction", errstr, errstr_size);
}

/* The position to commit for the record's partition: its offset + 1. */
static void txn_track(pn_worker_t *w, const rd_kafka_message_t *m) {
    const char *topic = rd_kafka_topic_name(m->rkt);
    rd_kafka_topic_partition_t *tp =
        rd_kafka_topic_partition_list_find(w->txn_offsets, topic, m->partition);
    if (!tp)
        tp = rd_kafka_topic_partition_list_add(w->txn_offsets, topic,
                                               m->partition);
    tp->offset = m->offset + 1;
    w->txn_records++;
    pn_worker_metrics_record(w, m);
}

/* Runs one polled record inside the open transaction, opening one first. */
static pn_err_t txn_add(pn_worker_t *w, const rd_kafka_message_t *m,
                        char *errstr, size_t errstr_size) {
    if (!w->txn_open) {
        pn_err_t err = txn_begin(w, m, errstr, errstr_size);
        if (err)
            return err;
    }
    txn_track(w, m);
    return pn_worker_handle_message(w, m, errstr, errstr_size);
}

/* Time to commit (now: monotonic ms): the deadline has passed, the batch
 * is full, or the worker is stopping. */
static bool txn_due(const pn_worker_t *w, int64_t now) {
    return w->txn_open &&
           (w->stop ||
            w->txn_records >= (size_t)w->opts.batch_max_commands ||
            now >= w->txn_deadline_ms);
}

/* Everything produced plus the consumed offsets, in one commit. */
static pn_err_t txn_commit_kafka(pn_worker_t *w, char *errstr,
                                 size_t errstr_size) {
    /* The group metadata (member id, generation) changes with every
     * rebalance and the broker checks it: take it fresh each time. */
    rd_kafka_consumer_group_metadata_t *cgmd =
        rd_kafka_consumer_group_metadata(w->consumer);
    pn_err_t err = txn_step(
        rd_kafka_send_offsets_to_transaction(w->producer, w->txn_offsets,
                                             cgmd, -1),
        "send_offsets_to_transaction", errstr, errstr_size);
    rd_kafka_consumer_group_metadata_destroy(cgmd);
    if (err)
        return err;
    w->offsets_sent_ms = pn_mono_ms();
    for (;;) {
        rd_kafka_error_t *error = rd_kafka_commit_transaction(w->producer, -1);
        if (error && rd_kafka_error_is_retriable(error)) {
            rd_kafka_error_destroy(error);
            continue;
        }
        return txn_step(error, "commit_transaction", errstr, errstr_size);
    }
}

/* at_least_once: wait for every acknowledgement, then commit the offsets;
 * a crash in between replays the batch. */
static pn_err_t batch_commit_unsafe(pn_worker_t *w, char *errstr,
                                    size_t errstr_size) {
    rd_kafka_resp_err_t rerr = rd_kafka_flush(w->producer, 60000);
    if (!rerr)
        rerr = w->delivery_err;
    if (rerr)
        return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA_ABORTABLE,
                          "delivery failed: %s", rd_kafka_err2str(rerr));
    rerr = rd_kafka_commit(w->consumer, w->txn_offsets, 0);
    if (rerr)
        return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA_ABORTABLE,
                          "offset commit failed: %s", rd_kafka_err2str(rerr));
    return PN_ERR_OK;
}

/* Writes the batch to the local store, with the events-topic positions the
 * delivery reports gave as checkpoints. */
static pn_err_t commit_local(pn_worker_t *w, char *errstr, size_t errstr_size) {
    pn_engine_checkpoint_t *cps =
        malloc((size_t)w->n_partitions * sizeof *cps);
    if (!cps)
        return PN_ERR_NOMEM;
    size_t n = 0;
    for (int32_t p = 0; p < w->n_partitions; p++)
        if (w->event_offsets[p] >= 0)
            cps[n++] = (pn_engine_checkpoint_t){p, w->event_offsets[p] + 1};
    pn_err_t err = pn_engine_commit(w->engine, cps, n, errstr, errstr_size);
    free(cps);
    return err;
}

/* Rebuilds a producer that cannot be reused (fenced, fatal error, or an
 * abort that failed). */
static pn_err_t producer_rebuild(pn_worker_t *w, char *errstr,
                                 size_t errstr_size) {
    if (w->producer)
        rd_kafka_destroy(w->producer);
    w->producer = NULL;
    w->stats.producer_rebuilds++;
    return producer_new(w, errstr, errstr_size);
}

/* Undoes the open transaction: nothing of it becomes visible, and the
 * engine forgets the state changes of its commands. The consumer's
 * position is the caller's business. */
static pn_err_t txn_abort(pn_worker_t *w, pn_err_t cause, char *errstr,
                          size_t errstr_size) {
    pn_engine_discard(w->engine);
    w->stats.aborts++;
    txn_close(w);
    if (!w->producer || cause == PN_ERR_KAFKA_FENCED || !w->opts.exactly_once)
        /* at_least_once: drop whatever is still queued, so that no result
         * of the batch is published after the rewind. */
        return producer_rebuild(w, errstr, errstr_size);
    rd_kafka_error_t *error = rd_kafka_abort_transaction(w->producer, -1);
    if (!error)
        return PN_ERR_OK;
    pn_log_kv(PN_LOG_WARN, "abort_transaction failed, rebuilding the producer",
              PN_LOG_STR("error", rd_kafka_error_string(error)));
    rd_kafka_error_destroy(error);
    return producer_rebuild(w, errstr, errstr_size);
}

/* Moves partitions of the consumer to the given offsets. The wait is
 * unbounded: a seek is local and immediate (and librdkafka 2.0.2 takes the
 * timeout in microseconds, so that "10 s" gave up after 10 ms). A
 * partition that cannot be moved would skip records or run them twice, so
 * any failure is an error. */
static pn_err_t seek_to(pn_worker_t *w, rd_kafka_topic_partition_list_t *parts,
                        const char *why, char *errstr, size_t errstr_size) {
    rd_kafka_error_t *error = rd_kafka_seek_partitions(w->consumer, parts, -1);
    if (error) {
        pn_err_t err = pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                                  "cannot seek to %s: %s", why,
                                  rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return err;
    }
    for (int i = 0; i < parts->cnt; i++)
        if (parts->elems[i].err)
            return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                              "cannot seek %s [%d] to %s: %s",
                              parts->elems[i].topic,
                              (int)parts->elems[i].partition, why,
                              rd_kafka_err2str(parts->elems[i].err));
    return PN_ERR_OK;
}

/* Reads the committed offsets of parts, retrying while the group
 * coordinator does not answer (it moves, or it is loading). */
#define COMMITTED_ATTEMPTS 5
static rd_kafka_resp_err_t read_committed_offsets(
    pn_worker_t *w, rd_kafka_topic_partition_list_t *parts) {
    rd_kafka_resp_err_t rerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int attempt = 1; attempt <= COMMITTED_ATTEMPTS; attempt++) {
        rerr = rd_kafka_committed(w->consumer, parts, 30000);
        for (int i = 0; !rerr && i < parts->cnt; i++)
            rerr = parts->elems[i].err;
        if (!rerr || attempt == COMMITTED_ATTEMPTS || w->stop)
            break;
        pn_log_kv(PN_LOG_WARN, "cannot read the committed offsets, retrying",
                  PN_LOG_STR("error", rd_kafka_err2str(rerr)),
                  PN_LOG_INT("attempt", attempt));
        sleep((unsigned)attempt);
    }
    return rerr;
}

/* Moves the consumer back to the committed offsets of its assignment. Those
 * must be known: anywhere else (the log's start, say) runs committed
 * commands again or skips some. When they cannot be read, the worker stops
 * instead; on its restart the group resumes it from them. */
static pn_err_t rewind_consumer(pn_worker_t *w, char *errstr,
                                size_t errstr_size) {
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_resp_err_t rerr = rd_kafka_assignment(w->consumer, &parts);
    if (rerr || !parts)
        return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                          "cannot rewind: the assignment is unknown: %s",
                          rd_kafka_err2str(rerr));
    pn_err_t err = PN_ERR_OK;
    if (parts->cnt && (rerr = read_committed_offsets(w, parts)))
        err = pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                         "cannot read the committed offsets to rewind to "
                         "after an abort: %s; stopping rather than resume "
                         "anywhere else",
                         rd_kafka_err2str(rerr));
    for (int i = 0; !err && i < parts->cnt; i++)
        if (parts->elems[i].offset < 0) /* none committed yet: the start, */
            parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING; /* as reset */
    if (!err && parts->cnt)
        err = seek_to(w, parts, "the committed offset", errstr, errstr_size);
    rd_kafka_topic_partition_list_destroy(parts);
    return err;
}

/* Undoes a failed transaction so that its records run again from the
 * committed offsets, backing off while failures repeat. */
static pn_err_t recover(pn_worker_t *w, pn_err_t cause, const char *why,
                        char *errstr, size_t errstr_size) {
    /* Back off while failures repeat (a broker away, say), up to 5 s. */
    if (w->consecutive_aborts < 6)
        w->consecutive_aborts++;
    if (w->consecutive_aborts > 1) {
        useconds_t delay = 100000u << (w->consecutive_aborts - 1);
        usleep(delay < 5000000u ? delay : 5000000u);
    }
    pn_log_kv(PN_LOG_WARN, "batch aborted, rewinding",
              PN_LOG_STR("error", pn_err_name(cause)), PN_LOG_STR("detail", why),
              PN_LOG_UINT("commands", w->txn_records));
    pn_err_t err = txn_abort(w, cause, errstr, errstr_size);
    if (!err) /* else the worker stops: nothing is read again */
        err = rewind_consumer(w, errstr, errstr_size);
    return err;
}

/* A failed record or commit: Kafka trouble is undone and retried; a
 * failure of the engine or the store also aborts, then stops the worker
 * (a restart restores from the events topic). */
static pn_err_t txn_failed(pn_worker_t *w, pn_err_t err, const char *why,
                           char *errstr, size_t errstr_size) {
    if (err == PN_ERR_KAFKA || err == PN_ERR_KAFKA_ABORTABLE ||
        err == PN_ERR_KAFKA_FENCED)
        return recover(w, err, why, errstr, errstr_size);
    pn_log_kv(PN_LOG_ERROR, "batch failed outside Kafka",
              PN_LOG_STR("error", pn_err_name(err)), PN_LOG_STR("detail", why));
    char ignored[256];
    pn_err_t rerr = recover(w, PN_ERR_KAFKA_ABORTABLE, why, ignored,
                            sizeof ignored);
    (void)rerr;
    return pn_err_set(errstr, errstr_size, err, "%s", why);
}

/* Commits the open transaction to Kafka, then to the local store. */
static pn_err_t txn_commit(pn_worker_t *w, char *errstr, size_t errstr_size) {
    char why[512] = "";
    w->commit_started_ms = w->offsets_sent_ms = pn_mono_ms();
    pn_err_t err = w->opts.exactly_once
                       ? txn_commit_kafka(w, why, sizeof why)
                       : batch_commit_unsafe(w, why, sizeof why);
    if (err)
        return txn_failed(w, err, why, errstr, errstr_size);
    w->stats.commits++;
    w->consecutive_aborts = 0;
    pn_worker_metrics_batch_committed(w);
    size_t records = w->txn_records;
    txn_close(w);
    int64_t kafka_done_ms = pn_mono_ms();
    err = commit_local(w, errstr, errstr_size);
    int64_t ended_ms = pn_mono_ms();
    /* Where a cycle's time goes, for tuning (log.level=debug). */
    pn_log_kv(PN_LOG_DEBUG, "transaction committed",
              PN_LOG_UINT("records", records),
              PN_LOG_INT("kafka_commit_ms", kafka_done_ms - w->commit_started_ms),
              PN_LOG_INT("send_offsets_ms",
                         w->offsets_sent_ms - w->commit_started_ms),
              PN_LOG_INT("store_commit_ms", ended_ms - kafka_done_ms));
    if (err)
        /* Kafka has the batch; the store will catch up by restoring. */
        pn_log_kv(PN_LOG_ERROR, "local store write failed after commit",
                  PN_LOG_STR("error", errstr));
    return err;
}

/* --- consumer and rebalances ------------------------------------------------- */

typedef struct revoked_set {
    const pn_worker_t *w;
    const uint8_t *revoked; /* by partition */
} revoked_set_t;

static bool owned_by_revoked(void *opaque, pn_str_t key) {
    revoked_set_t *rs = opaque;
    int32_t p = pn_partition_for_key(key.ptr, key.len, rs->w->n_partitions);
    return rs->revoked[p];
}

/* A revocation with a transaction open aborts it rather than committing
 * it here. Committing in the callback would be possible while the group
 * generation is still ours (Kafka Streams does it), but not when the
 * assignment was lost (session timeout, fenced member: the broker refuses
 * the offsets), and an abort is always safe: the records go back to the
 * committed offsets and their new owner, or this worker after its restore,
 * runs them again. Rebalances are rare, and the cost is at most one commit
 * interval of work done twice. */
static void abort_on_revoke(pn_worker_t *w) {
    char errstr[512];
    pn_log_kv(PN_LOG_INFO, "aborting the open transaction on revocation",
              PN_LOG_UINT("commands", w->txn_records));
    if (txn_abort(w, PN_ERR_KAFKA_ABORTABLE, errstr, sizeof errstr))
        /* No producer: the loop cannot go on; stop it cleanly. */
        pn_log_kv(PN_LOG_ERROR, "cannot rebuild the producer, stopping",
                  PN_LOG_STR("error", errstr));
}

static void on_revoke(pn_worker_t *w, rd_kafka_topic_partition_list_t *parts) {
    if (w->txn_open)
        abort_on_revoke(w);
    uint8_t *revoked = calloc((size_t)w->n_partitions, 1);
    for (int i = 0; revoked && i < parts->cnt; i++)
        if (parts->elems[i].partition < w->n_partitions)
            revoked[parts->elems[i].partition] = 1;
    if (revoked) {
        revoked_set_t rs = {w, revoked};
        pn_engine_forget(w->engine, owned_by_revoked, &rs);
        free(revoked);
    }
    rd_kafka_topic_partition_list_destroy(w->to_restore);
    w->to_restore = rd_kafka_topic_partition_list_new(0);
    rd_kafka_assign(w->consumer, NULL);
}

static void rebalance_failed(pn_worker_t *w, const char *what,
                             rd_kafka_resp_err_t e) {
    snprintf(w->rebalance_failure, sizeof w->rebalance_failure, "%s: %s",
             what, rd_kafka_err2str(e));
    pn_log_kv(PN_LOG_ERROR, "rebalance failed",
              PN_LOG_STR("error", w->rebalance_failure));
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts,
                         void *opaque) {
    pn_worker_t *w = opaque;
    w->stats.rebalances++;
    char list[1024];
    pn_worker_format_partitions(parts, list, sizeof list);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        pn_log_kv(PN_LOG_INFO, "partitions assigned",
                  PN_LOG_STR("topic", w->opts.commands_topic),
                  PN_LOG_STR("partitions", list));
        rd_kafka_resp_err_t e = rd_kafka_assign(rk, parts);
        if (e) {
            rebalance_failed(w, "cannot take the assigned partitions", e);
            return;
        }
        /* Nothing runs on a partition before its state is restored: the
         * loop restores before it polls again (a record this poll returns
         * goes back, poll_once). The partitions are not paused for it: in
         * librdkafka an assign-pause-resume can leave a partition without
         * a fetch position, for good and without a word (issue 5591, open;
         * seen here once: a worker idle for minutes on two partitions after
         * their restore). Fetched records wait in librdkafka's queue,
         * which queued.max.messages.kbytes bounds. */
        for (int i = 0; i < parts->cnt; i++)
            rd_kafka_topic_partition_list_add(w->to_restore, parts->elems[i].topic,
                                              parts->elems[i].partition);
    } else {
        pn_log_kv(PN_LOG_INFO, "partitions revoked",
                  PN_LOG_STR("topic", w->opts.commands_topic),
                  PN_LOG_STR("partitions", list));
        on_revoke(w, parts);
    }
}

static pn_err_t consumer_new(pn_worker_t *w, char *errstr,
                             size_t errstr_size) {
    pn_worker_clients_spec_t spec = clients_spec(w);
    rd_kafka_conf_t *conf;
    pn_err_t err = pn_worker_consumer_conf(&spec, &conf, errstr, errstr_size);
    if (err)
        return err;
    rd_kafka_conf_set_opaque(conf, w);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    if (w->opts.metrics)
        rd_kafka_conf_set_stats_cb(conf, pn_worker_metrics_stats_cb);
    char why[512];
    w->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (!w->consumer) {
        rd_kafka_conf_destroy(conf);
        return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                          "cannot create the consumer: %s", why);
    }
    rd_kafka_poll_set_consumer(w->consumer);
    return PN_ERR_OK;
}

/* Co-partitioning (DESIGN.md section 2) and the topics' existence. */
static pn_err_t check_topics(pn_worker_t *w, char *errstr, size_t errstr_size) {
    int32_t n_commands, n_events, n_other;
    pn_err_t err = pn_kafka_partition_count(w->consumer, w->opts.commands_topic,
                                            10000, &n_commands, errstr,
                                            errstr_size);
    if (!err)
        err = pn_kafka_partition_count(w->consumer, w->opts.events_topic, 10000,
                                       &n_events, errstr, errstr_size);
    if (!err)
        err = pn_kafka_partition_count(w->consumer, w->opts.outcomes_topic,
                                       10000, &n_other, errstr, errstr_size);
    if (!err)
        err = pn_kafka_partition_count(w->consumer, w->opts.dead_letter_topic,
                                       10000, &n_other, errstr, errstr_size);
    if (err)
        return err == PN_ERR_NOT_FOUND ? PN_ERR_CONFIG : err;
    if (n_commands != n_events)
        return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                          "topics '%s' (%d partitions) and '%s' (%d partitions) "
                          "are not co-partitioned: the commands and events "
                          "topics must have the same partition count",
                          w->opts.commands_topic, n_commands,
                          w->opts.events_topic, n_events);
    w->n_partitions = n_commands;
    return PN_ERR_OK;
}

/* --- lifecycle ------------------------------------------------------------------ */

/* The codec, asking the schema registry for Confluent ids when one is
 * configured (the registry, owned by the worker, replaces codec.lookup). */
static pn_err_t codec_new(pn_worker_t *w, char *errstr, size_t errstr_size) {
    pn_codec_config_t cc = w->opts.codec;
    if (w->opts.schema_registry_url && w->opts.schema_registry_url[0]) {
        pn_schema_registry_options_t ro = {
            .url = w->opts.schema_registry_url,
            .basic_auth = w->opts.schema_registry_auth};
        pn_err_t err =
            pn_schema_registry_new(&ro, &w->registry, errstr, errstr_size);
        if (err)
            return err;
        cc.lookup = pn_schema_registry_lookup;
        cc.lookup_opaque = w->registry;
    }
    return pn_codec_new(&cc, &w->codec, errstr, errstr_size);
}

pn_err_t pn_worker_new(const pn_worker_options_t *opts, pn_worker_t **workerp,
                       char *errstr, size_t errstr_size) {
    *workerp = NULL;
    pn_worker_t *w = calloc(1, sizeof *w);
    if (!w)
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM, "out of memory");
    w->opts = *opts;
    snprintf(w->txn_id, sizeof w->txn_id, "%s-%s", opts->group_id,
             opts->instance_id);
    w->to_restore = rd_kafka_topic_partition_list_new(0);
    pn_buf_init(&w->scratch, 64 * 1024);
    pn_err_t err = codec_new(w, errstr, errstr_size);
    if (!err)
        err = pn_store_open(&opts->store, &w->store, errstr, errstr_size);
    if (!err) {
        pn_engine_options_t eo = opts->engine;
        eo.store = w->store;
        eo.codec = w->codec;
        eo.clock_ms = pn_engine_wall_clock;
        err = pn_engine_new(&eo, &w->engine, errstr, errstr_size);
    }
    if (!err)
        err = consumer_new(w, errstr, errstr_size);
    if (!err)
        err = check_topics(w, errstr, errstr_size);
    if (!err)
        err = pn_worker_metrics_new(w, errstr, errstr_size);
    if (!err) {
        w->event_offsets = malloc((size_t)w->n_partitions * sizeof *w->event_offsets);
        if (!w->event_offsets)
            err = pn_err_set(errstr, errstr_size, PN_ERR_NOMEM, "out of memory");
    }
    if (!err)
        err = producer_new(w, errstr, errstr_size);
    if (err) {
        pn_worker_free(w);
        return err;
    }
    *workerp = w;
    return PN_ERR_OK;
}

void pn_worker_free(pn_worker_t *w) {
    if (!w)
        return;
    txn_close(w);
    pn_kafka_destroy(w->consumer, "consumer", PN_KAFKA_DESTROY_TIMEOUT_MS);
    pn_kafka_destroy(w->restore_consumer, "restore consumer",
                     PN_KAFKA_DESTROY_TIMEOUT_MS);
    if (w->producer)
        rd_kafka_destroy(w->producer);
    if (w->to_restore)
        rd_kafka_topic_partition_list_destroy(w->to_restore);
    pn_engine_free(w->engine);
    pn_store_close(w->store);
    pn_codec_free(w->codec);
    pn_schema_registry_free(w->registry);
    pn_buf_free(&w->scratch);
    pn_worker_metrics_free(w->metrics);
    free(w->event_offsets);
    free(w);
}

void pn_worker_stop(pn_worker_t *w) { w->stop = 1; }

void pn_worker_get_stats(const pn_worker_t *w, pn_worker_stats_t *stats) {
    *stats = w->stats;
}


/* --- the loop ------------------------------------------------------------------- */

/* Moves one partition back to a record's offset. */
static pn_err_t seek_back(pn_worker_t *w, const rd_kafka_message_t *m,
                          char *errstr, size_t errstr_size) {
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, rd_kafka_topic_name(m->rkt),
                                      m->partition)->offset = m->offset;
    pn_err_t err = seek_to(w, parts, "a record polled before the restore",
                           errstr, errstr_size);
    rd_kafka_topic_partition_list_destroy(parts);
    return err;
}

/* Waits no longer than the open transaction's deadline, so that commits
 * are on time when records stop coming; idle, long enough to be cheap and
 * short enough for the loop to look at its flags. */
static int poll_timeout(const pn_worker_t *w, int64_t now) {
    if (!w->txn_open)
        return 100;
    int64_t left = w->txn_deadline_ms - now;
    return left <= 0 ? 0 : left > 100 ? 100 : (int)left;
}

/* Polls once and runs what came into the open transaction. */
static pn_err_t poll_once(pn_worker_t *w, int64_t now, char *errstr,
                          size_t errstr_size) {
    rd_kafka_message_t *m =
        rd_kafka_consumer_poll(w->consumer, poll_timeout(w, now));
    if (w->rebalance_failure[0]) {
        if (m)
            rd_kafka_message_destroy(m);
        return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA, "%s",
                          w->rebalance_failure);
    }
    if (!m)
        return PN_ERR_OK;
    pn_err_t err = PN_ERR_OK;
    if (w->to_restore->cnt) {
        /* Assigned new partitions: restore them first. A record that
         * slipped through goes back, so it is not skipped later. (No
         * transaction is open: the revocation before it aborted it.) */
        if (!m->err)
            err = seek_back(w, m, errstr, errstr_size);
    } else if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            pn_log_kv(PN_LOG_WARN, "consumer error",
                      PN_LOG_STR("error", rd_kafka_message_errstr(m)));
    } else {
        char why[512] = "";
        err = txn_add(w, m, why, sizeof why);
        if (err)
            err = txn_failed(w, err, why, errstr, errstr_size);
    }
    rd_kafka_message_destroy(m);
    return err;
}

/* Serves the delivery reports that have come back, every 64 records of a
 * transaction: their messages (and their headers) are freed now, while
 * the loop allocates the next ones, rather than ~2 per command all at once
 * in the commit's flush, where glibc malloc sorted and consolidated tens of
 * thousands of freed chunks (~7% of the worker's CPU) and the commit took
 * longer. */
static void serve_deliveries(pn_worker_t *w) {
    if (w->txn_open && w->producer && w->txn_records - w->served_at >= 64) {
        rd_kafka_poll(w->producer, 0);
        w->served_at = w->txn_records;
    }
}

/* Event retention in production: between transactions, once a second,
 * a bounded step of the engine's expiry pass. It waits for the store
 * write in flight, so it is not run after every commit; while a step finds
 * a full step's work it runs again at the next gap, until it catches up.
 * Idempotency entries need no call: they expire in RocksDB compactions. */
#define MAINTAIN_INTERVAL_MS 1000
/* A finished pass starts again only after a pause of a hundredth of the
 * retention, between these bounds: a pass visits every snapshot, with a
 * seek into the events family each (a step of 4096 holds the batch loop
 * for tens of ms), while events fall due only at the pace of the
 * retention, so walking again at once finds next to nothing. */
#define PASS_PAUSE_MIN_MS 1000
#define PASS_PAUSE_MAX_MS 3600000

static int64_t pass_pause_ms(int64_t retention_ms) {
    int64_t pause = retention_ms / 100;
    return pause < PASS_PAUSE_MIN_MS   ? PASS_PAUSE_MIN_MS
           : pause > PASS_PAUSE_MAX_MS ? PASS_PAUSE_MAX_MS
                                       : pause;
}

static pn_err_t maintain_if_due(pn_worker_t *w, int64_t now, char *errstr,
                                size_t errstr_size) {
    if (w->txn_open || now < w->maintain_due_ms)
        return PN_ERR_OK;
    pn_engine_maintenance_t done;
    pn_err_t err = pn_engine_maintain(w->engine, pn_wall_ms(), 0, &done,
                                      errstr, errstr_size);
    if (err)
        return err;
    bool behind = done.events_deleted >= PN_ENGINE_DEFAULT_MAINTAIN_WORK / 2;
    w->maintain_due_ms =
        behind           ? now
        : done.pass_done ? now + pass_pause_ms(w->opts.store.event_retention_ms)
                         : now + MAINTAIN_INTERVAL_MS;
    if (done.events_deleted)
        pn_log_kv(PN_LOG_DEBUG, "expired events",
                  PN_LOG_UINT("events", done.events_deleted));
    return PN_ERR_OK;
}

pn_err_t pn_worker_run(pn_worker_t *w, char *errstr, size_t errstr_size) {
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, w->opts.commands_topic,
                                      RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t rerr = rd_kafka_subscribe(w->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (rerr)
        return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                          "subscribe to '%s': %s", w->opts.commands_topic,
                          rd_kafka_err2str(rerr));
    pn_log_kv(PN_LOG_INFO, "worker started",
              PN_LOG_STR("group", w->opts.group_id),
              PN_LOG_STR("transactional_id", w->txn_id),
              PN_LOG_STR("guarantee",
                         w->opts.exactly_once ? "exactly_once" : "at_least_once"),
              PN_LOG_INT("partitions", w->n_partitions));
    pn_err_t err = PN_ERR_OK;
    int64_t last_tick_ms = 0;
    /* The clock is read once per polled record (after the poll) and that
     * reading serves the commit check and the next poll's timeout. */
    int64_t now = pn_mono_ms();
    while (!w->stop && !err && w->producer) {
        /* Not once per record: between transactions, and at most every
         * 100 ms inside a long one, so that liveness keeps beating. */
        if (!w->txn_open || now - last_tick_ms >= 100) {
            pn_worker_metrics_tick(w);
            last_tick_ms = now;
        }
        if (w->to_restore->cnt) {
            err = pn_worker_restore(w, errstr, errstr_size);
            now = pn_mono_ms();
            continue;
        }
        err = poll_once(w, now, errstr, errstr_size);
        serve_deliveries(w);
        now = pn_mono_ms();
        if (!err && txn_due(w, now)) {
            err = txn_commit(w, errstr, errstr_size);
            now = pn_mono_ms();
        }
        if (!err)
            err = maintain_if_due(w, now, errstr, errstr_size);
    }
    if (!err && !w->producer)
        err = pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                         "the producer could not be rebuilt after a revocation");
    /* Stopping: the open transaction is finished, not thrown away. */
    if (!err && w->txn_open)
        err = txn_commit(w, errstr, errstr_size);
    pn_log(PN_LOG_INFO, "worker stopping: closing the consumer");
    rd_kafka_consumer_close(w->consumer);
    if (w->producer)
        rd_kafka_flush(w->producer, 10000);
    pn_worker_stats_t s = w->stats;
    pn_engine_stats_t es;
    pn_engine_get_stats(w->engine, &es);
    pn_log_kv(PN_LOG_INFO, "worker stopped", PN_LOG_UINT("commands", s.commands),
              PN_LOG_UINT("events_expired", es.events_expired),
              PN_LOG_UINT("events", s.events), PN_LOG_UINT("commits", s.commits),
              PN_LOG_UINT("aborts", s.aborts),
              PN_LOG_UINT("dead_letters", s.dead_letters),
              PN_LOG_UINT("forwarded", s.forwarded));
    return err;
}
