#!/usr/bin/env bash
# test_server_replay.sh - the server's live counters survive a model load:
# events posted after the served models were trained keep counting in
# /v1/popular, /v1/trending and /v1/bought-together across an admin reload
# and a restart (they are replayed from the store), and once a retrained
# model has seen them they are not counted twice. A forgotten customer is
# not served from their trained vector after a restart either.
# Usage: test_server_replay.sh path/to/recfuse [source dir]
set -uo pipefail
BIN=$1
. "$(dirname "$0")/testlib.sh"
. "$(dirname "$0")/serverlib.sh"
rf_tmpdir serverreplay
export RECFUSE_THREADS=2

rf_shop "$T" || { echo "setup failed"; exit 1; }
D=$T/d
"$BIN" train --quiet --data "$D" --model pop,trending,rules,ials > /dev/null 2>&1 || bad "train"

# 12 new customers buy the brand-new items NEWA and NEWB together, after the
# newest event the models trained on (the demo shop ends in 2024).
TS=$(( $(date +%s) - 3600 ))
events() {
  local first=1 u
  printf '['
  for u in $(seq 1 12); do
    [ $first = 1 ] || printf ','
    first=0
    printf '{"user":"rp%d","item":"NEWA","type":"purchase","ts":%d},' "$u" "$((TS + u))"
    printf '{"user":"rp%d","item":"NEWB","type":"purchase","ts":%d}' "$u" "$((TS + u + 5))"
  done
  printf ']'
}
score_of() { # ITEM in the JSON list BODY -> its score, or "none"
  jq -r --arg i "$1" '[.items[] | select(.item == $i) | .score][0] // "none"' <<< "$BODY"
}
snapshot() { # the three lists the live counters feed, one line each
  req GET "/v1/popular?k=1000"; local p=$BODY
  req GET "/v1/trending?k=5"; local t=$BODY
  req GET "/v1/bought-together/NEWA?k=3"; local b=$BODY
  printf '%s\n%s\n%s\n' "$(jq -c '.items' <<< "$p")" "$(jq -c '.items' <<< "$t")" \
    "$(jq -c '.items' <<< "$b")"
}

start_server --data "$D" --watch-ms 0 || { rf_finish; exit 1; }
req POST /v1/events "$(events)"
[ "$CODE" = 200 ] && ok "12 customers' purchases of NEWA and NEWB posted" || bad "post: $CODE $BODY"
req GET "/v1/popular?k=1000"
[ "$(score_of NEWA)" = 12 ] && ok "live popularity: NEWA counted 12 times" || bad "popular before: $BODY"
BEFORE=$(snapshot)
jq -e 'length > 0' <<< "$(sed -n 3p <<< "$BEFORE")" > /dev/null &&
  sed -n 3p <<< "$BEFORE" | grep -q NEWB && ok "live co-occurrence: NEWB bought together with NEWA" ||
  bad "bought-together before: $BEFORE"

KEY= req POST /v1/admin/reload
[ "$CODE" = 200 ] && ok "admin reload" || bad "reload: $CODE $BODY"
AFTER=
for _ in $(seq 1 50); do # the writer replays right after the publish
  AFTER=$(snapshot)
  [ "$AFTER" = "$BEFORE" ] && break
  sleep 0.1
done
[ "$AFTER" = "$BEFORE" ] && ok "after a reload: popular, trending and bought-together unchanged" ||
  bad "after reload: $AFTER / before: $BEFORE"
req GET /metrics
grep -q '^recfuse_events_replayed_total 24$' <<< "$BODY" && ok "metrics: 24 events replayed" ||
  bad "metrics: $(grep replayed <<< "$BODY")"
grep -q 'serve.replay.*events=24' "$T/serve.err" && ok "the replay is logged" || bad "no replay log line"
# A trained customer is forgotten: after the restart below the model file
# still holds their vector, and it must not be used.
req GET /v1/recommend/nobody-at-all
COLD=$(jq -c '[.items[].item]' <<< "$BODY")
req GET /v1/recommend/u2
[ "$(jq -c '[.items[].item]' <<< "$BODY")" != "$COLD" ] && ok "u2 has a personal list" || bad "u2: $BODY"
req DELETE /v1/users/u2
[ "$CODE" = 200 ] || bad "delete u2: $CODE"
stop_server || bad "stop"

start_server --data "$D" --watch-ms 0 || { rf_finish; exit 1; }
AFTER=
for _ in $(seq 1 50); do
  AFTER=$(snapshot)
  [ "$AFTER" = "$BEFORE" ] && break
  sleep 0.1
done
[ "$AFTER" = "$BEFORE" ] && ok "after a restart: the same lists" || bad "after restart: $AFTER"
req GET /v1/recommend/rp1
[ "$CODE" = 200 ] && ! jq -r '.items[].item' <<< "$BODY" | grep -qx 'NEWA' &&
  ok "after a restart: a replayed customer's purchase stays out of their list" || bad "rp1: $CODE $BODY"
req GET /v1/recommend/u2
[ "$CODE" = 200 ] && [ "$(jq -c '[.items[].item]' <<< "$BODY")" = "$COLD" ] &&
  ok "after a restart: a forgotten customer gets the cold-start list, not their trained vector's" ||
  bad "forgotten u2 after restart: $BODY"

# Retrain with the server running: the new models have seen the 24 events,
# so the live counters must not add them again.
"$BIN" train --quiet --data "$D" --model pop,trending,rules,ials > /dev/null 2>&1 || bad "retrain"
KEY= req POST /v1/admin/reload
for _ in $(seq 1 50); do
  req GET /metrics
  grep -q '^recfuse_events_replayed_total' <<< "$BODY" &&
    grep -q 'serve.replay version=2 events=0' "$T/serve.err" && break
  sleep 0.1
done
grep -q 'serve.replay version=2 events=0' "$T/serve.err" && ok "after a retrain: nothing left to replay" ||
  bad "replay after retrain: $(grep serve.replay "$T/serve.err")"
req GET "/v1/popular?k=1000"
[ "$(score_of NEWA)" = 12 ] && ok "after a retrain: NEWA's popularity is 12 (the model's count, not 24)" ||
  bad "popular after retrain: $BODY"
req POST /v1/events '[{"user":"rp99","item":"NEWA","type":"purchase"}]'
req GET "/v1/popular?k=1000"
[ "$(score_of NEWA)" = 13 ] && ok "after a retrain: a new purchase still counts at once" ||
  bad "popular after a post: $BODY"
stop_server || bad "stop"

rf_finish
