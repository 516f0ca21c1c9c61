/*
 * Key layouts and value encodings of the store (see store_format.h for the
 * byte-level description). Pure functions: no RocksDB, no I/O.
 */
#include "store_format.h"

#include <string.h>

const char *const pn_store__cf_names[PN_STORE_CF__COUNT] = {
    "default", "events", "snapshots", "dedup", "meta"};

/* Layout byte of the dedup and meta values. */
#define VALUE_LAYOUT 1u
#define VARINT_MAX 10

/* --- varints ------------------------------------------------------------ */

/* A cursor over bytes being decoded; every read checks the end. */
typedef struct reader {
    const uint8_t *p;
    const uint8_t *end;
} reader_t;

static size_t varint_put(uint8_t *out, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

static uint64_t zigzag(int64_t v) {
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v) {
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* Rejects truncation and encodings longer than 64 bits need. */
static bool read_varint(reader_t *r, uint64_t *v) {
    uint64_t result = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->p == r->end)
            return false;
        uint8_t byte = *r->p++;
        if (shift == 63 && byte > 1)
            return false;
        result |= (uint64_t)(byte & 0x7F) << shift;
        if (!(byte & 0x80)) {
            *v = result;
            return true;
        }
    }
    return false;
}

/* A varint that must fit a non-negative int64. */
static bool read_nonneg(reader_t *r, int64_t *v) {
    uint64_t u;
    if (!read_varint(r, &u) || u > INT64_MAX)
        return false;
    *v = (int64_t)u;
    return true;
}

static bool read_signed(reader_t *r, int64_t *v) {
    uint64_t u;
    if (!read_varint(r, &u))
        return false;
    *v = unzigzag(u);
    return true;
}

static bool read_byte(reader_t *r, uint8_t *b) {
    if (r->p == r->end)
        return false;
    *b = *r->p++;
    return true;
}

/* --- keys --------------------------------------------------------------- */

bool pn_store__stream_ok(pn_str_t stream_key) {
    return stream_key.ptr && stream_key.len > 0 &&
           stream_key.len <= PN_STORE_STREAM_MAX;
}

size_t pn_store__prefix(uint8_t *out, pn_str_t stream_key) {
    out[0] = (uint8_t)(stream_key.len >> 8);
    out[1] = (uint8_t)stream_key.len;
    memcpy(out + 2, stream_key.ptr, stream_key.len);
    return 2 + stream_key.len;
}

size_t pn_store__event_key(uint8_t *out, pn_str_t stream_key,
                           uint64_t version) {
    size_t n = pn_store__prefix(out, stream_key);
    pn_be64_write(out + n, version);
    return n + 8;
}

bool pn_store__parse_prefix(const void *key, size_t len, pn_str_t *stream,
                            size_t *prefix_len) {
    const uint8_t *k = key;
    if (len < 2)
        return false;
    size_t n = ((size_t)k[0] << 8) | k[1];
    if (n == 0 || n > PN_STORE_STREAM_MAX || len < 2 + n)
        return false;
    stream->ptr = (const char *)k + 2;
    stream->len = n;
    *prefix_len = 2 + n;
    return true;
}

size_t pn_store__successor(uint8_t *key, size_t len) {
    while (len > 0) {
        if (key[len - 1] != 0xFF) {
            key[len - 1]++;
            return len;
        }
        len--;
    }
    return 0;
}

void pn_store__partition_key(uint8_t *out, int32_t partition) {
    out[0] = PN_STORE_META_PARTITION_TAG;
    pn_be32_write(out + 1, (uint32_t)partition);
}

size_t pn_store__stream_time_key(uint8_t *out, pn_str_t stream_key) {
    out[0] = PN_STORE_META_STREAM_TAG;
    return 1 + pn_store__prefix(out + 1, stream_key);
}

pn_err_t pn_store__dedup_key(pn_buf_t *out, pn_str_t stream_key,
                             pn_str_t command_id) {
    if (!pn_store__stream_ok(stream_key) ||
        command_id.len > PN_STORE_COMMAND_ID_MAX ||
        (command_id.len > 0 && !command_id.ptr))
        return PN_ERR_INVALID_ARG;
    pn_err_t err = pn_buf_reserve(out, 2 + stream_key.len + command_id.len);
    if (err)
        return err;
    out->len += pn_store__prefix(out->data + out->len, stream_key);
    if (command_id.len > 0)
        memcpy(out->data + out->len, command_id.ptr, command_id.len);
    out->len += command_id.len;
    return PN_ERR_OK;
}

/* --- snapshots ---------------------------------------------------------- */

size_t pn_store__snapshot_max_size(const pn_state_t *state) {
    size_t n = PN_STORE_FOLD_LEN + 4 * VARINT_MAX;
    for (size_t i = 0; i < state->n_reservations; i++)
        n += 2 * VARINT_MAX + state->reservations[i].order_id_len;
    return n;
}

/* The invariants a decoder will insist on, checked before writing. */
static bool state_encodable(const pn_state_t *state) {
    if (state->version < 0 || state->on_hand < 0 || state->reserved < 0 ||
        (state->n_reservations > 0 && !state->reservations))
        return false;
    int64_t sum = 0;
    for (size_t i = 0; i < state->n_reservations; i++) {
        const pn_reservation_t *r = &state->reservations[i];
        if (r->quantity <= 0 || r->order_id_len == 0 || !r->order_id ||
            r->order_id_len > PN_STORE_COMMAND_ID_MAX ||
            __builtin_add_overflow(sum, r->quantity, &sum))
            return false;
    }
    return sum == state->reserved;
}

size_t pn_store__snapshot_write(uint8_t *out, uint32_t fold,
                                const pn_state_t *state) {
    if (!state_encodable(state))
        return 0;
    uint8_t *p = out;
    pn_be32_write(p, fold);
    p += PN_STORE_FOLD_LEN;
    p += varint_put(p, (uint64_t)state->version);
    p += varint_put(p, (uint64_t)state->on_hand);
    p += varint_put(p, (uint64_t)state->reserved);
    p += varint_put(p, state->n_reservations);
    for (size_t i = 0; i < state->n_reservations; i++) {
        const pn_reservation_t *r = &state->reservations[i];
        p += varint_put(p, r->order_id_len);
        memcpy(p, r->order_id, r->order_id_len);
        p += r->order_id_len;
        p += varint_put(p, (uint64_t)r->quantity);
    }
    return (size_t)(p - out);
}

pn_err_t pn_store__snapshot_peek(const void *value, size_t len,
                                 uint32_t *fold, int64_t *version) {
    if (len < PN_STORE_FOLD_LEN)
        return PN_ERR_STORE_CORRUPT;
    *fold = pn_be32_read(value);
    reader_t r = {(const uint8_t *)value + PN_STORE_FOLD_LEN,
                  (const uint8_t *)value + len};
    return read_nonneg(&r, version) ? PN_ERR_OK : PN_ERR_STORE_CORRUPT;
}

/* One (order id, quantity) pair; the running sum guards against overflow. */
static pn_err_t decode_reservation(reader_t *r, pn_state_t *state,
                                   int64_t *sum) {
    uint64_t id_len;
    int64_t quantity;
    if (!read_varint(r, &id_len) || id_len == 0 ||
        id_len > PN_STORE_COMMAND_ID_MAX ||
        id_len > (uint64_t)(r->end - r->p))
        return PN_ERR_STORE_CORRUPT;
    pn_str_t order_id = {(const char *)r->p, (size_t)id_len};
    r->p += id_len;
    if (!read_nonneg(r, &quantity) || quantity == 0 ||
        __builtin_add_overflow(*sum, quantity, sum))
        return PN_ERR_STORE_CORRUPT;
    size_t before = state->n_reservations;
    pn_err_t err = pn_state_adjust_reservation(state, order_id, quantity);
    if (err)
        return err == PN_ERR_NOMEM ? err : PN_ERR_STORE_CORRUPT;
    /* An order listed twice would merge silently: the count tells. */
    return state->n_reservations == before + 1 ? PN_ERR_OK
                                               : PN_ERR_STORE_CORRUPT;
}

static pn_err_t decode_state(reader_t *r, pn_state_t *state) {
    int64_t version, on_hand, reserved, sum = 0;
    uint64_t count;
    if (!read_nonneg(r, &version) || !read_nonneg(r, &on_hand) ||
        !read_nonneg(r, &reserved) || !read_varint(r, &count) ||
        /* each reservation takes at least 3 bytes */
        count > (uint64_t)(r->end - r->p) / 3)
        return PN_ERR_STORE_CORRUPT;
    for (uint64_t i = 0; i < count; i++) {
        pn_err_t err = decode_reservation(r, state, &sum);
        if (err)
            return err;
    }
    if (r->p != r->end || sum != reserved || state->reserved != reserved)
        return PN_ERR_STORE_CORRUPT;
    state->version = version;
    state->on_hand = on_hand;
    return PN_ERR_OK;
}

pn_err_t pn_store__snapshot_decode(const void *value, size_t len,
                                   pn_state_t *state) {
    pn_state_clear(state);
    if (len < PN_STORE_FOLD_LEN)
        return PN_ERR_STORE_CORRUPT;
    reader_t r = {(const uint8_t *)value + PN_STORE_FOLD_LEN,
                  (const uint8_t *)value + len};
    pn_err_t err = decode_state(&r, state);
    if (err)
        pn_state_clear(state);
    return err;
}

/* --- dedup entries and partition meta ----------------------------------- */

size_t pn_store__dedup_encode(uint8_t *out, const pn_dedup_entry_t *entry) {
    const pn_outcome_t *o = &entry->outcome;
    if ((unsigned)o->command_type >= PN_CMD__COUNT ||
        (o->status != PN_STATUS_ACCEPTED && o->status != PN_STATUS_REJECTED) ||
        o->reason < PN_REASON_NONE || o->reason >= PN_REASON__COUNT)
        return 0;
    size_t n = 0;
    out[n++] = VALUE_LAYOUT;
    n += varint_put(out + n, zigzag(entry->partition));
    n += varint_put(out + n, entry->seq);
    n += varint_put(out + n, zigzag(entry->at_ms));
    out[n++] = (uint8_t)o->command_type;
    out[n++] = (uint8_t)o->status;
    out[n++] = (uint8_t)(o->reason + 1);
    out[n++] = o->duplicate ? 1 : 0;
    n += varint_put(out + n, zigzag(o->version));
    n += varint_put(out + n, zigzag(o->on_hand));
    n += varint_put(out + n, zigzag(o->reserved));
    n += varint_put(out + n, zigzag(o->available));
    return n;
}

static bool decode_outcome(reader_t *r, pn_outcome_t *o) {
    uint8_t type, status, reason, dup;
    if (!read_byte(r, &type) || !read_byte(r, &status) ||
        !read_byte(r, &reason) || !read_byte(r, &dup) ||
        type >= PN_CMD__COUNT || status > PN_STATUS_REJECTED ||
        reason > PN_REASON__COUNT || dup > 1)
        return false;
    o->command_type = (pn_command_type_t)type;
    o->status = (pn_status_t)status;
    o->reason = (pn_reason_t)((int)reason - 1);
    o->duplicate = dup == 1;
    return read_signed(r, &o->version) && read_signed(r, &o->on_hand) &&
           read_signed(r, &o->reserved) && read_signed(r, &o->available);
}

pn_err_t pn_store__dedup_decode(const void *value, size_t len,
                                pn_dedup_entry_t *entry) {
    reader_t r = {value, (const uint8_t *)value + len};
    uint8_t layout;
    int64_t partition;
    memset(entry, 0, sizeof *entry);
    if (!read_byte(&r, &layout) || layout != VALUE_LAYOUT ||
        !read_signed(&r, &partition) || partition < INT32_MIN ||
        partition > INT32_MAX || !read_varint(&r, &entry->seq) ||
        !read_signed(&r, &entry->at_ms) ||
        !decode_outcome(&r, &entry->outcome) || r.p != r.end)
        return PN_ERR_STORE_CORRUPT;
    entry->partition = (int32_t)partition;
    return PN_ERR_OK;
}

size_t pn_store__meta_encode(uint8_t *out, const pn_partition_meta_t *meta) {
    size_t n = 0;
    out[n++] = VALUE_LAYOUT;
    n += varint_put(out + n, zigzag(meta->events_offset));
    n += varint_put(out + n, meta->dedup_seq);
    n += varint_put(out + n, zigzag(meta->dedup_max_at_ms));
    return n;
}

pn_err_t pn_store__meta_decode(const void *value, size_t len,
                               pn_partition_meta_t *meta) {
    reader_t r = {value, (const uint8_t *)value + len};
    uint8_t layout;
    if (!read_byte(&r, &layout) || layout != VALUE_LAYOUT ||
        !read_signed(&r, &meta->events_offset) ||
        !read_varint(&r, &meta->dedup_seq) ||
        !read_signed(&r, &meta->dedup_max_at_ms) || r.p != r.end)
        return PN_ERR_STORE_CORRUPT;
    return PN_ERR_OK;
}

void pn_store__stream_time_encode(uint8_t *out, int64_t at_ms) {
    out[0] = VALUE_LAYOUT;
    pn_be64_write(out + 1, (uint64_t)at_ms);
}

pn_err_t pn_store__stream_time_decode(const void *value, size_t len,
                                      int64_t *at_ms) {
    const uint8_t *v = value;
    if (len != PN_STORE_STREAM_TIME_LEN || v[0] != VALUE_LAYOUT)
        return PN_ERR_STORE_CORRUPT;
    *at_ms = (int64_t)pn_be64_read(v + 1);
    return PN_ERR_OK;
}
