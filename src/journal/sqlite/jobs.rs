//! Traces and jobs: what the rules decided for an event, committed together with marking the
//! event processed.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::journal::{
    Attempt, AttemptOutcome, Job, JobStatus, JournalError, NewJob, NextStep, Processed, Replan,
    Requeue,
};
use crate::model::event::Timestamp;

/// Marks the event processed and stores its trace, jobs and script state; `false` (and no
/// writes) when it was already processed.
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
    .execute(params![p.event_id, p.trace.as_str(), now])?;
    for (key, value) in &p.state {
        set_state(tx, key, value)?;
    }
    insert_jobs(tx, &p.event_id, &p.jobs, now)?;
    super::admin::record_fired(tx, &p.event_id, &p.fired)?;
    super::timers::apply(tx, &p.event_id, &p.timers, now)?;
    Ok(true)
}

/// Creates jobs (pending, or dead when they cannot run); a key that exists is left alone.
/// Returns how many were created.
pub(super) fn insert_jobs(
    tx: &Connection,
    event_id: &str,
    jobs: &[NewJob],
    now: i64,
) -> Result<usize, JournalError> {
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO jobs (event_id, rule, action_index, kind, params, status,
                                     next_at, last_error, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?7, ?7)",
    )?;
    let mut created = 0;
    for job in jobs {
        let status = if job.error.is_some() {
            JobStatus::Dead
        } else {
            JobStatus::Pending
        };
        created += insert.execute(params![
            event_id,
            job.rule,
            job.action_index as i64,
            job.kind,
            job.params.to_string(),
            status.as_str(),
            now,
            job.error,
        ])?;
    }
    Ok(created)
}

/// Creates the replanned jobs and marks the dead letters they replace `replanned`. Returns how
/// many jobs were created.
pub(super) fn replan(tx: &Connection, r: &Replan) -> Result<usize, JournalError> {
    let now = Timestamp::now().millis();
    let mut mark = tx.prepare_cached(
        "UPDATE jobs SET status = 'replanned', updated_at = ?3
         WHERE id = ?1 AND event_id = ?2 AND status = 'dead'",
    )?;
    for id in &r.replaces {
        mark.execute(params![id, r.event_id, now])?;
    }
    insert_jobs(tx, &r.event_id, &r.jobs, now)
}

/// Sets dead letters aside; returns how many were dead.
pub(super) fn dismiss(tx: &Connection, ids: &[i64]) -> Result<usize, JournalError> {
    let now = Timestamp::now().millis();
    let mut stmt = tx.prepare_cached(
        "UPDATE jobs SET status = 'dismissed', updated_at = ?2 WHERE id = ?1 AND status = 'dead'",
    )?;
    let mut changed = 0;
    for id in ids {
        changed += stmt.execute(params![id, now])?;
    }
    Ok(changed)
}

/// Deletes script state keys; returns how many existed.
pub(super) fn delete_state(tx: &Connection, keys: &[String]) -> Result<usize, JournalError> {
    let mut stmt = tx.prepare_cached("DELETE FROM kv WHERE key = ?1")?;
    let mut deleted = 0;
    for key in keys {
        deleted += stmt.execute([key])?;
    }
    Ok(deleted)
}

/// Script state keys starting with `prefix`, with when each was last written.
pub(super) fn state_keys(
    conn: &Connection,
    prefix: &str,
) -> Result<Vec<(String, Timestamp)>, JournalError> {
    let mut stmt = conn.prepare_cached(
        "SELECT key, updated_at FROM kv WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key",
    )?;
    let rows = stmt.query_map([prefix], |r| Ok((r.get(0)?, Timestamp(r.get(1)?))))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Sets one script state value.
pub(super) fn set_state(
    tx: &Connection,
    key: &str,
    value: &serde_json::Value,
) -> Result<usize, JournalError> {
    Ok(tx
        .prepare_cached(
            "INSERT INTO kv (key, value, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )?
        .execute(params![key, value.to_string(), Timestamp::now().millis()])?)
}

pub(super) fn state(
    conn: &Connection,
    key: &str,
) -> Result<Option<serde_json::Value>, JournalError> {
    let text: Option<String> = conn
        .prepare_cached("SELECT value FROM kv WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| JournalError::Corrupt {
            id: key.to_string(),
            reason: e.to_string(),
        })
    })
    .transpose()
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
        serde_json::from_str(&t)
            .map(crate::journal::trace_codec::restore)
            .map_err(|e| JournalError::Corrupt {
                id: event_id.to_string(),
                reason: e.to_string(),
            })
    })
    .transpose()
}

pub(super) const JOB_COLUMNS: &str =
    "id, event_id, rule, action_index, kind, params, status, attempts, \
                           next_at, last_error, created_at";

pub(super) fn one(conn: &Connection, id: i64) -> Result<Option<Job>, JournalError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1");
    Ok(conn.prepare_cached(&sql)?.query_row([id], job).optional()?)
}

pub(super) fn due(
    conn: &Connection,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Job>, JournalError> {
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'pending' AND next_at <= ?1
         ORDER BY next_at, id LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![now.millis(), limit as i64], job)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn next_due(conn: &Connection) -> Result<Option<Timestamp>, JournalError> {
    let at: Option<i64> = conn
        .prepare_cached("SELECT MIN(next_at) FROM jobs WHERE status = 'pending'")?
        .query_row([], |r| r.get(0))?;
    Ok(at.map(Timestamp))
}

/// Records one attempt and moves the job on (done, retry later, or dead). Attempts are numbered
/// across re-queues (a retried job's next attempt continues the count), so `jobs show` keeps the
/// whole history; `jobs.attempts` counts the attempts of the current retry schedule only. Recording an attempt
/// that is already recorded (the job's count is past it) changes nothing.
pub(super) fn record_attempt(tx: &Connection, a: &AttemptOutcome) -> Result<usize, JournalError> {
    let (status, next_at, outcome) = match a.next {
        NextStep::Done => (JobStatus::Done, a.finished_at, "done"),
        NextStep::Retry(at) => (JobStatus::Pending, at, "retry"),
        NextStep::Dead => (JobStatus::Dead, a.finished_at, "dead"),
    };
    let changed = tx
        .prepare_cached(
            "UPDATE jobs SET status = ?2, attempts = attempts + 1, next_at = ?3, last_error = ?4,
                             updated_at = ?5
             WHERE id = ?1 AND status = 'pending' AND attempts = ?6 - 1",
        )?
        .execute(params![
            a.job_id,
            status.as_str(),
            next_at.millis(),
            a.error,
            a.finished_at.millis(),
            a.attempt,
        ])?;
    if changed > 0 {
        tx.prepare_cached(
            "INSERT INTO attempts (job_id, number, started_at, finished_at, outcome, error)
             VALUES (?1, (SELECT COALESCE(MAX(number), 0) + 1 FROM attempts WHERE job_id = ?1),
                     ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            a.job_id,
            a.started_at.millis(),
            a.finished_at.millis(),
            outcome,
            a.error
        ])?;
    }
    Ok(changed)
}

/// Puts dead (or, by id, done or dismissed) jobs back in the queue, due now, with a fresh retry schedule. The
/// attempts already made stay in `attempts`.
pub(super) fn requeue(tx: &Connection, r: &Requeue) -> Result<usize, JournalError> {
    let now = Timestamp::now().millis();
    let changed = match r {
        Requeue::One(id) => tx.execute(
            "UPDATE jobs SET status = 'pending', attempts = 0, next_at = ?2, updated_at = ?2
             WHERE id = ?1 AND status IN ('dead', 'done', 'dismissed')",
            params![id, now],
        )?,
        Requeue::AllDead => tx.execute(
            "UPDATE jobs SET status = 'pending', attempts = 0, next_at = ?1, updated_at = ?1
             WHERE status = 'dead'",
            params![now],
        )?,
    };
    Ok(changed)
}

pub(super) fn attempts(conn: &Connection, job_id: i64) -> Result<Vec<Attempt>, JournalError> {
    let mut stmt = conn.prepare_cached(
        "SELECT job_id, number, started_at, finished_at, outcome, error FROM attempts
         WHERE job_id = ?1 ORDER BY number",
    )?;
    let rows = stmt.query_map([job_id], |r| {
        Ok(Attempt {
            job_id: r.get(0)?,
            number: r.get(1)?,
            started_at: Timestamp(r.get(2)?),
            finished_at: Timestamp(r.get(3)?),
            outcome: r.get(4)?,
            error: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn list(
    conn: &Connection,
    event_id: Option<&str>,
    status: Option<JobStatus>,
    limit: usize,
) -> Result<Vec<Job>, JournalError> {
    let sql = list_statement(event_id.is_some(), status.is_some());
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![event_id, status.map(JobStatus::as_str), limit as i64],
        job,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The statement of [`list`] (`?1` event, `?2` status, `?3` limit). Only the filters given are
/// in it: `(?1 IS NULL OR event_id = ?1)` would keep SQLite from using an index and read every
/// job (100 ms on a journal of 1,000,000 events).
pub(super) fn list_statement(event: bool, status: bool) -> String {
    let filter = match (event, status) {
        (true, true) => "event_id = ?1 AND status = ?2",
        (true, false) => "event_id = ?1 AND ?2 IS NULL",
        (false, true) => "?1 IS NULL AND status = ?2",
        (false, false) => "?1 IS NULL AND ?2 IS NULL",
    };
    format!("SELECT {JOB_COLUMNS} FROM jobs WHERE {filter} ORDER BY id DESC LIMIT ?3")
}

pub(super) fn job(r: &Row<'_>) -> rusqlite::Result<Job> {
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
