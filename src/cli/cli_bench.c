#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "cli.h"

int pn_cli_bench(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help")) {
        fprintf(argc < 2 ? stderr : stdout,
                "usage: panther bench engine|codec|e2e [options]   (see --help of "
                "each)\n");
        return argc < 2 ? PN_EXIT_USAGE : PN_EXIT_OK;
    }
    if (!strcmp(argv[1], "engine"))
        return pn_bench_engine_main(argc - 1, argv + 1);
    if (!strcmp(argv[1], "codec"))
        return pn_bench_codec_main(argc - 1, argv + 1);
    if (!strcmp(argv[1], "e2e"))
        return pn_bench_e2e_main(argc - 1, argv + 1);
    if (!strcmp(argv[1], "passthrough-worker")) /* started by e2e */
        return pn_bench_passthrough_main(argc - 1, argv + 1);
    fprintf(stderr, "panther bench: unknown benchmark '%s'\n", argv[1]);
    return PN_EXIT_USAGE;
}
