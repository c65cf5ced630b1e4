#!/usr/bin/env bash
# RSS and cold start with many rules (results in BENCHMARKS.md, "1,000 rules").
#
#   bench/rules1000.sh [N]        (default N = 1000)
#
# Writes N rules into a throw-away rules_dir (10 files of N/10 rules; a mix of the shapes a
# shop uses: declarative `match` on order fields, `if` Rhai expressions, globs, slack / email /
# flag / log actions with templates; each rule about one product or customer, so an order
# fires a few of them, and the first 10 fire on most orders), then:
#   - `storeflow check` must accept them (exit 0);
#   - cold start: time from exec of `storeflow serve` to its first 200 on /healthz, 5 times
#     (a fresh data dir each time), median and max;
#   - RSS (VmRSS and VmHWM from /proc) of the daemon after start, and after 2,000 signed
#     webhooks (tests/fixtures/sellix/order_paid.json, unique bodies) went through the pipeline;
#   - the stored trace bytes per event (sqlite3, if installed).
#   - CPU per event of the pipeline and journal-writer threads (/proc/<pid>/task/*/stat) over
#     the load and the drain.
# Knobs: SKIP_BUILD=1 KEEP=1 STARTS=5 POSTS=2000 DAEMON=<storeflow binary> LOADGEN=<loadgen binary>
#   BASE=<an older storeflow binary>: measure it too, alternating with DAEMON, ROUNDS=1 times
#   each (before/after from one run on a noisy machine).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
N=${1:-1000}
STARTS=${STARTS:-5}
POSTS=${POSTS:-2000}
SECRET=whsec_test
[[ -n "${SKIP_BUILD:-}" ]] || cargo build --release --bins --examples
DAEMON=${DAEMON:-$ROOT/${CARGO_TARGET_DIR:-target}/release/storeflow}
LOADGEN=${LOADGEN:-$ROOT/${CARGO_TARGET_DIR:-target}/release/examples/loadgen}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/storeflow-rules.XXXXXX")
DAEMON_PID=
cleanup() {
    if [[ -n "$DAEMON_PID" ]] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true
    fi
    if [[ -n "${KEEP:-}" ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

mkdir -p "$WORK/rules"
python3 - "$WORK/rules" "$N" <<'PY'
import sys
out, n = sys.argv[1], int(sys.argv[2])
events = ["order.paid", "order.shipped", "order.cancelled", "sellix/order:*", "order.*",
          "product.low_stock", "order.disputed", "order.delivered"]
per_file = max(1, n // 10)
for f in range(0, n, per_file):
    lines = ["rules:"]
    for i in range(f, min(n, f + per_file)):
        on = events[i % len(events)]
        lines.append(f"  - name: rule-{i:04d}")
        lines.append(f"    description: generated rule {i}")
        lines.append(f"    on: {on}")
        lines.append("    match:")
        # As a shop with many rules has them: each about one product (or customer), so an
        # event fires a few rules, not hundreds; the first 10 rules look at every order.
        if i < 10:
            lines.append(f"      order.total: {{ gte: {i * 10} }}")
        elif i % 2 == 0:
            lines.append(f"      payload.data.product_id: prod-{i:04d}")
        else:
            lines.append(f"      order.customer.email: customer-{i:04d}@example.com")
        if i % 3 == 0:
            lines.append(f"      order.currency: {{ in: [USD, EUR, GBP] }}")
        if i % 4 == 0:
            lines.append(f"    if: 'order.customer.email != \"\" && order.total > {i % 50}'")
        lines.append("    actions:")
        k = i % 4
        if k == 0:
            lines.append(f"      - slack: {{ text: \"rule {i}: {{{{ order.id }}}} {{{{ order.total }}}} {{{{ order.currency }}}}\" }}")
        elif k == 1:
            lines.append(f"      - email: {{ to: \"{{{{ order.customer.email }}}}\", subject: \"order {{{{ order.id }}}} ({i})\", body: \"hello {{{{ order.customer.name or 'there' }}}}\" }}")
        elif k == 2:
            lines.append(f"      - flag: {{ kind: k{i}, note: \"{{{{ order.id }}}}\" }}")
        else:
            lines.append(f"      - log: {{ message: \"rule {i} saw {{{{ order.id }}}}\" }}")
    with open(f"{out}/gen-{f // per_file:02d}.yaml", "w") as fh:
        fh.write("\n".join(lines) + "\n")
PY

config() { # config DATA_DIR
    cat <<YAML
listen: 127.0.0.1:0
data_dir: $1
rules_dir: $WORK/rules
plugins_dir: $ROOT/plugins
templates_dir: $ROOT/templates
sources:
  sellix:
    secret: $SECRET
YAML
}
measure() { # measure LABEL BINARY
LABEL=$1 BIN=$2
echo "== $LABEL ($BIN)"
config "$WORK/check-data" >"$WORK/storeflow.yaml"
"$BIN" check -c "$WORK/storeflow.yaml" >"$WORK/check.txt" 2>&1 || { cat "$WORK/check.txt"; exit 1; }
echo "rules: $N in $(ls "$WORK/rules" | wc -l) files; check: $(tail -n1 "$WORK/check.txt")"

now_ms() { date +%s%3N; }
starts=()
for s in $(seq "$STARTS"); do
    config "$WORK/$LABEL-data-$s" >"$WORK/storeflow.yaml"
    t0=$(now_ms)
    : >"$WORK/$LABEL-daemon-$s.log"
    "$BIN" serve -c "$WORK/storeflow.yaml" 2>>"$WORK/$LABEL-daemon-$s.log" &
    DAEMON_PID=$!
    port=
    until [[ -n "$port" ]]; do
        port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/$LABEL-daemon-$s.log" | head -n1)
        kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$WORK/$LABEL-daemon-$s.log"; exit 1; }
        [[ -n "$port" ]] || sleep 0.002
    done
    until curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"; do sleep 0.002; done
    t1=$(now_ms)
    starts+=($((t1 - t0)))
    if ((s < STARTS)); then
        kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true; DAEMON_PID=
    fi
done
sorted=$(printf '%s\n' "${starts[@]}" | sort -n)
echo "cold start to first 200 on /healthz, ms: [${starts[*]}] median $(sed -n "$(((STARTS + 1) / 2))p" <<<"$sorted") max $(tail -n1 <<<"$sorted")"
ticks() { # pipeline and journal-writer CPU ticks of the daemon
    for t in /proc/"$DAEMON_PID"/task/*; do
        local stat; stat=$(cat "$t/stat" 2>/dev/null) || continue
        local comm=${stat#*(}; comm=${comm%%)*}
        awk -v c="${comm// /_}" '{print c, $12 + $13}' <<<"${stat##*) }"
    done | awk '{s[$1] += $2} END {print s["pipeline"] + 0, s["journal-writer"] + 0}'
}
rss() { awk '/^VmRSS|^VmHWM/ {printf "%s %.1f MB  ", $1, $2 / 1024}' "/proc/$DAEMON_PID/status"; }
echo "RSS after start: $(rss)"
rate=$((POSTS / 4))
read -r p0 w0 < <(ticks)
SELLIX_WEBHOOK_SECRET=$SECRET "$LOADGEN" --addr "127.0.0.1:$port" --target intake --rate "$rate" \
    --duration 4 --warmup 0 >"$WORK/load.txt" 2>&1 || { cat "$WORK/load.txt"; exit 1; }
grep '^RESULT' "$WORK/load.txt" | cut -c1-160
for _ in $(seq 600); do
    lag=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^storeflow_pipeline_lag_seconds / {print $2}')
    [[ "$lag" == 0 ]] && break
    sleep 0.1
done
read -r p1 w1 < <(ticks)
awk -v p=$((p1 - p0)) -v w=$((w1 - w0)) -v e="$POSTS" -v hz="$(getconf CLK_TCK)" \
    'BEGIN {printf "CPU per event: pipeline %.0f us, journal-writer %.0f us\n", p * 1e6 / hz / e, w * 1e6 / hz / e}'
echo "RSS after $POSTS webhooks through $N rules: $(rss)"
if command -v sqlite3 >/dev/null; then
    sqlite3 "$WORK/$LABEL-data-$STARTS/storeflow.db" \
        "SELECT 'stored trace bytes per event: ' || CAST(AVG(LENGTH(trace)) AS INT) || ' (' || COUNT(*) || ' traces, ' || (SELECT page_count * page_size / 1024 / 1024 FROM pragma_page_count(), pragma_page_size()) || ' MiB db)' FROM traces"
fi
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true; DAEMON_PID=
}
echo "rules1000.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "${ROUNDS:-1}"); do
    [[ -z "${BASE:-}" ]] || measure "base-$r" "$BASE"
    measure "after-$r" "$DAEMON"
done
