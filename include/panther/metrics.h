/*
 * Metrics and health (DESIGN.md section 8): a small registry of counters,
 * gauges and histograms with labels, rendered in the Prometheus text
 * exposition format 0.0.4, and the liveness / readiness state behind
 * /livez and /readyz.
 *
 *   pn_metrics_t *reg = pn_metrics_new();
 *   pn_metric_t *cmds;
 *   pn_metrics_counter(reg, "panther_commands_total", "Commands executed.",
 *                      "type,status", &cmds);
 *   pn_series_t *s = pn_metric_with(cmds, (const char *[]){"UPDATE",
 *                                                         "ACCEPTED"});
 *   pn_series_add(s, 1);                    (any thread)
 *   pn_metrics_render(reg, &buf);           (any thread: the HTTP server)
 *
 * A family (pn_metric_t) has a name, a help text, a type and a fixed list
 * of label names; a series (pn_series_t) is one combination of label
 * values. Series are created on first use and live as long as the
 * registry, so a caller may keep the pointer and update it without any
 * lookup. Updates are lock-free atomics for counters and gauges and a
 * short per-family lock for histograms; rendering takes the same locks, so
 * a histogram's buckets, _count and _sum are always consistent in a scrape.
 *
 * Every update function accepts a NULL series and does nothing, so code
 * that runs with metrics disabled (no registry) needs no branches.
 *
 * @locality any thread, except pn_metrics_free.
 */
#ifndef PANTHER_METRICS_H
#define PANTHER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "panther/buf.h"
#include "panther/err.h"
#include "panther/http.h"

typedef struct pn_metrics_s pn_metrics_t;
typedef struct pn_metric_s pn_metric_t;
typedef struct pn_series_s pn_series_t;

/** Most label names of one family. */
#define PN_METRICS_MAX_LABELS 8

/** The Content-Type of the exposition format. */
#define PN_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/** An empty registry, or NULL when out of memory. Owned by the caller. */
pn_metrics_t *pn_metrics_new(void);

/** Frees the registry, its families and series. NULL-safe. No other thread
 *  may use it (or a series of it) any more. */
void pn_metrics_free(pn_metrics_t *reg);

/*
 * Registering a family. `name` must match [a-zA-Z_:][a-zA-Z0-9_:]*;
 * `labels` is a comma-separated list of label names ("type,status"; NULL
 * or "" for none), each matching [a-zA-Z_][a-zA-Z0-9_]* and not starting
 * with "__" (histograms also may not use "le"). Registering a name again
 * with the same type and labels returns the existing family (so two
 * components may share one); with another type or labels it is
 * PN_ERR_INVALID_ARG, as is a bad name. A family without labels starts
 * with its one series at zero, so it is rendered from the start. The
 * family belongs to the registry.
 */
PN_MUST_CHECK pn_err_t pn_metrics_counter(pn_metrics_t *reg, const char *name,
                                          const char *help,
                                          const char *labels,
                                          pn_metric_t **metricp);

PN_MUST_CHECK pn_err_t pn_metrics_gauge(pn_metrics_t *reg, const char *name,
                                        const char *help, const char *labels,
                                        pn_metric_t **metricp);

/** A histogram with the given finite, strictly increasing upper bounds
 *  (1 to 64 of them; +Inf is implied). */
PN_MUST_CHECK pn_err_t pn_metrics_histogram(pn_metrics_t *reg,
                                            const char *name,
                                            const char *help,
                                            const char *labels,
                                            const double *bounds,
                                            size_t n_bounds,
                                            pn_metric_t **metricp);

/**
 * The series of a family for one combination of label values (as many as
 * the family has label names, in their order; NULL for a family without
 * labels). Values are any UTF-8 text; they are escaped when rendered.
 * Creates the series on first use. A series hidden by pn_metric_remove is
 * shown again (from zero). NULL when out of memory, when metric is NULL,
 * or when a value is NULL.
 */
pn_series_t *pn_metric_with(pn_metric_t *metric, const char *const *values);

/** Hides a series (a partition no longer assigned) and resets it to zero.
 *  The pointer stays valid. No-op when there is no such series. */
void pn_metric_remove(pn_metric_t *metric, const char *const *values);

/** Counter: adds v (>= 0; negative and NaN values are ignored). Gauge: adds
 *  v (any sign). Ignored for histograms. */
void pn_series_add(pn_series_t *series, double v);

/** pn_series_add(series, 1). */
void pn_series_inc(pn_series_t *series);

/** Gauge: sets the value. Ignored for counters and histograms. */
void pn_series_set(pn_series_t *series, double v);

/** Histogram: counts one observation (NaN is ignored). */
void pn_series_observe(pn_series_t *series, double v);

/** Counter or gauge value; a histogram's observation count. 0 for NULL. */
double pn_series_value(const pn_series_t *series);

/**
 * Appends the exposition text of every family, in registration order
 * (HELP and TYPE lines, then the visible series in creation order;
 * histograms as _bucket{le=...}, _sum and _count). PN_ERR_TOO_LARGE when
 * out outgrows its bound; out then holds a prefix.
 */
PN_MUST_CHECK pn_err_t pn_metrics_render(pn_metrics_t *reg, pn_buf_t *out);

/* --- health ------------------------------------------------------------- */

typedef struct pn_health_s pn_health_t;

/**
 * Liveness and readiness of a process. Live: the main loop beat within
 * stall_ms (the clock starts at creation, so a process that is still
 * starting is live). Ready: what the loop last said, with a short reason
 * when not. Starts not ready ("starting"). NULL when out of memory.
 */
pn_health_t *pn_health_new(int64_t stall_ms);
void pn_health_free(pn_health_t *health); /* NULL-safe */

/** Records progress of the main loop (monotonic clock). NULL-safe. */
void pn_health_beat(pn_health_t *health);

/** Sets readiness; `reason` (a string literal: it is kept, not copied) says
 *  why not ready ("no partitions assigned"). NULL-safe. */
void pn_health_set_ready(pn_health_t *health, bool ready, const char *reason);

/** True when live; *age_ms (may be NULL) gets the time since the last
 *  beat. */
bool pn_health_live(const pn_health_t *health, int64_t *age_ms);

/** True when ready; *reason (may be NULL) gets the reason when not. */
bool pn_health_ready(const pn_health_t *health, const char **reason);

/* --- HTTP --------------------------------------------------------------- */

/** Routes a component hands to pn_http_server_start (they may be combined
 *  with its own):
 *   /metrics   the registry, 200 (500 if it cannot be rendered)
 *   /livez     200 "ok" while live, else 503 with the heartbeat age
 *   /readyz    200 "ready" when ready, else 503 with the reason
 *  reg and health are borrowed and must outlive the server; a NULL one
 *  leaves its route out. Returns the number of routes written (at most
 *  PN_METRICS_ROUTES). */
#define PN_METRICS_ROUTES 3
size_t pn_metrics_http_routes(pn_metrics_t *reg, pn_health_t *health,
                              pn_http_route_t *routes);

#endif
