//! Rules in a running daemon: traces and planned jobs, hot reload, held events, exactly-once.

use serde_json::json;
use storeflow::journal::Store;

use crate::helpers::*;

pub const SHOP_RULES: &str = r#"
rules:
  - name: email-customer-when-shipped
    description: Tell the buyer the parcel left the warehouse
    on: order.shipped
    match:
      order.total: { gte: 20 }
      payload.basket.type: PHYSICAL
    if: 'order.customer.email != ""'
    actions:
      - email:
          to: "{{ order.customer.email }}"
          subject: "Your order #{{ order.id }} is on its way"
          body: "Hi {{ order.customer.name }}, {{ order.items | length }} items are on their way."
      - log:
          message: "shipped {{ order.id }} for rule {{ rule.name }}"
  - name: slack-big-paid-orders
    on: [order.paid, sellix/order:paid]
    match:
      order.total: { gt: 100 }
    actions:
      - slack: { text: "big order {{ order.id }}" }
"#;

fn event_id(a: &Answer) -> String {
    a.json["event_id"].as_str().unwrap().to_string()
}

fn rule<'a>(trace: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    trace["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == name)
        .unwrap_or_else(|| panic!("{name} not in trace {trace}"))
}

#[tokio::test]
async fn a_matching_event_gets_a_trace_and_rendered_pending_jobs() {
    let d = Daemon::start_in(dir_with_rules("shop.yaml", SHOP_RULES), SECURED).await;
    let url = d.url(&format!("/hooks/selldone/{SELLDONE_TOKEN}"));
    let id = event_id(&post(&url, &[], fixture("selldone/SentOrder.json")).await);
    let trace = d.trace(&id).await;
    assert_eq!(rule(&trace, "email-customer-when-shipped")["matched"], true);

    let jobs = d.journal().jobs(Some(&id), None, 10).unwrap();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let email = jobs.iter().find(|j| j.kind == "email").unwrap();
    assert_eq!(
        (email.rule.as_str(), email.action_index),
        ("email-customer-when-shipped", 0)
    );
    assert_eq!(email.params["to"], "buyer@example.com");
    assert_eq!(email.params["subject"], "Your order #48213 is on its way");
    assert_eq!(
        email.params["body"],
        "Hi Jane Example, 2 items are on their way."
    );
    let log = jobs.iter().find(|j| j.kind == "log").unwrap();
    assert_eq!(
        log.params["message"],
        "shipped 48213 for rule email-customer-when-shipped"
    );
    d.stop().await;
}

#[tokio::test]
async fn a_miss_is_explained_with_the_failing_condition_and_its_value() {
    let d = Daemon::start_in(dir_with_rules("shop.yaml", SHOP_RULES), SECURED).await;
    let (file, event, sig) = SELLIX_FIXTURES[2]; // order_paid.json, total 49.98
    let id = event_id(&post_sellix(&d, file, event, sig).await);
    let trace = d.trace(&id).await;
    let big = rule(&trace, "slack-big-paid-orders");
    assert_eq!(big["matched"], false);
    assert_eq!(big["miss"]["reason"], "condition");
    assert_eq!(big["miss"]["path"], "order.total");
    assert_eq!(big["miss"]["actual"], json!(49.98));
    assert!(
        big["miss"]["expected"].as_str().unwrap().contains("100"),
        "{big}"
    );
    assert_eq!(
        trace["not_listening"], 1,
        "the shipping rule does not listen to order.paid"
    );
    assert!(d.journal().jobs(Some(&id), None, 10).unwrap().is_empty());
    d.stop().await;
}

#[tokio::test]
async fn a_failing_if_is_traced_and_the_worker_carries_on() {
    let rules = r#"
rules:
  - name: broken-if
    on: "*"
    if: 'order.total > 1 && undefined_fn()'
    actions: [ { log: { message: never } } ]
  - name: catch-all
    on: "*"
    actions: [ { log: { message: "seen {{ event.topic }}" } } ]
"#;
    let d = Daemon::start_in(dir_with_rules("r.yaml", rules), SECURED).await;
    let (file, event, sig) = SELLIX_FIXTURES[2];
    let id = event_id(&post_sellix(&d, file, event, sig).await);
    let trace = d.trace(&id).await;
    assert_eq!(rule(&trace, "broken-if")["miss"]["reason"], "if_error");
    let jobs = d.journal().jobs(Some(&id), None, 10).unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].params["message"], "seen sellix/order:paid");
    d.stop().await;
}

#[tokio::test]
async fn hot_reload_takes_good_edits_and_keeps_running_through_broken_ones() {
    let d = Daemon::start_in(dir_with_rules("shop.yaml", SHOP_RULES), SECURED).await;
    assert_eq!(d.health().await["rules"]["loaded"], 2);

    let added = format!("{SHOP_RULES}  - name: every-paid\n    on: order.paid\n    actions: [ {{ log: {{ message: paid }} }} ]\n");
    d.write_rules("shop.yaml", &added);
    wait_for_async("the good edit to load", || async {
        (d.health().await["rules"]["loaded"] == 3).then_some(())
    })
    .await;

    d.write_rules(
        "shop.yaml",
        "rules:\n  - name: x\n    on: order.paid\n    actions: [ { emial: {} } ]\n",
    );
    let health = wait_for_async("the broken edit to be reported", || async {
        let h = d.health().await;
        (h["rules"]["last_reload_ok"] == false).then_some(h)
    })
    .await;
    assert_eq!(health["rules"]["loaded"], 3, "previous rules keep running");
    let errors = health["rules"]["errors"].to_string();
    assert!(
        errors.contains("shop.yaml:4:") && errors.contains("unknown action `emial`"),
        "{errors}"
    );

    // The previous set still plans jobs.
    let (file, event, sig) = SELLIX_FIXTURES[2];
    let id = event_id(&post_sellix(&d, file, event, sig).await);
    d.trace(&id).await;
    let jobs = d.journal().jobs(Some(&id), None, 10).unwrap();
    assert_eq!(
        jobs.iter().map(|j| j.rule.as_str()).collect::<Vec<_>>(),
        vec!["every-paid"]
    );
    d.stop().await;
}

#[tokio::test]
async fn events_wait_for_valid_rules_and_are_planned_exactly_once_after_restart() {
    // Broken rules at start: webhooks are still journaled, but held.
    let dir = dir_with_rules(
        "shop.yaml",
        "rules:\n  - name: x\n    on: order.shipped\n    actions: [ { emial: {} } ]\n",
    );
    let d = Daemon::start_in(dir, SECURED).await;
    assert_eq!(d.health().await["rules"]["last_reload_ok"], false);
    let url = d.url(&format!("/hooks/selldone/{SELLDONE_TOKEN}"));
    let a = post(&url, &[], fixture("selldone/SentOrder.json")).await;
    assert_eq!(a.status, 200);
    let id = event_id(&a);
    let dir = d.stop().await;
    assert!(
        journal_trace(&dir, &id).is_none(),
        "held while the rules are broken"
    );

    // Fixed while the daemon was down: processed once after restart.
    write_rules(dir.path(), "shop.yaml", SHOP_RULES);
    let d = Daemon::start_in(dir, SECURED).await;
    d.trace(&id).await;
    assert_eq!(d.journal().jobs(Some(&id), None, 10).unwrap().len(), 2);
    let dir = d.stop().await;
    let d = Daemon::start_in(dir, SECURED).await;
    let url = d.url(&format!("/hooks/selldone/{SELLDONE_TOKEN}"));
    let again = post(&url, &[], fixture("selldone/ToCustomer.json")).await;
    d.trace(&event_id(&again)).await;
    assert_eq!(
        d.journal().jobs(Some(&id), None, 10).unwrap().len(),
        2,
        "no second planning"
    );
    d.stop().await;
}

fn journal_trace(dir: &tempfile::TempDir, id: &str) -> Option<serde_json::Value> {
    storeflow::journal::SqliteStore::open_existing(&dir.path().join("data/storeflow.db"))
        .unwrap()
        .trace(id)
        .unwrap()
}
