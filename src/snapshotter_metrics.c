#include "snapshotter_metrics.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"

/* One counter per monotonic field of pn_snapshotter_stats_t. */
static const struct {
    const char *name;
    const char *help;
    size_t offset;
} counters[] = {
    {"panther_snapshotter_events_total", "Event records read from the events topic.",
     offsetof(pn_snapshotter_stats_t, events)},
    {"panther_snapshotter_events_applied_total", "Events folded into a snapshot.",
     offsetof(pn_snapshotter_stats_t, applied)},
    {"panther_snapshotter_events_skipped_total",
     "Events at or below the stored version (replays), skipped.",
     offsetof(pn_snapshotter_stats_t, skipped)},
    {"panther_snapshotter_gaps_total", "Version gaps found (the stream is marked gapped).",
     offsetof(pn_snapshotter_stats_t, gaps)},
    {"panther_snapshotter_gapped_events_total",
     "Events not applied because their stream is gapped.",
     offsetof(pn_snapshotter_stats_t, gapped_events)},
    {"panther_snapshotter_bad_events_total",
     "Events that did not decode or that evolve refused.",
     offsetof(pn_snapshotter_stats_t, bad_events)},
    {"panther_snapshotter_snapshots_published_total",
     "Snapshot records acknowledged by the broker.",
     offsetof(pn_snapshotter_stats_t, snapshots_published)},
    {"panther_snapshotter_publish_failures_total",
     "Checkpoints retried because a delivery failed.",
     offsetof(pn_snapshotter_stats_t, publish_failures)},
    {"panther_snapshotter_checkpoints_total", "Checkpoints written to RocksDB.",
     offsetof(pn_snapshotter_stats_t, checkpoints)},
    {"panther_snapshotter_offset_commits_total", "Consumer offset commits.",
     offsetof(pn_snapshotter_stats_t, offset_commits)},
    {"panther_snapshotter_rebalances_total", "Consumer group rebalances.",
     offsetof(pn_snapshotter_stats_t, rebalances)},
};
#define N_COUNTERS (sizeof counters / sizeof counters[0])

struct pn_snapshotter_metrics {
    pn_snapshotter_t *snapshotter;
    pn_series_t *counter[N_COUNTERS];
    uint64_t last[N_COUNTERS];
    pn_series_t *gapped_streams, *assigned, *caught_up;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool running;
    bool stop;
};

static pn_series_t *gauge(pn_metrics_t *reg, const char *name, const char *help) {
    pn_metric_t *metric;
    return pn_metrics_gauge(reg, name, help, NULL, &metric) ? NULL
                                                           : pn_metric_with(metric, NULL);
}

pn_snapshotter_metrics_t *pn_snapshotter_metrics_new(pn_metrics_t *reg) {
    pn_snapshotter_metrics_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    bool ok = true;
    for (size_t i = 0; i < N_COUNTERS && ok; i++) {
        pn_metric_t *metric;
        ok = pn_metrics_counter(reg, counters[i].name, counters[i].help, NULL,
                                &metric) == PN_ERR_OK &&
             (m->counter[i] = pn_metric_with(metric, NULL));
    }
    m->gapped_streams = gauge(reg, "panther_snapshotter_gapped_streams",
                              "Streams held back at a version gap.");
    m->assigned = gauge(reg, "panther_snapshotter_partitions_assigned",
                        "Events-topic partitions assigned to this snapshotter.");
    m->caught_up = gauge(reg, "panther_snapshotter_partitions_caught_up",
                         "Assigned partitions that reached their end once.");
    if (!ok || !m->gapped_streams || !m->assigned || !m->caught_up) {
        free(m);
        return NULL;
    }
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->wake, NULL);
    return m;
}

void pn_snapshotter_metrics_update(pn_snapshotter_metrics_t *m) {
    pn_snapshotter_stats_t st;
    pn_snapshotter_get_stats(m->snapshotter, &st);
    for (size_t i = 0; i < N_COUNTERS; i++) {
        uint64_t now = *(const uint64_t *)((const char *)&st + counters[i].offset);
        if (now > m->last[i])
            pn_series_add(m->counter[i], (double)(now - m->last[i]));
        m->last[i] = now;
    }
    pn_series_set(m->gapped_streams, (double)st.gapped_streams);
    pn_series_set(m->assigned, st.partitions_assigned);
    pn_series_set(m->caught_up, st.partitions_caught_up);
}

static void *mirror(void *arg) {
    pn_snapshotter_metrics_t *m = arg;
    pthread_mutex_lock(&m->lock);
    while (!m->stop) {
        pthread_mutex_unlock(&m->lock);
        pn_snapshotter_metrics_update(m);
        pthread_mutex_lock(&m->lock);
        struct timespec until = pn_timespec_after_ms(CLOCK_REALTIME, 500);
        if (!m->stop)
            pthread_cond_timedwait(&m->wake, &m->lock, &until);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

pn_err_t pn_snapshotter_metrics_start(pn_snapshotter_metrics_t *m,
                                      pn_snapshotter_t *s) {
    m->snapshotter = s;
    if (pthread_create(&m->thread, NULL, mirror, m))
        return PN_ERR_NOMEM;
    m->running = true;
    return PN_ERR_OK;
}

void pn_snapshotter_metrics_free(pn_snapshotter_metrics_t *m) {
    if (!m)
        return;
    if (m->running) {
        pthread_mutex_lock(&m->lock);
        m->stop = true;
        pthread_cond_signal(&m->wake);
        pthread_mutex_unlock(&m->lock);
        pthread_join(m->thread, NULL);
    }
    pthread_cond_destroy(&m->wake);
    pthread_mutex_destroy(&m->lock);
    free(m);
}
