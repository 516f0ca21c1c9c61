/* panther worker: runs the worker loop until SIGTERM or SIGINT. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_config.h"
#include "panther/http.h"
#include "panther/log.h"
#include "panther/metrics.h"
#include "panther/worker.h"

/* /livez fails when the loop has not moved for this long. */
#define LIVENESS_STALL_MS 30000

static pn_worker_t *running_worker;

static void on_signal(int sig) {
    (void)sig;
    if (running_worker)
        pn_worker_stop(running_worker);
}

/* The HTTP endpoint (http.bind, http.port; port 0 = none): /metrics,
 * /livez, /readyz. Started once the worker exists, so its metrics are
 * registered. */
static pn_err_t http_start(const pn_config_t *cfg, pn_metrics_t *metrics,
                           pn_health_t *health, pn_http_server_t **serverp,
                           char *err, size_t err_size) {
    *serverp = NULL;
    int port = (int)pn_config_get_int(cfg, "http.port");
    if (port == 0)
        return PN_ERR_OK;
    const char *bind = pn_config_get_str(cfg, "http.bind");
    pn_http_route_t routes[PN_METRICS_ROUTES];
    size_t n = pn_metrics_http_routes(metrics, health, routes);
    pn_err_t e = pn_http_server_start(bind, port, routes, n, serverp, err,
                                      err_size);
    if (!e)
        pn_log_kv(PN_LOG_INFO, "http endpoint listening",
                  PN_LOG_STR("bind", bind),
                  PN_LOG_INT("port", pn_http_server_port(*serverp)));
    return e;
}

static void usage(FILE *out) {
    fprintf(out, "usage: panther worker [options]\n"
                 "Consumes commands, publishes events and outcomes exactly once.\n\n"
                 PN_CLI_CONFIG_USAGE);
}

int pn_cli_worker(int argc, char **argv) {
    pn_config_t *cfg;
    bool done;
    int rc = pn_cli_config_only("worker", argc, argv, usage, &cfg, &done);
    if (done)
        return rc;

    pn_cli_kafka_props_t kp;
    pn_worker_options_t opts;
    char err[1024] = "";
    pn_worker_t *w = NULL;
    pn_http_server_t *http = NULL;
    pn_metrics_t *metrics = NULL;
    pn_health_t *health = NULL;
    pn_err_t e = pn_cli_kafka_props_load(cfg, &kp);
    if (!e && pn_config_get_int(cfg, "http.port")) {
        metrics = pn_metrics_new();
        health = pn_health_new(LIVENESS_STALL_MS);
        if (!metrics || !health)
            e = PN_ERR_NOMEM;
    }
    if (!e) {
        pn_cli_worker_options(cfg, &kp, &opts);
        opts.metrics = metrics;
        opts.health = health;
        e = pn_worker_new(&opts, &w, err, sizeof err);
    }
    if (!e)
        e = http_start(cfg, metrics, health, &http, err, sizeof err);
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
    pn_http_server_stop(http);
    pn_worker_free(w);
    pn_health_free(health);
    pn_metrics_free(metrics);
    pn_cli_kafka_props_free(&kp);
    pn_config_destroy(cfg);
    return rc;
}
