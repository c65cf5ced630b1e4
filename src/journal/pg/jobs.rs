//! Traces, jobs, attempts and script state on PostgreSQL: what the rules decided for an event,
//! committed together with marking the event processed (as in the SQLite journal).

use tokio_postgres::{GenericClient, Row};

use super::Tx as Transaction;

use crate::journal::{
    Attempt, AttemptOutcome, Job, JobStatus, JournalError, NewJob, NextStep, Processed, Replan,
    Requeue,
};
use crate::model::event::Timestamp;

/// Marks the event processed and stores its trace, jobs, state, fired rules and timers; `false`
/// (and no writes) when it was already processed.
pub(super) async fn processed(tx: &Transaction<'_>, p: &Processed) -> Result<bool, JournalError> {
    let now = Timestamp::now().millis();
    let marked = super::execute(
        tx,
        "UPDATE events SET processed_at = $2 WHERE id = $1 AND processed_at IS NULL",
        &[&p.event_id, &now],
    )
    .await?;
    if marked == 0 {
        return Ok(false);
    }
    put_trace(tx, &p.event_id, p.trace.as_str(), now).await?;
    for (key, value) in &p.state {
        set_state(tx, key, value).await?;
    }
    insert_jobs(tx, &p.event_id, &p.jobs, now).await?;
    super::admin::record_fired(tx, &p.event_id, &p.fired).await?;
    super::timers::apply(tx, &p.event_id, &p.timers, now).await?;
    Ok(true)
}

pub(super) async fn put_trace(
    tx: &Transaction<'_>,
    event_id: &str,
    trace: &str,
    now: i64,
) -> Result<(), JournalError> {
    super::execute(
        tx,
        "INSERT INTO traces (event_id, trace, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (event_id) DO UPDATE SET trace = excluded.trace,
                                              created_at = excluded.created_at",
        &[&event_id, &trace, &now],
    )
    .await?;
    Ok(())
}

/// Creates jobs (pending, or dead when they cannot run); a key that exists is left alone.
/// Returns how many were created.
pub(super) async fn insert_jobs(
    tx: &Transaction<'_>,
    event_id: &str,
    jobs: &[NewJob],
    now: i64,
) -> Result<usize, JournalError> {
    let mut created = 0;
    for job in jobs {
        let status = match job.error {
            Some(_) => JobStatus::Dead,
            None => JobStatus::Pending,
        };
        created += super::execute(
            tx,
            "INSERT INTO jobs (event_id, rule, action_index, kind, params, status,
                                   next_at, last_error, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7, $7)
                 ON CONFLICT (event_id, rule, action_index) DO NOTHING",
            &[
                &event_id,
                &job.rule,
                &(job.action_index as i64),
                &job.kind,
                &job.params.to_string(),
                &status.as_str(),
                &now,
                &job.error,
            ],
        )
        .await? as usize;
    }
    Ok(created)
}

/// Creates the replanned jobs and marks the dead letters they replace `replanned`.
pub(super) async fn replan(tx: &Transaction<'_>, r: &Replan) -> Result<usize, JournalError> {
    let now = Timestamp::now().millis();
    tx.execute(
        "UPDATE jobs SET status = 'replanned', updated_at = $3
         WHERE id = ANY($1) AND event_id = $2 AND status = 'dead'",
        &[&r.replaces, &r.event_id, &now],
    )
    .await?;
    insert_jobs(tx, &r.event_id, &r.jobs, now).await
}

/// Sets dead letters aside; returns how many were dead.
pub(super) async fn dismiss(tx: &Transaction<'_>, ids: &[i64]) -> Result<usize, JournalError> {
    Ok(tx
        .execute(
            "UPDATE jobs SET status = 'dismissed', updated_at = $2
             WHERE id = ANY($1) AND status = 'dead'",
            &[&ids, &Timestamp::now().millis()],
        )
        .await? as usize)
}

pub(super) async fn delete_state(
    tx: &Transaction<'_>,
    keys: &[String],
) -> Result<usize, JournalError> {
    Ok(tx
        .execute("DELETE FROM kv WHERE key = ANY($1)", &[&keys])
        .await? as usize)
}

pub(super) async fn state_keys(
    c: &impl GenericClient,
    prefix: &str,
) -> Result<Vec<(String, Timestamp)>, JournalError> {
    let rows = c
        .query(
            "SELECT key, updated_at FROM kv WHERE left(key, length($1)) = $1 ORDER BY key",
            &[&prefix],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, Timestamp(r.try_get(1)?))))
        .collect()
}

pub(super) async fn set_state(
    tx: &Transaction<'_>,
    key: &str,
    value: &serde_json::Value,
) -> Result<usize, JournalError> {
    Ok(super::execute(
        tx,
        "INSERT INTO kv (key, value, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                                             updated_at = excluded.updated_at",
        &[&key, &value.to_string(), &Timestamp::now().millis()],
    )
    .await? as usize)
}

pub(super) async fn state(
    c: &impl GenericClient,
    key: &str,
) -> Result<Option<serde_json::Value>, JournalError> {
    let row = c
        .query_opt("SELECT value FROM kv WHERE key = $1", &[&key])
        .await?;
    let Some(row) = row else { return Ok(None) };
    let text: String = row.try_get(0)?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| JournalError::Corrupt {
            id: key.to_string(),
            reason: e.to_string(),
        })
}

pub(super) async fn trace(
    c: &impl GenericClient,
    event_id: &str,
) -> Result<Option<serde_json::Value>, JournalError> {
    let row = c
        .query_opt("SELECT trace FROM traces WHERE event_id = $1", &[&event_id])
        .await?;
    let Some(row) = row else { return Ok(None) };
    let text: String = row.try_get(0)?;
    serde_json::from_str(&text)
        .map(|t| Some(crate::journal::trace_codec::restore(t)))
        .map_err(|e| JournalError::Corrupt {
            id: event_id.to_string(),
            reason: e.to_string(),
        })
}

pub(super) const JOB_COLUMNS: &str = "id, event_id, rule, action_index, kind, params, status, \
     attempts, next_at, last_error, created_at";

pub(super) async fn one(c: &impl GenericClient, id: i64) -> Result<Option<Job>, JournalError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
    c.query_opt(&sql, &[&id])
        .await?
        .as_ref()
        .map(job)
        .transpose()
}

pub(super) async fn due(
    c: &impl GenericClient,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<Job>, JournalError> {
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'pending' AND next_at <= $1
         ORDER BY next_at, id LIMIT $2"
    );
    jobs(c.query(&sql, &[&now.millis(), &(limit as i64)]).await?)
}

pub(super) async fn next_due(c: &impl GenericClient) -> Result<Option<Timestamp>, JournalError> {
    let row = c
        .query_one(
            "SELECT MIN(next_at) FROM jobs WHERE status = 'pending'",
            &[],
        )
        .await?;
    Ok(row.try_get::<_, Option<i64>>(0)?.map(Timestamp))
}

/// Records one attempt and moves the job on, as in the SQLite journal: only a pending job whose
/// count is just below the attempt changes, so recording an attempt again changes nothing.
pub(super) async fn record_attempt(
    tx: &Transaction<'_>,
    a: &AttemptOutcome,
) -> Result<usize, JournalError> {
    let (status, next_at, outcome) = match a.next {
        NextStep::Done => (JobStatus::Done, a.finished_at, "done"),
        NextStep::Retry(at) => (JobStatus::Pending, at, "retry"),
        NextStep::Dead => (JobStatus::Dead, a.finished_at, "dead"),
    };
    let changed = super::execute(
        tx,
        "UPDATE jobs SET status = $2, attempts = attempts + 1, next_at = $3, last_error = $4,
                             updated_at = $5
             WHERE id = $1 AND status = 'pending' AND attempts = $6::bigint - 1",
        &[
            &a.job_id,
            &status.as_str(),
            &next_at.millis(),
            &a.error,
            &a.finished_at.millis(),
            &i64::from(a.attempt),
        ],
    )
    .await?;
    if changed > 0 {
        super::execute(
            tx,
            "INSERT INTO attempts (job_id, number, started_at, finished_at, outcome, error)
             VALUES ($1, (SELECT COALESCE(MAX(number), 0) + 1 FROM attempts WHERE job_id = $1),
                     $2, $3, $4, $5)",
            &[
                &a.job_id,
                &a.started_at.millis(),
                &a.finished_at.millis(),
                &outcome,
                &a.error,
            ],
        )
        .await?;
    }
    Ok(changed as usize)
}

/// Puts dead (or, by id, done or dismissed) jobs back in the queue, due now.
pub(super) async fn requeue(tx: &Transaction<'_>, r: &Requeue) -> Result<usize, JournalError> {
    let now = Timestamp::now().millis();
    let changed = match r {
        Requeue::One(id) => {
            tx.execute(
                "UPDATE jobs SET status = 'pending', attempts = 0, next_at = $2, updated_at = $2
                 WHERE id = $1 AND status IN ('dead', 'done', 'dismissed')",
                &[id, &now],
            )
            .await?
        }
        Requeue::AllDead => {
            tx.execute(
                "UPDATE jobs SET status = 'pending', attempts = 0, next_at = $1, updated_at = $1
                 WHERE status = 'dead'",
                &[&now],
            )
            .await?
        }
    };
    Ok(changed as usize)
}

pub(super) async fn attempts(
    c: &impl GenericClient,
    job_id: i64,
) -> Result<Vec<Attempt>, JournalError> {
    let rows = c
        .query(
            "SELECT job_id, number, started_at, finished_at, outcome, error FROM attempts
             WHERE job_id = $1 ORDER BY number",
            &[&job_id],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Attempt {
                job_id: r.try_get(0)?,
                number: u32::try_from(r.try_get::<_, i64>(1)?).unwrap_or(u32::MAX),
                started_at: Timestamp(r.try_get(2)?),
                finished_at: Timestamp(r.try_get(3)?),
                outcome: r.try_get(4)?,
                error: r.try_get(5)?,
            })
        })
        .collect()
}

pub(super) async fn list(
    c: &impl GenericClient,
    event_id: Option<&str>,
    status: Option<JobStatus>,
    limit: usize,
) -> Result<Vec<Job>, JournalError> {
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs
         WHERE ($1::text IS NULL OR event_id = $1) AND ($2::text IS NULL OR status = $2)
         ORDER BY id DESC LIMIT $3"
    );
    let status = status.map(JobStatus::as_str);
    jobs(
        c.query(&sql, &[&event_id, &status, &(limit as i64)])
            .await?,
    )
}

pub(super) fn jobs(rows: Vec<Row>) -> Result<Vec<Job>, JournalError> {
    rows.iter().map(job).collect()
}

pub(super) fn job(r: &Row) -> Result<Job, JournalError> {
    let params: String = r.try_get(5)?;
    let status: String = r.try_get(6)?;
    Ok(Job {
        id: r.try_get(0)?,
        event_id: r.try_get(1)?,
        rule: r.try_get(2)?,
        action_index: usize::try_from(r.try_get::<_, i64>(3)?).unwrap_or(usize::MAX),
        kind: r.try_get(4)?,
        params: serde_json::from_str(&params).unwrap_or(serde_json::Value::String(params)),
        status: JobStatus::parse(&status).unwrap_or(JobStatus::Dead),
        attempts: u32::try_from(r.try_get::<_, i64>(7)?).unwrap_or(u32::MAX),
        next_at: Timestamp(r.try_get(8)?),
        last_error: r.try_get(9)?,
        created_at: Timestamp(r.try_get(10)?),
    })
}
