//! Timers (DESIGN.md §12, issue 13), three numbers recorded in BENCHMARKS.md:
//!
//! 1. firing throughput with 100,000 pending timers that are all due: the real daemon
//!    (`app::run`) fires them into jobs (the dispatcher runs those jobs at the same time);
//! 2. start-up with those 100,000 pending timers: from `app::run` to `/healthz` answering;
//! 3. the pipeline's per-event cost (plan + commit, as the pipeline does it) with a `wait` rule
//!    against the same rule without the wait.
//!
//! `cargo bench --bench timers` (a plain `main`, no criterion: each number is one long run).

use std::path::Path;
use std::time::{Duration, Instant};

use storeflow::config::Config;
use storeflow::journal::{SqliteStore, Store, Write};
use storeflow::model::event::Timestamp;
use storeflow::plan::{try_plan, JournalState};
use storeflow::rules::{load_dir, LoadOptions};
use storeflow::sources::{registry, verify};

const TIMERS: usize = 100_000;
const EVENTS: usize = 20_000;
const WAIT_RULE: &str = "rules:\n  - name: r\n    on: order.paid\n    wait: { for: 48h, unless: [order.shipped, order.cancelled] }\n    actions:\n      - flag: { kind: late, note: \"{{ order.id }}\" }\n";

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (startup, firing) = rt.block_on(fire_pending());
    println!(
        "start-up with {TIMERS} pending timers: {:.0} ms",
        startup.as_secs_f64() * 1e3
    );
    println!(
        "fired {TIMERS} timers in {:.2} s: {:.0} timers/s",
        firing.as_secs_f64(),
        TIMERS as f64 / firing.as_secs_f64()
    );
    let plain = "rules:\n  - name: r\n    on: order.paid\n    actions:\n      - flag: { kind: late, note: \"{{ order.id }}\" }\n";
    let waiting = WAIT_RULE;
    let bare = waiting.replace(", unless: [order.shipped, order.cancelled]", "");
    let mut runs: Vec<(f64, f64, f64)> = Vec::new();
    for _ in 0..3 {
        runs.push((per_event(plain), per_event(waiting), per_event(&bare)));
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let plain = median(runs.iter().map(|r| r.0).collect());
    let waiting = median(runs.iter().map(|r| r.1).collect());
    let bare = median(runs.iter().map(|r| r.2).collect());
    println!(
        "pipeline per event ({EVENTS} events, median of 3): without wait {plain:.1} µs, with wait {waiting:.1} µs ({:+.1} %), wait without unless {bare:.1} µs ({:+.1} %)",
        (waiting / plain - 1.0) * 100.0,
        (bare / plain - 1.0) * 100.0
    );
}

/// Writes 100,000 pending timers, all due, straight into a fresh journal.
fn seed_timers(db: &Path) {
    SqliteStore::open(db).expect("journal");
    let mut conn = rusqlite::Connection::open(db).expect("open");
    let tx = conn.transaction().expect("tx");
    let due = Timestamp::now().millis() - 1_000;
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO timers (event_id, rule, kind, action_index, source, order_id, status,
                                     due_at, created_at, jobs)
                 VALUES (?1, 'r', 'wait', -1, 'sellix', ?2, 'pending', ?3, ?3, ?4)",
            )
            .expect("prepare");
        let jobs = r#"[{"rule":"r","action_index":0,"kind":"log","params":{"message":"late"}}]"#;
        for i in 0..TIMERS {
            insert
                .execute(rusqlite::params![
                    format!("evt_{i:08}"),
                    i.to_string(),
                    due,
                    jobs
                ])
                .expect("insert");
        }
    }
    tx.commit().expect("commit");
}

/// Starts the daemon over 100,000 due timers: (time to `/healthz`, time until none is pending).
async fn fire_pending() -> (Duration, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let db = data.join("storeflow.db");
    seed_timers(&db);
    // The timers' rule, with an `unless`: firing each wait reads its order's timeline (an
    // `unless` event journaled before the wait started cancels it at its due time).
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).expect("rules dir");
    std::fs::write(rules.join("r.yaml"), WAIT_RULE).expect("rules");
    let yaml = format!(
        "data_dir: {}\nrules_dir: {}\n",
        data.display(),
        dir.path().join("rules").display()
    );
    let config = Config::parse(&yaml, Path::new("bench.yaml"), |_| None).expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let health = format!("http://{}/healthz", listener.local_addr().expect("addr"));
    let stop = tokio_util::sync::CancellationToken::new();
    let started = Instant::now();
    let task = tokio::spawn(storeflow::app::run(config, listener, stop.clone()));
    while !reqwest::get(&health)
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let startup = started.elapsed();
    let reader = SqliteStore::open_existing(&db).expect("reader");
    while reader.timers_pending().expect("count") > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let firing = started.elapsed();
    stop.cancel();
    let _ = task.await;
    (startup, firing)
}

/// Journals EVENTS distinct `order:paid` events, then plans and commits them as the pipeline
/// does (batches of 256); answers µs per event.
fn per_event(rules: &str) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules_dir = dir.path().join("rules");
    std::fs::create_dir_all(&rules_dir).expect("rules dir");
    std::fs::write(rules_dir.join("r.yaml"), rules).expect("rules");
    let set = load_dir(&rules_dir, &LoadOptions::default())
        .rules
        .expect("rules load");
    let mut store = SqliteStore::open(&dir.path().join("storeflow.db")).expect("journal");
    append_events(&mut store);
    let started = Instant::now();
    loop {
        let pending = store.unprocessed_events(256).expect("read");
        if pending.is_empty() {
            break;
        }
        let writes: Vec<Write> = pending
            .into_iter()
            .map(|e| {
                let e = e.expect("readable");
                let plan = try_plan(&e, &set, &JournalState(&store), &[]).expect("plan");
                Write::Processed(plan.into_processed(&e.id).expect("trace"))
            })
            .collect();
        store.write_batch(&writes, Duration::ZERO).expect("commit");
    }
    started.elapsed().as_secs_f64() * 1e6 / EVENTS as f64
}

fn append_events(store: &mut SqliteStore) {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sellix/order_paid.json");
    let body: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture).expect("fixture")).expect("json");
    let sources = registry(&Config::default());
    let sellix = sources.get("sellix").expect("sellix");
    for chunk in (0..EVENTS).collect::<Vec<_>>().chunks(500) {
        let writes: Vec<Write> = chunk
            .iter()
            .map(|i| {
                let mut b = body.clone();
                b["data"]["uniqid"] = serde_json::json!(format!("order-{i}"));
                let verified = verify::local_file(b.to_string().into_bytes().into(), None);
                let incoming = sellix
                    .normalize(&verified, Timestamp::now())
                    .expect("normalize");
                Write::Append(Box::new(incoming))
            })
            .collect();
        store.write_batch(&writes, Duration::ZERO).expect("append");
    }
}
