/* ds_internal.h - helpers shared by build.c and split.c (not public).
 *
 * Both the dataset build and the splits work user by user: the events are
 * bucketed by user with a stable counting sort (an index array `order`
 * whose entries are event numbers, user 0's events first, each user's in
 * log order); the callers then read and sort each user's events by item
 * in parallel. The index array holds uint32 entries when the log has
 * fewer than 2^32 events (half the memory), int64 otherwise. */
#ifndef RF_DS_INTERNAL_H
#define RF_DS_INTERNAL_H

#include <stdint.h>

#include "recfuse/events.h"

struct rf_err;

typedef struct rf_ds_order {
    int wide;         /* 1: idx64, 0: idx32 */
    uint32_t *idx32;
    int64_t *idx64;
    int64_t *start;   /* n_users + 1: bucket of user u is [start[u], start[u+1]) */
    int64_t n;        /* entries in the index */
    int64_t max_len;  /* largest bucket */
} rf_ds_order;

static inline int64_t rf_ds_at(const rf_ds_order *o, int64_t p) {
    return o->wide ? o->idx64[p] : (int64_t)o->idx32[p];
}

/* Check every event's user/item/type is in range (type only if
 * check_type). RF_ERANGE with a message naming the first bad event. */
int rf_ds_check_events(const rf_events *ev, int32_t n_users, int32_t n_items, int check_type,
                       struct rf_err *err);

/* Bucket the events of `ev` by user. If `keep` is non-NULL only events
 * with keep[type] != 0 are indexed. Buckets longer than 2^32 - 1 give
 * RF_ETOOBIG. */
int rf_ds_order_build(const rf_events *ev, int32_t n_users, const uint8_t *keep,
                      rf_ds_order *o, struct rf_err *err);
void rf_ds_order_free(rf_ds_order *o);

/* Ascending in-place sort of n uint64 keys (introsort; keys need not be
 * unique, equal keys are indistinguishable so stability is moot). */
void rf_ds_sort_u64(uint64_t *a, int64_t n);

#endif
