/*
 * The latency measurement of `panther bench e2e` (see bench_e2e.h): a paced
 * load of commands whose send times are recorded, and a read_committed
 * reader of the output that matches each output record to its command
 * through the panther.source.partition / panther.source.offset headers and
 * the producer's delivery reports (partition, offset of each command).
 * Resent commands and duplicates are matched exactly: by record, not by id.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_e2e.h"
#include "bench_util.h"
#include "panther/kafka.h"
#include "clock.h"

/* What the latency producer knows of each command it sent: when, and
 * (from its delivery report) where it landed. */
typedef struct sent {
    int64_t send_us;
    int32_t partition;
    int64_t offset;
} sent_t;

typedef struct seen {
    int32_t partition; /* of the command the outcome answers */
    int64_t offset;
    int64_t visible_us;
    int64_t create_ms; /* when the worker produced the outcome */
} seen_t;

typedef struct load {
    const pn_e2e_latency_spec_t *spec;
    rd_kafka_t *producer;
    pn_e2e_gen_t gen;
    sent_t *sent;
    size_t cap;
    size_t n_sent;          /* written by the producer thread */
    int64_t measure_from_us; /* commands sent from here on are measured */
    int64_t paced_start_us, paced_end_us;
    size_t paced_base; /* index of the first paced command */
    volatile int done;      /* producer thread finished (flushed) */
    pn_err_t err;
    char errstr[512];
} load_t;

/* Runs in rd_kafka_poll()/flush() of whichever thread sends at the time:
 * the caller's while priming, the load thread afterwards. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque) {
    (void)rk;
    load_t *l = opaque;
    size_t i = (size_t)(uintptr_t)m->_private;
    if (i < l->cap) {
        l->sent[i].partition = m->err ? -1 : m->partition;
        l->sent[i].offset = m->err ? -1 : m->offset;
    }
}

static pn_err_t send_one(load_t *l, pn_buf_t *key, pn_buf_t *value) {
    if (l->n_sent >= l->cap)
        return pn_err_set(l->errstr, sizeof l->errstr, PN_ERR_INTERNAL,
                          "more commands than planned");
    int64_t now = pn_e2e_realtime_us();
    pn_err_t e = pn_e2e_gen_next(&l->gen, "lat", now / 1000, key, value);
    if (e)
        return pn_err_set(l->errstr, sizeof l->errstr, e, "cannot encode");
    size_t i = l->n_sent;
    l->sent[i] = (sent_t){pn_e2e_realtime_us(), -1, -1};
    e = pn_e2e_produce(l->producer, l->spec->commands_topic, key, value,
                       (void *)(uintptr_t)i, l->errstr, sizeof l->errstr);
    if (!e)
        l->n_sent++;
    return e;
}

/* The paced load: `rate` commands a second, sent in 1 ms steps. */
static void *load_thread(void *opaque) {
    load_t *l = opaque;
    const pn_e2e_latency_spec_t *spec = l->spec;
    pn_buf_t key, value;
    pn_buf_init(&key, 4096);
    pn_buf_init(&value, 1 << 20);
    double rate = (double)spec->rate;
    int64_t t0 = pn_e2e_realtime_us();
    int64_t dur = (int64_t)(spec->warmup_seconds + spec->seconds) * 1000000;
    l->paced_start_us = t0;
    l->measure_from_us = t0 + (int64_t)spec->warmup_seconds * 1000000;
    size_t base = l->paced_base = l->n_sent;
    pn_err_t e = PN_ERR_OK;
    for (int64_t now = t0; !e && now < t0 + dur; now = pn_e2e_realtime_us()) {
        size_t due = base + (size_t)((double)(now - t0) * rate / 1e6);
        while (!e && l->n_sent < due)
            e = send_one(l, &key, &value);
        rd_kafka_poll(l->producer, 0);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    l->paced_end_us = pn_e2e_realtime_us();
    if (!e && rd_kafka_flush(l->producer, 60000))
        e = pn_err_set(l->errstr, sizeof l->errstr, PN_ERR_KAFKA,
                       "latency load: flush timed out");
    pn_buf_free(&key);
    pn_buf_free(&value);
    l->err = e;
    __atomic_store_n(&l->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

typedef struct seen_list {
    seen_t *items;
    size_t n, cap;
} seen_list_t;

/* Reads outcomes until `want` arrived (want read at each step: the load
 * thread raises it) or timeout. */
static pn_err_t read_outcomes(rd_kafka_t *reader, seen_list_t *s,
                              const load_t *l, size_t want_fixed,
                              double timeout_s, char *err, size_t errsz) {
    double deadline = pn_mono_s() + timeout_s;
    for (;;) {
        bool load_done = l && __atomic_load_n(&l->done, __ATOMIC_ACQUIRE);
        size_t want = l ? (load_done ? l->n_sent : SIZE_MAX) : want_fixed;
        if (s->n >= want)
            return PN_ERR_OK;
        if (pn_mono_s() > deadline)
            return pn_err_set(err, errsz, PN_ERR_STATE,
                              "latency: %zu outcomes after %.0f s", s->n,
                              timeout_s);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(reader, 50);
        if (!m)
            continue;
        int64_t now = pn_e2e_realtime_us();
        int64_t p = -1, off = -1;
        if (!m->err && pn_kafka_header_int(m, PN_HEADER_SOURCE_PARTITION, &p) &&
            pn_kafka_header_int(m, PN_HEADER_SOURCE_OFFSET, &off)) {
            if (s->n == s->cap) {
                size_t cap = s->cap ? 2 * s->cap : 65536;
                seen_t *grown = realloc(s->items, cap * sizeof *grown);
                if (!grown) {
                    rd_kafka_message_destroy(m);
                    return pn_err_set(err, errsz, PN_ERR_NOMEM, "out of memory");
                }
                s->items = grown;
                s->cap = cap;
            }
            rd_kafka_timestamp_type_t tt;
            int64_t ts = rd_kafka_message_timestamp(m, &tt);
            s->items[s->n++] = (seen_t){(int32_t)p, off, now, ts};
        }
        rd_kafka_message_destroy(m);
    }
}

/* Command index by (partition, offset), from the delivery reports. */
typedef struct offset_index {
    size_t n_parts;
    int64_t **by_offset; /* [partition][offset] -> index into sent, or -1 */
    int64_t *max_off;
} offset_index_t;

static void index_free(offset_index_t *x) {
    for (size_t p = 0; x->by_offset && p < x->n_parts; p++)
        free(x->by_offset[p]);
    free(x->by_offset);
    free(x->max_off);
}

static pn_err_t index_build(const load_t *l, offset_index_t *x, char *err,
                            size_t errsz) {
    x->n_parts = (size_t)l->spec->partitions;
    x->by_offset = calloc(x->n_parts, sizeof *x->by_offset);
    x->max_off = calloc(x->n_parts, sizeof *x->max_off);
    if (!x->by_offset || !x->max_off)
        return pn_err_set(err, errsz, PN_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < l->n_sent; i++) {
        const sent_t *c = &l->sent[i];
        if (c->partition >= 0 && (size_t)c->partition < x->n_parts &&
            c->offset > x->max_off[c->partition])
            x->max_off[c->partition] = c->offset;
    }
    for (size_t p = 0; p < x->n_parts; p++) {
        size_t len = (size_t)x->max_off[p] + 1;
        if (!(x->by_offset[p] = malloc(len * sizeof **x->by_offset)))
            return pn_err_set(err, errsz, PN_ERR_NOMEM, "out of memory");
        for (size_t k = 0; k < len; k++)
            x->by_offset[p][k] = -1;
    }
    for (size_t i = 0; i < l->n_sent; i++) {
        const sent_t *c = &l->sent[i];
        if (c->partition >= 0 && (size_t)c->partition < x->n_parts)
            x->by_offset[c->partition][c->offset] = (int64_t)i;
    }
    return PN_ERR_OK;
}

static int64_t index_find(const offset_index_t *x, const seen_t *o) {
    if (o->partition < 0 || (size_t)o->partition >= x->n_parts ||
        o->offset < 0 || o->offset > x->max_off[o->partition])
        return -1;
    return x->by_offset[o->partition][o->offset];
}

/* How late the load thread sent its measured commands against its
 * schedule (a starved generator would hide latency, so it is reported). */
static double send_lag_p99(const load_t *l, double *scratch) {
    size_t n = 0;
    for (size_t i = l->paced_base; i < l->n_sent; i++) {
        double due = (double)l->paced_start_us +
                     (double)(i - l->paced_base + 1) * 1e6 / (double)l->spec->rate;
        if (l->sent[i].send_us >= l->measure_from_us)
            scratch[n++] = ((double)l->sent[i].send_us - due) / 1000.0;
    }
    return pn_bench_percentile(scratch, n, 0.99);
}

/* Matches outputs to commands; one sample per measured command. */
static pn_err_t compute_latency(const load_t *l, const seen_list_t *s,
                                pn_e2e_latency_t *lr, char *err,
                                size_t errsz) {
    offset_index_t x = {0};
    size_t cap = (s->n > l->n_sent ? s->n : l->n_sent) + 1;
    double *values = malloc(cap * sizeof *values);
    double *exec = malloc(cap * sizeof *exec);
    double *commit = malloc(cap * sizeof *commit);
    uint8_t *answered = calloc(l->n_sent + 1, 1);
    pn_err_t e = !values || !exec || !commit || !answered
                     ? pn_err_set(err, errsz, PN_ERR_NOMEM, "out of memory")
                     : index_build(l, &x, err, errsz);
    size_t n = 0;
    double sum = 0;
    for (size_t k = 0; !e && k < s->n; k++) {
        const seen_t *o = &s->items[k];
        int64_t i = index_find(&x, o);
        if (i < 0 || answered[i] || l->sent[i].send_us < l->measure_from_us)
            continue;
        answered[i] = 1;
        values[n] = (double)(o->visible_us - l->sent[i].send_us) / 1000.0;
        exec[n] = (double)(o->create_ms * 1000 - l->sent[i].send_us) / 1000.0;
        commit[n] = (double)(o->visible_us - o->create_ms * 1000) / 1000.0;
        sum += values[n++];
    }
    uint64_t measured = 0;
    for (size_t i = 0; !e && i < l->n_sent; i++)
        measured += l->sent[i].send_us >= l->measure_from_us;
    if (!e) {
        double secs = (double)(l->paced_end_us - l->measure_from_us) / 1e6;
        *lr = (pn_e2e_latency_t){
            .achieved_rate = secs > 0 ? (double)measured / secs : 0,
            .samples = n,
            .missing = measured - n,
            .p50 = pn_bench_percentile(values, n, 0.50),
            .p99 = pn_bench_percentile(values, n, 0.99),
            .p999 = pn_bench_percentile(values, n, 0.999),
            .max = n ? values[n - 1] : 0,
            .mean = n ? sum / (double)n : 0,
            .exec_p50 = pn_bench_percentile(exec, n, 0.50),
            .exec_p99 = pn_bench_percentile(exec, n, 0.99),
            .commit_p50 = pn_bench_percentile(commit, n, 0.50),
            .commit_p99 = pn_bench_percentile(commit, n, 0.99),
            .send_lag_p99 = send_lag_p99(l, exec),
            .values = values};
        values = NULL;
    }
    index_free(&x);
    free(values);
    free(exec);
    free(commit);
    free(answered);
    return e;
}

static pn_err_t load_init(const pn_e2e_latency_spec_t *spec, load_t *l,
                          char *err, size_t errsz) {
    memset(l, 0, sizeof *l);
    l->spec = spec;
    l->cap = (size_t)spec->prime + 1000 +
             (size_t)((double)spec->rate *
                      (double)(spec->warmup_seconds + spec->seconds) * 1.05);
    l->sent = calloc(l->cap, sizeof *l->sent);
    if (!l->sent)
        return pn_err_set(err, errsz, PN_ERR_NOMEM, "out of memory");
    pn_err_t e = pn_e2e_gen_init(&l->gen, spec->seed, spec->streams, err,
                                 errsz);
    if (e)
        return e;
    return pn_e2e_producer_new(spec->bootstrap, (int)spec->linger_ms, false,
                               on_delivery, l, &l->producer, err, errsz);
}

static void load_free(load_t *l) {
    if (l->producer)
        rd_kafka_destroy(l->producer);
    pn_e2e_gen_free(&l->gen);
    free(l->sent);
}

/* The first spec->prime commands at full speed, waited for: they prove the
 * process under test runs, and (the workload's first pass being the stock
 * of every stream) leave a worker warm, holding state for all streams. */
static pn_err_t prime(load_t *l, rd_kafka_t *reader, seen_list_t *s,
                      char *err, size_t errsz) {
    const pn_e2e_latency_spec_t *spec = l->spec;
    pn_buf_t key, value;
    pn_buf_init(&key, 4096);
    pn_buf_init(&value, 1 << 20);
    pn_err_t e = PN_ERR_OK;
    if (spec->progress)
        fprintf(stderr, "%s: %" PRIu64 " commands first, at full speed\n",
                spec->what, spec->prime);
    for (uint64_t i = 0; i < spec->prime && !e; i++) {
        e = send_one(l, &key, &value);
        if ((i & 1023) == 0)
            rd_kafka_poll(l->producer, 0);
    }
    pn_buf_free(&key);
    pn_buf_free(&value);
    if (e)
        return pn_err_set(err, errsz, e, "%s", l->errstr);
    if (rd_kafka_flush(l->producer, 120000))
        return pn_err_set(err, errsz, PN_ERR_KAFKA, "prime: flush timed out");
    return read_outcomes(reader, s, NULL, (size_t)spec->prime,
                         spec->timeout_s, err, errsz);
}


pn_err_t pn_e2e_latency_run(const pn_e2e_latency_spec_t *spec,
                            pn_e2e_latency_t *out, char *err, size_t errsz) {
    memset(out, 0, sizeof *out);
    load_t l;
    seen_list_t seen = {0};
    rd_kafka_t *reader = NULL;
    pn_err_t e = load_init(spec, &l, err, errsz);
    if (!e)
        e = pn_e2e_reader_new(spec->bootstrap, spec->output_topic,
                              spec->partitions, &reader, err, errsz);
    if (!e)
        e = prime(&l, reader, &seen, err, errsz);
    pthread_t th;
    bool started = false;
    if (!e) {
        if (spec->progress)
            fprintf(stderr, "%s: %" PRIu64 " commands/s for %" PRIu64
                            " s after %" PRIu64 " s of warm-up\n",
                    spec->what, spec->rate, spec->seconds,
                    spec->warmup_seconds);
        if (spec->on_start)
            spec->on_start(spec->opaque);
        started = pthread_create(&th, NULL, load_thread, &l) == 0;
        if (!started)
            e = pn_err_set(err, errsz, PN_ERR_INTERNAL, "pthread_create failed");
    }
    if (!e)
        e = read_outcomes(reader, &seen, &l, 0,
                          (double)(spec->warmup_seconds + spec->seconds) +
                              spec->timeout_s,
                          err, errsz);
    if (started) {
        pthread_join(th, NULL);
        if (spec->on_end)
            spec->on_end(spec->opaque);
        if (!e && l.err)
            e = pn_err_set(err, errsz, l.err, "%s", l.errstr);
    }
    if (!e && spec->pid > 0 && !pn_e2e_alive(spec->pid))
        e = pn_err_set(err, errsz, PN_ERR_STATE,
                       "%s: the process under test exited", spec->what);
    if (!e)
        e = compute_latency(&l, &seen, out, err, errsz);
    if (reader) {
        rd_kafka_consumer_close(reader);
        rd_kafka_destroy(reader);
    }
    load_free(&l);
    free(seen.items);
    return e;
}
