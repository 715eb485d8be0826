#!/usr/bin/env bash
# test_predict_cli.sh - end-to-end test of `recfuse predict` with the
# rating models: import generated ratings, train mf and svdpp, predict
# pairs including unknown users and items, a header, extra columns and a
# bad line.
# Usage: test_predict_cli.sh path/to/recfuse [source dir]
set -uo pipefail
BIN=$1
. "$(dirname "$0")/testlib.sh"
rf_tmpdir predict
export RECFUSE_THREADS=2

# 40 users x 30 items, ratings from a planted 2-group taste plus user and
# item offsets, rounded to 1..5; each user rates ~60% of the items.
awk 'BEGIN { srand(7);
  for (u = 0; u < 40; u++) for (i = 0; i < 30; i++) {
    if (rand() > 0.6) continue;
    r = 3 + ((u % 2) == (i % 2) ? 1 : -1) + (u % 5 - 2) * 0.3 + (i % 3 - 1) * 0.4 + (rand() - 0.5);
    r = int(r + 0.5); if (r < 1) r = 1; if (r > 5) r = 5;
    printf "u%d\ti%d\t%d\t%d\n", u, i, r, 1000 + u * 30 + i } }' > "$T/ratings.tsv"
D=$T/d
"$BIN" import --quiet --data "$D" --interactions "$T/ratings.tsv" > "$T/imp.out" 2>&1 \
  || { cat "$T/imp.out"; bad "import"; }
MEAN=$(awk '{ s += $3 } END { printf "%.6f", s / NR }' "$T/ratings.tsv")

for m in mf svdpp; do
  if "$BIN" train --quiet --data "$D" --model "$m" --params factors=4,epochs=40,lr=0.02 \
      > "$T/train-$m.out" 2>&1; then ok "train $m"
  else cat "$T/train-$m.out"; bad "train $m"; fi
done

# header, extra columns, blank line, unknown user, unknown item, both
printf 'user\titem\textra\n' > "$T/pairs.tsv"
printf 'u1\ti1\t5\t123\nu0\ti2\n\nzz\ti3\nu4\tnoitem\nzz\tnoitem\nu4\tnoitem2\n' >> "$T/pairs.tsv"
if "$BIN" predict --data "$D" --pairs "$T/pairs.tsv" --model mf > "$T/p.out" 2> "$T/p.err"; then
  ok "predict runs"
else cat "$T/p.err"; bad "predict runs"; fi
[ "$(wc -l < "$T/p.out")" -eq 6 ] && ok "one line per pair, header and blank skipped" \
  || { cat "$T/p.out"; bad "line count"; }
cut -f1,2 "$T/p.out" > "$T/p.ids"
printf 'u1\ti1\nu0\ti2\nzz\ti3\nu4\tnoitem\nzz\tnoitem\nu4\tnoitem2\n' | cmp -s - "$T/p.ids" \
  && ok "input order, original ids" || { cat "$T/p.out"; bad "input order"; }
awk -F'\t' 'NF != 3 || $3 < 1 || $3 > 5 { bad = 1 } END { exit bad }' "$T/p.out" \
  && ok "three columns, ratings within the training range" || { cat "$T/p.out"; bad "rating range"; }
# both unknown: the global mean; unknown items of one user: one value (mu + b_u)
awk -F'\t' -v mu="$MEAN" '$1 == "zz" && $2 == "noitem" { d = $3 - mu; if (d < 0) d = -d; exit !(d < 1e-3) }' \
  "$T/p.out" && ok "unknown user and item: global mean $MEAN" || { cat "$T/p.out"; bad "global mean"; }
[ "$(awk -F'\t' '$1 == "u4" { print $3 }' "$T/p.out" | sort -u | wc -l)" -eq 1 ] \
  && ok "unknown items of a known user: the user's bias" || { cat "$T/p.out"; bad "user bias"; }
grep -q "6 pairs, 4 users (1 unknown" "$T/p.err" && ok "summary on stderr" || { cat "$T/p.err"; bad "summary"; }

# the model learned the ratings (not binary presence): predictions of the
# training pairs beat the global mean by far
cut -f1,2 "$T/ratings.tsv" > "$T/train-pairs.tsv"
for m in mf svdpp; do
  "$BIN" predict --data "$D" --pairs "$T/train-pairs.tsv" --model "$m" > "$T/tp-$m.out" 2> /dev/null
  paste "$T/ratings.tsv" "$T/tp-$m.out" | awk -F'\t' -v mu="$MEAN" -v m="$m" '
    { e = $3 - $7; se += e * e; g = $3 - mu; sg += g * g }
    END { r = sqrt(se / NR); b = sqrt(sg / NR);
          printf "%s: train RMSE %.3f, global mean %.3f\n", m, r, b; exit !(r < 0.8 * b) }' \
    && ok "$m predicts ratings" || bad "$m predicts ratings"
done

# same input, same output; svdpp differs from mf
"$BIN" predict --data "$D" --pairs "$T/pairs.tsv" --model mf > "$T/p2.out" 2> /dev/null
cmp -s "$T/p.out" "$T/p2.out" && ok "deterministic" || bad "deterministic"
"$BIN" predict --data "$D" --pairs "$T/pairs.tsv" --model svdpp > "$T/s.out" 2> /dev/null \
  && ! cmp -s "$T/p.out" "$T/s.out" && ok "svdpp predicts" || bad "svdpp predicts"
# default model: mf when trained
"$BIN" predict --data "$D" --pairs "$T/pairs.tsv" > "$T/d.out" 2> "$T/d.err"
cmp -s "$T/p.out" "$T/d.out" && grep -q "model mf" "$T/d.err" && ok "default model mf" \
  || { cat "$T/d.err"; bad "default model"; }

# a bad line: FILE:LINE, non-zero status, nothing printed
printf 'u1\ti1\nu2 i2\nu3\ti3\n' > "$T/bad.tsv"
"$BIN" predict --data "$D" --pairs "$T/bad.tsv" --model mf > "$T/b.out" 2> "$T/b.err"
rc=$?
[ $rc -ne 0 ] && [ ! -s "$T/b.out" ] && grep -q "bad.tsv:2: expected user<TAB>item" "$T/b.err" \
  && ok "bad line: FILE:LINE and no output" || { echo "rc=$rc"; cat "$T/b.err" "$T/b.out"; bad "bad line"; }
printf 'u1\t\n' > "$T/empty.tsv"
"$BIN" predict --data "$D" --pairs "$T/empty.tsv" --model mf > /dev/null 2> "$T/e.err"
[ $? -ne 0 ] && grep -q "empty.tsv:1: empty item id" "$T/e.err" && ok "empty id rejected" \
  || { cat "$T/e.err"; bad "empty id"; }

# usage errors
"$BIN" predict --data "$D" > /dev/null 2> "$T/u.err"
[ $? -eq 2 ] && grep -q -- "--pairs" "$T/u.err" && ok "missing --pairs is a usage error" \
  || { cat "$T/u.err"; bad "missing --pairs"; }
"$BIN" predict --data "$D" --pairs "$T/pairs.tsv" --model bpr > /dev/null 2> "$T/n.err"
[ $? -ne 0 ] && grep -q "not trained" "$T/n.err" && ok "untrained model named" \
  || { cat "$T/n.err"; bad "untrained model"; }

# a user imported after training is folded in from the store
printf 'newbie\ti0\t5\t9000\nnewbie\ti2\t5\t9001\nnewbie\ti4\t5\t9002\nnewbie\ti1\t1\t9003\n' > "$T/new.tsv"
"$BIN" import --quiet --data "$D" --interactions "$T/new.tsv" > /dev/null 2>&1
printf 'newbie\ti6\nnobody\ti6\n' > "$T/np.tsv"
"$BIN" predict --data "$D" --pairs "$T/np.tsv" --model mf > "$T/np.out" 2> "$T/np.err"
[ "$(cut -f3 "$T/np.out" | sort -u | wc -l)" -eq 2 ] && grep -q "1 of them folded in" "$T/np.err" \
  && ok "new user folded in from the store" || { cat "$T/np.out" "$T/np.err"; bad "fold-in"; }

echo "predict cli: $fails failure(s)"
[ $fails -eq 0 ]
