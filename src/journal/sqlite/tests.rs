use std::time::Duration;

use super::*;
use crate::event::{Incoming, OrderView, Timestamp};
use crate::journal::{Appended, NewJob, Processed};

fn incoming(key: &str, at: i64) -> Incoming {
    let body = bytes::Bytes::from_static(br#"{"event":"order:paid","data":{}}"#);
    Incoming {
        event: Event {
            id: Event::new_id(),
            source: "sellix".into(),
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

#[test]
fn appends_dedupes_within_window_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&dir.path().join("j.db")).unwrap();
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

#[test]
fn processing_is_recorded_once_with_trace_and_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&dir.path().join("j.db")).unwrap();
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
        .map(|e| e.id)
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
        trace: serde_json::json!({"rules": [{"rule": "r", "matched": true}]}),
        jobs: vec![job(0, None), job(1, Some("template error"))],
    };
    let out = store
        .write_batch(&[Write::Processed(p.clone())], window)
        .unwrap();
    assert_eq!(out, vec![Written::Processed(true)]);
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
        .map(|e| e.id)
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
