/* gen_internal.h - tables shared by the synthetic shop generator's files
 * (gen.c: the generative model and writer; gen_names.c: the taxonomy,
 * brand syllables, demographics vocabulary). Not a public API. */
#ifndef RF_GEN_INTERNAL_H
#define RF_GEN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#define RF_GEN_MAX_NOUNS 4
#define RF_GEN_MAX_SUBS 4
#define RF_GEN_NADJ 8
#define RF_GEN_NVAR 6

typedef struct rf_gen_subdef {
    const char *name;
    double price;       /* median price in the shop's currency */
    int replenish_days; /* > 0: consumable, re-bought about every N days */
    const char *nouns[RF_GEN_MAX_NOUNS]; /* NULL-terminated when fewer */
} rf_gen_subdef;

typedef struct rf_gen_catdef {
    const char *name;
    double gender_bias; /* > 0 leans male, < 0 leans female (prior on affinity) */
    double age_bias;    /* > 0 leans older, < 0 younger */
    const char *adjectives[RF_GEN_NADJ];
    const char *variants[RF_GEN_NVAR]; /* ", Black", ", 1 kg" ... */
    rf_gen_subdef subs[RF_GEN_MAX_SUBS];
} rf_gen_catdef;

/* The built-in taxonomy: categories beyond it are synthesised
 * ("Department 17/Line A"). */
extern const rf_gen_catdef rf_gen_taxonomy[];
extern const int rf_gen_taxonomy_n;

/* Generic vocabulary for synthesised categories. */
extern const rf_gen_catdef rf_gen_generic_cat;

/* Brand name number k (0-based) of a shop seeded with `seed`; readable,
 * distinct for k < 512, then suffixed with a number. */
void rf_gen_brand_name(uint64_t seed, int64_t k, char *buf, size_t size);

/* Demographics vocabulary. */
#define RF_GEN_NCOUNTRIES 14
extern const char *const rf_gen_countries[RF_GEN_NCOUNTRIES];
extern const double rf_gen_country_weights[RF_GEN_NCOUNTRIES];

enum { RF_GEN_SEG_BARGAIN, RF_GEN_SEG_MAINSTREAM, RF_GEN_SEG_PREMIUM, RF_GEN_SEG_LOYAL, RF_GEN_NSEG };
extern const char *const rf_gen_segments[RF_GEN_NSEG];
extern const double rf_gen_segment_weights[RF_GEN_NSEG];

#endif
