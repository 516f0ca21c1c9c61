/* The snapshotter's counters as Prometheus metrics: a thread copies
 * pn_snapshotter_get_stats() into a registry twice a second, so the
 * snapshotter's loop needs no hooks. Internal. */
#ifndef PANTHER_SNAPSHOTTER_METRICS_H
#define PANTHER_SNAPSHOTTER_METRICS_H

#include "panther/metrics.h"
#include "panther/snapshotter.h"

typedef struct pn_snapshotter_metrics pn_snapshotter_metrics_t;

/** Registers the snapshotter's families in reg (borrowed). NULL on
 *  failure. Call pn_snapshotter_metrics_start once the snapshotter exists. */
pn_snapshotter_metrics_t *pn_snapshotter_metrics_new(pn_metrics_t *reg);

/** Starts mirroring s's stats (s is borrowed until _free). */
PN_MUST_CHECK pn_err_t pn_snapshotter_metrics_start(pn_snapshotter_metrics_t *m,
                                                    pn_snapshotter_t *s);

/** Copies the current stats once (also what the thread does). */
void pn_snapshotter_metrics_update(pn_snapshotter_metrics_t *m);

/** Stops the thread and frees. NULL-safe. */
void pn_snapshotter_metrics_free(pn_snapshotter_metrics_t *m);

#endif
