/* The snapshotter's state, shared by its modules: snapshotter.c (Kafka,
 * rebalances, the loop), snapshotter_fold.c (applying events,
 * checkpoints) and snapshotter_api.c (the HTTP read API). */
#ifndef PANTHER_SNAPSHOTTER_INTERNAL_H
#define PANTHER_SNAPSHOTTER_INTERNAL_H

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdatomic.h>

#include "hashmap.h"
#include "panther/buf.h"
#include "panther/snapshotter.h"

/* A stream touched since the last checkpoint. */
typedef struct pn_snap_stream {
    pn_state_t state;
    int64_t updated_at_ms; /* `at` of the latest applied event */
    size_t sku_len;        /* the key is sku|node */
    bool changed;          /* to publish and store at the checkpoint */
} pn_snap_stream_t;

/* Counters, written by the loop and read by any thread. */
typedef struct pn_snap_counters {
    atomic_uint_fast64_t events, applied, skipped, gaps, gapped_events,
        bad_events, snapshots_published, publish_failures, checkpoints,
        offset_commits, rebalances, gapped_streams;
    atomic_int partitions_assigned, partitions_caught_up;
} pn_snap_counters_t;

struct pn_snapshotter_s {
    pn_snapshotter_options_t opts; /* strings borrowed from the caller */
    pn_codec_t *codec;
    pn_store_t *store;
    pn_store_batch_t *batch;
    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    /* The largest record the producer sends (its message.max.bytes): a
     * bigger snapshot would fail every checkpoint, so it is not produced. */
    size_t publish_max_bytes;
    pn_http_server_t *http;
    pn_http_route_t *routes; /* the read API and the caller's routes */
    int32_t n_partitions;    /* of the events topic */
    volatile sig_atomic_t stop;

    /* By partition (n_partitions entries). */
    atomic_uchar *owned;  /* assigned here: read by the HTTP threads */
    int64_t *position;    /* next offset to apply; -1 when not assigned */
    int64_t *stored;      /* checkpoint in the store; -1 none */
    bool *caught_up;

    pn_map_t streams; /* key -> pn_snap_stream_t, since the checkpoint */
    pn_map_t gapped;  /* key -> NULL */
    size_t n_changed;
    bool paused;
    int64_t last_checkpoint_ms;
    pn_buf_t scratch; /* encoded snapshots */

    /* First failed delivery since the current checkpoint began. */
    rd_kafka_resp_err_t delivery_err;

    pn_snap_counters_t stats;
};

/** Applies one events-topic record. Errors are fatal (store failures);
 *  bad records are logged and counted, not errors. */
PN_MUST_CHECK pn_err_t pn_snapshotter__apply(pn_snapshotter_t *s,
                                             const rd_kafka_message_t *m,
                                             char *errstr,
                                             size_t errstr_size);

/**
 * Checkpoints: publishes the changed streams and waits for the acks, writes
 * them and the positions to the store, commits the offsets. A failed
 * delivery keeps everything for the next try (PN_ERR_KAFKA returned, not
 * fatal); a store failure is fatal.
 */
PN_MUST_CHECK pn_err_t pn_snapshotter__checkpoint(pn_snapshotter_t *s,
                                                  char *errstr,
                                                  size_t errstr_size);

/** Forgets what the loop holds in memory (streams not checkpointed, gap
 *  marks) after a revocation. */
void pn_snapshotter__forget(pn_snapshotter_t *s);

/** The read API's route handler (opaque = the snapshotter). HTTP threads. */
void pn_snapshotter__read_api(void *opaque, const char *path,
                              pn_http_response_t *response);

/** The route prefix of the read API. */
#define PN_SNAPSHOTTER_API_PREFIX "/v1/inventory/"

#endif
