#!/usr/bin/env bash
# test_server.sh - end-to-end test of `recfuse serve`: the real server on a
# free loopback port, driven with curl. Every route, the real-time effect
# of events (the item leaves the next list, the user is refolded, live
# popularity and co-occurrence move), catalog/user writes, forget-user,
# every bad-input class, metrics, concurrent clients and a clean SIGTERM.
# Auth, hot reload under load, the file watch, retrain and the kill -9
# durability check are in test_server_ops.sh.
# Usage: test_server.sh path/to/recfuse [source dir]
set -uo pipefail
BIN=$1
. "$(dirname "$0")/testlib.sh"
. "$(dirname "$0")/serverlib.sh"
rf_tmpdir server
export RECFUSE_THREADS=2

rf_shop "$T" || { echo "setup failed"; exit 1; }
D=$T/d
"$BIN" train --quiet --data "$D" --model pop,trending,itemknn,rules,ials > /dev/null 2>&1 \
  || bad "train"
start_server --data "$D" --threads 4 --max-body 65536 || { rf_finish; exit 1; }

# ---- health, recommend ------------------------------------------------------
req GET /health
[ "$CODE" = 200 ] && [ "$(jq -r .status <<< "$BODY")" = ok ] && \
  [ "$(jq -r .models.recommend <<< "$BODY")" = ials ] && ok "health: ok, serving ials (best trained)" \
  || bad "health: $CODE $BODY"

req GET "/v1/recommend/u1?k=10"
[ "$CODE" = 200 ] && [ "$(jq '.items | length' <<< "$BODY")" = 10 ] && ok "recommend: 10 items" \
  || bad "recommend: $CODE $BODY"
# The same list as the batch CLI with the same model (store history, same scores).
cli=$("$BIN" recommend --quiet --data "$D" --user u1 --k 10 --model ials | cut -f2)
srv=$(jq -r '[.items[].item] | join(",")' <<< "$BODY")
[ "$cli" = "$srv" ] && ok "recommend: equals 'recfuse recommend' ($srv)" || bad "recommend: cli $cli vs server $srv"
hist=$(sqlite3 "$D/recfuse.db" "SELECT DISTINCT i.id FROM events e JOIN items i ON i.rid=e.item JOIN users u ON u.rid=e.user WHERE u.id='u1'")
clash=0; for it in $(jq -r '.items[].item' <<< "$BODY"); do grep -qx "$it" <<< "$hist" && clash=1; done
[ $clash = 0 ] && ok "recommend: no item of the user's history" || bad "recommend: history item in list"

req GET "/v1/recommend/u1?k=3&explain=1"
[ "$(jq -r '.items[0].explain.text' <<< "$BODY")" != null ] && [ "$(jq -r '.items[0].explain.contrib[0].share' <<< "$BODY")" = 1 ] \
  && ok "recommend: explain=1 gives reasons" || bad "explain: $BODY"

req GET "/v1/recommend/nobody-at-all?k=5"
pop=$("$BIN" recommend --quiet --data "$D" --user nobody-at-all --k 5 --model pop | cut -f2)
[ "$CODE" = 200 ] && [ "$(jq -r .cold_start <<< "$BODY")" = true ] && \
  [ "$(jq -r '[.items[].item] | join(",")' <<< "$BODY")" = "$pop" ] \
  && ok "recommend: unknown user gets the cold-start (popularity) list" || bad "cold start: $BODY vs $pop"

# filters: every item passes, compared with the catalog (one query)
req GET "/v1/recommend/u1?k=20&category=Electronics&min_price=10&max_price=300&in_stock=1"
n=$(jq '.items | length' <<< "$BODY")
list=$(jq -r '[.items[].item | @sh] | join(",")' <<< "$BODY")
fail=$(sqlite3 "$D/recfuse.db" "SELECT count(*) FROM items WHERE id IN ($list) AND NOT ('/' || category || '/' LIKE '%/Electronics/%' AND price BETWEEN 10 AND 300 AND stock > 0)")
[ "$CODE" = 200 ] && [ "$n" -gt 0 ] && [ -n "$list" ] && [ "$fail" = 0 ] && ok "recommend: category/price/stock filters hold ($n items)" \
  || bad "filters: $CODE n=$n fail=$fail $BODY"
first=$(jq -r '.items[0].item' <<< "$(curl -s "$URL/v1/recommend/u1?k=3")")
req GET "/v1/recommend/u1?k=3&exclude=$first,nonexistent"
jq -r '.items[].item' <<< "$BODY" | grep -qx "$first" && bad "exclude" || ok "recommend: exclude= drops the item"

# ---- similar, bought-together, popular, trending ----------------------------
req GET "/v1/similar/i52?k=5"
[ "$CODE" = 200 ] && [ "$(jq '.items | length' <<< "$BODY")" -ge 1 ] && \
  ! jq -r '.items[].item' <<< "$BODY" | grep -qx i52 && ok "similar: neighbours of i52" || bad "similar: $BODY"
req GET "/v1/similar/no-such-item"
[ "$CODE" = 404 ] && jq -e '.error.message | contains("no-such-item")' <<< "$BODY" >/dev/null \
  && ok "similar: unknown item -> 404 naming it" || bad "similar unknown: $CODE $BODY"
req GET "/v1/popular?k=5"
[ "$CODE" = 200 ] && [ "$(jq -r '[.items[].item] | join(",")' <<< "$BODY")" = "$pop" ] \
  && ok "popular: the pop model's order" || bad "popular: $BODY vs $pop"
req GET "/v1/popular?k=5&category=Books"
nb=$(for it in $(jq -r '.items[].item' <<< "$BODY"); do sqlite3 "$D/recfuse.db" "SELECT category FROM items WHERE id='$it'"; done | grep -vc '^Books')
[ "$CODE" = 200 ] && [ "$nb" = 0 ] && ok "popular: category filter" || bad "popular category: $BODY"
req GET "/v1/trending?k=5"
[ "$CODE" = 200 ] && [ "$(jq -r .model <<< "$BODY")" = trending ] && [ "$(jq '.items | length' <<< "$BODY")" = 5 ] \
  && ok "trending: 5 items" || bad "trending: $BODY"

# ---- events: durable and in effect at once -----------------------------------
req GET "/v1/recommend/u1?k=5"
top=$(jq -r '.items[0].item' <<< "$BODY"); h0=$(jq .history <<< "$BODY"); before=$(jq -c '[.items[].item]' <<< "$BODY")
req POST /v1/events "{\"user\":\"u1\",\"item\":\"$top\",\"type\":\"purchase\",\"ts\":1800000000}"
[ "$CODE" = 200 ] && [ "$(jq .stored <<< "$BODY")" = 1 ] && ok "events: one event stored" || bad "post: $CODE $BODY"
[ "$(sqlite3 "$D/recfuse.db" "SELECT count(*) FROM events e JOIN users u ON u.rid=e.user JOIN items i ON i.rid=e.item WHERE u.id='u1' AND i.id='$top' AND e.ts=1800000000")" = 1 ] \
  && ok "events: the acknowledged event is in the store" || bad "event not in the store"
req GET "/v1/recommend/u1?k=5"
after=$(jq -c '[.items[].item]' <<< "$BODY")
! jq -r '.items[].item' <<< "$BODY" | grep -qx "$top" && [ "$(jq .history <<< "$BODY")" = $((h0 + 1)) ] \
  && ok "real time: $top left u1's next list (history $h0 -> $((h0 + 1)))" || bad "real time: $BODY"
# refold: the rest of the list is re-scored from the new history (ials fold-in)
s_before=$(curl -s "$URL/v1/recommend/u1?k=5" | jq -c '[.items[].score]')
[ "$before" != "$after" ] && ok "real time: list re-ranked after the event" || bad "no change"
req POST /v1/events "{\"user\":\"u1\",\"item\":\"$top\",\"type\":\"purchase\",\"ts\":1800000000}"
[ "$(jq .duplicates <<< "$BODY")" = 1 ] && ok "events: a repeated event is a duplicate" || bad "dup: $BODY"
# batch forms; unknown users and items are accepted (cold start until retrain)
req POST /v1/events '{"events":[{"user":"newbie","item":"brand-new","type":"view","ts":"2027-01-01T00:00:00Z"},{"user":"newbie","item":"i7","type":"cart","value":2}]}'
[ "$CODE" = 200 ] && [ "$(jq .stored <<< "$BODY")" = 2 ] && ok "events: {\"events\": [...]} with new user and item" || bad "batch: $BODY"
req GET "/v1/recommend/newbie?k=5"
[ "$CODE" = 200 ] && ! jq -r '.items[].item' <<< "$BODY" | grep -qx i7 && [ "$(jq .history <<< "$BODY")" = 1 ] \
  && ok "real time: a new user is served from their first events" || bad "newbie: $BODY"
# live popularity: 30 new users buy a rarely bought item -> it tops /v1/popular
rare=$(sqlite3 "$D/recfuse.db" "SELECT i.id FROM items i LEFT JOIN events e ON e.item=i.rid GROUP BY i.rid ORDER BY count(DISTINCT e.user), i.rid LIMIT 1")
toppop=$(curl -s "$URL/v1/popular?k=1" | jq '.items[0].score')
body=$(for i in $(seq 1 $((${toppop%.*} + 5))); do printf '{"user":"fan%d","item":"%s","type":"purchase"},' "$i" "$rare"; done)
req POST /v1/events "[${body%,}]"
req GET "/v1/popular?k=1"
[ "$(jq -r '.items[0].item' <<< "$BODY")" = "$rare" ] && ok "real time: live popularity moves ($rare now first)" || bad "popularity: $BODY"
# live co-occurrence: 4 users buy i52 then a rare item in one session
base=$(curl -s "$URL/v1/bought-together/i52?k=50" | jq "[.items[] | select(.item==\"$rare\") | .count] | add // 0")
for i in 1 2 3 4; do
  req POST /v1/events "[{\"user\":\"co$i\",\"item\":\"i52\",\"type\":\"purchase\",\"ts\":1900000000},{\"user\":\"co$i\",\"item\":\"$rare\",\"type\":\"purchase\",\"ts\":1900000060}]"
done
req GET "/v1/bought-together/i52?k=50"
now=$(jq "[.items[] | select(.item==\"$rare\") | .count] | add // 0" <<< "$BODY")
[ "$now" = $((base + 4)) ] && ok "real time: co-occurrence i52 <-> $rare counted ($base -> $now)" || bad "co-occur: $base -> $now $BODY"

# ---- items and users -------------------------------------------------------
req PUT /v1/items/gadget-1 '{"title":"Gadget","category":"Toys/Robots","brand":"Acme","price":19.5,"stock":3,"attrs":{"color":"red"}}'
[ "$CODE" = 201 ] && ok "PUT item: 201 created" || bad "put item: $CODE $BODY"
[ "$(sqlite3 "$D/recfuse.db" "SELECT category||'|'||price||'|'||stock FROM items WHERE id='gadget-1'")" = "Toys/Robots|19.5|3" ] \
  && ok "PUT item: stored" || bad "put item not stored"
req PUT /v1/items/gadget-1 '{"title":"Gadget 2","category":"Toys/Robots","price":21}'
[ "$CODE" = 200 ] && [ "$(sqlite3 "$D/recfuse.db" "SELECT coalesce(stock,'null') FROM items WHERE id='gadget-1'")" = null ] \
  && ok "PUT item: replaces the row (200)" || bad "put replace: $CODE"
item=$(curl -s "$URL/v1/recommend/u3?k=1&in_stock=1" | jq -r '.items[0].item')
req PATCH "/v1/items/$item" '{"stock":0,"price":1.25}'
[ "$CODE" = 200 ] && [ "$(sqlite3 "$D/recfuse.db" "SELECT price||'|'||stock FROM items WHERE id='$item'")" = "1.25|0" ] \
  && ok "PATCH item: price and stock stored" || bad "patch: $CODE $BODY"
req GET "/v1/recommend/u3?k=5&in_stock=1"
! jq -r '.items[].item' <<< "$BODY" | grep -qx "$item" && ok "PATCH item: out of stock leaves in_stock lists at once" || bad "patch effect: $BODY"
req GET "/v1/recommend/u3?k=5&max_price=1.5"
jq -r '.items[].item' <<< "$BODY" | grep -qx "$item" && ok "PATCH item: new price filters at once" || bad "patch price: $BODY"
req PATCH /v1/items/never-seen '{"stock":1}'
[ "$CODE" = 404 ] && ok "PATCH unknown item: 404" || bad "patch unknown: $CODE"
req PUT /v1/users/vip-1 '{"gender":"F","age":41,"country":"DE","segment":"gold","attrs":{"tier":2}}'
[ "$CODE" = 201 ] && [ "$(sqlite3 "$D/recfuse.db" "SELECT age||country FROM users WHERE id='vip-1'")" = 41DE ] \
  && ok "PUT user: stored" || bad "put user: $CODE $BODY"
req PUT /v1/users/vip-2 '{"gender":"F","attrs":[1,2]}'
[ "$CODE" = 400 ] && echo "$BODY" | grep -q 'attrs' && echo "$BODY" | grep -q 'JSON object' \
  && ok "PUT user: attrs not an object is a 400 naming the field" || bad "put user attrs: $CODE $BODY"
req PUT /v1/items/gadget-2 '{"title":"G2","attrs":"red"}'
[ "$CODE" = 400 ] && echo "$BODY" | grep -q 'attrs' \
  && ok "PUT item: attrs not an object is a 400 naming the field" || bad "put item attrs: $CODE $BODY"
# forget-user: events and profile gone, served as unknown from now on
[ "$(sqlite3 "$D/recfuse.db" "SELECT count(*) FROM events e JOIN users u ON u.rid=e.user WHERE u.id='u2'")" -gt 0 ] || bad "u2 has no events"
req DELETE /v1/users/u2
[ "$CODE" = 200 ] && [ "$(jq .events_deleted <<< "$BODY")" -gt 0 ] && ok "DELETE user: $(jq .events_deleted <<< "$BODY") events deleted" || bad "delete: $BODY"
[ "$(sqlite3 "$D/recfuse.db" "SELECT (SELECT count(*) FROM users WHERE id='u2') + (SELECT count(*) FROM events WHERE user NOT IN (SELECT rid FROM users))")" = 0 ] \
  && ok "DELETE user: no row and no event left in the store" || bad "forget: rows left"
req GET "/v1/recommend/u2?k=5"
[ "$(jq -r .cold_start <<< "$BODY")" = true ] && [ "$(jq -r '[.items[].item] | join(",")' <<< "$BODY")" = "$pop" ] \
  && ok "DELETE user: the trained vector is no longer used (cold start)" || bad "forgotten user: $BODY"
req DELETE /v1/users/u2
[ "$CODE" = 404 ] && ok "DELETE user again: 404" || bad "delete twice: $CODE"

# ---- bad requests: 4xx JSON naming the problem, server unharmed --------------
check_err() { # expected-code substring description
  if [ "$CODE" = "$1" ] && jq -e ".error.message | contains(\"$2\")" <<< "$BODY" > /dev/null 2>&1; then ok "$3 -> $1"
  else bad "$3: got $CODE $BODY"; fi
}
req GET /v1/nothing; check_err 404 "/v1/nothing" "unknown route"
req GET /; check_err 404 "no route" "root path"
req DELETE "/v1/recommend/u1"; check_err 405 "DELETE" "bad method"
req POST /v1/popular '{}'; check_err 405 "POST" "POST on a read route"
req GET /v1/events; check_err 405 "GET" "GET on /v1/events"
req GET "/v1/recommend/u1?k=abc"; check_err 400 "'k'" "k not an integer"
req GET "/v1/recommend/u1?k=0"; check_err 400 "'k'" "k out of range"
req GET "/v1/recommend/u1?k=100000"; check_err 400 "'k'" "k too large"
req GET "/v1/recommend/u1?kk=3"; check_err 400 "'kk'" "unknown parameter"
req GET "/v1/recommend/u1?min_price=x"; check_err 400 "'min_price'" "price not a number"
req GET "/v1/recommend/u1?min_price=50&max_price=10"; check_err 400 "'min_price'" "min_price above max_price"
req GET "/v1/recommend/u1?in_stock=maybe"; check_err 400 "'in_stock'" "bad boolean"
req GET "/v1/recommend/u1?explain=2"; check_err 400 "'explain'" "bad explain"
req GET "/v1/popular?k=-1"; check_err 400 "'k'" "popular k negative"
req GET "/v1/similar/i52?foo=1"; check_err 400 "'foo'" "similar unknown parameter"
req POST /v1/events '{"user":"u1",'; check_err 400 "invalid JSON" "malformed JSON"
req POST /v1/events ''; check_err 400 "empty" "empty body"
req POST /v1/events '"hello"'; check_err 400 "body" "JSON string body"
req POST /v1/events '[]'; check_err 400 "empty" "empty event list"
req POST /v1/events '{"user":["u1"],"item":"i1"}'; check_err 400 "event.user" "user of the wrong type"
req POST /v1/events '[{"user":"u1","item":"i1"},{"user":"u1"}]'; check_err 400 "events[1].item" "missing item (named by index)"
req POST /v1/events '{"user":"u1","item":"i1","type":"teleport"}'; check_err 400 "event.type" "unknown type"
req POST /v1/events '{"user":"u1","item":"i1","value":"high"}'; check_err 400 "event.value" "value not a number"
req POST /v1/events '{"user":"u1","item":"i1","ts":"yesterday"}'; check_err 400 "event.ts" "bad time"
req POST /v1/events '{"user":"u1","item":"i1","colour":"red"}'; check_err 400 "colour" "unknown event field"
req POST /v1/events '{"user":"","item":"i1"}'; check_err 400 "event.user" "empty id"
req POST /v1/events '{"events":{"user":"u1"}}'; check_err 400 "events" "events not an array"
req POST /v1/events '{"user":"u1","item":"i1","user":"u2"}'; check_err 400 "invalid JSON" "duplicate key"
req PUT /v1/items/x1 '{"price":"cheap"}'; check_err 400 "price" "price of the wrong type"
req PUT /v1/items/x1 '{"price":-3}'; check_err 400 "price" "negative price"
req PUT /v1/items/x1 '{"weight":3}'; check_err 400 "weight" "unknown item field"
req PATCH /v1/items/i1 '{"title":"t"}'; check_err 400 "title" "PATCH of a field other than price/stock"
req PATCH /v1/items/i1 '{}'; check_err 400 "price and/or stock" "empty PATCH"
req PATCH /v1/items/i1 '{"stock":1.5}'; check_err 400 "stock" "fractional stock"
req PUT /v1/users/x1 '{"age":300}'; check_err 400 "age" "age out of range"
req PUT /v1/users/x1 '[1]'; check_err 400 "body" "user body not an object"
big=$(head -c 70000 /dev/zero | tr '\0' 'a')
req POST /v1/events "{\"user\":\"$big\"}"; check_err 413 "max_body" "body over --max-body"
code=$(printf '{"user":"u1","item":"i1"}' | curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: text/plain' --data-binary @- "$URL/v1/events")
[ "$code" = 415 ] && ok "non-JSON Content-Type -> 415" || bad "content type: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X GET -H 'Content-Type: application/json' --data-binary '{"a":1}' "$URL/v1/popular")
[ "$code" = 400 ] && ok "body on a GET -> 400" || bad "GET with body: $code"
long=$(head -c 600 /dev/zero | tr '\0' 'u')
req GET "/v1/recommend/$long"; check_err 400 "longer than 512" "id over 512 bytes"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/recommend/%ff%fe%00x")
[ "$code" = 200 ] || [ "$code" = 400 ] && ok "binary bytes in the path: $code, no crash" || bad "binary path: $code"
printf 'GARBAGE /// HTTP/9.9\r\n\r\n' | timeout 2 bash -c "cat > /dev/tcp/127.0.0.1/$PORT" 2>/dev/null
req GET /health
[ "$CODE" = 200 ] && ok "server alive after every bad request" || bad "server died: $CODE"

# ---- metrics -----------------------------------------------------------------
M=$(curl -s "$URL/metrics")
grep -q '^recfuse_http_requests_total{route="recommend",status="200"} [1-9]' <<< "$M" && \
grep -q '^recfuse_http_requests_total{route="events",status="400"} [1-9]' <<< "$M" && \
grep -q '^recfuse_http_request_duration_seconds_bucket{route="recommend",status="200",le="+Inf"} [1-9]' <<< "$M" && \
grep -q '^recfuse_model_info{role="recommend",model="ials"} 1' <<< "$M" && \
grep -q '^recfuse_model_age_seconds{role="recommend",model="ials"} [0-9]' <<< "$M" \
  && ok "metrics: per-route/status counts, histograms, model name/version/age" || bad "metrics: $M"
stored=$(sqlite3 "$D/recfuse.db" "SELECT count(*) FROM events WHERE ts IN (1800000000, 1900000000, 1900000060)")
ing=$(grep '^recfuse_events_ingested_total' <<< "$M" | cut -d' ' -f2)
[ "$ing" -ge "$stored" ] && [ "$ing" -gt 30 ] && ok "metrics: events ingested ($ing)" || bad "ingested $ing"

# ---- concurrent clients ------------------------------------------------------
for w in 1 2 3 4 5 6; do
  ( for i in $(seq 1 20); do
      curl -s -o /dev/null -w '%{http_code}\n' "$URL/v1/recommend/u$((RANDOM % 900 + 3))?k=10"
      curl -s -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' \
        -d "{\"user\":\"w$w\",\"item\":\"i$((RANDOM % 300 + 1))\",\"ts\":$((1700000000 + i))}" "$URL/v1/events"
    done > "$T/conc.$w" ) &
done
wait_jobs
total=$(cat "$T"/conc.* | wc -l); okc=$(cat "$T"/conc.* | grep -c '^200$')
[ "$total" = 240 ] && [ "$okc" = 240 ] && ok "concurrency: 6 clients x 40 requests, all 200" || bad "concurrency: $okc/$total"
n=$(sqlite3 "$D/recfuse.db" "SELECT count(DISTINCT u.id||'/'||e.ts||'/'||e.item) FROM events e JOIN users u ON u.rid=e.user WHERE u.id LIKE 'w_' AND e.ts BETWEEN 1700000001 AND 1700000020")
[ "$n" -ge 100 ] && ok "concurrency: concurrent posts stored ($n distinct)" || bad "concurrent posts: $n"

# concurrent recommends (the pruned scan, on the event loops): the lists
# are those of the batch CLI
seq 3 42 | sed 's/^/u/' > "$T/users.txt"
"$BIN" recommend --quiet --data "$D" --users "$T/users.txt" --k 10 --model ials > "$T/cli.tsv"
for w in 1 2 3; do
  ( while read -r u; do
      printf '%s\t%s\n' "$u" "$(curl -s "$URL/v1/recommend/$u?k=10" | jq -r '[.items[].item] | join(",")')"
    done < "$T/users.txt" > "$T/srv.$w" ) &
done
wait_jobs
same=0; for w in 1 2 3; do cmp -s "$T/srv.$w" "$T/cli.tsv" && same=$((same + 1)); done
[ $same = 3 ] && ok "concurrency: 3 clients x 40 users, lists equal 'recfuse recommend'" \
  || { diff "$T/srv.1" "$T/cli.tsv" | head -5; bad "concurrent lists differ ($same of 3 equal)"; }

# ---- connections spread over the event loops (listen.c) ----------------------
# 8 keep-alive connections held open by this shell, plus the curl asking for
# /metrics: the 4 loops hold 3,2,2,2 - never one loop with most of them
# first the earlier clients' connections are gone (only this curl's own is open)
for _ in $(seq 1 40); do
  open=$(curl -s "$URL/metrics" | sed -n 's/^recfuse_http_connections{loop="[0-9]*"} //p' | awk '{n += $1} END {print n}')
  [ "$open" = 1 ] && break
  sleep 0.05
done
fds=()
for i in 1 2 3 4 5 6 7 8; do
  exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
  printf 'GET /health HTTP/1.1\r\nHost: t\r\n\r\n' >&"$fd"
  read -r -t 5 line <&"$fd"
  fds+=("$fd")
done
spread=
for _ in $(seq 1 40); do
  spread=$(curl -s "$URL/metrics" | sed -n 's/^recfuse_http_connections{loop="[0-9]*"} //p' | sort -n | tr '\n' ' ')
  [ "$spread" = "2 2 2 3 " ] && break
  sleep 0.05
done
[ "$spread" = "2 2 2 3 " ] && ok "connections: 9 open spread over 4 loops as 2,2,2,3" \
  || bad "connections per loop: '$spread' (want 2 2 2 3)"
for fd in "${fds[@]}"; do exec {fd}>&-; done

# ---- SIGTERM during a stream of posts: every acknowledged post stored, exit 0 --
( for i in $(seq 1 400); do
    body=$(for j in 1 2 3 4 5 6 7 8 9 10; do printf '{"user":"term","item":"i%d","ts":%d},' $j $((1600000000 + i * 10 + j)); done)
    code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "[${body%,}]" "$URL/v1/events")
    echo "$i $code"
    [ "$code" = 200 ] || break
  done > "$T/term.log" ) &
cpid=$!
sleep 1
stop_server; rc=$?
wait $cpid
[ $rc = 0 ] && ok "SIGTERM: exit status 0" || bad "SIGTERM exit $rc"
acked=$(grep -c ' 200$' "$T/term.log"); other=$(grep -v ' 200$' "$T/term.log" | cut -d' ' -f2)
stored=$(sqlite3 "$D/recfuse.db" "SELECT count(*) FROM events e JOIN users u ON u.rid=e.user WHERE u.id='term'")
[ "$acked" -gt 0 ] && [ "$stored" -ge $((acked * 10)) ] && [ "$stored" -le $(((acked + 1) * 10)) ] \
  && ok "SIGTERM: $acked posts acknowledged, all their events stored ($stored)" || bad "SIGTERM: acked $acked stored $stored"
[ -z "$other" ] || [ "$other" = 000 ] || [ "$other" = 503 ] && ok "SIGTERM: later posts refused, never half-done ($other)" \
  || bad "SIGTERM: post answered $other"
grep -q 'event=serve.stopped unfinished=0 ' "$T/serve.err" && ok "SIGTERM: no request left unfinished" || bad "unfinished requests"

rf_finish
