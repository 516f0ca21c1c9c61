/* panther worker: runs the worker loop until SIGTERM or SIGINT. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_config.h"
#include "panther/log.h"
#include "panther/worker.h"

static pn_worker_t *running_worker;

static void on_signal(int sig) {
    (void)sig;
    if (running_worker)
        pn_worker_stop(running_worker);
}

static void usage(FILE *out) {
    fprintf(out, "usage: panther worker [options]\n"
                 "Consumes commands, publishes events and outcomes exactly once.\n\n"
                 PN_CLI_CONFIG_USAGE);
}

int pn_cli_worker(int argc, char **argv) {
    static const struct option longopts[] = {PN_CLI_CONFIG_OPTIONS,
                                             {NULL, 0, NULL, 0}};
    pn_cli_config_args_t args = {0};
    bool usage_error = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
        if (!pn_cli_config_option(&args, c, optarg, &usage_error))
            usage_error = true;
    if (usage_error || optind < argc) {
        usage(stderr);
        return PN_EXIT_USAGE;
    }
    if (args.help) {
        usage(stdout);
        return PN_EXIT_OK;
    }
    pn_config_t *cfg;
    bool done;
    int rc = pn_cli_config_build("worker", &args, &cfg, &done);
    if (done)
        return rc;

    pn_cli_kafka_props_t kp;
    pn_worker_options_t opts;
    char err[1024] = "";
    pn_worker_t *w = NULL;
    pn_err_t e = pn_cli_kafka_props_load(cfg, &kp);
    if (!e) {
        pn_cli_worker_options(cfg, &kp, &opts);
        e = pn_worker_new(&opts, &w, err, sizeof err);
    }
    if (e) {
        pn_log_kv(PN_LOG_ERROR, "worker cannot start",
                  PN_LOG_STR("error", pn_err_name(e)), PN_LOG_STR("detail", err));
        fprintf(stderr, "panther worker: %s\n", err[0] ? err : pn_err_str(e));
        rc = e == PN_ERR_CONFIG || e == PN_ERR_STORE_VERSION ||
                     e == PN_ERR_STORE_CORRUPT
                 ? PN_EXIT_USAGE
                 : PN_EXIT_FAILURE;
    } else {
        running_worker = w;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        e = pn_worker_run(w, err, sizeof err);
        running_worker = NULL;
        if (e) {
            pn_log_kv(PN_LOG_ERROR, "worker failed",
                      PN_LOG_STR("error", pn_err_name(e)), PN_LOG_STR("detail", err));
            rc = PN_EXIT_FAILURE;
        }
    }
    pn_worker_free(w);
    pn_cli_kafka_props_free(&kp);
    pn_config_destroy(cfg);
    return rc;
}
