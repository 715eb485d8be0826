#!/usr/bin/env bash
# bench_rmse.sh - Protocol B of REFERENCE.md: rating prediction on
# MovieLens 100K, RMSE and MAE over the folds u1..u5 as ml-100k's mku.sh
# builds them (fold i test = lines (i-1)*20000+1 .. i*20000 of u.data,
# base = the other 80,000 lines).
#
# For each fold: import the base into a fresh data directory (ratings),
# train each model with its defaults (plus PARAMS_<model> when set), run
# `recfuse predict` on the test pairs and score the predictions with awk.
# Prints per-fold and mean (with the standard deviation over folds)
# figures. Decides nothing. Skips with a message when u.data is absent
# (MovieLens is not redistributed with recfuse).
#
# Usage: bench/bench_rmse.sh [BUILD_DIR]   (default build)
# Environment: ML100K (default ../shared/data/ml-100k from the source
#   tree), MODELS (default "mf svdpp"), FOLDS (default "1 2 3 4 5"),
#   PARAMS_mf / PARAMS_svdpp (k=v,... overrides), BENCH_DIR (work dir,
#   default a temporary directory, removed afterwards).
# Reference: LIBMF MF k=256 0.9086 RMSE / 0.7165 MAE; damped bias
# baseline 0.9539; global mean 1.1256; Surprise SVD++ 0.919 (5-fold CV).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
BIN=$BUILD/recfuse
ML=${ML100K:-$ROOT/../shared/data/ml-100k}
MODELS=${MODELS:-mf svdpp}
FOLDS=${FOLDS:-1 2 3 4 5}
if [ ! -f "$ML/u.data" ]; then
  echo "bench_rmse: skipped: $ML/u.data not found (MovieLens is not redistributed with recfuse)"
  exit 0
fi
if [ ! -x "$BIN" ]; then
  echo "bench_rmse: $BIN not found (build first: make)" >&2
  exit 1
fi
if [ -n "${BENCH_DIR:-}" ]; then
  W=$BENCH_DIR/rmse
  rm -rf "$W"
  mkdir -p "$W"
else
  W=$(mktemp -d)
  trap 'rm -rf "$W"' EXIT
fi
echo "# Protocol B: ML-100K u1..u5, $(nproc) cores, threads ${RECFUSE_THREADS:-all}, $(date -u +%FT%TZ)"
echo "# u.data md5 $(md5sum < "$ML/u.data" | cut -d' ' -f1)"
for m in $MODELS; do : > "$W/$m.folds"; done
for i in $FOLDS; do
  lo=$(( (i - 1) * 20000 + 1 )); hi=$(( i * 20000 ))
  awk -v lo=$lo -v hi=$hi 'NR >= lo && NR <= hi' "$ML/u.data" > "$W/u$i.test"
  awk -v lo=$lo -v hi=$hi 'NR < lo || NR > hi' "$ML/u.data" > "$W/u$i.base"
  cut -f1,2 "$W/u$i.test" > "$W/u$i.pairs"
  D=$W/d$i
  # u.data rows are `user item rating timestamp`: the batch contract's
  # `user item value timestamp`, imported as rating events
  "$BIN" import --quiet --data "$D" --interactions "$W/u$i.base" > "$W/import$i.log" 2>&1 \
    || { cat "$W/import$i.log"; exit 1; }
  for m in $MODELS; do
    pv=PARAMS_$m
    params=${!pv:-}
    t0=$(date +%s.%N)
    if [ -n "$params" ]; then
      "$BIN" train --quiet --data "$D" --model "$m" --params "$params" > "$W/train$i.$m" 2>&1
    else
      "$BIN" train --quiet --data "$D" --model "$m" > "$W/train$i.$m" 2>&1
    fi || { cat "$W/train$i.$m"; exit 1; }
    t1=$(date +%s.%N)
    "$BIN" predict --data "$D" --pairs "$W/u$i.pairs" --model "$m" > "$W/pred$i.$m" 2> "$W/pred$i.$m.err" \
      || { cat "$W/pred$i.$m.err"; exit 1; }
    fit=$(sed -n 's/.* fit \([0-9.]*\) s.*/\1/p' "$W/train$i.$m")
    paste "$W/u$i.test" "$W/pred$i.$m" | awk -F'\t' -v m="$m" -v i="$i" -v fit="$fit" \
      -v wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')" '
      $1 != $5 || $2 != $6 { bad = 1 }
      { e = $3 - $7; se += e * e; ae += (e < 0 ? -e : e); n++ }
      END { if (bad || n != 20000) { print "bench_rmse: prediction rows do not match the test rows" > "/dev/stderr"; exit 1 }
            printf "u%d %-6s RMSE %.4f  MAE %.4f  fit %6.1f s (train command %.1f s)\n", i, m, sqrt(se / n), ae / n, fit, wall }' \
      | tee -a "$W/$m.folds" || exit 1
  done
done
echo "# mean over folds (sd over folds)"
for m in $MODELS; do
  awk -v m="$m" '{ r[NR] = $4; a[NR] = $6; f += $8 }
    END { n = NR; for (k = 1; k <= n; k++) { sr += r[k]; sa += a[k] }
          mr = sr / n; ma = sa / n
          for (k = 1; k <= n; k++) vr += (r[k] - mr) ^ 2
          sd = n > 1 ? sqrt(vr / (n - 1)) : 0
          printf "%-6s RMSE %.4f +- %.4f  MAE %.4f  (%d folds, mean fit %.1f s)\n", m, mr, sd, ma, n, f / n }' \
    "$W/$m.folds"
done
