//! `GET /healthz`: liveness, answered from memory (no journal round trip), so it stays cheap
//! enough to poll often.

use std::sync::Arc;

use serde::Serialize;
use warp::{Filter, Rejection, Reply};

/// What `/healthz` reports.
#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
    pub version: &'static str,
    /// Sources running without a secret (loopback clients only).
    pub insecure_sources: Vec<&'static str>,
}

pub fn route(
    health: Arc<Health>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::get()
        .and(warp::path("healthz"))
        .and(warp::path::end())
        .map(move || warp::reply::json(&*health).into_response())
}
