//! Timers (DESIGN.md §12) on PostgreSQL, as in the SQLite journal: created with the event's
//! trace, cancelled by a later event of the same order (or settled as cancelled when due),
//! fired into jobs once.

use tokio_postgres::{GenericClient, Row};

use super::Tx as Transaction;

use super::jobs::insert_jobs;
use crate::journal::sqlite::timers::{jobs_json, jobs_of};
use crate::journal::{
    EventSummary, Firing, JournalError, NewTimer, Timer, TimerFilter, TimerKind, TimerStatus,
    TimerWrites,
};
use crate::model::event::Timestamp;

/// Applies the timer side of a processed event: cancels first, then creates its timers.
pub(super) async fn apply(
    tx: &Transaction<'_>,
    event_id: &str,
    w: &TimerWrites,
    now: i64,
) -> Result<(), JournalError> {
    if let Some(order) = &w.order_id {
        for (rule, reason) in &w.cancels {
            super::execute(
                tx,
                "UPDATE timers SET status = 'cancelled', finished_at = $5, outcome = $6
                 WHERE status = 'pending' AND kind = 'wait' AND source = $1 AND order_id = $2
                   AND rule = $3 AND event_id <> $4",
                &[&w.source, order, rule, &event_id, &now, reason],
            )
            .await?;
        }
    }
    for t in &w.timers {
        match t.kind {
            TimerKind::Digest => add_to_digest(tx, event_id, w, t, now).await?,
            _ => insert(tx, event_id, w, t, now, &[]).await?,
        }
    }
    Ok(())
}

async fn insert(
    tx: &Transaction<'_>,
    event_id: &str,
    w: &TimerWrites,
    t: &NewTimer,
    now: i64,
    events: &[&str],
) -> Result<(), JournalError> {
    super::execute(
        tx,
        "INSERT INTO timers (event_id, rule, kind, action_index, source, order_id, status,
             due_at, created_at, finished_at, outcome, if_still, max_late, digest_max, events, jobs)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         ON CONFLICT (event_id, rule, kind, action_index) DO NOTHING",
        &[
            &event_id,
            &t.rule,
            &t.kind.as_str(),
            &t.action_index,
            &w.source,
            &w.order_id,
            &TimerStatus::Pending.as_str(),
            &t.due_at.millis(),
            &now,
            &None::<i64>,
            &t.note,
            &t.if_still,
            &t.max_late_ms,
            &t.digest_max.map(i64::from),
            &serde_json::to_string(events).unwrap_or_else(|_| "[]".into()),
            &jobs_json(&t.jobs),
        ],
    )
    .await?;
    Ok(())
}

/// Adds the event to its rule's open digest window (locked), or opens one.
async fn add_to_digest(
    tx: &Transaction<'_>,
    event_id: &str,
    w: &TimerWrites,
    t: &NewTimer,
    now: i64,
) -> Result<(), JournalError> {
    let open = tx
        .query_opt(
            "SELECT id, events FROM timers
             WHERE status = 'pending' AND kind = 'digest' AND rule = $1 ORDER BY id LIMIT 1
             FOR UPDATE",
            &[&t.rule],
        )
        .await?;
    let Some(open) = open else {
        return insert(tx, event_id, w, t, now, &[event_id]).await;
    };
    let id: i64 = open.try_get(0)?;
    let events: String = open.try_get(1)?;
    let mut events: Vec<String> = serde_json::from_str(&events).unwrap_or_default();
    if !events.iter().any(|e| e == event_id) {
        events.push(event_id.to_string());
    }
    let full = t.digest_max.is_some_and(|max| events.len() >= max as usize);
    tx.execute(
        "UPDATE timers SET events = $2,
                due_at = CASE WHEN $3 THEN LEAST(due_at, $4) ELSE due_at END
         WHERE id = $1",
        &[
            &id,
            &serde_json::to_string(&events).unwrap_or_else(|_| "[]".into()),
            &full,
            &now,
        ],
    )
    .await?;
    Ok(())
}

/// Settles due timers (fired with their jobs, or skipped); only a pending timer changes.
pub(super) async fn fire(tx: &Transaction<'_>, firings: &[Firing]) -> Result<usize, JournalError> {
    let now = Timestamp::now().millis();
    let mut changed = 0;
    for f in firings {
        let (status, reason) = f.outcome.status();
        let settled = tx
            .query_opt(
                "UPDATE timers SET status = $2, finished_at = $3, outcome = COALESCE($4, outcome)
                 WHERE id = $1 AND status = 'pending' RETURNING event_id",
                &[&f.id, &status.as_str(), &now, &reason],
            )
            .await?;
        let Some(settled) = settled else { continue };
        changed += 1;
        if !f.outcome.jobs().is_empty() {
            let event: String = settled.try_get(0)?;
            insert_jobs(tx, &event, f.outcome.jobs(), now).await?;
        }
    }
    Ok(changed)
}

pub(super) async fn cancel(tx: &Transaction<'_>, id: i64) -> Result<usize, JournalError> {
    Ok(tx
        .execute(
            "UPDATE timers SET status = 'cancelled', finished_at = $2,
                               outcome = 'cancelled by hand'
             WHERE id = $1 AND status = 'pending'",
            &[&id, &Timestamp::now().millis()],
        )
        .await? as usize)
}

/// Deletes state keys not written since the time given with each; returns how many went.
pub(super) async fn delete_state_unchanged(
    tx: &Transaction<'_>,
    keys: &[(String, Timestamp)],
) -> Result<usize, JournalError> {
    let mut deleted = 0;
    for (key, written) in keys {
        deleted += tx
            .execute(
                "DELETE FROM kv WHERE key = $1 AND updated_at <= $2",
                &[key, &written.millis()],
            )
            .await?;
    }
    Ok(deleted as usize)
}

pub(super) const COLUMNS: &str =
    "id, event_id, rule, kind, action_index, source, order_id, status, due_at, \
                       created_at, finished_at, outcome, if_still, max_late, events, jobs";

pub(super) async fn due(
    c: &impl GenericClient,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Timer>, JournalError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM timers WHERE status = 'pending' AND due_at <= $1
         ORDER BY due_at, id LIMIT $2"
    );
    let rows = c.query(&sql, &[&now.millis(), &(limit as i64)]).await?;
    rows.iter().map(timer).collect()
}

pub(super) async fn next_due(c: &impl GenericClient) -> Result<Option<Timestamp>, JournalError> {
    let row = c
        .query_one(
            "SELECT MIN(due_at) FROM timers WHERE status = 'pending'",
            &[],
        )
        .await?;
    Ok(row.try_get::<_, Option<i64>>(0)?.map(Timestamp))
}

pub(super) async fn pending_count(c: &impl GenericClient) -> Result<u64, JournalError> {
    let row = c
        .query_one("SELECT COUNT(*) FROM timers WHERE status = 'pending'", &[])
        .await?;
    Ok(row.try_get::<_, i64>(0)?.max(0) as u64)
}

/// Timers, soonest due first for pending ones, newest first otherwise.
pub(super) async fn list(
    c: &impl GenericClient,
    f: &TimerFilter,
) -> Result<Vec<Timer>, JournalError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM timers
         WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR order_id = $2)
           AND ($3::text IS NULL OR event_id = $3 OR strpos(events, '\"' || $3 || '\"') > 0)
         ORDER BY CASE WHEN status = 'pending' THEN due_at ELSE -id END, id LIMIT $4"
    );
    let limit = if f.limit == 0 { 1000 } else { f.limit };
    let status = f.status.map(TimerStatus::as_str);
    let rows = c
        .query(&sql, &[&status, &f.order_id, &f.event_id, &(limit as i64)])
        .await?;
    rows.iter().map(timer).collect()
}

pub(super) fn timer(r: &Row) -> Result<Timer, JournalError> {
    let kind: String = r.try_get(3)?;
    let status: String = r.try_get(7)?;
    let action: i64 = r.try_get(4)?;
    let events: String = r.try_get(14)?;
    let jobs: String = r.try_get(15)?;
    Ok(Timer {
        id: r.try_get(0)?,
        event_id: r.try_get(1)?,
        rule: r.try_get(2)?,
        kind: TimerKind::parse(&kind).unwrap_or(TimerKind::Delay),
        action_index: usize::try_from(action).ok(),
        source: r.try_get(5)?,
        order_id: r.try_get(6)?,
        status: TimerStatus::parse(&status).unwrap_or(TimerStatus::Skipped),
        due_at: Timestamp(r.try_get(8)?),
        created_at: Timestamp(r.try_get(9)?),
        finished_at: r.try_get::<_, Option<i64>>(10)?.map(Timestamp),
        outcome: r.try_get(11)?,
        if_still: r.try_get(12)?,
        max_late_ms: r.try_get(13)?,
        events: serde_json::from_str(&events).unwrap_or_default(),
        jobs: jobs_of(&jobs),
    })
}

/// One order's events (its timeline), oldest first; of one source when given.
pub(super) async fn order_events(
    c: &impl GenericClient,
    source: Option<&str>,
    order_id: &str,
    limit: usize,
) -> Result<Vec<EventSummary>, JournalError> {
    let sql = format!(
        "SELECT {} FROM events e LEFT JOIN quarantine q ON q.event_id = e.id
         WHERE e.order_id = $1 AND ($2::text IS NULL OR e.source = $2) ORDER BY e.seq LIMIT $3",
        super::events::SUMMARY_COLUMNS
    );
    let rows = c
        .query(&sql, &[&order_id, &source, &(limit as i64)])
        .await?;
    super::events::summaries(rows)
}

/// (id, topic, canonical) of one order's events of one source, oldest first.
pub(super) async fn order_timeline(
    c: &impl GenericClient,
    source: &str,
    order_id: &str,
    limit: usize,
) -> Result<Vec<(String, String, Option<String>)>, JournalError> {
    let rows = c
        .query(
            "SELECT id, topic, canonical FROM events WHERE order_id = $1 AND source = $2
             ORDER BY seq LIMIT $3",
            &[&order_id, &source, &(limit as i64)],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect()
}
