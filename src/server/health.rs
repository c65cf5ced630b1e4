//! `GET /healthz`: liveness and rules status, answered from memory (no journal round trip), so
//! it stays cheap enough to poll often.

use std::sync::Arc;

use serde_json::json;
use warp::{Filter, Rejection, Reply};

use crate::rules::live::LiveRules;

/// What `/healthz` reports.
pub struct Health {
    pub version: &'static str,
    /// Sources running without a secret (loopback clients only).
    pub insecure_sources: Vec<&'static str>,
    pub rules: Arc<LiveRules>,
}

pub fn route(
    health: Arc<Health>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::get()
        .and(warp::path("healthz"))
        .and(warp::path::end())
        .map(move || {
            let body = json!({
                "status": "ok",
                "version": health.version,
                "insecure_sources": health.insecure_sources,
                "rules": health.rules.status(),
            });
            warp::reply::json(&body).into_response()
        })
}
