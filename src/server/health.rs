//! `GET /healthz`: liveness, journal and rules status, answered from memory (no journal round
//! trip), so it stays cheap enough to poll often. It answers 503 with `"status": "unhealthy"`
//! while the journal cannot be written (commits fail, or its file was removed or replaced), so
//! a load balancer or monitor notices what intake's 503s mean.

use std::sync::Arc;

use serde_json::json;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use crate::journal::JournalHealth;
use crate::rules::live::LiveRules;

/// What `/healthz` reports.
pub struct Health {
    pub version: &'static str,
    /// Sources running without a secret (loopback clients only).
    pub insecure_sources: Vec<&'static str>,
    pub rules: Arc<LiveRules>,
    pub journal: Arc<JournalHealth>,
}

pub fn route(
    health: Arc<Health>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::get()
        .and(warp::path("healthz"))
        .and(warp::path::end())
        .map(move || {
            let problem = health.journal.problem();
            let journal = match &problem {
                None => json!({ "status": "ok" }),
                Some(p) => json!({
                    "status": "failing",
                    "error": p.reason,
                    "since": p.since,
                }),
            };
            let (status, code) = match problem {
                None => ("ok", StatusCode::OK),
                Some(_) => ("unhealthy", StatusCode::SERVICE_UNAVAILABLE),
            };
            let body = json!({
                "status": status,
                "version": health.version,
                "journal": journal,
                "insecure_sources": health.insecure_sources,
                "rules": health.rules.status(),
            });
            warp::reply::with_status(warp::reply::json(&body), code).into_response()
        })
}
