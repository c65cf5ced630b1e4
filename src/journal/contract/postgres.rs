//! What only the PostgreSQL journal has to show: replicas appending the same delivery at once,
//! versioned migrations, a database that goes away and comes back.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::journal::pg::cluster::{self, Cluster, PASSWORD};
use crate::journal::pg::schema::MIGRATIONS;
use crate::journal::pg::{PgStore, PgUrl};
use crate::journal::{Appended, EventStatus, Store, Unreadable, Write, Written};
use crate::model::event::{Event, Incoming, OrderView, Timestamp};

const W: Duration = Duration::from_secs(3600);

fn delivery(key: &str) -> Incoming {
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
            received_at: Timestamp::now(),
            payload: serde_json::from_slice(&body).unwrap(),
            order: Some(OrderView {
                id: format!("inv-{key}"),
                ..Default::default()
            }),
        },
        dedupe_key: key.into(),
        body,
    }
}

fn appended(w: Vec<Written>) -> Appended {
    match w.into_iter().next() {
        Some(Written::Appended(a)) => a,
        other => panic!("expected an append, got {other:?}"),
    }
}

/// Two replicas receive the same delivery (a platform retry through the load balancer) at the
/// same moment: one event, and the other is answered as its duplicate.
#[test]
fn replicas_appending_the_same_delivery_at_once_make_one_event() {
    let url = super::pg_url();
    const ROUNDS: usize = 25;
    let start = Arc::new(Barrier::new(2));
    let replicas: Vec<_> = (0..2)
        .map(|_| {
            let (url, start) = (url.clone(), start.clone());
            std::thread::spawn(move || {
                let mut store = PgStore::open(&url).unwrap();
                (0..ROUNDS)
                    .map(|i| {
                        let d = delivery(&format!("k{i}"));
                        start.wait();
                        let w = store.write_batch(&[Write::Append(Box::new(d))], W);
                        appended(w.unwrap())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let answers: Vec<Vec<Appended>> = replicas.into_iter().map(|r| r.join().unwrap()).collect();
    let store = PgStore::open(&url).unwrap();
    for (i, (a, b)) in answers[0].iter().zip(&answers[1]).enumerate() {
        assert_eq!(
            a.event_id, b.event_id,
            "round {i}: both answer the one event"
        );
        assert!(
            a.duplicate != b.duplicate,
            "round {i}: exactly one new: {a:?} {b:?}"
        );
    }
    assert_eq!(store.recent_events(1000).unwrap().len(), ROUNDS);
}

/// Replicas of a new version starting together: the migrations run once, under the lock.
#[test]
fn migrations_run_once_when_replicas_start_together() {
    let url = super::pg_url();
    let start = Arc::new(Barrier::new(4));
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let (url, start) = (url.clone(), start.clone());
            std::thread::spawn(move || {
                let store = PgStore::connect(&url).unwrap();
                start.wait();
                store.migrate().unwrap()
            })
        })
        .collect();
    let mut applied: Vec<_> = starts.into_iter().map(|s| s.join().unwrap()).collect();
    applied.sort_by_key(|a| std::cmp::Reverse(a.len()));
    assert_eq!(applied[0].len(), MIGRATIONS.len(), "{applied:?}");
    assert!(applied[1..].iter().all(Vec::is_empty), "{applied:?}");
    assert!(PgStore::connect(&url)
        .unwrap()
        .migrate()
        .unwrap()
        .is_empty());
}

/// A row that does not decode (edited by hand) is answered as unreadable on its own, as in the
/// SQLite journal, and can be quarantined.
#[test]
fn regression_one_corrupt_row_does_not_fail_reading_the_others_on_postgres() {
    let (name, url) = cluster::cluster().named_database();
    let mut store = PgStore::open(&PgUrl::parse(&url).unwrap()).unwrap();
    let (a, b) = (delivery("a"), delivery("b"));
    let writes = [
        Write::Append(Box::new(a.clone())),
        Write::Append(Box::new(b.clone())),
    ];
    store.write_batch(&writes, W).unwrap();
    let edit = format!(
        "UPDATE events SET order_view = '{{\"id\": 5}}' WHERE id = '{}'",
        a.event.id
    );
    cluster::cluster().psql(&name, &edit).unwrap();
    let read = store.unprocessed_events(10).unwrap();
    let bad = read[0].as_ref().unwrap_err();
    assert!(bad.reason.starts_with("order view: "), "{}", bad.reason);
    assert_eq!(read[1].as_ref().unwrap().id, b.event.id);
    let u = Unreadable {
        event_id: a.event.id.clone(),
        reason: bad.reason.clone(),
    };
    store.write_batch(&[Write::Quarantine(u)], W).unwrap();
    let q = store
        .events_with_status(EventStatus::Quarantined, 10)
        .unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(store.unprocessed_events(10).unwrap().len(), 1);
}

/// The database goes away: writes and reads fail with an error (intake answers 503) that does
/// not show the password, and the same store works again once the database is back, without
/// being reopened.
#[test]
fn regression_the_store_recovers_by_itself_when_the_database_comes_back() {
    let own = Cluster::private();
    own.psql("postgres", "CREATE DATABASE j").unwrap();
    let url = PgUrl::parse(&own.url("j")).unwrap();
    let mut store = PgStore::open(&url).unwrap();
    store
        .write_batch(&[Write::Append(Box::new(delivery("before")))], W)
        .unwrap();

    own.stop().unwrap();
    let failed = store
        .write_batch(&[Write::Append(Box::new(delivery("during")))], W)
        .unwrap_err();
    let read = store.recent_events(10).unwrap_err();
    let reopened = PgStore::open(&url).err().unwrap();
    for e in [&failed, &read, &reopened] {
        assert!(!e.to_string().contains(PASSWORD), "{e}");
    }
    assert!(reopened.to_string().contains("***"), "{reopened}");

    own.restart().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        match store.write_batch(&[Write::Append(Box::new(delivery("after")))], W) {
            Ok(w) => break w,
            Err(e) if Instant::now() < deadline => {
                eprintln!("not yet: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("the store did not recover: {e}"),
        }
    };
    assert!(!appended(after).duplicate);
    assert_eq!(store.recent_events(10).unwrap().len(), 2);
}

/// Two replicas' batches holding the same deliveries in opposite orders (a platform retrying
/// several webhooks through the load balancer): each key's row is locked in one order, so the
/// batches wait for each other instead of deadlocking (which would fail a whole batch: 503s).
#[test]
fn regression_batches_with_the_same_keys_in_opposite_orders_do_not_deadlock() {
    let url = super::pg_url();
    const KEYS: usize = 400;
    let start = Arc::new(Barrier::new(2));
    let replicas: Vec<_> = (0..2)
        .map(|r| {
            let (url, start) = (url.clone(), start.clone());
            std::thread::spawn(move || {
                let mut store = PgStore::open(&url).unwrap();
                (0..5)
                    .map(|round| {
                        let mut keys: Vec<String> =
                            (0..KEYS).map(|k| format!("r{round}-k{k}")).collect();
                        if r == 1 {
                            keys.reverse();
                        }
                        let batch: Vec<Write> = keys
                            .iter()
                            .map(|k| Write::Append(Box::new(delivery(k))))
                            .collect();
                        start.wait();
                        store.write_batch(&batch, W).map(|w| w.len())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for replica in replicas {
        for answer in replica.join().unwrap() {
            assert_eq!(answer.unwrap(), KEYS);
        }
    }
    let store = PgStore::open(&url).unwrap();
    assert_eq!(store.recent_events(5 * KEYS).unwrap().len(), 5 * KEYS);
}
