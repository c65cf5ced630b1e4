//! `storeflow backup` on a daemon that keeps taking webhooks: the copy holds every event
//! acknowledged before it started, is a sound SQLite file, and a daemon restored from it serves
//! (and still knows its deliveries, so a platform's retry is answered as a duplicate).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::helpers::*;

fn order_body(n: usize) -> Vec<u8> {
    format!(r#"{{"event":"order:paid","data":{{"uniqid":"backup-{n:05}","status":"COMPLETED","total":{n}}}}}"#)
        .into_bytes()
}

async fn post_order(url: &str, n: usize) -> Answer {
    let body = order_body(n);
    let sig = sign(&body);
    post(url, &[("x-sellix-signature", sig.as_str())], body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_serving_holds_every_acknowledged_event_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Process::start(dir.path(), SECURED);
    let url = daemon.url("/hooks/sellix");
    let mut before = Vec::new();
    for n in 0..40 {
        let a = post_order(&url, n).await;
        assert_eq!(a.status, 200, "{}", a.json);
        before.push(a.json["event_id"].as_str().unwrap().to_string());
    }

    // Webhooks keep arriving while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let load = {
        let (stop, sent, url) = (stop.clone(), sent.clone(), url.clone());
        tokio::spawn(async move {
            let mut n = 1_000;
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(post_order(&url, n).await.status, 200);
                sent.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        })
    };
    wait_for("webhooks under way", || {
        (sent.load(Ordering::Relaxed) > 5).then_some(())
    })
    .await;
    let config = dir.path().join("storeflow.yaml");
    let backup_dir = tempfile::tempdir().unwrap();
    let dest = backup_dir.path().join("storeflow.db");
    let (c, d) = (config.clone(), dest.clone());
    let out = tokio::task::spawn_blocking(move || storeflow(&args_for(&c, &d)))
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("backed up "), "{}", stdout(&out));

    let copied = journal_ids(backup_dir.path());
    let missing: Vec<_> = before.iter().filter(|id| !copied.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "backup lacks acknowledged events {missing:?}"
    );
    assert!(
        stdout(&out).contains(&format!("backed up {} events", copied.len())),
        "{}",
        stdout(&out)
    );
    let check: String = rusqlite::Connection::open(&dest)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");

    // A second backup to the same file is refused, and the first copy is left as it was.
    let again = storeflow(&args_for(&config, &dest));
    assert!(!again.status.success());
    assert!(stderr(&again).contains("exists"), "{}", stderr(&again));
    assert_eq!(journal_ids(backup_dir.path()).len(), copied.len());

    // Restore: stop, put the copy in place, start; the old deliveries are still known.
    assert!(daemon.terminate().success());
    let data = dir.path().join("data");
    for f in ["storeflow.db", "storeflow.db-wal", "storeflow.db-shm"] {
        let _ = std::fs::remove_file(data.join(f));
    }
    std::fs::copy(&dest, data.join("storeflow.db")).unwrap();
    let daemon = Process::start(dir.path(), SECURED);
    let url = daemon.url("/hooks/sellix");
    let retry = post_order(&url, 0).await;
    assert_eq!(retry.status, 200);
    assert_eq!(retry.json["duplicate"], true, "{}", retry.json);
    assert_eq!(retry.json["event_id"], before[0].as_str());
    let fresh = post_order(&url, 99_999).await;
    assert_eq!(fresh.json["duplicate"], false, "{}", fresh.json);
}

fn args_for<'a>(config: &'a std::path::Path, dest: &'a std::path::Path) -> [&'a str; 4] {
    [
        "backup",
        "-c",
        config.to_str().unwrap(),
        dest.to_str().unwrap(),
    ]
}
