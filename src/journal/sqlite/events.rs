//! The `events` table: append with dedupe, and reads.

use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::journal::{Appended, EventStatus, EventSummary, JournalError, SecretCount, Unreadable};
use crate::model::event::{Event, Incoming, OrderView, Timestamp};

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
                             dedupe_key, payload, order_view, shop, secret)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, X'', ?9, ?10, ?11)",
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
        order_view,
        e.shop,
        e.secret,
    ])?;
    tx.prepare_cached("INSERT INTO event_bodies (seq, payload) VALUES (?1, ?2)")?
        .execute(params![tx.last_insert_rowid(), &inc.body[..]])?;
    tx.prepare_cached(
        "INSERT INTO secret_counts (source, shop, secret, events, last)
         VALUES (?1, ?2, COALESCE(?3, 'unknown'), 1, ?4)
         ON CONFLICT (source, shop, secret)
         DO UPDATE SET events = events + 1, last = MAX(last, excluded.last)",
    )?
    .execute(params![e.source, e.shop, e.secret, e.received_at.millis()])?;
    Ok(Appended {
        event_id: e.id.clone(),
        duplicate: false,
    })
}

/// The newest events first, optionally only those in one status and of one shop.
pub(super) fn recent(
    conn: &Connection,
    status: Option<EventStatus>,
    shop: Option<&str>,
    limit: usize,
) -> Result<Vec<EventSummary>, JournalError> {
    let filter = match status {
        None => "1",
        Some(EventStatus::Unprocessed) => "e.processed_at IS NULL",
        Some(EventStatus::Processed) => "e.processed_at IS NOT NULL AND q.event_id IS NULL",
        Some(EventStatus::Quarantined) => "q.event_id IS NOT NULL",
    };
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS}
         FROM events e LEFT JOIN quarantine q ON q.event_id = e.id
         WHERE {filter} AND (?2 IS NULL OR e.shop = ?2) ORDER BY e.seq DESC LIMIT ?1"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![limit as i64, shop], |r| summary(r, 0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The columns [`summary`] reads, in order (`e`: events, `q`: quarantine joined on the id).
pub(super) const SUMMARY_COLUMNS: &str = "e.id, e.source, e.kind, e.topic, e.canonical, \
     e.received_at, e.order_id, e.processed_at IS NOT NULL, q.reason, e.shop";

/// An [`EventSummary`] from [`SUMMARY_COLUMNS`] selected from column `at` on.
pub(super) fn summary(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<EventSummary> {
    let processed: bool = r.get(at + 7)?;
    let reason: Option<String> = r.get(at + 8)?;
    let status = match (&reason, processed) {
        (Some(_), _) => EventStatus::Quarantined,
        (None, true) => EventStatus::Processed,
        (None, false) => EventStatus::Unprocessed,
    };
    Ok(EventSummary {
        id: r.get(at)?,
        source: r.get(at + 1)?,
        kind: r.get(at + 2)?,
        topic: r.get(at + 3)?,
        canonical: r.get(at + 4)?,
        received_at: Timestamp(r.get(at + 5)?),
        order_id: r.get(at + 6)?,
        shop: r.get(at + 9)?,
        status,
        reason,
    })
}

/// Events per source, shop and matched secret (`unknown` for events journaled before the
/// secret was recorded), counted as they were appended (retention does not lower them).
pub(super) fn secret_counts(conn: &Connection) -> Result<Vec<SecretCount>, JournalError> {
    let mut stmt = conn.prepare_cached(
        "SELECT source, shop, secret, events, last FROM secret_counts ORDER BY 1, 2, 3",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(SecretCount {
            source: r.get(0)?,
            shop: r.get(1)?,
            secret: r.get(2)?,
            events: r.get::<_, i64>(3)?.max(0) as u64,
            last: Timestamp(r.get(4)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// An event's columns, its body from `event_bodies` (or, written before that table, its row).
const EVENT_COLUMNS: &str = "e.id, e.source, e.kind, e.topic, e.canonical, e.received_at, \
     COALESCE(b.payload, e.payload), e.order_view, e.shop, e.secret \
     FROM events e LEFT JOIN event_bodies b ON b.seq = e.seq";

pub(super) fn one(conn: &Connection, id: &str) -> Result<Option<Event>, JournalError> {
    let sql = format!("SELECT {EVENT_COLUMNS} WHERE e.id = ?1");
    let raw = conn
        .prepare_cached(&sql)?
        .query_row([id], |r| Ok(raw_event(r)))
        .optional()?;
    raw.map(|raw| {
        raw.and_then(RawEvent::decode)
            .map_err(|u| JournalError::Corrupt {
                id: u.event_id,
                reason: u.reason,
            })
    })
    .transpose()
}

/// Unprocessed events, oldest first, each read on its own: a row that cannot be read back is
/// answered as [`Unreadable`] (for the pipeline to quarantine) and fails no other row.
pub(super) fn unprocessed(
    conn: &Connection,
    limit: usize,
) -> Result<Vec<Result<Event, Unreadable>>, JournalError> {
    let sql =
        format!("SELECT {EVENT_COLUMNS} WHERE e.processed_at IS NULL ORDER BY e.seq LIMIT ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([limit as i64], |r| Ok(raw_event(r)))?;
    rows.map(|row| Ok(row?.and_then(RawEvent::decode)))
        .collect()
}

/// The ids of the unprocessed events, oldest first (the index and the start of each row only).
pub(super) fn unprocessed_ids(
    conn: &Connection,
    limit: usize,
) -> Result<Vec<String>, JournalError> {
    let mut stmt = conn
        .prepare_cached("SELECT id FROM events WHERE processed_at IS NULL ORDER BY seq LIMIT ?1")?;
    let rows = stmt.query_map([limit as i64], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A row before its JSON columns are parsed (parsing errors are not SQLite errors).
struct RawEvent {
    event: Event,
    payload: Vec<u8>,
    order_view: Option<String>,
}

/// Reads one row; a column of the wrong type (a row edited by hand, say) is an [`Unreadable`]
/// for this row only, not an error of the query.
fn raw_event(r: &Row<'_>) -> Result<RawEvent, Unreadable> {
    let id: String = r.get(0).map_err(|e| Unreadable {
        event_id: String::new(),
        reason: format!("unreadable id: {e}"),
    })?;
    let unreadable = |e: rusqlite::Error| Unreadable {
        event_id: id.clone(),
        reason: e.to_string(),
    };
    let event = Event {
        id: id.clone(),
        source: r.get(1).map_err(unreadable)?,
        kind: r.get(2).map_err(unreadable)?,
        topic: r.get(3).map_err(unreadable)?,
        canonical: r.get(4).map_err(unreadable)?,
        received_at: Timestamp(r.get(5).map_err(unreadable)?),
        payload: serde_json::Value::Null.into(),
        order: None,
        shop: r.get(8).map_err(unreadable)?,
        secret: r.get(9).map_err(unreadable)?,
    };
    // Bodies are stored as BLOBs; a TEXT payload holds the same bytes.
    let payload = r.get_ref(6).map_err(unreadable)?;
    let payload = payload
        .as_bytes()
        .map_err(|e| Unreadable {
            event_id: id.clone(),
            reason: format!("payload: {e}"),
        })?
        .to_vec();
    Ok(RawEvent {
        event,
        payload,
        order_view: r.get(7).map_err(unreadable)?,
    })
}

impl RawEvent {
    fn decode(self) -> Result<Event, Unreadable> {
        let RawEvent {
            mut event,
            payload,
            order_view,
        } = self;
        let unreadable = |what: &str, e: serde_json::Error| Unreadable {
            event_id: event.id.clone(),
            reason: format!("{what}: {e}"),
        };
        event.payload = serde_json::from_slice(&payload).map_err(|e| unreadable("payload", e))?;
        event.order = order_view
            .map(|o| serde_json::from_str::<OrderView>(&o))
            .transpose()
            .map_err(|e| unreadable("order view", e))?;
        Ok(event)
    }
}

/// Retention: deletes old events that need nothing more (processed, no job left, no flag), with
/// their traces and finished jobs (done, dismissed or replanned). Dead letters, flagged orders
/// and quarantined events keep their events.
pub(super) fn prune(tx: &Connection, before: Timestamp) -> Result<usize, JournalError> {
    let old = "SELECT id FROM events WHERE received_at < ?1 AND processed_at IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.event_id = events.id)";
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
    // Finished timers (fired, cancelled, skipped) go with the retention; a pending one keeps
    // its event, which it needs when it fires (a wait may be longer than the retention).
    tx.execute(
        "DELETE FROM timers WHERE status <> 'pending' AND COALESCE(finished_at, created_at) < ?1",
        [before.millis()],
    )?;
    let unneeded = format!(
        "{old} AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.event_id = events.id)
               AND NOT EXISTS (SELECT 1 FROM flags f WHERE f.event_id = events.id)
               AND NOT EXISTS (SELECT 1 FROM timers t WHERE t.event_id = events.id)"
    );
    tx.execute(
        &format!("DELETE FROM event_rules WHERE seq IN (SELECT seq FROM events WHERE id IN ({unneeded}))"),
        [before.millis()],
    )?;
    tx.execute(
        &format!("DELETE FROM traces WHERE event_id IN ({unneeded})"),
        [before.millis()],
    )?;
    tx.execute(
        &format!("DELETE FROM event_bodies WHERE seq IN (SELECT seq FROM events WHERE id IN ({unneeded}))"),
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
