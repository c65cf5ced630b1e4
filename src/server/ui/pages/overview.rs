//! `/ui/` — the overview: webhooks per source in the last 24 h, pipeline lag, pending and dead
//! jobs, open flags, pending timers, the rules' reload status and insecure sources.

use std::sync::Arc;
use std::time::Duration;

use minijinja::value::Serde;
use warp::http::StatusCode;
use warp::{Filter, Rejection};

use super::super::auth::{self, Session};
use super::super::{either, or_unavailable, view, Console, Early};
use crate::model::event::Timestamp;

const DAY_MS: i64 = 24 * 3600 * 1000;

pub fn route(
    c: Arc<Console>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let page_c = c.clone();
    warp::path::end()
        .and(warp::get())
        .and(auth::session(c))
        .then(move |s: Session| {
            let c = page_c.clone();
            async move { either(page(&c, &s).await) }
        })
}

async fn page(c: &Console, s: &Session) -> Result<warp::reply::Response, Early> {
    let now = Timestamp::now();
    let since = Timestamp(now.millis() - DAY_MS);
    let read = c
        .reader
        .read(move |store| Ok((store.gauges(now)?, store.events_per_source(since)?)))
        .await;
    let (gauges, per_source) = or_unavailable(c, s, read)?;
    let jobs = |status: &str| {
        gauges
            .jobs
            .iter()
            .find(|(k, _)| k == status)
            .map_or(0, |(_, n)| *n)
    };
    let status = c.rules.status();
    let ctx = minijinja::context! {
        insecure => c.insecure_sources.clone(),
        total_24h => per_source.iter().map(|(_, n)| n).sum::<u64>(),
        per_source => Serde(&per_source),
        lag => lag(gauges.pipeline_lag),
        pending => jobs("pending") + jobs("running"),
        dead => jobs("dead"),
        flags_open => gauges.flags_open,
        timers_pending => gauges.timers_pending,
        rules => minijinja::context! {
            loaded => status.loaded,
            last_reload_ok => status.last_reload_ok,
            last_reload_at => view::ts(status.last_reload_at),
            errors => status.errors,
            warnings => status.warnings,
            reloads => status.reloads,
        },
    };
    Ok(view::page(
        c,
        Some(s),
        StatusCode::OK,
        ("overview.html", "overview"),
        ctx,
    ))
}

/// The lag in words: `0 s`, `42 s`, `3 min`, `2 h`.
fn lag(d: Duration) -> String {
    match d.as_secs() {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}
