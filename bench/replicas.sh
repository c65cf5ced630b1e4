#!/usr/bin/env bash
# Replicas on PostgreSQL beside SQLite (issue 14): results and how to read them in BENCHMARKS.md
# ("Issue 14").
#
# Starts a throwaway PostgreSQL cluster in a temp dir (initdb/pg_ctl from the newest
# /usr/lib/postgresql/*/bin or $PG_BIN, as the `postgres` user when run as root, a free loopback
# port, its socket in the temp dir, fsync=on and synchronous_commit=on: a durability benchmark),
# then, RUNS times over, each configuration of CONFIGS in turn with the same release binary:
#   sqlite  one daemon on SQLite in its data_dir
#   pgN     N daemons (replicas) on one fresh PostgreSQL database (created for the configuration)
# Each daemon has bench/replicas-rules/ (one rule: a Slack message for every paid order; Slack
# unconfigured, so the delivering replica appends it to its <data_dir>/slack.jsonl). Load: one
# wrk per daemon (`post-unique.lua` of ../shared/bench: unique signed Sellix bodies, a set of
# its own per daemon), CONNECTIONS in all, split evenly, for DURATION; then the journal is polled
# (psql / sqlite3, once a second) until every event is planned and no job is left to run.
#
# Per configuration it prints: intake req/s (closed loop, sum of the wrks), p50 (median of the
# wrks) and p99 (worst wrk), the end-to-end rate incl. drain (events / (load + drain)), jobs
# completed and claims (PostgreSQL: sum of the jobs' fences) per second over load + drain, CPU
# per event of the storeflow processes and of all postgres processes (utime+stime from
# /proc/<pid>/stat before/after; the postmaster's cutime+cstime count the backends that exited),
# PostgreSQL commits and WAL bytes per event, and the deliveries per replica. Then it checks:
#   - the events journaled = the webhooks the daemons acknowledged (storeflow_webhooks_total
#     accepted, summed over the replicas), and >= those wrk saw answered 2xx (not duplicates);
#   - every event planned, one job per event, every job `done` (none dead);
#   - one slack.jsonl line per job over all replicas, no idempotency key twice;
#   - no ERROR in the daemons' logs (WARN lines are counted and printed).
# Any failed check fails the run (exit 1). Everything is stopped and removed on exit, whatever
# happens (KEEP=1 keeps the temp dir with logs and wrk output).
#
# Knobs (environment): CONFIGS="sqlite pg1 pg2 pg3" RUNS=1 DURATION=10s CONNECTIONS=30
#   BODIES=20000 (per daemon) DRAIN_MAX=300 (s) SKIP_BUILD=1 KEEP=1 PG_BIN RUST_LOG
#   PEER_BENCH=<dir with post-unique.lua> (default ../shared/bench)
#   STATS=1 (PostgreSQL with pg_stat_statements; per configuration <dir>/pg_stats.txt: rows written
#   per table and the 25 statements taking the most time, per event; needs KEEP=1 to read them)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PEER_BENCH=${PEER_BENCH:-$ROOT/../shared/bench}
[[ -f "$PEER_BENCH/post-unique.lua" ]] || PEER_BENCH=/work/shared/bench
CONFIGS=${CONFIGS:-sqlite pg1 pg2 pg3}
RUNS=${RUNS:-1}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-30}
BODIES=${BODIES:-20000}
DRAIN_MAX=${DRAIN_MAX:-300}
SECRET=whsec_test
RULES=$ROOT/bench/replicas-rules
command -v wrk >/dev/null || { echo "wrk missing (../shared/bench/install-peers.sh)" >&2; exit 2; }

if [[ -z "${SKIP_BUILD:-}" ]]; then
    cargo build --release --bins
fi
DAEMON=${DAEMON:-${CARGO_TARGET_DIR:-target}/release/storeflow}
[[ -x "$DAEMON" ]] || { echo "missing $DAEMON" >&2; exit 2; }
DAEMON=$(cd "$(dirname "$DAEMON")" && pwd)/$(basename "$DAEMON")
if [[ -z "${PG_BIN:-}" ]]; then
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
fi
[[ -x "$PG_BIN/initdb" ]] || { echo "no initdb (install Debian's postgresql, or set PG_BIN)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/storeflow-replicas.XXXXXX")
chmod 755 "$WORK"
PGDIR=$WORK/pg
RUN_AS=()
[[ "$(id -u)" == 0 ]] && RUN_AS=(runuser -u postgres --)
declare -a DPIDS=() WPIDS=()
PG_STARTED=
stop_daemons() {
    local p
    for p in "${WPIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${DPIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${DPIDS[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    DPIDS=() WPIDS=()
}
cleanup() {
    local rc=$?
    stop_daemons
    [[ -n "$PG_STARTED" ]] && "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PGDIR/data" -m immediate -w stop >/dev/null 2>&1
    if [[ -n "${KEEP:-}" ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- the PostgreSQL cluster -------------------------------------------------------------------
mkdir -p "$PGDIR/sock"
[[ ${#RUN_AS[@]} -gt 0 ]] && chown -R postgres: "$PGDIR"
"${RUN_AS[@]}" "$PG_BIN/initdb" -D "$PGDIR/data" -U storeflow --auth=trust --encoding=UTF8 \
    --locale=C >"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log" >&2; exit 2; }
PGPORT=$(free_port)
"${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PGDIR/data" -w -t 60 -l "$PGDIR/log" \
    -o "-p $PGPORT -k $PGDIR/sock -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on -c synchronous_commit=on -c full_page_writes=on${STATS:+ -c shared_preload_libraries=pg_stat_statements}" \
    start >/dev/null || { cat "$PGDIR/log" >&2; exit 2; }
PG_STARTED=1
PGVERSION=$("$PG_BIN/postgres" --version)
psqlq() { # psqlq DB SQL: one row, fields separated by spaces
    psql -h 127.0.0.1 -p "$PGPORT" -U storeflow -d "$1" -AtqX -F ' ' -c "$2"
}

# --- bodies: one set per daemon slot (unique uniqids per slot) ----------------------------------
python3 - "$ROOT/tests/fixtures/sellix/order_paid.json" "$BODIES" "$WORK" "$SECRET" <<'PY'
import hashlib, hmac, json, sys
fixture, n, work, secret = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].encode()
base = json.load(open(fixture))
for slot in range(3):
    with open(f"{work}/bodies{slot}.bin", "wb") as f:
        for i in range(n):
            base["data"]["uniqid"] = f"bench-{slot}-{i:07d}"
            body = json.dumps(base, separators=(",", ":")).replace("/", "\\/").encode()
            sig = hmac.new(secret, body, hashlib.sha512).hexdigest()
            f.write(f"{sig} {len(body)}\n".encode() + body)
PY

# --- CPU from /proc ---------------------------------------------------------------------------
# ticks PID...: utime + stime of the processes (+ cutime + cstime with CHILDREN=1).
ticks() {
    local p stat s=0
    for p in "$@"; do
        stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        s=$((s + $(awk -v c="${CHILDREN:-}" '{print $12 + $13 + (c ? $14 + $15 : 0)}' <<<"${stat##*) }")))
    done
    echo "$s"
}
# pg_ticks: the postmaster (with the backends it reaped) plus every live child.
pg_ticks() {
    local pm
    pm=$(head -n1 "$PGDIR/data/postmaster.pid")
    echo $(($(CHILDREN=1 ticks "$pm") + $(ticks $(pgrep -P "$pm" | tr '\n' ' '))))
}
CLK_TCK=$(getconf CLK_TCK)

# --- daemons ----------------------------------------------------------------------------------
declare -a PORTS=()
start_daemon() { # start_daemon DIR JOURNAL_URL
    local dir=$1 port=
    mkdir -p "$dir/data"
    {
        printf 'listen: 127.0.0.1:0\ndata_dir: %s\nrules_dir: %s\n' "$dir/data" "$RULES"
        printf 'plugins_dir: %s\ntemplates_dir: %s\n' "$ROOT/plugins" "$ROOT/templates"
        printf 'sources:\n  sellix:\n    secret: %s\nintake:\n  dedupe_window: 1s\n' "$SECRET"
        [[ -z "$2" ]] || printf 'journal:\n  url: "%s"\n' "$2"
    } >"$dir/storeflow.yaml"
    "$DAEMON" serve -c "$dir/storeflow.yaml" 2>"$dir/daemon.log" &
    DPIDS+=($!)
    for _ in $(seq 300); do
        port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/daemon.log" | head -n1)
        [[ -n "$port" ]] && break
        kill -0 "${DPIDS[-1]}" 2>/dev/null || { cat "$dir/daemon.log" >&2; exit 2; }
        sleep 0.1
    done
    [[ -n "$port" ]] || { echo "daemon in $dir did not start" >&2; cat "$dir/daemon.log" >&2; exit 2; }
    curl -s "http://127.0.0.1:$port/healthz" | python3 -c '
import json, sys
r = json.load(sys.stdin).get("rules", {})
sys.exit(0 if r.get("last_reload_ok") and r.get("loaded", 0) > 0 else "rules not loaded: %s" % r.get("errors"))'
    PORTS+=("$port")
}
accepted_sum() {
    local p s=0
    for p in "${PORTS[@]}"; do
        s=$((s + $(curl -s "http://127.0.0.1:$p/metrics" |
            awk '/^storeflow_webhooks_total\{.*outcome="accepted"/ {s += $NF} END {print s + 0}')))
    done
    echo "$s"
}

# journal_q CFG DB SQL: a query against the configuration's journal.
journal_q() {
    if [[ "$1" == sqlite ]]; then sqlite3 -separator ' ' "$2" "$3"; else psqlq "$2" "$3"; fi
}
STATE_SQL="SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM events WHERE processed_at IS NULL),
    (SELECT count(*) FROM jobs), (SELECT count(*) FROM jobs WHERE status NOT IN ('done', 'dead')),
    (SELECT count(*) FROM jobs WHERE status = 'dead'), (SELECT count(*) FROM attempts)"
PG_STATS_SQL="SELECT xact_commit, pg_current_wal_lsn() - '0/0'::pg_lsn FROM pg_stat_database WHERE datname = current_database()"

# pg_stats DB EVENTS (STATS=1): rows written per table and the statements by time, per event.
pg_stats() {
    psql -h 127.0.0.1 -p "$PGPORT" -U storeflow -d "$1" -qX -v ev="$2" <<'SQL'
SELECT relname, round(n_tup_ins::numeric / :ev, 2) AS ins, round(n_tup_upd::numeric / :ev, 2) AS upd,
       round(n_tup_hot_upd::numeric / :ev, 2) AS hot, round(n_tup_del::numeric / :ev, 2) AS del,
       round(coalesce(idx_scan, 0)::numeric / :ev, 2) AS idx_scans, round(seq_scan::numeric / :ev, 3) AS seq_scans
FROM pg_stat_user_tables WHERE n_tup_ins + n_tup_upd + n_tup_del + seq_scan + coalesce(idx_scan, 0) > 0
ORDER BY relname;
SELECT round(total_exec_time::numeric * 1000 / :ev) AS us_per_event, round(calls::numeric / :ev, 2) AS calls_per_event,
       round(rows::numeric / greatest(calls, 1), 1) AS rows_per_call, left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS query
FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY total_exec_time DESC LIMIT 25;
SQL
}
RESULTS=$WORK/results.tsv
FAILED=0
fail() { echo "   !! $*" >&2; FAILED=1; }

run_config() { # run_config CFG RUN
    local cfg=$1 run=$2 n db url="" i c t th out
    if [[ "$cfg" == sqlite ]]; then n=1; else n=${cfg#pg}; fi
    local dir=$WORK/$cfg-$run
    mkdir -p "$dir"
    if [[ "$cfg" != sqlite ]]; then
        db=sf_${cfg}_$run
        psqlq postgres "CREATE DATABASE $db" >/dev/null
        url="postgres://storeflow@127.0.0.1:$PGPORT/$db"
        [[ -z "${STATS:-}" ]] || psqlq "$db" "CREATE EXTENSION pg_stat_statements" >/dev/null
    else
        db=$dir/r0/data/storeflow.db
    fi
    PORTS=()
    for i in $(seq 0 $((n - 1))); do start_daemon "$dir/r$i" "$url"; done
    # connections split evenly; one wrk thread per wrk, two with a single daemon
    th=$((n == 1 ? 2 : 1))
    local s0 pg0=0 t0 t1 t2 state x0=0 w0=0 ev unplanned jobs open dead att
    s0=$(ticks "${DPIDS[@]}")
    [[ "$cfg" == sqlite ]] || { pg0=$(pg_ticks); read -r x0 w0 <<<"$(psqlq "$db" "$PG_STATS_SQL")"; }
    t0=$(date +%s.%N)
    for i in $(seq 0 $((n - 1))); do
        c=$((CONNECTIONS / n + (i < CONNECTIONS % n ? 1 : 0)))
        BODIES_FILE="$WORK/bodies$i.bin" WRK_THREADS=$th wrk -t"$th" -c"$c" -d"$DURATION" \
            -s "$PEER_BENCH/post-unique.lua" "http://127.0.0.1:${PORTS[$i]}/hooks/sellix" >"$dir/wrk$i.txt" 2>&1 &
        WPIDS+=($!)
    done
    for i in "${WPIDS[@]}"; do wait "$i" || fail "$cfg run $run: wrk failed"; done
    WPIDS=()
    t1=$(date +%s.%N)
    local until_s=$(($(date +%s) + DRAIN_MAX))
    while :; do
        state=$(journal_q "$cfg" "$db" "$STATE_SQL")
        read -r ev unplanned jobs open dead att <<<"$state"
        [[ "$unplanned" == 0 && "$open" == 0 ]] && break
        (($(date +%s) < until_s)) || { fail "$cfg run $run: no drain in $DRAIN_MAX s ($state)"; break; }
        sleep 1
    done
    t2=$(date +%s.%N)
    local s1 pg1=0 x1=0 w1=0 fences="-"
    s1=$(ticks "${DPIDS[@]}")
    if [[ "$cfg" != sqlite ]]; then
        pg1=$(pg_ticks); read -r x1 w1 <<<"$(psqlq "$db" "$PG_STATS_SQL")"
        fences=$(psqlq "$db" "SELECT coalesce(sum(fence), 0) FROM jobs")
    fi
    local acked_d acked_w=0 p50s="" p99=0 line
    acked_d=$(accepted_sum)
    for i in $(seq 0 $((n - 1))); do
        line=$(grep '^BENCH' "$dir/wrk$i.txt") || { fail "no BENCH line: $(cat "$dir/wrk$i.txt")"; continue; }
        acked_w=$((acked_w + $(awk '{for (i = 1; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}}
            END {print v["requests"] - v["non2xx"] - v["dup"]}' <<<"$line")))
        p50s+="$(sed -n 's/.* p50_ms=\([^ ]*\).*/\1/p' <<<"$line") "
        p99=$(awk -v a="$p99" -v b="$(sed -n 's/.* p99_ms=\([^ ]*\).*/\1/p' <<<"$line")" 'BEGIN {print (b > a ? b : a)}')
        grep -q ' non2xx=0 .*timeout=0 dup=0' <<<"$line" || fail "$cfg run $run wrk$i: $line"
    done
    # checks
    # a request in flight when wrk stops is committed, but its client is gone: the handler is
    # dropped before it counts the answer, so up to CONNECTIONS events may exceed both counts
    ((ev >= acked_d && ev >= acked_w && ev <= acked_d + CONNECTIONS)) ||
        fail "$cfg run $run: $ev events journaled; the daemons counted $acked_d accepted, wrk $acked_w answered 2xx"
    echo "   $cfg run $run: $ev events journaled, $acked_d counted accepted by the daemons, $acked_w answered 2xx to wrk" >&2
    [[ "$jobs" == "$ev" && "$dead" == 0 && "$open" == 0 ]] || fail "$cfg run $run: $ev events, $jobs jobs, $open open, $dead dead"
    local per_replica
    per_replica=$(python3 - "$jobs" "$dir"/r*/data/slack.jsonl <<'PY'
import collections, json, sys
jobs, keys, per = int(sys.argv[1]), collections.Counter(), []
for path in sys.argv[2:]:
    n = 0
    try:
        for line in open(path):
            keys[json.loads(line)["key"]] += 1; n += 1
    except FileNotFoundError:
        pass
    per.append(str(n))
twice = sum(1 for k, c in keys.items() if c > 1)
print("/".join(per))
if sum(keys.values()) != jobs or twice:
    sys.exit(f"slack.jsonl: {sum(keys.values())} lines for {jobs} jobs, {twice} keys twice")
PY
    ) || fail "$cfg run $run: $per_replica"
    local errors warns
    errors=$(cat "$dir"/r*/daemon.log | grep -c ' ERROR ' || true)
    warns=$(cat "$dir"/r*/daemon.log | grep -v 'has no token' | grep -c ' WARN ' || true)
    ((errors == 0)) || fail "$cfg run $run: $errors ERROR lines: $(grep -h ' ERROR ' "$dir"/r*/daemon.log | head -n3)"
    ((warns == 0)) || echo "   $cfg run $run: $warns WARN lines, e.g. $(grep -h ' WARN ' "$dir"/r*/daemon.log | grep -v 'has no token' | head -n2)" >&2
    stop_daemons
    [[ "$cfg" == sqlite || -z "${STATS:-}" ]] || pg_stats "$db" "$ev" >"$dir/pg_stats.txt"
    [[ "$cfg" == sqlite ]] || psqlq postgres "DROP DATABASE $db" >/dev/null || true
    awk -v cfg="$cfg" -v run="$run" -v ev="$ev" -v aw="$acked_w" -v a="$t0" -v b="$t1" -v c="$t2" \
        -v jobs="$jobs" -v att="$att" -v fen="$fences" -v ds="$((s1 - s0))" -v dp="$((pg1 - pg0))" \
        -v hz="$CLK_TCK" -v dx="$((x1 - x0))" -v dw="$((w1 - w0))" -v m="$(tr ' ' '\n' <<<"$p50s" | grep . | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')" -v p99="$p99" \
        -v per="$per_replica" -v warns="$warns" 'BEGIN {
        printf "%s\t%d\t%d\t%.0f\t%.1f\t%.0f\t%.1f\t%.0f\t%.0f\t%s\t%.0f\t%.0f\t%.0f\t%.1f\t%.0f\t%s\t%s\t%s\t%d\n",
            cfg, run, ev, aw / (b - a), c - b, ev / (c - a), m, p99, jobs / (c - a),
            (fen == "-" ? "-" : sprintf("%.0f", fen / (c - a))),
            ds * 1e6 / hz / ev, dp * 1e6 / hz / ev, (ds + dp) * 1e6 / hz / ev,
            dx / ev, (dw ? dw / ev : 0), per, att, fen, warns
    }' >>"$RESULTS"
    tail -n1 "$RESULTS" | awk -F'\t' '{printf "%-6s run %s: %6d events  intake %5.0f/s  drain %5.1f s  e2e %5.0f/s  p50 %s ms  p99 %s ms  jobs %s/s  claims %s/s  cpu sf %s + pg %s = %s us/event  pg commits/event %s  WAL %s B/event  deliveries per replica %s\n",
        $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16}'
}

echo "replicas.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), nproc $(nproc), $PGVERSION on 127.0.0.1:$PGPORT (fsync=on, synchronous_commit=on)"
echo "replicas.sh: wrk $CONNECTIONS connections in all for $DURATION per configuration; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
(while :; do cut -d' ' -f1 /proc/loadavg; sleep 5; done) >"$WORK/loadavg.txt" &
LOADS=$!
for run in $(seq "$RUNS"); do
    for cfg in $CONFIGS; do run_config "$cfg" "$run"; done
done
kill "$LOADS" 2>/dev/null || true
echo ""
echo "load average during the run (sampled every 5 s): min $(sort -g "$WORK/loadavg.txt" | head -n1), max $(sort -g "$WORK/loadavg.txt" | tail -n1)"
echo "== medians of $RUNS run(s)"
python3 - "$RESULTS" "$CONFIGS" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
cols = ["events", "intake req/s", "drain s", "e2e req/s", "p50 ms", "p99 ms", "jobs/s",
        "claims/s", "sf us/ev", "pg us/ev", "total us/ev", "pg commits/ev", "WAL B/ev"]
print("| config | " + " | ".join(cols) + " |")
print("|---" * (len(cols) + 1) + "|")
for cfg in sys.argv[2].split():
    mine = [r for r in rows if r[0] == cfg]
    if not mine:
        continue
    out = []
    for i in range(2, 15):
        vals = [r[i] for r in mine if r[i] != "-"]
        out.append("-" if not vals else f"{statistics.median(float(v) for v in vals):,.{1 if i in (4, 6, 7, 13) else 0}f}")
    print(f"| {cfg} | " + " | ".join(out) + " |")
PY
exit "$FAILED"
