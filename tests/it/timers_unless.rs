//! A wait whose `unless` event was journaled before the wait started (webhooks overtake each
//! other): the timer worker finds that event when the wait comes due and cancels the wait then.
//! Until then the wait is listed as pending; after, every view says who cancelled it.

use crate::helpers::*;
use crate::receivers::*;
use crate::timers::selldone;

const RULE: &str = r#"
rules:
  - name: paid-not-shipped
    on: order.paid
    wait: { for: 3s, unless: [order.shipped] }
    actions:
      - slack: { text: "order {{ order.id }} not shipped after {{ waited }}" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_an_unless_event_journaled_before_the_wait_cancels_it_at_its_due_time() {
    let mut slack = Receiver::answering(200, "ok").await;
    let dir = dir_with_rules("wait.yaml", RULE);
    let yaml = format!(
        "rules_dir: {}\n{SECURED}slack:\n  webhook_url: {}\n",
        dir.path().join("rules").display(),
        slack.url("/services/T0/B0/x")
    );
    let daemon = Process::start(dir.path(), &yaml);
    let cfg = dir.path().join("storeflow.yaml");
    let cfg = cfg.to_str().unwrap();
    let shipped = selldone(&daemon.base, "SentOrder", 71, "2026-01-01 10:00:01").await;
    let paid = selldone(&daemon.base, "PaymentOrder", 71, "2026-01-01 10:00:00").await;

    // Before its due time the wait is listed as pending, like any other.
    let listed = wait_for("the wait in `storeflow timers`", || {
        let out = stdout(&storeflow(&[
            "timers", "--json", "--order", "71", "-c", cfg,
        ]));
        (!out.is_empty()).then_some(out)
    })
    .await;
    let timer: serde_json::Value = serde_json::from_str(listed.lines().next().unwrap()).unwrap();
    assert_eq!(timer["event_id"], paid.as_str(), "{listed}");
    assert_eq!(timer["status"], "pending", "{listed}");

    // Another order's wait, due later, fires: the worker went past order 71's due time.
    selldone(&daemon.base, "PaymentOrder", 72, "2026-01-01 10:00:00").await;
    let message = slack.next().await;
    assert_eq!(
        message.json()["text"],
        "order 72 not shipped after 3s",
        "order 71's wait must not fire"
    );
    let reason = format!("cancelled — cancelled by selldone/SentOrder (event {shipped})");
    let shown = stdout(&storeflow(&["events", "show", &paid, "-c", cfg]));
    assert!(shown.contains(&reason), "{shown}");
    let timeline = stdout(&storeflow(&["orders", "show", "71", "-c", cfg]));
    assert!(timeline.contains(&reason), "{timeline}");
    let pending = stdout(&storeflow(&["timers", "--order", "71", "-c", cfg]));
    assert!(pending.contains("no pending timers"), "{pending}");
    assert!(slack.try_next().is_none());
}
