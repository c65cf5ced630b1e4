//! The `quarantine` table: events the pipeline could not read back or plan, set aside with the
//! reason so that they block no other event, until someone re-queues them.

use rusqlite::{params, Connection};

use crate::journal::{JournalError, Release, Unreadable};
use crate::model::event::Timestamp;

/// Quarantines an unprocessed event: records the reason, stores it as the event's trace (so
/// `events show` explains it) and marks the event processed, so the pipeline moves past it.
/// Returns 0 (and writes nothing) when the event is not waiting for the pipeline.
pub(super) fn add(tx: &Connection, u: &Unreadable) -> Result<usize, JournalError> {
    let now = Timestamp::now().millis();
    let marked = tx
        .prepare_cached(
            "UPDATE events SET processed_at = ?2 WHERE id = ?1 AND processed_at IS NULL",
        )?
        .execute(params![u.event_id, now])?;
    if marked == 0 {
        return Ok(0);
    }
    tx.prepare_cached(
        "INSERT OR REPLACE INTO quarantine (event_id, reason, quarantined_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![u.event_id, u.reason, now])?;
    let trace = serde_json::json!({ "quarantined": { "reason": u.reason } });
    tx.prepare_cached(
        "INSERT OR REPLACE INTO traces (event_id, trace, created_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![u.event_id, trace.to_string(), now])?;
    Ok(1)
}

/// Hands quarantined events back to the pipeline: unprocessed again, quarantine trace removed.
/// Returns how many were released.
pub(super) fn release(tx: &Connection, which: &Release) -> Result<usize, JournalError> {
    let ids: Vec<String> = match which {
        Release::One(id) => tx
            .prepare_cached("SELECT event_id FROM quarantine WHERE event_id = ?1")?
            .query_map([id], |r| r.get(0))?
            .collect::<Result<_, _>>()?,
        Release::AllQuarantined => tx
            .prepare_cached("SELECT event_id FROM quarantine")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?,
    };
    for id in &ids {
        tx.prepare_cached("DELETE FROM quarantine WHERE event_id = ?1")?
            .execute([id])?;
        tx.prepare_cached("DELETE FROM traces WHERE event_id = ?1")?
            .execute([id])?;
        tx.prepare_cached("UPDATE events SET processed_at = NULL WHERE id = ?1")?
            .execute([id])?;
    }
    Ok(ids.len())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::journal::{EventStatus, Release, SqliteStore, Store, Unreadable, Write};
    use crate::model::event::{Event, Incoming, Timestamp};

    fn incoming(key: &str) -> Incoming {
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
                order: Some(Default::default()),
            },
            dedupe_key: key.into(),
            body,
        }
    }

    #[test]
    fn regression_one_corrupt_row_does_not_fail_reading_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let mut store = SqliteStore::open(&path).unwrap();
        let w = Duration::from_secs(60);
        let (a, b) = (incoming("a"), incoming("b"));
        let writes = [
            Write::Append(Box::new(a.clone())),
            Write::Append(Box::new(b.clone())),
        ];
        store.write_batch(&writes, w).unwrap();
        let edit = rusqlite::Connection::open(&path).unwrap();
        edit.execute(
            "UPDATE events SET order_view = '{\"id\": 5}' WHERE id = ?1",
            [&a.event.id],
        )
        .unwrap();

        let read = store.unprocessed_events(10).unwrap();
        let bad = read[0].as_ref().unwrap_err();
        assert_eq!(bad.event_id, a.event.id);
        assert!(bad.reason.starts_with("order view: "), "{}", bad.reason);
        assert_eq!(read[1].as_ref().unwrap().id, b.event.id);

        let u = Unreadable {
            event_id: a.event.id.clone(),
            reason: "order view: broken".into(),
        };
        store.write_batch(&[Write::Quarantine(u)], w).unwrap();
        let left = store.unprocessed_events(10).unwrap();
        assert_eq!(left.len(), 1, "the quarantined event left the queue");
        let listed = store
            .events_with_status(EventStatus::Quarantined, 10)
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].reason.as_deref(), Some("order view: broken"));
        assert_eq!(
            store.trace(&a.event.id).unwrap().unwrap()["quarantined"]["reason"],
            "order view: broken"
        );

        let prune = Write::Prune {
            before: Timestamp(i64::MAX),
        };
        store.write_batch(&[prune], w).unwrap();
        assert!(store.event(&a.event.id).is_err(), "kept, still unreadable");

        let release = Write::Release(Release::One(a.event.id.clone()));
        store.write_batch(&[release], w).unwrap();
        assert_eq!(store.unprocessed_events(10).unwrap().len(), 2);
        assert_eq!(store.trace(&a.event.id).unwrap(), None);
        let q = store.events_with_status(EventStatus::Quarantined, 10);
        assert!(q.unwrap().is_empty());
    }
}
