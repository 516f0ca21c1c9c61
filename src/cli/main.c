/*
 * panther: one binary, one subcommand per job (DESIGN.md section 8).
 * Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const pn_cli_command_t commands[] = {
    {"demo", "run the whole flow in-process on a mock cluster (no broker)",
     pn_cli_demo},
    {"worker", "execute commands from Kafka, exactly once", pn_cli_worker},
    {"snapshotter", "fold events into snapshots: compacted topic, read API",
     pn_cli_snapshotter},
    {"audit", "check the exactly-once guarantee on the topics", pn_cli_audit},
    {"bench", "run a benchmark (engine)", pn_cli_bench},
    {"produce", "publish commands given as JSON lines", pn_cli_produce},
    {"consume", "print records of a Panther topic as JSON lines", pn_cli_consume},
    {"state", "print the state of one stream as JSON", pn_cli_state},
    {"rebuild", "rebuild the local store from the events topic", pn_cli_rebuild},
};

static void usage(FILE *out) {
    fprintf(out, "usage: panther <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'panther <command> --help' describes a command.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return PN_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(stdout);
        return PN_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "panther: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return PN_EXIT_USAGE;
}
