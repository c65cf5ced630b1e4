//! The fast path (issue 11) keeps the durability promises: a real daemon with rules, killed
//! with SIGKILL during sustained load, comes back and plans every acknowledged event exactly
//! once and delivers every job; a delivery repeats only when the kill fell between the delivery
//! and the journaling of its attempt (README, "Crash safety": at most `delivery.concurrency`
//! jobs per crash).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use storeflow::journal::{JobStatus, SqliteStore, Store};
use tokio::sync::Mutex;

use crate::helpers::*;

const RULES: &str = "rules:
  - name: paid-to-slack
    on: order.paid
    actions:
      - slack: { text: \"paid {{ order.id }}\" }
";
const CONCURRENCY: usize = 8;

fn order_body(n: usize) -> Vec<u8> {
    format!(r#"{{"event":"order:paid","data":{{"uniqid":"load-{n:05}","status":"COMPLETED","total":{n},"currency":"USD"}}}}"#)
        .into_bytes()
}

fn config(dir: &Path) -> String {
    format!(
        "{SECURED}rules_dir: {}\ndelivery:\n  concurrency: {CONCURRENCY}\n",
        dir.join("rules").display()
    )
}

/// Sends `total` unique signed webhooks over 16 connections until the daemon stops answering;
/// returns the acknowledged event ids.
async fn load(url: String, total: usize, acked: Arc<Mutex<Vec<String>>>) {
    let client = reqwest::Client::new();
    let senders: Vec<_> = (0..16)
        .map(|worker| {
            let (client, url, acked) = (client.clone(), url.clone(), acked.clone());
            tokio::spawn(async move {
                for n in (worker..total).step_by(16) {
                    let body = order_body(n);
                    let sent = client
                        .post(&url)
                        .header("x-sellix-signature", sign(&body))
                        .body(body)
                        .send()
                        .await;
                    let Ok(resp) = sent else { return };
                    let Ok(json) = resp.json::<serde_json::Value>().await else {
                        return;
                    };
                    let Some(id) = json["event_id"].as_str() else {
                        return;
                    };
                    acked.lock().await.push(id.to_string());
                }
            })
        })
        .collect();
    for s in senders {
        s.await.unwrap();
    }
}

/// Slack drop-file lines per idempotency key.
fn delivered(data: &Path) -> HashMap<String, usize> {
    let text = std::fs::read_to_string(data.join("slack.jsonl")).unwrap_or_default();
    let mut keys = HashMap::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a torn slack.jsonl line {line:?}: {e}"));
        *keys
            .entry(v["key"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_sigkill_under_load_with_rules_plans_once_and_delivers_every_job() {
    let dir = dir_with_rules("slack.yaml", RULES);
    let data = dir.path().join("data");
    let daemon = Process::start(dir.path(), &config(dir.path()));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let total = 3_000;
    let sending = tokio::spawn(load(daemon.url("/hooks/sellix"), total, acked.clone()));
    // Kill while webhooks arrive and the pipeline and dispatcher are busy.
    let deadline = Instant::now() + Duration::from_secs(90);
    while acked.lock().await.len() < 600 || !data.join("slack.jsonl").exists() {
        assert!(Instant::now() < deadline, "load too slow");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    daemon.kill9();
    sending.await.unwrap();
    let acked: HashSet<String> = acked.lock().await.iter().cloned().collect();
    assert!(acked.len() < total, "the kill should interrupt the load");

    let daemon = Process::start(dir.path(), &config(dir.path()));
    let store = SqliteStore::open_existing(&data.join("storeflow.db")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let jobs = loop {
        let jobs = store.jobs(None, None, 1_000_000).unwrap();
        let unprocessed = store.unprocessed_events(1).unwrap().len();
        let open = jobs.iter().any(|j| j.status != JobStatus::Done);
        if unprocessed == 0 && !open && jobs.len() >= acked.len() {
            break jobs;
        }
        assert!(
            Instant::now() < deadline,
            "not drained after restart: {unprocessed} unprocessed, {} jobs, open {open}",
            jobs.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    daemon.terminate();

    // Planned exactly once: one trace and one job per journaled event, none for the rest.
    let journaled: HashSet<String> = journal_ids(&data).into_iter().collect();
    assert!(
        acked.is_subset(&journaled),
        "an acknowledged event was lost"
    );
    let mut per_event: HashMap<&str, usize> = HashMap::new();
    for j in &jobs {
        *per_event.entry(j.event_id.as_str()).or_insert(0) += 1;
    }
    for id in &journaled {
        assert_eq!(per_event.get(id.as_str()), Some(&1), "jobs of {id}");
        assert!(store.trace(id).unwrap().is_some(), "no trace for {id}");
    }
    assert_eq!(jobs.len(), journaled.len());

    // Every job delivered; repeats only for the deliveries in flight at the kill.
    let lines = delivered(&data);
    for j in &jobs {
        let key = format!("{}/{}/{}", j.event_id, j.rule, j.action_index);
        assert!(lines.contains_key(&key), "job {key} done but not delivered");
    }
    let repeats: usize = lines.values().map(|n| n - 1).sum();
    assert!(
        repeats <= CONCURRENCY,
        "{repeats} repeated deliveries (at most the {CONCURRENCY} in flight may repeat)"
    );
}

/// Jobs claimed in a batch wait in memory for a delivery permit; while an attempt that could not
/// be journaled is held, none of them may start (each would be another delivery the journal
/// does not know about, sent again after a restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regression_claimed_jobs_do_not_start_while_an_attempt_is_held() {
    use crate::receivers::Receiver;
    use crate::regression_resilience::Immutable;
    use std::sync::mpsc;

    let (arrived, arrivals) = mpsc::channel::<()>();
    let (release, gate) = mpsc::channel::<()>();
    let gate = std::sync::Mutex::new(gate);
    let arrived = std::sync::Mutex::new(arrived);
    let first = std::sync::atomic::AtomicBool::new(true);
    let mut receiver = Receiver::start(move |_| {
        let _ = arrived.lock().unwrap().send(());
        // The first delivery waits here until the journal has been made read-only.
        if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
            // block_in_place: blocking the worker thread itself would also stall the task in
            // its LIFO slot (another worker cannot steal it), e.g. the daemon's pipeline, for the
            // whole wait, and the test would never reach the point where it opens the gate.
            tokio::task::block_in_place(|| {
                let _ = gate.lock().unwrap().recv_timeout(Duration::from_secs(20));
            });
        }
        (200, Vec::new(), "ok".into())
    })
    .await;
    let rules = format!(
        "rules:\n  - name: erp\n    on: order.paid\n    actions:\n      - http: {{ url: \"{}\", json: {{ n: \"{{{{ order.id }}}}\" }} }}\n",
        receiver.url("/hook")
    );
    let yaml = format!("{SECURED}delivery:\n  concurrency: 1\n  retry_schedule: [1s]\n");
    let d = Daemon::start_in(dir_with_rules("erp.yaml", &rules), &yaml).await;
    for n in 0..3 {
        let body = order_body(900 + n);
        let a = post(
            &d.url("/hooks/sellix"),
            &[("x-sellix-signature", &sign(&body))],
            body,
        )
        .await;
        assert_eq!(a.status, 200);
    }
    wait_for("three jobs planned", || {
        let jobs = d.journal().jobs(None, None, 10).unwrap();
        (jobs.len() == 3).then_some(())
    })
    .await;
    let arrivals = tokio::task::spawn_blocking(move || {
        arrivals
            .recv_timeout(Duration::from_secs(20))
            .expect("the first delivery did not start");
        arrivals
    })
    .await
    .unwrap();
    let data = d.dir.path().join("data");
    let Some(immutable) = Immutable::set(vec![
        data.join("storeflow.db-wal"),
        data.join("storeflow.db"),
    ]) else {
        eprintln!("SKIPPED: `chattr +i` does not stop writes here (needs root on ext4/xfs/btrfs)");
        let _ = release.send(());
        d.stop().await;
        return;
    };
    let _ = release.send(());
    receiver.next().await; // the first delivery, now answered; its attempt cannot be journaled
    tokio::time::sleep(Duration::from_secs(2)).await; // a window for a wrong start to show
    assert!(
        arrivals.try_recv().is_err(),
        "a claimed job started while an attempt was held"
    );
    drop(immutable);
    for _ in 0..2 {
        receiver.next().await;
    }
    wait_for("every job done once", || {
        let done = d.journal().jobs(None, Some(JobStatus::Done), 10).unwrap();
        (done.len() == 3).then_some(done)
    })
    .await
    .iter()
    .for_each(|j| assert_eq!(j.attempts, 1, "{j:?}"));
    d.stop().await;
}
