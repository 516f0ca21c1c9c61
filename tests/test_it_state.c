/* panther state against the real broker: the local store of a worker and a
 * snapshotter's read API (--url) print the same state for every stream. */
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "it_support.h"
#include "pn_test.h"

const int pn_test_needs_broker = 1;

#define STREAMS 30
#define COMMANDS 600

static void create_compacted(pn_it_t *it, const char *name, int partitions) {
    char why[512];
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(name, partitions, 1, why, sizeof why);
    PN_REQUIRE(nt != NULL);
    PN_REQUIRE(rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact") == 0);
    rd_kafka_queue_t *q = rd_kafka_queue_new(it->producer);
    rd_kafka_CreateTopics(it->producer, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 60000);
    PN_REQUIRE(ev != NULL);
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
}

/* Runs panther (args NULL-terminated) with stdout into *out; the exit code. */
static int run(pn_it_t *it, const char *const *args, char **out) {
    const char *panther = getenv("PN_PANTHER");
    PN_REQUIRE(panther != NULL);
    char out_path[4300], err_path[4300];
    snprintf(out_path, sizeof out_path, "%s/state.out", it->dir);
    snprintf(err_path, sizeof err_path, "%s/state.err", it->dir);
    const char *argv[32] = {panther};
    int argc = 1;
    for (int i = 0; args[i] && argc < 31; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    PN_REQUIRE(pid >= 0);
    if (pid == 0) {
        int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(err_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fo < 0 || fe < 0)
            _exit(126);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(panther, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    FILE *f = fopen(out_path, "r");
    char buf[16384] = "";
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
    *out = strdup(buf);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static pid_t snapshotter_start(pn_it_t *it, const char *snapshots, int port) {
    char sets[12][4400];
    int n = 0;
#define SET(...) snprintf(sets[n++], sizeof sets[0], __VA_ARGS__)
    SET("topics.commands=%s", it->commands);
    SET("topics.events=%s", it->events);
    SET("topics.outcomes=%s", it->outcomes);
    SET("topics.dead.letters=%s", it->dlt);
    SET("topics.snapshots=%s", snapshots);
    SET("group.id=%s", it->group);
    SET("snapshotter.group.id=%ssnapshotters", it->prefix);
    SET("instance.id=s1");
    SET("snapshotter.store.path=%s/snapstore", it->dir);
    SET("snapshotter.interval.ms=200");
    SET("snapshotter.http.port=%d", port);
    SET("kafka.bootstrap.servers=%s", it->bootstrap);
#undef SET
    const char *panther = getenv("PN_PANTHER");
    PN_REQUIRE(panther != NULL);
    const char *argv[40] = {panther, "snapshotter"};
    int argc = 2;
    for (int i = 0; i < n; i++) {
        argv[argc++] = "--set";
        argv[argc++] = sets[i];
    }
    argv[argc] = NULL;
    char log[4300];
    snprintf(log, sizeof log, "%s/snapshotter.log", it->dir);
    fflush(NULL);
    pid_t pid = fork();
    PN_REQUIRE(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(panther, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* The fields both sources print, as one comparable line. */
static bool summary(const char *text, char *out, size_t size) {
    json_t *doc = json_loads(text, 0, NULL);
    if (!doc)
        return false;
    json_t *res = json_object_get(doc, "reservations");
    json_t *picked = json_pack(
        "{s:O,s:O,s:O,s:O,s:O,s:O,s:O}", "skuId",
        json_object_get(doc, "skuId"), "fulfillmentNodeId",
        json_object_get(doc, "fulfillmentNodeId"), "version",
        json_object_get(doc, "version"), "onHand",
        json_object_get(doc, "onHand"), "reserved",
        json_object_get(doc, "reserved"), "available",
        json_object_get(doc, "available"), "reservations", res ? res : json_null());
    char *s = picked ? json_dumps(picked, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
    bool ok = s != NULL;
    if (s)
        snprintf(out, size, "%s", s);
    free(s);
    json_decref(picked);
    json_decref(doc);
    return ok;
}

static void test_local_and_read_api_agree(void) {
    pn_it_t it;
    PN_REQUIRE(pn_it_init(&it, "state", 2, 2));
    char snapshots[200];
    snprintf(snapshots, sizeof snapshots, "%sinventory.snapshots", it.prefix);
    create_compacted(&it, snapshots, 2);
    pn_it_sender_t *sender = pn_it_send_async(&it, 11, STREAMS, COMMANDS, 0);
    PN_ASSERT_EQ_INT(pn_it_send_wait(sender), 0);
    pid_t w = pn_it_worker_start(&it, "w1", NULL);
    pn_audit_report_t report;
    pn_it_audit(&it, 120000, &report);
    PN_ASSERT_EQ_INT(report.violations, 0);
    pn_audit_report_free(&report);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w, SIGTERM), 0);

    int port = pn_it_free_port();
    pid_t snap = snapshotter_start(&it, snapshots, port);
    char url[64], set_store[4300];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    snprintf(set_store, sizeof set_store, "store.path=%s/store-w1", it.dir);
    int compared = 0;
    for (int s = 0; s < STREAMS; s++) {
        char sku[32], node[16];
        snprintf(sku, sizeof sku, "SKU-%d", s / 3);
        snprintf(node, sizeof node, "DC-%d", s % 3);
        char *local = NULL;
        const char *largs[] = {"state", "--set", set_store, sku, node, NULL};
        int rc = run(&it, largs, &local);
        if (rc == 1) { /* a stream that never got an event */
            free(local);
            continue;
        }
        PN_ASSERT_EQ_INT(rc, 0);
        char want[8192] = "", got[8192] = "";
        PN_REQUIRE(summary(local, want, sizeof want));
        free(local);
        /* The snapshotter catches up on its own time. */
        for (int i = 0; i < 300 && strcmp(want, got); i++) {
            char *remote = NULL;
            const char *rargs[] = {"state", "--url", url, sku, node, NULL};
            if (run(&it, rargs, &remote) == 0 && !summary(remote, got, sizeof got))
                got[0] = '\0';
            free(remote);
            if (strcmp(want, got))
                pn_it_sleep_ms(200);
        }
        PN_ASSERT_(strcmp(want, got) == 0, CU_FALSE, "%s|%s local %.200s, read API %.200s",
                   sku, node, want, got);
        compared++;
    }
    PN_ASSERT(compared > STREAMS / 2);
    char *out = NULL;
    const char *missing[] = {"state", "--url", url, "NO-SUCH-SKU", "DC-0", NULL};
    PN_ASSERT_EQ_INT(run(&it, missing, &out), 1);
    free(out);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(snap, SIGTERM), 0);
    pn_it_cleanup(&it);
}

static const pn_test_case_t cases[] = {
    {"local store and read API agree", test_local_and_read_api_agree},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {{"state", cases}, {NULL, NULL}};
