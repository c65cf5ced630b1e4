//! `/ui/jobs?status=dead` — dead letters (or jobs in another status) with retry one and retry
//! all (the count shown first). Retrying puts the job back in the queue, due now, with its
//! earlier attempts kept; the dispatcher picks it up within a second.

use std::collections::HashMap;
use std::sync::Arc;

use minijinja::value::Serde;
use serde::Serialize;
use warp::http::StatusCode;
use warp::{Filter, Rejection};

use super::super::auth::{self, Form, Session};
use super::super::{either, or_unavailable, view, Console, Early};
use crate::journal::query::JobQuery;
use crate::journal::{Job, JobStatus, Requeue, Write, Written};

/// Jobs on one page.
const PAGE: usize = 50;

pub fn route(
    c: Arc<Console>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let list = {
        let c2 = c.clone();
        warp::path("jobs")
            .and(warp::path::end())
            .and(warp::get())
            .and(warp::query::<HashMap<String, String>>())
            .and(auth::session(c.clone()))
            .then(move |q: HashMap<String, String>, s: Session| {
                let c = c2.clone();
                async move { either(list(&c, &s, &q).await) }
            })
    };
    let retry_one = {
        let c2 = c.clone();
        warp::path!("jobs" / i64 / "retry")
            .and(warp::post())
            .and(auth::form(c.clone()))
            .then(move |id: i64, s: Session, f: Form| {
                let c = c2.clone();
                async move { retry(&c, &s, Requeue::One(id), &f).await }
            })
    };
    let retry_all = {
        let c2 = c.clone();
        warp::path!("jobs" / "retry")
            .and(warp::post())
            .and(auth::form(c))
            .then(move |s: Session, f: Form| {
                let c = c2.clone();
                async move { retry(&c, &s, Requeue::AllDead, &f).await }
            })
    };
    list.or(retry_one).unify().or(retry_all).unify()
}

#[derive(Serialize)]
struct JobRow {
    id: i64,
    event_id: String,
    rule: String,
    kind: String,
    status: &'static str,
    attempts: u32,
    last_error: Option<String>,
    created_at: String,
}

impl From<Job> for JobRow {
    fn from(j: Job) -> JobRow {
        JobRow {
            id: j.id,
            event_id: j.event_id,
            rule: j.rule,
            kind: j.kind,
            status: j.status.as_str(),
            attempts: j.attempts,
            last_error: j.last_error,
            created_at: super::super::view::ts(j.created_at),
        }
    }
}

async fn list(
    c: &Console,
    s: &Session,
    q: &HashMap<String, String>,
) -> Result<warp::reply::Response, Early> {
    let status = q
        .get("status")
        .and_then(|s| JobStatus::parse(s))
        .unwrap_or(JobStatus::Dead);
    let before = q.get("before").and_then(|b| b.parse::<i64>().ok());
    let query = JobQuery {
        status: Some(status),
        event: None,
        before,
        limit: PAGE,
    };
    let read = c
        .reader
        .read(move |store| Ok((store.job_page(&query)?, store.count_jobs(status)?)))
        .await;
    let (page, count) = or_unavailable(c, s, read)?;
    let (jobs, next) = (page.items, page.next);
    let base = format!("/ui/jobs?status={}", status.as_str());
    let (first_page, next_page) = super::pager(&base, next, before.is_some());
    let ctx = minijinja::context! {
        status => status.as_str(),
        statuses => ["dead", "pending", "running", "done", "dismissed", "replanned"],
        count => count,
        items => Serde(jobs.into_iter().map(JobRow::from).collect::<Vec<_>>()),
        notice => q.get("notice").map(|n| notice(n)),
        first_page => first_page,
        next_page => next_page,
    };
    Ok(view::page(
        c,
        Some(s),
        StatusCode::OK,
        ("jobs.html", "jobs"),
        ctx,
    ))
}

/// The message shown after a retry (`?notice=`), from a fixed set: nothing a link can inject.
pub(super) fn notice(code: &str) -> String {
    match code.split_once(':') {
        Some(("one", id)) if id.parse::<i64>().is_ok() => {
            format!("Job #{id} is queued again; it runs within a second.")
        }
        Some(("none", id)) if id.parse::<i64>().is_ok() => {
            format!("Job #{id} was not retried: it is pending or running already, or gone.")
        }
        Some(("all", n)) if n.parse::<u64>().is_ok() => {
            format!("{n} dead letter(s) queued again; they run within a second.")
        }
        _ => String::new(),
    }
}

async fn retry(c: &Console, s: &Session, which: Requeue, form: &Form) -> warp::reply::Response {
    let label = match &which {
        Requeue::One(id) => *id,
        Requeue::AllDead => 0,
    };
    let changed = match c.journal.write(Write::Requeue(which.clone())).await {
        Ok(Written::Changed(n)) => n,
        Ok(_) => 0,
        Err(e) => return view::unavailable(c, s, e),
    };
    tracing::info!(job = label, requeued = changed, "console: jobs retried");
    let code = match which {
        Requeue::One(id) if changed > 0 => format!("one:{id}"),
        Requeue::One(id) => format!("none:{id}"),
        Requeue::AllDead => format!("all:{changed}"),
    };
    let back = form
        .get("back")
        .filter(|b| b.starts_with("/ui/") && !b.contains("//") && !b.contains('?'))
        .map_or("/ui/jobs?status=dead".to_string(), |b| b.clone());
    let sep = if back.contains('?') { '&' } else { '?' };
    view::see_other(&format!("{back}{sep}notice={code}"))
}
