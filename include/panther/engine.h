/*
 * The engine: executes batches of decoded commands against cached stream
 * state, and commits or discards them as a unit. It is everything between
 * "a command was decoded" and "its events and outcome are ready to publish",
 * with no Kafka in it, so the worker only feeds it and the benchmark and
 * tests drive it directly.
 *
 * Life of a batch:
 *
 *   pn_engine_execute() once per command      (state loads, decide, evolve,
 *                                              encode event and outcome)
 *   ... publish the results (Kafka transaction) ...
 *   pn_engine_commit(checkpoints)  or  pn_engine_discard()
 *
 * Commands of one batch see each other's effects (a reserve after an update
 * of the same stream sees the new count; a repeated id is a duplicate even
 * inside the batch). Commit writes the events, the snapshots of touched
 * streams, the idempotency entries and the checkpoints in one atomic store
 * write. Discard drops everything the batch did: nothing of it reaches the
 * store or survives in the cache.
 *
 * Threading and ownership. An engine, its store and its codec are used
 * from one thread (the owner), with one helper: commit hands the batch's
 * finished store write to the store's writer thread (pn_store_commit_async)
 * and returns, so the next batch executes while the previous one is
 * written. At most one write is in flight: the next commit waits for it.
 * Until it lands the engine answers for that batch from memory: its states
 * stay in the state cache, pinned (never evicted, so never re-read stale
 * from the store), and its idempotency entries stay a lookup level of
 * their own, so a repeat of one of its command ids is still a duplicate.
 * The writer touches nothing of the engine.
 *
 * Every call below that reads or changes the store beyond that
 * (read_state, checkpoint, apply_event, forget, discard, maintain, free, and the
 * store's own calls, pn_store_* on the same handle) waits for the write
 * first; only execute does not wait (it merely looks whether the write
 * failed). So callers need no extra step; pn_engine_sync() exists for
 * those that want the write settled now.
 *
 * A failed write is returned by the next call that returns a pn_err_t
 * (execute, commit, apply_event, read_state, checkpoint, sync), once. The
 * engine then forgets what assumed that batch (cached states, partition
 * metadata), as after a crash between the Kafka commit and the local
 * write, and a batch that was open at the time is poisoned: executing in
 * it or committing it fails until it is discarded. The worker treats a
 * store error after a Kafka commit as fatal and restores from the events
 * topic (DESIGN.md section 6), which repairs the store.
 */
#ifndef PANTHER_ENGINE_H
#define PANTHER_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "panther/codec.h"
#include "panther/domain.h"
#include "panther/err.h"
#include "panther/store.h"

typedef struct pn_engine_s pn_engine_t;

typedef struct pn_engine_options {
    pn_store_t *store;           /* borrowed; outlives the engine */
    pn_codec_t *codec;           /* borrowed; outlives the engine */
    size_t state_cache_streams;  /* states kept in memory; 0 = 100,000 */
    /* The idempotency window is the store's (pn_store_options_t), which
     * its compaction expires entries by. Its clock is the latest command
     * time (`at`) of the partition; with clock_ms set, a command time more
     * than PN_ENGINE_MAX_AHEAD_MS past clock_ms() does not move it, so that
     * one command stamped in the far future cannot age every entry out of
     * the window at once. NULL: command times are taken as they are. */
    int64_t (*clock_ms)(void *opaque); /* wall clock, ms since the epoch */
    void *clock_opaque;
} pn_engine_options_t;

#define PN_ENGINE_MAX_AHEAD_MS (60 * 60 * 1000)

/** The wall clock, as a clock_ms (opaque unused). */
int64_t pn_engine_wall_clock(void *opaque);

#define PN_ENGINE_DEFAULT_CACHE_STREAMS 100000u

/** Creates an engine over a store and codec. *enginep owned by caller. */
PN_MUST_CHECK pn_err_t pn_engine_new(const pn_engine_options_t *opts,
                                     pn_engine_t **enginep, char *errstr,
                                     size_t errstr_size);

/** Frees the engine, discarding an open batch. NULL-safe. */
void pn_engine_free(pn_engine_t *engine);

/**
 * What one command produced. Every pointer stays valid until the batch is
 * committed or discarded; the engine owns them.
 */
typedef struct pn_engine_result {
    pn_outcome_t outcome;
    pn_str_t stream_key;  /* `sku|node`; PN_STR_NULL when the ids are bad */
    pn_str_t outcome_key; /* orderId when the command has one, else the
                             stream key (or `sku|node` as given) */
    const uint8_t *outcome_value; /* encoded CommandOutcome */
    size_t outcome_len;
    bool has_event;
    int64_t event_version;
    const uint8_t *event_value; /* encoded InventoryEvent */
    size_t event_len;
} pn_engine_result_t;

/**
 * Executes one command of `partition` in the open batch (opening one if
 * needed). Errors are infrastructure failures (store I/O, memory): the
 * caller must discard the batch. A rejected command is not an error.
 */
PN_MUST_CHECK pn_err_t pn_engine_execute(pn_engine_t *engine,
                                         int32_t partition,
                                         const pn_command_t *cmd,
                                         pn_engine_result_t *result,
                                         char *errstr, size_t errstr_size);

/**
 * Applies an event read back from the events topic (restore), into the
 * open batch. Events at or below the stream's version are skipped
 * (*applied = false); a version gap is PN_ERR_STATE with the stream and
 * versions in errstr. `events_offset` is the topic offset of the record:
 * the partition's checkpoint moves past it at commit.
 */
PN_MUST_CHECK pn_err_t pn_engine_apply_event(pn_engine_t *engine,
                                             int32_t partition,
                                             int64_t events_offset,
                                             const void *value, size_t len,
                                             bool *applied, char *errstr,
                                             size_t errstr_size);

/** A partition's position in the events topic after the batch. */
typedef struct pn_engine_checkpoint {
    int32_t partition;
    int64_t events_offset; /* next offset to read on restore */
} pn_engine_checkpoint_t;

/**
 * Commits the open batch to the store, together with the given checkpoints
 * (which override those recorded by pn_engine_apply_event): waits for the
 * previous batch's write, then hands this batch's write to the store
 * writer and returns (see "Threading" above). Returning OK means the write
 * was started, not that it landed; its failure is reported by the next
 * call. On failure (this batch's or the previous write's) the batch is
 * discarded, as if pn_engine_discard() had been called, and the caller
 * must not assume anything of it reached the store.
 */
PN_MUST_CHECK pn_err_t pn_engine_commit(pn_engine_t *engine,
                                        const pn_engine_checkpoint_t *cps,
                                        size_t n_cps, char *errstr,
                                        size_t errstr_size);

/**
 * Waits until the last committed batch is in the store, and returns the
 * error of its write if it failed (once; the engine has then forgotten
 * what that batch changed, see "Threading" above). Every other call that
 * needs it waits by itself; this is for callers that want to know now
 * (a benchmark's end, a shutdown that reports).
 */
PN_MUST_CHECK pn_err_t pn_engine_sync(pn_engine_t *engine, char *errstr,
                                      size_t errstr_size);

/** Drops the open batch; the cache forgets the streams it touched. */
void pn_engine_discard(pn_engine_t *engine);

/** Number of commands and events in the open batch. */
size_t pn_engine_batch_commands(const pn_engine_t *engine);

/**
 * Loads the committed state of a stream (cache, else store), for the state
 * tool and tests. state must be initialised; it receives a copy.
 */
PN_MUST_CHECK pn_err_t pn_engine_read_state(pn_engine_t *engine,
                                            pn_str_t stream_key,
                                            pn_state_t *state, char *errstr,
                                            size_t errstr_size);

/** Next events-topic offset to restore from for a partition (-1: none). */
PN_MUST_CHECK pn_err_t pn_engine_checkpoint(pn_engine_t *engine,
                                            int32_t partition,
                                            int64_t *events_offset);

/** Forgets cached state of streams for which owns() is true (a partition
 *  was revoked: another worker may change them meanwhile). */
void pn_engine_forget(pn_engine_t *engine, pn_store_key_filter_fn owns,
                      void *opaque);

/** What one pn_engine_maintain() call did. */
typedef struct pn_engine_maintenance {
    uint64_t events_deleted;
    bool pass_done; /* reached the end of the streams: the next call
                       starts a new pass from the first */
} pn_engine_maintenance_t;

/** Work per pn_engine_maintain() call when max_work is 0. */
#define PN_ENGINE_DEFAULT_MAINTAIN_WORK 4096u

/**
 * Housekeeping between batches: drops events older than the store's
 * retention (pn_store_options_t.event_retention_ms; nothing when it is 0)
 * that a snapshot covers, at most max_work units of work per call
 * (snapshots visited + events deleted; 0 = the default above), resuming
 * where the previous call stopped, so one call never holds the loop for
 * long. now_ms is the wall clock (the retention compares command times
 * with it). Idempotency entries need no call: they expire in the store's
 * compactions.
 *
 * Waits for the write in flight, like the other calls, and returns its
 * error if it failed. Call it with no batch open (after a commit); the
 * worker calls it periodically. *result may be NULL.
 */
PN_MUST_CHECK pn_err_t pn_engine_maintain(pn_engine_t *engine, int64_t now_ms,
                                          size_t max_work,
                                          pn_engine_maintenance_t *result,
                                          char *errstr, size_t errstr_size);

typedef struct pn_engine_stats {
    uint64_t commands;
    uint64_t events;
    uint64_t duplicates;
    uint64_t rejected;
    uint64_t cache_hits;
    uint64_t cache_misses;
    uint64_t commits;
    uint64_t discards;
    uint64_t keys_written;  /* store puts and deletes committed */
    uint64_t bytes_written; /* their keys and values */
    uint64_t events_expired; /* deleted by pn_engine_maintain */
    size_t cached_streams;  /* in the state cache, the open batch's included
                               (above the capacity while pinned ones wait) */
} pn_engine_stats_t;

void pn_engine_get_stats(const pn_engine_t *engine, pn_engine_stats_t *stats);

#endif
