//! The journal side of timers: created with the event, cancelled by the same order's later
//! event, fired once.

use std::time::Duration;

use super::{contract, TestStore};
use crate::journal::{
    Firing, NewJob, NewTimer, Processed, Settle, TimerFilter, TimerKind, TimerStatus, TimerWrites,
    Write, Written,
};
use crate::model::event::{Event, Incoming, OrderView, Timestamp};

const W: Duration = Duration::from_secs(60);

pub(super) fn append(store: &mut TestStore, key: &str, kind: &str) -> String {
    let body = bytes::Bytes::from_static(br#"{"data":{}}"#);
    let event = Event {
        id: Event::new_id(),
        source: "sellix".into(),
        shop: "default".into(),
        secret: None,
        kind: kind.into(),
        topic: format!("sellix/{kind}"),
        canonical: None,
        received_at: Timestamp(1),
        payload: serde_json::json!({}).into(),
        order: Some(OrderView {
            id: "o-1".into(),
            ..Default::default()
        }),
    };
    let id = event.id.clone();
    let incoming = Incoming {
        event,
        dedupe_key: key.into(),
        body,
    };
    store
        .write_batch(&[Write::Append(Box::new(incoming))], W)
        .unwrap();
    id
}

pub(super) fn process(store: &mut TestStore, id: &str, timers: Vec<NewTimer>, cancels: &[&str]) {
    let p = Processed {
        event_id: id.into(),
        trace: serde_json::json!({}).into(),
        jobs: Vec::new(),
        state: Vec::new(),
        fired: Vec::new(),
        timers: TimerWrites {
            timers,
            cancels: cancels
                .iter()
                .map(|r| (r.to_string(), "by test".into()))
                .collect(),
            source: "sellix".into(),
            order_id: Some("o-1".into()),
        },
    };
    store.write_batch(&[Write::Processed(p)], W).unwrap();
}

pub(super) fn wait(rule: &str) -> NewTimer {
    NewTimer {
        rule: rule.into(),
        kind: TimerKind::Wait,
        action_index: -1,
        due_at: Timestamp(1_000),
        jobs: vec![NewJob {
            rule: rule.into(),
            action_index: 0,
            kind: "log".into(),
            params: serde_json::json!({"message": "late"}),
            error: None,
        }],
        max_late_ms: None,
        if_still: None,
        note: None,
        digest_max: None,
    }
}

fn a_timer_fires_once_and_a_later_event_of_the_order_cancels_only_its_rule(mut store: TestStore) {
    let paid = append(&mut store, "a", "order:paid");
    process(&mut store, &paid, vec![wait("late"), wait("other")], &[]);
    let shipped = append(&mut store, "b", "order:shipped");
    process(&mut store, &shipped, Vec::new(), &["late"]);

    let timers = store.timers(&TimerFilter::default()).unwrap();
    let of = |rule: &str| timers.iter().find(|t| t.rule == rule).unwrap().clone();
    assert_eq!(of("late").status, TimerStatus::Cancelled);
    assert_eq!(of("late").outcome.as_deref(), Some("by test"));
    let other = of("other");
    assert_eq!(other.status, TimerStatus::Pending);
    assert_eq!(store.due_timers(Timestamp(999), 10).unwrap().len(), 0);
    assert_eq!(store.due_timers(Timestamp(1_000), 10).unwrap().len(), 1);

    let fire = || {
        Write::FireTimers(vec![Firing {
            id: other.id,
            outcome: Settle::Fire(other.jobs.clone()),
        }])
    };
    assert_eq!(
        store.write_batch(&[fire()], W).unwrap(),
        vec![Written::Changed(1)]
    );
    // A second commit of the same decision (a retry after a crash) changes nothing.
    assert_eq!(
        store.write_batch(&[fire()], W).unwrap(),
        vec![Written::Changed(0)]
    );
    let jobs = store.jobs(Some(&paid), None, 10).unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].rule, "other");
    assert_eq!(store.timers_pending().unwrap(), 0);
    assert_eq!(store.next_timer_due().unwrap(), None);
}

fn a_due_wait_settled_as_cancelled_creates_no_jobs_and_keeps_the_reason(mut store: TestStore) {
    let paid = append(&mut store, "a", "order:paid");
    process(&mut store, &paid, vec![wait("late")], &[]);
    let id = store.timers(&TimerFilter::default()).unwrap()[0].id;
    let cancel = |reason: &str| {
        Write::FireTimers(vec![Firing {
            id,
            outcome: Settle::Cancel(reason.into()),
        }])
    };
    assert_eq!(
        store.write_batch(&[cancel("cancelled by x")], W).unwrap(),
        vec![Written::Changed(1)]
    );
    assert_eq!(
        store.write_batch(&[cancel("again")], W).unwrap(),
        vec![Written::Changed(0)]
    );
    let t = store.timers(&TimerFilter::default()).unwrap().remove(0);
    assert_eq!(t.status, TimerStatus::Cancelled);
    assert_eq!(t.outcome.as_deref(), Some("cancelled by x"));
    assert!(t.finished_at.is_some());
    assert!(store.jobs(Some(&paid), None, 10).unwrap().is_empty());
}

fn expired_limit_state_is_deleted_unless_written_again_since_it_was_read(mut store: TestStore) {
    let set = |k: &str| Write::State(k.into(), serde_json::json!([1]));
    store
        .write_batch(&[set("limit:r:a"), set("limit:r:b")], W)
        .unwrap();
    let read = store.state_keys("limit:").unwrap();
    // A run planned between the worker's read and its delete rewrites `b`.
    std::thread::sleep(Duration::from_millis(5));
    store.write_batch(&[set("limit:r:b")], W).unwrap();
    assert_eq!(
        store
            .write_batch(&[Write::DeleteStateUnchanged(read)], W)
            .unwrap(),
        vec![Written::Changed(1)]
    );
    let left: Vec<String> = store
        .state_keys("limit:")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(left, vec!["limit:r:b"]);
}

fn retention_keeps_an_event_with_a_pending_timer_and_prunes_finished_timers(mut store: TestStore) {
    let paid = append(&mut store, "a", "order:paid");
    process(&mut store, &paid, vec![wait("late")], &[]);
    let count = |store: &TestStore| store.timers(&TimerFilter::default()).unwrap().len();
    let later = Timestamp(Timestamp::now().millis() + 3_600_000);
    // The event is older than the cut, but its wait is still pending: both stay.
    store
        .write_batch(&[Write::Prune { before: later }], W)
        .unwrap();
    assert!(store.event(&paid).unwrap().is_some());
    assert_eq!(store.timers_pending().unwrap(), 1);

    // Once the wait is cancelled (finished), the next prune takes the timer and its event.
    let shipped = append(&mut store, "b", "order:shipped");
    process(&mut store, &shipped, Vec::new(), &["late"]);
    assert_eq!(count(&store), 1);
    store
        .write_batch(&[Write::Prune { before: later }], W)
        .unwrap();
    assert_eq!(count(&store), 0);
    assert!(store.event(&paid).unwrap().is_none());
}

contract!(
    a_timer_fires_once_and_a_later_event_of_the_order_cancels_only_its_rule,
    a_due_wait_settled_as_cancelled_creates_no_jobs_and_keeps_the_reason,
    expired_limit_state_is_deleted_unless_written_again_since_it_was_read,
    retention_keeps_an_event_with_a_pending_timer_and_prunes_finished_timers,
);
