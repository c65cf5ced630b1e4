//! Appends, dedupe, processing, attempts, flags and retention.

use std::time::Duration;

use super::{contract, TestStore};
use crate::journal::{Appended, FlagFilter, JobStatus, NewJob, Processed, Write, Written};
use crate::model::event::Event;
use crate::model::event::{Incoming, OrderView, Timestamp};

fn incoming(key: &str, at: i64) -> Incoming {
    let body = bytes::Bytes::from_static(br#"{"event":"order:paid","data":{}}"#);
    Incoming {
        event: Event {
            id: Event::new_id(),
            source: "sellix".into(),
            shop: "default".into(),
            secret: None,
            kind: "order:paid".into(),
            topic: "sellix/order:paid".into(),
            canonical: Some("order.paid".into()),
            received_at: Timestamp(at),
            payload: serde_json::from_slice(&body).unwrap(),
            order: Some(OrderView {
                id: "inv-1".into(),
                ..Default::default()
            }),
        },
        dedupe_key: key.into(),
        body,
    }
}

fn appended(w: &Written) -> Appended {
    match w {
        Written::Appended(a) => a.clone(),
        other => panic!("expected an append, got {other:?}"),
    }
}

fn appends_dedupes_within_window_and_reads_back(mut store: TestStore) {
    let window = Duration::from_secs(60);
    let a = incoming("k1", 1_000_000);
    let b = incoming("k1", 1_000_000 + 59_000); // same delivery, inside the window
    let c = incoming("k1", 1_000_000 + 120_000); // outside the window: a new event
    let batch = [
        Write::Append(Box::new(a.clone())),
        Write::Append(Box::new(b)),
        Write::Append(Box::new(c.clone())),
    ];
    let out = store.write_batch(&batch, window).unwrap();
    assert_eq!(
        appended(&out[0]),
        Appended {
            event_id: a.event.id.clone(),
            duplicate: false
        }
    );
    assert_eq!(
        appended(&out[1]),
        Appended {
            event_id: a.event.id.clone(),
            duplicate: true
        }
    );
    assert_eq!(
        appended(&out[2]),
        Appended {
            event_id: c.event.id.clone(),
            duplicate: false
        }
    );

    let recent = store.recent_events(10).unwrap();
    assert_eq!(recent.len(), 2);
    assert_eq!(recent[0].id, c.event.id, "newest first");
    assert_eq!(recent[0].order_id.as_deref(), Some("inv-1"));
    assert_eq!(store.event(&a.event.id).unwrap().unwrap(), a.event);
    assert_eq!(store.event("evt_missing").unwrap(), None);
}

fn processing_is_recorded_once_with_trace_and_jobs(mut store: TestStore) {
    let window = Duration::from_secs(60);
    let (a, b) = (incoming("a", 1), incoming("b", 2));
    store
        .write_batch(
            &[
                Write::Append(Box::new(a.clone())),
                Write::Append(Box::new(b.clone())),
            ],
            window,
        )
        .unwrap();
    let pending: Vec<String> = store
        .unprocessed_events(10)
        .unwrap()
        .into_iter()
        .map(|e| e.unwrap().id)
        .collect();
    assert_eq!(
        pending,
        vec![a.event.id.clone(), b.event.id.clone()],
        "oldest first"
    );

    let job = |i: usize, error: Option<&str>| NewJob {
        rule: "r".into(),
        action_index: i,
        kind: "log".into(),
        params: serde_json::json!({"message": format!("m{i}")}),
        error: error.map(str::to_string),
    };
    let p = Processed {
        event_id: a.event.id.clone(),
        trace: serde_json::json!({"rules": [{"rule": "r", "matched": true}]}).into(),
        jobs: vec![job(0, None), job(1, Some("template error"))],
        state: vec![("orders:buyer@example.com".into(), serde_json::json!(3))],
        fired: vec!["r".into()],
        timers: Default::default(),
    };
    let out = store
        .write_batch(&[Write::Processed(p.clone())], window)
        .unwrap();
    assert_eq!(out, vec![Written::Processed(true)]);
    assert_eq!(
        store.state("orders:buyer@example.com").unwrap(),
        Some(serde_json::json!(3))
    );
    assert_eq!(store.state("nope").unwrap(), None);
    // A second commit of the same event (a retry after a crash) writes nothing.
    let again = Processed {
        jobs: vec![job(2, None)],
        ..p
    };
    assert_eq!(
        store
            .write_batch(&[Write::Processed(again)], window)
            .unwrap(),
        vec![Written::Processed(false)]
    );

    let pending: Vec<String> = store
        .unprocessed_events(10)
        .unwrap()
        .into_iter()
        .map(|e| e.unwrap().id)
        .collect();
    assert_eq!(pending, vec![b.event.id.clone()]);
    assert_eq!(
        store.trace(&a.event.id).unwrap().unwrap()["rules"][0]["rule"],
        "r"
    );
    let jobs = store.jobs(Some(&a.event.id), None, 10).unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!(
        (jobs[1].status, jobs[1].params["message"].as_str()),
        (JobStatus::Pending, Some("m0"))
    );
    assert_eq!(
        (jobs[0].status, jobs[0].last_error.as_deref()),
        (JobStatus::Dead, Some("template error"))
    );
    assert_eq!(
        store.jobs(None, Some(JobStatus::Dead), 10).unwrap().len(),
        1
    );
}

fn attempts_move_jobs_on_and_dead_letters_can_be_requeued(mut store: TestStore) {
    use crate::journal::{AttemptOutcome, Flag, NextStep, Requeue};
    let w = Duration::from_secs(60);
    let a = incoming("a", 1);
    store
        .write_batch(&[Write::Append(Box::new(a.clone()))], w)
        .unwrap();
    let job = |i| NewJob {
        rule: "r".into(),
        action_index: i,
        kind: "http".into(),
        params: serde_json::json!({}),
        error: None,
    };
    let p = Processed {
        event_id: a.event.id.clone(),
        trace: serde_json::json!({}).into(),
        jobs: vec![job(0), job(1)],
        state: Vec::new(),
        fired: Vec::new(),
        timers: Default::default(),
    };
    store.write_batch(&[Write::Processed(p)], w).unwrap();
    let due = store.due_jobs(Timestamp::now(), 10).unwrap();
    assert_eq!(due.len(), 2);
    let (first, second) = (due[0].id, due[1].id);

    let attempt = |job_id, attempt, next, error: Option<&str>| {
        Write::Attempt(AttemptOutcome {
            job_id,
            attempt,
            started_at: Timestamp(10),
            finished_at: Timestamp(20),
            error: error.map(str::to_string),
            next,
        })
    };
    let later = Timestamp(Timestamp::now().millis() + 60_000);
    let out = store
        .write_batch(
            &[
                attempt(first, 1, NextStep::Retry(later), Some("HTTP 500")),
                attempt(second, 1, NextStep::Dead, Some("HTTP 400")),
            ],
            w,
        )
        .unwrap();
    assert_eq!(out, vec![Written::Changed(1), Written::Changed(1)]);
    assert!(
        store.due_jobs(Timestamp::now(), 10).unwrap().is_empty(),
        "retry is not due yet"
    );
    assert_eq!(store.next_due().unwrap(), Some(later));
    let again = attempt(first, 1, NextStep::Retry(later), Some("HTTP 500"));
    assert_eq!(
        store.write_batch(&[again], w).unwrap(),
        vec![Written::Changed(0)],
        "an attempt recorded twice counts once"
    );
    store
        .write_batch(&[attempt(first, 2, NextStep::Done, None)], w)
        .unwrap();
    let done = store.jobs(None, Some(JobStatus::Done), 10).unwrap();
    assert_eq!((done.len(), done[0].attempts), (1, 2));
    let history = store.attempts(first).unwrap();
    assert_eq!(
        history
            .iter()
            .map(|a| a.outcome.as_str())
            .collect::<Vec<_>>(),
        vec!["retry", "done"]
    );
    assert_eq!(history[0].error.as_deref(), Some("HTTP 500"));

    // A dead letter comes back, due now, with a fresh schedule.
    assert_eq!(
        store
            .write_batch(&[Write::Requeue(Requeue::AllDead)], w)
            .unwrap(),
        vec![Written::Changed(1)]
    );
    let due = store.due_jobs(Timestamp::now(), 10).unwrap();
    assert_eq!((due.len(), due[0].id, due[0].attempts), (1, second, 0));

    // Flags are unique per (source, order, kind, rule).
    let flag = Flag {
        id: 0,
        source: "sellix".into(),
        order_id: "inv-1".into(),
        kind: "dispute".into(),
        note: "n".into(),
        event_id: a.event.id.clone(),
        rule: "r".into(),
        created_at: Timestamp(5),
        resolved_at: None,
    };
    let out = store
        .write_batch(&[Write::Flag(flag.clone()), Write::Flag(flag.clone())], w)
        .unwrap();
    assert_eq!(out, vec![Written::Changed(1), Written::Changed(0)]);
    let stored = store.flags(Some("dispute"), FlagFilter::Open, 10).unwrap();
    assert_eq!(
        stored,
        vec![Flag {
            id: stored[0].id,
            ..flag
        }]
    );
    assert!(store
        .flags(Some("fraud"), FlagFilter::All, 10)
        .unwrap()
        .is_empty());
}

fn retention_prunes_finished_history_but_keeps_dead_letters_and_flags(mut store: TestStore) {
    use crate::journal::{AttemptOutcome, NextStep};
    let w = Duration::from_secs(60);
    let (done, dead, fresh, held) = (
        incoming("1", 1_000),
        incoming("2", 1_000),
        incoming("3", 9_000),
        incoming("4", 1_000),
    );
    for e in [&done, &dead, &fresh, &held] {
        store
            .write_batch(&[Write::Append(Box::new(e.clone()))], w)
            .unwrap();
    }
    for e in [&done, &dead, &fresh] {
        let job = NewJob {
            rule: "r".into(),
            action_index: 0,
            kind: "log".into(),
            params: serde_json::json!({}),
            error: None,
        };
        let p = Processed {
            event_id: e.event.id.clone(),
            trace: serde_json::json!({}).into(),
            jobs: vec![job],
            state: Vec::new(),
            fired: Vec::new(),
            timers: Default::default(),
        };
        store.write_batch(&[Write::Processed(p)], w).unwrap();
    }
    for (e, next) in [
        (&done, NextStep::Done),
        (&dead, NextStep::Dead),
        (&fresh, NextStep::Done),
    ] {
        let id = store.jobs(Some(&e.event.id), None, 1).unwrap()[0].id;
        let a = AttemptOutcome {
            job_id: id,
            attempt: 1,
            started_at: Timestamp(1),
            finished_at: Timestamp(2),
            error: None,
            next,
        };
        store.write_batch(&[Write::Attempt(a)], w).unwrap();
    }
    let out = store
        .write_batch(
            &[Write::Prune {
                before: Timestamp(5_000),
            }],
            w,
        )
        .unwrap();
    assert_eq!(out, vec![Written::Changed(1)]);
    assert!(
        store.event(&done.event.id).unwrap().is_none(),
        "old and finished: pruned"
    );
    assert!(store.trace(&done.event.id).unwrap().is_none());
    assert!(
        store.event(&dead.event.id).unwrap().is_some(),
        "dead letter kept"
    );
    assert!(
        store.event(&fresh.event.id).unwrap().is_some(),
        "inside retention"
    );
    assert!(
        store.event(&held.event.id).unwrap().is_some(),
        "never processed: kept"
    );
}

contract!(
    appends_dedupes_within_window_and_reads_back,
    processing_is_recorded_once_with_trace_and_jobs,
    attempts_move_jobs_on_and_dead_letters_can_be_requeued,
    retention_prunes_finished_history_but_keeps_dead_letters_and_flags,
);
