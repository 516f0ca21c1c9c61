/*
 * `panther snapshotter` against the real broker, after a mixed workload
 * run by a real `panther worker`: every stream's snapshot, through the read
 * API and in the compacted snapshots topic (last record per key), equals
 * the fold of its events, which this test computes itself from the events
 * topic; a kill -9 mid-way and a restart lose and repeat nothing; a version
 * gap planted in the events topic is reported and not papered over; two
 * snapshotters share the partitions; the read API's status codes, JSON and
 * limits, under concurrent requests during load.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "it_support.h"
#include "panther/kafka.h"
#include "pn_test.h"
#include "topic_reader.h"

const int pn_test_needs_broker = 1;

#define INTERVAL_MS "200"

/* --- topics and processes --------------------------------------------------- */

typedef struct snap_env {
    pn_it_t it;
    char snapshots[160];
    char group[160];
} snap_env_t;

/* The compacted snapshots topic, created as an operator would. */
static void create_snapshots_topic(snap_env_t *env, int partitions) {
    snprintf(env->snapshots, sizeof env->snapshots, "%sinventory.snapshots",
             env->it.prefix);
    snprintf(env->group, sizeof env->group, "%ssnapshotters", env->it.prefix);
    char why[512];
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(env->snapshots, partitions, 1, why, sizeof why);
    PN_REQUIRE(nt != NULL);
    PN_REQUIRE(rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact") == 0);
    rd_kafka_queue_t *q = rd_kafka_queue_new(env->it.producer);
    rd_kafka_CreateTopics(env->it.producer, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 60000);
    PN_REQUIRE(ev != NULL);
    size_t cnt;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(
        rd_kafka_event_CreateTopics_result(ev), &cnt);
    PN_REQUIRE(cnt == 1);
    PN_ASSERT_(rd_kafka_topic_result_error(tr[0]) == 0, CU_TRUE,
               "create %s: %s", env->snapshots,
               rd_kafka_err2str(rd_kafka_topic_result_error(tr[0])));
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
}

static bool env_init(snap_env_t *env, const char *tag, int partitions,
                     int snapshot_partitions) {
    memset(env, 0, sizeof *env);
    if (!pn_it_init(&env->it, tag, partitions, partitions))
        return false;
    create_snapshots_topic(env, snapshot_partitions);
    return true;
}

typedef struct snap_proc {
    pid_t pid;
    int port;
    char instance[32];
    char log[4200];
} snap_proc_t;

/* Starts `panther snapshotter`; extra: one more --set value, or NULL. */
static void snap_start_with(snap_env_t *env, snap_proc_t *sp,
                            const char *instance, const char *extra) {
    pn_it_t *it = &env->it;
    if (!sp->port)
        sp->port = pn_it_free_port();
    snprintf(sp->instance, sizeof sp->instance, "%s", instance);
    snprintf(sp->log, sizeof sp->log, "%s/snap-%s.log", it->dir, instance);
    char sets[16][4400];
    int n = 0;
#define SET(...) snprintf(sets[n++], sizeof sets[0], __VA_ARGS__)
    SET("topics.commands=%s", it->commands);
    SET("topics.events=%s", it->events);
    SET("topics.outcomes=%s", it->outcomes);
    SET("topics.dead.letters=%s", it->dlt);
    SET("topics.snapshots=%s", env->snapshots);
    SET("group.id=%s", it->group);
    SET("snapshotter.group.id=%s", env->group);
    SET("instance.id=%s", instance);
    SET("store.path=%s/unused-%s", it->dir, instance);
    SET("snapshotter.store.path=%s/snapstore-%s", it->dir, instance);
    SET("snapshotter.interval.ms=" INTERVAL_MS);
    SET("snapshotter.http.port=%d", sp->port);
    SET("kafka.bootstrap.servers=%s", it->bootstrap);
    if (extra)
        SET("%s", extra);
#undef SET
    const char *panther = getenv("PN_PANTHER");
    PN_REQUIRE(panther != NULL);
    const char *argv[64] = {panther, "snapshotter"};
    int argc = 2;
    for (int i = 0; i < n; i++) {
        argv[argc++] = "--set";
        argv[argc++] = sets[i];
    }
    argv[argc] = NULL;
    fflush(NULL);
    sp->pid = fork();
    PN_REQUIRE(sp->pid >= 0);
    if (sp->pid == 0) {
        int fd = open(sp->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(panther, (char *const *)argv);
        _exit(127);
    }
    pn_it_track_child(sp->pid);
}

static void snap_start(snap_env_t *env, snap_proc_t *sp, const char *instance) {
    snap_start_with(env, sp, instance, NULL);
}

/* --- HTTP ------------------------------------------------------------------- */

typedef struct reply {
    int status; /* -1: no answer */
    char *body;
    size_t body_len;
    char head[2048];
} reply_t;

static void reply_free(reply_t *r) {
    free(r->body);
    memset(r, 0, sizeof *r);
}

static void http_raw(int port, const char *raw, size_t raw_len, reply_t *r) {
    memset(r, 0, sizeof *r);
    r->status = -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    /* Bounded everywhere: SO_SNDTIMEO also bounds connect. */
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return;
    }
    for (size_t off = 0; off < raw_len;) {
        ssize_t k = send(fd, raw + off, raw_len - off, MSG_NOSIGNAL);
        if (k <= 0)
            break;
        off += (size_t)k;
    }
    size_t cap = 1 << 14, len = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (len == cap)
            buf = realloc(buf, (cap *= 2) + 1);
        ssize_t k = recv(fd, buf + len, cap - len, 0);
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    close(fd);
    buf[len] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    int status;
    if (end && sscanf(buf, "HTTP/1.%*d %d", &status) == 1) {
        r->status = status;
        snprintf(r->head, sizeof r->head, "%.*s", (int)(end - buf), buf);
        r->body_len = len - (size_t)(end + 4 - buf);
        r->body = strdup(end + 4);
    }
    free(buf);
}

static void http_req(int port, const char *method, const char *path, reply_t *r) {
    size_t n = strlen(path) + 128;
    char *raw = malloc(n);
    int len = snprintf(raw, n, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                       method, path);
    http_raw(port, raw, (size_t)len, r);
    free(raw);
}

static void http_get(int port, const char *path, reply_t *r) {
    http_req(port, "GET", path, r);
}

/* Percent-encodes everything but RFC 3986's unreserved characters. */
static void url_escape(const char *in, size_t len, char *out, size_t out_size) {
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (size_t i = 0; i < len && n + 4 < out_size; i++) {
        unsigned char c = (unsigned char)in[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~')
            out[n++] = (char)c;
        else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
}

static bool wait_ready(int port, int timeout_ms) {
    for (int64_t end = pn_mono_ms() + timeout_ms; pn_mono_ms() < end;) {
        reply_t r;
        http_get(port, "/readyz", &r);
        bool ready = r.status == 200;
        reply_free(&r);
        if (ready)
            return true;
        pn_it_sleep_ms(200);
    }
    return false;
}

/* Polls a stream's path until it answers 200 with at least version. */
static bool wait_version_at_least(int port, const char *path, int64_t version) {
    for (int64_t end = pn_mono_ms() + 60000; pn_mono_ms() < end;) {
        reply_t r;
        http_get(port, path, &r);
        json_t *doc = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
        int64_t v = doc ? json_integer_value(json_object_get(doc, "version")) : 0;
        json_decref(doc);
        reply_free(&r);
        if (v >= version)
            return true;
        pn_it_sleep_ms(100);
    }
    return false;
}

/* --- the fold of the events topic, computed here ------------------------- */

typedef struct fstream {
    char key[PN_STREAM_KEY_MAX];
    char sku[PN_ID_MAX_BYTES + 1], node[PN_ID_MAX_BYTES + 1];
    pn_state_t state;
    int64_t at_ms;
    /* from the snapshots topic */
    pn_state_t topic_state;
    int64_t topic_at_ms;
    int64_t topic_records;
    bool topic_regressed;
} fstream_t;

typedef struct fold {
    fstream_t *v;
    size_t n, cap;
    pn_codec_t *codec;
    int problems;
} fold_t;

static fstream_t *fold_find(fold_t *f, const char *key, size_t key_len, bool add) {
    for (size_t i = 0; i < f->n; i++)
        if (strlen(f->v[i].key) == key_len && !memcmp(f->v[i].key, key, key_len))
            return &f->v[i];
    if (!add)
        return NULL;
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 64;
        f->v = realloc(f->v, f->cap * sizeof *f->v);
    }
    fstream_t *s = &f->v[f->n++];
    memset(s, 0, sizeof *s);
    snprintf(s->key, sizeof s->key, "%.*s", (int)key_len, key);
    pn_state_init(&s->state);
    pn_state_init(&s->topic_state);
    return s;
}

static pn_err_t on_event(void *opaque, const rd_kafka_message_t *m) {
    fold_t *f = opaque;
    pn_event_t ev;
    char why[256];
    if (pn_codec_decode_event(f->codec, m->payload, m->len, &ev, why, sizeof why)) {
        f->problems++;
        return PN_ERR_OK;
    }
    char key[PN_STREAM_KEY_MAX];
    size_t key_len = pn_stream_key(ev.sku_id, ev.node_id, key, sizeof key);
    fstream_t *s = fold_find(f, key, key_len, true);
    snprintf(s->sku, sizeof s->sku, "%.*s", (int)ev.sku_id.len, ev.sku_id.ptr);
    snprintf(s->node, sizeof s->node, "%.*s", (int)ev.node_id.len, ev.node_id.ptr);
    if (pn_domain_evolve(&s->state, &ev) != PN_ERR_OK)
        f->problems++;
    else
        s->at_ms = ev.at_ms;
    pn_event_release(&ev);
    return PN_ERR_OK;
}

static void fold_events(snap_env_t *env, fold_t *f) {
    memset(f, 0, sizeof *f);
    f->codec = env->it.codec;
    pn_kafka_prop_t kafka[] = {{"bootstrap.servers", env->it.bootstrap}};
    char err[512] = "";
    pn_err_t e = pn_topic_read_all(kafka, 1, env->it.events, on_event, f, 60000,
                                   err, sizeof err);
    PN_ASSERT_(e == PN_ERR_OK, CU_TRUE, "reading events: %s", err);
    PN_ASSERT_EQ_INT(f->problems, 0);
}

static void fold_free(fold_t *f) {
    for (size_t i = 0; i < f->n; i++) {
        pn_state_clear(&f->v[i].state);
        pn_state_clear(&f->v[i].topic_state);
    }
    free(f->v);
    memset(f, 0, sizeof *f);
}

/* --- the snapshots topic: last record per key ------------------------------- */

typedef struct topic_acc {
    fold_t *fold;
    uint64_t records;
    int problems;
} topic_acc_t;

static pn_err_t on_snapshot(void *opaque, const rd_kafka_message_t *m) {
    topic_acc_t *acc = opaque;
    acc->records++;
    pn_state_t st;
    pn_state_init(&st);
    char *sku = NULL, *node = NULL, why[256];
    int64_t at;
    if (pn_codec_decode_snapshot(acc->fold->codec, m->payload, m->len, &st, &sku,
                                 &node, &at, why, sizeof why)) {
        acc->problems++;
        return PN_ERR_OK;
    }
    char key[PN_STREAM_KEY_MAX];
    size_t key_len = pn_stream_key(pn_str_c(sku), pn_str_c(node), key, sizeof key);
    /* The record key is the stream key. */
    if (!m->key || m->key_len != key_len || memcmp(m->key, key, key_len))
        acc->problems++;
    fstream_t *s = fold_find(acc->fold, key, key_len, false);
    if (!s) {
        acc->problems++; /* a stream without events */
    } else {
        if (st.version < s->topic_state.version)
            s->topic_regressed = true;
        PN_REQUIRE_OK(pn_state_copy(&s->topic_state, &st));
        s->topic_at_ms = at;
        s->topic_records++;
    }
    free(sku);
    free(node);
    pn_state_clear(&st);
    return PN_ERR_OK;
}

static uint64_t read_snapshots(snap_env_t *env, fold_t *f) {
    for (size_t i = 0; i < f->n; i++) {
        pn_state_clear(&f->v[i].topic_state);
        f->v[i].topic_records = 0;
        f->v[i].topic_regressed = false;
    }
    topic_acc_t acc = {f, 0, 0};
    pn_kafka_prop_t kafka[] = {{"bootstrap.servers", env->it.bootstrap}};
    char err[512] = "";
    pn_err_t e = pn_topic_read_all(kafka, 1, env->snapshots, on_snapshot, &acc,
                                   60000, err, sizeof err);
    PN_ASSERT_(e == PN_ERR_OK, CU_TRUE, "reading snapshots: %s", err);
    PN_ASSERT_EQ_INT(acc.problems, 0);
    return acc.records;
}

/* Every stream's last record equals its fold; versions never went back. */
static void check_topic_matches(const fold_t *f) {
    for (size_t i = 0; i < f->n; i++) {
        const fstream_t *s = &f->v[i];
        PN_ASSERT_(s->topic_records > 0, CU_FALSE, "%.100s: no snapshot record", s->key);
        PN_ASSERT_(pn_state_eq(&s->topic_state, &s->state), CU_FALSE,
                   "%.100s: topic has v%lld on hand %lld reserved %lld, fold v%lld "
                   "%lld %lld",
                   s->key, (long long)s->topic_state.version,
                   (long long)s->topic_state.on_hand,
                   (long long)s->topic_state.reserved, (long long)s->state.version,
                   (long long)s->state.on_hand, (long long)s->state.reserved);
        PN_ASSERT_(s->topic_at_ms == s->at_ms, CU_FALSE, "%.100s: updatedAt %lld vs %lld",
                   s->key, (long long)s->topic_at_ms, (long long)s->at_ms);
        PN_ASSERT_(!s->topic_regressed, CU_FALSE, "%.100s: a record went back", s->key);
    }
}

/* --- the read API ------------------------------------------------------------- */

static void stream_path(const fstream_t *s, char *path, size_t size) {
    char sku[3 * PN_ID_MAX_BYTES + 1], node[3 * PN_ID_MAX_BYTES + 1];
    url_escape(s->sku, strlen(s->sku), sku, sizeof sku);
    url_escape(s->node, strlen(s->node), node, sizeof node);
    snprintf(path, size, "/v1/inventory/%s/%s", sku, node);
}

static const char *str_or_empty(const char *s) { return s ? s : ""; }

static const char *const stream_keys[] = {
    "skuId", "fulfillmentNodeId", "onHand", "reserved", "available",
    "version", "reservations", "updatedAt", NULL};

/* NULL when obj is a stream object equal to s, else what differs. */
static const char *stream_json_differs(json_t *obj, const fstream_t *s) {
    if (!json_is_object(obj))
        return "not an object";
    size_t n_keys = 0;
    for (int i = 0; stream_keys[i]; i++, n_keys++)
        if (!json_object_get(obj, stream_keys[i]))
            return stream_keys[i];
    if (json_object_size(obj) != n_keys)
        return "extra keys";
    const pn_state_t *st = &s->state;
    if (strcmp(str_or_empty(json_string_value(json_object_get(obj, "skuId"))), s->sku) ||
        strcmp(str_or_empty(json_string_value(json_object_get(obj, "fulfillmentNodeId"))),
               s->node))
        return "ids";
    if (json_integer_value(json_object_get(obj, "version")) != st->version)
        return "version";
    if (json_integer_value(json_object_get(obj, "onHand")) != st->on_hand ||
        json_integer_value(json_object_get(obj, "reserved")) != st->reserved ||
        json_integer_value(json_object_get(obj, "available")) !=
            pn_state_available(st))
        return "counts";
    if (json_integer_value(json_object_get(obj, "updatedAt")) != s->at_ms)
        return "updatedAt";
    json_t *res = json_object_get(obj, "reservations");
    if (!json_is_array(res) || json_array_size(res) != st->n_reservations)
        return "reservations";
    for (size_t i = 0; i < st->n_reservations; i++) {
        json_t *r = json_array_get(res, i);
        const char *order = json_string_value(json_object_get(r, "orderId"));
        if (json_object_size(r) != 2 || !order ||
            strcmp(order, st->reservations[i].order_id) ||
            json_integer_value(json_object_get(r, "quantity")) !=
                st->reservations[i].quantity)
            return "a reservation";
    }
    return NULL;
}

/* NULL when the API answers 200 with s's fold, else why not. */
static const char *api_differs(int port, const fstream_t *s, char *why,
                               size_t why_size) {
    char path[2048];
    stream_path(s, path, sizeof path);
    reply_t r;
    http_get(port, path, &r);
    const char *diff = NULL;
    json_t *doc = NULL;
    if (r.status != 200) {
        snprintf(why, why_size, "%s: status %d %s", s->key, r.status,
                 r.body ? r.body : "");
        diff = why;
    } else if (!(doc = json_loads(r.body, 0, NULL)) ||
               (diff = stream_json_differs(doc, s)) != NULL) {
        snprintf(why, why_size, "%s: %s in %s", s->key, diff ? diff : "bad JSON",
                 r.body);
        diff = why;
    }
    if (r.status == 200 && !strstr(r.head, "Content-Type: application/json")) {
        snprintf(why, why_size, "%s: content type", s->key);
        diff = why;
    }
    json_decref(doc);
    reply_free(&r);
    return diff;
}

/* Polls until the API shows every stream's fold. */
static void wait_api_converged(int port, const fold_t *f, int timeout_ms) {
    char why[1024] = "";
    const char *diff = "not checked";
    for (int64_t end = pn_mono_ms() + timeout_ms; diff;) {
        diff = NULL;
        for (size_t i = 0; i < f->n && !diff; i++)
            diff = api_differs(port, &f->v[i], why, sizeof why);
        if (!diff || pn_mono_ms() >= end)
            break;
        pn_it_sleep_ms(250);
    }
    PN_ASSERT_(diff == NULL, CU_FALSE, "read API: %.400s", diff ? diff : "");
}

/* GET /v1/inventory/{sku} lists exactly the SKU's streams, by node id. */
static void check_sku_listing(int port, const fold_t *f, const char *sku) {
    char esc[3 * PN_ID_MAX_BYTES + 1], path[2048];
    url_escape(sku, strlen(sku), esc, sizeof esc);
    snprintf(path, sizeof path, "/v1/inventory/%s", esc);
    reply_t r;
    http_get(port, path, &r);
    PN_ASSERT_EQ_INT(r.status, 200);
    json_t *doc = r.body ? json_loads(r.body, 0, NULL) : NULL;
    json_t *nodes = json_object_get(doc, "nodes");
    PN_ASSERT_(json_is_object(doc) && json_object_size(doc) == 2 &&
                   !strcmp(str_or_empty(json_string_value(json_object_get(doc, "skuId"))),
                           sku) &&
                   json_is_array(nodes),
               CU_FALSE, "listing of %s: %.300s", sku, r.body ? r.body : "");
    size_t expected = 0;
    for (size_t i = 0; i < f->n; i++)
        expected += strcmp(f->v[i].sku, sku) == 0;
    PN_ASSERT_EQ_INT(json_array_size(nodes), expected);
    const char *prev = "";
    for (size_t i = 0; i < json_array_size(nodes); i++) {
        json_t *obj = json_array_get(nodes, i);
        const char *node = json_string_value(json_object_get(obj, "fulfillmentNodeId"));
        char key[PN_STREAM_KEY_MAX];
        size_t key_len = node ? pn_stream_key(pn_str_c(sku), pn_str_c(node), key,
                                              sizeof key)
                              : 0;
        const fstream_t *s = key_len ? fold_find((fold_t *)f, key, key_len, false)
                                     : NULL;
        const char *diff = s ? stream_json_differs(obj, s) : "unknown node";
        PN_ASSERT_(diff == NULL, CU_FALSE, "listing of %s, node %s: %s", sku,
                   node ? node : "?", diff ? diff : "");
        PN_ASSERT_(node && strcmp(prev, node) < 0, CU_FALSE, "nodes not sorted");
        prev = node ? node : prev;
    }
    json_decref(doc);
    reply_free(&r);
}

/* Readers hammering the API while the snapshotter works: every answer is
 * well-formed, 200 answers never go back in version, no 500. */
typedef struct hammer {
    int port;
    const fold_t *fold;
    volatile int *stop;
    unsigned seed;
    uint64_t ok, not_found, unavailable, refused, bad;
    int64_t last_version[256];
    char bad_detail[512];
} hammer_t;

static void *hammer_thread(void *arg) {
    hammer_t *h = arg;
    size_t n = h->fold->n < 256 ? h->fold->n : 256;
    while (!*h->stop) {
        size_t i = (size_t)rand_r(&h->seed) % n;
        const fstream_t *s = &h->fold->v[i];
        char path[2048];
        stream_path(s, path, sizeof path);
        reply_t r;
        http_get(h->port, path, &r);
        if (r.status == 200) {
            json_t *doc = json_loads(r.body, 0, NULL);
            json_t *v = json_object_get(doc, "version");
            int64_t version = json_is_integer(v) ? json_integer_value(v) : -1;
            if (version < h->last_version[i] || version < 1 ||
                json_object_size(doc) != 8) {
                h->bad++;
                snprintf(h->bad_detail, sizeof h->bad_detail, "%.100s: v%lld after %lld: %.300s",
                         s->key, (long long)version, (long long)h->last_version[i],
                         r.body);
            } else {
                h->ok++;
                h->last_version[i] = version;
            }
            json_decref(doc);
        } else if (r.status == 404 || r.status == 503) {
            r.status == 404 ? h->not_found++ : h->unavailable++;
        } else if (r.status == -1) {
            h->refused++; /* between the kill and the restart */
        } else {
            h->bad++;
            snprintf(h->bad_detail, sizeof h->bad_detail, "%.100s: status %d", s->key,
                     r.status);
        }
        reply_free(&r);
    }
    return NULL;
}

enum { READERS = 4 };

typedef struct readers {
    volatile int stop;
    bool running;
    hammer_t h[READERS];
    pthread_t th[READERS];
} readers_t;

static void readers_start(readers_t *rs, int port, const fold_t *f) {
    memset(rs, 0, sizeof *rs);
    for (int i = 0; i < READERS; i++) {
        rs->h[i] = (hammer_t){.port = port, .fold = f, .stop = &rs->stop,
                              .seed = (unsigned)i + 1};
        PN_REQUIRE(pthread_create(&rs->th[i], NULL, hammer_thread, &rs->h[i]) == 0);
    }
    rs->running = true;
}

/* Stops and joins the readers; again is a no-op. */
static void readers_stop(void *arg) {
    readers_t *rs = arg;
    if (!rs->running)
        return;
    rs->stop = 1;
    for (int i = 0; i < READERS; i++)
        pthread_join(rs->th[i], NULL);
    rs->running = false;
}

/* --- workload --------------------------------------------------------------- */

/* Streams whose ids need escaping in a URL. */
static void send_special_streams(pn_it_t *it) {
    static const char *const skus[] = {"a/b \xC3\xA9", "100%", "q?x#y"};
    static const char *const nodes[] = {"N 1", "DC+2", "\xE2\x82\xAC"};
    char ids[32][32];
    int k = 0;
    for (int i = 0; i < 3; i++) {
        snprintf(ids[k], sizeof ids[k], "special-u-%d", i);
        pn_command_t c = pn_it_cmd(PN_CMD_UPDATE, ids[k++], NULL, skus[i],
                                   nodes[i], true, 20 + i);
        pn_it_send(it, &c, false);
        snprintf(ids[k], sizeof ids[k], "special-r-%d", i);
        c = pn_it_cmd(PN_CMD_RESERVE, ids[k++], "ord/1", skus[i], nodes[i], true, 2);
        pn_it_send(it, &c, false);
    }
    pn_it_flush(it);
}

static void send_and_audit(snap_env_t *env, uint64_t seed, int n_streams, int n) {
    pn_it_sender_t *snd = pn_it_send_async(&env->it, seed, n_streams, n, 0);
    PN_ASSERT_EQ_INT(pn_it_send_wait(snd), 0);
}

static void audit_clean(snap_env_t *env) {
    pn_audit_report_t report;
    pn_it_audit(&env->it, 120000, &report);
    PN_ASSERT_EQ_INT(report.violations, 0);
    pn_audit_report_free(&report);
}

/* --- tests ------------------------------------------------------------------ */

static void test_snapshots_equal_the_fold(void) {
    snap_env_t env;
    PN_REQUIRE(env_init(&env, "snap", 3, 2));
    send_and_audit(&env, 11, 30, 2000);
    send_special_streams(&env.it);
    pid_t w = pn_it_worker_start(&env.it, "w1", NULL);
    audit_clean(&env);

    /* Phase 2 runs while the snapshotter starts, is killed and restarts,
     * with readers on its API all along. The readers and what they read
     * are static: a fatal assertion leaves this frame, and the deferred
     * stop joins them after it. */
    static fold_t f;
    fold_events(&env, &f); /* the streams to ask for (phase 1) */
    snap_proc_t sp = {0};
    snap_start(&env, &sp, "s1");
    static readers_t readers;
    readers_start(&readers, sp.port, &f);
    pn_it_defer(readers_stop, &readers);
    pn_it_sender_t *snd = pn_it_send_async(&env.it, 12, 30, 3000, 500);
    PN_ASSERT(wait_ready(sp.port, 60000));
    /* Killed after its first checkpoints, while events still flow. */
    char path[2048];
    stream_path(&f.v[0], path, sizeof path);
    PN_ASSERT(wait_version_at_least(sp.port, path, 1));
    pn_it_sleep_ms(800);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(sp.pid, SIGKILL), 128 + SIGKILL);
    pn_it_sleep_ms(300);
    snap_start(&env, &sp, "s1"); /* same store, same port */
    PN_ASSERT_EQ_INT(pn_it_send_wait(snd), 0);
    audit_clean(&env);
    fold_t all;
    fold_events(&env, &all);
    PN_ASSERT(all.n >= f.n);
    wait_api_converged(sp.port, &all, 90000);
    readers_stop(&readers);
    uint64_t ok = 0;
    for (int i = 0; i < READERS; i++) {
        PN_ASSERT_(readers.h[i].bad == 0, CU_FALSE, "reader %d: %s", i,
                   readers.h[i].bad_detail);
        ok += readers.h[i].ok;
    }
    PN_ASSERT(ok > 0);
    /* The restart resumed from the store, not from the beginning. */
    const char *resumed[] = {"resuming at the local checkpoint", NULL};
    PN_ASSERT(pn_it_log_count(sp.log, resumed) >= 1);

    /* Everything through the API, then the topic. */
    static const char *const skus[] = {"SKU-0", "SKU-5", "a/b \xC3\xA9", "100%"};
    for (size_t i = 0; i < sizeof skus / sizeof skus[0]; i++)
        check_sku_listing(sp.port, &all, skus[i]);
    /* Checkpoints come every interval; give the last one time to land. */
    pn_it_sleep_ms(1000);
    uint64_t records = read_snapshots(&env, &all);
    check_topic_matches(&all);
    PN_ASSERT(records >= all.n);

    /* A clean stop and start publishes nothing again. */
    PN_ASSERT_EQ_INT(pn_it_worker_stop(sp.pid, SIGTERM), 0);
    snap_start(&env, &sp, "s1");
    PN_ASSERT(wait_ready(sp.port, 60000));
    pn_it_sleep_ms(1000);
    PN_ASSERT_EQ_INT(read_snapshots(&env, &all), records);
    wait_api_converged(sp.port, &all, 5000);
    const char *lines[] = {"\"gaps\":0", "snapshotter stopped", NULL};
    PN_ASSERT(pn_it_log_count(sp.log, lines) >= 1);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(sp.pid, SIGTERM), 0);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w, SIGTERM), 0);
    fold_free(&f);
    fold_free(&all);
    pn_it_cleanup(&env.it);
}

/* Events produced straight into the events topic, as a broken producer
 * would. */
static void produce_event(snap_env_t *env, const char *sku, const char *node,
                          int64_t version, pn_event_type_t type,
                          const char *order, int32_t q, int64_t at) {
    pn_event_t ev = {.type = type, .sku_id = pn_str_c(sku),
                     .node_id = pn_str_c(node), .version = version,
                     .command_id = pn_str_c("planted"), .by = pn_str_c("it"),
                     .at_ms = at, .order_id = order ? pn_str_c(order) : PN_STR_NULL,
                     .quantity = q};
    pn_buf_t buf;
    pn_buf_init(&buf, 1 << 20);
    PN_REQUIRE_OK(pn_codec_encode_event(env->it.codec, &ev, &buf));
    char key[PN_STREAM_KEY_MAX];
    size_t key_len = pn_stream_key(ev.sku_id, ev.node_id, key, sizeof key);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        env->it.producer, RD_KAFKA_V_TOPIC(env->it.events),
        RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE(buf.data, buf.len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    PN_ASSERT_EQ_INT(e, 0);
    pn_buf_free(&buf);
}

static int64_t api_version(int port, const char *path, int64_t *reserved) {
    reply_t r;
    http_get(port, path, &r);
    json_t *doc = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
    int64_t v = doc ? json_integer_value(json_object_get(doc, "version")) : -r.status;
    if (reserved)
        *reserved = doc ? json_integer_value(json_object_get(doc, "reserved")) : -1;
    json_decref(doc);
    reply_free(&r);
    return v;
}

static bool wait_version(int port, const char *path, int64_t version) {
    for (int64_t end = pn_mono_ms() + 60000; pn_mono_ms() < end;) {
        if (api_version(port, path, NULL) == version)
            return true;
        pn_it_sleep_ms(200);
    }
    return false;
}

static void test_gap_is_reported(void) {
    snap_env_t env;
    PN_REQUIRE(env_init(&env, "snapgap", 2, 1));
    const int64_t t = 1767225600000LL;
    produce_event(&env, "G", "1", 1, PN_EVT_UPDATED, NULL, 10, t);
    produce_event(&env, "G", "1", 2, PN_EVT_RESERVED, "o1", 3, t + 1);
    produce_event(&env, "G", "1", 4, PN_EVT_RESERVED, "o2", 1, t + 3); /* gap */
    produce_event(&env, "G", "1", 5, PN_EVT_RESERVED, "o3", 1, t + 4);
    produce_event(&env, "H", "1", 1, PN_EVT_UPDATED, NULL, 5, t);
    produce_event(&env, "H", "1", 2, PN_EVT_RESERVED, "o1", 2, t + 1);
    /* Repeats (an at_least_once worker after a crash): skipped by version. */
    produce_event(&env, "H", "1", 1, PN_EVT_UPDATED, NULL, 5, t);
    produce_event(&env, "H", "1", 2, PN_EVT_RESERVED, "o1", 2, t + 1);
    /* Garbage: logged, counted, skipped. */
    PN_ASSERT_EQ_INT(rd_kafka_producev(env.it.producer,
                                       RD_KAFKA_V_TOPIC(env.it.events),
                                       RD_KAFKA_V_KEY("junk", 4),
                                       RD_KAFKA_V_VALUE("\x07garbage", 8),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_END),
                     0);
    pn_it_flush(&env.it);

    snap_proc_t sp = {0};
    snap_start(&env, &sp, "s1");
    PN_ASSERT(wait_ready(sp.port, 60000));
    PN_ASSERT(wait_version(sp.port, "/v1/inventory/H/1", 2));
    pn_it_sleep_ms(600); /* G's checkpoint is the same as H's */
    int64_t reserved;
    PN_ASSERT_EQ_INT(api_version(sp.port, "/v1/inventory/G/1", &reserved), 2);
    PN_ASSERT_EQ_INT(reserved, 3);
    PN_ASSERT_EQ_INT(api_version(sp.port, "/v1/inventory/H/1", &reserved), 2);
    PN_ASSERT_EQ_INT(reserved, 2);
    const char *gap[] = {"stream version gap", "\"stream\":\"G|1\"",
                         "\"stored_version\":2", "\"event_version\":4", NULL};
    PN_ASSERT_EQ_INT(pn_it_log_count(sp.log, gap), 1);
    const char *any_gap[] = {"stream version gap", NULL};
    PN_ASSERT_EQ_INT(pn_it_log_count(sp.log, any_gap), 1); /* not again for v5 */
    const char *junk[] = {"undecodable event skipped", NULL};
    PN_ASSERT_EQ_INT(pn_it_log_count(sp.log, junk), 1);
    /* The gap shows in /metrics too (mirrored twice a second). */
    pn_it_sleep_ms(1200);
    reply_t m;
    http_get(sp.port, "/metrics", &m);
    PN_ASSERT_EQ_INT(m.status, 200);
    PN_ASSERT(m.body && strstr(m.body, "\npanther_snapshotter_gaps_total 1\n"));
    PN_ASSERT(m.body && strstr(m.body, "\npanther_snapshotter_bad_events_total 1\n"));
    reply_free(&m);

    /* The topic holds G at version 2, not past the gap. */
    PN_ASSERT_EQ_INT(pn_it_worker_stop(sp.pid, SIGTERM), 0);
    const char *counted[] = {"snapshotter stopped", "\"gaps\":1",
                             "\"bad_events\":1", "\"skipped\":2", NULL};
    PN_ASSERT_EQ_INT(pn_it_log_count(sp.log, counted), 1);
    fold_t f;
    memset(&f, 0, sizeof f);
    f.codec = env.it.codec;
    fold_find(&f, "G|1", 3, true);
    fold_find(&f, "H|1", 3, true);
    read_snapshots(&env, &f);
    PN_ASSERT_EQ_INT(f.v[0].topic_state.version, 2);
    PN_ASSERT_EQ_INT(f.v[0].topic_state.reserved, 3);
    PN_ASSERT_EQ_INT(f.v[1].topic_state.version, 2);

    /* After a restart the next event of G finds the gap again. */
    produce_event(&env, "G", "1", 6, PN_EVT_RESERVED, "o4", 1, t + 5);
    produce_event(&env, "H", "1", 3, PN_EVT_CANCELLED, "o1", 2, t + 2);
    pn_it_flush(&env.it);
    snap_start(&env, &sp, "s1");
    PN_ASSERT(wait_version(sp.port, "/v1/inventory/H/1", 3));
    PN_ASSERT_EQ_INT(api_version(sp.port, "/v1/inventory/G/1", NULL), 2);
    const char *again[] = {"stream version gap", "\"stream\":\"G|1\"",
                           "\"stored_version\":2", "\"event_version\":6", NULL};
    PN_ASSERT_EQ_INT(pn_it_log_count(sp.log, again), 1);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(sp.pid, SIGTERM), 0);
    fold_free(&f);
    pn_it_cleanup(&env.it);
}

/* A snapshot larger than the producer sends (message.max.bytes) is logged
 * and kept in the local store; every other stream's checkpoints go on. It
 * used to fail each checkpoint, forever. */
static void test_too_large_snapshot_does_not_stall(void) {
    snap_env_t env;
    PN_REQUIRE(env_init(&env, "snapbig", 1, 1));
    const int64_t t = 1767225600000LL;
    produce_event(&env, "BIG", "1", 1, PN_EVT_UPDATED, NULL, 100000, t);
    for (int i = 0; i < 200; i++) { /* ~5 KB of order ids */
        char order[40];
        snprintf(order, sizeof order, "order-%08x-%08x", i * 2654435761u,
                 i * 40503u);
        produce_event(&env, "BIG", "1", 2 + i, PN_EVT_RESERVED, order, 1,
                      t + 1 + i);
    }
    produce_event(&env, "SMALL", "1", 1, PN_EVT_UPDATED, NULL, 5, t);
    pn_it_flush(&env.it);

    snap_proc_t sp = {0};
    snap_start_with(&env, &sp, "s1", "kafka.message.max.bytes=4096");
    PN_ASSERT(wait_ready(sp.port, 60000));
    PN_ASSERT(wait_version(sp.port, "/v1/inventory/SMALL/1", 1));
    PN_ASSERT_EQ_INT(api_version(sp.port, "/v1/inventory/BIG/1", NULL), 201);
    const char *big[] = {"snapshot larger than the producer sends",
                         "\"stream\":\"BIG|1\"", NULL};
    PN_ASSERT_EQ_INT(pn_it_log_count(sp.log, big), 1);
    produce_event(&env, "SMALL", "1", 2, PN_EVT_RESERVED, "o1", 1, t + 1);
    pn_it_flush(&env.it);
    PN_ASSERT(wait_version(sp.port, "/v1/inventory/SMALL/1", 2));
    PN_ASSERT_EQ_INT(pn_it_worker_stop(sp.pid, SIGTERM), 0);

    fold_t f;
    memset(&f, 0, sizeof f);
    f.codec = env.it.codec;
    fold_find(&f, "SMALL|1", 7, true);
    fold_find(&f, "BIG|1", 5, true);
    read_snapshots(&env, &f);
    PN_ASSERT_EQ_INT(f.v[0].topic_state.version, 2);
    PN_ASSERT_EQ_INT(f.v[1].topic_records, 0);
    fold_free(&f);
    pn_it_cleanup(&env.it);
}

static void expect_status(int port, const char *method, const char *path,
                          int status, const char *body_part) {
    reply_t r;
    http_req(port, method, path, &r);
    PN_ASSERT_(r.status == status, CU_FALSE, "%s %.80s: %d, expected %d (%s)",
               method, path, r.status, status, r.body ? r.body : "");
    if (body_part)
        PN_ASSERT_(r.body && strstr(r.body, body_part), CU_FALSE,
                   "%s %.80s: body %s lacks %s", method, path,
                   r.body ? r.body : "", body_part);
    if (status >= 400 && status != 405 && status != 414 && status != 404 &&
        strcmp(method, "HEAD")) {
        json_t *doc = r.body ? json_loads(r.body, 0, NULL) : NULL;
        PN_ASSERT_(json_is_string(json_object_get(doc, "error")), CU_FALSE,
                   "%.80s: error body %s", path, r.body ? r.body : "");
        json_decref(doc);
    }
    reply_free(&r);
}

static void test_read_api(void) {
    snap_env_t env;
    PN_REQUIRE(env_init(&env, "snapapi", 2, 1));
    send_special_streams(&env.it);
    pn_command_t c = pn_it_cmd(PN_CMD_UPDATE, "u1", NULL, "SKU-1", "DC-1", true, 9);
    pn_it_send(&env.it, &c, false);
    pn_it_flush(&env.it);
    pid_t w = pn_it_worker_start(&env.it, "w1", NULL);
    audit_clean(&env);
    fold_t f;
    fold_events(&env, &f);
    snap_proc_t sp = {0};
    snap_start(&env, &sp, "s1");
    PN_ASSERT(wait_ready(sp.port, 60000));
    wait_api_converged(sp.port, &f, 30000);
    int port = sp.port;

    expect_status(port, "GET", "/v1/inventory/SKU-1/DC-1", 200, "\"onHand\":9");
    expect_status(port, "GET", "/v1/inventory/SKU-1", 200, "\"nodes\":[");
    expect_status(port, "GET", "/v1/inventory/SKU-1/DC-1?pretty=1", 200, NULL);
    expect_status(port, "GET", "/v1/inventory/a%2Fb%20%C3%A9/N%201", 200,
                  "\"skuId\":\"a/b \xC3\xA9\"");
    expect_status(port, "GET", "/v1/inventory/a%2fb%20%c3%a9", 200, "\"N 1\"");
    expect_status(port, "GET", "/v1/inventory/100%25/DC%2B2", 200, "\"100%\"");
    expect_status(port, "GET", "/v1/inventory/q%3Fx%23y/%E2%82%AC", 200, NULL);
    /* A raw '+' is a plus, not a space. */
    expect_status(port, "GET", "/v1/inventory/100%25/DC+2", 200, NULL);
    /* Unknown. */
    expect_status(port, "GET", "/v1/inventory/SKU-1/DC-9", 404, "unknown stream");
    expect_status(port, "GET", "/v1/inventory/NOPE", 404, "unknown sku");
    expect_status(port, "GET", "/v1/inventory/SKU-/1", 404, NULL);
    expect_status(port, "GET", "/v1/inventory", 404, NULL);
    expect_status(port, "GET", "/v1/other/SKU-1", 404, NULL);
    /* Malformed. */
    const char *malformed[] = {
        "/v1/inventory/", "/v1/inventory//DC-1", "/v1/inventory/SKU-1/",
        "/v1/inventory/SKU-1/DC-1/", "/v1/inventory/SKU-1/DC-1/x",
        "/v1/inventory/SKU-1//", "/v1/inventory/%zz/DC-1", "/v1/inventory/SKU-1/%4",
        "/v1/inventory/SKU-1/%", "/v1/inventory/%00/DC-1", "/v1/inventory/SKU-1/a%00",
        "/v1/inventory/%FF", "/v1/inventory/SKU-1/%C3%28", "/v1/inventory/%ED%A0%80",
        "/v1/inventory/a%7Cb/DC-1", "/v1/inventory/SKU-1/x%7cy",
        "/v1/inventory/a%7C"};
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++)
        expect_status(port, "GET", malformed[i], 400, NULL);
    /* Ids: 256 bytes is the most, encoded or not. */
    char path[8192], id[1024];
    memset(id, 'x', 256);
    id[256] = '\0';
    snprintf(path, sizeof path, "/v1/inventory/%s/DC-1", id);
    expect_status(port, "GET", path, 404, NULL);
    snprintf(path, sizeof path, "/v1/inventory/%sx/DC-1", id);
    expect_status(port, "GET", path, 400, "256 bytes");
    char *p = path + snprintf(path, sizeof path, "/v1/inventory/SKU-1/");
    for (int i = 0; i < 257; i++)
        p += snprintf(p, 4, "%%%02X", 'y');
    expect_status(port, "GET", path, 400, "256 bytes");
    /* Oversized: 414 past 4 KiB; the server stays fine. */
    memset(id, 'z', 1000);
    id[1000] = '\0';
    snprintf(path, sizeof path, "/v1/inventory/%s%s%s%s%s", id, id, id, id, id);
    expect_status(port, "GET", path, 414, NULL);
    size_t big = 200 * 1024;
    char *huge = malloc(big + 64);
    memcpy(huge, "/v1/inventory/", 14);
    memset(huge + 14, 'h', big);
    huge[14 + big] = '\0';
    reply_t r;
    http_get(port, huge, &r);
    PN_ASSERT_(r.status == 414 || r.status == -1, CU_FALSE, "huge URL: %d", r.status);
    reply_free(&r);
    free(huge);
    /* Methods and bodies. */
    expect_status(port, "POST", "/v1/inventory/SKU-1/DC-1", 405, NULL);
    expect_status(port, "DELETE", "/v1/inventory/SKU-1/DC-1", 405, NULL);
    const char *with_body = "GET /v1/inventory/SKU-1/DC-1 HTTP/1.1\r\nHost: x\r\n"
                            "Content-Length: 3\r\nConnection: close\r\n\r\nabc";
    http_raw(port, with_body, strlen(with_body), &r);
    PN_ASSERT_EQ_INT(r.status, 413);
    reply_free(&r);
    /* HEAD: same status and length, no body. */
    http_req(port, "HEAD", "/v1/inventory/SKU-1/DC-1", &r);
    PN_ASSERT_EQ_INT(r.status, 200);
    PN_ASSERT_EQ_INT(r.body_len, 0);
    PN_ASSERT(strstr(r.head, "Content-Length: ") != NULL);
    reply_free(&r);
    expect_status(port, "HEAD", "/v1/inventory/SKU-1/DC-9", 404, NULL);
    /* Health next to the API. */
    expect_status(port, "GET", "/livez", 200, NULL);
    expect_status(port, "GET", "/readyz", 200, NULL);
    /* Still serving. */
    wait_api_converged(port, &f, 1000);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(sp.pid, SIGTERM), 0);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w, SIGTERM), 0);
    fold_free(&f);
    pn_it_cleanup(&env.it);
}

/* Two snapshotters in one group: each serves its partitions (503 for the
 * others'), together they publish every stream; when one stops for good
 * the other takes over everything. */
static void test_two_snapshotters_share_partitions(void) {
    snap_env_t env;
    PN_REQUIRE(env_init(&env, "snap2", 4, 3));
    send_and_audit(&env, 21, 24, 1500);
    pid_t w = pn_it_worker_start(&env.it, "w1", NULL);
    audit_clean(&env);
    fold_t f;
    fold_events(&env, &f);
    snap_proc_t a = {0}, b = {0};
    snap_start(&env, &a, "a");
    snap_start(&env, &b, "b");
    char why[1024];
    bool split = false;
    for (int64_t end = pn_mono_ms() + 90000; !split && pn_mono_ms() < end;) {
        int served_a = 0, served_b = 0, both = 0;
        for (size_t i = 0; i < f.n; i++) {
            bool in_a = api_differs(a.port, &f.v[i], why, sizeof why) == NULL;
            bool in_b = api_differs(b.port, &f.v[i], why, sizeof why) == NULL;
            served_a += in_a;
            served_b += in_b;
            both += in_a && in_b;
        }
        split = served_a > 0 && served_b > 0 && both == 0 &&
                (size_t)(served_a + served_b) == f.n;
        if (!split)
            pn_it_sleep_ms(500);
    }
    PN_ASSERT(split);
    /* The one that does not own a stream says so. */
    int unavailable = 0;
    for (size_t i = 0; i < f.n; i++) {
        char path[2048];
        stream_path(&f.v[i], path, sizeof path);
        reply_t ra, rb;
        http_get(a.port, path, &ra);
        http_get(b.port, path, &rb);
        unavailable += (ra.status == 503) + (rb.status == 503);
        reply_free(&ra);
        reply_free(&rb);
    }
    PN_ASSERT_EQ_INT(unavailable, f.n);
    pn_it_sleep_ms(1000);
    read_snapshots(&env, &f);
    check_topic_matches(&f);
    /* b leaves for good: after the session timeout, a has everything. */
    PN_ASSERT_EQ_INT(pn_it_worker_stop(b.pid, SIGTERM), 0);
    wait_api_converged(a.port, &f, 60000);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(a.pid, SIGTERM), 0);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w, SIGTERM), 0);
    fold_free(&f);
    pn_it_cleanup(&env.it);
}

static void test_missing_topic_exits_2(void) {
    snap_env_t env;
    PN_REQUIRE(env_init(&env, "snapcfg", 1, 1));
    char events[300], snaps[300];
    snprintf(events, sizeof events, "topics.events=%s", env.it.events);
    snprintf(snaps, sizeof snaps, "topics.snapshots=%sno.such.topic", env.it.prefix);
    char store[4200], boot[300];
    snprintf(store, sizeof store, "snapshotter.store.path=%s/s", env.it.dir);
    snprintf(boot, sizeof boot, "kafka.bootstrap.servers=%s", env.it.bootstrap);
    const char *args[] = {"snapshotter", "--set", events, "--set", snaps,
                          "--set", store, "--set", boot, "--set",
                          "snapshotter.http.port=0", NULL};
    PN_ASSERT_EQ_INT(pn_it_run_panther(&env.it, args), 2);
    const char *bad[] = {"snapshotter", "--set", "snapshotter.interval.ms=0", NULL};
    PN_ASSERT_EQ_INT(pn_it_run_panther(&env.it, bad), 2);
    pn_it_cleanup(&env.it);
}

static const pn_test_case_t cases[] = {
    {"snapshots equal the fold; kill -9 loses and repeats nothing",
     test_snapshots_equal_the_fold},
    {"a version gap is reported, not papered over", test_gap_is_reported},
    {"a snapshot too large to publish does not stall the others",
     test_too_large_snapshot_does_not_stall},
    {"read API: status codes, JSON, malformed and oversized requests",
     test_read_api},
    {"two snapshotters share the partitions",
     test_two_snapshotters_share_partitions},
    {"missing topic or bad setting exits 2", test_missing_topic_exits_2},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {{"snapshotter", cases}, {NULL, NULL}};
