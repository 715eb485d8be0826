/* fusion.h - the fused model ("fusion", src/models/fusion.c) beyond the
 * model interface.
 *
 * A fused model holds channel models (itemknn, userknn, ials, ease, bpr,
 * pop, trending, rules, content - whichever its parameters enable), a
 * learned ranker over their candidates (or a simple blend), and the side
 * tables its features need; docs/fusion.md describes training (stacking
 * on a slice held out after the channels' data), the features, the blends
 * and the explanations. These calls read a fitted or loaded fused model;
 * thread-safe like every model read. */
#ifndef RECFUSE_FUSION_H
#define RECFUSE_FUSION_H

#include <stdint.h>
#include <stdio.h>

#include "model.h"

/* The fused model's channel NAME ("itemknn", "rules", ...), borrowed from
 * the fused model (valid while it lives); NULL if m is not a fitted fused
 * model or has no such channel. The server uses the itemknn channel for
 * similar items and the rules channel for bought-together. */
const rf_model *rf_fusion_channel(const rf_model *fusion, const char *name);

/* Number of channels, and the name of channel i (NULL out of range). */
int rf_fusion_n_channels(const rf_model *fusion);
const char *rf_fusion_channel_name(const rf_model *fusion, int i);

/* The channels a fused model's parameters enable (fitted or not), in
 * channel order: up to max names (static strings) into names; returns
 * the count (0 if m is not a fused model). */
int rf_fusion_param_channels(const rf_model *fusion, const char **names, int max);

/* A summary for humans: channels and candidates, ordering (ranker kind
 * and trees, or the blend with its weights), slice statistics of the last
 * fit, and the ranker's ten most important features. */
void rf_fusion_describe(const rf_model *fusion, FILE *out);

#endif
