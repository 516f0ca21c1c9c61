/* The demo: its order flow and prediction (pure), its options, and whole
 * runs on librdkafka's mock cluster (no broker needed), whose summary
 * must agree with itself, with the audit and with the prediction. */
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "demo_flow.h"
#include "panther/demo.h"
#include "panther/log.h"
#include "pn_test.h"

static uint64_t sum(const uint64_t *v, int n) {
    uint64_t s = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    return s;
}

/* --- the order flow ------------------------------------------------------- */

static void build(pn_demo_flow_t *f, int commands, int skus, int nodes,
                  int partitions, uint64_t seed) {
    pn_demo_flow_options_t o = {.commands = commands, .skus = skus,
                                .nodes = nodes, .partitions = partitions,
                                .seed = seed, .start_ms = 1767225600000LL};
    char err[256] = "";
    pn_err_t e = pn_demo_flow_build(&o, f, err, sizeof err);
    PN_ASSERT_(e == PN_ERR_OK, CU_TRUE, "flow: %s", err);
}

static void test_flow_shape(void) {
    pn_demo_flow_t f;
    build(&f, 3000, 12, 3, 4, 42);
    const pn_demo_flow_stats_t *s = &f.sent;
    const pn_demo_counts_t *c = &f.expected;
    PN_ASSERT_EQ_INT(s->commands, 3000);
    PN_ASSERT_EQ_INT(s->records, f.n_records);
    PN_ASSERT_EQ_INT(s->records, s->commands + s->undecodable);
    PN_ASSERT_EQ_INT(sum(s->by_type, PN_CMD__COUNT), s->commands);
    PN_ASSERT_EQ_INT(s->undecodable, 2);
    PN_ASSERT_EQ_INT(s->misrouted, 2);
    /* Every command gets exactly one predicted reply. */
    PN_ASSERT_EQ_INT(sum(c->accepted, PN_CMD__COUNT) +
                         sum(c->rejected, PN_CMD__COUNT) + c->duplicates,
                     s->commands);
    PN_ASSERT_EQ_INT(sum(c->reasons, PN_REASON__COUNT),
                     sum(c->rejected, PN_CMD__COUNT));
    PN_ASSERT_EQ_INT(c->duplicates, s->resent);
    /* The shop does what a shop does, and makes mistakes. */
    for (int t = 0; t < PN_CMD__COUNT; t++)
        PN_ASSERT_(c->accepted[t] > 0, CU_FALSE, "no accepted %s",
                   pn_command_type_name((pn_command_type_t)t));
    for (int r = 0; r < PN_REASON__COUNT; r++)
        PN_ASSERT_(c->reasons[r] > 0, CU_FALSE, "no %s rejection",
                   pn_reason_name((pn_reason_t)r));
    PN_ASSERT(s->resent > 0 && s->mistakes > 0 && s->orders > 0);
    PN_ASSERT(c->events > 0 && c->events < s->commands);
    PN_ASSERT_EQ_INT(f.streams.count, 36);
    pn_demo_flow_free(&f);
}

static bool same_records(const pn_demo_flow_t *a, const pn_demo_flow_t *b) {
    if (a->n_records != b->n_records || a->bytes.len != b->bytes.len)
        return false;
    return memcmp(a->bytes.data, b->bytes.data, a->bytes.len) == 0;
}

static void test_flow_is_a_function_of_the_seed(void) {
    pn_demo_flow_t a, b, c;
    build(&a, 1000, 5, 2, 3, 7);
    build(&b, 1000, 5, 2, 3, 7);
    build(&c, 1000, 5, 2, 3, 8);
    PN_ASSERT(same_records(&a, &b));
    PN_ASSERT(!same_records(&a, &c));
    pn_demo_flow_free(&a);
    pn_demo_flow_free(&b);
    pn_demo_flow_free(&c);
}

static void test_flow_edges(void) {
    pn_demo_flow_t f;
    /* One partition: nothing can be misrouted. */
    build(&f, 200, 1, 1, 1, 1);
    PN_ASSERT_EQ_INT(f.sent.misrouted, 0);
    PN_ASSERT_EQ_INT(f.sent.commands, 200);
    pn_demo_flow_free(&f);
    /* More streams than commands: half the flow stocks what it can. */
    build(&f, 100, 100, 100, 4, 1);
    PN_ASSERT_EQ_INT(f.sent.commands, 100);
    PN_ASSERT(f.sent.by_type[PN_CMD_UPDATE] >= 48);
    pn_demo_flow_free(&f);
    build(&f, 1, 1, 1, 1, 1);
    PN_ASSERT_EQ_INT(f.sent.commands, 1);
    pn_demo_flow_free(&f);
}

/* --- options -------------------------------------------------------------- */

static void expect_bad(pn_demo_options_t o, const char *name) {
    char err[256] = "";
    PN_ASSERT_EQ_INT(pn_demo_options_check(&o, err, sizeof err),
                     PN_ERR_INVALID_ARG);
    PN_ASSERT_(strstr(err, name) != NULL, CU_FALSE, "'%s' does not name %s",
               err, name);
}

static void test_options(void) {
    char err[256];
    pn_demo_options_t o = {0};
    PN_ASSERT_EQ_INT(pn_demo_options_check(&o, err, sizeof err), PN_ERR_OK);
    expect_bad((pn_demo_options_t){.commands = -1}, "commands");
    expect_bad((pn_demo_options_t){.commands = PN_DEMO_MAX_COMMANDS + 1},
               "commands");
    expect_bad((pn_demo_options_t){.skus = PN_DEMO_MAX_SKUS + 1}, "skus");
    expect_bad((pn_demo_options_t){.nodes = -3}, "nodes");
    expect_bad((pn_demo_options_t){.workers = PN_DEMO_MAX_WORKERS + 1},
               "workers");
    expect_bad((pn_demo_options_t){.partitions = PN_DEMO_MAX_PARTITIONS + 1},
               "partitions");
    expect_bad((pn_demo_options_t){.skus = 1000, .nodes = 100}, "streams");
    pn_demo_result_t r;
    o.workers = -1;
    PN_ASSERT_EQ_INT(pn_demo_run(&o, &r, err, sizeof err), PN_ERR_INVALID_ARG);
    pn_demo_result_free(&r);
}

/* --- whole runs on the mock cluster --------------------------------------- */

static size_t entries(const char *dir) {
    DIR *d = opendir(dir);
    size_t n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d)
        closedir(d);
    return n;
}

/* The summary agrees with itself, with the audit and with the flow. */
static void check_result(const pn_demo_result_t *r) {
    const pn_demo_counts_t *c = &r->counts;
    const pn_audit_report_t *a = &r->audit;
    PN_ASSERT(r->audited);
    if (a->violations)
        pn_audit_report_print(a, stderr);
    PN_ASSERT_EQ_INT(a->violations, 0);
    PN_ASSERT_EQ_INT(r->mismatches, 0);
    PN_ASSERT(pn_demo_passed(r));
    PN_ASSERT(a->caught_up);
    /* One reply per decodable command record, one dead letter per
     * undecodable one, one forward per misrouted one. */
    uint64_t replies = sum(c->accepted, PN_CMD__COUNT) +
                       sum(c->rejected, PN_CMD__COUNT) + c->duplicates;
    PN_ASSERT_EQ_INT(replies, r->sent.commands);
    PN_ASSERT_EQ_INT(a->outcomes, r->sent.commands);
    PN_ASSERT_EQ_INT(a->command_records, r->sent.records + r->sent.misrouted);
    PN_ASSERT_EQ_INT(a->dead_letters, r->sent.undecodable);
    PN_ASSERT_EQ_INT(a->forwarded_copies, r->sent.misrouted);
    PN_ASSERT_EQ_INT(a->duplicate_outcomes, c->duplicates);
    PN_ASSERT_EQ_INT(c->duplicates, r->sent.resent);
    PN_ASSERT_EQ_INT(sum(c->reasons, PN_REASON__COUNT),
                     sum(c->rejected, PN_CMD__COUNT));
    /* The table: each row is a fold, the versions add up to the events. */
    PN_ASSERT_EQ_INT(r->n_streams, a->streams);
    int64_t versions = 0;
    for (size_t i = 0; i < r->n_streams; i++) {
        const pn_demo_stream_t *s = &r->streams[i];
        PN_ASSERT_EQ_INT(s->available, s->on_hand - s->reserved);
        PN_ASSERT(s->on_hand >= 0 && s->reserved >= 0 && s->version > 0);
        PN_ASSERT((s->reserved == 0) == (s->open_orders == 0));
        versions += s->version;
        if (i > 0) {
            const pn_demo_stream_t *p = &r->streams[i - 1];
            int order = strcmp(p->sku_id, s->sku_id);
            PN_ASSERT(order < 0 || (order == 0 && strcmp(p->node_id,
                                                         s->node_id) < 0));
        }
    }
    PN_ASSERT_EQ_INT(versions, c->events);
    PN_ASSERT_EQ_INT(c->events, a->events);
    PN_ASSERT_EQ_INT(r->worker_totals.aborts, 0);
    PN_ASSERT_EQ_INT(r->rebalances_while_running, 0);
    PN_ASSERT_EQ_INT(r->worker_totals.dead_letters, r->sent.undecodable);
    PN_ASSERT_EQ_INT(r->worker_totals.forwarded, r->sent.misrouted);
}

static void run_demo(bool at_least_once) {
    pn_log_set_level(PN_LOG_ERROR); /* the dead letters are on purpose */
    char *dir = pn_test_tmpdir("demo");
    PN_REQUIRE(dir != NULL);
    pn_demo_options_t o = {.commands = 500, .workers = 2, .partitions = 4,
                           .seed = 7, .seed_set = true,
                           .at_least_once = at_least_once, .dir = dir,
                           .timeout_ms = 60000};
    pn_demo_result_t r;
    char err[1024] = "";
    pn_err_t e = pn_demo_run(&o, &r, err, sizeof err);
    PN_ASSERT_(e == PN_ERR_OK, CU_FALSE, "demo: %s (%s)", pn_err_name(e), err);
    if (!e) {
        PN_ASSERT_EQ_INT(r.exactly_once, !at_least_once);
        PN_ASSERT_EQ_INT(r.sent.commands, 500);
        check_result(&r);
        /* A store per worker in the given directory, which is kept. */
        PN_ASSERT_EQ_INT(entries(dir), 2);
    }
    pn_demo_result_free(&r);
    pn_test_rmdir(dir);
    free(dir);
}

static void test_run_exactly_once(void) { run_demo(false); }

static void test_run_at_least_once(void) { run_demo(true); }

static volatile sig_atomic_t stop_now = 1;

static void test_interrupted(void) {
    pn_demo_options_t o = {.commands = 100, .interrupted = &stop_now};
    pn_demo_result_t r;
    char err[256] = "";
    PN_ASSERT_EQ_INT(pn_demo_run(&o, &r, err, sizeof err), PN_ERR_STATE);
    PN_ASSERT_(strstr(err, "interrupted") != NULL, CU_FALSE, "%s", err);
    PN_ASSERT(!pn_demo_passed(&r));
    pn_demo_result_free(&r);
}

static const pn_test_case_t flow_cases[] = {
    {"shape and prediction", test_flow_shape},
    {"a function of the seed", test_flow_is_a_function_of_the_seed},
    {"edges", test_flow_edges},
    {NULL, NULL}};

static const pn_test_case_t run_cases[] = {
    {"options", test_options},
    {"exactly once on the mock cluster", test_run_exactly_once},
    {"at least once on the mock cluster", test_run_at_least_once},
    {"interrupted", test_interrupted},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {{"demo_flow", flow_cases},
                                          {"demo", run_cases},
                                          {NULL, NULL}};
