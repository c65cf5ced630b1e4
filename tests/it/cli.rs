//! The `storeflow` command line: sign, events, events show.

use std::process::{Command, Output};

use crate::helpers::*;

fn storeflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_storeflow"))
        .args(args)
        .env_remove("SELLIX_WEBHOOK_SECRET")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn sign_prints_the_documented_signature() {
    for (file, _, sig) in SELLIX_FIXTURES {
        let path = fixture_path(&format!("sellix/{file}"));
        let out = storeflow(&["sign", "--secret", SELLIX_SECRET, path.to_str().unwrap()]);
        assert!(out.status.success());
        assert_eq!(stdout(&out).trim(), *sig, "{file}");
    }
    let out = storeflow(&["sign", "--secret", "x", "/no/such/file.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading /no/such/file.json"));
}

#[tokio::test]
async fn events_lists_newest_first_and_shows_one_in_full() {
    let d = Daemon::start(SECURED).await;
    let (file, event, sig) = SELLIX_FIXTURES[2];
    let paid = post_sellix(&d, file, event, sig).await;
    let url = d.url(&format!("/hooks/selldone/{SELLDONE_TOKEN}"));
    let sent = post(&url, &[], fixture("selldone/SentOrder.json")).await;
    let dir = d.stop().await;

    let config = dir.path().join("storeflow.yaml");
    std::fs::write(
        &config,
        format!("data_dir: {}\n", dir.path().join("data").display()),
    )
    .unwrap();
    let c = config.to_str().unwrap();

    let out = storeflow(&["events", "--json", "-c", c]);
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], sent.json["event_id"], "newest first");
    assert_eq!(lines[0]["topic"], "selldone/SentOrder");
    assert_eq!(lines[0]["canonical"], "order.shipped");
    assert_eq!(lines[0]["order_id"], "48213");
    assert_eq!(lines[1]["id"], paid.json["event_id"]);
    assert!(lines[1]["received_at"].as_str().unwrap().ends_with('Z'));

    let out = storeflow(&["events", "--limit", "1", "-c", c]);
    let text = stdout(&out);
    assert!(
        text.contains("selldone/SentOrder") && !text.contains("sellix/order:paid"),
        "{text}"
    );

    let id = paid.json["event_id"].as_str().unwrap();
    let out = storeflow(&["events", "show", id, "-c", c]);
    assert!(out.status.success());
    let e: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(e["order"]["id"], "7a31c2-9f0e4b6d21-58c0d3");
    assert_eq!(e["payload"]["data"]["serials"][0], "PRO-7Q2M-XK4D-91TZ");

    let out = storeflow(&["events", "show", "evt_nope", "-c", c]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_config_typo_is_reported_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("storeflow.yaml");
    std::fs::write(
        &config,
        "listen: 127.0.0.1:0\nsources:\n  sellix:\n    secrett: x\n",
    )
    .unwrap();
    let out = storeflow(&["serve", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("storeflow.yaml:4:5: unknown field `secrett`"),
        "{err}"
    );
}
