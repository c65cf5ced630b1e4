//! Rhai scripts and plugins in a running daemon: intents become jobs that reach real receivers,
//! state persists across restarts, a failing script fails only its own rule, plugins validate
//! at load.

use std::process::Command;

use storeflow::journal::{JobStatus, Store};

use crate::helpers::*;
use crate::receivers::*;

const REPEAT_CUSTOMER: &str = r#"
rules:
  - name: repeat-customer
    on: order.paid
    actions:
      - script: |
          let n = state_incr("orders:" + order.customer.email);
          if n >= 2 { slack("repeat customer " + order.customer.email + ", order " + n); }
          log("orders so far: " + n);
  - name: broken-script
    on: order.paid
    actions:
      - script: |
          let x = 1;
          throw "boom";
  - name: still-runs
    on: order.paid
    actions: [ { log: { message: "paid {{ order.id }}" } } ]
"#;

fn paid(n: u32) -> Vec<u8> {
    format!(r#"{{"event":"order:paid","data":{{"uniqid":"inv-{n}","customer_email":"vip@example.com","total":10}}}}"#).into_bytes()
}

async fn post_paid(d: &Daemon, n: u32) -> String {
    let body = paid(n);
    let a = post(
        &d.url("/hooks/sellix"),
        &[("x-sellix-signature", &sign(&body))],
        body,
    )
    .await;
    assert_eq!(a.status, 200);
    let id = a.json["event_id"].as_str().unwrap().to_string();
    d.trace(&id).await;
    id
}

fn slack_texts(d: &Daemon, id: &str) -> Vec<String> {
    let jobs = d.journal().jobs(Some(id), None, 20).unwrap();
    jobs.iter()
        .filter(|j| j.kind == "slack")
        .map(|j| j.params["text"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn script_intents_become_jobs_and_state_survives_a_restart() {
    let d = Daemon::start_in(dir_with_rules("r.yaml", REPEAT_CUSTOMER), SECURED).await;
    let first = post_paid(&d, 1).await;
    assert!(slack_texts(&d, &first).is_empty(), "first order: no Slack");
    let second = post_paid(&d, 2).await;
    assert_eq!(
        slack_texts(&d, &second),
        vec!["repeat customer vip@example.com, order 2"]
    );

    // The failing script dropped its own rule run and nothing else.
    let trace = d.journal().trace(&second).unwrap().unwrap();
    let broken = trace["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "broken-script")
        .unwrap();
    let error = broken["script_error"].as_str().unwrap();
    assert!(
        error.contains("r.yaml:") && error.contains("boom"),
        "{error}"
    );
    let jobs = d.journal().jobs(Some(&second), None, 20).unwrap();
    assert!(jobs.iter().all(|j| j.rule != "broken-script"));
    assert!(jobs.iter().any(|j| j.rule == "still-runs"));
    let log = jobs
        .iter()
        .find(|j| j.rule == "repeat-customer" && j.kind == "log")
        .unwrap();
    assert_eq!(log.params["message"], "orders so far: 2");
    assert!(
        log.action_index >= 1000,
        "intent jobs have their own index range"
    );

    let dir = d.stop().await;
    let d = Daemon::start_in(dir, SECURED).await;
    let third = post_paid(&d, 3).await;
    assert_eq!(
        slack_texts(&d, &third),
        vec!["repeat customer vip@example.com, order 3"],
        "state persisted"
    );
    d.stop().await;
}

#[tokio::test]
async fn a_plugin_action_posts_to_its_receiver() {
    let mut discord = Receiver::answering(204, "").await;
    let rules = format!(
        "rules:\n  - name: discord-paid\n    on: order.paid\n    actions:\n      - discord_plugin: {{ webhook_url: \"{}\", content: \"paid {{{{ order.id }}}}\" }}\n",
        discord.url("/api/webhooks/1/x")
    );
    let d = Daemon::start_in(dir_with_rules("r.yaml", &rules), SECURED).await;
    let id = post_paid(&d, 7).await;
    let got = discord.next().await;
    assert_eq!(got.path, "/api/webhooks/1/x");
    assert_eq!(got.json()["content"], "paid inv-7");
    wait_for("the discord job to be done", || {
        let jobs = d
            .journal()
            .jobs(Some(&id), Some(JobStatus::Done), 10)
            .unwrap();
        (!jobs.is_empty()).then_some(())
    })
    .await;
    d.stop().await;
}

#[test]
fn check_reports_plugin_parameter_problems_and_script_errors_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("r.yaml"),
        "rules:\n  - name: d\n    on: order.paid\n    actions:\n      - discord_plugin: { webhook_url: \"https://evil.example/x\", content: hi }\n  - name: s\n    on: order.paid\n    actions:\n      - script: \"let x = ;\"\n",
    )
    .unwrap();
    let plugins = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins");
    let config = dir.path().join("storeflow.yaml");
    std::fs::write(
        &config,
        format!(
            "rules_dir: {}\nplugins_dir: {}\n",
            rules.display(),
            plugins.display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_storeflow"))
        .args(["check", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("r.yaml:5:9: error: plugin `discord_plugin`:"),
        "{text}"
    );
    assert!(
        text.contains("r.yaml:9:") && text.contains("Rhai error in `script`"),
        "{text}"
    );
}

#[test]
fn simulate_shows_a_scripts_intents_without_running_them() {
    let dir = tempfile::tempdir().unwrap();
    write_rules(dir.path(), "r.yaml", REPEAT_CUSTOMER);
    let config = dir.path().join("storeflow.yaml");
    std::fs::write(
        &config,
        format!(
            "rules_dir: {}\ndata_dir: {}\n",
            dir.path().join("rules").display(),
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let payload = dir.path().join("paid.json");
    std::fs::write(&payload, paid(1)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_storeflow"))
        .args(["simulate", "--source", "sellix", "-c"])
        .arg(&config)
        .arg(&payload)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("log (from a script or plugin)") && text.contains("orders so far: 1"),
        "{text}"
    );
    assert!(
        text.contains("script failed, the rule would do nothing:") && text.contains("boom"),
        "{text}"
    );
    assert!(!dir.path().join("data").exists(), "nothing journaled");
}

#[tokio::test]
async fn a_dynamic_product_answer_is_the_scripts_output_and_is_journaled() {
    let rules = r#"
rules:
  - name: license-key
    on: sellix/product:dynamic
    actions:
      - script: |
          "LICENSE-" + payload.data.uniqid.to_upper()
"#;
    let d = Daemon::start_in(dir_with_rules("r.yaml", rules), SECURED).await;
    let body = br#"{"event":"product:dynamic","data":{"uniqid":"abc123","customer_email":"buyer@example.com"}}"#.to_vec();
    let headers = [
        ("x-sellix-event", "product:dynamic"),
        ("x-sellix-signature", &*sign(&body)),
    ];
    let send = || async {
        let mut req = reqwest::Client::new()
            .post(d.url("/hooks/sellix"))
            .body(body.clone());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    };
    assert_eq!(send().await, (200, "LICENSE-ABC123".to_string()));
    // Sellix does not retry, but a repeated delivery gets the same product, not a new one.
    assert_eq!(send().await, (200, "LICENSE-ABC123".to_string()));
    let events = d.journal().recent_events(10).unwrap();
    assert_eq!(events.len(), 1);
    let kept = d
        .journal()
        .state(&format!("dynamic:{}", events[0].id))
        .unwrap();
    assert_eq!(kept, Some(serde_json::json!("LICENSE-ABC123")));
    d.stop().await;
}

#[test]
fn rule_tests_can_expect_a_scripts_intents() {
    let dir = tempfile::tempdir().unwrap();
    let rules = r#"
rules:
  - name: greet
    on: order.paid
    actions:
      - script: |
          slack("thanks " + order.customer.email);
tests:
  - name: the script posts a thank-you
    source: sellix
    payload: { event: "order:paid", data: { uniqid: t1, customer_email: a@example.com } }
    expect:
      fired: [greet]
      actions:
        - rule: greet
          kind: slack
          equals: { text: "thanks a@example.com" }
"#;
    write_rules(dir.path(), "r.yaml", rules);
    let config = dir.path().join("storeflow.yaml");
    std::fs::write(
        &config,
        format!("rules_dir: {}\n", dir.path().join("rules").display()),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_storeflow"))
        .args(["test", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("PASS r.yaml: the script posts a thank-you"),
        "{text}"
    );
}
