//! `GET /api/events`, `GET /api/events/{id}`, `POST /api/events/{id}/replay`.

use serde_json::{json, Value};

use super::params::{page, Params};
use super::{AdminError, Api};
use crate::journal::query::{CustomerQuery, EventOutcome, EventQuery};
use crate::journal::{Job, Replan, Store, Write, Written};
use crate::plan::replay::{replay as plan_replay, ReplayPlan};
use crate::plan::{JournalState, Trace};

const LIST_TAKES: &str = "source, topic, canonical, order, q, rule, status, limit, before";

/// The newest events first, filtered.
pub(super) async fn list(api: &Api, mut p: Params) -> Result<Value, AdminError> {
    let outcome = match p.take("status") {
        None => None,
        Some(s) => Some(EventOutcome::parse(&s).ok_or_else(|| {
            AdminError::param(
                "status",
                format!("`{s}` is not one of processed, unprocessed, quarantined, dead"),
            )
        })?),
    };
    let query = EventQuery {
        source: p.take("source"),
        topic: p.take("topic"),
        canonical: p.take("canonical"),
        order: p.take("order"),
        customer: p.take("q").and_then(|q| CustomerQuery::parse(&q)),
        rule: p.take("rule"),
        outcome,
        limit: p.limit()?,
        before: p.before()?,
    };
    p.done(LIST_TAKES)?;
    let found = api.reader.read(move |s| s.event_page(&query)).await?;
    Ok(page(found))
}

/// One event: the event with its payload, its status, the typed trace, and its jobs each with
/// every attempt.
pub(super) async fn show(api: &Api, id: &str, p: Params) -> Result<Value, AdminError> {
    p.done("nothing")?;
    let id = id.to_string();
    api.reader
        .read(move |s| {
            let Some(event) = s.event(&id)? else {
                return Ok(Err(not_found(&id)));
            };
            let trace = s.trace(&id)?;
            let jobs = jobs_with_attempts(s, &id)?;
            Ok(Ok(json!({
                "event": event,
                "status": status(trace.as_ref()),
                "trace": trace.as_ref().map(typed_trace),
                "jobs": jobs,
            })))
        })
        .await?
}

fn not_found(id: &str) -> AdminError {
    AdminError::NotFound(format!(
        "no event with id {}",
        id.chars().take(80).collect::<String>()
    ))
}

/// Where the event stands, from its trace: none yet, quarantined, or planned.
fn status(trace: Option<&Value>) -> &'static str {
    match trace {
        None => "unprocessed",
        Some(t) if !t["quarantined"].is_null() => "quarantined",
        Some(_) => "processed",
    }
}

/// The stored trace read as a [`Trace`] (so every field has its one meaning), or as stored
/// when it is not one.
fn typed_trace(stored: &Value) -> Value {
    Trace::from_json(stored)
        .and_then(|t| serde_json::to_value(t).ok())
        .unwrap_or_else(|| stored.clone())
}

/// The event's jobs, oldest first, each with its attempts.
pub(super) fn jobs_with_attempts(
    s: &dyn Store,
    event_id: &str,
) -> Result<Vec<Value>, crate::journal::JournalError> {
    let mut jobs = s.jobs(Some(event_id), None, usize::MAX >> 1)?;
    jobs.reverse();
    jobs.into_iter()
        .map(|job| {
            let attempts = s.attempts(job.id)?;
            Ok(json!({ "job": job, "attempts": attempts }))
        })
        .collect()
}

/// Plans the event again with the current rules: `dry_run=true` answers the plan and changes
/// nothing; otherwise the jobs are created (keys `RULE@replayN`). Actions whose job is done or
/// queued are skipped unless `force=true`.
pub(super) async fn replay(api: &Api, id: &str, mut p: Params) -> Result<Value, AdminError> {
    let dry_run = p.flag("dry_run")?;
    let force = p.flag("force")?;
    p.done("dry_run, force")?;
    let rules = api.rules.current().ok_or(AdminError::NoRules)?;
    let event_id = id.to_string();
    let planned = api
        .reader
        .read(move |s| {
            let Some(event) = s.event(&event_id)? else {
                return Ok(Err(not_found(&event_id)));
            };
            if let Some(refused) = not_replayable(status(s.trace(&event_id)?.as_ref())) {
                return Ok(Err(refused));
            }
            let existing: Vec<Job> = s.jobs(Some(&event_id), None, usize::MAX >> 1)?;
            Ok(Ok(plan_replay(
                &event,
                &rules,
                &JournalState(s),
                &existing,
                force,
            )))
        })
        .await??;
    let mut answer = replay_answer(&planned, dry_run);
    if dry_run {
        return Ok(answer);
    }
    let created = match planned.jobs.is_empty() {
        true => 0,
        false => create(api, id, planned.jobs).await?,
    };
    crate::telemetry::admin_changed("replay", id, created);
    answer["created"] = json!(created);
    Ok(answer)
}

/// Why an event in `status` cannot be replayed.
fn not_replayable(status: &str) -> Option<AdminError> {
    match status {
        "unprocessed" => Some(AdminError::Conflict(
            "the event is not processed yet: the pipeline plans it (nothing to replay)".into(),
        )),
        "quarantined" => Some(AdminError::Conflict(
            "the event is quarantined: hand it back to the pipeline with `storeflow events retry`"
                .into(),
        )),
        _ => None,
    }
}

fn replay_answer(planned: &ReplayPlan, dry_run: bool) -> Value {
    json!({
        "dry_run": dry_run,
        "trace": planned.trace,
        "jobs": planned.jobs,
        "skipped": planned.skipped,
    })
}

/// Creates the replayed jobs (nothing replaced) and wakes the dispatcher.
async fn create(
    api: &Api,
    event_id: &str,
    jobs: Vec<crate::journal::NewJob>,
) -> Result<usize, AdminError> {
    let write = Write::Replan(Replan {
        event_id: event_id.to_string(),
        replaces: Vec::new(),
        jobs,
    });
    let created = match api.journal.write(write).await? {
        Written::Changed(n) => n,
        _ => 0,
    };
    api.jobs_changed.notify_one();
    Ok(created)
}
