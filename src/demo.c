/*
 * The demo: a mock cluster, workers on threads, the order flow, then the
 * topics read back (see panther/demo.h).
 *
 * Order of a run: the flow built in memory; mock cluster and topics;
 * workers created, then started together (the mock group coordinator waits
 * 3 s for members before its first assignment); nothing produced until the
 * group has settled; the flow produced while the workers answer it;
 * workers stopped together once their counters cover every record; then
 * the events and outcomes topics are folded and counted, the audit runs,
 * and both are compared with the flow's prediction.
 */
#include "panther/demo.h"

#include <ftw.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "demo_flow.h"
#include "panther/codec.h"
#include "panther/kafka.h"
#include "topic_reader.h"
#include "clock.h"

#define T_COMMANDS PN_DEMO_TOPIC_COMMANDS
#define T_EVENTS PN_DEMO_TOPIC_EVENTS
#define T_OUTCOMES PN_DEMO_TOPIC_OUTCOMES
#define T_DLT PN_DEMO_TOPIC_DEAD_LETTERS
#define GROUP PN_DEMO_GROUP
#define READ_TIMEOUT_MS 60000
#define N_KAFKA 4 /* properties in demo_t.kafka */
/* No rebalance for this long (several heartbeats) and the group is
 * taken as settled. */
#define GROUP_SETTLE_S 0.8

typedef struct demo_worker {
    pn_worker_t *worker;
    pthread_t thread;
    bool started;
    atomic_bool exited;
    pn_err_t err;
    char errstr[512];
    char instance[32];
    char store[4200];
} demo_worker_t;

typedef struct demo {
    pn_demo_options_t o; /* defaults filled in */
    pn_demo_result_t *result;
    char *dir;
    bool own_dir;
    rd_kafka_t *host; /* hosts the mock cluster */
    rd_kafka_mock_cluster_t *mcluster;
    char bootstrap[1024];
    pn_kafka_prop_t kafka[N_KAFKA]; /* for every client of the demo */
    pn_demo_flow_t flow;
    demo_worker_t *workers;
    rd_kafka_t *producer;
    uint64_t delivered;
    rd_kafka_resp_err_t delivery_err;
    double started, last_progress;
    uint64_t last_answered; /* kept for progress once the workers are gone */
} demo_t;

static bool interrupted(const demo_t *d) {
    return d->o.interrupted && *d->o.interrupted;
}

/* --- options -------------------------------------------------------------- */

static pn_demo_options_t with_defaults(const pn_demo_options_t *in) {
    pn_demo_options_t o = *in;
#define DEFAULT_(field, value)                                               \
    if (!o.field)                                                            \
        o.field = (value);
    DEFAULT_(commands, PN_DEMO_DEFAULT_COMMANDS)
    DEFAULT_(skus, PN_DEMO_DEFAULT_SKUS)
    DEFAULT_(nodes, PN_DEMO_DEFAULT_NODES)
    DEFAULT_(workers, PN_DEMO_DEFAULT_WORKERS)
    DEFAULT_(partitions, PN_DEMO_DEFAULT_PARTITIONS)
    DEFAULT_(timeout_ms, 120000)
#undef DEFAULT_
    if (!o.seed_set)
        o.seed = PN_DEMO_DEFAULT_SEED;
    return o;
}

static pn_err_t check_range(const char *name, int value, int max, char *errstr,
                            size_t errstr_size) {
    if (value >= 1 && value <= max)
        return PN_ERR_OK;
    return pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                      "%s must be between 1 and %d (got %d)", name, max, value);
}

pn_err_t pn_demo_options_check(const pn_demo_options_t *in, char *errstr,
                               size_t errstr_size) {
    pn_demo_options_t o = with_defaults(in);
    pn_err_t err = check_range("commands", o.commands, PN_DEMO_MAX_COMMANDS,
                               errstr, errstr_size);
    if (!err)
        err = check_range("skus", o.skus, PN_DEMO_MAX_SKUS, errstr, errstr_size);
    if (!err)
        err = check_range("nodes", o.nodes, PN_DEMO_MAX_NODES, errstr,
                          errstr_size);
    if (!err)
        err = check_range("workers", o.workers, PN_DEMO_MAX_WORKERS, errstr,
                          errstr_size);
    if (!err)
        err = check_range("partitions", o.partitions, PN_DEMO_MAX_PARTITIONS,
                          errstr, errstr_size);
    if (!err && o.timeout_ms < 0)
        err = pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                         "timeout must not be negative");
    if (!err && (long)o.skus * o.nodes > PN_DEMO_MAX_STREAMS)
        err = pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                         "skus x nodes = %ld streams, more than the demo's "
                         "limit of %d",
                         (long)o.skus * o.nodes, PN_DEMO_MAX_STREAMS);
    return err;
}

/* --- progress ------------------------------------------------------------- */

static uint64_t answered(const demo_t *d, uint64_t *commands,
                         uint64_t *dead_letters) {
    *commands = *dead_letters = 0;
    for (int i = 0; i < d->o.workers; i++) {
        if (!d->workers[i].worker)
            continue;
        pn_worker_stats_t s;
        pn_worker_get_stats(d->workers[i].worker, &s);
        *commands += s.commands;
        *dead_letters += s.dead_letters;
    }
    return *commands + *dead_letters;
}

/* Assignments plus revocations seen by all workers so far. */
static uint64_t rebalances(const demo_t *d) {
    uint64_t n = 0;
    for (int i = 0; i < d->o.workers; i++) {
        pn_worker_stats_t s;
        pn_worker_get_stats(d->workers[i].worker, &s);
        n += s.rebalances;
    }
    return n;
}

static void progress(demo_t *d, const char *phase, bool force) {
    double now = pn_mono_s();
    if (!d->o.progress || (!force && now - d->last_progress < 1.0))
        return;
    d->last_progress = now;
    uint64_t c, dl;
    if (d->workers && d->workers[0].worker)
        d->last_answered = answered(d, &c, &dl);
    pn_demo_progress_t p = {.phase = phase,
                            .records = d->flow.n_records,
                            .produced = d->delivered,
                            .answered = d->last_answered,
                            .seconds = now - d->started};
    d->o.progress(d->o.progress_opaque, &p);
}

/* --- the cluster ---------------------------------------------------------- */

static pn_err_t start_cluster(demo_t *d, char *errstr, size_t errstr_size) {
    rd_kafka_conf_t *conf;
    pn_err_t err = pn_kafka_conf_new(NULL, 0, NULL, 0, NULL, 0, &conf, errstr,
                                     errstr_size);
    if (err)
        return err;
    char why[512];
    d->host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!d->host) {
        rd_kafka_conf_destroy(conf);
        return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                          "cannot create the mock cluster's client: %s", why);
    }
    d->mcluster = rd_kafka_mock_cluster_new(d->host, PN_DEMO_MOCK_BROKERS);
    if (!d->mcluster)
        return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                          "cannot start librdkafka's mock cluster");
    snprintf(d->bootstrap, sizeof d->bootstrap, "%s",
             rd_kafka_mock_cluster_bootstraps(d->mcluster));
    d->kafka[0] = (pn_kafka_prop_t){"bootstrap.servers", d->bootstrap};
    /* The mock broker holds a fetch of an empty partition for the whole
     * wait, and readers stop at the end of every partition: without this
     * each restore and each read of a topic takes a second. Short
     * heartbeats let a rebalance show quickly, and a short session makes
     * the mock coordinator's second rebalance short (it waits for the
     * session timeout less a second; see wait_for_group). All are consumer
     * settings: producers log, at level warn, that they ignore them. */
    d->kafka[1] = (pn_kafka_prop_t){"fetch.wait.max.ms", "20"};
    d->kafka[2] = (pn_kafka_prop_t){"heartbeat.interval.ms", "200"};
    d->kafka[3] = (pn_kafka_prop_t){"session.timeout.ms", "4000"};
    const char *topics[] = {T_COMMANDS, T_EVENTS, T_OUTCOMES, T_DLT};
    for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++) {
        /* The mock thread of librdkafka 2.0.2 can miss the wake-up of a
         * request sent right after it answered the previous one, and then
         * sleeps a second; a pause between requests avoids that. */
        nanosleep(&(struct timespec){0, 2000000}, NULL);
        rd_kafka_resp_err_t rerr = rd_kafka_mock_topic_create(
            d->mcluster, topics[i], d->o.partitions, PN_DEMO_MOCK_BROKERS);
        if (rerr)
            return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                              "creating topic '%s' on the mock cluster: %s",
                              topics[i], rd_kafka_err2str(rerr));
    }
    return PN_ERR_OK;
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static pn_err_t make_dir(demo_t *d, char *errstr, size_t errstr_size) {
    if (d->o.dir) {
        d->dir = strdup(d->o.dir);
        return d->dir ? PN_ERR_OK : PN_ERR_NOMEM;
    }
    const char *base = getenv("TMPDIR");
    char templ[4096];
    snprintf(templ, sizeof templ, "%s/panther-demo-XXXXXX",
             base && *base ? base : "/tmp");
    if (!mkdtemp(templ))
        return pn_err_set(errstr, errstr_size, PN_ERR_IO,
                          "cannot create a directory like %s", templ);
    d->own_dir = true;
    d->dir = strdup(templ);
    return d->dir ? PN_ERR_OK : PN_ERR_NOMEM;
}

/* --- workers -------------------------------------------------------------- */

static void *worker_main(void *arg) {
    demo_worker_t *dw = arg;
    dw->err = pn_worker_run(dw->worker, dw->errstr, sizeof dw->errstr);
    atomic_store(&dw->exited, true);
    return NULL;
}

static pn_err_t start_workers(demo_t *d, char *errstr, size_t errstr_size) {
    d->workers = calloc((size_t)d->o.workers, sizeof *d->workers);
    if (!d->workers)
        return PN_ERR_NOMEM;
    for (int i = 0; i < d->o.workers; i++) {
        demo_worker_t *dw = &d->workers[i];
        snprintf(dw->instance, sizeof dw->instance, "demo-%d", i + 1);
        snprintf(dw->store, sizeof dw->store, "%s/%s", d->dir, dw->instance);
        pn_worker_options_t wo = {
            .commands_topic = T_COMMANDS,
            .events_topic = T_EVENTS,
            .outcomes_topic = T_OUTCOMES,
            .dead_letter_topic = T_DLT,
            .group_id = GROUP,
            .instance_id = dw->instance,
            .exactly_once = !d->o.at_least_once,
            .commit_interval_ms = 100,
            .batch_max_commands = 5000,
            .kafka = d->kafka,
            .n_kafka = N_KAFKA,
            .store = {.path = dw->store},
        };
        pn_err_t err = pn_worker_new(&wo, &dw->worker, errstr, errstr_size);
        if (err)
            return err;
    }
    /* Started together, so that all join the group's first generation. */
    for (int i = 0; i < d->o.workers; i++) {
        demo_worker_t *dw = &d->workers[i];
        if (pthread_create(&dw->thread, NULL, worker_main, dw))
            return pn_err_set(errstr, errstr_size, PN_ERR_INTERNAL,
                              "cannot start a worker thread");
        dw->started = true;
    }
    return PN_ERR_OK;
}

/* Stops every worker first, then waits: no worker may take over the
 * partitions of one that leaves (the mock keeps no transactional offsets
 * to resume from). Returns the first worker's error. */
static pn_err_t stop_workers(demo_t *d, char *errstr, size_t errstr_size) {
    pn_err_t first = PN_ERR_OK;
    if (!d->workers)
        return first;
    for (int i = 0; i < d->o.workers; i++)
        if (d->workers[i].worker)
            pn_worker_stop(d->workers[i].worker);
    pn_worker_stats_t *t = &d->result->worker_totals;
    uint64_t c, dl;
    if (d->workers[0].worker)
        d->last_answered = answered(d, &c, &dl);
    for (int i = 0; i < d->o.workers; i++) {
        demo_worker_t *dw = &d->workers[i];
        if (dw->started)
            pthread_join(dw->thread, NULL);
        dw->started = false;
        if (dw->worker) {
            pn_worker_stats_t s;
            pn_worker_get_stats(dw->worker, &s);
            t->commands += s.commands;
            t->events += s.events;
            t->outcomes += s.outcomes;
            t->dead_letters += s.dead_letters;
            t->forwarded += s.forwarded;
            t->batches += s.batches;
            t->commits += s.commits;
            t->aborts += s.aborts;
            t->producer_rebuilds += s.producer_rebuilds;
            t->restored_events += s.restored_events;
            t->rebalances += s.rebalances;
        }
        if (dw->err && !first) {
            first = pn_err_set(errstr, errstr_size, dw->err, "worker %s: %s",
                               dw->instance, dw->errstr);
        }
        pn_worker_free(dw->worker);
        dw->worker = NULL;
    }
    return first;
}

/* --- producing and waiting ------------------------------------------------ */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque) {
    (void)rk;
    demo_t *d = opaque;
    if (m->err && !d->delivery_err)
        d->delivery_err = m->err;
    else if (!m->err)
        d->delivered++;
}

static pn_err_t producer_new(demo_t *d, char *errstr, size_t errstr_size) {
    const pn_kafka_prop_t fixed[] = {
        {"bootstrap.servers", d->bootstrap},
        {"enable.idempotence", "true"}, /* per-stream order, no repeats */
        {"partitioner", "murmur2_random"},
        {"linger.ms", "5"},
    };
    rd_kafka_conf_t *conf;
    pn_err_t err = pn_kafka_conf_new(NULL, 0, NULL, 0, fixed,
                                     sizeof fixed / sizeof fixed[0], &conf,
                                     errstr, errstr_size);
    if (err)
        return err;
    rd_kafka_conf_set_opaque(conf, d);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    char why[512];
    d->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!d->producer) {
        rd_kafka_conf_destroy(conf);
        return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                          "cannot create the producer: %s", why);
    }
    return PN_ERR_OK;
}

/* Queues records until librdkafka's queue is full; returns how many. */
static pn_err_t produce_some(demo_t *d, size_t *next, char *errstr,
                             size_t errstr_size) {
    const pn_demo_flow_t *f = &d->flow;
    for (; *next < f->n_records; (*next)++) {
        const pn_demo_record_t *r = &f->records[*next];
        /* The flow outlives the producer: no copies. */
        rd_kafka_resp_err_t rerr = rd_kafka_producev(
            d->producer, RD_KAFKA_V_TOPIC(T_COMMANDS),
            RD_KAFKA_V_PARTITION(r->partition < 0 ? RD_KAFKA_PARTITION_UA
                                                  : r->partition),
            RD_KAFKA_V_KEY(f->bytes.data + r->key_off, r->key_len),
            RD_KAFKA_V_VALUE(f->bytes.data + r->value_off, r->value_len),
            RD_KAFKA_V_MSGFLAGS(0), RD_KAFKA_V_END);
        if (rerr == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return PN_ERR_OK;
        if (rerr)
            return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                              "producing to '%s': %s", T_COMMANDS,
                              rd_kafka_err2str(rerr));
    }
    return PN_ERR_OK;
}

static pn_err_t check_running(demo_t *d, double deadline, char *errstr,
                              size_t errstr_size) {
    if (interrupted(d))
        return pn_err_set(errstr, errstr_size, PN_ERR_STATE, "interrupted");
    if (d->delivery_err)
        return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                          "a command was not delivered: %s",
                          rd_kafka_err2str(d->delivery_err));
    for (int i = 0; i < d->o.workers; i++)
        if (atomic_load(&d->workers[i].exited))
            return pn_err_set(errstr, errstr_size, PN_ERR_INTERNAL,
                              "worker %s stopped unexpectedly",
                              d->workers[i].instance);
    if (pn_mono_s() > deadline) {
        uint64_t c, dl;
        answered(d, &c, &dl);
        return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                          "timed out after %d ms: %llu of %zu records "
                          "produced, %llu answered",
                          d->o.timeout_ms, (unsigned long long)d->delivered,
                          d->flow.n_records, (unsigned long long)(c + dl));
    }
    return PN_ERR_OK;
}

/* Waits until every worker holds an assignment and no rebalance has been
 * seen for a while. The mock coordinator of librdkafka 2.0.2 sometimes
 * fails one member's SyncGroup while another already got partitions, and
 * then rebalances again: commands run in that first generation would run
 * again in the next, since the mock keeps no transactional offsets. So
 * nothing is produced before the group has settled. */
static pn_err_t wait_for_group(demo_t *d, char *errstr, size_t errstr_size) {
    double t0 = pn_mono_s(), deadline = t0 + d->o.timeout_ms / 1000.0;
    double settled_since = t0;
    uint64_t last = UINT64_MAX;
    for (;;) {
        bool all_assigned = true;
        uint64_t callbacks = 0;
        for (int i = 0; i < d->o.workers; i++) {
            pn_worker_stats_t s;
            pn_worker_get_stats(d->workers[i].worker, &s);
            /* Assignments and revocations alternate, from an assignment. */
            all_assigned &= s.rebalances % 2 == 1;
            callbacks += s.rebalances;
        }
        double now = pn_mono_s();
        if (!all_assigned || callbacks != last) {
            last = callbacks;
            settled_since = now;
        } else if (now - settled_since >= GROUP_SETTLE_S) {
            d->result->join_seconds = now - t0;
            return PN_ERR_OK;
        }
        progress(d, "joining", false);
        pn_err_t err = check_running(d, deadline, errstr, errstr_size);
        if (err)
            return err;
        rd_kafka_poll(d->producer, 20);
    }
}

/* Produces the flow and waits until every record has been answered: an
 * outcome for each command, a dead letter for each undecodable record. */
static pn_err_t run_flow(demo_t *d, char *errstr, size_t errstr_size) {
    double t0 = pn_mono_s(), deadline = t0 + d->o.timeout_ms / 1000.0;
    uint64_t settled = rebalances(d);
    size_t next = 0;
    pn_err_t err = PN_ERR_OK;
    while (!err) {
        err = produce_some(d, &next, errstr, errstr_size);
        rd_kafka_poll(d->producer, next < d->flow.n_records ? 10 : 20);
        progress(d, "running", false);
        uint64_t commands, dead_letters;
        answered(d, &commands, &dead_letters);
        if (!err && next == d->flow.n_records &&
            d->delivered == d->flow.n_records &&
            commands >= d->flow.sent.commands &&
            dead_letters >= d->flow.sent.undecodable)
            break;
        if (!err)
            err = check_running(d, deadline, errstr, errstr_size);
    }
    d->result->answer_seconds = pn_mono_s() - t0;
    d->result->rebalances_while_running = rebalances(d) - settled;
    return err;
}

/* --- reading the topics back ---------------------------------------------- */

typedef struct reader {
    pn_codec_t *codec;
    pn_map_t streams; /* stream key -> pn_state_t folded from events */
    pn_demo_counts_t *counts;
    uint64_t unfoldable; /* events the audit will report as well */
    const char *topic;   /* being read */
    bool seen[PN_DEMO_MAX_PARTITIONS];
    int32_t truncated; /* a partition that does not start at 0, or -1 */
} reader_t;

/* The mock broker drops the oldest records of a partition past 5 MiB; the
 * limits of the options keep below that, and this makes sure. */
static void check_start(reader_t *r, const rd_kafka_message_t *m) {
    if (m->partition < 0 || m->partition >= PN_DEMO_MAX_PARTITIONS ||
        r->seen[m->partition])
        return;
    r->seen[m->partition] = true;
    if (m->offset != 0 && r->truncated < 0)
        r->truncated = m->partition;
}

static pn_err_t on_event(void *opaque, const rd_kafka_message_t *m) {
    reader_t *r = opaque;
    check_start(r, m);
    pn_event_t ev;
    if (pn_codec_decode_event(r->codec, m->payload, m->len, &ev, NULL, 0)) {
        r->unfoldable++;
        return PN_ERR_OK;
    }
    r->counts->events++;
    char key[PN_STREAM_KEY_MAX];
    size_t len = pn_stream_key(ev.sku_id, ev.node_id, key, sizeof key);
    pn_map_entry_t *e = len ? pn_map_find(&r->streams, key, len) : NULL;
    pn_err_t err = PN_ERR_OK;
    if (len && !e) {
        pn_state_t *s = malloc(sizeof *s);
        if (!s)
            err = PN_ERR_NOMEM;
        else
            pn_state_init(s);
        if (!err && (err = pn_map_insert(&r->streams, key, len, s, &e)))
            free(s);
    }
    if (!err && (!e || pn_domain_evolve(e->value, &ev) != PN_ERR_OK))
        r->unfoldable++;
    pn_event_release(&ev);
    return err;
}

static pn_err_t on_outcome(void *opaque, const rd_kafka_message_t *m) {
    reader_t *r = opaque;
    check_start(r, m);
    pn_outcome_record_t o;
    if (pn_codec_decode_outcome(r->codec, m->payload, m->len, &o, NULL, 0))
        return PN_ERR_OK; /* the audit reports it */
    pn_demo_count_outcome(r->counts, &o.outcome);
    pn_outcome_record_release(&o);
    return PN_ERR_OK;
}

static void collect_stream(pn_map_entry_t *e, void *opaque) {
    pn_demo_result_t *res = opaque;
    const pn_state_t *s = e->value;
    const char *bar = memchr(e->key, '|', e->key_len);
    pn_demo_stream_t *out = &res->streams[res->n_streams];
    if (!bar)
        return;
    out->sku_id = strndup(e->key, (size_t)(bar - e->key));
    out->node_id = strdup(bar + 1);
    if (!out->sku_id || !out->node_id) {
        free(out->sku_id);
        free(out->node_id);
        return;
    }
    out->version = s->version;
    out->on_hand = s->on_hand;
    out->reserved = s->reserved;
    out->available = pn_state_available(s);
    out->open_orders = s->n_reservations;
    res->n_streams++;
}

static int cmp_stream(const void *a, const void *b) {
    const pn_demo_stream_t *x = a, *y = b;
    int c = strcmp(x->sku_id, y->sku_id);
    return c ? c : strcmp(x->node_id, y->node_id);
}

typedef struct compare {
    const pn_map_t *folded;
    const pn_demo_flow_t *flow;
    uint64_t mismatches;
} compare_t;

static void compare_folded(pn_map_entry_t *e, void *opaque) {
    compare_t *c = opaque;
    const pn_state_t *want = pn_demo_flow_state(c->flow, e->key, e->key_len);
    if (!want || !pn_state_eq(want, e->value))
        c->mismatches++;
}

static void compare_predicted(pn_map_entry_t *e, void *opaque) {
    compare_t *c = opaque;
    const pn_state_t *s = e->value;
    if (s->version > 0 && !pn_map_find(c->folded, e->key, e->key_len))
        c->mismatches++;
}

static uint64_t count_differences(const pn_demo_counts_t *a,
                                  const pn_demo_counts_t *b) {
    uint64_t n = (a->duplicates != b->duplicates) + (a->events != b->events);
    for (int t = 0; t < PN_CMD__COUNT; t++)
        n += (a->accepted[t] != b->accepted[t]) +
             (a->rejected[t] != b->rejected[t]);
    for (int r = 0; r < PN_REASON__COUNT; r++)
        n += a->reasons[r] != b->reasons[r];
    return n;
}

static void free_state(void *value) {
    pn_state_clear(value);
    free(value);
}

/* Folds the events topic per stream and counts the outcomes topic. */
static pn_err_t read_back(demo_t *d, char *errstr, size_t errstr_size) {
    pn_demo_result_t *res = d->result;
    reader_t r = {.counts = &res->counts, .truncated = -1};
    pn_map_init(&r.streams);
    pn_codec_config_t cc = {0};
    pn_err_t err = pn_codec_new(&cc, &r.codec, errstr, errstr_size);
    const struct {
        const char *topic;
        pn_topic_record_fn fn;
    } passes[] = {{T_EVENTS, on_event}, {T_OUTCOMES, on_outcome}};
    for (size_t i = 0; !err && i < 2; i++) {
        r.topic = passes[i].topic;
        memset(r.seen, 0, sizeof r.seen);
        err = pn_topic_read_all(d->kafka, N_KAFKA, r.topic, passes[i].fn, &r,
                                READ_TIMEOUT_MS, errstr, errstr_size);
        if (!err && r.truncated >= 0)
            err = pn_err_set(errstr, errstr_size, PN_ERR_STATE,
                             "the mock cluster dropped the oldest records of "
                             "%s partition %d (it keeps 5 MiB per partition); "
                             "run with fewer commands or more partitions",
                             r.topic, r.truncated);
    }
    if (!err && r.streams.count) {
        res->streams = calloc(r.streams.count, sizeof *res->streams);
        if (!res->streams)
            err = PN_ERR_NOMEM;
    }
    if (!err) {
        pn_map_foreach(&r.streams, collect_stream, res);
        if (res->n_streams)
            qsort(res->streams, res->n_streams, sizeof *res->streams,
                  cmp_stream);
        compare_t c = {.folded = &r.streams, .flow = &d->flow};
        pn_map_foreach(&r.streams, compare_folded, &c);
        pn_map_foreach(&d->flow.streams, compare_predicted, &c);
        res->mismatches = c.mismatches + r.unfoldable +
                          (res->n_streams != r.streams.count) +
                          count_differences(&res->counts, &res->expected);
    }
    pn_map_free(&r.streams, free_state);
    pn_codec_free(r.codec);
    return err;
}

static pn_err_t audit(demo_t *d, char *errstr, size_t errstr_size) {
    /* The workers are stopped and have answered everything: no waiting on
     * the group (whose offsets the mock does not keep under transactions). */
    pn_audit_options_t ao = {.commands_topic = T_COMMANDS,
                             .events_topic = T_EVENTS,
                             .outcomes_topic = T_OUTCOMES,
                             .dead_letter_topic = T_DLT,
                             .kafka = d->kafka,
                             .n_kafka = N_KAFKA};
    pn_err_t err = pn_audit_run(&ao, &d->result->audit, errstr, errstr_size);
    d->result->audited = true;
    return err;
}

/* --- the run -------------------------------------------------------------- */

static pn_err_t run(demo_t *d, char *errstr, size_t errstr_size) {
    pn_demo_flow_options_t fo = {
        .commands = d->o.commands,
        .skus = d->o.skus,
        .nodes = d->o.nodes,
        .partitions = d->o.partitions,
        .seed = d->o.seed,
        /* The flow's command time ends about now, one record a second. */
        .start_ms = (int64_t)time(NULL) * 1000 - (int64_t)d->o.commands * 1000,
    };
    pn_err_t err = pn_demo_flow_build(&fo, &d->flow, errstr, errstr_size);
    d->result->sent = d->flow.sent;
    d->result->expected = d->flow.expected;
    if (!err)
        err = make_dir(d, errstr, errstr_size);
    if (!err)
        err = start_cluster(d, errstr, errstr_size);
    if (!err)
        err = producer_new(d, errstr, errstr_size);
    if (!err)
        err = start_workers(d, errstr, errstr_size);
    if (!err)
        err = wait_for_group(d, errstr, errstr_size);
    if (!err)
        err = run_flow(d, errstr, errstr_size);
    progress(d, "stopping", true);
    char why[512] = "";
    pn_err_t stop_err = stop_workers(d, why, sizeof why);
    if (!err && stop_err)
        err = pn_err_set(errstr, errstr_size, stop_err, "%s", why);
    if (!err) {
        progress(d, "auditing", true);
        err = read_back(d, errstr, errstr_size);
    }
    if (!err)
        err = audit(d, errstr, errstr_size);
    return err;
}

static void cleanup(demo_t *d) {
    /* Clients before the cluster they talk to. */
    if (d->producer) {
        rd_kafka_flush(d->producer, 5000);
        rd_kafka_destroy(d->producer);
    }
    char ignored[16];
    pn_err_t err = stop_workers(d, ignored, sizeof ignored);
    (void)err;
    free(d->workers);
    if (d->mcluster)
        rd_kafka_mock_cluster_destroy(d->mcluster);
    if (d->host)
        rd_kafka_destroy(d->host);
    if (d->own_dir && d->dir)
        nftw(d->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(d->dir);
    pn_demo_flow_free(&d->flow);
}

pn_err_t pn_demo_run(const pn_demo_options_t *opts, pn_demo_result_t *res,
                     char *errstr, size_t errstr_size) {
    memset(res, 0, sizeof *res);
    pn_err_t err = pn_demo_options_check(opts, errstr, errstr_size);
    if (err)
        return err;
    demo_t d = {.o = with_defaults(opts), .result = res, .started = pn_mono_s()};
    res->exactly_once = !d.o.at_least_once;
    res->workers = d.o.workers;
    res->partitions = d.o.partitions;
    res->skus = d.o.skus;
    res->nodes = d.o.nodes;
    res->seed = d.o.seed;
    progress(&d, "starting", true);
    err = run(&d, errstr, errstr_size);
    if (err == PN_ERR_NOMEM)
        pn_err_set(errstr, errstr_size, err, "out of memory");
    cleanup(&d);
    res->seconds = pn_mono_s() - d.started;
    return err;
}

bool pn_demo_passed(const pn_demo_result_t *res) {
    return res->audited && res->audit.violations == 0 && res->mismatches == 0;
}

void pn_demo_result_free(pn_demo_result_t *res) {
    if (!res)
        return;
    for (size_t i = 0; i < res->n_streams; i++) {
        free(res->streams[i].sku_id);
        free(res->streams[i].node_id);
    }
    free(res->streams);
    if (res->audited)
        pn_audit_report_free(&res->audit);
    memset(res, 0, sizeof *res);
}
