# serverlib.sh - helpers for the server tests (source after testlib.sh;
# needs $BIN and $T):
#   rf_shop DIR            generate the demo shop and import it into DIR/d
#   start_server ARGS...   start `recfuse serve --listen 127.0.0.1:0 ARGS` in
#                          the background; sets PID, PORT, URL (0 or 1)
#   stop_server            SIGTERM, wait; returns the server's exit status
#   req METHOD PATH [BODY] one request; sets CODE and BODY ($KEY, when set,
#                          is sent as the API key)
#   wait_jobs              wait for every background job of the shell
rf_shop() {
  "$BIN" gen --quiet --out "$1/shop" --preset demo --seed 1 > /dev/null 2>&1 &&
  "$BIN" import --quiet --data "$1/d" --interactions "$1/shop/interactions.tsv" \
    --items "$1/shop/items.tsv" --users "$1/shop/users.tsv" > /dev/null 2>&1
}

start_server() {
  : > "$T/serve.out"
  "$BIN" serve --listen 127.0.0.1:0 "$@" > "$T/serve.out" 2> "$T/serve.err" &
  PID=$!
  PORT=
  for _ in $(seq 1 200); do
    PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$T/serve.out")
    [ -n "$PORT" ] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.05
  done
  if [ -z "$PORT" ]; then
    echo "server did not start:"; cat "$T/serve.err"; bad "server start"; return 1
  fi
  URL=http://127.0.0.1:$PORT
  return 0
}

stop_server() {
  kill -TERM "$PID" 2>/dev/null
  wait "$PID"
}

req() {
  local args=(-s -o "$T/req.body" -w '%{http_code}' -X "$1")
  [ -n "${KEY:-}" ] && args+=(-H "Authorization: Bearer $KEY")
  if [ $# -ge 3 ]; then
    printf '%s' "$3" > "$T/req.in"
    args+=(-H 'Content-Type: application/json' --data-binary @"$T/req.in")
  fi
  CODE=$(curl "${args[@]}" "$URL$2")
  BODY=$(cat "$T/req.body")
}

wait_jobs() {
  local j
  for j in $(jobs -p); do [ "$j" != "${PID:-}" ] && wait "$j"; done
}
