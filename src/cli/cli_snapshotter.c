/* panther snapshotter: folds the events topic into snapshots, publishes
 * them to the compacted snapshots topic and serves the read API, until
 * SIGTERM or SIGINT. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_config.h"
#include "panther/log.h"
#include "panther/metrics.h"
#include "panther/snapshotter.h"
#include "snapshotter_metrics.h"

/* /livez fails when the loop has not moved for this long. */
#define LIVENESS_STALL_MS 30000

static pn_snapshotter_t *running;

static void on_signal(int sig) {
    (void)sig;
    if (running)
        pn_snapshotter_stop(running);
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: panther snapshotter [options]\n"
            "Folds the events topic into one snapshot per stream, kept in its\n"
            "own RocksDB (snapshotter.store.path), published to the compacted\n"
            "snapshots topic (topics.snapshots) and served on\n"
            "http.bind:snapshotter.http.port:\n"
            "  GET /v1/inventory/{sku}/{node}   one stream, as JSON\n"
            "  GET /v1/inventory/{sku}          every node of a SKU\n"
            "  GET /livez, /readyz              health\n"
            "  GET /metrics                     Prometheus metrics\n\n" PN_CLI_CONFIG_USAGE);
}

static void snapshotter_options(const pn_config_t *cfg,
                                const pn_cli_kafka_props_t *kp,
                                pn_snapshotter_options_t *o) {
    memset(o, 0, sizeof *o);
    o->events_topic = pn_config_get_str(cfg, "topics.events");
    o->snapshots_topic = pn_config_get_str(cfg, "topics.snapshots");
    o->group_id = pn_config_get_str(cfg, "snapshotter.group.id");
    o->instance_id = pn_config_get_str(cfg, "instance.id");
    o->interval_ms = (int)pn_config_get_ms(cfg, "snapshotter.interval.ms");
    o->kafka = kp->props;
    o->n_kafka = kp->n;
    pn_cli_store_options(cfg, "snapshotter.store.path", &o->store);
    o->codec.max_record_bytes =
        (size_t)pn_config_get_bytes(cfg, "codec.max.record.bytes");
    o->http_bind = pn_config_get_str(cfg, "http.bind");
    o->http_port = (int)pn_config_get_int(cfg, "snapshotter.http.port");
}

static int run(pn_snapshotter_t *s) {
    char err[1024] = "";
    running = s;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    pn_err_t e = pn_snapshotter_run(s, err, sizeof err);
    running = NULL;
    if (!e)
        return PN_EXIT_OK;
    pn_log_kv(PN_LOG_ERROR, "snapshotter failed", PN_LOG_ERR(e),
              PN_LOG_STR("detail", err));
    return PN_EXIT_FAILURE;
}

int pn_cli_snapshotter(int argc, char **argv) {
    pn_config_t *cfg;
    bool done;
    int rc = pn_cli_config_only("snapshotter", argc, argv, usage, &cfg, &done);
    if (done)
        return rc;

    pn_cli_kafka_props_t kp = {0};
    pn_snapshotter_options_t opts;
    pn_http_route_t routes[PN_METRICS_ROUTES];
    char err[1024] = "";
    pn_snapshotter_t *s = NULL;
    pn_health_t *health = pn_health_new(LIVENESS_STALL_MS);
    pn_metrics_t *registry = pn_metrics_new();
    pn_snapshotter_metrics_t *metrics =
        registry ? pn_snapshotter_metrics_new(registry) : NULL;
    pn_err_t e = health && metrics ? pn_cli_kafka_props_load(cfg, &kp)
                                   : PN_ERR_NOMEM;
    if (!e) {
        snapshotter_options(cfg, &kp, &opts);
        opts.health = health;
        opts.routes = routes;
        opts.n_routes = pn_metrics_http_routes(registry, health, routes);
        e = pn_snapshotter_new(&opts, &s, err, sizeof err);
    }
    if (!e)
        e = pn_snapshotter_metrics_start(metrics, s);
    if (e) {
        pn_log_kv(PN_LOG_ERROR, "snapshotter cannot start", PN_LOG_ERR(e),
                  PN_LOG_STR("detail", err));
        fprintf(stderr, "panther snapshotter: %s\n", err[0] ? err : pn_err_str(e));
        rc = e == PN_ERR_CONFIG || e == PN_ERR_STORE_VERSION ||
                     e == PN_ERR_STORE_CORRUPT
                 ? PN_EXIT_USAGE
                 : PN_EXIT_FAILURE;
    } else {
        rc = run(s);
    }
    pn_snapshotter_metrics_free(metrics);
    pn_snapshotter_free(s);
    pn_metrics_free(registry);
    pn_health_free(health);
    pn_cli_kafka_props_free(&kp);
    pn_config_destroy(cfg);
    return rc;
}
