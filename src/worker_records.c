/*
 * One consumed command record: dead-letter it if it cannot be decoded,
 * forward it if it sits on the wrong partition, otherwise execute it and
 * publish its event and outcome. Everything goes into the open transaction.
 * A record that cannot be decoded for a passing reason (the schema
 * registry unreachable: PN_ERR_IO) is not dead-lettered but retried.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "panther/log.h"
#include "panther/partition.h"
#include "worker_internal.h"

void pn_worker_format_partitions(const rd_kafka_topic_partition_list_t *parts,
                                 char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < parts->cnt && used < size; i++) {
        int n = snprintf(buf + used, size - used, "%s%" PRId32, i ? "," : "",
                         parts->elems[i].partition);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* The record's own headers (if any) plus ours. */
static rd_kafka_headers_t *headers_with(const rd_kafka_message_t *m,
                                        size_t extra) {
    rd_kafka_headers_t *orig = NULL;
    if (rd_kafka_message_headers(m, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR && orig)
        return rd_kafka_headers_copy(orig);
    return rd_kafka_headers_new(extra);
}

/* value in decimal, as "%" PRId64 writes it, without stdio (two of these
 * per result record); returns the length, text not NUL-terminated. */
static size_t format_int(int64_t value, char text[24]) {
    char digits[20];
    uint64_t u = value < 0 ? 0 - (uint64_t)value : (uint64_t)value;
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t len = 0;
    if (value < 0)
        text[len++] = '-';
    while (n)
        text[len++] = digits[--n];
    return len;
}

static void header_add_int(rd_kafka_headers_t *h, const char *name,
                           int64_t value) {
    char text[24];
    rd_kafka_header_add(h, name, -1, text, (ssize_t)format_int(value, text));
}

static pn_err_t dead_letter(pn_worker_t *w, const rd_kafka_message_t *m,
                            pn_err_t cause, const char *detail) {
    const char *topic = rd_kafka_topic_name(m->rkt);
    rd_kafka_headers_t *h = headers_with(m, 5);
    rd_kafka_header_add(h, PN_HEADER_ERROR, -1, pn_err_name(cause), -1);
    rd_kafka_header_add(h, PN_HEADER_ERROR_MESSAGE, -1, detail, -1);
    rd_kafka_header_add(h, PN_HEADER_ORIGINAL_TOPIC, -1, topic, -1);
    header_add_int(h, PN_HEADER_ORIGINAL_PARTITION, m->partition);
    header_add_int(h, PN_HEADER_ORIGINAL_OFFSET, m->offset);
    pn_log_kv(PN_LOG_WARN, "dead letter", PN_LOG_STR("topic", topic),
              PN_LOG_INT("partition", m->partition),
              PN_LOG_INT("offset", m->offset),
              PN_LOG_STR("error", pn_err_name(cause)),
              PN_LOG_STR("detail", detail));
    w->stats.dead_letters++;
    return pn_worker_produce(w, w->opts.dead_letter_topic, RD_KAFKA_PARTITION_UA,
                             m->key, m->key_len, m->payload, m->len, h, false);
}

/* A command on the wrong partition goes, unchanged, to the right one with
 * the canonical key; its new owner executes it (DESIGN.md section 2). */
static pn_err_t forward(pn_worker_t *w, const rd_kafka_message_t *m,
                        int32_t partition, pn_str_t key) {
    rd_kafka_headers_t *h = headers_with(m, 2);
    header_add_int(h, PN_HEADER_FORWARDED_PARTITION, m->partition);
    header_add_int(h, PN_HEADER_FORWARDED_OFFSET, m->offset);
    w->stats.forwarded++;
    pn_log_kv(PN_LOG_DEBUG, "forwarding misrouted command",
              PN_LOG_INT("partition", m->partition),
              PN_LOG_INT("offset", m->offset),
              PN_LOG_INT("to_partition", partition));
    return pn_worker_produce(w, w->opts.commands_topic, partition, key.ptr,
                             key.len, m->payload, m->len, h, false);
}

/* The commands-topic record an outcome answers, so that an audit can
 * match every command record to exactly one outcome, duplicates included.
 * Events carry no such headers: an event names its command by commandId,
 * and librdkafka allocates every header and list (four mallocs and frees
 * per record, on the batch loop): on events they cost 8 % of the worker's
 * CPU per command (bench/results/e2e.md). */
static rd_kafka_headers_t *source_headers(const rd_kafka_message_t *m) {
    rd_kafka_headers_t *h = rd_kafka_headers_new(2);
    header_add_int(h, PN_HEADER_SOURCE_PARTITION, m->partition);
    header_add_int(h, PN_HEADER_SOURCE_OFFSET, m->offset);
    return h;
}

static pn_err_t execute(pn_worker_t *w, const rd_kafka_message_t *m,
                        const pn_command_t *cmd, char *errstr,
                        size_t errstr_size) {
    pn_engine_result_t res;
    pn_err_t err = pn_engine_execute(w->engine, m->partition, cmd, &res,
                                     errstr, errstr_size);
    if (err)
        return err;
    w->stats.commands++;
    pn_worker_metrics_outcome(w, &res.outcome);
    if (res.has_event) {
        err = pn_worker_produce(w, w->opts.events_topic, m->partition,
                                res.stream_key.ptr, res.stream_key.len,
                                res.event_value, res.event_len, NULL, true);
        if (err)
            return err;
        w->stats.events++;
    }
    err = pn_worker_produce(w, w->opts.outcomes_topic, RD_KAFKA_PARTITION_UA,
                            res.outcome_key.ptr, res.outcome_key.len,
                            res.outcome_value, res.outcome_len,
                            source_headers(m), false);
    if (!err)
        w->stats.outcomes++;
    return err;
}

pn_err_t pn_worker_handle_message(pn_worker_t *w, const rd_kafka_message_t *m,
                                  char *errstr, size_t errstr_size) {
    if (!m->payload || m->len == 0)
        return dead_letter(w, m, PN_ERR_MALFORMED, "record has no value");
    pn_command_t cmd;
    char why[512] = "";
    pn_err_t err = pn_codec_decode_command(w->codec, m->payload, m->len, &cmd,
                                           why, sizeof why);
    if (err == PN_ERR_IO || err == PN_ERR_NOMEM)
        /* Not the record's fault: the schema registry could not give its
         * writer schema now (down, slow, refusing us). Dead-lettering would
         * send every framed record to the DLT during an outage; instead
         * the batch is aborted, rewound and retried with a back-off, and
         * the partition waits until the registry answers. */
        return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA_ABORTABLE,
                          "partition %" PRId32 " offset %" PRId64
                          " not decoded, batch to be retried: %s",
                          m->partition, m->offset,
                          why[0] ? why : pn_err_str(err));
    if (err)
        return dead_letter(w, m, err, why[0] ? why : pn_err_str(err));
    char key[PN_STREAM_KEY_MAX];
    size_t key_len = pn_stream_key(cmd.sku_id, cmd.node_id, key, sizeof key);
    if (key_len) {
        int32_t p = pn_partition_for_key(key, key_len, w->n_partitions);
        if (p != m->partition) {
            err = forward(w, m, p, (pn_str_t){key, key_len});
            pn_command_release(&cmd);
            return err;
        }
    }
    /* A command whose stream ids are invalid has no home partition: it is
     * rejected (INVALID_COMMAND) where it arrived. */
    err = execute(w, m, &cmd, errstr, errstr_size);
    pn_command_release(&cmd);
    return err;
}
