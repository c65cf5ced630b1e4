#!/usr/bin/env bash
# Admin API latency on a large journal (results and how to read them: BENCHMARKS.md).
#
# Fills a journal with $EVENTS events (examples/fill_journal.rs: rows written directly with
# rusqlite, not through HTTP), starts the release daemon over it, and times each request below
# $REPEAT times with curl (`time_total`, one keep-alive-less request each), printing the median,
# the 90th percentile and the extremes. Target: median < 50 ms for each.
#
#   /api/events                         first page (50)
#   /api/events?source=selldone         a filtered page
#   /api/events?canonical=order.disputed  a rare value (0.1 % of events)
#   /api/events?q=buyer4242@example.com a customer's email
#   /api/events?q=ada                   a name prefix (5 % of events)
#   /api/events?order=o-123456          an order id
#   /api/events?rule=flag-disputes      a rule fired (0.1 %)
#   /api/events?status=dead             events with a dead letter (0.005 %)
#   /api/events?before=<deep cursor>    a page 900,000 events deep
#   /api/events/{id}                    one event with its trace and jobs
#   /api/jobs?status=dead, /api/rules
#   /ui/events, /ui/events/{id}         when the console is there (skipped with a note if not)
#
# Knobs (environment): EVENTS=1000000 REPEAT=21 SKIP_BUILD=1 (use the binaries already built)
#   JOURNAL_DIR=dir (fill once there and reuse it: filling 1,000,000 takes a few minutes)
#   KEEP=1 (keep the temp dir with the daemon's log)
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${EVENTS:-1000000}
REPEAT=${REPEAT:-21}
TOKEN=bench-admin-token

if [[ -z "${SKIP_BUILD:-}" ]]; then
    cargo build --release --bin storeflow --example fill_journal
fi
BIN_DIR="${CARGO_TARGET_DIR:-target}/release"
DAEMON="$BIN_DIR/storeflow"
FILL="$BIN_DIR/examples/fill_journal"
[[ -x "$DAEMON" && -x "$FILL" ]] || { echo "missing $DAEMON or $FILL" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/storeflow-admin-bench.XXXXXX")
DATA=${JOURNAL_DIR:-$WORK/data}
DAEMON_PID=
cleanup() {
    if [[ -n "$DAEMON_PID" ]] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$DAEMON_PID" 2>/dev/null || true
    fi
    if [[ -n "${KEEP:-}" ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$DATA"
if [[ ! -s "$DATA/storeflow.db" ]]; then
    echo "filling $DATA with $EVENTS events…"
    "$FILL" "$DATA" "$EVENTS" 2> "$WORK/fill.log"
fi
du -h "$DATA/storeflow.db"

mkdir -p "$WORK/rules"
cat > "$WORK/rules/shop.yaml" <<'YAML'
rules:
  - name: notify-paid
    on: order.paid
    actions:
      - log: { message: "paid {{ order.id }}" }
  - name: flag-disputes
    on: order.disputed
    actions:
      - flag: { kind: dispute, note: chargeback }
YAML
cat > "$WORK/storeflow.yaml" <<YAML
listen: 127.0.0.1:0
data_dir: $DATA
rules_dir: $WORK/rules
retention: 3650d
sources:
  sellix:
    secret: whsec_bench
  selldone:
    token: bench-token
admin:
  token: $TOKEN
YAML

"$DAEMON" serve -c "$WORK/storeflow.yaml" 2> "$WORK/daemon.log" &
DAEMON_PID=$!
PORT=
for _ in $(seq 600); do
    PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/daemon.log" | head -n1)
    [[ -n "$PORT" ]] && break
    kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$WORK/daemon.log" >&2; exit 2; }
    sleep 0.1
done
[[ -n "$PORT" ]] || { echo "the daemon did not start" >&2; cat "$WORK/daemon.log" >&2; exit 2; }
BASE="http://127.0.0.1:$PORT"

api() { curl -sf -H "Authorization: Bearer $TOKEN" "$BASE$1"; }

# One request's seconds, checking the status.
once() {
    local out
    out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -H "Authorization: Bearer $TOKEN" "$BASE$1")
    [[ "${out%% *}" == 200 ]] || { echo "$1 answered ${out%% *}" >&2; exit 1; }
    echo "${out#* }"
}

# REPEAT timings of a path → "median p90 min max" in ms.
timed() {
    local path=$1
    once "$path" > /dev/null   # warm the page cache for this query once
    for _ in $(seq "$REPEAT"); do once "$path"; done | sort -g | awk -v n="$REPEAT" '
        { t[NR] = $1 * 1000 }
        END { printf "%8.1f %8.1f %8.1f %8.1f", t[int((n + 1) / 2)], t[int(n * 0.9 + 0.5)], t[1], t[n] }'
}

FIRST=$(api "/api/events?limit=1")
NEXT=$(echo "$FIRST" | sed -n 's/.*"next":"\([0-9]*\)".*/\1/p')
DEEP=$(( NEXT - 900000 > 1 ? NEXT - 900000 : 2 ))
EVENT=$(api "/api/events?rule=notify-paid&limit=1" | sed -n 's/.*"id":"\(evt_[^"]*\)".*/\1/p')

PATHS=(
    "/api/events"
    "/api/events?source=selldone"
    "/api/events?canonical=order.disputed"
    "/api/events?q=buyer4242@example.com"
    "/api/events?q=ada"
    "/api/events?order=o-123456"
    "/api/events?rule=flag-disputes"
    "/api/events?status=dead"
    "/api/events?before=$DEEP"
    "/api/events/$EVENT"
    "/api/jobs?status=dead"
    "/api/rules"
)
UI_STATUS=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$BASE/ui/events")
if [[ "$UI_STATUS" == 200 ]]; then
    PATHS+=("/ui/events" "/ui/events/$EVENT")
else
    UI_NOTE="/ui/events answered $UI_STATUS: the console is not in this build, its pages were skipped"
fi

echo
echo "$EVENTS events, $REPEAT requests each, ms (curl time_total):"
printf '%-48s %8s %8s %8s %8s\n' request median p90 min max
for p in "${PATHS[@]}"; do
    printf '%-48s %s\n' "$p" "$(timed "$p")"
done
[[ -n "${UI_NOTE:-}" ]] && echo "$UI_NOTE"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
