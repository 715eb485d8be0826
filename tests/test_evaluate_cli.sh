#!/usr/bin/env bash
# test_evaluate_cli.sh - end-to-end test of `recfuse evaluate`, both modes.
# Usage: test_evaluate_cli.sh path/to/recfuse [source dir]
set -uo pipefail
BIN=$1
. "$(dirname "$0")/testlib.sh"
rf_tmpdir evaluate-cli
export RECFUSE_THREADS=2
check() { # check DESCRIPTION COMMAND...
  local d=$1; shift
  if "$@"; then ok "$d"; else bad "$d"; fi
}
# value of metric row $2 for model column $3 (1-based) in table file $1
val() { awk -v m="$2" -v c="$3" '$1 == m { print $(c + 1) }' "$1"; }

# ---- hand-computed test-file mode -------------------------------------
# store: a: i1 i2 i3; b: i1 i2; c: i1 i4; d: i5. Popularity i1=3 i2=2,
# then i3=i4=i5=1 (ties by store order). Test: a->i4, b->i3,i5,
# c->i9 (unknown item), z->i1 (unknown user, popularity fallback).
D=$T/hand
printf 'user\titem\tvalue\ttimestamp\n' > "$T/hand.tsv"
printf 'a\ti1\t5\t100\na\ti2\t4\t101\na\ti3\t3\t102\nb\ti1\t5\t103\nb\ti2\t4\t104\n' >> "$T/hand.tsv"
printf 'c\ti1\t1\t105\nc\ti4\t2\t106\nd\ti5\t3\t107\n' >> "$T/hand.tsv"
printf 'a\ti4\t5\t200\nb\ti3\t4\t201\nb\ti5\t4\t202\nc\ti9\t3\t203\nz\ti1\t1\t204\n' > "$T/hand-test.tsv"
"$BIN" import --quiet --data "$D" --interactions "$T/hand.tsv" > "$T/import.out" 2>&1 \
  || { cat "$T/import.out"; bad "import hand data"; }
"$BIN" train --quiet --data "$D" --model pop > "$T/train.out" 2>&1 \
  || { cat "$T/train.out"; bad "train pop"; }
if "$BIN" evaluate --quiet --data "$D" --test "$T/hand-test.tsv" --models pop --k 1,2 \
    > "$T/hand.out" 2> "$T/hand.err"; then
  ok "evaluate --test runs"
else
  cat "$T/hand.err"; bad "evaluate --test runs"
fi
cat "$T/hand.out"
expect() { # expect FILE METRIC COLUMN VALUE
  local got; got=$(val "$1" "$2" "$3")
  if [ "$got" = "$4" ]; then ok "$2 = $4"; else bad "$2: got '$got', want '$4'"; fi
}
expect "$T/hand.out" P@1 1 0.7500
expect "$T/hand.out" HR@1 1 0.7500
expect "$T/hand.out" R@1 1 0.6250
expect "$T/hand.out" MRR@1 1 0.7500
expect "$T/hand.out" Cov@1 1 0.8000
expect "$T/hand.out" P@2 1 0.3750
expect "$T/hand.out" R@2 1 0.6250
expect "$T/hand.out" NDCG@2 1 0.6533
expect "$T/hand.out" MRR@2 1 0.7500
expect "$T/hand.out" Cov@2 1 1.0000
expect "$T/hand.out" users 1 4
check "header names the model" grep -Eq '^metric +pop$' "$T/hand.out"
check "summary counts unknown users and items" \
  grep -q '# test file .*: 5 rows, 4 users (1 unknown to the store), 1 unknown items' "$T/hand.out"
check "default JSON report written" test -s "$D/eval/last.json"
check "JSON has the metric" grep -q '"NDCG@2": 0.653' "$D/eval/last.json"
check "JSON names the protocol" grep -q '"split": "test-file"' "$D/eval/last.json"

# a model that was never trained
"$BIN" evaluate --quiet --data "$D" --test "$T/hand-test.tsv" --models itemknn \
  > /dev/null 2> "$T/untrained.err"
rc=$?
check "untrained model fails (status $rc)" test "$rc" -eq 1
check "untrained model message says how to train" grep -q 'recfuse train' "$T/untrained.err"
"$BIN" evaluate --quiet --data "$D" --test "$T/no-such-file.tsv" --models pop > /dev/null 2>&1
check "missing test file fails" test $? -ne 0

# ---- split mode ----------------------------------------------------------
# 40 users x 8 distinct items (of 30), increasing timestamps: the default
# split puts ceil(0.2 * 8) = 2 per user in test.
D=$T/split
awk 'BEGIN { OFS = "\t"; ts = 1000;
  for (u = 0; u < 40; u++) for (j = 0; j < 8; j++) {
    item = (u * 3 + j * 7) % 30; if (u % 4 == 0) item = (j * 11) % 30;
    print "u" u, "i" item, 1 + (u + j) % 5, ts++ } }' > "$T/split.tsv"
"$BIN" import --quiet --data "$D" --interactions "$T/split.tsv" > /dev/null 2>&1 \
  || bad "import split data"
"$BIN" evaluate --quiet --data "$D" --k 10,5 > "$T/split.out" 2> "$T/split.err" \
  || { cat "$T/split.err"; bad "evaluate (split mode) runs"; }
cat "$T/split.out"
check "split summary" \
  grep -q '^# split user (test_ratio=0.2 min_items=5): train 240 rows, 40 users; test 80 rows, 40 users$' \
  "$T/split.out"
check "default models are pop and itemknn" grep -Eq '^metric +pop +itemknn$' "$T/split.out"
for m in P R NDCG MAP HR MRR Cov; do
  for k in 5 10; do
    line=$(grep -E "^$m@$k " "$T/split.out")
    if echo "$line" | grep -Eq "^$m@$k +[01]\.[0-9]{4} +[01]\.[0-9]{4}$"; then
      ok "row $m@$k"
    else
      bad "row $m@$k: '$line'"
    fi
  done
done
check "K rows sorted: @5 before @10" \
  test "$(grep -m1 -n '^P@5 ' "$T/split.out" | cut -d: -f1)" -lt "$(grep -m1 -n '^P@10 ' "$T/split.out" | cut -d: -f1)"
expect "$T/split.out" users 1 40
check "split JSON" grep -q '"split": "user"' "$D/eval/last.json"
check "nothing trained into DIR/models by split mode" test ! -e "$D/models/pop.rfm"

# same numbers with another thread count (only eval_s may differ)
RECFUSE_THREADS=1 "$BIN" evaluate --quiet --data "$D" --k 10,5 --json "$T/one.json" \
  > "$T/split1.out" 2> /dev/null || bad "evaluate with 1 thread"
check "thread count does not change the table" \
  diff <(grep -v '^eval_s' "$T/split.out") <(grep -v '^eval_s' "$T/split1.out")
check "--json FILE written" grep -q '"models"' "$T/one.json"

# other protocols and options
"$BIN" evaluate --quiet --data "$D" --models pop --split loo > "$T/loo.out" 2> "$T/loo.err" \
  || { cat "$T/loo.err"; bad "loo split runs"; }
check "loo: one test item per user" grep -q 'test 40 rows, 40 users$' "$T/loo.out"
"$BIN" evaluate --quiet --data "$D" --models pop --split time --cutoff 1240 > "$T/time.out" \
  2> "$T/time.err" || { cat "$T/time.err"; bad "time split runs"; }
check "time split at 1240: 80 test rows" grep -q 'train 240 rows, 30 users; test 80 rows, 10 users$' "$T/time.out"
"$BIN" evaluate --quiet --data "$D" --models itemknn --params-itemknn k=5 > "$T/params.out" \
  2> "$T/params.err" || { cat "$T/params.err"; bad "--params-itemknn accepted"; }
"$BIN" evaluate --quiet --data "$D" --models itemknn --params-itemknn nosuch=1 > /dev/null \
  2> "$T/badparam.err"
check "unknown parameter fails" test $? -ne 0
check "unknown parameter named" grep -q nosuch "$T/badparam.err"

# usage errors: status 2 and a readable message
"$BIN" evaluate --quiet --data "$D" --models pop,nosuch > /dev/null 2> "$T/unknown.err"
check "unknown model is a usage error" test $? -eq 2
check "unknown model message lists known ones" grep -q 'known: .*pop.*itemknn' "$T/unknown.err"
"$BIN" evaluate --quiet --data "$D" --k 0 > /dev/null 2>&1
check "--k 0 is a usage error" test $? -eq 2
"$BIN" evaluate --quiet --data "$D" --split weird > /dev/null 2>&1
check "unknown split is a usage error" test $? -eq 2
"$BIN" evaluate --quiet --data "$D" --bogus 1 > /dev/null 2>&1
check "unknown option is a usage error" test $? -eq 2
"$BIN" evaluate --quiet --data "$T/nowhere" > /dev/null 2>&1
check "missing data dir fails" test $? -ne 0
"$BIN" evaluate --help > "$T/help.out" 2>&1
check "--help" grep -q 'usage: recfuse evaluate' "$T/help.out"

if [ "$fails" -ne 0 ]; then
  echo "$fails check(s) failed"
  exit 1
fi
echo "all evaluate CLI checks passed"
