//! Issue 8, items 11 and 12: buyer-typed fields cannot inject (recipients, HTML, Slack markup,
//! log lines, request hosts), and configured secrets never reach a log line (even at TRACE), the
//! journal, or any CLI output.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use storeflow::journal::{JobStatus, Store};

use crate::helpers::{
    dir_with_rules, fixture, fixture_path, post, sign, Daemon, SECURED, SELLIX_FIXTURES,
};
use crate::receivers::{Receiver, SmtpServer};

/// A buyer's name that tries HTML, a Slack broadcast and a mention at once.
const EVIL_NAME: &str = "<img src=x onerror=alert(1)> <!channel> <@U123ABC>";

/// The Sellix `order:paid` fixture with buyer-typed fields replaced.
fn paid_body(email: &str, custom: Value) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture("sellix/order_paid.json")).unwrap();
    v["data"]["customer_email"] = email.into();
    v["data"]["custom_fields"] = custom;
    serde_json::to_vec(&v).unwrap()
}

async fn post_paid(base: &str, body: Vec<u8>) -> String {
    let sig = sign(&body);
    let headers = [
        ("x-sellix-event", "order:paid"),
        ("x-sellix-signature", &sig),
    ];
    let a = post(&format!("{base}/hooks/sellix"), &headers, body).await;
    assert_eq!(a.status, 200, "{}", a.json);
    a.json["event_id"].as_str().unwrap().to_string()
}

fn smtp_config(port: u16, extra: &str) -> String {
    format!(
        "{SECURED}email:\n  smtp: {{ host: 127.0.0.1, port: {port}, security: none }}\n\
         delivery:\n  retry_schedule: [100ms]\n  timeout: 5s\n{extra}"
    )
}

/// Waits until job `index` of `event` reaches `status`.
async fn job_in(
    d: &Daemon,
    event: &str,
    index: usize,
    status: JobStatus,
) -> storeflow::journal::Job {
    crate::helpers::wait_for("the job to settle", || {
        let jobs = d.journal().jobs(Some(event), None, 50).unwrap();
        jobs.into_iter()
            .find(|j| j.action_index == index && j.status == status)
    })
    .await
}

#[tokio::test]
async fn regression_buyer_typed_recipient_list_is_refused_and_only_one_rcpt_is_sent() {
    let mut smtp = SmtpServer::start();
    let rules = r#"
rules:
  - name: mail-buyer
    on: order.paid
    actions:
      - email: { to: "{{ order.customer.email }}", subject: Thanks, body: hi }
      - email: { to: "owner@shop.example, {{ payload.data.custom_fields.audit }}", subject: "Paid", body: x }
"#;
    let d = Daemon::start_in(dir_with_rules("r.yaml", rules), &smtp_config(smtp.port, "")).await;
    let body = paid_body(
        "a@example.com, evil@example.org",
        json!({"audit": "audit@shop.example"}),
    );
    let id = post_paid(&d.base, body).await;
    let dead = job_in(&d, &id, 0, JobStatus::Dead).await;
    let error = dead.last_error.unwrap();
    assert!(
        error.contains("email param `to`") && error.contains("not exactly one mailbox"),
        "{error}"
    );
    assert_eq!(dead.attempts, 1, "a refused recipient is permanent");
    // The rule author's own comma-separated list still means two recipients.
    let mail = smtp.next().await;
    assert_eq!(mail.to, ["owner@shop.example", "audit@shop.example"]);
    job_in(&d, &id, 1, JobStatus::Done).await;
    assert!(smtp.try_next().is_none(), "no mail for the injected list");
    d.stop().await;
}

#[tokio::test]
async fn regression_inline_html_escapes_interpolated_values() {
    let mut smtp = SmtpServer::start();
    let rules = r#"
rules:
  - name: html-mail
    on: order.paid
    actions:
      - email:
          to: buyer@example.com
          subject: Thanks
          html: "<p>Hello <b>{{ payload.data.custom_fields.name }}</b></p>"
"#;
    let d = Daemon::start_in(dir_with_rules("r.yaml", rules), &smtp_config(smtp.port, "")).await;
    post_paid(
        &d.base,
        paid_body("b@example.com", json!({"name": EVIL_NAME})),
    )
    .await;
    let mail = smtp.next().await;
    let html = mail
        .data
        .split("Content-Type: text/html")
        .nth(1)
        .expect("an HTML part");
    let html = html.replace("=\r\n", "").replace("=3D", "=");
    assert!(
        html.contains("<p>Hello <b>"),
        "the author's markup stays: {html}"
    );
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{html}"
    );
    assert!(!html.to_ascii_lowercase().contains("<img"), "{html}");
    d.stop().await;
}

#[tokio::test]
async fn regression_slack_text_escapes_mentions_from_buyer_fields() {
    let mut slack = Receiver::answering(200, "ok").await;
    let extra = format!("slack:\n  webhook_url: {}\n", slack.url("/slack"));
    let rules = r#"
rules:
  - name: ping
    on: order.paid
    actions:
      - slack: { text: "<!here> paid by {{ payload.data.custom_fields.name }} & co" }
"#;
    let d = Daemon::start_in(
        dir_with_rules("r.yaml", rules),
        &format!("{SECURED}{extra}"),
    )
    .await;
    post_paid(
        &d.base,
        paid_body("b@example.com", json!({"name": EVIL_NAME})),
    )
    .await;
    let text = slack.next().await.json()["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        text,
        "<!here> paid by &lt;img src=x onerror=alert(1)&gt; &lt;!channel&gt; &lt;@U123ABC&gt; & co"
    );
    d.stop().await;
}

#[tokio::test]
async fn regression_templated_http_host_is_refused_at_delivery_unless_allowed() {
    let mut sink = Receiver::answering(200, "ok").await;
    let rules = r#"
rules:
  - name: callback
    on: order.paid
    actions:
      - http: { url: "http://{{ payload.data.custom_fields.host }}/hook" }
"#;
    let d = Daemon::start_in(
        dir_with_rules("r.yaml", rules),
        &format!(
        "{SECURED}http:\n  allow_hosts: [erp.example.com]\ndelivery:\n  retry_schedule: [100ms]\n"
    ),
    )
    .await;
    let host = sink.base.trim_start_matches("http://").to_string();
    let id = post_paid(&d.base, paid_body("b@example.com", json!({"host": host}))).await;
    let dead = job_in(&d, &id, 0, JobStatus::Dead).await;
    let error = dead.last_error.unwrap();
    assert!(error.contains("not in http.allow_hosts"), "{error}");
    assert!(
        sink.try_next().is_none(),
        "nothing reached the unlisted host"
    );
    d.stop().await;
}

/// Runs the real binary with `args` and `env`; returns (exit code, stdout + stderr).
fn storeflow(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_storeflow"))
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn regression_templated_http_host_is_refused_by_check_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    crate::helpers::write_rules(
        dir.path(),
        "r.yaml",
        "rules:\n  - name: cb\n    on: order.paid\n    actions:\n      - http: { url: \"https://{{ payload.data.callback }}/x\" }\n",
    );
    let config = dir.path().join("storeflow.yaml");
    let rules = dir.path().join("rules");
    let write = |extra: &str| {
        std::fs::write(&config, format!("rules_dir: {}\n{extra}", rules.display())).unwrap()
    };
    write("");
    let cfg = config.to_str().unwrap();
    let (code, out) = storeflow(&["check", "-c", cfg], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("r.yaml:5:") && out.contains("comes from a template"),
        "{out}"
    );
    assert!(out.contains("http.allow_hosts"), "{out}");
    write("http:\n  allow_hosts: [erp.example.com]\n");
    let (code, out) = storeflow(&["check", "-c", cfg], &[]);
    assert_eq!(code, 0, "{out}");
}

/// The real daemon with its whole log (stderr) in a file.
struct Logged {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Logged {
    fn start(config: &Path, env: &[(&str, &str)]) -> Logged {
        let log = config.with_file_name("daemon.log");
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_storeflow"))
            .args(["serve", "-c"])
            .arg(config)
            .envs(env.iter().copied())
            .env("RUST_LOG", "trace")
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let base = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(addr) = text.split("listening on ").nth(1) {
                let addr = addr.split_whitespace().next().unwrap();
                break format!("http://{}", addr.trim_start_matches("http://"));
            }
            assert!(Instant::now() < deadline, "daemon did not start: {text}");
            std::thread::sleep(Duration::from_millis(20));
        };
        Logged { child, base, log }
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap()).into_owned()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn regression_log_message_with_crlf_and_nul_stays_one_line() {
    let dir = tempfile::tempdir().unwrap();
    crate::helpers::write_rules(
        dir.path(),
        "r.yaml",
        "rules:\n  - name: audit\n    on: order.paid\n    actions:\n      - log: { message: \"note={{ payload.data.custom_fields.note }}\" }\n",
    );
    let config = dir.path().join("storeflow.yaml");
    let yaml = format!(
        "listen: 127.0.0.1:0\ndata_dir: {}\nrules_dir: {}\n{SECURED}",
        dir.path().join("data").display(),
        dir.path().join("rules").display()
    );
    std::fs::write(&config, yaml).unwrap();
    let daemon = Logged::start(&config, &[]);
    let note = "line1\r\n2026-01-01T00:00:00Z  INFO storeflow: forged\u{0}end";
    post_paid(
        &daemon.base,
        paid_body("b@example.com", json!({"note": note})),
    )
    .await;
    let line = crate::helpers::wait_for("the log line", || {
        let log = daemon.log();
        log.lines()
            .find(|l| l.contains("note=line1"))
            .map(String::from)
    })
    .await;
    assert!(
        line.contains(r"note=line1\r\n2026-01-01T00:00:00Z  INFO storeflow: forged\0end"),
        "{line}"
    );
    let log = daemon.log();
    assert!(!log.contains('\0'), "a NUL reached the log");
    assert!(
        !log.lines().any(|l| l.starts_with("2026-01-01T00:00:00Z")),
        "a forged line"
    );
}

/// Every secret the grep test configures, with a name for messages.
const ERP_SECRET: &str = "erp-hook-secret-5f3a9";
const SLACK_PATH: &str = "/services/T0SECRET1/B0SECRET2/slackpathsecret987";

#[tokio::test]
async fn regression_secrets_never_reach_logs_journal_or_cli_output() {
    let mut slack = Receiver::answering(500, "no_service").await;
    let mut erp = Receiver::answering(200, "ok").await;
    let dir = tempfile::tempdir().unwrap();
    crate::helpers::write_rules(
        dir.path(),
        "r.yaml",
        &format!(
            r#"
rules:
  - name: notify-paid
    on: order.paid
    actions:
      - slack: {{ text: "paid {{{{ order.id }}}}" }}
      - http:
          url: "{}"
          sign_secret: "${{ERP_HOOK_SECRET}}"
          json: {{ order: "{{{{ order.id }}}}" }}
  - name: log-shipped
    on: [order.shipped, order.delivered]
    actions:
      - log: {{ message: "order {{{{ order.id }}}}" }}
"#,
            erp.url("/erp/orders")
        ),
    );
    let config = dir.path().join("storeflow.yaml");
    let yaml = format!(
        "listen: 127.0.0.1:0\ndata_dir: {}\nrules_dir: {}\n{SECURED}slack:\n  webhook_url: {}\n\
         delivery:\n  retry_schedule: [100ms]\n  timeout: 5s\n",
        dir.path().join("data").display(),
        dir.path().join("rules").display(),
        slack.url(SLACK_PATH),
    );
    std::fs::write(&config, yaml).unwrap();
    let env = [("ERP_HOOK_SECRET", ERP_SECRET)];
    let daemon = Logged::start(&config, &env);

    let (file, event, sig) = SELLIX_FIXTURES[2];
    let headers = [("x-sellix-event", event), ("x-sellix-signature", sig)];
    let url = format!("{}/hooks/sellix", daemon.base);
    let a = post(&url, &headers, fixture(&format!("sellix/{file}"))).await;
    assert_eq!(a.status, 200, "{}", a.json);
    let token = crate::helpers::SELLDONE_TOKEN;
    for path in [
        format!("/hooks/selldone/{token}"),
        format!("/hooks/selldone?token={token}"),
    ] {
        let file = if path.contains('?') {
            "ToCustomer"
        } else {
            "SentOrder"
        };
        let body = fixture(&format!("selldone/{file}.json"));
        let a = post(&format!("{}{path}", daemon.base), &[], body).await;
        assert_eq!(a.status, 200, "{}", a.json);
    }

    // The receiver checks the signature made with the variable's real value.
    let request = erp.next().await;
    let expected = storeflow::actions::signature(ERP_SECRET.as_bytes(), &request.body);
    assert_eq!(
        request.header("x-storeflow-signature"),
        Some(expected.as_str())
    );
    // The Slack webhook fails twice (500), then the job is a dead letter.
    slack.next().await;
    slack.next().await;
    let data = dir.path().join("data");
    let store =
        || storeflow::journal::SqliteStore::open_existing(&data.join("storeflow.db")).unwrap();
    crate::helpers::wait_for("the slack job to be dead and the log jobs done", || {
        let jobs = store().jobs(None, None, 100).unwrap();
        let dead = jobs
            .iter()
            .any(|j| j.kind == "slack" && j.status == JobStatus::Dead);
        let logged = jobs
            .iter()
            .filter(|j| j.kind == "log" && j.status == JobStatus::Done)
            .count();
        (dead && logged == 2).then_some(())
    })
    .await;

    let cfg = config.to_str().unwrap();
    let mut outputs = vec![("daemon log".to_string(), daemon.log())];
    let mut run = |args: &[&str]| {
        let (code, out) = storeflow(args, &env);
        assert!(code == 0 || args[0] == "check", "{args:?}: {out}");
        outputs.push((args.join(" "), out.clone()));
        out
    };
    run(&["check", "-c", cfg]);
    run(&["events", "-c", cfg]);
    run(&["jobs", "-c", cfg]);
    let paid = fixture_path("sellix/order_paid.json");
    let paid = paid.to_str().unwrap();
    run(&["simulate", "-c", cfg, "--source", "sellix", paid]);
    run(&["simulate", "-c", cfg, "--source", "sellix", "--json", paid]);
    let events = run(&["events", "-c", cfg, "--json"]);
    for line in events.lines().filter(|l| l.starts_with('{')) {
        let id = serde_json::from_str::<Value>(line).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        run(&["events", "-c", cfg, "show", &id]);
    }
    let jobs = run(&["jobs", "-c", cfg, "--json"]);
    let mut shown = 0;
    for line in jobs.lines().filter(|l| l.starts_with('{')) {
        let id = serde_json::from_str::<Value>(line).unwrap()["id"]
            .as_i64()
            .unwrap();
        let out = run(&["jobs", "-c", cfg, "show", &id.to_string()]);
        shown += 1;
        if out.contains("\"http\"") {
            assert!(
                out.contains("${ERP_HOOK_SECRET}"),
                "the job keeps the reference: {out}"
            );
        }
    }
    assert_eq!(shown, 4, "slack, http and two log jobs");

    let secrets = [
        crate::helpers::SELLIX_SECRET,
        token,
        ERP_SECRET,
        SLACK_PATH,
        "T0SECRET1",
        "B0SECRET2",
        "slackpathsecret987",
    ];
    let log = &outputs[0].1;
    assert!(log.contains("TRACE"), "the daemon logged at TRACE");
    assert!(
        log.contains("HTTP 500"),
        "the slack failure is logged: {log}"
    );
    for (what, text) in &outputs {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "`{secret}` found in {what}:\n{text}"
            );
        }
    }
}

#[tokio::test]
async fn regression_unreachable_slack_webhook_url_stays_out_of_last_error() {
    let port = crate::receivers::closed_port();
    let url = format!("http://127.0.0.1:{port}{SLACK_PATH}");
    let yaml =
        format!("{SECURED}slack:\n  webhook_url: {url}\ndelivery:\n  retry_schedule: [1h]\n");
    let rules =
        "rules:\n  - name: ping\n    on: order.paid\n    actions:\n      - slack: { text: hi }\n";
    let d = Daemon::start_in(dir_with_rules("r.yaml", rules), &yaml).await;
    let id = post_paid(&d.base, paid_body("b@example.com", json!({}))).await;
    let job = crate::helpers::wait_for("a failed attempt", || {
        let jobs = d.journal().jobs(Some(&id), None, 10).unwrap();
        jobs.into_iter().find(|j| j.attempts >= 1)
    })
    .await;
    let error = job.last_error.unwrap();
    assert!(error.starts_with("slack webhook: "), "{error}");
    assert!(
        !error.contains("SECRET") && !error.contains("slackpathsecret987"),
        "{error}"
    );
    d.stop().await;
}

#[test]
fn regression_unset_secret_variable_is_a_check_error_with_position() {
    let dir = tempfile::tempdir().unwrap();
    let rules = "rules:\n  - name: erp\n    on: order.paid\n    actions:\n      - http:\n          url: https://erp.example.com/hook\n          sign_secret: \"${STOREFLOW_TEST_NEVER_SET}\"\n";
    crate::helpers::write_rules(dir.path(), "r.yaml", rules);
    let config = dir.path().join("storeflow.yaml");
    let rules_dir = dir.path().join("rules");
    std::fs::write(&config, format!("rules_dir: {}\n", rules_dir.display())).unwrap();
    let (code, out) = storeflow(&["check", "-c", config.to_str().unwrap()], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "r.yaml:7:25: error: environment variable `STOREFLOW_TEST_NEVER_SET` is not set"
        ),
        "{out}"
    );
    let set = [("STOREFLOW_TEST_NEVER_SET", "x")];
    let (code, out) = storeflow(&["check", "-c", config.to_str().unwrap()], &set);
    assert_eq!(code, 0, "{out}");
}
