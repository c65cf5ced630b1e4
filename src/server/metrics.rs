//! `GET /metrics`: Prometheus text (DESIGN.md §11). Guarded by `admin.token` (`Authorization:
//! Bearer`); with no token configured, loopback clients only. The gauges read from the journal
//! are refreshed on each scrape, on a blocking thread.

use std::net::SocketAddr;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use warp::http::{HeaderMap, StatusCode};
use warp::{Filter, Rejection, Reply};

use super::rejection::error_reply;
use crate::journal::Reader;
use crate::model::event::Timestamp;
use crate::rules::live::LiveRules;
use crate::sources::{client, IntakeRequest};
use crate::telemetry::metrics;

/// What `/metrics` needs.
pub struct Metrics {
    /// `None` when another metrics recorder was installed first (answers 503).
    pub handle: Option<PrometheusHandle>,
    pub reader: Reader,
    pub rules: Arc<LiveRules>,
    /// `admin.token`; `None`: loopback clients only.
    pub token: Option<String>,
}

/// Why a scrape was refused.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refused {
    /// 401: the token is missing or wrong.
    Token,
    /// 403: no token is configured and the client is not on this machine.
    NotLocal,
}

pub fn route(
    m: Arc<Metrics>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path("metrics")
        .and(warp::path::end())
        .and(warp::get())
        .and(warp::header::headers_cloned())
        .and(super::intake::peer_addr())
        .and_then(move |headers: HeaderMap, peer: Option<SocketAddr>| {
            let m = m.clone();
            async move { Ok::<_, Rejection>(scrape(&m, &headers, peer).await) }
        })
}

async fn scrape(
    m: &Metrics,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> warp::reply::Response {
    match check(m.token.as_deref(), headers, peer) {
        Ok(()) => {}
        Err(Refused::Token) => {
            tracing::warn!(peer = ?peer.map(|p| p.ip()), "/metrics refused: missing or wrong admin token");
            return error_reply(
                StatusCode::UNAUTHORIZED,
                "missing or wrong admin token (Authorization: Bearer <admin.token>)",
            );
        }
        Err(Refused::NotLocal) => {
            tracing::warn!(peer = ?peer.map(|p| p.ip()), "/metrics refused: no admin.token set, so loopback clients only");
            return error_reply(
                StatusCode::FORBIDDEN,
                "no admin.token is set: /metrics answers clients on this machine only",
            );
        }
    }
    let Some(handle) = &m.handle else {
        return error_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "the metrics recorder is not installed",
        );
    };
    refresh(m).await;
    warp::reply::with_header(
        handle.render(),
        "content-type",
        "text/plain; version=0.0.4; charset=utf-8",
    )
    .into_response()
}

/// Sets the gauges read from the journal and the rules; a failing journal leaves them as they
/// were (`/healthz` reports it).
async fn refresh(m: &Metrics) {
    let status = m.rules.status();
    metrics::rules_reload(
        status.last_reload_ok,
        status.last_reload_at.millis() as f64 / 1000.0,
    );
    match m.reader.read(|store| store.gauges(Timestamp::now())).await {
        Ok(gauges) => metrics::journal_gauges(&gauges),
        Err(e) => tracing::warn!(error = %e, "/metrics: cannot read the journal's counts"),
    }
}

/// Whether a request may see admin data (`/metrics`, `/api`): the Bearer token compared in
/// constant time, or with no token configured a client on this machine.
pub(super) fn check(
    token: Option<&str>,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Result<(), Refused> {
    match token {
        Some(expected) => {
            let given = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .unwrap_or("");
            // Digests of equal length: the comparison reveals neither the content nor the length.
            let same = Sha256::digest(given.as_bytes()).ct_eq(&Sha256::digest(expected.as_bytes()));
            if given.is_empty() || !bool::from(same) {
                return Err(Refused::Token);
            }
            Ok(())
        }
        None => {
            let req = IntakeRequest {
                headers,
                body: bytes::Bytes::new(),
                peer,
                token: None,
            };
            if client::is_local(&req, false) {
                Ok(())
            } else {
                Err(Refused::NotLocal)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>, xff: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert("authorization", a.parse().unwrap());
        }
        if let Some(x) = xff {
            h.insert("x-forwarded-for", x.parse().unwrap());
        }
        h
    }

    #[test]
    fn token_is_required_when_configured_even_from_loopback() {
        let local = Some("127.0.0.1:9".parse().unwrap());
        let t = Some("s3cret");
        assert_eq!(check(t, &headers(None, None), local), Err(Refused::Token));
        assert_eq!(
            check(t, &headers(Some("Bearer nope"), None), local),
            Err(Refused::Token)
        );
        assert_eq!(
            check(t, &headers(Some("s3cret"), None), local),
            Err(Refused::Token)
        );
        assert_eq!(
            check(t, &headers(Some("Bearer s3cret"), None), local),
            Ok(())
        );
    }

    #[test]
    fn without_a_token_only_local_clients_that_relay_for_no_one() {
        let local = Some("127.0.0.1:9".parse().unwrap());
        let remote = Some("192.0.2.7:9".parse().unwrap());
        assert_eq!(check(None, &headers(None, None), local), Ok(()));
        assert_eq!(
            check(None, &headers(None, None), remote),
            Err(Refused::NotLocal)
        );
        assert_eq!(
            check(None, &headers(None, Some("203.0.113.9")), local),
            Err(Refused::NotLocal)
        );
    }
}
