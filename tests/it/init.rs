//! `storeflow init [DIR]` with the real binary: what it writes passes `check` and `test`, `serve`
//! starts on it and acts on a webhook, and it never overwrites an existing project.

use std::path::Path;
use std::process::{Command, Output};

use crate::helpers::*;

const TOKEN: &str = "init-test-selldone-token-5f2c";

fn storeflow(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_storeflow"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every file under `dir` with its content, sorted by path.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// `storeflow serve` in `dir` on the config `init` wrote, on port 0 through its `STOREFLOW_LISTEN`.
fn serve_in(dir: &Path) -> Process {
    Process::spawn(
        Command::new(env!("CARGO_BIN_EXE_storeflow"))
            .arg("serve")
            .current_dir(dir)
            .env("SELLDONE_WEBHOOK_TOKEN", TOKEN)
            .env("STOREFLOW_LISTEN", "127.0.0.1:0")
            .env_remove("STOREFLOW_DATA_DIR"),
    )
}

#[tokio::test]
async fn init_writes_a_project_that_checks_tests_and_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shop");
    let out = Command::new(env!("CARGO_BIN_EXE_storeflow"))
        .args(["init", dir.to_str().unwrap()])
        .env("SELLIX_WEBHOOK_SECRET", "do-not-write-me-7731")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    for step in [
        "SELLIX_WEBHOOK_SECRET",
        "SELLDONE_WEBHOOK_TOKEN",
        "/hooks/sellix",
        "/hooks/selldone/",
        "storeflow check",
        "storeflow test",
        "storeflow serve",
    ] {
        assert!(said.contains(step), "next steps mention {step}: {said}");
    }
    for (path, bytes) in snapshot(&dir) {
        assert!(
            !text(&bytes).contains("do-not-write-me"),
            "{path} holds a secret"
        );
    }
    for f in [
        "rules/orders.yaml",
        "templates/shipped.html",
        "plugins/telegram.rhai",
    ] {
        assert!(dir.join(f).is_file(), "init writes {f}");
    }

    let check = storeflow(&dir, &["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stdout));
    assert!(text(&check.stdout).contains("0 errors"));
    let test = storeflow(&dir, &["test"]);
    assert_eq!(test.status.code(), Some(0), "{}", text(&test.stdout));
    assert!(text(&test.stdout).contains("5 passed, 0 failed"));

    let served = serve_in(&dir);
    assert!(!served.base.ends_with(":8080"), "STOREFLOW_LISTEN ignored");
    let health: serde_json::Value = reqwest::get(format!("{}/healthz", served.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["rules"]["loaded"], 4);
    let url = format!("{}/hooks/selldone/{TOKEN}", served.base);
    let answer = post(&url, &[], fixture("selldone/SentOrder.json")).await;
    assert_eq!(answer.status, 200, "{:?}", answer.json);
    let mail = dir.join("data/mail");
    wait_for("the shipped email in data/mail", || {
        let n = std::fs::read_dir(&mail).ok()?.count();
        (n > 0).then_some(())
    })
    .await;
}

#[test]
fn init_refuses_to_overwrite_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("storeflow.yaml"), "listen: 127.0.0.1:9999\n").unwrap();
    let before = snapshot(dir);
    let out = storeflow(dir, &["init", "."]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("storeflow.yaml"), "names the file: {err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert_eq!(
        snapshot(dir),
        before,
        "init changed files it refused to write"
    );
    assert!(!dir.join("rules").exists());
}
