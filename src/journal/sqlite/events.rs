//! The `events` table: append with dedupe, and reads.

use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::event::{Event, Incoming, OrderView, Timestamp};
use crate::journal::{Appended, EventSummary, JournalError};

pub(super) fn append(
    tx: &Connection,
    inc: &Incoming,
    dedupe_window: Duration,
) -> Result<Appended, JournalError> {
    let e = &inc.event;
    let since = e.received_at.millis() - dedupe_window.as_millis() as i64;
    let earlier: Option<String> = tx
        .prepare_cached(
            "SELECT id FROM events WHERE source = ?1 AND dedupe_key = ?2 AND received_at >= ?3
             ORDER BY seq LIMIT 1",
        )?
        .query_row(params![e.source, inc.dedupe_key, since], |r| r.get(0))
        .optional()?;
    if let Some(event_id) = earlier {
        return Ok(Appended {
            event_id,
            duplicate: true,
        });
    }
    let order_view = e
        .order
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|err| JournalError::Corrupt {
            id: e.id.clone(),
            reason: err.to_string(),
        })?;
    tx.prepare_cached(
        "INSERT INTO events (id, source, kind, topic, canonical, received_at, order_id,
                             dedupe_key, payload, order_view)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        e.id,
        e.source,
        e.kind,
        e.topic,
        e.canonical,
        e.received_at.millis(),
        e.order.as_ref().map(|o| o.id.as_str()),
        inc.dedupe_key,
        &inc.body[..],
        order_view,
    ])?;
    Ok(Appended {
        event_id: e.id.clone(),
        duplicate: false,
    })
}

pub(super) fn recent(conn: &Connection, limit: usize) -> Result<Vec<EventSummary>, JournalError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, source, kind, topic, canonical, received_at, order_id
         FROM events ORDER BY seq DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok(EventSummary {
            id: r.get(0)?,
            source: r.get(1)?,
            kind: r.get(2)?,
            topic: r.get(3)?,
            canonical: r.get(4)?,
            received_at: Timestamp(r.get(5)?),
            order_id: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

const EVENT_COLUMNS: &str = "id, source, kind, topic, canonical, received_at, payload, order_view";

pub(super) fn one(conn: &Connection, id: &str) -> Result<Option<Event>, JournalError> {
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1");
    let raw = conn
        .prepare_cached(&sql)?
        .query_row([id], raw_event)
        .optional()?;
    raw.map(RawEvent::decode).transpose()
}

pub(super) fn unprocessed(conn: &Connection, limit: usize) -> Result<Vec<Event>, JournalError> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE processed_at IS NULL ORDER BY seq LIMIT ?1"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let raws = stmt
        .query_map([limit as i64], raw_event)?
        .collect::<Result<Vec<_>, _>>()?;
    raws.into_iter().map(RawEvent::decode).collect()
}

/// A row before its JSON columns are parsed (parsing errors are not SQLite errors).
struct RawEvent {
    event: Event,
    payload: Vec<u8>,
    order_view: Option<String>,
}

fn raw_event(r: &Row<'_>) -> rusqlite::Result<RawEvent> {
    Ok(RawEvent {
        event: Event {
            id: r.get(0)?,
            source: r.get(1)?,
            kind: r.get(2)?,
            topic: r.get(3)?,
            canonical: r.get(4)?,
            received_at: Timestamp(r.get(5)?),
            payload: serde_json::Value::Null,
            order: None,
        },
        payload: r.get(6)?,
        order_view: r.get(7)?,
    })
}

impl RawEvent {
    fn decode(self) -> Result<Event, JournalError> {
        let RawEvent {
            mut event,
            payload,
            order_view,
        } = self;
        let corrupt = |reason: String| JournalError::Corrupt {
            id: event.id.clone(),
            reason,
        };
        event.payload = serde_json::from_slice(&payload).map_err(|e| corrupt(e.to_string()))?;
        event.order = order_view
            .map(|o| serde_json::from_str::<OrderView>(&o))
            .transpose()
            .map_err(|e| corrupt(e.to_string()))?;
        Ok(event)
    }
}

/// Retention: deletes old events that need nothing more (processed, no job left, no flag), with
/// their traces and finished jobs (done, dismissed or replanned). Dead letters and flagged orders
/// keep their events.
pub(super) fn prune(tx: &Connection, before: Timestamp) -> Result<usize, JournalError> {
    let old = "SELECT id FROM events WHERE received_at < ?1 AND processed_at IS NOT NULL";
    tx.execute(
        &format!(
            "DELETE FROM attempts WHERE job_id IN
               (SELECT id FROM jobs WHERE status IN ('done', 'dismissed', 'replanned') AND event_id IN ({old}))"
        ),
        [before.millis()],
    )?;
    tx.execute(
        &format!("DELETE FROM jobs WHERE status IN ('done', 'dismissed', 'replanned') AND event_id IN ({old})"),
        [before.millis()],
    )?;
    let unneeded = format!(
        "{old} AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.event_id = events.id)
               AND NOT EXISTS (SELECT 1 FROM flags f WHERE f.event_id = events.id)"
    );
    tx.execute(
        &format!("DELETE FROM traces WHERE event_id IN ({unneeded})"),
        [before.millis()],
    )?;
    Ok(tx.execute(
        &format!("DELETE FROM events WHERE id IN ({unneeded})"),
        [before.millis()],
    )?)
}

/// Which of `ids` are still in the journal.
pub(super) fn existing(conn: &Connection, ids: &[String]) -> Result<Vec<String>, JournalError> {
    let mut stmt = conn.prepare_cached("SELECT 1 FROM events WHERE id = ?1")?;
    let mut found = Vec::new();
    for id in ids {
        if stmt.exists([id])? {
            found.push(id.clone());
        }
    }
    Ok(found)
}
