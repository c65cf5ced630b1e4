//! `GET /api/jobs`, `GET /api/jobs/{id}`, `POST /api/jobs/{id}/retry`, `POST /api/jobs/retry`.
//! A retry puts the job back in the queue, due now, with a fresh retry schedule; its earlier
//! attempts stay in its history (attempts are numbered on across retries).

use serde_json::{json, Value};

use super::params::{id as parse_id, page, Params};
use super::{AdminError, Api};
use crate::journal::query::JobQuery;
use crate::journal::{JobStatus, Requeue, Write, Written};

/// The statuses `GET /api/jobs?status=` takes.
const STATUSES: &str = "pending, running, done, dead, dismissed, replanned";

pub(super) async fn list(api: &Api, mut p: Params) -> Result<Value, AdminError> {
    let status = match p.take("status") {
        None => None,
        Some(s) => Some(JobStatus::parse(&s).ok_or_else(|| {
            AdminError::param("status", format!("`{s}` is not one of {STATUSES}"))
        })?),
    };
    let query = JobQuery {
        status,
        event: p.take("event"),
        limit: p.limit()?,
        before: p.before()?,
    };
    p.done("status, event, limit, before")?;
    let found = api.reader.read(move |s| s.job_page(&query)).await?;
    Ok(page(found))
}

pub(super) async fn show(api: &Api, id: &str, p: Params) -> Result<Value, AdminError> {
    p.done("nothing")?;
    let id = parse_id("job", id)?;
    api.reader
        .read(move |s| {
            let Some(job) = s.job(id)? else {
                return Ok(Err(not_found(id)));
            };
            Ok(Ok(json!({ "job": job, "attempts": s.attempts(id)? })))
        })
        .await?
}

fn not_found(id: i64) -> AdminError {
    AdminError::NotFound(format!("no job with id {id}"))
}

/// Re-queues one dead, done or dismissed job.
pub(super) async fn retry(api: &Api, id: &str, p: Params) -> Result<Value, AdminError> {
    p.done("nothing")?;
    let id = parse_id("job", id)?;
    let job = api
        .reader
        .read(move |s| s.job(id))
        .await?
        .ok_or_else(|| not_found(id))?;
    if matches!(job.status, JobStatus::Pending | JobStatus::Running) {
        return Err(AdminError::Conflict(format!(
            "job {id} is {}: it is in the queue already",
            job.status.as_str()
        )));
    }
    if job.status == JobStatus::Replanned {
        return Err(AdminError::Conflict(format!(
            "job {id} was replaced by replanned jobs; retry those instead"
        )));
    }
    let n = requeue(api, Requeue::One(id)).await?;
    crate::telemetry::admin_changed("retry", &id.to_string(), n);
    Ok(json!({ "requeued": n, "job": id }))
}

/// `?status=dead` (required): re-queues every dead letter; with `dry_run=true` answers how many
/// there are and changes nothing.
pub(super) async fn retry_all(api: &Api, mut p: Params) -> Result<Value, AdminError> {
    match p.take("status").as_deref() {
        Some("dead") => {}
        Some(other) => {
            return Err(AdminError::param(
                "status",
                format!("`{other}`: only dead letters are retried in bulk (status=dead)"),
            ))
        }
        None => {
            return Err(AdminError::param(
                "status",
                "required: say which jobs (status=dead)",
            ))
        }
    }
    let dry_run = p.flag("dry_run")?;
    p.done("status, dry_run")?;
    if dry_run {
        let count = api.reader.read(|s| s.count_jobs(JobStatus::Dead)).await?;
        return Ok(json!({ "dry_run": true, "count": count }));
    }
    let n = requeue(api, Requeue::AllDead).await?;
    crate::telemetry::admin_changed("retry dead letters", "all", n);
    Ok(json!({ "dry_run": false, "requeued": n }))
}

async fn requeue(api: &Api, which: Requeue) -> Result<usize, AdminError> {
    let n = match api.journal.write(Write::Requeue(which)).await? {
        Written::Changed(n) => n,
        _ => 0,
    };
    api.jobs_changed.notify_one();
    Ok(n)
}
