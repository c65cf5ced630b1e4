//! `/ui/events` — events, newest first, with search by order id, customer email or name,
//! source, topic, rule fired and outcome; keyset pages (`?before=`).

use std::collections::HashMap;
use std::sync::Arc;

use minijinja::value::Serde;
use serde::Serialize;
use warp::http::StatusCode;
use warp::{Filter, Rejection};

use super::super::auth::{self, Session};
use super::super::{either, or_unavailable, view, Console, Early};
use crate::journal::query::{CustomerQuery, EventOutcome, EventQuery};
use crate::journal::EventSummary;

/// Events on one page.
const PAGE: usize = 50;

/// The search fields, as the form sends them.
const FIELDS: [&str; 6] = ["order", "q", "source", "topic", "rule", "outcome"];

pub fn route(
    c: Arc<Console>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let c2 = c.clone();
    warp::path("events")
        .and(warp::path::end())
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(auth::session(c))
        .then(move |q: HashMap<String, String>, s: Session| {
            let c = c2.clone();
            async move { either(page(&c, &s, q).await) }
        })
}

#[derive(Serialize)]
struct Row {
    id: String,
    topic: String,
    order_id: Option<String>,
    customer: Option<String>,
    status: &'static str,
    received_at: String,
}

impl Row {
    fn of(e: EventSummary, customer: Option<String>) -> Row {
        Row {
            id: e.id,
            topic: e.topic,
            order_id: e.order_id,
            customer,
            status: e.status.as_str(),
            received_at: view::ts(e.received_at),
        }
    }
}

async fn page(
    c: &Console,
    s: &Session,
    mut q: HashMap<String, String>,
) -> Result<warp::reply::Response, Early> {
    q.retain(|k, v| {
        *v = v.trim().to_string();
        !v.is_empty() && (FIELDS.contains(&k.as_str()) || k == "before")
    });
    let query = match event_query(&q) {
        Ok(query) => query,
        Err(error) => {
            return Ok(render(c, s, &q, Vec::new(), None, Some(error)));
        }
    };
    let read = c.reader.read(move |store| store.event_page(&query)).await;
    let page = or_unavailable(c, s, read)?;
    let rows = page
        .items
        .into_iter()
        .map(|e| {
            let customer = match (e.customer_name, e.customer_email) {
                (Some(n), Some(m)) if !n.is_empty() && !m.is_empty() => Some(format!("{n} · {m}")),
                (n, m) => n.filter(|n| !n.is_empty()).or(m.filter(|m| !m.is_empty())),
            };
            Row::of(e.summary, customer)
        })
        .collect();
    Ok(render(c, s, &q, rows, page.next, None))
}

/// The journal query of the form's fields; an unknown outcome is an error to show.
fn event_query(q: &HashMap<String, String>) -> Result<EventQuery, String> {
    let outcome = match q.get("outcome") {
        Some(o) => Some(EventOutcome::parse(o).ok_or_else(|| {
            format!("unknown outcome {o:?}; use processed, unprocessed, quarantined or dead")
        })?),
        None => None,
    };
    Ok(EventQuery {
        source: q.get("source").cloned(),
        topic: q.get("topic").cloned(),
        canonical: None,
        order: q.get("order").cloned(),
        customer: q.get("q").and_then(|v| CustomerQuery::parse(v)),
        rule: q.get("rule").cloned(),
        outcome,
        before: q.get("before").and_then(|b| b.parse::<i64>().ok()),
        limit: PAGE,
    })
}

fn render(
    c: &Console,
    s: &Session,
    q: &HashMap<String, String>,
    rows: Vec<Row>,
    next: Option<i64>,
    error: Option<String>,
) -> warp::reply::Response {
    let before = q.get("before");
    let base = link(q);
    let (first_page, next_page) = super::pager(&base, next, before.is_some());
    let filters: HashMap<&str, &str> = FIELDS
        .iter()
        .map(|k| (*k, q.get(*k).map_or("", String::as_str)))
        .collect();
    let ctx = minijinja::context! {
        f => Serde(filters),
        searching => FIELDS.iter().any(|k| q.contains_key(*k)),
        sources => c.sources.names(),
        rule_names => rule_names(c),
        outcomes => ["processed", "unprocessed", "quarantined", "dead"],
        items => Serde(rows),
        first_page => first_page,
        next_page => next_page,
        error => error,
    };
    view::page(c, Some(s), StatusCode::OK, ("events.html", "events"), ctx)
}

/// The running rules' names, for the "rule fired" filter.
fn rule_names(c: &Console) -> Vec<String> {
    c.rules
        .current()
        .map(|r| r.rules().iter().map(|r| r.name.clone()).collect())
        .unwrap_or_default()
}

/// `/ui/events` with the search's fields (not the cursor), for the pager.
fn link(q: &HashMap<String, String>) -> String {
    let mut pairs: Vec<String> = FIELDS
        .iter()
        .filter_map(|k| q.get(*k).map(|v| format!("{k}={}", view::encode(v))))
        .collect();
    pairs.sort();
    match pairs.is_empty() {
        true => "/ui/events".into(),
        false => format!("/ui/events?{}", pairs.join("&")),
    }
}
