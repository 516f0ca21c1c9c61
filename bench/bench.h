/* Benchmarks run by `panther bench <name>`; each prints a machine-readable
 * JSON line with --json, including a baseline measured in the same run. */
#ifndef PANTHER_BENCH_H
#define PANTHER_BENCH_H

int pn_bench_engine_main(int argc, char **argv);

#endif
