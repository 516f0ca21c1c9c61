#define _XOPEN_SOURCE 700
#include "bench_util.h"
#include "clock.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double pn_bench_percentile(double *values, size_t n, double p) {
    if (n == 0)
        return 0;
    qsort(values, n, sizeof *values, cmp_double);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return values[i < n ? i : n - 1];
}

double pn_bench_peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* Linux reports KiB */
}

char *pn_bench_tmpdir(const char *dir, const char *tag) {
    const char *base = dir ? dir : getenv("TMPDIR");
    char templ[4096];
    snprintf(templ, sizeof templ, "%s/panther-%s-XXXXXX",
             base && *base ? base : "/tmp", tag);
    if (!mkdtemp(templ)) {
        fprintf(stderr, "bench: cannot create %s: %s\n", templ, strerror(errno));
        return NULL;
    }
    return strdup(templ);
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void pn_bench_rmdir(const char *path) {
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

bool pn_bench_parse_u64(const char *s, uint64_t *out) {
    if (!s || !*s || *s == '-')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

void pn_bench_progress_start(pn_bench_progress_t *p, const char *what,
                             uint64_t total, bool enabled) {
    p->what = what;
    p->total = total;
    p->started = p->last = pn_mono_s();
    p->enabled = enabled;
}

void pn_bench_progress_update(pn_bench_progress_t *p, uint64_t done) {
    double now = pn_mono_s();
    if (!p->enabled || now - p->last < 1.0)
        return;
    p->last = now;
    double rate = (double)done / (now - p->started);
    fprintf(stderr, "%s: %llu/%llu (%.0f%%), %.0f/s\n", p->what,
            (unsigned long long)done, (unsigned long long)p->total,
            100.0 * (double)done / (double)(p->total ? p->total : 1), rate);
}

void pn_bench_progress_end(pn_bench_progress_t *p) {
    if (p->enabled)
        fprintf(stderr, "%s: done in %.1f s\n", p->what,
                pn_mono_s() - p->started);
}
