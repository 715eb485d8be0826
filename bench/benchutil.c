/* benchutil.c - memory and CPU-time probes for the benchmarks. */
#include "benchutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "recfuse/util.h"

int64_t rf_bench_rss_now(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long long pages = 0, res = 0;
    if (!f) return 0;
    if (fscanf(f, "%lld %lld", &pages, &res) != 2) res = 0;
    fclose(f);
    return (int64_t)res * 4096;
}

int64_t rf_bench_hwm_now(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long long kb = -1;
    if (!f) return rf_peak_rss();
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %lld", &kb) == 1) break;
    fclose(f);
    return kb >= 0 ? (int64_t)kb * 1024 : rf_peak_rss();
}

void rf_bench_reset_hwm(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return;
    fputs("5", f);
    fclose(f);
}

double rf_bench_cpu_now(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void rf_bench_sort(double *v, int n) { qsort(v, (size_t)n, sizeof *v, cmp_double); }
