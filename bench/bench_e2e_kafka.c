/*
 * Kafka and process plumbing of `panther bench e2e` (see bench_e2e.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_e2e.h"
#include "bench_util.h"
#include "panther/kafka.h"
#include "panther/log.h"
#include "clock.h"

int64_t pn_e2e_realtime_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void pn_e2e_clients_quiet(void) { pn_log_set_level(PN_LOG_WARN); }

/* --- topics ------------------------------------------------------------------ */

static pn_err_t client_new(const char *bootstrap, rd_kafka_type_t type,
                           const pn_kafka_prop_t *defaults, size_t n_defaults,
                           const pn_kafka_prop_t *fixed, size_t n_fixed,
                           rd_kafka_t **rkp, char *errstr,
                           size_t errstr_size) {
    const pn_kafka_prop_t user[] = {{"bootstrap.servers", bootstrap}};
    rd_kafka_conf_t *conf;
    pn_err_t err = pn_kafka_conf_new(defaults, n_defaults, user, 1, fixed,
                                     n_fixed, &conf, errstr, errstr_size);
    if (err)
        return err;
    char why[512];
    *rkp = rd_kafka_new(type, conf, why, sizeof why);
    if (!*rkp) {
        rd_kafka_conf_destroy(conf);
        return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                          "cannot create a Kafka client: %s", why);
    }
    return PN_ERR_OK;
}

static pn_err_t create_request(rd_kafka_t *rk, const char *const *names,
                               size_t n, int partitions, char *errstr,
                               size_t errstr_size) {
    rd_kafka_NewTopic_t **topics = calloc(n, sizeof *topics);
    if (!topics)
        return pn_err_set(errstr, errstr_size, PN_ERR_NOMEM, "out of memory");
    pn_err_t err = PN_ERR_OK;
    char why[512];
    for (size_t i = 0; i < n && !err; i++)
        if (!(topics[i] = rd_kafka_NewTopic_new(names[i], partitions, 1, why,
                                                sizeof why)))
            err = pn_err_set(errstr, errstr_size, PN_ERR_CONFIG,
                             "topic '%s': %s", names[i], why);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_event_t *ev = NULL;
    if (!err) {
        rd_kafka_CreateTopics(rk, topics, n, NULL, q);
        ev = rd_kafka_queue_poll(q, 60000);
        if (!ev)
            err = pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                             "CreateTopics: no answer in 60 s");
    }
    const rd_kafka_CreateTopics_result_t *res =
        ev ? rd_kafka_event_CreateTopics_result(ev) : NULL;
    if (ev && rd_kafka_event_error(ev))
        err = pn_err_set(errstr, errstr_size, PN_ERR_KAFKA, "CreateTopics: %s",
                         rd_kafka_event_error_string(ev));
    size_t cnt = 0;
    const rd_kafka_topic_result_t **tr =
        res && !err ? rd_kafka_CreateTopics_result_topics(res, &cnt) : NULL;
    for (size_t i = 0; i < cnt && !err; i++)
        if (rd_kafka_topic_result_error(tr[i]))
            err = pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                             "create topic '%s': %s",
                             rd_kafka_topic_result_name(tr[i]),
                             rd_kafka_topic_result_error_string(tr[i]));
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    for (size_t i = 0; i < n; i++)
        if (topics[i])
            rd_kafka_NewTopic_destroy(topics[i]);
    free(topics);
    return err;
}

pn_err_t pn_e2e_create_topics(const char *bootstrap, const char *const *names,
                              size_t n, int partitions, char *errstr,
                              size_t errstr_size) {
    rd_kafka_t *rk;
    pn_err_t err = client_new(bootstrap, RD_KAFKA_PRODUCER, NULL, 0, NULL, 0,
                              &rk, errstr, errstr_size);
    if (err)
        return err;
    err = create_request(rk, names, n, partitions, errstr, errstr_size);
    /* The controller has them; wait until the broker's metadata does too,
     * or a worker started now would find them missing and refuse to run. */
    for (size_t i = 0; i < n && !err; i++) {
        int32_t count = 0;
        for (int tries = 0;; tries++) {
            char why[512];
            pn_err_t e = pn_kafka_partition_count(rk, names[i], 5000, &count,
                                                  why, sizeof why);
            if (!e && count == partitions)
                break;
            if (tries >= 300) {
                err = pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                                 "topic '%s' not in the metadata after 30 s: %s",
                                 names[i], e ? why : "partition count differs");
                break;
            }
            sleep_ms(100);
        }
    }
    rd_kafka_destroy(rk);
    return err;
}

void pn_e2e_delete_topics(const char *bootstrap, const char *const *names,
                          size_t n) {
    rd_kafka_t *rk;
    char err[512];
    if (client_new(bootstrap, RD_KAFKA_PRODUCER, NULL, 0, NULL, 0, &rk, err,
                   sizeof err))
        return;
    rd_kafka_DeleteTopic_t **topics = calloc(n, sizeof *topics);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    for (size_t i = 0; topics && i < n; i++)
        topics[i] = rd_kafka_DeleteTopic_new(names[i]);
    if (topics) {
        rd_kafka_DeleteTopics(rk, topics, n, NULL, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
        if (ev)
            rd_kafka_event_destroy(ev);
        for (size_t i = 0; i < n; i++)
            rd_kafka_DeleteTopic_destroy(topics[i]);
    }
    free(topics);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

/* --- producing --------------------------------------------------------------- */

static void count_failed_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                                  void *opaque) {
    (void)rk;
    if (m->err && opaque)
        (*(uint64_t *)opaque)++;
}

pn_err_t pn_e2e_producer_new(const char *bootstrap, int linger_ms, bool bulk,
                             pn_e2e_delivery_fn on_delivery, void *opaque,
                             rd_kafka_t **rkp, char *errstr,
                             size_t errstr_size) {
    char linger[16];
    snprintf(linger, sizeof linger, "%d", linger_ms);
    const pn_kafka_prop_t defaults[] = {
        {"queue.buffering.max.messages", "500000"},
        {"batch.size", "1000000"}, /* bulk only */
    };
    const pn_kafka_prop_t fixed[] = {
        {"enable.idempotence", "true"},
        {"partitioner", "murmur2_random"},
        {"linger.ms", linger},
    };
    const pn_kafka_prop_t user[] = {{"bootstrap.servers", bootstrap}};
    rd_kafka_conf_t *conf;
    pn_err_t err = pn_kafka_conf_new(defaults, bulk ? 2 : 1, user, 1, fixed, 3,
                                     &conf, errstr, errstr_size);
    if (err)
        return err;
    if (on_delivery)
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, opaque);
    char why[512];
    if (!(*rkp = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why))) {
        rd_kafka_conf_destroy(conf);
        return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                          "cannot create the producer: %s", why);
    }
    return PN_ERR_OK;
}

pn_err_t pn_e2e_produce(rd_kafka_t *rk, const char *topic, const pn_buf_t *key,
                        const pn_buf_t *value, void *opaque, char *errstr,
                        size_t errstr_size) {
    for (;;) {
        rd_kafka_resp_err_t rerr = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
            RD_KAFKA_V_KEY(key->data, key->len),
            RD_KAFKA_V_VALUE(value->data, value->len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(opaque),
            RD_KAFKA_V_END);
        if (rerr == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(rk, 10);
            continue;
        }
        if (rerr)
            return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                              "produce to '%s': %s", topic,
                              rd_kafka_err2str(rerr));
        return PN_ERR_OK;
    }
}

pn_err_t pn_e2e_preproduce(const char *bootstrap, const char *topic,
                           uint64_t seed, uint64_t streams, uint64_t n,
                           bool progress, char *errstr, size_t errstr_size) {
    uint64_t failed = 0;
    rd_kafka_t *rk;
    /* A bulk load: bigger batches than a latency-minded producer. */
    pn_err_t err = pn_e2e_producer_new(bootstrap, 20, true,
                                       count_failed_delivery, &failed, &rk,
                                       errstr, errstr_size);
    if (err)
        return err;
    pn_e2e_gen_t g;
    pn_buf_t key, value;
    pn_buf_init(&key, 4096);
    pn_buf_init(&value, 1 << 20);
    err = pn_e2e_gen_init(&g, seed, streams, errstr, errstr_size);
    pn_bench_progress_t prog;
    pn_bench_progress_start(&prog, "  produce commands", n, progress);
    int64_t at_ms = pn_e2e_realtime_us() / 1000;
    for (uint64_t i = 0; i < n && !err; i++) {
        err = pn_e2e_gen_next(&g, "bench", at_ms + (int64_t)(i / 1000), &key,
                              &value);
        if (err)
            pn_err_set(errstr, errstr_size, err, "cannot encode a command");
        else
            err = pn_e2e_produce(rk, topic, &key, &value, NULL, errstr,
                                 errstr_size);
        if ((i & 1023) == 0) {
            rd_kafka_poll(rk, 0);
            pn_bench_progress_update(&prog, i);
        }
    }
    if (!err && rd_kafka_flush(rk, 120000))
        err = pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                         "flush: %d records undelivered after 120 s",
                         rd_kafka_outq_len(rk));
    if (!err && failed)
        err = pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                         "%" PRIu64 " commands failed delivery", failed);
    pn_bench_progress_end(&prog);
    pn_e2e_gen_free(&g);
    pn_buf_free(&key);
    pn_buf_free(&value);
    rd_kafka_destroy(rk);
    return err;
}

/* --- the workload ------------------------------------------------------------ */

static uint64_t next_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t gcd(uint64_t a, uint64_t b) {
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

pn_err_t pn_e2e_gen_init(pn_e2e_gen_t *g, uint64_t seed, uint64_t streams,
                         char *errstr, size_t errstr_size) {
    memset(g, 0, sizeof *g);
    g->rng = seed;
    g->streams = streams;
    g->stride = (0x9e3779b97f4a7c15ull % streams) | 1;
    while (gcd(g->stride, streams) != 1)
        g->stride++;
    for (int i = 0; i < PN_E2E_RESEND_RING; i++) {
        pn_buf_init(&g->ring_value[i], 1 << 20);
        pn_buf_init(&g->ring_key[i], 4096);
    }
    pn_codec_config_t cc = {0};
    pn_err_t err = pn_codec_new(&cc, &g->codec, errstr, errstr_size);
    g->last_order = calloc(streams, sizeof *g->last_order);
    if (!err && !g->last_order)
        err = pn_err_set(errstr, errstr_size, PN_ERR_NOMEM, "out of memory");
    if (err)
        pn_e2e_gen_free(g);
    return err;
}

void pn_e2e_gen_free(pn_e2e_gen_t *g) {
    for (int i = 0; i < PN_E2E_RESEND_RING; i++) {
        pn_buf_free(&g->ring_value[i]);
        pn_buf_free(&g->ring_key[i]);
    }
    pn_codec_free(g->codec);
    free(g->last_order);
    g->codec = NULL;
    g->last_order = NULL;
}

static pn_err_t copy_buf(pn_buf_t *dst, const pn_buf_t *src) {
    pn_buf_reset(dst);
    return pn_buf_append(dst, src->data, src->len);
}

pn_err_t pn_e2e_gen_next(pn_e2e_gen_t *g, const char *id_tag, int64_t at_ms,
                         pn_buf_t *key, pn_buf_t *value) {
    uint64_t n = g->next++;
    unsigned roll = (unsigned)(next_rand(&g->rng) % 100);
    if (n >= g->streams + PN_E2E_RESEND_RING && roll < 2) {
        /* An upstream retry: the same record again. */
        size_t i = (size_t)(next_rand(&g->rng) % PN_E2E_RESEND_RING);
        g->resends++;
        pn_err_t err = copy_buf(key, &g->ring_key[i]);
        return err ? err : copy_buf(value, &g->ring_value[i]);
    }
    uint64_t s = n < g->streams ? (n * g->stride) % g->streams
                                : next_rand(&g->rng) % g->streams;
    char id[64], sku[32], node[16], order[48];
    snprintf(id, sizeof id, "%s-%" PRIu64, id_tag, n);
    snprintf(sku, sizeof sku, "SKU-%07" PRIu64, s / 4);
    snprintf(node, sizeof node, "DC-%" PRIu64, s % 4);
    pn_command_t c = {.id = pn_str_c(id), .sku_id = pn_str_c(sku),
                      .node_id = pn_str_c(node), .by = pn_str_c("bench-e2e"),
                      .at_ms = at_ms, .has_quantity = true};
    roll = (unsigned)(next_rand(&g->rng) % 100);
    if (n < g->streams || roll < 10) {
        c.type = PN_CMD_UPDATE;
        c.quantity = 500 + (int32_t)(next_rand(&g->rng) % 1000);
    } else if (roll < 60) {
        c.type = PN_CMD_RESERVE;
        c.quantity = 1 + (int32_t)(next_rand(&g->rng) % 5);
        g->last_order[s]++;
    } else {
        c.type = roll < 80 ? PN_CMD_CANCEL : PN_CMD_SHIP;
        c.has_quantity = next_rand(&g->rng) % 2;
        c.quantity = 1 + (int32_t)(next_rand(&g->rng) % 2);
    }
    if (c.type != PN_CMD_UPDATE) {
        snprintf(order, sizeof order, "ord-%" PRIu64 "-%" PRIu32, s,
                 g->last_order[s]);
        c.order_id = pn_str_c(order);
    }
    pn_buf_reset(key);
    pn_buf_reset(value);
    pn_err_t err = pn_buf_appendf(key, "%s|%s", sku, node);
    if (!err)
        err = pn_codec_encode_command(g->codec, &c, PN_FRAMING_PLAIN, 0, value);
    size_t slot = (size_t)(n % PN_E2E_RESEND_RING);
    if (!err)
        err = copy_buf(&g->ring_key[slot], key);
    if (!err)
        err = copy_buf(&g->ring_value[slot], value);
    return err;
}

/* --- reading the output ------------------------------------------------------ */

pn_err_t pn_e2e_reader_new(const char *bootstrap, const char *topic,
                           int partitions, rd_kafka_t **rkp, char *errstr,
                           size_t errstr_size) {
    char group[64];
    /* Partitions are assigned, not subscribed: nothing is committed under
     * this group id, librdkafka merely wants one. */
    snprintf(group, sizeof group, "panther-bench-e2e-%ld", (long)getpid());
    const pn_kafka_prop_t defaults[] = {
        /* A reply reader that cares about latency: the broker answers as
         * soon as records are committed, or after this long when idle. */
        {"fetch.wait.max.ms", "100"},
    };
    const pn_kafka_prop_t fixed[] = {
        {"group.id", group},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"isolation.level", "read_committed"},
        {"auto.offset.reset", "earliest"},
    };
    pn_err_t err = client_new(bootstrap, RD_KAFKA_CONSUMER, defaults, 1, fixed,
                              sizeof fixed / sizeof fixed[0], rkp, errstr,
                              errstr_size);
    if (err)
        return err;
    rd_kafka_poll_set_consumer(*rkp);
    rd_kafka_topic_partition_list_t *parts =
        rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t rerr = rd_kafka_assign(*rkp, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (rerr) {
        rd_kafka_destroy(*rkp);
        *rkp = NULL;
        return pn_err_set(errstr, errstr_size, PN_ERR_KAFKA,
                          "cannot assign '%s': %s", topic,
                          rd_kafka_err2str(rerr));
    }
    return PN_ERR_OK;
}

pn_err_t pn_e2e_count_output(const pn_e2e_count_spec_t *spec,
                             pn_e2e_count_t *out, char *errstr,
                             size_t errstr_size) {
    memset(out, 0, sizeof *out);
    out->first_create_ms = INT64_MAX;
    rd_kafka_t *rk;
    pn_err_t err = pn_e2e_reader_new(spec->bootstrap, spec->topic,
                                     spec->partitions, &rk, errstr,
                                     errstr_size);
    if (err)
        return err;
    pn_bench_progress_t prog;
    pn_bench_progress_start(&prog, spec->what, spec->target, spec->progress);
    double deadline = pn_mono_s() + spec->timeout_s, next_check = 0;
    while (out->records < spec->target) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (m && !m->err) {
            rd_kafka_timestamp_type_t tt;
            int64_t ts = rd_kafka_message_timestamp(m, &tt);
            if (ts >= 0 && ts < out->first_create_ms)
                out->first_create_ms = ts;
            if (out->records++ == 0 && spec->on_first)
                spec->on_first(spec->opaque);
            if (out->records >= spec->target)
                out->done_us = pn_e2e_realtime_us();
        }
        if (m)
            rd_kafka_message_destroy(m);
        double now = pn_mono_s();
        if (now < next_check)
            continue;
        next_check = now + 0.5;
        pn_bench_progress_update(&prog, out->records);
        if (spec->pid > 0 && !pn_e2e_alive(spec->pid)) {
            err = pn_err_set(errstr, errstr_size, PN_ERR_STATE,
                             "%s: the process under test exited after %" PRIu64
                             " of %" PRIu64 " records",
                             spec->what, out->records, spec->target);
            break;
        }
        if (now > deadline) {
            err = pn_err_set(errstr, errstr_size, PN_ERR_STATE,
                             "%s: only %" PRIu64 " of %" PRIu64
                             " records after %.0f s",
                             spec->what, out->records, spec->target,
                             spec->timeout_s);
            break;
        }
    }
    pn_bench_progress_end(&prog);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return err;
}

/* --- processes --------------------------------------------------------------- */

pid_t pn_e2e_spawn_self(const char *const *args, const char *log_path) {
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        return -1;
    self[len] = '\0';
    const char *argv[128] = {self};
    size_t argc = 1;
    for (size_t i = 0; args[i] && argc < 127; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* Only async-signal-safe calls between fork and exec: the parent has
     * librdkafka threads whose locks may be held. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(127);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    execv(self, (char *const *)argv);
    _exit(127);
}

static int exit_code(int status) {
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool pn_e2e_alive(pid_t pid) {
    int status;
    return waitpid(pid, &status, WNOHANG) == 0;
}

int pn_e2e_wait(pid_t pid, double timeout_s) {
    int status = 0;
    double deadline = pn_mono_s() + timeout_s;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return exit_code(status);
        if (r < 0)
            return -1;
        if (pn_mono_s() >= deadline)
            return -2;
        sleep_ms(50);
    }
}

int pn_e2e_stop(pid_t pid, double timeout_s) {
    if (pid <= 0)
        return -1;
    kill(pid, SIGTERM);
    int rc = pn_e2e_wait(pid, timeout_s);
    if (rc != -2)
        return rc;
    kill(pid, SIGKILL);
    int status = 0;
    return waitpid(pid, &status, 0) == pid ? exit_code(status) : -1;
}

double pn_e2e_peak_rss_mib(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    double mib = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long kib;
        if (sscanf(line, "VmHWM: %llu kB", &kib) == 1) {
            mib = (double)kib / 1024.0;
            break;
        }
    }
    fclose(f);
    return mib;
}

/* utime + stime of one /proc stat file, in clock ticks. */
static unsigned long long stat_ticks(const char *path) {
    char buf[2048];
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after "(comm)": state is field 3, utime 14, stime 15. */
    char *p = strrchr(buf, ')');
    unsigned long long utime = 0, stime = 0;
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                            "%llu %llu", &utime, &stime) != 2)
        return 0;
    return utime + stime;
}

double pn_e2e_cpu_seconds(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    return (double)stat_ticks(path) / (double)sysconf(_SC_CLK_TCK);
}

double pn_e2e_jit_cpu_seconds(pid_t pid) {
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%ld/task", (long)pid);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    unsigned long long ticks = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[sizeof dir + sizeof e->d_name + 8], comm[64] = "";
        snprintf(path, sizeof path, "%s/%s/comm", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        bool jit = fgets(comm, sizeof comm, f) &&
                   (!strncmp(comm, "C1 CompilerThre", 15) ||
                    !strncmp(comm, "C2 CompilerThre", 15));
        fclose(f);
        if (jit) {
            snprintf(path, sizeof path, "%s/%s/stat", dir, e->d_name);
            ticks += stat_ticks(path);
        }
    }
    closedir(d);
    return (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

void pn_e2e_thread_sched(pid_t pid, double *run_s, double *wait_s) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/schedstat", (long)pid);
    unsigned long long run = 0, wait = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%llu %llu", &run, &wait) != 2)
            run = wait = 0;
        fclose(f);
    }
    *run_s = (double)run / 1e9;
    *wait_s = (double)wait / 1e9;
}

void pn_e2e_cpu_sample(pn_e2e_cpu_sample_t *s) {
    memset(s, 0, sizeof *s);
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return;
    unsigned long long v[8] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
                   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 5)
        return;
    for (int i = 0; i < 8; i++)
        s->total += v[i];
    s->busy = s->total - v[3] - v[4]; /* minus idle and iowait */
}

double pn_e2e_self_cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double pn_e2e_load1(void) {
    double load[1] = {0};
    return getloadavg(load, 1) == 1 ? load[0] : 0;
}

double pn_e2e_cpu_busy(const pn_e2e_cpu_sample_t *a,
                       const pn_e2e_cpu_sample_t *b) {
    uint64_t total = b->total - a->total;
    return total ? (double)(b->busy - a->busy) / (double)total : 0;
}
