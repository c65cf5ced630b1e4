#!/usr/bin/env bash
# Delivery benchmark: acknowledgement → HTTP request leaving (p50/p99) at a steady rate, and
# jobs/s in a burst, against a local receiver. Usage: bench/delivery.sh [RATE] [SECONDS] [BURST]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --example delivery_latency
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
RUST_LOG=${RUST_LOG:-warn} target/release/examples/delivery_latency "${1:-200}" "${2:-10}" "${3:-2000}"
