#include "panther/buf.h"
#include "pn_test.h"

static void test_append_grows_and_keeps_bytes(void) {
    pn_buf_t buf;
    pn_buf_init(&buf, 1 << 20);
    for (int i = 0; i < 1000; i++)
        PN_REQUIRE_OK(pn_buf_append_byte(&buf, (uint8_t)i));
    PN_ASSERT_EQ_INT(buf.len, 1000);
    for (int i = 0; i < 1000; i++)
        PN_ASSERT_EQ_INT(buf.data[i], (uint8_t)i);
    pn_buf_free(&buf);
    PN_ASSERT(buf.data == NULL && buf.len == 0);
}

static void test_append_past_max_fails_untouched(void) {
    pn_buf_t buf;
    pn_buf_init(&buf, 8);
    PN_REQUIRE_OK(pn_buf_append(&buf, "abcdef", 6));
    PN_ASSERT_EQ_INT(pn_buf_append(&buf, "xyz", 3), PN_ERR_TOO_LARGE);
    PN_ASSERT_EQ_INT(buf.len, 6);
    PN_REQUIRE_OK(pn_buf_append(&buf, "gh", 2));
    PN_ASSERT(memcmp(buf.data, "abcdefgh", 8) == 0);
    PN_ASSERT_EQ_INT(pn_buf_append_byte(&buf, 'i'), PN_ERR_TOO_LARGE);
    pn_buf_free(&buf);
}

static void test_appendf_and_big_endian(void) {
    pn_buf_t buf;
    pn_buf_init(&buf, 64);
    PN_REQUIRE_OK(pn_buf_appendf(&buf, "%s-%d", "sku", 42));
    PN_ASSERT_EQ_INT(buf.len, 6);
    PN_ASSERT(memcmp(buf.data, "sku-42", 6) == 0);
    pn_buf_reset(&buf);
    PN_REQUIRE_OK(pn_buf_append_be64(&buf, 0x0102030405060708ull));
    PN_ASSERT_EQ_INT(buf.data[0], 1);
    PN_ASSERT_EQ_INT(buf.data[7], 8);
    PN_ASSERT(pn_be64_read(buf.data) == 0x0102030405060708ull);
    PN_ASSERT_EQ_INT(pn_buf_appendf(&buf, "%0100d", 1), PN_ERR_TOO_LARGE);
    pn_buf_free(&buf);
}

static void test_err_names(void) {
    PN_ASSERT_EQ_STR(pn_err_name(PN_ERR_OK), "OK");
    PN_ASSERT_EQ_STR(pn_err_name(PN_ERR_TRUNCATED), "TRUNCATED");
    PN_ASSERT_EQ_STR(pn_err_name((pn_err_t)999), "UNKNOWN");
    char msg[32];
    PN_ASSERT_EQ_INT(pn_err_set(msg, sizeof msg, PN_ERR_CONFIG, "bad %s", "x"),
                     PN_ERR_CONFIG);
    PN_ASSERT_EQ_STR(msg, "bad x");
}

static const pn_test_case_t buf_cases[] = {
    {"append grows and keeps bytes", test_append_grows_and_keeps_bytes},
    {"append past max fails, contents untouched",
     test_append_past_max_fails_untouched},
    {"appendf and big-endian helpers", test_appendf_and_big_endian},
    {"error names", test_err_names},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {{"buf", buf_cases}, {NULL, NULL}};
