/* Subcommand entry points of the panther binary. Each takes argv with its
 * own name in argv[0] and returns the process exit code. */
#ifndef PANTHER_CLI_H
#define PANTHER_CLI_H

enum { PN_EXIT_OK = 0, PN_EXIT_FAILURE = 1, PN_EXIT_USAGE = 2 };

typedef struct pn_cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} pn_cli_command_t;

int pn_cli_bench(int argc, char **argv);
int pn_cli_worker(int argc, char **argv);
int pn_cli_snapshotter(int argc, char **argv);
int pn_cli_produce(int argc, char **argv);
int pn_cli_consume(int argc, char **argv);
int pn_cli_audit(int argc, char **argv);
int pn_cli_state(int argc, char **argv);
int pn_cli_rebuild(int argc, char **argv);
int pn_cli_demo(int argc, char **argv);

#endif
