/*
 * panther bench passthrough-worker: the transactional baseline of
 * `panther bench e2e` (hidden; the bench starts it as a process).
 *
 * The worker's Kafka loop with nothing of Panther inside it: the worker's
 * own client settings (src/worker_clients.c: read_committed, static
 * membership, idempotent transactional producer; --kafka as the worker's
 * kafka.*) and the same pipelined loop: poll continuously, begin a
 * transaction with the first record, produce each record as it is polled,
 * and commit (send_offsets_to_transaction, commit) when --batch records
 * are in it or the commit interval is due. Each input record is copied to the
 * same partition of the output topic with its key and value and, as the
 * worker does, headers naming the source partition and offset: one output
 * per input, no decoding, no state, no store.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "bench_util.h"
#include "panther/kafka.h"
#include "panther/log.h"
#include "clock.h"
#include "commit_policy.h"
#include "worker_clients.h"

#define PT_MAX_KAFKA 16

typedef struct pt_options {
    const char *bootstrap;
    const char *input;
    const char *output;
    const char *group;
    const char *instance;
    uint64_t batch;
    uint64_t commit_interval_ms;
    pn_kafka_prop_t kafka[PT_MAX_KAFKA]; /* --kafka NAME=VALUE */
    size_t n_kafka;
} pt_options_t;

typedef struct passthrough {
    pt_options_t o;
    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    /* The open transaction: records are produced as they are polled. */
    bool txn_open;
    int64_t deadline_ms;
    int64_t commit_started_ms; /* of the last commit, 0 before the first */
    uint64_t txn_records;
    rd_kafka_topic_partition_list_t *offsets; /* last offset + 1 */
    uint64_t records;
    uint64_t commits;
    uint64_t aborts;
} passthrough_t;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

/* A client made from one of the worker's configurations. */
static rd_kafka_t *client(rd_kafka_type_t type, pn_err_t err,
                          rd_kafka_conf_t *conf, const char *why_conf) {
    if (err) {
        fprintf(stderr, "passthrough: %s\n", why_conf);
        return NULL;
    }
    char why[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, why, sizeof why);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "passthrough: cannot create a client: %s\n", why);
    }
    return rk;
}

/* The worker's own client settings (src/worker_clients.c), so only
 * Panther's work differs; --kafka settings as the worker's kafka.*. */
static int clients_new(passthrough_t *pt) {
    char txn_id[512], why[512];
    snprintf(txn_id, sizeof txn_id, "%s-%s", pt->o.group, pt->o.instance);
    pn_kafka_prop_t user[1 + PT_MAX_KAFKA] = {
        {"bootstrap.servers", pt->o.bootstrap}};
    for (size_t i = 0; i < pt->o.n_kafka; i++)
        user[1 + i] = pt->o.kafka[i];
    pn_worker_clients_spec_t spec = {
        .group_id = pt->o.group, .instance_id = pt->o.instance,
        .txn_id = txn_id, .commit_interval_ms = (int)pt->o.commit_interval_ms,
        .user = user, .n_user = 1 + pt->o.n_kafka};
    rd_kafka_conf_t *conf = NULL;
    pn_err_t err = pn_worker_consumer_conf(&spec, &conf, why, sizeof why);
    pt->consumer = client(RD_KAFKA_CONSUMER, err, conf, why);
    err = pn_worker_producer_conf(&spec, &conf, why, sizeof why);
    pt->producer = client(RD_KAFKA_PRODUCER, err, conf, why);
    if (!pt->consumer || !pt->producer)
        return 1;
    rd_kafka_poll_set_consumer(pt->consumer);
    rd_kafka_error_t *error = rd_kafka_init_transactions(pt->producer, 60000);
    if (error) {
        fprintf(stderr, "passthrough: init_transactions: %s\n",
                rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return 1;
    }
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, pt->o.input, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t rerr = rd_kafka_subscribe(pt->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (rerr) {
        fprintf(stderr, "passthrough: subscribe: %s\n", rd_kafka_err2str(rerr));
        return 1;
    }
    return 0;
}

/* panther.source.partition / .offset, as the worker writes them (and the
 * latency reader matches outputs to commands by them). */
static rd_kafka_headers_t *source_headers(const rd_kafka_message_t *m) {
    rd_kafka_headers_t *h = rd_kafka_headers_new(2);
    char text[32];
    int n = snprintf(text, sizeof text, "%" PRId32, m->partition);
    rd_kafka_header_add(h, PN_HEADER_SOURCE_PARTITION, -1, text, n);
    n = snprintf(text, sizeof text, "%" PRId64, m->offset);
    rd_kafka_header_add(h, PN_HEADER_SOURCE_OFFSET, -1, text, n);
    return h;
}

static rd_kafka_error_t *produce_one(passthrough_t *pt,
                                     const rd_kafka_message_t *m) {
    rd_kafka_headers_t *h = source_headers(m);
    for (;;) {
        rd_kafka_resp_err_t rerr = rd_kafka_producev(
            pt->producer, RD_KAFKA_V_TOPIC(pt->o.output),
            RD_KAFKA_V_PARTITION(m->partition),
            RD_KAFKA_V_KEY(m->key, m->key_len),
            RD_KAFKA_V_VALUE(m->payload, m->len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
            RD_KAFKA_V_END);
        if (rerr == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(pt->producer, 50);
            continue;
        }
        if (rerr) {
            rd_kafka_headers_destroy(h);
            return rd_kafka_error_new(rerr, "produce: %s",
                                      rd_kafka_err2str(rerr));
        }
        return NULL;
    }
}

static void txn_close(passthrough_t *pt) {
    pt->txn_open = false;
    pt->txn_records = 0;
    if (pt->offsets)
        rd_kafka_topic_partition_list_destroy(pt->offsets);
    pt->offsets = NULL;
}

/* The worker's txn_deadline (src/commit_policy.h). */
static int64_t txn_deadline(const passthrough_t *pt,
                            const rd_kafka_message_t *m, int64_t now) {
    return pn_commit_deadline(now, (int64_t)pt->o.commit_interval_ms,
                              pt->commit_started_ms, pn_kafka_record_age_ms(m));
}

/* The worker's txn_add: a transaction begins with the first record, and
 * each record is produced as it is polled. */
static rd_kafka_error_t *txn_add(passthrough_t *pt,
                                 const rd_kafka_message_t *m) {
    if (!pt->txn_open) {
        rd_kafka_error_t *error = rd_kafka_begin_transaction(pt->producer);
        if (error)
            return error;
        pt->txn_open = true;
        pt->deadline_ms = txn_deadline(pt, m, pn_mono_ms());
        pt->offsets = rd_kafka_topic_partition_list_new(8);
    }
    const char *topic = rd_kafka_topic_name(m->rkt);
    rd_kafka_topic_partition_t *tp =
        rd_kafka_topic_partition_list_find(pt->offsets, topic, m->partition);
    if (!tp)
        tp = rd_kafka_topic_partition_list_add(pt->offsets, topic, m->partition);
    tp->offset = m->offset + 1;
    pt->txn_records++;
    return produce_one(pt, m);
}

static bool txn_due(const passthrough_t *pt) {
    return pt->txn_open &&
           (stop_requested || pt->txn_records >= pt->o.batch ||
            pn_mono_ms() >= pt->deadline_ms);
}

static rd_kafka_error_t *txn_commit(passthrough_t *pt) {
    pt->commit_started_ms = pn_mono_ms();
    rd_kafka_consumer_group_metadata_t *cgmd =
        rd_kafka_consumer_group_metadata(pt->consumer);
    rd_kafka_error_t *error = rd_kafka_send_offsets_to_transaction(
        pt->producer, pt->offsets, cgmd, -1);
    rd_kafka_consumer_group_metadata_destroy(cgmd);
    while (!error) {
        error = rd_kafka_commit_transaction(pt->producer, -1);
        if (!error || !rd_kafka_error_is_retriable(error))
            break;
        rd_kafka_error_destroy(error);
        error = NULL;
    }
    if (!error) {
        pt->records += pt->txn_records;
        pt->commits++;
        txn_close(pt);
    }
    return error;
}

/* After an abortable error: abort, and consume again from the committed
 * offsets, as the worker does. */
static int recover(passthrough_t *pt, rd_kafka_error_t *error) {
    fprintf(stderr, "passthrough: batch failed: %s\n",
            rd_kafka_error_string(error));
    bool abortable = rd_kafka_error_txn_requires_abort(error);
    rd_kafka_error_destroy(error);
    txn_close(pt);
    if (!abortable)
        return 1;
    pt->aborts++;
    error = rd_kafka_abort_transaction(pt->producer, -1);
    if (error) {
        fprintf(stderr, "passthrough: abort: %s\n", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return 1;
    }
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(pt->consumer, &parts) || !parts)
        return 1;
    rd_kafka_committed(pt->consumer, parts, 30000);
    for (int i = 0; i < parts->cnt; i++)
        if (parts->elems[i].offset < 0)
            parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
    error = rd_kafka_seek_partitions(pt->consumer, parts, 30000);
    rd_kafka_topic_partition_list_destroy(parts);
    if (error)
        rd_kafka_error_destroy(error);
    return 0;
}

/* The worker's poll_timeout: never past the open transaction's deadline. */
static int poll_timeout(const passthrough_t *pt) {
    if (!pt->txn_open)
        return 100;
    int64_t left = pt->deadline_ms - pn_mono_ms();
    return left <= 0 ? 0 : left > 100 ? 100 : (int)left;
}

/* The worker's poll_once. */
static rd_kafka_error_t *poll_once(passthrough_t *pt) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(pt->consumer,
                                                   poll_timeout(pt));
    if (!m)
        return NULL;
    rd_kafka_error_t *error = NULL;
    if (!m->err)
        error = txn_add(pt, m);
    else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        fprintf(stderr, "passthrough: consumer: %s\n",
                rd_kafka_message_errstr(m));
    rd_kafka_message_destroy(m);
    return error;
}

/* The worker's loop (pipelined): poll continuously, commit on cadence. */
static int run(passthrough_t *pt) {
    int rc = 0;
    while (!stop_requested && !rc) {
        rd_kafka_error_t *error = poll_once(pt);
        if (!error && txn_due(pt))
            error = txn_commit(pt);
        if (error)
            rc = recover(pt, error);
    }
    if (!rc && pt->txn_open) {
        rd_kafka_error_t *error = txn_commit(pt);
        if (error)
            rc = recover(pt, error);
    }
    txn_close(pt);
    rd_kafka_consumer_close(pt->consumer);
    rd_kafka_flush(pt->producer, 10000);
    fprintf(stderr, "passthrough: stopped: %llu records, %llu commits, "
                    "%llu aborts\n",
            (unsigned long long)pt->records, (unsigned long long)pt->commits,
            (unsigned long long)pt->aborts);
    return rc;
}

static int parse_args(int argc, char **argv, pt_options_t *o) {
    static const struct option longopts[] = {
        {"bootstrap", required_argument, NULL, 'B'},
        {"input", required_argument, NULL, 'i'},
        {"output", required_argument, NULL, 'o'},
        {"group", required_argument, NULL, 'g'},
        {"instance", required_argument, NULL, 'I'},
        {"batch", required_argument, NULL, 'b'},
        {"commit-interval-ms", required_argument, NULL, 'c'},
        {"kafka", required_argument, NULL, 'k'},
        {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'B': o->bootstrap = optarg; break;
        case 'i': o->input = optarg; break;
        case 'o': o->output = optarg; break;
        case 'g': o->group = optarg; break;
        case 'I': o->instance = optarg; break;
        case 'k': {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || o->n_kafka == PT_MAX_KAFKA)
                return 2;
            *eq = '\0';
            o->kafka[o->n_kafka++] = (pn_kafka_prop_t){optarg, eq + 1};
            break;
        }
        case 'b':
        case 'c':
            if (!pn_bench_parse_u64(optarg, c == 'b' ? &o->batch
                                                     : &o->commit_interval_ms) ||
                (c == 'b' && o->batch == 0))
                return 2;
            break;
        default:
            return 2;
        }
    }
    if (optind < argc || !o->bootstrap || !o->input || !o->output || !o->group)
        return 2;
    return 0;
}

int pn_bench_passthrough_main(int argc, char **argv) {
    passthrough_t pt = {.o = {.instance = "passthrough-0", .batch = 5000,
                              .commit_interval_ms = 100}};
    if (parse_args(argc, argv, &pt.o)) {
        fprintf(stderr,
                "usage: panther bench passthrough-worker --bootstrap HOSTS "
                "--input TOPIC --output TOPIC --group G [--instance I] "
                "[--batch N] [--commit-interval-ms MS] [--kafka NAME=VALUE]...\n"
                "(started by 'panther bench e2e' as its baseline)\n");
        return 2;
    }
    pn_log_set_level(PN_LOG_WARN); /* librdkafka's info lines */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int rc = clients_new(&pt);
    if (!rc)
        rc = run(&pt);
    if (pt.consumer)
        rd_kafka_destroy(pt.consumer);
    if (pt.producer)
        rd_kafka_destroy(pt.producer);
    return rc;
}
