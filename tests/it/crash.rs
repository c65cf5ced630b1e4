//! The daemon as a real process: SIGKILL during a burst loses no acknowledged event; SIGTERM
//! shuts down cleanly.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::helpers::*;

fn order_body(n: usize) -> Vec<u8> {
    format!(r#"{{"event":"order:paid","data":{{"uniqid":"crash-{n:05}","status":"COMPLETED","total":{n}}}}}"#)
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_burst_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Process::start(dir.path(), SECURED);
    let url = daemon.url("/hooks/sellix");
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let client = reqwest::Client::new();

    // 16 concurrent senders; the daemon is killed while they are still sending.
    let total = 2_000;
    let mut senders = Vec::new();
    for worker in 0..16 {
        let (client, url, acked) = (client.clone(), url.clone(), acked.clone());
        senders.push(tokio::spawn(async move {
            for n in (worker..total).step_by(16) {
                let body = order_body(n);
                let sig = sign(&body);
                let sent = client
                    .post(&url)
                    .header("x-sellix-signature", sig)
                    .body(body)
                    .send()
                    .await;
                let Ok(resp) = sent else { return };
                if resp.status() != 200 {
                    return;
                }
                let Ok(json) = resp.json::<serde_json::Value>().await else {
                    return;
                };
                acked
                    .lock()
                    .await
                    .push(json["event_id"].as_str().unwrap().to_string());
            }
        }));
    }
    // Kill once a good part of the burst is acknowledged.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while acked.lock().await.len() < 300 {
        assert!(std::time::Instant::now() < deadline, "burst too slow");
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    daemon.kill9();
    for s in senders {
        s.await.unwrap();
    }
    let acked: Vec<String> = acked.lock().await.clone();
    assert!(acked.len() < total, "the kill should interrupt the burst");

    let journaled: HashSet<String> = journal_ids(&dir.path().join("data")).into_iter().collect();
    let lost: Vec<&String> = acked.iter().filter(|id| !journaled.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged events lost: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );

    // The daemon comes back over the same journal and serves.
    let daemon = Process::start(dir.path(), SECURED);
    let body = order_body(total + 1);
    let a = post(
        &daemon.url("/hooks/sellix"),
        &[("x-sellix-signature", &sign(&body))],
        body,
    )
    .await;
    assert_eq!(a.status, 200);
    daemon.kill9();
}

#[tokio::test]
async fn sigterm_finishes_cleanly_with_events_kept() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Process::start(dir.path(), SECURED);
    let body = order_body(1);
    let a = post(
        &daemon.url("/hooks/sellix"),
        &[("x-sellix-signature", &sign(&body))],
        body,
    )
    .await;
    assert_eq!(a.status, 200);
    let status = daemon.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(
        journal_ids(&dir.path().join("data")),
        vec![a.json["event_id"].as_str().unwrap()]
    );
}
