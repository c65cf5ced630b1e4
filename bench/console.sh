#!/usr/bin/env bash
# Console pages on a journal of 1,000,000 events: fills a fresh journal with `sqlite3` (Debian
# package `sqlite3`), starts `storeflow serve` on it and times each page (median of 5 requests
# with curl, after one warm-up). Results: BENCHMARKS.md, "Console pages".
#
# Knobs (environment): EVENTS=1000000  PORT=18190  BIN=target/release/storeflow (built unless
# SKIP_BUILD=1; BIN=target/debug/storeflow for a quick look)  KEEP=1 (keep the temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-1000000}
PORT=${PORT:-18190}
BIN=${BIN:-target/release/storeflow}
if [[ -z "${SKIP_BUILD:-}" && "$BIN" == target/release/storeflow ]]; then
    cargo build --release --bin storeflow
fi
DIR=$(mktemp -d)
PID=""
cleanup() {
    [[ -n "$PID" ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    [[ -n "${KEEP:-}" ]] && echo "kept $DIR" || rm -rf "$DIR"
}
trap cleanup EXIT
cat >"$DIR/storeflow.yaml" <<YAML
listen: 127.0.0.1:$PORT
data_dir: $DIR/data
rules_dir: $PWD/rules
templates_dir: $PWD/templates
plugins_dir: $PWD/plugins
sources:
  sellix:
    secret: whsec_test
YAML
serve() {
    "$BIN" serve -c "$DIR/storeflow.yaml" >>"$DIR/log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && return; sleep 0.1; done
    echo "the daemon did not start; see $DIR/log" >&2; exit 1
}
# One real event (trace, job) through the daemon, which also creates the schema.
serve
FIXTURE=tests/fixtures/sellix/order_paid.json
SIG=$("$BIN" sign --secret whsec_test "$FIXTURE")
REAL=$(curl -s -XPOST "http://127.0.0.1:$PORT/hooks/sellix" -H "x-sellix-event: order:paid" \
    -H "x-sellix-signature: $SIG" --data-binary "@$FIXTURE" | sed 's/.*"event_id":"\([^"]*\)".*/\1/')
sleep 1
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
NOW=$(sqlite3 "$DIR/data/storeflow.db" "SELECT received_at FROM events WHERE id = '$REAL'")
echo "filling $EVENTS events (30 days, ~$((EVENTS / 30)) in the last 24 h)…"
sqlite3 "$DIR/data/storeflow.db" <<SQL
PRAGMA synchronous=OFF;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < $EVENTS)
INSERT INTO events (id, source, kind, topic, canonical, received_at, order_id, dedupe_key,
                    payload, order_view, processed_at, shop, secret)
SELECT printf('evt_bench_%08d', i), CASE i % 3 WHEN 0 THEN 'selldone' ELSE 'sellix' END,
  'order:paid', 'sellix/order:paid', 'order.paid', $NOW - ($EVENTS - i) * (2592000000 / $EVENTS) - 1,
  printf('o-%d', i), printf('dk-%d', i),
  CAST(printf('{"event":"order:paid","data":{"uniqid":"o-%d","total":12.5}}', i) AS BLOB),
  printf('{"id":"o-%d","status":"COMPLETED","total":12.5,"currency":"USD","customer":{"email":"c%d@example.com","name":"Customer %d","phone":""},"items":[],"shop":{"id":"1","name":"s"}}', i, i % 50000, i % 50000),
  $NOW, 'default', 'current'
FROM n;
COMMIT;
SQL
serve
MID=$(printf 'evt_bench_%08d' $((EVENTS / 2)))
echo "median of 5 (s), $BIN:"
for page in "/ui/" "/ui/events" "/ui/events?before=$((EVENTS / 2))" "/ui/events?order=o-777" \
    "/ui/events?q=c123%40example.com" "/ui/events?q=customer%2012" "/ui/events?source=selldone" \
    "/ui/events/$REAL" "/ui/events/$MID" "/ui/jobs?status=dead" "/ui/flags"; do
    curl -s -o /dev/null "http://127.0.0.1:$PORT$page"
    t=$(for _ in 1 2 3 4 5; do curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$PORT$page"; done | sort -n | sed -n 3p)
    printf '%s  %s\n' "$t" "$page"
done
