//! Issue 8, item 1: one webhook must never stop rule processing. Non-finite numbers never reach
//! the journal as something unreadable, and an event that cannot be read or planned is
//! quarantined (listed by `events --status quarantined`, re-queued by `events retry`) instead of
//! failing every pipeline round.

mod fuzz;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use storeflow::journal::{EventStatus, Store};

use crate::helpers::*;

const RULES: &str = r#"
rules:
  - name: log-paid
    on: [order.paid, order.shipped]
    actions:
      - log: { message: "{{ order.id }} x{{ order.items[0].quantity }}" }
"#;

fn event_id(a: &Answer) -> String {
    assert_eq!(a.status, 200, "{}", a.json);
    a.json["event_id"].as_str().unwrap().to_string()
}

/// The fixture `rel` with the value at JSON pointer `ptr` replaced.
fn with_value(rel: &str, ptr: &str, value: Value) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&fixture(rel)).unwrap();
    *body.pointer_mut(ptr).unwrap() = value;
    serde_json::to_vec(&body).unwrap()
}

async fn post_signed_sellix(d: &Daemon, event: &str, body: Vec<u8>) -> Answer {
    let sig = sign(&body);
    let headers = [
        ("x-sellix-event", event),
        ("x-sellix-signature", sig.as_str()),
    ];
    post(&d.url("/hooks/sellix"), &headers, body).await
}

/// The message of the log job the rule planned for `id`.
fn logged(d: &Daemon, id: &str) -> String {
    let jobs = d.journal().jobs(Some(id), None, 10).unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    jobs[0].params["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn regression_nan_quantity_does_not_block_pipeline() {
    let d = Daemon::start_in(dir_with_rules("r.yaml", RULES), SECURED).await;
    let mut odd = Vec::new();
    for q in ["NaN", "-inf", "1e999", "Infinity"] {
        let body = with_value("sellix/order_paid.json", "/data/quantity", q.into());
        odd.push(event_id(&post_signed_sellix(&d, "order:paid", body).await));
    }
    let url = d.url(&format!("/hooks/selldone/{SELLDONE_TOKEN}"));
    let body = with_value(
        "selldone/SentOrder.json",
        "/basket/items/0/count",
        "NaN".into(),
    );
    odd.push(event_id(&post(&url, &[], body).await));
    let (file, event, sig) = SELLIX_FIXTURES[2]; // order_paid.json, unchanged
    let normal = event_id(&post_sellix(&d, file, event, sig).await);

    // The normal event is processed...
    let trace = d.trace(&normal).await;
    assert_eq!(trace["rules"][0]["matched"], true, "{trace}");
    // ...and so is each odd one: a quantity that is no finite number reads as 1, like a missing
    // one, so the event is processed normally (not quarantined).
    for id in &odd {
        let trace = d.trace(id).await;
        assert_eq!(trace["rules"][0]["matched"], true, "{id}: {trace}");
        assert!(logged(&d, id).ends_with(" x1"), "{}", logged(&d, id));
    }
    let quarantined = d.journal().events_with_status(EventStatus::Quarantined, 10);
    assert!(quarantined.unwrap().is_empty());
}

fn storeflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_storeflow"))
        .args(args)
        .output()
        .unwrap()
}

fn cli_config(dir: &Path) -> String {
    let config = dir.join("cli.yaml");
    let yaml = format!("data_dir: {}\n", dir.join("data").display());
    std::fs::write(&config, yaml).unwrap();
    config.to_str().unwrap().to_string()
}

/// Edits one event row by hand, as an operator or a disk fault might.
fn edit_row(dir: &Path, sql: &str, id: &str) {
    let db = rusqlite::Connection::open(dir.join("data/storeflow.db")).unwrap();
    assert_eq!(db.execute(sql, [id]).unwrap(), 1);
}

#[tokio::test]
async fn regression_row_corrupted_by_hand_is_quarantined_and_retried_after_a_fix() {
    let d = Daemon::start_in(dir_with_rules("r.yaml", RULES), SECURED).await;
    let (file, event, sig) = SELLIX_FIXTURES[2];
    let bad = event_id(&post_sellix(&d, file, event, sig).await);
    d.trace(&bad).await;
    let dir = d.stop().await;
    let original: String = rusqlite::Connection::open(dir.path().join("data/storeflow.db"))
        .unwrap()
        .query_row("SELECT order_view FROM events WHERE id = ?1", [&bad], |r| {
            r.get(0)
        })
        .unwrap();
    // Unprocessed again, with an order view that no longer fits the schema.
    let corrupt = "UPDATE events SET processed_at = NULL,
                   order_view = '{\"id\": 5, \"items\": \"many\"}' WHERE id = ?1";
    edit_row(dir.path(), corrupt, &bad);

    let d = Daemon::start_in(dir, SECURED).await;
    let body = with_value("sellix/order_paid.json", "/data/uniqid", "later-1".into());
    let later = event_id(&post_signed_sellix(&d, "order:paid", body).await);
    let trace = d.trace(&later).await;
    assert_eq!(
        trace["rules"][0]["matched"], true,
        "the later event is not blocked"
    );
    let trace = d.trace(&bad).await;
    let reason = trace["quarantined"]["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("order view: "), "{trace}");

    let c = cli_config(d.dir.path());
    let out = storeflow(&["events", "--status", "quarantined", "--json", "-c", &c]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let listed: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 1, "{text}");
    assert_eq!(listed[0]["id"], bad.as_str());
    assert_eq!(listed[0]["status"], "quarantined");
    assert_eq!(listed[0]["reason"], reason);

    // Fixed by hand, then handed back: the running daemon processes it.
    edit_row(
        d.dir.path(),
        &format!(
            "UPDATE events SET order_view = '{}' WHERE id = ?1",
            original.replace('\'', "''")
        ),
        &bad,
    );
    let out = storeflow(&["events", "retry", &bad, "-c", &c]);
    assert!(out.status.success(), "{out:?}");
    wait_for("the re-queued event to be processed", || {
        let t = d.journal().trace(&bad).unwrap()?;
        t.get("rules").map(|_| ())
    })
    .await;
    assert!(logged(&d, &bad).ends_with(" x2"), "{}", logged(&d, &bad));
    let out = storeflow(&["events", "--status", "quarantined", "-c", &c]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "no quarantined events"
    );
    let out = storeflow(&["events", "retry", &bad, "-c", &c]);
    assert_eq!(out.status.code(), Some(1), "nothing left to re-queue");
}
