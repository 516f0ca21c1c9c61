/*
 * The audit: reads the commands, outcomes, dead-letter and events topics
 * (read_committed, from the beginning) and checks every clause of the
 * guarantee of DESIGN.md section 6 and the invariants of section 4:
 *
 *   - every command record has exactly one outcome, or exactly one dead
 *     letter (undecodable), or was forwarded exactly once to its home
 *     partition (misrouted) where the copy has exactly one outcome;
 *   - each (stream, command id) has exactly one outcome with
 *     duplicate = false;
 *   - each stream's events have versions 1, 2, 3, ... with no gap and no
 *     repeat, and every event folds (evolve accepts it);
 *   - the numbers of every non-duplicate outcome equal the fold of the
 *     stream's events up to the outcome's version;
 *   - no InventoryReserved leaves available negative.
 *
 * Outcomes and events are matched to their command record through the
 * panther.source.* headers the worker writes.
 */
#ifndef PANTHER_AUDIT_H
#define PANTHER_AUDIT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "panther/buf.h"
#include "panther/err.h"
#include "panther/kafka.h"

typedef struct pn_audit_options {
    const char *commands_topic;
    const char *events_topic;
    const char *outcomes_topic;
    const char *dead_letter_topic;
    const char *group_id; /* the workers' group, to wait for it to catch up */
    const pn_kafka_prop_t *kafka;
    size_t n_kafka;
    /* Wait up to this long for the group's committed offsets to reach the
     * end of the commands topic, and for every transaction open on an output
     * topic to end, before auditing; 0 = audit at once. */
    int wait_ms;
    size_t max_reported; /* violations described in the report; 0 = 20 */
    /* Schema Registry for Confluent-framed commands, as the workers use it
     * (worker.h); NULL or "" for none. The audit fails rather than judge a
     * record whose schema the registry cannot serve now. */
    const char *schema_registry_url;
    const char *schema_registry_auth;
} pn_audit_options_t;

typedef struct pn_audit_report {
    uint64_t command_records;
    uint64_t undecodable;
    uint64_t misrouted;
    uint64_t forwarded_copies;
    uint64_t outcomes;
    uint64_t duplicate_outcomes;
    uint64_t dead_letters;
    uint64_t events;
    uint64_t streams;
    uint64_t accepted;
    uint64_t rejected;
    uint64_t violations;
    /* When audited, the group had consumed every command and no transaction
     * was open on an output topic. */
    bool caught_up;
    pn_buf_t details; /* one line per reported violation */
} pn_audit_report_t;

/**
 * Runs the audit. Returns an error only when the topics could not be read;
 * violations are counted in the report. Free the report with
 * pn_audit_report_free().
 */
PN_MUST_CHECK pn_err_t pn_audit_run(const pn_audit_options_t *opts,
                                    pn_audit_report_t *report, char *errstr,
                                    size_t errstr_size);

void pn_audit_report_free(pn_audit_report_t *report);

/** Writes a human-readable report (counts, then violations). */
void pn_audit_report_print(const pn_audit_report_t *report, FILE *out);

/** The report as one JSON object on one line. */
void pn_audit_report_print_json(const pn_audit_report_t *report, FILE *out);

#endif
