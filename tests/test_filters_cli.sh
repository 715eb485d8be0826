#!/usr/bin/env bash
# test_filters_cli.sh - end-to-end test of `recfuse rules` (hand-computed
# support / confidence / lift), the rules and content models through
# train/recommend (a new item without interactions), and the catalog
# filters of `recfuse recommend` (--category, --min-price, --max-price,
# --in-stock) on pop and trending for new users.
# Usage: test_filters_cli.sh path/to/recfuse [source dir]
set -uo pipefail
BIN=$1
. "$(dirname "$0")/testlib.sh"
rf_tmpdir filters
export RECFUSE_THREADS=2

# ---- rules: hand-computed ------------------------------------------------
# Purchase baskets (sessions, 30 min): u1 {p1,p2} then {p3} a day later;
# u2 {p1,p2,p3}; u3 {p1,p3}; u4 {p2}. Views do not count. N = 5 baskets.
# count p1=p2=p3=3; p1p2=2, p1p3=2, p2p3=1; p1p2p3=1.
# p1 -> p2: support 2/5 = 0.4, confidence 2/3, lift (2/3)/(3/5) = 1.1111.
D=$T/r
cat > "$T/buys.tsv" <<'EOF'
user	item	type	value	timestamp
u1	p1	purchase	1	1000
u1	p2	purchase	1	1010
u1	p9	view	1	1020
u1	p3	purchase	1	100000
u2	p1	purchase	1	2000
u2	p2	purchase	1	2010
u2	p3	purchase	1	2020
u3	p1	purchase	1	3000
u3	p3	purchase	1	3010
u3	p9	view	1	3015
u4	p2	purchase	1	4000
EOF
"$BIN" import --quiet --data "$D" --interactions "$T/buys.tsv" > /dev/null 2>&1 || bad "import buys"
if "$BIN" rules --data "$D" > "$T/rules.out" 2> "$T/rules.err"; then ok "rules (mined) runs"
else cat "$T/rules.err"; bad "rules (mined) runs"; fi
cat > "$T/rules.want" <<'EOF'
antecedent	consequent	support	confidence	lift	count
p1	p2	0.4	0.6667	1.1111	2
p1	p3	0.4	0.6667	1.1111	2
p2	p1	0.4	0.6667	1.1111	2
p3	p1	0.4	0.6667	1.1111	2
EOF
cmp -s "$T/rules.out" "$T/rules.want" && ok "rules: hand-computed support/confidence/lift" \
  || { diff "$T/rules.out" "$T/rules.want"; bad "rules values"; }
grep -q "mined now): 5 baskets" "$T/rules.err" && ok "5 baskets reported" || { cat "$T/rules.err"; bad "basket count"; }

# triples and lower thresholds: p1,p2 -> p3: support 0.2, confidence 1/2, lift 5/6
"$BIN" rules --data "$D" --min-count 1 --min-lift 0 --sort confidence --top 0 > "$T/r3.out" 2>/dev/null
grep -q "^p1,p2	p3	0.2	0.5000	0.8333	1$" "$T/r3.out" && ok "rule with two antecedents" \
  || { cat "$T/r3.out"; bad "triple rule"; }
[ "$(sed -n 2p "$T/r3.out" | cut -f3-5)" = "$(printf '0.2\t1.0000\t1.6667')" ] \
  && ok "--sort confidence" || { head -3 "$T/r3.out"; bad "--sort confidence"; }
"$BIN" rules --data "$D" --item p3 > "$T/item.out" 2>/dev/null
[ "$(tail -n +2 "$T/item.out")" = "$(printf 'p3\tp1\t0.4\t0.6667\t1.1111\t2')" ] && ok "--item" \
  || { cat "$T/item.out"; bad "--item"; }
"$BIN" rules --data "$D" --top 1 > "$T/top.out" 2>/dev/null
[ "$(wc -l < "$T/top.out")" = 2 ] && ok "--top" || bad "--top"
# a 6-second gap splits every basket: u1 3, u2 3, u3 2, u4 1
"$BIN" rules --data "$D" --session-gap 0.1 > "$T/gap.out" 2> "$T/gap.err"
grep -q "9 baskets" "$T/gap.err" && ok "--session-gap" || { cat "$T/gap.err"; bad "--session-gap"; }

# errors
"$BIN" rules --data "$D" --item nosuch > /dev/null 2> "$T/e1"; rc=$?
[ $rc = 1 ] && grep -q "unknown to the rules model" "$T/e1" && ok "unknown item" || { cat "$T/e1"; bad "unknown item rc=$rc"; }
"$BIN" rules --data "$D" --max-len 5 > /dev/null 2> "$T/e2"; rc=$?
[ $rc = 2 ] && grep -q "max_len" "$T/e2" && ok "bad --max-len is a usage error" || { cat "$T/e2"; bad "--max-len rc=$rc"; }
"$BIN" rules --data "$D" --sort nope > /dev/null 2>&1; [ $? = 2 ] && ok "bad --sort" || bad "bad --sort"
"$BIN" rules --data "$T/nowhere" > /dev/null 2>&1; [ $? = 1 ] && ok "missing data dir" || bad "missing data dir"

# trained model: same rules; recommend from the last basket
"$BIN" train --quiet --data "$D" --model rules > /dev/null 2>&1 || bad "train rules"
"$BIN" rules --data "$D" > "$T/trained.out" 2> "$T/trained.err"
cmp -s "$T/trained.out" "$T/rules.want" && grep -q "trained model" "$T/trained.err" \
  && ok "rules from the trained model" || { cat "$T/trained.out" "$T/trained.err"; bad "trained rules"; }
# u4's last basket {p2}: p2 -> p1 fires; u1's last basket is {p3}: p3 -> p1
"$BIN" recommend --data "$D" --user u4 --k 1 --model rules > "$T/u4.out" 2>/dev/null
[ "$(cat "$T/u4.out")" = "$(printf 'u4\tp1')" ] && ok "rules recommend from the last basket" \
  || { cat "$T/u4.out"; bad "rules recommend"; }
# a new user gets popularity
"$BIN" recommend --data "$D" --user nobody --k 3 --model rules > "$T/nb.out" 2>/dev/null
[ "$(cut -f2 "$T/nb.out")" = "p1,p2,p3" ] && ok "rules popularity fallback" || { cat "$T/nb.out"; bad "rules fallback"; }

# ---- content: a new item without interactions ------------------------------
C=$T/c
cat > "$T/items.tsv" <<'EOF'
id	title	category	brand	price	stock	created	description
s1	Swift trail running shoe	Fashion/Shoes/Running	Swift	80	5	0	light trail shoe
s2	Pace road running shoe	Fashion/Shoes/Running	Pace	95	5	0	road shoe
k1	Steel frying pan	Home/Kitchen	Chefco	30	9	0	pan
k2	Cast iron pan	Home/Kitchen	Chefco	45	9	0	heavy pan
k3	Wok	Home/Kitchen	Chefco	35	9	0	wok
snew	Pace trail running shoe	Fashion/Shoes/Running	Pace	90	5	0	new trail shoe
EOF
printf 'user\titem\ttype\tvalue\ttimestamp\n' > "$T/ev.tsv"
for u in a b c d e; do printf '%s\tk1\tpurchase\t1\t100\n%s\tk2\tpurchase\t1\t200\n%s\tk3\tview\t1\t300\n' $u $u $u >> "$T/ev.tsv"; done
printf 'runner\ts1\tpurchase\t1\t500\nrunner\ts2\tpurchase\t1\t600\n' >> "$T/ev.tsv"
"$BIN" import --quiet --data "$C" --items "$T/items.tsv" --interactions "$T/ev.tsv" > /dev/null 2>&1 || bad "import shop"
"$BIN" train --quiet --data "$C" --model content,pop > /dev/null 2>&1 || bad "train content"
"$BIN" recommend --data "$C" --user runner --k 1 --model content > "$T/c.out" 2>/dev/null
[ "$(cat "$T/c.out")" = "$(printf 'runner\tsnew')" ] && ok "content recommends the new item" \
  || { cat "$T/c.out"; bad "content new item"; }
"$BIN" recommend --data "$C" --user runner --k 1 --model pop > "$T/p.out" 2>/dev/null
[ "$(cat "$T/p.out")" = "$(printf 'runner\tk1')" ] && ok "pop does not" || { cat "$T/p.out"; bad "pop"; }

# ---- filters on a generated shop -------------------------------------------
G=$T/g
"$BIN" gen --quiet --out "$T/shop" --users 300 --items 400 --events 8000 --categories 3 --seed 5 > /dev/null 2>&1 || bad "gen"
"$BIN" import --quiet --data "$G" --interactions "$T/shop/interactions.tsv" \
  --items "$T/shop/items.tsv" > /dev/null 2>&1 || bad "import gen"
"$BIN" train --quiet --data "$G" --model pop,trending > /dev/null 2>&1 || bad "train pop,trending"
printf 'newcomer\nu1\nu2\n' > "$T/users.txt"
# expected set: items in a */Shoes category, price <= 50, stock > 0
awk -F'\t' 'NR > 1 && ($3 ~ /(^|\/)Shoes(\/|$)/) && $5 + 0 <= 50 && $6 + 0 > 0 { print $1 }' \
  "$T/shop/items.tsv" | sort > "$T/pass.txt"
npass=$(wc -l < "$T/pass.txt")
[ "$npass" -ge 3 ] && ok "generated shop has $npass matching shoes" || bad "too few matching shoes ($npass)"
for model in pop trending; do
  if "$BIN" recommend --data "$G" --users "$T/users.txt" --k 5 --model $model --category Shoes \
      --max-price 50 --in-stock > "$T/f.out" 2> "$T/f.err"; then ok "$model with filters runs"
  else cat "$T/f.err"; bad "$model with filters runs"; fi
  [ "$(wc -l < "$T/f.out")" = 3 ] || bad "$model: one line per user"
  cut -f2 "$T/f.out" | tr ',' '\n' | grep -v '^$' | sort -u > "$T/got.txt"
  comm -23 "$T/got.txt" "$T/pass.txt" > "$T/viol.txt"
  [ ! -s "$T/viol.txt" ] && ok "$model: every item passes the filters" \
    || { cat "$T/viol.txt"; bad "$model: filter violated"; }
  want=$(( npass < 5 ? npass : 5 ))
  n=$(grep '^newcomer' "$T/f.out" | cut -f2 | tr ',' '\n' | grep -c .)
  [ "$n" = "$want" ] && ok "$model: cold user gets $want items" || { cat "$T/f.out"; bad "$model: cold count $n != $want"; }
done
# the cold-start list is the popularity order restricted to the filter
"$BIN" recommend --data "$G" --user newcomer --k 400 --model pop > "$T/all.out" 2>/dev/null
cut -f2 "$T/all.out" | tr ',' '\n' | grep -Fxf "$T/pass.txt" | head -5 | paste -sd, > "$T/want5"
"$BIN" recommend --data "$G" --user newcomer --k 5 --model pop --category shoes --max-price 50 \
  --in-stock 2>/dev/null | cut -f2 > "$T/got5"
cmp -s "$T/want5" "$T/got5" && ok "filtered list = popularity order within the filter" \
  || { cat "$T/want5" "$T/got5"; bad "filtered order"; }
# price range only
"$BIN" recommend --data "$G" --user newcomer --k 20 --model pop --min-price 100 --max-price 200 \
  2>/dev/null | cut -f2 | tr ',' '\n' > "$T/pr.txt"
bad_price=$(awk -F'\t' 'NR == FNR { want[$1] = 1; next } FNR > 1 && ($1 in want) && ($5 < 100 || $5 > 200)' \
  "$T/pr.txt" "$T/shop/items.tsv" | wc -l)
[ "$(grep -c . "$T/pr.txt")" = 20 ] && [ "$bad_price" = 0 ] && ok "price range" || bad "price range ($bad_price bad)"
# nothing matches: empty lists, a warning, exit 0
"$BIN" recommend --data "$G" --user newcomer --k 5 --model pop --category NoSuchThing > "$T/none.out" 2> "$T/none.err"
[ $? = 0 ] && [ "$(cat "$T/none.out")" = "$(printf 'newcomer\t')" ] && grep -q "no item passes" "$T/none.err" \
  && ok "no match: empty list" || { cat "$T/none.out" "$T/none.err"; bad "no match"; }
# usage errors
"$BIN" recommend --data "$G" --user x --model pop --min-price 60 --max-price 50 > /dev/null 2> "$T/e3"; rc=$?
[ $rc = 2 ] && grep -q "above" "$T/e3" && ok "min > max is a usage error" || { cat "$T/e3"; bad "min>max rc=$rc"; }
"$BIN" recommend --data "$G" --user x --model pop --max-price cheap > /dev/null 2>&1
[ $? = 2 ] && ok "bad price is a usage error" || bad "bad price"

if [ $fails -gt 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "all passed"
