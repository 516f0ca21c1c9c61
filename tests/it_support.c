#include "it_support.h"

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "panther/partition.h"
#include "pn_test.h"
#include "topic_reader.h"

/* --- the watchdog's view -------------------------------------------------- */

/* Scratch directories of the environments alive now, for pn_test_on_hang. */
#define LIVE_MAX 8
static char *live_dirs[LIVE_MAX];
/* Processes started by the tests, killed when the watchdog fires so that
 * none outlives the aborted run. */
#define CHILDREN_MAX 256
static pid_t children[CHILDREN_MAX];
static unsigned n_children;
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;

/* A ring: the oldest are long reaped; a reaped pid that was reused is not
 * our child, and waitpid says so before any kill. */
void pn_it_track_child(pid_t pid) {
    pthread_mutex_lock(&live_lock);
    children[n_children++ % CHILDREN_MAX] = pid;
    pthread_mutex_unlock(&live_lock);
}

static void live_set(const char *dir, bool alive) {
    pthread_mutex_lock(&live_lock);
    for (int i = 0; i < LIVE_MAX; i++) {
        if (alive && !live_dirs[i]) {
            live_dirs[i] = strdup(dir);
            break;
        }
        if (!alive && live_dirs[i] && !strcmp(live_dirs[i], dir)) {
            free(live_dirs[i]);
            live_dirs[i] = NULL;
            break;
        }
    }
    pthread_mutex_unlock(&live_lock);
}

/* Cleanups a case registered with pn_it_defer, run LIFO after it. */
#define DEFERRED_MAX 16
static struct {
    void (*fn)(void *);
    void *arg;
} deferred[DEFERRED_MAX];
static int n_deferred;

void pn_it_defer(void (*fn)(void *), void *arg) {
    PN_REQUIRE(n_deferred < DEFERRED_MAX);
    deferred[n_deferred].fn = fn;
    deferred[n_deferred++].arg = arg;
}

/* SIGKILLs the tracked processes still running (the caller holds
 * live_lock); with reap, waits for them and forgets them all. */
static void kill_children(bool reap) {
    for (unsigned i = 0; i < CHILDREN_MAX; i++) {
        pid_t pid = children[i];
        if (pid > 0 && waitpid(pid, NULL, WNOHANG) == 0) {
            if (reap)
                fprintf(stderr, "it: process %ld outlived its case; killed\n",
                        (long)pid);
            kill(pid, SIGKILL);
            if (reap)
                waitpid(pid, NULL, 0);
        }
        if (reap)
            children[i] = 0;
    }
}

#define TAIL_LINES 40

static void print_tail(const char *path) {
    const int lines = TAIL_LINES;
    FILE *fp = fopen(path, "r");
    if (!fp)
        return;
    /* Offsets of the last TAIL_LINES line starts, in a ring. */
    long starts[TAIL_LINES] = {0};
    int n = 0;
    long at = 0;
    int c, prev = '\n';
    while ((c = fgetc(fp)) != EOF) {
        if (prev == '\n')
            starts[n++ % lines] = at;
        prev = c;
        at++;
    }
    fprintf(stderr, "--- last %d lines of %s\n", n < lines ? n : lines, path);
    fseek(fp, n <= lines ? 0 : starts[n % lines], SEEK_SET);
    char buf[4096];
    while (fgets(buf, sizeof buf, fp))
        fputs(buf, stderr);
    fclose(fp);
}

/* The tails of the process logs in a scratch directory, which is kept. */
static void print_log_tails(const char *dir) {
    DIR *d = opendir(dir);
    if (!d)
        return;
    fprintf(stderr, "scratch directory %s (kept)\n", dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > 4 && !strcmp(e->d_name + len - 4, ".log")) {
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            print_tail(path);
        }
    }
    closedir(d);
}

/* The hung case's process logs: what each worker, snapshotter or tool was
 * doing when the watchdog fired. The directories are kept. */
void pn_test_on_hang(void) {
    pthread_mutex_lock(&live_lock);
    for (int i = 0; i < LIVE_MAX; i++)
        if (live_dirs[i])
            print_log_tails(live_dirs[i]);
    kill_children(false);
    pthread_mutex_unlock(&live_lock);
}

/* A case that a fatal assertion ended skipped its own clean-up: its
 * threads are stopped (deferred), the processes it started do not run on
 * into the next case, and what they logged is shown. Its scratch
 * directory stays for a look. */
void pn_test_after_case(void) {
    while (n_deferred > 0) {
        n_deferred--;
        deferred[n_deferred].fn(deferred[n_deferred].arg);
    }
    pthread_mutex_lock(&live_lock);
    kill_children(true);
    for (int i = 0; i < LIVE_MAX; i++) {
        if (live_dirs[i])
            print_log_tails(live_dirs[i]);
        free(live_dirs[i]);
        live_dirs[i] = NULL;
    }
    pthread_mutex_unlock(&live_lock);
}

/* Records the tests' producers could not deliver, over the whole run: a
 * flush empties the queue whether or not its records landed, so a loss
 * would otherwise show only later, as a count that does not add up. */
static atomic_uint delivery_failures;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque) {
    (void)rk;
    (void)opaque;
    if (m->_private) /* pn_it_produce waits for the offset */
        *(int64_t *)m->_private = m->err ? -2 : m->offset;
    if (!m->err)
        return;
    atomic_fetch_add(&delivery_failures, 1);
    fprintf(stderr, "it: delivery to %s [%d] failed: %s (%s)\n",
            rd_kafka_topic_name(m->rkt), (int)m->partition,
            rd_kafka_err2str(m->err),
            rd_kafka_message_status(m) == RD_KAFKA_MSG_STATUS_NOT_PERSISTED
                ? "not persisted"
                : "possibly persisted");
}

/* Flushes and says whether every record produced so far was delivered
 * (and the producer has no fatal error). */
static bool flush_delivered(rd_kafka_t *rk, unsigned failures_before) {
    char fatal[256];
    bool ok = rd_kafka_flush(rk, 60000) == 0;
    if (rd_kafka_fatal_error(rk, fatal, sizeof fatal)) {
        fprintf(stderr, "it: producer fatal error: %s\n", fatal);
        ok = false;
    }
    return ok && atomic_load(&delivery_failures) == failures_before;
}

static rd_kafka_t *client(const char *bootstrap, rd_kafka_type_t type,
                          bool random_partitioner) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (type == RD_KAFKA_PRODUCER)
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    char why[512];
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, why, sizeof why);
    rd_kafka_conf_set(conf, "partitioner",
                      random_partitioner ? "consistent_random" : "murmur2_random",
                      why, sizeof why);
    rd_kafka_conf_set(conf, "linger.ms", "5", why, sizeof why);
    /* One request in flight: a producer with several reorders a
     * partition's records when it retries one, as happened right after the
     * topic was created (a prefilled events topic whose stream began at
     * version 37, which the worker refuses to restore). Perhaps once more
     * with one in flight (the semantics table's u1 answered after u2, in a
     * run that could not tell the producer from the worker; the audit now
     * checks the worker's order): create_topics now waits until every
     * partition is served, so that first requests are not refused and
     * retried. enable.idempotence keeps the order too, but while these
     * producers were idempotent a record went missing now and then (1 of
     * 6,000, offsets without a gap, yet the flush said done); their delivery
     * reports were not checked then. Now a failed delivery fails the test
     * (on_delivery). */
    if (type == RD_KAFKA_PRODUCER)
        rd_kafka_conf_set(conf, "max.in.flight.requests.per.connection", "1",
                          why, sizeof why);
    rd_kafka_t *rk = rd_kafka_new(type, conf, why, sizeof why);
    if (!rk)
        fprintf(stderr, "it: cannot create client: %s\n", why);
    return rk;
}

static void create_topics(pn_it_t *it, int n, int n_events) {
    rd_kafka_t *rk = client(it->bootstrap, RD_KAFKA_PRODUCER, false);
    PN_REQUIRE(rk != NULL);
    const char *names[] = {it->commands, it->events, it->outcomes, it->dlt};
    rd_kafka_NewTopic_t *topics[4];
    char why[512];
    for (int i = 0; i < 4; i++)
        topics[i] = rd_kafka_NewTopic_new(names[i], i == 1 ? n_events : n, 1,
                                          why, sizeof why);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, topics, 4, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 60000);
    PN_REQUIRE(ev != NULL);
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t cnt;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
        PN_ASSERT_(e == 0 || e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS, CU_TRUE,
                   "create topic %s: %s", rd_kafka_topic_result_name(tr[i]),
                   rd_kafka_err2str(e));
    }
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    for (int i = 0; i < 4; i++)
        rd_kafka_NewTopic_destroy(topics[i]);
    /* CreateTopics returns before every broker's metadata knows the
     * topics: a worker started at once could be told they do not exist
     * (and exit 2). Wait until they are visible with their partitions. */
    for (int i = 0; i < 4; i++) {
        int32_t count = 0;
        for (int tries = 0; tries < 300; tries++) {
            pn_err_t e = pn_kafka_partition_count(rk, names[i], 2000, &count,
                                                  why, sizeof why);
            if (e == PN_ERR_OK && count == (i == 1 ? n_events : n))
                break;
            usleep(100 * 1000);
        }
        PN_ASSERT_(count == (i == 1 ? n_events : n), CU_TRUE,
                   "topic %s visible with its partitions", names[i]);
        /* And every partition served by its leader (its log exists there):
         * a first produce request refused as the topic settles is retried,
         * and a retry is where a producer can reorder or lose records. */
        for (int32_t p = 0; p < count; p++) {
            rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_UNKNOWN;
            for (int tries = 0; e && tries < 300; tries++) {
                int64_t low, high;
                e = rd_kafka_query_watermark_offsets(rk, names[i], p, &low,
                                                     &high, 2000);
                if (e)
                    usleep(100 * 1000);
            }
            PN_ASSERT_(e == 0, CU_TRUE, "topic %s [%d] served: %s", names[i],
                       (int)p, rd_kafka_err2str(e));
        }
    }
    rd_kafka_destroy(rk);
}

bool pn_it_init(pn_it_t *it, const char *tag, int n_partitions,
                int n_event_partitions) {
    memset(it, 0, sizeof *it);
    it->failures_at_init = CU_get_number_of_failures();
    const char *bootstrap = getenv("PN_TEST_BOOTSTRAP");
    if (!bootstrap || !*bootstrap)
        return false;
    snprintf(it->bootstrap, sizeof it->bootstrap, "%s", bootstrap);
    snprintf(it->prefix, sizeof it->prefix, "it-%s-%ld-%ld.", tag,
             (long)getpid(), (long)time(NULL));
    snprintf(it->commands, sizeof it->commands, "%sinventory.commands", it->prefix);
    snprintf(it->events, sizeof it->events, "%sinventory.events", it->prefix);
    snprintf(it->outcomes, sizeof it->outcomes, "%sinventory.outcomes", it->prefix);
    snprintf(it->dlt, sizeof it->dlt, "%sinventory.commands.DLT", it->prefix);
    snprintf(it->group, sizeof it->group, "%sworkers", it->prefix);
    it->dir = pn_test_tmpdir(tag);
    if (it->dir)
        live_set(it->dir, true);
    pn_codec_config_t cc = {0};
    char err[512];
    PN_REQUIRE(pn_codec_new(&cc, &it->codec, err, sizeof err) == PN_ERR_OK);
    create_topics(it, n_partitions, n_event_partitions);
    it->producer = client(it->bootstrap, RD_KAFKA_PRODUCER, false);
    return true;
}

void pn_it_cleanup(pn_it_t *it) {
    if (it->default_producer)
        rd_kafka_destroy(it->default_producer);
    if (it->producer) {
        rd_kafka_flush(it->producer, 30000);
        rd_kafka_destroy(it->producer);
    }
    pn_codec_free(it->codec);
    bool failed = CU_get_number_of_failures() > it->failures_at_init;
    if (it->dir)
        live_set(it->dir, false);
    if (it->dir && failed)
        print_log_tails(it->dir);
    else if (it->dir && !getenv("PN_IT_KEEP"))
        pn_test_rmdir(it->dir);
    free(it->dir);
}

pn_command_t pn_it_cmd(pn_command_type_t type, const char *id,
                       const char *order, const char *sku, const char *node,
                       bool has_quantity, int32_t quantity) {
    pn_command_t c = {.type = type, .id = pn_str_c(id),
                      .order_id = order ? pn_str_c(order) : PN_STR_NULL,
                      .sku_id = pn_str_c(sku), .node_id = pn_str_c(node),
                      .by = pn_str_c("it"), .at_ms = 1767225600000LL,
                      .has_quantity = has_quantity, .quantity = quantity};
    return c;
}

/* Produces one record; headers: name, value, ..., NULL (or NULL for none);
 * offset_out, when given, receives the offset on delivery. */
static void produce_to(rd_kafka_t *rk, const char *topic, int32_t partition,
                       const void *key, size_t key_len, const void *value,
                       size_t len, const char *const *headers,
                       int64_t *offset_out) {
    for (;;) {
        rd_kafka_headers_t *hdrs = NULL;
        if (headers) {
            hdrs = rd_kafka_headers_new(4);
            for (size_t i = 0; headers[i] && headers[i + 1]; i += 2)
                rd_kafka_header_add(hdrs, headers[i], -1, headers[i + 1], -1);
        }
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic),
            RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_KEY((void *)key, key_len),
            RD_KAFKA_V_VALUE((void *)value, len),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(offset_out),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e && hdrs)
            rd_kafka_headers_destroy(hdrs); /* owned by the record on success */
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(rk, 50);
            continue;
        }
        PN_ASSERT_(e == 0, CU_TRUE, "produce: %s", rd_kafka_err2str(e));
        return;
    }
}

static void produce_with(pn_it_t *it, rd_kafka_t *rk, int32_t partition,
                         const void *key, size_t key_len, const void *value,
                         size_t len) {
    produce_to(rk, it->commands, partition, key, key_len, value, len, NULL,
               NULL);
}

static void produce(pn_it_t *it, int32_t partition, const void *key,
                    size_t key_len, const void *value, size_t len) {
    produce_with(it, it->producer, partition, key, key_len, value, len);
}

int64_t pn_it_produce(pn_it_t *it, const char *topic, int32_t partition,
                      pn_str_t key, const void *value, size_t len,
                      const char *const *headers) {
    int64_t offset = -1;
    produce_to(it->producer, topic, partition, key.ptr, key.len, value, len,
               headers, &offset);
    pn_it_flush(it);
    PN_ASSERT_(offset >= 0, CU_FALSE, "record to %s [%d] not delivered",
               topic, (int)partition);
    return offset;
}

void pn_it_send_default_partitioner(pn_it_t *it, const pn_command_t *cmd) {
    if (!it->default_producer)
        it->default_producer = client(it->bootstrap, RD_KAFKA_PRODUCER, true);
    pn_buf_t buf;
    pn_buf_init(&buf, 1 << 20);
    PN_REQUIRE(pn_codec_encode_command(it->codec, cmd, PN_FRAMING_PLAIN, 0,
                                       &buf) == PN_ERR_OK);
    char key[PN_STREAM_KEY_MAX];
    size_t key_len = pn_stream_key(cmd->sku_id, cmd->node_id, key, sizeof key);
    produce_with(it, it->default_producer, RD_KAFKA_PARTITION_UA, key, key_len,
                 buf.data, buf.len);
    pn_buf_free(&buf);
}

void pn_it_send(pn_it_t *it, const pn_command_t *cmd, bool random_partition) {
    pn_buf_t buf;
    pn_buf_init(&buf, 1 << 20);
    PN_REQUIRE(pn_codec_encode_command(it->codec, cmd, PN_FRAMING_PLAIN, 0,
                                       &buf) == PN_ERR_OK);
    char key[PN_STREAM_KEY_MAX + 600];
    int key_len = snprintf(key, sizeof key, "%.*s|%.*s", (int)cmd->sku_id.len,
                           cmd->sku_id.ptr, (int)cmd->node_id.len,
                           cmd->node_id.ptr);
    int32_t partition = RD_KAFKA_PARTITION_UA;
    if (random_partition) {
        /* Deliberately not where murmur2 puts it: the next partition. */
        int32_t n = 0;
        char err[256];
        PN_REQUIRE(pn_kafka_partition_count(it->producer, it->commands, 10000,
                                            &n, err, sizeof err) == PN_ERR_OK);
        partition = (pn_partition_for_key(key, (size_t)key_len, n) + 1) % n;
    }
    produce(it, partition, key, (size_t)key_len, buf.data, buf.len);
    pn_buf_free(&buf);
}

void pn_it_send_raw(pn_it_t *it, const void *value, size_t len) {
    produce(it, RD_KAFKA_PARTITION_UA, "garbage", 7, value, len);
}

void pn_it_flush(pn_it_t *it) {
    unsigned before = atomic_load(&delivery_failures);
    if (it->default_producer)
        PN_ASSERT(flush_delivered(it->default_producer, before));
    PN_ASSERT(flush_delivered(it->producer, before));
}

/* Starts argv[0] with stdout and stderr appended to log. */
static pid_t spawn(const char *const *argv, const char *log) {
    pid_t pid = fork();
    PN_REQUIRE(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    pn_it_track_child(pid);
    return pid;
}

static void set_arg(char *buf, size_t size, const char *key, const char *value) {
    snprintf(buf, size, "%s=%s", key, value);
}

pid_t pn_it_worker_start(pn_it_t *it, const char *instance,
                         const char *const *extra) {
    const char *panther = getenv("PN_PANTHER");
    PN_REQUIRE(panther != NULL);
    char sets[10][4400];
    char store[4200], log[4200];
    snprintf(store, sizeof store, "%s/store-%s", it->dir, instance);
    snprintf(log, sizeof log, "%s/%s.log", it->dir, instance);
    set_arg(sets[0], sizeof sets[0], "topics.commands", it->commands);
    set_arg(sets[1], sizeof sets[1], "topics.events", it->events);
    set_arg(sets[2], sizeof sets[2], "topics.outcomes", it->outcomes);
    set_arg(sets[3], sizeof sets[3], "topics.dead.letters", it->dlt);
    set_arg(sets[4], sizeof sets[4], "group.id", it->group);
    set_arg(sets[5], sizeof sets[5], "instance.id", instance);
    set_arg(sets[6], sizeof sets[6], "store.path", store);
    set_arg(sets[7], sizeof sets[7], "kafka.bootstrap.servers", it->bootstrap);
    set_arg(sets[8], sizeof sets[8], "snapshotter.group.id", "it-snapshotter");
    const char *argv[64] = {panther, "worker"};
    int argc = 2;
    for (int i = 0; i < 9; i++) {
        argv[argc++] = "--set";
        argv[argc++] = sets[i];
    }
    for (int i = 0; extra && extra[i] && argc < 60; i++) {
        argv[argc++] = "--set";
        argv[argc++] = extra[i];
    }
    argv[argc] = NULL;
    return spawn(argv, log);
}

static uint64_t json_u64(json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
}

int pn_it_log_count(const char *path, const char *const *needles) {
    FILE *fp = fopen(path, "r");
    if (!fp)
        return 0;
    char line[16384];
    int n = 0;
    while (fgets(line, sizeof line, fp)) {
        bool all = true;
        for (int i = 0; needles[i] && all; i++)
            all = strstr(line, needles[i]) != NULL;
        n += all;
    }
    fclose(fp);
    return n;
}

bool pn_it_worker_wait_ready(pn_it_t *it, const char *instance,
                             int timeout_ms) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.log", it->dir, instance);
    const char *finished[] = {"\"msg\":\"restore finished\"", NULL};
    for (int64_t end = pn_mono_ms() + timeout_ms; pn_mono_ms() < end;) {
        if (pn_it_log_count(path, finished) > 0)
            return true;
        pn_it_sleep_ms(100);
    }
    return false;
}

void pn_it_worker_log(pn_it_t *it, const char *instance,
                      pn_it_worker_log_t *log) {
    memset(log, 0, sizeof *log);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.log", it->dir, instance);
    FILE *f = fopen(path, "r");
    PN_REQUIRE(f != NULL);
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        json_t *obj = json_loads(line, 0, NULL);
        const char *msg = json_string_value(json_object_get(obj, "msg"));
        if (msg && strcmp(msg, "worker stopped") == 0) {
            log->stopped = true;
            log->commands = json_u64(obj, "commands");
            log->commits = json_u64(obj, "commits");
            log->aborts = json_u64(obj, "aborts");
            log->events_expired = json_u64(obj, "events_expired");
        } else if (msg && strcmp(msg, "aborting the open transaction on "
                                      "revocation") == 0) {
            log->revocation_aborts++;
        }
        json_decref(obj);
    }
    fclose(f);
}

int pn_it_worker_stop(pid_t pid, int sig) {
    if (pid <= 0)
        return -1;
    kill(pid, sig);
    int status = 0;
    for (int i = 0; i < 600; i++) { /* up to 60 s */
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status)
                                     : 128 + WTERMSIG(status);
        usleep(100 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

void pn_it_audit(pn_it_t *it, int wait_ms, pn_audit_report_t *report) {
    pn_kafka_prop_t kafka[] = {{"bootstrap.servers", it->bootstrap}};
    pn_audit_options_t o = {.commands_topic = it->commands,
                            .events_topic = it->events,
                            .outcomes_topic = it->outcomes,
                            .dead_letter_topic = it->dlt,
                            .group_id = it->group,
                            .kafka = kafka,
                            .n_kafka = 1,
                            .wait_ms = wait_ms};
    char err[512] = "";
    pn_err_t e = pn_audit_run(&o, report, err, sizeof err);
    PN_ASSERT_(e == PN_ERR_OK, CU_TRUE, "audit: %s", err);
    if (report->violations)
        pn_audit_report_print(report, stderr);
}

typedef struct outcome_acc {
    pn_it_t *it;
    pn_it_outcome_t *items;
    size_t n, cap;
} outcome_acc_t;

static pn_err_t on_outcome(void *opaque, const rd_kafka_message_t *m) {
    outcome_acc_t *acc = opaque;
    if (acc->n == acc->cap) {
        acc->cap = acc->cap ? acc->cap * 2 : 256;
        acc->items = realloc(acc->items, acc->cap * sizeof *acc->items);
    }
    pn_it_outcome_t *o = &acc->items[acc->n];
    memset(o, 0, sizeof *o);
    if (pn_codec_decode_outcome(acc->it->codec, m->payload, m->len, &o->rec,
                                NULL, 0))
        return PN_ERR_MALFORMED;
    o->source_partition = o->source_offset = -1;
    pn_kafka_header_int(m, PN_HEADER_SOURCE_PARTITION, &o->source_partition);
    pn_kafka_header_int(m, PN_HEADER_SOURCE_OFFSET, &o->source_offset);
    acc->n++;
    return PN_ERR_OK;
}

size_t pn_it_read_outcomes(pn_it_t *it, pn_it_outcome_t **out) {
    outcome_acc_t acc = {.it = it};
    pn_kafka_prop_t kafka[] = {{"bootstrap.servers", it->bootstrap}};
    char err[512] = "";
    pn_err_t e = pn_topic_read_all(kafka, 1, it->outcomes, on_outcome, &acc,
                                   60000, err, sizeof err);
    PN_ASSERT_(e == PN_ERR_OK, CU_FALSE, "reading outcomes: %s", err);
    *out = acc.items;
    return acc.n;
}

void pn_it_free_outcomes(pn_it_outcome_t *o, size_t n) {
    for (size_t i = 0; i < n; i++)
        pn_outcome_record_release(&o[i].rec);
    free(o);
}

const pn_outcome_record_t *pn_it_find_outcome(const pn_it_outcome_t *o,
                                              size_t n, const char *id,
                                              bool duplicate) {
    for (size_t i = 0; i < n; i++)
        if (pn_str_eq(o[i].rec.command_id, pn_str_c(id)) &&
            o[i].rec.outcome.duplicate == duplicate)
            return &o[i].rec;
    return NULL;
}

int pn_it_run_panther(pn_it_t *it, const char *const *args) {
    const char *panther = getenv("PN_PANTHER");
    PN_REQUIRE(panther != NULL);
    char log[4200];
    snprintf(log, sizeof log, "%s/cmd.log", it->dir);
    const char *argv[64] = {panther};
    int argc = 1;
    for (int i = 0; args[i] && argc < 63; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    int status = 0;
    waitpid(spawn(argv, log), &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static uint64_t gen_rand(pn_it_gen_t *g) {
    uint64_t z = (g->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void pn_it_gen_init(pn_it_gen_t *g, uint64_t seed, int n_streams) {
    memset(g, 0, sizeof *g);
    g->rng = seed;
    g->seed = seed;
    g->n_streams = n_streams;
}

pn_command_t pn_it_gen_next(pn_it_gen_t *g) {
    uint64_t n = g->next++;
    int s = (int)(gen_rand(g) % (uint64_t)g->n_streams);
    unsigned roll = (unsigned)(gen_rand(g) % 100);
    /* About 2% resend an earlier id: duplicates the window must catch. */
    uint64_t id_n = roll < 2 && n > 10 ? n - 1 - gen_rand(g) % 10 : n;
    snprintf(g->id, sizeof g->id, "cmd-%llu-%llu", (unsigned long long)g->seed,
             (unsigned long long)id_n);
    snprintf(g->sku, sizeof g->sku, "SKU-%d", s / 3);
    snprintf(g->node, sizeof g->node, "DC-%d", s % 3);
    snprintf(g->order, sizeof g->order, "ord-%d-%llu", s,
             (unsigned long long)(gen_rand(g) % 20));
    roll = (unsigned)(gen_rand(g) % 100);
    pn_command_type_t type = roll < 15   ? PN_CMD_UPDATE
                             : roll < 65 ? PN_CMD_RESERVE
                             : roll < 82 ? PN_CMD_CANCEL
                                         : PN_CMD_SHIP;
    bool has_q = type == PN_CMD_UPDATE || type == PN_CMD_RESERVE ||
                 gen_rand(g) % 2;
    int32_t q = type == PN_CMD_UPDATE ? (int32_t)(gen_rand(g) % 200)
                                      : 1 + (int32_t)(gen_rand(g) % 8);
    return pn_it_cmd(type, g->id, type == PN_CMD_UPDATE ? NULL : g->order,
                     g->sku, g->node, has_q, q);
}

/* The low end of the kernel's ephemeral port range (Linux's default when
 * unreadable). */
static int ephemeral_low(void) {
    int low = 32768, high;
    FILE *fp = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (fp) {
        if (fscanf(fp, "%d %d", &low, &high) != 2)
            low = 32768;
        fclose(fp);
    }
    return low;
}

int pn_it_free_port(void) {
    enum { FIRST = 10000 }; /* above the well-known and most service ports */
    int span = ephemeral_low() - FIRST;
    PN_REQUIRE(span > 1000);
    static unsigned seed;
    if (!seed)
        seed = (unsigned)getpid() ^ (unsigned)pn_mono_ms();
    for (int attempt = 0; attempt < 1000; attempt++) {
        int port = FIRST + (int)(rand_r(&seed) % (unsigned)span);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        PN_REQUIRE(fd >= 0);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        /* No SO_REUSEADDR: a port still in TIME_WAIT counts as taken. */
        bool free_now = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(fd);
        if (free_now)
            return port;
    }
    PN_REQUIRE(!"no free port below the ephemeral range");
    return -1;
}

void pn_it_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

struct pn_it_sender {
    pthread_t thread;
    pn_it_t *it;
    uint64_t seed;
    int n_streams, n, rate;
    int failed;
};

/* Encodes and produces without CUnit (not thread-safe): the thread only
 * reports failure, the test thread asserts. */
static int send_plain(pn_it_t *it, rd_kafka_t *rk, pn_codec_t *codec,
                      const pn_command_t *cmd, pn_buf_t *buf) {
    pn_buf_reset(buf);
    if (pn_codec_encode_command(codec, cmd, PN_FRAMING_PLAIN, 0, buf))
        return -1;
    char key[PN_STREAM_KEY_MAX];
    size_t key_len = pn_stream_key(cmd->sku_id, cmd->node_id, key, sizeof key);
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(it->commands), RD_KAFKA_V_KEY(key, key_len),
            RD_KAFKA_V_VALUE(buf->data, buf->len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return e ? -1 : 0;
        rd_kafka_poll(rk, 50);
    }
}

static void *sender_main(void *arg) {
    pn_it_sender_t *s = arg;
    unsigned failures_before = atomic_load(&delivery_failures);
    rd_kafka_t *rk = client(s->it->bootstrap, RD_KAFKA_PRODUCER, false);
    pn_codec_t *codec = NULL;
    pn_codec_config_t cc = {0};
    if (!rk || pn_codec_new(&cc, &codec, NULL, 0)) {
        s->failed = 1;
        goto out;
    }
    pn_buf_t buf;
    pn_buf_init(&buf, 1 << 20);
    pn_it_gen_t g;
    pn_it_gen_init(&g, s->seed, s->n_streams);
    int per_tick = s->rate / 100 > 0 ? s->rate / 100 : 1;
    for (int i = 0; i < s->n && !s->failed; i++) {
        pn_command_t c = pn_it_gen_next(&g);
        s->failed = send_plain(s->it, rk, codec, &c, &buf) != 0;
        if (s->rate && i % per_tick == per_tick - 1)
            pn_it_sleep_ms(10);
    }
    pn_buf_free(&buf);
    if (!flush_delivered(rk, failures_before))
        s->failed = 1;
out:
    pn_codec_free(codec);
    if (rk)
        rd_kafka_destroy(rk);
    return NULL;
}

pn_it_sender_t *pn_it_send_async(pn_it_t *it, uint64_t seed, int n_streams,
                                 int n, int rate) {
    pn_it_sender_t *s = calloc(1, sizeof *s);
    PN_REQUIRE(s != NULL);
    *s = (pn_it_sender_t){.it = it, .seed = seed, .n_streams = n_streams,
                          .n = n, .rate = rate};
    PN_REQUIRE(pthread_create(&s->thread, NULL, sender_main, s) == 0);
    return s;
}

int pn_it_send_wait(pn_it_sender_t *s) {
    pthread_join(s->thread, NULL);
    int failed = s->failed;
    free(s);
    return failed;
}
