/* panther audit: checks the guarantee of DESIGN.md section 6 on the topics
 * and exits 1 on any violation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_config.h"
#include "panther/audit.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: panther audit [options]\n"
            "Reads the commands, outcomes, dead-letter and events topics\n"
            "(read_committed) and checks that every command record has exactly\n"
            "one outcome or dead letter, that each stream's events are\n"
            "contiguous, and that outcomes agree with the fold of the events.\n\n"
            "  --wait-ms N         first wait up to N ms for the worker group\n"
            "                      to consume everything and for open\n"
            "                      transactions on the output topics to end\n"
            "                      (default 0)\n"
            "  --json              print the report as one JSON object\n"
            "  --max-reported N    violations described (default 20)\n" PN_CLI_CONFIG_USAGE
            "Exit status: 0 passed, 1 violations found, 2 usage or configuration error.\n");
}

static bool parse_int(const char *s, int *out) {
    int64_t v;
    if (!pn_cli_parse_i64(s, 0, 86400000, &v))
        return false;
    *out = (int)v;
    return true;
}

int pn_cli_audit(int argc, char **argv) {
    enum { OPT_WAIT = 1, OPT_JSON, OPT_MAX };
    static const struct option longopts[] = {
        PN_CLI_CONFIG_OPTIONS,
        {"wait-ms", required_argument, NULL, OPT_WAIT},
        {"json", no_argument, NULL, OPT_JSON},
        {"max-reported", required_argument, NULL, OPT_MAX},
        {NULL, 0, NULL, 0}};
    pn_cli_config_args_t args = {0};
    bool usage_error = false, json = false;
    int wait_ms = 0, max_reported = 20, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (pn_cli_config_option(&args, c, optarg, &usage_error))
            continue;
        if (c == OPT_JSON) {
            json = true;
        } else if ((c == OPT_WAIT && parse_int(optarg, &wait_ms)) ||
                   (c == OPT_MAX && parse_int(optarg, &max_reported))) {
            continue;
        } else {
            if (c == OPT_WAIT || c == OPT_MAX)
                fprintf(stderr, "panther audit: '%s' is not a valid number\n",
                        optarg);
            usage_error = true;
        }
    }
    pn_config_t *cfg;
    bool done;
    int rc = pn_cli_config_parsed("audit", &args, usage_error || optind < argc,
                                  usage, &cfg, &done);
    if (done)
        return rc;
    pn_cli_kafka_props_t kp;
    pn_audit_report_t report;
    char err[1024] = "";
    pn_err_t e = pn_cli_kafka_props_load(cfg, &kp);
    if (!e) {
        pn_audit_options_t o = {
            .commands_topic = pn_config_get_str(cfg, "topics.commands"),
            .events_topic = pn_config_get_str(cfg, "topics.events"),
            .outcomes_topic = pn_config_get_str(cfg, "topics.outcomes"),
            .dead_letter_topic = pn_config_get_str(cfg, "topics.dead.letters"),
            .group_id = pn_config_get_str(cfg, "group.id"),
            .kafka = kp.props,
            .n_kafka = kp.n,
            .wait_ms = wait_ms,
            .max_reported = (size_t)max_reported,
            .schema_registry_url = pn_config_get_str(cfg, "schema.registry.url"),
            .schema_registry_auth = pn_config_get_str(
                cfg, "schema.registry.basic.auth.user.info"),
        };
        e = pn_audit_run(&o, &report, err, sizeof err);
    }
    if (e) {
        fprintf(stderr, "panther audit: %s\n", err[0] ? err : pn_err_str(e));
        rc = PN_EXIT_FAILURE;
    } else {
        if (json)
            pn_audit_report_print_json(&report, stdout);
        else
            pn_audit_report_print(&report, stdout);
        rc = report.violations ? PN_EXIT_FAILURE : PN_EXIT_OK;
    }
    pn_audit_report_free(&report);
    pn_cli_kafka_props_free(&kp);
    pn_config_destroy(cfg);
    return rc;
}
