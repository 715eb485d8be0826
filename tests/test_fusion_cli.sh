#!/usr/bin/env bash
# test_fusion_cli.sh - the fused model through the real binary on a
# generated shop: train, recommend with business rules (block, pin,
# out-of-stock, category cap, diversity), --explain naming real
# interactions, repeat purchases of a consumable category with the fused
# model, evaluate --models fusion comparing channels and blends.
# Usage: test_fusion_cli.sh path/to/recfuse [source dir]
set -uo pipefail
BIN=$1
. "$(dirname "$0")/testlib.sh"
rf_tmpdir fusion-cli
export RECFUSE_THREADS=2
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }

"$BIN" gen --quiet --out "$T/shop" --preset demo --users 400 --items 200 --events 15000 --seed 5 \
  >"$T/gen.out" 2>&1 || { cat "$T/gen.out"; bad "gen"; }
"$BIN" import --quiet --data "$T/d" --items "$T/shop/items.tsv" --users "$T/shop/users.tsv" \
  --interactions "$T/shop/interactions.tsv" >"$T/imp.out" 2>&1 || { cat "$T/imp.out"; bad "import"; }
P="userknn=0,ease=0,trees=60"
"$BIN" train --quiet --data "$T/d" --model fusion --params "$P" >"$T/train.out" 2>&1
check "train fusion" "[ -s '$T/d/models/fusion.rfm' ] && grep -q '^trained fusion' '$T/train.out'"

tail -n +2 "$T/shop/users.tsv" | cut -f1 | head -40 >"$T/users.txt"
"$BIN" recommend --data "$T/d" --users "$T/users.txt" --k 10 >"$T/rec.out" 2>"$T/rec.err"
check "recommend serves fusion by default" "grep -q 'model fusion' '$T/rec.err'"
check "10 items per user" "awk -F'\t' '{ if (split(\$2, a, \",\") != 10) exit 1 }' '$T/rec.out'"

# --explain: one line per item; cited items are the user's own interactions
"$BIN" recommend --data "$T/d" --users "$T/users.txt" --k 10 --explain >"$T/why.out" 2>"$T/why.err"
check "explain: 10 lines per user" "[ \$(wc -l <'$T/why.out') -eq 400 ]"
check "explain lines have kind, text and shares" \
  "awk -F'\t' 'NF != 5 || \$3 == \"\" || \$4 == \"\" || \$5 !~ /:[0-9.]+/ { exit 1 }' '$T/why.out'"
check "explain items are the recommended ones" \
  "[ \"\$(awk -F'\t' '{print \$1\"\t\"\$2}' '$T/why.out' | md5sum)\" = \"\$(awk -F'\t' '{n=split(\$2,a,\",\"); for(i=1;i<=n;i++) print \$1\"\t\"a[i]}' '$T/rec.out' | md5sum)\" ]"
awk -F'\t' '$3 == "similar" || $3 == "bought_together" {
  n = split($4, w, " "); for (i = 1; i <= n; i++) if (w[i] ~ /^i[0-9]+$/ || w[i] ~ /^p[0-9]+$/) print $1 "\t" w[i] }' \
  "$T/why.out" | sort -u >"$T/cited.txt"
awk -F'\t' 'NR > 1 { print $1 "\t" $2 }' "$T/shop/interactions.tsv" | sort -u >"$T/pairs.txt"
n_cited=$(wc -l <"$T/cited.txt")
check "some reasons cite a history item ($n_cited)" "[ $n_cited -gt 0 ]"
check "every cited item is a real interaction of the user" \
  "[ -z \"\$(comm -23 '$T/cited.txt' '$T/pairs.txt')\" ]"

# business rules
u=$(head -1 "$T/users.txt")
first=$(grep "^$u	" "$T/rec.out" | cut -f2 | cut -d, -f1)
second=$(grep "^$u	" "$T/rec.out" | cut -f2 | cut -d, -f2)
last_item=$(tail -1 "$T/shop/items.tsv" | cut -f1)
"$BIN" recommend --data "$T/d" --user "$u" --k 10 --block "$first" --pin "$last_item@0" \
  >"$T/r1.out" 2>"$T/r1.err" || { cat "$T/r1.err"; bad "recommend with rules"; }
check "blocked item gone" "! grep -Eq '(	|,)$first(,|\$)' '$T/r1.out'"
check "pinned item first" "[ \"\$(cut -f2 '$T/r1.out' | cut -d, -f1)\" = '$last_item' ]"
check "next best follows" "[ \"\$(cut -f2 '$T/r1.out' | cut -d, -f2)\" = '$second' ]"
# out-of-stock exclusion and category caps against the catalog
awk -F'\t' 'NR > 1 && $6 == "0" { print $1 }' "$T/shop/items.tsv" | sort >"$T/oos.txt"
"$BIN" recommend --data "$T/d" --users "$T/users.txt" --k 10 --oos exclude --cat-cap 2 \
  --diversity 0.7 >"$T/r2.out" 2>"$T/r2.err" || { cat "$T/r2.err"; bad "oos/cap"; }
cut -f2 "$T/r2.out" | tr ',' '\n' | sort -u >"$T/r2.items"
check "no out-of-stock item with --oos exclude" "[ -z \"\$(comm -12 '$T/r2.items' '$T/oos.txt')\" ]"
awk -F'\t' 'NR == FNR { if (FNR > 1) cat[$1] = $3; next }
  { delete c; n = split($2, a, ","); for (i = 1; i <= n; i++) if (++c[cat[a[i]]] > 2) exit 1 }' \
  "$T/shop/items.tsv" "$T/r2.out"
check "at most 2 items per category with --cat-cap 2" "[ $? -eq 0 ]"
"$BIN" recommend --data "$T/d" --user "$u" --oos maybe >/dev/null 2>"$T/e.err"
check "bad --oos is a usage error" "[ $? -eq 2 ] && grep -q 'oos' '$T/e.err'"
"$BIN" recommend --data "$T/d" --user "$u" --block nosuchitem >/dev/null 2>"$T/e.err"
check "unknown --block item named" "[ $? -eq 2 ] && grep -q 'nosuchitem' '$T/e.err'"

# repeat purchases: with --repeat-categories C the fused lists may hold the
# user's purchases in C (the model scores them as candidates), never any
# other item the user touched; everything else keeps the default order
tail -n +2 "$T/shop/users.tsv" | cut -f1 >"$T/all.txt"
# C: the top-level category with the most items bought twice by a user
C=$(awk -F'\t' 'NR == FNR { if (FNR > 1) { split($3, a, "/"); top[$1] = a[1] }; next }
  FNR > 1 && $3 == "purchase" && ++n[$1 "\t" $2] == 2 { c[top[$2]]++ }
  END { for (k in c) if (c[k] > best) { best = c[k]; b = k }; print b }' \
  "$T/shop/items.tsv" "$T/shop/interactions.tsv")
"$BIN" recommend --data "$T/d" --users "$T/all.txt" --k 10 >"$T/p.out" 2>/dev/null
"$BIN" recommend --data "$T/d" --users "$T/all.txt" --k 10 --repeat-categories "$C" \
  >"$T/rep.out" 2>"$T/rep.err" || { cat "$T/rep.err"; bad "recommend --repeat-categories"; }
# per user: touched items (t) and purchases in C (b)
awk -F'\t' 'NR == FNR { if (FNR > 1) { split($3, a, "/"); top[$1] = a[1] }; next }
  FNR > 1 { print "t\t" $1 "\t" $2; if ($3 == "purchase" && top[$2] == "'"$C"'") print "b\t" $1 "\t" $2 }' \
  "$T/shop/items.tsv" "$T/shop/interactions.tsv" | sort -u >"$T/hist.txt"
awk -F'\t' 'NR == FNR { h[$1 "\t" $2 "\t" $3] = 1; next }
  FILENAME == ARGV[2] { plain[$1] = $2; next }
  { n = split($2, a, ","); rest = ""; r = 0
    for (i = 1; i <= n; i++) {
      if (h["t\t" $1 "\t" a[i]]) { r++; if (!h["b\t" $1 "\t" a[i]]) bad_item++ }
      else rest = rest (rest == "" ? "" : ",") a[i] }
    if (r) lists++
    if (index(plain[$1] ",", rest ",") != 1 && rest != "") order++ }
  END { print lists + 0, bad_item + 0, order + 0 }' "$T/hist.txt" "$T/p.out" "$T/rep.out" >"$T/rep.sum"
read n_lists n_bad n_order <"$T/rep.sum"
check "repeat: a list for every user" \
  "[ \$(wc -l <'$T/rep.out') -eq \$(wc -l <'$T/all.txt') ] && [ \$(wc -l <'$T/p.out') -gt 300 ]"
n_buyers=$(grep -c '^b' "$T/hist.txt" | tr -d ' ')
check "repeat: some fused lists bring back a purchase in $C ($n_lists lists, $n_buyers purchases in $C)" \
  "[ $n_lists -gt 0 ]"
check "repeat: no history item but purchases in $C ($n_bad)" "[ $n_bad -eq 0 ]"
check "repeat: the other items keep the default order ($n_order lists differ)" "[ $n_order -eq 0 ]"
"$BIN" recommend --data "$T/d" --users "$T/all.txt" --k 10 --repeat-categories NoSuchCategory \
  >"$T/rep0.out" 2>/dev/null
check "repeat: a pattern matching no category changes no list" "cmp -s '$T/p.out' '$T/rep0.out'"
"$BIN" recommend --data "$T/d" --users "$T/all.txt" --k 10 --repeat-categories "$C" --explain \
  >"$T/repwhy.out" 2>/dev/null
check "repeat: --explain lists the same items" \
  "[ \"\$(awk -F'\t' '{print \$1\"\t\"\$2}' '$T/repwhy.out' | md5sum)\" = \"\$(awk -F'\t' '{n=split(\$2,a,\",\"); for(i=1;i<=n;i++) print \$1\"\t\"a[i]}' '$T/rep.out' | md5sum)\" ]"
awk -F'\t' '$3 == "repeat" { print "b\t" $1 "\t" $2 }' "$T/repwhy.out" | sort -u >"$T/repwhy.b"
check "repeat: repeat items are explained as such ($(wc -l <"$T/repwhy.b") lines), each a purchase" \
  "[ -s '$T/repwhy.b' ] && [ -z \"\$(comm -23 '$T/repwhy.b' '$T/hist.txt')\" ]"

# evaluate: channels, blends and the fused model side by side, with marks
"$BIN" evaluate --quiet --data "$T/d" --models fusion --params-fusion "$P" >"$T/ev.out" 2>&1
check "evaluate shows channels, blends and fusion" \
  "grep -E '^metric' '$T/ev.out' | grep -q 'itemknn.*ials.*blend:weighted.*blend:rrf.*blend:switch.*fusion'"
check "significance table printed" "grep -q 'significance' '$T/ev.out'"

# the server on the fused model: similar items and bought-together come
# from its itemknn and rules channels when those models have no file
. "$(dirname "$0")/serverlib.sh"
if start_server --data "$T/d"; then
  req GET "/v1/recommend/$u?k=5&explain=1"
  check "serve: fusion is the served model" "[ '$CODE' = 200 ] && [ \"\$(jq -r .model <<<'$BODY')\" = fusion ]"
  check "serve: explanations carry a kind and channel shares" \
    "jq -e '.items | length == 5 and all(.explain.kind != null and (.explain.contrib | length) > 0)' <<<'$BODY' >/dev/null"
  # every list the server ranks (on an idle scorer thread or on the HTTP
  # thread: 8 requests at once) is the one `recfuse recommend` prints
  xargs -P 8 -I{} sh -c "curl -s '$URL/v1/recommend/{}?k=10' | jq -r '[.user, ([.items[].item] | join(\",\"))] | @tsv'" \
    <"$T/users.txt" | sort >"$T/srv.out"
  check "serve: 40 concurrent lists equal recommend's" "[ \"\$(sort '$T/rec.out' | md5sum)\" = \"\$(md5sum <'$T/srv.out')\" ]"
  cat1=$(awk -F'\t' 'NR == 2 { split($3, a, "/"); print a[1] }' "$T/shop/items.tsv")
  "$BIN" recommend --data "$T/d" --user "$u" --k 20 --category "$cat1" --max-price 80 >"$T/rf.out" 2>/dev/null
  req GET "/v1/recommend/$u?k=20&category=$(jq -rn --arg c "$cat1" '$c|@uri')&max_price=80"
  check "serve: a filtered list equals recommend's ($cat1, <= 80)" \
    "[ '$CODE' = 200 ] && [ \"\$(jq -r '[.items[].item] | join(\",\")' <<<'$BODY')\" = \"\$(cut -f2 '$T/rf.out')\" ]"
  req GET "/v1/similar/$first?k=5"
  check "serve: similar items from the fusion's itemknn channel" \
    "[ '$CODE' = 200 ] && [ \"\$(jq -r .model <<<'$BODY')\" = fusion/itemknn ] && jq -e '.items | length > 0' <<<'$BODY' >/dev/null"
  req GET "/v1/bought-together/$first"
  check "serve: bought-together from the fusion's rules channel" \
    "[ '$CODE' = 200 ] && [ \"\$(jq -r .model <<<'$BODY')\" = fusion/rules ]"
  stop_server
  check "serve: clean exit" "[ $? -eq 0 ]"
fi
rf_finish
