/*
 * Unit tests of the pure domain core (src/domain.c) against the DESIGN.md
 * section 4 table: one test per row and per rejection reason, in the check
 * order of the table, plus INVALID_COMMAND, idempotency, evolve, the state
 * helpers, stream keys and names.
 */
#include "panther/domain.h"
#include "pn_test.h"

#include <stdlib.h>

#define AT_MS INT64_C(1700000000123)

/* --- builders -------------------------------------------------------------- */

static pn_command_t mk_cmd(pn_command_type_t type, const char *order_id,
                           bool has_quantity, int32_t quantity) {
    pn_command_t c;
    memset(&c, 0, sizeof c);
    c.type = type;
    c.id = pn_str_c("cmd-0001");
    c.order_id = type == PN_CMD_UPDATE ? PN_STR_NULL : pn_str_c(order_id);
    c.sku_id = pn_str_c("SKU-1");
    c.node_id = pn_str_c("NODE-1");
    c.by = pn_str_c("tester");
    c.has_quantity = has_quantity;
    c.quantity = quantity;
    c.at_ms = AT_MS;
    return c;
}

static pn_command_t cmd_update(int32_t q) {
    return mk_cmd(PN_CMD_UPDATE, NULL, true, q);
}

static pn_command_t cmd_reserve(const char *order, int32_t q) {
    return mk_cmd(PN_CMD_RESERVE, order, true, q);
}

/* Cancel or ship; has_q false means quantity null (all held). */
static pn_command_t cmd_release(pn_command_type_t type, const char *order,
                                bool has_q, int32_t q) {
    return mk_cmd(type, order, has_q, q);
}

static pn_event_t mk_event(pn_event_type_t type, int64_t version,
                           const char *order, int32_t q, int64_t prev) {
    pn_event_t e;
    memset(&e, 0, sizeof e);
    e.type = type;
    e.sku_id = pn_str_c("SKU-1");
    e.node_id = pn_str_c("NODE-1");
    e.version = version;
    e.command_id = pn_str_c("cmd-ev");
    e.by = pn_str_c("tester");
    e.at_ms = AT_MS;
    e.order_id = order ? pn_str_c(order) : PN_STR_NULL;
    e.quantity = q;
    e.previous_quantity = prev;
    return e;
}

/* n copies of c in buf (size >= n + 1), as a view. */
static pn_str_t rep(char *buf, size_t n, char c) {
    memset(buf, c, n);
    buf[n] = '\0';
    return (pn_str_t){buf, n};
}

/* decide, require an accepted decision with an event, evolve it, and check
 * that the state after evolve is what the outcome reported. */
static void apply_line(pn_state_t *s, const pn_command_t *c, int line) {
    pn_decision_t d;
    pn_domain_decide(s, c, NULL, &d);
    PN_ASSERT_(d.outcome.status == PN_STATUS_ACCEPTED && d.has_event, CU_TRUE,
               "setup at line %d: %s not accepted with an event (%s %s)", line,
               pn_command_type_name(c->type), pn_status_name(d.outcome.status),
               pn_reason_name(d.outcome.reason));
    pn_err_t err = pn_domain_evolve(s, &d.event);
    PN_ASSERT_(err == PN_ERR_OK, CU_TRUE, "setup at line %d: evolve gave %s",
               line, pn_err_name(err));
    PN_ASSERT_(s->version == d.outcome.version &&
                   s->on_hand == d.outcome.on_hand &&
                   s->reserved == d.outcome.reserved &&
                   pn_state_available(s) == d.outcome.available,
               CU_FALSE,
               "setup at line %d: state after evolve (v%" PRId64 " oh%" PRId64
               " r%" PRId64 ") differs from outcome (v%" PRId64 " oh%" PRId64
               " r%" PRId64 ")",
               line, s->version, s->on_hand, s->reserved, d.outcome.version,
               d.outcome.on_hand, d.outcome.reserved);
}
#define APPLY(s, c)                                                          \
    do {                                                                     \
        pn_command_t apply_c_ = (c);                                         \
        apply_line((s), &apply_c_, __LINE__);                                \
    } while (0)

#define ASSERT_OUTCOME(d, status_, reason_, ver, oh, rsv, avail)             \
    do {                                                                     \
        PN_ASSERT_EQ_STR(pn_status_name((d).outcome.status),                 \
                         pn_status_name(status_));                           \
        PN_ASSERT_EQ_STR(pn_reason_name((d).outcome.reason),                 \
                         pn_reason_name(reason_));                           \
        PN_ASSERT_EQ_INT((d).outcome.status, (status_));                     \
        PN_ASSERT_EQ_INT((d).outcome.reason, (reason_));                     \
        PN_ASSERT_EQ_INT((d).outcome.duplicate, 0);                          \
        PN_ASSERT_EQ_INT((d).outcome.version, (ver));                        \
        PN_ASSERT_EQ_INT((d).outcome.on_hand, (oh));                         \
        PN_ASSERT_EQ_INT((d).outcome.reserved, (rsv));                       \
        PN_ASSERT_EQ_INT((d).outcome.available, (avail));                    \
    } while (0)

/* A rejection: reason, no event, numbers = the unchanged state, and the
 * state itself untouched by decide. */
#define ASSERT_REJECTED(s, cmd, reason_)                                     \
    do {                                                                     \
        pn_state_t before_;                                                  \
        pn_state_init(&before_);                                             \
        PN_REQUIRE_OK(pn_state_copy(&before_, (s)));                         \
        pn_decision_t d_;                                                    \
        pn_domain_decide((s), &(cmd), NULL, &d_);                            \
        ASSERT_OUTCOME(d_, PN_STATUS_REJECTED, (reason_), (s)->version,      \
                       (s)->on_hand, (s)->reserved, pn_state_available(s));  \
        PN_ASSERT_EQ_INT(d_.outcome.command_type, (cmd).type);               \
        PN_ASSERT_EQ_INT(d_.has_event, 0);                                   \
        PN_ASSERT(pn_state_eq(&before_, (s)));                               \
        pn_state_clear(&before_);                                            \
    } while (0)

/* The common event fields: views equal the command's, version = +1. */
#define ASSERT_EVENT_COMMON(d, s, cmd, type_)                                \
    do {                                                                     \
        PN_REQUIRE((d).has_event);                                           \
        PN_ASSERT_EQ_STR(pn_event_type_name((d).event.type),                 \
                         pn_event_type_name(type_));                         \
        PN_ASSERT_EQ_INT((d).event.type, (type_));                           \
        PN_ASSERT_EQ_INT((d).event.version, (s)->version + 1);               \
        PN_ASSERT(pn_str_eq((d).event.command_id, (cmd).id));                \
        PN_ASSERT(pn_str_eq((d).event.by, (cmd).by));                        \
        PN_ASSERT(pn_str_eq((d).event.sku_id, (cmd).sku_id));                \
        PN_ASSERT(pn_str_eq((d).event.node_id, (cmd).node_id));              \
        PN_ASSERT_EQ_INT((d).event.at_ms, (cmd).at_ms);                      \
        PN_ASSERT_EQ_INT((d).outcome.command_type, (cmd).type);              \
    } while (0)

/* A state with on_hand and, if reserved > 0, ORD-1 holding `reserved`. */
static void setup_state(pn_state_t *s, int32_t on_hand, int32_t reserved) {
    pn_state_init(s);
    if (on_hand)
        APPLY(s, cmd_update(on_hand));
    if (reserved)
        APPLY(s, cmd_reserve("ORD-1", reserved));
}

/* --- UpdateInventory ------------------------------------------------------ */

static void test_update_negative_is_invalid_quantity(void) {
    pn_state_t s;
    setup_state(&s, 5, 2);
    pn_command_t c = cmd_update(-1);
    ASSERT_REJECTED(&s, c, PN_REASON_INVALID_QUANTITY);
    c = cmd_update(INT32_MIN);
    ASSERT_REJECTED(&s, c, PN_REASON_INVALID_QUANTITY);
    pn_state_clear(&s);

    pn_state_init(&s); /* fresh stream too */
    c = cmd_update(-7);
    ASSERT_REJECTED(&s, c, PN_REASON_INVALID_QUANTITY);
}

static void test_update_same_count_accepted_without_event(void) {
    pn_state_t s;
    setup_state(&s, 5, 2); /* version 2 */
    pn_command_t c = cmd_update(5);
    pn_decision_t d;
    pn_domain_decide(&s, &c, NULL, &d);
    ASSERT_OUTCOME(d, PN_STATUS_ACCEPTED, PN_REASON_NONE, 2, 5, 2, 3);
    PN_ASSERT_EQ_INT(d.has_event, 0);
    PN_ASSERT_EQ_INT(s.version, 2);
    pn_state_clear(&s);

    /* q = 0 on a fresh stream: on hand is already 0. */
    pn_state_init(&s);
    c = cmd_update(0);
    pn_domain_decide(&s, &c, NULL, &d);
    ASSERT_OUTCOME(d, PN_STATUS_ACCEPTED, PN_REASON_NONE, 0, 0, 0, 0);
    PN_ASSERT_EQ_INT(d.has_event, 0);
}

static void test_update_increase_emits_inventory_updated(void) {
    pn_state_t s;
    setup_state(&s, 5, 2); /* version 2 */
    pn_command_t c = cmd_update(8);
    c.id = pn_str_c("upd-8");
    c.by = pn_str_c("node-agent");
    c.at_ms = 42;
    pn_decision_t d;
    pn_domain_decide(&s, &c, NULL, &d);
    ASSERT_OUTCOME(d, PN_STATUS_ACCEPTED, PN_REASON_NONE, 3, 8, 2, 6);
    ASSERT_EVENT_COMMON(d, &s, c, PN_EVT_UPDATED);
    PN_ASSERT_EQ_INT(d.event.quantity, 8);
    PN_ASSERT_EQ_INT(d.event.previous_quantity, 5);
    PN_ASSERT_EQ_INT(d.event.order_id.len, 0);
    PN_ASSERT_EQ_PNSTR(d.event.command_id, "upd-8");
    PN_ASSERT_EQ_PNSTR(d.event.by, "node-agent");
    PN_ASSERT_EQ_INT(d.event.at_ms, 42);
    PN_ASSERT_EQ_INT(s.version, 2); /* decide does not touch the state */
    PN_REQUIRE_OK(pn_domain_evolve(&s, &d.event));
    PN_ASSERT_EQ_INT(s.version, 3);
    PN_ASSERT_EQ_INT(s.on_hand, 8);
    PN_ASSERT_EQ_INT(pn_state_held(&s, pn_str_c("ORD-1")), 2);
    pn_state_clear(&s);

    /* First count of a fresh stream: previousQuantity 0, version 1. */
    pn_state_init(&s);
    c = cmd_update(3);
    pn_domain_decide(&s, &c, NULL, &d);
    ASSERT_OUTCOME(d, PN_STATUS_ACCEPTED, PN_REASON_NONE, 1, 3, 0, 3);
    ASSERT_EVENT_COMMON(d, &s, c, PN_EVT_UPDATED);
    PN_ASSERT_EQ_INT(d.event.version, 1);
    PN_ASSERT_EQ_INT(d.event.previous_quantity, 0);
    PN_ASSERT_EQ_INT(d.event.quantity, 3);

    /* InventoryUpdated carries no orderId, even if the command had one. */
    c = cmd_update(4);
    c.order_id = pn_str_c("stray");
    pn_domain_decide(&s, &c, NULL, &d);
    PN_REQUIRE(d.has_event);
    PN_ASSERT_EQ_INT(d.event.order_id.len, 0);
}

static void test_update_decrease_below_reserved_goes_negative(void) {
    pn_state_t s;
    setup_state(&s, 10, 7); /* available 3 */
    pn_command_t c = cmd_update(3);
    pn_decision_t d;
    pn_domain_decide(&s, &c, NULL, &d);
    ASSERT_OUTCOME(d, PN_STATUS_ACCEPTED, PN_REASON_NONE, 3, 3, 7, -4);
    ASSERT_EVENT_COMMON(d, &s, c, PN_EVT_UPDATED);
    PN_ASSERT_EQ_INT(d.event.quantity, 3);
    PN_ASSERT_EQ_INT(d.event.previous_quantity, 10);
    PN_REQUIRE_OK(pn_domain_evolve(&s, &d.event));
    PN_ASSERT_EQ_INT(s.on_hand, 3);
    PN_ASSERT_EQ_INT(s.reserved, 7);
    PN_ASSERT_EQ_INT(pn_state_available(&s), -4);
    PN_ASSERT_EQ_INT(pn_state_held(&s, pn_str_c("ORD-1")), 7);

    /* Down to zero is a real count, not a rejection. */
    c = cmd_update(0);
    pn_domain_decide(&s, &c, NULL, &d);
    ASSERT_OUTCOME(d, PN_STATUS_ACCEPTED, PN_REASON_NONE, 4, 0, 7, -7);
    PN_ASSERT_EQ_INT(d.event.previous_quantity, 3);
    pn_state_clear(&s);
}

/* --- ReserveInventory ----------------------------------------------------- */

static void test_reserve_non_positive_is_invalid_quantity(void) {
    pn_state_t s;
    setup_state(&s, 10, 0);
    pn_command_t c = cmd_reserve("ORD-2", 0);
    ASSERT_REJECTED(&s, c, PN_REASON_INVALID_QUANTITY);
    c = cmd_reserve("ORD-2", -1);
    ASSERT_REJECTED(&s, c, PN_REASON_INVALID_QUANTITY);
    c = cmd_reserve("ORD-2", INT32_MIN);
    ASSERT_REJECTED(&s, c, PN_REASON_INVALID_QUANTITY);
    pn_state_clear(&s);
}

static void test_reserve_invalid_quantity_before_insufficient(void) {
    /* Nothing available: q <= 0 is checked first. */
    pn_state_t s;
    pn_state_init(&s);
    pn_command_t c = cmd_reserve("ORD-2", -1);
    ASSERT_REJECTED(&s, c, PN_REASON_INVALID_QUANTITY);
    c = cmd_reserve("ORD-2", 0);
    ASSERT_REJECTED(&s, c, PN_REASON_INVALID_QUANTITY);

    setup_state(&s, 10, 0);
    APPLY(&s, cmd_update(0)); /* on hand gone, version 2 */
    c = cmd_reserve("ORD-2", -1);
    ASSERT_REJECTED(&s, c, PN_REASON_INVALID_QUANTITY);
    pn_state_clear(&s);
}

static void test_reserve_insufficient_inventory(void) {
    pn_state_t s;
    setup_state(&s, 10, 5); /* available 5 */
    pn_command_t c = cmd_reserve("ORD-2", 6);
    ASSERT_REJECTED(&s, c, PN_REASON_INSUFFICIENT_INVENTORY);
    c = cmd_reserve("ORD-1", 6); /* the holder itself gets no more either */
    ASSERT_REJECTED(&s, c, PN_REASON_INSUFFICIENT_INVENTORY);
    c = cmd_reserve("ORD-2", INT32_MAX);
    ASSERT_REJECTED(&s, c, PN_REASON_INSUFFICIENT_INVENTORY);
    pn_state_clear(&s);

    pn_state_init(&s); /* fresh stream, nothing on hand */
    c = cmd_reserve("ORD-2", 1);
    ASSERT_REJECTED(&s, c, PN_REASON_INSUFFICIENT_INVENTORY);

    /* available negative after a count drop */
    setup_state(&s, 10, 8);
    APPLY(&s, cmd_update(3)); /* available -5 */
    c = cmd_reserve("ORD-2", 1);
    ASSERT_REJECTED(&s, c, PN_REASON_INSUFFICIENT_INVENTORY);
    pn_state_clear(&s);
}

static void test_reserve_exact_fit(void) {
    pn_state_t s;
    setup_state(&s, 10, 4); /* available 6, version 2 */
    pn_command_t c = cmd_reserve("ORD-2", 6);
    c.id = pn_str_c("res-6");
    pn_decision_t d;
    pn_domain_decide(&s, &c, NULL, &d);
    ASSERT_OUTCOME(d, PN_STATUS_ACCEPTED, PN_REASON_NONE, 3, 10, 10, 0);
    ASSERT_EVENT_COMMON(d, &s, c, PN_EVT_RESERVED);
    PN_ASSERT_EQ_PNSTR(d.event.order_id, "ORD-2");
    PN_ASSERT(pn_str_eq(d.event.order_id, c.order_id));
    PN_ASSERT_EQ_INT(d.event.quantity, 6);
    PN_ASSERT_EQ_INT(d.event.previous_quantity, 0);
    PN_REQUIRE_OK(pn_domain_evolve(&s, &d.event));
    PN_ASSERT_EQ_INT(pn_state_available(&s), 0);
    PN_ASSERT_EQ_INT(pn_state_held(&s, pn_str_c("ORD-2")), 6);
    PN_ASSERT_EQ_INT(pn_state_held(&s, pn_str_c("ORD-1")), 4);

    /* Now even one more unit is too many. */
    c = cmd_reserve("ORD-3", 1);
    ASSERT_REJECTED(&s, c, PN_REASON_INSUFFICIENT_INVENTORY);
    pn_state_clear(&s);
}

static void test_reserve_accumulates_for_same_order(void) {
    pn_state_t s;
    setup_state(&s, 10, 0);
    APPLY(&s, cmd_reserve("ORD-1", 3));
    pn_command_t c = cmd_reserve("ORD-1", 4);
    pn_decision_t d;
    pn_domain_decide(&s, &c, NULL, &d);
    ASSERT_OUTCOME(d, PN_STATUS_ACCEPTED, PN_REASON_NONE, 3, 10, 7, 3);
    ASSERT_EVENT_COMMON(d, &s, c, PN_EVT_RESERVED);
    PN_ASSERT_EQ_INT(d.event.quantity, 4); /* the increment, not the total */
    PN_REQUIRE_OK(pn_domain_evolve(&s, &d.event));
    PN_ASSERT_EQ_INT(s.n_reservations, 1);
    PN_ASSERT_EQ_INT(pn_state_held(&s, pn_str_c("ORD-1")), 7);
    PN_ASSERT_EQ_INT(s.reserved, 7);
    /* The accumulated total is released as one: cancel-all gives 7. */
    c = cmd_release(PN_CMD_CANCEL, "ORD-1", false, 0);
    pn_domain_decide(&s, &c, NULL, &d);
    PN_ASSERT_EQ_INT(d.event.quantity, 7);
    pn_state_clear(&s);
}

/* --- CancelReservation / ShipOrder --------------------------------------- */

static void check_no_reservation(pn_command_type_t type) {
    pn_state_t s;
    setup_state(&s, 10, 5); /* ORD-1 holds 5 */
    const bool has_q[] = {false, true, true, true, true};
    const int32_t qs[] = {0, 0, -1, 1, 100};
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        /* Order holds nothing: NO_RESERVATION, whatever the quantity
         * (q = 0 or -1 would be INVALID_QUANTITY, q = 100 EXCEEDS). */
        pn_command_t c = cmd_release(type, "ORD-2", has_q[i], qs[i]);
        ASSERT_REJECTED(&s, c, PN_REASON_NO_RESERVATION);
    }
    /* An order id that is a prefix of a holder's is a different order. */
    pn_command_t c = cmd_release(type, "ORD-", false, 0);
    ASSERT_REJECTED(&s, c, PN_REASON_NO_RESERVATION);
    pn_state_clear(&s);

    pn_state_init(&s); /* fresh stream */
    c = cmd_release(type, "ORD-1", true, 0);
    ASSERT_REJECTED(&s, c, PN_REASON_NO_RESERVATION);

    /* An order that held and released everything holds nothing. */
    setup_state(&s, 10, 5);
    APPLY(&s, cmd_release(PN_CMD_CANCEL, "ORD-1", false, 0));
    c = cmd_release(type, "ORD-1", false, 0);
    ASSERT_REJECTED(&s, c, PN_REASON_NO_RESERVATION);
    pn_state_clear(&s);
}

static void check_invalid_quantity(pn_command_type_t type) {
    pn_state_t s;
    setup_state(&s, 10, 5);
    pn_command_t c = cmd_release(type, "ORD-1", true, 0);
    ASSERT_REJECTED(&s, c, PN_REASON_INVALID_QUANTITY);
    c = cmd_release(type, "ORD-1", true, -1);
    ASSERT_REJECTED(&s, c, PN_REASON_INVALID_QUANTITY);
    c = cmd_release(type, "ORD-1", true, INT32_MIN);
    ASSERT_REJECTED(&s, c, PN_REASON_INVALID_QUANTITY);
    pn_state_clear(&s);
}

static void check_exceeds_reservation(pn_command_type_t type) {
    pn_state_t s;
    setup_state(&s, 100, 5); /* plenty on hand, ORD-1 holds 5 */
    APPLY(&s, cmd_reserve("ORD-2", 20));
    pn_command_t c = cmd_release(type, "ORD-1", true, 6);
    ASSERT_REJECTED(&s, c, PN_REASON_EXCEEDS_RESERVATION);
    c = cmd_release(type, "ORD-1", true, INT32_MAX);
    ASSERT_REJECTED(&s, c, PN_REASON_EXCEEDS_RESERVATION);
    pn_state_clear(&s);
}

static void check_release_all_held(pn_command_type_t type,
                                   pn_event_type_t evt) {
    pn_state_t s;
    setup_state(&s, 10, 0);
    APPLY(&s, cmd_reserve("ORD-1", 2));
    APPLY(&s, cmd_reserve("ORD-1", 3)); /* holds 5, version 3 */
    APPLY(&s, cmd_reserve("ORD-2", 1)); /* version 4 */
    pn_command_t c = cmd_release(type, "ORD-1", false, 0);
    c.id = pn_str_c("rel-all");
    c.quantity = 999; /* ignored when has_quantity is false */
    pn_decision_t d;
    pn_domain_decide(&s, &c, NULL, &d);
    int64_t on_hand_after = type == PN_CMD_SHIP ? 5 : 10;
    ASSERT_OUTCOME(d, PN_STATUS_ACCEPTED, PN_REASON_NONE, 5, on_hand_after, 1,
                   on_hand_after - 1);
    ASSERT_EVENT_COMMON(d, &s, c, evt);
    PN_ASSERT_EQ_PNSTR(d.event.order_id, "ORD-1");
    PN_ASSERT_EQ_INT(d.event.quantity, 5);
    PN_REQUIRE_OK(pn_domain_evolve(&s, &d.event));
    PN_ASSERT_EQ_INT(pn_state_held(&s, pn_str_c("ORD-1")), 0);
    PN_ASSERT_EQ_INT(pn_state_held(&s, pn_str_c("ORD-2")), 1);
    PN_ASSERT_EQ_INT(s.n_reservations, 1); /* the entry is gone */
    PN_ASSERT_EQ_INT(s.on_hand, on_hand_after);
    PN_ASSERT_EQ_INT(s.reserved, 1);
    pn_state_clear(&s);
}

static void check_release_exact_and_partial(pn_command_type_t type,
                                            pn_event_type_t evt) {
    pn_state_t s;
    setup_state(&s, 10, 5); /* version 2 */
    pn_command_t c = cmd_release(type, "ORD-1", true, 2);
    pn_decision_t d;
    pn_domain_decide(&s, &c, NULL, &d);
    int64_t oh = type == PN_CMD_SHIP ? 8 : 10;
    ASSERT_OUTCOME(d, PN_STATUS_ACCEPTED, PN_REASON_NONE, 3, oh, 3, oh - 3);
    ASSERT_EVENT_COMMON(d, &s, c, evt);
    PN_ASSERT_EQ_PNSTR(d.event.order_id, "ORD-1");
    PN_ASSERT_EQ_INT(d.event.quantity, 2);
    PN_REQUIRE_OK(pn_domain_evolve(&s, &d.event));
    PN_ASSERT_EQ_INT(pn_state_held(&s, pn_str_c("ORD-1")), 3);
    PN_ASSERT_EQ_INT(s.on_hand, oh);

    /* q == held is accepted and empties the entry. */
    c = cmd_release(type, "ORD-1", true, 3);
    pn_domain_decide(&s, &c, NULL, &d);
    int64_t oh2 = type == PN_CMD_SHIP ? 5 : 10;
    ASSERT_OUTCOME(d, PN_STATUS_ACCEPTED, PN_REASON_NONE, 4, oh2, 0, oh2);
    PN_ASSERT_EQ_INT(d.event.quantity, 3);
    PN_REQUIRE_OK(pn_domain_evolve(&s, &d.event));
    PN_ASSERT_EQ_INT(s.n_reservations, 0);
    PN_ASSERT_EQ_INT(s.reserved, 0);
    pn_state_clear(&s);
}

static void test_cancel_no_reservation(void) { check_no_reservation(PN_CMD_CANCEL); }
static void test_cancel_invalid_quantity(void) { check_invalid_quantity(PN_CMD_CANCEL); }
static void test_cancel_exceeds_reservation(void) { check_exceeds_reservation(PN_CMD_CANCEL); }
static void test_cancel_all_held(void) {
    check_release_all_held(PN_CMD_CANCEL, PN_EVT_CANCELLED);
}
static void test_cancel_partial_and_exact(void) {
    check_release_exact_and_partial(PN_CMD_CANCEL, PN_EVT_CANCELLED);
}
static void test_ship_no_reservation(void) { check_no_reservation(PN_CMD_SHIP); }
static void test_ship_invalid_quantity(void) { check_invalid_quantity(PN_CMD_SHIP); }
static void test_ship_exceeds_reservation(void) { check_exceeds_reservation(PN_CMD_SHIP); }
static void test_ship_all_held(void) {
    check_release_all_held(PN_CMD_SHIP, PN_EVT_SHIPPED);
}
static void test_ship_partial_and_exact(void) {
    check_release_exact_and_partial(PN_CMD_SHIP, PN_EVT_SHIPPED);
}

static void test_ship_clamps_on_hand_at_zero(void) {
    pn_state_t s;
    setup_state(&s, 10, 8);
    APPLY(&s, cmd_update(3)); /* on hand 3, reserved 8, version 3 */

    /* Partial ship of 5 from 3 on hand: on hand 0, not -2. */
    pn_command_t c = cmd_release(PN_CMD_SHIP, "ORD-1", true, 5);
    pn_decision_t d;
    pn_domain_decide(&s, &c, NULL, &d);
    ASSERT_OUTCOME(d, PN_STATUS_ACCEPTED, PN_REASON_NONE, 4, 0, 3, -3);
    PN_ASSERT_EQ_INT(d.event.quantity, 5);
    PN_REQUIRE_OK(pn_domain_evolve(&s, &d.event));
    PN_ASSERT_EQ_INT(s.on_hand, 0);
    PN_ASSERT_EQ_INT(s.reserved, 3);

    /* Ship the rest from 0 on hand: stays 0. */
    c = cmd_release(PN_CMD_SHIP, "ORD-1", false, 0);
    pn_domain_decide(&s, &c, NULL, &d);
    ASSERT_OUTCOME(d, PN_STATUS_ACCEPTED, PN_REASON_NONE, 5, 0, 0, 0);
    PN_ASSERT_EQ_INT(d.event.quantity, 3);
    PN_REQUIRE_OK(pn_domain_evolve(&s, &d.event));
    PN_ASSERT_EQ_INT(s.on_hand, 0);
    PN_ASSERT_EQ_INT(s.reserved, 0);
    pn_state_clear(&s);

    /* Ship all in one go: 10, reserve 8, count 3, ship 8 -> 0. */
    setup_state(&s, 10, 8);
    APPLY(&s, cmd_update(3));
    c = cmd_release(PN_CMD_SHIP, "ORD-1", true, 8);
    pn_domain_decide(&s, &c, NULL, &d);
    ASSERT_OUTCOME(d, PN_STATUS_ACCEPTED, PN_REASON_NONE, 4, 0, 0, 0);
    PN_REQUIRE_OK(pn_domain_evolve(&s, &d.event));
    PN_ASSERT_EQ_INT(s.on_hand, 0);
    pn_state_clear(&s);
}

static void test_cancel_leaves_on_hand(void) {
    pn_state_t s;
    setup_state(&s, 10, 8);
    APPLY(&s, cmd_update(3)); /* on hand below reserved */
    pn_command_t c = cmd_release(PN_CMD_CANCEL, "ORD-1", true, 8);
    pn_decision_t d;
    pn_domain_decide(&s, &c, NULL, &d);
    ASSERT_OUTCOME(d, PN_STATUS_ACCEPTED, PN_REASON_NONE, 4, 3, 0, 3);
    PN_REQUIRE_OK(pn_domain_evolve(&s, &d.event));
    PN_ASSERT_EQ_INT(s.on_hand, 3);
    pn_state_clear(&s);
}

/* --- INVALID_COMMAND -------------------------------------------------------- */

static char long_a[PN_ID_MAX_BYTES + 2];
static char long_b[PN_ID_MAX_BYTES + 2];

/* ORD-1 holds 5 of 10 on hand; base_cmd(t) is accepted on it. */
static pn_command_t base_cmd(pn_command_type_t type) {
    switch (type) {
    case PN_CMD_UPDATE:
        return cmd_update(20);
    case PN_CMD_RESERVE:
        return cmd_reserve("ORD-1", 1);
    default:
        return cmd_release(type, "ORD-1", false, 0);
    }
}

#define EXPECT_REASON(s, c, want, what)                                      \
    do {                                                                     \
        pn_decision_t d_;                                                    \
        pn_domain_decide((s), &(c), NULL, &d_);                              \
        PN_ASSERT_((d_).outcome.reason == (want) && !(d_).has_event &&      \
                       (d_).outcome.version == (s)->version &&              \
                       (d_).outcome.on_hand == (s)->on_hand &&              \
                       (d_).outcome.reserved == (s)->reserved &&            \
                       (d_).outcome.command_type == (c).type,               \
                   CU_FALSE, "%s %s: reason %s (want %s), event %d", what,   \
                   pn_command_type_name((c).type),                           \
                   pn_reason_name((d_).outcome.reason),                      \
                   pn_reason_name(want), (int)(d_).has_event);               \
        if ((want) != PN_REASON_NONE)                                        \
            PN_ASSERT_EQ_INT((d_).outcome.status, PN_STATUS_REJECTED);       \
    } while (0)

#define EXPECT_ACCEPTED(s, c, what)                                          \
    do {                                                                     \
        pn_decision_t d_;                                                    \
        pn_domain_decide((s), &(c), NULL, &d_);                              \
        PN_ASSERT_((d_).outcome.status == PN_STATUS_ACCEPTED &&             \
                       (d_).has_event,                                       \
                   CU_FALSE, "%s %s: %s %s", what,                           \
                   pn_command_type_name((c).type),                           \
                   pn_status_name((d_).outcome.status),                      \
                   pn_reason_name((d_).outcome.reason));                     \
    } while (0)

static void test_base_commands_are_accepted(void) {
    pn_state_t s;
    setup_state(&s, 10, 5);
    for (int t = 0; t < PN_CMD__COUNT; t++) {
        pn_command_t c = base_cmd((pn_command_type_t)t);
        PN_ASSERT(pn_command_is_valid(&c));
        EXPECT_ACCEPTED(&s, c, "base");
    }
    pn_state_clear(&s);
}

static void test_invalid_command_id(void) {
    pn_state_t s;
    setup_state(&s, 10, 5);
    for (int t = 0; t < PN_CMD__COUNT; t++) {
        pn_command_t c = base_cmd((pn_command_type_t)t);
        c.id = pn_str_c("");
        EXPECT_REASON(&s, c, PN_REASON_INVALID_COMMAND, "empty id");
        PN_ASSERT(!pn_command_is_valid(&c));
        c.id = PN_STR_NULL;
        EXPECT_REASON(&s, c, PN_REASON_INVALID_COMMAND, "null id");
        c.id = rep(long_a, PN_ID_MAX_BYTES + 1, 'i');
        EXPECT_REASON(&s, c, PN_REASON_INVALID_COMMAND, "257-byte id");
        c.id = rep(long_a, PN_ID_MAX_BYTES, 'i');
        EXPECT_ACCEPTED(&s, c, "256-byte id");
        c.id = pn_str_c("cmd|with|bars");
        EXPECT_ACCEPTED(&s, c, "'|' in id");
    }
    pn_state_clear(&s);
}

static void check_stream_id_field(bool sku) {
    const char *name = sku ? "skuId" : "fulfillmentNodeId";
    pn_state_t s;
    setup_state(&s, 10, 5);
    for (int t = 0; t < PN_CMD__COUNT; t++) {
        pn_command_t c = base_cmd((pn_command_type_t)t);
        pn_str_t *f = sku ? &c.sku_id : &c.node_id;
        char what[64];

        *f = pn_str_c("");
        snprintf(what, sizeof what, "empty %s", name);
        EXPECT_REASON(&s, c, PN_REASON_INVALID_COMMAND, what);
        *f = PN_STR_NULL;
        snprintf(what, sizeof what, "null %s", name);
        EXPECT_REASON(&s, c, PN_REASON_INVALID_COMMAND, what);
        *f = rep(long_a, PN_ID_MAX_BYTES + 1, 's');
        snprintf(what, sizeof what, "257-byte %s", name);
        EXPECT_REASON(&s, c, PN_REASON_INVALID_COMMAND, what);
        *f = pn_str_c("A|B");
        snprintf(what, sizeof what, "'|' in %s", name);
        EXPECT_REASON(&s, c, PN_REASON_INVALID_COMMAND, what);
        *f = pn_str_c("|");
        EXPECT_REASON(&s, c, PN_REASON_INVALID_COMMAND, what);
        *f = pn_str_c("AB|");
        EXPECT_REASON(&s, c, PN_REASON_INVALID_COMMAND, what);
        /* '|' just past the view's length is not part of the id */
        *f = (pn_str_t){"AB|", 2};
        snprintf(what, sizeof what, "%s view before '|'", name);
        EXPECT_ACCEPTED(&s, c, what);
        *f = rep(long_a, PN_ID_MAX_BYTES, 's');
        snprintf(what, sizeof what, "256-byte %s", name);
        EXPECT_ACCEPTED(&s, c, what);
    }
    pn_state_clear(&s);
}

static void test_invalid_command_sku(void) { check_stream_id_field(true); }
static void test_invalid_command_node(void) { check_stream_id_field(false); }

static void test_invalid_command_order_id(void) {
    pn_state_t s;
    setup_state(&s, 20, 5);
    pn_str_t long_order = rep(long_b, PN_ID_MAX_BYTES, 'o');
    APPLY(&s, cmd_reserve(long_b, 2)); /* the 256-byte order holds 2 */
    APPLY(&s, cmd_reserve("ORD|1", 2)); /* '|' is fine in an order id */
    PN_ASSERT_EQ_INT(pn_state_held(&s, long_order), 2);
    PN_ASSERT_EQ_INT(pn_state_held(&s, pn_str_c("ORD|1")), 2);
    for (int t = PN_CMD_RESERVE; t < PN_CMD__COUNT; t++) {
        pn_command_t c = base_cmd((pn_command_type_t)t);
        c.order_id = pn_str_c("");
        EXPECT_REASON(&s, c, PN_REASON_INVALID_COMMAND, "empty orderId");
        c.order_id = PN_STR_NULL;
        EXPECT_REASON(&s, c, PN_REASON_INVALID_COMMAND, "null orderId");
        c.order_id = rep(long_a, PN_ID_MAX_BYTES + 1, 'o');
        EXPECT_REASON(&s, c, PN_REASON_INVALID_COMMAND, "257-byte orderId");
        c.order_id = long_order;
        EXPECT_ACCEPTED(&s, c, "256-byte orderId");
        c.order_id = pn_str_c("ORD|1");
        EXPECT_ACCEPTED(&s, c, "'|' in orderId");
    }
    /* UPDATE has no orderId: a null one is fine. */
    pn_command_t u = cmd_update(30); /* onHand is 20 here */
    PN_ASSERT_EQ_INT(u.order_id.len, 0);
    PN_ASSERT(u.order_id.ptr == NULL);
    EXPECT_ACCEPTED(&s, u, "update without orderId");
    pn_state_clear(&s);
}

static void test_invalid_command_wins_over_other_reasons(void) {
    pn_state_t s;
    setup_state(&s, 10, 5);
    /* over INVALID_QUANTITY */
    pn_command_t c = cmd_update(-1);
    c.sku_id = pn_str_c("");
    EXPECT_REASON(&s, c, PN_REASON_INVALID_COMMAND, "bad sku, q=-1");
    c = cmd_reserve("ORD-1", 0);
    c.node_id = pn_str_c("N|1");
    EXPECT_REASON(&s, c, PN_REASON_INVALID_COMMAND, "bad node, q=0");
    c = cmd_release(PN_CMD_CANCEL, "ORD-1", true, -1);
    c.id = pn_str_c("");
    EXPECT_REASON(&s, c, PN_REASON_INVALID_COMMAND, "empty id, q=-1");
    c = cmd_release(PN_CMD_SHIP, "ORD-1", true, 0);
    c.id = rep(long_a, PN_ID_MAX_BYTES + 1, 'i');
    EXPECT_REASON(&s, c, PN_REASON_INVALID_COMMAND, "long id, q=0");
    /* over INSUFFICIENT_INVENTORY */
    c = cmd_reserve("ORD-2", 1000);
    c.sku_id = rep(long_a, PN_ID_MAX_BYTES + 1, 's');
    EXPECT_REASON(&s, c, PN_REASON_INVALID_COMMAND, "long sku, q>available");
    /* over NO_RESERVATION and EXCEEDS_RESERVATION */
    c = cmd_release(PN_CMD_CANCEL, "ORD-9", true, 0);
    c.node_id = pn_str_c("");
    EXPECT_REASON(&s, c, PN_REASON_INVALID_COMMAND, "empty node, no res");
    c = cmd_release(PN_CMD_SHIP, "ORD-1", true, 99);
    c.sku_id = pn_str_c("|");
    EXPECT_REASON(&s, c, PN_REASON_INVALID_COMMAND, "bad sku, q>held");
    pn_state_clear(&s);
}

/* --- idempotency ------------------------------------------------------------ */

#define ASSERT_DUPLICATE_OF(d, prior)                                        \
    do {                                                                     \
        PN_ASSERT_EQ_INT((d).has_event, 0);                                  \
        PN_ASSERT_EQ_INT((d).outcome.duplicate, 1);                          \
        PN_ASSERT_EQ_INT((d).outcome.command_type, (prior).command_type);    \
        PN_ASSERT_EQ_INT((d).outcome.status, (prior).status);                \
        PN_ASSERT_EQ_INT((d).outcome.reason, (prior).reason);                \
        PN_ASSERT_EQ_INT((d).outcome.version, (prior).version);              \
        PN_ASSERT_EQ_INT((d).outcome.on_hand, (prior).on_hand);              \
        PN_ASSERT_EQ_INT((d).outcome.reserved, (prior).reserved);            \
        PN_ASSERT_EQ_INT((d).outcome.available, (prior).available);          \
    } while (0)

static void test_duplicate_returns_prior_outcome(void) {
    pn_state_t s;
    setup_state(&s, 10, 0);
    pn_command_t c = cmd_reserve("ORD-1", 4);
    pn_decision_t first;
    pn_domain_decide(&s, &c, NULL, &first);
    PN_REQUIRE(first.has_event && !first.outcome.duplicate);
    pn_outcome_t prior = first.outcome;
    PN_REQUIRE_OK(pn_domain_evolve(&s, &first.event));

    /* Same command again, state has moved on: no second reservation. */
    APPLY(&s, cmd_update(50));
    pn_state_t before;
    pn_state_init(&before);
    PN_REQUIRE_OK(pn_state_copy(&before, &s));
    pn_decision_t d;
    pn_domain_decide(&s, &c, &prior, &d);
    ASSERT_DUPLICATE_OF(d, prior);
    PN_ASSERT_EQ_INT(d.outcome.version, 2); /* not the current 3 */
    PN_ASSERT_EQ_INT(d.outcome.on_hand, 10);
    PN_ASSERT(pn_state_eq(&before, &s));
    pn_state_clear(&before);
    pn_state_clear(&s);
}

static void test_duplicate_of_rejection_stays_rejected(void) {
    pn_state_t s;
    pn_state_init(&s);
    pn_command_t c = cmd_reserve("ORD-1", 4);
    pn_decision_t first;
    pn_domain_decide(&s, &c, NULL, &first);
    PN_REQUIRE(first.outcome.reason == PN_REASON_INSUFFICIENT_INVENTORY);
    pn_outcome_t prior = first.outcome;

    APPLY(&s, cmd_update(100)); /* now it would fit */
    pn_decision_t d;
    pn_domain_decide(&s, &c, &prior, &d);
    ASSERT_DUPLICATE_OF(d, prior);
    PN_ASSERT_EQ_INT(d.outcome.status, PN_STATUS_REJECTED);
    PN_ASSERT_EQ_INT(d.outcome.reason, PN_REASON_INSUFFICIENT_INVENTORY);
    pn_state_clear(&s);
}

static void test_duplicate_regardless_of_command_and_state(void) {
    /* The prior is returned as is, even for a command that would now be
     * INVALID_COMMAND, and even if the prior says duplicate already. */
    pn_state_t s;
    setup_state(&s, 7, 3);
    pn_outcome_t prior = {.command_type = PN_CMD_SHIP,
                          .status = PN_STATUS_ACCEPTED,
                          .reason = PN_REASON_NONE,
                          .duplicate = false,
                          .version = 41,
                          .on_hand = 12,
                          .reserved = 5,
                          .available = 7};
    pn_command_t c = cmd_release(PN_CMD_SHIP, "ORD-1", true, 0);
    c.sku_id = pn_str_c("");
    pn_decision_t d;
    pn_domain_decide(&s, &c, &prior, &d);
    ASSERT_DUPLICATE_OF(d, prior);
    prior.duplicate = true;
    pn_domain_decide(&s, &c, &prior, &d);
    ASSERT_DUPLICATE_OF(d, prior);
    pn_state_clear(&s);
}

/* --- purity ------------------------------------------------------------------- */

static void test_decide_is_pure_and_deterministic(void) {
    pn_state_t s;
    setup_state(&s, 10, 5);
    pn_state_t before;
    pn_state_init(&before);
    PN_REQUIRE_OK(pn_state_copy(&before, &s));
    for (int t = 0; t < PN_CMD__COUNT; t++) {
        pn_command_t c = base_cmd((pn_command_type_t)t);
        pn_decision_t a, b;
        memset(&a, 0xAB, sizeof a); /* decide must fill every field */
        memset(&b, 0x11, sizeof b);
        pn_domain_decide(&s, &c, NULL, &a);
        pn_domain_decide(&s, &c, NULL, &b);
        PN_ASSERT(pn_state_eq(&before, &s));
        PN_ASSERT_EQ_INT(a.has_event, b.has_event);
        PN_ASSERT_EQ_INT(a.outcome.status, b.outcome.status);
        PN_ASSERT_EQ_INT(a.outcome.duplicate, b.outcome.duplicate);
        PN_ASSERT_EQ_INT(a.outcome.version, b.outcome.version);
        PN_ASSERT_EQ_INT(a.outcome.available, b.outcome.available);
        PN_ASSERT_EQ_INT(a.event.type, b.event.type);
        PN_ASSERT_EQ_INT(a.event.version, b.event.version);
        PN_ASSERT_EQ_INT(a.event.quantity, b.event.quantity);
        PN_ASSERT_EQ_INT(a.event.previous_quantity, b.event.previous_quantity);
        PN_ASSERT(pn_str_eq(a.event.order_id, b.event.order_id));
        PN_ASSERT(a.event.storage == NULL);
    }
    pn_state_clear(&before);
    pn_state_clear(&s);
}

static void test_same_commands_same_events(void) {
    /* Two folds of the same command sequence end in equal states. */
    pn_state_t a, b;
    pn_state_init(&a);
    pn_state_init(&b);
    pn_state_t *both[] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        APPLY(both[i], cmd_update(30));
        APPLY(both[i], cmd_reserve("B", 4));
        APPLY(both[i], cmd_reserve("A", 6));
        APPLY(both[i], cmd_release(PN_CMD_SHIP, "B", true, 1));
        APPLY(both[i], cmd_update(2));
        APPLY(both[i], cmd_release(PN_CMD_CANCEL, "A", false, 0));
    }
    PN_ASSERT(pn_state_eq(&a, &b));
    PN_ASSERT_EQ_INT(a.version, 6);
    PN_ASSERT_EQ_INT(a.on_hand, 2);
    PN_ASSERT_EQ_INT(a.reserved, 3);
    pn_state_clear(&a);
    pn_state_clear(&b);
}

/* --- evolve -------------------------------------------------------------------- */

static void test_evolve_applies_each_event_type(void) {
    pn_state_t s;
    pn_state_init(&s);
    pn_event_t e = mk_event(PN_EVT_UPDATED, 1, NULL, 10, 0);
    PN_REQUIRE_OK(pn_domain_evolve(&s, &e));
    PN_ASSERT_EQ_INT(s.version, 1);
    PN_ASSERT_EQ_INT(s.on_hand, 10);

    e = mk_event(PN_EVT_UPDATED, 2, NULL, 7, 10); /* absolute, not a delta */
    PN_REQUIRE_OK(pn_domain_evolve(&s, &e));
    PN_ASSERT_EQ_INT(s.version, 2);
    PN_ASSERT_EQ_INT(s.on_hand, 7);

    e = mk_event(PN_EVT_RESERVED, 3, "O1", 4, 0);
    PN_REQUIRE_OK(pn_domain_evolve(&s, &e));
    PN_ASSERT_EQ_INT(s.version, 3);
    PN_ASSERT_EQ_INT(s.reserved, 4);
    PN_ASSERT_EQ_INT(pn_state_held(&s, pn_str_c("O1")), 4);
    PN_ASSERT_EQ_INT(s.on_hand, 7);

    e = mk_event(PN_EVT_RESERVED, 4, "O1", 2, 0);
    PN_REQUIRE_OK(pn_domain_evolve(&s, &e));
    PN_ASSERT_EQ_INT(pn_state_held(&s, pn_str_c("O1")), 6);
    PN_ASSERT_EQ_INT(s.reserved, 6);

    e = mk_event(PN_EVT_CANCELLED, 5, "O1", 1, 0);
    PN_REQUIRE_OK(pn_domain_evolve(&s, &e));
    PN_ASSERT_EQ_INT(s.version, 5);
    PN_ASSERT_EQ_INT(pn_state_held(&s, pn_str_c("O1")), 5);
    PN_ASSERT_EQ_INT(s.reserved, 5);
    PN_ASSERT_EQ_INT(s.on_hand, 7);

    e = mk_event(PN_EVT_SHIPPED, 6, "O1", 2, 0);
    PN_REQUIRE_OK(pn_domain_evolve(&s, &e));
    PN_ASSERT_EQ_INT(s.version, 6);
    PN_ASSERT_EQ_INT(pn_state_held(&s, pn_str_c("O1")), 3);
    PN_ASSERT_EQ_INT(s.reserved, 3);
    PN_ASSERT_EQ_INT(s.on_hand, 5);

    e = mk_event(PN_EVT_UPDATED, 7, NULL, 1, 5);
    PN_REQUIRE_OK(pn_domain_evolve(&s, &e));
    e = mk_event(PN_EVT_SHIPPED, 8, "O1", 3, 0); /* clamp: max(0, 1-3) */
    PN_REQUIRE_OK(pn_domain_evolve(&s, &e));
    PN_ASSERT_EQ_INT(s.version, 8);
    PN_ASSERT_EQ_INT(s.on_hand, 0);
    PN_ASSERT_EQ_INT(s.reserved, 0);
    PN_ASSERT_EQ_INT(s.n_reservations, 0);
    pn_state_clear(&s);
}

static void test_evolve_rejects_version_gap(void) {
    pn_state_t s, before;
    setup_state(&s, 10, 5); /* version 2 */
    pn_state_init(&before);
    PN_REQUIRE_OK(pn_state_copy(&before, &s));
    const int64_t bad[] = {4, 2, 1, 0, -1, 100};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pn_event_t e = mk_event(PN_EVT_UPDATED, bad[i], NULL, 99, 10);
        PN_ASSERT_EQ_INT(pn_domain_evolve(&s, &e), PN_ERR_INVALID_ARG);
        e = mk_event(PN_EVT_RESERVED, bad[i], "ORD-7", 1, 0);
        PN_ASSERT_EQ_INT(pn_domain_evolve(&s, &e), PN_ERR_INVALID_ARG);
        e = mk_event(PN_EVT_SHIPPED, bad[i], "ORD-1", 1, 0);
        PN_ASSERT_EQ_INT(pn_domain_evolve(&s, &e), PN_ERR_INVALID_ARG);
        PN_ASSERT(pn_state_eq(&before, &s));
    }
    /* The next version is still accepted afterwards. */
    pn_event_t e = mk_event(PN_EVT_UPDATED, 3, NULL, 99, 10);
    PN_ASSERT_EQ_INT(pn_domain_evolve(&s, &e), PN_ERR_OK);
    PN_ASSERT_EQ_INT(s.version, 3);
    PN_ASSERT_EQ_INT(s.on_hand, 99);
    pn_state_clear(&before);
    pn_state_clear(&s);
}

static void test_evolve_rejects_release_beyond_held(void) {
    pn_state_t s, before;
    setup_state(&s, 10, 5); /* ORD-1 holds 5, version 2 */
    pn_state_init(&before);
    PN_REQUIRE_OK(pn_state_copy(&before, &s));
    pn_event_t e = mk_event(PN_EVT_CANCELLED, 3, "ORD-1", 6, 0);
    PN_ASSERT_EQ_INT(pn_domain_evolve(&s, &e), PN_ERR_INVALID_ARG);
    PN_ASSERT(pn_state_eq(&before, &s));
    e = mk_event(PN_EVT_CANCELLED, 3, "ORD-2", 1, 0); /* holds nothing */
    PN_ASSERT_EQ_INT(pn_domain_evolve(&s, &e), PN_ERR_INVALID_ARG);
    PN_ASSERT(pn_state_eq(&before, &s));
    e = mk_event(PN_EVT_SHIPPED, 3, "ORD-1", 6, 0);
    PN_ASSERT_EQ_INT(pn_domain_evolve(&s, &e), PN_ERR_INVALID_ARG);
    PN_ASSERT(pn_state_eq(&before, &s)); /* on hand not reduced either */
    PN_ASSERT_EQ_INT(s.on_hand, 10);
    e = mk_event(PN_EVT_CANCELLED, 3, "ORD-1", 5, 0); /* exactly held: ok */
    PN_ASSERT_EQ_INT(pn_domain_evolve(&s, &e), PN_ERR_OK);
    PN_ASSERT_EQ_INT(s.reserved, 0);
    pn_state_clear(&before);
    pn_state_clear(&s);
}

static void test_evolve_rejects_negative_quantity_and_bad_type(void) {
    pn_state_t s, before;
    setup_state(&s, 10, 5);
    pn_state_init(&before);
    PN_REQUIRE_OK(pn_state_copy(&before, &s));
    pn_event_t e = mk_event(PN_EVT_UPDATED, 3, NULL, -1, 10);
    PN_ASSERT_EQ_INT(pn_domain_evolve(&s, &e), PN_ERR_INVALID_ARG);
    e = mk_event(PN_EVT_RESERVED, 3, "ORD-1", -2, 0);
    PN_ASSERT_EQ_INT(pn_domain_evolve(&s, &e), PN_ERR_INVALID_ARG);
    e = mk_event((pn_event_type_t)PN_EVT__COUNT, 3, "ORD-1", 1, 0);
    PN_ASSERT_EQ_INT(pn_domain_evolve(&s, &e), PN_ERR_INVALID_ARG);
    PN_ASSERT(pn_state_eq(&before, &s));
    pn_state_clear(&before);
    pn_state_clear(&s);
}

/* --- state helpers ------------------------------------------------------------ */

static void test_state_copy_eq_clear(void) {
    pn_state_t a, b;
    setup_state(&a, 10, 0);
    APPLY(&a, cmd_reserve("X", 2));
    APPLY(&a, cmd_reserve("A", 3));
    pn_state_init(&b);
    PN_ASSERT(!pn_state_eq(&a, &b));
    PN_REQUIRE_OK(pn_state_copy(&b, &a));
    PN_ASSERT(pn_state_eq(&a, &b));
    PN_ASSERT_EQ_INT(b.version, 3);
    PN_ASSERT_EQ_INT(b.on_hand, 10);
    PN_ASSERT_EQ_INT(b.reserved, 5);
    PN_REQUIRE(b.n_reservations == 2);
    /* deep: no shared pointers */
    PN_ASSERT(b.reservations != a.reservations);
    PN_ASSERT(b.reservations[0].order_id != a.reservations[0].order_id);
    PN_ASSERT_EQ_STR(b.reservations[0].order_id, "A");
    PN_ASSERT_EQ_STR(b.reservations[1].order_id, "X");

    /* mutating the copy leaves the source alone */
    b.reservations[0].order_id[0] = 'B';
    PN_ASSERT_EQ_STR(a.reservations[0].order_id, "A");
    PN_ASSERT(!pn_state_eq(&a, &b)); /* differs in an order id */
    b.reservations[0].order_id[0] = 'A';
    PN_ASSERT(pn_state_eq(&a, &b));

    /* eq looks at each field */
    b.reservations[1].quantity++;
    PN_ASSERT(!pn_state_eq(&a, &b));
    b.reservations[1].quantity--;
    b.version++;
    PN_ASSERT(!pn_state_eq(&a, &b));
    b.version--;
    b.on_hand++;
    PN_ASSERT(!pn_state_eq(&a, &b));
    b.on_hand--;
    b.reserved++;
    PN_ASSERT(!pn_state_eq(&a, &b));
    b.reserved--;
    PN_ASSERT(pn_state_eq(&a, &b));

    /* copy over a non-empty destination replaces its content */
    pn_state_t c;
    setup_state(&c, 50, 0);
    APPLY(&c, cmd_reserve("Q", 1));
    APPLY(&c, cmd_reserve("R", 1));
    APPLY(&c, cmd_reserve("S", 1));
    PN_REQUIRE_OK(pn_state_copy(&c, &a));
    PN_ASSERT(pn_state_eq(&a, &c));
    PN_ASSERT_EQ_INT(pn_state_held(&c, pn_str_c("Q")), 0);

    /* copy of an empty state empties the destination */
    pn_state_t empty;
    pn_state_init(&empty);
    PN_REQUIRE_OK(pn_state_copy(&c, &empty));
    PN_ASSERT(pn_state_eq(&c, &empty));
    PN_ASSERT_EQ_INT(c.n_reservations, 0);

    /* clear returns to the zero state */
    pn_state_clear(&b);
    PN_ASSERT(pn_state_eq(&b, &empty));
    PN_ASSERT(b.reservations == NULL);
    PN_ASSERT_EQ_INT(b.cap_reservations, 0);
    PN_ASSERT_EQ_INT(b.version, 0);
    pn_state_clear(&b); /* twice is fine */
    pn_state_clear(NULL);
    pn_state_clear(&a);
    pn_state_clear(&c);
}

static bool reservations_sorted(const pn_state_t *s) {
    for (size_t i = 1; i < s->n_reservations; i++) {
        const pn_reservation_t *p = &s->reservations[i - 1];
        const pn_reservation_t *q = &s->reservations[i];
        if (pn_str_cmp((pn_str_t){p->order_id, p->order_id_len},
                       (pn_str_t){q->order_id, q->order_id_len}) >= 0)
            return false;
    }
    return true;
}

static void test_reservations_sorted_by_order_id(void) {
    pn_state_t s;
    setup_state(&s, 1000, 0);
    const char *orders[] = {"m", "c", "zz", "a", "b", "ab", "z", "aa",
                            "B", "0", "ma", "d", "e", "f", "\x7f"};
    const size_t n = sizeof orders / sizeof orders[0];
    for (size_t i = 0; i < n; i++)
        APPLY(&s, cmd_reserve(orders[i], (int32_t)(i + 1)));
    PN_REQUIRE(s.n_reservations == n);
    PN_ASSERT(reservations_sorted(&s));
    PN_ASSERT_EQ_STR(s.reservations[0].order_id, "0");
    PN_ASSERT_EQ_STR(s.reservations[1].order_id, "B");
    PN_ASSERT_EQ_STR(s.reservations[2].order_id, "a");
    PN_ASSERT_EQ_STR(s.reservations[3].order_id, "aa");
    PN_ASSERT_EQ_STR(s.reservations[4].order_id, "ab");
    PN_ASSERT_EQ_STR(s.reservations[n - 1].order_id, "\x7f");
    for (size_t i = 0; i < n; i++)
        PN_ASSERT_EQ_INT(pn_state_held(&s, pn_str_c(orders[i])), i + 1);
    PN_ASSERT_EQ_INT(s.reserved, n * (n + 1) / 2);

    /* removing from the middle, the front and the end keeps the order */
    APPLY(&s, cmd_release(PN_CMD_CANCEL, "m", false, 0));
    APPLY(&s, cmd_release(PN_CMD_SHIP, "0", false, 0));
    APPLY(&s, cmd_release(PN_CMD_CANCEL, "\x7f", false, 0));
    PN_ASSERT_EQ_INT(s.n_reservations, n - 3);
    PN_ASSERT(reservations_sorted(&s));
    PN_ASSERT_EQ_STR(s.reservations[0].order_id, "B");
    PN_ASSERT_EQ_INT(pn_state_held(&s, pn_str_c("m")), 0);
    PN_ASSERT_EQ_INT(pn_state_held(&s, pn_str_c("ma")), 11);
    /* re-adding goes back into place */
    APPLY(&s, cmd_reserve("m", 1));
    PN_ASSERT(reservations_sorted(&s));
    PN_ASSERT_EQ_INT(pn_state_held(&s, pn_str_c("m")), 1);

    /* lengths are stored and NUL-terminated copies are made */
    for (size_t i = 0; i < s.n_reservations; i++) {
        PN_ASSERT_EQ_INT(strlen(s.reservations[i].order_id),
                         s.reservations[i].order_id_len);
        PN_ASSERT(s.reservations[i].quantity > 0);
    }
    pn_state_clear(&s);
}

static void test_adjust_reservation(void) {
    pn_state_t s;
    pn_state_init(&s);
    PN_REQUIRE_OK(pn_state_adjust_reservation(&s, pn_str_c("O"), 5));
    PN_ASSERT_EQ_INT(s.reserved, 5);
    PN_ASSERT_EQ_INT(pn_state_adjust_reservation(&s, pn_str_c("O"), -6),
                     PN_ERR_INVALID_ARG);
    PN_ASSERT_EQ_INT(pn_state_adjust_reservation(&s, pn_str_c("P"), -1),
                     PN_ERR_INVALID_ARG);
    PN_ASSERT_EQ_INT(s.reserved, 5);
    PN_ASSERT_EQ_INT(s.n_reservations, 1);
    PN_REQUIRE_OK(pn_state_adjust_reservation(&s, pn_str_c("P"), 0));
    PN_ASSERT_EQ_INT(s.n_reservations, 1); /* no zero entry */
    PN_REQUIRE_OK(pn_state_adjust_reservation(&s, pn_str_c("O"), -5));
    PN_ASSERT_EQ_INT(s.n_reservations, 0);
    PN_ASSERT_EQ_INT(s.reserved, 0);
    PN_ASSERT_EQ_INT(pn_state_held(&s, pn_str_c("O")), 0);
    /* adjust does not count as an event */
    PN_ASSERT_EQ_INT(s.version, 0);
    pn_state_clear(&s);
}

/* --- strings, stream keys, names ---------------------------------------------- */

static int sign(int x) { return (x > 0) - (x < 0); }

static void test_str_cmp_ordering(void) {
    PN_ASSERT_EQ_INT(sign(pn_str_cmp(pn_str_c("a"), pn_str_c("b"))), -1);
    PN_ASSERT_EQ_INT(sign(pn_str_cmp(pn_str_c("b"), pn_str_c("a"))), 1);
    PN_ASSERT_EQ_INT(pn_str_cmp(pn_str_c("abc"), pn_str_c("abc")), 0);
    /* shorter first on a common prefix */
    PN_ASSERT_EQ_INT(sign(pn_str_cmp(pn_str_c("ab"), pn_str_c("abc"))), -1);
    PN_ASSERT_EQ_INT(sign(pn_str_cmp(pn_str_c("abc"), pn_str_c("ab"))), 1);
    PN_ASSERT_EQ_INT(sign(pn_str_cmp(pn_str_c(""), pn_str_c("a"))), -1);
    PN_ASSERT_EQ_INT(pn_str_cmp(pn_str_c(""), PN_STR_NULL), 0);
    /* bytes, not length first: "b" > "abc" */
    PN_ASSERT_EQ_INT(sign(pn_str_cmp(pn_str_c("b"), pn_str_c("abc"))), 1);
    /* upper case before lower case (byte order) */
    PN_ASSERT_EQ_INT(sign(pn_str_cmp(pn_str_c("Z"), pn_str_c("a"))), -1);
    /* unsigned bytes: UTF-8 lead bytes sort after ASCII */
    PN_ASSERT_EQ_INT(sign(pn_str_cmp(pn_str_c("\xc3\xa9"), pn_str_c("z"))), 1);
    /* embedded NUL counts */
    pn_str_t with_nul = {"a\0b", 3}, a = {"a\0", 2};
    PN_ASSERT_EQ_INT(sign(pn_str_cmp(a, with_nul)), -1);
    /* length-delimited: only the view's bytes count */
    PN_ASSERT_EQ_INT(pn_str_cmp((pn_str_t){"abX", 2}, (pn_str_t){"abY", 2}),
                     0);

    PN_ASSERT(pn_str_eq(pn_str_c("xy"), (pn_str_t){"xyz", 2}));
    PN_ASSERT(!pn_str_eq(pn_str_c("xy"), pn_str_c("xz")));
    PN_ASSERT(!pn_str_eq(pn_str_c("xy"), pn_str_c("xyz")));
    PN_ASSERT(pn_str_eq(PN_STR_NULL, pn_str_c("")));
    pn_str_t n = pn_str_c(NULL);
    PN_ASSERT(n.ptr == NULL && n.len == 0);
    PN_ASSERT_EQ_INT(pn_str_c("hello").len, 5);
}

static void test_stream_key(void) {
    char buf[PN_STREAM_KEY_MAX];
    PN_ASSERT_EQ_INT(pn_stream_key(pn_str_c("SKU-1"), pn_str_c("NODE-9"), buf,
                                   sizeof buf),
                     12);
    PN_ASSERT_EQ_PNSTR(pn_str_c(buf), "SKU-1|NODE-9");
    PN_ASSERT(pn_stream_ids_valid(pn_str_c("SKU-1"), pn_str_c("NODE-9")));

    /* exactly big enough (len + NUL), and one byte short */
    char small[13];
    memset(small, '#', sizeof small);
    PN_ASSERT_EQ_INT(pn_stream_key(pn_str_c("SKU-1"), pn_str_c("NODE-9"),
                                   small, 13),
                     12);
    PN_ASSERT_EQ_STR(small, "SKU-1|NODE-9");
    PN_ASSERT_EQ_INT(pn_stream_key(pn_str_c("SKU-1"), pn_str_c("NODE-9"),
                                   small, 12),
                     0);
    PN_ASSERT_EQ_INT(pn_stream_key(pn_str_c("S"), pn_str_c("N"), small, 0), 0);

    /* invalid ids */
    PN_ASSERT_EQ_INT(pn_stream_key(pn_str_c(""), pn_str_c("N"), buf, sizeof buf), 0);
    PN_ASSERT_EQ_INT(pn_stream_key(pn_str_c("S"), pn_str_c(""), buf, sizeof buf), 0);
    PN_ASSERT_EQ_INT(pn_stream_key(PN_STR_NULL, pn_str_c("N"), buf, sizeof buf), 0);
    PN_ASSERT_EQ_INT(pn_stream_key(pn_str_c("S|1"), pn_str_c("N"), buf, sizeof buf), 0);
    PN_ASSERT_EQ_INT(pn_stream_key(pn_str_c("S"), pn_str_c("N|1"), buf, sizeof buf), 0);
    PN_ASSERT(!pn_stream_ids_valid(pn_str_c("S"), pn_str_c("|")));
    PN_ASSERT(!pn_stream_ids_valid(pn_str_c(""), pn_str_c("N")));

    /* the largest key fits in PN_STREAM_KEY_MAX; 257 bytes never do */
    pn_str_t sku = rep(long_a, PN_ID_MAX_BYTES, 's');
    pn_str_t node = rep(long_b, PN_ID_MAX_BYTES, 'n');
    size_t len = pn_stream_key(sku, node, buf, sizeof buf);
    PN_ASSERT_EQ_INT(len, 2 * PN_ID_MAX_BYTES + 1);
    PN_ASSERT_EQ_INT(buf[PN_ID_MAX_BYTES], '|');
    PN_ASSERT_EQ_INT(buf[len - 1], 'n');
    PN_ASSERT_EQ_INT(buf[len], '\0');
    PN_ASSERT_EQ_INT(strlen(buf), len);
    sku = rep(long_a, PN_ID_MAX_BYTES + 1, 's');
    char huge[1024];
    PN_ASSERT_EQ_INT(pn_stream_key(sku, pn_str_c("N"), huge, sizeof huge), 0);
    PN_ASSERT_EQ_INT(pn_stream_key(pn_str_c("S"), sku, huge, sizeof huge), 0);
    PN_ASSERT(!pn_stream_ids_valid(sku, pn_str_c("N")));
}

static void test_names(void) {
    PN_ASSERT_EQ_STR(pn_command_type_name(PN_CMD_UPDATE), "UPDATE");
    PN_ASSERT_EQ_STR(pn_command_type_name(PN_CMD_RESERVE), "RESERVE");
    PN_ASSERT_EQ_STR(pn_command_type_name(PN_CMD_CANCEL), "CANCEL");
    PN_ASSERT_EQ_STR(pn_command_type_name(PN_CMD_SHIP), "SHIP");
    PN_ASSERT_EQ_STR(pn_command_type_name(PN_CMD__COUNT), "UNKNOWN");

    PN_ASSERT_EQ_STR(pn_status_name(PN_STATUS_ACCEPTED), "ACCEPTED");
    PN_ASSERT_EQ_STR(pn_status_name(PN_STATUS_REJECTED), "REJECTED");

    PN_ASSERT_EQ_STR(pn_reason_name(PN_REASON_NONE), "");
    PN_ASSERT_EQ_STR(pn_reason_name(PN_REASON_INSUFFICIENT_INVENTORY),
                     "INSUFFICIENT_INVENTORY");
    PN_ASSERT_EQ_STR(pn_reason_name(PN_REASON_NO_RESERVATION),
                     "NO_RESERVATION");
    PN_ASSERT_EQ_STR(pn_reason_name(PN_REASON_EXCEEDS_RESERVATION),
                     "EXCEEDS_RESERVATION");
    PN_ASSERT_EQ_STR(pn_reason_name(PN_REASON_INVALID_QUANTITY),
                     "INVALID_QUANTITY");
    PN_ASSERT_EQ_STR(pn_reason_name(PN_REASON_INVALID_COMMAND),
                     "INVALID_COMMAND");
    PN_ASSERT_EQ_STR(pn_reason_name(PN_REASON__COUNT), "");
    /* Avro enum symbol order of CommandOutcome.reason */
    PN_ASSERT_EQ_INT(PN_REASON_INSUFFICIENT_INVENTORY, 0);
    PN_ASSERT_EQ_INT(PN_REASON_INVALID_COMMAND, 4);

    PN_ASSERT_EQ_STR(pn_event_type_name(PN_EVT_UPDATED), "InventoryUpdated");
    PN_ASSERT_EQ_STR(pn_event_type_name(PN_EVT_RESERVED), "InventoryReserved");
    PN_ASSERT_EQ_STR(pn_event_type_name(PN_EVT_CANCELLED),
                     "ReservationCancelled");
    PN_ASSERT_EQ_STR(pn_event_type_name(PN_EVT_SHIPPED), "LineItemShipped");
    PN_ASSERT_EQ_STR(pn_event_type_name(PN_EVT__COUNT), "Unknown");
}

static void test_release_helpers(void) {
    pn_command_t c = cmd_update(1);
    c.storage = malloc(16);
    pn_command_release(&c);
    PN_ASSERT(c.storage == NULL && c.id.ptr == NULL && c.quantity == 0);
    pn_command_release(NULL);
    pn_event_t e = mk_event(PN_EVT_RESERVED, 1, "O", 1, 0);
    e.storage = malloc(16);
    pn_event_release(&e);
    PN_ASSERT(e.storage == NULL && e.order_id.ptr == NULL && e.version == 0);
    pn_event_release(NULL);
}

/* --- registration ---------------------------------------------------------------- */

static const pn_test_case_t update_cases[] = {
    {"q < 0 is INVALID_QUANTITY", test_update_negative_is_invalid_quantity},
    {"q == onHand accepted, no event, version unchanged",
     test_update_same_count_accepted_without_event},
    {"q > onHand emits InventoryUpdated with previousQuantity",
     test_update_increase_emits_inventory_updated},
    {"q < onHand below reserved: available negative",
     test_update_decrease_below_reserved_goes_negative},
    {NULL, NULL}};

static const pn_test_case_t reserve_cases[] = {
    {"q <= 0 is INVALID_QUANTITY", test_reserve_non_positive_is_invalid_quantity},
    {"INVALID_QUANTITY checked before INSUFFICIENT_INVENTORY",
     test_reserve_invalid_quantity_before_insufficient},
    {"available < q is INSUFFICIENT_INVENTORY",
     test_reserve_insufficient_inventory},
    {"available == q accepted, available 0", test_reserve_exact_fit},
    {"reservations of one order accumulate",
     test_reserve_accumulates_for_same_order},
    {NULL, NULL}};

static const pn_test_case_t cancel_cases[] = {
    {"order holds nothing: NO_RESERVATION first",
     test_cancel_no_reservation},
    {"q <= 0 is INVALID_QUANTITY", test_cancel_invalid_quantity},
    {"q > held is EXCEEDS_RESERVATION", test_cancel_exceeds_reservation},
    {"q null releases all held", test_cancel_all_held},
    {"partial, then exactly held", test_cancel_partial_and_exact},
    {"cancel leaves onHand", test_cancel_leaves_on_hand},
    {NULL, NULL}};

static const pn_test_case_t ship_cases[] = {
    {"order holds nothing: NO_RESERVATION first", test_ship_no_reservation},
    {"q <= 0 is INVALID_QUANTITY", test_ship_invalid_quantity},
    {"q > held is EXCEEDS_RESERVATION", test_ship_exceeds_reservation},
    {"q null ships all held", test_ship_all_held},
    {"partial, then exactly held", test_ship_partial_and_exact},
    {"onHand = max(0, onHand - q)", test_ship_clamps_on_hand_at_zero},
    {NULL, NULL}};

static const pn_test_case_t invalid_cases[] = {
    {"base commands are accepted", test_base_commands_are_accepted},
    {"id: empty, null, 257 rejected; 256 and '|' fine",
     test_invalid_command_id},
    {"skuId: empty, null, 257, '|' rejected; 256 fine",
     test_invalid_command_sku},
    {"fulfillmentNodeId: empty, null, 257, '|' rejected; 256 fine",
     test_invalid_command_node},
    {"orderId: empty, null, 257 rejected; 256 and '|' fine",
     test_invalid_command_order_id},
    {"INVALID_COMMAND wins over every other reason",
     test_invalid_command_wins_over_other_reasons},
    {NULL, NULL}};

static const pn_test_case_t idempotency_cases[] = {
    {"duplicate returns the prior outcome, no event",
     test_duplicate_returns_prior_outcome},
    {"duplicate of a rejection stays rejected",
     test_duplicate_of_rejection_stays_rejected},
    {"duplicate regardless of command and state",
     test_duplicate_regardless_of_command_and_state},
    {"decide is pure and deterministic", test_decide_is_pure_and_deterministic},
    {"same commands give the same state", test_same_commands_same_events},
    {NULL, NULL}};

static const pn_test_case_t evolve_cases[] = {
    {"applies each event type", test_evolve_applies_each_event_type},
    {"rejects a version gap, state unchanged", test_evolve_rejects_version_gap},
    {"rejects a release beyond what is held",
     test_evolve_rejects_release_beyond_held},
    {"rejects a negative quantity and an unknown type",
     test_evolve_rejects_negative_quantity_and_bad_type},
    {NULL, NULL}};

static const pn_test_case_t state_cases[] = {
    {"copy, eq, clear", test_state_copy_eq_clear},
    {"reservations sorted by order id", test_reservations_sorted_by_order_id},
    {"adjust reservation", test_adjust_reservation},
    {"pn_str_cmp ordering and pn_str_eq", test_str_cmp_ordering},
    {"pn_stream_key", test_stream_key},
    {"names", test_names},
    {"command and event release", test_release_helpers},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {
    {"domain_update", update_cases},
    {"domain_reserve", reserve_cases},
    {"domain_cancel", cancel_cases},
    {"domain_ship", ship_cases},
    {"domain_invalid_command", invalid_cases},
    {"domain_idempotency", idempotency_cases},
    {"domain_evolve", evolve_cases},
    {"domain_state", state_cases},
    {NULL, NULL}};
