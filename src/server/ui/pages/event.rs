//! `/ui/events/{id}` — one event: what came in (the payload, pretty-printed, collapsible), per
//! rule whether it fired and, if not, the condition that failed with its expected and actual
//! value (from the stored trace), script errors with file:line, and the jobs with every
//! attempt and where each message went, and the timers it created (waits, delays, digests).

use std::collections::HashMap;
use std::sync::Arc;

use minijinja::value::Serde;
use serde::Serialize;
use warp::http::StatusCode;
use warp::{Filter, Rejection};

use super::super::auth::{self, Session};
use super::super::{either, or_unavailable, view, Console, Early};
use super::timers::TimerView;
use super::verdict::Verdict;
use crate::actions::destination;
use crate::journal::query::JobQuery;
use crate::journal::{Attempt, Job};
use crate::model::actions::ActionKind;
use crate::model::event::Event;
use crate::plan::Trace;

/// The most jobs one event page lists.
const MAX_JOBS: usize = 500;

pub fn route(
    c: Arc<Console>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let page_c = c.clone();
    warp::path!("events" / String)
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(auth::session(c))
        .then(move |id: String, q: HashMap<String, String>, s: Session| {
            let c = page_c.clone();
            let notice = q.get("notice").map(|n| super::jobs::notice(n));
            async move { either(page(&c, &s, id, notice).await) }
        })
}

/// What the journal holds about one event.
struct Stored {
    event: Event,
    trace: Option<serde_json::Value>,
    jobs: Vec<(Job, Vec<Attempt>)>,
    /// The timers the event created or a digest collected it into.
    timers: Vec<crate::journal::Timer>,
}

async fn page(
    c: &Console,
    s: &Session,
    id: String,
    notice: Option<String>,
) -> Result<warp::reply::Response, Early> {
    let read = c.reader.read(move |store| {
        let Some(event) = store.event(&id)? else {
            return Ok(None);
        };
        let trace = store.trace(&id)?;
        let mut jobs = Vec::new();
        // Indexed by event (the plain `jobs` listing scans the whole table for one event).
        let query = JobQuery {
            status: None,
            event: Some(id.clone()),
            before: None,
            limit: MAX_JOBS,
        };
        for job in store.job_page(&query)?.items.into_iter().rev() {
            let attempts = store.attempts(job.id)?;
            jobs.push((job, attempts));
        }
        let timers = store.timers(&crate::journal::TimerFilter {
            event_id: Some(id.clone()),
            limit: MAX_JOBS,
            ..Default::default()
        })?;
        Ok(Some(Stored {
            event,
            trace,
            jobs,
            timers,
        }))
    });
    let Some(stored) = or_unavailable(c, s, read.await)? else {
        return Err(Box::new(view::refused(
            c,
            Some(s),
            StatusCode::NOT_FOUND,
            "No such event",
            "The journal has no event with this id (retention may have pruned it). Search the events list instead.",
        )));
    };
    let ctx = minijinja::context! { notice => notice, ..context(c, stored) };
    Ok(view::page(
        c,
        Some(s),
        StatusCode::OK,
        ("event.html", "events"),
        ctx,
    ))
}

fn context(c: &Console, stored: Stored) -> minijinja::Value {
    let Stored {
        event,
        trace,
        jobs,
        timers,
    } = stored;
    let live = c.rules.current();
    let timers: Vec<TimerView> = timers
        .iter()
        .map(|t| TimerView::of(t, live.as_deref()))
        .collect();
    let payload = serde_json::to_string_pretty(&event.payload).unwrap_or_default();
    let processed = trace.is_some();
    let trace = trace
        .as_ref()
        .and_then(Trace::from_json)
        .unwrap_or_default();
    // The journal writes a quarantined event's reason as its trace.
    let quarantined = trace.quarantined.as_ref().map(|q| q.reason.clone());
    let rules: Vec<Verdict> = trace
        .records()
        .iter()
        .map(|r| Verdict::of(&r.verdict, r.script_error.as_deref(), &c.config.rules_dir))
        .collect();
    let jobs: Vec<JobView> = jobs.iter().map(|(j, a)| JobView::of(c, j, a)).collect();
    minijinja::context! {
        e => minijinja::context! {
            id => event.id,
            source => event.source,
            shop => event.shop,
            topic => event.topic,
            canonical => event.canonical,
            received_at => view::ts(event.received_at),
            order => Serde(event.order),
        },
        payload_bytes => payload.len(),
        payload => payload,
        processed => processed,
        quarantined => quarantined,
        trace_error => trace.error.clone(),
        not_listening => trace.not_listening(),
        rules => Serde(rules),
        jobs => Serde(jobs),
        timers => Serde(timers),
    }
}

#[derive(Serialize)]
struct JobView {
    id: i64,
    rule: String,
    kind: String,
    status: &'static str,
    next_at: String,
    last_error: Option<String>,
    destination: Vec<String>,
    attempts: Vec<AttemptView>,
}

#[derive(Serialize)]
struct AttemptView {
    number: u32,
    finished_at: String,
    outcome: String,
    error: Option<String>,
}

impl JobView {
    fn of(c: &Console, j: &Job, attempts: &[Attempt]) -> JobView {
        JobView {
            id: j.id,
            rule: j.rule.clone(),
            kind: j.kind.clone(),
            status: j.status.as_str(),
            next_at: view::ts(j.next_at),
            last_error: j.last_error.clone(),
            destination: destination_lines(c, j),
            attempts: attempts
                .iter()
                .map(|a| AttemptView {
                    number: a.number,
                    finished_at: view::ts(a.finished_at),
                    outcome: a.outcome.clone(),
                    error: a.error.clone(),
                })
                .collect(),
        }
    }
}

/// Where the job's message went, in words (no secrets: webhook URLs are never shown).
fn destination_lines(c: &Console, j: &Job) -> Vec<String> {
    let config = &c.config;
    match ActionKind::parse(&j.kind) {
        ActionKind::Email => {
            let mut lines = vec![format!("to {}", destination::recipients(&j.params))];
            lines.push(match &config.email.smtp {
                Some(smtp) => format!("via SMTP {}:{}", smtp.host, smtp.port),
                None => {
                    let path =
                        destination::eml_path(config, j.id, &j.event_id, &j.rule, j.action_index);
                    format!("written to {}", path.display())
                }
            });
            lines
        }
        ActionKind::Slack => vec![destination::slack_destination(config, &j.params)],
        ActionKind::Http => {
            let url = j.params["url"].as_str().unwrap_or("");
            vec![format!(
                "{} {}",
                j.params["method"].as_str().unwrap_or("POST"),
                crate::actions::redact::redact_url(url)
            )]
        }
        _ => Vec::new(),
    }
}
