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
