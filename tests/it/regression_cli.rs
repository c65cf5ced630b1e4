//! Regressions of the command line a new user hit (issue 9): a closed pipe, retries that lost
//! their history, dead letters and flags that could not be handled, a second rule's flag note
//! dropped, retention that left files and script state behind, `events show` as raw JSON.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use storeflow::journal::{FlagFilter, JobStatus, Store, Write};

use crate::helpers::*;
use crate::receivers::Receiver;

/// Writes `<dir>/storeflow.yaml` for the CLI, pointing at the daemon's data and rules.
fn cli_config(dir: &Path, extra: &str) -> String {
    let config = dir.join("storeflow.yaml");
    let text = format!(
        "data_dir: {}\nrules_dir: {}\n{extra}",
        dir.join("data").display(),
        dir.join("rules").display()
    );
    std::fs::write(&config, text).unwrap();
    config.to_str().unwrap().to_string()
}

fn storeflow(config: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_storeflow"))
        .args(args)
        .args(["-c", config])
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn post_shipped(d: &Daemon) -> String {
    let url = d.url(&format!("/hooks/selldone/{SELLDONE_TOKEN}"));
    let sent = post(&url, &[], fixture("selldone/SentOrder.json")).await;
    assert_eq!(sent.status, 200);
    sent.json["event_id"].as_str().unwrap().to_string()
}

async fn job_of(d: &Daemon, event: &str, rule: &str, status: JobStatus) -> storeflow::journal::Job {
    job_of_kind(d, event, rule, None, status).await
}

/// Waits for the job of `rule` (and of action `kind`, when the rule has several actions).
async fn job_of_kind(
    d: &Daemon,
    event: &str,
    rule: &str,
    kind: Option<&str>,
    status: JobStatus,
) -> storeflow::journal::Job {
    wait_for(
        &format!("{rule} {kind:?} to be {}", status.as_str()),
        || {
            let jobs = d.journal().jobs(Some(event), None, 100).unwrap();
            jobs.into_iter()
                .find(|j| j.rule == rule && j.status == status && kind.is_none_or(|k| j.kind == k))
        },
    )
    .await
}

#[tokio::test]
async fn regression_closed_pipe_is_a_quiet_exit_for_every_listing_command() {
    let rules = "rules:\n  - name: flag-disputes\n    on: order.disputed\n    actions:\n      - flag: { kind: dispute, note: n }\n";
    let d = Daemon::start_in(dir_with_rules("r.yaml", rules), SECURED).await;
    let (file, event, sig) = SELLIX_FIXTURES[4];
    let id = post_sellix(&d, file, event, sig).await.json["event_id"]
        .as_str()
        .unwrap()
        .to_string();
    let job = job_of(&d, &id, "flag-disputes", JobStatus::Done).await;
    let job = job.id.to_string();
    let c = cli_config(d.dir.path(), "");
    let commands: &[&[&str]] = &[
        &["events"],
        &["events", "--json"],
        &["events", "show", &id],
        &["events", "show", &id, "--json"],
        &["jobs"],
        &["jobs", "--json"],
        &["jobs", "show", &job],
        &["flags"],
        &["flags", "--all", "--json"],
    ];
    for args in commands {
        // The reader is gone before the command writes its first byte, as after `| head -1`.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_storeflow"))
            .args(*args)
            .args(["-c", &c])
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
    }
    d.stop().await;
}

/// A rule whose `http` action fails permanently (the receiver answers 400 on `/bad`) next to a
/// Slack message that succeeds (`slack.jsonl`).
fn failing_rule(receiver: &Receiver, path: &str) -> String {
    format!(
        "rules:\n  - name: notify-erp\n    on: order.shipped\n    actions:\n      - slack: {{ text: \"shipped {{{{ order.id }}}}\" }}\n      - http: {{ url: \"{}\", json: {{ order: \"{{{{ order.id }}}}\" }} }}\n",
        receiver.url(path)
    )
}

async fn erp() -> Receiver {
    Receiver::start(|r| {
        let status = if r.path == "/good" { 200 } else { 400 };
        (status, Vec::new(), "x".into())
    })
    .await
}

#[tokio::test]
async fn regression_retry_keeps_the_attempt_history_numbered_across_retries() {
    let mut receiver = erp().await;
    let dir = dir_with_rules("r.yaml", &failing_rule(&receiver, "/bad"));
    let d = Daemon::start_in(dir, SECURED).await;
    let id = post_shipped(&d).await;
    let dead = job_of(&d, &id, "notify-erp", JobStatus::Dead).await;
    receiver.next().await;
    let c = cli_config(d.dir.path(), "");
    for round in 2..=3u32 {
        let out = storeflow(&c, &["jobs", "retry", &dead.id.to_string()]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        receiver.next().await;
        wait_for("the retry to be recorded", || {
            let n = d.journal().attempts(dead.id).unwrap().len() as u32;
            (n == round && d.journal().job(dead.id).unwrap()?.status == JobStatus::Dead)
                .then_some(())
        })
        .await;
    }
    let attempts = d.journal().attempts(dead.id).unwrap();
    let numbers: Vec<u32> = attempts.iter().map(|a| a.number).collect();
    assert_eq!(numbers, vec![1, 2, 3], "{attempts:?}");
    assert!(attempts
        .windows(2)
        .all(|w| w[0].started_at <= w[1].started_at));
    let shown = storeflow(&c, &["jobs", "show", &dead.id.to_string()]);
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["attempts"].as_array().unwrap().len(), 3);
    d.stop().await;
}

#[tokio::test]
async fn regression_replan_uses_the_edited_rules_and_does_not_resend_what_was_done() {
    let mut receiver = erp().await;
    let dir = dir_with_rules("r.yaml", &failing_rule(&receiver, "/bad"));
    let d = Daemon::start_in(dir, SECURED).await;
    let id = post_shipped(&d).await;
    let dead = job_of(&d, &id, "notify-erp", JobStatus::Dead).await;
    assert_eq!(receiver.next().await.path, "/bad");
    let slack = d.dir.path().join("data/slack.jsonl");
    wait_for("the Slack line", || slack.exists().then_some(())).await;

    // The owner fixes the rule; a plain retry would re-send the stored `/bad` URL.
    d.write_rules("r.yaml", &failing_rule(&receiver, "/good"));
    let c = cli_config(d.dir.path(), "");
    let out = storeflow(&c, &["jobs", "retry", "--replan", &dead.id.to_string()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("notify-erp@replan1"), "{}", text(&out));
    assert!(text(&out).contains("already sent"), "{}", text(&out));

    assert_eq!(
        receiver.next().await.path,
        "/good",
        "the edited URL is used"
    );
    let fresh = job_of(&d, &id, "notify-erp@replan1", JobStatus::Done).await;
    assert_eq!(fresh.params["url"], receiver.url("/good"));
    let old = d.journal().job(dead.id).unwrap().unwrap();
    assert_eq!(old.status, JobStatus::Replanned);
    let jobs = d.journal().jobs(Some(&id), None, 100).unwrap();
    assert_eq!(
        jobs.len(),
        3,
        "slack, the dead http job and its replan: {jobs:?}"
    );
    let lines = std::fs::read_to_string(&slack).unwrap().lines().count();
    assert_eq!(
        lines, 1,
        "the Slack action that succeeded is not sent again"
    );
    assert!(
        storeflow(&c, &["jobs", "--status", "dead"])
            .stdout
            .starts_with(b"no jobs"),
        "no dead letter left"
    );
    d.stop().await;
}

#[tokio::test]
async fn regression_dead_letters_can_be_dismissed_and_flags_resolved_or_deleted() {
    let receiver = erp().await;
    let rules = format!(
        "{}  - name: flag-disputes\n    on: order.disputed\n    actions:\n      - flag: {{ kind: dispute, note: first }}\n",
        failing_rule(&receiver, "/bad")
    );
    let d = Daemon::start_in(dir_with_rules("r.yaml", &rules), SECURED).await;
    let id = post_shipped(&d).await;
    let dead = job_of(&d, &id, "notify-erp", JobStatus::Dead).await;
    let (file, event, sig) = SELLIX_FIXTURES[4];
    let disputed = post_sellix(&d, file, event, sig).await.json["event_id"]
        .as_str()
        .unwrap()
        .to_string();
    job_of(&d, &disputed, "flag-disputes", JobStatus::Done).await;
    let c = cli_config(d.dir.path(), "");

    let out = storeflow(&c, &["jobs", "dismiss", &dead.id.to_string()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        d.journal().job(dead.id).unwrap().unwrap().status,
        JobStatus::Dismissed
    );
    assert!(storeflow(&c, &["jobs", "--status", "dead"])
        .stdout
        .starts_with(b"no jobs"));
    let again = storeflow(&c, &["jobs", "dismiss", &dead.id.to_string()]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "only dead letters are dismissed"
    );

    let flag = d.journal().flags(None, FlagFilter::Open, 10).unwrap()[0].id;
    let out = storeflow(&c, &["flags", "resolve", &flag.to_string()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&storeflow(&c, &["flags"]).stdout).starts_with("no open flags"));
    let all = String::from_utf8_lossy(&storeflow(&c, &["flags", "--all"]).stdout).into_owned();
    assert!(all.contains("resolved") && all.contains("first"), "{all}");
    let out = storeflow(&c, &["flags", "delete", &flag.to_string()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(d
        .journal()
        .flags(None, FlagFilter::All, 10)
        .unwrap()
        .is_empty());
    assert_eq!(
        storeflow(&c, &["flags", "delete", &flag.to_string()])
            .status
            .code(),
        Some(1)
    );
    d.stop().await;
}

#[tokio::test]
async fn regression_second_rule_flagging_the_same_order_keeps_its_note() {
    let rules = "rules:\n  - name: flag-disputes\n    on: order.disputed\n    actions:\n      - flag: { kind: dispute, note: \"reason {{ payload.data.paypal_dispute.reason }}\" }\n  - name: flag-big-disputes\n    on: order.disputed\n    actions:\n      - flag: { kind: dispute, note: \"big one: call the buyer\" }\n";
    let d = Daemon::start_in(dir_with_rules("r.yaml", rules), SECURED).await;
    let (file, event, sig) = SELLIX_FIXTURES[4];
    let id = post_sellix(&d, file, event, sig).await.json["event_id"]
        .as_str()
        .unwrap()
        .to_string();
    job_of(&d, &id, "flag-disputes", JobStatus::Done).await;
    job_of(&d, &id, "flag-big-disputes", JobStatus::Done).await;
    let c = cli_config(d.dir.path(), "");
    let out = storeflow(&c, &["flags"]);
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("reason MERCHANDISE_OR_SERVICE_NOT_AS_DESCRIBED"),
        "{listing}"
    );
    assert!(listing.contains("big one: call the buyer"), "{listing}");
    assert!(listing.contains("flag-big-disputes"), "{listing}");
    assert!(
        listing.contains("flagged by more than one rule"),
        "{listing}"
    );
    d.stop().await;
}

#[tokio::test]
async fn regression_retention_removes_old_eml_files_and_dynamic_answers() {
    let rules = "rules:\n  - name: mail-buyer\n    on: order.shipped\n    actions:\n      - email: { to: \"{{ order.customer.email }}\", subject: shipped, body: hi }\n";
    let yaml = format!("{SECURED}retention: 1s\n");
    let d = Daemon::start_in(dir_with_rules("r.yaml", rules), &yaml).await;
    let id = post_shipped(&d).await;
    job_of(&d, &id, "mail-buyer", JobStatus::Done).await;
    let mail = d.dir.path().join("data/mail");
    // The key the intake keeps a dynamic product's answer under.
    let key = storeflow::server::dynamic::state_key(&id);
    d.journal()
        .write_batch(
            &[Write::State(key.clone(), serde_json::json!("answer"))],
            Duration::ZERO,
        )
        .unwrap();
    let dir = d.stop().await;
    let old: Vec<_> = std::fs::read_dir(&mail)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(old.len(), 1, "{old:?}");
    // Everything above must be older than the 1 s retention when the daemon starts again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fresh = mail.join("fresh.eml");
    std::fs::write(&fresh, "x").unwrap();

    let d = Daemon::start_in(dir, &yaml).await;
    wait_for("retention to prune", || {
        let gone = !old[0].exists() && d.journal().state(&key).unwrap().is_none();
        gone.then_some(())
    })
    .await;
    assert!(
        d.journal().event(&id).unwrap().is_none(),
        "the event was pruned too"
    );
    assert!(fresh.exists(), "a recent .eml stays");
    d.stop().await;
}

#[tokio::test]
async fn regression_events_show_starts_with_a_summary_for_people() {
    let rules = "rules:\n  - name: mail-buyer\n    on: order.shipped\n    actions:\n      - email: { to: \"{{ order.customer.email }}\", subject: shipped, body: hi }\n      - slack: { text: shipped }\n  - name: big-orders\n    on: order.shipped\n    match:\n      order.total: { gte: 1000000 }\n    actions:\n      - log: { message: big }\n";
    let d = Daemon::start_in(dir_with_rules("r.yaml", rules), SECURED).await;
    let id = post_shipped(&d).await;
    // The rule has two actions: the .eml exists once the email job (not just any job) is done.
    job_of_kind(&d, &id, "mail-buyer", Some("email"), JobStatus::Done).await;
    let c = cli_config(d.dir.path(), "");
    let out = storeflow(&c, &["events", "show", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        shown.starts_with(&format!("event {id}  selldone/SentOrder")),
        "{shown}"
    );
    assert!(shown.contains("✔ mail-buyer"), "{shown}");
    assert!(
        shown.contains("✘ big-orders")
            && shown.contains("order.total: expected gte 1000000, found"),
        "{shown}"
    );
    assert!(shown.contains("to buyer@example.com"), "{shown}");
    let eml = shown
        .lines()
        .find_map(|l| l.trim().strip_prefix("file "))
        .unwrap_or_else(|| panic!("no .eml path: {shown}"));
    assert!(eml.ends_with(".eml") && Path::new(eml).exists(), "{eml}");
    assert!(!shown.contains("\"payload\""), "no JSON dump: {shown}");
    assert!(
        shown.contains("slack.jsonl (no Slack configured)"),
        "{shown}"
    );

    let out = storeflow(&c, &["events", "show", &id, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["event"]["id"], id.as_str());
    assert!(json["trace"]["rules"].is_array());
    d.stop().await;
}

#[tokio::test]
async fn regression_closed_pipe_is_a_quiet_exit_for_check_simulate_test_sign_and_init() {
    let rules = "rules:\n  - name: flag-disputes\n    on: order.disputed\n    actions:\n      - flag: { kind: dispute, note: n }\n  - name: still-disputed\n    on: order.disputed\n    wait: { for: 1h }\n    actions:\n      - flag: { kind: dispute, note: still }\ntests:\n  - name: a dispute is flagged\n    source: sellix\n    event: order:disputed\n    payload: { event: \"order:disputed\", data: { uniqid: d1 } }\n    expect: { fired: [flag-disputes] }\n";
    let dir = dir_with_rules("r.yaml", rules);
    let c = cli_config(dir.path(), "");
    let body = fixture_path("sellix/order_disputed.json");
    let body = body.to_str().unwrap();
    let project = dir.path().join("new-project").display().to_string();
    let commands: &[&[&str]] = &[
        &["check"],
        &["test"],
        &["simulate", "--source", "sellix", body],
        &["simulate", "--source", "sellix", "--json", body],
        &["sign", "--secret", "s", body],
        &["init", &project],
    ];
    for args in commands {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_storeflow"))
            .args(*args)
            .args(["-c", &c])
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
    }
}
