//! Timers (DESIGN.md §12): created with the event's trace, cancelled by a later event of the
//! same order (or, when due, by the timer worker for an `unless` event that came first), fired
//! into jobs by the timer worker. Firing marks the timer and creates its jobs
//! in one transaction, and only a pending timer fires: a timer fires once across crashes.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use super::jobs::insert_jobs;
use crate::journal::{
    EventSummary, Firing, JournalError, NewJob, NewTimer, Timer, TimerFilter, TimerKind,
    TimerStatus, TimerWrites,
};
use crate::model::event::Timestamp;

/// The schema (appended to `MIGRATIONS`). Lookups by event use the UNIQUE index (it starts
/// with `event_id`); an order's timeline uses `events_order` (admin migration).
pub(super) const MIGRATION: &str = r#"
    CREATE TABLE timers (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id     TEXT NOT NULL,
        rule         TEXT NOT NULL,
        kind         TEXT NOT NULL,
        action_index INTEGER NOT NULL,
        source       TEXT NOT NULL,
        order_id     TEXT,
        status       TEXT NOT NULL,
        due_at       INTEGER NOT NULL,
        created_at   INTEGER NOT NULL,
        finished_at  INTEGER,
        outcome      TEXT,
        if_still     TEXT,
        max_late     INTEGER,
        digest_max   INTEGER,
        events       TEXT NOT NULL DEFAULT '[]',
        jobs         TEXT NOT NULL DEFAULT '[]',
        UNIQUE (event_id, rule, kind, action_index)
    );
    CREATE INDEX timers_due ON timers (due_at, id) WHERE status = 'pending';
    CREATE INDEX timers_order ON timers (source, order_id) WHERE status = 'pending';
    CREATE INDEX timers_digest ON timers (rule) WHERE status = 'pending' AND kind = 'digest';
"#;

/// A job as a timer keeps it until it fires.
#[derive(Serialize, Deserialize)]
struct StoredJob {
    rule: String,
    action_index: usize,
    kind: String,
    params: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub(in crate::journal) fn jobs_json(jobs: &[NewJob]) -> String {
    let stored: Vec<StoredJob> = jobs
        .iter()
        .map(|j| StoredJob {
            rule: j.rule.clone(),
            action_index: j.action_index,
            kind: j.kind.clone(),
            params: j.params.clone(),
            error: j.error.clone(),
        })
        .collect();
    serde_json::to_string(&stored).unwrap_or_else(|_| "[]".into())
}

pub(in crate::journal) fn jobs_of(text: &str) -> Vec<NewJob> {
    let stored: Vec<StoredJob> = serde_json::from_str(text).unwrap_or_default();
    stored
        .into_iter()
        .map(|j| NewJob {
            rule: j.rule,
            action_index: j.action_index,
            kind: j.kind,
            params: j.params,
            error: j.error,
        })
        .collect()
}

/// Applies the timer side of a processed event: cancels first (an event never cancels its own
/// timers), then creates its timers.
pub(super) fn apply(
    tx: &Connection,
    event_id: &str,
    w: &TimerWrites,
    now: i64,
) -> Result<(), JournalError> {
    if let Some(order) = &w.order_id {
        let mut cancel = tx.prepare_cached(
            "UPDATE timers SET status = 'cancelled', finished_at = ?5, outcome = ?6
             WHERE status = 'pending' AND kind = 'wait' AND source = ?1 AND order_id = ?2
               AND rule = ?3 AND event_id != ?4",
        )?;
        for (rule, reason) in &w.cancels {
            cancel.execute(params![w.source, order, rule, event_id, now, reason])?;
        }
    }
    for t in &w.timers {
        match t.kind {
            TimerKind::Digest => add_to_digest(tx, event_id, w, t, now)?,
            _ => insert(tx, event_id, w, t, now, &[])?,
        }
    }
    Ok(())
}

fn insert(
    tx: &Connection,
    event_id: &str,
    w: &TimerWrites,
    t: &NewTimer,
    now: i64,
    events: &[&str],
) -> Result<(), JournalError> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO timers (event_id, rule, kind, action_index, source, order_id,
             status, due_at, created_at, finished_at, outcome, if_still, max_late, digest_max,
             events, jobs)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?
    .execute(params![
        event_id,
        t.rule,
        t.kind.as_str(),
        t.action_index,
        w.source,
        w.order_id,
        TimerStatus::Pending.as_str(),
        t.due_at.millis(),
        now,
        None::<i64>,
        t.note,
        t.if_still,
        t.max_late_ms,
        t.digest_max,
        serde_json::to_string(events).unwrap_or_else(|_| "[]".into()),
        jobs_json(&t.jobs),
    ])?;
    Ok(())
}

/// Adds the event to its rule's open digest window, or opens one. A window that reaches its
/// `max` becomes due at once.
fn add_to_digest(
    tx: &Connection,
    event_id: &str,
    w: &TimerWrites,
    t: &NewTimer,
    now: i64,
) -> Result<(), JournalError> {
    let open: Option<(i64, String)> = tx
        .prepare_cached(
            "SELECT id, events FROM timers
             WHERE status = 'pending' AND kind = 'digest' AND rule = ?1 ORDER BY id LIMIT 1",
        )?
        .query_row([&t.rule], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((id, events)) = open else {
        return insert(tx, event_id, w, t, now, &[event_id]);
    };
    let mut events: Vec<String> = serde_json::from_str(&events).unwrap_or_default();
    if !events.iter().any(|e| e == event_id) {
        events.push(event_id.to_string());
    }
    let full = t.digest_max.is_some_and(|max| events.len() >= max as usize);
    tx.prepare_cached(
        "UPDATE timers SET events = ?2, due_at = CASE WHEN ?3 THEN min(due_at, ?4) ELSE due_at END
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        serde_json::to_string(&events).unwrap_or_else(|_| "[]".into()),
        full,
        now
    ])?;
    Ok(())
}

/// Settles due timers: each pending one is marked fired (creating its jobs), skipped or
/// cancelled with the reason. Returns how many changed (a timer settled already is left alone).
pub(super) fn fire(tx: &Connection, firings: &[Firing]) -> Result<usize, JournalError> {
    let now = Timestamp::now().millis();
    let mut settle = tx.prepare_cached(
        "UPDATE timers SET status = ?2, finished_at = ?3, outcome = COALESCE(?4, outcome)
         WHERE id = ?1 AND status = 'pending' RETURNING event_id",
    )?;
    let mut changed = 0;
    for f in firings {
        let (status, reason) = f.outcome.status();
        let event: Option<String> = settle
            .query_row(params![f.id, status.as_str(), now, reason], |r| r.get(0))
            .optional()?;
        let Some(event) = event else { continue };
        changed += 1;
        if !f.outcome.jobs().is_empty() {
            insert_jobs(tx, &event, f.outcome.jobs(), now)?;
        }
    }
    Ok(changed)
}

/// Cancels one pending timer (`storeflow timers cancel`).
pub(super) fn cancel(tx: &Connection, id: i64) -> Result<usize, JournalError> {
    Ok(tx.execute(
        "UPDATE timers SET status = 'cancelled', finished_at = ?2, outcome = 'cancelled by hand'
         WHERE id = ?1 AND status = 'pending'",
        params![id, Timestamp::now().millis()],
    )?)
}

/// Deletes state keys not written since the time given with each; returns how many went.
pub(super) fn delete_state_unchanged(
    tx: &Connection,
    keys: &[(String, Timestamp)],
) -> Result<usize, JournalError> {
    let mut stmt = tx.prepare_cached("DELETE FROM kv WHERE key = ?1 AND updated_at <= ?2")?;
    let mut deleted = 0;
    for (key, written) in keys {
        deleted += stmt.execute(params![key, written.millis()])?;
    }
    Ok(deleted)
}

const COLUMNS: &str = "id, event_id, rule, kind, action_index, source, order_id, status, due_at, \
                       created_at, finished_at, outcome, if_still, max_late, events, jobs";

pub(super) fn due(
    conn: &Connection,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Timer>, JournalError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM timers WHERE status = 'pending' AND due_at <= ?1
         ORDER BY due_at, id LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![now.millis(), limit as i64], timer)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn next_due(conn: &Connection) -> Result<Option<Timestamp>, JournalError> {
    let at: Option<i64> = conn
        .prepare_cached("SELECT MIN(due_at) FROM timers WHERE status = 'pending'")?
        .query_row([], |r| r.get(0))?;
    Ok(at.map(Timestamp))
}

pub(super) fn pending_count(conn: &Connection) -> Result<u64, JournalError> {
    Ok(conn
        .prepare_cached("SELECT COUNT(*) FROM timers WHERE status = 'pending'")?
        .query_row([], |r| r.get(0))?)
}

/// Timers, soonest due first for pending ones, newest first otherwise.
pub(super) fn list(conn: &Connection, f: &TimerFilter) -> Result<Vec<Timer>, JournalError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM timers
         WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR order_id = ?2)
           AND (?3 IS NULL OR event_id = ?3 OR events LIKE '%\"' || ?3 || '\"%')
         ORDER BY CASE WHEN status = 'pending' THEN due_at ELSE -id END, id LIMIT ?4"
    );
    let limit = if f.limit == 0 { 1000 } else { f.limit };
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![
            f.status.map(TimerStatus::as_str),
            f.order_id,
            f.event_id,
            limit as i64
        ],
        timer,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn timer(r: &Row<'_>) -> rusqlite::Result<Timer> {
    let kind: String = r.get(3)?;
    let status: String = r.get(7)?;
    let action: i64 = r.get(4)?;
    let events: String = r.get(14)?;
    let jobs: String = r.get(15)?;
    Ok(Timer {
        id: r.get(0)?,
        event_id: r.get(1)?,
        rule: r.get(2)?,
        kind: TimerKind::parse(&kind).unwrap_or(TimerKind::Delay),
        action_index: usize::try_from(action).ok(),
        source: r.get(5)?,
        order_id: r.get(6)?,
        status: TimerStatus::parse(&status).unwrap_or(TimerStatus::Skipped),
        due_at: Timestamp(r.get(8)?),
        created_at: Timestamp(r.get(9)?),
        finished_at: r.get::<_, Option<i64>>(10)?.map(Timestamp),
        outcome: r.get(11)?,
        if_still: r.get(12)?,
        max_late_ms: r.get(13)?,
        events: serde_json::from_str(&events).unwrap_or_default(),
        jobs: jobs_of(&jobs),
    })
}

/// One order's events (its timeline), oldest first; of one source when given.
pub(super) fn order_events(
    conn: &Connection,
    source: Option<&str>,
    order_id: &str,
    limit: usize,
) -> Result<Vec<EventSummary>, JournalError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {} FROM events e LEFT JOIN quarantine q ON q.event_id = e.id
         WHERE e.order_id = ?1 AND (?2 IS NULL OR e.source = ?2) ORDER BY e.seq LIMIT ?3",
        super::events::SUMMARY_COLUMNS
    ))?;
    let rows = stmt.query_map(params![order_id, source, limit as i64], |r| {
        super::events::summary(r, 0)
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// (id, topic, canonical) of one order's events of one source, oldest first.
pub(super) fn order_timeline(
    conn: &Connection,
    source: &str,
    order_id: &str,
    limit: usize,
) -> Result<Vec<(String, String, Option<String>)>, JournalError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, topic, canonical FROM events WHERE order_id = ?1 AND source = ?2
         ORDER BY seq LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![order_id, source, limit as i64], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
