#!/usr/bin/env bash
# `make bench`: the benchmarks the issues ask for. Prints figures; decides
# nothing. Long: generates a 20M-event shop (about 1 GB of TSV) under
# $BENCH_DIR (default build/bench). Select parts with BENCH=import,build,ml100k
# (the default), the speed parts ials,itemknn,bpr,rules,eval,rmse and server
# (recfuse serve under wrk and against nginx; BENCH=all for all).
# MovieLens parts skip with a message when ../shared/data is absent.
set -uo pipefail
BUILD=${1:-build}
BIN=$BUILD/recfuse
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${BENCH_DIR:-$BUILD/bench}
PARTS=${BENCH:-ml100k,import,build}
ML=${ML100K:-$ROOT/../shared/data/ml-100k}
mkdir -p "$DIR"
want() { [[ "$PARTS" == all || ",$PARTS," == *",$1,"* ]]; }
echo "# recfuse benchmarks $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) on $(nproc) cores, $(date -u +%FT%TZ)"

if want ml100k; then
  echo "## ML-100K, Protocol A (per-user chronological 80/20, full ranking)"
  if [ -f "$ML/u.data" ]; then
    rm -rf "$DIR/ml100k"
    "$BIN" import --quiet --data "$DIR/ml100k" --movielens "$ML"
    "$BIN" evaluate --quiet --data "$DIR/ml100k" --models pop,trending,itemknn --k 10,20 \
      --json "$DIR/ml100k-eval.json"
  else
    echo "skipped: $ML/u.data not found (MovieLens is not redistributed with recfuse)"
  fi
fi

if want import || want build; then
  SHOP=$DIR/shop20m
  if [ ! -f "$SHOP/interactions.tsv" ]; then
    echo "## generating the 20M-event shop (Protocol C shape)"
    /usr/bin/time -f "gen: %e s, peak %M KiB" "$BIN" gen --quiet --out "$SHOP" --preset ml20m --seed 1
  fi
fi

if want import; then
  echo "## import of 20M events vs sqlite3 .import"
  bash "$ROOT/bench/import_bench.sh" "$BIN" "$SHOP/interactions.tsv" --workdir "$DIR/import"
fi

if want build; then
  echo "## dataset build from the store (20M events)"
  [ -f "$DIR/store20m/recfuse.db" ] || "$BIN" import --quiet --data "$DIR/store20m" --interactions "$SHOP/interactions.tsv"
  "$BUILD/bench_store_build" "$DIR/store20m"
  echo "## dataset build from an in-memory log (20M events, 5 runs)"
  "$BUILD/bench_dataset" 20000000 5
fi

if want ials; then
  echo "## iALS, Protocol C (64 factors, 15 iterations, 2 threads) and fold-in"
  "$BUILD/bench_ials" 2 15 64
fi
if want itemknn; then
  echo "## item-kNN cosine k=100, Protocol C"
  "$BUILD/bench_itemknn" 2 1 itemknn:sim=cosine,k=100,shrink=0,q=1
fi
if want bpr && [ -x "$BUILD/bench_bpr" ]; then
  echo "## BPR, Protocol C (64 factors, 15 epochs, 2 threads)"
  "$BUILD/bench_bpr" 2 3 factors=64,epochs=15
fi
if want rules; then
  echo "## association rules on 1M baskets"
  "$BUILD/bench_rules" 1000000 3 2
fi
if want eval; then
  echo "## full-ranking evaluation of a 64-factor model over 138k users x 27k items"
  "$BUILD/bench_eval" 3
fi
if want rmse; then
  echo "## Protocol B: RMSE of mf and svdpp over u1..u5"
  bash "$ROOT/bench/bench_rmse.sh" "$BUILD"
fi
if want server; then
  echo "## recfuse serve under wrk (100k-item catalog)"
  bash "$ROOT/bench/bench_server.sh" "$BUILD" "$DIR/server" 20
fi
