#!/usr/bin/env bash
# test_tune_report_cli.sh - end-to-end test of `recfuse tune` and `recfuse
# report`, and of the evaluation protocols and comparison of `recfuse
# evaluate` (k-fold, validation, sampled negatives, significance).
# Usage: test_tune_report_cli.sh path/to/recfuse [source dir]
set -uo pipefail
BIN=$1
. "$(dirname "$0")/testlib.sh"
rf_tmpdir tune-report-cli
export RECFUSE_THREADS=2
check() { # check DESCRIPTION COMMAND...
  local d=$1; shift
  if "$@"; then ok "$d"; else bad "$d"; fi
}

# ---- data: 240 users in 6 taste groups over 90 items (15 per group),
# ratings 1..5 with increasing times; items with categories and prices.
D=$T/shop
awk 'BEGIN { srand(7); OFS = "\t"; print "user", "item", "value", "timestamp"; ts = 1000;
  for (u = 0; u < 240; u++) { g = u % 6; n = 8 + int(rand() * 10);
    for (j = 0; j < n; j++) {
      if (rand() < 0.8) it = g * 15 + int(15 * rand() * rand()); else it = int(rand() * 90);
      print "u" u, "i" it, 1 + int(rand() * 5), ts++ } } }' > "$T/ratings.tsv"
awk 'BEGIN { OFS = "\t"; print "id", "title", "category", "brand", "price";
  for (i = 0; i < 90; i++) print "i" i, "Item " i, "cat" int(i / 15), "b" (i % 7), 5 + (i % 13) * 2.5 }' \
  > "$T/items.tsv"
"$BIN" import --quiet --data "$D" --interactions "$T/ratings.tsv" --items "$T/items.tsv" \
  > "$T/import.out" 2>&1 || { cat "$T/import.out"; bad "import"; }

# ---- tune ------------------------------------------------------------------
"$BIN" tune --data "$D" --model itemknn --trials 6 --seed 3 > "$T/tune.out" 2> "$T/tune.err" \
  || { cat "$T/tune.err"; bad "tune runs"; }
cat "$T/tune.out"
check "tune says it cuts validation from the train part" \
  grep -q '^# split user (.*validation of the train part.*): train [0-9]* rows, [0-9]* users; validation' "$T/tune.out"
check "leaderboard header" grep -Eq '^rank +trial +budget +NDCG@10 +fit_s +params$' "$T/tune.out"
check "the defaults and six trials ranked" \
  test "$(grep -Ec '^[0-9]+ +[0-9]+ +[0-9.]+ +[01]\.[0-9]{4} ' "$T/tune.out")" -eq 7
check "trial 0 is the defaults" grep -Eq '^[0-9]+ +0 +[0-9.]+ +[01]\.[0-9]{4} +[0-9.]+ +\(defaults\)$' "$T/tune.out"
check "best line" grep -Eq '^best itemknn: NDCG@10 = [01]\.[0-9]{4} with ' "$T/tune.out"
check "params file written" test -s "$D/params/itemknn.params"
check "params file holds the parameters" grep -Eq '^sim=[a-z0-9]+ k=[0-9]+ ' "$D/params/itemknn.params"
check "leaderboard JSON written" grep -q '"leaderboard"' "$D/eval/tune-itemknn.json"
check "JSON names the best trial" grep -q '"best": {' "$D/eval/tune-itemknn.json"
# deterministic for a seed (the comment line carries the time)
cp "$D/params/itemknn.params" "$T/first.params"
"$BIN" tune --quiet --data "$D" --model itemknn --trials 6 --seed 3 > "$T/tune2.out" 2>&1 \
  || bad "tune again"
check "same seed, same best parameters" \
  diff <(grep -v '^#' "$T/first.params") <(grep -v '^#' "$D/params/itemknn.params")
check "same seed, same leaderboard" \
  diff <(grep -E '^[0-9]+ ' "$T/tune.out" | awk '{print $1, $2, $3, $4, $6, $7, $8, $9}') \
       <(grep -E '^[0-9]+ ' "$T/tune2.out" | awk '{print $1, $2, $3, $4, $6, $7, $8, $9}')
# evaluate and train apply the tuned parameters
"$BIN" evaluate --data "$D" --models itemknn > /dev/null 2> "$T/eval-params.err" \
  || bad "evaluate with tuned params"
check "evaluate applies DIR/params/itemknn.params" grep -q 'params/itemknn.params' "$T/eval-params.err"
# a grid over an explicit space, no halving
"$BIN" tune --quiet --data "$D" --model itemknn --search grid --space 'k=5,40;shrink=0,10' \
  --rungs 1 > "$T/grid.out" 2>&1 || { cat "$T/grid.out"; bad "grid search runs"; }
check "grid: the defaults and 4 trials at full budget" \
  test "$(grep -Ec '^[0-9]+ +[0-9]+ +1 +[01]\.[0-9]{4} ' "$T/grid.out")" -eq 5
best=$(awk '/^best itemknn/ { sub(/.* with /, ""); print }' "$T/grid.out")
if [ "$best" = "(defaults)" ] || [ -z "$best" ]; then
  check "grid: the winner is stored" grep -Eq '^sim=[a-z0-9]+ k=[0-9]+ shrink=' "$D/params/itemknn.params"
else
  k=$(echo " $best" | sed -E 's/.* k=([0-9]+).*/\1/'); sh=$(echo "$best" | sed -E 's/.*shrink=([0-9]+).*/\1/')
  check "grid: the winner ($best) is stored" grep -Eq "^sim=[a-z0-9]+ k=$k shrink=$sh " "$D/params/itemknn.params"
fi
# rating model objective: RMSE (lower is better) if mf is registered
if "$BIN" tune --help | grep -q ' mf'; then
  "$BIN" tune --quiet --data "$D" --model mf --metric rmse --trials 3 --rungs 1 \
    --params epochs=5 > "$T/mf.out" 2>&1 || { cat "$T/mf.out"; bad "tune mf on rmse"; }
  check "mf tuned on RMSE" grep -Eq '^best mf: RMSE = [0-9]+\.[0-9]{4}' "$T/mf.out"
fi
# usage errors
"$BIN" tune --quiet --data "$D" --model itemknn --space 'nosuch=1,2' > /dev/null 2> "$T/e1.err"
check "unknown space parameter is a usage error" test $? -eq 2
check "... named" grep -q "nosuch" "$T/e1.err"
"$BIN" tune --quiet --data "$D" --model itemknn --metric 'what@10' > /dev/null 2>&1
check "unknown metric is a usage error" test $? -eq 2
"$BIN" tune --quiet --data "$D" --model nosuchmodel > /dev/null 2>&1
check "unknown model is a usage error" test $? -eq 2
"$BIN" tune --quiet --data "$D" --model itemknn --search sideways > /dev/null 2>&1
check "unknown search is a usage error" test $? -eq 2
"$BIN" tune --help > "$T/help.out" 2>&1
check "tune --help" grep -q 'usage: recfuse tune' "$T/help.out"

# ---- evaluate: comparison, protocols -------------------------------------------
"$BIN" evaluate --quiet --data "$D" --models pop,itemknn --k 10 > "$T/cmp.out" 2>&1 \
  || { cat "$T/cmp.out"; bad "evaluate two models"; }
check "the table has the beyond-accuracy rows" grep -Eq '^(ILD@10|Rev@10|Nov@10|ARP@10|Gini@10|AUC) ' "$T/cmp.out"
check "revenue row (prices in the catalog)" grep -Eq '^Rev@10 +[0-9.]+ +[0-9.]+$' "$T/cmp.out"
check "significance table follows" grep -q '^significance vs the best model' "$T/cmp.out"
check "significance rows carry p-values" grep -Eq '^NDCG@10 .*(best|t=[0-9.e+-]+ b=[01]\.[0-9]{4})' "$T/cmp.out"
check "JSON holds the significance" grep -q '"significance"' "$D/eval/last.json"
"$BIN" evaluate --quiet --data "$D" --models pop,itemknn --signif none > "$T/nosig.out" 2>&1
check "--signif none prints one table" test "$(grep -c '^significance' "$T/nosig.out")" -eq 0
"$BIN" evaluate --quiet --data "$D" --models pop --split kfold --folds 3 > "$T/kfold.out" 2>&1 \
  || { cat "$T/kfold.out"; bad "k-fold runs"; }
check "k-fold: one summary per fold" test "$(grep -c '^# split kfold' "$T/kfold.out")" -eq 3
check "k-fold: RMSE and MAE rows" grep -Eq '^RMSE +[0-9.]+$' "$T/kfold.out"
check "k-fold: users summed over folds" test "$(awk '$1 == "users" { print $2 }' "$T/kfold.out")" -gt 240
"$BIN" evaluate --quiet --data "$D" --models pop --validation > "$T/val.out" 2>&1 \
  || bad "--validation runs"
check "--validation judges on the validation split" grep -q '; validation [0-9]* rows' "$T/val.out"
"$BIN" evaluate --quiet --data "$D" --models pop,itemknn --sampled-negatives 20 --k 5 \
  > "$T/sampled.out" 2>&1 || { cat "$T/sampled.out"; bad "sampled negatives run"; }
check "sampled run noted in the JSON" grep -q '"sampled_negatives": 20' "$D/eval/last.json"
"$BIN" evaluate --quiet --data "$D" --models pop,itemknn --k 5 --signif none > "$T/full5.out" 2>&1
# a test item ranks no worse among 20 sampled negatives than in the full ranking
r_full=$(awk '$1 == "R@5" { print $3; exit }' "$T/full5.out")
r_samp=$(awk '$1 == "R@5" { print $3; exit }' "$T/sampled.out")
check "1+20 sampled ranking is easier than full ranking (itemknn R@5 $r_samp >= $r_full)" \
  awk -v s="$r_samp" -v f="$r_full" 'BEGIN { exit !(s >= f && s > 0) }'
"$BIN" evaluate --quiet --data "$D" --split loo --fold 1 > /dev/null 2>&1
check "--fold without kfold is a usage error" test $? -eq 2

# ---- report -------------------------------------------------------------------
"$BIN" report --data "$D" --out "$T/out/report.html" > "$T/report.out" 2> "$T/report.err" \
  || { cat "$T/report.err"; bad "report runs (and creates the --out directory)"; }
H=$T/out/report.html
J=$T/out/report.json
check "HTML written" test -s "$H"
check "JSON written next to it" test -s "$J"
check "HTML is a page" grep -q '^<!DOCTYPE html>' "$H"
nsvg=$(grep -o '<svg' "$H" | wc -l)
check "HTML holds the charts ($nsvg svg elements)" test "$nsvg" -ge 12
check "precision/recall chart" grep -q 'data-chart="pr"' "$H"
check "popularity histogram" grep -q 'data-chart="popularity"' "$H"
check "tuning chart (itemknn was tuned)" grep -q 'data-chart="tune"' "$H"
check "self-contained: no script" test "$(grep -c '<script' "$H")" -eq 0
check "self-contained: no external resources" test "$(grep -Ec '(src|href)="https?:' "$H")" -eq 0
check "report JSON holds the curve, histogram and tuning" \
  grep -q '"pr_curve"' "$J"
grep -q '"popularity_histogram"' "$J" && grep -q '"tuning"' "$J" || bad "JSON sections"
# every metric cell of the HTML equals the JSON value rounded to 4 decimals
awk '
  /^      "name": "/ { m = $2; gsub(/[",]/, "", m) }
  /^      "metrics": \{/ { inm = 1; next }
  inm && /^      \}/ { inm = 0 }
  inm { k = $1; gsub(/[":]/, "", k); v = $2; gsub(/,/, "", v); printf "%s|%s|%.4f\n", m, k, v }
' "$J" | sort -u > "$T/json.cells"
grep -o 'data-model="[^"]*" data-metric="[^"]*"[^>]*>[0-9.-]*' "$H" \
  | sed -E 's/data-model="([^"]*)" data-metric="([^"]*)"[^>]*>(.*)/\1|\2|\3/' | sort -u > "$T/html.cells"
njson=$(wc -l < "$T/json.cells")
check "JSON metric cells found ($njson)" test "$njson" -ge 30
check "HTML numbers match report.json" diff "$T/json.cells" "$T/html.cells"
"$BIN" report --data "$D" --main-k 7 --k 5,10 > /dev/null 2>&1
check "report adds --main-k to the cut-offs" test $? -eq 0
check "default report path" test -s "$D/eval/report.html" -a -s "$D/eval/report.json"
"$BIN" report --data "$T/nowhere" > /dev/null 2>&1
check "report on a missing data dir fails" test $? -ne 0

if [ "$fails" -ne 0 ]; then
  echo "$fails check(s) failed"
  exit 1
fi
echo "all tune/report CLI checks passed"
