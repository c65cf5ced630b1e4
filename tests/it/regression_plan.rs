//! Issue 10 (plan): dynamic products answered through one typed function (the layering of
//! every module is checked in `layering.rs`).

use std::time::{Duration, Instant};

use serde_json::json;
use storeflow::model::event::{Event, Timestamp, DYNAMIC_PRODUCT_TOPIC};
use storeflow::plan::dynamic::{product, Answer};
use storeflow::rules::{self, LoadOptions, RuleSet};

use crate::helpers::*;

fn dynamic_rules(script: &str) -> (tempfile::TempDir, RuleSet) {
    let yaml = format!(
        "rules:\n  - name: key\n    on: sellix/product:dynamic\n    actions:\n      - script: |\n          {script}\n"
    );
    let dir = dir_with_rules("r.yaml", &yaml);
    let options = LoadOptions {
        max_operations: u64::MAX / 2, // the deadline, not the budget, stops the endless loop
        ..LoadOptions::default()
    };
    let loaded = rules::load_dir(&dir.path().join("rules"), &options);
    let set = loaded
        .rules
        .unwrap_or_else(|| panic!("{:?}", loaded.diagnostics));
    (dir, set)
}

fn dynamic_event(topic: &str) -> Event {
    Event {
        id: "evt_dyn".into(),
        source: "sellix".into(),
        shop: "default".into(),
        secret: None,
        kind: "product:dynamic".into(),
        topic: topic.into(),
        canonical: None,
        received_at: Timestamp(1_742_040_000_000),
        payload: json!({"event": "product:dynamic", "data": {"uniqid": "abc"}}).into(),
        order: None,
    }
}

#[test]
fn regression_dynamic_product_answer_says_produced_failed_timed_out_or_no_script() {
    let event = dynamic_event(DYNAMIC_PRODUCT_TOPIC);
    let (_d, set) = dynamic_rules(r#""KEY-" + payload.data.uniqid"#);
    assert_eq!(
        product(&set, &event, Duration::from_secs(5)),
        Answer::Produced("KEY-abc".into())
    );

    let (_d, set) = dynamic_rules(r#"throw "out of keys""#);
    let failed = product(&set, &event, Duration::from_secs(5));
    assert!(
        matches!(&failed, Answer::Failed(e) if e.contains("out of keys") && e.contains("r.yaml")),
        "{failed:?}"
    );

    let (_d, set) = dynamic_rules("let x = 0; loop { x += 1; }");
    let started = Instant::now();
    let timed_out = product(&set, &event, Duration::from_millis(200));
    assert!(
        matches!(&timed_out, Answer::TimedOut(e) if e.contains("timed out")),
        "{timed_out:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    let other = dynamic_event("sellix/order:paid");
    assert_eq!(
        product(&set, &other, Duration::from_secs(5)),
        Answer::NoScript
    );
}

const LOG_RULES: &str = r#"
rules:
  - name: log-paid
    on: [order.paid]
    actions:
      - log: { message: "paid {{ order.id }}" }
"#;

/// `events show` read the stored trace by key and found no `rules` in a quarantine trace
/// (`{"quarantined": {"reason"}}`), so it listed nothing and never said why; it now reads the
/// typed trace and shows the reason.
#[tokio::test]
async fn regression_events_show_names_the_quarantine_reason_from_the_trace() {
    use storeflow::journal::{Store, Unreadable, Write};
    let d = Daemon::start_in(dir_with_rules("r.yaml", LOG_RULES), SECURED).await;
    let (file, event, sig) = SELLIX_FIXTURES[2];
    let answer = post_sellix(&d, file, event, sig).await;
    let id = answer.json["event_id"].as_str().unwrap().to_string();
    d.trace(&id).await;
    let dir = d.stop().await;
    // Waiting for the pipeline again, as after a crash; then quarantined, as a planning panic would.
    let db = rusqlite::Connection::open(dir.path().join("data/storeflow.db")).unwrap();
    let unprocessed = "UPDATE events SET processed_at = NULL WHERE id = ?1";
    assert_eq!(db.execute(unprocessed, [&id]).unwrap(), 1);
    drop(db);
    let mut store =
        storeflow::journal::SqliteStore::open_existing(&dir.path().join("data/storeflow.db"))
            .unwrap();
    let quarantine = Write::Quarantine(Unreadable {
        event_id: id.clone(),
        reason: "internal error while planning: boom".into(),
    });
    store
        .write_batch(&[quarantine], Duration::from_secs(60))
        .unwrap();
    let config = dir.path().join("cli.yaml");
    let yaml = format!("data_dir: {}\n", dir.path().join("data").display());
    std::fs::write(&config, yaml).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_storeflow"))
        .args(["events", "show", &id, "-c", config.to_str().unwrap()])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        shown.contains("quarantined, not planned: internal error while planning: boom"),
        "{shown}"
    );
}
