//! The action table in a running daemon: the built-in `discord` action against a real local
//! receiver (delivered content, 429 with Retry-After, 400 dead at once, webhook URL never shown),
//! scripts and YAML agreeing on parameter case, and `check` naming the valid actions.

use std::process::Command;
use std::time::{Duration, Instant};

use storeflow::journal::{Job, JobStatus, Store};

use crate::helpers::*;
use crate::receivers::*;

fn config(schedule: &str) -> String {
    format!("{SECURED}delivery:\n  retry_schedule: {schedule}\n  timeout: 5s\n")
}

fn discord_rules(webhook_url: &str) -> String {
    format!(
        r#"
rules:
  - name: discord-shipped
    on: order.shipped
    actions:
      - discord:
          webhook_url: "{webhook_url}"
          content: "shipped {{{{ order.id }}}}"
          embeds:
            - title: "Order {{{{ order.id }}}}"
              description: "{{{{ order.customer.name }}}}"
"#
    )
}

async fn post_shipped(d: &Daemon) -> String {
    let url = d.url(&format!("/hooks/selldone/{SELLDONE_TOKEN}"));
    let a = post(&url, &[], fixture("selldone/SentOrder.json")).await;
    assert_eq!(a.status, 200);
    a.json["event_id"].as_str().unwrap().to_string()
}

async fn job_with_status(d: &Daemon, event_id: &str, kind: &str, status: JobStatus) -> Job {
    wait_for(&format!("the {kind} job to be {status:?}"), || {
        let jobs = d.journal().jobs(Some(event_id), None, 10).unwrap();
        jobs.into_iter()
            .find(|j| j.kind == kind && j.status == status)
    })
    .await
}

async fn discord_daemon(receiver: &Receiver, schedule: &str) -> (Daemon, String) {
    let rules = discord_rules(&receiver.url("/api/webhooks/1/hook-token"));
    let d = Daemon::start_in(dir_with_rules("r.yaml", &rules), &config(schedule)).await;
    let id = post_shipped(&d).await;
    (d, id)
}

#[tokio::test]
async fn discord_posts_content_and_embeds_to_the_webhook() {
    let mut hook = Receiver::answering(204, "").await;
    let (d, id) = discord_daemon(&hook, "[100ms]").await;
    let got = hook.next().await;
    assert_eq!(
        (got.method.as_str(), got.path.as_str()),
        ("POST", "/api/webhooks/1/hook-token")
    );
    let body = got.json();
    assert_eq!(body["content"], "shipped 48213");
    assert_eq!(body["embeds"][0]["title"], "Order 48213");
    assert!(body["embeds"][0]["description"].is_string(), "{body}");
    let done = job_with_status(&d, &id, "discord", JobStatus::Done).await;
    assert_eq!(done.attempts, 1);
    d.stop().await;
}

#[tokio::test]
async fn discord_429_waits_for_retry_after_then_succeeds() {
    let slow_down = (
        429,
        vec![("Retry-After", "1".into())],
        r#"{"message": "You are being rate limited.", "retry_after": 1.0, "global": false}"#.into(),
    );
    let mut hook = Receiver::start(scripted(vec![slow_down])).await;
    let (d, id) = discord_daemon(&hook, "[10ms, 10ms]").await;
    hook.next().await;
    let refused_at = Instant::now();
    hook.next().await;
    let gap = refused_at.elapsed();
    let done = job_with_status(&d, &id, "discord", JobStatus::Done).await;
    assert_eq!(done.attempts, 2);
    assert!(
        gap >= Duration::from_millis(950),
        "retried after {gap:?}, before Retry-After"
    );
    d.stop().await;
}

/// Discord also says how long to wait in the JSON body; without the header that counts.
#[tokio::test]
async fn discord_429_without_a_header_waits_for_the_json_retry_after() {
    let slow_down = (
        429,
        vec![],
        r#"{"retry_after": 1.0, "global": false}"#.into(),
    );
    let mut hook = Receiver::start(scripted(vec![slow_down])).await;
    let (d, id) = discord_daemon(&hook, "[10ms, 10ms]").await;
    hook.next().await;
    let refused_at = Instant::now();
    hook.next().await;
    let gap = refused_at.elapsed();
    job_with_status(&d, &id, "discord", JobStatus::Done).await;
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
    d.stop().await;
}

/// A 400 is dead at once (no retry), and its error names Discord's reason but never the
/// webhook URL, here given as `${VAR}`.
#[tokio::test]
async fn discord_400_is_dead_at_once_and_the_error_hides_the_webhook() {
    let mut hook = Receiver::answering(400, r#"{"message": "Cannot send an empty message"}"#).await;
    let url = hook.url("/api/webhooks/1/secret-hook-token");
    std::env::set_var("STOREFLOW_TEST_DISCORD_HOOK_400", &url);
    let rules = discord_rules("${STOREFLOW_TEST_DISCORD_HOOK_400}");
    let d = Daemon::start_in(dir_with_rules("r.yaml", &rules), &config("[10ms, 10ms]")).await;
    let id = post_shipped(&d).await;
    let dead = job_with_status(&d, &id, "discord", JobStatus::Dead).await;
    assert_eq!(hook.next().await.path, "/api/webhooks/1/secret-hook-token");
    assert_eq!(dead.attempts, 1, "a permanent failure is not retried");
    assert!(hook.try_next().is_none());
    let error = dead.last_error.unwrap_or_default();
    assert!(
        error.contains("discord webhook")
            && error.contains("400")
            && error.contains("empty message"),
        "{error}"
    );
    assert!(!error.contains("secret-hook-token"), "{error}");
    assert_eq!(
        dead.params["webhook_url"],
        "${STOREFLOW_TEST_DISCORD_HOOK_400}"
    );
    d.stop().await;
}

/// YAML accepted `method: post`, a script's `http(#{method: "post"})` was refused: both now
/// read the action table, which accepts any case and normalises to upper case.
#[tokio::test]
async fn regression_script_http_method_is_case_insensitive_like_yaml() {
    let mut sink = Receiver::answering(200, "ok").await;
    let rules = format!(
        r#"
rules:
  - name: from-yaml
    on: order.shipped
    actions:
      - http: {{ url: "{yaml_url}", method: put, json: {{ a: 1 }} }}
  - name: from-script
    on: order.shipped
    actions:
      - script: |
          http(#{{ url: "{script_url}", method: "post", json: #{{ b: 2 }} }});
          discord(#{{ webhook_url: "{hook_url}", content: "via script" }});
"#,
        yaml_url = sink.url("/yaml"),
        script_url = sink.url("/script"),
        hook_url = sink.url("/hook"),
    );
    let d = Daemon::start_in(dir_with_rules("r.yaml", &rules), &config("[100ms]")).await;
    let id = post_shipped(&d).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let r = sink.next().await;
        seen.push((r.path.clone(), r.method.clone()));
    }
    seen.sort();
    let want = [("/hook", "POST"), ("/script", "POST"), ("/yaml", "PUT")];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(p, m)| (p.to_string(), m.to_string()))
        .collect();
    assert_eq!(seen, want);
    let jobs = d.journal().jobs(Some(&id), None, 10).unwrap();
    let script_http = jobs
        .iter()
        .find(|j| j.rule == "from-script" && j.kind == "http")
        .expect("the script's http job");
    assert_eq!(script_http.params["method"], "POST", "stored normalised");
    d.stop().await;
}

/// `check` lists the actions from the table (discord included) and suggests the nearest.
#[test]
fn check_suggests_the_nearest_action_from_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("r.yaml"),
        "rules:\n  - name: d\n    on: order.paid\n    actions:\n      - discrod: { content: hi }\n",
    )
    .unwrap();
    let config = dir.path().join("storeflow.yaml");
    std::fs::write(&config, format!("rules_dir: {}\n", rules.display())).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_storeflow"))
        .args(["check", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("unknown action `discrod`") && text.contains("did you mean `discord`?"),
        "{text}"
    );
}
