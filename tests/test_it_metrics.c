/* Metrics and health of a real worker on the real broker: /metrics scraped
 * over HTTP (libcurl) and read with the reference Prometheus parser,
 * counters that follow the commands, readiness that follows assignment and
 * restore. */
#include <curl/curl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "it_support.h"
#include "pn_test.h"
#include "prom_support.h"

const int pn_test_needs_broker = 1;

typedef struct body {
    char *data;
    size_t len;
} body_t;

static size_t on_data(char *ptr, size_t size, size_t n, void *opaque) {
    body_t *b = opaque;
    char *grown = realloc(b->data, b->len + size * n + 1);
    if (!grown)
        return 0;
    memcpy(grown + b->len, ptr, size * n);
    b->len += size * n;
    grown[b->len] = '\0';
    b->data = grown;
    return size * n;
}

/* GET http://127.0.0.1:port/path; the status (0: no answer) and the body
 * (caller frees; may be NULL). */
static long http_get(int port, const char *path, char **bodyp) {
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *curl = curl_easy_init();
    PN_REQUIRE(curl != NULL);
    body_t b = {NULL, 0};
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
    long status = 0;
    if (curl_easy_perform(curl) == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    if (bodyp)
        *bodyp = b.data;
    else
        free(b.data);
    return status;
}

/* Scrapes /metrics and parses it; exits 77 without the parser. */
static json_t *scrape(int port) {
    char *text = NULL;
    long status = http_get(port, "/metrics", &text);
    PN_ASSERT_(status == 200, CU_TRUE, "/metrics answered %ld", status);
    json_t *families = NULL;
    char err[2048];
    int rc = pn_prom_parse(text, strlen(text), &families, err, sizeof err);
    if (rc == PN_PROM_MISSING) {
        fprintf(stderr, "skipped: python3 with prometheus_client is needed\n");
        exit(PN_PROM_MISSING);
    }
    if (rc)
        fprintf(stderr, "exposition does not parse: %s\n%s", err, text);
    free(text);
    PN_ASSERT_(rc == 0, CU_TRUE, "%s", "the exposition parses");
    return families;
}

static double metric(json_t *families, const char *name, const char *labels) {
    bool found;
    double v = pn_prom_value(families, name, labels, &found);
    PN_ASSERT_(found, CU_FALSE, "sample %s{%s} present", name, labels);
    return v;
}

/* Waits until /readyz answers `want`; returns the last body. */
static bool wait_ready(int port, long want, int timeout_ms, char *body,
                       size_t size) {
    for (int64_t end = pn_mono_ms() + timeout_ms; pn_mono_ms() < end;) {
        char *b = NULL;
        long status = http_get(port, "/readyz", &b);
        snprintf(body, size, "%s", b ? b : "");
        free(b);
        if (status == want)
            return true;
        pn_it_sleep_ms(100);
    }
    return false;
}

static char http_set[2][64];

static const char *const *http_extra(int slot, int port) {
    snprintf(http_set[slot], sizeof http_set[slot], "http.port=%d", port);
    static const char *extra[2][2];
    extra[slot][0] = http_set[slot];
    extra[slot][1] = NULL;
    return extra[slot];
}

/* --- counters follow the commands ---------------------------------------------- */

static void send_workload(pn_it_t *it) {
    static char ids[64][16], skus[64][16];
    int k = 0;
    for (int i = 0; i < 10; i++, k++) { /* 10 streams, 10 on hand each */
        snprintf(ids[k], sizeof ids[k], "u%d", i);
        snprintf(skus[i], sizeof skus[i], "S%d", i);
        pn_command_t c = pn_it_cmd(PN_CMD_UPDATE, ids[k], NULL, skus[i], "N",
                                   true, 10);
        pn_it_send(it, &c, false);
    }
    for (int i = 0; i < 5; i++, k++) { /* accepted */
        snprintf(ids[k], sizeof ids[k], "r%d", i);
        pn_command_t c = pn_it_cmd(PN_CMD_RESERVE, ids[k], "o1", skus[i], "N",
                                   true, 4);
        pn_it_send(it, &c, false);
    }
    for (int i = 0; i < 5; i++, k++) { /* INSUFFICIENT_INVENTORY */
        snprintf(ids[k], sizeof ids[k], "x%d", i);
        pn_command_t c = pn_it_cmd(PN_CMD_RESERVE, ids[k], "o2", skus[i + 5],
                                   "N", true, 99);
        pn_it_send(it, &c, false);
    }
    pn_command_t again = pn_it_cmd(PN_CMD_RESERVE, "r0", "o1", skus[0], "N",
                                   true, 4);
    pn_it_send(it, &again, false); /* a duplicate */
    for (int i = 0; i < 4; i++, k++) { /* misrouted: forwarded, then run */
        snprintf(ids[k], sizeof ids[k], "f%d", i);
        snprintf(skus[20 + i], sizeof skus[20 + i], "F%d", i);
        pn_command_t c = pn_it_cmd(PN_CMD_UPDATE, ids[k], NULL, skus[20 + i],
                                   "N", true, 1);
        pn_it_send(it, &c, true);
    }
    pn_it_send_raw(it, "\x07garbage", 8); /* a dead letter */
    pn_it_flush(it);
}

static void test_counters_follow_commands(void) {
    pn_it_t it;
    PN_REQUIRE(pn_it_init(&it, "metrics", 2, 2));
    int port = pn_it_free_port();
    pid_t w = pn_it_worker_start(&it, "w1", http_extra(0, port));
    char body[256];
    PN_ASSERT_(wait_ready(port, 200, 60000, body, sizeof body), CU_TRUE,
               "worker ready (last answer: %s)", body);
    PN_ASSERT_EQ_INT(http_get(port, "/livez", NULL), 200);
    PN_ASSERT_EQ_INT(http_get(port, "/nothing-here", NULL), 404);

    json_t *m = scrape(port);
    int n;
    PN_ASSERT(pn_prom_sum(m, "panther_commands_total", "", &n) == 0);
    PN_ASSERT_EQ_INT(n, 8); /* every type and status, at zero */
    PN_ASSERT(metric(m, "panther_partitions_assigned", "") == 2);
    PN_ASSERT(metric(m, "panther_partitions_restoring", "") == 0);
    json_decref(m);

    send_workload(&it);
    /* 25 commands: 10 + 5 + 5 + 1 duplicate + 4 forwarded. */
    double total = 0;
    for (int i = 0; i < 600 && total < 25; i++) {
        pn_it_sleep_ms(100);
        m = scrape(port);
        total = pn_prom_sum(m, "panther_commands_total", "", &n);
        json_decref(m);
    }
    PN_ASSERT_EQ_INT(total, 25);
    m = scrape(port);
    PN_ASSERT(metric(m, "panther_commands_total", "type=UPDATE,status=ACCEPTED") == 14);
    PN_ASSERT(metric(m, "panther_commands_total", "type=RESERVE,status=ACCEPTED") == 6);
    PN_ASSERT(metric(m, "panther_commands_total", "type=RESERVE,status=REJECTED") == 5);
    PN_ASSERT(metric(m, "panther_commands_total", "type=SHIP,status=ACCEPTED") == 0);
    PN_ASSERT(metric(m, "panther_duplicate_commands_total", "type=RESERVE") == 1);
    PN_ASSERT(metric(m, "panther_rejections_total", "reason=INSUFFICIENT_INVENTORY") == 5);
    PN_ASSERT(metric(m, "panther_events_total", "") == 19);
    PN_ASSERT(metric(m, "panther_dead_letters_total", "") == 1);
    PN_ASSERT(metric(m, "panther_forwarded_commands_total", "") == 4);
    PN_ASSERT(metric(m, "panther_transactions_total", "result=committed") >= 1);
    PN_ASSERT(metric(m, "panther_transactions_total", "result=aborted") == 0);
    /* Every consumed record: 25 commands, 1 dead letter, 4 misrouted. */
    PN_ASSERT(metric(m, "panther_batch_records_sum", "") == 30);
    PN_ASSERT(metric(m, "panther_command_latency_seconds_count", "") == 30);
    PN_ASSERT(metric(m, "panther_command_latency_seconds_bucket", "le=+Inf") == 30);
    PN_ASSERT(metric(m, "panther_transaction_commit_seconds_count", "") ==
              metric(m, "panther_transactions_total", "result=committed"));
    json_t *f = pn_prom_family(m, "panther_command_latency_seconds");
    PN_ASSERT(f && !strcmp(json_string_value(json_object_get(f, "type")), "histogram"));
    f = pn_prom_family(m, "panther_commands");
    PN_ASSERT(f && !strcmp(json_string_value(json_object_get(f, "type")), "counter"));
    json_decref(m);

    /* Sampled values: memory and cache once a second, lag every 5 s. */
    bool lag_ok = false, sampled = false;
    for (int i = 0; i < 300 && !(lag_ok && sampled); i++) {
        pn_it_sleep_ms(100);
        m = scrape(port);
        double lag = pn_prom_sum(m, "panther_consumer_lag_records", "", &n);
        char topic[200];
        snprintf(topic, sizeof topic, "topic=%s", it.commands);
        int n_topic;
        pn_prom_sum(m, "panther_consumer_lag_records", topic, &n_topic);
        lag_ok = n == 2 && n_topic == 2 && lag == 0;
        sampled = metric(m, "panther_store_memory_bytes", "") > 0 &&
                  metric(m, "panther_cached_streams", "") == 14;
        json_decref(m);
    }
    PN_ASSERT(lag_ok);
    PN_ASSERT(sampled);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w, SIGTERM), 0);
    pn_it_cleanup(&it);
}

/* --- readiness ----------------------------------------------------------------- */

#define PREFILL_STREAMS 200
#define PREFILL_VERSIONS 100

/* Events of PREFILL_STREAMS streams, as a worker would have published them
 * (the topic has one partition). */
static void prefill_events(pn_it_t *it) {
    pn_buf_t buf;
    pn_buf_init(&buf, 1 << 20);
    char sku[32], id[64], key[64];
    for (int s = 0; s < PREFILL_STREAMS; s++) {
        snprintf(sku, sizeof sku, "P%d", s);
        int key_len = snprintf(key, sizeof key, "%s|N", sku);
        for (int v = 1; v <= PREFILL_VERSIONS; v++) {
            snprintf(id, sizeof id, "pre-%d-%d", s, v);
            pn_event_t ev = {.type = PN_EVT_UPDATED, .sku_id = pn_str_c(sku),
                             .node_id = pn_str_c("N"), .version = v,
                             .command_id = pn_str_c(id), .by = pn_str_c("it"),
                             .at_ms = 1767225600000LL, .quantity = v,
                             .previous_quantity = v - 1};
            pn_buf_reset(&buf);
            PN_REQUIRE_OK(pn_codec_encode_event(it->codec, &ev, &buf));
            for (;;) {
                rd_kafka_resp_err_t e = rd_kafka_producev(
                    it->producer, RD_KAFKA_V_TOPIC(it->events),
                    RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_KEY(key, (size_t)key_len),
                    RD_KAFKA_V_VALUE(buf.data, buf.len),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
                if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                    PN_REQUIRE(e == 0);
                    break;
                }
                rd_kafka_poll(it->producer, 50);
            }
        }
    }
    pn_buf_free(&buf);
    pn_it_flush(it);
}

/* At the first 200 of /readyz the restore is complete. */
static void check_ready_means_restored(int port) {
    json_t *m = scrape(port);
    PN_ASSERT(metric(m, "panther_restored_events_total", "") ==
              PREFILL_STREAMS * PREFILL_VERSIONS);
    PN_ASSERT(metric(m, "panther_partitions_restoring", "") == 0);
    PN_ASSERT(metric(m, "panther_partitions_assigned", "") == 1);
    json_decref(m);
}

static void test_readiness_follows_assignment(void) {
    pn_it_t it;
    PN_REQUIRE(pn_it_init(&it, "ready", 1, 1));
    prefill_events(&it);
    int ports[2] = {pn_it_free_port(), 0};
    pid_t w[2] = {pn_it_worker_start(&it, "w1", http_extra(0, ports[0])), 0};
    char body[256];
    PN_ASSERT_(wait_ready(ports[0], 200, 90000, body, sizeof body), CU_TRUE,
               "w1 ready (last answer: %s)", body);
    check_ready_means_restored(ports[0]);

    /* A second worker for a one-partition topic: exactly one of the two
     * owns it and is ready; the other is live but not ready. */
    ports[1] = pn_it_free_port();
    w[1] = pn_it_worker_start(&it, "w2", http_extra(1, ports[1]));
    int ready = -1;
    for (int i = 0; i < 600 && ready < 0; i++) {
        pn_it_sleep_ms(100);
        char *b = NULL;
        long s0 = http_get(ports[0], "/readyz", NULL);
        long s1 = http_get(ports[1], "/readyz", &b);
        /* w2 has joined the group once it saw its first assignment. */
        bool joined = false;
        if (s1) {
            json_t *m1 = scrape(ports[1]);
            joined = metric(m1, "panther_rebalances_total", "") >= 1;
            json_decref(m1);
        }
        if (joined && ((s0 == 200) != (s1 == 200)) &&
            (s0 == 200 || s0 == 503) && (s1 == 200 || s1 == 503)) {
            pn_it_sleep_ms(3000); /* settled, not mid-rebalance? */
            long t0 = http_get(ports[0], "/readyz", NULL);
            long t1 = http_get(ports[1], "/readyz", NULL);
            if (t0 == s0 && t1 == s1)
                ready = s0 == 200 ? 0 : 1;
        }
        free(b);
    }
    PN_REQUIRE(ready >= 0);
    int idle = 1 - ready;
    char *b = NULL;
    PN_ASSERT_EQ_INT(http_get(ports[idle], "/readyz", &b), 503);
    PN_ASSERT(b && strstr(b, "no partitions assigned") != NULL);
    free(b);
    PN_ASSERT_EQ_INT(http_get(ports[idle], "/livez", NULL), 200);
    json_t *m = scrape(ports[idle]);
    PN_ASSERT(metric(m, "panther_partitions_assigned", "") == 0);
    json_decref(m);

    /* The owner stops; the idle one takes the partition over (after the
     * session timeout: static members do not leave the group), restores
     * it, and only then says ready. */
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w[ready], SIGTERM), 0);
    PN_ASSERT_(wait_ready(ports[idle], 200, 90000, body, sizeof body), CU_FALSE,
               "the other worker took over (last answer: %s)", body);
    if (idle == 1)
        check_ready_means_restored(ports[idle]);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w[idle], SIGTERM), 0);
    pn_it_cleanup(&it);
}

static const pn_test_case_t cases[] = {
    {"counters follow the commands", test_counters_follow_commands},
    {"readiness follows assignment and restore",
     test_readiness_follows_assignment},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {{"metrics", cases}, {NULL, NULL}};
