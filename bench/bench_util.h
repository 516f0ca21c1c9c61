/* Small helpers shared by the benchmarks: clocks, percentiles, memory,
 * scratch directories and progress lines on stderr. */
#ifndef PANTHER_BENCH_UTIL_H
#define PANTHER_BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** The p-quantile (0..1) of n values; sorts values in place. */
double pn_bench_percentile(double *values, size_t n, double p);

/** Peak resident set size of this process so far, in MiB. */
double pn_bench_peak_rss_mib(void);

/** A fresh directory under dir (or $TMPDIR, or /tmp); caller frees. */
char *pn_bench_tmpdir(const char *dir, const char *tag);

/** rm -rf. */
void pn_bench_rmdir(const char *path);

/** Parses a whole decimal number; false on anything else. */
bool pn_bench_parse_u64(const char *s, uint64_t *out);

/** Progress on stderr, about once a second, while a long run goes on. */
typedef struct pn_bench_progress {
    const char *what;
    uint64_t total;
    double started;
    double last;
    bool enabled;
} pn_bench_progress_t;

void pn_bench_progress_start(pn_bench_progress_t *p, const char *what,
                             uint64_t total, bool enabled);
void pn_bench_progress_update(pn_bench_progress_t *p, uint64_t done);
void pn_bench_progress_end(pn_bench_progress_t *p);

#endif
