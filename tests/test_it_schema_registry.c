/*
 * Integration test (real broker, real `panther worker` process) of the
 * Schema Registry path: Confluent-framed commands whose writer schemas a
 * (fake, in-process) registry serves. While the registry is down the
 * worker must neither dead-letter nor execute anything, only retry; once
 * it is back every command gets its outcome, the id the registry does not
 * know is dead-lettered, and the audit (which also asks the registry)
 * finds no violation; `panther consume commands` decodes them too.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fake_registry.h"
#include "it_support.h"
#include "panther/audit.h"
#include "pn_test.h"
#include "topic_reader.h"

const int pn_test_needs_broker = 1;

#define AUTH "alice:s3cret"
#define AUTH_HEADER "Basic YWxpY2U6czNjcmV0"

static pn_err_t count_record(void *opaque, const rd_kafka_message_t *m) {
    (void)m;
    (*(int *)opaque)++;
    return PN_ERR_OK;
}

static int count_records(pn_it_t *it, const char *topic) {
    pn_kafka_prop_t kafka[] = {{"bootstrap.servers", it->bootstrap}};
    int n = 0;
    char err[512] = "";
    pn_err_t e = pn_topic_read_all(kafka, 1, topic, count_record, &n, 30000,
                                   err, sizeof err);
    PN_ASSERT_(e == PN_ERR_OK, CU_TRUE, "read %s: %s", topic, err);
    return n;
}

static pn_err_t audit(pn_it_t *it, const char *url, int wait_ms,
                      pn_audit_report_t *report, char *err, size_t size) {
    pn_kafka_prop_t kafka[] = {{"bootstrap.servers", it->bootstrap}};
    pn_audit_options_t o = {.commands_topic = it->commands,
                            .events_topic = it->events,
                            .outcomes_topic = it->outcomes,
                            .dead_letter_topic = it->dlt,
                            .group_id = it->group,
                            .kafka = kafka,
                            .n_kafka = 1,
                            .wait_ms = wait_ms,
                            .schema_registry_url = url,
                            .schema_registry_auth = AUTH};
    return pn_audit_run(&o, report, err, size);
}

static bool file_contains(const char *path, const char *needle) {
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[16384];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static void test_outage_retries_then_recovers(void) {
    fake_sr_t f;
    fake_sr_start(&f);
    f.expect_auth = AUTH_HEADER;
    fake_sr_set_down(&f, 1);
    pn_it_t it;
    PN_REQUIRE(pn_it_init(&it, "sr", 1, 1));
    /* One framed with our schema's id (first, so that no batch can commit
     * while the registry is down), a plain one, one written with an
     * evolved schema, one with an id the registry does not know. */
    pn_command_t other = pn_it_cmd(PN_CMD_UPDATE, "u-2", NULL, "S2", "N",
                                   true, 5);
    pn_buf_t framed;
    pn_buf_init(&framed, 1 << 16);
    PN_REQUIRE_OK(pn_codec_encode_command(it.codec, &other,
                                          PN_FRAMING_CONFLUENT, FAKE_SR_OURS,
                                          &framed));
    pn_it_send_raw(&it, framed.data, framed.len);
    pn_buf_free(&framed);
    pn_command_t restock = pn_it_cmd(PN_CMD_UPDATE, "u-1", NULL, "S1", "N",
                                     true, 10);
    pn_it_send(&it, &restock, false);
    fake_sr_bytes_t evolved = {.n = 0};
    fake_sr_evolved_reserve(&evolved, FAKE_SR_EVOLVED, "r-1", "O1", "S1", "N",
                            3);
    pn_it_send_raw(&it, evolved.b, evolved.n);
    fake_sr_bytes_t unknown = {.n = 0};
    fake_sr_evolved_reserve(&unknown, 99, "r-2", "O2", "S1", "N", 1);
    pn_it_send_raw(&it, unknown.b, unknown.n);
    pn_it_flush(&it);

    char url[64], set_url[96];
    fake_sr_url(&f, url, sizeof url);
    snprintf(set_url, sizeof set_url, "schema.registry.url=%s", url);
    const char *extra[] = {set_url,
                           "schema.registry.basic.auth.user.info=" AUTH, NULL};
    pid_t w = pn_it_worker_start(&it, "w1", extra);
    /* Down: the worker asks again and again (aborting and rewinding). */
    for (int i = 0; i < 600 && fake_sr_requests(&f, FAKE_SR_OURS) < 4; i++)
        usleep(100 * 1000);
    PN_ASSERT(fake_sr_requests(&f, FAKE_SR_OURS) >= 4);
    int status;
    PN_ASSERT_EQ_INT(waitpid(w, &status, WNOHANG), 0); /* still running */
    PN_ASSERT_EQ_INT(count_records(&it, it.dlt), 0);
    PN_ASSERT_EQ_INT(count_records(&it, it.outcomes), 0);
    /* The audit cannot judge either, and says so instead of guessing. */
    pn_audit_report_t report;
    char err[1024] = "";
    PN_ASSERT_EQ_INT(audit(&it, url, 0, &report, err, sizeof err), PN_ERR_IO);
    PN_ASSERT(strstr(err, "HTTP 503") != NULL);
    pn_audit_report_free(&report);

    fake_sr_set_down(&f, 0);
    PN_REQUIRE_OK(audit(&it, url, 60000, &report, err, sizeof err));
    if (report.violations)
        pn_audit_report_print(&report, stderr);
    PN_ASSERT(report.caught_up);
    PN_ASSERT_EQ_INT(report.violations, 0);
    PN_ASSERT_EQ_INT(report.command_records, 4);
    PN_ASSERT_EQ_INT(report.undecodable, 1);
    PN_ASSERT_EQ_INT(report.dead_letters, 1);
    PN_ASSERT_EQ_INT(report.outcomes, 3);
    PN_ASSERT_EQ_INT(report.events, 3);
    pn_audit_report_free(&report);
    pn_it_outcome_t *outs = NULL;
    size_t n_out = pn_it_read_outcomes(&it, &outs);
    const pn_outcome_record_t *r = pn_it_find_outcome(outs, n_out, "r-1", false);
    PN_REQUIRE(r != NULL);
    PN_ASSERT_EQ_INT(r->outcome.status, PN_STATUS_ACCEPTED);
    PN_ASSERT_EQ_INT(r->outcome.reserved, 3);
    PN_ASSERT_EQ_INT(r->outcome.available, 7);
    pn_it_free_outcomes(outs, n_out);
    PN_ASSERT_EQ_INT(pn_it_worker_stop(w, SIGTERM), 0);

    /* panther consume decodes the framed commands through the registry. */
    const char *consume[] = {"consume", "commands", "--topic", it.commands,
                             "--bootstrap", it.bootstrap, "--exit-at-end",
                             "--timeout-ms", "60000", "--set", set_url,
                             "--set", "schema.registry.basic.auth.user.info=" AUTH,
                             NULL};
    PN_ASSERT_EQ_INT(pn_it_run_panther(&it, consume), 0);
    char cmd_log[4200];
    snprintf(cmd_log, sizeof cmd_log, "%s/cmd.log", it.dir);
    PN_ASSERT(file_contains(cmd_log, "\"id\":\"r-1\""));
    PN_ASSERT(file_contains(cmd_log, "\"id\":\"u-2\""));
    PN_ASSERT(file_contains(cmd_log, "\"error\":\"UNKNOWN_SCHEMA\""));
    PN_ASSERT(!file_contains(cmd_log, "s3cret"));

    /* The worker said why it retried, and never logged the password. */
    char log[4200];
    snprintf(log, sizeof log, "%s/w1.log", it.dir);
    PN_ASSERT(file_contains(log, "batch aborted"));
    PN_ASSERT(file_contains(log, "offset 0 not decoded"));
    PN_ASSERT(file_contains(log, "HTTP 503"));
    PN_ASSERT(!file_contains(log, "s3cret"));
    pn_it_cleanup(&it);
    fake_sr_stop(&f);
}

static const pn_test_case_t cases[] = {
    {"registry outage: retried, not dead-lettered",
     test_outage_retries_then_recovers},
    {NULL, NULL}};

const pn_test_suite_t pn_test_suites[] = {{"schema_registry_it", cases},
                                          {NULL, NULL}};
