#!/usr/bin/env bash
# Open loop at $RATE req/s (default 2,000) against storeflow with no rules and the floor
# (examples/floor.rs) in a few modes, interleaved, ROUNDS times: how far storeflow's latency tail
# is from the least a durable receiver on the same stack does (BENCHMARKS.md, issue 11 fifth
# round). Knobs: ROUNDS=3 RATE=2000 DURATION=10 DAEMON=<storeflow binary>
#   MODES="sqlite:typed sqlite file:typed" SKIP_BUILD=1
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -n "${SKIP_BUILD:-}" ]] || cargo build --release --bins --examples
BIN=${CARGO_TARGET_DIR:-target}/release
DAEMON=${DAEMON:-$BIN/storeflow}
ROUNDS=${ROUNDS:-3} RATE=${RATE:-2000} DURATION=${DURATION:-10}
MODES=${MODES:-sqlite:typed sqlite file:typed}
W=$(mktemp -d "${TMPDIR:-/tmp}/storeflow-floor-open.XXXXXX")
declare -A ADDR=() PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
mkdir -p "$W/sf/data" "$W/sf/norules"
cat >"$W/sf/sf.yaml" <<YAML
listen: 127.0.0.1:0
data_dir: $W/sf/data
rules_dir: $W/sf/norules
sources:
  sellix:
    secret: whsec_test
intake:
  dedupe_window: 1s
YAML
"$DAEMON" serve -c "$W/sf/sf.yaml" 2>"$W/sf/log" &
PIDS[sf]=$!
NAMES=(sf)
for m in $MODES; do
    n=floor-${m/:/-}
    mkdir -p "$W/$n"
    parse=value; [[ "$m" == *:* ]] && parse=${m#*:}
    "$BIN/examples/floor" --listen 127.0.0.1:0 --secret whsec_test --mode "${m%%:*}" \
        --parse "$parse" --data "$W/$n" >"$W/$n/out" 2>&1 &
    PIDS[$n]=$!
    NAMES+=("$n")
done
for _ in $(seq 100); do
    ADDR[sf]=$(sed -n 's/.*listening on http:\/\/\(127\.0\.0\.1:[0-9]*\).*/\1/p' "$W/sf/log" | head -n1)
    [[ -n "${ADDR[sf]}" ]] && break
    sleep 0.1
done
for n in "${NAMES[@]:1}"; do ADDR[$n]=$(sed -n 's/^listening on //p' "$W/$n/out"); done
echo "floor-open.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), rate $RATE/s, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
    for n in "${NAMES[@]}"; do
        out=$(SELLIX_WEBHOOK_SECRET=whsec_test "$BIN/examples/loadgen" --addr "${ADDR[$n]}" \
            --target intake --rate "$RATE" --duration "$DURATION" --warmup 1 2>&1 | grep '^RESULT' || true)
        printf 'round %s %-20s %s\n' "$r" "$n" \
            "$(grep -oE '\b(ok|p50_ms|p90_ms|p99_ms|max_ms)=[0-9.]+' <<<"$out" | tr '\n' ' ')"
    done
done
