#!/usr/bin/env bash
# Intake load benchmark (results and how to read them: BENCHMARKS.md).
#
# Builds the release daemon and examples/loadgen.rs, starts `storeflow serve` on a loopback port
# with a throw-away config and data dir, then, RUNS times over:
#   1. GET /healthz            closed loop, $CONNECTIONS connections, $DURATION s  (the ceiling)
#   2. POST /hooks/sellix      closed loop, same connections and duration          (durable intake)
#   3. POST /hooks/sellix      open loop at $RATE req/s for $DURATION s             (latency at load)
# and prints a summary with medians, the intake/healthz ratio (target >= 40 %) and the open-loop
# p99 (target < 5 ms). The daemon is stopped on exit, whatever happens.
#
# Knobs (environment): DURATION=10 WARMUP=1 CONNECTIONS=32 RATE=2000 RUNS=3 LOADGEN_THREADS=1
#   SKIP_BUILD=1 (use the binaries already built)  KEEP=1 (keep the temp dir with logs)
#   RUST_LOG (the daemon's log filter; default info, as in production)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-1}
CONNECTIONS=${CONNECTIONS:-32}
RATE=${RATE:-2000}
RUNS=${RUNS:-3}
LOADGEN_THREADS=${LOADGEN_THREADS:-1}
SECRET=whsec_test

if [[ -z "${SKIP_BUILD:-}" ]]; then
    cargo build --release --examples --bins
fi
BIN_DIR="${CARGO_TARGET_DIR:-target}/release"
DAEMON=${DAEMON:-$BIN_DIR/storeflow}   # DAEMON=<path> measures another build
LOADGEN="$BIN_DIR/examples/loadgen"
[[ -x "$DAEMON" && -x "$LOADGEN" ]] || { echo "missing $DAEMON or $LOADGEN" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/storeflow-bench.XXXXXX")
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

cat > "$WORK/storeflow.yaml" <<YAML
listen: 127.0.0.1:0
data_dir: $WORK/data
sources:
  sellix:
    secret: $SECRET
YAML

"$DAEMON" serve -c "$WORK/storeflow.yaml" 2> "$WORK/daemon.log" &
DAEMON_PID=$!
PORT=
for _ in $(seq 300); do
    PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/daemon.log" | head -n1)
    [[ -n "$PORT" ]] && break
    kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$WORK/daemon.log" >&2; exit 2; }
    sleep 0.1
done
[[ -n "$PORT" ]] || { echo "daemon did not start:" >&2; cat "$WORK/daemon.log" >&2; exit 2; }
ADDR="127.0.0.1:$PORT"

echo "== storeflow intake benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ), nproc $(nproc), daemon pid $DAEMON_PID on $ADDR"
echo "== runs=$RUNS duration=${DURATION}s warmup=${WARMUP}s connections=$CONNECTIONS rate=$RATE/s loadgen threads=$LOADGEN_THREADS"

loadgen() {
    SELLIX_WEBHOOK_SECRET=$SECRET "$LOADGEN" --addr "$ADDR" --duration "$DURATION" \
        --warmup "$WARMUP" --threads "$LOADGEN_THREADS" "$@"
}
# field LINE KEY: the value of KEY=... in a RESULT line.
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -a H_RPS H_P50 H_P99 I_RPS I_ACC I_P50 I_P99 O_ACC O_P50 O_P90 O_P99 O_MAX O_SVC99 RATIO
FAILED=0
check() { # check LINE: the run must have no errors, no non-2xx and (intake) no duplicates
    local line=$1
    if [[ "$(field "$line" errors)" != 0 || "$(field "$line" non2xx)" != 0 || "$(field "$line" duplicates)" != 0 ]]; then
        echo "!! run had errors, non-2xx answers or duplicates: $line" >&2
        FAILED=1
    fi
}
for run in $(seq "$RUNS"); do
    echo "-- run $run/$RUNS: healthz, closed loop, $CONNECTIONS connections"
    out=$(loadgen --target healthz --connections "$CONNECTIONS"); echo "$out"
    h=$(grep '^RESULT' <<<"$out"); check "$h"
    echo "-- run $run/$RUNS: intake, closed loop, $CONNECTIONS connections"
    out=$(loadgen --target intake --connections "$CONNECTIONS"); echo "$out"
    i=$(grep '^RESULT' <<<"$out"); check "$i"
    echo "-- run $run/$RUNS: intake, open loop, $RATE req/s"
    out=$(loadgen --target intake --rate "$RATE"); echo "$out"
    o=$(grep '^RESULT' <<<"$out"); check "$o"

    H_RPS+=("$(field "$h" rps)"); H_P50+=("$(field "$h" p50_ms)"); H_P99+=("$(field "$h" p99_ms)")
    I_RPS+=("$(field "$i" rps)"); I_P50+=("$(field "$i" p50_ms)"); I_P99+=("$(field "$i" p99_ms)")
    acc=$(awk -v f="$(field "$i" fresh)" -v d="$(field "$i" duration)" 'BEGIN {printf "%.1f", f / d}')
    I_ACC+=("$acc")
    RATIO+=("$(awk -v a="$acc" -v h="$(field "$h" rps)" 'BEGIN {printf "%.1f", 100 * a / h}')")
    O_ACC+=("$(awk -v f="$(field "$o" fresh)" -v d="$(field "$o" duration)" 'BEGIN {printf "%.1f", f / d}')")
    O_P50+=("$(field "$o" p50_ms)"); O_P90+=("$(field "$o" p90_ms)"); O_P99+=("$(field "$o" p99_ms)")
    O_MAX+=("$(field "$o" max_ms)"); O_SVC99+=("$(field "$o" svc_p99_ms)")
done

events=$(curl -s "http://$ADDR/metrics" | awk '/^storeflow_webhooks_total\{.*outcome="accepted"/ {s += $NF} END {print s + 0}')
echo
echo "== summary (median of $RUNS run(s); per-run values in brackets)"
printf '%-34s %10s   %s\n' "healthz closed req/s" "$(median "${H_RPS[@]}")" "[${H_RPS[*]}]"
printf '%-34s %10s   %s\n' "healthz closed p50 / p99 ms" "$(median "${H_P50[@]}") / $(median "${H_P99[@]}")" ""
printf '%-34s %10s   %s\n' "intake closed accepted/s" "$(median "${I_ACC[@]}")" "[${I_ACC[*]}]"
printf '%-34s %10s   %s\n' "intake closed p50 / p99 ms" "$(median "${I_P50[@]}") / $(median "${I_P99[@]}")" "[p99 ${I_P99[*]}]"
printf '%-34s %10s   %s\n' "intake/healthz ratio % (>= 40)" "$(median "${RATIO[@]}")" "[${RATIO[*]}]"
printf '%-34s %10s   %s\n' "open ${RATE}/s accepted/s" "$(median "${O_ACC[@]}")" "[${O_ACC[*]}]"
printf '%-34s %10s   %s\n' "open ${RATE}/s p50 / p90 ms" "$(median "${O_P50[@]}") / $(median "${O_P90[@]}")" ""
printf '%-34s %10s   %s\n' "open ${RATE}/s p99 ms (< 5)" "$(median "${O_P99[@]}")" "[${O_P99[*]}]"
printf '%-34s %10s   %s\n' "open ${RATE}/s max ms" "$(median "${O_MAX[@]}")" "[${O_MAX[*]}]"
printf '%-34s %10s   %s\n' "open ${RATE}/s service p99 ms" "$(median "${O_SVC99[@]}")" "[${O_SVC99[*]}]"
echo "daemon: $events webhooks accepted (storeflow_webhooks_total, warm-up included)"
ratio=$(median "${RATIO[@]}"); p99=$(median "${O_P99[@]}")
awk -v r="$ratio" 'BEGIN {exit !(r >= 40)}' && echo "target ratio >= 40 %: met ($ratio %)" \
    || echo "target ratio >= 40 %: MISSED ($ratio %)"
awk -v p="$p99" 'BEGIN {exit !(p < 5)}' && echo "target p99 < 5 ms at $RATE/s: met ($p99 ms)" \
    || echo "target p99 < 5 ms at $RATE/s: MISSED ($p99 ms)"
exit "$FAILED"
