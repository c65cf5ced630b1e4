//! Who may use the API: the admin token, or loopback clients when none is set.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::{call, config, start, TOKEN, VIP_RULES};
use crate::helpers::{wait_for, SECURED};

/// Every route, with a body where it takes one.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/events"),
    ("GET", "/api/events/no-such-event"),
    ("POST", "/api/events/no-such-event/replay?dry_run=true"),
    ("GET", "/api/jobs?status=dead"),
    ("GET", "/api/jobs/12345"),
    ("POST", "/api/jobs/12345/retry"),
    ("POST", "/api/jobs/retry?status=dead&dry_run=true"),
    ("GET", "/api/flags?open=true"),
    ("POST", "/api/flags/12345/resolve"),
    ("GET", "/api/rules"),
    ("POST", "/api/simulate"),
    ("GET", "/api/no-such-route"),
];

/// What each route answers the right token on an empty journal.
const EXPECTED: &[u16] = &[200, 404, 404, 200, 404, 404, 200, 200, 404, 200, 200, 404];

fn simulate_body(path: &str) -> Option<serde_json::Value> {
    (path == "/api/simulate").then(
        || json!({"source": "sellix", "payload": {"event": "order:paid", "data": {"uniqid": "x"}}}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_a_missing_or_wrong_token_and_answers_the_right_one() {
    let d = start(VIP_RULES, &config()).await;
    for (&(method, path), &expected) in ROUTES.iter().zip(EXPECTED) {
        for token in [None, Some("wrong"), Some("")] {
            let (status, body) = call(&d, method, path, token, simulate_body(path)).await;
            assert_eq!(status, 401, "{method} {path} with {token:?}: {body}");
            let error = body["error"].as_str().unwrap();
            assert!(!error.contains(TOKEN), "{error}");
        }
        let (status, body) = call(&d, method, path, Some(TOKEN), simulate_body(path)).await;
        assert_eq!(status, expected, "{method} {path}: {body}");
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_admin_token_loopback_clients_only() {
    let d = start(VIP_RULES, SECURED).await;
    for (&(method, path), &expected) in ROUTES.iter().zip(EXPECTED) {
        let (status, body) = call(&d, method, path, None, simulate_body(path)).await;
        assert_eq!(status, expected, "{method} {path} from loopback: {body}");
    }
    // A proxy on this machine relaying for someone else is not a local client.
    let resp = reqwest::Client::new()
        .get(d.url("/api/events"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("admin.token"),
        "{body}"
    );
    d.stop().await;
}

/// The refusal is logged, with neither the configured token nor the one that was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_refused_token_is_logged_without_any_token() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("storeflow.yaml");
    std::fs::write(
        &cfg,
        format!(
            "listen: 127.0.0.1:0\ndata_dir: {}\n{}",
            dir.path().join("data").display(),
            config()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_storeflow"))
        .args(["serve", "-c"])
        .arg(&cfg)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let kept = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("listening on ").nth(1) {
                let _ = tx.send(addr.split_whitespace().next().unwrap_or("").to_string());
            }
            kept.lock().unwrap().push(line);
        }
    });
    let base = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    let sent = "guessed-Secret-4242";
    let resp = reqwest::Client::new()
        .get(format!("{base}/api/events"))
        .bearer_auth(sent)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let line = wait_for("the refusal to be logged", || {
        let lines = lines.lock().unwrap();
        lines
            .iter()
            .find(|l| l.contains("admin API request refused"))
            .cloned()
    })
    .await;
    assert!(line.contains("/api/events"), "{line}");
    child.kill().unwrap();
    child.wait().unwrap();
    let all = lines.lock().unwrap().join("\n");
    assert!(!all.contains(sent) && !all.contains(TOKEN), "{all}");
}
