//! Flags on orders (e.g. disputes): one per (source, order, kind, rule), so a repeated webhook or
//! a re-run job does not flag an order twice, while two rules flagging the same order each keep
//! their note. Flags stay until someone resolves or deletes them.

use rusqlite::{params, Connection, Row};

use crate::journal::{Flag, FlagFilter, JournalError};
use crate::model::event::Timestamp;

/// Adds the flag; 0 when this rule already flagged the order with that kind.
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

/// Marks an open flag resolved; 0 when there is no such open flag.
pub(super) fn resolve(tx: &Connection, id: i64) -> Result<usize, JournalError> {
    Ok(tx.execute(
        "UPDATE flags SET resolved_at = ?2 WHERE id = ?1 AND resolved_at IS NULL",
        params![id, Timestamp::now().millis()],
    )?)
}

/// Deletes a flag (open or resolved); 0 when there is none with that id.
pub(super) fn delete(tx: &Connection, id: i64) -> Result<usize, JournalError> {
    Ok(tx.execute("DELETE FROM flags WHERE id = ?1", [id])?)
}

pub(super) fn list(
    conn: &Connection,
    kind: Option<&str>,
    filter: FlagFilter,
    limit: usize,
) -> Result<Vec<Flag>, JournalError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, source, order_id, kind, note, event_id, rule, created_at, resolved_at
         FROM flags WHERE (?1 IS NULL OR kind = ?1) AND (?2 OR resolved_at IS NULL)
         ORDER BY created_at DESC, id DESC LIMIT ?3",
    )?;
    let all = filter == FlagFilter::All;
    let rows = stmt.query_map(params![kind, all, limit as i64], flag)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn flag(r: &Row<'_>) -> rusqlite::Result<Flag> {
    Ok(Flag {
        id: r.get(0)?,
        source: r.get(1)?,
        order_id: r.get(2)?,
        kind: r.get(3)?,
        note: r.get(4)?,
        event_id: r.get(5)?,
        rule: r.get(6)?,
        created_at: Timestamp(r.get(7)?),
        resolved_at: r.get::<_, Option<i64>>(8)?.map(Timestamp),
    })
}
