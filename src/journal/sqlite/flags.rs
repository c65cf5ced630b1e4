//! Flags on orders (e.g. disputes): one per (source, order, kind), so a repeated webhook or a
//! re-run job does not flag an order twice.

use rusqlite::{params, Connection};

use crate::event::Timestamp;
use crate::journal::{Flag, JournalError};

/// Adds the flag; 0 when the order already has a flag of that kind.
pub(super) fn add(tx: &Connection, f: &Flag) -> Result<usize, JournalError> {
    Ok(tx
        .prepare_cached(
            "INSERT OR IGNORE INTO flags (source, order_id, kind, note, event_id, rule, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            f.source,
            f.order_id,
            f.kind,
            f.note,
            f.event_id,
            f.rule,
            f.created_at.millis()
        ])?)
}

pub(super) fn list(
    conn: &Connection,
    kind: Option<&str>,
    limit: usize,
) -> Result<Vec<Flag>, JournalError> {
    let mut stmt = conn.prepare_cached(
        "SELECT source, order_id, kind, note, event_id, rule, created_at FROM flags
         WHERE (?1 IS NULL OR kind = ?1) ORDER BY created_at DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![kind, limit as i64], |r| {
        Ok(Flag {
            source: r.get(0)?,
            order_id: r.get(1)?,
            kind: r.get(2)?,
            note: r.get(3)?,
            event_id: r.get(4)?,
            rule: r.get(5)?,
            created_at: Timestamp(r.get(6)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
