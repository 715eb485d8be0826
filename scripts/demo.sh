#!/usr/bin/env bash
# The quick-start demo: generate a shop, import it, train, evaluate, and
# show recommendations for a few customers. Usage: demo.sh [path/to/recfuse]
set -euo pipefail
BIN=${1:-build/recfuse}
WORK=${RECFUSE_DEMO_DIR:-$(dirname "$BIN")/demo}
rm -rf "$WORK"
mkdir -p "$WORK"
echo "== 1. generate a demo shop into $WORK/shop"
"$BIN" gen --out "$WORK/shop" --preset demo --seed 7
echo "== 2. import it into the data directory $WORK/data"
"$BIN" import --data "$WORK/data" --items "$WORK/shop/items.tsv" --users "$WORK/shop/users.tsv" \
  --interactions "$WORK/shop/interactions.tsv"
"$BIN" info --data "$WORK/data"
echo "== 3. train the models"
"$BIN" train --data "$WORK/data"
echo "== 4. evaluate offline (per-user chronological 80/20 split, full ranking)"
"$BIN" evaluate --data "$WORK/data" --models pop,trending,itemknn --k 10,20
echo "== 5. recommendations for a few customers (and one unknown)"
{ cut -f1 "$WORK/shop/users.tsv" | sed -n '2,4p'; echo "new-visitor"; } > "$WORK/sample-users.txt"
"$BIN" recommend --data "$WORK/data" --users "$WORK/sample-users.txt" --k 5
echo "== demo done: data in $WORK/data"
