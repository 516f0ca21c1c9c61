/*
 * Assertion helpers on top of CUnit that print both sides on failure
 * (after libuv's test/task.h), and the suite registration used by
 * test_main.c: each test file defines pn_test_suites[].
 */
#ifndef PN_TEST_H
#define PN_TEST_H

#include <CUnit/CUnit.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define PN_ASSERT_(cond, fatal, ...)                                         \
    do {                                                                     \
        char pn_msg_[512];                                                   \
        snprintf(pn_msg_, sizeof pn_msg_, __VA_ARGS__);                      \
        CU_assertImplementation((cond), __LINE__, pn_msg_, __FILE__, "",     \
                                (fatal));                                    \
    } while (0)

#define PN_ASSERT(cond) PN_ASSERT_((cond), CU_FALSE, "%s", #cond)

#define PN_ASSERT_EQ_INT(a, b)                                               \
    do {                                                                     \
        int64_t pn_a_ = (int64_t)(a), pn_b_ = (int64_t)(b);                  \
        PN_ASSERT_(pn_a_ == pn_b_, CU_FALSE,                                 \
                   "%s == %s (%" PRId64 " vs %" PRId64 ")", #a, #b, pn_a_,   \
                   pn_b_);                                                   \
    } while (0)

#define PN_ASSERT_EQ_STR(a, b)                                               \
    do {                                                                     \
        const char *pn_a_ = (a), *pn_b_ = (b);                               \
        PN_ASSERT_(pn_a_ && pn_b_ && strcmp(pn_a_, pn_b_) == 0, CU_FALSE,    \
                   "%s == %s (\"%s\" vs \"%s\")", #a, #b,                    \
                   pn_a_ ? pn_a_ : "(null)", pn_b_ ? pn_b_ : "(null)");      \
    } while (0)

/* Compares a pn_str_t with a C string. */
#define PN_ASSERT_EQ_PNSTR(s, cstr)                                          \
    do {                                                                     \
        pn_str_t pn_s_ = (s);                                                \
        const char *pn_c_ = (cstr);                                          \
        PN_ASSERT_(pn_s_.len == strlen(pn_c_) &&                             \
                       memcmp(pn_s_.ptr, pn_c_, pn_s_.len) == 0,             \
                   CU_FALSE, "%s == %s (\"%.*s\" vs \"%s\")", #s, #cstr,     \
                   (int)pn_s_.len, pn_s_.ptr ? pn_s_.ptr : "", pn_c_);       \
    } while (0)

/* Stops the test on failure (for results later steps depend on). */
#define PN_REQUIRE(cond) PN_ASSERT_((cond), CU_TRUE, "%s", #cond)

#define PN_REQUIRE_OK(expr)                                                  \
    do {                                                                     \
        pn_err_t pn_e_ = (expr);                                             \
        PN_ASSERT_(pn_e_ == PN_ERR_OK, CU_TRUE, "%s returned %s", #expr,     \
                   pn_err_name(pn_e_));                                      \
    } while (0)

typedef struct pn_test_case {
    const char *name;
    void (*fn)(void);
} pn_test_case_t;

typedef struct pn_test_suite {
    const char *name;
    const pn_test_case_t *cases; /* terminated by {NULL, NULL} */
} pn_test_suite_t;

/* Defined by each test file; terminated by {NULL, NULL}. */
extern const pn_test_suite_t pn_test_suites[];

/** Optional: a test file that re-executes itself as a helper process (a
 * crash writer) defines this; main calls it first. Not a constructor: with
 * RocksDB linked statically its own static objects are constructed after
 * the test file's constructors, so RocksDB may not be called from one. */
void pn_test_before_main(void) __attribute__((weak));

/** Optional: what a test file shows when the watchdog finds a case hung
 * (test_main.c), from the watchdog's thread, just before the abort. */
void pn_test_on_hang(void) __attribute__((weak));

/** Optional: run after every case, even one a fatal assertion ended. */
void pn_test_after_case(void) __attribute__((weak));

/* A fresh empty directory under $TMPDIR for the test; caller frees. */
char *pn_test_tmpdir(const char *tag);

/* rm -rf of a directory made by pn_test_tmpdir. */
void pn_test_rmdir(const char *path);

/* splitmix64: a seeded generator, so a failing random case can be replayed
 * from its seed. */
static inline uint64_t pn_test_rand(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#endif
