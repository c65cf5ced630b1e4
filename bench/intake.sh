#!/usr/bin/env bash
# Intake load benchmark: durable webhook intake vs. /healthz (the ceiling), then p99 at a fixed
# 2,000 req/s. Loopback only; every run is bounded in time. Usage: bench/intake.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${CONNS:-32}
cargo build --release --quiet --bin storeflow --example loadgen
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/storeflow.yaml" <<YAML
listen: 127.0.0.1:0
data_dir: $work/data
rules_dir: $work/rules
sources:
  sellix:
    secret: whsec_test
YAML
RUST_LOG=${RUST_LOG:-info} target/release/storeflow serve -c "$work/storeflow.yaml" 2> "$work/daemon.log" &
pid=$!
for _ in $(seq 100); do
  url=$(grep -o 'listening on http://[0-9.:]*' "$work/daemon.log" | sed 's/listening on //' || true)
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { echo "daemon did not start"; cat "$work/daemon.log"; exit 1; }
gen() { target/release/examples/loadgen --url "$url" --duration "$secs" "$@"; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
health=$(gen --target healthz --connections "$conns"); echo "$health"
intake=$(gen --target intake --connections "$conns"); echo "$intake"
fixed=$(gen --target intake --rate 2000); echo "$fixed"
h=$(echo "$health" | grep -o 'req_per_s=[0-9]*' | cut -d= -f2)
i=$(echo "$intake" | grep -o 'req_per_s=[0-9]*' | cut -d= -f2)
echo "intake/healthz = $(( 100 * i / h ))% (target >= 40%)"
echo "p99 at 2000 req/s: $(echo "$fixed" | grep -o 'p99_ms=[0-9.]*' | cut -d= -f2) ms (target < 5 ms)"
echo "events journaled: $(target/release/storeflow events --json --limit 100000000 -c "$work/storeflow.yaml" | wc -l)"
