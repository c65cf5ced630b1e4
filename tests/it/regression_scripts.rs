//! Regressions of scripts and rule reloading: reload storms, slow scripts stalling the pipeline,
//! slow plugin `validate` at load.

use std::time::{Duration, Instant};

use storeflow::journal::Store;

use crate::helpers::*;
use crate::receivers::*;

async fn reloads(d: &Daemon) -> u64 {
    d.health().await["rules"]["reloads"].as_u64().unwrap()
}

const ORDERS: &str =
    "rules:\n  - name: paid\n    on: order.paid\n    actions: [ { log: { message: hi } } ]\n";

#[tokio::test]
async fn regression_hot_reload_does_not_loop_on_reads() {
    let dir = dir_with_rules("orders.yaml", ORDERS);
    let rules = dir.path().join("rules");
    std::fs::create_dir(rules.join("tests")).unwrap();
    let config = dir.path().join("check.yaml");
    std::fs::write(&config, format!("rules_dir: {}\n", rules.display())).unwrap();
    let d = Daemon::start_in(dir, SECURED).await;
    assert_eq!(reloads(&d).await, 0, "a subfolder at boot starts no reload");

    let file = rules.join("orders.yaml");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push('\n');
    std::fs::write(&file, text).unwrap();
    wait_for_async("one reload after the edit", || async {
        (reloads(&d).await >= 1).then_some(())
    })
    .await;

    // Reads, `storeflow check` and new folders are not edits: no reload for 5 s.
    let quiet_until = Instant::now() + Duration::from_secs(5);
    let mut n = 0;
    while Instant::now() < quiet_until {
        std::fs::read(&file).unwrap();
        if n == 0 {
            let out = storeflow(&["check", "-c", config.to_str().unwrap()]);
            assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
            std::fs::create_dir(rules.join("more")).unwrap();
        }
        n += 1;
        assert_eq!(reloads(&d).await, 1, "reloads after {n} probes");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    d.stop().await;
}

const SLOW: &str = r#"
rules:
  - name: slow
    on: order.checkout
    actions:
      - script: |
          let s = "x";
          s.pad(65536, "y");
          loop { sha256(s); }
  - name: unrelated
    on: order.paid
    actions:
      - http: { url: "URL", method: POST, json: { order: "{{ order.id }}" } }
"#;

async fn post_sellix_json(d: &Daemon, body: String) -> String {
    let body = body.into_bytes();
    let a = post(
        &d.url("/hooks/sellix"),
        &[("x-sellix-signature", &sign(&body))],
        body,
    )
    .await;
    assert_eq!(a.status, 200);
    a.json["event_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn regression_slow_script_does_not_stall_other_events() {
    let mut receiver = Receiver::answering(200, "ok").await;
    let rules = SLOW.replace("URL", &receiver.url("/hook"));
    let d = Daemon::start_in(
        dir_with_rules("r.yaml", &rules),
        &format!("{SECURED}scripts:\n  timeout: 1s\n"),
    )
    .await;
    let started = Instant::now();
    let slow = post_sellix_json(
        &d,
        r#"{"event":"order:created","data":{"uniqid":"inv-slow"}}"#.into(),
    )
    .await;
    post_sellix_json(
        &d,
        r#"{"event":"order:paid","data":{"uniqid":"inv-fast","total":5}}"#.into(),
    )
    .await;
    let got = receiver.next().await;
    let waited = started.elapsed();
    assert_eq!(got.json()["order"], "inv-fast");
    assert!(
        waited < Duration::from_secs(5),
        "the unrelated action waited {waited:?}"
    );

    let trace = d.trace(&slow).await;
    let error = trace["rules"][0]["script_error"].as_str().unwrap();
    assert!(error.contains("timed out after 1000 ms"), "{error}");
    d.stop().await;
}

#[test]
fn regression_slow_plugin_validate_does_not_stall_check() {
    let dir = tempfile::tempdir().unwrap();
    let (rules, plugins) = (dir.path().join("rules"), dir.path().join("plugins"));
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::write(
        plugins.join("sorter.rhai"),
        "fn run(p, e) { }\nfn validate(p) { let a = []; a.pad(5000, 1); loop { a.sort(|x, y| y - x); } }\n",
    )
    .unwrap();
    std::fs::write(
        rules.join("r.yaml"),
        "rules:\n  - name: sorted\n    on: order.paid\n    actions: [ { sorter: { n: 1 } } ]\n",
    )
    .unwrap();
    let config = dir.path().join("storeflow.yaml");
    let text = format!(
        "rules_dir: {}\nplugins_dir: {}\nscripts:\n  max_operations: 1000000000\n  timeout: 500ms\n",
        rules.display(),
        plugins.display()
    );
    std::fs::write(&config, text).unwrap();
    let started = Instant::now();
    let out = storeflow(&["check", "-c", config.to_str().unwrap()]);
    let took = started.elapsed();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("sorter") && text.contains("timed out after 500 ms"),
        "{text}"
    );
    assert!(took < Duration::from_secs(10), "check took {took:?}");
}

#[test]
fn regression_script_file_errors_name_the_rhai_file() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(rules.join("scripts")).unwrap();
    std::fs::write(
        rules.join("bad.yaml"),
        "rules:\n  - name: broken\n    on: order.paid\n    actions:\n      - script: scripts/broken.rhai\n  - name: typo\n    on: order.paid\n    actions:\n      - script: scripts/typo.rhai\n",
    )
    .unwrap();
    std::fs::write(rules.join("scripts/broken.rhai"), "let x = 1;\nlet = 2;\n").unwrap();
    std::fs::write(
        rules.join("scripts/typo.rhai"),
        "if order.total > 1.0 {\n    emial(#{ to: order.customer.email });\n}\n",
    )
    .unwrap();
    let config = dir.path().join("storeflow.yaml");
    let text = format!(
        "rules_dir: {}\nplugins_dir: {}\n",
        rules.display(),
        dir.path().join("plugins").display()
    );
    std::fs::write(&config, text).unwrap();
    let out = storeflow(&["check", "-c", config.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("scripts/broken.rhai:2:5: error:"), "{text}");
    assert!(
        text.contains("   2 | let = 2;"),
        "the snippet is the script's: {text}"
    );
    assert!(
        text.contains("scripts/typo.rhai:2:5: error: Rhai error in `script`: unknown function `emial` (did you mean `email`?) (rule `typo`)"),
        "{text}"
    );
    assert!(!text.contains("bad.yaml:5"), "{text}");
}

/// Issue 8 item 7: one event wrote 5,000 keys × 64 KiB into `kv`. Over a limit the whole run is
/// dropped (no key of it reaches the journal, the trace says which limit), and other rules of the
/// same event still plan their jobs.
const HOARDER: &str = r#"rules:
  - name: hoarder
    on: order.paid
    actions:
      - script: |
          let big = "x";
          for i in 0..1000 { state_set("k" + i, big); }
  - name: hoarder-bytes
    on: order.paid
    actions:
      - script: |
          let s = "y";
          while s.len() < 2000 { s += s; }
          for i in 0..3 { state_set("b" + i, s); }
  - name: polite
    on: order.paid
    actions:
      - script: |
          state_set("seen", true);
          log(#{message: "fine"});
"#;

#[tokio::test]
async fn regression_script_state_writes_are_bounded_per_run() {
    let d = Daemon::start_in(
        dir_with_rules("r.yaml", HOARDER),
        &format!("{SECURED}scripts:\n  max_state_keys: 50\n  max_state_bytes: 5KiB\n"),
    )
    .await;
    let id = post_sellix_json(
        &d,
        r#"{"event":"order:paid","data":{"uniqid":"inv-hoard","total":5}}"#.into(),
    )
    .await;
    let trace = d.trace(&id).await;
    let rule = |name: &str| {
        trace["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rule"] == name)
            .unwrap_or_else(|| panic!("{name} in {trace}"))
            .clone()
    };
    let keys = rule("hoarder")["script_error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(keys.contains("at most 50 state keys"), "{keys}");
    let bytes = rule("hoarder-bytes")["script_error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(bytes.contains("scripts.max_state_bytes"), "{bytes}");
    assert!(rule("polite")["script_error"].is_null());

    let journal = d.journal();
    assert_eq!(
        journal.state("k0").unwrap(),
        None,
        "a dropped run writes nothing"
    );
    assert_eq!(
        journal.state("b0").unwrap(),
        None,
        "a dropped run writes nothing"
    );
    assert_eq!(
        journal.state("seen").unwrap(),
        Some(serde_json::json!(true))
    );
    let jobs = journal.jobs(Some(&id), None, 10).unwrap();
    assert_eq!(
        jobs.len(),
        1,
        "only the polite rule planned a job: {jobs:?}"
    );
    d.stop().await;
}
