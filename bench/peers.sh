#!/usr/bin/env bash
# storeflow beside the peers (adnanh/webhook, Node-RED): results and how to read them in
# BENCHMARKS.md ("Peers").
#
# Starts two release daemons on loopback ports, each with its own throw-away data dir and
# `intake.dedupe_window: 1s` (so the N unique bodies may come round again):
#   sf-bare   no rules                                  (durable intake only)
#   sf-rules  the example rules in rules/ (+ plugins/, templates/); Slack unconfigured, so the
#             big-paid-order rule appends every message to <data_dir>/slack.jsonl
# then runs ../shared/bench/run-peers.sh against both beside the peers it starts itself.
# While it runs, every second it samples each daemon's WAL size (max printed at the end) and,
# at the end, prints per-thread CPU (from /proc/<pid>/task/*/stat) and bytes written
# (/proc/<pid>/task/*/io) per journaled event, and
# checks that sf-rules planned and delivered every event (jobs done = events, slack.jsonl lines).
#
# Then (phase `e2e`) it measures each daemon on its own, independent of what else runs on the
# machine: wrk for $DURATION, then polls /metrics until the pipeline lag and the pending jobs
# are 0: events / (load + drain) is the sustained rate, with per-thread CPU of that phase.
#
# A daemon started with rules must have loaded them all (/healthz `rules.last_reload_ok`), else
# the script stops at once with the errors: an older binary (BASE) refuses newer example rules
# (e.g. `wait:` in rules/time.yaml), journals every webhook and plans none, so its drain never
# ends (BENCHMARKS.md, issue 11 third round: "the stall"). Give it rules it reads with BASE_RULES.
#
# Knobs (environment): BODIES=40000 (passed on) SKIP_BUILD=1 KEEP=1 RUST_LOG (daemon log filter)
#   PHASES="peers e2e" (which phases)  BASE=<path of an older storeflow binary>: also start it
#   in both configurations (base-bare, base-rules), for before/after ratios from one run;
#   BASE_RULES=<rules dir for BASE> (default rules/; e.g. `git archive <commit> rules | tar -x`)
#   DRAIN_MAX=120 (seconds a daemon may take to drain in the e2e phase before the run fails)
#   FLOOR="verify parse file sqlite sqlite:typed" (also start examples/floor.rs in those modes
#   (MODE[:value|typed|none], how the body is parsed) as peers-phase
#   targets: the least a verifying receiver on storeflow's HTTP stack does, without and with a
#   durable write; FLOOR_BIN=<path>, default beside DAEMON under examples/)
#   PEER_BENCH=<dir with run-peers.sh> (default ../shared/bench), SCRAPE=1 (also start
#   sf-scraped, no rules like sf-bare, whose /metrics is scraped once a second during the whole
#   run: the cost of scraping is sf-bare vs sf-scraped in the same run), and every run-peers.sh
#   knob (DURATION ROUNDS PEERS SETTLE_MAX ...).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PEER_BENCH=${PEER_BENCH:-$ROOT/../shared/bench}
[[ -x "$PEER_BENCH/run-peers.sh" ]] || PEER_BENCH=/work/shared/bench
export BODIES=${BODIES:-40000}
SECRET=whsec_test

if [[ -z "${SKIP_BUILD:-}" ]]; then
    cargo build --release --bins
    [[ -z "${FLOOR:-}" ]] || cargo build --release --example floor
fi
DAEMON=${DAEMON:-${CARGO_TARGET_DIR:-target}/release/storeflow}
[[ -x "$DAEMON" ]] || { echo "missing $DAEMON" >&2; exit 2; }
DAEMON=$(cd "$(dirname "$DAEMON")" && pwd)/$(basename "$DAEMON")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/storeflow-peers.XXXXXX")
PHASES=${PHASES:-peers e2e}
DURATION=${DURATION:-10s}
declare -A PID=() PORT=()
NAMES=()
SAMPLER=
SCRAPER=
cleanup() {
    local rc=$? n
    [[ -n "$SAMPLER" ]] && kill "$SAMPLER" 2>/dev/null
    [[ -n "$SCRAPER" ]] && kill "$SCRAPER" 2>/dev/null
    for n in "${!PID[@]}"; do
        kill -TERM "${PID[$n]}" 2>/dev/null || continue
        for _ in $(seq 100); do kill -0 "${PID[$n]}" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "${PID[$n]}" 2>/dev/null || true
    done
    if [[ -n "${KEEP:-}" ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # start NAME BINARY RULES_DIR
    local name=$1 dir="$WORK/$1"
    mkdir -p "$dir/data" "$dir/norules"
    cat >"$dir/storeflow.yaml" <<YAML
listen: 127.0.0.1:0
data_dir: $dir/data
rules_dir: ${3:-$dir/norules}
plugins_dir: $ROOT/plugins
templates_dir: $ROOT/templates
sources:
  sellix:
    secret: $SECRET
intake:
  dedupe_window: 1s
YAML
    : >"$dir/daemon.log"
    "$2" serve -c "$dir/storeflow.yaml" 2>>"$dir/daemon.log" &
    PID[$name]=$!
    NAMES+=("$name")
    local port=
    for _ in $(seq 300); do
        port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/daemon.log" | head -n1)
        [[ -n "$port" ]] && break
        kill -0 "${PID[$name]}" 2>/dev/null || { cat "$dir/daemon.log" >&2; exit 2; }
        sleep 0.1
    done
    [[ -n "$port" ]] || { echo "$name did not start" >&2; cat "$dir/daemon.log" >&2; exit 2; }
    PORT[$name]=$port
    echo "peers.sh: $name pid ${PID[$name]} on 127.0.0.1:$port (data $dir/data)" >&2
    [[ -z "${3:-}" ]] || rules_loaded "$name"
}

# drain NAME: waits until the pipeline lag and the pending jobs are 0, at most DRAIN_MAX s.
drain() {
    local lag= pending= until_s=$(($(date +%s) + ${DRAIN_MAX:-120}))
    while (($(date +%s) < until_s)); do
        lag=$(metric "$1" '^storeflow_pipeline_lag_seconds ')
        pending=$(metric "$1" '^storeflow_jobs\\{status="pending"\\}')
        [[ "$lag" == 0 && "$pending" == 0 ]] && return 0
        sleep 0.1
    done
    echo "!! $1 did not drain in ${DRAIN_MAX:-120} s (lag $lag s, $pending jobs pending)" >&2
    return 1
}

# rules_loaded NAME: exits unless the daemon loaded its rules without an error.
rules_loaded() {
    local health
    health=$(curl -s "http://127.0.0.1:${PORT[$1]}/healthz")
    python3 -c '
import json, sys
r = json.loads(sys.argv[2]).get("rules", {})
if r.get("last_reload_ok") and r.get("loaded", 0) > 0:
    print("peers.sh: %s loaded %d rules" % (sys.argv[1], r["loaded"]), file=sys.stderr)
    sys.exit(0)
print(f"peers.sh: {sys.argv[1]} did not load its rules; it would journal every webhook and plan none:", file=sys.stderr)
for e in r.get("errors", []):
    print("  " + e, file=sys.stderr)
sys.exit(2)' "$1" "$health"
}

# slack_check NAME EVENTS: the drop file has one line per event of the rule every body fires,
# and no idempotency key twice (a repeated delivery). Prints lines per rule.
slack_check() {
    python3 - "$WORK/$1/data/slack.jsonl" "$2" <<'PY'
import collections, json, sys
path, events = sys.argv[1], int(sys.argv[2])
keys = collections.Counter()
try:
    for line in open(path):
        keys[json.loads(line)["key"]] += 1
except FileNotFoundError:
    pass
rules = collections.Counter(k.split("/")[1] for k in keys.elements())
twice = [k for k, n in keys.items() if n > 1]
big = rules.get("slack-big-paid-orders", 0)
print(f"   slack.jsonl: {sum(keys.values())} lines, by rule {dict(rules)}; keys delivered twice: {len(twice)} {twice[:3]}")
if big != events or twice:
    print(f"   !! expected {events} slack-big-paid-orders lines and no key twice", file=sys.stderr)
    sys.exit(1)
PY
}

# thread_ticks PID: "comm ticks" per thread name (utime + stime, threads of one name summed).
# Also "bytes written": wchar of /proc/<pid>/task/*/io (what the thread passed to write(2) and
# pwrite(2): WAL frames and checkpoints for the journal threads), 0 where unreadable.
thread_ticks() {
    local t stat comm wchar
    for t in /proc/"$1"/task/*; do
        stat=$(cat "$t/stat" 2>/dev/null) || continue
        wchar=$(awk '/^wchar/ {print $2}' "$t/io" 2>/dev/null) || wchar=0
        comm=${stat#*(}; comm=${comm%%)*}
        awk -v c="${comm// /_}" -v w="${wchar:-0}" '{print c, $12 + $13, w}' <<<"${stat##*) }"
    done | awk '{s[$1] += $2; w[$1] += $3} END {for (c in s) print c, s[c], w[c]}' | sort
}
# metric NAME PATTERN: sum of the samples of a metric whose line matches PATTERN.
metric() {
    curl -s "http://127.0.0.1:${PORT[$1]}/metrics" | awk -v p="$2" '$0 ~ p {s += $NF} END {print s + 0}'
}
accepted() { metric "$1" '^storeflow_webhooks_total\\{.*outcome="accepted"'; }
CLK_TCK=$(getconf CLK_TCK)
cpu_table() { # cpu_table TICKS0 TICKS1 EVENTS
    join -a2 -e0 -o 0,1.2,1.3,2.2,2.3 "$1" "$2" |
        awk -v e="$3" -v hz="$CLK_TCK" '{d = $4 - $2; t += d; b = $5 - $3; tb += b
                if (d > 0) printf "   %-22s %8.1f us/event %8.2f KB written/event\n", $1, d * 1e6 / hz / e, b / 1024 / e}
            END {printf "   %-22s %8.1f us/event %8.2f KB written/event\n", "TOTAL", t * 1e6 / hz / e, tb / 1024 / e}'
}

# start_floor MODE: the floor example (examples/floor.rs) in one mode, a peers-phase target only.
FLOORS=()
start_floor() { # start_floor MODE[:PARSE]
    local name="floor-${1/:/-}" dir="$WORK/floor-${1/:/-}" mode=${1%%:*} parse=value
    [[ "$1" == *:* ]] && parse=${1#*:}
    mkdir -p "$dir"
    "$FLOOR_BIN" --listen 127.0.0.1:0 --secret "$SECRET" --mode "$mode" --parse "$parse" --data "$dir" >"$dir/out.log" 2>&1 &
    PID[$name]=$!
    local port=
    for _ in $(seq 100); do
        port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$dir/out.log")
        [[ -n "$port" ]] && break
        sleep 0.1
    done
    [[ -n "$port" ]] || { echo "$name did not start" >&2; cat "$dir/out.log" >&2; exit 2; }
    PORT[$name]=$port
    FLOORS+=("$name")
}
if [[ -n "${FLOOR:-}" ]]; then
    FLOOR_BIN=${FLOOR_BIN:-$(dirname "$DAEMON")/examples/floor}
    [[ -x "$FLOOR_BIN" ]] || { echo "missing $FLOOR_BIN (cargo build --release --example floor)" >&2; exit 2; }
    for m in $FLOOR; do start_floor "$m"; done
fi

if [[ -n "${BASE:-}" ]]; then
    start base-bare "$BASE" ""
    start base-rules "$BASE" "${BASE_RULES:-$ROOT/rules}"
fi
start sf-bare "$DAEMON" ""
start sf-rules "$DAEMON" "$ROOT/rules"
[[ -n "${SCRAPE:-}" ]] && start sf-scraped "$DAEMON" ""

# WAL sampler: one line per second per daemon ("name bytes").
(
    while :; do
        for n in "${NAMES[@]}"; do
            printf '%s %s\n' "$n" "$(stat -c %s "$WORK/$n/data/storeflow.db-wal" 2>/dev/null || echo 0)"
        done
        sleep 1
    done
) >"$WORK/wal.txt" &
SAMPLER=$!
if [[ -n "${SCRAPE:-}" ]]; then
    (
        while :; do
            curl -s -o /dev/null "http://127.0.0.1:${PORT[sf-scraped]}/metrics" || true
            sleep 1
        done
    ) &
    SCRAPER=$!
fi

echo "peers.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
rc=0
TARGETS=()
for n in "${NAMES[@]}" "${FLOORS[@]+"${FLOORS[@]}"}"; do TARGETS+=("$n=http://127.0.0.1:${PORT[$n]}/hooks/sellix"); done
mkdir -p "$WORK/peers"
if [[ " $PHASES " == *" peers "* ]]; then
    OUT_DIR="$WORK/peers" DURATION=$DURATION "$PEER_BENCH/run-peers.sh" "${TARGETS[@]}" || rc=$?
    echo "load average after the peers phase: $(cut -d' ' -f1-3 /proc/loadavg)"
fi

if [[ " $PHASES " == *" e2e "* ]]; then
    [[ -f "$WORK/peers/bodies.bin" ]] ||
        python3 "$PEER_BENCH/gen-bodies.py" "$PEER_BENCH/../fixtures/sellix/order_paid.json" "$BODIES" "$WORK/peers/bodies.bin" "$SECRET"
    echo ""
    echo "== e2e: wrk -t2 -c32 -d$DURATION per daemon, then until pipeline lag and pending jobs are 0"
    for n in "${NAMES[@]}"; do
        sleep 2   # the 1 s dedupe window of the bodies sent before has passed
        thread_ticks "${PID[$n]}" >"$WORK/$n.e2e0"
        e0=$(accepted "$n"); t0=$(date +%s.%N)
        # wrk's own CPU (user + sys), to show what the load generator takes of the 2 cores
        TIMEFORMAT='%3U %3S'
        { time BODIES_FILE="$WORK/peers/bodies.bin" WRK_THREADS=2 wrk -t2 -c32 -d"$DURATION" --latency \
            -s "$PEER_BENCH/post-unique.lua" "http://127.0.0.1:${PORT[$n]}/hooks/sellix" >"$WORK/$n.e2e.txt" 2>&1; } 2>"$WORK/$n.wrk-cpu"
        t1=$(date +%s.%N)
        drain "$n" || rc=1
        t2=$(date +%s.%N)
        thread_ticks "${PID[$n]}" >"$WORK/$n.e2e1"
        e1=$(accepted "$n")
        ev=$((e1 - e0))
        awk -v n="$n" -v e="$ev" -v a="$t0" -v b="$t1" -v c="$t2" -v p99="$(sed -n 's/.*p99_ms=\([^ ]*\).*/\1/p' "$WORK/$n.e2e.txt")" \
            'BEGIN {printf "%-11s %7d events  load %5.1f s  %8.0f/s  drain %5.1f s  incl. drain %8.0f/s  p99 %s ms\n", n, e, b - a, e / (b - a), c - b, e / (c - a), p99}'
        cpu_table "$WORK/$n.e2e0" "$WORK/$n.e2e1" "$ev"
        awk -v e="$ev" '{printf "   wrk (load generator)  %10.1f us/request (user %.1f s, sys %.1f s)\n", ($1 + $2) * 1e6 / e, $1, $2}' "$WORK/$n.wrk-cpu"
    done
fi

echo ""
for n in "${NAMES[@]}"; do
    db="$WORK/$n/data/storeflow.db"
    wal_max=$(awk -v n="$n" '$1 == n && $2 > m {m = $2} END {printf "%.1f", m / 1048576}' "$WORK/wal.txt")
    echo "$n: $(accepted "$n") events accepted in all; WAL max ${wal_max} MiB (sampled every second); db $(du -m "$db" | cut -f1) MiB; RSS $(awk '/^VmRSS/ {print $2 / 1024 " MB"}' "/proc/${PID[$n]}/status")"
    [[ "$n" == *rules ]] && { { drain "$n" && slack_check "$n" "$(accepted "$n")"; } || rc=1; }
done
exit "$rc"
