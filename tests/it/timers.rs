//! Time in rules end to end (DESIGN.md §12), with the real daemon and durations of seconds:
//! waits that fire or are cancelled by a later event of the same order, timers surviving
//! SIGKILL, `max_late`, delays with `if_still`, limits, digests and quiet hours on an injected
//! clock.

use std::path::Path;
use std::time::{Duration, Instant};

use storeflow::journal::{SqliteStore, Store, Timer, TimerFilter, TimerStatus};

use crate::helpers::*;
use crate::receivers::*;

/// Posts a Selldone fixture for order `order` (its `updated_at` set to `stamp`, so each post is
/// a distinct delivery); answers the event id.
pub async fn selldone(base: &str, fixture_name: &str, order: u64, stamp: &str) -> String {
    selldone_with(base, fixture_name, order, stamp, |_| {}).await
}

pub async fn selldone_with(
    base: &str,
    fixture_name: &str,
    order: u64,
    stamp: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> String {
    let mut body: serde_json::Value =
        serde_json::from_slice(&fixture(&format!("selldone/{fixture_name}.json"))).unwrap();
    body["basket"]["id"] = serde_json::json!(order);
    body["basket"]["updated_at"] = serde_json::json!(stamp);
    edit(&mut body);
    let url = format!("{base}/hooks/selldone/{SELLDONE_TOKEN}");
    let answer = post(&url, &[], serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    answer.json["event_id"].as_str().unwrap().to_string()
}

fn config(slack: &Receiver) -> String {
    format!(
        "{SECURED}slack:\n  webhook_url: {}\n",
        slack.url("/services/T0/B0/x")
    )
}

pub fn timers_in(data: &Path) -> Vec<Timer> {
    let store = SqliteStore::open_existing(&data.join("storeflow.db")).unwrap();
    store.timers(&TimerFilter::default()).unwrap()
}

fn text(r: &Recorded) -> String {
    r.json()["text"].as_str().unwrap_or_default().to_string()
}

const WAIT_RULE: &str = r#"
rules:
  - name: paid-not-shipped
    on: order.paid
    wait: { for: 2s, unless: [order.shipped, order.cancelled] }
    actions:
      - slack: { text: "order {{ order.id }} not shipped after {{ waited }}" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_fires_after_its_duration_unless_the_order_ships() {
    let mut slack = Receiver::answering(200, "ok").await;
    let d = Daemon::start_in(dir_with_rules("wait.yaml", WAIT_RULE), &config(&slack)).await;
    let posted = Instant::now();
    // Order 2 ships before its wait ends: cancelled. Order 1 does not: it fires.
    let paid2 = selldone(&d.base, "PaymentOrder", 2, "2026-01-01 10:00:00").await;
    let paid1 = selldone(&d.base, "PaymentOrder", 1, "2026-01-01 10:00:00").await;
    let shipped2 = selldone(&d.base, "SentOrder", 2, "2026-01-01 10:00:01").await;
    let trace = d.trace(&shipped2).await;
    assert_eq!(trace["time"][0]["what"], "cancels", "{trace}");

    let message = slack.next().await;
    assert_eq!(text(&message), "order 1 not shipped after 2s");
    assert!(
        posted.elapsed() >= Duration::from_millis(1900),
        "fired early"
    );

    let timers = d.journal().timers(&TimerFilter::default()).unwrap();
    let of = |e: &str| timers.iter().find(|t| t.event_id == e).unwrap().clone();
    assert_eq!(of(&paid1).status, TimerStatus::Fired);
    let cancelled = of(&paid2);
    assert_eq!(cancelled.status, TimerStatus::Cancelled);
    let reason = cancelled.outcome.unwrap();
    assert!(
        reason.contains("selldone/SentOrder") && reason.contains(&shipped2),
        "{reason}"
    );
    // Order 2's due time passed before order 1's: nothing else was sent.
    assert!(slack.try_next().is_none());
    let trace = d.trace(&paid1).await;
    assert_eq!(trace["time"][0]["what"], "wait", "{trace}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unless_event_journaled_before_the_wait_started_cancels_it() {
    let mut slack = Receiver::answering(200, "ok").await;
    let d = Daemon::start_in(dir_with_rules("wait.yaml", WAIT_RULE), &config(&slack)).await;
    // The shipment's webhook overtook the payment's.
    let shipped = selldone(&d.base, "SentOrder", 7, "2026-01-01 10:00:01").await;
    let paid = selldone(&d.base, "PaymentOrder", 7, "2026-01-01 10:00:00").await;
    // The wait starts (the earlier shipment is looked for when it comes due, not when planned).
    let trace = d.trace(&paid).await;
    assert_eq!(trace["time"][0]["what"], "wait", "{trace}");
    // Another order's wait still fires (and proves the worker ran past order 7's due time).
    selldone(&d.base, "PaymentOrder", 8, "2026-01-01 10:00:00").await;
    assert_eq!(text(&slack.next().await), "order 8 not shipped after 2s");
    assert!(slack.try_next().is_none());
    let timers = d.journal().timers(&TimerFilter::default()).unwrap();
    let of7 = timers.iter().find(|t| t.event_id == paid).unwrap();
    assert_eq!(of7.status, TimerStatus::Cancelled);
    let reason = of7.outcome.clone().unwrap();
    assert_eq!(
        reason,
        format!("cancelled by selldone/SentOrder (event {shipped})")
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_pending_at_sigkill_fire_once_after_restart_unless_too_late() {
    let mut slack = Receiver::answering(200, "ok").await;
    let dir = tempfile::tempdir().unwrap();
    let rules = format!(
        "{WAIT_RULE}
  - name: stale-check
    on: order.paid
    max_late: 1s
    wait: {{ for: 2s }}
    actions:
      - slack: {{ text: \"stale {{{{ order.id }}}}\" }}
"
    );
    write_rules(dir.path(), "wait.yaml", &rules);
    let yaml = format!(
        "rules_dir: {}\n{}",
        dir.path().join("rules").display(),
        config(&slack)
    );
    let daemon = Process::start(dir.path(), &yaml);
    for order in 1..=3 {
        selldone(&daemon.base, "PaymentOrder", order, "2026-01-01 10:00:00").await;
    }
    let data = dir.path().join("data");
    wait_for("six pending timers", || {
        let t = timers_in(&data);
        (t.len() == 6 && t.iter().all(|t| t.status == TimerStatus::Pending)).then_some(())
    })
    .await;
    daemon.kill9();
    // Down for longer than the waits and than `max_late` after them.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let daemon = Process::start(dir.path(), &yaml);

    let mut got: Vec<String> = Vec::new();
    for _ in 0..3 {
        got.push(text(&slack.next().await));
    }
    got.sort();
    assert_eq!(
        got,
        (1..=3)
            .map(|o| format!("order {o} not shipped after 2s"))
            .collect::<Vec<_>>()
    );
    let timers = wait_for("every timer settled", || {
        let t = timers_in(&data);
        t.iter()
            .all(|t| t.status != TimerStatus::Pending)
            .then_some(t)
    })
    .await;
    for t in &timers {
        match t.rule.as_str() {
            "paid-not-shipped" => assert_eq!(t.status, TimerStatus::Fired),
            _ => {
                assert_eq!(t.status, TimerStatus::Skipped, "{t:?}");
                let why = t.outcome.clone().unwrap();
                assert!(why.contains("late (max_late 1s)"), "{why}");
            }
        }
    }
    // Exactly once: three jobs, and nothing more reaches Slack.
    let store = SqliteStore::open_existing(&data.join("storeflow.db")).unwrap();
    assert_eq!(store.jobs(None, None, 100).unwrap().len(), 3);
    drop(daemon);
    assert!(slack.try_next().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_action_is_skipped_when_if_still_is_false_at_fire_time() {
    let rules = r#"
rules:
  - name: review-request
    on: order.delivered
    actions:
      - slack: { text: "how was order {{ order.id }}?" }
        delay: 2s
        if_still: 'event.canonical != "order.returned"'
"#;
    let mut slack = Receiver::answering(200, "ok").await;
    let d = Daemon::start_in(dir_with_rules("review.yaml", rules), &config(&slack)).await;
    let returned = selldone(&d.base, "ToCustomer", 11, "2026-01-01 10:00:00").await;
    selldone(&d.base, "ReturnOrder", 11, "2026-01-01 10:00:01").await;
    let kept = selldone(&d.base, "ToCustomer", 12, "2026-01-01 10:00:00").await;
    let trace = d.trace(&kept).await;
    assert_eq!(trace["time"][0]["what"], "delayed", "{trace}");
    assert_eq!(trace["time"][0]["action"], 0, "{trace}");

    assert_eq!(text(&slack.next().await), "how was order 12?");
    let timers = d.journal().timers(&TimerFilter::default()).unwrap();
    let skipped = timers.iter().find(|t| t.event_id == returned).unwrap();
    assert_eq!(skipped.status, TimerStatus::Skipped);
    let why = skipped.outcome.clone().unwrap();
    assert!(why.starts_with("skipped: if_still false"), "{why}");
    assert!(slack.try_next().is_none());
    d.stop().await;
}

fn customer(email: &'static str) -> impl FnOnce(&mut serde_json::Value) {
    move |body| {
        body["customer"]["email"] = serde_json::json!(email);
        body["user"]["email"] = serde_json::json!(email);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_skips_runs_over_it_and_holds_across_restarts() {
    let rules = r#"
rules:
  - name: vip-ping
    on: order.paid
    limit: { key: "{{ order.customer.email }}", max: 1, per: 1h }
    actions:
      - slack: { text: "{{ order.customer.email }} ordered ({{ order.id }})" }
"#;
    let mut slack = Receiver::answering(200, "ok").await;
    let yaml = config(&slack);
    let d = Daemon::start_in(dir_with_rules("vip.yaml", rules), &yaml).await;
    let stamp = "2026-01-01 10:00:00";
    selldone_with(
        &d.base,
        "PaymentOrder",
        21,
        stamp,
        customer("ann@example.com"),
    )
    .await;
    assert_eq!(text(&slack.next().await), "ann@example.com ordered (21)");
    let second = selldone_with(
        &d.base,
        "PaymentOrder",
        22,
        stamp,
        customer("ann@example.com"),
    )
    .await;
    let trace = d.trace(&second).await;
    assert_eq!(trace["time"][0]["what"], "limited", "{trace}");
    let detail = trace["time"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("ann@example.com"), "{detail}");

    let d = Daemon::start_in(d.stop().await, &yaml).await;
    let third = selldone_with(
        &d.base,
        "PaymentOrder",
        23,
        stamp,
        customer("ann@example.com"),
    )
    .await;
    assert_eq!(d.trace(&third).await["time"][0]["what"], "limited");
    // Another key has its own budget.
    selldone_with(
        &d.base,
        "PaymentOrder",
        24,
        stamp,
        customer("bob@example.com"),
    )
    .await;
    assert_eq!(text(&slack.next().await), "bob@example.com ordered (24)");
    assert!(slack.try_next().is_none());
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_limited_run_is_not_counted_as_fired() {
    let rules = r#"
rules:
  - name: vip-once
    on: order.paid
    limit: { key: "{{ order.customer.email }}", max: 1, per: 1h }
    actions:
      - slack: { text: "{{ order.customer.email }} ordered ({{ order.id }})" }
"#;
    let mut slack = Receiver::answering(200, "ok").await;
    let d = Daemon::start_in(dir_with_rules("vip.yaml", rules), &config(&slack)).await;
    let stamp = "2026-01-01 10:00:00";
    let ann = |id| {
        selldone_with(
            &d.base,
            "PaymentOrder",
            id,
            stamp,
            customer("ann@example.com"),
        )
    };
    let first = ann(31).await;
    slack.next().await;
    let second = ann(32).await;
    assert_eq!(d.trace(&second).await["time"][0]["what"], "limited");
    let bob = selldone_with(
        &d.base,
        "PaymentOrder",
        33,
        stamp,
        customer("bob@example.com"),
    )
    .await;
    assert_eq!(text(&slack.next().await), "bob@example.com ordered (33)");
    // The API's (and console's) "rule fired" filter and the metric count ann's first run and
    // bob's, not the limited one (events are processed in order: it was counted before bob's).
    let page: serde_json::Value = reqwest::get(d.url("/api/events?rule=vip-once"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [bob.as_str(), first.as_str()], "{page}");
    let url = d.url("/metrics");
    let line = wait_for_async("bob's run counted", || async {
        let text = reqwest::get(&url).await.ok()?.text().await.ok()?;
        text.lines()
            .find(|l| {
                l.starts_with("storeflow_rule_fired_total{rule=\"vip-once\"} ")
                    && !l.ends_with(" 1")
            })
            .map(str::to_string)
    })
    .await;
    assert_eq!(line, "storeflow_rule_fired_total{rule=\"vip-once\"} 2");
    assert!(slack.try_next().is_none());
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_sends_one_message_listing_its_events() {
    let rules = r#"
rules:
  - name: paid-digest
    on: order.paid
    digest: { every: 1h, max: 5 }
    actions:
      - slack: { text: "{{ events | length }} paid:{% for e in events %} {{ e.order.id }}{% endfor %}" }
  - name: paid-window
    on: order.paid
    digest: { every: 2s }
    actions:
      - slack: { text: "window of {{ events | length }}" }
"#;
    let mut slack = Receiver::answering(200, "ok").await;
    let d = Daemon::start_in(dir_with_rules("digest.yaml", rules), &config(&slack)).await;
    for order in 31..=35 {
        selldone(&d.base, "PaymentOrder", order, "2026-01-01 10:00:00").await;
    }
    // `max: 5` closes the first window at once; the second closes after 2 s.
    let mut got = vec![text(&slack.next().await), text(&slack.next().await)];
    got.sort();
    assert_eq!(got, vec!["5 paid: 31 32 33 34 35", "window of 5"]);
    let timers = d.journal().timers(&TimerFilter::default()).unwrap();
    assert_eq!(timers.len(), 2, "{timers:?}");
    assert!(timers
        .iter()
        .all(|t| t.status == TimerStatus::Fired && t.events.len() == 5));
    assert!(slack.try_next().is_none());
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_hours_postpone_actions_to_their_end_on_the_injected_clock() {
    let rules = r#"
rules:
  - name: night-ping
    on: order.paid
    quiet_hours: { from: "22:00", to: "07:00", tz: Europe/Berlin }
    actions:
      - slack: { text: "paid {{ order.id }}" }
"#;
    let mut slack = Receiver::answering(200, "ok").await;
    let dir = dir_with_rules("night.yaml", rules);
    let config_path = dir.path().join("storeflow.yaml");
    let yaml = format!(
        "listen: 127.0.0.1:0\ndata_dir: {}\nrules_dir: {}\n{}",
        dir.path().join("data").display(),
        dir.path().join("rules").display(),
        config(&slack)
    );
    std::fs::write(&config_path, yaml).unwrap();
    // 06:59:57 in Berlin (CET, UTC+1) on 15 January 2026.
    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_storeflow"));
    serve
        .args(["serve", "-c"])
        .arg(&config_path)
        .env("STOREFLOW_TEST_CLOCK", "2026-01-15T05:59:57Z");
    let daemon = Process::spawn(&mut serve);
    let posted = Instant::now();
    let event = selldone(&daemon.base, "PaymentOrder", 41, "2026-01-01 10:00:00").await;
    assert_eq!(text(&slack.next().await), "paid 41");
    assert!(
        posted.elapsed() >= Duration::from_millis(1500),
        "not postponed"
    );
    let timers = timers_in(&dir.path().join("data"));
    assert_eq!(timers.len(), 1);
    let t = &timers[0];
    assert_eq!(t.event_id, event);
    assert_eq!(t.due_at.to_rfc3339(), "2026-01-15T06:00:00.000Z");
    let why = t.outcome.clone().unwrap();
    assert!(
        why.contains("quiet hours 22:00-07:00 Europe/Berlin"),
        "{why}"
    );
    assert_eq!(t.status, TimerStatus::Fired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_are_listed_cancelled_and_shown_by_the_cli_healthz_and_metrics() {
    let rules = WAIT_RULE.replace("for: 2s", "for: 1h");
    let slack = Receiver::answering(200, "ok").await;
    let dir = dir_with_rules("wait.yaml", &rules);
    let yaml = format!(
        "rules_dir: {}\n{}",
        dir.path().join("rules").display(),
        config(&slack)
    );
    let daemon = Process::start(dir.path(), &yaml);
    let event = selldone(&daemon.base, "PaymentOrder", 51, "2026-01-01 10:00:00").await;
    let cfg = dir.path().join("storeflow.yaml");
    let cfg = cfg.to_str().unwrap();

    let listed = wait_for("the timer in `storeflow timers`", || {
        let out = stdout(&storeflow(&[
            "timers", "--json", "--order", "51", "-c", cfg,
        ]));
        (!out.is_empty()).then_some(out)
    })
    .await;
    let timer: serde_json::Value = serde_json::from_str(listed.lines().next().unwrap()).unwrap();
    assert_eq!(timer["status"], "pending");
    assert_eq!(timer["kind"], "wait");
    assert_eq!(timer["rule"], "paid-not-shipped");
    assert_eq!(timer["event_id"], event.as_str());
    let id = timer["id"].as_i64().unwrap().to_string();

    let health_url = daemon.url("/healthz");
    wait_for_async("/healthz to count the pending timer", || async {
        let h: serde_json::Value = reqwest::get(&health_url).await.ok()?.json().await.ok()?;
        (h["timers"]["pending"] == 1).then_some(())
    })
    .await;
    let metrics = reqwest::get(daemon.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("storeflow_timers_pending 1"), "{metrics}");

    let shown = stdout(&storeflow(&["events", "show", &event, "-c", cfg]));
    assert!(shown.contains("wait of paid-not-shipped due"), "{shown}");
    assert!(shown.contains("waiting 1h until"), "{shown}");

    let cancelled = storeflow(&["timers", "cancel", &id, "-c", cfg]);
    assert_eq!(stdout(&cancelled), format!("timer {id} cancelled\n"));
    let again = storeflow(&["timers", "cancel", &id, "-c", cfg]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("no pending timer with id"));
    let none = stdout(&storeflow(&["timers", "-c", cfg]));
    assert!(none.contains("no pending timers"), "{none}");

    selldone(&daemon.base, "SentOrder", 51, "2026-01-01 11:00:00").await;
    let timeline = wait_for("the shipment in the order's timeline", || {
        let out = stdout(&storeflow(&["orders", "show", "51", "-c", cfg]));
        out.contains("order.shipped").then_some(out)
    })
    .await;
    assert!(timeline.contains("order.paid"), "{timeline}");
    assert!(timeline.contains("fired: paid-not-shipped"), "{timeline}");
    assert!(
        timeline.contains("cancelled — cancelled by hand"),
        "{timeline}"
    );
    assert!(timeline.find("order.paid") < timeline.find("order.shipped"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_lists_timers_by_status_and_order() {
    let rules = WAIT_RULE.replace("for: 2s", "for: 1h");
    let slack = Receiver::answering(200, "ok").await;
    let d = Daemon::start_in(dir_with_rules("wait.yaml", &rules), &config(&slack)).await;
    let paid = selldone(&d.base, "PaymentOrder", 61, "2026-01-01 10:00:00").await;
    selldone(&d.base, "PaymentOrder", 62, "2026-01-01 10:00:00").await;
    let shipped = selldone(&d.base, "SentOrder", 62, "2026-01-01 10:00:01").await;
    d.trace(&shipped).await;
    let get = |q: &str| {
        let url = d.url(&format!("/api/timers{q}"));
        async move {
            let r = reqwest::get(url).await.unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let (status, pending) = get("").await;
    assert_eq!(status, 200);
    let items = pending["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{pending}");
    assert_eq!(items[0]["event_id"], paid.as_str());
    assert_eq!(items[0]["order_id"], "61");
    let (_, cancelled) = get("?status=cancelled&order=62").await;
    assert_eq!(cancelled["items"][0]["status"], "cancelled", "{cancelled}");
    let (_, all) = get("?status=all").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let (status, bad) = get("?status=late").await;
    assert_eq!(status, 400, "{bad}");
    d.stop().await;
}
