//! Jobs delivered by a running daemon (pipeline → dispatcher → executor) to real servers on
//! loopback: SMTP, Slack, HTTP; retries, dead letters and re-queueing.

use std::time::Duration;

use storeflow::journal::{JobStatus, Store};

use crate::helpers::*;
use crate::receivers::*;

/// Config with fast retries, SMTP on `smtp_port`, Slack to `slack_url`.
fn config(smtp_port: u16, slack_url: &str, schedule: &str) -> String {
    format!(
        "{SECURED}email:\n  from: \"Example Store <shop@example.com>\"\n  smtp: {{ host: 127.0.0.1, port: {smtp_port}, security: none }}\nslack:\n  webhook_url: {slack_url}\ndelivery:\n  retry_schedule: {schedule}\n  timeout: 5s\n"
    )
}

const SHIPPED_RULES: &str = r#"
rules:
  - name: email-customer-when-shipped
    on: order.shipped
    actions:
      - email:
          to: "{{ order.customer.email }}"
          subject: "Your order #{{ order.id }} is on its way"
          body: "Hi {{ order.customer.name }}"
          html: "<p>Hi <b>{{ order.customer.name }}</b></p>"
      - slack: { text: "shipped {{ order.id }}" }
"#;

async fn post_shipped(d: &Daemon) -> String {
    let url = d.url(&format!("/hooks/selldone/{SELLDONE_TOKEN}"));
    let a = post(&url, &[], fixture("selldone/SentOrder.json")).await;
    assert_eq!(a.status, 200);
    a.json["event_id"].as_str().unwrap().to_string()
}

async fn job_with_status(
    d: &Daemon,
    event_id: &str,
    kind: &str,
    status: JobStatus,
) -> storeflow::journal::Job {
    wait_for(&format!("the {kind} job to be {status:?}"), || {
        let jobs = d.journal().jobs(Some(event_id), None, 10).unwrap();
        jobs.into_iter()
            .find(|j| j.kind == kind && j.status == status)
    })
    .await
}

#[tokio::test]
async fn email_and_slack_reach_real_servers() {
    let mut smtp = SmtpServer::start();
    let mut slack = Receiver::answering(200, "ok").await;
    let yaml = config(smtp.port, &slack.url("/services/T0/B0/x"), "[100ms]");
    let d = Daemon::start_in(dir_with_rules("r.yaml", SHIPPED_RULES), &yaml).await;
    let id = post_shipped(&d).await;
    job_with_status(&d, &id, "email", JobStatus::Done).await;
    job_with_status(&d, &id, "slack", JobStatus::Done).await;

    let m = smtp.next().await;
    assert!(smtp.try_next().is_none(), "one email");
    assert_eq!(m.to, vec!["buyer@example.com"]);
    assert_eq!(m.from, "shop@example.com");
    assert_eq!(
        m.header("Subject").as_deref(),
        Some("Your order #48213 is on its way")
    );
    assert!(
        m.header("Content-Type")
            .unwrap()
            .starts_with("multipart/alternative"),
        "{}",
        m.data
    );
    assert!(
        m.data.contains("Hi Jane Example") && m.data.contains("<p>Hi <b>Jane Example</b></p>"),
        "{}",
        m.data
    );
    let message_id = m.header("Message-ID").unwrap();
    assert!(message_id.ends_with("@storeflow>"), "{message_id}");

    let post = slack.next().await;
    assert_eq!(post.path, "/services/T0/B0/x");
    assert_eq!(post.json(), serde_json::json!({"text": "shipped 48213"}));
    assert!(slack.try_next().is_none(), "one Slack message");
    d.stop().await;
}

#[tokio::test]
async fn an_smtp_outage_is_ridden_out_and_the_email_arrives_once() {
    let port = closed_port();
    let d = Daemon::start_in(
        dir_with_rules("r.yaml", SHIPPED_RULES),
        &config(port, "", "[300ms, 300ms, 300ms, 300ms, 300ms]"),
    )
    .await;
    let id = post_shipped(&d).await;
    // The first attempt fails (nothing listens); then the server comes up.
    let job = wait_for("a failed attempt", || {
        let jobs = d.journal().jobs(Some(&id), None, 10).unwrap();
        jobs.into_iter()
            .find(|j| j.kind == "email" && j.attempts >= 1)
    })
    .await;
    assert_eq!(
        job.status,
        JobStatus::Pending,
        "retryable: {:?}",
        job.last_error
    );
    assert!(
        job.last_error
            .as_deref()
            .unwrap_or("")
            .contains("Connection refused"),
        "{:?}",
        job.last_error
    );
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let mut smtp = SmtpServer::start_on(listener, None, false);
    let done = job_with_status(&d, &id, "email", JobStatus::Done).await;
    assert!(done.attempts >= 2);
    smtp.next().await;
    assert!(smtp.try_next().is_none(), "the email arrives once");
    let attempts = d.journal().attempts(done.id).unwrap();
    assert_eq!(attempts.last().unwrap().outcome, "done");
    assert!(attempts
        .iter()
        .rev()
        .skip(1)
        .all(|a| a.outcome == "retry" && a.error.is_some()));
    d.stop().await;
}

#[tokio::test]
async fn a_refused_recipient_is_a_dead_letter_at_once() {
    let smtp = SmtpServer::start_with(Some((550, "Mailbox unavailable")), false);
    let d = Daemon::start_in(
        dir_with_rules("r.yaml", SHIPPED_RULES),
        &config(smtp.port, "", "[100ms, 100ms]"),
    )
    .await;
    let id = post_shipped(&d).await;
    let dead = job_with_status(&d, &id, "email", JobStatus::Dead).await;
    assert_eq!(dead.attempts, 1, "permanent: no retry");
    assert!(dead.last_error.unwrap().contains("550"));
    d.stop().await;
}

const HTTP_RULES: &str = r#"
rules:
  - name: notify-erp
    on: order.shipped
    actions:
      - http:
          url: "{{ payload.shop.domain }}"
          json: { order: "{{ order.id }}", email: "{{ order.customer.email }}" }
          headers: { X-Shop: "{{ order.shop.name }}" }
          sign_secret: s3cret
"#;

/// HTTP rules pointing at `sink` (the fixture's shop domain is replaced).
async fn http_daemon(sink: &Receiver, schedule: &str) -> (Daemon, String) {
    let rules = HTTP_RULES.replace("{{ payload.shop.domain }}", &sink.url("/erp"));
    let d = Daemon::start_in(
        dir_with_rules("r.yaml", &rules),
        &config(closed_port(), "", schedule),
    )
    .await;
    let id = post_shipped(&d).await;
    (d, id)
}

#[tokio::test]
async fn http_500_then_200_is_delivered_once_with_a_valid_signature() {
    let mut sink = Receiver::start(scripted(vec![(500, vec![], "boom".into())])).await;
    let (d, id) = http_daemon(&sink, "[100ms, 100ms]").await;
    let done = job_with_status(&d, &id, "http", JobStatus::Done).await;
    assert_eq!(done.attempts, 2);
    let (first, last) = (sink.next().await, sink.next().await);
    assert!(sink.try_next().is_none(), "delivered once after the retry");
    assert_eq!(last.method, "POST");
    assert_eq!(
        last.json(),
        serde_json::json!({"order": "48213", "email": "buyer@example.com"})
    );
    assert_eq!(last.header("x-shop"), Some("Example Store"));
    let expected = storeflow::actions::signature(b"s3cret", &last.body);
    let given = last.header("x-storeflow-signature").unwrap();
    assert!(given.ends_with(&expected), "{given} vs {expected}");
    assert_eq!(
        last.header("x-storeflow-idempotency-key"),
        first.header("x-storeflow-idempotency-key")
    );
    let attempts = d.journal().attempts(done.id).unwrap();
    assert!(attempts[0].error.as_deref().unwrap().contains("500"));
    d.stop().await;
}

#[tokio::test]
async fn http_400_is_dead_at_once_and_jobs_retry_dead_sends_it_again() {
    let mut sink = Receiver::start(scripted(vec![(400, vec![], "bad field".into())])).await;
    let (d, id) = http_daemon(&sink, "[100ms, 100ms]").await;
    let dead = job_with_status(&d, &id, "http", JobStatus::Dead).await;
    assert_eq!(dead.attempts, 1);
    assert!(
        dead.last_error
            .as_deref()
            .unwrap()
            .contains("400 Bad Request: bad field"),
        "{:?}",
        dead.last_error
    );

    let config = d.dir.path().join("cli.yaml");
    std::fs::write(
        &config,
        format!("data_dir: {}\n", d.dir.path().join("data").display()),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_storeflow"))
        .args(["jobs", "retry", "--dead", "-c", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "re-queued 1 job"
    );
    job_with_status(&d, &id, "http", JobStatus::Done).await;
    sink.next().await;
    sink.next().await;
    assert!(sink.try_next().is_none(), "sent once more, not twice");
    d.stop().await;
}

#[tokio::test]
async fn http_429_waits_for_retry_after() {
    let slow_down = (429, vec![("Retry-After", "1".into())], "slow down".into());
    let mut sink = Receiver::start(scripted(vec![slow_down])).await;
    let (d, id) = http_daemon(&sink, "[10ms, 10ms]").await;
    sink.next().await;
    let refused_at = std::time::Instant::now();
    sink.next().await;
    let gap = refused_at.elapsed();
    job_with_status(&d, &id, "http", JobStatus::Done).await;
    assert!(
        gap >= Duration::from_millis(950),
        "retried after {gap:?}, before Retry-After"
    );
    d.stop().await;
}

#[tokio::test]
async fn without_smtp_or_slack_a_trial_run_writes_eml_and_jsonl() {
    let d = Daemon::start_in(dir_with_rules("r.yaml", SHIPPED_RULES), SECURED).await;
    let id = post_shipped(&d).await;
    job_with_status(&d, &id, "email", JobStatus::Done).await;
    job_with_status(&d, &id, "slack", JobStatus::Done).await;
    let mail_dir = d.dir.path().join("data/mail");
    let files: Vec<_> = std::fs::read_dir(&mail_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let eml = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        eml.contains("To: buyer@example.com")
            && eml.contains("Subject: Your order #48213 is on its way"),
        "{eml}"
    );
    let lines = std::fs::read_to_string(d.dir.path().join("data/slack.jsonl")).unwrap();
    let line: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(line["text"], "shipped 48213");
    assert_eq!(line["key"], format!("{id}/email-customer-when-shipped/1"));
    d.stop().await;
}
