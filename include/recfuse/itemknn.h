/* itemknn.h - item-item nearest neighbours beyond the model interface.
 *
 * The "itemknn" model (src/models/itemknn.c) keeps, for every item, its
 * top-k most similar items by one of the similarities of
 * docs/models-knn.md (cosine, jaccard, asymmetric cosine, bm25, tf-idf,
 * rp3b; with shrinkage, locality exponent and normalisation) of their user
 * columns. These calls read that neighbour table of a fitted or loaded
 * itemknn model; they are thread-safe like every model read. The
 * similarities are the table's: after the model's q and norm. */
#ifndef RECFUSE_ITEMKNN_H
#define RECFUSE_ITEMKNN_H

#include <stdint.h>

#include "csr.h"
#include "model.h"
#include "topk.h"

struct rf_err;

/* The k items most similar to `item` (model item id), best first, ties by
 * the smaller id; out has k entries. At most the model's own k neighbours
 * exist per item. Returns the count written (>= 0), RF_EINVAL if m is not
 * a fitted itemknn model, RF_ERANGE if item is out of range. */
int rf_itemknn_similar(const rf_model *m, int32_t item, int k, rf_scored *out,
                       struct rf_err *err);

/* The neighbour table: row i holds i's neighbours (ascending item ids)
 * with their similarities. Borrowed from the model; NULL if m is not a
 * fitted itemknn model. */
const rf_csr *rf_itemknn_neighbours(const rf_model *m);

#endif
