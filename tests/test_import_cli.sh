#!/usr/bin/env bash
# test_import_cli.sh - drives `recfuse import` and `recfuse info` end to end:
# exit codes, the exact messages on stderr, summaries on stdout.
# usage: test_import_cli.sh RECFUSE SRCDIR   (temp files under $RF_TEST_TMP or mktemp)
set -u
BIN=${1:?usage: test_import_cli.sh RECFUSE SRCDIR}
. "$(dirname "$0")/testlib.sh"
rf_tmpdir import-cli

fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
ok() { pass=$((pass + 1)); } # silent: this test prints only failures

# run NAME EXPECTED_STATUS CMD... : captures $OUT / $ERR
run() {
  local name=$1 want=$2
  shift 2
  "$@" >"$T/out" 2>"$T/err"
  local got=$?
  OUT=$(cat "$T/out")
  ERR=$(grep -v '^ts=' "$T/err")
  if [ "$got" != "$want" ]; then
    fail "$name: exit $got, want $want; stderr: $ERR"
  else
    ok
  fi
}
# has NAME HAYSTACK NEEDLE
has() {
  case "$2" in
    *"$3"*) ok ;;
    *) fail "$1: expected to find [$3] in [$2]" ;;
  esac
}
# same NAME GOT WANT
same() {
  if [ "$2" == "$3" ]; then ok; else fail "$1: got [$2], want [$3]"; fi
}

D="$T/data"
printf 'user\titem\ttype\tvalue\ttimestamp\nu1\ti1\tview\t1\t1700000000\nu1\ti2\tpurchase\t2\t2024-03-01T12:00:00Z\nu2\ti1\trating\t4.5\t1700000100\n' >"$T/ev.tsv"

run help 0 "$BIN" import --help
has help "$OUT" "usage: recfuse import --data DIR"
run nodata 2 "$BIN" import --interactions "$T/ev.tsv"
same nodata "$ERR" "recfuse import: --data DIR is required (see 'recfuse import --help')"
run nothing 2 "$BIN" import --data "$D"
same nothing "$ERR" "recfuse import: nothing to import: give --interactions, --items, --users or --movielens"
run badtype 2 "$BIN" import --data "$D" --interactions "$T/ev.tsv" --type teleport
same badtype "$ERR" "recfuse import: --type: unknown event type 'teleport' (view, click, cart, purchase, rating, custom)"
run badformat 2 "$BIN" import --data "$D" --interactions "$T/ev.tsv" --format xml
same badformat "$ERR" "recfuse import: --format: unknown format 'xml' (tsv, csv or jsonl)"
run unknownopt 2 "$BIN" import --data "$D" --interactions "$T/ev.tsv" --bogus 1
has unknownopt "$ERR" "unknown option --bogus"
run info_missing 1 "$BIN" info --data "$T/none"
same info_missing "$ERR" "recfuse info: data directory '$T/none' does not exist (import data into it first)"

# Happy path, then a re-import that adds nothing.
run import 0 "$BIN" import --data "$D" --interactions "$T/ev.tsv"
has import "$OUT" "interactions $T/ev.tsv: 3 rows, 3 added, 0 duplicates, 0 rejected"
has import "$OUT" "store $D: 2 users, 2 items, 3 events"
run reimport 0 "$BIN" import --data "$D" --interactions "$T/ev.tsv" --quiet
has reimport "$OUT" "3 rows, 0 added, 3 duplicates, 0 rejected"
run info 0 "$BIN" info --data "$D"
has info "$OUT" "users     2"
has info "$OUT" "items     2"
has info "$OUT" "events    3 (view 1, purchase 1, rating 1)"
has info "$OUT" "time      2023-11-14T22:13:20Z .. 2024-03-01T12:00:00Z"
has info "$OUT" "models    0"
mkdir -p "$D/models" && printf 'x' >"$D/models/pop.rfm"
run info_json 0 "$BIN" info --data "$D" --json
has info_json "$OUT" '"events": 3'
has info_json "$OUT" '"name": "pop"'

# A bad row: exact message, exit 1, nothing of the file imported.
printf 'user\titem\tvalue\ttimestamp\nu3\ti3\t1\t10\nu4\ti4\t1\tabc\n' >"$T/bad.tsv"
run bad 1 "$BIN" import --data "$D" --interactions "$T/bad.tsv"
same bad "$ERR" "recfuse import: $T/bad.tsv:3: timestamp: not a time: 'abc'
recfuse import: nothing from $T/bad.tsv was imported"
run info_after_bad 0 "$BIN" info --data "$D"
has info_after_bad "$OUT" "users     2"
has info_after_bad "$OUT" "events    3 ("

# --skip-bad: the good row lands, the bad one is written with its reason.
run skip 0 "$BIN" import --data "$D" --interactions "$T/bad.tsv" --skip-bad "$T/rejects.txt"
has skip "$OUT" "2 rows, 1 added, 0 duplicates, 1 rejected"
has skip "$ERR" "recfuse import: 1 bad rows skipped, see $T/rejects.txt"
same skipfile "$(cat "$T/rejects.txt")" "$T/bad.tsv:3	timestamp: not a time: 'abc'	u4	i4	1	abc"

# CSV forced on a .txt name, no header, default type override.
printf '"u5","i5",2,100\r\n"u,6",i5,3,101\r\n' >"$T/ev.txt"
run csv 0 "$BIN" import --data "$D" --interactions "$T/ev.txt" --format csv --no-header --type purchase
has csv "$OUT" "2 rows, 2 added"
# JSONL by extension.
printf '{"user":"u7","item":"i1","event":"click","ts":"2024-01-01"}\n' >"$T/ev.jsonl"
run jsonl 0 "$BIN" import --data "$D" --interactions "$T/ev.jsonl"
has jsonl "$OUT" "1 rows, 1 added"
run info2 0 "$BIN" info --data "$D"
has info2 "$OUT" "events    7 (view 1, click 1, purchase 3, rating 2)"

# Items and users in the same run; missing file names the file.
printf 'id\ttitle\tcategory\tprice\ni1\tShoe\tShoes\t10\ni9\tHat\tHats\t5\n' >"$T/items.tsv"
printf 'id,gender,age\nu1,F,30\n' >"$T/users.csv"
run catalog 0 "$BIN" import --data "$D" --items "$T/items.tsv" --users "$T/users.csv"
has catalog "$OUT" "items $T/items.tsv: 2 rows, 1 added, 1 updated, 0 rejected"
has catalog "$OUT" "users $T/users.csv: 1 rows, 0 added, 1 updated, 0 rejected"
run missing 1 "$BIN" import --data "$T/fresh" --interactions "$T/nope.tsv"
[ ! -e "$T/fresh" ] && ok || fail "missing: $T/fresh was created"
same missing "$ERR" "recfuse import: cannot open '$T/nope.tsv': No such file or directory
recfuse import: nothing from $T/nope.tsv was imported"

# MovieLens layout.
M="$T/ml"
mkdir -p "$M"
printf '1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n' >"$M/u.item"
printf '1|24|M|technician|85711\n' >"$M/u.user"
printf '1\t1\t5\t881250949\n' >"$M/u.data"
run ml 0 "$BIN" import --data "$T/mldata" --movielens "$M"
has ml "$OUT" "movielens $M: 3 rows, 3 added"
run ml_missing 1 "$BIN" import --data "$T/mldata" --movielens "$T/none"
has ml_missing "$ERR" "MovieLens directory '$T/none': cannot read '$T/none/u.item'"

echo "test_import_cli: $pass checks passed, $fails failed"
[ "$fails" -eq 0 ]
