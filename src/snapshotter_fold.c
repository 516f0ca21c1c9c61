/*
 * The snapshotter's fold and checkpoint: events go into the in-memory
 * states of the streams they touch (loaded from the store on first touch);
 * a checkpoint publishes, stores and commits them (see snapshotter.h for
 * the order and why it is safe).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "panther/log.h"
#include "snapshotter_internal.h"
#include "clock.h"

/* How long a checkpoint waits for the broker to acknowledge its snapshots
 * before it gives up and retries at the next interval. */
#define PUBLISH_TIMEOUT_MS 30000

static void count(atomic_uint_fast64_t *c, uint64_t n) {
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static void free_stream(void *value) {
    pn_snap_stream_t *st = value;
    if (st) {
        pn_state_clear(&st->state);
        free(st);
    }
}

void pn_snapshotter__forget(pn_snapshotter_t *s) {
    pn_map_clear(&s->streams, free_stream);
    pn_map_clear(&s->gapped, NULL);
    s->n_changed = 0;
    atomic_store(&s->stats.gapped_streams, 0);
}

/* --- applying events ------------------------------------------------------- */

static void mark_gapped(pn_snapshotter_t *s, pn_str_t key) {
    pn_map_entry_t *e;
    if (!pn_map_find(&s->gapped, key.ptr, key.len) &&
        pn_map_insert(&s->gapped, key.ptr, key.len, NULL, &e) == PN_ERR_OK)
        count(&s->stats.gapped_streams, 1);
}

/* The stream's state since the last checkpoint, loaded from the store on
 * first touch. *st is NULL (and the stream marked gapped) when its stored
 * snapshot is of another fold format: this store cannot fold it further. */
static pn_err_t load_stream(pn_snapshotter_t *s, pn_str_t key, size_t sku_len,
                            pn_snap_stream_t **stp, char *errstr,
                            size_t errstr_size) {
    pn_map_entry_t *e = pn_map_find(&s->streams, key.ptr, key.len);
    *stp = e ? e->value : NULL;
    if (e)
        return PN_ERR_OK;
    pn_snap_stream_t *st = calloc(1, sizeof *st);
    if (!st)
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM, "out of memory");
    pn_state_init(&st->state);
    st->sku_len = sku_len;
    pn_snapshot_status_t status;
    pn_err_t err = pn_store_get_snapshot(s->store, key, &st->state, &status);
    if (!err)
        err = pn_map_insert(&s->streams, key.ptr, key.len, st, &e);
    if (err) {
        free_stream(st);
        return pn_err_set(errstr, errstr_size, err, "loading %.*s: %s",
                          (int)key.len, key.ptr,
                          err == PN_ERR_NOMEM ? "out of memory"
                                              : pn_store_last_error(s->store));
    }
    if (status == PN_SNAPSHOT_STALE) {
        pn_log_kv(PN_LOG_ERROR,
                  "snapshot of another fold format: the stream is not "
                  "folded further; delete snapshotter.store.path to rebuild",
                  PN_LOG_STRN("stream", key.ptr, key.len));
        pn_state_clear(&st->state);
        st->state.version = INT64_MAX; /* skips everything; never stored */
        mark_gapped(s, key);
    }
    *stp = st;
    return PN_ERR_OK;
}

static void log_bad(const pn_snapshotter_t *s, const rd_kafka_message_t *m,
                    const char *msg, const char *detail) {
    pn_log_kv(PN_LOG_ERROR, msg, PN_LOG_TPO(s->opts.events_topic, m->partition,
                                            m->offset),
              PN_LOG_STR("detail", detail));
}

/* Folds a decoded event into its stream. */
static pn_err_t fold(pn_snapshotter_t *s, const rd_kafka_message_t *m,
                     const pn_event_t *ev, char *errstr, size_t errstr_size) {
    char key_buf[PN_STREAM_KEY_MAX];
    size_t key_len = pn_stream_key(ev->sku_id, ev->node_id, key_buf, sizeof key_buf);
    if (key_len == 0) {
        count(&s->stats.bad_events, 1);
        log_bad(s, m, "event with invalid stream ids skipped", "");
        return PN_ERR_OK;
    }
    pn_str_t key = {key_buf, key_len};
    if (pn_map_find(&s->gapped, key.ptr, key.len)) {
        count(&s->stats.gapped_events, 1);
        return PN_ERR_OK;
    }
    pn_snap_stream_t *st;
    pn_err_t err = load_stream(s, key, ev->sku_id.len, &st, errstr, errstr_size);
    if (err)
        return err;
    int64_t have = st->state.version;
    if (ev->version <= have) {
        count(&s->stats.skipped, 1);
        return PN_ERR_OK;
    }
    if (ev->version > have + 1) {
        pn_log_kv(PN_LOG_ERROR, "stream version gap: snapshot not advanced",
                  PN_LOG_STRN("stream", key.ptr, key.len),
                  PN_LOG_INT("stored_version", have),
                  PN_LOG_INT("event_version", ev->version),
                  PN_LOG_TPO(s->opts.events_topic, m->partition, m->offset));
        count(&s->stats.gaps, 1);
        count(&s->stats.gapped_events, 1);
        mark_gapped(s, key);
        return PN_ERR_OK;
    }
    err = pn_domain_evolve(&st->state, ev);
    if (err == PN_ERR_NOMEM)
        return pn_err_set(errstr, errstr_size, err, "out of memory");
    if (err) {
        /* Impossible for events a worker decided: the feed is broken. */
        log_bad(s, m, "event refused by evolve: stream marked gapped",
                pn_err_name(err));
        count(&s->stats.bad_events, 1);
        mark_gapped(s, key);
        return PN_ERR_OK;
    }
    st->updated_at_ms = ev->at_ms;
    if (!st->changed) {
        st->changed = true;
        s->n_changed++;
    }
    count(&s->stats.applied, 1);
    return PN_ERR_OK;
}

pn_err_t pn_snapshotter__apply(pn_snapshotter_t *s, const rd_kafka_message_t *m,
                               char *errstr, size_t errstr_size) {
    if (m->partition < 0 || m->partition >= s->n_partitions ||
        s->position[m->partition] < 0)
        return PN_ERR_OK; /* not (or no longer) assigned */
    count(&s->stats.events, 1);
    pn_event_t ev;
    char why[256] = "";
    pn_err_t err = pn_codec_decode_event(s->codec, m->payload, m->len, &ev, why,
                                         sizeof why);
    if (err) {
        count(&s->stats.bad_events, 1);
        log_bad(s, m, "undecodable event skipped", why);
    } else {
        err = fold(s, m, &ev, errstr, errstr_size);
        pn_event_release(&ev);
        if (err)
            return err;
    }
    s->position[m->partition] = m->offset + 1;
    return PN_ERR_OK;
}

/* --- checkpoints ------------------------------------------------------------- */

typedef struct publish_ctx {
    pn_snapshotter_t *s;
    pn_err_t err;
    size_t produced;
    int64_t deadline_ms;
} publish_ctx_t;

/* A snapshot the codec refuses (past codec.max.record.bytes: a stream with
 * a huge number of reservations), or one larger than the producer sends
 * (message.max.bytes, a little below the codec's default limit), cannot be
 * published, ever; it is logged and stored, rather than stalling every
 * checkpoint behind it. */
/* Room for the record's framing around key and value in a batch. */
#define RECORD_OVERHEAD_BYTES 128
static bool encode(pn_snapshotter_t *s, pn_map_entry_t *e,
                   const pn_snap_stream_t *st) {
    pn_str_t sku = {e->key, st->sku_len};
    pn_str_t node = {e->key + st->sku_len + 1, e->key_len - st->sku_len - 1};
    pn_buf_reset(&s->scratch);
    pn_err_t err = pn_codec_encode_snapshot(s->codec, sku, node, &st->state,
                                            st->updated_at_ms, &s->scratch);
    if (err) {
        pn_log_kv(PN_LOG_ERROR, "snapshot cannot be encoded, not published",
                  PN_LOG_STRN("stream", e->key, e->key_len), PN_LOG_ERR(err),
                  PN_LOG_UINT("reservations", st->state.n_reservations));
        count(&s->stats.bad_events, 1);
        return false;
    }
    size_t record_bytes = s->scratch.len + e->key_len + RECORD_OVERHEAD_BYTES;
    if (record_bytes > s->publish_max_bytes) {
        pn_log_kv(PN_LOG_ERROR,
                  "snapshot larger than the producer sends, not published",
                  PN_LOG_STRN("stream", e->key, e->key_len),
                  PN_LOG_UINT("bytes", record_bytes),
                  PN_LOG_UINT("message_max_bytes", s->publish_max_bytes),
                  PN_LOG_UINT("reservations", st->state.n_reservations));
        count(&s->stats.bad_events, 1);
        return false;
    }
    return true;
}

static void publish_one(pn_map_entry_t *e, void *opaque) {
    publish_ctx_t *pc = opaque;
    pn_snapshotter_t *s = pc->s;
    pn_snap_stream_t *st = e->value;
    if (pc->err || !st->changed || !encode(s, e, st))
        return;
    for (;;) {
        rd_kafka_resp_err_t rerr = rd_kafka_producev(
            s->producer, RD_KAFKA_V_TOPIC(s->opts.snapshots_topic),
            RD_KAFKA_V_KEY(e->key, e->key_len),
            RD_KAFKA_V_VALUE(s->scratch.data, s->scratch.len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (rerr == RD_KAFKA_RESP_ERR__QUEUE_FULL && !s->stop &&
            pn_mono_ms() < pc->deadline_ms) {
            rd_kafka_poll(s->producer, 50);
            continue;
        }
        if (rerr) {
            pn_log_kv(PN_LOG_WARN, "cannot produce a snapshot",
                      PN_LOG_STR("topic", s->opts.snapshots_topic),
                      PN_LOG_STR("error", rd_kafka_err2str(rerr)));
            pc->err = PN_ERR_KAFKA;
        } else {
            pc->produced++;
        }
        return;
    }
}

/* Step 1: one record per changed stream, all acknowledged: the flush
 * empties the queue (earlier, undelivered attempts included) and a failed
 * delivery sets delivery_err. */
static pn_err_t publish(pn_snapshotter_t *s, char *errstr, size_t errstr_size) {
    s->delivery_err = RD_KAFKA_RESP_ERR_NO_ERROR;
    publish_ctx_t pc = {s, PN_ERR_OK, 0,
                        pn_mono_ms() + PUBLISH_TIMEOUT_MS};
    pn_map_foreach(&s->streams, publish_one, &pc);
    rd_kafka_resp_err_t rerr = rd_kafka_flush(s->producer, PUBLISH_TIMEOUT_MS);
    if (pc.err == PN_ERR_OK && !rerr && !s->delivery_err) {
        count(&s->stats.snapshots_published, pc.produced);
        return PN_ERR_OK;
    }
    count(&s->stats.publish_failures, 1);
    const char *why = pc.err ? pn_err_str(pc.err)
                      : rerr ? rd_kafka_err2str(rerr)
                             : rd_kafka_err2str(s->delivery_err);
    return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                      "publishing %zu snapshots to '%s': %s", s->n_changed,
                      s->opts.snapshots_topic, why);
}

typedef struct store_ctx {
    pn_snapshotter_t *s;
    pn_err_t err;
} store_ctx_t;

static void store_one(pn_map_entry_t *e, void *opaque) {
    store_ctx_t *sc = opaque;
    pn_snap_stream_t *st = e->value;
    if (sc->err || !st->changed)
        return;
    pn_str_t key = {e->key, e->key_len};
    sc->err = pn_store_batch_put_snapshot(sc->s->batch, key, &st->state);
    if (!sc->err)
        sc->err = pn_store_batch_put_stream_time(sc->s->batch, key,
                                                 st->updated_at_ms);
}

/* Step 2: snapshots, times and positions in one atomic write. */
static pn_err_t store(pn_snapshotter_t *s, char *errstr, size_t errstr_size) {
    pn_store_batch_clear(s->batch);
    store_ctx_t sc = {s, PN_ERR_OK};
    pn_map_foreach(&s->streams, store_one, &sc);
    for (int32_t p = 0; !sc.err && p < s->n_partitions; p++)
        if (s->position[p] > s->stored[p]) {
            pn_partition_meta_t meta = {.events_offset = s->position[p]};
            sc.err = pn_store_batch_put_partition_meta(s->batch, p, &meta);
        }
    if (sc.err)
        return pn_err_set(errstr, errstr_size, sc.err,
                          "preparing the checkpoint: %s", pn_err_str(sc.err));
    pn_err_t err = pn_store_commit(s->store, s->batch, errstr, errstr_size);
    pn_store_batch_clear(s->batch);
    if (err)
        return err;
    for (int32_t p = 0; p < s->n_partitions; p++)
        if (s->position[p] > s->stored[p])
            s->stored[p] = s->position[p];
    count(&s->stats.checkpoints, 1);
    return PN_ERR_OK;
}

/* Step 3: the group's offsets follow the store (failures only warned
 * about: the store is the record, and the next commit catches up). */
static void commit_offsets(pn_snapshotter_t *s) {
    rd_kafka_topic_partition_list_t *offsets =
        rd_kafka_topic_partition_list_new(8);
    for (int32_t p = 0; p < s->n_partitions; p++)
        if (s->position[p] >= 0)
            rd_kafka_topic_partition_list_add(offsets, s->opts.events_topic, p)
                ->offset = s->position[p];
    if (offsets->cnt > 0) {
        rd_kafka_resp_err_t rerr = rd_kafka_commit(s->consumer, offsets, 0);
        if (rerr && rerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
            pn_log_kv(PN_LOG_WARN, "offset commit failed",
                      PN_LOG_STR("topic", s->opts.events_topic),
                      PN_LOG_STR("error", rd_kafka_err2str(rerr)));
        else
            count(&s->stats.offset_commits, 1);
    }
    rd_kafka_topic_partition_list_destroy(offsets);
}

static bool positions_moved(const pn_snapshotter_t *s) {
    for (int32_t p = 0; p < s->n_partitions; p++)
        if (s->position[p] > s->stored[p])
            return true;
    return false;
}

pn_err_t pn_snapshotter__checkpoint(pn_snapshotter_t *s, char *errstr,
                                    size_t errstr_size) {
    s->last_checkpoint_ms = pn_mono_ms();
    if (s->n_changed == 0 && !positions_moved(s)) {
        pn_map_clear(&s->streams, free_stream);
        return PN_ERR_OK;
    }
    pn_err_t err = s->n_changed ? publish(s, errstr, errstr_size) : PN_ERR_OK;
    if (err) {
        pn_log_kv(PN_LOG_WARN, "checkpoint postponed: snapshots not delivered",
                  PN_LOG_STR("detail", errstr));
        return err;
    }
    err = store(s, errstr, errstr_size);
    if (err)
        return err;
    commit_offsets(s);
    pn_map_clear(&s->streams, free_stream);
    s->n_changed = 0;
    return PN_ERR_OK;
}
