//! Issue 8, items 2, 3, 5, 9 and 13: the daemon neither storms nor lies when its journal fails,
//! keeps its WAL bounded, logs repeated failures rate-limited, and keeps spans on their work.
//!
//! How the journal is made to fail, for real: the tests run as root in CI, so `chmod` stops
//! nothing. Two real failure modes are used instead:
//! - the data dir is removed under the running daemon (works anywhere): the writer must notice
//!   that its file is gone and refuse every commit;
//! - `chattr +i` on the database and its WAL (root on ext4/xfs/btrfs): every commit fails with
//!   an I/O error like on a full disk, and `chattr -i` brings it back, so recovery is tested
//!   too. Where `chattr` does not work (not root, tmpfs), that test says so and returns.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use storeflow::journal::{JobStatus, Store};

use crate::helpers::*;
use crate::receivers::*;

/// The order id inside `sellix/order_paid.json`, replaced to make every body unique.
const FIXTURE_UNIQID: &str = "7a31c2-9f0e4b6d21-58c0d3";

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A signed Sellix `order:paid` whose order id is unique (never a duplicate).
fn unique_paid() -> (Vec<u8>, String) {
    let n = UNIQUE.fetch_add(1, Ordering::SeqCst);
    let text = String::from_utf8(fixture("sellix/order_paid.json")).unwrap();
    let body = text
        .replace(FIXTURE_UNIQID, &format!("res-{}-{n}", std::process::id()))
        .into_bytes();
    let sig = sign(&body);
    (body, sig)
}

async fn post_paid(client: &reqwest::Client, base: &str) -> u16 {
    let (body, sig) = unique_paid();
    client
        .post(format!("{base}/hooks/sellix"))
        .header("x-sellix-event", "order:paid")
        .header("x-sellix-signature", sig)
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

async fn health_of(base: &str) -> (u16, serde_json::Value) {
    let r = reqwest::get(format!("{base}/healthz")).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn http_rules(url: &str) -> String {
    format!(
        "rules:\n  - name: notify-erp\n    on: order.paid\n    actions:\n      - http: {{ url: \"{url}\", json: {{ order: \"{{{{ order.id }}}}\" }} }}\n"
    )
}

/// Receiver answering 503 to the first `k` requests, then 200; with a 1 s retry schedule.
async fn storm_setup(k: usize) -> (Receiver, Daemon) {
    let receiver = Receiver::start(scripted(vec![(503, Vec::new(), "busy".into()); k])).await;
    let rules = http_rules(&receiver.url("/hook"));
    let yaml = format!("{SECURED}delivery:\n  retry_schedule: [1s, 1s, 1s]\n  timeout: 5s\n");
    let d = Daemon::start_in(dir_with_rules("erp.yaml", &rules), &yaml).await;
    (receiver, d)
}

/// Posts `k` events and waits until each job's first (refused) attempt is journaled.
async fn jobs_with_one_failed_attempt(receiver: &mut Receiver, d: &Daemon, k: usize) {
    let client = reqwest::Client::new();
    for _ in 0..k {
        assert_eq!(post_paid(&client, &d.base).await, 200);
    }
    for _ in 0..k {
        receiver.next().await;
    }
    wait_for("every first attempt to be journaled", || {
        let jobs = d
            .journal()
            .jobs(None, Some(JobStatus::Pending), 100)
            .unwrap();
        (jobs.len() == k && jobs.iter().all(|j| j.attempts == 1)).then_some(())
    })
    .await;
}

/// Counts deliveries per job (idempotency key) until `at_least` arrived, then for `quiet` more
/// (a storm re-sends thousands of times a second: a few seconds show it).
async fn deliveries_per_job(
    receiver: &mut Receiver,
    at_least: usize,
    quiet: Duration,
) -> HashMap<String, usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut count = |r: Recorded| {
        let key = r.header("x-storeflow-idempotency-key").unwrap().to_string();
        *seen.entry(key).or_default() += 1;
    };
    for _ in 0..at_least {
        count(receiver.next().await);
    }
    let until = Instant::now() + quiet;
    while Instant::now() < until {
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(100), receiver.next()).await {
            count(r);
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_unjournaled_attempt_is_not_resent_after_the_journal_is_removed() {
    const K: usize = 4;
    let (mut receiver, d) = storm_setup(K).await;
    jobs_with_one_failed_attempt(&mut receiver, &d, K).await;

    std::fs::remove_dir_all(d.dir.path().join("data")).unwrap();
    // The first retry is delivered but cannot be journaled: it is held, never sent again, and
    // no other job starts while the journal fails.
    let seen = deliveries_per_job(&mut receiver, 1, Duration::from_secs(3)).await;
    assert_eq!(
        seen.values().max(),
        Some(&1),
        "a delivered job whose outcome could not be journaled was sent again: {seen:?}"
    );

    let client = reqwest::Client::new();
    assert_eq!(post_paid(&client, &d.base).await, 503, "never acknowledged");
    let (status, health) = health_of(&d.base).await;
    assert_eq!((status, &health["status"]), (503, &"unhealthy".into()));
    d.stop().await;
}

/// Makes files immutable while alive (`chattr +i`), mutable again on drop (also on a panic, or
/// the temporary dir could not be removed).
pub(crate) struct Immutable(Vec<std::path::PathBuf>);

impl Immutable {
    pub(crate) fn set(paths: Vec<std::path::PathBuf>) -> Option<Immutable> {
        let ok = paths.iter().all(|p| chattr("+i", p));
        let guard = Immutable(paths);
        if !ok {
            return None;
        }
        // Root bypasses permissions, not the immutable flag; check it really refuses writes.
        let probe = std::fs::OpenOptions::new().append(true).open(&guard.0[0]);
        probe.is_err().then_some(guard)
    }
}

fn chattr(flag: &str, path: &Path) -> bool {
    Command::new("chattr")
        .arg(flag)
        .arg(path)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for p in &self.0 {
            chattr("-i", p);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_unjournaled_attempt_is_not_resent_while_commits_fail() {
    const K: usize = 4;
    let (mut receiver, d) = storm_setup(K).await;
    jobs_with_one_failed_attempt(&mut receiver, &d, K).await;

    let data = d.dir.path().join("data");
    let files = vec![data.join("storeflow.db-wal"), data.join("storeflow.db")];
    let Some(immutable) = Immutable::set(files) else {
        eprintln!("SKIPPED: `chattr +i` does not stop writes here (needs root on ext4/xfs/btrfs)");
        d.stop().await;
        return;
    };
    let mut seen = deliveries_per_job(&mut receiver, 1, Duration::from_secs(3)).await;
    assert_eq!(
        seen.values().max(),
        Some(&1),
        "a delivered job whose outcome could not be journaled was sent again: {seen:?}"
    );
    let held = seen.len();
    let client = reqwest::Client::new();
    assert_eq!(post_paid(&client, &d.base).await, 503);
    let (status, health) = health_of(&d.base).await;
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["journal"]["status"], "failing", "{health}");

    drop(immutable);
    wait_for_async("the journal to recover", || async {
        (health_of(&d.base).await.0 == 200).then_some(())
    })
    .await;
    wait_for("the held attempts to be journaled as done", || {
        let done = d.journal().jobs(None, Some(JobStatus::Done), 100).unwrap();
        (done.len() == K).then_some(done)
    })
    .await
    .iter()
    .for_each(|j| assert_eq!(j.attempts, 2, "{j:?}"));
    assert_eq!(post_paid(&client, &d.base).await, 200, "intake recovered");
    // The jobs that waited and the new event's job are delivered once each; the held ones
    // (journaled as done) are not sent again.
    let after = deliveries_per_job(&mut receiver, K - held + 1, Duration::from_secs(1)).await;
    for (key, n) in after {
        *seen.entry(key).or_default() += n;
    }
    assert_eq!(seen.len(), K + 1, "{seen:?}");
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    d.stop().await;
}

/// `storeflow serve` as a process whose log lines are kept.
struct Logged {
    child: Child,
    base: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Logged {
    fn start(dir: &Path, yaml: &str) -> Logged {
        let config = dir.join("storeflow.yaml");
        let data = dir.join("data");
        std::fs::write(
            &config,
            format!(
                "listen: 127.0.0.1:0\ndata_dir: {}\nrules_dir: {}\n{yaml}",
                data.display(),
                dir.join("rules").display()
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_storeflow"))
            .args(["serve", "-c"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let kept = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listening on ").nth(1) {
                    let _ = tx.send(addr.split_whitespace().next().unwrap_or("").to_string());
                }
                kept.lock().unwrap().push(line);
            }
        });
        let base = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        Logged { child, base, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_deleted_journal_is_never_acknowledged_and_logs_do_not_flood() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Logged::start(dir.path(), SECURED);
    let client = reqwest::Client::new();
    assert_eq!(post_paid(&client, &daemon.base).await, 200);
    assert_eq!(health_of(&daemon.base).await.0, 200);

    std::fs::remove_dir_all(dir.path().join("data")).unwrap();
    let logged_before = daemon.lines().len();
    let (status, health) = health_of(&daemon.base).await;
    assert_eq!(
        status, 503,
        "unhealthy before anything is written: {health}"
    );
    assert_eq!(health["status"], "unhealthy");
    let reason = health["journal"]["error"].as_str().unwrap();
    assert!(reason.contains("removed or replaced"), "{reason}");
    assert!(
        !reason.contains(dir.path().to_str().unwrap()),
        "no paths on /healthz"
    );

    for _ in 0..300 {
        assert_eq!(post_paid(&client, &daemon.base).await, 503);
    }
    let lines = wait_for("the refusal to be logged", || {
        let lines = daemon.lines();
        lines
            .iter()
            .any(|l| l.contains("ERROR") && l.contains("removed or replaced"))
            .then_some(lines)
    })
    .await;
    let after = &lines[logged_before..];
    assert!(
        after.len() <= 10,
        "300 refused webhooks logged {} lines:\n{}",
        after.len(),
        after.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_delivery_spans_do_not_nest_or_leak_into_intake() {
    // A receiver that accepts connections and never answers: every delivery awaits its timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", silent.local_addr().unwrap());
    std::thread::spawn(move || {
        let held: Vec<_> = silent.incoming().map_while(Result::ok).collect();
        drop(held);
    });
    let dir = tempfile::tempdir().unwrap();
    write_rules(dir.path(), "erp.yaml", &http_rules(&url));
    let yaml =
        format!("{SECURED}delivery:\n  retry_schedule: [1s]\n  timeout: 1s\n  concurrency: 16\n");
    let daemon = Logged::start(dir.path(), &yaml);
    let client = reqwest::Client::new();
    for _ in 0..40 {
        assert_eq!(post_paid(&client, &daemon.base).await, 200);
    }
    let lines = wait_for("retries to be logged", || {
        let lines = daemon.lines();
        (lines.iter().filter(|l| l.contains("will retry")).count() >= 20).then_some(lines)
    })
    .await;
    for line in &lines {
        let spans = line.matches("deliver{").count();
        assert!(spans <= 1, "nested delivery spans: {line}");
        if line.contains("webhook accepted") {
            assert_eq!(spans, 0, "an intake line inside a delivery: {line}");
        }
        if line.contains("will retry") {
            assert_eq!(spans, 1, "a delivery line outside its span: {line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regression_wal_stays_bounded_under_sustained_load_and_shrinks_when_idle() {
    const LIMIT: u64 = 64 * 1024 * 1024;
    let rules = "rules:\n  - name: log-paid\n    on: order.paid\n    actions:\n      - log: { message: \"paid {{ order.id }}\" }\n";
    let d = Daemon::start_in(dir_with_rules("log.yaml", rules), SECURED).await;
    let wal = d.dir.path().join("data/storeflow.db-wal");
    let size = move || std::fs::metadata(&wal).map_or(0, |m| m.len());
    let stop = Instant::now() + Duration::from_secs(30);
    let accepted = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let load: Vec<_> = (0..16)
        .map(|_| {
            let (base, accepted, refused) = (d.base.clone(), accepted.clone(), refused.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                while Instant::now() < stop {
                    let counter = match post_paid(&client, &base).await {
                        200 => &accepted,
                        _ => &refused,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let mut samples = Vec::new();
    while Instant::now() < stop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        samples.push(size());
    }
    for task in load {
        task.await.unwrap();
    }
    let max = samples.iter().copied().max().unwrap_or(0);
    let n = accepted.load(Ordering::Relaxed);
    eprintln!("WAL under load: {n} webhooks in 30 s, max {max} bytes, samples {samples:?}");
    assert!(n > 1_000, "the load did not run: {n} webhooks");
    // A checkpoint that holds the write lock makes commits wait, never fail.
    assert_eq!(
        refused.load(Ordering::Relaxed),
        0,
        "webhooks refused under load"
    );
    assert!(max < LIMIT, "WAL reached {max} bytes: {samples:?}");
    let idle = wait_for("the WAL to shrink when idle", || {
        let s = size();
        (s < 1024 * 1024).then_some(s)
    })
    .await;
    eprintln!("WAL when idle: {idle} bytes");
    d.stop().await;
}
