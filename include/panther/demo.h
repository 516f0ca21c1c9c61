/*
 * The demo (DESIGN.md section 9, "embedded default for a first look"): the
 * whole flow in one process with no broker. It starts librdkafka's
 * in-process mock cluster, creates the topics, runs workers on threads,
 * publishes a realistic order flow (restocks, reservations, shipments,
 * cancellations, a few resent ids, mistakes and undecodable records), waits
 * until every record has been answered, then reads the events and outcomes
 * topics back, runs the audit and compares the final state of every stream
 * with what the order flow itself predicted.
 *
 * The mock broker of librdkafka 2.0.2 speaks the transactional protocol but
 * does not keep transactional offset commits (TxnOffsetCommit is answered
 * and dropped) and does not hide aborted records. The demo therefore keeps
 * its consumer group stable for the whole run (nothing is produced until
 * every worker holds its partitions and no rebalance is under way; all
 * stop together) and waits on the workers' counters rather than on the
 * group's committed offsets. The guarantee itself, under
 * crashes and rebalances, is tested against a real broker.
 *
 * @locality pn_demo_run() runs on the caller's thread and starts its own
 * worker threads; it sets nothing process-wide (the caller chooses the log
 * level).
 */
#ifndef PANTHER_DEMO_H
#define PANTHER_DEMO_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "panther/audit.h"
#include "panther/domain.h"
#include "panther/err.h"
#include "panther/worker.h"

/* Defaults and limits of the options (the CLI's ranges). */
#define PN_DEMO_DEFAULT_COMMANDS 5000
#define PN_DEMO_DEFAULT_SKUS 12
#define PN_DEMO_DEFAULT_NODES 3
#define PN_DEMO_DEFAULT_WORKERS 2
#define PN_DEMO_DEFAULT_PARTITIONS 4
#define PN_DEMO_DEFAULT_SEED 42
/* The mock broker keeps at most 5 MiB per partition and drops older
 * records; 20,000 commands fit even when they all land on one partition. */
#define PN_DEMO_MAX_COMMANDS 20000
#define PN_DEMO_MAX_SKUS 1000
#define PN_DEMO_MAX_NODES 100
#define PN_DEMO_MAX_STREAMS 10000
#define PN_DEMO_MAX_WORKERS 16
#define PN_DEMO_MAX_PARTITIONS 64
#define PN_DEMO_MOCK_BROKERS 3

/* The demo's cluster is its own: DESIGN.md's default names. */
#define PN_DEMO_TOPIC_COMMANDS "inventory.commands"
#define PN_DEMO_TOPIC_EVENTS "inventory.events"
#define PN_DEMO_TOPIC_OUTCOMES "inventory.outcomes"
#define PN_DEMO_TOPIC_DEAD_LETTERS "inventory.commands.DLT"
#define PN_DEMO_GROUP "panther-worker"

/** Where the run is, for a progress line. */
typedef struct pn_demo_progress {
    const char *phase; /* "starting", "joining", "running", "stopping",
                          "auditing" */
    uint64_t records;  /* command-topic records of the flow */
    uint64_t produced; /* acknowledged by the mock cluster */
    uint64_t answered; /* outcomes + dead letters the workers published */
    double seconds;    /* since the run started */
} pn_demo_progress_t;

/** Called on the caller's thread about once a second and at each phase. */
typedef void (*pn_demo_progress_fn)(void *opaque,
                                    const pn_demo_progress_t *progress);

/** Options; zero values mean the defaults above. */
typedef struct pn_demo_options {
    int commands;   /* decodable command records in the flow */
    int skus;       /* SKUs; streams = skus x nodes */
    int nodes;      /* fulfillment nodes */
    int workers;    /* worker threads, one consumer group */
    int partitions; /* of every topic */
    uint64_t seed;  /* the order flow is a function of the seed */
    bool seed_set;  /* false: PN_DEMO_DEFAULT_SEED */
    bool at_least_once; /* default: exactly_once */
    int timeout_ms; /* for the workers to answer everything; 0 = 120 s */
    /* Scratch directory for the worker stores; NULL: a new one under
     * $TMPDIR (or /tmp), removed at the end. */
    const char *dir;
    pn_demo_progress_fn progress; /* may be NULL */
    void *progress_opaque;
    /* Polled: when it becomes non-zero (a signal handler) the run stops
     * its workers, cleans up and returns PN_ERR_STATE. May be NULL. */
    const volatile sig_atomic_t *interrupted;
} pn_demo_options_t;

/** Checks the options against the limits; PN_ERR_INVALID_ARG names the
 *  option ("skus: ...") in errstr. */
PN_MUST_CHECK pn_err_t pn_demo_options_check(const pn_demo_options_t *opts,
                                             char *errstr,
                                             size_t errstr_size);

/** Replies counted by command type (non-duplicates), rejection reason,
 *  plus duplicates (a resent id answered again) and events. */
typedef struct pn_demo_counts {
    uint64_t accepted[PN_CMD__COUNT];
    uint64_t rejected[PN_CMD__COUNT];
    uint64_t reasons[PN_REASON__COUNT];
    uint64_t duplicates;
    uint64_t events;
} pn_demo_counts_t;

/** What the order flow sent to the commands topic. */
typedef struct pn_demo_flow_stats {
    uint64_t records;                /* every record, undecodable included */
    uint64_t commands;               /* decodable command records */
    uint64_t by_type[PN_CMD__COUNT]; /* of the commands */
    uint64_t orders;                 /* distinct orders placed */
    uint64_t resent;                 /* records sent again (same id) */
    uint64_t mistakes;               /* commands meant to be rejected */
    uint64_t misrouted;              /* sent to a wrong partition */
    uint64_t undecodable;            /* garbage: must become dead letters */
} pn_demo_flow_stats_t;

/** One stream's final state, folded from the events topic. */
typedef struct pn_demo_stream {
    char *sku_id;  /* owned */
    char *node_id; /* owned */
    int64_t version;
    int64_t on_hand;
    int64_t reserved;
    int64_t available;
    size_t open_orders; /* orders holding a reservation */
} pn_demo_stream_t;

typedef struct pn_demo_result {
    bool exactly_once;
    int workers, partitions, skus, nodes;
    uint64_t seed;
    pn_demo_flow_stats_t sent;
    pn_demo_counts_t counts;   /* read back from the outcomes topic */
    pn_demo_counts_t expected; /* what the flow predicted */
    pn_demo_stream_t *streams; /* sorted by SKU, then node */
    size_t n_streams;
    /* Streams whose folded state differs from the flow's prediction, plus
     * count differences; 0 when everything matches. */
    uint64_t mismatches;
    pn_worker_stats_t worker_totals; /* summed over the workers */
    /* Rebalance callbacks between the group settling and the last answer:
     * on the mock cluster (no transactional offsets) a partition that
     * changes hands is replayed from its start, which the audit reports. */
    uint64_t rebalances_while_running;
    pn_audit_report_t audit;
    bool audited; /* audit holds a report (free it) */
    double seconds;            /* the whole run */
    /* Workers started until the group settled (the mock coordinator waits
     * 3 s for members to join); then first record sent until the last one
     * answered. */
    double join_seconds;
    double answer_seconds;
} pn_demo_result_t;

/**
 * Runs the demo. Returns PN_ERR_OK when it ran to the end, whatever the
 * audit found (check result->audit.violations and result->mismatches);
 * an error (message in errstr) when it could not: bad options
 * (INVALID_ARG), the mock cluster or a worker failed, a timeout, or an
 * interruption (STATE). Free the result with pn_demo_result_free() in
 * every case.
 */
PN_MUST_CHECK pn_err_t pn_demo_run(const pn_demo_options_t *opts,
                                   pn_demo_result_t *result, char *errstr,
                                   size_t errstr_size);

/** True when the audit passed and the state matched the prediction. */
bool pn_demo_passed(const pn_demo_result_t *result);

/** Frees what the result owns. NULL-safe. */
void pn_demo_result_free(pn_demo_result_t *result);

#endif
