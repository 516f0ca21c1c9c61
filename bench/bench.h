/* Benchmarks run by `panther bench <name>`; each prints a machine-readable
 * JSON line with --json, including a baseline measured in the same run. */
#ifndef PANTHER_BENCH_H
#define PANTHER_BENCH_H

int pn_bench_engine_main(int argc, char **argv);

/* The codec's direct plans against Avro C's generic path (bench_codec.c). */
int pn_bench_codec_main(int argc, char **argv);

/* End to end against a real broker (bench_e2e.c), and the transactional
 * pass-through it starts as a process for its baseline (hidden). */
int pn_bench_e2e_main(int argc, char **argv);
int pn_bench_passthrough_main(int argc, char **argv);

#endif
