//! `/ui/timers` — waits, delayed actions and digest windows (DESIGN.md §12): pending ones
//! soonest due first, filtered by order and status, each with what it will do (or why it was
//! held) and a cancel button that makes the same journal write as `storeflow timers cancel`.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use warp::http::StatusCode;
use warp::{Filter, Rejection};

use super::super::auth::{self, Form, Session};
use super::super::{either, or_unavailable, view, Console, Early};
use crate::journal::{Timer, TimerFilter, TimerKind, TimerStatus, Write, Written};
use crate::rules::RuleSet;

/// The most timers one page lists (the journal's timer listing has no keyset cursor).
const LIMIT: usize = 200;

pub fn route(
    c: Arc<Console>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let list = {
        let c2 = c.clone();
        warp::path("timers")
            .and(warp::path::end())
            .and(warp::get())
            .and(warp::query::<HashMap<String, String>>())
            .and(auth::session(c.clone()))
            .then(move |q: HashMap<String, String>, s: Session| {
                let c = c2.clone();
                async move { either(list(&c, &s, &q).await) }
            })
    };
    let cancel = {
        let c2 = c.clone();
        warp::path!("timers" / i64 / "cancel")
            .and(warp::post())
            .and(auth::form(c))
            .then(move |id: i64, s: Session, _: Form| {
                let c = c2.clone();
                async move { cancel(&c, &s, id).await }
            })
    };
    list.or(cancel).unify()
}

/// The filter of `?status=` (pending by default, `all`) and `?order=`.
fn filter_of(q: &HashMap<String, String>) -> (TimerFilter, &'static str) {
    let (status, label) = match q.get("status").map(String::as_str) {
        Some("all") => (None, "all"),
        Some(s) => match TimerStatus::parse(s) {
            Some(st) => (Some(st), st.as_str()),
            None => (Some(TimerStatus::Pending), "pending"),
        },
        None => (Some(TimerStatus::Pending), "pending"),
    };
    let order_id = q
        .get("order")
        .map(|o| o.trim().to_string())
        .filter(|o| !o.is_empty());
    let filter = TimerFilter {
        status,
        order_id,
        event_id: None,
        limit: LIMIT,
    };
    (filter, label)
}

async fn list(
    c: &Console,
    s: &Session,
    q: &HashMap<String, String>,
) -> Result<warp::reply::Response, Early> {
    let (filter, status) = filter_of(q);
    let order = filter.order_id.clone();
    let read = c.reader.read(move |store| store.timers(&filter)).await;
    let timers = or_unavailable(c, s, read)?;
    let rules = c.rules.current();
    let items: Vec<TimerView> = timers
        .iter()
        .map(|t| TimerView::of(t, rules.as_deref()))
        .collect();
    let notice = q
        .get("notice")
        .and_then(|n| notice(n))
        .map(|(text, ok)| minijinja::context! { text => text, ok => ok });
    let ctx = minijinja::context! {
        status => status,
        statuses => ["pending", "fired", "cancelled", "skipped", "all"],
        order => order,
        truncated => items.len() >= LIMIT,
        limit => LIMIT,
        items => minijinja::value::Serde(items),
        notice => notice,
    };
    Ok(view::page(
        c,
        Some(s),
        StatusCode::OK,
        ("timers.html", "timers"),
        ctx,
    ))
}

/// The notice after a cancel (`one:ID` or `none:ID`), and whether it worked.
fn notice(code: &str) -> Option<(String, bool)> {
    match code.split_once(':') {
        Some(("one", id)) if id.parse::<i64>().is_ok() => Some((
            format!("Timer #{id} is cancelled: its actions will not run."),
            true,
        )),
        Some(("none", id)) if id.parse::<i64>().is_ok() => Some((
            format!("Timer #{id} was not cancelled: it is no longer pending (it fired, was cancelled or skipped) or is gone."),
            false,
        )),
        _ => None,
    }
}

async fn cancel(c: &Console, s: &Session, id: i64) -> warp::reply::Response {
    let changed = match c.journal.write(Write::CancelTimer(id)).await {
        Ok(Written::Changed(n)) => n,
        Ok(_) => 0,
        Err(e) => return view::unavailable(c, s, e),
    };
    tracing::info!(timer = id, cancelled = changed, "console: timer cancelled");
    let code = if changed > 0 { "one" } else { "none" };
    view::see_other(&format!("/ui/timers?notice={code}:{id}"))
}

/// One timer as the timers page and the event page show it.
#[derive(Serialize)]
pub(super) struct TimerView {
    id: i64,
    kind: &'static str,
    rule: String,
    source: String,
    order_id: Option<String>,
    event_id: String,
    status: &'static str,
    due_at: String,
    finished_at: Option<String>,
    /// What it will do when it fires.
    does: String,
    /// What holds it back until then, or why it ended as it did.
    why: Option<String>,
}

impl TimerView {
    pub(super) fn of(t: &Timer, rules: Option<&RuleSet>) -> TimerView {
        TimerView {
            id: t.id,
            kind: t.kind.as_str(),
            rule: t.rule.clone(),
            source: t.source.clone(),
            order_id: t.order_id.clone(),
            event_id: t.event_id.clone(),
            status: t.status.as_str(),
            due_at: view::ts(t.due_at),
            finished_at: t.finished_at.map(view::ts),
            does: does(t),
            why: why(t, rules),
        }
    }
}

/// "will run slack, flag late-shipment": the actions it turns into jobs, in the tense of its
/// status.
fn does(t: &Timer) -> String {
    let verb = match t.status {
        TimerStatus::Pending => "will run",
        TimerStatus::Fired => "ran",
        TimerStatus::Cancelled | TimerStatus::Skipped => "would have run",
    };
    if t.kind == TimerKind::Digest {
        let n = t.events.len().max(1);
        let s = if n == 1 { "" } else { "s" };
        return format!("{verb} the rule's actions once for the {n} event{s} collected");
    }
    let actions: Vec<String> = t.jobs.iter().map(action).collect();
    match actions.as_slice() {
        [] => format!("{verb} the rule's actions"),
        actions => format!("{verb} {}", actions.join(", ")),
    }
}

/// An action by its kind, a flag with its own kind (`flag late-shipment`).
fn action(j: &crate::journal::NewJob) -> String {
    match j.params.get("kind").and_then(|k| k.as_str()) {
        Some(kind) if j.kind == "flag" => format!("flag {kind}"),
        _ => j.kind.clone(),
    }
}

/// Why it waits (a wait's `unless`, a note such as quiet hours, `if_still`), or, once it is
/// no longer pending, the recorded outcome.
fn why(t: &Timer, rules: Option<&RuleSet>) -> Option<String> {
    if t.status != TimerStatus::Pending {
        return t.outcome.clone();
    }
    let mut parts = Vec::new();
    if t.kind == TimerKind::Wait {
        let wait = rules
            .and_then(|r| r.rule(&t.rule))
            .and_then(|r| r.time.wait.as_ref());
        parts.push(match wait {
            Some(w) if !w.unless.is_empty() => format!(
                "waits {}, cancelled if {} of the same order arrives",
                w.text,
                w.unless.join(" or ")
            ),
            Some(w) => format!("waits {}", w.text),
            None => "waits".to_string(),
        });
    }
    if t.kind == TimerKind::Digest {
        parts.push("digest window: collects events until it closes".to_string());
    }
    parts.extend(t.outcome.clone());
    if let Some(expr) = &t.if_still {
        parts.push(format!("only if still {expr}"));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}
