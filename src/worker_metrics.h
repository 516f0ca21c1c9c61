/*
 * The worker's metrics and health (metrics.h): the hooks worker.c,
 * worker_records.c and restore.c call at the points where things happen.
 * All run on the worker's thread; the registry and the health state they
 * publish into are read by the HTTP server's threads.
 *
 * Counts of commands, events, dead letters and forwards are published when
 * their batch commits, so a batch that is aborted and retried counts once.
 * Every hook is a no-op when the worker has no registry or health.
 */
#ifndef PANTHER_WORKER_METRICS_H
#define PANTHER_WORKER_METRICS_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "panther/domain.h"
#include "panther/err.h"

typedef struct pn_worker_s pn_worker_t;
typedef struct pn_worker_metrics pn_worker_metrics_t;

/** Registers the worker's families in w->opts.metrics (if any) and sets
 *  w->metrics. Needs w->n_partitions. */
pn_err_t pn_worker_metrics_new(pn_worker_t *w, char *errstr,
                               size_t errstr_size);
void pn_worker_metrics_free(pn_worker_metrics_t *wm); /* NULL-safe */

/** One command executed in the open batch. */
void pn_worker_metrics_outcome(pn_worker_t *w, const pn_outcome_t *outcome);

/** A batch (transaction) starts / committed. */
void pn_worker_metrics_batch_begin(pn_worker_t *w);
void pn_worker_metrics_batch_committed(pn_worker_t *w);

/** One consumed record joins the open batch (for the latency histogram,
 *  observed when the batch commits). */
void pn_worker_metrics_record(pn_worker_t *w, const rd_kafka_message_t *m);

/** Once per loop iteration: heartbeat, readiness, periodic gauges. */
void pn_worker_metrics_tick(pn_worker_t *w);

/** Restore progress: events applied so far in this restore (starting at
 *  0) and partitions not yet at their end. Also beats. */
void pn_worker_metrics_restore(pn_worker_t *w, uint64_t applied,
                               int remaining);

/** librdkafka's statistics callback for the consumer (consumer lag). */
int pn_worker_metrics_stats_cb(rd_kafka_t *rk, char *json, size_t json_len,
                               void *opaque);

#endif
