//! Traces and jobs: what the rules decided for an event, committed together with marking the
//! event processed.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::event::Timestamp;
use crate::journal::{Job, JobStatus, JournalError, Processed};

/// Marks the event processed and stores its trace and jobs; `false` (and no writes) when it was
/// already processed.
pub(super) fn processed(tx: &Connection, p: &Processed) -> Result<bool, JournalError> {
    let now = Timestamp::now().millis();
    let marked = tx
        .prepare_cached(
            "UPDATE events SET processed_at = ?2 WHERE id = ?1 AND processed_at IS NULL",
        )?
        .execute(params![p.event_id, now])?;
    if marked == 0 {
        return Ok(false);
    }
    tx.prepare_cached(
        "INSERT OR REPLACE INTO traces (event_id, trace, created_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![p.event_id, p.trace.to_string(), now])?;
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO jobs (event_id, rule, action_index, kind, params, status,
                                     next_at, last_error, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?7, ?7)",
    )?;
    for job in &p.jobs {
        let status = if job.error.is_some() {
            JobStatus::Dead
        } else {
            JobStatus::Pending
        };
        insert.execute(params![
            p.event_id,
            job.rule,
            job.action_index as i64,
            job.kind,
            job.params.to_string(),
            status.as_str(),
            now,
            job.error,
        ])?;
    }
    Ok(true)
}

pub(super) fn trace(
    conn: &Connection,
    event_id: &str,
) -> Result<Option<serde_json::Value>, JournalError> {
    let text: Option<String> = conn
        .prepare_cached("SELECT trace FROM traces WHERE event_id = ?1")?
        .query_row([event_id], |r| r.get(0))
        .optional()?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| JournalError::Corrupt {
            id: event_id.to_string(),
            reason: e.to_string(),
        })
    })
    .transpose()
}

pub(super) fn list(
    conn: &Connection,
    event_id: Option<&str>,
    status: Option<JobStatus>,
    limit: usize,
) -> Result<Vec<Job>, JournalError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, event_id, rule, action_index, kind, params, status, attempts, next_at,
                last_error, created_at
         FROM jobs
         WHERE (?1 IS NULL OR event_id = ?1) AND (?2 IS NULL OR status = ?2)
         ORDER BY id DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        params![event_id, status.map(JobStatus::as_str), limit as i64],
        job,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn job(r: &Row<'_>) -> rusqlite::Result<Job> {
    let params: String = r.get(5)?;
    let status: String = r.get(6)?;
    Ok(Job {
        id: r.get(0)?,
        event_id: r.get(1)?,
        rule: r.get(2)?,
        action_index: r.get::<_, i64>(3)? as usize,
        kind: r.get(4)?,
        params: serde_json::from_str(&params).unwrap_or(serde_json::Value::String(params)),
        status: JobStatus::parse(&status).unwrap_or(JobStatus::Dead),
        attempts: r.get(7)?,
        next_at: Timestamp(r.get(8)?),
        last_error: r.get(9)?,
        created_at: Timestamp(r.get(10)?),
    })
}
