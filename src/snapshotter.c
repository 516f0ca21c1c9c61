/*
 * The snapshotter's Kafka side and loop: a consumer of the events topic in
 * its own group (read_committed, offsets committed by hand after each
 * checkpoint), an idempotent producer for the snapshots topic, rebalance
 * handling, and the HTTP server. The fold and the checkpoint are in
 * snapshotter_fold.c, the read API in snapshotter_api.c; snapshotter.h
 * tells the design.
 */
#include "panther/snapshotter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "panther/log.h"
#include "snapshotter_internal.h"
#include "clock.h"

/* --- clients --------------------------------------------------------------- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque) {
    (void)rk;
    pn_snapshotter_t *s = opaque;
    if (m->err && !s->delivery_err)
        s->delivery_err = m->err;
}

static pn_err_t producer_new(pn_snapshotter_t *s, char *errstr,
                             size_t errstr_size) {
    const pn_kafka_prop_t defaults[] = {
        {"linger.ms", "20"},
        {"compression.type", "lz4"},
    };
    const pn_kafka_prop_t fixed[] = {
        /* Retries keep the order of a key's records: the last one wins. */
        {"enable.idempotence", "true"},
        {"partitioner", "murmur2_random"},
    };
    rd_kafka_conf_t *conf;
    pn_err_t err = pn_kafka_conf_new(defaults, 2, s->opts.kafka, s->opts.n_kafka,
                                     fixed, 2, &conf, errstr, errstr_size);
    if (err)
        return err;
    rd_kafka_conf_set_opaque(conf, s);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    char max_bytes[32];
    size_t max_bytes_len = sizeof max_bytes;
    s->publish_max_bytes =
        rd_kafka_conf_get(conf, "message.max.bytes", max_bytes,
                          &max_bytes_len) == RD_KAFKA_CONF_OK
            ? (size_t)strtoull(max_bytes, NULL, 10)
            : 1000000;
    char why[512];
    s->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!s->producer) {
        rd_kafka_conf_destroy(conf);
        return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                          "cannot create the producer: %s", why);
    }
    return PN_ERR_OK;
}

/* --- rebalances -------------------------------------------------------------- */

/* Pauses or resumes the whole assignment (the bound on streams in memory). */
static void set_paused(pn_snapshotter_t *s, bool pause) {
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (s->paused == pause || rd_kafka_assignment(s->consumer, &parts) || !parts)
        return;
    if (pause)
        rd_kafka_pause_partitions(s->consumer, parts);
    else
        rd_kafka_resume_partitions(s->consumer, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    s->paused = pause;
}

static void format_partitions(const rd_kafka_topic_partition_list_t *parts,
                              char *buf, size_t size) {
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < parts->cnt && n < size; i++) {
        int w = snprintf(buf + n, size - n, "%s%d", i ? "," : "",
                         parts->elems[i].partition);
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

static int64_t checkpoint_of(pn_snapshotter_t *s, int32_t p) {
    pn_partition_meta_t meta;
    bool found = false;
    if (pn_store_get_partition_meta(s->store, p, &meta, &found) != PN_ERR_OK) {
        pn_log_kv(PN_LOG_ERROR, "cannot read a checkpoint; replaying the "
                                "partition from the beginning",
                  PN_LOG_INT("partition", p),
                  PN_LOG_STR("detail", pn_store_last_error(s->store)));
        return -1;
    }
    return found ? meta.events_offset : -1;
}

/* Each partition resumes at the store's checkpoint; the group's committed
 * offset is only compared with it (snapshotter.h says why). */
static void on_assign(pn_snapshotter_t *s, rd_kafka_t *rk,
                      rd_kafka_topic_partition_list_t *parts) {
    rd_kafka_topic_partition_list_t *committed =
        rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_resp_err_t rerr = rd_kafka_committed(rk, committed, 10000);
    for (int i = 0; i < parts->cnt; i++) {
        int32_t p = parts->elems[i].partition;
        if (p < 0 || p >= s->n_partitions)
            continue;
        int64_t local = checkpoint_of(s, p);
        int64_t group = rerr || committed->elems[i].offset < 0
                            ? -1
                            : committed->elems[i].offset;
        parts->elems[i].offset = local >= 0 ? local : RD_KAFKA_OFFSET_BEGINNING;
        s->position[p] = local >= 0 ? local : 0;
        s->stored[p] = local;
        s->caught_up[p] = false;
        atomic_store(&s->owned[p], 1);
        pn_log_kv(group > local ? PN_LOG_WARN : PN_LOG_INFO,
                  group > local  ? "resuming at the local checkpoint, behind "
                                   "the group's committed offset (replaying)"
                  : local < 0    ? "no local checkpoint: reading the partition "
                                   "from the beginning"
                                 : "resuming at the local checkpoint",
                  PN_LOG_STR("topic", s->opts.events_topic),
                  PN_LOG_INT("partition", p), PN_LOG_INT("checkpoint", local),
                  PN_LOG_INT("committed", group));
    }
    rd_kafka_topic_partition_list_destroy(committed);
    atomic_store(&s->stats.partitions_assigned, parts->cnt);
    atomic_store(&s->stats.partitions_caught_up, 0);
    rerr = rd_kafka_assign(rk, parts);
    if (rerr)
        pn_log_kv(PN_LOG_ERROR, "assign failed",
                  PN_LOG_STR("error", rd_kafka_err2str(rerr)));
}

/* True while an assigned partition has not yet reached the end of its
 * events once since it was assigned. */
static bool catching_up(const pn_snapshotter_t *s) {
    for (int32_t p = 0; p < s->n_partitions; p++)
        if (s->position[p] >= 0 && !s->caught_up[p])
            return true;
    return false;
}

/*
 * Whether a checkpoint may be taken now. Not while catching up: a replay
 * after a crash or a handover starts behind what the snapshots topic may
 * already hold (published, then killed before the store write), so its
 * intermediate states would move a stream's record back to an older
 * version. Once every partition has reached its end, each state is at
 * least as new as anything published before. The bound on streams held in
 * memory wins over that (a backlog touching that many streams).
 */
static bool may_checkpoint(const pn_snapshotter_t *s) {
    return !catching_up(s) || s->streams.count >= PN_SNAPSHOTTER_MAX_STREAMS;
}

/* A checkpoint when allowed; else what was applied since the last one is
 * left to be replayed. For revocations and shutdown. */
static pn_err_t final_checkpoint(pn_snapshotter_t *s, const char *why_now,
                                 char *errstr, size_t errstr_size) {
    if (!may_checkpoint(s)) {
        pn_log_kv(PN_LOG_INFO, "no checkpoint while catching up: the "
                               "events since the last one are replayed",
                  PN_LOG_STR("reason", why_now));
        return PN_ERR_OK;
    }
    pn_err_t err = pn_snapshotter__checkpoint(s, errstr, errstr_size);
    if (err == PN_ERR_KAFKA) /* not delivered: replayed, nothing lost */
        err = PN_ERR_OK;
    return err;
}

/* Eager rebalancing takes every partition: checkpoint what was applied
 * (the new owner, maybe this process again, resumes from the store), then
 * forget everything held in memory. Not when the assignment was lost (a
 * session timeout): the partitions may have a new owner already, whose
 * newer snapshots an older one published now would follow in the
 * compacted topic; the events since the last checkpoint are replayed. */
static void on_revoke(pn_snapshotter_t *s, rd_kafka_t *rk) {
    char why[512] = "";
    if (rd_kafka_assignment_lost(rk))
        pn_log_kv(PN_LOG_WARN, "assignment lost: no checkpoint, the events "
                               "since the last one are replayed",
                  PN_LOG_STR("topic", s->opts.events_topic));
    else if (final_checkpoint(s, "revoked", why, sizeof why) != PN_ERR_OK)
        pn_log_kv(PN_LOG_ERROR, "checkpoint failed on revocation",
                  PN_LOG_STR("detail", why));
    pn_snapshotter__forget(s);
    for (int32_t p = 0; p < s->n_partitions; p++) {
        atomic_store(&s->owned[p], 0);
        s->position[p] = -1;
        s->stored[p] = -1;
        s->caught_up[p] = false;
    }
    atomic_store(&s->stats.partitions_assigned, 0);
    atomic_store(&s->stats.partitions_caught_up, 0);
    set_paused(s, false); /* a pause would outlive the assignment */
    rd_kafka_assign(rk, NULL);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts,
                         void *opaque) {
    pn_snapshotter_t *s = opaque;
    atomic_fetch_add(&s->stats.rebalances, 1);
    char list[1024];
    format_partitions(parts, list, sizeof list);
    pn_log_kv(PN_LOG_INFO,
              err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? "partitions assigned"
                                                          : "partitions revoked",
              PN_LOG_STR("topic", s->opts.events_topic),
              PN_LOG_STR("partitions", list));
    bool assign = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
    if (assign)
        on_assign(s, rk, parts);
    else
        on_revoke(s, rk);
    pn_health_set_ready(s->opts.health, false,
                        assign && parts->cnt ? "catching up"
                                             : "no partitions assigned");
}

static pn_err_t consumer_new(pn_snapshotter_t *s, char *errstr,
                             size_t errstr_size) {
    const pn_kafka_prop_t defaults[] = {
        {"auto.offset.reset", "earliest"},
        {"session.timeout.ms", "10000"},
        {"heartbeat.interval.ms", "1000"},
    };
    const pn_kafka_prop_t fixed[] = {
        {"group.id", s->opts.group_id},
        {"group.instance.id", s->opts.instance_id},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"isolation.level", "read_committed"},
        {"enable.partition.eof", "true"},
        {"partition.assignment.strategy", "range,roundrobin"},
    };
    rd_kafka_conf_t *conf;
    pn_err_t err = pn_kafka_conf_new(defaults, 3, s->opts.kafka, s->opts.n_kafka,
                                     fixed, sizeof fixed / sizeof fixed[0],
                                     &conf, errstr, errstr_size);
    if (err)
        return err;
    rd_kafka_conf_set_opaque(conf, s);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    char why[512];
    s->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (!s->consumer) {
        rd_kafka_conf_destroy(conf);
        return pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                          "cannot create the consumer: %s", why);
    }
    rd_kafka_poll_set_consumer(s->consumer);
    return PN_ERR_OK;
}

/* --- start-up checks --------------------------------------------------------- */

/* Warns when the snapshots topic is not compacted: it would grow forever
 * and lose old streams to retention. Best effort. */
static void check_compacted(pn_snapshotter_t *s) {
    char why[256];
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(
        RD_KAFKA_RESOURCE_TOPIC, s->opts.snapshots_topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(s->consumer);
    rd_kafka_DescribeConfigs(s->consumer, &res, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 10000);
    const char *policy = NULL;
    const rd_kafka_DescribeConfigs_result_t *result =
        ev ? rd_kafka_event_DescribeConfigs_result(ev) : NULL;
    size_t n_res = 0, n_cfg = 0;
    const rd_kafka_ConfigResource_t **rs =
        result ? rd_kafka_DescribeConfigs_result_resources(result, &n_res) : NULL;
    const rd_kafka_ConfigEntry_t **entries =
        n_res ? rd_kafka_ConfigResource_configs(rs[0], &n_cfg) : NULL;
    for (size_t i = 0; i < n_cfg; i++)
        if (!strcmp(rd_kafka_ConfigEntry_name(entries[i]), "cleanup.policy"))
            policy = rd_kafka_ConfigEntry_value(entries[i]);
    snprintf(why, sizeof why, "%s", policy ? policy : "");
    if (!policy || !strstr(policy, "compact"))
        pn_log_kv(PN_LOG_WARN,
                  policy ? "the snapshots topic is not compacted "
                           "(cleanup.policy=compact expected)"
                         : "cannot read the snapshots topic's cleanup.policy",
                  PN_LOG_STR("topic", s->opts.snapshots_topic),
                  PN_LOG_STR("cleanup.policy", why));
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(res);
}

static pn_err_t check_topics(pn_snapshotter_t *s, char *errstr,
                             size_t errstr_size) {
    int32_t n_snapshots;
    pn_err_t err = pn_kafka_partition_count(s->consumer, s->opts.events_topic,
                                            10000, &s->n_partitions, errstr,
                                            errstr_size);
    if (!err)
        err = pn_kafka_partition_count(s->consumer, s->opts.snapshots_topic,
                                       10000, &n_snapshots, errstr,
                                       errstr_size);
    if (err)
        return err == PN_ERR_NOT_FOUND ? PN_ERR_CONFIG : err;
    check_compacted(s);
    return PN_ERR_OK;
}

/* --- lifecycle ----------------------------------------------------------------- */

static pn_err_t alloc_partitions(pn_snapshotter_t *s, char *errstr,
                                 size_t errstr_size) {
    size_t n = (size_t)s->n_partitions;
    s->owned = calloc(n, sizeof *s->owned);
    s->position = malloc(n * sizeof *s->position);
    s->stored = malloc(n * sizeof *s->stored);
    s->caught_up = calloc(n, sizeof *s->caught_up);
    if (!s->owned || !s->position || !s->stored || !s->caught_up)
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM, "out of memory");
    for (size_t p = 0; p < n; p++)
        s->position[p] = s->stored[p] = -1;
    return PN_ERR_OK;
}

static pn_err_t http_start(pn_snapshotter_t *s, char *errstr,
                           size_t errstr_size) {
    if (s->opts.http_port <= 0)
        return PN_ERR_OK;
    size_t n = 1 + s->opts.n_routes;
    s->routes = calloc(n, sizeof *s->routes);
    if (!s->routes)
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM, "out of memory");
    s->routes[0] = (pn_http_route_t){PN_SNAPSHOTTER_API_PREFIX,
                                     pn_snapshotter__read_api, s};
    for (size_t i = 0; i < s->opts.n_routes; i++)
        s->routes[1 + i] = s->opts.routes[i];
    const char *bind = s->opts.http_bind && *s->opts.http_bind
                           ? s->opts.http_bind
                           : "127.0.0.1";
    pn_err_t err = pn_http_server_start(bind, s->opts.http_port, s->routes, n,
                                        &s->http, errstr, errstr_size);
    if (!err)
        pn_log_kv(PN_LOG_INFO, "http listening", PN_LOG_STR("bind", bind),
                  PN_LOG_INT("port", pn_http_server_port(s->http)));
    return err;
}

pn_err_t pn_snapshotter_new(const pn_snapshotter_options_t *opts,
                            pn_snapshotter_t **snapshotterp, char *errstr,
                            size_t errstr_size) {
    *snapshotterp = NULL;
    if (!opts->events_topic || !opts->snapshots_topic || !opts->group_id ||
        !opts->instance_id || opts->interval_ms <= 0)
        return pn_err_set(errstr, errstr_size, PN_ERR_INVALID_ARG,
                          "snapshotter: topics, group, instance and a "
                          "positive interval are required");
    pn_snapshotter_t *s = calloc(1, sizeof *s);
    if (!s)
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM, "out of memory");
    s->opts = *opts;
    pn_map_init(&s->streams);
    pn_map_init(&s->gapped);
    pn_buf_init(&s->scratch, 16u << 20);
    pn_err_t err = pn_codec_new(&opts->codec, &s->codec, errstr, errstr_size);
    if (!err)
        err = pn_store_open(&opts->store, &s->store, errstr, errstr_size);
    if (!err)
        err = pn_store_batch_new(&s->batch);
    if (!err)
        err = consumer_new(s, errstr, errstr_size);
    if (!err)
        err = check_topics(s, errstr, errstr_size);
    if (!err)
        err = alloc_partitions(s, errstr, errstr_size);
    if (!err)
        err = producer_new(s, errstr, errstr_size);
    if (!err)
        err = http_start(s, errstr, errstr_size);
    if (err) {
        pn_snapshotter_free(s);
        return err;
    }
    *snapshotterp = s;
    return PN_ERR_OK;
}

void pn_snapshotter_free(pn_snapshotter_t *s) {
    if (!s)
        return;
    /* The HTTP threads read the store: they go first. */
    pn_http_server_stop(s->http);
    free(s->routes);
    pn_kafka_destroy(s->consumer, "consumer", PN_KAFKA_DESTROY_TIMEOUT_MS);
    if (s->producer)
        rd_kafka_destroy(s->producer);
    pn_snapshotter__forget(s);
    pn_map_free(&s->streams, NULL);
    pn_map_free(&s->gapped, NULL);
    pn_store_batch_free(s->batch);
    pn_store_close(s->store);
    pn_codec_free(s->codec);
    pn_buf_free(&s->scratch);
    free(s->owned);
    free(s->position);
    free(s->stored);
    free(s->caught_up);
    free(s);
}

void pn_snapshotter_stop(pn_snapshotter_t *s) { s->stop = 1; }

int pn_snapshotter_http_port(const pn_snapshotter_t *s) {
    return s ? pn_http_server_port(s->http) : 0;
}

static uint64_t load(const atomic_uint_fast64_t *c) {
    return atomic_load_explicit(c, memory_order_relaxed);
}

void pn_snapshotter_get_stats(const pn_snapshotter_t *s,
                              pn_snapshotter_stats_t *st) {
    const pn_snap_counters_t *c = &s->stats;
    *st = (pn_snapshotter_stats_t){
        .events = load(&c->events),
        .applied = load(&c->applied),
        .skipped = load(&c->skipped),
        .gaps = load(&c->gaps),
        .gapped_events = load(&c->gapped_events),
        .bad_events = load(&c->bad_events),
        .snapshots_published = load(&c->snapshots_published),
        .publish_failures = load(&c->publish_failures),
        .checkpoints = load(&c->checkpoints),
        .offset_commits = load(&c->offset_commits),
        .rebalances = load(&c->rebalances),
        .gapped_streams = load(&c->gapped_streams),
        .partitions_assigned = atomic_load(&c->partitions_assigned),
        .partitions_caught_up = atomic_load(&c->partitions_caught_up),
    };
}

/* --- the loop ------------------------------------------------------------------ */

static void on_end_of_partition(pn_snapshotter_t *s, int32_t p) {
    if (p < 0 || p >= s->n_partitions || s->caught_up[p] || s->position[p] < 0)
        return;
    s->caught_up[p] = true;
    int caught = atomic_fetch_add(&s->stats.partitions_caught_up, 1) + 1;
    pn_log_kv(PN_LOG_INFO, "partition caught up",
              PN_LOG_STR("topic", s->opts.events_topic),
              PN_LOG_INT("partition", p), PN_LOG_INT("offset", s->position[p]));
    if (caught == atomic_load(&s->stats.partitions_assigned))
        pn_health_set_ready(s->opts.health, true, NULL);
}

/* One poll: a record, an end of partition, or nothing. */
static pn_err_t poll_once(pn_snapshotter_t *s, int timeout_ms, char *errstr,
                          size_t errstr_size) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(s->consumer, timeout_ms);
    if (!m)
        return PN_ERR_OK;
    pn_err_t err = PN_ERR_OK;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        on_end_of_partition(s, m->partition);
    else if (m->err)
        pn_log_kv(PN_LOG_WARN, "consumer error",
                  PN_LOG_STR("error", rd_kafka_message_errstr(m)));
    else
        err = pn_snapshotter__apply(s, m, errstr, errstr_size);
    rd_kafka_message_destroy(m);
    return err;
}

/* A checkpoint whose snapshots were not delivered is retried next time;
 * anything else is fatal. */
static pn_err_t checkpoint(pn_snapshotter_t *s, char *errstr,
                           size_t errstr_size) {
    pn_err_t err = pn_snapshotter__checkpoint(s, errstr, errstr_size);
    if (err == PN_ERR_KAFKA)
        return PN_ERR_OK;
    if (!err && s->streams.count < PN_SNAPSHOTTER_MAX_STREAMS)
        set_paused(s, false);
    return err;
}

static void log_stopped(const pn_snapshotter_t *s) {
    pn_snapshotter_stats_t st;
    pn_snapshotter_get_stats(s, &st);
    pn_log_kv(PN_LOG_INFO, "snapshotter stopped", PN_LOG_UINT("events", st.events),
              PN_LOG_UINT("applied", st.applied),
              PN_LOG_UINT("skipped", st.skipped), PN_LOG_UINT("gaps", st.gaps),
              PN_LOG_UINT("bad_events", st.bad_events),
              PN_LOG_UINT("snapshots_published", st.snapshots_published),
              PN_LOG_UINT("checkpoints", st.checkpoints));
}

pn_err_t pn_snapshotter_run(pn_snapshotter_t *s, char *errstr,
                            size_t errstr_size) {
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, s->opts.events_topic,
                                      RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t rerr = rd_kafka_subscribe(s->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (rerr)
        return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                          "subscribe to '%s': %s", s->opts.events_topic,
                          rd_kafka_err2str(rerr));
    pn_log_kv(PN_LOG_INFO, "snapshotter started",
              PN_LOG_STR("group", s->opts.group_id),
              PN_LOG_STR("instance", s->opts.instance_id),
              PN_LOG_STR("events", s->opts.events_topic),
              PN_LOG_STR("snapshots", s->opts.snapshots_topic),
              PN_LOG_INT("partitions", s->n_partitions),
              PN_LOG_INT("interval_ms", s->opts.interval_ms));
    pn_health_set_ready(s->opts.health, false, "no partitions assigned");
    s->last_checkpoint_ms = pn_mono_ms();
    pn_err_t err = PN_ERR_OK;
    while (!s->stop && !err) {
        pn_health_beat(s->opts.health);
        int64_t left = s->last_checkpoint_ms + s->opts.interval_ms -
                       pn_mono_ms();
        if (left <= 0) {
            if (may_checkpoint(s))
                err = checkpoint(s, errstr, errstr_size);
            else
                s->last_checkpoint_ms = pn_mono_ms();
            continue;
        }
        if (s->streams.count >= PN_SNAPSHOTTER_MAX_STREAMS)
            set_paused(s, true);
        err = poll_once(s, left < 100 ? (int)left : 100, errstr, errstr_size);
    }
    if (!err)
        err = final_checkpoint(s, "stopping", errstr, errstr_size);
    pn_log(PN_LOG_INFO, "snapshotter stopping: closing the consumer");
    rd_kafka_consumer_close(s->consumer);
    rd_kafka_flush(s->producer, 10000);
    log_stopped(s);
    return err;
}
