/* panther state against a store built with the engine, and the checks
 * panther rebuild makes before it touches Kafka (no broker needed). The
 * real binary runs as a child (PN_PANTHER), as an operator would run it. */
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "panther/engine.h"
#include "pn_test.h"

static char *dir;
static char store_path[4200];

/* Runs panther with args; stdout into *out (caller frees). */
static int run(const char *const *args, char **out) {
    const char *panther = getenv("PN_PANTHER");
    PN_REQUIRE(panther != NULL);
    char out_path[4300], err_path[4300];
    snprintf(out_path, sizeof out_path, "%s/stdout", dir);
    snprintf(err_path, sizeof err_path, "%s/stderr", dir);
    const char *argv[32] = {panther};
    int argc = 1;
    for (int i = 0; args[i] && argc < 31; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    pid_t pid = fork();
    PN_REQUIRE(pid >= 0);
    if (pid == 0) {
        int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fo < 0 || fe < 0)
            _exit(126);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(panther, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (out) {
        FILE *f = fopen(out_path, "r");
        char buf[8192] = "";
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        buf[n] = '\0';
        if (f)
            fclose(f);
        *out = strdup(buf);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void exec_cmd(pn_engine_t *engine, pn_command_type_t type,
                     const char *id, const char *order, const char *sku,
                     const char *node, int32_t q) {
    pn_command_t c = {.type = type, .id = pn_str_c(id),
                      .order_id = order ? pn_str_c(order) : PN_STR_NULL,
                      .sku_id = pn_str_c(sku), .node_id = pn_str_c(node),
                      .by = pn_str_c("test"), .at_ms = 1767225600000LL,
                      .has_quantity = true, .quantity = q};
    pn_engine_result_t res;
    char err[256];
    PN_REQUIRE_OK(pn_engine_execute(engine, 0, &c, &res, err, sizeof err));
    PN_ASSERT_EQ_INT(res.outcome.status, PN_STATUS_ACCEPTED);
}

#define TRICKY_SKU "SKU \"quoted\" \\ ünï"

/* A store with two streams, written by the engine as a worker would. */
static void build_store(void) {
    dir = pn_test_tmpdir("cli-state");
    PN_REQUIRE(dir != NULL);
    snprintf(store_path, sizeof store_path, "%s/store", dir);
    pn_codec_config_t cc = {0};
    pn_codec_t *codec;
    pn_store_t *store;
    pn_engine_t *engine;
    char err[512];
    PN_REQUIRE_OK(pn_codec_new(&cc, &codec, err, sizeof err));
    pn_store_options_t so = {.path = store_path};
    PN_REQUIRE_OK(pn_store_open(&so, &store, err, sizeof err));
    pn_engine_options_t eo = {.store = store, .codec = codec};
    PN_REQUIRE_OK(pn_engine_new(&eo, &engine, err, sizeof err));
    exec_cmd(engine, PN_CMD_UPDATE, "u1", NULL, "SKU-1", "DC-1", 10);
    exec_cmd(engine, PN_CMD_RESERVE, "r1", "o-2", "SKU-1", "DC-1", 2);
    exec_cmd(engine, PN_CMD_RESERVE, "r2", "o-1", "SKU-1", "DC-1", 3);
    exec_cmd(engine, PN_CMD_CANCEL, "c1", "o-2", "SKU-1", "DC-1", 1);
    exec_cmd(engine, PN_CMD_UPDATE, "u2", NULL, TRICKY_SKU, "DC-1", 4);
    pn_engine_checkpoint_t cp = {0, 2};
    PN_REQUIRE_OK(pn_engine_commit(engine, &cp, 1, err, sizeof err));
    pn_engine_free(engine);
    pn_store_close(store);
    pn_codec_free(codec);
}

static void teardown(void) {
    pn_test_rmdir(dir);
    free(dir);
    dir = NULL;
}

static json_int_t jint(json_t *o, const char *key) {
    return json_integer_value(json_object_get(o, key));
}

static void test_state_prints_json(void) {
    build_store();
    char set[4400];
    snprintf(set, sizeof set, "store.path=%s", store_path);
    char *out = NULL;
    const char *args[] = {"state", "--set", set, "SKU-1", "DC-1", NULL};
    PN_ASSERT_EQ_INT(run(args, &out), 0);
    json_error_t je;
    json_t *doc = json_loads(out, 0, &je);
    PN_REQUIRE(doc != NULL);
    PN_ASSERT_EQ_STR(json_string_value(json_object_get(doc, "skuId")), "SKU-1");
    PN_ASSERT_EQ_STR(json_string_value(json_object_get(doc, "fulfillmentNodeId")),
                     "DC-1");
    PN_ASSERT_EQ_INT(jint(doc, "version"), 4);
    PN_ASSERT_EQ_INT(jint(doc, "onHand"), 10);
    PN_ASSERT_EQ_INT(jint(doc, "reserved"), 4);
    PN_ASSERT_EQ_INT(jint(doc, "available"), 6);
    json_t *res = json_object_get(doc, "reservations");
    PN_REQUIRE(json_array_size(res) == 2);
    /* Sorted by order id. */
    PN_ASSERT_EQ_STR(json_string_value(json_object_get(json_array_get(res, 0), "orderId")),
                     "o-1");
    PN_ASSERT_EQ_INT(jint(json_array_get(res, 0), "quantity"), 3);
    PN_ASSERT_EQ_STR(json_string_value(json_object_get(json_array_get(res, 1), "orderId")),
                     "o-2");
    PN_ASSERT_EQ_INT(jint(json_array_get(res, 1), "quantity"), 1);
    json_decref(doc);
    free(out);

    /* Ids that need escaping come back intact. */
    const char *tricky[] = {"state", "--set", set, TRICKY_SKU, "DC-1", NULL};
    PN_ASSERT_EQ_INT(run(tricky, &out), 0);
    doc = json_loads(out, 0, &je);
    PN_REQUIRE(doc != NULL);
    PN_ASSERT_EQ_STR(json_string_value(json_object_get(doc, "skuId")), TRICKY_SKU);
    PN_ASSERT_EQ_INT(jint(doc, "onHand"), 4);
    PN_ASSERT_EQ_INT(json_array_size(json_object_get(doc, "reservations")), 0);
    json_decref(doc);
    free(out);
    teardown();
}

static void test_state_errors(void) {
    build_store();
    char set[4400], missing[4400];
    snprintf(set, sizeof set, "store.path=%s", store_path);
    snprintf(missing, sizeof missing, "store.path=%s/none", dir);
    char *out = NULL;
    const char *unknown[] = {"state", "--set", set, "SKU-9", "DC-1", NULL};
    PN_ASSERT_EQ_INT(run(unknown, &out), 1);
    PN_ASSERT_EQ_STR(out, "");
    free(out);
    /* No store there: an error, and nothing is created. */
    const char *none[] = {"state", "--set", missing, "SKU-1", "DC-1", NULL};
    PN_ASSERT_EQ_INT(run(none, NULL), 1);
    char none_path[4400];
    snprintf(none_path, sizeof none_path, "%s/none", dir);
    struct stat st;
    PN_ASSERT(stat(none_path, &st) != 0);
    const char *bad_id[] = {"state", "--set", set, "SKU|1", "DC-1", NULL};
    PN_ASSERT_EQ_INT(run(bad_id, NULL), 2);
    const char *one_arg[] = {"state", "--set", set, "SKU-1", NULL};
    PN_ASSERT_EQ_INT(run(one_arg, NULL), 2);
    const char *help[] = {"state", "--help", NULL};
    PN_ASSERT_EQ_INT(run(help, &out), 0);
    PN_ASSERT(strstr(out, "usage: panther state") != NULL);
    free(out);
    /* The read API must answer; nothing listens here. */
    const char *url[] = {"state", "--url", "http://127.0.0.1:1", "SKU-1", "DC-1", NULL};
    PN_ASSERT_EQ_INT(run(url, NULL), 1);
    teardown();
}

/* panther rebuild refuses before it reads anything from Kafka. */
static void test_rebuild_refuses(void) {
    build_store();
    char set[4400], other[4500], other_path[4400];
    snprintf(set, sizeof set, "store.path=%s", store_path);
    const char *existing[] = {"rebuild", "--bootstrap", "127.0.0.1:1", "--set",
                              set, NULL};
    PN_ASSERT_EQ_INT(run(existing, NULL), 2);
    /* Not a store at all: refused even with --force. */
    snprintf(other_path, sizeof other_path, "%s/not-a-store", dir);
    PN_REQUIRE(mkdir(other_path, 0755) == 0);
    char file[4600];
    snprintf(file, sizeof file, "%s/precious.txt", other_path);
    FILE *f = fopen(file, "w");
    PN_REQUIRE(f != NULL);
    fputs("keep me\n", f);
    fclose(f);
    snprintf(other, sizeof other, "store.path=%s", other_path);
    const char *foreign[] = {"rebuild", "--force", "--bootstrap", "127.0.0.1:1",
                             "--set", other, NULL};
    PN_ASSERT_EQ_INT(run(foreign, NULL), 2);
    struct stat st;
    PN_ASSERT(stat(file, &st) == 0);
    const char *help[] = {"rebuild", "--help", NULL};
    PN_ASSERT_EQ_INT(run(help, NULL), 0);
    const char *extra[] = {"rebuild", "now", NULL};
    PN_ASSERT_EQ_INT(run(extra, NULL), 2);
    teardown();
}

static const pn_test_case_t cases[] = {
    {"state prints the stream as JSON", test_state_prints_json},
    {"state errors and exit codes", test_state_errors},
    {"rebuild refuses existing stores and foreign directories",
     test_rebuild_refuses},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {{"cli_state", cases}, {NULL, NULL}};
