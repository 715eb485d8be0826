#!/usr/bin/env bash
# import_bench.sh - `recfuse import` vs the sqlite3 shell's `.import` of the same file.
#
# usage: bench/import_bench.sh RECFUSE FILE [--repeat N] [--workdir DIR]
#                              [--shell-cache same|default] [--keep]
#
# FILE: TSV interactions, 5 columns user,item,type,value,timestamp (as
# `recfuse gen` writes, header line) or 4 columns user,item,value,timestamp
# (header optional). Both imports start from an empty directory, read the
# same (pre-warmed) file and run one after the other in this run.
#
# The sqlite3 side gets an equivalent table: the same key and the same
# number and shape of indexes as recfuse's events table -
#   events(user TEXT, item TEXT, [type TEXT,] value REAL, ts INTEGER,
#          PRIMARY KEY(user, item, [type,] ts)) WITHOUT ROWID
#   CREATE INDEX events_ts ON events(ts); CREATE INDEX events_item ON events(item)
# with the same durability settings (journal_mode=WAL, synchronous=FULL)
# and, by default, the same page cache recfuse gives itself for a bulk
# import (3 x file size, within 64 MiB..2 GiB; --shell-cache default keeps
# the shell's 2 MiB). The shell runs `.mode tabs` + `.import` (one
# transaction). recfuse additionally maintains the users and items tables.
#
# Prints both wall times (median of N runs), events/s, CPU and peak RSS, and
# the ratio recfuse/sqlite3 (the goal is <= 1.5). Never fails on speed.
set -euo pipefail

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 2 ] || usage
BIN=$1
FILE=$2
shift 2
REPEAT=1
WORK=""
SHELL_CACHE=same
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) REPEAT=$2; shift 2 ;;
    --workdir) WORK=$2; shift 2 ;;
    --shell-cache) SHELL_CACHE=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage ;;
    *) echo "import_bench: unknown option $1" >&2; exit 2 ;;
  esac
done
command -v sqlite3 >/dev/null || { echo "import_bench: sqlite3 shell not found (apt-get install sqlite3)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "import_bench: $BIN is not executable" >&2; exit 1; }
[ -r "$FILE" ] || { echo "import_bench: cannot read $FILE" >&2; exit 1; }
FILE=$(cd "$(dirname "$FILE")" && pwd)/$(basename "$FILE")
if [ -z "$WORK" ]; then WORK=$(mktemp -d "${TMPDIR:-/tmp}/import-bench.XXXXXX"); fi
mkdir -p "$WORK"
[ "$KEEP" = 1 ] || trap 'rm -rf "$WORK"' EXIT

# Layout: header? number of columns?
first=$(head -n 1 "$FILE" | tr -d '\r')
header=0
case "$(echo "$first" | tr 'A-Z' 'a-z')" in
  *user*item*) header=1 ;;
esac
ncols=$(head -n $((header + 1)) "$FILE" | tail -n 1 | tr -d '\r' | awk -F'\t' '{print NF}')
case "$ncols" in
  5) cols="user TEXT NOT NULL, item TEXT NOT NULL, type TEXT NOT NULL, value REAL, ts INTEGER NOT NULL"
     key="user, item, type, ts" ;;
  4) cols="user TEXT NOT NULL, item TEXT NOT NULL, value REAL, ts INTEGER NOT NULL"
     key="user, item, ts" ;;
  *) echo "import_bench: expected 4 or 5 tab-separated columns, got $ncols" >&2; exit 1 ;;
esac
bytes=$(stat -c %s "$FILE")
rows=$(($(wc -l <"$FILE") - header))
cache_kib=$((bytes / 1024 * 3))
[ $cache_kib -lt 65536 ] && cache_kib=65536
[ $cache_kib -gt 2097152 ] && cache_kib=2097152
cache_pragma="PRAGMA cache_size=-$cache_kib;"
[ "$SHELL_CACHE" = default ] && cache_pragma=""
skip=""
[ $header = 1 ] && skip="--skip 1"

cat "$FILE" >/dev/null # warm the page cache for both

now() { date +%s.%N; }
# time_cmd OUTVAR CMD... : wall seconds into OUTVAR, cpu/rss into $LAST_CPU/$LAST_RSS
time_cmd() {
  local __var=$1
  shift
  local t0 t1
  t0=$(now)
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f "%U %S %M" -o "$WORK/time.txt" "$@"
    read -r u s m <"$WORK/time.txt"
    LAST_CPU=$(echo "$u + $s" | bc -l)
    LAST_RSS=$((m / 1024))
  else
    "$@"
    LAST_CPU=NA
    LAST_RSS=NA
  fi
  t1=$(now)
  printf -v "$__var" '%.3f' "$(echo "$t1 - $t0" | bc -l)"
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

rf_times=()
sq_times=()
for r in $(seq 1 "$REPEAT"); do
  rm -rf "$WORK/rf" "$WORK/sq.db" "$WORK/sq.db-wal" "$WORK/sq.db-shm"
  time_cmd t "$BIN" import --data "$WORK/rf" --interactions "$FILE" --quiet >"$WORK/rf.out" 2>"$WORK/rf.err" ||
    { echo "import_bench: recfuse import failed:" >&2; cat "$WORK/rf.err" >&2; exit 1; }
  rf_times+=("$t")
  rf_cpu=$LAST_CPU
  rf_rss=$LAST_RSS
  cat >"$WORK/sq.sql" <<EOF
PRAGMA journal_mode=WAL;
PRAGMA synchronous=FULL;
$cache_pragma
CREATE TABLE events($cols, PRIMARY KEY($key)) WITHOUT ROWID;
CREATE INDEX events_ts ON events(ts);
CREATE INDEX events_item ON events(item);
.mode tabs
.import $skip $FILE events
EOF
  time_cmd t sqlite3 "$WORK/sq.db" <"$WORK/sq.sql" >"$WORK/sq.out" 2>"$WORK/sq.err" || true
  sq_times+=("$t")
  sq_cpu=$LAST_CPU
  sq_rss=$LAST_RSS
  echo "run $r: recfuse ${rf_times[-1]} s, sqlite3 ${sq_times[-1]} s" >&2
done

rf_events=$(sqlite3 "$WORK/rf/recfuse.db" 'SELECT count(*) FROM events')
sq_events=$(sqlite3 "$WORK/sq.db" 'SELECT count(*) FROM events')
sq_errors=$(grep -c . "$WORK/sq.err" || true)
rf_t=$(median "${rf_times[@]}")
sq_t=$(median "${sq_times[@]}")
rate() { echo "$rows / $1" | bc -l | awk '{printf "%.0f", $1}'; }

echo "file:            $FILE ($rows rows, $ncols columns, header=$header, $((bytes / 1048576)) MiB)"
echo "machine:         $(nproc) cpus, $(uname -sr), sqlite3 $(sqlite3 --version | cut -d' ' -f1)"
echo "recfuse import:  ${rf_t} s  $(rate "$rf_t") events/s  cpu ${rf_cpu} s  rss ${rf_rss} MiB  ($rf_events events stored)"
echo "sqlite3 .import: ${sq_t} s  $(rate "$sq_t") events/s  cpu ${sq_cpu} s  rss ${sq_rss} MiB  ($sq_events rows stored, $sq_errors error lines, cache ${SHELL_CACHE})"
echo "ratio recfuse/sqlite3: $(echo "$rf_t / $sq_t" | bc -l | awk '{printf "%.2f", $1}') (goal <= 1.5; median of $REPEAT)"
echo "command: $0 $BIN $FILE --repeat $REPEAT --shell-cache $SHELL_CACHE"
