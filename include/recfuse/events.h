/* events.h - the in-memory event log: one row per behaviour event.
 *
 * Loaded from the store (rf_store_load_events), cut by the splits in
 * dataset.h, turned into matrices by rf_dataset_build. Users and items
 * carry dense ids into `users` / `items` (string id <-> dense id). */
#ifndef RECFUSE_EVENTS_H
#define RECFUSE_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "idmap.h"

typedef enum rf_event_type {
    RF_EV_VIEW = 0,
    RF_EV_CLICK = 1,
    RF_EV_CART = 2,
    RF_EV_PURCHASE = 3,
    RF_EV_RATING = 4,
    RF_EV_CUSTOM = 5,
    RF_EV_NTYPES = 6
} rf_event_type;

/* "view", "click", "cart", "purchase", "rating", "custom". */
const char *rf_event_type_name(int type);
/* Parse a type name (case-insensitive; "add_to_cart"/"addtocart" mean cart,
 * "buy"/"order"/"transaction" mean purchase); -1 if unknown. */
int rf_event_type_parse(const char *s, size_t len);

typedef struct rf_events {
    int64_t n, cap;
    int32_t *user;  /* dense user id */
    int32_t *item;  /* dense item id */
    uint8_t *type;  /* rf_event_type */
    float *value;   /* rating or quantity; 1 when the source gives none */
    int64_t *ts;    /* Unix seconds */
    rf_idmap *users, *items;
    int owns_ids;   /* 1: users/items are freed with this log */
} rf_events;

/* New empty log. If users/items are NULL, new maps are created and owned;
 * otherwise they are borrowed (must outlive the log). */
int rf_events_new(rf_idmap *users, rf_idmap *items, rf_events **out);
void rf_events_free(rf_events *e);
int rf_events_reserve(rf_events *e, int64_t cap);
int rf_events_push(rf_events *e, int32_t user, int32_t item, int type, float value, int64_t ts);
/* Push with string ids (added to the maps when new). */
int rf_events_push_str(rf_events *e, const char *user, const char *item, int type, float value,
                       int64_t ts);
/* Bytes held by the arrays (not the maps). */
int64_t rf_events_bytes(const rf_events *e);
/* Distinct users with at least one event (ids outside the user map are
 * not counted); -1 when out of memory. */
int32_t rf_events_count_users(const rf_events *e);

#endif
