/*
 * The demo's order flow: a sequence of command records, a function of the
 * seed, that reads like a day at a small retailer (initial stock counts,
 * multi-line orders, shipments, cancellations, deliveries, cycle counts,
 * resent ids, mistakes, a misrouted producer and undecodable records),
 * together with its prediction: the flow runs every command it emits
 * through the domain's decide and evolve, in the order the workers will
 * see them per stream, and keeps the resulting states and counts.
 *
 * Records are built in memory first (a demo, not a load generator), then
 * produced by src/demo.c. Internal to panther_core.
 */
#ifndef PANTHER_DEMO_FLOW_H
#define PANTHER_DEMO_FLOW_H

#include <stdint.h>

#include "hashmap.h"
#include "panther/buf.h"
#include "panther/demo.h"

typedef struct pn_demo_flow_options {
    int commands, skus, nodes, partitions;
    uint64_t seed;
    int64_t start_ms; /* `at` of the first command */
} pn_demo_flow_options_t;

/** One record for the commands topic; offsets into pn_demo_flow_t.bytes. */
typedef struct pn_demo_record {
    int32_t partition; /* -1: by key (murmur2); else explicit (misrouted) */
    size_t key_off, key_len;
    size_t value_off, value_len;
} pn_demo_record_t;

typedef struct pn_demo_flow {
    pn_buf_t bytes; /* keys and values of all records */
    pn_demo_record_t *records;
    size_t n_records, cap_records;
    pn_demo_flow_stats_t sent;
    pn_demo_counts_t expected;
    pn_map_t streams; /* stream key -> predicted pn_state_t */
    pn_map_t seen;    /* stream key '\0' command id -> its pn_outcome_t */
} pn_demo_flow_t;

/** Builds the flow (allocates; free with pn_demo_flow_free even on
 *  failure). */
PN_MUST_CHECK pn_err_t pn_demo_flow_build(const pn_demo_flow_options_t *opts,
                                          pn_demo_flow_t *flow, char *errstr,
                                          size_t errstr_size);

/** The predicted state of a stream, or NULL when no command reached it. */
const pn_state_t *pn_demo_flow_state(const pn_demo_flow_t *flow,
                                     const char *key, size_t len);

/** Adds one outcome to the counts (duplicates apart, rejections by
 *  reason). */
void pn_demo_count_outcome(pn_demo_counts_t *counts,
                           const pn_outcome_t *outcome);

/** NULL-safe. */
void pn_demo_flow_free(pn_demo_flow_t *flow);

#endif
