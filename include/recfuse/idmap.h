/* idmap.h - string id <-> dense int32 id map.
 *
 * Dense ids are assigned in insertion order: 0, 1, 2, ... Strings are
 * copied into an arena owned by the map. Lookups are O(1) average (open
 * addressing, FNV-1a hash). Not thread-safe for writes; concurrent reads
 * of an unchanging map are safe. */
#ifndef RECFUSE_IDMAP_H
#define RECFUSE_IDMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct rf_idmap rf_idmap;

int rf_idmap_new(rf_idmap **out);
void rf_idmap_free(rf_idmap *m);

/* Dense id of `s` (length `len`, need not be NUL-terminated), -1 if absent. */
int32_t rf_idmap_find(const rf_idmap *m, const char *s, size_t len);
/* Find or add `s`; stores the dense id in *id. Returns 0 or RF_ENOMEM,
 * RF_ERANGE past INT32_MAX entries. *added (may be NULL) is 1 if new. */
int rf_idmap_put(rf_idmap *m, const char *s, size_t len, int32_t *id, int *added);
/* NUL-terminated string of dense id `id` (0 <= id < size); borrowed,
 * valid until the map is freed (the arena never moves strings). */
const char *rf_idmap_str(const rf_idmap *m, int32_t id);
/* Length of that string. */
size_t rf_idmap_len(const rf_idmap *m, int32_t id);
int32_t rf_idmap_size(const rf_idmap *m);
/* Deep copy. */
int rf_idmap_clone(const rf_idmap *m, rf_idmap **out);

#endif
