//! The real binary with the example rules from `rules/`: a shipped Selldone order emails the
//! buyer through SMTP; a Sellix dispute is flagged (listed by `storeflow flags`) and announced in
//! Slack.

use std::path::Path;
use std::process::Command;

use crate::helpers::*;
use crate::receivers::*;

fn copy_example_rules(to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_rules_email_the_buyer_and_flag_disputes() {
    let dir = tempfile::tempdir().unwrap();
    copy_example_rules(&dir.path().join("rules"));
    let mut smtp = SmtpServer::start();
    let mut slack = Receiver::answering(200, "ok").await;
    let yaml = format!(
        "rules_dir: {}\n{SECURED}email:\n  from: \"Example Store <shop@example.com>\"\n  smtp: {{ host: 127.0.0.1, port: {}, security: none }}\nslack:\n  webhook_url: {}\n",
        dir.path().join("rules").display(),
        smtp.port,
        slack.url("/services/T0/B0/x"),
    );
    let daemon = Process::start(dir.path(), &yaml);

    let sent = post(
        &daemon.url(&format!("/hooks/selldone/{SELLDONE_TOKEN}")),
        &[],
        fixture("selldone/SentOrder.json"),
    )
    .await;
    assert_eq!(sent.status, 200);
    let mail = smtp.next().await;
    assert_eq!(mail.to, vec!["buyer@example.com"]);
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Your order #48213 is on its way")
    );
    assert!(
        mail.data.contains("1 =C3=97 Ceramic Pour-Over Set")
            || mail.data.contains("1 × Ceramic Pour-Over Set"),
        "{}",
        mail.data
    );

    let (file, event, sig) = SELLIX_FIXTURES[4]; // order_disputed.json
    let body = fixture(&format!("sellix/{file}"));
    let disputed = post(
        &daemon.url("/hooks/sellix"),
        &[("x-sellix-event", event), ("x-sellix-signature", sig)],
        body,
    )
    .await;
    assert_eq!(disputed.status, 200);
    let announced = slack.next().await;
    assert!(
        announced.json()["text"]
            .as_str()
            .unwrap()
            .contains("dispute on e19d3f-6b0c2a8e47-9d21a5 (24.99 USD)"),
        "{:?}",
        announced.json()
    );

    let config = dir.path().join("storeflow.yaml");
    let flags = wait_for_async("the dispute flag", || async {
        let out = Command::new(env!("CARGO_BIN_EXE_storeflow"))
            .args(["flags", "--json", "--kind", "dispute", "-c"])
            .arg(&config)
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        (!text.trim().is_empty()).then_some(text)
    })
    .await;
    let flag: serde_json::Value = serde_json::from_str(flags.lines().next().unwrap()).unwrap();
    assert_eq!(flag["order_id"], "e19d3f-6b0c2a8e47-9d21a5");
    assert_eq!(flag["note"], "MERCHANDISE_OR_SERVICE_NOT_AS_DESCRIBED");
    assert_eq!(flag["rule"], "flag-disputes");

    // The same dispute delivered again: no second flag, no second Slack message.
    let again = post(
        &daemon.url("/hooks/sellix"),
        &[("x-sellix-event", event), ("x-sellix-signature", sig)],
        fixture(&format!("sellix/{file}")),
    )
    .await;
    assert_eq!(again.json["duplicate"], true);
    let status = daemon.terminate();
    assert!(status.success());
    assert!(slack.try_next().is_none(), "one Slack message per dispute");
    assert!(smtp.try_next().is_none(), "one email per shipment");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_deliveries_then_restart_completes_every_job_once() {
    let dir = tempfile::tempdir().unwrap();
    let rules = "rules:\n  - name: mail\n    on: order.shipped\n    actions:\n      - email: { to: \"{{ order.customer.email }}\", subject: \"order {{ order.id }}\", body: hi }\n";
    write_rules(dir.path(), "r.yaml", rules);
    // 50 ms per message with one delivery at a time: the kill lands mid-way through the queue.
    let mut smtp = SmtpServer::slow(std::time::Duration::from_millis(50));
    let yaml = format!(
        "rules_dir: {}\n{SECURED}email:\n  smtp: {{ host: 127.0.0.1, port: {}, security: none }}\ndelivery:\n  concurrency: 1\n  retry_schedule: [100ms]\n",
        dir.path().join("rules").display(),
        smtp.port
    );
    let daemon = Process::start(dir.path(), &yaml);
    let url = daemon.url(&format!("/hooks/selldone/{SELLDONE_TOKEN}"));
    let template = String::from_utf8(fixture("selldone/SentOrder.json")).unwrap();
    let total = 30;
    for n in 0..total {
        let body = template.replace("\"id\": 48213", &format!("\"id\": {}", 50_000 + n));
        assert_eq!(post(&url, &[], body.into_bytes()).await.status, 200);
    }
    // Kill while deliveries are under way.
    let mut mails = vec![smtp.next().await];
    daemon.kill9();
    while let Some(m) = smtp.try_next() {
        mails.push(m);
    }
    let before_restart = mails.len();
    assert!(
        before_restart < total,
        "the kill should interrupt the deliveries"
    );

    let _daemon = Process::start(dir.path(), &yaml);
    let mut ids: std::collections::HashSet<String> = mails
        .iter()
        .filter_map(|m| m.header("Message-ID"))
        .collect();
    while ids.len() < total {
        let m = smtp.next().await;
        ids.insert(m.header("Message-ID").unwrap());
        mails.push(m);
    }
    let subjects: std::collections::HashSet<String> =
        mails.iter().filter_map(|m| m.header("Subject")).collect();
    assert_eq!(subjects.len(), total, "every order got its email");
    // At-least-once: only a send interrupted between SMTP acceptance and its journal record can
    // repeat, and then with the same Message-ID (so the mail system can drop it).
    assert!(
        mails.len() <= total + 2,
        "{} mails for {total} jobs",
        mails.len()
    );
    let store =
        storeflow::journal::SqliteStore::open_existing(&dir.path().join("data/storeflow.db"))
            .unwrap();
    let done = wait_for_async("every job done", || async {
        use storeflow::journal::Store;
        let done = store
            .jobs(None, Some(storeflow::journal::JobStatus::Done), 1000)
            .unwrap();
        (done.len() == total).then_some(done)
    })
    .await;
    assert_eq!(done.len(), total);
}
