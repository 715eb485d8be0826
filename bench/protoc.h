/* protoc.h - an in-memory workload of REFERENCE.md's Protocol C shape for
 * the speed benchmarks: U users, I items, about N distinct interactions
 * (value 1); item popularity ~ (rank + 50)^-1; user activity lognormal
 * with median 87 clipped to [5, 5400] and scaled to N; each user's items
 * drawn from a 16-cluster latent taste model (cluster by Dirichlet taste,
 * item within cluster by popularity), so neighbours and factors have
 * structure to find. Deterministic for a seed. */
#ifndef RF_BENCH_PROTOC_H
#define RF_BENCH_PROTOC_H

#include <stdint.h>

#include "recfuse/dataset.h"
#include "recfuse/events.h"

/* Event log (type purchase, value 1, one event per distinct pair, times
 * spread over a year in per-user order). */
int rf_bench_protoc_events(int32_t users, int32_t items, int64_t n, uint64_t seed, rf_events **out);
/* Same, built into a binary dataset; *ev receives the log (owner of the
 * id maps the dataset borrows). */
int rf_bench_protoc_dataset(int32_t users, int32_t items, int64_t n, uint64_t seed,
                            rf_events **ev, rf_dataset **out);
/* Defaults from the environment: PROTOC_USERS, PROTOC_ITEMS, PROTOC_N
 * (138000, 27000, 20000000). */
void rf_bench_protoc_size(int32_t *users, int32_t *items, int64_t *n);
/* The dataset of the environment's size (rf_bench_protoc_size), seed 1:
 * 0, or 1 after printing "TAG: workload: reason" on stderr. *seconds
 * receives the generation time. */
int rf_bench_protoc_workload(const char *tag, rf_events **ev, rf_dataset **out, double *seconds);
/* The two "workload" / "peak RSS (gen)" lines the speed benchmarks print. */
void rf_bench_protoc_print(const rf_dataset *d, double seconds);

#endif
