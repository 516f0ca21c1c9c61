/*
 * The audit of DESIGN.md section 6, from the topics alone: command records
 * are matched to their outcomes, dead letters and forwarded copies through
 * headers, each stream's events are folded with the domain's evolve, and
 * every non-duplicate outcome is checked against that fold.
 */
#include "panther/audit.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hashmap.h"
#include "panther/codec.h"
#include "panther/domain.h"
#include "panther/partition.h"
#include "panther/schema_registry.h"
#include "topic_reader.h"
#include "clock.h"

#define READ_TIMEOUT_MS 120000

typedef struct cmd_rec {
    bool decoded;
    bool misrouted;
    uint32_t outcomes;
    uint32_t dead_letters;
    uint32_t forwards;
} cmd_rec_t;

/* The numbers of a stream after each version, from the fold of its events. */
typedef struct stream_hist {
    pn_state_t state;
    int64_t *on_hand; /* [version] */
    int64_t *reserved;
    uint64_t *made_by; /* [version]: hash of the event's command id */
    size_t cap;
} stream_hist_t;

typedef struct audit {
    const pn_audit_options_t *opts;
    pn_audit_report_t *report;
    pn_codec_t *codec;
    pn_schema_registry_t *registry;
    char decode_err[512]; /* why a command could not be judged */
    int32_t n_command_partitions;
    pn_map_t commands; /* (partition, offset) -> cmd_rec_t */
    pn_map_t streams;  /* stream key -> stream_hist_t */
    pn_map_t ids;      /* stream key + '\0' + id -> non-duplicate count */
    pn_map_t order;    /* stream key -> outcome_order_t */
    /* Forwarded copies name their original, which may be read later (the
     * partitions interleave), so they are resolved after the pass. */
    struct forward_ref {
        int32_t partition, from_partition;
        int64_t offset, from_offset;
    } *forwards;
    size_t n_forwards, cap_forwards;
    size_t max_reported;
} audit_t;

static void violation(audit_t *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void violation(audit_t *a, const char *fmt, ...) {
    a->report->violations++;
    if (a->report->violations > a->max_reported)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* A report too long for its buffer keeps its first lines. */
    pn_err_t full = pn_buf_appendf(&a->report->details, "%s\n", line);
    (void)full;
}

static void record_key(uint8_t key[12], int32_t partition, int64_t offset) {
    pn_be32_write(key, (uint32_t)partition);
    pn_be64_write(key + 4, (uint64_t)offset);
}

static cmd_rec_t *find_command(audit_t *a, int32_t partition, int64_t offset) {
    uint8_t key[12];
    record_key(key, partition, offset);
    pn_map_entry_t *e = pn_map_find(&a->commands, key, sizeof key);
    return e ? e->value : NULL;
}

/* --- commands ---------------------------------------------------------------- */

static pn_err_t on_command(void *opaque, const rd_kafka_message_t *m) {
    audit_t *a = opaque;
    cmd_rec_t *rec = calloc(1, sizeof *rec);
    if (!rec)
        return PN_ERR_NOMEM;
    a->report->command_records++;
    pn_command_t cmd;
    pn_err_t derr = m->payload && m->len
                        ? pn_codec_decode_command(a->codec, m->payload, m->len,
                                                  &cmd, a->decode_err,
                                                  sizeof a->decode_err)
                        : PN_ERR_MALFORMED;
    if (derr == PN_ERR_IO || derr == PN_ERR_NOMEM) {
        free(rec); /* the registry is away: no verdict possible */
        return derr;
    }
    a->decode_err[0] = '\0';
    rec->decoded = derr == PN_ERR_OK;
    if (rec->decoded) {
        char key[PN_STREAM_KEY_MAX];
        size_t len = pn_stream_key(cmd.sku_id, cmd.node_id, key, sizeof key);
        rec->misrouted = len && pn_partition_for_key(key, len,
                                                     a->n_command_partitions) !=
                                    m->partition;
        pn_command_release(&cmd);
    } else {
        a->report->undecodable++;
    }
    a->report->misrouted += rec->misrouted;
    int64_t from_p, from_off;
    if (pn_kafka_header_int(m, PN_HEADER_FORWARDED_PARTITION, &from_p) &&
        pn_kafka_header_int(m, PN_HEADER_FORWARDED_OFFSET, &from_off)) {
        a->report->forwarded_copies++;
        if (a->n_forwards == a->cap_forwards) {
            size_t cap = a->cap_forwards ? a->cap_forwards * 2 : 64;
            void *grown = realloc(a->forwards, cap * sizeof *a->forwards);
            if (!grown) {
                free(rec);
                return PN_ERR_NOMEM;
            }
            a->forwards = grown;
            a->cap_forwards = cap;
        }
        a->forwards[a->n_forwards++] = (struct forward_ref){
            m->partition, (int32_t)from_p, m->offset, from_off};
    }
    uint8_t key[12];
    record_key(key, m->partition, m->offset);
    pn_err_t err = pn_map_insert(&a->commands, key, sizeof key, rec, NULL);
    if (err)
        free(rec);
    return err;
}

static pn_err_t on_dead_letter(void *opaque, const rd_kafka_message_t *m) {
    audit_t *a = opaque;
    a->report->dead_letters++;
    int64_t p, off;
    if (!pn_kafka_header_int(m, PN_HEADER_ORIGINAL_PARTITION, &p) ||
        !pn_kafka_header_int(m, PN_HEADER_ORIGINAL_OFFSET, &off)) {
        violation(a, "dead letter %d@%" PRId64 " has no origin headers",
                  m->partition, m->offset);
        return PN_ERR_OK;
    }
    cmd_rec_t *rec = find_command(a, (int32_t)p, off);
    if (rec)
        rec->dead_letters++;
    else
        violation(a, "dead letter names unknown record %" PRId64 "@%" PRId64,
                  p, off);
    return PN_ERR_OK;
}

static void resolve_forwards(audit_t *a) {
    for (size_t i = 0; i < a->n_forwards; i++) {
        const struct forward_ref *f = &a->forwards[i];
        cmd_rec_t *orig = find_command(a, f->from_partition, f->from_offset);
        if (orig)
            orig->forwards++;
        else
            violation(a, "forwarded copy %d@%" PRId64 " names unknown record "
                         "%d@%" PRId64,
                      f->partition, f->offset, f->from_partition,
                      f->from_offset);
    }
}

/* --- events -------------------------------------------------------------------- */

static void free_stream(void *value) {
    stream_hist_t *s = value;
    pn_state_clear(&s->state);
    free(s->on_hand);
    free(s->reserved);
    free(s->made_by);
    free(s);
}

static pn_err_t stream_of(audit_t *a, const char *key, size_t len,
                          stream_hist_t **sp) {
    pn_map_entry_t *e = pn_map_find(&a->streams, key, len);
    if (e) {
        *sp = e->value;
        return PN_ERR_OK;
    }
    stream_hist_t *s = calloc(1, sizeof *s);
    if (!s)
        return PN_ERR_NOMEM;
    pn_state_init(&s->state);
    pn_err_t err = pn_map_insert(&a->streams, key, len, s, NULL);
    if (err) {
        free(s);
        return err;
    }
    a->report->streams++;
    *sp = s;
    return PN_ERR_OK;
}

static pn_err_t remember_numbers(stream_hist_t *s, pn_str_t command_id) {
    size_t v = (size_t)s->state.version;
    if (v >= s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        while (cap <= v)
            cap *= 2;
        int64_t *oh = realloc(s->on_hand, cap * sizeof *oh);
        if (!oh)
            return PN_ERR_NOMEM;
        s->on_hand = oh;
        int64_t *rs = realloc(s->reserved, cap * sizeof *rs);
        if (!rs)
            return PN_ERR_NOMEM;
        s->reserved = rs;
        uint64_t *mb = realloc(s->made_by, cap * sizeof *mb);
        if (!mb)
            return PN_ERR_NOMEM;
        s->made_by = mb;
        s->cap = cap;
    }
    s->on_hand[v] = s->state.on_hand;
    s->reserved[v] = s->state.reserved;
    s->made_by[v] = pn_hash_bytes(command_id.ptr, command_id.len);
    return PN_ERR_OK;
}

static pn_err_t fold_event(audit_t *a, stream_hist_t *s, const char *key,
                           const pn_event_t *ev, const rd_kafka_message_t *m) {
    if (ev->version != s->state.version + 1) {
        violation(a, "stream %s: event version %" PRId64 " after %" PRId64
                     " (%s) at %d@%" PRId64,
                  key, ev->version, s->state.version,
                  ev->version <= s->state.version ? "repeat" : "gap",
                  m->partition, m->offset);
        return PN_ERR_OK;
    }
    if (pn_domain_evolve(&s->state, ev) != PN_ERR_OK) {
        violation(a, "stream %s: event version %" PRId64 " does not apply",
                  key, ev->version);
        return PN_ERR_OK;
    }
    if (ev->type == PN_EVT_RESERVED && pn_state_available(&s->state) < 0)
        violation(a, "stream %s: reservation at version %" PRId64
                     " made available %" PRId64,
                  key, ev->version, pn_state_available(&s->state));
    return remember_numbers(s, ev->command_id);
}

static pn_err_t on_event(void *opaque, const rd_kafka_message_t *m) {
    audit_t *a = opaque;
    a->report->events++;
    pn_event_t ev;
    if (pn_codec_decode_event(a->codec, m->payload, m->len, &ev, NULL, 0)) {
        violation(a, "event %d@%" PRId64 " does not decode", m->partition,
                  m->offset);
        return PN_ERR_OK;
    }
    char key[PN_STREAM_KEY_MAX];
    size_t len = pn_stream_key(ev.sku_id, ev.node_id, key, sizeof key);
    pn_err_t err = PN_ERR_OK;
    stream_hist_t *s;
    if (!len)
        violation(a, "event %d@%" PRId64 " has invalid stream ids",
                  m->partition, m->offset);
    else if (pn_partition_for_key(key, len, a->n_command_partitions) !=
             m->partition)
        violation(a, "event of stream %s on partition %d", key, m->partition);
    else if (!(err = stream_of(a, key, len, &s)))
        err = fold_event(a, s, key, &ev, m);
    pn_event_release(&ev);
    return err;
}

/* --- outcomes ------------------------------------------------------------------ */

/* The versions that a stream's non-duplicate outcomes report, by the offset
 * of their command: a worker runs a partition's commands in offset order,
 * so a command never reports a version below an earlier command's, and
 * one whose event made version v follows only commands that report less.
 * (All commands of a stream that are run lie on its own partition,
 * forwarded copies included: a misrouted original gets no outcome.) */
typedef struct outcome_at {
    int64_t offset, version;
    bool made; /* the event at this version is this command's */
    pn_str_t id;
} outcome_at_t;

typedef struct outcome_order {
    outcome_at_t *items;
    size_t n, cap;
} outcome_order_t;

static void free_order(void *value) {
    outcome_order_t *o = value;
    for (size_t i = 0; i < o->n; i++)
        free((void *)o->items[i].id.ptr);
    free(o->items);
    free(o);
}

static pn_err_t note_order(audit_t *a, const char *key, size_t len,
                           int64_t offset, const pn_outcome_record_t *o) {
    pn_map_entry_t *hist = pn_map_find(&a->streams, key, len);
    const stream_hist_t *s = hist ? hist->value : NULL;
    int64_t v = o->outcome.version;
    bool made = o->outcome.status == PN_STATUS_ACCEPTED && s && v > 0 &&
                v <= s->state.version &&
                s->made_by[v] == pn_hash_bytes(o->command_id.ptr,
                                               o->command_id.len);
    pn_map_entry_t *e = pn_map_find(&a->order, key, len);
    outcome_order_t *ord = e ? e->value : NULL;
    if (!ord) {
        if (!(ord = calloc(1, sizeof *ord)))
            return PN_ERR_NOMEM;
        pn_err_t err = pn_map_insert(&a->order, key, len, ord, NULL);
        if (err) {
            free(ord);
            return err;
        }
    }
    if (ord->n == ord->cap) {
        size_t cap = ord->cap ? ord->cap * 2 : 8;
        outcome_at_t *grown = realloc(ord->items, cap * sizeof *grown);
        if (!grown)
            return PN_ERR_NOMEM;
        ord->items = grown;
        ord->cap = cap;
    }
    char *id = malloc(o->command_id.len + 1);
    if (!id)
        return PN_ERR_NOMEM;
    memcpy(id, o->command_id.ptr, o->command_id.len);
    ord->items[ord->n++] = (outcome_at_t){offset, v, made,
                                          {id, o->command_id.len}};
    return PN_ERR_OK;
}

static int by_offset(const void *x, const void *y) {
    const outcome_at_t *a = x, *b = y;
    return (a->offset > b->offset) - (a->offset < b->offset);
}

static void judge_order(pn_map_entry_t *e, void *opaque) {
    audit_t *a = opaque;
    outcome_order_t *ord = e->value;
    qsort(ord->items, ord->n, sizeof *ord->items, by_offset);
    const outcome_at_t *highest = NULL; /* of the commands before */
    for (size_t i = 0; i < ord->n; i++) {
        const outcome_at_t *at = &ord->items[i];
        if (i > 0 && at->offset == ord->items[i - 1].offset)
            continue; /* one record answered twice: judge_record says so */
        if (highest && (at->version < highest->version ||
                        (at->made && at->version == highest->version)))
            violation(a, "stream %.*s: command %.*s (offset %" PRId64
                         ") %s version %" PRId64 ", but %.*s, an earlier "
                         "command (offset %" PRId64 "), reports %" PRId64
                         ": the commands ran out of order",
                      (int)e->key_len, (const char *)e->key, (int)at->id.len,
                      at->id.ptr, at->offset, at->made ? "made" : "reports",
                      at->version, (int)highest->id.len, highest->id.ptr,
                      highest->offset, highest->version);
        if (!highest || at->version > highest->version)
            highest = at;
    }
}

static pn_err_t count_first_outcome(audit_t *a, const char *key, size_t len,
                                    pn_str_t id) {
    char buf[PN_STREAM_KEY_MAX + PN_ID_MAX_BYTES + 1];
    if (id.len > PN_ID_MAX_BYTES)
        return PN_ERR_OK;
    memcpy(buf, key, len);
    buf[len] = '\0';
    memcpy(buf + len + 1, id.ptr, id.len);
    size_t n = len + 1 + id.len;
    pn_map_entry_t *e = pn_map_find(&a->ids, buf, n);
    if (e) {
        violation(a, "stream %s: command %.*s has more than one "
                     "non-duplicate outcome",
                  key, (int)id.len, id.ptr);
        return PN_ERR_OK;
    }
    return pn_map_insert(&a->ids, buf, n, NULL, NULL);
}

static void check_numbers(audit_t *a, const char *key, size_t len,
                          const pn_outcome_record_t *o) {
    pn_map_entry_t *e = pn_map_find(&a->streams, key, len);
    const stream_hist_t *s = e ? e->value : NULL;
    int64_t v = o->outcome.version;
    int64_t last = s ? s->state.version : 0;
    if (v > last) {
        violation(a, "stream %s: outcome of %.*s reports version %" PRId64
                     " but its events end at %" PRId64,
                  key, (int)o->command_id.len, o->command_id.ptr, v, last);
        return;
    }
    int64_t on_hand = v && s ? s->on_hand[v] : 0;
    int64_t reserved = v && s ? s->reserved[v] : 0;
    if (o->outcome.on_hand != on_hand || o->outcome.reserved != reserved ||
        o->outcome.available != on_hand - reserved)
        violation(a, "stream %s: outcome of %.*s at version %" PRId64
                     " says %" PRId64 "/%" PRId64 "/%" PRId64
                     ", the events say %" PRId64 "/%" PRId64 "/%" PRId64,
                  key, (int)o->command_id.len, o->command_id.ptr, v,
                  o->outcome.on_hand, o->outcome.reserved, o->outcome.available,
                  on_hand, reserved, on_hand - reserved);
}

static pn_err_t on_outcome(void *opaque, const rd_kafka_message_t *m) {
    audit_t *a = opaque;
    a->report->outcomes++;
    pn_outcome_record_t o;
    if (pn_codec_decode_outcome(a->codec, m->payload, m->len, &o, NULL, 0)) {
        violation(a, "outcome %d@%" PRId64 " does not decode", m->partition,
                  m->offset);
        return PN_ERR_OK;
    }
    int64_t p = -1, off = -1;
    cmd_rec_t *rec = NULL;
    if (pn_kafka_header_int(m, PN_HEADER_SOURCE_PARTITION, &p) &&
        pn_kafka_header_int(m, PN_HEADER_SOURCE_OFFSET, &off))
        rec = find_command(a, (int32_t)p, off);
    if (rec)
        rec->outcomes++;
    else
        violation(a, "outcome %d@%" PRId64 " matches no command record",
                  m->partition, m->offset);
    a->report->duplicate_outcomes += o.outcome.duplicate;
    a->report->accepted += o.outcome.status == PN_STATUS_ACCEPTED;
    a->report->rejected += o.outcome.status == PN_STATUS_REJECTED;
    char key[PN_STREAM_KEY_MAX];
    size_t len = pn_stream_key(o.sku_id, o.node_id, key, sizeof key);
    pn_err_t err = PN_ERR_OK;
    if (len && !o.outcome.duplicate && o.command_id.len) {
        err = count_first_outcome(a, key, len, o.command_id);
        check_numbers(a, key, len, &o);
        if (!err && rec && !rec->misrouted)
            err = note_order(a, key, len, off, &o);
    }
    pn_outcome_record_release(&o);
    return err;
}

/* --- verdict per record ---------------------------------------------------------- */

static void judge_record(pn_map_entry_t *e, void *opaque) {
    audit_t *a = opaque;
    const cmd_rec_t *r = e->value;
    int32_t p = (int32_t)pn_be32_read((const uint8_t *)e->key);
    int64_t off = (int64_t)pn_be64_read((const uint8_t *)e->key + 4);
    uint32_t want_out = 0, want_dlt = 0, want_fwd = 0;
    if (!r->decoded)
        want_dlt = 1;
    else if (r->misrouted)
        want_fwd = 1;
    else
        want_out = 1;
    if (r->outcomes != want_out || r->dead_letters != want_dlt ||
        r->forwards != want_fwd)
        violation(a, "command record %d@%" PRId64 ": %u outcomes, %u dead "
                     "letters, %u forwards (expected %u, %u, %u)",
                  p, off, r->outcomes, r->dead_letters, r->forwards, want_out,
                  want_dlt, want_fwd);
}

/* --- waiting for the workers ------------------------------------------------------ */

/* A consumer with the audit's Kafka settings plus these. */
static pn_err_t consumer_new(const pn_audit_options_t *o,
                             const pn_kafka_prop_t *fixed, size_t n_fixed,
                             rd_kafka_t **out, char *errstr,
                             size_t errstr_size) {
    rd_kafka_conf_t *conf;
    pn_err_t err = pn_kafka_conf_new(NULL, 0, o->kafka, o->n_kafka, fixed,
                                     n_fixed, &conf, errstr, errstr_size);
    if (err)
        return err;
    char why[512];
    if (!(*out = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why))) {
        rd_kafka_conf_destroy(conf);
        return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA, "%s", why);
    }
    return PN_ERR_OK;
}

/* True when a read_committed reader starting at the group's committed
 * offsets finds nothing left to consume in any partition. */
static pn_err_t group_caught_up(const pn_audit_options_t *o, bool *caught_up,
                                char *errstr, size_t errstr_size) {
    char group_id[512];
    snprintf(group_id, sizeof group_id, "%s", o->group_id);
    const pn_kafka_prop_t fixed[] = {
        {"group.id", group_id},
        {"enable.auto.commit", "false"},
        {"enable.partition.eof", "true"},
        {"isolation.level", "read_committed"},
    };
    rd_kafka_t *rk;
    pn_err_t err = consumer_new(o, fixed, sizeof fixed / sizeof fixed[0], &rk,
                                errstr, errstr_size);
    if (err)
        return err;
    int32_t n = 0;
    err = pn_kafka_partition_count(rk, o->commands_topic, 10000, &n, errstr,
                                   errstr_size);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n);
    for (int32_t p = 0; p < n; p++)
        rd_kafka_topic_partition_list_add(parts, o->commands_topic, p);
    if (!err && rd_kafka_committed(rk, parts, 30000))
        err = pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                         "cannot read the committed offsets of group '%s'",
                         o->group_id);
    for (int i = 0; i < parts->cnt; i++)
        if (parts->elems[i].offset < 0)
            parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
    if (!err)
        rd_kafka_assign(rk, parts);
    int remaining = err ? 0 : n;
    *caught_up = true;
    for (int polls = 0; remaining > 0 && polls < 300; polls++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            remaining--;
        else if (!m->err)
            *caught_up = false;
        rd_kafka_message_destroy(m);
        if (!*caught_up)
            break;
    }
    if (remaining > 0)
        *caught_up = false;
    rd_kafka_topic_partition_list_destroy(parts);
    /* Closed before it is destroyed, as every reader here is: destroying a
     * consumer that stopped reading with fetched records still queued hung
     * for good once in a test run (librdkafka 2.0.2: the destroy waited on
     * a broker thread that never ended). */
    rd_kafka_consumer_close(rk);
    pn_kafka_destroy(rk, "audit group check", PN_KAFKA_DESTROY_TIMEOUT_MS);
    return err;
}

/* True when no transaction is open on any partition of the topic: the end a
 * read_committed reader sees (the last stable offset) is the log's end. A
 * worker killed with a transaction open holds that end back until the
 * broker aborts the transaction (transaction.timeout.ms), and reading before
 * then would miss every later commit on those partitions. */
static pn_err_t topic_settled(rd_kafka_t *committed, rd_kafka_t *uncommitted,
                              const char *topic, bool *settled, char *errstr,
                              size_t errstr_size) {
    int32_t n = 0;
    pn_err_t err = pn_kafka_partition_count(uncommitted, topic, 10000, &n,
                                            errstr, errstr_size);
    for (int32_t p = 0; !err && *settled && p < n; p++) {
        int64_t low, stable, end;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
            committed, topic, p, &low, &stable, 10000);
        if (!e)
            e = rd_kafka_query_watermark_offsets(uncommitted, topic, p, &low,
                                                 &end, 10000);
        if (e)
            err = pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                             "cannot read the end offsets of %s [%d]: %s",
                             topic, (int)p, rd_kafka_err2str(e));
        else if (stable < end)
            *settled = false;
    }
    return err;
}

static pn_err_t outputs_settled(const pn_audit_options_t *o, bool *settled,
                                char *errstr, size_t errstr_size) {
    /* Group-less handles for offset queries at each isolation level. */
    const pn_kafka_prop_t read_committed[] = {
        {"isolation.level", "read_committed"}};
    const pn_kafka_prop_t read_uncommitted[] = {
        {"isolation.level", "read_uncommitted"}};
    rd_kafka_t *committed = NULL, *uncommitted = NULL;
    pn_err_t err = consumer_new(o, read_committed, 1, &committed, errstr,
                                errstr_size);
    if (!err)
        err = consumer_new(o, read_uncommitted, 1, &uncommitted, errstr,
                           errstr_size);
    const char *topics[] = {o->events_topic, o->outcomes_topic,
                            o->dead_letter_topic};
    *settled = true;
    for (size_t i = 0; !err && *settled && i < 3; i++)
        if (topics[i] && topics[i][0])
            err = topic_settled(committed, uncommitted, topics[i], settled,
                                errstr, errstr_size);
    pn_kafka_destroy(committed, "audit offsets (read_committed)",
                     PN_KAFKA_DESTROY_TIMEOUT_MS);
    pn_kafka_destroy(uncommitted, "audit offsets (read_uncommitted)",
                     PN_KAFKA_DESTROY_TIMEOUT_MS);
    return err;
}

/* Waits until the group has consumed every command and no transaction is
 * open on an output topic, or until wait_ms. */
static pn_err_t wait_for_group(const pn_audit_options_t *o, bool *caught_up,
                               char *errstr, size_t errstr_size) {
    int64_t start_ms = pn_mono_ms();
    for (;;) {
        pn_err_t err = group_caught_up(o, caught_up, errstr, errstr_size);
        if (!err && *caught_up)
            err = outputs_settled(o, caught_up, errstr, errstr_size);
        if (err || *caught_up)
            return err;
        if (pn_mono_ms() - start_ms >= o->wait_ms)
            return PN_ERR_OK;
        usleep(500 * 1000);
    }
}

/* --- the run ------------------------------------------------------------------------ */

static void free_audit(audit_t *a) {
    pn_map_free(&a->commands, free);
    pn_map_free(&a->streams, free_stream);
    pn_map_free(&a->ids, NULL);
    pn_map_free(&a->order, free_order);
    free(a->forwards);
    pn_codec_free(a->codec);
    pn_schema_registry_free(a->registry);
}

/* The codec, with the schema registry as its lookup when configured. */
static pn_err_t audit_codec_new(audit_t *a, char *errstr,
                                size_t errstr_size) {
    pn_codec_config_t cc = {0};
    const pn_audit_options_t *o = a->opts;
    if (o->schema_registry_url && o->schema_registry_url[0]) {
        pn_schema_registry_options_t ro = {
            .url = o->schema_registry_url,
            .basic_auth = o->schema_registry_auth};
        pn_err_t err =
            pn_schema_registry_new(&ro, &a->registry, errstr, errstr_size);
        if (err)
            return err;
        cc.lookup = pn_schema_registry_lookup;
        cc.lookup_opaque = a->registry;
    }
    return pn_codec_new(&cc, &a->codec, errstr, errstr_size);
}

pn_err_t pn_audit_run(const pn_audit_options_t *o, pn_audit_report_t *report,
                      char *errstr, size_t errstr_size) {
    memset(report, 0, sizeof *report);
    pn_buf_init(&report->details, 1u << 20);
    audit_t a = {.opts = o, .report = report,
                 .max_reported = o->max_reported ? o->max_reported : 20};
    pn_map_init(&a.commands);
    pn_map_init(&a.streams);
    pn_map_init(&a.ids);
    pn_map_init(&a.order);
    pn_err_t err = audit_codec_new(&a, errstr, errstr_size);
    report->caught_up = true;
    if (!err && o->wait_ms > 0 && o->group_id)
        err = wait_for_group(o, &report->caught_up, errstr, errstr_size);
    rd_kafka_t *probe = NULL;
    if (!err) {
        /* The partition count decides where each stream belongs. */
        rd_kafka_conf_t *conf;
        err = pn_kafka_conf_new(NULL, 0, o->kafka, o->n_kafka, NULL, 0, &conf,
                                errstr, errstr_size);
        if (!err && !(probe = rd_kafka_new(RD_KAFKA_PRODUCER, conf, NULL, 0))) {
            rd_kafka_conf_destroy(conf);
            err = pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                             "cannot create a Kafka client");
        }
        if (!err)
            err = pn_kafka_partition_count(probe, o->commands_topic, 10000,
                                           &a.n_command_partitions, errstr,
                                           errstr_size);
        if (probe)
            rd_kafka_destroy(probe);
    }
    struct {
        const char *topic;
        pn_topic_record_fn fn;
    } passes[] = {{o->commands_topic, on_command},
                  {o->dead_letter_topic, on_dead_letter},
                  {o->events_topic, on_event},
                  {o->outcomes_topic, on_outcome}};
    for (size_t i = 0; !err && i < sizeof passes / sizeof passes[0]; i++)
        err = pn_topic_read_all(o->kafka, o->n_kafka, passes[i].topic,
                                passes[i].fn, &a, READ_TIMEOUT_MS, errstr,
                                errstr_size);
    if (err && a.decode_err[0])
        err = pn_err_set(errstr, errstr_size, err, "cannot judge a command: %s",
                         a.decode_err);
    if (!err) {
        resolve_forwards(&a);
        pn_map_foreach(&a.commands, judge_record, &a);
        pn_map_foreach(&a.order, judge_order, &a);
    }
    if (!report->caught_up)
        violation(&a, "the group '%s' had not consumed every command, or a "
                      "transaction was still open on an output topic, when "
                      "audited (waited %d ms)",
                  o->group_id, o->wait_ms);
    free_audit(&a);
    return err;
}

void pn_audit_report_free(pn_audit_report_t *report) {
    if (report)
        pn_buf_free(&report->details);
}

void pn_audit_report_print(const pn_audit_report_t *r, FILE *out) {
    fprintf(out,
            "command records    %10" PRIu64 "  (%" PRIu64 " undecodable, %" PRIu64
            " misrouted, %" PRIu64 " forwarded copies)\n"
            "outcomes           %10" PRIu64 "  (%" PRIu64 " accepted, %" PRIu64
            " rejected, %" PRIu64 " duplicates)\n"
            "dead letters       %10" PRIu64 "\n"
            "events             %10" PRIu64 "  over %" PRIu64 " streams\n"
            "violations         %10" PRIu64 "\n",
            r->command_records, r->undecodable, r->misrouted,
            r->forwarded_copies, r->outcomes, r->accepted, r->rejected,
            r->duplicate_outcomes, r->dead_letters, r->events, r->streams,
            r->violations);
    if (r->details.len)
        fprintf(out, "%.*s", (int)r->details.len, (const char *)r->details.data);
    if (r->violations > 0 && r->details.len == 0)
        fprintf(out, "(details not kept)\n");
    fprintf(out, r->violations ? "AUDIT FAILED\n" : "AUDIT PASSED\n");
}

void pn_audit_report_print_json(const pn_audit_report_t *r, FILE *out) {
    fprintf(out,
            "{\"command_records\":%" PRIu64 ",\"undecodable\":%" PRIu64
            ",\"misrouted\":%" PRIu64 ",\"forwarded_copies\":%" PRIu64
            ",\"outcomes\":%" PRIu64 ",\"accepted\":%" PRIu64
            ",\"rejected\":%" PRIu64 ",\"duplicate_outcomes\":%" PRIu64
            ",\"dead_letters\":%" PRIu64 ",\"events\":%" PRIu64
            ",\"streams\":%" PRIu64 ",\"violations\":%" PRIu64
            ",\"passed\":%s}\n",
            r->command_records, r->undecodable, r->misrouted,
            r->forwarded_copies, r->outcomes, r->accepted, r->rejected,
            r->duplicate_outcomes, r->dead_letters, r->events, r->streams,
            r->violations, r->violations ? "false" : "true");
}
