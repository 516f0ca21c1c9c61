/*
 * The worker's metrics and health. The loop is single-threaded and the
 * registry is thread-safe, so the worker keeps plain per-batch tallies and
 * publishes them (atomics) when the batch commits; periodic values (memory,
 * cache, assignment) are sampled at most once a second.
 */
#include "worker_metrics.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "panther/metrics.h"
#include "worker_internal.h"
#include "clock.h"

/* Readiness waits for this long at most for a fresh look at the
 * assignment; rebalances trigger one at once. */
#define SAMPLE_EVERY_MS 1000

struct pn_worker_metrics {
    pn_health_t *health;
    pn_series_t *commands[PN_CMD__COUNT][2]; /* by type, status */
    pn_series_t *duplicates[PN_CMD__COUNT];
    pn_series_t *rejections[PN_REASON__COUNT];
    pn_series_t *events, *dead_letters, *forwarded;
    pn_series_t *txn_committed, *txn_aborted, *rebuilds, *rebalances;
    pn_series_t *restored, *batch_records, *latency, *commit_time;
    pn_series_t *assigned, *restoring, *store_bytes, *cached_streams;
    pn_series_t *cache_hits, *cache_misses;
    pn_metric_t *lag;
    pn_series_t **lag_series; /* by partition, created on first use */
    bool *lag_shown;
    int32_t n_partitions;

    /* The open batch: published when it commits, dropped otherwise. */
    uint64_t pending[PN_CMD__COUNT][2];
    uint64_t pending_dup[PN_CMD__COUNT];
    uint64_t pending_reason[PN_REASON__COUNT];
    pn_worker_stats_t at_batch;
    int64_t *pending_ts; /* Kafka timestamps of the open batch's records */
    size_t n_pending_ts, cap_pending_ts;

    pn_worker_stats_t published; /* loop-level counters already counted */
    pn_engine_stats_t engine_published;
    uint64_t restore_seen;
    int n_assigned;
    uint64_t assigned_rebalances;
    int64_t assigned_at_ms, sampled_at_ms;
};

static const double batch_bounds[] = {1,   2,    5,    10,   20,    50,
                                      100, 200,  500,  1000, 2000,  5000,
                                      10000, 20000, 50000};
static const double latency_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25,  0.5,  1,     2.5,  5,
                                        10,    30,   60,    300};
static const double commit_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                       0.05,  0.1,    0.25,  0.5,  1,
                                       2.5,   5,      10};

/* --- registration ----------------------------------------------------------- */

typedef struct reg_ctx {
    pn_metrics_t *reg;
    pn_err_t err;
    const char *failed;
} reg_ctx_t;

static pn_series_t *plain(reg_ctx_t *c, bool gauge, const char *name,
                          const char *help) {
    pn_metric_t *m = NULL;
    if (c->err)
        return NULL;
    c->err = gauge ? pn_metrics_gauge(c->reg, name, help, NULL, &m)
                   : pn_metrics_counter(c->reg, name, help, NULL, &m);
    if (c->err)
        c->failed = name;
    return pn_metric_with(m, NULL);
}

static pn_metric_t *family(reg_ctx_t *c, bool gauge, const char *name,
                           const char *help, const char *labels) {
    pn_metric_t *m = NULL;
    if (c->err)
        return NULL;
    c->err = gauge ? pn_metrics_gauge(c->reg, name, help, labels, &m)
                   : pn_metrics_counter(c->reg, name, help, labels, &m);
    if (c->err)
        c->failed = name;
    return m;
}

static pn_series_t *histogram(reg_ctx_t *c, const char *name,
                              const char *help, const double *bounds,
                              size_t n) {
    pn_metric_t *m = NULL;
    if (c->err)
        return NULL;
    c->err = pn_metrics_histogram(c->reg, name, help, NULL, bounds, n, &m);
    if (c->err)
        c->failed = name;
    return pn_metric_with(m, NULL);
}

/* Every command type and status, rejection reason and result exists from
 * the start, at zero, so rate() works before the first of each. */
static void register_commands(reg_ctx_t *c, pn_worker_metrics_t *wm) {
    pn_metric_t *cmds = family(
        c, false, "panther_commands_total",
        "Commands executed, by type (UPDATE, RESERVE, CANCEL, SHIP) and "
        "status (ACCEPTED, REJECTED); counted when their batch commits.",
        "type,status");
    pn_metric_t *dups = family(
        c, false, "panther_duplicate_commands_total",
        "Commands whose id was already executed on their stream (answered "
        "again with duplicate = true), by type; included in "
        "panther_commands_total.",
        "type");
    pn_metric_t *rej = family(c, false, "panther_rejections_total",
                              "Rejected commands by reason.", "reason");
    for (int t = 0; t < PN_CMD__COUNT; t++) {
        const char *type = pn_command_type_name((pn_command_type_t)t);
        for (int s = 0; s < 2; s++)
            wm->commands[t][s] = pn_metric_with(
                cmds, (const char *const[]){type,
                                            pn_status_name((pn_status_t)s)});
        wm->duplicates[t] = pn_metric_with(dups, (const char *const[]){type});
    }
    for (int r = 0; r < PN_REASON__COUNT; r++)
        wm->rejections[r] = pn_metric_with(
            rej, (const char *const[]){pn_reason_name((pn_reason_t)r)});
}

static void register_batches(reg_ctx_t *c, pn_worker_metrics_t *wm) {
    wm->events = plain(c, false, "panther_events_total",
                       "Events published to the events topic (committed).");
    wm->dead_letters = plain(
        c, false, "panther_dead_letters_total",
        "Command records that could not be decoded and went to the "
        "dead-letter topic (committed).");
    wm->forwarded = plain(
        c, false, "panther_forwarded_commands_total",
        "Commands that arrived on the wrong partition and were forwarded to "
        "their stream's partition (committed).");
    pn_metric_t *txn = family(
        c, false, "panther_transactions_total",
        "Batches committed (one Kafka transaction each with exactly_once) "
        "and aborted (rewound to the committed offsets and retried).",
        "result");
    wm->txn_committed = pn_metric_with(txn, (const char *const[]){"committed"});
    wm->txn_aborted = pn_metric_with(txn, (const char *const[]){"aborted"});
    wm->rebuilds = plain(c, false, "panther_producer_rebuilds_total",
                         "Transactional producers rebuilt after fencing or a "
                         "fatal error.");
    wm->rebalances = plain(c, false, "panther_rebalances_total",
                           "Consumer group rebalances seen (assignments and "
                           "revocations).");
    wm->batch_records = histogram(
        c, "panther_batch_records",
        "Command records per committed batch (commands, dead letters and "
        "forwards).",
        batch_bounds, sizeof batch_bounds / sizeof batch_bounds[0]);
    wm->latency = histogram(
        c, "panther_command_latency_seconds",
        "Time from a command record's Kafka timestamp to the commit of the "
        "batch that answered it.",
        latency_bounds, sizeof latency_bounds / sizeof latency_bounds[0]);
    wm->commit_time = histogram(
        c, "panther_transaction_commit_seconds",
        "Time the loop spends committing a batch to Kafka (offsets into the "
        "transaction and the commit; with at_least_once the flush and the "
        "offset commit). Records wait for it, so it adds to latency.",
        commit_bounds, sizeof commit_bounds / sizeof commit_bounds[0]);
}

static void register_state(reg_ctx_t *c, pn_worker_metrics_t *wm) {
    wm->lag = family(
        c, true, "panther_consumer_lag_records",
        "Command records between the worker's position and the end (last "
        "stable offset) of each assigned partition, from librdkafka's "
        "statistics.",
        "topic,partition");
    wm->assigned = plain(c, true, "panther_partitions_assigned",
                         "Command partitions assigned to this worker.");
    wm->restoring = plain(c, true, "panther_partitions_restoring",
                          "Assigned partitions still replaying their events "
                          "(the worker is ready when this is 0).");
    wm->restored = plain(c, false, "panther_restored_events_total",
                         "Events replayed from the events topic into the "
                         "local store by restores.");
    wm->store_bytes = plain(c, true, "panther_store_memory_bytes",
                            "Approximate memory held by RocksDB (memtables, "
                            "block cache, table readers).");
    wm->cached_streams = plain(c, true, "panther_cached_streams",
                               "Stream states held in the in-process cache.");
    pn_metric_t *lookups = family(
        c, false, "panther_state_cache_lookups_total",
        "Stream state lookups by result: hit (in-process cache) or miss "
        "(loaded from RocksDB).",
        "result");
    wm->cache_hits = pn_metric_with(lookups, (const char *const[]){"hit"});
    wm->cache_misses = pn_metric_with(lookups, (const char *const[]){"miss"});
}

pn_err_t pn_worker_metrics_new(pn_worker_t *w, char *errstr,
                               size_t errstr_size) {
    w->metrics = NULL;
    if (!w->opts.metrics && !w->opts.health)
        return PN_ERR_OK;
    pn_worker_metrics_t *wm = calloc(1, sizeof *wm);
    if (!wm)
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM, "out of memory");
    wm->health = w->opts.health;
    wm->n_partitions = w->n_partitions;
    wm->lag_series = calloc((size_t)w->n_partitions, sizeof *wm->lag_series);
    wm->lag_shown = calloc((size_t)w->n_partitions, sizeof *wm->lag_shown);
    wm->cap_pending_ts = (size_t)w->opts.batch_max_commands;
    wm->pending_ts = calloc(wm->cap_pending_ts, sizeof *wm->pending_ts);
    w->metrics = wm;
    if (!wm->lag_series || !wm->lag_shown || !wm->pending_ts)
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM, "out of memory");
    if (!w->opts.metrics)
        return PN_ERR_OK;
    reg_ctx_t c = {.reg = w->opts.metrics};
    register_commands(&c, wm);
    register_batches(&c, wm);
    register_state(&c, wm);
    if (c.err)
        return pn_err_set(errstr, errstr_size, c.err,
                          "metrics: cannot register %s: %s", c.failed,
                          pn_err_str(c.err));
    return PN_ERR_OK;
}

void pn_worker_metrics_free(pn_worker_metrics_t *wm) {
    if (!wm)
        return;
    free(wm->lag_series);
    free(wm->lag_shown);
    free(wm->pending_ts);
    free(wm);
}

/* --- batches ---------------------------------------------------------------- */

void pn_worker_metrics_outcome(pn_worker_t *w, const pn_outcome_t *o) {
    pn_worker_metrics_t *wm = w->metrics;
    if (!wm || o->command_type < 0 || o->command_type >= PN_CMD__COUNT)
        return;
    wm->pending[o->command_type][o->status == PN_STATUS_REJECTED]++;
    if (o->duplicate)
        wm->pending_dup[o->command_type]++;
    if (o->reason >= 0 && o->reason < PN_REASON__COUNT)
        wm->pending_reason[o->reason]++;
}

void pn_worker_metrics_batch_begin(pn_worker_t *w) {
    pn_worker_metrics_t *wm = w->metrics;
    if (!wm)
        return;
    memset(wm->pending, 0, sizeof wm->pending);
    memset(wm->pending_dup, 0, sizeof wm->pending_dup);
    memset(wm->pending_reason, 0, sizeof wm->pending_reason);
    wm->n_pending_ts = 0;
    wm->at_batch = w->stats;
}

void pn_worker_metrics_record(pn_worker_t *w, const rd_kafka_message_t *m) {
    pn_worker_metrics_t *wm = w->metrics;
    if (!wm || !wm->latency || wm->n_pending_ts == wm->cap_pending_ts)
        return;
    wm->pending_ts[wm->n_pending_ts++] = rd_kafka_message_timestamp(m, NULL);
}

void pn_worker_metrics_batch_committed(pn_worker_t *w) {
    pn_worker_metrics_t *wm = w->metrics;
    if (!wm)
        return;
    for (int t = 0; t < PN_CMD__COUNT; t++) {
        for (int s = 0; s < 2; s++)
            pn_series_add(wm->commands[t][s], (double)wm->pending[t][s]);
        pn_series_add(wm->duplicates[t], (double)wm->pending_dup[t]);
    }
    for (int r = 0; r < PN_REASON__COUNT; r++)
        pn_series_add(wm->rejections[r], (double)wm->pending_reason[r]);
    const pn_worker_stats_t *now = &w->stats, *then = &wm->at_batch;
    pn_series_add(wm->events, (double)(now->events - then->events));
    pn_series_add(wm->dead_letters,
                  (double)(now->dead_letters - then->dead_letters));
    pn_series_add(wm->forwarded, (double)(now->forwarded - then->forwarded));
    pn_series_inc(wm->txn_committed);
    pn_series_observe(wm->batch_records, (double)w->txn_records);
    pn_series_observe(wm->commit_time,
                      (double)(pn_mono_ms() - w->commit_started_ms) / 1000.0);
    int64_t now_ms = pn_wall_ms();
    for (size_t i = 0; wm->latency && i < wm->n_pending_ts; i++) {
        int64_t ts = wm->pending_ts[i];
        if (ts >= 0)
            pn_series_observe(wm->latency,
                              (double)(now_ms > ts ? now_ms - ts : 0) / 1000.0);
    }
    pn_worker_metrics_batch_begin(w);
}

/* --- the loop --------------------------------------------------------------- */

static void publish_delta(pn_series_t *s, uint64_t now, uint64_t *seen) {
    if (now > *seen)
        pn_series_add(s, (double)(now - *seen));
    *seen = now;
}

/* Counters that change outside committed batches. */
static void publish_loop_counters(pn_worker_t *w, pn_worker_metrics_t *wm) {
    publish_delta(wm->txn_aborted, w->stats.aborts, &wm->published.aborts);
    publish_delta(wm->rebuilds, w->stats.producer_rebuilds,
                  &wm->published.producer_rebuilds);
    publish_delta(wm->rebalances, w->stats.rebalances,
                  &wm->published.rebalances);
}

static void sample(pn_worker_t *w, pn_worker_metrics_t *wm) {
    pn_series_set(wm->store_bytes, (double)pn_store_memory_usage(w->store));
    pn_engine_stats_t es;
    pn_engine_get_stats(w->engine, &es);
    pn_series_set(wm->cached_streams, (double)es.cached_streams);
    publish_delta(wm->cache_hits, es.cache_hits,
                  &wm->engine_published.cache_hits);
    publish_delta(wm->cache_misses, es.cache_misses,
                  &wm->engine_published.cache_misses);
}

static void refresh_assignment(pn_worker_t *w, pn_worker_metrics_t *wm,
                               int64_t now) {
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (!rd_kafka_assignment(w->consumer, &parts) && parts) {
        wm->n_assigned = parts->cnt;
        rd_kafka_topic_partition_list_destroy(parts);
    }
    wm->assigned_rebalances = w->stats.rebalances;
    wm->assigned_at_ms = now;
    pn_series_set(wm->assigned, wm->n_assigned);
}

void pn_worker_metrics_tick(pn_worker_t *w) {
    pn_worker_metrics_t *wm = w->metrics;
    if (!wm)
        return;
    pn_health_beat(wm->health);
    publish_loop_counters(w, wm);
    int64_t now = pn_mono_ms();
    if (w->stats.rebalances != wm->assigned_rebalances ||
        now - wm->assigned_at_ms >= SAMPLE_EVERY_MS)
        refresh_assignment(w, wm, now);
    if (now - wm->sampled_at_ms >= SAMPLE_EVERY_MS) {
        sample(w, wm);
        wm->sampled_at_ms = now;
    }
    pn_series_set(wm->restoring, w->to_restore->cnt);
    if (w->stop)
        pn_health_set_ready(wm->health, false, "stopping");
    else if (w->to_restore->cnt)
        pn_health_set_ready(wm->health, false, "restoring partitions");
    else if (wm->n_assigned == 0)
        pn_health_set_ready(wm->health, false, "no partitions assigned");
    else
        pn_health_set_ready(wm->health, true, NULL);
}

void pn_worker_metrics_restore(pn_worker_t *w, uint64_t applied,
                               int remaining) {
    pn_worker_metrics_t *wm = w->metrics;
    if (!wm)
        return;
    pn_health_beat(wm->health);
    pn_health_set_ready(wm->health, false, "restoring partitions");
    if (applied < wm->restore_seen || applied == 0)
        wm->restore_seen = 0;
    publish_delta(wm->restored, applied, &wm->restore_seen);
    pn_series_set(wm->restoring, remaining);
}

/* --- consumer lag from librdkafka's statistics ------------------------------ */

static int64_t jint(json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

/* Records between the position and the end; -1 when unknown. The position
 * is what the worker consumed (app_offset), else the committed offset the
 * fetch started from, else the fetch position. librdkafka's own
 * consumer_lag uses its committed offset, which transactional commits
 * (sent by the producer) never move. */
static int64_t partition_lag(json_t *p) {
    json_t *desired = json_object_get(p, "desired");
    if (!json_is_true(desired))
        return -1;
    int64_t end = jint(p, "ls_offset");
    if (end < 0)
        end = jint(p, "hi_offset");
    int64_t pos = jint(p, "app_offset");
    if (pos < 0)
        pos = jint(p, "committed_offset");
    if (pos < 0) /* nothing consumed or committed yet: where fetching is */
        pos = jint(p, "next_offset");
    if (end < 0 || pos < 0)
        return -1;
    return end > pos ? end - pos : 0;
}

static void set_lag(pn_worker_t *w, pn_worker_metrics_t *wm, int32_t p,
                    int64_t lag) {
    char partition[16];
    snprintf(partition, sizeof partition, "%d", (int)p);
    const char *const labels[] = {w->opts.commands_topic, partition};
    if (lag < 0) {
        if (wm->lag_shown[p])
            pn_metric_remove(wm->lag, labels);
        wm->lag_shown[p] = false;
        return;
    }
    if (!wm->lag_shown[p] || !wm->lag_series[p])
        wm->lag_series[p] = pn_metric_with(wm->lag, labels);
    wm->lag_shown[p] = wm->lag_series[p] != NULL;
    pn_series_set(wm->lag_series[p], (double)lag);
}

int pn_worker_metrics_stats_cb(rd_kafka_t *rk, char *json, size_t json_len,
                               void *opaque) {
    (void)rk;
    pn_worker_t *w = opaque;
    pn_worker_metrics_t *wm = w->metrics;
    if (!wm || !wm->lag)
        return 0; /* librdkafka frees json */
    json_t *root = json_loadb(json, json_len, 0, NULL);
    json_t *parts = json_object_get(
        json_object_get(json_object_get(root, "topics"), w->opts.commands_topic),
        "partitions");
    int64_t *lags = malloc((size_t)wm->n_partitions * sizeof *lags);
    if (lags) {
        for (int32_t p = 0; p < wm->n_partitions; p++)
            lags[p] = -1;
        const char *key;
        json_t *part;
        json_object_foreach(parts, key, part) {
            int64_t p = jint(part, "partition");
            if (p >= 0 && p < wm->n_partitions)
                lags[p] = partition_lag(part);
        }
        for (int32_t p = 0; p < wm->n_partitions; p++)
            set_lag(w, wm, p, lags[p]);
        free(lags);
    }
    json_decref(root);
    return 0;
}
