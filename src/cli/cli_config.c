#include "cli_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "panther/log.h"

bool pn_cli_config_option(pn_cli_config_args_t *args, int c, const char *arg,
                          bool *usage_error) {
    switch (c) {
    case PN_OPT_CONFIG:
        args->path = arg;
        return true;
    case PN_OPT_SET:
        if (args->n_sets == sizeof args->sets / sizeof args->sets[0]) {
            fprintf(stderr, "panther: too many --set flags\n");
            *usage_error = true;
        } else {
            args->sets[args->n_sets++] = arg;
        }
        return true;
    case PN_OPT_BOOTSTRAP:
        args->bootstrap = arg;
        return true;
    case PN_OPT_PRINT_CONFIG:
        args->print = true;
        return true;
    case PN_OPT_HELP:
        args->help = true;
        return true;
    default:
        return false;
    }
}

int pn_cli_config_build(const char *command, const pn_cli_config_args_t *args,
                        pn_config_t **cfgp, bool *done) {
    char err[PN_CONFIG_ERRSTR_SIZE] = "";
    *done = true;
    pn_config_t *cfg = pn_config_new();
    if (!cfg) {
        fprintf(stderr, "panther %s: out of memory\n", command);
        return PN_EXIT_FAILURE;
    }
    pn_err_t e = PN_ERR_OK;
    if (args->path)
        e = pn_config_load_file(cfg, args->path, err, sizeof err);
    if (!e)
        e = pn_config_load_env(cfg, NULL, err, sizeof err);
    if (!e && args->bootstrap)
        e = pn_config_set(cfg, "kafka.bootstrap.servers", args->bootstrap,
                          "--bootstrap", err, sizeof err);
    for (size_t i = 0; !e && i < args->n_sets; i++)
        e = pn_config_set_pair(cfg, args->sets[i], "--set", err, sizeof err);
    if (!e)
        e = pn_config_finalize(cfg, err, sizeof err);
    if (e) {
        fprintf(stderr, "panther %s: %s\n", command, err);
        pn_config_destroy(cfg);
        return e == PN_ERR_CONFIG || e == PN_ERR_IO ? PN_EXIT_USAGE
                                                    : PN_EXIT_FAILURE;
    }
    if (args->print) {
        e = pn_config_print(cfg, stdout);
        pn_config_destroy(cfg);
        return e ? PN_EXIT_FAILURE : PN_EXIT_OK;
    }
    pn_cli_apply_log_level(cfg);
    *cfgp = cfg;
    *done = false;
    return PN_EXIT_OK;
}

int pn_cli_config_only(const char *command, int argc, char **argv,
                       void (*usage)(FILE *out), pn_config_t **cfgp,
                       bool *done) {
    static const struct option longopts[] = {PN_CLI_CONFIG_OPTIONS,
                                             {NULL, 0, NULL, 0}};
    pn_cli_config_args_t args = {0};
    bool usage_error = false;
    int c;
    *done = true;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
        if (!pn_cli_config_option(&args, c, optarg, &usage_error))
            usage_error = true;
    return pn_cli_config_parsed(command, &args, usage_error || optind < argc,
                                usage, cfgp, done);
}

int pn_cli_config_parsed(const char *command, const pn_cli_config_args_t *args,
                         bool usage_error, void (*usage)(FILE *out),
                         pn_config_t **cfgp, bool *done) {
    *done = true;
    if (usage_error) {
        usage(stderr);
        return PN_EXIT_USAGE;
    }
    if (args->help) {
        usage(stdout);
        return PN_EXIT_OK;
    }
    return pn_cli_config_build(command, args, cfgp, done);
}

static pn_err_t add_prop(const char *name, const char *value,
                         const char *source, void *opaque) {
    (void)source;
    pn_cli_kafka_props_t *kp = opaque;
    if (kp->n == kp->cap) {
        size_t cap = kp->cap ? kp->cap * 2 : 16;
        pn_kafka_prop_t *grown = realloc(kp->props, cap * sizeof *grown);
        if (!grown)
            return PN_ERR_NOMEM;
        kp->props = grown;
        kp->cap = cap;
    }
    kp->props[kp->n++] = (pn_kafka_prop_t){name, value};
    return PN_ERR_OK;
}

pn_err_t pn_cli_kafka_props_load(const pn_config_t *cfg,
                                 pn_cli_kafka_props_t *kp) {
    memset(kp, 0, sizeof *kp);
    return pn_config_kafka_foreach(cfg, add_prop, kp);
}

void pn_cli_kafka_props_free(pn_cli_kafka_props_t *kp) {
    free(kp->props);
    memset(kp, 0, sizeof *kp);
}

void pn_cli_worker_options(const pn_config_t *cfg,
                           const pn_cli_kafka_props_t *kp,
                           pn_worker_options_t *o) {
    memset(o, 0, sizeof *o);
    o->commands_topic = pn_config_get_str(cfg, "topics.commands");
    o->events_topic = pn_config_get_str(cfg, "topics.events");
    o->outcomes_topic = pn_config_get_str(cfg, "topics.outcomes");
    o->dead_letter_topic = pn_config_get_str(cfg, "topics.dead.letters");
    o->group_id = pn_config_get_str(cfg, "group.id");
    o->instance_id = pn_config_get_str(cfg, "instance.id");
    o->exactly_once =
        !strcmp(pn_config_get_str(cfg, "processing.guarantee"), "exactly_once");
    o->commit_interval_ms = (int)pn_config_get_ms(cfg, "worker.commit.interval.ms");
    o->batch_max_commands = (int)pn_config_get_int(cfg, "worker.batch.max.commands");
    o->kafka = kp->props;
    o->n_kafka = kp->n;
    pn_cli_store_options(cfg, "store.path", &o->store);
    o->engine.state_cache_streams =
        (size_t)pn_config_get_int(cfg, "store.state.cache.streams");
    o->codec.max_record_bytes =
        (size_t)pn_config_get_bytes(cfg, "codec.max.record.bytes");
    o->schema_registry_url = pn_config_get_str(cfg, "schema.registry.url");
    o->schema_registry_auth =
        pn_config_get_str(cfg, "schema.registry.basic.auth.user.info");
}

void pn_cli_store_options(const pn_config_t *cfg, const char *path_key,
                          pn_store_options_t *store) {
    memset(store, 0, sizeof *store);
    store->path = pn_config_get_str(cfg, path_key);
    store->block_cache_bytes =
        (uint64_t)pn_config_get_bytes(cfg, "store.block.cache.bytes");
    store->write_buffer_bytes =
        (uint64_t)pn_config_get_bytes(cfg, "store.write.buffer.bytes");
    store->sync_writes = pn_config_get_bool(cfg, "store.sync");
    store->event_retention_ms = pn_config_get_ms(cfg, "store.event.retention.ms");
    /* Every process opening a store expires idempotency entries by it
     * (compaction), so each gets the configured window. */
    store->dedup_window_commands =
        (uint64_t)pn_config_get_int(cfg, "idempotency.window.commands");
    store->dedup_window_ms = pn_config_get_ms(cfg, "idempotency.window.ms");
}

bool pn_cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

void pn_cli_apply_log_level(const pn_config_t *cfg) {
    const char *level = pn_config_get_str(cfg, "log.level");
    pn_log_set_level(!strcmp(level, "debug")  ? PN_LOG_DEBUG
                     : !strcmp(level, "warn")  ? PN_LOG_WARN
                     : !strcmp(level, "error") ? PN_LOG_ERROR
                                               : PN_LOG_INFO);
}
