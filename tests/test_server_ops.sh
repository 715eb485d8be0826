#!/usr/bin/env bash
# test_server_ops.sh - end-to-end test of `recfuse serve` operations: API
# keys per role (401/403), config-file errors, hot reload under load with
# zero failed requests (POST /v1/admin/reload and the file watch, including
# a better model appearing), background retrain, and durability: kill -9
# during a stream of event posts, then every acknowledged event is in the
# store after a restart.
# Usage: test_server_ops.sh path/to/recfuse [source dir]
set -uo pipefail
BIN=$1
. "$(dirname "$0")/testlib.sh"
. "$(dirname "$0")/serverlib.sh"
rf_tmpdir serverops
export RECFUSE_THREADS=2

rf_shop "$T" || { echo "setup failed"; exit 1; }
D=$T/d
"$BIN" train --quiet --data "$D" --model pop,itemknn > /dev/null 2>&1 || bad "train"

# ---- auth ------------------------------------------------------------------------
cat > "$T/serve.conf" <<'EOF'
# recfuse serve configuration
read_key  = read-key-0001
write_key = write-key-0001
admin_key = admin-key-0001
max_body = 1M
EOF
start_server --data "$D" --config "$T/serve.conf" --watch-ms 0 || { rf_finish; exit 1; }
grep -q 'no API keys' "$T/serve.err" && bad "open-server warning with keys set" || ok "auth: no open-server warning when keys are set"
KEY= req GET /health
[ "$CODE" = 200 ] && ok "auth: /health needs no key" || bad "health: $CODE"
KEY= req GET "/v1/recommend/u1"
[ "$CODE" = 401 ] && jq -e '.error.message | contains("missing API key")' <<< "$BODY" > /dev/null \
  && ok "auth: no key -> 401 (missing)" || bad "no key: $CODE $BODY"
KEY=not-a-real-key req GET "/v1/recommend/u1"
[ "$CODE" = 401 ] && jq -e '.error.message | contains("invalid API key")' <<< "$BODY" > /dev/null \
  && ok "auth: wrong key -> 401 (invalid)" || bad "wrong key: $CODE $BODY"
KEY=read-key-000 req GET "/v1/recommend/u1"
[ "$CODE" = 401 ] && ok "auth: a prefix of a key -> 401" || bad "prefix key: $CODE"
KEY=read-key-0001 req GET "/v1/recommend/u1"
[ "$CODE" = 200 ] && ok "auth: read key reads" || bad "read key: $CODE $BODY"
KEY=read-key-0001 req GET /metrics
[ "$CODE" = 200 ] && ok "auth: read key reads /metrics" || bad "read metrics: $CODE"
KEY=read-key-0001 req POST /v1/events '{"user":"u1","item":"i1"}'
[ "$CODE" = 403 ] && jq -e '.error.message | contains("write role")' <<< "$BODY" > /dev/null \
  && ok "auth: read key on POST /v1/events -> 403 naming the role" || bad "read->write: $CODE $BODY"
KEY=read-key-0001 req DELETE /v1/users/u5
[ "$CODE" = 403 ] && ok "auth: read key on DELETE user -> 403" || bad "read delete: $CODE"
KEY=write-key-0001 req POST /v1/events '{"user":"u1","item":"i1","ts":1234}'
[ "$CODE" = 200 ] && ok "auth: write key posts events" || bad "write: $CODE $BODY"
KEY=write-key-0001 req GET "/v1/popular"
[ "$CODE" = 200 ] && ok "auth: write key also reads" || bad "write reads: $CODE"
KEY=write-key-0001 req POST /v1/admin/reload
[ "$CODE" = 403 ] && jq -e '.error.message | contains("admin role")' <<< "$BODY" > /dev/null \
  && ok "auth: write key on reload -> 403" || bad "write reload: $CODE $BODY"
KEY=admin-key-0001 req POST /v1/admin/reload
[ "$CODE" = 200 ] && [ "$(jq .model_version <<< "$BODY")" = 2 ] && ok "auth: admin key reloads" || bad "admin: $CODE $BODY"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'X-API-Key: read-key-0001' "$URL/v1/trending")
[ "$code" = 503 ] && ok "auth: X-API-Key header; trending without a trending model -> 503" || bad "x-api-key: $code"
KEY=read-key-0001 req GET /v1/trending
jq -e '.error.message | contains("recfuse train --data") and contains("--model trending")' <<< "$BODY" > /dev/null \
  && ok "503 names the train command" || bad "503 message: $BODY"
stop_server || bad "stop"
unset KEY

printf 'read_key = short\n' > "$T/bad1.conf"
printf 'listen = 127.0.0.1:0\nflavour = vanilla\n' > "$T/bad2.conf"
"$BIN" serve --data "$D" --config "$T/bad1.conf" > /dev/null 2> "$T/bad1.err"; rc1=$?
"$BIN" serve --data "$D" --config "$T/bad2.conf" > /dev/null 2> "$T/bad2.err"; rc2=$?
[ $rc1 != 0 ] && grep -q "bad1.conf:1: read_key" "$T/bad1.err" && [ $rc2 != 0 ] && grep -q "bad2.conf:2: flavour: unknown key" "$T/bad2.err" \
  && ok "config: bad lines refused with FILE:LINE: KEY" || bad "config errors: $(cat "$T/bad1.err" "$T/bad2.err")"
"$BIN" serve --data "$D" --model bogus --listen 127.0.0.1:0 > /dev/null 2> "$T/bogus.err"
[ $? != 0 ] && grep -q "'bogus' is not a model name" "$T/bogus.err" && ok "serve: unknown --model refused" || bad "bogus model: $(cat "$T/bogus.err")"
"$BIN" serve --data "$T/nowhere" --listen 127.0.0.1:0 > /dev/null 2> "$T/nodir.err"
[ $? != 0 ] && grep -q "does not exist" "$T/nodir.err" && ok "serve: missing data directory is an error" || bad "nodir"

# ---- hot reload under load, file watch ----------------------------------------------
start_server --data "$D" --watch-ms 200 --threads 4 || { rf_finish; exit 1; }
v0=$(curl -s "$URL/health" | jq .model_version)
for w in 1 2 3 4; do
  ( end=$((SECONDS + 6))
    while [ $SECONDS -lt $end ]; do
      curl -s -o /dev/null -w '%{http_code}\n' "$URL/v1/recommend/u$((RANDOM % 900 + 3))?k=10"
      curl -s -o /dev/null -w '%{http_code}\n' "$URL/v1/similar/i$((RANDOM % 300 + 1))"
    done > "$T/load.$w" ) &
done
for i in 1 2 3 4 5; do
  curl -s -o /dev/null -X POST "$URL/v1/admin/reload"
  sleep 0.3
done
# retrain in the background: the watch sees the new file and swaps it in
"$BIN" train --quiet --data "$D" --model itemknn --params k=50 > /dev/null 2>&1
sleep 0.8
"$BIN" train --quiet --data "$D" --model ials --params factors=16,iterations=4 > /dev/null 2>&1
wait_jobs
total=$(cat "$T"/load.* | wc -l); okc=$(cat "$T"/load.* | grep -c '^200$')
[ "$total" -gt 20 ] && [ "$okc" = "$total" ] && ok "hot reload under load: $total requests, all 200" \
  || bad "hot reload: $okc of $total ok ($(sort "$T"/load.* | uniq -c | tr '\n' ' '))"
sleep 0.6
H=$(curl -s "$URL/health")
v1=$(jq .model_version <<< "$H")
[ "$v1" -ge $((v0 + 7)) ] && ok "reloads: version $v0 -> $v1 (5 admin reloads + 2 watched files)" || bad "versions: $v0 -> $v1"
[ "$(jq -r .models.recommend <<< "$H")" = ials ] && ok "file watch: a newly trained better model (ials) is served" \
  || bad "watch: $H"
grep -q '^recfuse_model_reloads_total{result="ok"} [1-9]' <<< "$(curl -s "$URL/metrics")" && ok "metrics: reloads counted" || bad "reload metric"
# a corrupt model file: the reload fails, the old models keep serving
cp "$D/models/ials.rfm" "$T/ials.good"
head -c 1000 "$T/ials.good" > "$D/models/ials.rfm.tmp" && mv "$D/models/ials.rfm.tmp" "$D/models/ials.rfm"
req POST /v1/admin/reload
[ "$CODE" = 500 ] && jq -e '.error.message | contains("still serving")' <<< "$BODY" > /dev/null \
  && ok "corrupt model: reload 500, previous version kept" || bad "corrupt reload: $CODE $BODY"
req GET "/v1/recommend/u5?k=3"
[ "$CODE" = 200 ] && [ "$(jq -r .model <<< "$BODY")" = ials ] && ok "corrupt model: still serving" || bad "after corrupt: $CODE"
cp "$T/ials.good" "$D/models/ials.rfm.tmp" && mv "$D/models/ials.rfm.tmp" "$D/models/ials.rfm"
stop_server || bad "stop after reloads"

# ---- background retrain ------------------------------------------------------------
start_server --data "$D" --retrain-every 1s --watch-ms 0 || { rf_finish; exit 1; }
v0=$(curl -s "$URL/health" | jq .model_version)
for _ in $(seq 1 60); do
  grep -q '^recfuse_retrains_total{result="ok"} [1-9]' <<< "$(curl -s "$URL/metrics")" && break
  sleep 0.25
done
sleep 0.3
v1=$(curl -s "$URL/health" | jq .model_version)
grep -q '^recfuse_retrains_total{result="ok"} [1-9]' <<< "$(curl -s "$URL/metrics")" && [ "$v1" -gt "$v0" ] \
  && ok "retrain: '$BIN train' ran in the background and the result was loaded ($v0 -> $v1)" || bad "retrain: $v0 -> $v1"
stop_server; rc=$?
[ $rc = 0 ] && ok "retrain: clean stop" || bad "stop during retrain: $rc"

# ---- kill -9 during a stream of event posts -------------------------------------------
start_server --data "$D" --threads 4 || { rf_finish; exit 1; }
for w in 1 2 3; do
  ( i=0
    while :; do
      i=$((i + 1))
      ts=$((1500000000 + w * 1000000 + i))
      code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "[{\"user\":\"crash$w\",\"item\":\"i$((i % 300 + 1))\",\"ts\":$ts},{\"user\":\"crash$w\",\"item\":\"c$i\",\"ts\":$ts}]" "$URL/v1/events")
      [ "$code" = 200 ] && echo "$ts" || break
    done > "$T/acked.$w" ) &
done
sleep 1.5
kill -9 "$PID"
wait "$PID" 2>/dev/null
wait_jobs
acked=$(cat "$T"/acked.* | wc -l)
start_server --data "$D" || { rf_finish; exit 1; }
missing=0
for w in 1 2 3; do
  sqlite3 "$D/recfuse.db" "SELECT e.ts FROM events e JOIN users u ON u.rid=e.user WHERE u.id='crash$w' GROUP BY e.ts HAVING count(*) = 2" | sort > "$T/have.$w"
  sort "$T/acked.$w" > "$T/want.$w"
  missing=$((missing + $(comm -23 "$T/want.$w" "$T/have.$w" | wc -l)))
done
[ "$acked" -gt 2 ] && [ $missing = 0 ] && ok "kill -9: all $acked acknowledged posts (2 events each) are in the store after restart" \
  || bad "kill -9: $missing of $acked acknowledged posts missing"
req GET "/v1/recommend/crash1?k=3"
[ "$CODE" = 200 ] && [ "$(jq .history <<< "$BODY")" -gt 0 ] && ok "kill -9: restarted server serves the crash user's history" || bad "after restart: $BODY"
stop_server || bad "final stop"

rf_finish
