/*
 * The snapshotter (DESIGN.md sections 1, 5 and 8): reads the events topic
 * as a change feed (read_committed, its own consumer group), folds every
 * stream into its snapshot in a RocksDB store of its own, publishes the
 * snapshots to the compacted snapshots topic, and serves them over HTTP:
 *
 *   GET /v1/inventory/{sku}/{node}   one stream
 *   GET /v1/inventory/{sku}          every node of a SKU
 *
 * Every snapshotter.interval.ms it checkpoints, in this order:
 *   1. publish one InventorySnapshot per stream that changed (key = stream
 *      key, updatedAt = `at` of its latest event) and wait for the acks;
 *   2. write the snapshots, their times and the next events-topic offset
 *      of each partition to RocksDB in one atomic batch;
 *   3. commit those offsets to the consumer group.
 * RocksDB is the record of what was applied, and everything it holds was
 * published first. On assignment a partition resumes at its RocksDB
 * checkpoint (the beginning when there is none); events at or below a
 * stream's stored version are skipped, so a crash anywhere above (kill -9
 * included) replays events without applying any twice, and step 1 then
 * publishes the same snapshot again. The group's committed offsets are
 * only reported (lag, and a warning when they are ahead of the local
 * checkpoint): starting from them would skip events this store never
 * applied, after a lost store or when a partition comes back from another
 * snapshotter.
 *
 * No checkpoint is taken while a partition is catching up (it has not
 * reached the end of its events once since it was assigned): a replay
 * starts behind what the topic may already hold (published, then killed
 * before step 2), and its intermediate states would move a stream's record
 * back. Once caught up, every state is at least as new as anything
 * published before, so a stream's records in the topic never go back in
 * version. The one exception: a backlog that touches more than
 * PN_SNAPSHOTTER_MAX_STREAMS streams forces checkpoints while catching up,
 * to bound memory. A revocation or a stop while catching up leaves the
 * replayed events to be replayed again.
 *
 * A version gap (an event above stored version + 1) is never papered over:
 * it is logged ("stream version gap") and counted, the stream is marked
 * gapped, and its snapshot stays at the last contiguous version; later
 * events of the stream are counted and skipped. A gap is a broken change
 * feed (a lost or foreign event), not something the snapshotter can fix.
 * The mark lives in memory: after a restart the next event of the stream
 * finds the gap again.
 *
 * Scale by partition: snapshotters in one group share the partitions, each
 * with its own store. The read API answers for the partitions assigned to
 * this process (503 for the others, and before the first assignment); a
 * revoked partition's snapshots stay in the store, so getting it back
 * resumes from its checkpoint.
 *
 * Threads: pn_snapshotter_run() owns the consumer, the producer, the codec
 * and the store's writes. The HTTP server's threads read the store
 * concurrently through pn_store_read_snapshot / pn_store_scan_snapshots
 * (no shared scratch state) and the assignment through atomics.
 * pn_snapshotter_stop() may be called from any thread or a signal handler;
 * pn_snapshotter_get_stats() from any thread.
 */
#ifndef PANTHER_SNAPSHOTTER_H
#define PANTHER_SNAPSHOTTER_H

#include <stdbool.h>
#include <stdint.h>

#include "panther/codec.h"
#include "panther/err.h"
#include "panther/http.h"
#include "panther/kafka.h"
#include "panther/metrics.h"
#include "panther/store.h"

typedef struct pn_snapshotter_s pn_snapshotter_t;

/* Streams held in memory between checkpoints; at this many the consumer
 * pauses until the next checkpoint, so memory stays bounded without
 * publishing a stream twice in one interval. */
#define PN_SNAPSHOTTER_MAX_STREAMS 100000u

typedef struct pn_snapshotter_options {
    const char *events_topic;
    const char *snapshots_topic;
    const char *group_id;    /* snapshotter.group.id */
    const char *instance_id; /* group.instance.id: static membership */
    int interval_ms;         /* publish, checkpoint and commit period */
    const pn_kafka_prop_t *kafka; /* user kafka.* properties, prefix cut */
    size_t n_kafka;
    pn_store_options_t store; /* its own path (snapshotter.store.path) */
    pn_codec_config_t codec;
    /* HTTP: the read API on http_bind:http_port (0 = no server), plus the
     * extra routes (copied), e.g. /metrics, /livez, /readyz. */
    const char *http_bind;
    int http_port;
    const pn_http_route_t *routes;
    size_t n_routes;
    /* Optional, borrowed: beaten by the loop; ready when partitions are
     * assigned and every one has caught up with the end of its events. */
    pn_health_t *health;
} pn_snapshotter_options_t;

/** Counters for logs, metrics and tests. Monotonic unless noted. */
typedef struct pn_snapshotter_stats {
    uint64_t events;        /* event records read */
    uint64_t applied;       /* folded into a snapshot */
    uint64_t skipped;       /* at or below the stored version (replays) */
    uint64_t gaps;          /* version gaps found (streams marked gapped) */
    uint64_t gapped_events; /* events not applied: their stream is gapped */
    uint64_t bad_events;    /* undecodable, refused by evolve, or a snapshot
                               that cannot be published (logged) */
    uint64_t snapshots_published; /* records acknowledged by the broker */
    uint64_t publish_failures;    /* checkpoints retried: a delivery failed */
    uint64_t checkpoints;         /* RocksDB writes */
    uint64_t offset_commits;
    uint64_t rebalances;
    /* Gauges. */
    uint64_t gapped_streams;       /* streams marked gapped now */
    int32_t partitions_assigned;
    int32_t partitions_caught_up;  /* reached the end once since assigned */
} pn_snapshotter_stats_t;

/**
 * Opens the store, connects to Kafka, checks that the events and snapshots
 * topics exist (PN_ERR_CONFIG otherwise, message in errstr; a snapshots
 * topic without cleanup.policy=compact is only warned about), and starts
 * the HTTP server when a port is given. *snapshotterp owned by the caller.
 */
PN_MUST_CHECK pn_err_t pn_snapshotter_new(const pn_snapshotter_options_t *opts,
                                          pn_snapshotter_t **snapshotterp,
                                          char *errstr, size_t errstr_size);

/** Runs until pn_snapshotter_stop(): returns after a clean shutdown (last
 *  checkpoint written, consumer closed, producer flushed), or on an
 *  unrecoverable error (the store cannot be written). */
PN_MUST_CHECK pn_err_t pn_snapshotter_run(pn_snapshotter_t *snapshotter,
                                          char *errstr, size_t errstr_size);

/** Asks the snapshotter to stop; async-signal-safe. */
void pn_snapshotter_stop(pn_snapshotter_t *snapshotter);

/** A copy of the counters (any thread). */
void pn_snapshotter_get_stats(const pn_snapshotter_t *snapshotter,
                              pn_snapshotter_stats_t *stats);

/** The port the HTTP server listens on; 0 without one. */
int pn_snapshotter_http_port(const pn_snapshotter_t *snapshotter);

/** Stops the HTTP server, closes everything. NULL-safe. */
void pn_snapshotter_free(pn_snapshotter_t *snapshotter);

#endif
