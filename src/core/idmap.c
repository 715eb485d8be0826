/* idmap.c - string id <-> dense id map: open addressing over an arena.
 *
 * DESIGN: slots[] holds dense id + 1 (0 = empty) with linear probing;
 * per-id arrays keep the string pointer, length and hash (so growing the
 * table never rehashes strings). Strings live in 64 KiB+ arena blocks that
 * are never moved, so rf_idmap_str pointers stay valid. */
#include "recfuse/idmap.h"

#include <string.h>

#include "recfuse/error.h"
#include "recfuse/mem.h"

typedef struct block {
    struct block *next;
    size_t used, cap;
    char data[];
} block;

struct rf_idmap {
    int32_t n, cap;     /* entries, capacity of per-id arrays */
    uint32_t mask;      /* slots - 1 */
    int32_t *slots;
    const char **str;
    uint32_t *len;
    uint32_t *hash;
    block *arena;
};

static uint32_t fnv1a(const char *s, size_t len) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

int rf_idmap_new(rf_idmap **out) {
    rf_idmap *m = rf_calloc(1, sizeof *m);
    if (!m) return RF_ENOMEM;
    m->mask = 1023;
    m->slots = rf_calloc(1024, sizeof *m->slots);
    if (!m->slots) {
        rf_free(m);
        return RF_ENOMEM;
    }
    *out = m;
    return 0;
}

void rf_idmap_free(rf_idmap *m) {
    if (!m) return;
    block *b = m->arena;
    while (b) {
        block *nx = b->next;
        rf_free(b);
        b = nx;
    }
    rf_free(m->slots);
    rf_free(m->str);
    rf_free(m->len);
    rf_free(m->hash);
    rf_free(m);
}

int32_t rf_idmap_find(const rf_idmap *m, const char *s, size_t len) {
    uint32_t h = fnv1a(s, len);
    for (uint32_t i = h & m->mask;; i = (i + 1) & m->mask) {
        int32_t v = m->slots[i];
        if (v == 0) return -1;
        int32_t id = v - 1;
        if (m->hash[id] == h && m->len[id] == len && memcmp(m->str[id], s, len) == 0) return id;
    }
}

static int grow_slots(rf_idmap *m) {
    uint32_t ns = (m->mask + 1) * 2;
    int32_t *slots = rf_calloc(ns, sizeof *slots);
    if (!slots) return RF_ENOMEM;
    for (int32_t id = 0; id < m->n; id++) {
        uint32_t i = m->hash[id] & (ns - 1);
        while (slots[i]) i = (i + 1) & (ns - 1);
        slots[i] = id + 1;
    }
    rf_free(m->slots);
    m->slots = slots;
    m->mask = ns - 1;
    return 0;
}

static int grow_entries(rf_idmap *m) {
    int64_t nc = m->cap ? (int64_t)m->cap * 2 : 1024;
    if (nc > INT32_MAX) nc = INT32_MAX;
    const char **str = rf_realloc_array(m->str, (size_t)nc, sizeof *str);
    if (!str) return RF_ENOMEM;
    m->str = str;
    uint32_t *len = rf_realloc_array(m->len, (size_t)nc, sizeof *len);
    if (!len) return RF_ENOMEM;
    m->len = len;
    uint32_t *hash = rf_realloc_array(m->hash, (size_t)nc, sizeof *hash);
    if (!hash) return RF_ENOMEM;
    m->hash = hash;
    m->cap = (int32_t)nc;
    return 0;
}

static char *arena_copy(rf_idmap *m, const char *s, size_t len) {
    block *b = m->arena;
    if (!b || b->cap - b->used < len + 1) {
        size_t cap = len + 1 > 65536 ? len + 1 : 65536;
        block *nb = rf_malloc(sizeof *nb + cap);
        if (!nb) return NULL;
        nb->next = b;
        nb->used = 0;
        nb->cap = cap;
        m->arena = b = nb;
    }
    char *d = b->data + b->used;
    memcpy(d, s, len);
    d[len] = 0;
    b->used += len + 1;
    return d;
}

int rf_idmap_put(rf_idmap *m, const char *s, size_t len, int32_t *id, int *added) {
    if (added) *added = 0;
    int32_t f = rf_idmap_find(m, s, len);
    if (f >= 0) {
        *id = f;
        return 0;
    }
    if (m->n == INT32_MAX - 1 || len > UINT32_MAX) return RF_ERANGE;
    if ((uint32_t)(m->n + 1) * 2 > m->mask + 1 && grow_slots(m) != 0) return RF_ENOMEM;
    if (m->n == m->cap && grow_entries(m) != 0) return RF_ENOMEM;
    char *copy = arena_copy(m, s, len);
    if (!copy) return RF_ENOMEM;
    uint32_t h = fnv1a(s, len);
    int32_t nid = m->n++;
    m->str[nid] = copy;
    m->len[nid] = (uint32_t)len;
    m->hash[nid] = h;
    uint32_t i = h & m->mask;
    while (m->slots[i]) i = (i + 1) & m->mask;
    m->slots[i] = nid + 1;
    *id = nid;
    if (added) *added = 1;
    return 0;
}

const char *rf_idmap_str(const rf_idmap *m, int32_t id) { return m->str[id]; }
size_t rf_idmap_len(const rf_idmap *m, int32_t id) { return m->len[id]; }
int32_t rf_idmap_size(const rf_idmap *m) { return m->n; }

int rf_idmap_clone(const rf_idmap *m, rf_idmap **out) {
    rf_idmap *c;
    int rc = rf_idmap_new(&c);
    if (rc) return rc;
    for (int32_t i = 0; i < m->n; i++) {
        int32_t id;
        rc = rf_idmap_put(c, m->str[i], m->len[i], &id, NULL);
        if (rc) {
            rf_idmap_free(c);
            return rc;
        }
    }
    *out = c;
    return 0;
}
