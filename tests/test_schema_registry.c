/*
 * Tests of the Schema Registry client against a fake registry
 * (fake_registry.h): a thread in this process that listens on 127.0.0.1
 * (a free port) and answers GET /schemas/ids/<id> like Confluent's: our
 * Command schema, an evolution of it, 404 with error 40403, 500, a slow
 * answer, oversized bodies, a Protobuf schema, schema references, a 404
 * that is not the registry's, 401 without the right credentials, 503
 * while "down". Through the codec they check that a Confluent-framed
 * record decodes with the registry's writer schema and that each failure
 * has the error class the worker acts on (dead letter or retry).
 */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "fake_registry.h"
#include "panther/codec.h"
#include "panther/schema_registry.h"
#include "pn_test.h"

#define ERRSZ 1024
#define ALICE_AUTH "alice:s3cret"
#define ALICE_HEADER "Basic YWxpY2U6czNjcmV0" /* base64 of ALICE_AUTH */

/* --- helpers ------------------------------------------------------------- */

static pn_schema_registry_t *new_registry(const char *url, const char *auth,
                                          int timeout_ms, int negative_ttl_ms,
                                          size_t max_bytes) {
    pn_schema_registry_options_t o = {.url = url,
                                      .basic_auth = auth,
                                      .timeout_ms = timeout_ms,
                                      .negative_ttl_ms = negative_ttl_ms,
                                      .max_response_bytes = max_bytes};
    pn_schema_registry_t *reg = NULL;
    char errstr[ERRSZ] = "";
    pn_err_t err = pn_schema_registry_new(&o, &reg, errstr, sizeof errstr);
    PN_ASSERT_(err == PN_ERR_OK, CU_TRUE, "pn_schema_registry_new: %s (%s)",
               pn_err_name(err), errstr);
    return reg;
}

static pn_schema_registry_t *fake_registry(const fake_sr_t *f,
                                           const char *auth) {
    char url[64];
    fake_sr_url(f, url, sizeof url);
    return new_registry(url, auth, 2000, 0, 0);
}

static pn_codec_t *registry_codec(pn_schema_registry_t *reg) {
    pn_codec_config_t conf = {.lookup = pn_schema_registry_lookup,
                              .lookup_opaque = reg};
    pn_codec_t *codec = NULL;
    char errstr[ERRSZ] = "";
    PN_REQUIRE_OK(pn_codec_new(&conf, &codec, errstr, sizeof errstr));
    return codec;
}

/* Asserts a lookup's class and that its message contains want. */
static void expect_lookup(pn_schema_registry_t *reg, int32_t id,
                          pn_err_t want_err, const char *want_msg) {
    char *json = NULL;
    char errstr[ERRSZ] = "";
    pn_err_t err = pn_schema_registry_lookup(reg, id, &json, errstr,
                                             sizeof errstr);
    PN_ASSERT_(err == want_err, CU_FALSE, "id %d: got %s (%s), want %s",
               (int)id, pn_err_name(err), errstr, pn_err_name(want_err));
    PN_ASSERT_(strstr(errstr, want_msg) != NULL, CU_FALSE,
               "id %d: message \"%s\" lacks \"%s\"", (int)id, errstr,
               want_msg);
    PN_ASSERT(json == NULL);
    free(json);
}

static pn_err_t decode(pn_codec_t *codec, const fake_sr_bytes_t *rec,
                       pn_command_t *cmd, char *errstr) {
    errstr[0] = '\0';
    return pn_codec_decode_command(codec, rec->b, rec->n, cmd, errstr, ERRSZ);
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- tests --------------------------------------------------------------- */

static void test_our_schema(void) {
    fake_sr_t f;
    fake_sr_start(&f);
    pn_schema_registry_t *reg = fake_registry(&f, NULL);
    char *json = NULL;
    char errstr[ERRSZ] = "";
    PN_REQUIRE_OK(pn_schema_registry_lookup(reg, FAKE_SR_OURS, &json, errstr,
                                            sizeof errstr));
    PN_ASSERT_EQ_STR(json, pn_schema_json(PN_SCHEMA_COMMAND));
    free(json);
    /* Through the codec: our encoder's Confluent framing, id 1. */
    pn_codec_t *codec = registry_codec(reg);
    pn_command_t cmd = {.type = PN_CMD_CANCEL,
                        .id = pn_str_c("c-1"),
                        .order_id = pn_str_c("order-1"),
                        .sku_id = pn_str_c("sku-1"),
                        .node_id = pn_str_c("node-1"),
                        .by = pn_str_c("svc"),
                        .has_quantity = true,
                        .quantity = 2,
                        .at_ms = 42};
    pn_buf_t out;
    pn_buf_init(&out, 1 << 16);
    PN_REQUIRE_OK(pn_codec_encode_command(codec, &cmd, PN_FRAMING_CONFLUENT,
                                          FAKE_SR_OURS, &out));
    for (int i = 0; i < 3; i++) {
        pn_command_t d;
        PN_REQUIRE_OK(pn_codec_decode_command(codec, out.data, out.len, &d,
                                              errstr, sizeof errstr));
        PN_ASSERT_EQ_INT(d.type, PN_CMD_CANCEL);
        PN_ASSERT_EQ_PNSTR(d.order_id, "order-1");
        PN_ASSERT(d.has_quantity && d.quantity == 2 && d.at_ms == 42);
        pn_command_release(&d);
    }
    /* The codec caches the writer: one more request, not three. */
    PN_ASSERT_EQ_INT(fake_sr_requests(&f, FAKE_SR_OURS), 2);
    PN_ASSERT_EQ_INT(pn_schema_registry_requests(reg), 2);
    pn_buf_free(&out);
    pn_codec_free(codec);
    pn_schema_registry_free(reg);
    fake_sr_stop(&f);
}

static void test_evolved_writer(void) {
    fake_sr_t f;
    fake_sr_start(&f);
    pn_schema_registry_t *reg = fake_registry(&f, NULL);
    pn_codec_t *codec = registry_codec(reg);
    fake_sr_bytes_t rec = {.n = 0};
    fake_sr_evolved_reserve(&rec, FAKE_SR_EVOLVED, "cmd-7", "order-7", "sku-7",
                            "node-7", 5);
    char errstr[ERRSZ];
    pn_command_t d;
    pn_err_t err = decode(codec, &rec, &d, errstr);
    PN_ASSERT_(err == PN_ERR_OK, CU_TRUE, "decode: %s (%s)", pn_err_name(err),
               errstr);
    PN_ASSERT_EQ_INT(d.type, PN_CMD_RESERVE);
    PN_ASSERT_EQ_PNSTR(d.id, "cmd-7");
    PN_ASSERT_EQ_PNSTR(d.order_id, "order-7");
    PN_ASSERT_EQ_PNSTR(d.sku_id, "sku-7");
    PN_ASSERT_EQ_PNSTR(d.node_id, "node-7");
    PN_ASSERT_EQ_PNSTR(d.by, "checkout");
    PN_ASSERT(d.has_quantity && d.quantity == 5);
    PN_ASSERT(d.at_ms == 1717000000123);
    pn_command_release(&d);
    pn_codec_free(codec);
    pn_schema_registry_free(reg);
    fake_sr_stop(&f);
}

static void test_not_found(void) {
    fake_sr_t f;
    fake_sr_start(&f);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", f.port);
    pn_schema_registry_t *reg = new_registry(url, NULL, 2000, 300, 0);
    expect_lookup(reg, FAKE_SR_NOT_FOUND, PN_ERR_UNKNOWN_SCHEMA, "40403");
    expect_lookup(reg, FAKE_SR_NOT_FOUND, PN_ERR_UNKNOWN_SCHEMA, "not found");
    PN_ASSERT_EQ_INT(fake_sr_requests(&f, FAKE_SR_NOT_FOUND), 1); /* negative cache */
    usleep(400 * 1000);
    expect_lookup(reg, FAKE_SR_NOT_FOUND, PN_ERR_UNKNOWN_SCHEMA, "40403");
    PN_ASSERT_EQ_INT(fake_sr_requests(&f, FAKE_SR_NOT_FOUND), 2); /* expired */
    /* No request for an id no registry hands out. */
    expect_lookup(reg, -5, PN_ERR_UNKNOWN_SCHEMA, "negative");
    PN_ASSERT_EQ_INT(fake_sr_requests(&f, 0), 0);
    /* Through the codec: the record is UNKNOWN_SCHEMA (dead-lettered). */
    pn_codec_t *codec = registry_codec(reg);
    fake_sr_bytes_t rec = {.n = 0};
    fake_sr_evolved_reserve(&rec, 77, "cmd-7", "order-7", "sku-7",
                            "node-7", 5);
    char errstr[ERRSZ];
    pn_command_t d;
    PN_ASSERT_EQ_INT(decode(codec, &rec, &d, errstr), PN_ERR_UNKNOWN_SCHEMA);
    PN_ASSERT(strstr(errstr, "77") != NULL);
    pn_codec_free(codec);
    pn_schema_registry_free(reg);
    fake_sr_stop(&f);
}

static void test_server_errors(void) {
    fake_sr_t f;
    fake_sr_start(&f);
    pn_schema_registry_t *reg = fake_registry(&f, NULL);
    expect_lookup(reg, FAKE_SR_SERVER_ERROR, PN_ERR_IO, "HTTP 500");
    expect_lookup(reg, FAKE_SR_SERVER_ERROR, PN_ERR_IO, "backend data store");
    PN_ASSERT_EQ_INT(fake_sr_requests(&f, FAKE_SR_SERVER_ERROR), 2); /* not cached */
    expect_lookup(reg, FAKE_SR_PLAIN_404, PN_ERR_IO, "base URL");
    expect_lookup(reg, FAKE_SR_NOT_JSON, PN_ERR_IO, "not JSON");
    expect_lookup(reg, FAKE_SR_REDIRECT, PN_ERR_IO, "HTTP 301");
    PN_ASSERT_EQ_INT(fake_sr_requests(&f, FAKE_SR_OURS), 0); /* never followed */
    pn_schema_registry_free(reg);
    /* A URL with a path where the registry is not. */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/nothing-here", f.port);
    reg = new_registry(url, NULL, 2000, 0, 0);
    expect_lookup(reg, FAKE_SR_OURS, PN_ERR_IO, "base URL");
    pn_schema_registry_free(reg);
    fake_sr_stop(&f);
}

/* A registry that is down or unreachable is PN_ERR_IO, which the codec
 * does not cache: the same record decodes once it is back. */
static void test_outage_and_recovery(void) {
    fake_sr_t f;
    fake_sr_start(&f);
    pn_schema_registry_t *reg = fake_registry(&f, NULL);
    pn_codec_t *codec = registry_codec(reg);
    fake_sr_bytes_t rec = {.n = 0};
    fake_sr_evolved_reserve(&rec, FAKE_SR_EVOLVED, "cmd-7", "order-7", "sku-7",
                            "node-7", 5);
    char errstr[ERRSZ];
    pn_command_t d;
    fake_sr_set_down(&f, 1);
    for (int i = 0; i < 2; i++) {
        PN_ASSERT_EQ_INT(decode(codec, &rec, &d, errstr), PN_ERR_IO);
        PN_ASSERT(strstr(errstr, "HTTP 503") != NULL);
    }
    fake_sr_set_down(&f, 0);
    PN_ASSERT_EQ_INT(decode(codec, &rec, &d, errstr), PN_ERR_OK);
    PN_ASSERT_EQ_PNSTR(d.id, "cmd-7");
    pn_command_release(&d);
    PN_ASSERT_EQ_INT(fake_sr_requests(&f, FAKE_SR_EVOLVED), 3);
    pn_codec_free(codec);
    pn_schema_registry_free(reg);
    fake_sr_stop(&f);
    /* Nobody listening: connection refused, at once. */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", fake_sr_closed_port());
    reg = new_registry(url, NULL, 2000, 0, 0);
    codec = registry_codec(reg);
    int64_t t0 = now_ms();
    PN_ASSERT_EQ_INT(decode(codec, &rec, &d, errstr), PN_ERR_IO);
    PN_ASSERT(strstr(errstr, "unreachable") != NULL);
    PN_ASSERT(now_ms() - t0 < 1500);
    pn_codec_free(codec);
    pn_schema_registry_free(reg);
}

static void test_timeout(void) {
    fake_sr_t f;
    fake_sr_start(&f);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f.port);
    pn_schema_registry_t *reg = new_registry(url, NULL, 300, 0, 0);
    int64_t t0 = now_ms();
    expect_lookup(reg, FAKE_SR_SLOW, PN_ERR_IO, "timed out");
    int64_t took = now_ms() - t0;
    PN_ASSERT_(took >= 250 && took < 2000, CU_FALSE, "took %lld ms",
               (long long)took);
    /* The handle is still good after a timeout. */
    char *json = NULL;
    char errstr[ERRSZ] = "";
    PN_ASSERT_EQ_INT(pn_schema_registry_lookup(reg, FAKE_SR_OURS, &json, errstr,
                                               sizeof errstr),
                     PN_ERR_OK);
    free(json);
    pn_schema_registry_free(reg);
    fake_sr_stop(&f);
}

static void test_too_large(void) {
    fake_sr_t f;
    fake_sr_start(&f);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f.port);
    pn_schema_registry_t *reg = new_registry(url, NULL, 2000, 0, 64 * 1024);
    expect_lookup(reg, FAKE_SR_HUGE, PN_ERR_TOO_LARGE, "65536 bytes");
    expect_lookup(reg, FAKE_SR_HUGE_STREAM, PN_ERR_TOO_LARGE, "65536 bytes");
    /* A definite answer: remembered for a while. */
    expect_lookup(reg, FAKE_SR_HUGE_STREAM, PN_ERR_TOO_LARGE, "65536 bytes");
    PN_ASSERT_EQ_INT(fake_sr_requests(&f, FAKE_SR_HUGE_STREAM), 1);
    pn_schema_registry_free(reg);
    /* With the default limit (1 MiB) the same body is read whole. */
    reg = new_registry(url, NULL, 2000, 0, 0);
    char *json = NULL;
    char errstr[ERRSZ] = "";
    PN_ASSERT_EQ_INT(pn_schema_registry_lookup(reg, FAKE_SR_HUGE_STREAM, &json,
                                               errstr, sizeof errstr),
                     PN_ERR_OK);
    PN_ASSERT(json && strlen(json) == FAKE_SR_HUGE_BODY);
    free(json);
    pn_schema_registry_free(reg);
    fake_sr_stop(&f);
}

static void test_not_avro(void) {
    fake_sr_t f;
    fake_sr_start(&f);
    pn_schema_registry_t *reg = fake_registry(&f, NULL);
    expect_lookup(reg, FAKE_SR_PROTOBUF, PN_ERR_INCOMPATIBLE_SCHEMA, "PROTOBUF");
    expect_lookup(reg, FAKE_SR_REFERENCES, PN_ERR_INCOMPATIBLE_SCHEMA,
                  "references");
    /* Through the codec: INCOMPATIBLE_SCHEMA (dead-lettered). */
    pn_codec_t *codec = registry_codec(reg);
    fake_sr_bytes_t rec = {.n = 0};
    fake_sr_evolved_reserve(&rec, FAKE_SR_PROTOBUF, "cmd-7", "order-7", "sku-7",
                            "node-7", 5);
    char errstr[ERRSZ];
    pn_command_t d;
    PN_ASSERT_EQ_INT(decode(codec, &rec, &d, errstr),
                     PN_ERR_INCOMPATIBLE_SCHEMA);
    PN_ASSERT(strstr(errstr, "Avro only") != NULL);
    PN_ASSERT_EQ_INT(fake_sr_requests(&f, FAKE_SR_PROTOBUF), 1); /* negative cache */
    pn_codec_free(codec);
    pn_schema_registry_free(reg);
    fake_sr_stop(&f);
}

static void test_basic_auth(void) {
    fake_sr_t f;
    fake_sr_start(&f);
    f.expect_auth = ALICE_HEADER;
    pn_schema_registry_t *reg = fake_registry(&f, ALICE_AUTH);
    char *json = NULL;
    char errstr[ERRSZ] = "";
    PN_REQUIRE_OK(pn_schema_registry_lookup(reg, FAKE_SR_OURS, &json, errstr,
                                            sizeof errstr));
    free(json);
    char auth[128];
    fake_sr_last_auth(&f, auth, sizeof auth);
    PN_ASSERT_EQ_STR(auth, ALICE_HEADER);
    pn_schema_registry_free(reg);
    /* Wrong or no credentials: retried (IO), never shown. */
    reg = fake_registry(&f, "alice:hunter2");
    expect_lookup(reg, FAKE_SR_OURS, PN_ERR_IO, "basic.auth.user.info");
    errstr[0] = '\0';
    PN_ASSERT_EQ_INT(pn_schema_registry_lookup(reg, FAKE_SR_OURS, &json, errstr,
                                               sizeof errstr),
                     PN_ERR_IO);
    PN_ASSERT(strstr(errstr, "hunter2") == NULL);
    pn_schema_registry_free(reg);
    reg = fake_registry(&f, NULL);
    expect_lookup(reg, FAKE_SR_OURS, PN_ERR_IO, "HTTP 401");
    fake_sr_last_auth(&f, auth, sizeof auth);
    PN_ASSERT_EQ_STR(auth, "");
    pn_schema_registry_free(reg);
    /* Credentials in the URL work too, and are masked in messages. */
    char url[96];
    snprintf(url, sizeof url, "http://%s@127.0.0.1:%d", ALICE_AUTH, f.port);
    reg = new_registry(url, NULL, 2000, 0, 0);
    PN_REQUIRE_OK(pn_schema_registry_lookup(reg, FAKE_SR_OURS, &json, errstr,
                                            sizeof errstr));
    free(json);
    expect_lookup(reg, FAKE_SR_SERVER_ERROR, PN_ERR_IO, "http://***@127.0.0.1");
    PN_ASSERT_EQ_INT(pn_schema_registry_lookup(reg, FAKE_SR_SERVER_ERROR, &json,
                                               errstr, sizeof errstr),
                     PN_ERR_IO);
    PN_ASSERT(strstr(errstr, "s3cret") == NULL);
    pn_schema_registry_free(reg);
    fake_sr_stop(&f);
}

/* Several URLs: an unreachable one is skipped, and the one that answered
 * is asked first from then on. */
static void test_failover(void) {
    fake_sr_t f;
    fake_sr_start(&f);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/ , http://127.0.0.1:%d/",
             fake_sr_closed_port(), f.port);
    pn_schema_registry_t *reg = new_registry(url, NULL, 2000, 0, 0);
    char *json = NULL;
    char errstr[ERRSZ] = "";
    PN_REQUIRE_OK(pn_schema_registry_lookup(reg, FAKE_SR_OURS, &json, errstr,
                                            sizeof errstr));
    free(json);
    PN_ASSERT_EQ_INT(pn_schema_registry_requests(reg), 2);
    PN_REQUIRE_OK(pn_schema_registry_lookup(reg, FAKE_SR_EVOLVED, &json, errstr,
                                            sizeof errstr));
    free(json);
    PN_ASSERT_EQ_INT(pn_schema_registry_requests(reg), 3);
    PN_ASSERT_EQ_INT(fake_sr_requests(&f, FAKE_SR_OURS) + fake_sr_requests(&f, FAKE_SR_EVOLVED),
                     2);
    /* All down: the message says so. */
    fake_sr_set_down(&f, 1);
    expect_lookup(reg, FAKE_SR_SERVER_ERROR, PN_ERR_IO, "none of 2");
    pn_schema_registry_free(reg);
    fake_sr_stop(&f);
}

static void test_bad_options(void) {
    pn_schema_registry_t *reg = (pn_schema_registry_t *)&reg;
    char errstr[ERRSZ] = "";
    pn_schema_registry_options_t o = {.url = "ftp://registry:8081"};
    PN_ASSERT_EQ_INT(pn_schema_registry_new(&o, &reg, errstr, sizeof errstr),
                     PN_ERR_CONFIG);
    PN_ASSERT(reg == NULL);
    PN_ASSERT(strstr(errstr, "ftp://registry:8081") != NULL);
    o.url = "http://a:8081,";
    PN_ASSERT_EQ_INT(pn_schema_registry_new(&o, &reg, errstr, sizeof errstr),
                     PN_ERR_CONFIG);
    o.url = "https://u:topsecret@reg.example,gopher://u:topsecret@x";
    PN_ASSERT_EQ_INT(pn_schema_registry_new(&o, &reg, errstr, sizeof errstr),
                     PN_ERR_CONFIG);
    PN_ASSERT(strstr(errstr, "topsecret") == NULL);
    PN_ASSERT(strstr(errstr, "gopher://***@x") != NULL);
    o.url = "";
    PN_ASSERT_EQ_INT(pn_schema_registry_new(&o, &reg, errstr, sizeof errstr),
                     PN_ERR_CONFIG);
    o.url = "http://reg.example:8081";
    o.basic_auth = "justapassword";
    PN_ASSERT_EQ_INT(pn_schema_registry_new(&o, &reg, errstr, sizeof errstr),
                     PN_ERR_CONFIG);
    PN_ASSERT(strstr(errstr, "justapassword") == NULL);
    o.basic_auth = "";
    PN_REQUIRE_OK(pn_schema_registry_new(&o, &reg, errstr, sizeof errstr));
    PN_ASSERT_EQ_INT(pn_schema_registry_requests(reg), 0); /* lazy */
    pn_schema_registry_free(reg);
    pn_schema_registry_free(NULL);
}

static const pn_test_case_t lookup_cases[] = {
    {"our schema, codec caches", test_our_schema},
    {"evolved writer through the codec", test_evolved_writer},
    {"404 40403 is UNKNOWN_SCHEMA, negative cache", test_not_found},
    {"5xx, foreign 404, not JSON, redirect are IO", test_server_errors},
    {"outage is IO and not cached", test_outage_and_recovery},
    {"timeout", test_timeout},
    {"response size limit", test_too_large},
    {"non-Avro and references", test_not_avro},
    {"basic auth sent, never shown", test_basic_auth},
    {"several URLs", test_failover},
    {"bad options", test_bad_options},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {{"schema_registry", lookup_cases},
                                          {NULL, NULL}};
