/* The metrics registry, its exposition text (exact, and through the
 * reference Prometheus parser), thread safety, health and the HTTP
 * handlers. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "panther/metrics.h"
#include "pn_test.h"
#include "prom_support.h"

#define L(...) ((const char *const[]){__VA_ARGS__})

static char *render(pn_metrics_t *reg) {
    pn_buf_t buf;
    pn_buf_init(&buf, 1 << 20);
    PN_REQUIRE_OK(pn_metrics_render(reg, &buf));
    char *text = strndup((const char *)buf.data, buf.len);
    pn_buf_free(&buf);
    return text;
}

/* Exact text comparison that prints both sides (too long for PN_ASSERT's
 * message buffer). */
#define EXPECT_TEXT(got, want) expect_text((got), (want), __LINE__)
static void expect_text(const char *got, const char *want, int line) {
    bool same = got && strcmp(got, want) == 0;
    if (!same)
        fprintf(stderr, "line %d: text differs\n--- got:\n%s--- wanted:\n%s---\n",
                line, got ? got : "(null)", want);
    PN_ASSERT_(same, CU_FALSE, "line %d: rendered text as expected", line);
}

static void test_names_and_labels(void) {
    pn_metrics_t *reg = pn_metrics_new();
    PN_REQUIRE(reg != NULL);
    pn_metric_t *m = NULL, *again = NULL;
    PN_ASSERT_EQ_INT(pn_metrics_counter(reg, "", "h", NULL, &m), PN_ERR_INVALID_ARG);
    PN_ASSERT_EQ_INT(pn_metrics_counter(reg, "1abc", "h", NULL, &m), PN_ERR_INVALID_ARG);
    PN_ASSERT_EQ_INT(pn_metrics_counter(reg, "a-b", "h", NULL, &m), PN_ERR_INVALID_ARG);
    PN_ASSERT_EQ_INT(pn_metrics_counter(reg, "a", "h", "x,", &m), PN_ERR_INVALID_ARG);
    PN_ASSERT_EQ_INT(pn_metrics_counter(reg, "a", "h", "__x", &m), PN_ERR_INVALID_ARG);
    PN_ASSERT_EQ_INT(pn_metrics_counter(reg, "a", "h", "x,x", &m), PN_ERR_INVALID_ARG);
    PN_ASSERT_EQ_INT(pn_metrics_counter(reg, "a", "h", "a:b", &m), PN_ERR_INVALID_ARG);
    PN_ASSERT_EQ_INT(pn_metrics_counter(reg, "a", "h", "a,b,c,d,e,f,g,h,i", &m),
                     PN_ERR_INVALID_ARG);
    double b[] = {1, 2};
    double bad[] = {2, 1};
    PN_ASSERT_EQ_INT(pn_metrics_histogram(reg, "h", "h", "le", b, 2, &m),
                     PN_ERR_INVALID_ARG);
    PN_ASSERT_EQ_INT(pn_metrics_histogram(reg, "h", "h", NULL, bad, 2, &m),
                     PN_ERR_INVALID_ARG);
    PN_ASSERT_EQ_INT(pn_metrics_histogram(reg, "h", "h", NULL, b, 0, &m),
                     PN_ERR_INVALID_ARG);
    PN_ASSERT(m == NULL);
    /* The same family twice is one family; another shape is refused. */
    PN_REQUIRE_OK(pn_metrics_counter(reg, "ns:c_total", "h", "a,b", &m));
    PN_REQUIRE_OK(pn_metrics_counter(reg, "ns:c_total", "other help", "a,b", &again));
    PN_ASSERT(m == again);
    PN_ASSERT_EQ_INT(pn_metrics_counter(reg, "ns:c_total", "h", "a", &again),
                     PN_ERR_INVALID_ARG);
    PN_ASSERT_EQ_INT(pn_metrics_gauge(reg, "ns:c_total", "h", "a,b", &again),
                     PN_ERR_INVALID_ARG);
    /* Series need every label value. */
    PN_ASSERT(pn_metric_with(m, NULL) == NULL);
    PN_ASSERT(pn_metric_with(m, L("x", NULL)) == NULL);
    pn_series_t *s = pn_metric_with(m, L("x", "y"));
    PN_ASSERT(s != NULL && s == pn_metric_with(m, L("x", "y")));
    PN_ASSERT(s != pn_metric_with(m, L("x", "z")));
    pn_metrics_free(reg);
    pn_metrics_free(NULL);
}

static void test_counter_and_gauge_text(void) {
    pn_metrics_t *reg = pn_metrics_new();
    pn_metric_t *c, *g, *plain;
    PN_REQUIRE_OK(pn_metrics_counter(reg, "p_commands_total", "Commands.",
                                     "type,status", &c));
    PN_REQUIRE_OK(pn_metrics_gauge(reg, "p_lag", "Lag.", "partition", &g));
    PN_REQUIRE_OK(pn_metrics_gauge(reg, "p_up", "Up.", NULL, &plain));
    pn_series_t *acc = pn_metric_with(c, L("UPDATE", "ACCEPTED"));
    pn_series_add(acc, 2);
    pn_series_inc(acc);
    pn_series_add(acc, -5);  /* counters never go down */
    pn_series_add(acc, NAN); /* nor become NaN */
    pn_series_set(acc, 100); /* not a gauge */
    pn_series_inc(pn_metric_with(c, L("RESERVE", "REJECTED")));
    pn_series_set(pn_metric_with(g, L("0")), 12);
    pn_series_t *g1 = pn_metric_with(g, L("1"));
    pn_series_set(g1, 7);
    pn_series_add(g1, -8.5);
    PN_ASSERT(pn_series_value(acc) == 3);
    PN_ASSERT(pn_series_value(g1) == -1.5);
    char *text = render(reg);
    EXPECT_TEXT(text,
                     "# HELP p_commands_total Commands.\n"
                     "# TYPE p_commands_total counter\n"
                     "p_commands_total{type=\"UPDATE\",status=\"ACCEPTED\"} 3\n"
                     "p_commands_total{type=\"RESERVE\",status=\"REJECTED\"} 1\n"
                     "# HELP p_lag Lag.\n"
                     "# TYPE p_lag gauge\n"
                     "p_lag{partition=\"0\"} 12\n"
                     "p_lag{partition=\"1\"} -1.5\n"
                     "# HELP p_up Up.\n"
                     "# TYPE p_up gauge\n"
                     "p_up 0\n");
    free(text);
    /* A removed series disappears and comes back from zero. */
    pn_metric_remove(g, L("0"));
    pn_metric_remove(g, L("9")); /* none: no-op */
    text = render(reg);
    PN_ASSERT(strstr(text, "p_lag{partition=\"0\"}") == NULL);
    PN_ASSERT(strstr(text, "p_lag{partition=\"1\"} -1.5\n") != NULL);
    free(text);
    pn_series_t *g0 = pn_metric_with(g, L("0"));
    PN_ASSERT(pn_series_value(g0) == 0);
    text = render(reg);
    PN_ASSERT(strstr(text, "p_lag{partition=\"0\"} 0\n") != NULL);
    free(text);
    pn_metrics_free(reg);
}

static void test_histogram_text(void) {
    pn_metrics_t *reg = pn_metrics_new();
    pn_metric_t *h;
    double bounds[] = {0.005, 0.1, 1, 10};
    PN_REQUIRE_OK(pn_metrics_histogram(reg, "p_latency_seconds", "Latency.",
                                       NULL, bounds, 4, &h));
    pn_series_t *s = pn_metric_with(h, NULL);
    pn_series_observe(s, 0.001);
    pn_series_observe(s, 0.005); /* on the bound: le is inclusive */
    pn_series_observe(s, 0.5);
    pn_series_observe(s, 50);
    pn_series_observe(s, NAN);
    pn_series_add(s, 3); /* not for histograms */
    PN_ASSERT(pn_series_value(s) == 4);
    char *text = render(reg);
    EXPECT_TEXT(text,
                     "# HELP p_latency_seconds Latency.\n"
                     "# TYPE p_latency_seconds histogram\n"
                     "p_latency_seconds_bucket{le=\"0.005\"} 2\n"
                     "p_latency_seconds_bucket{le=\"0.1\"} 2\n"
                     "p_latency_seconds_bucket{le=\"1\"} 3\n"
                     "p_latency_seconds_bucket{le=\"10\"} 3\n"
                     "p_latency_seconds_bucket{le=\"+Inf\"} 4\n"
                     "p_latency_seconds_sum 50.506\n"
                     "p_latency_seconds_count 4\n");
    free(text);
    pn_metrics_free(reg);
}

static void test_escaping_and_special_values(void) {
    pn_metrics_t *reg = pn_metrics_new();
    pn_metric_t *g;
    PN_REQUIRE_OK(pn_metrics_gauge(reg, "p_g", "Help with \\ and\nnewline \"q\".",
                                   "v", &g));
    pn_series_set(pn_metric_with(g, L("a\"b\\c\nd")), INFINITY);
    pn_series_set(pn_metric_with(g, L("neg")), -INFINITY);
    pn_series_set(pn_metric_with(g, L("nan")), NAN);
    pn_series_set(pn_metric_with(g, L("big")), 1e20);
    pn_series_set(pn_metric_with(g, L("tenth")), 0.1);
    char *text = render(reg);
    EXPECT_TEXT(text,
                     "# HELP p_g Help with \\\\ and\\nnewline \"q\".\n"
                     "# TYPE p_g gauge\n"
                     "p_g{v=\"a\\\"b\\\\c\\nd\"} +Inf\n"
                     "p_g{v=\"neg\"} -Inf\n"
                     "p_g{v=\"nan\"} NaN\n"
                     "p_g{v=\"big\"} 1e+20\n"
                     "p_g{v=\"tenth\"} 0.1\n");
    free(text);
    pn_metrics_free(reg);
}

static void test_null_series_and_too_large(void) {
    pn_series_add(NULL, 1);
    pn_series_inc(NULL);
    pn_series_set(NULL, 1);
    pn_series_observe(NULL, 1);
    PN_ASSERT(pn_series_value(NULL) == 0);
    PN_ASSERT(pn_metric_with(NULL, NULL) == NULL);
    pn_metric_remove(NULL, NULL);
    pn_metrics_t *reg = pn_metrics_new();
    pn_metric_t *c;
    PN_REQUIRE_OK(pn_metrics_counter(reg, "p_c_total", "C.", "i", &c));
    for (int i = 0; i < 100; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        pn_series_inc(pn_metric_with(c, L(v)));
    }
    pn_buf_t small;
    pn_buf_init(&small, 256);
    PN_ASSERT_EQ_INT(pn_metrics_render(reg, &small), PN_ERR_TOO_LARGE);
    pn_buf_free(&small);
    pn_metrics_free(reg);
}

/* --- threads ---------------------------------------------------------------- */

#define THREADS 4
#define PER_THREAD 100000

typedef struct worker_arg {
    pn_metric_t *c, *h, *g;
    int id;
} worker_arg_t;

static void *hammer(void *opaque) {
    worker_arg_t *a = opaque;
    pn_series_t *shared = pn_metric_with(a->c, L("shared"));
    pn_series_t *hist = pn_metric_with(a->h, NULL);
    for (int i = 0; i < PER_THREAD; i++) {
        pn_series_inc(shared);
        pn_series_add(pn_metric_with(a->g, L(a->id % 2 ? "odd" : "even")), 1);
        pn_series_observe(hist, (double)(i % 10));
    }
    return NULL;
}

static void *scrape(void *opaque) {
    pn_metrics_t *reg = opaque;
    for (int i = 0; i < 200; i++) {
        pn_buf_t buf;
        pn_buf_init(&buf, 1 << 20);
        if (pn_metrics_render(reg, &buf))
            abort();
        pn_buf_free(&buf);
    }
    return NULL;
}

static void test_concurrent_updates(void) {
    pn_metrics_t *reg = pn_metrics_new();
    pn_metric_t *c, *h, *g;
    double bounds[] = {1, 5};
    PN_REQUIRE_OK(pn_metrics_counter(reg, "p_c_total", "C.", "k", &c));
    PN_REQUIRE_OK(pn_metrics_histogram(reg, "p_h", "H.", NULL, bounds, 2, &h));
    PN_REQUIRE_OK(pn_metrics_gauge(reg, "p_g", "G.", "k", &g));
    pthread_t threads[THREADS], scraper;
    worker_arg_t args[THREADS];
    PN_REQUIRE(pthread_create(&scraper, NULL, scrape, reg) == 0);
    for (int i = 0; i < THREADS; i++) {
        args[i] = (worker_arg_t){c, h, g, i};
        PN_REQUIRE(pthread_create(&threads[i], NULL, hammer, &args[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    pthread_join(scraper, NULL);
    PN_ASSERT(pn_series_value(pn_metric_with(c, L("shared"))) == THREADS * PER_THREAD);
    PN_ASSERT(pn_series_value(pn_metric_with(g, L("odd"))) == THREADS / 2 * PER_THREAD);
    PN_ASSERT(pn_series_value(pn_metric_with(h, NULL)) == THREADS * PER_THREAD);
    char *text = render(reg);
    /* 0 and 1 of every 10 observations are <= 1; 0..5 are <= 5. */
    char line[128];
    snprintf(line, sizeof line, "p_h_bucket{le=\"1\"} %d\n", THREADS * PER_THREAD / 5);
    PN_ASSERT(strstr(text, line) != NULL);
    snprintf(line, sizeof line, "p_h_bucket{le=\"5\"} %d\n", THREADS * PER_THREAD * 6 / 10);
    PN_ASSERT(strstr(text, line) != NULL);
    snprintf(line, sizeof line, "p_h_sum %d\n", THREADS * PER_THREAD / 10 * 45);
    PN_ASSERT(strstr(text, line) != NULL);
    free(text);
    pn_metrics_free(reg);
}

/* --- health and HTTP handlers ------------------------------------------------ */

static int call(const pn_http_route_t *route, char *body, size_t size) {
    pn_http_response_t r = {.status = 200, .content_type = "text/plain"};
    pn_buf_init(&r.body, 16 << 20);
    route->handler(route->opaque, route->prefix, &r);
    snprintf(body, size, "%.*s", (int)r.body.len, (const char *)r.body.data);
    pn_buf_free(&r.body);
    return r.status;
}

static void test_health_and_routes(void) {
    pn_health_t *health = pn_health_new(150);
    pn_metrics_t *reg = pn_metrics_new();
    PN_REQUIRE(health && reg);
    pn_http_route_t routes[PN_METRICS_ROUTES];
    PN_ASSERT_EQ_INT(pn_metrics_http_routes(reg, NULL, routes), 1);
    PN_ASSERT_EQ_INT(pn_metrics_http_routes(NULL, health, routes), 2);
    PN_REQUIRE(pn_metrics_http_routes(reg, health, routes) == 3);
    PN_ASSERT_EQ_STR(routes[0].prefix, "/metrics");
    PN_ASSERT_EQ_STR(routes[1].prefix, "/livez");
    PN_ASSERT_EQ_STR(routes[2].prefix, "/readyz");
    char body[128];

    /* Starting: live (the clock starts at creation), not ready. */
    PN_ASSERT_EQ_INT(call(&routes[1], body, sizeof body), 200);
    PN_ASSERT_EQ_STR(body, "ok\n");
    PN_ASSERT_EQ_INT(call(&routes[2], body, sizeof body), 503);
    PN_ASSERT_EQ_STR(body, "not ready: starting\n");
    pn_health_set_ready(health, false, "restoring partitions");
    PN_ASSERT_EQ_INT(call(&routes[2], body, sizeof body), 503);
    PN_ASSERT_EQ_STR(body, "not ready: restoring partitions\n");
    pn_health_set_ready(health, true, NULL);
    PN_ASSERT_EQ_INT(call(&routes[2], body, sizeof body), 200);

    /* No beat for longer than the stall limit: not live; a beat heals. */
    usleep(250 * 1000);
    int64_t age;
    PN_ASSERT(!pn_health_live(health, &age));
    PN_ASSERT(age >= 250);
    PN_ASSERT_EQ_INT(call(&routes[1], body, sizeof body), 503);
    PN_ASSERT(strncmp(body, "stalled: no progress for ", 25) == 0);
    pn_health_beat(health);
    PN_ASSERT(pn_health_live(health, NULL));
    PN_ASSERT_EQ_INT(call(&routes[1], body, sizeof body), 200);

    pn_metric_t *c;
    PN_REQUIRE_OK(pn_metrics_counter(reg, "p_c_total", "C.", NULL, &c));
    pn_http_response_t r = {.status = 200, .content_type = "text/plain"};
    pn_buf_init(&r.body, 16 << 20);
    routes[0].handler(routes[0].opaque, "/metrics", &r);
    PN_ASSERT_EQ_INT(r.status, 200);
    PN_ASSERT_EQ_STR(r.content_type, PN_METRICS_CONTENT_TYPE);
    PN_ASSERT(r.body.len > 0 && memmem(r.body.data, r.body.len, "p_c_total 0\n", 12));
    pn_buf_free(&r.body);
    /* A body that cannot hold the text: 500, not a cut exposition. */
    pn_buf_init(&r.body, 8);
    routes[0].handler(routes[0].opaque, "/metrics", &r);
    PN_ASSERT_EQ_INT(r.status, 500);
    pn_buf_free(&r.body);

    pn_health_beat(NULL);
    pn_health_set_ready(NULL, true, NULL);
    pn_health_free(health);
    pn_health_free(NULL);
    pn_metrics_free(reg);
}

/* --- the reference parser ---------------------------------------------------- */

static json_t *parse_or_skip(const char *text) {
    json_t *families = NULL;
    char err[2048];
    int rc = pn_prom_parse(text, strlen(text), &families, err, sizeof err);
    if (rc == PN_PROM_MISSING) {
        fprintf(stderr, "skipped: python3 with prometheus_client is needed "
                        "(python3 -m pip install prometheus_client)\n");
        exit(PN_PROM_MISSING);
    }
    if (rc != 0)
        fprintf(stderr, "exposition does not parse: %s\n%s", err, text);
    PN_ASSERT_(rc == 0, CU_TRUE, "%s", "the exposition parses");
    return families;
}

static void test_reference_parser(void) {
    pn_metrics_t *reg = pn_metrics_new();
    pn_metric_t *c, *g, *h, *empty;
    double bounds[] = {0.001, 0.25, 2.5, 1000};
    PN_REQUIRE_OK(pn_metrics_counter(reg, "panther_commands_total",
                                     "Commands \"executed\" \\ counted.\nTwo lines.",
                                     "type,status", &c));
    PN_REQUIRE_OK(pn_metrics_gauge(reg, "panther_lag", "Lag.", "topic,partition", &g));
    PN_REQUIRE_OK(pn_metrics_histogram(reg, "panther_batch_seconds", "Batches.",
                                       "kind", bounds, 4, &h));
    PN_REQUIRE_OK(pn_metrics_gauge(reg, "panther_nothing_yet", "Empty.", "x", &empty));
    pn_series_add(pn_metric_with(c, L("UPDATE", "ACCEPTED")), 41);
    pn_series_inc(pn_metric_with(c, L("UPDATE", "ACCEPTED")));
    pn_series_add(pn_metric_with(c, L("SHIP", "REJECTED")), 7);
    const char *tricky = "in\"ventory\\commands\nüñí,=}{";
    pn_series_set(pn_metric_with(g, L(tricky, "3")), 1234567);
    pn_series_set(pn_metric_with(g, L("t", "4")), NAN);
    pn_series_set(pn_metric_with(g, L("t", "5")), -INFINITY);
    pn_series_t *hs = pn_metric_with(h, L("a"));
    for (int i = 0; i < 1000; i++)
        pn_series_observe(hs, i * 0.01);
    char *text = render(reg);
    json_t *families = parse_or_skip(text);

    PN_ASSERT_EQ_INT(json_array_size(families), 4);
    json_t *f = pn_prom_family(families, "panther_commands");
    PN_REQUIRE(f != NULL);
    PN_ASSERT_EQ_STR(json_string_value(json_object_get(f, "type")), "counter");
    PN_ASSERT_EQ_STR(json_string_value(json_object_get(f, "help")),
                     "Commands \"executed\" \\ counted.\nTwo lines.");
    bool found;
    double v = pn_prom_value(families, "panther_commands_total",
                             "type=UPDATE,status=ACCEPTED", &found);
    PN_ASSERT(found && v == 42);
    v = pn_prom_value(families, "panther_commands_total", "type=SHIP,status=REJECTED",
                      &found);
    PN_ASSERT(found && v == 7);

    /* The tricky label value comes back byte for byte. */
    json_t *lag = json_object_get(pn_prom_family(families, "panther_lag"), "samples");
    PN_REQUIRE(json_array_size(lag) == 3);
    json_t *labels = json_array_get(json_array_get(lag, 0), 1);
    PN_ASSERT_EQ_STR(json_string_value(json_object_get(labels, "topic")), tricky);
    PN_ASSERT_EQ_STR(json_string_value(json_array_get(json_array_get(lag, 0), 2)),
                     "1234567.0");
    PN_ASSERT_EQ_STR(json_string_value(json_array_get(json_array_get(lag, 1), 2)), "nan");
    PN_ASSERT_EQ_STR(json_string_value(json_array_get(json_array_get(lag, 2), 2)), "-inf");

    f = pn_prom_family(families, "panther_batch_seconds");
    PN_REQUIRE(f != NULL);
    PN_ASSERT_EQ_STR(json_string_value(json_object_get(f, "type")), "histogram");
    v = pn_prom_value(families, "panther_batch_seconds_bucket", "kind=a,le=0.25", &found);
    PN_ASSERT(found && v == 26); /* 0.00 .. 0.25 */
    v = pn_prom_value(families, "panther_batch_seconds_bucket", "kind=a,le=+Inf", &found);
    PN_ASSERT(found && v == 1000);
    v = pn_prom_value(families, "panther_batch_seconds_count", "kind=a", &found);
    PN_ASSERT(found && v == 1000);
    v = pn_prom_value(families, "panther_batch_seconds_sum", "kind=a", &found);
    PN_ASSERT(found && fabs(v - 4995.0) < 1e-6);

    f = pn_prom_family(families, "panther_nothing_yet");
    PN_ASSERT(f != NULL && json_array_size(json_object_get(f, "samples")) == 0);
    json_decref(families);
    free(text);

    /* The parser is a real check: broken text is refused. */
    char err[1024];
    json_t *none = NULL;
    const char *broken = "# TYPE x counter\nx{a=\"unterminated} 1\n";
    PN_ASSERT(pn_prom_parse(broken, strlen(broken), &none, err, sizeof err) == -1);
    PN_ASSERT(none == NULL);
    pn_metrics_free(reg);
}

static const pn_test_case_t metric_cases[] = {
    {"names and labels", test_names_and_labels},
    {"counter and gauge text", test_counter_and_gauge_text},
    {"histogram text", test_histogram_text},
    {"escaping and special values", test_escaping_and_special_values},
    {"NULL series and a full buffer", test_null_series_and_too_large},
    {"concurrent updates and scrapes", test_concurrent_updates},
    {"health and HTTP handlers", test_health_and_routes},
    {NULL, NULL}};

static const pn_test_case_t parser_cases[] = {
    {"reference parser reads the exposition", test_reference_parser},
    {NULL, NULL}};

/* `test_metrics metrics` runs the first suite alone; the second runs as its
 * own ctest entry (test_metrics_prometheus) so that a missing parser skips
 * only it. */
const pn_test_suite_t pn_test_suites[] = {{"metrics", metric_cases},
                                          {"prometheus", parser_cases},
                                          {NULL, NULL}};
