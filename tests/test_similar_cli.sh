#!/usr/bin/env bash
# test_similar_cli.sh - end-to-end test of `recfuse similar`: hand-computed
# cosine similarities of a tiny store, unknown ids, --items from stdin,
# and the errors for a missing model and bad options.
# Usage: test_similar_cli.sh path/to/recfuse [source dir]
set -uo pipefail
BIN=$1
. "$(dirname "$0")/testlib.sh"
rf_tmpdir similar
D=$T/d
# Columns: a={u1,u2,u3} b={u1,u2} c={u3,u4} d={u4}.
# cos(a,b) = 2/sqrt(3*2) = 0.816497, cos(a,c) = 1/sqrt(3*2) = 0.408248,
# cos(c,d) = 1/sqrt(2*1) = 0.707107, cos(a,d) = 0 (not a neighbour).
printf 'user\titem\ttype\tvalue\ttimestamp\nu1\ta\tpurchase\t1\t100\nu1\tb\tpurchase\t1\t101\nu2\ta\tpurchase\t1\t102\nu2\tb\tpurchase\t1\t103\nu3\ta\tpurchase\t1\t104\nu3\tc\tpurchase\t1\t105\nu4\tc\tpurchase\t1\t106\nu4\td\tpurchase\t1\t107\n' > "$T/ev.tsv"
"$BIN" import --quiet --data "$D" --interactions "$T/ev.tsv" > /dev/null 2>&1 || bad "import"

if "$BIN" similar --data "$D" --item a > /dev/null 2> "$T/err"; then bad "untrained model refused"
elif grep -q "recfuse train --data $D --model itemknn" "$T/err"; then ok "untrained model: error names the train command"
else cat "$T/err"; bad "untrained model: error names the train command"; fi

"$BIN" train --quiet --data "$D" --model itemknn --params sim=cosine,shrink=0,q=1,k=10 > /dev/null 2>&1 \
  || bad "train itemknn"
"$BIN" similar --data "$D" --item a,zz,c --k 2 > "$T/out" 2> "$T/err"
cat > "$T/want" <<'EOF'
item	similar	rank	similarity
a	b	1	0.816497
a	c	2	0.408248
c	d	1	0.707107
c	a	2	0.408248
EOF
if diff "$T/want" "$T/out"; then ok "similarities match the hand-computed cosines"; else bad "similarities"; fi
if grep -q "item=zz" "$T/err"; then ok "unknown id reported on stderr"; else bad "unknown id reported"; fi

printf 'b\n\nd\n' | "$BIN" similar --data "$D" --items - --k 5 > "$T/out2" 2>/dev/null
if [ "$(sed -n 2p "$T/out2")" = "$(printf 'b\ta\t1\t0.816497')" ] && grep -q "^d	c	1	0.707107$" "$T/out2" \
  && ! grep -q "^b	d" "$T/out2"; then ok "--items from stdin; zero similarity is no neighbour"
else cat "$T/out2"; bad "--items from stdin"; fi

"$BIN" similar --data "$D" --item zz > /dev/null 2>&1
[ $? -eq 1 ] && ok "only unknown ids: exit 1" || bad "only unknown ids: exit 1"
"$BIN" similar --data "$D" > /dev/null 2>&1
[ $? -eq 2 ] && ok "no --item/--items: usage error" || bad "no --item: usage error"
"$BIN" similar --data "$D" --item a --k 0 > /dev/null 2>&1
[ $? -eq 2 ] && ok "--k 0 refused" || bad "--k 0 refused"
rf_finish
