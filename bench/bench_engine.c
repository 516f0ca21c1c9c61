#include <stdio.h>

#include "bench.h"

int pn_bench_engine_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "panther bench engine: not built yet\n");
    return 1;
}
