//! The `events` table on PostgreSQL: reads and retention (appends: [`super::append`]).

use tokio_postgres::{GenericClient, Row};

use super::Tx as Transaction;

use crate::journal::{EventStatus, EventSummary, JournalError, SecretCount, Unreadable};
use crate::model::event::{Event, OrderView, Timestamp};

/// The columns [`summary`] reads, in order (`e`: events, `q`: quarantine joined on the id).
pub(super) const SUMMARY_COLUMNS: &str = "e.id, e.source, e.kind, e.topic, e.canonical, \
     e.received_at, e.order_id, e.processed_at IS NOT NULL, q.reason, e.shop";

/// An [`EventSummary`] from [`SUMMARY_COLUMNS`] selected from column `at` on.
pub(super) fn summary(r: &Row, at: usize) -> Result<EventSummary, JournalError> {
    let processed: bool = r.try_get(at + 7)?;
    let reason: Option<String> = r.try_get(at + 8)?;
    let status = match (&reason, processed) {
        (Some(_), _) => EventStatus::Quarantined,
        (None, true) => EventStatus::Processed,
        (None, false) => EventStatus::Unprocessed,
    };
    Ok(EventSummary {
        id: r.try_get(at)?,
        source: r.try_get(at + 1)?,
        kind: r.try_get(at + 2)?,
        topic: r.try_get(at + 3)?,
        canonical: r.try_get(at + 4)?,
        received_at: Timestamp(r.try_get(at + 5)?),
        order_id: r.try_get(at + 6)?,
        shop: r.try_get(at + 9)?,
        status,
        reason,
    })
}

pub(super) fn summaries(rows: Vec<Row>) -> Result<Vec<EventSummary>, JournalError> {
    rows.iter().map(|r| summary(r, 0)).collect()
}

/// The newest events first, optionally only those in one status and of one shop.
pub(super) async fn recent(
    c: &impl GenericClient,
    status: Option<EventStatus>,
    shop: Option<&str>,
    limit: usize,
) -> Result<Vec<EventSummary>, JournalError> {
    let filter = match status {
        None => "TRUE",
        Some(EventStatus::Unprocessed) => "e.processed_at IS NULL",
        Some(EventStatus::Processed) => "e.processed_at IS NOT NULL AND q.event_id IS NULL",
        Some(EventStatus::Quarantined) => "q.event_id IS NOT NULL",
    };
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS}
         FROM events e LEFT JOIN quarantine q ON q.event_id = e.id
         WHERE {filter} AND ($2::text IS NULL OR e.shop = $2) ORDER BY e.seq DESC LIMIT $1"
    );
    summaries(c.query(&sql, &[&(limit as i64), &shop]).await?)
}

pub(super) async fn secret_counts(
    c: &impl GenericClient,
) -> Result<Vec<SecretCount>, JournalError> {
    let rows = c
        .query(
            "SELECT source, shop, secret, events, last FROM secret_counts ORDER BY 1, 2, 3",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(SecretCount {
                source: r.try_get(0)?,
                shop: r.try_get(1)?,
                secret: r.try_get(2)?,
                events: r.try_get::<_, i64>(3)?.max(0) as u64,
                last: Timestamp(r.try_get(4)?),
            })
        })
        .collect()
}

/// An event's columns and its body.
const EVENT_COLUMNS: &str = "e.id, e.source, e.kind, e.topic, e.canonical, e.received_at, \
     b.payload, e.order_view::text, e.shop, e.secret \
     FROM events e LEFT JOIN event_bodies b ON b.seq = e.seq";

pub(super) async fn one(c: &impl GenericClient, id: &str) -> Result<Option<Event>, JournalError> {
    let sql = format!("SELECT {EVENT_COLUMNS} WHERE e.id = $1");
    let Some(row) = c.query_opt(&sql, &[&id]).await? else {
        return Ok(None);
    };
    decode(&row).map(Some).map_err(|u| JournalError::Corrupt {
        id: u.event_id,
        reason: u.reason,
    })
}

/// Unprocessed events, oldest first, each decoded on its own: a row that cannot be read back is
/// answered as [`Unreadable`] (for the pipeline to quarantine) and fails no other row.
pub(super) async fn unprocessed(
    c: &impl GenericClient,
    limit: usize,
) -> Result<Vec<Result<Event, Unreadable>>, JournalError> {
    let sql =
        format!("SELECT {EVENT_COLUMNS} WHERE e.processed_at IS NULL ORDER BY e.seq LIMIT $1");
    let rows = c.query(&sql, &[&(limit as i64)]).await?;
    Ok(rows.iter().map(decode).collect())
}

pub(super) async fn unprocessed_ids(
    c: &impl GenericClient,
    limit: usize,
) -> Result<Vec<String>, JournalError> {
    let rows = c
        .query(
            "SELECT id FROM events WHERE processed_at IS NULL ORDER BY seq LIMIT $1",
            &[&(limit as i64)],
        )
        .await?;
    rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
}

/// One row as an [`Event`]; a column that does not decode is an [`Unreadable`] of this row.
fn decode(r: &Row) -> Result<Event, Unreadable> {
    let id: String = r.try_get(0).map_err(|e| Unreadable {
        event_id: String::new(),
        reason: format!("unreadable id: {e}"),
    })?;
    let unreadable = |what: &str, e: &dyn std::fmt::Display| Unreadable {
        event_id: id.clone(),
        reason: format!("{what}: {e}"),
    };
    let col = |e: tokio_postgres::Error| unreadable("column", &e);
    let payload: Option<Vec<u8>> = r.try_get(6).map_err(col)?;
    let payload = payload.ok_or_else(|| unreadable("payload", &"the body is missing"))?;
    let order_view: Option<String> = r.try_get(7).map_err(col)?;
    Ok(Event {
        id: id.clone(),
        source: r.try_get(1).map_err(col)?,
        kind: r.try_get(2).map_err(col)?,
        topic: r.try_get(3).map_err(col)?,
        canonical: r.try_get(4).map_err(col)?,
        received_at: Timestamp(r.try_get(5).map_err(col)?),
        payload: serde_json::from_slice(&payload).map_err(|e| unreadable("payload", &e))?,
        order: order_view
            .map(|o| serde_json::from_str::<OrderView>(&o))
            .transpose()
            .map_err(|e| unreadable("order view", &e))?,
        shop: r.try_get(8).map_err(col)?,
        secret: r.try_get(9).map_err(col)?,
    })
}

/// Retention, as in the SQLite journal: deletes old processed events that need nothing more,
/// with their traces, bodies, dedupe keys and finished jobs. Dead letters, flagged orders,
/// pending timers and quarantined events keep their events.
pub(super) async fn prune(tx: &Transaction<'_>, before: Timestamp) -> Result<usize, JournalError> {
    let b = before.millis();
    let old = "SELECT id FROM events WHERE received_at < $1 AND processed_at IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.event_id = events.id)";
    let finished = "status IN ('done', 'dismissed', 'replanned')";
    tx.execute(
        &format!(
            "DELETE FROM attempts WHERE job_id IN
               (SELECT id FROM jobs WHERE {finished} AND event_id IN ({old}))"
        ),
        &[&b],
    )
    .await?;
    tx.execute(
        &format!("DELETE FROM jobs WHERE {finished} AND event_id IN ({old})"),
        &[&b],
    )
    .await?;
    tx.execute(
        "DELETE FROM timers WHERE status <> 'pending' AND COALESCE(finished_at, created_at) < $1",
        &[&b],
    )
    .await?;
    let unneeded = format!(
        "{old} AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.event_id = events.id)
               AND NOT EXISTS (SELECT 1 FROM flags f WHERE f.event_id = events.id)
               AND NOT EXISTS (SELECT 1 FROM timers t WHERE t.event_id = events.id)"
    );
    let deleted = tx
        .query(
            &format!("DELETE FROM events WHERE id IN ({unneeded}) RETURNING seq, id"),
            &[&b],
        )
        .await?;
    let seqs: Vec<i64> = deleted
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let ids: Vec<String> = deleted
        .iter()
        .map(|r| r.try_get(1))
        .collect::<Result<_, _>>()?;
    for sql in [
        "DELETE FROM event_rules WHERE seq = ANY($1)",
        "DELETE FROM event_bodies WHERE seq = ANY($1)",
    ] {
        tx.execute(sql, &[&seqs]).await?;
    }
    for sql in [
        "DELETE FROM traces WHERE event_id = ANY($1)",
        "DELETE FROM event_dedupe WHERE event_id = ANY($1)",
    ] {
        tx.execute(sql, &[&ids]).await?;
    }
    Ok(deleted.len())
}

/// Which of `ids` are still in the journal, in the order asked.
pub(super) async fn existing(
    c: &impl GenericClient,
    ids: &[String],
) -> Result<Vec<String>, JournalError> {
    let rows = c
        .query("SELECT id FROM events WHERE id = ANY($1)", &[&ids])
        .await?;
    let found: std::collections::HashSet<String> = rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    Ok(ids
        .iter()
        .filter(|id| found.contains(*id))
        .cloned()
        .collect())
}
