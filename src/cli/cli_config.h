/* Configuration plumbing shared by the subcommands: the --config, --set,
 * --bootstrap and --print-config flags, and the translation of settings
 * into module options. */
#ifndef PANTHER_CLI_CONFIG_H
#define PANTHER_CLI_CONFIG_H

#include <getopt.h>
#include <stdbool.h>

#include "panther/config.h"
#include "panther/kafka.h"
#include "panther/worker.h"

/* The long options every Kafka subcommand accepts; getopt values. */
enum {
    PN_OPT_CONFIG = 1000,
    PN_OPT_SET,
    PN_OPT_BOOTSTRAP,
    PN_OPT_PRINT_CONFIG,
    PN_OPT_HELP,
};

#define PN_CLI_CONFIG_OPTIONS                                                \
    {"config", required_argument, NULL, PN_OPT_CONFIG},                      \
        {"set", required_argument, NULL, PN_OPT_SET},                        \
        {"bootstrap", required_argument, NULL, PN_OPT_BOOTSTRAP},            \
        {"print-config", no_argument, NULL, PN_OPT_PRINT_CONFIG},            \
        {"help", no_argument, NULL, PN_OPT_HELP}

#define PN_CLI_CONFIG_USAGE                                                  \
    "  --config FILE       properties file (key=value, # comments)\n"      \
    "  --set KEY=VALUE     override one setting (repeatable)\n"            \
    "  --bootstrap HOSTS   shorthand for --set kafka.bootstrap.servers=HOSTS\n" \
    "  --print-config      print the effective configuration and exit\n"   \
    "  --help              this text\n"                                    \
    "Settings also come from PANTHER_* environment variables (file < env < flags).\n"

/** Collects the config flags while a subcommand runs getopt. */
typedef struct pn_cli_config_args {
    const char *path;
    const char *sets[128];
    size_t n_sets;
    const char *bootstrap;
    bool print;
    bool help;
} pn_cli_config_args_t;

/** Handles a config option from getopt_long; false if c is not one. On
 *  too many --set flags prints an error and sets *usage_error. */
bool pn_cli_config_option(pn_cli_config_args_t *args, int c, const char *arg,
                          bool *usage_error);

/** Builds, loads (file, environment, flags) and finalizes the
 *  configuration; prints it when asked. Returns an exit code: 0 to go on,
 *  else the code to exit with (2 on a configuration error, with the message
 *  on stderr); *done is true when the command should exit with it. */
int pn_cli_config_build(const char *command, const pn_cli_config_args_t *args,
                        pn_config_t **cfgp, bool *done);

/**
 * The end of a command's option parsing: a usage error prints `usage` on
 * stderr (exit 2), --help prints it on stdout (exit 0); otherwise builds the
 * configuration as pn_cli_config_build does (same return and *done).
 */
int pn_cli_config_parsed(const char *command, const pn_cli_config_args_t *args,
                         bool usage_error, void (*usage)(FILE *out),
                         pn_config_t **cfgp, bool *done);

/**
 * For commands that take only the configuration flags: parses argv,
 * answers --help and usage errors with `usage`, then builds the
 * configuration as pn_cli_config_build does (same return and *done).
 */
int pn_cli_config_only(const char *command, int argc, char **argv,
                       void (*usage)(FILE *out), pn_config_t **cfgp,
                       bool *done);

/** The kafka.* pass-through properties, in order; free with
 *  pn_cli_kafka_props_free. */
typedef struct pn_cli_kafka_props {
    pn_kafka_prop_t *props;
    size_t n;
    size_t cap;
} pn_cli_kafka_props_t;

pn_err_t pn_cli_kafka_props_load(const pn_config_t *cfg,
                                 pn_cli_kafka_props_t *kp);
void pn_cli_kafka_props_free(pn_cli_kafka_props_t *kp);

/** Worker options from the configuration (strings point into cfg and kp). */
void pn_cli_worker_options(const pn_config_t *cfg,
                           const pn_cli_kafka_props_t *kp,
                           pn_worker_options_t *opts);

/** Store options from the store.* settings, at the path of `path_key`
 *  (store.path for workers, snapshotter.store.path for snapshotters). */
void pn_cli_store_options(const pn_config_t *cfg, const char *path_key,
                          pn_store_options_t *store);

/** Parses a whole decimal integer within [min, max]; false otherwise. */
bool pn_cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/** Applies log.level. */
void pn_cli_apply_log_level(const pn_config_t *cfg);

#endif
