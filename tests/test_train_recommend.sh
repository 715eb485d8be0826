#!/usr/bin/env bash
# test_train_recommend.sh - end-to-end test of `recfuse train` and
# `recfuse recommend` (batch contract).
# Usage: test_train_recommend.sh path/to/recfuse [source dir]
set -uo pipefail
BIN=$1
. "$(dirname "$0")/testlib.sh"
rf_tmpdir train-recommend
export RECFUSE_THREADS=2

# a: i1 i2 i3; b: i1 i2; c: i1 i4; d: i5. Popularity i1=3 i2=2, i3=i4=i5=1.
D=$T/d
printf 'user\titem\tvalue\ttimestamp\n' > "$T/x.tsv"
printf 'a\ti1\t5\t100\na\ti2\t4\t101\na\ti3\t3\t102\nb\ti1\t5\t103\nb\ti2\t4\t104\n' >> "$T/x.tsv"
printf 'c\ti1\t1\t105\nc\ti4\t2\t106\nd\ti5\t3\t107\n' >> "$T/x.tsv"
"$BIN" import --quiet --data "$D" --interactions "$T/x.tsv" > "$T/imp.out" 2>&1 \
  || { cat "$T/imp.out"; bad "import"; }

# no --model: pop, trending, itemknn, fusion
if "$BIN" train --quiet --data "$D" > "$T/train.out" 2>&1; then ok "train default set"
else cat "$T/train.out"; bad "train default set"; fi
for m in pop trending itemknn fusion; do
  [ -s "$D/models/$m.rfm" ] && ok "$m.rfm written" || bad "$m.rfm written"
  grep -q "^trained $m: .* fit " "$T/train.out" && ok "$m summary line" || bad "$m summary line"
done

# users file: header, tab columns, blank line, unknown user
printf 'user\nb\t1\n\nz\nd\n' > "$T/users.txt"
if "$BIN" recommend --data "$D" --users "$T/users.txt" --k 3 --model pop \
    > "$T/rec.out" 2> "$T/rec.err"; then ok "recommend runs"; else cat "$T/rec.err"; bad "recommend runs"; fi
printf 'b\ti3,i4,i5\nz\ti1,i2,i3\nd\ti1,i2,i3\n' > "$T/rec.want"
cmp -s "$T/rec.out" "$T/rec.want" && ok "pop lists, input order, history excluded" \
  || { diff "$T/rec.out" "$T/rec.want"; bad "pop lists"; }
grep -q "3 users, 1 unknown" "$T/rec.err" && ok "unknown users counted" || { cat "$T/rec.err"; bad "unknown count"; }

# default served model is the fused one; never a history item
"$BIN" recommend --data "$D" --user c --k 10 > "$T/c.out" 2> "$T/c.err" || bad "recommend --user"
grep -q "model fusion" "$T/c.err" && ok "fusion served by default" || { cat "$T/c.err"; bad "default model"; }
grep -Eq '^c	' "$T/c.out" && ! grep -Eq '(	|,)(i1|i4)(,|$)' "$T/c.out" && ok "fusion excludes history" \
  || { cat "$T/c.out"; bad "fusion excludes history"; }
"$BIN" recommend --data "$D" --user c --k 10 --model itemknn > "$T/c.out" 2> "$T/c.err" || bad "recommend --user"
grep -Eq '^c	' "$T/c.out" && ! grep -Eq '(	|,)(i1|i4)(,|$)' "$T/c.out" && ok "itemknn excludes history" \
  || { cat "$T/c.out"; bad "itemknn excludes history"; }

# events imported after training are honoured
printf 'b\ti3\t1\t300\n' > "$T/more.tsv"
"$BIN" import --quiet --data "$D" --interactions "$T/more.tsv" > /dev/null 2>&1
"$BIN" recommend --data "$D" --user b --k 1 --model pop 2> /dev/null > "$T/b.out"
[ "$(cat "$T/b.out")" = "$(printf 'b\ti4')" ] && ok "new events excluded without retraining" \
  || { cat "$T/b.out"; bad "new events excluded"; }

# tuned parameters file, then --params
mkdir -p "$D/params"
printf '# tuned\nk=7\n' > "$D/params/itemknn.params"
"$BIN" train --quiet --data "$D" --model itemknn > "$T/t2.out" 2>&1
grep -q "k=7 " "$T/t2.out" && ok "params file applied" || { cat "$T/t2.out"; bad "params file"; }
"$BIN" train --quiet --data "$D" --model itemknn --params k=9 > "$T/t3.out" 2>&1
grep -q "k=9 " "$T/t3.out" && ok "--params overrides the file" || { cat "$T/t3.out"; bad "--params"; }

# usage errors exit 2, missing model exits 1
"$BIN" train --quiet --data "$D" --model nosuch > /dev/null 2>&1; [ $? -eq 2 ] && ok "unknown model: 2" || bad "unknown model status"
"$BIN" train --quiet --data "$D" --model itemknn --params k=0 > /dev/null 2>&1; [ $? -eq 2 ] && ok "bad --params: 2" || bad "bad params status"
"$BIN" recommend --data "$D" --k 3 > /dev/null 2>&1; [ $? -eq 2 ] && ok "no users: 2" || bad "no users status"
"$BIN" recommend --data "$D" --user a --model ials > /dev/null 2>&1; [ $? -eq 1 ] && ok "untrained model: 1" || bad "untrained model status"

# warm start: ials from a previous ials model, matched by id
"$BIN" train --quiet --data "$D" --model ials --params factors=4,iterations=3 > /dev/null 2>&1 \
  && cp "$D/models/ials.rfm" "$T/prev.rfm" || bad "train ials"
"$BIN" train --data "$D" --model ials --params factors=4,iterations=1 --init-from "$T/prev.rfm" \
  > "$T/warm.out" 2>&1 && grep -q "event=ials.warm_start users=4/4 items=5/5" "$T/warm.out" \
  && ok "--init-from warm-starts ials" || { cat "$T/warm.out"; bad "--init-from"; }
"$BIN" train --quiet --data "$D" --model pop --init-from "$T/prev.rfm" > /dev/null 2>&1
[ $? -eq 2 ] && ok "--init-from with pop: 2" || bad "--init-from pop status"
"$BIN" train --quiet --data "$D" --model ials --params factors=8 --init-from "$T/prev.rfm" \
  > /dev/null 2> "$T/wf.err"; rc=$?
[ $rc -eq 2 ] && grep -q "factors=4, this one factors=8" "$T/wf.err" && ok "--init-from factors mismatch" \
  || { cat "$T/wf.err"; bad "--init-from factors mismatch"; }
"$BIN" train --quiet --data "$D" --model mf --init-from "$T/prev.rfm" > /dev/null 2> "$T/wm.err"
[ $? -eq 2 ] && grep -q "not a fitted mf model" "$T/wm.err" && ok "--init-from: mf refuses an ials source" \
  || { cat "$T/wm.err"; bad "--init-from mf from ials"; }
"$BIN" train --quiet --data "$D" --model ials --init-from "$T/nosuch.rfm" > /dev/null 2>&1
[ $? -eq 1 ] && ok "--init-from missing file: 1" || bad "--init-from missing file status"

# fm takes the users table (demographics) as user side features
printf 'id\tgender\tage\tcountry\tsegment\na\tF\t30\tDE\tvip\nb\tM\t61\tFR\tnew\n' > "$T/users.tsv"
"$BIN" import --quiet --data "$D" --users "$T/users.tsv" > /dev/null 2>&1 || bad "import users"
"$BIN" train --data "$D" --model fm --params factors=4,epochs=2 > "$T/fm.out" 2>&1 \
  && grep -q "event=fm.fit .* user_side=8 " "$T/fm.out" && ok "fm uses the users table" \
  || { cat "$T/fm.out"; bad "fm user side features"; }

# ials's recency term needs event times: data without them gets a warning
printf 'user\titem\na\tx\na\ty\nb\tx\nb\tz\nc\ty\n' > "$T/nots.tsv"
"$BIN" import --quiet --data "$T/nots" --interactions "$T/nots.tsv" > /dev/null 2>&1 || bad "import no-ts"
"$BIN" train --data "$T/nots" --model ials > "$T/nots.out" 2>&1 \
  && grep -q "event=ials.recency .*same time.*recency=0,reg=28" "$T/nots.out" \
  && ok "ials warns when the events carry no times" || { cat "$T/nots.out"; bad "ials no-ts warning"; }
"$BIN" train --data "$T/nots" --model ials --params recency=0,reg=28 > "$T/nots2.out" 2>&1 \
  && ! grep -q "event=ials.recency" "$T/nots2.out" && ok "no warning with recency=0" \
  || { cat "$T/nots2.out"; bad "ials no-ts recency=0"; }

# a truncated model file fails cleanly
head -c 100 "$D/models/pop.rfm" > "$T/p" && cp "$T/p" "$D/models/pop.rfm"
"$BIN" recommend --data "$D" --user a --model pop > /dev/null 2> "$T/trunc.err"; rc=$?
[ $rc -eq 1 ] && grep -q "truncated\|format" "$T/trunc.err" && ok "truncated model file rejected" \
  || { cat "$T/trunc.err"; bad "truncated model file"; }

[ $fails -eq 0 ] && echo "all passed" || echo "$fails failed"
exit $((fails > 0))
