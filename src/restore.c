/*
 * Restore: before a newly assigned partition runs a single command, replay
 * its events-topic partition from the local checkpoint to the end
 * (read_committed). This one path covers a crash between the Kafka commit
 * and the local write, a partition that moved from another worker, and a
 * lost disk (DESIGN.md section 6).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "panther/log.h"
#include "worker_internal.h"
#include "clock.h"

/* Commit the store every this many restored events, so that a long restore
 * that is interrupted does not start over. */
#define RESTORE_COMMIT_EVERY 5000

static pn_err_t restore_consumer(pn_worker_t *w, char *errstr,
                                 size_t errstr_size) {
    if (w->restore_consumer)
        return PN_ERR_OK;
    char group[600];
    /* librdkafka wants a group.id even for assign(); nothing is committed
     * under it. */
    snprintf(group, sizeof group, "%s-restore", w->txn_id);
    const pn_kafka_prop_t fixed[] = {
        {"group.id", group},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"isolation.level", "read_committed"},
        {"enable.partition.eof", "true"},
        {"auto.offset.reset", "earliest"},
    };
    rd_kafka_conf_t *conf;
    pn_err_t err = pn_kafka_conf_new(NULL, 0, w->opts.kafka, w->opts.n_kafka,
                                     fixed, sizeof fixed / sizeof fixed[0],
                                     &conf, errstr, errstr_size);
    if (err)
        return err;
    char why[512];
    w->restore_consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (!w->restore_consumer) {
        rd_kafka_conf_destroy(conf);
        return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                          "cannot create the restore consumer: %s", why);
    }
    return PN_ERR_OK;
}

typedef struct restore_progress {
    uint64_t applied;
    uint64_t skipped;
    int remaining; /* partitions not at their end yet */
    uint8_t *at_end; /* [partition]: reached its end once, counted */
    double started;
    double last_log;
} restore_progress_t;

static pn_err_t apply(pn_worker_t *w, const rd_kafka_message_t *m,
                      restore_progress_t *rp, char *errstr,
                      size_t errstr_size) {
    bool applied;
    pn_err_t err = pn_engine_apply_event(w->engine, m->partition, m->offset,
                                         m->payload, m->len, &applied, errstr,
                                         errstr_size);
    if (err) {
        pn_log_kv(PN_LOG_ERROR, "restore failed",
                  PN_LOG_STR("topic", w->opts.events_topic),
                  PN_LOG_INT("partition", m->partition),
                  PN_LOG_INT("offset", m->offset), PN_LOG_STR("error", errstr));
        return err;
    }
    if (applied)
        rp->applied++;
    else
        rp->skipped++;
    if (pn_engine_batch_commands(w->engine) == 0 &&
        (rp->applied + rp->skipped) % RESTORE_COMMIT_EVERY == 0)
        return pn_engine_commit(w->engine, NULL, 0, errstr, errstr_size);
    return PN_ERR_OK;
}

static void log_progress(const pn_worker_t *w, restore_progress_t *rp,
                         bool done) {
    double now = pn_mono_s();
    if (!done && now - rp->last_log < 1.0)
        return;
    rp->last_log = now;
    pn_log_kv(PN_LOG_INFO, done ? "restore finished" : "restoring",
              PN_LOG_STR("topic", w->opts.events_topic),
              PN_LOG_UINT("events_applied", rp->applied),
              PN_LOG_UINT("events_skipped", rp->skipped),
              PN_LOG_INT("partitions_left", rp->remaining),
              PN_LOG_DOUBLE("seconds", now - rp->started));
}

static pn_err_t assign_from_checkpoints(pn_worker_t *w, char *errstr,
                                        size_t errstr_size) {
    rd_kafka_topic_partition_list_t *events =
        rd_kafka_topic_partition_list_new(w->to_restore->cnt);
    for (int i = 0; i < w->to_restore->cnt; i++) {
        int32_t p = w->to_restore->elems[i].partition;
        int64_t next;
        pn_err_t err = pn_engine_checkpoint(w->engine, p, &next);
        if (err) {
            rd_kafka_topic_partition_list_destroy(events);
            return pn_err_set(errstr, errstr_size, err,
                              "reading the checkpoint of partition %d", p);
        }
        rd_kafka_topic_partition_list_add(events, w->opts.events_topic, p)
            ->offset = next >= 0 ? next : RD_KAFKA_OFFSET_BEGINNING;
        pn_log_kv(PN_LOG_INFO, "restoring partition",
                  PN_LOG_STR("topic", w->opts.events_topic),
                  PN_LOG_INT("partition", p), PN_LOG_INT("from_offset", next));
    }
    rd_kafka_resp_err_t rerr = rd_kafka_assign(w->restore_consumer, events);
    rd_kafka_topic_partition_list_destroy(events);
    if (rerr)
        return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                          "assigning the events topic: %s",
                          rd_kafka_err2str(rerr));
    return PN_ERR_OK;
}

/*
 * A partition is restored when the read_committed end it reached (its last
 * stable offset) is the log's end. Short of it, a transaction is still
 * open there: a previous owner's, which died or was cut off mid-commit.
 * If that owner was a zombie that still commits, its events belong before
 * anything this worker runs (the main consumer's committed offsets wait for
 * the same transaction: librdkafka asks for stable offsets); if it is
 * aborted, the end moves on. Either way the consumer reports the end again,
 * at a new offset, once the transaction is over (transaction.timeout.ms of
 * its producer at the latest). The log's end is the high watermark of the
 * fetch that found the end (the consumer keeps it; no request).
 */
static bool at_log_end(pn_worker_t *w, const rd_kafka_message_t *eof) {
    int64_t low, high;
    if (rd_kafka_get_watermark_offsets(w->restore_consumer,
                                       w->opts.events_topic, eof->partition,
                                       &low, &high) ||
        high < 0 || eof->offset >= high)
        return true; /* not knowing is no reason to stall: as before */
    pn_log_kv(PN_LOG_INFO,
              "restore waiting for an open transaction on the events "
              "partition to end",
              PN_LOG_STR("topic", w->opts.events_topic),
              PN_LOG_INT("partition", eof->partition),
              PN_LOG_INT("stable_offset", eof->offset),
              PN_LOG_INT("end_offset", high));
    return false;
}

pn_err_t pn_worker_restore(pn_worker_t *w, char *errstr, size_t errstr_size) {
    pn_err_t err = restore_consumer(w, errstr, errstr_size);
    if (!err)
        err = assign_from_checkpoints(w, errstr, errstr_size);
    if (err)
        return err;
    restore_progress_t rp = {.remaining = w->to_restore->cnt,
                             .started = pn_mono_s()};
    /* A partition can report its end more than once (a transaction that
     * was open there ends, more events come): it counts once. */
    rp.at_end = calloc((size_t)w->n_partitions, 1);
    if (!rp.at_end)
        return PN_ERR_NOMEM;
    rp.last_log = rp.started;
    pn_worker_metrics_restore(w, 0, rp.remaining);
    while (rp.remaining > 0 && !w->stop && !err) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(w->restore_consumer, 200);
        if (!m) {
            log_progress(w, &rp, false);
            pn_worker_metrics_restore(w, rp.applied, rp.remaining);
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            int32_t p = m->partition;
            bool known = p >= 0 && p < w->n_partitions;
            if (known && !rp.at_end[p] && at_log_end(w, m)) {
                rp.at_end[p] = 1;
                rp.remaining--;
            }
        }
        else if (m->err)
            pn_log_kv(PN_LOG_WARN, "restore consumer error",
                      PN_LOG_STR("error", rd_kafka_message_errstr(m)));
        else
            err = apply(w, m, &rp, errstr, errstr_size);
        rd_kafka_message_destroy(m);
        log_progress(w, &rp, false);
        pn_worker_metrics_restore(w, rp.applied, rp.remaining);
    }
    free(rp.at_end);
    rd_kafka_assign(w->restore_consumer, NULL);
    if (!err)
        err = pn_engine_commit(w->engine, NULL, 0, errstr, errstr_size);
    else
        pn_engine_discard(w->engine);
    if (err || w->stop)
        return err;
    w->stats.restored_events += rp.applied;
    log_progress(w, &rp, true);
    rd_kafka_topic_partition_list_destroy(w->to_restore);
    w->to_restore = rd_kafka_topic_partition_list_new(0);
    return PN_ERR_OK;
}
