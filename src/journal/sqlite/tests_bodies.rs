//! Write-once events (migration 8, `event_bodies`), counters instead of a scan (migration 9,
//! `secret_counts`), and the exactness the pipeline's in-memory hand-off relies on.

use std::time::Duration;

use rusqlite::Connection;

use super::*;
use crate::journal::contract::bodies::fixture as incoming;

#[test]
fn an_event_body_is_written_once_in_event_bodies() {
    // That it reads back as the same event is a contract test (contract/bodies.rs); here, how
    // SQLite stores it.
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&dir.path().join("j.db")).unwrap();
    let inc = incoming("abc-1");
    store
        .write_batch(&[Write::Append(Box::new(inc.clone()))], Duration::ZERO)
        .unwrap();
    // Written once: the body is in event_bodies, byte for byte; the event row keeps none.
    let (row, body): (Vec<u8>, Vec<u8>) = store
        .conn
        .query_row(
            "SELECT e.payload, b.payload FROM events e JOIN event_bodies b ON b.seq = e.seq",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(row.is_empty());
    assert_eq!(body, inc.body.to_vec());
}

#[test]
fn regression_a_journal_from_before_event_bodies_reads_prunes_and_counts_its_old_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("storeflow.db");
    let old = incoming("old-1");
    {
        let conn = Connection::open(&path).unwrap();
        let before = MIGRATIONS
            .iter()
            .position(|m| m.contains("CREATE TABLE event_bodies"))
            .unwrap();
        for sql in &MIGRATIONS[..before] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", before).unwrap();
        let e = &old.event;
        conn.execute(
            "INSERT INTO events (id, source, kind, topic, canonical, received_at, order_id,
                                 dedupe_key, payload, order_view, shop, secret)
             VALUES (?1, 'sellix', 'order:paid', 'sellix/order:paid', 'order.paid', ?2, ?3,
                     ?4, ?5, ?6, 'default', 'current')",
            rusqlite::params![
                e.id,
                e.received_at.millis(),
                "old-1",
                old.dedupe_key,
                &old.body[..],
                serde_json::to_string(&e.order).unwrap(),
            ],
        )
        .unwrap();
    }
    let mut store = SqliteStore::open(&path).unwrap();
    let counted = |store: &SqliteStore| {
        let c = store.secret_counts().unwrap();
        assert_eq!(c.len(), 1, "{c:?}");
        (c[0].secret.clone(), c[0].events)
    };
    assert_eq!(
        counted(&store),
        ("current".into(), 1),
        "seeded by the migration"
    );
    let new = incoming("new-1");
    store
        .write_batch(&[Write::Append(Box::new(new.clone()))], Duration::ZERO)
        .unwrap();
    assert_eq!(counted(&store), ("current".into(), 2), "counted at append");
    let pending: Vec<Event> = store
        .unprocessed_events(10)
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(pending, vec![old.event.clone(), new.event.clone()]);
    // Processed and pruned: the old event's row and the new one's body both go.
    let done = |id: &str| {
        Write::Processed(crate::journal::Processed {
            event_id: id.into(),
            trace: serde_json::json!({}).into(),
            jobs: vec![],
            state: vec![],
            fired: vec![],
            timers: Default::default(),
        })
    };
    store
        .write_batch(&[done(&old.event.id), done(&new.event.id)], Duration::ZERO)
        .unwrap();
    let pruned = store
        .write_batch(
            &[Write::Prune {
                before: Timestamp(i64::MAX),
            }],
            Duration::ZERO,
        )
        .unwrap();
    assert_eq!(pruned, vec![Written::Changed(2)]);
    let bodies: i64 = store
        .conn
        .query_row("SELECT COUNT(*) FROM event_bodies", [], |r| r.get(0))
        .unwrap();
    assert_eq!(bodies, 0, "a pruned event leaves no body behind");
}
