//! The timer worker is woken when the pipeline commits a timer (it used to poll every 200 ms;
//! its fallback poll is now 1 s): a wait fires at its due time, not up to a poll later.

use std::time::Duration;

use storeflow::journal::{Store, TimerFilter, TimerStatus};

use crate::helpers::*;
use crate::timers::selldone;

const RULE: &str = r#"
rules:
  - name: paid-not-shipped
    on: order.paid
    wait: { for: 200ms }
    actions:
      - log: { message: "late {{ order.id }}" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_new_timer_wakes_the_timer_worker_so_it_fires_on_time() {
    let d = Daemon::start_in(dir_with_rules("wait.yaml", RULE), SECURED).await;
    // Waits shorter than the worker's 1 s fallback poll, started at different points of it:
    // with only the poll, most would fire hundreds of ms late.
    for (order, pause) in [(81, 0), (82, 370), (83, 290), (84, 530), (85, 410)] {
        tokio::time::sleep(Duration::from_millis(pause)).await;
        selldone(&d.base, "PaymentOrder", order, "2026-01-01 10:00:00").await;
    }
    let timers = wait_for("the five waits to fire", || {
        let timers = d.journal().timers(&TimerFilter::default()).unwrap();
        let fired = timers.iter().filter(|t| t.status == TimerStatus::Fired);
        (fired.count() == 5).then_some(timers)
    })
    .await;
    for t in timers {
        let late = t.finished_at.unwrap().millis() - t.due_at.millis();
        assert!(
            (0..250).contains(&late),
            "timer {} fired {late} ms late",
            t.id
        );
    }
    d.stop().await;
}
