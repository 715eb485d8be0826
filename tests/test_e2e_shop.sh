#!/usr/bin/env bash
# test_e2e_shop.sh - the whole batch pipeline on a generated shop: gen,
# import, train, recommend, evaluate, with assertions on the outputs.
# Usage: test_e2e_shop.sh path/to/recfuse [source dir]
set -uo pipefail
BIN=$1
. "$(dirname "$0")/testlib.sh"
rf_tmpdir e2e-shop
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }

"$BIN" gen --quiet --out "$T/shop" --preset demo --seed 11 >"$T/gen.out" 2>&1
check "gen exits 0 and writes three files" \
  "[ -s '$T/shop/interactions.tsv' ] && [ -s '$T/shop/items.tsv' ] && [ -s '$T/shop/users.tsv' ]"
"$BIN" gen --quiet --out "$T/shop2" --preset demo --seed 11 >/dev/null 2>&1
check "gen is deterministic for a seed" "cmp -s '$T/shop/interactions.tsv' '$T/shop2/interactions.tsv'"

n_events=$(($(wc -l <"$T/shop/interactions.tsv") - 1))
n_items=$(($(wc -l <"$T/shop/items.tsv") - 1))
n_users=$(($(wc -l <"$T/shop/users.tsv") - 1))
"$BIN" import --quiet --data "$T/d" --items "$T/shop/items.tsv" --users "$T/shop/users.tsv" \
  --interactions "$T/shop/interactions.tsv" >"$T/import.out" 2>&1
check "import exits 0" "[ $? -eq 0 ]"
"$BIN" info --data "$T/d" >"$T/info.out" 2>&1
check "store holds every user, item and event" \
  "grep -Eq '^users +$n_users\$' '$T/info.out' && grep -Eq '^items +$n_items\$' '$T/info.out' && grep -Eq '^events +$n_events ' '$T/info.out'"
"$BIN" import --quiet --data "$T/d" --interactions "$T/shop/interactions.tsv" >"$T/import2.out" 2>&1
"$BIN" info --data "$T/d" >"$T/info2.out" 2>&1
check "re-import adds no duplicates" "grep -Eq '^events +$n_events ' '$T/info2.out'"

"$BIN" train --quiet --data "$T/d" >"$T/train.out" 2>&1
check "train writes pop, trending and itemknn models" \
  "[ -s '$T/d/models/pop.rfm' ] && [ -s '$T/d/models/trending.rfm' ] && [ -s '$T/d/models/itemknn.rfm' ]"

{ echo user; tail -n +2 "$T/shop/users.tsv" | cut -f1 | head -50; echo "ghost-1"; echo "ghost-2"; } >"$T/users.txt"
"$BIN" recommend --data "$T/d" --users "$T/users.txt" --k 10 >"$T/rec.out" 2>"$T/rec.err"
check "recommend exits 0" "[ $? -eq 0 ]"
check "one line per requested user, in order" \
  "[ \"\$(cut -f1 '$T/rec.out' | tr '\n' ' ')\" = \"\$(tail -n +2 '$T/users.txt' | tr '\n' ' ')\" ]"
check "10 items per user" "awk -F'\t' '{ if (split(\$2, a, \",\") != 10) exit 1 }' '$T/rec.out'"
check "unknown users counted, not errors" "grep -q '2 unknown' '$T/rec.err'"
# Never an item the user already interacted with.
awk -F'\t' 'NR==FNR { if (FNR > 1) seen[$1 SUBSEP $2] = 1; next }
            { n = split($2, a, ","); for (i = 1; i <= n; i++) if (($1 SUBSEP a[i]) in seen) { print "seen: " $1 " " a[i]; bad = 1 } }
            END { exit bad }' "$T/shop/interactions.tsv" "$T/rec.out" >"$T/seen.out"
check "no recommended item was already seen" "[ $? -eq 0 ]"
check "ghost users get the popularity list" \
  "[ \"\$(grep '^ghost-1' '$T/rec.out' | cut -f2)\" = \"\$(grep '^ghost-2' '$T/rec.out' | cut -f2)\" ]"
"$BIN" recommend --data "$T/d" --users "$T/users.txt" --k 10 --model pop >"$T/pop.out" 2>/dev/null
check "ghost list equals the pop model's list for a ghost" \
  "[ \"\$(grep '^ghost-1' '$T/rec.out' | cut -f2)\" = \"\$(grep '^ghost-1' '$T/pop.out' | cut -f2)\" ]"

"$BIN" evaluate --quiet --data "$T/d" --models pop,itemknn --k 10 --json "$T/eval.json" >"$T/eval.out" 2>&1
check "evaluate exits 0" "[ $? -eq 0 ]"
check "evaluate prints NDCG@10 and Recall@10 rows" "grep -q '^NDCG@10 ' '$T/eval.out' && grep -q '^R@10 ' '$T/eval.out'"
pop=$(awk '$1 == "NDCG@10" { print $2; exit }' "$T/eval.out")
knn=$(awk '$1 == "NDCG@10" { print $3; exit }' "$T/eval.out")
check "itemknn beats popularity on planted structure ($knn > $pop)" "awk 'BEGIN { exit !($knn > $pop * 1.2) }'"
check "JSON written" "[ -s '$T/eval.json' ] && grep -q itemknn '$T/eval.json'"

"$BIN" recommend --data "$T/d" --users "$T/users.txt" --k 10 --model nosuch >/dev/null 2>"$T/bad.err"
check "unknown model is a clear error" "[ $? -ne 0 ] && grep -qi 'nosuch' '$T/bad.err'"

rf_finish
