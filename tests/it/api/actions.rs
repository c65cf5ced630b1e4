//! What the API changes: replay, retries of dead letters, flags; and what it only shows: rules
//! and simulate. Deliveries go to a real HTTP receiver.

use std::time::Duration;

use serde_json::{json, Value};

use super::{config, get, ids, post_api, sellix_paid, start};
use crate::helpers::{fixture, post, wait_for_async, write_rules, Daemon, SELLIX_FIXTURES};
use crate::receivers::{scripted, Receiver};

/// A rule that posts every Sellix paid order to `url`.
fn http_rule(name: &str, url: &str) -> String {
    format!(
        "rules:\n  - name: {name}\n    on: sellix/order:paid\n    actions:\n      - http: {{ url: \"{url}\", json: {{ order: \"{{{{ order.id }}}}\" }} }}\n"
    )
}

/// Waits until `path` lists `n` items; answers them.
async fn listed(d: &Daemon, path: &str, n: usize) -> Vec<Value> {
    wait_for_async(&format!("{n} items at {path}"), || async {
        let (_, page) = get(d, path).await;
        let items = page["items"].as_array()?.clone();
        (items.len() == n).then_some(items)
    })
    .await
}

async fn event_page(d: &Daemon, id: &str) -> Value {
    let (status, page) = get(d, &format!("/api/events/{id}")).await;
    assert_eq!(status, 200, "{page}");
    page
}

/// Nothing more reaches the receiver for a while (a short settle: absence cannot be polled).
async fn nothing_more(receiver: &mut Receiver) {
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.try_next().is_none(), "an unexpected delivery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_dry_run_changes_nothing_and_a_real_replay_delivers_once() {
    let mut sink = Receiver::answering(200, "ok").await;
    // No rule listens yet: the event is processed with no jobs.
    let d = start("rules: []\n", &config()).await;
    let id = sellix_paid(&d, "r-1", "r@example.com").await;
    listed(&d, "/api/events?status=processed", 1).await;
    write_rules(
        d.dir.path(),
        "api.yaml",
        &http_rule("to-erp", &sink.url("/erp")),
    );
    wait_for_async("the new rule to load", || async {
        let (_, rules) = get(&d, "/api/rules").await;
        (rules["files"][0]["rules"][0]["name"] == "to-erp").then_some(())
    })
    .await;

    let (status, plan) = post_api(&d, &format!("/api/events/{id}/replay?dry_run=true"), None).await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["jobs"][0]["rule"], "to-erp@replay1");
    assert_eq!(plan["jobs"][0]["params"]["json"]["order"], "r-1");
    assert_eq!(event_page(&d, &id).await["jobs"], json!([]));
    nothing_more(&mut sink).await;

    let (status, done) = post_api(&d, &format!("/api/events/{id}/replay"), None).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["created"], 1);
    assert_eq!(sink.next().await.json(), json!({"order": "r-1"}));
    let jobs = wait_for_async("the replayed job to be done", || async {
        let page = event_page(&d, &id).await;
        (page["jobs"][0]["job"]["status"] == "done").then_some(page["jobs"].clone())
    })
    .await;
    assert_eq!(jobs[0]["job"]["rule"], "to-erp@replay1");
    // Replayed again: already delivered, so skipped unless forced.
    let (_, again) = post_api(&d, &format!("/api/events/{id}/replay"), None).await;
    assert_eq!(
        (
            again["created"].clone(),
            again["skipped"][0]["status"].clone()
        ),
        (json!(0), json!("done"))
    );
    nothing_more(&mut sink).await;
    let (_, forced) = post_api(&d, &format!("/api/events/{id}/replay?force=true"), None).await;
    assert_eq!(forced["jobs"][0]["rule"], "to-erp@replay2");
    assert_eq!(sink.next().await.json(), json!({"order": "r-1"}));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_retry_redelivers_each_dead_letter_once_and_keeps_its_history() {
    let refuse = (400, Vec::new(), "no".to_string());
    let mut sink = Receiver::start(scripted(vec![refuse.clone(), refuse])).await;
    let d = start(&http_rule("to-erp", &sink.url("/erp")), &config()).await;
    sellix_paid(&d, "d-1", "a@example.com").await;
    sellix_paid(&d, "d-2", "b@example.com").await;
    sink.next().await;
    sink.next().await;
    let dead = listed(&d, "/api/jobs?status=dead", 2).await;
    assert_eq!(listed(&d, "/api/events?status=dead", 2).await.len(), 2);

    let (status, count) = post_api(&d, "/api/jobs/retry?status=dead&dry_run=true", None).await;
    assert_eq!((status, count), (200, json!({"dry_run": true, "count": 2})));
    nothing_more(&mut sink).await;
    listed(&d, "/api/jobs?status=dead", 2).await;

    let (status, done) = post_api(&d, "/api/jobs/retry?status=dead", None).await;
    assert_eq!((status, done["requeued"].clone()), (200, json!(2)));
    let mut orders = vec![sink.next().await.json(), sink.next().await.json()];
    orders.sort_by_key(|o| o["order"].to_string());
    assert_eq!(
        orders,
        vec![json!({"order": "d-1"}), json!({"order": "d-2"})]
    );
    listed(&d, "/api/jobs?status=done", 2).await;
    nothing_more(&mut sink).await;
    for job in dead {
        let (_, shown) = get(&d, &format!("/api/jobs/{}", job["id"])).await;
        let outcomes: Vec<_> = shown["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["outcome"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(outcomes, ["dead", "done"], "{shown}");
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_dead_letter_is_retried_by_id() {
    let refuse = (400, Vec::new(), "no".to_string());
    let mut sink = Receiver::start(scripted(vec![refuse])).await;
    let d = start(&http_rule("to-erp", &sink.url("/erp")), &config()).await;
    sellix_paid(&d, "one-1", "a@example.com").await;
    sink.next().await;
    let dead = listed(&d, "/api/jobs?status=dead", 1).await;
    let id = dead[0]["id"].as_i64().unwrap();
    let (status, done) = post_api(&d, &format!("/api/jobs/{id}/retry"), None).await;
    assert_eq!((status, done), (200, json!({"requeued": 1, "job": id})));
    assert_eq!(sink.next().await.json(), json!({"order": "one-1"}));
    listed(&d, "/api/jobs?status=done", 1).await;
    let (status, busy) = post_api(&d, "/api/jobs/999/retry", None).await;
    assert_eq!(status, 404, "{busy}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flag_is_listed_open_until_resolved() {
    let rules = "rules:\n  - name: flag-disputes\n    on: order.disputed\n    actions:\n      - flag: { kind: dispute, note: check it }\n";
    let d = start(rules, &config()).await;
    let (file, event, sig) = SELLIX_FIXTURES[4];
    let h = [("x-sellix-event", event), ("x-sellix-signature", sig)];
    let answer = post(
        &d.url("/hooks/sellix"),
        &h,
        fixture(&format!("sellix/{file}")),
    )
    .await;
    assert_eq!(answer.status, 200);
    let open = listed(&d, "/api/flags?open=true", 1).await;
    assert_eq!(open[0]["kind"], "dispute");
    let id = open[0]["id"].as_i64().unwrap();
    let (status, resolved) = post_api(&d, &format!("/api/flags/{id}/resolve"), None).await;
    assert_eq!((status, resolved["resolved"].clone()), (200, json!(true)));
    assert!(
        resolved["flag"]["resolved_at"].is_number() || resolved["flag"]["resolved_at"].is_string()
    );
    assert!(ids(&get(&d, "/api/flags?open=true").await.1).is_empty());
    assert_eq!(listed(&d, "/api/flags", 1).await[0]["id"], id);
    let (_, again) = post_api(&d, &format!("/api/flags/{id}/resolve"), None).await;
    assert_eq!(again["already_resolved"], true);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_answers_the_plan_and_sends_nothing() {
    let mut sink = Receiver::answering(200, "ok").await;
    let d = start(&http_rule("to-erp", &sink.url("/erp")), &config()).await;
    let body = json!({"source": "sellix", "payload": {"event": "order:paid", "data": {"uniqid": "sim-1"}}});
    let (status, plan) = post_api(&d, "/api/simulate", Some(body)).await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["event"]["canonical"], "order.paid");
    assert_eq!(plan["trace"]["rules"][0]["matched"], true);
    assert_eq!(plan["jobs"][0]["params"]["json"]["order"], "sim-1");
    assert_eq!(plan["sent"], false);
    nothing_more(&mut sink).await;
    assert!(
        ids(&get(&d, "/api/events").await.1).is_empty(),
        "nothing journaled"
    );
    for (body, message) in [
        (
            json!({"source": "shopify", "payload": {}}),
            "unknown source `shopify`",
        ),
        (json!({"payload": {}}), "missing field `source`"),
    ] {
        let (status, e) = post_api(&d, "/api/simulate", Some(body)).await;
        assert_eq!(status, 400, "{e}");
        assert!(e["error"].as_str().unwrap().contains(message), "{e}");
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_show_files_errors_and_when_each_rule_last_fired() {
    let d = start(super::VIP_RULES, &config()).await;
    let vip = sellix_paid(&d, "vip-9", "v@example.com").await;
    let rule = wait_for_async("the rule to have fired", || async {
        let (_, rules) = get(&d, "/api/rules").await;
        let rule = rules["files"][0]["rules"][0].clone();
        rule["last_fired"].is_object().then_some(rule)
    })
    .await;
    assert_eq!(rule["name"], "vip-orders");
    assert_eq!(rule["last_fired"]["event_id"], vip.as_str());
    assert_eq!(rule["actions"], json!(["log"]));
    write_rules(
        d.dir.path(),
        "broken.yaml",
        "rules:\n  - name: x\n    on: order.paid\n    actions:\n      - emial: {}\n",
    );
    let rules = wait_for_async("the broken reload to be reported", || async {
        let (_, rules) = get(&d, "/api/rules").await;
        (rules["last_reload_ok"] == false).then_some(rules)
    })
    .await;
    assert!(
        rules["errors"][0].as_str().unwrap().contains("broken.yaml"),
        "{rules}"
    );
    assert_eq!(rules["loaded"], 1, "the previous rules keep running");
    d.stop().await;
}

/// A POST body is bounded like a webhook's: `intake.max_body` (413), and
/// `intake.header_timeout` for the whole body to arrive (408).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_body_over_max_body_or_too_slow_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let yaml = format!(
        "{}intake:\n  max_body: 1KiB\n  header_timeout: 1s\n",
        config()
    );
    let d = start(super::VIP_RULES, &yaml).await;
    let big = json!({"source": "sellix", "payload": {"pad": "x".repeat(2000)}});
    let (status, e) = post_api(&d, "/api/simulate", Some(big)).await;
    assert_eq!(status, 413, "{e}");
    assert!(e["error"].as_str().unwrap().contains("max_body"), "{e}");

    let addr = d.base.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/simulate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"source\"",
        super::TOKEN
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut answer));
    read.await.expect("no answer to a stalled body").unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    d.stop().await;
}
