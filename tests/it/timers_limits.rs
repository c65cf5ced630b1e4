//! `limit` state (`limit:<rule>:<key>` in the journal's `kv`) does not grow for ever: the timer
//! worker deletes a key two windows after its last run, and keeps the keys whose window holds.

use storeflow::journal::Store;

use crate::helpers::*;
use crate::timers::selldone;

const RULES: &str = r#"
rules:
  - name: fast
    on: order.paid
    limit: { key: "{{ order.id }}", max: 1, per: 2s }
    actions:
      - log: { message: "fast {{ order.id }}" }
  - name: slow
    on: order.paid
    limit: { key: "{{ order.id }}", max: 1, per: 1h }
    actions:
      - log: { message: "slow {{ order.id }}" }
"#;

fn limit_keys(d: &Daemon) -> Vec<String> {
    let keys = d.journal().state_keys("limit:").unwrap();
    keys.into_iter().map(|(k, _)| k).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_limit_state_is_pruned_when_its_window_is_over() {
    let d = Daemon::start_in(dir_with_rules("limits.yaml", RULES), SECURED).await;
    let paid = selldone(&d.base, "PaymentOrder", 31, "2026-01-01 10:00:00").await;
    d.trace(&paid).await;
    assert_eq!(limit_keys(&d), vec!["limit:fast:31", "limit:slow:31"]);
    let left = wait_for("the 2s window's state to be pruned", || {
        let keys = limit_keys(&d);
        (keys.len() < 2).then_some(keys)
    })
    .await;
    assert_eq!(left, vec!["limit:slow:31"], "the 1h window still holds");
    // The window is over: the next run of the fast rule is allowed again, the slow one limited.
    let again = selldone(&d.base, "PaymentOrder", 31, "2026-01-01 10:00:09").await;
    let trace = d.trace(&again).await;
    let time = trace["time"].as_array().unwrap();
    assert_eq!(time.len(), 1, "{trace}");
    assert_eq!(time[0]["rule"], "slow", "{trace}");
    assert_eq!(time[0]["what"], "limited", "{trace}");
    d.stop().await;
}
