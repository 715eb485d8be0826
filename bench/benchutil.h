/* benchutil.h - measuring helpers shared by the benchmarks: memory, CPU
 * time, and sorting samples for medians. Linux /proc based; each falls
 * back to getrusage figures where /proc is unavailable. */
#ifndef RF_BENCH_UTIL_H
#define RF_BENCH_UTIL_H

#include <stdint.h>

/* Current resident set size in bytes (/proc/self/statm). */
int64_t rf_bench_rss_now(void);
/* Peak RSS (VmHWM) since the start or the last rf_bench_reset_hwm(). */
int64_t rf_bench_hwm_now(void);
/* Reset the kernel's peak-RSS mark (Linux >= 4.0; ignored elsewhere). */
void rf_bench_reset_hwm(void);
/* CPU seconds (user + system, all threads) of the process so far: unlike
 * wall time it does not count waiting for a CPU on a busy machine. */
double rf_bench_cpu_now(void);
/* Sort n doubles ascending (for medians and spreads). */
void rf_bench_sort(double *v, int n);
static inline double rf_bench_mib(int64_t b) { return (double)b / (1024.0 * 1024.0); }

#endif
