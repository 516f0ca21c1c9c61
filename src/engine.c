/*
 * The engine: batches of commands against cached state, committed to the
 * store as one atomic write or discarded without a trace.
 *
 * A stream touched by the open batch is in the overlay: its state is
 * checked out of the cache (or loaded from the store into a new cache
 * entry) and worked on in place. Commit writes snapshots of the changed
 * ones and leaves them in the cache as committed states, pinned there
 * until the store writer has written them (engine.h, "threading");
 * discard drops them, and the next batch reloads them from the store.
 */
#include "panther/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "clock.h"
#include "hashmap.h"
#include "panther/log.h"
#include "state_cache.h"
#include "store_nowait.h"

typedef struct overlay {
    pn_state_t *state; /* checked out of the cache */
    bool dirty;        /* changed by the batch: write a snapshot at commit */
} overlay_t;

/* A partition's metadata as committed, and as the open batch leaves it. */
typedef struct partition_slot {
    int32_t partition;
    bool in_batch;
    pn_partition_meta_t committed;
    pn_partition_meta_t pending;
} partition_slot_t;

struct pn_engine_s {
    pn_store_t *store;
    pn_codec_t *codec;
    pn_state_cache_t *cache;
    uint64_t window_commands;
    int64_t window_ms;
    int64_t (*clock_ms)(void *opaque); /* NULL: command times as given */
    void *clock_opaque;

    /* The open batch. */
    pn_store_batch_t *batch;
    pn_map_t overlay;   /* stream key -> overlay_t */
    pn_map_t dedup;     /* dedup key -> pn_dedup_entry_t (in arena) */
    pn_arena_t arena;   /* encoded records, keys and entries of the batch */
    size_t batch_commands;

    partition_slot_t *partitions; /* known partitions, small: linear scan */
    size_t n_partitions;
    size_t cap_partitions;

    pn_buf_t scratch;  /* encoder output before it is copied to the arena */
    pn_buf_t key_buf;  /* dedup lookup keys */
    pn_engine_stats_t stats;

    /* The previous batch while its store write is in flight: its dedup
     * entries (the map and the arena its values live in) stay a lookup
     * level of their own, and its states are pinned in the cache with
     * `generation`, until the write lands. */
    bool write_pending;
    uint64_t generation;      /* batches handed to the store writer */
    pn_map_t pending_dedup;
    pn_arena_t pending_arena;
    pn_err_t write_err;       /* a failed write, not yet reported */
    char write_errstr[PN_STORE_LAST_ERROR_MAX];
    bool poisoned;            /* the open batch saw a write that failed */
};

/* --- small helpers -------------------------------------------------------- */

static bool id_usable(pn_str_t id) {
    return id.len > 0 && id.len <= PN_ID_MAX_BYTES;
}

static const pn_state_t zero_state;

pn_err_t pn_engine_new(const pn_engine_options_t *opts, pn_engine_t **enginep,
                       char *errstr, size_t errstr_size) {
    *enginep = NULL;
    if (!opts || !opts->store || !opts->codec)
        return pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                          "engine needs a store and a codec");
    pn_engine_t *engine = calloc(1, sizeof *engine);
    if (!engine)
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM, "out of memory");
    engine->store = opts->store;
    engine->codec = opts->codec;
    engine->clock_ms = opts->clock_ms;
    engine->clock_opaque = opts->clock_opaque;
    /* The store's window: its compaction expires entries by it, so the
     * engine must not count on a wider one. */
    pn_store_dedup_window(opts->store, &engine->window_commands,
                          &engine->window_ms);
    engine->cache = pn_state_cache_new(opts->state_cache_streams
                                           ? opts->state_cache_streams
                                           : PN_ENGINE_DEFAULT_CACHE_STREAMS);
    pn_map_init(&engine->overlay);
    pn_map_init(&engine->dedup);
    pn_map_init(&engine->pending_dedup);
    pn_arena_init(&engine->arena, 256 * 1024);
    pn_arena_init(&engine->pending_arena, 256 * 1024);
    pn_buf_init(&engine->scratch, 64u * 1024 * 1024);
    pn_buf_init(&engine->key_buf, 4096);
    if (!engine->cache || pn_store_batch_new(&engine->batch) != PN_ERR_OK) {
        pn_engine_free(engine);
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM, "out of memory");
    }
    *enginep = engine;
    return PN_ERR_OK;
}

/* Overlays live in the batch arena, their states in the cache. */
static void reset_batch(pn_engine_t *engine) {
    pn_map_clear(&engine->overlay, NULL);
    pn_state_cache_discard_batch(engine->cache);
    pn_map_clear(&engine->dedup, NULL);
    pn_arena_reset(&engine->arena);
    pn_store_batch_clear(engine->batch);
    engine->batch_commands = 0;
    for (size_t i = 0; i < engine->n_partitions; i++) {
        engine->partitions[i].in_batch = false;
        engine->partitions[i].pending = engine->partitions[i].committed;
    }
}

/* --- the previous batch's write ----------------------------------------- */

/* Its write landed: the store answers for it now. */
static void write_landed(pn_engine_t *engine) {
    pn_map_clear(&engine->pending_dedup, NULL);
    pn_arena_reset(&engine->pending_arena);
    pn_state_cache_unpin(engine->cache, engine->generation);
    engine->write_pending = false;
}

static bool any_key(void *opaque, pn_str_t key) {
    (void)opaque;
    (void)key;
    return true;
}

static bool batch_open(const pn_engine_t *engine) {
    return engine->overlay.count > 0 || engine->dedup.count > 0 ||
           engine->batch_commands > 0;
}

/*
 * Its write failed: the cache holds states, and the partition slots
 * metadata, that the store does not have. Forget them all (they reload
 * from the store, as after a crash between the Kafka commit and the local
 * write, which restore from the events topic repairs), and poison an open
 * batch: it was built on them and must not be committed.
 */
static void write_failed(pn_engine_t *engine, pn_err_t err,
                         const char *text) {
    write_landed(engine);
    if (batch_open(engine))
        engine->poisoned = true;
    reset_batch(engine);
    pn_state_cache_drop_if(engine->cache, any_key, NULL);
    engine->n_partitions = 0;
    engine->write_err = err;
    snprintf(engine->write_errstr, sizeof engine->write_errstr, "%s", text);
}

/* Looks at the previous batch's write (waits for it when `wait`) and
 * settles the engine if it has landed or failed. */
static void observe_write(pn_engine_t *engine, bool wait) {
    if (!engine->write_pending)
        return;
    char text[PN_STORE_LAST_ERROR_MAX] = "";
    bool idle = true;
    pn_err_t err = wait ? pn_store_sync(engine->store, text, sizeof text)
                        : pn_store_poll(engine->store, &idle, text, sizeof text);
    if (err)
        write_failed(engine, err, text);
    else if (idle)
        write_landed(engine);
}

/* Reports a failed write, once. */
static pn_err_t take_write_error(pn_engine_t *engine, char *errstr,
                                 size_t errstr_size) {
    pn_err_t err = engine->write_err;
    if (!err)
        return PN_ERR_OK;
    engine->write_err = PN_ERR_OK;
    return pn_err_set(errstr, errstr_size, err, "%s", engine->write_errstr);
}

/* Reports a failed write once, then whether the open batch is poisoned. */
static pn_err_t write_error(pn_engine_t *engine, char *errstr,
                            size_t errstr_size) {
    pn_err_t err = take_write_error(engine, errstr, errstr_size);
    if (err)
        return err;
    if (engine->poisoned)
        return pn_err_set(errstr, errstr_size, PN_ERR_STORE_IO,
                          "a store write failed while this batch was open; "
                          "discard it");
    return PN_ERR_OK;
}

/* Waits for the previous batch's write, then reports its failure. */
static pn_err_t sync_write(pn_engine_t *engine, char *errstr,
                           size_t errstr_size) {
    observe_write(engine, true);
    return write_error(engine, errstr, errstr_size);
}

void pn_engine_free(pn_engine_t *engine) {
    if (!engine)
        return;
    observe_write(engine, true);
    if (engine->write_err)
        /* Nobody left to tell: restore from the events topic repairs it
         * at the next start, but say that it happened. */
        pn_log_kv(PN_LOG_ERROR, "last store write failed",
                  PN_LOG_STR("detail", engine->write_errstr));
    reset_batch(engine);
    pn_map_free(&engine->overlay, NULL);
    pn_map_free(&engine->dedup, NULL);
    pn_map_free(&engine->pending_dedup, NULL);
    pn_arena_free(&engine->arena);
    pn_arena_free(&engine->pending_arena);
    pn_store_batch_free(engine->batch);
    pn_state_cache_free(engine->cache);
    pn_buf_free(&engine->scratch);
    pn_buf_free(&engine->key_buf);
    free(engine->partitions);
    free(engine);
}

/* --- partitions ------------------------------------------------------------ */

static pn_err_t get_partition(pn_engine_t *engine, int32_t partition,
                              partition_slot_t **slotp) {
    for (size_t i = 0; i < engine->n_partitions; i++)
        if (engine->partitions[i].partition == partition) {
            *slotp = &engine->partitions[i];
            return PN_ERR_OK;
        }
    if (engine->n_partitions == engine->cap_partitions) {
        size_t cap = engine->cap_partitions ? engine->cap_partitions * 2 : 16;
        partition_slot_t *grown =
            realloc(engine->partitions, cap * sizeof *grown);
        if (!grown)
            return PN_ERR_NOMEM;
        engine->partitions = grown;
        engine->cap_partitions = cap;
    }
    partition_slot_t *slot = &engine->partitions[engine->n_partitions];
    memset(slot, 0, sizeof *slot);
    slot->partition = partition;
    bool found;
    pn_err_t err = pn_store__get_partition_meta_nowait(engine->store, partition,
                                               &slot->committed, &found);
    if (err)
        return err;
    slot->pending = slot->committed;
    engine->n_partitions++;
    *slotp = slot;
    return PN_ERR_OK;
}

/* --- loading state ---------------------------------------------------------- */

typedef struct fold_ctx {
    pn_engine_t *engine;
    pn_state_t *state;
    pn_err_t err;
    char *errstr;
    size_t errstr_size;
} fold_ctx_t;

static pn_err_t fold_stored_event(void *opaque, int64_t version,
                                  const void *data, size_t len) {
    fold_ctx_t *ctx = opaque;
    pn_event_t ev;
    pn_err_t err = pn_codec_decode_event(ctx->engine->codec, data, len, &ev,
                                         ctx->errstr, ctx->errstr_size);
    if (err)
        return err;
    if (ev.version != version)
        err = pn_err_set(ctx->errstr, ctx->errstr_size, PN_ERR_STORE_CORRUPT,
                         "stored event %lld holds version %lld",
                         (long long)version, (long long)ev.version);
    else if (version != ctx->state->version + 1)
        /* Its first events expired after the snapshot covered them. */
        err = pn_err_set(ctx->errstr, ctx->errstr_size, PN_ERR_STORE_VERSION,
                         "stream %.*s|%.*s: snapshot of an older fold format "
                         "and local events only from version %lld on; remove "
                         "the local store to restore from the events topic",
                         (int)ev.sku_id.len, ev.sku_id.ptr, (int)ev.node_id.len,
                         ev.node_id.ptr, (long long)version);
    else
        err = pn_domain_evolve(ctx->state, &ev);
    pn_event_release(&ev);
    return err;
}

/*
 * The committed state of a stream from the store. Every commit writes the
 * snapshot of each stream it changed, so a current snapshot is the whole
 * story and no snapshot means a new stream. A stale one (another fold
 * format version) is rebuilt from the stored events; *rebuilt tells the
 * caller to write the fresh snapshot over it.
 */
static pn_err_t load_from_store(pn_engine_t *engine, pn_str_t key,
                                pn_state_t *state, bool *rebuilt,
                                char *errstr, size_t errstr_size) {
    pn_snapshot_status_t status;
    *rebuilt = false;
    pn_err_t err = pn_store__get_snapshot_nowait(engine->store, key, state, &status);
    if (err)
        return pn_err_set(errstr, errstr_size, err,
                          "reading snapshot of %.*s: %s", (int)key.len,
                          key.ptr, pn_err_str(err));
    if (status != PN_SNAPSHOT_STALE)
        return PN_ERR_OK;
    fold_ctx_t ctx = {engine, state, PN_ERR_OK, errstr, errstr_size};
    err = pn_store__scan_events_nowait(engine->store, key, 1, fold_stored_event, &ctx);
    if (!err && state->version == 0)
        /* Its events expired after the snapshot covered them: only the
         * events topic can rebuild it (delete the store and restart). */
        err = pn_err_set(errstr, errstr_size, PN_ERR_STORE_VERSION,
                         "stream %.*s: snapshot of an older fold format and "
                         "no local events to rebuild it from; remove the "
                         "local store to restore from the events topic",
                         (int)key.len, key.ptr);
    if (err) {
        pn_state_clear(state);
        return err;
    }
    *rebuilt = true;
    return PN_ERR_OK;
}

/* The overlay entry of a stream, loading it into the batch on first use. */
static pn_err_t get_overlay(pn_engine_t *engine, pn_str_t key,
                            overlay_t **ovp, char *errstr,
                            size_t errstr_size) {
    uint64_t hash = pn_hash_bytes(key.ptr, key.len);
    pn_map_entry_t *e = pn_map_find_hashed(&engine->overlay, hash, key.ptr, key.len);
    if (e) {
        *ovp = e->value;
        return PN_ERR_OK;
    }
    overlay_t *ov = pn_arena_alloc(&engine->arena, sizeof *ov);
    if (!ov)
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM, "out of memory");
    ov->dirty = false;
    bool from_cache;
    ov->state = pn_state_cache_checkout(engine->cache, key, hash, &from_cache);
    if (!ov->state)
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM, "out of memory");
    pn_err_t err = PN_ERR_OK;
    if (from_cache) {
        engine->stats.cache_hits++;
    } else {
        engine->stats.cache_misses++;
        err = load_from_store(engine, key, ov->state, &ov->dirty, errstr,
                              errstr_size);
        if (err) {
            /* Not a committed state: it must not stay in the cache. */
            pn_state_cache_cancel_checkout(engine->cache, ov->state);
            return err;
        }
    }
    err = pn_map_insert_hashed(&engine->overlay, hash, key.ptr, key.len, ov,
                               NULL);
    if (err) {
        /* A state loaded for this batch goes (it may be a rebuild whose
         * snapshot the batch would no longer write); one from the cache
         * stays checked out, unchanged, for commit or discard to settle. */
        if (!from_cache)
            pn_state_cache_cancel_checkout(engine->cache, ov->state);
        return pn_err_set(errstr, errstr_size, err, "out of memory");
    }
    *ovp = ov;
    return PN_ERR_OK;
}

/* --- idempotency ------------------------------------------------------------ */

/* Key of the batch's dedup map, in engine->key_buf: length-prefixed
 * stream key, then the id; *hash gets its hash for both dedup maps. */
static pn_err_t dedup_key(pn_engine_t *engine, pn_str_t stream_key,
                          pn_str_t id, uint64_t *hash) {
    pn_buf_reset(&engine->key_buf);
    pn_err_t err = pn_buf_append_be32(&engine->key_buf, (uint32_t)stream_key.len);
    if (!err)
        err = pn_buf_append(&engine->key_buf, stream_key.ptr, stream_key.len);
    if (!err)
        err = pn_buf_append(&engine->key_buf, id.ptr, id.len);
    if (!err)
        *hash = pn_hash_bytes(engine->key_buf.data, engine->key_buf.len);
    return err;
}

int64_t pn_engine_wall_clock(void *opaque) {
    (void)opaque;
    return pn_wall_ms();
}

/* Moves the partition's window clock to a command time, unless that lies
 * too far past the caller's clock (the clock is read only then). */
static void advance_window_clock(const pn_engine_t *engine,
                                 pn_partition_meta_t *meta, int64_t at_ms) {
    if (at_ms <= meta->dedup_max_at_ms)
        return;
    if (engine->clock_ms &&
        at_ms - PN_ENGINE_MAX_AHEAD_MS > engine->clock_ms(engine->clock_opaque))
        return;
    meta->dedup_max_at_ms = at_ms;
}

/* An entry outside the window counts as absent, whether compaction has
 * dropped it yet or not (DESIGN.md section 4). */
static bool in_window(const pn_engine_t *engine, const pn_partition_meta_t *meta,
                      const pn_dedup_entry_t *entry) {
    return !pn_store_dedup_expired(engine->window_commands, engine->window_ms,
                                   meta, entry);
}

/* The outcome this stream gave to id inside the window, or NULL. */
static pn_err_t find_prior(pn_engine_t *engine, const partition_slot_t *slot,
                           pn_str_t stream_key, pn_str_t id,
                           pn_dedup_entry_t *entry, bool *found) {
    *found = false;
    uint64_t hash;
    pn_err_t err = dedup_key(engine, stream_key, id, &hash);
    if (err)
        return err;
    const void *k = engine->key_buf.data;
    size_t k_len = engine->key_buf.len;
    pn_map_entry_t *e = pn_map_find_hashed(&engine->dedup, hash, k, k_len);
    if (!e && engine->write_pending)
        /* The previous batch, not in the store yet. */
        e = pn_map_find_hashed(&engine->pending_dedup, hash, k, k_len);
    if (e) {
        *entry = *(const pn_dedup_entry_t *)e->value;
        *found = true;
    } else {
        err = pn_store__get_dedup_nowait(engine->store, stream_key, id, entry, found);
        if (err)
            return err;
    }
    if (*found && !in_window(engine, &slot->pending, entry))
        *found = false;
    return PN_ERR_OK;
}

static pn_err_t remember(pn_engine_t *engine, pn_str_t stream_key, pn_str_t id,
                         const pn_dedup_entry_t *entry) {
    uint64_t hash;
    pn_err_t err = dedup_key(engine, stream_key, id, &hash);
    if (err)
        return err;
    pn_dedup_entry_t *copy = pn_arena_dup(&engine->arena, entry, sizeof *entry);
    if (!copy)
        return PN_ERR_NOMEM;
    const void *k = engine->key_buf.data;
    size_t k_len = engine->key_buf.len;
    pn_map_entry_t *e = pn_map_find_hashed(&engine->dedup, hash, k, k_len);
    if (e)
        e->value = copy; /* an expired entry being replaced */
    else if ((err = pn_map_insert_hashed(&engine->dedup, hash, k, k_len, copy,
                                         NULL)))
        return err;
    return pn_store_batch_put_dedup(engine->batch, stream_key, id, entry);
}

/* --- execute ---------------------------------------------------------------- */

/* Copies the scratch buffer into the batch arena. */
static const uint8_t *keep_scratch(pn_engine_t *engine) {
    return pn_arena_dup(&engine->arena, engine->scratch.data,
                        engine->scratch.len);
}

/* orderId when the command has one, else `sku|node` even if not valid. */
static pn_err_t outcome_key(pn_engine_t *engine, const pn_command_t *cmd,
                            pn_str_t stream_key, pn_str_t *key) {
    if (cmd->type != PN_CMD_UPDATE && cmd->order_id.len > 0) {
        *key = cmd->order_id;
        return PN_ERR_OK;
    }
    if (stream_key.ptr) {
        *key = stream_key;
        return PN_ERR_OK;
    }
    pn_buf_reset(&engine->scratch);
    pn_err_t err = pn_buf_append(&engine->scratch, cmd->sku_id.ptr, cmd->sku_id.len);
    if (!err)
        err = pn_buf_append_byte(&engine->scratch, PN_STREAM_KEY_SEP);
    if (!err)
        err = pn_buf_append(&engine->scratch, cmd->node_id.ptr, cmd->node_id.len);
    if (err)
        return err;
    const uint8_t *kept = keep_scratch(engine);
    if (!kept)
        return PN_ERR_NOMEM;
    *key = (pn_str_t){(const char *)kept, engine->scratch.len};
    return PN_ERR_OK;
}

/* Applies the decision's event to the overlay and records it in the batch. */
static pn_err_t record_event(pn_engine_t *engine, overlay_t *ov,
                             pn_str_t stream_key, const pn_decision_t *d,
                             pn_engine_result_t *res) {
    pn_err_t err = pn_domain_evolve(ov->state, &d->event);
    if (err)
        return err == PN_ERR_NOMEM ? err : PN_ERR_INTERNAL;
    ov->dirty = true;
    pn_buf_reset(&engine->scratch);
    if ((err = pn_codec_encode_event(engine->codec, &d->event, &engine->scratch)))
        return err;
    if (!(res->event_value = keep_scratch(engine)))
        return PN_ERR_NOMEM;
    res->event_len = engine->scratch.len;
    res->event_version = d->event.version;
    res->has_event = true;
    engine->stats.events++;
    return pn_store_batch_put_event(engine->batch, stream_key, d->event.version,
                                    d->event.at_ms, res->event_value,
                                    res->event_len);
}

static pn_err_t execute(pn_engine_t *engine, int32_t partition,
                        const pn_command_t *cmd, pn_engine_result_t *res,
                        char *errstr, size_t errstr_size) {
    partition_slot_t *slot;
    pn_err_t err = get_partition(engine, partition, &slot);
    if (err)
        return pn_err_set(errstr, errstr_size, err,
                          "reading metadata of partition %d: %s", partition,
                          pn_err_str(err));
    slot->in_batch = true;

    char key_chars[PN_STREAM_KEY_MAX];
    size_t key_len = pn_stream_key(cmd->sku_id, cmd->node_id, key_chars,
                                   sizeof key_chars);
    const pn_state_t *state = &zero_state;
    overlay_t *ov = NULL;
    pn_dedup_entry_t prior;
    bool has_prior = false;
    pn_str_t stream_key = PN_STR_NULL;
    if (key_len) {
        const char *kept = pn_arena_dup(&engine->arena, key_chars, key_len);
        if (!kept)
            return PN_ERR_NOMEM;
        stream_key = (pn_str_t){kept, key_len};
        if ((err = get_overlay(engine, stream_key, &ov, errstr, errstr_size)))
            return err;
        state = ov->state;
        if (id_usable(cmd->id) &&
            (err = find_prior(engine, slot, stream_key, cmd->id, &prior,
                              &has_prior)))
            return pn_err_set(errstr, errstr_size, err,
                              "idempotency lookup for %.*s: %s",
                              (int)key_len, key_chars, pn_err_str(err));
    }

    pn_decision_t d;
    pn_domain_decide(state, cmd, has_prior ? &prior.outcome : NULL, &d);
    res->stream_key = stream_key;
    res->outcome = d.outcome;
    if (d.has_event &&
        (err = record_event(engine, ov, stream_key, &d, res)))
        return pn_err_set(errstr, errstr_size, err, "recording event: %s",
                          pn_err_str(err));

    if ((err = outcome_key(engine, cmd, stream_key, &res->outcome_key)))
        return err;
    pn_buf_reset(&engine->scratch);
    if ((err = pn_codec_encode_outcome(engine->codec, cmd, &d.outcome,
                                       &engine->scratch)))
        return pn_err_set(errstr, errstr_size, err, "encoding outcome: %s",
                          pn_err_str(err));
    if (!(res->outcome_value = keep_scratch(engine)))
        return PN_ERR_NOMEM;
    res->outcome_len = engine->scratch.len;

    pn_partition_meta_t *meta = &slot->pending;
    if (key_len && id_usable(cmd->id) && !d.outcome.duplicate) {
        pn_dedup_entry_t entry = {partition, meta->dedup_seq, cmd->at_ms,
                                  d.outcome};
        if ((err = remember(engine, stream_key, cmd->id, &entry)))
            return pn_err_set(errstr, errstr_size, err,
                              "recording idempotency entry: %s",
                              pn_err_str(err));
    }
    meta->dedup_seq++;
    advance_window_clock(engine, meta, cmd->at_ms);

    engine->stats.commands++;
    engine->stats.duplicates += d.outcome.duplicate;
    engine->stats.rejected += d.outcome.status == PN_STATUS_REJECTED;
    engine->batch_commands++;
    return PN_ERR_OK;
}

pn_err_t pn_engine_execute(pn_engine_t *engine, int32_t partition,
                           const pn_command_t *cmd, pn_engine_result_t *res,
                           char *errstr, size_t errstr_size) {
    memset(res, 0, sizeof *res);
    if (errstr && errstr_size)
        errstr[0] = '\0';
    observe_write(engine, false); /* never waits: this overlaps the write */
    pn_err_t err = write_error(engine, errstr, errstr_size);
    if (!err)
        err = execute(engine, partition, cmd, res, errstr, errstr_size);
    if (err && errstr && errstr_size && !errstr[0])
        pn_err_set(errstr, errstr_size, err, "%s", pn_err_str(err));
    return err;
}

/* --- restore ------------------------------------------------------------------ */

static pn_command_type_t command_type_of(pn_event_type_t type) {
    switch (type) {
    case PN_EVT_UPDATED:
        return PN_CMD_UPDATE;
    case PN_EVT_RESERVED:
        return PN_CMD_RESERVE;
    case PN_EVT_CANCELLED:
        return PN_CMD_CANCEL;
    default:
        return PN_CMD_SHIP;
    }
}

static pn_err_t apply_decoded(pn_engine_t *engine, partition_slot_t *slot,
                              const pn_event_t *ev, const void *value,
                              size_t len, bool *applied, char *errstr,
                              size_t errstr_size) {
    char key_chars[PN_STREAM_KEY_MAX];
    size_t key_len = pn_stream_key(ev->sku_id, ev->node_id, key_chars,
                                   sizeof key_chars);
    if (!key_len)
        return pn_err_set(errstr, errstr_size, PN_ERR_MALFORMED,
                          "event with invalid stream ids");
    const char *kept = pn_arena_dup(&engine->arena, key_chars, key_len);
    if (!kept)
        return PN_ERR_NOMEM;
    pn_str_t key = {kept, key_len};
    overlay_t *ov;
    pn_err_t err = get_overlay(engine, key, &ov, errstr, errstr_size);
    if (err)
        return err;
    if (ev->version <= ov->state->version)
        return PN_ERR_OK; /* already applied here */
    if (ev->version != ov->state->version + 1)
        return pn_err_set(errstr, errstr_size, PN_ERR_STATE,
                          "stream %s: event version %lld follows %lld",
                          kept, (long long)ev->version,
                          (long long)ov->state->version);
    if ((err = pn_domain_evolve(ov->state, ev)))
        return pn_err_set(errstr, errstr_size, err,
                          "stream %s: event %lld does not apply: %s", kept,
                          (long long)ev->version, pn_err_str(err));
    ov->dirty = true;
    const void *stored = pn_arena_dup(&engine->arena, value, len);
    if (!stored)
        return PN_ERR_NOMEM;
    if ((err = pn_store_batch_put_event(engine->batch, key, ev->version,
                                        ev->at_ms, stored, len)))
        return err;
    /* Rebuild what the idempotency index can know from the change feed:
     * accepted commands that emitted an event. */
    pn_dedup_entry_t entry = {
        slot->partition, slot->pending.dedup_seq, ev->at_ms,
        {command_type_of(ev->type), PN_STATUS_ACCEPTED, PN_REASON_NONE, false,
         ov->state->version, ov->state->on_hand, ov->state->reserved,
         pn_state_available(ov->state)}};
    if (id_usable(ev->command_id) &&
        (err = remember(engine, key, ev->command_id, &entry)))
        return err;
    slot->pending.dedup_seq++;
    advance_window_clock(engine, &slot->pending, ev->at_ms);
    *applied = true;
    engine->stats.events++;
    return PN_ERR_OK;
}

pn_err_t pn_engine_apply_event(pn_engine_t *engine, int32_t partition,
                               int64_t events_offset, const void *value,
                               size_t len, bool *applied, char *errstr,
                               size_t errstr_size) {
    *applied = false;
    partition_slot_t *slot;
    pn_err_t err = sync_write(engine, errstr, errstr_size);
    if (err)
        return err;
    if ((err = get_partition(engine, partition, &slot)))
        return pn_err_set(errstr, errstr_size, err,
                          "reading metadata of partition %d", partition);
    slot->in_batch = true;
    pn_event_t ev;
    if ((err = pn_codec_decode_event(engine->codec, value, len, &ev, errstr,
                                     errstr_size)))
        return err;
    err = apply_decoded(engine, slot, &ev, value, len, applied, errstr,
                        errstr_size);
    pn_event_release(&ev);
    if (!err && events_offset + 1 > slot->pending.events_offset)
        slot->pending.events_offset = events_offset + 1;
    return err;
}

/* --- commit and discard ------------------------------------------------------- */

typedef struct commit_ctx {
    pn_engine_t *engine;
    pn_err_t err;
} commit_ctx_t;

static void snapshot_dirty(pn_map_entry_t *e, void *opaque) {
    commit_ctx_t *ctx = opaque;
    overlay_t *ov = e->value;
    if (!ctx->err && ov->dirty)
        ctx->err = pn_store_batch_put_snapshot(
            ctx->engine->batch, (pn_str_t){e->key, e->key_len}, ov->state);
}

static pn_err_t stage_metadata(pn_engine_t *engine,
                               const pn_engine_checkpoint_t *cps,
                               size_t n_cps) {
    for (size_t i = 0; i < n_cps; i++) {
        partition_slot_t *slot;
        pn_err_t err = get_partition(engine, cps[i].partition, &slot);
        if (err)
            return err;
        slot->in_batch = true;
        slot->pending.events_offset = cps[i].events_offset;
    }
    for (size_t i = 0; i < engine->n_partitions; i++) {
        partition_slot_t *slot = &engine->partitions[i];
        if (!slot->in_batch)
            continue;
        pn_err_t err = pn_store_batch_put_partition_meta(
            engine->batch, slot->partition, &slot->pending);
        if (err)
            return err;
    }
    return PN_ERR_OK;
}

/* Stages the batch's snapshots and metadata, and hands it to the store's
 * writer. */
static pn_err_t hand_over(pn_engine_t *engine, const pn_engine_checkpoint_t *cps,
                          size_t n_cps, char *errstr, size_t errstr_size) {
    commit_ctx_t ctx = {engine, PN_ERR_OK};
    pn_map_foreach(&engine->overlay, snapshot_dirty, &ctx);
    pn_err_t err = ctx.err;
    if (!err)
        err = stage_metadata(engine, cps, n_cps);
    if (err)
        return err;
    /* Counted now: the records move to the store's writer. */
    size_t keys = pn_store_batch_count(engine->batch);
    size_t bytes = pn_store_batch_bytes(engine->batch);
    err = pn_store_commit_async(engine->store, engine->batch, errstr,
                                errstr_size);
    if (!err) {
        engine->stats.keys_written += keys;
        engine->stats.bytes_written += bytes;
    }
    return err;
}

/* The batch is in the writer's hands: its states are committed states of
 * the cache again (pinned), its dedup entries become the pending level. */
static void keep_pending(pn_engine_t *engine) {
    engine->generation++;
    /* Pinned until the write lands, so they cannot be evicted and re-read
     * from a store that does not have them yet. */
    pn_state_cache_commit_batch(engine->cache, engine->generation);
    /* The pending level is empty (the previous write was waited for):
     * swap it with the batch's, which reset_batch then clears. */
    pn_map_t map = engine->pending_dedup;
    engine->pending_dedup = engine->dedup;
    engine->dedup = map;
    pn_arena_t arena = engine->pending_arena;
    engine->pending_arena = engine->arena;
    engine->arena = arena;
    engine->write_pending = true;
    for (size_t i = 0; i < engine->n_partitions; i++)
        engine->partitions[i].committed = engine->partitions[i].pending;
    reset_batch(engine);
    if (pn_state_cache_over(engine->cache))
        /* A batch of more streams than the cache holds: wait until the
         * store has them, so the cache can drop them (and stays within its
         * bound). */
        observe_write(engine, true);
}

pn_err_t pn_engine_commit(pn_engine_t *engine,
                          const pn_engine_checkpoint_t *cps, size_t n_cps,
                          char *errstr, size_t errstr_size) {
    if (errstr && errstr_size)
        errstr[0] = '\0';
    /* At most one write in flight: this one waits for the previous. */
    pn_err_t err = sync_write(engine, errstr, errstr_size);
    if (!err)
        err = hand_over(engine, cps, n_cps, errstr, errstr_size);
    if (err) {
        if (errstr && errstr_size && !errstr[0])
            pn_err_set(errstr, errstr_size, err, "commit: %s", pn_err_str(err));
        pn_engine_discard(engine);
        return err;
    }
    keep_pending(engine);
    engine->stats.commits++;
    return PN_ERR_OK;
}

/* The batch may have checked out states that only the previous batch's
 * write in flight has; once dropped they reload from the store, so the
 * store must have that write first. */
void pn_engine_discard(pn_engine_t *engine) {
    observe_write(engine, true);
    reset_batch(engine);
    engine->poisoned = false;
    engine->stats.discards++;
}

pn_err_t pn_engine_sync(pn_engine_t *engine, char *errstr,
                         size_t errstr_size) {
    if (errstr && errstr_size)
        errstr[0] = '\0';
    observe_write(engine, true);
    return take_write_error(engine, errstr, errstr_size);
}

size_t pn_engine_batch_commands(const pn_engine_t *engine) {
    return engine->batch_commands;
}

/* --- reads and housekeeping ------------------------------------------------ */

pn_err_t pn_engine_read_state(pn_engine_t *engine, pn_str_t stream_key,
                              pn_state_t *state, char *errstr,
                              size_t errstr_size) {
    pn_err_t err = sync_write(engine, errstr, errstr_size);
    if (err)
        return err;
    const pn_state_t *cached = pn_state_cache_peek(engine->cache, stream_key);
    if (cached)
        return pn_state_copy(state, cached);
    pn_state_clear(state);
    bool rebuilt;
    return load_from_store(engine, stream_key, state, &rebuilt, errstr,
                           errstr_size);
}

pn_err_t pn_engine_checkpoint(pn_engine_t *engine, int32_t partition,
                              int64_t *events_offset) {
    partition_slot_t *slot;
    pn_err_t err = sync_write(engine, NULL, 0);
    if (!err)
        err = get_partition(engine, partition, &slot);
    if (err)
        return err;
    *events_offset = slot->committed.events_offset;
    return PN_ERR_OK;
}

pn_err_t pn_engine_maintain(pn_engine_t *engine, int64_t now_ms,
                            size_t max_work, pn_engine_maintenance_t *result,
                            char *errstr, size_t errstr_size) {
    if (result)
        memset(result, 0, sizeof *result);
    if (errstr && errstr_size)
        errstr[0] = '\0';
    pn_err_t err = sync_write(engine, errstr, errstr_size);
    if (err)
        return err;
    uint64_t deleted = 0;
    bool pass_done = true;
    /* Only events a current snapshot covers go, so no state the engine
     * holds or may load depends on them. */
    err = pn_store_expire_events_step(
        engine->store, now_ms,
        max_work ? (uint64_t)max_work : PN_ENGINE_DEFAULT_MAINTAIN_WORK,
        &deleted, &pass_done);
    if (err)
        return pn_err_set(errstr, errstr_size, err, "expiring events: %s",
                          pn_store_last_error(engine->store));
    engine->stats.events_expired += deleted;
    if (result) {
        result->events_deleted = deleted;
        result->pass_done = pass_done;
    }
    return PN_ERR_OK;
}

typedef struct forget_ctx {
    pn_store_key_filter_fn owns;
    void *opaque;
} forget_ctx_t;

static bool forget_pred(void *opaque, pn_str_t key) {
    forget_ctx_t *ctx = opaque;
    return ctx->owns(ctx->opaque, key);
}

void pn_engine_forget(pn_engine_t *engine, pn_store_key_filter_fn owns,
                      void *opaque) {
    observe_write(engine, true); /* unpins, and the store has them */
    forget_ctx_t ctx = {owns, opaque};
    pn_state_cache_drop_if(engine->cache, forget_pred, &ctx);
}

void pn_engine_get_stats(const pn_engine_t *engine, pn_engine_stats_t *stats) {
    *stats = engine->stats;
    stats->cached_streams = pn_state_cache_size(engine->cache);
}
