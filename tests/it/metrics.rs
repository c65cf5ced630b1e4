//! `/metrics` on the real binary: counters after known traffic, the admin token, the names, and
//! `log.format: json`. Counters are per process, so each counting test runs its own
//! `storeflow serve`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::*;
use crate::receivers::Receiver;

const TOKEN: &str = "adm-t0ken-xyz";

/// The value of the sample `name{labels…}` (exactly these labels, in any order).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
        let wanted = labels
            .iter()
            .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        let count = rest.matches("=\"").count();
        if metric == name && wanted && count == labels.len() {
            value.parse().ok()
        } else {
            None
        }
    })
}

async fn scrape(url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn rules(sink: &str) -> String {
    format!(
        "rules:\n  - name: notify-sink\n    on: sellix/order:paid\n    actions:\n      - http: {{ url: \"{sink}\", json: {{ order: \"{{{{ order.id }}}}\" }} }}\n"
    )
}

async fn send(url: &str, fixture_index: usize, signature: Option<&str>) -> u16 {
    let (file, event, good) = SELLIX_FIXTURES[fixture_index];
    let sig = signature.unwrap_or(good);
    let h = [("x-sellix-event", event), ("x-sellix-signature", sig)];
    post(url, &h, fixture(&format!("sellix/{file}")))
        .await
        .status
}

/// Two accepted, one duplicate, one unauthorized webhook; one rule fires and its job is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_known_traffic_exactly() {
    let mut sink = Receiver::answering(200, "ok").await;
    let dir = dir_with_rules("m.yaml", &rules(&sink.url("/erp")));
    let yaml = format!(
        "rules_dir: {}\n{SECURED}admin:\n  token: {TOKEN}\n",
        dir.path().join("rules").display()
    );
    let daemon = Process::start(dir.path(), &yaml);
    let url = daemon.url("/hooks/sellix");
    assert_eq!(send(&url, 2, None).await, 200); // order:paid, fires the rule
    assert_eq!(send(&url, 2, None).await, 200); // the same delivery again: duplicate
    assert_eq!(send(&url, 1, None).await, 200); // order:created, no rule
    assert_eq!(send(&url, 1, Some("00")).await, 401);
    sink.next().await;

    let metrics = daemon.url("/metrics");
    let text = wait_for_async("the delivered job to be counted", || async {
        let (_, text) = scrape(&metrics, Some(TOKEN)).await;
        let done = [("action", "http"), ("outcome", "done")];
        (sample(&text, "storeflow_jobs_total", &done) == Some(1.0)
            && sample(&text, "storeflow_jobs", &[("status", "done")]) == Some(1.0)
            && sample(&text, "storeflow_events_processed_total", &[]) == Some(2.0))
        .then_some(text)
    })
    .await;
    let webhooks = |outcome| {
        sample(
            &text,
            "storeflow_webhooks_total",
            &[("source", "sellix"), ("outcome", outcome)],
        )
    };
    assert_eq!(webhooks("accepted"), Some(2.0), "{text}");
    assert_eq!(webhooks("duplicate"), Some(1.0), "{text}");
    assert_eq!(webhooks("unauthorized"), Some(1.0), "{text}");
    assert_eq!(webhooks("forbidden"), None, "{text}");
    let fired = sample(
        &text,
        "storeflow_rule_fired_total",
        &[("rule", "notify-sink")],
    );
    assert_eq!(fired, Some(1.0), "{text}");
    let intake = [("source", "sellix")];
    let timed = sample(&text, "storeflow_intake_duration_seconds_count", &intake);
    assert_eq!(timed, Some(4.0), "{text}");
    assert_eq!(
        sample(&text, "storeflow_rules_reload_success", &[]),
        Some(1.0)
    );
    assert_eq!(sample(&text, "storeflow_flags_open", &[]), Some(0.0));
    assert_eq!(
        sample(&text, "storeflow_pipeline_lag_seconds", &[]),
        Some(0.0)
    );
    assert!(sample(&text, "storeflow_journal_bytes", &[]).is_some_and(|b| b > 0.0));
    let reloaded = sample(&text, "storeflow_rules_reload_timestamp_seconds", &[]);
    assert!(reloaded.is_some_and(|t| t > 1.7e9), "{text}");
    for name in storeflow::telemetry::metrics::NAMES {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} missing:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_admin_token_when_one_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Process::start(dir.path(), &format!("admin:\n  token: {TOKEN}\n"));
    let url = daemon.url("/metrics");
    let (status, body) = scrape(&url, None).await;
    assert_eq!(status, 401);
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(error["error"].is_string(), "{body}");
    assert!(!body.contains(TOKEN));
    assert_eq!(scrape(&url, Some("adm-t0ken-xyZ")).await.0, 401);
    let (status, body) = scrape(&url, Some(TOKEN)).await;
    assert_eq!(status, 200);
    assert!(body.contains("storeflow_rules_reload_success"), "{body}");
}

#[tokio::test]
async fn without_a_token_metrics_answer_local_clients_only() {
    let d = Daemon::start("").await;
    let (status, _) = scrape(&d.url("/metrics"), None).await;
    assert_eq!(status, 200);
    let relayed = reqwest::Client::new()
        .get(d.url("/metrics"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(relayed.status().as_u16(), 403);
    d.stop().await;
}

#[test]
fn metric_names_are_stable() {
    assert_eq!(
        storeflow::telemetry::metrics::NAMES,
        [
            "storeflow_webhooks_total",
            "storeflow_intake_duration_seconds",
            "storeflow_events_processed_total",
            "storeflow_pipeline_lag_seconds",
            "storeflow_rule_fired_total",
            "storeflow_jobs_total",
            "storeflow_jobs",
            "storeflow_flags_open",
            "storeflow_timers_pending",
            "storeflow_rules_reload_success",
            "storeflow_rules_reload_timestamp_seconds",
            "storeflow_journal_bytes",
        ]
    );
}

/// `log: {format: json}`: every stderr line of `storeflow serve` is one JSON object.
#[test]
fn json_log_lines_parse_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("storeflow.yaml");
    let data = dir.path().join("data");
    let yaml = format!(
        "listen: 127.0.0.1:0\ndata_dir: {}\nlog:\n  format: json\n",
        data.display()
    );
    std::fs::write(&config, yaml).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_storeflow"))
        .args(["serve", "-c"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let listening = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("no listening line within 30 s");
        let json: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        lines.push(line);
        let message = json["fields"]["message"].as_str().unwrap_or("").to_string();
        if message.starts_with("listening on http://127.0.0.1:") {
            break json;
        }
    };
    assert_eq!(listening["level"], "INFO");
    assert!(lines.len() > 1, "{lines:?}");
    let _ = child.kill();
    let _ = child.wait();
}
