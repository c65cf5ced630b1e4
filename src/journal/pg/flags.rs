//! Flags on orders and the quarantine on PostgreSQL, as in the SQLite journal: one flag per
//! (source, order, kind, rule); a quarantined event is set aside with its reason, marked
//! processed, until someone releases it.

use tokio_postgres::{GenericClient, Row};

use super::Tx as Transaction;

use crate::journal::{Flag, FlagFilter, JournalError, Release, Unreadable};
use crate::model::event::Timestamp;

/// Adds the flag; 0 when this rule already flagged the order with that kind.
pub(super) async fn add(tx: &Transaction<'_>, f: &Flag) -> Result<usize, JournalError> {
    Ok(tx
        .execute(
            "INSERT INTO flags (source, order_id, kind, note, event_id, rule, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (source, order_id, kind, rule) DO NOTHING",
            &[
                &f.source,
                &f.order_id,
                &f.kind,
                &f.note,
                &f.event_id,
                &f.rule,
                &f.created_at.millis(),
            ],
        )
        .await? as usize)
}

pub(super) async fn resolve(tx: &Transaction<'_>, id: i64) -> Result<usize, JournalError> {
    Ok(tx
        .execute(
            "UPDATE flags SET resolved_at = $2 WHERE id = $1 AND resolved_at IS NULL",
            &[&id, &Timestamp::now().millis()],
        )
        .await? as usize)
}

pub(super) async fn delete(tx: &Transaction<'_>, id: i64) -> Result<usize, JournalError> {
    Ok(tx
        .execute("DELETE FROM flags WHERE id = $1", &[&id])
        .await? as usize)
}

pub(super) const FLAG_COLUMNS: &str =
    "id, source, order_id, kind, note, event_id, rule, created_at, resolved_at";

pub(super) async fn list(
    c: &impl GenericClient,
    kind: Option<&str>,
    filter: FlagFilter,
    limit: usize,
) -> Result<Vec<Flag>, JournalError> {
    let sql = format!(
        "SELECT {FLAG_COLUMNS} FROM flags
         WHERE ($1::text IS NULL OR kind = $1) AND ($2 OR resolved_at IS NULL)
         ORDER BY created_at DESC, id DESC LIMIT $3"
    );
    let all = filter == FlagFilter::All;
    let rows = c.query(&sql, &[&kind, &all, &(limit as i64)]).await?;
    rows.iter().map(flag).collect()
}

pub(super) fn flag(r: &Row) -> Result<Flag, JournalError> {
    Ok(Flag {
        id: r.try_get(0)?,
        source: r.try_get(1)?,
        order_id: r.try_get(2)?,
        kind: r.try_get(3)?,
        note: r.try_get(4)?,
        event_id: r.try_get(5)?,
        rule: r.try_get(6)?,
        created_at: Timestamp(r.try_get(7)?),
        resolved_at: r.try_get::<_, Option<i64>>(8)?.map(Timestamp),
    })
}

/// Quarantines an unprocessed event (reason, trace, marked processed); 0 when the event is not
/// waiting for the pipeline.
pub(super) async fn quarantine(
    tx: &Transaction<'_>,
    u: &Unreadable,
) -> Result<usize, JournalError> {
    let now = Timestamp::now().millis();
    let marked = tx
        .execute(
            "UPDATE events SET processed_at = $2 WHERE id = $1 AND processed_at IS NULL",
            &[&u.event_id, &now],
        )
        .await?;
    if marked == 0 {
        return Ok(0);
    }
    tx.execute(
        "INSERT INTO quarantine (event_id, reason, quarantined_at) VALUES ($1, $2, $3)
         ON CONFLICT (event_id) DO UPDATE SET reason = excluded.reason,
                                              quarantined_at = excluded.quarantined_at",
        &[&u.event_id, &u.reason, &now],
    )
    .await?;
    let trace = serde_json::json!({ "quarantined": { "reason": u.reason } });
    super::jobs::put_trace(tx, &u.event_id, &trace.to_string(), now).await?;
    Ok(1)
}

/// Hands quarantined events back to the pipeline; returns how many were released.
pub(super) async fn release(tx: &Transaction<'_>, which: &Release) -> Result<usize, JournalError> {
    let one = match which {
        Release::One(id) => Some(id.as_str()),
        Release::AllQuarantined => None,
    };
    let rows = tx
        .query(
            "DELETE FROM quarantine WHERE $1::text IS NULL OR event_id = $1 RETURNING event_id",
            &[&one],
        )
        .await?;
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    tx.execute("DELETE FROM traces WHERE event_id = ANY($1)", &[&ids])
        .await?;
    tx.execute(
        "UPDATE events SET processed_at = NULL WHERE id = ANY($1)",
        &[&ids],
    )
    .await?;
    Ok(ids.len())
}
