/* events.c - the in-memory event log (struct of arrays) and event types. */
#include "recfuse/events.h"

#include <string.h>
#include <strings.h>

#include "recfuse/error.h"
#include "recfuse/mem.h"

static const char *const type_names[RF_EV_NTYPES] = {"view",     "click",  "cart",
                                                      "purchase", "rating", "custom"};

const char *rf_event_type_name(int type) {
    return type >= 0 && type < RF_EV_NTYPES ? type_names[type] : "unknown";
}

int rf_event_type_parse(const char *s, size_t len) {
    static const struct {
        const char *name;
        int type;
    } names[] = {{"view", RF_EV_VIEW},          {"click", RF_EV_CLICK},
                 {"cart", RF_EV_CART},          {"add_to_cart", RF_EV_CART},
                 {"addtocart", RF_EV_CART},     {"add-to-cart", RF_EV_CART},
                 {"purchase", RF_EV_PURCHASE},  {"buy", RF_EV_PURCHASE},
                 {"order", RF_EV_PURCHASE},     {"transaction", RF_EV_PURCHASE},
                 {"rating", RF_EV_RATING},      {"rate", RF_EV_RATING},
                 {"custom", RF_EV_CUSTOM}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == len && strncasecmp(names[i].name, s, len) == 0)
            return names[i].type;
    return -1;
}

int rf_events_new(rf_idmap *users, rf_idmap *items, rf_events **out) {
    rf_events *e = rf_calloc(1, sizeof *e);
    if (!e) return RF_ENOMEM;
    if (users && items) {
        e->users = users;
        e->items = items;
        e->owns_ids = 0;
    } else {
        e->owns_ids = 1;
        if (rf_idmap_new(&e->users) != 0 || rf_idmap_new(&e->items) != 0) {
            rf_events_free(e);
            return RF_ENOMEM;
        }
    }
    *out = e;
    return 0;
}

void rf_events_free(rf_events *e) {
    if (!e) return;
    rf_free(e->user);
    rf_free(e->item);
    rf_free(e->type);
    rf_free(e->value);
    rf_free(e->ts);
    if (e->owns_ids) {
        rf_idmap_free(e->users);
        rf_idmap_free(e->items);
    }
    rf_free(e);
}

int rf_events_reserve(rf_events *e, int64_t cap) {
    if (cap <= e->cap) return 0;
    void *p;
    if (!(p = rf_realloc_array(e->user, (size_t)cap, sizeof *e->user))) return RF_ENOMEM;
    e->user = p;
    if (!(p = rf_realloc_array(e->item, (size_t)cap, sizeof *e->item))) return RF_ENOMEM;
    e->item = p;
    if (!(p = rf_realloc_array(e->type, (size_t)cap, sizeof *e->type))) return RF_ENOMEM;
    e->type = p;
    if (!(p = rf_realloc_array(e->value, (size_t)cap, sizeof *e->value))) return RF_ENOMEM;
    e->value = p;
    if (!(p = rf_realloc_array(e->ts, (size_t)cap, sizeof *e->ts))) return RF_ENOMEM;
    e->ts = p;
    e->cap = cap;
    return 0;
}

int rf_events_push(rf_events *e, int32_t user, int32_t item, int type, float value, int64_t ts) {
    if (e->n == e->cap) {
        int rc = rf_events_reserve(e, e->cap ? e->cap * 2 : 1024);
        if (rc) return rc;
    }
    int64_t i = e->n++;
    e->user[i] = user;
    e->item[i] = item;
    e->type[i] = (uint8_t)type;
    e->value[i] = value;
    e->ts[i] = ts;
    return 0;
}

int rf_events_push_str(rf_events *e, const char *user, const char *item, int type, float value,
                       int64_t ts) {
    int32_t u, i;
    int rc = rf_idmap_put(e->users, user, strlen(user), &u, NULL);
    if (rc) return rc;
    rc = rf_idmap_put(e->items, item, strlen(item), &i, NULL);
    if (rc) return rc;
    return rf_events_push(e, u, i, type, value, ts);
}

int64_t rf_events_bytes(const rf_events *e) {
    return e ? e->cap * (int64_t)(4 + 4 + 1 + 4 + 8) : 0;
}

int32_t rf_events_count_users(const rf_events *e) {
    int32_t n = rf_idmap_size(e->users), c = 0;
    uint8_t *seen = rf_calloc((size_t)(n ? n : 1), 1);
    if (!seen) return -1;
    for (int64_t i = 0; i < e->n; i++)
        if (e->user[i] >= 0 && e->user[i] < n && !seen[e->user[i]]) {
            seen[e->user[i]] = 1;
            c++;
        }
    rf_free(seen);
    return c;
}
