//! Issue 10 (store): the journal is reached only through `journal::` (the seam a PostgreSQL
//! backend plugs into), and shutdown is one token and one tracker that end every task and thread.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::helpers::{post_sellix, wait_for, Daemon, SECURED, SELLIX_FIXTURES};

/// Files under `dir` (recursively) with their text.
fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path.display().to_string(), text));
        }
    }
}

#[test]
fn regression_nothing_outside_the_journal_names_sqlite() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let journal = src.join("journal");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let leaks: Vec<String> = files
        .iter()
        .filter(|(path, _)| !Path::new(path).starts_with(&journal))
        .flat_map(|(path, text)| {
            ["SqliteStore", "rusqlite", "Checkpointer"]
                .into_iter()
                .filter(|name| text.contains(name))
                .map(move |name| format!("{path} names {name}"))
        })
        .collect();
    assert!(leaks.is_empty(), "the journal's backend leaks: {leaks:#?}");
}

#[tokio::test]
async fn regression_shutdown_ends_every_task_and_closes_the_journal_after_its_last_commit() {
    let d = Daemon::start(SECURED).await;
    let (file, event, sig) = SELLIX_FIXTURES[2];
    let answer = post_sellix(&d, file, event, sig).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    let journal = d.journal();
    wait_for("the event to be processed", || {
        use storeflow::journal::Store;
        let events = journal.recent_events(10).unwrap();
        events
            .iter()
            .all(|e| e.status == storeflow::journal::EventStatus::Processed)
            .then_some(())
    })
    .await;
    drop(journal);
    let started = Instant::now();
    let dir = d.stop().await;
    // Nothing waits for a deadline: the SIGHUP task, retention, pipeline and dispatcher all end
    // on the token, and the writer as soon as the last of them let go of the journal.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    // The writer's last step ran before `run` returned: the final TRUNCATE checkpoint.
    let wal = dir.path().join("data/storeflow.db-wal");
    let len = std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert_eq!(len, 0, "the WAL is checkpointed at shutdown");
}

#[test]
fn telemetry_uses_nothing_else_in_the_crate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/telemetry");
    let mut files = Vec::new();
    sources(&dir, &mut files);
    assert!(!files.is_empty());
    for (path, text) in files {
        let upward = text
            .lines()
            .filter(|l| l.contains("crate::") && !l.contains("crate::rate_limited"))
            .collect::<Vec<_>>();
        assert!(
            upward.is_empty(),
            "{path} uses the crate: {upward:?} (every layer calls telemetry)"
        );
    }
}
